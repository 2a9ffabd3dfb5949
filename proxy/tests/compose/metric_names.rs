//! 3. Metric names, labels and label values in alerts and dashboard against docs/metrics.md.

#[allow(unused_imports)]
use super::*;

pub(crate) struct MetricDoc {
    pub(crate) kind: String,
    pub(crate) labels: BTreeSet<String>,
}

pub(crate) struct Vocabulary {
    pub(crate) metrics: BTreeMap<String, MetricDoc>,
    /// Documented values per label (`class`, `route`, `state`, `tier`, `direction`).
    pub(crate) values: BTreeMap<String, BTreeSet<String>>,
}

pub(crate) fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

pub(crate) fn cells(line: &str) -> Vec<String> {
    line.trim().trim_matches('|').split('|').map(|c| c.trim().to_string()).collect()
}

pub(crate) fn parse_metrics_doc(text: &str) -> Vocabulary {
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

pub(crate) fn metrics_doc() -> Vocabulary {
    let v = parse_metrics_doc(&read(&repo().join("docs/metrics.md")));
    assert!(v.metrics.len() >= 20, "docs/metrics.md: parsed only {} metrics", v.metrics.len());
    for label in ["class", "route", "state"] {
        assert!(v.values.get(label).is_some_and(|s| s.len() >= 2), "docs/metrics.md: no `{label}` vocabulary parsed");
    }
    v
}

#[derive(Debug, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Str(String),
    Punct(char),
    Op(String),
}

/// A small PromQL lexer: identifiers, strings, punctuation; numbers, range/offset durations
/// (`[5m]`) and Grafana variables (`$class`, `$__rate_interval`) are dropped.
pub(crate) fn lex(expr: &str) -> Vec<Tok> {
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

pub(crate) const AGGREGATIONS: &[&str] =
    &["sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group"];
pub(crate) const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan", "Inf", "NaN"];
pub(crate) const GROUPING: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
/// Prometheus' own series, allowed besides the proxy's.
pub(crate) const BUILTIN_SERIES: &[&str] = &["up"];
/// Labels Prometheus adds to every scraped series.
pub(crate) const TARGET_LABELS: &[&str] = &["job", "instance"];

/// The documented metric a series name belongs to, with the extra labels the suffix brings.
pub(crate) fn resolve<'a>(name: &str, doc: &'a Vocabulary) -> Result<(&'a MetricDoc, &'static [&'static str]), String> {
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
pub(crate) fn expr_problems(expr: &str, doc: &Vocabulary, problems: &mut Vec<String>) -> BTreeSet<String> {
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
pub(crate) fn dashboard_targets(v: &serde_json::Value, targets: &mut Vec<(String, String)>, datasources: &mut Vec<serde_json::Value>) {
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

pub(crate) fn alert_rules() -> Vec<(String, String)> {
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

pub(crate) fn metric_names(expr: &str) -> BTreeSet<String> {
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
pub(crate) fn alert_rules_use_documented_metrics_and_cover_the_issue() {
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
pub(crate) fn dashboard_loads_and_uses_documented_metrics() {
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
                Ok((m, _)) if !m.labels.contains(label) => {
                    p.push(format!("variable `{}`: `{}` has no label `{label}`", var["name"], metric.trim()))
                }
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
    let mounted = mounts(&compose["services"]["grafana"]).into_iter().any(|m| {
        m.bind
            && m.target.trim_end_matches('/') == path.trim_end_matches('/')
            && compose_dir().join(&m.source).join("citus-proxy.json").is_file()
    });
    if !mounted {
        p.push(format!("the dashboards provider reads `{path}`, which grafana does not mount from a directory holding citus-proxy.json"));
    }
    report("compose/grafana", &p);
}

#[test]
pub(crate) fn rejects_undocumented_metrics_labels_and_values() {
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
