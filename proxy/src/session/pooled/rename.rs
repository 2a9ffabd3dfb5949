//! Named prepared statements in transaction mode: the client's names are mapped to names the
//! proxy chooses, prepared on whichever server connection serves the client.

use super::relay::Pooled;
use crate::error::SessionError;
use crate::wire::bind::BindView;
use crate::wire::describe::DescribeView;
use crate::wire::parse::ParseView;

impl Pooled<'_> {
    pub(super) fn rename_parse(&mut self, _parse: &ParseView<'_>, frame: &[u8]) -> Result<(), SessionError> {
        self.sout.extend_from_slice(frame);
        Ok(())
    }

    pub(super) fn rename_bind(&mut self, _bind: &BindView<'_>, frame: &[u8]) -> Result<(), SessionError> {
        self.sout.extend_from_slice(frame);
        Ok(())
    }

    pub(super) fn rename_describe(&mut self, _d: &DescribeView<'_>, frame: &[u8]) -> Result<(), SessionError> {
        self.sout.extend_from_slice(frame);
        Ok(())
    }

    pub(super) fn rename_close(&mut self, _c: &DescribeView<'_>, frame: &[u8]) -> Result<(), SessionError> {
        self.sout.extend_from_slice(frame);
        Ok(())
    }
}

impl Pooled<'_> {
    /// What becomes of a ParseComplete (`1`) or CloseComplete (`3`) from the server.
    pub(super) fn answer(&mut self, _tag: u8) -> super::from_server::Answer {
        super::from_server::Answer::Pass
    }
}
