//! What both backends share that is not SQL: refusing input, the errors that say so, the
//! audit detail of a package a channel vouched for, hashing. One definition, so the SQLite and
//! PostgreSQL stores refuse the same input with the same words.

use crate::error::{Code, Error, Result};
use crate::store::Page;

/// `STORE_CORRUPT` unless the package BLOB of message `id` hashes to `sha256`, the SHA-256 its
/// row (and audit record) holds.
pub(crate) fn check_blob(id: i64, bytes: &[u8], sha256: &str) -> Result<()> {
    let actual = sha256_hex(bytes);
    if actual == sha256 {
        return Ok(());
    }
    Err(Error::store(
        Code::StoreCorrupt,
        format!(
            "message {id}: the package in the database has SHA-256 {actual}, but its row \
             records {sha256}: it was changed or damaged in the database"
        ),
    ))
}

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::store(Code::ValueInvalid, message)
}

pub(crate) fn not_found(message: impl Into<String>) -> Error {
    Error::store(Code::NotFound, message)
}

/// Refuses an empty (or blank) required text field.
pub(crate) fn require(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(invalid(format!("{field}: missing")));
    }
    Ok(())
}

pub(crate) fn check_page(page: &Page) -> Result<()> {
    if page.limit == 0 || page.limit > 1000 {
        return Err(invalid(format!(
            "page.limit: {} is outside 1-1000",
            page.limit
        )));
    }
    Ok(())
}

/// An audit record's `detail` with, for a package a channel authenticated instead of a
/// signature, `"signature": {"state": "channel", "channel": <peer>, "xml_signature":
/// "absent"|"placeholder"}`: the record says the package is not signed. Records of signed
/// packages are unchanged.
pub(crate) fn with_channel(
    mut detail: serde_json::Value,
    channel: Option<&crate::store::ChannelTrust>,
) -> serde_json::Value {
    if let (Some(c), Some(map)) = (channel, detail.as_object_mut()) {
        map.insert(
            "signature".to_owned(),
            serde_json::json!({
                "state": "channel",
                "channel": c.channel,
                "xml_signature": c.xml_signature.as_str(),
            }),
        );
    }
    detail
}

/// `sha256` of `bytes`, lowercase hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    crate::audit::hash::sha256_hex(bytes)
}

/// Deliveries read by message id, kept only where the message is one `agency` sent: what
/// [`crate::store::Store::outgoing_deliveries`] answers on both backends.
pub(crate) fn documents_of(
    agency: &str,
    by_message: std::collections::HashMap<i64, Vec<crate::store::DeliveryInfo>>,
) -> std::collections::BTreeMap<i64, Vec<crate::store::DeliveryInfo>> {
    by_message
        .into_iter()
        .filter_map(|(id, ds)| {
            let ds: Vec<_> = ds.into_iter().filter(|d| d.sender == agency).collect();
            (!ds.is_empty()).then_some((id, ds))
        })
        .collect()
}
