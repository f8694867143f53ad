//! Revocation input to the trust decision: CRLs the caller has and the policy that says what an
//! unknown status means.
//!
//! The policy, as handed to webpki (`path.rs`):
//!
//! | policy | certificates checked | no CRL for a certificate | CRL past its `nextUpdate` |
//! |---|---|---|---|
//! | [`RevocationPolicy::Require`] | the signer and every intermediate (not the anchor) | refused, `REVOCATION_UNKNOWN` | refused as stale, `REVOCATION_UNKNOWN` |
//! | [`RevocationPolicy::Prefer`] | the signer and every intermediate that has a CRL | accepted | still used: what it lists as revoked stays revoked |
//! | [`RevocationPolicy::Off`] | none (CRLs given are ignored) | — | — |
//!
//! Under every policy a certificate a CRL lists is refused with `CERT_REVOKED`; a CRL whose
//! signature does not verify against its issuer's key refuses with `REVOCATION_UNKNOWN` (it was
//! given to be relied on). Under `Require` with no CRL at all, a package whose path is otherwise
//! good is refused with `REVOCATION_UNKNOWN`. This is the check of library callers that hand
//! CRLs to path building; the node and the CLI run path building with `Off` and decide on the
//! validated path with [`super::status`] instead (OCSP too, evidence, the `prefer` flag).

use std::sync::Arc;

use rustls_pki_types::CertificateRevocationListDer;
use rustls_pki_types::pem::PemObject;
use webpki::{CertRevocationList, OwnedCertRevocationList};

use crate::error::{Code, TrustError};

/// What an unknown revocation status means (see the module documentation). `Default` is `Off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RevocationPolicy {
    /// Every certificate of the path below the anchor must have a current CRL from its issuer.
    Require,
    /// Refuse what a CRL lists as revoked; accept what no CRL covers.
    Prefer,
    /// No revocation check.
    #[default]
    Off,
}

impl RevocationPolicy {
    /// The policy's name as on the command line: `require`, `prefer`, `off`.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationPolicy::Require => "require",
            RevocationPolicy::Prefer => "prefer",
            RevocationPolicy::Off => "off",
        }
    }
}

impl std::str::FromStr for RevocationPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "require" => Ok(RevocationPolicy::Require),
            "prefer" => Ok(RevocationPolicy::Prefer),
            "off" => Ok(RevocationPolicy::Off),
            _ => Err(format!(
                "unknown revocation policy {s:?} (require, prefer or off)"
            )),
        }
    }
}

/// The revocation input of [`super::verify_signer_with_revocation`]: a policy and parsed CRLs.
/// Cheap to clone (the CRLs are shared). `Default` is `Off` with no CRLs.
#[derive(Debug, Clone, Default)]
pub struct Revocation {
    pub policy: RevocationPolicy,
    crls: Vec<Arc<CertRevocationList<'static>>>,
}

impl Revocation {
    /// `policy` with no CRLs yet.
    pub fn new(policy: RevocationPolicy) -> Self {
        Revocation {
            policy,
            crls: Vec::new(),
        }
    }

    /// Adds the CRLs of `bytes` (see [`crls_from_pem_or_der`]); returns how many.
    pub fn add_pem_or_der(&mut self, bytes: &[u8], source: &str) -> Result<usize, TrustError> {
        let crls = crls_from_pem_or_der(bytes, source)?;
        let n = crls.len();
        self.crls.extend(crls);
        Ok(n)
    }

    /// Adds already parsed CRLs.
    pub fn add(&mut self, crls: impl IntoIterator<Item = Arc<CertRevocationList<'static>>>) {
        self.crls.extend(crls);
    }

    /// The CRLs held.
    pub fn crls(&self) -> &[Arc<CertRevocationList<'static>>] {
        &self.crls
    }
}

/// Parses CRLs from `bytes`: one or more PEM `X509 CRL` blocks, or one DER CRL. `source` names
/// the input in errors (`CONFIG_INVALID`: a CRL file is configuration). webpki accepts v2 CRLs
/// with a `nextUpdate` and no delta CRLs.
pub fn crls_from_pem_or_der(
    bytes: &[u8],
    source: &str,
) -> Result<Vec<Arc<CertRevocationList<'static>>>, TrustError> {
    let bad = |problem: String| TrustError::new(Code::ConfigInvalid, source, problem);
    let parse = |der: &[u8]| {
        OwnedCertRevocationList::from_der(der)
            .map(|c| Arc::new(CertRevocationList::from(c)))
            .map_err(|e| bad(format!("not a usable CRL: {e}")))
    };
    let looks_pem = bytes
        .windows(b"-----BEGIN".len())
        .any(|w| w == b"-----BEGIN");
    if !looks_pem {
        return Ok(vec![parse(bytes)?]);
    }
    let mut out = Vec::new();
    for der in CertificateRevocationListDer::pem_slice_iter(bytes) {
        let der = der.map_err(|e| bad(format!("bad PEM: {e}")))?;
        out.push(parse(der.as_ref())?);
    }
    if out.is_empty() {
        return Err(bad("holds no CRL (no `X509 CRL` PEM block)".into()));
    }
    Ok(out)
}
