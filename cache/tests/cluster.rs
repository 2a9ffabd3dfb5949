//! The Redis tier against a real three-node Redis Cluster (started here: the shared harness
//! only starts single servers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use citus_proxy_cache::*;
use common::{config, parts, read, read_through, users};

struct Cluster {
    ports: Vec<u16>,
    children: Vec<Child>,
    dir: std::path::PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn cmd<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> T {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("client");
    let mut con = client.get_multiplexed_async_connection().await.expect("connect");
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query_async(&mut con).await.unwrap_or_else(|e| panic!("{args:?} on {port}: {e}"))
}

async fn start_cluster(n: usize) -> Cluster {
    let dir = std::env::temp_dir().join(format!("cache-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut cluster = Cluster { ports: Vec::new(), children: Vec::new(), dir: dir.clone() };
    for _ in 0..n {
        let port = test_support::free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "no", "--loglevel", "warning", "--cluster-enabled", "yes"])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (install redis-server)");
        cluster.ports.push(port);
        cluster.children.push(child);
    }
    for &port in &cluster.ports {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "cluster node {port} did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    for (i, &port) in cluster.ports.iter().enumerate() {
        let (from, to) = (i * 16384 / n, (i + 1) * 16384 / n - 1);
        let _: () = cmd(port, &["CLUSTER", "ADDSLOTSRANGE", &from.to_string(), &to.to_string()]).await;
    }
    for &port in &cluster.ports[1..] {
        let _: () = cmd(cluster.ports[0], &["CLUSTER", "MEET", "127.0.0.1", &port.to_string()]).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for &port in &cluster.ports {
        loop {
            let info: String = cmd(port, &["CLUSTER", "INFO"]).await;
            if info.contains("cluster_state:ok") && info.contains(&format!("cluster_known_nodes:{n}")) {
                break;
            }
            assert!(Instant::now() < deadline, "cluster did not converge: {info}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_on_a_redis_cluster() {
    let cluster = start_cluster(3).await;
    let urls: Vec<String> = cluster.ports.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect();
    // A generous time limit: on a busy machine a 20 ms store or lookup that times out is a
    // fail-open miss, which this test would take for a routing failure.
    let cfg = CacheConfig { redis_timeout: Duration::from_millis(500), ..config(Some(urls.join(",")), "cluster") };
    assert!(cfg.is_cluster());
    let (a, b) = (common::cache(&cfg), common::cache(&cfg));
    assert!(a.wait_ready(Duration::from_secs(10)).await && b.wait_ready(Duration::from_secs(10)).await);

    // Many keys: they spread over the nodes' slots, and travel between instances.
    for i in 0..30 {
        let p = parts(&format!("SELECT {i} FROM users"));
        assert_eq!(read_through(&a, &read(Some(1)), &p, || format!("v{i}")).await, (format!("v{i}"), false));
        match b.lookup(&read(Some(1)), &p).await {
            Lookup::Hit { entry, tier: Tier::Redis } => assert_eq!(common::payload(entry.bytes()), format!("v{i}")),
            other => panic!("entry {i}: expected a redis hit, got {other:?}"),
        }
    }
    let mut nodes_with_keys = 0;
    for &port in &cluster.ports {
        let n: i64 = cmd(port, &["DBSIZE"]).await;
        nodes_with_keys += usize::from(n > 0);
    }
    assert!(nodes_with_keys >= 2, "entries should spread over the cluster");

    // Invalidation through one instance is seen by the other at once.
    let p = parts("SELECT 0 FROM users");
    a.invalidate(&WriteScope::shard(users(), 1)).await;
    assert_eq!(read_through(&b, &read(Some(1)), &p, || "after".into()).await, ("after".into(), false));
    assert_eq!(read_through(&a, &read(Some(1)), &p, || "later".into()).await, ("after".into(), true));
    assert_eq!(read_through(&b, &read(Some(2)), &p, || "two".into()).await, ("two".into(), false));
    b.flush().await;
    assert_eq!(read_through(&a, &read(Some(2)), &p, || "flushed".into()).await, ("flushed".into(), false));
    assert_eq!(a.stats().redis_breaker, Some("closed"));
}
