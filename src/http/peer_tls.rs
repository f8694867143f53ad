//! The mutual-TLS listener of the peer endpoint (`node.peer_listen`): its own accept loop
//! (tokio-rustls + hyper), because the verified client certificate has to reach the handler.
//!
//! Per connection: the TLS handshake (client certificate required, bounded by
//! `tls.handshake_timeout`; a client without a certificate or with one no peer's CA or pin accepts
//! is refused here), then the client certificate is mapped to exactly one configured peer
//! ([`PeerIdentifier`](crate::transport::tls::PeerIdentifier)) and every request of the connection
//! carries the result as a [`TlsPeer`] extension. At most [`MAX_CONNECTIONS`] at once; a request
//! header must arrive within 30 s. The peer router serves only `/peer/v1/…` and
//! `/healthz`. Shutdown is graceful: stop accepting, let connections finish their requests.

use std::sync::Arc;

use axum::Extension;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::Metrics;
use crate::node::service::Node;
use crate::store::Store;
use crate::transport::tls::PeerTlsServer;

/// At most this many peer connections at once (handshaking or open); more are closed at once.
/// Peers are a handful of nodes with pooled connections: the cap only bounds what strangers can
/// make the node hold.
pub const MAX_CONNECTIONS: usize = 256;

/// How long a request's header may take to arrive on an open connection.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

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
    let app = super::peer_router_with_metrics(node, metrics);
    let acceptor = TlsAcceptor::from(tls.config.clone());
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped(&mut shutdown) => break,
        };
        let (tcp, remote) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: do not spin.
                tracing::warn!(error = %e, "peer listener: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%remote, max = MAX_CONNECTIONS, "peer listener full: connection closed");
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let identifier = tls.identifier.clone();
        let timeout = tls.handshake_timeout;
        let watcher = graceful.watcher();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            // A handshake still under way when the node stops is abandoned: shutdown waits for
            // requests in progress, not for strangers' half-open connections.
            let handshake = tokio::select! {
                h = tokio::time::timeout(timeout, acceptor.accept(tcp)) => h,
                _ = stopped(&mut stop) => return,
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
            let service = TowerToHyperService::new(app.layer(Extension(TlsPeer(identity))));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%remote, error = %e, "peer connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            break; // the sender is gone: stop, as `serve` does
        }
    }
}
