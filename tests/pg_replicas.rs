//! Issue 17, acceptance: **replicas under fire**.
//!
//! Three `lienthong serve` replicas of one node (Gia Lai, Sở TT&TT: the same configuration but
//! for the listen ports, one PostgreSQL database — a new one on `LIENTHONG_TEST_POSTGRES`) and a
//! peer node (Nghệ An, its own SQLite store). [`DOCUMENTS`] documents are submitted round-robin
//! through the three, [`IN_FLIGHT`] at a time; a submission that meets a connection error or a
//! 5xx is retried with the same `Idempotency-Key` on the next replica, as a client behind a
//! load balancer would. Meanwhile a random replica is SIGKILLed at random moments (at least
//! [`MIN_KILLS`] times, and for as long as documents are being submitted; a document waits
//! for its share of the kills, so that at least [`MIN_KILLS`] fall among the submissions) and
//! restarted at once. The lease is short ([`LEASE`]): a delivery a killed replica held is taken
//! over by another replica once its lease expires.
//!
//! Then, once everything is delivered: every document answered is at the peer exactly once (its
//! inbox holds each DocumentId once, and nothing else), no delivery is `sending` and none holds a
//! lease, the register (số) of Sở TT&TT has neither a duplicate nor a gap in any year, and
//! `lienthong audit verify` passes on the shared database (and on the peer's). The figures
//! (documents, kills, retries, attempts, time) are printed.
//!
//! The random choices come from a seed printed at the start; `LIENTHONG_FIRE_SEED=N` repeats
//! them. Timing only decides when things happen and bounds the waits; no assertion depends on
//! it. Skipped loudly when `LIENTHONG_TEST_POSTGRES` is unset.

mod common;
#[path = "common/pg_cluster.rs"]
mod pg_cluster;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::nodes::{NGHEAN, STTTT, agency, clerk_token, peer, reserve_port};
use pg_cluster::*;

/// Documents submitted through the replicas.
const DOCUMENTS: usize = 1000;
/// Submissions in flight at once (spread over the three replicas).
const IN_FLIGHT: usize = 6;
/// At least this many SIGKILLs.
const MIN_KILLS: usize = 10;
/// The replicas' `retry.lease` (and `retry.push_timeout`, which it must exceed).
const LEASE: &str = "6s";
const PUSH_TIMEOUT: &str = "3s";
/// Bounds the submissions, and then the deliveries.
const DEADLINE: Duration = Duration::from_secs(240);
const REPLICAS: usize = 3;

/// What the clerk was answered, by document number: (message id, DocumentId).
type Answered = Arc<Mutex<BTreeMap<usize, (i64, String)>>>;

/// Submits document `i`, starting at replica `i % 3` and moving to the next one on a connection
/// error or a 5xx, always with the key `fire-<i>`; returns how many tries failed.
async fn submit(http: &reqwest::Client, ports: &[u16], i: usize, answered: &Answered) -> usize {
    let key = format!("fire-{i}");
    let metadata = serde_json::json!({
        "recipients": [NGHEAN],
        "notation": "VP",
        "subject": format!("V/v thử nghiệm nhiều bản sao, văn bản {i}"),
    });
    let start = Instant::now();
    let mut replica = i % ports.len();
    let mut failed = 0;
    loop {
        assert!(
            start.elapsed() < DEADLINE,
            "document {i} not accepted in time"
        );
        let form = reqwest::multipart::Form::new()
            .part(
                "metadata",
                reqwest::multipart::Part::text(metadata.to_string()),
            )
            .part(
                "file",
                reqwest::multipart::Part::bytes(format!("%PDF-1.4 {key}\n").into_bytes())
                    .file_name("van-ban.pdf")
                    .mime_str("application/pdf")
                    .unwrap(),
            );
        let r = http
            .post(format!(
                "http://127.0.0.1:{}/api/v1/documents",
                ports[replica]
            ))
            .bearer_auth("fire-stttt")
            .header("idempotency-key", &key)
            .multipart(form)
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => {
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                // A body cut short by a kill is a failed try like any other.
                if let (Some(id), Some(doc)) = (v["id"].as_i64(), v["document_id"].as_str()) {
                    let got = (id, doc.to_owned());
                    let mut a = answered.lock().unwrap();
                    if let Some(before) = a.get(&i) {
                        assert_eq!(before, &got, "{key} answered twice, differently");
                    }
                    a.insert(i, got);
                    return failed;
                }
            }
            Ok(r) if r.status().is_server_error() => {}
            Ok(r) => panic!(
                "{key} refused by replica {replica}: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ),
            Err(_) => {}
        }
        failed += 1;
        replica = (replica + 1) % ports.len();
        tokio::time::sleep(Duration::from_millis(if failed % ports.len() == 0 {
            200
        } else {
            20
        }))
        .await;
    }
}

#[test]
fn replicas_under_fire_deliver_every_document_exactly_once() {
    let Some(admin) = test_postgres("replicas_under_fire_deliver_every_document_exactly_once")
    else {
        return;
    };
    let seed = std::env::var("LIENTHONG_FIRE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("replicas test seed {seed} (LIENTHONG_FIRE_SEED={seed} repeats its choices)");
    let began = Instant::now();
    let secs = move || began.elapsed().as_secs_f64();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(TempDatabase::create(&admin, "replicas"));
    let dir = tempfile::tempdir().unwrap();

    let ports: Vec<u16> = (0..REPLICAS).map(|_| reserve_port().port()).collect();
    let na_port = reserve_port().port();
    let gialai_body = agency(
        STTTT,
        "Sở Thông tin và Truyền thông tỉnh Gia Lai",
        "stttt-gialai",
    ) + &clerk_token("idesk", "fire-stttt")
        + &peer("nghean", &format!("http://127.0.0.1:{na_port}"), NGHEAN);
    let mut replicas: Vec<NodeProc> = ports
        .iter()
        .enumerate()
        .map(|(k, port)| {
            let file = format!("replica{k}");
            let config = write_config(
                dir.path(),
                &file,
                "gialai",
                *port,
                &db.url,
                (PUSH_TIMEOUT, LEASE),
                &gialai_body,
            );
            NodeProc::new(dir.path(), &file, config)
        })
        .collect();
    let nghean_db = dir.path().join("nghean.db");
    let nghean_config = write_config(
        dir.path(),
        "nghean",
        "nghean",
        na_port,
        &format!("sqlite://{}?mode=rwc", nghean_db.display()),
        (PUSH_TIMEOUT, LEASE),
        &(agency(NGHEAN, "Ủy ban nhân dân tỉnh Nghệ An", "ubnd-nghean")
            + &clerk_token("idesk", "fire-nghean")
            + &peer("gialai", &format!("http://127.0.0.1:{}", ports[0]), STTTT)),
    );
    let mut nghean = NodeProc::new(dir.path(), "nghean", nghean_config);
    nghean.start();
    // One after the other: the first creates the schema.
    for r in &mut replicas {
        r.start();
    }
    eprintln!(
        "{:>5.1} s: three replicas on {} and the peer started",
        secs(),
        db.name
    );

    // The killer: a random replica at a random moment, restarted at once.
    let submitting = Arc::new(AtomicBool::new(true));
    let kills = Arc::new(AtomicUsize::new(0));
    let killer = {
        let (submitting, kills) = (submitting.clone(), kills.clone());
        let mut rng = fastrand::Rng::with_seed(seed);
        std::thread::spawn(move || {
            while submitting.load(SeqCst) || kills.load(SeqCst) < MIN_KILLS {
                std::thread::sleep(Duration::from_millis(rng.u64(300..2000)));
                let victim = &mut replicas[rng.usize(..REPLICAS)];
                victim.kill();
                let n = kills.fetch_add(1, SeqCst) + 1;
                eprintln!(
                    "{:>5.1} s: kill {n}: {} (start {})",
                    secs(),
                    victim.name,
                    victim.starts
                );
                std::thread::sleep(Duration::from_millis(rng.u64(0..500)));
                victim.start();
            }
            replicas
        })
    };

    // The clerk: round-robin, with idempotent retries on the next replica.
    let answered: Answered = Default::default();
    let next = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let tasks: Vec<_> = (0..IN_FLIGHT)
            .map(|_| {
                let (http, ports, answered, next, retries, kills) = (
                    http.clone(),
                    ports.clone(),
                    answered.clone(),
                    next.clone(),
                    retries.clone(),
                    kills.clone(),
                );
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, SeqCst);
                        if i >= DOCUMENTS {
                            return;
                        }
                        // The kills are spread over the submissions: document i waits for kill
                        // i·(MIN_KILLS+1)/DOCUMENTS, so the last ones wait for the MIN_KILLS-th.
                        while kills.load(SeqCst) < i * (MIN_KILLS + 1) / DOCUMENTS {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        let failed = submit(&http, &ports, i, &answered).await;
                        retries.fetch_add(failed, SeqCst);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("every document was accepted");
        }
    });
    let submitted_in = secs();
    submitting.store(false, SeqCst);
    let mut replicas = killer.join().expect("the killer");
    let answered = answered.lock().unwrap().clone();
    assert_eq!(answered.len(), DOCUMENTS);
    let kills = kills.load(SeqCst);
    eprintln!(
        "{submitted_in:>5.1} s: {DOCUMENTS} documents answered ({} tries retried on the next \
         replica), {kills} kills so far",
        retries.load(SeqCst)
    );

    // Everything delivered: the peer holds every document, no delivery is pending.
    let pool = rt.block_on(connect(&db.url));
    let q = |sql: &str| rt.block_on(scalar(&pool, sql));
    let peer_in = |what: &str| {
        sqlite_scalar(
            &nghean_db,
            &format!(
                "SELECT count({what}) FROM messages WHERE direction = 'in' \
                 AND kind = 'document' AND sender = '{STTTT}'"
            ),
        ) as usize
    };
    let start = Instant::now();
    while peer_in("*") < DOCUMENTS
        || q("SELECT count(*) FROM deliveries WHERE state <> 'delivered'") > 0
    {
        assert!(
            start.elapsed() < DEADLINE,
            "not delivered in time: the peer holds {} of {DOCUMENTS}, {} deliveries pending",
            peer_in("*"),
            q("SELECT count(*) FROM deliveries WHERE state <> 'delivered'")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let delivered_in = secs();

    // Exactly once at the peer: every answered DocumentId, each once, nothing else.
    assert_eq!(peer_in("*"), DOCUMENTS, "documents at the peer");
    assert_eq!(
        peer_in("DISTINCT document_id"),
        DOCUMENTS,
        "a duplicate DocumentId"
    );
    let at_peer: HashSet<String> = sqlite_query(&nghean_db, async |pool| {
        sqlx::query_scalar::<_, String>(
            "SELECT document_id FROM messages WHERE direction = 'in' AND kind = 'document'",
        )
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
    });
    let answered_ids: HashSet<String> = answered.values().map(|(_, d)| d.clone()).collect();
    assert_eq!(
        answered_ids.len(),
        DOCUMENTS,
        "two documents answered with one DocumentId"
    );
    assert_eq!(
        at_peer, answered_ids,
        "the peer's documents are the ones answered"
    );
    assert_eq!(
        sqlite_scalar(&nghean_db, "SELECT count(*) FROM inbox") as usize,
        DOCUMENTS,
        "the peer's inbox"
    );
    // The shared store: one outgoing document and one delivery per answered document.
    assert_eq!(
        q("SELECT count(*) FROM messages WHERE direction = 'out' AND kind = 'document'") as usize,
        DOCUMENTS,
        "a document no clerk was answered for"
    );
    assert_eq!(q("SELECT count(*) FROM deliveries") as usize, DOCUMENTS);
    // Every lease released.
    assert_eq!(
        q("SELECT count(*) FROM deliveries WHERE state = 'sending'"),
        0
    );
    assert_eq!(
        q(
            "SELECT count(*) FROM deliveries WHERE lease_owner IS NOT NULL OR lease_until IS NOT NULL"
        ),
        0,
        "a lease still held"
    );
    // The register: per agency and year, 1..=n, no duplicate, no gap.
    let numbers: Vec<(String, i64, String)> = rt.block_on(async {
        sqlx::query_as(
            "SELECT sender, code_year, code_number FROM messages \
             WHERE direction = 'out' AND kind = 'document'",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    });
    let mut registers: BTreeMap<(String, i64), Vec<usize>> = BTreeMap::new();
    for (agency, year, n) in numbers {
        registers
            .entry((agency, year))
            .or_default()
            .push(n.parse().expect("a number"));
    }
    for (register, numbers) in &mut registers {
        numbers.sort_unstable();
        assert_eq!(
            *numbers,
            (1..=numbers.len()).collect::<Vec<_>>(),
            "register {register:?}"
        );
    }
    let attempts = q("SELECT count(*) FROM attempts");
    let owners = q("SELECT count(DISTINCT lease_owner) FROM attempts");
    // Deliveries a killed replica was sending that another process finished.
    let taken_over = q("SELECT count(*) FROM (SELECT delivery_id FROM attempts \
         GROUP BY delivery_id HAVING count(DISTINCT lease_owner) > 1) t");
    rt.block_on(pool.close());

    // The audit chains verify, with every process stopped.
    for r in &mut replicas {
        r.kill();
    }
    nghean.kill();
    let (ok, said) = audit_verify(&db.url);
    assert!(ok, "audit verify on the shared database: {said}");
    let (ok, said) = audit_verify(&format!("sqlite://{}", nghean_db.display()));
    assert!(ok, "audit verify on the peer: {said}");
    eprintln!(
        "{:>5.1} s: done (seed {seed}) — {DOCUMENTS} documents through {REPLICAS} replicas, \
         {kills} SIGKILLs, {} tries retried, submitted in {submitted_in:.1} s, all delivered \
         at {delivered_in:.1} s; {attempts} delivery attempts by {owners} lease owners, {taken_over} deliveries \
         finished by another process than the one that first claimed them; \
         registers {:?}",
        secs(),
        retries.load(SeqCst),
        registers
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect::<Vec<_>>()
    );
}
