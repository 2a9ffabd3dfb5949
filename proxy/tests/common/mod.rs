//! Shared by the proxy's integration tests: an in-process proxy on 127.0.0.1:0 in front of the
//! harness's real PostgreSQL (or CITUS_PROXY_TEST_PG), and client helpers.
#![allow(dead_code)]

pub mod nodes;
pub mod pool;

use std::net::SocketAddr;
use std::sync::Arc;

use citus_proxy::config::{self, Overrides};
use citus_proxy::context::Context;
use citus_proxy::hooks::HooksFactory;
use citus_proxy::shutdown::Shutdown;

pub struct Proxy {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    pub task: tokio::task::JoinHandle<()>,
    pub ctx: Arc<Context>,
}

impl Proxy {
    /// A proxy in front of the harness's PostgreSQL, with extra `key = value` settings.
    pub async fn start(settings: &[(&'static str, &str)]) -> Proxy {
        Self::start_with(settings, None).await
    }

    pub async fn start_with(settings: &[(&'static str, &str)], hooks: Option<Arc<dyn HooksFactory>>) -> Proxy {
        let pg = test_support::postgres();
        let mut o = Overrides::default();
        o.flags.insert("upstream.url", format!("postgres://{}@{}", pg.superuser(), pg.addr()));
        // upstream.sslmode stays at its default (prefer): TLS to a server set up as Citus sets
        // itself up, as a proxy in front of a stock coordinator does.
        // Tests run many proxies at once: no shared default metrics port unless asked for.
        o.flags.insert("metrics.listen", "off".into());
        for (k, v) in settings {
            o.flags.insert(k, v.to_string());
        }
        let cfg = config::load(None, &o, |_| None).expect("test config is valid");
        let mut ctx = Context::new(cfg).expect("context");
        if let Some(h) = hooks {
            ctx = ctx.with_hooks(h);
        }
        let ctx = Arc::new(ctx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = Shutdown::default();
        let sd = shutdown.clone();
        let run_ctx = Arc::clone(&ctx);
        let task = tokio::spawn(async move { citus_proxy::server::run(listener, run_ctx, &sd).await });
        Proxy { addr, shutdown, task, ctx }
    }

    /// A proxy in front of the Citus coordinator of this test binary (the catalog fixture, or
    /// the real coordinator named by CITUS_PROXY_TEST_CITUS), with metadata loaded.
    pub async fn start_citus(settings: &[(&'static str, &str)]) -> Proxy {
        let url = test_support::citus().url().to_string();
        Self::start_on(&url, settings).await
    }

    /// A proxy whose upstream (and metadata source) is `url`, waiting until metadata is loaded.
    pub async fn start_on(url: &str, settings: &[(&'static str, &str)]) -> Proxy {
        let upstream = url.split('?').next().unwrap_or(url).to_string();
        let mut all: Vec<(&'static str, &str)> = vec![("upstream.url", upstream.as_str())];
        all.extend_from_slice(settings);
        let proxy = Self::start_with(&all, None).await;
        let ctx = Arc::clone(&proxy.ctx);
        let loaded = eventually(15, || {
            let ctx = Arc::clone(&ctx);
            async move { ctx.metadata.age().is_some() }
        })
        .await;
        assert!(loaded, "metadata never loaded from {upstream}: {:?}", proxy.ctx.metadata.last_error());
        proxy
    }

    /// URL through the proxy to the Citus database.
    pub fn citus_url(&self) -> String {
        let db = test_support::citus().url().rsplit('/').next().unwrap_or("citus").split('?').next().unwrap_or("citus").to_string();
        self.url(&db)
    }

    /// URL for the harness superuser through the proxy.
    pub fn url(&self, db: &str) -> String {
        self.url_for(test_support::postgres().superuser(), None, db)
    }

    pub fn url_for(&self, user: &str, password: Option<&str>, db: &str) -> String {
        let auth = match password {
            Some(p) if !p.is_empty() => format!("{user}:{p}"),
            _ => user.to_string(),
        };
        format!("postgres://{auth}@127.0.0.1:{}/{db}?sslmode=disable", self.addr.port())
    }

    /// A libpq connection string (for psql) through the proxy.
    pub fn conninfo(&self, db: &str) -> String {
        format!("host=127.0.0.1 port={} user={} dbname={db} sslmode=disable", self.addr.port(), test_support::postgres().superuser())
    }

    pub async fn stop(self) {
        self.shutdown.close_now();
        let _ = self.task.await;
    }
}

/// The direct URL of the harness's PostgreSQL (for side-by-side comparisons).
pub fn direct_url(db: &str) -> String {
    test_support::postgres().url(db)
}

/// Runs psql with `args`, returning (status ok, stdout, stderr).
pub fn psql(conninfo: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new("psql")
        .arg(conninfo)
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-A", "-t"])
        .args(args)
        .output()
        .expect("psql is needed for these tests: apt-get install -y postgresql-client-15");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Reads the whole reply to a raw request until the server closes the connection.
pub async fn read_to_close(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    out
}

/// The SQLSTATE of the first ErrorResponse in `bytes`, if any.
pub fn first_error_code(bytes: &[u8]) -> Option<String> {
    let mut rest = bytes;
    while rest.len() >= 5 {
        let tag = rest[0];
        let len = i32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if len < 4 || rest.len() < len + 1 {
            return None;
        }
        let body = &rest[5..len + 1];
        if tag == b'E' {
            let mut fields = body.split(|&b| b == 0);
            return fields.find(|f| f.first() == Some(&b'C')).map(|f| String::from_utf8_lossy(&f[1..]).into_owned());
        }
        rest = &rest[len + 1..];
    }
    None
}

/// A StartupMessage (protocol 3.0) for `user` and `database`.
pub fn startup_packet(user: &str, database: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196608i32.to_be_bytes());
    for (k, v) in [("user", user), ("database", database)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// A raw, authenticated (trust) protocol session through `addr`, positioned after the first
/// ReadyForQuery.
pub async fn raw_session(addr: SocketAddr) -> tokio::net::TcpStream {
    raw_session_on(addr, "postgres").await
}

/// As `raw_session`, on database `db`.
pub async fn raw_session_on(addr: SocketAddr, db: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(&startup_packet(test_support::postgres().superuser(), db)).await.expect("startup");
    loop {
        let tag = s.read_u8().await.expect("startup reply");
        let len = s.read_i32().await.expect("len") as usize;
        let mut body = vec![0u8; len - 4];
        s.read_exact(&mut body).await.expect("body");
        assert_ne!(tag, b'E', "startup failed: {}", String::from_utf8_lossy(&body));
        if tag == b'Z' {
            return s;
        }
    }
}

/// Backends serving clients on `db`: not the asking one, nor the proxy's own catalog connection
/// (each database a client uses gets one, with its change probe).
pub async fn backends(db: &str) -> i64 {
    let c = test_support::connect(&direct_url("postgres")).await;
    c.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend' \
         AND application_name <> 'citus-proxy metadata'",
        &[&db],
    )
    .await
    .expect("count backends")
    .get(0)
}

/// Polls until `f` is true or `secs` pass.
pub async fn eventually<F, Fut>(secs: u64, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

// ---- Side-by-side helpers (protocol / types / copy / async_messages / scale / hooks tests) ----

/// The harness PostgreSQL's own address, for raw sessions straight to it.
pub fn pg_addr() -> SocketAddr {
    let pg = test_support::postgres();
    format!("{}:{}", pg.host(), pg.port()).parse().expect("harness PostgreSQL address")
}

/// A libpq connection string (for psql) straight to the harness's PostgreSQL.
pub fn direct_conninfo(db: &str) -> String {
    let pg = test_support::postgres();
    format!("host={} port={} user={} dbname={db} sslmode=disable", pg.host(), pg.port(), pg.superuser())
}

/// One backend message: its tag and body (header stripped).
pub type RawMsg = (u8, Vec<u8>);

/// Frontend message builders for raw sessions.
pub mod fe {
    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        out.extend_from_slice(body);
        out
    }
    fn cstr(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    pub fn query(sql: &str) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, sql);
        frame(b'Q', &b)
    }
    pub fn parse(name: &str, sql: &str, types: &[u32]) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, name);
        cstr(&mut b, sql);
        b.extend_from_slice(&(types.len() as i16).to_be_bytes());
        for t in types {
            b.extend_from_slice(&t.to_be_bytes());
        }
        frame(b'P', &b)
    }
    /// Bind with text-format parameters (None = NULL) and text results.
    pub fn bind(portal: &str, stmt: &str, params: &[Option<&str>]) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, portal);
        cstr(&mut b, stmt);
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(params.len() as i16).to_be_bytes());
        for p in params {
            match p {
                Some(v) => {
                    b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    b.extend_from_slice(v.as_bytes());
                }
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        b.extend_from_slice(&0i16.to_be_bytes());
        frame(b'B', &b)
    }
    pub fn describe(kind: u8, name: &str) -> Vec<u8> {
        let mut b = vec![kind];
        cstr(&mut b, name);
        frame(b'D', &b)
    }
    pub fn execute(portal: &str, max_rows: i32) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, portal);
        b.extend_from_slice(&max_rows.to_be_bytes());
        frame(b'E', &b)
    }
    pub fn close(kind: u8, name: &str) -> Vec<u8> {
        let mut b = vec![kind];
        cstr(&mut b, name);
        frame(b'C', &b)
    }
    pub fn sync() -> Vec<u8> {
        frame(b'S', &[])
    }
    pub fn flush() -> Vec<u8> {
        frame(b'H', &[])
    }
    pub fn terminate() -> Vec<u8> {
        frame(b'X', &[])
    }
    pub fn copy_data(data: &[u8]) -> Vec<u8> {
        frame(b'd', data)
    }
    pub fn copy_done() -> Vec<u8> {
        frame(b'c', &[])
    }
}

/// Reads backend messages until `readies` ReadyForQuery messages have arrived (10 s limit).
pub async fn read_until_ready(s: &mut tokio::net::TcpStream, readies: usize) -> Vec<RawMsg> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut seen = 0;
    let fut = async {
        while seen < readies {
            let tag = s.read_u8().await.expect("backend message");
            let len = s.read_i32().await.expect("length") as usize;
            let mut body = vec![0u8; len - 4];
            s.read_exact(&mut body).await.expect("body");
            if tag == b'Z' {
                seen += 1;
            }
            out.push((tag, body));
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), fut).await.unwrap_or_else(|_| panic!("no ReadyForQuery within 10 s"));
    out
}

/// Reads backend messages until the proxy closes the connection (10 s limit).
pub async fn read_until_closed(s: &mut tokio::net::TcpStream) -> Vec<RawMsg> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let fut = async {
        while let Ok(tag) = s.read_u8().await {
            let Ok(len) = s.read_i32().await else { break };
            let mut body = vec![0u8; (len as usize).saturating_sub(4)];
            if s.read_exact(&mut body).await.is_err() {
                break;
            }
            out.push((tag, body));
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), fut).await.unwrap_or_else(|_| panic!("not closed within 10 s"));
    out
}

/// Sends `bytes` on a fresh raw session to `addr` and returns everything up to the `readies`-th
/// ReadyForQuery.
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8], readies: usize) -> Vec<RawMsg> {
    use tokio::io::AsyncWriteExt;
    let mut s = raw_session(addr).await;
    s.write_all(bytes).await.expect("write");
    read_until_ready(&mut s, readies).await
}

/// The same raw exchange straight to PostgreSQL and through `proxy`; asserts both are identical
/// message for message and returns the direct one.
pub async fn same_raw_exchange(proxy: &Proxy, bytes: &[u8], readies: usize, what: &str) -> Vec<RawMsg> {
    let direct = raw_exchange(pg_addr(), bytes, readies).await;
    let via = raw_exchange(proxy.addr, bytes, readies).await;
    assert_eq!(tags(&direct), tags(&via), "{what}: message sequence differs (direct vs proxy)");
    assert_eq!(direct, via, "{what}: message bodies differ (direct vs proxy)");
    direct
}

/// Message tags as a string, e.g. "1t T2DCZ".
pub fn tags(msgs: &[RawMsg]) -> String {
    msgs.iter().map(|(t, _)| *t as char).collect()
}

/// What a connection driven by `connect_observed` saw outside of query results, in order, with
/// the test's own marks in between.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Notice { severity: String, code: String, message: String },
    Notification { pid: i32, channel: String, payload: String },
    Mark(String),
}

/// A client whose connection's asynchronous messages (notices, notifications) are recorded.
pub struct Observed {
    pub client: tokio_postgres::Client,
    pub seen: Arc<std::sync::Mutex<Vec<Seen>>>,
    conn: Arc<std::sync::Mutex<tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>>>,
}

impl Observed {
    /// A runtime parameter as last reported by ParameterStatus.
    pub fn parameter(&self, name: &str) -> Option<String> {
        self.conn.lock().unwrap().parameter(name).map(str::to_string)
    }
    pub fn mark(&self, m: &str) {
        self.seen.lock().unwrap().push(Seen::Mark(m.to_string()));
    }
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// Connects and drives the connection with `poll_message`, recording every AsyncMessage.
pub async fn connect_observed(url: &str) -> Observed {
    use tokio_postgres::AsyncMessage;
    let (client, conn) =
        tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    let conn = Arc::new(std::sync::Mutex::new(conn));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c2, s2) = (Arc::clone(&conn), Arc::clone(&seen));
    tokio::spawn(async move {
        loop {
            let next = std::future::poll_fn(|cx| c2.lock().unwrap().poll_message(cx)).await;
            match next {
                Some(Ok(AsyncMessage::Notice(n))) => s2.lock().unwrap().push(Seen::Notice {
                    severity: n.severity().to_string(),
                    code: n.code().code().to_string(),
                    message: n.message().to_string(),
                }),
                Some(Ok(AsyncMessage::Notification(n))) => s2.lock().unwrap().push(Seen::Notification {
                    pid: n.process_id(),
                    channel: n.channel().to_string(),
                    payload: n.payload().to_string(),
                }),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
    });
    Observed { client, seen, conn }
}

/// True once no backend with `pid` is left in pg_stat_activity (polls up to `secs`).
pub async fn backend_gone(pid: i32, secs: u64) -> bool {
    let c = test_support::connect(&direct_url("postgres")).await;
    eventually(secs, || {
        let c = &c;
        async move {
            let n: i64 =
                c.query_one("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", &[&pid]).await.expect("pg_stat_activity").get(0);
            n == 0
        }
    })
    .await
}

/// Runs `f` on a private runtime in its own thread (set-up shared by the tests of one binary).
pub fn block_on_thread<F, T>(fut: F) -> T
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    std::thread::spawn(move || tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(fut))
        .join()
        .expect("set-up thread panicked")
}

/// A database of the test's own: a private copy of the Citus fixture (tests that write), or the
/// real coordinator's database when one is named. Returns its URL and name.
pub fn database(name: &str) -> (String, String) {
    let citus = test_support::citus();
    let url = if citus.is_real() { citus.url().to_string() } else { citus.private_copy(name) };
    let db = url.rsplit('/').next().unwrap_or(name).split('?').next().unwrap_or(name).to_string();
    (url, db)
}

/// A proxy in front of `database(name)`, with its metadata loaded.
pub async fn proxy_for(name: &str, settings: &[(&'static str, &str)]) -> (Proxy, String, String) {
    let (url, db) = database(name);
    let proxy = Proxy::start_on(&url, settings).await;
    (proxy, url, db)
}

pub fn stats(p: &Proxy) -> citus_proxy_cache::CacheStats {
    p.ctx.cache.as_ref().expect("the cache is on by default").stats()
}

pub fn hits(p: &Proxy) -> u64 {
    let s = stats(p);
    s.hits_memory + s.hits_redis
}
