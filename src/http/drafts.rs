//! The clerk API's drafts, `/api/v1/drafts…` (issue 16): what the mail bridge made of mail
//! from an agency's registered mailbox — files and a subject, nothing numbered or signed — for
//! a clerk of that agency to approve (the node then numbers, signs and sends it:
//! [`Node::approve_draft`](crate::node::service::Node::approve_draft)) or discard.
//!
//! Conventions as the rest of the clerk API ([`clerk`](super::clerk)): bearer token of one
//! agency, which sees only its own drafts (another agency's is `404 NOT_FOUND`); lists newest
//! first, paged by `per_page` and `before`; a draft's files numbered from **1**; approval takes
//! an `Idempotency-Key` as a submission does.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderName};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Clerk;
use super::clerk::{disposition, follow_up_response, idempotency_key, page_of};
use super::error::ApiError;
use super::extract::{self, ApiJson, ApiQuery};
use super::params::{page, path_id, ts};
use crate::edxml::file_name::safe_file_name;
use crate::error::{FormatError, Problem};
use crate::node::service::DraftApproval;
use crate::store::{DraftFilter, DraftItem, DraftState, Store};
use crate::{Code, Error};

type ApiResult<T = Response> = Result<T, ApiError>;

/// Every state a draft can be in, as the API spells them.
const STATES: [DraftState; 3] = [
    DraftState::Draft,
    DraftState::Approved,
    DraftState::Discarded,
];

// --- views -------------------------------------------------------------------------------------

/// A draft's file as a clerk sees it: `index` is its number in the API (from 1).
#[derive(Serialize)]
struct FileView {
    index: u32,
    name: String,
    content_type: String,
    size: u64,
    sha256: String,
}

/// A draft as a clerk sees it. `from` and `subject` are the mail's (text only: the store keeps
/// them without control characters); `number`/`notation`/`summary` what the subject gave, the
/// defaults of an approval.
#[derive(Serialize)]
struct DraftView {
    id: i64,
    state: DraftState,
    from: String,
    subject: String,
    number: Option<String>,
    notation: Option<String>,
    summary: String,
    files: Vec<FileView>,
    created_at: String,
    decided_at: Option<String>,
    decided_by: Option<String>,
    reason: Option<String>,
    /// The document it was approved as (`GET /api/v1/documents/{message_id}`).
    message_id: Option<i64>,
    /// Detail view only: the mail's text, for the clerk's reference (never signed).
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
}

impl From<&DraftItem> for DraftView {
    fn from(d: &DraftItem) -> Self {
        DraftView {
            id: d.id,
            state: d.state,
            from: d.from.clone(),
            subject: d.subject.clone(),
            number: d.code_number.clone(),
            notation: d.code_notation.clone(),
            summary: d.summary.clone(),
            files: d
                .files
                .iter()
                .zip(1u32..)
                .map(|(f, n)| FileView {
                    index: n,
                    name: f.name.clone(),
                    content_type: f.content_type.clone(),
                    size: f.size,
                    sha256: f.sha256.clone(),
                })
                .collect(),
            created_at: ts(d.created_at),
            decided_at: d.decided_at.map(ts),
            decided_by: d.decided_by.clone(),
            reason: d.reason.clone(),
            message_id: d.message_id,
            body: None,
        }
    }
}

fn detail(d: &DraftItem) -> DraftView {
    let mut v = DraftView::from(d);
    v.body = Some(d.body.clone());
    v
}

// --- refusals -----------------------------------------------------------------------------------

/// A store `NOT_FOUND` about draft `id` of the asking agency, said to the clerk.
fn not_found(id: i64) -> impl FnOnce(Error) -> ApiError {
    move |e| {
        if e.code() != Code::NotFound {
            return e.into();
        }
        ApiError::coded(
            Code::NotFound,
            format!("id: no draft {id} of your agency"),
        )
        .with_vi(format!(
            "Không tìm thấy bản thảo số {id} trong các bản thảo của cơ quan bạn; vui lòng kiểm tra \
             lại “id” (danh sách bản thảo: GET /api/v1/drafts)."
        ))
    }
}

/// What a clerk asked of a draft, for the refusal that says why it cannot be done.
#[derive(Clone, Copy)]
enum Action {
    Approve,
    Discard,
}

/// A refusal of `action` on draft `id`: `NOT_FOUND` as [`not_found`]; `INVALID_TRANSITION`
/// says what became of the draft (read again for the message: the state at the refusal or just
/// after) and what the clerk can do instead. Anything else as it is.
async fn refused<S: Store>(
    state: &AppState<S>,
    clerk: &Clerk,
    id: i64,
    action: Action,
    e: Error,
) -> ApiError {
    if e.code() != Code::InvalidTransition {
        return not_found(id)(e);
    }
    let Ok(d) = state.node.store.draft(clerk.agency.as_str(), id).await else {
        return e.into();
    };
    let (en_action, vi_action) = match action {
        Action::Approve => ("approved", "duyệt"),
        Action::Discard => ("discarded", "hủy"),
    };
    let by = d
        .decided_by
        .as_deref()
        .map(|b| format!(" by {b}"))
        .unwrap_or_default();
    let (en, vi) = match (d.state, d.message_id) {
        (DraftState::Approved, Some(m)) => (
            format!("draft {id} was already approved{by}, as document {m}"),
            format!(
                "Bản thảo số {id} đã được duyệt và gửi đi thành văn bản số {m} (xem GET \
                 /api/v1/documents/{m}); không thể {vi_action} nữa. Nếu cần sửa hoặc lấy lại văn \
                 bản đó, hãy dùng chức năng cập nhật hoặc thu hồi văn bản."
            ),
        ),
        (DraftState::Approved, None) => (
            format!("draft {id} was already approved{by}"),
            format!("Bản thảo số {id} đã được duyệt trước đó; không thể {vi_action} nữa."),
        ),
        (DraftState::Discarded, _) => {
            let reason = d.reason.clone().unwrap_or_default();
            (
                format!("draft {id} was discarded{by} (reason: {reason:?})"),
                format!(
                    "Bản thảo số {id} đã bị hủy trước đó (lý do: “{reason}”); không thể \
                     {vi_action} nữa. Nếu vẫn cần gửi văn bản này, đơn vị gửi lại thư để có \
                     bản thảo mới."
                ),
            )
        }
        // Waiting again (a race with nothing to report): the store's own words.
        (DraftState::Draft, _) => return e.into(),
    };
    ApiError::coded(
        Code::InvalidTransition,
        format!("{en}: only a draft still waiting for a clerk can be {en_action}"),
    )
    .with_vi(vi)
}

// --- handlers ----------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftQuery {
    /// `draft` (waiting), `approved`, `discarded`; all when absent.
    state: Option<String>,
    before: Option<i64>,
    per_page: Option<u32>,
}

/// `GET /api/v1/drafts?state&before&per_page`: the agency's drafts, newest first.
pub async fn list<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    ApiQuery(q): ApiQuery<DraftQuery>,
) -> ApiResult {
    let draft_state = match q.state.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(
            STATES
                .into_iter()
                .find(|d| d.as_str() == s)
                .ok_or_else(|| {
                    let list = crate::node::validate::one_of(STATES.iter().map(|d| d.as_str()));
                    FormatError::invalid("state", format!("{s:?}: expected one of {list}")).said(
                        Problem::Expected(
                            format!("một trong các giá trị {list} (chờ duyệt, đã duyệt, đã hủy)")
                                .into(),
                        ),
                    )
                })?,
        ),
    };
    let page = page(q.per_page, q.before)?;
    let filter = DraftFilter {
        state: draft_state,
        page,
    };
    let items = state
        .node
        .store
        .list_drafts(clerk.agency.as_str(), &filter)
        .await?;
    let views: Vec<DraftView> = items.iter().map(DraftView::from).collect();
    Ok(Json(page_of(views, page, |v| v.id)).into_response())
}

/// `GET /api/v1/drafts/{id}`: one draft, with the mail's text.
pub async fn show<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult {
    let id = path_id(id)?;
    let d = state
        .node
        .store
        .draft(clerk.agency.as_str(), id)
        .await
        .map_err(not_found(id))?;
    Ok(Json(detail(&d)).into_response())
}

/// A content type as the mail declared it, if it is a plain `type/subtype` (parameters
/// dropped); anything else is served as `application/octet-stream`.
fn served_type(declared: &str) -> HeaderValue {
    let essence = declared.split(';').next().unwrap_or("").trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    match essence.split_once('/') {
        Some((t, sub)) if token(t) && token(sub) => HeaderValue::from_str(essence)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
        _ => HeaderValue::from_static("application/octet-stream"),
    }
}

/// `GET /api/v1/drafts/{id}/files/{n}`: file `n` (from 1) of the draft, as the mail carried
/// it, with its (already sanitised) name made safe to save once more and a download
/// disposition: a browser never renders it in the node's origin.
pub async fn file<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    p: Result<Path<(i64, u32)>, PathRejection>,
) -> ApiResult {
    let (id, n) = p
        .map(|Path(x)| x)
        .map_err(|r| extract::path_rejection(&r, &["id", "n"]))?;
    let store = &state.node.store;
    let agency = clerk.agency.as_str();
    let d = store.draft(agency, id).await.map_err(not_found(id))?;
    let count = d.files.len();
    let Some(info) = n
        .checked_sub(1)
        .and_then(|i| d.files.get(usize::try_from(i).ok()?))
    else {
        return Err(FormatError::new(
            Code::NotFound,
            "n",
            format!("file {n}: the draft has {count} (numbered from 1)"),
        )
        .said(Problem::Said(
            format!("bản thảo không có tệp số {n}: bản thảo có {count} tệp, đánh số từ 1").into(),
        ))
        .into());
    };
    let f = store
        .draft_file(agency, id, info.index)
        .await
        .map_err(not_found(id))?;
    Ok((
        [
            (CONTENT_TYPE, served_type(&f.content_type)),
            (CONTENT_DISPOSITION, disposition(&safe_file_name(&f.name))),
            (
                HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ),
        ],
        f.bytes,
    )
        .into_response())
}

/// `POST /api/v1/drafts/{id}/approve` with a JSON [`DraftApproval`]: numbered, signed with
/// the agency's key and sent, the draft approved in the same transaction. `202` with the new
/// document (as a submission's answer); `200` for a repeat with the same `Idempotency-Key`.
pub async fn approve<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    id: Result<Path<i64>, PathRejection>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<DraftApproval>,
) -> ApiResult {
    let id = path_id(id)?;
    let key = idempotency_key(&headers)?;
    let out = match state
        .node
        .approve_draft(&clerk.agency, id, &req, &clerk.actor(), key)
        .await
    {
        Ok(out) => out,
        Err(e) => return Err(refused(&state, &clerk, id, Action::Approve, e).await),
    };
    tracing::info!(
        agency = %clerk.agency,
        draft = id,
        message_id = out.message_id,
        existing = out.existing,
        "draft approved"
    );
    follow_up_response(out)
}

/// Body of `POST /api/v1/drafts/{id}/discard`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscardRequest {
    /// Why (kept with the draft and in the audit chain); required.
    reason: String,
}

/// `POST /api/v1/drafts/{id}/discard` with `{"reason": "…"}`: the draft will not be sent;
/// answered with the draft as it now is.
pub async fn discard<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    id: Result<Path<i64>, PathRejection>,
    ApiJson(req): ApiJson<DiscardRequest>,
) -> ApiResult {
    let id = path_id(id)?;
    let d = match state
        .node
        .discard_draft(&clerk.agency, id, &req.reason, &clerk.actor())
        .await
    {
        Ok(d) => d,
        Err(e) => return Err(refused(&state, &clerk, id, Action::Discard, e).await),
    };
    tracing::info!(agency = %clerk.agency, draft = id, "draft discarded");
    Ok(Json(detail(&d)).into_response())
}

#[cfg(test)]
mod tests {
    use super::served_type;

    #[test]
    fn only_a_plain_declared_type_is_served() {
        assert_eq!(served_type("application/pdf"), "application/pdf");
        assert_eq!(
            served_type("application/pdf; name=\"x.pdf\""),
            "application/pdf"
        );
        for bad in ["", "pdf", "text/html\r\nX: y", "a/b/c", "tệp/pdf", "a/"] {
            assert_eq!(served_type(bad), "application/octet-stream", "{bad:?}");
        }
    }
}
