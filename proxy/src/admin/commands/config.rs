//! SHOW CONFIG: every key with its effective value (secrets masked).

use super::super::result::{v, ResultSet};
use crate::config::keys;
use crate::context::Context;

pub fn show(ctx: &Context) -> ResultSet {
    let mut rs = ResultSet::new(&["key", "value", "default"]);
    for (k, val) in &ctx.config.values {
        let default = keys::find(k).map(|key| key.default.to_string());
        rs.row(vec![v(k), v(val), default]);
    }
    rs
}
