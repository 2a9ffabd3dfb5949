//! Why sslmode verify-ca / verify-full refused the coordinator's certificate, in words an operator
//! can act on: webpki's own verdict on the certificate Citus makes for itself is only
//! "UnsupportedCertVersion", though that certificate is also self-signed and already expired.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::{CertificateError, OtherError};
use x509_cert::certificate::Version;
use x509_cert::der::Decode;

/// The refusal, carried through rustls as its `Other` error so the text survives intact.
#[derive(Debug, thiserror::Error)]
#[error("sslmode={mode} refuses the coordinator's certificate ({subject}): {reasons} (sslmode=require encrypts without checking the certificate, as libpq does)")]
pub struct CertificateRefused {
    pub mode: &'static str,
    pub subject: String,
    pub reasons: String,
}

/// Turns webpki's verdict on `cert` into a [`CertificateRefused`]; `roots` names where the
/// trusted CAs came from.
pub(crate) fn refusal(mode: &'static str, cert: &CertificateDer<'_>, verdict: rustls::Error, roots: &str, now: UnixTime) -> rustls::Error {
    let Ok(parsed) = x509_cert::Certificate::from_der(cert.as_ref()) else {
        return verdict;
    };
    let tbs = &parsed.tbs_certificate;
    let v1 = tbs.version == Version::V1;
    let self_signed = tbs.issuer == tbs.subject;
    let mut reasons = Vec::new();
    if v1 {
        reasons.push("it is an X.509 v1 certificate (no extensions, as Citus makes for itself), which cannot be verified".to_string());
    }
    let (not_before, not_after) = (tbs.validity.not_before, tbs.validity.not_after);
    if not_after.to_unix_duration().as_secs() < now.as_secs() {
        reasons.push(format!("it expired at {not_after}"));
    } else if not_before.to_unix_duration().as_secs() > now.as_secs() {
        reasons.push(format!("it is not valid before {not_before}"));
    }
    match verdict {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) if self_signed => {
            reasons.push(format!("it is self-signed and not itself among the trusted CAs ({roots})"));
        }
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            reasons.push(format!("it is not signed by a trusted CA ({roots})"));
        }
        rustls::Error::InvalidCertificate(CertificateError::BadSignature) => {
            reasons.push(format!("it is not signed by the trusted CA it names as issuer ({roots})"));
        }
        // Said above, from the certificate itself.
        rustls::Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => {}
        // webpki stops at the version; the issuer was never looked at.
        rustls::Error::InvalidCertificate(CertificateError::Other(_)) if v1 => {
            if self_signed {
                reasons.push("it is self-signed".to_string());
            }
        }
        other => reasons.push(other.to_string()),
    }
    if reasons.is_empty() {
        reasons.push("it does not verify".to_string());
    }
    rustls::Error::Other(OtherError(Arc::new(CertificateRefused { mode, subject: tbs.subject.to_string(), reasons: reasons.join("; ") })))
}

/// A failed handshake in words: a verify-ca/verify-full refusal as its own text, not wrapped in
/// rustls's "other error"; anything else as rustls says it.
pub fn describe_handshake_error(e: &std::io::Error) -> String {
    let refused = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).and_then(|tls| match tls {
        rustls::Error::Other(OtherError(why)) => why.downcast_ref::<CertificateRefused>(),
        _ => None,
    });
    match refused {
        Some(why) => why.to_string(),
        None => e.to_string(),
    }
}
