//! A connection that is plain TCP or TLS, split into halves that can be used concurrently.
//! Plain TCP splits without a lock (`into_split`); TLS needs tokio's split.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

type ServerTls = tokio_rustls::server::TlsStream<TcpStream>;
type ClientTls = tokio_rustls::client::TlsStream<TcpStream>;

pub enum Stream {
    Plain(TcpStream),
    /// Client connection terminated by the proxy.
    ServerTls(Box<ServerTls>),
    /// Connection to the coordinator.
    ClientTls(Box<ClientTls>),
}

pub enum ReadHalf {
    Plain(OwnedReadHalf),
    ServerTls(tokio::io::ReadHalf<ServerTls>),
    ClientTls(tokio::io::ReadHalf<ClientTls>),
}

pub enum WriteHalf {
    Plain(OwnedWriteHalf),
    ServerTls(tokio::io::WriteHalf<ServerTls>),
    ClientTls(tokio::io::WriteHalf<ClientTls>),
}

impl Stream {
    pub fn split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Plain(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Plain(r), WriteHalf::Plain(w))
            }
            Stream::ServerTls(s) => {
                let (r, w) = tokio::io::split(*s);
                (ReadHalf::ServerTls(r), WriteHalf::ServerTls(w))
            }
            Stream::ClientTls(s) => {
                let (r, w) = tokio::io::split(*s);
                (ReadHalf::ClientTls(r), WriteHalf::ClientTls(w))
            }
        }
    }

    pub fn is_tls(&self) -> bool {
        !matches!(self, Stream::Plain(_))
    }
}

macro_rules! dispatch_read {
    ($t:ty { $($v:ident),* }) => {
        impl AsyncRead for $t {
            fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() { $( Self::$v(s) => Pin::new(s).poll_read(cx, buf), )* }
            }
        }
    };
}

macro_rules! dispatch_write {
    ($t:ty { $($v:ident),* }) => {
        impl AsyncWrite for $t {
            fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                match self.get_mut() { $( Self::$v(s) => Pin::new(s).poll_write(cx, buf), )* }
            }
            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() { $( Self::$v(s) => Pin::new(s).poll_flush(cx), )* }
            }
            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() { $( Self::$v(s) => Pin::new(s).poll_shutdown(cx), )* }
            }
        }
    };
}

dispatch_read!(Stream { Plain, ServerTls, ClientTls });
dispatch_write!(Stream { Plain, ServerTls, ClientTls });
dispatch_read!(ReadHalf { Plain, ServerTls, ClientTls });
dispatch_write!(WriteHalf { Plain, ServerTls, ClientTls });
