//! Resolving a (possibly schema-qualified) relation name the way PostgreSQL does with a search
//! path: `pg_catalog` first unless listed, then each schema in order.

use super::{TableId, Topology};

/// What a name in FROM refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Citus(TableId),
    /// A plain PostgreSQL relation on the coordinator with its relkind (r, p, m, f).
    Local(char),
    View,
    /// pg_catalog / information_schema.
    Catalog,
    /// pg_temp.* — session-private.
    Temp,
    /// Not in the snapshot (created since, temporary, or a typo): never guess.
    Unknown,
}

impl Topology {
    fn lookup(&self, schema: &str, name: &str) -> Option<Relation> {
        if let Some(id) = self.table_id(schema, name) {
            return Some(Relation::Citus(id));
        }
        match self.relation_kind(schema, name)? {
            'v' => Some(Relation::View),
            k => Some(Relation::Local(k)),
        }
    }

    /// Resolve `schema.name` (or `name` through `search_path`; an empty path means `public`).
    /// `$user` entries must be substituted by the caller; they are skipped here.
    pub fn resolve(&self, schema: Option<&str>, name: &str, search_path: &[&str]) -> Relation {
        match schema {
            Some("pg_catalog" | "information_schema") => Relation::Catalog,
            Some(s) if s.starts_with("pg_temp") => Relation::Temp,
            Some(s) => self.lookup(s, name).unwrap_or(Relation::Unknown),
            None => {
                let default = ["public"];
                let path: &[&str] = if search_path.is_empty() { &default } else { search_path };
                for s in path.iter().filter(|s| !s.starts_with('$')) {
                    if *s == "pg_catalog" && name.starts_with("pg_") {
                        return Relation::Catalog;
                    }
                    if let Some(r) = self.lookup(s, name) {
                        return r;
                    }
                }
                // pg_catalog is searched first implicitly; user relations rarely start with pg_.
                if name.starts_with("pg_") {
                    Relation::Catalog
                } else {
                    Relation::Unknown
                }
            }
        }
    }
}
