//! The statement hooks see exactly what the client sent and what the server answered: SQL of
//! simple queries, Parse (name, SQL, declared types), Bind (statement, values, formats), one
//! on_ready per ReadyForQuery with the right transaction status and elapsed time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use citus_proxy::hooks::{HooksFactory, StatementHooks, StatementNote};
use citus_proxy::wire::bind::BindView;
use citus_proxy::wire::parse::ParseView;
use citus_proxy::wire::ready::TxStatus;
use common::{connect_observed, fe, raw_session, read_until_ready, Proxy, Seen};
use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_postgres::types::{Format, IsNull, ToSql, Type};

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Query(String),
    Parse { name: String, sql: String, types: Vec<u32> },
    Bind { portal: String, statement: String, params: Vec<Option<Vec<u8>>>, formats: Vec<i16>, results: Vec<i16> },
    Close { kind: u8, name: String },
    Sync,
    Ready(TxStatus),
    Error(String),
}

#[derive(Default)]
struct Log {
    events: Vec<Ev>,
    elapsed: Vec<Duration>,
}

type Shared = Arc<Mutex<Log>>;

#[derive(Default)]
struct Recorder {
    sessions: Mutex<Vec<(String, String, Shared)>>,
}

impl Recorder {
    fn last(&self) -> Shared {
        Arc::clone(&self.sessions.lock().unwrap().last().expect("a session started").2)
    }
}

struct SessionRecorder(Shared);

/// A NoticeResponse a hook attaches to statements whose SQL contains `/*tag*/`.
fn notice_frame(msg: &str) -> bytes::Bytes {
    let mut body = Vec::new();
    for (k, v) in [(b'S', "NOTICE"), (b'V', "NOTICE"), (b'C', "00000"), (b'M', msg)] {
        body.push(k);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut f = vec![b'N'];
    f.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    f.extend_from_slice(&body);
    f.into()
}

impl StatementHooks for SessionRecorder {
    fn on_query(&mut self, sql: &[u8]) -> StatementNote {
        let sql = String::from_utf8_lossy(sql).into_owned();
        let mut note = StatementNote::default();
        if let Some(tag) = sql.split("/*").nth(1).and_then(|r| r.split("*/").next()) {
            note.notice = Some(notice_frame(&format!("hook note for {tag}")));
        }
        self.0.lock().unwrap().events.push(Ev::Query(sql));
        note
    }
    fn on_parse(&mut self, p: &ParseView<'_>) {
        self.0.lock().unwrap().events.push(Ev::Parse {
            name: String::from_utf8_lossy(p.statement).into_owned(),
            sql: String::from_utf8_lossy(p.sql).into_owned(),
            types: p.param_types().collect(),
        });
    }
    fn on_bind(&mut self, b: &BindView<'_>) {
        self.0.lock().unwrap().events.push(Ev::Bind {
            portal: String::from_utf8_lossy(b.portal).into_owned(),
            statement: String::from_utf8_lossy(b.statement).into_owned(),
            params: b.params().map(|p| p.map(<[u8]>::to_vec)).collect(),
            formats: b.param_formats().collect(),
            results: b.result_formats().collect(),
        });
    }
    fn on_close(&mut self, kind: u8, name: &[u8]) {
        self.0.lock().unwrap().events.push(Ev::Close { kind, name: String::from_utf8_lossy(name).into_owned() });
    }
    fn on_sync(&mut self, _cacheable: Option<citus_proxy_cache::Protocol>) -> StatementNote {
        self.0.lock().unwrap().events.push(Ev::Sync);
        StatementNote::default()
    }
    fn on_ready(&mut self, status: TxStatus, elapsed: Duration) {
        let mut log = self.0.lock().unwrap();
        log.events.push(Ev::Ready(status));
        log.elapsed.push(elapsed);
    }
    fn on_backend_error(&mut self, body: &[u8]) {
        let code = body
            .split(|&b| b == 0)
            .find(|f| f.first() == Some(&b'C'))
            .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
            .unwrap_or_default();
        self.0.lock().unwrap().events.push(Ev::Error(code));
    }
}

impl HooksFactory for Recorder {
    fn session_hooks(&self, user: &str, database: &str, _startup: &[(String, String)]) -> Box<dyn StatementHooks> {
        let log = Shared::default();
        self.sessions.lock().unwrap().push((user.to_string(), database.to_string(), Arc::clone(&log)));
        Box::new(SessionRecorder(log))
    }
}

async fn recorded_proxy() -> (Proxy, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let proxy = Proxy::start_with(&[], Some(Arc::clone(&rec) as Arc<dyn HooksFactory>)).await;
    (proxy, rec)
}

fn events(log: &Shared) -> Vec<Ev> {
    log.lock().unwrap().events.clone()
}

/// A parameter sent in text format (the hook must report format 0 for it).
#[derive(Debug)]
struct TextParam(&'static str);
impl ToSql for TextParam {
    fn to_sql(&self, _: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    fn encode_format(&self, _: &Type) -> Format {
        Format::Text
    }
    tokio_postgres::types::to_sql_checked!();
}

#[tokio::test]
async fn on_query_and_transaction_status_sequence() {
    let (proxy, rec) = recorded_proxy().await;
    let c = test_support::connect(&proxy.url("postgres")).await;
    let log = rec.last();
    {
        let s = rec.sessions.lock().unwrap();
        assert_eq!((s[0].0.as_str(), s[0].1.as_str()), (test_support::postgres().superuser(), "postgres"));
    }
    assert!(events(&log).is_empty(), "nothing before the first statement: {:?}", events(&log));
    for sql in ["BEGIN", "SELECT 1", "COMMIT", "BEGIN"] {
        c.batch_execute(sql).await.unwrap();
    }
    c.batch_execute("SELECT 1/0").await.unwrap_err();
    c.batch_execute("SELECT 1").await.unwrap_err();
    c.batch_execute("ROLLBACK").await.unwrap();
    c.simple_query("SELECT 1; SELECT 'é'").await.unwrap();
    use TxStatus::*;
    // A client may send its next Query as soon as it has read an ErrorResponse, before the
    // proxy has seen that statement's ReadyForQuery, so kinds are compared one by one and the
    // n-th on_ready is checked to come after the n-th on_query.
    let ev = events(&log);
    let queries: Vec<&Ev> = ev.iter().filter(|e| matches!(e, Ev::Query(_))).collect();
    let q = |s: &str| Ev::Query(s.to_string());
    assert_eq!(
        queries,
        [q("BEGIN"), q("SELECT 1"), q("COMMIT"), q("BEGIN"), q("SELECT 1/0"), q("SELECT 1"), q("ROLLBACK"), q("SELECT 1; SELECT 'é'")]
            .iter()
            .collect::<Vec<_>>()
    );
    let statuses: Vec<TxStatus> = ev
        .iter()
        .filter_map(|e| match e {
            Ev::Ready(s) => Some(*s),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, [InTransaction, InTransaction, Idle, InTransaction, Failed, Failed, Idle, Idle]);
    let errors: Vec<&Ev> = ev.iter().filter(|e| matches!(e, Ev::Error(_))).collect();
    assert_eq!(errors, [Ev::Error("22012".into()), Ev::Error("25P02".into())].iter().collect::<Vec<_>>());
    let pos = |pred: &dyn Fn(&Ev) -> bool| ev.iter().enumerate().filter(|(_, e)| pred(e)).map(|(i, _)| i).collect::<Vec<_>>();
    let (qpos, rpos) = (pos(&|e| matches!(e, Ev::Query(_))), pos(&|e| matches!(e, Ev::Ready(_))));
    for (n, (qi, ri)) in qpos.iter().zip(&rpos).enumerate() {
        assert!(qi < ri, "on_ready #{n} before its on_query: {ev:?}");
    }
    // Without errors in between, the whole sequence is exact.
    let tail: Vec<Ev> = ev[ev.len() - 2..].to_vec();
    assert_eq!(tail, vec![q("SELECT 1; SELECT 'é'"), Ev::Ready(Idle)]);
    assert_eq!(
        ev[..6].to_vec(),
        vec![q("BEGIN"), Ev::Ready(InTransaction), q("SELECT 1"), Ev::Ready(InTransaction), q("COMMIT"), Ev::Ready(Idle)]
    );
    proxy.stop().await;
}

#[tokio::test]
async fn on_parse_and_on_bind_see_names_sql_types_values_and_formats() {
    let (proxy, rec) = recorded_proxy().await;
    let c = test_support::connect(&proxy.url("postgres")).await;
    let log = rec.last();
    let sql = "SELECT $1::int8 + 1, $2::text";
    let st = c.prepare_typed(sql, &[Type::INT8]).await.unwrap();
    let r = c.query_one(&st, &[&41i64, &TextParam("hi")]).await.unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, String>(1)), (42, "hi".to_string()));
    c.query_typed("SELECT $1::int4 * 2", &[(&7i32, Type::INT4)]).await.unwrap();
    let ev = events(&log);
    let Some(Ev::Parse { name, .. }) = ev.first() else { panic!("first event is a Parse: {ev:?}") };
    let name = name.clone();
    assert!(!name.is_empty(), "prepare uses a named statement");
    use Ev::*;
    assert_eq!(
        ev,
        vec![
            Parse { name: name.clone(), sql: sql.into(), types: vec![Type::INT8.oid()] },
            Sync,
            Ready(TxStatus::Idle),
            Bind {
                portal: String::new(),
                statement: name.clone(),
                params: vec![Some(41i64.to_be_bytes().to_vec()), Some(b"hi".to_vec())],
                formats: vec![1, 0],
                results: vec![1],
            },
            Sync,
            Ready(TxStatus::Idle),
            Parse { name: String::new(), sql: "SELECT $1::int4 * 2".into(), types: vec![Type::INT4.oid()] },
            Bind {
                portal: String::new(),
                statement: String::new(),
                params: vec![Some(7i32.to_be_bytes().to_vec())],
                formats: vec![1],
                results: vec![1],
            },
            Sync,
            Ready(TxStatus::Idle),
        ]
    );

    // Raw: a named portal, text parameters with a NULL, no format codes at all.
    let mut s = raw_session(proxy.addr).await;
    let log = rec.last();
    let mut bytes = fe::parse("raw_st", "SELECT $1::text, $2::int", &[0, 23]);
    bytes.extend(fe::query("BEGIN"));
    bytes.extend(fe::bind("portal_a", "raw_st", &[Some("text ü"), None]));
    bytes.extend(fe::execute("portal_a", 0));
    bytes.extend(fe::sync());
    bytes.extend(fe::query("COMMIT"));
    s.write_all(&bytes).await.unwrap();
    read_until_ready(&mut s, 3).await;
    let ev: Vec<Ev> = events(&log).into_iter().filter(|e| !matches!(e, Ready(_))).collect();
    assert_eq!(
        ev,
        vec![
            Parse { name: "raw_st".into(), sql: "SELECT $1::text, $2::int".into(), types: vec![0, 23] },
            Query("BEGIN".into()),
            Bind {
                portal: "portal_a".into(),
                statement: "raw_st".into(),
                params: vec![Some("text ü".as_bytes().to_vec()), None],
                formats: vec![],
                results: vec![],
            },
            Sync,
            Query("COMMIT".into()),
        ]
    );
    let statuses: Vec<Ev> = events(&log).into_iter().filter(|e| matches!(e, Ready(_))).collect();
    assert_eq!(statuses, vec![Ready(TxStatus::InTransaction), Ready(TxStatus::InTransaction), Ready(TxStatus::Idle)]);
    drop(st);
    proxy.stop().await;
}

#[tokio::test]
async fn on_close_sees_statements_and_portals_closed() {
    let (proxy, rec) = recorded_proxy().await;
    let mut s = raw_session(proxy.addr).await;
    let log = rec.last();
    let bytes =
        [fe::parse("s1", "SELECT 1", &[]), fe::bind("p1", "s1", &[]), fe::close(b'P', "p1"), fe::close(b'S', "s1"), fe::sync()].concat();
    s.write_all(&bytes).await.unwrap();
    let msgs = read_until_ready(&mut s, 1).await;
    assert_eq!(common::tags(&msgs), "1233Z");
    let ev: Vec<Ev> = events(&log).into_iter().filter(|e| matches!(e, Ev::Close { .. })).collect();
    assert_eq!(ev, vec![Ev::Close { kind: b'P', name: "p1".into() }, Ev::Close { kind: b'S', name: "s1".into() }]);
    proxy.stop().await;
}

#[tokio::test]
#[allow(clippy::await_holding_lock)] // the guard is dropped before the last await; clippy does not follow drop()
async fn elapsed_covers_the_statement() {
    let (proxy, rec) = recorded_proxy().await;
    let c = test_support::connect(&proxy.url("postgres")).await;
    let log = rec.last();
    c.simple_query("SELECT pg_sleep(0.2)").await.unwrap();
    let st = c.prepare("SELECT pg_sleep($1)").await.unwrap();
    c.query(&st, &[&0.2f64]).await.unwrap();
    c.query_typed("SELECT pg_sleep($1)", &[(&0.2f64, Type::FLOAT8)]).await.unwrap();
    let l = log.lock().unwrap();
    // simple query, prepare (fast), execute, query_typed
    assert_eq!(l.elapsed.len(), 4, "{:?}", l.events);
    for i in [0, 2, 3] {
        assert!(l.elapsed[i] >= Duration::from_millis(200), "statement {i}: elapsed {:?} < 200 ms", l.elapsed[i]);
    }
    println!("elapsed: {:?}", l.elapsed);
    drop(l);
    proxy.stop().await;
}

#[tokio::test]
async fn one_on_ready_per_query_and_sync() {
    let (proxy, rec) = recorded_proxy().await;
    let mut c = test_support::connect(&proxy.url("postgres")).await;
    let log = rec.last();
    c.batch_execute("CREATE TEMP TABLE h (a int, b text); INSERT INTO h SELECT g, 'v' || g FROM generate_series(1, 50) g").await.unwrap();
    let st = c.prepare("SELECT b FROM h WHERE a = $1").await.unwrap();
    let results = join_all((1..=60i32).map(|i| {
        let (c, st) = (&c, &st);
        async move { c.query_opt(st, &[&i]).await }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| matches!(r, Ok(Some(_)))).count(), 50);
    let errs = join_all(["SELECT 1", "SELECT 1/0", "SELECT 'x'::int", "SELECT 2"].map(|s| {
        let c = &c;
        async move { c.query(s, &[]).await.is_ok() }
    }))
    .await;
    assert_eq!(errs, vec![true, false, false, true]);
    {
        let tx = c.transaction().await.unwrap();
        let portal = tx.bind("SELECT a FROM h ORDER BY a", &[]).await.unwrap();
        while !tx.query_portal(&portal, 7).await.unwrap().is_empty() {}
        tx.batch_execute("SELECT 1/0").await.unwrap_err();
        tx.rollback().await.unwrap();
    }
    let out = c.copy_out("COPY h TO STDOUT").await.unwrap();
    let n = Box::pin(out).fold(0usize, |n, b| async move { n + b.unwrap().len() }).await;
    assert!(n > 0);
    c.simple_query("SELECT 1; SELECT 2; SELECT 3").await.unwrap();
    drop(st); // Close + Sync
    c.simple_query("SELECT 'fence'").await.unwrap();
    let ev = events(&log);
    let queries = ev.iter().filter(|e| matches!(e, Ev::Query(_))).count();
    let syncs = ev.iter().filter(|e| matches!(e, Ev::Sync)).count();
    let readies = ev.iter().filter(|e| matches!(e, Ev::Ready(_))).count();
    println!("queries {queries}, syncs {syncs}, on_ready {readies}");
    assert!(syncs > 60 && queries >= 4, "the workload ran: {queries} queries, {syncs} syncs");
    assert_eq!(readies, queries + syncs, "one on_ready per Query and per Sync");
    proxy.stop().await;
}

/// Extended-protocol COPY FROM: the client's Sync after Execute arrives while the server is in
/// copy-in mode, and PostgreSQL ignores it (no ReadyForQuery for it). The proxy must not keep
/// waiting for that ReadyForQuery, or every later statement is answered against the wrong entry:
/// its elapsed time is stale and a hook's notice lands on the next statement.
#[tokio::test]
#[allow(clippy::await_holding_lock)] // the guard is dropped before the last await; clippy does not follow drop()
async fn extended_copy_in_keeps_statements_in_step() {
    let (proxy, rec) = recorded_proxy().await;
    let o = connect_observed(&proxy.url("postgres")).await;
    let log = rec.last();
    o.client.batch_execute("CREATE TEMP TABLE ci (a int)").await.unwrap();
    for fail in [false, true] {
        let sink = o.client.copy_in::<_, bytes::Bytes>("COPY ci FROM STDIN").await.unwrap();
        let mut sink = Box::pin(sink);
        sink.send(bytes::Bytes::from_static(b"1\n2\n")).await.unwrap();
        if fail {
            drop(sink); // CopyFail + Sync
        } else {
            assert_eq!(sink.as_mut().finish().await.unwrap(), 2);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = log.lock().unwrap().elapsed.len();
    o.client.simple_query("SELECT 1 /*first*/").await.unwrap();
    o.mark("first done");
    o.client.simple_query("SELECT 2 /*second*/").await.unwrap();
    o.mark("second done");
    let notice = |m: &str| Seen::Notice { severity: "NOTICE".into(), code: "00000".into(), message: m.into() };
    assert_eq!(
        o.take(),
        vec![
            notice("hook note for first"),
            Seen::Mark("first done".into()),
            notice("hook note for second"),
            Seen::Mark("second done".into()),
        ],
        "each hook notice precedes its own statement's result"
    );
    let l = log.lock().unwrap();
    let after: Vec<Duration> = l.elapsed[before..].to_vec();
    assert_eq!(after.len(), 2, "one on_ready per statement: {:?}", &l.events);
    assert!(after[0] < Duration::from_millis(250), "SELECT 1 timed from a stale start: {after:?}");
    drop(l);
    let _ = read_until_ready; // (raw helpers shared with other tests)
    proxy.stop().await;
}
