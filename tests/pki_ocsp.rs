//! Revocation over the network, against real components: leaf certificates issued for the test
//! by a temp copy of the test issuing CA (`openssl ca`), their CRL distribution point served by
//! an HTTP server on loopback, their OCSP responder a real `openssl ocsp` on loopback. Each case
//! checks the exact error code, and the accepted ones the evidence that decided.

mod common;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use common::testca::{Points, TestCa};
use common::*;
use lienthong::Code;
use lienthong::pki::status::{EvidenceKind, RevocationOutcome, Status};
use lienthong::pki::{RevocationPolicy, TrustStore};
use lienthong::revocation::{self, Checker, FetchConfig};
use lienthong::verify::{Options, verify_package};

/// Verifies a package signed by `name` (chain: the issuing CA), then checks revocation of the
/// validated path under `policy` with the CRL files `crls` configured.
fn check(
    ca: &TestCa,
    name: &str,
    policy: RevocationPolicy,
    crls: &[&Path],
) -> Result<RevocationOutcome, (Code, String)> {
    let bytes = ca.signed_by(name, Some("chain.pem"));
    let store = TrustStore::from_path(&ca.path("root-ca.cert.pem")).unwrap();
    let opts = Options::new(&store);
    let v = verify_package(&bytes, &opts).expect("the path itself is good");
    let mut files = Vec::new();
    for f in crls {
        let b = std::fs::read(f).unwrap();
        files.extend(revocation::crl_sources(&b, &f.display().to_string()).unwrap());
    }
    let checker = Checker::new(FetchConfig::default(), files).unwrap();
    revocation::check_blocking(&checker, &v.path, policy, SystemTime::now())
        .map_err(|e| (e.code, e.to_string()))
}

fn cli(ca: &TestCa, name: &str, extra: &[&str]) -> std::process::Output {
    let file = ca.write(
        &format!("{name}.edxml"),
        &ca.signed_by(name, Some("chain.pem")),
    );
    bin()
        .arg("verify")
        .arg("--trust")
        .arg(ca.path("root-ca.cert.pem"))
        .args(extra)
        .arg(file)
        .output()
        .unwrap()
}

#[test]
fn revoked_by_the_crl_of_the_distribution_point() {
    let ca = TestCa::new();
    ca.leaf("crl-good", Points::Crl);
    ca.leaf("crl-revoked", Points::Crl);
    ca.revoke("crl-revoked");
    let root_crl = ca.publish_crls();
    let url = format!("http://127.0.0.1:{}/issuing.crl", ca.crl_port);

    for policy in [RevocationPolicy::Prefer, RevocationPolicy::Require] {
        let (code, message) = check(&ca, "crl-revoked", policy, &[&root_crl]).unwrap_err();
        assert_eq!(code, Code::CertRevoked, "{message}");
        assert!(message.contains("TEST crl-revoked"), "{message}");
        assert!(message.contains(&url), "{message}");
        assert!(message.contains("KeyCompromise"), "{message}");
    }

    // Good under require: the signer by the fetched CRL, the issuing CA by the root's CRL file.
    let out = check(&ca, "crl-good", RevocationPolicy::Require, &[&root_crl]).unwrap();
    assert!(!out.flagged());
    assert_eq!(out.certificates.len(), 2);
    let signer = &out.certificates[0];
    assert_eq!(signer.status, Status::Good);
    let e = signer.evidence.as_ref().unwrap();
    assert_eq!(e.kind, EvidenceKind::Crl);
    assert_eq!(e.source, url);
    assert_eq!(
        e.der,
        std::fs::read(ca.dir.path().join("www/issuing.crl")).unwrap()
    );
    assert!(e.next_update.is_some());
    let issuing = &out.certificates[1];
    assert!(
        issuing.subject.contains("Issuing CA"),
        "{}",
        issuing.subject
    );
    assert_eq!(
        issuing.evidence.as_ref().unwrap().source,
        root_crl.display().to_string()
    );

    // Under prefer without the root's CRL: the issuing CA's status is unknown, accepted, flagged.
    let out = check(&ca, "crl-good", RevocationPolicy::Prefer, &[]).unwrap();
    assert!(out.flagged());
    assert!(!out.certificates[0].flagged);
    assert!(out.certificates[1].flagged);
    // … and refused under require.
    let (code, message) = check(&ca, "crl-good", RevocationPolicy::Require, &[]).unwrap_err();
    assert_eq!(code, Code::RevocationUnknown, "{message}");
    assert!(message.contains("Issuing CA"), "{message}");

    // Off checks nothing.
    let out = check(&ca, "crl-revoked", RevocationPolicy::Off, &[]).unwrap();
    assert!(out.certificates.is_empty());
}

#[test]
fn ocsp_good_and_revoked_from_a_real_responder() {
    let mut ca = TestCa::new();
    ca.leaf("ocsp-good", Points::Ocsp);
    ca.leaf("ocsp-revoked", Points::Ocsp);
    ca.revoke("ocsp-revoked");
    let root_crl = ca.publish_crls();
    ca.start_ocsp();
    let url = format!("http://127.0.0.1:{}/", ca.ocsp_port);

    let out = check(&ca, "ocsp-good", RevocationPolicy::Require, &[&root_crl]).unwrap();
    assert!(!out.flagged());
    let signer = &out.certificates[0];
    assert_eq!(signer.status, Status::Good);
    let e = signer.evidence.as_ref().unwrap();
    assert_eq!(e.kind, EvidenceKind::Ocsp);
    assert_eq!(e.source, url);
    assert!(e.produced_at.is_some() && e.this_update.is_some() && e.next_update.is_some());
    // The evidence is the responder's DER OCSPResponse, as openssl reads it.
    let resp = ca.write("good.ocsp.der", &e.der);
    ca.openssl(&[
        "ocsp",
        "-respin",
        resp.to_str().unwrap(),
        "-resp_text",
        "-noverify",
    ]);

    let (code, message) =
        check(&ca, "ocsp-revoked", RevocationPolicy::Prefer, &[&root_crl]).unwrap_err();
    assert_eq!(code, Code::CertRevoked, "{message}");
    assert!(message.contains("OCSP"), "{message}");
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("TEST ocsp-revoked"), "{message}");

    // The CLI follows the same URLs.
    let o = cli(
        &ca,
        "ocsp-revoked",
        &[
            "--revocation",
            "require",
            "--crl",
            root_crl.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).starts_with("CERT_REVOKED: "), "{}", stderr(&o));
    let o = cli(
        &ca,
        "ocsp-good",
        &[
            "--revocation",
            "require",
            "--crl",
            root_crl.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("C=VN good by OCSP {url}")),
        "{}",
        stdout(&o)
    );
    let o = cli(
        &ca,
        "ocsp-good",
        &[
            "--json",
            "--revocation",
            "require",
            "--crl",
            root_crl.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["revocation"]["policy"], "require");
    let evidence = &v["revocation"]["certificates"][0]["evidence"];
    assert_eq!(evidence["kind"], "ocsp");
    assert!(
        evidence["der_base64"].as_str().unwrap().len() > 100,
        "{evidence}"
    );
}

#[test]
fn responder_down_refuses_under_require_and_flags_under_prefer() {
    let ca = TestCa::new();
    ca.leaf("dead", Points::DeadOcsp);
    let root_crl = ca.publish_crls();
    let url = format!("http://127.0.0.1:{}/", ca.dead_port);

    let (code, message) = check(&ca, "dead", RevocationPolicy::Require, &[&root_crl]).unwrap_err();
    assert_eq!(code, Code::RevocationUnknown, "{message}");
    assert!(message.contains("TEST dead"), "{message}");
    assert!(message.contains(&url), "{message}");

    let out = check(&ca, "dead", RevocationPolicy::Prefer, &[&root_crl]).unwrap();
    assert!(out.flagged());
    let signer = &out.certificates[0];
    assert_eq!(signer.status, Status::Unknown);
    assert!(signer.flagged);
    assert!(signer.evidence.is_none());
    assert!(signer.note.as_deref().unwrap().contains(&url));

    // The CLI: accepted with the flag printed (prefer is its default).
    let o = cli(&ca, "dead", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("flagged"), "{}", stdout(&o));
    let o = cli(&ca, "dead", &["--revocation", "require"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("REVOCATION_UNKNOWN: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_stale_crl_is_unknown() {
    let ca = TestCa::new();
    ca.leaf("stale", Points::StaleCrl);
    let root_crl: PathBuf = ca.publish_crls();

    let (code, message) = check(&ca, "stale", RevocationPolicy::Require, &[&root_crl]).unwrap_err();
    assert_eq!(code, Code::RevocationUnknown, "{message}");
    assert!(message.contains("stale"), "{message}");
    assert!(message.contains("2020-02-01"), "{message}");

    let out = check(&ca, "stale", RevocationPolicy::Prefer, &[&root_crl]).unwrap();
    assert!(out.certificates[0].flagged);
}

/// A document from Sở TT&TT Gia Lai to Nghệ An, signed by the test-time leaf `name`.
fn dispatch_by(ca: &TestCa, name: &str) -> Vec<u8> {
    signed_by(ca, name, &package(&Shape::default()))
}

/// `xml` signed with the key and certificate `name` of `ca`.
fn signed_by(ca: &TestCa, name: &str, xml: &str) -> Vec<u8> {
    use lienthong::dsig::sign_package;
    use lienthong::edxml::xml::Limits;
    use lienthong::signer::KeyFileSigner;
    let signer = KeyFileSigner::from_files(
        &ca.path(&format!("{name}.key.pem")),
        &ca.path(&format!("{name}.cert.pem")),
        Some(&ca.path("chain.pem")),
    )
    .unwrap();
    sign_package(xml.as_bytes(), &signer, &Limits::default()).unwrap()
}

/// The node: under `require`, a document from a signer revoked by OCSP is refused (422
/// CERT_REVOKED, a signed 02, nothing stored); a responder that is down is a retryable 503
/// REVOCATION_UNKNOWN (no 02, nothing stored); a good one is stored with its OCSP evidence,
/// which the receiving clerk and an operator can fetch.
#[tokio::test(flavor = "multi_thread")]
async fn the_node_refuses_a_revoked_signer_and_keeps_the_evidence_of_a_good_one() {
    use common::nodes::*;
    use lienthong::store::Store;
    use serde_json::Value;

    let mut ca = TestCa::new();
    ca.leaf("node-good", Points::Ocsp);
    ca.leaf("node-revoked", Points::Ocsp);
    ca.leaf("node-dead", Points::DeadOcsp);
    ca.revoke("node-revoked");
    let root_crl = ca.publish_crls();
    ca.start_ocsp();
    let ocsp_url = format!("http://127.0.0.1:{}/", ca.ocsp_port);

    const TOK_ADMIN: &str = "tok-admin-0123456789abcdef";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let crl = root_crl.display().to_string();
    let na = start(listener, |d| {
        config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", "http://127.0.0.1:1", UBND_GL),
        ) + &format!(
            "[[admin]]\nname = \"ops\"\nsha256 = \"{}\"\n\n[revocation]\npolicy = \"require\"\n\
             crl_files = [{crl:?}]\n",
            token_hash(TOK_ADMIN)
        )
    })
    .await;
    let http = common::nodes::ApiClient::new();
    let push = |bytes: Vec<u8>| {
        as_peer("gialai")
            .post(na.peer_url("/peer/v1/packages"))
            .body(bytes)
            .send()
    };
    let inbox_len = || async {
        let r = http
            .get(na.url("/api/v1/inbox"))
            .bearer_auth(TOK_NGHEAN)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        v["items"].as_array().unwrap().len()
    };

    // Revoked by OCSP: refused with its code and a signed 02; nothing stored.
    let r = push(dispatch_by(&ca, "node-revoked")).await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "CERT_REVOKED", "{body}");
    assert!(!body["status_package"].is_null(), "a 02 is due: {body}");
    assert_eq!(inbox_len().await, 0);

    // Responder down under require: transient, 503 so the sender retries; no 02; nothing stored.
    let r = push(dispatch_by(&ca, "node-dead")).await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "REVOCATION_UNKNOWN", "{body}");
    assert!(body["status_package"].is_null(), "no 02: {body}");
    assert_eq!(inbox_len().await, 0);

    // Good: stored, with the OCSP response that decided.
    let r = push(dispatch_by(&ca, "node-good")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .get(na.url("/api/v1/inbox"))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let id = v["items"][0]["id"].as_i64().unwrap();
    let stored = na.node.store.revocation_evidence(id).await.unwrap();
    assert_eq!(stored.len(), 2);

    let r = http
        .get(na.url(&format!("/api/v1/inbox/{id}/revocation")))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ev: Value = r.json().await.unwrap();
    assert_eq!(ev["flagged"], false, "{ev}");
    let signer = &ev["certificates"][0];
    assert_eq!(signer["status"], "good", "{ev}");
    assert_eq!(signer["kind"], "ocsp");
    assert_eq!(signer["source"], ocsp_url.as_str());
    assert_eq!(signer["policy"], "require");
    assert!(
        signer["subject"]
            .as_str()
            .unwrap()
            .contains("TEST node-good")
    );
    assert!(signer["produced_at"].is_string() && signer["checked_at"].is_string());
    let der = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        signer["der_base64"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(Some(der), stored[0].der);
    assert_eq!(ev["certificates"][1]["kind"], "crl");

    // Operators see it too; another agency's clerk or no token does not.
    let r = http
        .get(na.url(&format!("/admin/v1/messages/{id}/revocation")))
        .bearer_auth(TOK_ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let admin: Value = r.json().await.unwrap();
    assert_eq!(admin["certificates"], ev["certificates"]);
    let r = http
        .get(na.url(&format!("/api/v1/inbox/{id}/revocation")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .get(na.url(&format!("/admin/v1/messages/{}/revocation", id + 100)))
        .bearer_auth(TOK_ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // A status package (03) from the same signer is kept with its evidence too: operators see
    // what decided the reporter's certificate for a status as for a document.
    let r = http
        .post(na.url("/api/v1/documents"))
        .bearer_auth(TOK_NGHEAN)
        .multipart(submission(&metadata(&[STTTT], "V/v phối hợp"), false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let sent: Value = r.json().await.unwrap();
    let about = sent["document_id"].as_str().unwrap();
    let r = push(status_by(&ca, "node-good", about)).await.unwrap();
    let status = r.status().as_u16();
    assert_eq!(status, 204, "{}", r.text().await.unwrap());
    let history = na
        .node
        .store
        .audit_records(&lienthong::store::AuditQuery::default())
        .await
        .unwrap();
    let status_message = history
        .iter()
        .rev()
        .find(|r| r.action == "status.record")
        .map(|r| {
            serde_json::from_str::<Value>(&r.detail).unwrap()["message_id"]
                .as_i64()
                .unwrap()
        })
        .expect("the status was recorded");
    let r = http
        .get(na.url(&format!("/admin/v1/messages/{status_message}/revocation")))
        .bearer_auth(TOK_ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let st: Value = r.json().await.unwrap();
    assert_eq!(st["certificates"][0]["status"], "good", "{st}");
    assert_eq!(st["certificates"][0]["kind"], "ocsp", "{st}");
    assert_eq!(
        na.node
            .store
            .revocation_evidence(status_message)
            .await
            .unwrap()
            .len(),
        2
    );

    na.shutdown().await;
}

/// A status 03 from Sở TT&TT about the document `document_id` Nghệ An sent, signed by `name`
/// of `ca`.
fn status_by(ca: &TestCa, name: &str, document_id: &str) -> Vec<u8> {
    // Dated now: a status dated before its document reached the node is refused.
    let now = lienthong::edxml::vietnam_time(time::OffsetDateTime::now_utc())
        .format(time::macros::format_description!(
            "[year]/[month]/[day] [hour]:[minute]:[second]"
        ))
        .unwrap();
    let xml = common::corpus::status_package("03", "FROM")
        .replace("2026/11/25 09:30:00", &now)
        .replace("000.00.05.H21,2026/11/25,125/STTTT-CĐS", document_id)
        .replace("000.00.05.H21", common::nodes::NGHEAN)
        .replace("FROM", common::nodes::STTTT);
    signed_by(ca, name, &xml)
}

/// Responses made offline by `openssl ocsp -reqin … -respout …` for a request built by
/// `ocsp_request`: accepted only when signed by the issuer (or an authorised responder), about
/// this certificate, and echoing the nonce sent.
#[test]
fn ocsp_responses_that_cannot_be_relied_on_are_refused() {
    use lienthong::pki::status::{self, Source};
    let ca = TestCa::new();
    ca.leaf("asked", Points::Ocsp);
    ca.leaf("other", Points::Ocsp);
    let store = TrustStore::from_path(&ca.path("root-ca.cert.pem")).unwrap();
    let path_of = |name: &str| {
        let bytes = ca.signed_by(name, Some("chain.pem"));
        verify_package(&bytes, &Options::new(&store)).unwrap().path
    };
    let asked = path_of("asked");
    let other = path_of("other");
    let q = status::ocsp_request(&asked.links()[0], Some(&[7u8; 16])).unwrap();
    let req = ca.write("req.der", &q.request);
    let respond = |signer: &str, out: &str| {
        let out = ca.dir.path().join(out);
        ca.openssl(&[
            "ocsp",
            "-index",
            "ca/issuing/index.txt",
            "-CA",
            "issuing-ca.cert.pem",
            "-rsigner",
            &format!("{signer}.cert.pem"),
            "-rkey",
            &format!("{signer}.key.pem"),
            "-reqin",
            req.to_str().unwrap(),
            "-respout",
            out.to_str().unwrap(),
            "-nmin",
            "60",
        ]);
        Source {
            source: out.display().to_string(),
            der: std::fs::read(out).unwrap(),
        }
    };
    let now = SystemTime::now();
    let sent = |nonce: &'static [u8]| status::Freshness::Fetched {
        nonce: Some(nonce),
        max_age: status::OCSP_UNBOUND_MAX_AGE,
    };
    const NONCE: [u8; 16] = [7u8; 16];

    // Signed by the issuing CA itself: good, and the nonce is echoed.
    let by_issuer = respond("issuing-ca", "issuer.der");
    let s = status::check_ocsp(&asked.links()[0], &by_issuer, sent(&NONCE), now).unwrap();
    assert_eq!(s.status, Status::Good);
    // Not the nonce that was sent: a replay.
    let e = status::check_ocsp(&asked.links()[0], &by_issuer, sent(&[8u8; 16]), now).unwrap_err();
    assert!(e.contains("nonce"), "{e}");
    // About another certificate.
    let e = status::check_ocsp(&other.links()[0], &by_issuer, status::Freshness::Kept, now)
        .unwrap_err();
    assert!(e.contains("CertID"), "{e}");
    // Signed by a certificate of the same CA that is not an OCSP responder.
    let by_leaf = respond("stttt-gialai", "leaf.der");
    let e = status::check_ocsp(&asked.links()[0], &by_leaf, sent(&NONCE), now).unwrap_err();
    assert!(e.contains("signed neither"), "{e}");
    // Past its nextUpdate (checked two hours later).
    let later = now + std::time::Duration::from_secs(2 * 3600);
    let e = status::check_ocsp(
        &asked.links()[0],
        &by_issuer,
        status::Freshness::Kept,
        later,
    )
    .unwrap_err();
    assert!(e.contains("stale"), "{e}");
}

/// The node's default policy, `prefer`: a signer whose responder is down is accepted, and the
/// stored evidence says the status was unknown and flagged.
#[tokio::test(flavor = "multi_thread")]
async fn under_prefer_the_node_accepts_an_unknown_status_flagged() {
    use common::nodes::*;
    use serde_json::Value;

    let ca = TestCa::new();
    ca.leaf("prefer-dead", Points::DeadOcsp);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let na = start(listener, |d| {
        config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", "http://127.0.0.1:1", UBND_GL),
        )
    })
    .await;
    let http = common::nodes::ApiClient::new();
    let r = as_peer("gialai")
        .post(na.peer_url("/peer/v1/packages"))
        .body(dispatch_by(&ca, "prefer-dead"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = http
        .get(na.url("/api/v1/inbox"))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = v["items"][0]["id"].as_i64().unwrap();
    let ev: Value = http
        .get(na.url(&format!("/api/v1/inbox/{id}/revocation")))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ev["flagged"], true, "{ev}");
    let signer = &ev["certificates"][0];
    assert_eq!(signer["status"], "unknown", "{ev}");
    assert_eq!(signer["policy"], "prefer");
    assert_eq!(signer["flagged"], true);
    assert!(signer["kind"].is_null() && signer["der_base64"].is_null());
    let dead = format!("http://127.0.0.1:{}/", ca.dead_port);
    assert!(signer["note"].as_str().unwrap().contains(&dead), "{ev}");
    na.shutdown().await;
}

/// CRLs are cached by URL until their nextUpdate, and the background refresh fetches them again
/// ahead of it: a revocation published after the first fetch is seen once refreshed.
#[test]
fn crls_are_cached_until_refreshed() {
    let ca = TestCa::new();
    ca.leaf("cached", Points::Crl);
    ca.publish_crls();
    let bytes = ca.signed_by("cached", Some("chain.pem"));
    let store = TrustStore::from_path(&ca.path("root-ca.cert.pem")).unwrap();
    let v = verify_package(&bytes, &Options::new(&store)).unwrap();
    let checker = Checker::new(FetchConfig::default(), Vec::new()).unwrap();
    let now = SystemTime::now();
    let first =
        revocation::check_blocking(&checker, &v.path, RevocationPolicy::Prefer, now).unwrap();
    assert_eq!(first.certificates[0].status, Status::Good);

    ca.revoke("cached");
    ca.publish_crls();
    // Still the cached CRL (current until its nextUpdate, 30 days on).
    let cached =
        revocation::check_blocking(&checker, &v.path, RevocationPolicy::Prefer, now).unwrap();
    assert_eq!(cached.certificates[0].status, Status::Good);
    // Nothing is due within an hour.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(rt.block_on(checker.refresh_crls(now, hour)), 0);
    // Refresh replaces a cached CRL only with a later one: publish one with 31 days.
    let month = std::time::Duration::from_secs(32 * 86400);
    ca.ca(&[
        "-name",
        "ca_issuing",
        "-gencrl",
        "-crldays",
        "31",
        "-out",
        "later.crl.pem",
    ]);
    let www = ca.dir.path().join("www/issuing.crl");
    ca.openssl(&[
        "crl",
        "-in",
        "later.crl.pem",
        "-outform",
        "DER",
        "-out",
        www.to_str().unwrap(),
    ]);
    assert_eq!(rt.block_on(checker.refresh_crls(now, month)), 1);
    let (code, message) =
        revocation::check_blocking(&checker, &v.path, RevocationPolicy::Prefer, now)
            .map_err(|e| (e.code, e.to_string()))
            .unwrap_err();
    assert_eq!(code, Code::CertRevoked, "{message}");
}

/// SSRF: a certificate that does not chain to a trust anchor never makes the node or the CLI
/// fetch the URLs it names; one that does, does (so the counter can tell).
#[tokio::test(flavor = "multi_thread")]
async fn a_strangers_certificate_makes_nobody_fetch_anything() {
    use common::nodes::*;
    use serde_json::Value;
    use std::sync::atomic::Ordering::SeqCst;

    let ca = TestCa::new();
    ca.leaf_from("ca_rogue", "stranger", Points::Crl);
    ca.leaf("known", Points::Crl);
    ca.publish_crls();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let na = start(listener, |d| {
        config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", "http://127.0.0.1:1", UBND_GL),
        )
    })
    .await;
    let xml = package(&Shape::default());
    let signer = lienthong::signer::KeyFileSigner::from_files(
        &ca.path("stranger.key.pem"),
        &ca.path("stranger.cert.pem"),
        Some(&ca.path("rogue-root.cert.pem")),
    )
    .unwrap();
    let forged = lienthong::dsig::sign_package(
        xml.as_bytes(),
        &signer,
        &lienthong::edxml::xml::Limits::default(),
    )
    .unwrap();
    let r = as_peer("gialai")
        .post(na.peer_url("/peer/v1/packages"))
        .body(forged.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "CERT_UNTRUSTED", "{body}");
    let file = ca.write("forged.edxml", &forged);
    let o = bin()
        .arg("verify")
        .arg("--trust")
        .arg(ca.path("root-ca.cert.pem"))
        .args(["--revocation", "require"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(stderr(&o).starts_with("CERT_UNTRUSTED: "), "{}", stderr(&o));
    assert_eq!(ca.crl_requests.load(SeqCst), 0);

    // The control: a certificate of the trusted CA with the same kind of URL is followed.
    let r = as_peer("gialai")
        .post(na.peer_url("/peer/v1/packages"))
        .body(dispatch_by(&ca, "known"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(ca.crl_requests.load(SeqCst), 1);
    na.shutdown().await;
}
