//! RELOAD: the same reload as SIGHUP (admin::reload), reported as rows.

use super::super::result::{v, ResultSet};
use crate::context::Context;

pub async fn run(ctx: &Context) -> Result<ResultSet, String> {
    let report = crate::admin::reload(ctx).await;
    crate::admin::log_reload("RELOAD", &report);
    let mut rs = ResultSet::new(&["item", "result"]).tagged("RELOAD");
    rs.row(vec![v("metadata"), v(&report.metadata)]);
    rs.row(vec![v("config"), v(report.config_text())]);
    Ok(rs)
}
