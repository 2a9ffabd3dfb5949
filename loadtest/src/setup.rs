//! The `setup` scenario: the demo schema (test-support/citus/demo-schema.sql; its idempotent copy
//! for the compose stack is compose/init/demo-schema.sql) plus the load tester's own
//! scratch table, created only where absent so it can run before every load test. On Citus the
//! tables are distributed exactly as in the demo schema; on plain PostgreSQL they are plain tables.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::Client;

use crate::error::describe_pg;
use crate::target::TargetInfo;

/// What `embedding` holds: pgvector's type, or the demo schema's float8[] with our `<->`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VectorKind {
    Pgvector,
    Float8Array,
}

#[derive(Clone, Debug, Serialize)]
pub struct SetupReport {
    pub target: String,
    pub created: Vec<String>,
    pub existing: Vec<String>,
    pub vector: VectorKind,
    pub elapsed_ms: f64,
}

struct Table {
    name: &'static str,
    ddl: String,
    distribute: Option<String>,
    data: Option<String>,
}

fn scaled(base: u64, scale: f64) -> u64 {
    ((base as f64 * scale).round() as u64).max(1)
}

fn tables(scale: f64, pgvector: bool) -> Vec<Table> {
    let users = scaled(5000, scale);
    let (events, config, orders) = (scaled(10_000, scale), scaled(200, scale), scaled(8000, scale));
    let (accounts, tenants_kv, tenants) = (scaled(3000, scale), scaled(4000, scale), scaled(300, scale));
    let (page_views, sites, documents, notes) = (scaled(6000, scale), scaled(500, scale), scaled(3000, scale), scaled(1000, scale));
    let (emb_type, emb_cast) = if pgvector { ("vector(4)", "::vector") } else { ("float8[]", "") };
    let colocated = |t: &str| Some(format!("SELECT create_distributed_table('{t}', 'user_id', colocate_with := 'users')"));
    let distributed = |t: &str, col: &str| Some(format!("SELECT create_distributed_table('{t}', '{col}')"));
    vec![
        Table {
            name: "users",
            ddl: "CREATE TABLE users (user_id bigint PRIMARY KEY, username text, email text)".into(),
            distribute: Some("SELECT create_distributed_table('users', 'user_id', shard_count := 32)".into()),
            data: Some(format!(
                "INSERT INTO users SELECT g, 'user' || g, 'user' || g || '@example.com' FROM generate_series(1, {users}) g"
            )),
        },
        Table {
            name: "events",
            ddl: "CREATE TABLE events (event_id bigserial, user_id bigint, kind text, payload jsonb, \
                  created_at timestamptz, PRIMARY KEY (user_id, event_id))"
                .into(),
            distribute: colocated("events"),
            data: Some(format!(
                "INSERT INTO events (user_id, kind, payload, created_at) SELECT 1 + (g % {users}), \
                 (ARRAY['click','view','buy'])[1 + g % 3], jsonb_build_object('n', g), \
                 timestamptz '2024-01-01' + g * interval '1 minute' FROM generate_series(1, {events}) g"
            )),
        },
        Table {
            name: "config",
            ddl: "CREATE TABLE config (key text PRIMARY KEY, value text)".into(),
            distribute: Some("SELECT create_reference_table('config')".into()),
            data: Some(format!("INSERT INTO config SELECT 'key' || g, 'value' || g FROM generate_series(1, {config}) g")),
        },
        Table {
            name: "orders",
            ddl: "CREATE TABLE orders (order_id bigint, user_id bigint, total numeric(10,2), PRIMARY KEY (user_id, order_id))".into(),
            distribute: colocated("orders"),
            data: Some(format!("INSERT INTO orders SELECT g, 1 + (g % {users}), (g % 1000) + 0.99 FROM generate_series(1, {orders}) g")),
        },
        Table {
            name: "accounts",
            ddl: "CREATE TABLE accounts (account_uuid uuid PRIMARY KEY, name text)".into(),
            distribute: distributed("accounts", "account_uuid"),
            data: Some(format!(
                "INSERT INTO accounts SELECT md5('acct' || g)::uuid, 'account ' || g FROM generate_series(1, {accounts}) g"
            )),
        },
        Table {
            name: "tenants_kv",
            ddl: "CREATE TABLE tenants_kv (tenant text, k text, v text, PRIMARY KEY (tenant, k))".into(),
            distribute: distributed("tenants_kv", "tenant"),
            data: Some(format!(
                "INSERT INTO tenants_kv SELECT 'tenant' || (g % {tenants}), 'k' || g, 'v' || g FROM generate_series(1, {tenants_kv}) g"
            )),
        },
        Table {
            name: "page_views",
            ddl: "CREATE TABLE page_views (site_id int, viewed_at timestamptz, url text)".into(),
            distribute: distributed("page_views", "site_id"),
            data: Some(format!(
                "INSERT INTO page_views SELECT g % {sites}, timestamptz '2024-01-01' + g * interval '1 second', \
                 '/page/' || (g % 97) FROM generate_series(1, {page_views}) g"
            )),
        },
        Table {
            name: "documents",
            ddl: format!("CREATE TABLE documents (doc_id bigint PRIMARY KEY, body text, embedding {emb_type})"),
            distribute: distributed("documents", "doc_id"),
            data: Some(format!(
                "INSERT INTO documents SELECT g, 'document body ' || g, ARRAY[sin(g)::float8, cos(g)::float8, \
                 sin(g * 0.5)::float8, cos(g * 0.25)::float8]{emb_cast} FROM generate_series(1, {documents}) g"
            )),
        },
        Table {
            name: "local_notes",
            ddl: "CREATE TABLE local_notes (id int)".into(),
            distribute: None,
            data: Some(format!("INSERT INTO local_notes SELECT generate_series(1, {notes})")),
        },
        // The bulk-insert scenarios write here, not into the demo tables, so repeated runs leave
        // the demo data (and therefore every other scenario's results) unchanged.
        Table {
            name: "loadtest_bulk",
            ddl: "CREATE TABLE loadtest_bulk (user_id bigint, seq int, batch bigint, payload text); \
                  CREATE INDEX loadtest_bulk_batch ON loadtest_bulk (batch)"
                .into(),
            distribute: colocated("loadtest_bulk"),
            data: None,
        },
    ]
}

/// Creates whatever is missing; a second call finds everything and changes nothing.
pub async fn ensure_schema(client: &Client, info: &TargetInfo, scale: f64) -> Result<SetupReport, String> {
    let started = Instant::now();
    let pg = |what: &str, e: tokio_postgres::Error| format!("{what}: {}", describe_pg(&e));
    if info.citus {
        client
            .batch_execute("SET citus.shard_count = 32; SET citus.shard_replication_factor = 1")
            .await
            .map_err(|e| pg("SET citus.*", e))?;
    }
    let documents_exist = table_exists(client, "documents").await?;
    // A documents table that already exists keeps its type; a new one uses pgvector when offered.
    let use_pgvector = !documents_exist && info.pgvector_available;
    if use_pgvector {
        client.batch_execute("CREATE EXTENSION IF NOT EXISTS vector").await.map_err(|e| pg("CREATE EXTENSION vector", e))?;
    }
    let (mut created, mut existing) = (Vec::new(), Vec::new());
    for t in tables(scale, use_pgvector) {
        if table_exists(client, t.name).await? {
            existing.push(t.name.to_string());
            continue;
        }
        client.batch_execute(&t.ddl).await.map_err(|e| pg(&format!("create {}", t.name), e))?;
        if let (true, Some(dist)) = (info.citus, &t.distribute) {
            client.batch_execute(dist).await.map_err(|e| pg(&format!("distribute {}", t.name), e))?;
        }
        if let Some(data) = &t.data {
            client.batch_execute(data).await.map_err(|e| pg(&format!("load {}", t.name), e))?;
            client.batch_execute(&format!("ANALYZE {}", t.name)).await.map_err(|e| pg("ANALYZE", e))?;
        }
        created.push(t.name.to_string());
    }
    let vector = embedding_kind(client).await?;
    if vector == VectorKind::Float8Array {
        ensure_float8_distance(client, info.citus).await?;
    }
    Ok(SetupReport { target: info.name.clone(), created, existing, vector, elapsed_ms: duration_ms(started.elapsed()) })
}

pub async fn table_exists(client: &Client, name: &str) -> Result<bool, String> {
    let row = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .await
        .map_err(|e| format!("look up table {name}: {}", describe_pg(&e)))?;
    Ok(row.get(0))
}

/// The type of `documents.embedding`, which decides how the vector scenario binds its parameter.
pub async fn embedding_kind(client: &Client) -> Result<VectorKind, String> {
    let row = client
        .query_opt(
            "SELECT t.typname::text FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attrelid = to_regclass('documents') AND a.attname = 'embedding'",
            &[],
        )
        .await
        .map_err(|e| format!("inspect documents.embedding: {}", describe_pg(&e)))?
        .ok_or_else(|| "documents.embedding not found (add `--scenario setup`)".to_string())?;
    let typname: String = row.get(0);
    Ok(if typname == "vector" { VectorKind::Pgvector } else { VectorKind::Float8Array })
}

const L2_FUNCTION: &str = "CREATE OR REPLACE FUNCTION l2_distance(a float8[], b float8[]) RETURNS float8 \
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE \
    AS 'SELECT sqrt(sum((x - y) ^ 2)) FROM unnest(a, b) AS t(x, y)'";

// A DO block, because CREATE OPERATOR has no IF NOT EXISTS and workers may already have it.
const L2_OPERATOR: &str = "DO $lt$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_operator WHERE oprname = '<->' \
    AND oprleft = 'float8[]'::regtype AND oprright = 'float8[]'::regtype) THEN \
    CREATE OPERATOR <-> (LEFTARG = float8[], RIGHTARG = float8[], FUNCTION = l2_distance, COMMUTATOR = <->); \
    END IF; END $lt$";

/// Without pgvector, `ORDER BY embedding <-> $1` still needs an operator over float8[]: the
/// statement keeps pgvector's shape, so the proxy classifies it as vector_search either way.
async fn ensure_float8_distance(client: &Client, citus: bool) -> Result<(), String> {
    for sql in [L2_FUNCTION, L2_OPERATOR] {
        client.batch_execute(sql).await.map_err(|e| format!("create the float8[] <-> operator: {}", describe_pg(&e)))?;
        if citus {
            // Shard queries run on the workers, which need the operator too; Citus does not
            // propagate CREATE OPERATOR by itself.
            let rows = client
                .query("SELECT nodename, nodeport, success, result FROM run_command_on_workers($1)", &[&sql])
                .await
                .map_err(|e| format!("create the <-> operator on the workers: {}", describe_pg(&e)))?;
            for r in rows {
                if !r.get::<_, bool>(2) {
                    let (host, port, result): (String, i32, String) = (r.get(0), r.get(1), r.get(3));
                    return Err(format!("create the <-> operator on worker {host}:{port}: {result}"));
                }
            }
        }
    }
    Ok(())
}

pub fn duration_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
