//! Listens on the Redis pub/sub channel for other instances' writes and flushes, so this
//! instance's view of the generations (its first guess of every key) stays current and its
//! in-process tier is dropped on a flush. Correctness does not depend on it: every read still
//! validates the generations against Redis. A lost connection is re-established after a pause.
//!
//! In a Redis Cluster, PUBLISH reaches every node, so subscribing on any one node suffices; the
//! nodes are tried in turn.

use std::time::Duration;

use futures_util::StreamExt;

use crate::generations::Event;

/// Spawns the listener. `on_event` gets each event (None: just asking whether the cache is still
/// alive) and returns false when the cache is gone, which ends the task.
pub(crate) fn spawn(
    nodes: Vec<String>,
    channel: String,
    pause: Duration,
    on_event: impl Fn(Option<Event>) -> bool + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut next = 0usize;
        loop {
            let Some(node) = nodes.get(next % nodes.len().max(1)) else {
                return;
            };
            next += 1;
            match listen(node, &channel, &on_event).await {
                Ok(true) => return,
                Ok(false) => tracing::debug!(node, "cache: pub/sub stream ended; reconnecting"),
                Err(e) => tracing::debug!(node, error = %e, "cache: pub/sub unavailable; retrying"),
            }
            if !on_event(None) {
                return;
            }
            tokio::time::sleep(pause).await;
        }
    })
}

/// Ok(true) when the cache is gone; Ok(false) when the stream ended.
async fn listen(node: &str, channel: &str, on_event: &impl Fn(Option<Event>) -> bool) -> redis::RedisResult<bool> {
    let client = redis::Client::open(node)?;
    let mut pubsub = match tokio::time::timeout(Duration::from_secs(1), client.get_async_pubsub()).await {
        Ok(p) => p?,
        Err(_) => return Ok(false),
    };
    pubsub.subscribe(channel).await?;
    let mut stream = pubsub.into_on_message();
    while let Some(msg) = stream.next().await {
        let Ok(text) = std::str::from_utf8(msg.get_payload_bytes()) else {
            continue;
        };
        if let Some(event) = Event::decode(text) {
            if !on_event(Some(event)) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
