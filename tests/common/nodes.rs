//! The node-test harness: configuration text built from the test PKI, real nodes served over
//! loopback (clerk API plain HTTP, peer endpoint mutual TLS), and the HTTP helpers the node tests
//! share. One copy, so that every test that
//! starts a node configures agencies, tokens and peers the same way and a change to the
//! configuration format is made in one place.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use lienthong::config::{Config, hash_token};
use lienthong::node::service::Node;
use lienthong::pki::TrustStore;
use lienthong::store::AnyStore;
use lienthong::transport::tls::PeerTlsServer;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use super::openapi::ApiClient;
use super::pki;

// --- agencies and their clerk tokens -----------------------------------------------------------

/// Sở Thông tin và Truyền thông tỉnh Gia Lai: the sender in most tests.
pub const STTTT: &str = "000.00.05.H21";
/// Sở Nội vụ tỉnh Gia Lai: a second agency on the Gia Lai node.
pub const SONV: &str = "000.00.04.H21";
/// Ủy ban nhân dân tỉnh Gia Lai.
pub const UBND_GL: &str = "000.00.00.H21";
/// Ủy ban nhân dân tỉnh Nghệ An: the only agency of the Nghệ An node.
pub const NGHEAN: &str = "000.00.00.H41";

// Clerk tokens (`[[agency.token]] name = "van-thu"`); the configuration holds only their hashes.
pub const TOK_STTTT: &str = "tok-stttt-0123456789abcdef";
pub const TOK_SONV: &str = "tok-sonv-0123456789abcdef";
pub const TOK_UBND_GL: &str = "tok-ubnd-gl-0123456789abcdef";
pub const TOK_NGHEAN: &str = "tok-nghean-0123456789abcdef";

/// A minimal PDF to attach to dispatches.
pub const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// A one-page PDF that a viewer renders (every object where its cross-reference table says),
/// showing `lines` (ASCII: the standard Helvetica has no Vietnamese letters) — for the
/// console's PDF preview in a real browser.
pub fn pdf_page(lines: &[&str]) -> Vec<u8> {
    let mut text = String::from("BT /F1 16 Tf 72 760 Td 22 TL\n");
    for l in lines {
        let escaped = l
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)");
        text += &format!("({escaped}) Tj T*\n");
    }
    text += "ET\n";
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] \
         /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{text}endstream", text.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

// --- configuration text ------------------------------------------------------------------------

/// The `[node]` table, trusting only the test root, and the node's `[tls]` identity (see
/// [`node_cert`]). Its mutual-TLS `peer_listen` is [`peer_addr_for`] `listen` (`127.0.0.1:0`
/// when `listen` has port 0: [`start`] then binds it).
pub fn node_table(name: &str, listen: &str, store: &str) -> String {
    let peer_listen = match listen.parse::<SocketAddr>() {
        Ok(a) if a.port() != 0 => peer_addr_for(a.port()).to_string(),
        _ => "127.0.0.1:0".to_owned(),
    };
    format!(
        r#"
[node]
name = "{name}"
listen = "{listen}"
peer_listen = "{peer_listen}"
store = "{store}"
trust = ["{root}"]

[tls]
cert = "{p}/{cert}.cert.pem"
key = "{p}/{cert}.key.pem"
chain = "{p}/chain.pem"
"#,
        root = pki("root-ca.cert.pem").display(),
        p = pki("").display(),
        cert = node_cert(name),
    )
}

/// The test-PKI node certificate of the node (or peer) called `name`: `node-nghean` for names
/// starting with `nghean`, otherwise `node-gialai`.
pub fn node_cert(name: &str) -> &'static str {
    if name.starts_with("nghean") {
        "node-nghean"
    } else {
        "node-gialai"
    }
}

/// The DNS name in [`node_cert`]`(name)`: what a peer configuration expects (`tls_name`).
pub fn node_dns(name: &str) -> &'static str {
    if name.starts_with("nghean") {
        "nghean.node.lienthong.test"
    } else {
        "gialai.node.lienthong.test"
    }
}

/// The mutual-TLS peer address of the node whose plain (clerk) listener is on loopback port
/// `plain`: the one its listener was bound to (see [`bind_peer_for`]), or, for a peer's
/// configuration written before that node starts, a free loopback port reserved now and
/// remembered, which the node then binds (and again when it restarts).
pub fn peer_addr_for(plain: u16) -> SocketAddr {
    let mut ports = PEER_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    *ports.entry(plain).or_insert_with(reserve_port)
}

/// The peer addresses of [`peer_addr_for`], by plain port.
static PEER_PORTS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<u16, SocketAddr>>,
> = std::sync::LazyLock::new(Default::default);

/// The mutual-TLS listener of the node whose plain listener is on `plain`. When no configuration
/// named it yet, port 0 is bound and the bound address remembered for [`peer_addr_for`] (no
/// window in which anything else could take it); when one did (a peer's configuration written
/// before this node started, or a restart), that address is bound again — the remaining window,
/// which a pair of nodes that name each other cannot avoid in one process without a reload.
/// Bound by tokio (listen backlog 1024, as the node's own listeners), not std (128): the flood
/// tests open a thousand connections at once.
async fn bind_peer_for(plain: u16) -> (TcpListener, SocketAddr) {
    let named = {
        let ports = PEER_PORTS.lock().unwrap_or_else(|e| e.into_inner());
        ports.get(&plain).copied()
    };
    if let Some(at) = named {
        return (bind_retrying(at).await, at);
    }
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = l.local_addr().unwrap();
    // Named meanwhile by another task's configuration: keep to that address.
    let named = {
        let mut ports = PEER_PORTS.lock().unwrap_or_else(|e| e.into_inner());
        match ports.get(&plain) {
            Some(named) => Some(*named),
            None => {
                ports.insert(plain, at);
                None
            }
        }
    };
    match named {
        Some(named) => {
            drop(l);
            (bind_retrying(named).await, named)
        }
        None => (l, at),
    }
}

/// An `[[agency]]` table signing with the test PKI identity `key` (`stttt-gialai`, …), no tokens.
pub fn agency(code: &str, name: &str, key: &str) -> String {
    format!(
        r#"
[[agency]]
code = "{code}"
name = "{name}"
key = "{p}/{key}.key.pem"
cert = "{p}/{key}.cert.pem"
chain = "{p}/chain.pem"
"#,
        p = pki("").display(),
    )
}

/// An `[[agency.token]]` table for the agency just above it: `token` is stored as its hash.
pub fn clerk_token(name: &str, token: &str) -> String {
    format!(
        "[[agency.token]]\nname = \"{name}\"\nsha256 = \"{}\"\n",
        token_hash(token)
    )
}

/// An agency with one clerk token named `van-thu`, as the HTTP tests use.
pub fn agency_with_clerk(code: &str, name: &str, key: &str, token: &str) -> String {
    agency(code, name, key) + &clerk_token("van-thu", token)
}

/// A `[[peer]]` table: the node at `url` that serves the codes under `serves`, recognised by the
/// test root and [`node_dns`]`(name)`. A loopback `http://127.0.0.1:PORT` (the node's plain clerk
/// listener, as the tests know it) becomes that node's mutual-TLS address
/// `https://`[`peer_addr_for`]`(PORT)`: node-to-node traffic in the tests is mutual TLS.
pub fn peer(name: &str, url: &str, serves: &str) -> String {
    let url = match url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
    {
        Some(port) => format!("https://{}", peer_addr_for(port)),
        None => url.to_owned(),
    };
    format!(
        "[[peer]]\nname = \"{name}\"\nurl = \"{url}\"\nserves = [\"{serves}\"]\nca = [\"{root}\"]\ntls_name = \"{dns}\"\n",
        root = pki("root-ca.cert.pem").display(),
        dns = node_dns(name),
    )
}

/// The hex SHA-256 of a token, as configuration files hold it.
pub fn token_hash(token: &str) -> String {
    hex::encode(hash_token(token))
}

/// The two Gia Lai departments with their clerk tokens: Sở TT&TT and Sở Nội vụ.
pub fn gialai_departments() -> String {
    agency_with_clerk(
        STTTT,
        "Sở Thông tin và Truyền thông tỉnh Gia Lai",
        "stttt-gialai",
        TOK_STTTT,
    ) + &agency_with_clerk(SONV, "Sở Nội vụ tỉnh Gia Lai", "sonv-gialai", TOK_SONV)
}

/// Ủy ban nhân dân tỉnh Nghệ An with its clerk token.
pub fn nghean_agencies() -> String {
    agency_with_clerk(
        NGHEAN,
        "Ủy ban nhân dân tỉnh Nghệ An",
        "ubnd-nghean",
        TOK_NGHEAN,
    )
}

/// A node listening on any loopback port, its store of the run's backend (SQLite in `dir`, or a
/// new PostgreSQL database: `super::store::store_url_in`), serving `agencies`, with one peer
/// `(name, url, serves)`.
pub fn config_text(name: &str, dir: &Path, agencies: &str, peer_of: (&str, &str, &str)) -> String {
    let (peer_name, peer_url, serves) = peer_of;
    let store = super::store::store_url_in(dir);
    node_table(name, "127.0.0.1:0", &store) + agencies + &peer(peer_name, peer_url, serves)
}

// --- nodes in process --------------------------------------------------------------------------

/// A node served over loopback in this process (clerk API plain HTTP at `base`, peer endpoint
/// mutual TLS at `peer_base`), with its store in a temporary folder.
pub struct TestNode {
    pub base: String,
    /// `https://127.0.0.1:PORT` of the mutual-TLS peer endpoint.
    pub peer_base: String,
    pub node: Node<AnyStore>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    worker: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestNode {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A URL on the mutual-TLS peer endpoint (use [`peer_client`] to call it).
    pub fn peer_url(&self, path: &str) -> String {
        format!("{}{path}", self.peer_base)
    }

    pub fn store(&self) -> &AnyStore {
        &self.node.store
    }

    /// Starts the outbox worker (stopped with the server).
    pub fn start_worker(&mut self) {
        assert!(self.worker.is_none());
        self.worker = Some(lienthong::node::outbox::spawn(
            self.node.clone(),
            self.stop.subscribe(),
        ));
    }

    /// [`TestNode::start_worker`], by value.
    pub fn with_worker(mut self) -> TestNode {
        self.start_worker();
        self
    }

    /// Stops the server and the worker, and waits for both to finish.
    pub async fn shutdown(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
        if let Some(w) = self.worker {
            w.await.unwrap();
        }
    }
}

/// Serves on `listener` a node configured by `text` (given the node's temporary folder); the
/// outbox worker is not started.
pub async fn start(listener: TcpListener, text: impl Fn(&Path) -> String) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::from_toml(&text(dir.path()), dir.path(), &|_| None).unwrap();
    let store = super::store::node_store(&mut config).await;
    let plain = listener.local_addr().unwrap();
    let tls = config
        .tls
        .is_some()
        .then(|| PeerTlsServer::new(&config).unwrap());
    let (peer, peer_at) = match (tls, config.node.peer_listen.as_deref()) {
        (Some(tls), Some("127.0.0.1:0") | None) => {
            let (l, at) = bind_peer_for(plain.port()).await;
            (Some((l, tls)), at)
        }
        (Some(tls), Some(at)) => {
            let at: SocketAddr = at.parse().unwrap();
            (Some((bind_retrying(at).await, tls)), at)
        }
        (None, _) => (None, peer_addr_for(plain.port())),
    };
    let node = Node::new(config, store).unwrap();
    let base = format!("http://{plain}");
    let peer_base = format!("https://{peer_at}");
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(lienthong::http::serve_all(
        listener,
        peer,
        node.clone(),
        stopped,
    ));
    TestNode {
        base,
        peer_base,
        node,
        stop,
        task,
        worker: None,
        _dir: dir,
    }
}

/// Binds `addr` (retrying briefly should the kernel still hold it from a previous run of a node).
pub async fn bind_retrying(addr: SocketAddr) -> TcpListener {
    for _ in 0..200 {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    panic!("cannot bind {addr}")
}

/// A loopback address nothing listens on (yet): bound, then released.
pub fn reserve_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// The test root as a trust store.
pub fn trust() -> TrustStore {
    TrustStore::from_path(&pki("root-ca.cert.pem")).unwrap()
}

// --- HTTP --------------------------------------------------------------------------------------

/// The clerk API's submission metadata, signed for Sở TT&TT Gia Lai. It has a `content`, so a
/// submission without a file is accepted (with the warning `NO_FILE`).
pub fn metadata(recipients: &[&str], subject: &str) -> Value {
    json!({
        "recipients": recipients,
        "notation": "STTTT-CĐS",
        "subject": subject,
        "content": "Kính gửi các cơ quan, đơn vị.",
        "signer": {"competence": "KT. GIÁM ĐỐC", "position": "PHÓ GIÁM ĐỐC", "full_name": "Nguyễn Văn An"}
    })
}

/// A submission form: the metadata, and [`PDF`] as `công văn.pdf` if `pdf`.
pub fn submission(meta: &Value, pdf: bool) -> Form {
    let mut form = Form::new().part(
        "metadata",
        Part::text(meta.to_string())
            .mime_str("application/json")
            .unwrap(),
    );
    if pdf {
        form = form.part(
            "file",
            Part::bytes(PDF.to_vec())
                .file_name("công văn.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    }
    form
}

/// The answer's body as JSON; panics with the status and the text if it is not JSON.
pub async fn json_of(r: reqwest::Response) -> Value {
    let status = r.status();
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}"))
}

/// Asserts an error answer: status, code, and both messages present.
pub async fn expect_error(r: reqwest::Response, status: u16, code: &str) -> Value {
    let got = r.status().as_u16();
    let v = json_of(r).await;
    assert_eq!(got, status, "expected {status} {code}, got {v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(!v["message"].as_str().unwrap_or("").is_empty(), "{v}");
    assert!(!v["message_vi"].as_str().unwrap_or("").is_empty(), "{v}");
    v
}

// --- the agency registry (sender binding) ------------------------------------------------------

/// An `[[admin]]` table: an operator token stored as its hash.
pub fn admin_token(name: &str, token: &str) -> String {
    format!(
        "[[admin]]\nname = \"{name}\"\nsha256 = \"{}\"\n",
        token_hash(token)
    )
}

/// Posts `bytes` to `node`'s peer endpoint over mutual TLS as the node called `peer` (its
/// test-PKI node certificate): the HTTP status and the answer (JSON, or the raw text when it is
/// not JSON).
pub async fn push_as(_http: &ApiClient, node: &TestNode, peer: &str, bytes: &[u8]) -> (u16, Value) {
    let r = as_peer(peer)
        .post(node.peer_url("/peer/v1/packages"))
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// SHA-256 of the certificate in a PEM file, lowercase hex.
pub fn cert_fingerprint(pem_path: &Path) -> String {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_file(pem_path).unwrap();
    lienthong::pki::describe(&der).unwrap().sha256_fingerprint
}

/// Issues, with `openssl x509 -req` and the test issuing CA, an organisation signing certificate
/// (the test PKI's signing profile) whose subject is `C=VN, O=…Gia Lai, CN=<cn>` and carries no
/// agency code (no `serialNumber`): a signer only the agency registry can bind. Written to `dir`
/// as `<file>.key.pem` and `<file>.cert.pem`; the CA database is not touched (explicit serial).
pub fn issue_cert_without_code(dir: &Path, file: &str, cn: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{file}.key.pem"));
    let csr = dir.join(format!("{file}.csr.pem"));
    let cert = dir.join(format!("{file}.cert.pem"));
    let ext = dir.join(format!("{file}.ext.cnf"));
    std::fs::write(
        &ext,
        "[v3]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, \
         nonRepudiation\nextendedKeyUsage = 1.3.6.1.4.1.311.10.3.12, emailProtection\n\
         subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
    )
    .unwrap();
    let o = std::process::Command::new("openssl")
        .args([
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-utf8", "-keyout",
        ])
        .arg(&key)
        .args([
            "-subj",
            &format!("/C=VN/O=Ủy ban nhân dân tỉnh Gia Lai/CN={cn}"),
            "-out",
        ])
        .arg(&csr)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let serial = format!("0x{:016x}", fastrand::u64(..));
    let o = std::process::Command::new("openssl")
        .args(["x509", "-req", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(super::pki("issuing-ca.cert.pem"))
        .arg("-CAkey")
        .arg(super::pki("issuing-ca.key.pem"))
        .args(["-set_serial", &serial, "-days", "30", "-sha256", "-extfile"])
        .arg(&ext)
        .args(["-extensions", "v3", "-out"])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (key, cert)
}

// --- mutual TLS as a peer ----------------------------------------------------------------------

/// A client of the mutual-TLS peer endpoint presenting the test-PKI certificate `cert`
/// (`node-gialai`, `node-rogue`, `stttt-gialai`, …, with `chain.pem`), trusting the test root.
pub fn peer_client(cert: &str) -> ApiClient {
    let mut pem = std::fs::read(pki(&format!("{cert}.key.pem"))).unwrap();
    pem.extend(std::fs::read(pki(&format!("{cert}.cert.pem"))).unwrap());
    pem.extend(std::fs::read(pki("chain.pem")).unwrap());
    reqwest::Client::builder()
        .tls_certs_only([root_certificate()])
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap()
        .into()
}

/// A client of the mutual-TLS peer endpoint presenting no certificate.
pub fn anonymous_peer_client() -> ApiClient {
    reqwest::Client::builder()
        .tls_certs_only([root_certificate()])
        .build()
        .unwrap()
        .into()
}

fn root_certificate() -> reqwest::Certificate {
    reqwest::Certificate::from_pem(&std::fs::read(pki("root-ca.cert.pem")).unwrap()).unwrap()
}

/// The peer-client certificate of the node called `name` (see [`node_cert`]).
pub fn as_peer(name: &str) -> ApiClient {
    peer_client(node_cert(name))
}
