//! `cargo xtask ...`: coupon-issuer's developer tooling, written once in Rust (in the spirit of
//! vector's `vdev`) instead of growing shell scripts. The scripts under `scripts/` stay the
//! user-facing commands and call this for the parts that were duplicated in bash.
//!
//! - [`local`]: where the project-local servers keep their files (`.local/`).
//! - [`redis`], [`postgres`]: find a reachable Redis / Postgres, else start (or reuse) our own.
//! - [`cluster`]: a local Redis Cluster (`scripts/cluster`).
//! - [`sentinel`]: a local Redis Sentinel set (`scripts/sentinel`).
//! - [`commands`], [`nodes`]: what the cluster and the sentinel set share (the commands, their
//!   arguments, pid files, redis-cli).
//! - [`apt`]: install missing Debian packages, as root or through sudo.
//! - [`probe`]: free ports and live pid files.
//!
//! How a server is found, started and waited for is not here but in `coupon-test-support`
//! (`postgres`, `redis_server`), which the tests' throwaway servers use too.

mod apt;
mod cluster;
mod commands;
mod local;
mod nodes;
mod postgres;
mod probe;
mod redis;
mod sentinel;

use std::process::ExitCode;

use local::Local;

const USAGE: &str = "\
usage: cargo xtask <command>

  services            make sure a Redis and a Postgres are reachable: REDIS_URL / DATABASE_URL
                      (or the service's defaults) when they answer, else project-local instances
                      under .local/ (started, or reused from an earlier run); prints
                      REDIS_URL=... and DATABASE_URL=... lines for a shell to eval
  down [--purge]      stop the project-local instances and the local Redis Cluster
                      (scripts/cluster stop); --purge also deletes their data under .local/
  server-binaries     install redis-server and Postgres (initdb, pg_ctl) when missing: the tests
                      and the soak start servers of their own even when REDIS_URL and
                      DATABASE_URL point elsewhere
  cluster ...         a local Redis Cluster: see scripts/cluster --help
  sentinel ...        a local Redis Sentinel set: see scripts/sentinel --help
  apt-install PKG...  install Debian packages with apt-get (through sudo when not root)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let local = Local::of_repo();
    let result = match args.first().map(String::as_str) {
        Some("cluster") => return ExitCode::from(cluster::main(&local, &args[1..])),
        Some("sentinel") => return ExitCode::from(sentinel::main(&local, &args[1..])),
        Some("services") if args.len() == 1 => services(&local),
        Some("down") => match &args[1..] {
            [] => local::down(&local, false),
            [flag] if flag == "--purge" => local::down(&local, true),
            _ => return usage("usage: scripts/down [--purge]"),
        },
        Some("server-binaries") if args.len() == 1 => server_binaries(),
        Some("apt-install") if args.len() > 1 => apt::install(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => return usage(USAGE),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn usage(text: &str) -> ExitCode {
    eprintln!("{text}");
    ExitCode::from(2)
}

/// The URLs go to stdout, quoted for `eval`; everything said along the way goes to stderr.
fn services(local: &Local) -> Result<(), String> {
    let redis = redis::ensure(local)?;
    let database = postgres::ensure(local)?;
    println!("REDIS_URL={}", shell_quote(&redis));
    println!("DATABASE_URL={}", shell_quote(&database));
    Ok(())
}

/// Found as the tests find them (`coupon_test_support::postgres::bin_dir`), so that what is
/// checked here is what they will run.
fn server_binaries() -> Result<(), String> {
    if !apt::on_path("redis-server") {
        apt::install(&["redis-server"])?;
    }
    if coupon_test_support::postgres::bin_dir(None).is_none() {
        apt::install(&["postgresql"])?;
    }
    Ok(())
}

/// `text` in single quotes, for a POSIX shell (a password in a URL may hold anything).
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn shell_quote_survives_quotes() {
        assert_eq!(super::shell_quote("redis://:it's@h"), r"'redis://:it'\''s@h'");
    }
}
