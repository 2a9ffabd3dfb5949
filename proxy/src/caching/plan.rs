//! What the cache has to do for one statement, decided when its Query or Sync is seen.

use std::time::Duration;

use citus_proxy_cache::{KeyParts, StatementFacts, WriteScope};

#[derive(Debug, Default)]
pub enum CachePlan {
    #[default]
    None,
    /// A read the policy lets the cache answer: look it up (and fill it on a miss).
    Read(Box<ReadPlan>),
    /// A write: what it makes stale, invalidated before its ReadyForQuery reaches the client
    /// (or at COMMIT when it ran in a transaction block).
    Write(Vec<WriteScope>),
}

#[derive(Debug)]
pub struct ReadPlan {
    pub facts: StatementFacts,
    pub parts: KeyParts,
    pub ttl: Duration,
}
