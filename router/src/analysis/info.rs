//! Facts collected while walking (tables, functions, flags), turned into `StatementInfo`.

use serde::Serialize;

/// A relation name as written (unquoted parts folded to lower case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TableName {
    pub schema: Option<String>,
    pub name: String,
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct InfoAcc {
    pub tables: Vec<TableName>,
    pub functions: Vec<String>,
    pub touches_temp: bool,
    pub touches_catalog: bool,
}

impl InfoAcc {
    pub fn table(&mut self, schema: Option<&str>, name: &str) {
        match schema {
            Some("pg_catalog" | "information_schema") => self.touches_catalog = true,
            Some(s) if s.starts_with("pg_temp") => self.touches_temp = true,
            None if name.starts_with("pg_") => self.touches_catalog = true,
            _ => {}
        }
        let t = TableName { schema: schema.map(str::to_string), name: name.to_string() };
        if !self.tables.contains(&t) {
            self.tables.push(t);
        }
    }
    pub fn function(&mut self, name: &str) {
        if !self.functions.iter().any(|f| f == name) {
            self.functions.push(name.to_string());
        }
    }
}
