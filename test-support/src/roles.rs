//! Login roles, one per authentication method, so tests can check that each method is relayed.
//! A harness-started server gets matching pg_hba.conf lines; an external server named by
//! CITUS_PROXY_TEST_PG needs the same lines (see `HBA_LINES`).

#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub name: &'static str,
    pub password: &'static str,
    /// The pg_hba.conf method this role is checked with.
    pub method: &'static str,
}

pub const AUTH_USERS: [AuthUser; 4] = [
    AuthUser { name: "cp_trust", password: "", method: "trust" },
    AuthUser { name: "cp_password", password: "pw-cleartext", method: "password" },
    AuthUser { name: "cp_md5", password: "pw-md5", method: "md5" },
    AuthUser { name: "cp_scram", password: "pw-scram", method: "scram-sha-256" },
];

pub(crate) fn hba_lines() -> String {
    let mut s = String::from("local all all trust\n");
    for u in AUTH_USERS {
        s.push_str(&format!("host all {} 127.0.0.0/8 {}\n", u.name, u.method));
    }
    s.push_str("host all all 127.0.0.0/8 trust\nhost all all ::1/128 trust\n");
    s
}

/// SQL that (re)creates the roles; md5 needs its password stored as md5, the others as SCRAM.
pub(crate) fn create_roles_sql() -> String {
    let mut s = String::new();
    for u in AUTH_USERS {
        let enc = if u.method == "md5" { "md5" } else { "scram-sha-256" };
        let pw = if u.password.is_empty() { "NULL".to_string() } else { format!("'{}'", u.password) };
        s.push_str(&format!(
            "SET password_encryption = '{enc}';\n\
             DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{n}') THEN CREATE ROLE {n} LOGIN; END IF; END $$;\n\
             ALTER ROLE {n} LOGIN PASSWORD {pw};\n",
            n = u.name
        ));
    }
    s.push_str("RESET password_encryption;\n");
    s
}
