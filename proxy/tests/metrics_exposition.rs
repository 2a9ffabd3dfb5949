//! The Prometheus text of a freshly started binary: every family has `# HELP` and is in
//! docs/metrics.md, the standard `process_*` metrics and `citus_proxy_build_info` are there, and
//! failure counters exist at 0 before anything failed (dashboards show 0, not "No data").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.starts_with("HTTP/1.1 200").then(|| out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()))?
}

/// The value of the sample written exactly as `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn a_fresh_proxy_exports_help_process_metrics_build_info_and_zero_counters() {
    let pg = test_support::postgres();
    let (port, metrics) = (test_support::free_port(), test_support::free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_citus-proxy"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--metrics-listen", &format!("127.0.0.1:{metrics}")])
        .args(["--upstream", &format!("postgres://{}@{}", pg.superuser(), pg.addr()), "--upstream-sslmode", "disable"])
        .args(["--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start citus-proxy");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut text = None;
    while Instant::now() < deadline {
        // Once metadata is loaded every family the proxy exports at rest is there.
        if let Some(t) = scrape(metrics).filter(|t| t.contains("citus_proxy_metadata_age_seconds ")) {
            text = Some(t);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = text.expect("/metrics never showed citus_proxy_metadata_age_seconds");

    // Every family: a HELP line before its TYPE line.
    let mut help: BTreeMap<String, String> = BTreeMap::new();
    let mut families = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, doc) = rest.split_once(' ').unwrap_or((rest, ""));
            help.insert(name.to_string(), doc.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_whitespace().next().unwrap_or_default().to_string();
            assert!(help.get(&name).is_some_and(|d| !d.trim().is_empty()), "{name} has no # HELP line:\n{text}");
            families.push(name);
        }
    }
    assert!(families.len() >= 15, "{text}");

    // Every family is documented.
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md")).expect("read docs/metrics.md");
    for name in &families {
        assert!(doc.contains(&format!("| `{name}` |")), "{name} is exported but not in docs/metrics.md");
    }

    for name in ["process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds"] {
        let v = sample(&text, name).unwrap_or_else(|| panic!("{name} missing:\n{text}"));
        assert!(v > 0.0, "{name} = {v}");
    }
    assert!(sample(&text, "process_cpu_seconds_total").is_some_and(|v| v >= 0.0), "{text}");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs_f64();
    let started = sample(&text, "process_start_time_seconds").unwrap_or_default();
    assert!((now - started).abs() < 3600.0, "process_start_time_seconds {started} is not about now ({now})");

    let build = format!("citus_proxy_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"));
    assert_eq!(sample(&text, &build), Some(1.0), "{text}");

    assert_eq!(sample(&text, "citus_proxy_metadata_refresh_errors_total"), Some(0.0), "{text}");
    for class in ["08", "28", "40", "42", "53", "57", "XX"] {
        let series = format!("citus_proxy_errors_total{{sqlstate_class=\"{class}\"}}");
        assert_eq!(sample(&text, &series), Some(0.0), "{series} missing:\n{text}");
    }
}
