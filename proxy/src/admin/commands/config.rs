//! SHOW CONFIG: every key with the value in force (secrets masked): after SIGHUP / RELOAD, the
//! keys applied live show their new value, the others the value the proxy started with.

use super::super::result::{v, ResultSet};
use crate::config::keys;
use crate::context::Context;

pub fn show(ctx: &Context) -> ResultSet {
    let mut rs = ResultSet::new(&["key", "value", "default"]);
    let live = ctx.live();
    for (k, val) in &live.values {
        let default = keys::find(k).map(|key| key.default.to_string());
        rs.row(vec![v(k), v(val), default]);
    }
    rs
}
