//! One client's named statements: its own names mapped to the shared statement contents, and
//! its last unnamed Parse, kept to re-send on a server connection that does not hold it.

use std::collections::HashMap;
use std::sync::Arc;

use super::ids::{Prepared, StatementIds};
use crate::settings::words::identifier;

#[derive(Debug)]
pub struct ClientStatements {
    /// Identifies this client's unnamed statement on a server connection.
    key: u64,
    named: HashMap<Box<[u8]>, Arc<Prepared>, ahash::RandomState>,
    /// The whole body of the last unnamed Parse (buffer reused from one Parse to the next).
    unnamed: Vec<u8>,
    /// Bumped by every unnamed Parse and every drop of it, so an old (key, generation) a server
    /// connection remembers never matches again.
    unnamed_gen: u64,
    has_unnamed: bool,
}

impl ClientStatements {
    pub fn new(ids: &StatementIds) -> ClientStatements {
        ClientStatements { key: ids.client_key(), named: HashMap::default(), unnamed: Vec::new(), unnamed_gen: 0, has_unnamed: false }
    }

    pub fn get(&self, name: &[u8]) -> Option<&Arc<Prepared>> {
        self.named.get(name)
    }

    /// Parse defines `name`. PostgreSQL would refuse to redefine a name that exists (42P05
    /// until Close); the proxy just replaces it, which only differs for a client that relies on
    /// that error.
    pub fn define(&mut self, name: &[u8], prepared: Arc<Prepared>) {
        match self.named.get_mut(name) {
            Some(slot) => *slot = prepared,
            None => {
                self.named.insert(name.into(), prepared);
            }
        }
    }

    /// Close: forgets `name`; false if it was not defined.
    pub fn forget(&mut self, name: &[u8]) -> bool {
        self.named.remove(name).is_some()
    }

    /// `DEALLOCATE name` as written in SQL (folded unless quoted, as PostgreSQL reads it).
    pub fn deallocate(&mut self, sql_name: &str) -> bool {
        self.forget(identifier(sql_name).as_bytes())
    }

    /// `DEALLOCATE ALL` / `DISCARD ALL`: every named statement (not the unnamed one).
    pub fn deallocate_all(&mut self) {
        self.named.clear();
    }

    pub fn len(&self) -> usize {
        self.named.len()
    }

    pub fn is_empty(&self) -> bool {
        self.named.is_empty()
    }

    pub(super) fn key(&self) -> u64 {
        self.key
    }

    /// An unnamed Parse went to the server: remember its body, return its generation.
    pub(super) fn record_unnamed(&mut self, body: &[u8]) -> u64 {
        self.unnamed.clear();
        self.unnamed.extend_from_slice(body);
        self.unnamed_gen += 1;
        self.has_unnamed = true;
        self.unnamed_gen
    }

    /// The client's unnamed statement, if it has one: its generation and its Parse body.
    pub(super) fn unnamed(&self) -> Option<(u64, &[u8])> {
        self.has_unnamed.then_some((self.unnamed_gen, self.unnamed.as_slice()))
    }

    /// The unnamed statement is gone (Close of it, or a simple Query, which drops it).
    pub(super) fn drop_unnamed(&mut self) {
        self.unnamed.clear();
        self.unnamed_gen += 1;
        self.has_unnamed = false;
    }
}
