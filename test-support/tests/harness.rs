//! The harness itself: each server starts, answers, and the fixture holds the dumped catalog.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

#[tokio::test]
async fn postgres_starts_and_has_auth_roles() {
    let pg = test_support::postgres();
    let c = test_support::connect(&pg.url("postgres")).await;
    let n: i64 = c.query_one("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'cp\\_%'", &[]).await.expect("query roles").get(0);
    assert_eq!(n, test_support::AUTH_USERS.len() as i64);
}

#[tokio::test]
async fn citus_fixture_presents_the_catalog() {
    let cluster = test_support::citus();
    let c = test_support::connect(cluster.url()).await;
    let shards: i64 =
        c.query_one("SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'users'::regclass", &[]).await.expect("count shards").get(0);
    assert_eq!(shards, 32);
    let users: i64 = c.query_one("SELECT count(*) FROM users", &[]).await.expect("count users").get(0);
    assert_eq!(users, 5000);
}

#[test]
fn redis_starts_restarts_and_answers() {
    use std::io::{Read, Write};
    let r = test_support::RedisServer::start();
    let ping = |port: u16| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect redis");
        s.write_all(b"PING\r\n").expect("write");
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).expect("read");
        buf
    };
    assert_eq!(&ping(r.port()), b"+PONG\r\n");
    r.stop();
    assert!(std::net::TcpStream::connect(("127.0.0.1", r.port())).is_err());
    r.start_again();
    assert_eq!(&ping(r.port()), b"+PONG\r\n");
}
