//! `lienthong send`, `lienthong inbox`, `lienthong sent`: the clerk API from the command line, for
//! clerks' scripts and for trying a node by hand. Everything goes through the node's HTTP API
//! with the agency's bearer token; nothing here touches keys or the store.

use std::path::PathBuf;

use lienthong::error::FormatError;
use lienthong::{Code, Error};

use super::{CmdResult, Failure, read_file, write_file};

/// Where the node is and who we are.
#[derive(clap::Args, Clone)]
pub struct Conn {
    /// The node's base URL.
    #[arg(long, env = "LIENTHONG_NODE", default_value = "http://127.0.0.1:8440")]
    pub(crate) node: String,
    /// The agency's clerk API token.
    #[arg(long, env = "LIENTHONG_TOKEN", hide_env_values = true)]
    pub(crate) token: String,
    /// Print the node's JSON answer as it is.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args)]
pub struct SendArgs {
    #[command(flatten)]
    conn: Conn,
    /// Recipient agency codes, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    to: Vec<String>,
    /// Số; the node assigns the next number of the agency's yearly sequence when absent.
    #[arg(long)]
    number: Option<u32>,
    /// Confirms a --number far above the agency's sequence (more than 100 above its next),
    /// which the node otherwise refuses (NUMBER_UNCONFIRMED) as a likely typo.
    #[arg(long, requires = "number")]
    confirm_number: bool,
    /// Ký hiệu, e.g. STTTT-CĐS.
    #[arg(long)]
    notation: String,
    /// Trích yếu.
    #[arg(long)]
    subject: String,
    /// Tên loại văn bản ("Công văn" when absent).
    #[arg(long)]
    type_name: Option<String>,
    /// Full name of the person who signed the document.
    #[arg(long)]
    signer: Option<String>,
    /// 0 thường … 4 hỏa tốc hẹn giờ.
    #[arg(long, default_value_t = 0)]
    priority: u8,
    /// Files to attach.
    #[arg(long)]
    attach: Vec<PathBuf>,
    /// Makes a retried submission return the first one instead of sending twice.
    #[arg(long)]
    idempotency_key: Option<String>,
}

#[derive(clap::Subcommand)]
pub enum InboxCommand {
    /// Documents received by the agency.
    List {
        #[command(flatten)]
        conn: Conn,
        /// Only those whose current status is this code (00: nothing reported yet).
        #[arg(long)]
        status: Option<String>,
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
    },
    /// One sent document: deliveries, attempts, statuses.
    Show {
        #[command(flatten)]
        conn: Conn,
        /// The document's id (as the list shows it).
        id: i64,
    },
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Local(Error::io("tokio runtime", e)))
}

pub(crate) fn client() -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .build()
        .map_err(|e| Failure::Local(Error::key("HTTP client", e.to_string())))
}

pub(crate) fn unreachable(conn: &Conn, e: reqwest::Error) -> Failure {
    Failure::Local(Error::io(
        conn.node.clone(),
        std::io::Error::other(e.to_string()),
    ))
}

/// Turns an answer into its body, or the node's refusal into a one-line failure.
pub(crate) async fn body(conn: &Conn, r: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let status = r.status();
    let bytes = r.bytes().await.map_err(|e| unreachable(conn, e))?.to_vec();
    if status.is_success() {
        return Ok(bytes);
    }
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let code = v["code"].as_str().unwrap_or("HTTP_ERROR").to_owned();
    let message = v["message_vi"]
        .as_str()
        .or(v["message"].as_str())
        .unwrap_or("")
        .to_owned();
    eprintln!("{code}: {message} (HTTP {status})");
    Err(Failure::Reported)
}

/// Prints the answer; a closed pipe (`… | head`) is not an error worth a panic.
pub(crate) fn print_json(bytes: &[u8]) {
    use std::io::Write as _;
    let text = match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    };
    let _ = writeln!(std::io::stdout(), "{text}");
}

pub fn send(a: SendArgs) -> CmdResult {
    let mut metadata = serde_json::json!({
        "recipients": a.to,
        "notation": a.notation,
        "subject": a.subject,
        "priority": a.priority,
        "signer": { "full_name": a.signer.clone().unwrap_or_default() },
    });
    if let Some(n) = a.number {
        metadata["number"] = n.into();
        if a.confirm_number {
            metadata["confirm_number"] = true.into();
        }
    }
    if let Some(t) = &a.type_name {
        metadata["type_name"] = t.clone().into();
    }
    let mut form = reqwest::multipart::Form::new().part(
        "metadata",
        reqwest::multipart::Part::text(metadata.to_string())
            .mime_str("application/json")
            .map_err(|e| Failure::Local(Error::key("metadata", e.to_string())))?,
    );
    for path in &a.attach {
        let data = read_file(path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(data).file_name(name),
        );
    }
    let conn = a.conn.clone();
    runtime()?.block_on(async move {
        let mut req = client()?
            .post(format!("{}/api/v1/documents", conn.node))
            .bearer_auth(&conn.token)
            .multipart(form);
        if let Some(k) = &a.idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let r = req.send().await.map_err(|e| unreachable(&conn, e))?;
        let bytes = body(&conn, r).await?;
        if conn.json {
            print_json(&bytes);
        } else {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            println!(
                "accepted: id {} document {}",
                v["id"],
                v["document_id"].as_str().unwrap_or("?")
            );
            for d in v["deliveries"].as_array().into_iter().flatten() {
                println!(
                    "  to {}: delivery {}",
                    d["recipient"].as_str().unwrap_or("?"),
                    d["delivery_id"]
                );
            }
        }
        Ok(())
    })
}

pub fn inbox(c: InboxCommand) -> CmdResult {
    runtime()?.block_on(async move {
        let http = client()?;
        match c {
            InboxCommand::List { conn, status } => {
                let mut url = format!("{}/api/v1/inbox", conn.node);
                if let Some(s) = status {
                    url.push_str(&format!("?status={s}"));
                }
                let r = http
                    .get(url)
                    .bearer_auth(&conn.token)
                    .send()
                    .await
                    .map_err(|e| unreachable(&conn, e))?;
                print_json(&body(&conn, r).await?);
            }
            InboxCommand::Show { conn, id } => {
                let url = format!("{}/api/v1/inbox/{id}", conn.node);
                let r = http
                    .get(url)
                    .bearer_auth(&conn.token)
                    .send()
                    .await
                    .map_err(|e| unreachable(&conn, e))?;
                let bytes = body(&conn, r).await?;
                if !conn.json {
                    // First, in the clerk's words, whether it is signed at all: a document a
                    // channel authenticated is not (`signature.state` "channel").
                    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                    if let Some(d) = v["signature"]["description"].as_str() {
                        println!("Chữ ký số: {d}");
                    }
                }
                print_json(&bytes);
            }
            InboxCommand::Package { conn, id, output } => {
                let url = format!("{}/api/v1/inbox/{id}/package", conn.node);
                let r = http
                    .get(url)
                    .bearer_auth(&conn.token)
                    .send()
                    .await
                    .map_err(|e| unreachable(&conn, e))?;
                write_file(&output, &body(&conn, r).await?)?;
            }
            InboxCommand::Attachment {
                conn,
                id,
                n,
                output,
            } => {
                let url = format!("{}/api/v1/inbox/{id}/attachments/{n}", conn.node);
                let r = http
                    .get(url)
                    .bearer_auth(&conn.token)
                    .send()
                    .await
                    .map_err(|e| unreachable(&conn, e))?;
                write_file(&output, &body(&conn, r).await?)?;
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
                let url = format!("{}/api/v1/inbox/{id}/status", conn.node);
                let r = http
                    .post(url)
                    .bearer_auth(&conn.token)
                    .json(&serde_json::json!({ "code": code, "description": description }))
                    .send()
                    .await
                    .map_err(|e| unreachable(&conn, e))?;
                let bytes = body(&conn, r).await?;
                if conn.json {
                    print_json(&bytes);
                } else {
                    println!("status {code} recorded and queued for the sender");
                }
            }
        }
        Ok(())
    })
}

pub fn sent(c: SentCommand) -> CmdResult {
    runtime()?.block_on(async move {
        let http = client()?;
        let (conn, url) = match c {
            SentCommand::List { conn } => {
                let url = format!("{}/api/v1/documents", conn.node);
                (conn, url)
            }
            SentCommand::Show { conn, id } => {
                let url = format!("{}/api/v1/documents/{id}", conn.node);
                (conn, url)
            }
        };
        let r = http
            .get(url)
            .bearer_auth(&conn.token)
            .send()
            .await
            .map_err(|e| unreachable(&conn, e))?;
        print_json(&body(&conn, r).await?);
        Ok(())
    })
}
