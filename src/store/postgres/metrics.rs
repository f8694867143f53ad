//! What `/metrics` says about a PostgreSQL store: the pool, the write groups and the claims.
//!
//! Counters only (no locks on the hot path); rendered in Prometheus' text format by
//! [`PgMetrics::render`], which `http::ops::metrics` appends through `Store::store_metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use sqlx::PgPool;

use crate::error::Result;
use crate::store::ClaimedDelivery;

/// Upper bounds (seconds) of the claim latency histogram's buckets.
const CLAIM_BUCKETS: [f64; 8] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5];

/// The store's counters.
#[derive(Debug, Default)]
pub struct PgMetrics {
    groups: AtomicU64,
    group_writes: AtomicU64,
    group_micros: AtomicU64,
    lock_wait_micros: AtomicU64,
    claims: AtomicU64,
    claim_errors: AtomicU64,
    claimed: AtomicU64,
    claim_micros: AtomicU64,
    claim_buckets: [AtomicU64; CLAIM_BUCKETS.len()],
    /// When the group in flight began (ms since [`PgMetrics::epoch`]), 0 when none is.
    group_since_ms: AtomicU64,
    epoch: std::sync::OnceLock<std::time::Instant>,
}

impl PgMetrics {
    fn epoch(&self) -> std::time::Instant {
        *self.epoch.get_or_init(std::time::Instant::now)
    }

    /// A write group began (its `BEGIN` is about to be sent).
    pub(crate) fn group_begins(&self) {
        let since = self.epoch().elapsed().as_millis() as u64;
        self.group_since_ms.store(since.max(1), Relaxed);
    }

    /// The write group in flight ended (committed or not).
    pub(crate) fn group_ends(&self) {
        self.group_since_ms.store(0, Relaxed);
    }

    /// How long the write group in flight has been running, if one is.
    pub(crate) fn group_age(&self) -> Option<Duration> {
        match self.group_since_ms.load(Relaxed) {
            0 => None,
            since => Some(
                self.epoch()
                    .elapsed()
                    .saturating_sub(Duration::from_millis(since)),
            ),
        }
    }

    /// One write group ended: its writes, the wait for the chain's lock, the whole time.
    pub(crate) fn group(&self, writes: usize, lock_wait: Duration, took: Duration) {
        self.groups.fetch_add(1, Relaxed);
        self.group_writes.fetch_add(writes as u64, Relaxed);
        self.lock_wait_micros
            .fetch_add(lock_wait.as_micros() as u64, Relaxed);
        self.group_micros
            .fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// One `claim_due` ended after `took`.
    pub(crate) fn claimed(&self, took: Duration, result: &Result<Vec<ClaimedDelivery>>) {
        self.claims.fetch_add(1, Relaxed);
        match result {
            Ok(v) => {
                self.claimed.fetch_add(v.len() as u64, Relaxed);
            }
            Err(_) => {
                self.claim_errors.fetch_add(1, Relaxed);
            }
        }
        self.claim_micros
            .fetch_add(took.as_micros() as u64, Relaxed);
        let secs = took.as_secs_f64();
        for (i, bound) in CLAIM_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.claim_buckets[i].fetch_add(1, Relaxed);
            }
        }
    }

    /// The Prometheus text of these counters and of `pool`'s state.
    pub(crate) fn render(&self, pool: &PgPool) -> String {
        let mut out = String::new();
        let size = u64::from(pool.size());
        let idle = pool.num_idle() as u64;
        let _ = writeln!(
            out,
            "# HELP lienthong_store_pool_connections PostgreSQL connections of this replica's pool.\n# TYPE lienthong_store_pool_connections gauge"
        );
        let _ = writeln!(
            out,
            "lienthong_store_pool_connections{{state=\"idle\"}} {idle}"
        );
        let _ = writeln!(
            out,
            "lienthong_store_pool_connections{{state=\"in_use\"}} {}",
            size.saturating_sub(idle)
        );
        let _ = writeln!(
            out,
            "lienthong_store_pool_connections{{state=\"max\"}} {}",
            pool.options().get_max_connections()
        );
        let secs = |a: &AtomicU64| a.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "# HELP lienthong_store_write_in_flight_seconds How long this replica's write transaction in flight has waited (0: none); a commit waiting for a missing synchronous standby shows here.\n# TYPE lienthong_store_write_in_flight_seconds gauge\nlienthong_store_write_in_flight_seconds {:.3}",
            self.group_age().map_or(0.0, |d| d.as_secs_f64())
        );
        let _ = writeln!(
            out,
            "# HELP lienthong_store_write_groups_total Write transactions (groups) of this replica.\n# TYPE lienthong_store_write_groups_total counter\nlienthong_store_write_groups_total {}",
            self.groups.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP lienthong_store_grouped_writes_total Writes committed in those groups.\n# TYPE lienthong_store_grouped_writes_total counter\nlienthong_store_grouped_writes_total {}",
            self.group_writes.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP lienthong_store_write_group_seconds_total Time in write groups, lock wait and commit included.\n# TYPE lienthong_store_write_group_seconds_total counter\nlienthong_store_write_group_seconds_total {:.6}",
            secs(&self.group_micros)
        );
        let _ = writeln!(
            out,
            "# HELP lienthong_store_chain_lock_wait_seconds_total Time groups waited for the audit chain's lock (other replicas' groups).\n# TYPE lienthong_store_chain_lock_wait_seconds_total counter\nlienthong_store_chain_lock_wait_seconds_total {:.6}",
            secs(&self.lock_wait_micros)
        );
        let _ = writeln!(
            out,
            "# HELP lienthong_store_claim_seconds Latency of the outbox's claims.\n# TYPE lienthong_store_claim_seconds histogram"
        );
        for (i, bound) in CLAIM_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "lienthong_store_claim_seconds_bucket{{le=\"{bound}\"}} {}",
                self.claim_buckets[i].load(Relaxed)
            );
        }
        let claims = self.claims.load(Relaxed);
        let _ = writeln!(
            out,
            "lienthong_store_claim_seconds_bucket{{le=\"+Inf\"}} {claims}\nlienthong_store_claim_seconds_sum {:.6}\nlienthong_store_claim_seconds_count {claims}",
            secs(&self.claim_micros)
        );
        let _ = writeln!(
            out,
            "# HELP lienthong_store_claimed_total Deliveries claimed by this replica.\n# TYPE lienthong_store_claimed_total counter\nlienthong_store_claimed_total {}",
            self.claimed.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP lienthong_store_claim_errors_total Claims that failed (the store unreachable).\n# TYPE lienthong_store_claim_errors_total counter\nlienthong_store_claim_errors_total {}",
            self.claim_errors.load(Relaxed)
        );
        out
    }
}
