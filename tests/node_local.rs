//! One node, two of its own agencies: a dispatch goes through the outbox into the local inbox,
//! with a receipt; the recipient's 03 comes back the same way; an unknown recipient fails with
//! NO_ROUTE for an operator. Real SQLite store, real signatures, the real worker.

mod common;

use std::time::Duration;

use common::*;
use lienthong::config::Config;
use lienthong::edxml::{OrganId, StatusCode};
use lienthong::node::compose::{File, Submission};
use lienthong::node::outbox;
use lienthong::node::service::Node;
use lienthong::store::{DeliveryState, InboxFilter, SqliteStore, Store};

/// The Gia Lai node with two of its departments and no peer: every dispatch stays local.
fn config(dir: &std::path::Path) -> Config {
    let store = format!("sqlite://{}", dir.join("node.db").display());
    let text = nodes::node_table("gialai", "127.0.0.1:0", &store)
        + &nodes::agency(
            nodes::STTTT,
            "Sở Thông tin và Truyền thông tỉnh Gia Lai",
            "stttt-gialai",
        )
        + &nodes::agency(nodes::SONV, "Sở Nội vụ tỉnh Gia Lai", "sonv-gialai")
        + "[retry]\ninitial_backoff = \"50ms\"\n";
    Config::from_toml(&text, dir, &|_| None).unwrap()
}

fn code(s: &str) -> OrganId {
    OrganId::parse_strict(s).unwrap()
}

async fn wait_for<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_dispatch_is_delivered_registered_and_answered() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = SqliteStore::open(&config.node.store).await.unwrap();
    let node = Node::new(config, store).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = outbox::spawn(node.clone(), stopped);

    let stttt = code("000.00.05.H21");
    let sonv = code("000.00.04.H21");
    let sub: Submission = serde_json::from_str(
        r#"{"recipients": ["000.00.04.H21", "000.00.00.H14"], "notation": "STTTT-VP",
            "subject": "V/v cử cán bộ dự tập huấn", "signer": {"full_name": "Trần Thị Bình"}}"#,
    )
    .unwrap();
    let pdf = File {
        name: "Giấy mời.pdf".into(),
        content_type: "application/pdf".into(),
        data: "%PDF-1.4 mời".as_bytes().to_vec(),
    };
    let sent = node
        .submit(&stttt, "idesk", &sub, vec![pdf], Some("key-1".into()))
        .await
        .unwrap();
    assert_eq!(sent.deliveries.len(), 2);
    // The same idempotency key gives the same submission back, without a second number.
    let again = node
        .submit(&stttt, "idesk", &sub, vec![], Some("key-1".into()))
        .await
        .unwrap();
    assert!(again.existing);
    assert_eq!(again.message_id, sent.message_id);

    let store = node.store.clone();
    let id = sent.message_id;
    wait_for("both deliveries to settle", || {
        let store = store.clone();
        async move {
            let item = store.outgoing_item("000.00.05.H21", id).await.unwrap();
            item.deliveries
                .iter()
                .all(|d| matches!(d.state, DeliveryState::Delivered | DeliveryState::Failed))
        }
    })
    .await;
    let item = node.store.outgoing_item("000.00.05.H21", id).await.unwrap();
    let local = item
        .deliveries
        .iter()
        .find(|d| d.recipient == "000.00.04.H21")
        .unwrap();
    assert_eq!(local.state, DeliveryState::Delivered);
    assert!(
        node.store
            .delivery_receipt(local.id)
            .await
            .unwrap()
            .is_some_and(|r| !r.is_empty())
    );
    let lost = item
        .deliveries
        .iter()
        .find(|d| d.recipient == "000.00.00.H14")
        .unwrap();
    assert_eq!(lost.state, DeliveryState::Failed);
    assert_eq!(lost.last_error.as_ref().unwrap().code, "NO_ROUTE");

    // Sở Nội vụ sees it in its inbox (and STTTT's clerk does not have it in its own inbox).
    let inbox = node
        .store
        .list_inbox(sonv.as_str(), &InboxFilter::default())
        .await
        .unwrap();
    assert_eq!(inbox.len(), 1);
    assert!(
        node.store
            .list_inbox(stttt.as_str(), &InboxFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    let received = inbox[0].message.id;

    // It registers the document (03); the status travels back to STTTT through the outbox.
    node.report_status(
        &sonv,
        "van-thu",
        received,
        StatusCode::Registered,
        "Đã vào sổ",
    )
    .await
    .unwrap();
    let e = node
        .report_status(&sonv, "van-thu", received, StatusCode::Arrived, "")
        .await
        .unwrap_err();
    assert_eq!(e.code(), lienthong::Code::StatusCodeUnknown);
    wait_for("03 to reach the sender", || {
        let store = store.clone();
        async move {
            store
                .status_history("000.00.05.H21", id)
                .await
                .unwrap()
                .iter()
                .any(|s| s.code == 3 && s.reporter == "000.00.04.H21")
        }
    })
    .await;
    node.report_status(
        &sonv,
        "van-thu",
        received,
        StatusCode::Finished,
        "Đã xử lý xong",
    )
    .await
    .unwrap();
    let e = node
        .report_status(&sonv, "van-thu", received, StatusCode::Processing, "")
        .await
        .unwrap_err();
    assert_eq!(e.code(), lienthong::Code::InvalidTransition, "{e}");

    stop.send(true).unwrap();
    worker.await.unwrap();
    match node.store.verify_audit().await.unwrap() {
        Ok(summary) => assert!(summary.records > 5, "{summary:?}"),
        Err(b) => panic!("audit chain broken: {b:?}"),
    }
    store_matches_chain(&node.store).await;
}

/// `audit verify`'s cross-check finds the store exactly as the chain records it.
async fn store_matches_chain(store: &SqliteStore) {
    let report = store.verify_store().await.unwrap().unwrap();
    assert!(report.is_clean(), "{:#?}", report.differences);
    assert!(report.checked.messages > 0, "{:?}", report.checked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_is_accepted_or_refused_by_the_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = SqliteStore::open(&config.node.store).await.unwrap();
    let node = Node::new(config, store).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = outbox::spawn(node.clone(), stopped);
    let stttt = code("000.00.05.H21");
    let sonv = code("000.00.04.H21");
    let store = node.store.clone();

    for (subject, answer) in [
        ("V/v A", StatusCode::TakeBackAgreed),
        ("V/v B", StatusCode::TakeBackRefused),
    ] {
        let sub: Submission = serde_json::from_str(&format!(
            r#"{{"recipients": ["000.00.04.H21"], "notation": "STTTT-VP", "subject": "{subject}"}}"#
        ))
        .unwrap();
        let sent = node
            .submit(&stttt, "idesk", &sub, vec![], None)
            .await
            .unwrap();
        let inbox_has = |n: usize| {
            let store = store.clone();
            async move {
                store
                    .list_inbox("000.00.04.H21", &InboxFilter::default())
                    .await
                    .unwrap()
                    .len()
                    >= n
            }
        };
        let before = node
            .store
            .list_inbox(sonv.as_str(), &InboxFilter::default())
            .await
            .unwrap()
            .len();
        wait_for("the document in the inbox", || inbox_has(before + 1)).await;
        let received = node
            .store
            .list_inbox(sonv.as_str(), &InboxFilter::default())
            .await
            .unwrap();
        let original = received
            .iter()
            .find(|i| i.message.subject.as_deref() == Some(subject))
            .unwrap()
            .message
            .id;
        node.report_status(
            &sonv,
            "van-thu",
            original,
            StatusCode::Registered,
            "Đã vào sổ",
        )
        .await
        .unwrap();
        // 15/16 only answer a take-back request.
        let e = node
            .report_status(&sonv, "van-thu", original, answer, "x")
            .await
            .unwrap_err();
        assert_eq!(e.code(), lienthong::Code::InvalidTransition, "{e}");

        node.revoke(
            &stttt,
            "idesk",
            sent.message_id,
            "Ban hành nhầm, thu hồi để sửa",
        )
        .await
        .unwrap();
        wait_for("the revocation in the inbox", || inbox_has(before + 2)).await;
        let received = node
            .store
            .list_inbox(sonv.as_str(), &InboxFilter::default())
            .await
            .unwrap();
        let revocation = received
            .iter()
            .find(|i| {
                i.message.subject.as_deref() == Some(subject) && i.message.business_type == Some(1)
            })
            .unwrap()
            .message
            .id;
        node.report_status(&sonv, "van-thu", revocation, answer, "Ý kiến của Sở Nội vụ")
            .await
            .unwrap();
        let item = node
            .store
            .inbox_item(sonv.as_str(), original)
            .await
            .unwrap();
        assert_eq!(
            item.revoked,
            answer == StatusCode::TakeBackAgreed,
            "{subject}"
        );
        let id = sent.message_id;
        let wanted = answer.number();
        wait_for("the answer at the sender", || {
            let store = store.clone();
            async move {
                store
                    .status_history("000.00.05.H21", id)
                    .await
                    .unwrap()
                    .iter()
                    .any(|s| s.code == wanted)
            }
        })
        .await;
    }
    stop.send(true).unwrap();
    worker.await.unwrap();
    assert!(node.store.verify_audit().await.unwrap().is_ok());
    store_matches_chain(&node.store).await;
}

/// Waits until `agency`'s inbox holds a document of `business_type` about `subject`; its id.
async fn inbox_id(node: &Node<SqliteStore>, agency: &str, business_type: u8, subject: &str) -> i64 {
    let found = std::sync::Arc::new(std::sync::Mutex::new(None));
    wait_for(
        &format!("a type-{business_type} {subject:?} in the inbox"),
        || {
            let store = node.store.clone();
            let found = found.clone();
            let subject = subject.to_owned();
            let agency = agency.to_owned();
            async move {
                let items = store
                    .list_inbox(&agency, &InboxFilter::default())
                    .await
                    .unwrap();
                let hit = items.iter().find(|i| {
                    i.message.business_type == Some(business_type)
                        && i.message.subject.as_deref() == Some(subject.as_str())
                });
                *found.lock().unwrap() = hit.map(|i| i.message.id);
                hit.is_some()
            }
        },
    )
    .await;
    found.lock().unwrap().expect("found")
}

/// The signed package as stored validates against `schemas/edxml-document.xsd` (xmllint).
fn assert_schema_valid(label: &str, bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("package.edxml");
    std::fs::write(&file, bytes).unwrap();
    let xsd = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/edxml-document.xsd");
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run xmllint ({e}): install libxml2-utils"));
    assert!(
        out.status.success(),
        "{label} does not validate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stored_document(bytes: &[u8]) -> lienthong::edxml::DocumentPackage {
    match lienthong::edxml::read(bytes, &lienthong::edxml::ReadOptions::default()).unwrap() {
        lienthong::edxml::Package::Document(d) => d,
        other => panic!("not a document: {}", other.summary()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_is_accepted_and_a_replacement_is_delivered_with_its_replacement_info() {
    use lienthong::edxml::BusinessDocType;
    use lienthong::node::service::{UpdateRecipient, UpdateRequest};

    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = SqliteStore::open(&config.node.store).await.unwrap();
    let node = Node::new(config, store).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = outbox::spawn(node.clone(), stopped);
    let stttt = code("000.00.05.H21");
    let sonv = code("000.00.04.H21");
    let store = node.store.clone();

    let sub: Submission = serde_json::from_str(
        r#"{"recipients": ["000.00.04.H21"], "notation": "STTTT-VP", "subject": "V/v gốc",
            "signer": {"full_name": "Trần Thị Bình"}}"#,
    )
    .unwrap();
    let pdf = File {
        name: "cv.pdf".into(),
        content_type: "application/pdf".into(),
        data: b"%PDF-1.4 v1".to_vec(),
    };
    let sent = node
        .submit(&stttt, "idesk", &sub, vec![pdf], None)
        .await
        .unwrap();
    let original_id = store
        .outgoing_item(stttt.as_str(), sent.message_id)
        .await
        .unwrap()
        .message
        .document_id;
    inbox_id(&node, sonv.as_str(), 0, "V/v gốc").await;

    // Refusals: no reason, nothing to change, someone else's document.
    let e = node
        .update(
            &stttt,
            "idesk",
            sent.message_id,
            UpdateRequest {
                reason: " ".into(),
                subject: Some("x".into()),
                ..UpdateRequest::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), lienthong::Code::ElementMissing, "{e}");
    let e = node
        .update(
            &stttt,
            "idesk",
            sent.message_id,
            UpdateRequest {
                reason: "Sửa".into(),
                ..UpdateRequest::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), lienthong::Code::ElementMissing, "{e}");
    let e = node
        .update(
            &sonv,
            "van-thu",
            sent.message_id,
            UpdateRequest {
                reason: "Sửa".into(),
                subject: Some("x".into()),
                ..UpdateRequest::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), lienthong::Code::NotFound, "{e}");

    // The update: a new subject, new files and the recipient list restated with a type.
    let update = node
        .update(
            &stttt,
            "idesk",
            sent.message_id,
            UpdateRequest {
                reason: "Sửa trích yếu".into(),
                subject: Some("V/v gốc (sửa)".into()),
                due_date: Some("2026-12-31".into()),
                recipients: Some(vec![UpdateRecipient::Detailed {
                    code: "000.00.04.H21".into(),
                    name: None,
                    receiver_type: 2,
                }]),
                files: vec![File {
                    name: "cv-v2.pdf".into(),
                    content_type: "application/pdf".into(),
                    data: b"%PDF-1.4 v2".to_vec(),
                }],
                ..UpdateRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(update.deliveries.len(), 1);
    let received = inbox_id(&node, sonv.as_str(), 2, "V/v gốc (sửa)").await;
    let bytes = store.message_bytes(received).await.unwrap();
    assert_schema_valid("the update", &bytes);
    let doc = stored_document(&bytes);
    assert_eq!(doc.header.effective_document_id(), original_id);
    assert_eq!(doc.header.signer_info.full_name, "Trần Thị Bình");
    assert_eq!(doc.attachments.len(), 1);
    assert_eq!(doc.attachments[0].data, b"%PDF-1.4 v2");
    let b = doc.business.as_ref().unwrap();
    assert_eq!(b.doc_type, BusinessDocType::Update);
    assert_eq!(b.document_id.as_deref(), Some(original_id.as_str()));
    assert_eq!(b.reason.as_deref(), Some("Sửa trích yếu"));
    let info = b.document_info.as_ref().unwrap();
    assert!(info.document_info && info.document_receiver, "{info:?}");
    assert_eq!(info.receivers.len(), 1);
    assert_eq!(info.receivers[0].organ_id, sonv);
    assert_eq!(info.receivers[0].receiver_type, 2);

    // Sở Nội vụ agrees (15); the answer reaches the sender in the document's history.
    node.report_status(
        &sonv,
        "van-thu",
        received,
        StatusCode::TakeBackAgreed,
        "Đồng ý",
    )
    .await
    .unwrap();
    let id = sent.message_id;
    wait_for("15 at the sender", || {
        let store = store.clone();
        async move {
            store
                .status_history("000.00.05.H21", id)
                .await
                .unwrap()
                .iter()
                .any(|s| s.code == 15 && s.reporter == "000.00.04.H21")
        }
    })
    .await;

    // Only a new document can be updated or replaced.
    let e = node
        .update(
            &stttt,
            "idesk",
            update.message_id,
            UpdateRequest {
                reason: "Sửa".into(),
                subject: Some("x".into()),
                ..UpdateRequest::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), lienthong::Code::InvalidTransition, "{e}");
    let replacement: Submission = serde_json::from_str(
        r#"{"recipients": ["000.00.04.H21"], "notation": "STTTT-VP",
            "subject": "V/v thay thế văn bản gốc", "signer": {"full_name": "Lê Thị Hoa"}}"#,
    )
    .unwrap();
    let e = node
        .replace(
            &stttt,
            "idesk",
            update.message_id,
            &replacement,
            vec![],
            "x",
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), lienthong::Code::InvalidTransition, "{e}");
    let e = node
        .replace(&stttt, "idesk", sent.message_id, &replacement, vec![], " ")
        .await
        .unwrap_err();
    assert_eq!(e.code(), lienthong::Code::ElementMissing, "{e}");

    // The replacement: a new document with its own number, naming the replaced one.
    let replaced = node
        .replace(
            &stttt,
            "idesk",
            sent.message_id,
            &replacement,
            vec![],
            "Ký sai thẩm quyền",
        )
        .await
        .unwrap();
    let sent_replacement = store
        .outgoing_item(stttt.as_str(), replaced.message_id)
        .await
        .unwrap();
    assert_eq!(sent_replacement.message.business_type, Some(3));
    assert_ne!(sent_replacement.message.document_id, original_id);
    let received = inbox_id(&node, sonv.as_str(), 3, "V/v thay thế văn bản gốc").await;
    let bytes = store.message_bytes(received).await.unwrap();
    assert_schema_valid("the replacement", &bytes);
    let doc = stored_document(&bytes);
    assert_eq!(
        doc.header.effective_document_id(),
        sent_replacement.message.document_id
    );
    assert_eq!(doc.header.response_for.len(), 1);
    assert_eq!(
        doc.header.response_for[0].effective_document_id(),
        original_id
    );
    let b = doc.business.as_ref().unwrap();
    assert_eq!(b.doc_type, BusinessDocType::Replacement);
    assert_eq!(b.reason.as_deref(), Some("Ký sai thẩm quyền"));
    assert_eq!(b.replacements.len(), 1);
    assert_eq!(b.replacements[0].document_id, original_id);
    assert_eq!(b.replacements[0].organ_ids, vec![sonv.clone()]);
    node.report_status(
        &sonv,
        "van-thu",
        received,
        StatusCode::TakeBackAgreed,
        "Đồng ý thay thế",
    )
    .await
    .unwrap();
    let id = replaced.message_id;
    wait_for("15 on the replacement at the sender", || {
        let store = store.clone();
        async move {
            store
                .status_history("000.00.05.H21", id)
                .await
                .unwrap()
                .iter()
                .any(|s| s.code == 15)
        }
    })
    .await;

    stop.send(true).unwrap();
    worker.await.unwrap();
    assert!(node.store.verify_audit().await.unwrap().is_ok());
    store_matches_chain(&node.store).await;
}

/// Agreeing (15) to an update or a replacement cancels nothing; only agreeing to a revocation
/// does (the store cannot tell them apart from the status alone, so it asks which request exists).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agreeing_to_an_update_does_not_cancel_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = SqliteStore::open(&config.node.store).await.unwrap();
    let node = Node::new(config, store).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = outbox::spawn(node.clone(), stopped);
    let stttt = code("000.00.05.H21");
    let sonv = code("000.00.04.H21");
    let store = node.store.clone();
    let sub: Submission = serde_json::from_str(
        r#"{"recipients": ["000.00.04.H21"], "notation": "STTTT-VP", "subject": "V/v cập nhật"}"#,
    )
    .unwrap();
    let sent = node
        .submit(&stttt, "idesk", &sub, vec![], None)
        .await
        .unwrap();
    let count = |n: usize| {
        let store = store.clone();
        async move {
            store
                .list_inbox("000.00.04.H21", &InboxFilter::default())
                .await
                .unwrap()
                .len()
                >= n
        }
    };
    wait_for("the document", || count(1)).await;
    let update: lienthong::node::service::UpdateRequest =
        serde_json::from_str(r#"{"reason": "Sửa trích yếu", "subject": "V/v cập nhật (sửa)"}"#)
            .unwrap();
    node.update(&stttt, "idesk", sent.message_id, update)
        .await
        .unwrap();
    wait_for("the update", || count(2)).await;
    let inbox = node
        .store
        .list_inbox(sonv.as_str(), &InboxFilter::default())
        .await
        .unwrap();
    let of = |t: u8| {
        inbox
            .iter()
            .find(|i| i.message.business_type == Some(t))
            .unwrap()
            .message
            .id
    };
    node.report_status(
        &sonv,
        "van-thu",
        of(2),
        StatusCode::TakeBackAgreed,
        "Đồng ý",
    )
    .await
    .unwrap();
    assert!(
        !node
            .store
            .inbox_item(sonv.as_str(), of(0))
            .await
            .unwrap()
            .revoked
    );
    assert!(
        !node
            .store
            .inbox_item(sonv.as_str(), of(2))
            .await
            .unwrap()
            .revoked
    );
    stop.send(true).unwrap();
    worker.await.unwrap();
}

/// A job on the node's CPU pool (signing, verifying) that panics is this node's failure:
/// `INTERNAL` (500), not a key or input problem, and the pool keeps working afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_cpu_job_is_an_internal_error_and_the_pool_survives() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = SqliteStore::open(&config.node.store).await.unwrap();
    let node = Node::new(config, store).unwrap();
    let e = node
        .cpu(|| -> u32 { panic!("a bug in a signing job") })
        .await
        .unwrap_err();
    assert_eq!(e.code(), lienthong::Code::Internal);
    assert_eq!(e.code().as_str(), "INTERNAL");
    assert_eq!(node.cpu(|| 7).await.unwrap(), 7);
}

/// A package changed in the database after it was queued is never delivered: the claim does not
/// hand it on, the outbox's own read is `STORE_CORRUPT`, and the delivery fails at once (sending
/// damaged bytes again cannot succeed) rather than retrying for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_changed_in_the_database_fails_its_delivery_as_store_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let url = config.node.store.clone();
    let store = SqliteStore::open(&url).await.unwrap();
    let node = Node::new(config, store).unwrap();
    let sub: Submission = serde_json::from_str(
        r#"{"recipients": ["000.00.04.H21"], "notation": "STTTT-VP",
            "subject": "V/v kiểm tra", "signer": {"full_name": "Trần Thị Bình"}}"#,
    )
    .unwrap();
    let sent = node
        .submit(&code("000.00.05.H21"), "idesk", &sub, vec![], None)
        .await
        .unwrap();
    // Someone with the file edits the queued package (the trigger is in their way first).
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("DROP TRIGGER messages_immutable")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("UPDATE messages SET bytes = replace(bytes, 'kiểm tra', 'kiểm tre') WHERE id = ?")
        .bind(sent.message_id)
        .execute(&raw)
        .await
        .unwrap();

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = outbox::spawn(node.clone(), stopped);
    let delivery = sent.deliveries[0].delivery_id;
    let store = node.store.clone();
    wait_for("the delivery to fail", || {
        let store = store.clone();
        async move { store.delivery(delivery).await.unwrap().state == DeliveryState::Failed }
    })
    .await;
    stop.send(true).unwrap();
    worker.await.unwrap();
    let d = node.store.delivery(delivery).await.unwrap();
    let error = d.last_error.unwrap();
    assert_eq!(error.code, "STORE_CORRUPT", "{error:?}");
    assert_eq!(d.attempts, 1);
    let received = node
        .store
        .list_inbox("000.00.04.H21", &InboxFilter::default())
        .await
        .unwrap();
    assert!(received.is_empty(), "{received:?}");
}
