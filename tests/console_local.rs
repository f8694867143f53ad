//! The web console over real HTTP on loopback, without a browser: the break-glass sign-in
//! (argon2, rate limit), sessions, CSRF on forms, the security headers, and every refusal in
//! the audit chain. (The browser walks and single sign-on are in `console_browser.rs` and
//! `console_oidc.rs`.)

mod common;

use common::console::*;
use common::nodes::*;
use lienthong::store::Store;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use tokio::net::TcpListener;

const ADMIN_PASSWORD: &str = ADMIN.1;
const AUDITOR_PASSWORD: &str = AUDITOR.1;

/// A Gia Lai node with the console on and the break-glass accounts of `common::console`.
async fn node() -> TestNode {
    node_with_peer("http://127.0.0.1:9").await
}

/// [`node`] whose peer `nghean` is at `peer_url` (a running node's plain URL: its mutual-TLS
/// endpoint is used).
async fn node_with_peer(peer_url: &str) -> TestNode {
    console_node(peer_url, "").await
}

fn session_cookie(r: &reqwest::Response) -> String {
    let c = r
        .headers()
        .get(SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap();
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Path=/console"),
        "{c}"
    );
    c.split(';').next().unwrap().to_owned()
}

async fn sign_in(n: &TestNode, user: &str, password: &str) -> reqwest::Response {
    client()
        .post(n.url("/console/login"))
        .form(&[
            ("user", user),
            ("password", password),
            ("next", "/console/"),
        ])
        .send()
        .await
        .unwrap()
}

async fn audit_actions(n: &TestNode) -> Vec<(String, String, String)> {
    audit_records(n)
        .await
        .into_iter()
        .map(|r| (r.actor, r.action, r.detail))
        .collect()
}

#[tokio::test]
async fn a_page_without_a_session_sends_to_sign_in_and_back() {
    let n = node().await;
    let r = client()
        .get(n.url("/console/?tab=failed"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[LOCATION],
        "/console/login?next=%2Fconsole%2F%3Ftab%3Dfailed"
    );
    let r = client().get(n.url("/console/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let page = r.text().await.unwrap();
    assert!(page.contains("<html lang=\"vi\">"), "{page}");
    assert!(page.contains("Tài khoản quản trị khẩn cấp"));
    assert!(!page.contains("<script>"), "no inline script");
    n.shutdown().await;
}

#[tokio::test]
async fn break_glass_sign_in_overview_and_logout_are_audited() {
    let n = node().await;
    let wrong = sign_in(&n, "khancap", "sai mật khẩu").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("Tên đăng nhập hoặc mật khẩu không đúng.")
    );
    let unknown = sign_in(&n, "khong-co", ADMIN_PASSWORD).await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

    let ok = sign_in(&n, "khancap", ADMIN_PASSWORD).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()[LOCATION], "/console/");
    let cookie = session_cookie(&ok);
    let page = client()
        .get(n.url("/console/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("<h1>Tổng quan</h1>"), "{page}");
    assert!(page.contains("Quản trị hệ thống"));
    assert!(
        page.contains("Nhật ký giao nhận"),
        "an administrator's navigation"
    );

    // Logout needs the session's CSRF token: without it the session goes on.
    let forged = client()
        .post(n.url("/console/logout"))
        .header("cookie", &cookie)
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let out = client()
        .post(n.url("/console/logout"))
        .header("cookie", &cookie)
        .form(&[("_csrf", csrf_of(&page).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        out.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = client()
        .get(n.url("/console/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER, "the session ended");

    let actions = audit_actions(&n).await;
    let count = |a: &str| actions.iter().filter(|(_, x, _)| x == a).count();
    assert_eq!(count("console.login_failed"), 2, "{actions:?}");
    assert_eq!(count("console.login"), 1);
    assert_eq!(count("console.logout"), 1);
    assert!(
        actions
            .iter()
            .any(|(actor, a, _)| a == "console.login" && actor == "console:local:khancap")
    );
    assert!(n.store().verify_audit().await.unwrap().is_ok());
    n.shutdown().await;
}

#[tokio::test]
async fn guessing_a_password_is_held_back() {
    let n = node().await;
    for _ in 0..5 {
        assert_eq!(
            sign_in(&n, "khancap", "doan-mo").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Even the right password waits now: the account is held, not the guesser identified.
    let held = sign_in(&n, "khancap", ADMIN_PASSWORD).await;
    assert_eq!(held.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(held.text().await.unwrap().contains("thử lại sau"));
    // Another account is not held by this one's failures.
    assert_eq!(
        sign_in(&n, "giamsat", AUDITOR_PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    n.shutdown().await;
}

#[tokio::test]
async fn a_login_post_from_another_site_is_refused() {
    let n = node().await;
    let r = client()
        .post(n.url("/console/login"))
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .form(&[("user", "khancap"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get(SET_COOKIE).is_none());
    n.shutdown().await;
}

#[tokio::test]
async fn static_files_and_unknown_pages() {
    let n = node().await;
    let css = client()
        .get(n.url("/console/static/app.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let js = client()
        .get(n.url("/console/static/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    let missing = client()
        .get(n.url("/console/khong-co"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .contains("Không tìm thấy trang")
    );
    let bare = client().get(n.url("/console")).send().await.unwrap();
    assert!(bare.status().is_redirection());
    n.shutdown().await;
}

#[tokio::test]
async fn a_peer_test_is_an_administrators_and_is_audited() {
    let n = node().await;
    let admin = session_cookie(&sign_in(&n, "khancap", ADMIN_PASSWORD).await);
    let auditor = session_cookie(&sign_in(&n, "giamsat", AUDITOR_PASSWORD).await);
    let page_of = |cookie: String| {
        let url = n.url("/console/registry");
        async move {
            client()
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let admin_page = page_of(admin.clone()).await;
    assert!(admin_page.contains("Kiểm tra kết nối"), "{admin_page}");
    let auditor_page = page_of(auditor.clone()).await;
    assert!(
        !auditor_page.contains("Kiểm tra kết nối"),
        "hidden from the auditor"
    );

    // The administrator tests the peer (its URL here is not https: the test says at which step).
    let tested = client()
        .post(n.url("/console/registry/peers/nghean/test"))
        .header("cookie", &admin)
        .form(&[("_csrf", csrf_of(&admin_page).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(tested.status(), StatusCode::OK);
    let tested = tested.text().await.unwrap();
    assert!(
        tested.contains("không thành công ở bước kết nối mạng"),
        "{tested}"
    );
    // The auditor's forged POST, with its own valid CSRF token and without one: refused.
    for csrf in [csrf_of(&auditor_page), String::new()] {
        let forged = client()
            .post(n.url("/console/registry/peers/nghean/test"))
            .header("cookie", &auditor)
            .form(&[("_csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    }
    let actions = audit_actions(&n).await;
    assert_eq!(
        actions
            .iter()
            .filter(|(_, a, _)| a == "console.peer_test")
            .count(),
        1
    );
    let refused: Vec<_> = actions
        .iter()
        .filter(|(actor, a, _)| a == "console.forbidden" && actor == "console:local:giamsat")
        .collect();
    assert_eq!(refused.len(), 2, "{actions:?}");
    assert!(refused.iter().any(|(_, _, d)| d.contains("CSRF")));
    assert!(
        refused
            .iter()
            .any(|(_, _, d)| d.contains("does not have this right"))
    );
    n.shutdown().await;
}

#[tokio::test]
async fn a_peer_that_answers_passes_the_connection_test() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl_placeholder = "http://127.0.0.1:9".to_owned();
    let nghean = start(l, move |d| {
        config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", &gl_placeholder, UBND_GL),
        )
    })
    .await;
    let n = node_with_peer(&nghean.base).await;
    let admin = session_cookie(&sign_in(&n, "khancap", ADMIN_PASSWORD).await);
    let page = client()
        .get(n.url("/console/registry"))
        .header("cookie", &admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let tested = client()
        .post(n.url("/console/registry/peers/nghean/test"))
        .header("cookie", &admin)
        .form(&[("_csrf", csrf_of(&page).as_str())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        tested.contains("thành công: bắt tay TLS hai chiều và định danh của nút đúng như cấu hình"),
        "{tested}"
    );
    n.shutdown().await;
    nghean.shutdown().await;
}

/// Every administrator role × every page and form of the console: what `access::allows` says is
/// what the server does — a GET of a page the role lacks is 403, a POST it lacks is 403 even
/// with a valid CSRF token, and any POST without the token is 403; every refusal is audited.
#[tokio::test]
async fn the_role_matrix_holds_on_the_server() {
    use lienthong::config::Role;
    use lienthong::console::access::{Action, allows};
    let n = node().await;
    // One delivery to act on (its peer never answers; no outbox runs).
    let r = reqwest::Client::new()
        .post(n.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .multipart(submission(
            &metadata(&[NGHEAN], "V/v thử phân quyền"),
            false,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = n
        .store()
        .list_deliveries(&Default::default())
        .await
        .unwrap()[0]
        .id;
    let accounts = [
        ("khancap", ADMIN_PASSWORD, Role::SystemAdmin),
        (CERT_ADMIN.0, CERT_ADMIN.1, Role::CertificateAdmin),
        ("giamsat", AUDITOR_PASSWORD, Role::Auditor),
    ];
    let pages = [
        ("/console/", Action::ViewOverview),
        ("/console/deliveries", Action::ViewDeliveries),
        ("/console/deliveries.csv", Action::ViewDeliveries),
        ("/console/deliveries.xlsx", Action::ViewDeliveries),
        ("/console/audit", Action::ViewAudit),
        ("/console/registry", Action::ViewRegistry),
        ("/console/certificates", Action::ViewCertificates),
    ];
    /// A form: where it posts, the right it needs, its fields besides `_csrf`.
    type Post<'a> = (String, Action, Vec<(&'a str, &'a str)>);
    let posts: Vec<Post> = vec![
        (
            format!("/console/deliveries/{id}/retry"),
            Action::RetryDelivery,
            vec![],
        ),
        (
            format!("/console/deliveries/{id}/cancel"),
            Action::CancelDelivery,
            vec![("reason", "thử")],
        ),
        ("/console/audit/verify".into(), Action::VerifyAudit, vec![]),
        (
            "/console/registry/peers/nghean/test".into(),
            Action::TestPeer,
            vec![],
        ),
    ];
    let mut refusals = 0;
    for (user, password, role) in accounts {
        let cookie = session_cookie(&sign_in(&n, user, password).await);
        let overview = client()
            .get(n.url("/console/"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = csrf_of(&overview);
        for (path, action) in pages {
            let got = client()
                .get(n.url(path))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap()
                .status();
            let want_ok = allows(role, action);
            assert_eq!(
                got == StatusCode::FORBIDDEN,
                !want_ok,
                "{role:?} GET {path}: {got}"
            );
            refusals += usize::from(!want_ok);
        }
        for (path, action, extra) in &posts {
            for with_token in [true, false] {
                let mut form: Vec<(&str, &str)> = extra.clone();
                if with_token {
                    form.push(("_csrf", csrf.as_str()));
                }
                let got = client()
                    .post(n.url(path))
                    .header("cookie", &cookie)
                    .form(&form)
                    .send()
                    .await
                    .unwrap()
                    .status();
                let want_ok = with_token && allows(role, *action);
                assert_eq!(
                    got == StatusCode::FORBIDDEN,
                    !want_ok,
                    "{role:?} POST {path} (token: {with_token}): {got}"
                );
                refusals += usize::from(!want_ok);
            }
        }
    }
    let audited = audit_actions(&n)
        .await
        .into_iter()
        .filter(|(_, a, _)| a == "console.forbidden")
        .count();
    assert_eq!(audited, refusals, "every refusal is in the audit chain");
    n.shutdown().await;
}

/// The `[mail]` tables of a node whose bridge has a relay, a mailbox and two mail routes; no
/// mail server is needed to show them.
const MAIL: &str = r#"
[mail]
from = "lienthong@gialai.gov.vn"

[mail.smtp]
host = "mail.gialai.gov.vn"
user = "lienthong@gialai.gov.vn"
password = "Smtp-Bi-Mat-8f3a"

[mail.imap]
host = "imap.gialai.gov.vn"
user = "vanthu@gialai.gov.vn"
password = "Imap-Bi-Mat-2c91"

[[mail.route]]
code = "000.03.21.H21"
name = "Ủy ban nhân dân xã Ia Kha"
to = "mail:xa-iakha@gialai.gov.vn"

[[mail.route]]
code = "000.03.22.H21"
to = "mail:xa-iagrai@gialai.gov.vn"
"#;

#[tokio::test]
async fn the_registry_page_shows_the_mail_bridge_and_never_its_passwords() {
    // Without [mail], no section.
    let plain = node().await;
    let admin = session_cookie(&sign_in(&plain, "khancap", ADMIN_PASSWORD).await);
    let page = client()
        .get(plain.url("/console/registry"))
        .header("cookie", &admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Nút kết nối"), "{page}");
    assert!(!page.contains("Cầu nối thư điện tử"), "{page}");
    plain.shutdown().await;

    let n = console_node("http://127.0.0.1:9", MAIL).await;
    for (user, password) in [("khancap", ADMIN_PASSWORD), ("giamsat", AUDITOR_PASSWORD)] {
        let cookie = session_cookie(&sign_in(&n, user, password).await);
        let r = client()
            .get(n.url("/console/registry"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let page = r.text().await.unwrap();
        assert!(
            page.contains("<h2 id=\"mail\">Cầu nối thư điện tử công vụ</h2>"),
            "{page}"
        );
        assert!(
            page.contains("Gửi từ địa chỉ lienthong@gialai.gov.vn."),
            "{page}"
        );
        assert!(
            page.contains(
                "Máy chủ gửi thư (SMTP): mail.gialai.gov.vn:587 · STARTTLS · có đăng nhập"
            ),
            "{page}"
        );
        assert!(
            page.contains(
                "Hộp thư nhận (IMAP): imap.gialai.gov.vn:993 · TLS ngay từ đầu kết nối · có đăng nhập"
            ),
            "{page}"
        );
        assert!(
            page.contains(
                "<td>000.03.21.H21</td><td>Ủy ban nhân dân xã Ia Kha</td><td>xa-iakha@gialai.gov.vn</td>"
            ),
            "{page}"
        );
        assert!(
            page.contains("<td>000.03.22.H21</td><td><span class=\"hint\">(không ghi tên)</span></td><td>xa-iagrai@gialai.gov.vn</td>"),
            "{page}"
        );
        for secret in ["Smtp-Bi-Mat-8f3a", "Imap-Bi-Mat-2c91", "Bi-Mat"] {
            assert!(!page.contains(secret), "{user}: the page shows a password");
        }
    }
    n.shutdown().await;
}
