//! The administrators' console pages over real HTTP: Nhật ký giao nhận (filters, keyset paging,
//! a delivery's attempts, *Gửi lại*, *Hủy*, bulk retry, CSV), Nhật ký kiểm toán (browsing,
//! *Kiểm tra chuỗi*, export), and the auditor who reads everything and changes nothing.
//!
//! Deliveries are made the real way — documents submitted through the clerk API — and the
//! outbox's outcomes are reported through the store as the worker would (`claim_due`,
//! `mark_failed`, `retry_later`): the worker is not running, so nothing moves behind the test.

mod common;

use std::collections::BTreeSet;

use common::console::*;
use common::nodes::*;
use lienthong::node::service::now_ms;
use lienthong::store::{DeliveryError, DeliveryState, Store};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};

const ADMIN_PASSWORD: &str = ADMIN.1;
const AUDITOR_PASSWORD: &str = AUDITOR.1;

/// A Gia Lai node with the console and its break-glass accounts; its peer (Nghệ An) does not
/// answer.
async fn node() -> TestNode {
    console_node("http://127.0.0.1:9", "").await
}

async fn get(n: &TestNode, cookie: &str, path: &str) -> (StatusCode, String) {
    let r = client()
        .get(n.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn post(n: &TestNode, cookie: &str, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(n.url(path))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

/// The delivery ids a list page links to, in page order.
fn ids_on(page: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(at) = rest.find("href=\"/console/deliveries/") {
        rest = &rest[at + 26..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(id) = digits.parse() {
            out.push(id);
        }
    }
    out
}

/// The `before=` of the page's "Trang sau" link.
fn next_before(page: &str) -> Option<String> {
    let at = page.find("Trang sau")?;
    let link = &page[..at];
    let b = link.rfind("before=")? + 7;
    Some(link[b..].chars().take_while(char::is_ascii_digit).collect())
}

/// Follows "Trang sau" from the first page of the list filtered by `query` (`k=v&…&`, or
/// empty): how many pages, and the ids of all of them in order.
async fn every_page(n: &TestNode, cookie: &str, query: &str) -> (usize, Vec<i64>) {
    let mut seen = Vec::new();
    let mut path = format!("/console/deliveries?{query}");
    let mut pages = 0;
    loop {
        let (s, page) = get(n, cookie, &path).await;
        assert_eq!(s, StatusCode::OK);
        pages += 1;
        seen.extend(ids_on(&page));
        match next_before(&page) {
            Some(b) => path = format!("/console/deliveries?{query}before={b}"),
            None => break,
        }
    }
    (pages, seen)
}

/// Submits `count` documents from Sở TT&TT to Nghệ An (a peer) and Sở Nội vụ (local): two
/// deliveries each.
async fn submit(n: &TestNode, count: usize) {
    let http = reqwest::Client::new();
    for i in 0..count {
        let meta = metadata(&[NGHEAN, SONV], &format!("V/v thử nghiệm số {i}"));
        let r = http
            .post(n.url("/api/v1/documents"))
            .bearer_auth(TOK_STTTT)
            .header("Idempotency-Key", format!("console-admin-{i}"))
            .multipart(submission(&meta, false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
    }
}

/// Claims every due delivery as a worker would, then reports `failed` (PEER_UNREACHABLE) for
/// the first `failed` to Nghệ An and `retrying` (HTTP_503) for the next `retrying`; the others
/// stay `sending`. Returns (failed ids, retrying ids).
async fn outcomes(n: &TestNode, failed: usize, retrying: usize) -> (Vec<i64>, Vec<i64>) {
    let now = now_ms();
    let claimed = n
        .store()
        .claim_due(now, 1000, "outbox:test", 3_600_000)
        .await
        .unwrap();
    let mut to_peer = claimed.iter().filter(|c| c.recipient == NGHEAN);
    let (mut f, mut r) = (Vec::new(), Vec::new());
    for c in to_peer.by_ref().take(failed) {
        n.store()
            .mark_failed(
                c.lease,
                DeliveryError::new("PEER_UNREACHABLE", "kết nối tới nghean bị từ chối"),
                now + 1,
            )
            .await
            .unwrap();
        f.push(c.lease.delivery_id);
    }
    for c in to_peer.take(retrying) {
        n.store()
            .retry_later(
                c.lease,
                DeliveryError::new("HTTP_503", "máy chủ nghean đang bảo trì"),
                now + 3_600_000,
                now + 1,
            )
            .await
            .unwrap();
        r.push(c.lease.delivery_id);
    }
    (f, r)
}

async fn audit_actions(n: &TestNode) -> Vec<(String, String, String, String)> {
    audit_records(n)
        .await
        .into_iter()
        .map(|r| (r.actor, r.action, r.entity_id, r.detail))
        .collect()
}

async fn state_of(n: &TestNode, id: i64) -> DeliveryState {
    n.store().delivery(id).await.unwrap().state
}

#[tokio::test]
async fn an_administrator_filters_pages_retries_cancels_and_exports() {
    let n = node().await;
    submit(&n, 60).await;
    let (failed, retrying) = outcomes(&n, 3, 2).await;
    let all: BTreeSet<i64> = n
        .store()
        .list_deliveries(&lienthong::store::DeliveryFilter {
            page: lienthong::store::Page {
                limit: 1000,
                before: None,
            },
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(all.len(), 120);
    let cookie = session_of(&n, "khancap", ADMIN_PASSWORD).await;

    // --- filters ---------------------------------------------------------------------------
    let (s, page) = get(
        &n,
        &cookie,
        "/console/deliveries?state=stopped&error=PEER_UNREACHABLE",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("<h1>Nhật ký giao nhận</h1>"), "{page}");
    assert_eq!(
        ids_on(&page).into_iter().collect::<BTreeSet<_>>(),
        failed.iter().copied().collect()
    );
    assert!(
        page.contains("Tìm thấy <strong>3</strong> lần chuyển."),
        "{page}"
    );
    assert!(page.contains("Gửi không thành công"));
    // The overview's "Gửi lỗi" link: failed and retrying.
    let (_, page) = get(&n, &cookie, "/console/deliveries?state=failed").await;
    let expect: BTreeSet<i64> = failed.iter().chain(&retrying).copied().collect();
    assert_eq!(ids_on(&page).into_iter().collect::<BTreeSet<_>>(), expect);
    // "Đang chờ gửi": queued, sending, retrying — everything but the 3 failed.
    let (_, page) = get(&n, &cookie, "/console/deliveries?state=pending").await;
    assert!(page.contains("Tìm thấy <strong>117</strong>"), "{page}");
    let (_, page) = get(&n, &cookie, "/console/deliveries?route=peer%3Anghean").await;
    assert!(page.contains("Tìm thấy <strong>60</strong>"), "{page}");
    let (_, page) = get(
        &n,
        &cookie,
        &format!("/console/deliveries?recipient={SONV}&state=sending"),
    )
    .await;
    assert!(page.contains("Tìm thấy <strong>60</strong>"), "{page}");
    let (_, page) = get(&n, &cookie, "/console/deliveries?error=HTTP_503").await;
    assert_eq!(
        ids_on(&page).into_iter().collect::<BTreeSet<_>>(),
        retrying.iter().copied().collect()
    );
    // Dates as an official types them, in Vietnam's time: today has all, yesterday none.
    let today = lienthong::console::view::format::date(now_ms());
    let yesterday = lienthong::console::view::format::date(now_ms() - 86_400_000);
    let (_, page) = get(
        &n,
        &cookie,
        &format!("/console/deliveries?from={today}&to={today}"),
    )
    .await;
    assert!(page.contains("Tìm thấy <strong>120</strong>"), "{page}");
    let (_, page) = get(&n, &cookie, &format!("/console/deliveries?to={yesterday}")).await;
    assert!(
        page.contains("Không có lần chuyển nào khớp với bộ lọc."),
        "{page}"
    );
    let (s, page) = get(&n, &cookie, "/console/deliveries?from=31/02/2026").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(page.contains("không đúng dạng ngày/tháng/năm"), "{page}");

    // --- keyset paging: every row exactly once ---------------------------------------------
    let (pages, seen) = every_page(&n, &cookie, "").await;
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 120, "no row twice");
    assert_eq!(seen.iter().copied().collect::<BTreeSet<_>>(), all);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first");
    // A group of states is paged the same way (merged per state in the store).
    let (pages, seen) = every_page(&n, &cookie, "state=pending&").await;
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 117, "no row twice");
    let pending: BTreeSet<i64> = all
        .iter()
        .copied()
        .filter(|i| !failed.contains(i))
        .collect();
    assert_eq!(seen.iter().copied().collect::<BTreeSet<_>>(), pending);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first");

    // --- one delivery, and Gửi lại ---------------------------------------------------------
    let id = failed[0];
    let (s, page) = get(&n, &cookie, &format!("/console/deliveries/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains(&format!("Lần chuyển số {id}")), "{page}");
    assert!(
        page.contains("kết nối tới nghean bị từ chối"),
        "the attempt's error"
    );
    assert!(page.contains("Lỗi, dừng gửi"), "the attempt's outcome");
    assert!(page.contains(&format!("action=\"/console/deliveries/{id}/retry\"")));
    let csrf = csrf_of(&page);
    let r = post(
        &n,
        &cookie,
        &format!("/console/deliveries/{id}/retry"),
        &[("_csrf", &csrf)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[LOCATION],
        format!("/console/deliveries/{id}?notice=retried").as_str()
    );
    assert_eq!(state_of(&n, id).await, DeliveryState::Queued);
    let (_, page) = get(
        &n,
        &cookie,
        &format!("/console/deliveries/{id}?notice=retried"),
    )
    .await;
    assert!(page.contains("hệ thống sẽ gửi lại ngay"), "{page}");
    assert!(page.contains("Chờ gửi"));
    // A queued delivery is not retried again: 409, said in Vietnamese.
    let r = post(
        &n,
        &cookie,
        &format!("/console/deliveries/{id}/retry"),
        &[("_csrf", &csrf)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("Không gửi lại được"));

    // --- Hủy, with a reason ----------------------------------------------------------------
    let id2 = failed[1];
    let r = post(
        &n,
        &cookie,
        &format!("/console/deliveries/{id2}/cancel"),
        &[("_csrf", &csrf), ("reason", "  ")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("Vui lòng ghi lý do hủy"));
    assert_eq!(state_of(&n, id2).await, DeliveryState::Failed);
    let reason = "Nơi nhận đã sáp nhập, không còn nhận văn bản";
    let r = post(
        &n,
        &cookie,
        &format!("/console/deliveries/{id2}/cancel"),
        &[("_csrf", &csrf), ("reason", reason)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(state_of(&n, id2).await, DeliveryState::Cancelled);

    let actions = audit_actions(&n).await;
    assert!(
        actions
            .iter()
            .any(|(actor, a, e, _)| a == "delivery.operator_retry"
                && actor == "console:local:khancap"
                && *e == id.to_string()),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|(actor, a, e, detail)| a == "delivery.cancel"
                && actor == "console:local:khancap"
                && *e == id2.to_string()
                && detail.contains(reason)),
        "{actions:?}"
    );

    // --- bulk Gửi lại: the retrying two and the last failed one; a sending one is refused ---
    let sending = *all
        .iter()
        .find(|i| !failed.contains(i) && !retrying.contains(i))
        .unwrap();
    let mut form: Vec<(&str, String)> =
        vec![("_csrf", csrf.clone()), ("back", "state=failed".into())];
    for i in retrying.iter().chain([&failed[2], &sending]) {
        form.push(("id", i.to_string()));
    }
    let r = client()
        .post(n.url("/console/deliveries/retry-selected"))
        .header("cookie", &cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[LOCATION],
        "/console/deliveries?state=failed&done=3&refused=1"
    );
    for i in retrying.iter().chain([&failed[2]]) {
        assert_eq!(state_of(&n, *i).await, DeliveryState::Queued);
    }
    assert_eq!(state_of(&n, sending).await, DeliveryState::Sending);
    let (_, page) = get(
        &n,
        &cookie,
        "/console/deliveries?state=failed&done=3&refused=1",
    )
    .await;
    assert!(
        page.contains("Đã chuyển 3 lần chuyển sang chờ gửi lại ngay; 1 lần chuyển"),
        "{page}"
    );
    // More than 100 at once is refused, nothing retried.
    let mut form: Vec<(&str, String)> = vec![("_csrf", csrf.clone())];
    for i in 1..=101 {
        form.push(("id", i.to_string()));
    }
    let r = client()
        .post(n.url("/console/deliveries/retry-selected"))
        .header("cookie", &cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("tối đa 100"));
    assert_eq!(state_of(&n, sending).await, DeliveryState::Sending);

    // --- CSV -------------------------------------------------------------------------------
    let r = client()
        .get(n.url("/console/deliveries.csv?route=peer%3Anghean"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let bytes = r.bytes().await.unwrap();
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "UTF-8 with a BOM for Excel"
    );
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("Số,Cơ quan gửi,Mã văn bản,Cơ quan nhận,Tuyến gửi,Trạng thái"),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines.len(),
        61,
        "the header and the 60 deliveries to Nghệ An"
    );
    let cancelled_line = lines
        .iter()
        .find(|l| l.starts_with(&format!("{id2},")))
        .expect("the cancelled delivery");
    assert!(cancelled_line.contains("Đã hủy"), "{cancelled_line}");
    assert!(
        cancelled_line.contains("PEER_UNREACHABLE"),
        "{cancelled_line}"
    );

    // --- Nhật ký kiểm toán -----------------------------------------------------------------
    let (s, page) = get(&n, &cookie, "/console/audit?action=delivery.cancel").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("<h1>Nhật ký kiểm toán</h1>"), "{page}");
    assert!(page.contains("console:local:khancap"), "{page}");
    assert_eq!(
        page.matches("<td class=\"mono\">delivery.cancel</td>")
            .count(),
        1
    );
    let (_, page) = get(&n, &cookie, "/console/audit?actor=console%3Alocal%3A").await;
    assert!(page.contains("delivery.operator_retry") && page.contains("console.login"));
    assert!(!page.contains("document.submit"), "only console actors");
    // Paged by seq, newest first: the pages together are the chain, each record once.
    let mut seqs = Vec::new();
    let mut path = "/console/audit".to_owned();
    loop {
        let (_, page) = get(&n, &cookie, &path).await;
        let body = &page[page.find("<tbody>").unwrap_or(0)..];
        let mut rest = body;
        while let Some(at) = rest.find("<tr><td>") {
            rest = &rest[at + 8..];
            seqs.push(
                rest.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse::<i64>()
                    .unwrap(),
            );
        }
        match page.find("Cũ hơn") {
            Some(at) => {
                let link = &page[..at];
                let b = link.rfind("before=").unwrap() + 7;
                let b: String = link[b..].chars().take_while(char::is_ascii_digit).collect();
                path = format!("/console/audit?before={b}");
            }
            None => break,
        }
    }
    let chain = audit_actions(&n).await.len() as i64;
    assert_eq!(seqs, (1..=chain).rev().collect::<Vec<_>>());

    // Kiểm tra chuỗi: the verdict and the head to keep elsewhere.
    let r = post(&n, &cookie, "/console/audit/verify", &[("_csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("Chuỗi nhật ký kiểm toán toàn vẹn"), "{page}");
    let summary = n.store().verify_audit().await.unwrap().unwrap();
    assert!(
        page.contains(&format!(
            "<strong class=\"head-seq\">{}</strong>",
            summary.head.seq
        )),
        "{page}"
    );
    assert!(page.contains(&hex::encode(summary.head.hash)), "{page}");
    assert!(page.contains("ghi lại số bản ghi và mã băm này ở nơi khác"));

    // Export, filtered: JSON lines as `lienthong audit export` writes them.
    let r = client()
        .get(n.url("/console/audit.jsonl?action=delivery.operator_retry"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    let records: Vec<_> = text
        .lines()
        .map(|l| lienthong::audit::export::parse_jsonl_line(l).unwrap())
        .collect();
    assert_eq!(
        records.len(),
        4,
        "one single and three bulk retries: {text}"
    );
    assert!(
        records
            .iter()
            .all(|r| r.action == "delivery.operator_retry")
    );
    assert!(records.windows(2).all(|w| w[0].seq > w[1].seq));

    // The overview counts today's deliveries and links to them.
    let (_, page) = get(&n, &cookie, "/console/").await;
    assert!(
        page.contains(&format!("href=\"/console/deliveries?from={today}\"")),
        "{page}"
    );
    assert!(page.contains("<strong>120</strong>"), "{page}");

    assert!(n.store().verify_audit().await.unwrap().is_ok());
    n.shutdown().await;
}

#[tokio::test]
async fn the_auditor_reads_but_every_change_is_refused_and_recorded() {
    let n = node().await;
    submit(&n, 2).await;
    let (failed, _) = outcomes(&n, 1, 0).await;
    let id = failed[0];
    let cookie = session_of(&n, "giamsat", AUDITOR_PASSWORD).await;

    let (s, page) = get(&n, &cookie, "/console/deliveries?state=failed").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ids_on(&page), vec![id]);
    assert!(!page.contains("retry-selected"), "no bulk retry form");
    assert!(!page.contains("type=\"checkbox\""), "nothing to tick");
    let (s, page) = get(&n, &cookie, &format!("/console/deliveries/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("PEER_UNREACHABLE"));
    assert!(!page.contains("/retry\""), "no Gửi lại button");
    assert!(!page.contains("/cancel\""), "no Hủy button");
    // The auditor's own token (the logout form carries it) does not make a forgery pass.
    let csrf = csrf_of(&page);

    let forged: [(String, Vec<(&str, &str)>); 5] = [
        (
            format!("/console/deliveries/{id}/retry"),
            vec![("_csrf", csrf.as_str())],
        ),
        (format!("/console/deliveries/{id}/retry"), vec![]),
        (
            format!("/console/deliveries/{id}/cancel"),
            vec![("_csrf", csrf.as_str()), ("reason", "thử")],
        ),
        (
            format!("/console/deliveries/{id}/cancel"),
            vec![("reason", "thử")],
        ),
        (
            "/console/deliveries/retry-selected".to_owned(),
            vec![("_csrf", csrf.as_str()), ("id", "1")],
        ),
    ];
    let id_text = id.to_string();
    for (path, form) in &forged {
        let form: Vec<(&str, &str)> = form
            .iter()
            .map(|(k, v)| (*k, if *v == "1" { id_text.as_str() } else { *v }))
            .collect();
        let r = post(&n, &cookie, path, &form).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(r.text().await.unwrap().contains("Không có quyền"));
    }
    assert_eq!(
        state_of(&n, id).await,
        DeliveryState::Failed,
        "nothing changed"
    );
    let actions = audit_actions(&n).await;
    let refused: Vec<_> = actions
        .iter()
        .filter(|(actor, a, _, _)| a == "console.forbidden" && actor == "console:local:giamsat")
        .collect();
    assert_eq!(refused.len(), forged.len(), "{actions:?}");
    assert!(
        refused.iter().any(|(_, _, _, d)| d.contains("CSRF")),
        "{refused:?}"
    );
    assert!(
        refused
            .iter()
            .any(|(_, _, _, d)| d.contains("retry_delivery"))
    );
    assert!(
        refused
            .iter()
            .any(|(_, _, _, d)| d.contains("cancel_delivery"))
    );
    assert!(
        !actions
            .iter()
            .any(|(_, a, _, _)| a == "delivery.operator_retry" || a == "delivery.cancel")
    );

    // An administrator's form without its token is refused too, and recorded.
    let admin = session_of(&n, "khancap", ADMIN_PASSWORD).await;
    let r = post(&n, &admin, &format!("/console/deliveries/{id}/retry"), &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post(&n, &admin, "/console/audit/verify", &[("_csrf", "faux")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(state_of(&n, id).await, DeliveryState::Failed);
    let actions = audit_actions(&n).await;
    assert_eq!(
        actions
            .iter()
            .filter(|(actor, a, _, _)| a == "console.forbidden" && actor == "console:local:khancap")
            .count(),
        2
    );

    // Reading the chain, and verifying it, is the auditor's work.
    let (s, page) = get(&n, &cookie, "/console/audit").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("console.forbidden"));
    let r = post(&n, &cookie, "/console/audit/verify", &[("_csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Chuỗi nhật ký kiểm toán toàn vẹn")
    );
    n.shutdown().await;
}

/// `documents` documents of 101 recipients each, written through the store as a submission
/// writes them (quicker than signing 100 packages for a count).
async fn seed_through_store(n: &TestNode, documents: usize) {
    use lienthong::store::{DocumentMeta, NewDelivery, NewOutgoing, Numbering, SignedPackage};
    let now = now_ms();
    for i in 0..documents {
        n.store()
            .submit_outgoing(
                NewOutgoing {
                    document: DocumentMeta {
                        sender: STTTT.into(),
                        document_id: format!("{STTTT},2026/12/07,{}/STTTT", i + 1),
                        business_type: 0,
                        code_number: (i + 1).to_string(),
                        code_notation: "STTTT".into(),
                        code_year: 2026,
                        subject: format!("V/v số {i}"),
                    },
                    package: SignedPackage {
                        bytes: format!("<edXML>{i}</edXML>").into_bytes(),
                        signer_subject: None,
                        signer_fingerprint: None,
                        header_json: "{}".into(),
                        signed_content: None,
                        channel: None,
                    },
                    deliveries: (0..101)
                        .map(|r| NewDelivery {
                            recipient: format!("000.{:02}.{:02}.H41", r / 10, r % 10),
                            route: "peer:nghean".into(),
                        })
                        .collect(),
                    idempotency_key: None,
                    request: None,
                    actor: format!("clerk:{STTTT}:van-thu"),
                    numbering: Numbering::Given,
                    from_draft: None,
                },
                now,
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn past_ten_thousand_the_count_and_the_csv_stop() {
    let n = node().await;
    seed_through_store(&n, 100).await; // 10 100 deliveries
    let cookie = session_of(&n, "khancap", ADMIN_PASSWORD).await;
    let (s, page) = get(&n, &cookie, "/console/deliveries").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("Tìm thấy <strong>hơn 10.000</strong> lần chuyển."),
        "{page}"
    );
    assert_eq!(ids_on(&page).len(), 50);
    // Under the cap, counted exactly.
    let (_, page) = get(&n, &cookie, "/console/deliveries?recipient=000.00.07.H41").await;
    assert!(
        page.contains("Tìm thấy <strong>100</strong> lần chuyển."),
        "{page}"
    );
    // The overview says so too.
    let (_, page) = get(&n, &cookie, "/console/").await;
    assert!(page.contains("<strong>hơn 10.000</strong>"), "{page}");

    let r = client()
        .get(n.url("/console/deliveries.csv"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 10_000 + 1, "header, 10 000 rows, the note");
    assert!(lines[10_001].contains("lọc hẹp hơn"), "{}", lines[10_001]);
    // Newest first, each once.
    let ids: Vec<i64> = lines[1..=10_000]
        .iter()
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]));

    // The XLSX stops at the same row, with the same note under it.
    let t = std::time::Instant::now();
    let r = client()
        .get(n.url("/console/deliveries.xlsx"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let bytes = r.bytes().await.unwrap();
    eprintln!(
        "deliveries.xlsx of 10 000 rows: {} bytes in {:?}",
        bytes.len(),
        t.elapsed()
    );
    let sheet = read_xlsx(&bytes);
    assert_eq!(
        sheet.rows(),
        1 + 10_000 + 1,
        "header, 10 000 rows, the note"
    );
    assert!(sheet.text("A10002").contains("lọc hẹp hơn"));
    assert_eq!(sheet.text("A2"), ids[0].to_string());
    assert_eq!(sheet.text("A10001"), ids[9_999].to_string());
    n.shutdown().await;
}

/// An XLSX file's sheet as Excel reads it: cell reference → (value, style index). Strings come
/// out of the shared-strings table; numbers stay as written.
struct Sheet {
    cells: std::collections::BTreeMap<String, (String, Option<usize>)>,
    xml: String,
    /// The number format code of each cell style (`cellXfs`), by index.
    formats: Vec<Option<String>>,
}

fn read_xlsx(bytes: &[u8]) -> Sheet {
    use std::io::Read as _;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("an XLSX is a ZIP");
    let mut part = |name: &str| {
        let mut s = String::new();
        zip.by_name(name)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    let (workbook, strings, styles, xml) = (
        part("xl/workbook.xml"),
        part("xl/sharedStrings.xml"),
        part("xl/styles.xml"),
        part("xl/worksheets/sheet1.xml"),
    );
    let wb = roxmltree::Document::parse(&workbook).unwrap();
    assert!(
        wb.descendants()
            .any(|n| n.has_tag_name("sheet") && n.attribute("name") == Some("Nhật ký giao nhận")),
        "{workbook}"
    );
    let sst = roxmltree::Document::parse(&strings).unwrap();
    let shared: Vec<String> = sst
        .descendants()
        .filter(|n| n.has_tag_name("si"))
        .map(|si| {
            si.descendants()
                .filter(|t| t.has_tag_name("t"))
                .filter_map(|t| t.text())
                .collect()
        })
        .collect();
    let st = roxmltree::Document::parse(&styles).unwrap();
    let custom: std::collections::BTreeMap<&str, &str> = st
        .descendants()
        .filter(|n| n.has_tag_name("numFmt"))
        .map(|n| {
            (
                n.attribute("numFmtId").unwrap(),
                n.attribute("formatCode").unwrap(),
            )
        })
        .collect();
    let formats = st
        .descendants()
        .find(|n| n.has_tag_name("cellXfs"))
        .unwrap()
        .children()
        .filter(|n| n.has_tag_name("xf"))
        .map(|xf| {
            xf.attribute("numFmtId")
                .and_then(|id| custom.get(id))
                .map(|f| (*f).to_owned())
        })
        .collect();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let mut cells = std::collections::BTreeMap::new();
    for c in doc.descendants().filter(|n| n.has_tag_name("c")) {
        let v = c
            .children()
            .find(|n| n.has_tag_name("v"))
            .and_then(|v| v.text())
            .unwrap_or_default();
        let value = match c.attribute("t") {
            Some("s") => shared[v.parse::<usize>().unwrap()].clone(),
            None | Some("n") => v.to_owned(),
            Some(other) => panic!("a cell of type {other}"),
        };
        let style = c.attribute("s").map(|s| s.parse().unwrap());
        cells.insert(c.attribute("r").unwrap().to_owned(), (value, style));
    }
    Sheet {
        cells,
        xml,
        formats,
    }
}

impl Sheet {
    fn text(&self, r: &str) -> &str {
        self.cells.get(r).map_or("", |(v, _)| v.as_str())
    }
    fn format(&self, r: &str) -> Option<&str> {
        let s = self.cells.get(r)?.1?;
        self.formats.get(s)?.as_deref()
    }
    fn rows(&self) -> usize {
        self.cells.keys().filter(|r| r.starts_with('A')).count()
    }
}

#[tokio::test]
async fn the_delivery_log_exports_as_a_real_xlsx() {
    let n = node().await;
    submit(&n, 4).await;
    let (failed, retrying) = outcomes(&n, 1, 1).await;
    let cookie = session_of(&n, "khancap", ADMIN_PASSWORD).await;

    let (_, page) = get(&n, &cookie, "/console/deliveries?state=failed").await;
    assert!(
        page.contains("href=\"/console/deliveries.xlsx?state=failed\""),
        "linked beside the CSV: {page}"
    );
    let r = client()
        .get(n.url("/console/deliveries.xlsx?state=failed"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()[CONTENT_TYPE],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("nhat-ky-giao-nhan.xlsx")
    );
    let sheet = read_xlsx(&r.bytes().await.unwrap());

    // The header row, bold-free check aside, is the CSV's; frozen at the top; widths set.
    let header: Vec<&str> = ('A'..='L').map(|c| sheet.text(&format!("{c}1"))).collect();
    assert_eq!(
        header,
        [
            "Số",
            "Cơ quan gửi",
            "Mã văn bản",
            "Cơ quan nhận",
            "Tuyến gửi",
            "Trạng thái",
            "Số lần gửi",
            "Mã lỗi",
            "Nội dung lỗi",
            "Tạo lúc",
            "Cập nhật lúc",
            "Đến nơi nhận lúc",
        ]
    );
    assert!(
        sheet.xml.contains("ySplit=\"1\"") && sheet.xml.contains("state=\"frozen\""),
        "the header row is frozen: {}",
        sheet.xml
    );
    assert!(
        sheet.xml.contains("<col min=\"9\" max=\"9\" width=\""),
        "{}",
        sheet.xml
    );

    // "failed" is failed and retrying, newest first: the retrying delivery, then the failed one.
    assert_eq!(sheet.rows(), 3, "the header and two deliveries");
    assert_eq!(sheet.text("A2"), retrying[0].to_string(), "a number cell");
    assert_eq!(sheet.text("A3"), failed[0].to_string());
    assert_eq!(sheet.cells["A3"].0, failed[0].to_string());
    assert_eq!(sheet.text("B3"), STTTT);
    assert_eq!(sheet.text("D3"), NGHEAN);
    assert_eq!(sheet.text("E3"), "peer:nghean");
    assert_eq!(sheet.text("F3"), "Gửi không thành công");
    assert_eq!(sheet.text("G3"), "1");
    assert_eq!(sheet.text("H3"), "PEER_UNREACHABLE");
    assert_eq!(sheet.text("I3"), "kết nối tới nghean bị từ chối");
    assert_eq!(sheet.text("F2"), "Chờ gửi lại");
    assert_eq!(sheet.text("I2"), "máy chủ nghean đang bảo trì");
    // Times are Excel date-times (days since 1899-12-30) in Vietnam's time, shown dd/mm/yyyy.
    let d = n.store().delivery(failed[0]).await.unwrap();
    let serial = |ms: i64| (ms.div_euclid(1000) + 7 * 3600) as f64 / 86_400.0 + 25_569.0;
    let created: f64 = sheet.text("J3").parse().expect("a number, not text");
    assert!((created - serial(d.created_at)).abs() < 1e-6, "{created}");
    let updated: f64 = sheet.text("K3").parse().unwrap();
    assert!((updated - serial(d.updated_at)).abs() < 1e-6, "{updated}");
    assert_eq!(sheet.format("J3"), Some("dd/mm/yyyy hh:mm"));
    assert_eq!(sheet.text("L3"), "", "not delivered: no time");

    // The same rows as the CSV of the same filter (one row producer, two writers).
    let csv = client()
        .get(n.url("/console/deliveries.csv?state=failed"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csv_ids: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_owned())
        .collect();
    assert_eq!(csv_ids, [sheet.text("A2"), sheet.text("A3")]);

    // A bad filter is the page's answer, not a file.
    let r = client()
        .get(n.url("/console/deliveries.xlsx?from=31%2F02%2F2026"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("ngày/tháng/năm"));
    n.shutdown().await;
}
