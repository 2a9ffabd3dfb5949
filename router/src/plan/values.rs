//! Evaluating constant expressions with the literal values of this call and the Bind parameters.

use crate::analysis::model::{ArithOp, CastTarget, ValueExpr};
use crate::shape::{Literal, LiteralKind};
use crate::types::{coerce, decode_binary, parse_array_text, parse_input, Datum, PgType, Value};

/// Everything a slot `$n` can refer to in one decision.
#[derive(Clone, Copy)]
pub(crate) struct Bindings<'a> {
    pub sql: &'a str,
    pub literals: &'a [Literal],
    pub literal_base: u32,
    pub params: &'a [Option<&'a [u8]>],
    pub formats: &'a [i16],
    pub param_types: &'a [u32],
    /// Build the human explanation (notes, reasons). Off on the proxy's hot path, where only
    /// the route and class are needed and formatting strings would cost more than routing.
    pub explain: bool,
}

/// The type the context expects (PostgreSQL infers an unspecified parameter's type from it).
#[derive(Clone, Copy)]
pub(crate) struct Want {
    pub ty: PgType,
    pub array: bool,
}

fn array_elem(oid: u32) -> Option<PgType> {
    Some(match oid {
        1000 => PgType::Bool,
        1002 => PgType::Char,
        1003 => PgType::Name,
        1005 => PgType::Int2,
        1007 => PgType::Int4,
        1016 => PgType::Int8,
        1009 => PgType::Text,
        1014 => PgType::BpChar,
        1015 => PgType::Varchar,
        1021 => PgType::Float4,
        1022 => PgType::Float8,
        1028 => PgType::Oid,
        1182 => PgType::Date,
        1115 => PgType::Timestamp,
        1231 => PgType::Numeric,
        2951 => PgType::Uuid,
        _ => return None,
    })
}

/// The declared type of a parameter OID: (element type, is array); None when unspecified.
pub(crate) fn declared(oid: u32) -> Option<(PgType, bool)> {
    match oid {
        0 => None,
        o => Some(array_elem(o).map_or((PgType::from_oid(o), false), |e| (e, true))),
    }
}

fn typed_text(s: &str, ty: PgType) -> Result<Value, String> {
    Ok(match ty {
        PgType::Numeric => Value::Numeric(s.trim().into()),
        PgType::Unknown => Value::Unknown(s.into()),
        t if t.is_textual() => Value::Text(s.into(), t),
        t => Value::Datum(parse_input(s, t)?),
    })
}

fn text_array(s: &str, elem: Option<PgType>) -> Result<Value, String> {
    let items = parse_array_text(s)?;
    items
        .into_iter()
        .map(|i| match (i, elem) {
            (None, _) => Ok(Value::Null),
            (Some(x), Some(t)) => typed_text(&x, t),
            (Some(x), None) => Ok(Value::Unknown(x.into())),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn int_of(v: &Value) -> Option<(i64, PgType)> {
    match v {
        Value::Int(i, t) => Some((*i, *t)),
        Value::Datum(Datum::Int2(i)) => Some((i64::from(*i), PgType::Int2)),
        Value::Datum(Datum::Int4(i)) => Some((i64::from(*i), PgType::Int4)),
        Value::Datum(Datum::Int8(i)) => Some((*i, PgType::Int8)),
        _ => None,
    }
}

fn int_result(v: Option<i64>, ty: PgType) -> Result<Value, String> {
    let v = v.ok_or("integer out of range")?;
    match ty {
        PgType::Int2 | PgType::Int4 if i32::try_from(v).is_err() => Err("integer out of range".into()),
        _ => Ok(Value::Int(v, ty)),
    }
}

fn cast_scalar(v: Value, ty: PgType) -> Result<Value, String> {
    Ok(match (&v, ty) {
        (Value::Null, _) => Value::Null,
        (_, PgType::Other(_)) => Value::Datum(Datum::Unhashable),
        (Value::Unknown(s), PgType::Numeric) => Value::Numeric(s.trim().into()),
        (Value::Int(i, _), PgType::Numeric) => Value::Numeric(i.to_string().into()),
        (Value::Numeric(_), PgType::Numeric) => v,
        (Value::Int(i, _), t) if t.is_textual() => Value::Text(i.to_string().into(), t),
        (Value::Numeric(s), t) if t.is_textual() => Value::Text(s.clone(), t),
        (Value::Unknown(s) | Value::Text(s, _), t) if t.is_textual() => {
            let s = if matches!(v, Value::Text(_, PgType::BpChar)) { s.trim_end_matches(' ') } else { s };
            Value::Text(s.into(), t)
        }
        (_, t) => match coerce(&v, t)? {
            Datum::Int2(i) => Value::Int(i64::from(i), PgType::Int2),
            Datum::Int4(i) => Value::Int(i64::from(i), PgType::Int4),
            Datum::Int8(i) => Value::Int(i, PgType::Int8),
            d => Value::Datum(d),
        },
    })
}

impl Bindings<'_> {
    fn slot(&self, n: u32, want: Want) -> Result<Value, String> {
        if n >= self.literal_base {
            let lit = self.literals.get((n - self.literal_base) as usize).ok_or("literal slot out of range")?;
            let text = lit.value(self.sql);
            return Ok(match lit.kind {
                LiteralKind::Number => Value::number_literal(&text),
                LiteralKind::String => Value::Unknown(text.as_ref().into()),
            });
        }
        let idx = (n as usize).checked_sub(1).ok_or("parameter $0")?;
        let raw = self.params.get(idx).ok_or_else(|| format!("parameter ${n} is not bound"))?;
        let Some(bytes) = raw else { return Ok(Value::Null) };
        let format = match self.formats {
            [] => 0,
            [one] => *one,
            many => *many.get(idx).ok_or("Bind has fewer format codes than parameters")?,
        };
        let decl = self.param_types.get(idx).copied().and_then(declared);
        if format == 0 {
            let text = std::str::from_utf8(bytes).map_err(|_| format!("parameter ${n} is not UTF-8"))?;
            match decl {
                Some((t, true)) => text_array(text, Some(t)),
                Some((t, false)) => typed_text(text, t),
                None if want.array => text_array(text, None),
                None => Ok(Value::Unknown(text.into())),
            }
        } else {
            let (ty, array) = decl.unwrap_or((want.ty, want.array));
            if matches!(ty, PgType::Other(_) | PgType::Unknown) {
                return Err(format!("binary parameter ${n} of a type the router cannot decode"));
            }
            decode_binary(bytes, ty, array)
        }
    }

    pub fn eval(&self, e: &ValueExpr, want: Want) -> Result<Value, String> {
        match e {
            ValueExpr::Slot(n) => self.slot(*n, want),
            ValueExpr::Number(s) => Ok(Value::number_literal(s)),
            ValueExpr::String(s) => Ok(Value::Unknown(s.clone())),
            ValueExpr::Null => Ok(Value::Null),
            ValueExpr::Bool(b) => Ok(Value::Datum(Datum::Bool(*b))),
            ValueExpr::Cast(inner, CastTarget { ty, array }) => {
                let v = self.eval(inner, Want { ty: *ty, array: *array })?;
                if *array {
                    let items = match v {
                        Value::Null => return Ok(Value::Null),
                        Value::Unknown(s) => match text_array(&s, None)? {
                            Value::Array(items) => items,
                            _ => Vec::new(),
                        },
                        Value::Array(items) => items,
                        _ => return Err("cannot cast a scalar to an array".into()),
                    };
                    items.into_iter().map(|i| cast_scalar(i, *ty)).collect::<Result<Vec<_>, _>>().map(Value::Array)
                } else {
                    cast_scalar(v, *ty)
                }
            }
            ValueExpr::Neg(inner) => match self.eval(inner, want)? {
                Value::Numeric(s) => Ok(Value::Numeric(match s.strip_prefix('-') {
                    Some(pos) => pos.into(),
                    None => format!("-{s}").into(),
                })),
                Value::Float(f, t) => Ok(Value::Float(-f, t)),
                Value::Null => Ok(Value::Null),
                v => {
                    let (i, t) = int_of(&v).ok_or("unary minus on a non-number")?;
                    int_result(i.checked_neg(), t)
                }
            },
            ValueExpr::Abs(inner) => match self.eval(inner, want)? {
                Value::Null => Ok(Value::Null),
                v => {
                    let (i, t) = int_of(&v).ok_or("abs() of a non-integer")?;
                    int_result(i.checked_abs(), t)
                }
            },
            ValueExpr::Arith(op, a, b) => {
                let (va, vb) = (self.eval(a, want)?, self.eval(b, want)?);
                if va == Value::Null || vb == Value::Null {
                    return Ok(Value::Null);
                }
                let ((x, tx), (y, ty)) = (int_of(&va).ok_or("non-integer arithmetic")?, int_of(&vb).ok_or("non-integer arithmetic")?);
                let t = if tx == PgType::Int8 || ty == PgType::Int8 { PgType::Int8 } else { PgType::Int4 };
                let r = match op {
                    ArithOp::Add => x.checked_add(y),
                    ArithOp::Sub => x.checked_sub(y),
                    ArithOp::Mul => x.checked_mul(y),
                };
                int_result(r, t)
            }
            ValueExpr::Array(items) => {
                items.iter().map(|i| self.eval(i, Want { ty: want.ty, array: false })).collect::<Result<Vec<_>, _>>().map(Value::Array)
            }
        }
    }

    /// A scalar value coerced to the key type: Ok(None) for NULL.
    pub fn key_value(&self, e: &ValueExpr, key: PgType) -> Result<Option<Datum>, String> {
        match self.eval(e, Want { ty: key, array: false })? {
            Value::Null => Ok(None),
            v => coerce(&v, key).map(Some),
        }
    }

    /// Elements of an array value coerced to the key type (NULL elements dropped);
    /// Ok(None) when the array itself is NULL.
    pub fn key_array(&self, e: &ValueExpr, key: PgType) -> Result<Option<Vec<Datum>>, String> {
        match self.eval(e, Want { ty: key, array: true })? {
            Value::Null => Ok(None),
            Value::Array(items) => {
                items.iter().filter(|i| **i != Value::Null).map(|i| coerce(i, key)).collect::<Result<Vec<_>, _>>().map(Some)
            }
            Value::Unknown(s) => match text_array(&s, None)? {
                Value::Array(items) => {
                    items.iter().filter(|i| **i != Value::Null).map(|i| coerce(i, key)).collect::<Result<Vec<_>, _>>().map(Some)
                }
                _ => Err("not an array".into()),
            },
            _ => Err("= ANY of a non-array value".into()),
        }
    }
}
