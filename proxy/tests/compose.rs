//! `compose/` and the root `Dockerfile`, checked without a Docker engine: the compose file is
//! consistent (services, volumes, mounted files, pinned images, health checks, limits, env file),
//! Prometheus' configuration and alert rules pass `promtool` (and their unit tests), the Grafana
//! dashboard loads and, like the alert rules, only names metrics, labels and label values listed
//! in docs/metrics.md, the proxy's TOML loads with the proxy's own loader, and the Dockerfile builds
//! the proxy and runs it as a non-root user.
//!
//! Each check collects every problem it finds and fails with the whole list. The `rejects_*`
//! tests feed the same checks broken input, so a check that stopped finding anything would fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use citus_proxy::config::{self, keys::KEYS, Overrides};
use yaml_rust2::{Yaml, YamlLoader};

// ---------------------------------------------------------------------------------------------
// files

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("proxy/ has a parent").to_path_buf()
}

fn compose_dir() -> PathBuf {
    repo().join("compose")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml_doc(text: &str, what: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}"));
    assert_eq!(docs.len(), 1, "{what}: expected exactly one YAML document");
    docs.remove(0)
}

fn compose_yaml() -> Yaml {
    yaml_doc(&read(&compose_dir().join("docker-compose.yml")), "compose/docker-compose.yml")
}

fn report(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{what}:\n  - {}", problems.join("\n  - "));
}

// ---------------------------------------------------------------------------------------------
// YAML helpers

/// A scalar as compose reads it (numbers and booleans as their text).
fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn hash_entries(y: &Yaml) -> Vec<(String, &Yaml)> {
    y.as_hash()
        .map(|h| h.iter().filter_map(|(k, v)| scalar(k).map(|k| (k, v))).collect())
        .unwrap_or_default()
}

fn strings(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(a) => a.iter().filter_map(scalar).collect(),
        other => scalar(other).into_iter().collect(),
    }
}

/// A service's `environment`, list (`K=V`) or map form.
fn environment(service: &Yaml) -> BTreeMap<String, String> {
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
fn all_strings(y: &Yaml, out: &mut Vec<String>) {
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
fn interpolated_vars(s: &str) -> Vec<String> {
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
fn env_file_vars(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().trim_start_matches("export ").trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Interpolates `s` the way compose does, from `vars`.
fn interpolate(s: &str, vars: &BTreeMap<String, String>) -> String {
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
struct Mount {
    source: String,
    target: String,
    bind: bool,
}

fn mounts(service: &Yaml) -> Vec<Mount> {
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
fn depends_on(service: &Yaml) -> Vec<(String, String)> {
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
fn is_one_shot(service: &Yaml) -> bool {
    matches!(scalar(&service["restart"]).as_deref(), Some("no") | Some("false"))
}

/// Compose durations: `35s`, `1m30s`, `500ms`.
fn compose_duration(s: &str) -> Option<Duration> {
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
fn container_ports(service: &Yaml) -> Vec<u16> {
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

// ---------------------------------------------------------------------------------------------
// 1. the compose file

/// Service keys of the Compose specification this stack may use (a typo is a problem, not a
/// silently ignored key).
const SERVICE_KEYS: &[&str] = &[
    "image", "build", "command", "entrypoint", "environment", "env_file", "volumes", "ports", "expose",
    "depends_on", "healthcheck", "restart", "deploy", "profiles", "hostname", "container_name", "networks",
    "labels", "user", "working_dir", "stop_grace_period", "stop_signal", "shm_size", "ulimits", "mem_limit",
    "cpus", "logging", "init", "read_only", "tmpfs", "cap_drop", "cap_add", "security_opt", "secrets",
    "configs", "extra_hosts", "sysctls", "tty", "stdin_open", "platform", "pull_policy", "privileged",
];
const TOP_KEYS: &[&str] = &["name", "services", "volumes", "networks", "configs", "secrets"];
const CONDITIONS: &[&str] = &["service_started", "service_healthy", "service_completed_successfully"];

/// Every problem of the compose file `doc`, whose relative paths resolve against `dir`;
/// `env_example` is the text of `.env.example`.
fn compose_problems(doc: &Yaml, dir: &Path, env_example: &str) -> Vec<String> {
    let mut p = Vec::new();
    for (key, _) in hash_entries(doc) {
        if !TOP_KEYS.contains(&key.as_str()) && !key.starts_with("x-") {
            p.push(format!("unknown top-level key `{key}`"));
        }
    }
    let services = hash_entries(&doc["services"]);
    if services.is_empty() {
        p.push("no services".into());
    }
    let declared_volumes: BTreeSet<String> = hash_entries(&doc["volumes"]).into_iter().map(|(k, _)| k).collect();
    let mut used_volumes = BTreeSet::new();

    for (name, s) in &services {
        let s = *s;
        for (key, _) in hash_entries(s) {
            if !SERVICE_KEYS.contains(&key.as_str()) && !key.starts_with("x-") {
                p.push(format!("{name}: unknown key `{key}`"));
            }
        }
        // image / build
        let image = scalar(&s["image"]);
        let build = &s["build"];
        if image.is_none() && build.is_badvalue() {
            p.push(format!("{name}: neither image nor build"));
        }
        if let Some(image) = &image {
            let last = image.rsplit('/').next().unwrap_or(image);
            let tag = last.split_once(':').map(|(_, t)| t.split('@').next().unwrap_or(""));
            match tag {
                None if !image.contains("@sha256:") => p.push(format!("{name}: image `{image}` is not pinned (no tag)")),
                Some("") | Some("latest") => p.push(format!("{name}: image `{image}` is not pinned")),
                Some(t) if build.is_badvalue() && !t.chars().any(|c| c.is_ascii_digit()) => {
                    p.push(format!("{name}: image `{image}` has a moving tag (no version number)"))
                }
                _ => {}
            }
        }
        if !build.is_badvalue() {
            let (context, dockerfile) = match scalar(build) {
                Some(ctx) => (ctx, "Dockerfile".to_string()),
                None => (
                    scalar(&build["context"]).unwrap_or_else(|| ".".into()),
                    scalar(&build["dockerfile"]).unwrap_or_else(|| "Dockerfile".into()),
                ),
            };
            let ctx = dir.join(&context);
            if !ctx.is_dir() {
                p.push(format!("{name}: build context `{context}` is not a directory"));
            } else if !ctx.join(&dockerfile).is_file() {
                p.push(format!("{name}: build context `{context}` has no `{dockerfile}`"));
            }
        }
        // depends_on
        for (dep, condition) in depends_on(s) {
            let Some((_, target)) = services.iter().find(|(n, _)| *n == dep) else {
                p.push(format!("{name}: depends on `{dep}`, which is not a service"));
                continue;
            };
            if !CONDITIONS.contains(&condition.as_str()) {
                p.push(format!("{name}: depends on `{dep}` with unknown condition `{condition}`"));
            }
            if condition == "service_healthy" && target["healthcheck"].is_badvalue() {
                p.push(format!("{name}: waits for `{dep}` to be healthy, but `{dep}` has no health check"));
            }
            if condition == "service_completed_successfully" && !is_one_shot(target) {
                p.push(format!("{name}: waits for `{dep}` to complete, but `{dep}` is not one-shot (restart: \"no\")"));
            }
            let profiled = |svc: &Yaml| svc["profiles"].as_vec().is_some_and(|v| !v.is_empty());
            if profiled(target) && !profiled(s) {
                p.push(format!("{name}: depends on `{dep}`, which only runs under a profile"));
            }
        }
        // volumes and bind mounts
        for m in mounts(s) {
            if m.bind {
                if m.source.starts_with('/') || m.source.starts_with('~') {
                    p.push(format!("{name}: bind mount of `{}` outside the repository", m.source));
                } else if !dir.join(&m.source).exists() {
                    p.push(format!("{name}: bind-mounted `{}` does not exist", m.source));
                }
            } else {
                used_volumes.insert(m.source.clone());
                if !declared_volumes.contains(&m.source) {
                    p.push(format!("{name}: volume `{}` is not declared under top-level volumes", m.source));
                }
            }
        }
        // container paths named in entrypoint / command / environment must exist under a bind mount
        let mut args: Vec<String> = strings(&s["entrypoint"]);
        args.extend(strings(&s["command"]));
        args.extend(environment(s).into_values());
        for arg in args {
            let path = arg.rsplit('=').next().unwrap_or(&arg);
            if !path.starts_with('/') {
                continue;
            }
            for m in mounts(s).iter().filter(|m| m.bind) {
                let target = m.target.trim_end_matches('/');
                if let Some(rest) = path.strip_prefix(target).filter(|r| r.is_empty() || r.starts_with('/')) {
                    let rest = rest.trim_start_matches('/');
                    let host = if rest.is_empty() { dir.join(&m.source) } else { dir.join(&m.source).join(rest) };
                    if !host.exists() {
                        p.push(format!("{name}: `{path}` is under the mount of `{}`, but {} does not exist", m.source, host.display()));
                    }
                }
            }
        }
        // env_file
        for f in strings(&s["env_file"]).into_iter().chain(
            s["env_file"].as_vec().into_iter().flatten().filter_map(|e| scalar(&e["path"])),
        ) {
            if f == ".env" || f.ends_with("/.env") {
                if !dir.join(format!("{f}.example")).is_file() {
                    p.push(format!("{name}: env_file `{f}` has no committed `{f}.example`"));
                }
            } else if !dir.join(&f).is_file() {
                p.push(format!("{name}: env_file `{f}` does not exist"));
            }
        }
        // health check on everything that keeps running
        if !is_one_shot(s) {
            let test = strings(&s["healthcheck"]["test"]);
            let disabled = s["healthcheck"]["disable"].as_bool() == Some(true) || test.first().map(String::as_str) == Some("NONE");
            if test.is_empty() || disabled {
                p.push(format!("{name}: long-running service without a health check"));
            } else if test.len() > 1 && !["CMD", "CMD-SHELL"].contains(&test[0].as_str()) {
                p.push(format!("{name}: health check test must start with CMD or CMD-SHELL"));
            }
        }
        // resource limits
        let limits = &s["deploy"]["resources"]["limits"];
        if scalar(&limits["memory"]).is_none() && scalar(&s["mem_limit"]).is_none() {
            p.push(format!("{name}: no memory limit"));
        }
        if scalar(&limits["cpus"]).is_none() && scalar(&s["cpus"]).is_none() {
            p.push(format!("{name}: no CPU limit"));
        }
    }
    for v in declared_volumes.difference(&used_volumes) {
        p.push(format!("volume `{v}` is declared but no service uses it"));
    }

    // every ${VAR} the file uses is in .env.example, and .env.example has nothing unused
    let mut texts = Vec::new();
    all_strings(doc, &mut texts);
    let used: BTreeSet<String> = texts.iter().flat_map(|t| interpolated_vars(t)).collect();
    let example = env_file_vars(env_example);
    for v in &used {
        if !example.contains_key(v) {
            p.push(format!("`${{{v}}}` is used but not defined in .env.example"));
        }
    }
    for k in example.keys() {
        if !used.contains(k) && !k.starts_with("COMPOSE_") {
            p.push(format!(".env.example defines `{k}`, which the compose file does not use"));
        }
    }
    // secrets in the example are placeholders, never real ones
    for (k, v) in &example {
        if (k.contains("PASSWORD") || k.contains("SECRET")) && !v.starts_with("change-me") {
            p.push(format!(".env.example: `{k}` should be a `change-me…` placeholder"));
        }
    }
    p
}

#[test]
fn compose_file_is_consistent() {
    let dir = compose_dir();
    let doc = compose_yaml();
    let mut p = compose_problems(&doc, &dir, &read(&dir.join(".env.example")));

    // The stack the issue asks for.
    let services: BTreeMap<String, &Yaml> = hash_entries(&doc["services"]).into_iter().collect();
    for needed in ["coordinator", "worker1", "worker2", "init", "redis", "proxy", "prometheus", "grafana", "pgadmin"] {
        if !services.contains_key(needed) {
            p.push(format!("no `{needed}` service"));
        }
    }
    for node in ["coordinator", "worker1", "worker2"] {
        if let Some(s) = services.get(node) {
            let image = scalar(&s["image"]).unwrap_or_default();
            if !image.starts_with("citusdata/citus:13.") {
                p.push(format!("{node}: expected a pinned citusdata/citus:13.x image, got `{image}`"));
            }
        }
    }
    if let Some(init) = services.get("init") {
        let waits: BTreeMap<String, String> = depends_on(init).into_iter().collect();
        for node in ["coordinator", "worker1", "worker2"] {
            if waits.get(node).map(String::as_str) != Some("service_healthy") {
                p.push(format!("init: should wait for `{node}` to be healthy"));
            }
        }
        if !is_one_shot(init) {
            p.push("init: should be one-shot (restart: \"no\")".into());
        }
    }
    if let Some(redis) = services.get("redis") {
        let cmd = strings(&redis["command"]).join(" ");
        if !cmd.contains("--maxmemory ") || !cmd.contains("--maxmemory-policy ") {
            p.push("redis: no --maxmemory / --maxmemory-policy".into());
        }
    }
    if let Some(pgadmin) = services.get("pgadmin") {
        if strings(&pgadmin["profiles"]) != ["pgadmin"] {
            p.push("pgadmin: should run only under the `pgadmin` profile".into());
        }
    }
    if let Some(proxy) = services.get("proxy") {
        if proxy["build"].is_badvalue() {
            p.push("proxy: should be built from the repository's Dockerfile".into());
        }
    }
    // compose/.env holds the real secrets and is never committed.
    let ignore = std::fs::read_to_string(dir.join(".gitignore")).unwrap_or_default();
    if !ignore.lines().any(|l| matches!(l.trim(), ".env" | "/.env")) {
        p.push("compose/.gitignore does not ignore .env".into());
    }
    // The init script at least parses.
    match Command::new("bash").arg("-n").arg(dir.join("init/init.sh")).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => p.push(format!("compose/init/init.sh: {}", String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => p.push(format!("cannot run bash -n on compose/init/init.sh: {e}")),
    }
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&read(&dir.join("pgadmin/servers.json"))) {
        p.push(format!("compose/pgadmin/servers.json: {e}"));
    }
    report("compose/docker-compose.yml", &p);
}

#[test]
fn rejects_a_broken_compose_file() {
    let broken = r#"
services:
  db:
    image: postgres
    volumes:
      - dbdata:/var/lib/postgresql/data
      - ./no-such-dir:/x
    depends_on: [ghost]
    environment:
      PASSWORD: ${DB_PASSWORD}
  app:
    image: example/app:latest
    healthchek:
      test: ["CMD", "true"]
    depends_on:
      db:
        condition: service_healthy
volumes:
  unused:
"#;
    let doc = yaml_doc(broken, "broken compose");
    let p = compose_problems(&doc, &compose_dir(), "OTHER=1\n").join("\n");
    for expected in [
        "db: image `postgres` is not pinned",
        "app: image `example/app:latest` is not pinned",
        "depends on `ghost`, which is not a service",
        "volume `dbdata` is not declared",
        "bind-mounted `./no-such-dir` does not exist",
        "app: unknown key `healthchek`",
        "app: waits for `db` to be healthy, but `db` has no health check",
        "db: long-running service without a health check",
        "db: no memory limit",
        "volume `unused` is declared but no service uses it",
        "`${DB_PASSWORD}` is used but not defined in .env.example",
        ".env.example defines `OTHER`",
    ] {
        assert!(p.contains(expected), "expected a problem containing {expected:?} in:\n{p}");
    }
}

#[test]
fn interpolation_is_read_like_compose() {
    assert_eq!(interpolated_vars("${A:?x} $B $$C ${D:-1}x"), ["A", "B", "D"]);
    let vars: BTreeMap<String, String> = [("P".to_string(), "pw".to_string())].into();
    assert_eq!(interpolate("u:${P:?set it}@h:${PORT:-5432} $$x", &vars), "u:pw@h:5432 $x");
    assert_eq!(compose_duration("35s"), Some(Duration::from_secs(35)));
    assert_eq!(compose_duration("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(compose_duration("500ms"), Some(Duration::from_millis(500)));
}

// ---------------------------------------------------------------------------------------------
// 2. promtool

fn promtool(args: &[&str]) {
    let dir = compose_dir().join("prometheus");
    let out = Command::new("promtool").args(args).current_dir(&dir).output().unwrap_or_else(|e| {
        panic!(
            "cannot run promtool ({e}): it comes with Debian's prometheus package, \
             `apt-get install -y prometheus` (these checks are never skipped)"
        )
    });
    assert!(
        out.status.success(),
        "promtool {} failed (in compose/prometheus):\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_checks_the_prometheus_config() {
    promtool(&["check", "config", "prometheus.yml"]);
}

#[test]
fn promtool_checks_the_alert_rules() {
    promtool(&["check", "rules", "alerts.yml"]);
}

#[test]
fn promtool_unit_tests_the_alert_rules() {
    promtool(&["test", "rules", "alerts_test.yml"]);
}

// ---------------------------------------------------------------------------------------------
// 3. metric names, labels and label values against docs/metrics.md

struct MetricDoc {
    kind: String,
    labels: BTreeSet<String>,
}

struct Vocabulary {
    metrics: BTreeMap<String, MetricDoc>,
    /// Documented values per label (`class`, `route`, `state`, `tier`, `direction`).
    values: BTreeMap<String, BTreeSet<String>>,
}

fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

fn cells(line: &str) -> Vec<String> {
    line.trim().trim_matches('|').split('|').map(|c| c.trim().to_string()).collect()
}

fn parse_metrics_doc(text: &str) -> Vocabulary {
    let mut metrics = BTreeMap::new();
    let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let c = cells(line);
        // | `citus_proxy_x` | type | labels | meaning |
        if line.starts_with("| `citus_proxy_") && c.len() >= 3 {
            let name = c[0].trim_matches('`').to_string();
            let mut labels = BTreeSet::new();
            let (mut depth, mut part) = (0, String::new());
            for ch in c[2].chars().chain(std::iter::once(',')) {
                match ch {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if ch == ',' && depth == 0 {
                    let label = part.split('(').next().unwrap_or("").trim().trim_matches('`').to_string();
                    if !label.is_empty() {
                        if let Some((_, inside)) = part.split_once('(') {
                            values.entry(label.clone()).or_default().extend(backticked(inside));
                        }
                        labels.insert(label);
                    }
                    part.clear();
                } else {
                    part.push(ch);
                }
            }
            metrics.insert(name, MetricDoc { kind: c[1].clone(), labels });
        }
        // | `class` | target … | … | — the class table, up to the blank line
        if line.starts_with("| `class` |") {
            for row in lines[i + 1..].iter().take_while(|l| l.starts_with('|')) {
                if let Some(v) = backticked(&cells(row)[0]).first() {
                    values.entry("class".into()).or_default().insert(v.clone());
                }
            }
        }
        // `route`: `single-shard`, … — up to the blank line
        if let Some(rest) = line.strip_prefix("`route`:") {
            let mut words = backticked(rest);
            for more in lines[i + 1..].iter().take_while(|l| !l.trim().is_empty()) {
                words.extend(backticked(more));
            }
            values.entry("route".into()).or_default().extend(words);
        }
    }
    Vocabulary { metrics, values }
}

fn metrics_doc() -> Vocabulary {
    let v = parse_metrics_doc(&read(&repo().join("docs/metrics.md")));
    assert!(v.metrics.len() >= 20, "docs/metrics.md: parsed only {} metrics", v.metrics.len());
    for label in ["class", "route", "state"] {
        assert!(v.values.get(label).is_some_and(|s| s.len() >= 2), "docs/metrics.md: no `{label}` vocabulary parsed");
    }
    v
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Punct(char),
    Op(String),
}

/// A small PromQL lexer: identifiers, strings, punctuation; numbers, range/offset durations
/// (`[5m]`) and Grafana variables (`$class`, `$__rate_interval`) are dropped.
fn lex(expr: &str) -> Vec<Tok> {
    let cs: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while i < cs.len() && cs[i] != '\n' {
                i += 1;
            }
        } else if c == '[' {
            while i < cs.len() && cs[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c == '"' || c == '\'' || c == '`' {
            let mut s = String::new();
            i += 1;
            while i < cs.len() && cs[i] != c {
                if cs[i] == '\\' && c != '`' {
                    i += 1;
                }
                if let Some(ch) = cs.get(i) {
                    s.push(*ch);
                }
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if c == '$' {
            i += 1;
            if cs.get(i) == Some(&'{') {
                while i < cs.len() && cs[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() || (c == '.' && cs.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '.' || cs[i] == '+' && matches!(cs[i - 1], 'e' | 'E')) {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_' || cs[i] == ':') {
                i += 1;
            }
            out.push(Tok::Ident(cs[start..i].iter().collect()));
        } else if matches!(c, '=' | '!') && matches!(cs.get(i + 1), Some('~') | Some('=')) {
            out.push(Tok::Op(cs[i..i + 2].iter().collect()));
            i += 2;
        } else if c == '=' {
            out.push(Tok::Op("=".into()));
            i += 1;
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    out
}

const AGGREGATIONS: &[&str] = &[
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
];
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan", "Inf", "NaN"];
const GROUPING: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
/// Prometheus' own series, allowed besides the proxy's.
const BUILTIN_SERIES: &[&str] = &["up"];
/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: &[&str] = &["job", "instance"];

/// The documented metric a series name belongs to, with the extra labels the suffix brings.
fn resolve<'a>(name: &str, doc: &'a Vocabulary) -> Result<(&'a MetricDoc, &'static [&'static str]), String> {
    if let Some(m) = doc.metrics.get(name) {
        if m.kind == "histogram" {
            return Err(format!("`{name}` is a histogram: use `{name}_bucket`, `_sum` or `_count`"));
        }
        return Ok((m, &[]));
    }
    for (suffix, extra) in [("_bucket", &["le"][..]), ("_sum", &[][..]), ("_count", &[][..])] {
        if let Some(m) = name.strip_suffix(suffix).and_then(|base| doc.metrics.get(base)) {
            if m.kind == "histogram" {
                return Ok((m, extra));
            }
        }
    }
    Err(format!("`{name}` is not in docs/metrics.md"))
}

/// Problems of one PromQL expression: unknown metrics, labels a metric does not have, label
/// values outside the documented vocabulary, grouping by labels no metric in it has. Returns the
/// labels its metrics carry, for checking legends.
fn expr_problems(expr: &str, doc: &Vocabulary, problems: &mut Vec<String>) -> BTreeSet<String> {
    let toks = lex(expr);
    let mut labels: BTreeSet<String> = TARGET_LABELS.iter().map(|s| s.to_string()).collect();
    let mut grouped = Vec::new();
    let mut found_metric = false;
    let mut i = 0;
    while i < toks.len() {
        let Tok::Ident(id) = &toks[i] else {
            i += 1;
            continue;
        };
        let next = toks.get(i + 1);
        if GROUPING.contains(&id.as_str()) {
            // by (a, b) — collect until ')'
            i += 1;
            if toks.get(i) == Some(&Tok::Punct('(')) {
                i += 1;
                while i < toks.len() && toks[i] != Tok::Punct(')') {
                    if let Tok::Ident(l) = &toks[i] {
                        grouped.push(l.clone());
                    }
                    i += 1;
                }
            }
            i += 1;
            continue;
        }
        if next == Some(&Tok::Punct('(')) || AGGREGATIONS.contains(&id.as_str()) || KEYWORDS.contains(&id.as_str()) {
            i += 1;
            continue;
        }
        // a series name, maybe with matchers
        found_metric = true;
        let (own_labels, extra): (BTreeSet<String>, &[&str]) = if BUILTIN_SERIES.contains(&id.as_str()) {
            (BTreeSet::new(), &[])
        } else {
            match resolve(id, doc) {
                Ok((m, extra)) => (m.labels.clone(), extra),
                Err(e) => {
                    problems.push(format!("{e} (in `{}`)", expr.trim()));
                    (BTreeSet::new(), &[])
                }
            }
        };
        let mut allowed: BTreeSet<String> = own_labels.clone();
        allowed.extend(extra.iter().map(|s| s.to_string()));
        allowed.extend(TARGET_LABELS.iter().map(|s| s.to_string()));
        labels.extend(allowed.iter().cloned());
        i += 1;
        if toks.get(i) == Some(&Tok::Punct('{')) {
            i += 1;
            while i < toks.len() && toks[i] != Tok::Punct('}') {
                if let (Some(Tok::Ident(l)), Some(Tok::Op(op)), Some(Tok::Str(v))) = (toks.get(i), toks.get(i + 1), toks.get(i + 2)) {
                    if !allowed.contains(l) && !BUILTIN_SERIES.contains(&id.as_str()) {
                        problems.push(format!("`{id}` has no label `{l}` (in `{}`)", expr.trim()));
                    }
                    if op == "=" || op == "!=" {
                        if let Some(vocab) = doc.values.get(l) {
                            if !vocab.contains(v) {
                                problems.push(format!("`{l}=\"{v}\"` is not a documented value of `{l}` (in `{}`)", expr.trim()));
                            }
                        }
                    }
                    i += 3;
                } else {
                    i += 1;
                }
            }
            i += 1;
        }
    }
    if !found_metric {
        problems.push(format!("no metric in `{}`", expr.trim()));
    }
    for g in grouped {
        if !labels.contains(&g) {
            problems.push(format!("groups by `{g}`, which no metric in it has (in `{}`)", expr.trim()));
        }
    }
    labels
}

/// `(expr, legend)` pairs of every panel target, and every datasource reference, in the dashboard.
fn dashboard_targets(v: &serde_json::Value, targets: &mut Vec<(String, String)>, datasources: &mut Vec<serde_json::Value>) {
    match v {
        serde_json::Value::Object(o) => {
            if let Some(expr) = o.get("expr").and_then(|e| e.as_str()) {
                let legend = o.get("legendFormat").and_then(|l| l.as_str()).unwrap_or("").to_string();
                targets.push((expr.to_string(), legend));
            }
            if let Some(ds) = o.get("datasource") {
                datasources.push(ds.clone());
            }
            o.values().for_each(|v| dashboard_targets(v, targets, datasources));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| dashboard_targets(v, targets, datasources)),
        _ => {}
    }
}

fn alert_rules() -> Vec<(String, String)> {
    let doc = yaml_doc(&read(&compose_dir().join("prometheus/alerts.yml")), "alerts.yml");
    let mut rules = Vec::new();
    for g in doc["groups"].as_vec().expect("alerts.yml: groups") {
        for r in g["rules"].as_vec().expect("alerts.yml: rules") {
            let name = scalar(&r["alert"]).or_else(|| scalar(&r["record"])).unwrap_or_default();
            rules.push((name, scalar(&r["expr"]).unwrap_or_default()));
        }
    }
    rules
}

fn metric_names(expr: &str) -> BTreeSet<String> {
    let toks = lex(expr);
    toks.iter()
        .enumerate()
        .filter_map(|(i, t)| match t {
            Tok::Ident(id) if id.starts_with("citus_proxy_") && toks.get(i + 1) != Some(&Tok::Punct('(')) => Some(id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn alert_rules_use_documented_metrics_and_cover_the_issue() {
    let doc = metrics_doc();
    let rules = alert_rules();
    let mut p = Vec::new();
    for (name, expr) in &rules {
        let before = p.len();
        expr_problems(expr, &doc, &mut p);
        for q in &mut p[before..] {
            *q = format!("alert {name}: {q}");
        }
    }
    // The five situations the issue names, each watched by some alert.
    for (what, metric) in [
        ("a worker inactive", "citus_proxy_cluster_nodes"),
        ("statements running longer than 60 s", "citus_proxy_oldest_statement_seconds"),
        ("cache hit ratio", "citus_proxy_cache_hits_total"),
        ("SLO violations per class", "citus_proxy_slo_violations_total"),
        ("metadata refresh failing", "citus_proxy_metadata_refresh_errors_total"),
    ] {
        if !rules.iter().any(|(_, e)| metric_names(e).contains(metric)) {
            p.push(format!("no alert on {what} (`{metric}`)"));
        }
    }
    let slo = rules.iter().find(|(_, e)| metric_names(e).contains("citus_proxy_slo_violations_total"));
    if let Some((name, expr)) = slo {
        if !expr.contains("by (class)") {
            p.push(format!("alert {name}: should be per class (`by (class)`)"));
        }
    }
    report("compose/prometheus/alerts.yml against docs/metrics.md", &p);
}

#[test]
fn dashboard_loads_and_uses_documented_metrics() {
    let doc = metrics_doc();
    let dir = compose_dir().join("grafana");
    let text = read(&dir.join("dashboards/citus-proxy.json"));
    let dash: serde_json::Value = serde_json::from_str(&text).expect("compose/grafana/dashboards/citus-proxy.json is not valid JSON");
    let mut p = Vec::new();
    for key in ["uid", "title"] {
        if !dash[key].is_string() {
            p.push(format!("no `{key}`"));
        }
    }
    let panels = dash["panels"].as_array().cloned().unwrap_or_default();
    if panels.is_empty() {
        p.push("no panels".into());
    }
    let mut ids = BTreeSet::new();
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or("?");
        if !panel["gridPos"]["w"].is_u64() || !panel["gridPos"]["h"].is_u64() {
            p.push(format!("panel `{title}`: no gridPos"));
        }
        if !panel["id"].as_u64().is_some_and(|id| ids.insert(id)) {
            p.push(format!("panel `{title}`: missing or duplicate id"));
        }
        if panel["type"] != "row" && panel["targets"].as_array().is_none_or(|t| t.is_empty()) {
            p.push(format!("panel `{title}`: no queries"));
        }
    }

    let (mut targets, mut datasources) = (Vec::new(), Vec::new());
    dashboard_targets(&dash, &mut targets, &mut datasources);
    let mut used = BTreeSet::new();
    for (expr, legend) in &targets {
        let labels = expr_problems(expr, &doc, &mut p);
        used.extend(metric_names(expr));
        // {{label}} in a legend must be a label the query's series can carry
        for l in legend.split("{{").skip(1).filter_map(|s| s.split_once("}}")).map(|(l, _)| l.trim()) {
            if !labels.contains(l) {
                p.push(format!("legend `{legend}` names `{l}`, which `{expr}` does not have"));
            }
        }
    }
    // Template variables: label_values(metric, label)
    for var in dash["templating"]["list"].as_array().cloned().unwrap_or_default() {
        let q = var["definition"].as_str().or_else(|| var["query"]["query"].as_str()).unwrap_or("");
        if let Some(args) = q.strip_prefix("label_values(").and_then(|r| r.strip_suffix(')')) {
            let (metric, label) = args.rsplit_once(',').unwrap_or(("", args));
            let label = label.trim();
            match resolve(metric.trim(), &doc) {
                Ok((m, _)) if !m.labels.contains(label) => p.push(format!("variable `{}`: `{}` has no label `{label}`", var["name"], metric.trim())),
                Ok(_) => {}
                Err(e) => p.push(format!("variable `{}`: {e}", var["name"])),
            }
            used.insert(metric.trim().to_string());
        }
    }
    // The panels the issue asks for, by the metrics they need.
    for (what, metric) in [
        ("latency per class", "citus_proxy_query_duration_seconds_bucket"),
        ("the latency target", "citus_proxy_slo_target_seconds"),
        ("routes per second", "citus_proxy_queries_total"),
        ("cache hit ratio", "citus_proxy_cache_hits_total"),
        ("cache hit ratio", "citus_proxy_cache_misses_total"),
        ("shards per node", "citus_proxy_cluster_shards"),
        ("shard imbalance", "citus_proxy_cluster_shard_imbalance"),
        ("client connections", "citus_proxy_client_connections"),
        ("upstream connections", "citus_proxy_upstream_connections"),
    ] {
        if !used.contains(metric) {
            p.push(format!("no panel shows {what} (`{metric}`)"));
        }
    }
    if !targets.iter().any(|(e, _)| e.contains("citus_proxy_queries_total") && e.contains("by (route)")) {
        p.push("no panel shows statements per second by route".into());
    }

    // Every Prometheus datasource reference is the provisioned one.
    let ds = yaml_doc(&read(&dir.join("provisioning/datasources/prometheus.yml")), "datasources/prometheus.yml");
    let uid = scalar(&ds["datasources"][0]["uid"]).unwrap_or_default();
    if uid.is_empty() {
        p.push("the provisioned data source has no uid".into());
    }
    for d in &datasources {
        if d["type"] == "prometheus" && d["uid"].as_str() != Some(uid.as_str()) {
            p.push(format!("datasource {d} is not the provisioned uid `{uid}`"));
        }
    }
    // The data source points at the prometheus service; the dashboards provider at the mounted directory.
    let compose = compose_yaml();
    let url = scalar(&ds["datasources"][0]["url"]).unwrap_or_default();
    let host = url.trim_start_matches("http://").split(':').next().unwrap_or("");
    if compose["services"][host].is_badvalue() {
        p.push(format!("the data source url `{url}` is not a compose service"));
    }
    let providers = yaml_doc(&read(&dir.join("provisioning/dashboards/dashboards.yml")), "dashboards/dashboards.yml");
    let path = scalar(&providers["providers"][0]["options"]["path"]).unwrap_or_default();
    let mounted = mounts(&compose["services"]["grafana"])
        .into_iter()
        .any(|m| m.bind && m.target.trim_end_matches('/') == path.trim_end_matches('/') && compose_dir().join(&m.source).join("citus-proxy.json").is_file());
    if !mounted {
        p.push(format!("the dashboards provider reads `{path}`, which grafana does not mount from a directory holding citus-proxy.json"));
    }
    report("compose/grafana", &p);
}

#[test]
fn rejects_undocumented_metrics_labels_and_values() {
    let doc = metrics_doc();
    let mut p = Vec::new();
    expr_problems("rate(citus_proxy_no_such_metric_total[5m]) > 0", &doc, &mut p);
    expr_problems(r#"citus_proxy_cluster_nodes{state="broken"} > 0"#, &doc, &mut p);
    expr_problems(r#"sum by (route) (rate(citus_proxy_queries_total{clas="count"}[1m]))"#, &doc, &mut p);
    expr_problems("sum by (node) (citus_proxy_client_connections)", &doc, &mut p);
    expr_problems("histogram_quantile(0.99, rate(citus_proxy_query_duration_seconds[1m]))", &doc, &mut p);
    expr_problems(r#"citus_proxy_queries_total{route="multi_shard"}"#, &doc, &mut p);
    let all = p.join("\n");
    for expected in [
        "`citus_proxy_no_such_metric_total` is not in docs/metrics.md",
        "`state=\"broken\"` is not a documented value",
        "has no label `clas`",
        "groups by `node`",
        "is a histogram",
        "`route=\"multi_shard\"` is not a documented value",
    ] {
        assert!(all.contains(expected), "expected {expected:?} among:\n{all}");
    }
    // and the real vocabulary passes
    let mut ok = Vec::new();
    expr_problems(
        r#"histogram_quantile(0.99, sum by (class, le) (rate(citus_proxy_query_duration_seconds_bucket{class=~"$class", route="single-shard"}[$__rate_interval])))"#,
        &doc,
        &mut ok,
    );
    assert!(ok.is_empty(), "{ok:?}");
}

// ---------------------------------------------------------------------------------------------
// 4. the proxy's TOML, with the proxy's own loader

#[test]
fn proxy_toml_loads_with_the_proxys_loader() {
    let dir = compose_dir();
    let toml = dir.join("proxy/citus-proxy.toml");
    let file_only = config::load(Some(toml.as_path()), &Overrides::default(), |_| None)
        .unwrap_or_else(|e| panic!("compose/proxy/citus-proxy.toml does not load: {e}"));

    // As the container sees it: plus the proxy service's CITUS_PROXY_* variables, interpolated
    // from .env.example.
    let compose = compose_yaml();
    let proxy = &compose["services"]["proxy"];
    let example = env_file_vars(&read(&dir.join(".env.example")));
    let env: BTreeMap<String, String> = environment(proxy).into_iter().map(|(k, v)| (k, interpolate(&v, &example))).collect();
    let mut p = Vec::new();
    let known: BTreeSet<String> = KEYS.iter().flat_map(|k| std::iter::once(k.env_name()).chain(k.alias_env())).collect();
    for name in env.keys().filter(|k| k.starts_with("CITUS_PROXY_")) {
        if name != "CITUS_PROXY_CONFIG" && !known.contains(name) {
            p.push(format!("proxy: `{name}` is not a configuration variable (see docs/configuration.md)"));
        }
    }
    let c = match config::load(Some(toml.as_path()), &Overrides::default(), |k| env.get(k).cloned()) {
        Ok(c) => c,
        Err(e) => panic!("compose/proxy/citus-proxy.toml with the compose service's environment does not load: {e}"),
    };
    let url = c.upstream_url();
    if url.host != "coordinator" || url.password.as_deref() != example.get("POSTGRES_PASSWORD").map(String::as_str) {
        p.push(format!("proxy: the upstream should be the coordinator, with POSTGRES_PASSWORD from the env file (got host {:?})", url.host));
    }
    if file_only.upstream_url().password.is_some() {
        p.push("compose/proxy/citus-proxy.toml: no password in the file; compose passes it in CITUS_PROXY_UPSTREAM_URL".into());
    }

    // The config file the proxy reads is the one mounted from the repository.
    match env.get("CITUS_PROXY_CONFIG") {
        Some(path) => {
            let mounted = mounts(proxy).into_iter().any(|m| m.bind && &m.target == path && dir.join(&m.source) == dir.join("./proxy/citus-proxy.toml"));
            if !mounted {
                p.push(format!("proxy: CITUS_PROXY_CONFIG={path} is not compose/proxy/citus-proxy.toml mounted"));
            }
        }
        None => p.push("proxy: no CITUS_PROXY_CONFIG".into()),
    }
    // Reachable from other containers, on the ports compose publishes and Prometheus scrapes.
    let metrics = c.metrics.listen_addr();
    if !c.listen.ip().is_unspecified() {
        p.push(format!("listen = {}: other containers cannot reach it; use 0.0.0.0", c.listen));
    }
    match metrics {
        Some(m) if m.ip().is_unspecified() => {}
        _ => p.push(format!("metrics.listen = {}: Prometheus cannot reach it; use 0.0.0.0:PORT", c.metrics.listen)),
    }
    let ports = container_ports(proxy);
    if !ports.contains(&c.listen.port()) {
        p.push(format!("proxy: port {} (listen) is not published", c.listen.port()));
    }
    if let Some(m) = metrics {
        if !ports.contains(&m.port()) {
            p.push(format!("proxy: port {} (metrics.listen) is not published", m.port()));
        }
        let prom = yaml_doc(&read(&dir.join("prometheus/prometheus.yml")), "prometheus.yml");
        let mut targets = Vec::new();
        all_strings(&prom["scrape_configs"], &mut targets);
        if !targets.contains(&format!("proxy:{}", m.port())) {
            p.push(format!("prometheus.yml does not scrape proxy:{}", m.port()));
        }
        let health = strings(&proxy["healthcheck"]["test"]).join(" ");
        if !health.contains(&format!(":{}/", m.port())) {
            p.push(format!("proxy: the health check does not ask the metrics port {}", m.port()));
        }
    }
    // `docker compose stop` waits longer than the proxy's drain.
    let grace = scalar(&proxy["stop_grace_period"]).and_then(|g| compose_duration(&g)).unwrap_or(Duration::from_secs(10));
    if grace <= c.shutdown.timeout {
        p.push(format!("proxy: stop_grace_period {grace:?} is not longer than shutdown.timeout {:?}", c.shutdown.timeout));
    }
    // The SLO alert's threshold is the share of statements a percentile lets through.
    if let Some((name, expr)) = alert_rules().into_iter().find(|(_, e)| e.contains("citus_proxy_slo_violations_total")) {
        let threshold: Option<f64> = expr.rsplit('>').next().and_then(|t| t.trim().parse().ok());
        let allowed = 1.0 - c.slo.percentile;
        if threshold.is_none_or(|t| (t - allowed).abs() > 1e-9) {
            p.push(format!("alert {name}: threshold {threshold:?} should be 1 - slo.percentile = {allowed}"));
        }
    }
    report("compose/proxy/citus-proxy.toml", &p);
}

// ---------------------------------------------------------------------------------------------
// 5. the Dockerfile

struct Stage {
    from: String,
    name: Option<String>,
    lines: Vec<String>,
}

/// Stages of a Dockerfile, continuation lines joined, comments dropped.
fn stages(text: &str) -> (BTreeMap<String, String>, Vec<Stage>) {
    let mut logical = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        if let Some(body) = t.strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
        } else {
            cur.push_str(t);
            logical.push(std::mem::take(&mut cur));
        }
    }
    let mut args = BTreeMap::new();
    let mut out: Vec<Stage> = Vec::new();
    for l in logical {
        let (instr, rest) = l.split_once(char::is_whitespace).unwrap_or((&l, ""));
        let instr = instr.to_ascii_uppercase();
        if instr == "ARG" && out.is_empty() {
            if let Some((k, v)) = rest.trim().split_once('=') {
                args.insert(k.to_string(), v.trim_matches('"').to_string());
            }
        } else if instr == "FROM" {
            let words: Vec<&str> = rest.split_whitespace().filter(|w| !w.starts_with("--")).collect();
            let name = (words.len() >= 3 && words[1].eq_ignore_ascii_case("AS")).then(|| words[2].to_string());
            out.push(Stage { from: words.first().unwrap_or(&"").to_string(), name, lines: Vec::new() });
        } else if let Some(s) = out.last_mut() {
            s.lines.push(format!("{instr} {}", rest.trim()));
        }
    }
    (args, out)
}

fn dockerfile_problems(text: &str) -> Vec<String> {
    let mut p = Vec::new();
    let (args, stages) = stages(text);
    if stages.len() < 2 {
        p.push("not a multi-stage build".into());
        return p;
    }
    for s in &stages {
        let image = args.iter().fold(s.from.clone(), |acc, (k, v)| acc.replace(&format!("${{{k}}}"), v).replace(&format!("${k}"), v));
        let tag = image.rsplit('/').next().and_then(|l| l.split_once(':')).map(|(_, t)| t.to_string());
        if image.contains('$') || tag.is_none() || tag.as_deref() == Some("latest") {
            p.push(format!("FROM {}: not a pinned image", s.from));
        }
    }
    let builds = stages.iter().position(|s| {
        s.lines.iter().any(|l| {
            l.starts_with("RUN ")
                && l.contains("cargo build")
                && l.contains("--release")
                && (l.contains("-p citus-proxy") || l.contains("--package citus-proxy"))
        })
    });
    let Some(build) = builds else {
        p.push("no stage runs `cargo build --release -p citus-proxy`".into());
        return p;
    };
    let runtime = stages.last().expect("at least two stages");
    if builds == Some(stages.len() - 1) {
        p.push("the last stage (the runtime image) is the build stage".into());
    }
    if runtime.from.starts_with("rust:") {
        p.push("the runtime stage is a Rust toolchain image, not a small one".into());
    }
    let build_name = stages[build].name.clone().unwrap_or_else(|| build.to_string());
    if !runtime.lines.iter().any(|l| l.starts_with("COPY ") && l.contains(&format!("--from={build_name}")) && l.contains("citus-proxy")) {
        p.push(format!("the runtime stage does not copy citus-proxy from the `{build_name}` stage"));
    }
    match runtime.lines.iter().rev().find(|l| l.starts_with("USER ")) {
        None => p.push("the runtime stage has no USER: it would run as root".into()),
        Some(u) => {
            let user = u["USER ".len()..].split(':').next().unwrap_or("").trim();
            if user.is_empty() || user == "root" || user == "0" {
                p.push(format!("the runtime stage runs as `{user}`"));
            }
        }
    }
    let exposed: BTreeSet<&str> = runtime
        .lines
        .iter()
        .filter_map(|l| l.strip_prefix("EXPOSE "))
        .flat_map(|l| l.split_whitespace())
        .map(|p| p.split('/').next().unwrap_or(p))
        .collect();
    for port in ["6432", "9930"] {
        if !exposed.contains(port) {
            p.push(format!("the runtime stage does not EXPOSE {port}"));
        }
    }
    p
}

#[test]
fn dockerfile_builds_the_proxy_and_runs_unprivileged() {
    let root = repo();
    let text = read(&root.join("Dockerfile"));
    let mut p = dockerfile_problems(&text);

    // The compose health check's tool is installed in the runtime image.
    let compose = compose_yaml();
    let health = strings(&compose["services"]["proxy"]["healthcheck"]["test"]);
    let tool = if health.first().map(String::as_str) == Some("CMD") { health.get(1) } else { None };
    if let Some(tool) = tool {
        let (_, st) = stages(&text);
        let runtime = st.last().map(|s| s.lines.join("\n")).unwrap_or_default();
        if !runtime.contains(&format!(" {tool}")) {
            p.push(format!("the proxy's health check runs `{tool}`, which the runtime stage does not install"));
        }
    }
    // The build context keeps what cargo needs and leaves out the build outputs.
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap_or_default();
    let ignored: BTreeSet<&str> = ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    for needed in ["target", ".git"] {
        if !ignored.contains(needed) {
            p.push(format!(".dockerignore does not leave out `{needed}`"));
        }
    }
    let manifest: toml::Table = read(&root.join("Cargo.toml")).parse().expect("Cargo.toml");
    let members: Vec<String> = manifest["workspace"]["members"]
        .as_array()
        .map(|m| m.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    for keep in members.iter().map(String::as_str).chain(["Cargo.toml", "Cargo.lock"]) {
        if ignored.contains(keep) || ignored.contains(format!("{keep}/").as_str()) {
            p.push(format!(".dockerignore leaves out `{keep}`, which the build needs"));
        }
    }
    report("Dockerfile", &p);
}

#[test]
fn rejects_a_dockerfile_that_runs_as_root() {
    let single = "FROM rust:1.89\nRUN cargo build --release -p citus-proxy\n";
    assert!(dockerfile_problems(single).iter().any(|p| p.contains("multi-stage")));
    let root = "FROM rust:1.89-slim AS build\nRUN cargo build --release -p citus-proxy\n\
                FROM debian:latest\nCOPY --from=build /src/target/release/citus-proxy /usr/local/bin/\nUSER root\nEXPOSE 6432\n";
    let p = dockerfile_problems(root).join("\n");
    for expected in ["runs as `root`", "FROM debian:latest: not a pinned image", "does not EXPOSE 9930"] {
        assert!(p.contains(expected), "expected {expected:?} among:\n{p}");
    }
    let other = "FROM rust:1.89-slim AS build\nRUN cargo build --release -p citus-loadtest\nFROM debian:bookworm-slim\nUSER app\n";
    assert!(dockerfile_problems(other).iter().any(|p| p.contains("cargo build --release -p citus-proxy")));
}
