//! 5. The Dockerfile: builds the proxy, runs it as a non-root user.

#[allow(unused_imports)]
use super::*;

pub(crate) struct Stage {
    pub(crate) from: String,
    pub(crate) name: Option<String>,
    pub(crate) lines: Vec<String>,
}

/// Stages of a Dockerfile, continuation lines joined, comments dropped.
pub(crate) fn stages(text: &str) -> (BTreeMap<String, String>, Vec<Stage>) {
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

pub(crate) fn dockerfile_problems(text: &str) -> Vec<String> {
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
pub(crate) fn dockerfile_builds_the_proxy_and_runs_unprivileged() {
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
pub(crate) fn rejects_a_dockerfile_that_runs_as_root() {
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
