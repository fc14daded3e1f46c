//! TLS to Postgres through DATABASE_URL (`sslmode`, `sslrootcert`), against a Postgres of the
//! test's own that has a certificate from a CA the test makes and refuses every TCP connection
//! without TLS: whatever connected, connected over TLS.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::cli::{cli, stdout};
use crate::helpers::{spawn_app_with, test_settings, today_utc, users};
use crate::instances::{OwnPostgres, ServerTls};

/// A certificate authority of the test's own.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// Its certificate as a file, for `sslrootcert=`.
    file: PathBuf,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let file = std::env::temp_dir().join(format!("coupon-ca-{}.pem", Uuid::new_v4().simple()));
        std::fs::write(&file, issuer.pem()).unwrap();
        Self { issuer, file }
    }

    /// A server certificate for 127.0.0.1 and localhost, signed by this CA.
    fn server(&self) -> ServerTls {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ServerTls {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The query string that trusts this CA under `mode`.
    fn trusted_under(&self, mode: &str) -> String {
        format!("sslmode={mode}&sslrootcert={}", self.file.display())
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// The URL of a fresh database on `pg`, reached as `host`, with `tls` as its query string.
fn url(pg: &OwnPostgres, host: &str, tls: &str) -> String {
    let name = format!("coupon_tls_{}", Uuid::new_v4().simple());
    format!("postgres://postgres@{host}:{}/{name}?{tls}", pg.port)
}

/// Runs the real binary with `database_url` (and the test Redis, under a prefix of its own).
async fn run(database_url: &str, args: &[&str]) -> Output {
    let settings = test_settings();
    let env = [
        ("DATABASE_URL", database_url.to_owned()),
        ("REDIS_URL", settings.connections.redis_url),
        ("REDIS_KEY_PREFIX", settings.connections.redis_key_prefix),
        ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
    ];
    cli(&env, args).await
}

async fn migrates(database_url: &str) {
    let out = run(database_url, &["migrate"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn the_service_issues_and_stores_over_tls_in_every_mode() {
    let ca = TestCa::new("coupon test CA");
    let pg = OwnPostgres::start_with_tls(&ca.server());
    for tls in [
        "sslmode=require".to_owned(),
        ca.trusted_under("verify-ca"),
        ca.trusted_under("verify-full"),
    ] {
        // A database that does not exist yet: the connection that creates it uses TLS too.
        let database_url = url(&pg, "127.0.0.1", &tls);
        let app = spawn_app_with(|s| s.connections.database.url = database_url.clone()).await;
        let event = app.open_event(100).await;
        for user in users("tls", 3) {
            assert_eq!(app.issue(&event, &user).await.status(), StatusCode::CREATED, "{tls}");
        }
        let stored = app.wait_for_stored(&event, 3, Duration::from_secs(20)).await;
        assert_eq!(stored.len(), 3, "{tls}: the writer stored every coupon");
        app.stop().await.unwrap();
    }
    // The server takes nothing else: the connections above were TLS.
    let plain = run(&url(&pg, "127.0.0.1", "sslmode=disable"), &["migrate"]).await;
    assert!(!plain.status.success(), "a connection without TLS was accepted");
}

#[tokio::test]
async fn migrate_and_the_cli_work_over_verify_full() {
    let ca = TestCa::new("coupon test CA");
    let pg = OwnPostgres::start_with_tls(&ca.server());
    let database_url = url(&pg, "localhost", &ca.trusted_under("verify-full"));
    migrates(&database_url).await;
    // An event written through the CLI, and read back by it.
    let event = crate::helpers::event_body("UTC", today_utc(), today_utc(), ("10:00", "12:00"), 5);
    let file = std::env::temp_dir().join(format!("coupon-tls-event-{}.json", Uuid::new_v4().simple()));
    std::fs::write(&file, event.to_string()).unwrap();
    let create = ["events", "create", "--file", file.to_str().unwrap(), "--json"];
    let created: serde_json::Value = serde_json::from_str(&stdout(&run(&database_url, &create).await)).unwrap();
    let _ = std::fs::remove_file(&file);
    let listed: serde_json::Value =
        serde_json::from_str(&stdout(&run(&database_url, &["events", "list", "--json"]).await)).unwrap();
    assert_eq!(listed["events"][0]["id"], created["id"], "{listed}");
}

#[tokio::test]
async fn a_certificate_the_url_does_not_trust_stops_the_start_in_one_line() {
    let ca = TestCa::new("coupon test CA");
    let other = TestCa::new("some other CA");
    let pg = OwnPostgres::start_with_tls(&ca.server());
    let cases = [
        // Signed by a CA the URL does not name.
        ("127.0.0.1", other.trusted_under("verify-full")),
        ("127.0.0.1", other.trusted_under("verify-ca")),
        // As libpq: `require` with a root certificate checks the server against it.
        ("127.0.0.1", other.trusted_under("require")),
        // The right CA, but 127.0.0.2 is not a name the certificate was issued for.
        ("127.0.0.2", ca.trusted_under("verify-full")),
    ];
    for (host, tls) in cases {
        let out = run(&url(&pg, host, &tls), &["serve"]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{host} {tls}: started");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{host} {tls}: {stderr}");
        assert!(
            stderr.starts_with("error: DATABASE_URL: TLS verification of Postgres failed"),
            "{host} {tls}: {stderr}"
        );
    }
    // The same server with the right CA and name: the refusals above were the certificate's.
    migrates(&url(&pg, "127.0.0.2", &ca.trusted_under("verify-ca"))).await;
}
