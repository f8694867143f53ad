//! The test identities whose fault is a date: `expired` and `not-yet-valid`. Committed, they
//! would stop being what they claim on a fixed day (a not-yet-valid certificate becomes valid);
//! so they are issued once per test process by the committed issuing CA (`openssl ca` in a temp
//! copy of the test PKI), with dates relative to now, and [`super::pki`] hands out their paths.
//!
//! - `expired`: valid from 30 days before the issuing CA to one day ago, so at
//!   [`Dates::before_issuing_ca`] the leaf is valid and only its issuing CA is not.
//! - `not-yet-valid`: valid from a year from now for a year; accepted at [`Dates::in_future`].

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use time::macros::format_description;

use super::{stderr, stdout, tool};

/// The dates the timed identities were issued with.
pub struct Dates {
    /// The end of `expired`'s validity (one day ago).
    pub expired_until: OffsetDateTime,
    /// A moment when `expired` was valid but its issuing CA not yet.
    pub before_issuing_ca: OffsetDateTime,
    /// The start of `not-yet-valid`'s validity (a year from now).
    pub valid_from: OffsetDateTime,
    /// A moment when `not-yet-valid` is valid (and the CAs still are).
    pub in_future: OffsetDateTime,
}

struct Issued {
    dir: PathBuf,
    dates: Dates,
}

const DAY: Duration = Duration::from_secs(86_400);

/// Whether `name` (a file of the test PKI) is one of the identities issued here.
pub fn is_timed(name: &str) -> bool {
    name.starts_with("expired.") || name.starts_with("not-yet-valid.")
}

/// The path of the timed identity's file `name` (`expired.cert.pem`, `not-yet-valid.key.pem`, …).
pub fn path(name: &str) -> PathBuf {
    issued().dir.join(name)
}

/// The dates they were issued with.
pub fn dates() -> &'static Dates {
    &issued().dates
}

/// `t` as a `SystemTime`.
pub fn system_time(t: OffsetDateTime) -> SystemTime {
    let secs = u64::try_from(t.unix_timestamp()).expect("after 1970");
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn issued() -> &'static Issued {
    static ISSUED: OnceLock<Issued> = OnceLock::new();
    ISSUED.get_or_init(issue)
}

/// `openssl ca` dates (GeneralizedTime).
fn asn1(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year][month][day][hour][minute][second]Z"
    ))
    .expect("formats")
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = tool("openssl", "openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn issue() -> Issued {
    // Per process, under the target's temp dir (kept for the process's whole life: statics are
    // never dropped, so a `TempDir` would not remove it either).
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("timed-certs")
        .join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&dir);
    // Those of test processes that have ended.
    if let Ok(entries) = std::fs::read_dir(dir.parent().expect("a parent")) {
        for e in entries.flatten() {
            let pid = e.file_name().to_string_lossy().into_owned();
            if !Path::new("/proc").join(&pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    copy_dir(&super::root().join("certs/test-only"), &dir);
    std::fs::create_dir_all(dir.join("ca/csr")).unwrap();

    let issuing = std::fs::read(dir.join("issuing-ca.cert.pem")).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&issuing).expect("issuing CA PEM");
    let ca = pem.parse_x509().expect("issuing CA");
    let ca_from = ca.validity().not_before.to_datetime();
    let ca_until = ca.validity().not_after.to_datetime();
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("whole second");

    let expired_from = ca_from - 30 * DAY;
    let expired_until = now - DAY;
    assert!(
        expired_until > ca_from,
        "the issuing CA is less than a day old"
    );
    let valid_from = now + 365 * DAY;
    let valid_until = valid_from + 365 * DAY;
    assert!(
        valid_until < ca_until,
        "the committed test PKI's issuing CA ends {ca_until}: run certs/test-only/make-test-pki.sh"
    );

    let issue_one =
        |name: &str, code: &str, cn: &str, from: OffsetDateTime, until: OffsetDateTime| {
            openssl(
                &dir,
                &[
                    "genpkey",
                    "-quiet",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                    "-out",
                    &format!("{name}.key.pem"),
                ],
            );
            let subject = format!(
                "/C=VN/L=Gia Lai/O=Ủy ban nhân dân tỉnh Gia Lai/serialNumber={code}/CN={cn}"
            );
            openssl(
                &dir,
                &[
                    "req",
                    "-new",
                    "-config",
                    "openssl.cnf",
                    "-utf8",
                    "-key",
                    &format!("{name}.key.pem"),
                    "-subj",
                    &subject,
                    "-out",
                    &format!("ca/csr/{name}.csr"),
                ],
            );
            openssl(
                &dir,
                &[
                    "ca",
                    "-batch",
                    "-notext",
                    "-utf8",
                    "-config",
                    "openssl.cnf",
                    "-name",
                    "ca_issuing",
                    "-extensions",
                    "v3_org_signing",
                    "-startdate",
                    &asn1(from),
                    "-enddate",
                    &asn1(until),
                    "-in",
                    &format!("ca/csr/{name}.csr"),
                    "-out",
                    &format!("{name}.cert.pem"),
                ],
            );
        };
    issue_one(
        "expired",
        "000.00.91.H21",
        "TEST Đơn vị chứng thư hết hạn",
        expired_from,
        expired_until,
    );
    issue_one(
        "not-yet-valid",
        "000.00.92.H21",
        "TEST Đơn vị chứng thư chưa có hiệu lực",
        valid_from,
        valid_until,
    );
    Issued {
        dir,
        dates: Dates {
            expired_until,
            before_issuing_ca: ca_from - 15 * DAY,
            valid_from,
            in_future: valid_from + DAY,
        },
    }
}

/// How a date appears in the library's messages (`2021-01-01T00:00:00Z`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .expect("formats")
}
