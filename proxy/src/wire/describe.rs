//! `D` Describe (frontend): of a statement (`S`) or a portal (`P`), by name.

use super::cstr::Reader;
use super::WireError;

pub struct DescribeView<'a> {
    pub kind: u8,
    pub name: &'a [u8],
}

impl<'a> DescribeView<'a> {
    pub fn decode(body: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body, "Describe");
        let kind = r.u8()?;
        let name = r.cstr()?;
        r.finish()?;
        Ok(DescribeView { kind, name })
    }
}
