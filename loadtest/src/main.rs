//! The binary edge: parse, run on a multi-threaded runtime, turn the outcome into an exit status
//! (0 every class met its target, 1 some class missed it, 2 usage or connection errors).

use clap::Parser;

use citus_loadtest::cli::Args;
use citus_loadtest::report::EXIT_ERROR;

fn main() {
    // clap itself exits with status 2 on malformed flags.
    let args = Args::parse();
    let code = match real_main(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("citus-loadtest: {e:#}");
            EXIT_ERROR
        }
    };
    std::process::exit(code);
}

fn real_main(args: &Args) -> anyhow::Result<i32> {
    let plan = args.resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    Ok(runtime.block_on(citus_loadtest::run(plan))?)
}
