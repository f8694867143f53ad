//! The human view of the clerk API's answers (`send`, `inbox …`, `sent …` without `--json`):
//! lists as tables, one document as `label: value` lines with its deliveries and statuses as
//! small tables, in Vietnamese for the clerk who reads them. Pure: JSON in, text out; `--json`
//! prints the node's answer instead.
//!
//! Times are shown in one form everywhere, Vietnam time (UTC+7, the time on the clerk's wall
//! and in the documents' own dates) to the minute: `2026-12-07 12:26`. The API's RFC 3339 (UTC)
//! is what `--json` gives.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use lienthong::edxml::StatusCode;

use super::table::{Fields, Table};

/// Vietnam's offset from UTC (no daylight saving).
pub(super) fn vietnam() -> UtcOffset {
    UtcOffset::from_hms(7, 0, 0).unwrap_or(UtcOffset::UTC)
}

/// An API time (RFC 3339) as the human views show it; anything else as it is.
pub(super) fn time(v: &Value) -> String {
    let Some(s) = v.as_str() else {
        return String::new();
    };
    let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) else {
        return s.to_owned();
    };
    let t = t.to_offset(vietnam());
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// A package date (`2026/12/01`, the edXML form) in the form times are shown: `2026-12-01`.
fn date(v: &Value) -> String {
    let s = text(v);
    let b = s.as_bytes();
    if b.len() == 10 && b[4] == b'/' && b[7] == b'/' {
        s.replace('/', "-")
    } else {
        s
    }
}

/// A status code with its meaning: `03 Đã tiếp nhận, vào sổ`.
pub(super) fn status(code: &str) -> String {
    match StatusCode::parse(code) {
        Ok(c) => format!("{} {}", c.as_wire(), c.meaning_vi()),
        Err(_) => code.to_owned(),
    }
}

/// A delivery's state (`queued`, …) in the clerk's words.
fn delivery_state(s: &str) -> String {
    match s {
        "queued" => "Chờ gửi",
        "sending" => "Đang gửi",
        "delivered" => "Đã chuyển đến",
        "retrying" => "Chờ gửi lại",
        "failed" => "Gửi không được",
        "rejected" => "Bị từ chối",
        "cancelled" => "Đã hủy gửi",
        other => other,
    }
    .to_owned()
}

/// An attempt's outcome in the clerk's words.
fn outcome(s: &str) -> String {
    match s {
        "delivered" => "Đã chuyển đến",
        "retry" => "Lỗi, sẽ gửi lại",
        "failed" => "Lỗi, dừng gửi",
        "expired" => "Bị gián đoạn, gửi lại",
        "superseded" => "Bị từ chối trong lúc gửi",
        other => other,
    }
    .to_owned()
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `số/ký hiệu` of a list item or document: `125/STTTT-CĐS`.
fn number(v: &Value) -> String {
    let n = text(&v["number"]);
    let k = text(&v["notation"]);
    match (n.is_empty(), k.is_empty()) {
        (false, false) => format!("{n}/{k}"),
        (false, true) => n,
        (true, false) => k,
        (true, true) => String::new(),
    }
}

/// A delivery's state as a clerk asks about it: the recipient's latest status when it reported
/// one, otherwise where the delivery is.
fn delivery_summary(d: &Value) -> String {
    match d["latest_status"].as_str() {
        Some(s) => status(s),
        None => delivery_state(&text(&d["state"])),
    }
}

fn items(page: &Value) -> &[Value] {
    page["items"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// `sent list`: one line per recipient of each document (a line is whole on its own, for grep).
pub(super) fn sent_list(page: &Value) -> Table {
    let mut t = Table::new(&[
        "ID",
        "SỐ/KÝ HIỆU",
        "GỬI LÚC",
        "NƠI NHẬN",
        "TRẠNG THÁI",
        "TRÍCH YẾU",
    ])
    .flexible(5)
    .optional(2)
    .optional(4)
    .optional(3);
    for v in items(page) {
        let deliveries = v["deliveries"].as_array().cloned().unwrap_or_default();
        let row = |d: Option<&Value>| {
            vec![
                text(&v["id"]),
                number(v),
                time(&v["created_at"]),
                d.map(|d| text(&d["recipient"])).unwrap_or_default(),
                d.map(delivery_summary).unwrap_or_default(),
                text(&v["subject"]),
            ]
        };
        if deliveries.is_empty() {
            t.row(row(None));
        }
        for d in &deliveries {
            t.row(row(Some(d)));
        }
    }
    t
}

/// `inbox list`.
pub(super) fn inbox_list(page: &Value) -> Table {
    let mut t = Table::new(&[
        "ID",
        "SỐ/KÝ HIỆU",
        "NƠI GỬI",
        "NHẬN LÚC",
        "TRẠNG THÁI",
        "TRÍCH YẾU",
    ])
    .flexible(5)
    .optional(3)
    .optional(4)
    .optional(2);
    for v in items(page) {
        t.row(vec![
            text(&v["id"]),
            number(v),
            text(&v["sender"]),
            time(&v["received_at"]),
            inbox_state(v),
            text(&v["subject"]),
        ]);
    }
    t
}

/// Where a received document is: its latest status, or none yet; revoked first.
fn inbox_state(v: &Value) -> String {
    let s = match v["status"].as_str() {
        Some(s) => status(s),
        None => "Chưa báo trạng thái".to_owned(),
    };
    if v["revoked"].as_bool() == Some(true) {
        format!("Đã bị thu hồi; {s}")
    } else {
        s
    }
}

/// What follows a list: how to get the next page, or that there is nothing.
pub(super) fn list_footer(page: &Value, shown: usize) -> String {
    let mut out = String::new();
    if shown == 0 {
        out.push_str("Không có văn bản nào.\n");
    }
    if let Some(b) = page["next_before"].as_i64() {
        out.push_str(&format!(
            "Còn trang sau: thêm --before {b} vào lệnh (hoặc --all để xem tất cả).\n"
        ));
    }
    out
}

/// The header fields both show views have, from the stored package header (`signature`:
/// whether to say how it is signed, which `inbox show` says first).
fn header_fields(f: &mut Fields, v: &Value, signature: bool) {
    let h = &v["header"]["header"];
    f.add("Số/ký hiệu", number(v));
    f.add("Trích yếu", text(&v["subject"]));
    f.add("Loại văn bản", text(&h["document_type"]["type_name"]));
    let place = text(&h["promulgation_info"]["place"]);
    let promulgated = date(&h["promulgation_info"]["date"]);
    f.add(
        "Ngày ban hành",
        [promulgated, place].join(" ").trim().to_owned(),
    );
    if !h["due_date"].is_null() {
        f.add("Hạn xử lý", date(&h["due_date"]));
    }
    let s = &h["signer_info"];
    let signer: Vec<String> = ["competence", "position", "full_name"]
        .iter()
        .map(|k| text(&s[*k]))
        .filter(|x| !x.trim().is_empty())
        .collect();
    f.add("Người ký", signer.join(" "));
    if signature {
        f.add("Chữ ký số", text(&v["signature"]["description"]));
    }
    f.add("Mã văn bản", text(&v["document_id"]));
}

/// The recipients' status reports of `history` as a table.
fn history_table(history: &[Value]) -> Table {
    let mut t = Table::new(&["LÚC", "BÊN BÁO", "TRẠNG THÁI", "GHI CHÚ"]).flexible(3);
    for s in history {
        t.row(vec![
            time(&s["reported_at"]),
            text(&s["reporter"]),
            status(&text(&s["code"])),
            text(&s["description"]),
        ]);
    }
    t
}

/// Appends a titled, indented table (or `(không có)`).
fn section(out: &mut String, title: &str, t: &Table, width: Option<usize>) {
    out.push('\n');
    out.push_str(title);
    out.push_str(":\n");
    if t.is_empty() {
        out.push_str("  (không có)\n");
        return;
    }
    for line in t.render(width.map(|w| w.saturating_sub(2))).lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
}

/// `sent show`.
pub(super) fn sent_show(v: &Value, width: Option<usize>) -> String {
    let mut out = format!("Văn bản đi #{}\n", text(&v["id"]));
    let mut f = Fields::new();
    header_fields(&mut f, v, true);
    f.add("Tạo lúc", time(&v["created_at"]));
    out.push_str(&f.render(2));
    let deliveries = v["deliveries"].as_array().cloned().unwrap_or_default();
    let mut t = Table::new(&[
        "NƠI NHẬN",
        "TRẠNG THÁI",
        "SỐ LẦN GỬI",
        "ĐÃ CHUYỂN LÚC",
        "LỖI GẦN NHẤT",
    ])
    .flexible(4);
    let mut attempts = Table::new(&["NƠI NHẬN", "LẦN", "BẮT ĐẦU", "KẾT QUẢ", "LỖI"]).flexible(4);
    let mut history = Vec::new();
    for d in &deliveries {
        let recipient = text(&d["recipient"]);
        t.row(vec![
            recipient.clone(),
            delivery_summary(d),
            text(&d["attempts"]),
            time(&d["delivered_at"]),
            error(&d["last_error"]),
        ]);
        for a in d["attempt_log"].as_array().into_iter().flatten() {
            attempts.row(vec![
                recipient.clone(),
                text(&a["number"]),
                time(&a["started_at"]),
                a["outcome"]
                    .as_str()
                    .map(outcome)
                    .unwrap_or_else(|| "Đang gửi".to_owned()),
                error(&a["error"]),
            ]);
        }
        history.extend(d["history"].as_array().into_iter().flatten().cloned());
    }
    history.sort_by_key(|s| text(&s["reported_at"]));
    section(&mut out, "Nơi nhận", &t, width);
    section(&mut out, "Các lần gửi", &attempts, width);
    section(
        &mut out,
        "Trạng thái xử lý",
        &history_table(&history),
        width,
    );
    out
}

fn error(e: &Value) -> String {
    if e.is_null() {
        return String::new();
    }
    let code = text(&e["code"]);
    let message = text(&e["message"]);
    if message.is_empty() {
        code
    } else {
        format!("{code}: {message}")
    }
}

/// `inbox show`: first, in the clerk's words, whether it is signed at all (a document a channel
/// authenticated is not).
pub(super) fn inbox_show(v: &Value, width: Option<usize>) -> String {
    let mut out = String::new();
    if let Some(d) = v["signature"]["description"].as_str() {
        // The description is a whole sentence that starts with what it is about ("Chữ ký số
        // hợp lệ: …", "Không có chữ ký số — …"): a label before it would say it twice.
        out.push_str(&format!("{d}\n"));
    }
    out.push_str(&format!("Văn bản đến #{}\n", text(&v["id"])));
    let h = &v["header"]["header"];
    let mut f = Fields::new();
    let sender_name = text(&h["from"]["organ_name"]);
    f.add(
        "Nơi gửi",
        [text(&v["sender"]), sender_name]
            .join(" ")
            .trim()
            .to_owned(),
    );
    header_fields(&mut f, v, false);
    f.add("Nhận lúc", time(&v["received_at"]));
    f.add("Trạng thái", inbox_state(v));
    out.push_str(&f.render(2));
    let mut files = Table::new(&["SỐ", "TÊN TỆP", "LOẠI", "KÍCH THƯỚC"]).flexible(1);
    let list = v["header"]["attachments"].as_array().cloned();
    for (i, a) in list.into_iter().flatten().enumerate() {
        files.row(vec![
            (i + 1).to_string(),
            // Escaped: a bidirectional override would reorder the line on a terminal.
            text(&a["name"]).escape_debug().to_string(),
            text(&a["content_type"]),
            format!("{} byte", text(&a["size"])),
        ]);
    }
    section(&mut out, "Tệp đính kèm", &files, width);
    let history = v["history"].as_array().cloned().unwrap_or_default();
    section(
        &mut out,
        "Trạng thái đã báo",
        &history_table(&history),
        width,
    );
    out
}

/// `send`'s answer: what was accepted and for whom; a replay said as such.
pub(super) fn submitted(v: &Value, width: Option<usize>) -> String {
    let mut out = String::new();
    if v["existing"].as_bool() == Some(true) {
        out.push_str(
            "Đây là văn bản đã gửi trước đó với cùng Idempotency-Key: văn bản KHÔNG được gửi lại.\n",
        );
    } else {
        out.push_str("Nút đã nhận văn bản và sẽ gửi đi.\n");
    }
    let mut f = Fields::new();
    f.add("ID", text(&v["id"]));
    f.add("Mã văn bản", text(&v["document_id"]));
    out.push_str(&f.render(2));
    let mut t = Table::new(&["NƠI NHẬN", "MÃ LẦN CHUYỂN"]);
    for d in v["deliveries"].as_array().into_iter().flatten() {
        t.row(vec![text(&d["recipient"]), text(&d["delivery_id"])]);
    }
    section(&mut out, "Nơi nhận", &t, width);
    out
}

/// The answer's `warnings`, one line each (strings, or objects with a message).
pub(super) fn warnings(v: &Value) -> Vec<String> {
    v["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| match w {
            Value::String(s) => s.clone(),
            w => {
                let msg = ["message_vi", "message"]
                    .iter()
                    .map(|k| text(&w[*k]))
                    .find(|m| !m.is_empty())
                    .unwrap_or_else(|| w.to_string());
                match w["code"].as_str() {
                    Some(c) => format!("{c}: {msg}"),
                    None => msg,
                }
            }
        })
        .collect()
}

/// `inbox status`'s answer.
pub(super) fn reported(v: &Value, id: i64, code: &str) -> String {
    if v["duplicate"].as_bool() == Some(true) {
        format!(
            "Trạng thái {} của văn bản #{id} đã được ghi nhận trước đó; không gửi lại.\n",
            status(code)
        )
    } else {
        format!(
            "Đã ghi nhận trạng thái {} của văn bản #{id}; sẽ gửi về bên gửi.\n",
            status(code)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_are_vietnam_time_to_the_minute() {
        assert_eq!(time(&json!("2026-12-07T05:26:46Z")), "2026-12-07 12:26");
        assert_eq!(time(&json!("2026-12-31T20:00:00Z")), "2027-01-01 03:00");
        assert_eq!(time(&json!("yesterday")), "yesterday");
        assert_eq!(time(&Value::Null), "");
    }

    #[test]
    fn warnings_are_strings_or_coded_objects() {
        let v = json!({ "warnings": [
            "plain",
            { "code": "NO_FILE", "message": "no file", "message_vi": "Không có tệp" },
            { "message": "only English" },
        ]});
        assert_eq!(
            warnings(&v),
            ["plain", "NO_FILE: Không có tệp", "only English"]
        );
        assert!(warnings(&json!({})).is_empty());
    }

    #[test]
    fn a_narrow_sent_list_keeps_id_number_and_subject() {
        let page = json!({ "items": [{
            "id": 12, "number": "125", "notation": "STTTT-CĐS",
            "created_at": "2026-12-07T05:26:46Z",
            "subject": "V/v triển khai hệ thống quản lý văn bản điện tử",
            "deliveries": [
                { "recipient": "000.00.04.H21", "state": "delivered", "latest_status": "03" },
                { "recipient": "000.00.00.H41", "state": "retrying", "latest_status": null },
            ],
        }], "next_before": 12 });
        let wide = sent_list(&page).render(None);
        assert_eq!(wide.lines().count(), 3, "{wide}");
        assert!(wide.contains("03 Đã tiếp nhận, vào sổ"), "{wide}");
        assert!(wide.contains("Chờ gửi lại"), "{wide}");
        assert!(wide.contains("2026-12-07 12:26"), "{wide}");
        let narrow = sent_list(&page).render(Some(40));
        for l in narrow.lines() {
            assert!(unicode_width::UnicodeWidthStr::width(l) <= 40, "{l:?}");
            assert!(
                l.starts_with("12  125/STTTT-CĐS") || l.starts_with("ID"),
                "{l:?}"
            );
        }
        assert_eq!(
            list_footer(&page, 1),
            "Còn trang sau: thêm --before 12 vào lệnh (hoặc --all để xem tất cả).\n"
        );
    }

    #[test]
    fn statuses_carry_their_meaning() {
        assert_eq!(status("03"), "03 Đã tiếp nhận, vào sổ");
        assert_eq!(status("zz"), "zz");
    }
}
