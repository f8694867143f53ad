//! The clerk API, `/api/v1/…`: JSON, bearer token of one agency ([`Clerk`]). Every read passes
//! the clerk's agency to the store, so a clerk never sees another agency's mail: someone else's
//! id is simply `404 NOT_FOUND`.
//!
//! Conventions: times are RFC 3339 in UTC on output; `since`/`until` accept RFC 3339 or Unix
//! milliseconds (`since` inclusive, `until` exclusive). Lists are newest first and paged by key:
//! `per_page` (1–1000, default 50) and `before` = the `next_before` of the previous page.
//! Status codes are two-digit strings (`"03"`). Attachments are numbered from **1**, in the order
//! of the package.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Multipart, Path, Request, State, multipart::MultipartRejection};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode as Http};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::auth::Clerk;
use super::error::ApiError;
use super::extract::{self, ApiJson, ApiQuery};
use super::params::{parse_time, path_id, ts};
use crate::Code;
use crate::edxml::{self, StatusCode};
use crate::error::{FormatError, Problem};
use crate::node::compose::{File, Submission};
use crate::node::read::PackageSource;
use crate::node::service::UpdateRequest;
use crate::node::validate;
use crate::store::{
    DeliveryError, DeliveryInfo, Direction, InboxFilter, InboxItem, MessageInfo, OutgoingFilter,
    OutgoingItem, Page, StatusRecord, Store, SubmittedDelivery, UnverifiedSignature,
};
use crate::transport::file_body::{self, FileBody};

type ApiResult<T = Response> = Result<T, ApiError>;

// --- helpers -----------------------------------------------------------------------------------

fn status_wire(n: u8) -> String {
    format!("{n:02}")
}

fn header_value(header_json: &str) -> Value {
    serde_json::from_str(header_json).unwrap_or(Value::Null)
}

/// `Content-Disposition: attachment` with an ASCII fallback and the UTF-8 name (RFC 6266/5987).
pub(crate) fn disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"._-~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

fn xml_download(body: impl IntoResponse, name: &str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/xml")),
            (CONTENT_DISPOSITION, disposition(name)),
        ],
        body,
    )
        .into_response()
}

/// The signed package of message `id` as the read layer found it for the asking agency. A
/// package the store keeps as a file is checked against its SHA-256 first (so a damaged one is a
/// clean `STORE_CORRUPT`, not a cut-off download) and then streamed from the file, checked again
/// as it goes: a 100 MB package is never in memory for a download.
async fn package_download(source: PackageSource, id: i64) -> ApiResult {
    let name = format!("lienthong-{id}.xml");
    let file = match source {
        PackageSource::Bytes(bytes) => return Ok(xml_download(bytes, &name)),
        PackageSource::File(file) => file,
    };
    file_body::check(&file).await?;
    let body = FileBody::open(&file, Default::default())
        .await
        .map_err(|e| crate::Error::io(format!("reading {}", file.path.display()), e))?;
    Ok(xml_download(axum::body::Body::new(body), &name))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    since: Option<String>,
    until: Option<String>,
    before: Option<i64>,
    per_page: Option<u32>,
    /// Inbox only: `"03"`, or `none` for documents nothing has been reported on yet.
    status: Option<String>,
}

impl ListQuery {
    fn page(&self) -> ApiResult<Page> {
        super::params::page(self.per_page, self.before)
    }

    fn range(&self) -> ApiResult<(Option<i64>, Option<i64>)> {
        let since = self
            .since
            .as_deref()
            .map(|s| parse_time("since", s))
            .transpose()?;
        let until = self
            .until
            .as_deref()
            .map(|s| parse_time("until", s))
            .transpose()?;
        Ok((since, until))
    }
}

/// A page of items and the cursor for the next one.
#[derive(Serialize)]
pub(super) struct PageOf<T> {
    items: Vec<T>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<i64>,
}

pub(super) fn page_of<T>(items: Vec<T>, page: Page, id: impl Fn(&T) -> i64) -> PageOf<T> {
    let next_before = (items.len() as u32 >= page.limit)
        .then(|| items.last().map(&id))
        .flatten();
    PageOf { items, next_before }
}

// --- views -------------------------------------------------------------------------------------

#[derive(Serialize)]
struct StatusView {
    code: String,
    description: String,
    reporter: String,
    reported_at: String,
    recorded_at: String,
    direction: crate::store::Direction,
}

impl From<&StatusRecord> for StatusView {
    fn from(s: &StatusRecord) -> Self {
        StatusView {
            code: status_wire(s.code),
            description: s.description.clone(),
            reporter: s.reporter.clone(),
            reported_at: ts(s.reported_at),
            recorded_at: ts(s.recorded_at),
            direction: s.direction,
        }
    }
}

#[derive(Serialize)]
struct AttemptView {
    number: u32,
    started_at: String,
    finished_at: Option<String>,
    outcome: Option<crate::store::AttemptOutcome>,
    error: Option<DeliveryError>,
    /// A mail delivery's relay answer: what `delivered` rests on for a mailbox.
    reply: Option<String>,
}

#[derive(Serialize)]
struct DeliveryView {
    delivery_id: i64,
    recipient: String,
    route: String,
    state: crate::store::DeliveryState,
    attempts: u32,
    next_attempt_at: Option<String>,
    last_error: Option<DeliveryError>,
    delivered_at: Option<String>,
    /// The latest processing status the recipient reported (`"03"`), and when.
    latest_status: Option<String>,
    latest_status_at: Option<String>,
    /// Detail view only: every attempt, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt_log: Option<Vec<AttemptView>>,
    /// Detail view only: the recipient's status reports, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<Vec<StatusView>>,
}

impl From<&DeliveryInfo> for DeliveryView {
    fn from(d: &DeliveryInfo) -> Self {
        DeliveryView {
            delivery_id: d.id,
            recipient: d.recipient.clone(),
            route: d.route.clone(),
            state: d.state,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at.map(ts),
            last_error: d.last_error.clone(),
            delivered_at: d.delivered_at.map(ts),
            latest_status: d.latest_status.map(status_wire),
            latest_status_at: d.latest_status_at.map(ts),
            attempt_log: None,
            history: None,
        }
    }
}

/// How a package's authenticity was established, as the clerk and admin APIs show it:
/// `signed` (an agency of this node signed it), `verified` (received, its XML signature
/// verified) or `channel` (received with its signature absent or a placeholder, authenticated
/// only by the mutual-TLS connection of the channel peer it came over: not signed, and never
/// described as signed). `description` is what a clerk reads.
#[derive(Serialize)]
pub struct SignatureView {
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    xml_signature: Option<UnverifiedSignature>,
    description: String,
}

impl From<&MessageInfo> for SignatureView {
    fn from(m: &MessageInfo) -> Self {
        let signer = m.signer_subject.as_deref().unwrap_or("");
        match (&m.channel, m.direction) {
            (Some(c), _) => SignatureView {
                state: "channel",
                channel: Some(c.channel.clone()),
                xml_signature: Some(c.xml_signature),
                description: format!(
                    "{} — nguồn gửi chỉ được xác thực qua kênh kết nối {}",
                    match c.xml_signature {
                        UnverifiedSignature::Absent => "Không có chữ ký số",
                        UnverifiedSignature::Placeholder =>
                            "Chữ ký số giả định, không kiểm tra được",
                    },
                    c.channel
                ),
            },
            (None, Direction::Out) => SignatureView {
                state: "signed",
                channel: None,
                xml_signature: None,
                description: format!("Đã ký số: {signer}"),
            },
            (None, Direction::In) => SignatureView {
                state: "verified",
                channel: None,
                xml_signature: None,
                description: format!("Chữ ký số hợp lệ: {signer}"),
            },
        }
    }
}

#[derive(Serialize)]
struct MessageView {
    id: i64,
    document_id: String,
    sender: String,
    number: Option<String>,
    notation: Option<String>,
    year: Option<i32>,
    subject: Option<String>,
    business_type: Option<u8>,
    sha256: String,
    size: u64,
    signer: Option<String>,
    signature: SignatureView,
    created_at: String,
}

impl From<&MessageInfo> for MessageView {
    fn from(m: &MessageInfo) -> Self {
        MessageView {
            id: m.id,
            document_id: m.document_id.clone(),
            sender: m.sender.clone(),
            number: m.code_number.clone(),
            notation: m.code_notation.clone(),
            year: m.code_year,
            subject: m.subject.clone(),
            business_type: m.business_type,
            sha256: m.sha256.clone(),
            size: m.size,
            signer: m.signer_subject.clone(),
            signature: SignatureView::from(m),
            created_at: ts(m.created_at),
        }
    }
}

#[derive(Serialize)]
struct DocumentView {
    #[serde(flatten)]
    message: MessageView,
    deliveries: Vec<DeliveryView>,
    /// Detail view only: the parsed package header.
    #[serde(skip_serializing_if = "Option::is_none")]
    header: Option<Value>,
}

impl From<&OutgoingItem> for DocumentView {
    fn from(o: &OutgoingItem) -> Self {
        DocumentView {
            message: MessageView::from(&o.message),
            deliveries: o.deliveries.iter().map(DeliveryView::from).collect(),
            header: None,
        }
    }
}

#[derive(Serialize)]
struct InboxView {
    #[serde(flatten)]
    message: MessageView,
    recipient: String,
    peer: Option<String>,
    received_at: String,
    /// The latest status this agency reported (`"03"`); absent before any.
    status: Option<String>,
    status_at: Option<String>,
    revoked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    header: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<Vec<StatusView>>,
}

impl From<&InboxItem> for InboxView {
    fn from(i: &InboxItem) -> Self {
        InboxView {
            message: MessageView::from(&i.message),
            recipient: i.recipient.clone(),
            peer: i.message.peer.clone(),
            received_at: ts(i.received_at),
            status: i.current_status.map(status_wire),
            status_at: i.current_status_at.map(ts),
            revoked: i.revoked,
            header: None,
            history: None,
        }
    }
}

// --- sending -----------------------------------------------------------------------------------

#[derive(Serialize)]
struct SubmitResponse {
    id: i64,
    document_id: String,
    deliveries: Vec<SubmittedDelivery>,
    existing: bool,
    /// What the clerk should know about the accepted document (`NO_FILE`); always present,
    /// empty when there is nothing to say, so clients need not tell absent from empty.
    warnings: Vec<crate::store::SubmitWarning>,
}

fn multipart_error(e: axum::extract::multipart::MultipartError, max: usize) -> ApiError {
    extract::multipart_error(&e, max)
}

/// A second part of a name that is sent once (`metadata`, `reason`).
fn part_twice(name: &str) -> ApiError {
    FormatError::new(
        Code::ElementDuplicate,
        name,
        format!("only one {name} part"),
    )
    .said(Problem::Duplicate)
    .into()
}

/// A part whose name the request does not have; `accepted` are the names it has.
fn unknown_part(name: &str, accepted: &[&str]) -> ApiError {
    FormatError::invalid(
        name,
        format!(
            "not a part of this request; expected {}",
            accepted
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .said(Problem::Unknown {
        accepted: accepted.iter().map(|a| (*a).to_owned()).collect(),
    })
    .into()
}

/// Refuses the `count`-th file part (from 0) of a request when receivers accept fewer files
/// (`ATTACHMENT_LIMIT`), before it is read.
fn file_part_allowed(count: usize, limits: &edxml::xml::Limits, prefix: &str) -> ApiResult<()> {
    if count >= limits.max_attachments {
        return Err(FormatError::new(
            Code::AttachmentLimit,
            prefix,
            format!(
                "more than {} files, the limit receivers accept",
                limits.max_attachments
            ),
        )
        .said(Problem::TooMany {
            max: limits.max_attachments,
        })
        .into());
    }
    Ok(())
}

/// A file part's bytes, read chunk by chunk into one buffer sized from the request's
/// `Content-Length` (at most `max`; an upper bound of any one part). Collecting into `Bytes`
/// grows the buffer by doubling: a large upload was copied about log2(size) times on its way in
/// and the heap kept the discarded buffers.
///
/// A file over the receivers' per-file limit is refused as soon as it passes it
/// (`ATTACHMENT_TOO_LARGE`, naming `path`), without reading the rest.
async fn file_bytes(
    mut field: axum::extract::multipart::Field<'_>,
    headers: &HeaderMap,
    max: usize,
    limits: &edxml::xml::Limits,
    path: &str,
) -> ApiResult<Vec<u8>> {
    let hint = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(0)
        .min(max);
    let mut out = Vec::with_capacity(hint);
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, max))? {
        out.extend_from_slice(&chunk);
        let size = u64::try_from(out.len()).unwrap_or(u64::MAX);
        if size > limits.max_attachment_bytes {
            return Err(validate::too_large(path, size, limits.max_attachment_bytes).into());
        }
    }
    // Several files share the hint: give back what this one did not use.
    out.shrink_to_fit();
    Ok(out)
}

/// `POST /api/v1/documents`: a `metadata` part (JSON [`Submission`]) and zero or more `file`
/// parts. `Idempotency-Key` makes a retry of the same request return the first submission
/// (200, `existing: true`); the key reused for another request is `422 IDEMPOTENCY_KEY_REUSED`.
pub async fn submit<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult {
    let limits = &state.node.config.limits;
    let max = limits.max_package_bytes;
    let mut mp =
        multipart.map_err(|r| extract::multipart_rejection(&r, headers.get(CONTENT_TYPE)))?;
    let mut metadata: Option<Submission> = None;
    let mut files = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(|e| multipart_error(e, max))? {
        let name = field.name().unwrap_or("").to_owned();
        match name.as_str() {
            "metadata" => {
                if metadata.is_some() {
                    return Err(part_twice("metadata"));
                }
                let bytes: Bytes = field.bytes().await.map_err(|e| multipart_error(e, max))?;
                let sub = parse_metadata::<Submission>(&bytes)?;
                metadata = Some(sub);
            }
            "file" => {
                file_part_allowed(files.len(), limits, "files")?;
                let file_name = field.file_name().unwrap_or("").to_owned();
                let content_type = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_owned();
                let path = format!("files[{}]", files.len());
                let data = file_bytes(field, &headers, max, limits, &path).await?;
                files.push(File {
                    name: file_name,
                    content_type,
                    data,
                });
            }
            other => return Err(unknown_part(other, &["metadata", "file"])),
        }
    }
    let sub = metadata.ok_or_else(|| ApiError::from(FormatError::missing("metadata")))?;
    let key = idempotency_key(&headers)?;
    let submitted = state
        .node
        .submit(&clerk.agency, &clerk.actor(), &sub, files, key)
        .await?;
    crate::fault::crash(crate::fault::Point::SubmitCommitted);
    tracing::info!(
        agency = %clerk.agency,
        message_id = submitted.message_id,
        document_id = %submitted.document_id,
        existing = submitted.existing,
        "document submitted"
    );
    let status = if submitted.existing {
        Http::OK
    } else {
        Http::ACCEPTED
    };
    let body = SubmitResponse {
        id: submitted.message_id,
        document_id: submitted.document_id,
        deliveries: submitted.deliveries,
        existing: submitted.existing,
        warnings: submitted.warnings,
    };
    Ok((status, Json(body)).into_response())
}

/// The request's `Idempotency-Key`, if any (1 to 200 visible ASCII characters).
pub(super) fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    match headers.get("idempotency-key") {
        Some(v) => {
            let k = v.to_str().map(str::trim).unwrap_or("");
            if k.is_empty() || k.len() > 200 {
                return Err(FormatError::invalid(
                    "Idempotency-Key",
                    "expected 1 to 200 visible ASCII characters",
                )
                .said(Problem::Expected(
                    "từ 1 đến 200 ký tự ASCII nhìn thấy được".into(),
                ))
                .into());
            }
            Ok(Some(k.to_owned()))
        }
        None => Ok(None),
    }
}

/// `GET /api/v1/documents?since&until&before&per_page`.
pub async fn list_documents<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult {
    if q.status.is_some() {
        return Err(FormatError::invalid("status", "only the inbox filters by status")
            .said(Problem::Said(
                "chỉ danh sách văn bản đến (/inbox) lọc được theo trạng thái; vui lòng bỏ tham số này".into(),
            ))
            .into());
    }
    let page = q.page()?;
    let (since, until) = q.range()?;
    let filter = OutgoingFilter {
        since,
        until,
        page,
        ..Default::default()
    };
    let items = state
        .node
        .outgoing_page(clerk.agency.as_str(), &filter)
        .await?;
    let views: Vec<DocumentView> = items.iter().map(DocumentView::from).collect();
    Ok(Json(page_of(views, page, |v| v.message.id)).into_response())
}

/// A store `NOT_FOUND` about document `id` of the asking agency's sent documents, said to the
/// clerk as a sentence about their agency (the store's text names the agency's code).
fn not_sent(id: i64) -> impl FnOnce(crate::Error) -> ApiError {
    move |e| {
        if e.code() != Code::NotFound {
            return e.into();
        }
        ApiError::coded(
            Code::NotFound,
            format!("id: no document {id} sent by your agency"),
        )
        .with_vi(format!(
            "Không tìm thấy văn bản số {id} trong các văn bản cơ quan của bạn đã gửi; vui lòng kiểm tra \
             lại “id” (danh sách văn bản đã gửi: GET /api/v1/documents)."
        ))
    }
}

/// As [`not_sent`], for the documents the asking agency received.
fn not_received(id: i64) -> impl FnOnce(crate::Error) -> ApiError {
    move |e| {
        if e.code() != Code::NotFound {
            return e.into();
        }
        ApiError::coded(
            Code::NotFound,
            format!("id: no document {id} in the inbox of your agency"),
        )
        .with_vi(format!(
            "Không tìm thấy văn bản số {id} trong các văn bản cơ quan của bạn đã nhận; vui lòng kiểm tra \
             lại “id” (danh sách văn bản đến: GET /api/v1/inbox)."
        ))
    }
}

/// `GET /api/v1/documents/{id}`: with every delivery's attempts and the recipients' histories.
pub async fn document<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult {
    let id = path_id(id)?;
    let detail = state
        .node
        .outgoing_document(clerk.agency.as_str(), id)
        .await
        .map_err(not_sent(id))?;
    let mut view = DocumentView::from(&detail.item);
    for (d, full) in view.deliveries.iter_mut().zip(&detail.deliveries) {
        d.attempt_log = Some(
            full.attempts
                .iter()
                .map(|a| AttemptView {
                    number: a.number,
                    started_at: ts(a.started_at),
                    finished_at: a.finished_at.map(ts),
                    outcome: a.outcome,
                    error: a.error.clone(),
                    reply: a.reply.clone(),
                })
                .collect(),
        );
        d.history = Some(full.history.iter().map(StatusView::from).collect());
    }
    view.header = Some(header_value(&detail.item.message.header_json));
    Ok(Json(view).into_response())
}

/// `GET /api/v1/documents/{id}/deliveries/{delivery_id}/receipt`: the recipient's signed 01
/// that proves this delivery, exactly as kept, for showing a third party that the document
/// arrived. Only the sending agency sees it (another agency's document is `NOT_FOUND`); a
/// delivery not yet delivered is `RECEIPT_NOT_YET`.
pub async fn delivery_receipt<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    p: Result<Path<(i64, i64)>, PathRejection>,
) -> ApiResult {
    let (id, delivery_id) = p
        .map(|Path(x)| x)
        .map_err(|r| extract::path_rejection(&r, &["id", "delivery_id"]))?;
    let found = state
        .node
        .sent_receipt(clerk.agency.as_str(), id, delivery_id)
        .await
        .map_err(not_sent(id))?;
    let Some(receipt) = found else {
        return Err(ApiError::coded(
            Code::NotFound,
            format!("delivery_id: no delivery {delivery_id} of document message {id}"),
        )
        .with_vi(format!(
            "Văn bản {id} không có lần chuyển “delivery_id” {delivery_id}; vui lòng kiểm tra lại (các lần chuyển của văn bản có trong GET /api/v1/documents/{id})."
        )));
    };
    match receipt {
        Some(receipt) => Ok(xml_download(
            receipt,
            &format!("lienthong-{id}-delivery-{delivery_id}-receipt.xml"),
        )),
        _ => Err(ApiError::coded(
            Code::ReceiptNotYet,
            format!("delivery {delivery_id} of document message {id}: not delivered yet"),
        )
        .with_vi(format!(
            "Lần chuyển {delivery_id} của văn bản {id} chưa có báo nhận: nơi nhận chưa xác nhận đã nhận văn bản; vui lòng xem lại sau."
        ))),
    }
}

/// `GET /api/v1/documents/{id}/package`: the exact signed bytes that were sent.
pub async fn document_package<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult {
    let id = path_id(id)?;
    let source = state
        .node
        .document_package(clerk.agency.as_str(), id, true)
        .await
        .map_err(not_sent(id))?;
    package_download(source, id).await
}

// --- receiving ---------------------------------------------------------------------------------

/// `GET /api/v1/inbox?status&since&until&before&per_page`.
pub async fn list_inbox<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult {
    let page = q.page()?;
    let (since, until) = q.range()?;
    let status = match q.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("none") => Some(0),
        Some(s) => Some(
            StatusCode::parse(s)
                .map_err(|_| {
                    let list = StatusCode::list(&StatusCode::ASSIGNED);
                    FormatError::new(
                        Code::StatusCodeUnknown,
                        "status",
                        format!("{s:?}: expected one of {list}, or none"),
                    )
                    .said(Problem::Expected(
                        format!("một trong các mã trạng thái {list}, hoặc none").into(),
                    ))
                })?
                .number(),
        ),
    };
    let filter = InboxFilter {
        status,
        revoked: None,
        since,
        until,
        page,
        awaiting: false,
    };
    let items = state
        .node
        .inbox_page(clerk.agency.as_str(), &filter)
        .await?;
    // The inbox is paged by its own rows (`inbox_id`), not by message id: a message id as the
    // cursor repeated part of the page and skipped the rest.
    let next_before = page_of(items.iter().collect(), page, |i| i.inbox_id).next_before;
    let views: Vec<InboxView> = items.iter().map(InboxView::from).collect();
    Ok(Json(PageOf {
        items: views,
        next_before,
    })
    .into_response())
}

/// `GET /api/v1/inbox/{id}`: with the parsed header (attachments listed with their sizes) and
/// the processing history.
pub async fn inbox_item<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult {
    let id = path_id(id)?;
    let detail = state
        .node
        .incoming_document(clerk.agency.as_str(), id)
        .await
        .map_err(not_received(id))?;
    let mut view = InboxView::from(&detail.item);
    view.header = Some(header_value(&detail.item.message.header_json));
    view.history = Some(detail.history.iter().map(StatusView::from).collect());
    Ok(Json(view).into_response())
}

/// `GET /api/v1/inbox/{id}/package`: the signed bytes as received, less what the signature does
/// not cover (`dsig::archive`).
pub async fn inbox_package<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult {
    let id = path_id(id)?;
    let source = state
        .node
        .document_package(clerk.agency.as_str(), id, false)
        .await
        .map_err(not_received(id))?;
    package_download(source, id).await
}

/// `GET /api/v1/inbox/{id}/attachments/{n}`: file `n` (1-based), decoded and unzipped, with its
/// own content type and its name made safe to save ([`edxml::file_name::safe_file_name`]: a
/// browser writes it to disk).
pub async fn inbox_attachment<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    p: Result<Path<(i64, usize)>, PathRejection>,
) -> ApiResult {
    let (id, n) = p
        .map(|Path(x)| x)
        .map_err(|r| extract::path_rejection(&r, &["id", "n"]))?;
    let files = state
        .node
        .document_files(clerk.agency.as_str(), id, false)
        .await
        .map_err(not_received(id))?;
    let Some(attachments) = files else {
        return Err(ApiError::coded(
            Code::NotFound,
            format!("id: message {id} is a status package, which has no attachments"),
        )
        .with_vi(format!(
            "Mục {id} là gói tin trạng thái, không có tệp đính kèm; vui lòng kiểm tra lại “id”."
        )));
    };
    let count = attachments.len();
    let Some(a) = n
        .checked_sub(1)
        .and_then(|i| attachments.into_iter().nth(i))
    else {
        return Err(FormatError::new(
            Code::NotFound,
            "n",
            format!("attachment {n}: the document has {count} (numbered from 1)"),
        )
        .said(Problem::Said(
            format!("văn bản không có tệp đính kèm số {n}: văn bản có {count} tệp, đánh số từ 1")
                .into(),
        ))
        .into());
    };
    let ct = HeaderValue::from_str(&a.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    Ok((
        [
            (CONTENT_TYPE, ct),
            (
                CONTENT_DISPOSITION,
                disposition(&edxml::file_name::safe_file_name(&a.name)),
            ),
        ],
        a.data,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    /// `"02"`, `"03"`, `"04"`, `"05"`, `"06"`, `"15"` or `"16"`.
    code: String,
    #[serde(default)]
    description: String,
}

/// `POST /api/v1/inbox/{id}/status`: a signed status package back to the sender.
pub async fn report_status<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    id: Result<Path<i64>, PathRejection>,
    ApiJson(req): ApiJson<StatusRequest>,
) -> ApiResult {
    let id = path_id(id)?;
    let code = validate::clerk_status("code", &req.code)?;
    let out = state
        .node
        .report_status(&clerk.agency, &clerk.actor(), id, code, &req.description)
        .await
        .map_err(not_received(id))?;
    crate::fault::crash(crate::fault::Point::StatusCommitted);
    tracing::info!(
        agency = %clerk.agency,
        message_id = id,
        status = %code.as_wire(),
        "status reported"
    );
    // A repeat of a report already recorded (the same code and description on the same item)
    // is answered as the first, like a submission's replay: 200, `duplicate: true`.
    let status = if out.duplicate {
        Http::OK
    } else {
        Http::ACCEPTED
    };
    Ok((status, Json(out)).into_response())
}

/// Body of `POST /api/v1/documents/{id}/revoke`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Why the document is taken back (BussinessDocReason); required.
    reason: String,
}

/// `POST /api/v1/documents/{id}/revoke`: a revocation (business type 1) to the same recipients,
/// signed with the agency's key; they answer 15 (agree) or 16 (refuse).
pub async fn revoke<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    id: Result<Path<i64>, PathRejection>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> ApiResult {
    let id = path_id(id)?;
    let key = idempotency_key(&headers)?;
    let out = state
        .node
        .revoke_with_key(&clerk.agency, &clerk.actor(), id, &req.reason, key)
        .await
        .map_err(not_sent(id))?;
    tracing::info!(agency = %clerk.agency, message_id = id, revocation = out.message_id, "revocation sent");
    follow_up_response(out)
}

/// A `metadata` part (JSON) as the request's type `T` (`Submission`, `UpdateRequest`); a
/// refusal names the field as `metadata.…` ([`extract::json`]). Public, as [`follow_up_parts`] is, for the
/// fuzz targets (fuzz/), which feed the clerk API's parsers the bodies a client could send.
pub fn parse_metadata<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, FormatError> {
    extract::json(bytes, "metadata", "metadata")
}

/// The parts of a follow-up's multipart body: one `metadata` (JSON), at most one `reason`
/// (text, when `with_reason`), and the `file` parts in order.
pub struct FollowUpParts {
    pub metadata: Option<Bytes>,
    pub reason: Option<String>,
    pub files: Vec<File>,
}

/// Reads a follow-up's multipart body into its [`FollowUpParts`]; reads nothing but `mp`.
pub async fn follow_up_parts(
    mut mp: Multipart,
    limits: &edxml::xml::Limits,
    with_reason: bool,
    files_prefix: &str,
) -> ApiResult<FollowUpParts> {
    let max = limits.max_package_bytes;
    let mut out = FollowUpParts {
        metadata: None,
        reason: None,
        files: Vec::new(),
    };
    while let Some(field) = mp.next_field().await.map_err(|e| multipart_error(e, max))? {
        let name = field.name().unwrap_or("").to_owned();
        match name.as_str() {
            "metadata" => {
                if out.metadata.is_some() {
                    return Err(part_twice("metadata"));
                }
                out.metadata = Some(field.bytes().await.map_err(|e| multipart_error(e, max))?);
            }
            "reason" if with_reason => {
                if out.reason.is_some() {
                    return Err(part_twice("reason"));
                }
                let text = field.text().await.map_err(|e| multipart_error(e, max))?;
                out.reason = Some(text);
            }
            "file" => {
                file_part_allowed(out.files.len(), limits, files_prefix)?;
                let file_name = field.file_name().unwrap_or("").to_owned();
                let content_type = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_owned();
                let data = field.bytes().await.map_err(|e| multipart_error(e, max))?;
                let size = u64::try_from(data.len()).unwrap_or(u64::MAX);
                if size > limits.max_attachment_bytes {
                    let path = format!("{files_prefix}[{}]", out.files.len());
                    return Err(
                        validate::too_large(&path, size, limits.max_attachment_bytes).into(),
                    );
                }
                out.files.push(File {
                    name: file_name,
                    content_type,
                    // Not a copy: the multipart buffer is handed over.
                    data: Vec::from(data),
                });
            }
            other => {
                let accepted: &[&str] = if with_reason {
                    &["metadata", "reason", "file"]
                } else {
                    &["metadata", "file"]
                };
                return Err(unknown_part(other, accepted));
            }
        }
    }
    Ok(out)
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| {
            c.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// `POST /api/v1/documents/{id}/update`: an update (business type 2, same DocumentId) to the
/// new recipient list, signed with the agency's key; they answer 15 (agree) or 16 (refuse).
/// Either a JSON [`UpdateRequest`] body, or multipart: a `metadata` part (the same JSON) and
/// `file` parts that replace all of the document's files.
pub async fn update<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    id: Result<Path<i64>, PathRejection>,
    req: Request,
) -> ApiResult {
    let id = path_id(id)?;
    let limits = state.node.config.limits.clone();
    let key = idempotency_key(req.headers())?;
    let body = if is_multipart(req.headers()) {
        let content_type = req.headers().get(CONTENT_TYPE).cloned();
        let mp = Multipart::from_request(req, &())
            .await
            .map_err(|r| extract::multipart_rejection(&r, content_type.as_ref()))?;
        let parts = follow_up_parts(mp, &limits, false, "update.files").await?;
        let meta = parts
            .metadata
            .ok_or_else(|| ApiError::from(FormatError::missing("metadata")))?;
        let mut body = parse_metadata::<UpdateRequest>(&meta)?;
        body.files = parts.files;
        body
    } else {
        if !extract::is_json(req.headers().get(CONTENT_TYPE)) {
            return Err(extract::content_type_error(
                req.headers().get(CONTENT_TYPE),
                "application/json, or multipart/form-data (a `metadata` part and `file` parts)",
                "application/json, hoặc multipart/form-data (biểu mẫu gồm phần “metadata” và các phần “file”)",
            ));
        }
        let ApiJson(body) = ApiJson::<UpdateRequest>::from_request(req, &()).await?;
        body
    };
    let out = state
        .node
        .update_with_key(&clerk.agency, &clerk.actor(), id, body, key)
        .await
        .map_err(not_sent(id))?;
    tracing::info!(agency = %clerk.agency, message_id = id, update = out.message_id, "update sent");
    follow_up_response(out)
}

/// `POST /api/v1/documents/{id}/replace`: a new document (business type 3) replacing this one.
/// Multipart as for `POST /api/v1/documents` (`metadata` JSON [`Submission`], `file` parts) plus
/// a `reason` text part (required).
pub async fn replace<S: Store>(
    State(state): State<AppState<S>>,
    clerk: Clerk,
    id: Result<Path<i64>, PathRejection>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult {
    let id = path_id(id)?;
    let key = idempotency_key(&headers)?;
    let mp = multipart.map_err(|r| extract::multipart_rejection(&r, headers.get(CONTENT_TYPE)))?;
    let parts = follow_up_parts(mp, &state.node.config.limits, true, "files").await?;
    let meta = parts
        .metadata
        .ok_or_else(|| ApiError::from(FormatError::missing("metadata")))?;
    let sub = parse_metadata::<Submission>(&meta)?;
    let reason = parts.reason.unwrap_or_default();
    let out = state
        .node
        .replace_with_key(
            &clerk.agency,
            &clerk.actor(),
            id,
            &sub,
            parts.files,
            &reason,
            key,
        )
        .await
        .map_err(not_sent(id))?;
    tracing::info!(agency = %clerk.agency, message_id = id, replacement = out.message_id, "replacement sent");
    follow_up_response(out)
}

/// `202` with a follow-up's [`SubmitResponse`] (the `Submitted` of the API description): the
/// new message's id and its DocumentId; `200` when it answers a repeat of the same request
/// with the same `Idempotency-Key` (`existing`), as a submission's replay is.
pub(super) fn follow_up_response(out: crate::store::Submitted) -> ApiResult {
    let status = if out.existing {
        Http::OK
    } else {
        Http::ACCEPTED
    };
    let body = SubmitResponse {
        id: out.message_id,
        document_id: out.document_id,
        deliveries: out.deliveries,
        existing: out.existing,
        warnings: out.warnings,
    };
    Ok((status, Json(body)).into_response())
}
