//! TLS on both legs: clients to the proxy (SSLRequest answered `S` with a certificate configured,
//! `N` without; GSSENCRequest `N`), and the proxy to the coordinator per `upstream.sslmode`.

mod common;
use common::{psql, Proxy};

fn certs() -> &'static test_support::TestCerts {
    test_support::postgres()
        .certs()
        .expect("TLS tests need the harness-started PostgreSQL (unset CITUS_PROXY_TEST_PG)")
}

async fn tls_proxy(upstream_sslmode: &str) -> Proxy {
    let c = certs();
    Proxy::start(&[
        ("tls.cert_file", c.cert_pem.to_str().expect("utf8 path")),
        ("tls.key_file", c.key_pem.to_str().expect("utf8 path")),
        ("upstream.sslmode", upstream_sslmode),
        ("upstream.ca_file", c.ca_pem.to_str().expect("utf8 path")),
    ])
    .await
}

fn conninfo(proxy: &Proxy, user: &str, password: &str, sslmode: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user={user} password={password} dbname=postgres sslmode={sslmode} sslrootcert={}",
        proxy.addr.port(),
        certs().ca_pem.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_with_verify_full_and_scram() {
    // Client leg TLS (verified), coordinator leg plain: SCRAM relays untouched.
    let proxy = tls_proxy("disable").await;
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
    let proxy = tls_proxy("verify-full").await;
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
async fn upstream_sslmodes() {
    for (mode, expect_ssl) in [("disable", "f"), ("prefer", "t"), ("require", "t"), ("verify-ca", "t"), ("verify-full", "t")] {
        let proxy = tls_proxy(mode).await;
        let (ok, out, err) = psql(&proxy.conninfo("postgres"), &["-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"]);
        assert!(ok, "sslmode={mode}: {err}");
        assert_eq!(out.trim(), expect_ssl, "sslmode={mode}");
        proxy.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_modes_check_what_they_promise() {
    // The server also listens on 127.0.0.2, which its certificate does not name.
    let pg = test_support::postgres();
    let c = certs();
    let other_ca = std::env::temp_dir().join(format!("citus-proxy-other-ca-{}", std::process::id()));
    std::fs::create_dir_all(&other_ca).expect("dir");
    let other = test_support::TestCerts::generate(&other_ca);
    let ca = c.ca_pem.to_str().expect("utf8");
    let cases = [
        ("127.0.0.2", "verify-full", ca, false),
        ("127.0.0.2", "verify-ca", ca, true),
        ("127.0.0.1", "verify-full", ca, true),
        ("127.0.0.1", "verify-ca", other.ca_pem.to_str().expect("utf8"), false),
        ("127.0.0.2", "require", other.ca_pem.to_str().expect("utf8"), true),
    ];
    for (host, mode, ca_file, works) in cases {
        let proxy = Proxy::start(&[
            ("upstream.url", &format!("postgres://{host}:{}", pg.port())),
            ("upstream.sslmode", mode),
            ("upstream.ca_file", ca_file),
        ])
        .await;
        let (ok, _, err) = psql(&proxy.conninfo("postgres"), &["-c", "SELECT 1"]);
        assert_eq!(ok, works, "{host} {mode}: {err}");
        if !works {
            assert!(err.contains("TLS handshake with upstream"), "{host} {mode}: {err}");
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
    let (ok, out, err) = psql(&format!("{} sslmode=prefer", proxy.conninfo("postgres").replace("sslmode=disable", "")), &["-c", "SELECT 7"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "7");
    let (ok, _, err) = psql(&proxy.conninfo("postgres").replace("sslmode=disable", "sslmode=require"), &["-c", "SELECT 1"]);
    assert!(!ok && err.contains("SSL"), "{err}");
    proxy.stop().await;
}
