//! The mutual-TLS listener of the peer endpoint (`node.peer_listen`): its own accept loop
//! (tokio-rustls + hyper), because the verified client certificate has to reach the handler.
//!
//! Per connection: a place in the listener's connection table ([`super::admission`]: at most
//! `http.peer_max_connections`, `http.peer_max_connections_per_source` from one address; when
//! full, a stale connection that has not yet delivered a whole request — silent, or trickling
//! its handshake or request — of the most crowded address makes room for a newcomer from
//! another, so strangers holding connections open cannot lock real peers out), the TLS
//! handshake (client certificate
//! required, bounded by `tls.handshake_timeout`; a client without a certificate or with one no
//! peer's CA or pin accepts is refused here), then the client certificate is mapped to exactly
//! one configured peer ([`PeerIdentifier`](crate::transport::tls::PeerIdentifier)) and every
//! request of the connection carries the result as a [`TlsPeer`] extension. A request head must
//! arrive within `http.header_timeout`, its body within `http.body_timeout`
//! ([`super::conn`]). The peer router serves only `/peer/v1/…` and `/healthz`. Shutdown is
//! graceful: stop accepting, let connections finish their requests.

use std::sync::Arc;

use axum::Extension;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::Metrics;
use super::admission::Admission;
use super::conn::{self, Timeouts, Tracked};
use crate::node::service::Node;
use crate::store::Store;
use crate::transport::tls::PeerTlsServer;

/// Who the client certificate of this connection identifies: a configured peer's name, or why it
/// identifies none (the peer endpoint answers that `403 PEER_NOT_AUTHORISED`).
#[derive(Debug, Clone)]
pub struct TlsPeer(pub Result<String, String>);

/// Serves the peer endpoint of `node` over mutual TLS on `listener` until `shutdown` turns
/// `true`.
pub async fn serve_peers<S: Store>(
    listener: TcpListener,
    node: Node<S>,
    metrics: Arc<Metrics>,
    tls: PeerTlsServer,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let limits = node.config.http.clone();
    let timeouts = Timeouts {
        header: limits.header_timeout,
        body: limits.body_timeout,
    };
    let app = super::peer_router_with_metrics(node, metrics.clone());
    let acceptor = TlsAcceptor::from(tls.config.clone());
    let graceful = GracefulShutdown::new();
    let admission = Admission::new(
        limits.peer_max_connections,
        limits.peer_max_connections_per_source,
    );
    while let Some((tcp, remote, ticket)) =
        conn::next_admitted(&listener, &admission, &metrics, "peer", &mut shutdown).await
    {
        let acceptor = acceptor.clone();
        let app = app.clone();
        let identifier = tls.identifier.clone();
        let timeout = tls.handshake_timeout;
        let watcher = graceful.watcher();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let state = ticket.state().clone();
            let tcp = Tracked::new(tcp, state.clone());
            // A handshake still under way when the node stops is abandoned: shutdown waits for
            // requests in progress, not for strangers' half-open connections. So is one evicted
            // to make room.
            let handshake = tokio::select! {
                h = tokio::time::timeout(timeout, acceptor.accept(tcp)) => h,
                _ = stopped(&mut stop) => return,
                _ = state.evicted() => {
                    tracing::debug!(%remote, "peer connection evicted in its TLS handshake");
                    return;
                }
            };
            let stream = match handshake {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::info!(%remote, error = %e, "peer TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::info!(%remote, "peer TLS handshake timed out");
                    return;
                }
            };
            let certs = stream.get_ref().1.peer_certificates().unwrap_or(&[]);
            let identity = identifier.identify(certs);
            match &identity {
                Ok(peer) => tracing::debug!(%remote, %peer, "peer connected"),
                Err(why) => tracing::warn!(%remote, problem = %why, "unknown peer certificate"),
            }
            let proof = if identity.is_ok() {
                conn::Proof::Whole
            } else {
                conn::Proof::Never
            };
            let app = app.layer(Extension(TlsPeer(identity)));
            conn::serve(
                stream, app, ticket, timeouts, watcher, remote, "peer", proof,
            )
            .await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            break; // the sender is gone: stop, as `serve` does
        }
    }
}
