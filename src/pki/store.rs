//! The trust store: the anchors a signer must chain to, and intermediates to help get there.

use std::fmt;
use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, TrustAnchor};
use x509_parser::certificate::X509Certificate;
use x509_parser::x509::X509Version;

use super::cert;
use crate::error::{Code, TrustError};

/// File extensions [`TrustStore::from_path`] reads in a folder (PEM, or DER for `.crt`, `.cer`,
/// `.der`; the content decides).
const CERT_EXTENSIONS: &[&str] = &["pem", "crt", "cer", "der"];

/// Trust anchors (the CA certificates a signer must chain to) and, optionally, intermediate CA
/// certificates used in path building besides those a package carries.
///
/// Every CA certificate given to the store becomes an anchor — a root, or an issuing CA one means
/// to trust directly; other certificates (end entities) are ignored. So is a repeated certificate.
#[derive(Clone, Default)]
pub struct TrustStore {
    anchors: Vec<TrustAnchor<'static>>,
    /// Parallel to `anchors`.
    anchor_certs: Vec<StoredCert>,
    intermediates: Vec<StoredCert>,
    /// Paths validated against exactly these anchors and intermediates (see `path_cache.rs`);
    /// replaced by an empty one whenever they change.
    pub(crate) paths: std::sync::Arc<super::path_cache::PathCache>,
}

#[derive(Clone)]
pub(crate) struct StoredCert {
    pub(crate) der: CertificateDer<'static>,
    pub(crate) subject: String,
}

impl TrustStore {
    /// An empty store (trusts nothing).
    pub fn new() -> TrustStore {
        TrustStore::default()
    }

    /// Adds the anchors and intermediates of `other` (a node's trust comes from several files).
    pub fn merge(&mut self, other: TrustStore) {
        self.paths = Default::default();
        for (anchor, cert) in other.anchors.into_iter().zip(other.anchor_certs) {
            if !self.anchor_certs.iter().any(|c| c.der == cert.der) {
                self.anchors.push(anchor);
                self.anchor_certs.push(cert);
            }
        }
        for cert in other.intermediates {
            if !self.intermediates.iter().any(|c| c.der == cert.der) {
                self.intermediates.push(cert);
            }
        }
    }

    /// Reads anchors from a PEM file or a folder of certificate files (`*.pem`, `*.crt`, `*.cer`,
    /// `*.der`, not recursing; PEM or single DER certificates). In a folder, files holding no
    /// certificate (keys, CRLs) are skipped; a named file must hold one.
    ///
    /// The store may come out empty (a folder of end-entity certificates); callers that need
    /// anchors check [`TrustStore::is_empty`].
    pub fn from_path(path: &Path) -> Result<TrustStore, crate::Error> {
        let io = |e| crate::Error::io(path.display().to_string(), e);
        let mut store = TrustStore::new();
        if path.is_dir() {
            let mut files = Vec::new();
            for entry in std::fs::read_dir(path).map_err(io)? {
                let p = entry.map_err(io)?.path();
                let wanted = p
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| CERT_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)));
                if wanted && p.is_file() {
                    files.push(p);
                }
            }
            files.sort();
            for file in files {
                let bytes = std::fs::read(&file)
                    .map_err(|e| crate::Error::io(file.display().to_string(), e))?;
                let certs = read_certs(&bytes, &file.display().to_string())?;
                store.add_anchors(certs, &file.display().to_string())?;
            }
        } else {
            let bytes = std::fs::read(path).map_err(io)?;
            let source = path.display().to_string();
            let certs = read_certs(&bytes, &source)?;
            if certs.is_empty() {
                return Err(
                    TrustError::new(Code::CertMalformed, source, "holds no certificate").into(),
                );
            }
            store.add_anchors(certs, &source)?;
        }
        Ok(store)
    }

    /// Anchors from PEM text (any number of `CERTIFICATE` blocks; other blocks are skipped).
    pub fn from_pem(pem: &[u8]) -> Result<TrustStore, TrustError> {
        let mut store = TrustStore::new();
        let certs = read_certs(pem, "PEM input")?;
        store.add_anchors(certs, "PEM input")?;
        Ok(store)
    }

    /// Adds the CA certificates of `pem` as intermediates: used to build paths, never trusted by
    /// themselves. Certificates that are not CAs are ignored.
    pub fn add_intermediates_pem(&mut self, pem: &[u8]) -> Result<(), TrustError> {
        self.paths = Default::default();
        for (i, der) in read_certs(pem, "PEM input")?.into_iter().enumerate() {
            let parsed = parse_in(&der, "PEM input", i)?;
            if !parsed.is_ca() || self.intermediates.iter().any(|c| c.der == der) {
                continue;
            }
            let subject = cert::name_to_string(parsed.subject());
            self.intermediates.push(StoredCert { der, subject });
        }
        Ok(())
    }

    /// The number of anchors.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether the store has no anchor (and so trusts nothing).
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// The anchors' subjects (RFC 4514 text), in the order they were added.
    pub fn anchor_subjects(&self) -> impl Iterator<Item = &str> {
        self.anchor_certs.iter().map(|c| c.subject.as_str())
    }

    /// The DER certificates of the anchors (for expiry reports).
    pub fn anchor_certificates(&self) -> impl Iterator<Item = &[u8]> {
        self.anchor_certs.iter().map(|c| c.der.as_ref())
    }

    /// The number of intermediates kept besides the anchors.
    pub fn intermediate_count(&self) -> usize {
        self.intermediates.len()
    }

    pub(crate) fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    pub(crate) fn anchor_certs(&self) -> &[StoredCert] {
        &self.anchor_certs
    }

    pub(crate) fn intermediates(&self) -> &[StoredCert] {
        &self.intermediates
    }

    fn add_anchors(
        &mut self,
        certs: Vec<CertificateDer<'static>>,
        source: &str,
    ) -> Result<(), TrustError> {
        self.paths = Default::default();
        for (i, der) in certs.into_iter().enumerate() {
            let parsed = parse_in(&der, source, i)?;
            if !is_anchor_candidate(&parsed) || self.anchor_certs.iter().any(|c| c.der == der) {
                continue;
            }
            let subject = cert::name_to_string(parsed.subject());
            let anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|e| {
                    TrustError::new(
                        Code::CertMalformed,
                        &subject,
                        format!("unusable as a trust anchor ({source}): {e}"),
                    )
                })?
                .to_owned();
            self.anchors.push(anchor);
            self.anchor_certs.push(StoredCert { der, subject });
        }
        Ok(())
    }
}

impl fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustStore")
            .field("anchors", &self.anchor_subjects().collect::<Vec<_>>())
            .field(
                "intermediates",
                &self
                    .intermediates
                    .iter()
                    .map(|c| c.subject.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A CA certificate, or an old version-1 self-issued root (which has no extensions to say so).
fn is_anchor_candidate(cert: &X509Certificate<'_>) -> bool {
    cert.is_ca()
        || (cert.version() == X509Version::V1 && cert.subject().as_raw() == cert.issuer().as_raw())
}

/// The certificates in `bytes`: the `CERTIFICATE` blocks of PEM text, or one DER certificate.
fn read_certs(bytes: &[u8], source: &str) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        CertificateDer::pem_slice_iter(bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TrustError::new(Code::CertMalformed, source, format!("bad PEM: {e}")))
    } else if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(Vec::new())
    } else {
        // Not PEM: a DER certificate (as `.crt`/`.cer` files often are); parse_in says if not.
        Ok(vec![CertificateDer::from(bytes.to_vec())])
    }
}

fn parse_in<'a>(
    der: &'a CertificateDer<'_>,
    source: &str,
    index: usize,
) -> Result<X509Certificate<'a>, TrustError> {
    cert::parse(der).map_err(|e| {
        TrustError::new(
            e.code,
            format!("certificate {} of {source}", index + 1),
            e.problem,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_without_certificates_gives_an_empty_store() {
        let store = TrustStore::from_pem(b"").unwrap();
        assert!(store.is_empty());
        let key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(TrustStore::from_pem(key).unwrap().is_empty());
    }

    #[test]
    fn garbage_is_malformed() {
        let e = TrustStore::from_pem(b"\x30\x03\x02\x01\x01").unwrap_err();
        assert_eq!(e.code, Code::CertMalformed);
        let bad_pem = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let e = TrustStore::from_pem(bad_pem).unwrap_err();
        assert_eq!(e.code, Code::CertMalformed);
    }
}
