//! Bearer authentication: `Authorization: Bearer <token>`. The token is hashed with
//! [`config::hash_token`](crate::config::hash_token) and compared, in constant time, against every
//! configured token (all of them, so the time does not tell which one or how many matched).
//! Tokens are never logged.
//!
//! - [`Clerk`] (`/api/v1`): the tokens of the agencies. A token belongs to exactly one agency: the
//!   clerk acts for it and sees only its mail.
//! - [`Operator`] (`/admin/v1`): the `[[admin]]` tokens, and only those — a clerk token is
//!   `401` there, and an operator token is `401` on the clerk API.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::config::{Config, hash_token};
use crate::edxml::OrganId;
use crate::store::Store;

/// An authenticated clerk: the agency the token belongs to and the token's name.
#[derive(Debug, Clone)]
pub struct Clerk {
    pub agency: OrganId,
    pub token_name: String,
}

impl Clerk {
    /// The actor recorded in the audit chain: `clerk:<agency>:<token name>`.
    pub fn actor(&self) -> String {
        format!("clerk:{}:{}", self.agency, self.token_name)
    }
}

/// Finds the clerk a bearer token belongs to.
pub fn authenticate(config: &Config, token: &str) -> Option<Clerk> {
    let hash = hash_token(token);
    let mut found = None;
    for a in &config.agencies {
        for t in &a.tokens {
            if verify_slices_are_equal(&hash, &t.sha256).is_ok() && found.is_none() {
                found = Some(Clerk {
                    agency: a.organization.organ_id.clone(),
                    token_name: t.name.clone(),
                });
            }
        }
    }
    found
}

/// An authenticated operator (administrator): the name of the `[[admin]]` token.
#[derive(Debug, Clone)]
pub struct Operator {
    pub token_name: String,
}

impl Operator {
    /// The actor recorded in the audit chain: `operator:<token name>`.
    pub fn actor(&self) -> String {
        format!("operator:{}", self.token_name)
    }
}

/// Finds the operator a bearer token belongs to (only `[[admin]]` tokens count).
pub fn authenticate_operator(config: &Config, token: &str) -> Option<Operator> {
    let hash = hash_token(token);
    let mut found = None;
    for t in &config.admin_tokens {
        if verify_slices_are_equal(&hash, &t.sha256).is_ok() && found.is_none() {
            found = Some(Operator {
                token_name: t.name.clone(),
            });
        }
    }
    found
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Err(ApiError::unauthenticated(
            "Authorization: Bearer <token> header missing",
        )
        .with_vi(
            "Thiếu tiêu đề “Authorization: Bearer <mã truy cập>”; vui lòng gửi kèm mã truy cập của cơ quan.",
        ));
    };
    value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthenticated("Authorization header is not `Bearer <token>`").with_vi(
                "Tiêu đề “Authorization” không đúng dạng “Bearer <mã truy cập>”; vui lòng sửa lại.",
            )
        })
}

impl<S: Store> FromRequestParts<AppState<S>> for Clerk {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Clerk, ApiError> {
        let token = bearer(parts)?;
        authenticate(&state.node.config, token)
            .ok_or_else(|| {
                ApiError::unauthenticated("unknown bearer token").with_vi(
                    "Mã truy cập không đúng hoặc đã bị thu hồi; vui lòng kiểm tra lại hoặc liên hệ quản trị viên.",
                )
            })
    }
}

impl<S: Store> FromRequestParts<AppState<S>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState<S>,
    ) -> Result<Operator, ApiError> {
        let token = bearer(parts)?;
        authenticate_operator(&state.node.config, token)
            .ok_or_else(|| {
                ApiError::unauthenticated("not an operator token").with_vi(
                    "Mã truy cập này không phải mã của quản trị viên; API quản trị (/admin/v1) chỉ nhận mã quản trị.",
                )
            })
    }
}
