//! The catalog queries. Each runs unchanged on a real Citus coordinator and on a plain PostgreSQL
//! that only has tables named like Citus's catalogs (no Citus functions are called: the
//! distribution column is found by parsing `:varattno` out of `partkey`).

/// One row per Citus table: schema, table, partmethod, distribution column name, its type OID,
/// colocation id, repmodel, collation OID and whether that collation is deterministic.
pub const PARTITIONS_SQL: &str = "\
SELECT n.nspname::text AS schema_name, c.relname::text AS table_name, p.partmethod::text AS partmethod, \
a.attname::text AS dist_column, a.atttypid::int8 AS dist_type, p.colocationid::int8 AS colocationid, \
p.repmodel::text AS repmodel, coll.oid::int8 AS collation_oid, coll.collisdeterministic AS collation_deterministic \
FROM pg_catalog.pg_dist_partition p \
JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid \
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = p.logicalrelid \
 AND a.attnum = substring(p.partkey from ':varattno (-?[0-9]+)')::int2 \
LEFT JOIN pg_catalog.pg_collation coll ON coll.oid = substring(p.partkey from ':varcollid ([0-9]+)')::oid \
ORDER BY 1, 2";

/// One row per shard: schema, table, shard id, min and max value (text; NULL for reference tables).
pub const SHARDS_SQL: &str = "\
SELECT n.nspname::text AS schema_name, c.relname::text AS table_name, s.shardid, s.shardminvalue, s.shardmaxvalue \
FROM pg_catalog.pg_dist_shard s \
JOIN pg_catalog.pg_class c ON c.oid = s.logicalrelid \
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
ORDER BY s.shardid";

/// One row per placement: placement id, shard id, shard state, group id (joins pg_dist_node.groupid).
pub const PLACEMENTS_SQL: &str = "\
SELECT placementid, shardid, shardstate::int8, groupid::int8 FROM pg_catalog.pg_dist_placement ORDER BY placementid";

/// One row per node; the last two columns say whether it can plan distributed queries.
pub const NODES_SQL: &str = "\
SELECT nodeid::int8, groupid::int8, nodename, nodeport::int8, isactive, noderole::text, nodecluster::text, \
shouldhaveshards, hasmetadata, metadatasynced FROM pg_catalog.pg_dist_node ORDER BY nodeid";

/// Every user relation outside the system schemas: schema, name, relkind.
pub const RELATIONS_SQL: &str = "\
SELECT n.nspname::text, c.relname::text, c.relkind::text \
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
 AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
 AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' \
ORDER BY 1, 2";

/// The live columns of every Citus table, in attnum order: schema, table, attnum, name, type OID,
/// whether it has a default (DEFAULT, identity or generated), and whether it is an int2/int4
/// column whose default draws from a sequence (a worker refuses to evaluate those, so such
/// INSERTs must run on the coordinator). Needed for INSERT without a column list and for
/// resolving unqualified column names in joins.
pub const COLUMNS_SQL: &str = "\
SELECT n.nspname::text, c.relname::text, a.attnum::int8, a.attname::text, a.atttypid::int8, \
(a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') AS has_default, \
(a.atttypid IN (21, 23) AND (a.attidentity <> '' \
 OR coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid) LIKE '%nextval(%', false))) AS int_sequence_default \
FROM pg_catalog.pg_dist_partition p \
JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid \
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
JOIN pg_catalog.pg_attribute a ON a.attrelid = p.logicalrelid AND a.attnum > 0 AND NOT a.attisdropped \
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
ORDER BY 1, 2, 3";

/// A fingerprint of every catalog the snapshot is built from, in one cheap row, read every
/// `metadata.probe_interval`; the full queries above run only when it changes. Per catalog it
/// is the row count and the sum of the row versions' `xmin`. Any INSERT, UPDATE or DELETE
/// changes it: an UPDATE writes a new row version with a newer xmin (a shard move rewrites the
/// placement's `groupid`; `citus_update_node`, `citus_disable_node` rewrite pg_dist_node), an
/// INSERT or DELETE changes the count (`create_distributed_table`, `citus_add_node`,
/// `citus_remove_node`, a shard split), and DELETE + INSERT swaps an old xmin for a newer one
/// (a move that re-creates the placement). The user relations part (pg_class rows; attributes
/// of Citus tables) catches CREATE / DROP / ALTER / RENAME made outside the proxy. VACUUM and
/// ANALYZE update pg_class in place (same xmin), so they do not cause reloads.
pub const FINGERPRINT_SQL: &str = "\
SELECT concat_ws(' ', \
(SELECT count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_catalog.pg_dist_partition), \
(SELECT count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_catalog.pg_dist_shard), \
(SELECT count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_catalog.pg_dist_placement), \
(SELECT count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_catalog.pg_dist_node), \
(SELECT count(*) || ':' || coalesce(sum(a.xmin::text::int8), 0) FROM pg_catalog.pg_attribute a \
 JOIN pg_catalog.pg_dist_partition p ON a.attrelid = p.logicalrelid), \
(SELECT count(*) || ':' || coalesce(sum(c.xmin::text::int8), 0) \
 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
 AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'))";

/// The fingerprint of a database without the Citus catalog: whether it appeared (CREATE
/// EXTENSION citus), and its user relations as in `FINGERPRINT_SQL`.
pub const PLAIN_FINGERPRINT_SQL: &str = "\
SELECT concat_ws(' ', to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL, \
(SELECT count(*) || ':' || coalesce(sum(c.xmin::text::int8), 0) \
 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
 AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'))";
