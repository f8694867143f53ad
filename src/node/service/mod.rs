//! The node's operations, each one transaction in the store: a clerk's submission, a package
//! pushed by a peer (or delivered locally), a status a clerk reports. HTTP handlers and the
//! outbox worker call these and nothing below them.
//!
//! Split by concern: [`send`] (a clerk's submission, revocation, update, replacement),
//! [`receive`] (a package pushed by a peer or delivered locally, and the 02 for a refused one),
//! [`status`] (a status a clerk reports), [`drafts`] (a clerk's approval or discard of a draft
//! the mail bridge made). This module holds what they share: the [`Node`] and
//! its keys, the CPU permits, the store's clock.

mod drafts;
mod receive;
mod send;
mod status;

pub use drafts::{DISCARD_REASON_MAX, DraftApproval, DraftNumber};
pub use receive::{CheckedPackage, Ingested, REJECTION_CODES};
pub use send::{UpdateRecipient, UpdateRequest};

use std::sync::Arc;

use time::OffsetDateTime;

use crate::Error;
use crate::config::Config;
use crate::edxml::{DocumentPackage, OrganId, Package};
use crate::error::Code;
use crate::node::keys::Keyring;
use crate::pki::TrustStore;
use crate::signer::Signer;
use crate::store::{DocumentMeta, SignedPackage, Store};

/// What the node needs to act: its configuration, store, keys and trust anchors.
pub struct Node<S: Store> {
    pub config: Arc<Config>,
    pub store: Arc<S>,
    pub keys: Keyring,
    pub trust: Arc<TrustStore>,
    /// The revocation checker (OCSP/CRL fetcher with its caches) for received packages.
    pub revocation: Arc<crate::revocation::Checker>,
    /// What the outbox counts, for `/metrics`.
    pub metrics: Arc<super::metrics::DeliveryMetrics>,
    /// Permits for CPU-heavy work (signing, verifying), one per core: see [`Node::cpu`].
    pub cpu_permits: Arc<tokio::sync::Semaphore>,
    /// This node's own TLS certificate (DER), when it has one: watched for expiry like the
    /// anchors and the agencies' signing certificates.
    pub tls_certificate: Option<Vec<u8>>,
    /// Rung after a commit that made a delivery due, so the outbox starts at once instead of at
    /// its next poll.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// Which số each agency's next submission is signed with (`node::numbering`).
    pub books: Arc<crate::node::numbering::Books>,
    /// Submissions under way by `Idempotency-Key`: a repeat waits for the first.
    pub in_flight_keys: Arc<crate::node::idempotency::InFlightKeys>,
    /// The mail channel (`[mail.smtp]`): the outbox's mail deliveries, notifications and
    /// automatic replies go out through it. `None` when the node sends no mail.
    pub mail: Option<Arc<crate::mail::outbound::MailChannel>>,
}

impl<S: Store> Clone for Node<S> {
    fn clone(&self) -> Self {
        Node {
            config: self.config.clone(),
            store: self.store.clone(),
            keys: self.keys.clone(),
            trust: self.trust.clone(),
            revocation: self.revocation.clone(),
            metrics: self.metrics.clone(),
            outbox_wake: self.outbox_wake.clone(),
            books: self.books.clone(),
            in_flight_keys: self.in_flight_keys.clone(),
            mail: self.mail.clone(),
            tls_certificate: self.tls_certificate.clone(),
            cpu_permits: self.cpu_permits.clone(),
        }
    }
}

/// A Vietnam-time timestamp (as packages carry them) in Unix milliseconds.
fn vietnam_ms(t: time::PrimitiveDateTime) -> i64 {
    let offset = time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC);
    (t.assume_offset(offset).unix_timestamp_nanos() / 1_000_000) as i64
}

/// Milliseconds since the Unix epoch, the store's clock.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// What the store keeps as a package's header: the model as JSON, files by size only.
fn package_json(pkg: &Package) -> String {
    serde_json::to_string(pkg).unwrap_or_else(|_| "{}".into())
}

fn signed(
    bytes: Vec<u8>,
    signer_subject: Option<String>,
    fingerprint: Option<String>,
    pkg: &Package,
) -> SignedPackage {
    SignedPackage {
        header_json: package_json(pkg),
        bytes,
        signer_subject,
        signer_fingerprint: fingerprint,
        signed_content: None,
        channel: None,
    }
}

fn meta(doc: &DocumentPackage) -> DocumentMeta {
    let h = &doc.header;
    DocumentMeta {
        sender: h.from.organ_id.to_string(),
        document_id: h.effective_document_id(),
        business_type: doc.business_type().number(),
        code_number: h.code.number.clone(),
        code_notation: h.code.notation.clone(),
        code_year: h.promulgation_info.date.year(),
        subject: h.subject.clone(),
    }
}

impl<S: Store> Node<S> {
    /// Loads keys and trust anchors for `config` over `store`.
    pub fn new(config: Config, store: S) -> Result<Node<S>, Error> {
        let mut trust = TrustStore::new();
        for path in &config.node.trust {
            trust.merge(TrustStore::from_path(path)?);
        }
        for path in &config.node.intermediates {
            let pem = std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), e))?;
            trust.add_intermediates_pem(&pem).map_err(|mut e| {
                e.subject = path.display().to_string();
                e
            })?;
        }
        let revocation = Arc::new(crate::revocation::Checker::from_config(&config.revocation)?);
        let tls_certificate = match &config.tls {
            Some(t) => crate::transport::tls::certs_from(&t.cert)?
                .into_iter()
                .next()
                .map(|c| c.to_vec()),
            None => None,
        };
        let metrics: Arc<crate::node::metrics::DeliveryMetrics> = Arc::default();
        let mail = crate::mail::outbound::MailChannel::from_config(&config, metrics.clone())?
            .map(Arc::new);
        Ok(Node {
            revocation,
            tls_certificate,
            keys: Keyring::load(&config)?,
            config: Arc::new(config),
            store: Arc::new(store),
            trust: Arc::new(trust),
            metrics,
            mail,
            outbox_wake: Arc::default(),
            books: Arc::default(),
            in_flight_keys: Arc::default(),
            cpu_permits: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
        })
    }

    /// Runs CPU-heavy work (signing, verifying a package) on tokio's blocking pool, at most one
    /// job per core at a time: the async workers stay free to accept requests and answer health
    /// checks while a large package is signed, and a burst of submissions queues here instead of
    /// oversubscribing the cores.
    pub async fn cpu<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let _permit = self
            .cpu_permits
            .acquire()
            .await
            .map_err(|_| Error::store(Code::StoreUnavailable, "the node is shutting down"))?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| Error::internal("signing or verification task", e.to_string()))
    }

    fn agency(&self, code: &OrganId) -> Result<&crate::config::AgencyConfig, Error> {
        self.config.agency(code).ok_or_else(|| {
            Error::store(
                Code::NotFound,
                format!("{code} is not an agency of this node"),
            )
        })
    }

    /// The agency's signer, refused once its certificate has expired: a package signed with an
    /// expired certificate would be refused by every recipient.
    fn signer(&self, agency: &OrganId) -> Result<Arc<dyn Signer>, Error> {
        let signer = self
            .keys
            .get(agency)
            .cloned()
            .ok_or_else(|| Error::key(agency.to_string(), "no signing key"))?;
        if let Some(not_after) = self.keys.expires_at(agency)
            && now_ms() / 1000 > not_after
        {
            return Err(Error::key(
                agency.to_string(),
                "the signing certificate has expired; renew it before sending",
            ));
        }
        Ok(signer)
    }
}
