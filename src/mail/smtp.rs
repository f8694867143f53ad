//! The relay the node sends mail through (`[mail.smtp]`), over lettre's pooled async SMTP
//! transport on tokio with rustls.
//!
//! The bytes handed to [`SmtpRelay::send`] go out as they are (`send_raw` with an explicit
//! envelope): the message was composed, and its `Message-ID` fixed, before the outbox claimed
//! the delivery, so a retry sends the very same bytes. The relay's answer is sorted the way the
//! outbox needs it: accepted ([`RelayReply`]), refused for good (a 5xx: [`RelayError::permanent`]),
//! or "later" (a 4xx, the relay unreachable, TLS failing, credentials refused). Credentials
//! refused are transient on purpose: an operator fixes the password and the deliveries that
//! waited go out, rather than every queued document failing at once.

use crate::config::SmtpConfig;

/// The relay refused the message for good: a 5xx reply to `MAIL`, `RCPT` or the data.
pub const MAIL_REFUSED: &str = "MAIL_REFUSED";
/// The relay answered 4xx: it will take the message later.
pub const MAIL_DEFERRED: &str = "MAIL_DEFERRED";
/// The relay could not be reached, the connection broke, or it did not answer in time.
pub const MAIL_UNREACHABLE: &str = "MAIL_UNREACHABLE";
/// TLS could not be set up: the relay does not offer STARTTLS, or its certificate does not
/// chain to the configured roots or name the configured host.
pub const MAIL_TLS: &str = "MAIL_TLS";
/// The relay refused the configured credentials (or offered no mechanism for them).
pub const MAIL_AUTH: &str = "MAIL_AUTH";

/// The relay's positive answer to the message's data, e.g. `250 2.0.0 OK queued as 4F1…`:
/// what the delivery's attempt keeps as evidence that the mail left the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayReply {
    /// The three-digit reply code (2xx).
    pub code: u16,
    /// The reply's text, lines joined by a space, control characters removed.
    pub text: String,
}

impl std::fmt::Display for RelayReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// Why a message was not accepted by the relay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RelayError {
    /// One of [`MAIL_REFUSED`], [`MAIL_DEFERRED`], [`MAIL_UNREACHABLE`], [`MAIL_TLS`],
    /// [`MAIL_AUTH`].
    pub code: &'static str,
    /// `true` only for [`MAIL_REFUSED`]: sending the same message again cannot succeed, so the
    /// delivery fails at once. Everything else is retried with the outbox's backoff.
    pub permanent: bool,
    /// What happened, naming the relay (`host:port`) and carrying the server's reply text
    /// (control characters removed); never a password.
    pub message: String,
}

/// The configured relay: a pool of up to `pool_size` connections, each secured as configured
/// and authenticated with the configured credentials. Cheap to share (`&self` everywhere).
pub struct SmtpRelay {
    _todo: (),
}

impl std::fmt::Debug for SmtpRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpRelay").finish_non_exhaustive()
    }
}

impl SmtpRelay {
    /// Builds the transport from `[mail.smtp]` (nothing is connected yet): STARTTLS required,
    /// implicit TLS, or none (development only; the configuration refuses it otherwise); the
    /// roots are the configured CA files, else the system's. `CONFIG_INVALID` when a CA file
    /// cannot be used.
    pub fn new(config: &SmtpConfig) -> Result<SmtpRelay, crate::Error> {
        let _ = config;
        todo!()
    }

    /// Sends `raw` (a whole RFC 5322 message, as composed) with the envelope `envelope_from` →
    /// `recipients`. The bytes are not touched.
    pub async fn send(
        &self,
        envelope_from: &str,
        recipients: &[String],
        raw: &[u8],
    ) -> Result<RelayReply, RelayError> {
        let _ = (envelope_from, recipients, raw);
        todo!()
    }

    /// Whether the relay can be reached: a connection (TLS and AUTH as configured), `NOOP`,
    /// closed again. For `/readyz`; sends nothing.
    pub async fn check(&self) -> Result<(), RelayError> {
        todo!()
    }

    /// `host:port`, as errors and logs name the relay.
    pub fn name(&self) -> &str {
        todo!()
    }
}
