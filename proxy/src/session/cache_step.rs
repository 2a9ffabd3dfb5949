//! The one await a cacheable statement costs on its way in: look it up; on a miss either lead
//! the fill (run it upstream and collect the response) or wait for the session already running
//! the same statement.

use bytes::Bytes;
use citus_proxy_cache::{Cache, Fill, Lookup, ResponseCollector};

use super::state::Filling;
use crate::caching::ReadPlan;

pub enum Outcome {
    /// Answer with these bytes; the coordinator is not asked.
    Serve(Bytes),
    /// Forward the statement and collect its response into the cache.
    Fill(Filling),
    /// Forward the statement as if there were no cache.
    Forward,
}

pub async fn lookup(cache: &Cache, plan: &ReadPlan) -> Outcome {
    match cache.lookup(&plan.facts, &plan.parts).await {
        Lookup::Hit { entry, .. } => Outcome::Serve(entry.bytes().clone()),
        Lookup::Bypass(_) => Outcome::Forward,
        Lookup::Miss(key) => match cache.begin_fill(key) {
            Fill::Leader(guard) => {
                Outcome::Fill(Filling { guard, collector: ResponseCollector::new(cache.policy().max_entry_bytes()), ttl: plan.ttl })
            }
            Fill::Follower(waiter) => match waiter.wait().await {
                Some(entry) => Outcome::Serve(entry.bytes().clone()),
                None => Outcome::Forward,
            },
        },
    }
}
