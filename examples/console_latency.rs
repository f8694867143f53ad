//! How fast the administrators' console pages answer over a store of 100 000 deliveries (issue
//! 18's acceptance: p95 under 100 ms). A measurement, not a test: run it in release on a quiet
//! machine,
//!
//! ```text
//! cargo run --release --example console_latency [-- DELIVERIES REQUESTS]
//! ```
//!
//! It seeds a SQLite store in a temporary folder through the Store API — documents of 100
//! recipients each (`submit_outgoing`: one transaction per document, 100 deliveries and one audit
//! record, as a real submission writes them, so the indexes and the audit chain are those of a
//! real store), then claims and fails or defers some as the outbox would (`claim_due`,
//! `mark_failed`, `retry_later`) — starts a node with the console on loopback, signs in with a
//! break-glass account, and requests each page REQUESTS times (default 200), printing p50, p95
//! and the maximum.

use std::time::{Duration, Instant};

use lienthong::config::Config;
use lienthong::console::pages::login::hash_password;
use lienthong::node::service::{Node, now_ms};
use lienthong::store::{
    AnyStore, DeliveryError, DocumentMeta, NewDelivery, NewOutgoing, Numbering, SignedPackage,
    Store,
};
use tokio::net::TcpListener;

const SENDER: &str = "000.00.05.H21";
const PER_DOCUMENT: usize = 100;
const PASSWORD: &str = "do-tre-trang-quan-tri";

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn package(n: usize) -> SignedPackage {
    SignedPackage {
        bytes: format!("<edXML>văn bản đo thời gian số {n}</edXML>").into_bytes(),
        signer_subject: Some("CN=Sở Thông tin và Truyền thông tỉnh Gia Lai".into()),
        signer_fingerprint: Some("ab".repeat(32)),
        header_json: serde_json::json!({ "subject": format!("V/v số {n}") }).to_string(),
        signed_content: None,
        channel: None,
    }
}

/// `documents` documents of [`PER_DOCUMENT`] recipients each, created over the last ten days;
/// then `failed` deliveries to peers failed and `retrying` deferred.
async fn seed(
    store: &AnyStore,
    documents: usize,
    failed: usize,
    retrying: usize,
) -> Result<(), Failure> {
    let now = now_ms();
    let span = 10 * 86_400_000i64;
    let started = Instant::now();
    for i in 0..documents {
        let at = now - span + span * i as i64 / documents.max(1) as i64;
        let deliveries = (0..PER_DOCUMENT)
            .map(|r| NewDelivery {
                recipient: format!("000.{:02}.{:02}.H41", r / 10, r % 10),
                route: if r % 2 == 0 {
                    "peer:nghean".into()
                } else {
                    "peer:kontum".into()
                },
            })
            .collect();
        store
            .submit_outgoing(
                NewOutgoing {
                    document: DocumentMeta {
                        sender: SENDER.into(),
                        document_id: format!("{SENDER},2026/12/07,{}/STTTT", i + 1),
                        business_type: 0,
                        code_number: (i + 1).to_string(),
                        code_notation: "STTTT".into(),
                        code_year: 2026,
                        subject: format!("V/v số {i}"),
                    },
                    package: package(i),
                    deliveries,
                    idempotency_key: None,
                    request: None,
                    actor: format!("clerk:{SENDER}:van-thu"),
                    numbering: Numbering::Given,
                    from_draft: None,
                },
                at,
            )
            .await?;
    }
    eprintln!(
        "seeded {} deliveries in {:.1} s",
        documents * PER_DOCUMENT,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let (mut f, mut r) = (0, 0);
    while f < failed || r < retrying {
        let claimed = store
            .claim_due(now, 1000, "outbox:latency", 3_600_000)
            .await?;
        if claimed.is_empty() {
            break;
        }
        for c in claimed {
            if f < failed {
                store
                    .mark_failed(
                        c.lease,
                        DeliveryError::new("PEER_UNREACHABLE", "kết nối bị từ chối"),
                        now + 1,
                    )
                    .await?;
                f += 1;
            } else if r < retrying {
                store
                    .retry_later(
                        c.lease,
                        DeliveryError::new("HTTP_503", "máy chủ đang bảo trì"),
                        now + 3_600_000,
                        now + 1,
                    )
                    .await?;
                r += 1;
            }
        }
    }
    eprintln!(
        "{f} failed, {r} retrying in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let deliveries: usize = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let requests: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    let documents = deliveries.div_ceil(PER_DOCUMENT);

    let dir = tempfile::tempdir()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let certs = concat!(env!("CARGO_MANIFEST_DIR"), "/certs/test-only");
    let text = format!(
        r#"
[node]
name = "latency"
listen = "127.0.0.1:0"
store = "sqlite://{db}?mode=rwc"
trust = ["{certs}/root-ca.cert.pem"]
dev_plain_http = true

[[agency]]
code = "{SENDER}"
name = "Sở Thông tin và Truyền thông tỉnh Gia Lai"
key = "{certs}/stttt-gialai.key.pem"
cert = "{certs}/stttt-gialai.cert.pem"
chain = "{certs}/chain.pem"

[console]
public_url = "{base}"

[[console.local]]
user = "khancap"
password_hash = "{hash}"
role = "quan_tri_he_thong"
"#,
        db = dir.path().join("node.db").display(),
        hash = hash_password(PASSWORD)?,
    );
    let config = Config::from_toml(&text, dir.path(), &|_| None)?;
    let store = AnyStore::open(&config.node.store).await?;
    seed(&store, documents, 2_000, 1_000).await?;
    let node = Node::new(config, store)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(lienthong::http::serve_all(
        listener,
        None,
        node.clone(),
        stopped,
    ));

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let signed = http
        .post(format!("{base}/console/login"))
        .form(&[
            ("user", "khancap"),
            ("password", PASSWORD),
            ("next", "/console/"),
        ])
        .send()
        .await?;
    let cookie = signed
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .ok_or("the sign-in did not set a session cookie")?
        .to_owned();

    // A deep keyset page: ids start at 1 in a fresh store, so the page before 1 500 is the
    // 1 449th–1 498th oldest of 100 000 — the far end from the first page.
    let oldest = 1_500;
    let five_days_ago = lienthong::console::view::format::date(now_ms() - 5 * 86_400_000);
    let pages = [
        ("Tổng quan", "/console/".to_owned()),
        (
            "Nhật ký giao nhận, trang đầu",
            "/console/deliveries".to_owned(),
        ),
        (
            "Nhật ký giao nhận, gửi lỗi + mã lỗi",
            "/console/deliveries?state=failed&error=PEER_UNREACHABLE".to_owned(),
        ),
        (
            "Nhật ký giao nhận, đang chờ gửi",
            "/console/deliveries?state=pending".to_owned(),
        ),
        (
            "Nhật ký giao nhận, tuyến + từ ngày",
            format!("/console/deliveries?route=peer%3Akontum&from={five_days_ago}"),
        ),
        (
            "Nhật ký giao nhận, trang sâu (keyset)",
            format!("/console/deliveries?before={oldest}"),
        ),
        ("Nhật ký kiểm toán, trang đầu", "/console/audit".to_owned()),
        (
            "Nhật ký kiểm toán, lọc hành động",
            "/console/audit?action=delivery.fail".to_owned(),
        ),
    ];
    println!("{deliveries} deliveries, {requests} requests per page");
    println!(
        "{:<42} {:>9} {:>9} {:>9}",
        "page", "p50 ms", "p95 ms", "max ms"
    );
    for (name, path) in &pages {
        let mut times = Vec::with_capacity(requests);
        for _ in 0..requests {
            let t = Instant::now();
            let r = http
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await?;
            let status = r.status();
            r.bytes().await?;
            times.push(t.elapsed());
            if !status.is_success() {
                return Err(format!("{path}: {status}").into());
            }
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:<42} {:>9.1} {:>9.1} {:>9.1}",
            name,
            ms(percentile(&times, 0.50)),
            ms(percentile(&times, 0.95)),
            ms(times.last().copied().unwrap_or_default()),
        );
    }
    stop.send(true).ok();
    server.await??;
    Ok(())
}
