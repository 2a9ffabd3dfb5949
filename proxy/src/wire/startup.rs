//! The untagged first packets: `length(4) | code(4) | rest`. The code is a protocol version
//! (StartupMessage) or one of the special request codes.

use super::cstr::Reader;
use super::WireError;

pub const SSL_REQUEST_CODE: i32 = 80877103;
pub const GSSENC_REQUEST_CODE: i32 = 80877104;
pub const CANCEL_REQUEST_CODE: i32 = 80877102;
/// PostgreSQL's own bound on a startup packet (MAX_STARTUP_PACKET_LENGTH).
pub const MAX_STARTUP_PACKET: usize = 10_000;

/// What the first packet of a connection asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstPacket {
    SslRequest,
    GssEncRequest,
    Cancel,
    /// A StartupMessage for protocol `major.minor`.
    Startup {
        major: u16,
        minor: u16,
    },
}

impl FirstPacket {
    pub fn from_code(code: i32) -> FirstPacket {
        match code {
            SSL_REQUEST_CODE => FirstPacket::SslRequest,
            GSSENC_REQUEST_CODE => FirstPacket::GssEncRequest,
            CANCEL_REQUEST_CODE => FirstPacket::Cancel,
            v => FirstPacket::Startup { major: (v >> 16) as u16, minor: (v & 0xffff) as u16 },
        }
    }
}

/// Startup parameters in the order sent (duplicates kept: the packet is forwarded as it came).
pub struct StartupParams<'a> {
    rest: &'a [u8],
}

impl<'a> StartupParams<'a> {
    /// `rest` is the packet after `length | version`.
    pub fn decode(rest: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(rest, "StartupMessage");
        loop {
            let k = r.cstr()?;
            if k.is_empty() {
                break;
            }
            r.cstr()?;
        }
        r.finish()?;
        Ok(StartupParams { rest })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let mut r = Reader::new(self.rest, "StartupMessage");
        std::iter::from_fn(move || {
            let k = r.cstr().ok()?;
            if k.is_empty() {
                return None;
            }
            Some((k, r.cstr().ok()?))
        })
    }

    /// The last value given for `key` (PostgreSQL lets later settings win).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter().filter(|(k, _)| *k == key.as_bytes()).last().and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_params_in_order_and_rejects_garbage() {
        let rest = b"user\0alice\0database\0db\0user\0bob\0\0";
        let p = StartupParams::decode(rest).expect("valid");
        assert_eq!(p.iter().count(), 3);
        assert_eq!(p.get("user"), Some("bob"));
        assert_eq!(p.get("database"), Some("db"));
        assert!(StartupParams::decode(b"user\0alice").is_err());
        assert!(StartupParams::decode(b"user\0alice\0\0junk").is_err());
        assert_eq!(FirstPacket::from_code(196608), FirstPacket::Startup { major: 3, minor: 0 });
        assert_eq!(FirstPacket::from_code(196610), FirstPacket::Startup { major: 3, minor: 2 });
    }
}
