//! Messages the backend sends on its own or beside results: NoticeResponse, NotificationResponse,
//! ParameterStatus; and the FunctionCall sub-protocol (libpq's large objects).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use common::{connect_observed, direct_conninfo, direct_url, eventually, fe, psql, raw_exchange, same_raw_exchange, tags, Proxy, Seen};

fn notice(message: &str) -> Seen {
    Seen::Notice { severity: "NOTICE".into(), code: "00000".into(), message: message.into() }
}

#[tokio::test]
async fn notices_arrive_in_order_with_their_results() {
    let proxy = Proxy::start(&[]).await;
    let mut all = Vec::new();
    for url in [direct_url("postgres"), proxy.url("postgres")] {
        let o = connect_observed(&url).await;
        o.client.batch_execute("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$").await.unwrap();
        o.mark("after DO");
        let rows = o
            .client
            .simple_query(
                "DO $$ BEGIN RAISE NOTICE 'first'; END $$; SELECT 1; \
                 DO $$ BEGIN RAISE WARNING 'second'; RAISE NOTICE 'third'; END $$",
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 5);
        o.mark("after multi");
        // Extended protocol: a function that raises while producing rows.
        o.client
            .batch_execute(
                "CREATE OR REPLACE FUNCTION pg_temp.noisy(n int) RETURNS SETOF int LANGUAGE plpgsql AS \
                 $$ BEGIN FOR i IN 1..n LOOP RAISE NOTICE 'row %', i; RETURN NEXT i; END LOOP; END $$",
            )
            .await
            .unwrap();
        let rows = o.client.query("SELECT * FROM pg_temp.noisy($1)", &[&3i32]).await.unwrap();
        assert_eq!(rows.len(), 3);
        o.mark("after noisy");
        let seen = o.take();
        all.push(seen);
    }
    let expected = vec![
        notice("hello 42"),
        Seen::Mark("after DO".into()),
        notice("first"),
        Seen::Notice { severity: "WARNING".into(), code: "01000".into(), message: "second".into() },
        notice("third"),
        Seen::Mark("after multi".into()),
        notice("row 1"),
        notice("row 2"),
        notice("row 3"),
        Seen::Mark("after noisy".into()),
    ];
    assert_eq!(all[0], expected, "direct");
    assert_eq!(all[1], expected, "through the proxy");

    // At message level the NoticeResponse sits exactly where the server put it.
    let mut bytes = fe::query("DO $$ BEGIN RAISE NOTICE 'a'; END $$; SELECT 1; DO $$ BEGIN RAISE NOTICE 'b'; END $$");
    bytes.extend(fe::query("SELECT 1/0"));
    let msgs = same_raw_exchange(&proxy, &bytes, 2, "notices").await;
    assert_eq!(tags(&msgs), "NCTDCNCZEZ");
    proxy.stop().await;
}

#[tokio::test]
async fn notifications_reach_a_listener_through_the_proxy() {
    let proxy = Proxy::start(&[]).await;
    let listener = connect_observed(&proxy.url("postgres")).await;
    let direct_listener = connect_observed(&direct_url("postgres")).await;
    for l in [&listener, &direct_listener] {
        l.client.batch_execute("LISTEN chan_a; LISTEN \"Chan B\"").await.unwrap();
    }
    let notifier = test_support::connect(&direct_url("postgres")).await;
    let npid: i32 = notifier.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    notifier.batch_execute("NOTIFY chan_a, 'payload 1'").await.unwrap();
    notifier.query("SELECT pg_notify('Chan B', 'ünï 😀 ' || repeat('p', 7000))", &[]).await.unwrap();
    // Inside a transaction: delivered at COMMIT only, and never for a rolled-back one.
    notifier.batch_execute("BEGIN; NOTIFY chan_a, 'rolled back'; ROLLBACK").await.unwrap();
    notifier.batch_execute("BEGIN; NOTIFY chan_a, 'committed'; COMMIT").await.unwrap();
    notifier.batch_execute("NOTIFY chan_other, 'not listened to'").await.unwrap();

    let want = vec![
        Seen::Notification { pid: npid, channel: "chan_a".into(), payload: "payload 1".into() },
        Seen::Notification { pid: npid, channel: "Chan B".into(), payload: format!("ünï 😀 {}", "p".repeat(7000)) },
        Seen::Notification { pid: npid, channel: "chan_a".into(), payload: "committed".into() },
    ];
    // The listener is idle: the notifications must be forwarded without any query to carry them.
    for (name, l) in [("proxy", &listener), ("direct", &direct_listener)] {
        let got = eventually(5, || async { l.seen.lock().unwrap().len() >= want.len() }).await;
        assert!(got, "{name}: notifications did not all arrive: {:?}", l.seen.lock().unwrap());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(l.take(), want, "{name}");
    }

    // NOTIFY sent through the proxy, heard by its own session and by a direct listener.
    let self_pid: i32 = listener.client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    listener.client.batch_execute("NOTIFY chan_a, 'from the proxy side'").await.unwrap();
    let want = vec![Seen::Notification { pid: self_pid, channel: "chan_a".into(), payload: "from the proxy side".into() }];
    for l in [&listener, &direct_listener] {
        assert!(eventually(5, || async { !l.seen.lock().unwrap().is_empty() }).await);
        assert_eq!(l.take(), want);
    }
    // Message level for a self-notification: NotificationResponse between CommandComplete and Z
    // (bodies hold different backend pids, so only the sequence is compared).
    let q = fe::query("LISTEN me; NOTIFY me, 'x'");
    let d = raw_exchange(common::pg_addr(), &q, 1).await;
    let v = raw_exchange(proxy.addr, &q, 1).await;
    assert_eq!(tags(&d), tags(&v));
    assert_eq!(tags(&v), "CCAZ");
    proxy.stop().await;
}

#[tokio::test]
async fn parameter_status_is_relayed() {
    let proxy = Proxy::start(&[]).await;
    // Message level: the S frame with the new value, identical to direct.
    let mut bytes = fe::query("SET application_name = 'x'");
    bytes.extend(fe::query("SET TimeZone = 'Asia/Kathmandu'"));
    bytes.extend(fe::query("SELECT '2024-01-01 00:00:00+00'::timestamptz"));
    let msgs = same_raw_exchange(&proxy, &bytes, 3, "ParameterStatus").await;
    assert_eq!(tags(&msgs), "CSZCSZTDCZ");
    assert_eq!(msgs[1].1, b"application_name\0x\0");
    assert_eq!(msgs[4].1, b"TimeZone\0Asia/Kathmandu\0");

    // tokio-postgres records ParameterStatus in its Connection.
    let o = connect_observed(&proxy.url("postgres")).await;
    assert_eq!(o.parameter("application_name").as_deref(), Some(""));
    o.client.batch_execute("SET application_name = 'through proxy'; SET TimeZone = 'America/St_Johns'").await.unwrap();
    assert_eq!(o.parameter("application_name").as_deref(), Some("through proxy"));
    assert_eq!(o.parameter("TimeZone").as_deref(), Some("America/St_Johns"));
    let t = o.client.simple_query("SELECT '2024-01-01 12:00:00+00'::timestamptz").await.unwrap();
    let text = t.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(text.as_deref(), Some("2024-01-01 08:30:00-03:30"));

    // psql: values it learns from ParameterStatus (\encoding) and SET/SHOW output.
    let (d, v) = (direct_conninfo("postgres"), proxy.conninfo("postgres"));
    let out = tokio::task::spawn_blocking(move || {
        let args = [
            "-c",
            "SET application_name = 'x'",
            "-c",
            "SHOW application_name",
            "-c",
            "SET TimeZone = 'Pacific/Chatham'",
            "-c",
            "SELECT '2024-06-01 00:00:00+00'::timestamptz",
            "-c",
            "SET client_encoding = 'LATIN1'",
            "-c",
            "\\encoding",
        ];
        (psql(&d, &args), psql(&v, &args))
    })
    .await
    .unwrap();
    assert!(out.0 .0 && out.1 .0, "psql failed: {:?}", out);
    assert_eq!(out.0 .1, out.1 .1, "psql output differs");
    let lines: Vec<&str> = out.1 .1.lines().filter(|l| !l.is_empty()).collect();
    assert!(lines.contains(&"x"), "{lines:?}");
    assert!(lines.contains(&"2024-06-01 12:45:00+12:45"), "{lines:?}");
    assert_eq!(lines.last(), Some(&"LATIN1"), "psql saw the client_encoding ParameterStatus: {lines:?}");
    proxy.stop().await;
}

#[tokio::test]
async fn function_call_and_large_objects() {
    let proxy = Proxy::start(&[]).await;
    // A raw FunctionCall ('F'): int4pl(40, 2) with binary arguments and result.
    let c = test_support::connect(&direct_url("postgres")).await;
    let oid: u32 = c.query_one("SELECT 'int4pl'::regproc::oid", &[]).await.unwrap().get(0);
    let mut body = oid.to_be_bytes().to_vec();
    body.extend_from_slice(&1i16.to_be_bytes()); // one format code…
    body.extend_from_slice(&1i16.to_be_bytes()); // …binary for all arguments
    body.extend_from_slice(&2i16.to_be_bytes());
    for v in [40i32, 2] {
        body.extend_from_slice(&4i32.to_be_bytes());
        body.extend_from_slice(&v.to_be_bytes());
    }
    body.extend_from_slice(&1i16.to_be_bytes()); // binary result
    let mut frame = vec![b'F'];
    frame.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    frame.extend_from_slice(&body);
    let mut bytes = frame.clone();
    bytes.extend(fe::query("SELECT 1"));
    bytes.extend(frame);
    let msgs = same_raw_exchange(&proxy, &bytes, 3, "FunctionCall").await;
    assert_eq!(tags(&msgs), "VZTDCZVZ");
    assert_eq!(msgs[0].1, [0, 0, 0, 4, 0, 0, 0, 42]);

    // psql's \lo_import / \lo_export use libpq's lo_* functions, i.e. FunctionCall.
    let dir = std::env::temp_dir().join(format!("citus-proxy-lo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("src.bin");
    let mut x: u32 = 12345;
    let content: Vec<u8> = (0..300_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    std::fs::write(&src, &content).unwrap();
    let (via_ci, direct_ci, d2) = (proxy.conninfo("postgres"), direct_conninfo("postgres"), dir.clone());
    let (imported, exported_via, exported_direct) = tokio::task::spawn_blocking(move || {
        let imp = psql(&via_ci, &["-c", &format!("\\lo_import '{}'", d2.join("src.bin").display())]);
        assert!(imp.0, "\\lo_import failed: {} {}", imp.1, imp.2);
        let oid: u32 = imp.1.split_whitespace().find_map(|w| w.parse().ok()).unwrap_or_else(|| panic!("no OID in {:?}", imp.1));
        let out_via = d2.join("via.bin");
        let out_direct = d2.join("direct.bin");
        let e1 = psql(&via_ci, &["-c", &format!("\\lo_export {oid} '{}'", out_via.display())]);
        assert!(e1.0, "\\lo_export via proxy failed: {} {}", e1.1, e1.2);
        let e2 = psql(&direct_ci, &["-c", &format!("\\lo_export {oid} '{}'", out_direct.display())]);
        assert!(e2.0, "\\lo_export direct failed: {} {}", e2.1, e2.2);
        let unlink = psql(&via_ci, &["-c", &format!("\\lo_unlink {oid}")]);
        assert!(unlink.0, "\\lo_unlink failed: {}", unlink.2);
        (oid, std::fs::read(out_via).unwrap(), std::fs::read(out_direct).unwrap())
    })
    .await
    .unwrap();
    assert!(imported > 0);
    assert!(exported_via == content, "\\lo_export through the proxy returned different bytes");
    assert!(exported_direct == content, "the object imported through the proxy differs when read directly");
    let left: i64 = c.query_one("SELECT count(*) FROM pg_largeobject_metadata WHERE oid = $1", &[&imported]).await.unwrap().get(0);
    assert_eq!(left, 0, "\\lo_unlink through the proxy removed the object");
    let _ = std::fs::remove_dir_all(&dir);
    proxy.stop().await;
}
