//! The delivery queue on PostgreSQL with several replicas sharing one database: claims never
//! overlap while a lease is live, an expired lease is taken over (its attempt ended `expired`,
//! the late outcome of the dead owner refused), and a delivery queued through one replica wakes
//! the outbox listener of another (`LISTEN/NOTIFY`), also after the listener's connection was
//! killed.
//!
//! Each test creates its own database on the server `LIENTHONG_TEST_POSTGRES` names (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`) and drops it at the end; without the variable the
//! tests say loudly that they were skipped.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lienthong::Code;
use lienthong::store::{AuditQuery, DeliveryError, DeliveryFilter, DeliveryState, PgStore, Store};
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::Notify;

const NOW: i64 = 1_760_000_000_000;
const LEASE: i64 = 60_000;

/// A database of this test's own, dropped when the test ends.
struct Db {
    admin: String,
    name: String,
    url: String,
}

impl Db {
    async fn create() -> Option<Db> {
        let Ok(admin) = std::env::var("LIENTHONG_TEST_POSTGRES") else {
            eprintln!(
                "SKIPPED: LIENTHONG_TEST_POSTGRES is not set; the PostgreSQL delivery tests did \
                 not run"
            );
            return None;
        };
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "lt_del_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let mut conn = PgConnection::connect(&admin).await.unwrap();
        let create = format!("CREATE DATABASE {name}");
        conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(create)))
            .await
            .unwrap();
        let base = admin.rsplit_once('/').unwrap().0;
        let url = format!("{base}/{name}");
        Some(Db { admin, name, url })
    }

    async fn drop_now(self) {
        let mut conn = PgConnection::connect(&self.admin).await.unwrap();
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(drop)))
            .await
            .unwrap();
    }
}

/// `n` queued deliveries (one message each), due at `NOW`, written straight into the tables:
/// the submission path is tested with the messages port.
async fn seed(url: &str, n: usize) -> Vec<i64> {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id: i64 = sqlx::query_scalar(
            "WITH m AS (
                 INSERT INTO messages (direction, kind, sender, document_id, business_type,
                     sha256, size, header_json, actor, created_at, bytes)
                 VALUES ('out', 'document', '000.00.01.H23', $1, 0, $2, 3, '{}', 'test', $3,
                     'abc'::bytea)
                 RETURNING id)
             INSERT INTO deliveries (message_id, recipient, route, state, next_attempt_at,
                 created_at, updated_at)
             SELECT id, '000.00.01.H40', 'peer:nghean', 'queued', $3, $3, $3 FROM m
             RETURNING id",
        )
        .bind(format!("doc-{i}"))
        .bind(lienthong_sha256(b"abc"))
        .bind(NOW + i as i64)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        ids.push(id);
    }
    ids
}

fn lienthong_sha256(bytes: &[u8]) -> String {
    lienthong::audit::hash::sha256_hex(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_claim_the_same_delivery() {
    let Some(db) = Db::create().await else { return };
    let a = PgStore::open(&db.url).await.unwrap();
    let b = PgStore::open(&db.url).await.unwrap();
    let ids = seed(&db.url, 120).await;

    let claim_all = |store: PgStore, owner: &'static str| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let c = store.claim_due(NOW + 1_000, 7, owner, LEASE).await.unwrap();
                if c.is_empty() {
                    return got;
                }
                got.extend(c);
            }
        })
    };
    let (ca, cb) = tokio::join!(claim_all(a.clone(), "a:1"), claim_all(b.clone(), "b:1"));
    let (ca, cb) = (ca.unwrap(), cb.unwrap());
    assert!(!ca.is_empty() && !cb.is_empty(), "both replicas claimed");
    let mut seen = HashSet::new();
    for c in ca.iter().chain(&cb) {
        assert!(seen.insert(c.lease.delivery_id), "claimed twice: {c:?}");
        assert_eq!(c.attempt, 1);
        assert_eq!(c.package.as_deref(), Some(&b"abc"[..]));
        assert!(!c.in_file);
    }
    assert_eq!(seen, ids.iter().copied().collect::<HashSet<_>>());
    // While the leases are live nobody claims them again.
    assert!(
        b.claim_due(NOW + LEASE, 100, "b:1", LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    // Each delivery is owned by its claimer, with one audit record per claim.
    let d = a.delivery(ca[0].lease.delivery_id).await.unwrap();
    assert_eq!(d.state, DeliveryState::Sending);
    assert_eq!(d.lease_owner.as_deref(), Some("a:1"));
    let records = a
        .audit_records(&AuditQuery {
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        records
            .iter()
            .filter(|r| r.action == "delivery.claim")
            .count(),
        ids.len()
    );
    assert!(a.verify_audit().await.unwrap().is_ok());
    let counts = b.delivery_counts().await.unwrap();
    assert_eq!(counts[&DeliveryState::Sending], ids.len() as u64);
    assert_eq!(b.oldest_pending_age(NOW + 10).await.unwrap(), Some(10));
    a.close().await;
    b.close().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_over_by_another_replica() {
    let Some(db) = Db::create().await else { return };
    let a = PgStore::open(&db.url).await.unwrap();
    let b = PgStore::open(&db.url).await.unwrap();
    let ids = seed(&db.url, 1).await;

    let first = a.claim_due(NOW, 10, "a:1", 1_000).await.unwrap();
    assert_eq!(first.len(), 1);
    let old = first[0].lease;
    assert!(
        b.claim_due(NOW + 999, 10, "b:1", LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    let taken = b.claim_due(NOW + 1_000, 10, "b:1", LEASE).await.unwrap();
    assert_eq!(taken.len(), 1);
    let new = taken[0].lease;
    assert_eq!(new.delivery_id, ids[0]);
    assert_ne!(new.attempt_id, old.attempt_id);
    assert_eq!(taken[0].attempt, 2);

    // The dead owner's attempt ended `expired` at the takeover.
    let attempts = a.attempts(ids[0]).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].lease_owner, "a:1");
    assert_eq!(attempts[0].finished_at, Some(NOW + 1_000));
    assert_eq!(attempts[0].outcome.map(|o| o.as_str()), Some("expired"));
    assert_eq!(attempts[1].lease_owner, "b:1");
    assert_eq!(attempts[1].finished_at, None);

    // Its late outcome does not overwrite the new owner's lease.
    let e = a
        .mark_delivered(old, b"receipt".to_vec(), NOW + 1_100)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidTransition);
    assert!(e.to_string().contains("lost its lease"), "{e}");
    let e = a
        .retry_later(old, DeliveryError::new("X", "y"), NOW + 5_000, NOW + 1_100)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidTransition);
    let e = a
        .mark_failed(old, DeliveryError::new("X", "y"), NOW + 1_100)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidTransition);
    let d = a.delivery(ids[0]).await.unwrap();
    assert_eq!(d.lease_owner.as_deref(), Some("b:1"));
    assert_eq!(d.state, DeliveryState::Sending);

    // The claim's record names the lease it took over; the new owner's outcome is its own.
    let records = b
        .audit_records(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let claims: Vec<_> = records
        .iter()
        .filter(|r| r.action == "delivery.claim")
        .collect();
    assert_eq!(claims.len(), 2);
    assert_eq!(claims[1].actor, "b:1");
    assert_eq!(
        claims[1].detail,
        format!(
            r#"{{"attempt":2,"attempt_id":{},"expired_attempt_id":{},"expired_lease_owner":"a:1","from":"sending","lease_until":{},"route":"peer:nghean","to":"sending"}}"#,
            new.attempt_id,
            old.attempt_id,
            NOW + 1_000 + LEASE
        )
    );
    b.mark_delivered(new, b"receipt".to_vec(), NOW + 1_200)
        .await
        .unwrap();
    assert_eq!(
        b.delivery_receipt(ids[0]).await.unwrap().as_deref(),
        Some(&b"receipt"[..])
    );
    let last = b
        .audit_records(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(last.action, "delivery.delivered");
    assert_eq!(last.actor, "b:1");
    assert_eq!(
        last.detail,
        format!(
            r#"{{"attempt_id":{},"from":"sending","receipt_sha256":"{}","to":"delivered"}}"#,
            new.attempt_id,
            lienthong_sha256(b"receipt")
        )
    );
    assert!(b.verify_audit().await.unwrap().is_ok());
    a.close().await;
    b.close().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_and_lists_as_on_sqlite() {
    let Some(db) = Db::create().await else { return };
    let s = PgStore::open(&db.url).await.unwrap();
    let ids = seed(&db.url, 3).await;

    // A document is delivered only with its receipt.
    let c = s.claim_due(NOW, 1, "a:1", LEASE).await.unwrap();
    let e = s
        .mark_delivered(c[0].lease, Vec::new(), NOW)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ValueInvalid);
    s.retry_later(
        c[0].lease,
        DeliveryError::new("PEER_DOWN", "x"),
        NOW + 10,
        NOW,
    )
    .await
    .unwrap();
    let e = s
        .mark_failed(c[0].lease, DeliveryError::new("X", "y"), NOW)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidTransition);
    assert_eq!(
        e.to_string(),
        format!(
            "delivery {} is retrying; fail needs sending",
            c[0].lease.delivery_id
        )
    );
    s.operator_retry(ids[0], "op", NOW + 1).await.unwrap();
    let d = s.delivery(ids[0]).await.unwrap();
    assert_eq!(d.state, DeliveryState::Queued);
    assert_eq!(d.retry_from, Some(NOW + 1));
    assert_eq!(
        d.last_error.as_ref().map(|e| e.code.as_str()),
        Some("PEER_DOWN")
    );

    s.cancel_delivery(ids[1], "duplicate", "op", NOW + 2)
        .await
        .unwrap();
    let e = s
        .cancel_delivery(ids[1], "again", "op", NOW + 3)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidTransition);
    let e = s
        .reject_delivery(ids[1], "no", "op", NOW + 3)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidTransition);
    s.reject_delivery(ids[2], "refused", "op", NOW + 3)
        .await
        .unwrap();
    let e = s.operator_retry(9_999, "op", NOW).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    let all = s.list_deliveries(&DeliveryFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|d| d.id).collect::<Vec<_>>(),
        ids.iter().rev().copied().collect::<Vec<_>>()
    );
    let cancelled = s
        .list_deliveries(&DeliveryFilter {
            state: Some(DeliveryState::Cancelled),
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].id, ids[1]);
    let mut paged = DeliveryFilter::default();
    paged.page.limit = 1;
    paged.page.before = Some(ids[2]);
    paged.since = Some(NOW + 1);
    let page = s.list_deliveries(&paged).await.unwrap();
    assert_eq!(page.iter().map(|d| d.id).collect::<Vec<_>>(), vec![ids[1]]);
    let counts = s.delivery_counts().await.unwrap();
    assert_eq!(counts[&DeliveryState::Queued], 1);
    assert_eq!(counts[&DeliveryState::Cancelled], 1);
    assert_eq!(counts[&DeliveryState::Rejected], 1);
    assert_eq!(counts[&DeliveryState::Delivered], 0);

    let actions: Vec<String> = s
        .audit_records(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    assert_eq!(
        actions,
        [
            "delivery.claim",
            "delivery.retry",
            "delivery.operator_retry",
            "delivery.cancel",
            "delivery.reject"
        ]
    );
    assert!(s.verify_audit().await.unwrap().is_ok());
    s.close().await;
    db.drop_now().await;
}

/// Waits for one wake of `n`; whether it came within `within`.
async fn woken(n: &Notify, within: Duration) -> bool {
    tokio::time::timeout(within, n.notified()).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_queued_through_one_replica_wakes_another() {
    let Some(db) = Db::create().await else { return };
    let a = PgStore::open(&db.url).await.unwrap();
    let b = PgStore::open(&db.url).await.unwrap();
    let ids = seed(&db.url, 1).await;
    let claimed = b.claim_due(NOW, 1, "b:1", LEASE).await.unwrap();
    b.mark_failed(claimed[0].lease, DeliveryError::new("X", "y"), NOW)
        .await
        .unwrap();

    let wake = Arc::new(Notify::new());
    let listener = a
        .watch_queue(wake.clone())
        .expect("PostgreSQL watches the queue");
    // It wakes once as soon as it listens (whatever was queued before).
    assert!(woken(&wake, Duration::from_secs(10)).await, "first wake");
    assert!(!woken(&wake, Duration::from_millis(300)).await);

    // Moves that leave nothing to claim wake nobody.
    b.operator_retry(ids[0], "op", NOW + 1).await.unwrap();
    assert!(woken(&wake, Duration::from_secs(5)).await, "queued by b");
    let claimed = b.claim_due(NOW + 2, 1, "b:1", LEASE).await.unwrap();
    assert!(
        !woken(&wake, Duration::from_millis(500)).await,
        "a claim woke"
    );
    b.mark_failed(claimed[0].lease, DeliveryError::new("X", "y"), NOW + 3)
        .await
        .unwrap();
    assert!(
        !woken(&wake, Duration::from_millis(500)).await,
        "a failure woke"
    );

    // Kill the listener's connection: it listens again (and wakes once for what it missed).
    let mut admin = PgConnection::connect(&db.url).await.unwrap();
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(killed, 1);
    assert!(
        woken(&wake, Duration::from_secs(10)).await,
        "wake after reconnecting"
    );
    b.operator_retry(ids[0], "op", NOW + 4).await.unwrap();
    assert!(
        woken(&wake, Duration::from_secs(5)).await,
        "queued after reconnecting"
    );

    listener.abort();
    a.close().await;
    b.close().await;
    db.drop_now().await;
}
