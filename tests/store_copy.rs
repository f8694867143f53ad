//! `lienthong store copy`: a node's whole history moved SQLite → PostgreSQL → SQLite, the audit
//! chain verifying on each store at the source's head, every row and package as it was.
//!
//! The PostgreSQL leg needs `LIENTHONG_TEST_POSTGRES` (a server URL whose user may create
//! databases; each run creates its own `lt_t_copy_…` and drops it when it passes). Without it
//! the test says loudly that it skipped that leg (`common::store::postgres_url_or_skip`) and
//! copies SQLite → SQLite instead (the same code on both ends). Either way the source is SQLite:
//! the copy's point is a node's SQLite history.

mod common;

use std::process::{Command, Output};

use lienthong::audit::AuditEntry;
use lienthong::pki::binding::Rule;
use lienthong::store::{
    DeliveryError, DocumentMeta, DraftFile, Lease, MailEffect, NewDelivery, NewDraft, NewIncoming,
    NewOutgoing, NewRegistryEntry, NewStatus, RevocationEvidence, SignedPackage, SqliteStore,
    Store,
};
use serde_json::json;
use sqlx::Connection;

/// 2026-11-25 00:00:00 +07:00.
const DAY: i64 = 1_795_539_600_000;
const HOUR: i64 = 3_600_000;
const GIALAI: &str = "000.00.00.G22";
const GIALAI_UBND: &str = "000.00.01.G22";
const NGHEAN: &str = "000.00.00.H41";
const MIB: usize = 1024 * 1024;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lienthong"))
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn package(text: &str, pad: usize) -> SignedPackage {
    // Not one repeated byte: a chunking bug that reorders chunks must change the hash.
    let filler: String = (0..pad).map(|i| (b'a' + (i % 23) as u8) as char).collect();
    SignedPackage {
        bytes: format!("<edXML>{text}{filler}</edXML>").into_bytes(),
        signer_subject: Some("CN=Sở Thông tin và Truyền thông tỉnh Gia Lai".into()),
        signer_fingerprint: Some("ab".repeat(32)),
        header_json: json!({ "subject": text }).to_string(),
        signed_content: None,
        channel: None,
    }
}

fn meta(sender: &str, number: &str) -> DocumentMeta {
    DocumentMeta {
        sender: sender.into(),
        document_id: format!("{sender},2026/11/25,{number}/CĐS"),
        business_type: 0,
        code_number: number.into(),
        code_notation: "CĐS".into(),
        code_year: 2026,
        subject: format!("V/v văn bản số {number}"),
    }
}

/// A store with the node's everyday writes: documents sent (one of 3.5 MiB, kept as a file,
/// so four chunks on PostgreSQL), delivered, failed, retrying and still leased; one received
/// with its revocation evidence; a status; the registry; mail taken in (a quarantined mail
/// with its reply limit, a draft with a file that was discarded) and the mailbox checkpoint.
async fn busy_store(url: &str) -> Vec<i64> {
    let store = SqliteStore::open(url).await.unwrap();
    let out = |number: &str, pad: usize| NewOutgoing {
        document: meta(GIALAI, number),
        package: package(number, pad),
        deliveries: vec![NewDelivery {
            recipient: NGHEAN.into(),
            route: "peer:nghean".into(),
        }],
        idempotency_key: Some(format!("key-{number}")),
        request: None,
        actor: format!("clerk:{GIALAI}:lan"),
        numbering: lienthong::store::Numbering::Given,
        from_draft: None,
    };
    let sent = store.submit_outgoing(out("11", 0), DAY).await.unwrap();
    let large = store
        .submit_outgoing(out("12", 3 * MIB + MIB / 2), DAY)
        .await
        .unwrap();
    let retried = store.submit_outgoing(out("13", 100), DAY).await.unwrap();
    let received = store
        .ingest_incoming(
            NewIncoming {
                document: meta(NGHEAN, "7"),
                package: package("from Nghệ An", 0),
                local_recipients: vec![GIALAI_UBND.into(), GIALAI.into()],
                peer: Some("nghean".into()),
                receipts: vec![b"receipt 01".to_vec(), b"receipt 01 of Gia Lai".to_vec()],
                actor: "peer:nghean".into(),
                revocation: vec![RevocationEvidence {
                    subject: "CN=Nghệ An".into(),
                    serial: "0a1b".into(),
                    fingerprint: "cd".repeat(32),
                    policy: "prefer".into(),
                    status: "unknown".into(),
                    kind: None,
                    source: Some("http://ocsp.example/".into()),
                    der: None,
                    this_update: None,
                    next_update: None,
                    produced_at: None,
                    note: Some("responder down".into()),
                    flagged: true,
                    checked_at: DAY + 1,
                }],
                received_sha256: None,
            },
            DAY + 1,
        )
        .await
        .unwrap();
    let received = match received {
        lienthong::store::IngestOutcome::Inserted { message_id } => message_id,
        other => panic!("{other:?}"),
    };
    let claimed = store
        .claim_due(DAY + 2, 10, "outbox:1", 60_000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let lease = |d: i64| -> Lease {
        claimed
            .iter()
            .find(|c| c.lease.delivery_id == d)
            .unwrap()
            .lease
    };
    store
        .mark_delivered(
            lease(sent.deliveries[0].delivery_id),
            b"receipt from Nghe An".to_vec(),
            DAY + 3,
        )
        .await
        .unwrap();
    store
        .mark_failed(
            lease(large.deliveries[0].delivery_id),
            DeliveryError {
                code: "PEER_UNREACHABLE".into(),
                message: "connection refused".into(),
            },
            DAY + 3,
        )
        .await
        .unwrap();
    store
        .retry_later(
            lease(retried.deliveries[0].delivery_id),
            DeliveryError {
                code: "PEER_UNREACHABLE".into(),
                message: "timed out".into(),
            },
            DAY + 4,
            DAY + 3,
        )
        .await
        .unwrap();
    // Claimed again and left leased: a copy moves a stopped node, leases and all.
    assert_eq!(
        store
            .claim_due(DAY + 5, 10, "outbox:2", 60_000)
            .await
            .unwrap()
            .len(),
        1
    );
    let doc = meta(GIALAI, "11");
    let status = store
        .record_status(
            NewStatus {
                direction: lienthong::store::Direction::In,
                document_sender: doc.sender.clone(),
                document_id: doc.document_id.clone(),
                reporter: NGHEAN.into(),
                code: 4,
                description: "Đã phân công xử lý".into(),
                reported_at: DAY + 4,
                package: package("status 04", 0),
                deliveries: Vec::new(),
                peer: Some("nghean".into()),
                actor: "peer:nghean".into(),
                revocation: Vec::new(),
                on_business_type: None,
            },
            DAY + 5,
        )
        .await
        .unwrap();
    for (code, at) in [(GIALAI, DAY + 6), (NGHEAN, DAY + 7)] {
        store
            .registry_set(
                NewRegistryEntry {
                    code: code.into(),
                    name: format!("agency {code}"),
                    rules: vec![Rule::Fingerprint {
                        sha256: "ab".repeat(32),
                        note: None,
                    }],
                },
                "admin:hoa",
                at,
            )
            .await
            .unwrap();
    }
    store
        .registry_remove(NGHEAN, "admin:hoa", DAY + 8)
        .await
        .unwrap();
    let mail = |uid: u32, effect: MailEffect| lienthong::store::TakenMail {
        mailbox: "lienthong@mail.gialai.gov.vn/INBOX".into(),
        uidvalidity: 7,
        uid,
        return_path: "nguoi-la@example.vn".into(),
        from: "nguoi-la@example.vn".into(),
        subject: "Xin chào".into(),
        message_id: None,
        size: 1200,
        effect,
        actor: "mail:lienthong@mail.gialai.gov.vn/INBOX".into(),
    };
    store
        .take_mail(
            mail(
                1,
                MailEffect::Quarantined {
                    code: "MAIL_NOT_UNDERSTOOD".into(),
                    reason: "no signed package".into(),
                    reply_to: Some("nguoi-la@example.vn".into()),
                },
            ),
            HOUR,
            DAY + 9,
        )
        .await
        .unwrap();
    let draft = store
        .take_mail(
            mail(
                2,
                MailEffect::Draft(NewDraft {
                    agency: GIALAI.into(),
                    code_number: None,
                    code_notation: None,
                    summary: "V/v dự thảo".into(),
                    body: "nội dung".into(),
                    files: vec![DraftFile {
                        name: "Dự thảo.pdf".into(),
                        content_type: "application/pdf".into(),
                        bytes: b"%PDF-1.7 du thao".to_vec(),
                    }],
                }),
            ),
            HOUR,
            DAY + 10,
        )
        .await
        .unwrap()
        .draft_id
        .unwrap();
    store
        .discard_draft(
            GIALAI,
            draft,
            "gửi nhầm",
            &format!("clerk:{GIALAI}:lan"),
            DAY + 11,
        )
        .await
        .unwrap();
    store
        .record_admin_action(
            AuditEntry::new(
                "admin:hoa",
                "admin.peer.update",
                "peer",
                "nghean",
                &json!({}),
            ),
            DAY + 12,
        )
        .await
        .unwrap();
    store.close().await;
    vec![
        sent.message_id,
        large.message_id,
        retried.message_id,
        received,
        status.message_id,
    ]
}

/// `lienthong audit verify`'s first line (`audit chain OK: N records, head H`).
fn verified(url: &str) -> String {
    let o = bin()
        .args(["audit", "verify", "--store", url])
        .output()
        .unwrap();
    assert!(o.status.success(), "audit verify {url}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .next()
        .unwrap()
        .to_owned()
}

fn copy(from: &str, to: &str) -> Output {
    bin()
        .args(["store", "copy", "--from", from, "--to", to])
        .output()
        .unwrap()
}

/// A new database on the server of `LIENTHONG_TEST_POSTGRES`, or `None` (said loudly).
async fn postgres_database() -> Option<(String, String)> {
    let server = common::store::postgres_url_or_skip(
        "store_copy: the PostgreSQL leg (copied SQLite → SQLite instead)",
    )?;
    // `lt_t_…`: scripts/test.sh drops what a failed run leaves behind.
    let name = format!("lt_t_copy_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let (base, _) = server.rsplit_once('/').unwrap();
    Some((format!("{base}/{name}"), name))
}

async fn drop_database(name: &str) {
    let server = std::env::var("LIENTHONG_TEST_POSTGRES").unwrap();
    let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
}

/// Every table of `a` and `b` (SQLite files) holds the same rows; package files may have other
/// names, so `messages.file` is compared only as present or not.
async fn same_rows(a: &std::path::Path, b: &std::path::Path) {
    let url = format!("sqlite://{}", a.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ATTACH DATABASE '{}' AS other",
        b.display()
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables.len(), 16, "{tables:?}");
    for t in tables {
        let cols: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{t}')"
        )))
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let list: Vec<String> = cols
            .iter()
            .map(|c| {
                if t == "messages" && c == "file" {
                    "file IS NULL".to_owned()
                } else {
                    format!("\"{c}\"")
                }
            })
            .collect();
        let list = list.join(", ");
        for (x, y) in [("main", "other"), ("other", "main")] {
            let differ: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM (SELECT {list} FROM {x}.{t} EXCEPT SELECT {list} FROM {y}.{t})"
            )))
            .fetch_one(&mut conn)
            .await
            .unwrap();
            assert_eq!(differ, 0, "table {t}: rows of {x} not in {y}");
        }
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {t}")))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        eprintln!("{t}: {n} rows alike");
    }
    let files: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE file IS NOT NULL")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(files, 1, "the 3.5 MiB package is a file on both");
}

#[tokio::test]
async fn a_store_goes_to_postgres_and_back_with_its_whole_history() {
    let dir = tempfile::tempdir().unwrap();
    let source_path = dir.path().join("source.db");
    let source = format!("sqlite://{}", source_path.display());
    let messages = busy_store(&format!("{source}?mode=rwc")).await;
    let head = verified(&source);

    let back_path = dir.path().join("back.db");
    let back = format!("sqlite://{}", back_path.display());
    let pg = postgres_database().await;
    match &pg {
        Some((pg_url, _)) => {
            let o = copy(&source, pg_url);
            assert!(o.status.success(), "sqlite → postgres: {}", text(&o));
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(out.contains(&head), "{out}");
            assert!(out.contains("1 large packages"), "{out}");
            assert_eq!(verified(pg_url), head);
            // A second copy into the now full database is refused, and changes nothing.
            let again = copy(&source, pg_url);
            assert_eq!(again.status.code(), Some(1), "{}", text(&again));
            assert!(
                String::from_utf8_lossy(&again.stderr).contains("not empty"),
                "{}",
                text(&again)
            );
            assert_eq!(verified(pg_url), head);
            let o = copy(pg_url, &back);
            assert!(o.status.success(), "postgres → sqlite: {}", text(&o));
        }
        None => {
            let o = copy(&source, &back);
            assert!(o.status.success(), "sqlite → sqlite: {}", text(&o));
        }
    }
    assert_eq!(verified(&back), head);
    same_rows(&source_path, &back_path).await;

    // Every package reads back byte for byte, the large one from its new file.
    let a = SqliteStore::open(&source).await.unwrap();
    let b = SqliteStore::open(&back).await.unwrap();
    for id in messages {
        assert_eq!(
            a.message_bytes(id).await.unwrap(),
            b.message_bytes(id).await.unwrap(),
            "message {id}"
        );
    }
    // The copy goes on as a store: ids continue after the copied ones.
    let next = b
        .record_admin_action(
            AuditEntry::new("admin:hoa", "admin.peer.update", "peer", "x", &json!({})),
            DAY + 13,
        )
        .await
        .unwrap();
    let last_seq: i64 = head.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert_eq!(next, last_seq + 1);
    a.close().await;
    b.close().await;
    if let Some((_, name)) = pg {
        drop_database(&name).await;
    }
}
