//! Gửi văn bản: a clerk sends a document of their agency — recipients chosen with a picker that
//! searches on the server (a province's registry holds 100,000 codes; none is sent to the
//! browser), the document's fields, and its files (a PDF) — through the node's own submission
//! (the one `POST /api/v1/documents` calls).
//!
//! Without JavaScript the picker is links: a search (`?tim=`) lists matching agencies, each
//! with a link that adds it to the chosen ones (`?chon=` repeated), which the send form carries
//! as hidden fields. The form carries a one-time key, so a second click on *Gửi* (or a reload
//! of the answer) sends nothing twice.

use axum::extract::{Multipart, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use crate::console::access::Action;
use crate::console::session::random_token;
use crate::console::view::format;
use crate::console::view::layout::{Section, notice};
use crate::console::{ConsoleState, Signed, see_other};
use crate::node::compose::{File, Submission};
use crate::node::read::Candidate;
use crate::store::Store;

/// What the form keeps between the picker's round trips and after a refusal.
#[derive(Debug, Default, Clone)]
pub struct Draft {
    chosen: Vec<String>,
    search: String,
    notation: String,
    subject: String,
    content: String,
    competence: String,
    position: String,
    signer: String,
    priority: String,
    /// Nơi ban hành (the place in "Gia Lai, ngày … tháng … năm …").
    place: String,
    key: String,
    /// *Thay thế*: the id of the agency's sent document this one replaces, and why.
    replaces: Option<i64>,
    reason: String,
}

impl Draft {
    /// From the page's query: `chon` (repeated) and `tim`.
    fn from_query(raw: Option<&str>) -> Draft {
        let mut d = Draft::default();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "chon" => d.choose(v.trim()),
                "tim" => d.search = v.into_owned(),
                "thay_the" => d.replaces = v.trim().parse().ok(),
                _ => {}
            }
        }
        d
    }

    fn choose(&mut self, code: &str) {
        if !code.is_empty() && !self.chosen.iter().any(|c| c == code) && self.chosen.len() < 100 {
            self.chosen.push(code.to_owned());
        }
    }

    /// This page's address with `chosen` as given.
    fn link(&self, chosen: &[&str], search: &str) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        if let Some(id) = self.replaces {
            s.append_pair("thay_the", &id.to_string());
        }
        for c in chosen {
            s.append_pair("chon", c);
        }
        if !search.is_empty() {
            s.append_pair("tim", search);
        }
        format!("/console/documents/new?{}", s.finish())
    }
}

/// `GET /console/documents/new?chon=…&tim=…`.
pub async fn form<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = state
        .require(&who, Action::SendDocument, "/console/documents/new")
        .await
    {
        return r;
    }
    let draft = Draft::from_query(raw.as_deref());
    page(&state, &who, draft, StatusCode::OK, None).await
}

async fn page<S: Store>(
    state: &ConsoleState<S>,
    who: &Signed,
    mut draft: Draft,
    status: StatusCode,
    said: Option<String>,
) -> Response {
    let Some(agency) = who.principal().agency.as_ref().map(|a| a.to_string()) else {
        return super::documents::no_agency(state, who);
    };
    let mut chosen: Vec<(String, Option<Candidate>)> = Vec::new();
    for code in &draft.chosen {
        match state.node.recipient(code).await {
            Ok(c) => chosen.push((code.clone(), c)),
            Err(e) => return state.store_unavailable(who, "Tạm thời không đọc được văn bản", &e),
        }
    }
    let found = match state
        .node
        .recipient_candidates(&agency, &draft.search)
        .await
    {
        Ok(f) => f,
        Err(e) => return state.store_unavailable(who, "Tạm thời không đọc được văn bản", &e),
    };
    if draft.key.is_empty() {
        draft.key = random_token();
    }
    let codes: Vec<&str> = draft.chosen.iter().map(String::as_str).collect();
    let body = html! {
        @if let Some(s) = &said { (notice(false, s)) }
        section aria-labelledby="h-to" class="panel" {
            h2 id="h-to" { "1. Nơi nhận" }
            @if chosen.is_empty() {
                p class="hint" { "Chưa chọn nơi nhận nào." }
            } @else {
                ul class="plain chosen" {
                    @for (code, c) in &chosen {
                        li {
                            (name_of(code, c.as_ref()))
                            @if c.is_none() { " — " strong { "không có đường gửi đến mã này" } }
                            " "
                            a href=(draft.link(&codes.iter().copied().filter(|x| x != code).collect::<Vec<_>>(), &draft.search)) {
                                "Bỏ" span class="visually-hidden" { " " (code) }
                            }
                        }
                    }
                }
            }
            form method="get" action="/console/documents/new" class="filters" role="search" aria-label="Tìm cơ quan nhận" {
                @if let Some(id) = draft.replaces { input type="hidden" name="thay_the" value=(id); }
                @for c in &codes { input type="hidden" name="chon" value=(c); }
                div class="field" {
                    label for="f-tim" { "Tìm cơ quan nhận (mã hoặc tên)" }
                    input id="f-tim" name="tim" value=(draft.search);
                }
                div class="field" { button type="submit" { "Tìm" } }
            }
            @if !draft.search.trim().is_empty() {
                @if found.is_empty() {
                    p class="hint" { "Không tìm thấy cơ quan nào; vui lòng nhập đầy đủ mã định danh (ví dụ 000.00.00.H41) hoặc một phần tên cơ quan." }
                } @else {
                    ul class="plain" {
                        @for c in &found {
                            li {
                                (name_of(&c.code, Some(c))) " "
                                span class="hint" { "(" (c.source) ")" } " "
                                @if codes.contains(&c.code.as_str()) {
                                    "Đã chọn"
                                } @else {
                                    a href=(draft.link(&codes.iter().copied().chain([c.code.as_str()]).collect::<Vec<_>>(), &draft.search)) {
                                        "Chọn" span class="visually-hidden" { " " (c.code) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action="/console/documents/new" enctype="multipart/form-data" class="panel send" {
            h2 { "2. Nội dung văn bản" }
            input type="hidden" name="_csrf" value=(who.session.csrf);
            input type="hidden" name="key" value=(draft.key);
            @if let Some(id) = draft.replaces {
                input type="hidden" name="thay_the" value=(id);
                p { "Văn bản này thay thế " a href={ "/console/documents/" (id) } { "văn bản đã gửi số " (id) } "; nơi nhận của văn bản cũ được báo để đồng ý hoặc từ chối." }
                div class="field" { label for="f-ld" { "Lý do thay thế (bắt buộc)" } textarea id="f-ld" name="reason" rows="2" required { (draft.reason) } }
            }
            @for c in &codes { input type="hidden" name="chon" value=(c); }
            div class="field" { label for="f-kh" { "Ký hiệu (bắt buộc)" } input id="f-kh" name="notation" value=(draft.notation) required placeholder="UBND-VP"; }
            div class="field" { label for="f-ty" { "Trích yếu (bắt buộc)" } textarea id="f-ty" name="subject" rows="2" required { (draft.subject) } }
            div class="field" { label for="f-nd" { "Nội dung tóm tắt" } textarea id="f-nd" name="content" rows="3" { (draft.content) } }
            div class="field" {
                label for="f-khan" { "Độ khẩn" }
                select id="f-khan" name="priority" {
                    @for (n, l) in [(0, "Thường"), (1, "Khẩn"), (2, "Thượng khẩn"), (3, "Hỏa tốc"), (4, "Hỏa tốc hẹn giờ")] {
                        option value=(n) selected[draft.priority == n.to_string()] { (l) }
                    }
                }
            }
            div class="field" { label for="f-tq" { "Thẩm quyền ký" } input id="f-tq" name="competence" value=(draft.competence) placeholder="KT. CHỦ TỊCH"; }
            div class="field" { label for="f-cv" { "Chức vụ người ký" } input id="f-cv" name="position" value=(draft.position) placeholder="PHÓ CHỦ TỊCH"; }
            div class="field" { label for="f-nbh" { "Nơi ban hành" } input id="f-nbh" name="place" value=(draft.place) placeholder="Gia Lai"; }
            div class="field" { label for="f-nk" { "Họ tên người ký (bắt buộc)" } input id="f-nk" name="signer" value=(draft.signer) required; }
            div class="field" { label for="f-tep" { "Tệp văn bản (PDF)" } input id="f-tep" type="file" name="file" accept="application/pdf"; }
            p class="hint" { "Số văn bản do hệ thống cấp theo sổ văn bản đi của cơ quan; văn bản được ký số bằng khóa của cơ quan khi gửi." }
            button type="submit" class="primary" disabled[chosen.is_empty()] { "Gửi văn bản" }
        }
    };
    let title = if draft.replaces.is_some() {
        "Thay thế văn bản"
    } else {
        "Gửi văn bản"
    };
    let mut res = state.page(who, title, Section::Documents, body);
    *res.status_mut() = status;
    res
}

fn name_of(code: &str, c: Option<&Candidate>) -> Markup {
    html! {
        @match c {
            Some(c) if !c.name.is_empty() => { (c.name) " (" (code) ")" }
            _ => { (code) }
        }
    }
}

/// `POST /console/documents/new` (multipart): the node's submission for the clerk's agency.
/// A refusal (a field, a recipient without a route, a file the receivers would refuse) comes
/// back on the form, with what was typed, in the node's Vietnamese words.
pub async fn send<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let path = "/console/documents/new";
    let limits = state.node.config.limits.clone();
    let mut draft = Draft::default();
    let mut csrf = String::new();
    let FormParts {
        fields,
        files,
        problem,
    } = read_form(multipart, &limits).await;
    for (name, text) in fields {
        match name.as_str() {
            "_csrf" => csrf = text,
            "key" => draft.key = text,
            "chon" => draft.choose(text.trim()),
            "notation" => draft.notation = text,
            "subject" => draft.subject = text,
            "content" => draft.content = text,
            "competence" => draft.competence = text,
            "position" => draft.position = text,
            "signer" => draft.signer = text,
            "priority" => draft.priority = text,
            "place" => draft.place = text,
            "thay_the" => draft.replaces = text.trim().parse().ok(),
            "reason" => draft.reason = text,
            _ => {}
        }
    }
    if let Err(r) = state
        .require_form(&who, Action::SendDocument, path, &csrf)
        .await
    {
        return r;
    }
    let Some(agency) = who.principal().agency.clone() else {
        return super::documents::no_agency(&state, &who);
    };
    if let Some(p) = problem {
        return page(
            &state,
            &who,
            draft,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(p),
        )
        .await;
    }
    if draft.chosen.is_empty() {
        let said = "Vui lòng chọn ít nhất một nơi nhận.".to_owned();
        return page(
            &state,
            &who,
            draft,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(said),
        )
        .await;
    }
    let mut recipients = Vec::new();
    for code in &draft.chosen {
        match state.node.recipient(code).await {
            Ok(Some(c)) if !c.name.is_empty() => {
                recipients.push(serde_json::json!({"code": c.code, "name": c.name}))
            }
            Ok(_) => recipients.push(serde_json::json!(code)),
            Err(e) => return state.store_unavailable(&who, "Tạm thời không đọc được văn bản", &e),
        }
    }
    let content = draft.content.trim();
    let place = draft.place.trim();
    let sub = serde_json::json!({
        "recipients": recipients,
        "notation": draft.notation.trim(),
        "subject": draft.subject.trim(),
        "content": (!content.is_empty()).then_some(content),
        "place": (!place.is_empty()).then_some(place),
        "priority": draft.priority.trim().parse::<u8>().unwrap_or(0),
        "signer": {
            "competence": draft.competence.trim(),
            "position": draft.position.trim(),
            "full_name": draft.signer.trim(),
        },
    });
    let sub: Submission = match serde_json::from_value(sub) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "console submission");
            let said = "Biểu mẫu chưa hợp lệ; vui lòng kiểm tra lại các trường.".to_owned();
            return page(
                &state,
                &who,
                draft,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(said),
            )
            .await;
        }
    };
    let key = (!draft.key.is_empty()).then(|| format!("console:{}", draft.key));
    let actor = who.principal().actor();
    let sent = match draft.replaces {
        Some(old) => {
            let reason = draft.reason.trim().to_owned();
            state
                .node
                .replace_with_key(&agency, &actor, old, &sub, files, &reason, key)
                .await
        }
        None => state.node.submit(&agency, &actor, &sub, files, key).await,
    };
    match sent {
        Ok(s) => {
            tracing::info!(agency = %agency, message_id = s.message_id, document_id = %s.document_id, replaces = ?draft.replaces, "document sent from the console");
            see_other(&format!("/console/documents/{}?ok=sent", s.message_id))
        }
        Err(e) => {
            let status = crate::http::error::http_status(e.code());
            if status.is_server_error() {
                return state.store_unavailable(&who, "Tạm thời không đọc được văn bản", &e);
            }
            let said = format!("Chưa gửi được: {}", e.message_vi());
            page(&state, &who, draft, status, Some(said)).await
        }
    }
}

/// `POST /console/documents/{id}/update` (multipart): *Cập nhật* of a document the agency sent
/// — a reason, a new trích yếu or nội dung, new files — through the node's update (the one
/// `POST /api/v1/documents/{id}/update` calls). Unchanged fields are not sent as changes; a
/// refusal (nothing changed, no reason, updated already) is shown on the document's page.
pub async fn update<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    id: Result<axum::extract::Path<i64>, axum::extract::rejection::PathRejection>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let Ok(axum::extract::Path(message_id)) = id else {
        return super::documents::not_found(&state, &who);
    };
    let path = format!("/console/documents/{message_id}/update");
    let limits = state.node.config.limits.clone();
    let (mut csrf, mut key, mut reason, mut subject, mut content): (
        String,
        String,
        String,
        String,
        String,
    ) = Default::default();
    let FormParts {
        fields,
        files,
        problem,
    } = read_form(multipart, &limits).await;
    for (name, text) in fields {
        match name.as_str() {
            "_csrf" => csrf = text,
            "key" => key = text,
            "reason" => reason = text,
            "subject" => subject = text,
            "content" => content = text,
            _ => {}
        }
    }
    if let Err(r) = state
        .require_form(&who, Action::SendDocument, &path, &csrf)
        .await
    {
        return r;
    }
    let Some(agency) = who.principal().agency.clone() else {
        return super::documents::no_agency(&state, &who);
    };
    let said = |s: String| Some((false, s));
    if let Some(p) = problem {
        return super::documents::detail(
            &state,
            &who,
            message_id,
            StatusCode::UNPROCESSABLE_ENTITY,
            said(p),
        )
        .await;
    }
    // What the document says now: only a different value is a change.
    let current = match state
        .node
        .outgoing_document(agency.as_str(), message_id)
        .await
    {
        Ok(d) => d,
        Err(e) if crate::node::read::is_not_found(&e) => {
            return super::documents::not_found(&state, &who);
        }
        Err(e) => return state.store_unavailable(&who, "Tạm thời không đọc được văn bản", &e),
    };
    let subject = subject.trim();
    let content = content.trim();
    let req = crate::node::service::UpdateRequest {
        reason: reason.trim().to_owned(),
        subject: (!subject.is_empty() && Some(subject) != current.item.message.subject.as_deref())
            .then(|| subject.to_owned()),
        content: (!content.is_empty()).then(|| content.to_owned()),
        files,
        ..Default::default()
    };
    let key = (!key.is_empty()).then(|| format!("console:{key}"));
    let actor = who.principal().actor();
    match state
        .node
        .update_with_key(&agency, &actor, message_id, req, key)
        .await
    {
        Ok(out) => {
            tracing::info!(agency = %agency, message_id, update = out.message_id, "update sent from the console");
            see_other(&format!("/console/documents/{}?ok=update", out.message_id))
        }
        Err(e) if e.code() == crate::error::Code::NotFound => {
            super::documents::not_found(&state, &who)
        }
        Err(e) => {
            let status = crate::http::error::http_status(e.code());
            if status.is_server_error() {
                return state.store_unavailable(&who, "Tạm thời không đọc được văn bản", &e);
            }
            let text = format!("Không thực hiện được: {}", e.message_vi());
            super::documents::detail(&state, &who, message_id, status, said(text)).await
        }
    }
}

/// Most text fields one form may carry (the send form has about fifteen, plus one per chosen
/// recipient), and most bytes in one of them: a forged body cannot make the handler hold more.
const MAX_FORM_FIELDS: usize = 500;
const MAX_FIELD_BYTES: usize = 64 * 1024;

/// A multipart form as the two sending forms read it: its text fields in order, its files, and
/// what was wrong with the body in the clerk's words (the form is then shown again with it).
struct FormParts {
    fields: Vec<(String, String)>,
    files: Vec<File>,
    problem: Option<String>,
}

/// Reads the send and update forms' bodies with the node's limits: at most
/// `limits.max_attachments` files of at most `limits.max_attachment_bytes` each (what the
/// receivers would refuse is refused here, before signing), [`MAX_FORM_FIELDS`] text fields of
/// at most [`MAX_FIELD_BYTES`]. An unreadable body stops the reading and says so.
async fn read_form(
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
    limits: &crate::edxml::xml::Limits,
) -> FormParts {
    let mut out = FormParts {
        fields: Vec::new(),
        files: Vec::new(),
        problem: None,
    };
    let unreadable = "Biểu mẫu gửi lên không đọc được; vui lòng gửi lại.";
    let Ok(mut mp) = multipart else {
        out.problem = Some(unreadable.to_owned());
        return out;
    };
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => {
                out.problem = Some(unreadable.to_owned());
                break;
            }
        };
        let name = field.name().unwrap_or("").to_owned();
        if name == "file" {
            let file_name = field.file_name().unwrap_or("").to_owned();
            let content_type = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_owned();
            match field.bytes().await {
                Ok(b) if b.is_empty() && file_name.is_empty() => {}
                Ok(_) if out.files.len() >= limits.max_attachments => {
                    out.problem = Some(format!(
                        "Một văn bản gửi được nhiều nhất {} tệp.",
                        limits.max_attachments
                    ));
                    break;
                }
                Ok(b) if b.len() as u64 > limits.max_attachment_bytes => {
                    out.problem = Some(format!(
                        "Tệp “{file_name}” lớn hơn mức nơi nhận chấp nhận ({} byte).",
                        format::number(limits.max_attachment_bytes)
                    ));
                }
                Ok(b) => out.files.push(File {
                    name: file_name,
                    content_type,
                    data: b.to_vec(),
                }),
                Err(_) => {
                    out.problem =
                        Some("Tệp gửi lên không đọc được; vui lòng chọn lại tệp.".to_owned());
                    break;
                }
            }
            continue;
        }
        match field.text().await {
            Ok(_) if out.fields.len() >= MAX_FORM_FIELDS => {
                out.problem = Some(unreadable.to_owned());
                break;
            }
            Ok(t) if t.len() > MAX_FIELD_BYTES => {
                out.problem = Some(format!(
                    "Một trường của biểu mẫu dài quá {} byte; vui lòng rút gọn.",
                    format::number(MAX_FIELD_BYTES as u64)
                ));
            }
            Ok(t) => out.fields.push((name, t)),
            Err(_) => {
                out.problem = Some(unreadable.to_owned());
                break;
            }
        }
    }
    out
}
