//! The clerk API's contract over real HTTP on loopback, every answer checked against
//! `schemas/openapi.yaml` (`common::openapi::ApiClient`): an `Idempotency-Key` names one request
//! (the same request again is the first answer, another request is refused before anything is
//! numbered), a document needs a file or content, and the nulls the description promises.

mod common;

use std::collections::BTreeMap;

use common::nodes::*;
use lienthong::store::Store;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Gia Lai alone (its peer Nghệ An unreachable: nothing is delivered, the store is all we look
/// at), with an operator token.
async fn gialai() -> TestNode {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    start(listener, |d| {
        config_text(
            "gialai",
            d,
            &gialai_departments(),
            ("nghean", "http://127.0.0.1:9", NGHEAN),
        ) + &admin_token("ops-1", TOK_OPS)
    })
    .await
}

const TOK_OPS: &str = "tok-ops-0123456789abcdef";

/// A form with `meta` as it is written (so key order and whitespace can vary) and `files`.
fn form(meta: &str, files: &[(&str, &[u8])]) -> Form {
    let mut form = Form::new().part(
        "metadata",
        Part::text(meta.to_owned())
            .mime_str("application/json")
            .unwrap(),
    );
    for (name, data) in files {
        form = form.part(
            "file",
            Part::bytes(data.to_vec())
                .file_name(name.to_string())
                .mime_str("application/pdf")
                .unwrap(),
        );
    }
    form
}

async fn post(node: &TestNode, key: Option<&str>, form: Form) -> reqwest::Response {
    let mut r = ApiClient::new()
        .post(node.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT);
    if let Some(k) = key {
        r = r.header("idempotency-key", k);
    }
    r.multipart(form).send().await.unwrap()
}

fn year() -> i32 {
    lienthong::edxml::vietnam_time(time::OffsetDateTime::now_utc()).year()
}

async fn sent_count(node: &TestNode) -> usize {
    let r = ApiClient::new()
        .get(node.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    json_of(r).await["items"].as_array().unwrap().len()
}

const META: &str = r#"{"recipients": ["000.00.00.H41"], "notation": "STTTT-CĐS",
    "subject": "V/v triển khai chữ ký số", "signer": {"full_name": "Nguyễn Văn An"}}"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_key_reused_for_another_request_is_refused_and_takes_no_number() {
    let node = gialai().await;
    let last = async || node.node.store.last_number(STTTT, year()).await.unwrap();
    let pdf: &[(&str, &[u8])] = &[("công văn.pdf", PDF)];

    let r = post(&node, Some("k-1"), form(META, pdf)).await;
    assert_eq!(r.status().as_u16(), 202);
    let first = json_of(r).await;
    assert_eq!(first["existing"], false);
    assert_eq!(first["warnings"], json!([]));

    // The same request — even with its metadata's keys in another order, other whitespace and
    // a field spelled out at its default — is the first answer.
    for meta in [
        META.to_owned(),
        r#"{"signer":{"full_name":"Nguyễn Văn An"},"subject":"V/v triển khai chữ ký số",
            "notation":"STTTT-CĐS","recipients":["000.00.00.H41"],"paper":false}"#
            .to_owned(),
    ] {
        let r = post(&node, Some("k-1"), form(&meta, pdf)).await;
        assert_eq!(r.status().as_u16(), 200);
        let again = json_of(r).await;
        assert_eq!(again["existing"], true, "{again}");
        assert_eq!(again["id"], first["id"]);
        assert_eq!(again["deliveries"], first["deliveries"]);
    }
    assert_eq!(last().await, 1);

    // Another subject, other file bytes, another file name, another recipient, no file: refused,
    // naming the key and what differs.
    let other_subject = META.replace("triển khai", "tạm dừng");
    let other_recipient = META.replace("000.00.00.H41", "000.00.04.H21");
    let cases: [(&str, Form, &str); 5] = [
        ("subject", form(&other_subject, pdf), "metadata.subject"),
        (
            "file bytes",
            form(META, &[("công văn.pdf", b"%PDF-1.4 other")]),
            "files[0] (its bytes)",
        ),
        (
            "file name",
            form(META, &[("quyết định.pdf", PDF)]),
            "files[0].name",
        ),
        (
            "recipient",
            form(&other_recipient, pdf),
            "metadata.recipients",
        ),
        (
            "no file",
            form(
                &META.replace("\"subject\"", "\"content\": \"Nội dung\", \"subject\""),
                &[],
            ),
            "metadata.content",
        ),
    ];
    for (what, f, differs) in cases {
        let r = post(&node, Some("k-1"), f).await;
        let e = expect_error(r, 422, "IDEMPOTENCY_KEY_REUSED").await;
        let msg = e["message"].as_str().unwrap();
        assert!(msg.contains("\"k-1\""), "{what}: {msg}");
        assert!(msg.contains(differs), "{what}: {msg}");
        assert!(
            e["message_vi"].as_str().unwrap().contains("khóa mới"),
            "{what}: {e}"
        );
    }
    // Nothing stored, no number taken: the next submission gets 2.
    assert_eq!(sent_count(&node).await, 1);
    assert_eq!(last().await, 1);
    let r = post(&node, Some("k-2"), form(&other_subject, pdf)).await;
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(last().await, 2);
    // Keys are per agency: another agency's clerk may use k-1 for its own document.
    let r = ApiClient::new()
        .post(node.url("/api/v1/documents"))
        .bearer_auth(TOK_SONV)
        .header("idempotency-key", "k-1")
        .multipart(form(&META.replace("STTTT-CĐS", "SNV-VP"), pdf))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    node.shutdown().await;
}

/// Requests with one key arriving together, half of them another request: exactly one is
/// stored, the same requests get it back, the others are refused, and one number is taken.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_with_one_key_store_one_document() {
    let node = gialai().await;
    let pdf: &[(&str, &[u8])] = &[("công văn.pdf", PDF)];
    let other = META.replace("triển khai", "tạm dừng");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let url = node.url("/api/v1/documents");
        let meta = if i % 2 == 0 {
            META.to_owned()
        } else {
            other.clone()
        };
        let f = form(&meta, pdf);
        tasks.spawn(async move {
            let r = ApiClient::new()
                .post(url)
                .bearer_auth(TOK_STTTT)
                .header("idempotency-key", "same-key")
                .multipart(f)
                .send()
                .await
                .unwrap();
            (i % 2, r.status().as_u16(), json_of(r).await)
        });
    }
    let mut answers = Vec::new();
    while let Some(a) = tasks.join_next().await {
        answers.push(a.unwrap());
    }
    let stored: Vec<&(usize, u16, Value)> = answers.iter().filter(|a| a.1 == 202).collect();
    assert_eq!(stored.len(), 1, "{answers:?}");
    let (winner, _, doc) = stored[0];
    let mut by_status: BTreeMap<(bool, u16), usize> = BTreeMap::new();
    for (variant, status, body) in &answers {
        *by_status.entry((variant == winner, *status)).or_default() += 1;
        match (variant == winner, status) {
            (true, 202) => {}
            (true, 200) => {
                assert_eq!(body["id"], doc["id"]);
                assert_eq!(body["existing"], true);
            }
            (false, 422) => assert_eq!(body["code"], "IDEMPOTENCY_KEY_REUSED"),
            other => panic!("unexpected {other:?}: {body}"),
        }
    }
    assert_eq!(by_status[&(true, 200)], 3, "{by_status:?}");
    assert_eq!(by_status[&(false, 422)], 4, "{by_status:?}");
    assert_eq!(sent_count(&node).await, 1);
    assert_eq!(node.node.store.last_number(STTTT, year()).await.unwrap(), 1);
    node.shutdown().await;
}

/// No file and no content is refused (Decree 30: the document is the signed file); content
/// without a file is accepted with the warning `NO_FILE`; the same for an update and a
/// replacement.
#[tokio::test(flavor = "multi_thread")]
async fn a_document_needs_a_file_or_content() {
    let node = gialai().await;
    let http = ApiClient::new();
    let last = async || {
        node.node
            .store
            .last_number(STTTT, year())
            .await
            .unwrap_or(0)
    };
    for meta in [
        META.to_owned(),
        META.replace("\"subject\"", "\"content\": \" \\n \", \"subject\""),
    ] {
        let r = post(&node, None, form(&meta, &[])).await;
        let e = expect_error(r, 400, "DOCUMENT_EMPTY").await;
        assert!(e["message"].as_str().unwrap().contains("PDF"), "{e}");
        assert!(e["message_vi"].as_str().unwrap().contains("PDF"), "{e}");
    }
    assert_eq!(last().await, 0);
    assert_eq!(sent_count(&node).await, 0);

    let with_content = META.replace("\"subject\"", "\"content\": \"Kính gửi…\", \"subject\"");
    let r = post(&node, None, form(&with_content, &[])).await;
    assert_eq!(r.status().as_u16(), 202);
    let v = json_of(r).await;
    assert_eq!(v["warnings"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["warnings"][0]["code"], "NO_FILE");
    assert!(!v["warnings"][0]["message_vi"].as_str().unwrap().is_empty());
    let id = v["id"].as_i64().unwrap();

    // An update that removes the only content leaves nothing: refused, naming the field.
    let r = http
        .post(node.url(&format!("/api/v1/documents/{id}/update")))
        .bearer_auth(TOK_STTTT)
        .json(&json!({"reason": "Bỏ nội dung", "content": ""}))
        .send()
        .await
        .unwrap();
    let e = expect_error(r, 400, "DOCUMENT_EMPTY").await;
    assert!(
        e["message"].as_str().unwrap().starts_with("update.content"),
        "{e}"
    );
    // A replacement is a document too.
    let r = http
        .post(node.url(&format!("/api/v1/documents/{id}/replace")))
        .bearer_auth(TOK_STTTT)
        .multipart(form(META, &[]).text("reason", "Thiếu tệp"))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "DOCUMENT_EMPTY").await;
    assert_eq!(last().await, 1);
    // With a file: no warning.
    let r = http
        .post(node.url(&format!("/api/v1/documents/{id}/replace")))
        .bearer_auth(TOK_STTTT)
        .multipart(form(META, &[("công văn.pdf", PDF)]).text("reason", "Bổ sung tệp"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(json_of(r).await["warnings"], json!([]));
    node.shutdown().await;
}

/// `/admin/v1/certificates` has a trust anchor, whose `agency` is null: the description types
/// it `[string, "null"]` and the checking client holds the node to it.
#[tokio::test(flavor = "multi_thread")]
async fn the_certificate_report_has_null_agencies_for_anchors() {
    let node = gialai().await;
    let r = ApiClient::new()
        .get(node.url("/admin/v1/certificates"))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v = json_of(r).await;
    let items = v["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|c| c["role"] == "anchor" && c["agency"].is_null()),
        "{v}"
    );
    assert!(
        items
            .iter()
            .any(|c| c["role"] == "agency" && c["agency"] == STTTT),
        "{v}"
    );
    node.shutdown().await;
}

/// Revocations, updates and replacements take an `Idempotency-Key` too, in the agency's one
/// namespace of keys: the same follow-up again is the first answer, the key with another reason,
/// another document or another operation is refused, and a replayed replacement takes no number.
#[tokio::test(flavor = "multi_thread")]
async fn follow_ups_take_an_idempotency_key_too() {
    let node = gialai().await;
    let http = ApiClient::new();
    let last = async || node.node.store.last_number(STTTT, year()).await.unwrap();
    let pdf: &[(&str, &[u8])] = &[("công văn.pdf", PDF)];
    let mut ids = Vec::new();
    for (i, subject) in ["V/v một", "V/v hai", "V/v ba"].into_iter().enumerate() {
        let meta = META.replace("V/v triển khai chữ ký số", subject);
        let r = post(&node, Some(&format!("doc-{i}")), form(&meta, pdf)).await;
        assert_eq!(r.status().as_u16(), 202);
        ids.push(json_of(r).await["id"].as_i64().unwrap());
    }
    let revoke = async |id: i64, key: &str, reason: &str| {
        http.post(node.url(&format!("/api/v1/documents/{id}/revoke")))
            .bearer_auth(TOK_STTTT)
            .header("idempotency-key", key)
            .json(&json!({ "reason": reason }))
            .send()
            .await
            .unwrap()
    };
    let r = revoke(ids[0], "rv-1", "Ban hành nhầm").await;
    assert_eq!(r.status().as_u16(), 202);
    let first = json_of(r).await;
    let r = revoke(ids[0], "rv-1", "Ban hành nhầm").await;
    assert_eq!(r.status().as_u16(), 200, "a replay, not FOLLOW_UP_EXISTS");
    let again = json_of(r).await;
    assert_eq!(
        (again["id"].clone(), again["existing"].clone()),
        (first["id"].clone(), json!(true))
    );
    for (id, key, reason, differs) in [
        (ids[0], "rv-1", "Lý do khác", "reason"),
        (ids[1], "rv-1", "Ban hành nhầm", "operation"),
        (ids[1], "doc-0", "Ban hành nhầm", "operation"),
    ] {
        let e = expect_error(revoke(id, key, reason).await, 422, "IDEMPOTENCY_KEY_REUSED").await;
        assert!(e["message"].as_str().unwrap().contains(differs), "{e}");
    }

    // An update, JSON body.
    let update = async |key: &str, subject: &str| {
        http.post(node.url(&format!("/api/v1/documents/{}/update", ids[1])))
            .bearer_auth(TOK_STTTT)
            .header("idempotency-key", key)
            .json(&json!({ "reason": "Sửa trích yếu", "subject": subject }))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(update("up-1", "V/v hai (sửa)").await.status().as_u16(), 202);
    assert_eq!(update("up-1", "V/v hai (sửa)").await.status().as_u16(), 200);
    let e = expect_error(
        update("up-1", "V/v hai (sửa lại)").await,
        422,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    assert!(
        e["message"].as_str().unwrap().contains("update.subject"),
        "{e}"
    );

    // A replacement: replayed, it takes no second number.
    let replace = async |key: &str, file: &[u8]| {
        http.post(node.url(&format!("/api/v1/documents/{}/replace", ids[2])))
            .bearer_auth(TOK_STTTT)
            .header("idempotency-key", key)
            .multipart(form(META, &[("thay thế.pdf", file)]).text("reason", "Ký sai thẩm quyền"))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(replace("rp-1", PDF).await.status().as_u16(), 202);
    assert_eq!(last().await, 4);
    let r = replace("rp-1", PDF).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(json_of(r).await["existing"], true);
    let e = expect_error(
        replace("rp-1", b"%PDF-1.4 khac").await,
        422,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("files[0] (its bytes)"),
        "{e}"
    );
    assert_eq!(last().await, 4);
    node.shutdown().await;
}
