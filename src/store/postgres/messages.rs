//! Documents sent and received, the inbox, idempotency keys (see the SQLite store's `messages.rs`).
//!
//! PORT IN PROGRESS: every function below is replaced by the PostgreSQL port of its SQLite
//! counterpart before this module is merged.
#![allow(unused_variables, unused_imports, dead_code)]
use super::PgStore;
use crate::error::{Error, Result};
use crate::store::*;
use std::collections::BTreeMap;

pub(super) async fn find_submission(
    conn: &mut sqlx::PgConnection,
    agency: &str,
    idempotency_key: &str,
    request: Option<&RequestFingerprint>,
) -> Result<Option<Submitted>> {
    Err(Error::internal(
        "postgres store",
        "messages::find_submission: not yet ported",
    ))
}

pub(super) async fn queue_outgoing(
    store: &PgStore,
    new: NewOutgoing,
    now: i64,
    turn: Turn,
) -> Result<Pending<Submitted>> {
    Err(Error::internal(
        "postgres store",
        "messages::queue_outgoing: not yet ported",
    ))
}

pub(super) async fn ingest_incoming(
    store: &PgStore,
    new: NewIncoming,
    now: i64,
) -> Result<IngestOutcome> {
    Err(Error::internal(
        "postgres store",
        "messages::ingest_incoming: not yet ported",
    ))
}

pub(super) async fn list_inbox(
    store: &PgStore,
    agency: &str,
    filter: &InboxFilter,
) -> Result<Vec<InboxItem>> {
    Err(Error::internal(
        "postgres store",
        "messages::list_inbox: not yet ported",
    ))
}

pub(super) async fn inbox_item(
    store: &PgStore,
    agency: &str,
    message_id: i64,
) -> Result<InboxItem> {
    Err(Error::internal(
        "postgres store",
        "messages::inbox_item: not yet ported",
    ))
}

pub(super) async fn list_outgoing(
    store: &PgStore,
    agency: &str,
    filter: &OutgoingFilter,
) -> Result<Vec<OutgoingItem>> {
    Err(Error::internal(
        "postgres store",
        "messages::list_outgoing: not yet ported",
    ))
}

pub(super) async fn outgoing_item(
    store: &PgStore,
    agency: &str,
    message_id: i64,
) -> Result<OutgoingItem> {
    Err(Error::internal(
        "postgres store",
        "messages::outgoing_item: not yet ported",
    ))
}

pub(super) async fn package_bytes(
    store: &PgStore,
    agency: &str,
    message_id: i64,
) -> Result<Vec<u8>> {
    Err(Error::internal(
        "postgres store",
        "messages::package_bytes: not yet ported",
    ))
}

pub(super) async fn message(store: &PgStore, id: i64) -> Result<MessageInfo> {
    Err(Error::internal(
        "postgres store",
        "messages::message: not yet ported",
    ))
}

pub(super) async fn find_documents(
    store: &PgStore,
    direction: Direction,
    sender: &str,
    document_id: &str,
) -> Result<Vec<MessageInfo>> {
    Err(Error::internal(
        "postgres store",
        "messages::find_documents: not yet ported",
    ))
}
