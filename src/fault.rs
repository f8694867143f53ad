//! Fault points: the steps where a test can make a debug build of the node crash, or a write
//! fail, at exactly that step, to show what is left behind (`tests/crash_safety.rs`).
//!
//! Why: killing a process from outside lands wherever it happens to be; the narrow windows that
//! decide durability (a package file synced but its row not committed, a commit not yet
//! answered, a receipt checked but the delivery not yet recorded) are almost never hit that way.
//!
//! Armed by the environment variable `LIENTHONG_FAIL_AT=<point>[:<n>]`: the `n`-th time (1 when
//! omitted) the process reaches `point` it fails there. A crash point kills the process with
//! SIGKILL (as `kill -9`: no destructor runs, nothing is flushed); an error point makes that step
//! fail as the real failure would (a `COMMIT` that fails, an audit insert SQLite refuses).
//!
//! Only debug builds (`cfg(debug_assertions)`) read the variable; in a release build every point
//! is a constant `false`, so no environment can make a production node fail on purpose.

/// A step the node can be told to fail at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Crash: a large package's file is written, synced and named, its row not yet committed.
    PackageSynced,
    /// Crash: a group's writes are done, its `COMMIT` not yet issued.
    BeforeCommit,
    /// Crash: a clerk's submission is committed, the 202 not yet sent.
    SubmitCommitted,
    /// Crash: a clerk's status report is committed, the 202 not yet sent.
    StatusCommitted,
    /// Crash: a package from a peer is committed, the receipt (or 204) not yet sent.
    IngestCommitted,
    /// Crash: the recipient's receipt is checked, the delivery not yet recorded `delivered`.
    ReceiptChecked,
    /// Crash: the mail relay accepted a delivery's mail, the delivery not yet recorded
    /// `delivered` (it is sent again, with the same `Message-ID`).
    MailRelayed,
    /// Crash: the package a mail carried is committed (`ingest_incoming` or `record_status`),
    /// the mail not yet taken in (`take_mail`): read again, it is a repeat that stores nothing.
    MailIngested,
    /// Crash: a mail is taken in (`take_mail` committed), not yet moved out of the folder read:
    /// found again below the checkpoint, it is only moved.
    MailTaken,
    /// Error: the `COMMIT` of a group of writes that changes state fails.
    Commit,
    /// Error: SQLite refuses the insert of a group's audit records.
    AuditInsert,
}

impl Point {
    /// Every point, in the order of a write's life.
    pub const ALL: [Point; 11] = [
        Point::PackageSynced,
        Point::BeforeCommit,
        Point::SubmitCommitted,
        Point::StatusCommitted,
        Point::IngestCommitted,
        Point::ReceiptChecked,
        Point::MailRelayed,
        Point::MailIngested,
        Point::MailTaken,
        Point::Commit,
        Point::AuditInsert,
    ];

    /// Its name in `LIENTHONG_FAIL_AT`.
    pub const fn name(self) -> &'static str {
        match self {
            Point::PackageSynced => "package-synced",
            Point::BeforeCommit => "before-commit",
            Point::SubmitCommitted => "submit-committed",
            Point::StatusCommitted => "status-committed",
            Point::IngestCommitted => "ingest-committed",
            Point::ReceiptChecked => "receipt-checked",
            Point::MailRelayed => "mail-relayed",
            Point::MailIngested => "mail-ingested",
            Point::MailTaken => "mail-taken",
            Point::Commit => "commit",
            Point::AuditInsert => "audit-insert",
        }
    }
}

/// The environment variable that arms a point.
pub const VAR: &str = "LIENTHONG_FAIL_AT";

#[cfg(debug_assertions)]
mod armed {
    use super::{Point, VAR};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    static ARMED: OnceLock<Option<(Point, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);

    /// `point[:n]`; anything else arms nothing (and says so once).
    pub(super) fn parse(text: &str) -> Option<(Point, u64)> {
        let (name, n) = match text.split_once(':') {
            Some((name, n)) => (name, n.parse().ok().filter(|n| *n > 0)?),
            None => (text, 1),
        };
        Point::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .map(|p| (p, n))
    }

    pub(super) fn reached(point: Point) -> bool {
        let armed = ARMED.get_or_init(|| {
            let text = std::env::var(VAR).ok()?;
            let armed = parse(&text);
            match armed {
                None => tracing::error!(value = %text, "{VAR}: no such fault point; nothing armed"),
                // Never silent: a node with a point armed will crash or fail on purpose.
                Some((p, n)) => tracing::error!(
                    point = p.name(),
                    passage = n,
                    "{VAR}: FAULT POINT ARMED (a debug build, for crash tests): this node will fail on purpose"
                ),
            }
            armed
        });
        match armed {
            Some((p, n)) if *p == point => HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n,
            _ => false,
        }
    }
}

/// Whether this passage through `point` is the one armed (always `false` in a release build).
#[cfg(debug_assertions)]
pub fn reached(point: Point) -> bool {
    armed::reached(point)
}

/// Whether this passage through `point` is the one armed (always `false` in a release build).
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn reached(_point: Point) -> bool {
    false
}

/// A crash point: when armed and reached, the process is killed on the spot.
pub fn crash(point: Point) {
    if reached(point) {
        eprintln!("fault point {}: killing the process", point.name());
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        std::process::abort();
    }
}

/// An error point: `true` when armed and reached; the caller then fails the step.
pub fn fails(point: Point) -> bool {
    let hit = reached(point);
    if hit {
        tracing::error!(point = point.name(), "fault point: failing this step");
    }
    hit
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_counts_must_be_positive() {
        for p in Point::ALL {
            assert_eq!(armed::parse(p.name()), Some((p, 1)));
            assert_eq!(armed::parse(&format!("{}:7", p.name())), Some((p, 7)));
            assert_eq!(armed::parse(&format!("{}:0", p.name())), None);
        }
        assert_eq!(armed::parse("commit:x"), None);
        assert_eq!(armed::parse("nowhere"), None);
    }
}
