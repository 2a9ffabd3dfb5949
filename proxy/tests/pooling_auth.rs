//! Proxy-side authentication end to end: a pooled proxy checks clients' passwords itself (SCRAM
//! and MD5, secrets from auth.query or auth.file) and logs server connections in as the client's
//! role with what the client proved (SCRAM keys and MD5 hashes passed through). The harness
//! PostgreSQL checks each role with the method its name says (test-support/src/roles.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::Proxy;

fn url(p: &Proxy, user: &str, password: &str) -> String {
    p.url_for(user, Some(password), "postgres")
}

async fn login(p: &Proxy, user: &str, password: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (c, conn) = tokio_postgres::connect(&url(p, user, password), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(c)
}

async fn current_user(c: &tokio_postgres::Client) -> String {
    c.query_one("SELECT current_user::text", &[]).await.expect("query").get(0)
}

/// The stored secrets of the harness roles, as pg_authid holds them.
async fn stored(role: &str) -> String {
    let (c, conn) = tokio_postgres::connect(&common::direct_url("postgres"), tokio_postgres::NoTls).await.expect("direct");
    tokio::spawn(conn);
    c.query_one("SELECT rolpassword FROM pg_authid WHERE rolname = $1", &[&role]).await.expect("pg_authid").get(0)
}

fn refused(e: &tokio_postgres::Error, user: &str) {
    let db = e.as_db_error().unwrap_or_else(|| panic!("a server error, got {e}"));
    assert_eq!(db.code().code(), "28P01", "{db:?}");
    assert_eq!(db.message(), format!("password authentication failed for user \"{user}\""));
}

#[tokio::test]
async fn scram_with_secrets_from_auth_query() {
    let su = test_support::postgres().superuser().to_string();
    let p = Proxy::start(&[
        ("pool.mode", "transaction"),
        ("pool.size", "2"),
        ("auth.type", "scram-sha-256"),
        ("auth.user", &su),
        ("routing.enabled", "false"),
    ])
    .await;
    // The server connection logs in with the key recovered from the client's proof: the
    // harness checks cp_scram with SCRAM, and the proxy stores no password.
    let a = login(&p, "cp_scram", "pw-scram").await.expect("right password");
    assert_eq!(current_user(&a).await, "cp_scram");
    let b = login(&p, "cp_scram", "pw-scram").await.expect("a second client of the same pool");
    assert_eq!(current_user(&b).await, "cp_scram");
    refused(&login(&p, "cp_scram", "wrong").await.expect_err("wrong password"), "cp_scram");
    refused(&login(&p, "nobody_here", "x").await.expect_err("unknown role"), "nobody_here");
    // A server that asks for the cleartext password cannot be answered with SCRAM keys (the
    // proxy never learns the password): the client is told, not left hanging.
    let e = login(&p, "cp_password", "pw-cleartext").await.expect_err("cleartext server, SCRAM keys");
    let db = e.as_db_error().unwrap_or_else(|| panic!("a server error, got {e}"));
    assert_eq!(db.code().code(), "08001", "{db:?}");
    assert!(db.message().contains("could not open a server connection"), "{}", db.message());
    assert_eq!(current_user(&a).await, "cp_scram");
    p.stop().await;
}

#[tokio::test]
async fn md5_and_scram_with_secrets_from_auth_file() {
    let dir = std::env::temp_dir().join(format!("citus-proxy-userlist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("userlist.txt");
    let md5 = stored("cp_md5").await;
    assert!(md5.starts_with("md5"), "cp_md5 is stored as MD5: {md5}");
    let verifier = stored("cp_scram").await;
    assert!(verifier.starts_with("SCRAM-SHA-256$"), "cp_scram is stored as a verifier");
    std::fs::write(&file, format!("\"cp_md5\" \"{md5}\"\n\"cp_scram\" \"{verifier}\"\n\"cp_password\" \"pw-cleartext\"\n")).unwrap();
    let file = file.to_string_lossy().to_string();

    // MD5 against the client; the hash is passed through to the server's MD5 challenge.
    let p = Proxy::start(&[("pool.mode", "transaction"), ("auth.type", "md5"), ("auth.file", &file), ("routing.enabled", "false")]).await;
    let c = login(&p, "cp_md5", "pw-md5").await.expect("md5 client");
    assert_eq!(current_user(&c).await, "cp_md5");
    refused(&login(&p, "cp_md5", "nope").await.expect_err("wrong md5 password"), "cp_md5");
    // A plaintext secret: MD5 with the client, the password itself to the server.
    let c = login(&p, "cp_password", "pw-cleartext").await.expect("plaintext secret");
    assert_eq!(current_user(&c).await, "cp_password");
    p.stop().await;

    // SCRAM with the verifier from the file, passed through to the server.
    let p =
        Proxy::start(&[("pool.mode", "session"), ("auth.type", "scram-sha-256"), ("auth.file", &file), ("routing.enabled", "false")]).await;
    let c = login(&p, "cp_scram", "pw-scram").await.expect("scram client");
    assert_eq!(current_user(&c).await, "cp_scram");
    refused(&login(&p, "cp_scram", "pw-md5").await.expect_err("wrong scram password"), "cp_scram");
    // Not in the file and no auth.user: refused like a wrong password.
    refused(&login(&p, "cp_trust", "x").await.expect_err("role missing from the file"), "cp_trust");
    p.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
