//! Every refusal speaks to the person who reads it: bad requests of every kind sent to a real
//! node over loopback (answers checked against the OpenAPI description by the harness), and for
//! each the code, an English message naming the field as the caller sent it, a Vietnamese
//! message for this case (not the code's generic text) naming the same field, and no library
//! jargon in either.

mod common;

use common::nodes::*;
use lienthong::Code;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const TOK_OPS: &str = "tok-ops-0123456789abcdef";

/// Words of the libraries and of Rust that must never reach a caller.
const JARGON: [&str; 22] = [
    "untagged",
    "variant",
    "serde",
    "boundary",
    "edXMLEnvelope",
    "Rejection",
    "rejection",
    "axum",
    "multer",
    "Failed to",
    "i64",
    "u32",
    "u8",
    "usize",
    "struct ",
    "Submission",
    "Recipient",
    "StatusRequest",
    "RevokeRequest",
    "ListQuery",
    "DeliveryQuery",
    "Cannot parse",
];

/// What one refusal must be.
struct Want<'a> {
    status: u16,
    code: &'a str,
    /// The field (part, parameter, header, address) as the caller sent it.
    field: &'a str,
    /// A list of values both messages must name alike.
    list: Option<&'a str>,
}

fn want<'a>(status: u16, code: &'a str, field: &'a str) -> Want<'a> {
    Want {
        status,
        code,
        field,
        list: None,
    }
}

/// Vietnamese has letters ASCII has not (ă, â, đ, ê, ô, ơ, ư and the tone marks).
fn has_vietnamese(s: &str) -> bool {
    s.chars().any(|c| {
        "ăâđêôơưàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ"
            .contains(c.to_lowercase().next().unwrap_or(c))
    })
}

async fn check(case: &str, r: reqwest::Response, w: Want<'_>) -> Value {
    let status = r.status().as_u16();
    let v = json_of(r).await;
    assert_eq!(
        (status, v["code"].as_str().unwrap_or("")),
        (w.status, w.code),
        "{case}: {v}"
    );
    let message = v["message"].as_str().unwrap_or("");
    let vi = v["message_vi"].as_str().unwrap_or("");
    assert!(
        message.contains(w.field),
        "{case}: message does not name {:?}: {message}",
        w.field
    );
    assert!(
        vi.contains(w.field),
        "{case}: message_vi does not name {:?}: {vi}",
        w.field
    );
    assert!(
        has_vietnamese(vi),
        "{case}: message_vi without Vietnamese diacritics: {vi}"
    );
    if let Some(code) = Code::ALL.iter().find(|c| c.as_str() == w.code) {
        assert_ne!(vi, code.message_vi(), "{case}: the code's generic text");
    }
    for j in JARGON {
        assert!(!message.contains(j), "{case}: {j:?} in {message}");
        assert!(!vi.contains(j), "{case}: {j:?} in {vi}");
    }
    if let Some(list) = w.list {
        assert!(
            message.contains(list) && vi.contains(list),
            "{case}: {list:?} not in both: {v}"
        );
    }
    v
}

fn metadata_part(text: &str) -> Form {
    Form::new().part(
        "metadata",
        Part::text(text.to_owned())
            .mime_str("application/json")
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_names_the_field_as_sent_in_both_languages() {
    let gl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = start(gl, |d| {
        config_text(
            "gialai",
            d,
            &gialai_departments(),
            ("nghean", "http://127.0.0.1:9", NGHEAN),
        ) + &admin_token("ops-1", TOK_OPS)
    })
    .await;
    let http = ApiClient::new();
    let docs = node.url("/api/v1/documents");
    let submit = |form: Form| {
        http.post(&docs)
            .bearer_auth(TOK_STTTT)
            .multipart(form)
            .send()
    };
    let meta = |recipients: Value| {
        let mut m = metadata(&[], "V/v thử nghiệm");
        m["recipients"] = recipients;
        m
    };

    // --- the metadata part ------------------------------------------------------------------
    let r = submit(submission(&meta(json!(["H41"])), true))
        .await
        .unwrap();
    check(
        "bad code first",
        r,
        want(400, "ORGAN_ID_INVALID", "metadata.recipients[0]"),
    )
    .await;
    let r = submit(submission(
        &meta(json!([NGHEAN, SONV, "000.00.00.h41"])),
        true,
    ))
    .await
    .unwrap();
    check(
        "bad code third",
        r,
        want(400, "ORGAN_ID_INVALID", "metadata.recipients[2]"),
    )
    .await;
    let r = submit(submission(
        &meta(json!([{"name": "UBND tỉnh Nghệ An"}])),
        true,
    ))
    .await
    .unwrap();
    check(
        "object without code",
        r,
        want(400, "ELEMENT_MISSING", "metadata.recipients[0].code"),
    )
    .await;
    let r = submit(submission(
        &meta(json!([NGHEAN, {"code": SONV, "name": "Sở", "tel": 1}])),
        true,
    ))
    .await
    .unwrap();
    check(
        "unknown key of a recipient",
        r,
        want(400, "VALUE_INVALID", "metadata.recipients[1].tel"),
    )
    .await;
    let r = submit(submission(&meta(json!([NGHEAN, 41])), true))
        .await
        .unwrap();
    let v = check(
        "recipient a number",
        r,
        want(400, "VALUE_INVALID", "metadata.recipients[1]"),
    )
    .await;
    assert!(
        v["message"].as_str().unwrap().contains("agency code"),
        "{v}"
    );
    let r = submit(submission(&meta(json!([NGHEAN, NGHEAN])), true))
        .await
        .unwrap();
    check(
        "listed twice",
        r,
        want(400, "VALUE_INVALID", "metadata.recipients[1]"),
    )
    .await;
    let mut m = meta(json!([NGHEAN]));
    m["colour"] = json!("đỏ");
    let r = submit(submission(&m, true)).await.unwrap();
    let v = check(
        "unknown field",
        r,
        want(400, "VALUE_INVALID", "metadata.colour"),
    )
    .await;
    assert!(
        v["message_vi"].as_str().unwrap().contains("recipients"),
        "{v}"
    );
    let mut m = meta(json!([NGHEAN]));
    m["priority"] = json!(9);
    let r = submit(submission(&m, true)).await.unwrap();
    check(
        "priority out of the list",
        r,
        Want {
            list: Some("0, 1, 2, 3, 4"),
            ..want(400, "VALUE_INVALID", "metadata.priority")
        },
    )
    .await;
    let mut m = meta(json!([NGHEAN]));
    m["priority"] = json!("khẩn");
    let r = submit(submission(&m, true)).await.unwrap();
    let v = check(
        "priority as text",
        r,
        Want {
            list: Some("0, 1, 2, 3, 4"),
            ..want(400, "VALUE_INVALID", "metadata.priority")
        },
    )
    .await;
    assert!(!v.to_string().contains("255"), "{v}");
    let mut m = meta(json!([NGHEAN]));
    m["number"] = json!("abc");
    let r = submit(submission(&m, true)).await.unwrap();
    let v = check(
        "number as text",
        r,
        want(400, "VALUE_INVALID", "metadata.number"),
    )
    .await;
    assert!(!v.to_string().contains("4294967295"), "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("1 or more")
            && v["message_vi"].as_str().unwrap().contains("từ 1 trở lên"),
        "{v}"
    );
    let mut m = meta(json!([NGHEAN]));
    m["steering_type"] = json!(300);
    let r = submit(submission(&m, true)).await.unwrap();
    check(
        "steering type too large for its type",
        r,
        Want {
            list: Some("0, 1, 2"),
            ..want(400, "VALUE_INVALID", "metadata.steering_type")
        },
    )
    .await;
    let mut m = meta(json!([NGHEAN]));
    m["subject"] = json!("dòng một\r\ndòng hai");
    let r = submit(submission(&m, true)).await.unwrap();
    check(
        "line break in subject",
        r,
        want(400, "CHARACTER_NOT_ALLOWED", "metadata.subject"),
    )
    .await;
    let mut m = meta(json!([NGHEAN]));
    m["notation"] = json!("A,B");
    let r = submit(submission(&m, true)).await.unwrap();
    check(
        "comma in notation",
        r,
        want(400, "CHARACTER_NOT_ALLOWED", "metadata.notation"),
    )
    .await;
    let mut m = meta(json!([NGHEAN]));
    m["date"] = json!("hôm nay");
    let r = submit(submission(&m, true)).await.unwrap();
    check(
        "date form",
        r,
        Want {
            list: Some("yyyy/MM/dd, yyyy-MM-dd, dd/MM/yyyy"),
            ..want(400, "VALUE_INVALID", "metadata.date")
        },
    )
    .await;
    let r = submit(submission(&meta(json!(["000.00.00.X99"])), true))
        .await
        .unwrap();
    check(
        "no route",
        r,
        want(422, "NO_ROUTE", "metadata.recipients[0]"),
    )
    .await;
    let r = submit(metadata_part("{\"recipients\": [\n  \"000.00.00.H41\",\n}"))
        .await
        .unwrap();
    let v = check("JSON syntax", r, want(400, "VALUE_INVALID", "metadata")).await;
    assert!(v["message"].as_str().unwrap().contains("line 3"), "{v}");
    assert!(v["message_vi"].as_str().unwrap().contains("dòng 3"), "{v}");
    let r = submit(metadata_part(r#"{"recipients": ["000.00.00.H41"]}"#))
        .await
        .unwrap();
    check(
        "missing notation",
        r,
        want(400, "ELEMENT_MISSING", "metadata.notation"),
    )
    .await;

    // --- the multipart form -----------------------------------------------------------------
    let only_file = Form::new().part(
        "file",
        Part::bytes(PDF.to_vec())
            .file_name("a.pdf")
            .mime_str("application/pdf")
            .unwrap(),
    );
    let r = submit(only_file).await.unwrap();
    check(
        "no metadata part",
        r,
        want(400, "ELEMENT_MISSING", "metadata"),
    )
    .await;
    let r = submit(submission(&meta(json!([NGHEAN])), false).text("attachment", "x"))
        .await
        .unwrap();
    check("unknown part", r, want(400, "VALUE_INVALID", "attachment")).await;
    let m = meta(json!([NGHEAN])).to_string();
    let r = submit(metadata_part(&m).part("metadata", Part::text(m.clone())))
        .await
        .unwrap();
    check(
        "metadata twice",
        r,
        want(400, "ELEMENT_DUPLICATE", "metadata"),
    )
    .await;
    let unnamed = Form::new().part("metadata", Part::text(m.clone())).part(
        "file",
        Part::bytes(PDF.to_vec())
            .file_name("")
            .mime_str("application/pdf")
            .unwrap(),
    );
    let r = submit(unnamed).await.unwrap();
    check(
        "file without a name",
        r,
        want(400, "VALUE_INVALID", "files[0]"),
    )
    .await;
    let body = format!(
        "--other\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{m}\r\n--other--\r\n"
    );
    let raw = |content_type: &'static str, body: String| {
        http.post(&docs)
            .bearer_auth(TOK_STTTT)
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    let r = raw("multipart/form-data; boundary=declared", body.clone())
        .await
        .unwrap();
    check(
        "parts not delimited as declared",
        r,
        want(400, "VALUE_INVALID", "body"),
    )
    .await;
    let r = raw("multipart/form-data", body.clone()).await.unwrap();
    check(
        "multipart without its delimiter",
        r,
        want(400, "VALUE_INVALID", "Content-Type"),
    )
    .await;
    let r = raw("application/json", m.clone()).await.unwrap();
    let v = check(
        "JSON instead of a form",
        r,
        want(400, "VALUE_INVALID", "Content-Type"),
    )
    .await;
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("multipart/form-data"),
        "{v}"
    );
    let r = http
        .post(&docs)
        .bearer_auth(TOK_STTTT)
        .header("Idempotency-Key", "x".repeat(201))
        .multipart(submission(&meta(json!([NGHEAN])), true))
        .send()
        .await
        .unwrap();
    check(
        "idempotency key too long",
        r,
        want(400, "VALUE_INVALID", "Idempotency-Key"),
    )
    .await;

    // --- query strings and paths ------------------------------------------------------------
    let get = |path: &str| http.get(node.url(path)).bearer_auth(TOK_STTTT).send();
    let r = get("/api/v1/documents?per_page=0").await.unwrap();
    check("per_page 0", r, want(400, "VALUE_INVALID", "per_page")).await;
    let r = get("/api/v1/inbox?per_page=many").await.unwrap();
    check(
        "per_page not a number",
        r,
        want(400, "VALUE_INVALID", "per_page"),
    )
    .await;
    let r = get("/api/v1/inbox?page=2").await.unwrap();
    let v = check("unknown parameter", r, want(400, "VALUE_INVALID", "page")).await;
    assert!(
        v["message_vi"].as_str().unwrap().contains("per_page"),
        "{v}"
    );
    let r = get("/api/v1/documents?since=yesterday").await.unwrap();
    check("since", r, want(400, "VALUE_INVALID", "since")).await;
    let r = get("/api/v1/documents?status=03").await.unwrap();
    check(
        "status on the sent list",
        r,
        want(400, "VALUE_INVALID", "status"),
    )
    .await;
    let r = get("/api/v1/inbox?status=99").await.unwrap();
    check(
        "inbox status filter",
        r,
        want(400, "STATUS_CODE_UNKNOWN", "status"),
    )
    .await;
    let r = get("/api/v1/documents/abc").await.unwrap();
    check("non-numeric id", r, want(400, "VALUE_INVALID", "id")).await;
    let r = get("/api/v1/documents/1/deliveries/first/receipt")
        .await
        .unwrap();
    check(
        "non-numeric delivery id",
        r,
        want(400, "VALUE_INVALID", "delivery_id"),
    )
    .await;
    let r = get("/api/v1/inbox/1/attachments/x").await.unwrap();
    check("non-numeric attachment", r, want(400, "VALUE_INVALID", "n")).await;

    // --- JSON bodies ------------------------------------------------------------------------
    let status = |body: reqwest::Body, content_type: &'static str| {
        http.post(node.url("/api/v1/inbox/1/status"))
            .bearer_auth(TOK_STTTT)
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    let list = "02, 03, 04, 05, 06, 15, 16";
    let r = status(json!({"code": "07"}).to_string().into(), "application/json")
        .await
        .unwrap();
    check(
        "unassigned status",
        r,
        Want {
            list: Some(list),
            ..want(400, "STATUS_CODE_UNKNOWN", "code")
        },
    )
    .await;
    let r = status(json!({"code": "01"}).to_string().into(), "application/json")
        .await
        .unwrap();
    check(
        "status 01 by hand",
        r,
        Want {
            list: Some(list),
            ..want(400, "STATUS_CODE_UNKNOWN", "code")
        },
    )
    .await;
    let r = status(
        json!({"code": "03", "note": "x"}).to_string().into(),
        "application/json",
    )
    .await
    .unwrap();
    check(
        "unknown field of a status",
        r,
        want(400, "VALUE_INVALID", "note"),
    )
    .await;
    let r = status(json!({"code": 3}).to_string().into(), "application/json")
        .await
        .unwrap();
    check(
        "status code as a number",
        r,
        want(400, "VALUE_INVALID", "code"),
    )
    .await;
    let r = status("{\"code\": \"03\"".into(), "application/json")
        .await
        .unwrap();
    check("status JSON cut off", r, want(400, "VALUE_INVALID", "body")).await;
    let r = status(json!({"code": "03"}).to_string().into(), "text/plain")
        .await
        .unwrap();
    check(
        "status as text",
        r,
        want(400, "VALUE_INVALID", "Content-Type"),
    )
    .await;
    let big = json!({"code": "03", "description": "x".repeat(3 << 20)}).to_string();
    let r = status(big.into(), "application/json").await.unwrap();
    check(
        "status body too large",
        r,
        want(413, "PACKAGE_TOO_LARGE", "body"),
    )
    .await;
    let r = http
        .post(node.url("/api/v1/documents/1/update"))
        .bearer_auth(TOK_STTTT)
        .header("Content-Type", "text/plain")
        .body("reason")
        .send()
        .await
        .unwrap();
    let v = check(
        "update as text",
        r,
        want(400, "VALUE_INVALID", "Content-Type"),
    )
    .await;
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("multipart/form-data"),
        "{v}"
    );
    let r = status(json!({"code": "02"}).to_string().into(), "application/json")
        .await
        .unwrap();
    check(
        "02 without a reason",
        r,
        want(400, "ELEMENT_MISSING", "description"),
    )
    .await;
    let r = http
        .post(node.url("/api/v1/documents/1/revoke"))
        .bearer_auth(TOK_STTTT)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    check(
        "revoke without reason",
        r,
        want(400, "ELEMENT_MISSING", "reason"),
    )
    .await;

    // --- the admin API ----------------------------------------------------------------------
    let admin = |path: &str| http.get(node.url(path)).bearer_auth(TOK_OPS).send();
    let r = admin("/admin/v1/deliveries?per_page=5000").await.unwrap();
    check("admin per_page", r, want(400, "VALUE_INVALID", "per_page")).await;
    let r = admin("/admin/v1/deliveries?state=lost").await.unwrap();
    check(
        "admin state",
        r,
        Want {
            list: Some("queued, sending, delivered"),
            ..want(400, "VALUE_INVALID", "state")
        },
    )
    .await;
    let r = admin("/admin/v1/deliveries/abc").await.unwrap();
    check("admin id", r, want(400, "VALUE_INVALID", "id")).await;
    let r = http
        .post(node.url("/admin/v1/deliveries/1/cancel"))
        .bearer_auth(TOK_OPS)
        .json(&json!({"reason": "x", "force": true}))
        .send()
        .await
        .unwrap();
    check(
        "admin unknown field",
        r,
        want(400, "VALUE_INVALID", "force"),
    )
    .await;
    let r = http
        .put(node.url(&format!("/admin/v1/registry/{NGHEAN}")))
        .bearer_auth(TOK_OPS)
        .json(&json!({"name": "UBND", "rules": [{"kind": "magic"}]}))
        .send()
        .await
        .unwrap();
    check(
        "registry rule of an unknown kind",
        r,
        Want {
            list: Some("fingerprint, subject"),
            ..want(400, "VALUE_INVALID", "rules[0].kind")
        },
    )
    .await;
    let r = admin(&format!("/admin/v1/registry/{NGHEAN}"))
        .await
        .unwrap();
    check("registry entry absent", r, want(404, "NOT_FOUND", NGHEAN)).await;
    let r = http
        .delete(node.url(&format!("/admin/v1/registry/{NGHEAN}")))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    check(
        "registry entry absent on delete",
        r,
        want(404, "NOT_FOUND", NGHEAN),
    )
    .await;

    // --- records that are not there, or not in a state for the action -------------------------
    // An operator has no agency: no "not of your agency" on admin routes.
    let no_agency = |v: &Value| {
        let vi = v["message_vi"].as_str().unwrap_or("");
        assert!(!vi.contains("cơ quan của bạn"), "{v}");
    };
    let op_post = |path: &str, body: Value| {
        http.post(node.url(path))
            .bearer_auth(TOK_OPS)
            .json(&body)
            .send()
    };
    let r = admin("/admin/v1/deliveries/999").await.unwrap();
    let v = check("delivery absent", r, want(404, "NOT_FOUND", "999")).await;
    no_agency(&v);
    assert!(
        v["message"].as_str().unwrap().contains("no delivery 999"),
        "{v}"
    );
    let r = op_post("/admin/v1/deliveries/999/retry", json!({}))
        .await
        .unwrap();
    no_agency(&check("retry absent", r, want(404, "NOT_FOUND", "999")).await);
    let r = op_post("/admin/v1/deliveries/999/cancel", json!({"reason": "nhầm"}))
        .await
        .unwrap();
    no_agency(&check("cancel absent", r, want(404, "NOT_FOUND", "999")).await);
    let r = get("/api/v1/documents/99").await.unwrap();
    let v = check("sent document absent", r, want(404, "NOT_FOUND", "99")).await;
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("no document 99 sent by your agency"),
        "{v}"
    );
    let r = get("/api/v1/inbox/99").await.unwrap();
    check("received document absent", r, want(404, "NOT_FOUND", "99")).await;
    let r = http
        .post(node.url("/api/v1/documents/99/revoke"))
        .bearer_auth(TOK_STTTT)
        .json(&json!({"reason": "Gửi nhầm"}))
        .send()
        .await
        .unwrap();
    check("revoke absent", r, want(404, "NOT_FOUND", "99")).await;

    // A document to a peer this test does not run: the outbox worker is not started, so its
    // delivery stays queued until cancelled here.
    let r = submit(submission(&meta(json!([NGHEAN])), true))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
    let list = json_of(admin("/admin/v1/deliveries").await.unwrap()).await;
    let id = list["items"][0]["delivery_id"].as_i64().unwrap();
    assert_eq!(list["items"][0]["state"], "queued", "{list}");
    let r = op_post(&format!("/admin/v1/deliveries/{id}/retry"), json!({}))
        .await
        .unwrap();
    let v = check(
        "retry of a queued delivery",
        r,
        Want {
            list: Some("queued"),
            ..want(409, "INVALID_TRANSITION", &id.to_string())
        },
    )
    .await;
    no_agency(&v);
    let vi = v["message_vi"].as_str().unwrap();
    assert!(
        vi.contains("lần chuyển") && vi.contains("“failed”") && vi.contains("“retrying”"),
        "{v}"
    );
    assert!(!vi.contains("văn bản."), "{v}");
    let r = op_post(
        &format!("/admin/v1/deliveries/{id}/cancel"),
        json!({"reason": "Gửi nhầm nơi nhận"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    let r = op_post(
        &format!("/admin/v1/deliveries/{id}/cancel"),
        json!({"reason": "Gửi nhầm nơi nhận"}),
    )
    .await
    .unwrap();
    let v = check(
        "cancel of a cancelled delivery",
        r,
        Want {
            list: Some("cancelled"),
            ..want(409, "INVALID_TRANSITION", &id.to_string())
        },
    )
    .await;
    let vi = v["message_vi"].as_str().unwrap();
    assert!(vi.contains("“queued”") && vi.contains("hủy"), "{v}");

    // --- addresses, authentication, listeners -------------------------------------------------
    let r = get("/api/v1/nothing-here").await.unwrap();
    let v = check(
        "unknown route",
        r,
        want(404, "NOT_FOUND", "/api/v1/nothing-here"),
    )
    .await;
    assert!(
        !v["message_vi"].as_str().unwrap().contains("văn bản"),
        "{v}"
    );
    let r = http
        .delete(node.url("/api/v1/inbox"))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("allow").is_some(), "405 without Allow");
    check(
        "method not taken",
        r,
        want(405, "NOT_FOUND", "/api/v1/inbox"),
    )
    .await;
    let r = http.get(&docs).send().await.unwrap();
    check("no token", r, want(401, "UNAUTHENTICATED", "Authorization")).await;
    let r = http
        .post(node.url("/peer/v1/packages"))
        .body("<edXMLEnvelope/>")
        .send()
        .await
        .unwrap();
    let v = check(
        "push to the plain listener",
        r,
        want(403, "PEER_NOT_AUTHORISED", "node.peer_listen"),
    )
    .await;
    assert_ne!(
        v["message_vi"].as_str().unwrap(),
        Code::PeerNotAuthorised.message_vi(),
        "{v}"
    );
    node.shutdown().await;
}
