//! Source-typed values (what a literal, cast or parameter evaluates to) and their coercion to the
//! distribution column's type, the way Citus coerces a pruning constant before hashing
//! (e.g. `user_id = 42.5` prunes to the shard of 43: numeric → int8 rounds half away from zero).

use super::input::{parse_input, parse_int, USECS_PER_DAY};
use super::{Datum, PgType};

/// A constant with the type PostgreSQL would give it before coercion to the column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// An untyped string literal or a text parameter of unspecified type.
    Unknown(Box<str>),
    /// int2/int4/int8 (the type is kept for explanations and overflow rules).
    Int(i64, PgType),
    /// A decimal literal such as `42.5` or `1e3`, kept exact as text.
    Numeric(Box<str>),
    Float(f64, PgType),
    /// text/varchar/bpchar/name.
    Text(Box<str>, PgType),
    Datum(Datum),
    Array(Vec<Value>),
    /// A value of a type the router cannot interpret.
    Opaque,
}

/// Round a decimal string to an integer, half away from zero (numeric's rounding).
fn round_numeric(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, t.get(1..)?),
        Some(b'+') => (false, t.get(1..)?),
        _ => (false, t),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (body.get(..i)?, body.get(i + 1..)?.parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (mantissa.get(..i)?, mantissa.get(i + 1..)?),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).map(|b| b - b'0').collect();
    // Position of the decimal point within `digits` after applying the exponent.
    let point = i64::try_from(int_part.len()).ok()? + i64::from(exp);
    if point > 40 {
        return if digits.iter().all(|d| *d == 0) { Some(0) } else { None };
    }
    let mut v: i128 = 0;
    for i in 0..point.max(0) {
        let d = usize::try_from(i).ok().and_then(|i| digits.get(i)).copied().unwrap_or(0);
        v = v.checked_mul(10)?.checked_add(i128::from(d))?;
    }
    let first_dropped = usize::try_from(point).ok().and_then(|p| digits.get(p)).copied().unwrap_or(0);
    if point >= 0 && first_dropped >= 5 {
        v += 1;
    }
    Some(if neg { -v } else { v })
}

fn int_datum(v: i128, ty: PgType) -> Result<Datum, String> {
    let out = || format!("{v} is out of range for the column type");
    Ok(match ty {
        PgType::Int2 => Datum::Int2(i16::try_from(v).map_err(|_| out())?),
        PgType::Int4 => Datum::Int4(i32::try_from(v).map_err(|_| out())?),
        _ => Datum::Int8(i64::try_from(v).map_err(|_| out())?),
    })
}

fn text_datum(s: &str, source: PgType, target: PgType) -> Result<Datum, String> {
    // bpchar → text/varchar drops trailing spaces (rtrim in the cast).
    let s = if source == PgType::BpChar && target != PgType::BpChar { s.trim_end_matches(' ') } else { s };
    parse_input(s, target)
}

/// Coerce `v` (not NULL, not an array) to the column type `target`.
pub fn coerce(v: &Value, target: PgType) -> Result<Datum, String> {
    match (v, target) {
        (Value::Null, _) => Err("NULL".into()),
        (Value::Array(_), _) => Err("an array is not a scalar value".into()),
        (Value::Opaque, _) => Err("value of an unsupported type".into()),
        (Value::Unknown(s), t) => parse_input(s, t),
        (Value::Datum(d), t) => coerce_datum(d, t),
        (Value::Int(i, _), t) if t.is_integer() => int_datum(i128::from(*i), t),
        (Value::Int(i, _), PgType::Oid) => u32::try_from(*i).map(Datum::Oid).map_err(|e| e.to_string()),
        (Value::Int(i, _), PgType::Float8) => Ok(Datum::Float8(*i as f64)),
        (Value::Int(i, _), PgType::Float4) => Ok(Datum::Float4(*i as f32)),
        (Value::Int(..), PgType::Numeric | PgType::Other(_)) => Ok(Datum::Unhashable),
        (Value::Numeric(s), t) if t.is_integer() => int_datum(round_numeric(s).ok_or_else(|| format!("cannot round {s}"))?, t),
        (Value::Numeric(s), PgType::Float8) => s.parse().map(Datum::Float8).map_err(|_| format!("bad number {s}")),
        (Value::Numeric(s), PgType::Float4) => s.parse().map(Datum::Float4).map_err(|_| format!("bad number {s}")),
        (Value::Numeric(_), PgType::Numeric | PgType::Other(_)) => Ok(Datum::Unhashable),
        (Value::Float(f, _), t) if t.is_integer() => {
            if !f.is_finite() {
                return Err(format!("{f} is out of range"));
            }
            int_datum(f.round_ties_even() as i128, t)
        }
        (Value::Float(f, _), PgType::Float8) => Ok(Datum::Float8(*f)),
        (Value::Float(f, _), PgType::Float4) => Ok(Datum::Float4(*f as f32)),
        (Value::Text(s, src), t) if t.is_textual() => text_datum(s, *src, t),
        (Value::Text(..), PgType::Other(_)) => Ok(Datum::Unhashable),
        (v, t) => Err(format!("cannot compare {v:?} with a {t:?} column")),
    }
}

fn coerce_datum(d: &Datum, target: PgType) -> Result<Datum, String> {
    let int = |v: i64| int_datum(i128::from(v), target);
    match (d, target) {
        (Datum::Int2(v), t) if t.is_integer() => int(i64::from(*v)),
        (Datum::Int4(v), t) if t.is_integer() => int(i64::from(*v)),
        (Datum::Int8(v), t) if t.is_integer() => int(*v),
        (Datum::Uuid(u), PgType::Uuid) => Ok(Datum::Uuid(*u)),
        (Datum::Bool(b), PgType::Bool) => Ok(Datum::Bool(*b)),
        (Datum::Date(x), PgType::Date) => Ok(Datum::Date(*x)),
        (Datum::Timestamp(x), PgType::Timestamp) => Ok(Datum::Timestamp(*x)),
        // date → timestamp: midnight of the day; the infinities stay infinite.
        (Datum::Date(x), PgType::Timestamp) => Ok(Datum::Timestamp(match *x {
            i32::MIN => i64::MIN,
            i32::MAX => i64::MAX,
            d => i64::from(d) * USECS_PER_DAY,
        })),
        (Datum::Oid(x), PgType::Oid) => Ok(Datum::Oid(*x)),
        (Datum::Char(x), PgType::Char) => Ok(Datum::Char(*x)),
        (Datum::Float8(f), PgType::Float8) => Ok(Datum::Float8(*f)),
        (Datum::Float4(f), PgType::Float4) => Ok(Datum::Float4(*f)),
        (Datum::Float4(f), PgType::Float8) => Ok(Datum::Float8(f64::from(*f))),
        (Datum::Text(s), t) if t.is_textual() => text_datum(s, PgType::Text, t),
        (Datum::BpChar(s), t) if t.is_textual() => text_datum(s, PgType::BpChar, t),
        (Datum::Name(s), t) if t.is_textual() => text_datum(s, PgType::Name, t),
        (Datum::Unhashable, _) => Ok(Datum::Unhashable),
        (_, PgType::Other(_) | PgType::Numeric) => Ok(Datum::Unhashable),
        (d, t) => Err(format!("cannot compare {d:?} with a {t:?} column")),
    }
}

impl Value {
    /// An integer literal as PostgreSQL types it: int4 if it fits, else int8, else numeric.
    pub fn number_literal(text: &str) -> Value {
        if text.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(v) = parse_int(text, i64::MIN, i64::MAX, "bigint") {
                let ty = if i32::try_from(v).is_ok() { PgType::Int4 } else { PgType::Int8 };
                return Value::Int(v, ty);
            }
        }
        Value::Numeric(text.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_rounds_half_away_from_zero() {
        assert_eq!(round_numeric("42.5"), Some(43));
        assert_eq!(round_numeric("-42.5"), Some(-43));
        assert_eq!(round_numeric("42.49"), Some(42));
        assert_eq!(round_numeric("42.0"), Some(42));
        assert_eq!(round_numeric(".5"), Some(1));
        assert_eq!(round_numeric("4.25e1"), Some(43));
        assert_eq!(round_numeric("1e3"), Some(1000));
        assert_eq!(round_numeric("5e-1"), Some(1));
        assert_eq!(round_numeric("4e-1"), Some(0));
        assert_eq!(round_numeric("abc"), None);
    }

    #[test]
    fn coercions() {
        assert_eq!(coerce(&Value::Numeric("42.5".into()), PgType::Int8), Ok(Datum::Int8(43)));
        assert_eq!(coerce(&Value::Unknown("42".into()), PgType::Int4), Ok(Datum::Int4(42)));
        assert!(coerce(&Value::Unknown("42.5".into()), PgType::Int8).is_err());
        assert_eq!(coerce(&Value::Int(7, PgType::Int8), PgType::Int4), Ok(Datum::Int4(7)));
        assert!(coerce(&Value::Int(1 << 40, PgType::Int8), PgType::Int4).is_err());
        assert_eq!(coerce(&Value::Text("ab  ".into(), PgType::BpChar), PgType::Text), Ok(Datum::Text("ab".into())));
        assert_eq!(coerce(&Value::Float(2.5, PgType::Float8), PgType::Int8), Ok(Datum::Int8(2)));
    }
}
