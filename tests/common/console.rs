//! What the console tests share: a node with the console on and break-glass accounts, an HTTP
//! client that does not follow redirects, and reading a page's CSRF token and the audit chain.

use lienthong::audit::AuditRecord;
use lienthong::console::pages::login::hash_password;
use lienthong::store::{AuditQuery, Store};
use tokio::net::TcpListener;

use super::nodes::*;

pub const ADMIN: (&str, &str) = ("khancap", "Mật-khẩu khẩn cấp 2026");
pub const AUDITOR: (&str, &str) = ("giamsat", "giam-sat-mat-khau");
pub const CERT_ADMIN: (&str, &str) = ("chungthu", "chung-thu-mat-khau");

/// A Gia Lai node (Sở TT&TT, Sở Nội vụ) with the console on, its peer `nghean` at `peer_url`
/// (a running node's plain URL, or any address for a peer that never answers), and the
/// break-glass accounts [`ADMIN`] (quan_tri_he_thong), [`AUDITOR`] (giam_sat) and
/// [`CERT_ADMIN`] (quan_tri_chung_thu). `extra` is appended to the `[console]` table.
pub async fn console_node(peer_url: &str, extra: &str) -> TestNode {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    console_node_on(l, peer_url, extra).await
}

/// [`console_node`] on a listener the caller bound (to know the console's address before the
/// node starts, as an identity provider's client registration needs).
pub async fn console_node_on(l: TcpListener, peer_url: &str, extra: &str) -> TestNode {
    let hashes = [ADMIN, AUDITOR, CERT_ADMIN].map(|(_, p)| hash_password(p).unwrap());
    let public = format!("http://{}", l.local_addr().unwrap());
    let (peer_url, extra) = (peer_url.to_owned(), extra.to_owned());
    start(l, move |d| {
        let mut text = config_text("gialai", d, &gialai_departments(), ("nghean", &peer_url, NGHEAN));
        text += &format!("\n[console]\npublic_url = \"{public}\"\n{extra}\n");
        for ((user, _), (hash, role)) in [ADMIN, AUDITOR, CERT_ADMIN].iter().zip(
            hashes
                .iter()
                .zip(["quan_tri_he_thong", "giam_sat", "quan_tri_chung_thu"]),
        ) {
            text += &format!(
                "[[console.local]]\nuser = \"{user}\"\npassword_hash = \"{hash}\"\nrole = \"{role}\"\n"
            );
        }
        text
    })
    .await
}

/// A client that shows redirects instead of following them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `_csrf` value of the first form in a page.
pub fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"_csrf\" value=\"")
        .expect("a form with _csrf")
        + 20;
    page[at..].split('"').next().unwrap().to_owned()
}

/// The node's whole audit chain, oldest first.
pub async fn audit_records(n: &TestNode) -> Vec<AuditRecord> {
    n.store()
        .audit_records(&AuditQuery {
            since: None,
            until: None,
            after_seq: None,
            limit: 10_000,
        })
        .await
        .unwrap()
}

/// Signs in as a break-glass account and returns the session cookie (`lt_console=…`).
pub async fn session_of(n: &TestNode, user: &str, password: &str) -> String {
    let r = client()
        .post(n.url("/console/login"))
        .form(&[
            ("user", user),
            ("password", password),
            ("next", "/console/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        reqwest::StatusCode::SEE_OTHER,
        "signing in as {user}"
    );
    let c = r.headers()[reqwest::header::SET_COOKIE].to_str().unwrap();
    c.split(';').next().unwrap().to_owned()
}
