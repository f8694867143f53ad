//! Writing a package: from the model to edXML bytes, strictly.
//!
//! What is written (and what `schemas/edxml-*.xsd` describe):
//!
//! - `<?xml version="1.0" encoding="UTF-8"?>`, then the root
//!   `<edXML xmlns="…QCVN_102_2016" xmlns:edXML="…QCVN_102_2016">`: elements are unprefixed in
//!   the default namespace, and the `edXML` prefix is bound as well because writers
//!   conventionally do (EDXML.md §2) and some consumers look for it. Readers must not care.
//! - Elements in the canonical order of EDXML.md §2, indented by two spaces, LF line ends, a final
//!   newline. `edXMLHeader` always has an end tag of its own, because the signer inserts the
//!   `Signature` as its last child just before `</edXMLHeader>`.
//! - Values trimmed; `<`, `>`, `&` escaped and CR written as `&#13;` so it survives parsing.
//!   Optional values that are absent or empty are omitted; `Place`, `Competence`, `Position`,
//!   `FullName` and `Description` are always written, possibly empty.
//! - Attachments zipped (one entry, fixed metadata, a neutral entry name `<uuid>.<ext>`) and
//!   base64-encoded without line breaks, labelled `application/zip`; the manifest keeps the
//!   original type. An attachment whose name ends exactly in lowercase `.zip` travels as it is
//!   (not zipped again), also labelled `application/zip`: receivers never unzip such a file.
//!   Any other name (`A.ZIP` too) is wrapped: whether a receiver unzips it or not, nothing it
//!   writes is named by the sender's archive.
//! - Attachment names that harm no receiver ([`super::file_name::unsafe_to_send`]: no path,
//!   control or invisible characters, no trailing dot or space, at most 255 bytes), no two the
//!   same file name to a receiver ([`super::file_name::same_file_name`]).
//!
//! Strict: the sender's OrganId must have the canonical shape (recipients and referenced
//! agencies may be other systems' non-standard codes, up to 13 characters); required values must
//! be present; soft length limits are enforced (`ValueInvalid`); unassigned status codes are
//! refused (`StatusCodeUnknown`); business blocks must be consistent with their type.
//!
//! Deterministic: the same package always gives the same bytes, so write → read → write is
//! byte-identical.

use std::borrow::Cow;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use time::{Date, PrimitiveDateTime};

use super::NS;
use super::attachment::{
    OCTET_STREAM, ZIP_CONTENT_TYPE, ZIP_MAGIC, append_base64, append_zipped_base64, entry_name,
    travels_as_is,
};
use super::dates::{check_year, format_date, format_timestamp};
use super::model::*;
use super::organ_id::OrganId;
use super::soft_limits as soft;
use crate::error::{Code, FormatError};

/// Writes a document or status package.
pub fn write(pkg: &Package) -> Result<Vec<u8>, FormatError> {
    match pkg {
        Package::Document(d) => write_document(d),
        Package::Status(s) => write_status(s),
    }
}

/// Writes a document package.
pub fn write_document(doc: &DocumentPackage) -> Result<Vec<u8>, FormatError> {
    // Zipped data is rarely bigger than the file; base64 adds a third.
    let payload: usize = doc.attachments.iter().map(|a| a.data.len()).sum();
    let mut o = Out::new(16 * 1024 + payload / 3 * 4 + payload / 8);
    o.prolog()?;
    o.open("edXMLEnvelope")?;
    o.open("edXMLHeader")?;
    message_header(&mut o, &doc.header)?;
    trace_list(&mut o, &doc.trace_headers, doc.business.as_ref())?;
    o.close()?;
    o.open("edXMLBody")?;
    manifest(&mut o, &doc.attachments)?;
    o.close()?;
    o.close()?;
    if !doc.attachments.is_empty() {
        o.open("AttachmentEncoded")?;
        for (i, a) in doc.attachments.iter().enumerate() {
            o.open_nth("Attachment", i)?;
            encoded_attachment(&mut o, a, doc.header.document_id.as_deref())?;
            o.close()?;
        }
        o.close()?;
    }
    o.finish()
}

/// Writes a status package (no body, no attachments).
pub fn write_status(st: &StatusPackage) -> Result<Vec<u8>, FormatError> {
    let mut o = Out::new(4 * 1024);
    o.prolog()?;
    o.open("edXMLEnvelope")?;
    o.open("edXMLHeader")?;
    o.open("MessageHeader")?;
    o.open("From")?;
    organization(&mut o, &st.from, true)?;
    o.close()?;
    o.open("ResponseFor")?;
    response_for(&mut o, &st.response_for)?;
    o.close()?;
    if let Some(s) = &st.staff_info {
        o.open("StaffInfo")?;
        staff_info(&mut o, s)?;
        o.close()?;
    }
    if !st.status_code.is_assigned() {
        return Err(FormatError::new(
            Code::StatusCodeUnknown,
            o.path("StatusCode"),
            format!(
                "{} is an unassigned status code (07–12, 14); only 01–06, 13, 15, 16 are written",
                st.status_code
            ),
        ));
    }
    o.leaf("StatusCode", &st.status_code.as_wire())?;
    o.limited("Description", &st.description, soft::DESCRIPTION)?;
    o.timestamp("Timestamp", st.timestamp)?;
    o.close()?;
    trace_list(&mut o, &st.trace_headers, None)?;
    o.close()?;
    o.close()?;
    o.finish()
}

// ---------------------------------------------------------------------------------------------
// Output with element paths for errors
// ---------------------------------------------------------------------------------------------

struct Out {
    w: Writer<Vec<u8>>,
    /// Open elements below the root: (tag, path segment such as `To[2]`).
    stack: Vec<(&'static str, String)>,
}

type R = Result<(), FormatError>;

impl Out {
    fn new(capacity: usize) -> Out {
        Out {
            w: Writer::new_with_indent(Vec::with_capacity(capacity), b' ', 2),
            stack: Vec::new(),
        }
    }

    /// The path of child `name` of the current element.
    fn path(&self, name: &str) -> String {
        let mut p = String::new();
        for (_, seg) in &self.stack {
            p.push_str(seg);
            p.push('/');
        }
        p.push_str(name);
        p
    }

    fn here(&self) -> String {
        let segs: Vec<&str> = self.stack.iter().map(|(_, s)| s.as_str()).collect();
        segs.join("/")
    }

    fn io(&self, e: std::io::Error) -> FormatError {
        FormatError::new(Code::Io, self.here(), e.to_string())
    }

    fn event(&mut self, e: Event) -> R {
        match self.w.write_event(e) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.io(e)),
        }
    }

    fn prolog(&mut self) -> R {
        self.event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let mut root = BytesStart::new("edXML");
        root.push_attribute(("xmlns", NS));
        root.push_attribute(("xmlns:edXML", NS));
        self.event(Event::Start(root))
    }

    fn open(&mut self, name: &'static str) -> R {
        self.stack.push((name, name.to_owned()));
        self.event(Event::Start(BytesStart::new(name)))
    }

    /// Opens the `i`-th (0-based) of repeated elements; its path segment is `name[i+1]`.
    fn open_nth(&mut self, name: &'static str, i: usize) -> R {
        self.stack.push((name, format!("{name}[{}]", i + 1)));
        self.event(Event::Start(BytesStart::new(name)))
    }

    fn close(&mut self) -> R {
        let Some((name, _)) = self.stack.pop() else {
            return Ok(());
        };
        self.event(Event::End(BytesEnd::new(name)))
    }

    fn finish(mut self) -> Result<Vec<u8>, FormatError> {
        self.event(Event::End(BytesEnd::new("edXML")))?;
        let mut out = self.w.into_inner();
        out.push(b'\n');
        Ok(out)
    }

    /// `<name>value</name>`, value trimmed and escaped (possibly empty).
    fn leaf(&mut self, name: &'static str, value: &str) -> R {
        let escaped = escape(value.trim()).map_err(|p| FormatError::invalid(self.path(name), p))?;
        self.event(Event::Start(BytesStart::new(name)))?;
        self.event(Event::Text(BytesText::from_escaped(escaped)))?;
        self.event(Event::End(BytesEnd::new(name)))
    }

    /// A value that must not be empty.
    fn required(&mut self, name: &'static str, value: &str) -> R {
        if value.trim().is_empty() {
            return Err(FormatError::missing(self.path(name)));
        }
        self.leaf(name, value)
    }

    /// A required value under a soft length limit.
    fn required_limited(&mut self, name: &'static str, value: &str, max: usize) -> R {
        self.check_len(name, value, max)?;
        self.required(name, value)
    }

    /// A possibly empty value under a soft length limit.
    fn limited(&mut self, name: &'static str, value: &str, max: usize) -> R {
        self.check_len(name, value, max)?;
        self.leaf(name, value)
    }

    fn check_len(&self, name: &str, value: &str, max: usize) -> R {
        match soft::exceeds(value.trim(), max) {
            Some(n) => Err(FormatError::invalid(
                self.path(name),
                format!("{n} characters, over the limit of {max}"),
            )),
            None => Ok(()),
        }
    }

    /// Written only when present and not empty.
    fn optional(&mut self, name: &'static str, value: Option<&str>) -> R {
        match value {
            Some(v) if !v.trim().is_empty() => self.leaf(name, v),
            _ => Ok(()),
        }
    }

    fn date(&mut self, name: &'static str, d: Date) -> R {
        check_year(d).map_err(|p| FormatError::invalid(self.path(name), p))?;
        self.leaf(name, &format_date(d))
    }

    fn timestamp(&mut self, name: &'static str, t: PrimitiveDateTime) -> R {
        check_year(t.date()).map_err(|p| FormatError::invalid(self.path(name), p))?;
        self.leaf(name, &format_timestamp(t))
    }

    /// The sender's code (canonical shape) or another agency's (any code up to 13 characters).
    fn organ_id(&mut self, name: &'static str, id: &OrganId, issued_here: bool) -> R {
        if issued_here && !id.is_standard() {
            return Err(FormatError::new(
                Code::OrganIdInvalid,
                self.path(name),
                format!(
                    "{id:?} is not of the shape DDD.DD.DD.LNN; this node writes only that shape for senders"
                ),
            ));
        }
        self.check_len(name, id.as_str(), soft::ORGAN_ID)?;
        self.leaf(name, id.as_str())
    }
}

/// Escapes text content. CR becomes `&#13;` (a literal CR would be normalised away by any
/// parser); characters XML 1.0 cannot carry are refused.
fn escape(s: &str) -> Result<Cow<'_, str>, String> {
    let needs = |c: char| matches!(c, '<' | '>' | '&' | '\r') || is_forbidden(c);
    if !s.chars().any(needs) {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => out.push_str("&#13;"),
            c if is_forbidden(c) => {
                return Err(format!(
                    "contains U+{:04X}, which XML cannot carry",
                    u32::from(c)
                ));
            }
            c => out.push(c),
        }
    }
    Ok(Cow::Owned(out))
}

fn is_forbidden(c: char) -> bool {
    (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
}

// ---------------------------------------------------------------------------------------------
// Parts
// ---------------------------------------------------------------------------------------------

fn organization(o: &mut Out, org: &Organization, issued_here: bool) -> R {
    o.organ_id("OrganId", &org.organ_id, issued_here)?;
    o.optional(
        "OrganizationInCharge",
        org.organization_in_charge.as_deref(),
    )?;
    o.required_limited("OrganName", &org.organ_name, soft::ORGAN_NAME)?;
    o.optional("OrganAdd", org.organ_add.as_deref())?;
    o.optional("Email", org.email.as_deref())?;
    o.optional("Telephone", org.telephone.as_deref())?;
    o.optional("Fax", org.fax.as_deref())?;
    o.optional("Website", org.website.as_deref())
}

fn response_for(o: &mut Out, r: &ResponseFor) -> R {
    o.organ_id("OrganId", &r.organ_id, false)?;
    o.required("Code", &r.code)?;
    o.date("PromulgationDate", r.promulgation_date)?;
    o.optional("DocumentId", r.document_id.as_deref())
}

fn staff_info(o: &mut Out, s: &StaffInfo) -> R {
    o.optional("Department", s.department.as_deref())?;
    o.optional("Staff", s.staff.as_deref())?;
    o.optional("Email", s.email.as_deref())?;
    o.optional("Mobile", s.mobile.as_deref())
}

fn message_header(o: &mut Out, h: &MessageHeader) -> R {
    o.open("MessageHeader")?;
    o.open("From")?;
    organization(o, &h.from, true)?;
    o.close()?;
    if h.to.is_empty() {
        return Err(FormatError::missing(o.path("To")));
    }
    for (i, to) in h.to.iter().enumerate() {
        o.open_nth("To", i)?;
        organization(o, to, false)?;
        o.close()?;
    }
    o.optional("DocumentId", h.document_id.as_deref())?;

    o.open("Code")?;
    o.required_limited("CodeNumber", &h.code.number, soft::CODE_NUMBER)?;
    o.required_limited("CodeNotation", &h.code.notation, soft::CODE_NOTATION)?;
    o.close()?;

    o.open("PromulgationInfo")?;
    o.leaf("Place", &h.promulgation_info.place)?;
    o.date("PromulgationDate", h.promulgation_info.date)?;
    o.close()?;

    o.open("DocumentType")?;
    o.leaf("Type", &h.document_type.type_.to_string())?;
    if let Some(d) = h.document_type.type_detail {
        o.leaf("TypeDetail", &d.to_string())?;
    }
    o.required_limited("TypeName", &h.document_type.type_name, soft::TYPE_NAME)?;
    o.close()?;

    o.required_limited("Subject", &h.subject, soft::SUBJECT)?;
    o.optional("Content", h.content.as_deref())?;

    o.open("SignerInfo")?;
    o.leaf("Competence", &h.signer_info.competence)?;
    o.limited("Position", &h.signer_info.position, soft::POSITION)?;
    o.limited("FullName", &h.signer_info.full_name, soft::FULL_NAME)?;
    o.close()?;

    if let Some(d) = h.due_date {
        o.date("DueDate", d)?;
    }
    if let Some(oi) = &h.other_info {
        other_info(o, oi)?;
    }
    for (i, r) in h.response_for.iter().enumerate() {
        o.open_nth("ResponseFor", i)?;
        response_for(o, r)?;
        o.close()?;
    }
    if let Some(s) = h.steering_type {
        o.leaf("SteeringType", &s.number().to_string())?;
    }
    let places: Vec<&str> = h
        .to_places
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect();
    if !places.is_empty() {
        let total: usize = places.iter().map(|p| p.chars().count()).sum();
        if total > soft::TO_PLACES {
            return Err(FormatError::invalid(
                o.path("ToPlaces"),
                format!("{total} characters, over the limit of {}", soft::TO_PLACES),
            ));
        }
        o.open("ToPlaces")?;
        for p in places {
            o.leaf("Place", p)?;
        }
        o.close()?;
    }
    o.close()
}

fn other_info(o: &mut Out, oi: &OtherInfo) -> R {
    o.open("OtherInfo")?;
    o.leaf("Priority", &oi.priority.number().to_string())?;
    o.optional("SphereOfPromulgation", oi.sphere_of_promulgation.as_deref())?;
    o.optional("TyperNotation", oi.typer_notation.as_deref())?;
    if let Some(n) = oi.promulgation_amount {
        o.leaf("PromulgationAmount", &n.to_string())?;
    }
    if let Some(n) = oi.page_amount {
        o.leaf("PageAmount", &n.to_string())?;
    }
    if let Some(d) = oi.direction {
        o.leaf("Direction", if d { "true" } else { "false" })?;
    }
    let appendixes: Vec<&str> = oi
        .appendixes
        .iter()
        .map(|a| a.trim())
        .filter(|a| !a.is_empty())
        .collect();
    if !appendixes.is_empty() {
        o.open("Appendixes")?;
        for a in appendixes {
            o.leaf("Appendix", a)?;
        }
        o.close()?;
    }
    o.close()
}

fn trace_list(o: &mut Out, headers: &[TraceHeader], business: Option<&Business>) -> R {
    if headers.is_empty() && business.is_none() {
        return Ok(());
    }
    o.open("TraceHeaderList")?;
    if headers.is_empty() {
        return Err(FormatError::missing(o.path("TraceHeader")));
    }
    for (i, t) in headers.iter().enumerate() {
        o.open_nth("TraceHeader", i)?;
        if let Some(id) = &t.organ_id {
            o.organ_id("OrganId", id, false)?;
        }
        o.timestamp("Timestamp", t.timestamp)?;
        o.close()?;
    }
    if let Some(b) = business {
        o.open("Bussiness")?;
        business_block(o, b)?;
        o.close()?;
    }
    o.close()
}

fn business_block(o: &mut Out, b: &Business) -> R {
    let is_update = b.doc_type == BusinessDocType::Update;
    let is_replacement = b.doc_type == BusinessDocType::Replacement;
    match (&b.document_info, is_update) {
        (None, true) => return Err(FormatError::missing(o.path("BussinessDocumentInfo"))),
        (Some(_), false) => {
            return Err(FormatError::invalid(
                o.path("BussinessDocumentInfo"),
                "only an update (BussinessDocType 2) carries it",
            ));
        }
        _ => {}
    }
    match (b.replacements.is_empty(), is_replacement) {
        (true, true) => return Err(FormatError::missing(o.path("ReplacementInfoList"))),
        (false, false) => {
            return Err(FormatError::invalid(
                o.path("ReplacementInfoList"),
                "only a replacement (BussinessDocType 3) carries it",
            ));
        }
        _ => {}
    }

    o.optional("DocumentId", b.document_id.as_deref())?;
    o.leaf("BussinessDocType", &b.doc_type.number().to_string())?;
    o.optional("BussinessDocReason", b.reason.as_deref())?;
    o.leaf("Paper", if b.paper { "1" } else { "0" })?;
    if let Some(s) = &b.staff_info {
        o.open("StaffInfo")?;
        staff_info(o, s)?;
        o.close()?;
    }
    if let Some(info) = &b.document_info {
        o.open("BussinessDocumentInfo")?;
        o.leaf("DocumentInfo", if info.document_info { "1" } else { "0" })?;
        o.leaf(
            "DocumentReceiver",
            if info.document_receiver { "1" } else { "0" },
        )?;
        if !info.receivers.is_empty() {
            o.open("ReceiverList")?;
            for (i, r) in info.receivers.iter().enumerate() {
                o.open_nth("Receiver", i)?;
                o.organ_id("OrganId", &r.organ_id, false)?;
                o.leaf("ReceiverType", &r.receiver_type.to_string())?;
                o.close()?;
            }
            o.close()?;
        }
        o.close()?;
    }
    if !b.replacements.is_empty() {
        o.open("ReplacementInfoList")?;
        for (i, r) in b.replacements.iter().enumerate() {
            o.open_nth("ReplacementInfo", i)?;
            o.required("DocumentId", &r.document_id)?;
            o.open("OrganIdList")?;
            if r.organ_ids.is_empty() {
                return Err(FormatError::missing(o.path("OrganId")));
            }
            for id in &r.organ_ids {
                o.organ_id("OrganId", id, false)?;
            }
            o.close()?;
            o.close()?;
        }
        o.close()?;
    }
    Ok(())
}

fn manifest(o: &mut Out, attachments: &[Attachment]) -> R {
    let mut start = BytesStart::new("edXMLManifest");
    start.push_attribute(("version", "1.0"));
    if attachments.is_empty() {
        return o.event(Event::Empty(start));
    }
    o.stack.push(("edXMLManifest", "edXMLManifest".to_owned()));
    o.event(Event::Start(start))?;
    let mut seen = std::collections::HashSet::with_capacity(attachments.len());
    // Each name's key for a receiver's file system, and the `Reference` it was first seen in.
    let mut names = std::collections::HashMap::with_capacity(attachments.len());
    for (i, a) in attachments.iter().enumerate() {
        o.open_nth("Reference", i)?;
        let id = a.content_id.trim();
        let valid_id = id.strip_prefix("cid:").is_some_and(|rest| {
            !rest.is_empty() && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
        });
        if !valid_id {
            return Err(FormatError::invalid(
                o.path("ContentId"),
                format!("{id:?} is not of the form cid:<id>"),
            ));
        }
        if !seen.insert(id) {
            return Err(FormatError::invalid(
                o.path("ContentId"),
                format!("{id:?} is used by two attachments"),
            ));
        }
        o.leaf("ContentId", id)?;
        o.required("ContentType", &a.content_type)?;
        o.limited("Description", &a.description, soft::DESCRIPTION)?;
        // Receivers turn the name into a file name: never one that harms them. The name
        // checked is the name written.
        let name = written_name(a);
        if let Some(why) = super::file_name::unsafe_to_send(name) {
            return Err(FormatError::invalid(
                o.path("AttachmentName"),
                format!("{:?} {why}", a.name),
            ));
        }
        // Receivers save a document's files into one folder (a `.zip` under this very name).
        if let Some(j) = names.insert(super::file_name::same_file_name(name), i) {
            return Err(FormatError::invalid(
                o.path("AttachmentName"),
                format!(
                    "{name:?} is the same file name as Reference[{}]'s ({:?}) to a receiver's \
                     system (letter case and Unicode form aside): one would overwrite the other",
                    j + 1,
                    attachments[j].name
                ),
            ));
        }
        o.required("AttachmentName", name)?;
        o.close()?;
    }
    o.close()
}

/// The `AttachmentName` exactly as written. Leading white space goes, as from every value;
/// trailing white space is kept here so that [`super::file_name::unsafe_to_send`] refuses it
/// rather than it being dropped after the checks looked at the name.
fn written_name(a: &Attachment) -> &str {
    a.name.trim_start()
}

fn encoded_attachment(o: &mut Out, a: &Attachment, document_id: Option<&str>) -> R {
    let attachment_name = written_name(a);
    o.leaf("ContentId", &a.content_id)?;
    o.leaf("AttachmentName", attachment_name)?;
    o.leaf("Description", &a.description)?;
    // How it travels: zipped, or a `.zip` as it is — or, for a `.zip` whose bytes are not an
    // archive (the clerk API refuses those; a package read elsewhere may hold one), plain bytes.
    let raw = travels_as_is(attachment_name);
    let label = if raw && !a.data.starts_with(ZIP_MAGIC) {
        OCTET_STREAM
    } else {
        ZIP_CONTENT_TYPE
    };
    o.leaf("ContentType", label)?;
    let name = "ContentTransferEncoded";
    let err_path = o.path(name);
    o.event(Event::Start(BytesStart::new(name)))?;
    // Base64 needs no escaping: encode straight into the output buffer.
    if raw {
        append_base64(&a.data, o.w.get_mut());
    } else {
        let seed = format!(
            "{}\n{}",
            document_id.unwrap_or_default(),
            a.content_id.trim()
        );
        append_zipped_base64(&entry_name(&seed, attachment_name), &a.data, o.w.get_mut()).map_err(
            |e| FormatError {
                path: err_path,
                ..e
            },
        )?;
    }
    // An empty text event tells the indenter we are inside text, so the end tag stays inline.
    o.event(Event::Text(BytesText::from_escaped("")))?;
    o.event(Event::End(BytesEnd::new(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(escape("a < b & c > d").unwrap(), "a &lt; b &amp; c &gt; d");
        assert_eq!(escape("x\r\ny").unwrap(), "x&#13;\ny");
        assert_eq!(escape("\"quoted\" 'x'").unwrap(), "\"quoted\" 'x'");
        assert!(escape("bell\u{7}").is_err());
        assert!(matches!(escape("plain"), Ok(Cow::Borrowed(_))));
    }
}
