//! Function lists: which calls change Citus metadata, which are aggregates, which are known to be
//! deterministic (everything else counts as volatile for result caching).

/// Citus UDFs that change the cluster's metadata (tables, shards, placements, nodes).
const METADATA_CHANGING: &[&str] = &[
    "create_distributed_table",
    "create_distributed_table_concurrently",
    "create_reference_table",
    "undistribute_table",
    "alter_distributed_table",
    "alter_table_set_access_method",
    "alter_old_partitions_set_access_method",
    "citus_add_local_table_to_metadata",
    "remove_local_tables_from_metadata",
    "create_distributed_function",
    "citus_add_node",
    "citus_add_inactive_node",
    "citus_add_secondary_node",
    "citus_activate_node",
    "citus_disable_node",
    "citus_remove_node",
    "citus_update_node",
    "citus_set_node_property",
    "citus_set_coordinator_host",
    "citus_move_shard_placement",
    "citus_copy_shard_placement",
    "citus_split_shard_by_split_points",
    "isolate_tenant_to_new_shard",
    "rebalance_table_shards",
    "replicate_table_shards",
    "replicate_reference_tables",
    "citus_rebalance_start",
    "citus_rebalance_stop",
    "citus_drain_node",
    "citus_schema_distribute",
    "citus_schema_undistribute",
    "citus_schema_move",
    "update_distributed_table_colocation",
    "mark_tables_colocated",
    "create_time_partitions",
    "drop_old_time_partitions",
    "citus_create_restore_point",
    "start_metadata_sync_to_node",
    "stop_metadata_sync_to_node",
    "start_metadata_sync_to_all_nodes",
    "citus_finish_pending_metadata_sync",
    "fix_partition_shard_index_names",
];

/// Old `master_*` names that only read.
const MASTER_READERS: &[&str] = &[
    "master_get_table_metadata",
    "master_get_table_ddl_events",
    "master_get_active_worker_nodes",
    "master_get_round_robin_candidate_nodes",
];

pub fn changes_metadata(f: &str) -> bool {
    METADATA_CHANGING.contains(&f) || (f.starts_with("master_") && !MASTER_READERS.contains(&f))
}

/// Prefixes of Citus's own functions (metadata, shard moves, node management, helpers).
const CITUS_PREFIXES: &[&str] = &["citus_", "master_", "worker_", "run_command_on_", "create_distributed_", "get_rebalance"];

/// Citus functions outside those prefixes.
const CITUS_NAMED: &[&str] = &[
    "create_reference_table",
    "undistribute_table",
    "alter_distributed_table",
    "rebalance_table_shards",
    "isolate_tenant_to_new_shard",
    "update_distributed_table_colocation",
    "truncate_local_data_after_distributing_table",
];

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// A Citus function by its name (without schema, any case): workers refuse most of them
/// ("operation is not allowed on this node"), so a statement calling one stays on the coordinator.
pub fn is_citus_function(f: &str) -> bool {
    CITUS_PREFIXES.iter().any(|p| starts_with_ignore_case(f, p))
        || CITUS_NAMED.iter().chain(METADATA_CHANGING).any(|n| n.eq_ignore_ascii_case(f))
}

/// Sequence functions: on another node they would draw from that node's sequence (or find none).
pub fn is_sequence_function(f: &str) -> bool {
    ["nextval", "currval", "setval", "lastval"].iter().any(|n| n.eq_ignore_ascii_case(f))
}

pub fn is_worker_registration(f: &str) -> bool {
    matches!(f, "citus_add_node" | "master_add_node")
}

pub fn is_shard_creation(f: &str) -> bool {
    matches!(f, "create_distributed_table" | "create_distributed_table_concurrently" | "master_create_distributed_table")
}

const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "array_agg",
    "string_agg",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "bool_and",
    "bool_or",
    "every",
    "bit_and",
    "bit_or",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "percentile_cont",
    "percentile_disc",
    "mode",
    "corr",
    "covar_pop",
    "covar_samp",
    "regr_count",
    "xmlagg",
    "range_agg",
    "any_value",
];

pub fn is_aggregate(f: &str) -> bool {
    AGGREGATES.contains(&f)
}

/// Deterministic for a given input (immutable in PostgreSQL terms, plus aggregates). Stable
/// functions such as now() are deliberately absent: their results change between statements.
const DETERMINISTIC: &[&str] = &[
    "abs",
    "round",
    "floor",
    "ceil",
    "ceiling",
    "trunc",
    "sqrt",
    "cbrt",
    "power",
    "pow",
    "mod",
    "sign",
    "ln",
    "log",
    "log10",
    "exp",
    "greatest",
    "least",
    "coalesce",
    "nullif",
    "div",
    "width_bucket",
    "lower",
    "upper",
    "length",
    "char_length",
    "character_length",
    "octet_length",
    "bit_length",
    "substr",
    "substring",
    "trim",
    "btrim",
    "ltrim",
    "rtrim",
    "concat",
    "concat_ws",
    "replace",
    "left",
    "right",
    "lpad",
    "rpad",
    "position",
    "strpos",
    "split_part",
    "md5",
    "starts_with",
    "reverse",
    "repeat",
    "initcap",
    "to_hex",
    "ascii",
    "chr",
    "translate",
    "regexp_replace",
    "regexp_match",
    "regexp_matches",
    "jsonb_build_object",
    "json_build_object",
    "jsonb_build_array",
    "json_build_array",
    "jsonb_extract_path",
    "jsonb_extract_path_text",
    "json_extract_path",
    "json_extract_path_text",
    "jsonb_array_length",
    "json_array_length",
    "jsonb_typeof",
    "to_jsonb",
    "to_json",
    "array_length",
    "cardinality",
    "array_position",
    "array_positions",
    "array_append",
    "array_prepend",
    "array_cat",
    "array_remove",
    "array_to_string",
    "string_to_array",
    "array_lower",
    "array_upper",
    "date_part",
    "extract",
    "date_trunc",
    "make_date",
    "make_interval",
    "isfinite",
    "hashtext",
    "hashint8",
    "hashint4",
    "uuid_hash",
    "worker_hash",
    "encode",
    "decode",
    "sha256",
    "sha512",
    "l2_distance",
    "cosine_distance",
    "inner_product",
    "vector_dims",
    "l2_norm",
];

pub fn is_deterministic(f: &str) -> bool {
    DETERMINISTIC.contains(&f) || is_aggregate(f)
}
