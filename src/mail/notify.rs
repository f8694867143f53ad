//! Notifications: short Vietnamese mails to a local agency's `[[mail.notify]]` addresses when
//! something happens to it — a document arrived (`arrival`), a delivery it sent failed
//! (`failed`), a status arrived about a document it sent (`status`), its signing certificate
//! expires soon (`cert_expiry`).
//!
//! **Best effort, by design.** A notification is a courtesy on top of the event, never part of
//! it: each is sent on a task of its own after the event committed, so the event is never
//! delayed, blocked or failed by the relay (down, slow, refusing). A notification the relay did
//! not take is not retried (the event itself stays in the store and the APIs, where the clerk
//! sees it anyway). Every notification, sent or not, is recorded in the audit chain
//! ([`Store::record_mail_sent`], kind `notify.<event>`) with the relay's reply or why it was not
//! sent. The `Message-ID` is derived from the event ([`NoticeMail::event_key`]), so the same
//! event notified twice (a repeat after a crash) is recognisably the same mail.
//!
//! The functions here return at once: when the agency has no address for the event, they do
//! nothing at all; otherwise they spawn the task (a tokio runtime must be running).

use std::collections::BTreeSet;

use time::OffsetDateTime;

use super::address::Address;
use super::compose::{self, Notice, NoticeDocument, NoticeMail};
use super::outbound::MailKind;
use crate::config::{Config, NotifyEvent};
use crate::edxml::{DocumentPackage, OrganId, StatusCode, StatusPackage};
use crate::node::service::{Node, now_ms};
use crate::store::{ClaimedDelivery, DeliveryError, Direction, SentMail, Store};

/// The addresses `agency` has for `event`, in order, each once (`[[mail.notify]]` entries
/// whose `events` include it; an address that does not parse is skipped with a warning —
/// configuration checks them at load).
pub fn targets(config: &Config, agency: &str, event: NotifyEvent) -> Vec<Address> {
    let Some(mail) = &config.mail else {
        return Vec::new();
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for n in mail
        .notify
        .iter()
        .filter(|n| n.agency.as_str() == agency && n.events.contains(&event))
    {
        for to in &n.to {
            match Address::parse(to) {
                Ok(a) => {
                    if seen.insert(a.key()) {
                        out.push(a);
                    }
                }
                Err(e) => {
                    tracing::warn!(agency, error = %e.message, "a [[mail.notify]] address is not one; skipped");
                }
            }
        }
    }
    out
}

/// A document as a notice shows it.
#[derive(Debug, Clone, Default)]
struct Doc {
    /// "số/ký hiệu".
    code: String,
    subject: String,
    counterpart: String,
}

impl Doc {
    fn notice(&self) -> NoticeDocument<'_> {
        NoticeDocument {
            code: &self.code,
            subject: &self.subject,
            counterpart: &self.counterpart,
        }
    }
}

/// What a notification task says, owned (the task outlives the caller's borrows).
#[derive(Debug, Clone)]
enum What {
    Arrival(Doc),
    Failed {
        doc: Doc,
        reason: String,
    },
    Status {
        doc: Doc,
        code: StatusCode,
        description: String,
    },
    CertExpiry {
        certificate: String,
        not_after: OffsetDateTime,
    },
}

impl What {
    fn notice(&self) -> Notice<'_> {
        match self {
            What::Arrival(doc) => Notice::Arrival {
                document: doc.notice(),
            },
            What::Failed { doc, reason } => Notice::Failed {
                document: doc.notice(),
                reason,
            },
            What::Status {
                doc,
                code,
                description,
            } => Notice::Status {
                document: doc.notice(),
                code: *code,
                description,
            },
            What::CertExpiry {
                certificate,
                not_after,
            } => Notice::CertExpiry {
                certificate,
                not_after: *not_after,
            },
        }
    }
}

/// "số/ký hiệu" as shown: `446/UBND-KGVX`, or whichever half there is.
fn code_of(number: &str, notation: &str) -> String {
    match (number.trim(), notation.trim()) {
        ("", n) => n.to_owned(),
        (s, "") => s.to_owned(),
        (s, n) => format!("{s}/{n}"),
    }
}

/// An agency by its name in this node's configuration, a mail route, or its code.
fn agency_name(config: &Config, code: &str) -> String {
    if let Ok(id) = OrganId::parse_lenient(code)
        && let Some(a) = config.agency(&id)
    {
        return a.organization.organ_name.clone();
    }
    config
        .mail
        .as_ref()
        .and_then(|m| m.routes.iter().find(|r| r.code.as_str() == code))
        .and_then(|r| r.name.clone())
        .unwrap_or_else(|| code.to_owned())
}

/// A document arrived (committed, not a repeat) for `recipients`, this node's agencies:
/// each one's `arrival` addresses are told. Best effort (see the module documentation).
pub fn arrival<S: Store>(
    node: &Node<S>,
    message_id: i64,
    doc: &DocumentPackage,
    recipients: &[OrganId],
) {
    for agency in recipients {
        let to = targets(&node.config, agency.as_str(), NotifyEvent::Arrival);
        if to.is_empty() {
            continue;
        }
        let h = &doc.header;
        let what = What::Arrival(Doc {
            code: code_of(&h.code.number, &h.code.notation),
            subject: h.subject.clone(),
            counterpart: if h.from.organ_name.trim().is_empty() {
                h.from.organ_id.to_string()
            } else {
                h.from.organ_name.clone()
            },
        });
        spawn(
            node,
            agency.to_string(),
            to,
            format!("arrival:{message_id}:{agency}"),
            Some(format!("inbox/{message_id}")),
            Lookup::None,
            what,
        );
    }
}

/// A status package (committed, not a repeat) arrived about a document one of this node's
/// agencies sent: that agency's `status` addresses are told. Best effort.
pub fn status_received<S: Store>(node: &Node<S>, status_message_id: i64, st: &StatusPackage) {
    let agency = st.response_for.organ_id.to_string();
    if node.config.agency(&st.response_for.organ_id).is_none() {
        return;
    }
    let to = targets(&node.config, &agency, NotifyEvent::Status);
    if to.is_empty() {
        return;
    }
    let reporter = if st.from.organ_name.trim().is_empty() {
        st.from.organ_id.to_string()
    } else {
        st.from.organ_name.clone()
    };
    let what = What::Status {
        doc: Doc {
            code: st.response_for.code.clone(),
            subject: String::new(),
            counterpart: reporter,
        },
        code: st.status_code,
        description: st.description.clone(),
    };
    spawn(
        node,
        agency.clone(),
        to,
        format!("status:{status_message_id}"),
        None,
        Lookup::SentDocument {
            sender: agency,
            document_id: st.response_for.effective_document_id(),
        },
        what,
    );
}

/// A delivery the outbox moved to `failed` (gave up, or refused for good): the sending
/// agency's `failed` addresses are told, with the reason. Best effort.
pub fn delivery_failed<S: Store>(node: &Node<S>, c: &ClaimedDelivery, error: &DeliveryError) {
    failed(
        node,
        c.lease.delivery_id,
        c.message_id,
        &c.sender,
        &c.recipient,
        &format!("{}: {}", error.code, error.message),
    );
}

/// A delivery moved to `failed` (by the outbox, or by a bounce that came back), sent by
/// `sender` to `recipient`: `sender`'s `failed` addresses are told. Best effort.
pub fn failed<S: Store>(
    node: &Node<S>,
    delivery_id: i64,
    message_id: i64,
    sender: &str,
    recipient: &str,
    reason: &str,
) {
    let to = targets(&node.config, sender, NotifyEvent::Failed);
    if to.is_empty() {
        return;
    }
    let what = What::Failed {
        doc: Doc {
            code: String::new(),
            subject: String::new(),
            counterpart: agency_name(&node.config, recipient),
        },
        reason: reason.to_owned(),
    };
    spawn(
        node,
        sender.to_owned(),
        to,
        format!("failed:{delivery_id}"),
        Some(format!("documents/{message_id}")),
        Lookup::Message(message_id),
        what,
    );
}

/// The signing certificate of `agency` (described as `certificate`) expires at `not_after`:
/// its `cert_expiry` addresses are told. `step` names the warning (e.g. the threshold of days
/// it crossed), so each warning is its own mail and a repeat of one is the same mail. Best
/// effort.
pub fn cert_expiry<S: Store>(
    node: &Node<S>,
    agency: &str,
    certificate: &str,
    not_after: i64,
    step: &str,
) {
    let to = targets(&node.config, agency, NotifyEvent::CertExpiry);
    if to.is_empty() {
        return;
    }
    let Ok(not_after_t) = OffsetDateTime::from_unix_timestamp(not_after) else {
        return;
    };
    spawn(
        node,
        agency.to_owned(),
        to,
        format!("cert:{agency}:{not_after}:{step}"),
        None,
        Lookup::None,
        What::CertExpiry {
            certificate: certificate.to_owned(),
            not_after: not_after_t,
        },
    );
}

/// What the task reads from the store to fill in the document (never the caller: it must not
/// wait).
#[derive(Debug, Clone)]
enum Lookup {
    None,
    /// A message by id: its số/ký hiệu and trích yếu.
    Message(i64),
    /// The document `sender` sent with this DocumentId: its số/ký hiệu, trích yếu, and the
    /// link to it.
    SentDocument {
        sender: String,
        document_id: String,
    },
}

/// Sends one notification on a task of its own and records it, sent or not.
fn spawn<S: Store>(
    node: &Node<S>,
    agency: String,
    to: Vec<Address>,
    event_key: String,
    link_path: Option<String>,
    lookup: Lookup,
    mut what: What,
) {
    let node = node.clone();
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(agency, event = %event_key, "no runtime to send a notification on; not sent");
        return;
    };
    runtime.spawn(async move {
        let mut link_path = link_path;
        fill(&node, &lookup, &mut what, &mut link_path).await;
        let event = what.notice().event();
        let kind = format!("notify.{}", event.as_str());
        let agency_name = agency_name(&node.config, &agency);
        let recipients: Vec<String> = to.iter().map(|a| a.as_str().to_owned()).collect();
        let (message_id, outcome, sent) = match node.mail.as_ref() {
            None => (
                String::new(),
                "not sent: the node has no mail relay ([mail.smtp])".to_owned(),
                false,
            ),
            Some(channel) => {
                let composed = compose::notice_mail(&NoticeMail {
                    from: channel.from(),
                    to: &to,
                    agency: &agency_name,
                    notice: what.notice(),
                    event_key: &event_key,
                    link_base: channel.link_base(),
                    link_path: link_path.as_deref(),
                    message_id_domain: channel.message_id_domain(),
                    date: OffsetDateTime::now_utc(),
                });
                match composed {
                    Err(e) => (
                        String::new(),
                        format!("not sent: {}: {}", e.code, e.message),
                        false,
                    ),
                    Ok(mail) => match channel.send(MailKind::Notify, &to, &mail).await {
                        Ok(reply) => (mail.message_id, reply.to_string(), true),
                        Err(e) => (
                            mail.message_id,
                            format!("not sent: {}: {}", e.code, e.message),
                            false,
                        ),
                    },
                }
            }
        };
        if sent {
            tracing::info!(agency, kind, to = ?recipients, "notification sent");
        } else {
            tracing::warn!(agency, kind, to = ?recipients, outcome, "notification not sent");
        }
        let record = SentMail {
            kind,
            to: recipients,
            message_id,
            outcome,
            sent,
        };
        if let Err(e) = node.store.record_mail_sent(record, now_ms()).await {
            tracing::warn!(agency, code = %e.code(), error = %e, "the notification could not be recorded in the audit chain");
        }
    });
}

/// Fills in what the event's caller did not have at hand (a failure says nothing of the
/// document but its id; a status names the document only by its số/ký hiệu). A store that does
/// not answer leaves the notice with what it has.
async fn fill<S: Store>(
    node: &Node<S>,
    lookup: &Lookup,
    what: &mut What,
    link_path: &mut Option<String>,
) {
    let doc = match what {
        What::Arrival(doc) | What::Failed { doc, .. } | What::Status { doc, .. } => doc,
        What::CertExpiry { .. } => return,
    };
    let info = match lookup {
        Lookup::None => return,
        Lookup::Message(id) => node.store.message(*id).await.ok(),
        Lookup::SentDocument {
            sender,
            document_id,
        } => node
            .store
            .find_documents(Direction::Out, sender, document_id)
            .await
            .ok()
            .and_then(|found| found.into_iter().next()),
    };
    let Some(info) = info else { return };
    let code = code_of(
        info.code_number.as_deref().unwrap_or(""),
        info.code_notation.as_deref().unwrap_or(""),
    );
    if !code.is_empty() {
        doc.code = code;
    }
    if let Some(subject) = info.subject {
        doc.subject = subject;
    }
    if link_path.is_none() {
        *link_path = Some(format!("documents/{}", info.id));
    }
}

/// The certificate-expiry warnings, in steps: a mail when an agency's signing certificate
/// first comes within 60, 30, 14, 7, 3 and 1 days of its end, and when it has ended — once per
/// step while the node runs (and once at start for the step it is in), not every day.
pub const EXPIRY_STEPS: [i64; 7] = [60, 30, 14, 7, 3, 1, 0];

/// The step of [`EXPIRY_STEPS`] `days_left` is in (the smallest threshold it is within), if any.
pub fn expiry_step(days_left: i64) -> Option<i64> {
    EXPIRY_STEPS.iter().copied().rev().find(|s| days_left <= *s)
}

/// Checks the agencies' signing certificates now and then (at start, then every
/// `every`), telling each agency's `cert_expiry` addresses when its certificate enters a new
/// step ([`EXPIRY_STEPS`]). Ends when `shutdown` turns `true`. Best effort.
pub fn spawn_cert_expiry_watch<S: Store>(
    node: Node<S>,
    every: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut told: std::collections::BTreeMap<String, i64> = Default::default();
        loop {
            let now = now_ms() / 1000;
            for c in crate::node::expiry::report(&node.trust, &node.keys, None, now) {
                let Some(agency) = c.agency.as_deref() else {
                    continue;
                };
                let Some(step) = expiry_step(c.days_left) else {
                    continue;
                };
                let key = format!("{agency}:{}", c.not_after);
                if told.get(&key).is_some_and(|s| *s <= step) {
                    continue;
                }
                told.insert(key, step);
                cert_expiry(&node, agency, &c.subject, c.not_after, &format!("d{step}"));
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_steps_are_the_smallest_threshold_reached() {
        assert_eq!(expiry_step(400), None);
        assert_eq!(expiry_step(61), None);
        assert_eq!(expiry_step(60), Some(60));
        assert_eq!(expiry_step(31), Some(60));
        assert_eq!(expiry_step(30), Some(30));
        assert_eq!(expiry_step(8), Some(14));
        assert_eq!(expiry_step(1), Some(1));
        assert_eq!(expiry_step(0), Some(0));
        assert_eq!(expiry_step(-5), Some(0));
    }

    #[test]
    fn codes_show_whichever_half_there_is() {
        assert_eq!(code_of("446", "UBND-KGVX"), "446/UBND-KGVX");
        assert_eq!(code_of(" ", "UBND-KGVX"), "UBND-KGVX");
        assert_eq!(code_of("12", ""), "12");
        assert_eq!(code_of("", ""), "");
    }
}
