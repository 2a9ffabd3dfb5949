//! Encoding the console's answers: text columns, rows, command tags.

use crate::wire::frame::build;

/// One result set with text columns.
pub struct ResultSet {
    columns: Vec<&'static str>,
    rows: Vec<Vec<Option<String>>>,
    tag: String,
}

impl ResultSet {
    pub fn new(columns: &[&'static str]) -> ResultSet {
        ResultSet { columns: columns.to_vec(), rows: Vec::new(), tag: "SHOW".into() }
    }
    pub fn row(&mut self, values: Vec<Option<String>>) {
        self.rows.push(values);
    }
    /// A command's answer: its tag alone (CommandComplete, no rows).
    pub fn command(tag: &str) -> ResultSet {
        ResultSet { columns: Vec::new(), rows: Vec::new(), tag: tag.to_string() }
    }
    pub fn tagged(mut self, tag: &str) -> ResultSet {
        self.tag = tag.to_string();
        self
    }

    /// RowDescription, DataRows, CommandComplete.
    pub fn encode(&self, out: &mut Vec<u8>) {
        if self.columns.is_empty() && self.tag != "SHOW" {
            let mut t = self.tag.clone().into_bytes();
            t.push(0);
            out.extend_from_slice(&build(b'C', &t));
            return;
        }
        let mut body = Vec::new();
        body.extend_from_slice(&(self.columns.len() as i16).to_be_bytes());
        for c in &self.columns {
            body.extend_from_slice(c.as_bytes());
            body.push(0);
            body.extend_from_slice(&0i32.to_be_bytes()); // table oid
            body.extend_from_slice(&0i16.to_be_bytes()); // column number
            body.extend_from_slice(&25i32.to_be_bytes()); // text
            body.extend_from_slice(&(-1i16).to_be_bytes());
            body.extend_from_slice(&(-1i32).to_be_bytes());
            body.extend_from_slice(&0i16.to_be_bytes()); // text format
        }
        out.extend_from_slice(&build(b'T', &body));
        for r in &self.rows {
            body.clear();
            body.extend_from_slice(&(r.len() as i16).to_be_bytes());
            for v in r {
                match v {
                    Some(s) => {
                        body.extend_from_slice(&(s.len() as i32).to_be_bytes());
                        body.extend_from_slice(s.as_bytes());
                    }
                    None => body.extend_from_slice(&(-1i32).to_be_bytes()),
                }
            }
            out.extend_from_slice(&build(b'D', &body));
        }
        let tag = if self.tag == "SHOW" { format!("SHOW {}", self.rows.len()) } else { self.tag.clone() };
        let mut t = tag.into_bytes();
        t.push(0);
        out.extend_from_slice(&build(b'C', &t));
    }
}

/// Shorthand for a present value.
pub fn v(s: impl ToString) -> Option<String> {
    Some(s.to_string())
}
