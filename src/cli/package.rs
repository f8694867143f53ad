//! `lienthong package new`.

use std::path::PathBuf;

use lienthong::edxml::{
    self, Attachment, DocumentCode, DocumentPackage, DocumentType, OrganId, Organization,
    OtherInfo, Priority,
};
use lienthong::error::FormatError;
use time::OffsetDateTime;

use super::{CmdResult, read_file, write_file};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Build a new (unsigned) document package; sign it with `lienthong sign`.
    New(Box<NewArgs>),
}

#[derive(clap::Args)]
pub struct NewArgs {
    /// Sending agency code (strict shape DDD.DD.DD.LNN, e.g. 000.00.05.H21).
    #[arg(long)]
    from: String,
    /// Sending agency name (OrganName), e.g. "Sở Thông tin và Truyền thông tỉnh Gia Lai".
    #[arg(long)]
    from_name: Option<String>,
    /// Recipient agency codes, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    to: Vec<String>,
    /// Recipient names, in the order of --to (repeat the flag); defaults to the code.
    #[arg(long)]
    to_name: Vec<String>,
    /// Document number (số); written with a leading zero below 10.
    #[arg(long)]
    number: u32,
    /// Notation (ký hiệu), e.g. STTTT-CĐS.
    #[arg(long)]
    notation: String,
    /// Summary (trích yếu).
    #[arg(long)]
    subject: String,
    /// Type name, e.g. "Quyết định"; a Công văn by default.
    #[arg(long, default_value = "Công văn")]
    type_name: String,
    /// Type number (DocumentType/Type).
    #[arg(long, default_value_t = 1)]
    r#type: i32,
    /// Full name of the person who signed the document.
    #[arg(long)]
    signer: Option<String>,
    /// Signer's competence, e.g. "KT. GIÁM ĐỐC".
    #[arg(long)]
    competence: Option<String>,
    /// Signer's position, e.g. "Phó Giám đốc".
    #[arg(long)]
    position: Option<String>,
    /// Place of promulgation.
    #[arg(long, default_value = "Gia Lai")]
    place: String,
    /// Promulgation date (yyyy/MM/dd); today in Vietnam by default.
    #[arg(long)]
    date: Option<String>,
    /// Due date (yyyy/MM/dd).
    #[arg(long)]
    due_date: Option<String>,
    /// Priority: 0 thường, 1 khẩn, 2 thượng khẩn, 3 hỏa tốc, 4 hỏa tốc hẹn giờ.
    #[arg(long, default_value_t = 0)]
    priority: u8,
    /// Content (nội dung), for a dispatch whose text travels in the header.
    #[arg(long)]
    content: Option<String>,
    /// A file to attach (repeat for several); its type is taken from the extension.
    #[arg(long)]
    attach: Vec<PathBuf>,
    /// Where to write the package.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
}

pub fn run(c: Command) -> CmdResult {
    match c {
        Command::New(a) => new(*a),
    }
}

fn new(a: NewArgs) -> CmdResult {
    let now = edxml::vietnam_time(OffsetDateTime::now_utc());
    let flag = |flag: &str| {
        let flag = flag.to_owned();
        move |mut e: FormatError| {
            e.path = flag;
            e
        }
    };
    let from_id = OrganId::parse_strict(&a.from).map_err(flag("--from"))?;
    let from_name = a.from_name.clone().unwrap_or_else(|| a.from.clone());
    let mut to = Vec::new();
    for (i, code) in a.to.iter().enumerate() {
        let id = OrganId::parse_lenient(code.trim()).map_err(flag("--to"))?;
        let name = a
            .to_name
            .get(i)
            .cloned()
            .unwrap_or_else(|| code.trim().to_owned());
        to.push(Organization::new(id, name));
    }
    let date = match &a.date {
        Some(d) => parse_date("--date", d)?,
        None => now.date(),
    };
    let mut doc = DocumentPackage::new(
        Organization::new(from_id, from_name),
        to,
        DocumentCode::new(a.number, a.notation.clone()),
        date,
        a.subject.clone(),
        now,
    );
    let h = &mut doc.header;
    h.promulgation_info.place = a.place.clone();
    h.document_type = DocumentType {
        type_: a.r#type,
        type_detail: None,
        type_name: a.type_name.clone(),
    };
    h.signer_info.full_name = a.signer.clone().unwrap_or_default();
    h.signer_info.competence = a.competence.clone().unwrap_or_default();
    h.signer_info.position = a.position.clone().unwrap_or_default();
    h.content = a.content.clone();
    h.due_date = a
        .due_date
        .as_deref()
        .map(|d| parse_date("--due-date", d))
        .transpose()?;
    let priority = Priority::from_number(a.priority).ok_or_else(|| {
        FormatError::invalid("--priority", format!("{}: expected 0 to 4", a.priority))
    })?;
    h.other_info = Some(OtherInfo {
        priority,
        ..OtherInfo::default()
    });
    for path in &a.attach {
        let data = read_file("--attach", path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mime = mime_of(&name);
        doc.attachments
            .push(Attachment::new(name.clone(), mime, name, data));
    }
    let bytes = edxml::write_document(&doc).map_err(|e| named_by_flag(e, &a))?;
    write_file("--output", &a.output, &bytes)?;
    Ok(())
}

/// The header elements `package new` fills, by their path below `MessageHeader`, and the flag
/// that fills each: a refusal of the written header names what the user typed, not the XML.
const HEADER_FLAGS: &[(&str, &str)] = &[
    ("From/OrganId", "--from"),
    ("From/OrganName", "--from-name"),
    ("Code/CodeNumber", "--number"),
    ("Code/CodeNotation", "--notation"),
    ("PromulgationInfo/Place", "--place"),
    ("PromulgationInfo/PromulgationDate", "--date"),
    ("DocumentType/Type", "--type"),
    ("DocumentType/TypeName", "--type-name"),
    ("Subject", "--subject"),
    ("Content", "--content"),
    ("SignerInfo/Competence", "--competence"),
    ("SignerInfo/Position", "--position"),
    ("SignerInfo/FullName", "--signer"),
    ("DueDate", "--due-date"),
    ("OtherInfo/Priority", "--priority"),
];

/// `e` about a header element a flag filled, with the flag in place of the element's path
/// (`--from-name`; `--to 000.00.00.H41` or `--to-name` of the n-th recipient for `To[n]`).
fn named_by_flag(mut fe: FormatError, a: &NewArgs) -> FormatError {
    let Some(rest) = fe
        .path
        .strip_prefix("edXMLEnvelope/edXMLHeader/MessageHeader/")
    else {
        return fe;
    };
    let flag = match HEADER_FLAGS.iter().find(|(p, _)| *p == rest) {
        Some((_, flag)) => Some((*flag).to_owned()),
        None => recipient_flag(rest, a),
    };
    if let Some(flag) = flag {
        fe.path = flag;
    }
    fe
}

/// `To[n]/OrganId` and `To[n]/OrganName` (n from 1, as the package's paths count) as the flag
/// that gave the n-th recipient.
fn recipient_flag(rest: &str, a: &NewArgs) -> Option<String> {
    let (n, element) = rest.strip_prefix("To[")?.split_once("]/")?;
    let i = n.parse::<usize>().ok()?.checked_sub(1)?;
    match element {
        "OrganId" => Some(format!("--to {}", a.to.get(i)?.trim())),
        "OrganName" => Some(format!("--to-name[{n}]")),
        _ => None,
    }
}

fn parse_date(flag: &str, s: &str) -> Result<time::Date, FormatError> {
    edxml::dates::parse_date(s)
        .map(|(d, _)| d)
        .map_err(|e| FormatError::invalid(flag, e))
}

/// The MIME type recorded in the manifest, from the file extension (the types clerks attach).
pub(crate) fn mime_of(name: &str) -> &'static str {
    lienthong::edxml::attachment::type_of_name(name)
        .unwrap_or(lienthong::edxml::attachment::OCTET_STREAM)
}
