//! Headless Chromium (Debian's `chromium`), for tests that need a real browser to run a page's
//! JavaScript. A missing browser fails the test loudly: `scripts/test` installs it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

/// The browser: `$CHROMIUM` if set, else `chromium` or `chromium-browser` on the PATH.
pub fn chromium() -> PathBuf {
    let candidates = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["chromium", "chromium-browser"].map(PathBuf::from));
    for candidate in candidates {
        if candidate.is_absolute() && candidate.exists() {
            return candidate;
        }
        if let Some(found) = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(&candidate))
            .find(|p| p.exists())
        {
            return found;
        }
    }
    panic!(
        "\n\n*** headless Chromium is not installed: this test needs a real browser. ***\n\
         Install it with `apt-get install -y chromium` (scripts/test does so when it is missing),\n\
         or point CHROMIUM at a Chromium binary.\n\n"
    );
}

/// Runs Chromium headless on `url` with `extra` arguments (`--dump-dom`, `--screenshot=...`) in
/// a fresh profile, lets the page's scripts run for `budget` of virtual time, and returns what
/// it printed on stdout.
pub async fn run(url: &str, extra: &[&str], budget: Duration) -> String {
    let profile = std::env::temp_dir().join(format!("coupon-chromium-{}", uuid::Uuid::new_v4().simple()));
    let mut command = Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--virtual-time-budget={}", budget.as_millis()))
        .args(extra)
        .arg(url)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("chromium finished within 60 s")
        .expect("chromium started");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        output.status.success(),
        "chromium failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The page's DOM after its scripts ran.
pub async fn dump_dom(url: &str) -> String {
    run(url, &["--dump-dom"], Duration::from_secs(10)).await
}

/// A PNG screenshot of the page, `width` x `height`.
#[allow(dead_code)] // used by docs/api.md's screenshot (see openapi.rs)
pub async fn screenshot(url: &str, path: &Path, width: u32, height: u32) {
    let shot = format!("--screenshot={}", path.display());
    let size = format!("--window-size={width},{height}");
    run(url, &[&shot, &size, "--hide-scrollbars"], Duration::from_secs(10)).await;
    assert!(path.exists(), "no screenshot at {}", path.display());
}
