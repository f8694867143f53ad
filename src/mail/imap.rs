//! The mailbox the node reads (`[mail.imap]`): async-imap over a tokio-rustls stream (IMAPS,
//! or STARTTLS — required when configured), addressed by UID only.
//!
//! One [`Mailbox`] is one logged-in session with one selected folder. Every command has the
//! configured timeout; when a command fails in a way that leaves the session in an unknown
//! state (a timeout, a broken connection, a reply that does not parse), the `Mailbox` is spent:
//! the error says so ([`ImapError::reconnect`]) and later calls fail at once. Reconnecting,
//! with backoff, is the caller's (`mail::inbound`).

use std::time::Duration;

use crate::config::ImapConfig;

/// The server could not be reached, the connection broke or a command timed out.
pub const IMAP_UNREACHABLE: &str = "IMAP_UNREACHABLE";
/// TLS could not be set up (no STARTTLS offered when required, a certificate not trusted).
pub const IMAP_TLS: &str = "IMAP_TLS";
/// The server refused the configured user and password.
pub const IMAP_AUTH: &str = "IMAP_AUTH";
/// The server answered `NO`/`BAD` to a command, or something this client cannot read.
pub const IMAP_PROTOCOL: &str = "IMAP_PROTOCOL";
/// A mail larger than the caller's limit: refused without reading it.
pub const IMAP_TOO_LARGE: &str = "IMAP_TOO_LARGE";

/// Why an IMAP operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ImapError {
    /// One of [`IMAP_UNREACHABLE`], [`IMAP_TLS`], [`IMAP_AUTH`], [`IMAP_PROTOCOL`],
    /// [`IMAP_TOO_LARGE`].
    pub code: &'static str,
    /// What happened, naming the server (`host:port`), the folder or UID and the server's
    /// text (control characters removed); never a password.
    pub message: String,
    /// `true` when this `Mailbox` is spent and only a new connection (after a pause) can help;
    /// `false` when the session is still usable (a refused mail, a command the server
    /// answered `NO` to) — the caller may go on with the next mail.
    pub reconnect: bool,
}

/// What `SELECT` says of the folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderState {
    /// UIDs are only comparable within one UIDVALIDITY: when it changes, the checkpoint does
    /// not apply any more.
    pub uidvalidity: u32,
    /// The UID the next mail will get (a lower bound; 0 when the server did not say).
    pub uidnext: u32,
    /// Mails in the folder.
    pub exists: u32,
}

/// How [`Mailbox::idle_or_sleep`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The server reported new mail (`EXISTS` during IDLE).
    NewMail,
    /// The time was up (or the server has no IDLE and the pause is over): read the folder.
    Timeout,
}

/// A logged-in session with (after [`Mailbox::select`]) one selected folder.
pub struct Mailbox {
    _todo: (),
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox").finish_non_exhaustive()
    }
}

impl Mailbox {
    /// Connects (IMAPS, STARTTLS, or plain in development), checks the server's certificate
    /// against the configured CA files (else the system's roots), and logs in.
    pub async fn connect(config: &ImapConfig) -> Result<Mailbox, ImapError> {
        let _ = config;
        todo!()
    }

    /// Creates each folder that does not exist yet (`Processed`, `Quarantine`).
    pub async fn ensure_folders(&mut self, folders: &[&str]) -> Result<(), ImapError> {
        let _ = folders;
        todo!()
    }

    /// Selects `folder` (read-write) and says its UIDVALIDITY, UIDNEXT and size.
    pub async fn select(&mut self, folder: &str) -> Result<FolderState, ImapError> {
        let _ = folder;
        todo!()
    }

    /// The mails of the selected folder with a UID above `last_uid`, in UID order, each with
    /// its size as the server reports it (`RFC822.SIZE`).
    pub async fn list_after(&mut self, last_uid: u32) -> Result<Vec<(u32, u64)>, ImapError> {
        let _ = last_uid;
        todo!()
    }

    /// The whole mail `uid` (`BODY.PEEK[]`: not marked seen), or [`IMAP_TOO_LARGE`] when it
    /// holds more than `max_bytes` (never more than `max_bytes + 1` bytes are read).
    pub async fn fetch(&mut self, uid: u32, max_bytes: u64) -> Result<Vec<u8>, ImapError> {
        let _ = (uid, max_bytes);
        todo!()
    }

    /// The header section of mail `uid`, at most `max_bytes` of it (a longer header is cut,
    /// not refused: this is what a quarantined mail is described from).
    pub async fn fetch_header(&mut self, uid: u32, max_bytes: u64) -> Result<Vec<u8>, ImapError> {
        let _ = (uid, max_bytes);
        todo!()
    }

    /// Moves mail `uid` of the selected folder to `folder` (`UID MOVE`, or `UID COPY` +
    /// `\Deleted` + `UID EXPUNGE` on a server without MOVE). Moving a mail that is no longer
    /// there is not an error (a move that was done before a crash).
    pub async fn move_to(&mut self, uid: u32, folder: &str) -> Result<(), ImapError> {
        let _ = (uid, folder);
        todo!()
    }

    /// Waits for new mail in the selected folder: IDLE when the server offers it (returns on
    /// `EXISTS` or after `timeout`), else sleeps `timeout`.
    pub async fn idle_or_sleep(&mut self, timeout: Duration) -> Result<Wake, ImapError> {
        let _ = timeout;
        todo!()
    }

    /// Whether the server offers IDLE.
    pub fn has_idle(&self) -> bool {
        todo!()
    }

    /// Ends the session politely (`LOGOUT`); errors are of no interest to the caller.
    pub async fn logout(self) {
        todo!()
    }
}
