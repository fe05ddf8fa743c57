//! `xprotect-webrtc`: the thin binary over the client and emulator crates.

mod bench;
mod cli;
mod commands;
mod exit;
mod settings;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("xprotect-webrtc: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xprotect-webrtc: {error:#}");
            ExitCode::from(exit::code_for(&error))
        }
    }
}

/// Logs go to stderr (stdout may carry video). `RUST_LOG` overrides `-v`.
fn init_logging(verbose: u8) {
    let default = match verbose {
        // The WebRTC stacks warn about transient ICE states that are normal during setup.
        0 => {
            "error,xprotect_client=warn,xprotect_proto=warn,xprotect_emulator=warn,xprotect_webrtc=warn,xprotect_viewer=warn"
        }
        1 => {
            "info,xprotect_client=debug,xprotect_proto=debug,xprotect_emulator=debug,xprotect_webrtc=debug,xprotect_viewer=debug"
        }
        _ => "debug,xprotect_client=trace,xprotect_proto=trace,xprotect_emulator=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
