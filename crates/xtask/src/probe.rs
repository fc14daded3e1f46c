//! Ports and pid files: is a port free, is the process a pid file names still running.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

/// Nothing answers on 127.0.0.1:`port`, and we can bind it ourselves.
pub fn port_free(port: u16) -> bool {
    let address = ([127, 0, 0, 1], port).into();
    TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err() && TcpListener::bind(address).is_ok()
}

/// The first free port in `first..first+99`: the local servers sit on predictable ports
/// (Redis 6390.., Postgres 5440..), beside, not on, the usual 6379 and 5432.
pub fn free_port_from(first: u16) -> Result<u16, String> {
    let last = first + 99;
    (first..=last)
        .find(|&port| port_free(port))
        .ok_or_else(|| format!("no free port in {first}..{last}"))
}

/// The pid in the first line of `pidfile`, when that process runs.
pub fn live_pid(pidfile: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pidfile).ok()?;
    let digits: String = text.lines().next()?.chars().filter(char::is_ascii_digit).collect();
    let pid: i32 = digits.parse().ok()?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).ok()?;
    Some(pid)
}

/// The number in a one-line file such as `.local/redis.port`.
pub fn read_port(file: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(file).ok()?;
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The last lines of a log, for an error message.
pub fn tail(file: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
