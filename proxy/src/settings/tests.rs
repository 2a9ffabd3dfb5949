use citus_proxy_router::{Router, Topology};

use super::*;

struct Session {
    router: Router,
    s: SessionSettings,
}

impl Session {
    fn new(startup: &[(&str, &str)]) -> Session {
        let startup: Vec<(String, String)> = startup.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut s = SessionSettings::new("alice", &startup, "public");
        // As the relay sees a session start: reports during authentication, no ReadyForQuery.
        s.on_parameter_status("application_name", "");
        Session { router: Router::new(100), s }
    }
    /// Sends `sql`; `status` is the ReadyForQuery that answers it (None: still outstanding).
    fn run(&mut self, sql: &str, error: bool, status: Option<TxStatus>) {
        let d = self.router.route_query(sql, &Topology::default(), &[]);
        self.s.on_statements(&d.analysis.statements, sql);
        if error {
            self.s.on_error();
        }
        if let Some(st) = status {
            self.s.on_ready(st);
        }
    }
    fn ok(&mut self, sql: &str) {
        self.run(sql, false, Some(TxStatus::Idle));
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.s.values().get(name).map(String::as_str)
    }
}

#[test]
fn reset_and_default_go_back_to_the_startup_value_or_the_configured_path() {
    let mut t = Session::new(&[("user", "alice"), ("DateStyle", "ISO"), ("options", "-c work_mem=8MB")]);
    assert_eq!(t.s.search_path(), ["public"]);
    assert_eq!(t.get("datestyle"), Some("ISO"));
    assert_eq!(t.get("work_mem"), Some("8MB"));
    assert_eq!(t.get("user"), None);
    t.ok("SET search_path TO app, \"$user\"");
    assert_eq!(t.s.search_path(), ["app", "alice"]);
    t.ok("RESET search_path");
    assert_eq!(t.s.search_path(), ["public"], "RESET: the configured default, not the old value");
    t.ok("SET search_path = app");
    t.ok("SET search_path TO DEFAULT");
    assert_eq!(t.s.search_path(), ["public"], "TO DEFAULT is no schema named `default`");
    assert_eq!(t.get("search_path"), None);
    t.ok("SET datestyle = 'German'");
    t.ok("RESET datestyle");
    assert_eq!(t.get("datestyle"), Some("ISO"));
    t.ok("SET citus_proxy.report_routing = on");
    assert!(t.s.report_routing());
    t.ok("RESET citus_proxy.report_routing");
    assert!(!t.s.report_routing());
    t.ok("SET citus_proxy.report_routing = on");
    t.ok("SET ROLE bob");
    t.ok("RESET ALL");
    assert!(!t.s.report_routing());
    assert_eq!(t.get("role"), Some("bob"), "RESET ALL keeps the role");
    t.ok("DISCARD ALL");
    assert_eq!(t.get("role"), None, "DISCARD ALL resets it");
}

#[test]
fn transactions_keep_or_drop_their_changes() {
    let mut t = Session::new(&[]);
    t.run("BEGIN", false, Some(TxStatus::InTransaction));
    t.run("SET search_path = a", false, Some(TxStatus::InTransaction));
    assert_eq!(t.s.search_path(), ["a"], "seen inside the transaction");
    t.run("SET LOCAL application_name = 'x'", false, Some(TxStatus::InTransaction));
    assert_eq!(t.get("application_name"), Some("'x'"));
    t.ok("COMMIT");
    assert_eq!(t.s.search_path(), ["a"], "a SET survives COMMIT");
    assert_eq!(t.get("application_name"), Some(""), "SET LOCAL does not");

    t.run("BEGIN", false, Some(TxStatus::InTransaction));
    t.run("SET search_path = b", false, Some(TxStatus::InTransaction));
    t.ok("ROLLBACK");
    assert_eq!(t.s.search_path(), ["a"], "ROLLBACK undoes a SET");

    t.run("BEGIN; SET search_path = c", false, Some(TxStatus::InTransaction));
    t.run("SELECT 1/0", true, Some(TxStatus::Failed));
    t.ok("COMMIT");
    assert_eq!(t.s.search_path(), ["a"], "COMMIT of a failed transaction rolls back");

    t.run("SET search_path = d; SELECT 1/0", true, Some(TxStatus::Idle));
    assert_eq!(t.s.search_path(), ["a"], "an implicit transaction that failed");

    t.run("BEGIN", false, Some(TxStatus::InTransaction));
    t.run("SET application_name = 'y'", false, None);
    t.s.on_parameter_status("application_name", "y");
    t.s.on_ready(TxStatus::InTransaction);
    t.run("ROLLBACK", false, None);
    t.s.on_parameter_status("application_name", "");
    t.s.on_ready(TxStatus::Idle);
    assert_eq!(t.get("application_name"), Some(""), "the reported value wins");
    assert!(!t.s.untracked());

    // A reported value after the first statement is no default: RESET goes back to the startup one.
    t.run("SET application_name = 'z'", false, None);
    t.s.on_parameter_status("application_name", "z");
    t.s.on_ready(TxStatus::Idle);
    t.run("RESET application_name", false, Some(TxStatus::Idle));
    assert_eq!(t.get("application_name"), Some(""));
}

#[test]
fn what_cannot_be_followed_is_untracked_until_discard_all() {
    let mut t = Session::new(&[]);
    t.ok("SELECT set_config('app.tenant', '1', false)");
    assert!(t.s.untracked());
    t.ok("RESET ALL");
    assert!(t.s.untracked(), "set_config may have changed the role");
    t.ok("DISCARD ALL");
    assert!(!t.s.untracked());
    t.run("BEGIN", false, Some(TxStatus::InTransaction));
    t.run("SAVEPOINT s", false, Some(TxStatus::InTransaction));
    t.run("SET search_path = x", false, Some(TxStatus::InTransaction));
    t.run("ROLLBACK TO SAVEPOINT s", false, Some(TxStatus::InTransaction));
    t.ok("COMMIT");
    assert!(t.s.untracked());
    let v = t.s.version();
    t.ok("SELECT 1");
    assert_eq!(t.s.version(), v, "a plain read changes nothing");
}
