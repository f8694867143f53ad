//! The agency registry at the node: the sender-binding check of ingest, and the import file the
//! admin CLI reads.
//!
//! The check ([`bind_sender`]) reads what the registry says about the package's `From` code and
//! its signer, then applies [`pki::binding::decide`] — after verification, before anything is
//! stored, so a refused package leaves no state (invariant 5).
//!
//! The import file (TOML, [`parse_import`]): one `[[agency]]` table per agency, each with its
//! `[[agency.rule]]`s. Besides the stored rule kinds (`fingerprint`, `subject`, see
//! [`Rule`]), a file may name certificates by PEM file (relative to the file's folder): kind
//! `certificate` with `path` becomes a `fingerprint` rule, and a `subject` rule may give
//! `issuer_certificate` (a path) instead of `issuer_sha256`. A certificate file whose
//! `serialNumber` names another agency code is refused: the registry never contradicts a CA.
//!
//! ```toml
//! [[agency]]
//! code = "000.00.05.H21"
//! name = "Sở Thông tin và Truyền thông tỉnh Gia Lai"
//! [[agency.rule]]
//! kind = "certificate"
//! path = "stttt-gialai.cert.pem"
//! [[agency.rule]]
//! kind = "subject"
//! issuer_certificate = "issuing-ca.cert.pem"
//! attribute = "serialNumber"
//! value = "000.00.05.H21"
//! ```
//!
//! [`pki::binding::decide`]: crate::pki::binding::decide

use std::path::Path;

use serde::Deserialize;

use crate::Error;
use crate::config::Config;
use crate::error::{Code, FormatError};
use crate::node::keys::Keyring;
use crate::pki::TrustStore;
use crate::pki::binding::{self, Attribute, Binding, Registry, Rule, Signer};
use crate::store::{NewRegistryEntry, Store};
use crate::verify::VerifiedPackage;

/// Bytes of an import file, at most.
pub const MAX_IMPORT_FILE: u64 = 16 * 1024 * 1024;

/// The sender-binding check of ingest: may the signer of `verified` sign for its `From` code,
/// given the registry in `store`, this node's own agencies (`keys`) and its trust anchors (the
/// candidate issuers of `subject` rules, with the certificates sent with the signature)?
/// `SENDER_NOT_AUTHORISED` naming the certificate and both codes when not.
pub async fn bind_sender<S: Store>(
    config: &Config,
    keys: &Keyring,
    trust: &TrustStore,
    store: &S,
    verified: &VerifiedPackage,
) -> Result<Binding, Error> {
    let from = &verified.package.from().organ_id;
    let fp = verified.signer.sha256_fingerprint.as_str();
    let found = store.registry_binding(from.as_str(), fp).await?;
    let own = config
        .agency(from)
        .and_then(|_| keys.get(from))
        .map(|s| sha256_hex(s.certificate()));
    let candidates: Vec<&[u8]> = verified
        .signature
        .chain
        .iter()
        .map(Vec::as_slice)
        .chain(trust.anchor_certificates())
        .collect();
    let signer = Signer {
        cert: &verified.signer,
        der: &verified.signature.signer,
        issuer_candidates: &candidates,
    };
    let registry = Registry {
        rules: &found.rules,
        fingerprint_registered_for: &found.fingerprint_registered_for,
        own_certificate: own.as_deref(),
    };
    Ok(binding::decide(from.as_str(), &signer, &registry)?)
}

fn sha256_hex(der: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der))
}

// --- the import file ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportFile {
    #[serde(default)]
    agency: Vec<FileAgency>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAgency {
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    rule: Vec<FileRule>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum FileRule {
    Fingerprint {
        sha256: String,
        note: Option<String>,
    },
    /// A certificate by PEM (or DER) file: its fingerprint.
    Certificate { path: String, note: Option<String> },
    Subject {
        issuer_sha256: Option<String>,
        issuer: Option<String>,
        /// The issuer's certificate by file: its fingerprint.
        issuer_certificate: Option<String>,
        attribute: Attribute,
        value: String,
        note: Option<String>,
    },
}

/// Reads an import file: the entries, checked and normalised, every error naming the file and
/// the position (`agency[2].rule[0].path`, or the TOML line and column).
pub fn read_import(path: &Path) -> Result<Vec<NewRegistryEntry>, Error> {
    let io = |e| Error::io(path.display().to_string(), e);
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_IMPORT_FILE {
        return Err(FormatError::new(
            Code::ValueInvalid,
            path.display().to_string(),
            format!("{len} bytes, over the limit of {MAX_IMPORT_FILE}"),
        )
        .into());
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse_import(&text, base).map_err(|e| match e {
        Error::Format(f) => {
            FormatError::new(f.code, format!("{}: {}", path.display(), f.path), f.problem).into()
        }
        other => other,
    })
}

/// Parses import file text; certificate paths are relative to `base`.
pub fn parse_import(text: &str, base: &Path) -> Result<Vec<NewRegistryEntry>, Error> {
    let file: ImportFile = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or_else(
            || "(toml)".to_owned(),
            |span| {
                let before = text.get(..span.start).unwrap_or(text);
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!("line {line}, column {column}")
            },
        );
        FormatError::invalid(at, e.message().to_owned())
    })?;
    if file.agency.len() > crate::store::MAX_IMPORT {
        return Err(FormatError::invalid(
            "agency",
            format!(
                "{} agencies, over the limit of {}",
                file.agency.len(),
                crate::store::MAX_IMPORT
            ),
        )
        .into());
    }
    let mut out: Vec<NewRegistryEntry> = Vec::with_capacity(file.agency.len());
    for (i, a) in file.agency.into_iter().enumerate() {
        let at = format!("agency[{i}]");
        let code = a.code.trim().to_owned();
        let mut rules = Vec::with_capacity(a.rule.len());
        for (j, r) in a.rule.into_iter().enumerate() {
            let rat = format!("{at}.rule[{j}]");
            rules.push(match r {
                FileRule::Fingerprint { sha256, note } => Rule::Fingerprint { sha256, note },
                FileRule::Certificate { path, note } => {
                    certificate_rule(base, &path, &code, &format!("{rat}.path"), note)?
                }
                FileRule::Subject {
                    issuer_sha256,
                    issuer,
                    issuer_certificate,
                    attribute,
                    value,
                    note,
                } => {
                    let issuer_sha256 = match (issuer_sha256, issuer_certificate) {
                        (Some(_), Some(_)) => {
                            return Err(FormatError::invalid(
                                rat,
                                "give issuer_sha256 or issuer_certificate, not both",
                            )
                            .into());
                        }
                        (f, None) => f,
                        (None, Some(p)) => Some(sha256_hex(&certificate_der(
                            base,
                            &p,
                            &format!("{rat}.issuer_certificate"),
                        )?)),
                    };
                    Rule::Subject {
                        issuer_sha256,
                        issuer,
                        attribute,
                        value,
                        note,
                    }
                }
            });
        }
        let entry = NewRegistryEntry {
            code,
            name: a.name,
            rules,
        }
        .normalised(&at)
        .map_err(|e| match e {
            // The store's paths say `rules[j]`; the file's tables are `rule`.
            Error::Format(mut f) => {
                f.path = f.path.replace(".rules[", ".rule[");
                Error::Format(f)
            }
            other => other,
        })?;
        if let Some(k) = out.iter().position(|e| e.code == entry.code) {
            return Err(FormatError::invalid(
                format!("{at}.code"),
                format!("{} is already listed at agency[{k}]", entry.code),
            )
            .into());
        }
        out.push(entry);
    }
    Ok(out)
}

/// A `fingerprint` rule for the certificate in the file `path` (relative to `base`) allowed to
/// sign for `code`; refused (`SENDER_NOT_AUTHORISED`) when its `serialNumber` names another
/// agency. `at` names the position for errors.
pub fn certificate_rule(
    base: &Path,
    path: &str,
    code: &str,
    at: &str,
    note: Option<String>,
) -> Result<Rule, Error> {
    let der = certificate_der(base, path, at)?;
    let cert =
        crate::pki::describe(&der).map_err(|e| FormatError::invalid(at, format!("{path}: {e}")))?;
    if let Some(named) = &cert.organ_id
        && named != code
    {
        return Err(FormatError::new(
            Code::SenderNotAuthorised,
            at,
            format!(
                "{path}: the certificate ({}) is issued to {named}, not {code}",
                cert.subject
            ),
        )
        .into());
    }
    Ok(Rule::Fingerprint {
        sha256: cert.sha256_fingerprint,
        note,
    })
}

/// The DER of the certificate in a PEM (exactly one `CERTIFICATE` block) or DER file `path`
/// (relative to `base`); `at` names the position for errors.
pub fn certificate_der(base: &Path, path: &str, at: &str) -> Result<Vec<u8>, Error> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let full = base.join(path);
    let bad = |problem: String| FormatError::invalid(at, format!("{}: {problem}", full.display()));
    let bytes = std::fs::read(&full).map_err(|e| bad(e.to_string()))?;
    if bytes.first() == Some(&0x30) {
        return Ok(bytes);
    }
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM: {e}")))?;
    match certs.as_slice() {
        [one] => Ok(one.to_vec()),
        [] => Err(bad("no certificate in the file".into()).into()),
        more => Err(bad(format!("{} certificates; give one per rule", more.len())).into()),
    }
}
