//! The yearly số sequence of each agency (EDXML.md §4: numbers restart at 1 each 1 January and are
//! unique per issuing organisation per year). A number a clerk typed moves the sequence past it
//! when the document's row is inserted (`messages::insert_message`, the same round trip).

use serde_json::json;

use super::{SqliteStore, audit, db_err, invalid, require};
use crate::audit::AuditEntry;
use crate::error::Result;

/// Years a số can belong to (anything else is a caller's mistake, not a year).
const YEARS: std::ops::RangeInclusive<i32> = 1900..=9999;

pub(super) async fn next_number(
    store: &SqliteStore,
    agency: &str,
    year: i32,
    actor: &str,
    now: i64,
) -> Result<u32> {
    require("agency", agency)?;
    require("actor", actor)?;
    check_year(year)?;
    let agency = agency.to_owned();
    let actor = actor.to_owned();
    store
        .grouped(move |tx| {
            Box::pin(async move {
                let agency = agency.as_str();
                let actor = actor.as_str();

                let number: i64 = sqlx::query_scalar(
                    "INSERT INTO number_sequences (agency, year, last_number) VALUES (?, ?, 1)
         ON CONFLICT (agency, year) DO UPDATE SET last_number = last_number + 1
         RETURNING last_number",
                )
                .bind(agency)
                .bind(year)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
                let number = u32::try_from(number)
                    .map_err(|_| invalid(format!("{agency} {year}: the sequence is exhausted")))?;
                audit::append(
                    &mut *tx,
                    AuditEntry::new(
                        actor,
                        "number.allocate",
                        "number_sequence",
                        format!("{agency}/{year}"),
                        &json!({ "agency": agency, "year": year, "number": number }),
                    ),
                    now,
                )
                .await?;
                Ok(number)
            })
        })
        .await
}

pub(super) fn check_year(year: i32) -> Result<()> {
    if !YEARS.contains(&year) {
        return Err(invalid(format!("year: {year} is outside 1900-9999")));
    }
    Ok(())
}
