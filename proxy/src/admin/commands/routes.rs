//! SHOW ROUTES: the most frequent statement shapes, how often each went to each route, and
//! their latency.

use super::super::result::{v, ResultSet};
use super::ms;
use crate::context::Context;

pub fn show(ctx: &Context) -> ResultSet {
    let mut rs = ResultSet::new(&["shape", "routes", "calls", "p50_ms", "p99_ms"]);
    for (text, routes, total, p50, p99) in ctx.shapes.top(50) {
        let routes = routes.iter().map(|(r, n)| format!("{}={n}", r.as_str())).collect::<Vec<_>>().join(" ");
        rs.row(vec![v(text), v(routes), v(total), p50.map(ms), p99.map(ms)]);
    }
    rs
}
