//! The "channel" trust mode (`[[peer]] xml_signature = "channel"`), end to end on real nodes over
//! loopback: Nghệ An receives, over mutual TLS as peer `gialai`, Sở TT&TT Gia Lai's documents
//! whose XML signature is a placeholder like the national platform's and the SDKs' (dummy
//! RSA-SHA1 values, a truncated certificate) or absent. From a node that declares `gialai` a
//! channel they are accepted and flagged as such in the stored row, the clerk and admin API
//! (checked against `schemas/openapi.yaml`), the audit record and `lienthong inbox show`; from
//! a node where `gialai` is an ordinary peer they are refused exactly as before. A channel
//! still speaks only for what it serves, a real signature that fails is refused from it, and a
//! second or misplaced `Signature` is refused as at `verify`. A real SDK package from the
//! corpus (`../shared/real-traffic`, see `a_real_sdk_package_over_a_channel_is_accepted_unchanged`)
//! goes through unchanged.

mod common;

use common::corpus::*;
use common::nodes::*;
use common::*;
use lienthong::store::{AuditQuery, InboxFilter, Store, UnverifiedSignature};
use lienthong::verify::{Options, verify_package};
use serde_json::Value;
use tokio::net::TcpListener;

const TOK_OPS: &str = "tok-ops-0123456789abcdef";

/// A Nghệ An node whose peer `gialai` serves the Gia Lai codes, declared a channel or not.
async fn start_nghean(channel: bool) -> TestNode {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl_url = format!("http://{}", reserve_port());
    start(l, move |d| {
        let mut text = config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", &gl_url, UBND_GL),
        );
        if channel {
            text.push_str("xml_signature = \"channel\"\n");
        }
        text + &admin_token("ops-1", TOK_OPS)
    })
    .await
}

/// The corpus document (Sở TT&TT Gia Lai to Ủy ban Nghệ An, unsigned) with its own số `n`,
/// claiming to come from `from`.
fn document(n: u32, from: &str) -> String {
    let doc = good()
        .replacen(
            &format!("{STTTT}</OrganId>"),
            &format!("{from}</OrganId>"),
            1,
        )
        .replace(
            ",125/STTTT-CĐS</DocumentId>",
            &format!(",{n}/STTTT-CĐS</DocumentId>"),
        )
        .replace(
            "<CodeNumber>125</CodeNumber>",
            &format!("<CodeNumber>{n}</CodeNumber>"),
        );
    assert!(doc.contains(&format!("<CodeNumber>{n}</CodeNumber>")));
    doc
}

/// The placeholder signature of SDK-built traffic (as in `vpcp-hub-2019-04-dc0bdef0.edxml`):
/// SHA-1 dummy values, a certificate cut after 11 characters. `xmlns` is its namespace
/// declaration: none (the edXML default namespace, as the platform writes it) or XML-DSig.
fn placeholder(xmlns: &str) -> String {
    format!(
        "<Signature{xmlns}><SignedInfo>\
         <CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\" />\
         <SignatureMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#rsa-sha1\" />\
         <Reference URI=\"\"><Transforms>\
         <Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\" />\
         <Transform Algorithm=\"http://www.w3.org/TR/xml-exc-c14n#\" /></Transforms>\
         <DigestMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#sha1\" />\
         <DigestValue>FwgIqsSYJshUS2+wlOM61L+q7Aw=</DigestValue></Reference></SignedInfo>\
         <SignatureValue>GbVb8n9+qFxz466Ag0sbpVdLPs2R0+9JBekp12UyarAZjoG0W/kPZZJ1auRZDcNc\
         rSwzgkQMpqrjwxcy3ejzbY/ON5USUPgoYNYM8p4wsgQpEAeQaZ+EWLkkEBxYjb+iWEiAjYuJI7gtJoOyENcOK4fO\
         </SignatureValue><KeyInfo><X509Data><X509SubjectName>CN=user05</X509SubjectName>\
         <X509Certificate>MIIFqTCCBJG</X509Certificate></X509Data></KeyInfo></Signature>"
    )
}

/// Our own package, signed by Sở TT&TT Gia Lai, with its Signature replaced by `with`.
fn signature_replaced(doc: &str, with: &str) -> Vec<u8> {
    let signed = sign_as(doc, "stttt-gialai");
    let start = signed
        .find("<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\">")
        .expect("the signature we wrote");
    let end = signed[start..].find("</Signature>").unwrap() + start + "</Signature>".len();
    format!("{}{with}{}", &signed[..start], &signed[end..]).into_bytes()
}

/// The three packages without a verifiable signature, each its own document: placeholder in
/// the edXML namespace, placeholder in the XML-DSig namespace, no signature at all.
fn unverifiable(base: u32) -> Vec<(&'static str, UnverifiedSignature, Vec<u8>)> {
    let dsig = " xmlns=\"http://www.w3.org/2000/09/xmldsig#\"";
    vec![
        (
            "placeholder (edXML namespace)",
            UnverifiedSignature::Placeholder,
            signature_replaced(&document(base, STTTT), &placeholder("")),
        ),
        (
            "placeholder (XML-DSig namespace)",
            UnverifiedSignature::Placeholder,
            signature_replaced(&document(base + 1, STTTT), &placeholder(dsig)),
        ),
        (
            "no signature",
            UnverifiedSignature::Absent,
            document(base + 2, STTTT).into_bytes(),
        ),
    ]
}

async fn audit_of(node: &TestNode, message_id: i64) -> Value {
    let records = node
        .store()
        .audit_records(&AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let r = records
        .iter()
        .find(|r| r.action == "document.receive" && r.entity_id == message_id.to_string())
        .unwrap_or_else(|| panic!("no document.receive record for message {message_id}"));
    serde_json::from_str(&r.detail).unwrap()
}

async fn inbox_len(node: &TestNode) -> usize {
    node.store()
        .list_inbox(NGHEAN, &InboxFilter::default())
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread")]
async fn placeholder_signed_and_unsigned_packages_from_a_channel_are_accepted_and_flagged() {
    let na = start_nghean(true).await;
    let http = ApiClient::new();
    let trust = trust();
    let db = common::store::Raw::connect(&na.node.config.node.store).await;
    for (what, expected, bytes) in unverifiable(301) {
        let (status, v) = push_as(&http, &na, "gialai", &bytes).await;
        assert_eq!(status, 200, "{what}: {v}");
        // The receipt is still ours, signed by Ủy ban Nghệ An.
        let receipt = v.as_str().expect("the receipt").to_owned();
        let r = verify_package(receipt.as_bytes(), &Options::new(&trust))
            .expect("our receipt verifies");
        assert_eq!(r.package.from().organ_id.as_str(), NGHEAN, "{what}");

        let item = na
            .store()
            .list_inbox(NGHEAN, &InboxFilter::default())
            .await
            .unwrap()
            .into_iter()
            .next()
            .unwrap();
        let id = item.message.id;
        // The row: the channel and the signature state, no signer, no signed identity.
        let row: (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        ) = on_raw!(&db, pool => sqlx::query_as(
            "SELECT channel, channel_signature, signer_subject, signed_content
                 FROM messages WHERE id = $1",
        )
        .bind(id)
        .fetch_one(pool)
        .await)
        .unwrap();
        assert_eq!(
            row,
            (
                Some("gialai".into()),
                Some(expected.as_str().into()),
                None,
                None
            ),
            "{what}"
        );
        // Kept as received: nothing in it was signed, so nothing is narrowed away.
        assert_eq!(na.store().message_bytes(id).await.unwrap(), bytes, "{what}");

        // The clerk API (every answer checked against the OpenAPI description).
        for url in [
            na.url(&format!("/api/v1/inbox/{id}")),
            na.url(&format!("/api/v1/inbox/{id}/revocation")),
        ] {
            let r = http.get(&url).bearer_auth(TOK_NGHEAN).send().await.unwrap();
            assert_eq!(r.status(), 200, "{what}: {url}");
            let v = json_of(r).await;
            let s = &v["signature"];
            assert_eq!(s["state"], "channel", "{what}: {v}");
            assert_eq!(s["channel"], "gialai", "{what}: {v}");
            assert_eq!(s["xml_signature"], expected.as_str(), "{what}: {v}");
            let d = s["description"].as_str().unwrap();
            assert!(d.contains("kênh kết nối gialai"), "{what}: {d}");
            assert!(!d.contains("hợp lệ"), "{what}: {d}");
            assert!(v.get("signer").is_none_or(Value::is_null), "{what}: {v}");
        }
        let r = http
            .get(na.url("/api/v1/inbox"))
            .bearer_auth(TOK_NGHEAN)
            .send()
            .await
            .unwrap();
        let list = json_of(r).await;
        let listed = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap();
        assert_eq!(listed["signature"]["state"], "channel", "{what}: {listed}");
        // The admin API.
        let r = http
            .get(na.url(&format!("/admin/v1/messages/{id}/revocation")))
            .bearer_auth(TOK_OPS)
            .send()
            .await
            .unwrap();
        let v = json_of(r).await;
        assert_eq!(v["signature"]["state"], "channel", "{what}: {v}");
        assert_eq!(v["certificates"], Value::Array(vec![]), "{what}: {v}");

        // The audit record.
        let detail = audit_of(&na, id).await;
        assert_eq!(detail["signature"]["state"], "channel", "{what}: {detail}");
        assert_eq!(detail["signature"]["channel"], "gialai", "{what}: {detail}");
        assert_eq!(
            detail["signature"]["xml_signature"],
            expected.as_str(),
            "{what}: {detail}"
        );
        assert!(detail["signer"].is_null(), "{what}: {detail}");

        // What a clerk reads on the command line.
        let o = bin()
            .args(["inbox", "show", "--node", &na.base, "--token", TOK_NGHEAN])
            .arg(id.to_string())
            .output()
            .unwrap();
        assert!(o.status.success(), "{what}: {}", stderr(&o));
        let first = stdout(&o).lines().next().unwrap_or("").to_owned();
        assert!(
            first.starts_with("Không có chữ ký số") || first.starts_with("Chữ ký số giả định"),
            "{what}: {first}"
        );
        assert!(first.contains("kênh kết nối gialai"), "{what}: {first}");
        assert!(!first.contains("hợp lệ"), "{what}: {first}");

        // The same package again is a repeat: the original receipt, nothing stored.
        let (status, again) = push_as(&http, &na, "gialai", &bytes).await;
        assert_eq!(status, 200, "{what}: {again}");
        assert_eq!(again.as_str(), Some(receipt.as_str()), "{what}");
    }
    assert_eq!(inbox_len(&na).await, 3);

    // A document properly signed is verified as from any peer, and recorded so.
    let signed = sign_as(&document(310, STTTT), "stttt-gialai");
    let (status, v) = push_as(&http, &na, "gialai", signed.as_bytes()).await;
    assert_eq!(status, 200, "{v}");
    let item = na
        .store()
        .list_inbox(NGHEAN, &InboxFilter::default())
        .await
        .unwrap()
        .remove(0);
    assert!(item.message.channel.is_none());
    assert!(item.message.signer_subject.is_some());
    let r = http
        .get(na.url(&format!("/api/v1/inbox/{}", item.message.id)))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    let v = json_of(r).await;
    assert_eq!(v["signature"]["state"], "verified", "{v}");
    assert!(
        audit_of(&na, item.message.id)
            .await
            .get("signature")
            .is_none()
    );
    na.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn from_a_channel_a_real_signature_that_fails_and_a_sender_it_does_not_serve_are_refused() {
    let na = start_nghean(true).await;
    let http = ApiClient::new();
    // A real certificate and a wrong value: signed, then changed. Tampering, not a placeholder.
    let signed = sign_as(&document(320, STTTT), "stttt-gialai");
    let changed = signed.replacen("Gia Lai</Place>", "Kon Tum</Place>", 1);
    assert_ne!(signed, changed);
    let (status, v) = push_as(&http, &na, "gialai", changed.as_bytes()).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("DIGEST_MISMATCH")),
        "{v}"
    );
    // A channel speaks only for what it serves (here the Gia Lai codes), signature or not.
    for (what, bytes) in [
        (
            "placeholder",
            signature_replaced(&document(321, "000.00.00.H22"), &placeholder("")),
        ),
        ("no signature", document(322, "000.00.00.H22").into_bytes()),
    ] {
        let (status, v) = push_as(&http, &na, "gialai", &bytes).await;
        assert_eq!(status, 403, "{what}: {v}");
        assert_eq!(v["code"], "PEER_NOT_AUTHORISED", "{what}: {v}");
    }
    // Addressed to nobody here.
    let elsewhere =
        document(323, STTTT).replacen(&format!("{NGHEAN}</OrganId>"), "000.00.00.H14</OrganId>", 1);
    let (status, v) = push_as(&http, &na, "gialai", elsewhere.as_bytes()).await;
    assert_eq!(v["code"], "NOT_ADDRESSED_HERE", "{status} {v}");
    assert_eq!(inbox_len(&na).await, 0);
    na.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn from_an_ordinary_peer_the_same_packages_are_refused_as_before() {
    let na = start_nghean(false).await;
    let http = ApiClient::new();
    let trust = trust();
    for (what, _, bytes) in unverifiable(330) {
        // The code the library's verification gives, unchanged by the channel mode.
        let before = verify_package(&bytes, &Options::new(&trust))
            .err()
            .unwrap_or_else(|| panic!("{what}: verifies"))
            .code();
        let (status, v) = push_as(&http, &na, "gialai", &bytes).await;
        assert!(status >= 400, "{what}: {status} {v}");
        assert_eq!(v["code"], before.as_str(), "{what}: {v}");
    }
    assert_eq!(inbox_len(&na).await, 0);
    na.shutdown().await;
}

/// The rule on where a signature is holds for a channel too: `verify` refuses a second
/// `Signature` or one that is not the last child of `edXMLHeader`, and so does the channel path,
/// with the same codes, though it verifies nothing — the reader skips every `Signature`, so
/// without it two placeholders, or one inside `MessageHeader`, would be accepted in silence.
#[tokio::test(flavor = "multi_thread")]
async fn from_a_channel_a_second_or_misplaced_signature_is_refused() {
    let na = start_nghean(true).await;
    let http = ApiClient::new();
    let dsig = " xmlns=\"http://www.w3.org/2000/09/xmldsig#\"";
    let two = format!("{}{}", placeholder(""), placeholder(dsig));
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "two placeholders at the end of the header",
            "SIGNATURE_DUPLICATE",
            signature_replaced(&document(340, STTTT), &two),
        ),
        (
            "a placeholder first in the header",
            "SIGNATURE_MISPLACED",
            document(341, STTTT)
                .replacen(
                    "<edXMLHeader>",
                    &format!("<edXMLHeader>{}", placeholder("")),
                    1,
                )
                .into_bytes(),
        ),
        (
            "a placeholder inside MessageHeader",
            "SIGNATURE_MISPLACED",
            document(342, STTTT)
                .replacen(
                    "</MessageHeader>",
                    &format!("{}</MessageHeader>", placeholder(dsig)),
                    1,
                )
                .into_bytes(),
        ),
    ];
    for (what, code, bytes) in cases {
        let (status, v) = push_as(&http, &na, "gialai", &bytes).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (422, Some(code)),
            "{what}: {v}"
        );
    }
    assert_eq!(inbox_len(&na).await, 0);
    na.shutdown().await;
}

/// The real-traffic corpus (`LIENTHONG_REAL_TRAFFIC`, else `../shared/real-traffic` beside the
/// repository); `None`, said loudly, when it is absent.
fn real_traffic() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("LIENTHONG_REAL_TRAFFIC")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/real-traffic")
        });
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "\n*** SKIPPED: real-traffic corpus not found at {} (set LIENTHONG_REAL_TRAFFIC) ***\n",
            dir.display()
        );
        None
    }
}

/// The one attachment of `package`, decoded independently of this crate: Python's `base64`
/// and `zipfile`, unzipped when it is a zip of one entry and its name does not end in `.zip`
/// (the rule of `tests/real_traffic_extract.rs`). Its name and bytes.
fn python_attachment(package: &std::path::Path) -> (String, Vec<u8>) {
    const DECODE: &str = r#"
import base64, io, re, sys, zipfile
import xml.etree.ElementTree as ET
def local(tag): return tag.rsplit('}', 1)[-1]
def child_text(el, name):
    for c in el:
        if local(c.tag) == name: return (c.text or '').strip()
root = ET.parse(sys.argv[1]).getroot()
atts = [e for e in root.iter() if local(e.tag) == 'Attachment']
assert len(atts) == 1, len(atts)
name = child_text(atts[0], 'AttachmentName')
data = base64.b64decode(re.sub(r'\s', '', child_text(atts[0], 'ContentTransferEncoded')))
if data[:4] == b'PK\x03\x04' and not name.lower().endswith('.zip'):
    z = zipfile.ZipFile(io.BytesIO(data))
    if len(z.infolist()) == 1: data = z.read(z.infolist()[0])
sys.stderr.write(name)
sys.stdout.buffer.write(data)
"#;
    let o = std::process::Command::new("python3")
        .arg("-c")
        .arg(DECODE)
        .arg(package)
        .output()
        .expect("python3 runs");
    assert!(o.status.success(), "python3: {}", stderr(&o));
    (String::from_utf8(o.stderr).unwrap(), o.stdout)
}

/// A real package the national platform's SDK wrote (`vpcp-hub-2019-04-dc0bdef0.edxml`: from
/// Văn phòng Chính phủ, 000.00.00.G22, to Ủy ban Nghệ An among others; prefixed elements, the
/// placeholder signature in no namespace, a `.doc` in a zip), pushed unchanged over a channel
/// that serves Văn phòng Chính phủ: accepted and flagged as channel, with every warning its
/// reading left stored and served in `header.warnings`, and its attachment downloaded byte for
/// byte as an independent decoder reads it.
#[tokio::test(flavor = "multi_thread")]
async fn a_real_sdk_package_over_a_channel_is_accepted_unchanged() {
    let Some(dir) = real_traffic() else { return };
    let path = dir.join("vpcp-hub-2019-04-dc0bdef0.edxml");
    let bytes = std::fs::read(&path).unwrap();
    const VPCP: &str = "000.00.00.G22";
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains(&format!("<edXML:OrganId>{VPCP}</edXML:OrganId>"))
            && text.contains(&format!("<edXML:OrganId>{NGHEAN}</edXML:OrganId>")),
        "the corpus file changed"
    );
    // What the reader tolerates in it (the same reading ingest does).
    let opts = lienthong::edxml::ReadOptions {
        limits: Default::default(),
        strict: false,
    };
    let read = lienthong::edxml::read(&bytes, &opts).unwrap();
    let expected: Vec<Value> = read
        .warnings()
        .iter()
        .map(|w| serde_json::json!({"kind": w.kind, "path": w.path, "message": w.message}))
        .collect();
    assert!(
        !expected.is_empty(),
        "the SDK's package reads without warnings?"
    );

    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl_url = format!("http://{}", reserve_port());
    let na = start(l, move |d| {
        config_text("nghean", d, &nghean_agencies(), ("gialai", &gl_url, VPCP))
            + "xml_signature = \"channel\"\n"
    })
    .await;
    let http = ApiClient::new();
    let (status, v) = push_as(&http, &na, "gialai", &bytes).await;
    assert_eq!(status, 200, "{v}");
    let item = na
        .store()
        .list_inbox(NGHEAN, &InboxFilter::default())
        .await
        .unwrap()
        .remove(0);
    let id = item.message.id;
    assert_eq!(
        item.message.channel,
        Some(lienthong::store::ChannelTrust {
            channel: "gialai".into(),
            xml_signature: UnverifiedSignature::Placeholder,
        })
    );
    assert_eq!(na.store().message_bytes(id).await.unwrap(), bytes);

    let r = http
        .get(na.url(&format!("/api/v1/inbox/{id}")))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert_eq!(v["signature"]["state"], "channel", "{v}");
    assert_eq!(v["signature"]["xml_signature"], "placeholder", "{v}");
    let got = v["header"]["warnings"].as_array().expect("header.warnings");
    for w in &expected {
        assert!(got.contains(w), "warning {w} not served; served: {got:?}");
    }
    assert_eq!(got.len(), expected.len(), "{got:?}");

    let (name, want) = python_attachment(&path);
    let r = http
        .get(na.url(&format!("/api/v1/inbox/{id}/attachments/1")))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    let got = r.bytes().await.unwrap().to_vec();
    assert_eq!(got.len(), want.len(), "{name}");
    assert!(
        got == want,
        "{name}: the bytes differ from Python's decoding"
    );
    assert!(disposition.contains(".doc"), "{disposition}");
    na.shutdown().await;
}
