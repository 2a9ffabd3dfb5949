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
        // The values are what the loop consumed of `start`.
        let params = start.get(..start.len() - r.remaining().len()).ok_or(WireError::Truncated("Bind"))?;
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
        let mut r = Reader::new(self.params, "Bind");
        // Lengths were validated in `decode`, so every read succeeds; `map_while` only spares a
        // panic path. The outer Option ends the walk, the inner one is the value.
        (0..self.param_count).map_while(move |_| {
            let len = r.i32().ok()?;
            if len < 0 {
                Some(None)
            } else {
                r.bytes(len as usize).ok().map(Some)
            }
        })
    }

    /// Raw format codes as sent (0 codes = all text, 1 = applies to all, n = one per parameter).
    pub fn param_formats(&self) -> impl ExactSizeIterator<Item = i16> + 'a {
        // `decode` took exactly two bytes per code, so there is no remainder.
        self.param_formats.as_chunks::<2>().0.iter().map(|&c| i16::from_be_bytes(c))
    }

    pub fn result_formats(&self) -> impl ExactSizeIterator<Item = i16> + 'a {
        self.result_formats.as_chunks::<2>().0.iter().map(|&c| i16::from_be_bytes(c))
    }

    /// The raw result-format section, for keys that must cover it.
    pub fn result_formats_raw(&self) -> &'a [u8] {
        self.result_formats
    }
}
