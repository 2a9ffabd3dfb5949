//! One frontend message as a type: the tag and body of a whole frame decoded into the borrowed
//! view of that message, so the session matches on messages, not on tag bytes. Nothing is
//! copied; message kinds the proxy never looks inside keep their body as bytes.

use super::bind::BindView;
use super::describe::DescribeView;
use super::execute::ExecuteView;
use super::parse::ParseView;
use super::WireError;

pub enum Frontend<'a> {
    /// `Q`: the SQL text (possibly several statements).
    Query(&'a [u8]),
    Parse(ParseView<'a>),
    Bind(BindView<'a>),
    Describe(DescribeView<'a>),
    Execute(ExecuteView<'a>),
    /// `C` Close of a statement or portal (Describe's layout).
    Close(DescribeView<'a>),
    Sync,
    Flush,
    CopyData(&'a [u8]),
    CopyDone,
    CopyFail(&'a [u8]),
    FunctionCall(&'a [u8]),
    Terminate,
}

impl<'a> Frontend<'a> {
    /// Decodes a whole frame's body; `tag` must be a frontend tag other than `p` (the session
    /// refuses the rest before it gets here).
    pub fn decode(tag: u8, body: &'a [u8]) -> Result<Frontend<'a>, WireError> {
        Ok(match tag {
            b'Q' => Frontend::Query(super::query::sql(body)?),
            b'P' => Frontend::Parse(ParseView::decode(body)?),
            b'B' => Frontend::Bind(BindView::decode(body)?),
            b'D' => Frontend::Describe(DescribeView::decode(body)?),
            b'E' => Frontend::Execute(ExecuteView::decode(body)?),
            b'C' => Frontend::Close(DescribeView::decode(body)?),
            b'S' => Frontend::Sync,
            b'H' => Frontend::Flush,
            b'd' => Frontend::CopyData(body),
            b'c' => Frontend::CopyDone,
            b'f' => Frontend::CopyFail(body),
            b'F' => Frontend::FunctionCall(body),
            _ => Frontend::Terminate,
        })
    }

    /// Part of an extended-protocol batch (up to its Sync).
    pub fn is_extended(&self) -> bool {
        matches!(
            self,
            Frontend::Parse(_) | Frontend::Bind(_) | Frontend::Describe(_) | Frontend::Execute(_) | Frontend::Close(_) | Frontend::Flush
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_kind() {
        assert!(matches!(Frontend::decode(b'Q', b"SELECT 1\0"), Ok(Frontend::Query(b"SELECT 1"))));
        assert!(matches!(Frontend::decode(b'P', b"s\0SELECT 1\0\0\0"), Ok(Frontend::Parse(p)) if p.statement == b"s"));
        assert!(matches!(Frontend::decode(b'C', b"Ss\0"), Ok(Frontend::Close(c)) if c.kind == b'S' && c.name == b"s"));
        assert!(matches!(Frontend::decode(b'S', b""), Ok(Frontend::Sync)));
        assert!(matches!(Frontend::decode(b'd', b"abc"), Ok(Frontend::CopyData(b"abc"))));
        assert!(Frontend::decode(b'Q', b"no terminator").is_err());
        assert!(Frontend::decode(b'P', b"").is_err());
    }
}
