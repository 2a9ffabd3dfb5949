//! Errors of catalog loading. SQL and parameter problems are not errors: they become
//! `Route::Unknown` with a reason.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CatalogError {
    #[error("{row}: expected at least {expected} columns, got {got}")]
    MissingColumns { row: &'static str, expected: usize, got: usize },
    #[error("{row}.{column}: NULL where a value is required")]
    Null { row: &'static str, column: &'static str },
    #[error("{row}.{column}: cannot parse {value:?}")]
    BadValue { row: &'static str, column: &'static str, value: String },
    #[error("inconsistent catalog: {0}")]
    Inconsistent(String),
}
