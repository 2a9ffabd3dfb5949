//! `report.json`: the whole `Report`, for CI to parse and for comparing runs.

use std::path::Path;

use super::Report;
use crate::error::Error;

pub fn write(dir: &Path, report: &Report) -> Result<std::path::PathBuf, Error> {
    let path = dir.join("report.json");
    let err = |source| Error::Report { path: path.display().to_string(), source };
    std::fs::create_dir_all(dir).map_err(err)?;
    let body = serde_json::to_vec_pretty(report).map_err(|e| err(std::io::Error::other(e)))?;
    std::fs::write(&path, body).map_err(err)?;
    Ok(path)
}
