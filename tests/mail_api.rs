//! The mail bridge through the clerk and admin APIs (issue 16), over real HTTP on loopback
//! against real nodes with real SQLite stores: drafts made by the store's own `take_mail` (as
//! the inbound side makes them), listed, shown, downloaded, approved — numbered, signed, and
//! delivered to the other node, where the package verifies with xmlsec1 and `lienthong verify`
//! — or discarded; the mail log and its quarantine for operators; and the command line. Every
//! answer is checked against `schemas/openapi.yaml` by the harness (`ApiClient`), every `--json`
//! answer of the CLI too.

mod common;

use std::process::Output;

use common::nodes::*;
use common::openapi::spec;
use common::*;
use lienthong::node::service::now_ms;
use lienthong::store::{AnyStore, DraftFile, MailEffect, NewDraft, Store, TakenMail};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const TOK_OPS: &str = "tok-ops-mail-0123456789abcdef";
const MAILBOX: &str = "vanban@gialai.gov.vn/INBOX";
/// Stands for a Word file: what the bridge keeps is bytes, whatever they are.
const DOCX_BYTES: &[u8] = b"PK\x03\x04 not really a docx, only bytes to carry";
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// What a draft's mail said.
struct Mail<'a> {
    uid: u32,
    agency: &'a str,
    subject: &'a str,
    number: Option<&'a str>,
    notation: Option<&'a str>,
    summary: &'a str,
    files: Vec<(&'a str, &'a str, &'a [u8])>,
}

impl<'a> Mail<'a> {
    /// `Số 12/STTTT-VP: V/v họp giao ban quý IV` from Sở TT&TT's registered mailbox, with a
    /// PDF and a Word file.
    fn stttt(uid: u32) -> Mail<'a> {
        Mail {
            uid,
            agency: STTTT,
            subject: "Số 12/STTTT-VP: V/v họp giao ban quý IV",
            number: Some("12"),
            notation: Some("STTTT-VP"),
            summary: "V/v họp giao ban quý IV",
            files: vec![
                ("giấy mời.pdf", "application/pdf", PDF),
                ("phụ lục.docx", DOCX, DOCX_BYTES),
            ],
        }
    }
}

fn taken(uid: u32, effect: MailEffect, from: &str, subject: &str) -> TakenMail {
    TakenMail {
        mailbox: MAILBOX.into(),
        uidvalidity: 7,
        uid,
        return_path: from.into(),
        from: from.into(),
        subject: subject.into(),
        message_id: Some(format!("{uid}.test@gialai.gov.vn")),
        size: 4096,
        effect,
        actor: format!("mail:{MAILBOX}"),
    }
}

/// Takes `m` in as the inbound side does for a mail from an agency's registered mailbox: a
/// draft, committed with its log row. Returns the draft's id.
async fn take_draft(store: &AnyStore, m: Mail<'_>) -> i64 {
    let draft = NewDraft {
        agency: m.agency.into(),
        code_number: m.number.map(str::to_owned),
        code_notation: m.notation.map(str::to_owned),
        summary: m.summary.into(),
        body: "Kính gửi Văn thư Sở,\nĐề nghị phát hành văn bản đính kèm.\nTrân trọng.".into(),
        files: m
            .files
            .iter()
            .map(|(name, content_type, bytes)| DraftFile {
                name: (*name).into(),
                content_type: (*content_type).into(),
                bytes: bytes.to_vec(),
            })
            .collect(),
    };
    let out = store
        .take_mail(
            taken(
                m.uid,
                MailEffect::Draft(draft),
                "vanthu@stttt.gialai.gov.vn",
                m.subject,
            ),
            3_600_000,
            now_ms(),
        )
        .await
        .unwrap();
    out.draft_id.expect("a draft")
}

/// Takes in a mail that was quarantined, with a reply allowed to its sender.
async fn take_quarantined(store: &AnyStore, uid: u32, from: &str, code: &str) -> i64 {
    let effect = MailEffect::Quarantined {
        code: code.into(),
        reason: format!("{code}: not a signed package and not from a registered mailbox"),
        reply_to: Some(from.into()),
    };
    store
        .take_mail(
            taken(uid, effect, from, "Xin hỏi về thủ tục"),
            3_600_000,
            now_ms(),
        )
        .await
        .unwrap()
        .log_id
}

/// Gia Lai (two departments, an operator) and Nghệ An, each the other's peer, outbox workers
/// running.
async fn two_nodes() -> (TestNode, TestNode) {
    let gl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let na = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl_url = format!("http://{}", gl.local_addr().unwrap());
    let na_url = format!("http://{}", na.local_addr().unwrap());
    let retry = "[retry]\ninitial_backoff = \"50ms\"\n";
    let gialai = start(gl, |d| {
        config_text(
            "gialai",
            d,
            &gialai_departments(),
            ("nghean", &na_url, NGHEAN),
        ) + &admin_token("ops-1", TOK_OPS)
            + retry
    })
    .await;
    let nghean = start(na, |d| {
        config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", &gl_url, UBND_GL),
        ) + retry
    })
    .await;
    (gialai.with_worker(), nghean.with_worker())
}

/// Gia Lai alone (its two departments, an operator), no worker: what is approved stays queued.
async fn one_node() -> TestNode {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    start(l, |d| {
        let store = common::store::store_url_in(d);
        node_table("gialai", "127.0.0.1:0", &store)
            + &gialai_departments()
            + &admin_token("ops-1", TOK_OPS)
    })
    .await
}

/// Polls `GET url` (as `token`) until `done` holds for the JSON answer; gives up after about
/// 60 s, a bound for a test that would hang, generous for a debug build on two loaded cores.
async fn poll(http: &ApiClient, url: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut v = Value::Null;
    for _ in 0..1200 {
        let r = http.get(url).bearer_auth(token).send().await.unwrap();
        v = json_of(r).await;
        if done(&v) {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("gave up waiting on {url}: {v}");
}

/// Vietnamese has letters ASCII has not.
fn has_vietnamese(s: &str) -> bool {
    s.chars()
        .any(|c| "ăâđêôơưàảãáạằắặầấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ".contains(c))
}

/// A refusal: status, code, both messages naming `field`, the Vietnamese one in Vietnamese.
async fn refused(r: reqwest::Response, status: u16, code: &str, field: &str) -> Value {
    let v = expect_error(r, status, code).await;
    let (en, vi) = (
        v["message"].as_str().unwrap_or(""),
        v["message_vi"].as_str().unwrap_or(""),
    );
    assert!(en.contains(field), "{field:?} not in {en}");
    assert!(vi.contains(field), "{field:?} not in {vi}");
    assert!(has_vietnamese(vi), "{vi}");
    if let Some(c) = lienthong::Code::ALL.iter().find(|c| c.as_str() == code) {
        assert_ne!(vi, c.message_vi(), "the code's generic text: {v}");
    }
    for jargon in [
        "metadata.",
        "DraftApproval",
        "DiscardRequest",
        "DraftQuery",
        "MailQuery",
        "serde",
        "u32",
        "i64",
    ] {
        assert!(
            !en.contains(jargon) && !vi.contains(jargon),
            "{jargon:?} in {v}"
        );
    }
    v
}

fn signer() -> Value {
    json!({"competence": "KT. GIÁM ĐỐC", "position": "PHÓ GIÁM ĐỐC", "full_name": "Nguyễn Văn An"})
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approved_draft_is_numbered_signed_and_delivered_to_the_other_node() {
    let (gl, na) = two_nodes().await;
    let http = ApiClient::new();
    let id = take_draft(gl.store(), Mail::stttt(1)).await;
    let other = take_draft(
        gl.store(),
        Mail {
            agency: SONV,
            subject: "V/v báo cáo nhân sự",
            number: None,
            notation: None,
            summary: "V/v báo cáo nhân sự",
            ..Mail::stttt(2)
        },
    )
    .await;

    // --- the list and the detail ----------------------------------------------------------------
    let r = http
        .get(gl.url("/api/v1/drafts"))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    let list = json_of(r).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let d = &items[0];
    assert_eq!(
        (
            d["id"].as_i64(),
            &d["state"],
            &d["number"],
            &d["notation"],
            &d["summary"]
        ),
        (
            Some(id),
            &json!("draft"),
            &json!("12"),
            &json!("STTTT-VP"),
            &json!("V/v họp giao ban quý IV")
        ),
        "{d}"
    );
    assert!(d.get("body").is_none(), "the list has no body: {d}");
    let files = d["files"].as_array().unwrap();
    assert_eq!(
        files
            .iter()
            .map(|f| (f["index"].as_i64().unwrap(), f["name"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [(1, "giấy mời.pdf"), (2, "phụ lục.docx")]
    );
    assert_eq!(files[0]["size"], PDF.len());
    assert_eq!(
        files[0]["sha256"],
        lienthong::audit::hash::sha256_hex(PDF).as_str()
    );
    let r = http
        .get(gl.url("/api/v1/drafts?state=approved"))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["items"], json!([]));
    let r = http
        .get(gl.url("/api/v1/drafts?state=chờ"))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    let v = refused(r, 400, "VALUE_INVALID", "state").await;
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("draft, approved, discarded"),
        "{v}"
    );
    let r = http
        .get(gl.url("/api/v1/drafts?since=2026-01-01"))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    refused(r, 400, "VALUE_INVALID", "since").await;
    let r = http
        .get(gl.url(&format!("/api/v1/drafts/{id}")))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    let detail = json_of(r).await;
    assert!(
        detail["body"]
            .as_str()
            .unwrap()
            .contains("Đề nghị phát hành"),
        "{detail}"
    );

    // --- the files ----------------------------------------------------------------------------
    let r = http
        .get(gl.url(&format!("/api/v1/drafts/{id}/files/1")))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let header = |r: &reqwest::Response, h: &str| {
        r.headers()
            .get(h)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(header(&r, "content-type"), "application/pdf");
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    let disposition = header(&r, "content-disposition");
    assert!(
        disposition.starts_with("attachment;")
            && disposition.contains("filename*=UTF-8''gi%E1%BA%A5y%20m%E1%BB%9Di.pdf"),
        "{disposition}"
    );
    assert_eq!(&r.bytes().await.unwrap()[..], PDF);
    let r = http
        .get(gl.url(&format!("/api/v1/drafts/{id}/files/2")))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    assert_eq!(&r.bytes().await.unwrap()[..], DOCX_BYTES);
    for n in [0, 3] {
        let r = http
            .get(gl.url(&format!("/api/v1/drafts/{id}/files/{n}")))
            .bearer_auth(TOK_STTTT)
            .send()
            .await
            .unwrap();
        let v = refused(r, 404, "NOT_FOUND", "n").await;
        assert!(v["message"].as_str().unwrap().contains("has 2"), "{n}: {v}");
    }

    // --- another agency's draft is not there ------------------------------------------------
    for (method, path) in [
        ("GET", format!("/api/v1/drafts/{other}")),
        ("GET", format!("/api/v1/drafts/{other}/files/1")),
        ("POST", format!("/api/v1/drafts/{other}/approve")),
        ("POST", format!("/api/v1/drafts/{other}/discard")),
    ] {
        let req = if method == "GET" {
            http.get(gl.url(&path))
        } else if path.ends_with("approve") {
            http.post(gl.url(&path))
                .json(&json!({"recipients": [NGHEAN], "signer": signer()}))
        } else {
            http.post(gl.url(&path))
                .json(&json!({"reason": "không phải của đơn vị"}))
        };
        let r = req.bearer_auth(TOK_STTTT).send().await.unwrap();
        let v = refused(r, 404, "NOT_FOUND", "id").await;
        assert!(
            v["message_vi"].as_str().unwrap().contains("bản thảo"),
            "{path}: {v}"
        );
    }
    // Its own agency still sees it, untouched.
    let r = http
        .get(gl.url(&format!("/api/v1/drafts/{other}")))
        .bearer_auth(TOK_SONV)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["state"], "draft");

    // --- approval ---------------------------------------------------------------------------
    let approve = gl.url(&format!("/api/v1/drafts/{id}/approve"));
    let r = http
        .post(&approve)
        .bearer_auth(TOK_STTTT)
        .json(&json!({"signer": signer()}))
        .send()
        .await
        .unwrap();
    let v = refused(r, 400, "ELEMENT_MISSING", "recipients").await;
    assert!(!v["message"].as_str().unwrap().contains("metadata"), "{v}");
    let r = http
        .post(&approve)
        .bearer_auth(TOK_STTTT)
        .json(&json!({"recipients": ["000.00.00.h41"], "signer": signer()}))
        .send()
        .await
        .unwrap();
    refused(r, 400, "ORGAN_ID_INVALID", "recipients[0]").await;
    let r = http
        .post(&approve)
        .bearer_auth(TOK_STTTT)
        .json(&json!({"recipients": [NGHEAN], "numero": 3}))
        .send()
        .await
        .unwrap();
    refused(r, 400, "VALUE_INVALID", "numero").await;
    let body = json!({"recipients": [NGHEAN], "signer": signer(), "priority": 1});
    let r = http
        .post(&approve)
        .bearer_auth(TOK_STTTT)
        .header("Idempotency-Key", "duyet-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let sent = json_of(r).await;
    let doc_id = sent["id"].as_i64().unwrap();
    let document_id = sent["document_id"].as_str().unwrap().to_owned();
    // The draft's số and ký hiệu, as its mail's subject gave them.
    assert!(
        document_id.starts_with(&format!("{STTTT},")) && document_id.ends_with(",12/STTTT-VP"),
        "{sent}"
    );
    assert_eq!(
        (&sent["existing"], &sent["deliveries"][0]["recipient"]),
        (&json!(false), &json!(NGHEAN))
    );

    // The same approval with the same key: the first answer, nothing new.
    let r = http
        .post(&approve)
        .bearer_auth(TOK_STTTT)
        .header("Idempotency-Key", "duyet-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let again = json_of(r).await;
    assert_eq!(
        (
            again["id"].as_i64(),
            &again["existing"],
            &again["document_id"]
        ),
        (Some(doc_id), &json!(true), &sent["document_id"])
    );
    // The key with another request is refused before anything is numbered.
    let r = http
        .post(&approve)
        .bearer_auth(TOK_STTTT)
        .header("Idempotency-Key", "duyet-1")
        .json(&json!({"recipients": [NGHEAN, SONV], "signer": signer()}))
        .send()
        .await
        .unwrap();
    expect_error(r, 422, "IDEMPOTENCY_KEY_REUSED").await;
    // Without the key: the draft is no longer waiting.
    let r = http
        .post(&approve)
        .bearer_auth(TOK_STTTT)
        .json(&body)
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 409, "INVALID_TRANSITION").await;
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains(&format!("as document {doc_id}")),
        "{v}"
    );
    assert!(
        v["message_vi"]
            .as_str()
            .unwrap()
            .contains(&format!("văn bản số {doc_id}")),
        "{v}"
    );
    let r = http
        .post(gl.url(&format!("/api/v1/drafts/{id}/discard")))
        .bearer_auth(TOK_STTTT)
        .json(&json!({"reason": "gửi nhầm"}))
        .send()
        .await
        .unwrap();
    expect_error(r, 409, "INVALID_TRANSITION").await;
    let r = http
        .get(gl.url(&format!("/api/v1/drafts/{id}")))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    let d = json_of(r).await;
    assert_eq!(
        (&d["state"], d["message_id"].as_i64(), &d["decided_by"]),
        (
            &json!("approved"),
            Some(doc_id),
            &json!(format!("clerk:{STTTT}:van-thu"))
        ),
        "{d}"
    );
    let year = lienthong::edxml::vietnam_time(time::OffsetDateTime::now_utc()).year();
    assert_eq!(gl.store().last_number(STTTT, year).await.unwrap(), 12);

    // --- delivered, and it verifies at the other end -----------------------------------------
    let doc = poll(
        &http,
        &gl.url(&format!("/api/v1/documents/{doc_id}")),
        TOK_STTTT,
        |v| v["deliveries"][0]["state"] == "delivered",
    )
    .await;
    assert_eq!(doc["signature"]["state"], "signed", "{doc}");
    let inbox = poll(&http, &na.url("/api/v1/inbox"), TOK_NGHEAN, |v| {
        v["items"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    let item = &inbox["items"][0];
    assert_eq!(
        (
            &item["document_id"],
            &item["number"],
            &item["notation"],
            &item["subject"],
            &item["signature"]["state"]
        ),
        (
            &json!(document_id),
            &json!("12"),
            &json!("STTTT-VP"),
            &json!("V/v họp giao ban quý IV"),
            &json!("verified")
        ),
        "{item}"
    );
    let in_id = item["id"].as_i64().unwrap();
    let r = http
        .get(na.url(&format!("/api/v1/inbox/{in_id}/package")))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let package = r.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("approved.edxml");
    std::fs::write(&file, &package).unwrap();
    let (ok, out) = xmlsec_verify(&file, &[]);
    assert!(ok, "xmlsec1 refused the approved draft's package:\n{out}");
    let (ok, line) = lienthong_verify(&file, &[]);
    assert!(ok, "lienthong verify refused it: {line}");
    // The control: one byte of the signed content changed, both refuse it.
    let text = String::from_utf8(package.to_vec()).unwrap();
    let bad = dir.path().join("changed.edxml");
    std::fs::write(&bad, text.replacen("quý IV", "quý V", 1)).unwrap();
    assert!(
        !xmlsec_verify(&bad, &[]).0,
        "xmlsec1 accepted a changed one"
    );
    assert!(
        !lienthong_verify(&bad, &[]).0,
        "lienthong accepted a changed one"
    );
    // The draft's files, byte for byte, in order.
    for (n, want) in [(1, PDF), (2, DOCX_BYTES)] {
        let r = http
            .get(na.url(&format!("/api/v1/inbox/{in_id}/attachments/{n}")))
            .bearer_auth(TOK_NGHEAN)
            .send()
            .await
            .unwrap();
        assert_eq!(&r.bytes().await.unwrap()[..], want, "attachment {n}");
    }
    gl.shutdown().await;
    na.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_discarded_draft_is_never_numbered_and_a_draft_is_approved_once() {
    let gl = one_node().await;
    let http = ApiClient::new();
    let year = lienthong::edxml::vietnam_time(time::OffsetDateTime::now_utc()).year();
    let discarded = take_draft(gl.store(), Mail::stttt(1)).await;
    let plain = Mail {
        subject: "V/v đăng ký lịch công tác",
        number: None,
        notation: None,
        summary: "V/v đăng ký lịch công tác",
        ..Mail::stttt(2)
    };
    let waiting = take_draft(gl.store(), plain).await;

    // --- discard ---------------------------------------------------------------------------
    let discard = gl.url(&format!("/api/v1/drafts/{discarded}/discard"));
    for body in [json!({}), json!({"reason": "  "})] {
        let r = http
            .post(&discard)
            .bearer_auth(TOK_STTTT)
            .json(&body)
            .send()
            .await
            .unwrap();
        refused(r, 400, "ELEMENT_MISSING", "reason").await;
    }
    let r = http
        .post(&discard)
        .bearer_auth(TOK_STTTT)
        .json(&json!({"reason": "bad\u{7}reason"}))
        .send()
        .await
        .unwrap();
    refused(r, 400, "CHARACTER_NOT_ALLOWED", "reason").await;
    let r = http
        .post(&discard)
        .bearer_auth(TOK_STTTT)
        .json(&json!({"reason": "Đơn vị gửi nhầm tệp;\nsẽ gửi lại"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let d = json_of(r).await;
    assert_eq!(
        (&d["state"], &d["reason"], &d["message_id"]),
        (
            &json!("discarded"),
            &json!("Đơn vị gửi nhầm tệp;\nsẽ gửi lại"),
            &Value::Null
        ),
        "{d}"
    );
    let r = http
        .post(&discard)
        .bearer_auth(TOK_STTTT)
        .json(&json!({"reason": "lần nữa"}))
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 409, "INVALID_TRANSITION").await;
    assert!(
        v["message_vi"].as_str().unwrap().contains("đã bị hủy"),
        "{v}"
    );

    // Approving it is refused, and nothing is numbered, signed or stored.
    let r = http
        .post(gl.url(&format!("/api/v1/drafts/{discarded}/approve")))
        .bearer_auth(TOK_STTTT)
        .json(&json!({"recipients": [SONV], "signer": signer()}))
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 409, "INVALID_TRANSITION").await;
    assert!(
        v["message"].as_str().unwrap().contains("discarded")
            && v["message_vi"].as_str().unwrap().contains("gửi nhầm tệp"),
        "{v}"
    );
    assert_eq!(gl.store().last_number(STTTT, year).await.unwrap(), 0);
    let r = http
        .get(gl.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["items"], json!([]));

    // --- a draft whose mail gave no số or ký hiệu ----------------------------------------------
    let approve = gl.url(&format!("/api/v1/drafts/{waiting}/approve"));
    let r = http
        .post(&approve)
        .bearer_auth(TOK_STTTT)
        .json(&json!({"recipients": [SONV], "signer": signer()}))
        .send()
        .await
        .unwrap();
    let v = refused(r, 400, "ELEMENT_MISSING", "notation").await;
    assert!(v["message_vi"].as_str().unwrap().contains("ký hiệu"), "{v}");
    let r = http
        .post(&approve)
        .bearer_auth(TOK_STTTT)
        .json(&json!({"recipients": [SONV], "notation": "STTTT,VP", "signer": signer()}))
        .send()
        .await
        .unwrap();
    refused(r, 400, "CHARACTER_NOT_ALLOWED", "notation").await;
    let r = http
        .post(&approve)
        .bearer_auth(TOK_STTTT)
        .json(&json!({"recipients": [SONV], "notation": "STTTT-VP", "number": 500, "signer": signer()}))
        .send()
        .await
        .unwrap();
    expect_error(r, 409, "NUMBER_UNCONFIRMED").await;
    assert_eq!(gl.store().last_number(STTTT, year).await.unwrap(), 0);

    // Two approvals at once: one document, one refusal, one number taken.
    let body = json!({"recipients": [SONV], "notation": "STTTT-VP", "signer": signer()});
    let (a, b) = tokio::join!(
        http.post(&approve)
            .bearer_auth(TOK_STTTT)
            .json(&body)
            .send(),
        http.post(&approve)
            .bearer_auth(TOK_STTTT)
            .json(&body)
            .send(),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [202, 409]);
    let ok = if a.status().as_u16() == 202 { a } else { b };
    let sent = json_of(ok).await;
    // The first số of the year: the refused and discarded approvals took none.
    assert!(
        sent["document_id"]
            .as_str()
            .unwrap()
            .ends_with(",01/STTTT-VP"),
        "{sent}"
    );
    assert_eq!(gl.store().last_number(STTTT, year).await.unwrap(), 1);
    let r = http
        .get(gl.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["items"].as_array().unwrap().len(), 1);
    let r = http
        .get(gl.url("/api/v1/drafts?state=discarded"))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    let list = json_of(r).await;
    assert_eq!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [discarded]
    );

    // Every decision is in the audit chain, which verifies.
    let records = gl
        .store()
        .audit_records(&lienthong::store::AuditQuery::default())
        .await
        .unwrap();
    let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
    for want in ["mail.take", "draft.discard", "draft.approve"] {
        assert!(actions.contains(&want), "{want} not in {actions:?}");
    }
    let verdict = gl.store().verify_audit().await.unwrap();
    assert!(verdict.is_ok(), "audit chain broken: {verdict:?}");
    let report = gl.store().verify_store().await.unwrap().unwrap();
    assert!(report.is_clean(), "{:#?}", report.differences);
    gl.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_see_the_mail_log_and_the_quarantine() {
    let gl = one_node().await;
    let http = ApiClient::new();
    let draft_id = take_draft(gl.store(), Mail::stttt(1)).await;
    let q1 = take_quarantined(gl.store(), 2, "nguoidan@example.vn", "MAIL_NOT_UNDERSTOOD").await;
    let q2 = take_quarantined(gl.store(), 3, "nguoidan@example.vn", "MAIL_TOO_LARGE").await;
    let mail = gl.url("/admin/v1/mail");

    let r = http.get(&mail).bearer_auth(TOK_OPS).send().await.unwrap();
    let all = json_of(r).await;
    let ids: Vec<i64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{all}");
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let r = http
        .get(format!("{mail}?outcome=quarantined"))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    let q = json_of(r).await;
    let items = q["items"].as_array().unwrap();
    assert_eq!(
        items
            .iter()
            .map(|m| (m["id"].as_i64().unwrap(), m["code"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [(q2, "MAIL_TOO_LARGE"), (q1, "MAIL_NOT_UNDERSTOOD")]
    );
    assert!(items.iter().all(|m| m["outcome"] == "quarantined"));
    // One automatic reply per sender per interval: the first was answered, the second not.
    assert_eq!(
        (&items[1]["replied"], &items[0]["replied"]),
        (&json!(true), &json!(false))
    );
    let r = http
        .get(format!("{mail}?outcome=draft"))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    let d = json_of(r).await;
    assert_eq!(d["items"].as_array().unwrap().len(), 1, "{d}");
    assert_eq!(d["items"][0]["draft_ref"].as_i64(), Some(draft_id));
    assert_eq!(
        d["items"][0]["subject"],
        "Số 12/STTTT-VP: V/v họp giao ban quý IV"
    );
    let r = http
        .get(format!("{mail}?outcome=bounce"))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["items"], json!([]));
    let r = http
        .get(format!("{mail}?outcome=spam"))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    let v = refused(r, 400, "VALUE_INVALID", "outcome").await;
    assert!(
        v["message_vi"]
            .as_str()
            .unwrap()
            .contains("document, status, draft, bounce, quarantined"),
        "{v}"
    );

    // Paging by key.
    let r = http
        .get(format!("{mail}?per_page=2"))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    let first = json_of(r).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let next = first["next_before"].as_i64().expect("a next page");
    let r = http
        .get(format!("{mail}?per_page=2&before={next}"))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    let second = json_of(r).await;
    assert_eq!(second["items"][0]["id"].as_i64(), Some(ids[2]));
    assert!(second.get("next_before").is_none(), "{second}");
    let r = http
        .get(format!("{mail}?per_page=0"))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    refused(r, 400, "VALUE_INVALID", "per_page").await;

    // One mail; one that is not there.
    let r = http
        .get(gl.url(&format!("/admin/v1/mail/{q1}")))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    let m = json_of(r).await;
    assert_eq!(
        (&m["from"], &m["mailbox"], &m["uid"], &m["uidvalidity"]),
        (
            &json!("nguoidan@example.vn"),
            &json!(MAILBOX),
            &json!(2),
            &json!(7)
        )
    );
    let r = http
        .get(gl.url("/admin/v1/mail/99999"))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 404, "NOT_FOUND").await;
    assert!(v["message_vi"].as_str().unwrap().contains("99999"), "{v}");

    // Each API takes only its own tokens.
    let r = http.get(&mail).bearer_auth(TOK_STTTT).send().await.unwrap();
    expect_error(r, 401, "UNAUTHENTICATED").await;
    let r = http
        .get(gl.url("/api/v1/drafts"))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "UNAUTHENTICATED").await;
    gl.shutdown().await;
}

// --- the command line ----------------------------------------------------------------------------

/// Runs `lienthong ARGS --node N --token T` (no `COLUMNS`).
fn cli(n: &TestNode, token: &str, args: &[&str]) -> Output {
    bin()
        .args(args)
        .args(["--node", &n.base, "--token", token])
        .env_remove("COLUMNS")
        .env_remove("LIENTHONG_NODE")
        .env_remove("LIENTHONG_TOKEN")
        .env_remove("LIENTHONG_ADMIN_TOKEN")
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\n{}\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// The answer printed with `--json`, checked against the description of `method path`.
fn json_checked(o: &Output, method: &str, path: &str, status: u16) -> Value {
    let out = ok(o);
    if let Err(e) = spec().check(
        method,
        path,
        status,
        Some("application/json"),
        out.as_bytes(),
    ) {
        panic!("OpenAPI: {method} {path}: {e}\n{out}");
    }
    serde_json::from_str(&out).unwrap()
}

/// `drafts approve` to Sở Nội vụ with a signer and the key `cli-duyet-1`, then `extra`.
fn approve_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "drafts",
        "approve",
        "--to",
        SONV,
        "--signer",
        "Nguyễn Văn An",
        "--competence",
        "KT. GIÁM ĐỐC",
        "--idempotency-key",
        "cli-duyet-1",
    ];
    args.extend_from_slice(extra);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_shows_downloads_approves_and_discards_drafts() {
    let gl = one_node().await;
    let id = take_draft(gl.store(), Mail::stttt(1)).await;
    let other = take_draft(
        gl.store(),
        Mail {
            subject: "Số 13/STTTT-VP: V/v tổng kết năm",
            number: Some("13"),
            summary: "V/v tổng kết năm",
            ..Mail::stttt(2)
        },
    )
    .await;
    take_quarantined(gl.store(), 3, "nguoidan@example.vn", "MAIL_NOT_UNDERSTOOD").await;

    // --- list and show ----------------------------------------------------------------------
    let list = ok(&cli(&gl, TOK_STTTT, &["drafts", "list"]));
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("TRÍCH YẾU"),
        "{list}"
    );
    assert!(
        list.contains("12/STTTT-VP") && list.contains("V/v họp giao ban quý IV"),
        "{list}"
    );
    assert!(
        list.contains("13/STTTT-VP") && list.contains("V/v tổng kết năm"),
        "{list}"
    );
    assert!(list.contains("Chờ duyệt"), "{list}");
    let v = json_checked(
        &cli(
            &gl,
            TOK_STTTT,
            &["drafts", "list", "--json", "--per-page", "1"],
        ),
        "GET",
        "/api/v1/drafts",
        200,
    );
    assert_eq!(v["items"][0]["id"].as_i64(), Some(other));
    let v = json_checked(
        &cli(
            &gl,
            TOK_STTTT,
            &["drafts", "list", "--json", "--per-page", "1", "--all"],
        ),
        "GET",
        "/api/v1/drafts",
        200,
    );
    assert_eq!(v["items"].as_array().unwrap().len(), 2, "{v}");
    let out = ok(&cli(
        &gl,
        TOK_STTTT,
        &["drafts", "list", "--state", "approved"],
    ));
    assert_eq!(out, "Không có bản thảo nào.\n");
    let o = cli(&gl, TOK_STTTT, &["drafts", "list", "--state", "chờ"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("VALUE_INVALID: state:"),
        "{}",
        stderr(&o)
    );

    let show = ok(&cli(&gl, TOK_STTTT, &["drafts", "show", &id.to_string()]));
    for want in [
        format!("Bản thảo #{id} — Chờ duyệt"),
        "vanthu@stttt.gialai.gov.vn".into(),
        "giấy mời.pdf".into(),
        "phụ lục.docx".into(),
        "  Đề nghị phát hành văn bản đính kèm.".into(),
    ] {
        assert!(show.contains(&want), "{want:?} not in\n{show}");
    }
    let v = json_checked(
        &cli(
            &gl,
            TOK_STTTT,
            &["drafts", "show", &id.to_string(), "--json"],
        ),
        "GET",
        "/api/v1/drafts/{id}",
        200,
    );
    assert_eq!(v["files"].as_array().unwrap().len(), 2);

    // --- a file -------------------------------------------------------------------------------
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("giay-moi.pdf");
    ok(&cli(
        &gl,
        TOK_STTTT,
        &[
            "drafts",
            "file",
            &id.to_string(),
            "1",
            "-o",
            saved.to_str().unwrap(),
        ],
    ));
    assert_eq!(std::fs::read(&saved).unwrap(), PDF);
    let o = cli(
        &gl,
        TOK_STTTT,
        &[
            "drafts",
            "file",
            &id.to_string(),
            "9",
            "-o",
            saved.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("NOT_FOUND: n: file 9"),
        "{}",
        stderr(&o)
    );

    // --- approve ----------------------------------------------------------------------------
    let id_s = id.to_string();
    // A refusal names the flag the user typed, in both languages.
    let o = cli(
        &gl,
        TOK_STTTT,
        &approve_args(&[&id_s, "--date", "2026-13-01"]),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("VALUE_INVALID: --date 2026-13-01: date:"),
        "{err}"
    );
    assert!(err.lines().nth(1).is_some_and(has_vietnamese), "{err}");
    let out = ok(&cli(&gl, TOK_STTTT, &approve_args(&[&id_s])));
    assert!(
        out.starts_with(&format!("Đã duyệt bản thảo #{id}.\nNút đã nhận văn bản")),
        "{out}"
    );
    assert!(out.contains("12/STTTT-VP") && out.contains(SONV), "{out}");
    let v = json_checked(
        &cli(&gl, TOK_STTTT, &approve_args(&[&id_s, "--json"])),
        "POST",
        "/api/v1/drafts/{id}/approve",
        200,
    );
    assert_eq!(v["existing"], true, "{v}");
    let again = ok(&cli(&gl, TOK_STTTT, &approve_args(&[&id_s])));
    assert!(
        again.starts_with("Đây là văn bản đã gửi trước đó với cùng Idempotency-Key"),
        "{again}"
    );
    let show = ok(&cli(&gl, TOK_STTTT, &["drafts", "show", &id_s]));
    assert!(
        show.contains("Đã duyệt, đã gửi") && show.contains("sent show"),
        "{show}"
    );

    // --- discard ----------------------------------------------------------------------------
    let other_s = other.to_string();
    let out = ok(&cli(
        &gl,
        TOK_STTTT,
        &[
            "drafts",
            "discard",
            &other_s,
            "--reason",
            "Tệp đính kèm giả mạo",
        ],
    ));
    assert_eq!(
        out,
        format!(
            "Đã hủy bản thảo #{other} (lý do: Tệp đính kèm giả mạo); bản thảo sẽ không được gửi.\n"
        )
    );
    let o = cli(
        &gl,
        TOK_STTTT,
        &[
            "drafts",
            "discard",
            &other_s,
            "--reason",
            "lần nữa",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (&v["code"], &v["http_status"], &v["ok"]),
        (&json!("INVALID_TRANSITION"), &json!(409), &json!(false)),
        "{v}"
    );
    let o = cli(
        &gl,
        TOK_STTTT,
        &["drafts", "approve", &other_s, "--to", SONV, "--next-number"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("INVALID_TRANSITION: "),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("đã bị hủy"), "{}", stderr(&o));

    // --- the operator's mail log ----------------------------------------------------------------
    let out = ok(&cli(&gl, TOK_OPS, &["admin", "mail", "list"]));
    assert!(out.lines().next().unwrap().starts_with("ID"), "{out}");
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(
        out.contains("MAIL_NOT_UNDERSTOOD") && out.contains("quarantined"),
        "{out}"
    );
    let v = json_checked(
        &cli(
            &gl,
            TOK_OPS,
            &[
                "admin",
                "mail",
                "list",
                "--outcome",
                "quarantined",
                "--json",
            ],
        ),
        "GET",
        "/admin/v1/mail",
        200,
    );
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{v}");
    let q = items[0]["id"].as_i64().unwrap();
    let out = ok(&cli(
        &gl,
        TOK_OPS,
        &["admin", "mail", "show", &q.to_string()],
    ));
    for want in [
        "outcome:",
        "quarantined",
        "nguoidan@example.vn",
        "yes, an automatic reply",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
    json_checked(
        &cli(
            &gl,
            TOK_OPS,
            &["admin", "mail", "show", &q.to_string(), "--json"],
        ),
        "GET",
        "/admin/v1/mail/{id}",
        200,
    );
    let o = cli(&gl, TOK_STTTT, &["admin", "mail", "list"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("UNAUTHENTICATED"), "{}", stderr(&o));
    gl.shutdown().await;
}
