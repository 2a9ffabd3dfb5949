//! Real `redis-server` instances: one shared per test binary (or `CITUS_PROXY_TEST_REDIS`), and
//! private ones a test may stop and restart (to prove the cache fails open).

use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::binaries::redis_server;
use crate::reaper::stop_when_this_process_exits;

#[derive(Debug)]
pub struct RedisServer {
    host: String,
    port: u16,
    /// The running child, when the harness started this server.
    child: Mutex<Option<Child>>,
    external: bool,
}

static SHARED: OnceLock<RedisServer> = OnceLock::new();

/// The shared Redis server of this test binary.
pub fn redis() -> &'static RedisServer {
    SHARED.get_or_init(|| match std::env::var("CITUS_PROXY_TEST_REDIS") {
        Ok(url) if !url.is_empty() => RedisServer::external(&url),
        _ => RedisServer::start(),
    })
}

impl RedisServer {
    /// Starts a private server on a free port; it stops when dropped or when the process exits.
    pub fn start() -> RedisServer {
        let port = crate::free_port();
        let server = RedisServer { host: "127.0.0.1".into(), port, child: Mutex::new(None), external: false };
        server.start_again();
        server
    }

    fn external(url: &str) -> RedisServer {
        let rest = url.trim_start_matches("redis://");
        let hostport = rest.split('/').next().unwrap_or(rest);
        let (host, port) = hostport
            .rsplit_once(':')
            .and_then(|(h, p)| p.parse().ok().map(|p| (h.to_string(), p)))
            .unwrap_or_else(|| panic!("CITUS_PROXY_TEST_REDIS={url} must look like redis://HOST:PORT"));
        RedisServer { host, port, child: Mutex::new(None), external: true }
    }

    pub fn url(&self) -> String {
        format!("redis://{}:{}", self.host, self.port)
    }
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (as a crash would) without removing it; `start_again` brings it back on the same port.
    pub fn stop(&self) {
        assert!(!self.external, "test harness: an external Redis cannot be stopped by a test");
        let mut guard = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut child) = guard.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts the server on its port and waits until it accepts connections.
    pub fn start_again(&self) {
        assert!(!self.external, "test harness: an external Redis cannot be restarted by a test");
        let child = Command::new(redis_server())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "no", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("test harness: cannot start redis-server: {e}"));
        stop_when_this_process_exits(&format!("kill -9 {} 2>/dev/null", child.id()));
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "test harness: redis-server did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.child.lock() {
            if let Some(mut child) = guard.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
