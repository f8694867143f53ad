//! What the writer produces is what `schemas/edxml-document.xsd` and `schemas/edxml-status.xsd`
//! describe: a variety of packages, each validated with `xmllint --schema`.
//!
//! Needs xmllint (Debian/Ubuntu: `apt-get install libxml2-utils`); without it the test fails
//! rather than passing silently.

use std::path::{Path, PathBuf};
use std::process::Command;

use lienthong::edxml::samples;
use lienthong::edxml::{
    self, Attachment, DocumentCode, DocumentPackage, OrganId, Organization, StatusCode,
    StatusPackage,
};
use time::macros::{date, datetime};

fn schema(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name)
}

fn xmllint() -> PathBuf {
    let fixed = Path::new("/usr/bin/xmllint");
    if fixed.exists() {
        return fixed.to_owned();
    }
    match Command::new("xmllint").arg("--version").output() {
        Ok(_) => PathBuf::from("xmllint"),
        Err(e) => panic!("xmllint not found ({e}): install libxml2-utils"),
    }
}

/// Validates `bytes` against `xsd`; returns xmllint's complaint if it does not validate.
fn validate(bytes: &[u8], xsd: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("package.edxml");
    std::fs::write(&file, bytes).unwrap();
    let out = Command::new(xmllint())
        .arg("--noout")
        .arg("--schema")
        .arg(schema(xsd))
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run xmllint ({e}): install libxml2-utils"));
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn assert_valid(label: &str, bytes: &[u8], xsd: &str) {
    if let Err(e) = validate(bytes, xsd) {
        panic!(
            "{label} does not validate against {xsd}:\n{e}\n{}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(4000)])
        );
    }
}

fn file(n: usize) -> Attachment {
    Attachment::new(
        format!("Tệp đính kèm {n}.pdf"),
        "application/pdf",
        format!("Tệp số {n}"),
        samples::tiny_pdf(&format!("tep {n}")),
    )
}

/// The smallest package the builder gives, with one non-standard recipient of another system.
fn minimal() -> DocumentPackage {
    let from = Organization::new(
        OrganId::parse_strict("000.00.00.H21").unwrap(),
        "Ủy ban nhân dân tỉnh Gia Lai",
    );
    let to = Organization::new(
        OrganId::parse_lenient("vxp.saas.03").unwrap(),
        "Hệ thống khác",
    );
    DocumentPackage::new(
        from,
        vec![to],
        DocumentCode::new(5, "UBND-KGVX"),
        date!(2024 - 01 - 02),
        "Về việc thử nghiệm",
        datetime!(2024-01-02 08:00:00),
    )
}

#[test]
fn documents_validate() {
    let mut cases: Vec<(String, DocumentPackage)> = Vec::new();
    for n in [0, 1, 3] {
        let mut d = samples::new_document();
        d.attachments = (1..=n).map(file).collect();
        cases.push((format!("document with {n} attachments"), d));
    }
    cases.push(("business type 0".into(), samples::new_document()));
    cases.push(("business type 1".into(), samples::revocation()));
    cases.push(("business type 2".into(), samples::update()));
    cases.push(("business type 3".into(), samples::replacement()));
    cases.push(("minimal document".into(), minimal()));
    let mut bare = minimal();
    bare.trace_headers.clear();
    bare.business = None;
    bare.header.document_id = None;
    cases.push(("document without trace list".into(), bare));
    let mut hub = samples::new_document();
    hub.trace_headers.push(edxml::TraceHeader {
        organ_id: None,
        timestamp: datetime!(2024-03-15 09:31:00),
    });
    cases.push(("document with a hub trace entry".into(), hub));
    let mut awkward = samples::new_document();
    awkward.header.content = Some("Dòng 1\r\nDòng 2 & <ghi chú> \"trích\"".into());
    cases.push(("document with markup characters".into(), awkward));

    for (label, d) in &cases {
        let bytes = edxml::write_document(d).unwrap();
        assert_valid(label, &bytes, "edxml-document.xsd");
    }
}

#[test]
fn every_status_code_validates() {
    for code in StatusCode::ASSIGNED {
        let bytes = edxml::write_status(&samples::status(code)).unwrap();
        assert_valid(&format!("status {code}"), &bytes, "edxml-status.xsd");
    }
    let mut plain = StatusPackage::for_document(
        &minimal(),
        samples::recipient(),
        StatusCode::Arrived,
        "",
        datetime!(2024-01-02 08:01:00),
    );
    assert_valid(
        "status with empty description",
        &edxml::write_status(&plain).unwrap(),
        "edxml-status.xsd",
    );
    plain.trace_headers.push(edxml::TraceHeader {
        organ_id: None,
        timestamp: datetime!(2024-01-02 08:01:05),
    });
    assert_valid(
        "status with a trace entry",
        &edxml::write_status(&plain).unwrap(),
        "edxml-status.xsd",
    );
}

#[test]
fn the_signature_is_allowed_as_last_child_of_the_header() {
    let sig = r#"<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/><SignatureValue>AAAA</SignatureValue></Signature>"#;
    for (xsd, bytes) in [
        (
            "edxml-document.xsd",
            edxml::write_document(&samples::new_document()).unwrap(),
        ),
        (
            "edxml-status.xsd",
            edxml::write_status(&samples::status(StatusCode::Arrived)).unwrap(),
        ),
    ] {
        let text = String::from_utf8(bytes)
            .unwrap()
            .replace("</edXMLHeader>", &format!("{sig}</edXMLHeader>"));
        assert_valid("signed package", text.as_bytes(), xsd);
    }
}

/// The schemas are not vacuous: they refuse what the writer would never produce.
#[test]
fn the_schemas_refuse_what_the_writer_never_writes() {
    let doc = String::from_utf8(edxml::write_document(&samples::new_document()).unwrap()).unwrap();
    let status =
        String::from_utf8(edxml::write_status(&samples::status(StatusCode::Arrived)).unwrap())
            .unwrap();
    let refused = [
        // A manifest reference without its attachment (keyref).
        (
            doc.replacen("cid:0b0f4e8e-6a52-4d43-9a7e-2f1c3d9b7a02", "cid:other", 1),
            "edxml-document.xsd",
        ),
        // Out of canonical order.
        (
            doc.replace("<DueDate>2024/03/29</DueDate>", "")
                .replace("<Subject>", "<DueDate>2024/03/29</DueDate><Subject>"),
            "edxml-document.xsd",
        ),
        // A non-standard sender.
        (
            doc.replacen("000.00.05.H21", "vxp.saas.03", 1),
            "edxml-document.xsd",
        ),
        // An attachment not labelled zip.
        (
            doc.replacen(
                "<ContentType>application/zip</ContentType>",
                "<ContentType>application/pdf</ContentType>",
                1,
            ),
            "edxml-document.xsd",
        ),
        // A date in the tolerated but not written form.
        (
            doc.replace("2024/03/29", "2024-03-29"),
            "edxml-document.xsd",
        ),
        // An unassigned status code.
        (
            status.replace("<StatusCode>01</StatusCode>", "<StatusCode>07</StatusCode>"),
            "edxml-status.xsd",
        ),
        // A document is not a status package.
        (doc.clone(), "edxml-status.xsd"),
    ];
    for (i, (text, xsd)) in refused.iter().enumerate() {
        assert!(
            validate(text.as_bytes(), xsd).is_err(),
            "case {i} validates against {xsd} although it should not"
        );
    }
}

#[test]
fn the_fixtures_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/edxml");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let xsd = if name.starts_with("document-") {
            "edxml-document.xsd"
        } else if name.starts_with("status-") {
            "edxml-status.xsd"
        } else {
            continue;
        };
        assert_valid(name, &std::fs::read(&path).unwrap(), xsd);
    }
}
