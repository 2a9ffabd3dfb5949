//! Authentication is relayed: each method the coordinator asks for works through the proxy, and
//! a wrong password fails exactly as it does directly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;
use common::{direct_url, Proxy};
use test_support::{describe, AUTH_USERS};

async fn try_connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

#[tokio::test]
async fn every_auth_method_is_relayed() {
    let pg = test_support::postgres();
    let proxy = Proxy::start(&[]).await;
    for user in AUTH_USERS {
        let pw = (!user.password.is_empty()).then_some(user.password);
        let c = try_connect(&proxy.url_for(user.name, pw, "postgres"))
            .await
            .unwrap_or_else(|e| panic!("{} ({}) through the proxy: {}", user.name, user.method, describe(&e)));
        let who: String = c.query_one("SELECT current_user::text", &[]).await.expect("query").get(0);
        assert_eq!(who, user.name);
        // The same role directly, to be sure the method really was the one named.
        try_connect(&pg.url_for(user.name, pw, "postgres")).await.expect("direct");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn wrong_password_fails_like_a_direct_connection() {
    let pg = test_support::postgres();
    let proxy = Proxy::start(&[]).await;
    for user in AUTH_USERS.iter().filter(|u| u.method != "trust") {
        let direct = try_connect(&pg.url_for(user.name, Some("wrong"), "postgres")).await.expect_err("direct must fail");
        let proxied = try_connect(&proxy.url_for(user.name, Some("wrong"), "postgres")).await.expect_err("proxy must fail");
        let (d, p) = (direct.as_db_error().expect("db error"), proxied.as_db_error().expect("db error"));
        assert_eq!(d.code(), p.code(), "{}", user.method);
        assert_eq!(d.message(), p.message(), "{}", user.method);
        assert_eq!(d.code().code(), "28P01");
    }
    // An unknown database is the coordinator's error too.
    let e = try_connect(&proxy.url("no_such_db")).await.expect_err("must fail");
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("3D000"));
    let _ = direct_url("postgres");
    proxy.stop().await;
}
