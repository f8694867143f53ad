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

fn config(dir: &std::path::Path) -> Config {
    let pki = pki("");
    let text = format!(
        r#"
[node]
name = "gialai"
listen = "127.0.0.1:0"
store = "sqlite://{db}"
trust = ["{pki}/root-ca.cert.pem"]
[[agency]]
code = "000.00.05.H21"
name = "Sở Thông tin và Truyền thông tỉnh Gia Lai"
key = "{pki}/stttt-gialai.key.pem"
cert = "{pki}/stttt-gialai.cert.pem"
chain = "{pki}/chain.pem"
[[agency]]
code = "000.00.04.H21"
name = "Sở Nội vụ tỉnh Gia Lai"
key = "{pki}/sonv-gialai.key.pem"
cert = "{pki}/sonv-gialai.cert.pem"
chain = "{pki}/chain.pem"
[retry]
initial_backoff = "50ms"
"#,
        db = dir.join("node.db").display(),
        pki = pki.display()
    );
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
}
