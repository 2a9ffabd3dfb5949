//! Servers started for a test binary must not outlive it, but statics are never dropped. A tiny
//! shell loop watches this process and runs the stop command once it is gone.

use std::process::{Command, Stdio};

pub(crate) fn stop_when_this_process_exits(stop_command: &str) {
    let script = format!("while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop_command}", pid = std::process::id());
    let spawned = Command::new("sh").arg("-c").arg(script).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    if let Err(e) = spawned {
        eprintln!("test harness: could not start the clean-up watcher ({e}); stop it by hand: {stop_command}");
    }
}

/// Quotes a string for `sh`.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
