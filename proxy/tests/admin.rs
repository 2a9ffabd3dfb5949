//! The admin console: reached by connecting to `admin.database`; passwords checked by the
//! coordinator; only `admin.users` get in; PgBouncer-style commands answer with exact rows.

mod common;
use common::Proxy;
use tokio_postgres::SimpleQueryMessage;

fn rows(msgs: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect()
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(c)
}

#[tokio::test]
async fn admin_commands_answer_with_exact_rows() {
    let proxy = Proxy::start_citus(&[("admin.users", "postgres, cp_md5")]).await;
    // Some traffic to report on.
    let app = test_support::connect(&proxy.citus_url()).await;
    app.simple_query("SELECT * FROM users WHERE user_id = 42").await.expect("q1");
    app.simple_query("SELECT * FROM users WHERE user_id = 43").await.expect("q2");
    app.simple_query("SELECT count(*) FROM users").await.expect("q3");

    let admin = connect(&proxy.url("citus_proxy")).await.expect("admin console");
    let stats = rows(&admin.simple_query("SHOW STATS").await.expect("stats"));
    let single = stats
        .iter()
        .find(|r| r[0].as_deref() == Some("single-shard") && r[1].as_deref() == Some("single_shard_query"))
        .expect("single-shard row");
    assert_eq!(single[2].as_deref(), Some("2"));
    assert!(stats.iter().any(|r| r[0].as_deref() == Some("multi-shard") && r[1].as_deref() == Some("count") && r[2].as_deref() == Some("1")));

    let clients = rows(&admin.simple_query("SHOW CLIENTS").await.expect("clients"));
    assert_eq!(clients.len(), 1, "the application client (the console is not a relayed session): {clients:?}");
    assert_eq!(clients[0][2].as_deref(), Some("citus"));
    let servers = rows(&admin.simple_query("SHOW SERVERS").await.expect("servers"));
    assert_eq!(servers.len(), 1);

    let routes = rows(&admin.simple_query("SHOW ROUTES").await.expect("routes"));
    let point = routes.iter().find(|r| r[0].as_deref().is_some_and(|s| s.contains("user_id ="))).expect("point shape");
    assert_eq!(point[1].as_deref(), Some("single-shard=2"), "both literals share one shape: {routes:?}");
    assert_eq!(point[2].as_deref(), Some("2"));

    let slo = rows(&admin.simple_query("SHOW SLO").await.expect("slo"));
    assert_eq!(slo.len(), 7, "one row per class with a target");
    let count = slo.iter().find(|r| r[0].as_deref() == Some("count")).expect("count");
    assert_eq!(count[1].as_deref(), Some("1000.000"));
    assert_eq!(count[4].as_deref(), Some("1"));

    let cluster = admin.simple_query("SHOW CLUSTER").await.expect("cluster");
    let all = rows(&cluster);
    assert!(all.iter().any(|r| r[0].as_deref() == Some("127.0.0.1:9701") && r[5].as_deref() == Some("113")), "{all:?}");
    assert!(all.iter().any(|r| r[0].as_deref() == Some("public.users") && r[4].as_deref() == Some("32")));

    let config = rows(&admin.simple_query("SHOW CONFIG").await.expect("config"));
    assert!(config.iter().any(|r| r[0].as_deref() == Some("admin.users")));
    let reload = rows(&admin.simple_query("RELOAD").await.expect("reload"));
    assert!(reload[0][1].as_deref().is_some_and(|s| s.starts_with("reloaded")), "{reload:?}");

    let err = admin.simple_query("SHOW NONSENSE").await.expect_err("unknown command");
    assert_eq!(err.as_db_error().map(|d| d.code().code()), Some("42601"));
    let err = admin.query("SHOW STATS", &[]).await.expect_err("extended protocol");
    assert_eq!(err.as_db_error().map(|d| d.code().code()), Some("0A000"));
    // The console still works after an error.
    assert!(!rows(&admin.simple_query("SHOW SLO").await.expect("still works")).is_empty());
    proxy.stop().await;
}

#[tokio::test]
async fn only_listed_roles_with_the_right_password_get_in() {
    let proxy = Proxy::start_citus(&[("admin.users", "cp_md5")]).await;
    let ok = connect(&proxy.url_for("cp_md5", Some("pw-md5"), "citus_proxy")).await.expect("listed role");
    ok.simple_query("SHOW STATS").await.expect("stats");
    let wrong = connect(&proxy.url_for("cp_md5", Some("nope"), "citus_proxy")).await.expect_err("wrong password");
    assert_eq!(wrong.as_db_error().map(|d| d.code().code()), Some("28P01"));
    let unlisted = connect(&proxy.url_for("cp_scram", Some("pw-scram"), "citus_proxy")).await.expect_err("not listed");
    assert_eq!(unlisted.as_db_error().map(|d| d.code().code()), Some("28000"));
    proxy.stop().await;
}
