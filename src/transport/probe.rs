//! A peer connection test, as an administrator runs it from the console: TCP to the peer
//! endpoint's host and port, then the mutual-TLS handshake with this node's certificate, the
//! peer's certificate checked exactly as a push checks it (`tls::client_config`). Nothing is
//! sent over the connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use super::tls;
use crate::config::{Config, PeerConfig};

/// How long each step (connect, handshake) may take.
const STEP: Duration = Duration::from_secs(5);

/// What a connection test found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// `host:port` tried.
    pub address: String,
    /// The handshake completed and the peer's certificate is the one configured for it.
    pub ok: bool,
    /// How long it took, in milliseconds.
    pub took_ms: u64,
    /// What failed, in English (for the log and the page's detail).
    pub error: Option<String>,
    /// The step that failed: `url`, `connect` or `tls`.
    pub step: Option<&'static str>,
}

/// Tests the connection to `peer`.
pub async fn probe(config: &Config, peer: &PeerConfig) -> Probe {
    let started = Instant::now();
    let fail = |address: String, step: &'static str, error: String| Probe {
        address,
        ok: false,
        took_ms: started.elapsed().as_millis() as u64,
        error: Some(error),
        step: Some(step),
    };
    let Some((host, port)) = host_port(&peer.url) else {
        return fail(
            peer.url.clone(),
            "url",
            format!("{}: not an https:// URL with a host", peer.url),
        );
    };
    let address = format!("{host}:{port}");
    let Some(identity) = config.tls.as_ref() else {
        return fail(
            address,
            "tls",
            "the node has no [tls] identity to connect with".into(),
        );
    };
    let client = match tls::client_config(identity, peer) {
        Ok(c) => c,
        Err(e) => return fail(address, "tls", e.to_string()),
    };
    let name = match ServerName::try_from(host.clone()) {
        Ok(n) => n,
        Err(e) => return fail(address, "url", format!("{host}: {e}")),
    };
    let tcp = match tokio::time::timeout(STEP, TcpStream::connect((host.as_str(), port))).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return fail(address, "connect", e.to_string()),
        Err(_) => {
            return fail(
                address,
                "connect",
                format!("no answer within {} s", STEP.as_secs()),
            );
        }
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    match tokio::time::timeout(STEP, connector.connect(name, tcp)).await {
        Ok(Ok(_)) => Probe {
            address,
            ok: true,
            took_ms: started.elapsed().as_millis() as u64,
            error: None,
            step: None,
        },
        Ok(Err(e)) => fail(address, "tls", e.to_string()),
        Err(_) => fail(
            address,
            "tls",
            format!("no handshake within {} s", STEP.as_secs()),
        ),
    }
}

/// `(host, port)` of an `https://host[:port]/…` URL (443 by default).
fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = after
            .strip_prefix(':')
            .map_or(Some(443), |p| p.parse().ok())?;
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Some((h.to_owned(), p.parse().ok()?)),
        None => Some((authority.to_owned(), 443)),
    }
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn urls_give_host_and_port() {
        assert_eq!(
            host_port("https://lienthong.nghean.gov.vn:8440/peer/v1"),
            Some(("lienthong.nghean.gov.vn".into(), 8440))
        );
        assert_eq!(host_port("https://a.vn"), Some(("a.vn".into(), 443)));
        assert_eq!(host_port("https://[::1]:9443"), Some(("::1".into(), 9443)));
        assert_eq!(host_port("http://a.vn"), None);
        assert_eq!(host_port("https://u@a.vn"), None);
        assert_eq!(host_port("https://a.vn:x"), None);
    }
}
