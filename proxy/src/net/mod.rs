//! Sockets: the client- and upstream-side streams (plain or TLS), TLS set-up, connecting upstream.

pub mod listener;
pub mod stream;
pub mod tls;
pub mod upstream;
