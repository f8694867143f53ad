//! The admin API, `/admin/v1/…`: what an operator needs to look after the outbox — list
//! deliveries across agencies (by state, sender, recipient), see one with its attempts, retry a
//! `failed`/`retrying` one now, cancel a `queued`/`retrying`/`failed` one with a reason.
//!
//! Authenticated with an operator token ([`Operator`], the `[[admin]]` entries of the
//! configuration); a clerk token is `401` here. Every change goes through the store's operator
//! operations, which write the change and its audit record (actor `operator:<token name>`) in one
//! transaction; a change the delivery's state does not allow is `409 INVALID_TRANSITION`.
//!
//! Conventions as the clerk API: times RFC 3339 (UTC) on output, `since`/`until` RFC 3339 or
//! Unix ms on input; lists newest first, paged with `per_page` (1–1000, default 50) and `before` =
//! the `next_before` of the previous page; errors `{"code", "message", "message_vi"}`.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Operator;
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::params::{page, parse_time, path_id, ts};
use crate::error::FormatError;
use crate::node::service::now_ms;
use crate::node::validate;
use crate::store::{
    AttemptInfo, AttemptOutcome, DeliveryError, DeliveryFilter, DeliveryInfo, DeliveryState, Kind,
    Store,
};
use crate::{Code, Error};

type ApiResult<T = Response> = Result<T, ApiError>;

/// A non-empty query value, trimmed (`?recipient=` means no filter).
fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

// --- views -------------------------------------------------------------------------------------

#[derive(Serialize)]
struct AttemptView {
    number: u32,
    route: String,
    lease_owner: String,
    started_at: String,
    finished_at: Option<String>,
    outcome: Option<AttemptOutcome>,
    error: Option<DeliveryError>,
    /// A mail delivery's relay answer (`250 …`): what `delivered` rests on for a mailbox.
    reply: Option<String>,
}

impl From<&AttemptInfo> for AttemptView {
    fn from(a: &AttemptInfo) -> Self {
        AttemptView {
            number: a.number,
            route: a.route.clone(),
            lease_owner: a.lease_owner.clone(),
            started_at: ts(a.started_at),
            finished_at: a.finished_at.map(ts),
            outcome: a.outcome,
            error: a.error.clone(),
            reply: a.reply.clone(),
        }
    }
}

/// A delivery as an operator sees it: across agencies, with the package it carries.
#[derive(Serialize)]
struct DeliveryView {
    delivery_id: i64,
    message_id: i64,
    kind: Kind,
    sender: String,
    document_id: String,
    recipient: String,
    route: String,
    state: DeliveryState,
    attempts: u32,
    next_attempt_at: Option<String>,
    lease_owner: Option<String>,
    lease_until: Option<String>,
    last_error: Option<DeliveryError>,
    delivered_at: Option<String>,
    created_at: String,
    updated_at: String,
    latest_status: Option<String>,
    latest_status_at: Option<String>,
    /// Detail view only: every attempt, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt_log: Option<Vec<AttemptView>>,
}

impl From<&DeliveryInfo> for DeliveryView {
    fn from(d: &DeliveryInfo) -> Self {
        DeliveryView {
            delivery_id: d.id,
            message_id: d.message_id,
            kind: d.kind,
            sender: d.sender.clone(),
            document_id: d.document_id.clone(),
            recipient: d.recipient.clone(),
            route: d.route.clone(),
            state: d.state,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at.map(ts),
            lease_owner: d.lease_owner.clone(),
            lease_until: d.lease_until.map(ts),
            last_error: d.last_error.clone(),
            delivered_at: d.delivered_at.map(ts),
            created_at: ts(d.created_at),
            updated_at: ts(d.updated_at),
            latest_status: d.latest_status.map(|n| format!("{n:02}")),
            latest_status_at: d.latest_status_at.map(ts),
            attempt_log: None,
        }
    }
}

#[derive(Serialize)]
struct PageOf<T> {
    items: Vec<T>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<i64>,
}

async fn detail<S: Store>(state: &AppState<S>, id: i64) -> ApiResult<DeliveryView> {
    let (d, attempts) = state
        .node
        .delivery_with_attempts(id)
        .await
        .map_err(|e| absent(id, e))?;
    let mut view = DeliveryView::from(&d);
    view.attempt_log = Some(attempts.iter().map(AttemptView::from).collect());
    Ok(view)
}

// --- refusals -----------------------------------------------------------------------------------

/// A store `NOT_FOUND` about delivery `id`, said to an operator: the store's generic text speaks
/// of "your agency", which an operator does not have.
fn absent(id: i64, e: Error) -> ApiError {
    if e.code() != Code::NotFound {
        return e.into();
    }
    ApiError::coded(Code::NotFound, format!("no delivery {id} on this node")).with_vi(format!(
        "Không tìm thấy lần chuyển (delivery) số {id} trên hệ thống này; vui lòng kiểm tra lại số \
         (danh sách các lần chuyển: GET /admin/v1/deliveries)."
    ))
}

/// What an operator asked of a delivery, for the refusal that says which states allow it.
#[derive(Clone, Copy)]
enum Action {
    Retry,
    Cancel,
}

/// A delivery state as an operator reads it in Vietnamese (the wire name follows in the message).
fn state_vi(s: DeliveryState) -> &'static str {
    match s {
        DeliveryState::Queued => "đang chờ gửi",
        DeliveryState::Sending => "đang gửi",
        DeliveryState::Delivered => "đã chuyển đến nơi nhận",
        DeliveryState::Retrying => "đang chờ gửi lại",
        DeliveryState::Failed => "gửi không thành công",
        DeliveryState::Rejected => "bị nơi nhận từ chối",
        DeliveryState::Cancelled => "đã hủy",
    }
}

/// A store refusal of `action` on delivery `id`: `NOT_FOUND` as [`absent`]; `INVALID_TRANSITION`
/// names the delivery's state, the states that allow the action and what to do instead (the
/// state is read again for the message, so it is the state at refusal or just after).
async fn refused<S: Store>(state: &AppState<S>, id: i64, action: Action, e: Error) -> ApiError {
    if e.code() != Code::InvalidTransition {
        return absent(id, e);
    }
    let Ok(d) = state.node.delivery(id).await else {
        return e.into();
    };
    let s = d.state;
    let (en, allowed, vi_action, vi_allowed) = match action {
        Action::Retry => (
            "retried",
            "failed or retrying",
            "gửi lại ngay",
            "“failed” (gửi không thành công) hoặc “retrying” (đang chờ gửi lại)",
        ),
        Action::Cancel => (
            "cancelled",
            "queued, retrying or failed",
            "hủy",
            "“queued” (đang chờ gửi), “retrying” (đang chờ gửi lại) hoặc “failed” (gửi không \
             thành công)",
        ),
    };
    let todo = match (action, s) {
        (Action::Retry, DeliveryState::Queued | DeliveryState::Sending) => {
            "hệ thống đang tự gửi lần chuyển này, không cần gửi lại"
        }
        (_, DeliveryState::Delivered) => {
            "văn bản đã đến nơi nhận; nếu cần lấy lại văn bản, cơ quan gửi dùng chức năng thu hồi"
        }
        (Action::Retry, DeliveryState::Rejected) => {
            "nơi nhận đã từ chối gói tin; vui lòng xem lỗi (last_error), khắc phục nguyên nhân rồi để cơ quan gửi gửi lại văn bản"
        }
        (Action::Retry, _) => {
            "lần chuyển đã hủy không gửi lại được; nếu cần, cơ quan gửi gửi lại văn bản"
        }
        (Action::Cancel, DeliveryState::Sending) => {
            "vui lòng chờ lần gửi này kết thúc rồi hủy nếu lần chuyển chuyển sang “retrying” hoặc “failed”"
        }
        (Action::Cancel, _) => "lần chuyển đã kết thúc, không cần hủy",
    };
    ApiError::coded(
        Code::InvalidTransition,
        format!(
            "delivery {id} is {s}: only a {allowed} delivery can be {en}",
            s = s.as_str()
        ),
    )
    .with_vi(format!(
        "Không thể {vi_action} lần chuyển số {id}: lần chuyển đang ở trạng thái “{}” ({}), \
         chỉ {vi_action} được lần chuyển ở trạng thái {vi_allowed}; {todo}.",
        s.as_str(),
        state_vi(s)
    ))
}

// --- handlers ----------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// `queued`, `sending`, `delivered`, `retrying`, `failed`, `rejected`, `cancelled`.
    state: Option<String>,
    sender: Option<String>,
    recipient: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<i64>,
    per_page: Option<u32>,
}

/// `GET /admin/v1/deliveries`: deliveries across agencies, newest first.
pub async fn list_deliveries<S: Store>(
    State(state): State<AppState<S>>,
    _op: Operator,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> ApiResult {
    let delivery_state = match given(&q.state) {
        None => None,
        Some(s) => Some(DeliveryState::parse(&s).ok_or_else(|| {
            let list = validate::one_of(DeliveryState::ALL.iter().map(|d| d.as_str()));
            ApiError::from(validate::not_one_of("state", format!("{s:?}"), &list))
        })?),
    };
    let page = page(q.per_page, q.before)?;
    let filter = DeliveryFilter {
        state: delivery_state,
        sender: given(&q.sender),
        recipient: given(&q.recipient),
        since: q
            .since
            .as_deref()
            .map(|s| parse_time("since", s))
            .transpose()?,
        until: q
            .until
            .as_deref()
            .map(|s| parse_time("until", s))
            .transpose()?,
        page,
        ..DeliveryFilter::default()
    };
    let found = state.node.deliveries(&filter).await?;
    let next_before = (found.len() as u32 >= page.limit)
        .then(|| found.last().map(|d| d.id))
        .flatten();
    Ok(Json(PageOf {
        items: found.iter().map(DeliveryView::from).collect(),
        next_before,
    })
    .into_response())
}

/// `GET /admin/v1/deliveries/{id}`: one delivery with every attempt.
pub async fn delivery<S: Store>(
    State(state): State<AppState<S>>,
    _op: Operator,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult {
    let id = path_id(id)?;
    Ok(Json(detail(&state, id).await?).into_response())
}

/// `POST /admin/v1/deliveries/{id}/retry`: a `failed` or `retrying` delivery is due again now.
pub async fn retry<S: Store>(
    State(state): State<AppState<S>>,
    op: Operator,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult {
    let id = path_id(id)?;
    if let Err(e) = state
        .node
        .store
        .operator_retry(id, &op.actor(), now_ms())
        .await
    {
        return Err(refused(&state, id, Action::Retry, e).await);
    }
    tracing::info!(delivery = id, operator = %op.token_name, "operator retry");
    Ok(Json(detail(&state, id).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why (kept in the audit chain).
    #[serde(default)]
    reason: String,
}

/// `POST /admin/v1/deliveries/{id}/cancel` with `{"reason": "…"}`: a `queued`, `retrying` or
/// `failed` delivery will not be attempted again.
pub async fn cancel<S: Store>(
    State(state): State<AppState<S>>,
    op: Operator,
    id: Result<Path<i64>, PathRejection>,
    ApiJson(req): ApiJson<CancelRequest>,
) -> ApiResult {
    let id = path_id(id)?;
    let reason = req.reason.trim();
    if reason.is_empty() {
        return Err(FormatError::missing("reason").into());
    }
    if let Err(e) = state
        .node
        .store
        .cancel_delivery(id, reason, &op.actor(), now_ms())
        .await
    {
        return Err(refused(&state, id, Action::Cancel, e).await);
    }
    tracing::info!(delivery = id, operator = %op.token_name, "operator cancel");
    Ok(Json(detail(&state, id).await?).into_response())
}

/// `GET /admin/v1/certificates`: every trust anchor and agency signing certificate with its expiry,
/// soonest first; `warning` when it has expired or expires within 60 days.
pub async fn certificates<S: Store>(State(state): State<AppState<S>>, _op: Operator) -> ApiResult {
    let report = state.node.certificates();
    // Times as everywhere else in the API: RFC 3339 UTC.
    let items: Vec<serde_json::Value> = report
        .iter()
        .map(|c| {
            serde_json::json!({
                "role": c.role,
                "subject": c.subject,
                "agency": c.agency,
                "not_after": ts(c.not_after.saturating_mul(1000)),
                "days_left": c.days_left,
                "warning": c.warning,
            })
        })
        .collect();
    Ok(
        Json(serde_json::json!({ "items": items, "warn_days": crate::node::expiry::WARN_DAYS }))
            .into_response(),
    )
}
