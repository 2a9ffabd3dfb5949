//! Framing: every message after startup is `tag(1) | length(4, includes itself) | body`.

/// Bytes in a message header: the tag and the length.
pub const HEADER_LEN: usize = 5;

/// The declared total size of the frame starting at `header` (tag included), if the length field is sane.
#[inline]
pub fn total_len(header: &[u8; HEADER_LEN]) -> Option<usize> {
    let [_tag, len @ ..] = *header;
    let len = i32::from_be_bytes(len);
    if len < 4 {
        return None;
    }
    Some(len as usize + 1)
}

/// Message tags a frontend may send after startup (protocol 3.x).
#[inline]
pub fn is_frontend_tag(tag: u8) -> bool {
    matches!(tag, b'Q' | b'P' | b'B' | b'D' | b'E' | b'C' | b'S' | b'H' | b'F' | b'd' | b'c' | b'f' | b'X' | b'p')
}

/// PostgreSQL's bound on the length field of every frontend message except the ones that carry
/// statements or data (PQ_SMALL_MESSAGE_LIMIT). It drops the connection without a word on a
/// bigger one, so the proxy refuses it first and the client learns it was its message.
pub const SMALL_MESSAGE_LIMIT: usize = 10_000;

/// Whether PostgreSQL accepts a `tag` frame of `total` bytes (tag included) as far as its size
/// goes: Query, FunctionCall, Parse, Bind and CopyData may be large (up to
/// `limits.max_message_size`), everything else is small.
#[inline]
pub fn within_backend_limit(tag: u8, total: usize) -> bool {
    matches!(tag, b'Q' | b'F' | b'P' | b'B' | b'd') || total - 1 <= SMALL_MESSAGE_LIMIT
}

/// Builds a frame from a tag and a body.
pub fn build(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.push(tag);
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}
