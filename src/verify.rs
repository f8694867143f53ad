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
use crate::pki::{self, SignerCert, TrustPolicy, TrustStore};

/// How strictly to check. `Default` is the strict profile; `trust` must be supplied.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    pub limits: Limits,
    /// Refuse unassigned status codes and non-standard agency codes instead of flagging them.
    pub strict: bool,
    pub signature: dsig::Policy,
    pub trust_policy: TrustPolicy,
    pub trust: &'a TrustStore,
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
}

/// Parses, verifies the signature, decides trust in the signer, then reads the model.
pub fn verify_package(bytes: &[u8], opts: &Options) -> Result<VerifiedPackage, Error> {
    let parsed = xml::parse(bytes, &opts.limits)?;
    let signature = dsig::verify(&parsed, &opts.signature)?;
    let intermediates: Vec<&[u8]> = signature.chain.iter().map(Vec::as_slice).collect();
    let signer = pki::verify_signer(
        &signature.signer,
        &intermediates,
        opts.trust,
        opts.at,
        &opts.trust_policy,
    )?;
    let read = ReadOptions {
        limits: opts.limits.clone(),
        strict: opts.strict,
    };
    let package = edxml::read_tree(&parsed, &read)?;
    Ok(VerifiedPackage {
        package,
        signature,
        signer,
    })
}
