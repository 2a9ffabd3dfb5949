use std::path::PathBuf;

const PG_HINT: &str = "install PostgreSQL 15's server with `apt-get update && apt-get install -y postgresql-15` \
     (or run `.ci/run`), set CITUS_PROXY_PG_BIN to its bin directory, or name a running server with \
     CITUS_PROXY_TEST_PG=postgres://USER@HOST:PORT";

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
pub(crate) fn pg_bin_dir() -> PathBuf {
    let candidates = std::env::var_os("CITUS_PROXY_PG_BIN")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"].map(PathBuf::from));
    for dir in candidates {
        if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
            return dir;
        }
    }
    panic!("test harness: no PostgreSQL server binaries (initdb, pg_ctl) found: {PG_HINT}");
}

/// `redis-server` on PATH.
pub(crate) fn redis_server() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/bin", "/usr/local/bin"]) {
        let p = PathBuf::from(dir).join("redis-server");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "test harness: redis-server not found: install it with `apt-get update && apt-get install -y redis-server` \
         (or run `.ci/run`), or name a running server with CITUS_PROXY_TEST_REDIS=redis://HOST:PORT"
    );
}

/// True when this process runs as root: initdb and pg_ctl refuse root, so they run as `postgres`.
pub(crate) fn running_as_root() -> bool {
    std::process::Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}
