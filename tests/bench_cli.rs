//! `lienthong bench` end to end, small: two real node processes, documents through the clerk
//! API, every receipt back, and the report's JSON carrying the fields scripts rely on. No figure
//! is asserted (timing belongs in benchmarks), only that the run measured what it says.

use std::process::Command;

/// Runs `lienthong bench <args> --size 2048 --json` on the test PKI: the JSON report and the
/// table (stderr).
fn bench(args: &[&str]) -> (serde_json::Value, String) {
    let pki = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/test-only");
    let out = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .arg("bench")
        .args(args)
        .args(["--size", "2048", "--json", "--pki"])
        .arg(&pki)
        .output()
        .expect("run lienthong bench");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "bench failed: {stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    (v, stderr)
}

#[test]
fn a_small_bench_delivers_every_document_and_reports_the_stable_fields() {
    let (v, stderr) = bench(&[
        "--documents",
        "24",
        "--concurrency",
        "4",
        "--warmup",
        "3",
        "--openssl-seconds",
        "1",
    ]);
    assert_eq!(v["documents"], 24, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    for field in [
        "docs_per_sec",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
        "cpu_ms_per_doc",
        "peak_rss_mb_sender",
        "peak_rss_mb_receiver",
    ] {
        let x = v[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{field} missing: {v}"));
        assert!(x > 0.0, "{field} = {x}: {v}");
    }
    // The store's share is part of each node's CPU (it may round to 0 ticks in a run this
    // short, so only its bounds are checked).
    for node in ["sender", "receiver"] {
        let store = v[format!("store_cpu_ms_per_doc_{node}")]
            .as_f64()
            .unwrap_or_else(|| panic!("store_cpu_ms_per_doc_{node} missing: {v}"));
        let all = v[format!("cpu_ms_per_doc_{node}")].as_f64().unwrap_or(-1.0);
        assert!(
            (0.0..=all).contains(&store),
            "{node}: {store} of {all}: {v}"
        );
    }
    assert!(v["p50_ms"].as_f64() <= v["p99_ms"].as_f64(), "{v}");
    assert!(v["p99_ms"].as_f64() <= v["max_ms"].as_f64(), "{v}");
    // openssl is installed by the test script: the ceiling and the ratio are measured.
    let rate = v["openssl_sign_per_sec_per_core"]
        .as_f64()
        .expect("openssl rate");
    let ratio = v["ratio_to_rsa_ceiling"].as_f64().expect("ratio");
    let cores = v["cores"].as_f64().expect("cores");
    let dps = v["docs_per_sec"].as_f64().unwrap_or_default();
    assert!((ratio - dps / (cores * rate / 2.0)).abs() < 1e-9, "{v}");
    // The table went to stderr.
    assert!(stderr.contains("documents/s"), "{stderr}");
}

/// A soak holds its rate over the whole window: `rate × duration` documents, the first one at
/// once (not one interval late), every one delivered. The count is exact by construction (the
/// bench sends late what it could not send in time), not by how the scheduler ran.
#[test]
fn a_soak_sends_rate_times_duration_documents() {
    let (v, _) = bench(&[
        "--soak",
        "2s",
        "--rate",
        "15",
        "--warmup",
        "1",
        "--openssl-seconds",
        "0",
    ]);
    assert_eq!(v["documents"], 30, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert!(
        v["soak"]["windows"]
            .as_array()
            .is_some_and(|w| !w.is_empty()),
        "{v}"
    );
}

// --- the mail mode ------------------------------------------------------------------------------

/// The mail servers of `scripts/mail-harness.sh start DIR` (real Dovecot and the aiosmtpd
/// relay on loopback), stopped by `stop DIR` when dropped, panicking or not.
struct Harness {
    dir: tempfile::TempDir,
}

impl Harness {
    fn start() -> Harness {
        // Short and under /tmp: Dovecot's socket paths, and its processes as `nobody` must get in.
        let dir = tempfile::Builder::new()
            .prefix("mh.")
            .tempdir_in("/tmp")
            .expect("a temporary folder under /tmp");
        let out = Command::new(script())
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("run scripts/mail-harness.sh");
        let h = Harness { dir };
        assert!(
            out.status.success(),
            "mail-harness.sh start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        h
    }

    fn env_file(&self) -> std::path::PathBuf {
        self.dir.path().join("env")
    }

    /// A value of `DIR/env`.
    fn var(&self, key: &str) -> String {
        let text = std::fs::read_to_string(self.env_file()).expect("DIR/env");
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} not in DIR/env:\n{text}"))
            .to_owned()
    }

    /// How many mails `folder` of the account `user_key` (its `…_USER`/`…_PASSWORD` pair in
    /// `DIR/env`) holds, read over IMAP by this test itself.
    async fn count(&self, user_key: &str, folder: &str) -> u32 {
        let user = self.var(&format!("{user_key}_USER"));
        let password = self.var(&format!("{user_key}_PASSWORD"));
        let port: u16 = self.var("MAIL_IMAP_PORT").parse().expect("a port");
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to Dovecot");
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.expect("greeting");
        let mut session = client
            .login(&user, &password)
            .await
            .map_err(|(e, _)| e)
            .expect("IMAP LOGIN");
        let n = session
            .status(folder, "(MESSAGES)")
            .await
            .unwrap_or_else(|e| panic!("STATUS {folder} of {user}: {e}"))
            .exists;
        let _ = session.logout().await;
        n
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mail-harness.sh")
}

/// `lienthong bench --mail-env` end to end, small, against real servers: every document is
/// relayed and lands in the commune's mailbox, every signed mail put in the node's mailbox is
/// taken in as a document and answered with a receipt by mail — each checked in the mailboxes
/// by this test over its own IMAP session, not only by the bench's word. No figure is asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mail_mode_relays_every_document_and_takes_in_every_mail() {
    let h = Harness::start();
    let env = h.env_file();
    let env = env.to_str().expect("a UTF-8 path");
    let (v, stderr) = tokio::task::spawn_blocking({
        let env = env.to_owned();
        move || {
            bench(&[
                "--mail-env",
                &env,
                "--documents",
                "6",
                "--warmup",
                "1",
                "--concurrency",
                "2",
                "--mail-inbound",
                "4",
                "--openssl-seconds",
                "1",
            ])
        }
    })
    .await
    .unwrap();
    let out = &v["outbound"];
    assert_eq!(out["documents"], 6, "{v}");
    assert_eq!(out["errors"], 0, "{v}");
    assert_eq!(out["in_mailbox"], 6, "{v}");
    for field in [
        "docs_per_sec",
        "p50_ms",
        "cpu_ms_per_doc_node",
        "peak_rss_mb_node",
    ] {
        let x = out[field].as_f64().unwrap_or(-1.0);
        assert!(x > 0.0, "outbound.{field} = {x}: {v}");
    }
    assert!(out["p50_ms"].as_f64() <= out["p99_ms"].as_f64(), "{v}");
    assert!(out["p99_ms"].as_f64() <= out["max_ms"].as_f64(), "{v}");
    // A mail carries the file and the signed package, each base64: larger than the file.
    assert!(out["mail_bytes"].as_u64().unwrap_or(0) > 2048, "{v}");
    // The harness names its servers' processes: their CPU is read, each apart and in all.
    let servers = out["cpu_ms_per_doc_mail_servers"]
        .as_f64()
        .expect("servers' CPU");
    let each = &out["cpu_ms_per_doc_by_mail_server"];
    let (dovecot, relay) = (each["dovecot"].as_f64(), each["relay"].as_f64());
    assert!(dovecot.is_some() && relay.is_some(), "{v}");
    assert!(
        (dovecot.unwrap() + relay.unwrap() - servers).abs() < 1e-9,
        "{v}"
    );

    // How busy the machine was, and how much of it was other processes: both read.
    let busy = out["machine_busy_cores"]
        .as_f64()
        .expect("machine_busy_cores");
    assert!(busy > 0.0, "{v}");
    assert!(
        out["other_processes_cores"]
            .as_f64()
            .is_some_and(|o| o >= 0.0),
        "{v}"
    );

    let inb = &v["inbound"];
    assert_eq!(inb["mails"], 4, "{v}");
    let taken = inb["elapsed_s"].as_f64().unwrap_or(-1.0);
    let answered = inb["elapsed_with_receipts_s"].as_f64().unwrap_or(-1.0);
    assert!(taken > 0.0 && answered >= taken, "{v}");
    assert!(inb["mails_per_sec"].as_f64().unwrap_or(0.0) > 0.0, "{v}");

    // Both ratios are to cores × the one-core sign rate (one signature per document).
    let ceiling =
        v["cores"].as_f64().unwrap() * v["openssl_sign_per_sec_per_core"].as_f64().unwrap();
    assert!(
        (v["rsa_ceiling_docs_per_sec"].as_f64().unwrap() - ceiling).abs() < 1e-6,
        "{v}"
    );
    let ratio = out["ratio_to_rsa_ceiling"].as_f64().unwrap();
    assert!(
        (ratio - out["docs_per_sec"].as_f64().unwrap() / ceiling).abs() < 1e-9,
        "{v}"
    );

    // What the mailboxes hold: the warm-up's and the measured documents at the commune, every
    // inbound mail moved to Processed and none left, one receipt each back at the sender.
    assert_eq!(h.count("MAIL_COMMUNE", "INBOX").await, 7);
    assert_eq!(h.count("MAIL", "INBOX").await, 0);
    assert_eq!(h.count("MAIL", "Processed").await, 4);
    assert_eq!(h.count("MAIL_OFFICIAL", "INBOX").await, 4);
    assert!(stderr.contains("mails/s taken in"), "{stderr}");
}

/// The inbound figure needs an empty mailbox: mail already waiting there (here: left by a run
/// whose node never took it in) is refused with what to do, not taken in and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mail_mode_refuses_a_mailbox_that_is_not_empty() {
    let h = Harness::start();
    let env = h.env_file();
    let port: u16 = h.var("MAIL_LMTP_PORT").parse().unwrap();
    let to = h.var("MAIL_USER");
    lmtp_put(port, &to, b"Subject: left over\r\n\r\nbody\r\n").await;
    let out = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["bench", "--mail-env"])
        .arg(&env)
        .args([
            "--documents",
            "0",
            "--mail-inbound",
            "2",
            "--openssl-seconds",
            "0",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("INBOX holds 1 mails already") && stderr.contains("fresh harness"),
        "{stderr}"
    );
    assert_eq!(h.count("MAIL", "INBOX").await, 1, "nothing was taken in");
}

/// The mail mode's flags stand alone: `--mail-inbound` needs `--mail-env`, and a mail run is
/// neither a soak nor a flood.
#[test]
fn mail_flags_that_do_not_go_together_are_refused() {
    for args in [
        &["--mail-inbound", "3"][..],
        &["--mail-env", "/nonexistent/env", "--soak", "1s"][..],
        &["--mail-env", "/nonexistent/env", "--flood", "5"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_lienthong"))
            .arg("bench")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
}

/// One mail into Dovecot over LMTP, from `<>` (the test's own few lines of RFC 2033).
async fn lmtp_put(port: u16, to: &str, raw: &[u8]) {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (r, mut w) = tcp.into_split();
    let mut r = tokio::io::BufReader::new(r);
    let mut reply = async || {
        let mut last = String::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            assert!(!line.is_empty(), "LMTP closed after {last:?}");
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
            last = line;
        }
    };
    assert!(reply().await.starts_with("220"));
    for (cmd, code) in [
        ("LHLO test\r\n".to_owned(), "250"),
        ("MAIL FROM:<>\r\n".to_owned(), "250"),
        (format!("RCPT TO:<{to}>\r\n"), "250"),
        ("DATA\r\n".to_owned(), "354"),
    ] {
        w.write_all(cmd.as_bytes()).await.unwrap();
        let got = reply().await;
        assert!(got.starts_with(code), "{cmd:?}: {got}");
    }
    w.write_all(raw).await.unwrap();
    w.write_all(b".\r\n").await.unwrap();
    let got = reply().await;
    assert!(got.starts_with("250"), "end of data: {got}");
}
