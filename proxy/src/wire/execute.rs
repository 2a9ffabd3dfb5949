//! `E` Execute (frontend): a portal and the most rows to return (0 = all).

use super::cstr::Reader;
use super::WireError;

pub struct ExecuteView<'a> {
    pub portal: &'a [u8],
    pub max_rows: i32,
}

impl<'a> ExecuteView<'a> {
    pub fn decode(body: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body, "Execute");
        let portal = r.cstr()?;
        let max_rows = r.i32()?;
        r.finish()?;
        Ok(ExecuteView { portal, max_rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_rejects() {
        let v = ExecuteView::decode(b"p\0\0\0\0\x05").expect("valid");
        assert_eq!((v.portal, v.max_rows), (&b"p"[..], 5));
        assert!(ExecuteView::decode(b"p\0\0\0").is_err());
        assert!(ExecuteView::decode(b"p").is_err());
        let d = crate::wire::describe::DescribeView::decode(b"P\0").expect("valid");
        assert_eq!((d.kind, d.name), (b'P', &b""[..]));
        assert!(crate::wire::describe::DescribeView::decode(b"").is_err());
    }
}
