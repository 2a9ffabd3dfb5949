//! 1. The compose file: services, volumes, mounts, images, health checks, limits, env file.

#[allow(unused_imports)]
use super::*;

/// Service keys of the Compose specification this stack may use (a typo is a problem, not a
/// silently ignored key).
pub(crate) const SERVICE_KEYS: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "volumes",
    "ports",
    "expose",
    "depends_on",
    "healthcheck",
    "restart",
    "deploy",
    "profiles",
    "hostname",
    "container_name",
    "networks",
    "labels",
    "user",
    "working_dir",
    "stop_grace_period",
    "stop_signal",
    "shm_size",
    "ulimits",
    "mem_limit",
    "cpus",
    "logging",
    "init",
    "read_only",
    "tmpfs",
    "cap_drop",
    "cap_add",
    "security_opt",
    "secrets",
    "configs",
    "extra_hosts",
    "sysctls",
    "tty",
    "stdin_open",
    "platform",
    "pull_policy",
    "privileged",
];
pub(crate) const TOP_KEYS: &[&str] = &["name", "services", "volumes", "networks", "configs", "secrets"];
pub(crate) const CONDITIONS: &[&str] = &["service_started", "service_healthy", "service_completed_successfully"];

/// Every problem of the compose file `doc`, whose relative paths resolve against `dir`;
/// `env_example` is the text of `.env.example`.
pub(crate) fn compose_problems(doc: &Yaml, dir: &Path, env_example: &str) -> Vec<String> {
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
        for f in strings(&s["env_file"]).into_iter().chain(s["env_file"].as_vec().into_iter().flatten().filter_map(|e| scalar(&e["path"])))
        {
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
pub(crate) fn compose_file_is_consistent() {
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
pub(crate) fn rejects_a_broken_compose_file() {
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
pub(crate) fn interpolation_is_read_like_compose() {
    assert_eq!(interpolated_vars("${A:?x} $B $$C ${D:-1}x"), ["A", "B", "D"]);
    let vars: BTreeMap<String, String> = [("P".to_string(), "pw".to_string())].into();
    assert_eq!(interpolate("u:${P:?set it}@h:${PORT:-5432} $$x", &vars), "u:pw@h:5432 $x");
    assert_eq!(compose_duration("35s"), Some(Duration::from_secs(35)));
    assert_eq!(compose_duration("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(compose_duration("500ms"), Some(Duration::from_millis(500)));
}
