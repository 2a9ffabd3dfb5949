//! Shared by the proxy's integration tests: an in-process proxy on 127.0.0.1:0 in front of the
//! harness's real PostgreSQL (or CITUS_PROXY_TEST_PG), and client helpers.
#![allow(dead_code)]

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
}

impl Proxy {
    /// A proxy in front of the harness's PostgreSQL, with extra `key = value` settings.
    pub async fn start(settings: &[(&'static str, &str)]) -> Proxy {
        Self::start_with(settings, None).await
    }

    pub async fn start_with(settings: &[(&'static str, &str)], hooks: Option<Arc<dyn HooksFactory>>) -> Proxy {
        let pg = test_support::postgres();
        let mut o = Overrides::default();
        o.flags.insert("upstream.url", format!("postgres://{}", pg.addr()));
        o.flags.insert("upstream.sslmode", "disable".into());
        for (k, v) in settings {
            o.flags.insert(k, v.to_string());
        }
        let cfg = config::load(None, &o, |_| None).expect("test config is valid");
        let mut ctx = Context::new(cfg).expect("context");
        if let Some(h) = hooks {
            ctx = ctx.with_hooks(h);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = Shutdown::default();
        let sd = shutdown.clone();
        let task = tokio::spawn(async move { citus_proxy::server::run(listener, Arc::new(ctx), &sd).await });
        Proxy { addr, shutdown, task }
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
        format!(
            "host=127.0.0.1 port={} user={} dbname={db} sslmode=disable",
            self.addr.port(),
            test_support::postgres().superuser()
        )
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
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(&startup_packet(test_support::postgres().superuser(), "postgres")).await.expect("startup");
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

/// Backends connected to `db` other than the asking one.
pub async fn backends(db: &str) -> i64 {
    let c = test_support::connect(&direct_url("postgres")).await;
    c.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
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
