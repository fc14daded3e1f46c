//! The `coupon-lab` command: `serve` runs the strategy lab's HTTP server (applying the lab's
//! migrations first), `compare` runs every strategy under the same spike and prints one table.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Subcommand};
use coupon_issuer::telemetry;
use coupon_lab::compare::CompareArgs;
use coupon_lab::{LabServer, ServeSettings};

#[derive(clap::Parser)]
#[command(
    version,
    about = "The strategy lab: eight ways to hand out a limited coupon, side by side"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the lab's routes under /v1/lab (applies the lab's migrations first).
    Serve(ServeSettings),
    /// Run every strategy under the same spike and print one table (see crates/lab/README.md).
    Compare(CompareArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let matches = Cli::command()
        .mut_subcommand("serve", coupon_lab::settings::with_lab_defaults)
        .get_matches();
    let command = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli.command,
        Err(e) => e.exit(),
    };
    let result = match command {
        Command::Serve(settings) => serve(settings).await,
        Command::Compare(args) => coupon_lab::compare::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The error and its causes on one line: a message for the person who started it.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: ServeSettings) -> anyhow::Result<()> {
    let server = LabServer::build(settings).await?;
    let stop = server.stop_handle();
    tokio::spawn(async move {
        coupon_issuer::startup::wait_for_signal().await;
        tracing::info!("signal received: finishing requests in flight");
        stop.stop(true).await;
    });
    server.run_until_stopped().await
}
