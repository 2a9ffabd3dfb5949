//! Per-class latency over a sliding window: a ring of HDR histograms, one per time slot; a
//! snapshot merges the slots still inside the window.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::labels::Class;

/// Slots per window: the window slides in steps of window / SLOTS.
const SLOTS: u64 = 6;

struct Ring {
    /// (slot number since start, histogram of microseconds)
    slots: Vec<(u64, Histogram<u64>)>,
}

pub struct ClassWindow {
    ring: Mutex<Ring>,
}

pub struct SloWindows {
    classes: Vec<ClassWindow>,
    slot: Duration,
    started: Instant,
}

#[allow(clippy::expect_used)] // constant bounds: it cannot fail
fn histogram() -> Histogram<u64> {
    // 1 µs to 1 h at 2 significant digits (1 %: plenty against targets, and ~50 KB per
    // histogram instead of ~380 KB at 3 digits); constant bounds, so this cannot fail.
    Histogram::new_with_bounds(1, 3_600_000_000, 2).unwrap_or_else(|_| Histogram::new(2).expect("2 sig figs is valid"))
}

impl SloWindows {
    pub fn new(window: Duration) -> SloWindows {
        let slot = (window / SLOTS as u32).max(Duration::from_millis(100));
        let classes = Class::ALL
            .iter()
            .map(|_| ClassWindow { ring: Mutex::new(Ring { slots: (0..SLOTS).map(|_| (u64::MAX, histogram())).collect() }) })
            .collect();
        SloWindows { classes, slot, started: Instant::now() }
    }

    fn slot_now(&self) -> u64 {
        (self.started.elapsed().as_nanos() / self.slot.as_nanos().max(1)) as u64
    }

    pub fn record(&self, class: Class, elapsed: Duration) {
        let now = self.slot_now();
        let micros = (elapsed.as_micros() as u64).max(1);
        let Some(cw) = self.classes.get(class.index()) else { return };
        let mut ring = cw.ring.lock().unwrap_or_else(|p| p.into_inner());
        let idx = (now % SLOTS) as usize;
        let Some((slot_no, h)) = ring.slots.get_mut(idx) else { return };
        if *slot_no != now {
            h.reset();
            *slot_no = now;
        }
        h.saturating_record(micros);
    }

    /// The merged histogram of `class` over the window.
    pub fn snapshot(&self, class: Class) -> Histogram<u64> {
        let now = self.slot_now();
        let mut merged = histogram();
        if let Some(cw) = self.classes.get(class.index()) {
            let ring = cw.ring.lock().unwrap_or_else(|p| p.into_inner());
            for (slot_no, h) in &ring.slots {
                if *slot_no != u64::MAX && now.saturating_sub(*slot_no) < SLOTS {
                    let _ = merged.add(h);
                }
            }
        }
        merged
    }

    /// The window actually covered.
    pub fn window(&self) -> Duration {
        self.slot * SLOTS as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_recorded_values_and_age_out() {
        let w = SloWindows::new(Duration::from_millis(600));
        for ms in 1..=100u64 {
            w.record(Class::Count, Duration::from_millis(ms));
        }
        let h = w.snapshot(Class::Count);
        assert_eq!(h.len(), 100);
        let p99 = h.value_at_quantile(0.99);
        assert!((98_000..=100_500).contains(&p99), "p99 {p99}");
        assert_eq!(w.snapshot(Class::Other).len(), 0);
        std::thread::sleep(Duration::from_millis(700));
        assert_eq!(w.snapshot(Class::Count).len(), 0, "values older than the window are gone");
    }
}
