//! `lienthong bench --flood N`: the attack of the hardening issue on the receiving node while
//! the sender delivers — N silent connections to each of its listeners (peer mutual TLS, clerk
//! plain HTTP) and N requests whose body is trickled a byte a second (half to the peer listener
//! with the sender's own node certificate, as a misbehaving configured peer would; half to the
//! clerk API with the receiver's clerk token, as an insider would), all from the loopback
//! addresses 127.0.0.2…, every connection re-opened as soon as the node closes it.
//!
//! What the attack itself sees is counted (connections opened); what the node did is read from
//! its `/metrics` (connections evicted and refused) and `/proc` (descriptors, RSS).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lienthong::Error;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Where and how hard to attack.
pub struct Target {
    pub peer: SocketAddr,
    /// The TLS name of the peer listener's certificate.
    pub peer_dns: String,
    pub clerk: SocketAddr,
    /// A clerk token of the node under attack (the trickled submissions use it).
    pub clerk_token: String,
    /// Connections of each kind.
    pub n: usize,
    /// Addresses 127.0.0.2 … 127.0.0.(1 + sources) the attack comes from.
    pub sources: usize,
}

/// A running attack; dropping it (or [`Flood::stop`]) ends every connection.
pub struct Flood {
    tasks: JoinSet<()>,
    opened: Arc<AtomicU64>,
}

/// What the flood did, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct FloodReport {
    /// Silent connections held to each listener.
    pub silent_per_listener: usize,
    /// Requests whose body was trickled (half peer, half clerk).
    pub slow_bodies: usize,
    pub sources: usize,
    /// Connections the attack opened in all (re-opened ones included) during the measured run.
    pub attack_connections_opened: u64,
    /// Documents submitted and delivered (receipt held by the sender) during the attack.
    pub submitted: usize,
    pub delivered: usize,
    /// delivered ÷ submitted.
    pub success_rate: f64,
    /// Delivery attempts of the sender that failed (retried), by outcome code.
    pub failed_attempts: u64,
    /// The receiver under attack: peak RSS and peak open descriptors (sampled every 200 ms),
    /// and what its listeners did (from its `/metrics`).
    pub receiver_peak_rss_mb: f64,
    pub receiver_peak_fds: usize,
    pub receiver_evicted_peer: u64,
    pub receiver_evicted_clerk: u64,
    pub receiver_refused: u64,
}

impl Flood {
    /// Starts the attack on `t` with the test PKI at `pki`.
    pub fn start(t: &Target, pki: &Path) -> Result<Flood, Error> {
        let tls = gialai_client(pki)?;
        let name = ServerName::try_from(t.peer_dns.clone())
            .map_err(|e| Error::io("bench --flood", std::io::Error::other(e.to_string())))?;
        let opened = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        let sources = t.sources.max(1);
        let from = move |i: usize| {
            // 127.0.0.2 … : 254 addresses at most in the last byte, then the third.
            let k = 2 + (i % sources);
            IpAddr::V4(Ipv4Addr::new(127, 0, (k / 256) as u8, (k % 256) as u8))
        };
        for i in 0..t.n {
            for at in [t.peer, t.clerk] {
                let opened = opened.clone();
                let src = from(i);
                tasks.spawn(async move {
                    loop {
                        match connect_from(src, at).await {
                            Ok(mut s) => {
                                opened.fetch_add(1, Ordering::Relaxed);
                                wait_closed(&mut s).await;
                            }
                            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                        }
                    }
                });
            }
        }
        for i in 0..t.n {
            let opened = opened.clone();
            let src = from(i);
            if i % 2 == 0 {
                let (tls, name, at) = (tls.clone(), name.clone(), t.peer);
                tasks.spawn(async move {
                    let head = b"POST /peer/v1/packages HTTP/1.1\r\nHost: peer\r\n\
                                 Content-Type: application/xml\r\nContent-Length: 1000000\r\n\r\n<";
                    loop {
                        let Ok(tcp) = connect_from(src, at).await else {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        };
                        opened.fetch_add(1, Ordering::Relaxed);
                        if let Ok(s) = tls.connect(name.clone(), tcp).await {
                            trickle(s, head).await;
                        }
                    }
                });
            } else {
                let (at, token) = (t.clerk, t.clerk_token.clone());
                tasks.spawn(async move {
                    let head = format!(
                        "POST /api/v1/documents HTTP/1.1\r\nHost: clerk\r\nAuthorization: Bearer {token}\r\n\
                         Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 1000000\r\n\r\n--x"
                    );
                    loop {
                        let Ok(s) = connect_from(src, at).await else {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        };
                        opened.fetch_add(1, Ordering::Relaxed);
                        trickle(s, head.as_bytes()).await;
                    }
                });
            }
        }
        Ok(Flood { tasks, opened })
    }

    /// Connections opened so far.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    pub fn stop(mut self) {
        self.tasks.abort_all();
    }
}

/// A TCP connection to `at` from `from` (a loopback address; any port).
async fn connect_from(from: IpAddr, at: SocketAddr) -> std::io::Result<TcpStream> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(from, 0))?;
    s.connect(at).await
}

/// Reads until the other end closes (or errs).
async fn wait_closed<S: AsyncRead + Unpin>(s: &mut S) {
    let mut buf = [0u8; 256];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

/// Sends `head`, then one byte a second, until the node answers or closes.
async fn trickle<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, head: &[u8]) {
    if s.write_all(head).await.is_err() {
        return;
    }
    let mut buf = [0u8; 256];
    loop {
        if s.write_all(b"x").await.is_err() || s.flush().await.is_err() {
            return;
        }
        match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
            Err(_) => continue,
            Ok(_) => return, // an answer (the body timed out) or the close
        }
    }
}

/// A rustls client presenting the sender's node certificate, trusting the test root.
fn gialai_client(pki: &Path) -> Result<tokio_rustls::TlsConnector, Error> {
    let fail = |what: &str, e: String| Error::io(what.to_owned(), std::io::Error::other(e));
    let file = |name: &str| pki.join(name);
    let mut roots = rustls::RootCertStore::empty();
    let root = CertificateDer::from_pem_file(file("root-ca.cert.pem"))
        .map_err(|e| fail("root-ca.cert.pem", e.to_string()))?;
    roots
        .add(root)
        .map_err(|e| fail("root-ca.cert.pem", e.to_string()))?;
    let mut chain = vec![
        CertificateDer::from_pem_file(file("node-gialai.cert.pem"))
            .map_err(|e| fail("node-gialai.cert.pem", e.to_string()))?,
    ];
    for c in CertificateDer::pem_file_iter(file("chain.pem"))
        .map_err(|e| fail("chain.pem", e.to_string()))?
    {
        chain.push(c.map_err(|e| fail("chain.pem", e.to_string()))?);
    }
    let key = PrivateKeyDer::from_pem_file(file("node-gialai.key.pem"))
        .map_err(|e| fail("node-gialai.key.pem", e.to_string()))?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail("TLS client", e.to_string()))?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .map_err(|e| fail("TLS client", e.to_string()))?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Samples a process's RSS and open descriptors every 200 ms and keeps the peaks.
pub struct Sampler {
    task: tokio::task::JoinHandle<()>,
    peaks: Arc<std::sync::Mutex<(f64, usize)>>,
}

impl Sampler {
    pub fn start(pid: u32) -> Sampler {
        let peaks = Arc::new(std::sync::Mutex::new((0.0f64, 0usize)));
        let keep = peaks.clone();
        let task = tokio::spawn(async move {
            loop {
                let rss = super::nodes::proc_stats(pid).map_or(0.0, |s| s.rss_mb);
                let fds = open_fds(pid);
                {
                    let mut p = keep.lock().unwrap_or_else(|e| e.into_inner());
                    p.0 = p.0.max(rss);
                    p.1 = p.1.max(fds);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Sampler { task, peaks }
    }

    /// The peak RSS (MiB) and descriptors seen.
    pub fn stop(self) -> (f64, usize) {
        self.task.abort();
        *self.peaks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The flood's part of the report: deliveries from the sender's store, the receiver's
/// counters from its `/metrics` (read through its clerk listener, still under attack).
pub async fn report(
    clerk: &super::load::Clerk,
    sender_url: &str,
    receiver_url: &str,
    opened: u64,
    (peak_rss_mb, peak_fds): (f64, usize),
    (n, sources): (usize, usize),
    outcome: &super::load::Outcome,
) -> FloodReport {
    let delivered_at = clerk.delivered_at().await.unwrap_or_default();
    let submitted = outcome.submitted.len();
    let delivered = outcome
        .submitted
        .iter()
        .filter(|s| delivered_at.contains_key(&s.id))
        .count();
    let text = |url: String| async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .ok()?;
        client.get(url).send().await.ok()?.text().await.ok()
    };
    let sender = text(format!("{sender_url}/metrics"))
        .await
        .unwrap_or_default();
    let receiver = text(format!("{receiver_url}/metrics"))
        .await
        .unwrap_or_default();
    let attempts = metric(
        &sender,
        "lienthong_delivery_attempts_total",
        "route=\"peer:",
    );
    let ok = metric(
        &sender,
        "lienthong_delivery_attempts_total",
        "outcome=\"delivered\"",
    );
    FloodReport {
        silent_per_listener: n,
        slow_bodies: n,
        sources,
        attack_connections_opened: opened,
        submitted,
        delivered,
        success_rate: delivered as f64 / submitted.max(1) as f64,
        failed_attempts: attempts.saturating_sub(ok),
        receiver_peak_rss_mb: peak_rss_mb,
        receiver_peak_fds: peak_fds,
        receiver_evicted_peer: metric(&receiver, "lienthong_connections_evicted_total", "\"peer\""),
        receiver_evicted_clerk: metric(
            &receiver,
            "lienthong_connections_evicted_total",
            "\"clerk\"",
        ),
        receiver_refused: metric(&receiver, "lienthong_connections_refused_total", ""),
    }
}

/// Open descriptors of process `pid`.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A counter of a Prometheus text, summed over the lines whose labels contain `label`.
pub fn metric(text: &str, name: &str, label: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::metric;

    #[test]
    fn counters_are_summed_by_label() {
        let text = "# HELP x\nlienthong_connections_evicted_total{listener=\"peer\"} 12\n\
                    lienthong_connections_evicted_total{listener=\"clerk\"} 3\n\
                    lienthong_delivery_attempts_total{route=\"peer:r\",outcome=\"PEER_UNREACHABLE\"} 2\n\
                    lienthong_delivery_attempts_total{route=\"peer:r\",outcome=\"delivered\"} 100\n";
        assert_eq!(
            metric(text, "lienthong_connections_evicted_total", "\"peer\""),
            12
        );
        assert_eq!(metric(text, "lienthong_connections_evicted_total", ""), 15);
        assert_eq!(
            metric(
                text,
                "lienthong_delivery_attempts_total",
                "PEER_UNREACHABLE"
            ),
            2
        );
    }
}
