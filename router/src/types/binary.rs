//! Binary-format Bind parameters (the type's `*send` layout, network byte order).

use super::{Datum, PgType, Value};

fn fixed<const N: usize>(b: &[u8]) -> Result<[u8; N], String> {
    b.try_into().map_err(|_| format!("binary value has {} bytes, expected {N}", b.len()))
}

fn utf8(b: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(b).map_err(|_| "binary text parameter is not UTF-8".to_string())
}

/// Decode one binary parameter of type `ty` into a value (arrays for `= ANY($n)` included).
pub fn decode_binary(b: &[u8], ty: PgType, array: bool) -> Result<Value, String> {
    if array {
        return decode_array(b, ty);
    }
    Ok(match ty {
        PgType::Int2 => Value::Int(i64::from(i16::from_be_bytes(fixed(b)?)), PgType::Int2),
        PgType::Int4 => Value::Int(i64::from(i32::from_be_bytes(fixed(b)?)), PgType::Int4),
        PgType::Int8 => Value::Int(i64::from_be_bytes(fixed(b)?), PgType::Int8),
        PgType::Oid => Value::Datum(Datum::Oid(u32::from_be_bytes(fixed(b)?))),
        PgType::Bool => Value::Datum(Datum::Bool(u8::from_be_bytes(fixed(b)?) != 0)),
        PgType::Char => Value::Datum(Datum::Char(i8::from_be_bytes(fixed(b)?))),
        PgType::Date => Value::Datum(Datum::Date(i32::from_be_bytes(fixed(b)?))),
        PgType::Timestamp => Value::Datum(Datum::Timestamp(i64::from_be_bytes(fixed(b)?))),
        PgType::Float4 => Value::Float(f64::from(f32::from_be_bytes(fixed(b)?)), PgType::Float4),
        PgType::Float8 => Value::Float(f64::from_be_bytes(fixed(b)?), PgType::Float8),
        PgType::Uuid => Value::Datum(Datum::Uuid(fixed(b)?)),
        PgType::Text | PgType::Varchar | PgType::BpChar | PgType::Name => Value::Text(utf8(b)?.into(), ty),
        PgType::Unknown => Value::Unknown(utf8(b)?.into()),
        PgType::Numeric | PgType::Other(_) => Value::Opaque,
    })
}

fn be_i32(b: &[u8], at: usize) -> Result<i32, String> {
    let s = b.get(at..at + 4).ok_or("truncated binary array")?;
    Ok(i32::from_be_bytes(fixed(s)?))
}

/// `array_send` layout: ndim, has-null flag, element type, (length, lower bound) per dimension,
/// then each element as length (-1 = NULL) + bytes.
fn decode_array(b: &[u8], elem: PgType) -> Result<Value, String> {
    let ndim = be_i32(b, 0)?;
    if ndim == 0 {
        return Ok(Value::Array(Vec::new()));
    }
    if ndim != 1 {
        return Err("only one-dimensional array parameters are supported".into());
    }
    let elem_oid = be_i32(b, 8)? as u32;
    let elem = if elem == PgType::Unknown { PgType::from_oid(elem_oid) } else { elem };
    let count = usize::try_from(be_i32(b, 12)?).map_err(|_| "negative array length")?;
    let mut at = 20usize;
    let mut out = Vec::with_capacity(count.min(4096));
    for _ in 0..count {
        let len = be_i32(b, at)?;
        at += 4;
        if len < 0 {
            out.push(Value::Null);
            continue;
        }
        let len = len as usize;
        let bytes = b.get(at..at + len).ok_or("truncated binary array element")?;
        at += len;
        out.push(decode_binary(bytes, elem, false)?);
    }
    Ok(Value::Array(out))
}
