//! Named prepared statements in transaction mode: the client's names are mapped to names the
//! proxy chooses, prepared on whichever server connection serves the client (`pool::prepared`).
//! Each rewriting writes exactly what goes to the server and queues what becomes of the
//! server's answers.

use super::relay::{Link, Pooled};
use crate::error::SessionError;
use crate::pool::prepared::{Answer, PreparedError};

/// Which message is being renamed.
#[derive(Clone, Copy)]
pub(super) enum Renamed {
    Parse,
    Bind,
    Describe,
    Close,
}

fn malformed(e: PreparedError) -> SessionError {
    SessionError::Protocol(e.to_string())
}

impl Pooled<'_> {
    /// Writes `body` (a Parse, Bind, Describe or Close) to the server as the renaming says.
    pub(super) fn rename(&mut self, which: Renamed, body: &[u8]) -> Result<(), SessionError> {
        let Link::Attached(conn) = &mut self.link else { return Ok(()) };
        let (planner, client, server) = (&self.ctx.prepared, &mut self.statements, &mut conn.state.statements);
        let (out, fixups) = (&mut self.sout, &mut self.fixups);
        match which {
            Renamed::Parse => planner.on_parse(client, server, body, out, fixups),
            Renamed::Bind => planner.on_bind(client, server, body, out, fixups),
            Renamed::Describe => planner.on_describe(client, server, body, out, fixups),
            Renamed::Close => planner.on_close(client, server, body, out, fixups),
        }
        .map_err(malformed)
    }

    /// A Query, Sync or FunctionCall went to the server: one ReadyForQuery will answer it.
    pub(super) fn expect_ready(&mut self, query: bool) {
        if !self.renames() {
            return;
        }
        self.fixups.expect_ready();
        if query {
            if let Link::Attached(conn) = &mut self.link {
                self.ctx.prepared.on_query(&mut self.statements, &mut conn.state.statements);
            }
        }
    }

    /// What becomes of a ParseComplete or CloseComplete from the server.
    pub(super) fn answer(&mut self) -> Answer {
        if self.renames() {
            self.fixups.on_complete()
        } else {
            Answer::Pass
        }
    }

    /// A ReadyForQuery: answers the server skipped (after an error) are settled.
    pub(super) fn ready_for_renames(&mut self) {
        if let Link::Attached(conn) = &mut self.link {
            self.fixups.on_ready(&mut conn.state.statements);
        }
    }

    /// A command completed on the server: DISCARD ALL / DEALLOCATE ALL emptied its statements
    /// (and the client's).
    pub(super) fn completed_for_renames(&mut self, tag: &[u8]) {
        if let Link::Attached(conn) = &mut self.link {
            conn.state.statements.on_command_complete(tag);
        }
        if tag == b"DISCARD ALL" || tag == b"DEALLOCATE ALL" {
            self.statements.deallocate_all();
        }
    }
}
