//! The figures: latency percentiles, the machine's RSA ceiling from `openssl speed`, and the
//! report as JSON and as a table.

use std::process::Command;

use serde::Serialize;

/// What one benchmark run measured. Field names are stable: scripts compare runs.
#[derive(Debug, Serialize)]
pub struct Report {
    pub version: &'static str,
    pub started_at: String,
    pub machine: String,
    pub cores: usize,
    pub store: String,
    /// Sender processes sharing its store (`--replicas`; 1 on SQLite).
    pub replicas: u32,
    pub size_bytes: usize,
    pub concurrency: usize,
    /// Documents whose receipt came back (the measured ones, warm-up excluded).
    pub documents: usize,
    pub errors: usize,
    pub elapsed_s: f64,
    pub docs_per_sec: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// CPU time of both node processes per document (user + system).
    pub cpu_ms_per_doc: f64,
    pub cpu_ms_per_doc_sender: f64,
    pub cpu_ms_per_doc_receiver: f64,
    /// CPU time of the benchmark's own clerk client per document (not in `cpu_ms_per_doc`).
    pub cpu_ms_per_doc_client: f64,
    /// The part of `cpu_ms_per_doc_sender` spent on the store's threads (SQLite's statements,
    /// WAL writes and checkpoints, and the hand-offs between the group writer and the driver's
    /// thread): where the time beyond signing goes, without a profiler.
    pub store_cpu_ms_per_doc_sender: f64,
    /// The same for the receiver.
    pub store_cpu_ms_per_doc_receiver: f64,
    pub peak_rss_mb_sender: f64,
    pub peak_rss_mb_receiver: f64,
    /// RSA-2048 signatures per second on one core, from `openssl speed` on this machine.
    pub openssl_sign_per_sec_per_core: Option<f64>,
    /// cores × sign rate ÷ 2: each delivered document costs at least two signatures.
    pub rsa_ceiling_docs_per_sec: Option<f64>,
    pub ratio_to_rsa_ceiling: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak: Option<SoakReport>,
    /// With `--flood`: the attack and how the receiver held up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flood: Option<super::flood::FloodReport>,
}

/// A soak run: the figures per window and whether they stayed flat.
#[derive(Debug, Serialize)]
pub struct SoakReport {
    pub rate_per_sec: f64,
    pub duration_s: f64,
    pub windows: Vec<Window>,
    /// p99 of the last third of the windows over that of the first third (warm-up window
    /// excluded).
    pub p99_growth: f64,
    /// RSS (both nodes) of the last third over the first third.
    pub rss_growth: f64,
    /// No growth beyond noise. Growth counts when the last third's p99 is both ×1.5 and more
    /// than 25 ms above the first third's, or its RSS both ×1.2 and more than 8 MiB above.
    pub flat: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub start_s: f64,
    pub documents: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub rss_mb_sender: f64,
    pub rss_mb_receiver: f64,
}

/// The `q`-quantile (0–1) of sorted `v` (nearest rank); 0 for an empty slice.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// RSA-2048 signatures per second per core, as `openssl speed -seconds N rsa2048` prints them
/// (`None` when openssl is missing or prints something else).
pub fn openssl_sign_rate(seconds: u32) -> Option<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", &seconds.to_string(), "rsa2048"])
        .output()
        .ok()?;
    parse_openssl_speed(&String::from_utf8_lossy(&out.stdout))
}

/// Finds the `sign/s` column of the `rsa 2048 bits` line: the header names the columns (OpenSSL
/// 3.0 prints `sign verify sign/s verify/s`, later versions add encrypt/decrypt ones).
pub fn parse_openssl_speed(text: &str) -> Option<f64> {
    let mut header: Option<Vec<&str>> = None;
    for line in text.lines() {
        if line.contains("sign/s") {
            header = Some(line.split_whitespace().collect());
            continue;
        }
        let t = line.trim_start();
        if let (Some(h), Some(rest)) = (&header, t.strip_prefix("rsa")) {
            let Some(after) = rest.split("bits").nth(1) else {
                continue;
            };
            if !rest.trim_start().starts_with("2048") {
                continue;
            }
            let values: Vec<&str> = after.split_whitespace().collect();
            let col = h.iter().position(|c| *c == "sign/s")?;
            if values.len() != h.len() {
                return None;
            }
            return values[col].parse().ok();
        }
    }
    None
}

/// One `label value` line of a report's table, the labels in one column.
pub fn push_row(t: &mut String, label: &str, value: String) {
    t.push_str(&format!("  {label:<34} {value}\n"));
}

/// The CPU model, from `/proc/cpuinfo`.
pub fn machine() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

impl Report {
    /// The readable table.
    pub fn table(&self) -> String {
        let opt = |v: Option<f64>, d: usize| v.map_or_else(|| "n/a".into(), |v| format!("{v:.d$}"));
        let mut t = String::new();
        let mut row = |k: &str, v: String| push_row(&mut t, k, v);
        row(
            "machine",
            format!("{} ({} cores)", self.machine, self.cores),
        );
        row("store", self.store.clone());
        row(
            "documents × size",
            format!("{} × {} B", self.documents, self.size_bytes),
        );
        row("concurrency", self.concurrency.to_string());
        row("errors", self.errors.to_string());
        row("elapsed", format!("{:.2} s", self.elapsed_s));
        row("documents/s", format!("{:.1}", self.docs_per_sec));
        row(
            "submit→receipt p50/p95/p99/max",
            format!(
                "{:.1} / {:.1} / {:.1} / {:.1} ms",
                self.p50_ms, self.p95_ms, self.p99_ms, self.max_ms
            ),
        );
        row(
            "CPU per document (nodes)",
            format!(
                "{:.2} ms (sender {:.2}, receiver {:.2}; client {:.2})",
                self.cpu_ms_per_doc,
                self.cpu_ms_per_doc_sender,
                self.cpu_ms_per_doc_receiver,
                self.cpu_ms_per_doc_client
            ),
        );
        let share = |part: f64, whole: f64| {
            if whole > 0.0 {
                100.0 * part / whole
            } else {
                0.0
            }
        };
        row(
            "  of which store threads",
            format!(
                "sender {:.2} ({:.0} %), receiver {:.2} ({:.0} %)",
                self.store_cpu_ms_per_doc_sender,
                share(self.store_cpu_ms_per_doc_sender, self.cpu_ms_per_doc_sender),
                self.store_cpu_ms_per_doc_receiver,
                share(
                    self.store_cpu_ms_per_doc_receiver,
                    self.cpu_ms_per_doc_receiver
                ),
            ),
        );
        row(
            "peak RSS sender / receiver",
            format!(
                "{:.1} / {:.1} MiB",
                self.peak_rss_mb_sender, self.peak_rss_mb_receiver
            ),
        );
        row(
            "openssl RSA-2048 sign/s per core",
            opt(self.openssl_sign_per_sec_per_core, 0),
        );
        row(
            "RSA ceiling (cores × sign/s ÷ 2)",
            opt(self.rsa_ceiling_docs_per_sec, 0),
        );
        row("ratio to RSA ceiling", opt(self.ratio_to_rsa_ceiling, 3));
        if let Some(s) = &self.soak {
            t.push_str(&format!(
                "\n  soak at {:.0}/s for {:.0} s: p99 ×{:.2}, RSS ×{:.2} → {}\n",
                s.rate_per_sec,
                s.duration_s,
                s.p99_growth,
                s.rss_growth,
                if s.flat { "flat" } else { "NOT flat" }
            ));
            t.push_str("  window(s)  docs   p50 ms   p99 ms   RSS sender  RSS receiver\n");
            for w in &s.windows {
                t.push_str(&format!(
                    "  {:>9.0} {:>5} {:>8.1} {:>8.1} {:>10.1} {:>13.1}\n",
                    w.start_s, w.documents, w.p50_ms, w.p99_ms, w.rss_mb_sender, w.rss_mb_receiver
                ));
            }
        }
        if let Some(f) = &self.flood {
            t.push_str(&format!(
                "\n  under a flood of {} silent connections per listener and {} trickled bodies \
                 from {} addresses\n",
                f.silent_per_listener, f.slow_bodies, f.sources
            ));
            let mut row = |k: &str, v: String| push_row(&mut t, k, v);
            row(
                "delivered",
                format!(
                    "{} of {} ({:.1} %); {} failed attempts retried",
                    f.delivered,
                    f.submitted,
                    100.0 * f.success_rate,
                    f.failed_attempts
                ),
            );
            row(
                "attack connections opened",
                f.attack_connections_opened.to_string(),
            );
            row(
                "receiver evicted peer / clerk",
                format!(
                    "{} / {} (refused {})",
                    f.receiver_evicted_peer, f.receiver_evicted_clerk, f.receiver_refused
                ),
            );
            row(
                "receiver peak RSS / descriptors",
                format!(
                    "{:.1} MiB / {}",
                    f.receiver_peak_rss_mb, f.receiver_peak_fds
                ),
            );
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_3_0_output() {
        let text = "Doing 2048 bits private rsa's for 3s: 11943 2048 bits private RSA's in 3.00s\n\
                    version: 3.0.17\n                  sign    verify    sign/s verify/s\n\
                    rsa 2048 bits 0.000251s 0.000016s   3981.0  60881.0\n";
        assert_eq!(parse_openssl_speed(text), Some(3981.0));
    }

    #[test]
    fn openssl_3_2_output_with_encrypt_columns() {
        let text = "                   sign    verify    encrypt   decrypt   sign/s verify/s  encr./s  decr./s\n\
                    rsa  2048 bits 0.000800s 0.000024s 0.000025s 0.000790s   1250.0  41666.7  40000.0   1265.8\n";
        assert_eq!(parse_openssl_speed(text), Some(1250.0));
    }

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
