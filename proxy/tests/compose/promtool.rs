//! 2. promtool: the Prometheus configuration, alert rules and their unit tests.

#[allow(unused_imports)]
use super::*;

pub(crate) fn promtool(args: &[&str]) {
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
pub(crate) fn promtool_checks_the_prometheus_config() {
    promtool(&["check", "config", "prometheus.yml"]);
}

#[test]
pub(crate) fn promtool_checks_the_alert_rules() {
    promtool(&["check", "rules", "alerts.yml"]);
}

#[test]
pub(crate) fn promtool_unit_tests_the_alert_rules() {
    promtool(&["test", "rules", "alerts_test.yml"]);
}
