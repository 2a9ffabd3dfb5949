//! Listening sockets. With `listen_reuseport` they set SO_REUSEPORT, so a new version of the
//! proxy can bind the same address while the old one drains (the kernel spreads new connections
//! over both until the old one closes its listener).

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// Backlog of pending connections, as PostgreSQL's own default.
const BACKLOG: u32 = 1024;

pub fn bind(addr: SocketAddr, reuseport: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    if reuseport {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}
