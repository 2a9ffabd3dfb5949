//! The binary end to end against the harness's real PostgreSQL: two targets (the same database,
//! named proxy and direct), report files, the exit status for a met and a missed target, the
//! proxy's /slo read from a tiny HTTP server, and the exit status for a target that is not there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_citus-loadtest");

fn report_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("citus-loadtest-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn run(url: &str, extra: &[&str]) -> Output {
    let proxy = format!("proxy={url}");
    let direct = format!("direct={url}");
    let mut args = vec!["--target", &proxy, "--target", &direct, "--clients", "2", "--slices", "2", "--no-progress"];
    args.extend_from_slice(extra);
    let out = Command::new(BIN).args(&args).output().expect("run citus-loadtest");
    eprintln!("stdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn read_json(dir: &std::path::Path) -> serde_json::Value {
    let body = std::fs::read(dir.join("report.json")).expect("report.json written");
    serde_json::from_slice(&body).expect("report.json is JSON")
}

#[test]
fn met_targets_exit_0_with_json_and_html_reports() {
    let url = test_support::postgres().fresh_database("loadtest_e2e_pass");
    let dir = report_dir("pass");
    let out = run(
        &url,
        &[
            "--scenario",
            "setup",
            "--scenario",
            "point_select",
            "--scenario",
            "count",
            "--scenario",
            "vector_search",
            "--scenario",
            "mixed",
            "--scenario",
            "shard_creation",
            "--iterations",
            "8",
            "--scale",
            "0.1",
            "--target-ms",
            "single_shard_query=60000",
            "--target-ms",
            "count=60000",
            "--target-ms",
            "vector_search=60000",
            "--target-ms",
            "multi_shard_aggregation=60000",
            "--report",
            dir.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("PASS: every class met its target"), "{stdout}");

    let report = read_json(&dir);
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["pass"], true);
    assert_eq!(report["settings"]["percentile"], 0.99);
    assert_eq!(report["settings"]["targets_ms"]["single_shard_query"], 60000.0);
    let targets: Vec<&str> = report["targets"].as_array().expect("targets").iter().map(|t| t["name"].as_str().unwrap_or("")).collect();
    assert_eq!(targets, ["proxy", "direct"]);
    assert_eq!(report["setup"].as_array().expect("setup").len(), 2);

    let results = report["results"].as_array().expect("results");
    let row = |scenario: &str, class: &str, target: &str| {
        results
            .iter()
            .find(|r| r["scenario"] == scenario && r["class"] == class && r["target"] == target)
            .unwrap_or_else(|| panic!("no row {scenario}/{class}/{target}"))
    };
    for target in ["proxy", "direct"] {
        for (scenario, class) in [("point_select", "single_shard_query"), ("count", "count"), ("vector_search", "vector_search")] {
            let r = row(scenario, class, target);
            assert_eq!(r["count"], 8, "{r}");
            assert_eq!(r["errors"], 0, "{r}");
            assert_eq!(r["pass"], true);
            assert!(r["p50_us"].as_u64().expect("p50") > 0);
            assert!(r["p99_us"].as_u64() >= r["p50_us"].as_u64());
            assert!(r["throughput_ops"].as_f64().expect("throughput") > 0.0);
            assert_eq!(r["curve"].as_array().expect("curve").len(), 51);
        }
        // mixed records into the classes of its statements; together they make all 8 iterations.
        let mixed: u64 = ["single_shard_query", "multi_shard_aggregation"]
            .iter()
            .map(|c| row("mixed", c, target)["count"].as_u64().expect("count"))
            .sum();
        assert_eq!(mixed, 8);
        let skipped = row("shard_creation", "shard_creation", target);
        assert_eq!(skipped["status"], "skipped");
        assert_eq!(skipped["count"], 0);
    }
    assert!(row("point_select", "single_shard_query", "proxy")["ratio_observed"].as_f64().is_some());
    assert!(row("point_select", "single_shard_query", "direct")["ratio_observed"].is_null());
    let classes = report["classes"].as_array().expect("classes");
    assert!(classes.iter().any(|c| c["target"] == "proxy" && c["class"] == "single_shard_query" && c["count"].as_u64() >= Some(8)));

    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html written");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg") && html.contains("<polyline"));
    assert!(!html.contains("<script") && !html.contains("http-equiv"), "the page must be self-contained");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missed_target_exits_1() {
    let url = test_support::postgres().fresh_database("loadtest_e2e_fail");
    let dir = report_dir("fail");
    let out = run(
        &url,
        &[
            "--scenario",
            "setup",
            "--scenario",
            "point_select",
            "--iterations",
            "4",
            "--scale",
            "0.1",
            "--target-ms",
            "single_shard_query=0",
            "--report",
            dir.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let report = read_json(&dir);
    assert_eq!(report["exit_code"], 1);
    assert_eq!(report["pass"], false);
    let failed: Vec<&serde_json::Value> = report["classes"].as_array().expect("classes").iter().filter(|c| c["pass"] == false).collect();
    assert_eq!(failed.len(), 2, "single_shard_query fails on both targets");
    assert!(failed.iter().all(|c| c["class"] == "single_shard_query"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn slo_view_is_read_and_shown_side_by_side() {
    let url = test_support::postgres().fresh_database("loadtest_e2e_slo");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).expect("read request");
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let body = r#"{"percentile": 0.99, "window_seconds": 60, "classes": [
            {"class": "single_shard_query", "target_seconds": 0.1, "observed_seconds": 0.0123, "count": 1234, "violations": 0, "pass": true},
            {"class": "count", "target_seconds": 1.0, "observed_seconds": null, "count": 0, "violations": 0, "pass": true}]}"#;
        let response = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        conn.write_all(response.as_bytes()).expect("write response");
        String::from_utf8_lossy(&request).into_owned()
    });
    let dir = report_dir("slo");
    let slo = format!("proxy=http://127.0.0.1:{port}/slo");
    let out = run(
        &url,
        &[
            "--scenario",
            "setup",
            "--scenario",
            "point_select",
            "--iterations",
            "4",
            "--scale",
            "0.1",
            "--target-ms",
            "single_shard_query=60000",
            "--slo-url",
            &slo,
            "--report",
            dir.to_str().expect("utf-8 path"),
        ],
    );
    let request = server.join().expect("server thread");
    assert!(request.starts_with("GET /slo HTTP/1.0\r\n"), "{request}");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Proxy /slo for target `proxy`"), "{stdout}");
    assert!(stdout.contains("12.30ms") && stdout.contains("1234"), "{stdout}");
    let report = read_json(&dir);
    let view = &report["slo"][0];
    assert_eq!(view["target"], "proxy");
    assert!(view["error"].is_null());
    assert_eq!(view["response"]["classes"][0]["count"], 1234);
    assert!(std::fs::read_to_string(dir.join("report.html")).expect("html").contains("/slo violations"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unreachable_target_exits_2_naming_it() {
    let port = test_support::free_port();
    let out = Command::new(BIN)
        .args(["--target", &format!("proxy=postgres://nobody@127.0.0.1:{port}/x?connect_timeout=5"), "--scenario", "count"])
        .output()
        .expect("run citus-loadtest");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("target `proxy`") && stderr.contains("cannot connect"), "{stderr}");

    let out = Command::new(BIN).args(["--target", "nonsense", "--scenario", "count"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NAME=URL"));
}
