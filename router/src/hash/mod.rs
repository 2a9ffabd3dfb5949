//! PostgreSQL's default hash-opclass support functions (the ones Citus calls through
//! `lookup_type_cache(.., TYPECACHE_HASH_PROC_FINFO)`), one type family per file.

mod ints;
mod lookup3;
mod text;

pub use ints::{hash_bool, hash_char, hash_date, hash_oid, hash_timestamp, hashint2, hashint4, hashint8};
pub use lookup3::{hash_bytes, hash_bytes_uint32};
pub use text::{hash_bpchar, hash_float4, hash_float8, hash_name, hashtext, uuid_hash};

use crate::types::Datum;

/// The int32 hash Citus compares with `pg_dist_shard` ranges, or `None` for a value whose type's
/// hash function is not ported (the caller then reports the shard as unknown).
pub fn hash_datum(d: &Datum) -> Option<i32> {
    Some(match d {
        Datum::Int2(v) => hashint2(*v),
        Datum::Int4(v) => hashint4(*v),
        Datum::Int8(v) => hashint8(*v),
        Datum::Oid(v) => hash_oid(*v),
        Datum::Bool(v) => hash_bool(*v),
        Datum::Char(v) => hash_char(*v),
        Datum::Date(v) => hash_date(*v),
        Datum::Timestamp(v) => hash_timestamp(*v),
        Datum::Float4(v) => hash_float4(*v),
        Datum::Float8(v) => hash_float8(*v),
        Datum::Text(s) => hashtext(s.as_bytes()),
        Datum::BpChar(s) => hash_bpchar(s.as_bytes()),
        Datum::Name(s) => hash_name(s.as_bytes()),
        Datum::Uuid(u) => uuid_hash(u),
        Datum::Unhashable => return None,
    })
}
