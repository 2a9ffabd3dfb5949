//! Opening a connection to the coordinator: TCP with a timeout, then the SSLRequest exchange
//! that `sslmode` asks for, with libpq's fallbacks under `prefer`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::stream::Stream;
use crate::config::{Config, SslMode};
use crate::wire::startup::SSL_REQUEST_CODE;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("could not connect to upstream {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("upstream {addr} does not accept TLS, but upstream.sslmode requires it")]
    TlsRefused { addr: String },
    #[error("TLS handshake with upstream {addr} failed: {reason}")]
    Tls { addr: String, reason: String },
}

/// Everything needed to open upstream connections; shared by all sessions.
pub struct Connector {
    host: String,
    port: u16,
    addr: String,
    mode: SslMode,
    tls: Option<tokio_rustls::TlsConnector>,
    timeout: Duration,
    /// Said once that `prefer` fell back to plaintext after a failed handshake.
    warned_fallback: AtomicBool,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector").field("addr", &self.addr).field("mode", &self.mode).finish_non_exhaustive()
    }
}

impl Connector {
    pub fn from_config(config: &Config) -> Result<Connector, super::tls::TlsSetupError> {
        let url = config.upstream_url();
        let mode = config.upstream_sslmode();
        let ca = (!config.upstream.ca_file.is_empty()).then(|| std::path::Path::new(&config.upstream.ca_file));
        Ok(Connector {
            addr: url.addr(),
            host: url.host,
            port: url.port,
            mode,
            tls: super::tls::connector(mode, ca)?,
            timeout: config.upstream.connect_timeout,
            warned_fallback: AtomicBool::new(false),
        })
    }

    /// The same TLS and timeouts for another server of the cluster (a Citus node named
    /// `host:port` by the metadata); None when the address has no port.
    pub fn for_node(&self, addr: &str) -> Option<Connector> {
        let (host, port) = addr.rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        Some(Connector {
            addr: addr.to_string(),
            host,
            port,
            mode: self.mode,
            tls: self.tls.clone(),
            timeout: self.timeout,
            warned_fallback: AtomicBool::new(false),
        })
    }

    /// `host:port` of the coordinator, for messages.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub async fn connect(&self) -> Result<Stream, ConnectError> {
        let tcp = self.tcp().await?;
        let Some(tls) = &self.tls else {
            return Ok(Stream::Plain(tcp));
        };
        match self.negotiate(tcp, tls).await {
            // As libpq does under prefer: a failed handshake is retried in plaintext, on a new
            // connection (the server has given up on the first one).
            Err(ConnectError::Tls { reason, .. }) if self.mode == SslMode::Prefer => {
                if !self.warned_fallback.swap(true, Ordering::Relaxed) {
                    tracing::warn!(upstream = %self.addr, %reason, "TLS handshake with upstream failed; sslmode=prefer continues in plaintext (said once)");
                }
                Ok(Stream::Plain(self.tcp().await?))
            }
            other => other,
        }
    }

    async fn tcp(&self) -> Result<TcpStream, ConnectError> {
        let unreachable = |reason: String| ConnectError::Unreachable { addr: self.addr.clone(), reason };
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect((self.host.as_str(), self.port)))
            .await
            .map_err(|_| unreachable(format!("timed out after {:?} (upstream.connect_timeout)", self.timeout)))?
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    async fn negotiate(&self, mut tcp: TcpStream, tls: &tokio_rustls::TlsConnector) -> Result<Stream, ConnectError> {
        let io_err = |e: std::io::Error| ConnectError::Unreachable { addr: self.addr.clone(), reason: e.to_string() };
        let mut req = [0u8; 8];
        req[..4].copy_from_slice(&8i32.to_be_bytes());
        req[4..].copy_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
        let answer = tokio::time::timeout(self.timeout, async {
            tcp.write_all(&req).await?;
            tcp.read_u8().await
        })
        .await
        .map_err(|_| ConnectError::Unreachable {
            addr: self.addr.clone(),
            reason: format!("no answer to SSLRequest within {:?} (upstream.connect_timeout)", self.timeout),
        })?
        .map_err(io_err)?;
        match answer {
            b'S' => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| ConnectError::Tls { addr: self.addr.clone(), reason: e.to_string() })?;
                let s = tokio::time::timeout(self.timeout, tls.connect(name, tcp))
                    .await
                    .map_err(|_| ConnectError::Tls {
                        addr: self.addr.clone(),
                        reason: format!("timed out after {:?} (upstream.connect_timeout)", self.timeout),
                    })?
                    .map_err(|e| ConnectError::Tls { addr: self.addr.clone(), reason: super::tls::describe_handshake_error(&e) })?;
                Ok(Stream::ClientTls(Box::new(s)))
            }
            b'N' if self.mode == SslMode::Prefer => Ok(Stream::Plain(tcp)),
            _ => Err(ConnectError::TlsRefused { addr: self.addr.clone() }),
        }
    }
}
