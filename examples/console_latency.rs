//! How fast the administrators' console pages answer over a store of 100 000 deliveries (issue
//! 18's acceptance: p95 under 100 ms). A measurement, not a test: run it in release on a quiet
//! machine,
//!
//! ```text
//! cargo run --release --example console_latency [-- DELIVERIES REQUESTS INCOMING]
//! ```
//!
//! It seeds a SQLite store in a temporary folder through the Store API — documents of 100
//! recipients each (`submit_outgoing`: one transaction per document, 100 deliveries and one audit
//! record, as a real submission writes them, so the indexes and the audit chain are those of a
//! real store), then claims and fails or defers some as the outbox would (`claim_due`,
//! `mark_failed`, `retry_later`), delivers half of them two days ago with a 03 back from 60 % of
//! those recipients, and receives 40 000 documents for the same agency over the last 30 days,
//! three in four of them received (03) by its clerk — starts a node with the console on
//! loopback, signs in with a break-glass account and as that agency's clerk, and requests each
//! page REQUESTS times (default 200), printing p50, p95 and the maximum.
//!
//! The clerk's pages are served by the console's router with a session set this program holds
//! (`console::router_with_sessions`, as the tests do: clerks sign in only through OpenID
//! Connect), on a second loopback listener.

use std::time::{Duration, Instant};

use lienthong::config::Config;
use lienthong::console::pages::login::hash_password;
use lienthong::node::service::{Node, now_ms};
use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::future::join_all;
use lienthong::config::Role;
use lienthong::console::access::{Principal, Via};
use lienthong::console::session::Sessions;
use lienthong::edxml::OrganId;
use lienthong::store::{
    AnyStore, DeliveryError, Direction, DocumentMeta, NewDelivery, NewIncoming, NewOutgoing,
    NewStatus, Numbering, SignedPackage, Store,
};
use tokio::net::TcpListener;

const SENDER: &str = "000.00.05.H21";
/// Who the received documents come from.
const SOURCE: &str = "000.00.00.H41";
/// Received documents of [`SENDER`] (by default).
const INCOMING: usize = 40_000;
/// Writes in flight at once while seeding: they share commits.
const CONCURRENT: usize = 500;
const DAY: i64 = 86_400_000;
/// What the received documents are about (one in four each), with Vietnamese diacritics.
const TOPICS: [&str; 4] = [
    "Đề nghị phối hợp triển khai chuyển đổi số",
    "Báo cáo tình hình kinh tế – xã hội tháng",
    "Kế hoạch phòng, chống thiên tai tỉnh Gia Lai",
    "Về việc tiếp nhận hồ sơ trực tuyến mức độ 4",
];
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

/// Delivers `delivered` of the queued deliveries two days ago (their receipts the recipients'
/// 01), then records a 03 from the recipient of three in five of them.
async fn deliver(store: &AnyStore, delivered: usize) -> Result<(), Failure> {
    let now = now_ms();
    let started = Instant::now();
    let mut done = Vec::new();
    while done.len() < delivered {
        let claimed = store
            .claim_due(now, 1000, "outbox:latency", 3_600_000)
            .await?;
        if claimed.is_empty() {
            break;
        }
        let claimed: Vec<_> = claimed.into_iter().take(delivered - done.len()).collect();
        let marks = claimed
            .iter()
            .map(|c| store.mark_delivered(c.lease, b"01".to_vec(), now - 2 * DAY));
        for r in join_all(marks).await {
            r?;
        }
        done.extend(claimed.into_iter().map(|c| (c.document_id, c.recipient)));
    }
    let n = done.len();
    let taken: Vec<_> = done
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 5 < 3)
        .collect();
    for chunk in taken.chunks(CONCURRENT) {
        let writes = chunk.iter().map(|(i, (document_id, recipient))| {
            store.record_status(
                NewStatus {
                    direction: Direction::In,
                    document_sender: SENDER.into(),
                    document_id: document_id.clone(),
                    reporter: recipient.clone(),
                    code: 3,
                    description: "Đã tiếp nhận".into(),
                    reported_at: now - DAY,
                    package: package(10_000_000 + i),
                    deliveries: Vec::new(),
                    peer: Some("nghean".into()),
                    actor: "peer:nghean".into(),
                    revocation: Vec::new(),
                    on_business_type: None,
                },
                now - DAY,
            )
        });
        for r in join_all(writes).await {
            r?;
        }
    }
    eprintln!(
        "{n} delivered, {} of them received (03) there, in {:.1} s",
        taken.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `documents` documents from [`SOURCE`] to [`SENDER`] over the last 30 days, three in four
/// received (03) by its clerk an hour after they arrived.
async fn receive(store: &AnyStore, documents: usize) -> Result<(), Failure> {
    let now = now_ms();
    let span = 30 * DAY;
    let started = Instant::now();
    let at = |i: usize| now - span + span * i as i64 / documents.max(1) as i64;
    let id = |i: usize| format!("{SOURCE},2026/11/01,{}/UBND-VX", i + 1);
    let all: Vec<usize> = (0..documents).collect();
    for chunk in all.chunks(CONCURRENT) {
        let writes = chunk.iter().map(|&i| {
            let subject = format!("{} — số {}", TOPICS[i % TOPICS.len()], i + 1);
            store.ingest_incoming(
                NewIncoming {
                    document: DocumentMeta {
                        sender: SOURCE.into(),
                        document_id: id(i),
                        business_type: 0,
                        code_number: (i + 1).to_string(),
                        code_notation: "UBND-VX".into(),
                        code_year: 2026,
                        subject: subject.clone(),
                    },
                    package: SignedPackage {
                        header_json: serde_json::json!({
                            "header": { "from": { "organ_id": SOURCE, "organ_name": "Ủy ban nhân dân tỉnh Nghệ An" } },
                            "subject": subject,
                        })
                        .to_string(),
                        ..package(i)
                    },
                    local_recipients: vec![SENDER.into()],
                    peer: Some("nghean".into()),
                    receipts: vec![format!("01 {i}").into_bytes()],
                    actor: "peer:nghean".into(),
                    revocation: Vec::new(),
                    received_sha256: None,
                },
                at(i),
            )
        });
        for r in join_all(writes).await {
            r?;
        }
    }
    let taken: Vec<usize> = (0..documents).filter(|i| i % 4 != 0).collect();
    for chunk in taken.chunks(CONCURRENT) {
        let writes = chunk.iter().map(|&i| {
            let when = (at(i) + 3_600_000).min(now);
            store.record_status(
                NewStatus {
                    direction: Direction::Out,
                    document_sender: SOURCE.into(),
                    document_id: id(i),
                    reporter: SENDER.into(),
                    code: 3,
                    description: "Đã tiếp nhận".into(),
                    reported_at: when,
                    package: package(documents + i),
                    deliveries: vec![NewDelivery {
                        recipient: SOURCE.into(),
                        route: "peer:nghean".into(),
                    }],
                    peer: None,
                    actor: format!("clerk:{SENDER}:van-thu"),
                    revocation: Vec::new(),
                    on_business_type: None,
                },
                when,
            )
        });
        for r in join_all(writes).await {
            r?;
        }
    }
    eprintln!(
        "{documents} received, {} of them received (03) by the clerk, in {:.1} s",
        taken.len(),
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
    let incoming: usize = args.next().map_or(Ok(INCOMING), |a| a.parse())?;
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
    deliver(&store, deliveries / 2).await?;
    receive(&store, incoming).await?;
    let node = Node::new(config, store)?;
    // The clerk's console: the same router, with a session started here.
    let sessions = Arc::new(Sessions::new(
        Duration::from_secs(3600),
        Duration::from_secs(3600),
    ));
    let clerk_router: axum::Router =
        lienthong::console::router_with_sessions(node.clone(), sessions.clone())
            .ok_or("the console is not configured")?;
    let clerk_listener = TcpListener::bind("127.0.0.1:0").await?;
    let clerk_base = format!("http://{}", clerk_listener.local_addr()?);
    tokio::spawn(async move {
        axum::serve(
            clerk_listener,
            clerk_router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let clerk_cookie = format!(
        "lt_console={}",
        sessions.create(
            Principal {
                subject: "van-thu-stttt".into(),
                name: "Văn thư Sở Thông tin và Truyền thông".into(),
                role: Role::Clerk,
                agency: Some(OrganId::parse_strict(SENDER)?),
                via: Via::Oidc,
            },
            None,
        )
    );
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
    // The sent documents are the first messages stored (ids 1 …): the page before the 60th
    // is the oldest of the agency's sent documents.
    let oldest_sent = 60;
    let five_days_ago = lienthong::console::view::format::date(now_ms() - 5 * 86_400_000);
    let q = |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    let admin = (base.as_str(), cookie.as_str());
    let clerk = (clerk_base.as_str(), clerk_cookie.as_str());
    let pages = [
        ("Tổng quan", admin, "/console/".to_owned()),
        (
            "Nhật ký giao nhận, trang đầu",
            admin,
            "/console/deliveries".to_owned(),
        ),
        (
            "Nhật ký giao nhận, gửi lỗi + mã lỗi",
            admin,
            "/console/deliveries?state=failed&error=PEER_UNREACHABLE".to_owned(),
        ),
        (
            "Nhật ký giao nhận, đang chờ gửi",
            admin,
            "/console/deliveries?state=pending".to_owned(),
        ),
        (
            "Nhật ký giao nhận, tuyến + từ ngày",
            admin,
            format!("/console/deliveries?route=peer%3Akontum&from={five_days_ago}"),
        ),
        (
            "Nhật ký giao nhận, trang sâu (keyset)",
            admin,
            format!("/console/deliveries?before={oldest}"),
        ),
        (
            "Nhật ký kiểm toán, trang đầu",
            admin,
            "/console/audit".to_owned(),
        ),
        (
            "Nhật ký kiểm toán, lọc hành động",
            admin,
            "/console/audit?action=delivery.fail".to_owned(),
        ),
        ("Tổng quan (văn thư)", clerk, "/console/".to_owned()),
        (
            "Văn bản đến, trang đầu",
            clerk,
            "/console/documents?tab=den".to_owned(),
        ),
        (
            "Văn bản đến, tìm có dấu",
            clerk,
            format!(
                "/console/documents?tab=den&q={}",
                q("phòng, chống thiên tai")
            ),
        ),
        (
            "Văn bản đến, tìm có dấu (hiếm)",
            clerk,
            format!(
                "/console/documents?tab=den&q={}",
                q("thiên tai tỉnh Gia Lai — số 4")
            ),
        ),
        (
            "Văn bản đến, chờ tiếp nhận",
            clerk,
            "/console/documents?tab=den&tt=arrived".to_owned(),
        ),
        (
            "Văn bản đến, chậm tiếp nhận",
            clerk,
            "/console/documents?tab=den&tt=late".to_owned(),
        ),
        (
            "Văn bản đến, đã tiếp nhận",
            clerk,
            "/console/documents?tab=den&tt=registered".to_owned(),
        ),
        (
            "Văn bản đến, trang sâu (keyset)",
            clerk,
            format!("/console/documents?tab=den&before={oldest}"),
        ),
        (
            "Văn bản đi, trang đầu",
            clerk,
            "/console/documents?tab=di".to_owned(),
        ),
        (
            "Văn bản đi, tìm có dấu",
            clerk,
            format!("/console/documents?tab=di&q={}", q("số 99")),
        ),
        (
            "Văn bản đi, chậm tiếp nhận",
            clerk,
            "/console/documents?tab=di&tt=late".to_owned(),
        ),
        (
            "Văn bản đi, đã tiếp nhận",
            clerk,
            "/console/documents?tab=di&tt=registered".to_owned(),
        ),
        (
            "Văn bản đi, trang sâu (keyset)",
            clerk,
            format!("/console/documents?tab=di&before={oldest_sent}"),
        ),
    ];
    println!(
        "{deliveries} deliveries, {incoming} documents received by {SENDER}, {requests} requests per page"
    );
    println!(
        "{:<46} {:>9} {:>9} {:>9}",
        "page", "p50 ms", "p95 ms", "max ms"
    );
    for (name, (base, cookie), path) in &pages {
        let mut times = Vec::with_capacity(requests);
        for _ in 0..requests {
            let t = Instant::now();
            let r = http
                .get(format!("{base}{path}"))
                .header("cookie", *cookie)
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
            "{:<46} {:>9.1} {:>9.1} {:>9.1}",
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
