//! The plain-HTTP listener of the clerk API, the admin API and operations (`node.listen`): its
//! own accept loop, as the peer listener has, because `axum::serve` neither bounds how many
//! connections it holds nor how long a request head or body may take.
//!
//! Per connection: a place in the listener's connection table ([`super::admission`]: at most
//! `http.max_connections`, `http.max_connections_per_source` from one address; a connection
//! that has not yet delivered a whole request is evicted, least recently active first, to make
//! room for a new one), a request head within `http.header_timeout` and its body within
//! `http.body_timeout` ([`super::conn`]). HTTP/1.1, which is what the reverse proxy in front
//! speaks. Shutdown is graceful: stop accepting, let connections finish their requests.

use std::sync::Arc;

use axum::Router;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Metrics;
use super::admission::Admission;
use super::conn::{self, Timeouts, Tracked};
use crate::config::HttpConfig;

/// Serves `app` on `listener` within `limits` until `shutdown` turns `true`, then lets the
/// requests in flight finish.
pub async fn serve_plain(
    listener: TcpListener,
    app: Router,
    limits: &HttpConfig,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let timeouts = Timeouts {
        header: limits.header_timeout,
        body: limits.body_timeout,
    };
    let admission = Admission::new(limits.max_connections, limits.max_connections_per_source);
    let graceful = GracefulShutdown::new();
    while let Some((tcp, remote, ticket)) =
        conn::next_admitted(&listener, &admission, &metrics, "clerk", &mut shutdown).await
    {
        let io = Tracked::new(tcp, ticket.state().clone());
        let watcher = graceful.watcher();
        tokio::spawn(conn::serve(
            io,
            app.clone(),
            ticket,
            timeouts,
            watcher,
            remote,
            "clerk",
            conn::Proof::Authenticated,
        ));
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
