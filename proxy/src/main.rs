//! The `citus-proxy` binary: configuration, logging and signals around `server::run`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use citus_proxy::{cli, context::Context, logging, server, shutdown::Shutdown};
use tracing::info;

fn main() -> ExitCode {
    let matches = cli::command().get_matches();
    if matches.subcommand_name() == Some("config-reference") {
        out(cli::reference_markdown().trim_end());
        return ExitCode::SUCCESS;
    }
    let config = match cli::load_config(&matches) {
        Ok(c) => c,
        Err(e) => {
            // Every error, one per line, each naming its key.
            for one in e.all() {
                say(&format!("citus-proxy: {one}"));
            }
            return ExitCode::from(2);
        }
    };
    if matches.subcommand_name() == Some("check-config") {
        // The effective value of every key, passwords masked (the Debug form would show them).
        for (key, value) in &config.values {
            out(&format!("{key} = {value}"));
        }
        return ExitCode::SUCCESS;
    }
    if let Some(("explain", sub)) = matches.subcommand() {
        return explain(&config, sub);
    }
    if let Some(("flush-cache", sub)) = matches.subcommand() {
        return flush_cache(&config, sub);
    }
    let log = match logging::init(&config.log) {
        Ok(guard) => guard,
        Err(e) => {
            say(&format!("citus-proxy: {e}"));
            return ExitCode::from(2);
        }
    };
    citus_proxy::fd_limit::raise_and_report(config.limits.max_client_connections);
    let code = match serve(config, cli::config_source(&matches)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once, through the log (in its format); `finish` below flushes it before the exit.
            tracing::error!("{}", citus_proxy::config::mask::mask_url(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    };
    log.finish();
    code
}

/// A line on stdout that cannot panic (`println!` does when stdout is a closed pipe: `| head`).
fn out(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// A line on stderr, URL passwords masked, that cannot panic (`eprintln!` does when stderr is a
/// closed pipe).
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{}", citus_proxy::config::mask::mask_url(line));
}

fn explain(config: &citus_proxy::config::Config, m: &clap::ArgMatches) -> ExitCode {
    let sql = m.get_one::<String>("sql").cloned().unwrap_or_default();
    let params: Vec<String> = m.get_many::<String>("param").map(|v| v.cloned().collect()).unwrap_or_default();
    let format = match m.get_one::<String>("format").map(String::as_str) {
        Some("json") => citus_proxy::explain::Format::Json,
        _ => citus_proxy::explain::Format::Text,
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            say(&format!("citus-proxy: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(citus_proxy::explain::explain(config, &sql, &params, format)) {
        Ok(text) => {
            out(&text);
            ExitCode::SUCCESS
        }
        Err(e) => {
            say(&format!("citus-proxy explain: {e}"));
            ExitCode::FAILURE
        }
    }
}

fn flush_cache(config: &citus_proxy::config::Config, m: &clap::ArgMatches) -> ExitCode {
    let admin = m.get_one::<String>("admin-url").cloned();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            say(&format!("citus-proxy: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(citus_proxy::flush::flush(config, admin.as_deref())) {
        Ok(msg) => {
            out(&msg);
            ExitCode::SUCCESS
        }
        Err(e) => {
            say(&format!("citus-proxy flush-cache: {e}"));
            ExitCode::FAILURE
        }
    }
}

fn serve(config: citus_proxy::config::Config, source: citus_proxy::context::ConfigSource) -> anyhow::Result<()> {
    // The main thread accepts and runs the background tasks; sessions run on the workers.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let workers = citus_proxy::workers::Workers::start(config.runtime.worker_threads as usize)
        .context("cannot start the session worker threads (configuration key `runtime.worker_threads`)")?;
    runtime.block_on(async move {
        let listen = config.listen;
        let ctx = Context::new(config).context("start-up")?.with_source(source);
        let listener = citus_proxy::net::listener::bind(listen, ctx.config.listen_reuseport)
            .with_context(|| format!("cannot listen on {listen} (configuration key `listen`)"))?;
        let shutdown = Shutdown::default();
        let ctx = Arc::new(ctx);
        tokio::spawn(watch_signals(shutdown.clone(), Arc::clone(&ctx)));
        server::run_on(listener, ctx, &shutdown, Some(&workers)).await;
        Ok(())
    })
}

/// SIGTERM drains; SIGINT (or a second SIGTERM) closes at once; SIGHUP reloads the
/// configuration (as the console's RELOAD does), applying what can change live.
async fn watch_signals(shutdown: Shutdown, ctx: Arc<Context>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        tracing::error!("cannot install signal handlers; stop the proxy with SIGKILL");
        return;
    };
    let mut terms = 0;
    loop {
        tokio::select! {
            _ = term.recv() => {
                terms += 1;
                if terms == 1 {
                    info!("SIGTERM: draining");
                    shutdown.drain();
                } else {
                    info!("second SIGTERM: closing now");
                    shutdown.close_now();
                }
            }
            _ = int.recv() => {
                info!("SIGINT: closing now");
                shutdown.close_now();
            }
            _ = hup.recv() => {
                info!("SIGHUP: reloading the configuration");
                // Off this task, so a slow catalog read never delays SIGTERM.
                let ctx = Arc::clone(&ctx);
                tokio::spawn(async move {
                    let report = citus_proxy::admin::reload(&ctx).await;
                    citus_proxy::admin::log_reload("SIGHUP", &report);
                });
            }
        }
    }
}
