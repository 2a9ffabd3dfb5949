//! Layering: built-in defaults, then the TOML file, then `CITUS_PROXY_*` variables, then flags.

use std::collections::BTreeMap;
use std::path::Path;

use super::keys::{self, Key, KEYS};
use super::mask::mask_url;
use super::value;
use super::Config;

/// Values given on the command line, by key path.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub flags: BTreeMap<&'static str, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {message}")]
    Toml { path: String, message: String },
    #[error("unknown configuration key `{key}` in {origin}")]
    UnknownKey { key: String, origin: String },
    #[error("configuration key `{key}` (from {origin}): {message}")]
    Invalid { key: String, origin: String, message: String },
    #[error("configuration: {0}")]
    Inconsistent(String),
    /// Every problem found in one pass, so one run of check-config shows them all.
    #[error("{} configuration errors:\n  {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Many(Vec<ConfigError>),
}

impl ConfigError {
    /// The single errors (one, or each of `Many`).
    pub fn all(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Many(v) => v.iter().collect(),
            one => vec![one],
        }
    }

    fn from_list(mut errors: Vec<ConfigError>) -> Option<ConfigError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(ConfigError::Many(errors)),
        }
    }
}

/// `RUST_LOG` is read as another name of `CITUS_PROXY_LOG_LEVEL`: a variable like any other, so
/// `--log-level` wins over it and it wins over the file (the exact name wins when both are set).
const LOG_LEVEL_ENV_ALIAS: &str = "RUST_LOG";

/// Builds the configuration, checking everything before giving up: the error lists every bad
/// key. `env` looks a variable up (injected so tests need not touch the process environment).
pub fn load(file: Option<&Path>, overrides: &Overrides, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let mut errors = Vec::new();
    let mut table = toml::Table::new();
    for key in KEYS {
        let v = match key.kind {
            keys::Kind::Int { .. } | keys::Kind::Bool | keys::Kind::Float { .. } | keys::Kind::Rules => value::from_text(key, key.default),
            _ => Ok(toml::Value::String(key.default.to_string())),
        };
        match v {
            Ok(v) => set(&mut table, key.path, v),
            Err(message) => errors.push(invalid(key, "the built-in default", message)),
        }
    }
    if let Some(path) = file {
        merge_file(&mut table, path, &mut errors)?;
    }
    for key in KEYS {
        // The longer, exact name wins over the alias when both are set.
        let extra_alias = (key.path == "log.level").then(|| LOG_LEVEL_ENV_ALIAS.to_string());
        let found = extra_alias
            .into_iter()
            .chain(key.alias_env())
            .filter_map(|a| env(&a).filter(|v| !v.is_empty()).map(|v| (a, v)))
            .chain(env(&key.env_name()).map(|v| (key.env_name(), v)))
            .last();
        if let Some((name, text)) = found {
            match value::from_text(key, &text) {
                Ok(v) => set(&mut table, key.path, v),
                Err(m) => errors.push(invalid(key, &format!("environment variable {name}"), m)),
            }
        }
    }
    for (path, text) in &overrides.flags {
        let Some(key) = keys::find(path) else {
            errors.push(ConfigError::UnknownKey { key: path.to_string(), origin: "the command line".into() });
            continue;
        };
        match value::from_text(key, text) {
            Ok(v) => set(&mut table, key.path, v),
            Err(m) => errors.push(invalid(key, &format!("flag --{}", key.flag_name()), m)),
        }
    }
    let mut values = Vec::new();
    flatten("", &toml::Value::Table(table.clone()), &mut values);
    // Bad values were left at their defaults above, so the rest can still be checked.
    let mut config: Config = match toml::Value::Table(table).try_into() {
        Ok(c) => c,
        Err(e) => {
            let e: toml::de::Error = e;
            errors.push(ConfigError::Inconsistent(e.to_string()));
            return Err(ConfigError::from_list(errors).unwrap_or(ConfigError::Inconsistent(String::new())));
        }
    };
    config.values = values
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            let text = if k == "upstream.url" || k == "cache.redis_url" { mask_url(&text) } else { text };
            (k, text)
        })
        .collect();
    config.values.sort();
    check_consistency(&config, &mut errors);
    match ConfigError::from_list(errors) {
        Some(e) => Err(e),
        None => Ok(config),
    }
}

fn invalid(key: &Key, origin: &str, message: String) -> ConfigError {
    ConfigError::Invalid { key: key.path.to_string(), origin: origin.to_string(), message }
}

/// Reads the file (unreadable or not TOML: nothing else can be checked) and merges its valid
/// keys, adding one error per bad key.
fn merge_file(table: &mut toml::Table, path: &Path, errors: &mut Vec<ConfigError>) -> Result<(), ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
    let file: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Toml { path: shown.clone(), message: e.to_string() })?;
    let mut leaves = Vec::new();
    flatten("", &toml::Value::Table(file), &mut leaves);
    for (dotted, v) in leaves {
        let Some(key) = keys::find(&dotted) else {
            errors.push(ConfigError::UnknownKey { key: dotted, origin: shown.clone() });
            continue;
        };
        match value::check(key, &v) {
            Ok(()) => set(table, key.path, v),
            Err(m) => errors.push(invalid(key, &shown, m)),
        }
    }
    Ok(())
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                // A table is a section unless the key itself is a known leaf.
                if matches!(v, toml::Value::Table(_)) && keys::find(&p).is_none() {
                    flatten(&p, v, out);
                } else {
                    out.push((p, v.clone()));
                }
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

fn set(table: &mut toml::Table, path: &str, v: toml::Value) {
    let mut parts = path.split('.').peekable();
    let mut cur = table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(part.to_string(), v);
            return;
        }
        let entry = cur.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        match entry {
            toml::Value::Table(t) => cur = t,
            _ => return,
        }
    }
}

fn check_consistency(c: &Config, errors: &mut Vec<ConfigError>) {
    if c.tls.cert_file.is_empty() != c.tls.key_file.is_empty() {
        errors.push(ConfigError::Inconsistent("`tls.cert_file` and `tls.key_file` must be set together".into()));
    }
    if let Some(mode) = c.upstream_url().sslmode {
        if !["disable", "prefer", "require", "verify-ca", "verify-full"].contains(&mode.as_str()) {
            errors.push(ConfigError::Invalid {
                key: "upstream.url".into(),
                origin: "its sslmode parameter".into(),
                message: format!("unknown sslmode {mode:?}"),
            });
        }
    }
    if let Err(e) = c.cache.to_cache_config().and_then(|cc| cc.validate().map_err(|e| e.to_string())) {
        errors.push(ConfigError::Inconsistent(e));
    }
    if c.pool.min_size > c.pool.size {
        errors.push(ConfigError::Inconsistent(format!(
            "`pool.min_size` ({}) must not exceed `pool.size` ({})",
            c.pool.min_size, c.pool.size
        )));
    }
    if c.pool.mode != crate::config::PoolMode::Off
        && c.auth.kind != crate::config::AuthType::Trust
        && c.auth.file.is_empty()
        && c.auth.user.is_empty()
    {
        errors.push(ConfigError::Inconsistent(
            "`pool.mode` pools server connections, so the proxy authenticates clients itself: set `auth.file` or `auth.user` (with `auth.query`), or `auth.type = \"trust\"`".into(),
        ));
    }
    for (key, on) in [("routing.shard_local", c.routing.shard_local), ("routing.spread_reads", c.routing.spread_reads)] {
        if on && c.pool.mode != crate::config::PoolMode::Transaction {
            errors.push(ConfigError::Inconsistent(format!(
                "`{key}` sends transactions to the nodes' own pools, which needs `pool.mode = \"transaction\"` (it is \"{}\")",
                match c.pool.mode {
                    crate::config::PoolMode::Off => "off",
                    crate::config::PoolMode::Session => "session",
                    crate::config::PoolMode::Transaction => "transaction",
                }
            )));
        }
        if on && !c.routing.enabled {
            errors.push(ConfigError::Inconsistent(format!("`{key}` needs the route of each statement: set `routing.enabled = true`")));
        }
    }
    if c.limits.startup_timeout.is_zero() {
        errors.push(ConfigError::Inconsistent("`limits.startup_timeout` must be more than 0s".into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_load() {
        let c = load(None, &Overrides::default(), no_env).expect("defaults");
        assert_eq!(c.listen.to_string(), "127.0.0.1:6432");
        assert_eq!(c.limits.max_client_connections, 1000);
    }

    #[test]
    fn flags_win_over_env_and_env_over_file() {
        let mut f = tempfile();
        writeln!(f.1, "listen = \"127.0.0.1:7000\"\n[upstream]\nurl = \"postgres://file:1\"\n[limits]\nmax_client_connections = 5")
            .expect("write");
        let env = |k: &str| match k {
            "CITUS_PROXY_UPSTREAM" => Some("postgres://env:2".to_string()),
            "CITUS_PROXY_LIMITS_MAX_CLIENT_CONNECTIONS" => Some("7".to_string()),
            _ => None,
        };
        let mut o = Overrides::default();
        o.flags.insert("upstream.url", "postgres://flag:3".into());
        let c = load(Some(&f.0), &o, env).expect("loads");
        assert_eq!(c.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(c.upstream.url, "postgres://flag:3");
        assert_eq!(c.limits.max_client_connections, 7);
    }

    #[test]
    fn errors_name_the_key_and_origin() {
        let mut f = tempfile();
        writeln!(f.1, "[limits]\nmax_client_connections = \"many\"").expect("write");
        let e = load(Some(&f.0), &Overrides::default(), no_env).expect_err("bad type").to_string();
        assert!(e.contains("limits.max_client_connections"), "{e}");

        let mut f = tempfile();
        writeln!(f.1, "[upstream]\nurll = \"x\"").expect("write");
        let e = load(Some(&f.0), &Overrides::default(), no_env).expect_err("unknown").to_string();
        assert!(e.contains("upstream.urll"), "{e}");

        let env = |k: &str| (k == "CITUS_PROXY_UPSTREAM_SSLMODE").then(|| "sometimes".to_string());
        let e = load(None, &Overrides::default(), env).expect_err("bad choice").to_string();
        assert!(e.contains("upstream.sslmode") && e.contains("CITUS_PROXY_UPSTREAM_SSLMODE"), "{e}");

        let env = |k: &str| (k == "CITUS_PROXY_LIMITS_IDLE_TIMEOUT").then(|| "soon".to_string());
        let e = load(None, &Overrides::default(), env).expect_err("bad duration").to_string();
        assert!(e.contains("limits.idle_timeout"), "{e}");

        let mut o = Overrides::default();
        o.flags.insert("tls.cert_file", "/nonexistent/cert.pem".into());
        let e = load(None, &o, no_env).expect_err("missing file").to_string();
        assert!(e.contains("tls.cert_file") && e.contains("--tls-cert-file"), "{e}");
    }

    #[test]
    fn every_error_is_reported_in_one_pass() {
        let mut f = tempfile();
        writeln!(
            f.1,
            "[log]\nlevel = \"warning\"\n[cache]\nredis_url = \"redis://host:notaport\"\n[[cache.rules]]\nshape = \"DELETE FROM t\"\n[upstream]\nurll = 1"
        )
        .expect("write");
        let env = |k: &str| (k == "CITUS_PROXY_LIMITS_IDLE_TIMEOUT").then(|| "soon".to_string());
        let e = load(Some(&f.0), &Overrides::default(), env).expect_err("four bad keys");
        let text = e.to_string();
        assert_eq!(e.all().len(), 5, "{text}");
        for needle in [
            "log.level",
            "unknown level \"warning\"",
            "cache.redis_url",
            "cache.rules",
            "can never match",
            "upstream.urll",
            "limits.idle_timeout",
        ] {
            assert!(text.contains(needle), "{needle} missing from: {text}");
        }
    }

    #[test]
    fn rust_log_is_a_variable_below_the_flag() {
        let env = |k: &str| (k == "RUST_LOG").then(|| "debug".to_string());
        assert_eq!(load(None, &Overrides::default(), env).expect("valid").log.level, "debug");
        let mut o = Overrides::default();
        o.flags.insert("log.level", "warn".into());
        assert_eq!(load(None, &o, env).expect("valid").log.level, "warn");
        let both = |k: &str| match k {
            "RUST_LOG" => Some("debug".to_string()),
            "CITUS_PROXY_LOG_LEVEL" => Some("error".to_string()),
            _ => None,
        };
        assert_eq!(load(None, &Overrides::default(), both).expect("valid").log.level, "error");
        let bad = |k: &str| (k == "RUST_LOG").then(|| "warning".to_string());
        let e = load(None, &Overrides::default(), bad).expect_err("unknown level").to_string();
        assert!(e.contains("log.level") && e.contains("RUST_LOG"), "{e}");
    }

    #[test]
    fn a_directory_is_not_called_missing() {
        let mut o = Overrides::default();
        o.flags.insert("tls.cert_file", std::env::temp_dir().display().to_string());
        o.flags.insert("tls.key_file", std::env::temp_dir().display().to_string());
        let e = load(None, &o, no_env).expect_err("directory").to_string();
        assert!(e.contains("is a directory") && !e.contains("does not exist"), "{e}");
    }

    fn tempfile() -> (std::path::PathBuf, std::fs::File) {
        let p = std::env::temp_dir().join(format!(
            "citus-proxy-config-{}-{}.toml",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        ));
        let f = std::fs::File::create(&p).expect("create temp config");
        (p, f)
    }
}
