//! The document-metadata flags that `send`, `replace` and `drafts approve` share, and the JSON
//! (the API's `Submission` fields) built from them: one definition, so the three commands take
//! a document's metadata with the same flags, help texts and checks, and send it the same way.

use std::path::PathBuf;

use serde_json::{Value, json};

use lienthong::Code;
use lienthong::error::FormatError;

use super::client::code_and_name;
use super::flags::Typed;
use super::{Failure, read_file};

/// The metadata of a document that every command composing one takes (recipients, type,
/// dates, content, signer, priority); what a command takes its own way (số, ký hiệu, trích
/// yếu: required for a new document, the draft's by default on approval) stays with it.
#[derive(clap::Args)]
pub struct DocumentFlags {
    /// Recipient agency codes, comma-separated.
    #[arg(long, value_delimiter = ',', required_unless_present = "to_name")]
    pub(super) to: Vec<String>,
    /// A recipient with the name to print on the document, CODE=NAME (repeatable); the code
    /// need not also be in --to.
    #[arg(long, value_name = "CODE=NAME", value_parser = code_and_name)]
    pub(super) to_name: Vec<(String, String)>,
    /// Tên loại văn bản ("Công văn" when absent).
    #[arg(long)]
    pub(super) type_name: Option<String>,
    /// DocumentType/Type (1 by default).
    #[arg(long = "type", value_name = "TYPE")]
    pub(super) doc_type: Option<i32>,
    /// DocumentType/TypeDetail.
    #[arg(long)]
    pub(super) type_detail: Option<i32>,
    /// Ngày ban hành, 2026-12-01 (or 2026/12/01); today, Vietnam time, when absent.
    #[arg(long)]
    pub(super) date: Option<String>,
    /// Hạn xử lý, 2026-12-15 (or 2026/12/15).
    #[arg(long)]
    pub(super) due_date: Option<String>,
    /// Nơi ban hành; the agency's province when absent.
    #[arg(long)]
    pub(super) place: Option<String>,
    /// Nội dung: the text of the document itself (for a draft, never its mail's text).
    #[arg(long, conflicts_with = "content_file")]
    pub(super) content: Option<String>,
    /// Nội dung read from a UTF-8 text file.
    #[arg(long)]
    pub(super) content_file: Option<PathBuf>,
    /// Full name of the person who signed the document.
    #[arg(long)]
    pub(super) signer: Option<String>,
    /// The signer's position, e.g. "PHÓ GIÁM ĐỐC" (as in `package new`).
    #[arg(long = "position")]
    pub(super) signer_position: Option<String>,
    /// The signer's competence, e.g. "KT. GIÁM ĐỐC" (as in `package new`).
    #[arg(long = "competence")]
    pub(super) signer_competence: Option<String>,
    /// 0 thường … 4 hỏa tốc hẹn giờ.
    #[arg(long, default_value_t = 0)]
    pub(super) priority: u8,
}

impl DocumentFlags {
    /// The fields these flags fill, as a JSON object (recipients, priority, and each optional
    /// field that was given; `signer` only with the parts given), with `typed` told which flag
    /// filled which field. `prefix` is where the API has the fields: `metadata.` in a
    /// submission, nothing at the top of an approval's body. A `--content-file` is read here.
    pub(super) fn fields(&self, prefix: &str, typed: &mut Typed) -> Result<Value, Failure> {
        let mut recipients: Vec<Value> = Vec::new();
        let name_of = |code: &str| {
            self.to_name
                .iter()
                .find(|(c, _)| c == code)
                .map(|(_, n)| n.clone())
        };
        for code in self.to.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
            typed.set(&format!("{prefix}recipients[{}]", recipients.len()), code);
            recipients.push(match name_of(code) {
                Some(name) => json!({ "code": code, "name": name }),
                None => code.into(),
            });
        }
        for (code, name) in &self.to_name {
            if !self.to.iter().any(|c| c.trim() == code) {
                let field = format!("{prefix}recipients[{}]", recipients.len());
                typed.set_by(&field, "--to-name", format!("{code}={name}"));
                recipients.push(json!({ "code": code, "name": name }));
            }
        }
        let mut v = json!({ "recipients": recipients, "priority": self.priority });
        typed.set(&format!("{prefix}priority"), self.priority);
        let content = match &self.content_file {
            Some(path) => {
                let bytes = read_file("--content-file", path)?;
                typed.set_by(
                    &format!("{prefix}content"),
                    "--content-file",
                    path.display(),
                );
                Some(String::from_utf8(bytes).map_err(|_| {
                    FormatError::new(
                        Code::EncodingInvalid,
                        format!("--content-file {}", path.display()),
                        "not UTF-8 text",
                    )
                })?)
            }
            None => self.content.clone(),
        };
        let texts = [
            ("type_name", self.type_name.clone()),
            ("date", self.date.clone()),
            ("due_date", self.due_date.clone()),
            ("place", self.place.clone()),
            ("content", content),
        ];
        for (field, value) in texts {
            if let Some(value) = value {
                if field != "content" || self.content_file.is_none() {
                    typed.set(&format!("{prefix}{field}"), &value);
                }
                v[field] = value.into();
            }
        }
        for (field, value) in [("type", self.doc_type), ("type_detail", self.type_detail)] {
            if let Some(n) = value {
                typed.set(&format!("{prefix}{field}"), n);
                v[field] = n.into();
            }
        }
        let signer = [
            ("full_name", &self.signer),
            ("position", &self.signer_position),
            ("competence", &self.signer_competence),
        ];
        if signer.iter().any(|(_, s)| s.is_some()) {
            let mut s = json!({});
            for (k, value) in signer {
                if let Some(value) = value {
                    typed.set(&format!("{prefix}signer.{k}"), value);
                    s[k] = value.as_str().into();
                }
            }
            v["signer"] = s;
        }
        Ok(v)
    }
}

/// A new document as `send` takes it, and `replace` in place of the old one.
#[derive(clap::Args)]
pub struct NewDocument {
    /// Số; the node assigns the next number of the agency's yearly sequence when absent.
    #[arg(long)]
    pub(super) number: Option<u32>,
    /// Confirms a --number far above the agency's sequence (more than 100 above its next),
    /// which the node otherwise refuses (NUMBER_UNCONFIRMED) as a likely typo.
    #[arg(long, requires = "number")]
    pub(super) confirm_number: bool,
    /// Ký hiệu, e.g. STTTT-CĐS.
    #[arg(long)]
    pub(super) notation: String,
    /// Trích yếu.
    #[arg(long)]
    pub(super) subject: String,
    #[command(flatten)]
    pub(super) fields: DocumentFlags,
    /// Files to attach; each keeps its type (PDF, DOCX, …, by its extension).
    #[arg(long)]
    pub(super) attach: Vec<PathBuf>,
}

impl NewDocument {
    /// The `metadata` part (the API's `Submission`), with `typed` told which flag filled
    /// which field (the attached files too). The signer is always there, its parts empty
    /// when not given, as the node has always been sent it.
    pub(super) fn metadata(&self, typed: &mut Typed) -> Result<Value, Failure> {
        let mut m = self.fields.fields("metadata.", typed)?;
        typed.set("metadata.notation", &self.notation);
        typed.set("metadata.subject", &self.subject);
        m["notation"] = self.notation.as_str().into();
        m["subject"] = self.subject.as_str().into();
        if let Some(n) = self.number {
            typed.set("metadata.number", n);
            m["number"] = n.into();
            if self.confirm_number {
                m["confirm_number"] = true.into();
            }
        }
        let f = &self.fields;
        m["signer"] = json!({
            "full_name": f.signer.clone().unwrap_or_default(),
            "position": f.signer_position.clone().unwrap_or_default(),
            "competence": f.signer_competence.clone().unwrap_or_default(),
        });
        for (i, path) in self.attach.iter().enumerate() {
            typed.set(&format!("files[{i}]"), path.display());
            typed.set(&format!("metadata.files[{i}]"), path.display());
        }
        Ok(m)
    }
}
