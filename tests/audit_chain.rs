//! The audit chain catches edited, deleted, inserted and reordered records — in memory, and in a
//! real store file tampered with through raw SQL, the way someone with the file would do it
//! (the store of the run's backend, `common::store`).

mod common;

use lienthong::Code;
use lienthong::audit::{
    AuditBreak, AuditEntry, AuditRecord, BreakKind, ChainHead, ChainVerifier, GENESIS, record_hash,
    verify_chain,
};
use lienthong::store::{AnyStore, AuditQuery, Store};
use serde_json::json;

use common::store::Raw;

const T0: i64 = 1_764_000_000_000;

fn entry(i: i64) -> AuditEntry {
    AuditEntry::new(
        "admin:hoa",
        "admin.test",
        "thing",
        i,
        &json!({ "n": i, "note": "ghi chú" }),
    )
}

/// A valid chain of `n` records, seq 1..=n.
fn chain(n: i64) -> Vec<AuditRecord> {
    let mut head = ChainHead::GENESIS;
    (1..=n)
        .map(|i| {
            let r = AuditRecord::next(head, T0 + i, entry(i));
            head = r.head();
            r
        })
        .collect()
}

/// A record with correct hashes for its fields (a careful forger's record).
fn forged(seq: i64, prev_hash: [u8; 32]) -> AuditRecord {
    let mut r = AuditRecord::next(
        ChainHead {
            seq: seq - 1,
            hash: prev_hash,
        },
        T0 + 4,
        AuditEntry::new(
            "admin:mallory",
            "delivery.cancel",
            "delivery",
            9,
            &json!({}),
        ),
    );
    r.seq = seq;
    r
}

fn broken(records: &[AuditRecord]) -> AuditBreak {
    verify_chain(records).expect_err("the chain should not verify")
}

// ---------------------------------------------------------------------------------------------
// The verifier, in memory
// ---------------------------------------------------------------------------------------------

#[test]
fn an_intact_chain_verifies_and_reports_its_head() {
    let c = chain(10);
    let s = verify_chain(&c).unwrap();
    assert_eq!(s.records, 10);
    assert_eq!(s.head, c[9].head());
    assert_eq!(c[0].prev_hash, GENESIS);
    let empty = verify_chain(&[]).unwrap();
    assert_eq!((empty.records, empty.head), (0, ChainHead::GENESIS));
}

#[test]
fn the_hash_covers_every_field() {
    let r = &chain(1)[0];
    let base = record_hash(
        &r.prev_hash,
        r.seq,
        r.at,
        &r.actor,
        &r.action,
        &r.entity_kind,
        &r.entity_id,
        &r.detail,
    );
    assert_eq!(base, r.hash);
    let variants = [
        record_hash(
            &[1; 32],
            r.seq,
            r.at,
            &r.actor,
            &r.action,
            &r.entity_kind,
            &r.entity_id,
            &r.detail,
        ),
        record_hash(
            &r.prev_hash,
            2,
            r.at,
            &r.actor,
            &r.action,
            &r.entity_kind,
            &r.entity_id,
            &r.detail,
        ),
        record_hash(
            &r.prev_hash,
            r.seq,
            r.at + 1,
            &r.actor,
            &r.action,
            &r.entity_kind,
            &r.entity_id,
            &r.detail,
        ),
        record_hash(
            &r.prev_hash,
            r.seq,
            r.at,
            "x",
            &r.action,
            &r.entity_kind,
            &r.entity_id,
            &r.detail,
        ),
        record_hash(
            &r.prev_hash,
            r.seq,
            r.at,
            &r.actor,
            "x",
            &r.entity_kind,
            &r.entity_id,
            &r.detail,
        ),
        record_hash(
            &r.prev_hash,
            r.seq,
            r.at,
            &r.actor,
            &r.action,
            "x",
            &r.entity_id,
            &r.detail,
        ),
        record_hash(
            &r.prev_hash,
            r.seq,
            r.at,
            &r.actor,
            &r.action,
            &r.entity_kind,
            "x",
            &r.detail,
        ),
        record_hash(
            &r.prev_hash,
            r.seq,
            r.at,
            &r.actor,
            &r.action,
            &r.entity_kind,
            &r.entity_id,
            "{}",
        ),
    ];
    for v in variants {
        assert_ne!(v, base);
    }
}

#[test]
fn an_edited_record_is_named() {
    let mut c = chain(10);
    c[4].detail = r#"{"n":5,"note":"sửa"}"#.into();
    let b = broken(&c);
    assert_eq!((b.seq, b.kind), (5, BreakKind::Edited), "{b}");
    assert!(b.to_string().starts_with("record 5: edited: "), "{b}");
}

#[test]
fn an_edited_and_rehashed_record_is_named_through_its_successor() {
    let mut c = chain(10);
    c[4].actor = "admin:mallory".into();
    c[4].hash = c[4].computed_hash();
    let b = broken(&c);
    assert_eq!((b.seq, b.kind), (5, BreakKind::Edited), "{b}");
}

#[test]
fn a_deleted_record_is_named() {
    let mut c = chain(10);
    c.remove(4);
    let b = broken(&c);
    assert_eq!((b.seq, b.kind), (5, BreakKind::Deleted), "{b}");

    let mut c = chain(10);
    c.remove(0);
    let b = broken(&c);
    assert_eq!((b.seq, b.kind), (1, BreakKind::Deleted), "{b}");
}

#[test]
fn a_deletion_hidden_by_renumbering_is_named() {
    let mut c = chain(10);
    c.remove(4);
    for r in &mut c[4..] {
        r.seq -= 1;
    }
    let b = broken(&c);
    assert_eq!((b.seq, b.kind), (5, BreakKind::Deleted), "{b}");

    // The last record removed that way too.
    let mut c = chain(6);
    c.remove(4);
    c[4].seq = 5;
    let b = broken(&c);
    assert_eq!((b.seq, b.kind), (5, BreakKind::Deleted), "{b}");
}

#[test]
fn a_record_inserted_with_a_fresh_seq_is_named() {
    // It claims to sit between 4 and 5 (prev_hash of record 4, a time between theirs) but seq
    // has no room there, so it gets the next free one.
    let mut c = chain(10);
    c.push(forged(11, c[3].hash));
    let b = broken(&c);
    assert_eq!((b.seq, b.kind), (11, BreakKind::Inserted), "{b}");
    assert!(b.message.contains("record 4"), "{b}");
}

#[test]
fn a_copied_record_is_named() {
    let mut c = chain(10);
    let mut copy = c[3].clone();
    copy.seq = 11;
    c.push(copy);
    let b = broken(&c);
    assert_eq!((b.seq, b.kind), (11, BreakKind::Inserted), "{b}");
    assert!(b.message.contains("copy of record 4"), "{b}");
}

#[test]
fn a_record_inserted_by_renumbering_is_named() {
    let mut c = chain(10);
    for r in &mut c[4..] {
        r.seq += 1;
    }
    c.insert(4, forged(5, c[3].hash));
    let b = broken(&c);
    assert_eq!((b.seq, b.kind), (5, BreakKind::Inserted), "{b}");
}

#[test]
fn swapped_records_are_named() {
    let mut c = chain(10);
    c.swap(4, 5);
    c[4].seq = 5;
    c[5].seq = 6;
    let b = broken(&c);
    assert_eq!((b.seq, b.kind), (5, BreakKind::Reordered), "{b}");
}

#[test]
fn records_out_of_seq_order_are_named() {
    let mut c = chain(10);
    c.swap(4, 5);
    let b = broken(&c);
    assert_eq!(b.kind, BreakKind::Deleted, "{b}"); // seq 6 where 5 was due
    let mut c = chain(10);
    let dup = c[3].clone();
    c.insert(4, dup);
    let b = broken(&c);
    assert_eq!((b.seq, b.kind), (4, BreakKind::Reordered), "{b}");
}

#[test]
fn a_segment_verifies_from_its_anchor() {
    let c = chain(10);
    let mut v = ChainVerifier::starting_after(c[3].head());
    for r in &c[4..] {
        v.push(r).unwrap();
    }
    assert_eq!(v.finish().unwrap().records, 6);
}

// ---------------------------------------------------------------------------------------------
// Tampering with a real store file
// ---------------------------------------------------------------------------------------------

/// A store file with `n` audit records (admin actions), and a raw connection to it.
async fn store_with_records(n: i64) -> (Option<tempfile::TempDir>, String, AnyStore, Raw) {
    let db = common::store::fresh_db().await;
    for i in 1..=n {
        db.store
            .record_admin_action(entry(i), T0 + i)
            .await
            .unwrap();
    }
    let raw = Raw::connect(&db.url).await;
    (db.dir, db.url, db.store, raw)
}

/// What an attacker does first: the append-only triggers are in the way.
async fn drop_triggers(raw: &Raw) {
    let sql = if raw.is_postgres() {
        "DROP TRIGGER audit_no_update ON audit; DROP TRIGGER audit_no_delete ON audit"
    } else {
        "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete"
    };
    raw.execute(sql).await.unwrap();
}

/// Inserts `f` as it is (its seq too).
async fn insert_record(raw: &Raw, f: &AuditRecord) {
    on_raw!(raw, raw => sqlx::query(
        "INSERT INTO audit (seq, at, actor, action, entity_kind, entity_id, detail, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(f.seq)
    .bind(f.at)
    .bind(&f.actor)
    .bind(&f.action)
    .bind(&f.entity_kind)
    .bind(&f.entity_id)
    .bind(&f.detail)
    .bind(hex::encode(f.prev_hash))
    .bind(hex::encode(f.hash))
    .execute(raw)
    .await
    .map(|r| r.rows_affected())
    .unwrap());
}

async fn verdict(store: &AnyStore) -> AuditBreak {
    store
        .verify_audit()
        .await
        .unwrap()
        .expect_err("the chain should not verify")
}

#[tokio::test]
async fn the_store_chain_verifies_and_the_triggers_refuse_changes() {
    let (_dir, _url, store, raw) = store_with_records(8).await;
    let s = store.verify_audit().await.unwrap().unwrap();
    assert_eq!(s.records, 8);
    assert_eq!(s.head.seq, 8);
    let e = raw
        .execute("UPDATE audit SET detail = '{}' WHERE seq = 5")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    let e = raw
        .execute("DELETE FROM audit WHERE seq = 5")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
}

#[tokio::test]
async fn the_store_names_an_edited_row() {
    let (_dir, _url, store, raw) = store_with_records(8).await;
    drop_triggers(&raw).await;
    raw.execute(r#"UPDATE audit SET detail = '{"n":5,"note":"khác"}' WHERE seq = 5"#)
        .await
        .unwrap();
    let b = verdict(&store).await;
    assert_eq!((b.seq, b.kind), (5, BreakKind::Edited), "{b}");
}

#[tokio::test]
async fn the_store_names_a_deleted_row() {
    let (_dir, _url, store, raw) = store_with_records(8).await;
    drop_triggers(&raw).await;
    raw.execute("DELETE FROM audit WHERE seq = 5")
        .await
        .unwrap();
    let b = verdict(&store).await;
    assert_eq!((b.seq, b.kind), (5, BreakKind::Deleted), "{b}");
}

#[tokio::test]
async fn the_store_names_rows_cut_off_the_end() {
    let (_dir, _url, store, raw) = store_with_records(8).await;
    drop_triggers(&raw).await;
    raw.execute("DELETE FROM audit WHERE seq >= 7")
        .await
        .unwrap();
    let b = verdict(&store).await;
    assert_eq!((b.seq, b.kind), (7, BreakKind::Deleted), "{b}");
}

#[tokio::test]
async fn the_store_names_an_inserted_row() {
    let (_dir, _url, store, raw) = store_with_records(8).await;
    // A careful forger: a record "between 4 and 5" (record 4's hash as prev_hash, a time between
    // theirs), hashed correctly, at the next free seq. No trigger stands in the way of INSERT.
    let (h4,): (String,) = on_raw!(&raw, raw => sqlx::query_as("SELECT hash FROM audit WHERE seq = 4")
        .fetch_one(raw)
        .await
        .unwrap());
    let prev = lienthong::audit::hash::parse_hex32(&h4).unwrap();
    let f = forged(9, prev);
    insert_record(&raw, &f).await;
    let b = verdict(&store).await;
    assert_eq!((b.seq, b.kind), (9, BreakKind::Inserted), "{b}");
    assert!(b.message.contains("follow record 4"), "{b}");
}

#[tokio::test]
async fn the_store_names_a_row_inserted_by_renumbering() {
    let (_dir, _url, store, raw) = store_with_records(8).await;
    drop_triggers(&raw).await;
    // Make room at 5 (from the top down, so the primary key never collides), then fill it.
    for seq in (5..=8).rev() {
        on_raw!(&raw, raw => sqlx::query("UPDATE audit SET seq = seq + 1 WHERE seq = $1")
            .bind(seq)
            .execute(raw)
            .await
            .map(|r| r.rows_affected())
            .unwrap());
    }
    let (h4,): (String,) = on_raw!(&raw, raw => sqlx::query_as("SELECT hash FROM audit WHERE seq = 4")
        .fetch_one(raw)
        .await
        .unwrap());
    let f = forged(5, lienthong::audit::hash::parse_hex32(&h4).unwrap());
    insert_record(&raw, &f).await;
    let b = verdict(&store).await;
    assert_eq!((b.seq, b.kind), (5, BreakKind::Inserted), "{b}");
}

#[tokio::test]
async fn a_garbled_hash_is_an_edit_not_a_store_failure() {
    let (_dir, _url, store, raw) = store_with_records(8).await;
    drop_triggers(&raw).await;
    raw.execute("UPDATE audit SET hash = 'not hex' WHERE seq = 3")
        .await
        .unwrap();
    let b = verdict(&store).await;
    assert_eq!((b.seq, b.kind), (3, BreakKind::Edited), "{b}");
    let e: lienthong::Error = b.into();
    assert_eq!(e.code(), Code::AuditBroken);
}

#[tokio::test]
async fn records_page_by_time_and_position() {
    let (_dir, _url, store, _raw) = store_with_records(8).await;
    let all = store.audit_records(&AuditQuery::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    let q = AuditQuery {
        since: Some(T0 + 3),
        until: Some(T0 + 7),
        after_seq: None,
        limit: 2,
    };
    let page1 = store.audit_records(&q).await.unwrap();
    assert_eq!(page1.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4]);
    let page2 = store
        .audit_records(&AuditQuery {
            after_seq: Some(4),
            ..q
        })
        .await
        .unwrap();
    assert_eq!(page2.iter().map(|r| r.seq).collect::<Vec<_>>(), [5, 6]);
    let e = store
        .audit_records(&AuditQuery { limit: 0, ..q })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ValueInvalid);
}
