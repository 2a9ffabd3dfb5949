//! What a pool is for: one role on one database of one server. Server connections log in as
//! the client's role, so pools are never shared between roles.

use std::fmt;

use super::target::Target;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolKey {
    pub user: String,
    pub database: String,
    pub target: Target,
}

impl PoolKey {
    /// A coordinator pool.
    pub fn new(user: &str, database: &str) -> PoolKey {
        PoolKey { user: user.to_string(), database: database.to_string(), target: Target::Coordinator }
    }

    /// The same role and database on another server.
    pub fn on(&self, target: Target) -> PoolKey {
        PoolKey { user: self.user.clone(), database: self.database.clone(), target }
    }

    /// What `pool.max_db_connections` counts under: a database of one server.
    pub fn cap_key(&self) -> String {
        match &self.target {
            Target::Coordinator => self.database.clone(),
            Target::Node(addr) => format!("{}@{addr}", self.database),
        }
    }
}

impl fmt::Display for PoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Coordinator => write!(f, "{}@{}", self.user, self.database),
            Target::Node(addr) => write!(f, "{}@{}@{addr}", self.user, self.database),
        }
    }
}
