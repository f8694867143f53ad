//! Reading a package: from a parsed tree to the [`Package`] model.
//!
//! Rules (EDXML.md §2–§3): elements are matched by namespace and local name, never by prefix, in
//! any order. Whether a package is a document or a status is decided by content (`StatusCode` in
//! `MessageHeader` ⇒ status). Required elements that are missing or empty, and single elements
//! that repeat, are errors with the element's path; everything the standard or real traffic
//! allows but this node would not write (unknown elements, non-standard codes, tolerated date
//! forms, mislabelled attachments, …) is accepted and recorded as a [`Warning`]. With
//! [`ReadOptions::strict`], non-standard OrganIds and unassigned status codes are refused instead.
//!
//! [`read_tree`] works on a tree parsed once by [`xml::parse`], so the signature verifier and the
//! model see the same bytes.

use std::borrow::Cow;
use std::collections::HashMap;

use roxmltree::Node;
use time::{Date, PrimitiveDateTime};

use super::NS;
use super::attachment::{self, Budget};
use super::dates::{Leniency, parse_date, parse_timestamp};
use super::model::*;
use super::organ_id::OrganId;
use super::soft_limits as soft;
use super::status::StatusCode;
use super::xml::{self, Limits, Xml};
use crate::error::{Code, FormatError};

/// How to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    pub limits: Limits,
    /// Refuse non-standard OrganIds (`OrganIdInvalid`) and unassigned status codes
    /// (`StatusCodeUnknown`) instead of flagging them as warnings.
    pub strict: bool,
}

/// Parses `bytes` under `opts.limits` and reads the package.
pub fn read(bytes: &[u8], opts: &ReadOptions) -> Result<Package, FormatError> {
    let parsed = xml::parse(bytes, &opts.limits)?;
    read_tree(&parsed, opts)
}

/// Reads the package from a tree already parsed by [`xml::parse`] (never parse twice: what is
/// verified must be what is read).
pub fn read_tree(xml: &Xml, opts: &ReadOptions) -> Result<Package, FormatError> {
    let root = xml.doc.root_element();
    if !is(root, "edXML") {
        let tag = root.tag_name();
        let shown = match tag.namespace() {
            Some(ns) => format!("{{{ns}}}{}", tag.name()),
            None => tag.name().to_owned(),
        };
        return Err(FormatError::new(
            Code::NotEdxml,
            "(root)",
            format!("the root element is {shown}, not edXML in {NS}"),
        ));
    }
    let mut cx = Cx {
        opts,
        warnings: Vec::new(),
    };
    let mut top = Kids::of(root, String::new());
    let envelope = top.req("edXMLEnvelope")?;
    let encoded = top.opt("AttachmentEncoded")?;
    top.finish(&mut cx);

    let mut env = Kids::of(envelope, "edXMLEnvelope".into());
    let header = env.req("edXMLHeader")?;
    let body = env.opt("edXMLBody")?;
    env.finish(&mut cx);

    let mut hk = Kids::of(header, "edXMLEnvelope/edXMLHeader".into());
    // The signature is the verifier's business; the SDK writes it in the edXML namespace.
    hk.skip(super::is_signature);
    let mh = hk.req("MessageHeader")?;
    let trace = hk.opt("TraceHeaderList")?;
    hk.finish(&mut cx);

    let mh_path = "edXMLEnvelope/edXMLHeader/MessageHeader".to_owned();
    let mut mk = Kids::of(mh, mh_path);
    let trace_path = "edXMLEnvelope/edXMLHeader/TraceHeaderList";

    // A status report that lost its StatusCode would otherwise be read as a document and fail
    // on `To`; name what is really missing.
    let looks_like_status = !mk.has("To") && !mk.has("Code") && mk.has("ResponseFor");
    if looks_like_status && !mk.has("StatusCode") {
        return Err(FormatError::missing(mk.child_path("StatusCode")));
    }
    if mk.has("StatusCode") {
        let mut status = read_status(&mut cx, &mut mk)?;
        mk.finish(&mut cx);
        if let Some(t) = trace {
            let (headers, business) = read_trace_list(&mut cx, t, trace_path)?;
            status.trace_headers = headers;
            if business.is_some() {
                cx.warn(
                    WarningKind::Inconsistent,
                    format!("{trace_path}/Bussiness"),
                    "a business block in a status package; ignored",
                );
            }
        }
        let has_files = encoded.is_some_and(|e| e.children().any(|c| c.is_element()))
            || body.is_some_and(|b| b.descendants().any(|d| is(d, "Reference")));
        if has_files {
            cx.warn(
                WarningKind::Inconsistent,
                "edXMLEnvelope/edXMLBody",
                "a status package carries attachments; ignored",
            );
        }
        status.warnings = cx.warnings;
        return Ok(Package::Status(status));
    }

    let header = read_message_header(&mut cx, &mut mk)?;
    mk.finish(&mut cx);
    let (trace_headers, business) = match trace {
        Some(t) => read_trace_list(&mut cx, t, trace_path)?,
        None => (Vec::new(), None),
    };
    let attachments = read_attachments(&mut cx, body, encoded)?;
    Ok(Package::Document(DocumentPackage {
        header,
        trace_headers,
        business,
        attachments,
        warnings: cx.warnings,
    }))
}

// ---------------------------------------------------------------------------------------------
// Context and child access
// ---------------------------------------------------------------------------------------------

struct Cx<'o> {
    opts: &'o ReadOptions,
    warnings: Vec<Warning>,
}

impl Cx<'_> {
    fn warn(&mut self, kind: WarningKind, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Warning::new(kind, path, message));
    }

    /// An OrganId as peers send it: non-standard shapes are flagged (or refused when strict).
    fn organ_id(&mut self, text: &str, path: &str) -> Result<OrganId, FormatError> {
        let id = OrganId::parse_lenient(text).map_err(|e| at(e, path))?;
        if !id.is_standard() {
            if self.opts.strict {
                return Err(FormatError::new(
                    Code::OrganIdInvalid,
                    path,
                    format!("{text:?} is not of the shape DDD.DD.DD.LNN"),
                ));
            }
            self.warn(
                WarningKind::NonStandardOrganId,
                path,
                format!("{text:?} is not of the shape DDD.DD.DD.LNN"),
            );
        }
        Ok(id)
    }

    fn soft(&mut self, value: &str, max: usize, path: &str) {
        if let Some(n) = soft::exceeds(value, max) {
            self.warn(
                WarningKind::LengthExceeded,
                path,
                format!("{n} characters, over the limit of {max}"),
            );
        }
    }

    fn date(&mut self, text: &str, path: &str) -> Result<Date, FormatError> {
        let (d, how) = parse_date(text).map_err(|p| FormatError::invalid(path, p))?;
        if how == Leniency::Tolerated {
            self.warn(
                WarningKind::NonCanonicalValue,
                path,
                format!("{text:?} read as a date; written yyyy/MM/dd"),
            );
        }
        Ok(d)
    }

    fn timestamp(&mut self, text: &str, path: &str) -> Result<PrimitiveDateTime, FormatError> {
        let (t, how) = parse_timestamp(text).map_err(|p| FormatError::invalid(path, p))?;
        if how == Leniency::Tolerated {
            self.warn(
                WarningKind::NonCanonicalValue,
                path,
                format!("{text:?} read as a timestamp; written yyyy/MM/dd HH:mm:ss"),
            );
        }
        Ok(t)
    }
}

/// Re-homes an error produced without a path.
fn at(mut e: FormatError, path: &str) -> FormatError {
    e.path = path.to_owned();
    e
}

fn is(n: Node, name: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(NS) && n.tag_name().name() == name
}

/// The element children of one element, consumed by name; whatever is not consumed is reported
/// as unknown when the reader is done with the element.
struct Kids<'a, 'i> {
    path: String,
    items: Vec<(Node<'a, 'i>, bool)>,
}

impl<'a, 'i> Kids<'a, 'i> {
    fn of(node: Node<'a, 'i>, path: String) -> Self {
        Kids {
            path,
            items: node
                .children()
                .filter(|c| c.is_element())
                .map(|c| (c, false))
                .collect(),
        }
    }

    fn child_path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.path)
        }
    }

    fn has(&self, name: &str) -> bool {
        self.items.iter().any(|(n, _)| is(*n, name))
    }

    /// Marks matching children as handled without reading them.
    fn skip(&mut self, pred: impl Fn(&Node) -> bool) {
        for (n, used) in &mut self.items {
            if pred(n) {
                *used = true;
            }
        }
    }

    /// A child allowed at most once.
    fn opt(&mut self, name: &str) -> Result<Option<Node<'a, 'i>>, FormatError> {
        let mut found = None;
        let mut count = 0;
        for (n, used) in &mut self.items {
            if is(*n, name) {
                *used = true;
                count += 1;
                found.get_or_insert(*n);
            }
        }
        if count > 1 {
            return Err(FormatError::new(
                Code::ElementDuplicate,
                self.child_path(name),
                format!("appears {count} times; allowed once"),
            ));
        }
        Ok(found)
    }

    /// A child required exactly once.
    fn req(&mut self, name: &str) -> Result<Node<'a, 'i>, FormatError> {
        self.opt(name)?
            .ok_or_else(|| FormatError::missing(self.child_path(name)))
    }

    /// All children of that name, each with its indexed path (`To[2]`).
    fn all(&mut self, name: &str) -> Vec<(Node<'a, 'i>, String)> {
        let base = self.child_path(name);
        let mut out = Vec::new();
        for (n, used) in &mut self.items {
            if is(*n, name) {
                *used = true;
                out.push((*n, format!("{base}[{}]", out.len() + 1)));
            }
        }
        out
    }

    /// Required and non-empty text.
    fn req_text(&mut self, cx: &mut Cx, name: &str) -> Result<String, FormatError> {
        let path = self.child_path(name);
        let node = self.req(name)?;
        let t = text_of(cx, node, &path);
        if t.is_empty() {
            return Err(FormatError::missing(path));
        }
        Ok(t.into_owned())
    }

    /// Optional text; absent and empty are both `None`.
    fn opt_text(&mut self, cx: &mut Cx, name: &str) -> Result<Option<String>, FormatError> {
        let path = self.child_path(name);
        Ok(self.opt(name)?.and_then(|n| {
            let t = text_of(cx, n, &path);
            (!t.is_empty()).then(|| t.into_owned())
        }))
    }

    /// Text this node always writes but peers may omit: absent → empty, flagged.
    fn text_or_empty(&mut self, cx: &mut Cx, name: &str) -> Result<String, FormatError> {
        let path = self.child_path(name);
        match self.opt(name)? {
            Some(n) => Ok(text_of(cx, n, &path).into_owned()),
            None => {
                cx.warn(WarningKind::ValueDefaulted, path, "missing; read as empty");
                Ok(String::new())
            }
        }
    }

    fn opt_parse<T>(
        &mut self,
        cx: &mut Cx,
        name: &str,
        parse: impl FnOnce(&str) -> Option<T>,
        expected: &str,
    ) -> Result<Option<T>, FormatError> {
        let path = self.child_path(name);
        match self.opt_text(cx, name)? {
            None => Ok(None),
            Some(t) => parse(&t)
                .map(Some)
                .ok_or_else(|| FormatError::invalid(path, format!("{t:?} is not {expected}"))),
        }
    }

    fn req_parse<T>(
        &mut self,
        cx: &mut Cx,
        name: &str,
        parse: impl FnOnce(&str) -> Option<T>,
        expected: &str,
    ) -> Result<T, FormatError> {
        let path = self.child_path(name);
        let t = self.req_text(cx, name)?;
        parse(&t).ok_or_else(|| FormatError::invalid(path, format!("{t:?} is not {expected}")))
    }

    fn opt_date(&mut self, cx: &mut Cx, name: &str) -> Result<Option<Date>, FormatError> {
        let path = self.child_path(name);
        match self.opt_text(cx, name)? {
            Some(t) => cx.date(&t, &path).map(Some),
            None => Ok(None),
        }
    }

    fn req_date(&mut self, cx: &mut Cx, name: &str) -> Result<Date, FormatError> {
        let path = self.child_path(name);
        let t = self.req_text(cx, name)?;
        cx.date(&t, &path)
    }

    fn req_timestamp(&mut self, cx: &mut Cx, name: &str) -> Result<PrimitiveDateTime, FormatError> {
        let path = self.child_path(name);
        let t = self.req_text(cx, name)?;
        cx.timestamp(&t, &path)
    }

    fn req_organ_id(&mut self, cx: &mut Cx, name: &str) -> Result<OrganId, FormatError> {
        let path = self.child_path(name);
        let t = self.req_text(cx, name)?;
        cx.organ_id(&t, &path)
    }

    /// Reports what was not consumed.
    fn finish(self, cx: &mut Cx) {
        for (n, used) in &self.items {
            if *used {
                continue;
            }
            let tag = n.tag_name();
            let message = match tag.namespace() {
                Some(NS) => "unknown element; ignored".to_owned(),
                Some(ns) => format!("element in namespace {ns}; ignored"),
                None => "element in no namespace; ignored".to_owned(),
            };
            cx.warn(
                WarningKind::UnknownElement,
                self.child_path(tag.name()),
                message,
            );
        }
    }
}

/// The trimmed text of a leaf element (borrowed when it is one text node, as a big base64 is).
/// Child elements inside a value are ignored, with a warning.
fn text_of<'a>(cx: &mut Cx, node: Node<'a, '_>, path: &str) -> Cow<'a, str> {
    let mut texts = node
        .children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text());
    if node.children().any(|c| c.is_element()) {
        cx.warn(
            WarningKind::UnknownElement,
            path,
            "elements inside a text value; ignored",
        );
    }
    let first = texts.next().unwrap_or("");
    match texts.next() {
        None => Cow::Borrowed(first.trim()),
        Some(second) => {
            let mut s = String::from(first);
            s.push_str(second);
            texts.for_each(|t| s.push_str(t));
            Cow::Owned(s.trim().to_owned())
        }
    }
}

fn parse_int<T: std::str::FromStr>(s: &str) -> Option<T> {
    s.parse().ok()
}

/// `0`/`1`, also `true`/`false`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" => Some(true),
        "0" => Some(false),
        _ if s.eq_ignore_ascii_case("true") => Some(true),
        _ if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Header parts
// ---------------------------------------------------------------------------------------------

fn read_organization(cx: &mut Cx, node: Node, path: &str) -> Result<Organization, FormatError> {
    let mut k = Kids::of(node, path.to_owned());
    let organ_id = k.req_organ_id(cx, "OrganId")?;
    let organ_name = k.req_text(cx, "OrganName")?;
    cx.soft(&organ_name, soft::ORGAN_NAME, &k.child_path("OrganName"));
    let org = Organization {
        organ_id,
        organization_in_charge: k.opt_text(cx, "OrganizationInCharge")?,
        organ_name,
        organ_add: k.opt_text(cx, "OrganAdd")?,
        email: k.opt_text(cx, "Email")?,
        telephone: k.opt_text(cx, "Telephone")?,
        fax: k.opt_text(cx, "Fax")?,
        website: k.opt_text(cx, "Website")?,
    };
    k.finish(cx);
    Ok(org)
}

fn read_response_for(cx: &mut Cx, node: Node, path: &str) -> Result<ResponseFor, FormatError> {
    let mut k = Kids::of(node, path.to_owned());
    let r = ResponseFor {
        organ_id: k.req_organ_id(cx, "OrganId")?,
        code: k.req_text(cx, "Code")?,
        promulgation_date: k.req_date(cx, "PromulgationDate")?,
        document_id: k.opt_text(cx, "DocumentId")?,
    };
    k.finish(cx);
    Ok(r)
}

fn read_staff_info(cx: &mut Cx, node: Node, path: &str) -> Result<StaffInfo, FormatError> {
    let mut k = Kids::of(node, path.to_owned());
    let s = StaffInfo {
        department: k.opt_text(cx, "Department")?,
        staff: k.opt_text(cx, "Staff")?,
        email: k.opt_text(cx, "Email")?,
        mobile: k.opt_text(cx, "Mobile")?,
    };
    k.finish(cx);
    Ok(s)
}

fn read_message_header(cx: &mut Cx, k: &mut Kids) -> Result<MessageHeader, FormatError> {
    let from_path = k.child_path("From");
    let from = read_organization(cx, k.req("From")?, &from_path)?;

    let mut to = Vec::new();
    for (n, p) in k.all("To") {
        to.push(read_organization(cx, n, &p)?);
    }
    if to.is_empty() {
        return Err(FormatError::missing(k.child_path("To")));
    }
    let document_id = k.opt_text(cx, "DocumentId")?;

    let code_path = k.child_path("Code");
    let mut ck = Kids::of(k.req("Code")?, code_path);
    let code = DocumentCode {
        number: ck.req_text(cx, "CodeNumber")?,
        notation: ck.req_text(cx, "CodeNotation")?,
    };
    cx.soft(
        &code.number,
        soft::CODE_NUMBER,
        &ck.child_path("CodeNumber"),
    );
    cx.soft(
        &code.notation,
        soft::CODE_NOTATION,
        &ck.child_path("CodeNotation"),
    );
    ck.finish(cx);

    let pi_path = k.child_path("PromulgationInfo");
    let mut pk = Kids::of(k.req("PromulgationInfo")?, pi_path);
    let promulgation_info = PromulgationInfo {
        place: pk.text_or_empty(cx, "Place")?,
        date: pk.req_date(cx, "PromulgationDate")?,
    };
    pk.finish(cx);

    let dt_path = k.child_path("DocumentType");
    let mut dk = Kids::of(k.req("DocumentType")?, dt_path);
    let document_type = DocumentType {
        type_: dk.req_parse(cx, "Type", parse_int, "an integer")?,
        type_detail: dk.opt_parse(cx, "TypeDetail", parse_int, "an integer")?,
        type_name: dk.req_text(cx, "TypeName")?,
    };
    cx.soft(
        &document_type.type_name,
        soft::TYPE_NAME,
        &dk.child_path("TypeName"),
    );
    dk.finish(cx);

    let subject = k.req_text(cx, "Subject")?;
    cx.soft(&subject, soft::SUBJECT, &k.child_path("Subject"));
    let content = k.opt_text(cx, "Content")?;

    let si_path = k.child_path("SignerInfo");
    let mut sk = Kids::of(k.req("SignerInfo")?, si_path);
    let signer_info = SignerInfo {
        competence: sk.text_or_empty(cx, "Competence")?,
        position: sk.text_or_empty(cx, "Position")?,
        full_name: sk.text_or_empty(cx, "FullName")?,
    };
    cx.soft(
        &signer_info.position,
        soft::POSITION,
        &sk.child_path("Position"),
    );
    cx.soft(
        &signer_info.full_name,
        soft::FULL_NAME,
        &sk.child_path("FullName"),
    );
    sk.finish(cx);

    let due_date = k.opt_date(cx, "DueDate")?;

    let mut to_places = Vec::new();
    let tp_path = k.child_path("ToPlaces");
    if let Some(n) = k.opt("ToPlaces")? {
        let mut tk = Kids::of(n, tp_path.clone());
        for (p, path) in tk.all("Place") {
            let t = text_of(cx, p, &path);
            if !t.is_empty() {
                to_places.push(t.into_owned());
            }
        }
        tk.finish(cx);
        let total: String = to_places.concat();
        cx.soft(&total, soft::TO_PLACES, &tp_path);
    }

    let oi_path = k.child_path("OtherInfo");
    let other_info = match k.opt("OtherInfo")? {
        Some(n) => Some(read_other_info(cx, n, &oi_path)?),
        None => None,
    };

    let mut response_for = Vec::new();
    for (n, p) in k.all("ResponseFor") {
        response_for.push(read_response_for(cx, n, &p)?);
    }
    let steering_type = k.opt_parse(
        cx,
        "SteeringType",
        |s| parse_int(s).and_then(SteeringType::from_number),
        "a steering type (0, 1, 2)",
    )?;

    Ok(MessageHeader {
        from,
        to,
        document_id,
        code,
        promulgation_info,
        document_type,
        subject,
        content,
        signer_info,
        due_date,
        to_places,
        other_info,
        response_for,
        steering_type,
    })
}

fn read_other_info(cx: &mut Cx, node: Node, path: &str) -> Result<OtherInfo, FormatError> {
    let mut k = Kids::of(node, path.to_owned());
    let priority = match k.opt_parse(
        cx,
        "Priority",
        |s| parse_int(s).and_then(Priority::from_number),
        "a priority (0–4)",
    )? {
        Some(p) => p,
        None => {
            cx.warn(
                WarningKind::ValueDefaulted,
                k.child_path("Priority"),
                "missing; read as 0 (normal)",
            );
            Priority::Normal
        }
    };
    let mut o = OtherInfo {
        priority,
        sphere_of_promulgation: k.opt_text(cx, "SphereOfPromulgation")?,
        typer_notation: k.opt_text(cx, "TyperNotation")?,
        promulgation_amount: k.opt_parse(cx, "PromulgationAmount", parse_int, "a count")?,
        page_amount: k.opt_parse(cx, "PageAmount", parse_int, "a count")?,
        direction: k.opt_parse(cx, "Direction", parse_bool, "a boolean")?,
        appendixes: Vec::new(),
    };
    let ap_path = k.child_path("Appendixes");
    if let Some(n) = k.opt("Appendixes")? {
        let mut ak = Kids::of(n, ap_path);
        for (a, p) in ak.all("Appendix") {
            let t = text_of(cx, a, &p);
            if !t.is_empty() {
                o.appendixes.push(t.into_owned());
            }
        }
        ak.finish(cx);
    }
    k.finish(cx);
    Ok(o)
}

// ---------------------------------------------------------------------------------------------
// Trace list and business block
// ---------------------------------------------------------------------------------------------

fn read_trace_list(
    cx: &mut Cx,
    node: Node,
    path: &str,
) -> Result<(Vec<TraceHeader>, Option<Business>), FormatError> {
    let mut k = Kids::of(node, path.to_owned());
    let mut headers = Vec::new();
    for (n, p) in k.all("TraceHeader") {
        let mut tk = Kids::of(n, p);
        let id_path = tk.child_path("OrganId");
        // Hubs add entries with no OrganId or the literal "null".
        let organ_id = match tk.opt_text(cx, "OrganId")? {
            Some(t) if !t.eq_ignore_ascii_case("null") => Some(cx.organ_id(&t, &id_path)?),
            _ => None,
        };
        headers.push(TraceHeader {
            organ_id,
            timestamp: tk.req_timestamp(cx, "Timestamp")?,
        });
        tk.finish(cx);
    }
    let b_path = k.child_path("Bussiness");
    let business = match k.opt("Bussiness")? {
        Some(n) => Some(read_business(cx, n, &b_path)?),
        None => None,
    };
    k.finish(cx);
    Ok((headers, business))
}

fn read_business(cx: &mut Cx, node: Node, path: &str) -> Result<Business, FormatError> {
    let mut k = Kids::of(node, path.to_owned());
    let document_id = k.opt_text(cx, "DocumentId")?;
    let doc_type = k.req_parse(
        cx,
        "BussinessDocType",
        |s| parse_int(s).and_then(BusinessDocType::from_number),
        "a business type (0–3)",
    )?;
    let reason = k.opt_text(cx, "BussinessDocReason")?;
    let paper = match k.opt_parse(cx, "Paper", parse_bool, "0 or 1")? {
        Some(p) => p,
        None => {
            cx.warn(
                WarningKind::ValueDefaulted,
                k.child_path("Paper"),
                "missing; read as 0",
            );
            false
        }
    };
    let si_path = k.child_path("StaffInfo");
    let staff_info = match k.opt("StaffInfo")? {
        Some(n) => Some(read_staff_info(cx, n, &si_path)?),
        None => None,
    };

    let di_path = k.child_path("BussinessDocumentInfo");
    let document_info = match k.opt("BussinessDocumentInfo")? {
        Some(n) => {
            let mut dk = Kids::of(n, di_path.clone());
            let mut info = BusinessDocumentInfo {
                document_info: dk
                    .opt_parse(cx, "DocumentInfo", parse_bool, "0 or 1")?
                    .unwrap_or(false),
                document_receiver: dk
                    .opt_parse(cx, "DocumentReceiver", parse_bool, "0 or 1")?
                    .unwrap_or(false),
                receivers: Vec::new(),
            };
            let rl_path = dk.child_path("ReceiverList");
            if let Some(rl) = dk.opt("ReceiverList")? {
                let mut rk = Kids::of(rl, rl_path);
                for (r, p) in rk.all("Receiver") {
                    let mut k2 = Kids::of(r, p);
                    info.receivers.push(Receiver {
                        organ_id: k2.req_organ_id(cx, "OrganId")?,
                        receiver_type: k2.req_parse(cx, "ReceiverType", parse_int, "an integer")?,
                    });
                    k2.finish(cx);
                }
                rk.finish(cx);
            }
            dk.finish(cx);
            Some(info)
        }
        None => None,
    };

    let rl_path = k.child_path("ReplacementInfoList");
    let mut replacements = Vec::new();
    if let Some(n) = k.opt("ReplacementInfoList")? {
        let mut rk = Kids::of(n, rl_path.clone());
        for (r, p) in rk.all("ReplacementInfo") {
            let mut ik = Kids::of(r, p);
            let document_id = ik.req_text(cx, "DocumentId")?;
            let ol_path = ik.child_path("OrganIdList");
            let mut ok = Kids::of(ik.req("OrganIdList")?, ol_path.clone());
            let mut organ_ids = Vec::new();
            for (o, op) in ok.all("OrganId") {
                let t = text_of(cx, o, &op);
                if t.is_empty() {
                    return Err(FormatError::missing(op));
                }
                organ_ids.push(cx.organ_id(&t, &op)?);
            }
            if organ_ids.is_empty() {
                return Err(FormatError::missing(format!("{ol_path}/OrganId")));
            }
            ok.finish(cx);
            ik.finish(cx);
            replacements.push(ReplacementInfo {
                document_id,
                organ_ids,
            });
        }
        rk.finish(cx);
    }
    k.finish(cx);

    if document_info.is_some() != (doc_type == BusinessDocType::Update) {
        let msg = if doc_type == BusinessDocType::Update {
            "an update without BussinessDocumentInfo"
        } else {
            "BussinessDocumentInfo on a business type other than 2 (update); kept"
        };
        cx.warn(WarningKind::Inconsistent, di_path, msg);
    }
    let has_replacements = !replacements.is_empty();
    if has_replacements != (doc_type == BusinessDocType::Replacement) {
        let msg = if doc_type == BusinessDocType::Replacement {
            "a replacement without ReplacementInfoList"
        } else {
            "ReplacementInfoList on a business type other than 3 (replacement); kept"
        };
        cx.warn(WarningKind::Inconsistent, rl_path, msg);
    }

    Ok(Business {
        document_id,
        doc_type,
        reason,
        paper,
        staff_info,
        document_info,
        replacements,
    })
}

// ---------------------------------------------------------------------------------------------
// Status package
// ---------------------------------------------------------------------------------------------

fn read_status(cx: &mut Cx, k: &mut Kids) -> Result<StatusPackage, FormatError> {
    let from_path = k.child_path("From");
    let from = read_organization(cx, k.req("From")?, &from_path)?;
    let rf_path = k.child_path("ResponseFor");
    let response_for = read_response_for(cx, k.req("ResponseFor")?, &rf_path)?;
    let si_path = k.child_path("StaffInfo");
    let staff_info = match k.opt("StaffInfo")? {
        Some(n) => Some(read_staff_info(cx, n, &si_path)?),
        None => None,
    };
    let sc_path = k.child_path("StatusCode");
    let sc_text = k.req_text(cx, "StatusCode")?;
    let status_code = StatusCode::parse(&sc_text).map_err(|e| at(e, &sc_path))?;
    if !status_code.is_assigned() {
        if cx.opts.strict {
            return Err(FormatError::new(
                Code::StatusCodeUnknown,
                sc_path,
                format!("{sc_text:?} is an unassigned status code (07–12, 14)"),
            ));
        }
        cx.warn(
            WarningKind::UnassignedStatusCode,
            sc_path,
            format!("{sc_text:?} is an unassigned status code (07–12, 14); kept"),
        );
    }
    let description = k.text_or_empty(cx, "Description")?;
    cx.soft(
        &description,
        soft::DESCRIPTION,
        &k.child_path("Description"),
    );
    let timestamp = k.req_timestamp(cx, "Timestamp")?;
    Ok(StatusPackage {
        from,
        response_for,
        staff_info,
        status_code,
        description,
        timestamp,
        trace_headers: Vec::new(),
        warnings: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------------
// Attachments
// ---------------------------------------------------------------------------------------------

/// A `Reference` or an `Attachment`, before the two are joined.
struct Entry<'a> {
    path: String,
    content_id: String,
    content_type: Option<String>,
    description: Option<String>,
    name: Option<String>,
    /// `ContentTransferEncoded` (attachments only).
    encoded: Option<(Cow<'a, str>, String)>,
}

fn read_attachments(
    cx: &mut Cx,
    body: Option<Node>,
    encoded: Option<Node>,
) -> Result<Vec<Attachment>, FormatError> {
    let opts = cx.opts;
    let limits = &opts.limits;
    let mut refs = Vec::new();
    if let Some(b) = body {
        let mut bk = Kids::of(b, "edXMLEnvelope/edXMLBody".into());
        let m_path = bk.child_path("edXMLManifest");
        if let Some(m) = bk.opt("edXMLManifest")? {
            let mut mk = Kids::of(m, m_path);
            let found = mk.all("Reference");
            if found.len() > limits.max_attachments {
                return Err(too_many(mk.child_path("Reference"), found.len(), limits));
            }
            for (n, p) in found {
                let mut k = Kids::of(n, p.clone());
                refs.push(Entry {
                    content_id: k.req_text(cx, "ContentId")?,
                    content_type: k.opt_text(cx, "ContentType")?,
                    description: k.opt_text(cx, "Description")?,
                    name: k.opt_text(cx, "AttachmentName")?,
                    encoded: None,
                    path: p,
                });
                k.finish(cx);
            }
            mk.finish(cx);
        }
        bk.finish(cx);
    }

    let mut atts = Vec::new();
    if let Some(e) = encoded {
        let mut ek = Kids::of(e, "AttachmentEncoded".into());
        let found = ek.all("Attachment");
        if found.len() > limits.max_attachments {
            return Err(too_many(ek.child_path("Attachment"), found.len(), limits));
        }
        for (n, p) in found {
            let mut k = Kids::of(n, p.clone());
            let content_id = k.req_text(cx, "ContentId")?;
            let enc_path = k.child_path("ContentTransferEncoded");
            let enc_node = k.req("ContentTransferEncoded")?;
            let text = text_of(cx, enc_node, &enc_path);
            atts.push(Entry {
                content_id,
                name: k.opt_text(cx, "AttachmentName")?,
                description: k.opt_text(cx, "Description")?,
                content_type: k.opt_text(cx, "ContentType")?,
                encoded: Some((text, enc_path)),
                path: p,
            });
            k.finish(cx);
        }
        ek.finish(cx);
    }

    // Join by ContentId, both ways, before decoding anything.
    let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(atts.len());
    for (i, a) in atts.iter().enumerate() {
        if by_id.insert(a.content_id.as_str(), i).is_some() {
            return Err(mismatch(
                &a.path,
                &a.content_id,
                "appears on two attachments",
            ));
        }
    }
    let mut seen: HashMap<&str, ()> = HashMap::with_capacity(refs.len());
    for r in &refs {
        if seen.insert(r.content_id.as_str(), ()).is_some() {
            return Err(mismatch(
                &r.path,
                &r.content_id,
                "appears on two manifest references",
            ));
        }
        if !by_id.contains_key(r.content_id.as_str()) {
            return Err(mismatch(&r.path, &r.content_id, "has no Attachment"));
        }
    }
    for a in &atts {
        if !seen.contains_key(a.content_id.as_str()) {
            return Err(mismatch(
                &a.path,
                &a.content_id,
                "has no manifest Reference",
            ));
        }
    }

    let mut budget = Budget::default();
    let mut out = Vec::with_capacity(refs.len());
    for r in &refs {
        let Some(&i) = by_id.get(r.content_id.as_str()) else {
            continue; // checked above
        };
        let a = &atts[i];
        let Some((text, enc_path)) = &a.encoded else {
            continue; // attachments always carry it
        };
        let name = match (&r.name, &a.name) {
            (Some(m), Some(x)) => {
                if m != x {
                    cx.warn(
                        WarningKind::Inconsistent,
                        format!("{}/AttachmentName", a.path),
                        format!("{x:?} differs from the manifest's {m:?}; the manifest's is used"),
                    );
                }
                m.clone()
            }
            (Some(m), None) => m.clone(),
            (None, Some(x)) => x.clone(),
            (None, None) => return Err(FormatError::missing(format!("{}/AttachmentName", r.path))),
        };
        // What the file is, decided by its content (attachment.rs); the labels' disagreements
        // come back as warnings.
        let labels = attachment::Labels {
            name: &name,
            manifest_type: r.content_type.as_deref(),
            label: a.content_type.as_deref(),
            manifest_path: &format!("{}/ContentType", r.path),
            label_path: &format!("{}/ContentType", a.path),
        };
        let decoded = attachment::decode(text, &labels, limits, &mut budget, enc_path)?;
        for w in decoded.warnings {
            cx.warn(w.kind, w.path, w.message);
        }
        let content_type = decoded.content_type;
        let description = r
            .description
            .clone()
            .or_else(|| a.description.clone())
            .unwrap_or_default();
        cx.soft(
            &description,
            soft::DESCRIPTION,
            &format!("{}/Description", r.path),
        );
        out.push(Attachment {
            content_id: r.content_id.clone(),
            name,
            description,
            content_type,
            data: decoded.data,
        });
    }
    Ok(out)
}

fn too_many(path: String, n: usize, limits: &Limits) -> FormatError {
    FormatError::new(
        Code::AttachmentLimit,
        path,
        format!(
            "{n} attachments, over the limit of {}",
            limits.max_attachments
        ),
    )
}

fn mismatch(path: &str, content_id: &str, problem: &str) -> FormatError {
    FormatError::new(
        Code::ManifestMismatch,
        path,
        format!("ContentId {content_id:?} {problem}"),
    )
}
