//! What the outbox counts for `/metrics`: attempts by route and outcome (the error code, or
//! `delivered`), and how long peers take to answer with a receipt. Kept in memory; Prometheus
//! scrapes the running totals.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the receipt-latency histogram buckets.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Debug, Default)]
pub struct DeliveryMetrics {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// (route, outcome) → attempts.
    attempts: BTreeMap<(String, String), u64>,
    /// Cumulative counts per bucket, then the sum and count.
    latency_buckets: [u64; BUCKETS.len()],
    latency_sum: f64,
    latency_count: u64,
}

impl DeliveryMetrics {
    /// One attempt over `route` (`local`, `peer:<name>`, `none`) that ended in `outcome`.
    pub fn attempt(&self, route: &str, outcome: &str) {
        if let Ok(mut i) = self.inner.lock() {
            *i.attempts
                .entry((route.to_owned(), outcome.to_owned()))
                .or_default() += 1;
        }
    }

    /// A peer answered a document with its receipt after `took`.
    pub fn receipt_latency(&self, took: Duration) {
        let secs = took.as_secs_f64();
        if let Ok(mut i) = self.inner.lock() {
            for (n, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    i.latency_buckets[n] += 1;
                }
            }
            i.latency_sum += secs;
            i.latency_count += 1;
        }
    }

    /// The Prometheus text form.
    pub fn render(&self, out: &mut String) {
        let Ok(i) = self.inner.lock() else { return };
        let esc = |v: &str| {
            v.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        let _ = writeln!(
            out,
            "# HELP lienthong_delivery_attempts_total Delivery attempts by route and outcome (error code or delivered).\n# TYPE lienthong_delivery_attempts_total counter"
        );
        for ((route, outcome), n) in &i.attempts {
            let _ = writeln!(
                out,
                "lienthong_delivery_attempts_total{{route=\"{}\",outcome=\"{}\"}} {n}",
                esc(route),
                esc(outcome)
            );
        }
        let _ = writeln!(
            out,
            "# HELP lienthong_receipt_latency_seconds Time from pushing a document to a peer to holding its receipt.\n# TYPE lienthong_receipt_latency_seconds histogram"
        );
        for (n, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "lienthong_receipt_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                i.latency_buckets[n]
            );
        }
        let _ = writeln!(
            out,
            "lienthong_receipt_latency_seconds_bucket{{le=\"+Inf\"}} {}",
            i.latency_count
        );
        let _ = writeln!(
            out,
            "lienthong_receipt_latency_seconds_sum {:.6}",
            i.latency_sum
        );
        let _ = writeln!(
            out,
            "lienthong_receipt_latency_seconds_count {}",
            i.latency_count
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = DeliveryMetrics::default();
        m.attempt("peer:nghean", "delivered");
        m.attempt("peer:nghean", "PEER_UNREACHABLE");
        m.attempt("peer:nghean", "PEER_UNREACHABLE");
        m.receipt_latency(Duration::from_millis(30));
        m.receipt_latency(Duration::from_secs(20));
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("lienthong_delivery_attempts_total{route=\"peer:nghean\",outcome=\"PEER_UNREACHABLE\"} 2"));
        assert!(out.contains("lienthong_receipt_latency_seconds_bucket{le=\"0.025\"} 0"));
        assert!(out.contains("lienthong_receipt_latency_seconds_bucket{le=\"0.05\"} 1"));
        assert!(out.contains("lienthong_receipt_latency_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(out.contains("lienthong_receipt_latency_seconds_count 2"));
    }
}
