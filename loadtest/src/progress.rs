//! The live progress bar on stderr: redrawn in place when stderr is a terminal, otherwise only
//! the notes (scenario start/end) are printed, so CI logs stay readable.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    tty: bool,
    quiet: bool,
    running: AtomicBool,
    total_units: AtomicU64,
    done_units: AtomicU64,
    ops: AtomicU64,
    errors: AtomicU64,
    label: Mutex<String>,
    started: Instant,
}

const WIDTH: usize = 30;

impl Progress {
    /// `enabled` false (--no-progress) keeps the notes but never draws the bar.
    pub fn new(enabled: bool) -> Progress {
        Progress::with(enabled && std::io::stderr().is_terminal(), false)
    }

    /// A progress that prints nothing (library use, tests).
    pub fn silent() -> Progress {
        Progress::with(false, true)
    }

    fn with(tty: bool, quiet: bool) -> Progress {
        Progress {
            inner: Arc::new(Inner {
                tty,
                quiet,
                running: AtomicBool::new(false),
                total_units: AtomicU64::new(0),
                done_units: AtomicU64::new(0),
                ops: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                label: Mutex::new(String::new()),
                started: Instant::now(),
            }),
        }
    }

    /// Starts redrawing every 200 ms until `finish`; `units` is the number of slices to run.
    pub fn start(&self, units: u64) {
        self.inner.total_units.store(units.max(1), Ordering::Relaxed);
        if !self.inner.tty || self.inner.running.swap(true, Ordering::Relaxed) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            while me.inner.running.load(Ordering::Relaxed) {
                tick.tick().await;
                me.draw();
            }
        });
    }

    pub fn set_label(&self, label: String) {
        if let Ok(mut l) = self.inner.label.lock() {
            *l = label;
        }
    }

    pub fn op(&self, error: bool) {
        self.inner.ops.fetch_add(1, Ordering::Relaxed);
        if error {
            self.inner.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn units_done(&self, n: u64) {
        self.inner.done_units.fetch_add(n, Ordering::Relaxed);
    }

    /// A line of its own (the bar is cleared first and redrawn on the next tick).
    pub fn note(&self, msg: &str) {
        if self.inner.quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.inner.tty {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{msg}");
    }

    pub fn finish(&self) {
        if self.inner.running.swap(false, Ordering::Relaxed) {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }

    fn draw(&self) {
        if !self.inner.running.load(Ordering::Relaxed) {
            return;
        }
        let i = &self.inner;
        let total = i.total_units.load(Ordering::Relaxed).max(1);
        let done = i.done_units.load(Ordering::Relaxed).min(total);
        let filled = (done as usize * WIDTH) / total as usize;
        let label = i.label.lock().map(|l| l.clone()).unwrap_or_default();
        let line = format!(
            "[{}{}] {:>3}%  {label}  ops {}  errors {}  {:.0}s",
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            done * 100 / total,
            i.ops.load(Ordering::Relaxed),
            i.errors.load(Ordering::Relaxed),
            i.started.elapsed().as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }
}
