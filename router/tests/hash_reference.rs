//! PostgreSQL hash functions against the server values recorded in facts.md §7, plus edge cases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

use citus_proxy_router::hash::{hash_bpchar, hash_datum, hash_float8, hashint2, hashint4, hashint8, hashtext, uuid_hash};
use citus_proxy_router::types::{parse_input, Datum, PgType};

#[test]
fn int_reference_values() {
    for (x, h) in [(0i64, -272711505), (1, -1905060026), (42, 1509752520), (-1, 385747274), (i64::MAX, -1524351049)] {
        assert_eq!(hashint8(x), h, "hashint8({x})");
    }
    for (x, h) in [(0i32, -272711505), (1, -1905060026), (42, 1509752520), (-1, 385747274), (2, 1134484726)] {
        assert_eq!(hashint4(x), h, "hashint4({x})");
    }
    assert_eq!(hashint2(42), 1509752520);
    assert_eq!(hashint8(1 << 32), -1905060026, "hashint8(2^32) = hashint4(1)");
    assert_eq!(hashint8(-1), hashint4(-1));
}

#[test]
fn int8_agrees_with_int4_in_range() {
    for x in (-5000i32..5000).chain([i32::MIN, i32::MAX, i32::MIN + 1, i32::MAX - 1]) {
        assert_eq!(hashint8(i64::from(x)), hashint4(x), "{x}");
    }
    for x in [i16::MIN, -1, 0, 1, i16::MAX] {
        assert_eq!(hashint2(x), hashint4(i32::from(x)));
    }
}

#[test]
fn text_and_uuid_reference_values() {
    assert_eq!(hashtext(b""), -1477818771);
    assert_eq!(hashtext(b"tenant1"), -480458745);
    assert_eq!(hashtext("Ünïcödé".as_bytes()), 1924335333);
    let nil = [0u8; 16];
    assert_eq!(uuid_hash(&nil), 1353656403);
    let Ok(Datum::Uuid(u)) = parse_input("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", PgType::Uuid) else { panic!("uuid") };
    assert_eq!(uuid_hash(&u), 1154666245);
}

#[test]
fn uuid_text_forms_are_one_value() {
    let forms = [
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
        "a0eebc999c0b4ef8bb6d6bb9bd380a11",
        "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        "a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11",
    ];
    let first = parse_input(forms[0], PgType::Uuid).expect("uuid");
    for f in forms {
        assert_eq!(parse_input(f, PgType::Uuid).as_ref(), Ok(&first), "{f}");
    }
    for bad in [
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
        "{a0eebc999c0b4ef8bb6d6bb9bd380a11",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
        "-a0eebc999c0b4ef8bb6d6bb9bd380a11",
        "g0eebc999c0b4ef8bb6d6bb9bd380a11",
    ] {
        assert!(parse_input(bad, PgType::Uuid).is_err(), "{bad}");
    }
}

#[test]
fn text_is_bytes_and_bpchar_trims() {
    assert_ne!(hashtext(b"tenant1"), hashtext(b"TENANT1"));
    assert_ne!(hashtext("é".as_bytes()), hashtext("e\u{301}".as_bytes()), "no normalisation");
    assert_eq!(hash_bpchar(b"ab   "), hashtext(b"ab"));
    assert_eq!(hash_bpchar(b"   "), hashtext(b""));
    assert_ne!(hash_bpchar(b" ab"), hashtext(b"ab"), "leading spaces count");
    // Lengths around the 12-byte block boundary exercise every tail case.
    let s = "abcdefghijklmnopqrstuvwxyz0123456789";
    let hashes: Vec<i32> = (0..=s.len()).map(|n| hashtext(&s.as_bytes()[..n])).collect();
    let mut dedup = hashes.clone();
    dedup.sort_unstable();
    dedup.dedup();
    assert_eq!(dedup.len(), hashes.len(), "prefixes should hash differently");
}

#[test]
fn float_and_misc() {
    assert_eq!(hash_float8(0.0), 0);
    assert_eq!(hash_float8(-0.0), 0);
    assert_eq!(hash_float8(f64::NAN), hash_float8(-f64::NAN));
    assert_eq!(hash_datum(&Datum::Unhashable), None);
    assert_eq!(hash_datum(&Datum::Int8(42)), Some(1509752520));
}

#[test]
fn integer_input_edges() {
    assert_eq!(parse_input(" -42 ", PgType::Int8), Ok(Datum::Int8(-42)));
    assert_eq!(parse_input("+7", PgType::Int4), Ok(Datum::Int4(7)));
    assert!(parse_input("42.0", PgType::Int8).is_err());
    assert!(parse_input("2147483648", PgType::Int4).is_err());
    assert!(parse_input("9223372036854775808", PgType::Int8).is_err());
    assert_eq!(parse_input("-9223372036854775808", PgType::Int8), Ok(Datum::Int8(i64::MIN)));
    assert!(parse_input("", PgType::Int8).is_err());
    assert!(parse_input("1_000", PgType::Int8).is_err());
}
