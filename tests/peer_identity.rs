//! Peer identification (`transport/tls.rs`) on its own, with real rustls on loopback and node
//! certificates issued at test time where the committed test PKI has none of the kind:
//! - a client certificate that more than one configured peer accepts is `403
//!   PEER_NOT_AUTHORISED` (never a guess), nothing stored;
//! - a pin-only peer: a pinned certificate skips the CA, chain and EKU checks (a self-signed
//!   certificate without EKU gets in) but not its validity period (an expired pinned certificate
//!   is refused at TLS, on the peer endpoint and by the push client);
//! - pushing, the peer's server certificate needs EKU serverAuth and a known CA;
//! - a peer that accepts the connection and never answers (in its TLS handshake, or after
//!   reading the request) is `PEER_TIMEOUT`, retryable, once `retry.push_timeout` has passed.

mod common;

use std::path::Path;
use std::time::Duration;

use common::corpus::{good, sign};
use common::nodes::*;
use common::pki;
use common::testca::TestCa;
use lienthong::config::Config;
use lienthong::store::{InboxFilter, Store};
use lienthong::transport::peer::{PeerClient, Pushed};
use tokio::net::TcpListener;

async fn inbox_len(n: &TestNode) -> usize {
    n.store()
        .list_inbox(NGHEAN, &InboxFilter::default())
        .await
        .unwrap()
        .len()
}

/// A node TLS certificate `name` (EC P-256 key) made in `ca`'s copy: issued by the issuing CA
/// with the extension lines `ext` and `dates` (`-startdate …`/`-enddate …` or `-days N`), or
/// self-signed when `self_signed`. Returns (key, cert) paths.
fn node_tls_cert(
    ca: &TestCa,
    name: &str,
    ext: &str,
    dates: &[&str],
    self_signed: bool,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let (key, csr, cert, extf) = (
        format!("{name}.key.pem"),
        format!("ca/csr/{name}.csr"),
        format!("{name}.cert.pem"),
        format!("ca/csr/{name}.ext"),
    );
    ca.openssl(&[
        "genpkey",
        "-quiet",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &key,
    ]);
    ca.openssl(&[
        "req",
        "-new",
        "-config",
        "openssl.cnf",
        "-key",
        &key,
        "-subj",
        &format!("/C=VN/O=TEST/CN={name}"),
        "-out",
        &csr,
    ]);
    std::fs::write(ca.path(&extf), ext).unwrap();
    if self_signed {
        let mut args = vec![
            "x509", "-req", "-in", &csr, "-signkey", &key, "-extfile", &extf, "-out", &cert,
        ];
        args.extend_from_slice(dates);
        ca.openssl(&args);
    } else {
        let mut args = vec![
            "-name",
            "ca_issuing",
            "-extfile",
            &extf,
            "-in",
            &csr,
            "-out",
            &cert,
        ];
        args.extend_from_slice(dates);
        ca.ca(&args);
    }
    (ca.path(&key), ca.path(&cert))
}

const NODE_EXT: &str = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n";

/// A peer client presenting `cert` (with `key`), trusting the test root for the server.
fn client_with(key: &Path, cert: &Path) -> ApiClient {
    let mut pem = std::fs::read(key).unwrap();
    pem.extend(std::fs::read(cert).unwrap());
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(
            &std::fs::read(pki("root-ca.cert.pem")).unwrap(),
        )
        .unwrap()])
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap()
        .into()
}

fn pin_of(cert: &Path) -> String {
    cert_fingerprint(cert)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_that_more_than_one_peer_accepts_is_403() {
    // Two peers recognised the same way (the test root, gialai's DNS name): Gia Lai's node
    // certificate identifies both.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let na = start(l, |d| {
        config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", "https://127.0.0.1:1", STTTT),
        ) + &peer("gialai-twin", "https://127.0.0.1:2", SONV)
    })
    .await;
    let r = as_peer("gialai")
        .post(na.peer_url("/peer/v1/packages"))
        .body(sign(&good()))
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 403, "PEER_NOT_AUTHORISED").await;
    let m = v["message"].as_str().unwrap();
    assert!(m.contains("several configured peers"), "{v}");
    assert!(m.contains("gialai") && m.contains("gialai-twin"), "{v}");
    assert_eq!(inbox_len(&na).await, 0);
    na.shutdown().await;
}

/// Nghệ An with one pin-only peer `gialai` (serving Sở TT&TT) pinning `pins`.
async fn nghean_pinning(pins: &[String]) -> TestNode {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let store_of = |d: &Path| format!("sqlite://{}?mode=rwc", d.join("node.db").display());
    let pins = pins
        .iter()
        .map(|p| format!("{p:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    start(l, move |d| {
        node_table("nghean", "127.0.0.1:0", &store_of(d))
            + &nghean_agencies()
            + &format!(
                "[[peer]]\nname = \"gialai\"\nurl = \"https://127.0.0.1:1\"\nserves = [\"{STTTT}\"]\npin_sha256 = [{pins}]\n"
            )
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_certificate_skips_ca_and_eku_but_not_its_validity() {
    let ca = TestCa::new();
    // Self-signed, no EKU at all: only the pin can accept it.
    let (self_key, self_cert) = node_tls_cert(&ca, "pinned-self", NODE_EXT, &["-days", "30"], true);
    // Issued by the test CA with clientAuth, but expired in 2020.
    let (old_key, old_cert) = node_tls_cert(
        &ca,
        "pinned-expired",
        &format!("{NODE_EXT}extendedKeyUsage=clientAuth,serverAuth\n"),
        &[
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200201000000Z",
        ],
        false,
    );
    let na = nghean_pinning(&[pin_of(&self_cert), pin_of(&old_cert)]).await;

    let r = client_with(&self_key, &self_cert)
        .post(na.peer_url("/peer/v1/packages"))
        .body(sign(&good()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    assert_eq!(inbox_len(&na).await, 1);

    // Expired: refused at TLS though pinned (before, the pin skipped the dates).
    let r = client_with(&old_key, &old_cert)
        .post(na.peer_url("/peer/v1/packages"))
        .body(sign(&good()))
        .send()
        .await;
    assert!(r.is_err(), "accepted: {:?}", r.map(|r| r.status()));
    assert_eq!(inbox_len(&na).await, 1);
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

/// A Nghệ An node serving its peer endpoint with the certificate `cert` and key `key`.
async fn nghean_serving_with(key: &Path, cert: &Path) -> TestNode {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let p = pki("");
    let (key, cert) = (key.to_owned(), cert.to_owned());
    start(l, move |d| {
        config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", "https://127.0.0.1:1", UBND_GL),
        )
        .replace(
            &format!("{}/node-nghean.cert.pem", p.display()),
            &cert.display().to_string(),
        )
        .replace(
            &format!("{}/node-nghean.key.pem", p.display()),
            &key.display().to_string(),
        )
    })
    .await
}

/// Pushing: a server certificate of the right CA and name but without EKU serverAuth, one from
/// an unknown CA with the right name, and a pinned one that expired are each refused before any
/// request is sent; the same configurations reach the genuine peer.
#[tokio::test(flavor = "multi_thread")]
async fn the_push_client_needs_server_auth_a_known_ca_and_a_current_pin() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let san = format!("subjectAltName=DNS:{},IP:127.0.0.1\n", node_dns("nghean"));
    let (ck, cc) = node_tls_cert(
        &ca,
        "client-only",
        &format!("{NODE_EXT}extendedKeyUsage=clientAuth\n{san}"),
        &["-days", "30"],
        false,
    );
    let (ek, ec) = node_tls_cert(
        &ca,
        "expired-server",
        &format!("{NODE_EXT}extendedKeyUsage=clientAuth,serverAuth\n{san}"),
        &[
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200201000000Z",
        ],
        false,
    );
    let genuine =
        nghean_serving_with(&pki("node-nghean.key.pem"), &pki("node-nghean.cert.pem")).await;
    let client_only = nghean_serving_with(&ck, &cc).await;
    // The rogue root's node certificate claims gialai's name: expect that name here.
    let rogue = nghean_serving_with(&pki("node-rogue.key.pem"), &pki("node-rogue.cert.pem")).await;
    let expired = nghean_serving_with(&ek, &ec).await;

    let by_ca = |url: &str, dns: &str| {
        format!(
            "[[peer]]\nname = \"nghean\"\nurl = \"{url}\"\nserves = [\"{NGHEAN}\"]\nca = [\"{}\"]\ntls_name = \"{dns}\"\n",
            pki("root-ca.cert.pem").display()
        )
    };
    let by_pin = |url: &str, pin: &str| {
        format!(
            "[[peer]]\nname = \"nghean\"\nurl = \"{url}\"\nserves = [\"{NGHEAN}\"]\npin_sha256 = [\"{pin}\"]\n"
        )
    };
    let nghean_dns = node_dns("nghean");
    let gialai_dns = node_dns("gialai");
    for (what, table) in [
        ("no serverAuth", by_ca(&client_only.peer_base, nghean_dns)),
        ("unknown CA", by_ca(&rogue.peer_base, gialai_dns)),
        ("expired pin", by_pin(&expired.peer_base, &pin_of(&ec))),
    ] {
        let e = push(&gialai_config(dir.path(), &table)).await.unwrap_err();
        assert_eq!(e.code, "PEER_UNREACHABLE", "{what}: {e:?}");
        assert!(e.retryable, "{what}");
    }
    // Controls: the genuine peer by CA and name, and by a current pin.
    let genuine_pin = pin_of(&pki("node-nghean.cert.pem"));
    for table in [
        by_ca(&genuine.peer_base, nghean_dns),
        by_pin(&genuine.peer_base, &genuine_pin),
    ] {
        let ok = push(&gialai_config(dir.path(), &table)).await.unwrap();
        assert!(matches!(ok, Pushed::Receipts(_)));
    }
    for n in [&client_only, &rogue, &expired] {
        assert_eq!(inbox_len(n).await, 0);
    }
    for n in [genuine, client_only, rogue, expired] {
        n.shutdown().await;
    }
}

/// Holds every connection `l` accepts, reading what arrives, without ever answering; with
/// `tls`, completes the TLS handshake first (as Nghệ An's node certificate).
fn mute_server(l: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) {
    use tokio::io::AsyncReadExt;
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let tls = tls.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                match tls {
                    None => {
                        let mut s = s;
                        while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                    }
                    Some(a) => {
                        if let Ok(mut t) = a.accept(s).await {
                            while matches!(t.read(&mut buf).await, Ok(n) if n > 0) {}
                        }
                    }
                }
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_that_accepts_and_never_answers_is_peer_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // Nghệ An's identity, from its configuration as the node would read it.
    let na = Config::from_toml(
        &(node_table("nghean", "127.0.0.1:0", "sqlite::memory:") + &nghean_agencies()),
        dir.path(),
        &|_| None,
    )
    .unwrap();
    let (chain, key) = lienthong::transport::tls::identity(na.tls.as_ref().unwrap()).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(lienthong::transport::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server));

    let before_tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let after_request = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let urls = [
        (
            "in the handshake",
            format!("https://{}", before_tls.local_addr().unwrap()),
        ),
        (
            "after the request",
            format!("https://{}", after_request.local_addr().unwrap()),
        ),
    ];
    mute_server(before_tls, None);
    mute_server(after_request, Some(acceptor));
    for (what, url) in urls {
        let table = format!(
            "[[peer]]\nname = \"nghean\"\nurl = \"{url}\"\nserves = [\"{NGHEAN}\"]\nca = [\"{}\"]\ntls_name = \"{}\"\n",
            pki("root-ca.cert.pem").display(),
            node_dns("nghean")
        );
        let config = gialai_config(dir.path(), &table);
        let client = PeerClient::new(&config, Duration::from_secs(2)).unwrap();
        let e = tokio::time::timeout(
            Duration::from_secs(120),
            client.push(&config.peers[0], sign(&good()).into_bytes()),
        )
        .await
        .expect("the push returned")
        .unwrap_err();
        assert_eq!(e.code, "PEER_TIMEOUT", "{what}: {e:?}");
        assert!(e.retryable, "{what}");
    }
}
