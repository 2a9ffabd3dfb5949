//! Thread-per-core session workers: one single-threaded tokio runtime per thread, each client
//! connection pinned to one. No work stealing means no cross-thread wakeups on the relay's hot
//! path, which on a small machine shared with the database is the proxy's main CPU cost.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;

thread_local! {
    /// The worker this thread is (usize::MAX: not a worker thread).
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// Which worker thread the caller runs on (usize::MAX when not on one). A socket is served by the
/// reactor of the runtime that registered it, so pooled connections prefer their own worker.
pub fn current() -> usize {
    WORKER.with(|w| w.get())
}

pub struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

impl Workers {
    /// Starts `n` worker threads (0 = one per CPU core).
    pub fn start(n: usize) -> std::io::Result<Workers> {
        let n = if n == 0 { std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1) } else { n };
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            handles.push(rt.handle().clone());
            std::thread::Builder::new().name(format!("citus-proxy-worker-{i}")).spawn(move || {
                WORKER.with(|w| w.set(i));
                rt.block_on(std::future::pending::<()>())
            })?;
        }
        Ok(Workers { handles, next: AtomicUsize::new(0) })
    }

    /// The worker for the next connection (round robin).
    #[allow(clippy::indexing_slicing)] // taken modulo the length, and `new` starts at least one worker
    pub fn next(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len().max(1);
        &self.handles[i]
    }
}
