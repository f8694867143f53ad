//! The PostgreSQL store's registry, statuses' refusals and `audit verify` against the SQLite
//! store's: the same operations on both backends give the same answers, the same errors and the
//! same audit chain record for record (so `store copy` and either backend's `audit verify` read
//! the other's records), and rows changed behind the store's back on PostgreSQL are named as on
//! SQLite.
//!
//! Needs `LIENTHONG_TEST_POSTGRES` (an admin URL, e.g. `postgres://postgres@127.0.0.1:5432/test`):
//! each test creates its own database `lt_stat_<pid>_<n>` and drops it at the end. Without it,
//! each test says loudly that it was skipped.

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
            "lt_stat_{}_{}",
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
