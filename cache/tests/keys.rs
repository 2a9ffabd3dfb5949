//! Keys differ by everything that can change a result, and only by that.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

use std::collections::BTreeMap;

use citus_proxy_cache::*;

fn base() -> SessionView {
    let mut settings = BTreeMap::new();
    for (k, v) in [
        ("search_path", "public"),
        ("role", "none"),
        ("TimeZone", "UTC"),
        ("DateStyle", "ISO, MDY"),
        ("IntervalStyle", "postgres"),
        ("extra_float_digits", "1"),
        ("client_encoding", "UTF8"),
        ("application_name", "psql"),
    ] {
        settings.insert(k.to_string(), v.to_string());
    }
    SessionView { database: "app".into(), role: "alice".into(), settings, ..Default::default() }
}

fn key_of(s: &SessionView, build: impl FnOnce(KeyBuilder) -> KeyBuilder, snap: &Snapshot) -> Key {
    Key::derive(&build(KeyParts::builder(s).statement("SELECT $1")).finish(), snap)
}

fn snap() -> Snapshot {
    Snapshot::new(7, vec![("a|\"public\".\"users\"".into(), 3)])
}

fn plain(s: &SessionView) -> Key {
    key_of(s, |b| b, &snap())
}

#[test]
fn roles_and_databases_never_share_keys() {
    let a = base();
    let b = SessionView { role: "bob".into(), ..base() };
    let c = SessionView { database: "other".into(), ..base() };
    assert_ne!(plain(&a), plain(&b));
    assert_ne!(plain(&a), plain(&c));
    assert_eq!(plain(&a), plain(&base()), "deterministic");
}

#[test]
fn every_result_affecting_setting_changes_the_key() {
    // application_name included: a row-level-security policy can read it with current_setting().
    for name in
        ["search_path", "role", "TimeZone", "DateStyle", "IntervalStyle", "extra_float_digits", "client_encoding", "application_name"]
    {
        let mut s = base();
        s.settings.insert(name.into(), "something else".into());
        assert_ne!(plain(&base()), plain(&s), "{name}");
    }
    let mut s = base();
    s.settings.insert("app.tenant".into(), "42".into());
    assert_ne!(plain(&base()), plain(&s), "unknown settings count");
    let mut s = base();
    let tz = s.settings.remove("TimeZone").unwrap_or_default();
    s.settings.insert("timezone".into(), tz);
    assert_eq!(plain(&base()), plain(&s), "setting names are case-insensitive");
}

#[test]
fn statement_params_and_formats_change_the_key() {
    let s = base();
    let k = |f: fn(KeyBuilder) -> KeyBuilder| key_of(&s, f, &snap());
    let variants = [
        k(|b| b),
        k(|b| b.statement("SELECT $1 ")),
        k(|b| b.protocol(Protocol::Simple)),
        k(|b| b.protocol(Protocol::Extended { parse: false, describe: true })),
        k(|b| b.protocol(Protocol::Extended { parse: false, describe: false })),
        k(|b| b.protocol(Protocol::Extended { parse: true, describe: true })),
        k(|b| b.protocol(Protocol::Extended { parse: true, describe: false })),
        k(|b| b.params([Some(&b"1"[..])])),
        k(|b| b.params([Some(&b"2"[..])])),
        k(|b| b.params([None])),
        k(|b| b.params([Some(&b""[..])])),
        k(|b| b.param_formats(&[0])),
        k(|b| b.param_formats(&[1])),
        k(|b| b.param_types(&[23])),
        k(|b| b.param_types(&[25])),
        k(|b| b.result_formats(&[0])),
        k(|b| b.result_formats(&[1])),
    ];
    for (i, a) in variants.iter().enumerate() {
        for (j, b) in variants.iter().enumerate() {
            assert!(i == j || a != b, "variants {i} and {j} collide");
        }
    }
    // Length-prefixing: splitting the same bytes differently is a different key.
    let ab: &[u8] = b"ab";
    let a: &[u8] = b"a";
    let b: &[u8] = b"b";
    assert_ne!(key_of(&s, |x| x.params([Some(ab), None]), &snap()), key_of(&s, |x| x.params([Some(a), Some(b)]), &snap()));
}

#[test]
fn generations_change_the_key() {
    let s = base();
    let k = |snap: Snapshot| key_of(&s, |b| b, &snap);
    let f = "a|\"public\".\"users\"";
    assert_ne!(k(Snapshot::new(7, vec![(f.into(), 3)])), k(Snapshot::new(7, vec![(f.into(), 4)])));
    assert_ne!(k(Snapshot::new(7, vec![(f.into(), 3)])), k(Snapshot::new(8, vec![(f.into(), 3)])));
    assert_ne!(k(Snapshot::new(7, vec![(f.into(), 3)])), k(Snapshot::new(7, vec![])));
    assert_eq!(
        k(Snapshot::new(7, vec![("x".into(), 1), ("y".into(), 2)])),
        k(Snapshot::new(7, vec![("y".into(), 2), ("x".into(), 1)])),
        "field order does not matter"
    );
    assert_eq!(k(snap()).to_hex().len(), 64);
}

#[test]
fn a_saved_session_prefix_gives_the_same_keys() {
    let s = base();
    let prefix = SessionPrefix::new(&s);
    for sql in ["SELECT 1", "SELECT $1", ""] {
        let direct = Key::derive(&KeyParts::builder(&s).statement(sql).finish(), &snap());
        let saved = Key::derive(&KeyParts::builder_from(&prefix).statement(sql).finish(), &snap());
        assert_eq!(direct, saved, "{sql}");
    }
    let other = SessionView { role: "bob".into(), ..base() };
    let theirs = Key::derive(&KeyParts::builder_from(&SessionPrefix::new(&other)).statement("SELECT 1").finish(), &snap());
    assert_ne!(theirs, Key::derive(&KeyParts::builder_from(&prefix).statement("SELECT 1").finish(), &snap()));
}
