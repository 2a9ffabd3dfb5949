//! Reads the Citus catalog over the proxy's own tokio-postgres connection (text results through
//! the simple protocol; the router parses the rows). Never touches citus_tables/citus_shards,
//! which contact every worker.

use std::sync::Arc;
use std::time::Duration;

use citus_proxy_router::catalog::{
    CatalogRows, ColumnRow, NodeRow, PartitionRow, PlacementRow, RelationRow, ShardRow, COLUMNS_SQL, FINGERPRINT_SQL, NODES_SQL,
    PARTITIONS_SQL, PLACEMENTS_SQL, PLAIN_FINGERPRINT_SQL, RELATIONS_SQL, SHARDS_SQL,
};
use citus_proxy_router::{CatalogError, Topology};
use tokio_postgres::SimpleQueryMessage;

use crate::config::{Config, SslMode};
use crate::net::tls::postgres_client::describe;

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("cannot connect to {addr} for metadata: {reason}")]
    Connect { addr: String, reason: String },
    #[error("metadata query `{what}` failed: {reason}")]
    Query { what: &'static str, reason: String },
    #[error("catalog row of `{what}` is malformed: {source}")]
    Row { what: &'static str, source: CatalogError },
    #[error("catalog is inconsistent: {0}")]
    Catalog(CatalogError),
    #[error("TLS set-up for metadata: {0}")]
    Tls(String),
}

/// How to reach the catalog: the upstream address with the URL's credentials.
#[derive(Clone)]
pub struct Loader {
    pg: tokio_postgres::Config,
    tls: Option<Arc<rustls::ClientConfig>>,
    addr: String,
    /// The database whose catalog this loader reads.
    database: String,
    /// Said once that the database has no Citus catalog.
    warned_plain: Arc<std::sync::atomic::AtomicBool>,
}

/// What the change probe saw: the catalog fingerprint, or that the database had no Citus catalog
/// at the last full load (then the plain fingerprint is read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Loader {
    pub fn from_config(config: &Config) -> Result<Loader, MetadataError> {
        let url = config.upstream_url();
        let mode = config.upstream_sslmode();
        let mut pg = tokio_postgres::Config::new();
        pg.host(&url.host)
            .port(url.port)
            .user(url.effective_user())
            .dbname(url.effective_database())
            .application_name("citus-proxy metadata")
            .connect_timeout(config.upstream.connect_timeout.max(Duration::from_millis(100)))
            .ssl_mode(match mode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                _ => tokio_postgres::config::SslMode::Require,
            });
        if let Some(p) = &url.password {
            pg.password(p);
        }
        let ca = (!config.upstream.ca_file.is_empty()).then(|| std::path::Path::new(&config.upstream.ca_file));
        let tls = crate::net::tls::client_config(mode, ca).map_err(|e| MetadataError::Tls(e.to_string()))?;
        let database = url.database.as_deref().or(url.user.as_deref()).unwrap_or("postgres").to_string();
        Ok(Loader { pg, tls, addr: url.addr(), database, warned_plain: Arc::default() })
    }

    /// The same coordinator, credentials and TLS, reading the catalog of another database.
    pub fn for_database(&self, database: &str) -> Loader {
        let mut pg = self.pg.clone();
        pg.dbname(database);
        Loader { pg, tls: self.tls.clone(), addr: self.addr.clone(), database: database.to_string(), warned_plain: Arc::default() }
    }

    /// The database this loader reads.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Reads every catalog and builds a snapshot.
    pub async fn load(&self) -> Result<Topology, MetadataError> {
        let client = self.connect().await?;
        Ok(self.load_with(&client).await?.0)
    }

    /// The cheap change probe: one row that changes whenever a catalog the snapshot is built from
    /// does (see `FINGERPRINT_SQL`). `citus` says which catalogs the last full load found.
    pub async fn fingerprint(&self, client: &tokio_postgres::Client, citus: bool) -> Result<Fingerprint, MetadataError> {
        let (what, sql) = if citus { ("fingerprint", FINGERPRINT_SQL) } else { ("plain fingerprint", PLAIN_FINGERPRINT_SQL) };
        let messages = client.simple_query(sql).await.map_err(|e| MetadataError::Query { what, reason: describe(&e) })?;
        let row = messages.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        });
        row.map(Fingerprint).ok_or(MetadataError::Query { what, reason: "no row".into() })
    }

    /// A connection to the catalog (the probe keeps one open between probes).
    pub async fn connect(&self) -> Result<tokio_postgres::Client, MetadataError> {
        // Name the role: without one in `upstream.url` it is the OS user's, which may not exist.
        let connect_err = |e: tokio_postgres::Error| MetadataError::Connect {
            addr: self.addr.clone(),
            reason: format!(
                "{} (as role {:?}, from `upstream.url` or else the OS user)",
                describe(&e),
                self.pg.get_user().unwrap_or_default()
            ),
        };
        // libpq's sslmode, including prefer's plaintext retry after a failed handshake.
        crate::net::tls::postgres_client::connect(&self.pg, self.tls.as_ref()).await.map_err(connect_err)
    }

    /// Reads every catalog over `client` and builds a snapshot; true when the database has the
    /// Citus catalog.
    pub async fn load_with(&self, client: &tokio_postgres::Client) -> Result<(Topology, bool), MetadataError> {
        // Plain PostgreSQL (no Citus catalog): a cluster without Citus tables, where every table
        // is local to the coordinator; its relations are still known (for routing reports and
        // the cache). A partly missing Citus catalog stays an error.
        let citus = has_citus_catalog(client).await?;
        if !citus && !self.warned_plain.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                upstream = %self.addr,
                database = %self.database,
                "no Citus catalog (pg_dist_partition) in database {}: its tables route as local (plain PostgreSQL tables on the \
                 coordinator) and the result cache treats them as plain tables (cacheable, invalidated by writes through this \
                 proxy); the catalog is probed again and loaded if Citus is installed later",
                self.database
            );
        }
        let rows = CatalogRows {
            partitions: if citus { rows(client, "pg_dist_partition", PARTITIONS_SQL, PartitionRow::from_text).await? } else { Vec::new() },
            shards: if citus { rows(client, "pg_dist_shard", SHARDS_SQL, ShardRow::from_text).await? } else { Vec::new() },
            placements: if citus { rows(client, "pg_dist_placement", PLACEMENTS_SQL, PlacementRow::from_text).await? } else { Vec::new() },
            nodes: if citus { rows(client, "pg_dist_node", NODES_SQL, NodeRow::from_text).await? } else { Vec::new() },
            relations: rows(client, "relations", RELATIONS_SQL, RelationRow::from_text).await?,
            // Columns are read for Citus tables only.
            columns: if citus { rows(client, "columns", COLUMNS_SQL, ColumnRow::from_text).await? } else { Vec::new() },
        };
        Ok((Topology::build(rows).map_err(MetadataError::Catalog)?, citus))
    }
}

async fn has_citus_catalog(client: &tokio_postgres::Client) -> Result<bool, MetadataError> {
    let what = "pg_dist_partition presence";
    let messages = client
        .simple_query("SELECT to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL")
        .await
        .map_err(|e| MetadataError::Query { what, reason: describe(&e) })?;
    Ok(messages.iter().any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0) == Some("t"))))
}

async fn rows<T>(
    client: &tokio_postgres::Client,
    what: &'static str,
    sql: &str,
    parse: fn(&[Option<&str>]) -> Result<T, CatalogError>,
) -> Result<Vec<T>, MetadataError> {
    let messages = client.simple_query(sql).await.map_err(|e| MetadataError::Query { what, reason: describe(&e) })?;
    let mut out = Vec::new();
    let mut cols: Vec<Option<&str>> = Vec::new();
    for m in &messages {
        if let SimpleQueryMessage::Row(r) = m {
            cols.clear();
            cols.extend((0..r.len()).map(|i| r.get(i)));
            out.push(parse(&cols).map_err(|source| MetadataError::Row { what, source })?);
        }
    }
    Ok(out)
}
