//! The policy: every never-cached rule, hints, and rules by table and by shape.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::time::Duration;

use citus_proxy_cache::*;
use common::{read, response, session, users};

fn policy_with(config: &CacheConfig) -> Policy {
    Policy::new(config, |sql| (sql == "SELECT * FROM orders WHERE id = $1").then_some(42)).expect("policy")
}

fn policy() -> Policy {
    policy_with(&CacheConfig {
        cacheable_functions: vec!["app.tenant_name".into()],
        rules: vec![
            Rule { table: Some("users".into()), shape: None, ttl: Some(Duration::from_secs(30)) },
            Rule { table: Some("public.items".into()), shape: None, ttl: None },
            Rule { table: None, shape: Some("SELECT * FROM orders WHERE id = $1".into()), ttl: Some(Duration::from_secs(5)) },
        ],
        ..Default::default()
    })
}

fn bypass(facts: &StatementFacts, s: &SessionView) -> Option<BypassReason> {
    match policy().decide(facts, s) {
        Decision::Bypass(r) => Some(r),
        Decision::Cache { .. } => None,
    }
}

#[test]
fn caches_an_opted_in_read() {
    assert_eq!(policy().decide(&read(None), &session("a")), Decision::Cache { ttl: Duration::from_secs(30) });
}

#[test]
fn never_inside_a_transaction_block() {
    let s = SessionView { in_transaction: true, ..session("a") };
    assert_eq!(bypass(&read(None), &s), Some(BypassReason::Transaction));
}

#[test]
fn never_a_write() {
    let facts = StatementFacts { read_only: false, ..read(None) };
    assert_eq!(bypass(&facts, &session("a")), Some(BypassReason::Write));
}

#[test]
fn never_with_a_volatile_function() {
    for f in [
        "now",
        "random",
        "nextval",
        "clock_timestamp",
        "statement_timestamp",
        "timeofday",
        "transaction_timestamp",
        "CURRENT_TIMESTAMP",
        "current_date",
        "localtime",
        "localtimestamp",
        "gen_random_uuid",
        "uuid_generate_v4",
        "setval",
        "currval",
        "lastval",
        "pg_sleep",
        "txid_current",
        "pg_catalog.now",
        "current_setting",
        "set_config",
    ] {
        let facts = StatementFacts { functions: vec!["lower".into(), f.into()], ..read(None) };
        assert_eq!(bypass(&facts, &session("a")), Some(BypassReason::VolatileFunction), "{f}");
    }
}

#[test]
fn unknown_functions_are_volatile_unless_allowed() {
    let facts = StatementFacts { functions: vec!["my_func".into()], ..read(None) };
    assert_eq!(bypass(&facts, &session("a")), Some(BypassReason::VolatileFunction));
    let facts = StatementFacts { functions: vec!["app.tenant_name".into(), "COUNT".into(), "coalesce".into()], ..read(None) };
    assert_eq!(bypass(&facts, &session("a")), None);
    // The allow-list cannot make a built-in volatile function cacheable.
    let p = policy_with(&CacheConfig { cacheable_functions: vec!["now".into()], ..Default::default() });
    assert!(!p.function_is_cacheable("now"));
    assert!(function_is_cacheable("upper") && !function_is_cacheable("app.tenant_name"));
}

#[test]
fn never_with_for_update_or_share() {
    let facts = StatementFacts { has_locking_clause: true, ..read(None) };
    assert_eq!(bypass(&facts, &session("a")), Some(BypassReason::LockingClause));
}

#[test]
fn never_temp_tables_or_catalogs() {
    let facts = StatementFacts { touches_temp_or_catalog: true, ..read(None) };
    assert_eq!(bypass(&facts, &session("a")), Some(BypassReason::TempOrCatalog));
}

#[test]
fn never_an_error_result() {
    let mut b = bytes::BytesMut::new();
    common::message(&mut b, b'E', b"SERROR\0C42P01\0Mno such table\0\0");
    assert_eq!(policy().check_response(&b), Err(BypassReason::ErrorResult));
    let mut rows_then_error = bytes::BytesMut::from(&response("x")[..]);
    common::message(&mut rows_then_error, b'E', b"SERROR\0\0");
    assert_eq!(policy().check_response(&rows_then_error), Err(BypassReason::ErrorResult));
    assert_eq!(policy().check_response(&response("x")), Ok(()));
}

#[test]
fn never_over_the_size_limit() {
    let p = policy_with(&CacheConfig { max_entry_bytes: 100, ..Default::default() });
    assert_eq!(p.check_response(&response(&"x".repeat(50))), Ok(()));
    assert_eq!(p.check_response(&response(&"x".repeat(200))), Err(BypassReason::TooLarge));
    let mut c = ResponseCollector::new(100);
    assert!(c.push(&response(&"x".repeat(50))));
    assert!(!c.push(&response(&"x".repeat(60))));
    assert_eq!(c.finish(), Err(BypassReason::TooLarge));
}

#[test]
fn never_unreplayable_responses() {
    let mut with_rfq = bytes::BytesMut::from(&response("x")[..]);
    common::message(&mut with_rfq, b'Z', b"I");
    assert_eq!(validate_response(&with_rfq), Err(BypassReason::UnsupportedResponse));
    let mut status = bytes::BytesMut::new();
    common::message(&mut status, b'S', b"TimeZone\0UTC\0");
    status.extend_from_slice(&response("x"));
    assert_eq!(validate_response(&status), Err(BypassReason::UnsupportedResponse));
    assert_eq!(validate_response(&response("x")[..5]), Err(BypassReason::UnsupportedResponse));
    assert_eq!(validate_response(b""), Err(BypassReason::UnsupportedResponse));
}

#[test]
fn never_after_untracked_settings_or_own_uncommitted_writes() {
    let s = SessionView { untracked_settings: true, ..session("a") };
    assert_eq!(bypass(&read(None), &s), Some(BypassReason::UntrackedSettings));
    let mut s = session("a");
    s.pending_writes.record(WriteScope::tables(vec![TableId::new("public", "other")]));
    assert_eq!(bypass(&read(None), &s), None, "a write to another table does not matter");
    s.pending_writes.record(WriteScope::shard(users(), 3));
    assert_eq!(bypass(&read(None), &s), Some(BypassReason::UncommittedWrites));
    assert_eq!(s.pending_writes.take().len(), 2);
    assert_eq!(bypass(&read(None), &s), None);
}

#[test]
fn hints_opt_in_and_set_the_ttl() {
    let other = TableId::new("public", "unlisted");
    let facts = StatementFacts { tables: vec![other.clone()], ..read(None) };
    assert_eq!(bypass(&facts, &session("a")), Some(BypassReason::NotOptedIn));
    // The router reads `/* citus-proxy: cache ttl=500ms */` and hands over its TTL.
    let facts = StatementFacts { tables: vec![other], hint: Some(Duration::from_millis(500)), ..read(None) };
    assert_eq!(policy().decide(&facts, &session("a")), Decision::Cache { ttl: Duration::from_millis(500) });
    // A hint does not override the never-cached rules.
    let facts = StatementFacts { functions: vec!["now".into()], ..facts };
    assert_eq!(bypass(&facts, &session("a")), Some(BypassReason::VolatileFunction));
}

#[test]
fn table_rules_need_every_table_and_take_the_smallest_ttl() {
    let items = TableId::new("public", "items");
    let both = StatementFacts { tables: vec![users(), items.clone()], ..read(None) };
    // items has no ttl: default_ttl (60s); users 30s.
    assert_eq!(policy().decide(&both, &session("a")), Decision::Cache { ttl: Duration::from_secs(30) });
    let other_schema = StatementFacts { tables: vec![TableId::new("archive", "items")], ..read(None) };
    assert_eq!(bypass(&other_schema, &session("a")), Some(BypassReason::NotOptedIn));
    let any_schema = StatementFacts { tables: vec![TableId::new("archive", "users")], ..read(None) };
    assert_eq!(bypass(&any_schema, &session("a")), None, "an unqualified rule matches any schema");
    let mixed = StatementFacts { tables: vec![users(), TableId::new("public", "secrets")], ..read(None) };
    assert_eq!(bypass(&mixed, &session("a")), Some(BypassReason::NotOptedIn));
}

#[test]
fn shape_rules_match_the_routers_shape_hash() {
    let orders = TableId::new("public", "orders");
    let facts = StatementFacts { tables: vec![orders], shape: 42, ..read(None) };
    assert_eq!(policy().decide(&facts, &session("a")), Decision::Cache { ttl: Duration::from_secs(5) });
    let facts = StatementFacts { shape: 43, ..facts };
    assert_eq!(bypass(&facts, &session("a")), Some(BypassReason::NotOptedIn));
    let bad = CacheConfig { rules: vec![Rule { table: None, shape: Some("not sql".into()), ttl: None }], ..Default::default() };
    assert!(Policy::new(&bad, |_| None).is_err());
}

#[test]
fn config_parses_from_toml_and_validates() {
    let c: CacheConfig = toml::from_str(
        r#"
        redis_url = "redis://a:6379, redis://b:6379"
        memory_max_bytes = 1048576
        redis_timeout = "3ms"
        default_ttl = "2m"
        [[rules]]
        table = "users"
        ttl = "30s"
        [[rules]]
        shape = "SELECT 1"
        "#,
    )
    .expect("toml");
    assert!(c.is_cluster());
    assert_eq!(c.redis_nodes(), vec!["redis://a:6379", "redis://b:6379"]);
    assert_eq!(c.redis_timeout, Duration::from_millis(3));
    assert_eq!(c.rules[0].ttl, Some(Duration::from_secs(30)));
    assert!(c.validate().is_ok());
    assert!(toml::from_str::<CacheConfig>("redis_timeout = \"soon\"").is_err());
    assert!(toml::from_str::<CacheConfig>("unknown = 1").is_err());
    let both = CacheConfig { rules: vec![Rule { table: Some("t".into()), shape: Some("s".into()), ttl: None }], ..Default::default() };
    assert!(both.validate().is_err());
    let bad_url = CacheConfig { redis_url: Some("localhost:6379".into()), ..Default::default() };
    assert!(bad_url.validate().is_err());
}

#[test]
fn bypass_labels_are_stable() {
    let labels: Vec<&str> = BypassReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        labels,
        [
            "transaction",
            "write",
            "volatile_function",
            "locking_clause",
            "temp_or_catalog",
            "unknown_relation",
            "uncommitted_writes",
            "untracked_settings",
            "not_opted_in",
            "error_result",
            "too_large",
            "unsupported_response",
            "unavailable"
        ]
    );
}
