//! Verifying a received package end to end: one parse, the signature, trust in the signer, and
//! the edXML model — all from the same tree, so the package a caller gets is exactly the one whose
//! signature was checked.
//!
//! This is the check the CLI `verify` command and (later) the node's ingest share.

use std::time::SystemTime;

use crate::Error;
use crate::dsig::{self, VerifiedSignature};
use crate::edxml::xml::{self, Limits};
use crate::edxml::{self, Package, ReadOptions};
use crate::error::{Code, TrustError};
use crate::pki::{self, Revocation, SignerCert, TrustPolicy, TrustStore};

/// How strictly to check. `Default` is the strict profile; `trust` must be supplied.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    pub limits: Limits,
    /// Refuse unassigned status codes and non-standard agency codes instead of flagging them.
    pub strict: bool,
    pub signature: dsig::Policy,
    pub trust_policy: TrustPolicy,
    pub trust: &'a TrustStore,
    /// The revocation check of the signer's path: policy and CRLs (default off, no CRLs).
    pub revocation: Revocation,
    /// The verification time (normally now).
    pub at: SystemTime,
}

impl<'a> Options<'a> {
    /// The strict default profile against `trust`, now.
    pub fn new(trust: &'a TrustStore) -> Self {
        Options {
            limits: Limits::default(),
            strict: false,
            signature: dsig::Policy::default(),
            trust_policy: TrustPolicy::default(),
            trust,
            revocation: Revocation::default(),
            at: SystemTime::now(),
        }
    }
}

/// A package whose signature verified and whose signer is trusted.
#[derive(Debug)]
pub struct VerifiedPackage {
    pub package: Package,
    pub signature: VerifiedSignature,
    pub signer: SignerCert,
    /// Whether the signer's certificate names the sending agency (`From/OrganId`). When it names
    /// another agency the package is refused; when it names none (certificates that carry no
    /// agency code), this is `false` and the binding rests on the agency registry (issue 4).
    pub sender_bound: bool,
    /// Leading bytes of the input that were dropped (BOM, junk before `<?xml`): what was verified
    /// — and what must be stored and forwarded — is `input[verified_from..]`.
    pub verified_from: usize,
    /// The certificate path that was validated (signer first, each with its issuer): what the
    /// OCSP/CRL status check ([`crate::revocation::Checker`]) runs on.
    pub path: pki::status::ValidatedPath,
}

/// Parses, decides trust in the signer, verifies the signature, then reads the model — all on one
/// tree. Trust is decided before any digest is computed, so a stranger cannot make the node
/// canonicalise large packages.
pub fn verify_package(bytes: &[u8], opts: &Options) -> Result<VerifiedPackage, Error> {
    let parsed = xml::parse(bytes, &opts.limits)?;
    let (signature, (signer, path)) = dsig::verify(&parsed, &opts.signature, |signer, chain| {
        let intermediates: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
        Ok(pki::verify_signer_path(
            signer,
            &intermediates,
            opts.trust,
            opts.at,
            &opts.trust_policy,
            &opts.revocation,
        )?)
    })?;
    let read = ReadOptions {
        limits: opts.limits.clone(),
        strict: opts.strict,
    };
    let package = edxml::read_tree(&parsed, &read)?;
    let from = &package.from().organ_id;
    let sender_bound = match &signer.organ_id {
        Some(code) if code == from.as_str() => true,
        Some(code) => {
            return Err(TrustError::new(
                Code::SenderNotAuthorised,
                signer.subject.clone(),
                format!(
                    "the certificate is issued to {code}, but the package says it comes from {from}"
                ),
            )
            .into());
        }
        None => false,
    };
    Ok(VerifiedPackage {
        package,
        signature,
        signer,
        sender_bound,
        verified_from: parsed.offset,
        path,
    })
}
