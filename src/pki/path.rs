//! Path validation: from the signer to an anchor of the store, through intermediates, with
//! `rustls-webpki`. Every certificate of the path must be valid at the time, its issuers CAs
//! within their path length, and every signature made with an allowed algorithm (SHA-256 or
//! better; SHA-1 only under the legacy policy).
//!
//! The signer's own properties (validity, the signing profile, its signature algorithm) are
//! checked before, in [`super::verify_signer`], with precise messages; what fails here is the path
//! above it, and `explain` finds which certificate of it to name.
//!
//! Extended key usage: webpki applies its EKU rule to every certificate of the path. This module
//! hands it a rule that accepts any EKU, because the signing-profile rule applies to the signer
//! only ([`super::profile`]); an intermediate's EKU does not restrict the signer (RFC 5280 has no
//! EKU chaining).
//!
//! Revocation: the caller's [`Revocation`] becomes webpki's `RevocationOptions` (see
//! [`super::revocation`] for the policies); a revoked certificate is `CERT_REVOKED`, an unknown
//! status or a stale or unverifiable CRL `REVOCATION_UNKNOWN`.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use rustls_pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm,
    UnixTime, alg_id,
};
use x509_parser::asn1_rs::{FromDer, Oid};
use x509_parser::certificate::X509Certificate;

use super::path_cache::PathCache;
use super::revocation::{Revocation, RevocationPolicy};
use super::status::ValidatedPath;
use super::store::TrustStore;
use super::{TrustPolicy, cert};
use crate::error::{Code, TrustError};

/// Longest path walked when looking for the certificate to name in an error.
const MAX_EXPLAIN_DEPTH: usize = 8;

/// Builds and checks a path from `signer` (already parsed as `parsed`, subject `subject`) to an
/// anchor of `store`, using `intermediates` and the store's own, with the revocation check of
/// `revocation`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn verify_path(
    signer_der: &[u8],
    parsed: &X509Certificate<'_>,
    subject: &str,
    intermediates: &[&[u8]],
    store: &TrustStore,
    at: SystemTime,
    policy: &TrustPolicy,
    revocation: &Revocation,
) -> Result<ValidatedPath, TrustError> {
    if store.is_empty() {
        return Err(TrustError::new(
            Code::CertUntrusted,
            subject,
            "not trusted: the trust store has no anchors",
        ));
    }
    // A path is remembered only when nothing but the certificates and the time decided it: no
    // CRL handed to webpki (the node checks revocation after the path, every time).
    let cacheable = match revocation.policy {
        RevocationPolicy::Off => true,
        RevocationPolicy::Prefer => revocation.crls().is_empty(),
        RevocationPolicy::Require => false,
    };
    let key = cacheable.then(|| PathCache::key(signer_der, intermediates, policy.allow_sha1));
    let at_secs = i64::try_from(cert::unix_seconds(at)).unwrap_or(i64::MAX);
    if let Some(path) = key.as_ref().and_then(|k| store.paths.get(k, at_secs)) {
        return Ok(path);
    }
    let ee_der = CertificateDer::from(signer_der);
    let ee = webpki::EndEntityCert::try_from(&ee_der).map_err(|e| match e {
        webpki::Error::UnsupportedCriticalExtension => TrustError::new(
            Code::CertUntrusted,
            subject,
            "has a critical extension that is not understood (RFC 5280: such a certificate \
             must be refused)",
        ),
        e => TrustError::new(
            Code::CertMalformed,
            subject,
            format!("not a well-formed certificate: {e}"),
        ),
    })?;
    let pool: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|d| CertificateDer::from(*d))
        .chain(
            store
                .intermediates()
                .iter()
                .map(|c| CertificateDer::from(c.der.as_ref())),
        )
        .collect();
    let algs: &[&dyn SignatureVerificationAlgorithm] = if policy.allow_sha1 {
        &LEGACY_ALGS
    } else {
        webpki::ALL_VERIFICATION_ALGS
    };
    let time = UnixTime::since_unix_epoch(Duration::from_secs(cert::unix_seconds(at)));
    let crls: Vec<&webpki::CertRevocationList<'_>> =
        revocation.crls().iter().map(|c| c.as_ref()).collect();
    let options = match revocation.policy {
        RevocationPolicy::Off => None,
        // webpki needs at least one CRL; none under `prefer` is no check.
        RevocationPolicy::Prefer => webpki::RevocationOptionsBuilder::new(&crls).ok().map(|b| {
            b.with_depth(webpki::RevocationCheckDepth::Chain)
                .with_status_policy(webpki::UnknownStatusPolicy::Allow)
                .with_expiration_policy(webpki::ExpirationPolicy::Ignore)
                .build()
        }),
        RevocationPolicy::Require => webpki::RevocationOptionsBuilder::new(&crls).ok().map(|b| {
            b.with_depth(webpki::RevocationCheckDepth::Chain)
                .with_status_policy(webpki::UnknownStatusPolicy::Deny)
                .with_expiration_policy(webpki::ExpirationPolicy::Enforce)
                .build()
        }),
    };
    let verified =
        match ee.verify_for_usage(algs, store.anchors(), &pool, time, AnyEku, options, None) {
            Ok(v) => v,
            Err(e) => {
                let found = explain(&e, parsed, subject, &pool, store, at);
                return Err(explain_revocation(&e, parsed, revocation).unwrap_or(found));
            }
        };
    let validated = validated_path(signer_der, &verified, store, subject)?;
    if let Some(k) = key {
        store.paths.put(k, &validated);
    }
    if revocation.policy == RevocationPolicy::Require && options.is_none() {
        return Err(TrustError::new(
            Code::RevocationUnknown,
            subject,
            "its revocation status is unknown: the revocation policy is require, but no CRL was \
             given",
        ));
    }
    Ok(validated)
}

/// The path webpki validated as DER links (certificate, issuer), signer first; the anchor's
/// certificate is looked up in the store (webpki keeps only its name and key).
fn validated_path(
    signer_der: &[u8],
    verified: &webpki::VerifiedPath<'_>,
    store: &TrustStore,
    subject: &str,
) -> Result<ValidatedPath, TrustError> {
    let anchor = verified.anchor();
    let anchor_der = store
        .anchor_certificates()
        .find(|der| {
            cert::parse(der).is_ok_and(|c| {
                c.subject().as_raw().ends_with(anchor.subject.as_ref())
                    && c.public_key()
                        .raw
                        .ends_with(anchor.subject_public_key_info.as_ref())
            })
        })
        .ok_or_else(|| {
            TrustError::new(
                Code::CertUntrusted,
                subject,
                "its path ends at an anchor whose certificate is not in the trust store",
            )
        })?;
    let anchor_subject = cert::parse(anchor_der)
        .map(|c| cert::name_to_string(c.subject()))
        .unwrap_or_default();
    let mut chain: Vec<Vec<u8>> = vec![signer_der.to_vec()];
    chain.extend(
        verified
            .intermediate_certificates()
            .map(|c| c.der().as_ref().to_vec()),
    );
    chain.push(anchor_der.to_vec());
    let links = chain
        .windows(2)
        .map(|w| (w[0].clone(), w[1].clone()))
        .collect();
    Ok(ValidatedPath::new(links, anchor_subject))
}

/// The revocation errors of webpki as trust errors, naming the signer (webpki does not say which
/// certificate of the path the status is about; the signer is looked up in the CRLs to say
/// whether it is the one revoked). `None` for an error that is not about revocation.
fn explain_revocation(
    e: &webpki::Error,
    signer: &X509Certificate<'_>,
    revocation: &Revocation,
) -> Option<TrustError> {
    use webpki::Error as W;
    let subject = cert::name_to_string(signer.subject());
    let issuer = cert::name_to_string(signer.issuer());
    let unknown =
        |problem: String| Some(TrustError::new(Code::RevocationUnknown, &subject, problem));
    #[allow(deprecated)]
    match e {
        W::CertRevoked => {
            // webpki keeps the CRL issuer without its SEQUENCE header; x509-parser with it.
            let listed = revocation.crls().iter().any(|crl| {
                signer.issuer().as_raw().ends_with(crl.issuer())
                    && matches!(crl.find_serial(signer.raw_serial()), Ok(Some(_)))
            });
            let problem = if listed {
                format!("revoked: the CRL of {issuer} lists it")
            } else {
                "a certificate in its path is revoked".to_owned()
            };
            Some(TrustError::new(Code::CertRevoked, &subject, problem))
        }
        W::UnknownRevocationStatus => unknown(format!(
            "its revocation status is unknown: the revocation policy is require, and no CRL was \
             given for it (issuer {issuer}) or for a CA certificate in its path"
        )),
        W::CrlExpired { next_update, .. } => {
            let secs = i64::try_from(next_update.as_secs()).unwrap_or(i64::MAX);
            let when = x509_parser::time::ASN1Time::from_timestamp(secs)
                .map(cert::rfc3339)
                .unwrap_or_else(|_| format!("{secs} s after 1970"));
            unknown(format!(
                "its revocation status is unknown: the CRL covering it (or a CA certificate in its \
                 path) is stale — its nextUpdate {when} is past the verification time — and the \
                 revocation policy is require"
            ))
        }
        W::InvalidCrlSignatureForPublicKey
        | W::UnsupportedCrlSignatureAlgorithm
        | W::UnsupportedCrlSignatureAlgorithmContext(_)
        | W::UnsupportedCrlSignatureAlgorithmForPublicKey
        | W::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_)
        | W::IssuerNotCrlSigner
        | W::UnsupportedIndirectCrl
        | W::UnsupportedRevocationReasonsPartitioning
        | W::UnsupportedCrlIssuingDistributionPoint => unknown(format!(
            "its revocation status is unknown: a CRL given for its path cannot be relied on ({e})"
        )),
        _ => None,
    }
}

/// Accepts any extended key usage (see the module documentation), but still refuses a malformed
/// one.
struct AnyEku;

impl webpki::ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for purpose in iter {
            purpose?;
        }
        Ok(())
    }
}

/// webpki's algorithms plus RSA PKCS#1 v1.5 with SHA-1, for the legacy policy.
static LEGACY_ALGS: LazyLock<Vec<&'static dyn SignatureVerificationAlgorithm>> =
    LazyLock::new(|| {
        let mut algs = webpki::ALL_VERIFICATION_ALGS.to_vec();
        algs.extend([RSA_PKCS1_SHA1, RSA_PKCS1_SHA1_ABSENT_PARAMS]);
        algs
    });

/// `sha1WithRSAEncryption` with NULL parameters (the usual encoding).
static RSA_PKCS1_SHA1: &dyn SignatureVerificationAlgorithm = &LegacyRsaSha1 {
    signature_alg_id: AlgorithmIdentifier::from_slice(&[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00,
    ]),
};

/// `sha1WithRSAEncryption` with the parameters absent (seen in old certificates).
static RSA_PKCS1_SHA1_ABSENT_PARAMS: &dyn SignatureVerificationAlgorithm = &LegacyRsaSha1 {
    signature_alg_id: AlgorithmIdentifier::from_slice(&[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05,
    ]),
};

#[derive(Debug)]
struct LegacyRsaSha1 {
    signature_alg_id: AlgorithmIdentifier,
}

impl SignatureVerificationAlgorithm for LegacyRsaSha1 {
    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.signature_alg_id
    }

    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            public_key,
        )
        .verify(message, signature)
        .map_err(|_| InvalidSignature)
    }
}

/// Turns a webpki error into a trust error naming, where it can be found, the certificate of the
/// path it is about. webpki does not say which certificate failed, so this walks the likely path
/// (issuer names from the signer up through the candidate intermediates) to find it.
fn explain(
    e: &webpki::Error,
    signer: &X509Certificate<'_>,
    subject: &str,
    pool: &[CertificateDer<'_>],
    store: &TrustStore,
    at: SystemTime,
) -> TrustError {
    use webpki::Error as W;
    let candidates: Vec<X509Certificate<'_>> =
        pool.iter().filter_map(|d| cert::parse(d).ok()).collect();
    let path = likely_path(signer, &candidates);
    let about_signer = |code, problem: &str| TrustError::new(code, subject, problem);
    let in_path = |found: TrustError| {
        let problem = format!("{} (in the path of {subject})", found.problem);
        TrustError::new(found.code, found.subject, problem)
    };
    match e {
        W::CertExpired { .. } | W::CertNotValidYet { .. } => {
            let (code, problem) = match e {
                W::CertExpired { .. } => {
                    (Code::CertExpired, "a certificate in its path has expired")
                }
                _ => (
                    Code::CertNotYetValid,
                    "a certificate in its path is not valid yet",
                ),
            };
            let found = path.iter().find_map(|c| {
                cert::check_validity(c, &cert::name_to_string(c.subject()), at).err()
            });
            found.map_or_else(|| about_signer(code, problem), in_path)
        }
        W::UnsupportedSignatureAlgorithmContext(cx) => {
            let Ok((_, oid)) = Oid::from_der(&cx.signature_algorithm_id) else {
                return about_signer(
                    Code::CertUntrusted,
                    "a certificate in its path is signed with an algorithm that is not accepted",
                );
            };
            // The signer is checked before path building, but look at it too: then this
            // explanation does not depend on that.
            let culprit = std::iter::once(signer)
                .chain(path.iter().copied())
                .find(|c| c.signature_algorithm.algorithm == oid);
            match culprit {
                Some(c) if cert::is_sha1_signature(&oid) => {
                    let refused = cert::sha1_refused(&cert::name_to_string(c.subject()), &oid);
                    if std::ptr::eq(c, signer) {
                        refused
                    } else {
                        in_path(refused)
                    }
                }
                _ => TrustError::new(
                    Code::CertUntrusted,
                    subject,
                    format!(
                        "a certificate in its path is signed with {}, which is not accepted \
                         (SHA-256 or better; SHA-1 only under the legacy policy)",
                        cert::algorithm_name(&oid)
                    ),
                ),
            }
        }
        W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => about_signer(
            Code::CertUntrusted,
            "a certificate in its path is signed with an algorithm that does not fit its \
             issuer's key",
        ),
        W::InvalidSignatureForPublicKey => about_signer(
            Code::CertUntrusted,
            "a signature in its path does not verify (a forged or altered certificate, or an \
             issuer key below RSA-2048)",
        ),
        W::UnknownIssuer => {
            about_signer(Code::CertUntrusted, &unknown_issuer(signer, &path, store))
        }
        W::CaUsedAsEndEntity => about_signer(
            Code::CertIsCa,
            "is a CA certificate; a CA certificate may not sign packages",
        ),
        W::EndEntityUsedAsCa => about_signer(
            Code::CertUntrusted,
            "a certificate in its path that is not a CA acts as an issuer",
        ),
        W::PathLenConstraintViolated => about_signer(
            Code::CertUntrusted,
            "its path is longer than an issuing CA's path length constraint allows",
        ),
        W::NameConstraintViolation => about_signer(
            Code::CertUntrusted,
            "its path violates a CA's name constraints",
        ),
        W::CertDistrusted => about_signer(
            Code::CertUntrusted,
            "a certificate in its path is distrusted",
        ),
        W::CertRevoked => about_signer(Code::CertRevoked, "revoked"),
        W::UnsupportedCriticalExtension => about_signer(
            Code::CertUntrusted,
            "it or a certificate in its path has a critical extension that is not understood",
        ),
        W::RequiredEkuNotFoundContext(_) => about_signer(
            Code::CertKeyUsage,
            "a certificate in its path does not allow the extended key usage needed",
        ),
        W::BadDer
        | W::BadDerTime
        | W::TrailingData(_)
        | W::MalformedExtensions
        | W::ExtensionValueInvalid
        | W::InvalidCertValidity
        | W::InvalidSerialNumber
        | W::UnsupportedCertVersion
        | W::EmptyEkuExtension
        | W::MalformedNameConstraint => about_signer(
            Code::CertMalformed,
            &format!("it or a certificate in its path is malformed ({e})"),
        ),
        _ => about_signer(
            Code::CertUntrusted,
            &format!("its path could not be validated ({e})"),
        ),
    }
}

/// The certificates above `signer` found by issuer name among `candidates`, nearest first (the
/// first match at each step; stops at a self-issued certificate, a loop or the depth limit).
fn likely_path<'c>(
    signer: &X509Certificate<'_>,
    candidates: &'c [X509Certificate<'c>],
) -> Vec<&'c X509Certificate<'c>> {
    let mut path: Vec<&X509Certificate<'_>> = Vec::new();
    let mut issuer = signer.issuer().as_raw();
    while path.len() < MAX_EXPLAIN_DEPTH {
        let Some(next) = candidates
            .iter()
            .find(|c| c.subject().as_raw() == issuer && !path.iter().any(|p| std::ptr::eq(*p, *c)))
        else {
            break;
        };
        path.push(next);
        if next.subject().as_raw() == next.issuer().as_raw() {
            break;
        }
        issuer = next.issuer().as_raw();
    }
    path
}

/// Why no anchor was reached: the name at which the likely path stops.
fn unknown_issuer(
    signer: &X509Certificate<'_>,
    path: &[&X509Certificate<'_>],
    store: &TrustStore,
) -> String {
    let top = path.last().copied().unwrap_or(signer);
    let issuer = cert::name_to_string(top.issuer());
    let anchored = store.anchor_certs().iter().any(|a| a.subject == issuer);
    let top_subject = cert::name_to_string(top.subject());
    let self_issued = top.subject().as_raw() == top.issuer().as_raw();
    match (path.last(), anchored) {
        (_, true) => format!(
            "does not chain to a trust anchor: an anchor is named {issuer}, but the path to it \
             does not verify"
        ),
        (None, false) => format!(
            "does not chain to a trust anchor: its issuer {issuer} is neither a trust anchor nor \
             among the intermediates supplied"
        ),
        (Some(_), false) if self_issued => format!(
            "does not chain to a trust anchor: its path ends at the self-signed {top_subject}, \
             which is not a trust anchor"
        ),
        (Some(_), false) => format!(
            "does not chain to a trust anchor: its path ends at {top_subject}, whose issuer \
             {issuer} is neither a trust anchor nor among the intermediates supplied"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use rustls_pki_types::pem::PemObject;

    use super::*;

    fn test_pki(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("certs/test-only")
            .join(name)
    }

    fn cert_der(name: &str) -> Vec<u8> {
        CertificateDer::from_pem_file(test_pki(name))
            .unwrap()
            .to_vec()
    }

    /// The path check on its own (without the signer checks of `verify_signer` before it) still
    /// refuses a SHA-1 signature, and says so.
    #[test]
    fn sha1_is_refused_by_the_path_check_too() {
        let signer = cert_der("sha1-signed.cert.pem");
        let chain = cert_der("chain.pem");
        let store =
            TrustStore::from_pem(&std::fs::read(test_pki("root-ca.cert.pem")).unwrap()).unwrap();
        let parsed = cert::parse(&signer).unwrap();
        let subject = cert::name_to_string(parsed.subject());
        let check = |policy: &TrustPolicy| {
            let at = SystemTime::now();
            let off = Revocation::default();
            verify_path(
                &signer,
                &parsed,
                &subject,
                &[&chain],
                &store,
                at,
                policy,
                &off,
            )
        };
        let e = check(&TrustPolicy::default()).unwrap_err();
        assert_eq!(e.code, Code::CertUntrusted, "{e}");
        assert_eq!(e.subject, subject);
        assert!(e.problem.contains("SHA-1"), "{e}");
        check(&TrustPolicy { allow_sha1: true }).unwrap();
    }

    /// A validated path is remembered for the same inputs at a time inside the validity of every
    /// certificate of it; outside that window, or with other inputs, it is validated again, and
    /// a failure is never remembered.
    #[test]
    fn validated_paths_are_cached_only_where_they_hold() {
        let signer = cert_der("stttt-gialai.cert.pem");
        let chain = cert_der("chain.pem");
        let store =
            TrustStore::from_pem(&std::fs::read(test_pki("root-ca.cert.pem")).unwrap()).unwrap();
        let parsed = cert::parse(&signer).unwrap();
        let subject = cert::name_to_string(parsed.subject());
        let off = Revocation::default();
        let strict = TrustPolicy::default();
        let now = SystemTime::now();
        let check = |at: SystemTime, intermediates: &[&[u8]]| {
            verify_path(
                &signer,
                &parsed,
                &subject,
                intermediates,
                &store,
                at,
                &strict,
                &off,
            )
        };
        let first = check(now, &[&chain]).unwrap();
        assert_eq!(store.paths.len(), 1);
        let again = check(now, &[&chain]).unwrap();
        assert_eq!(store.paths.len(), 1);
        assert_eq!(format!("{first:?}"), format!("{again:?}"));
        // Past the signer's notAfter the cached path does not hold: webpki decides again.
        let not_after = parsed.validity().not_after.timestamp() as u64;
        let later = SystemTime::UNIX_EPOCH + Duration::from_secs(not_after + 1);
        assert_eq!(check(later, &[&chain]).unwrap_err().code, Code::CertExpired);
        // Without the intermediates the path fails, and the failure is not stored.
        assert_eq!(
            check(now, &[]).unwrap_err().code,
            Code::CertUntrusted,
            "no path without the issuing CA"
        );
        assert_eq!(store.paths.len(), 1);
        // The same store with more trust starts over.
        let mut grown = store.clone();
        grown.merge(
            TrustStore::from_pem(&std::fs::read(test_pki("rogue-root.cert.pem")).unwrap()).unwrap(),
        );
        assert_eq!(grown.paths.len(), 0);
        assert_eq!(store.paths.len(), 1);
    }
}
