//! `lienthong revoke|update|replace ID`: the clerk's follow-ups to a document the agency sent
//! (QCVN 102:2016 business types 1, 2 and 3), through the node's clerk API
//! (`POST /api/v1/documents/{id}/revoke|update|replace`). The node composes and signs the
//! follow-up with the agency's key, as it does for `send`; nothing here touches keys or the
//! store. `--json` prints the node's answer (`Submitted`); without it one line in Vietnamese,
//! for the clerk.

use std::path::PathBuf;

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use lienthong::Error;

use super::client::{Conn, body_typed, client, print_json, report_local, runtime, unreachable};
use super::document::NewDocument;
use super::flags::Typed;
use super::{CmdResult, Failure, read_file};

#[derive(clap::Args)]
pub struct RevokeArgs {
    /// The id of the sent document (as `lienthong sent list` shows it).
    id: i64,
    /// Why the document is taken back; the recipients see it.
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    conn: Conn,
}

#[derive(clap::Args)]
pub struct UpdateArgs {
    /// The id of the sent document (as `lienthong sent list` shows it).
    id: i64,
    /// Why the document is updated; the recipients see it.
    #[arg(long)]
    reason: String,
    /// New trích yếu.
    #[arg(long)]
    subject: Option<String>,
    /// New content (nội dung); an empty value removes it.
    #[arg(long)]
    content: Option<String>,
    /// New due date (yyyy-MM-dd); an empty value removes it.
    #[arg(long)]
    due_date: Option<String>,
    /// New signer: full name of the person who signed.
    #[arg(long)]
    signer: Option<String>,
    /// The complete new recipient list (agency codes, comma-separated); a recipient left out is
    /// told it is no longer addressed.
    #[arg(long, value_delimiter = ',')]
    to: Vec<String>,
    /// Files replacing all of the document's files.
    #[arg(long)]
    attach: Vec<PathBuf>,
    #[command(flatten)]
    conn: Conn,
}

#[derive(clap::Args)]
pub struct ReplaceArgs {
    /// The id of the sent document to replace (as `lienthong sent list` shows it).
    id: i64,
    /// Why the document is replaced; the recipients see it.
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    document: NewDocument,
    #[command(flatten)]
    conn: Conn,
}

pub fn revoke(a: RevokeArgs) -> CmdResult {
    let req =
        |http: &reqwest::Client, url: String| http.post(url).json(&json!({ "reason": a.reason }));
    let mut typed = Typed::default();
    typed.set("reason", &a.reason);
    follow_up(&a.conn, a.id, "revoke", req, "yêu cầu thu hồi", &typed)
        .map_err(|f| report_local(a.conn.json, f))
}

pub fn update(a: UpdateArgs) -> CmdResult {
    let json = a.conn.json;
    update_inner(a).map_err(|f| report_local(json, f))
}

fn update_inner(a: UpdateArgs) -> CmdResult {
    let mut typed = Typed::default();
    typed.set("update.reason", &a.reason);
    let texts = [
        ("update.subject", &a.subject),
        ("update.content", &a.content),
        ("update.due_date", &a.due_date),
        ("update.signer.full_name", &a.signer),
    ];
    for (field, v) in texts {
        if let Some(v) = v {
            typed.set(field, v);
        }
    }
    for (i, code) in a.to.iter().enumerate() {
        typed.set(&format!("update.recipients[{i}]"), code);
    }
    for (i, path) in a.attach.iter().enumerate() {
        typed.set(&format!("update.files[{i}]"), path.display());
    }
    let mut m = json!({ "reason": a.reason });
    if let Some(s) = &a.subject {
        m["subject"] = s.clone().into();
    }
    if let Some(c) = &a.content {
        m["content"] = c.clone().into();
    }
    if let Some(d) = &a.due_date {
        m["due_date"] = d.clone().into();
    }
    if let Some(s) = &a.signer {
        m["signer"] = json!({ "full_name": s });
    }
    if !a.to.is_empty() {
        m["recipients"] = json!(a.to);
    }
    // With files the body is multipart (the same JSON as its `metadata` part); without, JSON.
    let form = if a.attach.is_empty() {
        None
    } else {
        Some(with_files(metadata_form(&m)?, &a.attach)?)
    };
    let req = move |http: &reqwest::Client, url: String| match form {
        Some(f) => http.post(url).multipart(f),
        None => http.post(url).json(&m),
    };
    follow_up(&a.conn, a.id, "update", req, "bản cập nhật", &typed)
}

pub fn replace(a: ReplaceArgs) -> CmdResult {
    let json = a.conn.json;
    replace_inner(a).map_err(|f| report_local(json, f))
}

fn replace_inner(a: ReplaceArgs) -> CmdResult {
    let mut typed = Typed::default();
    typed.set("reason", &a.reason);
    let metadata = a.document.metadata(&mut typed)?;
    let form = metadata_form(&metadata)?.text("reason", a.reason.clone());
    let form = with_files(form, &a.document.attach)?;
    let req = |http: &reqwest::Client, url: String| http.post(url).multipart(form);
    follow_up(
        &a.conn,
        a.id,
        "replace",
        req,
        "văn bản thay thế cho",
        &typed,
    )
}

fn metadata_form(metadata: &Value) -> Result<Form, Failure> {
    let part = Part::text(metadata.to_string())
        .mime_str("application/json")
        .map_err(|e| Failure::Local(Error::key("metadata", e.to_string())))?;
    Ok(Form::new().part("metadata", part))
}

/// `form` with one `file` part per path, typed by its extension when it is a type clerks attach.
fn with_files(mut form: Form, paths: &[PathBuf]) -> Result<Form, Failure> {
    for path in paths {
        let data = read_file("--attach", path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut part = Part::bytes(data);
        if let Some(t) = lienthong::edxml::attachment::type_of_name(&name) {
            part = part
                .mime_str(t)
                .map_err(|e| Failure::Local(Error::key("--attach", e.to_string())))?;
        }
        form = form.part("file", part.file_name(name));
    }
    Ok(form)
}

/// Posts the follow-up `action` of document `id` built by `request`, and prints the answer:
/// the node's JSON, or one line naming the new document and where it goes.
fn follow_up(
    conn: &Conn,
    id: i64,
    action: &str,
    request: impl FnOnce(&reqwest::Client, String) -> reqwest::RequestBuilder,
    what_vi: &str,
    typed: &Typed,
) -> CmdResult {
    runtime()?.block_on(async {
        let http = client()?;
        let url = format!("{}/api/v1/documents/{id}/{action}", conn.node);
        let r = request(&http, url)
            .bearer_auth(&conn.token)
            .send()
            .await
            .map_err(|e| unreachable(conn, e))?;
        let bytes = body_typed(conn, r, typed).await?;
        if conn.json {
            print_json(&bytes);
        } else {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            outln!("{}", summary(id, what_vi, &v));
        }
        Ok(())
    })
}

/// The clerk's line, e.g. `Đã gửi yêu cầu thu hồi văn bản 12 (id 13, DocumentId …) tới
/// 000.00.00.H41.`: the new document's id is what `sent show` takes.
fn summary(id: i64, what_vi: &str, v: &Value) -> String {
    let to: Vec<&str> = v["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["recipient"].as_str())
        .collect();
    format!(
        "Đã gửi {what_vi} văn bản {id} (id {}, DocumentId {}) tới {}.",
        v["id"],
        v["document_id"].as_str().unwrap_or("?"),
        if to.is_empty() {
            "-".to_owned()
        } else {
            to.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_the_new_document_and_its_recipients() {
        let v = json!({
            "id": 13, "document_id": "000.00.05.H21,2026/12/07,7", "existing": false,
            "deliveries": [{"recipient": "000.00.00.H41", "delivery_id": 20}],
        });
        assert_eq!(
            summary(12, "yêu cầu thu hồi", &v),
            "Đã gửi yêu cầu thu hồi văn bản 12 (id 13, DocumentId 000.00.05.H21,2026/12/07,7) \
             tới 000.00.00.H41."
        );
    }
}
