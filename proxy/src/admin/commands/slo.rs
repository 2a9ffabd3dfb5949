//! SHOW SLO: each class's latency at the configured percentile over the window, against its target.

use super::super::result::{v, ResultSet};
use super::ms;
use crate::context::Context;

pub fn show(ctx: &Context) -> ResultSet {
    let mut rs = ResultSet::new(&["class", "target_ms", "percentile", "observed_ms", "count", "violations", "pass"]);
    let p = ctx.metrics.percentile();
    for (class, target, observed, count, violations) in ctx.metrics.slo_rows() {
        let pass = observed.is_none_or(|o| o <= target);
        rs.row(vec![v(class.as_str()), v(ms(target)), v(p), observed.map(ms), v(count), v(violations), v(pass)]);
    }
    rs
}
