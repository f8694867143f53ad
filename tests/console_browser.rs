//! The web console in a real browser: Debian's headless Chromium driven by playwright-core
//! (`tests/console/browser/walk.mjs`), against a node served on loopback. Every page visited is
//! checked for its status, for console errors (a Content-Security-Policy violation shows there),
//! with axe-core (no serious or critical violation), and at 1366×768; sign-in is done with the
//! keyboard only; pages are checked for horizontal overflow at phone width.
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
use serde_json::{Value, json};

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
