//! Open-file limit: each client takes two descriptors (its socket and its coordinator
//! connection), and systemd's default soft limit of 1024 fits only about 500 clients. At start
//! the soft limit is raised to the hard one, and a limit still too low is said once.

/// Descriptors besides the sessions': listeners, metrics, the metadata and Redis connections,
/// log and runtime internals.
const MARGIN: u64 = 64;

/// The outcome of `raise`, logged once by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdLimit {
    pub before: u64,
    pub now: u64,
    pub hard: u64,
    /// Descriptors `max_client_connections` needs.
    pub needed: u64,
}

impl FdLimit {
    pub fn fits(&self) -> bool {
        self.now >= self.needed
    }
}

/// Descriptors needed to serve `max_clients` at once.
pub fn needed(max_clients: u32) -> u64 {
    u64::from(max_clients) * 2 + MARGIN
}

/// Raises RLIMIT_NOFILE's soft limit to its hard limit. Errors are the system's own.
pub fn raise(max_clients: u32) -> std::io::Result<FdLimit> {
    use rlimit::Resource;
    let (before, hard) = Resource::NOFILE.get()?;
    let mut now = before;
    if before < hard {
        Resource::NOFILE.set(hard, hard)?;
        now = Resource::NOFILE.get()?.0;
    }
    Ok(FdLimit { before, now, hard, needed: needed(max_clients) })
}

/// Raises the limit and logs the outcome: one info line when raised, one warning when
/// `limits.max_client_connections` cannot fit.
pub fn raise_and_report(max_clients: u32) {
    match raise(max_clients) {
        Ok(l) => {
            if l.now != l.before {
                tracing::info!(from = l.before, to = l.now, "raised the open-files limit (RLIMIT_NOFILE) to its hard limit");
            }
            if !l.fits() {
                tracing::warn!(
                    limit = l.now,
                    needed = l.needed,
                    max_client_connections = max_clients,
                    "the open-files limit ({}) is below the {} descriptors `limits.max_client_connections` = {} needs \
                     (two per client): clients past about {} will fail with \"Too many open files\"; raise the hard \
                     limit (systemd LimitNOFILE=, docker --ulimit nofile=, ulimit -Hn) or lower the key",
                    l.now,
                    l.needed,
                    max_clients,
                    l.now.saturating_sub(MARGIN) / 2
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-files limit (RLIMIT_NOFILE)"),
    }
}
