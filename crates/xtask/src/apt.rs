//! Installing what is missing on a Debian or Ubuntu machine, so that a clean clone on a fresh
//! machine needs only Rust: the scripts ask for the same packages, with the same messages.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

/// `apt-get update` once per run: it is the slow part, and one run may install several times.
static UPDATED: AtomicBool = AtomicBool::new(false);

/// `apt-get install PACKAGES`, through sudo when not root. apt's own output goes to stderr,
/// so that stdout stays what the caller evaluates.
pub fn install(packages: &[impl AsRef<str>]) -> Result<(), String> {
    let names: Vec<&str> = packages.iter().map(AsRef::as_ref).collect();
    let list = names.join(" ");
    let sudo = !nix::unistd::geteuid().is_root();
    if sudo && !on_path("sudo") {
        return Err(format!(
            "need to install: {list} (not root and no sudo; install them yourself)"
        ));
    }
    if !on_path("apt-get") {
        return Err(format!(
            "need to install: {list} (no apt-get on this system; install them yourself)"
        ));
    }
    eprintln!("setup: installing {list} with apt-get");
    let apt = |args: &[&str]| {
        let mut command = Command::new(if sudo { "sudo" } else { "env" });
        if sudo {
            command.arg("env");
        }
        command
            .arg("DEBIAN_FRONTEND=noninteractive")
            .arg("apt-get")
            .args(args)
            .stdout(Stdio::from(std::io::stderr()))
            .status()
            .map_err(|e| format!("apt-get: {e}"))
            .and_then(|s| {
                if s.success() {
                    Ok(())
                } else {
                    Err(format!("apt-get {} failed", args[0]))
                }
            })
    };
    if !UPDATED.swap(true, Ordering::Relaxed) {
        apt(&["update", "-qq"])?;
    }
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(names);
    apt(&args)
}

/// Whether `program` is on PATH (as `command -v` answers).
pub fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(program)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}
