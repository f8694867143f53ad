//! A receipt proves delivery to *its* recipient (Decree 30/2020 Art. 21: each receiving agency
//! acknowledges for itself).
//!
//! - Between two real nodes over mutual TLS: a document from Ủy ban Nghệ An to the three
//!   agencies of the Gia Lai node makes three deliveries, each delivered with its own 01 signed
//!   by its own agency's certificate; the sender's clerk sees each 01 in the delivery's history
//!   and downloads the signed receipt (verified with xmlsec1).
//! - Against a peer that answers what a test tells it to (a plain-HTTP server on loopback, the
//!   development transport, answering with receipts genuinely signed by the test PKI's agency
//!   keys): the real outbox of a real Nghệ An node refuses, with `RECEIPT_INVALID` and a retry,
//!   a receipt about another document, from another recipient, with another status code, naming
//!   the recipient but signed by a sibling agency's key, an untrusted or a revoked certificate,
//!   or (after a restart that narrowed the peer's `serves`) from an agency the peer no longer
//!   serves; a bad receipt listed first does not hide the right one; it keeps a 02 only from the
//!   delivery's recipient.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode as Http;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::nodes::*;
use common::*;
use lienthong::edxml::{self, OrganId, Organization, Package, StatusCode, StatusPackage};
use lienthong::node::receipt;
use lienthong::signer::KeyFileSigner;
use lienthong::store::{DeliveryState, Store};
use lienthong::verify::{Options, verify_package};
use serde_json::json;
use tokio::net::TcpListener;

/// The deadline of every wait: only a state that never comes fails on it.
const DEADLINE: Duration = Duration::from_secs(30);

/// The test-PKI identity that signs for `agency`.
fn key_of(agency: &str) -> &'static str {
    match agency {
        STTTT => "stttt-gialai",
        SONV => "sonv-gialai",
        UBND_GL => "ubnd-gialai",
        NGHEAN => "ubnd-nghean",
        other => panic!("no test key for {other}"),
    }
}

fn signer_of(agency: &str) -> KeyFileSigner {
    let k = key_of(agency);
    KeyFileSigner::from_files(
        &pki(&format!("{k}.key.pem")),
        &pki(&format!("{k}.cert.pem")),
        Some(&pki("chain.pem")),
    )
    .unwrap()
}

/// Polls `f` until it answers `Ok`; panics with the last `Err` after [`DEADLINE`].
async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match f().await {
            Ok(t) => return t,
            Err(seen) if Instant::now() >= deadline => {
                panic!("timed out after {DEADLINE:?} waiting for {what}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Submits a dispatch of Ủy ban Nghệ An to `recipients`; the message id and the delivery id per
/// recipient.
async fn submit_from_nghean(
    http: &ApiClient,
    na: &TestNode,
    recipients: &[&str],
    subject: &str,
) -> (i64, Vec<(String, i64)>) {
    let mut meta = metadata(recipients, subject);
    meta["notation"] = json!("UBND-VX");
    let r = http
        .post(na.url("/api/v1/documents"))
        .bearer_auth(TOK_NGHEAN)
        .multipart(submission(&meta, true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let v = json_of(r).await;
    let deliveries = v["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["recipient"].as_str().unwrap().to_owned(),
                d["delivery_id"].as_i64().unwrap(),
            )
        })
        .collect();
    (v["id"].as_i64().unwrap(), deliveries)
}

// --- three agencies on one node ----------------------------------------------------------------

/// The Gia Lai node with its three agencies (its store in `gl_dir`), and Nghệ An's node, over
/// mutual TLS.
async fn two_nodes(gl_dir: &Path) -> (TestNode, TestNode) {
    two_nodes_with(gl_dir, |c| c).await
}

/// [`two_nodes`], Gia Lai's configuration passed through `edit`.
async fn two_nodes_with(gl_dir: &Path, edit: fn(String) -> String) -> (TestNode, TestNode) {
    let gl_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let na_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl_url = format!("http://{}", gl_l.local_addr().unwrap());
    let na_url = format!("http://{}", na_l.local_addr().unwrap());
    let gl = start(gl_l, |_| {
        edit(config_text(
            "gialai",
            gl_dir,
            &(gialai_departments()
                + &agency_with_clerk(
                    UBND_GL,
                    "Ủy ban nhân dân tỉnh Gia Lai",
                    "ubnd-gialai",
                    TOK_UBND_GL,
                )),
            ("nghean", &na_url, NGHEAN),
        ))
    })
    .await;
    let na = start(na_l, |d| {
        config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", &gl_url, UBND_GL),
        ) + "[retry]\ninitial_backoff = \"50ms\"\nmax_backoff = \"200ms\"\n"
    })
    .await
    .with_worker();
    (gl, na)
}

/// A document to the three agencies of one node: three deliveries, each delivered with the 01 of
/// its own recipient, signed with that agency's own certificate — although every push after the
/// first is a repeat at Gia Lai, answered with the receipts it stored the first time.
#[tokio::test(flavor = "multi_thread")]
async fn three_agencies_on_one_node_each_acknowledge_for_themselves() {
    let gl_dir = tempfile::tempdir().unwrap();
    let (gl, na) = two_nodes(gl_dir.path()).await;
    let http = ApiClient::new();
    let recipients = [STTTT, SONV, UBND_GL];
    let (id, deliveries) =
        submit_from_nghean(&http, &na, &recipients, "V/v gửi ba cơ quan của Gia Lai").await;
    assert_eq!(deliveries.len(), 3);
    let document_id = na.store().message(id).await.unwrap().document_id;
    let trust = common::nodes::trust();
    for (recipient, did) in &deliveries {
        let d = eventually(&format!("delivery {did} delivered"), async || {
            let d = na.store().delivery(*did).await.map_err(|e| e.to_string())?;
            if d.state == DeliveryState::Delivered {
                Ok(d)
            } else {
                Err(format!("{d:?}"))
            }
        })
        .await;
        assert_eq!(&d.recipient, recipient);
        let kept = na.store().delivery_receipt(*did).await.unwrap().unwrap();
        let v = verify_package(&kept, &Options::new(&trust)).expect("the receipt verifies");
        let Package::Status(s) = &v.package else {
            panic!("the receipt is not a status package")
        };
        assert_eq!(s.status_code, StatusCode::Arrived);
        assert_eq!(s.response_for.effective_document_id(), document_id);
        assert_eq!(s.from.organ_id.as_str(), recipient, "the receipt's From");
        assert_eq!(
            v.signer.sha256_fingerprint,
            cert_fingerprint(&pki(&format!("{}.cert.pem", key_of(recipient)))),
            "delivery to {recipient} is proven by a receipt signed with its own certificate"
        );
    }
    // Gia Lai stored the document once, with one inbox row and one receipt per agency.
    let gl_db = common::store::Raw::connect(&gl.node.config.node.store).await;
    let rows: Vec<(String, Option<Vec<u8>>)> = on_raw!(&gl_db, raw =>
        sqlx::query_as("SELECT recipient, receipt FROM inbox ORDER BY recipient")
            .fetch_all(raw)
            .await
            .unwrap());
    gl_db.close().await;
    assert_eq!(rows.len(), 3);
    for (recipient, receipt) in rows {
        let receipt = receipt.expect("each inbox row keeps its own receipt");
        let v = verify_package(&receipt, &Options::new(&trust)).unwrap();
        let Package::Status(s) = &v.package else {
            panic!("not a status package")
        };
        assert_eq!(s.from.organ_id.as_str(), recipient);
    }
    // And its audit chain and rows agree (the receipts are attested per recipient).
    assert!(gl.store().verify_audit().await.unwrap().is_ok());
    let report = gl.store().verify_store().await.unwrap().unwrap();
    assert!(report.is_clean(), "{:#?}", report.differences);
    na.shutdown().await;
    gl.shutdown().await;
}

/// A document to the three agencies of one node that refuses it for an integrity reason (Gia
/// Lai trusts only the rogue root, so Nghệ An's signature is `CERT_UNTRUSTED` there): each
/// agency answers with its own signed 02, and each delivery ends `rejected` by the 02 of its own
/// recipient — not by the first agency's, which would leave the other two `failed`.
#[tokio::test(flavor = "multi_thread")]
async fn three_agencies_refusing_each_answer_with_their_own_02() {
    let gl_dir = tempfile::tempdir().unwrap();
    let (gl, na) = two_nodes_with(gl_dir.path(), |text| {
        let root = pki("root-ca.cert.pem").display().to_string();
        let rogue = pki("rogue-root.cert.pem").display().to_string();
        let (from, to) = (
            format!("trust = [\"{root}\"]"),
            format!("trust = [\"{rogue}\"]"),
        );
        assert!(text.contains(&from));
        text.replace(&from, &to)
    })
    .await;
    let http = ApiClient::new();
    let recipients = [STTTT, SONV, UBND_GL];
    let (id, deliveries) =
        submit_from_nghean(&http, &na, &recipients, "V/v văn bản không xác thực").await;
    assert_eq!(deliveries.len(), 3);
    for (recipient, did) in &deliveries {
        let d = eventually(&format!("delivery {did} rejected"), async || {
            let d = na.store().delivery(*did).await.map_err(|e| e.to_string())?;
            if d.state == DeliveryState::Rejected {
                Ok(d)
            } else {
                Err(format!("{d:?}"))
            }
        })
        .await;
        assert_eq!(&d.recipient, recipient);
    }
    // The history holds one 02 per recipient, each reported (and signed) by that recipient.
    let history = na.store().status_history(NGHEAN, id).await.unwrap();
    let mut reporters: Vec<(u16, String)> = history
        .iter()
        .map(|h| (h.code as u16, h.reporter.clone()))
        .collect();
    reporters.sort();
    let mut want: Vec<(u16, String)> = recipients.iter().map(|r| (2, r.to_string())).collect();
    want.sort();
    assert_eq!(reporters, want, "{history:?}");
    let trust = common::nodes::trust();
    for h in &history {
        let bytes = na.store().message_bytes(h.message_id).await.unwrap();
        let v = verify_package(&bytes, &Options::new(&trust)).expect("the 02 verifies");
        assert_eq!(
            v.signer.sha256_fingerprint,
            cert_fingerprint(&pki(&format!("{}.cert.pem", key_of(&h.reporter)))),
            "the 02 of {} is signed with its own certificate",
            h.reporter
        );
    }
    gl.shutdown().await;
    na.shutdown().await;
}

/// The sender's clerk sees the proof: each delivery's history holds its recipient's 01, and the
/// signed receipt downloads as kept and verifies with xmlsec1. Only the sending agency sees it.
#[tokio::test(flavor = "multi_thread")]
async fn the_sender_sees_and_downloads_each_recipients_receipt() {
    let gl_dir = tempfile::tempdir().unwrap();
    let (gl, na) = two_nodes(gl_dir.path()).await;
    let http = ApiClient::new();
    let (id, deliveries) =
        submit_from_nghean(&http, &na, &[SONV, UBND_GL], "V/v báo nhận từng nơi").await;
    for (_, did) in &deliveries {
        eventually(&format!("delivery {did} delivered"), async || {
            let d = na.store().delivery(*did).await.map_err(|e| e.to_string())?;
            (d.state == DeliveryState::Delivered)
                .then_some(())
                .ok_or(format!("{d:?}"))
        })
        .await;
    }
    let r = http
        .get(na.url(&format!("/api/v1/documents/{id}")))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v = json_of(r).await;
    let dir = tempfile::tempdir().unwrap();
    for d in v["deliveries"].as_array().unwrap() {
        let recipient = d["recipient"].as_str().unwrap();
        let history = d["history"].as_array().unwrap();
        let arrived: Vec<_> = history.iter().filter(|h| h["code"] == "01").collect();
        assert_eq!(arrived.len(), 1, "{d}");
        assert_eq!(arrived[0]["reporter"], recipient, "{d}");
        assert_eq!(arrived[0]["direction"], "in", "{d}");
        assert_eq!(arrived[0]["recorded_at"], d["delivered_at"], "{d}");

        let did = d["delivery_id"].as_i64().unwrap();
        let url = na.url(&format!("/api/v1/documents/{id}/deliveries/{did}/receipt"));
        let r = http.get(&url).bearer_auth(TOK_NGHEAN).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/xml");
        let bytes = r.bytes().await.unwrap().to_vec();
        assert_eq!(
            Some(bytes.clone()),
            na.store().delivery_receipt(did).await.unwrap(),
            "the bytes as kept"
        );
        let file = dir.path().join(format!("receipt-{did}.xml"));
        std::fs::write(&file, &bytes).unwrap();
        let (ok, out) = xmlsec_verify(&file, &[]);
        assert!(ok, "xmlsec1 refuses the receipt of {recipient}: {out}");
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains(&format!("<OrganId>{recipient}</OrganId>"))
                || text.contains(&format!(":OrganId>{recipient}</")),
            "the receipt names its recipient"
        );
    }
    let did = deliveries[0].1;
    // Another document of the sender: not this delivery.
    let r = http
        .get(na.url(&format!("/api/v1/documents/{id}/deliveries/999999/receipt")))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "NOT_FOUND").await;
    // Another agency (a recipient, on its own node) cannot read the sender's document.
    let r = http
        .get(gl.url(&format!("/api/v1/documents/{id}/deliveries/{did}/receipt")))
        .bearer_auth(TOK_SONV)
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "NOT_FOUND").await;
    na.shutdown().await;
    gl.shutdown().await;
}

/// Before delivery there is no receipt: `404 RECEIPT_NOT_YET`.
#[tokio::test(flavor = "multi_thread")]
async fn no_receipt_before_delivery() {
    // Nghệ An's peer is nowhere (nothing listens there): nothing can be delivered.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nowhere = format!("http://{}", reserve_port());
    let na = start(l, |d| {
        config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", &nowhere, UBND_GL),
        )
    })
    .await;
    let http = ApiClient::new();
    let (id, deliveries) = submit_from_nghean(&http, &na, &[SONV], "V/v chưa gửi").await;
    let did = deliveries[0].1;
    let r = http
        .get(na.url(&format!("/api/v1/documents/{id}/deliveries/{did}/receipt")))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "RECEIPT_NOT_YET").await;
    na.shutdown().await;
}

// --- a peer that answers what the test says ----------------------------------------------------

/// What the scripted peer answers a pushed document with.
#[derive(Clone)]
enum Answer {
    /// One `application/xml` status package: `code` from `from`, about the pushed document or,
    /// with `other_document`, about another one.
    Xml {
        from: &'static str,
        code: StatusCode,
        other_document: bool,
    },
    /// The JSON list: `(label, signer)` pairs, each a 01 about the pushed document.
    List(Vec<(&'static str, &'static str)>),
    /// A refusal (`SIGNATURE_INVALID`) with a signed 02 from `from`.
    Refused { from: &'static str },
    /// One `application/xml` 01 about the pushed document naming `from`, signed by `signer`:
    /// a key that is not `from`'s (a sibling agency's the peer holds, one under a root nobody
    /// trusts, a revoked one) — the receipt substitution a dishonest peer would try.
    SignedBy {
        from: &'static str,
        signer: Arc<KeyFileSigner>,
    },
}

fn organization(doc: &edxml::DocumentPackage, code: &str) -> Organization {
    doc.header
        .to
        .iter()
        .chain([&doc.header.from])
        .find(|o| o.organ_id.as_str() == code)
        .cloned()
        .unwrap_or_else(|| {
            Organization::new(
                OrganId::parse_strict(code).unwrap(),
                format!("Cơ quan {code}"),
            )
        })
}

/// Status `code` from `from` about `doc` (or another document), signed with `from`'s key.
fn status(doc: &edxml::DocumentPackage, from: &str, code: StatusCode, other: bool) -> Vec<u8> {
    status_signed(doc, from, code, other, &signer_of(from))
}

/// [`status`], signed by `signer`, whoever it is.
fn status_signed(
    doc: &edxml::DocumentPackage,
    from: &str,
    code: StatusCode,
    other: bool,
    signer: &KeyFileSigner,
) -> Vec<u8> {
    let now = edxml::vietnam_time(time::OffsetDateTime::now_utc());
    let mut st = StatusPackage::for_document(doc, organization(doc, from), code, "Đã đến", now);
    if other {
        st.response_for.code = "999/UBND-VX".into();
        st.response_for.document_id = None;
    }
    receipt::sign_status(&st, signer).unwrap()
}

fn answer(bytes: &[u8], how: &Answer) -> Response {
    let opts = edxml::ReadOptions {
        limits: Default::default(),
        strict: false,
    };
    let Ok(Package::Document(doc)) = edxml::read(bytes, &opts) else {
        return Http::NO_CONTENT.into_response();
    };
    match how {
        Answer::Xml {
            from,
            code,
            other_document,
        } => (
            Http::OK,
            [(CONTENT_TYPE, "application/xml")],
            status(&doc, from, *code, *other_document),
        )
            .into_response(),
        Answer::List(list) => {
            let receipts: Vec<_> = list
                .iter()
                .map(|(label, from)| {
                    json!({"recipient": label,
                           "receipt": STANDARD.encode(status(&doc, from, StatusCode::Arrived, false))})
                })
                .collect();
            (
                Http::OK,
                [(
                    CONTENT_TYPE,
                    lienthong::transport::peer::RECEIPTS_MEDIA_TYPE,
                )],
                json!({ "receipts": receipts }).to_string(),
            )
                .into_response()
        }
        Answer::Refused { from } => (
            Http::UNPROCESSABLE_ENTITY,
            [(CONTENT_TYPE, "application/json")],
            json!({
                "code": "SIGNATURE_INVALID",
                "message": "scripted refusal",
                "message_vi": "Chữ ký số không hợp lệ.",
                "status_package": STANDARD.encode(status(&doc, from, StatusCode::Rejected, false)),
            })
            .to_string(),
        )
            .into_response(),
        Answer::SignedBy { from, signer } => (
            Http::OK,
            [(CONTENT_TYPE, "application/xml")],
            status_signed(&doc, from, StatusCode::Arrived, false, signer),
        )
            .into_response(),
    }
}

/// A plain-HTTP peer on loopback answering every push with `how`; its base URL.
async fn scripted_peer(how: Answer) -> String {
    let how = Arc::new(how);
    let app = axum::Router::new().route(
        "/peer/v1/packages",
        axum::routing::post(move |body: Bytes| {
            let how = how.clone();
            async move { answer(&body, &how) }
        }),
    );
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    url
}

/// Nghệ An's node (development plain HTTP between nodes), its store `store`, whose peer
/// `gialai`, serving `serves`, is the scripted peer answering `how`.
async fn nghean_pushing_to(how: Answer, serves: &str, store: &str) -> TestNode {
    let url = scripted_peer(how).await;
    nghean_with_peer_at(&url, serves, store).await.with_worker()
}

/// Nghệ An's node (development plain HTTP between nodes), its store `store`, whose peer
/// `gialai`, serving `serves`, is at `url`; its outbox worker not started.
async fn nghean_with_peer_at(url: &str, serves: &str, store: &str) -> TestNode {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (url, serves, store) = (url.to_owned(), serves.to_owned(), store.to_owned());
    start(l, move |_: &Path| {
        node_table("nghean", "127.0.0.1:0", &store)
            .replace("[tls]", "dev_plain_http = true\n\n[tls]")
            + &nghean_agencies()
            + &format!("[[peer]]\nname = \"gialai\"\nurl = \"{url}\"\nserves = [\"{serves}\"]\n")
            + "[retry]\ninitial_backoff = \"50ms\"\nmax_backoff = \"200ms\"\n"
    })
    .await
}

/// Sends one document to Sở Nội vụ Gia Lai through a peer answering `how`; waits until the
/// delivery's first attempt ended, stops the node (which waits for the attempt's outcome and
/// what follows it, such as a 02, to be recorded) and returns the delivery as stored.
async fn deliver_to_sonv(how: Answer, serves: &str) -> lienthong::store::DeliveryInfo {
    deliver_to(SONV, how, serves).await
}

/// [`deliver_to_sonv`], to `recipient`.
async fn deliver_to(recipient: &str, how: Answer, serves: &str) -> lienthong::store::DeliveryInfo {
    let dir = tempfile::tempdir().unwrap();
    let store = common::store::store_url_in(dir.path());
    let na = nghean_pushing_to(how, serves, &store).await;
    let http = ApiClient::new();
    let (_, deliveries) = submit_from_nghean(&http, &na, &[recipient], "V/v báo nhận").await;
    let did = deliveries[0].1;
    first_outcome(na, did, &store).await
}

/// Waits until delivery `did` of `na` (its store `store`) ended its first attempt, stops the
/// node and returns the delivery as stored.
async fn first_outcome(na: TestNode, did: i64, store: &str) -> lienthong::store::DeliveryInfo {
    let d = eventually("the first attempt's outcome", async || {
        let d = na.store().delivery(did).await.map_err(|e| e.to_string())?;
        match d.state {
            DeliveryState::Queued | DeliveryState::Sending => Err(format!("{d:?}")),
            _ => Ok(d),
        }
    })
    .await;
    na.shutdown().await;
    let reopened = common::store::open(store).await;
    let after = reopened.delivery(d.id).await.unwrap();
    reopened.close().await;
    after
}

fn assert_receipt_refused(d: &lienthong::store::DeliveryInfo, why: &str) {
    assert_eq!(d.state, DeliveryState::Retrying, "{d:?}");
    let e = d.last_error.as_ref().expect("an error");
    assert_eq!(e.code, "RECEIPT_INVALID", "{e:?}");
    assert!(e.message.contains(why), "{e:?}");
}

/// The control: Sở Nội vụ's own 01 about the document is proof.
#[tokio::test(flavor = "multi_thread")]
async fn the_recipients_own_receipt_is_proof() {
    let d = deliver_to_sonv(
        Answer::Xml {
            from: SONV,
            code: StatusCode::Arrived,
            other_document: false,
        },
        UBND_GL,
    )
    .await;
    assert_eq!(d.state, DeliveryState::Delivered, "{d:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_about_another_document_is_refused() {
    let d = deliver_to_sonv(
        Answer::Xml {
            from: SONV,
            code: StatusCode::Arrived,
            other_document: true,
        },
        UBND_GL,
    )
    .await;
    assert_receipt_refused(&d, "the receipt is about");
}

/// Ủy ban Gia Lai is served by the same peer, but the delivery is to Sở Nội vụ: its 01 proves
/// nothing about Sở Nội vụ. (Accepted as proof before this rule.)
#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_from_another_recipient_of_the_same_peer_is_refused() {
    let d = deliver_to_sonv(
        Answer::Xml {
            from: UBND_GL,
            code: StatusCode::Arrived,
            other_document: false,
        },
        UBND_GL,
    )
    .await;
    assert_receipt_refused(&d, "not from this delivery's recipient");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_with_another_status_code_is_refused() {
    let d = deliver_to_sonv(
        Answer::Xml {
            from: SONV,
            code: StatusCode::Registered,
            other_document: false,
        },
        UBND_GL,
    )
    .await;
    assert_receipt_refused(&d, "not 01");
}

/// A 01 of Ủy ban Nghệ An, this node's own agency (which the peer does not serve), is not Sở Nội
/// vụ's: refused as from another recipient. (The `serves` check cannot be what refuses it: a
/// receipt must come from the delivery's recipient, which the delivery was routed to this peer
/// for; see the next test for when `serves` decides.)
#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_from_this_nodes_own_agency_is_refused_as_from_another_recipient() {
    let d = deliver_to_sonv(
        Answer::Xml {
            from: NGHEAN,
            code: StatusCode::Arrived,
            other_document: false,
        },
        UBND_GL,
    )
    .await;
    assert_receipt_refused(
        &d,
        "the receipt comes from 000.00.00.H41, not from this delivery's recipient",
    );
}

/// A delivery keeps the route chosen when it was submitted; the peer's `serves` is read when its
/// receipt comes. After an operator restarts the node with `gialai` no longer serving Sở Nội vụ
/// (only Sở TT&TT), a delivery routed to `gialai` before is still pushed there, and Sở Nội vụ's
/// own, genuinely signed 01 through `gialai` is not proof: that peer no longer speaks for it.
#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_from_an_agency_the_peer_no_longer_serves_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::store::store_url_in(dir.path());
    let url = scripted_peer(Answer::Xml {
        from: SONV,
        code: StatusCode::Arrived,
        other_document: false,
    })
    .await;
    // Routed while `gialai` serves the whole province; not pushed (no worker).
    let na = nghean_with_peer_at(&url, UBND_GL, &store).await;
    let http = ApiClient::new();
    let (_, deliveries) = submit_from_nghean(&http, &na, &[SONV], "V/v báo nhận").await;
    let did = deliveries[0].1;
    let d = na.store().delivery(did).await.unwrap();
    assert_eq!(d.state, DeliveryState::Queued, "{d:?}");
    na.shutdown().await;
    // Restarted with `gialai` serving Sở TT&TT only.
    let na = nghean_with_peer_at(&url, STTTT, &store).await.with_worker();
    let d = first_outcome(na, did, &store).await;
    assert_receipt_refused(
        &d,
        "the receipt comes from 000.00.04.H21, which peer gialai does not serve",
    );
}

/// The receipt substitution a dishonest peer would try: a 01 that names the delivery's
/// recipient as `From` but is signed by another key. Each is `RECEIPT_INVALID` (retried), the
/// underlying refusal named: (a) Ủy ban Gia Lai's key, which the peer really holds (it serves
/// both) — `SENDER_NOT_AUTHORISED`; (b) a certificate with Ủy ban Gia Lai's very subject under a
/// root nobody trusts — `CERT_UNTRUSTED`; (c) Sở TT&TT's certificate revoked in its CA's CRL,
/// which the node fetches from the CRL server on loopback — `CERT_REVOKED`.
#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_naming_the_recipient_but_signed_by_another_key_is_refused() {
    let sibling = signer_of(UBND_GL);
    let d = deliver_to_sonv(
        Answer::SignedBy {
            from: SONV,
            signer: Arc::new(sibling),
        },
        UBND_GL,
    )
    .await;
    assert_receipt_refused(&d, "SENDER_NOT_AUTHORISED");

    let untrusted =
        KeyFileSigner::from_files(&pki("untrusted.key.pem"), &pki("untrusted.cert.pem"), None)
            .unwrap();
    let d = deliver_to_sonv(
        Answer::SignedBy {
            from: SONV,
            signer: Arc::new(untrusted),
        },
        UBND_GL,
    )
    .await;
    assert_receipt_refused(&d, "CERT_UNTRUSTED");

    // Fresh Sở TT&TT certificates from the test issuing CA (their CRL on loopback): one left
    // valid, the control that such a receipt is proof, and one revoked.
    let ca = common::testca::TestCa::new();
    assert_eq!(common::testca::ORGAN, STTTT);
    ca.leaf("stttt-valid", common::testca::Points::Crl);
    ca.leaf("stttt-revoked", common::testca::Points::Crl);
    ca.revoke("stttt-revoked");
    ca.publish_crls();
    let leaf = |name: &str| {
        Arc::new(
            KeyFileSigner::from_files(
                &ca.path(&format!("{name}.key.pem")),
                &ca.path(&format!("{name}.cert.pem")),
                Some(&ca.path("issuing-ca.cert.pem")),
            )
            .unwrap(),
        )
    };
    let d = deliver_to(
        STTTT,
        Answer::SignedBy {
            from: STTTT,
            signer: leaf("stttt-valid"),
        },
        UBND_GL,
    )
    .await;
    assert_eq!(d.state, DeliveryState::Delivered, "{d:?}");
    let d = deliver_to(
        STTTT,
        Answer::SignedBy {
            from: STTTT,
            signer: leaf("stttt-revoked"),
        },
        UBND_GL,
    )
    .await;
    assert_receipt_refused(&d, "CERT_REVOKED");
}

/// The list of receipts: the delivery's own is found among the others by its label.
#[tokio::test(flavor = "multi_thread")]
async fn the_delivery_takes_its_own_receipt_from_the_list() {
    let d = deliver_to_sonv(
        Answer::List(vec![(UBND_GL, UBND_GL), (SONV, SONV), (STTTT, STTTT)]),
        UBND_GL,
    )
    .await;
    assert_eq!(d.state, DeliveryState::Delivered, "{d:?}");
}

/// Every receipt labelled for the delivery's recipient is checked, in the peer's order: a bad
/// one listed first (Ủy ban's 01 labelled as Sở Nội vụ's) does not hide Sở Nội vụ's own; when
/// none passes, each one's refusal is named.
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_receipt_listed_first_does_not_hide_the_right_one() {
    let d = deliver_to_sonv(
        Answer::List(vec![(SONV, UBND_GL), (UBND_GL, UBND_GL), (SONV, SONV)]),
        UBND_GL,
    )
    .await;
    assert_eq!(d.state, DeliveryState::Delivered, "{d:?}");
    let d = deliver_to_sonv(Answer::List(vec![(SONV, UBND_GL), (SONV, STTTT)]), UBND_GL).await;
    assert_receipt_refused(
        &d,
        "none of the 2 receipts peer gialai labelled for 000.00.04.H21",
    );
    assert_receipt_refused(&d, "the receipt comes from 000.00.05.H21");
}

/// A label is only where to look: Ủy ban's receipt labelled as Sở Nội vụ's is still Ủy ban's.
#[tokio::test(flavor = "multi_thread")]
async fn a_mislabelled_receipt_in_the_list_is_refused() {
    let d = deliver_to_sonv(Answer::List(vec![(SONV, UBND_GL)]), UBND_GL).await;
    assert_receipt_refused(&d, "not from this delivery's recipient");
    let d = deliver_to_sonv(Answer::List(vec![(UBND_GL, UBND_GL)]), UBND_GL).await;
    assert_receipt_refused(&d, "none from this delivery's recipient");
}

/// A 02 answering a refusal moves the delivery to `rejected` only when it comes from the
/// delivery's recipient; Ủy ban Gia Lai's 02 about a delivery to Sở Nội vụ is dropped.
#[tokio::test(flavor = "multi_thread")]
async fn a_02_only_from_the_deliverys_recipient() {
    let d = deliver_to_sonv(Answer::Refused { from: UBND_GL }, UBND_GL).await;
    assert_eq!(d.state, DeliveryState::Failed, "{d:?}");
    assert_eq!(d.last_error.as_ref().unwrap().code, "SIGNATURE_INVALID");
    let d = deliver_to_sonv(Answer::Refused { from: SONV }, UBND_GL).await;
    assert_eq!(d.state, DeliveryState::Rejected, "{d:?}");
}

/// The peer endpoint answers a sender that asks for it with the list of receipts (checked
/// against `schemas/openapi.yaml` by the `ApiClient`), and an older sender, which does not ask,
/// with the one XML receipt it always got; a repeat gets the same receipts again.
#[tokio::test(flavor = "multi_thread")]
async fn the_peer_endpoint_lists_the_receipts_only_for_a_sender_that_asks() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl_url = format!("http://{}", reserve_port());
    let na = start(l, |d| {
        config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", &gl_url, UBND_GL),
        )
    })
    .await;
    let package = common::corpus::sign(&common::corpus::good());
    let push = async |accept: Option<&str>| {
        let mut r = as_peer("gialai")
            .post(na.peer_url("/peer/v1/packages"))
            .header("content-type", "application/xml");
        if let Some(a) = accept {
            r = r.header("accept", a);
        }
        let r = r.body(package.clone()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let ct = r.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
        (ct, r.bytes().await.unwrap().to_vec())
    };
    let (ct, body) = push(Some(lienthong::transport::peer::RECEIPTS_MEDIA_TYPE)).await;
    assert_eq!(ct, lienthong::transport::peer::RECEIPTS_MEDIA_TYPE);
    let list = lienthong::transport::peer::receipts_of(Some(&ct), &body).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].recipient.as_deref(), Some(NGHEAN));
    let trust = common::nodes::trust();
    let v = verify_package(&list[0].bytes, &Options::new(&trust)).unwrap();
    let Package::Status(s) = &v.package else {
        panic!("not a status package")
    };
    assert_eq!(s.from.organ_id.as_str(), NGHEAN);
    // A repeat from an older sender: the same receipt, as XML.
    let (ct, body) = push(None).await;
    assert!(ct.starts_with("application/xml"), "{ct}");
    assert_eq!(body, list[0].bytes);
    na.shutdown().await;
}
