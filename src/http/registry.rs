//! The agency registry in the admin API, `/admin/v1/registry…`: which certificates may sign for
//! which agency code (sender binding, [`crate::pki::binding`]).
//!
//! - `GET /admin/v1/registry` — every entry, by code;
//! - `GET /admin/v1/registry/{code}` — one entry (`404 NOT_FOUND` if none);
//! - `PUT /admin/v1/registry/{code}` with `{"name", "rules": [Rule…]}` — add or replace the
//!   entry (`201` new, `200` replaced);
//! - `DELETE /admin/v1/registry/{code}` — remove it (`204`);
//! - `POST /admin/v1/registry/import` with `{"agencies": [{"code", "name", "rules"}…],
//!   "replace_all": false}` — many entries in one transaction, all or nothing; an error names the
//!   position (`agency[2].rules[0].sha256`).
//!
//! Operator tokens only; every change is written with its audit record (actor
//! `operator:<token name>`) in one transaction by the store. Certificates are given by
//! fingerprint here (the node does not read files named by a request); the CLI's import file may
//! name PEM files.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Operator;
use super::error::ApiError;
use super::extract::{ApiJson, path_rejection};
use super::params::ts;
use crate::Code;
use crate::node::service::now_ms;
use crate::pki::binding::Rule;
use crate::store::{NewRegistryEntry, RegistryEntry, Store};

type ApiResult<T = Response> = Result<T, ApiError>;

/// An entry as the API shows it.
#[derive(Serialize)]
struct EntryView {
    code: String,
    name: String,
    rules: Vec<Rule>,
    added_by: String,
    added_at: String,
    updated_by: String,
    updated_at: String,
}

impl From<RegistryEntry> for EntryView {
    fn from(e: RegistryEntry) -> Self {
        EntryView {
            code: e.code,
            name: e.name,
            rules: e.rules,
            added_by: e.added_by,
            added_at: ts(e.added_at),
            updated_by: e.updated_by,
            updated_at: ts(e.updated_at),
        }
    }
}

fn code_of(p: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    p.map(|Path(c)| c.trim().to_owned())
        .map_err(|r| path_rejection(&r, &["code"]))
}

/// `GET /admin/v1/registry`.
pub async fn list<S: Store>(State(state): State<AppState<S>>, _op: Operator) -> ApiResult {
    let items: Vec<EntryView> = state
        .node
        .store
        .registry_list()
        .await?
        .into_iter()
        .map(EntryView::from)
        .collect();
    Ok(Json(serde_json::json!({ "items": items })).into_response())
}

/// `GET /admin/v1/registry/{code}`.
pub async fn get<S: Store>(
    State(state): State<AppState<S>>,
    _op: Operator,
    code: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let code = code_of(code)?;
    match state.node.store.registry_entry(&code).await? {
        Some(e) => Ok(Json(EntryView::from(e)).into_response()),
        None => Err(absent(&code)),
    }
}

/// `NOT_FOUND` for an agency code without a registry entry, said to an operator (the code's
/// generic text speaks of "your agency", which an operator does not have).
fn absent(code: &str) -> ApiError {
    ApiError::coded(
        Code::NotFound,
        format!("{code} has no entry in the agency registry of this node"),
    )
    .with_vi(format!(
        "Cơ quan mã “{code}” chưa có trong danh bạ cơ quan của hệ thống; vui lòng kiểm tra lại mã \
         (danh sách: GET /admin/v1/registry)."
    ))
}

/// The body of `PUT /admin/v1/registry/{code}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutRequest {
    #[serde(default)]
    name: String,
    rules: Vec<Rule>,
}

/// `PUT /admin/v1/registry/{code}`: add or replace the entry.
pub async fn put<S: Store>(
    State(state): State<AppState<S>>,
    op: Operator,
    code: Result<Path<String>, PathRejection>,
    ApiJson(req): ApiJson<PutRequest>,
) -> ApiResult {
    let code = code_of(code)?;
    let (entry, created) = state
        .node
        .store
        .registry_set(
            NewRegistryEntry {
                code,
                name: req.name,
                rules: req.rules,
            },
            &op.actor(),
            now_ms(),
        )
        .await?;
    tracing::info!(code = %entry.code, rules = entry.rules.len(), operator = %op.token_name, "registry entry set");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(EntryView::from(entry))).into_response())
}

/// `DELETE /admin/v1/registry/{code}`.
pub async fn delete<S: Store>(
    State(state): State<AppState<S>>,
    op: Operator,
    code: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let code = code_of(code)?;
    state
        .node
        .store
        .registry_remove(&code, &op.actor(), now_ms())
        .await
        .map_err(|e| match e.code() {
            Code::NotFound => absent(&code),
            _ => ApiError::from(e),
        })?;
    tracing::info!(code = %code, operator = %op.token_name, "registry entry removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportAgency {
    code: String,
    #[serde(default)]
    name: String,
    rules: Vec<Rule>,
}

/// The body of `POST /admin/v1/registry/import`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    agencies: Vec<ImportAgency>,
    /// Remove the entries the import does not list.
    #[serde(default)]
    replace_all: bool,
}

/// `POST /admin/v1/registry/import`: all or nothing.
pub async fn import<S: Store>(
    State(state): State<AppState<S>>,
    op: Operator,
    ApiJson(req): ApiJson<ImportRequest>,
) -> ApiResult {
    let entries = req
        .agencies
        .into_iter()
        .map(|a| NewRegistryEntry {
            code: a.code,
            name: a.name,
            rules: a.rules,
        })
        .collect();
    let outcome = state
        .node
        .store
        .registry_import(entries, req.replace_all, &op.actor(), now_ms())
        .await?;
    tracing::info!(?outcome, operator = %op.token_name, "registry imported");
    Ok(Json(outcome).into_response())
}
