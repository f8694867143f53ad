//! The clerks' pages of the web console over real HTTP on loopback, between two nodes in this
//! process (Nghệ An sends, Gia Lai receives, the outbox workers of both carry documents and
//! statuses over mutual TLS): Văn bản đến / Văn bản đi with the diacritics-insensitive search and
//! the Vietnam-time date filter, Chi tiết văn bản, Tiếp nhận / Trả lại / Hoàn thành, the scoping
//! of every read to the clerk's agency, and a forged form refused and audited.
//!
//! Clerks sign in only through the identity provider, so a clerk's session is started here on
//! the console's own session set (`console::router_with_sessions`), exactly what the sign-in
//! does once the provider has answered.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::nodes::*;
use lienthong::config::Role;
use lienthong::console::access::{Principal, Via};
use lienthong::console::pages::login::hash_password;
use lienthong::console::session::Sessions;
use lienthong::edxml::OrganId;
use lienthong::store::{AuditQuery, Store};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE, LOCATION};
use tokio::net::TcpListener;
use unicode_normalization::UnicodeNormalization as _;

/// The console of a node, served with sessions this test holds.
struct Console {
    base: String,
    sessions: Arc<Sessions>,
}

impl Console {
    async fn of(n: &TestNode) -> Console {
        let sessions = Arc::new(Sessions::new(
            Duration::from_secs(3600),
            Duration::from_secs(3600),
        ));
        let router: axum::Router =
            lienthong::console::router_with_sessions(n.node.clone(), sessions.clone())
                .expect("[console] is configured");
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(
                l,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        Console { base, sessions }
    }

    /// A clerk of `agency` signed in: the `Cookie` header value.
    fn clerk(&self, agency: &str) -> String {
        let id = self.sessions.create(
            Principal {
                subject: format!("van-thu-{agency}"),
                name: "Nguyễn Thị Văn Thư".into(),
                role: Role::Clerk,
                agency: Some(OrganId::parse_strict(agency).unwrap()),
                via: Via::Oidc,
            },
            None,
        );
        format!("lt_console={id}")
    }

    async fn get(&self, cookie: &str, path: &str) -> (StatusCode, String) {
        let r = client()
            .get(format!("{}{path}", self.base))
            .header(COOKIE, cookie)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn post(&self, cookie: &str, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        client()
            .post(format!("{}{path}", self.base))
            .header(COOKIE, cookie)
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `[console]` table of a node reached at `public`, with one break-glass administrator
/// (the configuration needs a way to sign in; clerks come through the provider).
fn console_table(public: &str) -> String {
    let hash = hash_password("khẩn cấp 2026").unwrap();
    format!(
        "\n[console]\npublic_url = \"{public}\"\n\
         [[console.local]]\nuser = \"khancap\"\npassword_hash = \"{hash}\"\nrole = \"quan_tri_he_thong\"\n"
    )
}

/// Gia Lai (Sở TT&TT, Sở Nội vụ) and Nghệ An, each with its console and its outbox worker.
async fn two_nodes() -> (TestNode, TestNode) {
    let gl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let na = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl_url = format!("http://{}", gl.local_addr().unwrap());
    let na_url = format!("http://{}", na.local_addr().unwrap());
    let (gl_c, na_c) = (console_table(&gl_url), console_table(&na_url));
    let gialai = start(gl, |d| {
        config_text(
            "gialai",
            d,
            &gialai_departments(),
            ("nghean", &na_url, NGHEAN),
        ) + &gl_c
    })
    .await
    .with_worker();
    let nghean = start(na, |d| {
        config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", &gl_url, UBND_GL),
        ) + &na_c
    })
    .await
    .with_worker();
    (gialai, nghean)
}

/// Nghệ An sends `subject` to Sở TT&TT Gia Lai with the PDF; its message id at Nghệ An.
async fn send(na: &TestNode, subject: &str) -> i64 {
    let r = ApiClient::new()
        .post(na.url("/api/v1/documents"))
        .bearer_auth(TOK_NGHEAN)
        .multipart(submission(&metadata(&[STTTT], subject), true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    json_of(r).await["id"].as_i64().unwrap()
}

/// Waits until `page` (fetched again and again) contains `what`; returns it.
async fn until_page(c: &Console, cookie: &str, path: &str, what: &str) -> String {
    let mut last = String::new();
    for _ in 0..150 {
        let (status, page) = c.get(cookie, path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        if page.contains(what) {
            return page;
        }
        last = page;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never showed {what:?}:\n{last}");
}

/// The id of the received document with `subject` in Sở TT&TT's inbox at Gia Lai.
async fn received_id(gl: &TestNode, subject: &str) -> (i64, i64) {
    for _ in 0..150 {
        let items = gl
            .store()
            .list_inbox(STTTT, &Default::default())
            .await
            .unwrap();
        if let Some(i) = items
            .iter()
            .find(|i| i.message.subject.as_deref() == Some(subject))
        {
            return (i.message.id, i.received_at);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{subject:?} never arrived");
}

/// A recipient state as the pages show it in a row or a heading (not as a filter option).
fn label(state: &str) -> String {
    format!("class=\"label-state\">{state}<")
}

fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"_csrf\" value=\"")
        .expect("a form with _csrf")
        + 20;
    page[at..].split('"').next().unwrap().to_owned()
}

fn q(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The day of `ms` in Vietnam's time, `dd/mm/yyyy`, shifted by `days`.
fn vietnam_day(ms: i64, days: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000 + days * 86_400)
        .unwrap()
        .to_offset(time::UtcOffset::from_hms(7, 0, 0).unwrap());
    format!("{:02}/{:02}/{}", t.day(), u8::from(t.month()), t.year())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clerk_finds_receives_and_completes_and_the_sender_sees_it() {
    let (gl, na) = two_nodes().await;
    let (glc, nac) = (Console::of(&gl).await, Console::of(&na).await);
    let stttt = glc.clerk(STTTT);
    let sonv = glc.clerk(SONV);
    let nghean = nac.clerk(NGHEAN);

    let subject = "Về việc phối hợp chuyển đổi số với tỉnh Gia Lai";
    let other = "Kế hoạch tổ chức hội nghị trực tuyến";
    send(&na, subject).await;
    send(&na, other).await;
    let (id, received_at) = received_id(&gl, subject).await;
    received_id(&gl, other).await;

    // Văn bản đến lists both, each waiting to be registered.
    let (status, page) = glc.get(&stttt, "/console/documents?tab=den").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(subject) && page.contains(other), "{page}");
    assert_eq!(
        page.matches(&label("Đã đến chờ tiếp nhận")).count(),
        2,
        "{page}"
    );
    assert!(page.contains("Ủy ban nhân dân tỉnh Nghệ An"), "{page}");

    // The search ignores case and diacritics, typed in NFC or NFD alike.
    let nfd: String = "Phối Hợp".nfd().collect();
    assert_ne!(nfd, "Phối Hợp".nfc().collect::<String>());
    for typed in [
        "phoi hop",
        "PHỐI HỢP",
        "Phối Hợp",
        nfd.as_str(),
        "gia  lai",
        "chuyen doi so",
    ] {
        let (_, page) = glc
            .get(
                &stttt,
                &format!("/console/documents?tab=den&q={}", q(typed)),
            )
            .await;
        assert!(page.contains(subject), "{typed:?} should find it");
        assert!(!page.contains(other), "{typed:?} should not find the other");
    }
    let (_, page) = glc
        .get(
            &stttt,
            &format!("/console/documents?q={}", q("phối hợp hội nghị")),
        )
        .await;
    assert!(!page.contains(subject) && page.contains("Không có văn bản đến nào phù hợp."));
    // Cơ quan gửi by a name without diacritics, and by code.
    let (_, page) = glc
        .get(
            &stttt,
            &format!(
                "/console/documents?cq={}",
                q("uy ban nhan dan tinh nghe an")
            ),
        )
        .await;
    assert!(page.contains(subject) && page.contains(other));
    let (_, page) = glc
        .get(&stttt, &format!("/console/documents?cq={}", q(UBND_GL)))
        .await;
    assert!(!page.contains(subject));

    // Dates are days of Vietnam's time: the day it arrived includes it, the next day and the
    // day before exclude it.
    let day = vietnam_day(received_at, 0);
    for (query, found) in [
        (format!("tu={}", q(&day)), true),
        (format!("den={}", q(&day)), true),
        (format!("tu={}&den={}", q(&day), q(&day)), true),
        (format!("tu={}", q(&vietnam_day(received_at, 1))), false),
        (format!("den={}", q(&vietnam_day(received_at, -1))), false),
    ] {
        let (_, page) = glc
            .get(&stttt, &format!("/console/documents?{query}"))
            .await;
        assert_eq!(page.contains(subject), found, "{query}");
    }
    let (_, page) = glc
        .get(&stttt, "/console/documents?tu=31%2F02%2F2026")
        .await;
    assert!(page.contains("không phải là một ngày hợp lệ"), "{page}");

    // Another agency of the same node sees nothing of it: not in its list, 404 on the detail
    // and on its files.
    let (status, page) = glc.get(&sonv, "/console/documents?tab=den").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains(subject) && !page.contains(other), "{page}");
    let (status, page) = glc.get(&sonv, &format!("/console/documents/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!page.contains(subject));
    let (status, _) = glc
        .get(&sonv, &format!("/console/documents/{id}/files/1"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Chi tiết văn bản: metadata, the file with its preview, the signature, the timeline.
    let (status, page) = glc.get(&stttt, &format!("/console/documents/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    for part in [
        subject,
        "Thông tin văn bản",
        "công văn.pdf",
        &format!("/console/documents/{id}/files/1?xem=1"),
        "Chữ ký số hợp lệ",
        "Quá trình xử lý",
        "Tiếp nhận",
        "Trả lại",
    ] {
        assert!(page.contains(part), "{part:?} missing:\n{page}");
    }
    let r = client()
        .get(format!("{}/console/documents/{id}/files/1?xem=1", glc.base))
        .header(COOKIE, &stttt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CONTENT_TYPE], "application/pdf");
    assert!(
        r.headers()[CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    assert_eq!(r.headers()["x-frame-options"], "SAMEORIGIN");
    assert_eq!(r.bytes().await.unwrap().as_ref(), PDF);
    let r = client()
        .get(format!("{}/console/documents/{id}/files/1", glc.base))
        .header(COOKIE, &stttt)
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()[CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(r.headers()["x-frame-options"], "DENY");

    // A forged form without the CSRF token: refused, audited, nothing reported.
    let path = format!("/console/documents/{id}/status");
    let r = glc.post(&stttt, &path, &[("code", "03")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let audit = gl
        .store()
        .audit_records(&AuditQuery::default())
        .await
        .unwrap();
    let refused = audit
        .iter()
        .find(|a| a.action == "console.forbidden" && a.detail.contains(&path))
        .expect("a console.forbidden record");
    assert!(refused.actor.contains(STTTT), "{}", refused.actor);
    // The other agency's clerk, with its own valid token: the document is not there for it.
    let (_, page) = glc.get(&sonv, "/console/documents").await;
    let sonv_csrf = csrf_of(&page);
    let r = glc
        .post(&sonv, &path, &[("_csrf", &sonv_csrf), ("code", "03")])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (_, page) = glc.get(&stttt, &format!("/console/documents/{id}")).await;
    assert!(page.contains(&label("Đã đến chờ tiếp nhận")));

    // Tiếp nhận, then Hoàn thành.
    let csrf = csrf_of(&page);
    let r = glc
        .post(&stttt, &path, &[("_csrf", &csrf), ("code", "03")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[LOCATION],
        format!("/console/documents/{id}?ok=03")
    );
    let (_, page) = glc
        .get(&stttt, &format!("/console/documents/{id}?ok=03"))
        .await;
    assert!(page.contains("Đã tiếp nhận văn bản"), "{page}");
    assert!(
        page.contains("Hoàn thành") && !page.contains(">Tiếp nhận<"),
        "{page}"
    );
    let (_, list) = glc.get(&stttt, "/console/documents?tt=registered").await;
    assert!(list.contains(subject) && !list.contains(other), "{list}");
    let r = glc
        .post(&stttt, &path, &[("_csrf", &csrf), ("code", "06")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = glc.get(&stttt, &format!("/console/documents/{id}")).await;
    assert!(page.contains(&label("Đã hoàn thành")), "{page}");
    // Out of order now (02 follows only 01): the node's refusal, in its Vietnamese words, on
    // the page.
    let r = glc
        .post(
            &stttt,
            &path,
            &[("_csrf", &csrf), ("code", "02"), ("reason", "Muộn")],
        )
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    let page = r.text().await.unwrap();
    assert!(page.contains("Không thực hiện được:"), "{page}");

    // Trả lại needs a reason; with one, the other document is returned.
    let (other_id, _) = received_id(&gl, other).await;
    let other_path = format!("/console/documents/{other_id}/status");
    let r = glc
        .post(
            &stttt,
            &other_path,
            &[("_csrf", &csrf), ("code", "02"), ("reason", " ")],
        )
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(r.text().await.unwrap().contains("Không thực hiện được:"));
    let r = glc
        .post(
            &stttt,
            &other_path,
            &[
                ("_csrf", &csrf),
                ("code", "02"),
                ("reason", "Gửi nhầm cơ quan"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = glc
        .get(&stttt, &format!("/console/documents/{other_id}"))
        .await;
    assert!(
        page.contains(&label("Bị trả lại")) && page.contains("Gửi nhầm cơ quan"),
        "{page}"
    );

    // The statuses reach the sender: its Văn bản đi shows them per recipient.
    let page = until_page(
        &nac,
        &nghean,
        "/console/documents?tab=di",
        &label("Đã hoàn thành"),
    )
    .await;
    assert!(page.contains(subject), "{page}");
    let page = until_page(
        &nac,
        &nghean,
        "/console/documents?tab=di",
        &label("Bị trả lại"),
    )
    .await;
    assert!(page.contains(other));
    let (_, page) = nac
        .get(
            &nghean,
            &format!("/console/documents?tab=di&tt=completed&q={}", q("gia lai")),
        )
        .await;
    assert!(page.contains(subject) && !page.contains(other), "{page}");
    // Its detail: the delivery with its attempt, and the recipient's statuses 01, 03, 06.
    let sent_id = na
        .store()
        .list_outgoing(NGHEAN, &Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.message.subject.as_deref() == Some(subject))
        .unwrap()
        .message
        .id;
    let (status, page) = nac
        .get(&nghean, &format!("/console/documents/{sent_id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    for part in [
        "Nơi nhận và giao nhận",
        "Đã chuyển đến",
        "01 Đã đến",
        "03 Đã tiếp nhận, vào sổ",
        "06 Đã xử lý xong",
        "Hiệu lực chứng thư",
    ] {
        assert!(page.contains(part), "{part:?} missing:\n{page}");
    }
    gl.shutdown().await;
    na.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_agreed_to_shows_revoked_on_both_sides() {
    let (gl, na) = two_nodes().await;
    let (glc, nac) = (Console::of(&gl).await, Console::of(&na).await);
    let stttt = glc.clerk(STTTT);
    let nghean = nac.clerk(NGHEAN);

    let subject = "Thông báo lịch họp giao ban tháng 12";
    let sent = send(&na, subject).await;
    let (id, _) = received_id(&gl, subject).await;
    // Thu hồi from the sender's Chi tiết văn bản: a reason is required; the revocation is
    // signed and sent to the same recipients.
    let (_, page) = nac
        .get(&nghean, &format!("/console/documents/{sent}"))
        .await;
    assert!(page.contains("Thu hồi văn bản"), "{page}");
    let csrf = csrf_of(&page);
    let at = page.find("name=\"key\" value=\"").unwrap() + 18;
    let key = page[at..].split('"').next().unwrap().to_owned();
    let revoke = format!("/console/documents/{sent}/revoke");
    let r = nac
        .post(
            &nghean,
            &revoke,
            &[("_csrf", &csrf), ("key", &key), ("reason", "")],
        )
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(r.text().await.unwrap().contains("Không thực hiện được:"));
    let r = nac
        .post(
            &nghean,
            &revoke,
            &[
                ("_csrf", &csrf),
                ("key", &key),
                ("reason", "Lịch họp thay đổi"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[LOCATION],
        format!("/console/documents/{sent}?ok=revoke")
    );

    // The revocation arrives as its own item, asking for an answer.
    let page = until_page(&glc, &stttt, "/console/documents?loai=1", subject).await;
    let row = "<td><a href=\"/console/documents/";
    let at = page.find(row).unwrap() + row.len();
    let revocation: i64 = page[at..].split('"').next().unwrap().parse().unwrap();
    assert_ne!(revocation, id);
    let (_, page) = glc
        .get(&stttt, &format!("/console/documents/{revocation}"))
        .await;
    assert!(
        page.contains("Cơ quan gửi đề nghị thu hồi văn bản") && page.contains("Lịch họp thay đổi"),
        "{page}"
    );
    assert!(
        !page.contains(">Tiếp nhận<"),
        "no processing on a revocation"
    );
    let csrf = csrf_of(&page);
    let r = glc
        .post(
            &stttt,
            &format!("/console/documents/{revocation}/status"),
            &[("_csrf", &csrf), ("code", "15")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = glc.get(&stttt, &format!("/console/documents/{id}")).await;
    assert!(page.contains(&label("Đã thu hồi")), "{page}");
    let (_, page) = glc
        .get(
            &stttt,
            &format!("/console/documents?tt=revoked&q={}", q("lich hop")),
        )
        .await;
    assert!(page.contains(subject), "{page}");

    // The sender sees its recipient agreed to the revocation.
    let page = until_page(
        &nac,
        &nghean,
        "/console/documents?tab=di&loai=0&tt=revoked",
        subject,
    )
    .await;
    assert!(page.contains(&label("Đã thu hồi")), "{page}");

    gl.shutdown().await;
    na.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clerk_sends_with_the_picker_and_a_pdf_and_the_recipients_receive_it() {
    let (gl, na) = two_nodes().await;
    let (glc, nac) = (Console::of(&gl).await, Console::of(&na).await);
    let stttt = glc.clerk(STTTT);
    let sonv = glc.clerk(SONV);
    let nghean = nac.clerk(NGHEAN);

    // The picker searches on the server: a name without diacritics finds the other department
    // of this node (not the clerk's own agency); a code in full finds one a peer serves.
    let (status, page) = glc
        .get(
            &stttt,
            &format!("/console/documents/new?tim={}", q("so noi vu")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Sở Nội vụ tỉnh Gia Lai"), "{page}");
    assert!(page.contains(&format!("chon={}", q(SONV))), "{page}");
    let (_, page) = glc
        .get(
            &stttt,
            &format!("/console/documents/new?tim={}", q("thong tin")),
        )
        .await;
    assert!(
        page.contains("Không tìm thấy cơ quan nào"),
        "its own agency is not offered"
    );
    let (_, page) = glc
        .get(
            &stttt,
            &format!("/console/documents/new?chon={}&tim={}", q(SONV), q(NGHEAN)),
        )
        .await;
    assert!(page.contains("Qua nút liên thông kết nối"), "{page}");
    // The agency registry (a province's holds 100,000 codes) is searched in the store, by a
    // name typed without diacritics; only a code this node has a route to is offered.
    for (code, name) in [
        ("000.00.12.H41", "Sở Tài nguyên và Môi trường tỉnh Nghệ An"),
        (
            "000.00.12.H99",
            "Sở Tài nguyên và Môi trường tỉnh Quảng Bình",
        ),
    ] {
        gl.store()
            .registry_set(
                lienthong::store::NewRegistryEntry {
                    code: code.into(),
                    name: name.into(),
                    rules: vec![lienthong::pki::binding::Rule::Fingerprint {
                        sha256: "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
                            .into(),
                        note: None,
                    }],
                },
                "admin:test",
                1,
            )
            .await
            .unwrap();
    }
    let (_, page) = glc
        .get(
            &stttt,
            &format!(
                "/console/documents/new?tim={}",
                q("tai nguyen va moi truong")
            ),
        )
        .await;
    assert!(
        page.contains("Sở Tài nguyên và Môi trường tỉnh Nghệ An"),
        "{page}"
    );
    assert!(page.contains("(Danh bạ đơn vị liên thông)"), "{page}");
    assert!(
        page.contains(&format!("chon={}", q("000.00.12.H41"))),
        "{page}"
    );
    assert!(!page.contains("Quảng Bình"), "no route leads there: {page}");
    let (_, page) = glc
        .get(
            &stttt,
            &format!("/console/documents/new?chon={}&chon={}", q(SONV), q(NGHEAN)),
        )
        .await;
    assert!(
        page.contains("Sở Nội vụ tỉnh Gia Lai (000.00.04.H21)"),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let at = page.find("name=\"key\" value=\"").unwrap() + 18;
    let key = page[at..].split('"').next().unwrap().to_owned();

    let subject = "Về việc triển khai nền tảng số dùng chung";
    let form = |with_csrf: bool| {
        let mut f = reqwest::multipart::Form::new();
        if with_csrf {
            f = f.text("_csrf", csrf.clone());
        }
        f.text("key", key.clone())
            .text("chon", SONV)
            .text("chon", NGHEAN)
            .text("notation", "STTTT-CĐS")
            .text("subject", subject)
            .text("content", "Kính gửi các cơ quan.")
            .text("priority", "1")
            .text("competence", "KT. GIÁM ĐỐC")
            .text("position", "PHÓ GIÁM ĐỐC")
            .text("signer", "Trần Văn Bình")
            .part(
                "file",
                reqwest::multipart::Part::bytes(PDF.to_vec())
                    .file_name("kế hoạch.pdf")
                    .mime_str("application/pdf")
                    .unwrap(),
            )
    };
    let send = |f: reqwest::multipart::Form| {
        client()
            .post(format!("{}/console/documents/new", glc.base))
            .header(COOKIE, &stttt)
            .multipart(f)
            .send()
    };
    // Without the token: refused and audited, nothing sent.
    let r = send(form(false)).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        gl.store()
            .list_outgoing(STTTT, &Default::default())
            .await
            .unwrap()
            .is_empty()
    );
    let r = send(form(true)).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(to.ends_with("?ok=sent"), "{to}");
    // The same form again (a second click): the first submission, nothing new.
    let again = send(form(true)).await.unwrap();
    assert_eq!(again.headers()[LOCATION].to_str().unwrap(), to);
    assert_eq!(
        gl.store()
            .list_outgoing(STTTT, &Default::default())
            .await
            .unwrap()
            .len(),
        1
    );

    let (_, page) = glc.get(&stttt, &to).await;
    assert!(
        page.contains(subject) && page.contains("kế hoạch.pdf"),
        "{page}"
    );
    assert!(
        page.contains("Khẩn") && page.contains("Trần Văn Bình"),
        "{page}"
    );
    // Both recipients get it: the department on this node, Nghệ An over its peer.
    until_page(&glc, &sonv, "/console/documents", subject).await;
    until_page(&nac, &nghean, "/console/documents", subject).await;
    let page = until_page(
        &glc,
        &stttt,
        "/console/documents?tab=di",
        &label("Đã đến chờ tiếp nhận"),
    )
    .await;
    assert!(page.contains(subject));

    // A refusal of the node comes back on the form with what was typed.
    let r = send(
        reqwest::multipart::Form::new()
            .text("_csrf", csrf.clone())
            .text("chon", SONV)
            .text("notation", "STTTT-CĐS")
            .text("subject", "")
            .text("signer", "Trần Văn Bình"),
    )
    .await
    .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Chưa gửi được:") && page.contains("Trần Văn Bình"),
        "{page}"
    );
    // More files than a package may carry, and a field longer than any form needs: said on the
    // form, nothing sent.
    let mut many = reqwest::multipart::Form::new()
        .text("_csrf", csrf.clone())
        .text("chon", SONV)
        .text("notation", "STTTT-CĐS")
        .text("subject", "Quá nhiều tệp")
        .text("signer", "Trần Văn Bình");
    for i in 0..=lienthong::edxml::xml::Limits::default().max_attachments {
        many = many.part(
            "file",
            reqwest::multipart::Part::bytes(PDF.to_vec())
                .file_name(format!("tep-{i}.pdf"))
                .mime_str("application/pdf")
                .unwrap(),
        );
    }
    let r = send(many).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("nhiều nhất 200 tệp"), "{page}");
    let r = send(
        reqwest::multipart::Form::new()
            .text("_csrf", csrf.clone())
            .text("chon", SONV)
            .text("notation", "STTTT-CĐS")
            .text("subject", "x".repeat(70_000))
            .text("signer", "Trần Văn Bình"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("dài quá 65.536 byte"));
    assert_eq!(
        gl.store()
            .list_outgoing(STTTT, &Default::default())
            .await
            .unwrap()
            .len(),
        1,
        "nothing more was sent"
    );

    // Thay thế: from the sent document, the same form with the recipients chosen, a reason.
    let sent_id: i64 = to
        .trim_start_matches("/console/documents/")
        .trim_end_matches("?ok=sent")
        .parse()
        .unwrap();
    // Cập nhật: nothing changed is the node's refusal; a new trích yếu goes out as an update,
    // which the recipients are asked to agree to (no processing on it).
    let (_, page) = glc
        .get(&stttt, &format!("/console/documents/{sent_id}"))
        .await;
    assert!(page.contains("Cập nhật văn bản"), "{page}");
    let update = |subject: &str| {
        reqwest::multipart::Form::new()
            .text("_csrf", csrf.clone())
            .text("key", format!("cap-nhat-{subject}"))
            .text("reason", "Sửa trích yếu")
            .text("subject", subject.to_owned())
    };
    let post_update = |f: reqwest::multipart::Form| {
        client()
            .post(format!("{}/console/documents/{sent_id}/update", glc.base))
            .header(COOKIE, &stttt)
            .multipart(f)
            .send()
    };
    let r = post_update(update(subject)).await.unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(r.text().await.unwrap().contains("Không thực hiện được:"));
    let updated = "Về việc triển khai nền tảng số dùng chung của tỉnh";
    let r = post_update(update(updated)).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()[LOCATION]
            .to_str()
            .unwrap()
            .ends_with("?ok=update")
    );
    let page = until_page(&glc, &sonv, "/console/documents?loai=2", updated).await;
    let row = "<td><a href=\"/console/documents/";
    let at = page.find(row).unwrap() + row.len();
    let uid: i64 = page[at..].split('"').next().unwrap().parse().unwrap();
    let (_, page) = glc.get(&sonv, &format!("/console/documents/{uid}")).await;
    assert!(
        page.contains("Cơ quan gửi đề nghị cập nhật văn bản")
            && page.contains(">Đồng ý<")
            && !page.contains(">Tiếp nhận<"),
        "{page}"
    );

    let (_, page) = glc
        .get(&stttt, &format!("/console/documents/{sent_id}"))
        .await;
    let at = page
        .find("/console/documents/new?thay_the=")
        .expect("a Thay thế link");
    let link = page[at..].split('"').next().unwrap().replace("&amp;", "&");
    let (status, page) = glc.get(&stttt, &link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Thay thế văn bản") && page.contains("Lý do thay thế"),
        "{page}"
    );
    assert!(
        page.contains("Sở Nội vụ tỉnh Gia Lai (000.00.04.H21)"),
        "{page}"
    );
    let at = page.find("name=\"key\" value=\"").unwrap() + 18;
    let key2 = page[at..].split('"').next().unwrap().to_owned();
    let replacement = "Về việc triển khai nền tảng số dùng chung (thay thế)";
    let r = send(
        reqwest::multipart::Form::new()
            .text("_csrf", csrf.clone())
            .text("key", key2)
            .text("thay_the", sent_id.to_string())
            .text("reason", "Bổ sung nơi nhận và thời hạn")
            .text("chon", SONV)
            .text("chon", NGHEAN)
            .text("notation", "STTTT-CĐS")
            .text("subject", replacement)
            .text("content", "Văn bản này thay thế văn bản đã gửi.")
            .text("signer", "Trần Văn Bình"),
    )
    .await
    .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    // Sở Nội vụ receives it as a replacement, asked to agree, and may also register it.
    let page = until_page(&glc, &sonv, "/console/documents?loai=3", replacement).await;
    let row = "<td><a href=\"/console/documents/";
    let at = page.find(row).unwrap() + row.len();
    let rid: i64 = page[at..].split('"').next().unwrap().parse().unwrap();
    let (_, page) = glc.get(&sonv, &format!("/console/documents/{rid}")).await;
    assert!(
        page.contains("Văn bản này thay thế một văn bản đã gửi")
            && page.contains("Bổ sung nơi nhận và thời hạn")
            && page.contains(">Đồng ý<")
            && page.contains(">Tiếp nhận<"),
        "{page}"
    );

    gl.shutdown().await;
    na.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lists_page_by_key_through_filters() {
    let (gl, na) = two_nodes().await;
    let glc = Console::of(&gl).await;
    let stttt = glc.clerk(STTTT);
    let http = ApiClient::new();
    // 53 documents from Sở Nội vụ to Sở TT&TT on the same node (the local route): every third
    // one about "chuyển đổi số".
    for i in 0..53 {
        let subject = if i % 3 == 0 {
            format!("Chuyển đổi số — đợt {i:02}")
        } else {
            format!("Công tác cán bộ — đợt {i:02}")
        };
        let mut meta = metadata(&[STTTT], &subject);
        meta["notation"] = serde_json::json!("SNV-TCCB");
        let r = http
            .post(gl.url("/api/v1/documents"))
            .bearer_auth(TOK_SONV)
            .multipart(submission(&meta, false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
    }
    let all_of = lienthong::store::InboxFilter {
        page: lienthong::store::Page {
            limit: 1000,
            before: None,
        },
        ..Default::default()
    };
    for _ in 0..300 {
        if gl.store().list_inbox(STTTT, &all_of).await.unwrap().len() == 53 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let subjects = |page: &str| -> Vec<String> {
        page.match_indices("— đợt ")
            .map(|(at, _)| page[at + "— đợt ".len()..at + "— đợt ".len() + 2].to_owned())
            .collect()
    };
    let next = |page: &str| -> Option<String> {
        let at = page.find("<p class=\"pager\"><a href=\"")? + 26;
        Some(page[at..].split('"').next()?.replace("&amp;", "&"))
    };
    // The clerk API pages the same inbox the same way: 53, each once.
    let mut api = Vec::new();
    let mut before = String::new();
    loop {
        let r = http
            .get(gl.url(&format!("/api/v1/inbox?per_page=50{before}")))
            .bearer_auth(TOK_STTTT)
            .send()
            .await
            .unwrap();
        let v = json_of(r).await;
        api.extend(
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_i64().unwrap()),
        );
        match v["next_before"].as_i64() {
            Some(n) => before = format!("&before={n}"),
            None => break,
        }
    }
    let mut distinct = api.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!((api.len(), distinct.len()), (53, 53), "{api:?}");
    // Every received one, 50 a page, each once.
    let mut path = "/console/documents?tab=den".to_owned();
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let (_, page) = glc.get(&stttt, &path).await;
        pages += 1;
        all.extend(subjects(&page));
        match next(&page) {
            Some(p) => path = p,
            None => break,
        }
    }
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!((all.len(), sorted.len(), pages), (53, 53, 2), "{all:?}");
    // Filtered: 18 of them, on one page, newest first.
    let (_, page) = glc
        .get(
            &stttt,
            &format!("/console/documents?q={}", q("chuyen doi so")),
        )
        .await;
    let found = subjects(&page);
    assert_eq!(found.len(), 18, "{found:?}");
    assert_eq!(found.first().map(String::as_str), Some("51"));
    assert!(next(&page).is_none());
    // Văn bản đi of Sở Nội vụ pages the same way.
    let sonv = glc.clerk(SONV);
    let (_, page) = glc.get(&sonv, "/console/documents?tab=di").await;
    assert_eq!(subjects(&page).len(), 50);
    let (_, page2) = glc.get(&sonv, &next(&page).expect("a second page")).await;
    assert_eq!(subjects(&page2), vec!["02", "01", "00"]);

    gl.shutdown().await;
    na.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_without_an_agency_sees_no_agency_s_documents() {
    let (gl, na) = two_nodes().await;
    let glc = Console::of(&gl).await;
    let subject = "Văn bản chỉ cơ quan nhận được xem";
    send(&na, subject).await;
    let (id, _) = received_id(&gl, subject).await;
    let auditor = glc.sessions.create(
        Principal {
            subject: "giamsat".into(),
            name: "Giám sát".into(),
            role: Role::Auditor,
            agency: None,
            via: Via::Oidc,
        },
        None,
    );
    let auditor = format!("lt_console={auditor}");
    for path in [
        "/console/documents".to_owned(),
        format!("/console/documents/{id}"),
    ] {
        let (status, page) = glc.get(&auditor, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(page.contains("không gắn với cơ quan nào"), "{page}");
        assert!(!page.contains(subject), "{path}: {page}");
    }
    // The auditor changes nothing: a report with a valid token is refused and audited.
    let (_, page) = glc.get(&auditor, "/console/documents").await;
    let r = glc
        .post(
            &auditor,
            &format!("/console/documents/{id}/status"),
            &[("_csrf", &csrf_of(&page)), ("code", "03")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let audit = gl
        .store()
        .audit_records(&AuditQuery::default())
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "console.forbidden" && a.actor.contains("giamsat")),
        "{audit:?}"
    );
    gl.shutdown().await;
    na.shutdown().await;
}

/// A document from Nghệ An put straight into this node's store, received at `at` by
/// `recipients` (the counters read the store; how it came is not theirs to know).
async fn received_at(n: &TestNode, number: &str, subject: &str, recipients: &[&str], at: i64) {
    use lienthong::store::{DocumentMeta, NewIncoming, SignedPackage};
    let text = format!("<edXML>{subject}</edXML>");
    n.store()
        .ingest_incoming(
            NewIncoming {
                revocation: Vec::new(),
                document: DocumentMeta {
                    sender: NGHEAN.into(),
                    document_id: format!("{NGHEAN},2026/12/01,{number}/UBND-VX"),
                    business_type: 0,
                    code_number: number.into(),
                    code_notation: "UBND-VX".into(),
                    code_year: 2026,
                    subject: subject.into(),
                },
                package: SignedPackage {
                    bytes: text.clone().into_bytes(),
                    signer_subject: None,
                    signer_fingerprint: None,
                    header_json: serde_json::json!({ "subject": subject }).to_string(),
                    signed_content: None,
                    channel: None,
                },
                local_recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
                peer: Some("nghean".into()),
                receipts: recipients
                    .iter()
                    .map(|r| format!("01 from {r}").into_bytes())
                    .collect(),
                actor: "peer:nghean".into(),
                received_sha256: None,
            },
            at,
        )
        .await
        .unwrap();
}

/// One counter of Tổng quan as the page renders it: its link (if any), number and label.
fn counter(href: Option<&str>, n: u64, label: &str) -> String {
    let inner = format!("<span class=\"n\">{n}</span><span class=\"label\">{label}</span>");
    match href {
        Some(h) => format!("<a href=\"{}\">{inner}</a>", h.replace('&', "&amp;")),
        None => format!("\">{inner}</li>"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tong_quan_counts_what_waits_for_tiep_nhan_and_links_to_exactly_it() {
    // One node without an outbox worker: what is sent stays as the test leaves it.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let c = console_table(&url);
    let gl = start(l, |d| {
        config_text(
            "gialai",
            d,
            &gialai_departments(),
            ("nghean", "http://127.0.0.1:9", NGHEAN),
        ) + &c
    })
    .await;
    let glc = Console::of(&gl).await;
    let now = lienthong::node::service::now_ms();
    let long_ago = now - 10 * 86_400_000;
    received_at(
        &gl,
        "11",
        "Văn bản cũ chưa tiếp nhận",
        &[STTTT, SONV],
        long_ago,
    )
    .await;
    received_at(&gl, "12", "Văn bản vừa đến", &[STTTT], now).await;
    received_at(&gl, "13", "Văn bản đã tiếp nhận", &[STTTT], long_ago).await;
    // Sở TT&TT received (03) the third.
    gl.store()
        .record_status(
            lienthong::store::NewStatus {
                direction: lienthong::store::Direction::Out,
                document_sender: NGHEAN.into(),
                document_id: format!("{NGHEAN},2026/12/01,13/UBND-VX"),
                reporter: STTTT.into(),
                code: 3,
                description: "Đã tiếp nhận".into(),
                reported_at: long_ago + 60_000,
                package: lienthong::store::SignedPackage {
                    bytes: b"<edXML>03</edXML>".to_vec(),
                    signer_subject: None,
                    signer_fingerprint: None,
                    header_json: "{}".into(),
                    signed_content: None,
                    channel: None,
                },
                deliveries: vec![lienthong::store::NewDelivery {
                    recipient: NGHEAN.into(),
                    route: "peer:nghean".into(),
                }],
                peer: None,
                actor: format!("clerk:{STTTT}:lan"),
                revocation: Vec::new(),
                on_business_type: None,
            },
            long_ago + 60_000,
        )
        .await
        .unwrap();
    // Sở TT&TT sent one ten days ago, delivered the same day, never received (03) there.
    let sent = gl
        .store()
        .submit_outgoing(
            lienthong::store::NewOutgoing {
                document: lienthong::store::DocumentMeta {
                    sender: STTTT.into(),
                    document_id: format!("{STTTT},2026/12/01,7/STTTT-CĐS"),
                    business_type: 0,
                    code_number: "7".into(),
                    code_notation: "STTTT-CĐS".into(),
                    code_year: 2026,
                    subject: "Văn bản đi chưa được tiếp nhận".into(),
                },
                package: lienthong::store::SignedPackage {
                    bytes: b"<edXML>7</edXML>".to_vec(),
                    signer_subject: None,
                    signer_fingerprint: None,
                    header_json: "{}".into(),
                    signed_content: None,
                    channel: None,
                },
                deliveries: vec![lienthong::store::NewDelivery {
                    recipient: NGHEAN.into(),
                    route: "peer:nghean".into(),
                }],
                idempotency_key: None,
                request: None,
                actor: format!("clerk:{STTTT}:lan"),
                numbering: lienthong::store::Numbering::Given,
                from_draft: None,
            },
            long_ago,
        )
        .await
        .unwrap();
    for claim in gl
        .store()
        .claim_due(long_ago, 10, "outbox:test", 60_000)
        .await
        .unwrap()
    {
        gl.store()
            .mark_delivered(claim.lease, b"01".to_vec(), long_ago + 1)
            .await
            .unwrap();
    }

    // The clerk of Sở TT&TT: its agency's numbers, each a link to its list.
    let stttt = glc.clerk(STTTT);
    let (status, page) = glc.get(&stttt, "/console/").await;
    assert_eq!(status, StatusCode::OK);
    for (href, n, label) in [
        ("/console/documents?tab=den&tt=arrived", 2, "Chờ tiếp nhận"),
        (
            "/console/documents?tab=den&tt=late",
            1,
            "Chậm tiếp nhận (văn bản đến)",
        ),
        (
            "/console/documents?tab=di&tt=late",
            1,
            "Chậm tiếp nhận (văn bản đi)",
        ),
    ] {
        assert!(
            page.contains(&counter(Some(href), n, label)),
            "{label}: {page}"
        );
    }
    assert!(page.contains("hệ thống không biết ngày nghỉ lễ"), "{page}");
    // Each link lists exactly what it counted.
    let (_, late_in) = glc.get(&stttt, "/console/documents?tab=den&tt=late").await;
    assert!(late_in.contains("Văn bản cũ chưa tiếp nhận"), "{late_in}");
    assert!(!late_in.contains("Văn bản vừa đến"));
    assert!(!late_in.contains("Văn bản đã tiếp nhận"));
    assert!(
        late_in.contains("<option value=\"late\" selected>Chậm tiếp nhận</option>"),
        "the filter shows what is filtered: {late_in}"
    );
    let (_, waiting) = glc
        .get(&stttt, "/console/documents?tab=den&tt=arrived")
        .await;
    assert!(waiting.contains("Văn bản cũ chưa tiếp nhận") && waiting.contains("Văn bản vừa đến"));
    assert!(!waiting.contains("Văn bản đã tiếp nhận"));
    let (_, late_out) = glc.get(&stttt, "/console/documents?tab=di&tt=late").await;
    assert!(
        late_out.contains("Văn bản đi chưa được tiếp nhận"),
        "{late_out}"
    );
    assert_eq!(sent.deliveries.len(), 1);

    // Sở Nội vụ's clerk: only its own copy of the old one.
    let sonv = glc.clerk(SONV);
    let (_, page) = glc.get(&sonv, "/console/").await;
    for (href, n, label) in [
        ("/console/documents?tab=den&tt=arrived", 1, "Chờ tiếp nhận"),
        (
            "/console/documents?tab=den&tt=late",
            1,
            "Chậm tiếp nhận (văn bản đến)",
        ),
        (
            "/console/documents?tab=di&tt=late",
            0,
            "Chậm tiếp nhận (văn bản đi)",
        ),
    ] {
        assert!(
            page.contains(&counter(Some(href), n, label)),
            "{label}: {page}"
        );
    }

    // An administrator: the whole node's, as plain numbers (no list shows every agency's).
    let admin = glc.sessions.create(
        Principal {
            subject: "quantri".into(),
            name: "Quản trị".into(),
            role: Role::SystemAdmin,
            agency: None,
            via: Via::Oidc,
        },
        None,
    );
    let (_, page) = glc.get(&format!("lt_console={admin}"), "/console/").await;
    for (n, label) in [
        (3, "Chờ tiếp nhận"),
        (2, "Chậm tiếp nhận (văn bản đến)"),
        (1, "Chậm tiếp nhận (văn bản đi)"),
    ] {
        assert!(page.contains(&counter(None, n, label)), "{label}: {page}");
    }
    assert!(
        !page.contains("/console/documents?tab=den&amp;tt="),
        "{page}"
    );
    gl.shutdown().await;
}
