//! The ported hash functions against a real PostgreSQL, value by value: thousands of values per
//! type (ranges, edges, negatives, unicode, empty and long strings, nil/all-f uuids), and the
//! server's choice of hash support function for each type the router hashes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

use citus_proxy_router::hash::{hash_bpchar, hash_float8, hash_name, hash_timestamp, hashint2, hashint4, hashint8, hashtext, uuid_hash};
use citus_proxy_router::types::{format_uuid, parse_input, Datum, PgType};

/// A small deterministic generator so the values are reproducible.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0
    }
}

async fn client() -> tokio_postgres::Client {
    let pg = test_support::postgres();
    test_support::connect(&pg.url("postgres")).await
}

fn report(kind: &str, bad: &[String], total: usize) {
    assert!(total >= 1000 || kind == "float8", "{kind}: only {total} values checked");
    assert!(
        bad.is_empty(),
        "{kind}: {} of {total} differ, e.g.\n{}",
        bad.len(),
        bad.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[tokio::test]
async fn integers_match_hashint2_4_8() {
    let c = client().await;
    let mut rng = Lcg(42);
    let mut v8: Vec<i64> = (-5000..=5000).collect();
    v8.extend([i64::MIN, i64::MAX, i64::MIN + 1, i64::MAX - 1, 1 << 31, -(1 << 31), (1 << 31) - 1, 1 << 32, -(1 << 32), (1 << 32) + 1]);
    v8.extend((0..3000).map(|_| rng.next() as i64));
    let rows = c.query("SELECT v, hashint8(v) FROM unnest($1::int8[]) v", &[&v8]).await.expect("hashint8");
    let bad: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let (v, h): (i64, i32) = (r.get(0), r.get(1));
            (hashint8(v) != h).then(|| format!("hashint8({v}) server {h} ours {}", hashint8(v)))
        })
        .collect();
    report("int8", &bad, rows.len());

    let mut v4: Vec<i32> = (-5000..=5000).collect();
    v4.extend([i32::MIN, i32::MAX, i32::MIN + 1, i32::MAX - 1]);
    v4.extend((0..3000).map(|_| rng.next() as i32));
    let rows = c.query("SELECT v, hashint4(v) FROM unnest($1::int4[]) v", &[&v4]).await.expect("hashint4");
    let bad: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let (v, h): (i32, i32) = (r.get(0), r.get(1));
            (hashint4(v) != h).then(|| format!("hashint4({v}) server {h}"))
        })
        .collect();
    report("int4", &bad, rows.len());

    let v2: Vec<i16> = (i16::MIN..=i16::MAX).collect();
    let rows = c.query("SELECT v, hashint2(v) FROM unnest($1::int2[]) v", &[&v2]).await.expect("hashint2");
    let bad: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let (v, h): (i16, i32) = (r.get(0), r.get(1));
            (hashint2(v) != h).then(|| format!("hashint2({v}) server {h}"))
        })
        .collect();
    report("int2", &bad, rows.len());
}

fn text_values() -> Vec<String> {
    let mut v: Vec<String> =
        ["", " ", "  ", "a", "tenant1", "TENANT1", "Ünïcödé", "日本語", "🚀🚀", "a'b", "NULL", "é", "e\u{301}", "\t", "abc   "]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let alphabet: Vec<char> = "abcXYZ019 -_'é日🚀ß".chars().collect();
    let mut rng = Lcg(7);
    for len in 0..=64 {
        for _ in 0..20 {
            v.push((0..len).map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize]).collect());
        }
    }
    v.push("x".repeat(200));
    v.push("y".repeat(5000));
    v
}

#[tokio::test]
async fn text_matches_hashtext_bpchar_name() {
    let c = client().await;
    let values = text_values();
    let rows = c
        .query(
            "SELECT v, hashtext(v), hashbpchar(v::bpchar), hashname(left(v, 63)::name), left(v, 63)::name::text FROM unnest($1::text[]) v",
            &[&values],
        )
        .await
        .expect("hashtext");
    let mut bad = Vec::new();
    for r in &rows {
        let (v, ht, hb, hn, name): (String, i32, i32, i32, String) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        if hashtext(v.as_bytes()) != ht {
            bad.push(format!("hashtext({v:?}) server {ht}"));
        }
        if hash_bpchar(v.as_bytes()) != hb {
            bad.push(format!("hashbpchar({v:?}) server {hb}"));
        }
        if hash_name(name.as_bytes()) != hn {
            bad.push(format!("hashname({name:?}) server {hn}"));
        }
        if let Ok(Datum::Name(ours)) = parse_input(&v, PgType::Name) {
            if *ours != *name.as_str() {
                bad.push(format!("name clipping of {v:?}: server {name:?} ours {ours:?}"));
            }
        }
    }
    report("text", &bad, rows.len());
}

#[tokio::test]
async fn uuids_match_uuid_hash() {
    let c = client().await;
    let mut rng = Lcg(99);
    let mut values: Vec<String> = vec![format_uuid(&[0; 16]), format_uuid(&[0xff; 16])];
    for _ in 0..3000 {
        let mut u = [0u8; 16];
        u[..8].copy_from_slice(&rng.next().to_le_bytes());
        u[8..].copy_from_slice(&rng.next().to_le_bytes());
        values.push(format_uuid(&u));
    }
    // Other accepted spellings: the server parses them, we must agree on the value.
    values.push("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11".into());
    values.push("{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}".into());
    values.push("a0eebc999c0b4ef8bb6d6bb9bd380a11".into());
    let rows = c.query("SELECT v, uuid_hash(v::uuid) FROM unnest($1::text[]) v", &[&values]).await.expect("uuid_hash");
    let bad: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let (v, h): (String, i32) = (r.get(0), r.get(1));
            match parse_input(&v, PgType::Uuid) {
                Ok(Datum::Uuid(u)) if uuid_hash(&u) == h => None,
                other => Some(format!("uuid_hash({v}) server {h} ours {other:?}")),
            }
        })
        .collect();
    report("uuid", &bad, rows.len());
}

#[tokio::test]
async fn floats_and_dates() {
    let c = client().await;
    let floats: Vec<f64> =
        vec![0.0, -0.0, 1.0, -1.0, 0.5, 1e300, -1e-300, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 42.0, std::f64::consts::PI, 2.5e-8];
    let rows = c.query("SELECT v, hashfloat8(v) FROM unnest($1::float8[]) v", &[&floats]).await.expect("hashfloat8");
    let bad: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let (v, h): (f64, i32) = (r.get(0), r.get(1));
            (hash_float8(v) != h).then(|| format!("hashfloat8({v}) server {h} ours {}", hash_float8(v)))
        })
        .collect();
    report("float8", &bad, rows.len());
    let rows = c
        .query("SELECT d::date::text, (d::date - date '2000-01-01') FROM generate_series(date '1900-01-01', date '2100-12-31', interval '13 days') d", &[])
        .await
        .expect("dates");
    let bad: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let (d, days): (String, i32) = (r.get(0), r.get(1));
            (parse_input(&d, PgType::Date) != Ok(Datum::Date(days))).then(|| format!("date {d}: server {days}"))
        })
        .collect();
    report("date", &bad, rows.len());
}

/// Timestamps (without time zone) as the server reads them and hashes them, for the text forms the
/// router parses: its own output over two centuries, and hand-picked edges (24:00, leap seconds,
/// fractions beyond microseconds, `T`, infinities). (A date hashes as hashint4 of its day number,
/// checked by `floats_and_dates` and the support-function check.)
#[tokio::test]
async fn timestamps_match_timestamp_hash() {
    let c = client().await;
    let mut inputs: Vec<String> = c
        .query(
            "SELECT v::text FROM generate_series(timestamp '1900-01-01', timestamp '2100-12-31', \
             interval '3 days 7 hours 11 minutes 13.123457 seconds') v",
            &[],
        )
        .await
        .expect("series")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let edges = [
        "2000-01-01",
        "2000-01-01 00:00",
        "1999-12-31 23:59:59.999999",
        "1999-12-31 23:59:59.9999995",
        "2020-02-29 24:00:00",
        "2016-12-31 23:59:60",
        "2020-01-01T10:20:30.1234565",
        "2020-01-01t10:20:30",
        "2020-01-01   10:20:30.5",
        " 2020-01-01 10:20:30.0000005 ",
        "2020-01-01 10:20:30.0000015",
        "0001-01-01 00:00:00",
        "9999-12-31 23:59:59.999999",
        "1970-01-01 00:00:00",
        "2038-01-19 03:14:07",
        "epoch",
        "infinity",
        "-infinity",
        "EPOCH",
        "Infinity",
    ];
    inputs.extend(edges.iter().map(|s| s.to_string()));
    let rows = c
        .query(
            "SELECT v, timestamp_hash(v::timestamp), \
             CASE WHEN isfinite(v::timestamp) THEN (extract(epoch FROM v::timestamp - timestamp '2000-01-01') * 1000000)::int8 END \
             FROM unnest($1::text[]) v",
            &[&inputs],
        )
        .await
        .expect("timestamp_hash");
    let mut bad = Vec::new();
    for r in &rows {
        let (v, h, usecs): (String, i32, Option<i64>) = (r.get(0), r.get(1), r.get(2));
        match parse_input(&v, PgType::Timestamp) {
            Ok(Datum::Timestamp(ours)) => {
                if hash_timestamp(ours) != h || usecs.is_some_and(|u| u != ours) {
                    bad.push(format!("timestamp {v:?}: server {usecs:?} hash {h}, ours {ours} hash {}", hash_timestamp(ours)));
                }
            }
            other => bad.push(format!("timestamp {v:?}: not parsed ({other:?})")),
        }
    }
    report("timestamp", &bad, rows.len());
    // Forms not understood (some the server accepts, some it rejects) are errors, never a guess.
    for v in [
        "+infinity",
        "2020-01-01 10:20:30+02",
        "2020-01-01 10:20:30 BC",
        "Jan 1 2020",
        "now",
        "2020-01-01 25:00:00",
        "2020-01-01 23:59:60.5",
    ] {
        assert!(parse_input(v, PgType::Timestamp).is_err(), "{v} should not be understood");
    }
}

/// The default hash opclass's support function 1 per type is the one this crate ports.
#[tokio::test]
async fn hash_support_functions_are_the_ported_ones() {
    let c = client().await;
    let rows = c
        .query(
            "SELECT t.typname::text, p.amproc::regproc::text FROM pg_opclass oc \
             JOIN pg_am am ON am.oid = oc.opcmethod AND am.amname = 'hash' \
             JOIN pg_type t ON t.oid = oc.opcintype \
             JOIN pg_amproc p ON p.amprocfamily = oc.opcfamily AND p.amprocnum = 1 \
              AND p.amproclefttype = oc.opcintype AND p.amprocrighttype = oc.opcintype \
             WHERE oc.opcdefault AND t.typname = ANY($1)",
            &[&vec![
                "int2",
                "int4",
                "int8",
                "text",
                "bpchar",
                "uuid",
                "bool",
                "char",
                "oid",
                "float4",
                "float8",
                "name",
                "date",
                "timestamp",
            ]],
        )
        .await
        .expect("opclasses");
    let got: std::collections::BTreeMap<String, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let want = [
        ("int2", "hashint2"),
        ("int4", "hashint4"),
        ("int8", "hashint8"),
        ("text", "hashtext"),
        ("bpchar", "hashbpchar"),
        ("uuid", "uuid_hash"),
        ("char", "hashchar"),
        ("oid", "hashoid"),
        ("float4", "hashfloat4"),
        ("float8", "hashfloat8"),
        ("name", "hashname"),
        ("date", "hashint4"),
        ("timestamp", "timestamp_hash"),
    ];
    for (t, f) in want {
        assert_eq!(got.get(t).map(String::as_str), Some(f), "{t}: {got:?}");
    }
    // bool's opclass uses hashchar or hashbool depending on the version; both hash the byte.
    assert!(matches!(got.get("bool").map(String::as_str), Some("hashchar" | "hashbool")), "{got:?}");
}
