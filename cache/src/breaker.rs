//! Circuit breaker in front of Redis: after `failures` consecutive errors it opens and Redis is
//! not asked at all (so a dead Redis costs nothing, not even a timeout); after `cooldown` one
//! caller is let through as a probe, whose outcome closes or re-opens it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A probe is in flight since `since`; if it never reports (its future was dropped), another
    /// probe is allowed after a cooldown.
    HalfOpen {
        since: Instant,
    },
}

#[derive(Debug)]
pub(crate) struct Breaker {
    state: Mutex<State>,
    threshold: u32,
    cooldown: Duration,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker { state: Mutex::new(State::Closed { failures: 0 }), threshold: threshold.max(1), cooldown }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this caller may talk to Redis now.
    pub fn allow(&self) -> bool {
        let mut s = self.lock();
        let now = Instant::now();
        match *s {
            State::Closed { .. } => true,
            State::Open { until } if now >= until => {
                *s = State::HalfOpen { since: now };
                true
            }
            State::Open { .. } => false,
            State::HalfOpen { since } if now >= since + self.cooldown => {
                *s = State::HalfOpen { since: now };
                true
            }
            State::HalfOpen { .. } => false,
        }
    }

    pub fn record_success(&self) {
        *self.lock() = State::Closed { failures: 0 };
    }

    pub fn record_failure(&self) {
        let mut s = self.lock();
        let now = Instant::now();
        *s = match *s {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed { failures: failures + 1 },
            // Threshold reached, a failed probe, or a straggler failing while already open.
            _ => State::Open { until: now + self.cooldown },
        };
    }

    /// `closed`, `open` or `half_open`, for SHOW CACHE.
    pub fn state_label(&self) -> &'static str {
        match *self.lock() {
            State::Closed { .. } => "closed",
            State::Open { .. } => "open",
            State::HalfOpen { .. } => "half_open",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_probes_and_closes() {
        let b = Breaker::new(3, Duration::from_millis(50));
        for _ in 0..2 {
            assert!(b.allow());
            b.record_failure();
        }
        assert_eq!(b.state_label(), "closed");
        assert!(b.allow());
        b.record_failure();
        assert_eq!(b.state_label(), "open");
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.allow(), "one probe after the cooldown");
        assert!(!b.allow(), "only one probe");
        b.record_failure();
        assert!(!b.allow(), "failed probe re-opens");
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.allow());
        b.record_success();
        assert_eq!(b.state_label(), "closed");
        assert!(b.allow());
    }
}
