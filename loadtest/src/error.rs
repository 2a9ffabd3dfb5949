//! Errors that end a run before it can be judged: all of them map to exit status 2, which keeps
//! "the cluster is slow" (1) apart from "the run could not happen" (2) for CI gates.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("usage: {0}")]
    Usage(String),
    #[error("target `{target}` ({url}): cannot connect: {message}")]
    Connect { target: String, url: String, message: String },
    #[error("target `{target}`: setup failed: {message}")]
    Setup { target: String, message: String },
    #[error("cannot write the report to {path}: {source}")]
    Report { path: String, source: std::io::Error },
}

/// A tokio-postgres error with the server's message and SQLSTATE, which its Display leaves out.
pub fn describe_pg(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let hint = if db.code() == &tokio_postgres::error::SqlState::UNDEFINED_TABLE {
                " (is the demo schema there? add `--scenario setup`)"
            } else {
                ""
            };
            format!("{}: {} ({}){hint}", db.severity(), db.message(), db.code().code())
        }
        None => e.to_string(),
    }
}
