//! Export formats of the audit chain: JSON Lines and CSV.
//!
//! Both carry every hashed field exactly as stored (the `detail` JSON as a string, not re-encoded)
//! plus both hashes in hex, so an auditor can re-verify an export with the rule in
//! [`hash`](super::hash) without access to the node. `time` (RFC 3339, UTC) is added for people;
//! it is not hashed — `at` (Unix milliseconds) is.

use std::io::{self, Write};

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::AuditRecord;

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line; reads back as [`AuditRecord`] (see [`parse_jsonl_line`]).
    Jsonl,
    /// RFC 4180 CSV with a header line.
    Csv,
}

/// The CSV header, in column order.
pub const CSV_HEADER: &str = "seq,at,time,actor,action,entity_kind,entity_id,detail,prev_hash,hash";

/// Unix milliseconds as RFC 3339 UTC (`2026-11-25T10:00:00.123Z`); empty if out of range.
pub fn rfc3339_ms(at: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[derive(Serialize)]
struct JsonLine<'a> {
    seq: i64,
    at: i64,
    time: String,
    actor: &'a str,
    action: &'a str,
    entity_kind: &'a str,
    entity_id: &'a str,
    detail: &'a str,
    prev_hash: String,
    hash: String,
}

/// Writes the header (CSV only; JSON Lines has none).
pub fn write_header(out: &mut impl Write, format: Format) -> io::Result<()> {
    match format {
        Format::Jsonl => Ok(()),
        Format::Csv => writeln!(out, "{CSV_HEADER}\r"),
    }
}

/// Writes one record in `format`, with its line ending.
pub fn write_record(out: &mut impl Write, format: Format, r: &AuditRecord) -> io::Result<()> {
    match format {
        Format::Jsonl => {
            let line = JsonLine {
                seq: r.seq,
                at: r.at,
                time: rfc3339_ms(r.at),
                actor: &r.actor,
                action: &r.action,
                entity_kind: &r.entity_kind,
                entity_id: &r.entity_id,
                detail: &r.detail,
                prev_hash: hex::encode(r.prev_hash),
                hash: hex::encode(r.hash),
            };
            serde_json::to_writer(&mut *out, &line).map_err(io::Error::other)?;
            out.write_all(b"\n")
        }
        Format::Csv => {
            let fields = [
                r.seq.to_string(),
                r.at.to_string(),
                rfc3339_ms(r.at),
                csv_field(&r.actor),
                csv_field(&r.action),
                csv_field(&r.entity_kind),
                csv_field(&r.entity_id),
                csv_field(&r.detail),
                hex::encode(r.prev_hash),
                hex::encode(r.hash),
            ];
            write!(out, "{}\r\n", fields.join(","))
        }
    }
}

/// One line of a JSON Lines export back into a record (the `time` field is ignored).
pub fn parse_jsonl_line(line: &str) -> Result<AuditRecord, serde_json::Error> {
    serde_json::from_str(line)
}

/// RFC 4180 quoting: quoted when it holds a comma, quote, CR or LF; quotes doubled.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEntry, ChainHead, verify_chain};

    fn chain() -> Vec<AuditRecord> {
        let mut head = ChainHead::GENESIS;
        (0..3)
            .map(|i| {
                let r = AuditRecord::next(
                    head,
                    1_764_000_000_000 + i,
                    AuditEntry::new(
                        "clerk:000.00.05.H21:an",
                        "document.submit",
                        "message",
                        i,
                        &serde_json::json!({ "note": "a, \"quoted\"\nline", "n": i }),
                    ),
                );
                head = r.head();
                r
            })
            .collect()
    }

    #[test]
    fn jsonl_round_trips_and_still_verifies() {
        let records = chain();
        let mut out = Vec::new();
        for r in &records {
            write_record(&mut out, Format::Jsonl, r).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        let back: Vec<AuditRecord> = text.lines().map(|l| parse_jsonl_line(l).unwrap()).collect();
        assert_eq!(back, records);
        assert_eq!(verify_chain(&back).unwrap().records, 3);
        assert!(text.contains("\"time\":\"2025-11-24T"));
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let records = chain();
        let mut out = Vec::new();
        write_header(&mut out, Format::Csv).unwrap();
        write_record(&mut out, Format::Csv, &records[0]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("seq,at,time,actor,"));
        assert!(text.contains(r#""{""n"":0,""note"":""a, \""quoted\""\nline""}""#));
        assert_eq!(csv_field("plain"), "plain");
    }
}
