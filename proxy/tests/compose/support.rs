//! Reading the files and the YAML, as compose reads them.

#[allow(unused_imports)]
use super::*;

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("proxy/ has a parent").to_path_buf()
}

pub(crate) fn compose_dir() -> PathBuf {
    repo().join("compose")
}

pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub(crate) fn yaml_doc(text: &str, what: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}"));
    assert_eq!(docs.len(), 1, "{what}: expected exactly one YAML document");
    docs.remove(0)
}

pub(crate) fn compose_yaml() -> Yaml {
    yaml_doc(&read(&compose_dir().join("docker-compose.yml")), "compose/docker-compose.yml")
}

pub(crate) fn report(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{what}:\n  - {}", problems.join("\n  - "));
}

// ---------------------------------------------------------------------------------------------
// YAML helpers

/// A scalar as compose reads it (numbers and booleans as their text).
pub(crate) fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn hash_entries(y: &Yaml) -> Vec<(String, &Yaml)> {
    y.as_hash().map(|h| h.iter().filter_map(|(k, v)| scalar(k).map(|k| (k, v))).collect()).unwrap_or_default()
}

pub(crate) fn strings(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(a) => a.iter().filter_map(scalar).collect(),
        other => scalar(other).into_iter().collect(),
    }
}

/// A service's `environment`, list (`K=V`) or map form.
pub(crate) fn environment(service: &Yaml) -> BTreeMap<String, String> {
    let env = &service["environment"];
    match env {
        Yaml::Array(items) => items
            .iter()
            .filter_map(scalar)
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv, String::new()),
            })
            .collect(),
        _ => hash_entries(env).into_iter().map(|(k, v)| (k, scalar(v).unwrap_or_default())).collect(),
    }
}

/// Every string (keys and values) in a YAML tree.
pub(crate) fn all_strings(y: &Yaml, out: &mut Vec<String>) {
    match y {
        Yaml::Array(a) => a.iter().for_each(|v| all_strings(v, out)),
        Yaml::Hash(h) => h.iter().for_each(|(k, v)| {
            all_strings(k, out);
            all_strings(v, out);
        }),
        other => out.extend(scalar(other)),
    }
}

/// The variables a compose value interpolates: `${NAME}`, `${NAME:-default}`, `${NAME:?err}`,
/// `$NAME`; `$$` is a literal dollar.
pub(crate) fn interpolated_vars(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => {
                let start = i + 2;
                let end = start + b[start..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
                out.push(s[start..end].to_string());
                i = end;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let start = i + 1;
                let end = start + b[start..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
                out.push(s[start..end].to_string());
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

/// `KEY=value` lines of an env file.
pub(crate) fn env_file_vars(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().trim_start_matches("export ").trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Interpolates `s` the way compose does, from `vars`.
pub(crate) fn interpolate(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let close = inner.find('}').unwrap_or(inner.len());
            let expr = &inner[..close];
            let name_len = expr.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(expr.len());
            let (name, modifier) = expr.split_at(name_len);
            let value = vars.get(name).cloned().filter(|v| !v.is_empty());
            let default = modifier.strip_prefix(":-").or_else(|| modifier.strip_prefix('-'));
            out.push_str(&value.or(default.map(str::to_string)).unwrap_or_default());
            rest = inner.get(close + 1..).unwrap_or("");
        } else {
            let name_len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            out.push_str(vars.get(&after[..name_len]).map(String::as_str).unwrap_or(""));
            rest = &after[name_len..];
        }
    }
    out.push_str(rest);
    out
}

/// A mount of a service: (source, container target); the source is a host path for bind mounts.
pub(crate) struct Mount {
    pub(crate) source: String,
    pub(crate) target: String,
    pub(crate) bind: bool,
}

pub(crate) fn mounts(service: &Yaml) -> Vec<Mount> {
    let mut out = Vec::new();
    for v in service["volumes"].as_vec().map(Vec::as_slice).unwrap_or(&[]) {
        if let Some(short) = scalar(v) {
            let mut parts = short.splitn(3, ':');
            let source = parts.next().unwrap_or("").to_string();
            let Some(target) = parts.next() else {
                // An anonymous volume: no source.
                continue;
            };
            let bind = source.starts_with('.') || source.starts_with('/') || source.starts_with('~');
            out.push(Mount { source, target: target.to_string(), bind });
        } else {
            let kind = scalar(&v["type"]).unwrap_or_default();
            let source = scalar(&v["source"]).unwrap_or_default();
            let target = scalar(&v["target"]).unwrap_or_default();
            if !source.is_empty() {
                out.push(Mount { source, target, bind: kind == "bind" });
            }
        }
    }
    out
}

/// `depends_on` as (service, condition), list or map form.
pub(crate) fn depends_on(service: &Yaml) -> Vec<(String, String)> {
    match &service["depends_on"] {
        Yaml::Array(a) => a.iter().filter_map(scalar).map(|s| (s, "service_started".to_string())).collect(),
        h @ Yaml::Hash(_) => hash_entries(h)
            .into_iter()
            .map(|(name, v)| (name, scalar(&v["condition"]).unwrap_or_else(|| "service_started".into())))
            .collect(),
        _ => Vec::new(),
    }
}

/// A one-shot service (runs to completion): `restart: "no"` and no health check needed.
pub(crate) fn is_one_shot(service: &Yaml) -> bool {
    matches!(scalar(&service["restart"]).as_deref(), Some("no") | Some("false"))
}

/// Compose durations: `35s`, `1m30s`, `500ms`.
pub(crate) fn compose_duration(s: &str) -> Option<Duration> {
    let (mut total, mut rest) = (Duration::ZERO, s.trim());
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let n: f64 = rest[..digits].parse().ok()?;
        let rest_units = &rest[digits..];
        let unit_len = rest_units.find(|c: char| c.is_ascii_digit()).unwrap_or(rest_units.len());
        let scale = match &rest_units[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" => 1e-6,
            _ => return None,
        };
        total += Duration::from_secs_f64(n * scale);
        rest = &rest_units[unit_len..];
    }
    Some(total)
}

/// The container-side port of a `ports` entry (`[ip:]host:container[/proto]` or long form).
pub(crate) fn container_ports(service: &Yaml) -> Vec<u16> {
    service["ports"]
        .as_vec()
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| match scalar(p) {
                    Some(short) => short.rsplit(':').next().and_then(|c| c.split('/').next()?.parse().ok()),
                    None => scalar(&p["target"]).and_then(|t| t.parse().ok()),
                })
                .collect()
        })
        .unwrap_or_default()
}
