//! Interop with an independent XML-DSig implementation (xmlsec1), both directions.
//!
//! `lienthong sign` output must verify with `xmlsec1 --verify` trusting only the test root, and
//! packages signed by `xmlsec1 --sign` from templates must verify with `lienthong verify`.

mod common;

use common::*;
use std::path::Path;

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n";

fn docx() -> Vec<u8> {
    // Binary content with every byte value, so base64 and zipping are exercised.
    (0..=255u8).cycle().take(5000).collect()
}

/// The shapes every direction is tried with.
fn shapes() -> Vec<(&'static str, String)> {
    let docx = docx();
    let files = [
        File {
            name: "Công văn 125.pdf",
            mime: "application/pdf",
            data: PDF,
        },
        File {
            name: "Phụ lục.docx",
            mime: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            data: &docx,
        },
        File {
            name: "ghi-chú.txt",
            mime: "text/plain",
            data: "Ghi chú: hạn chót 30/11/2026 <&>".as_bytes(),
        },
    ];
    vec![
        (
            "three attachments, Vietnamese",
            package(&Shape {
                files: &files,
                ..Shape::default()
            }),
        ),
        (
            "edXML: prefix on every element",
            package(&Shape {
                prefix: "edXML",
                files: &files[..1],
                ..Shape::default()
            }),
        ),
        (
            "namespace declared on the envelope",
            package(&Shape {
                ns_on_envelope: true,
                files: &files[..2],
                ..Shape::default()
            }),
        ),
        (
            "comments and CDATA",
            package(&Shape {
                prolog: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- xuất từ iDesk 6 -->\n",
                extra_header: "<!-- ghi chú của văn thư --><Content><![CDATA[Nội dung <b>in đậm</b> & \"trích\"]]></Content>",
                files: &files[2..],
                ..Shape::default()
            }),
        ),
        (
            "CRLF line ends",
            package(&Shape {
                eol: "\r\n",
                files: &files[..1],
                ..Shape::default()
            }),
        ),
        (
            "BOM before the declaration",
            package(&Shape {
                prolog: "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n",
                ..Shape::default()
            }),
        ),
    ]
}

#[test]
fn lienthong_signs_and_xmlsec1_verifies() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (what, xml)) in shapes().into_iter().enumerate() {
        let input = dir.path().join(format!("in{i}.edxml"));
        let output = dir.path().join(format!("out{i}.edxml"));
        std::fs::write(&input, xml).unwrap();
        lienthong_sign(&input, &output, "stttt-gialai");
        let (ok, out) = xmlsec_verify(&output, &[]);
        assert!(ok, "{what}: xmlsec1 refused our signature:\n{out}");
        let (ok, out) = xmlsec_verify(&output, &["--enabled-reference-uris", "empty"]);
        assert!(
            ok,
            "{what}: xmlsec1 (--enabled-reference-uris empty) refused:\n{out}"
        );
        let (ok, line) = lienthong_verify(&output, &[]);
        assert!(ok, "{what}: lienthong refused its own signature: {line}");
        // And a one-byte change in the subject is caught by both.
        let signed = std::fs::read_to_string(&output).unwrap();
        let tampered = signed.replacen("Gia Lai</", "Gia Lại</", 1);
        assert_ne!(signed, tampered);
        std::fs::write(&output, tampered).unwrap();
        assert!(
            !xmlsec_verify(&output, &[]).0,
            "{what}: xmlsec1 accepted a tampered package"
        );
        let (ok, line) = lienthong_verify(&output, &[]);
        assert!(!ok && line.starts_with("DIGEST_MISMATCH"), "{what}: {line}");
    }
}

/// A signature template for `xmlsec1 --sign`.
struct Template {
    what: &'static str,
    /// Prefix for the dsig elements (`""`: default namespace).
    prefix: &'static str,
    c14n: &'static str,
    /// Reference transform after enveloped-signature (`None`: enveloped only).
    transform: Option<&'static str>,
    /// Extra content for the c14n transform element (an InclusiveNamespaces list).
    transform_param: &'static str,
}

const EXC: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const EXC_WC: &str = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";
const INC: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const INC_WC: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments";

fn template(t: &Template) -> String {
    let p = if t.prefix.is_empty() {
        String::new()
    } else {
        format!("{}:", t.prefix)
    };
    let ns = if t.prefix.is_empty() {
        "xmlns=\"http://www.w3.org/2000/09/xmldsig#\"".to_owned()
    } else {
        format!("xmlns:{}=\"http://www.w3.org/2000/09/xmldsig#\"", t.prefix)
    };
    let transform = match t.transform {
        Some(uri) => format!(
            "<{p}Transform Algorithm=\"{uri}\">{}</{p}Transform>",
            t.transform_param
        ),
        None => String::new(),
    };
    format!(
        "<{p}Signature {ns}><{p}SignedInfo><{p}CanonicalizationMethod Algorithm=\"{c14n}\"/>\
         <{p}SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/>\
         <{p}Reference URI=\"\"><{p}Transforms><{p}Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>{transform}</{p}Transforms>\
         <{p}DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><{p}DigestValue/></{p}Reference></{p}SignedInfo>\
         <{p}SignatureValue/><{p}KeyInfo><{p}X509Data><{p}X509Certificate/></{p}X509Data></{p}KeyInfo></{p}Signature>",
        c14n = t.c14n
    )
}

fn xmlsec_sign(tmpl: &Path, out: &Path) {
    let key = format!(
        "{},{},{}",
        pki("stttt-gialai.key.pem").display(),
        pki("stttt-gialai.cert.pem").display(),
        pki("chain.pem").display()
    );
    let o = tool("xmlsec1", "xmlsec1")
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(key)
        .arg("--output")
        .arg(out)
        .arg(tmpl)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "xmlsec1 --sign failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
}

/// Inserts `sig` as the last child of edXMLHeader.
fn with_signature(xml: &str, sig: &str) -> String {
    let close = xml
        .find("</edXMLHeader>")
        .or_else(|| xml.find("</edXML:edXMLHeader>"))
        .expect("a header");
    let mut s = xml.to_owned();
    s.insert_str(close, sig);
    s
}

#[test]
fn xmlsec1_signs_and_lienthong_verifies() {
    let templates = [
        Template {
            what: "exclusive, default namespace",
            prefix: "",
            c14n: EXC,
            transform: Some(EXC),
            transform_param: "",
        },
        Template {
            what: "inclusive, ds: prefix",
            prefix: "ds",
            c14n: INC,
            transform: Some(INC),
            transform_param: "",
        },
        Template {
            what: "enveloped only (implicit inclusive)",
            prefix: "ds",
            c14n: INC,
            transform: None,
            transform_param: "",
        },
        Template {
            what: "with comments",
            prefix: "ds",
            c14n: INC_WC,
            transform: Some(EXC_WC),
            transform_param: "",
        },
        Template {
            what: "exclusive with PrefixList",
            prefix: "ds",
            c14n: EXC,
            transform: Some(EXC),
            transform_param: "<ec:InclusiveNamespaces xmlns:ec=\"http://www.w3.org/2001/10/xml-exc-c14n#\" PrefixList=\"edXML #default\"/>",
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for t in &templates {
        for (what, xml) in shapes() {
            n += 1;
            let tmpl = dir.path().join(format!("t{n}.xml"));
            let out = dir.path().join(format!("s{n}.edxml"));
            std::fs::write(&tmpl, with_signature(&xml, &template(t))).unwrap();
            xmlsec_sign(&tmpl, &out);
            let (ok, line) = lienthong_verify(&out, &[]);
            assert!(
                ok,
                "{} / {what}: lienthong refused xmlsec1's signature: {line}",
                t.what
            );
            // The same package changed after xmlsec1 signed it: xmlsec1 itself and lienthong
            // both refuse it, lienthong with the digest's code.
            let signed = std::fs::read_to_string(&out).unwrap();
            let tampered = signed.replacen("Gia Lai</", "Gia Lại</", 1);
            assert_ne!(signed, tampered, "{} / {what}: nothing to tamper", t.what);
            let bad = dir.path().join(format!("x{n}.edxml"));
            std::fs::write(&bad, tampered).unwrap();
            assert!(
                !xmlsec_verify(&bad, &[]).0,
                "{} / {what}: xmlsec1 accepted its own signature over changed content",
                t.what
            );
            let (ok, line) = lienthong_verify(&bad, &[]);
            assert!(
                !ok && line.starts_with("DIGEST_MISMATCH"),
                "{} / {what}: a tampered xmlsec1-signed package: {line}",
                t.what
            );
        }
    }
}

#[test]
fn rsa_sha1_from_xmlsec1_is_refused_by_default_and_accepted_under_the_legacy_policy() {
    let dir = tempfile::tempdir().unwrap();
    let t = Template {
        what: "sha1",
        prefix: "ds",
        c14n: EXC,
        transform: Some(EXC),
        transform_param: "",
    };
    let sig = template(&t)
        .replace(
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        )
        .replace(
            "http://www.w3.org/2001/04/xmlenc#sha256",
            "http://www.w3.org/2000/09/xmldsig#sha1",
        );
    let (_, xml) = shapes().remove(0);
    let tmpl = dir.path().join("t.xml");
    let out = dir.path().join("s.edxml");
    std::fs::write(&tmpl, with_signature(&xml, &sig)).unwrap();
    xmlsec_sign(&tmpl, &out);
    let (ok, line) = lienthong_verify(&out, &[]);
    assert!(!ok && line.starts_with("ALGORITHM_NOT_ALLOWED"), "{line}");
    let (ok, line) = lienthong_verify(&out, &["--allow-sha1"]);
    assert!(ok, "{line}");
}

/// Unsigned additions to a package xmlsec1 signed: comments in the content, after the document
/// element and inside `Signature`, a processing instruction and an `Id` inside `Signature`, an
/// `X509SubjectName`, and (where `SignedInfo` is canonicalised exclusively, so that it does not
/// inherit `xml:*` attributes) `xml:base` on `Signature`.
fn mess(signed: &str, exclusive: bool) -> String {
    let value = signed.find("SignatureValue").unwrap();
    let lt = signed[..value].rfind('<').unwrap();
    let p = &signed[lt + 1..value];
    let sig = signed.find(&format!("<{p}Signature ")).unwrap();
    let mut s = signed.to_owned();
    s.insert_str(lt, "<!-- ký duyệt --><?relay hop=\"1\"?>");
    let data = s.find(&format!("<{p}X509Data>")).unwrap() + format!("<{p}X509Data>").len();
    s.insert_str(
        data,
        &format!("<{p}X509SubjectName>CN=Giả mạo</{p}X509SubjectName>"),
    );
    let attrs = if exclusive {
        " Id=\"relay-1\" xml:base=\"http://relay.example/\""
    } else {
        " Id=\"relay-1\""
    };
    s.insert_str(sig + format!("<{p}Signature").len(), attrs);
    s.insert_str(sig, "<!-- relay: trước chữ ký -->");
    s.push_str("<!-- relay: sau gói tin -->\n");
    s
}

/// What the node keeps of a messy package signed by another implementation verifies with that
/// implementation: every template (inclusive and exclusive, prefixed and not, with comments, with
/// a PrefixList) on two shapes, the unsigned additions gone, the signed identity unchanged.
#[test]
fn the_kept_form_of_a_messy_package_verifies_with_xmlsec1() {
    use lienthong::pki::TrustStore;
    use lienthong::verify::{Options, verify_package};
    let trust = TrustStore::from_path(&pki("root-ca.cert.pem")).unwrap();
    let opts = Options::new(&trust);
    let templates = [
        ("exclusive", "", EXC, Some(EXC), ""),
        ("inclusive, ds:", "ds", INC, Some(INC), ""),
        ("enveloped only", "ds", INC, None, ""),
        ("with comments", "ds", INC_WC, Some(EXC_WC), ""),
        (
            "exclusive with PrefixList",
            "ds",
            EXC,
            Some(EXC),
            "<ec:InclusiveNamespaces xmlns:ec=\"http://www.w3.org/2001/10/xml-exc-c14n#\" PrefixList=\"edXML #default\"/>",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for (what, prefix, c14n, transform, transform_param) in templates {
        let t = Template {
            what,
            prefix,
            c14n,
            transform,
            transform_param,
        };
        for (shape, xml) in shapes()
            .into_iter()
            .filter(|(s, _)| s.starts_with("comments and CDATA") || s.starts_with("edXML: prefix"))
        {
            n += 1;
            let tmpl = dir.path().join(format!("t{n}.xml"));
            let signed = dir.path().join(format!("s{n}.edxml"));
            std::fs::write(&tmpl, with_signature(&xml, &template(&t))).unwrap();
            xmlsec_sign(&tmpl, &signed);
            let signed = std::fs::read_to_string(&signed).unwrap();
            let identity = verify_package(signed.as_bytes(), &opts)
                .unwrap()
                .signed_identity_hex();
            let messy = mess(&signed, c14n == EXC);
            let v = verify_package(messy.as_bytes(), &opts)
                .unwrap_or_else(|e| panic!("{what} / {shape}: the messy package: {e}"));
            assert_eq!(v.signed_identity_hex(), identity, "{what} / {shape}");
            assert!(v.signature.archive.signature_rebuilt(), "{what} / {shape}");
            let kept = String::from_utf8(v.kept(messy.clone().into_bytes())).unwrap();
            for unsigned in ["relay", "ký duyệt", "Giả mạo", "X509SubjectName", "xuất từ"]
            {
                assert!(
                    !kept.contains(unsigned),
                    "{what} / {shape}: kept {unsigned:?}:\n{kept}"
                );
            }
            let file = dir.path().join(format!("k{n}.edxml"));
            std::fs::write(&file, &kept).unwrap();
            let (ok, out) = xmlsec_verify(&file, &[]);
            assert!(
                ok,
                "{what} / {shape}: xmlsec1 refused the kept form:\n{out}\n{kept}"
            );
            let (ok, line) = lienthong_verify(&file, &[]);
            assert!(ok, "{what} / {shape}: {line}");
            let again = verify_package(kept.as_bytes(), &opts).unwrap();
            assert_eq!(again.signed_identity_hex(), identity, "{what} / {shape}");
        }
    }
    assert_eq!(n, 10);
}

/// A `Signature` that undeclares the default namespace changes what an inclusive canonical
/// `SignedInfo` inherits: the rebuilt element must undeclare it too (a wrapper with only the
/// `ds` binding would put the edXML namespace in scope and change the signed bytes).
#[test]
fn a_signature_that_undeclares_the_default_namespace_is_rebuilt_faithfully() {
    use lienthong::pki::TrustStore;
    use lienthong::verify::{Options, verify_package};
    let trust = TrustStore::from_path(&pki("root-ca.cert.pem")).unwrap();
    let opts = Options::new(&trust);
    let t = Template {
        what: "inclusive, ds:, xmlns=\"\"",
        prefix: "ds",
        c14n: INC,
        transform: Some(INC),
        transform_param: "",
    };
    let open = "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">";
    let sig = template(&t).replacen(
        open,
        "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" xmlns=\"\">",
        1,
    );
    let (_, xml) = shapes().remove(0);
    assert!(
        xml.contains("<edXML xmlns="),
        "the shape has a default namespace"
    );
    let dir = tempfile::tempdir().unwrap();
    let tmpl = dir.path().join("t.xml");
    let signed = dir.path().join("s.edxml");
    std::fs::write(&tmpl, with_signature(&xml, &sig)).unwrap();
    xmlsec_sign(&tmpl, &signed);
    let signed = std::fs::read_to_string(&signed).unwrap();
    let messy = mess(&signed, false);
    let v = verify_package(messy.as_bytes(), &opts).unwrap();
    assert!(v.signature.archive.signature_rebuilt());
    let kept = String::from_utf8(v.kept(messy.clone().into_bytes())).unwrap();
    assert!(kept.contains("xmlns=\"\""), "{kept}");
    assert!(
        !kept.contains("X509SubjectName") && !kept.contains("relay"),
        "{kept}"
    );
    let file = dir.path().join("k.edxml");
    std::fs::write(&file, &kept).unwrap();
    let (ok, out) = xmlsec_verify(&file, &[]);
    assert!(ok, "xmlsec1 refused the kept form:\n{out}\n{kept}");
    let again = verify_package(kept.as_bytes(), &opts).unwrap();
    assert_eq!(again.signed_identity_hex(), v.signed_identity_hex());
}
