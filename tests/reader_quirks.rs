//! One small fixture per quirk of real traffic (`../shared/real-traffic/README.md`), written here
//! as edits of this node's canonical fixtures (not copies of third-party files): each is read,
//! gives the same model as the canonical form where the quirk changes nothing, and leaves the
//! warning that names it. Then what must stay refused, and a property test: reordering optional
//! elements and switching prefixes and namespace declarations never changes what is read.

use std::path::Path;

use lienthong::edxml::{self, Package, ReadOptions, WarningKind as K};
use lienthong::error::Code;
use proptest::prelude::*;

const NS: &str = "http://www.mic.gov.vn/TBT/QCVN_102_2016";
const MH: &str = "edXMLEnvelope/edXMLHeader/MessageHeader";

fn fixture(stem: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/edxml/{stem}.edxml"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read(text: &str) -> Package {
    edxml::read(text.as_bytes(), &ReadOptions::default())
        .unwrap_or_else(|e| panic!("{e} ({:?})", e.code))
}

fn refused(text: &str) -> (Code, String) {
    match edxml::read(text.as_bytes(), &ReadOptions::default()) {
        Ok(p) => panic!("read although it should not be: {}", p.summary()),
        Err(e) => (e.code, e.to_string()),
    }
}

/// Replaces `from` (which must occur) by `to`.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in the fixture");
    text.replacen(from, to, 1)
}

/// The package with its warnings cleared, to compare what was read.
fn model(p: &Package) -> Package {
    let mut p = p.clone();
    match &mut p {
        Package::Document(d) => d.warnings.clear(),
        Package::Status(s) => s.warnings.clear(),
    }
    p
}

/// Asserts that `text` reads as the fixture `stem` with exactly warnings of `kinds` (in order),
/// and returns the package.
fn reads_as(text: &str, stem: &str, kinds: &[K]) -> Package {
    let p = read(text);
    let got: Vec<K> = p.warnings().iter().map(|w| w.kind).collect();
    assert_eq!(got, kinds, "{:#?}", p.warnings());
    assert_eq!(model(&p), read(&fixture(stem)), "does not read as {stem}");
    for w in p.warnings() {
        assert!(!w.message.is_empty() && !w.path.is_empty(), "{w:?}");
    }
    p
}

fn warning_at(p: &Package, kind: K, path: &str) -> String {
    p.warnings()
        .iter()
        .find(|w| w.kind == kind && w.path == path)
        .unwrap_or_else(|| panic!("no {kind:?} at {path}: {:#?}", p.warnings()))
        .message
        .clone()
}

/// The root declares the namespace as default only; `edXMLEnvelope` binds the prefix `edXML`
/// again and everything below it is prefixed (VNPT's library).
fn vnpt_namespaces(xml: &str) -> String {
    let xml = edit(xml, &format!(" xmlns:edXML=\"{NS}\""), "");
    let start = xml.find("<edXMLEnvelope>").unwrap();
    let end = xml.find("</edXMLEnvelope>").unwrap() + "</edXMLEnvelope>".len();
    let mut env = String::new();
    let mut rest = &xml[start..end];
    while let Some(i) = rest.find('<') {
        env.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('/') {
            env.push_str("/edXML:");
            rest = r;
        } else {
            env.push_str("edXML:");
        }
    }
    env.push_str(rest);
    let env = env.replacen(
        "<edXML:edXMLEnvelope>",
        &format!("<edXML:edXMLEnvelope xmlns:edXML=\"{NS}\">"),
        1,
    );
    format!("{}{env}{}", &xml[..start], &xml[end..])
}

// ---------------------------------------------------------------------------------------------
// Namespaces and prefixes
// ---------------------------------------------------------------------------------------------

#[test]
fn namespace_redeclared_on_the_envelope_with_a_prefix() {
    for stem in ["document-new", "status-03"] {
        let p = reads_as(
            &vnpt_namespaces(&fixture(stem)),
            stem,
            &[K::NamespacePrefix, K::NamespaceRedeclared],
        );
        assert!(warning_at(&p, K::NamespaceRedeclared, "edXMLEnvelope").contains("again"));
        assert!(warning_at(&p, K::NamespacePrefix, "edXMLEnvelope").contains("edXML:"));
    }
}

#[test]
fn prefixed_attachments_and_a_prefixed_manifest_version() {
    let text = fixture("document-new")
        .replace("<Attachment>", "<edXML:Attachment>")
        .replace("</Attachment>", "</edXML:Attachment>");
    let p = reads_as(&text, "document-new", &[K::NamespacePrefix]);
    assert!(warning_at(&p, K::NamespacePrefix, "AttachmentEncoded/Attachment").contains("2 edXML"));
    // Bkav: `edXML:version` on the manifest.
    let text = edit(
        &fixture("document-new"),
        "<edXMLManifest version=\"1.0\">",
        "<edXMLManifest edXML:version=\"1.0\">",
    );
    let p = reads_as(&text, "document-new", &[K::NamespacePrefix]);
    warning_at(
        &p,
        K::NamespacePrefix,
        "edXMLEnvelope/edXMLBody/edXMLManifest/@version",
    );
}

#[test]
fn the_signature_in_three_namespaces() {
    let sig = |open: &str| {
        format!(
            "{open}<SignedInfo><Reference URI=\"\"/></SignedInfo><SignatureValue>AAAA</SignatureValue></Signature>"
        )
    };
    let with = |xml: &str, s: &str| edit(xml, "</edXMLHeader>", &format!("{s}</edXMLHeader>"));
    let base = fixture("document-new");
    // XML-DSig's own: the standard.
    let dsig = sig("<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\">");
    reads_as(&with(&base, &dsig), "document-new", &[]);
    // In the edXML namespace (VNPT's library).
    let p = reads_as(
        &with(&base, &sig("<Signature>")),
        "document-new",
        &[K::SignatureNamespace],
    );
    assert!(
        warning_at(
            &p,
            K::SignatureNamespace,
            "edXMLEnvelope/edXMLHeader/Signature"
        )
        .contains("edXML namespace")
    );
    // In no namespace at all (Bkav): only possible where no default namespace is in scope.
    let prefixed = vnpt_namespaces(&base).replace("</edXML:edXMLHeader>", "</edXMLHeader>");
    let prefixed = edit(
        &prefixed,
        "</edXMLHeader>",
        &format!("{}</edXML:edXMLHeader>", sig("<Signature xmlns=\"\">")),
    );
    let p = reads_as(
        &prefixed,
        "document-new",
        &[
            K::NamespacePrefix,
            K::NamespaceRedeclared,
            K::SignatureNamespace,
        ],
    );
    assert!(
        warning_at(
            &p,
            K::SignatureNamespace,
            "edXMLEnvelope/edXMLHeader/Signature"
        )
        .contains("no namespace")
    );
}

// ---------------------------------------------------------------------------------------------
// Element order and spelling
// ---------------------------------------------------------------------------------------------

#[test]
fn business_before_trace_header() {
    let text = fixture("document-new");
    let trace_start = text.find("<TraceHeader>").unwrap();
    let trace_end = text.find("</TraceHeader>").unwrap() + "</TraceHeader>".len();
    let b_start = text.find("<Bussiness>").unwrap();
    let b_end = text.find("</Bussiness>").unwrap() + "</Bussiness>".len();
    let moved = format!(
        "{}{}{}{}",
        &text[..trace_start],
        &text[b_start..b_end],
        &text[trace_start..trace_end],
        &text[b_end..]
    );
    let p = reads_as(&moved, "document-new", &[K::ElementOrder]);
    let m = warning_at(
        &p,
        K::ElementOrder,
        "edXMLEnvelope/edXMLHeader/TraceHeaderList",
    );
    assert!(m.starts_with("Bussiness before TraceHeader"), "{m}");
}

#[test]
fn business_spelt_with_one_s() {
    let text = fixture("document-revocation")
        .replace("Bussiness>", "Business>")
        .replace("BussinessDocType>", "BusinessDocType>")
        .replace("BussinessDocReason>", "BusinessDocReason>");
    let p = reads_as(
        &text,
        "document-revocation",
        &[K::VariantSpelling, K::VariantSpelling, K::VariantSpelling],
    );
    let b = "edXMLEnvelope/edXMLHeader/TraceHeaderList/Business";
    assert!(warning_at(&p, K::VariantSpelling, b).contains("Bussiness"));
    warning_at(&p, K::VariantSpelling, &format!("{b}/BusinessDocType"));
    warning_at(&p, K::VariantSpelling, &format!("{b}/BusinessDocReason"));
    // Both spellings at once is one element twice.
    let both = edit(
        &fixture("document-new"),
        "<Paper>0</Paper>",
        "<Paper>0</Paper><BusinessDocType>1</BusinessDocType>",
    );
    assert_eq!(refused(&both).0, Code::ElementDuplicate);
}

#[test]
fn signer_info_and_promulgation_info_in_other_orders() {
    let text = edit(
        &fixture("document-new"),
        "<Competence>KT. GIÁM ĐỐC</Competence>\n          <Position>Phó Giám đốc</Position>\n          <FullName>Nguyễn Văn An</FullName>",
        "<FullName>Nguyễn Văn An</FullName><Position>Phó Giám đốc</Position><Competence>KT. GIÁM ĐỐC</Competence>",
    );
    let text = edit(
        &text,
        "<Place>Gia Lai</Place>\n          <PromulgationDate>2024/03/15</PromulgationDate>",
        "<PromulgationDate>2024/03/15</PromulgationDate><Place>Gia Lai</Place>",
    );
    let p = reads_as(&text, "document-new", &[K::ElementOrder, K::ElementOrder]);
    warning_at(&p, K::ElementOrder, &format!("{MH}/PromulgationInfo"));
    warning_at(&p, K::ElementOrder, &format!("{MH}/SignerInfo"));
}

#[test]
fn the_kits_status_orders() {
    let text = edit(
        &fixture("status-03"),
        "<OrganId>000.00.05.H21</OrganId>\n          <Code>123/STTTT-CĐS</Code>\n          <PromulgationDate>2024/03/15</PromulgationDate>\n          <DocumentId>000.00.05.H21,2024/03/15,123/STTTT-CĐS</DocumentId>",
        "<OrganId>000.00.05.H21</OrganId><Code>123/STTTT-CĐS</Code><DocumentId>000.00.05.H21,2024/03/15,123/STTTT-CĐS</DocumentId><PromulgationDate>2024/03/15</PromulgationDate>",
    );
    let p = reads_as(&text, "status-03", &[K::ElementOrder]);
    let m = warning_at(&p, K::ElementOrder, &format!("{MH}/ResponseFor"));
    assert!(m.starts_with("DocumentId before PromulgationDate"), "{m}");
}

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

#[test]
fn dates_day_first_and_with_a_time() {
    let pd = "<PromulgationDate>2024/03/15</PromulgationDate>";
    let ts = "<Timestamp>2024/03/15 09:30:00</Timestamp>";
    for (date, time, form) in [
        ("15/03/2024", "15/03/2024 09:30:00", "dd/MM/yyyy"),
        (
            "15/03/2024 00:00:00",
            "2024/03/15 09:30:00",
            "dd/MM/yyyy HH:mm:ss",
        ),
        (
            "2024/03/15 00:00:00",
            "2024/03/15 09:30:00",
            "yyyy/MM/dd HH:mm:ss",
        ),
    ] {
        let text = edit(
            &fixture("document-new"),
            pd,
            &format!("<PromulgationDate>{date}</PromulgationDate>"),
        );
        let text = edit(&text, ts, &format!("<Timestamp>{time}</Timestamp>"));
        let kinds: &[K] = if time.starts_with("15/") {
            &[K::NonCanonicalValue, K::NonCanonicalValue]
        } else {
            &[K::NonCanonicalValue]
        };
        let p = reads_as(&text, "document-new", kinds);
        let m = warning_at(
            &p,
            K::NonCanonicalValue,
            &format!("{MH}/PromulgationInfo/PromulgationDate"),
        );
        assert!(
            m.contains(&format!("({form})")) && m.contains("2024/03/15"),
            "{m}"
        );
    }
    // Month first is not a form anyone writes: 03/15/2024 is refused, not guessed.
    let text = edit(
        &fixture("document-new"),
        pd,
        "<PromulgationDate>03/15/2024</PromulgationDate>",
    );
    assert_eq!(refused(&text).0, Code::ValueInvalid);
}

// ---------------------------------------------------------------------------------------------
// Empty and missing optional parts
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_due_date() {
    let doc = fixture("document-new");
    for empty in ["<DueDate/>", "<DueDate></DueDate>", "<DueDate>  </DueDate>"] {
        let text = edit(&doc, "<DueDate>2024/03/29</DueDate>", empty);
        let p = read(&text);
        assert_eq!(
            p.warnings().iter().map(|w| w.kind).collect::<Vec<_>>(),
            [K::EmptyElement]
        );
        assert!(warning_at(&p, K::EmptyElement, MH).contains("DueDate"));
        assert_eq!(p.as_document().unwrap().header.due_date, None);
    }
}

#[test]
fn empty_signer_info_children() {
    let text = edit(
        &fixture("document-new"),
        "<Competence>KT. GIÁM ĐỐC</Competence>\n          <Position>Phó Giám đốc</Position>\n          <FullName>Nguyễn Văn An</FullName>",
        "<Competence></Competence><Position/><FullName></FullName>",
    );
    let p = read(&text);
    assert_eq!(
        p.warnings().iter().map(|w| w.kind).collect::<Vec<_>>(),
        [K::EmptyElement]
    );
    let m = warning_at(&p, K::EmptyElement, &format!("{MH}/SignerInfo"));
    assert!(m.contains("Competence, Position, FullName"), "{m}");
}

#[test]
fn empty_response_for_on_a_new_document() {
    let text = edit(
        &fixture("document-new"),
        "<SteeringType>",
        "<edXML:ResponseFor />\n<SteeringType>",
    );
    let p = reads_as(
        &text,
        "document-new",
        &[K::NamespacePrefix, K::EmptyElement],
    );
    warning_at(&p, K::EmptyElement, &format!("{MH}/ResponseFor[1]"));
    // A status must say which document it is about: an empty ResponseFor there is refused.
    let status = fixture("status-03");
    let start = status.find("<ResponseFor>").unwrap();
    let end = status.find("</ResponseFor>").unwrap() + "</ResponseFor>".len();
    let text = format!("{}<ResponseFor/>{}", &status[..start], &status[end..]);
    let (code, msg) = refused(&text);
    assert_eq!(code, Code::ElementMissing, "{msg}");
    assert!(msg.starts_with(&format!("{MH}/ResponseFor/")), "{msg}");
}

#[test]
fn from_and_to_without_names() {
    let text = edit(
        &fixture("document-new"),
        "<OrganizationInCharge>Ủy ban nhân dân tỉnh Gia Lai</OrganizationInCharge>\n          <OrganName>Sở Thông tin và Truyền thông tỉnh Gia Lai</OrganName>",
        "",
    );
    let text = edit(
        &text,
        "<OrganName>Ủy ban nhân dân tỉnh Nghệ An</OrganName>",
        "",
    );
    let p = read(&text);
    assert_eq!(
        p.warnings().iter().map(|w| w.kind).collect::<Vec<_>>(),
        [K::ValueDefaulted, K::ValueDefaulted]
    );
    warning_at(&p, K::ValueDefaulted, &format!("{MH}/From/OrganName"));
    warning_at(&p, K::ValueDefaulted, &format!("{MH}/To[1]/OrganName"));
    let h = &p.as_document().unwrap().header;
    assert_eq!(h.from.organ_id.as_str(), "000.00.05.H21");
    assert_eq!(h.from.organ_name, "");
    assert_eq!(h.from.organization_in_charge, None);
    // The same for a status reporter.
    let text = edit(
        &fixture("status-03"),
        "<OrganName>Ủy ban nhân dân tỉnh Nghệ An</OrganName>",
        "",
    );
    let p = read(&text);
    warning_at(&p, K::ValueDefaulted, &format!("{MH}/From/OrganName"));
    // Without a code there is nobody to route to or answer: refused.
    let text = edit(
        &fixture("status-03"),
        "<OrganId>000.00.00.H41</OrganId>",
        "",
    );
    assert_eq!(refused(&text).0, Code::ElementMissing);
}

// ---------------------------------------------------------------------------------------------
// Agency codes and hops
// ---------------------------------------------------------------------------------------------

#[test]
fn non_standard_agency_codes_are_kept_as_they_are() {
    for code in [
        "010012345678",
        "vxp.saas.03",
        "G12",
        "01.02.G22",
        "001.00.20.TT2",
        "02.29.W00",
    ] {
        let text = edit(
            &fixture("document-new"),
            "<OrganId>000.00.00.H41</OrganId>",
            &format!("<OrganId>{code}</OrganId>"),
        );
        let p = read(&text);
        assert_eq!(
            p.warnings().iter().map(|w| w.kind).collect::<Vec<_>>(),
            [K::NonStandardOrganId],
            "{code}"
        );
        let m = warning_at(&p, K::NonStandardOrganId, &format!("{MH}/To[1]/OrganId"));
        assert!(m.contains(code), "{m}");
        assert_eq!(
            p.as_document().unwrap().header.to[0].organ_id.as_str(),
            code
        );
    }
}

#[test]
fn trace_entries_without_an_agency() {
    let text = edit(
        &fixture("document-new"),
        "<Bussiness>",
        "<TraceHeader><OrganId>null</OrganId><Timestamp>2024/03/15 09:31:00</Timestamp></TraceHeader>\
         <TraceHeader><Timestamp>2024/03/15 09:32:00</Timestamp></TraceHeader><Bussiness>",
    );
    let p = read(&text);
    let tl = "edXMLEnvelope/edXMLHeader/TraceHeaderList";
    assert!(
        warning_at(
            &p,
            K::ValueDefaulted,
            &format!("{tl}/TraceHeader[2]/OrganId")
        )
        .contains("\"null\"")
    );
    assert!(
        warning_at(
            &p,
            K::ValueDefaulted,
            &format!("{tl}/TraceHeader[3]/OrganId")
        )
        .starts_with("missing")
    );
    assert_eq!(p.warnings().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Bkav's status layout, junk before the declaration
// ---------------------------------------------------------------------------------------------

/// A status as Bkav lays it out: `Status` directly under `edXMLHeader`, no `MessageHeader`, no
/// `TraceHeaderList`, and ResponseFor's PromulgationDate carrying a time.
fn bkav_status(xml: &str) -> String {
    let xml = xml
        .replace("<MessageHeader>", "<Status>")
        .replace("</MessageHeader>", "</Status>");
    edit(
        &xml,
        "<PromulgationDate>2024/03/15</PromulgationDate>",
        "<PromulgationDate>15/03/2024 00:00:00</PromulgationDate>",
    )
}

#[test]
fn bkav_status_directly_under_the_header() {
    let text = bkav_status(&fixture("status-03"));
    let p = reads_as(
        &text,
        "status-03",
        &[K::NonStandardLayout, K::NonCanonicalValue],
    );
    warning_at(&p, K::NonStandardLayout, "edXMLEnvelope/edXMLHeader/Status");
    warning_at(
        &p,
        K::NonCanonicalValue,
        "edXMLEnvelope/edXMLHeader/Status/ResponseFor/PromulgationDate",
    );
    // What the node routes by must still be there: a Bkav status without ResponseFor or From,
    // or without a StatusCode, is refused.
    let status = fixture("status-03");
    let start = status.find("<ResponseFor>").unwrap();
    let end = status.find("</ResponseFor>").unwrap() + "</ResponseFor>".len();
    let no_rf = bkav_status(&status).replace(
        &status[start..end].replace("2024/03/15</P", "15/03/2024 00:00:00</P"),
        "",
    );
    let (code, msg) = refused(&no_rf);
    assert_eq!(code, Code::ElementMissing, "{msg}");
    assert_eq!(msg, "edXMLEnvelope/edXMLHeader/Status/ResponseFor: missing");
    let no_code = edit(&bkav_status(&status), "<StatusCode>03</StatusCode>", "");
    assert_eq!(
        refused(&no_code).1,
        "edXMLEnvelope/edXMLHeader/Status/StatusCode: missing"
    );
    // Neither MessageHeader nor Status: the message header is what is missing.
    let neither = fixture("status-03")
        .replace("<MessageHeader>", "<Other>")
        .replace("</MessageHeader>", "</Other>");
    assert_eq!(
        refused(&neither).1,
        "edXMLEnvelope/edXMLHeader/MessageHeader: missing"
    );
}

#[test]
fn junk_before_the_xml_declaration_is_warned() {
    let text = format!("1212{}", fixture("status-03"));
    let p = reads_as(&text, "status-03", &[K::JunkBeforeDeclaration]);
    assert!(warning_at(&p, K::JunkBeforeDeclaration, "(prolog)").starts_with("4 stray bytes"));
    // A BOM is not junk.
    let text = format!("\u{feff}{}", fixture("status-03"));
    reads_as(&text, "status-03", &[]);
}

// ---------------------------------------------------------------------------------------------
// Property: order, prefixes and declarations never change what is read
// ---------------------------------------------------------------------------------------------

/// Re-serialises `xml` with: the children of each element permuted by `perm` (elements of the
/// same name keep their relative order — recipients, files, hops are ordered lists), each
/// element's name written with the prefix its depth picks from `prefixes` (`None` = the default
/// namespace), and each prefix declared on the element where it is first used below the root
/// when `declare_low` says so, else on the root.
fn restyle(xml: &str, perm: &[usize], prefixes: &[Option<&str>], declare_low: bool) -> String {
    struct St<'a> {
        perm: &'a [usize],
        prefixes: &'a [Option<&'a str>],
        declare_low: bool,
        step: usize,
        out: String,
    }
    fn escape(t: &str) -> String {
        t.replace('&', "&amp;").replace('<', "&lt;")
    }
    fn emit(st: &mut St, n: roxmltree::Node, depth: usize, declared: &[&str]) {
        let prefix = st.prefixes[depth % st.prefixes.len()];
        let qname = |name: &str| match prefix {
            Some(p) => format!("{p}:{name}"),
            None => name.to_owned(),
        };
        let name = n.tag_name().name();
        st.out.push('<');
        st.out.push_str(&qname(name));
        let mut now_declared: Vec<&str> = declared.to_vec();
        if depth == 0 {
            st.out.push_str(&format!(" xmlns=\"{NS}\""));
            if !st.declare_low {
                for p in st.prefixes.iter().flatten() {
                    if !now_declared.contains(p) {
                        st.out.push_str(&format!(" xmlns:{p}=\"{NS}\""));
                        now_declared.push(p);
                    }
                }
            }
        }
        if let Some(p) = prefix
            && !now_declared.contains(&p)
        {
            st.out.push_str(&format!(" xmlns:{p}=\"{NS}\""));
            now_declared.push(p);
        }
        for a in n.attributes() {
            st.out.push_str(&format!(" {}=\"{}\"", a.name(), a.value()));
        }
        st.out.push('>');
        let kids: Vec<_> = n.children().filter(|c| c.is_element()).collect();
        if kids.is_empty() {
            st.out.push_str(&escape(n.text().unwrap_or("")));
        } else {
            let mut groups: Vec<Vec<roxmltree::Node>> = Vec::new();
            for k in &kids {
                match groups
                    .iter_mut()
                    .find(|g| g[0].tag_name().name() == k.tag_name().name())
                {
                    Some(g) => g.push(*k),
                    None => groups.push(vec![*k]),
                }
            }
            // A permutation of the groups drawn from `perm`.
            let mut order: Vec<usize> = (0..groups.len()).collect();
            for i in (1..order.len()).rev() {
                let j = st.perm[st.step % st.perm.len()] % (i + 1);
                st.step += 1;
                order.swap(i, j);
            }
            for gi in order {
                for k in &groups[gi] {
                    emit(st, *k, depth + 1, &now_declared);
                }
            }
        }
        st.out.push_str("</");
        st.out.push_str(&qname(name));
        st.out.push('>');
    }
    let doc = roxmltree::Document::parse(xml).unwrap();
    let mut st = St {
        perm,
        prefixes,
        declare_low,
        step: 0,
        out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
    };
    emit(&mut st, doc.root_element(), 0, &[]);
    st.out
}

/// Warnings that order, prefixes and declarations may cause, and no others.
fn style_only(k: K) -> bool {
    matches!(
        k,
        K::ElementOrder | K::NamespacePrefix | K::NamespaceRedeclared
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn order_prefixes_and_declarations_do_not_change_what_is_read(
        stem in prop::sample::select(vec![
            "document-new", "document-update", "document-replacement", "status-03", "status-16",
        ]),
        perm in prop::collection::vec(0usize..1000, 1..40),
        prefixes in prop::collection::vec(
            prop::option::of(prop::sample::select(vec!["edXML", "e", "q102"])),
            1..4,
        ),
        declare_low in any::<bool>(),
    ) {
        let canonical = fixture(stem);
        let text = restyle(&canonical, &perm, &prefixes, declare_low);
        let p = edxml::read(text.as_bytes(), &ReadOptions::default())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(model(&p), read(&canonical));
        for w in p.warnings() {
            prop_assert!(style_only(w.kind), "{:?}", w);
        }
        let prefixed = prefixes.iter().any(Option::is_some);
        prop_assert_eq!(
            p.warnings().iter().any(|w| w.kind == K::NamespacePrefix),
            prefixed
        );
    }
}

// ---------------------------------------------------------------------------------------------
// `inspect` on such packages
// ---------------------------------------------------------------------------------------------

fn inspect(text: &str, json: bool) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.edxml");
    std::fs::write(&path, text).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lienthong"));
    cmd.arg("inspect");
    if json {
        cmd.arg("--json");
    }
    cmd.arg(&path).output().unwrap()
}

/// The SDK's placeholder: a signature whose certificate is a truncated base64 text.
const PLACEHOLDER_SIGNATURE: &str = "<Signature><SignedInfo><Reference URI=\"\"/></SignedInfo>\
    <SignatureValue>AAAA</SignatureValue><KeyInfo><X509Data><X509SubjectName>CN=user05</X509SubjectName>\
    <X509Certificate>MIIFqTCCBJG</X509Certificate></X509Data></KeyInfo></Signature>";

#[test]
fn inspect_reports_a_placeholder_signature_as_not_verifiable_and_exits_0() {
    let text = edit(
        &fixture("document-new"),
        "</edXMLHeader>",
        &format!("{PLACEHOLDER_SIGNATURE}</edXMLHeader>"),
    );
    let o = inspect(&text, false);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("  signature:  present, not verifiable: ")
                && l.contains("X509Certificate")),
        "{out}"
    );
    assert!(out.contains("[signature_namespace] "), "{out}");
    let o = inspect(&text, true);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["signature"]["present"], true);
    assert_eq!(v["signature"]["verifiable"], false);
    assert_eq!(v["signature"]["code"], "CERT_MALFORMED");
    assert_eq!(v["warnings"][0]["kind"], "signature_namespace");
}

#[test]
fn inspect_keeps_its_columns_when_fields_are_empty() {
    // No place, no signer, a recipient without a name.
    let text = edit(
        &fixture("document-new"),
        "<Place>Gia Lai</Place>",
        "<Place></Place>",
    );
    let text = edit(
        &text,
        "<Competence>KT. GIÁM ĐỐC</Competence>\n          <Position>Phó Giám đốc</Position>\n          <FullName>Nguyễn Văn An</FullName>",
        "<Competence/><Position/><FullName/>",
    );
    let text = edit(
        &text,
        "<OrganName>Ủy ban nhân dân tỉnh Gia Lai</OrganName>\n        </To>",
        "</To>",
    );
    let o = inspect(&text, false);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}");
    let mut fields = 0;
    for line in out.lines().skip(1) {
        // "  label:" padded to 12 characters, then the value: never a blank or shifted value.
        let chars: Vec<char> = line.chars().collect();
        assert!(chars.len() > 14, "{line:?}");
        assert_eq!(&chars[..2], &[' ', ' '], "{line:?}");
        let label: String = chars[2..14].iter().collect();
        assert!(label.trim_end().ends_with(':'), "{line:?}");
        assert!(!chars[14].is_whitespace(), "value shifted: {line:?}");
        assert_eq!(line.trim_end(), line, "trailing blank: {line:?}");
        fields += 1;
    }
    assert!(fields >= 10, "{out}");
    assert!(out.contains("\n  signer:     -\n"), "{out}");
    assert!(out.contains("\n  to:         000.00.00.H21\n"), "{out}");
    assert!(out.contains("\n  date:       2024/03/15\n"), "{out}");
}

/// A one-digit status code (`3` for `03`) and a status with nothing beyond its code (empty or
/// absent Description) are read, and said.
#[test]
fn a_one_digit_status_code_and_an_empty_description() {
    let status = fixture("status-03");
    let one_digit = edit(
        &status,
        "<StatusCode>03</StatusCode>",
        "<StatusCode>3</StatusCode>",
    );
    let p = reads_as(&one_digit, "status-03", &[K::NonCanonicalValue]);
    let m = warning_at(
        &p,
        K::NonCanonicalValue,
        "edXMLEnvelope/edXMLHeader/MessageHeader/StatusCode",
    );
    assert!(m.contains("one digit"), "{m}");
    let start = status.find("<Description>").unwrap();
    let end = status.find("</Description>").unwrap() + "</Description>".len();
    for text in [
        status.replacen(&status[start..end], "<Description/>", 1),
        status.replacen(&status[start..end], "", 1),
    ] {
        let p = read(&text);
        warning_at(
            &p,
            K::EmptyElement,
            "edXMLEnvelope/edXMLHeader/MessageHeader/Description",
        );
    }
}
