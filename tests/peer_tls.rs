//! Mutual TLS between nodes (issue 4), with real rustls on loopback and the test PKI's node
//! certificates (`certs/test-only/make-node-tls.sh`):
//! - the peer endpoint refuses, at TLS, a client without a certificate, with a certificate from
//!   an unknown CA (the rogue root), and with an agency signing certificate (no clientAuth EKU);
//! - a valid node certificate that is a configured peer's, pushing for a code that peer does not
//!   serve, is `403 PEER_NOT_AUTHORISED` and nothing is stored;
//! - the push client refuses a server whose certificate does not carry the expected name or does
//!   not match the pin, and delivers to the genuine one;
//! - a configuration that would let nodes talk plain HTTP without the development flag is refused;
//!   with the flag the plain listener takes pushes named by `X-Lienthong-Peer`;
//! - both listeners stay usable under a flood: a thousand silent connections from other
//!   addresses, kept open (re-opened when closed), do not lock a real peer or a clerk out; a
//!   source at its cap gets no more connections; a request head or body sent a byte
//!   at a time is cut off after `http.header_timeout` / `http.body_timeout`; the clerk
//!   listener's connections are capped.

mod common;

use std::path::Path;
use std::time::Duration;

use common::corpus::{good, sign};
use common::nodes::*;
use common::pki;
use lienthong::Code;
use lienthong::config::Config;
use lienthong::store::{InboxFilter, Store};
use lienthong::transport::peer::{PeerClient, Pushed};
use lienthong::transport::tls::fingerprint;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpListener;

/// Nghệ An, whose one peer `gialai` serves `serves`.
async fn nghean(serves: &str) -> TestNode {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl_url = format!("http://{}", reserve_port());
    start(l, |d| {
        config_text("nghean", d, &nghean_agencies(), ("gialai", &gl_url, serves))
    })
    .await
}

async fn inbox_len(n: &TestNode) -> usize {
    n.store()
        .list_inbox(NGHEAN, &InboxFilter::default())
        .await
        .unwrap()
        .len()
}

/// How many HTTP requests reached `/peer/v1/packages` of `n` (any status).
async fn peer_requests(n: &TestNode) -> usize {
    let m = ApiClient::new()
        .get(n.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    m.lines()
        .filter(|l| l.contains("route=\"/peer/v1/packages\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<usize>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_without_a_node_certificate_of_a_known_ca_are_refused_at_tls() {
    let na = nghean(UBND_GL).await;
    let package = sign(&good());
    let refused = [
        ("no client certificate", anonymous_peer_client()),
        ("rogue root", peer_client("node-rogue")),
        ("agency signing certificate", peer_client("stttt-gialai")),
    ];
    for (what, client) in &refused {
        let r = client
            .post(na.peer_url("/peer/v1/packages"))
            .body(package.clone())
            .send()
            .await;
        assert!(r.is_err(), "{what}: accepted: {:?}", r.map(|r| r.status()));
    }
    // Refused at TLS: not one request reached the endpoint, nothing was stored.
    assert_eq!(peer_requests(&na).await, 0);
    assert_eq!(inbox_len(&na).await, 0);

    // The control: Gia Lai's node certificate gets through the same endpoint.
    let r = as_peer("gialai")
        .post(na.peer_url("/peer/v1/packages"))
        .body(package)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    assert_eq!(peer_requests(&na).await, 1);
    assert_eq!(inbox_len(&na).await, 1);
    na.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_speaking_for_a_code_it_does_not_serve_is_403_and_nothing_is_stored() {
    // Gia Lai's node is configured to serve Sở Nội vụ only; the package is Sở TT&TT's.
    let na = nghean(SONV).await;
    let r = as_peer("gialai")
        .post(na.peer_url("/peer/v1/packages"))
        .body(sign(&good()))
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "PEER_NOT_AUTHORISED").await;
    assert_eq!(inbox_len(&na).await, 0);

    // A valid node certificate that is no configured peer's (Nghệ An's own): 403 as well.
    let r = as_peer("nghean")
        .post(na.peer_url("/peer/v1/packages"))
        .body(sign(&good()))
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 403, "PEER_NOT_AUTHORISED").await;
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("not that of a configured peer"),
        "{v}"
    );
    assert_eq!(inbox_len(&na).await, 0);
    na.shutdown().await;
}

/// Gia Lai's configuration with one peer `nghean` described by `peer_table`.
fn gialai_config(dir: &Path, peer_table: &str) -> Config {
    let text =
        node_table("gialai", "127.0.0.1:0", "sqlite::memory:") + &gialai_departments() + peer_table;
    Config::from_toml(&text, dir, &|_| None).unwrap()
}

async fn push(config: &Config) -> Result<Pushed, lienthong::transport::TransportError> {
    let client = PeerClient::new(config, Duration::from_secs(20)).unwrap();
    client
        .push(&config.peers[0], sign(&good()).into_bytes())
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_push_client_refuses_a_server_that_is_not_the_configured_peer() {
    let dir = tempfile::tempdir().unwrap();
    let na = nghean(UBND_GL).await;
    // An impostor at another address: a node serving with Gia Lai's (valid) node certificate.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl_url = format!("http://{}", reserve_port());
    let impostor = start(l, |d| {
        config_text(
            "gialai-impostor",
            d,
            &nghean_agencies(),
            ("gialai", &gl_url, UBND_GL),
        )
    })
    .await;

    let by_name = |url: &str| {
        format!(
            "[[peer]]\nname = \"nghean\"\nurl = \"{url}\"\nserves = [\"{NGHEAN}\"]\nca = [\"{}\"]\ntls_name = \"{}\"\n",
            pki("root-ca.cert.pem").display(),
            node_dns("nghean")
        )
    };
    let nghean_der = CertificateDer::from_pem_file(pki("node-nghean.cert.pem")).unwrap();
    let by_pin = |url: &str| {
        format!(
            "[[peer]]\nname = \"nghean\"\nurl = \"{url}\"\nserves = [\"{NGHEAN}\"]\npin_sha256 = [\"{}\"]\n",
            hex::encode(fingerprint(&nghean_der))
        )
    };
    for (what, table) in [
        ("tls_name", &by_name as &dyn Fn(&str) -> String),
        ("pin", &by_pin),
    ] {
        let e = push(&gialai_config(dir.path(), &table(&impostor.peer_base)))
            .await
            .unwrap_err();
        assert_eq!(e.code, "PEER_UNREACHABLE", "{what}: {e:?}");
        assert!(e.retryable, "{what}");
        // The control: the genuine Nghệ An is accepted by the same configuration.
        let ok = push(&gialai_config(dir.path(), &table(&na.peer_base)))
            .await
            .unwrap_or_else(|e| panic!("{what}: the genuine peer is refused: {e:?}"));
        assert!(matches!(ok, Pushed::Receipts(_)), "{what}");
    }
    assert_eq!(
        peer_requests(&impostor).await,
        0,
        "the impostor got a request"
    );
    impostor.shutdown().await;
    na.shutdown().await;
}

#[test]
fn plain_http_between_nodes_needs_the_development_flag() {
    let dir = Path::new("/");
    let base = node_table("gialai", "127.0.0.1:0", "sqlite::memory:") + &gialai_departments();
    let plain_peer = "[[peer]]\nname = \"nghean\"\nurl = \"http://nghean.example:8440\"\nserves = [\"000.00.00.H41\"]\n";
    let e = Config::from_toml(&(base.clone() + plain_peer), dir, &|_| None).unwrap_err();
    assert_eq!(e.code(), Code::ConfigInvalid);
    assert!(e.to_string().contains("dev_plain_http"), "{e}");

    // With the flag (development), the same peer loads.
    let dev = base.replace("[tls]", "dev_plain_http = true\n\n[tls]");
    Config::from_toml(&(dev + plain_peer), dir, &|_| None).unwrap();

    // Peers but no [tls]: refused.
    let no_tls = format!(
        "[node]\nname = \"gialai\"\nlisten = \"127.0.0.1:0\"\npeer_listen = \"127.0.0.1:0\"\nstore = \"sqlite::memory:\"\ntrust = []\n{}",
        peer("nghean", "https://nghean.example:8443", NGHEAN)
    );
    let e = Config::from_toml(&no_tls, dir, &|_| None).unwrap_err();
    assert_eq!(e.code(), Code::ConfigInvalid);
    assert!(e.to_string().contains("tls"), "{e}");

    // An https peer with a CA but no expected name: any node of that CA could be it; refused.
    let no_name = base
        + &peer("nghean", "https://nghean.example:8443", NGHEAN)
            .replace(&format!("tls_name = \"{}\"\n", node_dns("nghean")), "");
    let e = Config::from_toml(&no_name, dir, &|_| None).unwrap_err();
    assert!(e.to_string().contains("tls_name"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn under_the_development_flag_the_plain_listener_takes_pushes_named_by_header() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let na = start(l, |d| {
        let store = format!("sqlite://{}?mode=rwc", d.join("node.db").display());
        node_table("nghean", "127.0.0.1:0", &store).replace("[tls]", "dev_plain_http = true\n\n[tls]")
            + &nghean_agencies()
            + &format!(
                "[[peer]]\nname = \"gialai\"\nurl = \"http://gialai.example:8440\"\nserves = [\"{UBND_GL}\"]\n"
            )
    })
    .await;
    let http = common::nodes::ApiClient::new();
    let r = http
        .post(na.url("/peer/v1/packages"))
        .header("X-Lienthong-Peer", "hanoi")
        .body(sign(&good()))
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "PEER_NOT_AUTHORISED").await;
    let r = http
        .post(na.url("/peer/v1/packages"))
        .header("X-Lienthong-Peer", "gialai")
        .body(sign(&good()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    assert_eq!(inbox_len(&na).await, 1);
    na.shutdown().await;
}

/// The peer endpoint's address (`host:port`) of `n`.
fn peer_socket(n: &TestNode) -> std::net::SocketAddr {
    n.peer_base.trim_start_matches("https://").parse().unwrap()
}

/// Nghệ An (its peer `gialai` serving Sở TT&TT) with `tls.handshake_timeout = timeout`.
async fn nghean_with_handshake_timeout(timeout: &str) -> TestNode {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl_url = format!("http://{}", reserve_port());
    start(l, |d| {
        config_text("nghean", d, &nghean_agencies(), ("gialai", &gl_url, STTTT)).replace(
            "[tls]\n",
            &format!("[tls]\nhandshake_timeout = \"{timeout}\"\n"),
        )
    })
    .await
}

/// Reads from `s` until the server closes it (`true`) or `wait` passes (`false`).
async fn closed_within(s: &mut tokio::net::TcpStream, wait: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(wait, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // an alert or the like; keep reading
        }
    }
}

/// A client that opens a connection and never starts the handshake is dropped after
/// `tls.handshake_timeout`, so strangers cannot hold connection slots for free.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_completes_the_handshake_is_dropped() {
    let n = nghean_with_handshake_timeout("1s").await;
    let mut silent = tokio::net::TcpStream::connect(peer_socket(&n))
        .await
        .unwrap();
    // Closed by the server: well within 20 s (the timeout is 1 s; without it the read would
    // wait for as long as the client likes).
    assert!(closed_within(&mut silent, Duration::from_secs(20)).await);
    n.shutdown().await;
}

/// The loopback address `127.0.0.x`.
fn lo(x: u8) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, x))
}

/// A TCP connection to `at` from the loopback address `from` (any port).
async fn connect_from(
    from: std::net::IpAddr,
    at: std::net::SocketAddr,
) -> std::io::Result<TcpStream> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.bind(std::net::SocketAddr::new(from, 0))?;
    s.connect(at).await
}

use tokio::net::TcpStream;

/// Holds `n` silent connections to `at`, spread over the addresses 127.0.0.2…, re-opening each
/// one the server closes, until the returned handle is aborted: the attack of the issue.
fn silent_flood(at: std::net::SocketAddr, n: usize) -> tokio::task::JoinHandle<()> {
    flood(at, n, None)
}

/// [`silent_flood`], but each connection sends `first` and then one more byte every 500 ms
/// (a TLS ClientHello or a request head that never ends).
fn flood(
    at: std::net::SocketAddr,
    n: usize,
    first: Option<&'static [u8]>,
) -> tokio::task::JoinHandle<()> {
    use tokio::io::AsyncWriteExt;
    tokio::spawn(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let from = lo(2 + (i % 10) as u8);
            tasks.spawn(async move {
                loop {
                    match connect_from(from, at).await {
                        Ok(mut s) => match first {
                            // Wait until the server closes it, then open another.
                            None => {
                                closed_within(&mut s, Duration::from_secs(3600)).await;
                            }
                            Some(bytes) => {
                                if s.write_all(bytes).await.is_ok() {
                                    while s.write_all(b"\x01").await.is_ok()
                                        && !closed_within(&mut s, Duration::from_millis(500)).await
                                    {
                                    }
                                }
                            }
                        },
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    })
}

/// Lets the flood fill the listener and its connections go stale (2 s without a byte).
async fn let_the_flood_settle() {
    tokio::time::sleep(Duration::from_secs(3)).await;
}

/// The test package with its own DocumentId (number `n` instead of 125), signed.
fn numbered(n: usize) -> String {
    sign(&good().replace("125/STTTT-CĐS", &format!("{}/STTTT-CĐS", 1000 + n)))
}

/// Nghệ An (its peer `gialai` serving Sở TT&TT) with extra lines in `[http]` and an operator
/// token.
async fn nghean_with_http(http: &str) -> TestNode {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl_url = format!("http://{}", reserve_port());
    let http = http.to_owned();
    start(l, move |d| {
        // A handshake timeout far beyond the tests: what closes a connection here is the
        // admission table or the header and body timeouts, not the handshake's.
        config_text("nghean", d, &nghean_agencies(), ("gialai", &gl_url, STTTT))
            .replace("[tls]\n", "[tls]\nhandshake_timeout = \"120s\"\n")
            + &admin_token("operator", OPERATOR)
            + &format!("\n[http]\n{http}\n")
    })
    .await
}

const OPERATOR: &str = "operator-token-0123456789abcdef";

/// A thousand silent connections from ten other addresses, re-opened as soon as the node closes
/// them, with the node's default limits: every push of the real peer (a new connection, so a new
/// handshake, each time) is answered and stored. Before: the first 256 held every slot and the
/// peer's connections were closed at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_silent_connections_does_not_lock_a_real_peer_out() {
    let na = nghean(STTTT).await;
    let flood = silent_flood(peer_socket(&na), 1000);
    let_the_flood_settle().await;
    let mut answered = Vec::new();
    for i in 0..20 {
        // A new client each time: a new connection and handshake under the flood.
        let r = as_peer("gialai")
            .post(na.peer_url("/peer/v1/packages"))
            .body(numbered(i))
            .send()
            .await;
        answered.push(r.map(|r| r.status().as_u16()).map_err(|e| format!("{e:?}")));
    }
    flood.abort();
    assert!(
        answered.iter().all(|r| r == &Ok(200)),
        "pushes under the flood: {answered:?}"
    );
    assert_eq!(inbox_len(&na).await, 20);
    na.shutdown().await;
}

/// The same with connections that trickle a TLS ClientHello, a byte every 500 ms, so that none
/// of them is ever silent for long: 600 of them (more than the listener's places) from ten
/// addresses. A connection with no request head two seconds after its accept is stale however
/// recent its last byte, so the real peer still gets in. Before: the first 256 held every slot.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_trickled_handshakes_does_not_lock_a_real_peer_out() {
    let na = nghean(STTTT).await;
    // A handshake record header announcing 16 KiB, then its body a byte at a time.
    let flood = flood(peer_socket(&na), 600, Some(b"\x16\x03\x01\x40\x00\x01"));
    let_the_flood_settle().await;
    let mut answered = Vec::new();
    for i in 0..10 {
        let r = as_peer("gialai")
            .post(na.peer_url("/peer/v1/packages"))
            .body(numbered(i))
            .send()
            .await;
        answered.push(r.map(|r| r.status().as_u16()).map_err(|e| format!("{e:?}")));
    }
    flood.abort();
    assert!(
        answered.iter().all(|r| r == &Ok(200)),
        "pushes under the flood: {answered:?}"
    );
    assert_eq!(inbox_len(&na).await, 10);
    na.shutdown().await;
}

/// A configured peer's request head sent a byte at a time is cut off after
/// `http.header_timeout` on the peer listener too.
#[tokio::test(flavor = "multi_thread")]
async fn a_trickled_push_head_is_cut_off_after_the_header_timeout() {
    let na = nghean_with_http("header_timeout = \"1s\"").await;
    let tcp = connect_from(lo(2), peer_socket(&na)).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from(node_dns("nghean")).unwrap();
    let tls = gialai_tls().connect(name, tcp).await.unwrap();
    assert!(
        cut_off_within(
            tls,
            b"POST /peer/v1/packages HTTP/1.1\r\nX-Slow: ",
            150,
            Duration::from_secs(25)
        )
        .await,
        "the trickled head was still being read after 25 s"
    );
    na.shutdown().await;
}

/// A configured peer that completes its handshake and then sends nothing is dropped after
/// `http.header_timeout` (the wait for a request head starts at the handshake's end).
#[tokio::test(flavor = "multi_thread")]
async fn a_peer_silent_after_its_handshake_is_dropped_after_the_header_timeout() {
    use tokio::io::AsyncReadExt;
    let na = nghean_with_http("header_timeout = \"1s\"").await;
    let tcp = connect_from(lo(2), peer_socket(&na)).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from(node_dns("nghean")).unwrap();
    let mut tls = gialai_tls().connect(name, tcp).await.unwrap();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(25), async {
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the silent peer was still connected after 25 s"
    );
    assert_eq!(peer_requests(&na).await, 0);
    na.shutdown().await;
}

/// The clerk listener under the same flood: a clerk's requests are answered.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_silent_connections_does_not_lock_clerks_out() {
    let na = nghean_with_http("max_connections = 200").await;
    let at: std::net::SocketAddr = na.base.trim_start_matches("http://").parse().unwrap();
    let flood = silent_flood(at, 1000);
    let_the_flood_settle().await;
    let mut answered = Vec::new();
    for _ in 0..20 {
        let r = reqwest::Client::new()
            .get(na.url("/api/v1/inbox"))
            .bearer_auth(TOK_NGHEAN)
            .send()
            .await;
        answered.push(r.map(|r| r.status().as_u16()).map_err(|e| format!("{e:?}")));
    }
    flood.abort();
    assert!(
        answered.iter().all(|r| r == &Ok(200)),
        "clerk requests under the flood: {answered:?}"
    );
    na.shutdown().await;
}

/// A stranger that asks the cheap, unauthenticated questions (`GET /healthz`, an unknown path)
/// on every place of the clerk listener and then idles never proves its connections: a clerk
/// still gets in, by evicting one of them. Before, a whole request — any request — proved a
/// connection, and proven connections are never evicted: the listener was the stranger's.
#[tokio::test(flavor = "multi_thread")]
async fn cheap_unauthenticated_requests_do_not_hold_the_clerk_listener() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let na = nghean_with_http("max_connections = 20\nmax_connections_per_source = 20").await;
    let at: std::net::SocketAddr = na.base.trim_start_matches("http://").parse().unwrap();
    let mut held = Vec::new();
    for i in 0..20 {
        let mut s = connect_from(lo(2), at).await.unwrap();
        let path = if i % 2 == 0 { "/healthz" } else { "/nope" };
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection {i} got no answer");
        held.push(s);
    }
    let_the_flood_settle().await;
    let r = reqwest::Client::new()
        .get(na.url("/api/v1/inbox"))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(
        r.ok(),
        Some(200),
        "a clerk behind 20 idle unauthenticated connections"
    );
    drop(held);
    na.shutdown().await;
}

/// File descriptors this process holds.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The clerk listener holds at most `http.max_connections`: of 300 connections opened to a cap
/// of 50, the node closes the ones beyond it, so this process — both ends — holds about
/// 300 + 50 descriptors, not 600; and a client from another address still gets an answer.
#[tokio::test(flavor = "multi_thread")]
async fn the_clerk_listener_holds_at_most_its_cap_of_connections() {
    let na = nghean_with_http("max_connections = 50").await;
    let at: std::net::SocketAddr = na.base.trim_start_matches("http://").parse().unwrap();
    let before = open_fds();
    let mut held = Vec::new();
    for i in 0..300 {
        held.push(connect_from(lo(2 + (i % 3) as u8), at).await.unwrap());
    }
    let mut fds = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        fds = open_fds() - before;
        if fds <= 300 + 50 + 10 {
            break;
        }
    }
    assert!(
        fds <= 300 + 50 + 10,
        "{fds} descriptors for 300 connections"
    );
    // A client from another address still gets in: once the flood's connections are stale (2 s
    // without a byte), one of them makes room.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut answer = String::new();
    for _ in 0..20 {
        let mut client = connect_from(lo(9), at).await.unwrap();
        answer.clear();
        let asked = client
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let read =
            tokio::time::timeout(Duration::from_secs(20), client.read_to_string(&mut answer)).await;
        if asked.is_ok() && matches!(read, Ok(Ok(_))) && answer.starts_with("HTTP/1.1 200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    drop(held);
    na.shutdown().await;
}

/// A source at its cap (`http.peer_max_connections_per_source`, `http.max_connections_per_source`)
/// gets no more connections: the next one is closed at once, its others are kept, and other
/// sources still get in. Before, one address could hold every place of the listener.
#[tokio::test(flavor = "multi_thread")]
async fn a_source_at_its_cap_is_refused_and_others_are_not() {
    let na =
        nghean_with_http("peer_max_connections_per_source = 4\nmax_connections_per_source = 4")
            .await;
    let clerk: std::net::SocketAddr = na.base.trim_start_matches("http://").parse().unwrap();
    for (listener, at) in [("peer", peer_socket(&na)), ("clerk", clerk)] {
        let mut own = Vec::new();
        for _ in 0..4 {
            own.push(connect_from(lo(2), at).await.unwrap());
        }
        let mut fifth = connect_from(lo(2), at).await.unwrap();
        assert!(
            closed_within(&mut fifth, Duration::from_secs(20)).await,
            "{listener}: a fifth connection from the same address was kept"
        );
        for s in own.iter_mut() {
            assert!(
                !closed_within(s, Duration::from_millis(200)).await,
                "{listener}"
            );
        }
        let mut other = connect_from(lo(3), at).await.unwrap();
        assert!(
            !closed_within(&mut other, Duration::from_millis(500)).await,
            "{listener}"
        );
    }
    na.shutdown().await;
}

/// A rustls client presenting Gia Lai's node certificate (a configured peer of Nghệ An).
fn gialai_tls() -> tokio_rustls::TlsConnector {
    use rustls_pki_types::PrivateKeyDer;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki("root-ca.cert.pem")).unwrap())
        .unwrap();
    let mut chain = vec![CertificateDer::from_pem_file(pki("node-gialai.cert.pem")).unwrap()];
    chain.extend(
        CertificateDer::pem_file_iter(pki("chain.pem"))
            .unwrap()
            .map(|c| c.unwrap()),
    );
    let key = PrivateKeyDer::from_pem_file(pki("node-gialai.key.pem")).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// Sends `head` at once, then the bytes of `trickle` one every 200 ms; `true` when the server
/// ends the exchange (answers and closes, or closes) within `budget`.
async fn cut_off_within<S>(s: S, head: &[u8], trickle: usize, budget: Duration) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    answer_within(s, head, trickle, budget).await.is_some()
}

/// [`cut_off_within`], giving what the server answered before it closed (empty when it closed
/// without a word); `None` when it was still reading after `budget`.
async fn answer_within<S>(mut s: S, head: &[u8], trickle: usize, budget: Duration) -> Option<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if s.write_all(head).await.is_err() {
        return Some(String::new());
    }
    let deadline = tokio::time::Instant::now() + budget;
    let mut buf = [0u8; 1024];
    for _ in 0..trickle {
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        if s.write_all(b"x").await.is_err() || s.flush().await.is_err() {
            return Some(String::new());
        }
        // Anything from the server (its answer, or the close) ends the exchange.
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::new()),
            Ok(Ok(n)) => {
                // The answer; the server then closes. Read what else it sends first.
                let mut answer = buf[..n].to_vec();
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        answer.extend_from_slice(&buf[..n]);
                    }
                })
                .await;
                return Some(String::from_utf8_lossy(&answer).into_owned());
            }
        }
    }
    None
}

/// A timed-out body's answer: `408 REQUEST_TIMEOUT`, not a malformed body.
fn assert_request_timeout(answer: &str) {
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
}

/// A configured peer that sends its package body a byte at a time is cut off after
/// `http.body_timeout`; before, it could hold the connection for as long as it kept trickling.
#[tokio::test(flavor = "multi_thread")]
async fn a_trickled_push_body_is_cut_off_after_the_body_timeout() {
    let na = nghean_with_http("body_timeout = \"1s\"").await;
    let tcp = connect_from(lo(2), peer_socket(&na)).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from(node_dns("nghean")).unwrap();
    let tls = gialai_tls().connect(name, tcp).await.unwrap();
    let head =
        b"POST /peer/v1/packages HTTP/1.1\r\nHost: nghean\r\nContent-Length: 100000\r\n\r\n<";
    let answer = answer_within(tls, head, 150, Duration::from_secs(25))
        .await
        .expect("the trickled body was still being read after 25 s");
    assert_request_timeout(&answer);
    assert_eq!(inbox_len(&na).await, 0);
    na.shutdown().await;
}

/// On the clerk listener: a request head sent a byte at a time is cut off after
/// `http.header_timeout`, a body after `http.body_timeout` (here an operator's registry
/// import). Before, the plain listener had neither.
#[tokio::test(flavor = "multi_thread")]
async fn the_clerk_listener_cuts_off_trickled_heads_and_bodies() {
    let na = nghean_with_http("header_timeout = \"1s\"\nbody_timeout = \"1s\"").await;
    let at: std::net::SocketAddr = na.base.trim_start_matches("http://").parse().unwrap();
    let s = connect_from(lo(2), at).await.unwrap();
    assert!(
        cut_off_within(
            s,
            b"GET /healthz HTTP/1.1\r\nX-Slow: ",
            150,
            Duration::from_secs(25)
        )
        .await,
        "the trickled head was still being read after 25 s"
    );
    let s = connect_from(lo(2), at).await.unwrap();
    let head = format!(
        "POST /admin/v1/registry/import HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPERATOR}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{"
    );
    let answer = answer_within(s, head.as_bytes(), 150, Duration::from_secs(25))
        .await
        .expect("the trickled body was still being read after 25 s");
    assert_request_timeout(&answer);
    // A clerk's multipart upload, trickled: the same answer.
    let s = connect_from(lo(2), at).await.unwrap();
    let head = format!(
        "POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOK_NGHEAN}\r\n\
         Content-Type: multipart/form-data; boundary=b0undary\r\nContent-Length: 100000\r\n\r\n\
         --b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n\r\n"
    );
    let answer = answer_within(s, head.as_bytes(), 150, Duration::from_secs(25))
        .await
        .expect("the trickled upload was still being read after 25 s");
    assert_request_timeout(&answer);
    // The listener still serves.
    let r = ApiClient::new()
        .get(na.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    na.shutdown().await;
}
