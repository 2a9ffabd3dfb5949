//! The pools and their shared limits. A checkout takes an idle connection (most recently used
//! first), opens one while the pool is under `pool.size` and the caps allow, or queues FIFO
//! until one is given back or `pool.wait_timeout` passes. A checkin hands the connection
//! straight to the oldest waiter.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::sync::{oneshot, watch, Notify};

use super::conn::{Conn, ServerConn};
use super::info::{ServerInfo, ServerState};
use super::key::PoolKey;
use super::open::{open, OpenError};
use super::Credential;
use crate::config::Config;
use crate::context::Context;

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("no server connection became free within {0:?} (pool.wait_timeout; pool.size = {1})")]
    Timeout(Duration, u32),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("the proxy is shutting down")]
    Closed,
}

impl CheckoutError {
    /// The ErrorResponse the waiting client gets; its statement did not run.
    pub fn to_client(&self) -> bytes::BytesMut {
        use crate::wire::error_response::{encode, Severity};
        match self {
            CheckoutError::Open(e) => e.to_client(),
            // As PgBouncer's query_wait_timeout: the client is disconnected.
            CheckoutError::Timeout(..) => encode(Severity::Fatal, "53300", &self.to_string(), None),
            CheckoutError::Closed => encode(Severity::Fatal, "57P01", &self.to_string(), None),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Waiter {
    since: Instant,
    tx: oneshot::Sender<Conn>,
}

#[derive(Default)]
struct PoolState {
    /// Most recently used last.
    idle: Vec<Conn>,
    /// Every connection of the pool: idle, checked out, logging in.
    open: u32,
    opening: u32,
    waiters: VecDeque<Waiter>,
}

pub struct Pool {
    pub key: PoolKey,
    state: Mutex<PoolState>,
    /// The server's ParameterStatus values, reported to clients at their login.
    params: Mutex<Option<Params>>,
    credential: Mutex<Credential>,
    /// Clients logged in to this pool.
    pub clients: AtomicU32,
    pub active: AtomicU32,
    pub waiting: AtomicU32,
    pub checkouts: AtomicU64,
    pub wait_us: AtomicU64,
    /// Signalled when a connection of this pool closes: a queued client may open one.
    room: Notify,
    /// RECONNECT of this pool bumps it: connections opened before are closed instead of reused
    /// (per pool, so `RECONNECT db` leaves the other databases' connections alone).
    generation: AtomicU64,
    /// What `pool.max_db_connections` counts this pool's connections under.
    cap: String,
    /// A pool of a Citus node (shard-local routing): how to reach it, and whether it answers.
    pub node: Option<super::nodes::NodeSide>,
    /// A coordinator pool's node pools for the same role and database, by `host:port`.
    pub(super) node_pools: DashMap<Arc<str>, Arc<Pool>>,
    /// Transactions this pool's connections served (`citus_proxy_served_total`).
    pub served: AtomicU64,
    /// Transactions meant for this node that went to the coordinator because it did not answer.
    pub fallbacks: AtomicU64,
}

/// One row of SHOW POOLS.
#[derive(Debug, Clone)]
pub struct PoolSnapshot {
    pub key: PoolKey,
    pub clients: u32,
    pub cl_waiting: u32,
    pub sv_active: u32,
    pub sv_idle: u32,
    pub sv_login: u32,
    pub maxwait: Duration,
    pub checkouts: u64,
    pub wait_total: Duration,
}

impl Pool {
    pub(super) fn new(key: PoolKey, node: Option<super::nodes::NodeSide>) -> Pool {
        Pool {
            cap: key.cap_key(),
            node,
            node_pools: DashMap::new(),
            served: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            key,
            state: Mutex::new(PoolState::default()),
            params: Mutex::new(None),
            credential: Mutex::new(crate::auth::ServerCredential::None),
            clients: AtomicU32::new(0),
            active: AtomicU32::new(0),
            waiting: AtomicU32::new(0),
            checkouts: AtomicU64::new(0),
            wait_us: AtomicU64::new(0),
            room: Notify::new(),
            generation: AtomicU64::new(0),
        }
    }

    /// The credential new server connections log in with (the latest client's).
    pub fn set_credential(&self, c: Credential) {
        *lock(&self.credential) = c;
    }

    /// What a new connection logs in with: a node pool uses its coordinator pool's (Citus
    /// propagates roles and their secrets to every node).
    fn credential(&self) -> Credential {
        match self.node.as_ref().and_then(|n| n.base.upgrade()) {
            Some(base) => lock(&base.credential).clone(),
            None => lock(&self.credential).clone(),
        }
    }

    pub fn params(&self) -> Option<Params> {
        lock(&self.params).clone()
    }

    pub fn snapshot(&self) -> PoolSnapshot {
        let st = lock(&self.state);
        PoolSnapshot {
            key: self.key.clone(),
            clients: self.clients.load(Ordering::Relaxed),
            cl_waiting: st.waiters.iter().filter(|w| !w.tx.is_closed()).count() as u32,
            sv_active: self.active.load(Ordering::Relaxed),
            sv_idle: st.idle.len() as u32,
            sv_login: st.opening,
            maxwait: st.waiters.iter().find(|w| !w.tx.is_closed()).map(|w| w.since.elapsed()).unwrap_or_default(),
            checkouts: self.checkouts.load(Ordering::Relaxed),
            wait_total: Duration::from_micros(self.wait_us.load(Ordering::Relaxed)),
        }
    }
}

/// The most recently used idle connection served by this thread's reactor, else the most recently
/// used one: a socket of another worker works, but each of its wake-ups crosses threads.
fn take_idle(idle: &mut Vec<Conn>) -> Option<Conn> {
    let me = crate::workers::current();
    match idle.iter().rposition(|c| c.home == me) {
        Some(i) => Some(idle.remove(i)),
        None => idle.pop(),
    }
}

/// A server's ParameterStatus values, as (name, value).
pub type Params = Arc<Vec<(String, String)>>;

enum Next {
    Take(Conn),
    Open,
    Wait(oneshot::Receiver<Conn>),
    /// The pool has room but a cap does not: wait for any connection to close.
    Capped,
}

/// What every connection's place is counted in: its place is freed when it is dropped, however
/// it ends (closed, broken, its session gone).
pub struct Shared {
    servers: DashMap<u64, Arc<ServerInfo>>,
    /// Connections over all pools, and per database (for the caps).
    counts: Mutex<(u32, HashMap<String, u32>)>,
    freed: Notify,
}

impl Shared {
    fn unreserve(&self, db: &str) {
        {
            let mut counts = lock(&self.counts);
            let (total, per_db) = &mut *counts;
            *total = total.saturating_sub(1);
            if let Some(n) = per_db.get_mut(db) {
                *n = n.saturating_sub(1);
            }
        }
        self.freed.notify_waiters();
    }
}

/// A connection's place in its pool and in the caps.
pub struct Place {
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    id: u64,
}

impl Place {
    pub(super) fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.shared.servers.remove(&self.id);
        {
            let mut st = lock(&self.pool.state);
            st.open = st.open.saturating_sub(1);
            // Stale waiters first, so the count below is of real ones.
            st.waiters.retain(|w| !w.tx.is_closed());
        }
        self.shared.unreserve(&self.pool.cap);
        // A client queued in this pool may now open a connection of its own.
        self.pool.room.notify_waiters();
    }
}

/// Every pool, and what they share.
pub struct Pools {
    pub(super) map: DashMap<PoolKey, Arc<Pool>>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    paused: watch::Sender<bool>,
    closing: AtomicBool,
}

impl Default for Pools {
    fn default() -> Self {
        Pools {
            map: DashMap::new(),
            shared: Arc::new(Shared { servers: DashMap::new(), counts: Mutex::new((0, HashMap::new())), freed: Notify::new() }),
            next_id: AtomicU64::new(1),
            paused: watch::channel(false).0,
            closing: AtomicBool::new(false),
        }
    }
}

impl Pools {
    pub fn get(&self, key: &PoolKey) -> Arc<Pool> {
        if let Some(p) = self.map.get(key) {
            return Arc::clone(p.value());
        }
        Arc::clone(self.map.entry(key.clone()).or_insert_with(|| Arc::new(Pool::new(key.clone(), None))).value())
    }

    pub fn all(&self) -> Vec<Arc<Pool>> {
        let mut v: Vec<_> = self.map.iter().map(|e| Arc::clone(e.value())).collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    pub fn servers(&self) -> Vec<Arc<ServerInfo>> {
        let mut v: Vec<_> = self.shared.servers.iter().map(|e| Arc::clone(e.value())).collect();
        v.sort_by_key(|s| s.id);
        v
    }

    /// Server connections open over all pools.
    pub fn total(&self) -> u32 {
        lock(&self.shared.counts).0
    }

    fn reserve(&self, db: &str, cfg: &Config) -> bool {
        let mut counts = lock(&self.shared.counts);
        let (total, per_db) = &mut *counts;
        let on_db = per_db.get(db).copied().unwrap_or(0);
        if (cfg.pool.max_server_connections > 0 && *total >= cfg.pool.max_server_connections)
            || (cfg.pool.max_db_connections > 0 && on_db >= cfg.pool.max_db_connections)
        {
            return false;
        }
        *total += 1;
        per_db.insert(db.to_string(), on_db + 1);
        true
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// PAUSE: new checkouts wait; returns once no connection is checked out (or `timeout`).
    pub async fn pause(&self, timeout: Duration) -> bool {
        self.paused.send_replace(true);
        let until = Instant::now() + timeout;
        loop {
            if self.map.iter().all(|p| p.active.load(Ordering::Relaxed) == 0) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// After a reload changed the sizes or caps: clients queued for a connection look again
    /// (a larger `pool.size` lets them open one now).
    pub fn resized(&self) {
        for pool in self.all() {
            pool.room.notify_waiters();
        }
        self.shared.freed.notify_waiters();
    }

    /// RESUME: waiting checkouts go on.
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    /// RECONNECT: every connection open now is closed instead of reused from here on (idle
    /// ones at once, busy ones when given back).
    pub async fn reconnect(&self, key: Option<&PoolKey>) -> usize {
        self.reconnect_where(|k| key.is_none_or(|key| key == k)).await
    }

    /// RECONNECT of the pools whose key passes `which` (e.g. every pool of one database).
    pub async fn reconnect_where(&self, which: impl Fn(&PoolKey) -> bool) -> usize {
        let mut closed = 0;
        for pool in self.all() {
            if !which(&pool.key) {
                continue;
            }
            pool.generation.fetch_add(1, Ordering::Relaxed);
            let idle = std::mem::take(&mut lock(&pool.state).idle);
            for conn in idle {
                closed += 1;
                self.discard(&pool, conn).await;
            }
        }
        closed
    }

    /// Closes every idle connection; checkouts fail from now on (shutdown).
    pub async fn close_all(&self) {
        self.closing.store(true, Ordering::Relaxed);
        self.reconnect(None).await;
    }

    /// Takes a server connection of `pool` for client session `client`.
    pub async fn checkout(&self, ctx: &Context, pool: &Arc<Pool>, client: u64) -> Result<Conn, CheckoutError> {
        let started = Instant::now();
        let live = ctx.live();
        let wait = live.pool.wait_timeout;
        let deadline = (!wait.is_zero()).then(|| tokio::time::Instant::now() + wait);
        let timeout = || CheckoutError::Timeout(wait, live.pool.size);
        pool.waiting.fetch_add(1, Ordering::Relaxed);
        let result = async {
            loop {
                if self.closing.load(Ordering::Relaxed) {
                    return Err(CheckoutError::Closed);
                }
                if self.is_paused() {
                    let mut rx = self.paused.subscribe();
                    let resumed = rx.wait_for(|p| !*p);
                    match deadline {
                        Some(d) => tokio::time::timeout_at(d, resumed).await.map_err(|_| timeout())?.map_err(|_| CheckoutError::Closed)?,
                        None => resumed.await.map_err(|_| CheckoutError::Closed)?,
                    };
                    continue;
                }
                // Read again at each try: a RELOAD may have resized the pool while this client waited.
                let live = ctx.live();
                let next = {
                    let mut st = lock(&pool.state);
                    if let Some(conn) = take_idle(&mut st.idle) {
                        Next::Take(conn)
                    } else if st.open < live.pool.size {
                        if self.reserve(&pool.cap, &live) {
                            st.open += 1;
                            st.opening += 1;
                            Next::Open
                        } else {
                            Next::Capped
                        }
                    } else {
                        let (tx, rx) = oneshot::channel();
                        st.waiters.push_back(Waiter { since: Instant::now(), tx });
                        Next::Wait(rx)
                    }
                };
                let conn = match next {
                    Next::Take(conn) => conn,
                    Next::Open => {
                        let r = self.open_for(ctx, pool).await;
                        lock(&pool.state).opening -= 1;
                        r?
                    }
                    Next::Wait(mut rx) => {
                        let room = pool.room.notified();
                        let expired = async {
                            match deadline {
                                Some(d) => tokio::time::sleep_until(d).await,
                                None => std::future::pending().await,
                            }
                        };
                        let (got, timed_out) = tokio::select! {
                            got = &mut rx => (got.ok(), false),
                            _ = room => (None, false),
                            _ = expired => (None, true),
                        };
                        // Nothing can be sent after close(); what was sent before is taken, so a
                        // connection handed over at the last moment is never dropped unseen.
                        rx.close();
                        match got.or_else(|| rx.try_recv().ok()) {
                            Some(conn) => conn,
                            None if timed_out => return Err(timeout()),
                            // A place came free (a connection closed): try again.
                            None => continue,
                        }
                    }
                    Next::Capped => {
                        let freed = self.shared.freed.notified();
                        let bounded = tokio::time::sleep(Duration::from_millis(50));
                        match deadline {
                            Some(d) if tokio::time::Instant::now() >= d => return Err(timeout()),
                            _ => {}
                        }
                        tokio::select! { _ = freed => {}, _ = bounded => {} }
                        continue;
                    }
                };
                match self.usable(ctx, pool, conn).await {
                    Some(conn) => return Ok(conn),
                    None => continue,
                }
            }
        }
        .await;
        pool.waiting.fetch_sub(1, Ordering::Relaxed);
        if let Ok(conn) = &result {
            pool.active.fetch_add(1, Ordering::Relaxed);
            pool.checkouts.fetch_add(1, Ordering::Relaxed);
            ctx.metrics.pool_checkouts.increment(1);
            let waited = started.elapsed();
            pool.wait_us.fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
            ctx.metrics.pool_wait.record(waited.as_secs_f64());
            conn.info.set(ServerState::Active, client);
            conn.info.checkouts.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// A connection taken from the idle list or handed over: still worth giving to a client?
    async fn usable(&self, ctx: &Context, pool: &Arc<Pool>, mut conn: Conn) -> Option<Conn> {
        let live = ctx.live();
        // One clock read for every age this decides on.
        let now = Instant::now();
        if self.stale(pool, &conn, &live, now) {
            self.discard(pool, conn).await;
            return None;
        }
        if !super::check::quiet(&mut conn) {
            self.discard(pool, conn).await;
            return None;
        }
        if now.saturating_duration_since(conn.idle_since) >= live.pool.server_check_delay {
            conn.info.set(ServerState::Used, 0);
            if !super::check::healthy(&mut conn, ctx.config.upstream.connect_timeout).await {
                self.discard(pool, conn).await;
                return None;
            }
        }
        Some(conn)
    }

    fn stale(&self, pool: &Pool, conn: &ServerConn, live: &Config, now: Instant) -> bool {
        conn.generation != pool.generation.load(Ordering::Relaxed)
            || (!live.pool.server_lifetime.is_zero() && now.saturating_duration_since(conn.created) >= live.pool.server_lifetime)
    }

    async fn open_for(&self, ctx: &Context, pool: &Arc<Pool>) -> Result<Conn, OpenError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let credential = pool.credential();
        let started = Instant::now();
        let place = Place { shared: Arc::clone(&self.shared), pool: Arc::clone(pool), id };
        let connector = pool.node.as_ref().map_or(&ctx.connector, |n| &*n.connector);
        let (conn, hello) = open(ctx, connector, &pool.key, id, pool.generation.load(Ordering::Relaxed), &credential, place).await?;
        ctx.metrics.upstream_connect.record(started.elapsed().as_secs_f64());
        *lock(&pool.params) = Some(Arc::new(hello.parameters));
        self.shared.servers.insert(id, Arc::clone(&conn.info));
        ctx.metrics.pool_opened.increment(1);
        Ok(conn)
    }

    /// Gives a connection back. `reusable` false (a client left mid-transaction, an error left it
    /// out of step): it is closed. Goes to the oldest waiter if there is one.
    pub async fn checkin(&self, ctx: &Context, pool: &Arc<Pool>, mut conn: Conn, reusable: bool) {
        pool.active.fetch_sub(1, Ordering::Relaxed);
        let live = ctx.live();
        let now = Instant::now();
        if !reusable || self.stale(pool, &conn, &live, now) || self.closing.load(Ordering::Relaxed) || !conn.buf.is_empty() {
            self.discard(pool, conn).await;
            return;
        }
        conn.info.set_at(ServerState::Idle, 0, now);
        conn.idle_since = now;
        let mut st = lock(&pool.state);
        while let Some(w) = st.waiters.pop_front() {
            match w.tx.send(conn) {
                Ok(()) => return,
                // That client stopped waiting: the next one.
                Err(back) => conn = back,
            }
        }
        st.idle.push(conn);
    }

    /// Closes a connection and frees its place; a client still waiting in this pool gets a
    /// new connection opened for it.
    pub async fn discard(&self, _pool: &Arc<Pool>, conn: Conn) {
        // Its place is freed when it is dropped (see `Place`).
        (*conn).close().await;
    }

    /// Closes idle connections past `pool.server_idle_timeout` (keeping `pool.min_size`) or past
    /// their lifetime; returns how many pools are under `pool.min_size`.
    pub async fn sweep(&self, ctx: &Context) {
        let live = ctx.live();
        for pool in self.all() {
            let expired: Vec<Conn> = {
                let mut st = lock(&pool.state);
                let min = live.pool.min_size as usize;
                let mut keep = Vec::with_capacity(st.idle.len());
                let mut out = Vec::new();
                let total = st.open as usize;
                // Oldest idle first: they are at the front.
                for conn in std::mem::take(&mut st.idle) {
                    let idle_out = !live.pool.server_idle_timeout.is_zero()
                        && conn.idle_since.elapsed() >= live.pool.server_idle_timeout
                        && total - out.len() > min;
                    if idle_out || self.stale(&pool, &conn, &live, Instant::now()) {
                        out.push(conn);
                    } else {
                        keep.push(conn);
                    }
                }
                st.idle = keep;
                out
            };
            for conn in expired {
                self.discard(&pool, conn).await;
            }
            // Keep min_size open once the pool has credentials that work (a client logged in).
            let (open, has_params) = (lock(&pool.state).open, pool.params().is_some());
            if has_params && open < live.pool.min_size && !self.closing.load(Ordering::Relaxed) && self.reserve(&pool.cap, &live) {
                {
                    let mut st = lock(&pool.state);
                    st.open += 1;
                    st.opening += 1;
                }
                let r = self.open_for(ctx, &pool).await;
                lock(&pool.state).opening -= 1;
                match r {
                    Ok(conn) => {
                        pool.active.fetch_add(1, Ordering::Relaxed);
                        self.checkin(ctx, &pool, conn, true).await;
                    }
                    Err(e) => {
                        tracing::warn!(pool = %pool.key, error = %e, "could not open a server connection for pool.min_size");
                    }
                }
            }
        }
    }
}
