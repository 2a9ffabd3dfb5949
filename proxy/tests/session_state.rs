//! What a session changes about itself, followed by the one settings tracker that routing, the
//! routing NOTICE and the cache key all read, against the Citus coordinator of this test binary
//! (the catalog fixture, or a real coordinator named by CITUS_PROXY_TEST_CITUS): RESET and
//! SET … TO DEFAULT, transaction-scoped SETs, temporary tables shadowing distributed ones,
//! closed prepared statements, and settings a row-level-security policy reads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use common::{connect_observed, fe, hits, proxy_for, stats, Proxy, RawMsg, Seen};
use tokio::io::AsyncWriteExt;

/// The routing NOTICEs among what the connection saw since the last call.
fn routes(c: &common::Observed) -> Vec<String> {
    c.take()
        .into_iter()
        .filter_map(|s| match s {
            Seen::Notice { message, .. } if message.starts_with("citus-proxy route") => Some(message),
            _ => None,
        })
        .collect()
}

async fn one_text(c: &tokio_postgres::Client, sql: &str) -> String {
    let msgs = c.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {}", test_support::describe(&e)));
    msgs.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{sql}: no row"))
}

#[tokio::test]
async fn reset_and_default_give_routing_and_notices_the_default_back() {
    let proxy = Proxy::start_citus(&[]).await;
    let c = connect_observed(&proxy.citus_url()).await;
    let point = "SELECT username FROM users WHERE user_id = 42";
    let route_of = |sql: &'static str| {
        let c = &c;
        async move {
            c.take();
            // With the search_path of the moment the table may not exist: only the NOTICE matters.
            let _ = c.client.simple_query(sql).await;
            routes(c)
        }
    };
    c.client.simple_query("SET citus_proxy.report_routing = on").await.expect("set");
    assert!(route_of(point).await.iter().any(|m| m.contains("single-shard")));

    c.client.simple_query("SET search_path TO nowhere").await.expect("set");
    assert!(route_of(point).await.iter().any(|m| m.contains("unknown")), "users is not in schema nowhere");
    c.client.simple_query("RESET search_path").await.expect("reset");
    let n = route_of(point).await;
    assert!(n.iter().any(|m| m.contains("single-shard")), "RESET search_path: back to the default path: {n:?}");

    c.client.simple_query("SET search_path TO nowhere").await.expect("set");
    c.client.simple_query("SET search_path TO DEFAULT").await.expect("default");
    let n = route_of(point).await;
    assert!(n.iter().any(|m| m.contains("single-shard")), "TO DEFAULT is not a schema named default: {n:?}");

    // A SET LOCAL ends with its transaction; a rolled-back SET never happened.
    c.client.batch_execute("BEGIN; SET LOCAL search_path TO nowhere; COMMIT").await.expect("local");
    let n = route_of(point).await;
    assert!(n.iter().any(|m| m.contains("single-shard")), "SET LOCAL reverted at COMMIT: {n:?}");
    c.client.batch_execute("BEGIN").await.expect("begin");
    c.client.batch_execute("SET search_path TO nowhere").await.expect("set");
    c.client.batch_execute("ROLLBACK").await.expect("rollback");
    let n = route_of(point).await;
    assert!(n.iter().any(|m| m.contains("single-shard")), "SET undone by ROLLBACK: {n:?}");

    c.client.simple_query("RESET citus_proxy.report_routing").await.expect("reset report");
    assert!(route_of(point).await.is_empty(), "RESET turns the notices off");
    c.client.simple_query("SET citus_proxy.report_routing = on").await.expect("set");
    c.client.simple_query("SET citus_proxy.report_routing TO DEFAULT").await.expect("default report");
    assert!(route_of(point).await.is_empty(), "TO DEFAULT turns the notices off");
    proxy.stop().await;
}

#[tokio::test]
async fn a_temporary_table_shadowing_a_distributed_one_is_never_served_from_the_cache() {
    let (proxy, _, db) = proxy_for("state_temp", &[("cache.tables", "users")]).await;
    let read = "SELECT username FROM users WHERE user_id = 42";
    let a = test_support::connect(&proxy.url(&db)).await;
    let permanent = one_text(&a, read).await;
    assert_eq!(one_text(&a, read).await, permanent);
    assert_eq!(hits(&proxy), 1, "{:?}", stats(&proxy));

    // B's own `users` hides the distributed table from B alone.
    let b = connect_observed(&proxy.url(&db)).await;
    b.client
        .batch_execute("CREATE TEMP TABLE users (user_id bigint, username text); INSERT INTO users VALUES (42, 'temp-of-b')")
        .await
        .expect("temp table");
    for round in 0..2 {
        assert_eq!(one_text(&b.client, read).await, "temp-of-b", "B reads its temporary table, round {round}");
        let row = b.client.query_one("SELECT username FROM users WHERE user_id = $1", &[&42i64]).await.expect("prepared");
        assert_eq!(row.get::<_, String>(0), "temp-of-b", "extended protocol, round {round}");
        // And the other way round: A never gets B's rows.
        assert_eq!(one_text(&a, read).await, permanent, "A reads the distributed table, round {round}");
    }
    // A new session without the temporary table is served the shared entry again.
    let before = hits(&proxy);
    let c = test_support::connect(&proxy.url(&db)).await;
    assert_eq!(one_text(&c, read).await, permanent);
    assert_eq!(hits(&proxy), before + 1, "{:?}", stats(&proxy));

    // Routing knows pg_temp is searched first.
    b.client.simple_query("SET citus_proxy.report_routing = on").await.expect("report");
    b.take();
    one_text(&b.client, read).await;
    let n = routes(&b);
    assert!(n.iter().any(|m| m.contains("local") && !m.contains("single-shard")), "{n:?}");
    // DISCARD TEMP drops it: B reads the distributed table (and may share the entry) again.
    b.client.simple_query("DISCARD TEMP").await.expect("discard temp");
    assert_eq!(one_text(&b.client, read).await, permanent);
    proxy.stop().await;
}

/// Sends `bytes` and reads to the next ReadyForQuery.
async fn exchange(s: &mut tokio::net::TcpStream, bytes: &[u8]) -> Vec<RawMsg> {
    s.write_all(bytes).await.expect("send");
    common::read_until_ready(s, 1).await
}

fn error_of(msgs: &[RawMsg]) -> Option<(String, String)> {
    let (_, body) = msgs.iter().find(|m| m.0 == b'E')?;
    let field = |tag: u8| body.split(|b| *b == 0).find(|f| f.first() == Some(&tag)).map(|f| String::from_utf8_lossy(&f[1..]).into_owned());
    Some((field(b'C').unwrap_or_default(), field(b'M').unwrap_or_default()))
}

#[tokio::test]
async fn a_closed_prepared_statement_gets_the_coordinators_error_not_a_cached_answer() {
    let (proxy, _, db) = proxy_for("state_closed", &[("cache.tables", "users")]).await;
    let mut s = common::raw_session_on(proxy.addr, &db).await;
    let run = |name: &str| [fe::bind("", name, &[Some("42")]), fe::execute("", 0), fe::sync()].concat();
    // Each way of closing s1 / s2 / s3: Close message, DEALLOCATE, DISCARD ALL.
    let closes: [(&str, Vec<u8>); 3] =
        [("s1", [fe::close(b'S', "s1"), fe::sync()].concat()), ("s2", fe::query("DEALLOCATE s2")), ("s3", fe::query("DISCARD ALL"))];
    for (name, close) in closes {
        let parse = [fe::parse(name, "SELECT username FROM users WHERE user_id = $1", &[20]), fe::sync()].concat();
        assert_eq!(error_of(&exchange(&mut s, &parse).await), None);
        let first = exchange(&mut s, &run(name)).await;
        let before = hits(&proxy);
        let second = exchange(&mut s, &run(name)).await;
        assert_eq!(hits(&proxy), before + 1, "{name}: served from the cache while prepared");
        assert_eq!(first, second);
        assert_eq!(error_of(&exchange(&mut s, &close).await), None, "{name}: closing");
        let after = exchange(&mut s, &run(name)).await;
        let expected = format!("prepared statement \"{name}\" does not exist");
        assert_eq!(error_of(&after), Some(("26000".to_string(), expected)), "{name}: {after:?}");
        assert_eq!(hits(&proxy), before + 1, "{name}: no hit after the close");
    }
    // Prepared again, the statement is served again.
    let parse = [fe::parse("s1", "SELECT username FROM users WHERE user_id = $1", &[20]), fe::sync()].concat();
    exchange(&mut s, &parse).await;
    let before = hits(&proxy);
    assert_eq!(error_of(&exchange(&mut s, &run("s1")).await), None);
    assert_eq!(hits(&proxy), before + 1);
    proxy.stop().await;
}

#[tokio::test]
async fn settings_a_row_level_security_policy_reads_are_part_of_the_key() {
    let (proxy, direct, db) = proxy_for("state_rls", &[("cache.tables", "tenant_notes")]).await;
    let d = test_support::connect(&direct).await;
    d.batch_execute(
        "CREATE TABLE tenant_notes (tenant text, body text);
         INSERT INTO tenant_notes VALUES ('tenant_a', 'a secret'), ('tenant_b', 'b secret');
         ALTER TABLE tenant_notes ENABLE ROW LEVEL SECURITY;
         CREATE POLICY by_app ON tenant_notes USING (tenant = current_setting('application_name'));
         DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'state_reader') THEN CREATE ROLE state_reader LOGIN; END IF;
         END $$;
         GRANT SELECT ON tenant_notes TO state_reader;",
    )
    .await
    .expect("set up RLS (superusers bypass it, so a plain role reads)");
    proxy.ctx.metadata.request_refresh();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let q = "SELECT string_agg(body, ',') FROM tenant_notes";
    let url = |app: &str| format!("{}&application_name={app}", proxy.url_for("state_reader", None, &db));
    for round in 0..2 {
        for (app, expect) in [("tenant_a", "a secret"), ("tenant_b", "b secret")] {
            let c = test_support::connect(&url(app)).await;
            assert_eq!(one_text(&c, q).await, expect, "{app}, round {round}");
        }
    }
    assert_eq!(hits(&proxy), 2, "each tenant hits its own entry: {:?}", stats(&proxy));
    // A SET of the setting changes the key too, and RESET puts the startup value back.
    let c = test_support::connect(&url("tenant_a")).await;
    c.batch_execute("SET application_name = 'tenant_b'").await.expect("set");
    assert_eq!(one_text(&c, q).await, "b secret");
    c.batch_execute("RESET application_name").await.expect("reset");
    assert_eq!(one_text(&c, q).await, "a secret");

    // An operator who declares the setting irrelevant gets shared entries (here wrongly, which
    // is why nothing is ignored unless listed).
    let shared = Proxy::start_on(&direct, &[("cache.tables", "tenant_notes"), ("cache.ignored_settings", "application_name")]).await;
    for app in ["tenant_a", "tenant_b"] {
        let c = test_support::connect(&format!("{}&application_name={app}", shared.url_for("state_reader", None, &db))).await;
        one_text(&c, q).await;
    }
    assert_eq!(hits(&shared), 1, "{:?}", stats(&shared));
    shared.stop().await;
    proxy.stop().await;
}
