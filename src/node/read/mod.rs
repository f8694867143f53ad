//! The read side of the node: the queries the clerk API, the admin API and the web console
//! answer from — one place that says what a document's or a delivery's state is, so the JSON
//! and the pages never disagree. Handlers render what these return; they do not query the
//! store themselves.

use std::collections::BTreeMap;

use crate::Error;
use crate::audit::AuditEntry;
use crate::node::expiry::{self, CertExpiry};
use crate::node::service::{Node, now_ms};
use crate::store::{DeliveryState, Store};

mod deliveries;
mod documents;
mod reception;

pub use deliveries::*;
pub use documents::*;
pub use reception::*;

/// The counters of the console's Tổng quan.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    /// Deliveries by state, every state present (zero when none).
    pub deliveries: BTreeMap<DeliveryState, u64>,
    /// How long the oldest delivery still to be sent has waited (ms), if any.
    pub oldest_pending_ms: Option<i64>,
    /// Certificates that expire within `expiry::WARN_DAYS` days, or have.
    pub expiring: Vec<CertExpiry>,
    /// Chờ tiếp nhận and Chậm tiếp nhận ([`Node::reception`]), for the agency asked about or the
    /// whole node.
    pub reception: crate::store::ReceptionCounts,
    /// The instant before which a waiting document is late ([`late_before`]), as counted.
    pub late_before: i64,
}

impl<S: Store> Node<S> {
    /// The counters of Tổng quan at `now`: the deliveries and certificates of the whole node,
    /// and Chờ tiếp nhận / Chậm tiếp nhận of `agency` (a clerk's) or (`None`) of every agency.
    pub async fn overview(&self, agency: Option<&str>, now: i64) -> Result<Overview, Error> {
        let mut deliveries: BTreeMap<DeliveryState, u64> =
            DeliveryState::ALL.into_iter().map(|s| (s, 0)).collect();
        deliveries.extend(self.store.delivery_counts().await?);
        let oldest_pending_ms = self.store.oldest_pending_age(now).await?;
        let reception = self.reception(agency, now).await?;
        Ok(Overview {
            deliveries,
            oldest_pending_ms,
            reception,
            late_before: late_before(now),
            expiring: self
                .certificates()
                .into_iter()
                .filter(|c| c.warning)
                .collect(),
        })
    }

    /// Every configured certificate (trust anchors, agencies' signing certificates, the node's
    /// TLS certificate) with its expiry, soonest first.
    pub fn certificates(&self) -> Vec<CertExpiry> {
        let mut all = expiry::report(
            &self.trust,
            &self.keys,
            self.tls_certificate.as_deref(),
            now_ms() / 1000,
        );
        all.sort_by_key(|c| c.not_after);
        all
    }

    /// Records a console event that changes no document — a sign-in, a logout, a refused
    /// request (a role without the right, a form without its CSRF token) — in the audit chain,
    /// so that who used the console, and who probed it, leaves a trace. Returns the record's seq.
    pub async fn record_console_event(&self, entry: AuditEntry) -> Result<i64, Error> {
        self.store.record_admin_action(entry, now_ms()).await
    }
}

impl<S: Store> Node<S> {
    /// The agency registry (which certificates may sign for which codes), by code.
    pub async fn registry(&self) -> Result<Vec<crate::store::RegistryEntry>, Error> {
        self.store.registry_list().await
    }

    /// Tests the connection to the configured peer `name` (`None`: no such peer). Changes
    /// nothing; recorded in the audit chain by the caller as who tested what.
    pub async fn test_peer(&self, name: &str) -> Option<crate::transport::probe::Probe> {
        let peer = self.config.peers.iter().find(|p| p.name == name)?;
        Some(crate::transport::probe::probe(&self.config, peer).await)
    }
}

/// The mail bridge (`[mail]`) as the console shows it: where mail goes and comes from and which
/// codes are delivered to a mailbox. Holds no password and no account name: what a page renders
/// cannot leak what it was never given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailBridge {
    /// The address the node sends as.
    pub from: String,
    /// `[mail.smtp]`, if configured: nothing is sent by mail without it.
    pub smtp: Option<MailServer>,
    /// `[mail.imap]`, if configured: nothing is taken in by mail without it.
    pub imap: Option<MailServer>,
    /// `[[mail.route]]`, in the configuration's order.
    pub routes: Vec<MailRouteView>,
}

/// A mail server of the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailServer {
    pub host: String,
    pub port: u16,
    pub tls: crate::config::MailTls,
    /// Whether the bridge signs in (SMTP `AUTH`; always for IMAP).
    pub authenticated: bool,
}

/// An agency code delivered to a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRouteView {
    pub code: String,
    /// Empty when the configuration names none.
    pub name: String,
    pub address: String,
}

impl<S: Store> Node<S> {
    /// The mail bridge, `None` when `[mail]` is not configured.
    pub fn mail_bridge(&self) -> Option<MailBridge> {
        let m = self.config.mail.as_ref()?;
        Some(MailBridge {
            from: m.from.clone(),
            smtp: m.smtp.as_ref().map(|s| MailServer {
                host: s.host.clone(),
                port: s.port,
                tls: s.tls,
                authenticated: s.user.is_some(),
            }),
            imap: m.imap.as_ref().map(|i| MailServer {
                host: i.host.clone(),
                port: i.port,
                tls: i.tls,
                authenticated: true,
            }),
            routes: m
                .routes
                .iter()
                .map(|r| MailRouteView {
                    code: r.code.to_string(),
                    name: r.name.clone().unwrap_or_default(),
                    address: r.address.clone(),
                })
                .collect(),
        })
    }
}
