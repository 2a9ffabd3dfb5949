//! Every configuration key, once: its TOML path, kind, default and meaning. Environment variable
//! and flag names are derived from the path, so the file, the environment, the command line and
//! the reference in docs/configuration.md can never disagree.

/// How a key's value is written and checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Str,
    /// `host:port` to listen on.
    SocketAddr,
    /// A `postgres://` URL.
    PgUrl,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// A duration such as `5s`, `250ms`, `2m`; `0s` disables where the doc says so.
    Duration,
    /// A whole number within bounds.
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    /// A file that must exist when set; empty means unset.
    File,
    /// A number within bounds.
    Float {
        min: f64,
        max: f64,
    },
    /// `host:port` to listen on, or `off`.
    SocketAddrOrOff,
    /// A `tracing` filter: a level word, or `target=level` directives, comma-separated.
    LogFilter,
    /// Empty, or one `redis://` / `rediss://` URL, or comma-separated Cluster nodes.
    RedisUrl,
    /// `[[cache.rules]]`: an array of `{ table = "…" | shape = "…", ttl = "…" }`; as a variable
    /// or flag, the same array in TOML's inline syntax.
    Rules,
}

#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// Dotted TOML path, e.g. `upstream.url`.
    pub path: &'static str,
    pub kind: Kind,
    /// Default, as it would be written in TOML (strings unquoted).
    pub default: &'static str,
    pub doc: &'static str,
    /// A shorter flag / variable name kept for convenience (`--upstream`).
    pub alias: Option<&'static str>,
}

impl Key {
    /// `CITUS_PROXY_UPSTREAM_URL` for `upstream.url`.
    pub fn env_name(&self) -> String {
        env_of(self.path)
    }
    /// `upstream-url` for `upstream.url`.
    pub fn flag_name(&self) -> String {
        self.path.replace(['.', '_'], "-")
    }
    pub fn alias_env(&self) -> Option<String> {
        self.alias.map(env_of)
    }
}

fn env_of(path: &str) -> String {
    format!("CITUS_PROXY_{}", path.replace(['.', '-'], "_").to_ascii_uppercase())
}

const SSLMODES: &[&str] = &["disable", "prefer", "require", "verify-ca", "verify-full"];
const LOG_FORMATS: &[&str] = &["human", "json"];
const AUTO_ON_OFF: &[&str] = &["auto", "on", "off"];
const POOL_MODES: &[&str] = &["off", "session", "transaction"];
const AUTH_TYPES: &[&str] = &["scram-sha-256", "md5", "trust"];
const MAX_I32: i64 = i32::MAX as i64;

pub const KEYS: &[Key] = &[
    Key { path: "listen", kind: Kind::SocketAddr, default: "127.0.0.1:6432", doc: "Address the proxy accepts PostgreSQL clients on.", alias: None },
    Key { path: "listen_reuseport", kind: Kind::Bool, default: "false", doc: "Set SO_REUSEPORT on `listen` and `metrics.listen`, so a new version can start on the same addresses while the old one drains (docs/operations.md).", alias: None },
    Key { path: "upstream.url", kind: Kind::PgUrl, default: "postgres://127.0.0.1:5432", doc: "The Citus coordinator: `postgres://HOST:PORT`. Clients authenticate against it with their own credentials; a user, password and database in the URL are only used for the proxy's own metadata queries.", alias: Some("upstream") },
    Key { path: "upstream.sslmode", kind: Kind::Choice(SSLMODES), default: "prefer", doc: "TLS from the proxy to the coordinator, as libpq's sslmode: disable; prefer (TLS if the server offers it, plaintext if it answers no or the handshake fails); require (encrypt, no certificate check: works with the X.509 v1, expired certificate every Citus node makes for itself); verify-ca (verify the chain); verify-full (chain and host name). verify-ca/verify-full refuse Citus's own certificate: install a CA-signed one.", alias: None },
    Key { path: "upstream.ca_file", kind: Kind::File, default: "", doc: "PEM file of CA certificates for verify-ca / verify-full; empty uses the system's roots.", alias: None },
    Key { path: "upstream.connect_timeout", kind: Kind::Duration, default: "5s", doc: "How long to wait for the coordinator to accept a connection, and for each of its answers while a client logs in, before the client gets SQLSTATE 08001; also bounds the `/readyz` probe.", alias: None },
    Key { path: "tls.cert_file", kind: Kind::File, default: "", doc: "PEM certificate chain for TLS to clients. With `tls.key_file`, SSLRequest is answered `S`; without, `N`.", alias: None },
    Key { path: "tls.key_file", kind: Kind::File, default: "", doc: "PEM private key for `tls.cert_file`.", alias: None },
    Key { path: "limits.max_client_connections", kind: Kind::Int { min: 1, max: 1_000_000 }, default: "1000", doc: "Authenticated client connections served at once; the next one gets SQLSTATE 53300 once the coordinator accepted it.", alias: None },
    Key { path: "limits.max_message_size", kind: Kind::Int { min: 1024, max: MAX_I32 }, default: "1073741823", doc: "Largest protocol message accepted from a client, in bytes (PostgreSQL's own limit is 1 GiB - 1); larger ones get SQLSTATE 08P01 and the connection is closed.", alias: None },
    Key { path: "limits.idle_timeout", kind: Kind::Duration, default: "0s", doc: "Close a client connection idle outside a transaction this long (SQLSTATE 57P05); 0s disables.", alias: None },
    Key { path: "limits.startup_timeout", kind: Kind::Duration, default: "15s", doc: "Time a new connection has to log in: startup packet, TLS, the coordinator connection and the whole authentication exchange (PostgreSQL's authentication_timeout); past it the connection is closed.", alias: None },
    Key { path: "limits.max_logins_in_progress", kind: Kind::Int { min: 1, max: 1_000_000 }, default: "100", doc: "Connections logging in at once (accepted, not yet authenticated); they do not count against `limits.max_client_connections` until the coordinator accepts them. The next one waits up to 5s for a slot (never past its login deadline, `limits.startup_timeout` after accept), then gets SQLSTATE 53300; at most ten times this many wait, and past that a connection is closed unanswered.", alias: None },
    Key { path: "limits.metrics_max_connections", kind: Kind::Int { min: 1, max: 100_000 }, default: "64", doc: "Open connections to the metrics listener at once; more are closed as they arrive.", alias: None },
    Key { path: "limits.metrics_idle_timeout", kind: Kind::Duration, default: "10s", doc: "How long a metrics-listener connection may take to send a request's headers, and stay idle between requests, before it is closed.", alias: None },
    Key { path: "shutdown.timeout", kind: Kind::Duration, default: "30s", doc: "On SIGTERM, how long running transactions may take to finish before their connections are closed.", alias: None },
    Key { path: "metrics.listen", kind: Kind::SocketAddrOrOff, default: "127.0.0.1:9930", doc: "HTTP listener for `/metrics` (Prometheus), `/slo`, `/healthz` and `/readyz`; `off` disables it.", alias: None },
    Key { path: "slo.percentile", kind: Kind::Float { min: 0.5, max: 0.99999 }, default: "0.99", doc: "The percentile each latency target applies to.", alias: None },
    Key { path: "slo.window", kind: Kind::Duration, default: "60s", doc: "Sliding window over which the SLO percentiles are computed.", alias: None },
    Key { path: "slo.single_shard_query", kind: Kind::Duration, default: "100ms", doc: "Latency target: statements routed to one shard.", alias: None },
    Key { path: "slo.multi_shard_aggregation", kind: Kind::Duration, default: "500ms", doc: "Latency target: aggregations over many shards.", alias: None },
    Key { path: "slo.count", kind: Kind::Duration, default: "1s", doc: "Latency target: count queries.", alias: None },
    Key { path: "slo.vector_search", kind: Kind::Duration, default: "50ms", doc: "Latency target: vector similarity search (ORDER BY a distance operator, LIMIT k).", alias: None },
    Key { path: "slo.bulk_insert", kind: Kind::Duration, default: "5s", doc: "Latency target: a 10k-row insert (multi-row INSERT or COPY FROM).", alias: None },
    Key { path: "slo.shard_creation", kind: Kind::Duration, default: "30s", doc: "Latency target: create_distributed_table.", alias: None },
    Key { path: "slo.worker_registration", kind: Kind::Duration, default: "10s", doc: "Latency target: citus_add_node.", alias: None },
    Key { path: "metadata.refresh_interval", kind: Kind::Duration, default: "30s", doc: "How often the Citus catalog is re-read in full regardless of the change probe (it is also re-read after DDL and Citus functions pass through, when the probe sees a change, and on RELOAD); 0s = only then.", alias: None },
    Key { path: "metadata.probe_interval", kind: Kind::Duration, default: "1s", doc: "How often one cheap query fingerprints the catalog (row counts and row versions of pg_dist_* and of user relations) to notice changes made outside the proxy; the catalog is re-read in full only when it changed. 0s = no probe.", alias: None },
    Key { path: "routing.enabled", kind: Kind::Bool, default: "true", doc: "Analyse every statement and compute its route (off: plain pass-through, for comparison).", alias: None },
    Key { path: "routing.shape_cache_size", kind: Kind::Int { min: 16, max: 10_000_000 }, default: "10000", doc: "Statement shapes whose analysis is kept (literals stripped).", alias: None },
    Key { path: "routing.search_path", kind: Kind::Str, default: "public", doc: "Schemas unqualified table names resolve in, until a session sets its own search_path (comma-separated).", alias: None },
    Key { path: "routing.shard_local", kind: Kind::Bool, default: "false", doc: "Run each transaction whose first statement is single-shard on a pooled connection to the primary that holds the shard (Citus 11+ plans queries on every node with synced metadata), instead of through the coordinator. Needs `pool.mode = \"transaction\"` and `routing.enabled`. Everything else, and everything while a node's metadata is not synced, goes to the coordinator.", alias: None },
    Key { path: "routing.spread_reads", kind: Kind::Bool, default: "false", doc: "Spread multi-shard read-only statements outside transactions round-robin over every primary with synced metadata (coordinator included), Citus's own query-from-any-node load balancing. Needs `pool.mode = \"transaction\"` and `routing.enabled`.", alias: None },
    Key { path: "cache.enabled", kind: Kind::Bool, default: "true", doc: "Serve opted-in reads from the result cache (needs `routing.enabled`). Nothing is cached until `cache.tables`, `cache.rules` or a `/* citus-proxy: cache ttl=30s */` comment opts a statement in; writes passing through always invalidate.", alias: None },
    Key { path: "cache.redis_url", kind: Kind::RedisUrl, default: "", doc: "Shared tier all proxy instances use: `redis://HOST:PORT[/DB]`, or comma-separated nodes of a Redis Cluster. Empty: the in-process tier alone (exact for one instance only).", alias: None },
    Key { path: "cache.redis_cluster", kind: Kind::Choice(AUTO_ON_OFF), default: "auto", doc: "Treat `cache.redis_url` as a Redis Cluster: `auto` = when it lists more than one node.", alias: None },
    Key { path: "cache.redis_prefix", kind: Kind::Str, default: "citus-proxy", doc: "Prefix of every Redis key and of the invalidation channel, so deployments can share one Redis.", alias: None },
    Key { path: "cache.memory_max_bytes", kind: Kind::Int { min: 0, max: i64::MAX }, default: "67108864", doc: "Bound of the in-process tier in bytes (a CLOCK sweep evicts entries not used lately); 0 disables it.", alias: None },
    Key { path: "cache.max_entry_bytes", kind: Kind::Int { min: 1, max: MAX_I32 }, default: "1048576", doc: "Largest response cached, in bytes; larger ones are relayed and not stored.", alias: None },
    Key { path: "cache.default_ttl", kind: Kind::Duration, default: "60s", doc: "TTL of a table or shape rule that names none. Writes that bypass the proxy are seen only when entries expire.", alias: None },
    Key { path: "cache.redis_timeout", kind: Kind::Duration, default: "5ms", doc: "Per-operation Redis timeout; past it the statement goes to the coordinator (the cache fails open).", alias: None },
    Key { path: "cache.invalidation_timeout", kind: Kind::Duration, default: "2s", doc: "How long a write waits (its ReadyForQuery held) for its invalidation to reach a Redis that answers too slowly. Past it, or at once when Redis refuses, the invalidation is replayed later, and other instances may serve what it made stale until then.", alias: None },
    Key { path: "cache.breaker_failures", kind: Kind::Int { min: 1, max: 1_000_000 }, default: "5", doc: "Consecutive Redis failures that open the circuit breaker (Redis is then not asked until `cache.breaker_cooldown` passes).", alias: None },
    Key { path: "cache.breaker_cooldown", kind: Kind::Duration, default: "1s", doc: "How long the breaker stays open before one probe is let through.", alias: None },
    Key { path: "cache.fill_timeout", kind: Kind::Duration, default: "5s", doc: "How long concurrent misses of one key wait for the one upstream query filling it before going upstream themselves.", alias: None },
    Key { path: "cache.cacheable_functions", kind: Kind::Str, default: "", doc: "Comma-separated functions declared safe to cache (stable or immutable) beyond the built-in list; built-in volatile ones (now(), random(), …) stay uncacheable.", alias: None },
    Key { path: "cache.ignored_settings", kind: Kind::Str, default: "", doc: "Comma-separated session settings no cached statement reads (`application_name,statement_timeout`): left out of cache keys, so sessions differing only in them share entries. Every other setting (startup parameters, SET, what the server reports) is part of the key, since a query, a view or a row-level-security policy can read it with current_setting().", alias: None },
    Key { path: "cache.tables", kind: Kind::Str, default: "", doc: "Tables whose reads are cached: comma-separated `name` or `schema.name`, each optionally `=TTL` (`users=30s,public.orders`). A statement is cached only when every table it reads is listed.", alias: None },
    Key { path: "cache.rules", kind: Kind::Rules, default: "[]", doc: "More rules, as `[[cache.rules]]` tables with `table` or `shape` (a statement with `$n` for its literals) and an optional `ttl`; as a variable or flag, a TOML inline array: `[{ shape = \"SELECT count(*) FROM events\", ttl = \"5s\" }]`.", alias: None },
    Key { path: "pool.mode", kind: Kind::Choice(POOL_MODES), default: "off", doc: "`off`: each client gets its own coordinator connection and authentication is relayed to the coordinator. `session`: a pooled server connection is the client's until it disconnects, then reset (`pool.reset_query`) and reused. `transaction`: a server connection is the client's from the first message of a transaction to the ReadyForQuery that ends it. Pooled modes authenticate clients in the proxy (`auth.*`).", alias: None },
    Key { path: "pool.size", kind: Kind::Int { min: 1, max: 100_000 }, default: "20", doc: "Server connections per pool (one pool per user and database).", alias: None },
    Key { path: "pool.min_size", kind: Kind::Int { min: 0, max: 100_000 }, default: "0", doc: "Server connections each pool keeps open even when idle (opened once the pool's first client logged in).", alias: None },
    Key { path: "pool.max_db_connections", kind: Kind::Int { min: 0, max: 1_000_000 }, default: "0", doc: "Server connections per database over all its users' pools; 0 = no cap.", alias: None },
    Key { path: "pool.max_server_connections", kind: Kind::Int { min: 0, max: 1_000_000 }, default: "0", doc: "Server connections over all pools; 0 = no cap.", alias: None },
    Key { path: "pool.wait_timeout", kind: Kind::Duration, default: "30s", doc: "How long a client waits (FIFO) for a server connection before it gets SQLSTATE 53300 and its statement is not run; 0s = wait forever.", alias: None },
    Key { path: "pool.server_idle_timeout", kind: Kind::Duration, default: "600s", doc: "A server connection idle in the pool this long is closed (down to `pool.min_size`); 0s = never.", alias: None },
    Key { path: "pool.server_lifetime", kind: Kind::Duration, default: "3600s", doc: "A server connection older than this is closed when it next comes back to the pool; 0s = never.", alias: None },
    Key { path: "pool.server_check_delay", kind: Kind::Duration, default: "30s", doc: "A server connection idle longer than this is checked (an empty query) before a client gets it; 0s = always check.", alias: None },
    Key { path: "pool.reset_query", kind: Kind::Str, default: "DISCARD ALL", doc: "Run on a server connection before another client gets it in session mode (empty: none).", alias: None },
    Key { path: "pool.max_prepared_statements", kind: Kind::Int { min: 0, max: 100_000 }, default: "200", doc: "Transaction mode: protocol-level named prepared statements kept per server connection (least recently used closed first). Clients' statements are prepared under proxy-chosen names on whichever connection serves them. 0 = named statements are passed through unchanged (only safe when each is used within one transaction).", alias: None },
    Key { path: "auth.type", kind: Kind::Choice(AUTH_TYPES), default: "scram-sha-256", doc: "How pooled modes authenticate clients: `scram-sha-256`, `md5` (needs an MD5 or plaintext secret) or `trust` (no password asked). With a SCRAM verifier the proxy logs into the server with the key recovered from the client's proof, so no plaintext password is stored.", alias: None },
    Key { path: "auth.file", kind: Kind::File, default: "", doc: "PgBouncer-style userlist: lines `\"user\" \"secret\"`, the secret plaintext, `md5…` or `SCRAM-SHA-256$…` as in pg_authid.", alias: None },
    Key { path: "auth.user", kind: Kind::Str, default: "", doc: "Role that runs `auth.query` on the coordinator to fetch the secrets of users missing from `auth.file` (its own password comes from `auth.file`, else `upstream.url`).", alias: None },
    Key { path: "auth.query", kind: Kind::Str, default: "SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = $1", doc: "Query `auth.user` runs to fetch a user's secret: one parameter (the user name), columns name and secret.", alias: None },
    Key { path: "admin.database", kind: Kind::Str, default: "citus_proxy", doc: "Connecting to this database name opens the admin console instead of the coordinator.", alias: None },
    Key { path: "admin.users", kind: Kind::Str, default: "", doc: "Comma-separated roles allowed on the admin console (empty: nobody). Their passwords are checked by the coordinator.", alias: None },
    Key { path: "admin.auth_database", kind: Kind::Str, default: "postgres", doc: "Database the coordinator authenticates admin-console users against.", alias: None },
    Key { path: "runtime.worker_threads", kind: Kind::Int { min: 0, max: 1024 }, default: "0", doc: "Threads serving connections; 0 = one per CPU core.", alias: None },
    Key { path: "log.format", kind: Kind::Choice(LOG_FORMATS), default: "human", doc: "Log lines for people (`human`) or one JSON object per line (`json`).", alias: None },
    Key { path: "log.level", kind: Kind::LogFilter, default: "info", doc: "Log filter: a level (error, warn, info, debug, trace, off) or per-module directives (`info,citus_proxy::session=debug`). `RUST_LOG` is read as another name of `CITUS_PROXY_LOG_LEVEL` (which wins when both are set); `--log-level` wins over both. Applied live on SIGHUP / RELOAD.", alias: None },
];

pub fn find(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use citus_proxy_router::Class;

    /// The latency targets are the router's class vocabulary: one `slo.<class>` key per class
    /// that has a target, with the class's default, and no other.
    #[test]
    fn slo_keys_are_the_class_vocabulary() {
        let keys: Vec<&Key> =
            KEYS.iter().filter(|k| k.path.starts_with("slo.") && k.kind == Kind::Duration && k.path != "slo.window").collect();
        let classes: Vec<Class> = Class::ALL.into_iter().filter(|c| c.default_target_ms().is_some()).collect();
        assert_eq!(keys.len(), classes.len());
        for (key, class) in keys.iter().zip(classes) {
            assert_eq!(key.path, format!("slo.{}", class.as_str()));
            let ms = super::super::value::parse_duration(key.default).expect("a duration").as_millis();
            assert_eq!(Some(ms as u64), class.default_target_ms(), "{}", key.path);
        }
        let config = crate::config::Config::defaults();
        for class in Class::ALL {
            assert_eq!(config.slo.target(class).map(|d| d.as_millis() as u64), class.default_target_ms(), "{class}");
        }
    }
}
