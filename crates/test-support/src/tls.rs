//! Certificates for the TLS tests, generated per test with rcgen: a CA, a server certificate for
//! 127.0.0.1 and localhost signed by it, and a client certificate signed by it (mutual TLS).
//! Written as PEM files in a temporary directory under the names `scripts/cluster --tls DIR`
//! expects, so a single server and a cluster use the same set.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use crate::servers::TempDir;

/// A CA and the certificates it signed, as files.
pub struct TestCerts {
    pub dir: TempDir,
}

impl TestCerts {
    /// A new CA named `name`, with a server and a client certificate.
    pub fn generate(name: &str) -> Self {
        let dir = TempDir::new("tls");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.0.join("ca.crt"), ca.pem()).unwrap();

        // The server's certificate also serves as a client's: cluster nodes and replicas present
        // it when they connect to each other (tls-cluster, tls-replication).
        let both = [ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        for (file, sans, usages) in [
            (
                "server",
                vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
                &both[..],
            ),
            ("client", vec![], &both[1..]),
        ] {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(sans).unwrap();
            params
                .distinguished_name
                .push(DnType::CommonName, format!("{name} {file}"));
            params.extended_key_usages = usages.to_vec();
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
            let cert = params.signed_by(&key, &ca).unwrap();
            std::fs::write(dir.0.join(format!("{file}.crt")), cert.pem()).unwrap();
            std::fs::write(dir.0.join(format!("{file}.key")), key.serialize_pem()).unwrap();
        }
        Self { dir }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.0.join("ca.crt")
    }

    pub fn server_cert(&self) -> PathBuf {
        self.dir.0.join("server.crt")
    }

    pub fn server_key(&self) -> PathBuf {
        self.dir.0.join("server.key")
    }

    pub fn client_cert(&self) -> PathBuf {
        self.dir.0.join("client.crt")
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir.0.join("client.key")
    }

    /// `redis-server` arguments: TLS only (no plain port) on `port`, with this CA's server
    /// certificate. Clients need no certificate unless `--tls-auth-clients yes` follows.
    pub fn server_args(&self, port: u16) -> Vec<String> {
        let path = |p: PathBuf| p.to_str().unwrap().to_owned();
        [
            "--port".to_owned(),
            "0".to_owned(),
            "--tls-port".to_owned(),
            port.to_string(),
            "--tls-cert-file".to_owned(),
            path(self.server_cert()),
            "--tls-key-file".to_owned(),
            path(self.server_key()),
            "--tls-ca-cert-file".to_owned(),
            path(self.ca()),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
        ]
        .into()
    }

    /// `redis-cli` arguments to reach a server that uses this CA, with the client certificate.
    pub fn cli_args(&self) -> Vec<String> {
        let path = |p: PathBuf| p.to_str().unwrap().to_owned();
        vec![
            "--tls".to_owned(),
            "--cacert".to_owned(),
            path(self.ca()),
            "--cert".to_owned(),
            path(self.client_cert()),
            "--key".to_owned(),
            path(self.client_key()),
        ]
    }
}
