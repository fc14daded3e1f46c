//! The `coupon-issuer` command: `serve` runs the service, `migrate` applies migrations,
//! `reconcile` compares (and repairs) Redis against Postgres; `events` and `inspect` are the
//! admin CLI (see `coupon_issuer::cli`). The strategy lab is another binary, `coupon-lab`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use coupon_issuer::config::{Database, Settings};
use coupon_issuer::startup::Application;
use coupon_issuer::{cli, startup, store, telemetry};

#[derive(Parser)]
#[command(version, about = "Limited, first-come coupons for flash sales")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once at start: the size of the largest variant (Settings) costs nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run the HTTP service and the writer (applies migrations first).
    Serve(Settings),
    /// Create the database if needed and apply migrations, then exit.
    Migrate(Database),
    /// Compare Redis with Postgres for each event day; with --repair, bring them into agreement.
    /// Exits 3 when differences remain.
    Reconcile(coupon_issuer::reconcile::ReconcileArgs),
    /// Create, list, show and import events (the admin API's validation).
    Events {
        #[command(flatten)]
        connection: cli::Connection,
        #[command(subcommand)]
        command: cli::EventsCommand,
    },
    /// One event day at a glance: window, count, limit, remaining, users, stream, writer lag.
    Inspect {
        #[command(flatten)]
        connection: cli::Connection,
        #[command(flatten)]
        args: cli::InspectArgs,
    },
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let command = Cli::parse().command;
    // The admin commands print tables on stdout; only warnings go to the log (stderr).
    match command {
        Command::Events { .. } | Command::Inspect { .. } => telemetry::init_with_default("warn"),
        _ => telemetry::init(),
    }
    match run(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(settings) => serve(settings).await,
        Command::Migrate(database) => {
            let db = store::connect(&database.parse()?, 1).await?;
            store::migrate(&db).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Reconcile(args) => {
            let report = coupon_issuer::reconcile::run(&args).await?;
            print!("{}", report.render(args.repair));
            std::process::exit(report.exit_code());
        }
        Command::Events { connection, command } => cli::run_events(&connection, command).await,
        Command::Inspect { connection, args } => cli::run_inspect(&connection, args).await,
    }
}

/// A failure is a message for the person who started the command (the setting at fault, the
/// missing event), not a backtrace: the error and its causes, on one line, exit status 1.
/// (anyhow's `Debug`, which `main` returning a `Result` prints, spreads the causes over
/// several lines and adds a backtrace when RUST_BACKTRACE is set.) A cause whose text an
/// outer message already quotes (an error that shows its source in its own message) is said
/// once.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(text.trim()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    let stop = app.stop_handle();
    tokio::spawn(async move {
        startup::wait_for_signal().await;
        tracing::info!("signal received: finishing requests in flight");
        stop.stop().await;
    });
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}
