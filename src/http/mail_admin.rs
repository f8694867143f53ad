//! The admin API's mail log, `/admin/v1/mail…` (issue 16): every mail the bridge took in from
//! the node's mailbox and what it became — a document or status ingested, an agency's draft, a
//! bounce matched to a delivery, or quarantined (`outcome=quarantined` is the quarantine, with
//! the reason and whether the sender was answered).
//!
//! Operator token ([`Operator`]); conventions as the rest of the admin API ([`admin`](super::admin)):
//! times RFC 3339 (UTC), lists newest first paged by `per_page` and `before`. Read only: what a
//! mail produced is acted on where it lives (a draft by its agency's clerk, a delivery by
//! `/admin/v1/deliveries`).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Operator;
use super::clerk::page_of;
use super::error::ApiError;
use super::extract::ApiQuery;
use super::params::{page, path_id, ts};
use crate::store::{MailLogFilter, MailLogItem, Store};
use crate::{Code, Error};

type ApiResult<T = Response> = Result<T, ApiError>;

/// What a mail can have become, as the log's `outcome` spells it
/// ([`MailEffect::outcome`](crate::store::MailEffect::outcome)).
pub const OUTCOMES: [&str; 5] = ["document", "status", "draft", "bounce", "quarantined"];

/// One mail taken in, as an operator sees it. `return_path`, `from`, `subject` and
/// `message_id` are the mail's own (text only: the store keeps them without control
/// characters); `message_ref`, `draft_ref`, `delivery_ref` what it produced.
#[derive(Serialize)]
struct MailView {
    id: i64,
    mailbox: String,
    uidvalidity: u32,
    uid: u32,
    return_path: String,
    from: String,
    subject: String,
    message_id: Option<String>,
    size: u64,
    outcome: String,
    code: Option<String>,
    reason: Option<String>,
    message_ref: Option<i64>,
    draft_ref: Option<i64>,
    delivery_ref: Option<i64>,
    replied: bool,
    taken_at: String,
}

impl From<&MailLogItem> for MailView {
    fn from(m: &MailLogItem) -> Self {
        MailView {
            id: m.id,
            mailbox: m.mailbox.clone(),
            uidvalidity: m.uidvalidity,
            uid: m.uid,
            return_path: m.return_path.clone(),
            from: m.from.clone(),
            subject: m.subject.clone(),
            message_id: m.message_id.clone(),
            size: m.size,
            outcome: m.outcome.clone(),
            code: m.code.clone(),
            reason: m.reason.clone(),
            message_ref: m.message_ref,
            draft_ref: m.draft_ref,
            delivery_ref: m.delivery_ref,
            replied: m.replied,
            taken_at: ts(m.taken_at),
        }
    }
}

/// A store `NOT_FOUND` about mail `id`, said to an operator.
fn absent(id: i64, e: Error) -> ApiError {
    if e.code() != Code::NotFound {
        return e.into();
    }
    ApiError::coded(
        Code::NotFound,
        format!("no mail {id} in the mail log of this node"),
    )
    .with_vi(format!(
        "Không tìm thấy thư số {id} trong nhật ký thư đã nhận của hệ thống này; vui lòng kiểm tra \
         lại số (danh sách thư: GET /admin/v1/mail)."
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailQuery {
    /// `document`, `status`, `draft`, `bounce`, `quarantined`; all when absent.
    outcome: Option<String>,
    before: Option<i64>,
    per_page: Option<u32>,
}

/// `GET /admin/v1/mail?outcome&before&per_page`: the mail log, newest first
/// (`outcome=quarantined`: the quarantine).
pub async fn list<S: Store>(
    State(state): State<AppState<S>>,
    _op: Operator,
    ApiQuery(q): ApiQuery<MailQuery>,
) -> ApiResult {
    let outcome = match q.outcome.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(o) if OUTCOMES.contains(&o) => Some(o.to_owned()),
        Some(o) => {
            let list = crate::node::validate::one_of(OUTCOMES);
            return Err(
                crate::node::validate::not_one_of("outcome", format!("{o:?}"), &list).into(),
            );
        }
    };
    let page = page(q.per_page, q.before)?;
    let items = state
        .node
        .store
        .list_mail_log(&MailLogFilter { outcome, page })
        .await?;
    let views: Vec<MailView> = items.iter().map(MailView::from).collect();
    Ok(Json(page_of(views, page, |v| v.id)).into_response())
}

/// `GET /admin/v1/mail/{id}`: one mail of the log.
pub async fn show<S: Store>(
    State(state): State<AppState<S>>,
    _op: Operator,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult {
    let id = path_id(id)?;
    let m = state
        .node
        .store
        .mail_log_item(id)
        .await
        .map_err(|e| absent(id, e))?;
    Ok(Json(MailView::from(&m)).into_response())
}
