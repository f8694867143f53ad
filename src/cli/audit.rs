//! `lienthong audit verify` and `lienthong audit export`: the administrator's view of the audit
//! chain, straight from the store (the node may be running; a SQLite store is opened
//! read-only, a PostgreSQL one read in one snapshot).
//!
//! `verify` checks the chain, then every row of the store against it (`Store::verify_store`:
//! messages, statuses and deliveries present and as recorded, every package's bytes hashed). It
//! exits 0 printing `audit chain OK: N records, head <hash>` (keep the head somewhere the node
//! cannot write: it is what catches a rewritten tail) and a line of what was checked; or 1 with
//! one line `AUDIT_BROKEN: record <seq>: edited|deleted|inserted|reordered: …` when the chain
//! breaks; or 1 with one line per difference (`AUDIT_BROKEN: message 17: subject differs from
//! audit record 42 (document.submit)`, `STORE_CORRUPT: message 9: package bytes hash to …`) and
//! a last line counting them when the rows are not what the chain says. A store that cannot be
//! opened is a local problem: exit 3.
//!
//! Wired into `src/cli/mod.rs` with `mod audit;`, a `Command` variant
//! `#[command(subcommand)] Audit(audit::Command),` and the arm
//! `Command::Audit(c) => (false, audit::run(c)),`.

use std::io::{self, BufWriter, Write};

use lienthong::audit::export::{self, Format};
use lienthong::edxml::dates::VIETNAM_OFFSET;
use lienthong::store::{AnyStore, AuditQuery, PgOptions, SqliteOptions, Store, StoreOptions};
use lienthong::{Code, Error};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time};

use super::{CmdResult, Failure};

/// Records per store query while exporting.
const EXPORT_PAGE: u32 = 5000;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Check the whole audit chain (name the first edited, deleted, inserted or reordered
    /// record), then every message, status and delivery of the store against it, every package
    /// hashed (name each row that differs, is missing or was never recorded).
    Verify(VerifyArgs),
    /// Write audit records to stdout, oldest first, as JSON Lines or CSV.
    Export(ExportArgs),
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The node's store, e.g. `sqlite:///var/lib/lienthong/node.db` or
    /// `postgres://lienthong@db.example/lienthong`.
    #[arg(long, env = "LIENTHONG_STORE")]
    store: String,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The node's store, e.g. `sqlite:///var/lib/lienthong/node.db` or
    /// `postgres://lienthong@db.example/lienthong`.
    #[arg(long, env = "LIENTHONG_STORE")]
    store: String,
    /// From this time (inclusive): RFC 3339 (`2026-11-25T08:00:00+07:00`) or a date
    /// (`2026-11-25`, from midnight Vietnam time).
    #[arg(long, value_parser = parse_since)]
    since: Option<i64>,
    /// Until this time (exclusive): RFC 3339, or a date (to the end of that day, Vietnam time).
    #[arg(long, value_parser = parse_until)]
    until: Option<i64>,
    /// `jsonl` (one JSON object per line) or `csv` (RFC 4180, with a header line).
    #[arg(long, value_enum)]
    format: ExportFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    Jsonl,
    Csv,
}

pub fn run(c: Command) -> CmdResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Local(Error::io("tokio runtime", e)))?;
    runtime.block_on(async {
        match c {
            Command::Verify(a) => verify(a).await,
            Command::Export(a) => export(a).await,
        }
    })
}

/// Opens the store for reading: a SQLite store read-only (inspecting it must not change it: no
/// migrations, no writer); a PostgreSQL store as a replica opens it (its pending migrations are
/// applied, as `lienthong migrate` would; its reads run in one snapshot, so replicas may keep
/// writing meanwhile).
async fn open(url: &str) -> Result<AnyStore, Failure> {
    let options = StoreOptions {
        sqlite: SqliteOptions {
            read_only: true,
            read_connections: 1,
            ..SqliteOptions::default()
        },
        postgres: PgOptions {
            max_connections: 2,
            ..PgOptions::default()
        },
    };
    AnyStore::open_with(url, &options).await.map_err(local)
}

/// A size as a person reads it: bytes below 1 KiB, else KiB, MiB or GiB with one decimal,
/// rounded to nearest (a size that rounds up to 1024 of a unit is shown in the next one).
fn human_size(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} {}", if bytes == 1 { "byte" } else { "bytes" });
    }
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut unit = 1024u128;
    let mut i = 0;
    loop {
        // Tenths of the unit, rounded half up, in integers (no float rounding surprises).
        let tenths = (u128::from(bytes) * 10 + unit / 2) / unit;
        if tenths < 10_240 || i + 1 == UNITS.len() {
            return format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[i]);
        }
        unit *= 1024;
        i += 1;
    }
}

/// Store failures (cannot open, I/O) are local problems (exit 3); anything else is a refusal.
fn local(e: Error) -> Failure {
    match e.code() {
        Code::StoreUnavailable | Code::Io => Failure::Local(e),
        _ => Failure::Refused(e),
    }
}

async fn verify(a: VerifyArgs) -> CmdResult {
    let store = open(&a.store).await?;
    let verdict = store.verify_store().await.map_err(local);
    store.close().await;
    let report = match verdict? {
        Ok(report) => report,
        Err(b) => return Err(Failure::Refused(b.into())),
    };
    let head = hex::encode(report.chain.head.hash);
    if report.is_clean() {
        outln!(
            "audit chain OK: {} records, head {head}",
            report.chain.records
        );
        let c = report.checked;
        outln!(
            "store matches the chain: {} messages ({} of packages hashed), {} statuses, {} deliveries, {} registry entries, {} mails taken in, {} drafts ({} files), {} mailbox checkpoints, {} reply limits",
            c.messages,
            human_size(report.package_bytes),
            c.statuses,
            c.deliveries,
            c.registry,
            c.mails,
            c.drafts,
            c.draft_files,
            c.mail_checkpoints,
            c.mail_replies
        );
        return Ok(());
    }
    let mut err = io::stderr().lock();
    let found = report.differences.len() as u64 + report.unlisted;
    // Best effort: stderr going away changes nothing about the verdict (exit 1).
    for d in &report.differences {
        let _ = writeln!(err, "{}: {d}", d.code.as_str());
    }
    if report.unlisted > 0 {
        let _ = writeln!(err, "AUDIT_BROKEN: … {} more not listed", report.unlisted);
    }
    let _ = writeln!(
        err,
        "AUDIT_BROKEN: the store differs from the audit chain in {found} places (the chain itself verifies: {} records, head {head})",
        report.chain.records
    );
    Err(Failure::Reported)
}

async fn export(a: ExportArgs) -> CmdResult {
    let store = open(&a.store).await?;
    let result = write_export(&store, &a).await;
    store.close().await;
    result
}

async fn write_export(store: &AnyStore, a: &ExportArgs) -> CmdResult {
    let format = match a.format {
        ExportFormat::Jsonl => Format::Jsonl,
        ExportFormat::Csv => Format::Csv,
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let io_err = |e: io::Error| Failure::Local(Error::io("stdout", e));
    let mut query = AuditQuery {
        since: a.since,
        until: a.until,
        after_seq: None,
        limit: EXPORT_PAGE,
    };
    let written: io::Result<()> = async {
        export::write_header(&mut out, format)?;
        loop {
            let page = store
                .audit_records(&query)
                .await
                .map_err(io::Error::other)?;
            let Some(last) = page.last() else { break };
            query.after_seq = Some(last.seq);
            for r in &page {
                export::write_record(&mut out, format, r)?;
            }
        }
        out.flush()
    }
    .await;
    match written {
        Ok(()) => Ok(()),
        // The reader went away (`| head`): not an error of ours.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => match e.downcast::<Error>() {
            Ok(store_error) => Err(local(store_error)),
            Err(e) => Err(io_err(e)),
        },
    }
}

fn parse_since(s: &str) -> Result<i64, String> {
    parse_time(s, false)
}

fn parse_until(s: &str) -> Result<i64, String> {
    parse_time(s, true)
}

/// RFC 3339, or `yyyy-mm-dd` taken in Vietnam time: its midnight, or for an end bound the next
/// midnight (so `--until 2026-11-30` includes the 30th).
fn parse_time(s: &str, end_of_day: bool) -> Result<i64, String> {
    let t = match OffsetDateTime::parse(s, &Rfc3339) {
        Ok(t) => t,
        Err(_) => {
            let date = Date::parse(s, format_description!("[year]-[month]-[day]"))
                .map_err(|_| format!("{s:?} is neither RFC 3339 nor yyyy-mm-dd"))?;
            let midnight =
                PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_offset(VIETNAM_OFFSET);
            if end_of_day {
                midnight + Duration::days(1)
            } else {
                midnight
            }
        }
    };
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("{s:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_read_as_a_person_reads_them() {
        assert_eq!(human_size(0), "0 bytes");
        assert_eq!(human_size(1), "1 byte");
        assert_eq!(human_size(1023), "1023 bytes");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(20_480), "20.0 KiB");
        assert_eq!(human_size(20_531), "20.0 KiB"); // 20.049…
        assert_eq!(human_size(20_532), "20.1 KiB"); // 20.050…, half up
        assert_eq!(human_size(1024 * 1024 - 1), "1.0 MiB"); // not "1024.0 KiB"
        assert_eq!(human_size(5 * 1024 * 1024 + 512 * 1024), "5.5 MiB");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
