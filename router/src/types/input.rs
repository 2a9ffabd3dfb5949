//! Text input functions (`int8in`, `uuid_in`, `boolin`, …) as PostgreSQL 15 applies them to an
//! untyped literal or a text-format parameter. Anything they would reject is an error here too.

use super::{Datum, PgType};

/// PostgreSQL's `isspace` set for input functions.
fn is_pg_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

fn trim_pg(s: &str) -> &str {
    s.trim_matches(is_pg_space)
}

/// Decimal integer with optional sign and surrounding whitespace (PG15 has no `_`, no hex).
pub fn parse_int(s: &str, min: i64, max: i64, ty: &str) -> Result<i64, String> {
    let t = trim_pg(s);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, t.get(1..).unwrap_or("")),
        Some(b'+') => (false, t.get(1..).unwrap_or("")),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid input syntax for type {ty}: \"{s}\""));
    }
    let mut v: i128 = 0;
    for b in digits.bytes() {
        v = v * 10 + i128::from(b - b'0');
        if v > i128::from(i64::MAX) + 1 {
            return Err(format!("value \"{s}\" is out of range for type {ty}"));
        }
    }
    let v = if neg { -v } else { v };
    if v < i128::from(min) || v > i128::from(max) {
        return Err(format!("value \"{s}\" is out of range for type {ty}"));
    }
    Ok(v as i64)
}

/// `uuid_in`: 32 hex digits, optionally in braces, with a hyphen allowed after any group of four.
pub fn parse_uuid(s: &str) -> Result<[u8; 16], String> {
    let err = || format!("invalid input syntax for type uuid: \"{s}\"");
    let mut src = s.as_bytes();
    let braces = src.first() == Some(&b'{');
    if braces {
        src = src.get(1..).unwrap_or_default();
    }
    let mut out = [0u8; 16];
    let mut pos = 0usize;
    for (i, slot) in out.iter_mut().enumerate() {
        let hi = src.get(pos).and_then(|c| (*c as char).to_digit(16)).ok_or_else(err)?;
        let lo = src.get(pos + 1).and_then(|c| (*c as char).to_digit(16)).ok_or_else(err)?;
        *slot = (hi * 16 + lo) as u8;
        pos += 2;
        if src.get(pos) == Some(&b'-') && i % 2 == 1 && i < 15 {
            pos += 1;
        }
    }
    if braces {
        if src.get(pos) != Some(&b'}') {
            return Err(err());
        }
        pos += 1;
    }
    if pos != src.len() {
        return Err(err());
    }
    Ok(out)
}

/// `boolin`: case-insensitive unique prefixes of true/false/yes/no/on/off, or 1/0.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    let t = trim_pg(s).to_ascii_lowercase();
    let prefix_of = |word: &str, min: usize| t.len() >= min && word.starts_with(t.as_str());
    if prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || t == "1" {
        Ok(true)
    } else if prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || t == "0" {
        Ok(false)
    } else {
        Err(format!("invalid input syntax for type boolean: \"{s}\""))
    }
}

/// ISO `YYYY-MM-DD` only; other date styles are reported as not understood rather than guessed.
pub fn parse_date(s: &str) -> Result<i32, String> {
    let t = trim_pg(s);
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = t.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let err = || format!("date \"{s}\" is not in ISO form YYYY-MM-DD");
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(err());
    }
    let (y, m, d) = (num(0..4).ok_or_else(err)?, num(5..7).ok_or_else(err)?, num(8..10).ok_or_else(err)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let max_day = usize::try_from(m - 1).ok().and_then(|i| dim.get(i)).ok_or_else(err)?;
    if y == 0 || d < 1 || d > *max_day {
        return Err(err());
    }
    Ok((days_from_civil(y, m, d) - days_from_civil(2000, 1, 1)) as i32)
}

pub(crate) const USECS_PER_DAY: i64 = 86_400_000_000;

/// `timestamp_in` for ISO `YYYY-MM-DD[ HH:MM[:SS[.fraction]]]` (`T` may separate the two),
/// `infinity`, `-infinity` and `epoch`: microseconds since 2000-01-01. Other forms (time zones,
/// BC, other date styles, `now`) are reported as not understood rather than guessed.
pub fn parse_timestamp(s: &str) -> Result<i64, String> {
    let t = trim_pg(s);
    let err = || format!("timestamp \"{s}\" is not in ISO form YYYY-MM-DD HH:MM:SS");
    match t.to_ascii_lowercase().as_str() {
        "infinity" => return Ok(i64::MAX),
        "-infinity" => return Ok(i64::MIN),
        "epoch" => return Ok(-10_957 * USECS_PER_DAY),
        _ => {}
    }
    let days = i64::from(parse_date(t.get(..10).ok_or_else(err)?).map_err(|_| err())?);
    let rest = t.get(10..).unwrap_or("");
    let time = match rest.strip_prefix(['T', 't']) {
        Some(time) => time,
        None if rest.is_empty() => return Ok(days * USECS_PER_DAY),
        None if rest.starts_with(is_pg_space) => rest.trim_start_matches(is_pg_space),
        None => return Err(err()),
    };
    Ok(days * USECS_PER_DAY + parse_time_of_day(time).ok_or_else(err)?)
}

/// `HH:MM[:SS[.fraction]]` in microseconds, validated like `ValidateTime` (24:00:00 and a
/// leap second 60 are accepted); the fraction is rounded as `rint(fraction * 1e6)` does.
fn parse_time_of_day(t: &str) -> Option<i64> {
    let two = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = t.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    if t.as_bytes().get(2) != Some(&b':') {
        return None;
    }
    let (h, m) = (two(0..2)?, two(3..5)?);
    let (sec, frac) = match t.get(5..)? {
        "" => (0, ""),
        r => {
            let r = r.strip_prefix(':')?;
            (two(6..8)?, r.get(2..)?)
        }
    };
    let fsec = match frac {
        "" => 0,
        f => {
            let digits = f.strip_prefix('.')?;
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let x: f64 = f.parse().ok()?;
            (x * 1e6).round_ties_even() as i64
        }
    };
    let usecs = ((h * 60 + m) * 60 + sec) * 1_000_000 + fsec;
    (h <= 24 && m <= 59 && sec <= 60 && fsec <= 1_000_000 && usecs <= USECS_PER_DAY).then_some(usecs)
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parse_float(s: &str, ty: &str) -> Result<f64, String> {
    let t = trim_pg(s);
    let lower = t.to_ascii_lowercase();
    let v = match lower.as_str() {
        "nan" => f64::NAN,
        "infinity" | "+infinity" | "inf" | "+inf" => f64::INFINITY,
        "-infinity" | "-inf" => f64::NEG_INFINITY,
        _ if lower.contains("inf") || lower.contains("nan") => return Err(format!("invalid input syntax for type {ty}: \"{s}\"")),
        _ => t.parse::<f64>().map_err(|_| format!("invalid input syntax for type {ty}: \"{s}\""))?,
    };
    Ok(v)
}

/// NAMEDATALEN - 1 bytes, cut at a character boundary like `pg_mbcliplen`.
fn clip_name(s: &str) -> &str {
    let mut end = s.len().min(63);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or(s)
}

/// The type's input function applied to `s` (an untyped literal or text-format parameter).
pub fn parse_input(s: &str, ty: PgType) -> Result<Datum, String> {
    Ok(match ty {
        PgType::Int2 => Datum::Int2(parse_int(s, i16::MIN.into(), i16::MAX.into(), "smallint")? as i16),
        PgType::Int4 => Datum::Int4(parse_int(s, i32::MIN.into(), i32::MAX.into(), "integer")? as i32),
        PgType::Int8 => Datum::Int8(parse_int(s, i64::MIN, i64::MAX, "bigint")?),
        // oidin accepts what strtoul accepts, including negatives that wrap.
        PgType::Oid => Datum::Oid(parse_int(s, i64::from(i32::MIN), i64::from(u32::MAX), "oid")? as u32),
        PgType::Bool => Datum::Bool(parse_bool(s)?),
        PgType::Char => Datum::Char(s.as_bytes().first().map_or(0, |b| *b as i8)),
        PgType::Date => Datum::Date(parse_date(s)?),
        PgType::Timestamp => Datum::Timestamp(parse_timestamp(s)?),
        PgType::Float4 => Datum::Float4(parse_float(s, "real")? as f32),
        PgType::Float8 => Datum::Float8(parse_float(s, "double precision")?),
        PgType::Text | PgType::Varchar | PgType::Unknown => Datum::Text(s.into()),
        PgType::BpChar => Datum::BpChar(s.into()),
        PgType::Name => Datum::Name(clip_name(s).into()),
        PgType::Uuid => Datum::Uuid(parse_uuid(s)?),
        PgType::Numeric | PgType::Other(_) => Datum::Unhashable,
    })
}

/// A one-dimensional array literal `{a,"b c",NULL}` into its elements (None = NULL).
pub fn parse_array_text(s: &str) -> Result<Vec<Option<String>>, String> {
    let err = || format!("malformed or unsupported array literal: \"{s}\"");
    let t = trim_pg(s);
    let inner = t.strip_prefix('{').and_then(|r| r.strip_suffix('}')).ok_or_else(err)?;
    let mut out = Vec::new();
    if trim_pg(inner).is_empty() {
        return Ok(out);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| is_pg_space(*c)) {
            chars.next();
        }
        let mut item = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next().ok_or_else(err)? {
                    '\\' => item.push(chars.next().ok_or_else(err)?),
                    '"' => break,
                    c => item.push(c),
                }
            }
            while chars.peek().is_some_and(|c| is_pg_space(*c)) {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '{' || c == '}' || c == '"' {
                    return Err(err());
                }
                if c == '\\' {
                    chars.next();
                    item.push(chars.next().ok_or_else(err)?);
                    continue;
                }
                item.push(c);
                chars.next();
            }
            item = trim_pg(&item).to_string();
            if item.is_empty() {
                return Err(err());
            }
        }
        if !quoted && item.eq_ignore_ascii_case("null") {
            out.push(None);
        } else {
            out.push(Some(item));
        }
        match chars.next() {
            None => break,
            Some(',') => continue,
            Some(_) => return Err(err()),
        }
    }
    Ok(out)
}
