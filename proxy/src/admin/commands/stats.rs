//! SHOW STATS: statements and time per route and class since the proxy started.

use super::super::result::{v, ResultSet};
use super::ms;
use crate::context::Context;

pub fn show(ctx: &Context) -> ResultSet {
    let mut rs = ResultSet::new(&["route", "class", "queries", "total_ms", "avg_ms"]);
    for (route, class, n, total) in ctx.metrics.totals() {
        let avg = total / (n.max(1) as u32);
        rs.row(vec![v(route.as_str()), v(class.as_str()), v(n), v(ms(total)), v(ms(avg))]);
    }
    rs
}
