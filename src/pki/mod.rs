//! Trust in signers: anchors, path validation, the signing-certificate profile.
//!
//! The one decision is [`verify_signer`]: may a package signed by this certificate be relied on
//! at a given time? It is made in a fixed order, each step with its own error code, and every
//! message names the certificate it is about:
//!
//! 1. the signer certificate parses ([`Code::CertMalformed`]);
//! 2. it is valid at that time ([`Code::CertNotYetValid`], [`Code::CertExpired`]);
//! 3. it fits the signing profile of EDXML.md §7 ([`profile`]): not a CA ([`Code::CertIsCa`]),
//!    key usage digitalSignature or nonRepudiation and, if it has an extended key usage, one of
//!    document signing, Adobe Authentic Documents or emailProtection ([`Code::CertKeyUsage`]), an
//!    RSA key of at least 2048 bits ([`Code::AlgorithmNotAllowed`]);
//! 4. it is not signed with SHA-1 unless [`TrustPolicy::allow_sha1`] ([`Code::CertUntrusted`]);
//! 5. it chains to an anchor of the [`TrustStore`] through the intermediates sent with it or kept
//!    in the store, every certificate of the path valid at that time and signed with SHA-256 or
//!    better (`path.rs`, on `rustls-webpki`).
//!
//! 6. with [`verify_signer_with_revocation`], neither the signer nor an intermediate is revoked
//!    by a CRL the caller gives ([`Code::CertRevoked`]), and under [`RevocationPolicy::Require`]
//!    the status of each is known from a current CRL ([`Code::RevocationUnknown`]); see
//!    [`revocation`] for the policies. webpki checks it while building the path of step 5.
//!
//! 7. with [`verify_signer_path`], the validated path is returned, and [`status`] decides the
//!    revocation status of each of its certificates from OCSP responses and CRLs (fetched by
//!    `crate::revocation`, which only follows URLs of such a path), with the evidence. A CRL
//!    decides only what its scope covers ([`crl_scope`]: delta, indirect and partitioned CRLs,
//!    unknown critical extensions).
//!
//! Binding the certificate to the sending agency is [`binding`] (the agency registry's rules and
//! the decision; the caller reads the registry and passes it in).
//!
//! Pure: no network, no clock (the time is a parameter); the only file reading is
//! [`TrustStore::from_path`].
//!
//! [`Code::CertMalformed`]: crate::Code::CertMalformed
//! [`Code::CertNotYetValid`]: crate::Code::CertNotYetValid
//! [`Code::CertExpired`]: crate::Code::CertExpired
//! [`Code::CertIsCa`]: crate::Code::CertIsCa
//! [`Code::CertKeyUsage`]: crate::Code::CertKeyUsage
//! [`Code::AlgorithmNotAllowed`]: crate::Code::AlgorithmNotAllowed
//! [`Code::CertUntrusted`]: crate::Code::CertUntrusted
//! [`Code::CertRevoked`]: crate::Code::CertRevoked
//! [`Code::RevocationUnknown`]: crate::Code::RevocationUnknown

pub mod binding;
mod cert;
pub mod crl_scope;
mod describe;
mod path;
mod path_cache;
pub mod profile;
pub mod revocation;
pub mod status;
mod store;

use std::time::SystemTime;

use crate::error::TrustError;

pub use cert::{name_to_string, parse_name, same_name};
pub use describe::{SignerCert, describe};
pub use profile::{rsa_public_key, rsa_public_key_of};
pub use revocation::{Revocation, RevocationPolicy, crls_from_pem_or_der};
pub use store::TrustStore;

/// Knobs of the trust decision. `Default` is the strict policy.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    /// Accept SHA-1 certificate signatures (RSA PKCS#1 v1.5 with SHA-1), in the signer certificate
    /// and along its path. Legacy only: old certificates still in circulation.
    pub allow_sha1: bool,
}

/// The trust decision for the signer of a package (see the module documentation for the checks
/// and their order).
///
/// `signer_der` is the signer's certificate, `intermediates` the other DER certificates sent with
/// it (`KeyInfo/X509Data`), in any order; the store's own intermediates are used as well. `at` is
/// the time the decision is made for, normally now. On success, what is known about the signer.
/// No revocation check: that is [`verify_signer_with_revocation`].
pub fn verify_signer(
    signer_der: &[u8],
    intermediates: &[&[u8]],
    store: &TrustStore,
    at: SystemTime,
    policy: &TrustPolicy,
) -> Result<SignerCert, TrustError> {
    verify_signer_with_revocation(
        signer_der,
        intermediates,
        store,
        at,
        policy,
        &Revocation::default(),
    )
}

/// [`verify_signer`] plus the revocation check of `revocation` (step 6 of the module
/// documentation).
pub fn verify_signer_with_revocation(
    signer_der: &[u8],
    intermediates: &[&[u8]],
    store: &TrustStore,
    at: SystemTime,
    policy: &TrustPolicy,
    revocation: &Revocation,
) -> Result<SignerCert, TrustError> {
    verify_signer_path(signer_der, intermediates, store, at, policy, revocation)
        .map(|(signer, _)| signer)
}

/// [`verify_signer_with_revocation`], also returning the path it validated (signer first, each
/// certificate with its issuer): the input of the OCSP/CRL status check of [`status`], which
/// must run on the real path and may fetch only the URLs its certificates name.
pub fn verify_signer_path(
    signer_der: &[u8],
    intermediates: &[&[u8]],
    store: &TrustStore,
    at: SystemTime,
    policy: &TrustPolicy,
    revocation: &Revocation,
) -> Result<(SignerCert, status::ValidatedPath), TrustError> {
    let cert = cert::parse(signer_der)?;
    let subject = cert::name_to_string(cert.subject());
    cert::check_validity(&cert, &subject, at)?;
    profile::check_signing_cert(&cert, &subject)?;
    cert::check_signature_algorithm(&cert, &subject, policy)?;
    let path = path::verify_path(
        signer_der,
        &cert,
        &subject,
        intermediates,
        store,
        at,
        policy,
        revocation,
    )?;
    Ok((describe::from_parsed(&cert, signer_der), path))
}

/// The checks on one's *own* signing certificate before signing with it: valid at `at` and fit
/// for signing (the profile of [`verify_signer`] without the path, which the recipient builds).
/// Signing with a certificate recipients will refuse only creates packages nobody accepts.
pub fn check_own_certificate(der: &[u8], at: SystemTime) -> Result<SignerCert, TrustError> {
    let cert = cert::parse(der)?;
    let subject = cert::name_to_string(cert.subject());
    cert::check_validity(&cert, &subject, at)?;
    profile::check_signing_cert(&cert, &subject)?;
    Ok(describe::from_parsed(&cert, der))
}
