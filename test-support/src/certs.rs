//! A throw-away certificate authority and a server certificate for `localhost`/`127.0.0.1`,
//! written as PEM files: PostgreSQL's `ssl = on` and the proxy's TLS listener both use them.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};

#[derive(Debug, Clone)]
pub struct TestCerts {
    pub ca_pem: PathBuf,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

impl TestCerts {
    /// Writes `ca.crt`, `server.crt` and `server.key` into `dir`.
    pub fn generate(dir: &Path) -> TestCerts {
        let ca_key = KeyPair::generate().expect("test harness: generate CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "citus-proxy test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("test harness: self-sign CA");

        let key = KeyPair::generate().expect("test harness: generate server key");
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("server params");
        params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
        params.distinguished_name.push(DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, &ca).expect("test harness: sign server cert");

        let out = TestCerts { ca_pem: dir.join("ca.crt"), cert_pem: dir.join("server.crt"), key_pem: dir.join("server.key") };
        write(&out.ca_pem, &ca.pem());
        write(&out.cert_pem, &cert.pem());
        write(&out.key_pem, &key.serialize_pem());
        out
    }
}

fn write(path: &Path, content: &str) {
    std::fs::write(path, content).unwrap_or_else(|e| panic!("test harness: write {}: {e}", path.display()));
}
