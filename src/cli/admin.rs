//! `lienthong admin deliveries …`, `lienthong admin registry …` and `lienthong admin mail …`
//! (the mail bridge's log and quarantine): the node's admin API
//! (`/admin/v1/…`) from the command line, for an operator anywhere the node is reachable. The
//! operator token (`[[admin]]` of the node's configuration) comes from `--token` or
//! `LIENTHONG_ADMIN_TOKEN`; every change is made, and audited, by the node.
//!
//! `lienthong registry …` (src/cli/registry.rs) is the other way to the same registry: directly
//! on the store, with the node's configuration file, on the node's own machine.
//!
//! Lists print a table ([`Table`]), `--json` the node's JSON as it is (with `--all`, every page's
//! items in one `{"items": […]}`).

use std::path::PathBuf;

use serde_json::{Value, json};

use super::client::{Conn, body, client, print_json, runtime, unreachable};
use super::registry::RuleArgs;
use super::table::Table;
use super::{CmdResult, Failure};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Outgoing deliveries across the node's agencies: list, show, retry, cancel.
    #[command(subcommand)]
    Deliveries(DeliveriesCommand),
    /// The agency registry over the admin API, from anywhere the node is reachable (`lienthong
    /// registry` works on the node's store directly, on its machine, with --config).
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// The mail the bridge took in and what each became: list (the quarantine with
    /// --outcome quarantined), show.
    #[command(subcommand)]
    Mail(MailCommand),
}

#[derive(clap::Subcommand)]
pub enum MailCommand {
    /// Mails taken in, newest first, with what each became.
    List {
        /// Only those that became this: document, status, draft, bounce, quarantined.
        #[arg(long)]
        outcome: Option<String>,
        #[command(flatten)]
        page: super::drafts::PageArgs,
        #[command(flatten)]
        conn: AdminConn,
    },
    /// One mail of the log.
    Show {
        /// The mail's id in the log (as `admin mail list` shows it).
        id: i64,
        #[command(flatten)]
        conn: AdminConn,
    },
}

/// Where the node is and which operator we are.
#[derive(clap::Args, Clone)]
pub struct AdminConn {
    /// The node's base URL (its `[node] listen`). The default is the packaged configuration's;
    /// LIENTHONG_NODE sets another.
    #[arg(long, env = "LIENTHONG_NODE", default_value = "http://127.0.0.1:8440", value_parser = super::client::node_url)]
    node: String,
    /// An operator token (an `[[admin]]` entry of the node's configuration).
    #[arg(long, env = "LIENTHONG_ADMIN_TOKEN", hide_env_values = true)]
    token: String,
    /// Print the node's JSON answer as it is.
    #[arg(long)]
    json: bool,
}

impl AdminConn {
    fn conn(&self) -> Conn {
        Conn {
            node: self.node.trim_end_matches('/').to_owned(),
            token: self.token.clone(),
            json: self.json,
        }
    }
}

#[derive(clap::Subcommand)]
pub enum DeliveriesCommand {
    /// Deliveries, newest first, with their state, attempts and last error.
    List(DeliveryListArgs),
    /// One delivery with every attempt.
    Show {
        /// The delivery id (as `admin deliveries list` shows it).
        id: i64,
        #[command(flatten)]
        conn: AdminConn,
    },
    /// Make a `failed` or `retrying` delivery due again now.
    Retry {
        /// The delivery id (as `admin deliveries list` shows it).
        id: i64,
        #[command(flatten)]
        conn: AdminConn,
    },
    /// Stop a `queued`, `retrying` or `failed` delivery for good.
    Cancel {
        /// The delivery id (as `admin deliveries list` shows it).
        id: i64,
        /// Why (kept in the node's audit chain).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        conn: AdminConn,
    },
}

#[derive(clap::Args)]
pub struct DeliveryListArgs {
    /// Only deliveries in this state: queued, sending, delivered, retrying, failed, rejected,
    /// cancelled.
    #[arg(long)]
    state: Option<String>,
    /// Only those sent by this agency code.
    #[arg(long)]
    sender: Option<String>,
    /// Only those addressed to this agency code.
    #[arg(long)]
    recipient: Option<String>,
    #[command(flatten)]
    list: super::client::ListArgs,
    #[command(flatten)]
    conn: AdminConn,
}

#[derive(clap::Subcommand)]
pub enum RegistryCommand {
    /// Every agency in the registry.
    List {
        #[command(flatten)]
        conn: AdminConn,
    },
    /// One agency's entry with its rules.
    Show {
        /// The agency code.
        code: String,
        #[command(flatten)]
        conn: AdminConn,
    },
    /// Set an agency's entry to exactly these rules (replacing the rules it had, if any).
    Set(Box<SetArgs>),
    /// Remove an agency's entry.
    Remove {
        /// The agency code.
        code: String,
        #[command(flatten)]
        conn: AdminConn,
    },
    /// Import a TOML registry file (as `lienthong registry import` reads it; certificate files
    /// are read here and sent as fingerprints), all or nothing.
    Import {
        /// The TOML registry file.
        file: PathBuf,
        /// Remove the entries the file does not list.
        #[arg(long)]
        replace_all: bool,
        #[command(flatten)]
        conn: AdminConn,
    },
}

#[derive(clap::Args)]
pub struct SetArgs {
    /// The agency code.
    code: String,
    /// The agency's name.
    #[arg(long, default_value = "")]
    name: String,
    #[command(flatten)]
    rules: RuleArgs,
    #[command(flatten)]
    conn: AdminConn,
}

pub fn run(c: Command) -> CmdResult {
    match c {
        Command::Deliveries(c) => deliveries(c),
        Command::Registry(c) => registry(c),
        Command::Mail(c) => mail(c),
    }
}

fn mail(c: MailCommand) -> CmdResult {
    runtime()?.block_on(async move {
        match c {
            MailCommand::List {
                outcome,
                page,
                conn,
            } => {
                let conn = conn.conn();
                let mut query = Vec::new();
                if let Some(n) = page.list().per_page {
                    query.push(("per_page", n.to_string()));
                }
                if let Some(o) = &outcome {
                    query.push(("outcome", o.trim().to_owned()));
                }
                let url = format!("{}/admin/v1/mail", conn.node);
                let (page_v, bytes) =
                    super::client::fetch_list(&client()?, &conn, &url, &page.list(), &query)
                        .await?;
                if conn.json {
                    print_json(&bytes);
                    return Ok(());
                }
                let t = mail_table(&page_v);
                if t.is_empty() {
                    outln!("no mail");
                } else {
                    t.print();
                }
                if let Some(n) = page_v["next_before"].as_i64() {
                    eprintln!("more: --before {n} (or --all)");
                }
            }
            MailCommand::Show { id, conn } => {
                let conn = conn.conn();
                let (_, bytes) =
                    call(&conn, reqwest::Method::GET, &format!("/mail/{id}"), None).await?;
                if conn.json {
                    print_json(&bytes);
                } else {
                    out!("{}", mail_fields(&parse(&bytes)));
                }
            }
        }
        Ok(())
    })
}

/// `admin mail list`: one line per mail. What the mail itself said (its sender and subject)
/// is shown with control and bidirectional characters replaced.
fn mail_table(page: &Value) -> Table {
    let visible = super::drafts::visible;
    let mut t = Table::new(&[
        "ID", "TAKEN", "OUTCOME", "CODE", "REPLIED", "FROM", "SUBJECT", "PRODUCED",
    ])
    .flexible(6)
    .optional(7)
    .optional(4);
    for m in page["items"].as_array().into_iter().flatten() {
        t.row(vec![
            text(&m["id"]),
            text(&m["taken_at"]),
            text(&m["outcome"]),
            text(&m["code"]),
            if m["replied"].as_bool() == Some(true) {
                "yes".into()
            } else {
                String::new()
            },
            visible(&text(&m["from"])),
            visible(&text(&m["subject"])),
            produced(m),
        ]);
    }
    t
}

/// What a mail produced, as `message 12`, `draft 3`, `delivery 40`.
fn produced(m: &Value) -> String {
    [
        ("message", "message_ref"),
        ("draft", "draft_ref"),
        ("delivery", "delivery_ref"),
    ]
    .iter()
    .filter_map(|(label, key)| m[*key].as_i64().map(|n| format!("{label} {n}")))
    .collect::<Vec<_>>()
    .join(", ")
}

/// `admin mail show`: label and value lines.
fn mail_fields(m: &Value) -> String {
    let visible = super::drafts::visible;
    let mut f = super::table::Fields::new();
    for (label, key) in [
        ("mail", "id"),
        ("taken at", "taken_at"),
        ("outcome", "outcome"),
        ("code", "code"),
        ("reason", "reason"),
    ] {
        f.add(label, visible(&text(&m[key])));
    }
    f.add("produced", produced(m));
    f.add(
        "replied",
        if m["replied"].as_bool() == Some(true) {
            "yes, an automatic reply went to the sender"
        } else {
            "no"
        },
    );
    for (label, key) in [
        ("mailbox", "mailbox"),
        ("uidvalidity", "uidvalidity"),
        ("uid", "uid"),
        ("return path", "return_path"),
        ("from", "from"),
        ("subject", "subject"),
        ("message-id", "message_id"),
        ("size", "size"),
    ] {
        f.add(label, visible(&text(&m[key])));
    }
    f.render(0)
}

/// One request to the admin API: the answer's status and body, or the node's refusal printed.
async fn call(
    conn: &Conn,
    method: reqwest::Method,
    path: &str,
    json_body: Option<&Value>,
) -> Result<(u16, Vec<u8>), Failure> {
    let mut req = client()?
        .request(method, format!("{}/admin/v1{path}", conn.node))
        .bearer_auth(&conn.token);
    if let Some(b) = json_body {
        req = req.json(b);
    }
    let r = req.send().await.map_err(|e| unreachable(conn, e))?;
    let status = r.status().as_u16();
    Ok((status, body(conn, r).await?))
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_default()
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn deliveries(c: DeliveriesCommand) -> CmdResult {
    runtime()?.block_on(async move {
        match c {
            DeliveriesCommand::List(a) => list_deliveries(a).await,
            DeliveriesCommand::Show { id, conn } => {
                let conn = conn.conn();
                let (_, bytes) = call(
                    &conn,
                    reqwest::Method::GET,
                    &format!("/deliveries/{id}"),
                    None,
                )
                .await?;
                show_delivery(&conn, &bytes);
                Ok(())
            }
            DeliveriesCommand::Retry { id, conn } => {
                let conn = conn.conn();
                let path = format!("/deliveries/{id}/retry");
                let (_, bytes) = call(&conn, reqwest::Method::POST, &path, None).await?;
                changed(&conn, &bytes);
                Ok(())
            }
            DeliveriesCommand::Cancel { id, reason, conn } => {
                let conn = conn.conn();
                let path = format!("/deliveries/{id}/cancel");
                let req = json!({ "reason": reason });
                let (_, bytes) = call(&conn, reqwest::Method::POST, &path, Some(&req)).await?;
                changed(&conn, &bytes);
                Ok(())
            }
        }
    })
}

async fn list_deliveries(a: DeliveryListArgs) -> CmdResult {
    let conn = a.conn.conn();
    let http = client()?;
    // The clerk lists' time, page and --all options (a plain date is Vietnam midnight), plus
    // the admin API's filters.
    let mut query = super::client::list_query(&a.list, None)?;
    for (k, v) in [
        ("state", &a.state),
        ("sender", &a.sender),
        ("recipient", &a.recipient),
    ] {
        if let Some(v) = v {
            query.push((k, v.clone()));
        }
    }
    let url = format!("{}/admin/v1/deliveries", conn.node);
    let (page, bytes) = super::client::fetch_list(&http, &conn, &url, &a.list, &query).await?;
    if conn.json {
        print_json(&bytes);
        return Ok(());
    }
    let items = page["items"].as_array().cloned().unwrap_or_default();
    let mut t = Table::new(&[
        "ID",
        "STATE",
        "SENDER",
        "RECIPIENT",
        "ATTEMPTS",
        "NEXT ATTEMPT",
        "LAST ERROR",
        "DOCUMENT",
    ])
    .flexible(6);
    for d in &items {
        let error = match d["last_error"]["code"].as_str() {
            Some(code) => format!("{code}: {}", text(&d["last_error"]["message"])),
            None => String::new(),
        };
        t.row(vec![
            text(&d["delivery_id"]),
            text(&d["state"]),
            text(&d["sender"]),
            text(&d["recipient"]),
            text(&d["attempts"]),
            text(&d["next_attempt_at"]),
            error,
            text(&d["document_id"]),
        ]);
    }
    if t.is_empty() {
        outln!("no deliveries");
    } else {
        t.print();
    }
    if let Some(n) = page["next_before"].as_i64() {
        eprintln!("more: --before {n} (or --all)");
    }
    Ok(())
}

fn show_delivery(conn: &Conn, bytes: &[u8]) {
    if conn.json {
        print_json(bytes);
        return;
    }
    let d = parse(bytes);
    for (label, key) in [
        ("delivery", "delivery_id"),
        ("state", "state"),
        ("kind", "kind"),
        ("message", "message_id"),
        ("document", "document_id"),
        ("sender", "sender"),
        ("recipient", "recipient"),
        ("route", "route"),
        ("attempts", "attempts"),
        ("next attempt", "next_attempt_at"),
        ("delivered at", "delivered_at"),
        ("latest status", "latest_status"),
        ("created at", "created_at"),
        ("updated at", "updated_at"),
    ] {
        let v = text(&d[key]);
        if !v.is_empty() {
            outln!("{label:<14}{v}");
        }
    }
    if let Some(code) = d["last_error"]["code"].as_str() {
        outln!(
            "{:<14}{code}: {}",
            "last error",
            text(&d["last_error"]["message"])
        );
    }
    let attempts = d["attempt_log"].as_array().cloned().unwrap_or_default();
    if !attempts.is_empty() {
        outln!();
        let mut t =
            Table::new(&["#", "STARTED", "FINISHED", "OUTCOME", "ROUTE", "ERROR"]).flexible(5);
        for a in &attempts {
            let error = match a["error"]["code"].as_str() {
                Some(code) => format!("{code}: {}", text(&a["error"]["message"])),
                None => String::new(),
            };
            t.row(vec![
                text(&a["number"]),
                text(&a["started_at"]),
                text(&a["finished_at"]),
                text(&a["outcome"]),
                text(&a["route"]),
                error,
            ]);
        }
        t.print();
    }
}

/// After a retry or cancel: the delivery's new state.
fn changed(conn: &Conn, bytes: &[u8]) {
    if conn.json {
        print_json(bytes);
    } else {
        let d = parse(bytes);
        outln!(
            "delivery {}: {}",
            text(&d["delivery_id"]),
            text(&d["state"])
        );
    }
}

fn registry(c: RegistryCommand) -> CmdResult {
    runtime()?.block_on(async move {
        match c {
            RegistryCommand::List { conn } => {
                let conn = conn.conn();
                let (_, bytes) = call(&conn, reqwest::Method::GET, "/registry", None).await?;
                if conn.json {
                    print_json(&bytes);
                    return Ok(());
                }
                let v = parse(&bytes);
                let mut t =
                    Table::new(&["CODE", "NAME", "RULES", "UPDATED", "UPDATED BY"]).flexible(1);
                for e in v["items"].as_array().into_iter().flatten() {
                    t.row(vec![
                        text(&e["code"]),
                        text(&e["name"]),
                        e["rules"].as_array().map_or(0, Vec::len).to_string(),
                        text(&e["updated_at"]),
                        text(&e["updated_by"]),
                    ]);
                }
                if t.is_empty() {
                    outln!("the registry is empty");
                } else {
                    t.print();
                }
            }
            RegistryCommand::Show { code, conn } => {
                let conn = conn.conn();
                let path = format!("/registry/{}", segment(&code));
                let (_, bytes) = call(&conn, reqwest::Method::GET, &path, None).await?;
                if conn.json {
                    print_json(&bytes);
                } else {
                    print_entry(&parse(&bytes));
                }
            }
            RegistryCommand::Set(a) => {
                let SetArgs {
                    code,
                    name,
                    rules,
                    conn,
                } = *a;
                let conn = conn.conn();
                let rules = rules.rules(&code, "admin registry set")?;
                let req = json!({ "name": name, "rules": rules });
                let path = format!("/registry/{}", segment(&code));
                let (status, bytes) = call(&conn, reqwest::Method::PUT, &path, Some(&req)).await?;
                if conn.json {
                    print_json(&bytes);
                } else {
                    let e = parse(&bytes);
                    outln!(
                        "{} {}: {} rule(s)",
                        if status == 201 { "added" } else { "replaced" },
                        text(&e["code"]),
                        e["rules"].as_array().map_or(0, Vec::len)
                    );
                }
            }
            RegistryCommand::Remove { code, conn } => {
                let conn = conn.conn();
                let path = format!("/registry/{}", segment(&code));
                call(&conn, reqwest::Method::DELETE, &path, None).await?;
                if conn.json {
                    print_json(json!({ "removed": code.trim() }).to_string().as_bytes());
                } else {
                    outln!("removed {}", code.trim());
                }
            }
            RegistryCommand::Import {
                file,
                replace_all,
                conn,
            } => {
                let conn = conn.conn();
                let entries = lienthong::node::registry::read_import(&file)?;
                let agencies: Vec<Value> = entries
                    .iter()
                    .map(|e| json!({ "code": e.code, "name": e.name, "rules": e.rules }))
                    .collect();
                let n = agencies.len();
                let req = json!({ "agencies": agencies, "replace_all": replace_all });
                let (_, bytes) =
                    call(&conn, reqwest::Method::POST, "/registry/import", Some(&req)).await?;
                if conn.json {
                    print_json(&bytes);
                } else {
                    let o = parse(&bytes);
                    outln!(
                        "imported {n} agencies: {} added, {} replaced, {} removed",
                        text(&o["added"]),
                        text(&o["replaced"]),
                        text(&o["removed"])
                    );
                }
            }
        }
        Ok(())
    })
}

/// An agency code as one URL path segment (codes are `000.00.05.H21`, but a typo must not
/// reach another route).
fn segment(code: &str) -> String {
    let mut out = String::new();
    for b in code.trim().bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An entry as `lienthong registry show` prints it: code and name, then one line per rule.
fn print_entry(e: &Value) {
    outln!("{}\t{}", text(&e["code"]), text(&e["name"]));
    for r in e["rules"].as_array().into_iter().flatten() {
        let note = r["note"]
            .as_str()
            .map(|n| format!("  # {n}"))
            .unwrap_or_default();
        if r["kind"] == "fingerprint" {
            outln!("  fingerprint {}{note}", text(&r["sha256"]));
        } else {
            let by = match r["issuer_sha256"].as_str() {
                Some(f) => format!("issuer_sha256 {f}"),
                None => format!("issuer {:?}", text(&r["issuer"])),
            };
            outln!(
                "  subject {}={:?} {by}{note}",
                text(&r["attribute"]),
                text(&r["value"])
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn an_agency_code_stays_one_path_segment() {
        assert_eq!(segment(" 000.00.05.H21 "), "000.00.05.H21");
        assert_eq!(segment("a/../b"), "a%2F..%2Fb");
    }
}
