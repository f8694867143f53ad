//! The mail bridge's tables (see the SQLite store's `mail.rs`).
//!
//! PORT IN PROGRESS: every function below is replaced by the PostgreSQL port of its SQLite
//! counterpart before this module is merged.
#![allow(unused_variables, unused_imports, dead_code)]
use super::PgStore;
use crate::error::{Error, Result};
use crate::store::*;
use std::collections::BTreeMap;

pub(super) async fn mark_relayed(
    store: &PgStore,
    lease: Lease,
    reply: String,
    now: i64,
) -> Result<()> {
    Err(Error::internal(
        "postgres store",
        "mail::mark_relayed: not yet ported",
    ))
}

pub(super) async fn checkpoint(store: &PgStore, mailbox: &str) -> Result<Option<MailCheckpoint>> {
    Err(Error::internal(
        "postgres store",
        "mail::checkpoint: not yet ported",
    ))
}

pub(super) async fn take(
    store: &PgStore,
    taken: TakenMail,
    reply_interval_ms: i64,
    now: i64,
) -> Result<TakeOutcome> {
    Err(Error::internal(
        "postgres store",
        "mail::take: not yet ported",
    ))
}

pub(super) async fn list_log(store: &PgStore, filter: &MailLogFilter) -> Result<Vec<MailLogItem>> {
    Err(Error::internal(
        "postgres store",
        "mail::list_log: not yet ported",
    ))
}

pub(super) async fn log_item(store: &PgStore, id: i64) -> Result<MailLogItem> {
    Err(Error::internal(
        "postgres store",
        "mail::log_item: not yet ported",
    ))
}

pub(super) async fn taken(
    store: &PgStore,
    mailbox: &str,
    uidvalidity: u32,
    uid: u32,
    message_id: Option<&str>,
) -> Result<Option<MailLogItem>> {
    Err(Error::internal(
        "postgres store",
        "mail::taken: not yet ported",
    ))
}

pub(super) async fn record_sent(store: &PgStore, sent: SentMail, now: i64) -> Result<i64> {
    Err(Error::internal(
        "postgres store",
        "mail::record_sent: not yet ported",
    ))
}

pub(super) async fn list_drafts(
    store: &PgStore,
    agency: &str,
    filter: &DraftFilter,
) -> Result<Vec<DraftItem>> {
    Err(Error::internal(
        "postgres store",
        "mail::list_drafts: not yet ported",
    ))
}

pub(super) async fn draft(store: &PgStore, agency: &str, id: i64) -> Result<DraftItem> {
    Err(Error::internal(
        "postgres store",
        "mail::draft: not yet ported",
    ))
}

pub(super) async fn draft_file(
    store: &PgStore,
    agency: &str,
    id: i64,
    index: u32,
) -> Result<DraftFile> {
    Err(Error::internal(
        "postgres store",
        "mail::draft_file: not yet ported",
    ))
}

pub(super) async fn discard_draft(
    store: &PgStore,
    agency: &str,
    id: i64,
    reason: &str,
    actor: &str,
    now: i64,
) -> Result<()> {
    Err(Error::internal(
        "postgres store",
        "mail::discard_draft: not yet ported",
    ))
}
