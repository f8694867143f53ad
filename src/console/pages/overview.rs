//! Tổng quan: the counters an administrator (or a clerk) starts the day with, each a link to
//! the list it counts.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use crate::console::access::Action;
use crate::console::view::format;
use crate::console::view::layout::Section;
use crate::console::{ConsoleState, Signed};
use crate::node::read::{COUNT_CAP, Capped};
use crate::node::service::now_ms;
use crate::store::{DeliveryState, Store};

/// `GET /console/`.
pub async fn show<S: Store>(State(state): State<ConsoleState<S>>, who: Signed) -> Response {
    if let Err(r) = state.require(&who, Action::ViewOverview, "/console/").await {
        return r;
    }
    let overview = match state.node.overview().await {
        Ok(o) => o,
        Err(e) => return state.store_unavailable(&who, "Tạm thời không đọc được số liệu", &e),
    };
    let admin = who.principal().may(Action::ViewDeliveries);
    // Today as the administrator's calendar has it: since midnight in Vietnam.
    let today = format::date(now_ms());
    let today_start = format::parse_date(&today);
    let today_count = match today_start {
        Some(t) if admin => match state.node.deliveries_since(t).await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "overview: deliveries today");
                None
            }
        },
        _ => None,
    };
    let count = |s: DeliveryState| overview.deliveries.get(&s).copied().unwrap_or(0);
    let pending = count(DeliveryState::Queued)
        + count(DeliveryState::Sending)
        + count(DeliveryState::Retrying);
    let counters: Vec<(&str, u64, Option<&str>, bool)> = vec![
        (
            "Đang chờ gửi",
            pending,
            Some("/console/deliveries?state=pending"),
            false,
        ),
        (
            "Gửi lỗi",
            count(DeliveryState::Failed) + count(DeliveryState::Retrying),
            Some("/console/deliveries?state=failed"),
            true,
        ),
        (
            "Bị trả lại",
            count(DeliveryState::Rejected),
            Some("/console/deliveries?state=rejected"),
            true,
        ),
        (
            "Đã gửi đến nơi",
            count(DeliveryState::Delivered),
            Some("/console/deliveries?state=delivered"),
            false,
        ),
        (
            "Chứng thư sắp hết hạn",
            overview.expiring.len() as u64,
            Some("/console/certificates"),
            true,
        ),
    ];
    let body = html! {
        ul class="counters" {
            @for (label, n, href, alarm) in &counters {
                li class={ "counter" @if *alarm && *n > 0 { " alarm" } } {
                    @match (href, admin) {
                        (Some(h), true) => { a href=(h) { span class="n" { (format::number(*n)) } span class="label" { (label) } } }
                        _ => { span class="n" { (format::number(*n)) } span class="label" { (label) } }
                    }
                }
            }
        }
        @if let Some(c) = today_count {
            p class="today" {
                "Lần chuyển văn bản tạo từ 00:00 hôm nay (" (today) "): "
                a href={ "/console/deliveries?from=" (today) } {
                    strong {
                        @match c {
                            Capped::Exactly(n) => { (format::number(n)) }
                            Capped::More => { "hơn " (format::number(u64::from(COUNT_CAP))) }
                        }
                    }
                }
            }
        }
        p class="queue-age" {
            "Văn bản chờ gửi lâu nhất: "
            strong {
                @match overview.oldest_pending_ms {
                    Some(ms) => { (format::age(ms)) }
                    None => { "không có văn bản nào đang chờ" }
                }
            }
        }
    };
    state.page(&who, "Tổng quan", Section::Overview, body)
}
