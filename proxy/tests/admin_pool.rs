//! The admin console's pooling commands (PgBouncer's): SHOW POOLS / DATABASES / SERVERS /
//! CLIENTS / VERSION, PAUSE / RESUME, KILL, RECONNECT, SHUTDOWN, and RELOAD of the pool sizes,
//! through a real in-process proxy in front of the harness's PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{backend_gone, eventually, Proxy};
use tokio_postgres::SimpleQueryMessage;

type Row = HashMap<String, Option<String>>;

/// Rows as column name → value.
fn rows(msgs: &[SimpleQueryMessage]) -> Vec<Row> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some(r.columns().iter().enumerate().map(|(i, c)| (c.name().to_string(), r.get(i).map(str::to_string))).collect())
            }
            _ => None,
        })
        .collect()
}

fn col<'a>(r: &'a Row, c: &str) -> &'a str {
    r.get(c).unwrap_or_else(|| panic!("no column {c} in {r:?}")).as_deref().unwrap_or("")
}

async fn show(admin: &tokio_postgres::Client, what: &str) -> Vec<Row> {
    rows(&admin.simple_query(what).await.unwrap_or_else(|e| panic!("{what}: {e}")))
}

/// A client and the task driving its connection (which ends with the server's FATAL, if any).
async fn client(url: &str) -> (tokio_postgres::Client, tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>) {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
    (c, tokio::spawn(conn))
}

async fn connect(url: &str) -> tokio_postgres::Client {
    client(url).await.0
}

fn superuser() -> &'static str {
    test_support::postgres().superuser()
}

/// A transaction-mode proxy (trust authentication, no routing) whose console admits the harness superuser.
async fn pooled(size: &str, extra: &[(&'static str, &str)]) -> Proxy {
    let mut s: Vec<(&'static str, &str)> = vec![
        ("pool.mode", "transaction"),
        ("pool.size", size),
        ("auth.type", "trust"),
        ("routing.enabled", "false"),
        ("admin.users", superuser()),
    ];
    s.extend_from_slice(extra);
    Proxy::start(&s).await
}

fn with_app(url: &str, app: &str) -> String {
    format!("{url}&application_name={app}")
}

async fn pid(c: &tokio_postgres::Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[]).await.expect("pg_backend_pid").get(0)
}

/// The SQLSTATE a connection task ended with.
async fn ended_with(h: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>) -> Option<String> {
    let r = tokio::time::timeout(Duration::from_secs(10), h).await.expect("the connection ended").expect("join");
    r.err().and_then(|e| e.as_db_error().map(|d| d.code().code().to_string()))
}

#[tokio::test]
async fn show_commands_report_the_pools_as_they_are() {
    // Size 2: whatever the timing of b's checkin, c cannot open a third connection.
    let p = pooled("2", &[]).await;
    let url = p.url("postgres");
    let a = connect(&with_app(&url, "app-a")).await;
    let b = connect(&with_app(&url, "app-b")).await;
    let c = connect(&with_app(&url, "app-c")).await;
    // a holds a server connection (open transaction); b then c run one statement each, one after
    // the other: b opens the second connection, c reuses it.
    a.batch_execute("BEGIN").await.unwrap();
    let a_pid = pid(&a).await;
    b.batch_execute("SELECT 1").await.unwrap();
    c.batch_execute("SELECT 1").await.unwrap();

    let admin = connect(&p.url("citus_proxy")).await;
    let pools = show(&admin, "SHOW POOLS").await;
    assert_eq!(pools.len(), 1, "{pools:?}");
    let pool = &pools[0];
    assert_eq!((col(pool, "database"), col(pool, "user")), ("postgres", superuser()));
    assert_eq!(col(pool, "cl_active"), "3", "{pool:?}");
    assert_eq!(col(pool, "cl_waiting"), "0");
    assert_eq!(col(pool, "sv_active"), "1", "only a's open transaction holds a server connection: {pool:?}");
    assert_eq!(col(pool, "sv_idle"), "1", "{pool:?}");
    assert_eq!(col(pool, "sv_used"), "0");
    assert_eq!(col(pool, "sv_login"), "0");
    assert_eq!((col(pool, "maxwait"), col(pool, "maxwait_us")), ("0", "0"));
    assert_eq!(col(pool, "pool_mode"), "transaction");

    let clients = show(&admin, "SHOW CLIENTS").await;
    assert_eq!(clients.len(), 3, "{clients:?}");
    let of = |app: &str| clients.iter().find(|r| col(r, "application_name") == app).unwrap_or_else(|| panic!("{app}: {clients:?}")).clone();
    let ca = of("app-a");
    assert_eq!(col(&ca, "state"), "idle in transaction");
    assert_eq!((col(&ca, "wait"), col(&ca, "wait_us"), col(&ca, "pinned")), ("0", "0", "false"));
    assert_eq!(col(&of("app-b"), "state"), "idle");

    let servers = show(&admin, "SHOW SERVERS").await;
    assert_eq!(servers.len(), 2, "{servers:?}");
    let busy = servers.iter().find(|r| col(r, "state") == "active").expect("an active server connection");
    assert_eq!(col(busy, "remote_pid"), a_pid.to_string());
    assert_eq!(col(busy, "client_id"), col(&ca, "id"), "the active connection serves a");
    assert_eq!(col(busy, "port"), test_support::postgres().port().to_string());
    assert!(humantime::parse_rfc3339(col(busy, "connect_time")).is_ok(), "{busy:?}");
    let idle = servers.iter().find(|r| col(r, "state") == "idle").expect("an idle server connection");
    assert_eq!(col(idle, "client_id"), "", "an idle connection serves nobody");
    assert_eq!(col(idle, "checkouts"), "2", "b then c: {idle:?}");

    let dbs = show(&admin, "SHOW DATABASES").await;
    assert_eq!(dbs.len(), 1, "{dbs:?}");
    let db = &dbs[0];
    assert_eq!((col(db, "name"), col(db, "database")), ("postgres", "postgres"));
    assert_eq!(col(db, "host"), test_support::postgres().host());
    assert_eq!(col(db, "port"), test_support::postgres().port().to_string());
    assert_eq!((col(db, "pool_size"), col(db, "min_pool_size"), col(db, "max_connections")), ("2", "0", "0"));
    assert_eq!((col(db, "current_connections"), col(db, "paused"), col(db, "pool_mode")), ("2", "0", "transaction"));

    let version = show(&admin, "SHOW VERSION").await;
    assert_eq!(col(&version[0], "version"), concat!("citus-proxy ", env!("CARGO_PKG_VERSION")));

    a.batch_execute("COMMIT").await.unwrap();
    drop((b, c));
    p.stop().await;
}

#[tokio::test]
async fn a_client_waiting_for_the_pool_is_shown_waiting() {
    let p = pooled("1", &[]).await;
    let url = p.url("postgres");
    let a = connect(&url).await;
    let b = connect(&with_app(&url, "queued")).await;
    a.batch_execute("BEGIN").await.unwrap();
    let queued = tokio::spawn(async move { b.simple_query("SELECT 7").await.map(|_| ()) });
    let admin = connect(&p.url("citus_proxy")).await;
    let waiting = eventually(10, || {
        let admin = &admin;
        async move { show(admin, "SHOW POOLS").await.first().is_some_and(|r| col(r, "cl_waiting") == "1") }
    })
    .await;
    assert!(waiting, "b queued behind a: {:?}", show(&admin, "SHOW POOLS").await);
    let pool = show(&admin, "SHOW POOLS").await.remove(0);
    assert_eq!((col(&pool, "cl_active"), col(&pool, "sv_active")), ("1", "1"), "{pool:?}");
    let clients = show(&admin, "SHOW CLIENTS").await;
    let q = clients.iter().find(|r| col(r, "application_name") == "queued").expect("queued client");
    assert_eq!(col(q, "state"), "waiting", "{q:?}");
    a.batch_execute("COMMIT").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), queued).await.expect("served after COMMIT").unwrap().expect("no error");
    p.stop().await;
}

/// PAUSE waits for the server connections in use to come back, then holds new transactions
/// (no error, only delay) until RESUME; past `shutdown.timeout` it fails and stays paused.
#[tokio::test]
async fn pause_holds_new_transactions_until_resume() {
    let p = pooled("2", &[("shutdown.timeout", "2s")]).await;
    let url = p.url("postgres");
    let a = connect(&url).await;
    let b = connect(&url).await;
    let admin = connect(&p.url("citus_proxy")).await;

    // An open transaction that does not end: PAUSE gives up after shutdown.timeout.
    a.batch_execute("BEGIN").await.unwrap();
    let err = admin.simple_query("PAUSE").await.expect_err("a still holds a connection");
    assert_eq!(err.as_db_error().map(|d| d.code().code()), Some("57014"), "{err:?}");
    assert_eq!(col(&show(&admin, "SHOW DATABASES").await[0], "paused"), "1", "still paused after the timeout");
    assert!(admin.simple_query("RESUME").await.is_ok());

    // PAUSE returns once a's transaction ends, and not before.
    let pauser = connect(&p.url("citus_proxy")).await;
    let pause = tokio::spawn(async move { pauser.simple_query("PAUSE").await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pause.is_finished(), "PAUSE returned while a transaction held a server connection");
    a.batch_execute("SELECT 1; COMMIT").await.expect("the open transaction goes on during PAUSE");
    tokio::time::timeout(Duration::from_secs(5), pause).await.expect("PAUSE returns").unwrap().expect("PAUSE succeeds");

    // New transactions wait, without an error, until RESUME.
    let held = tokio::spawn(async move {
        let r = b.query_one("SELECT 42", &[]).await.map(|r| r.get::<_, i32>(0));
        (b, r)
    });
    let waiting = eventually(10, || {
        let admin = &admin;
        async move { show(admin, "SHOW POOLS").await.first().is_some_and(|r| col(r, "cl_waiting") == "1") }
    })
    .await;
    assert!(waiting, "b waits while paused: {:?}", show(&admin, "SHOW POOLS").await);
    assert!(!held.is_finished());
    admin.simple_query("RESUME").await.expect("RESUME");
    let (_b, r) = tokio::time::timeout(Duration::from_secs(10), held).await.expect("served after RESUME").unwrap();
    assert_eq!(r.expect("no error for the held client"), 42);
    assert_eq!(col(&show(&admin, "SHOW DATABASES").await[0], "paused"), "0");
    p.stop().await;
}

/// KILL db: its clients end with FATAL 57P01 and their server connections close; another
/// database's clients are untouched.
#[tokio::test]
async fn kill_ends_the_clients_of_one_database() {
    let other = format!("admin_pool_kill_{}", std::process::id());
    test_support::postgres().fresh_database(&other);
    let p = pooled("5", &[]).await;
    let (in_tx, in_tx_conn) = client(&p.url(&other)).await;
    let (idle, idle_conn) = client(&p.url(&other)).await;
    let (keep, _keep_conn) = client(&p.url("postgres")).await;
    in_tx.batch_execute("BEGIN").await.unwrap();
    let tx_pid = pid(&in_tx).await;
    idle.batch_execute("SELECT 1").await.unwrap();
    let keep_pid = pid(&keep).await;

    let admin = connect(&p.url("citus_proxy")).await;
    let err = admin.simple_query("KILL no_such_db").await.expect_err("unknown database");
    assert_eq!(err.as_db_error().map(|d| d.code().code()), Some("3D000"));
    admin.simple_query(&format!("KILL {other}")).await.expect("KILL");
    assert_eq!(ended_with(in_tx_conn).await.as_deref(), Some("57P01"));
    assert_eq!(ended_with(idle_conn).await.as_deref(), Some("57P01"));
    assert!(backend_gone(tx_pid, 10).await, "the killed transaction's server connection is closed");
    let servers = show(&admin, "SHOW SERVERS").await;
    assert!(servers.iter().all(|r| col(r, "database") != other), "{servers:?}");
    assert_eq!(pid(&keep).await, keep_pid, "the other database's client and connection are untouched");
    assert_eq!(show(&admin, "SHOW CLIENTS").await.len(), 1);
    p.stop().await;
}

/// With pool.mode = off, KILL ends the relayed sessions the same way.
#[tokio::test]
async fn kill_without_pooling_ends_relayed_sessions() {
    let p = Proxy::start(&[("routing.enabled", "false"), ("admin.users", superuser())]).await;
    let (c, conn) = client(&p.url("postgres")).await;
    let backend = pid(&c).await;
    let admin = connect(&p.url("citus_proxy")).await;
    let pools = show(&admin, "SHOW POOLS").await;
    assert_eq!((col(&pools[0], "cl_active"), col(&pools[0], "sv_active"), col(&pools[0], "pool_mode")), ("1", "1", "off"));
    let err = admin.simple_query("PAUSE").await.expect_err("nothing to pause");
    assert_eq!(err.as_db_error().map(|d| d.code().code()), Some("0A000"));
    admin.simple_query("KILL postgres").await.expect("KILL");
    assert_eq!(ended_with(conn).await.as_deref(), Some("57P01"));
    assert!(backend_gone(backend, 10).await, "the coordinator connection is closed");
    p.stop().await;
}

/// RECONNECT [db]: idle connections close now, busy ones when given back; the next
/// transactions get new backends. Another database's connections stay.
#[tokio::test]
async fn reconnect_brings_new_backends() {
    let other = format!("admin_pool_reconnect_{}", std::process::id());
    test_support::postgres().fresh_database(&other);
    let p = pooled("2", &[]).await;
    let a = connect(&p.url("postgres")).await;
    let o = connect(&p.url(&other)).await;
    let admin = connect(&p.url("citus_proxy")).await;

    let idle_pid = pid(&a).await;
    let other_pid = pid(&o).await;
    admin.simple_query("RECONNECT postgres").await.expect("RECONNECT postgres");
    assert!(backend_gone(idle_pid, 10).await, "the idle connection was closed at once");
    let fresh = pid(&a).await;
    assert_ne!(fresh, idle_pid);
    assert_eq!(pid(&o).await, other_pid, "RECONNECT of one database leaves the others alone");

    // A busy connection finishes its transaction, then is closed rather than reused.
    a.batch_execute("BEGIN").await.unwrap();
    let busy = pid(&a).await;
    admin.simple_query("RECONNECT").await.expect("RECONNECT");
    assert_eq!(pid(&a).await, busy, "the open transaction keeps its connection");
    a.batch_execute("COMMIT").await.unwrap();
    assert_ne!(pid(&a).await, busy);
    assert!(backend_gone(busy, 10).await);
    assert_ne!(pid(&o).await, other_pid, "RECONNECT without a database covers every pool");
    p.stop().await;
}

/// SHUTDOWN drains as SIGTERM: no new clients, an open transaction finishes, then every
/// client gets 57P01 and the proxy stops.
#[tokio::test]
async fn shutdown_drains() {
    let p = pooled("2", &[("shutdown.timeout", "30s")]).await;
    let (a, a_conn) = client(&p.url("postgres")).await;
    a.batch_execute("BEGIN").await.unwrap();
    let (admin, admin_conn) = client(&p.url("citus_proxy")).await;
    admin.simple_query("SHUTDOWN").await.expect("SHUTDOWN answers before the console closes");
    assert_eq!(ended_with(admin_conn).await.as_deref(), Some("57P01"));
    assert!(tokio_postgres::connect(&p.url("postgres"), tokio_postgres::NoTls).await.is_err(), "no new clients while draining");
    assert!(!p.task.is_finished(), "the open transaction holds the drain");
    a.batch_execute("SELECT 1").await.expect("the open transaction is still served");
    a.batch_execute("COMMIT").await.expect("the transaction ends normally");
    assert_eq!(ended_with(a_conn).await.as_deref(), Some("57P01"));
    tokio::time::timeout(Duration::from_secs(10), p.task).await.expect("the proxy stopped").expect("join");
}

/// A RELOAD that changes pool.size applies to the running pools: with size 1 a second
/// transaction waits; after RELOAD to 2 it gets its own connection while the first still runs.
#[tokio::test]
async fn reload_resizes_pools_live() {
    use citus_proxy::config::{self, Overrides};
    use citus_proxy::context::{ConfigSource, Context};
    use std::sync::Arc;

    let pg = test_support::postgres();
    let dir = std::env::temp_dir().join(format!("citus-proxy-admin-pool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("proxy.toml");
    let write = |size: u32| {
        let text = format!(
            "[upstream]\nurl = \"postgres://{}@{}\"\nsslmode = \"disable\"\n[metrics]\nlisten = \"off\"\n[routing]\nenabled = false\n\
             [pool]\nmode = \"transaction\"\nsize = {size}\n[auth]\ntype = \"trust\"\n[admin]\nusers = \"{}\"\n",
            pg.superuser(),
            pg.addr(),
            pg.superuser()
        );
        std::fs::write(&file, text).expect("write config");
    };
    write(1);
    let source = ConfigSource { file: Some(file.clone()), overrides: Overrides::default() };
    let cfg = config::load(Some(&file), &source.overrides, |_| None).expect("valid config");
    let ctx = Arc::new(Context::new(cfg).expect("context").with_source(source));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let shutdown = citus_proxy::shutdown::Shutdown::default();
    let sd = shutdown.clone();
    let run_ctx = Arc::clone(&ctx);
    let task = tokio::spawn(async move { citus_proxy::server::run(listener, run_ctx, &sd).await });
    let url = |db: &str| format!("postgres://{}@127.0.0.1:{port}/{db}?sslmode=disable", pg.superuser());

    let a = connect(&url("postgres")).await;
    let b = connect(&url("postgres")).await;
    let admin = connect(&url("citus_proxy")).await;
    a.batch_execute("BEGIN").await.unwrap();
    let second = tokio::spawn(async move {
        let r = b.batch_execute("BEGIN").await;
        (b, r)
    });
    let queued = eventually(10, || {
        let admin = &admin;
        async move { show(admin, "SHOW POOLS").await.first().is_some_and(|r| col(r, "cl_waiting") == "1") }
    })
    .await;
    assert!(queued, "pool.size 1: the second transaction waits");

    write(2);
    let reload = show(&admin, "RELOAD").await;
    let config_row = reload.iter().find(|r| col(r, "item") == "config").map(|r| col(r, "result").to_string()).unwrap_or_default();
    assert!(config_row.contains("applied: pool.size"), "{config_row}");
    let (b, r) = tokio::time::timeout(Duration::from_secs(10), second).await.expect("served after RELOAD").unwrap();
    r.expect("BEGIN on a second connection");
    let pool = show(&admin, "SHOW POOLS").await.remove(0);
    assert_eq!((col(&pool, "sv_active"), col(&pool, "cl_waiting")), ("2", "0"), "two transactions at once: {pool:?}");
    assert_eq!(col(&show(&admin, "SHOW DATABASES").await[0], "pool_size"), "2");
    assert_ne!(pid(&a).await, pid(&b).await);
    a.batch_execute("COMMIT").await.unwrap();
    b.batch_execute("COMMIT").await.unwrap();
    drop(admin);
    shutdown.close_now();
    let _ = task.await;
}
