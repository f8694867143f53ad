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
    /// is `input[verified_from..]`; what is stored and forwarded is [`kept`](Self::kept).
    pub verified_from: usize,
    /// The certificate path that was validated (signer first, each with its issuer): what the
    /// OCSP/CRL status check ([`crate::revocation::Checker`]) runs on.
    pub path: pki::status::ValidatedPath,
}

impl VerifiedPackage {
    /// The certificates the kept form carries in `KeyInfo`: the signer, then those the sender
    /// offered that the validated path went through (intermediates, and the anchor if it was
    /// offered), in path order. A certificate offered but not on the path was never verified.
    pub fn kept_certificates(&self) -> Vec<&[u8]> {
        let offered = &self.signature.chain;
        let links = self.path.links();
        let on_path = links
            .iter()
            .skip(1)
            .map(|l| l.cert_der())
            .chain(links.last().map(|l| l.issuer_der()));
        std::iter::once(self.signature.signer.as_slice())
            .chain(on_path.filter(|c| offered.iter().any(|o| o.as_slice() == *c)))
            .collect()
    }

    /// What a node keeps and forwards of `input`, the bytes this was verified from: the verified
    /// text less everything the signature does not cover ([`crate::dsig::archive`]), in
    /// `input`'s buffer when nothing grows.
    pub fn kept(&self, mut input: Vec<u8>) -> Vec<u8> {
        input.drain(..self.verified_from.min(input.len()));
        self.signature
            .archive
            .apply(input, &self.kept_certificates())
    }

    /// [`VerifiedSignature::signed_identity`] in lowercase hex: what the store compares to tell
    /// a repeat of a package from other content under the same id.
    pub fn signed_identity_hex(&self) -> String {
        hex::encode(self.signature.signed_identity)
    }
}

/// Parses, decides trust in the signer, verifies the signature, then reads the model — all on one
/// tree. Trust is decided before any digest is computed, so a stranger cannot make the node
/// canonicalise large packages.
pub fn verify_package(bytes: &[u8], opts: &Options) -> Result<VerifiedPackage, Error> {
    let parsed = xml::parse(bytes, &opts.limits)?;
    verify_parsed(&parsed, opts)
}

/// [`verify_package`] on a tree the caller parsed (with `opts.limits`): for a caller that looks
/// at the tree first (the node's ingest asks whether a channel peer's signature is a
/// placeholder), so the bytes are still parsed once.
pub fn verify_parsed(parsed: &xml::Xml, opts: &Options) -> Result<VerifiedPackage, Error> {
    let (signature, (signer, path)) = dsig::verify(parsed, &opts.signature, |signer, chain| {
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
    let package = edxml::read_tree(parsed, &read)?;
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
