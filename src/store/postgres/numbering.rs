//! The yearly số sequence of each agency (see the SQLite store's `numbering.rs`, whose rules
//! these are). A number is taken only by the transaction that stores its document: the next of
//! the sequence by [`take_next`] (n−1 → n, or nothing), a number a clerk typed by moving the
//! sequence past it when the document's row is inserted (`messages::insert_message`, the same
//! statement). Nothing else writes the sequence, so a refused or crashed submission leaves no gap.
//!
//! With several replicas each node hands out numbers from its own book (`node::numbering`), so
//! two replicas can choose the same next number. Their writes are serialised by the chain
//! head's lock (`group.rs`), so the second one's [`take_next`] sees the first one's committed
//! sequence and refuses with the same words as SQLite's: nothing is written, and the node
//! renumbers, signs again and retries (`node::numbering::sequence_moved`).

use sqlx::PgConnection;

use super::{PgStore, db_err, invalid, require};
use crate::error::{Code, Error, Result};

/// Years a số can belong to (anything else is a caller's mistake, not a year).
const YEARS: std::ops::RangeInclusive<i32> = 1900..=9999;

pub(super) async fn last_number(store: &PgStore, agency: &str, year: i32) -> Result<u32> {
    require("agency", agency)?;
    check_year(year)?;
    let last: Option<i64> = sqlx::query_scalar(
        "SELECT last_number FROM number_sequences WHERE agency = $1 AND year = $2",
    )
    .bind(agency)
    .bind(i64::from(year))
    .fetch_optional(store.pool())
    .await
    .map_err(db_err)?;
    u32::try_from(last.unwrap_or(0))
        .map_err(|_| invalid(format!("{agency} {year}: the sequence is exhausted")))
}

/// Takes `number` as the next of `agency`'s sequence for `year`, inside the caller's
/// transaction (the one that stores its document): only if the sequence's last is exactly one
/// below, so nothing is ever skipped. A sequence that moved meanwhile (another replica took the
/// number, an earlier submission that was queued with the number before failed, or a typed
/// number) is `STORE_UNAVAILABLE` with SQLite's words ("is no longer the next of the
/// sequence", which `node::numbering::sequence_moved` looks for): nothing was written and
/// submitting again gets the right number.
///
/// One statement: the row moves from n−1 to n, or a year without a row gets one at 1 (the
/// only number a year may start with).
pub(super) async fn take_next(
    conn: &mut PgConnection,
    agency: &str,
    year: i32,
    number: u32,
) -> Result<()> {
    let taken: Option<i64> = sqlx::query_scalar(
        "WITH moved AS (
             UPDATE number_sequences SET last_number = $3
             WHERE agency = $1 AND year = $2 AND last_number = $3 - 1
             RETURNING last_number),
         started AS (
             INSERT INTO number_sequences (agency, year, last_number)
             SELECT $1, $2, $3 WHERE $3 = 1
             ON CONFLICT (agency, year) DO NOTHING
             RETURNING last_number)
         SELECT last_number FROM moved UNION ALL SELECT last_number FROM started",
    )
    .bind(agency)
    .bind(i64::from(year))
    .bind(i64::from(number))
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    if taken.is_none() {
        return Err(Error::store(
            Code::StoreUnavailable,
            format!(
                "{agency} {year}: số {number} is no longer the next of the sequence (it moved \
                 while the document was signed); nothing was stored, submit again"
            ),
        ));
    }
    Ok(())
}

pub(super) fn check_year(year: i32) -> Result<()> {
    if !YEARS.contains(&year) {
        return Err(invalid(format!("year: {year} is outside 1900-9999")));
    }
    Ok(())
}
