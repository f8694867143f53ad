//! Single sign-on to the web console against a real OpenID provider: oidc-provider (the
//! certified Node.js implementation, pinned in tests/console/package-lock.json) run by
//! tests/console/oidc/provider.mjs on loopback, and a Gia Lai node with `[console.oidc]`
//! pointing at it. Everything is driven over HTTP without a browser: the provider's own login
//! form is posted, its cookies are carried by hand, redirects are followed one by one.
//!
//! Needs Node.js ≥ 20 and `npm ci --prefix tests/console` (the README's test command runs it);
//! without them these tests fail and say so — they never pass by skipping.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::console::{audit_records, client, csrf_of};
use common::nodes::*;
use common::oidc::{Provider, accounts, oidc_table};
use lienthong::store::Store;
use reqwest::header::{LOCATION, SET_COOKIE};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const CLIENT_ID: &str = "lienthong-console";

/// Starts the provider with the console at `public` as its one client.
fn start_provider(public: &str) -> Provider {
    common::oidc::start_provider(&[(CLIENT_ID, public)], accounts())
}

/// A Gia Lai node (STTTT, Sở Nội vụ, UBND tỉnh) with the console signing in through the
/// provider; the console's `[console]` extra lines are `console_extra`.
async fn setup(console_extra: &str) -> (TestNode, Provider) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", l.local_addr().unwrap());
    let provider = start_provider(&public);
    let node = start_node(l, public, provider.issuer.clone(), console_extra).await;
    (node, provider)
}

async fn start_node(l: TcpListener, public: String, issuer: String, extra: &str) -> TestNode {
    let extra = extra.to_owned();
    start(l, move |d| {
        config_text(
            "gialai",
            d,
            &gialai_departments(),
            ("nghean", "http://127.0.0.1:9", NGHEAN),
        ) + &format!(
            "\n[console]\npublic_url = \"{public}\"\n{extra}\n\
             {}",
            oidc_table(&issuer, CLIENT_ID)
        )
    })
    .await
}

/// Cookies by name, as one browser keeps them for one host (paths are not needed here: no
/// two cookies of one host share a name).
#[derive(Default, Clone)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, r: &reqwest::Response) {
        for c in r.headers().get_all(SET_COOKIE) {
            let c = c.to_str().unwrap();
            let pair = c.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let lower = c.to_ascii_lowercase();
            if value.is_empty()
                || lower.contains("max-age=0")
                || lower.contains("expires=thu, 01 jan 1970")
            {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// One person's browser: the console's cookies and the provider's, kept apart by host:port.
#[derive(Default, Clone)]
struct Browser {
    console: Jar,
    provider: Jar,
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("a redirect, got {}", r.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

fn set_cookie_named(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("a {name} cookie"))
}

/// What happened at the provider: either it asked for the password (the login form's action
/// URL) or it sent the browser back to the console (the callback URL).
enum AtProvider {
    LoginForm(Url),
    Back(String),
}

/// Follows the provider's redirects from `url` until it shows its login form or sends the
/// browser back to `public`.
async fn walk_provider(b: &mut Browser, mut url: Url, public: &str) -> AtProvider {
    for _ in 0..10 {
        let r = client()
            .get(url.clone())
            .header("cookie", b.provider.header())
            .send()
            .await
            .unwrap();
        b.provider.take(&r);
        if r.status() == StatusCode::OK {
            let page = r.text().await.unwrap();
            assert!(page.contains("name=\"login\""), "the login form: {page}");
            return AtProvider::LoginForm(url);
        }
        assert!(r.status().is_redirection(), "{} at {url}", r.status());
        let to = url.join(&location(&r)).unwrap();
        if to.as_str().starts_with(public) {
            return AtProvider::Back(to.to_string());
        }
        url = to;
    }
    panic!("too many redirects at the provider");
}

/// Signs in at the provider's form (`form` from [`walk_provider`]) and returns the callback URL.
async fn submit_login(
    b: &mut Browser,
    form: Url,
    login: &str,
    password: &str,
    public: &str,
) -> String {
    let r = client()
        .post(form.clone())
        .header("cookie", b.provider.header())
        .form(&[("login", login), ("password", password)])
        .send()
        .await
        .unwrap();
    b.provider.take(&r);
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "the provider accepted {login}"
    );
    match walk_provider_from_redirect(b, form.join(&location(&r)).unwrap(), public).await {
        AtProvider::Back(cb) => cb,
        AtProvider::LoginForm(_) => panic!("the provider asked for the password again"),
    }
}

async fn walk_provider_from_redirect(b: &mut Browser, to: Url, public: &str) -> AtProvider {
    if to.as_str().starts_with(public) {
        AtProvider::Back(to.to_string())
    } else {
        walk_provider(b, to, public).await
    }
}

/// `GET /console/login/oidc?next=…`: checks the redirect to the provider and the binding
/// cookie, and returns the authorization URL.
async fn start_login(n: &TestNode, b: &mut Browser, next: &str, issuer: &str) -> Url {
    let r = client()
        .get(n.url(&format!("/console/login/oidc?next={}", urlencode(next))))
        .header("cookie", b.console.header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let binding = set_cookie_named(&r, "lt_oidc");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/console", "Max-Age=600"] {
        assert!(binding.contains(attr), "{binding}");
    }
    b.console.take(&r);
    let auth = Url::parse(&location(&r)).unwrap();
    assert!(
        auth.as_str().starts_with(&format!("{issuer}/auth?")),
        "{auth}"
    );
    let q: BTreeMap<String, String> = auth.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["scope"], "openid profile email");
    assert_eq!(q["redirect_uri"], n.url("/console/login/callback"));
    for k in ["state", "nonce", "code_challenge"] {
        assert!(q[k].len() >= 43, "{k} carries 256 random bits: {q:?}");
    }
    auth
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Back at the console with the provider's answer.
async fn callback(b: &mut Browser, url: &str) -> reqwest::Response {
    let r = client()
        .get(url)
        .header("cookie", b.console.header())
        .send()
        .await
        .unwrap();
    b.console.take(&r);
    r
}

/// The whole sign-in of `login` with a password: returns the console's answer to the callback.
async fn sign_in(
    n: &TestNode,
    p: &Provider,
    b: &mut Browser,
    login: &str,
    password: &str,
    next: &str,
) -> reqwest::Response {
    let public = n.url("");
    let public = public.trim_end_matches('/');
    let auth = start_login(n, b, next, &p.issuer).await;
    let back = match walk_provider(b, auth, public).await {
        AtProvider::LoginForm(form) => submit_login(b, form, login, password, public).await,
        AtProvider::Back(cb) => cb,
    };
    assert!(back.contains("code=") && back.contains("iss="), "{back}");
    callback(b, &back).await
}

async fn get_page(n: &TestNode, b: &Browser, path: &str) -> reqwest::Response {
    client()
        .get(n.url(path))
        .header("cookie", b.console.header())
        .send()
        .await
        .unwrap()
}

async fn audit(n: &TestNode) -> Vec<(String, String, Value)> {
    audit_records(n)
        .await
        .into_iter()
        .map(|r| {
            (
                r.actor,
                r.action,
                serde_json::from_str(&r.detail).unwrap_or(Value::Null),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_clerk_signs_in_through_the_provider_and_out_at_the_provider() {
    let (n, p) = setup("").await;
    let mut b = Browser::default();
    let r = sign_in(
        &n,
        &p,
        &mut b,
        "vanthu.stttt",
        "Mật khẩu Văn thư 1",
        "/console/?from=sso",
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&r),
        "/console/?from=sso",
        "back where the person was going"
    );
    let session = set_cookie_named(&r, "lt_console");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/console"] {
        assert!(session.contains(attr), "{session}");
    }

    let page = get_page(&n, &b, "/console/").await;
    assert_eq!(page.status(), StatusCode::OK);
    // The logout form's redirect to the provider is allowed by the page's policy (browsers
    // check a form's redirects against form-action), and nothing else is.
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains(&format!("form-action 'self' {};", p.issuer)),
        "{csp}"
    );
    let page = page.text().await.unwrap();
    assert!(page.contains("Trần Thị Thu Hà"), "{page}");
    assert!(page.contains("Văn thư"), "{page}");
    assert!(
        page.contains(STTTT),
        "the clerk's agency in the header: {page}"
    );
    assert!(
        !page.contains("Nhật ký giao nhận"),
        "a clerk has no administrator's navigation"
    );

    let records = audit(&n).await;
    let login = records
        .iter()
        .find(|(_, a, _)| a == "console.login")
        .expect("console.login recorded");
    assert_eq!(login.0, format!("console:van_thu:{STTTT}:u-vanthu-stttt"));
    assert_eq!(login.2["via"], "oidc");
    assert_eq!(login.2["agency"], STTTT);

    // Logout ends the console session, then the provider's (RP-initiated logout).
    let out = client()
        .post(n.url("/console/logout"))
        .header("cookie", b.console.header())
        .form(&[("_csrf", csrf_of(&page).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    b.console.take(&out);
    assert!(
        b.console.get("lt_console").is_none(),
        "session cookie removed"
    );
    let end = Url::parse(&location(&out)).unwrap();
    assert!(
        end.as_str()
            .starts_with(&format!("{}/session/end?", p.issuer)),
        "{end}"
    );
    let q: BTreeMap<String, String> = end.query_pairs().into_owned().collect();
    assert_eq!(q["id_token_hint"].split('.').count(), 3, "a JWT: {q:?}");
    assert_eq!(
        q["post_logout_redirect_uri"],
        n.url("/console/login?why=out")
    );
    assert_eq!(
        get_page(&n, &b, "/console/").await.status(),
        StatusCode::SEE_OTHER,
        "the console session ended"
    );

    // At the provider: its confirmation form, then back to the console's sign-in page.
    let r = client()
        .get(end.clone())
        .header("cookie", b.provider.header())
        .send()
        .await
        .unwrap();
    b.provider.take(&r);
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the provider accepted the id_token_hint"
    );
    let form = r.text().await.unwrap();
    let xsrf = form
        .split("name=\"xsrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the provider's logout form")
        .to_owned();
    let r = client()
        .post(end.join("/session/end/confirm").unwrap())
        .header("cookie", b.provider.header())
        .form(&[("xsrf", xsrf.as_str()), ("logout", "yes")])
        .send()
        .await
        .unwrap();
    b.provider.take(&r);
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let back = location(&r);
    assert!(back.starts_with(&n.url("/console/login?why=out")), "{back}");
    let page = client().get(&back).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Bạn đã đăng xuất."));

    // The provider's session is over: the next sign-in asks for the password again.
    let public = n.url("");
    let auth = start_login(&n, &mut b, "/console/", &p.issuer).await;
    assert!(matches!(
        walk_provider(&mut b, auth, public.trim_end_matches('/')).await,
        AtProvider::LoginForm(_)
    ));

    let records = audit(&n).await;
    assert!(records.iter().any(|(actor, a, _)| a == "console.logout"
        && actor == &format!("console:van_thu:{STTTT}:u-vanthu-stttt")));
    assert!(n.store().verify_audit().await.unwrap().is_ok());
    n.shutdown().await;
}

#[tokio::test]
async fn claims_map_to_roles_and_foreign_or_roleless_accounts_are_refused() {
    let (n, p) = setup("").await;

    // The role claim is a list: its first value in [console.oidc.roles] decides.
    let mut admin = Browser::default();
    let r = sign_in(&n, &p, &mut admin, "quantri", "QuanTri#2026", "/console/").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = get_page(&n, &admin, "/console/")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Lê Văn Đạt"), "{page}");
    assert!(page.contains("Quản trị hệ thống"), "{page}");
    assert!(
        page.contains("Nhật ký giao nhận"),
        "an administrator's navigation"
    );
    assert!(
        !page.contains(UBND_GL),
        "an administrator is the node's, not an agency's"
    );

    // A clerk of Nghệ An at Gia Lai's node.
    let mut foreign = Browser::default();
    let r = sign_in(
        &n,
        &p,
        &mut foreign,
        "vanthu.nghean",
        "NgheAn#2026",
        "/console/",
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(foreign.console.get("lt_console").is_none(), "no session");
    let text = r.text().await.unwrap();
    assert!(text.contains("Không có quyền truy cập"), "{text}");
    assert!(text.contains(NGHEAN), "{text}");
    assert_eq!(
        get_page(&n, &foreign, "/console/").await.status(),
        StatusCode::SEE_OTHER
    );

    // Nobody mapped a role for "nhan_vien".
    let mut roleless = Browser::default();
    let r = sign_in(
        &n,
        &p,
        &mut roleless,
        "nhanvien",
        "NhanVien#2026",
        "/console/",
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("chưa được cấp vai trò"));
    assert!(roleless.console.get("lt_console").is_none());

    let records = audit(&n).await;
    let failed: Vec<_> = records
        .iter()
        .filter(|(_, a, _)| a == "console.login_failed")
        .collect();
    assert_eq!(failed.len(), 2, "{records:?}");
    assert!(
        failed
            .iter()
            .any(|(actor, _, d)| actor == "console:oidc:u-vanthu-nghean"
                && d["agency"] == NGHEAN
                && d["via"] == "oidc")
    );
    assert!(
        failed
            .iter()
            .any(|(actor, _, d)| actor == "console:oidc:u-nhanvien"
                && d["roles"] == json!(["nhan_vien"]))
    );
    assert!(records.iter().any(|(actor, a, d)| a == "console.login"
        && actor == "console:quan_tri_he_thong:u-quantri"
        && d["role"] == "quan_tri_he_thong"));
    n.shutdown().await;
}

#[tokio::test]
async fn a_callback_is_bound_to_its_browser_used_once_and_from_the_configured_issuer() {
    let (n, p) = setup("").await;
    let public = n.url("");
    let public = public.trim_end_matches('/').to_owned();
    let mut b = Browser::default();
    let auth = start_login(&n, &mut b, "/console/", &p.issuer).await;
    let AtProvider::LoginForm(form) = walk_provider(&mut b, auth, &public).await else {
        panic!("the login form");
    };
    let back = submit_login(&mut b, form, "vanthu.stttt", "Mật khẩu Văn thư 1", &public).await;

    // Another browser (no binding cookie) cannot use this code and state: login CSRF.
    let mut other = Browser::default();
    let r = callback(&mut other, &back).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Phiên đăng nhập không hợp lệ")
    );
    assert!(other.console.get("lt_console").is_none());
    // The state was spent by that try: even the right browser cannot use it now.
    let r = callback(&mut b.clone(), &back).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A fresh login (the provider's session lets it through without the password), whose
    // answer claims to come from another issuer: refused (RFC 9207 mix-up defence).
    let auth = start_login(&n, &mut b, "/console/", &p.issuer).await;
    let AtProvider::Back(back) = walk_provider(&mut b, auth, &public).await else {
        panic!("single sign-on: no password asked the second time");
    };
    let mut cb = Url::parse(&back).unwrap();
    let pairs: Vec<(String, String)> = cb
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "iss" {
                (k, "http://127.0.0.1:9".to_owned())
            } else {
                (k, v)
            }
        })
        .collect();
    cb.query_pairs_mut().clear().extend_pairs(pairs);
    let r = callback(&mut b, cb.as_str()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(b.console.get("lt_console").is_none());
    let records = audit(&n).await;
    assert!(
        records
            .iter()
            .any(|(_, a, d)| a == "console.login_failed" && d["iss"] == "http://127.0.0.1:9")
    );
    assert!(!records.iter().any(|(_, a, _)| a == "console.login"));

    // And the untouched answer of a third login works.
    let r = sign_in(&n, &p, &mut b, "vanthu.stttt", "-", "/console/").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(b.console.get("lt_console").is_some());

    // Two tabs of one browser sign in at once: both answers are this browser's.
    let first = start_login(&n, &mut b, "/console/?tab=1", &p.issuer).await;
    let second = start_login(&n, &mut b, "/console/?tab=2", &p.issuer).await;
    for (auth, next) in [(second, "/console/?tab=2"), (first, "/console/?tab=1")] {
        let AtProvider::Back(back) = walk_provider(&mut b, auth, &public).await else {
            panic!("single sign-on");
        };
        let r = callback(&mut b, &back).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&r), next);
    }
    n.shutdown().await;
}

#[tokio::test]
async fn an_expired_session_sends_to_the_login_page() {
    let (n, p) = setup("idle_timeout = \"1s\"").await;
    let mut b = Browser::default();
    let r = sign_in(
        &n,
        &p,
        &mut b,
        "vanthu.stttt",
        "Mật khẩu Văn thư 1",
        "/console/",
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(get_page(&n, &b, "/console/").await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = get_page(&n, &b, "/console/").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/console/login?next=%2Fconsole%2F");
    // The provider's session outlives the console's: signing in again needs no password.
    let r = sign_in(&n, &p, &mut b, "vanthu.stttt", "-", "/console/").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(get_page(&n, &b, "/console/").await.status(), StatusCode::OK);
    n.shutdown().await;
}

#[tokio::test]
async fn a_provider_that_does_not_answer_is_said_in_vietnamese() {
    // Nothing listens on port 9 of loopback: the node starts all the same (discovery is read
    // when first needed), and a sign-in says the provider is not answering.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", l.local_addr().unwrap());
    let n = start_node(l, public, "http://127.0.0.1:9".into(), "").await;
    let login = client().get(n.url("/console/login")).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    assert!(
        login
            .text()
            .await
            .unwrap()
            .contains("/console/login/oidc?next=%2Fconsole%2F")
    );
    let r = client()
        .get(n.url("/console/login/oidc?next=/console/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert!(r.headers().get(SET_COOKIE).is_none());
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Không kết nối được hệ thống đăng nhập một lần")
    );
    // A callback nobody started is refused without a session.
    let r = client()
        .get(n.url("/console/login/callback?code=x&state=y"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get(SET_COOKIE).is_none());
    n.shutdown().await;
}
