//! Whole-frame reading for the startup and authentication phase, where every message is small
//! and handled one at a time. The buffer (with anything read ahead) is handed to the relay after.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::wire::frame::{total_len, HEADER_LEN};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed")]
    Eof,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("invalid message length")]
    BadLength,
    #[error("message of {0} bytes is over the limit")]
    TooLarge(usize),
}

pub struct FrameReader<R> {
    pub inner: R,
    pub buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        FrameReader { inner, buf: BytesMut::with_capacity(16 * 1024) }
    }

    /// True when a whole frame is already buffered (no read needed to get it).
    pub fn has_frame(&self) -> bool {
        self.buf.first_chunk().and_then(total_len).is_some_and(|t| self.buf.len() >= t)
    }

    /// The next whole frame, header included.
    pub async fn next(&mut self, max: usize) -> Result<BytesMut, FrameError> {
        loop {
            if let Some(header) = self.buf.first_chunk() {
                let total = total_len(header).ok_or(FrameError::BadLength)?;
                if total > max {
                    return Err(FrameError::TooLarge(total));
                }
                if self.buf.len() >= total {
                    return Ok(self.buf.split_to(total));
                }
                self.buf.reserve(total - self.buf.len());
            }
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return Err(FrameError::Eof);
            }
        }
    }
}

/// Walks frames in place for the relay: moves `pos` over what is left (`pass` bytes) of a frame
/// being forwarded without inspection, then returns the next frame's tag and declared total
/// size (None when the length field is invalid) once its whole header is in `buf`. Returns
/// None when more bytes must be read first.
#[inline]
pub fn next_header(buf: &[u8], pos: &mut usize, pass: &mut usize) -> Option<(u8, Option<usize>)> {
    if *pass > 0 {
        let n = (*pass).min(buf.len() - *pos);
        *pos += n;
        *pass -= n;
        if *pass > 0 {
            return None;
        }
    }
    let header = buf.get(*pos..)?.first_chunk()?;
    Some((header[0], total_len(header)))
}

/// A frame's tag and body. Frames from `FrameReader::next` always hold their whole header, so
/// the error is for a frame that did not come from there.
#[inline]
pub fn tag_and_body(frame: &[u8]) -> Result<(u8, &[u8]), FrameError> {
    let ([tag, ..], body) = frame.split_first_chunk::<HEADER_LEN>().ok_or(FrameError::BadLength)?;
    Ok((*tag, body))
}
