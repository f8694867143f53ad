//! Operations: `/healthz` (the process answers), `/readyz` (the store answers; with the mail
//! bridge on, also the last known reachability of its relay and mailbox, which never makes
//! the node unready), `/metrics` (Prometheus text format 0.0.4).
//!
//! Metrics exposed:
//! - `lienthong_deliveries{state}` — deliveries by state (gauge, from the store);
//! - `lienthong_oldest_pending_delivery_age_seconds` — age of the oldest queued/sending/retrying
//!   delivery (gauge, 0 when none);
//! - `lienthong_ingest_total{outcome}` — packages accepted by the peer endpoint (`stored`,
//!   `duplicate`);
//! - `lienthong_ingest_rejections_total{code}` — packages refused by the peer endpoint, by code;
//! - `lienthong_http_requests_total{method,route,status}` — requests served;
//! - `lienthong_connections_evicted_total{listener}` — connections that had not yet delivered a
//!   request, closed to make room for a new one (`peer`, `clerk`); a steady rise is a flood;
//! - `lienthong_connections_refused_total{listener}` — new connections closed because every
//!   place (of the listener, or of their address) was held by a connection that had;
//! - the store backend's own families ([`Store::store_metrics`]; on PostgreSQL its pool and
//!   claim latency, `store/postgres/metrics.rs`);
//! - the mail bridge's families (`lienthong_mail_*`, [`crate::node::metrics::MailMetrics`]):
//!   mails sent and failed by kind, bounced, taken in by outcome, quarantined by code,
//!   automatic replies, the IMAP session (gauge), the last read of the mailbox (timestamp) and
//!   the relay's and mailbox's last known reachability.
//!
//! Counters live in memory and restart at zero with the process, as Prometheus expects.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use crate::node::service::now_ms;
use crate::store::Store;

/// In-memory counters.
#[derive(Debug, Default)]
pub struct Metrics {
    ingest_rejections: Mutex<BTreeMap<String, u64>>,
    ingest_accepted: Mutex<BTreeMap<&'static str, u64>>,
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    evicted: Mutex<BTreeMap<&'static str, u64>>,
    refused: Mutex<BTreeMap<&'static str, u64>>,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    // A poisoned lock only means another thread panicked mid-increment; counting goes on.
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    *m.entry(key).or_insert(0) += 1;
}

fn snapshot<K: Ord + Clone>(map: &Mutex<BTreeMap<K, u64>>) -> BTreeMap<K, u64> {
    map.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

impl Metrics {
    /// A package the peer endpoint refused, by its code.
    pub fn ingest_rejected(&self, code: &str) {
        bump(&self.ingest_rejections, code.to_owned());
    }

    /// A package the peer endpoint accepted (`stored` or `duplicate`).
    pub fn ingest_accepted(&self, outcome: &'static str) {
        bump(&self.ingest_accepted, outcome);
    }

    pub fn count_request(&self, method: String, route: String, status: u16) {
        bump(&self.requests, (method, route, status));
    }

    /// An unproven connection of `listener` was evicted to make room ([`super::admission`]).
    pub fn connection_evicted(&self, listener: &'static str) {
        bump(&self.evicted, listener);
    }

    /// A new connection of `listener` was refused: no unproven connection to evict.
    pub fn connection_refused(&self, listener: &'static str) {
        bump(&self.refused, listener);
    }

    /// Refusals so far, by code.
    pub fn ingest_rejections(&self) -> BTreeMap<String, u64> {
        snapshot(&self.ingest_rejections)
    }
}

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// How long `/readyz` waits for the store's answer.
pub const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the store answers a read. With `[mail]` on, the answer also says how the relay
/// (`smtp`) and the mailbox (`imap`) were last found — `up`, `down` (with the error) or
/// `unknown` — from the bridge's own last attempt, not a probe made here: a mail server that is
/// down delays mail (the outbox retries, the reader reconnects) but the node still takes
/// documents in and out through its other channels, so it never makes the node unready.
///
/// The store's read is bounded by [`READY_WITHIN`]: a database that does not answer (a
/// PostgreSQL server gone, its network cut) makes `/readyz` answer 503 `STORE_UNAVAILABLE` with
/// the reason in that time, never hang the load balancer's probe. (The PostgreSQL pool's
/// `acquire_timeout`, 2 s by default, usually answers first.) So does a write waiting longer
/// than that for its commit ([`Store::write_stalled`]).
pub async fn readyz<S: Store>(State(state): State<AppState<S>>) -> Result<Response, ApiError> {
    match tokio::time::timeout(READY_WITHIN, state.node.store.delivery_counts()).await {
        Ok(counts) => {
            counts?;
        }
        Err(_) => {
            return Err(crate::Error::store(
                crate::Code::StoreUnavailable,
                format!(
                    "the store did not answer within {} s",
                    READY_WITHIN.as_secs_f64()
                ),
            )
            .into());
        }
    }
    // Reads answer, but a write that has waited this long for its commit (on PostgreSQL: a
    // synchronous standby gone, so the primary holds every commit) means nothing is being
    // acknowledged: not ready, so the load balancer and the operator know.
    if let Some(waited) = state.node.store.write_stalled(READY_WITHIN) {
        return Err(crate::Error::store(
            crate::Code::StoreUnavailable,
            format!(
                "a write has waited {:.0} s for its commit (is the synchronous standby gone?)",
                waited.as_secs_f64()
            ),
        )
        .into());
    }
    let Some(mail) = &state.node.config.mail else {
        return Ok(Json(json!({ "status": "ready" })).into_response());
    };
    let (smtp, imap) = state.node.metrics.mail.reachability();
    let server = |configured: bool, reach: crate::node::metrics::Reach| {
        if configured {
            json!(reach)
        } else {
            json!({ "state": "off", "at": null, "error": null })
        }
    };
    Ok(Json(json!({
        "status": "ready",
        "mail": {
            "smtp": server(mail.smtp.is_some(), smtp),
            "imap": server(mail.imap.is_some(), imap),
        }
    }))
    .into_response())
}

pub async fn metrics<S: Store>(State(state): State<AppState<S>>) -> Result<Response, ApiError> {
    let store = &state.node.store;
    let counts = store.delivery_counts().await?;
    let oldest = store.oldest_pending_age(now_ms()).await?;
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "# HELP lienthong_deliveries Outgoing deliveries by state.\n# TYPE lienthong_deliveries gauge"
    );
    for (state, n) in &counts {
        let _ = writeln!(out, "lienthong_deliveries{{state=\"{state}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP lienthong_oldest_pending_delivery_age_seconds Age of the oldest queued, sending or retrying delivery.\n# TYPE lienthong_oldest_pending_delivery_age_seconds gauge"
    );
    let _ = writeln!(
        out,
        "lienthong_oldest_pending_delivery_age_seconds {:.3}",
        oldest.unwrap_or(0) as f64 / 1000.0
    );
    let _ = writeln!(
        out,
        "# HELP lienthong_ingest_total Packages accepted by the peer endpoint.\n# TYPE lienthong_ingest_total counter"
    );
    for (outcome, n) in snapshot(&state.metrics.ingest_accepted) {
        let _ = writeln!(out, "lienthong_ingest_total{{outcome=\"{outcome}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP lienthong_ingest_rejections_total Packages refused by the peer endpoint, by error code.\n# TYPE lienthong_ingest_rejections_total counter"
    );
    for (code, n) in state.metrics.ingest_rejections() {
        let _ = writeln!(
            out,
            "lienthong_ingest_rejections_total{{code=\"{}\"}} {n}",
            label(&code)
        );
    }
    let _ = writeln!(
        out,
        "# HELP lienthong_http_requests_total HTTP requests served.\n# TYPE lienthong_http_requests_total counter"
    );
    for ((method, route, status), n) in snapshot(&state.metrics.requests) {
        let _ = writeln!(
            out,
            "lienthong_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
            label(&method),
            label(&route)
        );
    }
    for (name, help, map) in [
        (
            "lienthong_connections_evicted_total",
            "Connections that had not yet delivered a request, closed to make room.",
            &state.metrics.evicted,
        ),
        (
            "lienthong_connections_refused_total",
            "New connections closed: every place was held by a connection that had delivered a request.",
            &state.metrics.refused,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (listener, n) in snapshot(map) {
            let _ = writeln!(out, "{name}{{listener=\"{listener}\"}} {n}");
        }
    }
    state.node.metrics.render(&mut out);
    let _ = writeln!(
        out,
        "# HELP lienthong_certificate_expiry_days Days until a trust anchor, agency signing or node TLS certificate expires.\n# TYPE lienthong_certificate_expiry_days gauge"
    );
    let report = crate::node::expiry::report(
        &state.node.trust,
        &state.node.keys,
        state.node.tls_certificate.as_deref(),
        now_ms() / 1000,
    );
    for c in report {
        let _ = writeln!(
            out,
            "lienthong_certificate_expiry_days{{role=\"{}\",subject=\"{}\"}} {}",
            c.role,
            label(&c.subject),
            c.days_left
        );
    }
    // The backend's own families (PostgreSQL: its pool and claim latency); nothing for SQLite.
    out.push_str(&state.node.store.store_metrics());
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response())
}
