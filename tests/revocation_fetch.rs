//! The revocation fetcher against servers that misbehave, on loopback: a raw HTTP/1.1 server
//! written here (redirects, junk, HTTP errors, oversized and stalled answers, and a replay of
//! responses a real `openssl ocsp` gave to other requests), next to the test CA's real CRL server
//! and `openssl ocsp` responder (`common/testca.rs`). Each case checks what the check says about
//! the source, not how long it took.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::testca::{Points, TestCa};
use lienthong::Code;
use lienthong::pki::status::{self, CertificateStatus, Status, ValidatedPath};
use lienthong::pki::{RevocationPolicy, TrustStore};
use lienthong::revocation::{Checker, FetchConfig};
use lienthong::verify::{Options, verify_package};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const OCSP_CAP: usize = 64 * 1024;
const CRL_CAP: usize = 16 * 1024 * 1024;

/// A raw HTTP/1.1 server on loopback answering by path (one request per connection), counting
/// the requests of each path. `replay` is what `/replay` answers (an OCSP response).
struct Rogue {
    port: u16,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    replay: Arc<Mutex<Vec<u8>>>,
    /// Where `/redirect` points.
    target: String,
}

impl Rogue {
    async fn start(target: String) -> Rogue {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let replay = Arc::new(Mutex::new(Vec::new()));
        let (h, r, t) = (hits.clone(), replay.clone(), target.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let (h, r, t) = (h.clone(), r.clone(), t.clone());
                tokio::spawn(async move {
                    let _ = serve(s, h, r, t).await;
                });
            }
        });
        Rogue {
            port,
            hits,
            replay,
            target,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn hits(&self, path: &str) -> usize {
        *self.hits.lock().unwrap().get(path).unwrap_or(&0)
    }
}

async fn serve(
    mut s: TcpStream,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    replay: Arc<Mutex<Vec<u8>>>,
    target: String,
) -> std::io::Result<()> {
    // The head, then the body its Content-Length announces.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_owned();
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let answer = |status: &str, body: &[u8]| {
        let mut a = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        a.extend_from_slice(body);
        a
    };
    match path.as_str() {
        "redirect" => {
            let a = format!(
                "HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            s.write_all(a.as_bytes()).await?;
        }
        "junk" => s.write_all(&answer("200 OK", &[0x30; 100])).await?,
        "error" => {
            s.write_all(&answer("500 Internal Server Error", b"oops"))
                .await?
        }
        "ocsp-at-cap" => {
            s.write_all(&answer("200 OK", &vec![0x41; OCSP_CAP]))
                .await?
        }
        "replay" => {
            let body = replay.lock().unwrap().clone();
            s.write_all(&answer("200 OK", &body)).await?
        }
        // One byte over the cap, announced.
        "big-crl-length" => {
            let a = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                CRL_CAP + 1
            );
            s.write_all(a.as_bytes()).await?;
            write_chunks(&mut s, CRL_CAP + 1, false).await?;
        }
        // One byte over the cap, chunked: no length to refuse on, only what arrives.
        "big-crl" | "big-ocsp" => {
            s.write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            )
            .await?;
            let cap = if path == "big-crl" { CRL_CAP } else { OCSP_CAP };
            write_chunks(&mut s, cap + 1, true).await?;
            s.write_all(b"0\r\n\r\n").await?;
        }
        // Accepts the request and never answers (holds the connection until the client drops it).
        "stall" => hold(s).await,
        // Answers the head, then stalls in the body.
        "stall-body" => {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n0")
                .await?;
            hold(s).await
        }
        _ => s.write_all(&answer("404 Not Found", b"")).await?,
    }
    Ok(())
}

async fn write_chunks(s: &mut TcpStream, total: usize, chunked: bool) -> std::io::Result<()> {
    let block = vec![0x42u8; 64 * 1024];
    let mut left = total;
    while left > 0 {
        let n = left.min(block.len());
        if chunked {
            s.write_all(format!("{n:x}\r\n").as_bytes()).await?;
        }
        s.write_all(&block[..n]).await?;
        if chunked {
            s.write_all(b"\r\n").await?;
        }
        left -= n;
    }
    Ok(())
}

async fn hold(mut s: TcpStream) {
    let mut b = [0u8; 1024];
    while let Ok(n) = s.read(&mut b).await {
        if n == 0 {
            break;
        }
    }
}

/// The validated path of a package signed by the leaf `name` of `ca`.
fn path_of(ca: &TestCa, name: &str) -> ValidatedPath {
    let store = TrustStore::from_path(&ca.path("root-ca.cert.pem")).unwrap();
    let bytes = ca.signed_by(name, Some("chain.pem"));
    verify_package(&bytes, &Options::new(&store)).unwrap().path
}

/// The signer's status under `prefer` (the issuing CA's does not matter here).
async fn signer_status(
    config: FetchConfig,
    path: &ValidatedPath,
    at: SystemTime,
) -> CertificateStatus {
    let checker = Checker::new(config, Vec::new()).unwrap();
    // Generous outer bound: a check that never returns fails here instead of hanging the suite.
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        checker.check(path, RevocationPolicy::Prefer, at),
    )
    .await
    .expect("the check returned")
    .unwrap();
    out.certificates[0].clone()
}

fn note(s: &CertificateStatus) -> String {
    assert_eq!(s.status, Status::Unknown, "{s:?}");
    s.note.clone().unwrap_or_default()
}

/// Redirects are not followed (the target, a real CRL server, is never asked); junk, an HTTP
/// error and answers one byte over the caps (16 MiB CRL, 64 KiB OCSP; announced or chunked) are
/// each refused with what was wrong; an OCSP answer exactly at the cap is read (then refused as
/// junk), so the cap is the one the README states.
#[tokio::test(flavor = "multi_thread")]
async fn redirects_junk_errors_and_oversized_answers_are_refused() {
    let ca = TestCa::new();
    ca.publish_crls();
    let real_crl = format!("http://127.0.0.1:{}/issuing.crl", ca.crl_port);
    let rogue = Rogue::start(real_crl).await;
    let aia = ["redirect", "junk", "error", "big-ocsp"]
        .map(|p| format!("OCSP;URI:{}", rogue.url(p)))
        .join(",");
    let cdp = ["redirect", "junk", "big-crl-length", "big-crl"]
        .map(|p| format!("URI:{}", rogue.url(p)))
        .join(",");
    ca.leaf_under(
        "misbehaving",
        "issuing-ca",
        &format!("authorityInfoAccess={aia}\ncrlDistributionPoints={cdp}\n"),
    );
    let path = path_of(&ca, "misbehaving");

    let s = signer_status(FetchConfig::default(), &path, SystemTime::now()).await;
    let n = note(&s);
    for (source, problem) in [
        (
            format!("OCSP {}", rogue.url("redirect")),
            "answered HTTP 302".to_owned(),
        ),
        (
            format!("OCSP {}", rogue.url("junk")),
            "not an OCSP response".to_owned(),
        ),
        (
            format!("OCSP {}", rogue.url("error")),
            "answered HTTP 500".to_owned(),
        ),
        (
            format!("OCSP {}", rogue.url("big-ocsp")),
            format!("answer larger than {OCSP_CAP} bytes"),
        ),
        (
            format!("CRL {}", rogue.url("redirect")),
            "answered HTTP 302".to_owned(),
        ),
        (format!("CRL {}", rogue.url("junk")), "not a CRL".to_owned()),
        (
            format!("CRL {}", rogue.url("big-crl-length")),
            format!("answer larger than {CRL_CAP} bytes"),
        ),
        (
            format!("CRL {}", rogue.url("big-crl")),
            format!("answer larger than {CRL_CAP} bytes"),
        ),
    ] {
        assert!(n.contains(&format!("{source}: {problem}")), "{source}: {n}");
    }
    // Every source was asked once; the redirect's target never.
    assert_eq!(rogue.hits("redirect"), 2);
    assert_eq!(rogue.hits("big-crl"), 1);
    assert_eq!(ca.crl_requests.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert!(!rogue.target.is_empty());

    // Exactly at the OCSP cap: read whole, then refused for what it is.
    let config = FetchConfig {
        ocsp_responder: Some(rogue.url("ocsp-at-cap")),
        ..FetchConfig::default()
    };
    let n = note(&signer_status(config, &path, SystemTime::now()).await);
    assert!(
        n.contains(&format!(
            "OCSP {}: not an OCSP response",
            rogue.url("ocsp-at-cap")
        )),
        "{n}"
    );

    // Under require the same leaf is REVOCATION_UNKNOWN, naming the sources.
    let checker = Checker::new(FetchConfig::default(), Vec::new()).unwrap();
    let e = checker
        .check(&path, RevocationPolicy::Require, SystemTime::now())
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::RevocationUnknown);
    assert!(e.to_string().contains(&rogue.url("junk")), "{e}");
}

/// A responder that accepts and never answers, and a CRL server that stalls in its body, are
/// cut off by the per-fetch timeout; the check's budget cuts off a fetch under way when it is
/// spent (not only the fetches not yet started).
#[tokio::test(flavor = "multi_thread")]
async fn stalled_sources_are_cut_off_by_the_fetch_timeout_and_the_check_budget() {
    let ca = TestCa::new();
    let rogue = Rogue::start(String::new()).await;
    ca.leaf_under(
        "slow",
        "issuing-ca",
        &format!(
            "authorityInfoAccess=OCSP;URI:{}\ncrlDistributionPoints=URI:{}\n",
            rogue.url("stall"),
            rogue.url("stall-body")
        ),
    );
    let path = path_of(&ca, "slow");

    // Timeout 1 s, budget ample: each fetch times out on its own.
    let config = FetchConfig {
        timeout: Duration::from_secs(1),
        budget: Duration::from_secs(600),
        ..FetchConfig::default()
    };
    let n = note(&signer_status(config, &path, SystemTime::now()).await);
    assert!(
        n.contains(&format!(
            "OCSP {}: unreachable (timed out)",
            rogue.url("stall")
        )),
        "{n}"
    );
    assert!(
        n.contains(&format!(
            "CRL {}: read failed (timed out)",
            rogue.url("stall-body")
        )),
        "{n}"
    );
    assert_eq!((rogue.hits("stall"), rogue.hits("stall-body")), (1, 1));

    // Timeout 2 s, budget 3 s: the OCSP fetch times out at 2 s; the CRL fetch, started before the
    // budget was spent, is cut off by it (before, it ran its whole timeout past the budget).
    let config = FetchConfig {
        timeout: Duration::from_secs(2),
        budget: Duration::from_secs(3),
        ..FetchConfig::default()
    };
    let n = note(&signer_status(config, &path, SystemTime::now()).await);
    assert!(
        n.contains(&format!(
            "OCSP {}: unreachable (timed out)",
            rogue.url("stall")
        )),
        "{n}"
    );
    let crl = format!("CRL {}: ", rogue.url("stall-body"));
    assert!(
        n.contains(&format!(
            "{crl}cut off: the time budget of the check was spent"
        )) || n.contains(&format!(
            "{crl}not asked: the time budget of the check was spent"
        )),
        "{n}"
    );
}

/// `openssl ocsp` as the issuing CA's responder, signing with the issuing CA's own key, answers
/// the DER request `request`; returns the DER response.
fn openssl_answer(ca: &TestCa, request: &[u8], name: &str) -> Vec<u8> {
    let req = ca.write(&format!("{name}.req.der"), request);
    let out = ca.dir.path().join(format!("{name}.resp.der"));
    ca.openssl(&[
        "ocsp",
        "-index",
        "ca/issuing/index.txt",
        "-CA",
        "issuing-ca.cert.pem",
        "-rsigner",
        "issuing-ca.cert.pem",
        "-rkey",
        "issuing-ca.key.pem",
        "-reqin",
        req.to_str().unwrap(),
        "-respout",
        out.to_str().unwrap(),
        "-ndays",
        "1",
    ]);
    std::fs::read(out).unwrap()
}

/// Responses that do not echo the nonce the checker sent, each a real `openssl ocsp` answer to
/// another request replayed by a loopback server: one without a nonce is relied on only while
/// its thisUpdate is recent (`ocsp_max_age`, default 10 min), one with another nonce never; one
/// whose thisUpdate is in the future never. The control: the live responder, which echoes the
/// nonce, is relied on at the same later time.
#[tokio::test(flavor = "multi_thread")]
async fn responses_not_bound_to_the_request_are_relied_on_only_while_fresh() {
    let mut ca = TestCa::new();
    ca.leaf("replayed", Points::Ocsp);
    ca.start_ocsp();
    let path = path_of(&ca, "replayed");
    let link = &path.links()[0];
    let rogue = Rogue::start(String::new()).await;
    let replaying = || FetchConfig {
        ocsp_responder: Some(rogue.url("replay")),
        ..FetchConfig::default()
    };
    let now = SystemTime::now();
    let minutes = |m: u64| Duration::from_secs(60 * m);

    // A response made for a request without a nonce (as a cache or CDN serves it).
    let q = status::ocsp_request(link, None).unwrap();
    *rogue.replay.lock().unwrap() = openssl_answer(&ca, &q.request, "no-nonce");
    // Fresh: relied on, though the checker sent a nonce it does not echo.
    let s = signer_status(replaying(), &path, now).await;
    assert_eq!(s.status, Status::Good, "{s:?}");
    // Thirty minutes later (still within its nextUpdate, a day on): too old to rely on.
    let later = now + minutes(30);
    let n = note(&signer_status(replaying(), &path, later).await);
    assert!(n.contains("not bound to this request"), "{n}");
    assert!(n.contains(&format!("{} s allowed", 10 * 60)), "{n}");
    // … unless the operator allows older (ocsp_max_age).
    let lenient = FetchConfig {
        ocsp_max_age: minutes(45),
        ..replaying()
    };
    assert_eq!(
        signer_status(lenient, &path, later).await.status,
        Status::Good
    );
    // The control at the same time: the live responder echoes the nonce.
    let live = signer_status(FetchConfig::default(), &path, later).await;
    assert_eq!(live.status, Status::Good, "{live:?}");

    // A response made for a request with another nonce: never relied on, fresh or not.
    let q = status::ocsp_request(link, Some(&[1u8; 16])).unwrap();
    *rogue.replay.lock().unwrap() = openssl_answer(&ca, &q.request, "other-nonce");
    let n = note(&signer_status(replaying(), &path, now).await);
    assert!(n.contains("does not echo the nonce sent"), "{n}");

    // thisUpdate an hour ahead of the checker's clock: not relied on.
    let q = status::ocsp_request(link, None).unwrap();
    *rogue.replay.lock().unwrap() = openssl_answer(&ca, &q.request, "future");
    let n = note(&signer_status(replaying(), &path, now - minutes(60)).await);
    assert!(n.contains("is in the future"), "{n}");
}

/// The cache keeps an answer no longer than it may be relied on: one without our nonce only while
/// its thisUpdate is within `ocsp_max_age`, however far its nextUpdate. One checker, the same
/// replayed answer: relied on at once, then from the cache five minutes on (the responder now
/// answers junk), and no longer half an hour on — not Good from a cache entry that outlived the
/// window.
#[tokio::test(flavor = "multi_thread")]
async fn a_cached_answer_without_our_nonce_expires_with_its_freshness_window() {
    let mut ca = TestCa::new();
    ca.leaf("cached", Points::Ocsp);
    ca.start_ocsp();
    let path = path_of(&ca, "cached");
    let link = &path.links()[0];
    let rogue = Rogue::start(String::new()).await;
    let checker = Checker::new(
        FetchConfig {
            ocsp_responder: Some(rogue.url("replay")),
            ..FetchConfig::default()
        },
        Vec::new(),
    )
    .unwrap();
    let status_at = async |at: SystemTime| {
        tokio::time::timeout(
            Duration::from_secs(120),
            checker.check(&path, RevocationPolicy::Prefer, at),
        )
        .await
        .expect("the check returned")
        .unwrap()
        .certificates[0]
            .clone()
    };
    let now = SystemTime::now();
    let q = status::ocsp_request(link, None).unwrap();
    *rogue.replay.lock().unwrap() = openssl_answer(&ca, &q.request, "no-nonce");
    assert_eq!(status_at(now).await.status, Status::Good);
    // From now on the responder answers junk: only the cache can say Good.
    *rogue.replay.lock().unwrap() = b"junk".to_vec();
    let s = status_at(now + Duration::from_secs(5 * 60)).await;
    assert_eq!(s.status, Status::Good, "kept within the window: {s:?}");
    let s = status_at(now + Duration::from_secs(30 * 60)).await;
    assert_eq!(s.status, Status::Unknown, "kept past the window: {s:?}");
}
