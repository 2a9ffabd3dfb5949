//! Real `redis-server` instances: one shared per test binary (or `CITUS_PROXY_TEST_REDIS`), and
//! private ones a test may stop and restart (to prove the cache fails open), or roll back to an
//! older snapshot of their data (to prove the cache notices).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
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
    /// The private server's working directory (None for an external one).
    data_dir: Option<PathBuf>,
    /// Started by [`RedisServer::start_persistent`]: `dump.rdb` is kept across restarts.
    keeps_snapshots: bool,
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
        RedisServer::start_in_own_dir(false)
    }

    /// Starts a private server that keeps its data in an RDB file of its own directory, loaded
    /// again by every `start_again`. It never snapshots by itself: only [`RedisServer::save`]
    /// writes the file, so a restart brings back exactly the state of the last `save` (as a
    /// server restarted from an older snapshot would). `DEBUG` is enabled for loopback clients,
    /// for `DEBUG RELOAD NOSAVE` (a rollback without a restart).
    pub fn start_persistent() -> RedisServer {
        RedisServer::start_in_own_dir(true)
    }

    /// Every private server runs in a directory of its own: a replica writes the RDB it
    /// receives there, and a server loads any `dump.rdb` it finds there at start-up, so a
    /// shared directory would hand one test's data to the next.
    fn start_in_own_dir(keeps_snapshots: bool) -> RedisServer {
        let port = crate::free_port();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("citus-proxy-redis-{}-{port}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("test harness: cannot create {}: {e}", dir.display()));
        stop_when_this_process_exits(&format!("rm -rf {}", crate::reaper::sh_quote(&dir.to_string_lossy())));
        let server =
            RedisServer { host: "127.0.0.1".into(), port, child: Mutex::new(None), external: false, data_dir: Some(dir), keeps_snapshots };
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
        RedisServer { host, port, child: Mutex::new(None), external: true, data_dir: None, keeps_snapshots: false }
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
        let mut command = Command::new(redis_server());
        command.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]).args([
            "--protected-mode",
            "no",
            "--loglevel",
            "warning",
        ]);
        if let Some(dir) = &self.data_dir {
            command.arg("--dir").arg(dir).args(["--dbfilename", "dump.rdb"]);
            if !self.keeps_snapshots {
                // Killed and restarted empty, even if it wrote an RDB meanwhile (as a replica does).
                let _ = std::fs::remove_file(dir.join("dump.rdb"));
            }
        }
        if self.keeps_snapshots {
            command.args(["--enable-debug-command", "local"]);
        }
        let child = command
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

    /// Sends one command (RESP over a plain TCP connection) and returns the first line of the
    /// reply, e.g. `+OK`; empty when the server closed the connection without answering.
    pub fn command(&self, args: &[&str]) -> String {
        let mut stream = std::net::TcpStream::connect((self.host.as_str(), self.port))
            .unwrap_or_else(|e| panic!("test harness: cannot connect to redis at {}: {e}", self.url()));
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(request.as_bytes()).unwrap_or_else(|e| panic!("test harness: cannot send {args:?} to redis: {e}"));
        let mut line = String::new();
        let _ = BufReader::new(stream).read_line(&mut line);
        line.trim_end().to_string()
    }

    /// Writes the RDB snapshot now (`SAVE`); a later `start_again` or `DEBUG RELOAD NOSAVE`
    /// goes back to it.
    pub fn save(&self) {
        assert!(self.keeps_snapshots, "test harness: only a server from start_persistent keeps snapshots");
        let reply = self.command(&["SAVE"]);
        assert_eq!(reply, "+OK", "test harness: redis SAVE failed");
    }

    /// Restarts the server from its last snapshot, losing everything written since
    /// (`SHUTDOWN NOSAVE`, then a new process that loads the old `dump.rdb`).
    pub fn restart_from_snapshot(&self) {
        assert!(self.keeps_snapshots, "test harness: only a server from start_persistent keeps snapshots");
        // SHUTDOWN answers nothing when it succeeds: it closes the connection and exits.
        let _ = self.command(&["SHUTDOWN", "NOSAVE"]);
        if let Some(mut child) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = child.wait();
        }
        self.start_again();
    }

    /// Replaces the data with the last snapshot without restarting: the same process, the same
    /// run id, and clients stay connected (`DEBUG RELOAD NOSAVE`).
    pub fn reload_snapshot(&self) {
        assert!(self.keeps_snapshots, "test harness: only a server from start_persistent keeps snapshots");
        let reply = self.command(&["DEBUG", "RELOAD", "NOSAVE"]);
        assert_eq!(reply, "+OK", "test harness: redis DEBUG RELOAD NOSAVE failed");
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
