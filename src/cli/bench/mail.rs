//! `lienthong bench --mail-env FILE`: the mail channel measured against real mail servers — the
//! Dovecot and SMTP relay that `scripts/mail-harness.sh start DIR` runs on loopback and
//! describes in `DIR/env` (the [`MailEnv`]).
//!
//! **Outbound.** One `lienthong serve` node (Sở TT&TT Gia Lai, the test PKI) whose `[mail]`
//! routes a mail-only commune (UBND xã Ia Kha) to the harness's commune mailbox. Documents are
//! submitted through the node's real clerk API, as in the two-node bench; each is numbered,
//! signed, committed, then composed into a mail and handed to the relay by the outbox. The run
//! is measured from the first submission until every delivery is `delivered` (the relay
//! accepted the mail) *and* every mail is in the commune's Dovecot mailbox (counted over IMAP,
//! by the bench's own session, never by the node's reader). Latency is submit → relayed: from
//! the clerk's request to the `delivered_at` the node committed on the relay's reply.
//!
//! **Inbound.** Signed `.edxml` mails — documents of UBND tỉnh Nghệ An, signed with its test
//! key, composed as another lienthong bridge composes them — are put into the mailbox a node
//! reads (Dovecot's LMTP) *before* that node starts; the clock starts when it is spawned and
//! stops when its mail log holds every mail, each taken in as a `document`, and the mailbox is
//! empty. Each mail taken in is verified, stored and answered with a signed 01 receipt that goes
//! back by mail to the sending mailbox; when every receipt has been relayed is reported too.
//!
//! Reported beside the rates: the machine's RSA-2048 rate from `openssl speed`, and the CPU of
//! the node and of the mail servers (Dovecot and the relay, their whole process trees) per
//! document, from `/proc` — on a small machine the servers share the cores with the node.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt as _;
use lienthong::Error;
use lienthong::edxml::{self, Attachment, DocumentCode, Package, samples};
use lienthong::mail::address::{Address, Mailbox};
use lienthong::mail::compose::{self, PackageMail};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, BufWriter};
use tokio::net::TcpStream;

use super::load::{Clerk, now_ms, open_loop_count};
use super::nodes::{self, BenchNode, SENDER_CODE};
use super::report::{self, quantile};
use super::{Args, WARMUP_MAX_SIZE, check_errors, fail, own_stats};

/// The mail-only commune the outbound documents go to (Ủy ban nhân dân xã Ia Kha): a
/// `[[mail.route]]` to the harness's commune mailbox.
pub const COMMUNE_CODE: &str = "000.21.33.H21";

/// The mail servers to measure against, as `scripts/mail-harness.sh start DIR` writes them to
/// `DIR/env` (shell assignments, `KEY=VALUE` a line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailEnv {
    /// The name the servers' certificate carries (`localhost`); they listen on 127.0.0.1.
    pub host: String,
    /// The CA (PEM) the servers' certificate chains to.
    pub ca: PathBuf,
    /// Plain IMAP (the bench's own counting session, on loopback).
    pub imap_port: u16,
    /// IMAP over TLS (the node's mailbox reader).
    pub imaps_port: u16,
    /// Dovecot's LMTP (the inbound mails are put in through it).
    pub lmtp_port: u16,
    /// SMTP with STARTTLS and AUTH (the node's relay).
    pub smtp_port: u16,
    /// The relay's submission account.
    pub smtp: Account,
    /// The mailbox the inbound node reads.
    pub reader: Account,
    /// The mail-only commune's mailbox: where the outbound documents arrive.
    pub commune: Account,
    /// The mailbox the inbound mails come from, where their receipts go back.
    pub official: Account,
    /// Dovecot's master (`dovecot`) and the relay (`relay`), when the file names them: their
    /// CPU is reported.
    pub server_pids: Vec<(&'static str, u32)>,
}

/// CPU seconds of each mail server, by name.
type ServersCpu = BTreeMap<&'static str, f64>;

/// CPU milliseconds per document of the mail servers over a span, by name, from the readings
/// before and after it; the sum of them too.
fn servers_per_doc(
    before: Option<ServersCpu>,
    after: Option<ServersCpu>,
    n: usize,
) -> (Option<f64>, BTreeMap<&'static str, f64>) {
    let (Some(before), Some(after)) = (before, after) else {
        return (None, BTreeMap::new());
    };
    let each: BTreeMap<&'static str, f64> = after
        .iter()
        .filter_map(|(name, b)| {
            let a = before.get(name)?;
            Some((*name, (b - a) * 1000.0 / n.max(1) as f64))
        })
        .collect();
    (Some(each.values().sum()), each)
}

/// Where a measured span began: the machine's busy time, this process's CPU, the clock.
struct Span {
    busy_s: Option<f64>,
    own_s: f64,
    at: Instant,
}

impl Span {
    fn start() -> Span {
        Span {
            busy_s: nodes::machine_busy_s(),
            own_s: own_stats().cpu_s,
            at: Instant::now(),
        }
    }

    /// From the start until now, in cores' worth of CPU: how busy the whole machine was, and
    /// how much of that was neither the node (`node_s`), the mail servers (`servers_s`) nor the
    /// bench — a shared machine's other work (the servers too when their processes are not
    /// known).
    fn cores(&self, node_s: f64, servers_s: f64) -> (Option<f64>, Option<f64>) {
        let wall = self.at.elapsed().as_secs_f64().max(1e-3);
        let Some(busy) = nodes::machine_busy_s().zip(self.busy_s).map(|(b, a)| b - a) else {
            return (None, None);
        };
        let own = own_stats().cpu_s - self.own_s;
        let others = ((busy - node_s - servers_s - own) / wall).max(0.0);
        (Some(busy / wall), Some(others))
    }
}

/// The mail servers' CPU seconds between two readings, all together (0 when unknown).
fn servers_delta_s(before: &Option<ServersCpu>, after: &Option<ServersCpu>) -> f64 {
    match (before, after) {
        (Some(b), Some(a)) => a.iter().map(|(k, v)| v - b.get(k).unwrap_or(v)).sum(),
        _ => 0.0,
    }
}

/// A mailbox account of the harness (test passwords, loopback only).
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub address: String,
    pub password: String,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Account({}, …)", self.address)
    }
}

impl MailEnv {
    /// Reads `path`. Every value the bench needs must be there; the servers' process ids are
    /// optional.
    pub fn read(path: &Path) -> Result<MailEnv, Error> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), e))?;
        Self::parse(&text).map_err(|e| fail(format!("--mail-env {}: {e}", path.display())))
    }

    /// The assignments of `text`: `KEY=VALUE`, the value bare, `'…'`, `"…"` or with backslash
    /// escapes (as bash's `printf %q` writes a path); comments and blank lines skipped.
    pub fn parse(text: &str) -> Result<MailEnv, String> {
        let mut vars = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let Some((key, value)) = line.split_once('=') else {
                return Err(format!("line {}: not KEY=VALUE", n + 1));
            };
            let value = unquote(value).ok_or_else(|| {
                format!(
                    "line {}: {key}: a value this reader does not unquote",
                    n + 1
                )
            })?;
            vars.insert(key.trim().to_owned(), value);
        }
        let get = |key: &str| -> Result<String, String> {
            vars.get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| format!("{key} is missing"))
        };
        let port = |key: &str| -> Result<u16, String> {
            let v = get(key)?;
            v.parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{key}={v:?} is not a port"))
        };
        let account = |user: &str, password: &str| -> Result<Account, String> {
            Ok(Account {
                address: get(user)?,
                password: get(password)?,
            })
        };
        let mut server_pids = Vec::new();
        for (name, key) in [("dovecot", "MAIL_DOVECOT_PID"), ("relay", "MAIL_SMTP_PID")] {
            if let Some(v) = vars.get(key) {
                let pid = v
                    .parse()
                    .map_err(|_| format!("{key}={v:?} is not a process id"))?;
                server_pids.push((name, pid));
            }
        }
        Ok(MailEnv {
            host: vars
                .get("MAIL_HOST")
                .cloned()
                .unwrap_or_else(|| "localhost".into()),
            ca: PathBuf::from(get("MAIL_CA")?),
            imap_port: port("MAIL_IMAP_PORT")?,
            imaps_port: port("MAIL_IMAPS_PORT")?,
            lmtp_port: port("MAIL_LMTP_PORT")?,
            smtp_port: port("MAIL_SMTP_PORT")?,
            smtp: account("MAIL_SMTP_USER", "MAIL_SMTP_PASSWORD")?,
            reader: account("MAIL_USER", "MAIL_PASSWORD")?,
            commune: account("MAIL_COMMUNE_USER", "MAIL_COMMUNE_PASSWORD")?,
            official: account("MAIL_OFFICIAL_USER", "MAIL_OFFICIAL_PASSWORD")?,
            server_pids,
        })
    }

    /// CPU time so far of each mail server's process tree, by name (`None` when the file names
    /// none or one is gone).
    fn servers_cpu_s(&self) -> Option<ServersCpu> {
        if self.server_pids.is_empty() {
            return None;
        }
        let table = nodes::process_table();
        self.server_pids
            .iter()
            .map(|(name, pid)| Some((*name, nodes::tree_cpu_s(&table, *pid)?)))
            .collect()
    }
}

/// One shell word as bash writes it: bare (backslash escapes allowed), or wholly in single or
/// double quotes. `None` for anything that would need a shell to read (`$`, backquotes, `$'…'`).
fn unquote(v: &str) -> Option<String> {
    let v = v.trim();
    if let Some(inner) = v.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return (!inner.contains('\'')).then(|| inner.to_owned());
    }
    if let Some(inner) = v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        if inner.contains(['$', '`', '\\', '"']) {
            return None;
        }
        return Some(inner.to_owned());
    }
    if v.contains(['$', '`', '\'', '"']) {
        return None;
    }
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next()?);
        } else {
            out.push(c);
        }
    }
    Some(out)
}

// --- the report --------------------------------------------------------------------------------

/// What one mail benchmark run measured. Field names are stable: scripts compare runs.
#[derive(Debug, Serialize)]
pub struct MailReport {
    pub version: &'static str,
    /// When the run began (RFC 3339, UTC).
    pub started_at: String,
    pub machine: String,
    pub cores: usize,
    /// The attachment of each document (outbound) and of each mailed package (inbound).
    pub size_bytes: usize,
    /// Clerk submissions in flight at once (outbound).
    pub concurrency: usize,
    /// RSA-2048 signatures per second on one core, from `openssl speed` on this machine.
    pub openssl_sign_per_sec_per_core: Option<f64>,
    /// cores × sign rate: a document by mail costs one RSA-2048 signature (the sender's; a
    /// mailbox signs no receipt), and so does a mail taken in (its 01 receipt).
    pub rsa_ceiling_docs_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound: Option<Outbound>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound: Option<Inbound>,
}

/// Documents through the mail channel into the commune's mailbox.
#[derive(Debug, Serialize)]
pub struct Outbound {
    /// The held submission rate (`--mail-rate`); `None`: a closed loop of `concurrency`.
    pub rate_per_sec: Option<f64>,
    /// Measured documents, each relayed (warm-up excluded).
    pub documents: usize,
    pub errors: usize,
    /// New mails counted in the commune's mailbox over the measured run.
    pub in_mailbox: u64,
    /// The size of the last of them as Dovecot stores it (`RFC822.SIZE`).
    pub mail_bytes: Option<u64>,
    /// First submission → every delivery `delivered` and every mail in the mailbox.
    pub elapsed_s: f64,
    pub docs_per_sec: f64,
    /// Submit → relayed (the relay's acceptance, committed as `delivered_at`).
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub cpu_ms_per_doc_node: f64,
    /// The part of `cpu_ms_per_doc_node` spent on the store's threads.
    pub store_cpu_ms_per_doc_node: f64,
    /// Dovecot and the relay (their process trees), when the environment file names them.
    pub cpu_ms_per_doc_mail_servers: Option<f64>,
    /// The same, each server apart (`dovecot`, `relay`).
    pub cpu_ms_per_doc_by_mail_server: BTreeMap<&'static str, f64>,
    /// The bench's own clerk client and IMAP counter.
    pub cpu_ms_per_doc_client: f64,
    /// Peak RSS of the node during the measured run (the warm-up's peak reset).
    pub peak_rss_mb_node: f64,
    pub ratio_to_rsa_ceiling: Option<f64>,
    /// How busy the whole machine was over the measured run, in cores (of `cores`): below
    /// them, the channel waited on something other than CPU.
    pub machine_busy_cores: Option<f64>,
    /// Cores' worth of CPU used meanwhile by other processes than the node, the mail servers
    /// and the bench (on a shared machine: how disturbed the run was).
    pub other_processes_cores: Option<f64>,
}

/// Signed `.edxml` mails taken in from the node's mailbox.
#[derive(Debug, Serialize)]
pub struct Inbound {
    pub mails: usize,
    /// The size of each mail as put into the mailbox (the largest, if they differ).
    pub mail_bytes: u64,
    /// The node spawned → every mail in its mail log as a document and the mailbox empty.
    pub elapsed_s: f64,
    pub mails_per_sec: f64,
    /// The node spawned → every mail's 01 receipt accepted by the relay.
    pub elapsed_with_receipts_s: f64,
    pub mails_per_sec_with_receipts: f64,
    /// The node's whole life up to the last receipt (start-up included).
    pub cpu_ms_per_mail_node: f64,
    pub store_cpu_ms_per_mail_node: f64,
    /// Dovecot and the relay over the same span (the receipts' mails included).
    pub cpu_ms_per_mail_mail_servers: Option<f64>,
    /// The same, each server apart (`dovecot`, `relay`).
    pub cpu_ms_per_mail_by_mail_server: BTreeMap<&'static str, f64>,
    pub peak_rss_mb_node: f64,
    pub ratio_to_rsa_ceiling: Option<f64>,
    /// As for [`Outbound`], over the same span as `elapsed_with_receipts_s`.
    pub machine_busy_cores: Option<f64>,
    /// Cores' worth of CPU used meanwhile by other processes (as for [`Outbound`]).
    pub other_processes_cores: Option<f64>,
}

impl MailReport {
    /// The readable table.
    pub fn table(&self) -> String {
        let opt = |v: Option<f64>, d: usize| v.map_or_else(|| "n/a".into(), |v| format!("{v:.d$}"));
        let mut t = String::new();
        let mut row = |k: &str, v: String| report::push_row(&mut t, k, v);
        row(
            "machine",
            format!("{} ({} cores)", self.machine, self.cores),
        );
        row("attachment size", format!("{} B", self.size_bytes));
        row(
            "openssl RSA-2048 sign/s per core",
            opt(self.openssl_sign_per_sec_per_core, 0),
        );
        row(
            "RSA ceiling (cores × sign/s)",
            opt(self.rsa_ceiling_docs_per_sec, 0),
        );
        if let Some(o) = &self.outbound {
            t.push_str("\n  outbound: clerk API → node → relay (SMTP) → Dovecot mailbox\n");
            let mut row = |k: &str, v: String| report::push_row(&mut t, k, v);
            row(
                "documents",
                match o.rate_per_sec {
                    Some(r) => format!("{} at {r}/s (open loop)", o.documents),
                    None => format!("{} ({} at a time)", o.documents, self.concurrency),
                },
            );
            row("errors", o.errors.to_string());
            row(
                "mails in the mailbox (size)",
                format!(
                    "{} ({})",
                    o.in_mailbox,
                    o.mail_bytes
                        .map_or_else(|| "n/a".into(), |b| format!("{b} B"))
                ),
            );
            row("elapsed", format!("{:.2} s", o.elapsed_s));
            row("documents/s", format!("{:.1}", o.docs_per_sec));
            row(
                "submit→relayed p50/p95/p99/max",
                format!(
                    "{:.1} / {:.1} / {:.1} / {:.1} ms",
                    o.p50_ms, o.p95_ms, o.p99_ms, o.max_ms
                ),
            );
            row(
                "CPU per document",
                format!(
                    "node {:.2} ms (store {:.2}), client {:.2} ms",
                    o.cpu_ms_per_doc_node, o.store_cpu_ms_per_doc_node, o.cpu_ms_per_doc_client
                ),
            );
            row(
                "  mail servers",
                servers_text(
                    o.cpu_ms_per_doc_mail_servers,
                    &o.cpu_ms_per_doc_by_mail_server,
                ),
            );
            row("peak RSS node", format!("{:.1} MiB", o.peak_rss_mb_node));
            row("ratio to RSA ceiling", opt(o.ratio_to_rsa_ceiling, 3));
            row(
                "machine busy (of it others), cores",
                format!(
                    "{} ({})",
                    opt(o.machine_busy_cores, 2),
                    opt(o.other_processes_cores, 2)
                ),
            );
        }
        if let Some(i) = &self.inbound {
            t.push_str("\n  inbound: signed .edxml mails in the mailbox → node (IMAP)\n");
            let mut row = |k: &str, v: String| report::push_row(&mut t, k, v);
            row("mails × size", format!("{} × {} B", i.mails, i.mail_bytes));
            row("elapsed (taken in)", format!("{:.2} s", i.elapsed_s));
            row("mails/s taken in", format!("{:.1}", i.mails_per_sec));
            row(
                "… with every receipt relayed",
                format!(
                    "{:.2} s, {:.1} mails/s",
                    i.elapsed_with_receipts_s, i.mails_per_sec_with_receipts
                ),
            );
            row(
                "CPU per mail",
                format!(
                    "node {:.2} ms (store {:.2})",
                    i.cpu_ms_per_mail_node, i.store_cpu_ms_per_mail_node
                ),
            );
            row(
                "  mail servers",
                servers_text(
                    i.cpu_ms_per_mail_mail_servers,
                    &i.cpu_ms_per_mail_by_mail_server,
                ),
            );
            row("peak RSS node", format!("{:.1} MiB", i.peak_rss_mb_node));
            row("ratio to RSA ceiling", opt(i.ratio_to_rsa_ceiling, 3));
            row(
                "machine busy (of it others), cores",
                format!(
                    "{} ({})",
                    opt(i.machine_busy_cores, 2),
                    opt(i.other_processes_cores, 2)
                ),
            );
        }
        t
    }
}

/// "5.72 ms (dovecot 2.10, relay 3.62)", or "n/a".
fn servers_text(total: Option<f64>, each: &BTreeMap<&'static str, f64>) -> String {
    let Some(total) = total else {
        return "n/a".into();
    };
    let parts: Vec<String> = each.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
    format!("{total:.2} ms ({})", parts.join(", "))
}

// --- the run -----------------------------------------------------------------------------------

/// Both directions, as `args` asks: `--documents` through the channel (0: none), then
/// `--mail-inbound` mails taken in (default `--documents`; 0: none).
pub async fn bench(args: &Args, dir: &Path, env_file: &Path) -> Result<MailReport, Error> {
    let started_at = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let env = MailEnv::read(env_file)?;
    let inbound_mails = args.mail_inbound.unwrap_or(args.documents);
    if args.documents == 0 && inbound_mails == 0 {
        return Err(fail(
            "nothing to measure: --documents and --mail-inbound are both 0",
        ));
    }
    let pki = nodes::find_pki(args.pki.as_deref())?;
    let pki = std::fs::canonicalize(&pki).map_err(|e| Error::io(pki.display().to_string(), e))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sign_rate = if args.openssl_seconds > 0 {
        eprintln!(
            "measuring openssl speed rsa2048 ({} s)…",
            args.openssl_seconds
        );
        report::openssl_sign_rate(args.openssl_seconds)
    } else {
        None
    };
    let ceiling = sign_rate.map(|r| cores as f64 * r);
    let run = Run {
        args,
        dir,
        env: &env,
        pki: &pki,
    };
    let outbound = if args.documents > 0 {
        Some(run.outbound(ceiling).await?)
    } else {
        None
    };
    let inbound = if inbound_mails > 0 {
        Some(run.inbound(inbound_mails, ceiling).await?)
    } else {
        None
    };
    Ok(MailReport {
        version: env!("CARGO_PKG_VERSION"),
        started_at,
        machine: report::machine(),
        cores,
        size_bytes: args.size,
        concurrency: args.concurrency,
        openssl_sign_per_sec_per_core: sign_rate,
        rsa_ceiling_docs_per_sec: ceiling,
        outbound,
        inbound,
    })
}

/// What both phases share.
struct Run<'a> {
    args: &'a Args,
    dir: &'a Path,
    env: &'a MailEnv,
    pki: &'a Path,
}

/// The node's two tokens: the clerk's (submissions) and the operator's (the mail log).
struct Tokens {
    clerk: String,
    admin: String,
}

impl Run<'_> {
    /// Writes `<name>.toml` and starts the node; `imap`: whether it reads the mailbox.
    async fn start_node(
        &self,
        name: &'static str,
        imap: bool,
    ) -> Result<(BenchNode, Tokens), Error> {
        let tokens = Tokens {
            clerk: nodes::new_token(),
            admin: nodes::new_token(),
        };
        let store = self
            .args
            .store
            .clone()
            .unwrap_or_else(|| "sqlite://{dir}/{node}.db".into())
            .replace("{dir}", &self.dir.display().to_string())
            .replace("{node}", name);
        let text = config_text(
            name,
            &store,
            self.pki,
            self.env,
            &tokens,
            imap,
            self.args.in_flight,
        );
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).map_err(|e| Error::io(path.display().to_string(), e))?;
        let node = nodes::start(name, &path, self.dir).await?;
        Ok((node, tokens))
    }

    async fn outbound(&self, ceiling: Option<f64>) -> Result<Outbound, Error> {
        let (args, env) = (self.args, self.env);
        eprintln!("starting the node in {}…", self.dir.display());
        let (node, tokens) = self.start_node("mail-out", false).await?;
        let clerk = Clerk::new(&node.base_url, &tokens.clerk, args.size)?.to(COMMUNE_CODE);
        let mut counter = Imap::login(env, &env.commune).await?;
        let in_mailbox_before = counter.count("INBOX").await?;
        let wait_for = |n: usize| {
            Duration::from_secs(120) + Duration::from_secs_f64(n as f64 * per_mail_s(args.size))
        };
        if args.warmup > 0 {
            let warm_size = args.size.min(WARMUP_MAX_SIZE);
            eprintln!(
                "warming up ({} documents of {warm_size} B by mail)…",
                args.warmup
            );
            let warm = Clerk::new(&node.base_url, &tokens.clerk, warm_size)?.to(COMMUNE_CODE);
            let w = warm
                .closed_loop(args.warmup, args.concurrency.min(args.warmup))
                .await;
            check_errors(&w)?;
            warm.wait_delivered(args.warmup as u64, wait_for(args.warmup))
                .await
                .map_err(fail)?;
        }
        let baseline = in_mailbox_before + args.warmup as u64;
        counter
            .wait_count("INBOX", baseline, wait_for(args.warmup))
            .await?;
        if !nodes::reset_peak_rss(node.pid()) {
            eprintln!("cannot reset the peak RSS of the node: it includes the warm-up");
        }

        let span = Span::start();
        // Open loop: the documents spread over `documents / rate` seconds.
        let held = match args.mail_rate {
            Some(r) if r > 0.0 && r.is_finite() => {
                Some((r, Duration::from_secs_f64(args.documents as f64 / r)))
            }
            Some(r) => return Err(fail(format!("--mail-rate {r}: not a positive rate"))),
            None => None,
        };
        let documents = held.map_or(args.documents, |(r, d)| open_loop_count(r, d));
        let before = (node.stats(), env.servers_cpu_s(), own_stats());
        let started = now_ms();
        match held {
            Some((r, _)) => eprintln!(
                "sending {documents} documents of {} B by mail at {r}/s…",
                args.size
            ),
            None => eprintln!(
                "sending {documents} documents of {} B by mail, {} at a time…",
                args.size, args.concurrency
            ),
        }
        // The mailbox is counted alongside, so that its time is when the last mail arrived and
        // not when the bench got round to looking.
        let target = baseline + documents as u64;
        let within = wait_for(documents) + held.map_or(Duration::ZERO, |(_, d)| d);
        let counting = tokio::spawn(async move {
            let seen = counter.wait_count("INBOX", target, within).await;
            (counter, seen)
        });
        let outcome = match held {
            Some((r, d)) => clerk.open_loop(r, d, args.concurrency, |_| {}).await,
            None => clerk.closed_loop(documents, args.concurrency).await,
        };
        check_errors(&outcome)?;
        let total = (args.warmup + outcome.submitted.len()) as u64;
        clerk.wait_delivered(total, within).await.map_err(fail)?;
        let (mut counter, seen) = counting
            .await
            .map_err(|e| fail(format!("the mailbox counter: {e}")))?;
        let (count, in_mailbox_at) = seen?;
        let after = (node.stats(), env.servers_cpu_s(), own_stats());
        let (busy, others) = span.cores(
            after.0.cpu_s - before.0.cpu_s,
            servers_delta_s(&before.1, &after.1),
        );
        let mail_bytes = counter.last_size("INBOX").await.ok().flatten();
        counter.logout().await;

        let delivered = clerk.delivered_at().await.map_err(fail)?;
        let mut sorted = Vec::with_capacity(outcome.submitted.len());
        let mut last = started;
        for s in &outcome.submitted {
            let at = delivered
                .get(&s.id)
                .ok_or_else(|| fail(format!("document {} has no delivered_at", s.id)))?;
            sorted.push(at - s.started_ms);
            last = last.max(*at);
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let elapsed_s = ((last.max(in_mailbox_at) - started) / 1000.0).max(1e-3);
        let per_doc = |a: f64, b: f64| (b - a) * 1000.0 / n.max(1) as f64;
        let docs_per_sec = n as f64 / elapsed_s;
        let (servers, by_server) = servers_per_doc(before.1, after.1, n);
        Ok(Outbound {
            rate_per_sec: held.map(|(r, _)| r),
            documents: n,
            errors: outcome.errors,
            in_mailbox: count - baseline,
            mail_bytes,
            elapsed_s,
            docs_per_sec,
            p50_ms: quantile(&sorted, 0.50),
            p95_ms: quantile(&sorted, 0.95),
            p99_ms: quantile(&sorted, 0.99),
            max_ms: sorted.last().copied().unwrap_or(0.0),
            cpu_ms_per_doc_node: per_doc(before.0.cpu_s, after.0.cpu_s),
            store_cpu_ms_per_doc_node: per_doc(before.0.store_cpu_s, after.0.store_cpu_s),
            cpu_ms_per_doc_mail_servers: servers,
            cpu_ms_per_doc_by_mail_server: by_server,
            cpu_ms_per_doc_client: per_doc(before.2.cpu_s, after.2.cpu_s),
            peak_rss_mb_node: after.0.peak_rss_mb,
            ratio_to_rsa_ceiling: ceiling.map(|c| docs_per_sec / c),
            machine_busy_cores: busy,
            other_processes_cores: others,
        })
    }

    async fn inbound(&self, mails: usize, ceiling: Option<f64>) -> Result<Inbound, Error> {
        let env = self.env;
        let mut counter = Imap::login(env, &env.reader).await?;
        let waiting = counter.count("INBOX").await?;
        if waiting != 0 {
            return Err(fail(format!(
                "{}'s INBOX holds {waiting} mails already: the inbound figure needs an empty \
                 mailbox (start a fresh harness)",
                env.reader.address
            )));
        }
        eprintln!(
            "putting {mails} signed .edxml mails ({} B attachment each) into {} over LMTP…",
            self.args.size, env.reader.address
        );
        let mail_bytes = self.fill_mailbox(mails).await?;
        let filled = counter.count("INBOX").await?;
        if filled != mails as u64 {
            return Err(fail(format!(
                "{} holds {filled} mails after {mails} were delivered over LMTP",
                env.reader.address
            )));
        }

        let span = Span::start();
        let servers_before = env.servers_cpu_s();
        let started = now_ms();
        let t0 = Instant::now();
        let (node, tokens) = self.start_node("mail-in", true).await?;
        eprintln!("the node is taking them in…");
        let within = Duration::from_secs(120)
            + Duration::from_secs_f64(mails as f64 * per_mail_s(self.args.size));
        let clerk = Clerk::new(&node.base_url, &tokens.clerk, 0)?;
        // Taken in: the node counts each mail as its log records it; the mailbox is empty once
        // every mail was moved out of it.
        let taken_at = loop {
            let taken = metric_sum(&clerk.metrics().await, "lienthong_mail_taken_in_total");
            if taken >= mails as u64 && counter.count("INBOX").await? == 0 {
                break now_ms();
            }
            if t0.elapsed() > within {
                return Err(fail(format!(
                    "{taken} of {mails} mails taken in after {} s (see {})",
                    within.as_secs(),
                    self.dir.join("mail-in.log").display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // Every 01 receipt goes back by mail: one delivery each.
        clerk
            .wait_delivered(mails as u64, within)
            .await
            .map_err(fail)?;
        let receipts_at = now_ms();
        let stats = node.stats();
        let servers_after = env.servers_cpu_s();
        let (busy, others) = span.cores(
            stats.cpu_s,
            servers_delta_s(&servers_before, &servers_after),
        );
        counter.logout().await;

        let outcomes = mail_log_outcomes(&node.base_url, &tokens.admin).await?;
        let documents = outcomes.get("document").copied().unwrap_or(0);
        if documents != mails || outcomes.len() != 1 {
            return Err(fail(format!(
                "the mail log holds {outcomes:?}, expected {mails} documents"
            )));
        }
        let elapsed_s = ((taken_at - started) / 1000.0).max(1e-3);
        let with_receipts_s = ((receipts_at - started) / 1000.0).max(1e-3);
        let per_mail = |s: f64| s * 1000.0 / mails as f64;
        let mails_per_sec = mails as f64 / elapsed_s;
        let (servers, by_server) = servers_per_doc(servers_before, servers_after, mails);
        Ok(Inbound {
            mails,
            mail_bytes,
            elapsed_s,
            mails_per_sec,
            elapsed_with_receipts_s: with_receipts_s,
            mails_per_sec_with_receipts: mails as f64 / with_receipts_s,
            cpu_ms_per_mail_node: per_mail(stats.cpu_s),
            store_cpu_ms_per_mail_node: per_mail(stats.store_cpu_s),
            cpu_ms_per_mail_mail_servers: servers,
            cpu_ms_per_mail_by_mail_server: by_server,
            peak_rss_mb_node: stats.peak_rss_mb,
            ratio_to_rsa_ceiling: ceiling.map(|c| mails_per_sec / c),
            machine_busy_cores: busy,
            other_processes_cores: others,
        })
    }

    /// Signs `mails` documents of Nghệ An's People's Committee to Sở TT&TT Gia Lai, each with
    /// one attachment of `--size` random bytes, composes each into the mail another bridge
    /// would send, and delivers them to the reader's mailbox over LMTP. The largest mail's size.
    async fn fill_mailbox(&self, mails: usize) -> Result<u64, Error> {
        let env = self.env;
        let signer = lienthong::signer::KeyFileSigner::from_files(
            &self.pki.join("ubnd-nghean.key.pem"),
            &self.pki.join("ubnd-nghean.cert.pem"),
            Some(&self.pki.join("chain.pem")),
        )?;
        let from = Mailbox::new(
            "Văn thư Ủy ban nhân dân tỉnh Nghệ An",
            address(&env.official.address)?,
        );
        let to = Mailbox::new(
            "Sở Thông tin và Truyền thông tỉnh Gia Lai",
            address(&env.reader.address)?,
        );
        let mut lmtp = Lmtp::connect(env.lmtp_port).await?;
        let mut largest = 0u64;
        for i in 0..mails {
            let raw = tokio::task::block_in_place(|| {
                inbound_mail(i, self.args.size, &signer, &from, &to)
            })?;
            largest = largest.max(raw.len() as u64);
            lmtp.deliver(&env.official.address, &env.reader.address, &raw)
                .await?;
        }
        lmtp.quit().await;
        Ok(largest)
    }
}

/// A generous bound on one mail's time through a loaded 2-core machine (it bounds a wait, it
/// decides no figure): 0.5 s, plus 2 s per MiB.
fn per_mail_s(size: usize) -> f64 {
    0.5 + 2.0 * size as f64 / (1024.0 * 1024.0)
}

fn address(s: &str) -> Result<Address, Error> {
    Address::parse(s).map_err(|e| fail(format!("mail address {s:?}: {}", e.message)))
}

/// Mail `i` of the inbound run: a signed document of UBND tỉnh Nghệ An (number `i + 1`) with one
/// attachment of `size` random bytes, as the mail a bridge would send it in.
fn inbound_mail(
    i: usize,
    size: usize,
    signer: &lienthong::signer::KeyFileSigner,
    from: &Mailbox,
    to: &Mailbox,
) -> Result<Vec<u8>, Error> {
    let mut d = samples::new_document();
    d.header.from = samples::recipient();
    d.header.to = vec![samples::sender()];
    d.header.code = DocumentCode::new(
        u32::try_from(i + 1).map_err(|_| fail("too many mails"))?,
        "UBND-VX",
    );
    d.header.document_id = None;
    d.header.subject = format!("V/v văn bản đo hiệu năng số {}", i + 1);
    let mut data = vec![0u8; size];
    fastrand::fill(&mut data);
    d.attachments = vec![Attachment::new(
        "bao-cao.pdf",
        "application/pdf",
        "Báo cáo (dữ liệu đo hiệu năng)",
        data,
    )];
    let package = Package::Document(d);
    let unsigned = edxml::write(&package)?;
    let signed = lienthong::dsig::sign_package(&unsigned, signer, &edxml::xml::Limits::default())?;
    let composed = compose::package_mail(&PackageMail {
        from,
        to,
        delivery_id: i as i64 + 1,
        message_id_domain: "nghean.gov.vn",
        package: &package,
        signed: &signed,
        signer: None,
        date: OffsetDateTime::now_utc(),
    })
    .map_err(|e| fail(format!("composing inbound mail {i}: {e}")))?;
    Ok(composed.bytes)
}

/// The configuration of the mail bench's node: the bench node's base (no peer: mail is its only
/// channel), an operator token, and `[mail]` through the harness's relay with the commune
/// routed to its mailbox; with `imap`, the reader's mailbox is read too.
fn config_text(
    name: &str,
    store: &str,
    pki: &Path,
    env: &MailEnv,
    tokens: &Tokens,
    imap: bool,
    in_flight: Option<u32>,
) -> String {
    // A TOML basic string (JSON's escapes are TOML's).
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let base = nodes::config_text(
        name,
        store,
        pki,
        SENDER_CODE,
        "Sở Thông tin và Truyền thông tỉnh Gia Lai",
        "stttt-gialai",
        &tokens.clerk,
        ("node-gialai", 0),
        None,
        in_flight,
    );
    let ca = q(&env.ca.display().to_string());
    let imap = if imap {
        format!(
            r#"
[mail.imap]
host = {host}
port = {port}
tls = "implicit"
user = {user}
password = {password}
ca = [{ca}]
poll_every = "1s"
"#,
            host = q(&env.host),
            port = env.imaps_port,
            user = q(&env.reader.address),
            password = q(&env.reader.password),
        )
    } else {
        String::new()
    };
    format!(
        r#"{base}
[[admin]]
name = "bench"
sha256 = "{admin}"

[mail]
from = {from}
from_name = "Hệ thống liên thông văn bản tỉnh Gia Lai"
message_id_domain = "gialai.gov.vn"

[mail.smtp]
host = {host}
port = {smtp_port}
tls = "starttls"
user = {from}
password = {smtp_password}
ca = [{ca}]
{imap}
[[mail.route]]
code = "{COMMUNE_CODE}"
name = "Ủy ban nhân dân xã Ia Kha"
to = {route}
"#,
        admin = hex::encode(lienthong::config::hash_token(&tokens.admin)),
        from = q(&env.smtp.address),
        host = q(&env.host),
        smtp_port = env.smtp_port,
        smtp_password = q(&env.smtp.password),
        route = q(&format!("mail:{}", env.commune.address)),
    )
}

/// The sum of every sample of metric family `name` in a `/metrics` text (all label sets).
fn metric_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let value = if let Some(labels) = rest.strip_prefix('{') {
                labels.split_once("} ")?.1
            } else {
                rest.strip_prefix(' ')?
            };
            value.trim().parse::<u64>().ok()
        })
        .sum()
}

/// The mail log's rows by outcome, read page by page from `GET /admin/v1/mail`.
async fn mail_log_outcomes(base_url: &str, token: &str) -> Result<HashMap<String, usize>, Error> {
    let client = reqwest::Client::new();
    let mut out = HashMap::new();
    let mut before: Option<i64> = None;
    loop {
        let mut url = format!("{base_url}/admin/v1/mail?per_page=1000");
        if let Some(b) = before {
            url.push_str(&format!("&before={b}"));
        }
        let page: serde_json::Value = async {
            client
                .get(&url)
                .bearer_auth(token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await
        }
        .await
        .map_err(|e| fail(format!("the mail log ({url}): {e}")))?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        for item in &items {
            let outcome = item["outcome"].as_str().unwrap_or("(none)").to_owned();
            *out.entry(outcome).or_insert(0) += 1;
        }
        match page["next_before"].as_i64() {
            Some(b) if !items.is_empty() => before = Some(b),
            _ => return Ok(out),
        }
    }
}

// --- the bench's own mail clients ---------------------------------------------------------------

/// The bench's IMAP session (plain IMAP on loopback, async-imap directly): it counts what is in
/// a mailbox, so that the node's own reader is never the witness of what the node sent.
struct Imap {
    session: async_imap::Session<TcpStream>,
    who: String,
}

impl Imap {
    async fn login(env: &MailEnv, account: &Account) -> Result<Imap, Error> {
        let who = format!("IMAP {} on port {}", account.address, env.imap_port);
        let e = |what: &str, err: &dyn std::fmt::Display| fail(format!("{who}: {what}: {err}"));
        let tcp = TcpStream::connect(("127.0.0.1", env.imap_port))
            .await
            .map_err(|err| e("connect", &err))?;
        let mut client = async_imap::Client::new(tcp);
        match client.read_response().await {
            Ok(Some(_)) => {}
            Ok(None) => return Err(e("greeting", &"connection closed")),
            Err(err) => return Err(e("greeting", &err)),
        }
        let session = client
            .login(&account.address, &account.password)
            .await
            .map_err(|(err, _)| e("LOGIN", &err))?;
        Ok(Imap { session, who })
    }

    /// The number of mails in `folder` (`STATUS … (MESSAGES)`: nothing selected, nothing marked).
    async fn count(&mut self, folder: &str) -> Result<u64, Error> {
        let mailbox = self
            .session
            .status(folder, "(MESSAGES)")
            .await
            .map_err(|err| fail(format!("{}: STATUS {folder}: {err}", self.who)))?;
        Ok(u64::from(mailbox.exists))
    }

    /// Polls `folder` every 50 ms until it holds at least `n` mails: the count and when it was
    /// seen (Unix ms).
    async fn wait_count(
        &mut self,
        folder: &str,
        n: u64,
        within: Duration,
    ) -> Result<(u64, f64), Error> {
        let t0 = Instant::now();
        loop {
            let count = self.count(folder).await?;
            if count >= n {
                return Ok((count, now_ms()));
            }
            if t0.elapsed() > within {
                return Err(fail(format!(
                    "{}: {count} mails in {folder} after {} s, expected {n}",
                    self.who,
                    within.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The stored size (`RFC822.SIZE`) of the last mail of `folder`.
    async fn last_size(&mut self, folder: &str) -> Result<Option<u64>, Error> {
        let err = |e: async_imap::error::Error| fail(format!("{}: {e}", self.who));
        let mailbox = self.session.examine(folder).await.map_err(err)?;
        if mailbox.exists == 0 {
            return Ok(None);
        }
        let fetches: Vec<_> = self
            .session
            .fetch("*", "(RFC822.SIZE)")
            .await
            .map_err(err)?
            .try_collect()
            .await
            .map_err(err)?;
        Ok(fetches.iter().find_map(|f| f.size).map(u64::from))
    }

    async fn logout(mut self) {
        let _ = self.session.logout().await;
    }
}

/// A minimal LMTP client (RFC 2033) over one connection: the inbound mails go straight into
/// Dovecot, as a mail server's last hop puts them there.
struct Lmtp {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: BufWriter<tokio::net::tcp::OwnedWriteHalf>,
    port: u16,
}

impl Lmtp {
    async fn connect(port: u16) -> Result<Lmtp, Error> {
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| fail(format!("LMTP on port {port}: connect: {e}")))?;
        let (r, w) = tcp.into_split();
        let mut lmtp = Lmtp {
            reader: BufReader::new(r),
            writer: BufWriter::new(w),
            port,
        };
        lmtp.expect("greeting", '2').await?;
        lmtp.command("LHLO bench.lienthong.test", '2').await?;
        Ok(lmtp)
    }

    /// One reply (its lines joined); an error unless its code starts with `class`.
    async fn expect(&mut self, what: &str, class: char) -> Result<String, Error> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .await
                .map_err(|e| fail(format!("LMTP on port {}: {what}: {e}", self.port)))?;
            if n == 0 {
                return Err(fail(format!(
                    "LMTP on port {}: {what}: connection closed after {all:?}",
                    self.port
                )));
            }
            all.push_str(&line);
            // `250-…` continues a reply, `250 …` ends it.
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
        if all.starts_with(class) {
            Ok(all)
        } else {
            Err(fail(format!(
                "LMTP on port {}: {what}: {}",
                self.port,
                all.trim_end()
            )))
        }
    }

    async fn command(&mut self, line: &str, class: char) -> Result<String, Error> {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .and(self.writer.flush().await)
            .map_err(|e| fail(format!("LMTP on port {}: {line}: {e}", self.port)))?;
        self.expect(line, class).await
    }

    /// Delivers `raw` from `from` to the one recipient `to`; an error unless Dovecot stored it.
    async fn deliver(&mut self, from: &str, to: &str, raw: &[u8]) -> Result<(), Error> {
        self.command(&format!("MAIL FROM:<{from}>"), '2').await?;
        self.command(&format!("RCPT TO:<{to}>"), '2').await?;
        self.command("DATA", '3').await?;
        self.writer
            .write_all(&dot_stuffed(raw))
            .await
            .and(self.writer.flush().await)
            .map_err(|e| fail(format!("LMTP on port {}: data: {e}", self.port)))?;
        // LMTP answers the end of data once per recipient: here one.
        self.expect("end of data", '2').await?;
        Ok(())
    }

    async fn quit(mut self) {
        let _ = self.command("QUIT", '2').await;
    }
}

/// `raw` as SMTP/LMTP data: every line starting with `.` gets one more, CRLF ends the last
/// line, and `.` CRLF ends the data (RFC 5321 §4.5.2).
fn dot_stuffed(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 64 + 8);
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        if out.ends_with(b"\n") {
            out.pop();
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `scripts/mail-harness.sh start DIR` writes (its `printf %q` of a path included).
    const ENV: &str = "# scripts/mail-harness.sh start: TEST servers on loopback\n\
        MAIL_DIR=/tmp/mh.x\\ y\nMAIL_HOST=localhost\nMAIL_CA=/tmp/mh.x\\ y/tls/ca.pem\n\
        MAIL_IMAP_PORT=40001\nMAIL_IMAPS_PORT=40002\nMAIL_LMTP_PORT=40003\n\
        MAIL_SMTP_PORT=40004\nMAIL_SMTPS_PORT=40005\n\
        MAIL_SMTP_USER=lienthong@gialai.gov.vn\nMAIL_SMTP_PASSWORD=mat-khau-gui\n\
        MAIL_USER=vanthu@gialai.gov.vn\nMAIL_PASSWORD=matkhau-thu\n\
        MAIL_COMMUNE_USER=xa-iakha@gialai.gov.vn\nMAIL_COMMUNE_PASSWORD=matkhau-iakha\n\
        MAIL_OFFICIAL_USER=so-tttt@gialai.gov.vn\nMAIL_OFFICIAL_PASSWORD=matkhau-sotttt\n\
        MAIL_ACCOUNTS=vanthu@gialai.gov.vn:matkhau-thu,lienthong@gialai.gov.vn:mat-khau-gui\n\
        MAIL_CONTROL=/tmp/mh.x\\ y/control\nMAIL_DOVECOT_PID=101\nMAIL_SMTP_PID=102\n";

    #[test]
    fn the_harness_environment_file_reads() {
        let env = MailEnv::parse(ENV).unwrap();
        assert_eq!(env.ca, PathBuf::from("/tmp/mh.x y/tls/ca.pem"));
        assert_eq!(
            (env.imap_port, env.imaps_port, env.lmtp_port, env.smtp_port),
            (40001, 40002, 40003, 40004)
        );
        assert_eq!(env.commune.address, "xa-iakha@gialai.gov.vn");
        assert_eq!(env.official.password, "matkhau-sotttt");
        assert_eq!(env.server_pids, vec![("dovecot", 101), ("relay", 102)]);
        // A password never shows in a debug print.
        assert!(!format!("{env:?}").contains("matkhau"), "{env:?}");
    }

    #[test]
    fn a_missing_or_unreadable_value_is_named() {
        let without = ENV.replace("MAIL_LMTP_PORT=40003\n", "");
        assert_eq!(
            MailEnv::parse(&without).unwrap_err(),
            "MAIL_LMTP_PORT is missing"
        );
        let bad_port = ENV.replace("MAIL_SMTP_PORT=40004", "MAIL_SMTP_PORT=smtp");
        assert!(
            MailEnv::parse(&bad_port)
                .unwrap_err()
                .contains("MAIL_SMTP_PORT=\"smtp\" is not a port")
        );
        let shell = ENV.replace("MAIL_PASSWORD=matkhau-thu", "MAIL_PASSWORD=$(cat pw)");
        assert!(
            MailEnv::parse(&shell)
                .unwrap_err()
                .contains("MAIL_PASSWORD")
        );
        assert!(
            MailEnv::parse("just words\n")
                .unwrap_err()
                .contains("line 1")
        );
    }

    #[test]
    fn shell_words_unquote() {
        assert_eq!(unquote("'a b'").as_deref(), Some("a b"));
        assert_eq!(unquote("\"a b\"").as_deref(), Some("a b"));
        assert_eq!(unquote("a\\ b\\\\c").as_deref(), Some("a b\\c"));
        assert_eq!(unquote("$'a\\nb'"), None);
        assert_eq!(unquote("\"$HOME\""), None);
        assert_eq!(unquote("trailing\\"), None);
    }

    /// Per document, by server, and their sum; nothing when a reading is missing.
    #[test]
    fn server_cpu_is_split_per_document() {
        let before: ServersCpu = [("dovecot", 1.0), ("relay", 2.0)].into_iter().collect();
        let after: ServersCpu = [("dovecot", 1.5), ("relay", 3.0)].into_iter().collect();
        let (total, each) = servers_per_doc(Some(before.clone()), Some(after), 100);
        assert_eq!(total, Some(15.0));
        assert_eq!(each.get("dovecot"), Some(&5.0));
        assert_eq!(each.get("relay"), Some(&10.0));
        assert_eq!(
            servers_text(total, &each),
            "15.00 ms (dovecot 5.00, relay 10.00)"
        );
        assert_eq!(servers_per_doc(Some(before), None, 100).0, None);
        assert_eq!(servers_text(None, &BTreeMap::new()), "n/a");
    }

    #[test]
    fn data_is_dot_stuffed_and_terminated() {
        assert_eq!(
            dot_stuffed(b"a\r\n.b\r\n..c\r\n"),
            b"a\r\n..b\r\n...c\r\n.\r\n".to_vec()
        );
        assert_eq!(dot_stuffed(b"no end"), b"no end\r\n.\r\n".to_vec());
        assert_eq!(dot_stuffed(b"bare\n"), b"bare\r\n.\r\n".to_vec());
        assert_eq!(dot_stuffed(b""), b".\r\n".to_vec());
    }

    #[test]
    fn metric_families_are_summed_over_their_labels() {
        let text = "# HELP lienthong_mail_taken_in_total …\n\
            lienthong_mail_taken_in_total{outcome=\"document\"} 7\n\
            lienthong_mail_taken_in_total{outcome=\"quarantined\"} 2\n\
            lienthong_mail_taken_in_total_other 100\n\
            lienthong_mail_bounced_total 3\n";
        assert_eq!(metric_sum(text, "lienthong_mail_taken_in_total"), 9);
        assert_eq!(metric_sum(text, "lienthong_mail_bounced_total"), 3);
        assert_eq!(metric_sum(text, "lienthong_absent"), 0);
    }

    /// Both configurations load: the outbound node (relay and route, no mailbox) and the
    /// inbound one (the mailbox read too), with the harness's values.
    #[test]
    fn the_mail_node_configurations_load() {
        let pki = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/test-only");
        let mut env = MailEnv::parse(ENV).unwrap();
        // The configuration checks its CA files at load.
        env.ca = pki.join("root-ca.cert.pem");
        let tokens = Tokens {
            clerk: "bench-clerk".into(),
            admin: "bench-admin".into(),
        };
        for imap in [false, true] {
            let text = config_text(
                "mail",
                "sqlite:///nonexistent/mail.db",
                &pki,
                &env,
                &tokens,
                imap,
                None,
            );
            let config = lienthong::config::Config::from_toml(&text, &pki, &|_| None)
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            let mail = config.mail.expect("[mail]");
            assert_eq!(mail.routes.len(), 1);
            assert_eq!(mail.routes[0].address, "xa-iakha@gialai.gov.vn");
            assert_eq!(mail.imap.is_some(), imap);
            assert!(config.peers.is_empty());
        }
    }
}
