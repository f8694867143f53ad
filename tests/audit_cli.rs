//! `lienthong audit verify` and `lienthong audit export` as an administrator runs them, on a real
//! store file tampered with through raw SQL.

use std::process::{Command, Output};

use lienthong::audit::export::parse_jsonl_line;
use lienthong::audit::{AuditEntry, AuditRecord, verify_chain};
use lienthong::store::{SqliteStore, Store};
use serde_json::json;
use sqlx::sqlite::SqlitePool;

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
async fn store() -> (tempfile::TempDir, String, SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = SqliteStore::open(&url).await.unwrap();
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
    let raw = SqlitePool::connect(&url).await.unwrap();
    (dir, format!("sqlite://{}", path.display()), raw)
}

fn verify(url: &str) -> Output {
    bin()
        .args(["audit", "verify", "--store", url])
        .output()
        .unwrap()
}

async fn tamper(raw: &SqlitePool, sql: &'static str) {
    sqlx::query("DROP TRIGGER IF EXISTS audit_no_update")
        .execute(raw)
        .await
        .unwrap();
    sqlx::query("DROP TRIGGER IF EXISTS audit_no_delete")
        .execute(raw)
        .await
        .unwrap();
    sqlx::query(sql).execute(raw).await.unwrap();
}

#[tokio::test]
async fn verify_says_ok_with_the_head() {
    let (_dir, url, _raw) = store().await;
    let o = verify(&url);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = stdout(&o);
    assert!(
        line.starts_with("audit chain OK: 8 records, head "),
        "{line}"
    );
    assert_eq!(line.trim().rsplit(' ').next().unwrap().len(), 64, "{line}");
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
async fn verify_does_not_change_or_create_the_store() {
    let (dir, url, raw) = store().await;
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
