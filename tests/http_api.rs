//! The HTTP surface over real HTTP on loopback: two nodes in process (Gia Lai with two
//! departments, Nghệ An), driven with reqwest. The outbox worker is not running here: the tests
//! push the stored packages to the peer endpoint themselves, as the worker would.

mod common;

use common::nodes::*;
use lienthong::edxml::{Package, StatusCode};
use lienthong::store::Store;
use lienthong::verify::{Options, verify_package};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Gia Lai and Nghệ An, each knowing the other as its peer.
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

#[tokio::test(flavor = "multi_thread")]
async fn send_receive_acknowledge_and_report_over_http() {
    let (gl, na) = two_nodes().await;
    let http = ApiClient::new();

    // --- authentication --------------------------------------------------------------------
    let r = http.get(gl.url("/api/v1/documents")).send().await.unwrap();
    expect_error(r, 401, "UNAUTHENTICATED").await;
    let r = http
        .get(gl.url("/api/v1/documents"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "UNAUTHENTICATED").await;
    // Nghệ An's token means nothing at Gia Lai.
    let r = http
        .get(gl.url("/api/v1/inbox"))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "UNAUTHENTICATED").await;

    // --- submit ----------------------------------------------------------------------------
    let meta = metadata(&[NGHEAN], "V/v thử nghiệm liên thông văn bản");
    let r = http
        .post(gl.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .header("Idempotency-Key", "idesk-1")
        .multipart(submission(&meta, true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let sent = json_of(r).await;
    let id = sent["id"].as_i64().unwrap();
    let document_id = sent["document_id"].as_str().unwrap().to_owned();
    assert!(document_id.starts_with(&format!("{STTTT},")), "{sent}");
    assert_eq!(sent["existing"], false);
    assert_eq!(sent["deliveries"][0]["recipient"], NGHEAN);

    // The same idempotency key: the first submission, nothing new.
    let r = http
        .post(gl.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .header("Idempotency-Key", "idesk-1")
        .multipart(submission(&meta, true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let again = json_of(r).await;
    assert_eq!(
        (again["id"].as_i64(), &again["existing"]),
        (Some(id), &json!(true))
    );

    // Bad metadata names the field.
    let r = http
        .post(gl.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .multipart(submission(
            &json!({"recipients": [], "notation": "X", "subject": "y"}),
            false,
        ))
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 400, "ELEMENT_MISSING").await;
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("metadata.recipients"),
        "{v}"
    );

    // --- what the sender sees, and what another agency does not --------------------------
    let r = http
        .get(gl.url(&format!("/api/v1/documents/{id}")))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let doc = json_of(r).await;
    assert_eq!(doc["document_id"], document_id.as_str());
    assert_eq!(doc["deliveries"][0]["state"], "queued");
    assert!(doc["deliveries"][0]["attempt_log"].is_array(), "{doc}");
    let r = http
        .get(gl.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["items"].as_array().unwrap().len(), 1);

    let r = http
        .get(gl.url(&format!("/api/v1/documents/{id}")))
        .bearer_auth(TOK_SONV)
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "NOT_FOUND").await;
    let r = http
        .get(gl.url(&format!("/api/v1/documents/{id}/package")))
        .bearer_auth(TOK_SONV)
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "NOT_FOUND").await;
    let r = http
        .get(gl.url("/api/v1/documents"))
        .bearer_auth(TOK_SONV)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["items"], json!([]));

    let r = http
        .get(gl.url(&format!("/api/v1/documents/{id}/package")))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/xml");
    let package = r.bytes().await.unwrap().to_vec();

    // --- the peer endpoint (as the outbox worker would push) ------------------------------
    // Over mutual TLS the client certificate says who pushes: `peer` names the node whose
    // certificate is presented; "hanoi" is a valid node certificate (Nghệ An's own) that no peer
    // of the receiving node is configured with.
    let push = |bytes: Vec<u8>, peer: Option<&str>, to: &TestNode| {
        let client = match peer {
            Some("hanoi") => peer_client("node-nghean"),
            Some(p) => as_peer(p),
            None => as_peer("gialai"),
        };
        client
            .post(to.peer_url("/peer/v1/packages"))
            .body(bytes)
            .send()
    };

    // Tampered after signing: refused, and nothing stored.
    let text = String::from_utf8(package.clone()).unwrap();
    assert!(text.contains("thử nghiệm"));
    let tampered = text.replace("thử nghiệm", "thu nghiem").into_bytes();
    let r = push(tampered, Some("gialai"), &na).await.unwrap();
    expect_error(r, 422, "DIGEST_MISMATCH").await;
    let r = http
        .get(na.url("/api/v1/inbox"))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["items"], json!([]));

    // A node certificate that is no configured peer's.
    let r = push(package.clone(), Some("hanoi"), &na).await.unwrap();
    expect_error(r, 403, "PEER_NOT_AUTHORISED").await;

    // Genuine, from Gia Lai's node: a signed 01 receipt.
    let r = push(package.clone(), None, &na).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    let receipt = r.bytes().await.unwrap().to_vec();
    let trust = trust();
    let v = verify_package(&receipt, &Options::new(&trust)).unwrap();
    let Package::Status(st) = &v.package else {
        panic!("the receipt is a status package")
    };
    assert_eq!(st.status_code, StatusCode::Arrived);
    assert_eq!(st.from.organ_id.as_str(), NGHEAN);
    assert_eq!(st.response_for.effective_document_id(), document_id);

    // Again: the very same receipt, nothing new stored.
    let r = push(package.clone(), Some("gialai"), &na).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().await.unwrap().to_vec(), receipt);

    // --- the recipient clerk ---------------------------------------------------------------
    let r = http
        .get(na.url("/api/v1/inbox"))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    let inbox = json_of(r).await;
    let items = inbox["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{inbox}");
    let in_id = items[0]["id"].as_i64().unwrap();
    assert_eq!(items[0]["document_id"], document_id.as_str());
    assert_eq!(items[0]["sender"], STTTT);
    assert!(items[0]["status"].is_null());

    let r = http
        .get(na.url(&format!("/api/v1/inbox/{in_id}")))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let item = json_of(r).await;
    assert_eq!(item["subject"], "V/v thử nghiệm liên thông văn bản");
    assert!(item["header"].is_object(), "{item}");

    let r = http
        .get(na.url(&format!("/api/v1/inbox/{in_id}/package")))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    assert_eq!(r.bytes().await.unwrap().to_vec(), package);

    let r = http
        .get(na.url(&format!("/api/v1/inbox/{in_id}/attachments/1")))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let cd = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cd.contains("filename*=UTF-8''c%C3%B4ng%20v%C4%83n.pdf"),
        "{cd}"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), PDF);
    for n in ["0", "2"] {
        let r = http
            .get(na.url(&format!("/api/v1/inbox/{in_id}/attachments/{n}")))
            .bearer_auth(TOK_NGHEAN)
            .send()
            .await
            .unwrap();
        expect_error(r, 404, "NOT_FOUND").await;
    }

    let status = |code: &str| {
        http.post(na.url(&format!("/api/v1/inbox/{in_id}/status")))
            .bearer_auth(TOK_NGHEAN)
            .json(&json!({"code": code, "description": "Đã vào sổ"}))
            .send()
    };
    let r = status("03").await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let registered = json_of(r).await;
    let status_message = registered["message_id"].as_i64().unwrap();
    let r = status("06").await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let r = status("07").await.unwrap();
    expect_error(r, 400, "STATUS_CODE_UNKNOWN").await;
    // The same report again (a retry after a lost answer) is answered as the first; another
    // 03 after 06 is refused.
    let r = status("03").await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let again = json_of(r).await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["message_id"], registered["message_id"]);
    let r = http
        .post(na.url(&format!("/api/v1/inbox/{in_id}/status")))
        .bearer_auth(TOK_NGHEAN)
        .json(&json!({"code": "03", "description": "Vào sổ lần hai"}))
        .send()
        .await
        .unwrap();
    expect_error(r, 409, "INVALID_TRANSITION").await;
    let r = http
        .get(na.url("/api/v1/inbox?status=06"))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["items"][0]["status"], "06");

    // The 03 status package back at Gia Lai (as the worker would push it): 204, and the
    // sender sees it as the recipient's latest status.
    let bytes = na.node.store.message_bytes(status_message).await.unwrap();
    let r = push(bytes, Some("nghean"), &gl).await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let r = http
        .get(gl.url(&format!("/api/v1/documents/{id}")))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    let doc = json_of(r).await;
    assert_eq!(doc["deliveries"][0]["latest_status"], "03", "{doc}");
    assert_eq!(doc["deliveries"][0]["history"][0]["code"], "03", "{doc}");

    // --- a received document is visible to its recipient agency only ---------------------
    let meta = json!({"recipients": [STTTT], "notation": "UBND-VX", "subject": "V/v phối hợp"});
    let r = http
        .post(na.url("/api/v1/documents"))
        .bearer_auth(TOK_NGHEAN)
        .multipart(submission(&meta, true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let na_id = json_of(r).await["id"].as_i64().unwrap();
    let r = http
        .get(na.url(&format!("/api/v1/documents/{na_id}/package")))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    let bytes = r.bytes().await.unwrap().to_vec();
    let r = push(bytes, Some("nghean"), &gl).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .get(gl.url("/api/v1/inbox"))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    let inbox = json_of(r).await;
    assert_eq!(inbox["items"].as_array().unwrap().len(), 1, "{inbox}");
    let gl_in = inbox["items"][0]["id"].as_i64().unwrap();
    let r = http
        .get(gl.url("/api/v1/inbox"))
        .bearer_auth(TOK_SONV)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["items"], json!([]));
    for path in ["", "/package", "/attachments/1"] {
        let r = http
            .get(gl.url(&format!("/api/v1/inbox/{gl_in}{path}")))
            .bearer_auth(TOK_SONV)
            .send()
            .await
            .unwrap();
        expect_error(r, 404, "NOT_FOUND").await;
    }
    let r = http
        .post(gl.url(&format!("/api/v1/inbox/{gl_in}/status")))
        .bearer_auth(TOK_SONV)
        .json(&json!({"code": "03"}))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "NOT_FOUND").await;

    // --- operations ------------------------------------------------------------------------
    let r = http.get(na.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http.get(na.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http.get(na.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let m = r.text().await.unwrap();
    for line in [
        "lienthong_deliveries{state=\"queued\"} 3",
        "lienthong_ingest_rejections_total{code=\"DIGEST_MISMATCH\"} 1",
        "lienthong_ingest_rejections_total{code=\"PEER_NOT_AUTHORISED\"} 1",
        "lienthong_ingest_total{outcome=\"stored\"} 1",
        "lienthong_ingest_total{outcome=\"duplicate\"} 1",
        "lienthong_oldest_pending_delivery_age_seconds ",
        "lienthong_http_requests_total{method=\"POST\",route=\"/peer/v1/packages\",status=\"200\"} 2",
    ] {
        assert!(m.contains(line), "{line} not in\n{m}");
    }

    gl.shutdown().await;
    na.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_malformed_requests_get_codes() {
    let (gl, na) = two_nodes().await;
    let http = ApiClient::new();
    let r = as_peer("gialai")
        .post(na.peer_url("/peer/v1/packages"))
        .body("<not-edxml/>")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "NOT_EDXML").await;
    // The plain (clerk) listener takes no pushes: peers are heard only over mutual TLS.
    let r = http
        .post(na.url("/peer/v1/packages"))
        .header("X-Lienthong-Peer", "gialai")
        .body("garbage")
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "PEER_NOT_AUTHORISED").await;
    let r = http
        .post(gl.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "VALUE_INVALID").await;
    let r = http
        .get(gl.url("/api/v1/inbox?per_page=0"))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "VALUE_INVALID").await;
    let r = http
        .get(gl.url("/api/v1/inbox?since=yesterday"))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "VALUE_INVALID").await;
    let r = http.get(gl.url("/nowhere")).send().await.unwrap();
    expect_error(r, 404, "NOT_FOUND").await;
    gl.shutdown().await;
    na.shutdown().await;
}

/// The server answers 413 as soon as it knows, without reading the rest of the body, and closes
/// the connection; a client still uploading may see the connection close before the answer.
async fn expect_too_large(r: reqwest::Result<reqwest::Response>) {
    match r {
        Ok(r) => {
            expect_error(r, 413, "PACKAGE_TOO_LARGE").await;
        }
        Err(e) => assert!(e.is_request(), "{e}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_package_limit_are_413() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = start(listener, |d| {
        config_text(
            "gialai",
            d,
            &gialai_departments(),
            ("nghean", "http://127.0.0.1:9", NGHEAN),
        ) + "[limits]\nmax_package_mb = 1\n"
    })
    .await;
    // No connection reuse: the server may close a connection after answering 413 before it read
    // the whole upload, and a pooled, closed connection would fail the next request.
    let http: ApiClient = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
        .into();
    let big = vec![b'x'; 2 * 1024 * 1024];
    let r = as_peer("nghean")
        .post(node.peer_url("/peer/v1/packages"))
        .body(big.clone())
        .send()
        .await;
    expect_too_large(r).await;
    let form = submission(&metadata(&[NGHEAN], "V/v tệp lớn"), false)
        .part("file", Part::bytes(big).file_name("big.pdf"));
    let r = http
        .post(node.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .multipart(form)
        .send()
        .await;
    expect_too_large(r).await;
    // A body under the limit whose package would be over it once the file is base64-encoded
    // (random bytes: not zipped): refused before it is stored, and no number is taken.
    let mut random = vec![0u8; 900 * 1024];
    fastrand::Rng::with_seed(7).fill(&mut random);
    let form = submission(&metadata(&[NGHEAN], "V/v tệp vừa"), false)
        .part("file", Part::bytes(random).file_name("scan.pdf"));
    let r = http
        .post(node.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 413, "PACKAGE_TOO_LARGE").await;
    assert!(
        v["message"].as_str().unwrap().starts_with("(package):"),
        "{v}"
    );
    let year = lienthong::edxml::vietnam_time(time::OffsetDateTime::now_utc()).year();
    assert_eq!(node.node.store.last_number(STTTT, year).await.unwrap(), 0);
    let r = http
        .get(node.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["items"], json!([]));
    let r = http.get(node.url("/metrics")).send().await.unwrap();
    let m = r.text().await.unwrap();
    assert!(
        m.contains("lienthong_ingest_rejections_total{code=\"PACKAGE_TOO_LARGE\"} 1"),
        "{m}"
    );
    node.shutdown().await;
}

#[test]
fn the_openapi_description_lists_every_route() {
    let spec = include_str!("../schemas/openapi.yaml");
    for path in [
        "/api/v1/documents:",
        "/api/v1/documents/{id}:",
        "/api/v1/documents/{id}/package:",
        "/api/v1/documents/{id}/revoke:",
        "/api/v1/documents/{id}/update:",
        "/api/v1/documents/{id}/replace:",
        "/api/v1/inbox:",
        "/api/v1/inbox/{id}:",
        "/api/v1/inbox/{id}/package:",
        "/api/v1/inbox/{id}/attachments/{n}:",
        "/api/v1/inbox/{id}/status:",
        "/peer/v1/packages:",
        "/healthz:",
        "/readyz:",
        "/metrics:",
    ] {
        assert!(spec.contains(&format!("\n  {path}\n")), "{path} missing");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_outbox_worker_delivers_through_the_peer_endpoint() {
    let (gl, na) = two_nodes().await;
    let (gl, na) = (gl.with_worker(), na.with_worker());
    let http = ApiClient::new();
    let meta = metadata(&[NGHEAN], "V/v gửi qua outbox");
    let r = http
        .post(gl.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .multipart(submission(&meta, true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let id = json_of(r).await["id"].as_i64().unwrap();

    // Delivered to Nghệ An's inbox, the receipt kept at Gia Lai.
    let mut doc = Value::Null;
    // Until the event is seen; the count (60 s in all) only bounds a test that would hang.
    for _ in 0..1200 {
        let r = http
            .get(gl.url(&format!("/api/v1/documents/{id}")))
            .bearer_auth(TOK_STTTT)
            .send()
            .await
            .unwrap();
        doc = json_of(r).await;
        if doc["deliveries"][0]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(doc["deliveries"][0]["state"], "delivered", "{doc}");
    let r = http
        .get(na.url("/api/v1/inbox"))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    let inbox = json_of(r).await;
    let in_id = inbox["items"][0]["id"].as_i64().unwrap();

    // Nghệ An registers it; the 03 flows back to Gia Lai.
    let r = http
        .post(na.url(&format!("/api/v1/inbox/{in_id}/status")))
        .bearer_auth(TOK_NGHEAN)
        .json(&json!({"code": "03"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    // Until the event is seen; the count (60 s in all) only bounds a test that would hang.
    for _ in 0..1200 {
        let r = http
            .get(gl.url(&format!("/api/v1/documents/{id}")))
            .bearer_auth(TOK_STTTT)
            .send()
            .await
            .unwrap();
        doc = json_of(r).await;
        if doc["deliveries"][0]["latest_status"] == "03" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(doc["deliveries"][0]["latest_status"], "03", "{doc}");
    gl.shutdown().await;
    na.shutdown().await;
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

#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_over_two_nodes_is_accepted_or_refused() {
    let (gl, na) = two_nodes().await;
    let (gl, na) = (gl.with_worker(), na.with_worker());
    let http = ApiClient::new();
    for (n, answer) in [(1, "15"), (2, "16")] {
        let meta = metadata(&[NGHEAN], &format!("V/v thu hồi thử {n}"));
        let r = http
            .post(gl.url("/api/v1/documents"))
            .bearer_auth(TOK_STTTT)
            .multipart(submission(&meta, false))
            .send()
            .await
            .unwrap();
        let id = json_of(r).await["id"].as_i64().unwrap();
        let doc_url = gl.url(&format!("/api/v1/documents/{id}"));
        poll(&http, &doc_url, TOK_STTTT, |d| {
            d["deliveries"][0]["state"] == "delivered"
        })
        .await;

        // No reason: refused; another agency's document: not found.
        let revoke = gl.url(&format!("/api/v1/documents/{id}/revoke"));
        let r = http
            .post(&revoke)
            .bearer_auth(TOK_STTTT)
            .json(&json!({"reason": " "}))
            .send()
            .await
            .unwrap();
        expect_error(r, 400, "ELEMENT_MISSING").await;
        let r = http
            .post(&revoke)
            .bearer_auth(TOK_SONV)
            .json(&json!({"reason": "x"}))
            .send()
            .await
            .unwrap();
        expect_error(r, 404, "NOT_FOUND").await;
        let r = http
            .post(&revoke)
            .bearer_auth(TOK_STTTT)
            .json(&json!({"reason": "Ban hành nhầm"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);

        // Nghệ An receives the revocation and answers it.
        let inbox = poll(&http, &na.url("/api/v1/inbox"), TOK_NGHEAN, |v| {
            v["items"]
                .as_array()
                .is_some_and(|i| i.iter().filter(|x| x["business_type"] == 1).count() == n)
        })
        .await;
        let items = inbox["items"].as_array().unwrap();
        let subject = format!("V/v thu hồi thử {n}");
        let of = |t: i64| {
            items
                .iter()
                .find(|x| x["business_type"] == t && x["subject"] == subject.as_str())
                .unwrap()
        };
        let (original, revocation) = (of(0)["id"].as_i64().unwrap(), of(1)["id"].as_i64().unwrap());
        let r = http
            .post(na.url(&format!("/api/v1/inbox/{revocation}/status")))
            .bearer_auth(TOK_NGHEAN)
            .json(&json!({"code": answer, "description": "Ý kiến của UBND tỉnh Nghệ An"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        let r = http
            .get(na.url(&format!("/api/v1/inbox/{original}")))
            .bearer_auth(TOK_NGHEAN)
            .send()
            .await
            .unwrap();
        let copy = json_of(r).await;
        assert_eq!(copy["revoked"], answer == "15", "{copy}");
        // One answer per revocation, and no processing status on it.
        for again in ["15", "16", "03"] {
            let r = http
                .post(na.url(&format!("/api/v1/inbox/{revocation}/status")))
                .bearer_auth(TOK_NGHEAN)
                .json(&json!({"code": again, "description": "lần nữa"}))
                .send()
                .await
                .unwrap();
            expect_error(r, 409, "INVALID_TRANSITION").await;
        }

        // The answer arrives back at Gia Lai, in the original document's history.
        poll(&http, &doc_url, TOK_STTTT, |d| {
            d["deliveries"][0]["latest_status"] == answer
        })
        .await;
        // A second revocation could never be delivered (Nghệ An keeps one per document): it is
        // refused at submission.
        let r = http
            .post(&revoke)
            .bearer_auth(TOK_STTTT)
            .json(&json!({"reason": "Thu hồi lần hai"}))
            .send()
            .await
            .unwrap();
        expect_error(r, 409, "FOLLOW_UP_EXISTS").await;
    }
    gl.shutdown().await;
    na.shutdown().await;
}

#[test]
fn serve_prints_its_address_writes_its_ready_file_answers_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        "gialai",
        dir.path(),
        &gialai_departments(),
        ("nghean", "http://127.0.0.1:9", NGHEAN),
    );
    // No `mode=rwc`: `serve` creates its database on first start.
    let text = text.replace("?mode=rwc", "");
    let file = dir.path().join("node.toml");
    std::fs::write(&file, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .arg("--ready-file")
        .arg(dir.path().join("ready"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    // Both listeners bound port 0; the ready file (written before that line) names both.
    let ready = std::fs::read_to_string(dir.path().join("ready")).unwrap();
    let mut lines = ready.lines();
    assert_eq!(
        lines.next(),
        Some(format!("listen={addr}").as_str()),
        "{ready}"
    );
    let peer: std::net::SocketAddr = lines
        .next()
        .and_then(|l| l.strip_prefix("peer_listen="))
        .unwrap_or_else(|| panic!("no peer_listen in {ready:?}"))
        .parse()
        .unwrap();
    assert_ne!(peer.port(), 0);
    std::net::TcpStream::connect(peer).expect("the peer listener is where the file says");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = ApiClient::new();
        let r = http
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let r = http
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    });

    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("lienthong serve did not stop on SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}

/// One node per SQLite store (on PostgreSQL replicas share one: tests/pg_replicas.rs): a second
/// `serve` on a store a running node holds exits 3 with
/// `STORE_UNAVAILABLE` naming the holder, and touches nothing — the first node keeps serving
/// (its leases are never taken back under it). Once the first has stopped, the store is free.
#[test]
fn sqlite_a_second_node_on_the_same_store_is_refused() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        "gialai",
        dir.path(),
        &gialai_departments(),
        ("nghean", "http://127.0.0.1:9", NGHEAN),
    );
    let file = dir.path().join("node.toml");
    std::fs::write(&file, text).unwrap();
    let serve = || {
        Command::new(env!("CARGO_BIN_EXE_lienthong"))
            .arg("serve")
            .arg("--config")
            .arg(&file)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = serve();
    let mut line = String::new();
    BufReader::new(first.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();

    let second = serve().wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(3), "{stderr}");
    assert!(second.stdout.is_empty(), "the second node never listened");
    assert!(stderr.contains("STORE_UNAVAILABLE"), "{stderr}");
    assert!(
        stderr.contains(&format!("process {} holds", first.id())),
        "{stderr}"
    );

    // The first still serves.
    let r = std::net::TcpStream::connect(&addr);
    assert!(r.is_ok(), "the first node stopped listening");
    first.kill().unwrap();
    first.wait().unwrap();
    // And once it is gone (however it ended), the store is free again.
    let mut third = serve();
    let mut line = String::new();
    BufReader::new(third.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on "), "{line:?}");
    third.kill().unwrap();
    third.wait().unwrap();
}

#[test]
fn the_openapi_description_lists_the_update_and_replace_routes() {
    let spec = include_str!("../schemas/openapi.yaml");
    for path in [
        "/api/v1/documents/{id}/update:",
        "/api/v1/documents/{id}/replace:",
    ] {
        assert!(spec.contains(&format!("\n  {path}\n")), "{path} missing");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_and_a_replacement_over_two_nodes() {
    let (gl, na) = two_nodes().await;
    let (gl, na) = (gl.with_worker(), na.with_worker());
    let http = ApiClient::new();
    let meta = metadata(&[NGHEAN], "V/v thay thế thử");
    let r = http
        .post(gl.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .multipart(submission(&meta, true))
        .send()
        .await
        .unwrap();
    let sent = json_of(r).await;
    let id = sent["id"].as_i64().unwrap();
    let original_id = sent["document_id"].as_str().unwrap().to_owned();
    poll(
        &http,
        &gl.url(&format!("/api/v1/documents/{id}")),
        TOK_STTTT,
        |d| d["deliveries"][0]["state"] == "delivered",
    )
    .await;

    // An update as JSON: the new subject reaches Nghệ An as business type 2.
    let update = gl.url(&format!("/api/v1/documents/{id}/update"));
    let r = http
        .post(&update)
        .bearer_auth(TOK_STTTT)
        .json(&json!({"subject": "V/v thay thế thử (sửa)"}))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "ELEMENT_MISSING").await;
    let r = http
        .post(&update)
        .bearer_auth(TOK_SONV)
        .json(&json!({"reason": "x", "subject": "y"}))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "NOT_FOUND").await;
    // Accepted as multipart: the new subject, and a new file in place of the old one.
    let form = Form::new()
        .part(
            "metadata",
            Part::text(
                json!({"reason": "Sửa trích yếu", "subject": "V/v thay thế thử (sửa)"}).to_string(),
            )
            .mime_str("application/json")
            .unwrap(),
        )
        .part(
            "file",
            Part::bytes(PDF.to_vec())
                .file_name("bản sửa.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    let r = http
        .post(&update)
        .bearer_auth(TOK_STTTT)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let updated = json_of(r).await;
    assert_eq!(updated["document_id"], original_id.as_str(), "{updated}");
    let update_id = updated["id"].as_i64().unwrap();
    poll(&http, &na.url("/api/v1/inbox"), TOK_NGHEAN, |v| {
        v["items"].as_array().is_some_and(|i| {
            i.iter()
                .any(|x| x["business_type"] == 2 && x["subject"] == "V/v thay thế thử (sửa)")
        })
    })
    .await;

    // The replacement: multipart like a submission, plus a reason.
    let replace = gl.url(&format!("/api/v1/documents/{id}/replace"));
    let new_meta = metadata(&[NGHEAN], "V/v thay thế thử (văn bản thay thế)");
    let r = http
        .post(&replace)
        .bearer_auth(TOK_STTTT)
        .multipart(submission(&new_meta, true))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "ELEMENT_MISSING").await;
    let r = http
        .post(&replace)
        .bearer_auth(TOK_SONV)
        .multipart(submission(&new_meta, false).text("reason", "x"))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "NOT_FOUND").await;
    let r = http
        .post(gl.url(&format!("/api/v1/documents/{update_id}/replace")))
        .bearer_auth(TOK_STTTT)
        .multipart(submission(&new_meta, false).text("reason", "x"))
        .send()
        .await
        .unwrap();
    expect_error(r, 409, "INVALID_TRANSITION").await;
    let r = http
        .post(&replace)
        .bearer_auth(TOK_STTTT)
        .multipart(submission(&new_meta, true).text("reason", "Ký sai thẩm quyền"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let replaced = json_of(r).await;
    assert_ne!(replaced["document_id"], original_id.as_str(), "{replaced}");
    let replacement = replaced["id"].as_i64().unwrap();

    // Nghệ An receives it and reads which document it replaces.
    let inbox = poll(&http, &na.url("/api/v1/inbox"), TOK_NGHEAN, |v| {
        v["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|x| x["business_type"] == 3))
    })
    .await;
    let in_id = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["business_type"] == 3)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = http
        .get(na.url(&format!("/api/v1/inbox/{in_id}/package")))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    let bytes = r.bytes().await.unwrap();
    let Package::Document(doc) =
        lienthong::edxml::read(&bytes, &lienthong::edxml::ReadOptions::default()).unwrap()
    else {
        panic!("not a document");
    };
    let b = doc.business.unwrap();
    assert_eq!(b.doc_type, lienthong::edxml::BusinessDocType::Replacement);
    assert_eq!(b.replacements[0].document_id, original_id);
    assert_eq!(b.replacements[0].organ_ids[0].as_str(), NGHEAN);
    assert_eq!(doc.attachments.len(), 1);

    // It agrees; the 15 reaches Gia Lai in the replacement's history.
    let r = http
        .post(na.url(&format!("/api/v1/inbox/{in_id}/status")))
        .bearer_auth(TOK_NGHEAN)
        .json(&json!({"code": "15", "description": "Đồng ý thay thế"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    poll(
        &http,
        &gl.url(&format!("/api/v1/documents/{replacement}")),
        TOK_STTTT,
        |d| d["deliveries"][0]["latest_status"] == "15",
    )
    .await;
    gl.shutdown().await;
    na.shutdown().await;
}

/// What no receiver would take is refused at submission, over HTTP, before a number is taken:
/// each refusal names the field as the clerk sent it, with a stable code and a Vietnamese
/// message, and the agency's sequence is where it was. A number typed far above the sequence
/// needs `confirm_number`.
#[tokio::test(flavor = "multi_thread")]
async fn submissions_no_receiver_would_take_are_refused_before_a_number_is_taken() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = start(listener, |d| {
        config_text(
            "gialai",
            d,
            &gialai_departments(),
            ("nghean", "http://127.0.0.1:9", NGHEAN),
        ) + "[limits]\nmax_attachments = 3\nmax_attachment_mb = 1\n"
    })
    .await;
    let http: ApiClient = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
        .into();
    let year = lienthong::edxml::vietnam_time(time::OffsetDateTime::now_utc()).year();
    let last = async || node.node.store.last_number(STTTT, year).await.unwrap();
    let post = async |meta: &Value, files: Vec<(&str, Vec<u8>)>| {
        let mut form = submission(meta, false);
        for (name, data) in files {
            form = form.part("file", Part::bytes(data).file_name(name.to_owned()));
        }
        http.post(node.url("/api/v1/documents"))
            .bearer_auth(TOK_STTTT)
            .multipart(form)
            .send()
            .await
            .unwrap()
    };
    let good = metadata(&[NGHEAN], "V/v thử nghiệm");
    let long_name = format!("{}.pdf", "Báo cáo tổng kết ".repeat(12));
    let evil_zip = lienthong::edxml::attachment::zip_single("../../escape.txt", b"x").unwrap();
    let r = post(&good, vec![("a.pdf", PDF.to_vec())]).await;
    assert_eq!(r.status(), 202);
    assert_eq!(last().await, 1);

    let with = |key: &str, value: Value| {
        let mut m = good.clone();
        m[key] = value;
        m
    };
    let pdf = || vec![("a.pdf", PDF.to_vec())];
    type Files<'a> = Vec<(&'a str, Vec<u8>)>;
    let cases: Vec<(Value, Files, u16, &str, &str)> = vec![
        // Malformed agency codes, each form.
        (
            with("recipients", json!(["H41"])),
            pdf(),
            400,
            "ORGAN_ID_INVALID",
            "metadata.recipients[0]",
        ),
        (
            with("recipients", json!(["000.00.00.h41"])),
            pdf(),
            400,
            "ORGAN_ID_INVALID",
            "metadata.recipients[0]",
        ),
        (
            with("recipients", json!(["000-00-00-H41"])),
            pdf(),
            400,
            "ORGAN_ID_INVALID",
            "metadata.recipients[0]",
        ),
        (
            with(
                "recipients",
                json!([NGHEAN, {"code": "H41", "name": "Nghệ An"}]),
            ),
            pdf(),
            400,
            "ORGAN_ID_INVALID",
            "metadata.recipients[1].code",
        ),
        // Well formed, but nobody serves it.
        (
            with("recipients", json!(["000.00.00.H14"])),
            pdf(),
            422,
            "NO_ROUTE",
            "metadata.recipients[0]",
        ),
        // Control characters (and a comma in the ký hiệu) in every field that reaches XML, the
        // DocumentId or a mail header.
        (
            with("subject", json!("V/v họp\r\nBcc: x@example.vn")),
            pdf(),
            400,
            "CHARACTER_NOT_ALLOWED",
            "metadata.subject",
        ),
        (
            with("notation", json!("STTTT\r\nCĐS")),
            pdf(),
            400,
            "CHARACTER_NOT_ALLOWED",
            "metadata.notation",
        ),
        (
            with("notation", json!("STTTT,CĐS")),
            pdf(),
            400,
            "CHARACTER_NOT_ALLOWED",
            "metadata.notation",
        ),
        (
            with(
                "recipients",
                json!([{"code": NGHEAN, "name": "UBND\ntỉnh Nghệ An"}]),
            ),
            pdf(),
            400,
            "CHARACTER_NOT_ALLOWED",
            "metadata.recipients[0].name",
        ),
        (
            with("signer", json!({"full_name": "Nguyễn\tVăn An"})),
            pdf(),
            400,
            "CHARACTER_NOT_ALLOWED",
            "metadata.signer.full_name",
        ),
        (
            with(
                "signer",
                json!({"full_name": "A", "position": "PHÓ\rGIÁM ĐỐC"}),
            ),
            pdf(),
            400,
            "CHARACTER_NOT_ALLOWED",
            "metadata.signer.position",
        ),
        (
            with(
                "signer",
                json!({"full_name": "A", "competence": "KT.\u{1b}GĐ"}),
            ),
            pdf(),
            400,
            "CHARACTER_NOT_ALLOWED",
            "metadata.signer.competence",
        ),
        (
            with("content", json!("Kính gửi\u{7}")),
            pdf(),
            400,
            "CHARACTER_NOT_ALLOWED",
            "metadata.content",
        ),
        (
            with("type_name", json!("Công\nvăn")),
            pdf(),
            400,
            "CHARACTER_NOT_ALLOWED",
            "metadata.type_name",
        ),
        (
            with("place", json!("Gia\nLai")),
            pdf(),
            400,
            "CHARACTER_NOT_ALLOWED",
            "metadata.place",
        ),
        (
            with("to_places", json!(["Như trên", "Lưu:\r\nVT"])),
            pdf(),
            400,
            "CHARACTER_NOT_ALLOWED",
            "metadata.to_places[1]",
        ),
        (
            with("staff", json!({"email": "a@b.vn\r\nBcc: c@d.vn"})),
            pdf(),
            400,
            "CHARACTER_NOT_ALLOWED",
            "metadata.staff.email",
        ),
        (
            good.clone(),
            vec![("a\tb.pdf", PDF.to_vec())],
            400,
            "CHARACTER_NOT_ALLOWED",
            "files[0].name",
        ),
        // File names that would harm a receiver's system (a path, a hidden extension, over
        // 255 bytes): refused, naming the file as sent.
        (
            good.clone(),
            vec![("a.pdf", vec![1]), ("12/UBND-VP.pdf", PDF.to_vec())],
            400,
            "ATTACHMENT_NAME_UNSAFE",
            "files[1].name",
        ),
        (
            good.clone(),
            vec![("hóa đơn\u{202E}fdp.exe", PDF.to_vec())],
            400,
            "ATTACHMENT_NAME_UNSAFE",
            "files[0].name",
        ),
        (
            good.clone(),
            vec![(&*long_name, PDF.to_vec())],
            400,
            "ATTACHMENT_NAME_UNSAFE",
            "files[0].name",
        ),
        // A trailing dot or space: a receiver would unzip `evil.zip.` (its name does not end
        // in `.zip`), write the archive's `../..` entries, and save it as `evil.zip`.
        (
            good.clone(),
            vec![("a.pdf", vec![1]), ("evil.zip.", evil_zip.clone())],
            400,
            "ATTACHMENT_NAME_UNSAFE",
            "files[1].name",
        ),
        (
            good.clone(),
            vec![("evil.zip ", evil_zip.clone())],
            400,
            "ATTACHMENT_NAME_UNSAFE",
            "files[0].name",
        ),
        // Two names a receiver saves as one file (case and Unicode form aside): the later one
        // is refused, naming the earlier one.
        (
            good.clone(),
            vec![
                ("a.zip", evil_zip.clone()),
                ("a.zip", evil_zip.clone()),
                ("a.zip", evil_zip.clone()),
            ],
            400,
            "ATTACHMENT_NAME_UNSAFE",
            "files[1].name",
        ),
        (
            good.clone(),
            vec![
                ("Hồ sơ.pdf", vec![1]),
                ("b.pdf", vec![2]),
                ("Ho\u{302}\u{300} so\u{31b}.PDF", vec![3]),
            ],
            400,
            "ATTACHMENT_NAME_UNSAFE",
            "files[2].name",
        ),
        // Values receivers refuse.
        (
            with("subject", json!("x".repeat(501))),
            pdf(),
            400,
            "VALUE_INVALID",
            "metadata.subject",
        ),
        (
            with("priority", json!(9)),
            pdf(),
            400,
            "VALUE_INVALID",
            "metadata.priority",
        ),
        (
            with("type", json!(7)),
            pdf(),
            400,
            "VALUE_INVALID",
            "metadata.type",
        ),
        (
            with("type", json!(-2147483648i64)),
            pdf(),
            400,
            "VALUE_INVALID",
            "metadata.type",
        ),
        (
            with("number", json!(0)),
            pdf(),
            400,
            "VALUE_INVALID",
            "metadata.number",
        ),
        (
            with("number", json!(4294967295u32)),
            pdf(),
            409,
            "NUMBER_UNCONFIRMED",
            "metadata.number",
        ),
        // Files: more than receivers accept, larger than they accept.
        (
            good.clone(),
            vec![
                ("a.pdf", vec![1]),
                ("b.pdf", vec![2]),
                ("c.pdf", vec![3]),
                ("d.pdf", vec![4]),
            ],
            400,
            "ATTACHMENT_LIMIT",
            "files",
        ),
        (
            good.clone(),
            vec![("a.pdf", vec![1]), ("big.pdf", vec![0; 1024 * 1024 + 1])],
            413,
            "ATTACHMENT_TOO_LARGE",
            "files[1]",
        ),
    ];
    for (meta, files, status, code, path) in cases {
        let names: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
        let v = expect_error(post(&meta, files).await, status, code).await;
        let message = v["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{path}:")),
            "{code}: {message}"
        );
        if code == "CHARACTER_NOT_ALLOWED" {
            assert!(v["message_vi"].as_str().unwrap().contains("ký tự"), "{v}");
        }
        if code == "ATTACHMENT_NAME_UNSAFE" {
            let vi = v["message_vi"].as_str().unwrap();
            assert!(
                vi.to_lowercase().contains("tên tệp") && vi.contains(path),
                "{v}"
            );
            assert!(message.contains("send it as"), "{message}");
            let i: usize = path["files[".len()..path.len() - "].name".len()]
                .parse()
                .unwrap();
            assert!(message.contains(&format!("{:?}", names[i])), "{message}");
            // A duplicate names the earlier file as sent, too.
            use unicode_normalization::UnicodeNormalization as _;
            let key = |n: &str| n.nfc().collect::<String>().to_lowercase();
            if let Some(j) = (0..i).find(|&j| key(&names[j]) == key(&names[i])) {
                assert!(
                    message.contains(&format!("files[{j}].name ({:?})", names[j])),
                    "{message}"
                );
            }
        }
        assert_eq!(last().await, 1, "{code} {path} took a number");
    }

    // The next accepted one is 02; a huge typed number goes through only when confirmed.
    let r = json_of(post(&good, pdf()).await).await;
    assert!(
        r["document_id"]
            .as_str()
            .unwrap()
            .ends_with(",02/STTTT-CĐS"),
        "{r}"
    );
    let mut huge = with("number", json!(4294967295u32));
    huge["confirm_number"] = json!(true);
    let r = post(&huge, pdf()).await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    assert_eq!(last().await, u32::MAX);
    node.shutdown().await;
}
