//! Data types: every value arrives through the proxy with exactly the bytes PostgreSQL sends on a
//! direct connection, in binary (tokio-postgres `query`) and text (`simple_query`, psql) formats.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::sync::OnceLock;

use common::{direct_conninfo, direct_url, fe, psql, same_raw_exchange, Proxy};
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::SimpleQueryMessage;

/// Any column's raw wire bytes.
#[derive(Debug, PartialEq, Eq)]
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

const EMOJI: &str = "héllo wörld 😀 中文 \u{7f}\t\\ end";

/// (label, expression) — each column of the comparison SELECT.
fn columns() -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = vec![
        ("int2", "(-32768)::int2".into()),
        ("int4", "(-2147483648)::int4".into()),
        ("int8", "9223372036854775807::int8".into()),
        ("numeric_nan", "'NaN'::numeric".into()),
        ("numeric_big", "'123456789012345678901234567890123456789.000000000000000000000000000000000001'::numeric".into()),
        ("numeric_tiny", "'-0.0000000000000000000000000000123'::numeric".into()),
        ("numeric_huge", "(10::numeric ^ 1000 + 0.5)".into()),
        ("numeric_inf", "'Infinity'::numeric".into()),
        ("float8_nan", "'NaN'::float8".into()),
        ("float8_inf", "'Infinity'::float8".into()),
        ("float8_ninf", "'-Infinity'::float8".into()),
        ("float8_negzero", "'-0'::float8".into()),
        ("float8_tiny", "4.9e-324::float8".into()),
        ("float4", "3.4028235e38::float4".into()),
        ("timestamptz", "'2024-02-29 23:59:59.999999+05:30'::timestamptz".into()),
        ("timestamptz_inf", "'infinity'::timestamptz".into()),
        ("timestamp", "'4713-01-01 00:00:00 BC'::timestamp".into()),
        ("date", "'2000-01-01'::date".into()),
        ("date_ninf", "'-infinity'::date".into()),
        ("interval", "'1 year 2 mons 3 days 04:05:06.789'::interval".into()),
        ("interval_neg", "'-1 day -00:00:00.000001'::interval".into()),
        ("jsonb", r#"'{"b": [1, 2.50, null, true], "a": "\u00e9 😀", "c": {}}'::jsonb"#.into()),
        ("json", r#"'{"b":1,   "a" : 2, "b": 3}'::json"#.into()),
        ("int_array", "ARRAY[1, 2, NULL, -4]::int[]".into()),
        ("text_array", r#"ARRAY['a', NULL, 'c"d', '', 'NULL', 'x,y', 'back\slash']::text[]"#.into()),
        ("int_2d", "ARRAY[[1, 2, 3], [4, 5, 6]]::int[]".into()),
        ("empty_array", "'{}'::int[]".into()),
        ("lower_bound_array", "'[0:1]={7,8}'::int[]".into()),
        ("bytea_all", "(SELECT decode(string_agg(lpad(to_hex(i), 2, '0'), '' ORDER BY i), 'hex') FROM generate_series(0, 255) i)".into()),
        ("uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid".into()),
        ("text_unicode", format!("'{EMOJI}'::text")),
        ("text_big", "repeat('é😀', 150000)".into()),
        ("enum", "'happy'::mood".into()),
        ("composite", r#"ROW(1, 'x "y", z', NULL, ARRAY[1.5, NULL]::float8[])::comp"#.into()),
        ("composite_array", "ARRAY[ROW(2, 'a', 'sad', NULL)::comp, NULL]".into()),
        ("bool", "true".into()),
        ("null_text", "NULL::text".into()),
        ("oid", "'pg_class'::regclass::oid".into()),
        ("inet", "'2001:db8::1/64'::inet".into()),
        ("money", "'-12.34'::money".into()),
        ("tsrange", "'[2020-01-01, 2021-01-01)'::tsrange".into()),
        ("point", "point(1.5, -2)".into()),
        ("bit", "B'10101'::bit varying".into()),
        ("char", "'q'::\"char\"".into()),
        ("name", "'a_name'::name".into()),
    ];
    v.retain(|(_, e)| !e.is_empty());
    v
}

fn select_sql() -> String {
    let cols: Vec<String> = columns().iter().map(|(l, e)| format!("{e} AS {l}")).collect();
    format!("SELECT {}", cols.join(", "))
}

/// The enum and composite the SELECT uses, created once in this binary's `postgres` database.
fn setup() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        common::block_on_thread(async {
            let c = test_support::connect(&direct_url("postgres")).await;
            c.batch_execute(
                "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); \
                 CREATE TYPE comp AS (n int, t text, m mood, f float8[]);",
            )
            .await
            .expect("create types");
        })
    });
}

#[tokio::test]
async fn binary_results_are_byte_identical() {
    setup();
    let proxy = Proxy::start(&[]).await;
    let direct = test_support::connect(&direct_url("postgres")).await;
    let via = test_support::connect(&proxy.url("postgres")).await;
    let sql = select_sql();
    let d = direct.query_one(&sql, &[]).await.expect("direct");
    let v = via.query_one(&sql, &[]).await.expect("proxy");
    let cols = columns();
    assert_eq!(v.columns().len(), cols.len());
    for (i, (label, _)) in cols.iter().enumerate() {
        assert_eq!(d.columns()[i].type_().oid(), v.columns()[i].type_().oid(), "{label}: type OID");
        let dr: Option<Raw> = d.try_get(i).unwrap_or_else(|e| panic!("{label} direct: {e}"));
        let vr: Option<Raw> = v.try_get(i).unwrap_or_else(|e| panic!("{label} proxy: {e}"));
        assert_eq!(dr, vr, "{label}: binary value differs");
    }
    // Spot checks that the comparison is over the real values.
    let raw = |label: &str| -> Option<Raw> { v.get(cols.iter().position(|(l, _)| *l == label).unwrap()) };
    assert_eq!(raw("bytea_all"), Some(Raw((0..=255u8).collect())));
    assert_eq!(raw("float8_negzero"), Some(Raw((-0.0f64).to_be_bytes().to_vec())));
    assert_eq!(raw("float8_ninf"), Some(Raw(f64::NEG_INFINITY.to_be_bytes().to_vec())));
    assert_eq!(raw("int8"), Some(Raw(i64::MAX.to_be_bytes().to_vec())));
    assert_eq!(raw("enum"), Some(Raw(b"happy".to_vec())));
    assert_eq!(raw("null_text"), None);
    assert_eq!(raw("text_big").map(|r| r.0.len()), Some(150000 * 6));
    let nan: Option<Raw> = raw("numeric_nan");
    assert_eq!(nan, Some(Raw(vec![0, 0, 0, 0, 0xC0, 0, 0, 0])), "numeric NaN: ndigits 0, weight 0, sign NaN, dscale 0");

    // Typed decoding agrees too.
    let f: f64 = v.get("float8_nan");
    assert!(f.is_nan());
    let s: String = v.get("text_unicode");
    assert_eq!(s, EMOJI.to_string());
    let arr: Vec<Option<String>> = v.get("text_array");
    assert_eq!(arr[1], None);
    assert_eq!(arr[2].as_deref(), Some("c\"d"));

    // Binary parameters in, binary results out, for the same values.
    let st = via.prepare("SELECT $1::bytea, $2::text, $3::float8, $4::int8[]").await.unwrap();
    let bytes: Vec<u8> = (0..=255u8).rev().collect();
    let arr = vec![Some(1i64), None, Some(i64::MIN)];
    let r = via.query_one(&st, &[&bytes, &EMOJI.to_string(), &f64::NEG_INFINITY, &arr]).await.unwrap();
    assert_eq!(r.get::<_, Vec<u8>>(0), bytes);
    assert_eq!(r.get::<_, String>(1), EMOJI.to_string());
    assert_eq!(r.get::<_, f64>(2), f64::NEG_INFINITY);
    assert_eq!(r.get::<_, Vec<Option<i64>>>(3), arr);
    proxy.stop().await;
}

#[tokio::test]
async fn text_results_are_identical() {
    setup();
    let proxy = Proxy::start(&[]).await;
    let direct = test_support::connect(&direct_url("postgres")).await;
    let via = test_support::connect(&proxy.url("postgres")).await;
    let sql = select_sql();
    let texts = |msgs: Vec<SimpleQueryMessage>| -> Vec<Option<String>> {
        let row = msgs
            .into_iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(r),
                _ => None,
            })
            .expect("a row");
        (0..row.len()).map(|i| row.get(i).map(str::to_string)).collect()
    };
    let d = texts(direct.simple_query(&sql).await.expect("direct"));
    let v = texts(via.simple_query(&sql).await.expect("proxy"));
    let cols = columns();
    for (i, (label, _)) in cols.iter().enumerate() {
        assert_eq!(d[i], v[i], "{label}: text value differs");
    }
    let text = |label: &str| v[cols.iter().position(|(l, _)| *l == label).unwrap()].clone();
    assert_eq!(text("float8_negzero").as_deref(), Some("-0"));
    assert_eq!(text("numeric_nan").as_deref(), Some("NaN"));
    assert_eq!(text("int_2d").as_deref(), Some("{{1,2,3},{4,5,6}}"));
    assert_eq!(text("text_array").as_deref(), Some(r#"{a,NULL,"c\"d","","NULL","x,y","back\\slash"}"#));
    assert_eq!(text("json").as_deref(), Some(r#"{"b":1,   "a" : 2, "b": 3}"#));
    assert!(text("bytea_all").unwrap().starts_with("\\x000102"));
    assert_eq!(text("text_unicode"), Some(EMOJI.to_string()));

    // Extended protocol with text-format results, at message level (Bind asks for text).
    let mut bytes = fe::parse("", &sql, &[]);
    bytes.extend(fe::bind("", "", &[]));
    bytes.extend(fe::describe(b'P', ""));
    bytes.extend(fe::execute("", 0));
    bytes.extend(fe::sync());
    // …and binary results (format code 1 for every column).
    bytes.extend(fe::parse("", &sql, &[]));
    let mut bind = vec![0u8, 0, 0, 0, 0, 0, 0, 1, 0, 1];
    let mut frame = vec![b'B'];
    frame.extend_from_slice(&((bind.len() + 4) as i32).to_be_bytes());
    frame.append(&mut bind);
    bytes.extend(frame);
    bytes.extend(fe::execute("", 0));
    bytes.extend(fe::sync());
    let msgs = same_raw_exchange(&proxy, &bytes, 2, "text and binary results").await;
    assert_eq!(common::tags(&msgs), "12TDCZ12DCZ");
    proxy.stop().await;
}

#[tokio::test]
async fn psql_output_is_identical() {
    setup();
    let proxy = Proxy::start(&[]).await;
    let sql = select_sql();
    let conn_direct = direct_conninfo("postgres");
    let conn_via = proxy.conninfo("postgres");
    let (sql2, c1, c2) = (sql.clone(), conn_direct.clone(), conn_via.clone());
    let (d, v) = tokio::task::spawn_blocking(move || (psql(&c1, &["-c", &sql2]), psql(&c2, &["-c", &sql2]))).await.unwrap();
    assert!(d.0, "direct psql failed: {}", d.2);
    assert!(v.0, "proxy psql failed: {}", v.2);
    assert_eq!(d.1, v.1, "psql output differs");
    assert!(v.1.contains("happy|"), "{}", v.1);
    assert!(v.1.contains("😀"), "{}", v.1);
    // Aligned output, with headers, NULL shown as a marker, and the expanded format too.
    for extra in [["-P", "format=aligned"], ["-P", "null=<NULL>"], ["-P", "expanded=on"]] {
        let args = ["-P", "tuples_only=off", extra[0], extra[1], "-c", sql.as_str()].map(str::to_string);
        let (c1, c2) = (conn_direct.clone(), conn_via.clone());
        let (d, v) = tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            (psql(&c1, &a), psql(&c2, &a))
        })
        .await
        .unwrap();
        assert!(d.0 && v.0, "psql failed: {} / {}", d.2, v.2);
        assert_eq!(d.1, v.1, "psql output differs with {extra:?}");
    }
    proxy.stop().await;
}
