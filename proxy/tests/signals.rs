//! The binary under signals and broken output: SIGHUP reloads the configuration file and applies
//! the live keys; a closed or full stderr/stdout pipe never stops SIGTERM, the client listener or
//! /metrics; the open-files limit is raised at start and a limit too low is said once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_citus-proxy"))
}

/// GET `path` on the metrics port: (status, body), or None while nothing answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .expect("kill(1) is needed: apt-get install -y procps");
    assert!(ok.success(), "kill -{sig} failed");
}

fn exits_within(child: &mut Child, secs: u64) -> Option<std::process::ExitStatus> {
    wait_for(secs, || child.try_wait().ok().flatten())
}

/// Collects the child's stderr lines as they come.
fn collect_lines(stderr: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    });
    lines
}

fn text_of(lines: &Arc<Mutex<Vec<String>>>) -> String {
    lines.lock().unwrap_or_else(|p| p.into_inner()).join("\n")
}

fn slo_target(metrics: u16, class: &str) -> Option<f64> {
    let (_, body) = http_get(metrics, "/slo")?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["classes"].as_array()?.iter().find(|c| c["class"] == class)?["target_seconds"].as_f64()
}

#[tokio::test]
async fn sighup_reloads_the_file_and_applies_live_keys() {
    let pg = test_support::postgres();
    let (port, metrics) = (test_support::free_port(), test_support::free_port());
    let dir = std::env::temp_dir().join(format!("citus-proxy-sighup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("proxy.toml");
    let write_config = |level: &str, target: &str, admins: &str, shapes: u32| {
        let text = format!(
            "listen = \"127.0.0.1:{port}\"\n\
             [upstream]\nurl = \"postgres://{user}@{addr}\"\nsslmode = \"disable\"\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics}\"\n\
             [routing]\nenabled = false\nshape_cache_size = {shapes}\n\
             [slo]\nsingle_shard_query = \"{target}\"\n\
             [admin]\nusers = \"{admins}\"\n\
             [limits]\nidle_timeout = \"0s\"\n\
             [log]\nlevel = \"{level}\"\n",
            user = pg.superuser(),
            addr = pg.addr(),
        );
        std::fs::write(&file, text).expect("write config");
    };
    write_config("warn", "100ms", "", 10000);
    let mut child = bin()
        .args(["--config", file.to_str().expect("utf8")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start citus-proxy");
    let lines = collect_lines(child.stderr.take().expect("stderr"));
    assert!(wait_for(15, || http_get(metrics, "/healthz")).is_some(), "the proxy never answered /healthz");
    assert_eq!(slo_target(metrics, "single_shard_query"), Some(0.1));

    let admin_url = pg.url("citus_proxy").replace(&pg.addr(), &format!("127.0.0.1:{port}"));
    let refused = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await;
    assert!(refused.is_err(), "admin.users is empty: the console must refuse");

    // Live keys, and one that needs a restart (the shape cache is sized at start).
    write_config("info", "250ms", pg.superuser(), 20000);
    signal(&child, "HUP");
    let applied = wait_for(10, || (slo_target(metrics, "single_shard_query") == Some(0.25)).then_some(()));
    assert!(applied.is_some(), "SIGHUP did not apply slo.single_shard_query; log:\n{}", text_of(&lines));
    assert!(child.try_wait().expect("status").is_none(), "SIGHUP must not end the process");

    let admin = test_support::connect(&admin_url).await;
    let rows = admin.simple_query("SHOW CONFIG").await.expect("SHOW CONFIG");
    let value = |key: &str| {
        rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some(key) => r.get(1).map(String::from),
            _ => None,
        })
    };
    assert_eq!(value("admin.users").as_deref(), Some(pg.superuser()));
    assert_eq!(value("slo.single_shard_query").as_deref(), Some("250ms"));
    assert_eq!(value("log.level").as_deref(), Some("info"));
    // Not applied, so SHOW CONFIG still shows the value in force.
    assert_eq!(value("routing.shape_cache_size").as_deref(), Some("10000"));
    drop(admin);

    // The level went from warn to info: the console session's info line is now written.
    let logged = wait_for(5, || {
        let log = text_of(&lines);
        (log.contains("admin console session") && log.contains("configuration reloaded")).then_some(())
    });
    let log = text_of(&lines);
    assert!(logged.is_some(), "log.level was not applied live, or the reload was not logged:\n{log}");
    let reload_line = log.lines().find(|l| l.contains("configuration reloaded")).unwrap_or_default();
    assert!(
        reload_line.contains("routing.shape_cache_size") && reload_line.contains("restart"),
        "the reload line must name the keys that need a restart:\n{log}"
    );
    assert!(!log.contains('\x1b'), "colour codes written to a pipe:\n{log}");

    // A bad file is reported, nothing applied, and the process stays up.
    std::fs::write(&file, "[log]\nlevel = \"warning\"\n").expect("write bad config");
    signal(&child, "HUP");
    let reported = wait_for(10, || text_of(&lines).contains("unknown level \"warning\"").then_some(()));
    assert!(reported.is_some(), "an invalid reload must be reported naming the key:\n{}", text_of(&lines));
    assert_eq!(slo_target(metrics, "single_shard_query"), Some(0.25));
    assert!(child.try_wait().expect("status").is_none());

    signal(&child, "TERM");
    let status = exits_within(&mut child, 15).expect("the proxy did not exit on SIGTERM");
    assert!(status.success(), "{status:?}");
}

/// A client's startup packet, and whatever the proxy answers (here: an ErrorResponse, since the
/// upstream port is closed); None when nothing comes back in time.
fn startup_answer(port: u16) -> Option<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut body = 196608u32.to_be_bytes().to_vec();
    body.extend_from_slice(b"user\0u\0database\0d\0\0");
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    s.write_all(&msg).ok()?;
    let mut first = [0u8; 1];
    s.read_exact(&mut first).ok()?;
    Some(first[0])
}

/// Runs the proxy with both output streams on `out`, makes it log a few hundred lines (more than
/// a pipe holds), and checks it still serves clients and /metrics, then ends on SIGTERM.
fn serves_and_stops_with_output_on(out: std::io::PipeWriter) {
    let (port, metrics) = (test_support::free_port(), test_support::free_port());
    // Nothing listens on the upstream port: every client gets an error, and a log line.
    let dead_upstream = test_support::free_port();
    let mut child = bin()
        .args(["--listen", &format!("127.0.0.1:{port}"), "--metrics-listen", &format!("127.0.0.1:{metrics}")])
        .args(["--upstream", &format!("postgres://u@127.0.0.1:{dead_upstream}"), "--routing-enabled", "false"])
        .args(["--log-level", "debug"])
        .stdout(out.try_clone().expect("clone pipe"))
        .stderr(out)
        .spawn()
        .expect("start citus-proxy");
    assert!(wait_for(15, || http_get(metrics, "/healthz")).is_some(), "the proxy never answered /healthz");
    for i in 0..600 {
        assert_eq!(startup_answer(port), Some(b'E'), "client {i} got no ErrorResponse: logging blocked the proxy");
    }
    let (status, body) = http_get(metrics, "/metrics").expect("/metrics must answer");
    assert_eq!(status, 200);
    assert!(body.contains("citus_proxy_client_connections"), "{body}");
    signal(&child, "TERM");
    let status = exits_within(&mut child, 15);
    if status.is_none() {
        let _ = child.kill();
    }
    assert!(status.is_some(), "SIGTERM was ignored");
}

#[test]
fn a_closed_output_pipe_breaks_nothing() {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    serves_and_stops_with_output_on(writer);
}

#[test]
fn a_full_output_pipe_blocks_nothing() {
    let (reader, writer) = std::io::pipe().expect("pipe");
    // Held open and never read: writes fill the pipe, then would block.
    serves_and_stops_with_output_on(writer);
    drop(reader);
}

/// Starts the proxy under `ulimit` settings (sh's builtin) and returns its stderr once it serves.
fn start_under_ulimit(ulimit: &str, extra: &[&str]) -> (Child, u16, Arc<Mutex<Vec<String>>>) {
    let (port, metrics) = (test_support::free_port(), test_support::free_port());
    let script = format!("{ulimit} && exec \"$0\" \"$@\"");
    let mut child = Command::new("sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_citus-proxy")])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--metrics-listen", &format!("127.0.0.1:{metrics}")])
        .args(["--upstream", "postgres://u@127.0.0.1:1", "--routing-enabled", "false"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start citus-proxy under sh");
    let lines = collect_lines(child.stderr.take().expect("stderr"));
    assert!(wait_for(15, || http_get(metrics, "/healthz")).is_some(), "the proxy never answered; log:\n{}", text_of(&lines));
    // Lines are written in order: once this one is there, the start-up lines before it are too.
    let listening = wait_for(10, || text_of(&lines).contains("serving /metrics").then_some(()));
    assert!(listening.is_some(), "no start-up log:\n{}", text_of(&lines));
    (child, metrics, lines)
}

fn max_fds(metrics: u16) -> Option<f64> {
    let (_, body) = http_get(metrics, "/metrics")?;
    body.lines().find_map(|l| l.strip_prefix("process_max_fds ")).and_then(|v| v.trim().parse().ok())
}

#[test]
fn the_open_files_limit_is_raised_and_a_short_one_is_said_once() {
    // Soft 64, hard 2200: raised to 2200, which fits the default 1000 clients (2064 descriptors).
    let (mut child, metrics, lines) = start_under_ulimit("ulimit -S -n 64 && ulimit -H -n 2200", &[]);
    assert_eq!(max_fds(metrics), Some(2200.0));
    let log = text_of(&lines);
    assert!(log.contains("raised the open-files limit") && log.contains("from=64") && log.contains("to=2200"), "{log}");
    assert!(!log.contains("open-files limit (2200) is below"), "{log}");
    let _ = child.kill();
    let _ = child.wait();

    // Hard 512 cannot hold 1000 clients: one warning naming the key.
    let (mut child, metrics, lines) = start_under_ulimit("ulimit -S -n 64 && ulimit -H -n 512", &[]);
    assert_eq!(max_fds(metrics), Some(512.0));
    let log = text_of(&lines);
    let warnings = log.lines().filter(|l| l.contains("WARN") && l.contains("limits.max_client_connections")).count();
    assert_eq!(warnings, 1, "{log}");
    let _ = child.kill();
    let _ = child.wait();

    // Fewer clients fit in the same limit: no warning.
    let (mut child, _, lines) = start_under_ulimit("ulimit -S -n 64 && ulimit -H -n 512", &["--limits-max-client-connections", "100"]);
    assert!(!text_of(&lines).contains("limits.max_client_connections"), "{}", text_of(&lines));
    let _ = child.kill();
    let _ = child.wait();
}
