//! Shutdown phases, broadcast to the listener and every session. SIGTERM drains (no new clients,
//! running transactions finish up to `shutdown.timeout`); SIGINT or the end of the drain closes at once.

use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Running,
    Draining,
    Closing,
}

/// The sending side, kept by whoever decides when to stop (main, or a test).
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: watch::Sender<Phase>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown { tx: watch::Sender::new(Phase::Running) }
    }
}

impl Shutdown {
    pub fn subscribe(&self) -> watch::Receiver<Phase> {
        self.tx.subscribe()
    }
    /// Stop accepting and let transactions finish.
    pub fn drain(&self) {
        self.tx.send_if_modified(|p| advance(p, Phase::Draining));
    }
    /// Close every connection now.
    pub fn close_now(&self) {
        self.tx.send_if_modified(|p| advance(p, Phase::Closing));
    }
}

fn advance(p: &mut Phase, to: Phase) -> bool {
    if *p < to {
        *p = to;
        true
    } else {
        false
    }
}

/// Waits until the phase is at least `at`.
pub async fn reached(rx: &mut watch::Receiver<Phase>, at: Phase) {
    let _ = rx.wait_for(|p| *p >= at).await;
}
