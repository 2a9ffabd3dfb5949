//! `check-config` and start-up refuse what would fail or silently misbehave later, naming each
//! key, and report every error of a file in one run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

use std::process::Command;

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_citus-proxy"))
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("run citus-proxy");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn temp_file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("citus-proxy-config-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.to_str().expect("utf8").to_string()
}

#[test]
fn every_error_of_a_file_is_listed_with_its_key() {
    let file = temp_file(
        "bad.toml",
        "[log]\nlevel = \"warning\"\n\
         [cache]\nredis_url = \"redis://cache:notaport\"\n\
         [[cache.rules]]\nshape = \"UPDATE t SET a = $1\"\n\
         [tls]\ncert_file = \"/\"\nkey_file = \"/\"\n",
    );
    let (code, _, err) = run(&["--config", &file, "check-config"], &[]);
    assert_eq!(code, 2, "{err}");
    for (key, why) in [
        ("log.level", "unknown level \"warning\" (expected one of error, warn, info, debug, trace, off)"),
        ("cache.redis_url", "invalid port"),
        ("cache.rules", "can never match"),
        ("tls.cert_file", "is a directory"),
        ("tls.key_file", "is a directory"),
    ] {
        assert!(err.lines().any(|l| l.contains(&format!("`{key}`")) && l.contains(why)), "{key}: {why} not reported:\n{err}");
    }
    assert!(!err.contains("does not exist"), "a directory is not a missing file:\n{err}");
}

#[test]
fn the_server_refuses_the_same_errors_at_start() {
    let (code, _, err) = run(&["--log-level", "warning", "--metrics-listen", "off"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("log.level") && err.contains("--log-level") && err.contains("warning"), "{err}");
}

#[test]
fn rust_log_is_a_variable_and_the_flag_wins() {
    let (code, out, err) = run(&["check-config"], &[("RUST_LOG", "debug")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("log.level = debug"), "{out}");

    let (code, out, err) = run(&["--log-level", "warn", "check-config"], &[("RUST_LOG", "debug")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("log.level = warn"), "{out}");

    let (code, _, err) = run(&["check-config"], &[("RUST_LOG", "warning")]);
    assert_eq!(code, 2);
    assert!(err.contains("log.level") && err.contains("RUST_LOG"), "{err}");
}

#[test]
fn passwords_are_masked_even_in_errors() {
    let (code, _, err) = run(&["--cache-redis-url", "redis://:hunter2@cache:notaport", "check-config"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("cache.redis_url") && !err.contains("hunter2"), "{err}");
    let (code, _, err) = run(&["--upstream", "postgres://app:hunter3@db:notaport/app", "check-config"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("upstream.url") && !err.contains("hunter3") && err.contains("app:***@db"), "{err}");
}
