//! `B` Bind: portal, statement, parameter formats, parameter values, result formats.

use super::cstr::Reader;
use super::WireError;

pub struct BindView<'a> {
    pub portal: &'a [u8],
    pub statement: &'a [u8],
    param_formats: &'a [u8],
    params: &'a [u8],
    param_count: usize,
    result_formats: &'a [u8],
}

impl<'a> BindView<'a> {
    pub fn decode(body: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body, "Bind");
        let portal = r.cstr()?;
        let statement = r.cstr()?;
        let nf = r.u16()? as usize;
        let param_formats = r.bytes(nf * 2)?;
        let param_count = r.u16()? as usize;
        // Walk the values once to find where they end; values are re-read lazily by `params()`.
        let start = r.remaining();
        for _ in 0..param_count {
            let len = r.i32()?;
            if len > 0 {
                r.bytes(len as usize)?;
            } else if len < -1 {
                return Err(WireError::BadCount("Bind", len as i64));
            }
        }
        let params = &start[..start.len() - r.remaining().len()];
        let nr = r.u16()? as usize;
        let result_formats = r.bytes(nr * 2)?;
        r.finish()?;
        if nf > 1 && nf != param_count {
            return Err(WireError::BadCount("Bind", nf as i64));
        }
        Ok(BindView { portal, statement, param_formats, params, param_count, result_formats })
    }

    pub fn param_count(&self) -> usize {
        self.param_count
    }

    /// Parameter values in order; `None` is SQL NULL.
    pub fn params(&self) -> impl Iterator<Item = Option<&'a [u8]>> + 'a {
        let mut rest = self.params;
        (0..self.param_count).map(move |_| {
            // Lengths were validated in `decode`.
            let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            rest = &rest[4..];
            if len < 0 {
                None
            } else {
                let (v, tail) = rest.split_at(len as usize);
                rest = tail;
                Some(v)
            }
        })
    }

    /// Raw format codes as sent (0 codes = all text, 1 = applies to all, n = one per parameter).
    pub fn param_formats(&self) -> impl ExactSizeIterator<Item = i16> + 'a {
        self.param_formats.chunks_exact(2).map(|c| i16::from_be_bytes([c[0], c[1]]))
    }

    pub fn result_formats(&self) -> impl ExactSizeIterator<Item = i16> + 'a {
        self.result_formats.chunks_exact(2).map(|c| i16::from_be_bytes([c[0], c[1]]))
    }

    /// The raw result-format section, for keys that must cover it.
    pub fn result_formats_raw(&self) -> &'a [u8] {
        self.result_formats
    }
}
