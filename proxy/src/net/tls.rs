//! TLS: rustls (ring provider) for clients of the proxy, and for the proxy's connection to the
//! coordinator with libpq's sslmode semantics.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::SslMode;

mod cert_key;
pub mod postgres_client;
mod refusal;

use cert_key::TlsVersion;
pub use refusal::{describe_handshake_error, CertificateRefused};

/// ALPN protocol name PostgreSQL 17+ uses for TLS.
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read {what} from {path}: {message}")]
    Pem { what: &'static str, path: String, message: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("no usable CA certificates: {0}")]
    Roots(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The acceptor for clients that ask for TLS.
pub fn acceptor(cert_file: &Path, key_file: &Path) -> Result<tokio_rustls::TlsAcceptor, TlsSetupError> {
    fn pem_err<'p>(what: &'static str, path: &'p Path) -> impl Fn(rustls::pki_types::pem::Error) -> TlsSetupError + 'p {
        move |e| TlsSetupError::Pem { what, path: path.display().to_string(), message: e.to_string() }
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(pem_err("certificates", cert_file))?
        .collect::<Result<_, _>>()
        .map_err(pem_err("certificates", cert_file))?;
    if chain.is_empty() {
        return Err(TlsSetupError::Pem {
            what: "certificates",
            path: cert_file.display().to_string(),
            message: "no certificate in file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(pem_err("private key", key_file))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    cfg.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// The connector for the coordinator, or None for `sslmode = disable`.
pub fn connector(mode: SslMode, ca_file: Option<&Path>) -> Result<Option<tokio_rustls::TlsConnector>, TlsSetupError> {
    Ok(client_config(mode, ca_file)?.map(tokio_rustls::TlsConnector::from))
}

/// The rustls client configuration sslmode asks for (None for `disable`); shared by the relay's
/// connections and the proxy's own metadata queries.
pub fn client_config(mode: SslMode, ca_file: Option<&Path>) -> Result<Option<Arc<rustls::ClientConfig>>, TlsSetupError> {
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        SslMode::Disable => return Ok(None),
        // libpq's prefer/require encrypt without checking the certificate.
        SslMode::Prefer | SslMode::Require => Arc::new(AcceptAny(provider())),
        SslMode::VerifyCa => Arc::new(Verify::new(webpki(ca_file)?, Check::ChainOnly, ca_file)),
        SslMode::VerifyFull => Arc::new(Verify::new(webpki(ca_file)?, Check::ChainAndName, ca_file)),
    };
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Some(Arc::new(cfg)))
}

fn webpki(ca_file: Option<&Path>) -> Result<Arc<WebPkiServerVerifier>, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| TlsSetupError::Roots(format!("{}: {e}", path.display())))? {
                let cert = cert.map_err(|e| TlsSetupError::Roots(format!("{}: {e}", path.display())))?;
                roots.add(cert).map_err(|e| TlsSetupError::Roots(e.to_string()))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err(TlsSetupError::Roots("the CA list is empty (set upstream.ca_file)".into()));
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider()).build().map_err(|e| TlsSetupError::Roots(e.to_string()))
}

/// sslmode prefer/require: encryption without authentication of the server, as libpq does. Any
/// certificate is taken (any version, any validity); the handshake must still be signed by the
/// key it holds, or a peer could not even prove it is the one the session is encrypted with.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        cert_key::verify(TlsVersion::V12, m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        cert_key::verify(TlsVersion::V13, m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What verify-ca and verify-full check beyond a chain to a trusted CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// verify-ca: the host name is not checked.
    ChainOnly,
    /// verify-full: the certificate must also name the host.
    ChainAndName,
}

/// sslmode verify-ca / verify-full: webpki's verdict, with a refusal that says why.
#[derive(Debug)]
struct Verify {
    webpki: Arc<WebPkiServerVerifier>,
    check: Check,
    /// Where the trusted CAs came from, for messages.
    roots: String,
}

impl Verify {
    fn new(webpki: Arc<WebPkiServerVerifier>, check: Check, ca_file: Option<&Path>) -> Verify {
        let roots = match ca_file {
            Some(p) => format!("upstream.ca_file {}", p.display()),
            None => "the system's CA certificates".to_string(),
        };
        Verify { webpki, check, roots }
    }
}

impl ServerCertVerifier for Verify {
    fn verify_server_cert(
        &self,
        ee: &CertificateDer<'_>,
        im: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let (mode, verdict) = match (self.check, self.webpki.verify_server_cert(ee, im, name, ocsp, now)) {
            (_, Ok(v)) => return Ok(v),
            (
                Check::ChainOnly,
                Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. })),
            ) => {
                return Ok(ServerCertVerified::assertion());
            }
            (Check::ChainOnly, Err(e)) => ("verify-ca", e),
            (Check::ChainAndName, Err(e)) => ("verify-full", e),
        };
        Err(refusal::refusal(mode, ee, verdict, &self.roots, now))
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
