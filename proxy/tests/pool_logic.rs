//! The transaction-pooling bookkeeping (`pool::prepared`, `pool::carry`) against a real
//! PostgreSQL: a client's batches run through the planner on whichever of two server connections
//! it is given must look to the client exactly as the same batches on its own direct connection;
//! each server connection's record must match `pg_prepared_statements`; and the settings sync
//! must leave a pooled connection showing what a direct login with the same startup parameters
//! shows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test

mod common;

use std::sync::Arc;

use bytes::BytesMut;
use citus_proxy::pool::carry::{sync_sql, ClientSettings, ServerSettings};
use citus_proxy::pool::prepared::{Planner, ResponseFixups, ServerStatements, StatementIds};
use common::{fe, pg_addr, raw_session, read_until_ready, tags, RawMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One pooled server connection and the proxy's records of it.
struct Server {
    stream: TcpStream,
    statements: ServerStatements,
    fixups: ResponseFixups,
}

impl Server {
    async fn open(capacity: usize) -> Server {
        Server { stream: raw_session(pg_addr()).await, statements: ServerStatements::new(capacity), fixups: ResponseFixups::new() }
    }

    /// Names in the server's `pg_prepared_statements`, sorted.
    async fn prepared(&mut self) -> Vec<String> {
        self.stream.write_all(&fe::query("SELECT name FROM pg_prepared_statements ORDER BY name")).await.unwrap();
        // A simple query drops the server's unnamed statement.
        self.statements.clear_unnamed();
        data_rows(&read_until_ready(&mut self.stream, 1).await)
    }

    /// Ids the record says the server holds, as server names, sorted.
    fn recorded(&self) -> Vec<String> {
        let mut v: Vec<String> = self.statements.ids().map(|id| format!("citus_proxy_{id}")).collect();
        v.sort();
        v
    }
}

fn data_rows(msgs: &[RawMsg]) -> Vec<String> {
    msgs.iter()
        .filter(|(t, _)| *t == b'D')
        .map(|(_, b)| {
            let len = i32::from_be_bytes(b[2..6].try_into().unwrap()) as usize;
            String::from_utf8_lossy(&b[6..6 + len]).into_owned()
        })
        .collect()
}

/// Splits concatenated frontend frames.
fn frames(bytes: &[u8]) -> Vec<&[u8]> {
    let mut v = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        v.push(&rest[..1 + len]);
        rest = &rest[1 + len..];
    }
    v
}

struct Client {
    direct: TcpStream,
    statements: citus_proxy::pool::prepared::ClientStatements,
}

/// Runs `batch` (frames ending in Syncs or Queries) through the planner on `server`; returns
/// what the client receives.
async fn pooled(planner: &Planner, client: &mut Client, server: &mut Server, batch: &[u8]) -> Vec<RawMsg> {
    let mut out = BytesMut::new();
    let mut readies = 0;
    for frame in frames(batch) {
        let (tag, body) = (frame[0], &frame[5..]);
        let (c, s, f) = (&mut client.statements, &mut server.statements, &mut server.fixups);
        match tag {
            b'P' => planner.on_parse(c, s, body, &mut out, f).unwrap(),
            b'B' => planner.on_bind(c, s, body, &mut out, f).unwrap(),
            b'D' => planner.on_describe(c, s, body, &mut out, f).unwrap(),
            b'C' => planner.on_close(c, s, body, &mut out, f).unwrap(),
            b'S' | b'Q' => {
                if tag == b'Q' {
                    planner.on_query(c, s);
                }
                out.extend_from_slice(frame);
                f.expect_ready();
                readies += 1;
            }
            _ => out.extend_from_slice(frame),
        }
    }
    server.stream.write_all(&out).await.unwrap();
    let mut seen = Vec::new();
    while readies > 0 {
        let tag = server.stream.read_u8().await.unwrap();
        let len = server.stream.read_i32().await.unwrap() as usize;
        let mut body = vec![0u8; len - 4];
        server.stream.read_exact(&mut body).await.unwrap();
        match tag {
            b'1' | b'3' => {
                let mut frame = [tag, 0, 0, 0, 4];
                if server.fixups.on_complete().apply(&mut frame) {
                    seen.push((frame[0], body));
                }
            }
            b'Z' => {
                server.fixups.on_ready(&mut server.statements);
                readies -= 1;
                seen.push((tag, body));
            }
            b'C' => {
                server.statements.on_command_complete(&body);
                seen.push((tag, body));
            }
            _ => seen.push((tag, body)),
        }
    }
    assert!(server.fixups.is_empty(), "every answer accounted for");
    seen
}

/// The same batch on the client's own direct connection.
async fn direct(client: &mut Client, batch: &[u8]) -> Vec<RawMsg> {
    let readies = frames(batch).iter().filter(|f| f[0] == b'S' || f[0] == b'Q').count();
    client.direct.write_all(batch).await.unwrap();
    read_until_ready(&mut client.direct, readies).await
}

/// Runs `batch` both ways and asserts the client sees the same; returns the tags.
async fn same(planner: &Planner, client: &mut Client, server: &mut Server, batch: &[u8], what: &str) -> String {
    let want = direct(client, batch).await;
    let got = pooled(planner, client, server, batch).await;
    assert_eq!(tags(&got), tags(&want), "{what}: message sequence differs (pooled vs direct)");
    assert_eq!(got, want, "{what}: message bodies differ (pooled vs direct)");
    tags(&got)
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

async fn client(planner: &Planner) -> Client {
    Client { direct: raw_session(pg_addr()).await, statements: planner.client() }
}

#[tokio::test]
async fn named_statements_follow_the_client_across_server_connections() {
    let planner = Planner::new(Arc::new(StatementIds::default()));
    let mut a = client(&planner).await;
    let mut b = client(&planner).await;
    let mut s1 = Server::open(10).await;
    let mut s2 = Server::open(10).await;

    let prepare = cat(&[fe::parse("q", "SELECT $1::int + 1", &[]), fe::bind("", "q", &[Some("41")]), fe::execute("", 0), fe::sync()]);
    assert_eq!(same(&planner, &mut a, &mut s1, &prepare, "parse and run").await, "12DCZ");
    // Next transaction on the other connection: the statement is prepared there on the way.
    let run = cat(&[fe::bind("", "q", &[Some("1")]), fe::describe(b'S', "q"), fe::execute("", 0), fe::sync()]);
    assert_eq!(same(&planner, &mut a, &mut s2, &run, "bind elsewhere").await, "2tTDCZ");
    // Another client preparing the same text where it exists: answered by a noop Close.
    let other = cat(&[fe::parse("mine", "SELECT $1::int + 1", &[]), fe::bind("", "mine", &[Some("2")]), fe::execute("", 0), fe::sync()]);
    assert_eq!(same(&planner, &mut b, &mut s1, &other, "shared statement").await, "12DCZ");
    assert_eq!(s1.prepared().await, vec!["citus_proxy_1"]);
    assert_eq!(s2.prepared().await, vec!["citus_proxy_1"]);

    // Close forgets it for this client only; Close of an unknown name is fine; then Bind of the
    // closed name fails as PostgreSQL says, in place, and the batch skips to Sync.
    let close = cat(&[fe::close(b'S', "q"), fe::close(b'S', "never"), fe::sync()]);
    assert_eq!(same(&planner, &mut a, &mut s2, &close, "close").await, "33Z");
    let after_close = cat(&[fe::parse("", "SELECT 1", &[]), fe::bind("", "q", &[Some("1")]), fe::execute("", 0), fe::sync()]);
    assert_eq!(same(&planner, &mut a, &mut s1, &after_close, "bind of a closed name").await, "1EZ");
    assert_eq!(same(&planner, &mut b, &mut s2, &cat(&[fe::describe(b'S', "mine"), fe::sync()]), "other client keeps it").await, "tTZ");

    // Several batches in flight at once, the middle one failing.
    let pipelined = cat(&[
        fe::parse("p1", "SELECT 'p1'", &[]),
        fe::sync(),
        fe::parse("p2", "SELECT 'p2'", &[]),
        fe::bind("", "nope", &[]),
        fe::parse("p3", "SELECT 'p3'", &[]),
        fe::sync(),
        fe::bind("", "p1", &[]),
        fe::execute("", 0),
        fe::sync(),
    ]);
    assert_eq!(same(&planner, &mut b, &mut s2, &pipelined, "pipelined").await, "1Z1EZ2DCZ");
    assert_eq!(s2.prepared().await, s2.recorded());
}

#[tokio::test]
async fn error_skipped_batches_leave_the_record_as_the_server_is() {
    let planner = Planner::new(Arc::new(StatementIds::default()));
    let mut c = client(&planner).await;
    let mut s = Server::open(1).await;
    assert_eq!(same(&planner, &mut c, &mut s, &cat(&[fe::parse("x", "SELECT 'x'", &[]), fe::sync()]), "x").await, "1Z");
    let x = s.recorded();
    // The error comes first: the Close that would evict x and the Parse of y never run.
    let skipped = cat(&[fe::bind("", "nope", &[]), fe::parse("y", "SELECT 'y'", &[]), fe::sync()]);
    assert_eq!(same(&planner, &mut c, &mut s, &skipped, "skipped").await, "EZ");
    assert_eq!(s.prepared().await, x);
    assert_eq!(s.recorded(), x);
    // Here the Close runs, then the Parse fails.
    let failing = cat(&[fe::parse("z", "SELEC 'z'", &[]), fe::sync()]);
    assert_eq!(same(&planner, &mut c, &mut s, &failing, "failing parse").await, "EZ");
    assert_eq!(s.prepared().await, Vec::<String>::new());
    assert_eq!(s.recorded(), Vec::<String>::new());
    // x was closed to make room for z: it is prepared again when used.
    let again = cat(&[fe::bind("", "x", &[]), fe::execute("", 0), fe::sync()]);
    assert_eq!(same(&planner, &mut c, &mut s, &again, "x again").await, "2DCZ");
    assert_eq!(s.prepared().await, s.recorded());
    // DISCARD ALL empties the server; the record follows its CommandComplete.
    let discard = fe::query("DISCARD ALL");
    assert_eq!(same(&planner, &mut c, &mut s, &discard, "discard").await, "CZ");
    assert!(s.recorded().is_empty());
}

#[tokio::test]
async fn unnamed_statement_is_resent_where_missing_and_dropped_by_a_query() {
    let planner = Planner::new(Arc::new(StatementIds::default()));
    let mut c = client(&planner).await;
    let mut other = client(&planner).await;
    let mut s1 = Server::open(10).await;
    let mut s2 = Server::open(10).await;
    let parse = cat(&[fe::parse("", "SELECT $1::text || '!'", &[]), fe::sync()]);
    assert_eq!(same(&planner, &mut c, &mut s1, &parse, "unnamed parse").await, "1Z");
    let run = cat(&[fe::bind("", "", &[Some("a")]), fe::execute("", 0), fe::sync()]);
    assert_eq!(same(&planner, &mut c, &mut s2, &run, "unnamed elsewhere").await, "2DCZ");
    // Another client's unnamed Parse replaces the server's; the client's is re-sent.
    let theirs = cat(&[fe::parse("", "SELECT 2", &[]), fe::sync()]);
    assert_eq!(same(&planner, &mut other, &mut s1, &theirs, "other unnamed").await, "1Z");
    assert_eq!(same(&planner, &mut c, &mut s1, &run, "unnamed back").await, "2DCZ");
    // A simple query drops it, for the client as on its direct connection.
    assert_eq!(same(&planner, &mut c, &mut s1, &fe::query("SELECT 1"), "query").await, "TDCZ");
    assert_eq!(same(&planner, &mut c, &mut s2, &run, "unnamed after a query").await, "EZ");
}

/// A direct session logged in with `params` as startup parameters.
async fn direct_with(params: &[(&str, &str)]) -> TcpStream {
    let mut body = 196608i32.to_be_bytes().to_vec();
    for (k, v) in [("user", test_support::postgres().superuser()), ("database", "postgres")].iter().chain(params) {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    let mut s = TcpStream::connect(pg_addr()).await.unwrap();
    s.write_all(&packet).await.unwrap();
    let msgs = read_until_ready(&mut s, 1).await;
    assert!(!tags(&msgs).contains('E'), "startup with {params:?} failed");
    s
}

async fn show(s: &mut TcpStream, names: &[&str]) -> Vec<String> {
    let sql: String = names.iter().map(|n| format!("SHOW {n};")).collect();
    s.write_all(&fe::query(&sql)).await.unwrap();
    data_rows(&read_until_ready(s, 1).await)
}

async fn simple(s: &mut TcpStream, sql: &str) -> String {
    s.write_all(&fe::query(sql)).await.unwrap();
    let msgs = read_until_ready(s, 1).await;
    let errors: Vec<String> = msgs.iter().filter(|(t, _)| *t == b'E').map(|(_, b)| String::from_utf8_lossy(b).into_owned()).collect();
    assert!(errors.is_empty(), "{sql}: {errors:?}");
    tags(&msgs)
}

#[tokio::test]
async fn settings_sync_makes_a_pooled_connection_look_like_a_direct_login() {
    let params = [
        ("application_name", "it's a \\ test"),
        ("search_path", "\"$user\", Public, \"Odd\"\"Name\""),
        ("DateStyle", "SQL, DMY"),
        ("options", "-c work_mem=3MB --statement-timeout=7s -c x.y=a\\ b"),
    ];
    let names =
        ["application_name", "search_path", "datestyle", "work_mem", "statement_timeout", "x.y", "timezone", "transaction_isolation"];
    let mut reference = direct_with(&params).await;
    let want = show(&mut reference, &names).await;

    let owned: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut client = ClientSettings::new(&owned);
    let mut record = ServerSettings::new();
    let mut server = raw_session(pg_addr()).await;
    let mut sql = String::new();
    assert!(sync_sql(&client, &record, &mut sql));
    simple(&mut server, &sql).await;
    record.applied(&client);
    assert_eq!(show(&mut server, &names).await, want);

    // The client changes things in transactions; the reference runs the same statements.
    let txs: [(&[&str], bool); 3] = [
        (&["SET TIME ZONE 'Asia/Tokyo'", "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ"], true),
        (&["BEGIN", "SET work_mem = '9MB'", "ROLLBACK"], false),
        (&["RESET application_name", "RESET search_path"], true),
    ];
    for (statements, committed) in txs {
        // The same statements on the pooled connection the client holds, and on the reference.
        for st in statements {
            client.on_statement(st);
            simple(&mut reference, st).await;
            simple(&mut server, st).await;
        }
        client.on_transaction_end(committed);
        record.follow(&mut client);
    }
    let want = show(&mut reference, &names).await;
    // RESET put the held connection to the server's defaults, not the client's startup values:
    // the next sync sets those again, and only those.
    let mut sql = String::new();
    assert!(sync_sql(&client, &record, &mut sql));
    assert_eq!(sql.matches('\n').count(), 2, "only the two reset settings: {sql}");
    simple(&mut server, &sql).await;
    record.applied(&client);
    assert_eq!(show(&mut server, &names).await, want, "held connection after\n{sql}");
    assert!(!sync_sql(&client, &record, &mut String::new()));
    // A fresh pooled connection gets all of it.
    let mut fresh = raw_session(pg_addr()).await;
    let mut sql = String::new();
    assert!(sync_sql(&client, &ServerSettings::new(), &mut sql));
    simple(&mut fresh, &sql).await;
    assert_eq!(show(&mut fresh, &names).await, want, "fresh connection after\n{sql}");

    // Another client with no settings then gets this connection: everything back to defaults.
    let plain = ClientSettings::new(&[]);
    let mut record = ServerSettings::new();
    record.applied(&client);
    let mut sql = String::new();
    assert!(sync_sql(&plain, &record, &mut sql));
    simple(&mut fresh, &sql).await;
    let mut defaults = raw_session(pg_addr()).await;
    // A custom setting, once defined, stays defined (empty) in PostgreSQL after RESET too.
    let builtin: Vec<&str> = names.iter().copied().filter(|n| *n != "x.y").collect();
    assert_eq!(show(&mut fresh, &builtin).await, show(&mut defaults, &builtin).await, "back to defaults after\n{sql}");
    assert_eq!(show(&mut fresh, &["x.y"]).await, vec![""]);
}
