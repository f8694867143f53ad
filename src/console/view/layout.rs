//! The page shell every console page is drawn in: Vietnamese, one stylesheet and one script
//! served as files (the Content-Security-Policy allows nothing inline), a skip link, the
//! navigation a role may use (and only that), the signed-in person and the logout form.

use maud::{DOCTYPE, Markup, html};

use crate::console::access::{Action, Principal};

/// The sections of the navigation, to mark the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Documents,
    Deliveries,
    Audit,
    Registry,
    Certificates,
    None,
}

const NAV: [(Section, &str, &str, Action); 6] = [
    (
        Section::Overview,
        "/console/",
        "Tổng quan",
        Action::ViewOverview,
    ),
    (
        Section::Documents,
        "/console/documents",
        "Văn bản liên thông",
        Action::ViewDocuments,
    ),
    (
        Section::Deliveries,
        "/console/deliveries",
        "Nhật ký giao nhận",
        Action::ViewDeliveries,
    ),
    (
        Section::Audit,
        "/console/audit",
        "Nhật ký kiểm toán",
        Action::ViewAudit,
    ),
    (
        Section::Registry,
        "/console/registry",
        "Đơn vị liên thông",
        Action::ViewRegistry,
    ),
    (
        Section::Certificates,
        "/console/certificates",
        "Khóa và chứng thư",
        Action::ViewCertificates,
    ),
];

/// What a page is drawn with besides its body.
pub struct Frame<'a> {
    pub title: &'a str,
    pub section: Section,
    /// The signed-in person and their session's CSRF token (for the logout form); `None` on the
    /// sign-in page.
    pub who: Option<(&'a Principal, &'a str)>,
    /// The node's name in the header (its first agency's name).
    pub node_name: &'a str,
}

/// A whole page.
pub fn page(frame: Frame<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="vi" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (frame.title) " — Liên thông văn bản" }
                // No favicon request (it would be the API's JSON 404).
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/console/static/app.css";
                script src="/console/static/app.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Bỏ qua, đến nội dung chính" }
                header class="top" {
                    div class="brand" {
                        span class="app" { "Liên thông văn bản" }
                        span class="node" { (frame.node_name) }
                    }
                    @if let Some((who, csrf)) = frame.who {
                        div class="who" {
                            span class="name" { (who.name) }
                            span class="role" {
                                (who.role.label())
                                @if let Some(a) = &who.agency { " · " (a.to_string()) }
                            }
                            form method="post" action="/console/logout" class="inline" {
                                input type="hidden" name="_csrf" value=(csrf);
                                button type="submit" class="link" { "Đăng xuất" }
                            }
                        }
                    }
                }
                @if let Some((who, _)) = frame.who {
                    nav class="main" aria-label="Chức năng" {
                        ul {
                            @for (section, href, label, action) in NAV {
                                @if who.may(action) {
                                    li {
                                        @if section == frame.section {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (frame.title) }
                    (body)
                }
            }
        }
    }
}

/// A notice above a page's content (after an action): `ok` or an error, in words.
pub fn notice(ok: bool, text: &str) -> Markup {
    html! {
        @if ok {
            p class="notice ok" role="status" { (text) }
        } @else {
            p class="notice error" role="alert" { (text) }
        }
    }
}
