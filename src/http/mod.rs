//! The node's HTTP surface, one axum router:
//!
//! - `/api/v1/…` — the clerk API ([`clerk`]; the mail bridge's drafts in [`drafts`]), bearer
//!   token scoped to one agency ([`auth`]);
//! - `/peer/v1/packages` — the peer endpoint ([`peer`]), served over mutual TLS on
//!   `node.peer_listen` ([`peer_tls`], [`peer_router_with_metrics`]); on the plain listener it
//!   answers only under `node.dev_plain_http`;
//! - `/admin/v1/…` — the admin API ([`admin`], the agency registry in [`registry`], the mail
//!   log and quarantine in [`mail_admin`]), bearer operator token ([`auth::Operator`]);
//! - `/healthz`, `/readyz`, `/metrics` — operations ([`ops`]).
//!
//! Handlers are thin: they authenticate, decode the request, call [`Node`] and map its
//! [`Error`](crate::Error) to a response ([`error`]). Nothing here touches the store for writes
//! except through the node, so a 2xx always follows a commit (invariant 1).
//!
//! The router is generic over the store (`S: Store`), so the PostgreSQL store drops in.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::node::service::Node;
use crate::store::Store;

pub mod admin;
pub mod admission;
pub mod auth;
pub mod clerk;
pub mod conn;
pub mod drafts;
pub mod error;
pub mod extract;
pub mod mail_admin;
pub mod ops;
mod params;
pub mod peer;
pub mod peer_tls;
pub mod plain;
pub mod registry;
pub mod revocation;

pub use ops::Metrics;

/// What every handler sees: the node and the in-memory metrics.
pub struct AppState<S: Store> {
    pub node: Node<S>,
    pub metrics: Arc<Metrics>,
}

impl<S: Store> Clone for AppState<S> {
    fn clone(&self) -> Self {
        AppState {
            node: self.node.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// Room for the multipart framing around a package-sized submission.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// The whole router for `node`.
pub fn router<S: Store>(node: Node<S>) -> Router {
    router_with_metrics(node, Arc::new(Metrics::default()))
}

/// [`router`] with metrics the caller keeps a handle on.
pub fn router_with_metrics<S: Store>(node: Node<S>, metrics: Arc<Metrics>) -> Router {
    let max = node.config.limits.max_package_bytes;
    let state = AppState { node, metrics };
    let api = Router::new()
        .route(
            "/documents",
            post(clerk::submit::<S>)
                .get(clerk::list_documents::<S>)
                .layer(DefaultBodyLimit::max(
                    max.saturating_add(MULTIPART_OVERHEAD),
                )),
        )
        .route("/documents/{id}", get(clerk::document::<S>))
        .route("/documents/{id}/package", get(clerk::document_package::<S>))
        .route(
            "/documents/{id}/deliveries/{delivery_id}/receipt",
            get(clerk::delivery_receipt::<S>),
        )
        .route("/documents/{id}/revoke", post(clerk::revoke::<S>))
        .route(
            "/documents/{id}/update",
            post(clerk::update::<S>).layer(DefaultBodyLimit::max(
                max.saturating_add(MULTIPART_OVERHEAD),
            )),
        )
        .route(
            "/documents/{id}/replace",
            post(clerk::replace::<S>).layer(DefaultBodyLimit::max(
                max.saturating_add(MULTIPART_OVERHEAD),
            )),
        )
        .route("/inbox", get(clerk::list_inbox::<S>))
        .route("/inbox/{id}", get(clerk::inbox_item::<S>))
        .route("/inbox/{id}/package", get(clerk::inbox_package::<S>))
        .route(
            "/inbox/{id}/revocation",
            get(revocation::inbox_revocation::<S>),
        )
        .route(
            "/inbox/{id}/attachments/{n}",
            get(clerk::inbox_attachment::<S>),
        )
        .route("/inbox/{id}/status", post(clerk::report_status::<S>))
        .route("/drafts", get(drafts::list::<S>))
        .route("/drafts/{id}", get(drafts::show::<S>))
        .route("/drafts/{id}/files/{n}", get(drafts::file::<S>))
        .route("/drafts/{id}/approve", post(drafts::approve::<S>))
        .route("/drafts/{id}/discard", post(drafts::discard::<S>));
    let peer = Router::new().route(
        "/packages",
        post(peer::push::<S>).layer(DefaultBodyLimit::max(max)),
    );
    let admin = Router::new()
        .route("/deliveries", get(admin::list_deliveries::<S>))
        .route("/deliveries/{id}", get(admin::delivery::<S>))
        .route("/deliveries/{id}/retry", post(admin::retry::<S>))
        .route("/deliveries/{id}/cancel", post(admin::cancel::<S>))
        .route("/certificates", get(admin::certificates::<S>))
        .route("/registry", get(registry::list::<S>))
        .route("/registry/import", post(registry::import::<S>))
        .route(
            "/registry/{code}",
            get(registry::get::<S>)
                .put(registry::put::<S>)
                .delete(registry::delete::<S>),
        )
        .route(
            "/messages/{id}/revocation",
            get(revocation::message_revocation::<S>),
        )
        .route("/mail", get(mail_admin::list::<S>))
        .route("/mail/{id}", get(mail_admin::show::<S>));
    let mut app = Router::new()
        .nest("/api/v1", api)
        .nest("/peer/v1", peer)
        .nest("/admin/v1", admin);
    // The web console (`[console]`): its own pages, sessions and headers (`crate::console`).
    if let Some(console) = crate::console::router(state.node.clone()) {
        app = app.merge(console);
    }
    app.route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz::<S>))
        .route("/metrics", get(ops::metrics::<S>))
        // After the routes, so the route template (`MatchedPath`) is known when counting.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests::<S>,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The router of the mutual-TLS peer listener: `/peer/v1/packages` and `/healthz` only, counted
/// in the same `metrics` as the main router.
pub fn peer_router_with_metrics<S: Store>(node: Node<S>, metrics: Arc<Metrics>) -> Router {
    let max = node.config.limits.max_package_bytes;
    let state = AppState { node, metrics };
    Router::new()
        .route(
            "/peer/v1/packages",
            post(peer::push::<S>).layer(DefaultBodyLimit::max(max)),
        )
        .route("/healthz", get(ops::healthz))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests::<S>,
        ))
        .fallback(not_found_peer)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// An address no route has: `NOT_FOUND`, saying that the *address* does not exist (not that a
/// document was not found), with where the APIs are.
async fn not_found(uri: axum::http::Uri) -> error::ApiError {
    let path = uri.path();
    error::ApiError::coded(
        crate::Code::NotFound,
        format!(
            "{path}: no such address on this node (the clerk API is under /api/v1/, the admin \
             API under /admin/v1/, operations at /healthz, /readyz and /metrics)"
        ),
    )
    .with_vi(format!(
        "Địa chỉ “{path}” không tồn tại trên hệ thống này; vui lòng kiểm tra lại đường dẫn (API cho văn thư bắt đầu bằng /api/v1/, API quản trị bằng /admin/v1/)."
    ))
}

/// [`not_found`] on the mutual-TLS peer listener, which serves the peer endpoint only.
async fn not_found_peer(uri: axum::http::Uri) -> error::ApiError {
    let path = uri.path();
    error::ApiError::coded(
        crate::Code::NotFound,
        format!(
            "{path}: no such address on this listener (it serves POST /peer/v1/packages and \
             /healthz)"
        ),
    )
    .with_vi(format!(
        "Địa chỉ “{path}” không tồn tại trên cổng kết nối liên thông này (cổng chỉ nhận POST /peer/v1/packages và /healthz)."
    ))
}

/// A known address asked with a method it does not take: `NOT_FOUND` with `405` (axum adds the
/// `Allow` header), instead of axum's empty answer.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> error::ApiError {
    let path = uri.path();
    let mut e = error::ApiError::coded(
        crate::Code::NotFound,
        format!(
            "{method} {path}: this address does not take {method} (the Allow header lists what \
             it takes)"
        ),
    )
    .with_vi(format!(
        "Địa chỉ “{path}” không nhận yêu cầu {method}; vui lòng kiểm tra lại phương thức (tiêu đề Allow của câu trả lời liệt kê các phương thức được nhận)."
    ));
    e.status = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    e
}

/// Counts requests by method, route template and status for `/metrics`.
async fn count_requests<S: Store>(
    State(state): State<AppState<S>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let res = next.run(req).await;
    state
        .metrics
        .count_request(method, route, res.status().as_u16());
    res
}

/// Serves `node` on `listener` until `shutdown` turns `true`: then stops accepting, lets the
/// requests in flight finish, and returns. Connections are held within `node.config.http`
/// ([`plain`]).
pub async fn serve<S: Store>(
    listener: TcpListener,
    node: Node<S>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    serve_all(listener, None, node, shutdown).await
}

/// [`serve`], plus the mutual-TLS peer endpoint on `peer` when given (both share one set of
/// metrics and stop together).
pub async fn serve_all<S: Store>(
    listener: TcpListener,
    peer: Option<(TcpListener, crate::transport::tls::PeerTlsServer)>,
    node: Node<S>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let peers = peer.map(|(l, tls)| {
        tokio::spawn(peer_tls::serve_peers(
            l,
            node.clone(),
            metrics.clone(),
            tls,
            shutdown.clone(),
        ))
    });
    let limits = node.config.http.clone();
    let app = router_with_metrics(node, metrics.clone());
    let served = plain::serve_plain(listener, app, &limits, metrics, shutdown).await;
    if let Some(p) = peers {
        match p.await {
            Ok(r) => r?,
            Err(e) => return Err(std::io::Error::other(format!("peer listener task: {e}"))),
        }
    }
    served
}
