//! Đơn vị liên thông và nút kết nối: the agency registry (which certificates may sign for which
//! agency code) and the peer nodes this node exchanges with, each with a connection test (the
//! mutual-TLS handshake and the peer's identity, as a push makes them), and — with `[mail]` —
//! the mail bridge's servers and the codes delivered to a mailbox.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use serde_json::json;

use crate::audit::AuditEntry;
use crate::config::MailTls;
use crate::console::access::Action;
use crate::console::view::format;
use crate::console::view::layout::{self, Section};
use crate::console::{ConsoleState, Signed};
use crate::node::read::MailServer;
use crate::pki::binding::Rule;
use crate::store::Store;
use crate::transport::probe::Probe;

/// `GET /console/registry`.
pub async fn show<S: Store>(State(state): State<ConsoleState<S>>, who: Signed) -> Response {
    if let Err(r) = state
        .require(&who, Action::ViewRegistry, "/console/registry")
        .await
    {
        return r;
    }
    page(&state, &who, None).await
}

#[derive(Deserialize)]
pub struct TestForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// `POST /console/registry/peers/{name}/test`: the connection test, shown on the page and
/// recorded in the audit chain (`console.peer_test`).
pub async fn test_peer<S: Store>(
    State(state): State<ConsoleState<S>>,
    who: Signed,
    Path(name): Path<String>,
    Form(f): Form<TestForm>,
) -> Response {
    let path = format!("/console/registry/peers/{name}/test");
    if let Err(r) = state
        .require_form(&who, Action::TestPeer, &path, &f.csrf)
        .await
    {
        return r;
    }
    let Some(probe) = state.node.test_peer(&name).await else {
        return state.error_page(
            Some(&who),
            axum::http::StatusCode::NOT_FOUND,
            "Không có nút kết nối này",
            "Nút kết nối này không có trong cấu hình của hệ thống.",
        );
    };
    let entry = AuditEntry::new(
        who.principal().actor(),
        "console.peer_test",
        "peer",
        &name,
        &json!({ "address": probe.address, "ok": probe.ok, "took_ms": probe.took_ms, "error": probe.error }),
    );
    if let Err(e) = state.node.record_console_event(entry).await {
        tracing::error!(error = %e, "could not record a peer connection test");
    }
    page(&state, &who, Some((name, probe))).await
}

async fn page<S: Store>(
    state: &ConsoleState<S>,
    who: &Signed,
    tested: Option<(String, Probe)>,
) -> Response {
    let entries = match state.node.registry().await {
        Ok(e) => e,
        Err(e) => return state.store_unavailable(who, "Tạm thời không đọc được danh sách", &e),
    };
    let may_test = who.principal().may(Action::TestPeer);
    let peers = &state.node.config.peers;
    let mail = state.node.mail_bridge();
    let body = html! {
        @if let Some((name, p)) = &tested {
            @if p.ok {
                (layout::notice(true, &format!("Kết nối tới nút “{name}” ({}) thành công: bắt tay TLS hai chiều và định danh của nút đúng như cấu hình ({} ms).", p.address, p.took_ms)))
            } @else {
                (layout::notice(false, &format!("Kết nối tới nút “{name}” ({}) không thành công ở bước {}: {}.", p.address, step_vi(p.step), p.error.as_deref().unwrap_or(""))))
            }
        }
        h2 id="peers" { "Nút kết nối" }
        div class="table-wrap" {
            table aria-labelledby="peers" {
                thead { tr {
                    th scope="col" { "Tên" }
                    th scope="col" { "Địa chỉ" }
                    th scope="col" { "Phục vụ mã đơn vị" }
                    @if may_test { th scope="col" { "Kiểm tra" } }
                } }
                tbody {
                    @for p in peers {
                        tr {
                            td { (p.name) }
                            td { (p.url) }
                            td { @for (i, c) in p.serves.iter().enumerate() { @if i > 0 { ", " } (c.to_string()) } }
                            @if may_test {
                                td {
                                    form method="post" action={ "/console/registry/peers/" (p.name) "/test" } {
                                        input type="hidden" name="_csrf" value=(who.session.csrf);
                                        button type="submit" { "Kiểm tra kết nối" span class="sr-only" { " tới " (p.name) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(m) = &mail {
            h2 id="mail" { "Cầu nối thư điện tử công vụ" }
            p { "Gửi từ địa chỉ " (m.from) "." }
            ul class="plain" {
                li { "Máy chủ gửi thư (SMTP): " (server_vi(m.smtp.as_ref())) }
                li { "Hộp thư nhận (IMAP): " (server_vi(m.imap.as_ref())) }
            }
            @if m.routes.is_empty() {
                p { "Chưa có đơn vị nào nhận văn bản qua thư điện tử." }
            } @else {
                div class="table-wrap" {
                    table aria-labelledby="mail" {
                        caption { "Đơn vị nhận văn bản qua thư điện tử" }
                        thead { tr {
                            th scope="col" { "Mã đơn vị" }
                            th scope="col" { "Tên đơn vị" }
                            th scope="col" { "Địa chỉ thư điện tử" }
                        } }
                        tbody {
                            @for r in &m.routes {
                                tr {
                                    td { (r.code) }
                                    td { @if r.name.is_empty() { span class="hint" { "(không ghi tên)" } } @else { (r.name) } }
                                    td { (r.address) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 id="registry" { "Đơn vị liên thông (ràng buộc chứng thư với mã đơn vị)" }
        @if entries.is_empty() {
            p { "Chưa có đơn vị nào trong danh bạ; gói tin được chấp nhận theo mã đơn vị ghi trong chứng thư ký số." }
        } @else {
            div class="table-wrap" {
                table aria-labelledby="registry" {
                    thead { tr {
                        th scope="col" { "Mã đơn vị" }
                        th scope="col" { "Tên đơn vị" }
                        th scope="col" { "Chứng thư được ký thay" }
                        th scope="col" { "Cập nhật" }
                    } }
                    tbody {
                        @for e in &entries {
                            tr {
                                td { (e.code) }
                                td { (e.name) }
                                td { ul class="plain" { @for r in &e.rules { li { (rule_vi(r)) } } } }
                                td { (format::date_time(e.updated_at)) " · " (e.updated_by) }
                            }
                        }
                    }
                }
            }
        }
    };
    state.page(
        who,
        "Đơn vị liên thông và nút kết nối",
        Section::Registry,
        body,
    )
}

/// A mail server of the bridge in words: where, how secured, whether it signs in — never with
/// what.
fn server_vi(s: Option<&MailServer>) -> String {
    let Some(s) = s else {
        return "chưa cấu hình".to_owned();
    };
    let tls = match s.tls {
        MailTls::Starttls => "STARTTLS",
        MailTls::Implicit => "TLS ngay từ đầu kết nối",
        MailTls::None => "không mã hóa (chỉ dùng khi phát triển)",
    };
    let auth = if s.authenticated {
        "có đăng nhập"
    } else {
        "không đăng nhập"
    };
    format!("{}:{} · {tls} · {auth}", s.host, s.port)
}

fn step_vi(step: Option<&str>) -> &'static str {
    match step {
        Some("url") => "đọc địa chỉ",
        Some("connect") => "kết nối mạng",
        Some("tls") => "bắt tay TLS và xác thực định danh",
        _ => "không xác định",
    }
}

/// A binding rule in words.
fn rule_vi(r: &Rule) -> String {
    match r {
        Rule::Fingerprint { sha256, .. } => format!("Chứng thư có dấu vân tay SHA-256 {sha256}"),
        Rule::Subject {
            issuer_sha256,
            issuer,
            attribute,
            value,
            ..
        } => {
            let by = issuer_sha256
                .as_deref()
                .map(|f| format!("CA có dấu vân tay {f}"))
                .or_else(|| issuer.clone())
                .unwrap_or_default();
            format!(
                "Chứng thư có {} = “{value}”, do {by} cấp",
                attribute.as_str()
            )
        }
    }
}
