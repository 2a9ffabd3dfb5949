//! Turning a key's text (from a variable or a flag) or TOML value into a checked TOML value.

use std::net::SocketAddr;
use std::time::Duration;

use super::keys::{Key, Kind};

/// Checks and converts `text` for `key`; the error says what was expected.
pub fn from_text(key: &Key, text: &str) -> Result<toml::Value, String> {
    let v = match key.kind {
        Kind::Int { .. } => toml::Value::Integer(
            text.trim()
                .replace('_', "")
                .parse::<i64>()
                .map_err(|_| format!("expected a whole number, got {text:?}"))?,
        ),
        Kind::Float { .. } => toml::Value::Float(
            text.trim().parse::<f64>().map_err(|_| format!("expected a number, got {text:?}"))?,
        ),
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
        (Kind::File, toml::Value::String(s)) => {
            if !s.is_empty() && !std::path::Path::new(s).is_file() {
                return Err(format!("file {s:?} does not exist"));
            }
        }
        (Kind::Rules, toml::Value::Array(rules)) => {
            for (i, rule) in rules.iter().enumerate() {
                check_rule(rule).map_err(|m| format!("rule {i}: {m}"))?;
            }
        }
        (kind, other) => return Err(format!("expected {}, got {}", kind_name(kind), other.type_str())),
    }
    Ok(())
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
    }
    if t.contains_key("table") == t.contains_key("shape") {
        return Err("give exactly one of `table` or `shape`".into());
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
