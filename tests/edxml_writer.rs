//! The writer: strict on what this node sends, deterministic, and the reader's inverse.

use lienthong::edxml::samples;
use lienthong::edxml::{
    self, Attachment, Business, BusinessDocType, DocumentCode, DocumentPackage, OrganId,
    Organization, Package, ReadOptions, ReplacementInfo, StatusCode, StatusPackage,
};
use lienthong::error::{Code, FormatError};
use proptest::prelude::*;
use time::macros::{date, datetime};

const MH: &str = "edXMLEnvelope/edXMLHeader/MessageHeader";

fn read(bytes: &[u8]) -> Package {
    edxml::read(bytes, &ReadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn refused(d: &DocumentPackage) -> FormatError {
    match edxml::write_document(d) {
        Ok(_) => panic!("written although it should not be"),
        Err(e) => e,
    }
}

/// A document as the builder makes it, with a named signer (a `SignerInfo` that names nobody is
/// written, but flagged when read).
fn builder_document() -> DocumentPackage {
    let mut d = unsigned_builder_document();
    d.header.signer_info.full_name = "Nguyễn Văn Ánh".into();
    d
}

fn unsigned_builder_document() -> DocumentPackage {
    DocumentPackage::new(
        Organization::new(
            OrganId::parse_strict("000.00.00.H21").unwrap(),
            "Ủy ban nhân dân tỉnh Gia Lai",
        ),
        vec![Organization::new(
            OrganId::parse_strict("000.00.00.H41").unwrap(),
            "Ủy ban nhân dân tỉnh Nghệ An",
        )],
        DocumentCode::new(5, "UBND-KGVX"),
        date!(2024 - 01 - 02),
        "Về việc thử nghiệm liên thông",
        datetime!(2024-01-02 08:00:00),
    )
}

/// write → read → write gives the same bytes, and the model survives.
fn assert_stable(d: &DocumentPackage) -> Vec<u8> {
    let once = edxml::write_document(d).unwrap();
    let back = read(&once);
    assert!(back.warnings().is_empty(), "{:?}", back.warnings());
    let twice = edxml::write(&back).unwrap();
    assert!(once == twice, "write → read → write differs");
    once
}

#[test]
fn a_signer_info_naming_nobody_is_written_and_flagged_on_read() {
    let d = unsigned_builder_document();
    let back = read(&edxml::write_document(&d).unwrap());
    assert_eq!(back.warnings().len(), 1, "{:?}", back.warnings());
    assert_eq!(back.warnings()[0].kind, edxml::WarningKind::EmptyElement);
    assert_eq!(back.warnings()[0].path, format!("{MH}/SignerInfo"));
}

#[test]
fn builder_fills_identity_trace_and_business() {
    let d = builder_document();
    assert_eq!(
        d.header.document_id.as_deref(),
        Some("000.00.00.H21,2024/01/02,05/UBND-KGVX")
    );
    assert_eq!(d.header.code.number, "05");
    assert_eq!(d.header.document_type.type_name, "Công văn");
    assert_eq!(d.trace_headers.len(), 1);
    assert_eq!(d.business_type(), BusinessDocType::New);
    assert_eq!(
        edxml::document_id(
            &d.header.from.organ_id,
            date!(2019 - 02 - 27),
            446,
            "UBND-KGVX"
        ),
        "000.00.00.H21,2019/02/27,446/UBND-KGVX"
    );
    let bytes = assert_stable(&d);
    assert_eq!(read(&bytes), Package::Document(d.clone()));

    let s = StatusPackage::for_document(
        &d,
        Organization::new(
            OrganId::parse_strict("000.00.00.H41").unwrap(),
            "Ủy ban nhân dân tỉnh Nghệ An",
        ),
        StatusCode::Registered,
        "Đã vào sổ",
        datetime!(2024-01-02 09:00:00),
    );
    assert_eq!(s.response_for.code, "05/UBND-KGVX");
    assert_eq!(s.response_for.organ_id.as_str(), "000.00.00.H21");
    assert_eq!(s.response_for.promulgation_date, date!(2024 - 01 - 02));
    assert_eq!(s.response_for.document_id, d.header.document_id);
    let bytes = edxml::write_status(&s).unwrap();
    assert_eq!(read(&bytes), Package::Status(s));
}

#[test]
fn deterministic_including_attachments() {
    let mut d = samples::new_document();
    d.attachments
        .push(Attachment::new("trống.txt", "text/plain", "", Vec::new()));
    // A file named `….zip` travels as it is (not wrapped) and comes back as the same zip.
    let inner = edxml::attachment::zip_single("a.txt", b"abc").unwrap();
    d.attachments.push(Attachment::new(
        "hồ sơ.zip",
        "application/zip",
        "Hồ sơ",
        inner,
    ));
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let random: Vec<u8> = (0..2_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    d.attachments
        .push(Attachment::new("ảnh.jpg", "image/jpeg", "Ảnh chụp", random));
    let bytes = assert_stable(&d);
    assert_eq!(edxml::write_document(&d).unwrap(), bytes);
    assert_eq!(read(&bytes), Package::Document(d));
}

#[test]
fn header_ends_with_its_own_end_tag() {
    for pkg in [
        Package::Document(samples::revocation()),
        Package::Status(samples::status(StatusCode::Arrived)),
    ] {
        let text = String::from_utf8(edxml::write(&pkg).unwrap()).unwrap();
        assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<edXML xmlns=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\" xmlns:edXML=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\">"));
        assert!(text.contains("\n    </edXMLHeader>\n"));
        assert!(!text.contains("<edXMLHeader/>"));
        assert!(text.ends_with("</edXML>\n"));
    }
}

#[test]
fn values_are_trimmed_escaped_and_cr_survives() {
    let mut d = builder_document();
    d.header.subject = "  Về việc <thử> & \"kiểm\" tra  ".into();
    d.header.content = Some("Dòng 1\r\nDòng 2\rDòng 3\tcó tab".into());
    let bytes = assert_stable(&d);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains("<Subject>Về việc &lt;thử&gt; &amp; \"kiểm\" tra</Subject>"));
    assert!(text.contains("Dòng 1&#13;\nDòng 2&#13;Dòng 3\tcó tab"));
    let back = read(&bytes);
    let h = &back.as_document().unwrap().header;
    assert_eq!(h.subject, "Về việc <thử> & \"kiểm\" tra");
    assert_eq!(
        h.content.as_deref(),
        Some("Dòng 1\r\nDòng 2\rDòng 3\tcó tab")
    );
}

#[test]
fn sender_must_have_the_canonical_shape_recipients_need_not() {
    let mut d = builder_document();
    d.header.from.organ_id = OrganId::parse_lenient("vxp.saas.03").unwrap();
    let e = refused(&d);
    assert_eq!(e.code, Code::OrganIdInvalid);
    assert_eq!(e.path, format!("{MH}/From/OrganId"));

    let mut d = builder_document();
    d.header.to.push(Organization::new(
        OrganId::parse_lenient("001.00.20.TT2").unwrap(),
        "Hệ thống khác",
    ));
    let once = edxml::write_document(&d).unwrap();
    let back = read(&once);
    let kinds: Vec<_> = back.warnings().iter().map(|w| w.kind).collect();
    assert_eq!(kinds, [edxml::WarningKind::NonStandardOrganId]);
    assert_eq!(edxml::write(&back).unwrap(), once);
    // ... up to the soft limit of 13 characters.
    d.header.to[1].organ_id = OrganId::parse_lenient("001.00.20.TT22").unwrap();
    let e = refused(&d);
    assert_eq!(
        (e.code, e.path.as_str()),
        (
            Code::ValueInvalid,
            "edXMLEnvelope/edXMLHeader/MessageHeader/To[2]/OrganId"
        )
    );

    let mut s = samples::status(StatusCode::Arrived);
    s.from.organ_id = OrganId::parse_lenient("00.22.W00").unwrap();
    assert_eq!(
        edxml::write_status(&s).unwrap_err().code,
        Code::OrganIdInvalid
    );
}

#[test]
fn soft_length_limits_are_enforced() {
    let mut d = builder_document();
    d.header.subject = "ễ".repeat(500);
    assert_stable(&d);
    d.header.subject = "ễ".repeat(501);
    let e = refused(&d);
    assert_eq!(
        (e.code, e.path.as_str()),
        (
            Code::ValueInvalid,
            "edXMLEnvelope/edXMLHeader/MessageHeader/Subject"
        )
    );

    let mut d = builder_document();
    d.header.signer_info.full_name = "a".repeat(51);
    assert_eq!(refused(&d).path, format!("{MH}/SignerInfo/FullName"));
    let mut d = builder_document();
    d.header.signer_info.position = "a".repeat(101);
    assert_eq!(refused(&d).path, format!("{MH}/SignerInfo/Position"));
    let mut d = builder_document();
    d.header.code.number = "123456789012".into();
    assert_eq!(refused(&d).path, format!("{MH}/Code/CodeNumber"));
    let mut d = builder_document();
    d.header.code.notation = "N".repeat(31);
    assert_eq!(refused(&d).path, format!("{MH}/Code/CodeNotation"));
    let mut d = builder_document();
    d.header.document_type.type_name = "T".repeat(101);
    assert_eq!(refused(&d).path, format!("{MH}/DocumentType/TypeName"));
    let mut d = builder_document();
    d.header.to[0].organ_name = "T".repeat(201);
    assert_eq!(refused(&d).path, format!("{MH}/To[1]/OrganName"));
    let mut d = builder_document();
    d.header.to_places = vec!["p".repeat(600), "q".repeat(401)];
    assert_eq!(refused(&d).path, format!("{MH}/ToPlaces"));
    let mut d = builder_document();
    d.attachments.push(Attachment::new(
        "a.pdf",
        "application/pdf",
        "d".repeat(501),
        vec![1],
    ));
    assert_eq!(
        refused(&d).path,
        "edXMLEnvelope/edXMLBody/edXMLManifest/Reference[1]/Description"
    );
    let mut s = samples::status(StatusCode::Rejected);
    s.description = "d".repeat(501);
    assert_eq!(
        edxml::write_status(&s).unwrap_err().code,
        Code::ValueInvalid
    );
}

#[test]
fn required_values_must_be_present() {
    let mut d = builder_document();
    d.header.to.clear();
    let e = refused(&d);
    assert_eq!(
        (e.code, e.path.as_str()),
        (
            Code::ElementMissing,
            "edXMLEnvelope/edXMLHeader/MessageHeader/To"
        )
    );
    let mut d = builder_document();
    d.header.subject = "   ".into();
    assert_eq!(refused(&d).to_string(), format!("{MH}/Subject: missing"));
    let mut d = builder_document();
    d.header.code.number.clear();
    assert_eq!(
        refused(&d).to_string(),
        format!("{MH}/Code/CodeNumber: missing")
    );
    let mut d = builder_document();
    d.attachments
        .push(Attachment::new(" ", "application/pdf", "", vec![1]));
    assert_eq!(refused(&d).code, Code::ElementMissing);
    let mut d = builder_document();
    d.trace_headers.clear();
    assert_eq!(
        refused(&d).to_string(),
        "edXMLEnvelope/edXMLHeader/TraceHeaderList/TraceHeader: missing"
    );
}

#[test]
fn values_xml_cannot_carry_are_refused() {
    let mut d = builder_document();
    d.header.content = Some("chuông\u{7}".into());
    let e = refused(&d);
    assert_eq!(
        (e.code, e.path.as_str()),
        (
            Code::ValueInvalid,
            "edXMLEnvelope/edXMLHeader/MessageHeader/Content"
        )
    );
    let mut d = builder_document();
    d.header.promulgation_info.date = date!(0000 - 01 - 01);
    assert_eq!(refused(&d).code, Code::ValueInvalid);
}

#[test]
fn unassigned_status_codes_are_not_written() {
    for n in [7, 8, 9, 10, 11, 12, 14] {
        let s = samples::status(StatusCode::from_number(n).unwrap());
        let e = edxml::write_status(&s).unwrap_err();
        assert_eq!(e.code, Code::StatusCodeUnknown);
        assert_eq!(e.path, format!("{MH}/StatusCode"));
    }
}

#[test]
fn business_blocks_must_fit_their_type() {
    let mut d = samples::update();
    d.business.as_mut().unwrap().document_info = None;
    assert_eq!(
        refused(&d).to_string(),
        "edXMLEnvelope/edXMLHeader/TraceHeaderList/Bussiness/BussinessDocumentInfo: missing"
    );
    let mut d = samples::replacement();
    d.business.as_mut().unwrap().replacements.clear();
    assert_eq!(refused(&d).code, Code::ElementMissing);
    let mut d = samples::new_document();
    d.business.as_mut().unwrap().replacements = vec![ReplacementInfo {
        document_id: "x".into(),
        organ_ids: vec![OrganId::parse_strict("000.00.00.H41").unwrap()],
    }];
    assert_eq!(refused(&d).code, Code::ValueInvalid);
    let mut d = samples::revocation();
    d.business = Some(Business::replacement(
        "x",
        "y",
        vec![ReplacementInfo {
            document_id: "z".into(),
            organ_ids: Vec::new(),
        }],
    ));
    assert_eq!(refused(&d).code, Code::ElementMissing);
}

#[test]
fn content_ids_must_be_cid_and_unique() {
    let mut d = builder_document();
    d.attachments = vec![
        Attachment::new("a.pdf", "application/pdf", "", vec![1]),
        Attachment::new("b.pdf", "application/pdf", "", vec![2]),
    ];
    assert!(d.attachments[0].content_id.starts_with("cid:"));
    assert_ne!(d.attachments[0].content_id, d.attachments[1].content_id);
    assert_stable(&d);
    d.attachments[1].content_id = d.attachments[0].content_id.clone();
    assert_eq!(refused(&d).code, Code::ValueInvalid);
    d.attachments[1].content_id = "b.pdf".into();
    assert_eq!(refused(&d).code, Code::ValueInvalid);
}

#[test]
fn follow_ups_reference_the_original() {
    let r = samples::revocation();
    assert_eq!(r.business_type(), BusinessDocType::Revocation);
    assert_eq!(
        r.business.as_ref().unwrap().document_id.as_deref(),
        Some(samples::new_document_id().as_str())
    );
    assert_eq!(r.header, samples::new_document().header);
    assert_stable(&r);
    assert_stable(&samples::update());
    assert_stable(&samples::replacement());
}

fn arbitrary_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ \t\r\n<>&\"'a-zđĐăâêôơưạảấầẩẫậ]{0,40}",
        "\\PC{0,60}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any text either is refused with a clear code or survives write → read → write exactly.
    #[test]
    fn text_values_round_trip(subject in arbitrary_text(), content in arbitrary_text(), name in arbitrary_text()) {
        let mut d = builder_document();
        d.header.subject = subject.clone();
        d.header.content = Some(content.clone());
        d.header.signer_info.full_name = name.clone();
        match edxml::write_document(&d) {
            Err(e) => prop_assert!(
                matches!(e.code, Code::ValueInvalid | Code::ElementMissing),
                "unexpected {e}"
            ),
            Ok(bytes) => {
                let back = read(&bytes);
                // A signer with no name is the one thing flagged.
                let kinds: Vec<_> = back.warnings().iter().map(|w| w.kind).collect();
                if name.trim().is_empty() {
                    prop_assert_eq!(kinds, [edxml::WarningKind::EmptyElement]);
                } else {
                    prop_assert!(kinds.is_empty(), "{:?}", back.warnings());
                }
                let h = &back.as_document().unwrap().header;
                prop_assert_eq!(&h.subject, subject.trim());
                let content = content.trim();
                prop_assert_eq!(h.content.as_deref(), (!content.is_empty()).then_some(content));
                prop_assert_eq!(&h.signer_info.full_name, name.trim());
                prop_assert_eq!(edxml::write(&back).unwrap(), bytes);
            }
        }
    }
}

/// Lists, with Python's `zipfile` (not our reader), each attachment of `package` in manifest
/// order: its `ContentType` label, and the entry names and contents of its decoded bytes when
/// they are a zip (`null` when not).
const PY_LIST_ENTRIES: &str = r#"
import base64, io, json, sys, zipfile
import xml.etree.ElementTree as ET
local = lambda t: t.rsplit('}', 1)[-1]
text = lambda el, n: next(((c.text or '') for c in el if local(c.tag) == n), None)
out = []
for a in ET.parse(sys.argv[1]).getroot().iter():
    if local(a.tag) != 'Attachment':
        continue
    data = base64.b64decode(text(a, 'ContentTransferEncoded'))
    entries = None
    if zipfile.is_zipfile(io.BytesIO(data)):
        z = zipfile.ZipFile(io.BytesIO(data))
        entries = [[i.filename, z.read(i).hex()] for i in z.infolist()]
    out.append({'label': text(a, 'ContentType'), 'entries': entries, 'hex': data.hex()})
print(json.dumps(out))
"#;

/// What the node writes is readable by VNPT's and Bkav's readers: each file in one zip entry
/// named `<uuid>.<ext>` (never the attachment's name, so no name makes or leaves a folder when
/// unzipped), and only a file named exactly `….zip` sent as it is, since those readers unzip
/// every other name (`Hồ sơ.ZIP` included, by a case-sensitive `endsWith(".zip")`): a zip of
/// the sender's own with entries such as `../../escape.txt` is never unzipped on their side.
/// Checked with Python's `zipfile`, independently of our reader.
#[test]
fn zip_entries_are_neutral_and_zip_files_travel_as_they_are() {
    let mut d = samples::new_document();
    d.attachments.clear();
    let inner = edxml::attachment::zip_single("bên trong.txt", b"abc").unwrap();
    let evil = edxml::attachment::zip_single("../../escape.txt", b"escaped").unwrap();
    for (name, data) in [
        ("Công văn.pdf", b"%PDF-1.4 first".to_vec()),
        ("Công văn (bản ký).pdf", b"%PDF-1.4 second".to_vec()),
        ("Phụ lục", b"no extension".to_vec()),
        ("Hồ sơ.ZIP", evil.clone()),
        ("Hồ sơ.Zip 2", inner.clone()),
        ("hồ sơ gốc.zip", inner.clone()),
    ] {
        d.attachments
            .push(Attachment::new(name, "application/pdf", "", data));
    }
    let bytes = edxml::write_document(&d).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.edxml");
    std::fs::write(&path, &bytes).unwrap();
    let o = std::process::Command::new("python3")
        .arg("-c")
        .arg(PY_LIST_ENTRIES)
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 6);
    let mut names = std::collections::HashSet::new();
    for (i, ext_expected) in ["pdf", "pdf", "", "zip", ""].into_iter().enumerate() {
        let a = &listed[i];
        assert_eq!(a["label"], "application/zip");
        let entries = a["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{a}");
        let entry = entries[0][0].as_str().unwrap();
        let (id, ext) = entry.split_once('.').unwrap_or((entry, ""));
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{entry}");
        assert_eq!(ext, ext_expected, "{entry}");
        assert!(names.insert(entry.to_owned()), "{entry} used twice");
        assert_eq!(
            entries[0][1].as_str().unwrap(),
            hex::encode(&d.attachments[i].data)
        );
    }
    // Exactly `….zip`: labelled zip, not wrapped: its bytes are the file, its entry its own.
    assert_eq!(listed[5]["label"], "application/zip");
    assert_eq!(listed[5]["hex"].as_str().unwrap(), hex::encode(&inner));
    assert_eq!(listed[5]["entries"][0][0], "bên trong.txt");
    // Our reader gives every file back as it was attached; the writer is deterministic.
    assert_eq!(read(&bytes), Package::Document(d.clone()));
    assert_eq!(edxml::write_document(&d).unwrap(), bytes);
}

/// Names that would harm a receiver are never written: a path, a hidden extension, and a
/// trailing dot or space, which a receiver drops only after its "not `.zip`, so unzip" rule
/// looked at the name (`evil.zip.` would unzip the sender's archive, `../..` entries and all).
#[test]
fn unsafe_attachment_names_are_refused() {
    for name in [
        "12/UBND-VP.pdf",
        "..\\x.pdf",
        "a\u{202E}fdp.exe",
        "..",
        "evil.zip.",
        "evil.zip ",
        "evil.zip\u{3000}",
        "Công văn. ",
    ] {
        let mut d = samples::new_document();
        d.attachments[0].name = name.into();
        let e = refused(&d);
        assert_eq!(e.code, Code::ValueInvalid, "{name:?}: {e}");
        assert!(e.path.ends_with("Reference[1]/AttachmentName"), "{e}");
    }
}

/// Two attachments a receiver would save under one file name (letter case and Unicode form
/// aside, as NTFS, APFS and exFAT compare names; the name as written) are never written: one
/// would overwrite the other in the receiver's folder.
#[test]
fn attachment_names_that_are_one_file_name_are_refused() {
    let cases: [(&[&str], usize, usize); 4] = [
        (&["a.zip", "a.zip", "a.zip"], 1, 0),
        (&["a.pdf", "b.pdf", "B.PDF"], 2, 1),
        (&["Hồ sơ.pdf", "Ho\u{302}\u{300} so\u{31b}.PDF"], 1, 0),
        (&["  a.pdf", "a.pdf"], 1, 0),
    ];
    for (names, later, earlier) in cases {
        let mut d = samples::new_document();
        d.attachments = names
            .iter()
            .enumerate()
            .map(|(i, n)| Attachment::new(*n, "application/pdf", "", vec![i as u8]))
            .collect();
        let e = refused(&d);
        assert_eq!(e.code, Code::ValueInvalid, "{names:?}: {e}");
        assert!(
            e.path
                .ends_with(&format!("Reference[{}]/AttachmentName", later + 1)),
            "{e}"
        );
        assert!(
            e.problem.contains(&format!(
                "Reference[{}]'s ({:?})",
                earlier + 1,
                names[earlier]
            )),
            "{e}"
        );
    }
}
