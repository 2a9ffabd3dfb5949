//! `P` Parse: statement name, SQL text, declared parameter type OIDs.

use super::cstr::Reader;
use super::WireError;

pub struct ParseView<'a> {
    pub statement: &'a [u8],
    pub sql: &'a [u8],
    param_types: &'a [u8],
}

impl<'a> ParseView<'a> {
    pub fn decode(body: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body, "Parse");
        let statement = r.cstr()?;
        let sql = r.cstr()?;
        let n = r.u16()? as usize;
        let param_types = r.bytes(n * 4)?;
        r.finish()?;
        Ok(ParseView { statement, sql, param_types })
    }
    /// Declared parameter type OIDs (0 = let the server infer).
    pub fn param_types(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        self.param_types
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}
