//! SHOW SERVERS: the coordinator connections (one per client session: the proxy relays, it
//! does not pool).

use super::super::result::{v, ResultSet};
use crate::context::Context;

pub fn show(ctx: &Context) -> ResultSet {
    let mut rs = ResultSet::new(&["client_id", "upstream", "user", "database", "tx_state"]);
    for s in ctx.sessions.snapshot() {
        rs.row(vec![v(s.id), v(ctx.connector.addr()), v(&s.user), v(&s.database), v(s.tx())]);
    }
    rs
}
