//! What the outbox counts for `/metrics`: attempts by route and outcome (the error code, or
//! `delivered`), and how long peers take to answer with a receipt; and what the mail bridge
//! counts ([`MailMetrics`]): mails sent, failed, bounced, taken in, quarantined, replies, the
//! mailbox connection and the last known reachability of the relay and the mailbox (which
//! `/readyz` reports). Kept in memory; Prometheus scrapes the running totals.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Upper bounds (seconds) of the receipt-latency histogram buckets.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Debug, Default)]
pub struct DeliveryMetrics {
    inner: Mutex<Inner>,
    /// The mail bridge's counters and reachability (all zero when `[mail]` is off).
    pub mail: MailMetrics,
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
        drop(i);
        self.mail.render(out);
    }
}

/// Escapes a Prometheus label value.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What the mail bridge counts, and the last known state of the relay and the mailbox.
///
/// Counters only go up while the process runs (Prometheus expects them to restart at zero);
/// the reachability is what the last attempt found, never a probe of its own, so reading it
/// (`/readyz`, `/metrics`) costs nothing and cannot hang on a slow server.
#[derive(Debug, Default)]
pub struct MailMetrics {
    inner: Mutex<MailInner>,
    imap_connected: AtomicBool,
    /// Unix milliseconds of the mailbox's last completed read; 0 before the first.
    last_poll_ms: AtomicI64,
}

#[derive(Debug, Default)]
struct MailInner {
    /// kind (`document`, `status`, `notify`, `reply`) → mails the relay accepted.
    sent: BTreeMap<String, u64>,
    /// (kind, `permanent`|`transient`) → mails the relay (or the connection to it) refused.
    failed: BTreeMap<(String, &'static str), u64>,
    /// Deliveries a bounce (DSN) moved to failed.
    bounced: u64,
    /// outcome (`document`, `status`, `draft`, `bounce`, `quarantined`) → mails taken in.
    taken: BTreeMap<String, u64>,
    /// code → mails quarantined.
    quarantined: BTreeMap<String, u64>,
    /// Automatic replies the relay accepted.
    replies: u64,
    smtp: Reach,
    imap: Reach,
}

/// The last known state of a mail server, as the bridge last found it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reach {
    /// `unknown` (not tried yet), `up` or `down`.
    pub state: ReachState,
    /// When it was last found so, Unix milliseconds (`None` while unknown).
    pub at: Option<i64>,
    /// What went wrong the last time it was found down (no secret: transport errors name the
    /// host and the failure, never credentials).
    pub error: Option<String>,
}

/// See [`Reach::state`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReachState {
    #[default]
    Unknown,
    Up,
    Down,
}

impl ReachState {
    fn gauge(self) -> i64 {
        match self {
            ReachState::Unknown => -1,
            ReachState::Up => 1,
            ReachState::Down => 0,
        }
    }
}

impl MailMetrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, MailInner> {
        // A poisoned lock only means another thread panicked mid-increment; counting goes on.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The relay accepted a mail of `kind` (`document`, `status`, `notify`, `reply`).
    pub fn sent(&self, kind: &str) {
        *self.lock().sent.entry(kind.to_owned()).or_default() += 1;
    }

    /// A mail of `kind` was not accepted: `permanent` (refused, not tried again) or not.
    pub fn send_failed(&self, kind: &str, permanent: bool) {
        let how = if permanent { "permanent" } else { "transient" };
        *self
            .lock()
            .failed
            .entry((kind.to_owned(), how))
            .or_default() += 1;
    }

    /// A bounce moved a delivery to failed.
    pub fn bounced(&self) {
        self.lock().bounced += 1;
    }

    /// A mail was taken in with `outcome` (`MailEffect::outcome`).
    pub fn taken(&self, outcome: &str) {
        *self.lock().taken.entry(outcome.to_owned()).or_default() += 1;
    }

    /// A mail was quarantined for `code`.
    pub fn quarantined(&self, code: &str) {
        *self.lock().quarantined.entry(code.to_owned()).or_default() += 1;
    }

    /// An automatic reply was accepted by the relay.
    pub fn reply_sent(&self) {
        self.lock().replies += 1;
    }

    /// Whether the mailbox reader holds a session now.
    pub fn set_imap_connected(&self, connected: bool) {
        self.imap_connected.store(connected, Ordering::Relaxed);
    }

    /// The mailbox was read to its end at `now_ms`.
    pub fn polled(&self, now_ms: i64) {
        self.last_poll_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Unix milliseconds of the last completed read of the mailbox (0: none yet).
    pub fn last_poll_ms(&self) -> i64 {
        self.last_poll_ms.load(Ordering::Relaxed)
    }

    /// The relay answered (`Ok`) or could not be reached (`Err(why)`) at `now_ms`.
    pub fn smtp_reach(&self, outcome: Result<(), String>, now_ms: i64) {
        self.lock().smtp = Reach::found(outcome, now_ms);
    }

    /// The mailbox server answered (`Ok`) or could not be reached (`Err(why)`) at `now_ms`.
    pub fn imap_reach(&self, outcome: Result<(), String>, now_ms: i64) {
        self.lock().imap = Reach::found(outcome, now_ms);
    }

    /// The last known state of the relay and of the mailbox server.
    pub fn reachability(&self) -> (Reach, Reach) {
        let i = self.lock();
        (i.smtp.clone(), i.imap.clone())
    }

    /// The Prometheus text form of the mail families.
    pub fn render(&self, out: &mut String) {
        let i = self.lock();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            out,
            "lienthong_mail_sent_total",
            "counter",
            "Mails the relay accepted, by kind (document, status, notify, reply).",
        );
        for (kind, n) in &i.sent {
            let _ = writeln!(
                out,
                "lienthong_mail_sent_total{{kind=\"{}\"}} {n}",
                esc(kind)
            );
        }
        family(
            out,
            "lienthong_mail_send_failures_total",
            "counter",
            "Mails the relay refused or could not take, by kind and whether the refusal was permanent.",
        );
        for ((kind, how), n) in &i.failed {
            let _ = writeln!(
                out,
                "lienthong_mail_send_failures_total{{kind=\"{}\",failure=\"{how}\"}} {n}",
                esc(kind)
            );
        }
        family(
            out,
            "lienthong_mail_bounced_total",
            "counter",
            "Deliveries a bounce (delivery-status notification) moved to failed.",
        );
        let _ = writeln!(out, "lienthong_mail_bounced_total {}", i.bounced);
        family(
            out,
            "lienthong_mail_taken_in_total",
            "counter",
            "Mails taken in from the mailbox, by outcome (document, status, draft, bounce, quarantined).",
        );
        for (outcome, n) in &i.taken {
            let _ = writeln!(
                out,
                "lienthong_mail_taken_in_total{{outcome=\"{}\"}} {n}",
                esc(outcome)
            );
        }
        family(
            out,
            "lienthong_mail_quarantined_total",
            "counter",
            "Mails put in the quarantine folder, by reason code.",
        );
        for (code, n) in &i.quarantined {
            let _ = writeln!(
                out,
                "lienthong_mail_quarantined_total{{code=\"{}\"}} {n}",
                esc(code)
            );
        }
        family(
            out,
            "lienthong_mail_replies_sent_total",
            "counter",
            "Automatic replies to quarantined mail the relay accepted.",
        );
        let _ = writeln!(out, "lienthong_mail_replies_sent_total {}", i.replies);
        family(
            out,
            "lienthong_mail_imap_connected",
            "gauge",
            "1 while the mailbox reader holds an IMAP session, else 0.",
        );
        let _ = writeln!(
            out,
            "lienthong_mail_imap_connected {}",
            u8::from(self.imap_connected.load(Ordering::Relaxed))
        );
        family(
            out,
            "lienthong_mail_last_poll_timestamp_seconds",
            "gauge",
            "When the mailbox was last read to its end (Unix seconds; 0 before the first read).",
        );
        let _ = writeln!(
            out,
            "lienthong_mail_last_poll_timestamp_seconds {:.3}",
            self.last_poll_ms() as f64 / 1000.0
        );
        family(
            out,
            "lienthong_mail_server_reachable",
            "gauge",
            "Last known state of the relay (smtp) and the mailbox server (imap): 1 up, 0 down, -1 not tried yet.",
        );
        for (server, reach) in [("smtp", &i.smtp), ("imap", &i.imap)] {
            let _ = writeln!(
                out,
                "lienthong_mail_server_reachable{{server=\"{server}\"}} {}",
                reach.state.gauge()
            );
        }
    }
}

impl Reach {
    fn found(outcome: Result<(), String>, now_ms: i64) -> Reach {
        match outcome {
            Ok(()) => Reach {
                state: ReachState::Up,
                at: Some(now_ms),
                error: None,
            },
            Err(why) => Reach {
                state: ReachState::Down,
                at: Some(now_ms),
                error: Some(why),
            },
        }
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

    #[test]
    fn renders_the_mail_families_and_remembers_reachability() {
        let m = DeliveryMetrics::default();
        let mut out = String::new();
        m.render(&mut out);
        // Before anything happened: zero counters, servers not tried yet.
        assert!(out.contains("lienthong_mail_bounced_total 0"), "{out}");
        assert!(out.contains("lienthong_mail_imap_connected 0"), "{out}");
        assert!(out.contains("lienthong_mail_server_reachable{server=\"smtp\"} -1"));
        assert_eq!(m.mail.reachability().0.state, ReachState::Unknown);

        m.mail.sent("document");
        m.mail.sent("document");
        m.mail.send_failed("notify", true);
        m.mail.taken("quarantined");
        m.mail.quarantined("MAIL_TOO_LARGE");
        m.mail.bounced();
        m.mail.reply_sent();
        m.mail.set_imap_connected(true);
        m.mail.polled(1_700_000_000_500);
        m.mail.smtp_reach(Err("connection refused".into()), 42);
        m.mail.imap_reach(Ok(()), 43);
        let mut out = String::new();
        m.render(&mut out);
        for line in [
            "lienthong_mail_sent_total{kind=\"document\"} 2",
            "lienthong_mail_send_failures_total{kind=\"notify\",failure=\"permanent\"} 1",
            "lienthong_mail_taken_in_total{outcome=\"quarantined\"} 1",
            "lienthong_mail_quarantined_total{code=\"MAIL_TOO_LARGE\"} 1",
            "lienthong_mail_bounced_total 1",
            "lienthong_mail_replies_sent_total 1",
            "lienthong_mail_imap_connected 1",
            "lienthong_mail_last_poll_timestamp_seconds 1700000000.500",
            "lienthong_mail_server_reachable{server=\"smtp\"} 0",
            "lienthong_mail_server_reachable{server=\"imap\"} 1",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line} in\n{out}");
        }
        let (smtp, imap) = m.mail.reachability();
        assert_eq!(smtp.state, ReachState::Down);
        assert_eq!(smtp.error.as_deref(), Some("connection refused"));
        assert_eq!((imap.state, imap.at), (ReachState::Up, Some(43)));
    }
}
