//! 4. The proxy's TOML in compose, with the proxy's own loader.

#[allow(unused_imports)]
use super::*;

#[test]
pub(crate) fn proxy_toml_loads_with_the_proxys_loader() {
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
        p.push(format!(
            "proxy: the upstream should be the coordinator, with POSTGRES_PASSWORD from the env file (got host {:?})",
            url.host
        ));
    }
    if file_only.upstream_url().password.is_some() {
        p.push("compose/proxy/citus-proxy.toml: no password in the file; compose passes it in CITUS_PROXY_UPSTREAM_URL".into());
    }

    // The config file the proxy reads is the one mounted from the repository.
    match env.get("CITUS_PROXY_CONFIG") {
        Some(path) => {
            let mounted = mounts(proxy)
                .into_iter()
                .any(|m| m.bind && &m.target == path && dir.join(&m.source) == dir.join("./proxy/citus-proxy.toml"));
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
