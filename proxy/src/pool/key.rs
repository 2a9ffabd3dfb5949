//! What a pool is for: one role on one database. Server connections log in as the client's
//! role, so pools are never shared between roles.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolKey {
    pub user: String,
    pub database: String,
}

impl PoolKey {
    pub fn new(user: &str, database: &str) -> PoolKey {
        PoolKey { user: user.to_string(), database: database.to_string() }
    }
}

impl fmt::Display for PoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.database)
    }
}
