//! Carried settings: what each client statement does, and what a server connection is sent.

#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn startup(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn sync(client: &ClientSettings, server: &ServerSettings) -> String {
    let mut sql = String::new();
    let wrote = sync_sql(client, server, &mut sql);
    assert_eq!(wrote, !sql.is_empty());
    sql
}

/// Runs `statements` as one committed (or rolled back) transaction on `server`.
fn run(client: &mut ClientSettings, server: &mut ServerSettings, statements: &[&str], committed: bool) {
    for s in statements {
        client.on_statement(s);
    }
    client.on_transaction_end(committed);
    server.follow(client);
}

#[test]
fn startup_parameters_become_quoted_sets() {
    let c = ClientSettings::new(&startup(&[
        ("user", "alice"),
        ("database", "app"),
        ("application_name", "it's"),
        ("DateStyle", "ISO, MDY"),
        ("x.path", "C:\\dir 'q'"),
        ("search_path", "\"$user\", App, \"Mixed\"\"Q\""),
        ("options", "-c work_mem=4MB --statement-timeout=5s"),
        ("_pq_.something", "1"),
        ("replication", "database"),
    ]));
    let all: Vec<(&str, &str)> = c.settings().collect();
    assert_eq!(
        all,
        vec![
            ("application_name", "SET application_name = 'it''s'"),
            ("datestyle", "SET datestyle = 'ISO, MDY'"),
            ("x.path", "SET x.path = E'C:\\\\dir ''q'''"),
            ("search_path", "SELECT pg_catalog.set_config('search_path', '\"$user\", App, \"Mixed\"\"Q\"', false)"),
            ("work_mem", "SET work_mem = '4MB'"),
            ("statement_timeout", "SET statement_timeout = '5s'"),
        ]
    );
    // A fresh server gets all of them, in that order.
    let s = ServerSettings::new();
    let sql = sync(&c, &s);
    assert!(sql.starts_with("SET application_name = 'it''s'\n;SET datestyle"), "{sql}");
    assert!(sql.ends_with("SET statement_timeout = '5s'\n;"), "{sql}");
}

#[test]
fn odd_names_and_empty_lists_are_quoted() {
    let c = ClientSettings::new(&startup(&[("Odd-Name", "v"), ("search_path", "")]));
    assert_eq!(c.get("odd-name"), Some("SET \"odd-name\" = 'v'"));
    assert_eq!(c.get("search_path"), Some("SELECT pg_catalog.set_config('search_path', '', false)"));
}

#[test]
fn equal_settings_sync_nothing() {
    let mut c = ClientSettings::new(&startup(&[("application_name", "a")]));
    let mut s = ServerSettings::new();
    assert!(!sync(&c, &s).is_empty());
    s.applied(&c);
    assert_eq!(sync(&c, &s), "");
    // Another client with the same settings: compared once, equal, nothing sent.
    let other = ClientSettings::new(&startup(&[("application_name", "a")]));
    assert_eq!(sync(&other, &s), "");
    // A statement that changes nothing lasting keeps the version.
    let v = c.version();
    run(&mut c, &mut s, &["SELECT 1", "SET LOCAL work_mem = '1MB'", "SET TRANSACTION READ ONLY"], true);
    assert_eq!(c.version(), v);
    assert_eq!(sync(&c, &s), "");
}

#[test]
fn set_outside_a_block_sticks_when_it_succeeds() {
    let mut c = ClientSettings::new(&[]);
    let mut s1 = ServerSettings::new();
    let mut s2 = ServerSettings::new();
    let v = c.version();
    run(&mut c, &mut s1, &["SET search_path TO a, b;"], true);
    assert_ne!(c.version(), v);
    // The server that ran it holds it already; another one gets it.
    assert_eq!(sync(&c, &s1), "");
    assert_eq!(sync(&c, &s2), "SET search_path TO a, b\n;");
    s2.applied(&c);
    // A failed one does not stick.
    run(&mut c, &mut s2, &["SET work_mem = 'lots'"], false);
    assert_eq!(c.get("work_mem"), None);
    assert_eq!(sync(&c, &s2), "");
}

#[test]
fn set_in_a_block_survives_commit_and_not_rollback() {
    let mut c = ClientSettings::new(&[]);
    let mut s = ServerSettings::new();
    run(&mut c, &mut s, &["BEGIN", "SET work_mem = '8MB'", "SET LOCAL statement_timeout = 5"], false);
    assert_eq!(c.settings().count(), 0);
    assert_eq!(sync(&c, &s), "");
    run(&mut c, &mut s, &["BEGIN", "set  work_mem='8MB'", "COMMIT"], true);
    assert_eq!(c.get("work_mem"), Some("set  work_mem='8MB'"));
    assert_eq!(sync(&c, &s), "");
}

#[test]
fn savepoints_drop_the_sets_after_them() {
    let mut c = ClientSettings::new(&[]);
    let mut s = ServerSettings::new();
    run(
        &mut c,
        &mut s,
        &[
            "BEGIN",
            "SET a.x = 1",
            "SAVEPOINT sp",
            "SET a.y = 2",
            "ROLLBACK TO SAVEPOINT sp",
            "SET a.z = 3",
            "SAVEPOINT \"Q\"",
            "SET a.w = 4",
            "RELEASE \"Q\"",
            "rollback to sp",
            "COMMIT",
        ],
        true,
    );
    assert_eq!(c.settings().map(|(k, _)| k).collect::<Vec<_>>(), vec!["a.x"]);
}

#[test]
fn reset_name_goes_back_to_the_startup_value() {
    let mut c = ClientSettings::new(&startup(&[("application_name", "app")]));
    let mut s = ServerSettings::new();
    s.applied(&c);
    run(&mut c, &mut s, &["SET application_name = 'other'", "SET work_mem = '1MB'"], true);
    let v = c.version();
    run(&mut c, &mut s, &["RESET application_name"], true);
    assert_ne!(c.version(), v);
    assert_eq!(c.get("application_name"), Some("SET application_name = 'app'"));
    // The server reset to *its* default: the client's startup value is set again.
    assert_eq!(sync(&c, &s), "SET application_name = 'app'\n;");
    s.applied(&c);
    // A setting with no startup value is just gone, on both sides.
    run(&mut c, &mut s, &["SET work_mem TO DEFAULT"], true);
    assert_eq!(c.get("work_mem"), None);
    assert_eq!(sync(&c, &s), "");
    // A server that still has it from earlier gets a RESET.
    let mut old = ServerSettings::new();
    let mut other = ClientSettings::new(&[]);
    run(&mut other, &mut old, &["SET work_mem = '1MB'"], true);
    assert_eq!(sync(&c, &old), "SET application_name = 'app'\n;".replace("SET", "RESET work_mem\n;SET"));
}

#[test]
fn reset_all_keeps_role_and_discard_all_does_not() {
    let mut c = ClientSettings::new(&startup(&[("application_name", "app")]));
    let mut s = ServerSettings::new();
    s.applied(&c);
    run(&mut c, &mut s, &["SET ROLE alice", "SET work_mem = '1MB'", "SET application_name = 'x'"], true);
    assert_eq!(c.get("role"), Some("SET ROLE alice"));
    run(&mut c, &mut s, &["RESET ALL"], true);
    assert_eq!(c.settings().collect::<Vec<_>>(), vec![("application_name", "SET application_name = 'app'"), ("role", "SET ROLE alice")]);
    assert_eq!(sync(&c, &s), "SET application_name = 'app'\n;");
    s.applied(&c);
    run(&mut c, &mut s, &["DISCARD ALL"], true);
    assert_eq!(c.settings().collect::<Vec<_>>(), vec![("application_name", "SET application_name = 'app'")]);
    assert_eq!(sync(&c, &s), "SET application_name = 'app'\n;");
    // Another client's server still acting as alice gets RESET role.
    let mut fresh = ServerSettings::new();
    let mut alice = ClientSettings::new(&[]);
    run(&mut alice, &mut fresh, &["SET ROLE alice"], true);
    let plain = ClientSettings::new(&[]);
    assert_eq!(sync(&plain, &fresh), "RESET role\n;");
    // The pool's DISCARD ALL on the connection.
    fresh.reset();
    assert_eq!(sync(&plain, &fresh), "");
}

#[test]
fn special_forms() {
    let mut c = ClientSettings::new(&[]);
    let mut s = ServerSettings::new();
    run(
        &mut c,
        &mut s,
        &[
            "/* app */ SET TIME ZONE 'UTC'",
            "SET SESSION search_path = x",
            "SET NAMES 'UTF8'",
            "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SET LOCAL TIME ZONE 'Europe/Paris'",
        ],
        true,
    );
    let names: Vec<&str> = c.settings().map(|(k, _)| k).collect();
    assert_eq!(names, vec!["timezone", "search_path", "client_encoding", "session characteristics"]);
    assert_eq!(c.get("timezone"), Some("SET TIME ZONE 'UTC'"));
    run(&mut c, &mut s, &["SET ROLE NONE", "SET TIME ZONE DEFAULT"], true);
    assert_eq!(c.get("timezone"), None);
    let plain = ClientSettings::new(&[]);
    let sql = sync(&plain, &s);
    assert!(sql.contains("RESET default_transaction_isolation;\nRESET default_transaction_read_only"), "{sql}");
    assert!(sql.contains("RESET search_path\n;") && sql.contains("RESET client_encoding\n;"), "{sql}");
}

#[test]
fn a_trailing_comment_cannot_swallow_the_next_statement() {
    let mut c = ClientSettings::new(&[]);
    let mut s = ServerSettings::new();
    run(&mut c, &mut s, &["SET work_mem = '1MB' -- tuned"], true);
    run(&mut c, &mut s, &["SET a.b = 1"], true);
    assert_eq!(sync(&c, &ServerSettings::new()), "SET work_mem = '1MB' -- tuned\n;SET a.b = 1\n;");
}

#[test]
fn reading_statements() {
    use statement::*;
    let set = |name: &str, text: &str| Command::Change(Change::Set { name: name.into(), text: text.into() });
    assert_eq!(read_statement("SET search_path=a"), set("search_path", "SET search_path=a"));
    assert_eq!(read_statement("set \"Work_Mem\" to '1MB';"), set("work_mem", "set \"Work_Mem\" to '1MB'"));
    assert_eq!(read_statement("SET SESSION AUTHORIZATION bob"), set("session_authorization", "SET SESSION AUTHORIZATION bob"));
    assert_eq!(read_statement("SET SESSION AUTHORIZATION DEFAULT"), Command::Change(Change::Reset("session_authorization".into())));
    assert_eq!(read_statement("SET LOCAL search_path = a"), Command::Nothing);
    assert_eq!(read_statement("reset Work_Mem"), Command::Change(Change::Reset("work_mem".into())));
    assert_eq!(read_statement("RESET ALL"), Command::Change(Change::ResetAll));
    assert_eq!(read_statement("-- x\nDISCARD ALL;"), Command::Change(Change::DiscardAll));
    assert_eq!(read_statement("ROLLBACK WORK TO SAVEPOINT \"A\""), Command::RollbackTo("A".into()));
    assert_eq!(read_statement("ROLLBACK"), Command::Nothing);
    assert_eq!(read_statement("release savepoint B"), Command::Release("b".into()));
    assert_eq!(read_statement("SELECT set_config('a.b', '1', false)"), Command::Nothing);
    assert_eq!(read_statement(""), Command::Nothing);
    assert_eq!(read_statement("SET"), Command::Nothing);
}

#[test]
fn records_can_live_in_shared_pool_state() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ClientSettings>();
    send_sync::<ServerSettings>();
}
