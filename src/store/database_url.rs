//! `DATABASE_URL`, parsed once at start: every Postgres connection (the pool, the maintenance
//! connection that creates the database, `migrate`, `reconcile`, the admin CLI) is made from
//! the one `PgConnectOptions` built here, so the TLS options in the URL hold for all of them.
//!
//! TLS lives in the URL as libpq and sqlx read it: `sslmode=require|verify-ca|verify-full`,
//! `sslrootcert=` (a CA file), `sslcert=` and `sslkey=` (a client certificate). sqlx reads
//! those files only when it connects, and skips a file that holds no PEM certificate without a
//! word; so they are read and parsed here, and a bad one stops the start with one line that
//! names it, before anything connects.

use std::str::FromStr;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::config::SettingError;

const SETTING: &str = "DATABASE_URL";

/// A `DATABASE_URL` that parsed, whose TLS files exist and hold what they should.
#[derive(Clone)]
pub struct DatabaseUrl {
    options: PgConnectOptions,
}

/// A TLS file named in the URL (any of the spellings sqlx accepts) or by libpq's variable.
struct TlsFile {
    names: &'static [&'static str],
    env: &'static str,
    kind: Pem,
}

#[derive(Clone, Copy)]
enum Pem {
    Certificates,
    PrivateKey,
}

const ROOT_CERT: TlsFile = TlsFile {
    names: &["sslrootcert", "ssl-root-cert", "ssl-ca"],
    env: "PGSSLROOTCERT",
    kind: Pem::Certificates,
};
const CLIENT_CERT: TlsFile = TlsFile {
    names: &["sslcert", "ssl-cert"],
    env: "PGSSLCERT",
    kind: Pem::Certificates,
};
const CLIENT_KEY: TlsFile = TlsFile {
    names: &["sslkey", "ssl-key"],
    env: "PGSSLKEY",
    kind: Pem::PrivateKey,
};

impl DatabaseUrl {
    pub fn parse(given: &str) -> Result<Self, SettingError> {
        let url = url::Url::parse(given).map_err(|e| SettingError::new(SETTING, e))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            let reason = format!("expected postgres://, got {}://", url.scheme());
            return Err(SettingError::new(SETTING, reason));
        }
        let mut options = PgConnectOptions::from_str(given).map_err(|e| SettingError::new(SETTING, reason(&e)))?;
        let root = ROOT_CERT.check(&url)?;
        let client = (CLIENT_CERT.check(&url)?, CLIENT_KEY.check(&url)?);
        if client.0.is_some() != client.1.is_some() {
            return Err(SettingError::new(SETTING, "sslcert and sslkey go together"));
        }
        // libpq verifies the server against a root certificate it was given even under
        // `require`; sqlx does not look at it then. An operator who names a CA expects it to be
        // checked, so the URL means what it means to psql.
        if root.is_some() && matches!(options.get_ssl_mode(), PgSslMode::Require) {
            options = options.ssl_mode(PgSslMode::VerifyCa);
        }
        Ok(Self { options })
    }

    pub fn options(&self) -> &PgConnectOptions {
        &self.options
    }

    /// The same server and TLS options, connected to the database that always exists, to
    /// create this one: `postgres`, or `template1` when this one is `postgres` (as `createdb`
    /// does).
    pub fn maintenance(&self) -> (PgConnectOptions, String) {
        let name = self.database();
        let other = if name == "postgres" { "template1" } else { "postgres" };
        (self.options.clone().database(other), name)
    }

    /// The database's name: the one in the URL, else the user's (libpq's default).
    pub fn database(&self) -> String {
        let options = &self.options;
        options.get_database().unwrap_or(options.get_username()).to_owned()
    }
}

/// Where it points, without the password (for logs and test failures).
impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let o = &self.options;
        let (host, port, mode) = (o.get_host(), o.get_port(), o.get_ssl_mode());
        write!(f, "postgres {host}:{port}/{} ({mode:?})", self.database())
    }
}

/// What is wrong, without sqlx's "error with configuration" prefixes (one per layer), which
/// say less than the setting's name.
fn reason(e: &sqlx::Error) -> String {
    let mut e: &(dyn std::error::Error + 'static) = e;
    while let Some(sqlx::Error::Configuration(inner)) = e.downcast_ref::<sqlx::Error>() {
        e = inner.as_ref();
    }
    e.to_string()
}

impl TlsFile {
    /// The file's value (URL first, then libpq's variable) when given, once it is checked.
    fn check(&self, url: &url::Url) -> Result<Option<String>, SettingError> {
        let in_url = url
            .query_pairs()
            .filter(|(key, _)| self.names.contains(&key.as_ref()))
            .last()
            .map(|(key, value)| (SETTING, format!("{key}="), value.into_owned()));
        let from_env = || std::env::var(self.env).ok().map(|v| (self.env, String::new(), v));
        let Some((setting, key, value)) = in_url.or_else(from_env) else {
            return Ok(None);
        };
        // sqlx takes a value that is itself PEM text as the contents, not as a path.
        let trimmed = value.trim();
        let inline = trimmed.starts_with("-----BEGIN") && trimmed.ends_with("-----");
        let shown = if inline { "(inline PEM)" } else { value.as_str() };
        let fail = |reason: String| SettingError::new(setting, format!("{key}{shown}: {reason}"));
        let pem = if inline {
            value.clone().into_bytes()
        } else {
            std::fs::read(&value).map_err(|e| fail(format!("cannot read it: {e}")))?
        };
        self.kind.parse(&pem).map_err(fail)?;
        Ok(Some(value))
    }
}

impl Pem {
    fn parse(self, pem: &[u8]) -> Result<(), String> {
        match self {
            Self::Certificates => {
                let certs = CertificateDer::pem_slice_iter(pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("not a PEM certificate: {e}"))?;
                if certs.is_empty() {
                    return Err("holds no PEM certificate".into());
                }
            }
            Self::PrivateKey => {
                PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("not a PEM private key: {e}"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(url: &str) -> String {
        DatabaseUrl::parse(url).unwrap_err().to_string()
    }

    #[test]
    fn a_bad_url_names_the_setting() {
        assert_eq!(error("postgres://h:port/db"), "DATABASE_URL: invalid port number");
        assert!(error("127.0.0.1:5432/db").starts_with("DATABASE_URL: "));
        assert_eq!(
            error("mysql://h/db"),
            "DATABASE_URL: expected postgres://, got mysql://"
        );
        let mode = error("postgres://h/db?sslmode=sometimes");
        assert_eq!(mode, r#"DATABASE_URL: unknown value "sometimes" for `ssl_mode`"#);
    }

    /// A file under the temp dir holding `contents`, removed on drop.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new(contents: &str) -> Self {
            let path = std::env::temp_dir().join(format!("coupon-pem-{}.pem", uuid::Uuid::new_v4().simple()));
            std::fs::write(&path, contents).unwrap();
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn a_missing_or_garbage_root_certificate_is_refused() {
        let missing = error("postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem");
        assert!(
            missing.starts_with("DATABASE_URL: sslrootcert=/nonexistent/ca.pem: cannot read it"),
            "{missing}"
        );
        let garbage = TempFile::new("not a certificate");
        let url = format!(
            "postgres://h/db?sslmode=verify-full&sslrootcert={}",
            garbage.0.display()
        );
        assert!(error(&url).ends_with("holds no PEM certificate"), "{}", error(&url));
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = TempFile::new(&pair.cert.pem());
        let key = TempFile::new(&pair.signing_key.serialize_pem());
        let only_cert = format!("postgres://h/db?sslcert={}", cert.0.display());
        assert_eq!(error(&only_cert), "DATABASE_URL: sslcert and sslkey go together");
        let both = format!("{only_cert}&sslkey={}", key.0.display());
        assert!(DatabaseUrl::parse(&both).is_ok());
        let cert_as_key = format!("{only_cert}&sslkey={}", cert.0.display());
        assert!(
            error(&cert_as_key).contains("not a PEM private key"),
            "{}",
            error(&cert_as_key)
        );
    }

    #[test]
    fn require_with_a_root_certificate_verifies_it_as_libpq_does() {
        let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let ca = TempFile::new(&pair.cert.pem());
        let url = format!("postgres://h/db?sslmode=require&sslrootcert={}", ca.0.display());
        let mode = DatabaseUrl::parse(&url).unwrap().options().get_ssl_mode();
        assert!(matches!(mode, PgSslMode::VerifyCa), "{mode:?}");
        let plain = DatabaseUrl::parse("postgres://h/db?sslmode=require").unwrap();
        assert!(matches!(plain.options().get_ssl_mode(), PgSslMode::Require));
    }

    #[test]
    fn the_maintenance_connection_keeps_the_tls_options() {
        let url = DatabaseUrl::parse("postgres://u@h:5433/shop?sslmode=verify-full").unwrap();
        let (maintenance, name) = url.maintenance();
        assert_eq!(name, "shop");
        assert_eq!(maintenance.get_database(), Some("postgres"));
        assert!(matches!(maintenance.get_ssl_mode(), PgSslMode::VerifyFull));
        assert_eq!((maintenance.get_host(), maintenance.get_port()), ("h", 5433));
        let (template, _) = DatabaseUrl::parse("postgres://u@h/postgres").unwrap().maintenance();
        assert_eq!(template.get_database(), Some("template1"));
    }
}
