//! The binary's configuration surface: bad values are refused at start with the key named, and
//! the reference in docs/configuration.md is the one the code prints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

use std::process::Command;

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_citus-proxy")).args(args).envs(env.iter().copied()).output().expect("run citus-proxy");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_values_name_the_key() {
    let (code, err) = run(&["--limits-max-client-connections", "lots", "check-config"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("limits.max_client_connections") && err.contains("--limits-max-client-connections"), "{err}");

    let (code, err) = run(&["check-config"], &[("CITUS_PROXY_LISTEN", "not-an-address")]);
    assert_eq!(code, 2);
    assert!(err.contains("`listen`") && err.contains("CITUS_PROXY_LISTEN"), "{err}");

    let dir = std::env::temp_dir().join(format!("citus-proxy-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[upstream]\nsslmode = \"always\"\n").expect("write");
    let (code, err) = run(&["--config", file.to_str().expect("utf8"), "check-config"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("upstream.sslmode") && err.contains("bad.toml"), "{err}");

    std::fs::write(&file, "[upstream\n").expect("write");
    let (code, err) = run(&["--config", file.to_str().expect("utf8"), "check-config"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("not valid TOML"), "{err}");
}

#[test]
fn flags_win_over_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_citus-proxy"))
        .args(["--upstream", "postgres://flag-host:1", "check-config"])
        .env("CITUS_PROXY_UPSTREAM_URL", "postgres://env-host:2")
        .env("CITUS_PROXY_LIMITS_IDLE_TIMEOUT", "90s")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.contains("flag-host:1") && !stdout.contains("env-host"), "{stdout}");
    assert!(stdout.contains("90s"), "{stdout}");
}

#[test]
fn configuration_doc_matches_the_code() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md")).expect("read doc");
    let reference = citus_proxy::cli::reference_markdown();
    assert!(doc.contains(&reference), "docs/configuration.md is out of date: regenerate its table with `citus-proxy config-reference`");
}

#[test]
fn check_config_masks_passwords() {
    let out = Command::new(env!("CARGO_BIN_EXE_citus-proxy"))
        .args(["--upstream", "postgres://app:pg-secret@db:5432/app", "--cache-redis-url", "redis://:redis-secret@cache:6379"])
        .arg("check-config")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains("pg-secret") && !stdout.contains("redis-secret"), "{stdout}");
    assert!(stdout.contains("upstream.url = postgres://app:***@db:5432/app"), "{stdout}");
    assert!(stdout.contains("cache.redis_url = redis://:***@cache:6379"), "{stdout}");
}

#[test]
fn subcommand_help_shows_only_its_own_flags_with_defaults() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_citus-proxy")).args(args).output().expect("run");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let server = help(&["--help"]);
    assert!(server.contains("--limits-max-client-connections") && server.contains("[default: 1000]"), "{server}");

    let explain = help(&["explain", "--help"]);
    assert!(
        explain.contains("--param") && explain.contains("--upstream-url") && explain.contains("[default: postgres://127.0.0.1:5432]"),
        "{explain}"
    );
    assert!(!explain.contains("--limits-") && !explain.contains("--cache-"), "explain --help lists server flags:\n{explain}");

    let flush = help(&["flush-cache", "--help"]);
    assert!(flush.contains("--admin-url") && flush.contains("--cache-redis-url"), "{flush}");
    assert!(!flush.contains("--limits-") && !flush.contains("--slo-"), "flush-cache --help lists server flags:\n{flush}");

    let check = help(&["check-config", "--help"]);
    assert!(!check.contains("--limits-"), "{check}");
}

#[tokio::test]
async fn explain_takes_negative_parameters_in_every_form() {
    let pg = test_support::postgres();
    let db = pg.fresh_database("cli_explain_negative");
    let c = test_support::connect(&db).await;
    c.batch_execute("CREATE TABLE items (id bigint PRIMARY KEY)").await.expect("create");
    let upstream = db.split('?').next().unwrap_or(&db).to_string();
    for form in [vec!["--param", "-1"], vec!["--param=-1"], vec!["--param", "-1.5e3"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_citus-proxy"))
            .args(["explain", "--upstream", &upstream, "--upstream-sslmode", "disable"])
            .args(&form)
            .arg("SELECT * FROM items WHERE id = $1")
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{form:?}: {err}");
        assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty(), "{form:?}: no explanation");
    }
}

#[test]
fn flush_cache_masks_the_admin_password() {
    let port = test_support::free_port();
    let url = format!("postgres://admin:s3cr3t-pw@127.0.0.1:{port}/citus_proxy");
    let out = Command::new(env!("CARGO_BIN_EXE_citus-proxy")).args(["flush-cache", "--admin-url", &url]).output().expect("run");
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success());
    assert!(all.contains("postgres://admin:***@127.0.0.1") && !all.contains("s3cr3t-pw"), "{all}");
}

#[test]
fn the_metadata_connection_defaults_its_role_to_the_os_user() {
    let me = citus_proxy::config::upstream_url::os_user().expect("the tests run as a user listed in /etc/passwd");
    let port = test_support::free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_citus-proxy"))
        .args(["explain", "--upstream", &format!("postgres://127.0.0.1:{port}"), "SELECT 1"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("as role \"{me}\"")) && err.contains("upstream.url"), "{err}");
}
