//! The peer endpoint: `POST /peer/v1/packages`, the body is one package (document or status).
//!
//! Answers: a document → `200` with the signed receipts (status 01), one per addressed agency of
//! this node, each signed by that agency — the original ones again for a repeat; a status →
//! `204`; a refusal → the error JSON with its code (ingest stores nothing for a refused
//! package). Every refusal is counted by code for `/metrics`.
//!
//! The receipts are a JSON list ([`RECEIPTS_MEDIA_TYPE`]) when the push's `Accept` names that
//! type; otherwise (a sender that predates it) the answer is what it always was, one receipt
//! as `application/xml`: the first addressed agency's.
//!
//! A document refused for an authenticity or integrity reason (Decree 30/2020 Art. 21) is also
//! answered with a signed status 02 from each addressed agency of this node, with the reason:
//! `"status_packages": ["<base64>", …]` in the error JSON, the first also as `"status_package"`
//! (what senders before the list read; see
//! [`Node::rejection_status`](crate::node::service::Node::rejection_status) for when). It is not
//! stored here: the sender keeps it in its status history.
//!
//! **Which peer is pushing.** Over mutual TLS (`node.peer_listen`, [`super::peer_tls`]) the peer
//! is the one configured peer whose certificate checks the verified client certificate passes
//! (the [`TlsPeer`] extension); nothing in the request is consulted. A certificate that
//! identifies no peer is `403 PEER_NOT_AUTHORISED`; ingest then checks that this peer serves the
//! package's verified sender (a peer speaks only for its configured codes).
//!
//! Only under `node.dev_plain_http` (development) does the plain listener answer here, and the
//! peer is then taken from the request, which is not authentication:
//! 1. the `X-Lienthong-Peer: <name>` header, naming a configured peer (an unknown name is
//!    `403 PEER_NOT_AUTHORISED`);
//! 2. otherwise the configured peer that serves the package's `From/OrganId`, found by a cheap
//!    streaming scan of the first `From/OrganId`. No peer serving it is `403 PEER_NOT_AUTHORISED`.
//!
//! Without the flag, a push to the plain listener is `403 PEER_NOT_AUTHORISED`.

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode as Http};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use quick_xml::Reader;
use quick_xml::events::Event;

use super::AppState;
use super::error::ApiError;
use super::peer_tls::TlsPeer;
use crate::Code;
use crate::config::PeerConfig;
use crate::edxml::OrganId;
use crate::store::Store;
use crate::transport::peer::RECEIPTS_MEDIA_TYPE;

/// The header naming the pushing peer on the plain listener (development only).
pub const PEER_HEADER: &str = "x-lienthong-peer";

pub async fn push<S: Store>(
    State(state): State<AppState<S>>,
    tls: Option<Extension<TlsPeer>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(&state, tls.map(|Extension(t)| t), &headers, body).await {
        Ok(r) => r,
        Err(e) => {
            state.metrics.ingest_rejected(e.code);
            tracing::info!(code = e.code, message = %e.message, "peer package refused");
            e.into_response()
        }
    }
}

async fn handle<S: Store>(
    state: &AppState<S>,
    tls: Option<TlsPeer>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let peers = &state.node.config.peers;
    // Before the package is parsed: an unknown client learns nothing more than its refusal.
    let tls_peer = match tls {
        Some(TlsPeer(Ok(name))) => {
            Some(peers.iter().find(|p| p.name == name).ok_or_else(|| {
                ApiError::coded(
                    Code::PeerNotAuthorised,
                    format!("peer {name:?} is not configured"),
                )
            })?)
        }
        Some(TlsPeer(Err(why))) => return Err(ApiError::coded(Code::PeerNotAuthorised, why)),
        None if state.node.config.node.dev_plain_http => None,
        None => {
            // Not a question of the sender's authority: this listener is simply not the peer
            // endpoint, so say where it is.
            return Err(ApiError::coded(
                Code::PeerNotAuthorised,
                "this listener (node.listen, plain HTTP) does not take packages from peers: the \
                 peer endpoint is served over mutual TLS on node.peer_listen",
            )
            .with_vi(
                "Địa chỉ này (cổng HTTP thường, node.listen) không nhận gói tin từ hệ thống khác: điểm nhận gói tin liên thông chỉ phục vụ qua kết nối TLS hai chiều tại cổng node.peer_listen; vui lòng cấu hình hệ thống gửi dùng địa chỉ đó.",
            ));
        }
    };
    let max = state.node.config.limits.max_package_bytes;
    let bytes = read_body(body, headers, max).await?;
    let _in_hand = crate::node::memory::InHand::new(bytes.len());
    let peer = match tls_peer {
        Some(p) => p,
        None => identify(peers, headers, &bytes)?,
    };
    let checked = state.node.ingest_check(&bytes, Some(peer)).await;
    // A refusal (and so a 02) can only come from the checks, while the bytes are still here;
    // storing takes them.
    let out = match checked {
        Ok(checked) => state
            .node
            .ingest_store(checked, bytes, Some(peer))
            .await
            .map_err(|e| (e, None)),
        Err(e) => Err((e, Some(bytes))),
    };
    let out = match out {
        Ok(out) => out,
        Err((e, bytes)) => {
            let statuses = bytes
                .map(|b| state.node.rejection_status(&b, Some(peer), &e))
                .unwrap_or_default();
            let mut refusal = ApiError::from(e);
            if !statuses.is_empty() {
                tracing::info!(peer = %peer.name, code = refusal.code, count = statuses.len(), "answering the refusal with signed 02s");
                refusal.status_packages = statuses.iter().map(|b| STANDARD.encode(b)).collect();
            }
            return Err(refusal);
        }
    };
    crate::fault::crash(crate::fault::Point::IngestCommitted);
    state
        .metrics
        .ingest_accepted(if out.duplicate { "duplicate" } else { "stored" });
    tracing::info!(
        peer = %peer.name,
        message_id = out.message_id,
        duplicate = out.duplicate,
        "peer package accepted"
    );
    if out.receipts.is_empty() {
        return Ok(Http::NO_CONTENT.into_response());
    }
    Ok(if accepts_receipts_list(headers) {
        let list: Vec<serde_json::Value> = out
            .receipts
            .iter()
            .map(|r| serde_json::json!({"recipient": r.recipient, "receipt": STANDARD.encode(&r.bytes)}))
            .collect();
        (
            Http::OK,
            [(CONTENT_TYPE, RECEIPTS_MEDIA_TYPE)],
            serde_json::json!({ "receipts": list }).to_string(),
        )
            .into_response()
    } else {
        let first = out.receipts.into_iter().next().map(|r| r.bytes);
        (
            Http::OK,
            [(CONTENT_TYPE, "application/xml; charset=utf-8")],
            first.unwrap_or_default(),
        )
            .into_response()
    })
}

/// Whether the push's `Accept` names [`RECEIPTS_MEDIA_TYPE`] (with a non-zero quality).
fn accepts_receipts_list(headers: &HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case(RECEIPTS_MEDIA_TYPE) && !zero
        })
}

/// The request body in one buffer of at most `max` bytes. Read frame by frame into a buffer
/// sized from `Content-Length`, so a large package is in memory once: collecting into `Bytes`
/// holds the list of chunks and then copies them into one contiguous buffer.
async fn read_body(body: Body, headers: &HeaderMap, max: usize) -> Result<Vec<u8>, ApiError> {
    use http_body_util::BodyExt as _;
    let too_large = || {
        ApiError::from(
            crate::error::FormatError::new(
                Code::PackageTooLarge,
                "body",
                format!("over the limit of {max} bytes"),
            )
            .said(crate::error::Problem::TooLarge { max: max as u64 }),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            let code = if super::conn::BodyTimedOut::is_cause_of(&e) {
                Code::RequestTimeout
            } else {
                Code::XmlMalformed
            };
            ApiError::coded(code, format!("body: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max {
                return Err(too_large());
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

fn identify<'a>(
    peers: &'a [PeerConfig],
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<&'a PeerConfig, ApiError> {
    if let Some(v) = headers.get(PEER_HEADER) {
        let name = v.to_str().unwrap_or("").trim();
        return peers.iter().find(|p| p.name == name).ok_or_else(|| {
            ApiError::coded(
                Code::PeerNotAuthorised,
                format!("X-Lienthong-Peer: {name:?} is not a configured peer"),
            )
        });
    }
    let from = first_from_organ_id(bytes).ok_or_else(|| {
        ApiError::coded(
            Code::ElementMissing,
            "edXMLEnvelope/edXMLHeader/…/From/OrganId: missing (needed to tell which peer sends)",
        )
    })?;
    let code = OrganId::parse_lenient(&from).map_err(|e| {
        ApiError::coded(Code::OrganIdInvalid, format!("From/OrganId: {}", e.problem))
    })?;
    peers.iter().find(|p| p.serves(&code)).ok_or_else(|| {
        ApiError::coded(
            Code::PeerNotAuthorised,
            format!("{code}: no configured peer serves this sender"),
        )
    })
}

/// The text of the first `From/OrganId` element, by a streaming scan that stops there (or after
/// a few hundred events). Only picks which peer configuration applies; never trusted.
fn first_from_organ_id(bytes: &[u8]) -> Option<String> {
    let mut reader = Reader::from_reader(bytes);
    let mut path: Vec<String> = Vec::new();
    for _ in 0..2000 {
        match reader.read_event().ok()? {
            Event::Start(e) => path.push(e.local_name().into_inner().to_owned()),
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t)
                if path.len() >= 2
                    && path[path.len() - 1] == "OrganId"
                    && path[path.len() - 2] == "From" =>
            {
                let s = AsRef::<str>::as_ref(&t).trim().to_owned();
                return (!s.is_empty()).then_some(s);
            }
            Event::Eof => return None,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_sender_without_building_a_tree() {
        let xml = br#"<?xml version="1.0"?><e:edXML xmlns:e="x"><e:edXMLEnvelope><e:edXMLHeader>
            <e:MessageHeader><e:From><e:OrganId> 000.00.00.H21 </e:OrganId></e:From>
            <e:To><e:OrganId>000.00.00.H41</e:OrganId></e:To>"#;
        assert_eq!(first_from_organ_id(xml).as_deref(), Some("000.00.00.H21"));
        assert_eq!(
            first_from_organ_id(b"<a><To><OrganId>x</OrganId></To></a>"),
            None
        );
        assert_eq!(first_from_organ_id(b"not xml"), None);
    }

    #[test]
    fn the_list_of_receipts_only_when_asked_for() {
        let with = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(axum::http::header::ACCEPT, accept.parse().unwrap());
            accepts_receipts_list(&h)
        };
        assert!(!accepts_receipts_list(&HeaderMap::new()));
        assert!(!with("application/xml"));
        assert!(!with("*/*"));
        assert!(with(
            "application/vnd.lienthong.receipts+json, application/xml;q=0.5"
        ));
        assert!(with(
            "application/xml, Application/Vnd.Lienthong.Receipts+Json;q=0.9"
        ));
        assert!(!with("application/vnd.lienthong.receipts+json;q=0"));
    }
}
