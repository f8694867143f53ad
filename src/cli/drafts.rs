//! `lienthong drafts list|show|file|approve|discard`: the clerk API's drafts (what the mail bridge
//! made of mail from the agency's registered mailbox) from the command line. A draft is nothing
//! signed: `approve` gives what a document needs that a mail cannot, and the node numbers,
//! signs and sends it; `discard` drops it with a reason.
//!
//! Human output in Vietnamese for the clerk (as `inbox`/`sent`), `--json` the node's answer as
//! it is. Text that came from a mail (its sender, subject, file names, body) is shown with
//! control and bidirectional characters replaced, so it cannot rearrange or hide what the
//! terminal shows.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::clerk_view;
use super::client::{
    Conn, ListArgs, body_typed, client, fetch_list, get, json_of, print_json, print_text,
    report_local, runtime, unreachable,
};
use super::document::DocumentFlags;
use super::flags::Typed;
use super::table::{Fields, Table, terminal_width};
use super::{CmdResult, Failure, write_file};

#[derive(clap::Subcommand)]
pub enum Command {
    /// The agency's drafts, newest first: made from mail of its registered mailbox, waiting for
    /// a clerk (or already approved or discarded).
    List {
        #[command(flatten)]
        conn: Conn,
        /// Only drafts in this state: draft (waiting), approved, discarded.
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One draft: the mail it came from, its files and its text.
    Show {
        #[command(flatten)]
        conn: Conn,
        /// The draft's id (as the list shows it).
        id: i64,
    },
    /// One file of a draft (1 is the first), as the mail carried it.
    File {
        #[command(flatten)]
        conn: Conn,
        /// The draft's id (as the list shows it).
        id: i64,
        /// Which file: 1 is the first.
        n: u32,
        /// Where to write it.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
    /// Approve a draft: the node numbers it, signs it with the agency's key and sends it, with
    /// the draft's files. The draft's số, ký hiệu and trích yếu are used unless given here.
    Approve(Box<ApproveArgs>),
    /// Discard a draft: it is never numbered, signed or sent.
    Discard {
        #[command(flatten)]
        conn: Conn,
        /// The draft's id (as the list shows it).
        id: i64,
        /// Why (kept with the draft and in the node's audit chain).
        #[arg(long)]
        reason: String,
    },
}

/// Which page of a list to fetch (drafts and the mail log are paged, not filtered by time).
#[derive(clap::Args, Clone)]
pub struct PageArgs {
    /// Items per page, 1 to 1000 (the node's default is 50).
    #[arg(long)]
    per_page: Option<u32>,
    /// The page after the one that printed this number (its `next_before`).
    #[arg(long, conflicts_with = "all")]
    before: Option<i64>,
    /// Every page, following `next_before` to the end.
    #[arg(long)]
    all: bool,
}

impl PageArgs {
    /// As the list options of the other commands (no time range).
    pub(super) fn list(&self) -> ListArgs {
        ListArgs {
            since: None,
            until: None,
            per_page: self.per_page,
            before: self.before,
            all: self.all,
        }
    }
}

#[derive(clap::Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    conn: Conn,
    /// The draft's id (as the list shows it).
    id: i64,
    /// Số; the draft's (from its mail's subject) when absent, else the next of the agency's
    /// sequence.
    #[arg(long, conflicts_with = "next_number")]
    number: Option<u32>,
    /// Sign with the next số of the agency's sequence, not the draft's.
    #[arg(long)]
    next_number: bool,
    /// Confirms a số far above the agency's sequence (more than 100 above its next), which the
    /// node otherwise refuses (NUMBER_UNCONFIRMED) as a likely typo.
    #[arg(long)]
    confirm_number: bool,
    /// Ký hiệu, e.g. UBND-VP; the draft's when absent.
    #[arg(long)]
    notation: Option<String>,
    /// Trích yếu; the draft's when absent.
    #[arg(long)]
    subject: Option<String>,
    #[command(flatten)]
    fields: DocumentFlags,
    /// Makes a retried approval return the first one instead of failing as already approved.
    #[arg(long)]
    idempotency_key: Option<String>,
}

pub fn run(c: Command) -> CmdResult {
    let json = match &c {
        Command::List { conn, .. }
        | Command::Show { conn, .. }
        | Command::File { conn, .. }
        | Command::Discard { conn, .. } => conn.json,
        Command::Approve(a) => a.conn.json,
    };
    run_inner(c).map_err(|f| report_local(json, f))
}

fn run_inner(c: Command) -> CmdResult {
    if let Command::Approve(a) = c {
        return approve(*a);
    }
    runtime()?.block_on(async move {
        let http = client()?;
        match c {
            Command::List { conn, state, page } => {
                let url = format!("{}/api/v1/drafts", conn.node);
                let mut q = Vec::new();
                if let Some(n) = page.per_page {
                    q.push(("per_page", n.to_string()));
                }
                if let Some(s) = &state {
                    q.push(("state", s.trim().to_owned()));
                }
                let (page_v, bytes) = fetch_list(&http, &conn, &url, &page.list(), &q).await?;
                if conn.json {
                    print_json(&bytes);
                } else {
                    let t = list_table(&page_v);
                    if !t.is_empty() {
                        t.print();
                    }
                    print_text(&list_footer(&page_v, !t.is_empty()));
                }
            }
            Command::Show { conn, id } => {
                let url = format!("{}/api/v1/drafts/{id}", conn.node);
                let bytes = get(&http, &conn, url).await?;
                if conn.json {
                    print_json(&bytes);
                } else {
                    print_text(&show(&json_of(&bytes)?, terminal_width()));
                }
            }
            Command::File {
                conn,
                id,
                n,
                output,
            } => {
                let url = format!("{}/api/v1/drafts/{id}/files/{n}", conn.node);
                write_file("--output", &output, &get(&http, &conn, url).await?)?;
            }
            // Handled above, before the runtime.
            Command::Approve(_) => {}
            Command::Discard { conn, id, reason } => {
                let url = format!("{}/api/v1/drafts/{id}/discard", conn.node);
                let r = http
                    .post(url)
                    .bearer_auth(&conn.token)
                    .json(&json!({ "reason": reason }))
                    .send()
                    .await
                    .map_err(|e| unreachable(&conn, e))?;
                let mut typed = Typed::default();
                typed.set("reason", &reason);
                let bytes = body_typed(&conn, r, &typed).await?;
                if conn.json {
                    print_json(&bytes);
                } else {
                    let v = json_of(&bytes)?;
                    print_text(&format!(
                        "Đã hủy bản thảo #{id} (lý do: {}); bản thảo sẽ không được gửi.\n",
                        visible(&text(&v["reason"]))
                    ));
                }
            }
        }
        Ok(())
    })
}

/// `drafts approve`: the body is built (and a `--content-file` read) before anything is sent.
fn approve(a: ApproveArgs) -> CmdResult {
    let (request, typed) = approval(&a)?;
    runtime()?.block_on(async move {
        let url = format!("{}/api/v1/drafts/{}/approve", a.conn.node, a.id);
        let mut req = client()?
            .post(url)
            .bearer_auth(&a.conn.token)
            .json(&request);
        if let Some(k) = &a.idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let r = req.send().await.map_err(|e| unreachable(&a.conn, e))?;
        let bytes = body_typed(&a.conn, r, &typed).await?;
        let v = json_of(&bytes)?;
        for w in clerk_view::warnings(&v) {
            eprintln!("Cảnh báo: {w}");
        }
        if a.conn.json {
            print_json(&bytes);
        } else {
            let mut out = if v["existing"].as_bool() == Some(true) {
                String::new()
            } else {
                format!("Đã duyệt bản thảo #{}.\n", a.id)
            };
            out.push_str(&clerk_view::submitted(&v, terminal_width()));
            print_text(&out);
        }
        Ok(())
    })
}

/// The approval's JSON body from the flags, and which flag filled which field.
fn approval(a: &ApproveArgs) -> Result<(Value, Typed), Failure> {
    let mut typed = Typed::default();
    let mut v = a.fields.fields("", &mut typed)?;
    if let Some(n) = a.number {
        v["number"] = n.into();
        typed.set("number", n);
    } else if a.next_number {
        v["number"] = Value::Null;
    }
    if a.confirm_number {
        v["confirm_number"] = true.into();
    }
    for (field, value) in [("notation", &a.notation), ("subject", &a.subject)] {
        if let Some(value) = value {
            typed.set(field, value);
            v[field] = value.as_str().into();
        }
    }
    Ok((v, typed))
}

// --- human views (pure: JSON in, text out) --------------------------------------------------------

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Text from a mail as the terminal may show it: bidirectional and invisible formatting
/// characters (which reorder or hide what follows) and control characters other than a line
/// break or a tab are shown as `�`.
pub(super) fn visible(s: &str) -> String {
    s.chars()
        .map(|c| {
            let bidi = matches!(
                c,
                '\u{061C}'
                    | '\u{200B}'..='\u{200F}'
                    | '\u{202A}'..='\u{202E}'
                    | '\u{2060}'..='\u{2069}'
                    | '\u{FEFF}'
            );
            if bidi || (c.is_control() && c != '\n' && c != '\t') {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// A draft's state in the clerk's words.
fn state(s: &str) -> String {
    match s {
        "draft" => "Chờ duyệt",
        "approved" => "Đã duyệt, đã gửi",
        "discarded" => "Đã hủy",
        other => other,
    }
    .to_owned()
}

/// `số/ký hiệu` of a draft, as its mail's subject gave them.
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

/// `drafts list`.
pub(super) fn list_table(page: &Value) -> Table {
    let mut t = Table::new(&[
        "ID",
        "TRẠNG THÁI",
        "NHẬN LÚC",
        "THƯ TỪ",
        "SỐ/KÝ HIỆU",
        "TỆP",
        "TRÍCH YẾU",
    ])
    .flexible(6)
    .optional(3)
    .optional(2)
    .optional(5);
    for d in page["items"].as_array().into_iter().flatten() {
        t.row(vec![
            text(&d["id"]),
            state(&text(&d["state"])),
            clerk_view::time(&d["created_at"]),
            visible(&text(&d["from"])),
            visible(&number(d)),
            d["files"].as_array().map_or(0, Vec::len).to_string(),
            visible(&text(&d["summary"])),
        ]);
    }
    t
}

/// What follows `drafts list`: that there is nothing, and how to get the next page.
pub(super) fn list_footer(page: &Value, shown: bool) -> String {
    let mut out = String::new();
    if !shown {
        out.push_str("Không có bản thảo nào.\n");
    }
    if let Some(b) = page["next_before"].as_i64() {
        out.push_str(&format!(
            "Còn trang sau: thêm --before {b} vào lệnh (hoặc --all để xem tất cả).\n"
        ));
    }
    out
}

/// `drafts show`.
pub(super) fn show(v: &Value, width: Option<usize>) -> String {
    let mut out = format!(
        "Bản thảo #{} — {}\n",
        text(&v["id"]),
        state(&text(&v["state"]))
    );
    let mut f = Fields::new();
    f.add("Thư từ", visible(&text(&v["from"])));
    f.add("Tiêu đề thư", visible(&text(&v["subject"])));
    f.add("Số/ký hiệu", visible(&number(v)));
    f.add("Trích yếu", visible(&text(&v["summary"])));
    f.add("Nhận lúc", clerk_view::time(&v["created_at"]));
    if !v["decided_at"].is_null() {
        f.add("Quyết định lúc", clerk_view::time(&v["decided_at"]));
        f.add("Người quyết định", text(&v["decided_by"]));
    }
    if !v["reason"].is_null() {
        f.add("Lý do hủy", visible(&text(&v["reason"])));
    }
    if let Some(m) = v["message_id"].as_i64() {
        f.add("Văn bản đã gửi", format!("#{m} (lienthong sent show {m})"));
    }
    out.push_str(&f.render(2));
    let mut files = Table::new(&["SỐ", "TÊN TỆP", "LOẠI", "KÍCH THƯỚC"]).flexible(1);
    for file in v["files"].as_array().into_iter().flatten() {
        files.row(vec![
            text(&file["index"]),
            visible(&text(&file["name"])),
            visible(&text(&file["content_type"])),
            format!("{} byte", text(&file["size"])),
        ]);
    }
    out.push_str("\nTệp đính kèm:\n");
    if files.is_empty() {
        out.push_str("  (không có)\n");
    } else {
        for line in files.render(width.map(|w| w.saturating_sub(2))).lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
    let body = visible(text(&v["body"]).trim());
    out.push_str("\nNội dung thư (chỉ để tham khảo, không được ký gửi):\n");
    if body.is_empty() {
        out.push_str("  (không có)\n");
    } else {
        for line in body.lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_text_cannot_reorder_or_hide_what_the_terminal_shows() {
        assert_eq!(visible("báo cáo\u{202E}fdp.exe"), "báo cáo\u{FFFD}fdp.exe");
        assert_eq!(visible("a\u{1b}[31mb"), "a\u{FFFD}[31mb");
        assert_eq!(visible("dòng 1\ndòng 2\tx"), "dòng 1\ndòng 2\tx");
        // Vietnamese, composed or not, stays as it is.
        assert_eq!(visible("Ho\u{302}\u{300} sơ"), "Ho\u{302}\u{300} sơ");
    }

    #[test]
    fn a_draft_is_shown_in_the_clerks_words() {
        let v = json!({
            "id": 7, "state": "approved", "from": "vanthu@xa-iakha.gialai.gov.vn",
            "subject": "Số 12/UBND-VP: V/v họp", "number": "12", "notation": "UBND-VP",
            "summary": "V/v họp", "created_at": "2026-12-07T05:26:46Z",
            "decided_at": "2026-12-07T06:00:00Z", "decided_by": "clerk:000.00.05.H21:van-thu",
            "reason": null, "message_id": 31, "body": "Kính gửi …",
            "files": [{"index": 1, "name": "giấy mời.pdf", "content_type": "application/pdf",
                       "size": 120, "sha256": "ab"}],
        });
        let out = show(&v, None);
        for want in [
            "Bản thảo #7 — Đã duyệt, đã gửi",
            "Số/ký hiệu:",
            "12/UBND-VP",
            "2026-12-07 12:26",
            "#31 (lienthong sent show 31)",
            "giấy mời.pdf",
            "120 byte",
            "  Kính gửi …",
        ] {
            assert!(out.contains(want), "{want:?} not in\n{out}");
        }
        assert!(!out.contains("Lý do hủy"), "{out}");
        let page = json!({ "items": [v], "next_before": 7 });
        let t = list_table(&page).render(None);
        assert!(t.contains("12/UBND-VP") && t.contains("Đã duyệt"), "{t}");
        assert_eq!(
            list_footer(&page, true),
            "Còn trang sau: thêm --before 7 vào lệnh (hoặc --all để xem tất cả).\n"
        );
        assert_eq!(
            list_footer(&json!({"items": []}), false),
            "Không có bản thảo nào.\n"
        );
    }
}
