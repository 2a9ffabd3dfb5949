//! The admin console: reached by connecting to `admin.database`; passwords checked by the
//! coordinator; only `admin.users` get in; PgBouncer-style commands answer with exact rows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

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
    assert!(stats
        .iter()
        .any(|r| r[0].as_deref() == Some("multi-shard") && r[1].as_deref() == Some("count") && r[2].as_deref() == Some("1")));

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

/// RELOAD is the same reload as SIGHUP: the file is read again, live keys apply at once (a new
/// admin gets in, SHOW CONFIG shows the value in force), keys needing a restart are named.
#[tokio::test]
async fn reload_applies_live_keys_and_names_the_rest() {
    use citus_proxy::config::{self, Overrides};
    use citus_proxy::context::{ConfigSource, Context};
    use std::sync::Arc;

    let pg = test_support::postgres();
    let dir = std::env::temp_dir().join(format!("citus-proxy-admin-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("proxy.toml");
    let write = |admins: &str, shapes: u32, target: &str| {
        let text = format!(
            "[upstream]\nurl = \"postgres://{}@{}\"\nsslmode = \"disable\"\n[metrics]\nlisten = \"off\"\n\
             [routing]\nenabled = false\nshape_cache_size = {shapes}\n[slo]\ncount = \"{target}\"\n[admin]\nusers = \"{admins}\"\n",
            pg.superuser(),
            pg.addr()
        );
        std::fs::write(&file, text).expect("write config");
    };
    write("nobody", 10000, "1s");
    let source = ConfigSource { file: Some(file.clone()), overrides: Overrides::default() };
    let cfg = config::load(Some(&file), &source.overrides, |_| None).expect("valid config");
    let ctx = Arc::new(Context::new(cfg).expect("context").with_source(source));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let shutdown = citus_proxy::shutdown::Shutdown::default();
    let sd = shutdown.clone();
    let run_ctx = Arc::clone(&ctx);
    let task = tokio::spawn(async move { citus_proxy::server::run(listener, run_ctx, &sd).await });
    let url = pg.url("citus_proxy").replace(&pg.addr(), &format!("127.0.0.1:{port}"));
    let refused = connect(&url).await.expect_err("not in admin.users yet");
    assert_eq!(refused.as_db_error().map(|d| d.code().code()), Some("28000"));

    // The reload itself runs through the shared function (a console needs a listed admin).
    write(pg.superuser(), 20000, "2s");
    let report = citus_proxy::admin::reload(&ctx).await;
    let text = report.config_text();
    let applied = text.split("applied: ").nth(1).and_then(|a| a.split(';').next()).unwrap_or_default();
    assert!(applied.contains("admin.users") && applied.contains("slo.count"), "{text}");
    assert!(text.contains("restart to apply: routing.shape_cache_size"), "{text}");
    assert_eq!(ctx.metrics.slo_rows().iter().find(|r| r.0.as_str() == "count").map(|r| r.1), Some(std::time::Duration::from_secs(2)));

    let admin = connect(&url).await.expect("admin.users applied live");
    let config = rows(&admin.simple_query("SHOW CONFIG").await.expect("SHOW CONFIG"));
    let value = |k: &str| config.iter().find(|r| r[0].as_deref() == Some(k)).and_then(|r| r[1].clone());
    assert_eq!(value("admin.users").as_deref(), Some(pg.superuser()));
    assert_eq!(value("routing.shape_cache_size").as_deref(), Some("10000"), "not applied: the value in force");

    // RELOAD on the console: nothing new to apply, the restart key still named.
    let reload = rows(&admin.simple_query("RELOAD").await.expect("RELOAD"));
    let config_row = reload.iter().find(|r| r[0].as_deref() == Some("config")).and_then(|r| r[1].clone()).unwrap_or_default();
    assert!(config_row.contains("restart to apply: routing.shape_cache_size") && !config_row.contains("applied: admin"), "{config_row}");

    // A bad file: every error reported, nothing applied, the admin stays in.
    std::fs::write(&file, "[log]\nlevel = \"loud\"\n[limits]\nidle_timeout = \"soon\"\n").expect("write bad config");
    let reload = rows(&admin.simple_query("RELOAD").await.expect("RELOAD"));
    let config_row = reload.iter().find(|r| r[0].as_deref() == Some("config")).and_then(|r| r[1].clone()).unwrap_or_default();
    assert!(
        config_row.starts_with("invalid, not applied") && config_row.contains("log.level") && config_row.contains("limits.idle_timeout"),
        "{config_row}"
    );
    assert_eq!(ctx.live().admin.users, pg.superuser());

    drop(admin);
    shutdown.close_now();
    let _ = task.await;
}
