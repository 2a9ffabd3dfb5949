//! Cursor over a message body: NUL-terminated strings and big-endian integers, bounds-checked.

use super::WireError;

pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }
    /// The bytes of a NUL-terminated string, without the NUL.
    pub fn cstr(&mut self) -> Result<&'a [u8], WireError> {
        // Without a NUL the first part is the whole buffer and there is no second one.
        let mut parts = self.buf.splitn(2, |&b| b == 0);
        let (Some(s), Some(rest)) = (parts.next(), parts.next()) else {
            return Err(WireError::Unterminated(self.what));
        };
        self.buf = rest;
        Ok(s)
    }
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let (s, rest) = self.buf.split_at_checked(n).ok_or(WireError::Truncated(self.what))?;
        self.buf = rest;
        Ok(s)
    }
    /// The next `N` bytes, as an array for the integer readers.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let (a, rest) = self.buf.split_first_chunk::<N>().ok_or(WireError::Truncated(self.what))?;
        self.buf = rest;
        Ok(*a)
    }
    pub fn u8(&mut self) -> Result<u8, WireError> {
        self.array().map(|[b]| b)
    }
    pub fn i16(&mut self) -> Result<i16, WireError> {
        self.array().map(i16::from_be_bytes)
    }
    pub fn u16(&mut self) -> Result<u16, WireError> {
        Ok(self.i16()? as u16)
    }
    pub fn i32(&mut self) -> Result<i32, WireError> {
        self.array().map(i32::from_be_bytes)
    }
    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }
    /// Fails unless the whole body was consumed.
    pub fn finish(&self) -> Result<(), WireError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(WireError::Trailing(self.what, n)),
        }
    }
}
