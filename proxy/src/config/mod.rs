//! Configuration: one TOML file, every key overridable by environment variable and by flag
//! (flags win over variables, variables over the file), checked at start with messages that
//! name the key and where its value came from.

mod cache;
pub mod keys;
mod load;
pub mod mask;
pub mod upstream_url;
pub mod value;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

pub use cache::{CacheSection, RuleEntry};
pub use load::{load, ConfigError, Overrides};
pub use upstream_url::UpstreamUrl;
use value::de_duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub listen_reuseport: bool,
    pub upstream: Upstream,
    pub tls: Tls,
    pub limits: Limits,
    pub shutdown: Shutdown,
    pub metrics: Metrics,
    pub slo: Slo,
    pub metadata: Metadata,
    pub routing: Routing,
    pub cache: CacheSection,
    pub pool: Pool,
    pub auth: Auth,
    pub admin: Admin,
    pub runtime: Runtime,
    pub log: Log,
    /// Every key with its effective value as text (secrets masked), for SHOW CONFIG.
    #[serde(skip)]
    pub values: Vec<(String, String)>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    #[serde(deserialize_with = "de_duration")]
    pub refresh_interval: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub probe_interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    pub enabled: bool,
    pub shape_cache_size: u32,
    pub search_path: String,
    pub shard_local: bool,
    pub spread_reads: bool,
}

/// How client connections share server connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoolMode {
    Off,
    Session,
    Transaction,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub mode: PoolMode,
    pub size: u32,
    pub min_size: u32,
    pub max_db_connections: u32,
    pub max_server_connections: u32,
    #[serde(deserialize_with = "de_duration")]
    pub wait_timeout: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub server_idle_timeout: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub server_lifetime: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub server_check_delay: Duration,
    pub reset_query: String,
    pub max_prepared_statements: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthType {
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    Md5,
    Trust,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    #[serde(rename = "type")]
    pub kind: AuthType,
    pub file: String,
    pub user: String,
    pub query: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    pub worker_threads: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    pub database: String,
    pub users: String,
    pub auth_database: String,
}

impl Admin {
    pub fn is_admin(&self, user: &str) -> bool {
        self.users.split(',').map(str::trim).any(|u| !u.is_empty() && u == user)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// `host:port`, or `off`.
    pub listen: String,
}

impl Metrics {
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }
}

/// Latency targets per statement class, and how the percentile is computed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    pub percentile: f64,
    #[serde(deserialize_with = "de_duration")]
    pub window: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub single_shard_query: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub multi_shard_aggregation: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub count: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub vector_search: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub bulk_insert: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub shard_creation: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub worker_registration: Duration,
}

impl Slo {
    /// The configured target of `class` (its `slo.<class>` key); `other` has none.
    pub fn target(&self, class: citus_proxy_router::Class) -> Option<Duration> {
        use citus_proxy_router::Class;
        Some(match class {
            Class::SingleShardQuery => self.single_shard_query,
            Class::MultiShardAggregation => self.multi_shard_aggregation,
            Class::Count => self.count,
            Class::VectorSearch => self.vector_search,
            Class::BulkInsert => self.bulk_insert,
            Class::ShardCreation => self.shard_creation,
            Class::WorkerRegistration => self.worker_registration,
            Class::Other => return None,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub url: String,
    pub sslmode: SslMode,
    pub ca_file: String,
    #[serde(deserialize_with = "de_duration")]
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert_file: String,
    pub key_file: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_client_connections: u32,
    pub max_message_size: u32,
    #[serde(deserialize_with = "de_duration")]
    pub idle_timeout: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub startup_timeout: Duration,
    pub max_logins_in_progress: u32,
    pub metrics_max_connections: u32,
    #[serde(deserialize_with = "de_duration")]
    pub metrics_idle_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shutdown {
    #[serde(deserialize_with = "de_duration")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    pub format: LogFormat,
    pub level: String,
}

impl Config {
    /// The defaults alone (what `load` starts from).
    #[allow(clippy::expect_used)] // the built-in defaults are constants, checked by the config tests
    pub fn defaults() -> Config {
        load(None, &Overrides::default(), |_| None).expect("the built-in defaults are valid")
    }

    /// The parsed upstream URL (checked at load, so this cannot fail afterwards).
    pub fn upstream_url(&self) -> UpstreamUrl {
        UpstreamUrl::parse(&self.upstream.url).unwrap_or_else(|_| UpstreamUrl {
            host: "127.0.0.1".into(),
            port: 5432,
            user: None,
            password: None,
            database: None,
            sslmode: None,
        })
    }

    /// The effective sslmode: a `?sslmode=` in the URL wins over `upstream.sslmode`.
    pub fn upstream_sslmode(&self) -> SslMode {
        match self.upstream_url().sslmode.as_deref() {
            Some("disable") => SslMode::Disable,
            Some("prefer") => SslMode::Prefer,
            Some("require") => SslMode::Require,
            Some("verify-ca") => SslMode::VerifyCa,
            Some("verify-full") => SslMode::VerifyFull,
            _ => self.upstream.sslmode,
        }
    }

    /// True when both halves of the client-facing TLS material are configured.
    pub fn tls_enabled(&self) -> bool {
        !self.tls.cert_file.is_empty() && !self.tls.key_file.is_empty()
    }
}
