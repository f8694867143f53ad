//! Nhật ký giao nhận: every delivery of the node, for the administrators (and, read-only, the
//! auditor) — filtered, paged by id (keyset: a page is as fast at the millionth row as at the
//! first), counted up to 10 000, exported as CSV or XLSX (one row producer, two writers); one delivery with its attempts; *Gửi lại* and
//! *Hủy* through the store's operator operations, the same the admin API's
//! `POST /admin/v1/deliveries/{id}/retry|cancel` call, recorded in the audit chain with the
//! console user as actor.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::Code;
use crate::console::access::Action;
use crate::console::view::format;
use crate::console::view::layout::{Section, notice};
use crate::console::{ConsoleState, Signed, see_other};
use crate::node::read::{COUNT_CAP, Capped};
use crate::node::service::now_ms;
use crate::store::{AttemptOutcome, DeliveryFilter, DeliveryInfo, DeliveryState, Page, Store};

/// Rows on one page.
const PER_PAGE: u32 = 50;
/// Most rows one *Gửi lại* of the selected rows retries.
pub const BULK_MAX: usize = 100;
/// Most rows in one CSV export: past it, the file says so in its last line (narrow the filter).
pub const CSV_MAX: usize = 10_000;

/// A delivery state as an administrator reads it.
pub fn state_label(s: DeliveryState) -> &'static str {
    match s {
        DeliveryState::Queued => "Chờ gửi",
        DeliveryState::Sending => "Đang gửi",
        DeliveryState::Delivered => "Đã đến nơi nhận",
        DeliveryState::Retrying => "Chờ gửi lại",
        DeliveryState::Failed => "Gửi không thành công",
        DeliveryState::Rejected => "Bị nơi nhận từ chối",
        DeliveryState::Cancelled => "Đã hủy",
    }
}

fn outcome_label(o: AttemptOutcome) -> &'static str {
    match o {
        AttemptOutcome::Delivered => "Đã đến nơi nhận",
        AttemptOutcome::Retry => "Lỗi, sẽ gửi lại",
        AttemptOutcome::Failed => "Lỗi, dừng gửi",
        AttemptOutcome::Expired => "Quá hạn (tiến trình gửi không báo kết quả)",
        AttemptOutcome::Superseded => "Bỏ qua (nơi nhận đã từ chối)",
    }
}

/// The state choices of the filter: the overview's groups first, then each state.
const STATE_CHOICES: [(&str, &str); 10] = [
    ("pending", "Đang chờ gửi (chờ gửi, đang gửi, chờ gửi lại)"),
    ("failed", "Gửi lỗi (không thành công, chờ gửi lại)"),
    ("queued", "Chờ gửi"),
    ("sending", "Đang gửi"),
    ("retrying", "Chờ gửi lại"),
    ("stopped", "Gửi không thành công (đã dừng, cần xử lý)"),
    ("delivered", "Đã đến nơi nhận"),
    ("rejected", "Bị nơi nhận từ chối"),
    ("cancelled", "Đã hủy"),
    ("", "Tất cả trạng thái"),
];

/// The states a filter value stands for (`None`: not a choice).
fn states_of(v: &str) -> Option<Vec<DeliveryState>> {
    use DeliveryState as D;
    Some(match v {
        "" => vec![],
        "pending" => vec![D::Queued, D::Sending, D::Retrying],
        // As the overview's "Gửi lỗi" counts them: the last attempt failed.
        "failed" => vec![D::Failed, D::Retrying],
        "stopped" => vec![D::Failed],
        other => vec![D::parse(other).filter(|s| *s != D::Failed)?],
    })
}

/// The list's query: the filter form's fields, and `before` for the next page.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    route: String,
    #[serde(default)]
    recipient: String,
    #[serde(default)]
    sender: String,
    /// `dd/mm/yyyy`, Vietnam's time, inclusive.
    #[serde(default)]
    from: String,
    /// `dd/mm/yyyy`, Vietnam's time, inclusive (the whole day).
    #[serde(default)]
    to: String,
    #[serde(default)]
    error: String,
    before: Option<i64>,
    /// After a bulk retry: how many were retried and how many refused.
    done: Option<u32>,
    refused: Option<u32>,
}

impl ListQuery {
    /// The store filter, or what is wrong with the form (in Vietnamese).
    fn filter(&self, limit: u32) -> Result<DeliveryFilter, String> {
        let given = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let states = states_of(self.state.trim())
            .ok_or_else(|| "Trạng thái đã chọn không có trong danh sách.".to_owned())?;
        let day = |s: &str, what: &str| -> Result<Option<i64>, String> {
            match given(s) {
                None => Ok(None),
                Some(v) => format::parse_date(&v).map(Some).ok_or_else(|| {
                    format!("{what} “{v}” không đúng dạng ngày/tháng/năm (ví dụ 07/12/2026).")
                }),
            }
        };
        let since = day(&self.from, "Từ ngày")?;
        let until = day(&self.to, "Đến ngày")?.map(|d| d + 86_400_000);
        if let (Some(a), Some(b)) = (since, until)
            && a >= b
        {
            return Err("“Từ ngày” phải trước hoặc bằng “Đến ngày”.".to_owned());
        }
        Ok(DeliveryFilter {
            states,
            route: given(&self.route),
            recipient: given(&self.recipient),
            sender: given(&self.sender),
            error_code: given(&self.error),
            since,
            until,
            page: Page {
                limit,
                before: self.before.filter(|b| *b > 0),
            },
            ..DeliveryFilter::default()
        })
    }

    /// The query string of this filter (without `before`), for links to other pages.
    fn query_string(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("state", &self.state),
            ("route", &self.route),
            ("recipient", &self.recipient),
            ("sender", &self.sender),
            ("from", &self.from),
            ("to", &self.to),
            ("error", &self.error),
        ] {
            if !v.trim().is_empty() {
                q.append_pair(k, v.trim());
            }
        }
        q.finish()
    }
}

fn no_such<S: Store>(state: &ConsoleState<S>, who: &Signed) -> Response {
    state.error_page(
        Some(who),
        StatusCode::NOT_FOUND,
        "Không tìm thấy lần chuyển",
        "Không có lần chuyển văn bản với số này trên hệ thống; vui lòng kiểm tra lại.",
    )
}

/// `GET /console/deliveries`.
pub async fn list<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    if let Err(r) = state
        .require(&who, Action::ViewDeliveries, "/console/deliveries")
        .await
    {
        return r;
    }
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let (rows, total, problem) = match q.filter(PER_PAGE) {
        Err(problem) => (Vec::new(), None, Some(problem)),
        Ok(filter) => {
            let rows = match state.node.deliveries(&filter).await {
                Ok(r) => r,
                Err(e) => {
                    return state.store_unavailable(&who, "Tạm thời không đọc được dữ liệu", &e);
                }
            };
            let total = match state.node.count_deliveries(&filter).await {
                Ok(t) => t,
                Err(e) => {
                    return state.store_unavailable(&who, "Tạm thời không đọc được dữ liệu", &e);
                }
            };
            (rows, Some(total), None)
        }
    };
    let next = (rows.len() as u32 >= PER_PAGE)
        .then(|| rows.last().map(|d| d.id))
        .flatten();
    let qs = q.query_string();
    let may_retry = who.principal().may(Action::RetryDelivery);
    let body = html! {
        @if let Some(n) = q.done {
            (notice(q.refused.unwrap_or(0) == 0, &format!(
                "Đã chuyển {} lần chuyển sang chờ gửi lại ngay{}.",
                format::number(u64::from(n)),
                match q.refused { Some(r) if r > 0 => format!("; {} lần chuyển không gửi lại được (trạng thái không cho phép)", format::number(u64::from(r))), _ => String::new() }
            )))
        }
        @if let Some(p) = &problem { (notice(false, p)) }
        (filter_form(&state, &q))
        p class="hint" {
            @match total {
                Some(Capped::Exactly(n)) => { "Tìm thấy " strong { (format::number(n)) } " lần chuyển." }
                Some(Capped::More) => { "Tìm thấy " strong { "hơn " (format::number(u64::from(COUNT_CAP))) } " lần chuyển." }
                None => {}
            }
            " "
            a href={ "/console/deliveries.csv?" (qs) } { "Tải về tệp CSV" }
            " · "
            a href={ "/console/deliveries.xlsx?" (qs) } { "Tải về tệp Excel (XLSX)" }
        }
        @if rows.is_empty() && problem.is_none() {
            p { "Không có lần chuyển nào khớp với bộ lọc." }
        } @else if !rows.is_empty() {
            @if may_retry {
                form method="post" action="/console/deliveries/retry-selected" {
                    input type="hidden" name="_csrf" value=(who.session.csrf);
                    input type="hidden" name="back" value=(qs);
                    (table(&rows, true))
                    p {
                        button type="submit" class="primary" { "Gửi lại các lần chuyển đã chọn" }
                        " "
                        span class="hint" { "(tối đa " (BULK_MAX) " lần chuyển mỗi lần; chỉ lần chuyển gửi không thành công hoặc đang chờ gửi lại)" }
                    }
                }
            } @else {
                (table(&rows, false))
            }
        }
        nav class="pager" aria-label="Phân trang" {
            @if q.before.is_some() {
                a href={ "/console/deliveries?" (qs) } { "« Trang đầu" }
            }
            @if let Some(n) = next {
                a href={ "/console/deliveries?" (qs) @if !qs.is_empty() { "&" } "before=" (n) } { "Trang sau »" }
            }
        }
    };
    let mut res = state.page(&who, "Nhật ký giao nhận", Section::Deliveries, body);
    if problem.is_some() {
        *res.status_mut() = StatusCode::BAD_REQUEST;
    }
    res
}

fn filter_form<S: Store>(state: &ConsoleState<S>, q: &ListQuery) -> Markup {
    let peers: Vec<String> = state
        .node
        .config
        .peers
        .iter()
        .map(|p| format!("peer:{}", p.name))
        .collect();
    let routes: Vec<(String, String)> = [
        ("".to_owned(), "Tất cả".to_owned()),
        ("local".to_owned(), "Trong hệ thống này".to_owned()),
        ("none".to_owned(), "Chưa có tuyến".to_owned()),
    ]
    .into_iter()
    .chain(peers.into_iter().map(|p| {
        let label = format!("Nút {}", p.trim_start_matches("peer:"));
        (p, label)
    }))
    .collect();
    let known_route = routes.iter().any(|(v, _)| v == q.route.trim());
    html! {
        form method="get" action="/console/deliveries" class="filters" role="search" aria-label="Lọc nhật ký giao nhận" {
            div class="field" {
                label for="f-state" { "Trạng thái" }
                select id="f-state" name="state" {
                    @for (v, label) in STATE_CHOICES {
                        option value=(v) selected[q.state.trim() == v] { (label) }
                    }
                }
            }
            div class="field" {
                label for="f-route" { "Tuyến gửi" }
                select id="f-route" name="route" {
                    @for (v, label) in &routes {
                        option value=(v) selected[q.route.trim() == v] { (label) }
                    }
                    @if !known_route {
                        option value=(q.route.trim()) selected { (q.route.trim()) }
                    }
                }
            }
            div class="field" {
                label for="f-recipient" { "Mã cơ quan nhận" }
                input id="f-recipient" name="recipient" value=(q.recipient) size="16" placeholder="000.00.00.H41";
            }
            div class="field" {
                label for="f-sender" { "Mã cơ quan gửi" }
                input id="f-sender" name="sender" value=(q.sender) size="16";
            }
            div class="field" {
                label for="f-from" { "Từ ngày" }
                input id="f-from" name="from" value=(q.from) size="10" placeholder="dd/mm/yyyy" inputmode="numeric";
            }
            div class="field" {
                label for="f-to" { "Đến ngày" }
                input id="f-to" name="to" value=(q.to) size="10" placeholder="dd/mm/yyyy" inputmode="numeric";
            }
            div class="field" {
                label for="f-error" { "Mã lỗi" }
                input id="f-error" name="error" value=(q.error) size="18" placeholder="PEER_UNREACHABLE";
            }
            button type="submit" class="primary" { "Lọc" }
            a class="button" href="/console/deliveries" { "Bỏ lọc" }
        }
    }
}

fn table(rows: &[DeliveryInfo], selectable: bool) -> Markup {
    html! {
        div class="table-wrap" {
            table {
                caption class="sr-only" { "Các lần chuyển văn bản, mới nhất trước" }
                thead {
                    tr {
                        @if selectable { th scope="col" { span class="sr-only" { "Chọn" } } }
                        th scope="col" { "Số" }
                        th scope="col" { "Cơ quan gửi" }
                        th scope="col" { "Mã văn bản" }
                        th scope="col" { "Cơ quan nhận" }
                        th scope="col" { "Tuyến" }
                        th scope="col" { "Trạng thái" }
                        th scope="col" { "Số lần gửi" }
                        th scope="col" { "Lỗi gần nhất" }
                        th scope="col" { "Tạo lúc" }
                        th scope="col" { "Cập nhật" }
                    }
                }
                tbody {
                    @for d in rows {
                        tr {
                            @if selectable {
                                td {
                                    @if matches!(d.state, DeliveryState::Failed | DeliveryState::Retrying) {
                                        input type="checkbox" name="id" value=(d.id) id={ "sel-" (d.id) } aria-label={ "Chọn lần chuyển số " (d.id) };
                                    }
                                }
                            }
                            td { a href={ "/console/deliveries/" (d.id) } { (d.id) } }
                            td { (d.sender) }
                            td class="mono" { (d.document_id) }
                            td { (d.recipient) }
                            td { (d.route) }
                            td class={ "label-state state-" (d.state.as_str()) } { (state_label(d.state)) }
                            td { (d.attempts) }
                            td {
                                @if let Some(e) = &d.last_error {
                                    span class="mono" { (e.code) }
                                }
                            }
                            td { (format::date_time(d.created_at)) }
                            td { (format::date_time(d.updated_at)) }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /console/deliveries/{id}`.
pub async fn detail<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    id: Result<Path<i64>, PathRejection>,
    query: Result<Query<DetailQuery>, QueryRejection>,
) -> Response {
    let path = "/console/deliveries/{id}";
    if let Err(r) = state.require(&who, Action::ViewDeliveries, path).await {
        return r;
    }
    let Ok(Path(id)) = id else {
        return no_such(&state, &who);
    };
    let note = query.ok().and_then(|Query(q)| q.notice);
    let note = match note.as_deref() {
        Some("retried") => Some((
            true,
            "Đã chuyển lần chuyển sang chờ gửi; hệ thống sẽ gửi lại ngay.",
        )),
        Some("cancelled") => Some((
            true,
            "Đã hủy lần chuyển; lý do đã được ghi vào nhật ký kiểm toán.",
        )),
        _ => None,
    };
    show(&state, &who, id, StatusCode::OK, note).await
}

#[derive(Debug, Default, Deserialize)]
pub struct DetailQuery {
    notice: Option<String>,
}

/// The detail page with an optional notice (`ok`, text) and the given status.
async fn show<S: Store>(
    state: &ConsoleState<S>,
    who: &Signed,
    id: i64,
    status: StatusCode,
    note: Option<(bool, &str)>,
) -> Response {
    let (d, attempts) = match state.node.delivery_with_attempts(id).await {
        Ok(x) => x,
        Err(e) if e.code() == Code::NotFound => return no_such(state, who),
        Err(e) => return state.store_unavailable(who, "Tạm thời không đọc được dữ liệu", &e),
    };
    let may_retry = who.principal().may(Action::RetryDelivery)
        && matches!(d.state, DeliveryState::Failed | DeliveryState::Retrying);
    let may_cancel = who.principal().may(Action::CancelDelivery)
        && matches!(
            d.state,
            DeliveryState::Queued | DeliveryState::Retrying | DeliveryState::Failed
        );
    let body = html! {
        @if let Some((ok, text)) = note { (notice(ok, text)) }
        p { a href="/console/deliveries" { "« Nhật ký giao nhận" } }
        dl class="facts" {
            dt { "Trạng thái" } dd class={ "label-state state-" (d.state.as_str()) } { (state_label(d.state)) }
            dt { "Cơ quan gửi" } dd { (d.sender) }
            dt { "Mã văn bản" } dd class="mono" { (d.document_id) }
            dt { "Cơ quan nhận" } dd { (d.recipient) }
            dt { "Tuyến gửi" } dd { (d.route) }
            dt { "Số lần gửi" } dd { (d.attempts) }
            @if let Some(t) = d.next_attempt_at {
                @if matches!(d.state, DeliveryState::Queued | DeliveryState::Retrying) {
                    dt { "Gửi lần tới lúc" } dd { (format::date_time(t)) }
                }
            }
            @if let Some(e) = &d.last_error {
                dt { "Lỗi gần nhất" } dd { span class="mono" { (e.code) } " — " (e.message) }
            }
            @if let Some(t) = d.delivered_at {
                dt { "Đến nơi nhận lúc" } dd { (format::date_time(t)) }
            }
            @if let Some(code) = d.latest_status {
                dt { "Trạng thái xử lý nơi nhận báo" } dd {
                    (format!("{code:02}"))
                    @if let Some(t) = d.latest_status_at { " (" (format::date_time(t)) ")" }
                }
            }
            dt { "Tạo lúc" } dd { (format::date_time(d.created_at)) }
            dt { "Cập nhật lúc" } dd { (format::date_time(d.updated_at)) }
        }
        h2 { "Các lần gửi" }
        @if attempts.is_empty() {
            p { "Chưa có lần gửi nào." }
        } @else {
            div class="table-wrap" {
                table {
                    thead {
                        tr {
                            th scope="col" { "Lần" }
                            th scope="col" { "Tuyến" }
                            th scope="col" { "Bắt đầu" }
                            th scope="col" { "Kết thúc" }
                            th scope="col" { "Kết quả" }
                            th scope="col" { "Lỗi" }
                        }
                    }
                    tbody {
                        @for a in &attempts {
                            tr {
                                td { (a.number) }
                                td { (a.route) }
                                td { (format::date_time(a.started_at)) }
                                td { @if let Some(t) = a.finished_at { (format::date_time(t)) } @else { "—" } }
                                td { @if let Some(o) = a.outcome { (outcome_label(o)) } @else { "Đang gửi" } }
                                td {
                                    @if let Some(e) = &a.error { span class="mono" { (e.code) } " — " (e.message) }
                                    @if let Some(r) = &a.reply { "Máy chủ thư trả lời: " (r) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if may_retry || may_cancel {
            h2 { "Xử lý" }
            div class="actions" {
                @if may_retry {
                    form method="post" action={ "/console/deliveries/" (d.id) "/retry" } class="card" {
                        input type="hidden" name="_csrf" value=(who.session.csrf);
                        p { "Gửi lại ngay lần chuyển này (hệ thống tính lại thời hạn gửi từ bây giờ)." }
                        button type="submit" class="primary" { "Gửi lại" }
                    }
                }
                @if may_cancel {
                    form method="post" action={ "/console/deliveries/" (d.id) "/cancel" } class="card" {
                        input type="hidden" name="_csrf" value=(who.session.csrf);
                        div class="field" {
                            label for="reason" { "Lý do hủy (bắt buộc, ghi vào nhật ký kiểm toán)" }
                            textarea id="reason" name="reason" rows="3" required maxlength="1000" {}
                        }
                        button type="submit" class="danger" { "Hủy lần chuyển" }
                    }
                }
            }
        }
    };
    let mut res = state.page(
        who,
        &format!("Lần chuyển số {}", d.id),
        Section::Deliveries,
        body,
    );
    *res.status_mut() = status;
    res
}

/// A form with only its CSRF token.
#[derive(Debug, Deserialize)]
pub struct RetryForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// `POST /console/deliveries/{id}/retry`.
pub async fn retry<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    id: Result<Path<i64>, PathRejection>,
    axum::Form(form): axum::Form<RetryForm>,
) -> Response {
    if let Err(r) = state
        .require_form(
            &who,
            Action::RetryDelivery,
            "/console/deliveries/{id}/retry",
            &form.csrf,
        )
        .await
    {
        return r;
    }
    let Ok(Path(id)) = id else {
        return no_such(&state, &who);
    };
    let actor = who.principal().actor();
    match state.node.store.operator_retry(id, &actor, now_ms()).await {
        Ok(()) => {
            state.node.outbox_wake.notify_one();
            tracing::info!(delivery = id, actor = %actor, "console retry");
            see_other(&format!("/console/deliveries/{id}?notice=retried"))
        }
        Err(e) if e.code() == Code::InvalidTransition => {
            show(
                &state,
                &who,
                id,
                StatusCode::CONFLICT,
                Some((
                    false,
                    "Không gửi lại được: chỉ gửi lại được lần chuyển gửi không thành công hoặc \
                     đang chờ gửi lại. Trạng thái hiện tại ở bên dưới.",
                )),
            )
            .await
        }
        Err(e) if e.code() == Code::NotFound => no_such(&state, &who),
        Err(e) => state.store_unavailable(&who, "Tạm thời không đọc được dữ liệu", &e),
    }
}

#[derive(Debug, Deserialize)]
pub struct CancelForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// `POST /console/deliveries/{id}/cancel` with a reason.
pub async fn cancel<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    id: Result<Path<i64>, PathRejection>,
    axum::Form(form): axum::Form<CancelForm>,
) -> Response {
    if let Err(r) = state
        .require_form(
            &who,
            Action::CancelDelivery,
            "/console/deliveries/{id}/cancel",
            &form.csrf,
        )
        .await
    {
        return r;
    }
    let Ok(Path(id)) = id else {
        return no_such(&state, &who);
    };
    let reason = form.reason.trim();
    if reason.is_empty() {
        return show(
            &state,
            &who,
            id,
            StatusCode::BAD_REQUEST,
            Some((
                false,
                "Vui lòng ghi lý do hủy: lý do được lưu vào nhật ký kiểm toán.",
            )),
        )
        .await;
    }
    let actor = who.principal().actor();
    match state
        .node
        .store
        .cancel_delivery(id, reason, &actor, now_ms())
        .await
    {
        Ok(()) => {
            tracing::info!(delivery = id, actor = %actor, "console cancel");
            see_other(&format!("/console/deliveries/{id}?notice=cancelled"))
        }
        Err(e) if e.code() == Code::InvalidTransition => {
            show(
                &state,
                &who,
                id,
                StatusCode::CONFLICT,
                Some((
                    false,
                    "Không hủy được: chỉ hủy được lần chuyển đang chờ gửi, đang chờ gửi lại hoặc \
                     gửi không thành công. Trạng thái hiện tại ở bên dưới.",
                )),
            )
            .await
        }
        Err(e) if e.code() == Code::NotFound => no_such(&state, &who),
        Err(e) => state.store_unavailable(&who, "Tạm thời không đọc được dữ liệu", &e),
    }
}

/// `POST /console/deliveries/retry-selected`: *Gửi lại* of the rows ticked on the list (`id`
/// repeated, at most [`BULK_MAX`]); `back` is the list's filter, to return to it.
pub async fn retry_selected<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    body: Bytes,
) -> Response {
    let mut csrf = String::new();
    let mut back = String::new();
    let mut ids: Vec<i64> = Vec::new();
    let mut unreadable = false;
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "_csrf" => csrf = v.into_owned(),
            "back" => back = v.into_owned(),
            "id" => match v.parse::<i64>() {
                Ok(id) if !ids.contains(&id) => ids.push(id),
                Ok(_) => {}
                Err(_) => unreadable = true,
            },
            _ => {}
        }
    }
    if let Err(r) = state
        .require_form(
            &who,
            Action::RetryDelivery,
            "/console/deliveries/retry-selected",
            &csrf,
        )
        .await
    {
        return r;
    }
    if unreadable || ids.is_empty() || ids.len() > BULK_MAX {
        let text = if ids.len() > BULK_MAX {
            format!(
                "Mỗi lần chỉ gửi lại được tối đa {BULK_MAX} lần chuyển (đã chọn {}); vui lòng chọn ít hơn.",
                ids.len()
            )
        } else {
            "Chưa chọn lần chuyển nào để gửi lại.".to_owned()
        };
        return state.error_page(
            Some(&who),
            StatusCode::BAD_REQUEST,
            "Không gửi lại được",
            &text,
        );
    }
    let actor = who.principal().actor();
    let now = now_ms();
    let (mut done, mut refused) = (0u32, 0u32);
    for id in &ids {
        match state.node.store.operator_retry(*id, &actor, now).await {
            Ok(()) => done += 1,
            Err(e) if matches!(e.code(), Code::InvalidTransition | Code::NotFound) => refused += 1,
            Err(e) => return state.store_unavailable(&who, "Tạm thời không đọc được dữ liệu", &e),
        }
    }
    if done > 0 {
        state.node.outbox_wake.notify_one();
    }
    tracing::info!(actor = %actor, done, refused, "console bulk retry");
    // `back` is re-serialised from its pairs, so only the list's own parameters go back.
    let back: ListQuery = serde_urlencoded_pairs(&back);
    let qs = back.query_string();
    see_other(&format!(
        "/console/deliveries?{qs}{}done={done}&refused={refused}",
        if qs.is_empty() { "" } else { "&" }
    ))
}

/// The list's filter fields out of a query string (unknown keys dropped).
fn serde_urlencoded_pairs(qs: &str) -> ListQuery {
    let mut q = ListQuery::default();
    for (k, v) in form_urlencoded::parse(qs.as_bytes()) {
        let v = v.into_owned();
        match k.as_ref() {
            "state" => q.state = v,
            "route" => q.route = v,
            "recipient" => q.recipient = v,
            "sender" => q.sender = v,
            "from" => q.from = v,
            "to" => q.to = v,
            "error" => q.error = v,
            _ => {}
        }
    }
    q
}

/// The columns of an export (CSV and XLSX), in order: [`export_row`] gives a row's cells.
const EXPORT_COLUMNS: [&str; 12] = [
    "Số",
    "Cơ quan gửi",
    "Mã văn bản",
    "Cơ quan nhận",
    "Tuyến gửi",
    "Trạng thái",
    "Số lần gửi",
    "Mã lỗi",
    "Nội dung lỗi",
    "Tạo lúc",
    "Cập nhật lúc",
    "Đến nơi nhận lúc",
];

/// Column widths of the XLSX export, in characters, as [`EXPORT_COLUMNS`].
const XLSX_WIDTHS: [f64; 12] = [
    9.0, 16.0, 34.0, 16.0, 16.0, 22.0, 10.0, 22.0, 50.0, 17.0, 17.0, 17.0,
];

/// One cell of an exported row, typed: each writer says it its own way.
enum ExportCell<'a> {
    Number(i64),
    Text(&'a str),
    /// A store timestamp (Unix ms), or none.
    Time(Option<i64>),
}

/// The cells of one delivery, as [`EXPORT_COLUMNS`].
fn export_row(d: &DeliveryInfo) -> [ExportCell<'_>; 12] {
    let (code, message) = d
        .last_error
        .as_ref()
        .map_or(("", ""), |e| (e.code.as_str(), e.message.as_str()));
    [
        ExportCell::Number(d.id),
        ExportCell::Text(&d.sender),
        ExportCell::Text(&d.document_id),
        ExportCell::Text(&d.recipient),
        ExportCell::Text(&d.route),
        ExportCell::Text(state_label(d.state)),
        ExportCell::Number(i64::from(d.attempts)),
        ExportCell::Text(code),
        ExportCell::Text(message),
        ExportCell::Time(Some(d.created_at)),
        ExportCell::Time(Some(d.updated_at)),
        ExportCell::Time(d.delivered_at),
    ]
}

/// What an export says in its last line when it stopped at [`CSV_MAX`] rows.
fn truncated_line() -> String {
    format!(
        "Tệp chỉ có {} dòng đầu; vui lòng lọc hẹp hơn để tải phần còn lại.",
        format::number(CSV_MAX as u64)
    )
}

/// The deliveries an export holds — the list's filter, newest first, at most [`CSV_MAX`] —
/// and whether there were more; or the page to answer with instead (no right, a bad filter, the
/// store not answering). Shared by the CSV and the XLSX export.
async fn export_rows<S: Store>(
    state: &ConsoleState<S>,
    who: &Signed,
    query: Result<Query<ListQuery>, QueryRejection>,
    path: &str,
) -> Result<(Vec<DeliveryInfo>, bool), Response> {
    state.require(who, Action::ViewDeliveries, path).await?;
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let mut filter = q.filter(1000).map_err(|problem| {
        state.error_page(
            Some(who),
            StatusCode::BAD_REQUEST,
            "Bộ lọc không hợp lệ",
            &problem,
        )
    })?;
    let mut out: Vec<DeliveryInfo> = Vec::new();
    loop {
        let rows = state
            .node
            .deliveries(&filter)
            .await
            .map_err(|e| state.store_unavailable(who, "Tạm thời không đọc được dữ liệu", &e))?;
        let full = rows.len() as u32 >= filter.page.limit;
        let last = rows.last().map(|d| d.id);
        for d in rows {
            if out.len() == CSV_MAX {
                return Ok((out, true));
            }
            out.push(d);
        }
        match last {
            Some(id) if full => filter.page.before = Some(id),
            _ => return Ok((out, false)),
        }
    }
}

/// `GET /console/deliveries.csv`: the filtered list as CSV for Excel (UTF-8 with a BOM, so
/// Excel reads the diacritics; `,` separated; dates as on the page), at most [`CSV_MAX`] rows.
pub async fn csv<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let (rows, truncated) = match export_rows(&state, &who, query, "/console/deliveries.csv").await
    {
        Ok(r) => r,
        Err(page) => return page,
    };
    let mut out = String::from("\u{feff}");
    csv_line(&mut out, &EXPORT_COLUMNS);
    for d in &rows {
        let cells = export_row(d);
        let fields: Vec<String> = cells
            .iter()
            .map(|c| match c {
                ExportCell::Number(n) => n.to_string(),
                ExportCell::Text(t) => (*t).to_owned(),
                ExportCell::Time(t) => t.map(format::date_time).unwrap_or_default(),
            })
            .collect();
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        csv_line(&mut out, &fields);
    }
    if truncated {
        csv_line(&mut out, &[&truncated_line()]);
    }
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"nhat-ky-giao-nhan.csv\""),
            ),
        ],
        out,
    )
        .into_response()
}

/// The XLSX file's media type.
const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// `GET /console/deliveries.xlsx`: the same rows as the CSV ([`export_rows`]) as an Excel
/// workbook: a bold header row frozen at the top, column widths, numbers as numbers, and times
/// as real Excel date-times in Vietnam's time (`dd/mm/yyyy hh:mm`) — so Excel sorts and filters
/// them by date whatever the computer's regional settings, which it cannot do with text. The
/// file holds no time zone; UTC+7 is what the page shows.
pub async fn xlsx<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let (rows, truncated) = match export_rows(&state, &who, query, "/console/deliveries.xlsx").await
    {
        Ok(r) => r,
        Err(page) => return page,
    };
    // Building ~10 000 rows and compressing them is CPU work: off the async threads.
    let built = tokio::task::spawn_blocking(move || write_xlsx(&rows, truncated)).await;
    match built {
        Ok(Ok(bytes)) => (
            [
                (CONTENT_TYPE, HeaderValue::from_static(XLSX_TYPE)),
                (
                    CONTENT_DISPOSITION,
                    HeaderValue::from_static("attachment; filename=\"nhat-ky-giao-nhan.xlsx\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "could not write the deliveries' XLSX export");
            xlsx_failed(&state, &who)
        }
        Err(e) => {
            tracing::error!(error = %e, "the deliveries' XLSX export stopped");
            xlsx_failed(&state, &who)
        }
    }
}

fn xlsx_failed<S: Store>(state: &ConsoleState<S>, who: &Signed) -> Response {
    state.error_page(
        Some(who),
        StatusCode::INTERNAL_SERVER_ERROR,
        "Không tạo được tệp Excel",
        "Hệ thống không tạo được tệp Excel; vui lòng thử lại hoặc tải về tệp CSV.",
    )
}

/// The XLSX workbook of an export: one sheet, "Nhật ký giao nhận".
fn write_xlsx(
    rows: &[DeliveryInfo],
    truncated: bool,
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let header = Format::new().set_bold();
    let when = Format::new().set_num_format("dd/mm/yyyy hh:mm");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Nhật ký giao nhận")?;
    for (col, (title, width)) in (0u16..).zip(EXPORT_COLUMNS.iter().zip(XLSX_WIDTHS)) {
        sheet.write_string_with_format(0, col, *title, &header)?;
        sheet.set_column_width(col, width)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    let mut row = 0u32;
    for d in rows {
        row += 1;
        for (col, cell) in (0u16..).zip(export_row(d)) {
            match cell {
                // Ids and attempt counts are far below 2^53: exact as Excel's numbers.
                ExportCell::Number(n) => {
                    sheet.write_number(row, col, n as f64)?;
                }
                // A string cell: Excel never reads it as a formula, whatever it begins with.
                ExportCell::Text(t) => {
                    sheet.write_string(row, col, t)?;
                }
                ExportCell::Time(Some(ms)) => {
                    let vietnam = ms.div_euclid(1000) + i64::from(format::VIETNAM.whole_seconds());
                    match ExcelDateTime::from_timestamp(vietnam) {
                        Ok(t) => {
                            sheet.write_datetime_with_format(row, col, t, &when)?;
                        }
                        Err(_) => {
                            sheet.write_string(row, col, format::date_time(ms))?;
                        }
                    }
                }
                ExportCell::Time(None) => {}
            }
        }
    }
    if truncated {
        sheet.write_string(row + 1, 0, truncated_line())?;
    }
    book.save_to_buffer()
}

/// One CSV line (RFC 4180 quoting). A field that a spreadsheet would take for a formula
/// (`=`, `+`, `-`, `@`, a tab first — or `'`, so the rule reads back) is prefixed with `'`: an error message from a peer must not run
/// in the administrator's Excel.
pub fn csv_line(out: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let guarded;
        let f = if f.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) {
            guarded = format!("'{f}");
            guarded.as_str()
        } else {
            f
        };
        if f.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(f);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let mut s = String::new();
        csv_line(&mut s, &["a,b", "say \"hi\"", "=1+1", "Gửi lại"]);
        assert_eq!(s, "\"a,b\",\"say \"\"hi\"\"\",'=1+1,Gửi lại\r\n");
    }

    #[test]
    fn state_groups_match_the_overview() {
        use DeliveryState as D;
        assert_eq!(
            states_of("pending"),
            Some(vec![D::Queued, D::Sending, D::Retrying])
        );
        assert_eq!(states_of("failed"), Some(vec![D::Failed, D::Retrying]));
        assert_eq!(states_of("stopped"), Some(vec![D::Failed]));
        assert_eq!(states_of("delivered"), Some(vec![D::Delivered]));
        assert_eq!(states_of("nonsense"), None);
    }

    #[test]
    fn a_bad_date_is_said_in_vietnamese() {
        let q = ListQuery {
            from: "31/02/2026".into(),
            ..ListQuery::default()
        };
        let e = q.filter(50).unwrap_err();
        assert!(e.contains("ngày/tháng/năm"), "{e}");
        let q = ListQuery {
            from: "07/12/2026".into(),
            to: "07/12/2026".into(),
            ..ListQuery::default()
        };
        let f = q.filter(50).unwrap();
        assert_eq!(f.until.unwrap() - f.since.unwrap(), 86_400_000);
    }
}
