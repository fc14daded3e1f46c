//! The `coupon-issuer` command: `serve` runs the service, `migrate` applies migrations, `compare`
//! runs the strategy lab.

use clap::{Parser, Subcommand};
use coupon_issuer::config::Settings;
use coupon_issuer::startup::Application;
use coupon_issuer::{store, telemetry};

#[derive(Parser)]
#[command(version, about = "Limited, first-come coupons for flash sales")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service and the writer (applies migrations first).
    Serve(Settings),
    /// Create the database if needed and apply migrations, then exit.
    Migrate {
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/coupon_issuer"
        )]
        database_url: String,
    },
    /// Run every strategy of the lab under the same spike and print one table (see README).
    Compare(coupon_issuer::lab::compare::CompareArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    match Cli::parse().command {
        Command::Serve(settings) => serve(settings).await,
        Command::Migrate { database_url } => {
            let db = store::connect(&database_url, 1).await?;
            store::migrate(&db).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Compare(args) => coupon_issuer::lab::compare::run(args).await,
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    let stop = app.stop_handle();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: finishing requests in flight");
        stop.stop().await;
    });
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let ctrl_c = tokio::signal::ctrl_c();
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
