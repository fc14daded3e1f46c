//! Bad settings stop every command at once, with one line that names the setting: exit status
//! not 0, no panic, no backtrace (RUST_BACKTRACE=1 is set to prove it), at the default log
//! level. Run as the real binary, as an operator would meet it.

use crate::cli::cli;
use crate::helpers::test_settings;

/// A file that is not PEM, removed on drop.
struct Garbage(std::path::PathBuf);

impl Garbage {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("coupon-garbage-{}.pem", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, "this is not a certificate\n").unwrap();
        Self(path)
    }
}

impl Drop for Garbage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `args` with the test's settings but `setting = value`; asserts the one-line refusal
/// and returns it.
async fn refused(args: &[&str], setting: &'static str, value: &str) -> String {
    let s = test_settings();
    let mut env = vec![
        ("DATABASE_URL", s.connections.database.url),
        ("REDIS_URL", s.connections.redis_url),
        ("REDIS_KEY_PREFIX", s.connections.redis_key_prefix),
        ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
        ("RUST_BACKTRACE", "1".to_owned()),
    ];
    env.retain(|(name, _)| *name != setting);
    env.push((setting, value.to_owned()));
    let out = cli(&env, args).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let case = format!("{args:?} with {setting}={value}");
    assert_eq!(out.status.code(), Some(1), "{case}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{case}: not one line: {stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains(setting),
        "{case}: {stderr}"
    );
    let lower = stderr.to_lowercase();
    assert!(
        !lower.contains("panicked") && !lower.contains("backtrace"),
        "{case}: {stderr}"
    );
    stderr
}

/// Every command that reads DATABASE_URL.
const WITH_DATABASE: [&[&str]; 4] = [&["serve"], &["migrate"], &["reconcile"], &["events", "list"]];

#[tokio::test]
async fn an_unparseable_database_url_is_one_line() {
    for args in WITH_DATABASE {
        let line = refused(args, "DATABASE_URL", "postgres://postgres@127.0.0.1:port/db").await;
        assert_eq!(line.trim_end(), "error: DATABASE_URL: invalid port number");
        refused(args, "DATABASE_URL", "mysql://127.0.0.1/db").await;
        refused(args, "DATABASE_URL", "postgres://127.0.0.1/db?sslmode=sometimes").await;
    }
}

#[tokio::test]
async fn an_unparseable_redis_url_is_one_line() {
    for args in [&["serve"][..], &["reconcile"], &["events", "list"]] {
        refused(args, "REDIS_URL", "redis://127.0.0.1:port").await;
        refused(args, "REDIS_URL", "http://127.0.0.1:6379").await;
    }
}

#[tokio::test]
async fn a_missing_root_certificate_is_one_line() {
    let base = test_settings().connections.database.url;
    let url = format!("{base}?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem");
    for args in WITH_DATABASE {
        let line = refused(args, "DATABASE_URL", &url).await;
        assert!(
            line.contains("sslrootcert=/nonexistent/ca.pem: cannot read it"),
            "{line}"
        );
    }
}

#[tokio::test]
async fn a_root_certificate_that_is_not_pem_is_one_line() {
    let garbage = Garbage::new();
    let base = test_settings().connections.database.url;
    let url = format!("{base}?sslmode=verify-ca&sslrootcert={}", garbage.0.display());
    for args in WITH_DATABASE {
        let line = refused(args, "DATABASE_URL", &url).await;
        assert!(line.contains("holds no PEM certificate"), "{line}");
    }
}
