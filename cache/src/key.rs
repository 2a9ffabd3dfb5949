//! Cache keys: SHA-256 over everything that can change a result.
//!
//! Built in two steps so that re-deriving a key for fresher generations is cheap:
//! [`KeyParts`] hashes the session and the statement once; [`Key::derive`] adds the generation
//! snapshot (epoch and the counters of every table/shard read). Every field is tagged and
//! length-prefixed, so no two different inputs hash the same byte stream.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::facts::SessionView;
use crate::generations::Snapshot;

/// A cache key: 256 bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key([u8; 32]);

impl Key {
    /// The key of `parts` under the generations in `snapshot`.
    pub fn derive(parts: &KeyParts, snapshot: &Snapshot) -> Key {
        let mut h = Sha256::new();
        h.update(b"citus-proxy-key-v1");
        h.update(parts.0);
        snapshot.hash_into(&mut h);
        Key(h.finalize().into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", &self.to_hex()[..16])
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// How the statement arrived, which decides the shape of the response bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Query message.
    Simple,
    /// [Parse]/Bind/[Describe]/Execute; `parse` when the batch held the Parse (the response
    /// then starts with ParseComplete), `describe` when the portal was described (it then
    /// carries a RowDescription or NoData).
    Extended { parse: bool, describe: bool },
}

/// The hash of everything but the generations. Build with [`KeyParts::builder`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyParts([u8; 32]);

impl fmt::Debug for KeyParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyParts(..)")
    }
}

impl KeyParts {
    /// Starts a key with the session's database, role and result-affecting settings.
    pub fn builder(session: &SessionView) -> KeyBuilder {
        KeyParts::builder_from(&SessionPrefix::new(session))
    }

    /// Starts a key from a session part hashed earlier (see [`SessionPrefix`]).
    pub fn builder_from(prefix: &SessionPrefix) -> KeyBuilder {
        KeyBuilder { h: prefix.0.clone() }
    }
}

/// The session's part of every key it looks up (database, role, settings), hashed once: keep
/// one per session and make a new one when its settings change.
#[derive(Clone)]
pub struct SessionPrefix(Sha256);

impl fmt::Debug for SessionPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionPrefix(..)")
    }
}

impl SessionPrefix {
    pub fn new(session: &SessionView) -> SessionPrefix {
        let mut b = KeyBuilder { h: Sha256::new() };
        b.field(b'd', session.database.as_bytes());
        b.field(b'r', session.role.as_bytes());
        // Every setting the session view holds: a query can read any of them (current_setting()
        // in a view or a row-level-security policy), so the caller leaves out only those an
        // operator declared irrelevant. Names are case-insensitive in PostgreSQL; values are
        // kept verbatim (a different spelling of the same value only costs a miss).
        let mut settings: Vec<(String, &str)> = session.settings.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_str())).collect();
        settings.sort();
        settings.dedup_by(|a, b| a.0 == b.0);
        b.count(b'S', settings.len());
        for (k, v) in settings {
            b.field(b'k', k.as_bytes());
            b.field(b'v', v.as_bytes());
        }
        SessionPrefix(b.h)
    }
}

/// Accumulates the statement's parts. Call each method at most once, in any fixed order.
pub struct KeyBuilder {
    h: Sha256,
}

impl KeyBuilder {
    fn field(&mut self, tag: u8, data: &[u8]) {
        self.h.update([tag]);
        self.h.update((data.len() as u64).to_le_bytes());
        self.h.update(data);
    }

    fn count(&mut self, tag: u8, n: usize) {
        self.h.update([tag]);
        self.h.update((n as u64).to_le_bytes());
    }

    /// The statement text exactly as sent (hint comments included).
    pub fn statement(mut self, text: &str) -> Self {
        self.field(b'q', text.as_bytes());
        self
    }

    pub fn protocol(mut self, protocol: Protocol) -> Self {
        let tag = match protocol {
            Protocol::Simple => 0u8,
            Protocol::Extended { parse: false, describe: false } => 1,
            Protocol::Extended { parse: false, describe: true } => 2,
            Protocol::Extended { parse: true, describe: false } => 3,
            Protocol::Extended { parse: true, describe: true } => 4,
        };
        self.field(b'p', &[tag]);
        self
    }

    /// Parameter type OIDs declared by Parse (they change how values are read).
    pub fn param_types(mut self, oids: &[u32]) -> Self {
        self.count(b'o', oids.len());
        for oid in oids {
            self.h.update(oid.to_le_bytes());
        }
        self
    }

    /// Bind's parameter format codes.
    pub fn param_formats(mut self, formats: &[i16]) -> Self {
        self.formats(b'f', formats);
        self
    }

    /// Bind's parameter values; None is SQL NULL.
    pub fn params<'a>(mut self, values: impl IntoIterator<Item = Option<&'a [u8]>>) -> Self {
        let values: Vec<Option<&[u8]>> = values.into_iter().collect();
        self.count(b'P', values.len());
        for value in values {
            match value {
                None => self.h.update([0u8]),
                Some(v) => self.field(1, v),
            }
        }
        self
    }

    /// Bind's result-column format codes.
    pub fn result_formats(mut self, formats: &[i16]) -> Self {
        self.formats(b'R', formats);
        self
    }

    fn formats(&mut self, tag: u8, formats: &[i16]) {
        self.count(tag, formats.len());
        for f in formats {
            self.h.update(f.to_le_bytes());
        }
    }

    pub fn finish(self) -> KeyParts {
        KeyParts(self.h.finalize().into())
    }
}
