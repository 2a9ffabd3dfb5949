//! A database that looks to the proxy like a Citus 13.2 coordinator: the demo schema's tables with
//! their rows, and `pg_catalog.pg_dist_*` tables with the exact columns of real Citus, holding the
//! rows dumped from the real cluster (`test-support/citus/`). Set `CITUS_PROXY_TEST_CITUS` to a real
//! coordinator's URL (demo schema loaded) to run the same tests against real Citus instead.

use std::sync::OnceLock;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/citus");
const TEMPLATE_DB: &str = "citus_fixture_template";

#[derive(Debug)]
pub struct CitusCluster {
    url: String,
    real: bool,
}

static CLUSTER: OnceLock<CitusCluster> = OnceLock::new();

/// The coordinator of this test binary: the fixture on the harness's PostgreSQL, or the real
/// coordinator named by `CITUS_PROXY_TEST_CITUS`.
pub fn citus() -> &'static CitusCluster {
    CLUSTER.get_or_init(|| match std::env::var("CITUS_PROXY_TEST_CITUS") {
        Ok(url) if !url.is_empty() => CitusCluster { url, real: true },
        _ => {
            let pg = crate::postgres();
            build_template(pg);
            CitusCluster { url: clone_template(pg, "citus"), real: false }
        }
    })
}

impl CitusCluster {
    /// Superuser URL of the coordinator's `citus` database.
    pub fn url(&self) -> &str {
        &self.url
    }
    /// True when this is a real Citus coordinator rather than the fixture.
    pub fn is_real(&self) -> bool {
        self.real
    }
    /// A private copy of the fixture for a test that changes the catalog (moves a shard, adds a node).
    pub fn private_copy(&self, name: &str) -> String {
        assert!(
            !self.real,
            "this test rewrites pg_dist_* directly, which must not be done to a real coordinator; \
             unset CITUS_PROXY_TEST_CITUS to run it against the fixture"
        );
        clone_template(crate::postgres(), name)
    }
    /// Path of a file in the fixture's data directory (routing-examples.tsv, metadata/…).
    pub fn data_file(name: &str) -> String {
        format!("{DIR}/{name}")
    }
}

fn clone_template(pg: &crate::PgServer, name: &str) -> String {
    let admin = pg.url("postgres");
    let stmts = [
        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        format!("CREATE DATABASE \"{name}\" TEMPLATE {TEMPLATE_DB}"),
    ];
    crate::block_on_private(async move { crate::execute_each(&admin, &stmts).await });
    pg.url(name)
}

fn build_template(pg: &crate::PgServer) {
    let url = pg.fresh_database(TEMPLATE_DB);
    let sql = fixture_sql();
    crate::block_on_private(async move {
        let c = crate::connect(&url).await;
        c.batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("test harness: build the Citus fixture: {}", crate::describe(&e)));
    });
}

/// The whole fixture as one SQL script.
pub fn fixture_sql() -> String {
    let mut sql = String::from(CATALOG_DDL);
    let schema = std::fs::read_to_string(format!("{DIR}/demo-schema.sql")).expect("read demo-schema.sql");
    for line in schema.lines() {
        // Citus's own calls are what the catalog rows below stand for.
        if line.starts_with("SELECT create_") || line.starts_with("SET citus.") {
            continue;
        }
        sql.push_str(line);
        sql.push('\n');
    }
    for table in ["pg_dist_node", "pg_dist_colocation", "pg_dist_partition", "pg_dist_shard", "pg_dist_placement"] {
        sql.push_str(&inserts_from_tsv(table));
    }
    sql
}

fn inserts_from_tsv(table: &str) -> String {
    let path = format!("{DIR}/metadata/{table}.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    // `relid` is the dumped cluster's own OID, not a catalog column.
    let keep: Vec<usize> = (0..header.len()).filter(|&i| header[i] != "relid").collect();
    let cols: Vec<&str> = keep.iter().map(|&i| header[i]).collect();
    let mut out = String::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let values: Vec<String> = keep
            .iter()
            .map(|&i| match fields.get(i) {
                Some(v) if !v.is_empty() => format!("'{}'", v.replace('\'', "''")),
                _ => "NULL".to_string(),
            })
            .collect();
        out.push_str(&format!(
            "INSERT INTO pg_catalog.{table} ({}) VALUES ({});\n",
            cols.join(", "),
            values.join(", ")
        ));
    }
    out
}

/// Citus 13.2's catalog tables, column for column (facts.md §2), created in pg_catalog as Citus does.
const CATALOG_DDL: &str = r#"
SET allow_system_table_mods = on;
CREATE TYPE pg_catalog.noderole AS ENUM ('primary', 'secondary', 'unavailable');
CREATE TABLE pg_catalog.pg_dist_partition (
    logicalrelid regclass NOT NULL, partmethod "char" NOT NULL, partkey text,
    colocationid integer NOT NULL DEFAULT 0, repmodel "char" NOT NULL DEFAULT 'c', autoconverted boolean DEFAULT false);
CREATE UNIQUE INDEX pg_dist_partition_logical_relid_index ON pg_catalog.pg_dist_partition (logicalrelid);
CREATE TABLE pg_catalog.pg_dist_shard (
    logicalrelid regclass NOT NULL, shardid bigint NOT NULL, shardstorage "char" NOT NULL,
    shardminvalue text, shardmaxvalue text);
CREATE UNIQUE INDEX pg_dist_shard_shardid_index ON pg_catalog.pg_dist_shard (shardid);
CREATE SEQUENCE pg_catalog.pg_dist_placement_placementid_seq;
CREATE TABLE pg_catalog.pg_dist_placement (
    placementid bigint NOT NULL DEFAULT nextval('pg_catalog.pg_dist_placement_placementid_seq'),
    shardid bigint NOT NULL, shardstate integer NOT NULL, shardlength bigint NOT NULL, groupid integer NOT NULL);
CREATE SEQUENCE pg_catalog.pg_dist_node_nodeid_seq;
CREATE SEQUENCE pg_catalog.pg_dist_groupid_seq;
CREATE TABLE pg_catalog.pg_dist_node (
    nodeid integer NOT NULL DEFAULT nextval('pg_catalog.pg_dist_node_nodeid_seq') PRIMARY KEY,
    groupid integer NOT NULL DEFAULT nextval('pg_catalog.pg_dist_groupid_seq'),
    nodename text NOT NULL, nodeport integer NOT NULL DEFAULT 5432, noderack text NOT NULL DEFAULT 'default',
    hasmetadata boolean NOT NULL DEFAULT false, isactive boolean NOT NULL DEFAULT true,
    noderole pg_catalog.noderole NOT NULL DEFAULT 'primary', nodecluster name NOT NULL DEFAULT 'default',
    metadatasynced boolean DEFAULT false, shouldhaveshards boolean NOT NULL DEFAULT true,
    nodeisclone boolean NOT NULL DEFAULT false, nodeprimarynodeid integer NOT NULL DEFAULT 0,
    UNIQUE (nodename, nodeport));
CREATE TABLE pg_catalog.pg_dist_colocation (
    colocationid integer NOT NULL PRIMARY KEY, shardcount integer NOT NULL, replicationfactor integer NOT NULL,
    distributioncolumntype oid NOT NULL, distributioncolumncollation oid NOT NULL);
GRANT SELECT ON pg_catalog.pg_dist_partition, pg_catalog.pg_dist_shard, pg_catalog.pg_dist_placement,
    pg_catalog.pg_dist_node, pg_catalog.pg_dist_colocation TO PUBLIC;
RESET allow_system_table_mods;
"#;
