//! SKELETON (issue 16): the mail bridge's tables. The store helper replaces every body.

use super::SqliteStore;
use crate::error::{Code, Error, Result};
use crate::store::{
    DraftFile, DraftFilter, DraftItem, Lease, MailCheckpoint, MailLogFilter, MailLogItem, SentMail,
    TakeOutcome, TakenMail,
};

fn not_yet() -> Error {
    Error::store(Code::StoreUnavailable, "the mail tables are not built yet")
}

pub(super) async fn mark_relayed(_: &SqliteStore, _: Lease, _: String, _: i64) -> Result<()> {
    Err(not_yet())
}
pub(super) async fn checkpoint(_: &SqliteStore, _: &str) -> Result<Option<MailCheckpoint>> {
    Err(not_yet())
}
pub(super) async fn take(_: &SqliteStore, _: TakenMail, _: i64, _: i64) -> Result<TakeOutcome> {
    Err(not_yet())
}
pub(super) async fn list_log(_: &SqliteStore, _: &MailLogFilter) -> Result<Vec<MailLogItem>> {
    Err(not_yet())
}
pub(super) async fn log_item(_: &SqliteStore, _: i64) -> Result<MailLogItem> {
    Err(not_yet())
}
pub(super) async fn record_sent(_: &SqliteStore, _: SentMail, _: i64) -> Result<i64> {
    Err(not_yet())
}
pub(super) async fn list_drafts(
    _: &SqliteStore,
    _: &str,
    _: &DraftFilter,
) -> Result<Vec<DraftItem>> {
    Err(not_yet())
}
pub(super) async fn draft(_: &SqliteStore, _: &str, _: i64) -> Result<DraftItem> {
    Err(not_yet())
}
pub(super) async fn draft_file(_: &SqliteStore, _: &str, _: i64, _: u32) -> Result<DraftFile> {
    Err(not_yet())
}
pub(super) async fn discard_draft(
    _: &SqliteStore,
    _: &str,
    _: i64,
    _: &str,
    _: &str,
    _: i64,
) -> Result<()> {
    Err(not_yet())
}
