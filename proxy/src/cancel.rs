//! Cancel keys. A client sees its backend's real PID (so `pg_backend_pid()`, NOTIFY senders and
//! `pg_stat_activity` agree with what the driver was told) with a secret of the proxy's own, so
//! it never learns the upstream secret. A CancelRequest presenting the (PID, secret) pair is
//! forwarded with the upstream key.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

use crate::wire::backend_key::CancelKey;

/// One issued key: the secret the client got and the backend it stands for.
#[derive(Debug)]
struct Issued {
    id: u64,
    secret: Vec<u8>,
    target: Target,
}

/// What a client's cancel key reaches.
#[derive(Debug, Clone)]
pub enum Target {
    /// The client's own coordinator backend (`pool.mode = off`).
    Upstream(CancelKey),
    /// Whichever pooled server connection serves the client at the moment.
    Pooled(Arc<crate::session::PooledCancel>),
}

#[derive(Debug, Default)]
pub struct CancelRegistry {
    /// By PID. A PID is normally one backend's, but the pair is what identifies a key, so a
    /// reused PID (a backend gone and its number handed out again) never matches a stale key.
    map: DashMap<i32, Vec<Issued>>,
    next_id: AtomicU64,
}

/// Removes the session's key when the session ends.
pub struct Registration {
    registry: Arc<CancelRegistry>,
    pid: i32,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.map.remove_if_mut(&self.pid, |_, keys| {
            keys.retain(|k| k.id != self.id);
            keys.is_empty()
        });
    }
}

impl CancelRegistry {
    /// Issues a client key for `upstream`: the same PID, a fresh secret of the same length (so
    /// protocol 3.0 and 3.2 clients both get a key they can hold).
    pub fn register(self: &Arc<Self>, upstream: CancelKey) -> (CancelKey, Registration) {
        let (pid, len) = (upstream.pid, upstream.secret.len());
        self.issue(pid, len, Target::Upstream(upstream))
    }

    /// Issues a key for a pooled client: a PID of the proxy's own (the client has no backend of
    /// its own) and a 4-byte secret.
    pub fn register_pooled(self: &Arc<Self>, target: Arc<crate::session::PooledCancel>) -> (CancelKey, Registration) {
        // Above PostgreSQL's largest PID (2^22), so it is never mistaken for a backend's.
        let pid = (1 << 23) + (self.next_id.load(Ordering::Relaxed) % (1 << 30)) as i32;
        self.issue(pid, 4, Target::Pooled(target))
    }

    fn issue(self: &Arc<Self>, pid: i32, len: usize, target: Target) -> (CancelKey, Registration) {
        let mut secret = vec![0u8; len];
        // Without randomness the key would be guessable; fall back to a clock-derived value
        // rather than refusing the client (getrandom does not fail on Linux in practice).
        if getrandom::fill(&mut secret).is_err() {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            for (i, b) in secret.iter_mut().enumerate() {
                *b = (t >> ((i % 16) * 8)) as u8;
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.map.entry(pid).or_default().push(Issued { id, secret: secret.clone(), target });
        (CancelKey { pid, secret }, Registration { registry: Arc::clone(self), pid, id })
    }

    /// What a client's CancelRequest reaches, if the pair is one we issued.
    pub fn lookup_target(&self, presented: &CancelKey) -> Option<Target> {
        let entry = self.map.get(&presented.pid)?;
        entry.iter().find(|k| constant_time_eq(&k.secret, &presented.secret)).map(|k| k.target.clone())
    }

    /// The upstream key for a client's CancelRequest, if the pair is one we issued for a
    /// client with a backend of its own.
    pub fn lookup(&self, presented: &CancelKey) -> Option<CancelKey> {
        match self.lookup_target(presented)? {
            Target::Upstream(k) => Some(k),
            Target::Pooled(_) => None,
        }
    }

    /// Keys issued and not yet released.
    pub fn len(&self) -> usize {
        self.map.iter().map(|e| e.value().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_pid_and_checks_the_secret() {
        let reg = Arc::new(CancelRegistry::default());
        let up = CancelKey { pid: 77, secret: vec![1, 2, 3, 4] };
        let (k1, g1) = reg.register(up.clone());
        assert_eq!(k1.pid, 77, "the client sees the backend's PID");
        assert_ne!(k1.secret, up.secret, "but never the backend's secret");
        assert_eq!(reg.lookup(&k1), Some(up.clone()));
        let mut wrong = k1.clone();
        wrong.secret[0] ^= 1;
        assert_eq!(reg.lookup(&wrong), None);
        assert_eq!(reg.lookup(&up), None, "the upstream secret itself is not a key");
        // The same PID again (reused by a new backend): both pairs stay distinct.
        let up2 = CancelKey { pid: 77, secret: vec![5, 6, 7, 8] };
        let (k2, _g2) = reg.register(up2.clone());
        assert_eq!(reg.lookup(&k2), Some(up2));
        drop(g1);
        assert_eq!(reg.lookup(&k1), None);
        assert_eq!(reg.len(), 1);
    }

    #[test]
    fn protocol_3_2_secrets_keep_their_length() {
        let reg = Arc::new(CancelRegistry::default());
        let up = CancelKey { pid: 9, secret: (0..32).collect() };
        let (k, _g) = reg.register(up.clone());
        assert_eq!(k.secret.len(), 32);
        assert_eq!(reg.lookup(&k), Some(up));
        let mut short = k.clone();
        short.secret.truncate(4);
        assert_eq!(reg.lookup(&short), None);
    }
}
