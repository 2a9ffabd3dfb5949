//! SHOW CACHE and FLUSH CACHE.

use super::super::result::{v, ResultSet};
use crate::context::Context;

pub fn show(_ctx: &Context) -> ResultSet {
    let mut rs = ResultSet::new(&["tier", "state"]);
    rs.row(vec![v("memory"), v("not enabled in this build of the proxy")]);
    rs
}

pub async fn flush(_ctx: &Context) -> Result<ResultSet, String> {
    Err("the result cache is not enabled in this build of the proxy".into())
}
