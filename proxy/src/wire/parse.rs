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
        // `decode` took exactly `n * 4` bytes, so there is no remainder.
        self.param_types.as_chunks::<4>().0.iter().map(|&c| u32::from_be_bytes(c))
    }
}
