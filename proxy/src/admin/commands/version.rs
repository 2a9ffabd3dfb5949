//! SHOW VERSION: the proxy's name and version, one row.

use super::super::result::{v, ResultSet};

pub fn show() -> ResultSet {
    let mut rs = ResultSet::new(&["version"]);
    rs.row(vec![v(concat!("citus-proxy ", env!("CARGO_PKG_VERSION")))]);
    rs
}
