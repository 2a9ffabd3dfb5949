//! Byte-string types (deterministic collations only), uuid and floats: `hash_bytes` over raw bytes.

use super::lookup3::hash_bytes;

/// text and varchar under a deterministic collation: the stored bytes, untouched.
pub fn hashtext(bytes: &[u8]) -> i32 {
    hash_bytes(bytes) as i32
}

/// bpchar ignores trailing spaces (they are not significant for character(n)).
pub fn hash_bpchar(bytes: &[u8]) -> i32 {
    let end = bytes.iter().rposition(|b| *b != b' ').map_or(0, |i| i + 1);
    hash_bytes(bytes.get(..end).unwrap_or_default()) as i32
}

/// name hashes up to its first NUL (names are stored NUL-padded).
pub fn hash_name(bytes: &[u8]) -> i32 {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    hash_bytes(bytes.get(..end).unwrap_or_default()) as i32
}

pub fn uuid_hash(u: &[u8; 16]) -> i32 {
    hash_bytes(u) as i32
}

/// float8: both zeros hash to 0 and every NaN hashes like the canonical NaN; otherwise the
/// native (little-endian) bytes.
pub fn hash_float8(v: f64) -> i32 {
    if v == 0.0 {
        return 0;
    }
    let v = if v.is_nan() { f64::NAN } else { v };
    hash_bytes(&v.to_le_bytes()) as i32
}

/// float4 widens to float8 first so equal values hash alike across the two types.
pub fn hash_float4(v: f32) -> i32 {
    hash_float8(f64::from(v))
}
