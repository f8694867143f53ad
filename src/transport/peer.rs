//! Pushing a package to a peer node: `POST {url}/peer/v1/packages`, body = the exact signed bytes.
//! A document is answered `200` with the peer's signed receipt (status 01); a status package
//! `204`; a refusal with `{"code", "message"}` and a 4xx status, and for a document that
//! failed the authenticity or integrity check a signed 02 (`"status_package"`, base64).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{TransportError, tls};
use crate::config::{Config, PeerConfig};
use crate::store::PackageFile;

/// What a peer said to a package it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// A document: the signed receipt.
    Receipt(Vec<u8>),
    /// A status package: accepted, nothing to keep.
    Accepted,
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
        let body = response.bytes().await.map_err(|e| {
            TransportError::retry(
                "PEER_UNREACHABLE",
                format!("{url}: reading the answer: {e}"),
            )
        })?;
        match status.as_u16() {
            200 => Ok(Pushed::Receipt(body.to_vec())),
            202 | 204 => Ok(Pushed::Accepted),
            408 | 429 => Err(TransportError::retry(
                "PEER_BUSY",
                format!("{url}: HTTP {status}"),
            )),
            s if (400..500).contains(&s) => {
                let (code, message, status_package) = refusal(&body).unwrap_or_else(|| {
                    (
                        "PEER_REFUSED".into(),
                        format!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
                        None,
                    )
                });
                // A conflict or a refusal of the package itself will not change by retrying.
                let mut e = TransportError::permanent(&code, message);
                e.status_package = status_package;
                Err(e)
            }
            _ => Err(TransportError::retry(
                "PEER_ERROR",
                format!("{url}: HTTP {status}"),
            )),
        }
    }
}

/// A file as an HTTP body, read in chunks of [`FileBody::CHUNK`] bytes, with its exact length
/// (so the request carries a `Content-Length`), hashed as it goes and checked before its last
/// chunk is given out.
struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    package: PackageFile,
    sha256: aws_lc_rs::digest::Context,
    /// Where a mismatch is reported to [`PeerClient::push_file`].
    corrupt: Arc<Mutex<Option<crate::Error>>>,
}

impl FileBody {
    const CHUNK: usize = 256 * 1024;

    async fn open(
        file: &PackageFile,
        corrupt: Arc<Mutex<Option<crate::Error>>>,
    ) -> std::io::Result<FileBody> {
        let f = tokio::fs::File::open(&file.path).await?;
        let remaining = f.metadata().await?.len();
        Ok(FileBody {
            file: f,
            remaining,
            package: file.clone(),
            sha256: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
            corrupt,
        })
    }
}

impl axum::body::HttpBody for FileBody {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        use tokio::io::AsyncRead;
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(self.remaining).map_or(Self::CHUNK, |r| r.min(Self::CHUNK));
        let mut buf = vec![0u8; want];
        let mut read = tokio::io::ReadBuf::new(&mut buf);
        match std::pin::Pin::new(&mut self.file).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let n = read.filled().len();
                if n == 0 {
                    // Shorter than when it was opened: a body that stops early is an error, not
                    // a truncated package.
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the package file is shorter than its length",
                    ))));
                }
                self.remaining -= n as u64;
                buf.truncate(n);
                self.sha256.update(&buf);
                if self.remaining == 0 {
                    let actual = hex::encode(self.sha256.clone().finish());
                    if let Err(e) = self.package.check(&actual) {
                        let message = e.to_string();
                        if let Ok(mut c) = self.corrupt.lock() {
                            *c = Some(e);
                        }
                        return Poll::Ready(Some(Err(std::io::Error::other(message))));
                    }
                }
                Poll::Ready(Some(Ok(hyper::body::Frame::data(buf.into()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.remaining)
    }
}

/// The refusal JSON: its code, message and, when the peer answered with a signed 02, the 02's
/// bytes (`status_package`, base64; one that does not decode is dropped).
fn refusal(body: &[u8]) -> Option<(String, String, Option<Vec<u8>>)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = v.get("code")?.as_str()?.to_owned();
    let message = v
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_owned();
    let status_package = v
        .get("status_package")
        .and_then(|s| s.as_str())
        .and_then(|s| STANDARD.decode(s.trim()).ok());
    Some((code, message, status_package))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_body_is_the_file_in_chunks_with_its_length() {
        use axum::body::HttpBody as _;
        use http_body_util::BodyExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.edxml");
        let data: Vec<u8> = (0..FileBody::CHUNK * 2 + 17).map(|i| i as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = PackageFile {
            path: path.clone(),
            sha256: hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &data)),
        };
        let corrupt = Arc::new(Mutex::new(None));
        let body = FileBody::open(&file, corrupt.clone()).await.unwrap();
        assert_eq!(body.size_hint().exact(), Some(data.len() as u64));
        let got = body.collect().await.unwrap().to_bytes();
        assert!(got.as_ref() == data.as_slice());
        assert!(corrupt.lock().unwrap().is_none());

        // A file changed on disk: every chunk but the last goes out, then the body fails, so
        // the peer never receives a whole package; the push learns why.
        let mut changed = data.clone();
        changed[FileBody::CHUNK + 5] ^= 0x20;
        std::fs::write(&path, &changed).unwrap();
        let mut body = FileBody::open(&file, corrupt.clone()).await.unwrap();
        let mut sent = 0;
        let failed = loop {
            match body.frame().await {
                Some(Ok(frame)) => sent += frame.into_data().unwrap().len(),
                Some(Err(e)) => break e,
                None => panic!("the whole changed file was sent"),
            }
        };
        assert_eq!(sent, FileBody::CHUNK * 2);
        assert!(
            failed.to_string().contains("changed or damaged"),
            "{failed}"
        );
        let reported = corrupt.lock().unwrap().take().unwrap();
        assert_eq!(reported.code(), crate::Code::StoreCorrupt);

        // A file cut short after it was opened is an error, not a shorter package.
        std::fs::write(&path, &data).unwrap();
        let body = FileBody::open(&file, corrupt.clone()).await.unwrap();
        std::fs::write(&path, &data[..10]).unwrap();
        assert!(body.collect().await.is_err());
    }

    #[test]
    fn a_refusal_keeps_the_status_package() {
        let body = br#"{"code":"CERT_UNTRUSTED","message":"m","message_vi":"v","status_package":"PGE+PC9hPg=="}"#;
        let (code, message, sp) = refusal(body).unwrap();
        assert_eq!((code.as_str(), message.as_str()), ("CERT_UNTRUSTED", "m"));
        assert_eq!(sp.as_deref(), Some(&b"<a></a>"[..]));
        let (_, _, none) = refusal(br#"{"code":"NOT_ADDRESSED_HERE","message":"m"}"#).unwrap();
        assert_eq!(none, None);
        let (_, _, bad) = refusal(br#"{"code":"X","status_package":"%%%"}"#).unwrap();
        assert_eq!(bad, None);
    }
}
