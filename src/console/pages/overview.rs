//! Tổng quan: the counters an administrator (or a clerk) starts the day with, each a link to
//! the list it counts.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use crate::config::Role;
use crate::console::access::Action;
use crate::console::pages::documents::LATE;
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
    // A clerk's Chờ tiếp nhận and Chậm tiếp nhận are their agency's, and link to their lists;
    // anyone else's are the whole node's, plain numbers: the lists are a clerk's (one agency's),
    // and no page lists every agency's documents, so a link would show something else than
    // what was counted.
    let principal = who.principal();
    let scope = match (principal.role, &principal.agency) {
        (Role::Clerk, Some(a)) => Some(a.as_str().to_owned()),
        _ => None,
    };
    let now = now_ms();
    let overview = match state.node.overview(scope.as_deref(), now).await {
        Ok(o) => o,
        Err(e) => return state.store_unavailable(&who, "Tạm thời không đọc được số liệu", &e),
    };
    let admin = principal.may(Action::ViewDeliveries);
    let lists = scope.is_some() && principal.may(Action::ViewDocuments);
    let admin_link = |h: &str| admin.then(|| h.to_owned());
    let list_link = |h: &str| lists.then(|| h.to_owned());
    // Today as the administrator's calendar has it: since midnight in Vietnam.
    let today = format::date(now);
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
    let r = overview.reception;
    let counters: Vec<(&str, u64, Option<String>, bool)> = vec![
        (
            "Chờ tiếp nhận",
            r.awaiting,
            list_link("/console/documents?tab=den&tt=arrived"),
            false,
        ),
        (
            "Chậm tiếp nhận (văn bản đến)",
            r.late_incoming,
            list_link(&format!("/console/documents?tab=den&tt={LATE}")),
            true,
        ),
        (
            "Chậm tiếp nhận (văn bản đi)",
            r.late_outgoing,
            list_link(&format!("/console/documents?tab=di&tt={LATE}")),
            true,
        ),
        (
            "Đang chờ gửi",
            pending,
            admin_link("/console/deliveries?state=pending"),
            false,
        ),
        (
            "Gửi lỗi",
            count(DeliveryState::Failed) + count(DeliveryState::Retrying),
            admin_link("/console/deliveries?state=failed"),
            true,
        ),
        (
            "Bị trả lại",
            count(DeliveryState::Rejected),
            admin_link("/console/deliveries?state=rejected"),
            true,
        ),
        (
            "Đã gửi đến nơi",
            count(DeliveryState::Delivered),
            admin_link("/console/deliveries?state=delivered"),
            false,
        ),
        (
            "Chứng thư sắp hết hạn",
            overview.expiring.len() as u64,
            admin_link("/console/certificates"),
            true,
        ),
    ];
    let body = html! {
        ul class="counters" {
            @for (label, n, href, alarm) in &counters {
                li class={ "counter" @if *alarm && *n > 0 { " alarm" } } {
                    @match href {
                        Some(h) => { a href=(h) { span class="n" { (format::number(*n)) } span class="label" { (label) } } }
                        None => { span class="n" { (format::number(*n)) } span class="label" { (label) } }
                    }
                }
            }
        }
        p class="hint" {
            @if scope.is_some() {
                "Chờ tiếp nhận, Chậm tiếp nhận: văn bản của cơ quan anh/chị. "
            } @else {
                "Chờ tiếp nhận, Chậm tiếp nhận: văn bản của mọi cơ quan trên hệ thống này; danh sách chi tiết do văn thư từng cơ quan xem trong Văn bản liên thông. "
            }
            "Chậm tiếp nhận: đã đến trước "
            (format::date_time(overview.late_before))
            " (hết ngày làm việc đến nơi, thứ Hai đến thứ Sáu theo giờ Việt Nam; văn bản đến thứ Bảy, Chủ nhật hạn hết thứ Hai; hệ thống không biết ngày nghỉ lễ) mà chưa được tiếp nhận."
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
