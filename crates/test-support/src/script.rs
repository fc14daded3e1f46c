//! Runs `scripts/cluster` or `scripts/sentinel` (wrappers of `cargo xtask`) on a test's own
//! directory: the one way [`crate::OwnCluster`] and [`crate::OwnSentinels`] start, restart and
//! stop their processes.

use std::process::Command;

use crate::servers::TempDir;

fn command(name: &str, args: &[&str], dir: &TempDir) -> Command {
    let mut command = Command::new(crate::repo_root().join("scripts").join(name));
    command.args(args).arg("--dir").arg(&dir.0);
    command
}

/// `scripts/NAME ARGS... --dir DIR`, which must succeed; returns its stdout.
pub(crate) fn run(name: &str, args: &[&str], dir: &TempDir) -> String {
    let out = command(name, args, dir)
        .output()
        .unwrap_or_else(|e| panic!("scripts/{name} runs: {e}"));
    assert!(
        out.status.success(),
        "scripts/{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `scripts/NAME start --quiet EXTRA...` in a new temporary directory: the URL it prints, and
/// the directory, which the caller keeps (and stops) for as long as the set lives.
pub(crate) fn start(name: &str, extra: &[&str]) -> (String, TempDir) {
    let dir = TempDir::new(name);
    let args: Vec<&str> = ["start", "--quiet"].iter().chain(extra).copied().collect();
    let url = run(name, &args, &dir).trim().to_owned();
    (url, dir)
}

/// `scripts/NAME stop --quiet --dir DIR`, for a drop: a failure there is ignored, as a panic
/// while a failed test unwinds would abort the run.
pub(crate) fn stop(name: &str, dir: &TempDir) {
    let _ = command(name, &["stop", "--quiet"], dir).output();
}
