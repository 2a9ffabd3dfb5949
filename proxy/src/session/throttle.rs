//! At most one log line per interval for events an unauthenticated peer can cause at will
//! (refusals at a limit, malformed connections, accept failures): a flood of them must not
//! become a flood of log lines. The lines that were held back are counted and reported with
//! the next one written.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How often a throttled kind of event may be logged.
pub const INTERVAL: Duration = Duration::from_secs(10);

pub struct Throttle {
    /// When a line was last written, in ms since `epoch()` + 1; 0 = never.
    last: AtomicU64,
    suppressed: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Throttle {
    pub const fn new() -> Throttle {
        Throttle { last: AtomicU64::new(0), suppressed: AtomicU64::new(0) }
    }

    /// `Some(n)` when a line may be written now, `n` being how many were held back since the
    /// last one; None when this one is to be held back (and counted).
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(epoch().elapsed().as_millis() as u64 + 1)
    }

    fn admit_at(&self, now: u64) -> Option<u64> {
        let last = self.last.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= INTERVAL.as_millis() as u64;
        if due && self.last.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new()
    }
}

/// Refusals at `limits.max_logins_in_progress`.
pub static LOGIN_LIMIT: Throttle = Throttle::new();
/// Refusals at `limits.max_client_connections`.
pub static CLIENT_LIMIT: Throttle = Throttle::new();
/// Connections ended for a protocol violation before or after login.
pub static MALFORMED: Throttle = Throttle::new();
/// Failed accepts (out of file descriptors and the like).
pub static ACCEPT_FAILED: Throttle = Throttle::new();
/// Refusals at the metrics listener's connection cap.
pub static METRICS_LIMIT: Throttle = Throttle::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_and_the_rest_counted() {
        let t = Throttle::new();
        let ms = INTERVAL.as_millis() as u64;
        assert_eq!(t.admit_at(1), Some(0));
        for i in 0..5 {
            assert_eq!(t.admit_at(2 + i), None);
        }
        assert_eq!(t.admit_at(ms), None, "not yet a whole interval");
        assert_eq!(t.admit_at(ms + 1), Some(6), "the held-back lines are counted");
        assert_eq!(t.admit_at(ms + 2), None);
    }
}
