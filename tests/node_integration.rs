//! Real nodes over real HTTP on loopback, in process, each with its SQLite store in a temporary
//! folder and the real outbox worker: Gia Lai serves Ủy ban nhân dân tỉnh Gia Lai
//! (`000.00.00.H21`) and two of its departments, Sở Thông tin và Truyền thông (`000.00.05.H21`,
//! the sender) and Sở Nội vụ (`000.00.04.H21`); Nghệ An serves Ủy ban nhân dân tỉnh Nghệ An
//! (`000.00.00.H41`). Those are the four agencies the test PKI (`certs/test-only/`) has signing
//! certificates for: a node could be configured to sign for another Nghệ An code with the
//! `ubnd-nghean` key, but every receipt and status it signed would (rightly) be refused with
//! `SENDER_NOT_AUTHORISED`, because the certificate names `000.00.00.H41`.
//!
//! The retry policy is short (backoff 50–200 ms, breaker after 3 failures for 200 ms). No sleep
//! decides an outcome: every wait polls for a state with a deadline, and the deadline is the
//! only timing that can fail a test.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::corpus::*;
use common::nodes::*;
use common::*;
use lienthong::Code;
use lienthong::edxml::xml::Limits;
use lienthong::edxml::{Package, StatusCode};
use lienthong::error::FormatError;
use lienthong::store::{AnyStore, AuditQuery, InboxFilter, Store};
use lienthong::verify::{Options, verify_package};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Codes no node here serves (Hà Nội, Hồ Chí Minh City): a submission to them is refused
/// with NO_ROUTE before anything is numbered or signed.
const NOWHERE_1: &str = "000.00.00.H01";
const NOWHERE_2: &str = "000.00.00.H79";

/// The operator token of both nodes (`[[admin]] name = "ops-1"`).
const TOK_OPS: &str = "tok-ops-0123456789abcdef";
const OPS_ACTOR: &str = "operator:ops-1";

/// The overall deadline of every wait. It only bounds a test that would otherwise hang: every
/// wait ends on the event it waits for, and a debug build on two loaded cores may need many
/// seconds for what takes milliseconds alone, so the bound is generous.
const DEADLINE: Duration = Duration::from_secs(60);

// --- nodes -------------------------------------------------------------------------------------

/// The Gia Lai node's agencies: the two departments and Ủy ban nhân dân tỉnh Gia Lai.
fn gialai_agencies() -> String {
    gialai_departments()
        + &agency_with_clerk(
            UBND_GL,
            "Ủy ban nhân dân tỉnh Gia Lai",
            "ubnd-gialai",
            TOK_UBND_GL,
        )
}

/// A node's configuration: its agencies, one peer, an operator token, the short retry policy.
fn config_with_retry(
    name: &str,
    dir: &Path,
    agencies: &str,
    peer: (&str, &str, &str),
    give_up_after: &str,
) -> String {
    config_text(name, dir, agencies, peer)
        + &format!(
            r#"
[[admin]]
name = "ops-1"
sha256 = "{ops}"

[retry]
initial_backoff = "50ms"
max_backoff = "200ms"
give_up_after = "{give_up_after}"
breaker_failures = 3
breaker_cooldown = "200ms"
"#,
            ops = token_hash(TOK_OPS),
        )
}

/// [`start`], with the outbox worker running if `worker`.
async fn start_node(
    listener: TcpListener,
    text: impl Fn(&Path) -> String,
    worker: bool,
) -> TestNode {
    let mut n = start(listener, text).await;
    if worker {
        n.start_worker();
    }
    n
}

/// Binds `addr` again (retrying briefly should the kernel still hold it).
async fn bind_again(addr: SocketAddr) -> TcpListener {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) if Instant::now() < deadline => {
                eprintln!("binding {addr} again: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot bind {addr} again: {e}"),
        }
    }
}

async fn start_gialai(
    listener: TcpListener,
    nghean_url: &str,
    give_up_after: &str,
    worker: bool,
) -> TestNode {
    start_node(
        listener,
        |d| {
            config_with_retry(
                "gialai",
                d,
                &gialai_agencies(),
                ("nghean", nghean_url, NGHEAN),
                give_up_after,
            )
        },
        worker,
    )
    .await
}

async fn start_nghean(listener: TcpListener, gialai_url: &str) -> TestNode {
    start_node(
        listener,
        |d| {
            config_with_retry(
                "nghean",
                d,
                &nghean_agencies(),
                ("gialai", gialai_url, UBND_GL),
                "1h",
            )
        },
        true,
    )
    .await
}

// --- HTTP helpers ------------------------------------------------------------------------------

/// Submits a dispatch from Sở TT&TT Gia Lai; returns the message id and the delivery id per
/// recipient.
async fn submit(
    http: &ApiClient,
    gl: &TestNode,
    recipients: &[&str],
    subject: &str,
) -> (i64, Vec<(String, i64)>) {
    let form = submission(&metadata(recipients, subject), true);
    let r = http
        .post(gl.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .multipart(form)
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

/// `GET /admin/v1/deliveries/{id}` with the operator token.
async fn admin_delivery(http: &ApiClient, node: &TestNode, id: i64) -> Value {
    let r = http
        .get(node.url(&format!("/admin/v1/deliveries/{id}")))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    json_of(r).await
}

/// Polls `f` until it answers `Ok`; panics with the last `Err` (what was seen) after
/// [`DEADLINE`].
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

/// Waits until delivery `id` is in `state`.
async fn delivery_in(http: &ApiClient, node: &TestNode, id: i64, state: &str) -> Value {
    eventually(&format!("delivery {id} {state}"), async || {
        let d = admin_delivery(http, node, id).await;
        if d["state"] == state {
            Ok(d)
        } else {
            Err(d.to_string())
        }
    })
    .await
}

/// The inbox items of `agency` (through the clerk API) carrying `document_id`.
async fn inbox_with(
    http: &ApiClient,
    node: &TestNode,
    token: &str,
    document_id: &str,
) -> Vec<Value> {
    let r = http
        .get(node.url("/api/v1/inbox?per_page=1000"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    json_of(r).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["document_id"] == document_id)
        .cloned()
        .collect()
}

/// The receipt kept for delivery `id`: a trusted, signed 01 about `document_id`; returns who
/// signed it (its `From`).
async fn check_receipt(node: &TestNode, id: i64, document_id: &str) -> String {
    let receipt = node
        .store()
        .delivery_receipt(id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("delivery {id}: no receipt kept"));
    let trust = trust();
    let v = verify_package(&receipt, &Options::new(&trust)).expect("the receipt verifies");
    let Package::Status(s) = &v.package else {
        panic!("the receipt is not a status package");
    };
    assert_eq!(s.status_code, StatusCode::Arrived);
    assert_eq!(s.response_for.effective_document_id(), document_id);
    s.from.organ_id.to_string()
}

async fn assert_audit_verifies(node: &TestNode) {
    let verdict = node.store().verify_audit().await.unwrap();
    assert!(verdict.is_ok(), "audit chain broken: {verdict:?}");
    // And the rows are what the chain says (`audit verify`'s cross-check).
    let report = node.store().verify_store().await.unwrap().unwrap();
    assert!(report.is_clean(), "{:#?}", report.differences);
}

async fn audit_actions(node: &TestNode) -> Vec<(String, String, String)> {
    node.store()
        .audit_records(&AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.actor, r.action, r.entity_id))
        .collect()
}

/// Runs a test body under the overall deadline (plus room for start and shutdown).
async fn bounded(body: impl Future<Output = ()>) {
    tokio::time::timeout(DEADLINE * 3, body)
        .await
        .expect("the test ran past its overall deadline");
}

// --- a. one document, five recipients ----------------------------------------------------------

/// One dispatch from Sở TT&TT Gia Lai to three recipients: Nghệ An (a peer), Sở Nội vụ and Ủy
/// ban Gia Lai (local agencies of the same node). Adding two codes nobody here serves gets the
/// whole dispatch refused with NO_ROUTE, naming the first, and nothing stored.
#[tokio::test(flavor = "multi_thread")]
async fn one_document_to_five_recipients_across_two_nodes_and_local_agencies() {
    bounded(async {
        let gl_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let na_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gl_url = format!("http://{}", gl_l.local_addr().unwrap());
        let na_url = format!("http://{}", na_l.local_addr().unwrap());
        let gl = start_gialai(gl_l, &na_url, "1h", true).await;
        let na = start_nghean(na_l, &gl_url).await;
        let http = ApiClient::new();

        let form = submission(
            &metadata(
                &[NGHEAN, SONV, UBND_GL, NOWHERE_1, NOWHERE_2],
                "V/v gửi năm nơi nhận",
            ),
            true,
        );
        let r = http
            .post(gl.url("/api/v1/documents"))
            .bearer_auth(TOK_STTTT)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let v = expect_error(r, 422, "NO_ROUTE").await;
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("metadata.recipients[3]: {NOWHERE_1}")),
            "{v}"
        );
        let recipients = [NGHEAN, SONV, UBND_GL];
        let (id, deliveries) = submit(&http, &gl, &recipients, "V/v gửi ba nơi nhận").await;
        assert_eq!(deliveries.len(), 3);
        let number = gl.store().message(id).await.unwrap().code_number;
        assert_eq!(
            number.as_deref(),
            Some("01"),
            "the refused dispatch took no number"
        );
        let document_id = gl.store().message(id).await.unwrap().document_id;

        let mut final_states = Vec::new();
        for (recipient, did) in &deliveries {
            let d = delivery_in(&http, &gl, *did, "delivered").await;
            final_states.push((recipient.clone(), d));
        }
        for (recipient, d) in &final_states {
            match recipient.as_str() {
                NGHEAN => assert_eq!(d["route"], "peer:nghean", "{d}"),
                _ => assert_eq!(d["route"], "local", "{d}"),
            }
        }

        // Each delivery is proven by its own recipient's 01, remote and local alike.
        for (recipient, did) in &deliveries {
            let from = check_receipt(&gl, *did, &document_id).await;
            assert_eq!(&from, recipient, "delivery {did}");
        }

        // Each real recipient has it in its inbox exactly once; the sender does not.
        assert_eq!(
            inbox_with(&http, &na, TOK_NGHEAN, &document_id).await.len(),
            1
        );
        assert_eq!(
            inbox_with(&http, &gl, TOK_SONV, &document_id).await.len(),
            1
        );
        assert_eq!(
            inbox_with(&http, &gl, TOK_UBND_GL, &document_id)
                .await
                .len(),
            1
        );
        assert!(
            inbox_with(&http, &gl, TOK_STTTT, &document_id)
                .await
                .is_empty()
        );

        // The operators' view: nothing failed.
        let r = http
            .get(gl.url("/admin/v1/deliveries?state=failed"))
            .bearer_auth(TOK_OPS)
            .send()
            .await
            .unwrap();
        let failed = json_of(r).await;
        let mut codes: Vec<&str> = failed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["recipient"].as_str().unwrap())
            .collect();
        codes.sort_unstable();
        assert!(codes.is_empty(), "{codes:?}");

        assert_audit_verifies(&gl).await;
        assert_audit_verifies(&na).await;
        gl.shutdown().await;
        na.shutdown().await;
    })
    .await;
}

// --- b. a peer that is down for a while ------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_that_is_down_for_a_while_gets_the_document_when_it_returns() {
    bounded(async {
        let gl_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gl_url = format!("http://{}", gl_l.local_addr().unwrap());
        let na_addr = reserve_port();
        let gl = start_gialai(gl_l, &format!("http://{na_addr}"), "1h", true).await;
        let http = ApiClient::new();

        let (id, deliveries) = submit(&http, &gl, &[NGHEAN], "V/v gửi khi Nghệ An tạm ngừng").await;
        let did = deliveries[0].1;
        let document_id = gl.store().message(id).await.unwrap().document_id;

        // Nghệ An is down: the delivery keeps retrying, each attempt logged with its error.
        let down = eventually("several failed attempts", async || {
            let d = admin_delivery(&http, &gl, did).await;
            let unreachable = d["attempt_log"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["error"]["code"] == "PEER_UNREACHABLE")
                .count();
            if d["state"] == "retrying" && d["attempts"].as_u64() >= Some(3) && unreachable >= 2 {
                Ok(d)
            } else {
                Err(d.to_string())
            }
        })
        .await;
        let last = down["last_error"]["code"].as_str().unwrap();
        // After `breaker_failures` the circuit opens and attempts are short-circuited.
        assert!(
            ["PEER_UNREACHABLE", "PEER_UNAVAILABLE"].contains(&last),
            "{down}"
        );
        let attempts_while_down = down["attempts"].as_u64().unwrap();

        // The admin list shows it among the retrying deliveries, with its last error.
        let r = http
            .get(gl.url(&format!("/admin/v1/deliveries?recipient={NGHEAN}")))
            .bearer_auth(TOK_OPS)
            .send()
            .await
            .unwrap();
        let list = json_of(r).await;
        let item = &list["items"][0];
        assert_eq!(item["delivery_id"], did, "{list}");
        assert!(item["last_error"]["code"].is_string(), "{list}");
        assert!(item["attempts"].as_u64().unwrap() >= 3, "{list}");

        // Nghệ An comes up on the address Gia Lai knows: delivered, with its receipt.
        let na = start_nghean(bind_again(na_addr).await, &gl_url).await;
        let d = delivery_in(&http, &gl, did, "delivered").await;
        assert!(d["attempts"].as_u64().unwrap() > attempts_while_down, "{d}");
        assert_eq!(
            d["attempt_log"].as_array().unwrap().last().unwrap()["outcome"],
            "delivered",
            "{d}"
        );
        assert_eq!(check_receipt(&gl, did, &document_id).await, NGHEAN);
        assert_eq!(
            inbox_with(&http, &na, TOK_NGHEAN, &document_id).await.len(),
            1
        );
        assert_audit_verifies(&gl).await;
        assert_audit_verifies(&na).await;
        gl.shutdown().await;
        na.shutdown().await;
    })
    .await;
}

// --- c. a peer that never returns in time ------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_that_never_returns_fails_and_an_operator_retry_delivers_once_it_is_up() {
    bounded(async {
        let gl_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gl_url = format!("http://{}", gl_l.local_addr().unwrap());
        let na_addr = reserve_port();
        let gl = start_gialai(gl_l, &format!("http://{na_addr}"), "300ms", true).await;
        let http = ApiClient::new();

        let (id, deliveries) = submit(&http, &gl, &[NGHEAN], "V/v gửi khi Nghệ An ngừng lâu").await;
        let did = deliveries[0].1;
        let document_id = gl.store().message(id).await.unwrap().document_id;

        // Past give_up_after the delivery is failed and waits for an operator.
        let failed = delivery_in(&http, &gl, did, "failed").await;
        let last = failed["last_error"]["code"].as_str().unwrap();
        assert!(
            ["PEER_UNREACHABLE", "PEER_UNAVAILABLE"].contains(&last),
            "{failed}"
        );
        // It stays failed: nothing claims it again (checked against the store, not the clock).
        let r = http
            .get(gl.url("/admin/v1/deliveries?state=failed"))
            .bearer_auth(TOK_OPS)
            .send()
            .await
            .unwrap();
        assert_eq!(json_of(r).await["items"][0]["delivery_id"], did);

        let na = start_nghean(bind_again(na_addr).await, &gl_url).await;

        // The operator retries at once, while the worker's circuit breaker for Nghệ An may still
        // be open: the delivery must wait for the breaker, not fail again (the give-up clock
        // restarts at the operator's retry).
        // The operator retries: queued again, then delivered.
        let r = http
            .post(gl.url(&format!("/admin/v1/deliveries/{did}/retry")))
            .bearer_auth(TOK_OPS)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let after = json_of(r).await;
        assert!(
            ["queued", "sending", "delivered"].contains(&after["state"].as_str().unwrap()),
            "{after}"
        );
        delivery_in(&http, &gl, did, "delivered").await;
        assert_eq!(check_receipt(&gl, did, &document_id).await, NGHEAN);
        assert_eq!(
            inbox_with(&http, &na, TOK_NGHEAN, &document_id).await.len(),
            1
        );

        // The operator's action is in Gia Lai's audit chain, which verifies.
        assert_audit_verifies(&gl).await;
        let actions = audit_actions(&gl).await;
        assert!(
            actions
                .iter()
                .any(|(actor, action, entity)| actor == OPS_ACTOR
                    && action == "delivery.operator_retry"
                    && *entity == did.to_string()),
            "{actions:?}"
        );
        gl.shutdown().await;
        na.shutdown().await;
    })
    .await;
}

// --- d. ingest rejections over the wire --------------------------------------------------------
//
// Every case of the format core's negative corpus (`tests/common/corpus.rs`, the one
// `tests/negative_corpus.rs` verifies with the library) is posted to Nghệ An's peer endpoint as
// peer `gialai`. The corpus packages are from Sở TT&TT Gia Lai (`000.00.05.H21`, within the
// `000.00.00.H21` Nghệ An's `gialai` peer serves) to Ủy ban Nghệ An (`000.00.00.H41`, the agency
// Nghệ An serves), so a package that passed verification would also pass the peer and recipient
// checks of ingest: the code the node answers is the verification's (the one case that changes
// the sender, "cross-agency impersonation", is refused by verification before the peer check
// would see it). Adjustments, each because the case needs a verification option the library
// test sets:
// - cases with custom `Limits` run against a node configured with the same limit through its
//   `[limits]` section, at the granularity the configuration has (see `at_node_granularity`):
//   "oversized package";
// - cases with `strict: true` cannot be expressed: the node has no strict mode, it verifies
//   leniently. They are posted after the others and the test asserts what the node answers (see
//   `STRICT_ONLY`): "unknown status code 07 (strict)", "malformed OrganId (strict)".

/// A status package of Nghệ An's about the corpus document, signed with Nghệ An's key.
fn nghean_status() -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<edXML xmlns=\"{EDXML_NS}\"><edXMLEnvelope><edXMLHeader><MessageHeader>\
         <From><OrganId>{NGHEAN}</OrganId><OrganName>Ủy ban nhân dân tỉnh Nghệ An</OrganName></From>\
         <ResponseFor><OrganId>{STTTT}</OrganId><Code>125/STTTT-CĐS</Code><PromulgationDate>2026/11/25</PromulgationDate>\
         <DocumentId>{STTTT},2026/11/25,125/STTTT-CĐS</DocumentId></ResponseFor>\
         <StatusCode>03</StatusCode><Description>Đã tiếp nhận</Description><Timestamp>2026/11/25 09:30:00</Timestamp>\
         </MessageHeader></edXMLHeader></edXMLEnvelope></edXML>\n"
    )
}

/// Refusals that are about the node rather than the format (who pushes, for whom), so not in
/// the corpus. (The other ten cases this test used to pick by hand — tampered subject, untrusted
/// CA, expired certificate, DTD, not edXML, RSA-SHA1, zip bomb, manifest entry without an
/// attachment, no signature, malformed XML — were built exactly as the corpus builds them, and
/// are posted with the rest of the corpus.)
fn node_cases() -> Vec<Case> {
    vec![
        case(
            "cross-agency impersonation: Sở TT&TT's key, Ủy ban Gia Lai's code",
            sign(&good().replacen(
                &format!("{STTTT}</OrganId>"),
                &format!("{UBND_GL}</OrganId>"),
                1,
            )),
            Code::SenderNotAuthorised,
        ),
        case(
            "addressed to nobody at Nghệ An",
            sign(&good().replacen(
                &format!("{NGHEAN}</OrganId>"),
                &format!("{NOWHERE_1}</OrganId>"),
                1,
            )),
            Code::NotAddressedHere,
        ),
        case(
            "a genuine Nghệ An status pushed by Gia Lai, which may not speak for Nghệ An",
            sign_as(&nghean_status(), "ubnd-nghean"),
            Code::PeerNotAuthorised,
        ),
    ]
}

/// The corpus cases that need `Options::strict`, with what the node (lenient, and checking the
/// pushing peer after verification) answers instead of the strict code. Neither is accepted, so
/// neither stores anything:
/// - the 07 status is signed by Ủy ban Nghệ An (`From` 000.00.00.H41): lenient verification
///   accepts the unknown status code (it would store and flag it), but peer `gialai` serves
///   000.00.00.H21 only and may not push a package from Nghệ An;
/// - the malformed `From/OrganId` (`00.05.H21`) is read leniently as a non-standard code, which
///   the `stttt-gialai` certificate (000.00.05.H21) does not name.
const STRICT_ONLY: [(&str, Code); 2] = [
    ("unknown status code 07 (strict)", Code::PeerNotAuthorised),
    ("malformed OrganId (strict)", Code::SenderNotAuthorised),
];

/// The one limit the node's `[limits] max_package_mb` can set, in whole MiB.
const MIB: usize = 1024 * 1024;

/// A case needing custom `Limits`, as the node can be configured: its `[limits]` section and the
/// bytes to post. The configuration counts in MiB, so a package-size limit of a few kilobytes
/// (the corpus's "one byte over the package") cannot be set; instead the node gets
/// `max_package_mb = 1` and the case's bytes are padded with trailing line ends (outside the
/// signed document element) to exceed 1 MiB by as much as they exceed the case's limit. Checked
/// with the library: the padded bytes verify under the default limits, and are refused with the
/// case's code under the node's.
fn at_node_granularity(c: &Case) -> (String, Vec<u8>) {
    let max = c.limits.max_package_bytes;
    assert_eq!(
        c.limits,
        Limits {
            max_package_bytes: max,
            ..Limits::default()
        },
        "{}: only a package-size limit is adjusted here; configure the new limit",
        c.name
    );
    assert!(c.bytes.len() > max && max < MIB, "{}", c.name);
    let mut bytes = c.bytes.clone();
    bytes.resize(MIB + (c.bytes.len() - max), b'\n');
    let trust = trust();
    verify_package(&bytes, &Options::new(&trust))
        .unwrap_or_else(|e| panic!("{}: the padded package does not verify: {e}", c.name));
    let mut opts = Options::new(&trust);
    opts.limits.max_package_bytes = MIB;
    let Err(e) = verify_package(&bytes, &opts) else {
        panic!(
            "{}: the padded package is accepted at the node's limit",
            c.name
        );
    };
    assert_eq!(e.code(), c.code, "{}: {e}", c.name);
    ("[limits]\nmax_package_mb = 1\n".to_owned(), bytes)
}

/// Posts `bytes` and describes how the answer differs from the refusal `code` (`None` when it
/// is that refusal, with its HTTP status and a Vietnamese message).
async fn refused_with(
    http: &ApiClient,
    node: &TestNode,
    name: &str,
    bytes: &[u8],
    code: Code,
) -> Option<String> {
    let (status, v) = push_as(http, node, "gialai", bytes).await;
    let expected_status = lienthong::http::error::http_status(code).as_u16();
    let has_vi = !v["message_vi"].as_str().unwrap_or("").is_empty();
    (v["code"] != code.as_str() || status != expected_status || !has_vi)
        .then(|| format!("{name}: {status} {v}, expected {expected_status} {code}"))
}

/// Nothing was stored on `node`: no inbox item, no delivery, no audit record since
/// `audit_before` (and none of ingest's), and the audit chain verifies.
async fn assert_stored_nothing(
    http: &ApiClient,
    node: &TestNode,
    audit_before: &[(String, String, String)],
) {
    let inbox = node
        .store()
        .list_inbox(NGHEAN, &InboxFilter::default())
        .await
        .unwrap();
    assert!(inbox.is_empty(), "{inbox:?}");
    let r = http
        .get(node.url("/api/v1/inbox"))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["items"], json!([]));
    let counts = node.store().delivery_counts().await.unwrap();
    assert!(counts.values().all(|n| *n == 0), "{counts:?}");
    let audit_after = audit_actions(node).await;
    assert_eq!(audit_after, audit_before, "refusals wrote audit records");
    assert!(
        !audit_after
            .iter()
            .any(|(_, action, _)| action == "document.receive" || action == "status.record"),
        "{audit_after:?}"
    );
    assert_audit_verifies(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_ingest_rejection_over_the_wire_gets_its_code_and_stores_nothing() {
    bounded(async {
        let na_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gl_url = format!("http://{}", reserve_port());
        let na = start_nghean(na_l, &gl_url).await;
        let http = ApiClient::new();
        let audit_before = audit_actions(&na).await;

        // Every corpus case is accounted for: as it is, through the node's limits, or lenient.
        let corpus = corpus();
        let (strict, corpus): (Vec<_>, Vec<_>) = corpus.into_iter().partition(|c| c.strict);
        let (limited, as_is): (Vec<_>, Vec<_>) = corpus
            .into_iter()
            .partition(|c| c.limits != Limits::default());
        let strict_names: Vec<_> = strict.iter().map(|c| c.name).collect();
        assert_eq!(
            strict_names,
            STRICT_ONLY.map(|(n, _)| n),
            "a strict case changed: decide what the lenient node answers"
        );
        let limited_names: Vec<_> = limited.iter().map(|c| c.name).collect();
        assert_eq!(limited_names, ["oversized package"]);

        // --- the corpus as it is, and the node's own refusals --------------------------------
        let cases: Vec<Case> = as_is.into_iter().chain(node_cases()).collect();
        let mut wrong = Vec::new();
        for c in &cases {
            wrong.extend(refused_with(&http, &na, c.name, &c.bytes, c.code).await);
        }
        // A node certificate that is no configured peer's (Nghệ An's own) is refused before
        // anything is parsed.
        let r = peer_client("node-nghean")
            .post(na.peer_url("/peer/v1/packages"))
            .body(sign(&good()))
            .send()
            .await
            .unwrap();
        expect_error(r, 403, "PEER_NOT_AUTHORISED").await;
        assert!(
            wrong.is_empty(),
            "{} of {} cases wrong:\n{}",
            wrong.len(),
            cases.len(),
            wrong.join("\n")
        );
        assert_stored_nothing(&http, &na, &audit_before).await;

        // --- strict-only cases: what the lenient node answers ----------------------------------
        let mut wrong = Vec::new();
        for (c, (_, code)) in strict.iter().zip(STRICT_ONLY) {
            wrong.extend(refused_with(&http, &na, c.name, &c.bytes, code).await);
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        assert_stored_nothing(&http, &na, &audit_before).await;

        // --- cases needing custom limits: a node configured with them ----------------------------
        let small_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut adjusted = Vec::new();
        let mut limits_section = None;
        for c in &limited {
            let (section, bytes) = at_node_granularity(c);
            assert!(limits_section.is_none_or(|s| s == section));
            limits_section = Some(section);
            adjusted.push((c, bytes));
        }
        let section = limits_section.unwrap();
        let small = start_node(
            small_l,
            |d| {
                config_with_retry(
                    "nghean-small",
                    d,
                    &nghean_agencies(),
                    ("gialai", &gl_url, UBND_GL),
                    "1h",
                ) + &section
            },
            true,
        )
        .await;
        assert_eq!(small.node.config.limits.max_package_bytes, MIB);
        let small_audit_before = audit_actions(&small).await;
        let mut wrong = Vec::new();
        for (c, bytes) in &adjusted {
            wrong.extend(refused_with(&http, &small, c.name, bytes, c.code).await);
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        assert_stored_nothing(&http, &small, &small_audit_before).await;
        small.shutdown().await;

        eprintln!(
            "over the wire: {} corpus cases as they are, {} through [limits], {} strict-only, {} node cases",
            cases.len() - node_cases().len(),
            adjusted.len(),
            strict.len(),
            node_cases().len()
        );

        // The control: the untouched package is accepted by the same endpoint.
        let r = as_peer("gialai")
            .post(na.peer_url("/peer/v1/packages"))
            .body(sign(&good()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            na.store()
                .list_inbox(NGHEAN, &InboxFilter::default())
                .await
                .unwrap()
                .len(),
            1
        );
        na.shutdown().await;
    })
    .await;
}

/// Over the wire, a repeat is known by its signed content: the messiest transport variant
/// arrives first and is kept as the clean package (what a clerk downloads); the clean package
/// and every other variant get the original receipt (200) and store nothing; other signed
/// content under the same DocumentId is `DUPLICATE_CONFLICT`.
#[tokio::test(flavor = "multi_thread")]
async fn a_repeat_in_other_bytes_gets_the_original_receipt_and_other_signed_content_conflicts() {
    bounded(async {
        let na_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gl_url = format!("http://{}", reserve_port());
        let na = start_nghean(na_l, &gl_url).await;
        let http = ApiClient::new();
        let base = sign(&good()).into_bytes();
        let variants = transport_variants();
        let messiest = variants
            .iter()
            .find(|v| v.name == "everything at once")
            .unwrap();

        let (status, first) = push_as(&http, &na, "gialai", &messiest.bytes).await;
        assert_eq!(status, 200, "{first}");
        let receipt = first.as_str().expect("a receipt").to_owned();
        let inbox = na
            .store()
            .list_inbox(NGHEAN, &InboxFilter::default())
            .await
            .unwrap();
        assert_eq!(inbox.len(), 1);
        let id = inbox[0].message.id;
        let r = http
            .get(na.url(&format!("/api/v1/inbox/{id}/package")))
            .bearer_auth(TOK_NGHEAN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let kept = r.bytes().await.unwrap();
        assert_eq!(
            kept.as_ref(),
            base.as_slice(),
            "kept: {}",
            String::from_utf8_lossy(&kept)
        );
        let audit_before = audit_actions(&na).await;

        for v in &variants {
            let (status, body) = push_as(&http, &na, "gialai", &v.bytes).await;
            assert_eq!(status, 200, "{}: {body}", v.name);
            assert_eq!(body.as_str(), Some(receipt.as_str()), "{}", v.name);
        }
        let other = sign(&good().replacen("Nền tảng", "Nền tảng số", 1));
        let (status, body) = push_as(&http, &na, "gialai", other.as_bytes()).await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["code"], "DUPLICATE_CONFLICT", "{body}");

        assert_eq!(
            audit_actions(&na).await,
            audit_before,
            "repeats wrote records"
        );
        assert_eq!(
            na.store()
                .list_inbox(NGHEAN, &InboxFilter::default())
                .await
                .unwrap()
                .len(),
            1
        );
        assert_audit_verifies(&na).await;
        na.shutdown().await;
    })
    .await;
}

/// Two nodes: Gia Lai delivers a document and keeps Nghệ An's receipt; the same document then
/// reaches Nghệ An again in other bytes (a relay re-wrapped the base64, added comments and an
/// `X509SubjectName`): Nghệ An answers with the receipt Gia Lai already holds and keeps what it
/// kept. The same DocumentId with other signed content is `DUPLICATE_CONFLICT`.
#[tokio::test(flavor = "multi_thread")]
async fn between_two_nodes_a_relayed_repeat_is_answered_with_the_receipt_already_held() {
    bounded(async {
        let gl_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let na_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gl_url = format!("http://{}", gl_l.local_addr().unwrap());
        let na_url = format!("http://{}", na_l.local_addr().unwrap());
        let gl = start_gialai(gl_l, &na_url, "1h", true).await;
        let na = start_nghean(na_l, &gl_url).await;
        let http = ApiClient::new();

        let (id, deliveries) = submit(&http, &gl, &[NGHEAN], "V/v gửi lại qua trục").await;
        let (_, delivery) = deliveries[0].clone();
        delivery_in(&http, &gl, delivery, "delivered").await;
        let held = gl
            .store()
            .delivery_receipt(delivery)
            .await
            .unwrap()
            .unwrap();
        let sent = gl.store().message_bytes(id).await.unwrap();
        let sent = String::from_utf8(sent).unwrap();
        let inbox = na
            .store()
            .list_inbox(NGHEAN, &InboxFilter::default())
            .await
            .unwrap();
        assert_eq!(inbox.len(), 1);
        let received = na.store().message_bytes(inbox[0].message.id).await.unwrap();
        assert_eq!(
            received,
            sent.as_bytes(),
            "a lienthong package is kept as signed"
        );

        let value_at = sent.find("<SignatureValue>").unwrap() + "<SignatureValue>".len();
        let mut relayed = sent.clone();
        relayed.insert_str(value_at + 76, "\r\n");
        relayed.insert_str(value_at + 152, "\r\n");
        let relayed = relayed
            .replacen(
                "<X509Data>",
                "<X509Data><X509SubjectName>CN=Trục liên thông</X509SubjectName>",
                1,
            )
            .replacen(
                "</MessageHeader>",
                "<!-- đã qua trục --></MessageHeader>",
                1,
            )
            + "<!-- chuyển tiếp -->";
        let audit_before = audit_actions(&na).await;
        let (status, body) = push_as(&http, &na, "gialai", relayed.as_bytes()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body.as_str().map(str::as_bytes), Some(held.as_slice()));
        assert_eq!(audit_actions(&na).await, audit_before);
        let kept = na.store().message_bytes(inbox[0].message.id).await.unwrap();
        assert_eq!(kept, sent.as_bytes());

        // Other signed content under the same DocumentId.
        let sig = sent.find("<Signature").unwrap();
        let end = sent.find("</Signature>").unwrap() + "</Signature>".len();
        let unsigned = format!("{}{}", &sent[..sig], &sent[end..]);
        let other = sign(&unsigned.replacen("V/v gửi lại qua trục", "V/v gửi lại, đã sửa", 1));
        let (status, body) = push_as(&http, &na, "gialai", other.as_bytes()).await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["code"], "DUPLICATE_CONFLICT", "{body}");
        assert_eq!(audit_actions(&na).await, audit_before);
        assert_audit_verifies(&na).await;
        gl.shutdown().await;
        na.shutdown().await;
    })
    .await;
}

// --- e. the admin API ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_takes_operator_tokens_only_cancels_and_refuses_invalid_transitions() {
    bounded(async {
        // Gia Lai without its worker first, so a delivery stays queued; Nghệ An is never up.
        let gl_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let na_url = format!("http://{}", reserve_port());
        let mut gl = start_gialai(gl_l, &na_url, "1h", false).await;
        let http = ApiClient::new();

        // --- authentication ----------------------------------------------------------------
        let r = http
            .get(gl.url("/admin/v1/deliveries"))
            .send()
            .await
            .unwrap();
        expect_error(r, 401, "UNAUTHENTICATED").await;
        for clerk in [TOK_STTTT, TOK_SONV, "not-a-token"] {
            let r = http
                .get(gl.url("/admin/v1/deliveries"))
                .bearer_auth(clerk)
                .send()
                .await
                .unwrap();
            expect_error(r, 401, "UNAUTHENTICATED").await;
        }
        let r = http
            .post(gl.url("/admin/v1/deliveries/1/retry"))
            .bearer_auth(TOK_STTTT)
            .send()
            .await
            .unwrap();
        expect_error(r, 401, "UNAUTHENTICATED").await;
        // …and the operator token is nobody's clerk token.
        let r = http
            .get(gl.url("/api/v1/documents"))
            .bearer_auth(TOK_OPS)
            .send()
            .await
            .unwrap();
        expect_error(r, 401, "UNAUTHENTICATED").await;
        let r = http
            .get(gl.url("/admin/v1/deliveries"))
            .bearer_auth(TOK_OPS)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(json_of(r).await["items"], json!([]));

        // --- cancel a queued delivery --------------------------------------------------------
        let (_, deliveries) = submit(&http, &gl, &[NGHEAN], "V/v gửi rồi hủy").await;
        let queued = deliveries[0].1;
        let d = admin_delivery(&http, &gl, queued).await;
        assert_eq!(d["state"], "queued", "{d}");
        assert_eq!(d["sender"], STTTT);
        assert_eq!(d["recipient"], NGHEAN);
        assert_eq!(d["attempt_log"], json!([]));

        let r = http
            .post(gl.url(&format!("/admin/v1/deliveries/{queued}/cancel")))
            .bearer_auth(TOK_OPS)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        expect_error(r, 400, "ELEMENT_MISSING").await;
        let r = http
            .post(gl.url(&format!("/admin/v1/deliveries/{queued}/cancel")))
            .bearer_auth(TOK_OPS)
            .json(&json!({"reason": "Gửi nhầm nơi nhận"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(json_of(r).await["state"], "cancelled");
        // Neither cancelled again nor retried.
        let r = http
            .post(gl.url(&format!("/admin/v1/deliveries/{queued}/cancel")))
            .bearer_auth(TOK_OPS)
            .json(&json!({"reason": "lần nữa"}))
            .send()
            .await
            .unwrap();
        expect_error(r, 409, "INVALID_TRANSITION").await;
        let r = http
            .post(gl.url(&format!("/admin/v1/deliveries/{queued}/retry")))
            .bearer_auth(TOK_OPS)
            .send()
            .await
            .unwrap();
        expect_error(r, 409, "INVALID_TRANSITION").await;

        // Lists and their filters.
        let r = http
            .get(gl.url("/admin/v1/deliveries?state=cancelled&sender=000.00.05.H21&per_page=10"))
            .bearer_auth(TOK_OPS)
            .send()
            .await
            .unwrap();
        let list = json_of(r).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
        assert_eq!(list["items"][0]["delivery_id"], queued);
        let r = http
            .get(gl.url("/admin/v1/deliveries?state=queued"))
            .bearer_auth(TOK_OPS)
            .send()
            .await
            .unwrap();
        assert_eq!(json_of(r).await["items"], json!([]));
        let r = http
            .get(gl.url("/admin/v1/deliveries?state=stuck"))
            .bearer_auth(TOK_OPS)
            .send()
            .await
            .unwrap();
        expect_error(r, 400, "VALUE_INVALID").await;
        let r = http
            .get(gl.url("/admin/v1/deliveries?per_page=0"))
            .bearer_auth(TOK_OPS)
            .send()
            .await
            .unwrap();
        expect_error(r, 400, "VALUE_INVALID").await;
        let r = http
            .get(gl.url("/admin/v1/deliveries/999999"))
            .bearer_auth(TOK_OPS)
            .send()
            .await
            .unwrap();
        expect_error(r, 404, "NOT_FOUND").await;
        let r = http
            .post(gl.url("/admin/v1/deliveries/999999/retry"))
            .bearer_auth(TOK_OPS)
            .send()
            .await
            .unwrap();
        expect_error(r, 404, "NOT_FOUND").await;

        // --- retrying a delivered one is refused ---------------------------------------------
        gl.start_worker();
        let (_, deliveries) = submit(&http, &gl, &[SONV], "V/v gửi nội bộ").await;
        let local = deliveries[0].1;
        delivery_in(&http, &gl, local, "delivered").await;
        let r = http
            .post(gl.url(&format!("/admin/v1/deliveries/{local}/retry")))
            .bearer_auth(TOK_OPS)
            .send()
            .await
            .unwrap();
        expect_error(r, 409, "INVALID_TRANSITION").await;
        let r = http
            .post(gl.url(&format!("/admin/v1/deliveries/{local}/cancel")))
            .bearer_auth(TOK_OPS)
            .json(&json!({"reason": "quá muộn"}))
            .send()
            .await
            .unwrap();
        expect_error(r, 409, "INVALID_TRANSITION").await;
        // The worker never picked up the cancelled delivery.
        let d = admin_delivery(&http, &gl, queued).await;
        assert_eq!(
            (d["state"].as_str(), d["attempts"].as_u64()),
            (Some("cancelled"), Some(0))
        );

        // The cancellation is audited with the operator as the actor; refusals are not.
        assert_audit_verifies(&gl).await;
        let actions = audit_actions(&gl).await;
        let by_operator: Vec<_> = actions
            .iter()
            .filter(|(actor, _, _)| actor == OPS_ACTOR)
            .collect();
        assert_eq!(
            by_operator,
            [&(
                OPS_ACTOR.to_owned(),
                "delivery.cancel".to_owned(),
                queued.to_string()
            )],
            "{actions:?}"
        );
        gl.shutdown().await;
    })
    .await;
}

#[test]
fn the_openapi_description_lists_the_admin_routes() {
    let spec = include_str!("../schemas/openapi.yaml");
    for path in [
        "/admin/v1/deliveries:",
        "/admin/v1/deliveries/{id}:",
        "/admin/v1/deliveries/{id}/retry:",
        "/admin/v1/deliveries/{id}/cancel:",
    ] {
        assert!(spec.contains(&format!("\n  {path}\n")), "{path} missing");
    }
    assert!(spec.contains("security: [{ operator: [] }]"));
}

// --- e. a document that fails the integrity check is answered with a signed 02 ----------------

/// Nghệ An, trusting only the rogue root: every Gia Lai signature is `CERT_UNTRUSTED` there.
async fn start_nghean_trusting_rogue_root(listener: TcpListener, gialai_url: &str) -> TestNode {
    let root = pki("root-ca.cert.pem").display().to_string();
    let rogue = pki("rogue-root.cert.pem").display().to_string();
    start_node(
        listener,
        |d| {
            let text = config_with_retry(
                "nghean",
                d,
                &nghean_agencies(),
                ("gialai", gialai_url, UBND_GL),
                "1h",
            );
            // The document trust anchors only: the peer's TLS `ca` stays the test root.
            let (from, to) = (
                format!("trust = [\"{root}\"]"),
                format!("trust = [\"{rogue}\"]"),
            );
            assert!(text.contains(&from));
            text.replace(&from, &to)
        },
        true,
    )
    .await
}

/// Decree 30/2020 Art. 21 over the wire: Nghệ An refuses Gia Lai's document (its certificate
/// does not chain to Nghệ An's trust anchors: `CERT_UNTRUSTED`) and answers with a status 02
/// signed by Ủy ban Nghệ An with the reason; Gia Lai verifies it and keeps it in the document's
/// history, and the delivery ends `rejected`, its failed attempt keeping the code. Nghệ An
/// stores nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_document_failing_the_integrity_check_is_answered_with_a_signed_02() {
    bounded(async {
        let gl_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let na_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gl_url = format!("http://{}", gl_l.local_addr().unwrap());
        let na_url = format!("http://{}", na_l.local_addr().unwrap());
        let na = start_nghean_trusting_rogue_root(na_l, &gl_url).await;
        let na_audit_before = audit_actions(&na).await;
        let gl = start_gialai(gl_l, &na_url, "1h", true).await;
        let http = ApiClient::new();

        let (id, deliveries) = submit(&http, &gl, &[NGHEAN], "V/v văn bản không xác thực").await;
        let did = deliveries[0].1;
        let document_id = gl.store().message(id).await.unwrap().document_id;

        let d = delivery_in(&http, &gl, did, "rejected").await;
        let attempts = d["attempt_log"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "refused, so never retried: {d}");
        assert_eq!(attempts[0]["outcome"], "failed", "{d}");
        assert_eq!(attempts[0]["error"]["code"], "CERT_UNTRUSTED", "{d}");
        let last = d["last_error"].to_string();
        assert!(last.contains("CERT_UNTRUSTED"), "{d}");

        // The 02 is in the document's history, from Ủy ban Nghệ An, with the reason in Vietnamese.
        let history = gl.store().status_history(STTTT, id).await.unwrap();
        assert_eq!(history.len(), 1, "{history:?}");
        let h = &history[0];
        assert_eq!((h.code, h.reporter.as_str()), (2, NGHEAN), "{h:?}");
        assert_eq!(h.document_id, document_id);
        assert_eq!(h.document_sender, STTTT);
        assert!(
            h.description
                .starts_with("Văn bản không bảo đảm tính xác thực, toàn vẹn (CERT_UNTRUSTED): "),
            "{h:?}"
        );
        // The clerk sees it too, as the recipient's latest status.
        let r = http
            .get(gl.url(&format!("/api/v1/documents/{id}")))
            .bearer_auth(TOK_STTTT)
            .send()
            .await
            .unwrap();
        let doc = json_of(r).await;
        assert_eq!(doc["deliveries"][0]["latest_status"], "02", "{doc}");
        assert_eq!(doc["deliveries"][0]["history"][0]["code"], "02", "{doc}");
        // The kept 02 is the package Nghệ An signed: it verifies under Gia Lai's trust.
        let bytes = gl.store().message_bytes(h.message_id).await.unwrap();
        let trust = trust();
        let v = verify_package(&bytes, &Options::new(&trust)).expect("the 02 verifies");
        let Package::Status(s) = &v.package else {
            panic!("not a status package");
        };
        assert_eq!(s.status_code, StatusCode::Rejected);
        assert_eq!(s.response_for.effective_document_id(), document_id);

        // Nghệ An stored nothing (invariant 5).
        assert_stored_nothing(&http, &na, &na_audit_before).await;
        assert_audit_verifies(&gl).await;
        gl.shutdown().await;
        na.shutdown().await;
    })
    .await;
}

/// `Node::rejection_status` without HTTP: a 02 only for an authenticity/integrity refusal of a
/// document addressed to an agency of the node; none for a misaddressed one.
#[tokio::test(flavor = "multi_thread")]
async fn rejection_status_answers_integrity_failures_only_and_never_a_misaddressed_document() {
    bounded(async {
        let gl_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let na_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gl_url = format!("http://{}", gl_l.local_addr().unwrap());
        let na_url = format!("http://{}", na_l.local_addr().unwrap());
        let gl = start_gialai(gl_l, &na_url, "1h", false).await;
        let na = start_node(
            na_l,
            |d| {
                config_with_retry(
                    "nghean",
                    d,
                    &nghean_agencies(),
                    ("gialai", &gl_url, UBND_GL),
                    "1h",
                )
            },
            false,
        )
        .await;
        let http = ApiClient::new();
        let err = |code: Code| lienthong::Error::from(FormatError::new(code, "test", "test"));
        let gialai = &na.node.config.peers[0];

        let (to_na, _) = submit(&http, &gl, &[NGHEAN], "V/v gửi Nghệ An").await;
        let to_na = gl.store().message_bytes(to_na).await.unwrap();
        // For a local agency of Gia Lai: nothing Nghệ An serves.
        let (elsewhere, _) = submit(&http, &gl, &[SONV], "V/v gửi nơi khác").await;
        let elsewhere = gl.store().message_bytes(elsewhere).await.unwrap();

        // Misaddressed: no agency of Nghệ An to sign for.
        let e = err(Code::NotAddressedHere);
        assert!(
            na.node
                .rejection_status(&elsewhere, Some(gialai), &e)
                .is_empty()
        );
        assert!(
            na.node
                .rejection_status(&to_na, Some(gialai), &e)
                .is_empty()
        );
        // Not an authenticity/integrity failure: the code only.
        for code in [
            Code::DuplicateConflict,
            Code::PeerNotAuthorised,
            Code::XmlMalformed,
        ] {
            assert!(
                na.node
                    .rejection_status(&to_na, Some(gialai), &err(code))
                    .is_empty()
            );
        }
        // An integrity failure of a document for Ủy ban Nghệ An: a 02 signed by it.
        let e = err(Code::DigestMismatch);
        assert!(
            na.node
                .rejection_status(&elsewhere, Some(gialai), &e)
                .is_empty()
        );
        let statuses = na.node.rejection_status(&to_na, Some(gialai), &e);
        assert_eq!(statuses.len(), 1, "one addressed agency, one 02");
        let status = &statuses[0];
        let trust = trust();
        let v = verify_package(status, &Options::new(&trust)).expect("the 02 verifies");
        let Package::Status(s) = &v.package else {
            panic!("not a status package");
        };
        assert_eq!(s.status_code, StatusCode::Rejected);
        assert_eq!(s.from.organ_id.as_str(), NGHEAN);
        assert!(
            s.description.contains("(DIGEST_MISMATCH)"),
            "{}",
            s.description
        );
        // Not bytes of a document: nothing to address a 02 with.
        assert!(
            na.node
                .rejection_status(b"<x/>", Some(gialai), &e)
                .is_empty()
        );
        // Nothing was stored at Nghệ An.
        let counts = na.store().delivery_counts().await.unwrap();
        assert!(counts.values().all(|n| *n == 0), "{counts:?}");
        assert!(audit_actions(&na).await.is_empty());
        gl.shutdown().await;
        na.shutdown().await;
    })
    .await;
}

/// The OpenAPI description of `status_package` names exactly the codes answered with a 02.
#[test]
fn the_openapi_description_lists_the_codes_answered_with_a_02() {
    let spec = include_str!("../schemas/openapi.yaml");
    let at = spec
        .find("status_package:")
        .expect("status_package documented");
    let text = &spec[at..at + 2000];
    for code in lienthong::node::service::REJECTION_CODES {
        assert!(
            text.contains(&format!("`{}`", code.as_str())),
            "{code} missing"
        );
    }
    assert!(text.contains("NOT_ADDRESSED_HERE"));
}

// --- large documents -------------------------------------------------------------------------

/// The folder of package files beside a test node's database (`<db>.packages`).
fn package_folder(node: &TestNode) -> std::path::PathBuf {
    let url = &node.node.config.node.store;
    let path = url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap();
    std::path::PathBuf::from(format!("{path}.packages"))
}

/// A 6 MB incompressible file goes from Sở TT&TT Gia Lai to Nghệ An (a peer, over mutual TLS)
/// and to Sở Nội vụ (local): every copy of the package is kept as a file beside the database,
/// the recipients download exactly the bytes that were sent, and a file no row names (a write
/// that never committed) is removed when the node starts again, while the files rows name stay.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_a_large_document_travels_as_package_files_and_orphans_are_removed_at_start() {
    if !common::store::sqlite_only("a_large_document_travels_as_package_files") {
        return;
    }
    bounded(async {
        let gl_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let na_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gl_url = format!("http://{}", gl_l.local_addr().unwrap());
        let na_url = format!("http://{}", na_l.local_addr().unwrap());
        let gl = start_gialai(gl_l, &na_url, "1h", true).await;
        let na = start_nghean(na_l, &gl_url).await;
        let http = ApiClient::new();

        let mut rng = fastrand::Rng::with_seed(6);
        let file: Vec<u8> = (0..6_000_000).map(|_| rng.u8(..)).collect();
        let form = submission(&metadata(&[NGHEAN, SONV], "V/v bản đồ quy hoạch"), false).part(
            "file",
            reqwest::multipart::Part::bytes(file.clone())
                .file_name("bản đồ.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
        let r = http
            .post(gl.url("/api/v1/documents"))
            .bearer_auth(TOK_STTTT)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        let v = json_of(r).await;
        let id = v["id"].as_i64().unwrap();
        for d in v["deliveries"].as_array().unwrap() {
            delivery_in(&http, &gl, d["delivery_id"].as_i64().unwrap(), "delivered").await;
        }
        let document_id = gl.store().message(id).await.unwrap().document_id;
        let sent = gl.store().message_bytes(id).await.unwrap();
        assert!(sent.len() > 8_000_000, "{} bytes", sent.len());

        for (node, token) in [(&na, TOK_NGHEAN), (&gl, TOK_SONV)] {
            let items = inbox_with(&http, node, token, &document_id).await;
            assert_eq!(items.len(), 1);
            let in_id = items[0]["id"].as_i64().unwrap();
            let r = http
                .get(node.url(&format!("/api/v1/inbox/{in_id}/attachments/1")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            assert!(r.bytes().await.unwrap().as_ref() == file.as_slice());
            let r = http
                .get(node.url(&format!("/api/v1/inbox/{in_id}/package")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            assert!(r.bytes().await.unwrap().as_ref() == sent.as_slice());
        }
        // Gia Lai keeps the package it sent and the copy Sở Nội vụ received; Nghệ An its copy.
        let gl_dir = package_folder(&gl);
        let na_dir = package_folder(&na);
        assert_eq!(file_names(&gl_dir).len(), 2, "{:?}", file_names(&gl_dir));
        assert_eq!(file_names(&na_dir).len(), 1, "{:?}", file_names(&na_dir));
        for name in file_names(&gl_dir) {
            assert!(std::fs::read(gl_dir.join(name)).unwrap() == sent);
        }
        assert_audit_verifies(&gl).await;
        assert_audit_verifies(&na).await;

        // A package file changed on disk is never handed out as the package: the download is
        // refused with STORE_CORRUPT (its row's SHA-256 no longer matches), and served again
        // once the file is restored.
        let na_file = na_dir.join(&file_names(&na_dir)[0]);
        let mut damaged = sent.clone();
        damaged[sent.len() / 2] ^= 0x01;
        std::fs::write(&na_file, &damaged).unwrap();
        let items = inbox_with(&http, &na, TOK_NGHEAN, &document_id).await;
        let in_id = items[0]["id"].as_i64().unwrap();
        let package = na.url(&format!("/api/v1/inbox/{in_id}/package"));
        let download = || http.get(&package).bearer_auth(TOK_NGHEAN).send();
        let r = download().await.unwrap();
        assert_eq!(r.status().as_u16(), 500);
        let v = json_of(r).await;
        assert_eq!(v["code"], "STORE_CORRUPT", "{v}");
        assert!(v["message_vi"].as_str().unwrap().contains("bị hỏng"), "{v}");
        std::fs::write(&na_file, &sent).unwrap();
        let r = download().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.bytes().await.unwrap().as_ref() == sent.as_slice());

        // A crash after a file was written but before its transaction committed leaves an
        // orphan (and perhaps a half-written temporary file): the node's start-up removes both
        // and keeps every file a row names. Opening the store alone (as a CLI tool beside a
        // running node does) removes nothing.
        let kept = file_names(&gl_dir);
        std::fs::write(
            gl_dir.join("0123456789abcdef0123456789abcdef.edxml"),
            b"orphan",
        )
        .unwrap();
        std::fs::write(
            gl_dir.join("fedcba9876543210fedcba9876543210.edxml.tmp"),
            b"x",
        )
        .unwrap();
        // (Opened beside the idle node, whose temporary folder goes when it shuts down.)
        let url = gl.node.config.node.store.clone();
        let AnyStore::Sqlite(reopened) = common::store::open(&url).await else {
            unreachable!("sqlite_only")
        };
        assert_eq!(file_names(&gl_dir).len(), kept.len() + 2);
        let lock = lienthong::store::NodeLock::acquire(&url).unwrap().unwrap();
        assert_eq!(
            reopened.remove_orphan_package_files(&lock).await.unwrap(),
            2
        );
        assert_eq!(file_names(&gl_dir), kept);
        assert!(reopened.message_bytes(id).await.unwrap() == sent);
        reopened.close().await;
        gl.shutdown().await;
        na.shutdown().await;
    })
    .await;
}

// --- statuses against the document's history ---------------------------------------------------

/// A status package from Ủy ban Nghệ An about `doc`, dated `at`, signed with Nghệ An's key.
fn nghean_signed(
    doc: &lienthong::edxml::DocumentPackage,
    code: StatusCode,
    at: time::OffsetDateTime,
) -> Vec<u8> {
    let from = lienthong::edxml::Organization::new(
        lienthong::edxml::OrganId::parse_strict(NGHEAN).unwrap(),
        "Ủy ban nhân dân tỉnh Nghệ An",
    );
    let status = lienthong::edxml::StatusPackage::for_document(
        doc,
        from,
        code,
        "Ý kiến của Nghệ An",
        lienthong::edxml::vietnam_time(at),
    );
    let text = String::from_utf8(lienthong::edxml::write_status(&status).unwrap()).unwrap();
    sign_as(&text, "ubnd-nghean").into_bytes()
}

/// The document Gia Lai sent as message `id`.
async fn sent_document(gl: &TestNode, id: i64) -> lienthong::edxml::DocumentPackage {
    let bytes = gl.store().message_bytes(id).await.unwrap();
    match lienthong::edxml::read(&bytes, &lienthong::edxml::ReadOptions::default()).unwrap() {
        Package::Document(d) => d,
        other => panic!("not a document: {}", other.summary()),
    }
}

/// Statuses pushed over mutual TLS go through the same processing order as a clerk's: Nghệ An's
/// node marking a document it never received as refused (02) is `403
/// STATUS_NOT_FROM_RECIPIENT`; a status dated a day ahead is `422 STATUS_TIME_INVALID`; 02 or
/// 03 after Nghệ An's own 06 is `409 INVALID_TRANSITION`. None of them stores anything, and the
/// deliveries they would have moved stay `delivered`.
#[tokio::test(flavor = "multi_thread")]
async fn a_pushed_status_out_of_the_documents_order_is_refused_with_a_4xx_and_stores_nothing() {
    bounded(async {
        let gl_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let na_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gl_url = format!("http://{}", gl_l.local_addr().unwrap());
        let na_url = format!("http://{}", na_l.local_addr().unwrap());
        let gl = start_gialai(gl_l, &na_url, "1h", true).await;
        let na = start_nghean(na_l, &gl_url).await;
        let http = ApiClient::new();
        let now = time::OffsetDateTime::now_utc();
        let refused = async |bytes: Vec<u8>, status: u16, code: Code| {
            let before = audit_actions(&gl).await;
            let (got, v) = push_as(&http, &gl, "nghean", &bytes).await;
            assert_eq!(
                (got, v["code"].as_str()),
                (status, Some(code.as_str())),
                "{v}"
            );
            assert!(!v["message_vi"].as_str().unwrap_or("").is_empty(), "{v}");
            assert_eq!(
                audit_actions(&gl).await,
                before,
                "a refused status wrote something"
            );
        };

        // A document only Sở Nội vụ received: Nghệ An has no standing on it.
        let (local, deliveries) = submit(&http, &gl, &[SONV], "V/v nội bộ Gia Lai").await;
        let to_sonv = deliveries[0].1;
        delivery_in(&http, &gl, to_sonv, "delivered").await;
        let local_doc = sent_document(&gl, local).await;
        for code in [StatusCode::Rejected, StatusCode::Registered] {
            refused(
                nghean_signed(&local_doc, code, now),
                403,
                Code::StatusNotFromRecipient,
            )
            .await;
        }
        delivery_in(&http, &gl, to_sonv, "delivered").await;
        assert!(
            gl.store()
                .status_history(STTTT, local)
                .await
                .unwrap()
                .is_empty()
        );

        // A document Nghệ An did receive.
        let (id, deliveries) = submit(&http, &gl, &[NGHEAN], "V/v gửi Nghệ An").await;
        let to_na = deliveries[0].1;
        delivery_in(&http, &gl, to_na, "delivered").await;
        let doc = sent_document(&gl, id).await;
        refused(
            nghean_signed(&doc, StatusCode::Registered, now + time::Duration::days(1)),
            422,
            Code::StatusTimeInvalid,
        )
        .await;
        refused(
            nghean_signed(&doc, StatusCode::TakeBackAgreed, now),
            409,
            Code::InvalidTransition,
        )
        .await;

        // Nghệ An's clerk registers and finishes it; both reach Gia Lai.
        let document_id = doc.header.effective_document_id();
        let items = inbox_with(&http, &na, TOK_NGHEAN, &document_id).await;
        let in_id = items[0]["id"].as_i64().unwrap();
        for code in ["03", "06"] {
            let r = http
                .post(na.url(&format!("/api/v1/inbox/{in_id}/status")))
                .bearer_auth(TOK_NGHEAN)
                .json(&json!({"code": code, "description": "Xử lý"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 202, "{}", json_of(r).await);
        }
        eventually("03 and 06 at Gia Lai", async || {
            let h = gl.store().status_history(STTTT, id).await.unwrap();
            // Each status travels on its own: the 06 may arrive first (and is accepted).
            let mut codes: Vec<u8> = h.iter().map(|s| s.code).collect();
            codes.sort_unstable();
            if codes == [3, 6] {
                Ok(())
            } else {
                Err(format!("{codes:?}"))
            }
        })
        .await;

        // After 06: a 02 (which would turn the delivery into `rejected`), a 03, a 05.
        let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(5);
        for code in [
            StatusCode::Rejected,
            StatusCode::Registered,
            StatusCode::Processing,
        ] {
            refused(
                nghean_signed(&doc, code, later),
                409,
                Code::InvalidTransition,
            )
            .await;
        }
        let d = delivery_in(&http, &gl, to_na, "delivered").await;
        assert_eq!(d["latest_status"], "06", "{d}");
        let mut h: Vec<u8> = gl
            .store()
            .status_history(STTTT, id)
            .await
            .unwrap()
            .iter()
            .map(|s| s.code)
            .collect();
        h.sort_unstable();
        assert_eq!(h, [3, 6]);

        assert_audit_verifies(&gl).await;
        assert_audit_verifies(&na).await;
        gl.shutdown().await;
        na.shutdown().await;
    })
    .await;
}
