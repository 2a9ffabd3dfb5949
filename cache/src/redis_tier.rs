//! The shared tier: one Redis server (through `ConnectionManager`, which reconnects by itself) or
//! a Redis Cluster (`ClusterConnection`, which follows MOVED/ASK), behind one enum.
//!
//! Every operation goes through `run`: the circuit breaker first (open: fail at once, no network),
//! then a hard per-operation timeout of a few milliseconds. Callers treat every error as a miss.
//! Commands are only ever single-key or single-hash, so they route in a cluster; reads that need
//! two keys send two commands concurrently (the multiplexed connection pipelines them anyway).

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value};

use crate::breaker::Breaker;
use crate::config::CacheConfig;
use crate::entry::Entry;
use crate::error::CacheError;
use crate::generations::{Reading, EPOCH_FIELD, SEQ_FIELD};
use crate::key::Key;

/// Connection establishment runs in the background, so it may take longer than an operation.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Installs a new epoch in the generations hash (KEYS[1]) in one step, so that instances racing
/// to replace the same epoch agree on one winner. ARGV: the epoch the caller saw ('' for none,
/// '*' to replace whatever is there), the new epoch, the lowest `seq` to end at (above every
/// `seq` the caller has seen, so it does not take its own new epoch for a rollback), and the
/// names of the epoch and seq fields. `seq` goes up by at least one and never down. Returns the
/// epoch now in the hash ('' for none) and its `seq`: the caller's when it won.
const ROTATE: &str = r"
local epoch = redis.call('HGET', KEYS[1], ARGV[4]) or ''
if ARGV[1] ~= '*' and ARGV[1] ~= epoch then
  return {epoch, tonumber(redis.call('HGET', KEYS[1], ARGV[5]) or '0')}
end
local seq = redis.call('HINCRBY', KEYS[1], ARGV[5], 1)
local floor = tonumber(ARGV[3])
if seq < floor then
  seq = redis.call('HINCRBY', KEYS[1], ARGV[5], floor - seq)
end
redis.call('HSET', KEYS[1], ARGV[4], ARGV[2])
return {ARGV[2], seq}
";

/// Which epoch a rotation may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replace {
    /// Whatever is there (a flush).
    Any,
    /// Only this one, or none (None): the epoch a reading showed, unless another instance has
    /// replaced it since.
    Seen(Option<u64>),
}

#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(&'a mut self, pipe: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipe, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipe, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

pub(crate) struct RedisTier {
    /// Set once connected (at once for a single server, whose manager connects lazily).
    conn: Arc<OnceLock<Conn>>,
    breaker: Breaker,
    timeout: Duration,
    prefix: String,
    nodes: Vec<String>,
    connector: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for RedisTier {
    fn drop(&mut self) {
        if let Some(task) = &self.connector {
            task.abort();
        }
    }
}

impl RedisTier {
    /// Must run inside a tokio runtime (the connection is established by background tasks).
    pub fn new(config: &CacheConfig) -> Result<RedisTier, CacheError> {
        let nodes = config.redis_nodes();
        let conn = Arc::new(OnceLock::new());
        let mut connector = None;
        if config.is_cluster() {
            let client = ClusterClientBuilder::new(nodes.clone())
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(CONNECT_TIMEOUT)
                .retries(1)
                .build()?;
            let slot = conn.clone();
            let cooldown = config.breaker_cooldown;
            connector = Some(tokio::spawn(async move {
                loop {
                    match tokio::time::timeout(CONNECT_TIMEOUT * 2, client.get_async_connection()).await {
                        Ok(Ok(c)) => {
                            let _ = slot.set(Conn::Cluster(c));
                            return;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "cache: redis cluster not reachable yet"),
                        Err(_) => tracing::debug!("cache: redis cluster connect timed out"),
                    }
                    tokio::time::sleep(cooldown).await;
                }
            }));
        } else {
            let url = nodes.first().ok_or_else(|| CacheError::Config("cache.redis_url names no node".into()))?;
            let client = redis::Client::open(url.as_str())?;
            // Few, quick retries: the breaker decides when to try again, not the manager.
            let cfg = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(CONNECT_TIMEOUT))
                .set_number_of_retries(1)
                .set_min_delay(Duration::from_millis(10))
                .set_max_delay(Duration::from_millis(200));
            let manager = ConnectionManager::new_lazy_with_config(client, cfg)?;
            // Warm the lazy connection up so the first statements do not pay for it.
            let mut warm = manager.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(CONNECT_TIMEOUT, redis::cmd("PING").query_async::<String>(&mut warm)).await;
            });
            let _ = conn.set(Conn::Single(manager));
        }
        Ok(RedisTier {
            conn,
            breaker: Breaker::new(config.breaker_failures, config.breaker_cooldown),
            timeout: config.redis_timeout,
            prefix: config.redis_prefix.clone(),
            nodes,
            connector,
        })
    }

    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    pub fn breaker_state(&self) -> &'static str {
        self.breaker.state_label()
    }

    pub fn channel(&self) -> String {
        format!("{}:events", self.prefix)
    }

    fn gens_key(&self) -> String {
        format!("{}:gens", self.prefix)
    }

    fn entry_key(&self, key: &Key) -> String {
        format!("{}:e:{}", self.prefix, key.to_hex())
    }

    /// Breaker, then the operation under `limit`; the outcome feeds the breaker.
    async fn run<T, F, Fut>(&self, limit: Duration, op: F) -> Result<T, CacheError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.breaker.allow() {
            return Err(CacheError::BreakerOpen);
        }
        self.run_unguarded(limit, op).await
    }

    /// As `run` without asking the breaker first (its outcome still feeds it): for
    /// invalidations, which must be tried even while reads have given up on Redis.
    async fn run_unguarded<T, F, Fut>(&self, limit: Duration, op: F) -> Result<T, CacheError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let conn = self.conn.get().cloned().ok_or(CacheError::NotConnected)?;
        match tokio::time::timeout(limit, op(conn)).await {
            Ok(Ok(v)) => {
                self.breaker.record_success();
                Ok(v)
            }
            Ok(Err(e)) => {
                self.breaker.record_failure();
                Err(e.into())
            }
            Err(_) => {
                self.breaker.record_failure();
                Err(CacheError::Timeout(limit))
            }
        }
    }

    async fn query<T: FromRedisValue>(&self, limit: Duration, cmd: &Cmd) -> Result<T, CacheError> {
        self.run(limit, |mut c| async move { cmd.query_async(&mut c).await }).await
    }

    pub async fn ping(&self, limit: Duration) -> Result<(), CacheError> {
        self.query::<String>(limit, &redis::cmd("PING")).await.map(|_| ())
    }

    pub async fn get_entry(&self, key: &Key) -> Result<Option<Entry>, CacheError> {
        let raw: Option<Vec<u8>> = self.query(self.timeout, redis::cmd("GET").arg(self.entry_key(key))).await?;
        raw.map(|v| Entry::decode(&v)).transpose()
    }

    /// Stores with Redis's own expiry set to the entry's remaining TTL.
    pub async fn set_entry(&self, key: &Key, entry: &Entry) -> Result<(), CacheError> {
        let ms = entry.remaining().as_millis() as u64;
        if ms == 0 {
            return Ok(());
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.entry_key(key)).arg(entry.encode()).arg("PX").arg(ms);
        self.query::<()>(self.timeout, &cmd).await
    }

    /// The epoch, `seq` and current counters of `fields`, in one HMGET.
    pub async fn fetch_gens(&self, fields: &[String]) -> Result<Reading, CacheError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.gens_key()).arg(EPOCH_FIELD).arg(SEQ_FIELD).arg(fields);
        let values: Vec<Option<u64>> = self.query(self.timeout, &cmd).await?;
        let [epoch, seq, counters @ ..] = values.as_slice() else {
            return Err(CacheError::Corrupt("HMGET answered too few values"));
        };
        if counters.len() != fields.len() {
            return Err(CacheError::Corrupt("HMGET answered the wrong number of values"));
        }
        Ok(Reading { epoch: *epoch, seq: seq.unwrap_or(0), values: counters.iter().map(|v| v.unwrap_or(0)).collect() })
    }

    /// Increments `fields` and `seq` (each HINCRBY is atomic; the pipeline targets one hash, so
    /// it routes in a cluster) and reads the epoch: the reading after the increments.
    pub async fn bump_gens(&self, fields: &[String], limit: Duration) -> Result<Reading, CacheError> {
        let key = self.gens_key();
        let mut pipe = redis::pipe();
        for f in fields {
            pipe.cmd("HINCRBY").arg(&key).arg(f).arg(1);
        }
        pipe.cmd("HINCRBY").arg(&key).arg(SEQ_FIELD).arg(1);
        pipe.cmd("HGET").arg(&key).arg(EPOCH_FIELD);
        let mut all: Vec<Value> = self.run_unguarded(limit, |mut c| async move { pipe.query_async(&mut c).await }).await?;
        let corrupt = |_| CacheError::Corrupt("HINCRBY/HGET answered a non-integer");
        let epoch = Option::<u64>::from_redis_value(all.pop().unwrap_or(Value::Nil)).map_err(corrupt)?;
        let seq = u64::from_redis_value(all.pop().unwrap_or(Value::Nil)).map_err(corrupt)?;
        let values = all.iter().map(u64::from_redis_value_ref).collect::<Result<Vec<u64>, _>>().map_err(corrupt)?;
        if values.len() != fields.len() {
            return Err(CacheError::Corrupt("HINCRBY answered the wrong number of values"));
        }
        Ok(Reading { epoch, seq, values })
    }

    /// Installs `epoch` unless `replace` forbids it (see [`ROTATE`]), with `seq` at least
    /// `floor`; every key derived before is unreachable on every instance. Returns the epoch now
    /// in Redis and its `seq`. Not behind the breaker: like an invalidation, it must be tried.
    pub async fn rotate_epoch(&self, replace: Replace, epoch: u64, floor: u64, limit: Duration) -> Result<(Option<u64>, u64), CacheError> {
        let expected = match replace {
            Replace::Any => "*".to_string(),
            Replace::Seen(None) => String::new(),
            Replace::Seen(Some(e)) => e.to_string(),
        };
        // EVAL, not EVALSHA: rotations are rare, and right after a restart (when they matter)
        // the server's script cache is empty, which would cost two more round trips.
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(ROTATE).arg(1).arg(self.gens_key()).arg(expected).arg(epoch).arg(floor).arg(EPOCH_FIELD).arg(SEQ_FIELD);
        let (now, seq): (String, u64) = self.run_unguarded(limit, |mut c| async move { cmd.query_async(&mut c).await }).await?;
        if now.is_empty() {
            return Ok((None, seq));
        }
        let now = now.parse().map_err(|_| CacheError::Corrupt("the epoch in redis is not a number"))?;
        Ok((Some(now), seq))
    }

    /// Announces `message` on the channel in the background, without delaying the caller: it is
    /// only a hint. Skipped while the breaker is not closed; its outcome does not feed it.
    pub fn publish_detached(&self, message: String) {
        if self.breaker_state() != "closed" {
            return;
        }
        let Some(mut conn) = self.conn.get().cloned() else { return };
        let channel = self.channel();
        let limit = self.timeout.max(Duration::from_millis(50));
        tokio::spawn(async move {
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg(channel).arg(message);
            let _ = tokio::time::timeout(limit, cmd.query_async::<i64>(&mut conn)).await;
        });
    }
}
