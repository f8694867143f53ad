//! Clerk authentication: `Authorization: Bearer <token>`. The token is hashed with
//! [`config::hash_token`](crate::config::hash_token) and compared, in constant time, against every
//! configured token of every agency (all of them, so the time does not tell which agency or how
//! many matched). A token belongs to exactly one agency: the clerk acts for it and sees only its
//! mail. Tokens are never logged.

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

impl<S: Store> FromRequestParts<AppState<S>> for Clerk {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Clerk, ApiError> {
        let Some(value) = parts.headers.get(AUTHORIZATION) else {
            return Err(ApiError::unauthenticated(
                "Authorization: Bearer <token> header missing",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthenticated("Authorization header is not `Bearer <token>`")
            })?;
        authenticate(&state.node.config, token)
            .ok_or_else(|| ApiError::unauthenticated("unknown bearer token"))
    }
}
