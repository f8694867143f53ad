//! The read side of the node: the queries the clerk API, the admin API and the web console
//! answer from — one place that says what a document's or a delivery's state is, so the JSON
//! and the pages never disagree. Handlers render what these return; they do not query the
//! store themselves.

use std::collections::BTreeMap;

use crate::Error;
use crate::audit::{AuditEntry, AuditRecord};
use crate::node::expiry::{self, CertExpiry};
use crate::node::service::{Node, now_ms};
use crate::store::{
    AttemptInfo, AuditBrowse, AuditVerdict, DeliveryFilter, DeliveryInfo, DeliveryState, Page,
    Store,
};

/// The counters of the console's Tổng quan.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    /// Deliveries by state, every state present (zero when none).
    pub deliveries: BTreeMap<DeliveryState, u64>,
    /// How long the oldest delivery still to be sent has waited (ms), if any.
    pub oldest_pending_ms: Option<i64>,
    /// Certificates that expire within `expiry::WARN_DAYS` days, or have.
    pub expiring: Vec<CertExpiry>,
}

impl<S: Store> Node<S> {
    /// The counters of the overview page (and of `GET /admin/v1/overview`).
    pub async fn overview(&self) -> Result<Overview, Error> {
        let now = now_ms();
        let mut deliveries: BTreeMap<DeliveryState, u64> =
            DeliveryState::ALL.into_iter().map(|s| (s, 0)).collect();
        deliveries.extend(self.store.delivery_counts().await?);
        let oldest_pending_ms = self.store.oldest_pending_age(now).await?;
        Ok(Overview {
            deliveries,
            oldest_pending_ms,
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

// --- deliveries and the audit chain, for the admin API and the console's administrators' pages

/// At most this many deliveries are counted for a list's total: past it a page says "more than
/// 10 000" instead of counting a table of millions on every request.
pub const COUNT_CAP: u32 = 10_000;

/// A count of matching rows, counted no further than [`COUNT_CAP`] + 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capped {
    Exactly(u64),
    /// More than [`COUNT_CAP`].
    More,
}

impl<S: Store> Node<S> {
    /// Deliveries across agencies, newest first (keyset on `filter.page.before`).
    pub async fn deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<DeliveryInfo>, Error> {
        self.store.list_deliveries(filter).await
    }

    /// How many deliveries `filter` matches, up to [`COUNT_CAP`] (its page is ignored).
    pub async fn count_deliveries(&self, filter: &DeliveryFilter) -> Result<Capped, Error> {
        let all = DeliveryFilter {
            page: Page {
                before: None,
                ..filter.page
            },
            ..filter.clone()
        };
        let n = self.store.count_deliveries(&all, COUNT_CAP + 1).await?;
        Ok(if n > u64::from(COUNT_CAP) {
            Capped::More
        } else {
            Capped::Exactly(n)
        })
    }

    /// One delivery (`NOT_FOUND` when there is none).
    pub async fn delivery(&self, id: i64) -> Result<DeliveryInfo, Error> {
        self.store.delivery(id).await
    }

    /// One delivery with every attempt, oldest first.
    pub async fn delivery_with_attempts(
        &self,
        id: i64,
    ) -> Result<(DeliveryInfo, Vec<AttemptInfo>), Error> {
        let d = self.store.delivery(id).await?;
        let attempts = self.store.attempts(id).await?;
        Ok((d, attempts))
    }

    /// Audit records newest first, filtered, for browsing.
    pub async fn audit_page(&self, query: &AuditBrowse) -> Result<Vec<AuditRecord>, Error> {
        self.store.audit_browse(query).await
    }

    /// Verifies the whole audit chain: its summary (with the head), or where it breaks.
    pub async fn verify_audit(&self) -> Result<AuditVerdict, Error> {
        self.store.verify_audit().await
    }

    /// How many deliveries were created since `since` (Unix ms), up to [`COUNT_CAP`]: the
    /// overview's "today".
    pub async fn deliveries_since(&self, since: i64) -> Result<Capped, Error> {
        self.count_deliveries(&DeliveryFilter {
            since: Some(since),
            ..DeliveryFilter::default()
        })
        .await
    }
}
