//! `lienthong bench`: a reproducible end-to-end benchmark of two real nodes on loopback.
//!
//! It starts a sending node (Sở TT&TT Gia Lai) and a receiving node (UBND Nghệ An) as separate
//! `lienthong serve` processes with the test PKI, submits documents through the sender's real
//! clerk API, and waits for every signed receipt. The nodes talk over mutual TLS, as in
//! production, and each document costs what it costs there: compose, zip, sign, commit; push,
//! verify, sign the receipt, commit; verify the receipt, commit.
//!
//! Reported (table, or JSON with `--json`): documents per second, submit→receipt latency
//! percentiles, CPU per document of each node (from `/proc`), peak RSS of each node during the
//! measured run (the warm-up's peak is reset; its documents are at most 1 MiB), and the
//! machine's RSA ceiling from `openssl speed` (cores × RSA-2048 sign rate ÷ 2, since a delivered
//! document needs at least two signatures) with the ratio to it. `--soak DURATION` holds
//! `--rate` documents per second instead and reports, per window, whether latency and memory
//! stay flat.
//!
//! `--flood N` runs the measured documents while the receiver is under a connection flood
//! ([`flood`]) and reports whether every document was delivered, the latency under attack, and
//! the receiver's memory and descriptors.
//!
//! `--mail-env FILE` measures the mail channel instead ([`mail`]): one node sending documents
//! by mail through a real relay into a real Dovecot mailbox, and taking signed `.edxml` mails
//! in from its own — against the servers `scripts/mail-harness.sh start DIR` runs and
//! describes in `DIR/env`.
//!
//! The figures are for *this* machine: run it where you want to know.

mod flood;
mod load;
mod mail;
mod nodes;
mod pg;
mod report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lienthong::Error;
use lienthong::config::parse_duration;
use lienthong::store::Backend;

use self::load::{Clerk, Outcome, now_ms};
use self::nodes::{RECEIVER_CODE, SENDER_CODE};
use self::report::{Report, SoakReport, Window, quantile};
use super::{CmdResult, Failure};

#[derive(clap::Args)]
pub struct Args {
    /// Documents to send (closed loop; warm-up not counted).
    #[arg(long, default_value_t = 2000)]
    documents: usize,
    /// Clerk submissions in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Size of each document's one attachment, in bytes.
    #[arg(long, default_value_t = 10 * 1024)]
    size: usize,
    /// Deliveries the sender keeps in flight (its `retry.in_flight`; default: the node's).
    #[arg(long)]
    in_flight: Option<u32>,
    /// Store URL of each node; `{node}` becomes `sender` or `receiver`, `{dir}` the run's
    /// folder. Default: `sqlite://{dir}/{node}.db`. A `postgres://USER@HOST/DB` URL instead runs
    /// the sender on PostgreSQL: the bench creates a fresh database on that server for the run
    /// (`lienthong_bench_…`, through DB, which must exist) and drops it afterwards (kept with
    /// `--dir`); the receiver stays on SQLite in the run's folder, so only the sender's store
    /// differs from a SQLite run.
    #[arg(long)]
    store: Option<String>,
    /// With a `postgres://` `--store`: this many sender replicas sharing its database, the
    /// clerk's submissions round-robin across them (CPU summed, peak RSS the largest).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8))]
    replicas: u32,
    /// Print the report as JSON on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
    /// Soak instead: hold `--rate` documents per second for this long (e.g. `30m`).
    #[arg(long)]
    soak: Option<String>,
    /// Documents per second in a soak.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Documents sent (and received) before measuring: connections, caches, allocator. Their
    /// attachment is `--size` but at most 1 MiB.
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// The test PKI folder (default: `certs/test-only` of the checkout).
    #[arg(long)]
    pki: Option<PathBuf>,
    /// Seconds of `openssl speed rsa2048` for the ceiling (0: skip).
    #[arg(long, default_value_t = 3)]
    openssl_seconds: u32,
    /// Keep the nodes' configurations, stores and logs in this folder (default: a temporary
    /// folder, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Flood the receiver while the measured documents are sent: this many silent connections
    /// to each of its listeners and this many trickled request bodies, from other loopback
    /// addresses, each re-opened as soon as the node closes it (0: no flood).
    #[arg(long, default_value_t = 0)]
    flood: usize,
    /// The loopback addresses the flood comes from (127.0.0.2 onwards).
    #[arg(long, default_value_t = 20)]
    flood_sources: usize,
    /// With `--flood`: how long the flood runs before the first document is sent.
    #[arg(long, default_value = "3s")]
    flood_settle: String,
    /// Measure the mail channel instead, against the mail servers this file describes (the
    /// `DIR/env` of `scripts/mail-harness.sh start DIR`): `--documents` sent by mail to a
    /// mail-only commune, then `--mail-inbound` signed `.edxml` mails taken in.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["soak", "flood"])]
    mail_env: Option<PathBuf>,
    /// With `--mail-env`: signed `.edxml` mails (attachment `--size`) put in the node's mailbox
    /// and taken in (default: `--documents`; 0: outbound only).
    #[arg(long, value_name = "N", requires = "mail_env")]
    mail_inbound: Option<usize>,
    /// With `--mail-env`: submit the documents at this many per second (open loop, at most
    /// `--concurrency` outstanding) instead of a closed loop, for the latency of a held rate.
    #[arg(long, value_name = "PER_SECOND", requires = "mail_env")]
    mail_rate: Option<f64>,
}

pub fn run(args: Args) -> CmdResult {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Local(Error::io("(tokio runtime)", e)))?;
    let (dir, temporary) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!(
                "lienthong-bench-{}-{:08x}",
                std::process::id(),
                fastrand::u32(..)
            )),
            true,
        ),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::Local(Error::io(dir.display().to_string(), e)))?;
    let result = rt.block_on(async {
        match &args.mail_env {
            Some(env) => mail::bench(&args, &dir, env)
                .await
                .map(|r| (r.table(), serde_json::to_string_pretty(&r))),
            None => {
                let pg = match args.store.as_deref() {
                    Some(url) if Backend::of(url).ok() == Some(Backend::Postgres) => {
                        Some(pg::BenchDatabase::create(url).await?)
                    }
                    _ => None,
                };
                let report = bench(&args, &dir, pg.as_ref().map(|d| d.url.as_str()))
                    .await
                    .map(|r| (r.table(), serde_json::to_string_pretty(&r)));
                // The nodes have stopped (dropped with `bench`'s handles).
                if let Some(db) = pg
                    && temporary
                {
                    db.drop_database().await;
                }
                report
            }
        }
    });
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (table, json) = result.map_err(Failure::Local)?;
    if args.json {
        eprint!("{table}");
        outln!("{}", json.unwrap_or_default());
    } else {
        out!("{table}");
    }
    Ok(())
}

fn fail(what: impl Into<String>) -> Error {
    Error::io("bench", std::io::Error::other(what.into()))
}

async fn bench(args: &Args, dir: &Path, pg_sender: Option<&str>) -> Result<Report, Error> {
    let soak = match &args.soak {
        Some(s) => Some(parse_duration(s).map_err(|e| fail(format!("--soak: {e}")))?),
        None => None,
    };
    if args.documents == 0 && soak.is_none() {
        return Err(fail("--documents must be at least 1"));
    }
    let pki = nodes::find_pki(args.pki.as_deref())?;
    // The configurations live in `dir`: relative paths in them would resolve there.
    let pki = std::fs::canonicalize(&pki).map_err(|e| Error::io(pki.display().to_string(), e))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // First, on a quiet machine: the RSA ceiling.
    let sign_rate = if args.openssl_seconds > 0 {
        eprintln!(
            "measuring openssl speed rsa2048 ({} s)…",
            args.openssl_seconds
        );
        report::openssl_sign_rate(args.openssl_seconds)
    } else {
        None
    };

    let store_template = match pg_sender {
        // The sender on the run's PostgreSQL database, the receiver on SQLite.
        Some(_) => "sqlite://{dir}/{node}.db".to_owned(),
        None => args
            .store
            .clone()
            .unwrap_or_else(|| "sqlite://{dir}/{node}.db".into()),
    };
    if !store_template.contains("{node}") {
        return Err(fail(
            "--store must contain {node}: the two nodes need their own stores",
        ));
    }
    if args.replicas > 1 && pg_sender.is_none() {
        return Err(fail(
            "--replicas needs a postgres:// --store (replicas share one database)",
        ));
    }
    let store = |node: &str| match (node, pg_sender) {
        ("sender", Some(url)) => url.to_owned(),
        _ => store_template
            .replace("{dir}", &dir.display().to_string())
            .replace("{node}", node),
    };
    let store_shown = match pg_sender {
        Some(url) => format!(
            "{} (sender, {} replica{}); receiver {}",
            Backend::shown(url),
            args.replicas,
            if args.replicas == 1 { "" } else { "s" },
            store("receiver")
        ),
        None => store_template.clone(),
    };
    let write = |name: &str, text: String| -> Result<PathBuf, Error> {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).map_err(|e| Error::io(path.display().to_string(), e))?;
        Ok(path)
    };
    // Both nodes bind port 0 and report what they bound (`serve --ready-file`): the receiver
    // first, so that the sender's configuration names its real peer port. The receiver never
    // pushes (statuses are not sent back), so the sender's URL in its configuration only
    // has to be well formed: the peer is recognised by its client certificate.
    let sender_token = nodes::new_token();
    let receiver_token = nodes::new_token();
    let receiver_cfg = write(
        "receiver",
        nodes::config_text(
            "receiver",
            &store("receiver"),
            &pki,
            RECEIVER_CODE,
            "Ủy ban nhân dân tỉnh Nghệ An",
            "ubnd-nghean",
            &receiver_token,
            ("node-nghean", 0),
            Some((
                "sender",
                "https://127.0.0.1:1",
                "gialai.node.lienthong.test",
                SENDER_CODE,
            )),
            None,
        ),
    )?;
    eprintln!("starting the nodes in {}…", dir.display());
    let receiver = nodes::start("receiver", &receiver_cfg, dir).await?;
    let sender_cfg = write(
        "sender",
        nodes::config_text(
            "sender",
            &store("sender"),
            &pki,
            SENDER_CODE,
            "Sở Thông tin và Truyền thông tỉnh Gia Lai",
            "stttt-gialai",
            &sender_token,
            ("node-gialai", 0),
            Some((
                "receiver",
                &format!("https://{}", receiver.peer_at),
                "nghean.node.lienthong.test",
                RECEIVER_CODE,
            )),
            args.in_flight,
        ),
    )?;
    let mut senders = vec![nodes::start("sender", &sender_cfg, dir).await?];
    for name in REPLICA_NAMES.iter().take(args.replicas as usize - 1) {
        senders.push(nodes::start(name, &sender_cfg, dir).await?);
    }
    let replica_urls: Vec<String> = senders.iter().map(|s| s.base_url.clone()).collect();
    let sender = Senders(senders);
    let clerk =
        Clerk::new(&sender.base_url(), &sender_token, args.size)?.across(replica_urls.clone());

    if args.warmup > 0 {
        // Warming connections, caches and the allocator needs no large files: 50 documents of
        // 100 MB at once would take minutes and gigabytes before anything is measured.
        let warm_size = args.size.min(WARMUP_MAX_SIZE);
        eprintln!("warming up ({} documents of {warm_size} B)…", args.warmup);
        let warm = Clerk::new(&sender.base_url(), &sender_token, warm_size)?.across(replica_urls);
        let w = warm
            .closed_loop(args.warmup, args.concurrency.min(args.warmup))
            .await;
        check_errors(&w)?;
        warm.wait_delivered(args.warmup as u64, Duration::from_secs(120))
            .await
            .map_err(fail)?;
    }
    let pids = sender.pids().into_iter().map(|p| ("sender", p));
    for (name, pid) in pids.chain([("receiver", receiver.pid())]) {
        if !nodes::reset_peak_rss(pid) {
            eprintln!("cannot reset the peak RSS of the {name}: it includes the warm-up");
        }
    }

    let attack = if args.flood > 0 {
        let settle =
            parse_duration(&args.flood_settle).map_err(|e| fail(format!("--flood-settle: {e}")))?;
        let clerk_at = receiver
            .base_url
            .trim_start_matches("http://")
            .parse()
            .map_err(|_| fail(format!("receiver address {}", receiver.base_url)))?;
        let target = flood::Target {
            peer: receiver.peer_at,
            peer_dns: "nghean.node.lienthong.test".into(),
            clerk: clerk_at,
            clerk_token: receiver_token.clone(),
            n: args.flood,
            sources: args.flood_sources,
        };
        eprintln!(
            "flooding the receiver: {n} silent connections to each listener and {n} trickled \
             bodies from {} addresses, {} s before sending…",
            args.flood_sources,
            settle.as_secs_f64(),
            n = args.flood
        );
        let f = flood::Flood::start(&target, &pki)?;
        let sampler = flood::Sampler::start(receiver.pid());
        tokio::time::sleep(settle).await;
        Some((f, sampler))
    } else {
        None
    };
    let opened_before = attack.as_ref().map_or(0, |(f, _)| f.opened());

    let before = (sender.stats(), receiver.stats(), own_stats());
    let mut samples: Vec<(f64, f64, f64)> = Vec::new();
    let started = now_ms();
    let outcome = match soak {
        None => {
            eprintln!(
                "sending {} documents of {} B, {} at a time…",
                args.documents, args.size, args.concurrency
            );
            clerk.closed_loop(args.documents, args.concurrency).await
        }
        Some(d) => {
            eprintln!("soak: {} documents/s for {} s…", args.rate, d.as_secs());
            let rp = receiver.pid();
            clerk
                .open_loop(args.rate, d, args.concurrency.max(1) * 4, |_| {
                    let s = sender.stats();
                    let r = nodes::proc_stats(rp).unwrap_or_default();
                    samples.push(((now_ms() - started) / 1000.0, s.rss_mb, r.rss_mb));
                })
                .await
        }
    };
    check_errors(&outcome)?;
    let total = (args.warmup + outcome.submitted.len()) as u64;
    let timeout = Duration::from_secs(120 + outcome.submitted.len() as u64 / 20);
    let waited = clerk.wait_delivered(total, timeout).await;
    let after = (sender.stats(), receiver.stats(), own_stats());
    let flood_report = match attack {
        Some((f, sampler)) => {
            let opened = f.opened() - opened_before;
            // Read the receiver's counters while the flood still runs: its clerk listener
            // answering is part of what is measured.
            let report = flood::report(
                &clerk,
                &sender.base_url(),
                &receiver.base_url,
                opened,
                sampler.stop(),
                (args.flood, args.flood_sources),
                &outcome,
            )
            .await;
            f.stop();
            Some(report)
        }
        None => {
            waited.map_err(fail)?;
            None
        }
    };

    let delivered = clerk.delivered_at().await.map_err(fail)?;
    let mut latencies = Vec::with_capacity(outcome.submitted.len());
    let mut last = started;
    for s in &outcome.submitted {
        let Some(at) = delivered.get(&s.id) else {
            if flood_report.is_some() {
                continue; // counted as not delivered in the flood report
            }
            return Err(fail(format!("document {} has no receipt time", s.id)));
        };
        latencies.push((s.started_ms, at - s.started_ms));
        last = last.max(*at);
    }
    let elapsed_s = ((last - started) / 1000.0).max(1e-3);
    let n = latencies.len();
    let mut sorted: Vec<f64> = latencies.iter().map(|(_, l)| *l).collect();
    sorted.sort_by(f64::total_cmp);
    let per_doc = |a: f64, b: f64| (b - a) * 1000.0 / n.max(1) as f64;
    let cpu_sender = per_doc(before.0.cpu_s, after.0.cpu_s);
    let cpu_receiver = per_doc(before.1.cpu_s, after.1.cpu_s);
    let docs_per_sec = n as f64 / elapsed_s;
    let ceiling = sign_rate.map(|r| cores as f64 * r / 2.0);
    let soak_report = soak.map(|d| soak_report(args.rate, d, started, &latencies, &samples));
    Ok(Report {
        version: env!("CARGO_PKG_VERSION"),
        started_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        machine: report::machine(),
        cores,
        store: store_shown,
        replicas: args.replicas,
        size_bytes: args.size,
        concurrency: args.concurrency,
        documents: n,
        errors: outcome.errors,
        elapsed_s,
        docs_per_sec,
        p50_ms: quantile(&sorted, 0.50),
        p95_ms: quantile(&sorted, 0.95),
        p99_ms: quantile(&sorted, 0.99),
        max_ms: sorted.last().copied().unwrap_or(0.0),
        cpu_ms_per_doc: cpu_sender + cpu_receiver,
        cpu_ms_per_doc_sender: cpu_sender,
        cpu_ms_per_doc_receiver: cpu_receiver,
        cpu_ms_per_doc_client: per_doc(before.2.cpu_s, after.2.cpu_s),
        store_cpu_ms_per_doc_sender: per_doc(before.0.store_cpu_s, after.0.store_cpu_s),
        store_cpu_ms_per_doc_receiver: per_doc(before.1.store_cpu_s, after.1.store_cpu_s),
        peak_rss_mb_sender: after.0.peak_rss_mb,
        peak_rss_mb_receiver: after.1.peak_rss_mb,
        openssl_sign_per_sec_per_core: sign_rate,
        rsa_ceiling_docs_per_sec: ceiling,
        ratio_to_rsa_ceiling: ceiling.map(|c| docs_per_sec / c),
        soak: soak_report,
        flood: flood_report,
    })
}

/// The process names (logs, ready files) of sender replicas after the first.
const REPLICA_NAMES: [&str; 7] = [
    "sender-2", "sender-3", "sender-4", "sender-5", "sender-6", "sender-7", "sender-8",
];

/// The sender's processes: one, or `--replicas` sharing a PostgreSQL database.
struct Senders(Vec<nodes::BenchNode>);

impl Senders {
    /// The first replica's clerk API (reads go there; the store is shared).
    fn base_url(&self) -> String {
        self.0
            .first()
            .map(|n| n.base_url.clone())
            .unwrap_or_default()
    }

    fn pids(&self) -> Vec<u32> {
        self.0.iter().map(|n| n.pid()).collect()
    }

    /// The replicas as one sender: CPU times and current RSS summed, peak RSS the largest (a
    /// replica's own bound is what the 300 MB goal is about).
    fn stats(&self) -> nodes::ProcStats {
        let mut sum = nodes::ProcStats::default();
        for s in self.0.iter().map(|n| n.stats()) {
            sum.cpu_s += s.cpu_s;
            sum.store_cpu_s += s.store_cpu_s;
            sum.rss_mb += s.rss_mb;
            sum.peak_rss_mb = sum.peak_rss_mb.max(s.peak_rss_mb);
        }
        sum
    }
}

/// The largest attachment of a warm-up document.
const WARMUP_MAX_SIZE: usize = 1024 * 1024;

fn own_stats() -> nodes::ProcStats {
    nodes::proc_stats(std::process::id()).unwrap_or_default()
}

/// A benchmark with refused submissions measures nothing useful: stop and say why.
fn check_errors(o: &Outcome) -> Result<(), Error> {
    match &o.first_error {
        Some(e) => Err(fail(format!("{} submissions failed; first: {e}", o.errors))),
        None => Ok(()),
    }
}

/// Splits a soak into windows (a minute, or a tenth of the run if shorter, at least 5 s) and
/// compares the last third with the first third, the first window (warm-up) left out.
fn soak_report(
    rate: f64,
    duration: Duration,
    started: f64,
    latencies: &[(f64, f64)],
    samples: &[(f64, f64, f64)],
) -> SoakReport {
    let total = duration.as_secs_f64();
    let width = (total / 10.0).clamp(5.0, 60.0);
    let count = (total / width).ceil().max(1.0) as usize;
    let mut windows = Vec::with_capacity(count);
    for i in 0..count {
        let (lo, hi) = (i as f64 * width, (i + 1) as f64 * width);
        let mut lat: Vec<f64> = latencies
            .iter()
            .filter(|(s, _)| {
                let t = (s - started) / 1000.0;
                t >= lo && t < hi
            })
            .map(|(_, l)| *l)
            .collect();
        lat.sort_by(f64::total_cmp);
        let in_window: Vec<&(f64, f64, f64)> =
            samples.iter().filter(|s| s.0 >= lo && s.0 < hi).collect();
        let mean = |f: fn(&(f64, f64, f64)) -> f64| {
            in_window.iter().map(|s| f(s)).sum::<f64>() / in_window.len().max(1) as f64
        };
        windows.push(Window {
            start_s: lo,
            documents: lat.len(),
            p50_ms: quantile(&lat, 0.5),
            p99_ms: quantile(&lat, 0.99),
            rss_mb_sender: mean(|s| s.1),
            rss_mb_receiver: mean(|s| s.2),
        });
    }
    let steady: Vec<&Window> = windows.iter().skip(1).collect();
    let third = (steady.len() / 3).max(1);
    let avg = |ws: &[&Window], f: fn(&Window) -> f64| {
        ws.iter().map(|w| f(w)).sum::<f64>() / ws.len().max(1) as f64
    };
    let (first, last) = if steady.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        (
            steady[..third.min(steady.len())].to_vec(),
            steady[steady.len().saturating_sub(third)..].to_vec(),
        )
    };
    let p99 = (avg(&first, |w| w.p99_ms), avg(&last, |w| w.p99_ms));
    let rss = (
        avg(&first, |w| w.rss_mb_sender + w.rss_mb_receiver),
        avg(&last, |w| w.rss_mb_sender + w.rss_mb_receiver),
    );
    SoakReport {
        rate_per_sec: rate,
        duration_s: total,
        windows,
        p99_growth: ratio(p99),
        rss_growth: ratio(rss),
        flat: flat(p99, rss),
    }
}

/// `last / first`, 1 when there is nothing to compare.
fn ratio((first, last): (f64, f64)) -> f64 {
    if first > 0.0 { last / first } else { 1.0 }
}

/// Growth that counts: p99 up by half *and* by more than [`P99_NOISE_MS`], RSS (both nodes) up
/// by a fifth *and* by more than [`RSS_NOISE_MB`]. A ratio alone calls 10 → 16 ms "not flat",
/// which nobody could notice; an amount alone would ignore the scale of the run.
fn flat(p99_ms: (f64, f64), rss_mb: (f64, f64)) -> bool {
    let grew = |(first, last): (f64, f64), factor: f64, noise: f64| {
        last > first * factor && last - first > noise
    };
    !grew(p99_ms, 1.5, P99_NOISE_MS) && !grew(rss_mb, 1.2, RSS_NOISE_MB)
}

/// A p99 change smaller than this is noise: a tenth of the 250 ms target.
const P99_NOISE_MS: f64 = 25.0;
/// An RSS change (both nodes together) smaller than this is noise (allocator arenas, caches).
const RSS_NOISE_MB: f64 = 8.0;

#[cfg(test)]
mod tests {
    use super::flat;

    #[test]
    fn growth_counts_only_when_it_is_both_large_and_relative() {
        // The 60 s run at 300/s: p99 10 → 15 ms, RSS flat.
        assert!(flat((10.0, 15.0), (70.3, 70.4)));
        // Latency that doubles by hundreds of milliseconds, or a queue that builds.
        assert!(!flat((90.0, 400.0), (70.0, 71.0)));
        // The 2026-11-25 soak: RSS 62 → 101 MiB after a stall.
        assert!(!flat((100.0, 90.0), (99.0, 152.0)));
        // Small in amount but large in ratio, or large in amount but small in ratio: noise.
        assert!(flat((1.0, 20.0), (10.0, 17.0)));
        assert!(flat((1000.0, 1400.0), (400.0, 470.0)));
    }
}
