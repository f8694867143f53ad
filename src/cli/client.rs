//! `lienthong send`, `lienthong inbox`, `lienthong sent`: the clerk API from the command line, for
//! clerks' scripts and for trying a node by hand. Everything goes through the node's HTTP API
//! with the agency's bearer token; nothing here touches keys or the store.

use std::path::PathBuf;

use lienthong::error::FormatError;
use lienthong::{Code, Error};

use super::clerk_view;
use super::document::NewDocument;
use super::flags::Typed;
use super::table::terminal_width;
use super::{CmdResult, Failure, read_file, write_file};

/// Where the node is and who we are.
#[derive(clap::Args, Clone)]
pub struct Conn {
    /// The node's clerk API base URL. The default is the clerk listener of the packaged
    /// configuration (`[node] listen`); LIENTHONG_NODE sets another.
    #[arg(long, env = "LIENTHONG_NODE", default_value = "http://127.0.0.1:8440", value_parser = node_url)]
    pub(super) node: String,
    /// The agency's clerk API token.
    #[arg(long, env = "LIENTHONG_TOKEN", hide_env_values = true)]
    pub(super) token: String,
    /// Print the node's JSON answer as it is (and errors as a JSON object on stdout).
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(clap::Args)]
pub struct SendArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(flatten)]
    document: NewDocument,
    /// Makes a retried submission return the first one instead of sending twice.
    #[arg(long)]
    idempotency_key: Option<String>,
}

/// `CODE=NAME` of `--to-name`.
pub(super) fn code_and_name(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((c, n)) if !c.trim().is_empty() && !n.trim().is_empty() => {
            Ok((c.trim().to_owned(), n.trim().to_owned()))
        }
        _ => Err(format!(
            "{s:?}: expected CODE=NAME, e.g. 000.00.04.H21=Sở Nội vụ"
        )),
    }
}

/// Which part of a list to fetch.
#[derive(clap::Args, Clone)]
pub struct ListArgs {
    /// From this time on: 2026-12-01 (midnight, Vietnam time), RFC 3339 or Unix ms.
    #[arg(long)]
    pub(super) since: Option<String>,
    /// Before this time (not included), in the same forms: --until 2026-12-02 ends with 1 Dec.
    #[arg(long)]
    pub(super) until: Option<String>,
    /// Items per page, 1 to 1000 (the node's default is 50).
    #[arg(long)]
    pub(super) per_page: Option<u32>,
    /// The page after the one that printed this number (its `next_before`).
    #[arg(long, conflicts_with = "all")]
    pub(super) before: Option<i64>,
    /// Every page, following `next_before` to the end.
    #[arg(long)]
    pub(super) all: bool,
}

#[derive(clap::Subcommand)]
pub enum InboxCommand {
    /// Documents received by the agency.
    List {
        #[command(flatten)]
        conn: Conn,
        /// Only those whose current status is this code (`none`: nothing reported yet).
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        list: ListArgs,
    },
    /// One received document, with its status history; first, in Vietnamese, whether it is
    /// signed (a document a channel authenticated is not), unless --json.
    Show {
        #[command(flatten)]
        conn: Conn,
        /// The document's id (as the list shows it).
        id: i64,
    },
    /// The signed package as received (less what its signature does not cover).
    Package {
        #[command(flatten)]
        conn: Conn,
        /// The document's id (as the list shows it).
        id: i64,
        /// Where to write it.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
    /// One attached file (1 is the first).
    Attachment {
        #[command(flatten)]
        conn: Conn,
        /// The document's id (as the list shows it).
        id: i64,
        /// Which file: 1 is the first.
        n: u32,
        /// Where to write it.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
    /// Report a status: 02 (with --description), 03, 04, 05, 06, 15, 16.
    Status {
        #[command(flatten)]
        conn: Conn,
        /// The document's id (as the list shows it).
        id: i64,
        /// The status code: 02, 03, 04, 05, 06, 15 or 16.
        #[arg(long)]
        code: String,
        /// What the sender reads with it (required with 02: why it is refused).
        #[arg(long, default_value = "")]
        description: String,
    },
}

#[derive(clap::Subcommand)]
pub enum SentCommand {
    /// Documents the agency sent, with per-recipient delivery state.
    List {
        #[command(flatten)]
        conn: Conn,
        #[command(flatten)]
        list: ListArgs,
    },
    /// One sent document: deliveries, attempts, statuses.
    Show {
        #[command(flatten)]
        conn: Conn,
        /// The document's id (as the list shows it).
        id: i64,
    },
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Local(Error::io("tokio runtime", e)))
}

/// The HTTP client. A node that does not accept the connection within 10 s is reported as
/// unreachable rather than left hanging; an answer itself has no limit (a large upload or
/// download takes the time it takes).
pub(super) fn client() -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| Failure::Local(Error::key("HTTP client", e.to_string())))
}

/// Prints a failure in both languages — `CODE: English (HTTP n)` and the Vietnamese on the next
/// line, on stderr — or, with `--json`, as one JSON object on stdout: `error` (the node's error
/// body, or the same fields for a failure of our own) with `ok: false` and `http_status`.
///
/// `flag`, when the refusal is about a field the user filled with a flag, is that flag and its
/// value as typed (`--date 2026-13-01`): it leads both lines, before the node's own words.
fn print_error(
    json: bool,
    mut error: serde_json::Value,
    http_status: Option<u16>,
    flag: Option<&str>,
) {
    use std::io::Write as _;
    if json {
        if !error.is_object() {
            error = serde_json::json!({ "code": "HTTP_ERROR", "message": error.to_string() });
        }
        error["ok"] = false.into();
        error["http_status"] = http_status.into();
        let _ = writeln!(std::io::stdout(), "{error}");
        return;
    }
    let field = |k: &str| error[k].as_str().unwrap_or("").to_owned();
    let code = Some(field("code"))
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "HTTP_ERROR".to_owned());
    let lead = flag.map(|f| format!("{f}: ")).unwrap_or_default();
    let mut line = format!("{code}: {lead}{}", field("message"));
    if let Some(s) = http_status {
        line.push_str(&format!(" (HTTP {s})"));
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let vi = field("message_vi");
    if !vi.is_empty() {
        let _ = writeln!(err, "  {lead}{vi}");
    }
}

/// A failure of this command itself (a file it could not read, a bad option value), printed as
/// [`print_error`] does for the node's: both languages, or JSON with `--json`.
pub(super) fn report_local(json: bool, f: Failure) -> Failure {
    let (e, local) = match f {
        Failure::Refused(e) => (e, false),
        Failure::Local(e) => (e, true),
        reported => return reported,
    };
    let body = serde_json::json!({
        "code": e.code(),
        "message": e.to_string(),
        "message_vi": e.message_vi(),
    });
    print_error(json, body, None, None);
    if local {
        Failure::ReportedLocal
    } else {
        Failure::Reported
    }
}

/// Why a request did not get an answer, in English and in Vietnamese: the kinds a user can act
/// on (nothing listening, a name that does not resolve, TLS, time), else the client's own words.
fn cause(e: &reqwest::Error) -> (String, &'static str) {
    use std::error::Error as _;
    let mut chain: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    let mut refused = false;
    let mut tls = false;
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
            tls |= io
                .get_ref()
                .is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some());
        }
        tls |= s.downcast_ref::<rustls::Error>().is_some();
        chain.push(s.to_string());
        source = s.source();
    }
    let all = chain.join(": ").to_ascii_lowercase();
    let detail = chain.last().cloned().unwrap_or_else(|| e.to_string());
    if refused {
        (
            "connection refused (nothing listens there)".into(),
            "máy chủ từ chối kết nối (không có dịch vụ nào nghe ở địa chỉ này)",
        )
    } else if all.contains("dns error") || all.contains("lookup address") {
        (
            format!("the host name does not resolve (DNS): {detail}"),
            "không tìm thấy tên máy chủ (DNS)",
        )
    } else if tls || all.contains("certificate") || all.contains("tls") {
        (
            format!("TLS failed: {detail}"),
            "lỗi kết nối bảo mật TLS (chứng chỉ hoặc giao thức)",
        )
    } else if e.is_timeout() {
        ("no answer in time".into(), "máy chủ không trả lời kịp")
    } else if e.is_builder() {
        (
            format!("not a usable URL: {detail}"),
            "địa chỉ URL không hợp lệ",
        )
    } else {
        (detail, "lỗi kết nối mạng")
    }
}

/// The node could not be reached (or the answer was cut off): one line naming the URL and the
/// cause, in both languages (or the JSON form), already printed; exit 3.
pub(super) fn unreachable(conn: &Conn, e: reqwest::Error) -> Failure {
    let (en, vi) = cause(&e);
    let body = serde_json::json!({
        "code": Code::Io,
        "message": format!("cannot reach the node at {}: {en}", conn.node),
        "message_vi": format!("Không kết nối được tới nút tại {}: {vi}.", conn.node),
        "node": conn.node,
    });
    print_error(conn.json, body, None, None);
    Failure::ReportedLocal
}

/// Turns an answer into its body, or the node's refusal into a printed failure: `CODE: message
/// (HTTP n)` and the Vietnamese message, or with `--json` the node's error body with `ok: false`
/// and `http_status` on stdout; exit 1.
pub(super) async fn body(conn: &Conn, r: reqwest::Response) -> Result<Vec<u8>, Failure> {
    body_typed(conn, r, &Typed::default()).await
}

/// `GET url` with the agency's token: the body of the node's success, else its refusal (or
/// the node being out of reach) as the failure to report.
pub(super) async fn get(
    http: &reqwest::Client,
    conn: &Conn,
    url: impl reqwest::IntoUrl,
) -> Result<Vec<u8>, Failure> {
    let r = http
        .get(url)
        .bearer_auth(&conn.token)
        .send()
        .await
        .map_err(|e| unreachable(conn, e))?;
    body(conn, r).await
}

/// [`body`], naming in a refusal the flag (and value) that filled the field it is about.
pub(super) async fn body_typed(
    conn: &Conn,
    r: reqwest::Response,
    typed: &Typed,
) -> Result<Vec<u8>, Failure> {
    let status = r.status();
    let bytes = r.bytes().await.map_err(|e| unreachable(conn, e))?.to_vec();
    if status.is_success() {
        return Ok(bytes);
    }
    let v = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(v) if v.is_object() => v,
        // Not the node's error body (a proxy's page, say): what the answer said, as text.
        _ => serde_json::json!({
            "code": "HTTP_ERROR",
            "message": format!(
                "{status}: {}",
                String::from_utf8_lossy(&bytes).chars().take(200).collect::<String>().trim()
            ),
            "message_vi": "Máy chủ trả lời lỗi không theo định dạng của nút lienthong.",
        }),
    };
    let flag = v["message"].as_str().and_then(|m| typed.behind(m));
    print_error(conn.json, v, Some(status.as_u16()), flag);
    Err(Failure::Reported)
}

/// Prints the answer; a closed pipe (`… | head`) is not an error worth a panic.
pub(super) fn print_json(bytes: &[u8]) {
    use std::io::Write as _;
    let text = match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    };
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// Prints human text to stdout, quietly ending on a closed pipe.
pub(super) fn print_text(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// An answer's JSON; the node always answers JSON on these routes, so anything else is its bug.
pub(super) fn json_of(bytes: &[u8]) -> Result<serde_json::Value, Failure> {
    serde_json::from_slice(bytes)
        .map_err(|e| Failure::Refused(FormatError::invalid("(answer)", e.to_string()).into()))
}

/// `--node`: an http(s) URL, checked by clap (a typo is bad usage, exit 2), kept without a
/// trailing `/`.
pub(super) fn node_url(s: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(s.trim())
        .map_err(|e| format!("{s:?} is not a URL ({e}); e.g. http://127.0.0.1:8440"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{s:?}: expected an http:// or https:// URL"));
    }
    Ok(s.trim().trim_end_matches('/').to_owned())
}

/// The node's base URL, as `--node` gave it.
fn base(conn: &Conn) -> Result<&str, Failure> {
    Ok(&conn.node)
}

pub fn send(a: SendArgs) -> CmdResult {
    let json = a.conn.json;
    send_inner(a).map_err(|f| report_local(json, f))
}

fn send_inner(a: SendArgs) -> CmdResult {
    let base = base(&a.conn)?;
    let mut typed = Typed::default();
    let metadata = a.document.metadata(&mut typed)?;
    let mut form = reqwest::multipart::Form::new().part(
        "metadata",
        reqwest::multipart::Part::text(metadata.to_string())
            .mime_str("application/json")
            .map_err(|e| Failure::Local(Error::key("metadata", e.to_string())))?,
    );
    for path in &a.document.attach {
        let data = read_file("--attach", path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The file keeps its type, as `package new` gives it: the receiver opens a .docx as one.
        let mime =
            lienthong::edxml::attachment::type_of_name(&name).unwrap_or("application/octet-stream");
        let part = reqwest::multipart::Part::bytes(data)
            .file_name(name)
            .mime_str(mime)
            .map_err(|e| Failure::Local(Error::key("attachment type", e.to_string())))?;
        form = form.part("file", part);
    }
    let conn = a.conn.clone();
    runtime()?.block_on(async move {
        let mut req = client()?
            .post(format!("{base}/api/v1/documents"))
            .bearer_auth(&conn.token)
            .multipart(form);
        if let Some(k) = &a.idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let r = req.send().await.map_err(|e| unreachable(&conn, e))?;
        let bytes = body_typed(&conn, r, &typed).await?;
        let v = json_of(&bytes)?;
        for w in clerk_view::warnings(&v) {
            eprintln!("Cảnh báo: {w}");
        }
        if conn.json {
            print_json(&bytes);
        } else {
            print_text(&clerk_view::submitted(&v, terminal_width()));
        }
        Ok(())
    })
}

/// The query string of a list request (without `before`).
pub(super) fn list_query(
    l: &ListArgs,
    status: Option<&str>,
) -> Result<Vec<(&'static str, String)>, Failure> {
    let mut q = Vec::new();
    if let Some(s) = &l.since {
        q.push(("since", list_time("--since", s)?));
    }
    if let Some(s) = &l.until {
        q.push(("until", list_time("--until", s)?));
    }
    if let Some(n) = l.per_page {
        q.push(("per_page", n.to_string()));
    }
    if let Some(s) = status {
        // `00` is how a clerk thinks of "nothing reported"; the API spells it `none`.
        let s = if s.trim() == "00" { "none" } else { s.trim() };
        q.push(("status", s.to_owned()));
    }
    Ok(q)
}

/// A `--since`/`--until` value as the API takes it: a plain date (`2026-12-01` or
/// `2026/12/01`) is that day's midnight in Vietnam; RFC 3339 and Unix ms go as they are (the
/// node checks them).
fn list_time(flag: &str, s: &str) -> Result<String, Failure> {
    let s = s.trim();
    let looks_like_date = s.len() == 10 && (s.as_bytes()[4] == b'-' || s.as_bytes()[4] == b'/');
    if !looks_like_date {
        return Ok(s.to_owned());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(&s.replace('/', "-"), &format)
        .map_err(|_| FormatError::invalid(flag, format!("{s:?}: not a date (2026-12-01)")))?;
    let midnight = date
        .midnight()
        .assume_offset(clerk_view::vietnam())
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| FormatError::invalid(flag, e.to_string()))?;
    Ok(midnight)
}

/// Fetches one page, or with `--all` every page (joined into one `items` list).
pub(super) async fn fetch_list(
    http: &reqwest::Client,
    conn: &Conn,
    url: &str,
    l: &ListArgs,
    query: &[(&'static str, String)],
) -> Result<(serde_json::Value, Vec<u8>), Failure> {
    let mut before = l.before;
    let mut all: Vec<serde_json::Value> = Vec::new();
    loop {
        let mut q = query.to_vec();
        if let Some(b) = before {
            q.push(("before", b.to_string()));
        }
        let mut url = reqwest::Url::parse(url)
            .map_err(|e| Failure::Local(Error::key("--node", e.to_string())))?;
        url.query_pairs_mut()
            .extend_pairs(q.iter().map(|(k, v)| (*k, v.as_str())));
        let bytes = get(http, conn, url).await?;
        let page = json_of(&bytes)?;
        if !l.all {
            return Ok((page, bytes));
        }
        all.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_before"].as_i64() {
            // A cursor that does not move down would loop for ever.
            Some(b) if before.is_none_or(|prev| b < prev) => before = Some(b),
            _ => break,
        }
    }
    let page = serde_json::json!({ "items": all });
    let bytes = page.to_string().into_bytes();
    Ok((page, bytes))
}

fn print_list(conn: &Conn, page: &serde_json::Value, bytes: &[u8], table: super::table::Table) {
    if conn.json {
        print_json(bytes);
        return;
    }
    let rows = page["items"].as_array().map_or(0, Vec::len);
    if rows > 0 {
        table.print();
    }
    print_text(&clerk_view::list_footer(page, rows));
}

pub fn inbox(c: InboxCommand) -> CmdResult {
    let json = match &c {
        InboxCommand::List { conn, .. }
        | InboxCommand::Show { conn, .. }
        | InboxCommand::Package { conn, .. }
        | InboxCommand::Attachment { conn, .. }
        | InboxCommand::Status { conn, .. } => conn.json,
    };
    inbox_inner(c).map_err(|f| report_local(json, f))
}

fn inbox_inner(c: InboxCommand) -> CmdResult {
    runtime()?.block_on(async move {
        let http = client()?;
        match c {
            InboxCommand::List { conn, status, list } => {
                let url = format!("{}/api/v1/inbox", base(&conn)?);
                let q = list_query(&list, status.as_deref())?;
                let (page, bytes) = fetch_list(&http, &conn, &url, &list, &q).await?;
                print_list(&conn, &page, &bytes, clerk_view::inbox_list(&page));
            }
            InboxCommand::Show { conn, id } => {
                let url = format!("{}/api/v1/inbox/{id}", base(&conn)?);
                let bytes = get(&http, &conn, url).await?;
                if conn.json {
                    print_json(&bytes);
                } else {
                    let v = json_of(&bytes)?;
                    print_text(&clerk_view::inbox_show(&v, terminal_width()));
                }
            }
            InboxCommand::Package { conn, id, output } => {
                let url = format!("{}/api/v1/inbox/{id}/package", base(&conn)?);
                write_file("--output", &output, &get(&http, &conn, url).await?)?;
            }
            InboxCommand::Attachment {
                conn,
                id,
                n,
                output,
            } => {
                let url = format!("{}/api/v1/inbox/{id}/attachments/{n}", base(&conn)?);
                write_file("--output", &output, &get(&http, &conn, url).await?)?;
            }
            InboxCommand::Status {
                conn,
                id,
                code,
                description,
            } => {
                if code.trim().is_empty() {
                    return Err(FormatError::new(Code::ElementMissing, "--code", "missing").into());
                }
                let url = format!("{}/api/v1/inbox/{id}/status", base(&conn)?);
                let r = http
                    .post(url)
                    .bearer_auth(&conn.token)
                    .json(&serde_json::json!({ "code": code, "description": description }))
                    .send()
                    .await
                    .map_err(|e| unreachable(&conn, e))?;
                let mut typed = Typed::default();
                typed.set("code", &code);
                typed.set("description", &description);
                let bytes = body_typed(&conn, r, &typed).await?;
                if conn.json {
                    print_json(&bytes);
                } else {
                    let v = json_of(&bytes)?;
                    print_text(&clerk_view::reported(&v, id, code.trim()));
                }
            }
        }
        Ok(())
    })
}

pub fn sent(c: SentCommand) -> CmdResult {
    let json = match &c {
        SentCommand::List { conn, .. } | SentCommand::Show { conn, .. } => conn.json,
    };
    sent_inner(c).map_err(|f| report_local(json, f))
}

fn sent_inner(c: SentCommand) -> CmdResult {
    runtime()?.block_on(async move {
        let http = client()?;
        match c {
            SentCommand::List { conn, list } => {
                let url = format!("{}/api/v1/documents", base(&conn)?);
                let q = list_query(&list, None)?;
                let (page, bytes) = fetch_list(&http, &conn, &url, &list, &q).await?;
                print_list(&conn, &page, &bytes, clerk_view::sent_list(&page));
            }
            SentCommand::Show { conn, id } => {
                let url = format!("{}/api/v1/documents/{id}", base(&conn)?);
                let bytes = get(&http, &conn, url).await?;
                if conn.json {
                    print_json(&bytes);
                } else {
                    let v = json_of(&bytes)?;
                    print_text(&clerk_view::sent_show(&v, terminal_width()));
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_date_is_vietnam_midnight() {
        assert_eq!(
            list_time("--since", "2026-12-01").ok().as_deref(),
            Some("2026-12-01T00:00:00+07:00")
        );
        assert_eq!(
            list_time("--since", "2026/12/01").ok().as_deref(),
            Some("2026-12-01T00:00:00+07:00")
        );
        // Other forms go to the node as they are.
        assert_eq!(
            list_time("--until", "1764547200000").ok().as_deref(),
            Some("1764547200000")
        );
        assert!(list_time("--since", "2026-13-01").is_err());
    }

    #[test]
    fn to_name_is_code_equals_name() {
        assert_eq!(
            code_and_name("000.00.04.H21=Sở Nội vụ"),
            Ok(("000.00.04.H21".into(), "Sở Nội vụ".into()))
        );
        assert!(code_and_name("000.00.04.H21").is_err());
        assert!(code_and_name("=Sở Nội vụ").is_err());
    }
}
