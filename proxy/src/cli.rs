//! The command line: one flag per configuration key (derived from the key registry), `--config`
//! for the TOML file, and the subcommands.

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::config::keys::{Key, Kind, KEYS};
use crate::config::{self, Config, ConfigError, Overrides};

/// The keys `explain` reads: where the coordinator is and how names resolve.
const EXPLAIN_KEYS: &[&str] = &["upstream.url", "upstream.sslmode", "upstream.ca_file", "upstream.connect_timeout", "routing.search_path"];
/// The keys `flush-cache` reads to reach the shared Redis.
const FLUSH_KEYS: &[&str] = &["cache.redis_url", "cache.redis_cluster", "cache.redis_prefix", "cache.redis_timeout"];

/// The server's command (no subcommand runs the proxy) with one flag per key; each subcommand
/// carries only the flags it reads, so its `--help` is short.
pub fn command() -> Command {
    Command::new("citus-proxy")
        .about("PostgreSQL wire-protocol proxy and query router for Citus")
        .version(env!("CARGO_PKG_VERSION"))
        .arg(
            Arg::new("config")
                .long("config")
                .short('c')
                .value_name("FILE")
                .env("CITUS_PROXY_CONFIG")
                .global(true)
                .help("TOML configuration file (flags win over CITUS_PROXY_* variables, variables over the file)"),
        )
        .args(KEYS.iter().map(key_arg))
        .subcommand(Command::new("check-config").about(
            "Load and validate the configuration (the file, CITUS_PROXY_* variables, and server flags written before `check-config`), print it with passwords masked, and exit; every error is listed",
        ))
        .subcommand(Command::new("config-reference").about("Print the configuration reference (Markdown) and exit"))
        .subcommand(
            Command::new("flush-cache")
                .about("Empty the result cache of every proxy instance: through one instance's admin console (--admin-url), or through the shared Redis of `cache.redis_url`")
                .arg(
                    Arg::new("admin-url")
                        .long("admin-url")
                        .value_name("URL")
                        .help("postgres://ADMIN@PROXY:6432/citus_proxy (a role listed in admin.users)"),
                )
                .args(keys_arg(FLUSH_KEYS)),
        )
        .subcommand(
            Command::new("explain")
                .about("Show where Citus runs a statement: reads the coordinator's metadata (--upstream, with credentials) and routes SQL with the proxy's own code")
                // `--param -1`: a negative number is a value, not a flag.
                .allow_negative_numbers(true)
                .arg(Arg::new("sql").required(true).value_name("SQL"))
                .arg(
                    Arg::new("param")
                        .long("param")
                        .value_name("VALUE")
                        .action(ArgAction::Append)
                        .allow_hyphen_values(true)
                        .help("Value for $1, $2, … in order (bound as text); may start with `-`"),
                )
                .arg(
                    Arg::new("format")
                        .long("format")
                        .value_parser(["text", "json"])
                        .default_value("text")
                        .help("text for people, json for tools"),
                )
                .args(keys_arg(EXPLAIN_KEYS)),
        )
}

fn keys_arg(paths: &'static [&'static str]) -> impl Iterator<Item = Arg> {
    paths.iter().filter_map(|p| crate::config::keys::find(p)).map(key_arg)
}

fn key_arg(key: &'static Key) -> Arg {
    // Flag names are derived at start-up; clap wants them 'static, and they live for the run.
    let long: &'static str = Box::leak(key.flag_name().into_boxed_str());
    // The default is shown in the help, not given to clap: a clap default would count as a
    // flag and win over the file and the variables.
    let default = if key.default.is_empty() { "unset" } else { key.default };
    let mut arg = Arg::new(key.path)
        .long(long)
        .value_name(value_name(key.kind))
        .action(ArgAction::Set)
        .help(format!("{} [default: {default}]", key.doc));
    if let Some(alias) = key.alias {
        arg = arg.visible_alias(alias);
    }
    arg
}

fn value_name(kind: Kind) -> &'static str {
    match kind {
        Kind::SocketAddr => "HOST:PORT",
        Kind::SocketAddrOrOff => "HOST:PORT|off",
        Kind::PgUrl | Kind::RedisUrl => "URL",
        Kind::Duration => "DURATION",
        Kind::Int { .. } | Kind::Float { .. } => "NUMBER",
        Kind::Bool => "true|false",
        Kind::File => "FILE",
        Kind::LogFilter => "LEVEL",
        Kind::Choice(_) | Kind::Str | Kind::Rules => "VALUE",
    }
}

/// The configuration from file, environment and the flags in `m`.
pub fn load_config(m: &ArgMatches) -> Result<Config, ConfigError> {
    let source = config_source(m);
    config::load(source.file.as_deref(), &source.overrides, |name| std::env::var(name).ok())
}

/// The file and flags the configuration is read from (kept for RELOAD).
pub fn config_source(m: &ArgMatches) -> crate::context::ConfigSource {
    let mut overrides = Overrides::default();
    // Server flags before the subcommand, then the subcommand's own (which win).
    let levels = std::iter::once(m).chain(m.subcommand().map(|(_, sub)| sub));
    for level in levels {
        for key in KEYS {
            if let Ok(Some(v)) = level.try_get_one::<String>(key.path) {
                overrides.flags.insert(key.path, v.clone());
            }
        }
    }
    let file = m
        .subcommand()
        .and_then(|(_, sub)| sub.try_get_one::<String>("config").ok().flatten())
        .or_else(|| m.try_get_one::<String>("config").ok().flatten())
        .map(std::path::PathBuf::from);
    crate::context::ConfigSource { file, overrides }
}

/// The configuration reference as a Markdown table (docs/configuration.md is checked against it).
pub fn reference_markdown() -> String {
    let mut s = String::from("| key | default | flag | environment variable | meaning |\n|---|---|---|---|---|\n");
    for k in KEYS {
        let flag = match k.alias {
            Some(a) => format!("`--{}` (`--{a}`)", k.flag_name()),
            None => format!("`--{}`", k.flag_name()),
        };
        let env = match k.alias_env() {
            Some(a) => format!("`{}` (`{a}`)", k.env_name()),
            None => format!("`{}`", k.env_name()),
        };
        let default = if k.default.is_empty() { "(unset)".to_string() } else { format!("`{}`", k.default) };
        s.push_str(&format!("| `{}` | {default} | {flag} | {env} | {} |\n", k.path, k.doc));
    }
    s
}
