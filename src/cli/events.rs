//! `coupon-issuer events create|list|show|import`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use super::{Connection, Session, print_json, table};
use crate::domain::{Discount, Event, EventId, NewEvent, NewEventRequest};
use crate::http::{EventView, parse_json};

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Create one event, from a JSON file (the body of `POST /v1/events`) or from flags.
    Create(Box<CreateArgs>),
    /// List every event, newest first.
    List,
    /// Show one event.
    Show {
        /// The event id.
        id: String,
    },
    /// Create many events from a JSON file holding an array of event definitions. Every
    /// definition is checked first; if any is invalid, none is created.
    Import {
        /// The JSON file: `[{"name": ..., ...}, ...]`.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// A JSON file with the event, as `POST /v1/events` takes it ("-" reads standard input).
    #[arg(long, conflicts_with_all = ["name", "timezone", "starts_on", "ends_on", "open", "close", "limit", "shards", "percent", "amount"])]
    file: Option<PathBuf>,
    #[arg(long, required_unless_present = "file")]
    name: Option<String>,
    /// IANA time zone, like Asia/Seoul.
    #[arg(long, required_unless_present = "file")]
    timezone: Option<String>,
    /// First day, YYYY-MM-DD.
    #[arg(long, required_unless_present = "file")]
    starts_on: Option<String>,
    /// Last day, YYYY-MM-DD (inclusive).
    #[arg(long, required_unless_present = "file")]
    ends_on: Option<String>,
    /// Daily window opens, HH:MM local time.
    #[arg(long, required_unless_present = "file")]
    open: Option<String>,
    /// Daily window closes, HH:MM or 24:00.
    #[arg(long, required_unless_present = "file")]
    close: Option<String>,
    /// Coupons per day.
    #[arg(long, required_unless_present = "file")]
    limit: Option<i64>,
    /// Split each day's stock over this many buckets (1-64; default 1), for a drop hotter than
    /// one Redis core. A sharded event's limit can be lowered, never raised.
    #[arg(long)]
    shards: Option<i64>,
    /// Days the coupons stay usable after the last day.
    #[arg(long, default_value_t = 30)]
    valid_days_after_end: i64,
    /// Percent off (1-100).
    #[arg(long, required_unless_present_any = ["file", "amount"], conflicts_with = "amount")]
    percent: Option<i64>,
    /// Amount off, with --currency.
    #[arg(long, requires = "currency")]
    amount: Option<i64>,
    /// ISO 4217 currency of --amount, like KRW.
    #[arg(long)]
    currency: Option<String>,
}

pub async fn run_events(connection: &Connection, command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::Create(args) => {
            // Validate before connecting: a typo should not need a database to be reported.
            let spec = NewEvent::parse((*args).request()?).map_err(anyhow::Error::msg)?;
            let ctx = connection.open().await?;
            let event = ctx.catalog.create(spec).await?;
            show(&ctx, &event)
        }
        EventsCommand::List => {
            let ctx = connection.open().await?;
            list(&ctx, &ctx.catalog.list().await?)
        }
        EventsCommand::Show { id } => {
            let id = EventId::parse(&id).map_err(|e| anyhow::anyhow!("event id: {e}"))?;
            let ctx = connection.open().await?;
            let event = ctx.catalog.get(id).await?.context("no such event")?;
            show(&ctx, &event)
        }
        EventsCommand::Import { file } => import(connection, &file).await,
    }
}

impl CreateArgs {
    fn request(self) -> anyhow::Result<NewEventRequest> {
        if let Some(file) = &self.file {
            let bytes = read(file)?;
            return parse_json(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()));
        }
        let missing = || anyhow::anyhow!("missing a flag (see --help)");
        let discount = match (self.percent, self.amount, self.currency) {
            (Some(value), None, _) => Discount::Percent { value },
            (None, Some(value), Some(currency)) => Discount::Amount { value, currency },
            _ => bail!("give --percent, or --amount with --currency"),
        };
        Ok(NewEventRequest {
            name: self.name.ok_or_else(missing)?,
            timezone: self.timezone.ok_or_else(missing)?,
            starts_on: self.starts_on.ok_or_else(missing)?,
            ends_on: self.ends_on.ok_or_else(missing)?,
            daily_open: self.open.ok_or_else(missing)?,
            daily_close: self.close.ok_or_else(missing)?,
            daily_limit: self.limit.ok_or_else(missing)?,
            valid_days_after_end: self.valid_days_after_end,
            discount,
            shards: self.shards,
        })
    }
}

fn read(file: &Path) -> anyhow::Result<Vec<u8>> {
    if file == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)?;
        return Ok(bytes);
    }
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

/// Checks every definition, then creates them one by one under a progress bar.
async fn import(connection: &Connection, file: &Path) -> anyhow::Result<()> {
    let all: Vec<Value> = serde_json::from_slice(&read(file)?)
        .with_context(|| format!("{}: must be a JSON array of event definitions", file.display()))?;
    let mut specs = Vec::with_capacity(all.len());
    let mut problems = Vec::new();
    for (i, definition) in all.iter().enumerate() {
        let parsed = parse_json::<NewEventRequest>(definition.to_string().as_bytes())
            .map_err(|e| e.to_string())
            .and_then(NewEvent::parse);
        match parsed {
            Ok(spec) => specs.push(spec),
            Err(problem) => problems.push(format!("  [{i}] {problem}")),
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} of {} definitions are invalid; nothing was imported:\n{}",
            problems.len(),
            all.len(),
            problems.join("\n")
        );
    }

    let ctx = connection.open().await?;
    // Drawn on stderr, and only at a terminal: piped output stays clean.
    let bar = ProgressBar::new(specs.len() as u64).with_style(
        ProgressStyle::with_template("{spinner} importing [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut created = Vec::with_capacity(specs.len());
    for spec in specs {
        let event = ctx.catalog.create(spec).await?;
        bar.inc(1);
        created.push(event);
    }
    bar.finish_and_clear();
    if ctx.json {
        let ids: Vec<EventId> = created.iter().map(|e| e.id).collect();
        return print_json(&serde_json::json!({ "imported": ids }));
    }
    println!(
        "imported {} event{}",
        created.len(),
        if created.len() == 1 { "" } else { "s" }
    );
    Ok(())
}

fn show(ctx: &Session, event: &Event) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(&EventView::from(event));
    }
    let mut t = table(&["event", &event.id.to_string()]);
    let rows = [
        ("name", event.name.clone()),
        ("time zone", event.timezone.name().to_string()),
        ("days", format!("{} .. {}", event.starts_on, event.ends_on)),
        (
            "daily window",
            format!("{}-{}", event.window.open(), event.window.close()),
        ),
        ("daily limit", event.daily_limit.to_string()),
        ("shards", event.shards.get().to_string()),
        ("discount", discount(&event.discount)),
        ("valid days after end", event.valid_days_after_end.to_string()),
        ("coupons valid until", event.valid_until().to_rfc3339()),
        ("created at", event.created_at.to_rfc3339()),
    ];
    for (field, value) in rows {
        t.add_row(vec![field.to_string(), value]);
    }
    println!("{t}");
    Ok(())
}

fn discount(d: &Discount) -> String {
    match d {
        Discount::Percent { value } => format!("{value}% off"),
        Discount::Amount { value, currency } => format!("{value} {currency} off"),
    }
}

fn list(ctx: &Session, events: &[std::sync::Arc<Event>]) -> anyhow::Result<()> {
    if ctx.json {
        let views: Vec<EventView> = events.iter().map(|e| EventView::from(e.as_ref())).collect();
        return print_json(&serde_json::json!({ "events": views }));
    }
    let mut t = table(&["id", "name", "time zone", "days", "window", "limit/day", "discount"]);
    for e in events {
        t.add_row(vec![
            e.id.to_string(),
            e.name.clone(),
            e.timezone.name().to_string(),
            format!("{} .. {}", e.starts_on, e.ends_on),
            format!("{}-{}", e.window.open(), e.window.close()),
            e.daily_limit.to_string(),
            discount(&e.discount),
        ]);
    }
    println!("{t}");
    println!("{} event{}", events.len(), if events.len() == 1 { "" } else { "s" });
    Ok(())
}
