//! Mutual TLS between nodes (issue 4), with real rustls on loopback and the test PKI's node
//! certificates (`certs/test-only/make-node-tls.sh`):
//! - the peer endpoint refuses, at TLS, a client without a certificate, with a certificate from
//!   an unknown CA (the rogue root), and with an agency signing certificate (no clientAuth EKU);
//! - a valid node certificate that is a configured peer's, pushing for a code that peer does not
//!   serve, is `403 PEER_NOT_AUTHORISED` and nothing is stored;
//! - the push client refuses a server whose certificate does not carry the expected name or does
//!   not match the pin, and delivers to the genuine one;
//! - a configuration that would let nodes talk plain HTTP without the development flag is refused;
//!   with the flag the plain listener takes pushes named by `X-Lienthong-Peer`.

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
        assert!(matches!(ok, Pushed::Receipt(_)), "{what}");
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

/// At most `MAX_CONNECTIONS` connections at once: one more is closed at once while the others
/// stay open (here all of them idle in their handshake).
#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_cap_are_closed_and_the_others_kept() {
    use lienthong::http::peer_tls::MAX_CONNECTIONS;
    let n = nghean_with_handshake_timeout("120s").await;
    let at = peer_socket(&n);
    let mut held = Vec::with_capacity(MAX_CONNECTIONS);
    for _ in 0..MAX_CONNECTIONS {
        held.push(tokio::net::TcpStream::connect(at).await.unwrap());
    }
    let mut extra = tokio::net::TcpStream::connect(at).await.unwrap();
    assert!(
        closed_within(&mut extra, Duration::from_secs(20)).await,
        "connection {} was not closed",
        MAX_CONNECTIONS + 1
    );
    // The first ones hold their slots (the handshake timeout is two minutes away).
    for s in held.iter_mut().take(3) {
        assert!(!closed_within(s, Duration::from_millis(200)).await);
    }
    // Freeing slots lets new connections in again.
    drop(held);
    let mut again = tokio::net::TcpStream::connect(at).await.unwrap();
    let mut accepted = false;
    for _ in 0..50 {
        if !closed_within(&mut again, Duration::from_millis(200)).await {
            accepted = true;
            break;
        }
        again = tokio::net::TcpStream::connect(at).await.unwrap();
    }
    assert!(
        accepted,
        "no connection accepted after the others went away"
    );
    // `again` is still in its handshake: stopping the node does not wait the two minutes of
    // its handshake timeout for it.
    tokio::time::timeout(Duration::from_secs(60), n.shutdown())
        .await
        .expect("shutdown waited for a half-open handshake");
    drop(again);
}
