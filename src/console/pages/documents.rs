//! Văn bản liên thông: a clerk's received (*Văn bản đến*) and sent (*Văn bản đi*) documents,
//! with filters and a search that ignores case and Vietnamese diacritics; *Chi tiết văn bản*
//! (metadata, files with a PDF preview, the signature panel, the status timeline, every delivery
//! with its attempts); the answers on a received document — *Tiếp nhận* (03), *Trả lại* (02,
//! with a reason), *Hoàn thành* (06), *Đồng ý* (15) / *Từ chối* (16) to a revocation, an update
//! or a replacement — and *Thu hồi* of a sent one, through the node's own operations (those the
//! clerk API calls). *Gửi văn bản*, *Cập nhật* and *Thay thế* are in `documents_send`.
//!
//! Everything is scoped to the clerk's agency
//! ([`Principal::agency`](crate::console::access::Principal::agency)): another agency's
//! document is answered 404, as if it did not exist, so that its existence is not revealed.
//! What a page shows comes from the read layer (`node::read`), the same queries the clerk API
//! answers from.

use axum::Form;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::console::access::Action;
use crate::console::view::format;
use crate::console::view::layout::{Section, notice};
use crate::console::{ConsoleState, Signed, see_other};
use crate::edxml::OrganId;
use crate::edxml::StatusCode as Status;
use crate::error::Code;
use crate::node::read::{
    DocumentQuery, HeaderSummary, IncomingDetail, OutgoingDetail, RecipientState,
};
use crate::store::{
    AttemptOutcome, DeliveryState, MessageInfo, RevocationEvidence, StatusRecord, Store,
};

/// Rows on a page of a list.
const PER_PAGE: u32 = 50;

/// The trạng thái filter's value for Chậm tiếp nhận (Tổng quan links to it).
pub const LATE: &str = "late";
/// What a clerk reads for it.
const LATE_VI: &str = "Chậm tiếp nhận";

/// The query of `GET /console/documents`: every field as typed (empty = not filtered). Unknown
/// fields are ignored, so an old bookmark still opens.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    /// `den` (received, the default) or `di` (sent).
    #[serde(default)]
    tab: String,
    /// Số/ký hiệu.
    #[serde(default)]
    so: String,
    /// Trích yếu.
    #[serde(default)]
    q: String,
    /// From this day (dd/mm/yyyy), Vietnam time.
    #[serde(default)]
    tu: String,
    /// To this day, included.
    #[serde(default)]
    den: String,
    /// Độ khẩn (0–4).
    #[serde(default)]
    khan: String,
    /// Loại nghiệp vụ (0–3).
    #[serde(default)]
    loai: String,
    /// Trạng thái ([`RecipientState::as_str`]), or [`LATE`].
    #[serde(default)]
    tt: String,
    /// Cơ quan gửi (đến) / nhận (đi): a code or a part of a name.
    #[serde(default)]
    cq: String,
    /// The keyset cursor.
    #[serde(default)]
    before: Option<i64>,
}

impl ListParams {
    fn outgoing(&self) -> bool {
        self.tab == "di"
    }

    /// The read layer's query, or what the clerk must correct (in Vietnamese).
    /// `now` (Unix ms) is when Chậm tiếp nhận is judged.
    fn query(&self, now: i64) -> Result<DocumentQuery, Vec<String>> {
        let mut problems = Vec::new();
        let mut day = |s: &str, what: &str| -> Option<i64> {
            if s.trim().is_empty() {
                return None;
            }
            let d = format::parse_date(s);
            if d.is_none() {
                problems.push(format!(
                    "{what} “{s}” không phải là một ngày hợp lệ; vui lòng nhập theo dạng ngày/tháng/năm, ví dụ 07/12/2026."
                ));
            }
            d
        };
        let since = day(&self.tu, "Từ ngày");
        // To a day, included: before the next day's start.
        let until = day(&self.den, "Đến ngày").map(|d| d + 86_400_000);
        let small = |s: &str, max: u8| s.trim().parse::<u8>().ok().filter(|n| *n <= max);
        let priority = small(&self.khan, 4);
        let business_type = small(&self.loai, 3);
        // `late` (Chậm tiếp nhận) is not a recipient's state but a filter beside them: still
        // Đã đến chờ tiếp nhận after the working day it arrived in (`node::read::late_before`).
        let (state, late_before) = match self.tt.trim() {
            LATE => (None, Some(crate::node::read::late_before(now))),
            tt => (RecipientState::parse(tt), None),
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(DocumentQuery {
            since,
            until,
            code: self.so.clone(),
            subject: self.q.clone(),
            priority,
            business_type,
            state,
            late_before,
            agency: self.cq.clone(),
            before: self.before,
            limit: PER_PAGE,
        })
    }

    /// This list's address with `before` set (the next page).
    fn with_before(&self, before: i64) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("tab", if self.outgoing() { "di" } else { "den" }),
            ("so", &self.so),
            ("q", &self.q),
            ("tu", &self.tu),
            ("den", &self.den),
            ("khan", &self.khan),
            ("loai", &self.loai),
            ("tt", &self.tt),
            ("cq", &self.cq),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        s.append_pair("before", &before.to_string());
        format!("/console/documents?{}", s.finish())
    }
}

/// Độ khẩn in words.
fn priority_vi(p: u8) -> &'static str {
    match p {
        1 => "Khẩn",
        2 => "Thượng khẩn",
        3 => "Hỏa tốc",
        4 => "Hỏa tốc hẹn giờ",
        _ => "Thường",
    }
}

/// Loại nghiệp vụ in words.
fn business_vi(t: u8) -> &'static str {
    match t {
        1 => "Thu hồi",
        2 => "Cập nhật",
        3 => "Thay thế",
        _ => "Văn bản mới",
    }
}

fn code_of(m: &MessageInfo) -> String {
    match (m.code_number.as_deref(), m.code_notation.as_deref()) {
        (Some(n), Some(k)) if !n.is_empty() => format!("{n}/{k}"),
        (_, Some(k)) => k.to_owned(),
        (Some(n), None) => n.to_owned(),
        (None, None) => String::new(),
    }
}

/// The page for a person whose account names no agency (an administrator, the auditor): the
/// documents are an agency's, and this page says so (200: their role may open it; it holds
/// nothing of any agency).
pub(super) fn no_agency<S: Store>(state: &ConsoleState<S>, who: &Signed) -> Response {
    state.page(
        who,
        "Văn bản liên thông",
        Section::Documents,
        html! {
            p {
                "Văn bản liên thông được xem theo từng cơ quan: tài khoản của bạn không gắn với \
                 cơ quan nào. Văn thư của cơ quan đăng nhập bằng tài khoản của mình để xem và xử \
                 lý văn bản."
            }
            @if who.principal().may(Action::ViewDeliveries) {
                p { "Tình trạng giao nhận của mọi văn bản trên hệ thống: " a href="/console/deliveries" { "Nhật ký giao nhận" } "." }
            }
        },
    )
}

pub(super) fn not_found<S: Store>(state: &ConsoleState<S>, who: &Signed) -> Response {
    state.error_page(
        Some(who),
        StatusCode::NOT_FOUND,
        "Không tìm thấy văn bản",
        "Cơ quan của bạn không có văn bản này (đã gửi hoặc đã nhận); vui lòng kiểm tra lại \
         đường dẫn, hoặc tìm văn bản trong danh sách Văn bản liên thông.",
    )
}

// --- the lists ---------------------------------------------------------------------------------

/// `GET /console/documents?tab=den|di&…`.
pub async fn list<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let p = params.map(|Query(p)| p).unwrap_or_default();
    if let Err(r) = state
        .require(&who, Action::ViewDocuments, "/console/documents")
        .await
    {
        return r;
    }
    let Some(agency) = who
        .principal()
        .agency
        .as_ref()
        .map(|a| a.as_str().to_owned())
    else {
        return no_agency(&state, &who);
    };
    let (rows, next, problems) = match p.query(crate::node::service::now_ms()) {
        Err(problems) => (html! {}, None, problems),
        Ok(q) if p.outgoing() => match state.node.outgoing_documents(&agency, &q).await {
            Ok(found) => (outgoing_rows(&found.rows), found.next_before, Vec::new()),
            Err(e) => return state.store_unavailable(&who, "Tạm thời không đọc được văn bản", &e),
        },
        Ok(q) => match state.node.incoming_documents(&agency, &q).await {
            Ok(found) => (incoming_rows(&found.rows), found.next_before, Vec::new()),
            Err(e) => return state.store_unavailable(&who, "Tạm thời không đọc được văn bản", &e),
        },
    };
    let body = html! {
        @if who.principal().may(Action::SendDocument) {
            p { a class="button primary" href="/console/documents/new" { "Gửi văn bản" } }
        }
        nav class="tabs" aria-label="Loại văn bản" {
            ul {
                li { a href="/console/documents?tab=den" aria-current=[(!p.outgoing()).then_some("page")] { "Văn bản đến" } }
                li { a href="/console/documents?tab=di" aria-current=[p.outgoing().then_some("page")] { "Văn bản đi" } }
            }
        }
        (filters(&p))
        @for problem in &problems { (notice(false, problem)) }
        (rows)
        @if let Some(before) = next {
            p class="pager" { a href=(p.with_before(before)) { "Trang sau" } }
        }
    };
    state.page(&who, "Văn bản liên thông", Section::Documents, body)
}

fn filters(p: &ListParams) -> Markup {
    let (who_label, who_hint) = if p.outgoing() {
        ("Cơ quan nhận", "mã hoặc tên cơ quan")
    } else {
        ("Cơ quan gửi", "mã hoặc tên cơ quan")
    };
    html! {
        form method="get" action="/console/documents" class="filters" role="search" aria-label="Lọc văn bản" {
            input type="hidden" name="tab" value=(if p.outgoing() { "di" } else { "den" });
            div class="field" { label for="f-so" { "Số/ký hiệu" } input id="f-so" name="so" value=(p.so); }
            div class="field" { label for="f-q" { "Trích yếu" } input id="f-q" name="q" value=(p.q); }
            div class="field" { label for="f-cq" { (who_label) } input id="f-cq" name="cq" value=(p.cq) placeholder=(who_hint); }
            div class="field" { label for="f-tu" { "Từ ngày" } input id="f-tu" name="tu" value=(p.tu) placeholder="dd/mm/yyyy" inputmode="numeric"; }
            div class="field" { label for="f-den" { "Đến ngày" } input id="f-den" name="den" value=(p.den) placeholder="dd/mm/yyyy" inputmode="numeric"; }
            div class="field" {
                label for="f-khan" { "Độ khẩn" }
                select id="f-khan" name="khan" {
                    option value="" { "Tất cả" }
                    @for n in 0u8..=4 {
                        option value=(n) selected[p.khan == n.to_string()] { (priority_vi(n)) }
                    }
                }
            }
            div class="field" {
                label for="f-loai" { "Loại nghiệp vụ" }
                select id="f-loai" name="loai" {
                    option value="" { "Tất cả" }
                    @for n in 0u8..=3 {
                        option value=(n) selected[p.loai == n.to_string()] { (business_vi(n)) }
                    }
                }
            }
            div class="field" {
                label for="f-tt" { "Trạng thái" }
                select id="f-tt" name="tt" {
                    option value="" { "Tất cả" }
                    @for s in RecipientState::ALL {
                        option value=(s.as_str()) selected[p.tt == s.as_str()] { (s.label_vi()) }
                    }
                    option value=(LATE) selected[p.tt == LATE] { (LATE_VI) }
                }
            }
            div class="field" { button type="submit" class="primary" { "Tìm" } }
        }
    }
}

fn incoming_rows(rows: &[crate::node::read::IncomingRow]) -> Markup {
    html! {
        @if rows.is_empty() {
            p class="hint" { "Không có văn bản đến nào phù hợp." }
        } @else {
            div class="table-wrap" {
                table {
                    caption class="visually-hidden" { "Văn bản đến" }
                    thead { tr {
                        th scope="col" { "Số/ký hiệu" }
                        th scope="col" { "Trích yếu" }
                        th scope="col" { "Cơ quan gửi" }
                        th scope="col" { "Ngày đến" }
                        th scope="col" { "Độ khẩn" }
                        th scope="col" { "Trạng thái" }
                    } }
                    tbody {
                        @for r in rows {
                            tr {
                                td { (code_of(&r.item.message)) }
                                td {
                                    a href={ "/console/documents/" (r.item.message.id) } {
                                        (r.item.message.subject.as_deref().unwrap_or("(không có trích yếu)"))
                                    }
                                    @if r.item.message.business_type.unwrap_or(0) != 0 {
                                        " " span class="tag" { (business_vi(r.item.message.business_type.unwrap_or(0))) }
                                    }
                                }
                                td { (r.header.sender_name) br; span class="hint" { (r.item.message.sender) } }
                                td { (format::date_time(r.item.received_at)) }
                                td { (priority_vi(r.header.priority)) }
                                td class="label-state" { (r.state.label_vi()) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn outgoing_rows(rows: &[crate::node::read::OutgoingRow]) -> Markup {
    html! {
        @if rows.is_empty() {
            p class="hint" { "Không có văn bản đi nào phù hợp." }
        } @else {
            div class="table-wrap" {
                table {
                    caption class="visually-hidden" { "Văn bản đi" }
                    thead { tr {
                        th scope="col" { "Số/ký hiệu" }
                        th scope="col" { "Trích yếu" }
                        th scope="col" { "Ngày gửi" }
                        th scope="col" { "Độ khẩn" }
                        th scope="col" { "Nơi nhận và trạng thái" }
                    } }
                    tbody {
                        @for r in rows {
                            tr {
                                td { (code_of(&r.item.message)) }
                                td {
                                    a href={ "/console/documents/" (r.item.message.id) } {
                                        (r.item.message.subject.as_deref().unwrap_or("(không có trích yếu)"))
                                    }
                                    @if r.item.message.business_type.unwrap_or(0) != 0 {
                                        " " span class="tag" { (business_vi(r.item.message.business_type.unwrap_or(0))) }
                                    }
                                }
                                td { (format::date_time(r.item.message.created_at)) }
                                td { (priority_vi(r.header.priority)) }
                                td {
                                    @if r.item.deliveries.len() <= LIST_RECIPIENTS {
                                        ul class="plain" {
                                            @for (d, s) in r.item.deliveries.iter().zip(&r.states) {
                                                li { (recipient_name(&r.header, &d.recipient)) ": " span class="label-state" { (s.label_vi()) } }
                                            }
                                        }
                                    } @else {
                                        // A document sent to a whole province: how many are in
                                        // each state; who is where is on its page.
                                        (format::number(r.item.deliveries.len() as u64)) " nơi nhận:"
                                        ul class="plain" {
                                            @for (s, n) in state_counts(&r.states) {
                                                li { span class="label-state" { (s.label_vi()) } ": " (format::number(n)) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Recipients a row of Văn bản đi names one by one; past that it counts them by state.
const LIST_RECIPIENTS: usize = 5;

/// How many recipients are in each state, in the states' order.
fn state_counts(states: &[RecipientState]) -> Vec<(RecipientState, u64)> {
    RecipientState::ALL
        .into_iter()
        .map(|s| (s, states.iter().filter(|x| **x == s).count() as u64))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// A recipient's name as the header gives it, with its code.
fn recipient_name(h: &HeaderSummary, code: &str) -> String {
    match h.to.iter().find(|(c, _)| c == code) {
        Some((_, name)) if !name.is_empty() && name != code => format!("{name} ({code})"),
        _ => code.to_owned(),
    }
}

/// A package date (`2026/12/07` or `2026-12-07`) as officials write it: `07/12/2026`.
fn package_date(s: &str) -> String {
    let parts: Vec<&str> = s.split(['/', '-']).collect();
    match parts.as_slice() {
        [y, m, d] if y.len() == 4 => format!("{d}/{m}/{y}"),
        _ => s.to_owned(),
    }
}

// --- the detail --------------------------------------------------------------------------------

/// What `?ok=` after an action says.
#[derive(Debug, Default, Deserialize)]
pub struct ShowParams {
    #[serde(default)]
    ok: String,
}

fn path_id(id: Result<Path<i64>, PathRejection>) -> Option<i64> {
    id.ok().map(|Path(id)| id)
}

/// `GET /console/documents/{id}`.
pub async fn show<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    id: Result<Path<i64>, PathRejection>,
    params: Result<Query<ShowParams>, QueryRejection>,
) -> Response {
    let ok = params.map(|Query(p)| p.ok).unwrap_or_default();
    let said = match ok.as_str() {
        "03" => Some("Đã tiếp nhận văn bản; trạng thái 03 đã được gửi cho cơ quan gửi."),
        "02" => Some("Đã trả lại văn bản; trạng thái 02 và lý do đã được gửi cho cơ quan gửi."),
        "06" => Some("Đã hoàn thành xử lý văn bản; trạng thái 06 đã được gửi cho cơ quan gửi."),
        "15" => Some("Đã đồng ý; trạng thái 15 đã được gửi cho cơ quan gửi."),
        "16" => Some("Đã từ chối; trạng thái 16 và lý do đã được gửi cho cơ quan gửi."),
        "update" => Some(
            "Đã gửi bản cập nhật đến các nơi nhận; nơi nhận trả lời đồng ý (15) hoặc từ chối (16).",
        ),
        "revoke" => Some(
            "Đã gửi đề nghị thu hồi đến các nơi nhận; khi nơi nhận đồng ý (15), trạng thái chuyển thành Đã thu hồi.",
        ),
        "sent" => {
            Some("Đã ký số và đưa văn bản vào hàng gửi; trạng thái của từng nơi nhận ở bảng dưới.")
        }
        _ => None,
    };
    detail_page(
        &state,
        &who,
        id,
        StatusCode::OK,
        said.map(|s| (true, s.to_owned())),
    )
    .await
}

/// Chi tiết văn bản `id` with `said` above it (after an action of another module).
pub(super) async fn detail<S: Store>(
    state: &ConsoleState<S>,
    who: &Signed,
    id: i64,
    status: StatusCode,
    said: Option<(bool, String)>,
) -> Response {
    detail_page(state, who, Ok(Path(id)), status, said).await
}

async fn detail_page<S: Store>(
    state: &ConsoleState<S>,
    who: &Signed,
    id: Result<Path<i64>, PathRejection>,
    status: StatusCode,
    said: Option<(bool, String)>,
) -> Response {
    let path = "/console/documents/{id}";
    if let Err(r) = state.require(who, Action::ViewDocuments, path).await {
        return r;
    }
    let Some(agency) = who
        .principal()
        .agency
        .as_ref()
        .map(|a| a.as_str().to_owned())
    else {
        return no_agency(state, who);
    };
    let Some(id) = path_id(id) else {
        return not_found(state, who);
    };
    let said = said.map(|(ok, s)| notice(ok, &s));
    match state.node.incoming_document(&agency, id).await {
        Ok(d) => {
            let body = html! { @if let Some(n) = said { (n) } (incoming_body(who, &d)) };
            return with_status(
                status,
                state.page(who, &title(&d.item.message), Section::Documents, body),
            );
        }
        Err(e) if crate::node::read::is_not_found(&e) => {}
        Err(e) => return state.store_unavailable(who, "Tạm thời không đọc được văn bản", &e),
    }
    match state.node.outgoing_document(&agency, id).await {
        Ok(d) => {
            let signer = state
                .node
                .certificates()
                .into_iter()
                .find(|c| c.role == "agency" && c.agency.as_deref() == Some(agency.as_str()));
            let body = html! { @if let Some(n) = said { (n) } (revoke_form(who, &d)) (outgoing_body(&d, signer.as_ref())) };
            with_status(
                status,
                state.page(who, &title(&d.item.message), Section::Documents, body),
            )
        }
        Err(e) if crate::node::read::is_not_found(&e) => not_found(state, who),
        Err(e) => state.store_unavailable(who, "Tạm thời không đọc được văn bản", &e),
    }
}

fn with_status(status: StatusCode, mut r: Response) -> Response {
    *r.status_mut() = status;
    r
}

fn title(m: &MessageInfo) -> String {
    let code = code_of(m);
    if code.is_empty() {
        "Chi tiết văn bản".to_owned()
    } else {
        format!("Chi tiết văn bản {code}")
    }
}

fn metadata(m: &MessageInfo, h: &HeaderSummary, received_at: Option<i64>) -> Markup {
    html! {
        section aria-labelledby="h-meta" class="panel" {
            h2 id="h-meta" { "Thông tin văn bản" }
            dl class="meta" {
                dt { "Số/ký hiệu" } dd { (code_of(m)) }
                dt { "Trích yếu" } dd { (m.subject.as_deref().unwrap_or("")) }
                dt { "Loại văn bản" } dd { (h.document_type) }
                dt { "Loại nghiệp vụ" } dd { (business_vi(m.business_type.unwrap_or(0))) }
                @if let Some(r) = &h.reason { dt { "Lý do" } dd { (r) } }
                dt { "Cơ quan ban hành" } dd { (h.sender_name) " (" (m.sender) ")" }
                dt { "Nơi ban hành, ngày ban hành" } dd {
                    @if !h.promulgation_place.is_empty() { (h.promulgation_place) ", " }
                    (package_date(&h.promulgation_date))
                }
                dt { "Người ký" } dd { (h.signer_position) " " (h.signer_name) }
                dt { "Độ khẩn" } dd { (priority_vi(h.priority)) }
                @if let Some(due) = &h.due_date { dt { "Hạn xử lý" } dd { (package_date(due)) } }
                dt { "Nơi nhận" } dd {
                    @for (i, (code, name)) in h.to.iter().enumerate() {
                        @if i > 0 { "; " }
                        @if name.is_empty() || name == code { (code) } @else { (name) " (" (code) ")" }
                    }
                }
                @if let Some(at) = received_at { dt { "Ngày đến" } dd { (format::date_time(at)) } }
                @else { dt { "Ngày gửi" } dd { (format::date_time(m.created_at)) } }
                dt { "Mã văn bản (DocumentId)" } dd { code { (m.document_id) } }
            }
        }
    }
}

fn files(m: &MessageInfo, h: &HeaderSummary) -> Markup {
    let pdf = h
        .attachments
        .iter()
        .position(|(_, ct, _)| ct.eq_ignore_ascii_case("application/pdf"));
    html! {
        section aria-labelledby="h-files" class="panel" {
            h2 id="h-files" { "Tệp đính kèm" }
            @if h.attachments.is_empty() {
                p class="hint" { "Văn bản không có tệp đính kèm." }
            } @else {
                ul class="plain" {
                    @for (i, (name, _, size)) in h.attachments.iter().enumerate() {
                        li {
                            a href={ "/console/documents/" (m.id) "/files/" (i + 1) } download { (name) }
                            " (" (format::number(*size)) " byte)"
                        }
                    }
                }
                @if let Some(i) = pdf {
                    iframe class="pdf" title={ "Xem trước tệp " (h.attachments[i].0) }
                        src={ "/console/documents/" (m.id) "/files/" (i + 1) "?xem=1" } {}
                }
            }
        }
    }
}

fn evidence_status_vi(s: &str) -> &'static str {
    match s {
        "good" => "Còn hiệu lực (chưa bị thu hồi)",
        "revoked" => "Đã bị thu hồi",
        _ => "Không xác định được",
    }
}

fn signature_incoming(m: &MessageInfo, evidence: &[RevocationEvidence]) -> Markup {
    let signer = m.signer_subject.as_deref().unwrap_or("");
    let verdict = match &m.channel {
        Some(c) => format!(
            "{} — nguồn gửi chỉ được xác thực qua kênh kết nối {}",
            match c.xml_signature {
                crate::store::UnverifiedSignature::Absent => "Không có chữ ký số",
                crate::store::UnverifiedSignature::Placeholder =>
                    "Chữ ký số giả định, không kiểm tra được",
            },
            c.channel
        ),
        None => "Chữ ký số hợp lệ: đã kiểm tra chữ ký và chuỗi chứng thư đến gốc tin cậy khi nhận."
            .to_owned(),
    };
    html! {
        section aria-labelledby="h-sig" class="panel" {
            h2 id="h-sig" { "Chữ ký số" }
            p class=(if m.channel.is_some() { "notice error" } else { "notice ok" }) { (verdict) }
            dl class="meta" {
                dt { "Người ký (chứng thư)" } dd { (signer) }
                @if let Some(f) = &m.signer_fingerprint { dt { "Dấu vân tay SHA-256" } dd { code class="wrap" { (f) } } }
            }
            @if evidence.is_empty() {
                p class="hint" { "Không lưu bằng chứng kiểm tra thu hồi chứng thư cho văn bản này (chính sách kiểm tra thu hồi đang tắt)." }
            } @else {
                h3 { "Chuỗi chứng thư và kiểm tra thu hồi" }
                div class="table-wrap" {
                    table {
                        thead { tr {
                            th scope="col" { "Chứng thư" }
                            th scope="col" { "Số hiệu" }
                            th scope="col" { "Tình trạng" }
                            th scope="col" { "Nguồn" }
                            th scope="col" { "Thời điểm kiểm tra" }
                        } }
                        tbody {
                            @for e in evidence {
                                tr {
                                    td { (e.subject) }
                                    td { code class="wrap" { (e.serial) } }
                                    td class="label-state" {
                                        (evidence_status_vi(&e.status))
                                        @if e.flagged { " — vẫn chấp nhận theo chính sách kiểm tra thu hồi của hệ thống" }
                                        @if let Some(n) = &e.note { br; span class="hint" { "Ghi chú kỹ thuật: " (n) } }
                                    }
                                    td {
                                        @if e.kind.is_none() && e.source.is_none() { "Không có nguồn kiểm tra" }
                                        (e.kind.as_deref().map(str::to_uppercase).unwrap_or_default())
                                        @if let Some(s) = &e.source { " " span class="wrap" { (s) } }
                                        @if let Some(t) = &e.this_update { br; span class="hint" { "Cập nhật: " (t) } }
                                        @if let Some(t) = &e.produced_at { br; span class="hint" { "Phát hành: " (t) } }
                                    }
                                    td { (format::date_time(e.checked_at)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn timeline(history: &[StatusRecord], name: &dyn Fn(&str) -> String) -> Markup {
    html! {
        @if history.is_empty() {
            p class="hint" { "Chưa có trạng thái nào." }
        } @else {
            ol class="timeline" {
                @for s in history {
                    li {
                        strong { (format!("{:02}", s.code)) " " (Status::from_number(s.code).map_or("Mã trạng thái khác", |c| c.meaning_vi())) }
                        " — " (name(&s.reporter)) ", " (format::date_time(s.reported_at))
                        @if !s.description.is_empty() { br; span { "Nội dung: " (s.description) } }
                    }
                }
            }
        }
    }
}

fn incoming_body(who: &Signed, d: &IncomingDetail) -> Markup {
    let m = &d.item.message;
    html! {
        p { "Trạng thái: " strong class="label-state" { (d.state.label_vi()) } }
        (actions(who, d))
        (metadata(m, &d.header, Some(d.item.received_at)))
        (files(m, &d.header))
        (signature_incoming(m, &d.revocation))
        section aria-labelledby="h-time" class="panel" {
            h2 id="h-time" { "Quá trình xử lý" }
            p { "Văn bản đến hệ thống lúc " (format::date_time(d.item.received_at)) "; báo nhận (01) đã được gửi tự động cho cơ quan gửi." }
            (timeline(&d.history, &|code: &str| {
                if code == d.item.recipient {
                    "Cơ quan của bạn".to_owned()
                } else if code == m.sender && !d.header.sender_name.is_empty() {
                    d.header.sender_name.clone()
                } else {
                    code.to_owned()
                }
            }))
        }
    }
}

/// The clerk's answers, as the document's state allows them (the node refuses the others
/// anyway, with its reason).
fn actions(who: &Signed, d: &IncomingDetail) -> Markup {
    if !who.principal().may(Action::ReportStatus) {
        return html! {};
    }
    let business = d.item.message.business_type.unwrap_or(0);
    let to = format!("/console/documents/{}/status", d.item.message.id);
    let csrf = &who.session.csrf;
    // Processing (03/02/06) is about a document: a new one or a replacement, not a revocation
    // or an update (edxml::processing).
    let (accept, ret, finish) = match (business, d.state) {
        (0 | 3, RecipientState::Arrived) => (true, true, false),
        (0 | 3, RecipientState::Registered | RecipientState::Processing) => (false, false, true),
        _ => (false, false, false),
    };
    // A revocation, an update or a replacement asks for an answer (15/16), once.
    let answered = d.history.iter().any(|s| {
        s.reporter == d.item.recipient
            && matches!(s.code, 15 | 16)
            && s.reported_at >= d.item.received_at - crate::edxml::processing::SKEW_MS
    });
    let take_back = (1..=3).contains(&business) && !answered && !d.item.revoked;
    let asked = match business {
        1 => "Cơ quan gửi đề nghị thu hồi văn bản",
        2 => "Cơ quan gửi đề nghị cập nhật văn bản",
        _ => "Văn bản này thay thế một văn bản đã gửi",
    };
    html! {
        @if take_back {
            section aria-labelledby="h-tb" class="panel actions" {
                h2 id="h-tb" { (asked) }
                @if let Some(r) = &d.header.reason { p { "Lý do: " (r) } }
                form method="post" action=(to) class="inline" {
                    input type="hidden" name="_csrf" value=(csrf);
                    input type="hidden" name="code" value="15";
                    button type="submit" class="primary" { "Đồng ý" }
                }
                form method="post" action=(to) class="return" {
                    input type="hidden" name="_csrf" value=(csrf);
                    input type="hidden" name="code" value="16";
                    div class="field" {
                        label for="f-refuse" { "Lý do từ chối (bắt buộc)" }
                        textarea id="f-refuse" name="reason" rows="2" required {}
                    }
                    button type="submit" class="danger" { "Từ chối" }
                }
            }
        }
        @if accept || ret || finish {
            section aria-labelledby="h-act" class="panel actions" {
                h2 id="h-act" { "Xử lý văn bản" }
                @if accept {
                    form method="post" action=(to) class="inline" {
                        input type="hidden" name="_csrf" value=(csrf);
                        input type="hidden" name="code" value="03";
                        button type="submit" class="primary" { "Tiếp nhận" }
                    }
                }
                @if finish {
                    form method="post" action=(to) class="inline" {
                        input type="hidden" name="_csrf" value=(csrf);
                        input type="hidden" name="code" value="06";
                        button type="submit" class="primary" { "Hoàn thành" }
                    }
                }
                @if ret {
                    form method="post" action=(to) class="return" data-confirm="Trả lại văn bản này cho cơ quan gửi?" {
                        input type="hidden" name="_csrf" value=(csrf);
                        input type="hidden" name="code" value="02";
                        div class="field" {
                            label for="f-reason" { "Lý do trả lại (bắt buộc)" }
                            textarea id="f-reason" name="reason" rows="3" required {}
                        }
                        button type="submit" class="danger" { "Trả lại" }
                    }
                }
            }
        }
    }
}

fn delivery_state_vi(s: DeliveryState) -> &'static str {
    match s {
        DeliveryState::Queued => "Chờ gửi",
        DeliveryState::Sending => "Đang gửi",
        DeliveryState::Delivered => "Đã chuyển đến",
        DeliveryState::Retrying => "Lỗi, chờ gửi lại",
        DeliveryState::Failed => "Gửi không được",
        DeliveryState::Rejected => "Bị từ chối",
        DeliveryState::Cancelled => "Đã hủy gửi",
    }
}

fn outcome_vi(o: Option<AttemptOutcome>) -> &'static str {
    match o {
        None => "Đang thực hiện",
        Some(AttemptOutcome::Delivered) => "Đã chuyển đến",
        Some(AttemptOutcome::Retry) => "Lỗi, sẽ gửi lại",
        Some(AttemptOutcome::Failed) => "Lỗi, không gửi lại",
        Some(AttemptOutcome::Expired) => "Quá hạn, đã nhận lại để gửi",
        Some(AttemptOutcome::Superseded) => "Bỏ qua (văn bản đã bị trả lại)",
    }
}

/// *Thu hồi* of a document the agency sent (a new document, not a follow-up): a reason, and a
/// one-time key so that a second click sends one revocation.
fn revoke_form(who: &Signed, d: &OutgoingDetail) -> Markup {
    if !who.principal().may(Action::SendDocument) || d.item.message.business_type.unwrap_or(0) != 0
    {
        return html! {};
    }
    html! {
        details class="panel actions" {
            summary { "Thu hồi văn bản" }
            form method="post" action={ "/console/documents/" (d.item.message.id) "/revoke" } class="return"
                data-confirm="Gửi đề nghị thu hồi văn bản này đến mọi nơi nhận?" {
                input type="hidden" name="_csrf" value=(who.session.csrf);
                input type="hidden" name="key" value=(crate::console::session::random_token());
                div class="field" {
                    label for="f-revoke" { "Lý do thu hồi (bắt buộc)" }
                    textarea id="f-revoke" name="reason" rows="2" required {}
                }
                button type="submit" class="danger" { "Gửi đề nghị thu hồi" }
            }
        }
        details class="panel actions" {
            summary { "Cập nhật văn bản" }
            form method="post" action={ "/console/documents/" (d.item.message.id) "/update" } enctype="multipart/form-data" class="return" {
                input type="hidden" name="_csrf" value=(who.session.csrf);
                input type="hidden" name="key" value=(crate::console::session::random_token());
                div class="field" {
                    label for="f-up-reason" { "Lý do cập nhật (bắt buộc)" }
                    textarea id="f-up-reason" name="reason" rows="2" required {}
                }
                div class="field" {
                    label for="f-up-subject" { "Trích yếu" }
                    textarea id="f-up-subject" name="subject" rows="2" { (d.item.message.subject.as_deref().unwrap_or("")) }
                }
                div class="field" {
                    label for="f-up-content" { "Nội dung tóm tắt mới (để trống nếu không đổi)" }
                    textarea id="f-up-content" name="content" rows="2" {}
                }
                div class="field" {
                    label for="f-up-file" { "Tệp thay cho mọi tệp đã gửi (không bắt buộc)" }
                    input id="f-up-file" type="file" name="file" accept="application/pdf";
                }
                button type="submit" { "Gửi bản cập nhật" }
            }
        }
        p {
            a class="button" href={ "/console/documents/new?thay_the=" (d.item.message.id) (d.item.deliveries.iter().map(|x| format!("&chon={}", x.recipient)).collect::<String>()) } {
                "Thay thế bằng văn bản khác"
            }
        }
    }
}

fn outgoing_body(d: &OutgoingDetail, signer: Option<&crate::node::expiry::CertExpiry>) -> Markup {
    let m = &d.item.message;
    html! {
        (metadata(m, &d.header, None))
        (files(m, &d.header))
        section aria-labelledby="h-sig" class="panel" {
            h2 id="h-sig" { "Chữ ký số" }
            p class="notice ok" { "Đã ký số bằng khóa của cơ quan trước khi gửi." }
            dl class="meta" {
                dt { "Người ký (chứng thư)" } dd { (m.signer_subject.as_deref().unwrap_or("")) }
                @if let Some(f) = &m.signer_fingerprint { dt { "Dấu vân tay SHA-256" } dd { code class="wrap" { (f) } } }
                @if let Some(c) = signer {
                    dt { "Hiệu lực chứng thư" }
                    dd {
                        "Đến " (format::date(c.not_after * 1000))
                        @if c.days_left < 0 { " — đã hết hạn" }
                        @else if c.warning { " — sắp hết hạn (còn " (c.days_left) " ngày)" }
                    }
                }
            }
        }
        section aria-labelledby="h-dl" class="panel" {
            h2 id="h-dl" { "Nơi nhận và giao nhận" }
            @for dd in &d.deliveries {
                article class="delivery" {
                    h3 { (recipient_name(&d.header, &dd.delivery.recipient)) ": " span class="label-state" { (dd.state.label_vi()) } }
                    p class="hint" {
                        "Đường gửi: " (dd.delivery.route) " · Tình trạng giao: " (delivery_state_vi(dd.delivery.state))
                        @if let Some(at) = dd.delivery.delivered_at { " · Đã đến lúc " (format::date_time(at)) }
                        @if let Some(at) = dd.delivery.next_attempt_at { @if dd.delivery.state.is_pending() { " · Lần gửi sau: " (format::date_time(at)) } }
                    }
                    @if dd.attempts.is_empty() {
                        p class="hint" { "Chưa có lần gửi nào." }
                    } @else {
                        div class="table-wrap" {
                            table {
                                thead { tr {
                                    th scope="col" { "Lần" }
                                    th scope="col" { "Bắt đầu" }
                                    th scope="col" { "Kết thúc" }
                                    th scope="col" { "Kết quả" }
                                    th scope="col" { "Lỗi" }
                                } }
                                tbody {
                                    @for a in &dd.attempts {
                                        tr {
                                            td { (a.number) }
                                            td { (format::date_time(a.started_at)) }
                                            td { (a.finished_at.map(format::date_time).unwrap_or_default()) }
                                            td { (outcome_vi(a.outcome)) }
                                            td {
                                                @if let Some(e) = &a.error { code { (e.code) } " " (e.message) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    h4 { "Trạng thái nơi nhận báo" }
                    (timeline(&dd.history, &|code: &str| recipient_name(&d.header, code)))
                }
            }
        }
    }
}

// --- files -------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct FileParams {
    /// `1`: show a PDF in the page (inline) instead of saving it.
    #[serde(default)]
    xem: String,
}

/// `GET /console/documents/{id}/files/{n}`: file `n` (from 1) of a document the agency received
/// or sent. Saved (`attachment`) whatever its type, except a PDF asked for with `?xem=1`, shown
/// inline for the preview frame of the same page — the only response the console lets a page of
/// its own origin frame.
pub async fn file<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    p: Result<Path<(i64, usize)>, PathRejection>,
    params: Result<Query<FileParams>, QueryRejection>,
) -> Response {
    if let Err(r) = state
        .require(
            &who,
            Action::ViewDocuments,
            "/console/documents/{id}/files/{n}",
        )
        .await
    {
        return r;
    }
    let Some(agency) = who
        .principal()
        .agency
        .as_ref()
        .map(|a| a.as_str().to_owned())
    else {
        return no_agency(&state, &who);
    };
    let Ok(Path((id, n))) = p else {
        return not_found(&state, &who);
    };
    let mut found = state.node.document_files(&agency, id, false).await;
    if matches!(&found, Err(e) if crate::node::read::is_not_found(e)) {
        found = state.node.document_files(&agency, id, true).await;
    }
    let files = match found {
        Ok(Some(files)) => files,
        Ok(None) => return not_found(&state, &who),
        Err(e) if crate::node::read::is_not_found(&e) => return not_found(&state, &who),
        Err(e) => return state.store_unavailable(&who, "Tạm thời không đọc được văn bản", &e),
    };
    let Some(a) = n.checked_sub(1).and_then(|i| files.into_iter().nth(i)) else {
        return not_found(&state, &who);
    };
    let inline = params.is_ok_and(|Query(p)| p.xem == "1")
        && a.content_type.eq_ignore_ascii_case("application/pdf");
    let name = crate::edxml::file_name::safe_file_name(&a.name);
    let mut disposition = crate::http::clerk::disposition(&name);
    if inline {
        let v = disposition
            .to_str()
            .unwrap_or("attachment")
            .replacen("attachment", "inline", 1);
        disposition =
            HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("inline"));
    }
    let ct = if inline {
        HeaderValue::from_static("application/pdf")
    } else {
        HeaderValue::from_str(&a.content_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
    };
    let mut res = (
        [(CONTENT_TYPE, ct), (CONTENT_DISPOSITION, disposition)],
        a.data,
    )
        .into_response();
    if inline {
        // Framed by the detail page of this origin (and nothing else); runs nothing.
        let h = res.headers_mut();
        h.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'self'"),
        );
        h.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    }
    res
}

// --- the clerk's answers -----------------------------------------------------------------------

/// The form of `POST /console/documents/{id}/status`.
#[derive(Debug, Default, Deserialize)]
pub struct ReportForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    /// `03` Tiếp nhận, `02` Trả lại, `06` Hoàn thành; `15` Đồng ý, `16` Từ chối (a revocation,
    /// an update or a replacement).
    #[serde(default)]
    code: String,
    /// Lý do (required for 02).
    #[serde(default)]
    reason: String,
}

/// What every form on a document starts with: the role and CSRF check (a refusal audited under
/// the form's path, `/console/documents/{id}/{verb}`), then the clerk's agency and the
/// document's id (`Err`: the page that answers instead).
async fn document_form<S: Store>(
    state: &ConsoleState<S>,
    who: &Signed,
    id: &Result<Path<i64>, PathRejection>,
    verb: &str,
    action: Action,
    csrf: &str,
) -> Result<(OrganId, i64), Response> {
    let path = match id {
        Ok(Path(id)) => format!("/console/documents/{id}/{verb}"),
        Err(_) => format!("/console/documents/{{id}}/{verb}"),
    };
    state.require_form(who, action, &path, csrf).await?;
    let agency = who
        .principal()
        .agency
        .clone()
        .ok_or_else(|| no_agency(state, who))?;
    let message_id = id
        .as_ref()
        .ok()
        .map(|Path(id)| *id)
        .ok_or_else(|| not_found(state, who))?;
    Ok((agency, message_id))
}

/// `POST /console/documents/{id}/status`: the node's status operation (the one
/// `POST /api/v1/inbox/{id}/status` calls), for the clerk's agency. A refusal of the node (the
/// processing order, a missing reason) is shown on the document's page in its Vietnamese words.
pub async fn report<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    id: Result<Path<i64>, PathRejection>,
    form: Result<Form<ReportForm>, FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let (agency, message_id) = match document_form(
        &state,
        &who,
        &id,
        "status",
        Action::ReportStatus,
        &form.csrf,
    )
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let code = match form.code.trim() {
        "03" => Status::Registered,
        "02" => Status::Rejected,
        "06" => Status::Finished,
        "15" => Status::TakeBackAgreed,
        "16" => Status::TakeBackRefused,
        _ => {
            return detail_page(
                &state,
                &who,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some((
                    false,
                    "Thao tác không hợp lệ: chỉ có Tiếp nhận, Trả lại, Hoàn thành, Đồng ý và Từ chối."
                        .to_owned(),
                )),
            )
            .await;
        }
    };
    let actor = who.principal().actor();
    match state
        .node
        .report_status(&agency, &actor, message_id, code, form.reason.trim())
        .await
    {
        Ok(_) => {
            tracing::info!(agency = %agency, message_id, status = %code.as_wire(), "status reported from the console");
            see_other(&format!(
                "/console/documents/{message_id}?ok={}",
                code.as_wire()
            ))
        }
        Err(e) if e.code() == Code::NotFound => not_found(&state, &who),
        Err(e) => {
            let status = crate::http::error::http_status(e.code());
            if status.is_server_error() {
                return state.store_unavailable(&who, "Tạm thời không đọc được văn bản", &e);
            }
            let said = format!("Không thực hiện được: {}", e.message_vi());
            detail_page(&state, &who, id, status, Some((false, said))).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_vietnam_days_and_the_last_one_is_included() {
        // 2026-12-06T17:00:00Z is 07/12/2026 00:00 in Vietnam.
        let midnight = 1_796_576_400_000;
        let p = ListParams {
            tu: "07/12/2026".into(),
            den: "06/12/2026".into(),
            ..Default::default()
        };
        let q = p.query(midnight).expect("valid");
        assert_eq!(q.since, Some(midnight));
        assert_eq!(
            q.until,
            Some(midnight),
            "to the 6th included = before the 7th"
        );
        let bad = ListParams {
            tu: "31/02/2026".into(),
            ..Default::default()
        };
        assert_eq!(bad.query(midnight).map(|_| ()).unwrap_err().len(), 1);
    }

    #[test]
    fn late_is_a_filter_beside_the_states_judged_at_the_time_given() {
        // Wednesday 09/12/2026 10:00 in Vietnam: late is what arrived before that day began.
        let wednesday = 1_796_576_400_000 + 2 * 86_400_000 + 10 * 3_600_000;
        let p = ListParams {
            tt: LATE.into(),
            ..Default::default()
        };
        let q = p.query(wednesday).expect("valid");
        assert_eq!(q.state, None);
        assert_eq!(
            q.late_before,
            Some(1_796_576_400_000 + 2 * 86_400_000),
            "Wednesday 00:00 in Vietnam"
        );
        let arrived = ListParams {
            tt: "arrived".into(),
            ..Default::default()
        };
        let q = arrived.query(wednesday).expect("valid");
        assert_eq!(
            (q.state, q.late_before),
            (Some(RecipientState::Arrived), None)
        );
    }

    #[test]
    fn the_next_page_keeps_the_filters() {
        let p = ListParams {
            tab: "di".into(),
            q: "Gia Lái".into(),
            ..Default::default()
        };
        assert_eq!(
            p.with_before(42),
            "/console/documents?tab=di&q=Gia+L%C3%A1i&before=42"
        );
    }
}

/// The form of `POST /console/documents/{id}/revoke`.
#[derive(Debug, Default, Deserialize)]
pub struct RevokeForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    reason: String,
}

/// `POST /console/documents/{id}/revoke`: the node's revocation (the one
/// `POST /api/v1/documents/{id}/revoke` calls), signed and sent to the same recipients; a
/// refusal (no reason, revoked already) is shown on the document's page.
pub async fn revoke<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    id: Result<Path<i64>, PathRejection>,
    form: Result<Form<RevokeForm>, FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let (agency, message_id) = match document_form(
        &state,
        &who,
        &id,
        "revoke",
        Action::SendDocument,
        &form.csrf,
    )
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let key = (!form.key.is_empty()).then(|| format!("console:{}", form.key));
    let actor = who.principal().actor();
    match state
        .node
        .revoke_with_key(&agency, &actor, message_id, form.reason.trim(), key)
        .await
    {
        Ok(out) => {
            tracing::info!(agency = %agency, message_id, revocation = out.message_id, "revocation sent from the console");
            see_other(&format!("/console/documents/{message_id}?ok=revoke"))
        }
        Err(e) if e.code() == Code::NotFound => not_found(&state, &who),
        Err(e) => {
            let status = crate::http::error::http_status(e.code());
            if status.is_server_error() {
                return state.store_unavailable(&who, "Tạm thời không đọc được văn bản", &e);
            }
            let said = format!("Không thực hiện được: {}", e.message_vi());
            detail_page(&state, &who, id, status, Some((false, said))).await
        }
    }
}
