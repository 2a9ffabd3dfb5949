use std::net::TcpListener;

/// A loopback port that was free a moment ago (the OS picked it for a listener we then closed).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("test harness: cannot bind 127.0.0.1:0 to find a free port")
}
