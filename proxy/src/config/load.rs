//! Layering: built-in defaults, then the TOML file, then `CITUS_PROXY_*` variables, then flags.

use std::collections::BTreeMap;
use std::path::Path;

use super::keys::{self, Key, KEYS};
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
}

/// Builds the configuration. `env` looks a variable up (injected so tests need not touch the
/// process environment).
pub fn load(
    file: Option<&Path>,
    overrides: &Overrides,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut table = toml::Table::new();
    for key in KEYS {
        let v = match key.kind {
            keys::Kind::Int { .. } | keys::Kind::Bool | keys::Kind::Float { .. } | keys::Kind::Rules => {
                value::from_text(key, key.default)
            }
            _ => Ok(toml::Value::String(key.default.to_string())),
        }
        .map_err(|message| invalid(key, "the built-in default", message))?;
        set(&mut table, key.path, v);
    }
    if let Some(path) = file {
        merge_file(&mut table, path)?;
    }
    for key in KEYS {
        // The longer, exact name wins over the alias when both are set.
        let found = key
            .alias_env()
            .and_then(|a| env(&a).map(|v| (a, v)))
            .into_iter()
            .chain(env(&key.env_name()).map(|v| (key.env_name(), v)))
            .last();
        if let Some((name, text)) = found {
            let v = value::from_text(key, &text).map_err(|m| invalid(key, &format!("environment variable {name}"), m))?;
            set(&mut table, key.path, v);
        }
    }
    for (path, text) in &overrides.flags {
        let key = keys::find(path).ok_or_else(|| ConfigError::UnknownKey { key: path.to_string(), origin: "the command line".into() })?;
        let v = value::from_text(key, text).map_err(|m| invalid(key, &format!("flag --{}", key.flag_name()), m))?;
        set(&mut table, key.path, v);
    }
    let mut values = Vec::new();
    flatten("", &toml::Value::Table(table.clone()), &mut values);
    let mut config: Config = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Inconsistent(e.to_string()))?;
    config.values = values
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            let text = if k == "upstream.url" || k == "cache.redis_url" { mask_password(&text) } else { text };
            (k, text)
        })
        .collect();
    config.values.sort();
    check_consistency(&config)?;
    Ok(config)
}

/// `postgres://user:secret@host` → `postgres://user:***@host` (also `redis://:secret@host`).
fn mask_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

fn invalid(key: &Key, origin: &str, message: String) -> ConfigError {
    ConfigError::Invalid { key: key.path.to_string(), origin: origin.to_string(), message }
}

fn merge_file(table: &mut toml::Table, path: &Path) -> Result<(), ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
    let file: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Toml { path: shown.clone(), message: e.to_string() })?;
    let mut leaves = Vec::new();
    flatten("", &toml::Value::Table(file), &mut leaves);
    for (dotted, v) in leaves {
        let key = keys::find(&dotted).ok_or_else(|| ConfigError::UnknownKey { key: dotted.clone(), origin: shown.clone() })?;
        value::check(key, &v).map_err(|m| invalid(key, &shown, m))?;
        set(table, key.path, v);
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
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        match entry {
            toml::Value::Table(t) => cur = t,
            _ => return,
        }
    }
}

fn check_consistency(c: &Config) -> Result<(), ConfigError> {
    if c.tls.cert_file.is_empty() != c.tls.key_file.is_empty() {
        return Err(ConfigError::Inconsistent(
            "`tls.cert_file` and `tls.key_file` must be set together".into(),
        ));
    }
    if let Some(mode) = c.upstream_url().sslmode {
        if !["disable", "prefer", "require", "verify-ca", "verify-full"].contains(&mode.as_str()) {
            return Err(ConfigError::Invalid {
                key: "upstream.url".into(),
                origin: "its sslmode parameter".into(),
                message: format!("unknown sslmode {mode:?}"),
            });
        }
    }
    c.cache.to_cache_config().and_then(|cc| cc.validate().map_err(|e| e.to_string())).map_err(ConfigError::Inconsistent)?;
    if c.limits.startup_timeout.is_zero() {
        return Err(ConfigError::Inconsistent("`limits.startup_timeout` must be more than 0s".into()));
    }
    Ok(())
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
        writeln!(f.1, "listen = \"127.0.0.1:7000\"\n[upstream]\nurl = \"postgres://file:1\"\n[limits]\nmax_client_connections = 5").expect("write");
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
