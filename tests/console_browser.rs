//! The web console in a real browser: Debian's headless Chromium driven by playwright-core
//! (`tests/console/browser/walk.mjs`), against nodes served on loopback. Every page reached is
//! checked for its status, for console errors (a Content-Security-Policy violation shows there),
//! with axe-core (no serious or critical violation), and at 1366×768; everything is done with
//! the keyboard only (Tab, typing, Enter, Space); pages are checked for horizontal overflow at
//! phone width.
//!
//! The walks: every administrator's page; a clerk's whole path between two nodes signing in
//! through a real OpenID provider (send with a PDF, delivered, received and completed at the
//! other node, 03 and 06 back), with the Vietnamese search in NFC, NFD and without diacritics
//! and a date filter at midnight in Vietnam; an administrator finding a failed delivery by
//! filter and sending it again; and the role matrix — each role × each page and each form,
//! forged POSTs sent by the page itself with and without the CSRF token.
//!
//! Needs `node`, `/usr/bin/chromium` and `npm ci --prefix tests/console`: `scripts/test.sh`
//! installs them. Missing, the test fails saying what to run — it never skips.
//! With `LIENTHONG_CONSOLE_SCREENSHOTS=DIR` the screenshots are written there (`scripts/test.sh`
//! writes `docs/console/screenshots/`, which the README shows); otherwise to a temporary folder.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::console::*;
use common::nodes::*;
use common::oidc::{Provider, accounts, oidc_table, start_provider};
use lienthong::config::Role;
use lienthong::console::access::{Action, allows};
use lienthong::node::service::now_ms;
use lienthong::store::{DeliveryError, Store};
use serde_json::{Value, json};
use tokio::net::TcpListener;

fn harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

/// Fails (never skips) when the browser or the harness is missing.
fn require_browser() {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).is_file(),
        "{chromium} is missing: apt-get install chromium chromium-driver (scripts/test.sh does)"
    );
    assert!(
        Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "node is missing: apt-get install nodejs npm (scripts/test.sh does)"
    );
    assert!(
        harness().join("node_modules/playwright-core").is_dir()
            && harness().join("node_modules/axe-core").is_dir(),
        "the browser harness is not installed: npm ci --prefix tests/console (scripts/test.sh does)"
    );
}

/// A Gia Lai node with the console (`common::console`) and its base URL.
async fn browser_node() -> (TestNode, String) {
    let node = console_node("http://127.0.0.1:9", "").await;
    let base = node.base.clone();
    (node, base)
}

/// Runs the walk of `plan`; returns the failed checks (each a JSON line of walk.mjs).
fn walk(plan: &Value) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let plan_file = dir.path().join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).unwrap();
    let out = Command::new("node")
        .arg(harness().join("browser/walk.mjs"))
        .arg(&plan_file)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let checks: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        !checks.is_empty(),
        "walk.mjs reported nothing (exit {:?}); stderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let failed: Vec<Value> = checks.into_iter().filter(|c| c["ok"] != true).collect();
    assert_eq!(
        out.status.success(),
        failed.is_empty(),
        "exit status and checks disagree; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    failed
}

fn screenshots() -> (Option<tempfile::TempDir>, String) {
    match std::env::var("LIENTHONG_CONSOLE_SCREENSHOTS") {
        Ok(d) if !d.is_empty() => (None, d),
        _ => {
            let t = tempfile::tempdir().unwrap();
            let p = t.path().display().to_string();
            (Some(t), p)
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_passes_axe_under_its_csp_with_keyboard_sign_in() {
    require_browser();
    let (node, base) = browser_node().await;
    // Documents waiting to be sent (no outbox worker runs here), so the lists have rows.
    for subject in [
        "V/v triển khai liên thông văn bản điện tử năm 2027",
        "V/v báo cáo tình hình ứng dụng chữ ký số",
        "V/v tập huấn sử dụng hệ thống quản lý văn bản",
    ] {
        let r = reqwest::Client::new()
            .post(node.url("/api/v1/documents"))
            .bearer_auth(TOK_STTTT)
            .multipart(submission(&metadata(&[NGHEAN], subject), true))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }
    let (_keep, shots) = screenshots();
    let plan = json!({
        "base": base,
        "screenshots": shots,
        "walks": [
            {
                "login_page": "dang-nhap",
                "account": { "user": ADMIN.0, "password": ADMIN.1 },
                "pages": [
                    { "path": "/console/", "screenshot": "tong-quan-quan-tri",
                      "contains": ["Tổng quan", "Gửi lỗi", "Bị trả lại", "Chứng thư sắp hết hạn", "Quản trị hệ thống"] },
                    { "path": "/console/deliveries", "screenshot": "nhat-ky-giao-nhan",
                      "contains": ["Nhật ký giao nhận", "000.00.00.H41"] },
                    { "path": "/console/audit", "screenshot": "nhat-ky-kiem-toan",
                      "contains": ["console.login"],
                      "press": "Kiểm tra chuỗi", "then": ["Chuỗi nhật ký kiểm toán toàn vẹn"],
                      "then_screenshot": "kiem-tra-chuoi" },
                    { "path": "/console/certificates", "screenshot": "khoa-va-chung-thu",
                      "contains": ["Chứng thư gốc tin cậy", "Chứng thư ký số của cơ quan"] },
                    { "path": "/console/registry", "screenshot": "don-vi-lien-thong",
                      "contains": ["Nút kết nối", "nghean", "Kiểm tra kết nối"] },
                    { "path": "/console/khong-co-trang-nay", "status": 404, "contains": ["Không tìm thấy trang"] }
                ],
                "phone": ["/console/", "/console/login"]
            },
            {
                "account": { "user": AUDITOR.0, "password": AUDITOR.1 },
                "pages": [
                    { "path": "/console/", "screenshot": "tong-quan-giam-sat", "contains": ["Giám sát"] },
                    { "path": "/console/registry", "contains": ["nghean"], "absent": ["Kiểm tra kết nối"] }
                ]
            }
        ]
    });
    let failed = tokio::task::spawn_blocking(move || walk(&plan))
        .await
        .unwrap();
    assert!(failed.is_empty(), "failed checks: {failed:#?}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_check_fails_the_walk() {
    // The walk must be able to fail: a page that is not there, and a text that is not on it.
    require_browser();
    let (node, base) = browser_node().await;
    let plan = json!({
        "base": base,
        "walks": [{
            "account": { "user": ADMIN.0, "password": ADMIN.1 },
            "pages": [{ "path": "/console/", "contains": ["Chữ không có trên trang"] }]
        }]
    });
    let failed = tokio::task::spawn_blocking(move || walk(&plan))
        .await
        .unwrap();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(
        failed[0]["check"]
            .as_str()
            .unwrap()
            .contains("Chữ không có trên trang")
    );
    node.shutdown().await;
}

/// The SSO accounts of the walks (tests/common/oidc.rs): a clerk of Sở TT&TT Gia Lai and one of
/// UBND tỉnh Nghệ An.
const CLERK_GL: (&str, &str) = ("vanthu.stttt", "Mật khẩu Văn thư 1");
const CLERK_NA: (&str, &str) = ("vanthu.nghean", "NgheAn#2026");

/// Gia Lai (Sở TT&TT, Sở Nội vụ, UBND tỉnh) and Nghệ An, peers of each other, each with its
/// outbox worker and its console signing in through one provider (a client each); Gia Lai's
/// console also has the break-glass accounts of `common::console`.
async fn two_nodes_with_sso() -> (TestNode, TestNode, Provider) {
    let gl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let na = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl_url = format!("http://{}", gl.local_addr().unwrap());
    let na_url = format!("http://{}", na.local_addr().unwrap());
    let provider = start_provider(
        &[("console-gialai", &gl_url), ("console-nghean", &na_url)],
        accounts(),
    );
    let gl_oidc = oidc_table(&provider.issuer, "console-gialai");
    let na_oidc = oidc_table(&provider.issuer, "console-nghean");
    let gialai = console_node_on(gl, &na_url, &gl_oidc).await.with_worker();
    let na_public = na_url.clone();
    let nghean = start(na, move |d| {
        config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", &gl_url, UBND_GL),
        ) + &format!("\n[console]\npublic_url = \"{na_public}\"\n{na_oidc}")
    })
    .await
    .with_worker();
    (gialai, nghean, provider)
}

fn pdf_file(dir: &Path) -> String {
    let p = dir.join("cong-van-2027.pdf");
    let pdf = pdf_page(&[
        "UBND TINH GIA LAI - SO THONG TIN VA TRUYEN THONG",
        "So: 123/STTTT-VP",
        "V/v trien khai nen tang lien thong van ban nam 2027",
    ]);
    std::fs::write(&p, pdf).unwrap();
    p.display().to_string()
}

/// Sets when `subject` arrived at `n` (its inbox row) to `at_ms`: the walk's date filter then
/// has a document exactly on a day boundary.
async fn set_arrival(n: &TestNode, subject: &str, at_ms: i64) {
    use sqlx::Connection as _;
    let url = n.node.config.node.store.clone();
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let done = sqlx::query(
        "UPDATE inbox SET created_at = ? WHERE message_id IN (SELECT id FROM messages WHERE subject = ?)",
    )
    .bind(at_ms)
    .bind(subject)
    .execute(&mut c)
    .await
    .unwrap();
    assert_eq!(done.rows_affected(), 1, "{subject} arrived once");
}

/// The clerk's whole path, in Chromium, keyboard only: Sở TT&TT Gia Lai's clerk signs in
/// through the provider, picks Nghệ An on the server-side picker, fills the form, attaches a
/// PDF and sends; sees it delivered. Nghệ An's clerk signs in, finds it by the trích yếu typed
/// without diacritics and in NFD, and by a date filter on the day it arrived (set to midnight in
/// Vietnam), opens it (PDF preview under the page's CSP), Tiếp nhận, Hoàn thành. Gia Lai's
/// clerk then sees 03 and 06 arrive back.
#[tokio::test(flavor = "multi_thread")]
async fn a_clerks_whole_path_between_two_nodes_by_keyboard() {
    use unicode_normalization::UnicodeNormalization as _;
    require_browser();
    let (gl, na, _provider) = two_nodes_with_sso().await;
    let files = tempfile::tempdir().unwrap();
    let (_keep, shots) = screenshots();
    const SUBJECT: &str = "V/v triển khai nền tảng liên thông văn bản năm 2027";
    // 07/12/2026 00:00 in Vietnam (UTC+7) = 06/12/2026 17:00 UTC.
    const MIDNIGHT_VN: i64 = 1_796_576_400_000;
    let send = json!({
        "base": gl.base, "screenshots": shots,
        "walks": [{
            "sso": { "user": CLERK_GL.0, "password": CLERK_GL.1 },
            "steps": [
                { "do": "visit", "path": "/console/documents?tab=di", "contains": ["Văn bản đi"] },
                { "do": "press", "name": "Gửi văn bản", "contains": ["1. Nơi nhận"] },
                { "do": "fill", "label": "Tìm cơ quan nhận (mã hoặc tên)", "text": NGHEAN },
                { "do": "press", "name": "Tìm", "contains": [NGHEAN] },
                { "do": "press", "name": format!("Chọn {NGHEAN}"), "contains": [format!("Bỏ {NGHEAN}")] },
                { "do": "fill", "label": "Ký hiệu (bắt buộc)", "text": "STTTT-VP" },
                { "do": "fill", "label": "Trích yếu (bắt buộc)", "text": SUBJECT },
                { "do": "fill", "label": "Nội dung tóm tắt", "text": "Đề nghị Ủy ban nhân dân tỉnh Nghệ An phối hợp triển khai." },
                { "do": "select", "label": "Độ khẩn", "option": "Khẩn" },
                { "do": "fill", "label": "Nơi ban hành", "text": "Gia Lai" },
                { "do": "fill", "label": "Họ tên người ký (bắt buộc)", "text": "Nguyễn Văn Quý" },
                { "do": "file", "label": "Tệp văn bản (PDF)", "path": pdf_file(files.path()) },
                { "do": "screenshot", "name": "gui-van-ban" },
                { "do": "press", "name": "Gửi văn bản", "contains": [SUBJECT, "cong-van-2027.pdf"] },
                { "do": "wait_for", "text": "Đã đến chờ tiếp nhận", "screenshot": "chi-tiet-van-ban-di" },
                { "do": "visit", "path": "/console/documents?tab=di", "contains": [SUBJECT, "Khẩn"],
                  "screenshot": "van-ban-di" }
            ],
            "phone": ["/console/documents?tab=di", "/console/documents/new"]
        }]
    });
    let failed = tokio::task::spawn_blocking(move || walk(&send))
        .await
        .unwrap();
    assert!(failed.is_empty(), "sending, failed checks: {failed:#?}");

    set_arrival(&na, SUBJECT, MIDNIGHT_VN).await;
    let nfd: String = "triển khai NỀN TẢNG".nfd().collect();
    assert_ne!(nfd, "triển khai NỀN TẢNG", "the input really is decomposed");
    let receive = json!({
        "base": na.base, "screenshots": shots,
        "walks": [{
            "sso": { "user": CLERK_NA.0, "password": CLERK_NA.1 },
            "steps": [
                { "do": "visit", "path": "/console/documents?tab=den", "contains": [SUBJECT, "Đã đến chờ tiếp nhận"],
                  "screenshot": "van-ban-den" },
                { "do": "fill", "label": "Trích yếu", "text": "trien khai nen tang" },
                { "do": "press", "name": "Tìm", "contains": [SUBJECT] },
                { "do": "fill", "label": "Trích yếu", "text": nfd },
                { "do": "press", "name": "Tìm", "contains": [SUBJECT] },
                { "do": "fill", "label": "Trích yếu", "text": "không có văn bản này" },
                { "do": "press", "name": "Tìm", "absent": [SUBJECT] },
                { "do": "fill", "label": "Trích yếu", "text": "" },
                { "do": "fill", "label": "Từ ngày", "text": "07/12/2026" },
                { "do": "press", "name": "Tìm", "contains": [SUBJECT, "07/12/2026 00:00"] },
                { "do": "fill", "label": "Từ ngày", "text": "" },
                { "do": "fill", "label": "Đến ngày", "text": "06/12/2026" },
                { "do": "press", "name": "Tìm", "absent": [SUBJECT] },
                { "do": "fill", "label": "Đến ngày", "text": "07/12/2026" },
                { "do": "press", "name": "Tìm", "contains": [SUBJECT] },
                { "do": "press", "name": SUBJECT,
                  "contains": ["Đã đến chờ tiếp nhận", "cong-van-2027.pdf", "Chữ ký số", "Gia Lai, "],
                  "screenshot": "chi-tiet-van-ban-den" },
                // The preview frame loaded the PDF under the page's policy (a refused frame would
                // be a console error, which every page is checked for).
                { "do": "expect", "response": { "url_contains": "/files/1?xem=1", "status": 200, "type": "application/pdf" } },
                { "do": "press", "name": "Tiếp nhận", "contains": ["Đã tiếp nhận", "03 Đã tiếp nhận, vào sổ"] },
                { "do": "press", "name": "Hoàn thành", "contains": ["Đã hoàn thành", "06 Đã xử lý xong"] }
            ]
        }]
    });
    let failed = tokio::task::spawn_blocking(move || walk(&receive))
        .await
        .unwrap();
    assert!(failed.is_empty(), "receiving, failed checks: {failed:#?}");

    let back = json!({
        "base": gl.base, "screenshots": shots,
        "walks": [{
            "sso": { "user": CLERK_GL.0, "password": CLERK_GL.1 },
            "steps": [
                { "do": "visit", "path": "/console/documents?tab=di", "contains": [SUBJECT] },
                { "do": "press", "name": SUBJECT, "contains": [SUBJECT] },
                { "do": "wait_for", "text": "Đã hoàn thành", "screenshot": "chi-tiet-van-ban-di-hoan-thanh" },
                { "do": "expect", "contains": ["03 Đã tiếp nhận, vào sổ", "06 Đã xử lý xong"] }
            ]
        }]
    });
    let failed = tokio::task::spawn_blocking(move || walk(&back))
        .await
        .unwrap();
    assert!(
        failed.is_empty(),
        "statuses back, failed checks: {failed:#?}"
    );
    na.shutdown().await;
    gl.shutdown().await;
}

/// The administrator's path: a delivery that failed is found by the state and error-code
/// filters, opened, sent again; the audit chain is verified from its page and shows the retry.
#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_finds_a_failed_delivery_retries_it_and_verifies_the_chain() {
    require_browser();
    let (node, base) = browser_node().await;
    for subject in ["V/v báo cáo số liệu quý IV", "V/v mời họp giao ban"] {
        let r = reqwest::Client::new()
            .post(node.url("/api/v1/documents"))
            .bearer_auth(TOK_STTTT)
            .multipart(submission(&metadata(&[NGHEAN], subject), false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }
    // As the outbox would after the peer refused: one delivery failed (no worker runs here).
    let now = now_ms();
    let claimed = node
        .store()
        .claim_due(now, 10, "outbox:test", 3_600_000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let failed_id = claimed[0].lease.delivery_id;
    node.store()
        .mark_failed(
            claimed[0].lease,
            DeliveryError::new("PEER_UNREACHABLE", "kết nối tới nghean bị từ chối"),
            now + 1,
        )
        .await
        .unwrap();
    let (_keep, shots) = screenshots();
    let plan = json!({
        "base": base, "screenshots": shots,
        "walks": [{
            "account": { "user": ADMIN.0, "password": ADMIN.1 },
            "steps": [
                { "do": "visit", "path": "/console/", "contains": ["Gửi lỗi"] },
                { "do": "press", "name": "Nhật ký giao nhận", "contains": ["Lọc"] },
                { "do": "select", "label": "Trạng thái", "option": "Gửi lỗi (không thành công, chờ gửi lại)" },
                { "do": "fill", "label": "Mã lỗi", "text": "PEER_UNREACHABLE" },
                { "do": "press", "name": "Lọc", "contains": ["PEER_UNREACHABLE", "Tìm thấy 1 lần chuyển."],
                  "screenshot": "nhat-ky-giao-nhan-loc-gui-loi" },
                { "do": "press", "name": failed_id.to_string(), "contains": ["kết nối tới nghean bị từ chối", "Gửi lại"],
                  "screenshot": "lan-chuyen-gui-loi" },
                { "do": "press", "name": "Gửi lại", "contains": ["Đã chuyển lần chuyển sang chờ gửi"] },
                { "do": "visit", "path": "/console/audit", "contains": ["delivery.operator_retry"] },
                { "do": "press", "name": "Kiểm tra chuỗi", "contains": ["Chuỗi nhật ký kiểm toán toàn vẹn"] }
            ]
        }]
    });
    let failed = tokio::task::spawn_blocking(move || walk(&plan))
        .await
        .unwrap();
    assert!(failed.is_empty(), "failed checks: {failed:#?}");
    assert_eq!(
        node.store().delivery(failed_id).await.unwrap().state,
        lienthong::store::DeliveryState::Queued,
        "sent again"
    );
    node.shutdown().await;
}

/// The role matrix in the browser: each role (a clerk through single sign-on, the three
/// administrators' roles through break-glass accounts) × each page — answered or refused, and
/// its navigation and buttons shown only for what the role may do — × each form — POSTed by the
/// page itself, as a forged request would be, with the session's CSRF token and without. Every
/// refusal is a 403 and a `console.forbidden` record. (Binding certificates to codes,
/// `ManageRegistry`, has no form on the console: the CLI does it.)
#[tokio::test(flavor = "multi_thread")]
async fn the_role_matrix_hides_and_refuses_in_the_browser() {
    require_browser();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", l.local_addr().unwrap());
    let provider = start_provider(&[("console-gialai", &public)], accounts());
    let node = console_node_on(
        l,
        "http://127.0.0.1:9",
        &oidc_table(&provider.issuer, "console-gialai"),
    )
    .await;
    let r = reqwest::Client::new()
        .post(node.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .multipart(submission(
            &metadata(&[NGHEAN], "V/v thử phân quyền trên trình duyệt"),
            true,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let doc = json_of(r).await["id"].as_i64().expect("the document's id");
    // Its delivery failed, so that Gửi lại and Hủy are offered to whom may use them.
    let now = now_ms();
    let claimed = node
        .store()
        .claim_due(now, 10, "outbox:test", 3_600_000)
        .await
        .unwrap();
    let del = claimed[0].lease.delivery_id;
    node.store()
        .mark_failed(
            claimed[0].lease,
            DeliveryError::new("PEER_UNREACHABLE", "kết nối tới nghean bị từ chối"),
            now + 1,
        )
        .await
        .unwrap();
    let nav = [
        ("Văn bản liên thông", Action::ViewDocuments),
        ("Nhật ký giao nhận", Action::ViewDeliveries),
        ("Nhật ký kiểm toán", Action::ViewAudit),
        ("Đơn vị liên thông", Action::ViewRegistry),
        ("Khóa và chứng thư", Action::ViewCertificates),
    ];
    /// A page, the right it needs, and its buttons with the right each needs.
    type Page<'a> = (String, Action, Vec<(&'a str, Action)>);
    let pages: Vec<Page> = vec![
        ("/console/".into(), Action::ViewOverview, nav.to_vec()),
        (
            "/console/documents?tab=di".into(),
            Action::ViewDocuments,
            vec![("Gửi văn bản", Action::SendDocument)],
        ),
        (
            "/console/documents/new".into(),
            Action::SendDocument,
            vec![],
        ),
        (
            format!("/console/documents/{doc}"),
            Action::ViewDocuments,
            vec![
                ("Gửi đề nghị thu hồi", Action::SendDocument),
                ("Gửi bản cập nhật", Action::SendDocument),
            ],
        ),
        (
            "/console/deliveries".into(),
            Action::ViewDeliveries,
            vec![("Gửi lại các lần chuyển đã chọn", Action::RetryDelivery)],
        ),
        (
            format!("/console/deliveries/{del}"),
            Action::ViewDeliveries,
            vec![
                ("Gửi lại", Action::RetryDelivery),
                ("Hủy lần chuyển", Action::CancelDelivery),
            ],
        ),
        (
            "/console/audit".into(),
            Action::ViewAudit,
            vec![("Kiểm tra chuỗi", Action::VerifyAudit)],
        ),
        (
            "/console/registry".into(),
            Action::ViewRegistry,
            vec![("Kiểm tra kết nối", Action::TestPeer)],
        ),
        (
            "/console/certificates".into(),
            Action::ViewCertificates,
            vec![],
        ),
    ];
    // Every form of the console: where it posts, the right it needs, its fields, multipart.
    let posts: Vec<(String, Action, Value, bool)> = vec![
        (
            format!("/console/deliveries/{del}/retry"),
            Action::RetryDelivery,
            json!({}),
            false,
        ),
        (
            "/console/deliveries/retry-selected".into(),
            Action::RetryDelivery,
            json!({ "id": del.to_string() }),
            false,
        ),
        (
            "/console/audit/verify".into(),
            Action::VerifyAudit,
            json!({}),
            false,
        ),
        (
            "/console/registry/peers/nghean/test".into(),
            Action::TestPeer,
            json!({}),
            false,
        ),
        (
            format!("/console/documents/{doc}/status"),
            Action::ReportStatus,
            json!({ "code": "03" }),
            false,
        ),
        (
            "/console/documents/new".into(),
            Action::SendDocument,
            json!({ "notation": "STTTT-VP", "subject": "Văn bản giả mạo", "signer": "Không Ai" }),
            true,
        ),
        (
            format!("/console/documents/{doc}/update"),
            Action::SendDocument,
            json!({ "reason": "thử", "subject": "Cập nhật giả mạo" }),
            true,
        ),
        (
            format!("/console/documents/{doc}/revoke"),
            Action::SendDocument,
            json!({ "reason": "thử thu hồi", "key": "khoa-thu-hoi-1" }),
            false,
        ),
        // Last: a cancelled delivery would answer the retries above with a conflict.
        (
            format!("/console/deliveries/{del}/cancel"),
            Action::CancelDelivery,
            json!({ "reason": "thử" }),
            false,
        ),
    ];
    let roles: [(Role, Value); 4] = [
        (
            Role::Clerk,
            json!({ "sso": { "user": "vanthu.stttt", "password": "Mật khẩu Văn thư 1" } }),
        ),
        (
            Role::SystemAdmin,
            json!({ "account": { "user": ADMIN.0, "password": ADMIN.1 } }),
        ),
        (
            Role::CertificateAdmin,
            json!({ "account": { "user": CERT_ADMIN.0, "password": CERT_ADMIN.1 } }),
        ),
        (
            Role::Auditor,
            json!({ "account": { "user": AUDITOR.0, "password": AUDITOR.1 } }),
        ),
    ];
    let mut refusals = 0;
    let mut walks = Vec::new();
    for (role, sign_in) in roles {
        let mut steps = Vec::new();
        for (path, need, buttons) in &pages {
            let may = allows(role, *need);
            refusals += usize::from(!may);
            let (shown, hidden): (Vec<_>, Vec<_>) =
                buttons.iter().partition(|(_, a)| allows(role, *a));
            let mut step = json!({
                "do": "visit", "path": path, "status": if may { 200 } else { 403 },
            });
            if may {
                // A clerk's buttons on a document show only on its agency's own documents; the
                // others' (no agency) pages say so instead: only what is hidden is asserted.
                let shown: Vec<&str> = shown.iter().map(|(n, _)| *n).collect();
                if role == Role::Clerk || !path.starts_with("/console/documents") {
                    step["controls"] = json!(shown);
                }
                step["no_controls"] = json!(hidden.iter().map(|(n, _)| *n).collect::<Vec<_>>());
            }
            steps.push(step);
        }
        // Forged requests are sent from the overview (every role may open it; its logout form
        // holds the session's token).
        steps.push(json!({ "do": "visit", "path": "/console/" }));
        for (path, need, form, multipart) in &posts {
            for csrf in [true, false] {
                let forbidden = !(csrf && allows(role, *need));
                refusals += usize::from(forbidden);
                steps.push(json!({
                    "do": "forge", "path": path, "form": form, "csrf": csrf,
                    "multipart": multipart, "forbidden": forbidden,
                }));
            }
        }
        let mut w = sign_in;
        w["steps"] = json!(steps);
        walks.push(w);
    }
    let plan = json!({ "base": node.base, "walks": walks });
    let failed = tokio::task::spawn_blocking(move || walk(&plan))
        .await
        .unwrap();
    assert!(failed.is_empty(), "failed checks: {failed:#?}");
    let audited = audit_records(&node)
        .await
        .into_iter()
        .filter(|r| r.action == "console.forbidden")
        .count();
    assert_eq!(audited, refusals, "every refusal is in the audit chain");
    node.shutdown().await;
    drop(provider);
}
