//! The web console (`/console/…`): server-rendered pages in Vietnamese for the province's
//! administrators and for clerks whose document system is not yet connected.
//!
//! - Pages are drawn with maud (compiled templates, every value escaped) in [`view`], from what
//!   the node's read layer (`node::read`) and operations (`node::service`) return — the same
//!   calls the JSON APIs make; no handler here queries the store.
//! - Forms work without JavaScript. The one script and the one stylesheet are files under
//!   `/console/static/`; every response carries a Content-Security-Policy that allows nothing
//!   inline ([`security_headers`]).
//! - Sessions ([`session`]): a random id in an `HttpOnly`, `SameSite=Lax` cookie (`Secure` when
//!   the console is reached over https); every form carries the session's CSRF token, checked in
//!   constant time, and a POST from another origin is refused.
//! - Access ([`access`]): one table of role × action; a refused action is answered 403 and
//!   recorded in the audit chain (`console.forbidden`).
//! - Sign-in ([`pages::login`]): the province's OpenID provider, or a local break-glass
//!   administrator (argon2, rate-limited).

pub mod access;
mod limiter;
pub mod oidc;
pub mod pages;
pub mod session;
pub mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, HeaderValue, LOCATION,
    REFERRER_POLICY, SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};

use crate::audit::AuditEntry;
use crate::config::ConsoleConfig;
use crate::node::service::Node;
use crate::store::Store;
use access::{Action, Principal, refusal_detail};
use session::{Session, Sessions};
use view::layout::{self, Frame, Section};

/// What every console handler sees.
pub struct ConsoleState<S: Store> {
    pub node: Node<S>,
    pub config: Arc<ConsoleConfig>,
    pub sessions: Arc<Sessions>,
    pub limiter: Arc<limiter::LoginLimiter>,
    /// The OpenID client when `[console.oidc]` is configured.
    pub oidc: Option<Arc<oidc::Oidc>>,
}

impl<S: Store> Clone for ConsoleState<S> {
    fn clone(&self) -> Self {
        ConsoleState {
            node: self.node.clone(),
            config: self.config.clone(),
            sessions: self.sessions.clone(),
            limiter: self.limiter.clone(),
            oidc: self.oidc.clone(),
        }
    }
}

impl<S: Store> ConsoleState<S> {
    /// The name in the page header: the node's first agency.
    pub fn node_name(&self) -> &str {
        self.node
            .config
            .agencies
            .first()
            .map_or("", |a| a.organization.organ_name.as_str())
    }

    /// A page for the signed-in `who`.
    pub fn page(&self, who: &Signed, title: &str, section: Section, body: Markup) -> Response {
        let markup = layout::page(
            Frame {
                title,
                section,
                who: Some((&who.session.principal, &who.session.csrf)),
                node_name: self.node_name(),
            },
            body,
        );
        html_response(StatusCode::OK, markup)
    }

    /// An error page (`status`, a title and what to do), for a signed-in person or not.
    pub fn error_page(
        &self,
        who: Option<&Signed>,
        status: StatusCode,
        title: &str,
        text: &str,
    ) -> Response {
        let markup = layout::page(
            Frame {
                title,
                section: Section::None,
                who: who.map(|w| (&w.session.principal, w.session.csrf.as_str())),
                node_name: self.node_name(),
            },
            html! {
                p { (text) }
                p { a href="/console/" { "Về trang Tổng quan" } }
            },
        );
        html_response(status, markup)
    }

    /// The page for a read the store did not answer (503): `title` says what could not be read
    /// ("Tạm thời không đọc được …"); the error goes to the log, never to the page.
    pub fn store_unavailable(&self, who: &Signed, title: &str, e: &crate::Error) -> Response {
        tracing::error!(error = %e, page = title, "console: the store did not answer");
        self.error_page(
            Some(who),
            StatusCode::SERVICE_UNAVAILABLE,
            title,
            "Kho dữ liệu của hệ thống chưa trả lời; vui lòng thử lại sau ít phút.",
        )
    }

    /// Refuses `action` to `who` unless their role has it: 403, and an audit record.
    pub async fn require(&self, who: &Signed, action: Action, path: &str) -> Result<(), Response> {
        if who.session.principal.may(action) {
            return Ok(());
        }
        Err(self
            .refuse(who, action, path, "the role does not have this right")
            .await)
    }

    /// [`require`](Self::require) for a form: also its CSRF token (`given`, the `_csrf` field).
    pub async fn require_form(
        &self,
        who: &Signed,
        action: Action,
        path: &str,
        given: &str,
    ) -> Result<(), Response> {
        if !session::csrf_matches(&who.session, given) {
            return Err(self
                .refuse(
                    who,
                    action,
                    path,
                    "the form's CSRF token is missing or wrong",
                )
                .await);
        }
        self.require(who, action, path).await
    }

    async fn refuse(&self, who: &Signed, action: Action, path: &str, why: &str) -> Response {
        let p = &who.session.principal;
        let entry = AuditEntry::new(
            p.actor(),
            "console.forbidden",
            "console",
            path,
            &refusal_detail(p, action, path, why),
        );
        if let Err(e) = self.node.record_console_event(entry).await {
            tracing::error!(error = %e, path, "could not record a refused console request");
        }
        tracing::warn!(actor = %p.actor(), action = action.as_str(), path, why, "console request refused");
        self.error_page(
            Some(who),
            StatusCode::FORBIDDEN,
            "Không có quyền",
            "Tài khoản của bạn không có quyền thực hiện thao tác này. Yêu cầu đã được ghi vào \
             nhật ký kiểm toán. Nếu cần quyền này, vui lòng liên hệ quản trị hệ thống.",
        )
    }
}

/// A signed-in request: the session and the cookie value that names it. Pages that need a
/// person take this; without a live session the browser is sent to the sign-in page.
#[derive(Debug, Clone)]
pub struct Signed {
    pub session: Session,
    pub cookie: String,
}

impl Signed {
    pub fn principal(&self) -> &Principal {
        &self.session.principal
    }
}

impl<S: Store> FromRequestParts<ConsoleState<S>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState<S>,
    ) -> Result<Signed, Response> {
        let cookie = parts
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|h| session::cookie_value(h, session::COOKIE))
            .map(str::to_owned);
        if let Some(cookie) = cookie
            && let Some(session) = state.sessions.get(&cookie)
        {
            return Ok(Signed { session, cookie });
        }
        // Back to this page after signing in (a GET only: a form is not re-sent).
        let back = if parts.method == axum::http::Method::GET {
            parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .filter(|p| p.starts_with("/console/"))
                .unwrap_or("/console/")
        } else {
            "/console/"
        };
        let to = format!(
            "/console/login?next={}",
            form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
        );
        Err(see_other(&to))
    }
}

/// The console's routes (all under `/console/`), merged into the node's router when `[console]`
/// is configured.
pub fn router<S: Store, T: Clone + Send + Sync + 'static>(node: Node<S>) -> Option<Router<T>> {
    let config = node.config.console.as_ref()?;
    let sessions = Arc::new(Sessions::new(config.idle_timeout, config.max_age));
    router_with_sessions(node, sessions)
}

/// [`router`] over `sessions` the caller holds: the node's own router makes a new set; a test
/// that starts sessions itself (a clerk, who signs in only through the identity provider)
/// passes its own.
pub fn router_with_sessions<S: Store, T: Clone + Send + Sync + 'static>(
    node: Node<S>,
    sessions: Arc<Sessions>,
) -> Option<Router<T>> {
    let config = Arc::new(node.config.console.clone()?);
    let state = ConsoleState {
        sessions,
        limiter: Arc::new(limiter::LoginLimiter::default()),
        oidc: config.oidc.clone().and_then(|o| {
            oidc::Oidc::new(o, &config.public_url)
                .map(Arc::new)
                .inspect_err(|e| tracing::error!(error = %e, "console: single sign-on is off"))
                .ok()
        }),
        config,
        node,
    };
    let routes = Router::new()
        .route("/console", get(|| async { see_other("/console/") }))
        .route("/console/", get(pages::overview::show::<S>))
        .route(
            "/console/login",
            get(pages::login::form::<S>).post(pages::login::local::<S>),
        )
        .route("/console/login/oidc", get(oidc::start::<S>))
        .route("/console/login/callback", get(oidc::callback::<S>))
        .route(
            "/console/logout",
            axum::routing::post(pages::login::logout::<S>),
        )
        .route("/console/certificates", get(pages::certificates::show::<S>))
        .route("/console/registry", get(pages::registry::show::<S>))
        .route(
            "/console/registry/peers/{name}/test",
            axum::routing::post(pages::registry::test_peer::<S>),
        )
        // The administrators' pages: Nhật ký giao nhận and Nhật ký kiểm toán.
        .route("/console/deliveries", get(pages::deliveries::list::<S>))
        .route("/console/deliveries.csv", get(pages::deliveries::csv::<S>))
        .route(
            "/console/deliveries.xlsx",
            get(pages::deliveries::xlsx::<S>),
        )
        .route(
            "/console/deliveries/retry-selected",
            axum::routing::post(pages::deliveries::retry_selected::<S>),
        )
        .route(
            "/console/deliveries/{id}",
            get(pages::deliveries::detail::<S>),
        )
        .route(
            "/console/deliveries/{id}/retry",
            axum::routing::post(pages::deliveries::retry::<S>),
        )
        .route(
            "/console/deliveries/{id}/cancel",
            axum::routing::post(pages::deliveries::cancel::<S>),
        )
        .route("/console/audit", get(pages::audit::list::<S>))
        .route("/console/audit.jsonl", get(pages::audit::export::<S>))
        .route(
            "/console/audit/verify",
            axum::routing::post(pages::audit::verify::<S>),
        )
        // Văn bản liên thông (pages::documents).
        .route("/console/documents", get(pages::documents::list::<S>))
        .route(
            "/console/documents/new",
            get(pages::documents_send::form::<S>).post(pages::documents_send::send::<S>),
        )
        .route("/console/documents/{id}", get(pages::documents::show::<S>))
        .route(
            "/console/documents/{id}/files/{n}",
            get(pages::documents::file::<S>),
        )
        .route(
            "/console/documents/{id}/status",
            axum::routing::post(pages::documents::report::<S>),
        )
        .route(
            "/console/documents/{id}/revoke",
            axum::routing::post(pages::documents::revoke::<S>),
        )
        .route(
            "/console/documents/{id}/update",
            axum::routing::post(pages::documents_send::update::<S>),
        )
        .route("/console/static/app.css", get(static_css))
        .route("/console/static/app.js", get(static_js))
        .route("/console/{*rest}", axum::routing::any(not_found::<S>))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            oidc::allow_provider_form_action::<S>,
        ))
        .with_state(state);
    Some(routes)
}

/// Headers on every console response: nothing inline may run or be styled, nothing may frame
/// the console, no page is cached (they show documents), no type sniffing, no referrer leaves.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    // A handler may set a stricter policy of its own (a PDF shown in the page's preview frame
    // sets `default-src 'none'; frame-ancestors 'self'`): kept.
    if !h.contains_key(CONTENT_SECURITY_POLICY) {
        h.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; \
                 frame-ancestors 'none'",
            ),
        );
    }
    if !h.contains_key(X_FRAME_OPTIONS) {
        h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

async fn static_css() -> Response {
    static_file("text/css; charset=utf-8", include_str!("static/app.css"))
}

async fn static_js() -> Response {
    static_file(
        "text/javascript; charset=utf-8",
        include_str!("static/app.js"),
    )
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CACHE_CONTROL, HeaderValue::from_static("max-age=3600")),
        ],
        body,
    )
        .into_response()
}

async fn not_found<S: Store>(State(state): State<ConsoleState<S>>) -> Response {
    state.error_page(
        None,
        StatusCode::NOT_FOUND,
        "Không tìm thấy trang",
        "Địa chỉ này không có trên hệ thống; vui lòng kiểm tra lại đường dẫn.",
    )
}

/// A rendered page as a response.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        markup.into_string(),
    )
        .into_response()
}

/// `303 See Other` to `to` (after a form, and to the sign-in page).
pub fn see_other(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(LOCATION, v);
    }
    res
}

/// [`see_other`] that also sets (or removes) the session cookie.
pub fn see_other_with_cookie(to: &str, cookie: &str) -> Response {
    let mut res = see_other(to);
    if let Ok(v) = HeaderValue::from_str(cookie) {
        res.headers_mut().append(SET_COOKIE, v);
    }
    res
}

/// Whether a form POST comes from the console's own pages: browsers send `Origin` (and
/// `Sec-Fetch-Site`) with every POST; one from another site is refused even before its CSRF
/// token is looked at. A request with neither (a script, not a browser) is judged by the token.
pub fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match headers.get("origin").and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            origin == public_url
                || headers
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .is_some_and(|host| {
                        origin == format!("http://{host}") || origin == format!("https://{host}")
                    })
        }
    }
}
