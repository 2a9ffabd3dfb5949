//! `compose/` and the root `Dockerfile`, checked without a Docker engine: the compose file is
//! consistent (services, volumes, mounted files, pinned images, health checks, limits, env file),
//! Prometheus' configuration and alert rules pass `promtool` (and their unit tests), the Grafana
//! dashboard loads and, like the alert rules, only names metrics, labels and label values listed
//! in docs/metrics.md, the proxy's TOML loads with the proxy's own loader, and the Dockerfile builds
//! the proxy and runs it as a non-root user.
//!
//! Each check collects every problem it finds and fails with the whole list. The `rejects_*`
//! tests feed the same checks broken input, so a check that stopped finding anything would fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

pub(crate) use citus_proxy::config::{self, keys::KEYS, Overrides};
pub(crate) use std::collections::{BTreeMap, BTreeSet};
pub(crate) use std::path::{Path, PathBuf};
pub(crate) use std::process::Command;
pub(crate) use std::time::Duration;
pub(crate) use yaml_rust2::{Yaml, YamlLoader};

mod support;
#[allow(unused_imports)]
pub(crate) use support::*;
mod compose_file;
#[allow(unused_imports)]
pub(crate) use compose_file::*;
mod promtool;
#[allow(unused_imports)]
pub(crate) use promtool::*;
mod metric_names;
#[allow(unused_imports)]
pub(crate) use metric_names::*;
mod proxy_config;
#[allow(unused_imports)]
pub(crate) use proxy_config::*;
mod dockerfile;
#[allow(unused_imports)]
pub(crate) use dockerfile::*;
