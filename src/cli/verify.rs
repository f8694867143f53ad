//! `lienthong verify`.

use std::path::PathBuf;

use lienthong::pki::{Revocation, RevocationPolicy, TrustStore};
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
    /// A CRL file (PEM or DER) to check the signer's path against; may be repeated. CRLs are
    /// not fetched from distribution points yet.
    #[arg(long = "crl", value_name = "FILE")]
    crls: Vec<PathBuf>,
    /// Revocation policy: `require` (every certificate of the path below the anchor needs a
    /// current CRL), `prefer` (refuse what a CRL lists as revoked, accept what none covers) or
    /// `off`. Default: `prefer` when a --crl is given, else `off`.
    #[arg(long, value_name = "POLICY")]
    revocation: Option<RevocationPolicy>,
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
    let default_policy = if a.crls.is_empty() {
        RevocationPolicy::Off
    } else {
        RevocationPolicy::Prefer
    };
    let mut revocation = Revocation::new(a.revocation.unwrap_or(default_policy));
    for file in &a.crls {
        let bytes = read_file(file)?;
        revocation
            .add_pem_or_der(&bytes, &file.display().to_string())
            .map_err(|e| Failure::Local(e.into()))?;
    }
    let bytes = read_file(&a.input)?;
    let mut opts = Options::new(&store);
    opts.revocation = revocation;
    opts.strict = a.strict;
    opts.signature.allow_sha1 = a.allow_sha1;
    opts.trust_policy.allow_sha1 = a.allow_sha1;
    let v = verify::verify_package(&bytes, &opts)?;
    if a.json {
        let out = serde_json::json!({
            "ok": true,
            "signer": v.signer,
            "signature": {
                "method": v.signature.signature_method,
                "digest": v.signature.digest_method,
                "canonicalization": v.signature.canonicalization,
            },
            "sender_bound": v.sender_bound,
            "package": v.package,
        });
        println!("{out}");
    } else {
        let binding = if v.sender_bound {
            ""
        } else {
            "; the certificate names no agency code, so the sender is not bound to it"
        };
        println!(
            "OK: signed by {} (issuer {}, valid until {}); {}{binding}",
            v.signer.subject,
            v.signer.issuer,
            v.signer.not_after,
            v.package.summary()
        );
    }
    Ok(())
}
