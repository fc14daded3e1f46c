//! The one way this project starts a `redis-server` of its own and tells that it is ready: the
//! tests' throwaway servers ([`crate::OwnRedis`], in the foreground, killed on drop) and the
//! developer's persistent one under `.local/` (`cargo xtask services`, daemonised) share it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// `redis-server` on 127.0.0.1:`port` keeping its files in `dir`, with no RDB snapshots (a test
/// or a developer asks for AOF explicitly when it wants persistence). Add arguments, then spawn.
pub fn command(port: u16, dir: &Path) -> Command {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .arg("--dir")
        .arg(dir);
    command
}

/// Whether a plain-TCP Redis answers PING on 127.0.0.1:`port`, spoken directly rather than
/// through `redis-cli`, so that the tests need no client tools.
pub fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// Polls `ready` until it is true or `limit` has passed; false when it never was.
pub fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if ready() {
            return true;
        }
        if started.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
