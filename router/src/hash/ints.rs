//! Integer-like types: all end in `hash_bytes_uint32` of a 32-bit value.

use super::lookup3::hash_bytes_uint32;

pub fn hashint4(v: i32) -> i32 {
    hash_bytes_uint32(v as u32) as i32
}

/// int2 is widened with its sign before hashing, so it agrees with int4.
pub fn hashint2(v: i16) -> i32 {
    hashint4(i32::from(v))
}

/// int8 folds the high half into the low half (complemented for negatives) so that values in
/// int4 range hash exactly like int4.
pub fn hashint8(v: i64) -> i32 {
    let lo = v as u32;
    let hi = (v >> 32) as u32;
    let folded = if v >= 0 { lo ^ hi } else { lo ^ !hi };
    hash_bytes_uint32(folded) as i32
}

pub fn hash_oid(v: u32) -> i32 {
    hash_bytes_uint32(v) as i32
}

/// `"char"` is a signed C char, widened with its sign.
pub fn hash_char(v: i8) -> i32 {
    hashint4(i32::from(v))
}

/// bool's hash opclass hashes the byte like `"char"`.
pub fn hash_bool(v: bool) -> i32 {
    hashint4(i32::from(v))
}

/// `timestamp_hash` is `hashint8` over microseconds since 2000-01-01.
pub fn hash_timestamp(usecs: i64) -> i32 {
    hashint8(usecs)
}

/// date's hash opclass is `hashint4` over days since 2000-01-01.
pub fn hash_date(days: i32) -> i32 {
    hashint4(days)
}
