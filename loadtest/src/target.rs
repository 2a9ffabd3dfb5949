//! A target: a named PostgreSQL URL (the proxy, or the coordinator directly), its connections,
//! and what the server can do (Citus? pgvector?), which decides the setup and the skipped scenarios.

use std::str::FromStr;
use std::sync::Arc;

use serde::Serialize;
use tokio_postgres::{Client, Config, NoTls};

use crate::cli::NamedUrl;
use crate::error::{describe_pg, Error};

#[derive(Clone, Debug, Serialize)]
pub struct TargetInfo {
    pub name: String,
    /// The URL with any password masked: it goes into reports that get shared.
    pub url: String,
    pub citus: bool,
    /// `pg_available_extensions` lists pgvector, so setup may use the `vector` type.
    pub pgvector_available: bool,
    pub server_version: String,
}

/// One target, connected: `admin` is used for setup and detection, `clients` for the load.
pub struct Connected {
    pub info: TargetInfo,
    pub admin: Arc<Client>,
    pub clients: Vec<Arc<Client>>,
}

impl Connected {
    pub async fn open(target: &NamedUrl, clients: usize) -> Result<Connected, Error> {
        let admin = connect(target).await?;
        let mut pool = Vec::with_capacity(clients);
        for _ in 0..clients {
            pool.push(Arc::new(connect(target).await?));
        }
        let info = detect(target, &admin).await?;
        Ok(Connected { info, admin: Arc::new(admin), clients: pool })
    }
}

pub async fn connect(target: &NamedUrl) -> Result<Client, Error> {
    let err = |message: String| Error::Connect { target: target.name.clone(), url: redact(&target.url), message };
    let mut config = Config::from_str(&target.url).map_err(|e| err(format!("not a PostgreSQL URL: {e}")))?;
    if config.get_application_name().is_none() {
        // Lets operators find the load in pg_stat_activity and the proxy's session list.
        config.application_name("citus-loadtest");
    }
    let (client, conn) = config.connect(NoTls).await.map_err(|e| err(describe_pg(&e)))?;
    // The connection future carries all I/O; when it ends the client reports `is_closed`.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

async fn detect(target: &NamedUrl, client: &Client) -> Result<TargetInfo, Error> {
    let err = |e: tokio_postgres::Error| Error::Connect {
        target: target.name.clone(),
        url: redact(&target.url),
        message: format!("connected, but cannot inspect the server: {}", describe_pg(&e)),
    };
    let citus = !client.query("SELECT extname FROM pg_extension WHERE extname = 'citus'", &[]).await.map_err(err)?.is_empty();
    let pgvector_available =
        !client.query("SELECT name FROM pg_available_extensions WHERE name = 'vector'", &[]).await.map_err(err)?.is_empty();
    let server_version: String = client.query_one("SHOW server_version", &[]).await.map_err(err)?.get(0);
    Ok(TargetInfo { name: target.name.clone(), url: redact(&target.url), citus, pgvector_available, server_version })
}

/// Masks the password in `postgres://user:pass@host` and in `password=...` key/value strings.
pub fn redact(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        if let Some(at) = rest.find('@') {
            if let Some(colon) = rest[..at].find(':') {
                return format!("{}{}:***{}", &url[..scheme_end + 3], &rest[..colon], &rest[at..]);
            }
        }
        return url.to_string();
    }
    url.split_whitespace()
        .map(|kv| if kv.starts_with("password=") { "password=***".to_string() } else { kv.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn masks_passwords() {
        assert_eq!(redact("postgres://u:secret@h:5/db"), "postgres://u:***@h:5/db");
        assert_eq!(redact("postgres://u@h:5/db"), "postgres://u@h:5/db");
        assert_eq!(redact("host=h password=x user=u"), "host=h password=*** user=u");
    }
}
