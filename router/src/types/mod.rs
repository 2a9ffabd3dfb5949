//! PostgreSQL types the router understands: type OIDs, typed values (`Datum`) and the input
//! functions that turn literals and Bind parameters into them.

mod binary;
mod coerce;
mod input;

pub use binary::decode_binary;
pub use coerce::{coerce, Value};
pub use input::{parse_array_text, parse_input};

use serde::Serialize;

/// A distribution-column or parameter type, by OID. Only the listed types can be hashed;
/// anything else is kept as `Other(oid)` so the router can still say "one shard, which one unknown".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum PgType {
    Bool,
    Char,
    Name,
    Int8,
    Int2,
    Int4,
    Text,
    Oid,
    Float4,
    Float8,
    BpChar,
    Varchar,
    Date,
    /// `timestamp` without time zone (timestamptz depends on the session's TimeZone: not hashed).
    Timestamp,
    Uuid,
    Numeric,
    Unknown,
    Other(u32),
}

impl PgType {
    pub fn from_oid(oid: u32) -> PgType {
        match oid {
            16 => PgType::Bool,
            18 => PgType::Char,
            19 => PgType::Name,
            20 => PgType::Int8,
            21 => PgType::Int2,
            23 => PgType::Int4,
            25 => PgType::Text,
            26 => PgType::Oid,
            700 => PgType::Float4,
            701 => PgType::Float8,
            705 => PgType::Unknown,
            1042 => PgType::BpChar,
            1043 => PgType::Varchar,
            1082 => PgType::Date,
            1114 => PgType::Timestamp,
            1700 => PgType::Numeric,
            2950 => PgType::Uuid,
            other => PgType::Other(other),
        }
    }

    pub fn oid(self) -> u32 {
        match self {
            PgType::Bool => 16,
            PgType::Char => 18,
            PgType::Name => 19,
            PgType::Int8 => 20,
            PgType::Int2 => 21,
            PgType::Int4 => 23,
            PgType::Text => 25,
            PgType::Oid => 26,
            PgType::Float4 => 700,
            PgType::Float8 => 701,
            PgType::Unknown => 705,
            PgType::BpChar => 1042,
            PgType::Varchar => 1043,
            PgType::Date => 1082,
            PgType::Timestamp => 1114,
            PgType::Numeric => 1700,
            PgType::Uuid => 2950,
            PgType::Other(o) => o,
        }
    }

    /// A SQL type name as written in casts (`bigint`, `int8`, `character varying`, …).
    pub fn from_sql_name(name: &str) -> Option<PgType> {
        let n = name.trim().to_ascii_lowercase();
        let n = n.strip_prefix("pg_catalog.").unwrap_or(&n);
        // Drop a type modifier such as varchar(20) / character(5).
        let base = n.split('(').next().unwrap_or(n).trim();
        Some(match base {
            "bool" | "boolean" => PgType::Bool,
            "\"char\"" => PgType::Char,
            "name" => PgType::Name,
            "int8" | "bigint" => PgType::Int8,
            "int2" | "smallint" => PgType::Int2,
            "int4" | "int" | "integer" => PgType::Int4,
            "text" => PgType::Text,
            "oid" => PgType::Oid,
            "float4" | "real" => PgType::Float4,
            "float8" | "double precision" | "float" => PgType::Float8,
            "bpchar" | "char" | "character" => PgType::BpChar,
            "varchar" | "character varying" => PgType::Varchar,
            "date" => PgType::Date,
            "timestamp" | "timestamp without time zone" => PgType::Timestamp,
            "numeric" | "decimal" => PgType::Numeric,
            "uuid" => PgType::Uuid,
            _ => return None,
        })
    }

    /// Whether this crate ports the type's hash function.
    pub fn is_hashable(self) -> bool {
        !matches!(self, PgType::Numeric | PgType::Unknown | PgType::Other(_))
    }

    pub fn is_integer(self) -> bool {
        matches!(self, PgType::Int2 | PgType::Int4 | PgType::Int8)
    }

    pub fn is_textual(self) -> bool {
        matches!(self, PgType::Text | PgType::Varchar | PgType::BpChar | PgType::Name)
    }
}

/// A value of a distribution column's type, ready to hash.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    Int2(i16),
    Int4(i32),
    Int8(i64),
    Oid(u32),
    Bool(bool),
    Char(i8),
    /// Days since 2000-01-01.
    Date(i32),
    /// Microseconds since 2000-01-01 00:00 (i64::MIN / MAX: -infinity / infinity).
    Timestamp(i64),
    Float4(f32),
    Float8(f64),
    Text(Box<str>),
    BpChar(Box<str>),
    Name(Box<str>),
    Uuid([u8; 16]),
    /// A valid value of a type whose hash function is not ported.
    Unhashable,
}

impl Datum {
    /// Text form for explanations.
    pub fn display(&self) -> String {
        match self {
            Datum::Int2(v) => v.to_string(),
            Datum::Int4(v) => v.to_string(),
            Datum::Int8(v) => v.to_string(),
            Datum::Oid(v) => v.to_string(),
            Datum::Bool(v) => v.to_string(),
            Datum::Char(v) => v.to_string(),
            Datum::Date(v) => format!("date#{v}"),
            Datum::Timestamp(v) => format!("timestamp#{v}"),
            Datum::Float4(v) => v.to_string(),
            Datum::Float8(v) => v.to_string(),
            Datum::Text(s) | Datum::BpChar(s) | Datum::Name(s) => format!("'{}'", s.replace('\'', "''")),
            Datum::Uuid(u) => format!("'{}'", format_uuid(u)),
            Datum::Unhashable => "?".to_string(),
        }
    }
}

pub fn format_uuid(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}
