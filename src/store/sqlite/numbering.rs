//! The yearly số sequence of each agency (EDXML.md §4: numbers restart at 1 each 1 January and are
//! unique per issuing organisation per year). A number is taken only by the transaction that
//! stores its document: the next of the sequence by [`take_next`] (n−1 → n, or nothing), a number
//! a clerk typed by moving the sequence past it when the document's row is inserted
//! (`messages::insert_message`, the same round trip). Nothing else writes the sequence, so a
//! refused or crashed submission leaves no gap.

use sqlx::SqliteConnection;

use super::{SqliteStore, db_err, invalid, require};
use crate::error::{Code, Error, Result};

/// Years a số can belong to (anything else is a caller's mistake, not a year).
const YEARS: std::ops::RangeInclusive<i32> = 1900..=9999;

pub(super) async fn last_number(store: &SqliteStore, agency: &str, year: i32) -> Result<u32> {
    require("agency", agency)?;
    check_year(year)?;
    let mut conn = store.read.acquire().await.map_err(db_err)?;
    let last: Option<i64> = sqlx::query_scalar(
        "SELECT last_number FROM number_sequences WHERE agency = ? AND year = ?",
    )
    .bind(agency)
    .bind(year)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    u32::try_from(last.unwrap_or(0))
        .map_err(|_| invalid(format!("{agency} {year}: the sequence is exhausted")))
}

/// Takes `number` as the next of `agency`'s sequence for `year`, inside the caller's
/// transaction (the one that stores its document): only if the sequence's last is exactly one
/// below, so nothing is ever skipped. A sequence that moved meanwhile (an earlier submission
/// that was queued with the number before failed, or a typed number) is `STORE_UNAVAILABLE`:
/// nothing was written and submitting again gets the right number.
pub(super) async fn take_next(
    conn: &mut SqliteConnection,
    agency: &str,
    year: i32,
    number: u32,
) -> Result<()> {
    let taken: Option<i64> = sqlx::query_scalar(
        "INSERT INTO number_sequences (agency, year, last_number) VALUES (?1, ?2, 0)
             ON CONFLICT (agency, year) DO NOTHING;
         UPDATE number_sequences SET last_number = ?3
             WHERE agency = ?1 AND year = ?2 AND last_number = ?3 - 1
             RETURNING last_number",
    )
    .bind(agency)
    .bind(year)
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
