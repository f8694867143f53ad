//! The clerk's command line against a real node: `send`, `sent list|show`, `inbox list|show|
//! status` with and without `--json` (human output compared with expected text, times
//! normalised), errors on stderr or as JSON on stdout with their exit statuses, paging, the
//! table fitted to `COLUMNS`, and `inspect` with empty fields. Every `--json` answer the CLI
//! prints is checked against the OpenAPI description.

mod common;

use std::process::Output;
use std::time::Duration;

use common::nodes::*;
use common::openapi::spec;
use common::*;
use lienthong::store::{DeliveryState, Store};
use serde_json::Value;
use tokio::net::TcpListener;
use unicode_width::UnicodeWidthStr;

/// The Gia Lai node with its two departments and no peer (every dispatch stays on the node),
/// and its outbox worker.
async fn node() -> TestNode {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    start(l, |d| {
        let store = format!("sqlite://{}?mode=rwc", d.join("node.db").display());
        node_table("gialai", "127.0.0.1:0", &store)
            + &gialai_departments()
            + "[retry]\ninitial_backoff = \"50ms\"\n"
    })
    .await
    .with_worker()
}

/// Runs `lienthong ARGS --node N --token T` (no `COLUMNS` unless `columns`).
fn cli(n: &TestNode, token: &str, args: &[&str], columns: Option<usize>) -> Output {
    let mut cmd = bin();
    cmd.args(args)
        .args(["--node", &n.base, "--token", token])
        .env_remove("COLUMNS")
        .env_remove("LIENTHONG_NODE")
        .env_remove("LIENTHONG_TOKEN");
    if let Some(c) = columns {
        cmd.env("COLUMNS", c.to_string());
    }
    cmd.output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\n{}\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// The answer printed with `--json`, checked against the description of `GET|POST path`.
fn json_checked(o: &Output, method: &str, path: &str, status: u16) -> Value {
    let out = ok(o);
    if let Err(e) = spec().check(
        method,
        path,
        status,
        Some("application/json"),
        out.as_bytes(),
    ) {
        panic!("OpenAPI: {method} {path}: {e}\n{out}");
    }
    serde_json::from_str(&out).unwrap()
}

/// `text` with every shown time (`2026-12-07 12:26`) as `<TIME>`.
fn normalise(text: &str) -> String {
    let pattern = |w: &[u8]| {
        w.len() == 16
            && w.iter().enumerate().all(|(i, b)| match i {
                4 | 7 => *b == b'-',
                10 => *b == b' ',
                13 => *b == b':',
                _ => b.is_ascii_digit(),
            })
    };
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if i + 16 <= bytes.len() && pattern(&bytes[i..i + 16]) {
            out.push_str("<TIME>          ");
            i += 16;
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Waits until every delivery of message `id` has settled (the worker delivers on its own
/// schedule; the budget only bounds a loaded machine, it decides nothing).
async fn settled(n: &TestNode, id: i64) {
    for _ in 0..2400 {
        let item = n.store().outgoing_item(STTTT, id).await.unwrap();
        if item
            .deliveries
            .iter()
            .all(|d| matches!(d.state, DeliveryState::Delivered | DeliveryState::Failed))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("delivery of {id} did not settle");
}

const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_list_and_show_human_and_json() {
    let n = node().await;
    let dir = tempfile::tempdir().unwrap();
    let docx = dir.path().join("Phụ lục.docx");
    std::fs::write(&docx, b"not really a docx").unwrap();
    let content = dir.path().join("noi-dung.txt");
    std::fs::write(&content, "Kính gửi: Sở Nội vụ.").unwrap();

    let to_name = format!("{SONV}=Sở Nội vụ tỉnh Gia Lai");
    let (content_path, docx_path) = (content.to_str().unwrap(), docx.to_str().unwrap());
    let send_args = [
        "send",
        "--to-name",
        &to_name,
        "--number",
        "125",
        "--confirm-number",
        "--notation",
        "STTTT-CĐS",
        "--subject",
        "V/v triển khai hệ thống quản lý văn bản",
        "--date",
        "2026-12-01",
        "--due-date",
        "2026-12-15",
        "--place",
        "Pleiku",
        "--content-file",
        content_path,
        "--signer",
        "Nguyễn Văn An",
        "--position",
        "PHÓ GIÁM ĐỐC",
        "--competence",
        "KT. GIÁM ĐỐC",
        "--attach",
        docx_path,
        "--idempotency-key",
        "k-1",
    ];
    let o = cli(&n, TOK_STTTT, &send_args, None);
    assert_eq!(
        ok(&o),
        "Nút đã nhận văn bản và sẽ gửi đi.\n  \
         ID:         1\n  \
         Mã văn bản: 000.00.05.H21,2026/12/01,125/STTTT-CĐS\n\
         \n\
         Nơi nhận:\n  \
         NƠI NHẬN       MÃ LẦN CHUYỂN\n  \
         000.00.04.H21  1\n"
    );
    // The same request with the same key again: a replay, said so, nothing sent.
    let again = cli(&n, TOK_STTTT, &send_args, None);
    let text = ok(&again);
    assert!(
        text.starts_with(
            "Đây là văn bản đã gửi trước đó với cùng Idempotency-Key: văn bản KHÔNG được gửi lại.\n"
        ),
        "{text}"
    );
    // Another request with the same key: refused (exit 1), both languages on stderr.
    let reused = cli(
        &n,
        TOK_STTTT,
        &[
            "send",
            "--to",
            SONV,
            "--notation",
            "STTTT-CĐS",
            "--subject",
            "V/v khác",
            "--idempotency-key",
            "k-1",
        ],
        None,
    );
    assert_eq!(reused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&reused.stderr);
    assert!(err.starts_with("IDEMPOTENCY_KEY_REUSED: "), "{err}");
    assert!(
        err.contains("metadata.subject") && err.contains("(HTTP 422)"),
        "{err}"
    );
    assert!(err.contains("\n  Khóa chống gửi trùng"), "{err}");
    settled(&n, 1).await;

    // sent list: the human table and the node's JSON.
    let o = cli(&n, TOK_STTTT, &["sent", "list"], None);
    let table = normalise(&ok(&o));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "ID  SỐ/KÝ HIỆU     GỬI LÚC           NƠI NHẬN       TRẠNG THÁI     TRÍCH YẾU"
    );
    assert!(
        lines[1].starts_with("1   125/STTTT-CĐS  <TIME>            000.00.04.H21  "),
        "{table}"
    );
    assert!(
        lines[1].ends_with("V/v triển khai hệ thống quản lý văn bản"),
        "{table}"
    );
    assert_eq!(lines.len(), 2, "{table}");
    let v = json_checked(
        &cli(&n, TOK_STTTT, &["sent", "list", "--json"], None),
        "GET",
        "/api/v1/documents",
        200,
    );
    assert_eq!(v["items"][0]["id"], 1, "{v}");

    // sent show.
    let o = cli(&n, TOK_STTTT, &["sent", "show", "1"], None);
    let show = normalise(&ok(&o));
    let head = "Văn bản đi #1\n  \
        Số/ký hiệu:    125/STTTT-CĐS\n  \
        Trích yếu:     V/v triển khai hệ thống quản lý văn bản\n  \
        Loại văn bản:  Công văn\n  \
        Ngày ban hành: ";
    assert!(show.starts_with(head), "{show}");
    for want in [
        "  Hạn xử lý:     ",
        "  Người ký:      KT. GIÁM ĐỐC PHÓ GIÁM ĐỐC Nguyễn Văn An\n",
        "  Chữ ký số:     Đã ký số: ",
        "  Mã văn bản:    000.00.05.H21,2026/12/01,125/STTTT-CĐS\n",
        "  Tạo lúc:       <TIME>          \n",
        "\nNơi nhận:\n  NƠI NHẬN       TRẠNG THÁI",
        "\nCác lần gửi:\n  NƠI NHẬN       LẦN  BẮT ĐẦU           KẾT QUẢ        LỖI\n  \
         000.00.04.H21  1    <TIME>            Đã chuyển đến  -\n",
        "\nTrạng thái xử lý:\n",
    ] {
        assert!(show.contains(want), "{want:?} not in\n{show}");
    }
    let v = json_checked(
        &cli(&n, TOK_STTTT, &["sent", "show", "1", "--json"], None),
        "GET",
        "/api/v1/documents/1",
        200,
    );
    assert_eq!(
        v["header"]["header"]["content"], "Kính gửi: Sở Nội vụ.",
        "{v}"
    );
    assert_eq!(
        v["header"]["header"]["to"][0]["organ_name"], "Sở Nội vụ tỉnh Gia Lai",
        "{v}"
    );
    assert_eq!(
        v["header"]["header"]["promulgation_info"]["place"], "Pleiku",
        "{v}"
    );

    // The recipient's inbox: the .docx arrived as a .docx.
    let v = json_checked(
        &cli(&n, TOK_SONV, &["inbox", "list", "--json"], None),
        "GET",
        "/api/v1/inbox",
        200,
    );
    let id = v["items"][0]["id"].as_i64().unwrap();
    let path = format!("/api/v1/inbox/{id}");
    let v = json_checked(
        &cli(
            &n,
            TOK_SONV,
            &["inbox", "show", &id.to_string(), "--json"],
            None,
        ),
        "GET",
        &path,
        200,
    );
    assert_eq!(v["header"]["attachments"][0]["content_type"], DOCX, "{v}");
    let r = ApiClient::new()
        .get(n.url(&format!("/api/v1/inbox/{id}/attachments/1")))
        .bearer_auth(TOK_SONV)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], DOCX);

    let o = cli(&n, TOK_SONV, &["inbox", "list"], None);
    let table = normalise(&ok(&o));
    assert!(
        table.starts_with("ID  SỐ/KÝ HIỆU     NƠI GỬI        NHẬN LÚC          TRẠNG THÁI"),
        "{table}"
    );
    assert!(
        table.contains(&format!("{id}   125/STTTT-CĐS  000.00.05.H21  <TIME>  ")),
        "{table}"
    );

    let o = cli(&n, TOK_SONV, &["inbox", "show", &id.to_string()], None);
    let show = normalise(&ok(&o));
    assert!(show.starts_with("Chữ ký số hợp lệ: "), "{show}");
    let first = format!(
        "\nVăn bản đến #{id}\n  Nơi gửi:       000.00.05.H21 Sở Thông tin và Truyền thông tỉnh Gia Lai\n"
    );
    for want in [
        first.as_str(),
        "  Số/ký hiệu:    125/STTTT-CĐS\n",
        "\nTệp đính kèm:\n  SỐ  TÊN TỆP       LOẠI",
        "\n  1   Phụ lục.docx  application/vnd.openxmlformats-officedocument.wordprocessingml.document  17 byte\n",
    ] {
        assert!(show.contains(want), "{want:?} not in\n{show}");
    }

    // A status code the node refuses names the flag typed, in both languages (the node's
    // message kept after it).
    let o = cli(
        &n,
        TOK_SONV,
        &["inbox", "status", &id.to_string(), "--code", "99"],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].contains(": --code 99: code"), "{err}");
    assert!(lines[1].starts_with("  --code 99: "), "{err}");

    // A package that cannot be written where -o says: the flag, the path and why, exit 3.
    let o = cli(
        &n,
        TOK_SONV,
        &[
            "inbox",
            "package",
            &id.to_string(),
            "-o",
            "/nonexistent/p.edxml",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with(
            "IO: --output /nonexistent/p.edxml: cannot write: its folder does not exist"
        ),
        "{err}"
    );
    assert!(err.contains("không ghi được tệp"), "{err}");

    // A status reported, then shown with its meaning.
    let o = cli(
        &n,
        TOK_SONV,
        &["inbox", "status", &id.to_string(), "--code", "03"],
        None,
    );
    assert_eq!(
        ok(&o),
        format!(
            "Đã ghi nhận trạng thái 03 Đã tiếp nhận, vào sổ của văn bản #{id}; sẽ gửi về bên gửi.\n"
        )
    );
    let o = cli(&n, TOK_SONV, &["inbox", "list", "--status", "03"], None);
    assert!(ok(&o).contains("03 Đã tiếp nhận, vào sổ"), "{}", stdout(&o));

    // A table fitted to 40 columns: every line fits, the subject cut with `…`.
    let o = cli(&n, TOK_STTTT, &["sent", "list"], Some(40));
    let table = ok(&o);
    for l in table.lines() {
        assert!(l.width() <= 40, "{} columns: {l:?}", l.width());
    }
    assert!(
        table.contains("125/STTTT-CĐS") && table.contains('…'),
        "{table}"
    );
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_in_both_languages_or_as_json_on_stdout() {
    let n = node().await;
    // The node's refusal: code, English message and HTTP status, then the Vietnamese; exit 1.
    let o = cli(&n, TOK_STTTT, &["sent", "show", "999"], None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with("NOT_FOUND: "), "{err}");
    assert!(lines[0].contains("999"), "{err}");
    assert!(lines[0].ends_with(" (HTTP 404)"), "{err}");
    assert!(lines[1].starts_with("  Không tìm thấy"), "{err}");

    // --json: the node's error body with ok and http_status, on stdout; nothing on stderr.
    let o = cli(&n, TOK_STTTT, &["sent", "show", "999", "--json"], None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "");
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["http_status"], 404, "{v}");
    assert_eq!(v["code"], "NOT_FOUND", "{v}");
    assert!(v["message"].as_str().unwrap().contains("999"), "{v}");
    assert!(!v["message_vi"].as_str().unwrap().is_empty(), "{v}");

    // A wrong token.
    let o = cli(&n, "not-a-token", &["inbox", "list"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("UNAUTHENTICATED: "),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("(HTTP 401)"), "{}", stderr(&o));

    // A refusal of the submission names the field, in both languages.
    let o = cli(
        &n,
        TOK_STTTT,
        &[
            "send",
            "--to",
            "000.00.00.H14",
            "--notation",
            "STTTT-VP",
            "--subject",
            "V/v",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("NO_ROUTE: --to 000.00.00.H14: metadata.recipients[0]"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(
        err.lines()
            .nth(1)
            .unwrap()
            .starts_with("  --to 000.00.00.H14: "),
        "{err}"
    );

    // The flag and the value typed lead the node's refusal: a bad --date, the second of --to.
    let send = |extra: &[&str], json: bool| {
        let mut args = vec!["send", "--notation", "X", "--subject", "V/v"];
        args.extend_from_slice(extra);
        if json {
            args.push("--json");
        }
        cli(&n, TOK_STTTT, &args, None)
    };
    let o = send(
        &["--content", "x", "--to", SONV, "--date", "2026-13-01"],
        false,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("VALUE_INVALID: --date 2026-13-01: metadata.date"),
        "{err}"
    );
    assert!(
        err.lines()
            .nth(1)
            .unwrap()
            .starts_with("  --date 2026-13-01: "),
        "{err}"
    );
    let o = send(&["--content", "x", "--to", &format!("{SONV},abc")], false);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(": --to abc: metadata.recipients[1]"), "{err}");
    let o = send(
        &["--content", "x", "--to", SONV, "--to-name", "abc=Sở Y tế"],
        false,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(": --to-name \"abc=Sở Y tế\": metadata.recipients[1]"),
        "{err}"
    );
    // --json: the node's body as it is, no flag added.
    let o = send(
        &["--content", "x", "--to", SONV, "--date", "2026-13-01"],
        true,
    );
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        v["message"].as_str().unwrap().starts_with("metadata.date"),
        "{v}"
    );
    assert!(!v.to_string().contains("--date"), "{v}");

    // Files the user named that cannot be read: the flag and path, what is wrong and what to
    // do, in both languages; exit 3 (1 for one over the package limit, as before).
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.pdf");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(lienthong::edxml::xml::Limits::default().max_package_bytes as u64 + 1)
        .unwrap();
    let d = dir.path().display().to_string();
    let b = big.display().to_string();
    for (flag, path, en, vi, exit) in [
        (
            "--attach",
            "/nonexistent",
            "IO: --attach /nonexistent: no such file",
            "  “--attach /nonexistent”: không tìm thấy tệp; kiểm tra lại đường dẫn.",
            3,
        ),
        (
            "--attach",
            d.as_str(),
            "is a folder, not a file",
            "đây là một thư mục",
            3,
        ),
        (
            "--attach",
            b.as_str(),
            "too large",
            "vượt quá dung lượng cho phép",
            // PACKAGE_TOO_LARGE, a refusal as for a package too large.
            1,
        ),
        (
            "--content-file",
            "/nonexistent",
            "IO: --content-file /nonexistent: no such file",
            "không tìm thấy tệp",
            3,
        ),
    ] {
        let o = send(&["--to", SONV, flag, path], false);
        assert_eq!(o.status.code(), Some(exit), "{}", stderr(&o));
        let err = stderr(&o);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(lines[0].contains(&format!("{flag} {path}: ")), "{err}");
        assert!(lines[0].contains(en), "{err}");
        assert!(lines[1].contains(vi), "{err}");
        assert!(!err.contains("quản trị viên"), "{err}");
    }

    // A local problem (an attachment that is not there): exit 3, both languages, or JSON.
    let o = cli(
        &n,
        TOK_STTTT,
        &[
            "send",
            "--to",
            SONV,
            "--notation",
            "X",
            "--subject",
            "V/v",
            "--attach",
            "/nonexistent/a.pdf",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("IO: --attach /nonexistent/a.pdf: no such file"),
        "{}",
        stderr(&o)
    );
    let o = cli(
        &n,
        TOK_STTTT,
        &[
            "send",
            "--json",
            "--to",
            SONV,
            "--notation",
            "X",
            "--subject",
            "V/v",
            "--attach",
            "/nonexistent/a.pdf",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(3));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["code"], "IO", "{v}");
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["http_status"].is_null(), "{v}");
    assert!(
        v["message_vi"]
            .as_str()
            .unwrap()
            .contains("không tìm thấy tệp"),
        "{v}"
    );
    n.shutdown().await;

    // A node nobody answers at: one line with the URL and the cause, both languages, exit 3.
    let nobody = format!("http://{}", reserve_port());
    for json in [false, true] {
        let mut cmd = bin();
        cmd.args(["sent", "list", "--node", &nobody, "--token", "t"]);
        if json {
            cmd.arg("--json");
        }
        let o = cmd.output().unwrap();
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        if json {
            let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
            assert_eq!(v["ok"], false, "{v}");
            assert!(v["message"].as_str().unwrap().contains(&nobody), "{v}");
            assert!(
                v["message"]
                    .as_str()
                    .unwrap()
                    .contains("connection refused"),
                "{v}"
            );
        } else {
            let err = stderr(&o);
            let lines: Vec<&str> = err.lines().collect();
            assert_eq!(lines.len(), 2, "{err}");
            assert_eq!(
                lines[0],
                format!(
                    "IO: cannot reach the node at {nobody}: connection refused (nothing listens there)"
                )
            );
            assert_eq!(
                lines[1],
                format!(
                    "  Không kết nối được tới nút tại {nobody}: máy chủ từ chối kết nối (không có dịch vụ nào nghe ở địa chỉ này)."
                )
            );
        }
    }
    // Not a URL at all: bad usage (exit 2) before anything is sent.
    let o = bin()
        .args(["sent", "list", "--node", "127.0.0.1:8440", "--token", "t"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_date_filters() {
    let n = node().await;
    for i in 0..3 {
        let subject = format!("V/v số {i}");
        let o = cli(
            &n,
            TOK_STTTT,
            &[
                "send",
                "--to",
                SONV,
                "--notation",
                "STTTT-VP",
                "--subject",
                &subject,
                "--content",
                "Kính gửi: Sở Nội vụ.",
            ],
            None,
        );
        ok(&o);
    }
    // --all follows the pages to the end.
    let o = cli(
        &n,
        TOK_STTTT,
        &["sent", "list", "--per-page", "1", "--all", "--json"],
        None,
    );
    let v: Value = serde_json::from_str(&ok(&o)).unwrap();
    let ids: Vec<i64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{v}");
    assert!(ids[0] > ids[1] && ids[1] > ids[2], "{v}");
    assert!(v.get("next_before").is_none(), "{v}");
    // One page of one, and how to get the next.
    let o = cli(&n, TOK_STTTT, &["sent", "list", "--per-page", "1"], None);
    let text = ok(&o);
    assert!(text.contains("V/v số 2"), "{text}");
    assert!(
        text.ends_with(&format!(
            "Còn trang sau: thêm --before {} vào lệnh (hoặc --all để xem tất cả).\n",
            ids[0]
        )),
        "{text}"
    );
    let before = ids[0].to_string();
    let o = cli(
        &n,
        TOK_STTTT,
        &["sent", "list", "--per-page", "1", "--before", &before],
        None,
    );
    assert!(ok(&o).contains("V/v số 1"), "{}", stdout(&o));
    let o = cli(
        &n,
        TOK_STTTT,
        &["sent", "list", "--per-page", "1", "--all"],
        None,
    );
    let text = ok(&o);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(!text.contains("--before"), "{text}");

    // Plain dates are Vietnam midnights.
    let o = cli(
        &n,
        TOK_STTTT,
        &["sent", "list", "--since", "2000-01-01"],
        None,
    );
    assert_eq!(ok(&o).lines().count(), 4, "{}", stdout(&o));
    let o = cli(
        &n,
        TOK_STTTT,
        &["sent", "list", "--until", "2000-01-01"],
        None,
    );
    assert_eq!(ok(&o), "Không có văn bản nào.\n");
    let o = cli(
        &n,
        TOK_STTTT,
        &["sent", "list", "--since", "2000-13-01"],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("VALUE_INVALID: --since"),
        "{}",
        stderr(&o)
    );
    n.shutdown().await;
}

#[test]
fn inspect_aligns_fields_and_shows_empty_ones_as_a_dash() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.edxml");
    let o = bin()
        .args([
            "package",
            "new",
            "--from",
            STTTT,
            "--to",
            SONV,
            "--number",
            "7",
            "--notation",
            "STTTT-VP",
            "--subject",
            "V/v",
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = bin().arg("inspect").arg(&out).output().unwrap();
    let text = ok(&o);
    let fields: Vec<&str> = text.lines().skip(1).collect();
    assert!(fields.len() > 5, "{text}");
    // Every value starts in the same display column.
    let column = |l: &str| {
        let (label, rest) = l.split_once(':').unwrap();
        label.width() + 1 + (rest.len() - rest.trim_start().len())
    };
    let first = column(fields[0]);
    for l in &fields {
        assert_eq!(column(l), first, "{l:?} in\n{text}");
        assert!(!l.trim_end().ends_with(':'), "{l:?}");
    }
    // The signer is empty: a dash, not a gap.
    assert!(
        fields
            .iter()
            .any(|l| l.starts_with("  signer:") && l.ends_with(" -")),
        "{text}"
    );
}
