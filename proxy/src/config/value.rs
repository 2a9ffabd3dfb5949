//! Turning a key's text (from a variable or a flag) or TOML value into a checked TOML value.

use std::net::SocketAddr;
use std::time::Duration;

use super::keys::{Key, Kind};

/// Checks and converts `text` for `key`; the error says what was expected.
pub fn from_text(key: &Key, text: &str) -> Result<toml::Value, String> {
    let v = match key.kind {
        Kind::Int { .. } => {
            toml::Value::Integer(text.trim().replace('_', "").parse::<i64>().map_err(|_| format!("expected a whole number, got {text:?}"))?)
        }
        Kind::Float { .. } => toml::Value::Float(text.trim().parse::<f64>().map_err(|_| format!("expected a number, got {text:?}"))?),
        Kind::Bool => toml::Value::Boolean(match text.trim() {
            "true" | "on" | "yes" | "1" => true,
            "false" | "off" | "no" | "0" => false,
            _ => return Err(format!("expected true or false, got {text:?}")),
        }),
        Kind::Rules => {
            let doc: toml::Table = format!("v = {text}")
                .parse()
                .map_err(|e: toml::de::Error| format!("expected a TOML inline array of rules, got {text:?} ({})", e.message()))?;
            doc.get("v").cloned().unwrap_or(toml::Value::Array(Vec::new()))
        }
        _ => toml::Value::String(text.to_string()),
    };
    check(key, &v)?;
    Ok(v)
}

/// Checks a value of any origin against the key's kind.
pub fn check(key: &Key, v: &toml::Value) -> Result<(), String> {
    match (key.kind, v) {
        (Kind::Int { min, max }, toml::Value::Integer(i)) => {
            if *i < min || *i > max {
                return Err(format!("must be between {min} and {max}, got {i}"));
            }
        }
        (Kind::Bool, toml::Value::Boolean(_)) => {}
        (Kind::Float { min, max }, toml::Value::Float(f)) => {
            if !(min..=max).contains(f) {
                return Err(format!("must be between {min} and {max}, got {f}"));
            }
        }
        (Kind::SocketAddrOrOff, toml::Value::String(s)) => {
            if s != "off" {
                s.parse::<SocketAddr>().map_err(|_| format!("expected HOST:PORT with an IP address, or off, got {s:?}"))?;
            }
        }
        (Kind::Str, toml::Value::String(_)) => {}
        (Kind::LogFilter, toml::Value::String(s)) => check_log_filter(s)?,
        (Kind::RedisUrl, toml::Value::String(s)) => check_redis_url(s)?,
        (Kind::SocketAddr, toml::Value::String(s)) => {
            s.parse::<SocketAddr>().map_err(|_| format!("expected HOST:PORT with an IP address, got {s:?}"))?;
        }
        (Kind::PgUrl, toml::Value::String(s)) => {
            crate::config::upstream_url::UpstreamUrl::parse(s)?;
        }
        (Kind::Choice(words), toml::Value::String(s)) => {
            if !words.contains(&s.as_str()) {
                return Err(format!("expected one of {}, got {s:?}", words.join(", ")));
            }
        }
        (Kind::Duration, toml::Value::String(s)) => {
            parse_duration(s)?;
        }
        (Kind::File, toml::Value::String(s)) => check_file(s)?,
        (Kind::Rules, toml::Value::Array(rules)) => {
            for (i, rule) in rules.iter().enumerate() {
                check_rule(rule).map_err(|m| format!("rule {i}: {m}"))?;
            }
        }
        (kind, other) => return Err(format!("expected {}, got {}", kind_name(kind), other.type_str())),
    }
    Ok(())
}

/// The levels `tracing` knows. A bare word that is not one of them would be read by the filter
/// as a module name, silencing every other log line, so it is refused here.
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace", "off"];

fn check_log_filter(s: &str) -> Result<(), String> {
    let directives: Vec<&str> = s.split(',').map(str::trim).filter(|d| !d.is_empty()).collect();
    if directives.is_empty() {
        return Err(format!("expected a level ({}), got {s:?}", LOG_LEVELS.join(", ")));
    }
    for d in directives {
        let (target, level) = match d.rsplit_once('=') {
            Some((t, l)) => (Some(t.trim()), l.trim()),
            None => (None, d),
        };
        if target.is_some_and(str::is_empty) {
            return Err(format!("directive {d:?} names no module before `=`"));
        }
        if !LOG_LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!("unknown level {level:?} (expected one of {})", LOG_LEVELS.join(", ")));
        }
    }
    Ok(())
}

/// Each comma-separated node must be a `redis://` or `rediss://` URL with a host and a valid port.
fn check_redis_url(s: &str) -> Result<(), String> {
    for node in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let url = url::Url::parse(node).map_err(|e| format!("`{}` is not a URL: {e}", super::mask::mask_url(node)))?;
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err(format!("expected redis://HOST:PORT, got scheme {:?}", url.scheme()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("`{}` names no host", super::mask::mask_url(node)));
        }
    }
    Ok(())
}

/// A file that must be readable: missing, a directory and unreadable are told apart.
fn check_file(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    let path = std::path::Path::new(s);
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!("file {s:?} does not exist")),
        Err(e) => Err(format!("cannot read {s:?}: {e}")),
        Ok(m) if m.is_dir() => Err(format!("{s:?} is a directory, expected a file")),
        Ok(_) => std::fs::File::open(path).map(drop).map_err(|e| format!("cannot read {s:?}: {e}")),
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("expected a duration like 5s or 250ms, got {s:?} ({e})"))
}

/// One `[[cache.rules]]` entry: exactly one of `table` / `shape`, an optional `ttl`, all text.
fn check_rule(rule: &toml::Value) -> Result<(), String> {
    let toml::Value::Table(t) = rule else { return Err(format!("expected a table, got {}", rule.type_str())) };
    for (k, v) in t {
        if !matches!(k.as_str(), "table" | "shape" | "ttl") {
            return Err(format!("unknown field `{k}` (expected table, shape, ttl)"));
        }
        let Some(text) = v.as_str() else { return Err(format!("`{k}` must be a string")) };
        if k == "ttl" {
            parse_duration(text)?;
        }
        if k == "shape" {
            check_shape(text)?;
        }
    }
    if t.contains_key("table") == t.contains_key("shape") {
        return Err("give exactly one of `table` or `shape`".into());
    }
    Ok(())
}

/// A shape rule is compared with the shape of each cached read, so one that is not a single read
/// statement would be accepted and never match.
fn check_shape(shape: &str) -> Result<(), String> {
    let body = shape.trim().trim_end_matches(';').trim();
    if body.is_empty() {
        return Err("`shape` is empty".into());
    }
    if body.contains(';') {
        return Err(format!("shape {shape:?} can never match: it holds more than one statement"));
    }
    let first = body.split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("").to_ascii_uppercase();
    if !matches!(first.as_str(), "SELECT" | "WITH" | "VALUES" | "TABLE") {
        return Err(format!("shape {shape:?} can never match: only reads (SELECT) are cached"));
    }
    Ok(())
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Int { .. } => "an integer",
        Kind::Float { .. } => "a number",
        Kind::Bool => "true or false",
        Kind::Duration => "a duration string such as \"5s\"",
        Kind::Rules => "an array of rules",
        _ => "a string",
    }
}

/// Serde adapter: durations are written as text (`"5s"`).
pub fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s: String = serde::Deserialize::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}
