//! The store: every operation and transition, deduplication, numbering, leases, clerk
//! scoping, and the rule that each write leaves exactly one audit record — and a refused one none.
//!
//! On the run's backend (`common::store`: SQLite unless `LIENTHONG_TEST_BACKEND=postgres`);
//! the tests named `sqlite_…` test SQLite's own things (WAL, read-only opening, in-memory
//! databases, package files) and always run on SQLite.

mod common;

use std::sync::Arc;

use lienthong::Code;
use lienthong::audit::{AuditEntry, AuditRecord};
use lienthong::store::AnyStore;
use lienthong::store::{
    AttemptOutcome, AuditQuery, CLAIM_WITH_BYTES, DeliveryError, DeliveryFilter, DeliveryState,
    Direction, DocumentMeta, InboxFilter, IngestOutcome, Kind, NewDelivery, NewIncoming,
    NewOutgoing, NewStatus, Numbering, OutgoingFilter, Page, Receipt, SignedPackage, SqliteOptions,
    SqliteStore, Store,
};
use serde_json::json;

use common::store::Raw;

const GIALAI_STTTT: &str = "000.00.05.H21";
const GIALAI_UBND: &str = "000.00.00.H21";
const GIALAI_SOYT: &str = "000.00.11.H21";
const NGHEAN_UBND: &str = "000.00.00.H41";

/// 2026-11-25 10:00:00 UTC.
const NOW: i64 = 1_795_600_800_000;
const MINUTE: i64 = 60_000;

struct Db {
    /// The SQLite database's folder; `None` on PostgreSQL.
    dir: Option<tempfile::TempDir>,
    url: String,
    store: AnyStore,
    raw: Raw,
}

/// A store of the run's backend.
async fn db() -> Db {
    let fresh = common::store::fresh_db().await;
    let raw = Raw::connect(&fresh.url).await;
    Db {
        dir: fresh.dir,
        url: fresh.url,
        store: fresh.store,
        raw,
    }
}

/// A SQLite store whatever the run's backend, for the tests of SQLite's own things.
async fn sqlite_db() -> (Db, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = common::store::sqlite_url_in(dir.path());
    let store = SqliteStore::open(&url).await.unwrap();
    let raw = Raw::connect(&url).await;
    let db = Db {
        dir: Some(dir),
        url,
        store: AnyStore::Sqlite(store.clone()),
        raw,
    };
    (db, store)
}

impl Db {
    async fn count(&self, table: &str) -> i64 {
        self.raw.count(table).await
    }

    async fn audit(&self) -> Vec<AuditRecord> {
        self.store
            .audit_records(&AuditQuery::default())
            .await
            .unwrap()
    }

    async fn last_audit(&self) -> AuditRecord {
        self.audit().await.pop().expect("an audit record")
    }

    /// Runs `f`, then checks it appended exactly one audit record with `action` about
    /// `entity_kind`/`entity_id`, and that the chain still verifies.
    async fn one_audit<T>(
        &self,
        action: &str,
        entity_kind: &str,
        f: impl AsyncFnOnce() -> T,
    ) -> (T, AuditRecord) {
        let before = self.count("audit").await;
        let out = f().await;
        assert_eq!(
            self.count("audit").await,
            before + 1,
            "one audit record for {action}"
        );
        let r = self.last_audit().await;
        assert_eq!(r.action, action);
        assert_eq!(r.entity_kind, entity_kind);
        self.store.verify_audit().await.unwrap().unwrap();
        self.clean().await;
        (out, r)
    }

    /// The rows are what the chain says (`audit verify`'s cross-check finds nothing).
    async fn clean(&self) {
        let report = self.store.verify_store().await.unwrap().unwrap();
        assert!(report.is_clean(), "{:#?}", report.differences);
    }

    /// Runs `f` (which must fail) and checks nothing at all was written.
    async fn nothing_written<T: std::fmt::Debug>(
        &self,
        f: impl AsyncFnOnce() -> lienthong::Result<T>,
    ) -> lienthong::Error {
        let tables = [
            "messages",
            "inbox",
            "deliveries",
            "attempts",
            "statuses",
            "number_sequences",
            "idempotency_keys",
            "audit",
        ];
        let mut before = Vec::new();
        for t in tables {
            before.push(self.count(t).await);
        }
        let e = f().await.expect_err("the operation should be refused");
        let mut after = Vec::new();
        for t in tables {
            after.push(self.count(t).await);
        }
        assert_eq!(before, after, "refused ({e}) but rows changed");
        // The state of every delivery is unchanged too: compared through the audit count above
        // (each change writes one) and by the callers.
        e
    }
}

fn package(text: &str) -> SignedPackage {
    SignedPackage {
        bytes: format!("<edXML>{text}</edXML>").into_bytes(),
        signer_subject: Some("CN=Sở Thông tin và Truyền thông tỉnh Gia Lai".into()),
        signer_fingerprint: Some("ab".repeat(32)),
        header_json: json!({ "subject": text }).to_string(),
        signed_content: None,
        channel: None,
    }
}

fn meta(sender: &str, number: &str, notation: &str, year: i32) -> DocumentMeta {
    DocumentMeta {
        sender: sender.into(),
        document_id: format!("{sender},{year}/11/25,{number}/{notation}"),
        business_type: 0,
        code_number: number.into(),
        code_notation: notation.into(),
        code_year: year,
        subject: "V/v thử nghiệm liên thông".into(),
    }
}

fn to(recipient: &str, route: &str) -> NewDelivery {
    NewDelivery {
        recipient: recipient.into(),
        route: route.into(),
    }
}

fn outgoing(number: &str, recipients: &[(&str, &str)]) -> NewOutgoing {
    NewOutgoing {
        document: meta(GIALAI_STTTT, number, "STTTT-CĐS", 2026),
        package: package(&format!("số {number}")),
        deliveries: recipients.iter().map(|(r, route)| to(r, route)).collect(),
        idempotency_key: None,
        request: None,
        actor: format!("clerk:{GIALAI_STTTT}:lan"),
        numbering: Numbering::Given,
        from_draft: None,
    }
}

/// `outgoing` as the next of the sequence.
fn next(number: u32) -> NewOutgoing {
    NewOutgoing {
        numbering: Numbering::Next,
        ..outgoing(&number.to_string(), &[(NGHEAN_UBND, "peer:nghean")])
    }
}

fn incoming(number: &str, text: &str) -> NewIncoming {
    NewIncoming {
        revocation: Vec::new(),
        document: meta(NGHEAN_UBND, number, "UBND-VX", 2026),
        package: package(text),
        local_recipients: vec![GIALAI_UBND.into(), GIALAI_SOYT.into()],
        peer: Some("nghean".into()),
        receipts: receipts_for(text),
        actor: "peer:nghean".into(),
        received_sha256: None,
    }
}

/// The receipts of [`incoming`]: one per local recipient.
fn receipts_for(text: &str) -> Vec<Vec<u8>> {
    [GIALAI_UBND, GIALAI_SOYT]
        .iter()
        .map(|r| format!("receipt for {text} from {r}").into_bytes())
        .collect()
}

/// The receipts of [`incoming`] as a repeat gets them back.
fn stored_receipts(text: &str) -> Vec<Receipt> {
    [GIALAI_UBND, GIALAI_SOYT]
        .iter()
        .zip(receipts_for(text))
        .map(|(r, bytes)| Receipt {
            recipient: (*r).into(),
            bytes,
        })
        .collect()
}

fn status(
    direction: Direction,
    doc: &DocumentMeta,
    reporter: &str,
    code: u8,
    at: i64,
) -> NewStatus {
    NewStatus {
        direction,
        document_sender: doc.sender.clone(),
        document_id: doc.document_id.clone(),
        reporter: reporter.into(),
        code,
        description: format!("status {code:02}"),
        reported_at: at,
        package: package(&format!("status {code:02} from {reporter} at {at}")),
        deliveries: match direction {
            Direction::Out => vec![to(&doc.sender, "peer:nghean")],
            Direction::In => Vec::new(),
        },
        peer: match direction {
            Direction::Out => None,
            Direction::In => Some("nghean".into()),
        },
        actor: match direction {
            Direction::Out => format!("clerk:{reporter}:minh"),
            Direction::In => "peer:nghean".into(),
        },
        revocation: Vec::new(),
        on_business_type: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sqlite_the_database_is_in_wal_with_synchronous_full() {
    let (db, store) = sqlite_db().await;
    let d = store.durability().await.unwrap();
    assert_eq!(d.journal_mode, "wal");
    assert_eq!(d.synchronous, 2, "FULL");
    assert!(d.foreign_keys);
    // WAL is a property of the file: an unrelated connection sees it.
    let Raw::Sqlite(raw) = &db.raw else {
        unreachable!("sqlite_db")
    };
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(raw)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn a_store_reopens_with_its_data() {
    let db = db().await;
    let s = db
        .store
        .submit_outgoing(outgoing("05", &[(NGHEAN_UBND, "peer:nghean")]), NOW)
        .await
        .unwrap();
    db.store.close().await;

    let again = common::store::open(&db.url).await;
    assert_eq!(
        again
            .message(s.message_id)
            .await
            .unwrap()
            .code_number
            .as_deref(),
        Some("05")
    );
    assert_eq!(again.verify_audit().await.unwrap().unwrap().records, 1);
    again.close().await;
}

#[tokio::test]
async fn sqlite_a_store_opened_read_only_refuses_writes() {
    let (db, store) = sqlite_db().await;
    store
        .submit_outgoing(outgoing("05", &[(NGHEAN_UBND, "peer:nghean")]), NOW)
        .await
        .unwrap();
    store.close().await;

    let ro = SqliteStore::open_with(
        &db.url,
        &SqliteOptions {
            read_only: true,
            ..SqliteOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(ro.verify_audit().await.unwrap().unwrap().records, 1);
    let e = ro
        .submit_outgoing(outgoing("1", &[(NGHEAN_UBND, "peer:nghean")]), NOW)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::StoreUnavailable);

    let dir = db.dir.as_ref().expect("a SQLite store's folder");
    let missing = format!("sqlite://{}/absent.db", dir.path().display());
    let e = SqliteStore::open_with(
        &missing,
        &SqliteOptions {
            read_only: true,
            ..SqliteOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::StoreUnavailable);
}

#[tokio::test]
async fn sqlite_an_in_memory_store_works_for_tests() {
    let store = SqliteStore::open("sqlite::memory:").await.unwrap();
    assert_eq!(store.last_number(GIALAI_STTTT, 2026).await.unwrap(), 0);
    store.submit_outgoing(next(1), NOW).await.unwrap();
    assert_eq!(store.last_number(GIALAI_STTTT, 2026).await.unwrap(), 1);
    assert_eq!(store.verify_audit().await.unwrap().unwrap().records, 1);
}

// ---------------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_submission_is_the_document_its_deliveries_and_one_audit_record() {
    let db = db().await;
    let new = outgoing("5", &[(NGHEAN_UBND, "peer:nghean"), (GIALAI_UBND, "local")]);
    let bytes = new.package.bytes.clone();
    let (s, rec) = db
        .one_audit("document.submit", "message", async || {
            db.store.submit_outgoing(new, NOW).await.unwrap()
        })
        .await;
    assert!(!s.existing);
    assert_eq!(rec.entity_id, s.message_id.to_string());
    assert_eq!(rec.actor, format!("clerk:{GIALAI_STTTT}:lan"));
    assert_eq!(rec.at, NOW);
    let detail: serde_json::Value = serde_json::from_str(&rec.detail).unwrap();
    assert_eq!(detail["code"], "05/STTTT-CĐS");
    assert_eq!(detail["deliveries"].as_array().unwrap().len(), 2);

    let m = db.store.message(s.message_id).await.unwrap();
    assert_eq!((m.direction, m.kind), (Direction::Out, Kind::Document));
    assert_eq!(m.code_number.as_deref(), Some("05"), "số normalised");
    assert_eq!(
        m.sha256,
        hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &bytes
        ))
    );
    assert_eq!(m.size, bytes.len() as u64);
    assert_eq!(db.store.message_bytes(s.message_id).await.unwrap(), bytes);

    assert_eq!(s.deliveries.len(), 2);
    assert_eq!(s.deliveries[0].recipient, NGHEAN_UBND);
    for d in &s.deliveries {
        let info = db.store.delivery(d.delivery_id).await.unwrap();
        assert_eq!(info.state, DeliveryState::Queued);
        assert_eq!(info.next_attempt_at, Some(NOW));
        assert_eq!(info.attempts, 0);
        assert_eq!(info.message_id, s.message_id);
    }
    assert_eq!(
        db.store
            .delivery(s.deliveries[1].delivery_id)
            .await
            .unwrap()
            .route,
        "local"
    );
}

#[tokio::test]
async fn an_idempotency_key_gives_the_same_submission_back() {
    let db = db().await;
    let mut new = outgoing("07", &[(NGHEAN_UBND, "peer:nghean")]);
    new.idempotency_key = Some("req-123".into());
    let first = db.store.submit_outgoing(new.clone(), NOW).await.unwrap();
    assert_eq!(
        db.store
            .find_submission(GIALAI_STTTT, "req-123", None)
            .await
            .unwrap()
            .map(|s| s.message_id),
        Some(first.message_id)
    );
    let audits = db.count("audit").await;
    // The retry may even carry freshly signed bytes; the key decides.
    new.package = package("signed again");
    let again = db
        .store
        .submit_outgoing(new.clone(), NOW + MINUTE)
        .await
        .unwrap();
    assert!(again.existing);
    assert_eq!(again.message_id, first.message_id);
    assert_eq!(again.deliveries, first.deliveries);
    assert_eq!(db.count("messages").await, 1);
    assert_eq!(db.count("audit").await, audits, "a repeat writes nothing");
    assert_eq!(
        db.store
            .find_submission(GIALAI_UBND, "req-123", None)
            .await
            .unwrap(),
        None,
        "keys are per agency"
    );
}

/// A key stored with its request's fingerprint refuses another request — at the read and again
/// in the transaction that would store it, which then writes nothing — while a key stored
/// without one (as before migration 0011) answers any repeat with the original.
#[tokio::test]
async fn a_key_names_its_request_unless_stored_without_one() {
    use lienthong::store::RequestFingerprint;
    let db = db().await;
    let fp = |s: &str| RequestFingerprint {
        sha256: s.repeat(64),
        parts: format!(
            r#"{{"operation":"submit","fields":{{"metadata.subject":"{s}"}},"files":[]}}"#
        ),
    };
    let mut new = outgoing("07", &[(NGHEAN_UBND, "peer:nghean")]);
    new.idempotency_key = Some("with".into());
    new.request = Some(fp("a"));
    let first = db.store.submit_outgoing(new.clone(), NOW).await.unwrap();
    let found = db
        .store
        .find_submission(GIALAI_STTTT, "with", Some(&fp("a")))
        .await
        .unwrap();
    assert_eq!(found.map(|s| s.message_id), Some(first.message_id));
    let e = db
        .store
        .find_submission(GIALAI_STTTT, "with", Some(&fp("b")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::IdempotencyKeyReused, "{e}");
    assert!(e.to_string().contains("metadata.subject"), "{e}");
    let audits = db.count("audit").await;
    let mut other = outgoing("08", &[(NGHEAN_UBND, "peer:nghean")]);
    other.idempotency_key = Some("with".into());
    other.request = Some(fp("b"));
    let e = db.store.submit_outgoing(other, NOW).await.unwrap_err();
    assert_eq!(e.code(), Code::IdempotencyKeyReused, "{e}");
    assert_eq!(db.count("messages").await, 1);
    assert_eq!(db.count("audit").await, audits, "a refusal writes nothing");

    let mut old = outgoing("09", &[(NGHEAN_UBND, "peer:nghean")]);
    old.idempotency_key = Some("without".into());
    let before = db.store.submit_outgoing(old, NOW).await.unwrap();
    let found = db
        .store
        .find_submission(GIALAI_STTTT, "without", Some(&fp("b")))
        .await
        .unwrap();
    assert_eq!(found.map(|s| s.message_id), Some(before.message_id));
}

#[tokio::test]
async fn numbers_run_per_agency_per_year_and_restart_at_one() {
    let db = db().await;
    for expected in 1..=3 {
        let (_, rec) = db
            .one_audit("document.submit", "message", async || {
                db.store.submit_outgoing(next(expected), NOW).await.unwrap()
            })
            .await;
        assert!(
            rec.detail.contains(r#""numbering":"next""#),
            "{}",
            rec.detail
        );
        assert_eq!(
            db.store.last_number(GIALAI_STTTT, 2026).await.unwrap(),
            expected
        );
    }
    assert_eq!(
        db.store.last_number(GIALAI_UBND, 2026).await.unwrap(),
        0,
        "another agency has its own sequence"
    );
    let mut other = next(1);
    other.document.sender = GIALAI_UBND.into();
    db.store.submit_outgoing(other, NOW).await.unwrap();
    let mut new_year = next(1);
    new_year.document.code_year = 2027;
    db.store.submit_outgoing(new_year, NOW).await.unwrap();
    assert_eq!(
        db.store.last_number(GIALAI_STTTT, 2027).await.unwrap(),
        1,
        "1 January starts again"
    );
    assert_eq!(db.store.last_number(GIALAI_STTTT, 2026).await.unwrap(), 3);
    let e = db.store.last_number(GIALAI_STTTT, 26).await.unwrap_err();
    assert_eq!(e.code(), Code::ValueInvalid);
}

/// A number is taken only by the transaction that stores its document, and only as the very
/// next of the sequence: one that is not (skipping one, or taken meanwhile) is refused with
/// nothing written and the sequence where it was; so is a document refused for any other
/// reason. No audit record speaks of a number apart from its document.
#[tokio::test]
async fn a_number_is_taken_with_its_document_or_not_at_all() {
    let db = db().await;
    db.store.submit_outgoing(next(1), NOW).await.unwrap();
    for skipping in [3, 1, 0] {
        let e = db
            .nothing_written(async || db.store.submit_outgoing(next(skipping), NOW).await)
            .await;
        assert!(
            matches!(e.code(), Code::StoreUnavailable | Code::ValueInvalid),
            "{skipping}: {e}"
        );
        assert_eq!(db.store.last_number(GIALAI_STTTT, 2026).await.unwrap(), 1);
    }
    // Refused for another reason (no recipients; an idempotency key of 300 bytes).
    let mut bad = next(2);
    bad.deliveries.clear();
    db.nothing_written(async || db.store.submit_outgoing(bad, NOW).await)
        .await;
    let mut bad = next(2);
    bad.idempotency_key = Some("k".repeat(300));
    db.nothing_written(async || db.store.submit_outgoing(bad, NOW).await)
        .await;
    // Refused inside the transaction: the number and notation already used by a typed one
    // below the sequence... and a next one whose number a clerk typed meanwhile.
    db.store
        .submit_outgoing(outgoing("2", &[(NGHEAN_UBND, "peer:nghean")]), NOW)
        .await
        .unwrap();
    let e = db
        .nothing_written(async || db.store.submit_outgoing(next(2), NOW).await)
        .await;
    assert_eq!(e.code(), Code::StoreUnavailable, "{e}");
    assert_eq!(db.store.last_number(GIALAI_STTTT, 2026).await.unwrap(), 2);
    db.store.submit_outgoing(next(3), NOW).await.unwrap();
    // An idempotent repeat takes nothing.
    let mut keyed = next(4);
    keyed.idempotency_key = Some("k-4".into());
    db.store.submit_outgoing(keyed.clone(), NOW).await.unwrap();
    let mut again = keyed;
    again.document = meta(GIALAI_STTTT, "5", "STTTT-CĐS", 2026);
    assert!(db.store.submit_outgoing(again, NOW).await.unwrap().existing);
    assert_eq!(db.store.last_number(GIALAI_STTTT, 2026).await.unwrap(), 4);
    let allocations = db
        .raw
        .scalar("SELECT count(*) FROM audit WHERE action LIKE 'number.%'")
        .await;
    assert_eq!(allocations, 0);
    let numbers: Vec<String> = on_raw!(&db.raw, raw => sqlx::query_scalar(
        "SELECT code_number FROM messages WHERE direction = 'out' ORDER BY code_number",
    )
    .fetch_all(raw)
    .await
    .unwrap());
    assert_eq!(numbers, ["01", "02", "03", "04"]);
}

#[tokio::test]
async fn a_number_and_notation_are_used_once_per_agency_and_year() {
    let db = db().await;
    db.store
        .submit_outgoing(outgoing("05", &[(NGHEAN_UBND, "peer:nghean")]), NOW)
        .await
        .unwrap();
    // "5" is "05".
    let e = db
        .nothing_written(async || {
            db.store
                .submit_outgoing(outgoing("5", &[(GIALAI_UBND, "local")]), NOW)
                .await
        })
        .await;
    assert_eq!(e.code(), Code::NumberTaken, "{e}");
    assert!(e.to_string().contains("05/STTTT-CĐS"), "{e}");

    // Same number: another notation, another year, another agency — all fine.
    let mut other_notation = outgoing("05", &[(GIALAI_UBND, "local")]);
    other_notation.document.code_notation = "QĐ-STTTT".into();
    db.store.submit_outgoing(other_notation, NOW).await.unwrap();
    let mut next_year = outgoing("05", &[(GIALAI_UBND, "local")]);
    next_year.document.code_year = 2027;
    db.store.submit_outgoing(next_year, NOW).await.unwrap();
    let mut other_agency = outgoing("05", &[(GIALAI_UBND, "local")]);
    other_agency.document.sender = GIALAI_SOYT.into();
    db.store.submit_outgoing(other_agency, NOW).await.unwrap();
    // A revocation carries the original's number.
    let mut revocation = outgoing("05", &[(NGHEAN_UBND, "peer:nghean")]);
    revocation.document.business_type = 1;
    revocation.package = package("thu hồi số 05");
    db.store.submit_outgoing(revocation, NOW).await.unwrap();
}

#[tokio::test]
async fn a_number_typed_by_a_clerk_moves_the_sequence_past_it() {
    let db = db().await;
    db.store.submit_outgoing(next(1), NOW).await.unwrap();
    db.store
        .submit_outgoing(outgoing("50", &[(NGHEAN_UBND, "peer:nghean")]), NOW)
        .await
        .unwrap();
    assert_eq!(db.store.last_number(GIALAI_STTTT, 2026).await.unwrap(), 50);
    // A lower number typed later does not move it back.
    db.store
        .submit_outgoing(outgoing("20", &[(NGHEAN_UBND, "peer:nghean")]), NOW)
        .await
        .unwrap();
    assert_eq!(db.store.last_number(GIALAI_STTTT, 2026).await.unwrap(), 50);
    db.store.submit_outgoing(next(51), NOW).await.unwrap();
}

#[tokio::test]
async fn bad_submissions_are_refused_and_leave_nothing() {
    let db = db().await;
    let cases: Vec<(&str, NewOutgoing)> = vec![
        ("no recipients", outgoing("01", &[])),
        (
            "a recipient twice",
            outgoing("01", &[(GIALAI_UBND, "local"), (GIALAI_UBND, "local")]),
        ),
        ("no route", outgoing("01", &[(GIALAI_UBND, "")])),
        ("no bytes", {
            let mut n = outgoing("01", &[(GIALAI_UBND, "local")]);
            n.package.bytes.clear();
            n
        }),
        ("header not JSON", {
            let mut n = outgoing("01", &[(GIALAI_UBND, "local")]);
            n.package.header_json = "{".into();
            n
        }),
        ("business type 7", {
            let mut n = outgoing("01", &[(GIALAI_UBND, "local")]);
            n.document.business_type = 7;
            n
        }),
        ("no notation", {
            let mut n = outgoing("01", &[(GIALAI_UBND, "local")]);
            n.document.code_notation = " ".into();
            n
        }),
        ("no actor", {
            let mut n = outgoing("01", &[(GIALAI_UBND, "local")]);
            n.actor.clear();
            n
        }),
        ("empty idempotency key", {
            let mut n = outgoing("01", &[(GIALAI_UBND, "local")]);
            n.idempotency_key = Some(String::new());
            n
        }),
    ];
    for (what, new) in cases {
        let e = db
            .nothing_written(async || db.store.submit_outgoing(new, NOW).await)
            .await;
        assert_eq!(e.code(), Code::ValueInvalid, "{what}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Receiving
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_received_document_goes_to_each_local_recipients_inbox() {
    let db = db().await;
    let new = incoming("446", "công văn 446");
    let (outcome, rec) = db
        .one_audit("document.receive", "message", async || {
            db.store.ingest_incoming(new, NOW).await.unwrap()
        })
        .await;
    let IngestOutcome::Inserted { message_id } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(rec.actor, "peer:nghean");
    let m = db.store.message(message_id).await.unwrap();
    assert_eq!((m.direction, m.kind), (Direction::In, Kind::Document));
    assert_eq!(m.peer.as_deref(), Some("nghean"));
    for agency in [GIALAI_UBND, GIALAI_SOYT] {
        let items = db
            .store
            .list_inbox(agency, &InboxFilter::default())
            .await
            .unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].message.id, message_id);
        assert_eq!(items[0].current_status, None);
        assert!(!items[0].revoked);
    }
}

#[tokio::test]
async fn a_repeat_gets_the_original_receipt_and_a_conflict_is_refused() {
    let db = db().await;
    let first = db
        .store
        .ingest_incoming(incoming("446", "công văn 446"), NOW)
        .await
        .unwrap();
    let IngestOutcome::Inserted { message_id } = first else {
        panic!("{first:?}")
    };
    let audits = db.count("audit").await;

    // Same bytes again, with a receipt the node freshly signed for the repeat.
    let mut repeat = incoming("446", "công văn 446");
    repeat.receipts = vec![b"a newer receipt".to_vec(), b"another".to_vec()];
    let again = db
        .store
        .ingest_incoming(repeat, NOW + MINUTE)
        .await
        .unwrap();
    // Each recipient's own receipt, as first stored.
    assert_eq!(
        again,
        IngestOutcome::Duplicate {
            message_id,
            receipts: stored_receipts("công văn 446"),
        }
    );
    assert_eq!(db.count("messages").await, 1);
    assert_eq!(db.count("inbox").await, 2);
    assert_eq!(db.count("audit").await, audits);

    // Same (sender, DocumentId), other bytes.
    let e = db
        .nothing_written(async || {
            db.store
                .ingest_incoming(incoming("446", "công văn 446, sửa"), NOW)
                .await
        })
        .await;
    assert_eq!(e.code(), Code::DuplicateConflict, "{e}");
    assert!(
        e.to_string().contains(&format!("message {message_id}")),
        "{e}"
    );

    // A revocation repeats the DocumentId but is its own package.
    let mut revocation = incoming("446", "thu hồi công văn 446");
    revocation.document.business_type = 1;
    let r = db.store.ingest_incoming(revocation, NOW).await.unwrap();
    assert!(matches!(r, IngestOutcome::Inserted { .. }), "{r:?}");
    assert_eq!(
        db.store
            .find_documents(
                Direction::In,
                NGHEAN_UBND,
                &meta(NGHEAN_UBND, "446", "UBND-VX", 2026).document_id
            )
            .await
            .unwrap()
            .len(),
        2
    );
}

/// A received document is the same package when its signed content is (the identity the node
/// verified), whatever its bytes: a repeat in other bytes gets the original receipt and changes
/// nothing; other signed content under the same id is a conflict even in the same bytes' size.
/// A row without an identity (stored before migration 0008) is still compared by its bytes.
#[tokio::test]
async fn a_repeat_is_known_by_its_signed_content_not_its_bytes() {
    let db = db().await;
    let signed = |text: &str, identity: char| {
        let mut new = incoming("447", text);
        new.package.signed_content = Some(identity.to_string().repeat(64));
        new
    };
    let first = db
        .store
        .ingest_incoming(signed("công văn 447", 'a'), NOW)
        .await
        .unwrap();
    let IngestOutcome::Inserted { message_id } = first else {
        panic!("{first:?}")
    };
    let stored: Option<String> = on_raw!(&db.raw, raw =>
        sqlx::query_scalar("SELECT signed_content FROM messages WHERE id = $1")
            .bind(message_id)
            .fetch_one(raw)
            .await
            .unwrap());
    assert_eq!(stored, Some("a".repeat(64)));
    let audits = db.count("audit").await;

    // Other bytes (a relay re-wrapped the base64, added a comment), the same signed content.
    let mut repeat = signed("công văn 447 <!-- qua trục -->", 'a');
    repeat.receipts = vec![b"a newer receipt".to_vec(), b"another".to_vec()];
    let again = db
        .store
        .ingest_incoming(repeat, NOW + MINUTE)
        .await
        .unwrap();
    assert_eq!(
        again,
        IngestOutcome::Duplicate {
            message_id,
            receipts: stored_receipts("công văn 447"),
        }
    );
    assert_eq!(db.count("messages").await, 1);
    assert_eq!(db.count("audit").await, audits);
    assert_eq!(
        db.store.message_bytes(message_id).await.unwrap(),
        b"<edXML>c\xc3\xb4ng v\xc4\x83n 447</edXML>",
        "the first package stays"
    );

    // The same bytes but other signed content (what the store is told it verified) conflicts.
    let e = db
        .nothing_written(async || {
            db.store
                .ingest_incoming(signed("công văn 447", 'b'), NOW)
                .await
        })
        .await;
    assert_eq!(e.code(), Code::DuplicateConflict, "{e}");
    assert!(e.to_string().contains("signed content"), "{e}");

    // A row stored without an identity: compared by bytes, as before.
    db.store
        .ingest_incoming(incoming("448", "công văn 448"), NOW)
        .await
        .unwrap();
    let mut same_bytes = incoming("448", "công văn 448");
    same_bytes.package.signed_content = Some("c".repeat(64));
    let r = db.store.ingest_incoming(same_bytes, NOW).await.unwrap();
    assert!(matches!(r, IngestOutcome::Duplicate { .. }), "{r:?}");
    let mut other_bytes = incoming("448", "công văn 448, sửa");
    other_bytes.package.signed_content = Some("c".repeat(64));
    let e = db
        .store
        .ingest_incoming(other_bytes, NOW)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::DuplicateConflict, "{e}");

    // A row stored before the identity existed kept the bytes as received; a peer's retry of
    // them, now kept without what the signature does not cover, is known by the received bytes.
    let raw = "công văn 450 <!-- chưa bỏ -->";
    db.store
        .ingest_incoming(incoming("450", raw), NOW)
        .await
        .unwrap();
    let mut retried = incoming("450", "công văn 450");
    retried.package.signed_content = Some("d".repeat(64));
    retried.received_sha256 = Some(lienthong::audit::hash::sha256_hex(
        format!("<edXML>{raw}</edXML>").as_bytes(),
    ));
    let r = db.store.ingest_incoming(retried, NOW).await.unwrap();
    assert!(matches!(r, IngestOutcome::Duplicate { .. }), "{r:?}");
    let mut other = incoming("450", "công văn 450, sửa");
    other.package.signed_content = Some("d".repeat(64));
    other.received_sha256 = Some(lienthong::audit::hash::sha256_hex(b"other bytes"));
    let e = db.store.ingest_incoming(other, NOW).await.unwrap_err();
    assert_eq!(e.code(), Code::DuplicateConflict, "{e}");

    // The column takes an identity or nothing.
    let mut bad = incoming("449", "công văn 449");
    bad.package.signed_content = Some("abc".into());
    assert!(db.store.ingest_incoming(bad, NOW).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_ingests_store_exactly_one() {
    let db = db().await;
    let store = Arc::new(db.store.clone());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut new = incoming("446", "công văn 446");
                new.receipts = vec![
                    format!("receipt {i}").into_bytes(),
                    format!("receipt {i} of Sở Y tế").into_bytes(),
                ];
                store.ingest_incoming(new, NOW + i).await
            })
        })
        .collect();
    let mut inserted = Vec::new();
    let mut receipts = Vec::new();
    for t in tasks {
        match t.await.unwrap().unwrap() {
            IngestOutcome::Inserted { message_id } => inserted.push(message_id),
            IngestOutcome::Duplicate {
                message_id,
                receipts: r,
            } => receipts.push((message_id, r)),
        }
    }
    assert_eq!(inserted.len(), 1, "exactly one stored");
    assert_eq!(receipts.len(), 7);
    // Every repeat got the receipts stored with the one that won, each with its recipient.
    let winner: Vec<(String, Vec<u8>)> = on_raw!(&db.raw, raw =>
        sqlx::query_as("SELECT recipient, receipt FROM inbox ORDER BY id")
            .fetch_all(raw)
            .await
            .unwrap());
    let first: Vec<u8> = on_raw!(&db.raw, raw => sqlx::query_scalar("SELECT receipt FROM messages")
        .fetch_one(raw)
        .await
        .unwrap());
    assert_eq!(
        winner[0].1, first,
        "messages.receipt is the first recipient's"
    );
    let winner: Vec<Receipt> = winner
        .into_iter()
        .map(|(recipient, bytes)| Receipt { recipient, bytes })
        .collect();
    assert!(
        receipts
            .iter()
            .all(|(id, r)| *id == inserted[0] && *r == winner)
    );
    assert_eq!(db.count("messages").await, 1);
    assert_eq!(db.count("inbox").await, 2);
    assert_eq!(db.count("audit").await, 1);
}

#[tokio::test]
async fn bad_incoming_is_refused_and_leaves_nothing() {
    let db = db().await;
    let mut none = incoming("1", "a");
    none.local_recipients.clear();
    let mut twice = incoming("1", "a");
    twice.local_recipients = vec![GIALAI_UBND.into(), GIALAI_UBND.into()];
    let mut no_receipt = incoming("1", "a");
    no_receipt.receipts.pop();
    let mut empty_receipt = incoming("1", "a");
    empty_receipt.receipts[1].clear();
    let mut no_id = incoming("1", "a");
    no_id.document.document_id.clear();
    for new in [none, twice, no_receipt, empty_receipt, no_id] {
        let e = db
            .nothing_written(async || db.store.ingest_incoming(new, NOW).await)
            .await;
        assert_eq!(e.code(), Code::ValueInvalid, "{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// The outbox: claims, leases, transitions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn claims_lease_deliveries_and_an_expired_lease_is_claimable_again() {
    let db = db().await;
    let s = db
        .store
        .submit_outgoing(
            outgoing(
                "05",
                &[(NGHEAN_UBND, "peer:nghean"), (GIALAI_UBND, "local")],
            ),
            NOW,
        )
        .await
        .unwrap();
    assert!(
        db.store
            .claim_due(NOW - 1, 10, "outbox:w1", MINUTE)
            .await
            .unwrap()
            .is_empty(),
        "not due before it was queued"
    );
    let audits = db.count("audit").await;
    let claimed = db
        .store
        .claim_due(NOW, 10, "outbox:w1", MINUTE)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(
        db.count("audit").await,
        audits + 2,
        "one record per claimed delivery"
    );
    let c = &claimed[0];
    assert_eq!(c.attempt, 1);
    assert_eq!(c.lease_until, NOW + MINUTE);
    assert_eq!(c.message_id, s.message_id);
    // A small package comes with its claim, exactly as stored.
    let stored = db.store.message_bytes(s.message_id).await.unwrap();
    assert_eq!(c.package.as_deref(), Some(stored.as_slice()));
    assert!(!c.in_file);
    assert_eq!((c.kind, c.sender.as_str()), (Kind::Document, GIALAI_STTTT));
    let info = db.store.delivery(c.lease.delivery_id).await.unwrap();
    assert_eq!(info.state, DeliveryState::Sending);
    assert_eq!(info.lease_owner.as_deref(), Some("outbox:w1"));
    let r = db.last_audit().await;
    assert_eq!(
        (r.action.as_str(), r.actor.as_str()),
        ("delivery.claim", "outbox:w1")
    );

    // A live lease is not claimable.
    assert!(
        db.store
            .claim_due(NOW + MINUTE - 1, 10, "outbox:w2", MINUTE)
            .await
            .unwrap()
            .is_empty()
    );
    // w1 crashed; once its lease has run out, w2 takes over.
    let later = NOW + MINUTE;
    let reclaimed = db
        .store
        .claim_due(later, 1, "outbox:w2", MINUTE)
        .await
        .unwrap();
    assert_eq!(reclaimed.len(), 1);
    let r2 = &reclaimed[0];
    assert_eq!(r2.lease.delivery_id, c.lease.delivery_id);
    assert_eq!(r2.attempt, 2);
    assert_ne!(r2.lease.attempt_id, c.lease.attempt_id);
    let attempts = db.store.attempts(c.lease.delivery_id).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].outcome, Some(AttemptOutcome::Expired));
    assert_eq!(attempts[0].finished_at, Some(later));
    assert_eq!(attempts[1].outcome, None);
    assert_eq!(attempts[1].lease_owner, "outbox:w2");

    // w1 comes back and reports: its attempt is no longer current.
    let e = db
        .nothing_written(async || {
            db.store
                .mark_delivered(c.lease, b"late receipt".to_vec(), later + 1)
                .await
        })
        .await;
    assert_eq!(e.code(), Code::InvalidTransition, "{e}");

    // w2 delivers.
    let ((), rec) = db
        .one_audit("delivery.delivered", "delivery", async || {
            db.store
                .mark_delivered(r2.lease, b"signed 01".to_vec(), later + 2)
                .await
                .unwrap()
        })
        .await;
    assert_eq!(rec.actor, "outbox:w2");
    let info = db.store.delivery(c.lease.delivery_id).await.unwrap();
    assert_eq!(info.state, DeliveryState::Delivered);
    assert_eq!(info.delivered_at, Some(later + 2));
    assert_eq!(info.lease_owner, None);
    assert_eq!(
        db.store
            .delivery_receipt(c.lease.delivery_id)
            .await
            .unwrap(),
        Some(b"signed 01".to_vec())
    );
    let attempts = db.store.attempts(c.lease.delivery_id).await.unwrap();
    assert_eq!(attempts[1].outcome, Some(AttemptOutcome::Delivered));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_workers_never_claim_the_same_delivery() {
    let db = db().await;
    let recipients: Vec<String> = (1..=20).map(|i| format!("000.00.{i:02}.H41")).collect();
    let pairs: Vec<(&str, &str)> = recipients
        .iter()
        .map(|r| (r.as_str(), "peer:nghean"))
        .collect();
    db.store
        .submit_outgoing(outgoing("05", &pairs), NOW)
        .await
        .unwrap();
    let store = Arc::new(db.store.clone());
    let tasks: Vec<_> = (0..4)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = store
                        .claim_due(NOW, 3, &format!("outbox:w{w}"), MINUTE)
                        .await
                        .unwrap();
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.into_iter().map(|c| c.lease.delivery_id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    let before = all.len();
    all.dedup();
    assert_eq!(
        (before, all.len()),
        (20, 20),
        "each delivery claimed exactly once"
    );
    assert_eq!(db.count("attempts").await, 20);
}

#[tokio::test]
async fn a_failure_half_way_through_a_write_leaves_nothing() {
    let db = db().await;
    // The database refuses the second delivery row, after the document row was written.
    let boom = if db.raw.is_postgres() {
        "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'disk on fire'; END; $$;
         CREATE TRIGGER boom BEFORE INSERT ON deliveries
         FOR EACH ROW WHEN (NEW.recipient = 'BOOM') EXECUTE FUNCTION boom()"
    } else {
        "CREATE TRIGGER boom BEFORE INSERT ON deliveries WHEN NEW.recipient = 'BOOM'
         BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
    };
    db.raw.execute(boom).await.unwrap();
    let e = db
        .nothing_written(async || {
            db.store
                .submit_outgoing(
                    outgoing("05", &[(NGHEAN_UBND, "peer:nghean"), ("BOOM", "local")]),
                    NOW,
                )
                .await
        })
        .await;
    assert!(e.to_string().contains("disk on fire"), "{e}");
    // The store is fine afterwards, and the number is still free.
    db.store
        .submit_outgoing(outgoing("05", &[(NGHEAN_UBND, "peer:nghean")]), NOW)
        .await
        .unwrap();
    db.store.verify_audit().await.unwrap().unwrap();
}

#[tokio::test]
async fn retry_fail_operator_retry_and_cancel() {
    let db = db().await;
    let s = db
        .store
        .submit_outgoing(outgoing("05", &[(NGHEAN_UBND, "peer:nghean")]), NOW)
        .await
        .unwrap();
    let id = s.deliveries[0].delivery_id;
    let c = db
        .store
        .claim_due(NOW, 10, "outbox:w1", MINUTE)
        .await
        .unwrap();
    let err = DeliveryError::new("PEER_UNREACHABLE", "connect: connection refused");
    db.one_audit("delivery.retry", "delivery", async || {
        db.store
            .retry_later(c[0].lease, err.clone(), NOW + 5 * MINUTE, NOW + 1)
            .await
            .unwrap()
    })
    .await;
    let info = db.store.delivery(id).await.unwrap();
    assert_eq!(info.state, DeliveryState::Retrying);
    assert_eq!(info.next_attempt_at, Some(NOW + 5 * MINUTE));
    assert_eq!(info.last_error.as_ref(), Some(&err));
    assert!(
        db.store
            .claim_due(NOW + 2, 10, "outbox:w1", MINUTE)
            .await
            .unwrap()
            .is_empty()
    );

    let c = db
        .store
        .claim_due(NOW + 5 * MINUTE, 10, "outbox:w1", MINUTE)
        .await
        .unwrap();
    assert_eq!(c[0].attempt, 2);
    let fatal = DeliveryError::new("PEER_REFUSED", "403: sender not authorised");
    db.one_audit("delivery.fail", "delivery", async || {
        db.store
            .mark_failed(c[0].lease, fatal.clone(), NOW + 6 * MINUTE)
            .await
            .unwrap()
    })
    .await;
    let info = db.store.delivery(id).await.unwrap();
    assert_eq!(info.state, DeliveryState::Failed);
    assert_eq!(info.next_attempt_at, None);
    assert!(
        db.store
            .claim_due(NOW + 60 * MINUTE, 10, "outbox:w1", MINUTE)
            .await
            .unwrap()
            .is_empty()
    );
    let attempts = db.store.attempts(id).await.unwrap();
    assert_eq!(
        attempts.iter().map(|a| a.outcome).collect::<Vec<_>>(),
        [Some(AttemptOutcome::Retry), Some(AttemptOutcome::Failed)]
    );
    assert_eq!(attempts[1].error.as_ref(), Some(&fatal));

    // Failed needs an operator.
    let (_, rec) = db
        .one_audit("delivery.operator_retry", "delivery", async || {
            db.store
                .operator_retry(id, "admin:hoa", NOW + 7 * MINUTE)
                .await
                .unwrap()
        })
        .await;
    assert_eq!(rec.actor, "admin:hoa");
    let info = db.store.delivery(id).await.unwrap();
    assert_eq!(info.state, DeliveryState::Queued);
    assert_eq!(info.next_attempt_at, Some(NOW + 7 * MINUTE));

    db.one_audit("delivery.cancel", "delivery", async || {
        db.store
            .cancel_delivery(
                id,
                "người nhận đã nhận bản giấy",
                "admin:hoa",
                NOW + 8 * MINUTE,
            )
            .await
            .unwrap()
    })
    .await;
    assert_eq!(
        db.store.delivery(id).await.unwrap().state,
        DeliveryState::Cancelled
    );
    assert!(
        db.store
            .claim_due(NOW + 60 * MINUTE, 10, "outbox:w1", MINUTE)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn invalid_transitions_are_refused_without_an_audit_record() {
    let db = db().await;
    let s = db
        .store
        .submit_outgoing(
            outgoing(
                "05",
                &[(NGHEAN_UBND, "peer:nghean"), (GIALAI_UBND, "local")],
            ),
            NOW,
        )
        .await
        .unwrap();
    let queued = s.deliveries[0].delivery_id;
    let fake = lienthong::store::Lease {
        delivery_id: queued,
        attempt_id: 999,
    };
    let err = DeliveryError::new("X", "y");
    let refusals: Vec<lienthong::Error> = vec![
        db.nothing_written(async || db.store.mark_delivered(fake, b"r".to_vec(), NOW).await)
            .await,
        db.nothing_written(async || db.store.retry_later(fake, err.clone(), NOW, NOW).await)
            .await,
        db.nothing_written(async || db.store.mark_failed(fake, err.clone(), NOW).await)
            .await,
        db.nothing_written(async || db.store.operator_retry(queued, "admin:hoa", NOW).await)
            .await,
    ];
    for e in refusals {
        assert_eq!(e.code(), Code::InvalidTransition, "{e}");
        assert!(e.to_string().contains("is queued"), "{e}");
    }

    // Sending: cannot be cancelled or retried by an operator mid-attempt.
    let c = db
        .store
        .claim_due(NOW, 1, "outbox:w1", MINUTE)
        .await
        .unwrap();
    let sending = c[0].lease.delivery_id;
    for e in [
        db.nothing_written(async || {
            db.store
                .cancel_delivery(sending, "x", "admin:hoa", NOW)
                .await
        })
        .await,
        db.nothing_written(async || db.store.operator_retry(sending, "admin:hoa", NOW).await)
            .await,
    ] {
        assert_eq!(e.code(), Code::InvalidTransition, "{e}");
    }
    db.store
        .mark_delivered(c[0].lease, b"r".to_vec(), NOW)
        .await
        .unwrap();

    // Delivered is final except for a rejection.
    for e in [
        db.nothing_written(async || {
            db.store
                .cancel_delivery(sending, "x", "admin:hoa", NOW)
                .await
        })
        .await,
        db.nothing_written(async || db.store.operator_retry(sending, "admin:hoa", NOW).await)
            .await,
        db.nothing_written(async || {
            db.store
                .mark_delivered(c[0].lease, b"r".to_vec(), NOW)
                .await
        })
        .await,
    ] {
        assert_eq!(e.code(), Code::InvalidTransition, "{e}");
    }
    db.one_audit("delivery.reject", "delivery", async || {
        db.store
            .reject_delivery(sending, "gửi nhầm", "admin:hoa", NOW)
            .await
            .unwrap()
    })
    .await;
    let e = db
        .nothing_written(async || {
            db.store
                .reject_delivery(sending, "again", "admin:hoa", NOW)
                .await
        })
        .await;
    assert_eq!(e.code(), Code::InvalidTransition);

    // Cancelled is final.
    let other = s.deliveries[1].delivery_id;
    db.store
        .cancel_delivery(other, "trùng", "admin:hoa", NOW)
        .await
        .unwrap();
    for e in [
        db.nothing_written(async || db.store.cancel_delivery(other, "x", "admin:hoa", NOW).await)
            .await,
        db.nothing_written(async || db.store.operator_retry(other, "admin:hoa", NOW).await)
            .await,
        db.nothing_written(async || db.store.reject_delivery(other, "x", "admin:hoa", NOW).await)
            .await,
    ] {
        assert_eq!(e.code(), Code::InvalidTransition, "{e}");
    }

    // Unknown ids and bad arguments.
    let e = db
        .nothing_written(async || db.store.cancel_delivery(4242, "x", "admin:hoa", NOW).await)
        .await;
    assert_eq!(e.code(), Code::NotFound);
    for (limit, owner, lease) in [(0, "w", MINUTE), (10, "", MINUTE), (10, "w", 0)] {
        let e = db
            .nothing_written(async || db.store.claim_due(NOW, limit, owner, lease).await)
            .await;
        assert_eq!(e.code(), Code::ValueInvalid);
    }
}

// ---------------------------------------------------------------------------------------------
// Statuses
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_clerk_reports_status_on_a_received_document() {
    let db = db().await;
    let new = incoming("446", "công văn 446");
    let doc = new.document.clone();
    let IngestOutcome::Inserted { message_id } = db.store.ingest_incoming(new, NOW).await.unwrap()
    else {
        panic!()
    };

    let (out, rec) = db
        .one_audit("status.record", "status", async || {
            db.store
                .record_status(
                    status(Direction::Out, &doc, GIALAI_UBND, 3, NOW + MINUTE),
                    NOW + MINUTE,
                )
                .await
                .unwrap()
        })
        .await;
    assert!(!out.duplicate);
    assert_eq!(rec.entity_id, out.status_id.to_string());
    // The status package goes back to the sender.
    assert_eq!(out.deliveries.len(), 1);
    let d = db
        .store
        .delivery(out.deliveries[0].delivery_id)
        .await
        .unwrap();
    assert_eq!(
        (d.kind, d.recipient.as_str(), d.state),
        (Kind::Status, NGHEAN_UBND, DeliveryState::Queued)
    );
    let m = db.store.message(out.message_id).await.unwrap();
    assert_eq!(
        (m.direction, m.kind, m.status_code),
        (Direction::Out, Kind::Status, Some(3))
    );

    let item = db.store.inbox_item(GIALAI_UBND, message_id).await.unwrap();
    assert_eq!(item.current_status, Some(3));
    assert_eq!(item.current_status_at, Some(NOW + MINUTE));
    let other = db.store.inbox_item(GIALAI_SOYT, message_id).await.unwrap();
    assert_eq!(other.current_status, None, "only the reporter's copy");

    // A late-arriving older report joins the history but does not become current.
    db.store
        .record_status(
            status(Direction::In, &doc, GIALAI_UBND, 1, NOW),
            NOW + 2 * MINUTE,
        )
        .await
        .unwrap();
    assert_eq!(
        db.store
            .inbox_item(GIALAI_UBND, message_id)
            .await
            .unwrap()
            .current_status,
        Some(3)
    );
    let history = db
        .store
        .status_history(GIALAI_UBND, message_id)
        .await
        .unwrap();
    assert_eq!(history.iter().map(|s| s.code).collect::<Vec<_>>(), [1, 3]);
    assert!(
        db.store
            .status_history(GIALAI_SOYT, message_id)
            .await
            .unwrap()
            .is_empty()
    );

    // The same report again: nothing new.
    let audits = db.count("audit").await;
    let again = db
        .store
        .record_status(
            status(Direction::Out, &doc, GIALAI_UBND, 3, NOW + MINUTE),
            NOW + 3 * MINUTE,
        )
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(
        (again.status_id, again.message_id),
        (out.status_id, out.message_id)
    );
    assert_eq!(again.deliveries, out.deliveries);
    assert_eq!(db.count("audit").await, audits);

    // The filters see the status.
    let registered = db
        .store
        .list_inbox(
            GIALAI_UBND,
            &InboxFilter {
                status: Some(3),
                ..InboxFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(registered.len(), 1);
    let untouched = db
        .store
        .list_inbox(
            GIALAI_SOYT,
            &InboxFilter {
                status: Some(0),
                ..InboxFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(untouched.len(), 1);
    assert!(
        db.store
            .list_inbox(
                GIALAI_UBND,
                &InboxFilter {
                    status: Some(0),
                    ..InboxFilter::default()
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_recipients_02_rejects_the_delivery_and_15_revokes_the_copy() {
    let db = db().await;
    let new = outgoing(
        "05",
        &[(NGHEAN_UBND, "peer:nghean"), (GIALAI_UBND, "local")],
    );
    let doc = new.document.clone();
    let s = db.store.submit_outgoing(new, NOW).await.unwrap();
    let c = db
        .store
        .claim_due(NOW, 10, "outbox:w1", MINUTE)
        .await
        .unwrap();
    for claim in &c {
        db.store
            .mark_delivered(claim.lease, b"01".to_vec(), NOW + 1)
            .await
            .unwrap();
    }

    let out = db
        .store
        .record_status(
            status(Direction::In, &doc, NGHEAN_UBND, 2, NOW + MINUTE),
            NOW + MINUTE,
        )
        .await
        .unwrap();
    let to_nghean = s.deliveries[0].delivery_id;
    assert_eq!(out.rejected_deliveries, [to_nghean]);
    let d = db.store.delivery(to_nghean).await.unwrap();
    assert_eq!(d.state, DeliveryState::Rejected);
    assert_eq!(d.latest_status, Some(2));
    assert_eq!(d.last_error.map(|e| e.message), Some("status 02".into()));
    assert_eq!(
        db.store
            .delivery(s.deliveries[1].delivery_id)
            .await
            .unwrap()
            .state,
        DeliveryState::Delivered,
        "only the reporter's delivery"
    );
    let r = db.last_audit().await;
    assert_eq!(r.action, "status.record");
    assert!(
        r.detail
            .contains(&format!("\"rejected_deliveries\":[{to_nghean}]")),
        "{}",
        r.detail
    );

    // The sender sees every recipient's reports.
    let history = db
        .store
        .status_history(GIALAI_STTTT, s.message_id)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].reporter.as_str(), history[0].code),
        (NGHEAN_UBND, 2)
    );
    let e = db
        .store
        .status_history(GIALAI_SOYT, s.message_id)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // A take-back accepted by our recipient of a received document.
    let inc = incoming("446", "công văn 446");
    let inc_doc = inc.document.clone();
    let IngestOutcome::Inserted { message_id } = db.store.ingest_incoming(inc, NOW).await.unwrap()
    else {
        panic!()
    };
    db.store
        .record_status(
            status(Direction::In, &inc_doc, NGHEAN_UBND, 13, NOW + MINUTE),
            NOW + MINUTE,
        )
        .await
        .unwrap();
    db.store
        .record_status(
            status(Direction::Out, &inc_doc, GIALAI_SOYT, 15, NOW + 2 * MINUTE),
            NOW + 2 * MINUTE,
        )
        .await
        .unwrap();
    assert!(
        db.store
            .inbox_item(GIALAI_SOYT, message_id)
            .await
            .unwrap()
            .revoked
    );
    assert!(
        !db.store
            .inbox_item(GIALAI_UBND, message_id)
            .await
            .unwrap()
            .revoked
    );
    let revoked = db
        .store
        .list_inbox(
            GIALAI_SOYT,
            &InboxFilter {
                revoked: Some(true),
                ..InboxFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(revoked.len(), 1);
    // The recipient sees its own reports and the sender's request, not the other recipient's.
    let h = db
        .store
        .status_history(GIALAI_UBND, message_id)
        .await
        .unwrap();
    assert_eq!(h.iter().map(|s| s.code).collect::<Vec<_>>(), [13]);
    let h = db
        .store
        .status_history(GIALAI_SOYT, message_id)
        .await
        .unwrap();
    assert_eq!(h.iter().map(|s| s.code).collect::<Vec<_>>(), [13, 15]);
}

#[tokio::test]
async fn bad_statuses_are_refused_and_leave_nothing() {
    let db = db().await;
    let doc = meta(NGHEAN_UBND, "999", "UBND-VX", 2026);
    let e = db
        .nothing_written(async || {
            db.store
                .record_status(status(Direction::In, &doc, NGHEAN_UBND, 3, NOW), NOW)
                .await
        })
        .await;
    assert_eq!(e.code(), Code::NotFound, "an unknown document: {e}");

    db.store
        .ingest_incoming(incoming("446", "a"), NOW)
        .await
        .unwrap();
    let doc = meta(NGHEAN_UBND, "446", "UBND-VX", 2026);
    let mut bad_code = status(Direction::Out, &doc, GIALAI_UBND, 17, NOW);
    bad_code.code = 17;
    let mut no_deliveries = status(Direction::Out, &doc, GIALAI_UBND, 3, NOW);
    no_deliveries.deliveries.clear();
    let mut in_with_deliveries = status(Direction::In, &doc, NGHEAN_UBND, 13, NOW);
    in_with_deliveries.deliveries = vec![to(GIALAI_UBND, "local")];
    for s in [bad_code, no_deliveries, in_with_deliveries] {
        let e = db
            .nothing_written(async || db.store.record_status(s, NOW).await)
            .await;
        assert_eq!(e.code(), Code::ValueInvalid, "{e}");
    }
}

/// The store checks every status against the document's history in its own transaction
/// (`edxml::processing`), whichever way it came, and a refused one writes nothing; a second
/// revocation is refused at submission.
#[tokio::test]
async fn statuses_out_of_the_documents_order_are_refused_and_leave_nothing() {
    let db = db().await;
    // A document received for two agencies, then its update and its revocation.
    let mut packages = Vec::new();
    for (business_type, text) in [(0, "gốc"), (2, "cập nhật"), (1, "thu hồi")] {
        let mut new = incoming("446", text);
        new.document.business_type = business_type;
        let IngestOutcome::Inserted { message_id } =
            db.store.ingest_incoming(new, NOW).await.unwrap()
        else {
            panic!()
        };
        packages.push(message_id);
    }
    let doc = meta(NGHEAN_UBND, "446", "UBND-VX", 2026);
    let on = |code: u8, on: u8, at: i64| {
        let mut s = status(Direction::Out, &doc, GIALAI_UBND, code, at);
        s.on_business_type = Some(on);
        s
    };
    let refuse = async |s: NewStatus| {
        db.nothing_written(async || db.store.record_status(s, NOW + MINUTE).await)
            .await
            .code()
    };
    // Who and when.
    assert_eq!(
        refuse(status(Direction::In, &doc, "000.00.00.H14", 2, NOW)).await,
        Code::StatusNotFromRecipient
    );
    assert_eq!(
        refuse(status(Direction::In, &doc, NGHEAN_UBND, 3, NOW)).await,
        Code::StatusNotFromRecipient,
        "the sender reports no processing status"
    );
    assert_eq!(
        refuse(status(
            Direction::In,
            &doc,
            GIALAI_UBND,
            3,
            NOW + 60 * MINUTE
        ))
        .await,
        Code::StatusTimeInvalid
    );
    // Processing codes on the revocation or the update, a take-back answer on the document.
    assert_eq!(refuse(on(3, 1, NOW)).await, Code::InvalidTransition);
    assert_eq!(refuse(on(3, 2, NOW)).await, Code::InvalidTransition);
    assert_eq!(refuse(on(15, 0, NOW)).await, Code::InvalidTransition);

    // The update answered; the same code in the same second on the revocation is refused (it is
    // not a repeat), a second later it is recorded and revokes the copy.
    db.store.record_status(on(15, 2, NOW), NOW).await.unwrap();
    assert!(
        !db.store
            .inbox_item(GIALAI_UBND, packages[0])
            .await
            .unwrap()
            .revoked
    );
    assert_eq!(refuse(on(15, 1, NOW)).await, Code::InvalidTransition);
    assert_eq!(refuse(on(16, 2, NOW + 1000)).await, Code::InvalidTransition);
    db.store
        .record_status(on(15, 1, NOW + 1000), NOW)
        .await
        .unwrap();
    assert!(
        db.store
            .inbox_item(GIALAI_UBND, packages[0])
            .await
            .unwrap()
            .revoked
    );
    assert!(
        !db.store
            .inbox_item(GIALAI_SOYT, packages[0])
            .await
            .unwrap()
            .revoked
    );
    // The clerk's same answer again (a retry after a lost answer) is the first one; another
    // answer to the same revocation is refused.
    let again = db
        .store
        .record_status(on(15, 1, NOW + 2000), NOW)
        .await
        .unwrap();
    assert!(again.duplicate, "{again:?}");
    let mut other = on(15, 1, NOW + 2000);
    other.description = "đồng ý lần hai".into();
    assert_eq!(refuse(other).await, Code::InvalidTransition);
    assert_eq!(refuse(on(3, 0, NOW + 2000)).await, Code::InvalidTransition);

    // An outgoing document is revoked once.
    let sent = outgoing("07", &[(NGHEAN_UBND, "peer:nghean")]);
    let mut revocation = outgoing("07", &[(NGHEAN_UBND, "peer:nghean")]);
    revocation.document.business_type = 1;
    revocation.package = package("thu hồi số 07");
    db.store.submit_outgoing(sent, NOW).await.unwrap();
    db.store
        .submit_outgoing(revocation.clone(), NOW)
        .await
        .unwrap();
    revocation.package = package("thu hồi số 07, lần hai");
    let e = db
        .nothing_written(async || db.store.submit_outgoing(revocation, NOW).await)
        .await;
    assert_eq!(e.code(), Code::FollowUpExists, "{e}");
}

// ---------------------------------------------------------------------------------------------
// What clerks and operators see
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn clerks_see_only_their_agencys_documents() {
    let db = db().await;
    let s = db
        .store
        .submit_outgoing(outgoing("05", &[(NGHEAN_UBND, "peer:nghean")]), NOW)
        .await
        .unwrap();
    let IngestOutcome::Inserted { message_id: inc } = db
        .store
        .ingest_incoming(incoming("446", "công văn 446"), NOW)
        .await
        .unwrap()
    else {
        panic!()
    };

    // The sender's view of what it sent.
    let sent = db
        .store
        .list_outgoing(GIALAI_STTTT, &OutgoingFilter::default())
        .await
        .unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].message.id, s.message_id);
    assert_eq!(sent[0].deliveries.len(), 1);
    assert_eq!(sent[0].deliveries[0].recipient, NGHEAN_UBND);
    assert_eq!(
        db.store
            .outgoing_item(GIALAI_STTTT, s.message_id)
            .await
            .unwrap()
            .deliveries
            .len(),
        1
    );
    assert!(
        db.store
            .list_outgoing(GIALAI_UBND, &OutgoingFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    // The documents alone, then the deliveries of those wanted — never another agency's.
    let bare = db
        .store
        .list_outgoing(
            GIALAI_STTTT,
            &OutgoingFilter {
                without_deliveries: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(bare.len(), 1);
    assert!(bare[0].deliveries.is_empty());
    let by_doc = db
        .store
        .outgoing_deliveries(GIALAI_STTTT, &[s.message_id, inc])
        .await
        .unwrap();
    assert_eq!(by_doc.len(), 1, "{by_doc:?}");
    assert_eq!(by_doc[&s.message_id], sent[0].deliveries);
    // Narrowed to documents that carry a status code: none has a 03 yet.
    assert!(
        db.store
            .list_outgoing(
                GIALAI_STTTT,
                &OutgoingFilter {
                    with_status: Some(3),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        db.store
            .outgoing_deliveries(GIALAI_UBND, &[s.message_id])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        db.store
            .package_bytes(GIALAI_STTTT, s.message_id)
            .await
            .is_ok()
    );
    assert!(db.store.package_bytes(GIALAI_UBND, inc).await.is_ok());

    // Everything of another agency is NOT_FOUND, never "forbidden": existence is not leaked.
    for e in [
        db.store
            .outgoing_item(GIALAI_UBND, s.message_id)
            .await
            .unwrap_err(),
        db.store.outgoing_item(GIALAI_STTTT, inc).await.unwrap_err(),
        db.store.inbox_item(GIALAI_STTTT, inc).await.unwrap_err(),
        db.store
            .package_bytes(GIALAI_UBND, s.message_id)
            .await
            .unwrap_err(),
        db.store.package_bytes(GIALAI_STTTT, inc).await.unwrap_err(),
        db.store
            .status_history(GIALAI_STTTT, inc)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(e.code(), Code::NotFound, "{e}");
    }
    assert!(
        db.store
            .list_inbox(GIALAI_STTTT, &InboxFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn lists_page_newest_first_and_filter_by_time() {
    let db = db().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let s = db
            .store
            .submit_outgoing(
                outgoing(&format!("{}", i + 1), &[(NGHEAN_UBND, "peer:nghean")]),
                NOW + i * MINUTE,
            )
            .await
            .unwrap();
        ids.push(s.message_id);
        db.store
            .ingest_incoming(
                incoming(&format!("{}", 100 + i), &format!("văn bản {i}")),
                NOW + i * MINUTE,
            )
            .await
            .unwrap();
    }
    let page = |limit, before| OutgoingFilter {
        page: Page { limit, before },
        ..OutgoingFilter::default()
    };
    let first = db
        .store
        .list_outgoing(GIALAI_STTTT, &page(2, None))
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|o| o.message.id).collect::<Vec<_>>(),
        [ids[4], ids[3]]
    );
    let second = db
        .store
        .list_outgoing(GIALAI_STTTT, &page(2, Some(ids[3])))
        .await
        .unwrap();
    assert_eq!(
        second.iter().map(|o| o.message.id).collect::<Vec<_>>(),
        [ids[2], ids[1]]
    );
    let window = db
        .store
        .list_outgoing(
            GIALAI_STTTT,
            &OutgoingFilter {
                since: Some(NOW + MINUTE),
                until: Some(NOW + 3 * MINUTE),
                ..OutgoingFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        window.iter().map(|o| o.message.id).collect::<Vec<_>>(),
        [ids[2], ids[1]]
    );

    let inbox = db
        .store
        .list_inbox(
            GIALAI_UBND,
            &InboxFilter {
                since: Some(NOW + 3 * MINUTE),
                ..InboxFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(inbox.len(), 2);
    let paged = db
        .store
        .list_inbox(
            GIALAI_UBND,
            &InboxFilter {
                page: Page {
                    limit: 1,
                    before: Some(inbox[1].inbox_id),
                },
                ..InboxFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(paged.len(), 1);
    assert!(paged[0].inbox_id < inbox[1].inbox_id);

    let e = db
        .store
        .list_outgoing(GIALAI_STTTT, &page(0, None))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ValueInvalid);
}

#[tokio::test]
async fn operators_see_deliveries_by_state_counts_and_the_oldest_pending() {
    let db = db().await;
    assert_eq!(db.store.oldest_pending_age(NOW).await.unwrap(), None);
    let a = db
        .store
        .submit_outgoing(
            outgoing("1", &[(NGHEAN_UBND, "peer:nghean"), (GIALAI_UBND, "local")]),
            NOW,
        )
        .await
        .unwrap();
    db.store
        .submit_outgoing(outgoing("2", &[(NGHEAN_UBND, "peer:nghean")]), NOW + MINUTE)
        .await
        .unwrap();
    let c = db
        .store
        .claim_due(NOW, 1, "outbox:w1", MINUTE)
        .await
        .unwrap();
    db.store
        .mark_failed(
            c[0].lease,
            DeliveryError::new("NO_ROUTE", "no peer serves it"),
            NOW,
        )
        .await
        .unwrap();

    let counts = db.store.delivery_counts().await.unwrap();
    assert_eq!(counts.len(), DeliveryState::ALL.len());
    assert_eq!(counts[&DeliveryState::Queued], 2);
    assert_eq!(counts[&DeliveryState::Failed], 1);
    assert_eq!(counts[&DeliveryState::Delivered], 0);

    let failed = db
        .store
        .list_deliveries(&DeliveryFilter {
            state: Some(DeliveryState::Failed),
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, a.deliveries[0].delivery_id);
    assert_eq!(
        failed[0].last_error.as_ref().map(|e| e.code.as_str()),
        Some("NO_ROUTE")
    );
    let to_nghean = db
        .store
        .list_deliveries(&DeliveryFilter {
            recipient: Some(NGHEAN_UBND.into()),
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(to_nghean.len(), 2);
    let by_sender = db
        .store
        .list_deliveries(&DeliveryFilter {
            sender: Some(GIALAI_UBND.into()),
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    assert!(by_sender.is_empty());

    // The oldest pending is the local delivery of the first document.
    assert_eq!(
        db.store
            .oldest_pending_age(NOW + 10 * MINUTE)
            .await
            .unwrap(),
        Some(10 * MINUTE)
    );
    assert_eq!(
        db.store.attempts(4242).await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn admin_actions_are_audited() {
    let db = db().await;
    let (seq, rec) = db
        .one_audit("admin.key.rotate", "agency", async || {
            db.store
                .record_admin_action(
                    AuditEntry::new(
                        "admin:hoa",
                        "admin.key.rotate",
                        "agency",
                        GIALAI_STTTT,
                        &json!({ "fingerprint": "ab".repeat(32) }),
                    ),
                    NOW,
                )
                .await
                .unwrap()
        })
        .await;
    assert_eq!(seq, rec.seq);
    assert_eq!(rec.entity_id, GIALAI_STTTT);
    let e = db
        .nothing_written(async || {
            db.store
                .record_admin_action(AuditEntry::new("", "x", "y", 1, &json!({})), NOW)
                .await
        })
        .await;
    assert_eq!(e.code(), Code::ValueInvalid);
}

#[tokio::test]
async fn messages_are_immutable_in_the_database() {
    let db = db().await;
    db.store
        .submit_outgoing(outgoing("05", &[(NGHEAN_UBND, "peer:nghean")]), NOW)
        .await
        .unwrap();
    let e = on_raw!(&db.raw, raw => sqlx::query("UPDATE messages SET bytes = $1")
        .bind(vec![0u8])
        .execute(raw)
        .await
        .map(|r| r.rows_affected())
        .unwrap_err());
    assert!(e.to_string().contains("immutable"), "{e}");
}

/// A package kept as a BLOB (under 1 MiB) that was changed in the database is never handed on:
/// every read of its bytes (`message_bytes`, a clerk's `package_bytes`) is `STORE_CORRUPT`, and a
/// claim does not carry it (the delivery reads it and fails), whatever its size. `audit verify`
/// names it too, and an untouched package reads back as before.
#[tokio::test]
async fn a_package_changed_in_the_database_is_store_corrupt_on_every_read() {
    let db = db().await;
    let kept = db
        .store
        .submit_outgoing(outgoing("04", &[(NGHEAN_UBND, "peer:nghean")]), NOW)
        .await
        .unwrap();
    let s = db
        .store
        .submit_outgoing(outgoing("05", &[(NGHEAN_UBND, "peer:nghean")]), NOW)
        .await
        .unwrap();
    let good = db.store.message_bytes(kept.message_id).await.unwrap();
    let mut bytes = db.store.message_bytes(s.message_id).await.unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    let drop = if db.raw.is_postgres() {
        "DROP TRIGGER messages_immutable ON messages"
    } else {
        "DROP TRIGGER messages_immutable"
    };
    db.raw.execute(drop).await.unwrap();
    on_raw!(&db.raw, raw => sqlx::query("UPDATE messages SET bytes = $1 WHERE id = $2")
        .bind(&bytes)
        .bind(s.message_id)
        .execute(raw)
        .await
        .map(|r| r.rows_affected())
        .unwrap());

    let e = db.store.message_bytes(s.message_id).await.unwrap_err();
    assert_eq!(e.code(), Code::StoreCorrupt, "{e}");
    assert!(
        e.to_string().contains(&format!("message {}", s.message_id)),
        "{e}"
    );
    let e = db
        .store
        .package_bytes(GIALAI_STTTT, s.message_id)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::StoreCorrupt, "{e}");
    assert_eq!(db.store.message_bytes(kept.message_id).await.unwrap(), good);

    let claimed = db
        .store
        .claim_due(NOW, 10, "outbox:1", MINUTE)
        .await
        .unwrap();
    let package = |id: i64| {
        claimed
            .iter()
            .find(|c| c.message_id == id)
            .map(|c| c.package.clone())
            .unwrap()
    };
    assert_eq!(
        package(kept.message_id),
        Some(good),
        "an intact package comes with its claim"
    );
    assert_eq!(package(s.message_id), None, "a changed one does not");

    let report = db.store.verify_store().await.unwrap().unwrap();
    assert_eq!(report.differences.len(), 1, "{:#?}", report.differences);
    let d = &report.differences[0];
    assert_eq!(
        (d.code, d.id.as_str(), d.field),
        (
            Code::StoreCorrupt,
            s.message_id.to_string().as_str(),
            Some("bytes_sha256")
        )
    );
}

/// Group commit (`src/store/sqlite/group.rs`): many writers at once, some of them refused inside
/// the shared transaction. Every accepted write is there exactly once with its audit record, the
/// refused ones left nothing, and the audit chain is one unbroken sequence.
#[tokio::test]
async fn concurrent_writes_share_commits_and_a_refused_one_spoils_nothing() {
    let db = db().await;
    let store = Arc::new(db.store.clone());
    let s = store
        .submit_outgoing(outgoing("1", &[(NGHEAN_UBND, "peer:nghean")]), NOW)
        .await
        .unwrap();
    let fake = lienthong::store::Lease {
        delivery_id: s.deliveries[0].delivery_id,
        attempt_id: 999,
    };
    let before = db.count("audit").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..60u32 {
        let store = store.clone();
        tasks.spawn(async move {
            if i % 4 == 3 {
                // Refused inside the group: the lease is not held.
                let e = store
                    .mark_delivered(fake, b"receipt".to_vec(), NOW)
                    .await
                    .unwrap_err();
                (i, Err(e.code()))
            } else if i % 2 == 0 {
                let mut other =
                    outgoing(&format!("{}", i / 2 + 1), &[(NGHEAN_UBND, "peer:nghean")]);
                other.document.sender = GIALAI_UBND.into();
                let n = store.submit_outgoing(other, NOW).await;
                (i, n.map(|_| i64::from(i / 2 + 1)).map_err(|e| e.code()))
            } else {
                let s = store
                    .submit_outgoing(
                        outgoing(&format!("{}", 100 + i), &[(NGHEAN_UBND, "peer:nghean")]),
                        NOW,
                    )
                    .await;
                (i, s.map(|s| s.message_id).map_err(|e| e.code()))
            }
        });
    }
    let mut numbers = Vec::new();
    let (mut refused, mut submitted) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (i, r) = done.unwrap();
        match (i % 4 == 3, i % 2 == 0, r) {
            (true, _, Err(code)) => {
                assert_ne!(code, Code::StoreUnavailable);
                refused += 1;
            }
            (false, true, Ok(n)) => numbers.push(n),
            (false, false, Ok(_)) => submitted += 1,
            (_, _, r) => panic!("write {i}: unexpected {r:?}"),
        }
    }
    numbers.sort();
    assert_eq!(numbers, (1..=30).collect::<Vec<i64>>(), "each number once");
    assert_eq!((refused, submitted), (15, 15));
    assert_eq!(db.count("messages").await, 46);
    assert_eq!(
        db.count("audit").await,
        before + 45,
        "one record per accepted write, none for a refused one"
    );
    db.store.verify_audit().await.unwrap().unwrap();
}

// --- large packages as files -------------------------------------------------------------------

/// The package files beside the test database.
fn package_files(db: &Db) -> Vec<String> {
    let dir = db.dir.as_ref().expect("a SQLite store's folder");
    common::file_names(&dir.path().join("node.db.packages"))
}

/// A package of 1 MiB or more is kept as a file the row names (with an empty BLOB), read back
/// byte for byte; a small one stays a BLOB. A repeat, a conflict and an idempotent resubmission
/// leave no file behind, and every file a row names exists.
#[tokio::test]
async fn sqlite_large_packages_are_files_named_by_their_rows_and_refused_writes_leave_none() {
    let (db, _) = sqlite_db().await;
    let big = |seed: u64| {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut p = package("lớn");
        p.bytes = (0..1_200_000).map(|_| rng.alphanumeric() as u8).collect();
        p
    };
    let mut new = incoming("447", "lớn");
    new.package = big(1);
    let sent = new.package.bytes.clone();
    let IngestOutcome::Inserted { message_id } =
        db.store.ingest_incoming(new.clone(), NOW).await.unwrap()
    else {
        panic!("stored")
    };
    assert_eq!(db.store.message_bytes(message_id).await.unwrap(), sent);
    let files = package_files(&db);
    assert_eq!(files.len(), 1);
    let (blob, file): (Vec<u8>, Option<String>) = on_raw!(&db.raw, raw =>
        sqlx::query_as("SELECT bytes, file FROM messages WHERE id = $1")
            .bind(message_id)
            .fetch_one(raw)
            .await
            .unwrap());
    assert!(blob.is_empty());
    assert_eq!(file.as_deref(), Some(files[0].as_str()));

    // A repeat is answered from the first row; its file goes.
    let again = db.store.ingest_incoming(new.clone(), NOW + MINUTE).await;
    assert!(
        matches!(again, Ok(IngestOutcome::Duplicate { .. })),
        "{again:?}"
    );
    // Other bytes under the same id are refused; their file goes too.
    let mut conflict = new.clone();
    conflict.package = big(2);
    let e = db.store.ingest_incoming(conflict, NOW).await.unwrap_err();
    assert_eq!(e.code(), Code::DuplicateConflict);
    assert_eq!(package_files(&db), files);

    // An idempotent resubmission of a large outgoing document: one file.
    let mut out = outgoing("12", &[(NGHEAN_UBND, "peer:nghean")]);
    out.package = big(3);
    out.idempotency_key = Some("k-large".into());
    let first = db.store.submit_outgoing(out.clone(), NOW).await.unwrap();
    let second = db.store.submit_outgoing(out, NOW).await.unwrap();
    assert!(second.existing && second.message_id == first.message_id);
    assert_eq!(package_files(&db).len(), 2);

    // A small package is a BLOB.
    let small = db
        .store
        .submit_outgoing(outgoing("13", &[(NGHEAN_UBND, "peer:nghean")]), NOW)
        .await
        .unwrap();
    let file: Option<String> = on_raw!(&db.raw, raw =>
        sqlx::query_scalar("SELECT file FROM messages WHERE id = $1")
            .bind(small.message_id)
            .fetch_one(raw)
            .await
            .unwrap());
    assert_eq!(file, None);
    assert_eq!(package_files(&db).len(), 2);

    // Every file a row names exists.
    let named: Vec<String> = on_raw!(&db.raw, raw =>
        sqlx::query_scalar("SELECT file FROM messages WHERE file IS NOT NULL ORDER BY file")
            .fetch_all(raw)
            .await
            .unwrap());
    assert_eq!(named, package_files(&db));
}

/// Only packages of at most `CLAIM_WITH_BYTES` come with their claim; a larger one (still kept in
/// its row) is read when it is delivered, so a batch of claims never holds much.
#[tokio::test]
async fn only_small_packages_come_with_their_claim() {
    let db = db().await;
    let mut ids = Vec::new();
    for (number, len) in [
        ("07", CLAIM_WITH_BYTES as usize),
        ("08", CLAIM_WITH_BYTES as usize + 1),
    ] {
        let mut new = outgoing(number, &[(NGHEAN_UBND, "peer:nghean")]);
        new.package.bytes = vec![b'x'; len];
        ids.push(db.store.submit_outgoing(new, NOW).await.unwrap().message_id);
    }
    let claimed = db
        .store
        .claim_due(NOW, 10, "outbox:w1", MINUTE)
        .await
        .unwrap();
    let package_of = |id: i64| {
        let c = claimed.iter().find(|c| c.message_id == id).unwrap();
        c.package.as_ref().map(Vec::len)
    };
    assert_eq!(package_of(ids[0]), Some(CLAIM_WITH_BYTES as usize));
    assert_eq!(package_of(ids[1]), None);
}

/// Unix ms of a Vietnam-time (UTC+7) wall clock in December 2026 (the 7th is a Monday).
fn vn_dec(day: i64, hour: i64, minute: i64) -> i64 {
    // 2026-12-01 00:00 UTC.
    const DEC_1_UTC: i64 = 1_796_083_200_000;
    DEC_1_UTC + (day - 1) * 86_400_000 + (hour - 7) * 3_600_000 + minute * MINUTE
}

#[tokio::test]
async fn reception_counts_what_waits_for_tiep_nhan_and_what_is_late() {
    use lienthong::node::read::late_before;
    let db = db().await;
    let counts = async |agency: Option<&str>, now: i64| {
        db.store
            .reception_counts(agency, late_before(now))
            .await
            .unwrap()
    };
    // Received Tuesday 8 December 23:59 and Wednesday 9 December 00:01, Vietnam time, by
    // UBND and Sở Y tế each.
    let tuesday = vn_dec(8, 23, 59);
    let wednesday = vn_dec(9, 0, 1);
    let a = incoming("101", "công văn 101");
    let doc_a = a.document.clone();
    db.store.ingest_incoming(a, tuesday).await.unwrap();
    let b = incoming("102", "công văn 102");
    let doc_b = b.document.clone();
    db.store.ingest_incoming(b, wednesday).await.unwrap();
    let now = vn_dec(9, 10, 0);
    let ubnd = counts(Some(GIALAI_UBND), now).await;
    assert_eq!((ubnd.awaiting, ubnd.late_incoming), (2, 1), "{ubnd:?}");
    // At 23:59 on Tuesday nothing was late yet.
    assert_eq!(counts(Some(GIALAI_UBND), tuesday).await.late_incoming, 0);
    // The whole node: both agencies' copies.
    let all = counts(None, now).await;
    assert_eq!((all.awaiting, all.late_incoming), (4, 2), "{all:?}");

    // UBND's tiếp nhận (03) of the late one, and Sở Y tế's trả lại (02) of the other, take
    // them out — each for its own agency only.
    for (doc, who, code) in [(&doc_a, GIALAI_UBND, 3), (&doc_b, GIALAI_SOYT, 2)] {
        db.store
            .record_status(status(Direction::Out, doc, who, code, now), now)
            .await
            .unwrap();
    }
    let ubnd = counts(Some(GIALAI_UBND), now).await;
    assert_eq!((ubnd.awaiting, ubnd.late_incoming), (1, 0), "{ubnd:?}");
    let soyt = counts(Some(GIALAI_SOYT), now).await;
    assert_eq!((soyt.awaiting, soyt.late_incoming), (1, 1), "{soyt:?}");
    // The list filter reads the same rows.
    let waiting = db
        .store
        .list_inbox(
            GIALAI_UBND,
            &InboxFilter {
                awaiting: true,
                ..InboxFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        waiting
            .iter()
            .map(|i| i.message.document_id.as_str())
            .collect::<Vec<_>>(),
        [doc_b.document_id.as_str()]
    );

    // Received on Saturday: due by the end of Monday.
    let sat = incoming("103", "công văn 103");
    db.store
        .ingest_incoming(sat, vn_dec(12, 10, 0))
        .await
        .unwrap();
    let monday_night = counts(Some(GIALAI_UBND), vn_dec(14, 23, 59)).await;
    assert_eq!(
        (monday_night.awaiting, monday_night.late_incoming),
        (2, 1),
        "Wednesday's is late, Saturday's not yet: {monday_night:?}"
    );
    let tuesday_after = counts(Some(GIALAI_UBND), vn_dec(15, 0, 1)).await;
    assert_eq!(tuesday_after.late_incoming, 2, "{tuesday_after:?}");

    // Sent: two recipients, delivered Friday 11 December 16:00; another document delivered
    // Monday 14 December 9:00.
    let other = "000.00.01.H41";
    let sent = outgoing(
        "21",
        &[(NGHEAN_UBND, "peer:nghean"), (other, "peer:nghean")],
    );
    let doc_s = sent.document.clone();
    let friday = vn_dec(11, 16, 0);
    let s = db.store.submit_outgoing(sent, friday).await.unwrap();
    for c in db
        .store
        .claim_due(friday, 10, "outbox:w1", MINUTE)
        .await
        .unwrap()
    {
        db.store
            .mark_delivered(c.lease, b"01".to_vec(), friday + 1)
            .await
            .unwrap();
    }
    let monday = vn_dec(14, 9, 0);
    let later = db
        .store
        .submit_outgoing(outgoing("22", &[(NGHEAN_UBND, "peer:nghean")]), monday)
        .await
        .unwrap();
    for c in db
        .store
        .claim_due(monday, 10, "outbox:w1", MINUTE)
        .await
        .unwrap()
    {
        db.store
            .mark_delivered(c.lease, b"01".to_vec(), monday + 1)
            .await
            .unwrap();
    }
    // Friday 23:59 nothing is late; from Saturday 00:00 Friday's is, all weekend long.
    let sttt = |now| counts(Some(GIALAI_STTTT), now);
    assert_eq!(sttt(vn_dec(11, 23, 59)).await.late_outgoing, 0);
    assert_eq!(sttt(vn_dec(12, 0, 1)).await.late_outgoing, 1);
    assert_eq!(sttt(vn_dec(14, 23, 59)).await.late_outgoing, 1);
    // Monday's is late from Tuesday: two documents (not three deliveries).
    let tue = vn_dec(15, 8, 0);
    assert_eq!(sttt(tue).await.late_outgoing, 2);
    assert_eq!(counts(None, tue).await.late_outgoing, 2);
    assert_eq!(
        counts(Some(GIALAI_UBND), tue).await.late_outgoing,
        0,
        "not UBND's documents"
    );
    let late_list = async || {
        db.store
            .list_outgoing(
                GIALAI_STTTT,
                &OutgoingFilter {
                    late_before: Some(late_before(tue)),
                    ..OutgoingFilter::default()
                },
            )
            .await
            .unwrap()
            .iter()
            .map(|i| i.message.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(late_list().await, [later.message_id, s.message_id]);
    // A 01 from a recipient is not tiếp nhận; one recipient's 03 leaves the other late.
    for (who, code) in [(NGHEAN_UBND, 1), (NGHEAN_UBND, 3)] {
        db.store
            .record_status(status(Direction::In, &doc_s, who, code, tue), tue)
            .await
            .unwrap();
    }
    assert_eq!(sttt(tue).await.late_outgoing, 2);
    db.store
        .record_status(status(Direction::In, &doc_s, other, 3, tue), tue)
        .await
        .unwrap();
    assert_eq!(sttt(tue).await.late_outgoing, 1);
    assert_eq!(late_list().await, [later.message_id]);
    db.clean().await;
}
