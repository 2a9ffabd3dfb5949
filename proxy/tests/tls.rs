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

#[tokio::test]
async fn client_tls_with_verify_full_and_scram() {
    let proxy = tls_proxy("verify-full").await;
    let (ok, out, err) = psql(
        &conninfo(&proxy, "cp_scram", "pw-scram", "verify-full"),
        &["-c", "SELECT current_user, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())"],
    );
    assert!(ok, "psql over TLS failed: {err}");
    // SCRAM over TLS on both legs works because channel binding is not offered through the proxy,
    // and the proxy's own leg to the coordinator is encrypted (ssl = t).
    assert_eq!(out.trim(), "cp_scram|t");
    proxy.stop().await;
}

#[tokio::test]
async fn upstream_sslmodes() {
    for (mode, expect_ssl) in [("disable", "f"), ("prefer", "t"), ("require", "t"), ("verify-ca", "t"), ("verify-full", "t")] {
        let proxy = tls_proxy(mode).await;
        let (ok, out, err) = psql(&proxy.conninfo("postgres"), &["-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"]);
        assert!(ok, "sslmode={mode}: {err}");
        assert_eq!(out.trim(), expect_ssl, "sslmode={mode}");
        proxy.stop().await;
    }
}

#[tokio::test]
async fn verify_full_rejects_a_wrong_host_name() {
    // "localhost" and 127.0.0.1 are in the certificate; 127.0.0.2 (also loopback) is not.
    let pg = test_support::postgres();
    let c = certs();
    let proxy = Proxy::start(&[
        ("upstream.url", &format!("postgres://127.0.0.2:{}", pg.port())),
        ("upstream.sslmode", "verify-full"),
        ("upstream.ca_file", c.ca_pem.to_str().expect("utf8")),
    ])
    .await;
    let (ok, _, err) = psql(&proxy.conninfo("postgres"), &["-c", "SELECT 1"]);
    assert!(!ok);
    assert!(err.contains("TLS handshake with upstream"), "{err}");
    proxy.stop().await;
}

#[tokio::test]
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
