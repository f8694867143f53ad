//! Nhật ký kiểm toán: the audit chain, newest first, paged by seq (keyset), filtered by time,
//! actor and action; *Kiểm tra chuỗi* verifies the whole chain and shows its head — the seq and
//! hash an administrator writes down elsewhere, so that a later rewrite of the whole chain (which
//! verifies on its own) is still caught; the filtered records as JSON lines.

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::audit::{AuditRecord, BreakKind, export};
use crate::console::access::Action;
use crate::console::view::format;
use crate::console::view::layout::{Section, notice};
use crate::console::{ConsoleState, Signed};
use crate::store::{AuditBrowse, Store};

/// Records on one page.
const PER_PAGE: u32 = 50;
/// Records read per query while exporting.
const EXPORT_BATCH: u32 = 2000;
/// How much of a record's detail the table shows (the export has all of it).
const DETAIL_SHOWN: usize = 240;

/// The page's query: the filter form's fields, and `before` (a seq) for the next page.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct AuditQueryForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    before: Option<i64>,
}

impl AuditQueryForm {
    fn browse(&self, limit: u32) -> Result<AuditBrowse, String> {
        let given = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
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
        Ok(AuditBrowse {
            before_seq: self.before.filter(|b| *b > 0),
            since,
            until,
            actor_prefix: given(&self.actor),
            action: given(&self.action),
            limit,
        })
    }

    fn query_string(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("from", &self.from),
            ("to", &self.to),
            ("actor", &self.actor),
            ("action", &self.action),
        ] {
            if !v.trim().is_empty() {
                q.append_pair(k, v.trim());
            }
        }
        q.finish()
    }
}

/// `GET /console/audit`.
pub async fn list<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    query: Result<Query<AuditQueryForm>, QueryRejection>,
) -> Response {
    if let Err(r) = state
        .require(&who, Action::ViewAudit, "/console/audit")
        .await
    {
        return r;
    }
    let q = query.map(|Query(q)| q).unwrap_or_default();
    draw(&state, &who, &q, None).await
}

/// The page, with the verification's result above the list when there is one.
async fn draw<S: Store>(
    state: &ConsoleState<S>,
    who: &Signed,
    q: &AuditQueryForm,
    verdict: Option<Markup>,
) -> Response {
    let (rows, problem) = match q.browse(PER_PAGE) {
        Err(p) => (Vec::new(), Some(p)),
        Ok(b) => match state.node.audit_page(&b).await {
            Ok(rows) => (rows, None),
            Err(e) => return state.store_unavailable(who, "Tạm thời không đọc được nhật ký", &e),
        },
    };
    let next = (rows.len() as u32 >= PER_PAGE)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    let qs = q.query_string();
    let body = html! {
        @if let Some(v) = verdict { (v) }
        @if let Some(p) = &problem { (notice(false, p)) }
        @if who.principal().may(Action::VerifyAudit) {
            form method="post" action="/console/audit/verify" class="inline-actions" {
                input type="hidden" name="_csrf" value=(who.session.csrf);
                button type="submit" class="primary" { "Kiểm tra chuỗi" }
                " "
                span class="hint" { "Kiểm tra toàn bộ chuỗi: không bản ghi nào bị sửa, xóa, chèn hay đảo thứ tự." }
            }
        }
        form method="get" action="/console/audit" class="filters" role="search" aria-label="Lọc nhật ký kiểm toán" {
            div class="field" {
                label for="a-from" { "Từ ngày" }
                input id="a-from" name="from" value=(q.from) size="10" placeholder="dd/mm/yyyy" inputmode="numeric";
            }
            div class="field" {
                label for="a-to" { "Đến ngày" }
                input id="a-to" name="to" value=(q.to) size="10" placeholder="dd/mm/yyyy" inputmode="numeric";
            }
            div class="field" {
                label for="a-actor" { "Người thực hiện (bắt đầu bằng)" }
                input id="a-actor" name="actor" value=(q.actor) size="24" placeholder="console:";
            }
            div class="field" {
                label for="a-action" { "Hành động" }
                input id="a-action" name="action" value=(q.action) size="22" placeholder="delivery.cancel";
            }
            button type="submit" class="primary" { "Lọc" }
            a class="button" href="/console/audit" { "Bỏ lọc" }
        }
        p class="hint" {
            a href={ "/console/audit.jsonl?" (qs) } { "Tải về các bản ghi đã lọc (JSON Lines)" }
        }
        @if rows.is_empty() && problem.is_none() {
            p { "Không có bản ghi nào khớp với bộ lọc." }
        } @else if !rows.is_empty() {
            div class="table-wrap" {
                table {
                    caption class="sr-only" { "Bản ghi nhật ký kiểm toán, mới nhất trước" }
                    thead {
                        tr {
                            th scope="col" { "Số" }
                            th scope="col" { "Thời điểm" }
                            th scope="col" { "Người thực hiện" }
                            th scope="col" { "Hành động" }
                            th scope="col" { "Đối tượng" }
                            th scope="col" { "Chi tiết" }
                        }
                    }
                    tbody {
                        @for r in &rows { (row(r)) }
                    }
                }
            }
        }
        nav class="pager" aria-label="Phân trang" {
            @if q.before.is_some() {
                a href={ "/console/audit?" (qs) } { "« Mới nhất" }
            }
            @if let Some(n) = next {
                a href={ "/console/audit?" (qs) @if !qs.is_empty() { "&" } "before=" (n) } { "Cũ hơn »" }
            }
        }
    };
    let mut res = state.page(who, "Nhật ký kiểm toán", Section::Audit, body);
    if problem.is_some() {
        *res.status_mut() = StatusCode::BAD_REQUEST;
    }
    res
}

fn row(r: &AuditRecord) -> Markup {
    let detail: String = r.detail.chars().take(DETAIL_SHOWN).collect();
    let cut = detail.len() < r.detail.len();
    html! {
        tr {
            td { (r.seq) }
            td { (format::date_time(r.at)) }
            td class="mono" { (r.actor) }
            td class="mono" { (r.action) }
            td { (r.entity_kind) " " (r.entity_id) }
            td class="mono detail" { (detail) @if cut { "…" } }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

fn break_vi(kind: BreakKind) -> &'static str {
    match kind {
        BreakKind::Edited => "đã bị sửa",
        BreakKind::Deleted => "đã bị xóa",
        BreakKind::Inserted => "bị chèn thêm, không thuộc chuỗi",
        BreakKind::Reordered => "bị đảo thứ tự",
    }
}

/// `POST /console/audit/verify`: verifies the whole chain and shows the verdict and the head.
pub async fn verify<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    axum::Form(form): axum::Form<VerifyForm>,
) -> Response {
    if let Err(r) = state
        .require_form(
            &who,
            Action::VerifyAudit,
            "/console/audit/verify",
            &form.csrf,
        )
        .await
    {
        return r;
    }
    let verdict = match state.node.verify_audit().await {
        Ok(v) => v,
        Err(e) => return state.store_unavailable(&who, "Tạm thời không đọc được nhật ký", &e),
    };
    let markup = match &verdict {
        Ok(summary) => html! {
            section class="verdict ok" role="status" aria-labelledby="verdict-h" {
                h2 id="verdict-h" { "Chuỗi nhật ký kiểm toán toàn vẹn" }
                p {
                    "Đã kiểm tra " (format::number(summary.records)) " bản ghi: không bản ghi nào bị sửa, xóa, chèn thêm hay đảo thứ tự."
                }
                dl class="facts" {
                    dt { "Bản ghi cuối (đầu chuỗi)" } dd { "số " strong class="head-seq" { (summary.head.seq) } }
                    dt { "Mã băm" } dd class="mono hash head-hash" { (hex::encode(summary.head.hash)) }
                }
                p {
                    "Vui lòng ghi lại số bản ghi và mã băm này ở nơi khác ngoài hệ thống (sổ theo dõi, "
                    "văn bản gửi đơn vị giám sát). Lần kiểm tra sau, bản ghi số " (summary.head.seq)
                    " phải còn đúng mã băm này; nếu khác, toàn bộ chuỗi đã bị viết lại."
                }
            }
        },
        Err(b) => html! {
            section class="verdict broken" role="alert" aria-labelledby="verdict-h" {
                h2 id="verdict-h" { "Chuỗi nhật ký kiểm toán KHÔNG toàn vẹn" }
                p {
                    "Bản ghi số " strong { (b.seq) } " " (break_vi(b.kind)) "."
                }
                p class="mono" { (b.message) }
                p {
                    "Vui lòng không sửa gì thêm trên hệ thống, sao lưu kho dữ liệu và báo ngay cho "
                    "đơn vị giám sát: các bản ghi từ số này trở đi không còn làm chứng được."
                }
            }
        },
    };
    if let Err(b) = &verdict {
        tracing::error!(
            seq = b.seq,
            kind = b.kind.as_str(),
            "audit chain broken (console)"
        );
    }
    let mut res = draw(&state, &who, &AuditQueryForm::default(), Some(markup)).await;
    if res.status() == StatusCode::OK && verdict.is_err() {
        *res.status_mut() = StatusCode::CONFLICT;
    }
    res
}

/// `GET /console/audit.jsonl`: the filtered records, newest first, one JSON object a line (as
/// `lienthong audit export` writes them), streamed page by page.
pub async fn export<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    query: Result<Query<AuditQueryForm>, QueryRejection>,
) -> Response {
    if let Err(r) = state
        .require(&who, Action::ViewAudit, "/console/audit.jsonl")
        .await
    {
        return r;
    }
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let first = match q.browse(EXPORT_BATCH) {
        Ok(b) => b,
        Err(p) => {
            return state.error_page(
                Some(&who),
                StatusCode::BAD_REQUEST,
                "Bộ lọc không hợp lệ",
                &p,
            );
        }
    };
    let node = state.node.clone();
    let stream = futures_util::stream::unfold(Some(first), move |at| {
        let node = node.clone();
        async move {
            let at = at?;
            match node.audit_page(&at).await {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let next = (rows.len() as u32 >= at.limit).then(|| AuditBrowse {
                        before_seq: rows.last().map(|r| r.seq),
                        ..at.clone()
                    });
                    let mut buf = Vec::new();
                    for r in &rows {
                        if let Err(e) = export::write_record(&mut buf, export::Format::Jsonl, r) {
                            return Some((Err(e), None));
                        }
                    }
                    Some((Ok(Bytes::from(buf)), next))
                }
                Err(e) => {
                    tracing::error!(error = %e, "audit export");
                    Some((Err(std::io::Error::other(e.to_string())), None))
                }
            }
        }
    });
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("application/jsonl; charset=utf-8"),
            ),
            (
                CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"nhat-ky-kiem-toan.jsonl\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
