//! Đăng nhập / Đăng xuất: the sign-in page (the province's identity provider, and the local
//! break-glass form), the local sign-in itself and logout.
//!
//! Every sign-in, failed sign-in and logout leaves an audit record (`console.login`,
//! `console.login_failed`, `console.logout`), so who used the console, and who tried to, is on
//! the same chain as what they did.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use serde_json::json;

use crate::audit::AuditEntry;
use crate::console::access::{Principal, Via};
use crate::console::view::layout::{self, Frame, Section};
use crate::console::{
    ConsoleState, Signed, html_response, same_origin, see_other_with_cookie, session,
};
use crate::store::Store;

#[derive(Debug, Deserialize)]
pub struct Next {
    next: Option<String>,
    /// Why the person is here again (`expired`, `out`).
    why: Option<String>,
}

/// Only a console path is a place to go back to (never another site).
pub(crate) fn safe_next(next: Option<&str>) -> &str {
    next.filter(|n| n.starts_with("/console/") && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or("/console/")
}

/// `GET /console/login`.
pub async fn form<S: Store>(
    State(state): State<ConsoleState<S>>,
    Query(q): Query<Next>,
) -> Response {
    login_page(
        &state,
        StatusCode::OK,
        safe_next(q.next.as_deref()),
        q.why.as_deref(),
        None,
    )
}

fn login_page<S: Store>(
    state: &ConsoleState<S>,
    status: StatusCode,
    next: &str,
    why: Option<&str>,
    error: Option<&str>,
) -> Response {
    let oidc = state.config.oidc.is_some();
    let local = !state.config.local.is_empty();
    let body = html! {
        @match why {
            Some("out") => { (layout::notice(true, "Bạn đã đăng xuất.")) }
            Some("expired") => { (layout::notice(false, "Phiên làm việc đã hết hạn; vui lòng đăng nhập lại.")) }
            _ => {}
        }
        @if let Some(e) = error { (layout::notice(false, e)) }
        @if oidc {
            section class="card" aria-labelledby="sso" {
                h2 id="sso" { "Tài khoản một cửa của tỉnh" }
                p { "Đăng nhập bằng tài khoản dùng chung của các hệ thống thông tin (đăng nhập 1 lần)." }
                a class="button primary" href={ "/console/login/oidc?next=" (urlencode(next)) } { "Đăng nhập một lần (SSO)" }
            }
        }
        @if local {
            section class="card" aria-labelledby="local" {
                h2 id="local" { "Tài khoản quản trị khẩn cấp" }
                p class="hint" { "Chỉ dùng khi hệ thống đăng nhập một lần không hoạt động." }
                form method="post" action="/console/login" {
                    input type="hidden" name="next" value=(next);
                    div class="field" {
                        label for="user" { "Tên đăng nhập" }
                        input id="user" name="user" type="text" autocomplete="username" required;
                    }
                    div class="field" {
                        label for="password" { "Mật khẩu" }
                        input id="password" name="password" type="password" autocomplete="current-password" required;
                    }
                    button type="submit" class="button" { "Đăng nhập" }
                }
            }
        }
    };
    html_response(
        status,
        layout::page(
            Frame {
                title: "Đăng nhập",
                section: Section::None,
                who: None,
                node_name: state.node_name(),
            },
            body,
        ),
    )
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(Deserialize)]
pub struct LocalLogin {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// Compared against when the account does not exist, so that an unknown name takes as long
/// as a wrong password (argon2id, default parameters, of a random password).
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8ZmBb2M7+rIl6Wmd5YUDgbAqD4TsdnhWC9f9j4E8pbo";

/// `POST /console/login`: a break-glass administrator's password.
pub async fn local<S: Store>(
    State(state): State<ConsoleState<S>>,
    headers: HeaderMap,
    Form(f): Form<LocalLogin>,
) -> Response {
    let next = safe_next(f.next.as_deref()).to_owned();
    let user = f.user.trim().to_owned();
    if !same_origin(&headers, &state.config.public_url) {
        return login_page(
            &state,
            StatusCode::FORBIDDEN,
            &next,
            None,
            Some("Yêu cầu đăng nhập không đến từ trang của hệ thống nên bị từ chối."),
        );
    }
    if let Some(wait) = state.limiter.held(&user) {
        record(
            &state,
            &format!("console:local:{user}"),
            "console.login_failed",
            json!({"via": "local", "why": "rate limited"}),
        )
        .await;
        let minutes = wait.as_secs().div_ceil(60).max(1);
        return login_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            None,
            Some(&format!(
                "Đăng nhập sai quá nhiều lần; vui lòng thử lại sau {minutes} phút."
            )),
        );
    }
    let account = state.config.local.iter().find(|a| a.user == user).cloned();
    let hash = account
        .as_ref()
        .map_or(DUMMY_HASH.to_owned(), |a| a.password_hash.clone());
    let password = f.password;
    // argon2 takes tens of milliseconds of CPU: off the async workers.
    let verified = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .unwrap_or(false);
    match account {
        Some(a) if verified => {
            state.limiter.succeeded(&user);
            let principal = Principal {
                subject: a.user.clone(),
                name: a.user.clone(),
                role: a.role,
                agency: None,
                via: Via::Local,
            };
            record(
                &state,
                &principal.actor(),
                "console.login",
                json!({"via": "local", "role": a.role.as_str()}),
            )
            .await;
            let id = state.sessions.create(principal, None);
            see_other_with_cookie(&next, &session::cookie(&id, state.config.secure_cookies()))
        }
        _ => {
            state.limiter.failed(&user);
            record(
                &state,
                &format!("console:local:{user}"),
                "console.login_failed",
                json!({"via": "local", "why": "wrong user or password"}),
            )
            .await;
            login_page(
                &state,
                StatusCode::UNAUTHORIZED,
                &next,
                None,
                Some("Tên đăng nhập hoặc mật khẩu không đúng."),
            )
        }
    }
}

/// Whether `password` matches the argon2 PHC `hash`.
pub fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// The argon2id PHC hash of `password` with a fresh salt (`lienthong console hash-password`).
pub fn hash_password(password: &str) -> Result<String, crate::Error> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt)
        .map_err(|_| crate::Error::internal("hash-password", "the system's random failed"))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| crate::Error::internal("hash-password", e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| crate::Error::internal("hash-password", e.to_string()))
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// `POST /console/logout`: ends the session (a form with the session's CSRF token, so another
/// site cannot sign a person out).
pub async fn logout<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    Form(f): Form<LogoutForm>,
) -> Response {
    if !session::csrf_matches(&who.session, &f.csrf) {
        return state.error_page(
            Some(&who),
            StatusCode::FORBIDDEN,
            "Không thể đăng xuất",
            "Biểu mẫu đăng xuất không hợp lệ (thiếu mã chống giả mạo); vui lòng tải lại trang và thử lại.",
        );
    }
    state.sessions.end(&who.cookie);
    record(
        &state,
        &who.principal().actor(),
        "console.logout",
        json!({}),
    )
    .await;
    // Signed in through the provider: end its session too (it comes back to ?why=out).
    let to = crate::console::oidc::logout_target(&state, who.session.id_token.as_deref())
        .await
        .unwrap_or_else(|| "/console/login?why=out".to_owned());
    see_other_with_cookie(&to, &session::cookie_removed(state.config.secure_cookies()))
}

/// An audit record of a sign-in event (a failure to record is logged, never shown: the person
/// is not held up by the audit of their own sign-in).
pub(crate) async fn record<S: Store>(
    state: &ConsoleState<S>,
    actor: &str,
    action: &str,
    detail: serde_json::Value,
) {
    let entry = AuditEntry::new(actor, action, "console_session", "-", &detail);
    if let Err(e) = state.node.record_console_event(entry).await {
        tracing::error!(error = %e, action, "could not record a console sign-in event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_gone_back_to() {
        assert_eq!(
            safe_next(Some("/console/deliveries?state=failed")),
            "/console/deliveries?state=failed"
        );
        assert_eq!(safe_next(Some("https://evil.example/")), "/console/");
        assert_eq!(safe_next(Some("//evil.example/console/")), "/console/");
        assert_eq!(safe_next(Some("/console/\\evil")), "/console/");
        assert_eq!(safe_next(None), "/console/");
    }

    #[test]
    fn passwords_verify_against_their_hash_only() {
        let h = hash_password("mật khẩu khẩn cấp").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "mật khẩu khẩn cấp"));
        assert!(!verify_password(&h, "mat khau khan cap"));
        assert!(!verify_password("not a hash", "x"));
        assert!(!verify_password(DUMMY_HASH, ""));
    }
}
