//! Fixtures, round trips, reading quirks of real traffic, and refusals with exact codes.
//!
//! The fixtures under `tests/data/edxml/` are the library's samples written; regenerate them
//! after an intended format change with `LIENTHONG_WRITE_FIXTURES=1 cargo test --test
//! edxml_roundtrip`, then review the diff by eye.

use std::path::{Path, PathBuf};

use lienthong::edxml::samples;
use lienthong::edxml::xml::Limits;
use lienthong::edxml::{self, Package, ReadOptions, StatusCode, WarningKind};
use lienthong::error::Code;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/edxml")
}

fn fixture(stem: &str) -> Vec<u8> {
    let path = fixture_dir().join(format!("{stem}.edxml"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture_text(stem: &str) -> String {
    String::from_utf8(fixture(stem)).unwrap()
}

fn lenient() -> ReadOptions {
    ReadOptions::default()
}

fn strict() -> ReadOptions {
    ReadOptions {
        strict: true,
        ..ReadOptions::default()
    }
}

fn read(bytes: impl AsRef<[u8]>) -> Package {
    edxml::read(bytes.as_ref(), &lenient()).unwrap_or_else(|e| panic!("{e} ({:?})", e.code))
}

fn code_of(bytes: impl AsRef<[u8]>, opts: &ReadOptions) -> (Code, String) {
    match edxml::read(bytes.as_ref(), opts) {
        Ok(p) => panic!("read although it should not: {p:?}"),
        Err(e) => (e.code, e.to_string()),
    }
}

fn kinds(p: &Package) -> Vec<WarningKind> {
    p.warnings().iter().map(|w| w.kind).collect()
}

/// Writing what a quirky input reads as must give the canonical fixture back.
fn reads_as_fixture(input: impl AsRef<[u8]>, stem: &str) -> Package {
    let p = read(input);
    let out = edxml::write(&p).unwrap();
    assert!(
        out == fixture(stem),
        "does not read as {stem}:\n{}",
        String::from_utf8_lossy(&out)
    );
    p
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

#[test]
fn fixtures_are_the_samples_written() {
    let regenerate = std::env::var_os("LIENTHONG_WRITE_FIXTURES").is_some();
    for (stem, pkg) in samples::all() {
        let bytes = edxml::write(&pkg).unwrap();
        let path = fixture_dir().join(format!("{stem}.edxml"));
        if regenerate {
            std::fs::create_dir_all(fixture_dir()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        assert!(
            bytes == fixture(&stem),
            "{stem}: the writer no longer produces the fixture (regenerate and review)"
        );
        // And it reads back as the same model, without warnings.
        let back = read(&bytes);
        assert_eq!(back, pkg, "{stem}");
    }
}

#[test]
fn every_fixture_reads_and_writes_back_identically() {
    let mut n = 0;
    for entry in std::fs::read_dir(fixture_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("edxml") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let p =
            edxml::read(&bytes, &strict()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            p.warnings().is_empty(),
            "{}: {:?}",
            path.display(),
            p.warnings()
        );
        let out = edxml::write(&p).unwrap();
        assert!(out == bytes, "{}: write(read(x)) != x", path.display());
        n += 1;
    }
    assert_eq!(n, 13, "4 documents and 9 status packages");
}

// ---------------------------------------------------------------------------------------------
// Reading quirks of real traffic: each reads as the canonical fixture
// ---------------------------------------------------------------------------------------------

const NS: &str = "http://www.mic.gov.vn/TBT/QCVN_102_2016";

#[test]
fn junk_and_bom_before_the_declaration() {
    let mut junky = b"\r\n\x00\x07garbage from a gateway ".to_vec();
    junky.extend_from_slice(&fixture("document-new"));
    let p = reads_as_fixture(&junky, "document-new");
    assert_eq!(kinds(&p), [WarningKind::JunkBeforeDeclaration]);
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(&fixture("document-new"));
    let p = reads_as_fixture(&bom, "document-new");
    assert!(p.warnings().is_empty());
}

#[test]
fn crlf_line_ends() {
    let crlf = fixture_text("document-new").replace('\n', "\r\n");
    let p = reads_as_fixture(crlf, "document-new");
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
}

/// Every element written as `edXML:Name`, the namespace bound to the prefix only.
fn prefixed(xml: &str) -> String {
    let xml = xml.replace(&format!(" xmlns=\"{NS}\""), "");
    let mut out = String::with_capacity(xml.len() * 2);
    let mut rest = xml.as_str();
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('/') {
            out.push_str("/edXML:");
            rest = r;
        } else if !rest.starts_with('?') {
            out.push_str("edXML:");
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn prefix_on_every_element() {
    for stem in ["document-new", "document-update", "status-03"] {
        let text = prefixed(&fixture_text(stem));
        assert!(
            text.contains("<edXML:edXML xmlns:edXML="),
            "{}",
            &text[..200]
        );
        assert!(text.contains("</edXML:MessageHeader>"));
        assert!(!text.contains(&format!("xmlns=\"{NS}\"")));
        // Read by namespace, and noted: prefixed elements, nothing re-declared.
        let p = reads_as_fixture(text, stem);
        assert_eq!(
            kinds(&p),
            [WarningKind::NamespacePrefix],
            "{:?}",
            p.warnings()
        );
    }
}

/// Re-serialises with the children of every element in reverse order of their names (elements
/// of the same name keep their relative order, since that order is meaningful: recipients,
/// files, trace entries).
fn shuffled(xml: &str) -> String {
    fn emit(n: roxmltree::Node, root: bool, out: &mut String) {
        let name = n.tag_name().name();
        out.push('<');
        out.push_str(name);
        if root {
            out.push_str(&format!(" xmlns=\"{NS}\""));
        }
        for a in n.attributes() {
            out.push_str(&format!(" {}=\"{}\"", a.name(), a.value()));
        }
        out.push('>');
        let kids: Vec<_> = n.children().filter(|c| c.is_element()).collect();
        if kids.is_empty() {
            let t = n.text().unwrap_or("");
            out.push_str(&t.replace('&', "&amp;").replace('<', "&lt;"));
        } else {
            let mut names: Vec<&str> = Vec::new();
            for k in &kids {
                if !names.contains(&k.tag_name().name()) {
                    names.push(k.tag_name().name());
                }
            }
            for nm in names.iter().rev() {
                for k in kids.iter().filter(|k| k.tag_name().name() == *nm) {
                    emit(*k, false, out);
                }
            }
        }
        out.push_str(&format!("</{name}>"));
    }
    let doc = roxmltree::Document::parse(xml).unwrap();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    emit(doc.root_element(), true, &mut out);
    out
}

#[test]
fn elements_in_any_order() {
    for stem in [
        "document-new",
        "document-update",
        "document-replacement",
        "status-16",
    ] {
        let text = shuffled(&fixture_text(stem));
        assert!(
            text.find("<AttachmentEncoded>").unwrap_or(0) < text.find("<edXMLEnvelope>").unwrap()
        );
        // Read by name; each element whose children are out of order is noted once.
        let p = reads_as_fixture(text, stem);
        assert!(!p.warnings().is_empty(), "{stem}");
        assert!(
            kinds(&p).iter().all(|k| *k == WarningKind::ElementOrder),
            "{stem}: {:?}",
            p.warnings()
        );
        assert!(
            p.warnings()
                .iter()
                .any(|w| w.path == "edXMLEnvelope/edXMLHeader/MessageHeader"),
            "{stem}: {:?}",
            p.warnings()
        );
    }
}

fn with_signature(stem: &str, signature: &str) -> String {
    fixture_text(stem).replace("</edXMLHeader>", &format!("{signature}</edXMLHeader>"))
}

#[test]
fn signature_in_either_namespace_is_ignored() {
    let dsig = r#"<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo><Reference URI=""/></SignedInfo><SignatureValue>AAAA</SignatureValue></Signature>"#;
    // The common SDK writes it without a namespace of its own, i.e. in the edXML namespace.
    let sdk = r#"<Signature><SignedInfo><Reference URI=""/></SignedInfo><SignatureValue>AAAA</SignatureValue></Signature>"#;
    for stem in ["document-new", "status-01"] {
        let p = reads_as_fixture(with_signature(stem, dsig), stem);
        assert!(p.warnings().is_empty(), "{:?}", p.warnings());
        // Outside the XML-DSig namespace: still the signature, and noted.
        let p = reads_as_fixture(with_signature(stem, sdk), stem);
        assert_eq!(kinds(&p), [WarningKind::SignatureNamespace]);
    }
}

/// The base64 texts of the fixture's attachments, in order.
fn encoded_texts(xml: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .filter(|n| n.tag_name().name() == "ContentTransferEncoded")
        .map(|n| n.text().unwrap_or("").to_owned())
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn unzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    let mut a = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = Vec::new();
    a.by_index(0).unwrap().read_to_end(&mut out).unwrap();
    out
}

#[test]
fn plain_unzipped_attachments() {
    let mut text = fixture_text("document-new");
    for enc in encoded_texts(&text) {
        let raw = unzip(&unb64(&enc));
        text = text.replace(&enc, &b64(&raw));
    }
    // Labelled with their own type: nothing to flag.
    let plain = text.replace(
        "<ContentType>application/zip</ContentType>",
        "<ContentType>application/pdf</ContentType>",
    );
    let p = reads_as_fixture(&plain, "document-new");
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    // Labelled zip but not zipped: read, and flagged.
    let p = reads_as_fixture(&text, "document-new");
    assert_eq!(
        kinds(&p),
        [WarningKind::AttachmentLabel, WarningKind::AttachmentLabel]
    );
}

#[test]
fn zipped_attachment_labelled_with_its_original_type() {
    let text = fixture_text("document-new").replace(
        "<ContentType>application/zip</ContentType>",
        "<ContentType>application/pdf</ContentType>",
    );
    let p = reads_as_fixture(text, "document-new");
    assert_eq!(
        kinds(&p),
        [WarningKind::AttachmentLabel, WarningKind::AttachmentLabel]
    );
    assert!(
        p.warnings()[0].path.ends_with("Attachment[1]/ContentType"),
        "{:?}",
        p.warnings()
    );
}

#[test]
fn base64_with_line_breaks() {
    let mut text = fixture_text("document-new");
    for enc in encoded_texts(&text) {
        let wrapped: Vec<String> = enc
            .as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        text = text.replace(&enc, &format!("\r\n{}\r\n      ", wrapped.join("\r\n")));
    }
    let p = reads_as_fixture(text, "document-new");
    assert!(p.warnings().is_empty());
}

#[test]
fn null_and_missing_trace_organ_ids() {
    let hub = "<TraceHeader><OrganId>null</OrganId><Timestamp>2024/03/15 09:31:00</Timestamp></TraceHeader>\
               <TraceHeader><Timestamp>2024/03/15 09:32:00</Timestamp></TraceHeader>\
               <TraceHeader><OrganId>NULL</OrganId><Timestamp>2024/03/15 09:33:00</Timestamp></TraceHeader>";
    let text = fixture_text("document-new").replace("<Bussiness>", &format!("{hub}<Bussiness>"));
    let Package::Document(d) = read(&text) else {
        panic!("not a document")
    };
    // Each hop without an agency is noted.
    assert_eq!(
        d.warnings.iter().map(|w| w.kind).collect::<Vec<_>>(),
        [WarningKind::ValueDefaulted; 3],
        "{:?}",
        d.warnings
    );
    assert!(
        d.warnings[1].message.starts_with("missing;"),
        "{:?}",
        d.warnings
    );
    assert_eq!(d.trace_headers.len(), 4);
    assert!(d.trace_headers[0].organ_id.is_some());
    assert!(d.trace_headers[1..].iter().all(|t| t.organ_id.is_none()));
    // Written back without an OrganId, and stable from there on.
    let once = edxml::write(&Package::Document(d)).unwrap();
    let twice = edxml::write(&read(&once)).unwrap();
    assert_eq!(once, twice);
}

#[test]
fn tolerated_forms_are_flagged() {
    let text = fixture_text("document-new")
        .replace(
            "<PromulgationDate>2024/03/15</PromulgationDate>",
            "<PromulgationDate>2024-03-15</PromulgationDate>",
        )
        .replace(
            "<Timestamp>2024/03/15 09:30:00</Timestamp>",
            "<Timestamp>2024-03-15T09:30:00</Timestamp>",
        )
        .replace("<Direction>false</Direction>", "<Direction>0</Direction>")
        .replace("<Subject>", "<Subject>\n   ")
        .replace("</MessageHeader>", "<Extra>x</Extra></MessageHeader>")
        .replace("<Priority>1</Priority>", "");
    let p = read(&text);
    let mut k = kinds(&p);
    k.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(
        k,
        [
            WarningKind::NonCanonicalValue,
            WarningKind::NonCanonicalValue,
            WarningKind::UnknownElement,
            WarningKind::ValueDefaulted,
        ],
        "{:?}",
        p.warnings()
    );
    let extra = p
        .warnings()
        .iter()
        .find(|w| w.kind == WarningKind::UnknownElement)
        .unwrap();
    assert_eq!(extra.path, "edXMLEnvelope/edXMLHeader/MessageHeader/Extra");
    let d = p.as_document().unwrap();
    assert_eq!(d.header.subject, samples::new_document().header.subject);
    assert_eq!(
        d.header.promulgation_info.date,
        samples::new_document().header.promulgation_info.date
    );
    assert_eq!(d.header.other_info.as_ref().unwrap().direction, Some(false));
    // Fixing the defaulted priority gives the fixture back.
    let mut fixed = d.clone();
    fixed.header.other_info.as_mut().unwrap().priority = edxml::Priority::Urgent;
    assert!(edxml::write_document(&fixed).unwrap() == fixture("document-new"));
}

#[test]
fn non_standard_organ_ids_are_flagged_when_lenient() {
    let text = fixture_text("status-01").replacen(
        "<OrganId>000.00.00.H41</OrganId>",
        "<OrganId>vxp.saas.03</OrganId>",
        1,
    );
    let p = read(&text);
    assert_eq!(kinds(&p), [WarningKind::NonStandardOrganId]);
    assert_eq!(
        p.warnings()[0].path,
        "edXMLEnvelope/edXMLHeader/MessageHeader/From/OrganId"
    );
    assert!(!p.from().organ_id.is_standard());
    // This node does not write a non-standard sender.
    assert_eq!(edxml::write(&p).unwrap_err().code, Code::OrganIdInvalid);
}

#[test]
fn soft_length_limits_warn_on_read() {
    let long = "Nội dung rất dài. ".repeat(40);
    let text = fixture_text("document-new").replace(
        "<Subject>V/v phối hợp kết nối, liên thông văn bản điện tử giữa hai tỉnh</Subject>",
        &format!("<Subject>{long}</Subject>"),
    );
    let p = read(&text);
    assert_eq!(kinds(&p), [WarningKind::LengthExceeded]);
    assert_eq!(edxml::write(&p).unwrap_err().code, Code::ValueInvalid);
}

#[test]
fn json_prints_dates_as_edxml_writes_them() {
    let v = serde_json::to_value(read(fixture("document-new"))).unwrap();
    assert_eq!(v["kind"], "document");
    assert_eq!(v["header"]["promulgation_info"]["date"], "2024/03/15");
    assert_eq!(v["header"]["from"]["organ_id"], "000.00.05.H21");
    assert_eq!(v["trace_headers"][0]["timestamp"], "2024/03/15 09:30:00");
    assert_eq!(v["attachments"][0]["content_type"], "application/pdf");
    assert!(v["attachments"][0]["size"].as_u64().unwrap() > 100);
    let s = serde_json::to_value(read(fixture("status-02"))).unwrap();
    assert_eq!(s["kind"], "status");
    assert_eq!(s["status_code"], "02");
}

#[test]
fn kind_is_told_by_content() {
    assert!(matches!(read(fixture("status-05")), Package::Status(_)));
    assert!(matches!(
        read(fixture("document-revocation")),
        Package::Document(_)
    ));
    let p = read(fixture("status-05"));
    assert_eq!(p.as_status().unwrap().status_code, StatusCode::Processing);
    assert_eq!(
        p.summary(),
        "status 05 (being processed) from 000.00.00.H41 on 000.00.05.H21,2024/03/15,123/STTTT-CĐS"
    );
    assert_eq!(
        read(fixture("document-new")).summary(),
        "document 123/STTTT-CĐS (new) from 000.00.05.H21 to 2 recipients, 2 attachments"
    );
}

// ---------------------------------------------------------------------------------------------
// Refusals, with exact codes
// ---------------------------------------------------------------------------------------------

/// Removes the `i`-th (0-based) element `<tag>…</tag>` (not nested in itself) from `xml`.
fn remove_nth(xml: &str, tag: &str, i: usize) -> String {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.match_indices(&open).nth(i).unwrap().0;
    let end = start + xml[start..].find(&close).unwrap() + close.len();
    format!("{}{}", &xml[..start], &xml[end..])
}

#[test]
fn attachment_without_manifest_reference() {
    let text = remove_nth(&fixture_text("document-new"), "Reference", 1);
    let (code, msg) = code_of(text, &lenient());
    assert_eq!(code, Code::ManifestMismatch);
    assert!(
        msg.contains("cid:0b0f4e8e-6a52-4d43-9a7e-2f1c3d9b7a02"),
        "{msg}"
    );
    assert!(msg.starts_with("AttachmentEncoded/Attachment[2]"), "{msg}");
}

#[test]
fn manifest_reference_without_attachment() {
    let text = remove_nth(&fixture_text("document-new"), "Attachment", 0);
    let (code, msg) = code_of(text, &lenient());
    assert_eq!(code, Code::ManifestMismatch);
    assert!(
        msg.contains("cid:0b0f4e8e-6a52-4d43-9a7e-2f1c3d9b7a01"),
        "{msg}"
    );
    // No AttachmentEncoded at all.
    let text = remove_nth(
        &fixture_text("document-replacement"),
        "AttachmentEncoded",
        0,
    );
    assert_eq!(code_of(text, &lenient()).0, Code::ManifestMismatch);
}

#[test]
fn duplicate_content_id() {
    let text = fixture_text("document-new").replace("7a02", "7a01");
    assert_eq!(code_of(text, &lenient()).0, Code::ManifestMismatch);
}

#[test]
fn invalid_base64() {
    let text = fixture_text("document-new");
    let enc = &encoded_texts(&text)[0];
    let (code, msg) = code_of(text.replace(enc.as_str(), "UEsDB@@@notbase64"), &lenient());
    assert_eq!(code, Code::Base64Invalid);
    assert!(
        msg.starts_with("AttachmentEncoded/Attachment[1]/ContentTransferEncoded"),
        "{msg}"
    );
}

#[test]
fn zip_bomb() {
    let zeros = vec![0u8; 20 * 1024 * 1024];
    let bomb = edxml::attachment::zip_single("bomb.pdf", &zeros).unwrap();
    assert!(bomb.len() * 200 < zeros.len(), "ratio well over 200");
    let text = fixture_text("document-new");
    let enc = &encoded_texts(&text)[0];
    let (code, msg) = code_of(text.replace(enc.as_str(), &b64(&bomb)), &lenient());
    assert_eq!(code, Code::AttachmentTooLarge, "{msg}");
}

#[test]
fn broken_zip() {
    let text = fixture_text("document-new");
    let enc = &encoded_texts(&text)[0];
    let mut broken = unb64(enc);
    broken.truncate(40);
    let (code, _) = code_of(text.replace(enc.as_str(), &b64(&broken)), &lenient());
    assert_eq!(code, Code::AttachmentInvalid);
}

#[test]
fn too_many_attachments() {
    let opts = ReadOptions {
        limits: Limits {
            max_attachments: 1,
            ..Limits::default()
        },
        strict: false,
    };
    assert_eq!(
        code_of(fixture("document-new"), &opts).0,
        Code::AttachmentLimit
    );
    assert!(edxml::read(&fixture("document-replacement"), &opts).is_ok());
}

#[test]
fn total_attachment_size() {
    let opts = ReadOptions {
        limits: Limits {
            max_total_attachment_bytes: 1000,
            ..Limits::default()
        },
        strict: false,
    };
    let (code, msg) = code_of(fixture("document-new"), &opts);
    assert_eq!(code, Code::AttachmentTooLarge);
    assert!(msg.contains("Attachment[2]"), "{msg}");
}

#[test]
fn unassigned_status_code() {
    let text = fixture_text("status-01")
        .replace("<StatusCode>01</StatusCode>", "<StatusCode>07</StatusCode>");
    let (code, msg) = code_of(&text, &strict());
    assert_eq!(code, Code::StatusCodeUnknown);
    assert!(
        msg.starts_with("edXMLEnvelope/edXMLHeader/MessageHeader/StatusCode"),
        "{msg}"
    );
    let p = read(&text);
    assert_eq!(
        p.as_status().unwrap().status_code,
        StatusCode::Unassigned(7)
    );
    assert_eq!(kinds(&p), [WarningKind::UnassignedStatusCode]);
    assert_eq!(edxml::write(&p).unwrap_err().code, Code::StatusCodeUnknown);
    for bad in ["00", "17", "99", "x1", "1.0"] {
        let text = fixture_text("status-01").replace(
            "<StatusCode>01</StatusCode>",
            &format!("<StatusCode>{bad}</StatusCode>"),
        );
        assert_eq!(
            code_of(&text, &lenient()).0,
            Code::StatusCodeUnknown,
            "{bad}"
        );
    }
}

#[test]
fn malformed_organ_id() {
    let odd = fixture_text("document-new").replacen(
        "<OrganId>000.00.00.H41</OrganId>",
        "<OrganId>001.00.20.TT2</OrganId>",
        1,
    );
    let (code, msg) = code_of(&odd, &strict());
    assert_eq!(code, Code::OrganIdInvalid);
    assert!(
        msg.starts_with("edXMLEnvelope/edXMLHeader/MessageHeader/To[1]/OrganId"),
        "{msg}"
    );
    let p = read(&odd);
    assert_eq!(kinds(&p), [WarningKind::NonStandardOrganId]);
    // A recipient of another system may be written.
    assert!(edxml::write(&p).is_ok());
    // Whitespace is refused even when lenient.
    let broken = fixture_text("document-new").replacen(
        "<OrganId>000.00.00.H41</OrganId>",
        "<OrganId>000.00 .00.H41</OrganId>",
        1,
    );
    assert_eq!(code_of(&broken, &lenient()).0, Code::OrganIdInvalid);
}

#[test]
fn missing_required_elements() {
    let text = remove_nth(&fixture_text("document-new"), "CodeNumber", 0);
    let (code, msg) = code_of(text, &lenient());
    assert_eq!(code, Code::ElementMissing);
    assert_eq!(
        msg,
        "edXMLEnvelope/edXMLHeader/MessageHeader/Code/CodeNumber: missing"
    );
    let empty = fixture_text("document-new").replace(
        "<Subject>V/v phối hợp kết nối, liên thông văn bản điện tử giữa hai tỉnh</Subject>",
        "<Subject>  </Subject>",
    );
    assert_eq!(
        code_of(empty, &lenient()).1,
        "edXMLEnvelope/edXMLHeader/MessageHeader/Subject: missing"
    );
    let no_to = remove_nth(&remove_nth(&fixture_text("document-new"), "To", 0), "To", 0);
    assert_eq!(
        code_of(no_to, &lenient()).1,
        "edXMLEnvelope/edXMLHeader/MessageHeader/To: missing"
    );
    let no_ts = remove_nth(&fixture_text("status-01"), "Timestamp", 0);
    assert_eq!(
        code_of(no_ts, &lenient()).1,
        "edXMLEnvelope/edXMLHeader/MessageHeader/Timestamp: missing"
    );
    // A recipient without a name is still addressed by its code: read, and flagged.
    let no_name = remove_nth(&fixture_text("document-new"), "OrganName", 2);
    let p = read(no_name);
    assert_eq!(kinds(&p), [WarningKind::ValueDefaulted]);
    assert_eq!(
        p.warnings()[0].path,
        "edXMLEnvelope/edXMLHeader/MessageHeader/To[2]/OrganName"
    );
    assert_eq!(p.as_document().unwrap().header.to[1].organ_name, "");
}

#[test]
fn bad_values() {
    let text = fixture_text("document-new").replace("2024/03/29", "2024/02/30");
    let (code, msg) = code_of(text, &lenient());
    assert_eq!(code, Code::ValueInvalid);
    assert!(
        msg.starts_with("edXMLEnvelope/edXMLHeader/MessageHeader/DueDate"),
        "{msg}"
    );
    let text =
        fixture_text("document-new").replace("<Priority>1</Priority>", "<Priority>5</Priority>");
    assert_eq!(code_of(text, &lenient()).0, Code::ValueInvalid);
    let text = fixture_text("document-new").replace(
        "<SteeringType>0</SteeringType>",
        "<SteeringType>3</SteeringType>",
    );
    assert_eq!(code_of(text, &lenient()).0, Code::ValueInvalid);
    let text = fixture_text("document-new").replace(
        "<BussinessDocType>0</BussinessDocType>",
        "<BussinessDocType>4</BussinessDocType>",
    );
    assert_eq!(code_of(text, &lenient()).0, Code::ValueInvalid);
    let text = fixture_text("document-new").replace("<Type>1</Type>", "<Type>one</Type>");
    assert_eq!(code_of(text, &lenient()).0, Code::ValueInvalid);
}

#[test]
fn duplicates() {
    let text = fixture_text("document-new");
    let header_start = text.find("<MessageHeader>").unwrap();
    let header_end = text.find("</MessageHeader>").unwrap() + "</MessageHeader>".len();
    let header = &text[header_start..header_end];
    let twice = text.replace(header, &format!("{header}{header}"));
    let (code, msg) = code_of(twice, &lenient());
    assert_eq!(code, Code::ElementDuplicate);
    assert!(
        msg.starts_with("edXMLEnvelope/edXMLHeader/MessageHeader:"),
        "{msg}"
    );

    let subject = "<Subject>x</Subject>";
    let text2 = text.replace("<Content>", &format!("{subject}<Content>"));
    assert_eq!(
        code_of(text2, &lenient()).1,
        "edXMLEnvelope/edXMLHeader/MessageHeader/Subject: appears 2 times; allowed once"
    );
    let env = text.replace("<edXMLEnvelope>", "<edXMLEnvelope><edXMLHeader/>");
    assert_eq!(code_of(env, &lenient()).0, Code::ElementDuplicate);
    let status = fixture_text("status-01");
    let rf_start = status.find("<ResponseFor>").unwrap();
    let rf_end = status.find("</ResponseFor>").unwrap() + "</ResponseFor>".len();
    let rf = &status[rf_start..rf_end];
    let two = status.replace(rf, &format!("{rf}{rf}"));
    assert_eq!(code_of(two, &lenient()).0, Code::ElementDuplicate);
}

#[test]
fn not_edxml() {
    let (code, _) = code_of(b"<?xml version=\"1.0\"?><html/>", &lenient());
    assert_eq!(code, Code::NotEdxml);
    // The right name in no namespace, or another one, is not edXML either.
    let no_ns = fixture_text("status-01")
        .replace(&format!(" xmlns=\"{NS}\""), "")
        .replace(&format!(" xmlns:edXML=\"{NS}\""), "");
    assert_eq!(code_of(no_ns, &lenient()).0, Code::NotEdxml);
    let other = fixture_text("status-01").replace(NS, "http://example.org/edxml");
    assert_eq!(code_of(other, &lenient()).0, Code::NotEdxml);
    assert_eq!(code_of(b"not xml at all", &lenient()).0, Code::XmlMalformed);
}

#[test]
fn elements_in_a_foreign_namespace_are_flagged() {
    let text = fixture_text("document-new").replace(
        "<Subject>",
        "<x:Subject xmlns:x=\"urn:other\">ignored</x:Subject><Subject>",
    );
    let p = read(text);
    assert_eq!(kinds(&p), [WarningKind::UnknownElement]);
    assert_eq!(
        p.as_document().unwrap().header.subject,
        samples::new_document().header.subject
    );
}

#[test]
fn a_status_without_status_code_says_so() {
    let text = remove_nth(&fixture_text("status-03"), "StatusCode", 0);
    assert_eq!(
        code_of(text, &lenient()).1,
        "edXMLEnvelope/edXMLHeader/MessageHeader/StatusCode: missing"
    );
}

/// A minimal Office Open XML file: a zip of several entries, as a `.docx` is.
fn fake_docx() -> Vec<u8> {
    use std::io::Write as _;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, body) in [
        ("[Content_Types].xml", "<Types/>"),
        ("word/document.xml", "<w:document/>"),
    ] {
        w.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(body.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn zip_based_files_sent_without_a_wrapper() {
    const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
    let docx = fake_docx();
    let mut d = samples::new_document();
    d.attachments.truncate(1);
    d.attachments[0].content_type = DOCX.into();
    d.attachments[0].name = "Dự thảo.docx".into();
    d.attachments[0].data = docx.clone();
    let written = String::from_utf8(edxml::write_document(&d).unwrap()).unwrap();
    // As written (wrapped): the docx comes back.
    let p = read(&written);
    assert_eq!(p.as_document().unwrap().attachments[0].data, docx);
    assert!(p.warnings().is_empty());
    // Unwrapped, labelled with its own type: taken as it is, nothing to flag.
    let enc = &encoded_texts(&written)[0];
    let plain = written.replace(enc.as_str(), &b64(&docx)).replace(
        "<ContentType>application/zip</ContentType>",
        &format!("<ContentType>{DOCX}</ContentType>"),
    );
    let p = read(&plain);
    assert_eq!(p.as_document().unwrap().attachments[0].data, docx);
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    assert!(edxml::write(&p).unwrap() == written.as_bytes());
    // Unwrapped but labelled zip: taken as it is, flagged.
    let p = read(written.replace(enc.as_str(), &b64(&docx)));
    assert_eq!(p.as_document().unwrap().attachments[0].data, docx);
    assert_eq!(kinds(&p), [WarningKind::AttachmentLabel]);
    // A .docx where the manifest promises a PDF: decided by content, the document as it is,
    // both labels flagged.
    let pdf = written
        .replace(DOCX, "application/pdf")
        .replace(enc.as_str(), &b64(&docx));
    let p = read(pdf);
    assert_eq!(p.as_document().unwrap().attachments[0].data, docx);
    assert_eq!(
        kinds(&p),
        [WarningKind::AttachmentLabel, WarningKind::AttachmentLabel]
    );
}
