//! Invalidations this instance could not publish to Redis (it was down, slow or behind an open
//! breaker). They are replayed before this instance serves anything cached again, and by the
//! upkeep task; a replay cancelled half-way (its future dropped) leaves them pending.

use std::collections::BTreeSet;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub(crate) struct Pending {
    fields: BTreeSet<String>,
    /// A flush whose new epoch is not in Redis yet; it supersedes every pending field.
    rotate: Option<u64>,
    replaying: bool,
}

/// What one replay publishes.
#[derive(Debug, Clone)]
pub(crate) struct Replay {
    pub fields: BTreeSet<String>,
    pub rotate: Option<u64>,
}

pub(crate) enum Start<'a> {
    /// Nothing pending.
    Clear,
    /// Another task is replaying right now.
    Busy,
    Go(ReplayToken<'a>),
}

impl Pending {
    pub fn add_fields(&mut self, fields: Vec<String>) {
        self.fields.extend(fields);
    }

    pub fn set_rotate(&mut self, epoch: u64) {
        self.rotate = Some(epoch);
        self.fields.clear();
    }

    pub fn len(&self) -> usize {
        self.fields.len() + usize::from(self.rotate.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn start(lock: &Mutex<Pending>) -> Start<'_> {
        let mut p = lock.lock().unwrap_or_else(|e| e.into_inner());
        if p.replaying {
            return Start::Busy;
        }
        if p.is_empty() {
            return Start::Clear;
        }
        p.replaying = true;
        let work = Replay { fields: p.fields.clone(), rotate: p.rotate };
        Start::Go(ReplayToken { lock, work, done: false })
    }
}

/// The right to replay; dropping it unfinished hands the work back.
pub(crate) struct ReplayToken<'a> {
    lock: &'a Mutex<Pending>,
    pub work: Replay,
    done: bool,
}

impl ReplayToken<'_> {
    /// Records the outcome; true when nothing is left pending.
    pub fn finish(mut self, ok: bool) -> bool {
        self.done = true;
        let mut p = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        p.replaying = false;
        if ok {
            if p.rotate == self.work.rotate {
                p.rotate = None;
            }
            for f in &self.work.fields {
                p.fields.remove(f);
            }
        }
        ok && p.is_empty()
    }
}

impl Drop for ReplayToken<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.lock.lock().unwrap_or_else(|e| e.into_inner()).replaying = false;
        }
    }
}
