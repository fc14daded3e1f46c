//! Logs: human-readable by default, JSON with `LOG_FORMAT=json`; levels from `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init() {
    init_with_default("info");
}

/// As `init`, with another level when `RUST_LOG` is unset (tests use "warn").
pub fn init_with_default(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in log files.
        .with_ansi(std::io::stderr().is_terminal());
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // A second init (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
