//! Pushing a package to a peer node: `POST {url}/peer/v1/packages`, body = the exact signed bytes.
//! A document is answered `200` with the peer's signed receipts (status 01, one per addressed
//! agency it serves; see [`RECEIPTS_MEDIA_TYPE`]); a status package `204`; a refusal with
//! `{"code", "message"}` and a 4xx status, and for a document that failed the authenticity or
//! integrity check a signed 02 from each addressed agency (`"status_packages"`, base64; an older
//! peer's single `"status_package"`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::file_body::FileBody;
use super::{TransportError, tls};
use crate::config::{Config, PeerConfig};
use crate::store::PackageFile;

/// The media type of a push answer that carries every receipt:
/// `{"receipts": [{"recipient": "<OrganId>", "receipt": "<base64 of the signed 01>"}, …]}`.
///
/// A push asks for it with `Accept`; a node that predates it ignores the header and answers
/// `application/xml` with one receipt (its first addressed agency's), and a node that has it
/// answers a push without that `Accept` (an older sender) the same way. `recipient` is only a
/// label for finding a delivery's receipt; what counts is the verified `From` of the 01.
pub const RECEIPTS_MEDIA_TYPE: &str = "application/vnd.lienthong.receipts+json";

/// One receipt of a push answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReceipt {
    /// The agency the answer says signed it (`None`: a single `application/xml` receipt, which
    /// names nobody). Never trusted: the receipt's verified `From` decides.
    pub recipient: Option<String>,
    pub bytes: Vec<u8>,
}

/// What a peer said to a package it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// A document: the signed receipts, one per addressed agency the peer serves (one only
    /// from an older peer).
    Receipts(Vec<PeerReceipt>),
    /// A status package: accepted, nothing to keep.
    Accepted,
}

/// The receipts of a `200` answer, by its `Content-Type`: the JSON list of
/// [`RECEIPTS_MEDIA_TYPE`], or one XML receipt (an older peer). `None`: a JSON list that does
/// not read.
pub fn receipts_of(content_type: Option<&str>, body: &[u8]) -> Option<Vec<PeerReceipt>> {
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    if media.as_deref() != Some(RECEIPTS_MEDIA_TYPE) {
        return Some(vec![PeerReceipt {
            recipient: None,
            bytes: body.to_vec(),
        }]);
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("receipts")?
        .as_array()?
        .iter()
        .map(|r| {
            Some(PeerReceipt {
                recipient: r.get("recipient")?.as_str().map(str::to_owned),
                bytes: STANDARD.decode(r.get("receipt")?.as_str()?.trim()).ok()?,
            })
        })
        .collect()
}

/// The HTTP clients of the peers: one per peer (each with that peer's TLS checks), each pooling
/// its connections between deliveries.
#[derive(Debug, Clone)]
pub struct PeerClient {
    /// By peer name: an `https://` peer's mutual-TLS client.
    tls: HashMap<String, reqwest::Client>,
    /// For `http://` peers (development only, `node.dev_plain_http`).
    plain: reqwest::Client,
    /// This node's name, sent as `X-Lienthong-Peer` to `http://` peers only (development: the
    /// header is how a plain-HTTP peer endpoint tells who pushes). Never sent over TLS.
    node_name: String,
}

fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(90))
}

impl PeerClient {
    /// Builds the clients of every peer of `config`: reads the node's TLS identity and each
    /// peer's CA files (a problem is `CONFIG_INVALID`, as a `TransportError`).
    pub fn new(config: &Config, timeout: Duration) -> Result<PeerClient, TransportError> {
        let build_err = |e: reqwest::Error| {
            TransportError::permanent("PEER_ERROR", format!("HTTP client: {e}"))
        };
        let mut tls = HashMap::new();
        for peer in config
            .peers
            .iter()
            .filter(|p| p.url.starts_with("https://"))
        {
            let identity = config.tls.as_ref().ok_or_else(|| {
                TransportError::permanent(
                    "CONFIG_INVALID",
                    format!(
                        "peer {}: https:// needs the node's [tls] identity",
                        peer.name
                    ),
                )
            })?;
            let rustls = tls::client_config(identity, peer)
                .map_err(|e| TransportError::permanent(e.code().as_str(), e.to_string()))?;
            let client = builder(timeout)
                .tls_backend_preconfigured(rustls)
                .build()
                .map_err(build_err)?;
            tls.insert(peer.name.clone(), client);
        }
        Ok(PeerClient {
            tls,
            plain: builder(timeout).build().map_err(build_err)?,
            node_name: config.node.name.clone(),
        })
    }

    /// Pushes `bytes` to `peer`.
    pub async fn push(&self, peer: &PeerConfig, bytes: Vec<u8>) -> Result<Pushed, TransportError> {
        self.push_body(peer, reqwest::Body::from(bytes)).await
    }

    /// Pushes the package kept in `file` to `peer`, streamed: a large package is never in
    /// memory for its push (a file the store keeps, so it does not change under us). The file is
    /// hashed as it is read; if it no longer has its recorded SHA-256, its last chunk is never
    /// sent (the peer sees a body cut short and stores nothing) and the push fails for good with
    /// `STORE_CORRUPT`: resending damaged bytes cannot succeed.
    pub async fn push_file(
        &self,
        peer: &PeerConfig,
        file: &PackageFile,
    ) -> Result<Pushed, TransportError> {
        let corrupt = Arc::new(Mutex::new(None));
        let body = FileBody::open(file, corrupt.clone()).await.map_err(|e| {
            TransportError::retry(
                "STORE_UNAVAILABLE",
                format!("reading {}: {e}", file.path.display()),
            )
        })?;
        let pushed = self.push_body(peer, reqwest::Body::wrap(body)).await;
        let found = corrupt.lock().ok().and_then(|mut c| c.take());
        match found {
            Some(e) => Err(TransportError::permanent(e.code().as_str(), e.to_string())),
            None => pushed,
        }
    }

    async fn push_body(
        &self,
        peer: &PeerConfig,
        body: reqwest::Body,
    ) -> Result<Pushed, TransportError> {
        let url = format!("{}/peer/v1/packages", peer.url);
        let request = match self.tls.get(&peer.name) {
            Some(client) => client.post(&url),
            None if peer.url.starts_with("http://") => self
                .plain
                .post(&url)
                .header("x-lienthong-peer", &self.node_name),
            None => {
                return Err(TransportError::permanent(
                    "CONFIG_INVALID",
                    format!("{url}: no TLS client for peer {}", peer.name),
                ));
            }
        };
        let response = request
            .header("content-type", "application/xml")
            .header(
                "accept",
                format!("{RECEIPTS_MEDIA_TYPE}, application/xml;q=0.5"),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| {
                let code = if e.is_timeout() {
                    "PEER_TIMEOUT"
                } else {
                    "PEER_UNREACHABLE"
                };
                TransportError::retry(code, format!("{url}: {e}"))
            })?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(|e| {
            TransportError::retry(
                "PEER_UNREACHABLE",
                format!("{url}: reading the answer: {e}"),
            )
        })?;
        match status.as_u16() {
            200 => receipts_of(content_type.as_deref(), &body)
                .map(Pushed::Receipts)
                .ok_or_else(|| {
                    TransportError::retry(
                        "RECEIPT_INVALID",
                        format!("{url}: the {RECEIPTS_MEDIA_TYPE} answer does not read"),
                    )
                }),
            202 | 204 => Ok(Pushed::Accepted),
            408 | 429 => Err(TransportError::retry(
                "PEER_BUSY",
                format!("{url}: HTTP {status}"),
            )),
            s if (400..500).contains(&s) => {
                let (code, message, status_packages) = refusal(&body).unwrap_or_else(|| {
                    (
                        "PEER_REFUSED".into(),
                        format!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
                        Vec::new(),
                    )
                });
                // A conflict or a refusal of the package itself will not change by retrying.
                let mut e = TransportError::permanent(&code, message);
                e.status_packages = status_packages;
                Err(e)
            }
            _ => Err(TransportError::retry(
                "PEER_ERROR",
                format!("{url}: HTTP {status}"),
            )),
        }
    }
}

/// The refusal JSON: its code, message and, when the peer answered with signed 02s, their
/// bytes (`status_packages`, base64, else an older peer's single `status_package`; one that does
/// not decode is dropped).
fn refusal(body: &[u8]) -> Option<(String, String, Vec<Vec<u8>>)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = v.get("code")?.as_str()?.to_owned();
    let message = v
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_owned();
    let decode = |s: &serde_json::Value| s.as_str().and_then(|s| STANDARD.decode(s.trim()).ok());
    let status_packages = match v.get("status_packages").and_then(|l| l.as_array()) {
        Some(list) => list.iter().filter_map(decode).collect(),
        None => v
            .get("status_package")
            .and_then(decode)
            .into_iter()
            .collect(),
    };
    Some((code, message, status_packages))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_a_list_of_receipts_or_one_from_an_older_peer() {
        let one = receipts_of(Some("application/xml; charset=utf-8"), b"<a/>").unwrap();
        assert_eq!(
            one,
            vec![PeerReceipt {
                recipient: None,
                bytes: b"<a/>".to_vec()
            }]
        );
        let body = br#"{"receipts":[{"recipient":"000.00.00.H41","receipt":"PGEvPg=="},
            {"recipient":"000.00.00.H42","receipt":"PGIvPg=="}]}"#;
        let two = receipts_of(Some("Application/Vnd.Lienthong.Receipts+JSON"), body).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].recipient.as_deref(), Some("000.00.00.H42"));
        assert_eq!(two[1].bytes, b"<b/>");
        assert_eq!(
            receipts_of(
                Some(RECEIPTS_MEDIA_TYPE),
                br#"{"receipts":[{"receipt":"%%"}]}"#
            ),
            None
        );
        assert_eq!(receipts_of(Some(RECEIPTS_MEDIA_TYPE), b"<a/>"), None);
    }

    #[test]
    fn a_refusal_keeps_the_status_package() {
        let body = br#"{"code":"CERT_UNTRUSTED","message":"m","message_vi":"v","status_package":"PGE+PC9hPg=="}"#;
        let (code, message, sp) = refusal(body).unwrap();
        assert_eq!((code.as_str(), message.as_str()), ("CERT_UNTRUSTED", "m"));
        assert_eq!(sp, vec![b"<a></a>".to_vec()]);
        let (_, _, none) = refusal(br#"{"code":"NOT_ADDRESSED_HERE","message":"m"}"#).unwrap();
        assert!(none.is_empty());
        let (_, _, bad) = refusal(br#"{"code":"X","status_package":"%%%"}"#).unwrap();
        assert!(bad.is_empty());
        // The list, when there is one, is what counts (its first is also the single one).
        let body = br#"{"code":"X","status_package":"PGE+PC9hPg==","status_packages":["PGE+PC9hPg==","%%%","PGI+PC9iPg=="]}"#;
        let (_, _, list) = refusal(body).unwrap();
        assert_eq!(list, vec![b"<a></a>".to_vec(), b"<b></b>".to_vec()]);
    }
}
