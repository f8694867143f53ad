//! The agency registry on PostgreSQL (see the SQLite store's `registry.rs`): entries and their
//! rules, each change one write of the group writer with its audit records.
//!
//! A change is one write (`PgStore::write`): its savepoint holds the rows and the records, so an
//! import is all or nothing, and the lock on the chain's head orders it with every other
//! replica's writes. Reads take no lock.

use serde_json::json;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

use super::{PgStore, audit, col, db_err, invalid, not_found, require};
use crate::audit::AuditEntry;
use crate::error::Result;
use crate::pki::binding::{Attribute, Rule};
use crate::store::{
    ImportOutcome, MAX_IMPORT, MAX_REGISTRY_SEARCH, NewRegistryEntry, RegistryBinding,
    RegistryEntry, RegistryName, search_patterns, search_text,
};

/// The audit detail of an entry: what an auditor needs to see which certificates were allowed.
/// The same JSON as SQLite's, so `audit verify` and `store copy` read either backend's records.
fn detail(e: &NewRegistryEntry) -> serde_json::Value {
    json!({ "code": e.code, "name": e.name, "rules": e.rules })
}

pub(super) async fn list(store: &PgStore) -> Result<Vec<RegistryEntry>> {
    // One snapshot for the codes and their rules: an entry changed meanwhile is read whole.
    let mut tx = store.pool().begin().await.map_err(db_err)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    let codes: Vec<String> = sqlx::query_scalar("SELECT code FROM agency_registry ORDER BY code")
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
    let mut out = Vec::with_capacity(codes.len());
    for code in codes {
        if let Some(e) = entry_on(&mut tx, &code).await? {
            out.push(e);
        }
    }
    Ok(out)
}

pub(super) async fn entry(store: &PgStore, code: &str) -> Result<Option<RegistryEntry>> {
    let mut tx = store.pool().begin().await.map_err(db_err)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    entry_on(&mut tx, code).await
}

/// The entry `code` with its rules in order, read on `conn` (inside the caller's transaction
/// when there is one: the crosscheck's snapshot, or a write).
pub(super) async fn entry_on(conn: &mut PgConnection, code: &str) -> Result<Option<RegistryEntry>> {
    let Some(row) = sqlx::query(
        "SELECT code, name, added_by, added_at, updated_by, updated_at
         FROM agency_registry WHERE code = $1",
    )
    .bind(code)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?
    else {
        return Ok(None);
    };
    let rows = sqlx::query(
        "SELECT kind, sha256, issuer_sha256, issuer, attribute, value, note
         FROM agency_registry_rules WHERE code = $1 ORDER BY position",
    )
    .bind(code)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let rules = rows.iter().map(rule_from_row).collect::<Result<Vec<_>>>()?;
    Ok(Some(RegistryEntry {
        code: col(&row, "code")?,
        name: col(&row, "name")?,
        rules,
        added_by: col(&row, "added_by")?,
        added_at: col(&row, "added_at")?,
        updated_by: col(&row, "updated_by")?,
        updated_at: col(&row, "updated_at")?,
    }))
}

fn rule_from_row(r: &PgRow) -> Result<Rule> {
    let kind: String = col(r, "kind")?;
    let note: Option<String> = col(r, "note")?;
    Ok(match kind.as_str() {
        "fingerprint" => Rule::Fingerprint {
            sha256: col::<Option<String>>(r, "sha256")?.unwrap_or_default(),
            note,
        },
        "subject" => {
            let attribute: String = col::<Option<String>>(r, "attribute")?.unwrap_or_default();
            Rule::Subject {
                issuer_sha256: col(r, "issuer_sha256")?,
                issuer: col(r, "issuer")?,
                attribute: Attribute::parse(&attribute).ok_or_else(|| {
                    crate::store::types::corrupt("agency_registry_rules.attribute", &attribute)
                })?,
                value: col::<Option<String>>(r, "value")?.unwrap_or_default(),
                note,
            }
        }
        other => {
            return Err(crate::store::types::corrupt(
                "agency_registry_rules.kind",
                other,
            ));
        }
    })
}

/// What binding a signer to `code` needs, in one statement (it runs for every package received):
/// the rules of `code`, in order, and the other codes whose rules name the certificate `sha256`.
pub(super) async fn binding(store: &PgStore, code: &str, sha256: &str) -> Result<RegistryBinding> {
    let rows = sqlx::query(
        "SELECT code, kind, sha256, issuer_sha256, issuer, attribute, value, note
         FROM agency_registry_rules WHERE code = $1 OR sha256 = $2 ORDER BY code, position",
    )
    .bind(code)
    .bind(sha256)
    .fetch_all(store.pool())
    .await
    .map_err(db_err)?;
    let mut out = RegistryBinding::default();
    for r in &rows {
        let row_code: String = col(r, "code")?;
        if row_code == code {
            out.rules.push(rule_from_row(r)?);
        } else if col::<Option<String>>(r, "sha256")?.as_deref() == Some(sha256)
            && out.fingerprint_registered_for.last() != Some(&row_code)
        {
            out.fingerprint_registered_for.push(row_code);
        }
    }
    Ok(out)
}

/// Writes one (normalised) entry inside `conn`'s transaction, replacing its rules; whether it is
/// new.
async fn put(conn: &mut PgConnection, e: &NewRegistryEntry, actor: &str, now: i64) -> Result<bool> {
    let existed: Option<String> =
        sqlx::query_scalar("SELECT code FROM agency_registry WHERE code = $1")
            .bind(&e.code)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
    sqlx::query(
        "INSERT INTO agency_registry
             (code, name, search_folded, added_by, added_at, updated_by, updated_at)
         VALUES ($1, $2, $5, $3, $4, $3, $4)
         ON CONFLICT (code) DO UPDATE
             SET name = $2, search_folded = $5, updated_by = $3, updated_at = $4",
    )
    .bind(&e.code)
    .bind(&e.name)
    .bind(actor)
    .bind(now)
    .bind(search_text(&e.code, &e.name))
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    sqlx::query("DELETE FROM agency_registry_rules WHERE code = $1")
        .bind(&e.code)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    for (i, rule) in e.rules.iter().enumerate() {
        let q = sqlx::query(
            "INSERT INTO agency_registry_rules
                 (code, position, kind, sha256, issuer_sha256, issuer, attribute, value, note)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&e.code)
        .bind(i64::try_from(i).unwrap_or(i64::MAX));
        let q = match rule {
            Rule::Fingerprint { sha256, note } => q
                .bind("fingerprint")
                .bind(sha256)
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(note),
            Rule::Subject {
                issuer_sha256,
                issuer,
                attribute,
                value,
                note,
            } => q
                .bind("subject")
                .bind(None::<String>)
                .bind(issuer_sha256)
                .bind(issuer)
                .bind(attribute.as_str())
                .bind(value)
                .bind(note),
        };
        q.execute(&mut *conn).await.map_err(db_err)?;
    }
    Ok(existed.is_none())
}

pub(super) async fn set(
    store: &PgStore,
    entry: NewRegistryEntry,
    actor: &str,
    now: i64,
) -> Result<(RegistryEntry, bool)> {
    require("actor", actor)?;
    let entry = entry.normalised("registry")?;
    let actor = actor.to_owned();
    store
        .write(move |conn| {
            Box::pin(async move {
                let created = put(&mut *conn, &entry, &actor, now).await?;
                audit::append(
                    AuditEntry::new(
                        &actor,
                        "registry.set",
                        "agency_registry",
                        &entry.code,
                        &detail(&entry),
                    ),
                    now,
                )?;
                let stored = entry_on(&mut *conn, &entry.code).await?.ok_or_else(|| {
                    not_found(format!("{}: not in the registry after writing", entry.code))
                })?;
                Ok((stored, created))
            })
        })
        .await
}

pub(super) async fn remove(store: &PgStore, code: &str, actor: &str, now: i64) -> Result<()> {
    require("actor", actor)?;
    let (code, actor) = (code.to_owned(), actor.to_owned());
    store
        .write(move |conn| {
            Box::pin(async move {
                let Some(old) = entry_on(&mut *conn, &code).await? else {
                    return Err(not_found(format!(
                        "{code} has no entry in the agency registry"
                    )));
                };
                sqlx::query("DELETE FROM agency_registry WHERE code = $1")
                    .bind(&code)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
                audit::append(
                    AuditEntry::new(
                        &actor,
                        "registry.remove",
                        "agency_registry",
                        &code,
                        &json!({ "code": code, "name": old.name, "rules": old.rules }),
                    ),
                    now,
                )?;
                Ok(())
            })
        })
        .await
}

pub(super) async fn import(
    store: &PgStore,
    entries: Vec<NewRegistryEntry>,
    replace_all: bool,
    actor: &str,
    now: i64,
) -> Result<ImportOutcome> {
    require("actor", actor)?;
    if entries.len() > MAX_IMPORT {
        return Err(invalid(format!(
            "agency: {} entries, over the limit of {MAX_IMPORT}",
            entries.len()
        )));
    }
    let mut checked: Vec<NewRegistryEntry> = Vec::with_capacity(entries.len());
    for (i, e) in entries.into_iter().enumerate() {
        let e = e.normalised(&format!("agency[{i}]"))?;
        if let Some(j) = checked.iter().position(|c| c.code == e.code) {
            return Err(invalid(format!(
                "agency[{i}].code: {} is already listed at agency[{j}]",
                e.code
            )));
        }
        checked.push(e);
    }
    let actor = actor.to_owned();
    // One write: its savepoint rolls the whole import back on any error (all or nothing).
    store
        .write(move |conn| {
            Box::pin(async move { import_in(conn, &checked, replace_all, &actor, now).await })
        })
        .await
}

async fn import_in(
    conn: &mut PgConnection,
    checked: &[NewRegistryEntry],
    replace_all: bool,
    actor: &str,
    now: i64,
) -> Result<ImportOutcome> {
    let mut outcome = ImportOutcome::default();
    if replace_all {
        let existing: Vec<String> =
            sqlx::query_scalar("SELECT code FROM agency_registry ORDER BY code")
                .fetch_all(&mut *conn)
                .await
                .map_err(db_err)?;
        for code in existing
            .iter()
            .filter(|c| !checked.iter().any(|e| &e.code == *c))
        {
            sqlx::query("DELETE FROM agency_registry WHERE code = $1")
                .bind(code)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            audit::append(
                AuditEntry::new(
                    actor,
                    "registry.remove",
                    "agency_registry",
                    code,
                    &json!({ "code": code, "by": "import" }),
                ),
                now,
            )?;
            outcome.removed += 1;
        }
    }
    for e in checked {
        if put(&mut *conn, e, actor, now).await? {
            outcome.added += 1;
        } else {
            outcome.replaced += 1;
        }
        audit::append(
            AuditEntry::new(
                actor,
                "registry.set",
                "agency_registry",
                &e.code,
                &detail(e),
            ),
            now,
        )?;
    }
    audit::append(
        AuditEntry::new(
            actor,
            "registry.import",
            "agency_registry",
            "*",
            &json!({
                "codes": checked.iter().map(|e| &e.code).collect::<Vec<_>>(),
                "replace_all": replace_all,
                "added": outcome.added,
                "replaced": outcome.replaced,
                "removed": outcome.removed,
            }),
        ),
        now,
    )?;
    Ok(outcome)
}

/// The entries whose code or name, folded ([`search_text`] in `search_folded`), contains
/// `query` folded, at most `limit` (capped at [`MAX_REGISTRY_SEARCH`]): the code typed in full
/// first, then codes and names that begin with it, then the rest, each by code. One `LIKE` per
/// row over one column, no rules read.
pub(super) async fn search(store: &PgStore, query: &str, limit: u32) -> Result<Vec<RegistryName>> {
    let Some(p) = search_patterns(query) else {
        return Ok(Vec::new());
    };
    let limit = i64::from(limit.min(MAX_REGISTRY_SEARCH));
    let mut conn = store.pool().acquire().await.map_err(db_err)?;
    let rows = sqlx::query(
        r"SELECT code, name FROM agency_registry
          WHERE search_folded LIKE $1 ESCAPE '\'
          ORDER BY search_folded LIKE $2 ESCAPE '\' DESC,
                   (search_folded LIKE $3 ESCAPE '\' OR search_folded LIKE $4 ESCAPE '\') DESC,
                   code
          LIMIT $5",
    )
    .bind(&p.within)
    .bind(&p.code_is)
    .bind(&p.code_starts)
    .bind(&p.name_starts)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            Ok(RegistryName {
                code: col(r, "code")?,
                name: col(r, "name")?,
            })
        })
        .collect()
}

/// Rows filled per transaction by [`fill_folded`].
const FILL_BATCH: i64 = 1_000;

/// Fills `search_folded` of the entries that have none (written before the column existed, or by
/// an older version): run when the store opens, after the migrations. An entry renamed while
/// this runs keeps NULL until the next opening (the update matches the name it read). Returns
/// how many were filled.
pub(super) async fn fill_folded(store: &PgStore) -> Result<u64> {
    let mut filled = 0u64;
    // Keyset by code: each batch walks the primary key from where the last one stopped, so
    // 100,000 entries are read once, not once per batch.
    let mut after = String::new();
    loop {
        let mut tx = store.pool().begin().await.map_err(db_err)?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT code, name FROM agency_registry
             WHERE code > $1 AND search_folded IS NULL ORDER BY code LIMIT $2",
        )
        .bind(&after)
        .bind(FILL_BATCH)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        if rows.is_empty() {
            return Ok(filled);
        }
        // One statement per batch: a province's 100,000 entries are 100 round trips.
        let (codes, names): (Vec<&str>, Vec<&str>) =
            rows.iter().map(|(c, n)| (c.as_str(), n.as_str())).unzip();
        let folded: Vec<String> = rows.iter().map(|(c, n)| search_text(c, n)).collect();
        filled += sqlx::query(
            "UPDATE agency_registry AS a SET search_folded = v.folded
             FROM UNNEST($1::text[], $2::text[], $3::text[]) AS v (code, name, folded)
             WHERE a.code = v.code AND a.name = v.name",
        )
        .bind(&codes)
        .bind(&names)
        .bind(&folded)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        tx.commit().await.map_err(db_err)?;
        if let Some((code, _)) = rows.last() {
            after.clone_from(code);
        }
    }
}
