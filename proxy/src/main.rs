//! The `citus-proxy` binary: configuration, logging and signals around `server::run`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use citus_proxy::{cli, context::Context, logging, server, shutdown::Shutdown};
use tracing::info;

fn main() -> ExitCode {
    let matches = cli::command().get_matches();
    if matches.subcommand_name() == Some("config-reference") {
        print!("{}", cli::reference_markdown());
        return ExitCode::SUCCESS;
    }
    let config = match cli::load_config(&matches) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("citus-proxy: {e}");
            return ExitCode::from(2);
        }
    };
    if matches.subcommand_name() == Some("check-config") {
        // The effective value of every key, passwords masked (the Debug form would show them).
        for (key, value) in &config.values {
            println!("{key} = {value}");
        }
        return ExitCode::SUCCESS;
    }
    if let Some(("explain", sub)) = matches.subcommand() {
        return explain(&config, sub);
    }
    if let Some(("flush-cache", sub)) = matches.subcommand() {
        return flush_cache(&config, sub);
    }
    if let Err(e) = logging::init(&config.log) {
        eprintln!("citus-proxy: {e}");
        return ExitCode::from(2);
    }
    match serve(config, cli::config_source(&matches)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("citus-proxy: {e:#}");
            ExitCode::FAILURE
        }
    }
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
            eprintln!("citus-proxy: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(citus_proxy::explain::explain(config, &sql, &params, format)) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("citus-proxy explain: {e}");
            ExitCode::FAILURE
        }
    }
}

fn flush_cache(config: &citus_proxy::config::Config, m: &clap::ArgMatches) -> ExitCode {
    let admin = m.get_one::<String>("admin-url").cloned();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("citus-proxy: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(citus_proxy::flush::flush(config, admin.as_deref())) {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("citus-proxy flush-cache: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: citus_proxy::config::Config, source: citus_proxy::context::ConfigSource) -> anyhow::Result<()> {
    // The main thread accepts and runs the background tasks; sessions run on the workers.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let workers = citus_proxy::workers::Workers::start(config.runtime.worker_threads as usize)
        .context("cannot start the session worker threads (configuration key `runtime.worker_threads`)")?;
    runtime.block_on(async move {
        let listen = config.listen;
        let ctx = Context::new(config).context("start-up")?.with_source(source);
        let listener = citus_proxy::net::listener::bind(listen, ctx.config.listen_reuseport)
            .with_context(|| format!("cannot listen on {listen} (configuration key `listen`)"))?;
        let shutdown = Shutdown::default();
        tokio::spawn(watch_signals(shutdown.clone()));
        server::run_on(listener, Arc::new(ctx), &shutdown, Some(&workers)).await;
        Ok(())
    })
}

/// SIGTERM drains; SIGINT (or a second SIGTERM) closes at once.
async fn watch_signals(shutdown: Shutdown) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
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
        }
    }
}
