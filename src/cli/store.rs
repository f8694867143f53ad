//! `lienthong migrate --store URL` and `lienthong store copy --from URL --to URL`: the store's
//! schema and the move between backends, on either backend by the URL alone.
//!
//! `migrate` applies the pending migrations (the node applies them at start too; this is for
//! doing it beforehand, or before a copy) and prints one line per migration applied, then
//! `store at migration NNNN (M applied)` — or `store up to date at migration NNNN`.
//!
//! `store copy` moves a node's whole history into an EMPTY store (`lienthong::store::copy`):
//! every table, ids kept, SQLite package files as chunks on PostgreSQL and back, then verifies
//! the target. Stop the node (every replica) first; a SQLite source's lock is taken. It prints
//! the rows copied per table, then `audit chain OK: N records, head H` and `head matches the
//! source` — exit 0; a target that does not verify, or verifies at another head, exits 1 with
//! the reason; a store that cannot be opened or written exits 3. Passwords in URLs are never
//! printed (`postgres://user:***@host/db`); `PGPASSWORD` works as for `psql`.

use lienthong::store::copy::{self, CopyReport};
use lienthong::store::migrate;
use lienthong::store::{Backend, StoreOptions};
use lienthong::{Code, Error};

use super::{CmdResult, Failure};

#[derive(clap::Args)]
pub struct MigrateArgs {
    /// The store, e.g. `sqlite:///var/lib/lienthong/node.db` or
    /// `postgres://lienthong@db.example/lienthong` (a SQLite file is created if missing).
    #[arg(long, env = "LIENTHONG_STORE")]
    store: String,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Move a node's whole history into an empty store (SQLite to PostgreSQL or back), then
    /// verify the audit chain and every row there.
    Copy(CopyArgs),
}

#[derive(clap::Args)]
pub struct CopyArgs {
    /// The store to copy (read only; it must have every migration: `lienthong migrate`).
    #[arg(long)]
    from: String,
    /// The empty store to fill (created and migrated if need be; refused if it has any row).
    #[arg(long)]
    to: String,
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::Local(Error::io("tokio runtime", e)))
}

/// Store failures (cannot open, I/O) are local problems (exit 3); anything else a refusal.
fn local(e: Error) -> Failure {
    match e.code() {
        Code::StoreUnavailable | Code::Io => Failure::Local(e),
        _ => Failure::Refused(e),
    }
}

pub fn migrate(a: MigrateArgs) -> CmdResult {
    runtime()?.block_on(async {
        let done = migrate::migrate(&a.store, &StoreOptions::default())
            .await
            .map_err(local)?;
        for m in &done.applied {
            outln!("applied {:04} {}", m.version, m.description);
        }
        let last = done
            .before
            .iter()
            .chain(done.applied.iter())
            .map(|m| m.version)
            .max()
            .unwrap_or(0);
        let shown = Backend::shown(&a.store);
        if done.applied.is_empty() {
            outln!("{shown}: up to date at migration {last:04}");
        } else {
            outln!(
                "{shown}: at migration {last:04} ({} applied)",
                done.applied.len()
            );
        }
        Ok(())
    })
}

pub fn run(c: Command) -> CmdResult {
    match c {
        Command::Copy(a) => runtime()?.block_on(copy_store(a)),
    }
}

async fn copy_store(a: CopyArgs) -> CmdResult {
    let report = copy::copy(&a.from, &a.to).await.map_err(local)?;
    print_copy(&a, &report)
}

fn print_copy(a: &CopyArgs, report: &CopyReport) -> CmdResult {
    outln!(
        "copied {} to {}:",
        Backend::shown(&a.from),
        Backend::shown(&a.to)
    );
    for (table, n) in &report.rows {
        outln!("  {table:<22} {n:>10}");
    }
    if report.large_packages > 0 {
        outln!(
            "  ({} large packages, {} bytes, streamed)",
            report.large_packages,
            report.large_bytes
        );
    }
    let source_head = hex::encode(report.source_head.hash);
    let verdict = match &report.verdict {
        Ok(v) => v,
        Err(e) => {
            return Err(local(Error::store(
                e.code(),
                format!("copied, but verifying the target failed: {e}"),
            )));
        }
    };
    let chain = match verdict {
        Ok(r) => r,
        Err(b) => {
            return Err(Failure::Refused(Error::store(
                Code::AuditBroken,
                format!("the target's audit chain does not verify: {b}"),
            )));
        }
    };
    let head = hex::encode(chain.chain.head.hash);
    if !chain.is_clean() {
        let found = chain.differences.len() as u64 + chain.unlisted;
        for d in &chain.differences {
            eprintln!("{}: {d}", d.code.as_str());
        }
        return Err(Failure::Refused(Error::store(
            Code::AuditBroken,
            format!("the target differs from its audit chain in {found} places"),
        )));
    }
    outln!(
        "audit chain OK: {} records, head {head}",
        chain.chain.records
    );
    if chain.chain.head != report.source_head {
        return Err(Failure::Refused(Error::store(
            Code::AuditBroken,
            format!(
                "the target's head (seq {}, {head}) is not the source's (seq {}, {source_head})",
                chain.chain.head.seq, report.source_head.seq
            ),
        )));
    }
    outln!("head matches the source's (seq {})", report.source_head.seq);
    Ok(())
}
