//! The negative corpus of the format core: every way a package can be forged, malformed or
//! hostile, each with the exact error code it must be refused with. Shared by
//! `tests/negative_corpus.rs` (verified with the library) and `tests/node_integration.rs` (posted
//! to a node's peer endpoint over the wire).
//!
//! Every package is from Sở Thông tin và Truyền thông tỉnh Gia Lai (`000.00.05.H21`) to Ủy ban
//! nhân dân tỉnh Nghệ An (`000.00.00.H41`), signed with the `stttt-gialai` test identity unless
//! the case says otherwise.

use super::*;
use lienthong::Code;
use lienthong::dsig::sign_package;
use lienthong::edxml::xml::Limits;
use lienthong::signer::KeyFileSigner;

pub fn signer(who: &str) -> KeyFileSigner {
    KeyFileSigner::from_files(
        &pki(&format!("{who}.key.pem")),
        &pki(&format!("{who}.cert.pem")),
        Some(&pki("chain.pem")),
    )
    .expect("test identity loads")
}

pub fn sign_as(xml: &str, who: &str) -> String {
    let signed = sign_package(xml.as_bytes(), &signer(who), &Limits::default()).expect("signs");
    String::from_utf8(signed).expect("utf-8")
}

pub fn sign(xml: &str) -> String {
    sign_as(xml, "stttt-gialai")
}

pub fn files<'a>(a: &'a [u8], b: &'a [u8]) -> [File<'a>; 2] {
    [
        File {
            name: "a.pdf",
            mime: "application/pdf",
            data: a,
        },
        File {
            name: "b.txt",
            mime: "text/plain",
            data: b,
        },
    ]
}

pub fn good() -> String {
    package(&Shape {
        files: &files(b"%PDF-1.4 first file", b"second file"),
        ..Shape::default()
    })
}

pub fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub fn zipped(name: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    w.start_file(name, opts).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap().into_inner()
}

pub fn status_package(code: &str, from: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<edXML xmlns=\"{EDXML_NS}\"><edXMLEnvelope><edXMLHeader><MessageHeader>\
         <From><OrganId>{from}</OrganId><OrganName>Ủy ban nhân dân tỉnh Nghệ An</OrganName></From>\
         <ResponseFor><OrganId>000.00.05.H21</OrganId><Code>125/STTTT-CĐS</Code><PromulgationDate>2026/11/25</PromulgationDate>\
         <DocumentId>000.00.05.H21,2026/11/25,125/STTTT-CĐS</DocumentId></ResponseFor>\
         <StatusCode>{code}</StatusCode><Description>Đã đến</Description><Timestamp>2026/11/25 09:30:00</Timestamp>\
         </MessageHeader></edXMLHeader></edXMLEnvelope></edXML>\n"
    )
}

pub struct Case {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub code: Code,
    /// The verification limits the case needs (`Limits::default()` for most).
    pub limits: Limits,
    /// Whether the case needs strict verification (`Options::strict`).
    pub strict: bool,
}

pub fn case(name: &'static str, bytes: impl Into<Vec<u8>>, code: Code) -> Case {
    Case {
        name,
        bytes: bytes.into(),
        code,
        limits: Limits::default(),
        strict: false,
    }
}

pub fn corpus() -> Vec<Case> {
    let signed = sign(&good());
    let sig_start = signed.find("<Signature").unwrap();
    let sig_end = signed.find("</Signature>").unwrap() + "</Signature>".len();
    let signature = &signed[sig_start..sig_end];
    let unsigned = format!("{}{}", &signed[..sig_start], &signed[sig_end..]);
    let edit = |from: &str, to: &str| {
        assert!(signed.contains(from), "corpus edit target {from:?} missing");
        signed.replacen(from, to, 1)
    };
    let attach_a = b64(b"%PDF-1.4 first file");
    let attach_b = b64(b"second file");
    let mut c = vec![
        case("tampered subject", edit("Nền tảng", "Nen tang"), Code::DigestMismatch),
        case(
            "tampered attachment byte",
            edit(&attach_a, &format!("{}Q{}", &attach_a[..4], &attach_a[5..])),
            Code::DigestMismatch,
        ),
        case(
            "swapped attachments",
            edit(&attach_a, "@@A@@").replacen(&attach_b, &attach_a, 1).replacen("@@A@@", &attach_b, 1),
            Code::DigestMismatch,
        ),
        case(
            "tampered signature value",
            {
                let at = signed.find("<SignatureValue>").unwrap() + "<SignatureValue>".len();
                let mut s = signed.clone().into_bytes();
                s[at + 10] = if s[at + 10] == b'A' { b'B' } else { b'A' };
                s
            },
            Code::SignatureInvalid,
        ),
        case("no signature", unsigned.clone(), Code::SignatureMissing),
        case(
            "signature moved into MessageHeader",
            unsigned.replacen("</MessageHeader>", &format!("{signature}</MessageHeader>"), 1),
            Code::SignatureMisplaced,
        ),
        case(
            "signature moved after the envelope",
            unsigned.replacen("</edXMLEnvelope>", &format!("</edXMLEnvelope>{signature}"), 1),
            Code::SignatureMisplaced,
        ),
        case(
            "signature duplicated",
            edit("</edXMLHeader>", &format!("{signature}</edXMLHeader>")),
            Code::SignatureDuplicate,
        ),
        case(
            "wrapping: a second header before the signed one",
            edit(
                "<edXMLHeader>",
                "<edXMLHeader><MessageHeader><Subject>Giả mạo</Subject></MessageHeader></edXMLHeader><edXMLHeader>",
            ),
            Code::ElementDuplicate,
        ),
        case(
            "wrapping: a second envelope",
            edit("<edXMLEnvelope>", "<edXMLEnvelope><edXMLHeader/></edXMLEnvelope><edXMLEnvelope>"),
            Code::ElementDuplicate,
        ),
        case(
            "two references",
            {
                let r0 = signed.find("<Reference").unwrap();
                let r1 = signed.find("</Reference>").unwrap() + "</Reference>".len();
                let reference = signed[r0..r1].to_owned();
                edit("</SignedInfo>", &format!("{reference}</SignedInfo>"))
            },
            Code::ReferenceInvalid,
        ),
        case("reference to an id", edit("<Reference URI=\"\">", "<Reference URI=\"#doc\">"), Code::ReferenceInvalid),
        case(
            "extra XPath transform",
            edit(
                "</Transforms>",
                "<Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"><XPath>not(ancestor-or-self::*)</XPath></Transform></Transforms>",
            ),
            Code::TransformNotAllowed,
        ),
        case(
            "XSLT in place of the canonicalisation",
            edit(
                "<Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"></Transform>",
                "<Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xslt-19991116\"></Transform>",
            ),
            Code::TransformNotAllowed,
        ),
        case(
            "no enveloped-signature transform",
            edit(
                "<Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"></Transform>",
                "",
            ),
            Code::TransformNotAllowed,
        ),
        case(
            "RSA-SHA1 under the default policy",
            edit("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2000/09/xmldsig#rsa-sha1"),
            Code::AlgorithmNotAllowed,
        ),
        case(
            "HMAC signature method",
            edit("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2000/09/xmldsig#hmac-sha1"),
            Code::AlgorithmNotAllowed,
        ),
        case(
            "KeyValue-only key",
            {
                let k0 = signed.find("<KeyInfo>").unwrap();
                let k1 = signed.find("</KeyInfo>").unwrap() + "</KeyInfo>".len();
                format!(
                    "{}<KeyInfo><KeyValue><RSAKeyValue><Modulus>AQAB</Modulus><Exponent>AQAB</Exponent></RSAKeyValue></KeyValue></KeyInfo>{}",
                    &signed[..k0],
                    &signed[k1..]
                )
            },
            Code::KeyInfoNotAllowed,
        ),
        case(
            "RetrievalMethod",
            edit("<KeyInfo>", "<KeyInfo><RetrievalMethod URI=\"http://127.0.0.1/key\"/>"),
            Code::KeyInfoNotAllowed,
        ),
        case(
            "Object inside the signature",
            edit("</KeyInfo>", "</KeyInfo><Object Id=\"doc\"><Subject>Giả mạo</Subject></Object>"),
            Code::ReferenceInvalid,
        ),
        case("signer from an untrusted CA", sign_as(&good(), "untrusted"), Code::CertUntrusted),
        case("expired certificate", sign_as(&good(), "expired"), Code::CertExpired),
        case("certificate not yet valid", sign_as(&good(), "not-yet-valid"), Code::CertNotYetValid),
        case("CA certificate as signer", sign_as(&good(), "ca-as-signer"), Code::CertIsCa),
        case("wrong key usage", sign_as(&good(), "wrong-key-usage"), Code::CertKeyUsage),
        case("wrong extended key usage", sign_as(&good(), "wrong-eku"), Code::CertKeyUsage),
        case(
            "DTD with an entity",
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE edXML [<!ENTITY s \"Giả mạo\">]>{}",
                &signed[signed.find("<edXML").unwrap()..]
            ),
            Code::DtdForbidden,
        ),
        case(
            "billion laughs",
            {
                let mut d = String::from("<?xml version=\"1.0\"?><!DOCTYPE edXML [<!ENTITY l0 \"ha\">");
                for i in 1..10 {
                    d.push_str(&format!("<!ENTITY l{i} \"{}\">", format!("&l{};", i - 1).repeat(10)));
                }
                d.push_str(&format!("]><edXML xmlns=\"{EDXML_NS}\">&l9;</edXML>"));
                d
            },
            Code::DtdForbidden,
        ),
        case(
            "depth bomb",
            edit("<Subject>", &format!("{}<Subject>", "<x>".repeat(5000))).replacen(
                "</Subject>",
                &format!("</Subject>{}", "</x>".repeat(5000)),
                1,
            ),
            Code::DepthLimit,
        ),
        Case {
            name: "oversized package",
            bytes: signed.clone().into_bytes(),
            code: Code::PackageTooLarge,
            limits: Limits { max_package_bytes: signed.len() - 1, ..Limits::default() },
            strict: false,
        },
        case(
            "zip bomb attachment",
            sign(&good().replacen(&attach_b, &b64(&zipped("b.txt", &vec![0u8; 20 << 20])), 1)),
            Code::AttachmentTooLarge,
        ),
        case(
            "attachment without a manifest entry",
            sign(&good().replacen(
                "</AttachmentEncoded>",
                "<Attachment><ContentId>cid:11111111-1111-4111-8111-111111111111</ContentId><AttachmentName>x.txt</AttachmentName><ContentType>text/plain</ContentType><ContentTransferEncoded>eA==</ContentTransferEncoded></Attachment></AttachmentEncoded>",
                1,
            )),
            Code::ManifestMismatch,
        ),
        case(
            "manifest entry without an attachment",
            sign(&good().replacen(
                "</edXMLManifest>",
                "<Reference><ContentId>cid:11111111-1111-4111-8111-111111111111</ContentId><ContentType>text/plain</ContentType><AttachmentName>x.txt</AttachmentName></Reference></edXMLManifest>",
                1,
            )),
            Code::ManifestMismatch,
        ),
        case("invalid base64", sign(&good().replacen(&attach_b, "@@not base64@@", 1)), Code::Base64Invalid),
        case(
            "non-UTF-8 bytes",
            {
                let mut b = signed.clone().into_bytes();
                let at = signed.find("Nền").unwrap();
                b[at] = 0xC3;
                b[at + 1] = 0x28;
                b
            },
            Code::EncodingInvalid,
        ),
        Case {
            name: "unknown status code 07 (strict)",
            bytes: sign_as(&status_package("07", "000.00.00.H41"), "ubnd-nghean").into_bytes(),
            code: Code::StatusCodeUnknown,
            limits: Limits::default(),
            strict: true,
        },
        Case {
            name: "malformed OrganId (strict)",
            bytes: sign(&good().replacen("000.00.05.H21</OrganId>", "00.05.H21</OrganId>", 1)).into_bytes(),
            code: Code::OrganIdInvalid,
            limits: Limits::default(),
            strict: true,
        },
        case(
            "not an edXML package",
            "<?xml version=\"1.0\"?><html><body>Xin chào</body></html>",
            Code::NotEdxml,
        ),
    ];
    c.push(case(
        "cross-agency impersonation: Gia Lai's key, Nghệ An's code",
        sign(&good().replacen("000.00.05.H21</OrganId>", "000.00.00.H41</OrganId>", 1)),
        Code::SenderNotAuthorised,
    ));
    c.push(case(
        "polyglot: markup hidden before the XML declaration",
        format!("<edXML xmlns=\"{EDXML_NS}\"><![CDATA[{signed}"),
        Code::XmlMalformed,
    ));
    c.push(case(
        "attribute flood on one element",
        edit(
            "<Subject>",
            &format!(
                "<Subject{}>",
                (0..5000)
                    .map(|i| format!(" a{i}=\"x\""))
                    .collect::<String>()
            ),
        ),
        Code::ElementLimit,
    ));
    c.push(case(
        "namespace-declaration flood",
        edit(
            "<Subject>",
            &format!(
                "{}<Subject>",
                (0..200)
                    .map(|i| format!("<n{i} xmlns:p{i}=\"urn:x:{i}\"/>"))
                    .collect::<String>()
            ),
        ),
        Code::ElementLimit,
    ));
    c.push(case(
        "a comment inside SignatureValue",
        edit("<SignatureValue>", "<SignatureValue><!-- x -->"),
        Code::SignatureInvalid,
    ));
    c.push(case(
        "content smuggled in X509IssuerSerial",
        edit("<X509Data>", "<X509Data><X509IssuerSerial><Subject xmlns=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\">Giả mạo</Subject></X509IssuerSerial>"),
        Code::KeyInfoNotAllowed,
    ));
    c.push(case(
        "eleven certificates in KeyInfo",
        {
            let c0 = signed.find("<X509Certificate>").unwrap();
            let c1 = signed.find("</X509Certificate>").unwrap() + "</X509Certificate>".len();
            let cert = signed[c0..c1].to_owned();
            edit("</X509Data>", &format!("{}</X509Data>", cert.repeat(10)))
        },
        Code::KeyInfoNotAllowed,
    ));
    c.push(case(
        "an oversized InclusiveNamespaces PrefixList",
        edit(
            "<CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\">",
            &format!(
                "<CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"><ec:InclusiveNamespaces xmlns:ec=\"http://www.w3.org/2001/10/xml-exc-c14n#\" PrefixList=\"{}\"/>",
                (0..40).map(|i| format!("p{i}")).collect::<Vec<_>>().join(" ")
            ),
        ),
        Code::TransformNotAllowed,
    ));
    c.push(case(
        "malformed XML",
        edit("</Subject>", "</Subjekt>"),
        Code::XmlMalformed,
    ));
    // What looks like transport bytes but is signed (compare `transport_variants`): a processing
    // instruction is digested wherever it is, and SignedInfo is signed as canonicalised, which
    // keeps whitespace between its children, its attributes and its processing instructions.
    c.push(case(
        "a processing instruction after the document element",
        format!("{signed}<?relay hop=\"1\"?>\n"),
        Code::DigestMismatch,
    ));
    c.push(case(
        "whitespace between SignedInfo's children",
        edit(
            "</CanonicalizationMethod><SignatureMethod",
            "</CanonicalizationMethod>\n<SignatureMethod",
        ),
        Code::SignatureInvalid,
    ));
    c.push(case(
        "a processing instruction inside SignedInfo",
        edit("<SignatureMethod", "<?relay hop=\"1\"?><SignatureMethod"),
        Code::SignatureInvalid,
    ));
    c.push(case(
        "xml:base on SignedInfo",
        edit(
            "<SignedInfo>",
            "<SignedInfo xml:base=\"http://relay.example/\">",
        ),
        Code::SignatureInvalid,
    ));
    c
}

/// A package that differs from the signed corpus base (`sign(&good())`) only in bytes its
/// signature does not cover: it must verify, be the same package (same signed identity, so a
/// repeat and not a conflict), and be kept without the difference.
pub struct Variant {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    /// Whether its kept form is the base's, byte for byte (`false` where the difference is
    /// signed content written otherwise, e.g. a character reference, which is kept as written).
    pub kept_as_base: bool,
}

fn wrap(b64: &str, width: usize, eol: &str) -> String {
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(width)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!("{eol}{}{eol}", lines.join(eol))
}

/// The transport variants of the corpus base. Each says why it is not signed content:
/// - inside `Signature` only the canonical `SignedInfo`, the signature value (decoded) and the
///   signer's certificate chain count; the enveloped-signature transform removes the rest from
///   the digest and nothing else covers it;
/// - comments are never digested (`URI=""` selects the document without comments), wherever
///   they are, and `SignedInfo` is canonicalised here without comments;
/// - `SignedInfo` is covered as canonicalised: what canonicalisation normalises (attribute
///   quotes, whitespace in tags, empty elements) is not signed, everything it keeps is.
pub fn transport_variants() -> Vec<Variant> {
    let signed = sign(&good());
    let edit = |from: &str, to: &str| {
        assert!(
            signed.contains(from),
            "variant edit target {from:?} missing"
        );
        signed.replacen(from, to, 1)
    };
    let between = |open: &str, close: &str| {
        let a = signed.find(open).unwrap() + open.len();
        let b = a + signed[a..].find(close).unwrap();
        signed[a..b].to_owned()
    };
    let value = between("<SignatureValue>", "</SignatureValue>");
    let cert = between("<X509Certificate>", "</X509Certificate>");
    let rogue = {
        let pem = std::fs::read_to_string(pki("rogue-root.cert.pem")).unwrap();
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>()
    };
    let sig_open = "<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\">";
    let c14n_el = "<CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"></CanonicalizationMethod>";
    let v = |name, bytes: String| Variant {
        name,
        bytes: bytes.into_bytes(),
        kept_as_base: true,
    };
    vec![
        v("the base itself", signed.clone()),
        v(
            "SignatureValue re-wrapped at 64 columns",
            edit(&value, &wrap(&value, 64, "\n")),
        ),
        v(
            "a certificate re-wrapped at 76 columns with CRLF",
            edit(&cert, &wrap(&cert, 76, "\r\n")),
        ),
        v(
            "a comment after the document element",
            format!("{signed}<!-- chuyển tiếp qua trục liên thông -->\n"),
        ),
        v(
            "comments and blank lines before the document element",
            edit("?>\n<edXML", "?>\n<!-- xuất từ iDesk -->\n\n<edXML"),
        ),
        v(
            "a comment inside the signed content",
            edit("Nền tảng", "Nền<!-- đã duyệt: Giám đốc --> tảng"),
        ),
        v(
            "a comment and a processing instruction inside Signature",
            edit(
                "<SignatureValue>",
                "<!-- ký duyệt --><?relay hop=\"1\"?><SignatureValue>",
            ),
        ),
        v(
            "text inside Signature",
            edit("<SignatureValue>", "Giả mạo: đã phê duyệt<SignatureValue>"),
        ),
        v(
            "xml:base and Id on Signature",
            edit(
                sig_open,
                "<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\" Id=\"sig-1\" xml:base=\"http://relay.example/\">",
            ),
        ),
        v(
            "an extra X509SubjectName",
            edit(
                "<X509Data>",
                "<X509Data><X509SubjectName>CN=Giả mạo, O=Trục liên thông</X509SubjectName>",
            ),
        ),
        v(
            "a certificate offered that is not on the signer's path",
            edit(
                "</X509Data>",
                &format!("<X509Certificate>{rogue}</X509Certificate></X509Data>"),
            ),
        ),
        v(
            "a comment inside SignedInfo (canonicalised without comments)",
            edit("<SignatureMethod", "<!-- x --><SignatureMethod"),
        ),
        v(
            "SignedInfo written otherwise: single quotes, space in a tag, an empty element",
            edit(
                c14n_el,
                "<CanonicalizationMethod  Algorithm='http://www.w3.org/2001/10/xml-exc-c14n#' />",
            ),
        ),
        v(
            "everything at once",
            signed
                .replacen(&value, &wrap(&value, 76, "\r\n"), 1)
                .replacen(
                    sig_open,
                    "<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\" xml:base=\"x:/\"><!-- a -->",
                    1,
                )
                .replacen("<X509Data>", "<X509Data><X509SubjectName>CN=x</X509SubjectName>", 1)
                .replacen("Nền tảng", "Nền<!-- b --> tảng", 1)
                + "<!-- c -->",
        ),
        Variant {
            kept_as_base: false,
            ..v(
                "a character reference in place of a letter",
                edit("Gia Lai</Place>", "Gia L&#x61;i</Place>"),
            )
        },
    ]
}
