//! One node, two of its own agencies: a dispatch goes through the outbox into the local inbox,
//! with a receipt; the recipient's 03 comes back the same way; a recipient nobody serves is
//! refused at submission with NO_ROUTE, and nothing is numbered. Real store (the run's backend), real
//! signatures, the real worker.

mod common;

use std::time::Duration;

use common::*;
use lienthong::config::Config;
use lienthong::edxml::{OrganId, StatusCode};
use lienthong::node::compose::{File, Submission};
use lienthong::node::outbox;
use lienthong::node::service::Node;
use lienthong::store::{AnyStore, DeliveryState, InboxFilter, Store};

/// The Gia Lai node with two of its departments and no peer: every dispatch stays local.
fn config(dir: &std::path::Path) -> Config {
    config_with(dir, "")
}

/// [`config`] with more TOML at the end.
fn config_with(dir: &std::path::Path, extra: &str) -> Config {
    let store = format!("sqlite://{}", dir.join("node.db").display());
    let text = nodes::node_table("gialai", "127.0.0.1:0", &store)
        + &nodes::agency(
            nodes::STTTT,
            "Sở Thông tin và Truyền thông tỉnh Gia Lai",
            "stttt-gialai",
        )
        + &nodes::agency(nodes::SONV, "Sở Nội vụ tỉnh Gia Lai", "sonv-gialai")
        + "[retry]\ninitial_backoff = \"50ms\"\n"
        + extra;
    Config::from_toml(&text, dir, &|_| None).unwrap()
}

fn code(s: &str) -> OrganId {
    OrganId::parse_strict(s).unwrap()
}

/// Polls `f` until it holds; the budget (60 s) only bounds the test on a loaded machine (the
/// tests of this file run in parallel, one of them 60 submissions at once), it decides nothing.
async fn wait_for<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..2400 {
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
    let mut config = config(dir.path());
    let store = common::store::node_store(&mut config).await;
    let node = Node::new(config, store).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = outbox::spawn(node.clone(), stopped);

    let stttt = code("000.00.05.H21");
    let sonv = code("000.00.04.H21");
    // A well-formed code that no route serves is refused before anything is numbered.
    let unroutable: Submission = serde_json::from_str(
        r#"{"recipients": ["000.00.04.H21", "000.00.00.H14"], "notation": "STTTT-VP",
            "content": "Nội dung văn bản.", "subject": "V/v cử cán bộ dự tập huấn", "signer": {"full_name": "Trần Thị Bình"}}"#,
    )
    .unwrap();
    let e = node
        .submit(&stttt, "idesk", &unroutable, vec![], None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), lienthong::Code::NoRoute, "{e}");
    assert!(e.to_string().starts_with("metadata.recipients[1]:"), "{e}");
    assert_eq!(
        node.store
            .last_number("000.00.05.H21", 2026)
            .await
            .unwrap_or(0),
        0
    );
    let sub: Submission = serde_json::from_str(
        r#"{"recipients": ["000.00.04.H21"], "notation": "STTTT-VP",
            "content": "Nội dung văn bản.", "subject": "V/v cử cán bộ dự tập huấn", "signer": {"full_name": "Trần Thị Bình"}}"#,
    )
    .unwrap();
    let pdf = File {
        name: "Giấy mời.pdf".into(),
        content_type: "application/pdf".into(),
        data: "%PDF-1.4 mời".as_bytes().to_vec(),
    };
    let sent = node
        .submit(
            &stttt,
            "idesk",
            &sub,
            vec![pdf.clone()],
            Some("key-1".into()),
        )
        .await
        .unwrap();
    assert_eq!(sent.deliveries.len(), 1);
    // The same request with the same idempotency key gives the same submission back, without a
    // second number; the key with other files is refused.
    let e = node
        .submit(&stttt, "idesk", &sub, vec![], Some("key-1".into()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), lienthong::Code::IdempotencyKeyReused, "{e}");
    let again = node
        .submit(&stttt, "idesk", &sub, vec![pdf], Some("key-1".into()))
        .await
        .unwrap();
    assert!(again.existing);
    assert_eq!(again.message_id, sent.message_id);

    let store = node.store.clone();
    let id = sent.message_id;
    wait_for("the delivery to settle", || {
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

    // A description with a control character other than a line break is refused.
    let e = node
        .report_status(
            &sonv,
            "van-thu",
            received,
            StatusCode::Registered,
            "Đã vào sổ\u{1b}[2J",
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), lienthong::Code::CharacterNotAllowed, "{e}");

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
    // Every delivery — the document and both statuses, through the local route — ends
    // delivered: the sender's node recognises each status its own recipient stamped.
    wait_for("every delivery to end", || {
        let store = store.clone();
        async move {
            let all = store
                .list_deliveries(&lienthong::store::DeliveryFilter::default())
                .await
                .unwrap();
            all.len() == 3
                && all.iter().all(|d| {
                    !matches!(
                        d.state,
                        DeliveryState::Queued | DeliveryState::Sending | DeliveryState::Retrying
                    )
                })
        }
    })
    .await;
    let all = store
        .list_deliveries(&lienthong::store::DeliveryFilter::default())
        .await
        .unwrap();
    for d in &all {
        assert_eq!(d.state, DeliveryState::Delivered, "{d:?}");
    }

    stop.send(true).unwrap();
    worker.await.unwrap();
    match node.store.verify_audit().await.unwrap() {
        Ok(summary) => assert!(summary.records > 5, "{summary:?}"),
        Err(b) => panic!("audit chain broken: {b:?}"),
    }
    store_matches_chain(&node.store).await;
}

/// `audit verify`'s cross-check finds the store exactly as the chain records it.
async fn store_matches_chain(store: &AnyStore) {
    let report = store.verify_store().await.unwrap().unwrap();
    assert!(report.is_clean(), "{:#?}", report.differences);
    assert!(report.checked.messages > 0, "{:?}", report.checked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_is_accepted_or_refused_by_the_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    let store = common::store::node_store(&mut config).await;
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
            r#"{{"recipients": ["000.00.04.H21"], "notation": "STTTT-VP", "content": "Nội dung văn bản.", "subject": "{subject}"}}"#
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
async fn inbox_id(node: &Node<AnyStore>, agency: &str, business_type: u8, subject: &str) -> i64 {
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
    let mut config = config(dir.path());
    let store = common::store::node_store(&mut config).await;
    let node = Node::new(config, store).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = outbox::spawn(node.clone(), stopped);
    let stttt = code("000.00.05.H21");
    let sonv = code("000.00.04.H21");
    let store = node.store.clone();

    let sub: Submission = serde_json::from_str(
        r#"{"recipients": ["000.00.04.H21"], "notation": "STTTT-VP", "content": "Nội dung văn bản.", "subject": "V/v gốc",
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
            "content": "Nội dung văn bản.", "subject": "V/v thay thế văn bản gốc", "signer": {"full_name": "Lê Thị Hoa"}}"#,
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
    let mut config = config(dir.path());
    let store = common::store::node_store(&mut config).await;
    let node = Node::new(config, store).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = outbox::spawn(node.clone(), stopped);
    let stttt = code("000.00.05.H21");
    let sonv = code("000.00.04.H21");
    let store = node.store.clone();
    let sub: Submission = serde_json::from_str(
        r#"{"recipients": ["000.00.04.H21"], "notation": "STTTT-VP", "content": "Nội dung văn bản.", "subject": "V/v cập nhật"}"#,
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
    let mut config = config(dir.path());
    let store = common::store::node_store(&mut config).await;
    let node = Node::new(config, store).unwrap();
    let e = node
        .cpu(|| -> u32 { panic!("a bug in a signing job") })
        .await
        .unwrap_err();
    assert_eq!(e.code(), lienthong::Code::Internal);
    assert_eq!(e.code().as_str(), "INTERNAL");
    assert_eq!(node.cpu(|| 7).await.unwrap(), 7);
}

// --- the document's processing order (edxml::processing) ---------------------------------------

/// A status package from `agency` about `doc` dated `at`, signed with the agency's key.
fn status_package(
    node: &Node<AnyStore>,
    agency: &OrganId,
    doc: &lienthong::edxml::DocumentPackage,
    code: StatusCode,
    at: time::OffsetDateTime,
) -> Vec<u8> {
    let org = node.config.agency(agency).unwrap().organization.clone();
    let status = lienthong::edxml::StatusPackage::for_document(
        doc,
        org,
        code,
        "Ý kiến",
        lienthong::edxml::vietnam_time(at),
    );
    lienthong::node::receipt::sign_status(&status, node.keys.get(agency).unwrap().as_ref()).unwrap()
}

/// Sends `subject` from STTTT to `recipients` and, when Sở Nội vụ is one, waits for it in its
/// inbox: (sent message id, the document as sent, Sở Nội vụ's inbox id).
async fn sent_and_received(
    node: &Node<AnyStore>,
    recipients: &[&str],
    subject: &str,
) -> (i64, lienthong::edxml::DocumentPackage, Option<i64>) {
    let sub: Submission = serde_json::from_value(serde_json::json!({
        "recipients": recipients, "notation": "STTTT-VP", "content": "Nội dung văn bản.", "subject": subject,
    }))
    .unwrap();
    let sent = node
        .submit(&code("000.00.05.H21"), "idesk", &sub, vec![], None)
        .await
        .unwrap();
    let doc = stored_document(&node.store.message_bytes(sent.message_id).await.unwrap());
    let inbox = if recipients.contains(&"000.00.04.H21") {
        Some(inbox_id(node, "000.00.04.H21", 0, subject).await)
    } else {
        None
    };
    (sent.message_id, doc, inbox)
}

/// The codes of the document's history as its sender sees it.
async fn history_codes(node: &Node<AnyStore>, sent: i64) -> Vec<(String, u8)> {
    node.store
        .status_history("000.00.05.H21", sent)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.reporter, s.code))
        .collect()
}

/// A clerk's reports follow the order, on the right item: 03 after 06, 02 after 06, 15/16 with
/// nothing outstanding, a processing code on a revocation or an update, and a second answer to
/// the same revocation are refused — nothing is signed, stored or sent for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerks_report_follows_the_documents_processing_order() {
    use lienthong::Code;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    let store = common::store::node_store(&mut config).await;
    let node = Node::new(config, store).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = outbox::spawn(node.clone(), stopped);
    let stttt = code("000.00.05.H21");
    let sonv = code("000.00.04.H21");
    let (sent, _, received) = sent_and_received(&node, &["000.00.04.H21"], "V/v thứ tự").await;
    let received = received.unwrap();
    // Each report says something new, so none is the very same package as an earlier one (an
    // exact repeat within its second is answered as that earlier report, not judged again).
    let said = std::sync::atomic::AtomicUsize::new(0);
    let report = |item: i64, code: StatusCode| {
        let node = node.clone();
        let sonv = sonv.clone();
        let n = said.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move {
            node.report_status(&sonv, "van-thu", item, code, &format!("Ý kiến {n}"))
                .await
                .map_err(|e| e.code())
        }
    };

    // Nothing to answer yet; a step skipped; then the normal way to 06.
    for c in [StatusCode::TakeBackAgreed, StatusCode::TakeBackRefused] {
        assert_eq!(
            report(received, c).await.unwrap_err(),
            Code::InvalidTransition
        );
    }
    assert_eq!(
        report(received, StatusCode::Assigned).await.unwrap_err(),
        Code::InvalidTransition
    );
    report(received, StatusCode::Registered).await.unwrap();
    report(received, StatusCode::Finished).await.unwrap();
    for c in [
        StatusCode::Registered,
        StatusCode::Rejected,
        StatusCode::Assigned,
        StatusCode::Processing,
        StatusCode::Finished,
    ] {
        assert_eq!(
            report(received, c).await.unwrap_err(),
            Code::InvalidTransition,
            "{c} after 06"
        );
    }

    // The revocation: 03 on it is refused and the original stays at 06; one answer only.
    node.revoke(&stttt, "idesk", sent, "Ban hành nhầm")
        .await
        .unwrap();
    let revocation = inbox_id(&node, sonv.as_str(), 1, "V/v thứ tự").await;
    for c in [
        StatusCode::Registered,
        StatusCode::Rejected,
        StatusCode::Finished,
    ] {
        assert_eq!(
            report(revocation, c).await.unwrap_err(),
            Code::InvalidTransition,
            "{c} on the revocation"
        );
    }
    let original = node
        .store
        .inbox_item(sonv.as_str(), received)
        .await
        .unwrap();
    assert_eq!(original.current_status, Some(6));
    report(revocation, StatusCode::TakeBackAgreed)
        .await
        .unwrap();
    for c in [StatusCode::TakeBackRefused, StatusCode::TakeBackAgreed] {
        assert_eq!(
            report(revocation, c).await.unwrap_err(),
            Code::InvalidTransition,
            "{c} after 15 on the same revocation"
        );
    }
    assert!(
        node.store
            .inbox_item(sonv.as_str(), received)
            .await
            .unwrap()
            .revoked
    );

    // A second revocation, or an update of a revoked document, is refused at submission.
    let e = node
        .revoke(&stttt, "idesk", sent, "lần nữa")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FollowUpExists, "{e}");
    let update: lienthong::node::service::UpdateRequest =
        serde_json::from_str(r#"{"reason": "Sửa", "subject": "V/v thứ tự (sửa)"}"#).unwrap();
    let e = node
        .update(&stttt, "idesk", sent, update)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FollowUpExists, "{e}");
    let doc_id = node
        .store
        .outgoing_item(stttt.as_str(), sent)
        .await
        .unwrap()
        .message
        .document_id;
    let packages = node
        .store
        .find_documents(lienthong::store::Direction::Out, stttt.as_str(), &doc_id)
        .await
        .unwrap();
    assert_eq!(
        packages.iter().map(|m| m.business_type).collect::<Vec<_>>(),
        [Some(0), Some(1)],
        "one original, one revocation"
    );

    // The sender's history: exactly the three accepted reports, each delivered once.
    let wanted = vec![
        ("000.00.04.H21".to_owned(), 3),
        ("000.00.04.H21".to_owned(), 6),
        ("000.00.04.H21".to_owned(), 15),
    ];
    wait_for("the three reports at the sender", || {
        let node = node.clone();
        let wanted = wanted.clone();
        async move {
            let mut h = history_codes(&node, sent).await;
            h.sort();
            h == wanted
        }
    })
    .await;
    stop.send(true).unwrap();
    worker.await.unwrap();
    let statuses = node
        .store
        .list_deliveries(&lienthong::store::DeliveryFilter {
            sender: Some("000.00.04.H21".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(statuses.len(), 3, "{statuses:?}");
    assert!(node.store.verify_audit().await.unwrap().is_ok());
}

/// Statuses received as packages (here through the local route, `ingest` with no peer) are
/// checked against the same order, and a refused one stores nothing: one from an agency the
/// document was never sent to, from the sender itself, about an unknown document, dated far
/// ahead, 02 or 03 after 06 (the delivery stays `delivered`), 13 from a recipient, 15 with
/// nothing outstanding. One that overtakes an earlier one in transit is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_received_status_is_checked_against_the_history_and_a_refused_one_stores_nothing() {
    use lienthong::Code;
    use time::{Duration as Span, OffsetDateTime};
    let dir = tempfile::tempdir().unwrap();
    // A peer that serves an agency elsewhere (never reached: its deliveries only wait), so a
    // document can be sent that Sở Nội vụ never receives.
    let mut config = config_with(
        dir.path(),
        &nodes::peer("elsewhere", "http://127.0.0.1:9", "000.00.00.H14"),
    );
    let store = common::store::node_store(&mut config).await;
    let node = Node::new(config, store).unwrap();
    let stttt = code("000.00.05.H21");
    let sonv = code("000.00.04.H21");
    let now = OffsetDateTime::now_utc();

    // A document Sở Nội vụ never received (sent only to an agency of another node), its
    // delivery cancelled before the outbox starts, so no attempt writes while statuses are
    // counted below.
    let (elsewhere, elsewhere_doc, _) =
        sent_and_received(&node, &["000.00.00.H14"], "V/v nơi khác").await;
    let pending = node
        .store
        .outgoing_item(stttt.as_str(), elsewhere)
        .await
        .unwrap()
        .deliveries[0]
        .id;
    node.store
        .cancel_delivery(
            pending,
            "not under test",
            "admin:test",
            lienthong::node::service::now_ms(),
        )
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = outbox::spawn(node.clone(), stopped);
    // One it did.
    let (sent, doc, _) = sent_and_received(&node, &["000.00.04.H21"], "V/v tiếp nhận").await;
    let to_sonv = node
        .store
        .outgoing_item(stttt.as_str(), sent)
        .await
        .unwrap()
        .deliveries[0]
        .id;
    wait_for("the delivery to Sở Nội vụ", || {
        let node = node.clone();
        async move { node.store.delivery(to_sonv).await.unwrap().state == DeliveryState::Delivered }
    })
    .await;
    let mut unknown = doc.clone();
    unknown.header.document_id = Some("000.00.05.H21,2026/01/01,999/STTTT-VP".into());

    let refused = |bytes: Vec<u8>| {
        let node = node.clone();
        async move {
            let before = node
                .store
                .audit_records(&Default::default())
                .await
                .unwrap()
                .len();
            let e = node.ingest(&bytes, None).await.unwrap_err();
            let after = node
                .store
                .audit_records(&Default::default())
                .await
                .unwrap()
                .len();
            assert_eq!(
                before,
                after,
                "{}: a refused status wrote something",
                e.code()
            );
            e.code()
        }
    };
    let in_minutes = |m: i64| now + Span::minutes(m);
    for (what, bytes, wanted) in [
        (
            "02 from an agency the document was not sent to",
            status_package(&node, &sonv, &elsewhere_doc, StatusCode::Rejected, now),
            Code::StatusNotFromRecipient,
        ),
        (
            "02 from the sender itself",
            status_package(&node, &stttt, &doc, StatusCode::Rejected, now),
            Code::StatusNotFromRecipient,
        ),
        (
            "13 from a recipient",
            status_package(&node, &sonv, &doc, StatusCode::TakeBackRequested, now),
            Code::StatusNotFromRecipient,
        ),
        (
            "03 about an unknown document",
            status_package(&node, &sonv, &unknown, StatusCode::Registered, now),
            Code::NotFound,
        ),
        (
            "03 dated a day ahead",
            status_package(
                &node,
                &sonv,
                &doc,
                StatusCode::Registered,
                in_minutes(24 * 60),
            ),
            Code::StatusTimeInvalid,
        ),
        (
            "03 dated a year before the document",
            status_package(
                &node,
                &sonv,
                &doc,
                StatusCode::Registered,
                in_minutes(-365 * 24 * 60),
            ),
            Code::StatusTimeInvalid,
        ),
        (
            "15 with nothing outstanding",
            status_package(&node, &sonv, &doc, StatusCode::TakeBackAgreed, now),
            Code::InvalidTransition,
        ),
    ] {
        assert_eq!(refused(bytes).await, wanted, "{what}");
    }
    assert!(history_codes(&node, sent).await.is_empty());
    assert!(history_codes(&node, elsewhere).await.is_empty());

    // 05 overtakes its 03 (statuses travel independently): both are kept, in order.
    node.ingest(
        &status_package(&node, &sonv, &doc, StatusCode::Processing, in_minutes(-1)),
        None,
    )
    .await
    .unwrap();
    node.ingest(
        &status_package(&node, &sonv, &doc, StatusCode::Registered, in_minutes(-2)),
        None,
    )
    .await
    .unwrap();
    // A 04 dated after the 05 contradicts it.
    assert_eq!(
        refused(status_package(
            &node,
            &sonv,
            &doc,
            StatusCode::Assigned,
            now
        ))
        .await,
        Code::InvalidTransition
    );
    node.ingest(
        &status_package(&node, &sonv, &doc, StatusCode::Finished, now),
        None,
    )
    .await
    .unwrap();
    // After 06: 02 (either date) and 03 are refused, and the delivery stays delivered.
    for (c, at) in [
        (StatusCode::Rejected, in_minutes(1)),
        (StatusCode::Rejected, in_minutes(-3)),
        (StatusCode::Registered, in_minutes(1)),
        (StatusCode::Processing, in_minutes(1)),
    ] {
        assert_eq!(
            refused(status_package(&node, &sonv, &doc, c, at)).await,
            Code::InvalidTransition,
            "{c} after 06"
        );
    }
    assert_eq!(
        node.store.delivery(to_sonv).await.unwrap().state,
        DeliveryState::Delivered
    );
    let d = node.store.delivery(to_sonv).await.unwrap();
    assert_eq!(d.latest_status, Some(6));
    assert_eq!(
        history_codes(&node, sent)
            .await
            .into_iter()
            .map(|(_, c)| c)
            .collect::<Vec<_>>(),
        [3, 5, 6]
    );
    // The clerk's own path agrees: nothing more on the document.
    let received = inbox_id(&node, sonv.as_str(), 0, "V/v tiếp nhận").await;
    let e = node
        .report_status(&sonv, "van-thu", received, StatusCode::Rejected, "muộn")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidTransition, "{e}");

    stop.send(true).unwrap();
    worker.await.unwrap();
    assert!(node.store.verify_audit().await.unwrap().is_ok());
}

/// 15/16 on an update and on a replacement answer each once; a processing code is not reported
/// on an update of a document the recipient holds; a second update is refused at submission,
/// while a revocation after an update works end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_and_replacements_are_answered_once_and_a_revocation_after_an_update_is_delivered()
{
    use lienthong::Code;
    use lienthong::node::service::UpdateRequest;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    let store = common::store::node_store(&mut config).await;
    let node = Node::new(config, store).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = outbox::spawn(node.clone(), stopped);
    let stttt = code("000.00.05.H21");
    let sonv = code("000.00.04.H21");
    let (sent, _, received) = sent_and_received(&node, &["000.00.04.H21"], "V/v sửa").await;
    let received = received.unwrap();
    let report = |item: i64, code: StatusCode| {
        let node = node.clone();
        let sonv = sonv.clone();
        async move {
            node.report_status(&sonv, "van-thu", item, code, "Ý kiến")
                .await
                .map_err(|e| e.code())
        }
    };
    report(received, StatusCode::Registered).await.unwrap();

    let update = || -> UpdateRequest {
        serde_json::from_str(r#"{"reason": "Sửa trích yếu", "subject": "V/v sửa (mới)"}"#).unwrap()
    };
    node.update(&stttt, "idesk", sent, update()).await.unwrap();
    let e = node
        .update(&stttt, "idesk", sent, update())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FollowUpExists, "a second update: {e}");
    let updated = inbox_id(&node, sonv.as_str(), 2, "V/v sửa (mới)").await;
    assert_eq!(
        report(updated, StatusCode::Assigned).await.unwrap_err(),
        Code::InvalidTransition,
        "processing is reported on the document, not on its update"
    );
    report(updated, StatusCode::TakeBackAgreed).await.unwrap();
    assert_eq!(
        report(updated, StatusCode::TakeBackRefused)
            .await
            .unwrap_err(),
        Code::InvalidTransition
    );
    // Processing goes on on the document itself.
    report(received, StatusCode::Assigned).await.unwrap();

    // A revocation after the update: delivered, answered, the copy cancelled.
    node.revoke(&stttt, "idesk", sent, "Thu hồi").await.unwrap();
    let revocation = inbox_id(&node, sonv.as_str(), 1, "V/v sửa").await;
    report(revocation, StatusCode::TakeBackAgreed)
        .await
        .unwrap();
    assert!(
        node.store
            .inbox_item(sonv.as_str(), received)
            .await
            .unwrap()
            .revoked
    );
    assert_eq!(
        report(received, StatusCode::Finished).await.unwrap_err(),
        Code::InvalidTransition,
        "nothing is processed once the recipient agreed to revoke"
    );

    // A replacement (of another document): processed like a document, answered once.
    let (other, _, _) = sent_and_received(&node, &["000.00.04.H21"], "V/v cũ").await;
    let sub: Submission = serde_json::from_str(
        r#"{"recipients": ["000.00.04.H21"], "notation": "STTTT-VP", "content": "Nội dung văn bản.", "subject": "V/v thay thế"}"#,
    )
    .unwrap();
    node.replace(&stttt, "idesk", other, &sub, vec![], "Ký sai thẩm quyền")
        .await
        .unwrap();
    let replacement = inbox_id(&node, sonv.as_str(), 3, "V/v thay thế").await;
    report(replacement, StatusCode::Registered).await.unwrap();
    report(replacement, StatusCode::TakeBackRefused)
        .await
        .unwrap();
    assert_eq!(
        report(replacement, StatusCode::TakeBackAgreed)
            .await
            .unwrap_err(),
        Code::InvalidTransition
    );
    let item = node
        .store
        .inbox_item(sonv.as_str(), replacement)
        .await
        .unwrap();
    assert!(!item.revoked);

    // Every accepted answer reached the sender: 03, 15, 04, 15 on the first document.
    wait_for("the answers at the sender", || {
        let node = node.clone();
        async move {
            let mut h: Vec<u8> = history_codes(&node, sent)
                .await
                .into_iter()
                .map(|(_, c)| c)
                .collect();
            h.sort();
            h == [3, 4, 15, 15]
        }
    })
    .await;
    stop.send(true).unwrap();
    worker.await.unwrap();
    assert!(node.store.verify_audit().await.unwrap().is_ok());
}

/// Two answers to the same revocation at once, or two revocations of the same document at once:
/// the check runs in the store's write against the history as the other left it, so exactly
/// one of each pair passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_answers_and_revocations_cannot_both_pass() {
    use lienthong::Code;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    let store = common::store::node_store(&mut config).await;
    let node = Node::new(config, store).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = outbox::spawn(node.clone(), stopped);
    let stttt = code("000.00.05.H21");
    let sonv = code("000.00.04.H21");
    let (sent, _, _) = sent_and_received(&node, &["000.00.04.H21"], "V/v đồng thời").await;

    let revoke = |reason: &'static str| {
        let node = node.clone();
        let stttt = stttt.clone();
        tokio::spawn(async move { node.revoke(&stttt, "idesk", sent, reason).await })
    };
    let (a, b) = (revoke("Lần một"), revoke("Lần hai"));
    let outcomes = [a.await.unwrap(), b.await.unwrap()];
    assert_eq!(
        outcomes.iter().filter(|r| r.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    let e = outcomes.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!(e.code(), Code::FollowUpExists, "{e}");

    let revocation = inbox_id(&node, sonv.as_str(), 1, "V/v đồng thời").await;
    let answer = |c: StatusCode| {
        let node = node.clone();
        let sonv = sonv.clone();
        tokio::spawn(async move {
            node.report_status(&sonv, "van-thu", revocation, c, "Ý kiến")
                .await
        })
    };
    let (a, b) = (
        answer(StatusCode::TakeBackAgreed),
        answer(StatusCode::TakeBackRefused),
    );
    let outcomes = [a.await.unwrap(), b.await.unwrap()];
    assert_eq!(
        outcomes.iter().filter(|r| r.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    let e = outcomes.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!(e.code(), Code::InvalidTransition, "{e}");

    stop.send(true).unwrap();
    worker.await.unwrap();
    assert!(node.store.verify_audit().await.unwrap().is_ok());
}

/// Revocations, updates and replacements are held to the same checks as a new submission
/// (control characters, strict codes, routes, files), and a refused replacement takes no
/// number; an accepted one carries its own number in its DocumentId and its business block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_are_checked_like_submissions_and_refusals_take_no_number() {
    use lienthong::Code;
    use lienthong::node::service::{UpdateRecipient, UpdateRequest};

    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    let store = common::store::node_store(&mut config).await;
    let node = Node::new(config, store).unwrap();
    let stttt = code("000.00.05.H21");
    let year = lienthong::edxml::vietnam_time(time::OffsetDateTime::now_utc()).year();
    let sub: Submission = serde_json::from_str(
        r#"{"recipients": ["000.00.04.H21"], "notation": "STTTT-VP", "content": "Nội dung văn bản.", "subject": "V/v gốc",
            "signer": {"full_name": "Trần Thị Bình"}}"#,
    )
    .unwrap();
    let sent = node
        .submit(&stttt, "idesk", &sub, vec![], None)
        .await
        .unwrap();
    let last = async || node.store.last_number(stttt.as_str(), year).await.unwrap();
    assert_eq!(last().await, 1);

    let update = |f: &dyn Fn(&mut UpdateRequest)| {
        let mut u = UpdateRequest {
            reason: "Sửa trích yếu".into(),
            subject: Some("V/v gốc (sửa)".into()),
            ..UpdateRequest::default()
        };
        f(&mut u);
        u
    };
    let file = |name: &str| File {
        name: name.into(),
        content_type: "application/pdf".into(),
        data: b"%PDF".to_vec(),
    };
    let cases: Vec<(UpdateRequest, Code, &str)> = vec![
        (
            update(&|u| u.subject = Some("V/v\r\nBcc: x".into())),
            Code::CharacterNotAllowed,
            "update.subject",
        ),
        (
            update(&|u| u.reason = "Sửa\u{7}".into()),
            Code::CharacterNotAllowed,
            "update.reason",
        ),
        (
            update(&|u| u.content = Some("Nội dung\u{0}".into())),
            Code::CharacterNotAllowed,
            "update.content",
        ),
        (
            update(&|u| {
                u.signer = Some(serde_json::from_str(r#"{"full_name": "Lê\tHoa"}"#).unwrap())
            }),
            Code::CharacterNotAllowed,
            "update.signer.full_name",
        ),
        (
            update(&|u| u.files = vec![file("cv\r\n.pdf")]),
            Code::CharacterNotAllowed,
            "update.files[0].name",
        ),
        (
            update(&|u| u.files = (0..201).map(|i| file(&format!("{i}.pdf"))).collect()),
            Code::AttachmentLimit,
            "update.files",
        ),
        (
            update(&|u| u.recipients = Some(vec![UpdateRecipient::Code("H41".into())])),
            Code::OrganIdInvalid,
            "update.recipients[0]",
        ),
        (
            update(&|u| u.recipients = Some(vec![UpdateRecipient::Code("000.00.00.H14".into())])),
            Code::NoRoute,
            "update.recipients[0]",
        ),
        (
            update(&|u| {
                u.recipients = Some(vec![UpdateRecipient::Detailed {
                    code: "000.00.04.H21".into(),
                    name: Some("Sở\nNội vụ".into()),
                    receiver_type: 1,
                }])
            }),
            Code::CharacterNotAllowed,
            "update.recipients[0].name",
        ),
    ];
    for (req, code, path) in cases {
        let e = node
            .update(&stttt, "idesk", sent.message_id, req)
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "{e}");
        assert!(e.to_string().starts_with(&format!("{path}:")), "{e}");
    }
    let e = node
        .revoke(&stttt, "idesk", sent.message_id, "Thu hồi\u{1b}")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::CharacterNotAllowed, "{e}");

    // A replacement refused for its content or its reason takes no number.
    let replacement = |notation: &str| -> Submission {
        serde_json::from_value(serde_json::json!({
            "recipients": ["000.00.04.H21"], "notation": notation,
            "content": "Nội dung văn bản.", "subject": "V/v thay thế", "signer": {"full_name": "Lê Thị Hoa"}
        }))
        .unwrap()
    };
    let e = node
        .replace(
            &stttt,
            "idesk",
            sent.message_id,
            &replacement("VP,X"),
            vec![],
            "Sai",
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::CharacterNotAllowed, "{e}");
    let e = node
        .replace(
            &stttt,
            "idesk",
            sent.message_id,
            &replacement("STTTT-VP"),
            vec![],
            "Sai\u{0}",
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::CharacterNotAllowed, "{e}");
    assert_eq!(last().await, 1);
    assert_eq!(
        node.store
            .list_outgoing(stttt.as_str(), &Default::default())
            .await
            .unwrap()
            .len(),
        1
    );

    // Accepted: its own number 02, in the header's DocumentId and in the business block.
    let replaced = node
        .replace(
            &stttt,
            "idesk",
            sent.message_id,
            &replacement("STTTT-VP"),
            vec![],
            "Sai",
        )
        .await
        .unwrap();
    assert!(
        replaced.document_id.contains(",02/STTTT-VP"),
        "{}",
        replaced.document_id
    );
    let bytes = node.store.message_bytes(replaced.message_id).await.unwrap();
    let lienthong::edxml::Package::Document(doc) =
        lienthong::edxml::read(&bytes, &Default::default()).unwrap()
    else {
        panic!("a document")
    };
    assert_eq!(doc.header.code.number, "02");
    assert_eq!(
        doc.header.document_id.as_deref(),
        Some(replaced.document_id.as_str())
    );
    assert_eq!(
        doc.business.as_ref().unwrap().document_id.as_deref(),
        Some(replaced.document_id.as_str())
    );
    assert_eq!(last().await, 2);
}

/// Many clerks of one agency at once, some retrying with the same idempotency key, some
/// refused only after their number was chosen (the signed package is over the size limit):
/// the documents stored get exactly 1..=n, each once, and the sequence stands at n. (A
/// submission may be told `STORE_UNAVAILABLE` when one numbered before it stored nothing; a
/// clerk's system submits again, as this one does.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submissions_are_numbered_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_with(dir.path(), "[limits]\nmax_package_mb = 1\n");
    let store = common::store::node_store(&mut config).await;
    let node = Node::new(config, store).unwrap();
    let stttt = code("000.00.05.H21");
    let year = lienthong::edxml::vietnam_time(time::OffsetDateTime::now_utc()).year();
    let sub: Submission = serde_json::from_str(
        r#"{"recipients": ["000.00.04.H21"], "notation": "STTTT-VP", "content": "Nội dung văn bản.", "subject": "V/v đồng thời",
            "signer": {"full_name": "Trần Thị Bình"}}"#,
    )
    .unwrap();
    // 900 KB that does not compress: base64 makes the package larger than 1 MiB.
    let mut noise = vec![0u8; 900 * 1024];
    fastrand::Rng::with_seed(3).fill(&mut noise);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..70u32 {
        let node = node.clone();
        let stttt = stttt.clone();
        let sub = sub.clone();
        // 20 keys used twice each, 20 submissions without a key: 40 documents; and 10 too large.
        let key = (i < 40).then(|| format!("k-{}", i / 2));
        let files = if i >= 60 {
            vec![File {
                name: "scan.pdf".into(),
                content_type: "application/pdf".into(),
                data: noise.clone(),
            }]
        } else {
            vec![]
        };
        tasks.spawn(async move {
            for _ in 0..20 {
                match node
                    .submit(&stttt, "idesk", &sub, files.clone(), key.clone())
                    .await
                {
                    Ok(s) => return Ok(s.message_id),
                    Err(e) if e.code() == lienthong::Code::StoreUnavailable => continue,
                    Err(e) => return Err(e.code()),
                }
            }
            panic!("submission {i}: still refused after 20 tries")
        });
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut too_large = 0;
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            Ok(id) => {
                ids.insert(id);
            }
            Err(code) => {
                assert_eq!(code, lienthong::Code::PackageTooLarge);
                too_large += 1;
            }
        }
    }
    assert_eq!((ids.len(), too_large), (40, 10));
    let mut numbers = Vec::new();
    for id in ids {
        let m = node
            .store
            .outgoing_item(stttt.as_str(), id)
            .await
            .unwrap()
            .message;
        numbers.push(m.code_number.unwrap().parse::<u32>().unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=40).collect::<Vec<_>>());
    assert_eq!(
        node.store.last_number(stttt.as_str(), year).await.unwrap(),
        40
    );
}

/// A route that was there at submission and is gone when the outbox gets to the delivery (the
/// peer was taken out of the configuration meanwhile) still fails with NO_ROUTE for an
/// operator, without retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_gone_since_submission_fails_with_no_route() {
    let dir = tempfile::tempdir().unwrap();
    let mut with_peer = {
        let store = format!("sqlite://{}", dir.path().join("node.db").display());
        let text = nodes::node_table("gialai", "127.0.0.1:0", &store)
            + &nodes::agency(
                nodes::STTTT,
                "Sở Thông tin và Truyền thông tỉnh Gia Lai",
                "stttt-gialai",
            )
            + &nodes::peer("nghean", "http://127.0.0.1:9", nodes::NGHEAN);
        Config::from_toml(&text, dir.path(), &|_| None).unwrap()
    };
    let store = common::store::node_store(&mut with_peer).await;
    let before = Node::new(with_peer, store.clone()).unwrap();
    let sub: Submission = serde_json::from_str(
        r#"{"recipients": ["000.00.00.H41"], "notation": "STTTT-VP", "content": "Nội dung văn bản.", "subject": "V/v gửi Nghệ An",
            "signer": {"full_name": "Trần Thị Bình"}}"#,
    )
    .unwrap();
    let stttt = code(nodes::STTTT);
    let sent = before
        .submit(&stttt, "idesk", &sub, vec![], None)
        .await
        .unwrap();

    let after = Node::new(config(dir.path()), store).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = outbox::spawn(after.clone(), stopped);
    let id = sent.message_id;
    let s = after.store.clone();
    wait_for("the delivery to fail", || {
        let s = s.clone();
        async move {
            let item = s.outgoing_item(nodes::STTTT, id).await.unwrap();
            item.deliveries[0].state == DeliveryState::Failed
        }
    })
    .await;
    let item = after.store.outgoing_item(nodes::STTTT, id).await.unwrap();
    let d = &item.deliveries[0];
    assert_eq!(d.last_error.as_ref().unwrap().code, "NO_ROUTE");
    assert_eq!(d.attempts, 1, "NO_ROUTE is not retried");
    stop.send(true).unwrap();
    worker.await.unwrap();
}

/// A package changed in the database after it was queued is never delivered: the claim does not
/// hand it on, the outbox's own read is `STORE_CORRUPT`, and the delivery fails at once (sending
/// damaged bytes again cannot succeed) rather than retrying for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_changed_in_the_database_fails_its_delivery_as_store_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    let store = common::store::node_store(&mut config).await;
    let url = config.node.store.clone();
    let node = Node::new(config, store).unwrap();
    let sub: Submission = serde_json::from_str(
        r#"{"recipients": ["000.00.04.H21"], "notation": "STTTT-VP",
            "content": "Nội dung văn bản.", "subject": "V/v kiểm tra", "signer": {"full_name": "Trần Thị Bình"}}"#,
    )
    .unwrap();
    let sent = node
        .submit(&code("000.00.05.H21"), "idesk", &sub, vec![], None)
        .await
        .unwrap();
    // Someone with the file edits the queued package (the trigger is in their way first).
    let raw = common::store::Raw::connect(&url).await;
    let tamper = if raw.is_postgres() {
        format!(
            "DROP TRIGGER messages_immutable ON messages;
             UPDATE messages SET bytes = convert_to(replace(convert_from(bytes, 'UTF8'),
                 'kiểm tra', 'kiểm tre'), 'UTF8') WHERE id = {}",
            sent.message_id
        )
    } else {
        format!(
            "DROP TRIGGER messages_immutable;
             UPDATE messages SET bytes = replace(bytes, 'kiểm tra', 'kiểm tre') WHERE id = {}",
            sent.message_id
        )
    };
    raw.execute(&tamper).await.unwrap();

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
