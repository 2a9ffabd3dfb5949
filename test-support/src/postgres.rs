//! One real PostgreSQL per test binary: initdb + pg_ctl in a temp dir on a free port (as the
//! `postgres` user when running as root), or the server named by `CITUS_PROXY_TEST_PG`. It offers
//! TLS exactly as a Citus node sets itself up; tests of other TLS set-ups start their own servers
//! with [`start_postgres`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::OnceLock;

use crate::binaries::{pg_bin_dir, running_as_root};
use crate::certs::TestCerts;
use crate::citus_tls::{CitusAutoCert, CITUS_SSL_CIPHERS};
use crate::reaper::{sh_quote, stop_when_this_process_exits};
use crate::roles::{create_roles_sql, hba_lines};

#[derive(Debug)]
pub struct PgServer {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    certs: Option<TestCerts>,
    tls: Option<ServerTls>,
    /// The server's own log file, when the harness started it (printed on failures). Connections
    /// are logged, with their TLS protocol if any.
    pub log_file: Option<PathBuf>,
    /// The data directory, when the harness started the server (so a fault test can stop it).
    data_dir: Option<PathBuf>,
}

/// How a harness-started PostgreSQL offers TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTls {
    /// As every Citus node sets itself up (facts.md §11): an X.509 v1, self-signed, already
    /// expired certificate in the data directory and an ECDHE-only cipher list. The default.
    CitusAuto,
    /// The same, limited to TLS 1.2 (whose handshake signatures are checked differently).
    CitusAutoTls12Only,
    /// A v3 certificate for `localhost`/`127.0.0.1` signed by the harness CA ([`PgServer::certs`]),
    /// which verify-ca and verify-full accept.
    CaSigned,
    /// A TLS set-up no rustls client can negotiate (TLS 1.2 with RSA key exchange only): the
    /// handshake fails after the server has answered the SSLRequest with `S`.
    Unnegotiable,
}

static SERVER: OnceLock<PgServer> = OnceLock::new();

/// The PostgreSQL server of this test binary, started on first use.
pub fn postgres() -> &'static PgServer {
    SERVER.get_or_init(|| match std::env::var("CITUS_PROXY_TEST_PG") {
        Ok(url) if !url.is_empty() => with_roles(PgServer::external(&url)),
        _ => start_postgres(ServerTls::CitusAuto),
    })
}

/// Another PostgreSQL, offering TLS as `tls` says; it lives until the test binary exits.
pub fn start_postgres(tls: ServerTls) -> PgServer {
    with_roles(PgServer::start_local(tls))
}

fn with_roles(server: PgServer) -> PgServer {
    let url = server.url("postgres");
    crate::block_on_private(async move {
        let client = crate::connect(&url).await;
        client
            .batch_execute(&create_roles_sql())
            .await
            .unwrap_or_else(|e| panic!("test harness: cannot create the auth test roles: {}", crate::describe(&e)));
    });
    server
}

impl PgServer {
    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// `host:port`, as a proxy's upstream address.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
    pub fn superuser(&self) -> &str {
        &self.user
    }
    /// The harness CA and a certificate it signed for `localhost`/`127.0.0.1` (for the proxy's
    /// own TLS listener; the server itself presents it only under [`ServerTls::CaSigned`]).
    /// None for an external server.
    pub fn certs(&self) -> Option<&TestCerts> {
        self.certs.as_ref()
    }
    /// How this server offers TLS; None for an external server.
    pub fn tls(&self) -> Option<ServerTls> {
        self.tls
    }
    /// A superuser URL for database `db`.
    pub fn url(&self, db: &str) -> String {
        self.url_for(&self.user, self.password.as_deref(), db)
    }
    /// A URL for any role on this server.
    pub fn url_for(&self, user: &str, password: Option<&str>, db: &str) -> String {
        let auth = match password {
            Some(p) if !p.is_empty() => format!("{user}:{p}"),
            _ => user.to_string(),
        };
        format!("postgres://{auth}@{}:{}/{db}?sslmode=disable", self.host, self.port)
    }

    /// Creates (or re-creates) an empty database and returns its superuser URL.
    pub fn fresh_database(&self, name: &str) -> String {
        let admin = self.url("postgres");
        let name = name.to_string();
        let stmts = [format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"), format!("CREATE DATABASE \"{name}\"")];
        crate::block_on_private(async move { crate::execute_each(&admin, &stmts).await });
        self.url(&name)
    }

    /// Stops a harness-started server at once (`pg_ctl stop -m immediate`: backends are killed, as
    /// when a machine dies), for fault tests on a server of their own. Panics for an external one.
    pub fn stop_immediately(&self) {
        let data = self.data_dir.as_ref().expect("test harness: only a server the harness started can be stopped");
        run(as_pg(running_as_root(), &pg_bin_dir().join("pg_ctl")).arg("-D").arg(data).args(["-w", "stop", "-m", "immediate"]), "pg_ctl stop");
    }

    fn external(url: &str) -> PgServer {
        let cfg =
            tokio_postgres::Config::from_str(url).unwrap_or_else(|e| panic!("CITUS_PROXY_TEST_PG={url} is not a PostgreSQL URL: {e}"));
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => panic!("CITUS_PROXY_TEST_PG must name a TCP host"),
        };
        PgServer {
            host,
            port: cfg.get_ports().first().copied().unwrap_or(5432),
            user: cfg.get_user().unwrap_or("postgres").to_string(),
            password: cfg.get_password().map(|p| String::from_utf8_lossy(p).into_owned()),
            certs: None,
            tls: None,
            log_file: None,
            data_dir: None,
        }
    }

    fn start_local(tls: ServerTls) -> PgServer {
        let bin = pg_bin_dir();
        let root = running_as_root();
        let dir = std::env::temp_dir().join(format!("citus-proxy-pg-{}-{}", std::process::id(), nanos()));
        let data = dir.join("data");
        std::fs::create_dir_all(dir.join("certs")).expect("test harness: create temp dir");
        let certs = TestCerts::generate(&dir.join("certs"));
        if root {
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir), "chown");
        }
        set_key_mode(&certs.key_pem);
        run(
            as_pg(root, &bin.join("initdb")).arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]),
            "initdb",
        );
        std::fs::write(data.join("pg_hba.conf"), hba_lines()).expect("write pg_hba.conf");
        if tls != ServerTls::CaSigned {
            // Where Citus writes its certificate, owned by the server's user.
            CitusAutoCert::generate(&data);
            if root {
                run(Command::new("chown").args(["postgres:postgres", "server.crt", "server.key"]).current_dir(&data), "chown");
            }
        }
        let log = dir.join("server.log");
        let stop = format!(
            "{} -D {} stop -m immediate; rm -rf {}",
            as_pg_prefix(root, &bin.join("pg_ctl")),
            sh_quote(&data.to_string_lossy()),
            sh_quote(&dir.to_string_lossy())
        );
        stop_when_this_process_exits(&stop);
        for attempt in 0..5 {
            let port = crate::free_port();
            write_conf(&data, &dir, port, tls, &certs);
            let ok = as_pg(root, &bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "start"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return PgServer {
                    host: "127.0.0.1".into(),
                    port,
                    user: "postgres".into(),
                    password: None,
                    certs: Some(certs),
                    tls: Some(tls),
                    log_file: Some(log),
                    data_dir: Some(data),
                };
            }
            eprintln!("test harness: PostgreSQL did not start on port {port} (attempt {attempt}); retrying");
        }
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        panic!("test harness: PostgreSQL would not start; its log:\n{tail}");
    }
}

fn write_conf(data: &Path, dir: &Path, port: u16, tls: ServerTls, certs: &TestCerts) {
    let mut conf = format!(
        "port = {port}\nlisten_addresses = '127.0.0.1,127.0.0.2'\nunix_socket_directories = '{dir}'\n\
         max_connections = 500\nshared_buffers = 128MB\nfsync = off\nsynchronous_commit = off\n\
         full_page_writes = off\nlog_min_messages = warning\nlog_line_prefix = '%m [%p] '\n\
         log_connections = on\nssl = on\n",
        dir = dir.display(),
    );
    // Citus's own lines (facts.md §11); its certificate is the default server.crt/server.key.
    let citus = format!("ssl_ciphers = '{CITUS_SSL_CIPHERS}'\n");
    match tls {
        ServerTls::CitusAuto => conf.push_str(&citus),
        ServerTls::CitusAutoTls12Only => {
            conf.push_str(&citus);
            conf.push_str("ssl_max_protocol_version = 'TLSv1.2'\n");
        }
        ServerTls::CaSigned => conf.push_str(&format!(
            "ssl_cert_file = '{cert}'\nssl_key_file = '{key}'\nssl_ca_file = '{ca}'\n",
            cert = certs.cert_pem.display(),
            key = certs.key_pem.display(),
            ca = certs.ca_pem.display(),
        )),
        // RSA key exchange only: rustls implements none of these suites.
        ServerTls::Unnegotiable => {
            conf.push_str("ssl_ciphers = 'AES256-GCM-SHA384:AES128-GCM-SHA256'\nssl_max_protocol_version = 'TLSv1.2'\n")
        }
    }
    std::fs::write(data.join("postgresql.auto.conf"), conf).expect("write postgresql.auto.conf");
}

fn set_key_mode(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

fn as_pg(root: bool, program: &Path) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn as_pg_prefix(root: bool, program: &Path) -> String {
    let p = sh_quote(&program.to_string_lossy());
    if root {
        format!("runuser -u postgres -- {p}")
    } else {
        p
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("test harness: cannot run {what}: {e}"));
    if !out.status.success() {
        panic!("test harness: {what} failed: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
}

pub(crate) fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}
