//! The mail bridge's configuration (`[mail]`): the relay the node sends through, the mailbox it
//! reads, which agency codes are mail-only (routed to a mailbox), who is told of what, and the
//! bounds on what a mail may hold.
//!
//! Passwords may (and in production should) be written `"env:NAME"` like every other secret;
//! [`Secret`] keeps them out of `Debug` output and logs.

use std::path::PathBuf;
use std::time::Duration;

use crate::edxml::OrganId;

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
