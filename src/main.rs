//! The `zkmigrate` binary: parse the command line, set up logging, run the
//! command, and turn its outcome into one of DESIGN's exit codes.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use zkmigrate::cli::{Cli, LogFormat};
use zkmigrate::commands;
use zkmigrate::exit::Exit;

fn main() -> ExitCode {
    // clap prints usage errors itself and exits with 2, as DESIGN asks.
    let cli = Cli::parse();
    init_logging(cli.global.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return Exit::Error.into();
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(exit) => exit.into(),
        Err(e) => {
            let exit = e.exit();
            // `{:#}` prints the chain of causes; an invalid plan prints one
            // line per broken rule, each its own `error:` line.
            for line in format!("{:#}", anyhow::Error::from(e)).lines() {
                eprintln!("error: {line}");
            }
            exit.into()
        }
    }
}

/// Logs go to stderr, filtered by ZKMIGRATE_LOG, else RUST_LOG, else
/// `zkmigrate=info`.
fn init_logging(format: LogFormat) {
    let filter = std::env::var("ZKMIGRATE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "zkmigrate=info".to_string());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
