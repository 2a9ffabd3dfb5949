//! Transaction pooling must never let one client see another's state or results: many clients
//! over few server connections, named prepared statements from many processes, and cancels that
//! must reach only their client. Session state (SET, LISTEN, temporary tables, advisory locks):
//! pooling_session_state.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::pool::{code, connect, direct, pid, pooled_with, simple_value, within};
use futures_util::future::join_all;
use tokio_postgres::NoTls;

// ---- 3. Isolation checker ----

const CLIENTS: usize = 500;
const ROUNDS: usize = 6;

/// 500 clients over 10 server connections, each in a loop of transactions that set a marker of
/// their own, read it back with their own row, and bump their own counter: every answer must be
/// the client's own.
async fn isolation_checker(routed: bool) {
    let table = if routed { "iso_rows_routed" } else { "iso_rows" };
    let d = direct().await;
    d.batch_execute(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int primary key, v text, n int not null default 0); \
         INSERT INTO {table} (id, v) SELECT g, 'row-' || g FROM generate_series(0, {}) g",
        CLIENTS - 1
    ))
    .await
    .unwrap();
    let p = pooled_with(
        "transaction",
        "10",
        routed,
        &[("limits.max_client_connections", "2000"), ("limits.max_logins_in_progress", "1000"), ("pool.wait_timeout", "120s")],
    )
    .await;
    let p = Arc::new(p);
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let wrong = Arc::new(Mutex::new(Vec::<String>::new()));
    let tasks = (0..CLIENTS).map(|n| {
        let (p, errors, wrong) = (Arc::clone(&p), Arc::clone(&errors), Arc::clone(&wrong));
        let table = table.to_string();
        tokio::spawn(async move {
            let url = p.url("postgres");
            let (mut c, conn) = match tokio_postgres::connect(&url, NoTls).await {
                Ok(x) => x,
                Err(e) => {
                    errors.lock().unwrap().push(format!("client {n}: connect: {e}"));
                    return;
                }
            };
            tokio::spawn(conn);
            let marker = format!("client-{n}");
            for round in 0..ROUNDS {
                let step = async {
                    let tx = c.transaction().await?;
                    tx.batch_execute(&format!("SET LOCAL application_name = '{marker}'")).await?;
                    let r = tx
                        .query_one(&format!("SELECT current_setting('application_name'), v FROM {table} WHERE id = $1"), &[&(n as i32)])
                        .await?;
                    let (seen, v): (String, String) = (r.get(0), r.get(1));
                    let bumped: i32 =
                        tx.query_one(&format!("UPDATE {table} SET n = n + 1 WHERE id = $1 RETURNING n"), &[&(n as i32)]).await?.get(0);
                    let again = tx.simple_query("SHOW application_name").await?;
                    tx.commit().await?;
                    let shown = again.iter().find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                        _ => None,
                    });
                    Ok::<_, tokio_postgres::Error>((seen, v, bumped, shown))
                };
                match step.await {
                    Ok((seen, v, bumped, shown)) => {
                        let mut w = wrong.lock().unwrap();
                        if seen != marker || shown.as_deref() != Some(marker.as_str()) {
                            w.push(format!("client {n} round {round}: marker {seen:?} / SHOW {shown:?}"));
                        }
                        if v != format!("row-{n}") {
                            w.push(format!("client {n} round {round}: row {v:?}"));
                        }
                        if bumped != round as i32 + 1 {
                            w.push(format!("client {n} round {round}: counter {bumped}, expected {}", round + 1));
                        }
                    }
                    Err(e) => errors.lock().unwrap().push(format!("client {n} round {round}: {e} ({})", code(&e))),
                }
                // Outside a transaction: never another client's marker.
                match c.simple_query("SHOW application_name").await {
                    Ok(m) => {
                        let shown = m.iter().find_map(|m| match m {
                            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                            _ => None,
                        });
                        if let Some(s) = shown.filter(|s| s.starts_with("client-") && *s != marker) {
                            wrong.lock().unwrap().push(format!("client {n} round {round}: SHOW outside a transaction gave {s:?}"));
                        }
                    }
                    Err(e) => errors.lock().unwrap().push(format!("client {n} round {round}: SHOW: {e}")),
                }
            }
        })
    });
    let done = tokio::time::timeout(Duration::from_secs(400), join_all(tasks)).await.expect("500 clients finished within 400 s");
    assert!(done.iter().all(Result::is_ok), "a client task panicked");
    let wrong = std::mem::take(&mut *wrong.lock().unwrap());
    let errors = std::mem::take(&mut *errors.lock().unwrap());
    assert!(wrong.is_empty(), "{} answers belonged to another client, e.g. {:?}", wrong.len(), &wrong[..wrong.len().min(10)]);
    assert!(errors.is_empty(), "{} errors, e.g. {:?}", errors.len(), &errors[..errors.len().min(10)]);
    let total: i64 = d.query_one(&format!("SELECT sum(n)::int8 FROM {table}"), &[]).await.unwrap().get(0);
    assert_eq!(total, (CLIENTS * ROUNDS) as i64, "every transaction committed exactly once");
    let servers = p.ctx.pools.total();
    assert!(servers <= 10, "pool.size 10, {servers} server connections");
    Arc::try_unwrap(p).ok().expect("proxy still shared").stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_clients_over_ten_connections_see_only_their_own() {
    isolation_checker(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_clients_over_ten_connections_see_only_their_own_routing_on() {
    isolation_checker(true).await;
}

// ---- Named prepared statements from many processes (pgbench) ----

fn pgbench_db() -> String {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let db = "pool_pgbench";
    DONE.get_or_init(|| {
        test_support::postgres().fresh_database(db);
        let pg = test_support::postgres();
        let out = std::process::Command::new("pgbench")
            .args(["-i", "-q", "-s", "1", "-h", pg.host(), "-p", &pg.port().to_string(), "-U", pg.superuser(), db])
            .output()
            .expect("pgbench is needed for these tests: apt-get install -y postgresql-contrib (or postgresql-15)");
        assert!(out.status.success(), "pgbench -i: {}", String::from_utf8_lossy(&out.stderr));
    });
    db.to_string()
}

/// Runs pgbench through the proxy; returns (exit ok, stdout + stderr).
async fn pgbench(p: &common::Proxy, args: &[&str]) -> (bool, String) {
    let db = pgbench_db();
    let port = p.addr.port().to_string();
    let user = test_support::postgres().superuser().to_string();
    let mut all: Vec<String> = vec!["-n".into(), "-h".into(), "127.0.0.1".into(), "-p".into(), port, "-U".into(), user];
    all.extend(args.iter().map(|s| s.to_string()));
    all.push(db);
    let out = tokio::task::spawn_blocking(move || std::process::Command::new("pgbench").args(&all).env("PGSSLMODE", "disable").output())
        .await
        .unwrap()
        .expect("pgbench is needed for these tests: apt-get install -y postgresql-15");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success() && !text.contains("aborted") && !text.contains("error"), text)
}

#[tokio::test]
async fn pgbench_simple_and_extended_through_transaction_pooling() {
    let p = pooled_with("transaction", "4", false, &[]).await;
    for mode in ["simple", "extended"] {
        let (ok, out) = pgbench(&p, &["-M", mode, "-c", "8", "-j", "8", "-t", "200"]).await;
        assert!(ok, "pgbench -M {mode} -c 8 -j 8 -t 200 through transaction pooling failed:\n{out}");
    }
    p.stop().await;
}

/// Expected to fail until named statements are renamed per server connection: every pgbench
/// client names its statements P_0, P_1…, and on a shared server connection the second Parse of
/// P_0 fails ("already exists"), or an Execute lands where it was never prepared ("does not
/// exist"). The brief's command, with more server connections than clients; they are
/// renewed every second (pool.server_lifetime) as a long-running pool renews them, so clients
/// do meet connections their statements were never prepared on (with identical scripts and
/// never-renewed connections, pgbench can pass by luck).
#[tokio::test]
async fn pgbench_prepared_through_transaction_pooling() {
    let p = pooled_with("transaction", "10", false, &[("pool.server_lifetime", "1s")]).await;
    let (ok, out) = pgbench(&p, &["-M", "prepared", "-c", "8", "-t", "200"]).await;
    assert!(ok, "pgbench -M prepared -c 8 -t 200 through transaction pooling (pool.size 10) failed:\n{out}");
    p.stop().await;
}

/// The same with fewer server connections than clients. One thread per client (-j 8): pgbench
/// prepares with the blocking PQprepare, so with one thread a client waiting for a server
/// connection would stall the clients holding them (pgbench's deadlock, not the proxy's).
#[tokio::test]
async fn pgbench_prepared_more_clients_than_connections() {
    let p = pooled_with("transaction", "4", false, &[]).await;
    let (ok, out) = pgbench(&p, &["-M", "prepared", "-c", "8", "-j", "8", "-t", "200"]).await;
    assert!(ok, "pgbench -M prepared -c 8 -j 8 -t 200 through transaction pooling (pool.size 4) failed:\n{out}");
    p.stop().await;
}

/// The same with two tokio-postgres processes' worth of statement names: raw sessions that both
/// prepare statement "s1" and use it across transactions.
#[tokio::test]
async fn same_statement_name_from_two_clients_over_one_connection() {
    use common::{fe, raw_session, read_until_ready, tags};
    use tokio::io::AsyncWriteExt;
    let p = pooled_with("transaction", "1", false, &[]).await;
    let mut a = raw_session(p.addr).await;
    let mut b = raw_session(p.addr).await;
    let mut prep = fe::parse("s1", "SELECT $1::int + 100", &[]);
    prep.extend(fe::sync());
    for s in [&mut a, &mut b] {
        s.write_all(&prep).await.unwrap();
        let m = read_until_ready(s, 1).await;
        assert_eq!(tags(&m), "1Z", "Parse of s1 from each client: {m:?}");
    }
    for i in 0..5 {
        for (who, s) in [("a", &mut a), ("b", &mut b)] {
            let mut ex = fe::bind("", "s1", &[Some(&i.to_string())]);
            ex.extend(fe::execute("", 0));
            ex.extend(fe::sync());
            s.write_all(&ex).await.unwrap();
            let m = read_until_ready(s, 1).await;
            assert_eq!(tags(&m), "2DCZ", "client {who} executes its s1 (round {i}): {m:?}");
        }
    }
    p.stop().await;
}

/// One client's named statement (tokio-postgres's prepare, outside a transaction) used after
/// the client moved to another server connection. Expected to fail until named statements are
/// prepared on whichever connection serves the client.
#[tokio::test]
async fn a_prepared_statement_follows_its_client_to_another_connection() {
    let p = pooled_with("transaction", "2", false, &[]).await;
    let a = connect(&p).await;
    let b = connect(&p).await;
    let c = connect(&p).await;
    let settle = || tokio::time::sleep(Duration::from_millis(200));
    // b holds one connection (Y) while a prepares on the other (X).
    b.batch_execute("BEGIN").await.unwrap();
    let y = pid(&b).await;
    let st = a.prepare("SELECT $1::int * 7").await.unwrap();
    settle().await;
    // c takes X; b gives Y back: a's next transaction can only run on Y.
    c.batch_execute("BEGIN").await.unwrap();
    let x = pid(&c).await;
    b.batch_execute("COMMIT").await.unwrap();
    settle().await;
    a.batch_execute("BEGIN").await.unwrap();
    let a_pid = pid(&a).await;
    let r = a.query_one(&st, &[&6i32]).await;
    let _ = a.batch_execute("ROLLBACK").await;
    c.batch_execute("COMMIT").await.unwrap();
    p.stop().await;
    assert!(x != y && a_pid == y, "set-up: a prepared on {x}, now runs on {a_pid} (expected {y})");
    let v: i32 = r.unwrap_or_else(|e| panic!("a's prepared statement on its new server connection: {e} ({})", code(&e))).get(0);
    assert_eq!(v, 42);
}

// ---- 4. Session state in transaction mode ----

/// Expected to fail until SETs are re-applied on whichever server connection a client gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancels_between_statements_never_reach_another_client() {
    let p = pooled_with("transaction", "1", false, &[]).await;
    let a = connect(&p).await;
    let b = Arc::new(connect(&p).await);
    let stop = Arc::new(AtomicBool::new(false));
    let a_cancelled = Arc::new(AtomicUsize::new(0));
    let a_runs = Arc::new(AtomicUsize::new(0));
    let a_task = {
        let (stop, a_cancelled, a_runs) = (Arc::clone(&stop), Arc::clone(&a_cancelled), Arc::clone(&a_runs));
        tokio::spawn(async move {
            let mut other = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match a.simple_query("SELECT pg_sleep(0.002)").await {
                    Ok(_) => {}
                    Err(e) if code(&e) == "57014" => {
                        a_cancelled.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => other.push(e.to_string()),
                }
                a_runs.fetch_add(1, Ordering::Relaxed);
            }
            other
        })
    };
    let token = b.cancel_token();
    let mut b_cancelled = 0;
    for _ in 0..150 {
        // b's own statement ends, then b (idle, nothing running) fires cancels.
        match b.simple_query("SELECT 1").await {
            Ok(_) => {}
            Err(e) if code(&e) == "57014" => b_cancelled += 1,
            Err(e) => panic!("b: {e}"),
        }
        for _ in 0..2 {
            token.cancel_query(NoTls).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let other = within(30, "client a's loop", a_task).await.unwrap();
    assert!(a_runs.load(Ordering::Relaxed) > 10, "a ran statements meanwhile");
    assert_eq!(
        a_cancelled.load(Ordering::Relaxed),
        0,
        "client a got 57014 from client b's cancels ({} of {} statements)",
        a_cancelled.load(Ordering::Relaxed),
        a_runs.load(Ordering::Relaxed)
    );
    assert!(other.is_empty(), "client a's other errors: {other:?}");
    let _ = b_cancelled;
    // A cancel of b's running statement does cancel it.
    let b2 = Arc::clone(&b);
    let sleeper = tokio::spawn(async move { b2.simple_query("SELECT pg_sleep(30)").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    token.cancel_query(NoTls).await.unwrap();
    let r = within(10, "b's cancelled pg_sleep(30)", sleeper).await.unwrap();
    assert_eq!(code(&r.expect_err("b's pg_sleep cancelled")), "57014");
    assert_eq!(simple_value(&b, "SELECT 'b again'").await.as_deref(), Some("b again"));
    p.stop().await;
}

/// A storm of b's cancels at any moment (during b's short statements and between them) while a
/// shares the one server connection: b's statements may be cancelled, a's never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_storm_from_one_client_never_hits_another() {
    let p = pooled_with("transaction", "1", false, &[]).await;
    let a = connect(&p).await;
    let b = connect(&p).await;
    let token = b.cancel_token();
    let stop = Arc::new(AtomicBool::new(false));
    let spawn_loop = |c: tokio_postgres::Client, sql: &'static str| {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let (mut runs, mut cancelled, mut other) = (0usize, 0usize, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match c.simple_query(sql).await {
                    Ok(_) => {}
                    Err(e) if code(&e) == "57014" => cancelled += 1,
                    Err(e) => other.push(e.to_string()),
                }
                runs += 1;
            }
            (runs, cancelled, other)
        })
    };
    let a_task = spawn_loop(a, "SELECT pg_sleep(0.003)");
    let b_task = spawn_loop(b, "SELECT pg_sleep(0.001)");
    let mut sent = 0;
    let until = std::time::Instant::now() + Duration::from_secs(8);
    while std::time::Instant::now() < until {
        token.cancel_query(NoTls).await.unwrap();
        sent += 1;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (a_runs, a_cancelled, a_other) = within(30, "a's loop", a_task).await.unwrap();
    let (b_runs, b_cancelled, b_other) = within(30, "b's loop", b_task).await.unwrap();
    p.stop().await;
    assert_eq!(
        a_cancelled, 0,
        "a got 57014 {a_cancelled} times of {a_runs} from b's {sent} cancels (b was cancelled {b_cancelled} times of {b_runs})"
    );
    assert!(a_other.is_empty() && b_other.is_empty(), "other errors: a {a_other:?}, b {b_other:?}");
    // Liveness: a cancel storm may slow b down, not stall the pool for everyone.
    assert!(
        a_runs > 10 && b_runs > 10,
        "in 8 s a ran {a_runs} statements and b {b_runs} ({sent} cancels sent, b cancelled {b_cancelled} times)"
    );
}

/// b's cancel while a (on the same single connection) runs a long statement and b waits in
/// the queue for the connection: a's statement is not touched.
#[tokio::test]
async fn a_cancel_of_a_queued_client_does_not_cancel_the_running_one() {
    let p = pooled_with("transaction", "1", false, &[]).await;
    let a = Arc::new(connect(&p).await);
    let b = Arc::new(connect(&p).await);
    let a2 = Arc::clone(&a);
    let long = tokio::spawn(async move { a2.simple_query("SELECT pg_sleep(1.5)").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b2 = Arc::clone(&b);
    let queued = tokio::spawn(async move { b2.simple_query("SELECT 'b ran'").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.cancel_token().cancel_query(NoTls).await.unwrap();
    let ra = within(10, "a's pg_sleep", long).await.unwrap();
    assert!(ra.is_ok(), "a's statement was cancelled by b's cancel: {ra:?}");
    let rb = within(10, "b's queued statement", queued).await.unwrap();
    // b's statement may run or be cancelled; it must not hang.
    if let Err(e) = rb {
        assert_eq!(code(&e), "57014", "{e}");
    }
    p.stop().await;
}
