//! The outbox worker: claims due deliveries with a lease, routes each by recipient code, and
//! records the outcome — delivered with the receipt that proves it (or, for the mail channel,
//! the relay's acceptance), retried later with backoff and jitter, or failed for an operator.
//!
//! At-least-once: a crash mid-delivery leaves a lease that the restarted node takes back before
//! this worker starts (`SqliteStore::take_back_leases`), and the delivery is claimed again; the
//! receiver's deduplication turns the repeat into the original receipt (invariant 3). A mail
//! sent again carries the same `Message-ID` (derived from the delivery), so the duplicate is
//! recognisable.
//! A circuit breaker per peer (and one for the mail relay, whatever the recipient) stops
//! hammering a server that is down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::routing::Route;
use super::service::{Node, now_ms};
use crate::config::{PeerConfig, RetryPolicy};
use crate::edxml::{Package, StatusCode};
use crate::store::{ClaimedDelivery, DeliveryError, Kind, Store};
use crate::transport::TransportError;
use crate::transport::peer::{PeerClient, Pushed};
use crate::verify::{Options, verify_package};

/// The error of an attempt skipped because the peer's circuit breaker is open.
const BREAKER_OPEN: &str = "PEER_UNAVAILABLE";
/// The error of a mail skipped because the relay's circuit breaker is open.
const MAIL_BREAKER_OPEN: &str = "MAIL_RELAY_UNAVAILABLE";
/// The breaker of the mail channel: one for the relay, not one per recipient mailbox (the relay
/// is what is up or down; a dead relay must not be probed once per commune).
const MAIL_BREAKER: &str = "mail:relay";

/// How an attempt succeeded.
enum Done {
    /// The recipient (its node, or this node for a local agency) acknowledged: the receipt to
    /// keep (empty for a status package).
    Receipt(Vec<u8>),
    /// The mail relay accepted the message: its reply, kept on the attempt. A mail has no
    /// receipt; a bounce may still turn the delivery to failed later.
    Relayed(String),
}

/// The breaker that guards `route` (stored form): the peer's own, or the relay's for any mail.
fn breaker_key(route: &str) -> &str {
    if route.starts_with("mail:") {
        MAIL_BREAKER
    } else {
        route
    }
}

/// The route as a metrics label: a mail delivery counts under `mail`, not under each address
/// (unbounded label values would grow the metrics without end).
fn route_label(route: &str) -> &str {
    if route.starts_with("mail:") {
        "mail"
    } else {
        route
    }
}
/// Pause when nothing is due: the poll. A submission through this process wakes the outbox at
/// once (`Node::outbox_wake`), and so does one through another replica sharing a PostgreSQL
/// store (`Store::watch_queue`); the poll is what finds a retry whose time came and a lease
/// that expired (a replica died holding it), and what still works while the store's listener
/// is reconnecting. On SQLite an idle poll finds nothing in an index; on PostgreSQL it is one
/// read (the claim looks before it takes the write lock), so 100 ms costs each replica ten
/// index probes a second and keeps a retry's delay within 100 ms of its backoff.
const IDLE: Duration = Duration::from_millis(100);

/// Per-peer circuit breaker. Closed: attempts go to the peer and consecutive network failures
/// are counted. Open, after `breaker_failures` of them: attempts are skipped until
/// `breaker_cooldown` has passed. Half-open, then: one attempt (the probe) goes to the peer and
/// the others wait; the probe's success, or a refusal (the peer is up), closes the breaker, its
/// network failure opens it again for a whole cooldown. So a peer that is down sees one attempt
/// per cooldown, not a burst of every delivery that came due meanwhile.
#[derive(Debug, Default, Clone)]
struct Breaker {
    failures: u32,
    open_until: i64,
    /// When the half-open probe went out; other attempts wait for its outcome. A probe older
    /// than the lease was lost (its task ended without an outcome) and another is let through.
    probe_since: Option<i64>,
}

impl Breaker {
    /// Whether an attempt may go to the peer at `now` (ms); one let through while half-open is
    /// the probe.
    fn admit(&mut self, now: i64, policy: &RetryPolicy) -> bool {
        if self.failures < policy.breaker_failures {
            return true;
        }
        if now < self.open_until {
            return false;
        }
        match self.probe_since {
            Some(t) if now - t < policy.lease.as_millis() as i64 => false,
            _ => {
                self.probe_since = Some(now);
                true
            }
        }
    }

    /// Records an attempt's outcome at `now`: `Ok`, or `Err(retryable)`. A refusal
    /// (non-retryable) proves the peer is up.
    fn record(&mut self, outcome: Result<(), bool>, now: i64, policy: &RetryPolicy) {
        match outcome {
            Ok(()) | Err(false) => *self = Breaker::default(),
            Err(true) => {
                self.failures = self.failures.saturating_add(1);
                self.probe_since = None;
                if self.failures >= policy.breaker_failures {
                    self.open_until = now + policy.breaker_cooldown.as_millis() as i64;
                }
            }
        }
    }
}

struct Worker<S: Store> {
    node: Node<S>,
    client: PeerClient,
    owner: String,
    breakers: Mutex<HashMap<String, Breaker>>,
    /// Package bytes in memory for deliveries in flight (`retry.in_flight_bytes`, in KiB
    /// permits): bounds memory whatever the count in flight.
    bytes: Arc<tokio::sync::Semaphore>,
    /// Permits of `bytes` (all of them: a package at least that large goes alone).
    bytes_permits: u32,
}

/// Starts the worker; it stops claiming when `shutdown` turns `true` and returns once in-flight
/// deliveries are recorded (or left to their leases).
pub fn spawn<S: Store>(
    node: Node<S>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let owner = format!("{}:{}", node.config.node.name, std::process::id());
        let client = match PeerClient::new(&node.config, node.config.retry.push_timeout) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(code = %e.code, error = %e.message, "outbox cannot start");
                return;
            }
        };
        let lease_ms = node.config.retry.lease.as_millis() as i64;
        let batch = node.config.retry.in_flight.max(1);
        let bytes_permits =
            u32::try_from((node.config.retry.in_flight_bytes / 1024).max(1)).unwrap_or(u32::MAX);
        let worker = Arc::new(Worker {
            node,
            client,
            owner,
            breakers: Mutex::new(HashMap::new()),
            bytes: Arc::new(tokio::sync::Semaphore::new(bytes_permits as usize)),
            bytes_permits,
        });
        // A pipeline: up to `batch` deliveries in flight; each freed slot is refilled by the
        // next claim, so one slow peer never holds up the others' batch.
        let mut in_flight = JoinSet::new();
        let wake = worker.node.outbox_wake.clone();
        // Deliveries queued by another replica of the store wake this outbox too; the poll
        // below stays the fallback. Ends with the outbox.
        let listener = worker.node.store.watch_queue(wake.clone());
        loop {
            if *shutdown.borrow() {
                break;
            }
            let room = batch.saturating_sub(in_flight.len() as u32);
            // Claiming is a write transaction: refill in chunks, not one slot at a time.
            let claimed = if room < batch / 4 && !in_flight.is_empty() {
                Vec::new()
            } else {
                match worker
                    .node
                    .store
                    .claim_due(now_ms(), room, &worker.owner, lease_ms)
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(code = %e.code(), error = %e, "claiming due deliveries failed");
                        Vec::new()
                    }
                }
            };
            let more = !claimed.is_empty() && claimed.len() as u32 == room;
            for c in claimed {
                let w = worker.clone();
                in_flight.spawn(async move { w.deliver(c).await });
            }
            while in_flight.try_join_next().is_some() {}
            if more && in_flight.len() < batch as usize {
                continue;
            }
            tokio::select! {
                _ = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = wake.notified() => {}
                _ = tokio::time::sleep(IDLE) => {}
                _ = shutdown.changed() => {}
            }
        }
        if let Some(listener) = listener {
            listener.abort();
        }
        while in_flight.join_next().await.is_some() {}
    })
}

impl<S: Store> Worker<S> {
    async fn deliver(&self, mut c: ClaimedDelivery) {
        let outcome = self.attempt(&mut c).await;
        let label = match &outcome {
            Ok(_) => "delivered",
            Err(e) => e.code.as_str(),
        };
        self.node.metrics.attempt(route_label(&c.route), label);
        let store = &self.node.store;
        let now = now_ms();
        // The failure recorded, when the delivery ends `failed` (for the agency's notification).
        let mut failed_with = None;
        let recorded = match outcome {
            Ok(Done::Receipt(receipt)) => {
                crate::fault::crash(crate::fault::Point::ReceiptChecked);
                tracing::info!(document_id = %c.document_id, recipient = %c.recipient, delivery = c.lease.delivery_id, "delivered");
                store.mark_delivered(c.lease, receipt, now).await
            }
            Ok(Done::Relayed(reply)) => {
                crate::fault::crash(crate::fault::Point::MailRelayed);
                tracing::info!(document_id = %c.document_id, recipient = %c.recipient, delivery = c.lease.delivery_id, reply = %reply, "relayed by mail");
                store.mark_relayed(c.lease, reply, now).await
            }
            Err(e) if e.retryable => {
                let policy = &self.node.config.retry;
                let age = match store.delivery(c.lease.delivery_id).await {
                    Ok(d) => now - d.retry_from.unwrap_or(d.created_at),
                    Err(_) => 0,
                };
                let error = DeliveryError::new(e.code.clone(), e.message.clone());
                // An open breaker says nothing about this delivery: wait for it, never give up.
                let breaker_open = e.code == BREAKER_OPEN || e.code == MAIL_BREAKER_OPEN;
                if !breaker_open && age >= policy.give_up_after.as_millis() as i64 {
                    tracing::warn!(document_id = %c.document_id, recipient = %c.recipient, code = %e.code, "giving up; needs an operator");
                    failed_with = Some(error.clone());
                    store.mark_failed(c.lease, error, now).await
                } else {
                    let next = now + backoff(policy, c.attempt).as_millis() as i64;
                    let next = next.max(self.breaker_open_until(breaker_key(&c.route)));
                    tracing::info!(document_id = %c.document_id, recipient = %c.recipient, code = %e.code, attempt = c.attempt, "will retry");
                    store.retry_later(c.lease, error, next, now).await
                }
            }
            Err(e) => {
                tracing::warn!(document_id = %c.document_id, recipient = %c.recipient, code = %e.code, error = %e.message, "refused; needs an operator");
                // Failed first, with the refusal's code on the attempt; then the recipient's 02,
                // if it sent one, moves the delivery on to `rejected` (see `record_rejection`).
                let error = DeliveryError::new(e.code, e.message);
                failed_with = Some(error.clone());
                let failed = store.mark_failed(c.lease, error, now).await;
                if !e.status_packages.is_empty() {
                    self.record_rejection(&e.status_packages, &c).await;
                }
                failed
            }
        };
        match recorded {
            // A lost lease (an operator acted, or our lease expired and another worker took it):
            // the newer owner records the outcome; repeats are deduplicated by the receiver.
            Err(e) => {
                tracing::warn!(code = %e.code(), error = %e, delivery = c.lease.delivery_id, "outcome not recorded");
            }
            // Committed: the sending agency's notification addresses are told (best effort, on
            // a task of its own: the outbox never waits for it).
            Ok(()) => {
                if let Some(error) = failed_with {
                    crate::mail::notify::delivery_failed(&self.node, &c, &error);
                }
            }
        }
    }

    /// One attempt: how it succeeded, or why not.
    async fn attempt(&self, c: &mut ClaimedDelivery) -> Result<Done, TransportError> {
        // Damaged bytes stay damaged: resending cannot succeed.
        let store_err = |e: crate::Error| match e.code() {
            crate::Code::StoreCorrupt => {
                TransportError::permanent(e.code().as_str(), e.to_string())
            }
            code => TransportError::retry(code.as_str(), e.to_string()),
        };
        let route = Route::from_stored(&c.route);
        // A package the store keeps as a file is pushed from it, never read whole; a local
        // delivery (ingest) and a small package need the bytes.
        let file = match route {
            Route::Peer(_) if c.in_file => self
                .node
                .store
                .message_file(c.message_id)
                .await
                .map_err(store_err)?,
            _ => None,
        };
        // Room in the in-flight byte budget for a package read into memory (a file is streamed in
        // chunks), held until the attempt ends.
        let _room = match file {
            Some(_) => None,
            None => {
                let kib = u32::try_from(c.size.div_ceil(1024)).unwrap_or(u32::MAX);
                Some(
                    self.bytes
                        .acquire_many(kib.clamp(1, self.bytes_permits))
                        .await
                        .map_err(|_| {
                            TransportError::retry("STORE_UNAVAILABLE", "the outbox is stopping")
                        })?,
                )
            }
        };
        let bytes = match (&file, c.package.take()) {
            (Some(_), _) => Vec::new(),
            // A small package came with its claim.
            (None, Some(bytes)) => bytes,
            (None, None) => self
                .node
                .store
                .message_bytes(c.message_id)
                .await
                .map_err(store_err)?,
        };
        match route {
            Route::None => Err(TransportError::permanent(
                "NO_ROUTE",
                format!("no node is known to serve {}", c.recipient),
            )),
            Route::Local => match self.node.ingest_owned(bytes, None).await {
                // This delivery's recipient's own 01 (signed here, by that agency's key).
                Ok(ingested) if c.kind == Kind::Document => ingested
                    .receipt_of(&c.recipient)
                    .map(|r| Done::Receipt(r.bytes.clone()))
                    .ok_or_else(|| {
                        TransportError::retry(
                            "RECEIPT_INVALID",
                            format!("no receipt from {} among the local ones", c.recipient),
                        )
                    }),
                Ok(_) => Ok(Done::Receipt(Vec::new())),
                // Transient: the store, or a revocation status that cannot be learned now.
                Err(e)
                    if matches!(
                        e.code(),
                        crate::Code::StoreUnavailable | crate::Code::RevocationUnknown
                    ) =>
                {
                    Err(TransportError::retry(e.code().as_str(), e.to_string()))
                }
                Err(e) => Err(TransportError::permanent(e.code().as_str(), e.to_string())),
            },
            Route::Mail(address) => {
                let Some(channel) = self.node.mail.as_ref() else {
                    return Err(TransportError::permanent(
                        "NO_ROUTE",
                        format!(
                            "{} is routed to the mailbox {address}, but this node has no mail \
                             relay ([mail.smtp])",
                            c.recipient
                        ),
                    ));
                };
                if !self.breaker_admits(MAIL_BREAKER) {
                    return Err(TransportError::retry(
                        MAIL_BREAKER_OPEN,
                        "circuit open for the mail relay",
                    ));
                }
                let result = channel.deliver(&self.node, c, &address, bytes).await;
                // A refusal of this one mail (5xx) proves the relay is up, like a peer's refusal.
                self.record_breaker(
                    MAIL_BREAKER,
                    result.as_ref().map(|_| ()).map_err(|e| e.retryable),
                );
                result.map(Done::Relayed)
            }
            Route::Peer(name) => {
                let peer = self
                    .node
                    .config
                    .peers
                    .iter()
                    .find(|p| p.name == name)
                    .ok_or_else(|| {
                        TransportError::permanent(
                            "NO_ROUTE",
                            format!("peer {name} is no longer configured"),
                        )
                    })?;
                if !self.breaker_admits(&c.route) {
                    return Err(TransportError::retry(
                        BREAKER_OPEN,
                        format!("circuit open for peer {name}"),
                    ));
                }
                let started = std::time::Instant::now();
                let result = match file {
                    Some(file) => self.client.push_file(peer, &file).await,
                    None => self.client.push(peer, bytes).await,
                };
                if matches!(result, Ok(Pushed::Receipts(_))) {
                    self.node.metrics.receipt_latency(started.elapsed());
                }
                self.record_breaker(
                    &c.route,
                    result.as_ref().map(|_| ()).map_err(|e| e.retryable),
                );
                match result? {
                    Pushed::Receipts(list) if c.kind == Kind::Document => {
                        // The first candidate that passes is the proof: a bad receipt listed
                        // first must not hide the right one.
                        let mut refused = Vec::new();
                        for r in own_receipts(list, c, peer)? {
                            match self.check_receipt(r, c, peer).await {
                                Ok(kept) => return Ok(Done::Receipt(kept)),
                                Err(e) => refused.push(e),
                            }
                        }
                        Err(match refused.len() {
                            1 => refused.remove(0),
                            n => TransportError::retry(
                                "RECEIPT_INVALID",
                                format!(
                                    "none of the {n} receipts peer {} labelled for {} passes: {}",
                                    peer.name,
                                    c.recipient,
                                    refused
                                        .iter()
                                        .map(|e| e.message.as_str())
                                        .collect::<Vec<_>>()
                                        .join("; ")
                                ),
                            ),
                        })
                    }
                    Pushed::Receipts(_) | Pushed::Accepted => Ok(Done::Receipt(Vec::new())),
                }
            }
        }
    }

    /// A receipt is only proof if it is a trusted, signed 01 about this very document (its
    /// sender and DocumentId) from this delivery's recipient — each receiving agency
    /// acknowledges for itself (Decree 30/2020 Art. 21) —, an agency that peer serves, signed
    /// by a certificate bound to that agency (the agency registry, as for every package ingest
    /// accepts) and not revoked (the anchor's revocation policy, as for received packages; an
    /// unknown status under `require` retries later). Anything else is `RECEIPT_INVALID`,
    /// retried: the peer may answer with the right one next time.
    ///
    /// `Ok` carries what is kept of it: the receipt less what its signature does not cover
    /// ([`crate::dsig::archive`]), as for every package the node keeps.
    async fn check_receipt(
        &self,
        receipt: Vec<u8>,
        c: &ClaimedDelivery,
        peer: &PeerConfig,
    ) -> Result<Vec<u8>, TransportError> {
        let bad = |why: String| TransportError::retry("RECEIPT_INVALID", why);
        let mut opts = Options::new(&self.node.trust);
        opts.limits = self.node.config.limits.clone();
        let v = verify_package(&receipt, &opts).map_err(|e| bad(format!("{}: {e}", e.code())))?;
        super::registry::bind_sender(
            &self.node.config,
            &self.node.keys,
            &self.node.trust,
            self.node.store.as_ref(),
            &v,
        )
        .await
        .map_err(|e| bad(format!("{}: {e}", e.code())))?;
        let policy = self
            .node
            .config
            .revocation
            .policy_for(v.path.anchor_subject());
        self.node
            .revocation
            .check(&v.path, policy, std::time::SystemTime::now())
            .await
            .map_err(|e| bad(format!("{}: {e}", e.code)))?;
        let Package::Status(s) = &v.package else {
            return Err(bad("the receipt is not a status package".into()));
        };
        if s.status_code != StatusCode::Arrived {
            return Err(bad(format!(
                "the receipt is status {}, not 01",
                s.status_code
            )));
        }
        if s.response_for.effective_document_id() != c.document_id
            || s.response_for.organ_id.as_str() != c.sender
        {
            return Err(bad(format!(
                "the receipt is about {} of {}, not {} of {}",
                s.response_for.effective_document_id(),
                s.response_for.organ_id,
                c.document_id,
                c.sender
            )));
        }
        if s.from.organ_id.as_str() != c.recipient {
            return Err(bad(format!(
                "the receipt comes from {}, not from this delivery's recipient {}",
                s.from.organ_id, c.recipient
            )));
        }
        // Reached when the peer's `serves` changed since the delivery was routed (the route is
        // stored at submission and kept across restarts).
        if !peer.serves(&s.from.organ_id) {
            return Err(bad(format!(
                "the receipt comes from {}, which peer {} does not serve",
                s.from.organ_id, peer.name
            )));
        }
        Ok(v.kept(receipt))
    }

    /// The signed 02 a peer answered a refused document with (Decree 30/2020 Art. 21): kept in
    /// the document's status history if it is a trusted, signed 02 about this very document
    /// (sender and DocumentId) from this delivery's recipient, an agency that peer serves.
    /// Recorded through [`Node::ingest`] like any status the peer pushes (verified again, stored
    /// with direction `In`, audited), after the delivery was marked `failed`: the store then
    /// moves it from `failed` to `rejected` ("rejected: the recipient answered 02", the reason
    /// and the code in the description), while the failed attempt keeps the refusal's code.
    /// Recording it before `mark_failed` would supersede the attempt (losing the code) and
    /// make `mark_failed` fail on the lost lease. A 02 that does not pass is logged and dropped:
    /// the delivery stays `failed` with the refusal's code, for an operator.
    ///
    /// The peer answers with one 02 per addressed agency it serves: the one kept is the first
    /// that passes for this delivery's recipient; the others belong to sibling deliveries.
    async fn record_rejection(&self, statuses: &[Vec<u8>], c: &ClaimedDelivery) {
        let peer = match Route::from_stored(&c.route) {
            Route::Peer(name) => self.node.config.peers.iter().find(|p| p.name == name),
            _ => None,
        };
        let Some(peer) = peer else {
            return;
        };
        let mut refused = Vec::new();
        let checked = statuses
            .iter()
            .find(|status| match self.check_rejection(status, c, peer) {
                Ok(()) => true,
                Err(why) => {
                    refused.push(why);
                    false
                }
            });
        let outcome = match checked.ok_or_else(|| refused.join("; ")) {
            Ok(status) => self
                .node
                .ingest(status, Some(peer))
                .await
                .map_err(|e| format!("{}: {e}", e.code())),
            Err(why) => Err(why),
        };
        match outcome {
            Ok(i) => {
                tracing::info!(document_id = %c.document_id, recipient = %c.recipient, delivery = c.lease.delivery_id, status_message = i.message_id, "recipient answered 02; recorded");
            }
            Err(why) => {
                tracing::warn!(document_id = %c.document_id, recipient = %c.recipient, delivery = c.lease.delivery_id, error = %why, "the 02 answering the refusal is not kept");
            }
        }
    }

    /// Mirrors [`check_receipt`](Self::check_receipt) for the 02 answering a refusal.
    fn check_rejection(
        &self,
        status: &[u8],
        c: &ClaimedDelivery,
        peer: &PeerConfig,
    ) -> Result<(), String> {
        if c.kind != Kind::Document {
            return Err("a 02 answers a document only".into());
        }
        let mut opts = Options::new(&self.node.trust);
        opts.limits = self.node.config.limits.clone();
        let v = verify_package(status, &opts).map_err(|e| format!("{}: {e}", e.code()))?;
        let Package::Status(s) = &v.package else {
            return Err("not a status package".into());
        };
        if s.status_code != StatusCode::Rejected {
            return Err(format!("status {}, not 02", s.status_code));
        }
        if s.response_for.effective_document_id() != c.document_id
            || s.response_for.organ_id.as_str() != c.sender
        {
            return Err(format!(
                "about {} of {}",
                s.response_for.effective_document_id(),
                s.response_for.organ_id
            ));
        }
        if s.from.organ_id.as_str() != c.recipient {
            return Err(format!(
                "from {}, not this delivery's recipient {}",
                s.from.organ_id, c.recipient
            ));
        }
        if !peer.serves(&s.from.organ_id) {
            return Err(format!(
                "from {}, which peer {} does not serve",
                s.from.organ_id, peer.name
            ));
        }
        Ok(())
    }

    fn breaker_open_until(&self, route: &str) -> i64 {
        self.breakers
            .lock()
            .map(|b| b.get(route).map_or(0, |s| s.open_until))
            .unwrap_or(0)
    }

    /// Whether the breaker of `route` lets an attempt through now ([`Breaker::admit`]).
    fn breaker_admits(&self, route: &str) -> bool {
        let mut map = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(route.to_owned())
            .or_default()
            .admit(now_ms(), &self.node.config.retry)
    }

    /// Records an attempt's outcome in the breaker of `route` ([`Breaker::record`]).
    fn record_breaker(&self, route: &str, result: Result<(), bool>) {
        let policy = &self.node.config.retry;
        let mut map = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        let b = map.entry(route.to_owned()).or_default();
        b.record(result, now_ms(), policy);
        if result == Err(true) && b.failures >= policy.breaker_failures {
            tracing::warn!(route, failures = b.failures, "circuit open");
        }
    }
}

/// How many receipts labelled for one recipient are checked, at most (see [`own_receipts`]).
const MAX_RECEIPT_CANDIDATES: usize = 4;

/// The receipts of a push answer that may be this delivery's, in the peer's order: those
/// labelled with its recipient, or the single unlabelled one of an older peer. The label only
/// finds them; [`Worker::check_receipt`] then checks each, and the first that passes is the
/// proof. None: `RECEIPT_INVALID`, retried. At most [`MAX_RECEIPT_CANDIDATES`] are taken: each
/// costs a verification and perhaps a revocation fetch, and an honest peer labels one.
fn own_receipts(
    list: Vec<crate::transport::peer::PeerReceipt>,
    c: &ClaimedDelivery,
    peer: &PeerConfig,
) -> Result<Vec<Vec<u8>>, TransportError> {
    let labels: Vec<String> = list
        .iter()
        .map(|r| r.recipient.clone().unwrap_or_else(|| "(unnamed)".into()))
        .collect();
    let single_unlabelled = list.len() == 1 && list[0].recipient.is_none();
    let candidates: Vec<Vec<u8>> = list
        .into_iter()
        .filter(|r| single_unlabelled || r.recipient.as_deref() == Some(c.recipient.as_str()))
        .map(|r| r.bytes)
        .take(MAX_RECEIPT_CANDIDATES)
        .collect();
    if candidates.is_empty() {
        return Err(TransportError::retry(
            "RECEIPT_INVALID",
            format!(
                "peer {} answered with receipts from [{}], none from this delivery's \
                 recipient {}",
                peer.name,
                labels.join(", "),
                c.recipient
            ),
        ));
    }
    Ok(candidates)
}

/// Exponential backoff with jitter: `initial × 2^(attempt−1)`, capped, then scaled by a random
/// factor in [0.5, 1) so retries of many deliveries do not arrive together.
pub fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let base = policy
        .initial_backoff
        .saturating_mul(1u32 << exp.min(20))
        .min(policy.max_backoff);
    base.mul_f64(0.5 + fastrand::f64() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            ..RetryPolicy::default()
        };
        for _ in 0..100 {
            let b1 = backoff(&p, 1);
            assert!(
                b1 >= Duration::from_secs(1) && b1 < Duration::from_secs(2),
                "{b1:?}"
            );
            let b3 = backoff(&p, 3);
            assert!(
                b3 >= Duration::from_secs(4) && b3 < Duration::from_secs(8),
                "{b3:?}"
            );
            let b20 = backoff(&p, 20);
            assert!(
                b20 >= Duration::from_secs(30) && b20 < Duration::from_secs(60),
                "{b20:?}"
            );
        }
    }

    /// Closed → open after `breaker_failures` network failures → half-open after the cooldown
    /// with exactly one probe → open again for a whole cooldown on the probe's failure, closed
    /// on its success (or a refusal, which proves the peer is up).
    #[test]
    fn the_breaker_opens_half_opens_with_one_probe_and_closes() {
        let p = RetryPolicy {
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(60),
            lease: Duration::from_secs(90),
            ..RetryPolicy::default()
        };
        let mut b = Breaker::default();
        let t0 = 1_000_000;
        // Closed: failures below the threshold keep it closed.
        for i in 0..2 {
            assert!(b.admit(t0 + i, &p));
            b.record(Err(true), t0 + i, &p);
        }
        assert!(b.admit(t0 + 2, &p));
        b.record(Err(true), t0 + 2, &p);
        // Open: nothing goes through until the cooldown has passed.
        assert!(!b.admit(t0 + 3, &p));
        assert!(!b.admit(t0 + 2 + 59_999, &p));
        // Half-open: one probe, the others wait for it.
        let half = t0 + 2 + 60_000;
        assert!(b.admit(half, &p), "the probe");
        assert!(
            !b.admit(half, &p),
            "a second attempt while the probe is out"
        );
        assert!(!b.admit(half + 1_000, &p));
        // The probe fails: open for a whole cooldown again, one failure sufficing.
        b.record(Err(true), half + 1_000, &p);
        assert!(!b.admit(half + 1_001, &p));
        assert!(!b.admit(half + 60_999, &p));
        let half2 = half + 61_000;
        assert!(b.admit(half2, &p), "the next probe");
        // The probe succeeds: closed, and failures count from zero.
        b.record(Ok(()), half2 + 10, &p);
        for i in 0..5 {
            assert!(b.admit(half2 + 20 + i, &p));
        }
        b.record(Err(true), half2 + 30, &p);
        assert!(
            b.admit(half2 + 31, &p),
            "one failure after closing does not open it"
        );

        // A refusal closes it too (the peer answered).
        let mut b = Breaker::default();
        for i in 0..3 {
            b.record(Err(true), t0 + i, &p);
        }
        assert!(!b.admit(t0 + 10, &p));
        assert!(b.admit(t0 + 70_000, &p));
        b.record(Err(false), t0 + 70_001, &p);
        assert!(b.admit(t0 + 70_002, &p) && b.admit(t0 + 70_003, &p));

        // A probe that never reports (its task ended) is replaced once the lease has passed.
        let mut b = Breaker::default();
        for i in 0..3 {
            b.record(Err(true), t0 + i, &p);
        }
        let half = t0 + 2 + 60_000;
        assert!(b.admit(half, &p));
        assert!(!b.admit(half + 89_999, &p));
        assert!(b.admit(half + 90_000, &p));
    }
}
