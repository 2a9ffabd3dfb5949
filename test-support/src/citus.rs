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
    let stmts = [format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"), format!("CREATE DATABASE \"{name}\" TEMPLATE {TEMPLATE_DB}")];
    crate::block_on_private(async move { crate::execute_each(&admin, &stmts).await });
    pg.url(name)
}

fn build_template(pg: &crate::PgServer) {
    let url = pg.fresh_database(TEMPLATE_DB);
    let sql = fixture_sql();
    crate::block_on_private(async move {
        let c = crate::connect(&url).await;
        c.batch_execute(&sql).await.unwrap_or_else(|e| panic!("test harness: build the Citus fixture: {}", crate::describe(&e)));
    });
}

/// The whole fixture as one SQL script.
pub fn fixture_sql() -> String {
    let mut sql = String::from(CATALOG_DDL);
    sql.push_str(CITUS_FUNCTIONS);
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
        out.push_str(&format!("INSERT INTO pg_catalog.{table} ({}) VALUES ({});\n", cols.join(", "), values.join(", ")));
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

/// Stand-ins for the Citus functions that change metadata, under Citus's names and argument
/// lists, so a statement through the proxy calls them exactly as on a real coordinator. They
/// write the catalog rows Citus writes (no shards are created: the fixture's shards are rows
/// only), following Citus's rules: hash ranges split evenly over `shard_count`, shard *i* placed
/// on the *i*-th worker (sorted by name and port) modulo their number, a new table joins the
/// co-location group of its type and shard count; a move takes the co-located shards along.
const CITUS_FUNCTIONS: &str = r#"
CREATE FUNCTION pg_catalog.create_distributed_table(table_name regclass, distribution_column text,
    distribution_type text DEFAULT 'hash', colocate_with text DEFAULT 'default', shard_count int DEFAULT 32)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    att record;
    colo int;
    first_shard bigint;
    step int8 := (2::int8 ^ 32)::int8 / shard_count;
    workers int[];
BEGIN
    SELECT attnum, atttypid, attcollation INTO att FROM pg_attribute
     WHERE attrelid = table_name AND attname = distribution_column AND NOT attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of relation "%" does not exist', distribution_column, table_name;
    END IF;
    SELECT colocationid INTO colo FROM pg_dist_colocation
     WHERE distributioncolumntype = att.atttypid AND shardcount = create_distributed_table.shard_count
     ORDER BY colocationid LIMIT 1;
    IF colo IS NULL OR colocate_with = 'none' THEN
        SELECT coalesce(max(colocationid), 0) + 1 INTO colo FROM pg_dist_colocation;
        INSERT INTO pg_dist_colocation VALUES (colo, create_distributed_table.shard_count, 1, att.atttypid, att.attcollation);
    END IF;
    INSERT INTO pg_dist_partition (logicalrelid, partmethod, partkey, colocationid, repmodel)
    VALUES (table_name, 'h', format('{VAR :varno 1 :varattno %s :vartype %s :vartypmod -1 :varcollid %s :varlevelsup 0 :varnosyn 1 :varattnosyn %s :location -1}',
            att.attnum, att.atttypid::int, att.attcollation::int, att.attnum), colo, 's');
    SELECT coalesce(max(shardid), 102007) + 1 INTO first_shard FROM pg_dist_shard;
    SELECT array_agg(groupid ORDER BY nodename, nodeport) INTO workers FROM pg_dist_node
     WHERE noderole = 'primary' AND isactive AND shouldhaveshards AND groupid <> 0;
    FOR i IN 0 .. shard_count - 1 LOOP
        INSERT INTO pg_dist_shard VALUES (table_name, first_shard + i, 't',
            (-2147483648 + i * step)::text,
            CASE WHEN i = shard_count - 1 THEN '2147483647' ELSE (-2147483648 + (i + 1) * step - 1)::text END);
        INSERT INTO pg_dist_placement (placementid, shardid, shardstate, shardlength, groupid)
        SELECT coalesce(max(placementid), 0) + 1, first_shard + i, 1, 0, workers[1 + i % cardinality(workers)]
          FROM pg_dist_placement;
    END LOOP;
END $fn$;

CREATE FUNCTION pg_catalog.citus_move_shard_placement(shard_id bigint, source_node_name text, source_node_port int,
    target_node_name text, target_node_port int, shard_transfer_mode text DEFAULT 'auto')
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    source_group int;
    target_group int;
BEGIN
    SELECT groupid INTO source_group FROM pg_dist_node WHERE nodename = source_node_name AND nodeport = source_node_port;
    SELECT groupid INTO target_group FROM pg_dist_node WHERE nodename = target_node_name AND nodeport = target_node_port;
    IF source_group IS NULL OR target_group IS NULL THEN
        RAISE EXCEPTION 'node %:% or %:% is not in the metadata', source_node_name, source_node_port, target_node_name, target_node_port;
    END IF;
    -- Co-located shards (same group, same hash range) move together.
    UPDATE pg_dist_placement pl SET groupid = target_group
      FROM pg_dist_shard s JOIN pg_dist_partition p ON p.logicalrelid = s.logicalrelid,
           pg_dist_shard moved JOIN pg_dist_partition mp ON mp.logicalrelid = moved.logicalrelid
     WHERE moved.shardid = shard_id AND mp.colocationid = p.colocationid
       AND s.shardminvalue IS NOT DISTINCT FROM moved.shardminvalue
       AND pl.shardid = s.shardid AND pl.groupid = source_group;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'could not find placement matching "%:%"', source_node_name, source_node_port;
    END IF;
END $fn$;
"#;
