//! One module per subcommand.

mod aux;
mod bench;
mod cameras;
mod command_lines;
mod data_channel;
mod demo;
mod doctor;
mod emulator;
mod export;
mod frames;
mod login;
mod ptz;
mod record;
mod record_stats;
mod status_line;
mod view;

use crate::cli::Command;

/// Run a subcommand.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo(args) => demo::run(args).await,
        Command::Emulator(args) => emulator::run(args).await,
        Command::Login(args) => login::run(args).await,
        Command::Record(args) => record::run(args).await,
        Command::Export(args) => export::run(args).await,
        Command::Cameras(args) => cameras::run(args).await,
        Command::Ptz(args) => ptz::run(args).await,
        Command::Aux(args) => aux::run(args).await,
        Command::View(args) => view::run(args).await,
        Command::Frames(args) => frames::run(args),
        Command::Bench(args) => bench::run(args).await,
        Command::Doctor(args) => doctor::run(args).await,
        Command::BenchWorker(args) => crate::bench::worker::run(args).await,
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM, so that files are finished cleanly either way.
pub async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
