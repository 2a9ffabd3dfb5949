//! The server's handshake signature checked against its certificate's own public key, whatever
//! the certificate's version or validity: what libpq's sslmode prefer/require amount to. The key
//! is read with x509-cert because webpki's certificate parser accepts X.509 v3 only, and the
//! certificate Citus makes for itself is v1.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, PeerMisbehaved};
use x509_cert::der::{Decode, Encode};

/// The TLS version whose rules apply: 1.3 binds a scheme to one algorithm and curve, 1.2 may map
/// it to several (its ECDSA schemes name no curve).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TlsVersion {
    V12,
    V13,
}

/// Verifies the handshake signature `dss` over `message` with the public key of `cert`.
pub(crate) fn verify(
    version: TlsVersion,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algorithms: &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let spki = subject_public_key_info(cert)?;
    if version == TlsVersion::V13 {
        return rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, algorithms);
    }
    let key = webpki::RawPublicKeyEntity::try_from(&spki).map_err(other)?;
    let candidates = algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == dss.scheme)
        .map(|(_, algs)| *algs)
        .ok_or(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
    let mut mismatch = None;
    for alg in candidates {
        match key.verify_signature(*alg, message, dss.signature()) {
            Ok(()) => return Ok(HandshakeSignatureValid::assertion()),
            // This algorithm is for another kind of key (TLS 1.2's ECDSA schemes name no curve).
            Err(e @ webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_)) => mismatch = Some(e),
            Err(webpki::Error::InvalidSignatureForPublicKey) => return Err(CertificateError::BadSignature.into()),
            Err(e) => return Err(other(e)),
        }
    }
    Err(match mismatch {
        Some(e) => other(e),
        None => PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into(),
    })
}

/// The DER SubjectPublicKeyInfo of a certificate of any version.
pub(crate) fn subject_public_key_info(cert: &CertificateDer<'_>) -> Result<SubjectPublicKeyInfoDer<'static>, rustls::Error> {
    let parsed = x509_cert::Certificate::from_der(cert.as_ref()).map_err(|_| CertificateError::BadEncoding)?;
    let spki = parsed.tbs_certificate.subject_public_key_info.to_der().map_err(|_| CertificateError::BadEncoding)?;
    Ok(SubjectPublicKeyInfoDer::from(spki))
}

fn other(e: webpki::Error) -> rustls::Error {
    CertificateError::Other(OtherError(Arc::new(e))).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::internal::msgs::codec::{Codec, Reader};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    use rustls::SignatureScheme;

    const MESSAGE: &[u8] = b"the handshake transcript a server signs";

    struct Pair {
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    }

    fn citus_pair(dir: &std::path::Path) -> Pair {
        std::fs::create_dir_all(dir).expect("dir");
        let made = test_support::CitusAutoCert::generate(dir);
        Pair {
            cert: CertificateDer::from_pem_file(&made.cert_pem).expect("cert"),
            key: PrivateKeyDer::from_pem_file(&made.key_pem).expect("key"),
        }
    }

    fn sign(key: &PrivateKeyDer<'_>, scheme: SignatureScheme, message: &[u8]) -> DigitallySignedStruct {
        let signer = rustls::crypto::ring::sign::any_supported_type(key).expect("signing key").choose_scheme(&[scheme]).expect("scheme");
        let signature = signer.sign(message).expect("sign");
        // The struct as it travels in a handshake: scheme, then a u16-length-prefixed signature.
        let mut wire = u16::from(scheme).to_be_bytes().to_vec();
        wire.extend_from_slice(&(signature.len() as u16).to_be_bytes());
        wire.extend_from_slice(&signature);
        DigitallySignedStruct::read(&mut Reader::init(&wire)).expect("dss")
    }

    fn algorithms() -> WebPkiSupportedAlgorithms {
        rustls::crypto::ring::default_provider().signature_verification_algorithms
    }

    #[test]
    fn a_v1_certificate_key_checks_the_signature_and_a_wrong_key_fails() {
        let root = std::env::temp_dir().join(format!("citus-proxy-cert-key-{}", std::process::id()));
        let server = citus_pair(&root.join("a"));
        let impostor = citus_pair(&root.join("b"));
        let algs = algorithms();
        for (version, scheme) in [
            (TlsVersion::V13, SignatureScheme::RSA_PSS_SHA256),
            (TlsVersion::V12, SignatureScheme::RSA_PSS_SHA256),
            (TlsVersion::V12, SignatureScheme::RSA_PKCS1_SHA256),
        ] {
            let dss = sign(&server.key, scheme, MESSAGE);
            assert!(verify(version, MESSAGE, &server.cert, &dss, &algs).is_ok(), "{version:?} {scheme:?}");
            // Another key than the certificate's: a peer that does not hold the certificate's key.
            let forged = sign(&impostor.key, scheme, MESSAGE);
            assert!(verify(version, MESSAGE, &server.cert, &forged, &algs).is_err(), "{version:?} {scheme:?} wrong key");
            // Another message than the one signed.
            assert!(verify(version, b"another transcript", &server.cert, &dss, &algs).is_err(), "{version:?} {scheme:?} message");
        }
        // TLS 1.3 forbids PKCS#1 v1.5 in handshake signatures.
        let pkcs1 = sign(&server.key, SignatureScheme::RSA_PKCS1_SHA256, MESSAGE);
        assert!(verify(TlsVersion::V13, MESSAGE, &server.cert, &pkcs1, &algs).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_v3_ecdsa_certificate_works_too() {
        let dir = std::env::temp_dir().join(format!("citus-proxy-cert-key-v3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let made = test_support::TestCerts::generate(&dir);
        let cert = CertificateDer::from_pem_file(&made.cert_pem).expect("cert");
        let key = PrivateKeyDer::from_pem_file(&made.key_pem).expect("key");
        let algs = algorithms();
        let dss = sign(&key, SignatureScheme::ECDSA_NISTP256_SHA256, MESSAGE);
        for version in [TlsVersion::V12, TlsVersion::V13] {
            assert!(verify(version, MESSAGE, &cert, &dss, &algs).is_ok(), "{version:?}");
            assert!(verify(version, b"tampered", &cert, &dss, &algs).is_err(), "{version:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let dss = {
            let mut wire = u16::from(SignatureScheme::RSA_PSS_SHA256).to_be_bytes().to_vec();
            wire.extend_from_slice(&[0, 1, 0]);
            DigitallySignedStruct::read(&mut Reader::init(&wire)).expect("dss")
        };
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        assert!(matches!(
            verify(TlsVersion::V13, MESSAGE, &junk, &dss, &algorithms()),
            Err(rustls::Error::InvalidCertificate(CertificateError::BadEncoding))
        ));
    }
}
