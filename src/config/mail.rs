//! The mail bridge's configuration (`[mail]`): the relay the node sends through, the mailbox it
//! reads, which agency codes are mail-only (routed to a mailbox), who is told of what, and the
//! bounds on what a mail may hold.
//!
//! Passwords may (and in production should) be written `"env:NAME"` like every other secret;
//! [`Secret`] keeps them out of `Debug` output and logs.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::expect::{
    CodeKind, DurationValue, List, MailKind, PathKind, Tables, Text, UrlKind, Whole,
};
use super::{AgencyConfig, NodeSection, bad};
use crate::Error;
use crate::edxml::OrganId;
use crate::mail::address::Address;

/// `[mail]`: present only when the bridge is on.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// The address the node sends as (`MAIL FROM` and `From:`), e.g. `lienthong@gialai.gov.vn`.
    pub from: String,
    /// The display name shown with `from` (Vietnamese; default "Hệ thống liên thông văn bản").
    pub from_name: String,
    /// The domain of `Message-ID`s the node makes (default: `from`'s domain).
    pub message_id_domain: String,
    /// Where links in notification mails point (the console or the clerk system), if anywhere.
    pub link_base: Option<String>,
    /// `[mail.smtp]`: the relay. Without it nothing is sent by mail.
    pub smtp: Option<SmtpConfig>,
    /// `[mail.imap]`: the mailbox read for mail coming back. Without it nothing is taken in.
    pub imap: Option<ImapConfig>,
    /// `[[mail.route]]`: agency codes delivered to a mailbox instead of a node.
    pub routes: Vec<MailRoute>,
    /// `[[mail.notify]]`: addresses told of events of a local agency.
    pub notify: Vec<NotifyConfig>,
    /// `[mail.limits]`: what an incoming mail may hold before it is quarantined unread.
    pub limits: MailLimits,
    /// At most one automatic reply per sender address in this interval (RFC 3834). Default 1 h.
    pub reply_interval: Duration,
}

/// How a mail connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailTls {
    /// Plain connection upgraded with `STARTTLS` (required: a server that does not offer it is
    /// refused). SMTP submission port 587, IMAP 143.
    Starttls,
    /// TLS from the first byte. SMTPS 465, IMAPS 993.
    Implicit,
    /// No TLS at all: only with `node.dev_plain_http` (development), never for a real relay.
    None,
}

/// A secret read from the file or the environment; never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// `[mail.smtp]`.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Host name (also the name its TLS certificate must carry).
    pub host: String,
    /// Default 587 (STARTTLS), 465 (implicit), 25 (none).
    pub port: u16,
    pub tls: MailTls,
    /// AUTH user; without it no AUTH is attempted.
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// CA certificates (PEM) the relay's certificate must chain to; empty: the system's roots.
    pub ca: Vec<PathBuf>,
    /// Connect, command and data timeout. Default 30 s.
    pub timeout: Duration,
    /// Connections kept open to the relay. Default 4.
    pub pool_size: u32,
}

/// `[mail.imap]`.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub host: String,
    /// Default 993 (implicit), 143 (STARTTLS or none).
    pub port: u16,
    pub tls: MailTls,
    pub user: String,
    pub password: Secret,
    pub ca: Vec<PathBuf>,
    /// The folder read. Default `INBOX`.
    pub folder: String,
    /// Where a mail goes once taken in. Default `Processed` (created if missing).
    pub processed_folder: String,
    /// Where a mail goes that was not taken in. Default `Quarantine` (created if missing).
    pub quarantine_folder: String,
    /// How often the mailbox is read when the server has no IDLE (and at most this long
    /// between reads with IDLE). Default 60 s.
    pub poll_every: Duration,
    /// Connect and command timeout. Default 30 s.
    pub timeout: Duration,
    /// Longest pause between reconnection attempts (backoff from 1 s). Default 5 min.
    pub reconnect_max: Duration,
}

/// An agency code delivered to a mailbox: `code = "000.03.21.H21"`, `to = "mail:…@gialai.gov.vn"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRoute {
    pub code: OrganId,
    /// The agency's name, for the mail's greeting (optional).
    pub name: Option<String>,
    /// The mailbox address (without the `mail:` prefix).
    pub address: String,
}

/// What a local agency's notification addresses are told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NotifyEvent {
    /// A document arrived for the agency (`arrival`).
    Arrival,
    /// A delivery the agency sent failed (`failed`).
    Failed,
    /// A processing status arrived about a document the agency sent (`status`).
    Status,
    /// The agency's signing certificate expires soon (`cert_expiry`).
    CertExpiry,
}

impl NotifyEvent {
    pub const ALL: [NotifyEvent; 4] = [
        NotifyEvent::Arrival,
        NotifyEvent::Failed,
        NotifyEvent::Status,
        NotifyEvent::CertExpiry,
    ];

    /// The spelling in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Arrival => "arrival",
            NotifyEvent::Failed => "failed",
            NotifyEvent::Status => "status",
            NotifyEvent::CertExpiry => "cert_expiry",
        }
    }
}

/// `[[mail.notify]]`: `agency = "000.00.05.H21"`, `to = ["…"]`, `events = ["arrival", …]`
/// (default: all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    pub agency: OrganId,
    pub to: Vec<String>,
    pub events: Vec<NotifyEvent>,
}

/// Bounds on an incoming mail, checked before and while it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailLimits {
    /// The whole mail, as the server reports its size (`RFC822.SIZE`) and as fetched. Default
    /// 32 MiB.
    pub max_bytes: u64,
    /// Nesting of multipart bodies and attached messages. Default 10.
    pub max_depth: u32,
    /// MIME parts in all. Default 200.
    pub max_parts: u32,
    /// Attachments. Default 20.
    pub max_attachments: u32,
    /// One header field, folded lines joined. Default 16 KiB.
    pub max_header_bytes: u32,
    /// The whole header section of the mail. Default 256 KiB.
    pub max_headers_bytes: u32,
}

impl Default for MailLimits {
    fn default() -> Self {
        MailLimits {
            max_bytes: 32 * 1024 * 1024,
            max_depth: 10,
            max_parts: 200,
            max_attachments: 20,
            max_header_bytes: 16 * 1024,
            max_headers_bytes: 256 * 1024,
        }
    }
}

impl NotifyEvent {
    /// The event spelled `s` in the configuration.
    pub fn parse(s: &str) -> Option<NotifyEvent> {
        NotifyEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

impl MailTls {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MailTls::Starttls => "starttls",
            MailTls::Implicit => "implicit",
            MailTls::None => "none",
        }
    }
}

// --- the [mail] table as written ---------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [mail] table")]
pub(super) struct MailFile {
    from: Text<MailKind>,
    from_name: Option<String>,
    message_id_domain: Option<String>,
    link_base: Option<Text<UrlKind>>,
    reply_interval: Option<DurationValue>,
    smtp: Option<SmtpFile>,
    imap: Option<ImapFile>,
    #[serde(default)]
    route: Tables<RouteFile>,
    #[serde(default)]
    notify: Tables<NotifyFile>,
    #[serde(default)]
    limits: MailLimitsFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [mail.smtp] table")]
struct SmtpFile {
    host: String,
    port: Option<Whole<u16>>,
    tls: Option<String>,
    user: Option<String>,
    password: Option<String>,
    #[serde(default)]
    ca: List<PathKind>,
    timeout: Option<DurationValue>,
    pool_size: Option<Whole<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [mail.imap] table")]
struct ImapFile {
    host: String,
    port: Option<Whole<u16>>,
    tls: Option<String>,
    user: String,
    password: String,
    #[serde(default)]
    ca: List<PathKind>,
    folder: Option<String>,
    processed_folder: Option<String>,
    quarantine_folder: Option<String>,
    poll_every: Option<DurationValue>,
    timeout: Option<DurationValue>,
    reconnect_max: Option<DurationValue>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a [[mail.route]] table (code, name, to)"
)]
struct RouteFile {
    code: Text<CodeKind>,
    name: Option<String>,
    to: String,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a [[mail.notify]] table (agency, to, events)"
)]
struct NotifyFile {
    agency: Text<CodeKind>,
    to: List<MailKind>,
    events: Option<List<EventKind>>,
}

/// A notification event's name.
pub(super) enum EventKind {}
impl super::expect::Kind for EventKind {
    const ONE: &'static str = "an event: \"arrival\", \"failed\", \"status\" or \"cert_expiry\"";
    const LIST: &'static str =
        "a list of events such as [\"arrival\", \"failed\", \"status\", \"cert_expiry\"]";
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [mail.limits] table")]
struct MailLimitsFile {
    max_mb: Option<Whole<u64>>,
    max_depth: Option<Whole<u32>>,
    max_parts: Option<Whole<u32>>,
    max_attachments: Option<Whole<u32>>,
    max_header_kb: Option<Whole<u32>>,
    max_headers_kb: Option<Whole<u32>>,
}

/// What [`build`] needs of the rest of the configuration.
pub(super) struct Context<'a> {
    pub node: &'a NodeSection,
    pub agencies: &'a [AgencyConfig],
    /// `env:NAME` resolved (key path, value).
    pub secret: &'a dyn Fn(&str, &str) -> Result<String, Error>,
    /// A path relative to the configuration file's folder.
    pub resolve: &'a dyn Fn(&str) -> PathBuf,
}

/// The default display name of the node's mails.
pub const DEFAULT_FROM_NAME: &str = "Hệ thống liên thông văn bản";

/// Checks and builds `[mail]`. Every problem is a `CONFIG_INVALID` at its key (`mail.smtp.tls`,
/// `mail.route[2].to`), placed in the file by the caller.
pub(super) fn build(f: &MailFile, cx: &Context<'_>) -> Result<MailConfig, Error> {
    let from = address("mail.from", f.from.as_str())?;
    let from_name = match &f.from_name {
        Some(n) => {
            one_line("mail.from_name", n, 120)?;
            n.trim().to_owned()
        }
        None => DEFAULT_FROM_NAME.to_owned(),
    };
    let message_id_domain = match &f.message_id_domain {
        Some(d) => {
            // A domain is what an address has after its @: the same check.
            address("mail.message_id_domain", &format!("x@{d}"))
                .map_err(|_| {
                    bad(
                        "mail.message_id_domain",
                        format!(
                            "{:?} is not a domain name such as \"gialai.gov.vn\"",
                            clip(d)
                        ),
                    )
                })?
                .domain()
                .to_owned()
        }
        None => from.domain().to_owned(),
    };
    let link_base = match &f.link_base {
        Some(u) => {
            let u = u.as_str();
            if !(u.starts_with("https://") || u.starts_with("http://"))
                || u.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(bad(
                    "mail.link_base",
                    "must be an http(s) URL without spaces, e.g. \"https://vanthu.gialai.gov.vn\"",
                ));
            }
            Some(u.trim_end_matches('/').to_owned())
        }
        None => None,
    };
    let reply_interval = f.reply_interval.map_or(Duration::from_secs(3600), |v| v.0);
    if reply_interval < Duration::from_secs(60) {
        return Err(bad(
            "mail.reply_interval",
            "must be at least 1m (RFC 3834: automatic replies to one sender are rare)",
        ));
    }

    let smtp = f.smtp.as_ref().map(|s| smtp(s, cx)).transpose()?;
    let imap = f.imap.as_ref().map(|i| imap(i, cx)).transpose()?;

    let mut routes: Vec<MailRoute> = Vec::new();
    for (i, r) in f.route.iter().enumerate() {
        let at = format!("mail.route[{i}]");
        let code = OrganId::parse_lenient(r.code.as_str())
            .map_err(|e| bad(format!("{at}.code"), e.problem))?;
        if cx.agencies.iter().any(|a| a.organization.organ_id == code) {
            return Err(bad(
                format!("{at}.code"),
                format!("{code} is an agency this node serves: its documents stay here"),
            ));
        }
        if routes.iter().any(|x| x.code == code) {
            return Err(bad(format!("{at}.code"), format!("{code} is routed twice")));
        }
        let Some(to) = r.to.strip_prefix("mail:") else {
            return Err(bad(
                format!("{at}.to"),
                format!(
                    "{:?} must be written \"mail:\" and the address, e.g. \"mail:xa-iakha@gialai.gov.vn\"",
                    clip(&r.to)
                ),
            ));
        };
        let to = address(&format!("{at}.to"), to)?;
        if let Some(name) = &r.name {
            one_line(&format!("{at}.name"), name, 200)?;
        }
        routes.push(MailRoute {
            code,
            name: r.name.as_ref().map(|n| n.trim().to_owned()),
            address: to.as_str().to_owned(),
        });
    }

    let mut notify: Vec<NotifyConfig> = Vec::new();
    for (i, n) in f.notify.iter().enumerate() {
        let at = format!("mail.notify[{i}]");
        let agency = OrganId::parse_lenient(n.agency.as_str())
            .map_err(|e| bad(format!("{at}.agency"), e.problem))?;
        if !cx
            .agencies
            .iter()
            .any(|a| a.organization.organ_id == agency)
        {
            return Err(bad(
                format!("{at}.agency"),
                format!("{agency} is not an agency this node serves ([[agency]])"),
            ));
        }
        if n.to.0.is_empty() {
            return Err(bad(format!("{at}.to"), "empty: at least one address"));
        }
        let mut to = Vec::new();
        for (j, a) in n.to.iter().enumerate() {
            let a = address(&format!("{at}.to[{j}]"), a)?;
            if !to.contains(&a) {
                to.push(a);
            }
        }
        let events = match &n.events {
            None => NotifyEvent::ALL.to_vec(),
            Some(list) => {
                let mut events = Vec::new();
                for (j, e) in list.iter().enumerate() {
                    let event = NotifyEvent::parse(e).ok_or_else(|| {
                        bad(
                            format!("{at}.events[{j}]"),
                            format!(
                                "{:?} is not one of \"arrival\", \"failed\", \"status\", \"cert_expiry\"",
                                clip(e)
                            ),
                        )
                    })?;
                    if !events.contains(&event) {
                        events.push(event);
                    }
                }
                if events.is_empty() {
                    return Err(bad(
                        format!("{at}.events"),
                        "empty: leave it out for every event, or name some",
                    ));
                }
                events.sort();
                events
            }
        };
        notify.push(NotifyConfig {
            agency,
            to: to.iter().map(|a| a.as_str().to_owned()).collect(),
            events,
        });
    }

    if smtp.is_none() {
        if !routes.is_empty() {
            return Err(bad(
                "mail.smtp",
                "missing: [[mail.route]] documents are sent through the relay",
            ));
        }
        if !notify.is_empty() {
            return Err(bad(
                "mail.smtp",
                "missing: [[mail.notify]] notifications are sent through the relay",
            ));
        }
    }

    Ok(MailConfig {
        from: from.as_str().to_owned(),
        from_name,
        message_id_domain,
        link_base,
        smtp,
        imap,
        routes,
        notify,
        limits: limits(&f.limits)?,
        reply_interval,
    })
}

fn tls(at: &str, v: Option<&str>, default: MailTls, node: &NodeSection) -> Result<MailTls, Error> {
    let tls = match v {
        None => default,
        Some("starttls") => MailTls::Starttls,
        Some("implicit") => MailTls::Implicit,
        Some("none") => MailTls::None,
        Some(other) => {
            return Err(bad(
                at,
                format!(
                    "{:?} is not one of \"starttls\", \"implicit\", \"none\"",
                    clip(other)
                ),
            ));
        }
    };
    if tls == MailTls::None && !node.dev_plain_http {
        return Err(bad(
            at,
            "\"none\" sends passwords and documents in clear: only with node.dev_plain_http = \
             true (development)",
        ));
    }
    Ok(tls)
}

fn smtp(s: &SmtpFile, cx: &Context<'_>) -> Result<SmtpConfig, Error> {
    check_host("mail.smtp.host", &s.host)?;
    let tls = tls(
        "mail.smtp.tls",
        s.tls.as_deref(),
        MailTls::Starttls,
        cx.node,
    )?;
    let port = check_port("mail.smtp.port", s.port)?.unwrap_or(match tls {
        MailTls::Starttls => 587,
        MailTls::Implicit => 465,
        MailTls::None => 25,
    });
    let (user, password) = match (&s.user, &s.password) {
        (Some(u), Some(p)) => {
            check_user("mail.smtp.user", u)?;
            let p = (cx.secret)("mail.smtp.password", p)?;
            check_password("mail.smtp.password", &p)?;
            (Some(u.clone()), Some(Secret(p)))
        }
        (Some(_), None) => {
            return Err(bad(
                "mail.smtp.password",
                "missing: user is set (write \"env:NAME\" to read it from the environment)",
            ));
        }
        (None, Some(_)) => {
            return Err(bad("mail.smtp.user", "missing: password is set"));
        }
        (None, None) => (None, None),
    };
    let timeout = at_least("mail.smtp.timeout", s.timeout, Duration::from_secs(30), 1)?;
    let pool_size = match s.pool_size.map(|n| n.0) {
        None => 4,
        Some(n @ 1..=64) => n,
        Some(n) => return Err(bad("mail.smtp.pool_size", format!("{n} is outside 1-64"))),
    };
    Ok(SmtpConfig {
        host: s.host.clone(),
        port,
        tls,
        user,
        password,
        ca: s.ca.iter().map(cx.resolve).collect(),
        timeout,
        pool_size,
    })
}

fn imap(i: &ImapFile, cx: &Context<'_>) -> Result<ImapConfig, Error> {
    check_host("mail.imap.host", &i.host)?;
    let tls = tls(
        "mail.imap.tls",
        i.tls.as_deref(),
        MailTls::Implicit,
        cx.node,
    )?;
    let port = check_port("mail.imap.port", i.port)?.unwrap_or(match tls {
        MailTls::Implicit => 993,
        MailTls::Starttls | MailTls::None => 143,
    });
    check_user("mail.imap.user", &i.user)?;
    let password = (cx.secret)("mail.imap.password", &i.password)?;
    check_password("mail.imap.password", &password)?;
    let folder = |key: &str, v: &Option<String>, default: &str| -> Result<String, Error> {
        let name = v.as_deref().unwrap_or(default);
        check_folder(&format!("mail.imap.{key}"), name)?;
        Ok(name.to_owned())
    };
    let read = folder("folder", &i.folder, "INBOX")?;
    let processed = folder("processed_folder", &i.processed_folder, "Processed")?;
    let quarantine = folder("quarantine_folder", &i.quarantine_folder, "Quarantine")?;
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    if same(&processed, &read) {
        return Err(bad(
            "mail.imap.processed_folder",
            "is the folder read: a processed mail must leave it",
        ));
    }
    if same(&quarantine, &read) {
        return Err(bad(
            "mail.imap.quarantine_folder",
            "is the folder read: a quarantined mail must leave it",
        ));
    }
    if same(&quarantine, &processed) {
        return Err(bad(
            "mail.imap.quarantine_folder",
            "is processed_folder: what was taken in and what was not must stay apart",
        ));
    }
    Ok(ImapConfig {
        host: i.host.clone(),
        port,
        tls,
        user: i.user.clone(),
        password: Secret(password),
        ca: i.ca.iter().map(cx.resolve).collect(),
        folder: read,
        processed_folder: processed,
        quarantine_folder: quarantine,
        poll_every: at_least(
            "mail.imap.poll_every",
            i.poll_every,
            Duration::from_secs(60),
            1,
        )?,
        timeout: at_least("mail.imap.timeout", i.timeout, Duration::from_secs(30), 1)?,
        reconnect_max: at_least(
            "mail.imap.reconnect_max",
            i.reconnect_max,
            Duration::from_secs(300),
            1,
        )?,
    })
}

fn limits(f: &MailLimitsFile) -> Result<MailLimits, Error> {
    let d = MailLimits::default();
    fn within<T: Copy + PartialOrd + std::fmt::Display>(
        key: &str,
        v: Option<Whole<T>>,
        default: T,
        lo: T,
        hi: T,
    ) -> Result<T, Error> {
        match v.map(|n| n.0) {
            None => Ok(default),
            Some(n) if n >= lo && n <= hi => Ok(n),
            Some(n) => Err(bad(
                format!("mail.limits.{key}"),
                format!("{n} is outside {lo}-{hi}"),
            )),
        }
    }
    let limits = MailLimits {
        max_bytes: within("max_mb", f.max_mb, d.max_bytes >> 20, 1, 1024)? << 20,
        max_depth: within("max_depth", f.max_depth, d.max_depth, 1, 100)?,
        max_parts: within("max_parts", f.max_parts, d.max_parts, 1, 10_000)?,
        max_attachments: within(
            "max_attachments",
            f.max_attachments,
            d.max_attachments,
            1,
            1000,
        )?,
        max_header_bytes: within(
            "max_header_kb",
            f.max_header_kb,
            d.max_header_bytes >> 10,
            1,
            1024,
        )? << 10,
        max_headers_bytes: within(
            "max_headers_kb",
            f.max_headers_kb,
            d.max_headers_bytes >> 10,
            1,
            16 * 1024,
        )? << 10,
    };
    if limits.max_header_bytes > limits.max_headers_bytes {
        return Err(bad(
            "mail.limits.max_header_kb",
            "is more than max_headers_kb (one field is part of the header section)",
        ));
    }
    Ok(limits)
}

fn address(key: &str, s: &str) -> Result<Address, Error> {
    Address::parse(s).map_err(|e| bad(key, e.message))
}

/// A host name or IP address to connect to (and the name its certificate must carry).
fn check_host(key: &str, s: &str) -> Result<(), Error> {
    if s.is_empty()
        || s.len() > 253
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    {
        return Err(bad(
            key,
            format!(
                "{:?} is not a host name or IP address such as \"mail.gialai.gov.vn\"",
                clip(s)
            ),
        ));
    }
    Ok(())
}

fn check_port(key: &str, v: Option<Whole<u16>>) -> Result<Option<u16>, Error> {
    match v.map(|n| n.0) {
        Some(0) => Err(bad(key, "0 is not a port")),
        other => Ok(other),
    }
}

/// A user name goes into an SMTP AUTH or an IMAP LOGIN: one line of printable text.
fn check_user(key: &str, s: &str) -> Result<(), Error> {
    if s.is_empty() {
        return Err(bad(key, "empty"));
    }
    if s.len() > 254 || s.chars().any(|c| c.is_control()) {
        return Err(bad(
            key,
            "must be one line of at most 254 bytes without control characters",
        ));
    }
    Ok(())
}

/// A password is never shown in a problem, only what is wrong with it.
fn check_password(key: &str, s: &str) -> Result<(), Error> {
    if s.is_empty() {
        return Err(bad(key, "empty"));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(bad(key, "holds a control character (a line break?)"));
    }
    Ok(())
}

/// A folder name as IMAP carries it quoted: printable ASCII (names with other letters travel
/// in modified UTF-7, which the bridge does not write), no wildcards, quotes or backslashes.
fn check_folder(key: &str, s: &str) -> Result<(), Error> {
    if s.is_empty()
        || s.len() > 200
        || !s
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && !matches!(b, b'*' | b'%' | b'"' | b'\\'))
        || s.starts_with(' ')
        || s.ends_with(' ')
    {
        return Err(bad(
            key,
            format!(
                "{:?} is not a folder name such as \"Processed\" (ASCII letters, digits, \
                 spaces inside, . - _ /; no * % \" \\)",
                clip(s)
            ),
        ));
    }
    Ok(())
}

fn one_line(key: &str, s: &str, max_chars: usize) -> Result<(), Error> {
    if s.trim().is_empty() {
        return Err(bad(key, "empty"));
    }
    if let Some(c) = s
        .chars()
        .find(|&c| c.is_control() || crate::mail::smtp::is_format(c))
    {
        return Err(bad(
            key,
            format!("holds U+{:04X}, a control or invisible character", c as u32),
        ));
    }
    if s.chars().count() > max_chars {
        return Err(bad(key, format!("longer than {max_chars} characters")));
    }
    Ok(())
}

fn at_least(
    key: &str,
    v: Option<DurationValue>,
    default: Duration,
    min_secs: u64,
) -> Result<Duration, Error> {
    let d = v.map_or(default, |v| v.0);
    if d < Duration::from_secs(min_secs) {
        return Err(bad(key, format!("must be at least {min_secs}s")));
    }
    Ok(d)
}

/// A value as shown in a problem: at most 80 characters, nothing that could break the line.
fn clip(s: &str) -> String {
    crate::mail::address::header_text(s, 80)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;
    use crate::error::Code;

    const BASE: &str = r#"
[node]
name = "gialai"
listen = "127.0.0.1:8440"
store = "sqlite://data/node.db"
trust = ["certs/root.pem"]

[[agency]]
code = "000.00.05.H21"
name = "Sở Thông tin và Truyền thông tỉnh Gia Lai"
key = "stttt.key.pem"
cert = "stttt.cert.pem"
"#;

    const MAIL: &str = r#"
[mail]
from = "LienThong@GiaLai.gov.vn"
reply_interval = "2h"

[mail.smtp]
host = "mail.gialai.gov.vn"
user = "lienthong@gialai.gov.vn"
password = "env:SMTP_PW"
ca = ["certs/mail-ca.pem"]

[mail.imap]
host = "mail.gialai.gov.vn"
tls = "starttls"
user = "vanthu@gialai.gov.vn"
password = "env:IMAP_PW"

[[mail.route]]
code = "000.03.21.H21"
name = "Ủy ban nhân dân xã Ia Kha"
to = "mail:xa-iakha@gialai.gov.vn"

[[mail.route]]
code = "000.03.22.H21"
to = "mail:xa-iagrai@gialai.gov.vn"

[[mail.notify]]
agency = "000.00.05.H21"
to = ["vanthu-stttt@gialai.gov.vn", "VANTHU-STTTT@gialai.gov.vn"]
events = ["failed", "arrival", "failed"]

[mail.limits]
max_mb = 10
max_header_kb = 8
"#;

    fn env(name: &str) -> Option<String> {
        match name {
            "SMTP_PW" => Some("mat-khau-gui".into()),
            "IMAP_PW" => Some("matkhau-thu".into()),
            _ => None,
        }
    }

    fn load(text: &str) -> Result<Config, crate::Error> {
        Config::from_toml(text, Path::new("/etc/lienthong"), &env)
    }

    fn config() -> String {
        format!("{BASE}{MAIL}")
    }

    #[test]
    fn mail_loads_with_its_defaults() {
        let c = load(&config()).unwrap();
        let m = c.mail.expect("[mail]");
        assert_eq!(m.from, "LienThong@gialai.gov.vn");
        assert_eq!(m.from_name, DEFAULT_FROM_NAME);
        assert_eq!(m.message_id_domain, "gialai.gov.vn");
        assert_eq!(m.link_base, None);
        assert_eq!(m.reply_interval, Duration::from_secs(7200));
        let s = m.smtp.expect("[mail.smtp]");
        assert_eq!((s.tls, s.port, s.pool_size), (MailTls::Starttls, 587, 4));
        assert_eq!(s.password, Some(Secret("mat-khau-gui".into())));
        assert_eq!(s.ca, [PathBuf::from("/etc/lienthong/certs/mail-ca.pem")]);
        assert_eq!(s.timeout, Duration::from_secs(30));
        let i = m.imap.expect("[mail.imap]");
        assert_eq!((i.tls, i.port), (MailTls::Starttls, 143));
        assert_eq!(i.password.expose(), "matkhau-thu");
        assert_eq!(
            (
                i.folder.as_str(),
                i.processed_folder.as_str(),
                i.quarantine_folder.as_str()
            ),
            ("INBOX", "Processed", "Quarantine")
        );
        assert_eq!(i.poll_every, Duration::from_secs(60));
        assert_eq!(i.reconnect_max, Duration::from_secs(300));
        assert_eq!(m.routes.len(), 2);
        assert_eq!(m.routes[0].code.as_str(), "000.03.21.H21");
        assert_eq!(
            m.routes[0].name.as_deref(),
            Some("Ủy ban nhân dân xã Ia Kha")
        );
        assert_eq!(m.routes[0].address, "xa-iakha@gialai.gov.vn");
        assert_eq!(m.routes[1].name, None);
        // The same mailbox twice is one; events deduplicated, in a stable order.
        assert_eq!(m.notify[0].to, ["vanthu-stttt@gialai.gov.vn"]);
        assert_eq!(
            m.notify[0].events,
            [NotifyEvent::Arrival, NotifyEvent::Failed]
        );
        assert_eq!(m.limits.max_bytes, 10 << 20);
        assert_eq!(m.limits.max_header_bytes, 8 << 10);
        assert_eq!(m.limits.max_headers_bytes, 256 << 10);
        assert_eq!(m.limits.max_parts, 200);
        // The route is what routing sees.
        let code = OrganId::parse_strict("000.03.21.H21").unwrap();
        let c = load(&config()).unwrap();
        assert_eq!(
            crate::node::routing::route(&c, &code),
            crate::node::routing::Route::Mail("xa-iakha@gialai.gov.vn".into())
        );
        // Implicit TLS defaults to the implicit ports; no [mail] is no bridge.
        let implicit = config().replace(
            "host = \"mail.gialai.gov.vn\"\nuser = \"lienthong",
            "host = \"mail.gialai.gov.vn\"\ntls = \"implicit\"\nuser = \"lienthong",
        );
        assert_eq!(
            load(&implicit).unwrap().mail.unwrap().smtp.unwrap().port,
            465
        );
        assert!(load(BASE).unwrap().mail.is_none());
        // Passwords never show in Debug output.
        let shown = format!("{:?}", load(&config()).unwrap().mail);
        assert!(
            !shown.contains("mat-khau-gui") && !shown.contains("matkhau-thu"),
            "{shown}"
        );
    }

    /// `text` is refused at `<config>:LINE:COL: KEY: …message…`, the position being that of the
    /// value after the first `marker`, or of `marker` itself when it is a table header.
    fn refused(text: &str, marker: &str, key: &str, message: &str) {
        refused_nth(text, marker, 0, key, message)
    }

    /// [`refused`] at the `skip + 1`-th line holding `marker`, counted from `[mail]` for a
    /// `mail.` key (an agency's `code = ` comes before a route's).
    fn refused_nth(text: &str, marker: &str, skip: usize, key: &str, message: &str) {
        let e = load(text).unwrap_err();
        assert_eq!(e.code(), Code::ConfigInvalid, "{e}");
        let from = if key.starts_with("mail") {
            text.lines().position(|l| l == "[mail]").unwrap_or(0)
        } else {
            0
        };
        let (n, line) = text
            .lines()
            .enumerate()
            .skip(from)
            .filter(|(_, l)| l.contains(marker))
            .nth(skip)
            .unwrap_or_else(|| panic!("no {marker:?}"));
        // A value: after the marker; a table header (a key missing from it): the header.
        let end = line.find(marker).unwrap()
            + if marker.starts_with('[') {
                0
            } else {
                marker.len()
            };
        let col = line[..end].chars().count() + 1;
        let want = format!("<config>:{}:{col}: {key}: ", n + 1);
        let got = e.to_string();
        assert!(
            got.starts_with(&want),
            "{got}\nwanted it to start with {want}"
        );
        assert!(got.contains(message), "{got}\nwanted {message:?}");
    }

    #[test]
    fn mail_problems_are_placed_at_their_keys() {
        let c = config();
        let with = |from: &str, to: &str| {
            assert!(c.contains(from), "{from}");
            c.replacen(from, to, 1)
        };
        refused(
            &with("from = \"LienThong@", "from = \"Lien Thong@"),
            "from = ",
            "mail.from",
            "is not a mail address",
        );
        refused(
            &with("[mail.smtp]\n", "[mail.smtp]\ntls = \"none\"\n"),
            "tls = ",
            "mail.smtp.tls",
            "node.dev_plain_http",
        );
        // …which development allows.
        let dev = with("[mail.smtp]\n", "[mail.smtp]\ntls = \"none\"\n")
            .replace("trust = [", "dev_plain_http = true\ntrust = [");
        assert_eq!(load(&dev).unwrap().mail.unwrap().smtp.unwrap().port, 25);
        refused(
            &with("tls = \"starttls\"", "tls = \"ssl\""),
            "tls = ",
            "mail.imap.tls",
            "is not one of \"starttls\", \"implicit\", \"none\"",
        );
        refused(
            &with("password = \"env:SMTP_PW\"\n", ""),
            "[mail.smtp]",
            "mail.smtp.password",
            "missing: user is set",
        );
        refused(
            &with("password = \"env:SMTP_PW\"", "password = \"env:NOT_SET\""),
            "password = ",
            "mail.smtp.password",
            "environment variable NOT_SET is not set",
        );
        refused(
            &with("code = \"000.03.21.H21\"", "code = \"000.00.05.H21\""),
            "code = ",
            "mail.route[0].code",
            "an agency this node serves",
        );
        refused_nth(
            &with("code = \"000.03.22.H21\"", "code = \"000.03.21.H21\""),
            "code = ",
            1,
            "mail.route[1].code",
            "routed twice",
        );
        refused_nth(
            &with("to = \"mail:xa-iagrai@", "to = \"xa-iagrai@"),
            "to = ",
            1,
            "mail.route[1].to",
            "\"mail:\" and the address",
        );
        refused_nth(
            &with(
                "to = \"mail:xa-iagrai@gialai.gov.vn\"",
                "to = \"mail:xa-iagrai@gialai.gov.vn\\r\\nBcc: x@y.vn\"",
            ),
            "to = ",
            1,
            "mail.route[1].to",
            "control character",
        );
        refused(
            &with("agency = \"000.00.05.H21\"", "agency = \"000.00.09.H21\""),
            "agency = ",
            "mail.notify[0].agency",
            "not an agency this node serves",
        );
        refused(
            &with("\"arrival\", \"failed\"]", "\"arrival\", \"fail\"]"),
            "\"failed\", \"arrival\", ",
            "mail.notify[0].events[2]",
            "\"fail\" is not one of",
        );
        refused(
            &with("max_mb = 10", "max_mb = 0"),
            "max_mb = ",
            "mail.limits.max_mb",
            "0 is outside 1-1024",
        );
        refused(
            &with("max_header_kb = 8", "max_header_kb = 512"),
            "max_header_kb = ",
            "mail.limits.max_header_kb",
            "more than max_headers_kb",
        );
        refused(
            &with(
                "tls = \"starttls\"\n",
                "tls = \"starttls\"\nprocessed_folder = \"inbox\"\n",
            ),
            "processed_folder = ",
            "mail.imap.processed_folder",
            "is the folder read",
        );
        refused(
            &with(
                "tls = \"starttls\"\n",
                "tls = \"starttls\"\nquarantine_folder = \"Bị*loại\"\n",
            ),
            "quarantine_folder = ",
            "mail.imap.quarantine_folder",
            "is not a folder name",
        );
        refused(
            &with("reply_interval = \"2h\"", "reply_interval = \"10s\""),
            "reply_interval = ",
            "mail.reply_interval",
            "at least 1m",
        );
        refused(
            &with("[mail]\n", "[mail]\nfrom_name = \"Văn thư\u{202E}\"\n"),
            "from_name = ",
            "mail.from_name",
            "U+202E",
        );
        // Without a relay, nothing can be routed by mail.
        let start = c.find("[mail.smtp]").unwrap();
        let end = c.find("[mail.imap]").unwrap();
        let relayless = format!("{}{}", &c[..start], &c[end..]);
        refused(&relayless, "[mail]", "mail.smtp", "missing: [[mail.route]]");
        // A key of the wrong kind says what to write.
        refused(
            &with("[mail.smtp]\n", "[mail.smtp]\nport = \"587\"\n"),
            "port = ",
            "mail.smtp.port",
            "a whole number",
        );
        // An unknown key: at the key itself, with the closest known one.
        let typo = with("[mail.smtp]\n", "[mail.smtp]\nprot = 587\n");
        let line = typo.lines().position(|l| l == "prot = 587").unwrap() + 1;
        let e = load(&typo).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "<config>:{line}:1: mail.smtp.prot: unknown field `prot`"
            )) && e.ends_with("(did you mean `port`?)"),
            "{e}"
        );
    }

    #[test]
    fn the_ca_files_are_checked_at_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/two-nodes");
        let demo = std::fs::read_to_string(dir.join("gialai.toml")).unwrap();
        let with_ca = |smtp_ca: &str, imap_ca: &str| {
            format!(
                "{demo}\n[mail]\nfrom = \"lienthong@gialai.gov.vn\"\n[mail.smtp]\n\
                 host = \"localhost\"\nca = [{smtp_ca}]\n[mail.imap]\nhost = \"localhost\"\n\
                 user = \"vanthu@gialai.gov.vn\"\npassword = \"x\"\nca = [{imap_ca}]\n"
            )
        };
        let good = "\"certs/root-ca.cert.pem\"";
        let config = |text: &str| Config::parse(text, "gialai.toml", &dir, &|_| None).unwrap();
        config(&with_ca(good, good)).check_files().unwrap();
        let e = config(&with_ca(good, "\"certs/nope.pem\""))
            .check_files()
            .unwrap_err();
        assert_eq!(e.code(), Code::ConfigInvalid);
        let e = e.to_string();
        assert!(e.contains("mail.imap.ca[0]: certs/nope.pem"), "{e}");
        let e = config(&with_ca(&format!("{good}, \"gialai.toml\""), good))
            .check_files()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mail.smtp.ca[1]: gialai.toml") && e.contains("no PEM certificate"),
            "{e}"
        );
    }

    #[test]
    fn the_demo_mail_section_is_a_working_one_once_uncommented() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/two-nodes");
        let demo = std::fs::read_to_string(dir.join("gialai.toml")).unwrap();
        let start = demo
            .find("# [mail]\n")
            .expect("a [mail] section in gialai.toml");
        let mut text = demo[..start].to_owned();
        for line in demo[start..].lines() {
            let rest = line.strip_prefix("# ").unwrap_or(line);
            let key = rest
                .split_once(" = ")
                .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            text.push_str(if rest.starts_with('[') || key {
                rest
            } else {
                line
            });
            text.push('\n');
        }
        let env = |name: &str| Some(format!("secret-of-{name}"));
        let c = Config::parse(&text, "gialai.toml", &dir, &env).unwrap();
        let m = c.mail.expect("[mail]");
        assert_eq!(
            m.smtp.unwrap().password.unwrap().expose(),
            "secret-of-LIENTHONG_SMTP_PASSWORD"
        );
        assert_eq!((m.routes.len(), m.notify.len()), (1, 1));
        assert_eq!(
            m.limits,
            MailLimits::default(),
            "the defaults shown are the defaults"
        );
        assert_eq!(m.imap.unwrap().port, 993);
    }

    #[test]
    fn an_agency_mailbox_must_be_an_address() {
        let text = BASE.replace(
            "cert = \"stttt.cert.pem\"\n",
            "cert = \"stttt.cert.pem\"\nmail = \"stttt at gialai\"\n",
        );
        refused(&text, "mail = ", "agency[0].mail", "is not a mail address");
    }
}
