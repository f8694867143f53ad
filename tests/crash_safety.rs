//! Crash safety (DESIGN.md invariants 1 and 3): two node processes exchange 300 documents while
//! each is killed with SIGKILL at random moments three times and restarted. At the end every
//! document is in the recipient's inbox exactly once, every delivery is `delivered`, and both
//! audit chains verify.
//!
//! The clerk side retries every submission with the same `Idempotency-Key` until the node answers,
//! as a document-management system does; a kill between commit and answer must therefore not
//! produce a second document. Timing only bounds the test (a deadline); it decides nothing.
//!
//! Also here, with the same node processes: a node told to stop (SIGTERM) stops even when a
//! client has stopped reading a large response.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::nodes::{
    ApiClient, NGHEAN, STTTT, UBND_GL, agency, clerk_token, node_table, peer, reserve_port,
};
use common::*;
use lienthong::store::{DeliveryState, SqliteOptions, SqliteStore, Store};

const DOCUMENTS: usize = 300;
const KILLS_PER_NODE: usize = 3;
const DEADLINE: Duration = Duration::from_secs(240);

struct NodeProc {
    name: &'static str,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    store: String,
}

impl NodeProc {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        // Counted before the spawn: a node that starts quickly (or a test thread descheduled
        // right after the spawn) would otherwise have its line counted as "before", and the
        // wait below would never end.
        let before = std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("listening on")
            .count();
        let child = Command::new(env!("CARGO_BIN_EXE_lienthong"))
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let start = Instant::now();
        loop {
            let now = std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .matches("listening on")
                .count();
            if now > before {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "{} exited at start ({status}):\n{}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{} did not start:\n{}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A clerk's submission: the metadata and one PDF.
fn submission(metadata: &serde_json::Value, name: &str, pdf: Vec<u8>) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .part(
            "metadata",
            reqwest::multipart::Part::text(metadata.to_string()),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(pdf)
                .file_name(name.to_owned())
                .mime_str("application/pdf")
                .unwrap(),
        )
}

fn write_config(dir: &Path, name: &str, port: u16, body: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    let text = node_table(
        name,
        &format!("127.0.0.1:{port}"),
        &format!("sqlite://{name}.db"),
    ) + r#"[retry]
initial_backoff = "50ms"
max_backoff = "500ms"
breaker_failures = 1000
push_timeout = "2s"
lease = "3s"
"# + body;
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn sigkill_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (gl_port, na_port) = (reserve_port().port(), reserve_port().port());
    let gialai = write_config(
        dir.path(),
        "gialai",
        gl_port,
        &(agency(
            STTTT,
            "Sở Thông tin và Truyền thông tỉnh Gia Lai",
            "stttt-gialai",
        ) + &clerk_token("idesk", "crash-stttt")
            + &peer("nghean", &format!("http://127.0.0.1:{na_port}"), NGHEAN)),
    );
    let nghean = write_config(
        dir.path(),
        "nghean",
        na_port,
        &(agency(NGHEAN, "Ủy ban nhân dân tỉnh Nghệ An", "ubnd-nghean")
            + &peer("gialai", &format!("http://127.0.0.1:{gl_port}"), UBND_GL)),
    );
    let mut nodes = [
        NodeProc {
            name: "gialai",
            config: gialai,
            log: dir.path().join("gialai.log"),
            child: None,
            store: format!("sqlite://{}", dir.path().join("gialai.db").display()),
        },
        NodeProc {
            name: "nghean",
            config: nghean,
            log: dir.path().join("nghean.log"),
            child: None,
            store: format!("sqlite://{}", dir.path().join("nghean.db").display()),
        },
    ];
    for n in &mut nodes {
        n.start();
    }

    // The clerk system: submits every document, retrying with the same key until answered.
    let url = format!("http://127.0.0.1:{gl_port}/api/v1/documents");
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let submitted = progress.clone();
    let submitter = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let http: ApiClient = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap()
                .into();
            let start = Instant::now();
            for i in 0..DOCUMENTS {
                let metadata = serde_json::json!({
                    "recipients": ["000.00.00.H41"],
                    "notation": "STTTT-VP",
                    "subject": format!("V/v thử nghiệm chịu lỗi, văn bản thứ {i}"),
                });
                loop {
                    assert!(start.elapsed() < DEADLINE, "submitting took too long");
                    let form = submission(
                        &metadata,
                        "van-ban.pdf",
                        format!("%PDF-1.4 {i}").into_bytes(),
                    );
                    let r = http
                        .post(&url)
                        .bearer_auth("crash-stttt")
                        .header("idempotency-key", format!("crash-{i}"))
                        .multipart(form)
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => {
                            submitted.store(i + 1, std::sync::atomic::Ordering::SeqCst);
                            break;
                        }
                        Ok(r) if r.status().is_server_error() => {}
                        Ok(r) => panic!(
                            "document {i} refused: {} {}",
                            r.status(),
                            r.text().await.unwrap_or_default()
                        ),
                        Err(_) => {} // the node is down: try again
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
    });

    // The crashes: each node, three times, at random points while documents flow (random
    // progress marks, so the kills land in the middle of the traffic however fast it runs).
    let mut rng = fastrand::Rng::with_seed(0x11E7_7404);
    let mut marks: Vec<usize> = (0..KILLS_PER_NODE * 2)
        .map(|_| rng.usize(10..DOCUMENTS - 10))
        .collect();
    marks.sort_unstable();
    for (k, mark) in marks.into_iter().enumerate() {
        let start = Instant::now();
        while progress.load(std::sync::atomic::Ordering::SeqCst) < mark {
            assert!(start.elapsed() < DEADLINE, "no progress past {mark}");
            std::thread::sleep(Duration::from_millis(rng.u64(1..20)));
        }
        let n = &mut nodes[k % 2];
        n.kill();
        std::thread::sleep(Duration::from_millis(rng.u64(50..300)));
        n.start();
        eprintln!("after document {mark}: killed and restarted {}", n.name);
    }
    submitter.join().expect("every document was accepted");

    // Everything settles: every delivery delivered.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let read_only = SqliteOptions {
        read_only: true,
        ..SqliteOptions::default()
    };
    let start = Instant::now();
    let counts = loop {
        let counts = rt.block_on(async {
            let store = SqliteStore::open_with(&nodes[0].store, &read_only)
                .await
                .unwrap();
            store.delivery_counts().await.unwrap()
        });
        let delivered = counts.get(&DeliveryState::Delivered).copied().unwrap_or(0);
        let total: u64 = counts.values().sum();
        if delivered == DOCUMENTS as u64 && total == DOCUMENTS as u64 {
            break counts;
        }
        assert!(start.elapsed() < DEADLINE, "not settled: {counts:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("Gia Lai deliveries: {counts:?}");

    // Exactly once at the recipient.
    let (received, distinct, inbox) = rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("{}?mode=ro", nodes[1].store)).await.unwrap();
        let received: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM messages WHERE direction = 'in' AND kind = 'document'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        let distinct: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT document_id) FROM messages WHERE direction = 'in' AND kind = 'document'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE recipient = '000.00.00.H41'")
            .fetch_one(&pool)
            .await
            .unwrap();
        (received, distinct, inbox)
    });
    assert_eq!(
        (received, distinct, inbox),
        (DOCUMENTS as i64, DOCUMENTS as i64, DOCUMENTS as i64)
    );

    // The sender's register has no gap: a kill between choosing a number and storing its
    // document takes nothing (the number is taken by the transaction that stores the
    // document), so the numbers issued are exactly 1..=300 and the sequence stands at 300.
    let (numbers, last, allocated) = rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("{}?mode=ro", nodes[0].store))
            .await
            .unwrap();
        let numbers: Vec<String> = sqlx::query_scalar(
            "SELECT code_number FROM messages WHERE direction = 'out' AND kind = 'document'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let last: Vec<i64> = sqlx::query_scalar("SELECT last_number FROM number_sequences")
            .fetch_all(&pool)
            .await
            .unwrap();
        let allocated: i64 =
            sqlx::query_scalar("SELECT count(*) FROM audit WHERE action = 'number.allocate'")
                .fetch_one(&pool)
                .await
                .unwrap();
        (numbers, last, allocated)
    });
    let mut numbers: Vec<u32> = numbers.iter().map(|n| n.parse().unwrap()).collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (1..=DOCUMENTS as u32).collect::<Vec<_>>(),
        "a gap in the register"
    );
    assert_eq!(
        last,
        vec![DOCUMENTS as i64],
        "the sequence is past its last document"
    );
    assert_eq!(
        allocated, 0,
        "no number is recorded apart from its document"
    );

    // Both audit chains verify.
    for n in &mut nodes {
        n.kill();
        let o = bin()
            .args(["audit", "verify", "--store", &n.store])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{}: {}{}",
            n.name,
            stdout(&o),
            stderr(&o)
        );
    }
}

/// SIGTERM while a client that asked for a 27 MB package has stopped reading it: the node waits
/// `node.shutdown_grace` (1 s here) for the response, then closes the connection and exits. It
/// used to wait for that client for ever.
#[test]
fn a_client_that_stops_reading_does_not_keep_a_stopping_node_alive() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let port = reserve_port().port();
    let config = write_config(
        dir.path(),
        "gialai",
        port,
        &(agency(
            STTTT,
            "Sở Thông tin và Truyền thông tỉnh Gia Lai",
            "stttt-gialai",
        ) + &clerk_token("idesk", "grace-stttt")
            + &peer("nghean", "http://127.0.0.1:9", NGHEAN)),
    );
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replacen("[node]\n", "[node]\nshutdown_grace = \"1s\"\n", 1),
    )
    .unwrap();
    let mut node = NodeProc {
        name: "gialai",
        config,
        log: dir.path().join("gialai.log"),
        child: None,
        store: String::new(),
    };
    node.start();

    // A document with a 20 MB attachment: its package is larger than the socket buffers.
    let base = format!("http://127.0.0.1:{port}");
    let id = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut rng = fastrand::Rng::with_seed(7);
            let file: Vec<u8> = (0..20_000_000).map(|_| rng.u8(..)).collect();
            let metadata = serde_json::json!({
                "recipients": ["000.00.00.H41"],
                "notation": "STTTT-VP",
                "subject": "V/v bản đồ địa chính",
            });
            let form = submission(&metadata, "ban-do.pdf", file);
            let r = ApiClient::new()
                .post(format!("{base}/api/v1/documents"))
                .bearer_auth("grace-stttt")
                .multipart(form)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 202);
            let v: serde_json::Value = r.json().await.unwrap();
            v["id"].as_i64().unwrap()
        });

    // Ask for the package and never read the answer.
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stalled,
        "GET /api/v1/documents/{id}/package HTTP/1.1\r\nhost: 127.0.0.1\r\n\
         authorization: Bearer grace-stttt\r\n\r\n"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));

    let child = node.child.as_mut().unwrap();
    let term = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(term.success());
    let start = Instant::now();
    let exited = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the node did not stop: it waits for the client that stopped reading"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exited.success(), "{exited}");
    node.child = None;
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert!(
        log.contains("requests still in flight after node.shutdown_grace"),
        "{log}"
    );
    drop(stalled);
}
