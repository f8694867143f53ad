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
//! Real traffic (VNPT's library, the national platform, Bkav's SDK; README "EDXML conformance
//! notes") is read with one warning per quirk, never silently: children out of the standard's
//! order, prefixes and re-declared namespaces, `Business` spelt with one s, day-first dates,
//! empty optional elements, organisations without a name, hops without an agency, Bkav's
//! `Status` directly under `edXMLHeader`, a signature outside the XML-DSig namespace, stray bytes
//! before `<?xml`. What cannot be handled safely without guessing (a status without a
//! resolvable `ResponseFor` or `From`, a document without recipients) stays an error.
//!
//! [`read_tree`] works on a tree parsed once by [`xml::parse`], so the signature verifier and the
//! model see the same bytes.

use std::borrow::Cow;
use std::collections::HashMap;

use roxmltree::Node;
use time::{Date, PrimitiveDateTime};

use super::NS;
use super::attachment::{self, Budget};
use super::dates::{Leniency, form_of, format_date, format_timestamp, parse_date, parse_timestamp};
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
    if xml.junk > 0 {
        cx.warn(
            WarningKind::JunkBeforeDeclaration,
            "(prolog)",
            format!(
                "{} stray byte{} before <?xml; dropped",
                xml.junk,
                if xml.junk == 1 { "" } else { "s" }
            ),
        );
    }
    namespace_style(&mut cx, xml);
    let mut top = Kids::of(root, String::new());
    top.order(&mut cx, &["edXMLEnvelope", "AttachmentEncoded"]);
    let envelope = top.req("edXMLEnvelope")?;
    let encoded = top.opt("AttachmentEncoded")?;
    top.finish(&mut cx);

    let mut env = Kids::of(envelope, "edXMLEnvelope".into());
    env.order(&mut cx, &["edXMLHeader", "edXMLBody"]);
    let header = env.req("edXMLHeader")?;
    let body = env.opt("edXMLBody")?;
    env.finish(&mut cx);

    let header_path = "edXMLEnvelope/edXMLHeader";
    let mut hk = Kids::of(header, header_path.into());
    hk.order(&mut cx, &["MessageHeader", "TraceHeaderList"]);
    // The signature is the verifier's business (its place is checked there); which namespace it
    // is in is noted here.
    hk.skip(super::is_signature);
    if let Some(sig) = header.children().find(super::is_signature) {
        let message = match sig.tag_name().namespace() {
            Some(super::DSIG_NS) => None,
            Some(NS) => {
                Some("Signature in the edXML namespace (as the SDK writes it), not XML-DSig's")
            }
            _ => Some("Signature in no namespace (as Bkav writes it), not XML-DSig's"),
        };
        if let Some(m) = message {
            cx.warn(
                WarningKind::SignatureNamespace,
                format!("{header_path}/Signature"),
                m,
            );
        }
    }
    // Bkav's status packages put `Status` where `MessageHeader` belongs.
    let (mh, mh_path, bkav_status) = match hk.opt("MessageHeader")? {
        Some(m) => (m, format!("{header_path}/MessageHeader"), false),
        None => match hk.opt("Status")? {
            Some(st) => {
                let path = format!("{header_path}/Status");
                cx.warn(
                    WarningKind::NonStandardLayout,
                    path.clone(),
                    "Status directly under edXMLHeader without MessageHeader (Bkav's layout); \
                     read as the status package's MessageHeader",
                );
                (st, path, true)
            }
            None => return Err(FormatError::missing(format!("{header_path}/MessageHeader"))),
        },
    };
    let trace = hk.opt("TraceHeaderList")?;
    hk.finish(&mut cx);

    let mut mk = Kids::of(mh, mh_path);
    let trace_path = "edXMLEnvelope/edXMLHeader/TraceHeaderList";

    // A status report that lost its StatusCode would otherwise be read as a document and fail
    // on `To`; name what is really missing.
    let looks_like_status =
        bkav_status || (!mk.has("To") && !mk.has("Code") && mk.has("ResponseFor"));
    if looks_like_status && !mk.has("StatusCode") {
        return Err(FormatError::missing(mk.child_path("StatusCode")));
    }
    if mk.has("StatusCode") {
        mk.order(&mut cx, STATUS_HEADER_ORDER);
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

    mk.order(&mut cx, DOCUMENT_HEADER_ORDER);
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
                format!(
                    "{text:?} ({}) read as {}; the standard writes yyyy/MM/dd",
                    form_of(text),
                    format_date(d)
                ),
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
                format!(
                    "{text:?} ({}) read as {}; the standard writes yyyy/MM/dd HH:mm:ss",
                    form_of(text),
                    format_timestamp(t)
                ),
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

// The standard's order of children (EDXML.md §2, `schemas/edxml-*.xsd`), for `Kids::order`.
const DOCUMENT_HEADER_ORDER: &[&str] = &[
    "From",
    "To",
    "DocumentId",
    "Code",
    "PromulgationInfo",
    "DocumentType",
    "Subject",
    "Content",
    "SignerInfo",
    "DueDate",
    "OtherInfo",
    "ResponseFor",
    "SteeringType",
    "ToPlaces",
];
const STATUS_HEADER_ORDER: &[&str] = &[
    "From",
    "ResponseFor",
    "StaffInfo",
    "StatusCode",
    "Description",
    "Timestamp",
];
const ORGANIZATION_ORDER: &[&str] = &[
    "OrganId",
    "OrganizationInCharge",
    "OrganName",
    "OrganAdd",
    "Email",
    "Telephone",
    "Fax",
    "Website",
];
const RESPONSE_FOR_ORDER: &[&str] = &["OrganId", "Code", "PromulgationDate", "DocumentId"];
const STAFF_INFO_ORDER: &[&str] = &["Department", "Staff", "Email", "Mobile"];
const OTHER_INFO_ORDER: &[&str] = &[
    "Priority",
    "SphereOfPromulgation",
    "TyperNotation",
    "PromulgationAmount",
    "PageAmount",
    "Direction",
    "Appendixes",
];
const BUSINESS_ORDER: &[&str] = &[
    "DocumentId",
    "BussinessDocType",
    "BussinessDocReason",
    "Paper",
    "StaffInfo",
    "BussinessDocumentInfo",
    "ReplacementInfoList",
];
const REFERENCE_ORDER: &[&str] = &["ContentId", "ContentType", "Description", "AttachmentName"];
const ATTACHMENT_ORDER: &[&str] = &[
    "ContentId",
    "AttachmentName",
    "Description",
    "ContentType",
    "ContentTransferEncoded",
];

/// Names spelt otherwise in real traffic (Bkav), with the standard's spelling.
const VARIANTS: &[(&str, &str)] = &[
    ("Business", "Bussiness"),
    ("BusinessDocType", "BussinessDocType"),
    ("BusinessDocReason", "BussinessDocReason"),
    ("BusinessDocumentInfo", "BussinessDocumentInfo"),
];

fn standard_spelling(name: &str) -> &str {
    VARIANTS
        .iter()
        .find(|(v, _)| *v == name)
        .map_or(name, |(_, s)| s)
}

/// Prefixed edXML elements or attributes, and the edXML namespace declared again below the
/// root: harmless to a namespace-aware reader, but not how this node writes, so each is noted
/// once per package (with the first place it was seen and how often).
fn namespace_style(cx: &mut Cx, xml: &Xml) {
    let root = xml.doc.root_element();
    let mut prefixed: Option<(String, String)> = None;
    let mut n_prefixed = 0usize;
    let mut redeclared: Option<String> = None;
    let mut n_redeclared = 0usize;
    for n in root.descendants().filter(|n| n.is_element()) {
        if n.tag_name().namespace() != Some(NS) {
            continue;
        }
        let tag = start_tag(xml.text, n);
        let qname = tag
            .trim_start_matches('<')
            .split(|c: char| c.is_whitespace() || c == '/' || c == '>')
            .next()
            .unwrap_or("");
        if qname.contains(':') {
            n_prefixed += 1;
            prefixed.get_or_insert_with(|| (node_path(n), qname.to_owned()));
        }
        if n != root && declares_edxml(tag) {
            n_redeclared += 1;
            redeclared.get_or_insert_with(|| node_path(n));
        }
        for a in n.attributes() {
            if a.namespace() == Some(NS) {
                cx.warn(
                    WarningKind::NamespacePrefix,
                    format!("{}/@{}", node_path(n), a.name()),
                    format!(
                        "attribute {} in the edXML namespace (prefixed); read as {}",
                        a.name(),
                        a.name()
                    ),
                );
            }
        }
    }
    if let Some((path, qname)) = prefixed {
        cx.warn(
            WarningKind::NamespacePrefix,
            path,
            format!(
                "{n_prefixed} edXML element{} written with a prefix (first {qname}); read by \
                 namespace",
                if n_prefixed == 1 { "" } else { "s" }
            ),
        );
    }
    if let Some(path) = redeclared {
        cx.warn(
            WarningKind::NamespaceRedeclared,
            path,
            format!(
                "the edXML namespace declared again below the root ({n_redeclared} time{})",
                if n_redeclared == 1 { "" } else { "s" }
            ),
        );
    }
}

/// The start tag of `n` as written (up to its `>`, quotes respected).
fn start_tag<'t>(text: &'t str, n: Node) -> &'t str {
    let from = &text[n.range().start..];
    let mut quote = None;
    for (i, c) in from.bytes().enumerate() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == b'>' => return &from[..=i],
            None => {}
        }
    }
    from
}

/// Whether a start tag declares the edXML namespace (`xmlns="…"` or `xmlns:p="…"`).
fn declares_edxml(tag: &str) -> bool {
    tag.match_indices("xmlns").any(|(i, _)| {
        let rest = &tag[i + "xmlns".len()..];
        let rest = match rest.strip_prefix(':') {
            Some(r) => r.trim_start_matches(|c: char| !c.is_whitespace() && c != '='),
            None => rest,
        };
        let Some(rest) = rest.trim_start().strip_prefix('=') else {
            return false;
        };
        let rest = rest.trim_start();
        rest.strip_prefix(['"', '\''])
            .is_some_and(|v| v.starts_with(NS) && v[NS.len()..].starts_with(['"', '\'']))
    })
}

/// Slash path of an element below the root, for warnings.
fn node_path(n: Node) -> String {
    let mut names: Vec<&str> = n
        .ancestors()
        .filter(Node::is_element)
        .map(|a| a.tag_name().name())
        .collect();
    names.pop();
    names.reverse();
    if names.is_empty() {
        "(root)".to_owned()
    } else {
        names.join("/")
    }
}

fn is(n: Node, name: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(NS) && n.tag_name().name() == name
}

/// The element children of one element, consumed by name; whatever is not consumed is reported
/// as unknown when the reader is done with the element.
struct Kids<'a, 'i> {
    path: String,
    items: Vec<(Node<'a, 'i>, bool)>,
    /// Optional children that were present but empty, reported together by `finish`.
    empty: Vec<String>,
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
            empty: Vec::new(),
        }
    }

    /// Warns (once for this element) when its edXML children are not in `order`, the standard's
    /// sequence; children it does not name are left to `finish`. Names spelt otherwise
    /// ([`VARIANTS`]) rank as the standard's.
    fn order(&self, cx: &mut Cx, order: &[&str]) {
        let rank = |n: &Node| {
            if n.tag_name().namespace() != Some(NS) {
                return None;
            }
            let name = standard_spelling(n.tag_name().name());
            order.iter().position(|o| *o == name)
        };
        let mut last: Option<usize> = None;
        for (n, _) in &self.items {
            let Some(r) = rank(n) else { continue };
            if let Some(lr) = last
                && r < lr
            {
                let (lname, name) = (order[lr], order[r]);
                let at = if self.path.is_empty() {
                    "(root)".to_owned()
                } else {
                    self.path.clone()
                };
                cx.warn(
                    WarningKind::ElementOrder,
                    at,
                    format!(
                        "{lname} before {name}; the standard's order is {}; read by name",
                        order.join(", ")
                    ),
                );
                return;
            }
            last = Some(r);
        }
    }

    /// A child allowed at most once, also found under a variant spelling (flagged).
    fn opt_spelled(
        &mut self,
        cx: &mut Cx,
        name: &str,
        variant: &str,
    ) -> Result<Option<(Node<'a, 'i>, String)>, FormatError> {
        let standard = self.opt(name)?;
        let other = self.opt(variant)?;
        match (standard, other) {
            (Some(n), None) => Ok(Some((n, self.child_path(name)))),
            (None, Some(n)) => {
                let path = self.child_path(variant);
                cx.warn(
                    WarningKind::VariantSpelling,
                    path.clone(),
                    format!("{variant} read as the standard's {name}"),
                );
                Ok(Some((n, path)))
            }
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(FormatError::new(
                Code::ElementDuplicate,
                self.child_path(name),
                format!("appears both as {name} and as {variant}; allowed once"),
            )),
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

    /// Optional text; absent and empty are both `None` (an empty element is flagged: this node
    /// omits what it has no value for).
    fn opt_text(&mut self, cx: &mut Cx, name: &str) -> Result<Option<String>, FormatError> {
        let t = self.opt_text_may_be_empty(cx, name)?;
        if t.is_none() && self.has(name) {
            self.empty.push(name.to_owned());
        }
        Ok(t)
    }

    /// Optional text this node itself writes empty (an attachment's `Description`): absent and
    /// empty are both `None`, neither flagged.
    fn opt_text_may_be_empty(
        &mut self,
        cx: &mut Cx,
        name: &str,
    ) -> Result<Option<String>, FormatError> {
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

    /// Reports what was not consumed, and the optional children that were empty.
    fn finish(self, cx: &mut Cx) {
        if !self.empty.is_empty() {
            let mut names = self.empty.clone();
            names.dedup();
            cx.warn(
                WarningKind::EmptyElement,
                self.path.clone(),
                format!("empty {}; read as absent", names.join(", ")),
            );
        }
        for (n, used) in &self.items {
            if *used {
                continue;
            }
            let tag = n.tag_name();
            let message = match tag.namespace() {
                Some(NS) => "unknown element; ignored".to_owned(),
                None | Some("") => "element in no namespace; ignored".to_owned(),
                Some(ns) => format!("element in namespace {ns}; ignored"),
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
    k.order(cx, ORGANIZATION_ORDER);
    let organ_id = k.req_organ_id(cx, "OrganId")?;
    // Routing and binding go by OrganId; a name is what a clerk reads, so its absence is noted.
    let organ_name = match k.opt_text_may_be_empty(cx, "OrganName")? {
        Some(n) => n,
        None => {
            let what = if k.has("OrganName") {
                "empty"
            } else {
                "missing"
            };
            cx.warn(
                WarningKind::ValueDefaulted,
                k.child_path("OrganName"),
                format!("{what}; the agency is known by its OrganId only"),
            );
            String::new()
        }
    };
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
    k.order(cx, RESPONSE_FOR_ORDER);
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
    k.order(cx, STAFF_INFO_ORDER);
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
    ck.order(cx, &["CodeNumber", "CodeNotation"]);
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
    pk.order(cx, &["Place", "PromulgationDate"]);
    let promulgation_info = PromulgationInfo {
        place: pk.text_or_empty(cx, "Place")?,
        date: pk.req_date(cx, "PromulgationDate")?,
    };
    pk.finish(cx);

    let dt_path = k.child_path("DocumentType");
    let mut dk = Kids::of(k.req("DocumentType")?, dt_path);
    dk.order(cx, &["Type", "TypeDetail", "TypeName"]);
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
    let mut sk = Kids::of(k.req("SignerInfo")?, si_path.clone());
    sk.order(cx, &["Competence", "Position", "FullName"]);
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
    // No signer named, whether `FullName` is empty (Bkav, or our writer for a clerk who named
    // none) or absent: the same fact, the same warning.
    if signer_info.full_name.is_empty() {
        let mut empty: Vec<&str> = Vec::new();
        for (name, v) in [
            ("Competence", &signer_info.competence),
            ("Position", &signer_info.position),
            ("FullName", &signer_info.full_name),
        ] {
            if v.is_empty() {
                empty.push(name);
            }
        }
        cx.warn(
            WarningKind::EmptyElement,
            si_path,
            format!("names no signer (empty {})", empty.join(", ")),
        );
    }

    let due_date = k.opt_date(cx, "DueDate")?;

    let mut to_places = Vec::new();
    let tp_path = k.child_path("ToPlaces");
    if let Some(n) = k.opt("ToPlaces")? {
        let mut tk = Kids::of(n, tp_path.clone());
        for (p, path) in tk.all("Place") {
            let t = text_of(cx, p, &path);
            if t.is_empty() {
                tk.empty.push("Place".to_owned());
            } else {
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
        // `<ResponseFor/>` on a new document (VNPT's library writes it): it answers nothing.
        if !n.children().any(|c| c.is_element()) && text_of(cx, n, &p).is_empty() {
            cx.warn(
                WarningKind::EmptyElement,
                p,
                "empty ResponseFor; read as answering no document",
            );
            continue;
        }
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
    k.order(cx, OTHER_INFO_ORDER);
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
            if t.is_empty() {
                ak.empty.push("Appendix".to_owned());
            } else {
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
    k.order(cx, &["TraceHeader", "Bussiness"]);
    let mut headers = Vec::new();
    for (n, p) in k.all("TraceHeader") {
        let mut tk = Kids::of(n, p);
        tk.order(cx, &["OrganId", "Timestamp"]);
        let id_path = tk.child_path("OrganId");
        // Hubs add entries with no OrganId or the literal "null": a hop without an agency.
        let organ_id = match tk.opt_text_may_be_empty(cx, "OrganId")? {
            Some(t) if !t.eq_ignore_ascii_case("null") => Some(cx.organ_id(&t, &id_path)?),
            Some(t) => {
                cx.warn(
                    WarningKind::ValueDefaulted,
                    id_path,
                    format!("{t:?}; the hop is kept without an agency"),
                );
                None
            }
            None => {
                let what = if tk.has("OrganId") {
                    "empty"
                } else {
                    "missing"
                };
                cx.warn(
                    WarningKind::ValueDefaulted,
                    id_path,
                    format!("{what}; the hop is kept without an agency"),
                );
                None
            }
        };
        headers.push(TraceHeader {
            organ_id,
            timestamp: tk.req_timestamp(cx, "Timestamp")?,
        });
        tk.finish(cx);
    }
    let business = match k.opt_spelled(cx, "Bussiness", "Business")? {
        Some((n, b_path)) => Some(read_business(cx, n, &b_path)?),
        None => None,
    };
    k.finish(cx);
    Ok((headers, business))
}

fn read_business(cx: &mut Cx, node: Node, path: &str) -> Result<Business, FormatError> {
    let mut k = Kids::of(node, path.to_owned());
    k.order(cx, BUSINESS_ORDER);
    let document_id = k.opt_text(cx, "DocumentId")?;
    let doc_type = match k.opt_spelled(cx, "BussinessDocType", "BusinessDocType")? {
        Some((n, p)) => {
            let t = text_of(cx, n, &p);
            if t.is_empty() {
                return Err(FormatError::missing(p));
            }
            parse_int(&t)
                .and_then(BusinessDocType::from_number)
                .ok_or_else(|| {
                    FormatError::invalid(p, format!("{t:?} is not a business type (0–3)"))
                })?
        }
        None => return Err(FormatError::missing(k.child_path("BussinessDocType"))),
    };
    let reason = match k.opt_spelled(cx, "BussinessDocReason", "BusinessDocReason")? {
        Some((n, p)) => {
            let t = text_of(cx, n, &p);
            if t.is_empty() {
                k.empty
                    .push(p.rsplit('/').next().unwrap_or_default().to_owned());
                None
            } else {
                Some(t.into_owned())
            }
        }
        None => None,
    };
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

    let mut di_path = k.child_path("BussinessDocumentInfo");
    let document_info = match k.opt_spelled(cx, "BussinessDocumentInfo", "BusinessDocumentInfo")? {
        Some((n, p)) => {
            di_path = p;
            let mut dk = Kids::of(n, di_path.clone());
            dk.order(cx, &["DocumentInfo", "DocumentReceiver", "ReceiverList"]);
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
                    k2.order(cx, &["OrganId", "ReceiverType"]);
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
            ik.order(cx, &["DocumentId", "OrganIdList"]);
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
    // The standard writes two digits; `1` for `01` is read, and said.
    if sc_text.len() == 1 {
        cx.warn(
            WarningKind::NonCanonicalValue,
            sc_path.clone(),
            format!("{sc_text:?} written with one digit; read as {status_code}"),
        );
    }
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
    if description.is_empty() {
        cx.warn(
            WarningKind::EmptyElement,
            k.child_path("Description"),
            "the status says nothing beyond its code (Description empty or absent)".to_owned(),
        );
    }
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
                k.order(cx, REFERENCE_ORDER);
                refs.push(Entry {
                    content_id: k.req_text(cx, "ContentId")?,
                    content_type: k.opt_text(cx, "ContentType")?,
                    description: k.opt_text_may_be_empty(cx, "Description")?,
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
            k.order(cx, ATTACHMENT_ORDER);
            let content_id = k.req_text(cx, "ContentId")?;
            let enc_path = k.child_path("ContentTransferEncoded");
            let enc_node = k.req("ContentTransferEncoded")?;
            let text = text_of(cx, enc_node, &enc_path);
            atts.push(Entry {
                content_id,
                name: k.opt_text(cx, "AttachmentName")?,
                description: k.opt_text_may_be_empty(cx, "Description")?,
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
