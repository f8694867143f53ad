//! `lienthong inspect`: what a package says, without deciding whether to believe it.
//!
//! Inspect tells, it does not judge: a placeholder or unreadable signature or certificate (the
//! SDK's dummy signature with a truncated certificate, which real traffic carries) is reported as
//! "present, not verifiable: <reason>" and the package is still shown, exit 0. Only a package
//! that cannot be read at all is refused. `lienthong verify` is the command that judges.

use std::path::PathBuf;

use lienthong::dsig::verify::claimed_signer;
use lienthong::edxml::xml::{self, Limits};
use lienthong::edxml::{self, Package, ReadOptions};
use lienthong::pki::{self, SignerCert};

use super::table::Fields;
use super::{CmdResult, read_file};

#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// The package.
    input: PathBuf,
}

/// What can be said about the package signature without verifying it.
enum Signature {
    Absent,
    /// Present, with a readable certificate: who it claims to be.
    Claims(SignerCert),
    /// Present, but its certificate (or the signature itself) cannot be read: why.
    NotVerifiable {
        code: String,
        reason: String,
    },
}

fn signature(parsed: &xml::Xml) -> Signature {
    let not_verifiable = |e: lienthong::Error| Signature::NotVerifiable {
        code: e.code().to_string(),
        reason: e.to_string(),
    };
    match claimed_signer(parsed) {
        Ok(None) => Signature::Absent,
        Ok(Some(der)) => match pki::describe(&der) {
            Ok(c) => Signature::Claims(c),
            Err(e) => not_verifiable(e.into()),
        },
        Err(e) => not_verifiable(e),
    }
}

pub fn run(a: &Args) -> CmdResult {
    let bytes = read_file("", &a.input)?;
    let opts = ReadOptions::default();
    let parsed = xml::parse(&bytes, &Limits::default())?;
    let package = edxml::read_tree(&parsed, &opts)?;
    let sig = signature(&parsed);
    if a.json {
        let signature = match &sig {
            Signature::Absent => serde_json::json!({
                "present": false, "verified": false, "verifiable": false,
                "claimed_signer": null, "reason": null,
            }),
            Signature::Claims(c) => serde_json::json!({
                "present": true, "verified": false, "verifiable": true,
                "claimed_signer": c, "reason": null,
            }),
            Signature::NotVerifiable { code, reason } => serde_json::json!({
                "present": true, "verified": false, "verifiable": false,
                "claimed_signer": null, "code": code, "reason": reason,
            }),
        };
        let v = serde_json::json!({
            "package": package,
            "warnings": package.warnings(),
            "signature": signature,
        });
        outln!("{v}");
        return Ok(());
    }
    outln!("{}", package.summary());
    let mut fields = Fields::new();
    let mut field = |label: &str, parts: &[&str]| field(&mut fields, label, parts);
    match &package {
        Package::Document(d) => {
            let h = &d.header;
            field("from", &[h.from.organ_id.as_str(), &h.from.organ_name]);
            for t in &h.to {
                field("to", &[t.organ_id.as_str(), &t.organ_name]);
            }
            field("id", &[&h.effective_document_id()]);
            field("số/ký hiệu", &[&h.code.full()]);
            field(
                "date",
                &[
                    &h.promulgation_info.place,
                    &edxml::dates::format_date(h.promulgation_info.date),
                ],
            );
            field("type", &[&h.document_type.type_name]);
            field("subject", &[&h.subject]);
            let s = &h.signer_info;
            field("signer", &[&s.competence, &s.position, &s.full_name]);
            for (i, f) in d.attachments.iter().enumerate() {
                field(
                    &format!("file {}", i + 1),
                    // Escaped: a bidirectional override would reorder the line on a terminal.
                    &[&format!(
                        "{} ({}, {} bytes)",
                        f.name.escape_debug(),
                        f.content_type,
                        f.data.len()
                    )],
                );
            }
        }
        Package::Status(s) => {
            field("from", &[s.from.organ_id.as_str(), &s.from.organ_name]);
            field("about", &[&s.response_for.effective_document_id()]);
            field(
                "status",
                &[&s.status_code.to_string(), s.status_code.meaning()],
            );
            if !s.description.is_empty() {
                field("reason", &[&s.description]);
            }
            field("at", &[&edxml::dates::format_timestamp(s.timestamp)]);
        }
    }
    for w in package.warnings() {
        let kind = serde_json::to_value(w.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        field("warning", &[&format!("[{kind}] {}: {}", w.path, w.message)]);
    }
    match sig {
        Signature::Claims(c) => field(
            "signature",
            &[&format!(
                "present, NOT verified (use `lienthong verify`); claims {}",
                c.subject
            )],
        ),
        Signature::NotVerifiable { reason, .. } => field(
            "signature",
            &[&format!("present, not verifiable: {reason}")],
        ),
        Signature::Absent => field("signature", &["none"]),
    }
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(fields.render(2).as_bytes());
    Ok(())
}

/// One `label: value` line, the value made of the non-empty `parts` joined by a space (a
/// missing part never shifts the others), `-` when all are empty; values aligned by display
/// width ([`Fields`]).
fn field(fields: &mut Fields, label: &str, parts: &[&str]) {
    let value: Vec<&str> = parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect();
    fields.add(label, value.join(" "));
}
