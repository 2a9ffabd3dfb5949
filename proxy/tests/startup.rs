//! Startup variants: protocol 3.2 (negotiated down by a server that speaks 3.0, as it would be
//! directly), and PostgreSQL 17's direct TLS (no SSLRequest, ALPN `postgresql`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;
use std::sync::Arc;

use common::{startup_packet, Proxy};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Reads messages until ReadyForQuery; returns their tags.
async fn tags_until_ready<S: AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut tags = Vec::new();
    loop {
        let tag = s.read_u8().await.expect("tag");
        let len = s.read_i32().await.expect("len") as usize;
        let mut body = vec![0u8; len - 4];
        s.read_exact(&mut body).await.expect("body");
        tags.push(tag);
        assert_ne!(tag, b'E', "error: {}", String::from_utf8_lossy(&body));
        if tag == b'Z' {
            return tags;
        }
    }
}

async fn startup_32<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> Vec<u8> {
    let mut p = startup_packet(test_support::postgres().superuser(), "postgres");
    p[4..8].copy_from_slice(&((3i32 << 16) | 2).to_be_bytes());
    s.write_all(&p).await.expect("write startup");
    tags_until_ready(s).await
}

#[tokio::test]
async fn protocol_3_2_is_relayed_like_a_direct_connection() {
    let pg = test_support::postgres();
    let mut direct = tokio::net::TcpStream::connect(pg.addr()).await.expect("direct");
    let direct_tags = startup_32(&mut direct).await;
    let proxy = Proxy::start(&[]).await;
    let mut via = tokio::net::TcpStream::connect(proxy.addr).await.expect("proxy");
    let via_tags = startup_32(&mut via).await;
    assert_eq!(via_tags, direct_tags, "same message sequence through the proxy");
    assert!(via_tags.contains(&b'K'), "a cancel key is handed out");
    proxy.stop().await;
}

fn tls_client(alpn: bool) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let certs = test_support::postgres().certs().expect("harness-started PostgreSQL");
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(&certs.ca_pem).expect("ca") {
        roots.add(c.expect("ca cert")).expect("add ca");
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    if alpn {
        cfg.alpn_protocols = vec![b"postgresql".to_vec()];
    }
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

#[tokio::test]
async fn direct_tls_needs_alpn_postgresql() {
    let certs = test_support::postgres().certs().expect("harness-started PostgreSQL");
    let proxy =
        Proxy::start(&[("tls.cert_file", certs.cert_pem.to_str().expect("utf8")), ("tls.key_file", certs.key_pem.to_str().expect("utf8"))])
            .await;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.expect("connect");
    let mut tls = tls_client(true).connect(name.clone(), tcp).await.expect("direct TLS handshake");
    let mut p = startup_packet(test_support::postgres().superuser(), "postgres");
    tls.write_all(&p).await.expect("startup");
    let tags = tags_until_ready(&mut tls).await;
    assert_eq!(tags.last(), Some(&b'Z'));

    // Without ALPN the proxy must hang up (a plain client could otherwise be confused).
    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.expect("connect");
    let res = async {
        let mut s = tls_client(false).connect(name, tcp).await?;
        p.truncate(p.len());
        s.write_all(&p).await?;
        let mut b = [0u8; 1];
        let n = s.read(&mut b).await?;
        Ok::<usize, std::io::Error>(n)
    }
    .await;
    assert!(matches!(res, Err(_) | Ok(0)), "no session without ALPN: {res:?}");
    proxy.stop().await;
}
