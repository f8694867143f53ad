//! Khóa và chứng thư: every certificate the node relies on — trust anchors, the agencies'
//! signing certificates, the node's TLS certificate — soonest to expire first, with the
//! warnings at 60, 30 and 7 days written out (not only coloured).

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};

use crate::console::access::Action;
use crate::console::view::format;
use crate::console::view::layout::Section;
use crate::console::{ConsoleState, Signed};
use crate::node::expiry::CertExpiry;
use crate::store::Store;

/// `GET /console/certificates`.
pub async fn show<S: Store>(State(state): State<ConsoleState<S>>, who: Signed) -> Response {
    if let Err(r) = state
        .require(&who, Action::ViewCertificates, "/console/certificates")
        .await
    {
        return r;
    }
    let all = state.node.certificates();
    let body = html! {
        p class="hint" { "Cảnh báo khi chứng thư còn dưới 60, 30 và 7 ngày hiệu lực. Thời gian theo giờ Việt Nam." }
        div class="table-wrap" {
            table {
                caption class="sr-only" { "Các chứng thư hệ thống sử dụng" }
                thead { tr {
                    th scope="col" { "Loại" }
                    th scope="col" { "Chủ thể" }
                    th scope="col" { "Cơ quan" }
                    th scope="col" { "Hết hạn" }
                    th scope="col" { "Còn lại" }
                    th scope="col" { "Cảnh báo" }
                } }
                tbody {
                    @for c in &all { (row(c)) }
                }
            }
        }
    };
    state.page(&who, "Khóa và chứng thư", Section::Certificates, body)
}

fn row(c: &CertExpiry) -> Markup {
    let kind = match c.role {
        "anchor" => "Chứng thư gốc tin cậy",
        "agency" => "Chứng thư ký số của cơ quan",
        "node" => "Chứng thư TLS của nút",
        other => other,
    };
    html! {
        tr class=(level_class(c.days_left)) {
            td { (kind) }
            td { (c.subject) }
            td { (c.agency.as_deref().unwrap_or("—")) }
            td { (format::date(c.not_after.saturating_mul(1000))) }
            td { @if c.days_left < 0 { "đã hết hạn" } @else { (format::number(c.days_left as u64)) " ngày" } }
            td { (level_text(c.days_left)) }
        }
    }
}

/// The warning a certificate with `days` left carries (60/30/7-day thresholds).
pub fn level_text(days: i64) -> &'static str {
    match days {
        d if d < 0 => "Đã hết hạn",
        d if d <= 7 => "Khẩn: còn dưới 7 ngày",
        d if d <= 30 => "Còn dưới 30 ngày",
        d if d <= 60 => "Còn dưới 60 ngày",
        _ => "Bình thường",
    }
}

fn level_class(days: i64) -> &'static str {
    match days {
        d if d <= 7 => "expiry urgent",
        d if d <= 60 => "expiry soon",
        _ => "expiry",
    }
}

#[cfg(test)]
mod tests {
    use super::level_text;

    #[test]
    fn warnings_at_sixty_thirty_and_seven_days() {
        assert_eq!(level_text(61), "Bình thường");
        assert_eq!(level_text(60), "Còn dưới 60 ngày");
        assert_eq!(level_text(30), "Còn dưới 30 ngày");
        assert_eq!(level_text(7), "Khẩn: còn dưới 7 ngày");
        assert_eq!(level_text(0), "Khẩn: còn dưới 7 ngày");
        assert_eq!(level_text(-1), "Đã hết hạn");
    }
}
