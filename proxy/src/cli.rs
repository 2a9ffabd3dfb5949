//! The command line: one flag per configuration key (derived from the key registry), `--config`
//! for the TOML file, and the subcommands.

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::config::keys::{Key, KEYS};
use crate::config::{self, Config, ConfigError, Overrides};

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
        .subcommand(Command::new("check-config").about("Load and validate the configuration, print it, and exit"))
        .subcommand(Command::new("config-reference").about("Print the configuration reference (Markdown) and exit"))
        .subcommand(
            Command::new("flush-cache")
                .about("Empty the result cache of every proxy instance: through one instance's admin console (--admin-url), or through the shared Redis of `cache.redis_url`")
                .arg(
                    Arg::new("admin-url")
                        .long("admin-url")
                        .value_name("URL")
                        .help("postgres://ADMIN@PROXY:6432/citus_proxy (a role listed in admin.users)"),
                ),
        )
        .subcommand(
            Command::new("explain")
                .about("Show where Citus runs a statement: reads the coordinator's metadata (--upstream, with credentials) and routes SQL with the proxy's own code")
                .arg(Arg::new("sql").required(true).value_name("SQL"))
                .arg(
                    Arg::new("param")
                        .long("param")
                        .value_name("VALUE")
                        .action(ArgAction::Append)
                        .help("Value for $1, $2, … in order (bound as text)"),
                )
                .arg(
                    Arg::new("format")
                        .long("format")
                        .value_parser(["text", "json"])
                        .default_value("text")
                        .help("text for people, json for tools"),
                ),
        )
}

fn key_arg(key: &'static Key) -> Arg {
    // Flag names are derived at start-up; clap wants them 'static, and they live for the run.
    let long: &'static str = Box::leak(key.flag_name().into_boxed_str());
    let mut arg = Arg::new(key.path)
        .long(long)
        .value_name("VALUE")
        .action(ArgAction::Set)
        .global(true)
        .help(key.doc);
    if let Some(alias) = key.alias {
        arg = arg.visible_alias(alias);
    }
    arg
}

/// The configuration from file, environment and the flags in `m`.
pub fn load_config(m: &ArgMatches) -> Result<Config, ConfigError> {
    let source = config_source(m);
    config::load(source.file.as_deref(), &source.overrides, |name| std::env::var(name).ok())
}

/// The file and flags the configuration is read from (kept for RELOAD).
pub fn config_source(m: &ArgMatches) -> crate::context::ConfigSource {
    let mut overrides = Overrides::default();
    for key in KEYS {
        if let Some(v) = m.get_one::<String>(key.path) {
            overrides.flags.insert(key.path, v.clone());
        }
    }
    crate::context::ConfigSource { file: m.get_one::<String>("config").map(std::path::PathBuf::from), overrides }
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
