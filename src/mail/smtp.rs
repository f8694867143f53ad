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

use std::str::FromStr as _;

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{
    Certificate, CertificateStore, Tls, TlsParameters, TlsParametersBuilder,
};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use tokio::sync::Semaphore;

use crate::config::{MailTls, SmtpConfig};

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
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// lettre's pool bounds the connections it keeps, not the ones in use: this bounds those, so
    /// the relay never sees more than `pool_size` connections from the node.
    slots: Semaphore,
    name: String,
}

impl std::fmt::Debug for SmtpRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpRelay")
            .field("relay", &self.name)
            .finish_non_exhaustive()
    }
}

impl SmtpRelay {
    /// Builds the transport from `[mail.smtp]` (nothing is connected yet): STARTTLS required,
    /// implicit TLS, or none (development only; the configuration refuses it otherwise); the
    /// roots are the configured CA files, else the system's. `CONFIG_INVALID` when a CA file
    /// cannot be used.
    pub fn new(config: &SmtpConfig) -> Result<SmtpRelay, crate::Error> {
        let name = format!("{}:{}", config.host, config.port);
        let tls = match config.tls {
            MailTls::None => Tls::None,
            MailTls::Starttls => Tls::Required(tls_parameters(config)?),
            MailTls::Implicit => Tls::Wrapper(tls_parameters(config)?),
        };
        let pool_size = config.pool_size.max(1);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(config.timeout))
            .pool_config(PoolConfig::new().min_idle(0).max_size(pool_size));
        if let Some(user) = &config.user {
            let password = config
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(SmtpRelay {
            transport: builder.build(),
            slots: Semaphore::new(pool_size as usize),
            name,
        })
    }

    /// Sends `raw` (a whole RFC 5322 message, as composed: CRLF line ends) with the envelope
    /// `envelope_from` → `recipients`. The relay receives exactly these bytes (dot-stuffing
    /// aside, which it undoes).
    pub async fn send(
        &self,
        envelope_from: &str,
        recipients: &[String],
        raw: &[u8],
    ) -> Result<RelayReply, RelayError> {
        let refused = |message: String| RelayError {
            code: MAIL_REFUSED,
            permanent: true,
            message,
        };
        let from = lettre::Address::from_str(envelope_from).map_err(|e| {
            refused(format!(
                "envelope sender {:?} is not a mail address: {e}",
                clean(envelope_from)
            ))
        })?;
        let to = recipients
            .iter()
            .map(|r| {
                lettre::Address::from_str(r).map_err(|e| {
                    refused(format!(
                        "recipient {:?} is not a mail address: {e}",
                        clean(r)
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(Some(from), to)
            .map_err(|e| refused(format!("no envelope for the message: {e}")))?;
        // lettre ends the data with CRLF "." CRLF whatever the message's last bytes are: a
        // message ending in CRLF would gain an empty line. Without its last CRLF, lettre's
        // terminator gives it back, and the relay receives exactly `raw`.
        let data = raw.strip_suffix(b"\r\n").unwrap_or(raw);
        let _slot = self.slot().await?;
        match self.transport.send_raw(&envelope, data).await {
            Ok(response) => Ok(RelayReply {
                code: u16::from(response.code()),
                text: clean(&response.message().collect::<Vec<_>>().join(" ")),
            }),
            Err(e) => Err(self.classify(&e, "sending")),
        }
    }

    /// Whether the relay can be reached: a connection (TLS and AUTH as configured), `NOOP`,
    /// closed again. For `/readyz`; sends nothing.
    pub async fn check(&self) -> Result<(), RelayError> {
        let _slot = self.slot().await?;
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(RelayError {
                code: MAIL_UNREACHABLE,
                permanent: false,
                message: format!("relay {}: NOOP was not answered", self.name),
            }),
            Err(e) => Err(self.classify(&e, "checking")),
        }
    }

    /// `host:port`, as errors and logs name the relay.
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, RelayError> {
        self.slots.acquire().await.map_err(|_| RelayError {
            code: MAIL_UNREACHABLE,
            permanent: false,
            message: format!("relay {}: the transport is shut down", self.name),
        })
    }

    /// Sorts lettre's error into the outbox's terms (see the codes above).
    fn classify(&self, e: &lettre::transport::smtp::Error, doing: &str) -> RelayError {
        let text = match (e.status(), std::error::Error::source(e)) {
            // The reply as the relay wrote it: "451 4.3.0 …".
            (Some(status), Some(reply)) => clean(&format!("{} {reply}", u16::from(status))),
            _ => clean(&error_text(e)),
        };
        let (code, permanent) = if let Some(status) = e.status() {
            let status = u16::from(status);
            match status {
                // RFC 4954: authentication required (530; aiosmtpd also says so for "STARTTLS
                // first"), mechanism too weak (534), credentials invalid (535), encryption
                // required for the mechanism (538). An operator's fix, not the message's fault.
                530 | 534 | 535 | 538 => (MAIL_AUTH, false),
                500..=599 => (MAIL_REFUSED, true),
                _ => (MAIL_DEFERRED, false),
            }
        } else if e.is_tls() || has_tls_cause(e) || text.contains("STARTTLS") {
            (MAIL_TLS, false)
        } else if text.contains("authentication mechanism") {
            (MAIL_AUTH, false)
        } else if e.is_client() && (text.contains("8BITMIME") || text.contains("SMTPUTF8")) {
            // The relay cannot carry this message at all: sending it again will not help.
            (MAIL_REFUSED, true)
        } else {
            (MAIL_UNREACHABLE, false)
        };
        RelayError {
            code,
            permanent,
            message: format!("relay {} ({doing}): {text}", self.name),
        }
    }
}

fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, crate::Error> {
    let mut params = TlsParametersBuilder::new(config.host.clone());
    if !config.ca.is_empty() {
        params = params.certificate_store(CertificateStore::None);
        for ca in &config.ca {
            for der in crate::transport::tls::certs_from(ca)? {
                let cert = Certificate::from_der(der.to_vec()).map_err(|e| {
                    crate::error::FormatError::new(
                        crate::error::Code::ConfigInvalid,
                        ca.display().to_string(),
                        format!("not a usable CA certificate: {e}"),
                    )
                })?;
                params = params.add_root_certificate(cert);
            }
        }
    }
    params.build_rustls().map_err(|e| {
        crate::error::FormatError::new(
            crate::error::Code::ConfigInvalid,
            "mail.smtp",
            format!("cannot set up TLS for {}: {e}", config.host),
        )
        .into()
    })
}

/// The error and its causes as one line (lettre's `Display` already includes the reply text
/// of a negative answer).
fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Whether a rustls error is among the causes (a handshake that failed: an untrusted or
/// misnamed certificate, no common version). `io::Error` hides its inner error from
/// `source()`, so it is opened by hand.
pub(crate) fn has_tls_cause(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(c) = next {
        if c.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && has_tls_cause(inner)
        {
            return true;
        }
        next = c.source();
    }
    false
}

/// Server text as one safe line: control characters (CR, LF included) and bidirectional or
/// invisible format characters become spaces, runs of spaces one, at most 1000 characters.
pub(crate) fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(1024));
    let mut n = 0;
    for c in s.chars() {
        let c = if c.is_control() || is_format(c) {
            ' '
        } else {
            c
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        if n == 1000 {
            out.push('…');
            break;
        }
        out.push(c);
        n += 1;
    }
    out.trim_end().to_owned()
}

/// Bidirectional controls and invisible format characters (Unicode category Cf, the ones that
/// matter): they could make a logged reply read differently from what it says.
pub(crate) fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_is_one_line_without_hidden_characters() {
        assert_eq!(
            clean("550 5.1.1 <x@y>\r\n550 user\u{202E}kcatta unknown\u{0}"),
            "550 5.1.1 <x@y> 550 user kcatta unknown"
        );
        assert_eq!(clean(&"a".repeat(2000)).chars().count(), 1001);
    }
}
