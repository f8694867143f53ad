//! The revocation evidence of received documents: what decided that the signer's certificates
//! (and their intermediates) were not revoked when the document arrived — the OCSP response or
//! CRL itself, base64 — for the receiving agency's clerks and for operators.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use base64::Engine as _;
use serde::Serialize;

use super::AppState;
use super::auth::{Clerk, Operator};
use super::params::{ApiResult, path_id, ts};
use crate::store::{MessageInfo, RevocationEvidence, Store};

/// One certificate's status as the API shows it.
#[derive(Serialize)]
pub struct EvidenceView {
    pub subject: String,
    pub serial: String,
    pub fingerprint: String,
    pub policy: String,
    pub status: String,
    pub kind: Option<String>,
    pub source: Option<String>,
    pub this_update: Option<String>,
    pub next_update: Option<String>,
    pub produced_at: Option<String>,
    pub checked_at: String,
    /// The DER OCSP response or CRL, standard base64.
    pub der_base64: Option<String>,
    pub note: Option<String>,
    pub flagged: bool,
}

/// The body of both endpoints.
#[derive(Serialize)]
pub struct RevocationView {
    pub message_id: i64,
    /// How the message was authenticated: a package a channel authenticated has no signer,
    /// hence no certificates and no revocation evidence, and says so here.
    pub signature: super::clerk::SignatureView,
    /// Whether some certificate's unknown status was accepted under `prefer`.
    pub flagged: bool,
    /// Signer first, then intermediates; empty when the policy was `off`.
    pub certificates: Vec<EvidenceView>,
}

fn view(message: &MessageInfo, rows: Vec<RevocationEvidence>) -> RevocationView {
    RevocationView {
        message_id: message.id,
        signature: super::clerk::SignatureView::from(message),
        flagged: rows.iter().any(|r| r.flagged),
        certificates: rows
            .into_iter()
            .map(|r| EvidenceView {
                checked_at: ts(r.checked_at),
                der_base64: r
                    .der
                    .as_deref()
                    .map(|d| base64::engine::general_purpose::STANDARD.encode(d)),
                subject: r.subject,
                serial: r.serial,
                fingerprint: r.fingerprint,
                policy: r.policy,
                status: r.status,
                kind: r.kind,
                source: r.source,
                this_update: r.this_update,
                next_update: r.next_update,
                produced_at: r.produced_at,
                note: r.note,
                flagged: r.flagged,
            })
            .collect(),
    }
}

/// `GET /api/v1/inbox/{id}/revocation`: the evidence of a document in the clerk's agency's
/// inbox (`NOT_FOUND` for another agency's).
pub async fn inbox_revocation<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult {
    let id = path_id(id)?;
    let store = &state.node.store;
    let item = store.inbox_item(clerk.agency.as_str(), id).await?;
    let rows = store.revocation_evidence(id).await?;
    Ok(Json(view(&item.message, rows)).into_response())
}

/// `GET /admin/v1/messages/{id}/revocation`: the evidence of any received message.
pub async fn message_revocation<S: Store>(
    State(state): State<AppState<S>>,
    _op: Operator,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult {
    let id = path_id(id)?;
    let store = &state.node.store;
    let message = store.message(id).await?;
    let rows = store.revocation_evidence(id).await?;
    Ok(Json(view(&message, rows)).into_response())
}
