//! Cancel keys. Each client gets a key of the proxy's own (so it never learns, or can guess, an
//! upstream backend's key); a CancelRequest presenting it is forwarded with the upstream key.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

use crate::wire::backend_key::CancelKey;

#[derive(Debug)]
pub struct CancelRegistry {
    map: DashMap<i32, (Vec<u8>, CancelKey)>,
    next_pid: AtomicI32,
}

impl Default for CancelRegistry {
    fn default() -> Self {
        let mut seed = [0u8; 4];
        let _ = getrandom::fill(&mut seed);
        CancelRegistry { map: DashMap::new(), next_pid: AtomicI32::new((i32::from_be_bytes(seed) & 0x3fff_ffff) | 1) }
    }
}

/// Removes the session's key when the session ends.
pub struct Registration {
    registry: Arc<CancelRegistry>,
    pid: i32,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.map.remove(&self.pid);
    }
}

impl CancelRegistry {
    /// Issues a client key for `upstream` (same secret length, so 3.0 and 3.2 clients both fit).
    pub fn register(self: &Arc<Self>, upstream: CancelKey) -> (CancelKey, Registration) {
        let mut secret = vec![0u8; upstream.secret.len()];
        // Without randomness the key would be guessable; fall back to a clock-derived value
        // rather than refusing the client (getrandom does not fail on Linux in practice).
        if getrandom::fill(&mut secret).is_err() {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            for (i, b) in secret.iter_mut().enumerate() {
                *b = (t >> ((i % 16) * 8)) as u8;
            }
        }
        let pid = loop {
            let p = self.next_pid.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff;
            if p != 0 && !self.map.contains_key(&p) {
                break p;
            }
        };
        self.map.insert(pid, (secret.clone(), upstream));
        (CancelKey { pid, secret }, Registration { registry: Arc::clone(self), pid })
    }

    /// The upstream key for a client's CancelRequest, if the key is one we issued.
    pub fn lookup(&self, presented: &CancelKey) -> Option<CancelKey> {
        let entry = self.map.get(&presented.pid)?;
        let (secret, upstream) = entry.value();
        constant_time_eq(secret, &presented.secret).then(|| upstream.clone())
    }

    pub fn len(&self) -> usize {
        self.map.len()
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
    fn issues_distinct_keys_and_checks_secrets() {
        let reg = Arc::new(CancelRegistry::default());
        let up = CancelKey { pid: 77, secret: vec![1, 2, 3, 4] };
        let (k1, g1) = reg.register(up.clone());
        let (k2, _g2) = reg.register(up.clone());
        assert_ne!(k1.pid, k2.pid);
        assert_eq!(reg.lookup(&k1), Some(up));
        let mut wrong = k1.clone();
        wrong.secret[0] ^= 1;
        assert_eq!(reg.lookup(&wrong), None);
        drop(g1);
        assert_eq!(reg.lookup(&k1), None);
        assert_eq!(reg.len(), 1);
    }
}
