//! The proxy's own tokio-postgres connections (metadata, `explain`) with libpq's sslmode
//! behaviour: tokio-postgres's `prefer` falls back to plaintext only when the server answers
//! 'N', libpq's also when the TLS handshake fails.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

/// Connects with `pg`'s sslmode and `tls` (None: plaintext), driving the connection on the current
/// runtime. Under prefer, a failed handshake is retried in plaintext on a new connection.
pub async fn connect(
    pg: &tokio_postgres::Config,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let Some(tls) = tls else {
        return plain(pg).await;
    };
    let failed = Arc::new(AtomicBool::new(false));
    let make = Watched { inner: tokio_postgres_rustls::MakeRustlsConnect::new((**tls).clone()), failed: Arc::clone(&failed) };
    match pg.connect(make).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            Ok(client)
        }
        Err(e) if pg.get_ssl_mode() == SslMode::Prefer && failed.load(Ordering::Relaxed) => {
            tracing::debug!(error = %e, "TLS handshake failed; sslmode=prefer retries in plaintext");
            let mut pg = pg.clone();
            pg.ssl_mode(SslMode::Disable);
            plain(&pg).await
        }
        Err(e) => Err(e),
    }
}

async fn plain(pg: &tokio_postgres::Config) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = pg.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// A TLS connector that remembers whether its handshake failed, which tokio-postgres's error
/// does not say in a form one can match on.
struct Watched<M> {
    inner: M,
    failed: Arc<AtomicBool>,
}

impl<S, M: MakeTlsConnect<S>> MakeTlsConnect<S> for Watched<M>
where
    WatchedConnect<M::TlsConnect>: TlsConnect<S, Stream = M::Stream>,
{
    type Stream = M::Stream;
    type TlsConnect = WatchedConnect<M::TlsConnect>;
    type Error = M::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        Ok(WatchedConnect { inner: self.inner.make_tls_connect(domain)?, failed: Arc::clone(&self.failed) })
    }
}

struct WatchedConnect<T> {
    inner: T,
    failed: Arc<AtomicBool>,
}

impl<S, T> TlsConnect<S> for WatchedConnect<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
{
    type Stream = T::Stream;
    type Error = T::Error;
    type Future = Pin<Box<dyn Future<Output = Result<T::Stream, T::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let handshake = self.inner.connect(stream);
        let failed = self.failed;
        Box::pin(async move {
            let result = handshake.await;
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            result
        })
    }
}

/// A connection failure in words: the server's message for a refusal, else tokio-postgres's kind
/// with its cause (its Display leaves the cause out, e.g. why a handshake failed).
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let cause = std::error::Error::source(e).map(|c| match c.downcast_ref::<std::io::Error>() {
        Some(io) => super::describe_handshake_error(io),
        None => c.to_string(),
    });
    match cause {
        Some(c) if !e.to_string().contains(&c) => format!("{e}: {c}"),
        _ => e.to_string(),
    }
}
