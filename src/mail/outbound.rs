//! The outbox's mail channel: a delivery routed to a mailbox (`mail:<address>`, a mail-only
//! agency of `[[mail.route]]`, or the sender of a document that came in by mail) leaves as a
//! mail through the relay of `[mail.smtp]`.
//!
//! [`MailChannel`] is built once, when the node is, and shared: the outbox
//! ([`crate::node::outbox`]) hands it each claimed mail delivery, and the notifications and
//! automatic replies go out through the same relay ([`MailChannel::send`]). What a delivery
//! becomes:
//!
//! - the package is read from the stored bytes (the `edxml` reader, for the subject, the files
//!   and the metadata; the signer's description from the store), then composed
//!   ([`compose::package_mail`]): a document mail, or a status mail for a status package, with a
//!   `Message-ID` derived from the delivery (the same on every retry);
//! - the relay accepted it → `delivered` with the relay's reply (no receipt: a mailbox has no
//!   one to give; a bounce coming back through the mailbox may still turn it to `failed`);
//! - the relay refused it for good (5xx) → failed at once; anything else (4xx, unreachable,
//!   TLS, credentials) → retried with the outbox's backoff and give-up, behind the relay's
//!   circuit breaker (one for the relay, not one per mailbox).
//!
//! The guarantee is at least once *to the relay*: a crash after the relay accepted and before
//! `delivered` is recorded sends the mail again, with the same `Message-ID`, so the duplicate
//! is recognisable.

use std::sync::Arc;

use time::OffsetDateTime;

use super::address::{Address, Mailbox};
use super::compose::{self, Composed, PackageMail};
use super::smtp::{self, RelayError, RelayReply, SmtpRelay};
use crate::Error;
use crate::config::{Config, MailConfig};
use crate::edxml;
use crate::node::metrics::MailMetrics;
use crate::node::service::{Node, now_ms};
use crate::store::{ClaimedDelivery, Kind, Store};
use crate::transport::TransportError;

/// What kind of mail is sent (the `kind` label of the mail metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// A document package to a mailbox (an outbox delivery).
    Document,
    /// A status package to a mailbox (an outbox delivery).
    Status,
    /// A notification to an agency's notification addresses.
    Notify,
    /// The automatic reply to a quarantined mail.
    Reply,
}

impl MailKind {
    /// Its spelling in the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Document => "document",
            MailKind::Status => "status",
            MailKind::Notify => "notify",
            MailKind::Reply => "reply",
        }
    }
}

/// The node's mail sender: the relay of `[mail.smtp]` and who the node is in mail.
pub struct MailChannel {
    relay: SmtpRelay,
    /// `From:` of every mail (`[mail] from`, `from_name`).
    from: Mailbox,
    message_id_domain: String,
    link_base: Option<String>,
    metrics: Arc<crate::node::metrics::DeliveryMetrics>,
    /// Mails composed and not yet handed to the relay: twice the relay's connections, so one
    /// mail is made while another is sent, and no more. A composed mail is several times its
    /// package (base64 of the files and of the `.edxml`); the outbox's byte budget counts only
    /// the package, so without this cap a window of large deliveries would each hold a mail
    /// waiting for one of the few connections.
    composing: tokio::sync::Semaphore,
}

impl std::fmt::Debug for MailChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailChannel")
            .field("relay", &self.relay)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl MailChannel {
    /// The channel of `config`'s `[mail]`, when it has a relay (`[mail.smtp]`); `None`
    /// otherwise (nothing is sent by mail). Nothing is connected yet. `CONFIG_INVALID` when the
    /// sending address is not one, or the relay's CA files cannot be used.
    pub fn from_config(
        config: &Config,
        metrics: Arc<crate::node::metrics::DeliveryMetrics>,
    ) -> Result<Option<MailChannel>, Error> {
        let Some(mail) = &config.mail else {
            return Ok(None);
        };
        let Some(smtp) = &mail.smtp else {
            return Ok(None);
        };
        let address = Address::parse(&mail.from)
            .map_err(|e| config.problem("mail.from", e.message.clone()))?;
        Ok(Some(MailChannel {
            relay: SmtpRelay::new(smtp)?,
            from: Mailbox::new(&mail.from_name, address),
            message_id_domain: mail.message_id_domain.clone(),
            link_base: mail.link_base.clone(),
            metrics,
            composing: tokio::sync::Semaphore::new(smtp.pool_size.max(1) as usize * 2),
        }))
    }

    /// `From:` of the node's mails.
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// The domain of the node's `Message-ID`s.
    pub fn message_id_domain(&self) -> &str {
        &self.message_id_domain
    }

    /// `[mail] link_base`.
    pub fn link_base(&self) -> Option<&str> {
        self.link_base.as_deref()
    }

    /// The relay, for checks (`relay().check()`) and its name.
    pub fn relay(&self) -> &SmtpRelay {
        &self.relay
    }

    /// Sends a composed mail of `kind` to `to` with the node's address as envelope sender,
    /// counting it in the metrics and remembering whether the relay could be reached (what
    /// `/readyz` reports).
    pub async fn send(
        &self,
        kind: MailKind,
        to: &[Address],
        mail: &Composed,
    ) -> Result<RelayReply, RelayError> {
        let recipients: Vec<String> = to.iter().map(|a| a.as_str().to_owned()).collect();
        let result = self
            .relay
            .send(self.from.address.as_str(), &recipients, &mail.bytes)
            .await;
        self.note(kind, &result);
        result
    }

    /// Counts a send's outcome and keeps the relay's reachability.
    fn note(&self, kind: MailKind, result: &Result<RelayReply, RelayError>) {
        let m: &MailMetrics = &self.metrics.mail;
        let now = now_ms();
        match result {
            Ok(_) => {
                m.sent(kind.as_str());
                m.smtp_reach(Ok(()), now);
            }
            Err(e) => {
                m.send_failed(kind.as_str(), e.permanent);
                m.smtp_reach(relay_reach(e), now);
            }
        }
    }

    /// Asks the relay whether it can be reached (a connection, `NOOP`), for the readiness
    /// report when nothing was sent for a while. Sends nothing.
    pub async fn check(&self) {
        let result = self.relay.check().await;
        let reach = match &result {
            Ok(()) => Ok(()),
            Err(e) => relay_reach(e),
        };
        self.metrics.mail.smtp_reach(reach, now_ms());
        if let Err(e) = result {
            tracing::warn!(relay = self.relay.name(), code = e.code, error = %e.message, "the mail relay cannot be reached");
        }
    }

    /// One attempt of a claimed mail delivery to `address`, with the package `bytes`: `Ok`
    /// with the relay's reply (kept on the attempt), or why not — retryable unless the relay
    /// refused the mail for good, or the mail cannot be made at all (an address that is not
    /// one, a stored package that does not read: sending again cannot help).
    pub async fn deliver<S: Store>(
        &self,
        node: &Node<S>,
        c: &ClaimedDelivery,
        address: &str,
        bytes: Vec<u8>,
    ) -> Result<String, TransportError> {
        let to_address = Address::parse(address).map_err(|e| {
            TransportError::permanent(e.code, format!("delivery to {address}: {}", e.message))
        })?;
        // Held until the relay answered: bounds the composed mails in memory.
        let _composing = self.composing.acquire().await.map_err(|_| {
            TransportError::retry("STORE_UNAVAILABLE", "the mail channel is stopping")
        })?;
        let to = Mailbox::new(
            &route_name(&node.config, &c.recipient).unwrap_or_default(),
            to_address.clone(),
        );
        // The signer as the store recorded it when the package was signed or received.
        let signer = match node.store.message(c.message_id).await {
            Ok(m) => m.signer_subject,
            Err(e) => return Err(TransportError::retry(e.code().as_str(), e.to_string())),
        };
        let kind = match c.kind {
            Kind::Document => MailKind::Document,
            Kind::Status => MailKind::Status,
        };
        let from = self.from.clone();
        let domain = self.message_id_domain.clone();
        let delivery_id = c.lease.delivery_id;
        let limits = node.config.limits.clone();
        let composed = node
            .cpu(move || -> Result<Composed, TransportError> {
                let opts = edxml::ReadOptions {
                    limits,
                    strict: false,
                };
                let package = edxml::read(&bytes, &opts).map_err(|e| {
                    TransportError::permanent(
                        e.code.as_str(),
                        format!("the stored package does not read: {e}"),
                    )
                })?;
                compose::package_mail(&PackageMail {
                    from: &from,
                    to: &to,
                    delivery_id,
                    message_id_domain: &domain,
                    package: &package,
                    signed: &bytes,
                    signer: signer.as_deref(),
                    date: OffsetDateTime::now_utc(),
                })
                .map_err(|e| TransportError::permanent(e.code, e.message))
            })
            .await
            .map_err(|e| TransportError::retry(e.code().as_str(), e.to_string()))??;
        // The Message-ID a bounce must name to fail this delivery (`mail::inbound`).
        if !compose::is_message_id_of(
            &composed.message_id,
            delivery_id,
            &c.document_id,
            &to_address,
            &self.message_id_domain,
        ) {
            tracing::error!(delivery = delivery_id, message_id = %composed.message_id, "the composed mail's Message-ID is not the delivery's: a bounce could not be tied to it");
        }
        match self.send(kind, &[to_address], &composed).await {
            Ok(reply) => {
                tracing::info!(delivery = delivery_id, relay = self.relay.name(), message_id = %composed.message_id, reply = %reply, "mail accepted by the relay");
                Ok(reply.to_string())
            }
            Err(e) if e.permanent => Err(TransportError::permanent(e.code, e.message)),
            Err(e) => Err(TransportError::retry(e.code, e.message)),
        }
    }
}

/// The relay's reachability as an error says it: refused or deferred mail came from a relay
/// that answered (up); a connection, TLS or credentials problem means it cannot be used (down).
fn relay_reach(e: &RelayError) -> Result<(), String> {
    match e.code {
        smtp::MAIL_REFUSED | smtp::MAIL_DEFERRED => Ok(()),
        _ => Err(format!("{}: {}", e.code, e.message)),
    }
}

/// The name `[[mail.route]]` gives the mail-only agency `code`, for the mail's `To:`.
fn route_name(config: &Config, code: &str) -> Option<String> {
    let mail: &MailConfig = config.mail.as_ref()?;
    mail.routes
        .iter()
        .find(|r| r.code.as_str() == code)
        .and_then(|r| r.name.clone())
}

/// How often [`spawn_relay_check`] asks the relay whether it can be reached.
pub const RELAY_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// Asks the relay at start and then every `every` whether it can be reached
/// ([`MailChannel::check`]), so `/readyz` knows the relay's state before the first mail and
/// notices a relay that went away while nothing was sent. Ends when `shutdown` turns `true`.
pub fn spawn_relay_check(
    channel: Arc<MailChannel>,
    every: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = channel.check() => {}
                _ = shutdown.changed() => break,
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
    })
}
