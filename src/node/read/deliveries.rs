//! Deliveries and the audit chain, for the admin API and the console's administrators' pages.

use crate::Error;
use crate::audit::AuditRecord;
use crate::node::service::Node;
use crate::store::{
    AttemptInfo, AuditBrowse, AuditVerdict, DeliveryFilter, DeliveryInfo, Page, Store,
};

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
