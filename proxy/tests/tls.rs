//! TLS on both legs: clients to the proxy (SSLRequest answered `S` with a certificate configured,
//! `N` without; GSSENCRequest `N`), and the proxy to the coordinator per `upstream.sslmode`. The
//! harness's PostgreSQL offers TLS exactly as a stock Citus node does (an X.509 v1, self-signed,
//! already expired certificate and an ECDHE-only cipher list); the other TLS set-ups run on
//! servers of their own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;
use std::sync::OnceLock;

use common::{eventually, psql, Proxy};
use test_support::{start_postgres, PgServer, ServerTls};

/// The harness CA and its certificate for localhost (the proxy's listener, the CA-signed server).
fn certs() -> &'static test_support::TestCerts {
    test_support::postgres().certs().expect("TLS tests need the harness-started PostgreSQL (unset CITUS_PROXY_TEST_PG)")
}

/// One extra server per TLS set-up, started on first use and shared by this binary's tests.
fn server(tls: ServerTls) -> &'static PgServer {
    static CA_SIGNED: OnceLock<PgServer> = OnceLock::new();
    static TLS12: OnceLock<PgServer> = OnceLock::new();
    static UNNEGOTIABLE: OnceLock<PgServer> = OnceLock::new();
    let cell = match tls {
        ServerTls::CitusAuto => return citus_like(),
        ServerTls::CaSigned => &CA_SIGNED,
        ServerTls::CitusAutoTls12Only => &TLS12,
        ServerTls::Unnegotiable => &UNNEGOTIABLE,
    };
    cell.get_or_init(|| start_postgres(tls))
}

/// The harness's own server, which must be set up as Citus sets itself up.
fn citus_like() -> &'static PgServer {
    let pg = test_support::postgres();
    assert_eq!(pg.tls(), Some(ServerTls::CitusAuto), "TLS tests need the harness-started PostgreSQL (unset CITUS_PROXY_TEST_PG)");
    pg
}

/// A proxy in front of `pg` with the given settings (upstream.url is set here).
async fn proxy_on(pg: &PgServer, settings: &[(&'static str, &str)]) -> Proxy {
    let url = format!("postgres://{}", pg.addr());
    let mut all: Vec<(&'static str, &str)> = vec![("upstream.url", url.as_str())];
    all.extend_from_slice(settings);
    Proxy::start(&all).await
}

/// A proxy with client TLS (the harness's certificate) in front of `pg`, trusting `pg`'s CA.
async fn tls_proxy(pg: &PgServer, upstream_sslmode: &str) -> Proxy {
    let c = certs();
    let upstream_ca = pg.certs().expect("harness-started server").ca_pem.to_str().expect("utf8 path");
    proxy_on(
        pg,
        &[
            ("tls.cert_file", c.cert_pem.to_str().expect("utf8 path")),
            ("tls.key_file", c.key_pem.to_str().expect("utf8 path")),
            ("upstream.sslmode", upstream_sslmode),
            ("upstream.ca_file", upstream_ca),
        ],
    )
    .await
}

fn conninfo(proxy: &Proxy, user: &str, password: &str, sslmode: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user={user} password={password} dbname=postgres sslmode={sslmode} sslrootcert={}",
        proxy.addr.port(),
        certs().ca_pem.display()
    )
}

/// `ssl|version` of the upstream backend serving this proxy session.
const UPSTREAM_SSL: &str = "SELECT ssl, coalesce(version, '') FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

#[test]
fn the_harness_certificate_is_the_one_citus_makes() {
    // The same openssl commands as the harness server's: X.509 v1, CN=citus-auto-ssl as issuer
    // and subject, RSA 2048, and a validity that ends when it begins.
    let dir = std::env::temp_dir().join(format!("citus-proxy-citus-cert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cert = test_support::CitusAutoCert::generate(&dir);
    let out = std::process::Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(&cert.cert_pem).output().expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Version: 1 (0x0)"), "{text}");
    assert!(text.contains("Issuer: CN = citus-auto-ssl") && text.contains("Subject: CN = citus-auto-ssl"), "{text}");
    assert!(text.contains("Public-Key: (2048 bit)") && text.contains("sha256WithRSAEncryption"), "{text}");
    assert!(!text.contains("X509v3 extensions"), "{text}");
    let field =
        |name: &str| text.lines().find(|l| l.trim_start().starts_with(name)).map(|l| l.split_once(':').map(|x| x.1.trim().to_string()));
    assert_eq!(field("Not Before"), field("Not After"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_config_uses_tls_to_a_citus_like_server() {
    // The default sslmode (prefer) against the certificate Citus makes for itself: encrypted,
    // the certificate unchecked, as libpq does (it used to fail with UnsupportedCertVersion).
    let pg = citus_like();
    let proxy = proxy_on(pg, &[]).await;
    let (ok, out, err) = psql(&proxy.conninfo("postgres"), &["-c", UPSTREAM_SSL]);
    assert!(ok, "default sslmode: {err}");
    assert_eq!(out.trim(), "t|TLSv1.3");
    proxy.stop().await;
    let proxy = proxy_on(pg, &[("upstream.sslmode", "require")]).await;
    let (ok, out, err) = psql(&proxy.conninfo("postgres"), &["-c", UPSTREAM_SSL]);
    assert!(ok, "require: {err}");
    assert_eq!(out.trim(), "t|TLSv1.3");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_handshake_with_the_citus_certificate() {
    // TLS 1.2 signs the ECDHE parameters with the certificate's key, checked another way.
    let pg = server(ServerTls::CitusAutoTls12Only);
    for mode in ["prefer", "require"] {
        let proxy = proxy_on(pg, &[("upstream.sslmode", mode)]).await;
        let (ok, out, err) = psql(&proxy.conninfo("postgres"), &["-c", UPSTREAM_SSL]);
        assert!(ok, "{mode}: {err}");
        assert_eq!(out.trim(), "t|TLSv1.2", "{mode}");
        proxy.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_falls_back_to_plaintext_when_the_handshake_fails() {
    // The server answers the SSLRequest with 'S' but offers nothing rustls can negotiate: libpq's
    // prefer reconnects in plaintext, require gives up.
    let pg = server(ServerTls::Unnegotiable);
    let proxy = proxy_on(pg, &[("upstream.sslmode", "prefer")]).await;
    let (ok, out, err) = psql(&proxy.conninfo("postgres"), &["-c", UPSTREAM_SSL]);
    assert!(ok, "prefer: {err}");
    assert_eq!(out.trim(), "f|");
    proxy.stop().await;

    let proxy = proxy_on(pg, &[("upstream.sslmode", "require")]).await;
    let (ok, _, err) = psql(&proxy.conninfo("postgres"), &["-c", "SELECT 1"]);
    assert!(!ok && err.contains("TLS handshake with upstream"), "require: {err}");
    proxy.stop().await;

    // The metadata connection (tokio-postgres) falls back the same way.
    let url = format!("postgres://postgres@{}/postgres", pg.addr());
    let proxy = Proxy::start_on(&url, &[("upstream.sslmode", "prefer")]).await;
    assert!(proxy.ctx.metadata.last_error().is_none(), "{:?}", proxy.ctx.metadata.last_error());
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_modes_refuse_the_citus_certificate_and_say_why() {
    let pg = citus_like();
    for mode in ["verify-ca", "verify-full"] {
        let proxy = proxy_on(pg, &[("upstream.sslmode", mode), ("upstream.ca_file", certs().ca_pem.to_str().expect("utf8"))]).await;
        let (ok, _, err) = psql(&proxy.conninfo("postgres"), &["-c", "SELECT 1"]);
        assert!(!ok, "{mode} must refuse the Citus certificate");
        for why in ["TLS handshake with upstream", &format!("sslmode={mode}"), "CN=citus-auto-ssl", "X.509 v1", "expired at", "self-signed"]
        {
            assert!(err.contains(why), "{mode}: `{why}` missing from: {err}");
        }
        // The metadata connection refuses it with the same words.
        let said = eventually(15, || {
            let ctx = std::sync::Arc::clone(&proxy.ctx);
            async move { ctx.metadata.last_error().is_some_and(|e| e.contains("X.509 v1")) }
        })
        .await;
        assert!(said, "{mode}: metadata error: {:?}", proxy.ctx.metadata.last_error());
        proxy.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_and_routing_over_tls_in_the_default_config() {
    // The Citus fixture lives on the Citus-like server: metadata loads over TLS (the server logs
    // each connection with its TLS protocol) and routed queries go through.
    let proxy = Proxy::start_citus(&[]).await;
    let (ok, out, err) =
        psql(&format!("host=127.0.0.1 port={} user=postgres dbname=citus sslmode=disable", proxy.addr.port()), &["-c", UPSTREAM_SSL]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "t|TLSv1.3");
    let log = citus_like().log_file.clone().expect("harness server log");
    let text = std::fs::read_to_string(&log).expect("read server log");
    let metadata: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("connection authorized") && l.contains("database=citus application_name=citus-proxy metadata"))
        .collect();
    assert!(!metadata.is_empty(), "no metadata connection in the server log {}", log.display());
    assert!(metadata.iter().all(|l| l.contains("SSL enabled (protocol=TLSv1.3")), "{metadata:?}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_logs_in_with_scram_over_tls_to_the_citus_certificate() {
    // tokio-postgres binds SCRAM to the TLS session with the certificate's hash
    // (SCRAM-SHA-256-PLUS): that must work with Citus's v1 certificate too.
    let pg = citus_like();
    let url = format!("postgres://cp_scram:pw-scram@{}/postgres", pg.addr());
    let proxy = Proxy::start_on(&url, &[]).await;
    assert!(proxy.ctx.metadata.last_error().is_none(), "{:?}", proxy.ctx.metadata.last_error());
    let log = pg.log_file.clone().expect("harness server log");
    let text = std::fs::read_to_string(&log).expect("read server log");
    assert!(
        text.lines().any(|l| l.contains("connection authorized: user=cp_scram database=postgres application_name=citus-proxy metadata SSL enabled")),
        "no TLS metadata login of cp_scram in {}",
        log.display()
    );
    proxy.stop().await;
}

#[test]
fn explain_cli_works_against_the_citus_like_server() {
    // Default sslmode, as against a stock coordinator.
    let url = test_support::citus().url().split('?').next().unwrap_or_default().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_citus-proxy"))
        .args(["explain", "--upstream", &url, "SELECT * FROM users WHERE user_id = 42"])
        .output()
        .expect("run explain");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("single-shard"), "{text}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_citus-proxy"))
        .args(["explain", "--upstream", &url, "--upstream-sslmode", "verify-full", "--upstream-ca-file"])
        .arg(&certs().ca_pem)
        .arg("SELECT 1")
        .output()
        .expect("run explain");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("X.509 v1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_with_verify_full_and_scram() {
    // Client leg TLS (verified), coordinator leg plain: SCRAM relays untouched.
    let proxy = tls_proxy(citus_like(), "disable").await;
    let (ok, out, err) = psql(
        &conninfo(&proxy, "cp_scram", "pw-scram", "verify-full"),
        &["-c", "SELECT current_user, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())"],
    );
    assert!(ok, "psql over TLS failed: {err}");
    assert_eq!(out.trim(), "cp_scram|f");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_with_tls_on_both_legs() {
    // SCRAM channel binding ties the client to the TLS session it sees (the proxy's); the
    // coordinator sees another. With channel_binding=disable it works; with libpq's default
    // (prefer) the coordinator refuses with its own, explicit error (docs/operations.md).
    let proxy = tls_proxy(server(ServerTls::CaSigned), "verify-full").await;
    let base = conninfo(&proxy, "cp_scram", "pw-scram", "verify-full");
    let (ok, out, err) = psql(
        &format!("{base} channel_binding=disable"),
        &["-c", "SELECT current_user, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())"],
    );
    assert!(ok, "psql over TLS failed: {err}");
    assert_eq!(out.trim(), "cp_scram|t");
    let (ok, _, err) = psql(&base, &["-c", "SELECT 1"]);
    assert!(!ok && err.contains("channel binding"), "{err}");
    // md5 is unaffected.
    let (ok, out, err) = psql(&conninfo(&proxy, "cp_md5", "pw-md5", "verify-full"), &["-c", "SELECT current_user"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "cp_md5");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_sslmodes_against_a_ca_signed_server() {
    let pg = server(ServerTls::CaSigned);
    for (mode, expect_ssl) in [("disable", "f"), ("prefer", "t"), ("require", "t"), ("verify-ca", "t"), ("verify-full", "t")] {
        let proxy = tls_proxy(pg, mode).await;
        let (ok, out, err) = psql(&proxy.conninfo("postgres"), &["-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"]);
        assert!(ok, "sslmode={mode}: {err}");
        assert_eq!(out.trim(), expect_ssl, "sslmode={mode}");
        proxy.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_modes_check_what_they_promise() {
    // The server also listens on 127.0.0.2, which its certificate does not name.
    let pg = server(ServerTls::CaSigned);
    let c = pg.certs().expect("harness-started server");
    let other_ca = std::env::temp_dir().join(format!("citus-proxy-other-ca-{}", std::process::id()));
    std::fs::create_dir_all(&other_ca).expect("dir");
    let other = test_support::TestCerts::generate(&other_ca);
    let ca = c.ca_pem.to_str().expect("utf8");
    let other_ca = other.ca_pem.to_str().expect("utf8");
    let cases = [
        ("127.0.0.2", "verify-full", ca, Some("not valid for name")),
        ("127.0.0.2", "verify-ca", ca, None),
        ("127.0.0.1", "verify-full", ca, None),
        ("127.0.0.1", "verify-ca", other_ca, Some("not signed by")),
        ("127.0.0.2", "require", other_ca, None),
    ];
    for (host, mode, ca_file, refusal) in cases {
        let proxy = Proxy::start(&[
            ("upstream.url", &format!("postgres://{host}:{}", pg.port())),
            ("upstream.sslmode", mode),
            ("upstream.ca_file", ca_file),
        ])
        .await;
        let (ok, _, err) = psql(&proxy.conninfo("postgres"), &["-c", "SELECT 1"]);
        assert_eq!(ok, refusal.is_none(), "{host} {mode}: {err}");
        if let Some(why) = refusal {
            assert!(err.contains("TLS handshake with upstream") && err.contains(why), "{host} {mode}: {err}");
        }
        proxy.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_request_without_certificate_is_refused_and_plain_works() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let proxy = Proxy::start(&[]).await;
    for code in [80877103i32, 80877104] {
        let mut s = tokio::net::TcpStream::connect(proxy.addr).await.expect("connect");
        let mut req = 8i32.to_be_bytes().to_vec();
        req.extend_from_slice(&code.to_be_bytes());
        s.write_all(&req).await.expect("write");
        assert_eq!(s.read_u8().await.expect("answer"), b'N', "code {code}");
    }
    let (ok, out, err) =
        psql(&format!("{} sslmode=prefer", proxy.conninfo("postgres").replace("sslmode=disable", "")), &["-c", "SELECT 7"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "7");
    let (ok, _, err) = psql(&proxy.conninfo("postgres").replace("sslmode=disable", "sslmode=require"), &["-c", "SELECT 1"]);
    assert!(!ok && err.contains("SSL"), "{err}");
    proxy.stop().await;
}
