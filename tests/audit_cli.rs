//! `lienthong audit verify` and `lienthong audit export` as an administrator runs them, on a real
//! store file tampered with through raw SQL (the store of the run's backend, `common::store`;
//! the tests named `sqlite_…` look at SQLite's files and always run on SQLite).

mod common;

use std::process::{Command, Output};

use lienthong::audit::export::parse_jsonl_line;
use lienthong::audit::hash::sha256_hex;
use lienthong::audit::{AuditEntry, AuditRecord, verify_chain};
use lienthong::pki::binding::Rule;
use lienthong::store::AnyStore;
use lienthong::store::{
    DeliveryError, DocumentMeta, DraftFile, Lease, MailEffect, NewDelivery, NewDraft, NewIncoming,
    NewOutgoing, NewRegistryEntry, NewStatus, SignedPackage, SqliteStore, Store, TakenMail,
};
use serde_json::json;

use common::store::{Raw, TestDb};

/// 2026-11-25 00:00:00 +07:00 (midnight in Vietnam).
const DAY: i64 = 1_795_539_600_000;
const HOUR: i64 = 3_600_000;

fn bin() -> Command {
    static WIRED: std::sync::Once = std::sync::Once::new();
    WIRED.call_once(|| {
        let help = Command::new(env!("CARGO_BIN_EXE_lienthong"))
            .args(["audit", "--help"])
            .output()
            .unwrap();
        assert!(
            help.status.success(),
            "`lienthong audit` is not wired into src/cli/mod.rs (see the doc of src/cli/audit.rs)"
        );
    });
    Command::new(env!("CARGO_BIN_EXE_lienthong"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A store with 8 admin actions, one every 6 hours from midnight of 2026-11-25 (Vietnam time).
async fn store() -> (Option<tempfile::TempDir>, String, Raw) {
    store_in(common::store::fresh_db().await).await
}

/// A SQLite store whatever the run's backend, for the tests of SQLite's own files.
async fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = common::store::sqlite_url_in(dir.path());
    TestDb {
        store: AnyStore::Sqlite(SqliteStore::open(&url).await.unwrap()),
        url,
        dir: Some(dir),
    }
}

/// The URL the CLI is given: a SQLite one without `mode=rwc`, so that nothing creates it.
fn cli_url(url: &str) -> String {
    url.strip_suffix("?mode=rwc").unwrap_or(url).to_owned()
}

/// [`store`] in `db`.
async fn store_in(db: TestDb) -> (Option<tempfile::TempDir>, String, Raw) {
    let store = db.store;
    for i in 0..8 {
        store
            .record_admin_action(
                AuditEntry::new(
                    "admin:hoa",
                    "admin.peer.update",
                    "peer",
                    "nghean",
                    &json!({ "i": i, "note": "đổi địa chỉ, \"mới\"" }),
                ),
                DAY + i * 6 * HOUR,
            )
            .await
            .unwrap();
    }
    store.close().await;
    let raw = Raw::connect(&db.url).await;
    (db.dir, cli_url(&db.url), raw)
}

fn verify(url: &str) -> Output {
    bin()
        .args(["audit", "verify", "--store", url])
        .output()
        .unwrap()
}

async fn tamper(raw: &Raw, sql: &'static str) {
    let on = if raw.is_postgres() { " ON audit" } else { "" };
    raw.execute(&format!(
        "DROP TRIGGER IF EXISTS audit_no_update{on}; DROP TRIGGER IF EXISTS audit_no_delete{on}"
    ))
    .await
    .unwrap();
    raw.execute(sql).await.unwrap();
}

#[tokio::test]
async fn verify_says_ok_with_the_head() {
    let (_dir, url, _raw) = store().await;
    let o = verify(&url);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let line = out.lines().next().unwrap();
    assert!(
        line.starts_with("audit chain OK: 8 records, head "),
        "{line}"
    );
    assert_eq!(line.trim().rsplit(' ').next().unwrap().len(), 64, "{line}");
    assert!(out.contains("store matches the chain: 0 messages"), "{out}");
}

#[tokio::test]
async fn verify_names_an_edited_record() {
    let (_dir, url, raw) = store().await;
    tamper(&raw, r#"UPDATE audit SET detail = '{"i":4}' WHERE seq = 5"#).await;
    let o = verify(&url);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("AUDIT_BROKEN: record 5: edited"), "{err}");
}

#[tokio::test]
async fn verify_names_a_deleted_record() {
    let (_dir, url, raw) = store().await;
    tamper(&raw, "DELETE FROM audit WHERE seq = 5").await;
    let o = verify(&url);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("AUDIT_BROKEN: record 5: deleted"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn verify_names_an_inserted_record() {
    let (_dir, url, raw) = store().await;
    // A copy of record 4 under a fresh seq: it claims record 3 as its predecessor, which
    // already has one.
    tamper(
        &raw,
        "INSERT INTO audit (seq, at, actor, action, entity_kind, entity_id, detail, prev_hash, hash)
         SELECT 9, at, actor, action, entity_kind, entity_id, detail, prev_hash, hash
         FROM audit WHERE seq = 4",
    )
    .await;
    let o = verify(&url);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("AUDIT_BROKEN: record 9: inserted"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn sqlite_verify_does_not_change_or_create_the_store() {
    let (dir, url, raw) = store_in(sqlite_db().await).await;
    let dir = dir.expect("a SQLite store's folder");
    raw.close().await;
    let db = dir.path().join("node.db");
    let before = std::fs::read(&db).unwrap();
    assert!(verify(&url).status.success());
    assert_eq!(std::fs::read(&db).unwrap(), before);

    let missing = format!("sqlite://{}", dir.path().join("absent.db").display());
    let o = verify(&missing);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("STORE_UNAVAILABLE: "),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("absent.db").exists());
}

#[tokio::test]
async fn export_jsonl_reads_back_and_verifies() {
    let (_dir, url, _raw) = store().await;
    let o = bin()
        .args(["audit", "export", "--store", &url, "--format", "jsonl"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let records: Vec<AuditRecord> = stdout(&o)
        .lines()
        .map(|l| parse_jsonl_line(l).unwrap())
        .collect();
    assert_eq!(records.len(), 8);
    assert_eq!(verify_chain(&records).unwrap().records, 8);
    assert!(
        stdout(&o).contains(r#""time":"2026-11-24T17:00:00Z""#),
        "{}",
        stdout(&o)
    );
}

#[tokio::test]
async fn export_filters_by_date_in_vietnam_time_and_writes_csv() {
    let (_dir, url, _raw) = store().await;
    // Records at 00, 06, 12, 18 h on the 25th and the same on the 26th (Vietnam time).
    let o = bin()
        .args(["audit", "export", "--store", &url, "--format", "csv"])
        .args(["--since", "2026-11-26", "--until", "2026-11-26"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0].trim_end(), lienthong::audit::export::CSV_HEADER);
    assert_eq!(lines.len(), 1 + 4, "{text}");
    assert!(lines[1].starts_with("5,"), "{text}");
    assert!(
        lines[1].contains(r#""{""i"":4,""note"":""đổi địa chỉ, \""mới\""""}""#),
        "{text}"
    );

    let o = bin()
        .args(["audit", "export", "--store", &url, "--format", "jsonl"])
        .args([
            "--since",
            "2026-11-25T12:00:00+07:00",
            "--until",
            "2026-11-25T18:00:00+07:00",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));

    let o = bin()
        .args([
            "audit",
            "export",
            "--store",
            &url,
            "--format",
            "jsonl",
            "--since",
            "yesterday",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "bad usage: {}", stderr(&o));
}

// ---------------------------------------------------------------------------------------------
// The store against the chain: rows edited, deleted or added behind the node's back
// ---------------------------------------------------------------------------------------------

const GIALAI: &str = "000.00.05.H21";
const GIALAI_UBND: &str = "000.00.00.H21";
const NGHEAN: &str = "000.00.00.H41";
/// Packages of this size or more are files beside the database.
const MIB: usize = 1024 * 1024;

fn package(text: &str, pad: usize) -> SignedPackage {
    SignedPackage {
        bytes: format!("<edXML>{text}{}</edXML>", "x".repeat(pad)).into_bytes(),
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

/// The rows of [`busy_store`], by what they are.
struct Ids {
    /// Sent, small (a BLOB), delivered.
    sent: i64,
    sent_delivery: i64,
    /// Sent, 1 MiB (a file), failed.
    large: i64,
    large_delivery: i64,
    /// Received.
    received: i64,
    /// Nghệ An's status 04 on `sent`, and its package.
    status: i64,
    status_message: i64,
}

/// A store with the node's everyday writes: two documents sent (one kept as a file), one
/// delivered and one failed, one received, one status received; and a raw connection to it
/// that does not enforce foreign keys (someone with the file need not either).
async fn busy_store() -> (Option<tempfile::TempDir>, String, Raw, Ids) {
    busy_store_in(common::store::fresh_db().await).await
}

/// [`busy_store`] in `db`.
async fn busy_store_in(db: TestDb) -> (Option<tempfile::TempDir>, String, Raw, Ids) {
    let store = db.store.clone();
    let out = |number: &str, pad: usize| NewOutgoing {
        document: meta(GIALAI, number),
        package: package(number, pad),
        deliveries: vec![NewDelivery {
            recipient: NGHEAN.into(),
            route: "peer:nghean".into(),
        }],
        idempotency_key: None,
        request: None,
        actor: format!("clerk:{GIALAI}:lan"),
        numbering: lienthong::store::Numbering::Given,
        from_draft: None,
    };
    let sent = store.submit_outgoing(out("11", 0), DAY).await.unwrap();
    let large = store.submit_outgoing(out("12", MIB), DAY).await.unwrap();
    let received = store
        .ingest_incoming(
            NewIncoming {
                document: meta(NGHEAN, "7"),
                package: package("from Nghệ An", 0),
                local_recipients: vec![GIALAI_UBND.into(), GIALAI.into()],
                peer: Some("nghean".into()),
                receipts: vec![b"receipt 01".to_vec(), b"receipt 01 of Gia Lai".to_vec()],
                actor: "peer:nghean".into(),
                revocation: Vec::new(),
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
    assert_eq!(claimed.len(), 2);
    let lease = |d: i64| -> Lease {
        claimed
            .iter()
            .find(|c| c.lease.delivery_id == d)
            .unwrap()
            .lease
    };
    let sent_delivery = sent.deliveries[0].delivery_id;
    let large_delivery = large.deliveries[0].delivery_id;
    store
        .mark_delivered(
            lease(sent_delivery),
            b"receipt from Nghe An".to_vec(),
            DAY + 3,
        )
        .await
        .unwrap();
    store
        .mark_failed(
            lease(large_delivery),
            DeliveryError {
                code: "PEER_UNREACHABLE".into(),
                message: "connection refused".into(),
            },
            DAY + 3,
        )
        .await
        .unwrap();
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
    // The sender binding: Gia Lai's key registered, Nghệ An's registered and then removed.
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
    store.close().await;
    let raw = Raw::connect_unchecked(&db.url).await;
    let drop = if raw.is_postgres() {
        "DROP TRIGGER messages_immutable ON messages"
    } else {
        "DROP TRIGGER messages_immutable"
    };
    raw.execute(drop).await.unwrap();
    let ids = Ids {
        sent: sent.message_id,
        sent_delivery,
        large: large.message_id,
        large_delivery,
        received,
        status: status.status_id,
        status_message: status.message_id,
    };
    (db.dir, cli_url(&db.url), raw, ids)
}

/// The audit record that created message `id`.
async fn created_by(raw: &Raw, kind: &str, id: i64) -> i64 {
    on_raw!(raw, raw => sqlx::query_scalar(
        "SELECT seq FROM audit WHERE entity_kind = $1 AND entity_id = $2 ORDER BY seq LIMIT 1",
    )
    .bind(kind)
    .bind(id.to_string())
    .fetch_one(raw)
    .await
    .unwrap())
}

/// `audit verify` refuses (exit 1) with exactly these difference lines, and a last line
/// counting them.
fn differs(url: &str, expected: &[String]) {
    let o = verify(url);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{}{err}", stdout(&o));
    assert!(!stdout(&o).contains("OK"), "{}", stdout(&o));
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), expected.len() + 1, "{err}");
    for (line, want) in lines.iter().zip(expected) {
        assert_eq!(line, want, "{err}");
    }
    let last = lines.last().unwrap();
    assert!(
        last.starts_with(&format!(
            "AUDIT_BROKEN: the store differs from the audit chain in {} places",
            expected.len()
        )),
        "{err}"
    );
}

#[tokio::test]
async fn an_untouched_store_matches_its_chain() {
    let (_dir, url, _raw, _ids) = busy_store().await;
    let o = verify(&url);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("audit chain OK: 11 records, head "),
        "{out}"
    );
    assert!(
        out.contains("store matches the chain: 4 messages (1.0 MiB of packages hashed), 1 statuses, 2 deliveries, 1 registry entries"),
        "{out}"
    );
}

#[tokio::test]
async fn an_edited_subject_is_named() {
    let (_dir, url, raw, ids) = busy_store().await;
    on_raw!(&raw, raw => sqlx::query("UPDATE messages SET subject = 'V/v khác' WHERE id = $1")
        .bind(ids.sent)
        .execute(raw)
        .await
        .map(|r| r.rows_affected())
.unwrap());
    let seq = created_by(&raw, "message", ids.sent).await;
    differs(
        &url,
        &[format!(
            "AUDIT_BROKEN: message {}: subject differs from audit record {seq} (document.submit)",
            ids.sent
        )],
    );
}

#[tokio::test]
async fn sqlite_edited_bytes_are_store_corrupt_in_a_blob_and_in_a_file() {
    let (dir, url, raw, ids) = busy_store_in(sqlite_db().await).await;
    let dir = dir.expect("a SQLite store's folder");
    let (sha, blob): (String, Vec<u8>) = on_raw!(&raw, raw => sqlx::query_as("SELECT sha256, bytes FROM messages WHERE id = $1")
            .bind(ids.received)
            .fetch_one(raw)
            .await
            .unwrap());
    let mut edited = blob.clone();
    edited[8] ^= 1;
    on_raw!(&raw, raw => sqlx::query("UPDATE messages SET bytes = $1 WHERE id = $2")
        .bind(&edited)
        .bind(ids.received)
        .execute(raw)
        .await
        .map(|r| r.rows_affected())
.unwrap());
    let (large_sha, file): (String, String) = on_raw!(&raw, raw => sqlx::query_as("SELECT sha256, file FROM messages WHERE id = $1")
            .bind(ids.large)
            .fetch_one(raw)
            .await
            .unwrap());
    let path = dir.path().join("node.db.packages").join(file);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[MIB / 2] = b'y';
    std::fs::write(&path, &bytes).unwrap();
    let hex = |b: &[u8]| lienthong::audit::hash::sha256_hex(b);
    let large_seq = created_by(&raw, "message", ids.large).await;
    let received_seq = created_by(&raw, "message", ids.received).await;
    differs(
        &url,
        &[
            format!(
                "STORE_CORRUPT: message {}: package bytes hash to {}, audit record {large_seq} (document.submit) says {large_sha}",
                ids.large,
                hex(&bytes)
            ),
            format!(
                "STORE_CORRUPT: message {}: package bytes hash to {}, audit record {received_seq} (document.receive) says {sha}",
                ids.received,
                hex(&edited)
            ),
        ],
    );
}

#[tokio::test]
async fn a_deleted_message_and_a_forged_one_are_named() {
    let (_dir, url, raw, ids) = busy_store().await;
    let seq = created_by(&raw, "message", ids.received).await;
    on_raw!(&raw, raw => sqlx::query("DELETE FROM inbox WHERE message_id = $1")
        .bind(ids.received)
        .execute(raw)
        .await
        .map(|r| r.rows_affected())
.unwrap());
    on_raw!(&raw, raw => sqlx::query("DELETE FROM messages WHERE id = $1")
        .bind(ids.received)
        .execute(raw)
        .await
        .map(|r| r.rows_affected())
.unwrap());
    // A copy of the sent document under a new id: no record created it.
    on_raw!(&raw, raw => sqlx::query(
        "INSERT INTO messages (id, direction, kind, sender, document_id, business_type,
             code_number, code_notation, code_year, subject, sha256, size, header_json, actor,
             created_at, bytes)
         SELECT 99, direction, kind, sender, document_id || 'b', business_type, '99',
             code_notation, code_year, subject, sha256, size, header_json, actor, created_at, bytes
         FROM messages WHERE id = $1",
    )
    .bind(ids.sent)
    .execute(raw)
    .await
    .map(|r| r.rows_affected())
.unwrap());
    differs(
        &url,
        &[
            "AUDIT_BROKEN: message 99: no audit record created it".to_owned(),
            format!(
                "AUDIT_BROKEN: message {}: missing (audit record {seq}, document.receive, created it)",
                ids.received
            ),
        ],
    );
}

#[tokio::test]
async fn an_edited_status_is_named() {
    let (_dir, url, raw, ids) = busy_store().await;
    on_raw!(&raw, raw => sqlx::query("UPDATE statuses SET code = 6 WHERE id = $1")
        .bind(ids.status)
        .execute(raw)
        .await
        .map(|r| r.rows_affected())
.unwrap());
    on_raw!(&raw, raw => sqlx::query("UPDATE messages SET status_code = 6 WHERE id = $1")
        .bind(ids.status_message)
        .execute(raw)
        .await
        .map(|r| r.rows_affected())
.unwrap());
    let seq = created_by(&raw, "status", ids.status).await;
    differs(
        &url,
        &[
            format!(
                "AUDIT_BROKEN: message {}: status_code is 6, audit record {seq} (status.record) says 4",
                ids.status_message
            ),
            format!(
                "AUDIT_BROKEN: status {}: code is 6, audit record {seq} (status.record) says 4",
                ids.status
            ),
        ],
    );
}

#[tokio::test]
async fn an_edited_delivery_state_and_a_deleted_delivery_are_named() {
    let (_dir, url, raw, ids) = busy_store().await;
    // The failed delivery made to look delivered; the delivered one's row removed.
    on_raw!(&raw, raw => sqlx::query(
        "UPDATE deliveries SET state = 'delivered', last_error_code = NULL,
             last_error_message = NULL WHERE id = $1",
    )
    .bind(ids.large_delivery)
    .execute(raw)
    .await
    .map(|r| r.rows_affected())
.unwrap());
    on_raw!(&raw, raw => sqlx::query("DELETE FROM attempts WHERE delivery_id = $1")
        .bind(ids.sent_delivery)
        .execute(raw)
        .await
        .map(|r| r.rows_affected())
.unwrap());
    on_raw!(&raw, raw => sqlx::query("DELETE FROM deliveries WHERE id = $1")
        .bind(ids.sent_delivery)
        .execute(raw)
        .await
        .map(|r| r.rows_affected())
.unwrap());
    let failed: i64 = on_raw!(&raw, raw => sqlx::query_scalar(
        "SELECT seq FROM audit WHERE action = 'delivery.fail' AND entity_id = $1",
    )
    .bind(ids.large_delivery.to_string())
    .fetch_one(raw)
    .await
    .unwrap());
    let submitted = created_by(&raw, "message", ids.sent).await;
    let d = ids.large_delivery;
    differs(
        &url,
        &[
            format!(
                "AUDIT_BROKEN: delivery {d}: state is delivered, audit record {failed} (delivery.fail) says failed"
            ),
            format!(
                "AUDIT_BROKEN: delivery {d}: last_error_code is null, audit record {failed} (delivery.fail) says PEER_UNREACHABLE"
            ),
            format!(
                "AUDIT_BROKEN: delivery {d}: last_error_message is null, audit record {failed} (delivery.fail) says connection refused"
            ),
            format!(
                "AUDIT_BROKEN: delivery {}: missing (audit record {submitted}, document.submit, created it)",
                ids.sent_delivery
            ),
        ],
    );
}

#[tokio::test]
async fn a_deleted_inbox_row_is_named() {
    let (_dir, url, raw, ids) = busy_store().await;
    // A received document hidden from one of the agencies it was addressed to.
    on_raw!(&raw, raw => sqlx::query("DELETE FROM inbox WHERE message_id = $1 AND recipient = $2")
        .bind(ids.received)
        .bind(GIALAI)
        .execute(raw)
        .await
        .map(|r| r.rows_affected())
.unwrap());
    let seq = created_by(&raw, "message", ids.received).await;
    // Each row with the SHA-256 of its own receipt (migration 0010).
    let ubnd = format!("{GIALAI_UBND}={}", sha256_hex(b"receipt 01"));
    let gialai = format!("{GIALAI}={}", sha256_hex(b"receipt 01 of Gia Lai"));
    differs(
        &url,
        &[format!(
            "AUDIT_BROKEN: message {}: inbox is {ubnd}, audit record {seq} (document.receive) says {ubnd},{gialai}",
            ids.received
        )],
    );
}

#[tokio::test]
async fn an_edited_inbox_receipt_is_named() {
    let (_dir, url, raw, ids) = busy_store().await;
    // One recipient's receipt swapped for another's: the row no longer proves what the chain says.
    on_raw!(&raw, raw => sqlx::query("UPDATE inbox SET receipt = $1 WHERE message_id = $2 AND recipient = $3")
        .bind(&b"receipt 01"[..])
        .bind(ids.received)
        .bind(GIALAI)
        .execute(raw)
        .await
        .map(|r| r.rows_affected())
.unwrap());
    let seq = created_by(&raw, "message", ids.received).await;
    let ubnd = format!("{GIALAI_UBND}={}", sha256_hex(b"receipt 01"));
    let was = format!("{GIALAI}={}", sha256_hex(b"receipt 01 of Gia Lai"));
    let now = format!("{GIALAI}={}", sha256_hex(b"receipt 01"));
    differs(
        &url,
        &[format!(
            "AUDIT_BROKEN: message {}: inbox is {ubnd},{now}, audit record {seq} (document.receive) says {ubnd},{was}",
            ids.received
        )],
    );
}

#[tokio::test]
async fn registry_entries_changed_added_or_brought_back_are_named() {
    let (_dir, url, raw, _ids) = busy_store().await;
    // Another certificate bound to Gia Lai's code; an entry written by hand; Nghệ An's removed
    // entry put back.
    on_raw!(&raw, raw => sqlx::query("UPDATE agency_registry_rules SET sha256 = $1 WHERE code = $2")
        .bind("cd".repeat(32))
        .bind(GIALAI)
        .execute(raw)
        .await
        .map(|r| r.rows_affected())
.unwrap());
    for code in ["000.00.99.H99", NGHEAN] {
        on_raw!(&raw, raw => sqlx::query(
            "INSERT INTO agency_registry (code, name, added_by, added_at, updated_by, updated_at)
             VALUES ($1, 'forged', 'admin:x', 0, 'admin:x', 0)",
        )
        .bind(code)
        .execute(raw)
        .await
        .map(|r| r.rows_affected())
.unwrap());
    }
    let set: i64 = on_raw!(&raw, raw => sqlx::query_scalar(
        "SELECT max(seq) FROM audit WHERE action = 'registry.set' AND entity_id = $1",
    )
    .bind(GIALAI)
    .fetch_one(raw)
    .await
    .unwrap());
    let removed: i64 = on_raw!(&raw, raw => sqlx::query_scalar("SELECT seq FROM audit WHERE action = 'registry.remove'")
        .fetch_one(raw)
        .await
        .unwrap());
    differs(
        &url,
        &[
            format!(
                "AUDIT_BROKEN: registry entry {NGHEAN}: present, but audit record {removed} (registry.remove) removed it"
            ),
            format!(
                "AUDIT_BROKEN: registry entry {GIALAI}: rules differ from audit record {set} (registry.set)"
            ),
            "AUDIT_BROKEN: registry entry 000.00.99.H99: no audit record created it".to_owned(),
        ],
    );
}

/// [`busy_store`] with the mail bridge's rows: a quarantined mail answered automatically (its
/// reply limit), a draft with one file that a clerk discarded, the mailbox's checkpoint.
async fn busy_store_with_mail() -> (Option<tempfile::TempDir>, String, Raw, i64) {
    let (dir, url, raw, _ids) = busy_store().await;
    let store = common::store::open(&url).await;
    let mail = |uid: u32, effect: MailEffect| TakenMail {
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
    let q = store
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
    assert!(q.reply_allowed);
    let draft = store
        .take_mail(
            mail(
                2,
                MailEffect::Draft(NewDraft {
                    agency: GIALAI.into(),
                    code_number: None,
                    code_notation: None,
                    summary: "V/v dự thảo".into(),
                    body: String::new(),
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
    store.close().await;
    (dir, url, raw, draft)
}

#[tokio::test]
async fn mail_rows_match_their_chain_and_edits_are_named() {
    let (_dir, url, raw, draft) = busy_store_with_mail().await;
    let o = verify(&url);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(
            "1 registry entries, 2 mails taken in, 1 drafts (1 files), 1 mailbox checkpoints, 1 reply limits"
        ),
        "{out}"
    );

    // The draft's file swapped, the checkpoint put back (the mail would be taken in twice),
    // the reply limit lifted (a reply loop could start).
    on_raw!(&raw, raw => sqlx::query(
        "UPDATE draft_files SET bytes = $1 WHERE draft_id = $2",
    )
    .bind(b"%PDF-1.7 forged!".to_vec())
    .bind(draft)
    .execute(raw)
    .await
    .map(|r| r.rows_affected())
.unwrap());
    on_raw!(&raw, raw => sqlx::query("UPDATE mail_checkpoints SET last_uid = 1")
        .execute(raw)
        .await
        .map(|r| r.rows_affected())
.unwrap());
    on_raw!(&raw, raw => sqlx::query("DELETE FROM mail_replies")
        .execute(raw)
        .await
        .map(|r| r.rows_affected())
.unwrap());
    let takes: Vec<i64> = on_raw!(&raw, raw => sqlx::query_scalar("SELECT seq FROM audit WHERE action = 'mail.take' ORDER BY seq")
            .fetch_all(raw)
            .await
            .unwrap());
    let (first, second) = (takes[0], takes[1]);
    differs(
        &url,
        &[
            format!(
                "STORE_CORRUPT: draft file {draft}/0: file bytes hash to {}, audit record {second} (mail.take) says {}",
                sha256_hex(b"%PDF-1.7 forged!"),
                sha256_hex(b"%PDF-1.7 du thao")
            ),
            format!(
                "AUDIT_BROKEN: mail checkpoint lienthong@mail.gialai.gov.vn/INBOX: last_uid is 1, audit record {second} (mail.take) says 2"
            ),
            format!(
                "AUDIT_BROKEN: mail reply nguoi-la@example.vn: missing (audit record {first}, mail.take, created it)"
            ),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// The cost of `audit verify` on a large store (run by hand; prints the figure)
// ---------------------------------------------------------------------------------------------

/// Builds a store of `LIENTHONG_AUDIT_DOCS` (default 100,000) sent documents of about 16 KB
/// (the bench's default 10 KiB attachment, base64, in its package), each claimed and delivered
/// with a 2 KB receipt — three audit records, a message and a delivery per document — through
/// the store API, then times `lienthong audit verify` on it.
///
/// `cargo test --test audit_cli -- --ignored --nocapture verify_time`; the store is built in
/// `LIENTHONG_AUDIT_DIR` if set (and kept, so a second run only times the verify).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "builds a store of 100,000 documents (about 2 GB): run by hand"]
async fn verify_time_for_100k_documents() {
    let docs: usize = std::env::var("LIENTHONG_AUDIT_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var("LIENTHONG_AUDIT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("verify-{docs}.db"));
    if !path.exists() {
        let started = std::time::Instant::now();
        build_large_store(&path, docs).await;
        eprintln!(
            "built {docs} documents in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let url = format!("sqlite://{}", path.display());
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let children_cpu = || cpu_seconds(libc::RUSAGE_CHILDREN);
    let (started, cpu) = (std::time::Instant::now(), children_cpu());
    let o = verify(&url);
    let (took, cpu) = (started.elapsed().as_secs_f64(), children_cpu() - cpu);
    assert!(o.status.success(), "{}", stderr(&o));
    eprint!("{}", stdout(&o));
    eprintln!(
        "lienthong audit verify ({build} build): {took:.2} s wall, {cpu:.2} s CPU for {docs} documents ({:.0} µs CPU each)",
        cpu * 1e6 / docs as f64
    );

    // The same in this process, split: the chain alone (what `audit verify` did before it
    // cross-checked rows), then the chain and every row.
    let store = SqliteStore::open_with(
        &url,
        &lienthong::store::SqliteOptions {
            read_only: true,
            read_connections: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let own_cpu = || cpu_seconds(libc::RUSAGE_SELF);
    let (started, cpu) = (std::time::Instant::now(), own_cpu());
    store.verify_audit().await.unwrap().unwrap();
    let (chain_wall, chain_cpu) = (started.elapsed().as_secs_f64(), own_cpu() - cpu);
    let (started, cpu) = (std::time::Instant::now(), own_cpu());
    let report = store.verify_store().await.unwrap().unwrap();
    let (all_wall, all_cpu) = (started.elapsed().as_secs_f64(), own_cpu() - cpu);
    assert!(report.is_clean());
    eprintln!(
        "in process ({build}): chain only {chain_wall:.2} s wall / {chain_cpu:.2} s CPU; chain and rows {all_wall:.2} s wall / {all_cpu:.2} s CPU"
    );
    // What hashing every package costs by itself (aws-lc's SHA-256 is optimised C in any build).
    let chunk = vec![7u8; 16 * 1024 * 1024];
    let rounds = report.package_bytes.div_ceil(chunk.len() as u64);
    let cpu = own_cpu();
    for _ in 0..rounds {
        std::hint::black_box(lienthong::audit::hash::sha256_hex(&chunk));
    }
    eprintln!(
        "SHA-256 of {} MB alone: {:.2} s CPU",
        report.package_bytes / 1_000_000,
        own_cpu() - cpu
    );
    store.close().await;
}

/// User and system CPU seconds of this process (`RUSAGE_SELF`) or its waited-for children.
fn cpu_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage only writes the `rusage` it is given, which outlives the call.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let rc = unsafe { libc::getrusage(who, &mut u) };
    assert_eq!(rc, 0);
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}

async fn build_large_store(path: &std::path::Path, docs: usize) {
    use std::sync::Arc;
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = Arc::new(SqliteStore::open(&url).await.unwrap());
    // A package of about 16 KB: the bench's default attachment (10 KiB) as base64, in XML.
    let attachment = "QUJD".repeat(10 * 1024 / 3);
    let writers = 64;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let attachment = attachment.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..docs).step_by(writers) {
                let number = (i + 1).to_string();
                let mut p = package(&number, 0);
                p.bytes = format!(
                    "<edXMLEnvelope><edXMLHeader>{number}</edXMLHeader><edXMLBody>{attachment}</edXMLBody></edXMLEnvelope>"
                )
                .into_bytes();
                store
                    .submit_outgoing(
                        NewOutgoing {
                            document: meta(GIALAI, &number),
                            package: p,
                            deliveries: vec![NewDelivery {
                                recipient: NGHEAN.into(),
                                route: "peer:nghean".into(),
                            }],
                            idempotency_key: None,
                            request: None,
                            actor: format!("clerk:{GIALAI}:lan"),
                            numbering: lienthong::store::Numbering::Given,
                            from_draft: None,
                        },
                        DAY + i as i64,
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let receipt = "R".repeat(2048).into_bytes();
    let now = DAY + docs as i64 + 1;
    loop {
        let claimed = store
            .claim_due(now, 1000, "outbox:1", 3_600_000)
            .await
            .unwrap();
        if claimed.is_empty() {
            break;
        }
        let mut tasks = Vec::new();
        for chunk in claimed.chunks(claimed.len().div_ceil(writers)) {
            let store = store.clone();
            let leases: Vec<Lease> = chunk.iter().map(|c| c.lease).collect();
            let receipt = receipt.clone();
            tasks.push(tokio::spawn(async move {
                for lease in leases {
                    store
                        .mark_delivered(lease, receipt.clone(), now + 1)
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    store.close().await;
}
