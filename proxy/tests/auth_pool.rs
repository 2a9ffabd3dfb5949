//! Proxy-side authentication (pooled modes) against real peers: secrets fetched from the harness
//! PostgreSQL by `auth.query`, server logins with each credential kind, and client exchanges
//! driven by tokio-postgres itself, ending with the credential a client's proof left logging
//! into PostgreSQL as that client's role (SCRAM and MD5 pass-through).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use citus_proxy::auth::{login_server, AuthError, Authenticator, FailReason, LoginError, Secret, ServerCredential, ServerHello};
use citus_proxy::config::{self, Overrides};
use citus_proxy::session::frames::FrameReader;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// An authenticator with `auth.type = kind`, the userlist `userlist` (if any) and `auth.query`
/// run as the harness superuser.
fn authenticator(kind: &str, userlist: Option<&str>) -> Arc<Authenticator> {
    let pg = test_support::postgres();
    let mut o = Overrides::default();
    o.flags.insert("upstream.url", format!("postgres://{}@{}/postgres", pg.superuser(), pg.addr()));
    o.flags.insert("metrics.listen", "off".into());
    o.flags.insert("auth.type", kind.into());
    o.flags.insert("auth.user", pg.superuser().into());
    if let Some(text) = userlist {
        o.flags.insert("auth.file", write_userlist(text));
    }
    let cfg = config::load(None, &o, |_| None).expect("test config is valid");
    Arc::new(Authenticator::from_config(&cfg).expect("authenticator"))
}

fn write_userlist(text: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("citus-proxy-auth-pool-{}-{n}.txt", std::process::id()));
    std::fs::write(&path, text).expect("write userlist");
    path.to_string_lossy().into_owned()
}

fn password_of(role: &str) -> &'static str {
    test_support::AUTH_USERS.iter().find(|u| u.name == role).map(|u| u.password).expect("harness role")
}

async fn server_conn() -> (FrameReader<OwnedReadHalf>, OwnedWriteHalf) {
    let (r, w) = TcpStream::connect(common::pg_addr()).await.expect("connect to the harness PostgreSQL").into_split();
    (FrameReader::new(r), w)
}

/// Logs into the harness PostgreSQL as `role` with `cred`; on success also checks, with a query
/// on the logged-in connection, that the session is `role`'s.
async fn login_as(role: &str, cred: &ServerCredential) -> Result<ServerHello, LoginError> {
    let (mut reader, mut writer) = server_conn().await;
    let hello = login_server(&mut reader, &mut writer, &common::startup_packet(role, "postgres"), cred, LOGIN_TIMEOUT).await?;
    writer.write_all(&common::fe::query("SELECT current_user")).await.unwrap();
    let mut row = None;
    loop {
        let frame = reader.next(1 << 20).await.unwrap();
        match frame[0] {
            b'D' => row = Some(String::from_utf8_lossy(&frame[11..]).into_owned()),
            b'E' => panic!("query as {role} failed: {}", String::from_utf8_lossy(&frame)),
            b'Z' => break,
            _ => {}
        }
    }
    assert_eq!(row.as_deref(), Some(role), "logged in as another role");
    Ok(hello)
}

async fn secret(auth: &Authenticator, role: &str) -> Secret {
    auth.secret(role, "postgres").await.expect("auth.query runs").unwrap_or_else(|| panic!("no secret for {role}"))
}

// ---- (a) server logins ----

#[tokio::test]
async fn auth_query_fetches_each_kind_of_secret() {
    let auth = authenticator("scram-sha-256", None);
    assert!(matches!(secret(&auth, "cp_scram").await, Secret::Scram(_)));
    assert!(matches!(secret(&auth, "cp_password").await, Secret::Scram(_)));
    assert!(matches!(secret(&auth, "cp_md5").await, Secret::Md5(_)));
    // A role without a password, and no role at all.
    assert_eq!(auth.secret("cp_trust", "postgres").await.unwrap(), None);
    assert_eq!(auth.secret("cp_no_such_role", "postgres").await.unwrap(), None);
    // The stored MD5 is md5(password || user).
    assert_eq!(secret(&auth, "cp_md5").await, Secret::Md5(postgres_md5(password_of("cp_md5"), "cp_md5")));
}

fn postgres_md5(password: &str, user: &str) -> String {
    // Computed through the server itself, so the test does not restate the formula.
    let pg = test_support::postgres();
    let url = pg.url("postgres");
    let (p, u) = (password.to_string(), user.to_string());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async move {
            let c = test_support::connect(&url).await;
            c.query_one("SELECT 'md5' || md5($1 || $2)", &[&p, &u]).await.unwrap().get::<_, String>(0)
        })
    })
    .join()
    .unwrap()
}

#[tokio::test]
async fn login_server_with_plaintext_answers_each_method() {
    for role in ["cp_password", "cp_md5", "cp_scram"] {
        let hello = login_as(role, &ServerCredential::Plain(password_of(role).into()))
            .await
            .unwrap_or_else(|e| panic!("login as {role} (hba {role}): {e}"));
        assert!(hello.parameters.iter().any(|(k, _)| k == "server_version"), "{role}: {:?}", hello.parameters);
        assert!(hello.key.pid > 0);
    }
    let hello = login_as("cp_trust", &ServerCredential::None).await.expect("trust login");
    assert!(hello.parameters.iter().any(|(k, v)| k == "session_authorization" && v == "cp_trust"));
}

#[tokio::test]
async fn login_server_passes_an_md5_hash_through() {
    let auth = authenticator("md5", None);
    let Secret::Md5(hash) = secret(&auth, "cp_md5").await else { panic!("cp_md5 is stored as MD5") };
    login_as("cp_md5", &ServerCredential::Md5(hash)).await.expect("md5 pass-through login");
}

#[tokio::test]
async fn login_server_relays_the_servers_refusal() {
    for role in ["cp_password", "cp_md5", "cp_scram"] {
        let err = login_as(role, &ServerCredential::Plain("wrong".into())).await.expect_err("wrong password must fail");
        let LoginError::Server { frame } = &err else { panic!("{role}: {err}") };
        assert_eq!(frame[0], b'E');
        assert_eq!(err.sqlstate(), Some("28P01"), "{role}: {err}");
        assert!(err.to_string().contains(&format!("password authentication failed for user \"{role}\"")), "{err}");
    }
    // A credential that cannot answer the method asked for.
    let err = login_as("cp_password", &ServerCredential::Md5("md5".to_string() + &"0".repeat(32))).await.unwrap_err();
    assert!(matches!(err, LoginError::Unanswerable(_)), "{err}");
    let err = login_as("cp_scram", &ServerCredential::None).await.unwrap_err();
    assert!(matches!(err, LoginError::Unanswerable(_)), "{err}");
    // Pass-through keys that are not the role's: the server refuses the proof.
    let err = login_as("cp_scram", &ServerCredential::ScramKeys { client_key: [7; 32], server_key: [8; 32] }).await.unwrap_err();
    assert_eq!(err.sqlstate(), Some("28P01"), "{err}");
}

#[tokio::test]
async fn login_server_gives_up_at_its_timeout() {
    // A peer that accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    });
    let (r, mut w) = TcpStream::connect(addr).await.unwrap().into_split();
    let mut reader = FrameReader::new(r);
    let err = login_server(&mut reader, &mut w, &common::startup_packet("x", "y"), &ServerCredential::None, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, LoginError::Timeout), "{err}");
    hold.abort();
}

// ---- (b) client exchanges driven by tokio-postgres ----

/// A one-connection front end: accepts one client, reads its StartupMessage, runs
/// `authenticate_client`, and on success greets it as a server would (ParameterStatus,
/// BackendKeyData, ReadyForQuery); on failure sends the error and closes.
async fn front(auth: Arc<Authenticator>) -> (u16, tokio::task::JoinHandle<Result<ServerCredential, AuthError>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut reader = FrameReader::new(r);
        let params = read_startup(&mut reader.inner, &mut w).await;
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        let (user, database) = (get("user"), get("database"));
        match auth.authenticate_client(&mut reader, &mut w, &user, &database).await {
            Ok(cred) => {
                let mut out = Vec::new();
                for (k, v) in [("server_version", "15.0"), ("client_encoding", "UTF8"), ("DateStyle", "ISO, MDY")] {
                    out.extend(frame(b'S', &[k.as_bytes(), b"\0", v.as_bytes(), b"\0"].concat()));
                }
                out.extend(frame(b'K', &[1i32.to_be_bytes(), 2i32.to_be_bytes()].concat()));
                out.extend(frame(b'Z', b"I"));
                w.write_all(&out).await.unwrap();
                // Serve until the client leaves (its Terminate or close).
                let _ = reader.next(1 << 20).await;
                Ok(cred)
            }
            Err(e) => {
                let _ = w.write_all(&e.to_client()).await;
                Err(e)
            }
        }
    });
    (port, task)
}

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The client's StartupMessage parameters (an SSLRequest first is refused with 'N').
async fn read_startup(r: &mut OwnedReadHalf, w: &mut OwnedWriteHalf) -> Vec<(String, String)> {
    loop {
        let len = r.read_i32().await.unwrap() as usize;
        let mut body = vec![0u8; len - 4];
        r.read_exact(&mut body).await.unwrap();
        if body[..4] == 80877103i32.to_be_bytes() {
            w.write_all(b"N").await.unwrap();
            continue;
        }
        let fields: Vec<String> = body[4..].split(|&b| b == 0).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
        return fields.chunks(2).filter(|c| c.len() == 2 && !c[0].is_empty()).map(|c| (c[0].clone(), c[1].clone())).collect();
    }
}

/// tokio-postgres logs in through `front`; returns its result and the front's.
async fn client_login(
    auth: &Arc<Authenticator>,
    user: &str,
    password: Option<&str>,
) -> (Result<(), tokio_postgres::Error>, Result<ServerCredential, AuthError>) {
    let (port, front) = front(Arc::clone(auth)).await;
    let mut conninfo = format!("host=127.0.0.1 port={port} user={user} dbname=postgres sslmode=disable connect_timeout=10");
    if let Some(p) = password {
        conninfo.push_str(&format!(" password='{p}'"));
    }
    let client = match tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            let driver = tokio::spawn(conn);
            drop(client);
            let _ = driver.await;
            Ok(())
        }
        Err(e) => Err(e),
    };
    let front = tokio::time::timeout(LOGIN_TIMEOUT, front).await.expect("front end finished").expect("front end task");
    (client, front)
}

fn assert_refused(client: Result<(), tokio_postgres::Error>, front: Result<ServerCredential, AuthError>, user: &str, why: FailReason) {
    let err = client.expect_err("login must fail");
    let db = err.as_db_error().unwrap_or_else(|| panic!("not a server error: {err}"));
    assert_eq!(db.code().code(), "28P01", "{db:?}");
    assert_eq!(db.severity(), "FATAL");
    assert_eq!(db.message(), format!("password authentication failed for user \"{user}\""));
    match front {
        Err(AuthError::Failed { reason, .. }) => assert_eq!(reason, why),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn scram_client_with_auth_query_verifier_and_key_pass_through() {
    let auth = authenticator("scram-sha-256", None);
    let (client, front) = client_login(&auth, "cp_scram", Some(password_of("cp_scram"))).await;
    client.expect("right password logs in");
    let cred = front.expect("front end accepted");
    assert!(matches!(cred, ServerCredential::ScramKeys { .. }), "{cred:?}");
    // The key recovered from the client's proof logs into the real server as the client.
    login_as("cp_scram", &cred).await.expect("SCRAM pass-through login");

    let (client, front) = client_login(&auth, "cp_scram", Some("not-the-password")).await;
    assert_refused(client, front, "cp_scram", FailReason::WrongPassword);
    // An unknown role looks the same to the client (a mock exchange, then the same error).
    let (client, front) = client_login(&auth, "cp_no_such_role", Some("whatever")).await;
    assert_refused(client, front, "cp_no_such_role", FailReason::NoSecret);
}

#[tokio::test]
async fn scram_client_with_plaintext_userlist_entry() {
    let auth = authenticator("scram-sha-256", Some("; test userlist\n\"cp_password\" \"pw-cleartext\"\n"));
    for _ in 0..2 {
        // Twice: the second exchange uses the cached derived verifier.
        let (client, front) = client_login(&auth, "cp_password", Some("pw-cleartext")).await;
        client.expect("right password logs in");
        let cred = front.unwrap();
        assert_eq!(cred, ServerCredential::Plain("pw-cleartext".into()));
        login_as("cp_password", &cred).await.expect("cleartext login with the userlist password");
    }
    let (client, front) = client_login(&auth, "cp_password", Some("pw-wrong")).await;
    assert_refused(client, front, "cp_password", FailReason::WrongPassword);
}

#[tokio::test]
async fn scram_client_cannot_use_an_md5_secret() {
    // An MD5 hash cannot check a SCRAM proof: even the right password fails, like PostgreSQL.
    let auth = authenticator("scram-sha-256", None);
    let (client, front) = client_login(&auth, "cp_md5", Some(password_of("cp_md5"))).await;
    assert_refused(client, front, "cp_md5", FailReason::Md5SecretUnderScram);
}

#[tokio::test]
async fn md5_client_with_md5_secret_and_hash_pass_through() {
    let auth = authenticator("md5", None);
    let (client, front) = client_login(&auth, "cp_md5", Some(password_of("cp_md5"))).await;
    client.expect("right password logs in");
    let cred = front.unwrap();
    assert!(matches!(cred, ServerCredential::Md5(_)), "{cred:?}");
    login_as("cp_md5", &cred).await.expect("MD5 pass-through login");

    let (client, front) = client_login(&auth, "cp_md5", Some("wrong")).await;
    assert_refused(client, front, "cp_md5", FailReason::WrongPassword);
    let (client, front) = client_login(&auth, "cp_no_such_role", Some("x")).await;
    assert_refused(client, front, "cp_no_such_role", FailReason::NoSecret);
}

#[tokio::test]
async fn md5_client_with_plaintext_and_with_scram_secret() {
    let auth = authenticator("md5", Some("\"cp_password\" \"pw-cleartext\"\n"));
    let (client, front) = client_login(&auth, "cp_password", Some("pw-cleartext")).await;
    client.expect("md5 against a plaintext secret");
    login_as("cp_password", &front.unwrap()).await.expect("cleartext login");
    // A SCRAM verifier runs SCRAM instead, as PostgreSQL's md5 method does.
    let (client, front) = client_login(&auth, "cp_scram", Some(password_of("cp_scram"))).await;
    client.expect("SCRAM under auth.type md5");
    login_as("cp_scram", &front.unwrap()).await.expect("SCRAM pass-through login");
}

#[tokio::test]
async fn trust_client_gets_the_servers_credential_from_the_secret_source() {
    let auth = authenticator("trust", Some("\"cp_password\" \"pw-cleartext\"\n"));
    // No password asked; the userlist's plaintext logs into a password-checking server.
    let (client, front) = client_login(&auth, "cp_password", None).await;
    client.expect("trust logs in");
    let cred = front.unwrap();
    assert_eq!(cred, ServerCredential::Plain("pw-cleartext".into()));
    login_as("cp_password", &cred).await.expect("login with the userlist password");
    // An MD5 hash from auth.query logs in by pass-through; a role without a secret gets None.
    let (client, front) = client_login(&auth, "cp_md5", None).await;
    client.unwrap();
    login_as("cp_md5", &front.unwrap()).await.expect("md5 pass-through");
    let (client, front) = client_login(&auth, "cp_trust", None).await;
    client.unwrap();
    let cred = front.unwrap();
    assert_eq!(cred, ServerCredential::None);
    login_as("cp_trust", &cred).await.expect("trust login");
    // A SCRAM verifier alone cannot log in.
    let (client, front) = client_login(&auth, "cp_scram", None).await;
    client.unwrap();
    assert_eq!(front.unwrap(), ServerCredential::None);
}

#[tokio::test]
async fn malformed_sasl_messages_are_protocol_violations() {
    let auth = authenticator("scram-sha-256", None);
    let initial_response =
        |mechanism: &str, data: &str| [mechanism.as_bytes(), b"\0", &(data.len() as i32).to_be_bytes(), data.as_bytes()].concat();
    let cases = [
        // Channel binding asked for, though the proxy offers none.
        initial_response("SCRAM-SHA-256", "p=tls-server-end-point,,n=,r=abc"),
        initial_response("SCRAM-SHA-256-PLUS", "n,,n=,r=abc"),
        initial_response("SCRAM-SHA-256", "n,,n=,r="),
        // No terminator after the mechanism name.
        b"SCRAM".to_vec(),
    ];
    for initial in &cases {
        let (port, front) = front(Arc::clone(&auth)).await;
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(&common::startup_packet("cp_scram", "postgres")).await.unwrap();
        let mut head = [0u8; 9];
        s.read_exact(&mut head).await.unwrap();
        assert_eq!((head[0], &head[5..9]), (b'R', &10i32.to_be_bytes()[..]), "AuthenticationSASL first");
        let len = i32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
        let mut mechs = vec![0u8; len - 8];
        s.read_exact(&mut mechs).await.unwrap();
        assert_eq!(mechs, b"SCRAM-SHA-256\0\0");
        s.write_all(&frame(b'p', initial)).await.unwrap();
        let reply = common::read_to_close(&mut s).await;
        assert_eq!(common::first_error_code(&reply).as_deref(), Some("08P01"), "{}", String::from_utf8_lossy(&reply));
        assert!(matches!(front.await.unwrap(), Err(AuthError::Protocol { .. })));
    }
}

#[test]
fn setup_errors_name_the_key() {
    let pg = test_support::postgres();
    let load = |flags: &[(&'static str, String)]| {
        let mut o = Overrides::default();
        o.flags.insert("upstream.url", format!("postgres://{}@{}/postgres", pg.superuser(), pg.addr()));
        o.flags.insert("metrics.listen", "off".into());
        for (k, v) in flags {
            o.flags.insert(k, v.clone());
        }
        let cfg = config::load(None, &o, |_| None).expect("test config is valid");
        Authenticator::from_config(&cfg).err().map(|e| e.to_string())
    };
    let bad = write_userlist("\"ok\" \"pw\"\nnot quoted\n");
    let err = load(&[("auth.file", bad.clone())]).expect("a malformed userlist is refused");
    assert!(err.starts_with("auth.file: ") && err.contains("line 2:"), "{err}");
    let err = load(&[]).expect("no secret source for scram-sha-256");
    assert!(err.starts_with("auth.type: "), "{err}");
    assert_eq!(load(&[("auth.type", "trust".into())]), None);
}

#[tokio::test]
async fn auth_query_connection_is_kept_and_reopened_when_broken() {
    // The "secret" this query returns is the pid of the backend that ran it.
    let pg = test_support::postgres();
    let mut o = Overrides::default();
    o.flags.insert("upstream.url", format!("postgres://{}@{}/postgres", pg.superuser(), pg.addr()));
    o.flags.insert("metrics.listen", "off".into());
    o.flags.insert("auth.user", pg.superuser().into());
    o.flags.insert("auth.query", "SELECT $1::text, pg_backend_pid()::text".into());
    let auth = Authenticator::from_config(&config::load(None, &o, |_| None).unwrap()).unwrap();
    let pid = || async {
        match secret(&auth, "anyone").await {
            Secret::Plain(p) => p.parse::<i32>().unwrap(),
            other => panic!("{other:?}"),
        }
    };
    let first = pid().await;
    for _ in 0..3 {
        assert_eq!(pid().await, first, "lookups share one kept connection");
    }
    // Concurrent lookups too (pipelined on it).
    let all = futures_util::future::join_all((0..20).map(|_| pid())).await;
    assert!(all.iter().all(|&p| p == first), "{all:?}");
    let admin = test_support::connect(&pg.url("postgres")).await;
    let killed: bool = admin.query_one("SELECT pg_terminate_backend($1)", &[&first]).await.unwrap().get(0);
    assert!(killed);
    // The next lookup finds the connection broken and opens another.
    let second = pid().await;
    assert_ne!(second, first);
    assert_eq!(pid().await, second);
}

#[tokio::test]
async fn auth_query_errors_reach_the_caller_without_secrets() {
    let pg = test_support::postgres();
    let mut o = Overrides::default();
    o.flags.insert("upstream.url", format!("postgres://{}@{}/postgres", pg.superuser(), pg.addr()));
    o.flags.insert("metrics.listen", "off".into());
    o.flags.insert("auth.user", pg.superuser().into());
    o.flags.insert("auth.query", "SELECT usename, passwd FROM no_such_table WHERE usename = $1".into());
    let cfg = config::load(None, &o, |_| None).unwrap();
    let auth = Authenticator::from_config(&cfg).unwrap();
    let err = auth.secret("cp_scram", "postgres").await.unwrap_err();
    assert!(matches!(err, AuthError::Lookup { .. }), "{err}");
    assert!(err.to_string().contains("no_such_table"), "{err}");
    // The client is told only that the lookup failed.
    let msg = err.to_client();
    assert_eq!(msg[0], b'E');
    let text = String::from_utf8_lossy(&msg);
    assert!(
        text.contains("08006") && text.contains("could not look up the password of user \"cp_scram\"") && !text.contains("no_such_table"),
        "{text}"
    );
}

/// libpq (psql) as a second real driver: SCRAM and MD5, right and wrong passwords.
#[tokio::test]
async fn psql_logs_in_through_the_front_end() {
    let cases = [("scram-sha-256", "cp_scram"), ("md5", "cp_md5")];
    for (kind, role) in cases {
        let auth = authenticator(kind, None);
        for (password, ok) in [(password_of(role), true), ("wrong", false)] {
            let (port, front) = front(Arc::clone(&auth)).await;
            let conninfo = format!("host=127.0.0.1 port={port} user={role} dbname=postgres sslmode=disable");
            let pw = password.to_string();
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new("psql")
                    .env("PGPASSWORD", pw)
                    .args([conninfo.as_str(), "-X", "-w", "-c", "\\q"])
                    .output()
                    .expect("psql is needed for this test: apt-get install -y postgresql-client-15")
            })
            .await
            .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let front = front.await.unwrap();
            if ok {
                assert!(out.status.success(), "{kind} {role}: {stderr}");
                assert!(front.is_ok(), "{front:?}");
            } else {
                assert!(!out.status.success());
                assert!(stderr.contains(&format!("password authentication failed for user \"{role}\"")), "{stderr}");
                assert!(matches!(front, Err(AuthError::Failed { .. })), "{front:?}");
            }
        }
    }
}
