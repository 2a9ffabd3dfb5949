//! What to do with each ParseComplete (`1`) and CloseComplete (`3`) the server sends, in the
//! order the Parse and Close messages that cause them were sent; and, at ReadyForQuery, which of
//! the proxy's own Parses and Closes never ran because an error skipped the rest of their batch.

use std::collections::VecDeque;

use super::server::ServerStatements;

/// The fate of one ParseComplete or CloseComplete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The client asked for it: forward as is.
    Pass,
    /// The proxy's own Parse or Close: drop it.
    Hide,
    /// A noop Close stood in for a Parse the server already had: its CloseComplete becomes the
    /// client's ParseComplete.
    ParseCompleteFromClose,
}

impl Answer {
    /// Applies the answer to the server's frame (tag first); true if it goes to the client.
    /// Both messages are the 5-byte frame `tag, 0,0,0,4`, so only the tag changes.
    pub fn apply(self, frame: &mut [u8]) -> bool {
        match self {
            Answer::Pass => true,
            Answer::Hide => false,
            Answer::ParseCompleteFromClose => {
                if let Some(tag) = frame.first_mut() {
                    *tag = b'1';
                }
                true
            }
        }
    }
}

/// What a Parse or Close did to the server's statements, undone if it never ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    None,
    Prepares(u64),
    Closes(u64),
    /// Set or dropped the server's unnamed statement.
    Unnamed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    Reply(Answer, Effect),
    /// A message answered by one ReadyForQuery (Sync, Query, FunctionCall).
    Ready,
}

/// The queue, one per server connection checkout (or per session: it is empty between
/// transactions). Its buffer is reused, so the hot path does not allocate.
#[derive(Debug, Default)]
pub struct ResponseFixups {
    queue: VecDeque<Entry>,
}

impl ResponseFixups {
    pub fn new() -> ResponseFixups {
        ResponseFixups { queue: VecDeque::with_capacity(16) }
    }

    pub(super) fn expect(&mut self, answer: Answer) {
        self.queue.push_back(Entry::Reply(answer, Effect::None));
    }

    pub(super) fn expect_prepare(&mut self, answer: Answer, id: u64) {
        self.queue.push_back(Entry::Reply(answer, Effect::Prepares(id)));
    }

    pub(super) fn expect_close(&mut self, id: u64) {
        self.queue.push_back(Entry::Reply(Answer::Hide, Effect::Closes(id)));
    }

    pub(super) fn expect_unnamed(&mut self, answer: Answer) {
        self.queue.push_back(Entry::Reply(answer, Effect::Unnamed));
    }

    /// The session forwarded a Sync, a Query or a FunctionCall (or sent its own Query).
    pub fn expect_ready(&mut self) {
        self.queue.push_back(Entry::Ready);
    }

    /// The server sent ParseComplete or CloseComplete: what to do with it. A reply nothing was
    /// queued for (the stream is out of step, which should not happen) is passed.
    pub fn on_complete(&mut self) -> Answer {
        match self.queue.front() {
            Some(&Entry::Reply(answer, _)) => {
                self.queue.pop_front();
                answer
            }
            Some(Entry::Ready) | None => Answer::Pass,
        }
    }

    /// The server sent ReadyForQuery: the entries before the first Ready marker were never
    /// answered (an error made the server skip to Sync). Their effects on `server` are undone
    /// and the count of them returned. Without a marker (a ReadyForQuery the session did not
    /// announce) nothing is popped.
    pub fn on_ready(&mut self, server: &mut ServerStatements) -> usize {
        let Some(pos) = self.queue.iter().position(|e| *e == Entry::Ready) else {
            return 0;
        };
        // The ops on one id alternate (Parse only when absent, Close only when held), so the
        // first skipped op on an id says what the server still has: undoing them last to first
        // leaves exactly that.
        for entry in self.queue.range(..pos).rev() {
            match entry {
                Entry::Reply(_, Effect::Prepares(id)) => server.forget(*id),
                Entry::Reply(_, Effect::Closes(id)) => server.restore(*id),
                Entry::Reply(_, Effect::Unnamed) => server.unknown_unnamed(),
                Entry::Reply(_, Effect::None) | Entry::Ready => {}
            }
        }
        self.queue.drain(..=pos);
        pos
    }

    /// The newest `n` Syncs were ignored by the server (sent while COPY FROM STDIN ran): no
    /// ReadyForQuery will answer them, so their markers go.
    pub fn forget_ready(&mut self, n: usize) {
        for _ in 0..n {
            match self.queue.iter().rposition(|e| *e == Entry::Ready) {
                Some(i) => {
                    self.queue.remove(i);
                }
                None => break,
            }
        }
    }

    /// Nothing is outstanding: the connection may go back to the pool.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// ReadyForQuery markers still outstanding.
    pub fn pending_ready(&self) -> usize {
        self.queue.iter().filter(|e| **e == Entry::Ready).count()
    }

    /// The server connection is gone: nothing more will be answered.
    pub fn clear(&mut self) {
        self.queue.clear();
    }
}
