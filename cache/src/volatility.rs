//! Which functions may appear in a cached statement. PostgreSQL's own volatility is in pg_proc,
//! which the proxy does not read per statement; instead a built-in list names what is known to be
//! volatile (never cached, whatever the configuration says) and what is known to be safe
//! (immutable or stable within a key: the key folds in role and session settings). Anything else
//! is volatile unless `cache.cacheable_functions` names it.

/// How a function name is classified by the built-in lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionClass {
    /// Result changes between calls (time, randomness, sequences, side effects, session state
    /// the key cannot see). Never cached.
    Volatile,
    /// Immutable, or stable given the key's role and settings.
    Safe,
    /// Not in either list: volatile unless the operator allow-lists it.
    Unknown,
}

/// Built-in volatile functions and SQL-value keywords. Prefix entries end with `*`.
const VOLATILE: &[&str] = &[
    // Time. The keywords are volatile for caching purposes: a cached row would freeze them.
    "now",
    "clock_timestamp",
    "statement_timestamp",
    "transaction_timestamp",
    "timeofday",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtime",
    "localtimestamp",
    "age",
    "pg_postmaster_start_time",
    "pg_conf_load_time",
    // Randomness and identifiers.
    "random",
    "random_normal",
    "setseed",
    "gen_random_uuid",
    "uuidv4",
    "uuidv7",
    "uuid_generate_*",
    "gen_random_bytes",
    "gen_salt",
    // Sequences and transaction state.
    "nextval",
    "currval",
    "lastval",
    "setval",
    "txid_*",
    "pg_current_xact_id*",
    "pg_current_snapshot",
    "pg_snapshot_*",
    "pg_xact_*",
    "pg_backend_pid",
    "pg_trigger_depth",
    "pg_is_in_recovery",
    "pg_last_*",
    "inet_client_*",
    "inet_server_*",
    // Settings read at run time (the key only covers the settings the proxy tracked).
    "current_setting",
    "set_config",
    // Side effects.
    "pg_sleep",
    "pg_sleep_for",
    "pg_sleep_until",
    "pg_notify",
    "pg_advisory_*",
    "pg_try_advisory_*",
    "pg_cancel_backend",
    "pg_terminate_backend",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "lo_*",
    "dblink*",
    "pg_stat_*",
    "pg_logical_*",
    "pg_create_*",
    "pg_drop_*",
    "citus_*",
    "master_*",
    "run_command_on_*",
];

/// Built-in functions safe to cache.
const SAFE: &[&str] = &[
    // Aggregates and window functions.
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
    "corr",
    "covar_pop",
    "covar_samp",
    "percentile_cont",
    "percentile_disc",
    "mode",
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
    // Conditionals.
    "coalesce",
    "nullif",
    "greatest",
    "least",
    // Strings.
    "lower",
    "upper",
    "initcap",
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
    "replace",
    "concat",
    "concat_ws",
    "left",
    "right",
    "lpad",
    "rpad",
    "position",
    "strpos",
    "split_part",
    "reverse",
    "repeat",
    "translate",
    "ascii",
    "chr",
    "format",
    "quote_ident",
    "quote_literal",
    "quote_nullable",
    "regexp_replace",
    "regexp_match",
    "regexp_matches",
    "regexp_split_to_array",
    "regexp_like",
    "starts_with",
    "md5",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "encode",
    "decode",
    "to_hex",
    "string_to_array",
    "array_to_string",
    "unaccent",
    // Numbers.
    "abs",
    "round",
    "trunc",
    "ceil",
    "ceiling",
    "floor",
    "mod",
    "power",
    "pow",
    "sqrt",
    "cbrt",
    "exp",
    "ln",
    "log",
    "log10",
    "sign",
    "div",
    "width_bucket",
    "gcd",
    "lcm",
    "pi",
    "degrees",
    "radians",
    // Formatting and dates (stable given TimeZone/DateStyle, which the key folds in).
    "to_char",
    "to_number",
    "to_date",
    "to_timestamp",
    "date_trunc",
    "date_part",
    "extract",
    "date_bin",
    "make_date",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "make_interval",
    "justify_days",
    "justify_hours",
    "justify_interval",
    "isfinite",
    // Arrays, JSON, ranges.
    "array_length",
    "array_lower",
    "array_upper",
    "array_position",
    "array_positions",
    "array_remove",
    "array_replace",
    "array_append",
    "array_prepend",
    "array_cat",
    "cardinality",
    "unnest",
    "generate_series",
    "generate_subscripts",
    "to_json",
    "to_jsonb",
    "row_to_json",
    "array_to_json",
    "json_build_object",
    "jsonb_build_object",
    "json_build_array",
    "jsonb_build_array",
    "json_extract_path",
    "jsonb_extract_path",
    "json_extract_path_text",
    "jsonb_extract_path_text",
    "jsonb_set",
    "jsonb_strip_nulls",
    "jsonb_pretty",
    "jsonb_typeof",
    "json_typeof",
    "jsonb_array_length",
    "json_array_length",
    "jsonb_each",
    "jsonb_each_text",
    "json_each",
    "json_each_text",
    "jsonb_array_elements",
    "jsonb_array_elements_text",
    "json_array_elements",
    "json_array_elements_text",
    "jsonb_object_keys",
    "json_object_keys",
    "jsonb_path_query",
    "jsonb_path_exists",
    "lower_inf",
    "upper_inf",
    "isempty",
    // Identity of the session (the key folds in the role and search_path).
    "current_user",
    "session_user",
    "current_role",
    "user",
    "current_schema",
    "current_database",
    "current_catalog",
    // pgvector.
    "l2_distance",
    "cosine_distance",
    "inner_product",
    "l1_distance",
    "vector_dims",
    "vector_norm",
    "l2_normalize",
];

/// Classifies `name` (as called: any case, optionally `pg_catalog.`-qualified or quoted).
pub fn function_class(name: &str) -> FunctionClass {
    let name = normalize(name);
    let bare = name.strip_prefix("pg_catalog.").unwrap_or(&name);
    if VOLATILE.iter().any(|p| matches(p, bare)) {
        FunctionClass::Volatile
    } else if !bare.contains('.') && SAFE.contains(&bare) {
        // A same-named function in another schema is the user's own: unknown.
        FunctionClass::Safe
    } else {
        FunctionClass::Unknown
    }
}

/// Whether a statement calling `name` may be cached, going by the built-in lists alone
/// (unknown functions count as volatile; `Policy::function_is_cacheable` adds the allow-list).
pub fn function_is_cacheable(name: &str) -> bool {
    function_class(name) == FunctionClass::Safe
}

/// Lowercases unquoted parts and strips quotes: `PG_CATALOG."Now"` → `pg_catalog.Now`.
pub(crate) fn normalize(name: &str) -> String {
    name.trim()
        .split('.')
        .map(|part| match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => part.to_ascii_lowercase(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        for f in ["now", "NOW", "pg_catalog.now", "random", "nextval", "uuid_generate_v4", "CURRENT_TIMESTAMP", "txid_current"] {
            assert_eq!(function_class(f), FunctionClass::Volatile, "{f}");
        }
        for f in ["lower", "COUNT", "pg_catalog.upper", "coalesce", "current_user"] {
            assert_eq!(function_class(f), FunctionClass::Safe, "{f}");
        }
        for f in ["my_func", "app.lower", "\"Lower\""] {
            assert_eq!(function_class(f), FunctionClass::Unknown, "{f}");
        }
    }
}
