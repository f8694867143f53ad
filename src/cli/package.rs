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
    let from_id = OrganId::parse_strict(&a.from)?;
    let from_name = a.from_name.clone().unwrap_or_else(|| a.from.clone());
    let mut to = Vec::new();
    for (i, code) in a.to.iter().enumerate() {
        let id = OrganId::parse_lenient(code.trim())?;
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
    let bytes = edxml::write_document(&doc)?;
    write_file("--output", &a.output, &bytes)?;
    Ok(())
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
