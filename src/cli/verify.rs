//! `lienthong verify`.

use std::path::PathBuf;

use lienthong::pki::status::{EvidenceKind, Status};
use lienthong::pki::{Revocation, RevocationPolicy, TrustStore};
use lienthong::revocation::{self, Checker, FetchConfig};
use lienthong::verify::{self, Options};

use super::{CmdResult, Failure, read_file};

#[derive(clap::Args)]
pub struct Args {
    /// Trust anchors: a PEM file or a folder of PEM files.
    #[arg(long)]
    trust: PathBuf,
    /// Accept legacy RSA-SHA1 signatures and SHA-1 certificate chains.
    #[arg(long)]
    allow_sha1: bool,
    /// A CRL file (PEM or DER) to check the signer's path against, besides the CRLs of the
    /// certificates' distribution points; may be repeated.
    #[arg(long = "crl", value_name = "FILE")]
    crls: Vec<PathBuf>,
    /// Revocation policy: `require` (the status of every certificate of the path below the
    /// anchor must be known, from OCSP or a current CRL), `prefer` (refuse what is revoked,
    /// accept an unknown status with a flag) or `off`. The OCSP responders and CRL distribution
    /// points named by the validated path's certificates are fetched, as the node does.
    #[arg(long, value_name = "POLICY", default_value = "prefer")]
    revocation: RevocationPolicy,
    /// Ask this OCSP responder instead of the ones the certificates name.
    #[arg(long, value_name = "URL")]
    ocsp_responder: Option<String>,
    /// Refuse unassigned status codes and non-standard agency codes instead of flagging them.
    #[arg(long)]
    strict: bool,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// The signed package.
    input: PathBuf,
}

pub fn run(a: &Args) -> CmdResult {
    let store = TrustStore::from_path(&a.trust).map_err(Failure::Local)?;
    if store.is_empty() {
        let why = "no CA certificate found to trust (give the root CA certificate, not a signer's)";
        return Err(Failure::Local(
            lienthong::error::FormatError::new(
                lienthong::Code::ConfigInvalid,
                a.trust.display().to_string(),
                why,
            )
            .into(),
        ));
    }
    let mut crl_files = Vec::new();
    for file in &a.crls {
        let bytes = read_file("--crl", file)?;
        crl_files.extend(
            revocation::crl_sources(&bytes, &file.display().to_string())
                .map_err(|e| Failure::Local(e.into()))?,
        );
    }
    let config = FetchConfig {
        ocsp_responder: a.ocsp_responder.clone(),
        ..FetchConfig::default()
    };
    let checker = Checker::new(config, crl_files).map_err(|e| Failure::Local(e.into()))?;
    let bytes = read_file("", &a.input)?;
    let mut opts = Options::new(&store);
    // The status check runs on the validated path below, not inside path building.
    opts.revocation = Revocation::new(RevocationPolicy::Off);
    opts.strict = a.strict;
    opts.signature.allow_sha1 = a.allow_sha1;
    opts.trust_policy.allow_sha1 = a.allow_sha1;
    let v = verify::verify_package(&bytes, &opts)?;
    let outcome = revocation::check_blocking(&checker, &v.path, a.revocation, opts.at)
        .map_err(|e| Failure::Refused(e.into()))?;
    if a.json {
        let out = serde_json::json!({
            "ok": true,
            "signer": v.signer,
            "signature": {
                "method": v.signature.signature_method,
                "digest": v.signature.digest_method,
                "canonicalization": v.signature.canonicalization,
                // What tells a repeat from other content under the same id (ARCHITECTURE.md).
                "signed_identity": v.signed_identity_hex(),
            },
            "sender_bound": v.sender_bound,
            "package": v.package,
            "revocation": outcome,
        });
        outln!("{out}");
    } else {
        let binding = if v.sender_bound {
            ""
        } else {
            "; the certificate names no agency code, so the sender is not bound to it"
        };
        outln!(
            "OK: signed by {} (issuer {}, valid until {}); {}{binding}",
            v.signer.subject,
            v.signer.issuer,
            v.signer.not_after,
            v.package.summary()
        );
        for c in &outcome.certificates {
            let by = match &c.evidence {
                Some(e) => format!(
                    " by {} {}",
                    match e.kind {
                        EvidenceKind::Crl => "CRL",
                        EvidenceKind::Ocsp => "OCSP",
                    },
                    e.source
                ),
                None => String::new(),
            };
            let flag = if c.flagged {
                " (accepted under prefer, flagged)"
            } else {
                ""
            };
            let note = c
                .note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default();
            outln!(
                "revocation: {} {}{by}{flag}{note}",
                c.subject,
                match c.status {
                    Status::Good => "good",
                    Status::Revoked => "revoked",
                    Status::Unknown => "unknown",
                }
            );
        }
    }
    Ok(())
}
