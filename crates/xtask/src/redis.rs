//! A reachable Redis: `REDIS_URL` (default redis://127.0.0.1:6379) when it answers, else our
//! own under `.local/redis` on 127.0.0.1:6390.., with AOF so its data survives a restart,
//! daemonised so it outlives this command (`cargo xtask down` stops it).

use std::process::{Command, Stdio};
use std::time::Duration;

use coupon_test_support::redis_server;

use crate::apt::{self, on_path};
use crate::local::Local;
use crate::probe;

/// Makes sure a Redis answers; returns its URL.
pub fn ensure(local: &Local) -> Result<String, String> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let dir = local.redis_dir();
    let port_file = local.redis_port_file();

    if !on_path("redis-cli") {
        apt::install(&["redis-tools"])?;
    }
    if ping_url(&url) {
        eprintln!("redis: using {url} (already running)");
        return Ok(url);
    }

    // A local instance from an earlier run?
    if probe::live_pid(&dir.join("redis.pid")).is_some()
        && let Some(port) = probe::read_port(&port_file)
        && redis_server::ping(port)
    {
        eprintln!("redis: {url} not reachable; reusing local instance on 127.0.0.1:{port} (.local/redis)");
        return Ok(local_url(port));
    }

    eprintln!("redis: {url} not reachable; starting a local instance");
    if !on_path("redis-server") {
        apt::install(&["redis-server"])?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let port = probe::free_port_from(6390)?;
    let started = redis_server::command(port, &dir)
        .args(["--daemonize", "yes", "--appendonly", "yes", "--appendfsync", "everysec"])
        .arg("--pidfile")
        .arg(dir.join("redis.pid"))
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .is_ok_and(|s| s.success());
    if !started {
        return Err("redis-server failed to start; see .local/redis/redis.log".to_owned());
    }
    if redis_server::wait_until(Duration::from_secs(10), || redis_server::ping(port)) {
        std::fs::write(&port_file, format!("{port}\n")).map_err(|e| format!("{}: {e}", port_file.display()))?;
        eprintln!("redis: started local instance on 127.0.0.1:{port} (.local/redis)");
        return Ok(local_url(port));
    }
    eprintln!("{}", probe::tail(&dir.join("redis.log"), 20));
    Err(format!("redis-server on port {port} did not answer PING"))
}

/// Stops our own instance: only the process named in our pid file, and only if it really is a
/// redis-server. True when it stopped one.
pub fn stop(local: &Local) -> bool {
    let dir = local.redis_dir();
    let Some(pid) = probe::live_pid(&dir.join("redis.pid")) else {
        return false;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !String::from_utf8_lossy(&cmdline).contains("redis-server") {
        return false;
    }
    let port = probe::read_port(&local.redis_port_file());
    if let Some(port) = port
        && on_path("redis-cli")
    {
        let _ = Command::new("timeout")
            .args([
                "10",
                "redis-cli",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "shutdown",
            ])
            .output();
    }
    let process = nix::unistd::Pid::from_raw(pid);
    let alive = || nix::sys::signal::kill(process, None).is_ok();
    for i in 0..50 {
        if !alive() {
            break;
        }
        if i == 10 {
            let _ = nix::sys::signal::kill(process, nix::sys::signal::Signal::SIGTERM);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if alive() {
        eprintln!("redis: local instance (pid {pid}) did not stop");
        return false;
    }
    match port {
        Some(port) => eprintln!("redis: stopped local instance on 127.0.0.1:{port}"),
        None => eprintln!("redis: stopped local instance"),
    }
    true
}

fn local_url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}

/// PING through `redis-cli -u`, which understands every URL the service accepts (a password,
/// `rediss://`), unlike the plain-TCP PING used for our own instance.
fn ping_url(url: &str) -> bool {
    Command::new("timeout")
        .args(["5", "redis-cli", "-u", url, "ping"])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "PONG")
}
