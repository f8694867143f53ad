//! Sender binding through the agency registry, on a real node over loopback HTTP: Nghệ An
//! receives from peer `gialai` (which serves the Gia Lai codes) packages validly signed by Gia Lai
//! certificates, some claiming to come from an agency their certificate may not sign for. The
//! registry is managed through the admin API. Certificates that carry no agency code are issued
//! for the test with `openssl x509 -req` from the test issuing CA.

mod common;

use std::path::Path;

use common::corpus::*;
use common::nodes::*;
use common::*;
use lienthong::dsig::sign_package;
use lienthong::edxml::xml::Limits;
use lienthong::signer::KeyFileSigner;
use lienthong::store::{AuditQuery, InboxFilter, Store};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const TOK_OPS: &str = "tok-ops-0123456789abcdef";

async fn start_nghean() -> TestNode {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl_url = format!("http://{}", reserve_port());
    start(l, |d| {
        config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", &gl_url, UBND_GL),
        ) + &admin_token("ops-1", TOK_OPS)
    })
    .await
}

/// The corpus document (Sở TT&TT Gia Lai to Ủy ban Nghệ An) claiming to come from `from`, with
/// its own số (from `tag`, one letter) so that accepted ones are distinct documents.
fn document_from(from: &str, tag: &str) -> String {
    let n = 200 + u32::from(tag.as_bytes()[0]);
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

fn sign_with(xml: &str, key: &Path, cert: &Path) -> Vec<u8> {
    let signer = KeyFileSigner::from_files(key, cert, Some(&pki("chain.pem"))).unwrap();
    sign_package(xml.as_bytes(), &signer, &Limits::default()).unwrap()
}

async fn received_actions(node: &TestNode) -> Vec<String> {
    node.store()
        .audit_records(&AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .filter(|a| a == "document.receive" || a == "status.record")
        .collect()
}

/// `bytes` pushed as `gialai` is refused with `SENDER_NOT_AUTHORISED` (422, the message naming
/// the certificate and `mentions`) and leaves the inbox and the audit chain as they were.
async fn refused(http: &ApiClient, na: &TestNode, what: &str, bytes: &[u8], mentions: &[&str]) {
    let inbox_before = na
        .store()
        .list_inbox(NGHEAN, &InboxFilter::default())
        .await
        .unwrap()
        .len();
    let received_before = received_actions(na).await;
    let (status, v) = push_as(http, na, "gialai", bytes).await;
    assert_eq!(status, 422, "{what}: {v}");
    assert_eq!(v["code"], "SENDER_NOT_AUTHORISED", "{what}: {v}");
    assert!(
        !v["message_vi"].as_str().unwrap_or("").is_empty(),
        "{what}: {v}"
    );
    let message = v["message"].as_str().unwrap_or("");
    for m in mentions {
        assert!(message.contains(m), "{what}: {m:?} not in {message:?}");
    }
    // An authenticity failure: answered with a signed 02, never stored.
    assert!(v["status_package"].is_string(), "{what}: {v}");
    let inbox_after = na
        .store()
        .list_inbox(NGHEAN, &InboxFilter::default())
        .await
        .unwrap()
        .len();
    assert_eq!(inbox_after, inbox_before, "{what}: stored");
    assert_eq!(
        received_actions(na).await,
        received_before,
        "{what}: audited"
    );
}

async fn accepted(http: &ApiClient, na: &TestNode, what: &str, bytes: &[u8]) {
    let before = na
        .store()
        .list_inbox(NGHEAN, &InboxFilter::default())
        .await
        .unwrap()
        .len();
    let (status, v) = push_as(http, na, "gialai", bytes).await;
    assert_eq!(status, 200, "{what}: {v}");
    let after = na
        .store()
        .list_inbox(NGHEAN, &InboxFilter::default())
        .await
        .unwrap()
        .len();
    assert_eq!(after, before + 1, "{what}: not in the inbox");
}

async fn put_entry(http: &ApiClient, na: &TestNode, code: &str, body: Value) -> u16 {
    let r = http
        .put(na.url(&format!("/admin/v1/registry/{code}")))
        .bearer_auth(TOK_OPS)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v = json_of(r).await;
    assert!(status == 200 || status == 201, "{status} {v}");
    status
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_agency_impersonation_is_refused_and_registered_signers_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    // Two certificates of the test issuing CA that name no agency code.
    let (vp_key, vp_cert) = issue_cert_without_code(dir.path(), "vanphong", "Văn phòng Sở TT&TT");
    let (nv_key, nv_cert) = issue_cert_without_code(dir.path(), "noivu", "Văn thư Sở Nội vụ");
    let vp_fp = cert_fingerprint(&vp_cert);
    let ubnd_fp = cert_fingerprint(&pki("ubnd-gialai.cert.pem"));
    let issuing_fp = cert_fingerprint(&pki("issuing-ca.cert.pem"));
    let root_fp = cert_fingerprint(&pki("root-ca.cert.pem"));

    let na = start_nghean().await;
    let http = ApiClient::new();

    // No registry: a certificate that names no code binds to nothing.
    refused(
        &http,
        &na,
        "unbound signer",
        &sign_with(&document_from(STTTT, "a"), &vp_key, &vp_cert),
        &[&vp_fp, "names no agency code", STTTT],
    )
    .await;
    // The certificate names Sở TT&TT (serialNumber), the package Ủy ban Gia Lai.
    refused(
        &http,
        &na,
        "certificate names A, package claims B",
        sign(&document_from(UBND_GL, "b")).as_bytes(),
        &[STTTT, UBND_GL],
    )
    .await;

    // The registry: Sở TT&TT may sign with the Văn phòng certificate too; Ủy ban Gia Lai only with
    // its own; Sở Nội vụ with any certificate of the issuing CA whose CN is its văn thư's.
    assert_eq!(
        put_entry(
            &http,
            &na,
            STTTT,
            json!({"name": "Sở TT&TT Gia Lai", "rules": [
                {"kind": "fingerprint", "sha256": vp_fp},
                {"kind": "fingerprint", "sha256": cert_fingerprint(&pki("stttt-gialai.cert.pem"))},
            ]}),
        )
        .await,
        201
    );
    put_entry(
        &http,
        &na,
        UBND_GL,
        json!({"rules": [{"kind": "fingerprint", "sha256": ubnd_fp}]}),
    )
    .await;
    put_entry(
        &http,
        &na,
        SONV,
        json!({"rules": [{"kind": "subject", "issuer_sha256": root_fp,
                          "attribute": "CN", "value": "Văn thư Sở Nội vụ"}]}),
    )
    .await;

    // A certificate registered by fingerprint is accepted for its agency…
    accepted(
        &http,
        &na,
        "registered by fingerprint",
        &sign_with(&document_from(STTTT, "c"), &vp_key, &vp_cert),
    )
    .await;
    // …and refused for another, whose entry lists another certificate.
    refused(
        &http,
        &na,
        "registered for A, package claims B",
        &sign_with(&document_from(UBND_GL, "d"), &vp_key, &vp_cert),
        &[&vp_fp, STTTT, UBND_GL],
    )
    .await;
    // B's entry lists another certificate: an unregistered one is refused.
    refused(
        &http,
        &na,
        "not in B's entry",
        &sign_with(&document_from(UBND_GL, "e"), &nv_key, &nv_cert),
        &[UBND_GL, &ubnd_fp],
    )
    .await;
    // Still refused when the certificate names A, with B's entry present.
    refused(
        &http,
        &na,
        "certificate names A, B registered",
        sign(&document_from(UBND_GL, "f")).as_bytes(),
        &[STTTT, UBND_GL],
    )
    .await;
    // A subject rule naming the wrong issuer (the root did not issue it) binds nothing…
    refused(
        &http,
        &na,
        "subject rule, other issuer",
        &sign_with(&document_from(SONV, "g"), &nv_key, &nv_cert),
        &[SONV],
    )
    .await;
    // …the right issuer does.
    put_entry(
        &http,
        &na,
        SONV,
        json!({"rules": [{"kind": "subject", "issuer_sha256": issuing_fp,
                          "attribute": "CN", "value": "Văn thư Sở Nội vụ"}]}),
    )
    .await;
    accepted(
        &http,
        &na,
        "subject rule",
        &sign_with(&document_from(SONV, "h"), &nv_key, &nv_cert),
    )
    .await;
    // An entry pins its agency: Sở TT&TT's own certificate, once dropped from the entry, is
    // refused although it names Sở TT&TT.
    put_entry(
        &http,
        &na,
        STTTT,
        json!({"rules": [{"kind": "fingerprint", "sha256": vp_fp}]}),
    )
    .await;
    refused(
        &http,
        &na,
        "pinned entry",
        sign(&document_from(STTTT, "i")).as_bytes(),
        &[STTTT, &vp_fp],
    )
    .await;
    // Removing the entry restores the certificate's own code.
    let r = http
        .delete(na.url(&format!("/admin/v1/registry/{STTTT}")))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    accepted(
        &http,
        &na,
        "no entry, certificate code",
        sign(&document_from(STTTT, "j")).as_bytes(),
    )
    .await;

    let verdict = na.store().verify_audit().await.unwrap();
    assert!(verdict.is_ok(), "{verdict:?}");
    na.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_registry_admin_api_lists_sets_removes_and_imports_all_or_nothing() {
    let na = start_nghean().await;
    let http = ApiClient::new();
    let fp = cert_fingerprint(&pki("stttt-gialai.cert.pem"));

    // Operators only.
    let r = http
        .get(na.url("/admin/v1/registry"))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "UNAUTHENTICATED").await;
    let r = http
        .get(na.url(&format!("/admin/v1/registry/{STTTT}")))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "NOT_FOUND").await;

    // Set (201), replace (200), read back normalised.
    let upper = fp.to_uppercase();
    assert_eq!(
        put_entry(
            &http,
            &na,
            STTTT,
            json!({"name": "Sở TT&TT", "rules": [{"kind": "fingerprint", "sha256": upper}]})
        )
        .await,
        201
    );
    assert_eq!(
        put_entry(&http, &na, STTTT, json!({"name": "Sở Thông tin và Truyền thông", "rules": [{"kind": "fingerprint", "sha256": fp, "note": "2026"}]})).await,
        200
    );
    let r = http
        .get(na.url(&format!("/admin/v1/registry/{STTTT}")))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    let v = json_of(r).await;
    assert_eq!(v["name"], "Sở Thông tin và Truyền thông");
    assert_eq!(
        v["rules"],
        json!([{"kind": "fingerprint", "sha256": fp, "note": "2026"}])
    );
    assert_eq!(v["added_by"], "operator:ops-1");

    // Bad input: 400 VALUE_INVALID naming the field.
    let r = http
        .put(na.url(&format!("/admin/v1/registry/{SONV}")))
        .bearer_auth(TOK_OPS)
        .json(&json!({"rules": [{"kind": "fingerprint", "sha256": "abc"}]}))
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 400, "VALUE_INVALID").await;
    assert!(
        v["message"].as_str().unwrap().contains("rules[0].sha256"),
        "{v}"
    );

    // Import: the second agency is bad, so nothing of it is applied.
    let audit_before = na
        .store()
        .audit_records(&AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .len();
    let r = http
        .post(na.url("/admin/v1/registry/import"))
        .bearer_auth(TOK_OPS)
        .json(&json!({"agencies": [
            {"code": SONV, "rules": [{"kind": "fingerprint", "sha256": fp}]},
            {"code": UBND_GL, "rules": [{"kind": "subject", "attribute": "CN", "value": "x"}]},
        ]}))
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 400, "VALUE_INVALID").await;
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("agency[1].rules[0]"),
        "{v}"
    );
    assert!(na.store().registry_entry(SONV).await.unwrap().is_none());
    let audit_after = na
        .store()
        .audit_records(&AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .len();
    assert_eq!(audit_after, audit_before);

    // A good import, replacing all: Sở TT&TT is removed, two are added.
    let r = http
        .post(na.url("/admin/v1/registry/import"))
        .bearer_auth(TOK_OPS)
        .json(&json!({"replace_all": true, "agencies": [
            {"code": SONV, "rules": [{"kind": "fingerprint", "sha256": cert_fingerprint(&pki("sonv-gialai.cert.pem"))}]},
            {"code": UBND_GL, "rules": [{"kind": "subject", "issuer": "CN=Lienthong TEST Issuing CA, O=Lienthong TEST PKI, C=VN", "attribute": "serialNumber", "value": UBND_GL}]},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        json_of(r).await,
        json!({"added": 2, "replaced": 0, "removed": 1})
    );
    let r = http
        .get(na.url("/admin/v1/registry"))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    let v = json_of(r).await;
    let codes: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, [UBND_GL, SONV], "by code");

    // The Ủy ban Gia Lai subject rule (issuer by DN) accepts its certificate.
    let (status, v) = push_as(
        &http,
        &na,
        "gialai",
        sign_as(&document_from(UBND_GL, "k"), "ubnd-gialai").as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{v}");

    // DELETE of an absent entry: 404.
    let r = http
        .delete(na.url(&format!("/admin/v1/registry/{STTTT}")))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "NOT_FOUND").await;

    let actions: Vec<(String, String, String)> = na
        .store()
        .audit_records(&AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action.starts_with("registry."))
        .map(|r| (r.actor, r.action, r.entity_id))
        .collect();
    let ops = "operator:ops-1".to_owned();
    assert_eq!(
        actions,
        [
            (ops.clone(), "registry.set".into(), STTTT.into()),
            (ops.clone(), "registry.set".into(), STTTT.into()),
            (ops.clone(), "registry.remove".into(), STTTT.into()),
            (ops.clone(), "registry.set".into(), SONV.into()),
            (ops.clone(), "registry.set".into(), UBND_GL.into()),
            (ops.clone(), "registry.import".into(), "*".into()),
        ]
    );
    na.shutdown().await;
}

#[test]
fn the_openapi_description_lists_the_registry_routes() {
    let spec = include_str!("../schemas/openapi.yaml");
    for path in [
        "/admin/v1/registry:",
        "/admin/v1/registry/{code}:",
        "/admin/v1/registry/import:",
    ] {
        assert!(spec.contains(&format!("\n  {path}\n")), "{path} missing");
    }
}

/// Polls `f` until it answers `Ok`; panics with the last `Err` after 60 s (the only timing that
/// can fail the test, generous for a debug build on two loaded cores).
async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match f().await {
            Ok(t) => return t,
            Err(seen) if std::time::Instant::now() >= deadline => {
                panic!("timed out waiting for {what}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
}

/// The receipt that proves a delivery is bound too: while Gia Lai's registry pins Ủy ban Nghệ An
/// to another certificate, Nghệ An's genuine receipt is not proof (the delivery retries with
/// `RECEIPT_INVALID: SENDER_NOT_AUTHORISED…`); once the entry is removed, the next attempt is
/// delivered.
#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_from_a_signer_the_registry_does_not_bind_is_not_proof_of_delivery() {
    let na_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let na_url = format!("http://{}", na_l.local_addr().unwrap());
    let gl_url = format!("http://{}", reserve_port());
    let na = start(na_l, |d| {
        config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", &gl_url, UBND_GL),
        )
    })
    .await;
    let gl_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl = start(gl_l, |d| {
        config_text(
            "gialai",
            d,
            &gialai_departments(),
            ("nghean", &na_url, NGHEAN),
        ) + &admin_token("ops-1", TOK_OPS)
            + "[retry]\ninitial_backoff = \"50ms\"\nmax_backoff = \"100ms\"\n\
               give_up_after = \"1h\"\nbreaker_failures = 1000\nbreaker_cooldown = \"50ms\"\n"
    })
    .await;
    let http = ApiClient::new();
    let other = cert_fingerprint(&pki("ubnd-gialai.cert.pem"));
    put_entry(
        &http,
        &gl,
        NGHEAN,
        json!({"rules": [{"kind": "fingerprint", "sha256": other}]}),
    )
    .await;
    let gl = gl.with_worker();

    let r = http
        .post(gl.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .multipart(submission(&metadata(&[NGHEAN], "V/v thử ràng buộc"), true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let v = json_of(r).await;
    let id = v["deliveries"][0]["delivery_id"].as_i64().unwrap();

    let admin = async |id: i64| {
        let r = http
            .get(gl.url(&format!("/admin/v1/deliveries/{id}")))
            .bearer_auth(TOK_OPS)
            .send()
            .await
            .unwrap();
        json_of(r).await
    };
    let d = eventually("a refused receipt", async || {
        let d = admin(id).await;
        let code = d["last_error"]["code"].as_str().unwrap_or("");
        if code == "RECEIPT_INVALID" {
            Ok(d)
        } else {
            Err(d.to_string())
        }
    })
    .await;
    let message = d["last_error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("SENDER_NOT_AUTHORISED") && message.contains(&other),
        "{message}"
    );
    assert_ne!(d["state"], "delivered", "{d}");

    let r = http
        .delete(gl.url(&format!("/admin/v1/registry/{NGHEAN}")))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    eventually("delivered", async || {
        let d = admin(id).await;
        if d["state"] == "delivered" {
            Ok(())
        } else {
            Err(d.to_string())
        }
    })
    .await;
    gl.shutdown().await;
    na.shutdown().await;
}
