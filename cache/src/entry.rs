//! A cached response: exactly the bytes the coordinator sent (RowDescription … CommandComplete,
//! without ReadyForQuery, which the proxy writes itself with the session's own status).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

use crate::error::CacheError;
use crate::policy::BypassReason;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    bytes: Bytes,
    /// Wall clock, because entries travel between instances through Redis.
    created_at: SystemTime,
    ttl: Duration,
}

impl Entry {
    /// `ttl` is capped at [`MAX_TTL`] (a hint may ask for anything; clocks must not overflow).
    pub fn new(bytes: Bytes, ttl: Duration) -> Entry {
        Entry { bytes, created_at: SystemTime::now(), ttl: ttl.min(MAX_TTL) }
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Time left before the entry expires (zero once expired, or if the clock went backwards
    /// far enough to make the age unknowable: better a miss than an over-aged hit).
    pub fn remaining(&self) -> Duration {
        match SystemTime::now().duration_since(self.created_at) {
            Ok(age) => self.ttl.saturating_sub(age),
            Err(_) => Duration::ZERO,
        }
    }

    /// Size charged against the memory bound.
    pub(crate) fn weight(&self) -> usize {
        self.bytes.len() + ENTRY_OVERHEAD
    }

    /// Redis value: magic, version, created-at and ttl in milliseconds, then the bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let created = self.created_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let mut v = Vec::with_capacity(HEADER + self.bytes.len());
        v.extend_from_slice(MAGIC);
        v.extend_from_slice(&created.to_le_bytes());
        v.extend_from_slice(&(self.ttl.as_millis() as u64).to_le_bytes());
        v.extend_from_slice(&self.bytes);
        v
    }

    pub(crate) fn decode(v: &[u8]) -> Result<Entry, CacheError> {
        // What Redis returns is not trusted to be ours: every read is checked.
        let bad = || CacheError::Corrupt("bad header");
        let (magic, rest) = v.split_first_chunk::<4>().ok_or_else(bad)?;
        if magic != MAGIC {
            return Err(bad());
        }
        let (created, rest) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
        let (ttl, body) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
        Ok(Entry {
            created_at: UNIX_EPOCH + Duration::from_millis(u64::from_le_bytes(*created)),
            ttl: Duration::from_millis(u64::from_le_bytes(*ttl)).min(MAX_TTL),
            bytes: Bytes::copy_from_slice(body),
        })
    }
}

/// The longest an entry lives, whatever its rule or hint says.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

const MAGIC: &[u8; 4] = b"CPC1";
const HEADER: usize = 4 + 8 + 8;
/// Approximate bookkeeping per in-process entry (map slot, key, eviction ring), so that many
/// tiny entries cannot exceed the bound by their overhead.
pub(crate) const ENTRY_OVERHEAD: usize = 160;

/// Checks that a response may be stored and replayed to another client: complete messages,
/// no ErrorResponse, nothing session- or stream-specific, ends with CommandComplete or
/// EmptyQueryResponse, no ReadyForQuery.
pub fn validate_response(bytes: &[u8]) -> Result<(), BypassReason> {
    let mut at = 0;
    let mut last = None;
    while let Some((&tag, rest)) = bytes.get(at..).and_then(<[u8]>::split_first) {
        let len = rest.first_chunk::<4>().map(|b| u32::from_be_bytes(*b) as usize).ok_or(BypassReason::UnsupportedResponse)?;
        if len < 4 || at + 1 + len > bytes.len() {
            return Err(BypassReason::UnsupportedResponse);
        }
        match tag {
            b'E' => return Err(BypassReason::ErrorResult),
            // RowDescription, DataRow, CommandComplete, EmptyQueryResponse, NoData,
            // ParseComplete, BindComplete, ParameterDescription, NoticeResponse.
            b'T' | b'D' | b'C' | b'I' | b'n' | b'1' | b'2' | b't' | b'N' => {}
            // ReadyForQuery, ParameterStatus, NotificationResponse, COPY, PortalSuspended, …
            _ => return Err(BypassReason::UnsupportedResponse),
        }
        last = Some(tag);
        at += 1 + len;
    }
    match last {
        Some(b'C') | Some(b'I') => Ok(()),
        _ => Err(BypassReason::UnsupportedResponse),
    }
}

/// Accumulates a response while the proxy relays it, up to a byte limit: past it the buffer is
/// dropped (the response is still relayed, just not cached).
#[derive(Debug)]
pub struct ResponseCollector {
    buf: BytesMut,
    limit: usize,
    over: bool,
}

impl ResponseCollector {
    pub fn new(limit: usize) -> Self {
        ResponseCollector { buf: BytesMut::new(), limit, over: false }
    }

    /// Appends relayed bytes; false once the limit is exceeded.
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        if !self.over {
            if self.buf.len() + bytes.len() > self.limit {
                self.over = true;
                self.buf = BytesMut::new();
            } else {
                self.buf.extend_from_slice(bytes);
            }
        }
        !self.over
    }

    /// The collected bytes, or why they cannot be cached.
    pub fn finish(self) -> Result<Bytes, BypassReason> {
        if self.over {
            return Err(BypassReason::TooLarge);
        }
        let bytes = self.buf.freeze();
        validate_response(&bytes)?;
        Ok(bytes)
    }
}
