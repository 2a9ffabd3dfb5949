//! Log output through `tracing`: human-readable or one JSON object per line, on stderr.
//!
//! Lines go through a bounded queue to one writer thread that drops lines when the queue is
//! full: a stderr nobody reads (a full pipe) or that is closed (EPIPE) can never block or break
//! the listeners, /metrics or signal handling. The filter is `log.level`, swappable at run time
//! (SIGHUP / RELOAD); which of `--log-level`, `RUST_LOG` and the file wins is decided by the
//! configuration loader like for every other key.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

use crate::config::{Log, LogFormat};

static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Keeps the writer thread; `finish` flushes what is queued, without waiting on a stuck stderr.
pub struct LogGuard(Option<WorkerGuard>);

impl LogGuard {
    /// Flushes queued lines, waiting at most a second: a blocked stderr must not hold the exit.
    pub fn finish(mut self) {
        let Some(guard) = self.0.take() else { return };
        let (done, wait) = std::sync::mpsc::channel();
        let flusher = std::thread::Builder::new().name("citus-proxy-log-flush".into()).spawn(move || {
            drop(guard);
            let _ = done.send(());
        });
        if flusher.is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(1));
        }
    }
}

/// Installs the global subscriber with `log.level` as the filter.
pub fn init(log: &Log) -> Result<LogGuard, String> {
    let (filter, handle) = reload::Layer::new(filter_of(&log.level)?);
    let (writer, guard) = NonBlockingBuilder::default().lossy(true).thread_name("citus-proxy-log").finish(QuietStderr);
    // Colour codes only for a person at a terminal, never into files or pipes.
    let ansi = std::io::stderr().is_terminal();
    let layer = fmt::layer().with_writer(writer).with_ansi(ansi);
    let res = match log.format {
        LogFormat::Human => tracing_subscriber::registry().with(filter).with(layer).try_init(),
        LogFormat::Json => tracing_subscriber::registry().with(filter).with(layer.json().flatten_event(true)).try_init(),
    };
    res.map_err(|e| e.to_string())?;
    let _ = FILTER.set(handle);
    Ok(LogGuard(Some(guard)))
}

/// Replaces the filter of the running process (SIGHUP / RELOAD).
pub fn set_level(level: &str) -> Result<(), String> {
    let filter = filter_of(level)?;
    let handle = FILTER.get().ok_or("logging is not initialised in this process")?;
    handle.reload(filter).map_err(|e| e.to_string())
}

fn filter_of(level: &str) -> Result<EnvFilter, String> {
    EnvFilter::try_new(level).map_err(|e| format!("configuration key `log.level`: {e}"))
}

/// stderr whose write errors (EPIPE on a closed pipe) are swallowed: a log line that cannot be
/// written is dropped, and the writer thread never prints about it (which would fail the same way).
struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
