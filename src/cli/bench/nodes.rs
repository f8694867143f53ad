//! The two nodes a benchmark runs: their configuration (from the test PKI), the `lienthong serve`
//! processes, and what the kernel says about them (CPU time, peak memory).
//!
//! Each node is a separate process of this same binary, so its CPU time and peak RSS are its own
//! and the figures are those of the node a province would run, not of an in-process harness.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lienthong::Error;
use lienthong::config::hash_token;

/// The sending agency (Sở Thông tin và Truyền thông tỉnh Gia Lai) and its test identity.
pub const SENDER_CODE: &str = "000.00.05.H21";
/// The receiving agency (Ủy ban nhân dân tỉnh Nghệ An) and its test identity.
pub const RECEIVER_CODE: &str = "000.00.00.H41";

/// A running node.
pub struct BenchNode {
    pub base_url: String,
    /// Where its mutual-TLS peer endpoint listens (the port it bound, read back).
    pub peer_at: std::net::SocketAddr,
    child: Child,
}

/// What a node process has used so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    /// User plus system CPU time, in seconds.
    pub cpu_s: f64,
    /// Peak resident set (VmHWM), MiB.
    pub peak_rss_mb: f64,
    /// Current resident set (VmRSS), MiB.
    pub rss_mb: f64,
    /// CPU time of the store's threads (see [`is_store_thread`]), in seconds: the part of
    /// `cpu_s` that running SQL costs, hand-offs between the threads included.
    pub store_cpu_s: f64,
}

/// Whether a thread (by its kernel name) runs the store: sqlx's SQLite worker threads
/// (`sqlx-sqlite-worker-N`, cut to 15 bytes by the kernel), where every statement runs, and
/// the group writer (`store-writer`), which drives them. Their CPU is what the store costs.
pub fn is_store_thread(comm: &str) -> bool {
    comm.starts_with("sqlx-sqlite") || comm == "store-writer"
}

impl BenchNode {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stats(&self) -> ProcStats {
        proc_stats(self.pid()).unwrap_or_default()
    }
}

impl Drop for BenchNode {
    fn drop(&mut self) {
        // SIGTERM would be kinder, but the store is throw-away and std has no signal API; a
        // killed node loses nothing it acknowledged anyway (invariant 1).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test PKI folder: `--pki`, else `certs/test-only` under the working directory, else the one
/// of the checkout this binary was built in (`target/<profile>/lienthong`).
pub fn find_pki(given: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let mut candidates = vec![PathBuf::from("certs/test-only")];
    if let Ok(exe) = std::env::current_exe() {
        for up in exe.ancestors().skip(1).take(4) {
            candidates.push(up.join("certs/test-only"));
        }
    }
    candidates
        .into_iter()
        .find(|p| p.join("root-ca.cert.pem").is_file())
        .ok_or_else(|| {
            Error::io(
                "certs/test-only",
                std::io::Error::other(
                    "the test PKI was not found: run from the checkout or pass --pki DIR",
                ),
            )
        })
}

/// A random clerk token (the node stores only its hash).
pub fn new_token() -> String {
    format!("bench-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// The configuration of one bench node: one agency signing with the test identity `identity`,
/// the node's TLS identity and peer port `tls` (0: any free port, read back by [`start`]), and
/// at most one peer (name, `https://` URL, the DNS name its certificate must carry, the code it
/// serves), over mutual TLS as in production — none for the mail bench's node, whose only
/// channel is mail. `store` is the node's store URL; `in_flight` its `retry.in_flight` (`None`:
/// the default).
#[allow(clippy::too_many_arguments)]
pub fn config_text(
    name: &str,
    store: &str,
    pki: &Path,
    code: &str,
    agency_name: &str,
    identity: &str,
    token: &str,
    tls: (&str, u16),
    peer: Option<(&str, &str, &str, &str)>,
    in_flight: Option<u32>,
) -> String {
    let p = pki.display();
    let in_flight = in_flight
        .map(|n| format!("in_flight = {n}\n"))
        .unwrap_or_default();
    let (node_identity, peer_port) = tls;
    let peer = peer
        .map(|(peer_name, peer_url, peer_dns, peer_serves)| {
            format!(
                r#"
[[peer]]
name = "{peer_name}"
url = "{peer_url}"
ca = ["{p}/root-ca.cert.pem"]
tls_name = "{peer_dns}"
serves = ["{peer_serves}"]
"#
            )
        })
        .unwrap_or_default();
    format!(
        r#"# Written by `lienthong bench` (test PKI; throw-away).
[node]
name = "{name}"
listen = "127.0.0.1:0"
peer_listen = "127.0.0.1:{peer_port}"
store = "{store}"
trust = ["{p}/root-ca.cert.pem"]

[tls]
cert = "{p}/{node_identity}.cert.pem"
key = "{p}/{node_identity}.key.pem"
chain = "{p}/chain.pem"

[[agency]]
code = "{code}"
name = "{agency_name}"
key = "{p}/{identity}.key.pem"
cert = "{p}/{identity}.cert.pem"
chain = "{p}/chain.pem"

[[agency.token]]
name = "bench"
sha256 = "{hash}"
{peer}
[retry]
initial_backoff = "200ms"
max_backoff = "5s"
give_up_after = "1h"
{in_flight}"#,
        hash = hex::encode(hash_token(token)),
    )
}

/// Starts `lienthong serve --config <config>`, logs to `<dir>/<name>.log`, and waits for its
/// `listening on ADDR` line (its `--ready-file`, `<dir>/<name>.ready`, then holds both bound
/// addresses) and then for `/readyz`.
pub async fn start(name: &'static str, config: &Path, dir: &Path) -> Result<BenchNode, Error> {
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    let log_path = dir.join(format!("{name}.log"));
    let ready_path = dir.join(format!("{name}.ready"));
    let log = std::fs::File::create(&log_path)
        .map_err(|e| Error::io(log_path.display().to_string(), e))?;
    let mut child = Command::new(exe)
        .arg("serve")
        .arg("--config")
        .arg(config)
        .arg("--ready-file")
        .arg(&ready_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| Error::io("lienthong serve", e))?;
    let stdout = child.stdout.take();
    let node_fail = |what: String| {
        Error::io(
            name,
            std::io::Error::other(format!("{what} (see {})", log_path.display())),
        )
    };
    // The one line is printed right after binding; read it off a blocking thread.
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        if let Some(out) = stdout {
            let mut reader = BufReader::new(out);
            let _ = reader.read_line(&mut line);
            // Keep draining so the node never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        }
        line
    })
    .await
    .unwrap_or_default();
    let mut node = BenchNode {
        base_url: String::new(),
        peer_at: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        child,
    };
    let Some(addr) = line.trim().strip_prefix("listening on ") else {
        return Err(node_fail(format!("did not start: {:?}", line.trim())));
    };
    node.base_url = format!("http://{addr}");
    // Written before that line was printed.
    let ready = std::fs::read_to_string(&ready_path).unwrap_or_default();
    node.peer_at = ready
        .lines()
        .find_map(|l| l.strip_prefix("peer_listen="))
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| node_fail(format!("no peer_listen in {}", ready_path.display())))?;
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client
            .get(format!("{}/readyz", node.base_url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return Ok(node);
        }
        if Instant::now() > deadline {
            return Err(node_fail("not ready after 30 s".into()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The command name and the user plus system CPU ticks of a `/proc/…/stat` line.
fn parse_stat(stat: &str) -> Option<(&str, f64)> {
    // The name is in parentheses and may hold spaces and parentheses itself: it ends at the
    // last `)`. utime and stime are fields 14 and 15, the 12th and 13th after it.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// CPU ticks of the live threads of `pid` that run the store ([`is_store_thread`]).
fn store_ticks(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|stat| {
            parse_stat(&stat)
                .filter(|(comm, _)| is_store_thread(comm))
                .map(|(_, ticks)| ticks)
        })
        .sum()
}

/// Every live process: pid → (parent pid, CPU ticks of the process and of its children it has
/// waited for). A snapshot of `/proc/*/stat`, for [`tree_cpu_s`].
pub fn process_table() -> HashMap<u32, (u32, f64)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            parse_stat_tree(&stat).map(|entry| (pid, entry))
        })
        .collect()
}

/// The parent pid and the user + system ticks of the process and its waited-for children (the
/// fields after the command name: ppid is the 2nd, utime, stime, cutime, cstime the 12th–15th).
fn parse_stat_tree(stat: &str) -> Option<(u32, f64)> {
    let close = stat.rfind(')')?;
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let mut ticks = 0.0;
    for i in 11..=14 {
        ticks += fields.get(i)?.parse::<f64>().ok()?;
    }
    Some((ppid, ticks))
}

/// CPU time (seconds) of process `root` and all its live descendants, children they reaped
/// included: what a server that forks workers (Dovecot) costs. `None` if `root` is gone.
pub fn tree_cpu_s(table: &HashMap<u32, (u32, f64)>, root: u32) -> Option<f64> {
    table.get(&root)?;
    let mut total = 0.0;
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if let Some((_, ticks)) = table.get(&pid) {
            total += ticks;
        }
        stack.extend(
            table
                .iter()
                .filter(|(child, (parent, _))| *parent == pid && **child != pid)
                .map(|(child, _)| *child),
        );
    }
    Some(total / clock_ticks())
}

/// CPU time the whole machine has been busy so far, all cores together, in seconds (`/proc/stat`:
/// every state but idle and waiting for I/O). Set against what the measured processes used over
/// a span, it says how much else ran meanwhile on a machine that may be shared.
pub fn machine_busy_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_busy(stat.lines().next()?).map(|ticks| ticks / clock_ticks())
}

/// The busy ticks of the `cpu` line of `/proc/stat`: user, nice, system, idle, iowait, irq,
/// softirq, steal (guest time is already counted in user and nice).
fn parse_machine_busy(line: &str) -> Option<f64> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<f64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if v.len() < 8 {
        return None;
    }
    Some(v[0] + v[1] + v[2] + v[5] + v[6] + v[7])
}

/// CPU time and memory of process `pid`, from `/proc` (Linux).
pub fn proc_stats(pid: u32) -> Option<ProcStats> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, ticks) = parse_stat(&stat)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    Some(ProcStats {
        cpu_s: ticks / clock_ticks(),
        peak_rss_mb: kb("VmHWM:") / 1024.0,
        rss_mb: kb("VmRSS:") / 1024.0,
        store_cpu_s: store_ticks(pid) / clock_ticks(),
    })
}

/// Resets the peak resident set (`VmHWM`) of process `pid` to its current RSS (Linux 4.0+,
/// `/proc/PID/clear_refs`), so that the peak reported is the measured run's and not the
/// warm-up's. `false` if the kernel refused: the peak then includes the warm-up.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), b"5").is_ok()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we run on).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names() {
        // A name may hold spaces and parentheses; the fields after the last `)` count.
        let line = "4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 170 30 0 0 20 0 12 0";
        assert_eq!(parse_stat(line), Some(("a (b) c", 200.0)));
        let worker = "17 (sqlx-sqlite-wor) S 1 2 3 4 5 6 7 8 9 10 5 7 0 0";
        assert_eq!(parse_stat(worker), Some(("sqlx-sqlite-wor", 12.0)));
        assert_eq!(parse_stat("17 (x) S 1 2"), None);
        assert_eq!(parse_stat("no parentheses"), None);
    }

    /// The written configuration loads, and `--in-flight` lands in its `[retry]` table.
    #[test]
    fn bench_configurations_load_with_and_without_in_flight() {
        let pki = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/test-only");
        for (in_flight, expected) in [
            (Some(7), 7),
            (None, lienthong::config::RetryPolicy::default().in_flight),
        ] {
            let text = config_text(
                "sender",
                "sqlite:///nonexistent/sender.db",
                &pki,
                "000.00.05.H21",
                "Sở Thông tin và Truyền thông tỉnh Gia Lai",
                "stttt-gialai",
                "bench-token",
                ("node-gialai", 1),
                Some((
                    "receiver",
                    "https://127.0.0.1:2",
                    "nghean.node.lienthong.test",
                    "000.00.00.H41",
                )),
                in_flight,
            );
            let config = lienthong::config::Config::from_toml(&text, &pki, &|_| None).unwrap();
            assert_eq!(config.retry.in_flight, expected);
        }
    }

    /// A process tree's CPU: the root's, its descendants' and what they reaped, nothing of
    /// processes outside it.
    #[test]
    fn process_trees_add_up() {
        let line = "9 (dovecot) S 1 9 9 0 -1 0 0 0 0 0 10 20 3 4 20 0 1 0";
        assert_eq!(parse_stat_tree(line), Some((1, 37.0)));
        assert_eq!(parse_stat_tree("9 (x) S 1"), None);
        let table: HashMap<u32, (u32, f64)> = [
            (1, (0, 1000.0)),
            (10, (1, 100.0)),
            (11, (10, 20.0)),
            (12, (11, 3.0)),
            (13, (1, 50.0)),
        ]
        .into_iter()
        .collect();
        let ticks = clock_ticks();
        assert_eq!(tree_cpu_s(&table, 10), Some(123.0 / ticks));
        assert_eq!(tree_cpu_s(&table, 12), Some(3.0 / ticks));
        assert_eq!(tree_cpu_s(&table, 99), None);
        // This test process is in the kernel's table, with its parent.
        let real = process_table();
        assert!(real.contains_key(&std::process::id()), "{}", real.len());
    }

    #[test]
    fn machine_busy_time_leaves_out_idle_and_io_wait() {
        let line = "cpu  100 5 50 9000 40 3 2 7 11 0";
        assert_eq!(parse_machine_busy(line), Some(167.0));
        assert_eq!(parse_machine_busy("cpu0 1 2 3 4 5 6 7 8"), None);
        assert_eq!(parse_machine_busy("cpu 1 2 3"), None);
        assert!(machine_busy_s().is_some_and(|s| s > 0.0));
    }

    #[test]
    fn store_threads_by_name() {
        assert!(is_store_thread("sqlx-sqlite-wor"));
        assert!(is_store_thread("store-writer"));
        assert!(!is_store_thread("tokio-rt-worker"));
        assert!(!is_store_thread("lienthong"));
    }

    /// A real stat line parses (the kernel's, not a hand-written one) and the store's share
    /// is part of the whole.
    #[test]
    fn own_process_is_read() {
        let stats = proc_stats(std::process::id()).unwrap();
        assert!(stats.rss_mb > 0.0);
        assert!((0.0..=stats.cpu_s).contains(&stats.store_cpu_s));
    }
}
