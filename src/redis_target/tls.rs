//! TLS to Redis: the settings (`REDIS_TLS_*`), read and checked once when the target is parsed,
//! so that a missing or unreadable file stops the start with one line naming the setting, not a
//! failure at the first connection.
//!
//! The server is verified against the system's roots (rustls-native-certs, which honours
//! `SSL_CERT_FILE` and `SSL_CERT_DIR`) plus `REDIS_TLS_CA_FILE`: a private CA and a public
//! managed Redis both work with the same setting. redis-rs's `root_cert` *replaces* the system
//! roots (redis 1.8.1, `tls.rs`: a fresh `RootCertStore` from the given PEM only), so when a CA
//! file is given the system roots are read here and handed over in the same PEM bundle.

use std::path::{Path, PathBuf};

use clap::Args;
use redis::{ClientTlsConfig, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TargetError;

/// The TLS settings of every Redis connection (only used with `rediss://` or
/// `rediss+cluster://`).
#[derive(Debug, Clone, Default, Args)]
pub struct RedisTls {
    /// PEM file of CA certificates trusted for Redis, on top of the system's roots (which honour
    /// SSL_CERT_FILE). For a Redis whose certificate a private CA signed.
    #[arg(long = "redis-tls-ca-file", env = "REDIS_TLS_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,

    /// PEM client certificate (chain) for Redis servers that require one (mutual TLS); with
    /// REDIS_TLS_CLIENT_KEY.
    #[arg(long = "redis-tls-client-cert", env = "REDIS_TLS_CLIENT_CERT", global = true)]
    pub client_cert: Option<PathBuf>,

    /// PEM private key of REDIS_TLS_CLIENT_CERT.
    #[arg(long = "redis-tls-client-key", env = "REDIS_TLS_CLIENT_KEY", global = true)]
    pub client_key: Option<PathBuf>,

    /// Do not verify the Redis server's certificate. Development only: anyone on the path can
    /// then read and change what the service stores. Logs a warning at start.
    #[arg(
        long = "redis-tls-insecure",
        env = "REDIS_TLS_INSECURE",
        default_value_t = false,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub insecure: bool,
}

/// The settings, read: what redis-rs needs for every connection it opens.
#[derive(Clone, Debug)]
pub struct TlsSetup {
    pub certs: TlsCertificates,
    pub insecure: bool,
}

impl RedisTls {
    /// Whether any setting asks for something TLS would do.
    fn any(&self) -> bool {
        self.ca_file.is_some() || self.client_cert.is_some() || self.client_key.is_some() || self.insecure
    }

    /// Reads and checks the files. `uses_tls`: the URL's scheme is `rediss`. A TLS setting with
    /// a plain URL is refused rather than ignored: the operator believes the traffic is
    /// encrypted and verified, and it would be neither.
    pub fn load(&self, uses_tls: bool) -> Result<Option<TlsSetup>, TargetError> {
        if !uses_tls {
            return match self.any() {
                true => Err(TargetError::TlsWithoutTls),
                false => Ok(None),
            };
        }
        install_crypto_provider();
        let client_tls = match (&self.client_cert, &self.client_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(ClientTlsConfig {
                client_cert: read_certs("REDIS_TLS_CLIENT_CERT", cert)?,
                client_key: read_key("REDIS_TLS_CLIENT_KEY", key)?,
            }),
            _ => return Err(TargetError::ClientCertWithoutKey),
        };
        let root_cert = match &self.ca_file {
            Some(path) => Some(with_system_roots(read_certs("REDIS_TLS_CA_FILE", path)?)),
            // redis-rs then reads the system roots itself, at each connection.
            None => None,
        };
        if self.insecure {
            tracing::warn!(
                "REDIS_TLS_INSECURE=true: the Redis server's certificate is NOT verified; \
                 for development only"
            );
        }
        Ok(Some(TlsSetup {
            certs: TlsCertificates { client_tls, root_cert },
            insecure: self.insecure,
        }))
    }
}

/// A client for one node's URL (`redis://` or `rediss://`), with the target's TLS settings when
/// it has them: for the connections made beside the shared ones (a cluster node's probe, a
/// sentinel, a subscriber).
pub fn client(url: &str, tls: Option<&TlsSetup>) -> redis::RedisResult<redis::Client> {
    match tls {
        None => redis::Client::open(url),
        Some(tls) => {
            let url = match tls.insecure {
                true => format!("{url}#insecure"),
                false => url.to_owned(),
            };
            redis::Client::build_with_tls(url.as_str(), tls.certs.clone())
        }
    }
}

/// ring is the one rustls crypto provider in the build (Cargo.toml); installing it explicitly
/// means no rustls user in the process can find none or two ("no process-level
/// CryptoProvider"). A second call, or one after another part installed it, changes nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TargetError> {
    std::fs::read(path).map_err(|e| {
        let problem = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_owned(),
            _ => e.to_string(),
        };
        file_error(setting, path, problem)
    })
}

fn file_error(setting: &'static str, path: &Path, problem: impl Into<String>) -> TargetError {
    TargetError::TlsFile {
        setting,
        path: path.display().to_string(),
        problem: problem.into(),
    }
}

/// A PEM file with at least one certificate, every one of which parses.
fn read_certs(setting: &'static str, path: &Path) -> Result<Vec<u8>, TargetError> {
    let pem = read(setting, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(setting, path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(setting, path, "no PEM certificate in it"));
    }
    Ok(pem)
}

fn read_key(setting: &'static str, path: &Path) -> Result<Vec<u8>, TargetError> {
    let pem = read(setting, path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| file_error(setting, path, format!("no PEM private key in it: {e}")))?;
    Ok(pem)
}

/// The CA file's certificates after the system's roots, as one PEM bundle. The system roots
/// may be missing (a minimal image without ca-certificates): then the CA file alone is trusted.
fn with_system_roots(ca_pem: Vec<u8>) -> Vec<u8> {
    let system = rustls_native_certs::load_native_certs();
    for error in &system.errors {
        tracing::warn!(%error, "cannot read some of the system's root certificates");
    }
    let mut bundle = String::new();
    for cert in &system.certs {
        bundle.push_str(&pem::encode(&pem::Pem::new("CERTIFICATE", cert.as_ref())));
    }
    let mut bundle = bundle.into_bytes();
    bundle.push(b'\n');
    bundle.extend_from_slice(&ca_pem);
    bundle
}

/// When `error` comes from the server's certificate failing verification, the cause
/// ("invalid peer certificate: UnknownIssuer"). The rustls error is looked for along the error's
/// sources; a cluster client passes only the text on, hence the text as a fallback.
pub fn verification_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(tls @ rustls::Error::InvalidCertificate(_)) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        next = e.source();
    }
    let text = error.to_string();
    let at = text.find("invalid peer certificate")?;
    Some(text[at..].to_owned())
}

/// `error`, said so that an operator sees at once when it is a certificate problem.
pub fn explain(error: &redis::RedisError) -> String {
    match verification_failure(error) {
        Some(cause) => format!("TLS verification of Redis failed: {cause}"),
        None => error.to_string(),
    }
}
