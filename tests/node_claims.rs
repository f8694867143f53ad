//! Promises of the README about the node that no other test backs on its own: what the node
//! composes and signs (a clerk's package, the 01 receipt it answers a push with) verifies with
//! an independent implementation (`xmlsec1`); a different package under a document id already
//! received is `409 DUPLICATE_CONFLICT` over HTTP; a signature without the signer's certificate
//! is `CERT_MISSING` over the wire; and the revocation policy of `[[revocation.anchor]]` applies
//! to the paths ending at that anchor only.

mod common;

use common::nodes::*;
use common::testca::{Points, TestCa};
use common::{pki, xmlsec_verify};
use lienthong::dsig::sign_package;
use lienthong::edxml::xml::Limits;
use serde_json::Value;
use tokio::net::TcpListener;

/// Gia Lai and Nghệ An, each knowing the other as its peer (no outbox worker: the test pushes).
async fn two_nodes() -> (TestNode, TestNode) {
    let gl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let na = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl_url = format!("http://{}", gl.local_addr().unwrap());
    let na_url = format!("http://{}", na.local_addr().unwrap());
    let gialai = start(gl, |d| {
        config_text(
            "gialai",
            d,
            &gialai_departments(),
            ("nghean", &na_url, NGHEAN),
        )
    })
    .await;
    let nghean = start(na, |d| {
        config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", &gl_url, UBND_GL),
        )
    })
    .await;
    (gialai, nghean)
}

/// A clerk's dispatch from Sở TT&TT Gia Lai to Nghệ An, as the Gia Lai node composed and signed
/// it (`GET …/package`).
async fn composed_package(gl: &TestNode, subject: &str) -> Vec<u8> {
    let http = ApiClient::new();
    let r = http
        .post(gl.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .multipart(submission(&metadata(&[NGHEAN], subject), true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let id = json_of(r).await["id"].as_i64().unwrap();
    let r = http
        .get(gl.url(&format!("/api/v1/documents/{id}/package")))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.bytes().await.unwrap().to_vec()
}

async fn push(to: &TestNode, bytes: Vec<u8>) -> reqwest::Response {
    as_peer("gialai")
        .post(to.peer_url("/peer/v1/packages"))
        .body(bytes)
        .send()
        .await
        .unwrap()
}

/// `bytes` without its `Signature` element.
fn unsigned(bytes: &[u8]) -> String {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let s0 = text.find("<Signature").expect("a Signature");
    let s1 = text.find("</Signature>").unwrap() + "</Signature>".len();
    format!("{}{}", &text[..s0], &text[s1..])
}

#[tokio::test(flavor = "multi_thread")]
async fn packages_and_receipts_the_node_composes_verify_with_xmlsec1() {
    let (gl, na) = two_nodes().await;
    let dir = tempfile::tempdir().unwrap();
    let package = composed_package(&gl, "V/v kiểm tra chữ ký bằng xmlsec1").await;
    let file = dir.path().join("package.edxml");
    std::fs::write(&file, &package).unwrap();
    let (ok, out) = xmlsec_verify(&file, &[]);
    assert!(ok, "xmlsec1 refused the node's package:\n{out}");
    let (ok, out) = xmlsec_verify(&file, &["--enabled-reference-uris", "empty"]);
    assert!(
        ok,
        "xmlsec1 (--enabled-reference-uris empty) refused:\n{out}"
    );
    // The control: one character changed, xmlsec1 refuses it.
    let text = String::from_utf8(package.clone()).unwrap();
    let tampered = text.replacen("xmlsec1", "xmlsec2", 1);
    assert_ne!(text, tampered);
    let bad = dir.path().join("tampered.edxml");
    std::fs::write(&bad, tampered).unwrap();
    assert!(
        !xmlsec_verify(&bad, &[]).0,
        "xmlsec1 accepted a changed package"
    );

    // The 01 the Nghệ An node signs when it stores the push.
    let r = push(&na, package).await;
    assert_eq!(r.status().as_u16(), 200);
    let receipt = r.bytes().await.unwrap().to_vec();
    assert!(
        String::from_utf8_lossy(&receipt).contains("<StatusCode>01</StatusCode>"),
        "not a 01: {}",
        String::from_utf8_lossy(&receipt)
    );
    let file = dir.path().join("receipt.edxml");
    std::fs::write(&file, &receipt).unwrap();
    let (ok, out) = xmlsec_verify(&file, &[]);
    assert!(ok, "xmlsec1 refused the node's receipt:\n{out}");
    gl.shutdown().await;
    na.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_package_under_a_received_document_id_is_409_duplicate_conflict() {
    let (gl, na) = two_nodes().await;
    let package = composed_package(&gl, "V/v nội dung gốc").await;
    let r = push(&na, package.clone()).await;
    assert_eq!(r.status().as_u16(), 200);
    // The same document id (sender, date, number), another subject, genuinely signed by the
    // same agency: not a repeat, a conflict.
    let other = unsigned(&package).replacen("V/v nội dung gốc", "V/v nội dung khác", 1);
    let signer = common::corpus::signer("stttt-gialai");
    let other = sign_package(other.as_bytes(), &signer, &Limits::default()).unwrap();
    let r = push(&na, other).await;
    expect_error(r, 409, "DUPLICATE_CONFLICT").await;
    // The first is still the one stored, once.
    let inbox: Value = ApiClient::new()
        .get(na.url("/api/v1/inbox"))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = inbox["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{inbox}");
    assert_eq!(items[0]["subject"], "V/v nội dung gốc", "{inbox}");
    // And the very same package again is still a repeat (200), not a conflict.
    let r = push(&na, package).await;
    assert_eq!(r.status().as_u16(), 200);
    gl.shutdown().await;
    na.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_whose_signature_names_no_certificate_is_cert_missing() {
    let (gl, na) = two_nodes().await;
    let package = composed_package(&gl, "V/v chứng thư bị bỏ").await;
    let text = String::from_utf8(package).unwrap();
    let c0 = text.find("<X509Certificate>").expect("a certificate");
    let c1 = text.rfind("</X509Certificate>").unwrap() + "</X509Certificate>".len();
    let stripped = format!("{}{}", &text[..c0], &text[c1..]);
    let r = push(&na, stripped.into_bytes()).await;
    expect_error(r, 422, "CERT_MISSING").await;
    gl.shutdown().await;
    na.shutdown().await;
}

/// `[revocation] policy = "prefer"` with `[[revocation.anchor]]` saying `require` for the test
/// root: a signer under the test root whose OCSP responder is down is a retryable 503
/// `REVOCATION_UNKNOWN` (nothing stored); one under another trusted root (the rogue root, trusted
/// here) with a dead responder too is accepted and flagged under the default `prefer`.
#[tokio::test(flavor = "multi_thread")]
async fn the_revocation_policy_of_an_anchor_applies_to_its_paths_only() {
    let ca = TestCa::new();
    ca.leaf("strict-anchor", Points::DeadOcsp);
    ca.leaf_from("ca_rogue", "lenient-anchor", Points::DeadOcsp);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = pki("root-ca.cert.pem").display().to_string();
    let rogue = ca.path("rogue-root.cert.pem").display().to_string();
    let na = start(listener, |d| {
        let text = config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", "http://127.0.0.1:1", UBND_GL),
        );
        let trust = format!("trust = [\"{root}\"]");
        assert!(text.contains(&trust), "the harness's trust line changed");
        text.replace(&trust, &format!("trust = [\"{root}\", \"{rogue}\"]"))
            + "\n[revocation]\npolicy = \"prefer\"\n\n[[revocation.anchor]]\n\
               subject = \"CN=Lienthong TEST Root CA, O=Lienthong TEST PKI, C=VN\"\n\
               policy = \"require\"\n"
    })
    .await;
    let http = ApiClient::new();
    let signed = |name: &str, chain: &str| {
        let signer = lienthong::signer::KeyFileSigner::from_files(
            &ca.path(&format!("{name}.key.pem")),
            &ca.path(&format!("{name}.cert.pem")),
            Some(&ca.path(chain)),
        )
        .unwrap();
        sign_package(
            common::package(&common::Shape::default()).as_bytes(),
            &signer,
            &Limits::default(),
        )
        .unwrap()
    };

    let r = push(&na, signed("strict-anchor", "chain.pem")).await;
    expect_error(r, 503, "REVOCATION_UNKNOWN").await;
    let inbox = json_of(
        http.get(na.url("/api/v1/inbox"))
            .bearer_auth(TOK_NGHEAN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(inbox["items"].as_array().unwrap().len(), 0, "{inbox}");

    let r = push(&na, signed("lenient-anchor", "rogue-root.cert.pem")).await;
    assert_eq!(r.status().as_u16(), 200);
    let inbox = json_of(
        http.get(na.url("/api/v1/inbox"))
            .bearer_auth(TOK_NGHEAN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let id = inbox["items"][0]["id"].as_i64().unwrap();
    let ev = json_of(
        http.get(na.url(&format!("/api/v1/inbox/{id}/revocation")))
            .bearer_auth(TOK_NGHEAN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let signer = &ev["certificates"][0];
    assert_eq!(
        (&signer["status"], &signer["policy"], &signer["flagged"]),
        (
            &Value::from("unknown"),
            &Value::from("prefer"),
            &Value::from(true)
        ),
        "{ev}"
    );
    na.shutdown().await;
}
