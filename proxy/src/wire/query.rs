//! `Q` Query: one NUL-terminated SQL string (possibly several statements).

use super::cstr::Reader;
use super::WireError;

/// The SQL text of a Query body, borrowed from the frame.
pub fn sql(body: &[u8]) -> Result<&[u8], WireError> {
    let mut r = Reader::new(body, "Query");
    let s = r.cstr()?;
    r.finish()?;
    Ok(s)
}
