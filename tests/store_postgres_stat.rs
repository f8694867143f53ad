//! The PostgreSQL store's registry, statuses and `audit verify` against the SQLite store's: the
//! same operations on both backends give the same answers, the same errors and the same audit
//! chain record for record (so `store copy` and either backend's `audit verify` read the other's
//! records), and rows changed, deleted or inserted behind the store's back on PostgreSQL are
//! named as on SQLite — and a chunked package's chunks changed or deleted, too.
//!
//! Needs `LIENTHONG_TEST_POSTGRES` (an admin URL, e.g. `postgres://postgres@127.0.0.1:5432/test`):
//! each test creates its own database `lt_t_stat_<pid>_<n>` and drops it at the end (one that a
//! failed test leaves is dropped by scripts/test.sh with the other `lt_t_%`). Without it, each
//! test says loudly that it was skipped.

use std::sync::atomic::{AtomicU32, Ordering};

use lienthong::Code;
use lienthong::audit::AuditRecord;
use lienthong::pki::binding::{Attribute, Rule};
use lienthong::store::postgres::PgStore;
use lienthong::store::{
    AuditQuery, Direction, NewRegistryEntry, NewStatus, SignedPackage, SqliteStore, Store,
};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};

const OTHER: &str = "000.00.00.H99";
const STTTT: &str = "000.00.05.H21";
const SONV: &str = "000.00.04.H21";
const UBND: &str = "000.00.00.H21";
/// 2026-11-25 10:00:00 UTC.
const NOW: i64 = 1_795_600_800_000;
const FP_A: &str = "ae967e485fc737bbae3da3576eb6eafd30ac0af8c41018bb0fd94f94e9eecbaf";
const FP_B: &str = "0fef55a16b4b11cf31f5802e4493f0d0a8e2f6e51c49ae2865111b978e2a1378";

static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// A PostgreSQL database of this test's own, with the store open on it and a raw pool for
/// tampering; dropped by [`Pg::finish`].
struct Pg {
    store: PgStore,
    raw: PgPool,
    admin: String,
    name: String,
}

impl Pg {
    async fn new(test: &str) -> Option<Pg> {
        let Ok(admin) = std::env::var("LIENTHONG_TEST_POSTGRES") else {
            eprintln!(
                "SKIPPED (no PostgreSQL): store_postgres_stat::{test} — set LIENTHONG_TEST_POSTGRES"
            );
            return None;
        };
        let name = format!(
            "lt_t_stat_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let url = db_url(&admin, &name);
        let store = PgStore::open(&url).await.unwrap();
        let raw = PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .unwrap();
        Some(Pg {
            store,
            raw,
            admin,
            name,
        })
    }

    async fn finish(self) {
        self.store.close().await;
        self.raw.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.admin)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&pool)
        .await
        .unwrap();
    }
}

/// `admin` with its database replaced by `name`.
fn db_url(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A SQLite store in a temporary folder, with a raw pool on the same file.
async fn sqlite() -> (tempfile::TempDir, SqliteStore, SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("node.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    let raw = SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    (dir, store, raw)
}

fn fp(sha256: &str) -> Rule {
    Rule::Fingerprint {
        sha256: sha256.to_owned(),
        note: None,
    }
}

fn entry(code: &str, rules: Vec<Rule>) -> NewRegistryEntry {
    NewRegistryEntry {
        code: code.to_owned(),
        name: format!("agency {code}"),
        rules,
    }
}

async fn records<S: Store>(store: &S) -> Vec<AuditRecord> {
    store
        .audit_records(&AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

/// The registry's life on one store; what each step answered, as text (errors with their code).
async fn registry_story<S: Store>(store: &S) -> Vec<String> {
    let mut said = Vec::new();
    let subject = Rule::Subject {
        issuer_sha256: Some(FP_B.to_owned()),
        issuer: None,
        attribute: Attribute::parse("O").unwrap(),
        value: "Sở Thông tin và Truyền thông".into(),
        note: Some("thẻ ký số".into()),
    };
    let (e, created) = store
        .registry_set(
            entry(STTTT, vec![fp(FP_A), subject.clone()]),
            "admin:hoa",
            NOW,
        )
        .await
        .unwrap();
    said.push(format!("set {created} {e:?}"));
    let (e, created) = store
        .registry_set(entry(STTTT, vec![fp(FP_B)]), "admin:lan", NOW + 1)
        .await
        .unwrap();
    said.push(format!("replace {created} {e:?}"));
    said.push(format!(
        "binding {:?}",
        store.registry_binding(SONV, FP_B).await.unwrap()
    ));
    let e = store
        .registry_remove(OTHER, "admin:hoa", NOW + 2)
        .await
        .unwrap_err();
    said.push(format!("remove absent {:?} {}", e.code(), e));
    let e = store
        .registry_import(
            vec![entry(SONV, vec![fp(FP_A)]), entry(SONV, vec![fp(FP_B)])],
            false,
            "admin:hoa",
            NOW + 3,
        )
        .await
        .unwrap_err();
    said.push(format!("import twice {:?} {}", e.code(), e));
    let outcome = store
        .registry_import(
            vec![
                entry(SONV, vec![fp(FP_A), subject]),
                entry(UBND, vec![fp(FP_A)]),
            ],
            false,
            "admin:hoa",
            NOW + 4,
        )
        .await
        .unwrap();
    said.push(format!("import {outcome:?}"));
    said.push(format!(
        "binding {:?}",
        store.registry_binding(STTTT, FP_A).await.unwrap()
    ));
    let outcome = store
        .registry_import(
            vec![entry(UBND, vec![fp(FP_B)])],
            true,
            "admin:hoa",
            NOW + 5,
        )
        .await
        .unwrap();
    said.push(format!("import replace_all {outcome:?}"));
    store
        .registry_set(entry(SONV, vec![fp(FP_B)]), "admin:hoa", NOW + 6)
        .await
        .unwrap();
    store
        .registry_remove(SONV, "admin:hoa", NOW + 7)
        .await
        .unwrap();
    said.push(format!("list {:?}", store.registry_list().await.unwrap()));
    said.push(format!(
        "entry {:?} {:?}",
        store.registry_entry(UBND).await.unwrap(),
        store.registry_entry(SONV).await.unwrap()
    ));
    said
}

#[tokio::test]
async fn the_registry_answers_and_records_as_on_sqlite() {
    let Some(pg) = Pg::new("the_registry_answers_and_records_as_on_sqlite").await else {
        return;
    };
    let (_dir, lite, _raw) = sqlite().await;
    let on_sqlite = registry_story(&lite).await;
    let on_pg = registry_story(&pg.store).await;
    assert_eq!(on_pg, on_sqlite);
    // The same chain, hash for hash: the audit details are byte-identical.
    let (pg_records, lite_records) = (records(&pg.store).await, records(&lite).await);
    assert_eq!(pg_records.len(), 11, "{pg_records:#?}");
    assert_eq!(pg_records, lite_records);
    assert!(pg.store.verify_audit().await.unwrap().is_ok());
    let report = pg.store.verify_store().await.unwrap().unwrap();
    assert!(report.is_clean(), "{:#?}", report.differences);
    assert_eq!(report.checked.registry, 1, "{report:?}");
    pg.finish().await;
}

/// What `audit verify` says on `store`: its differences as `CODE: message`.
async fn differences<S: Store>(store: &S) -> Vec<String> {
    let report = store.verify_store().await.unwrap().unwrap();
    let mut out: Vec<String> = report
        .differences
        .iter()
        .map(|d| format!("{:?} {:?} {}: {}", d.code, d.entity, d.id, d.message))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn registry_rows_changed_behind_the_store_are_named_as_on_sqlite() {
    let Some(pg) = Pg::new("registry_rows_changed_behind_the_store_are_named_as_on_sqlite").await
    else {
        return;
    };
    let (_dir, lite, raw) = sqlite().await;
    registry_story(&lite).await;
    registry_story(&pg.store).await;
    // Another certificate bound to UBND's code; an entry written by hand; SONV's removed entry
    // put back; STTTT's renamed.
    let forged = "cd".repeat(32);
    sqlx::query("UPDATE agency_registry_rules SET sha256 = ? WHERE code = ?")
        .bind(&forged)
        .bind(UBND)
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("UPDATE agency_registry_rules SET sha256 = $1 WHERE code = $2")
        .bind(&forged)
        .bind(UBND)
        .execute(&pg.raw)
        .await
        .unwrap();
    for code in [OTHER, SONV] {
        sqlx::query(
            "INSERT INTO agency_registry (code, name, added_by, added_at, updated_by, updated_at)
             VALUES (?, 'forged', 'admin:x', 0, 'admin:x', 0)",
        )
        .bind(code)
        .execute(&raw)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO agency_registry (code, name, added_by, added_at, updated_by, updated_at)
             VALUES ($1, 'forged', 'admin:x', 0, 'admin:x', 0)",
        )
        .bind(code)
        .execute(&pg.raw)
        .await
        .unwrap();
    }
    let on_sqlite = differences(&lite).await;
    assert_eq!(on_sqlite.len(), 3, "{on_sqlite:#?}");
    assert_eq!(differences(&pg.store).await, on_sqlite);

    // An entry deleted behind the store's back.
    sqlx::query("DELETE FROM agency_registry WHERE code = ?")
        .bind(UBND)
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("DELETE FROM agency_registry WHERE code = $1")
        .bind(UBND)
        .execute(&pg.raw)
        .await
        .unwrap();
    let on_sqlite = differences(&lite).await;
    assert!(
        on_sqlite
            .iter()
            .any(|d| d.contains(UBND) && d.contains("missing")),
        "{on_sqlite:#?}"
    );
    assert_eq!(differences(&pg.store).await, on_sqlite);
    pg.finish().await;
}

#[tokio::test]
async fn the_chain_on_postgres_names_edits_deletions_and_a_cut_end() {
    let Some(pg) = Pg::new("the_chain_on_postgres_names_edits_deletions_and_a_cut_end").await
    else {
        return;
    };
    registry_story(&pg.store).await;
    // The triggers refuse changes to the chain.
    let e = sqlx::query("UPDATE audit SET detail = '{}' WHERE seq = 5")
        .execute(&pg.raw)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    let e = sqlx::query("DELETE FROM audit WHERE seq = 5")
        .execute(&pg.raw)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    // With the triggers off (a superuser), each change is named, by `audit verify` as well.
    sqlx::query("ALTER TABLE audit DISABLE TRIGGER USER")
        .execute(&pg.raw)
        .await
        .unwrap();
    let broken = |v: lienthong::store::StoreVerdict| match v {
        Err(b) => b,
        Ok(r) => panic!("verified: {r:?}"),
    };
    sqlx::query("DELETE FROM audit WHERE seq >= 10")
        .execute(&pg.raw)
        .await
        .unwrap();
    let b = broken(pg.store.verify_store().await.unwrap());
    assert_eq!(b.seq, 10, "{b:?}");
    assert!(b.message.contains("records 10..11 were deleted"), "{b:?}");
    sqlx::query("DELETE FROM audit WHERE seq = 4")
        .execute(&pg.raw)
        .await
        .unwrap();
    let b = broken(pg.store.verify_store().await.unwrap());
    assert_eq!(b.seq, 4, "{b:?}");
    sqlx::query(r#"UPDATE audit SET detail = '{"code":"x"}' WHERE seq = 2"#)
        .execute(&pg.raw)
        .await
        .unwrap();
    let b = broken(pg.store.verify_store().await.unwrap());
    assert_eq!(b.seq, 2, "{b:?}");
    pg.finish().await;
}

fn status_on_unknown(direction: Direction) -> NewStatus {
    NewStatus {
        direction,
        document_sender: UBND.into(),
        document_id: format!("{UBND},2026/11/25,12/UBND-VP"),
        reporter: SONV.into(),
        code: 3,
        description: "Đã tiếp nhận".into(),
        reported_at: NOW,
        package: SignedPackage {
            bytes: b"<edXML>status 03</edXML>".to_vec(),
            signer_subject: None,
            signer_fingerprint: None,
            header_json: "{}".into(),
            signed_content: None,
            channel: None,
        },
        deliveries: Vec::new(),
        peer: Some("nghean".into()),
        actor: "peer:nghean".into(),
        revocation: Vec::new(),
        on_business_type: None,
    }
}

#[tokio::test]
async fn statuses_refused_before_any_write_are_refused_as_on_sqlite() {
    let Some(pg) = Pg::new("statuses_refused_before_any_write_are_refused_as_on_sqlite").await
    else {
        return;
    };
    let (_dir, lite, _raw) = sqlite().await;
    let mut cases = vec![status_on_unknown(Direction::In)];
    let mut bad = status_on_unknown(Direction::In);
    bad.code = 17;
    cases.push(bad);
    let mut bad = status_on_unknown(Direction::Out);
    bad.deliveries = Vec::new();
    cases.push(bad);
    let mut bad = status_on_unknown(Direction::In);
    bad.on_business_type = Some(1);
    cases.push(bad);
    for new in cases {
        let on_sqlite = lite.record_status(new.clone(), NOW + 1).await.unwrap_err();
        let on_pg = pg.store.record_status(new, NOW + 1).await.unwrap_err();
        assert_eq!(
            (on_pg.code(), on_pg.to_string()),
            (on_sqlite.code(), on_sqlite.to_string())
        );
    }
    let e = pg.store.status_history(UBND, 1).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e}");
    assert_eq!(
        e.to_string(),
        lite.status_history(UBND, 1).await.unwrap_err().to_string()
    );
    // Nothing was written.
    assert!(records(&pg.store).await.is_empty());
    pg.finish().await;
}

// ---------------------------------------------------------------------------------------------
// `audit verify` over every kind of row: the same node history on both backends, the same
// tampering, the same report; and a chunked package's chunks changed or deleted (PostgreSQL's
// own way of keeping a large package).
// ---------------------------------------------------------------------------------------------

const GIALAI: &str = "000.00.05.H21";
const NGHEAN: &str = "000.00.00.H41";
const DAY: i64 = 1_795_539_600_000;
/// Two and a half chunks: three `package_chunks` rows on PostgreSQL, a file on SQLite.
const LARGE: usize = 5 * 512 * 1024;

fn package(text: &str, pad: usize) -> SignedPackage {
    SignedPackage {
        bytes: format!("<edXML>{text}{}</edXML>", "x".repeat(pad)).into_bytes(),
        signer_subject: Some("CN=Sở Thông tin và Truyền thông tỉnh Gia Lai".into()),
        signer_fingerprint: Some("ab".repeat(32)),
        header_json: serde_json::json!({ "subject": text }).to_string(),
        signed_content: None,
        channel: None,
    }
}

fn meta(sender: &str, number: &str) -> lienthong::store::DocumentMeta {
    lienthong::store::DocumentMeta {
        sender: sender.into(),
        document_id: format!("{sender},2026/11/25,{number}/CĐS"),
        business_type: 0,
        code_number: number.into(),
        code_notation: "CĐS".into(),
        code_year: 2026,
        subject: format!("V/v văn bản số {number}"),
    }
}

/// The rows [`busy`] wrote, by what they are.
#[derive(Debug, PartialEq, Eq)]
struct Busy {
    sent: i64,
    large: i64,
    received: i64,
    large_delivery: i64,
    status: i64,
}

/// Two documents sent (one large), one delivered and one failed, one received, a status in and
/// one out (the recipient's 02 rejecting nothing more), a registry entry.
async fn busy<S: Store>(store: &S) -> Busy {
    use lienthong::store::{DeliveryError, NewDelivery, NewIncoming, NewOutgoing};
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
    let large = store.submit_outgoing(out("12", LARGE), DAY).await.unwrap();
    let received = match store
        .ingest_incoming(
            NewIncoming {
                document: meta(NGHEAN, "7"),
                package: package("from Nghệ An", 0),
                local_recipients: vec![UBND.into(), GIALAI.into()],
                peer: Some("nghean".into()),
                receipts: vec![b"receipt 01".to_vec(), b"receipt 01 of Gia Lai".to_vec()],
                actor: "peer:nghean".into(),
                revocation: Vec::new(),
                received_sha256: None,
            },
            DAY + 1,
        )
        .await
        .unwrap()
    {
        lienthong::store::IngestOutcome::Inserted { message_id } => message_id,
        other => panic!("{other:?}"),
    };
    let claimed = store
        .claim_due(DAY + 2, 10, "outbox:1", 60_000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let lease = |d: i64| {
        claimed
            .iter()
            .find(|c| c.lease.delivery_id == d)
            .unwrap()
            .lease
    };
    let large_delivery = large.deliveries[0].delivery_id;
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
                direction: Direction::In,
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
    assert!(!status.duplicate);
    // The same status again: answered as the first, nothing written.
    let again = store
        .record_status(
            NewStatus {
                direction: Direction::In,
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
            DAY + 6,
        )
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.status_id, status.status_id);
    // Our own 03 on the received document, sent back to Nghệ An.
    let received_doc = meta(NGHEAN, "7");
    let ours = store
        .record_status(
            NewStatus {
                direction: Direction::Out,
                document_sender: received_doc.sender.clone(),
                document_id: received_doc.document_id.clone(),
                reporter: GIALAI.into(),
                code: 3,
                description: "Đã tiếp nhận".into(),
                reported_at: DAY + 7,
                package: package("status 03", 0),
                deliveries: vec![NewDelivery {
                    recipient: NGHEAN.into(),
                    route: "peer:nghean".into(),
                }],
                peer: None,
                actor: format!("clerk:{GIALAI}:lan"),
                revocation: Vec::new(),
                on_business_type: Some(0),
            },
            DAY + 7,
        )
        .await
        .unwrap();
    assert_eq!(ours.deliveries.len(), 1);
    store
        .registry_set(entry(GIALAI, vec![fp(FP_A)]), "admin:hoa", DAY + 8)
        .await
        .unwrap();
    Busy {
        sent: sent.message_id,
        large: large.message_id,
        received,
        large_delivery,
        status: status.status_id,
    }
}

#[tokio::test]
async fn every_row_is_checked_and_tampering_named_as_on_sqlite() {
    let Some(pg) = Pg::new("every_row_is_checked_and_tampering_named_as_on_sqlite").await else {
        return;
    };
    let (_dir, lite, raw) = sqlite().await;
    let on_sqlite = busy(&lite).await;
    let on_pg = busy(&pg.store).await;
    assert_eq!(on_pg, on_sqlite);
    let ids = on_pg;
    // The same chain, record for record: the statuses', messages' and deliveries' audit
    // details are byte-identical across backends.
    assert_eq!(records(&pg.store).await, records(&lite).await);
    // The large package is chunks on PostgreSQL.
    let chunks: i64 =
        sqlx::query_scalar("SELECT count(*) FROM package_chunks WHERE message_id = $1")
            .bind(ids.large)
            .fetch_one(&pg.raw)
            .await
            .unwrap();
    assert_eq!(chunks, 3);
    let (pg_report, lite_report) = (
        pg.store.verify_store().await.unwrap().unwrap(),
        lite.verify_store().await.unwrap().unwrap(),
    );
    assert!(pg_report.is_clean(), "{:#?}", pg_report.differences);
    assert_eq!(pg_report.checked, lite_report.checked);
    assert_eq!(pg_report.package_bytes, lite_report.package_bytes);
    assert_eq!(pg_report.checked.messages, 5, "{pg_report:?}");
    assert_eq!(pg_report.checked.statuses, 2, "{pg_report:?}");
    assert_eq!(pg_report.checked.deliveries, 3, "{pg_report:?}");

    // Rows edited, deleted and inserted behind the store's back, the same on both.
    sqlx::query("DROP TRIGGER messages_immutable")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE messages DISABLE TRIGGER messages_immutable")
        .execute(&pg.raw)
        .await
        .unwrap();
    for (lite_sql, pg_sql, id) in [
        (
            "UPDATE messages SET subject = 'sửa' WHERE id = ?",
            "UPDATE messages SET subject = 'sửa' WHERE id = $1",
            ids.sent,
        ),
        (
            "UPDATE messages SET sender = '000.00.99.H99' WHERE id = ?",
            "UPDATE messages SET sender = '000.00.99.H99' WHERE id = $1",
            ids.received,
        ),
        (
            "DELETE FROM statuses WHERE id = ?",
            "DELETE FROM statuses WHERE id = $1",
            ids.status,
        ),
        (
            "UPDATE deliveries SET state = 'delivered', delivered_at = 1 WHERE id = ?",
            "UPDATE deliveries SET state = 'delivered', delivered_at = 1 WHERE id = $1",
            ids.large_delivery,
        ),
        (
            "INSERT INTO statuses (document_sender, document_id, reporter, code, description,
                 reported_at, recorded_at, direction, message_id)
             SELECT sender, document_id, '000.00.00.H41', 6, 'giả', 1, 1, 'in', id
             FROM messages WHERE id = ?",
            "INSERT INTO statuses (document_sender, document_id, reporter, code, description,
                 reported_at, recorded_at, direction, message_id)
             SELECT sender, document_id, '000.00.00.H41', 6, 'giả', 1, 1, 'in', id
             FROM messages WHERE id = $1",
            ids.sent,
        ),
    ] {
        sqlx::query(lite_sql).bind(id).execute(&raw).await.unwrap();
        sqlx::query(pg_sql).bind(id).execute(&pg.raw).await.unwrap();
    }
    let on_sqlite = differences(&lite).await;
    assert!(on_sqlite.len() >= 5, "{on_sqlite:#?}");
    assert_eq!(differences(&pg.store).await, on_sqlite);

    // A chunk of the large package changed, then deleted: its bytes no longer hash to its row.
    sqlx::query("ALTER TABLE package_chunks DISABLE TRIGGER package_chunks_immutable")
        .execute(&pg.raw)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE package_chunks SET bytes = overlay(bytes placing '\\x79'::bytea from 10)
         WHERE message_id = $1 AND n = 1",
    )
    .bind(ids.large)
    .execute(&pg.raw)
    .await
    .unwrap();
    let changed = differences(&pg.store).await;
    let large = format!("Message {}", ids.large);
    assert!(
        changed
            .iter()
            .any(|d| d.starts_with(&format!("StoreCorrupt {large}:"))),
        "{changed:#?}"
    );
    sqlx::query("DELETE FROM package_chunks WHERE message_id = $1 AND n = 1")
        .bind(ids.large)
        .execute(&pg.raw)
        .await
        .unwrap();
    let deleted = differences(&pg.store).await;
    assert!(
        deleted
            .iter()
            .any(|d| d.starts_with(&format!("StoreCorrupt {large}:"))
                && d.contains("chunk 1 of the package is missing")),
        "{deleted:#?}"
    );
    pg.finish().await;
}
