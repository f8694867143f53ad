//! Verifying the chain: find the first record that is not what the chain promises, and say whether
//! it looks edited, deleted, inserted or reordered.
//!
//! The verifier is fed records in `seq` order ([`ChainVerifier::push`]) so a chain of millions of
//! records is checked page by page. It keeps a few dozen bytes per record (a short form of each
//! hash and its `seq`) to recognise a record that points back at an earlier one — the mark of an
//! insertion.
//!
//! How each break is recognised:
//!
//! | what happened | what the verifier sees | reported |
//! |---|---|---|
//! | a field of record 5 changed | `hash(5)` ≠ stored hash | record 5 edited |
//! | record 5 changed and re-hashed | record 6's `prev_hash` is not record 5's hash | record 5 edited |
//! | record 5 deleted | `seq` jumps from 4 to 6 | record 5 deleted |
//! | record 5 deleted, later ones renumbered | record now at 5 hashes right only as seq 6 | record 5 deleted |
//! | a record appended claiming to follow 4 | its `prev_hash` is record 4's, which already has a successor | that record inserted |
//! | a record put at 5, later ones renumbered | the old record 5 (now 6) links to record 4 and hashes right as seq 5 | record 5 inserted |
//! | records 5 and 6 swapped | record at 5 hashes right as 6, and the next one is its predecessor | record 5 reordered |
//! | a copy of record 4 added | its hash is one already seen | that record inserted |
//!
//! Deleting records at the *end* leaves no trace in the chain itself; the SQLite store also checks
//! the table's high-water mark (`sqlite_sequence`) for that.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use super::{AuditRecord, ChainHead};

/// How far from its current `seq` a moved record is looked for (each try is one SHA-256, and only
/// on the failure path).
const MOVE_WINDOW: i64 = 64;

/// What a break looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// A record's content no longer matches its hash (or its successor's link to it).
    Edited,
    /// A record that was expected is missing.
    Deleted,
    /// A record that does not belong to the chain was added.
    Inserted,
    /// Records are present but not in the order they were chained in.
    Reordered,
}

impl BreakKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::Edited => "edited",
            BreakKind::Deleted => "deleted",
            BreakKind::Inserted => "inserted",
            BreakKind::Reordered => "reordered",
        }
    }
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first place the chain does not verify.
///
/// Displays as `record <seq>: <kind>: <message>`, the line `audit verify` prints after
/// `AUDIT_BROKEN: `.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("record {seq}: {kind}: {message}")]
pub struct AuditBreak {
    /// The record the break is about (for a deletion: the missing `seq`).
    pub seq: i64,
    pub kind: BreakKind,
    pub message: String,
}

impl AuditBreak {
    fn new(seq: i64, kind: BreakKind, message: impl Into<String>) -> AuditBreak {
        AuditBreak {
            seq,
            kind,
            message: message.into(),
        }
    }
}

impl From<AuditBreak> for crate::Error {
    fn from(b: AuditBreak) -> crate::Error {
        crate::Error::store(crate::Code::AuditBroken, b.to_string())
    }
}

/// What a verified chain (or segment) contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainSummary {
    /// How many records were checked.
    pub records: u64,
    /// The head after the last record: its seq and hash ([`ChainHead::GENESIS`] when empty).
    pub head: ChainHead,
}

/// A record whose classification waits for the next one (was it moved down by a deletion, or
/// swapped with its successor?).
#[derive(Debug)]
struct Suspect {
    seq: i64,
    original_seq: i64,
    prev_hash: [u8; 32],
}

/// Checks records one at a time, in `seq` order.
#[derive(Debug)]
pub struct ChainVerifier {
    start: ChainHead,
    head: ChainHead,
    records: u64,
    /// First 8 bytes of each accepted hash → its seq.
    seen: HashMap<u64, i64>,
    suspect: Option<Suspect>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier::new()
    }
}

impl ChainVerifier {
    /// A verifier for a whole chain: the first record must be seq 1 with prev_hash [`GENESIS`](super::GENESIS).
    pub fn new() -> ChainVerifier {
        ChainVerifier::starting_after(ChainHead::GENESIS)
    }

    /// A verifier for a segment that follows `head` (e.g. an export `--since` a date: the first
    /// record's seq and prev_hash are taken on trust as the anchor).
    pub fn starting_after(head: ChainHead) -> ChainVerifier {
        ChainVerifier {
            start: head,
            head,
            records: 0,
            seen: HashMap::new(),
            suspect: None,
        }
    }

    /// Checks the next record. After an error the verifier is spent: the chain is broken there.
    ///
    /// A record whose verdict depends on the one after it (moved down by a deletion, or swapped
    /// with its successor) is accepted for now; the verdict comes with the next `push` or with
    /// [`finish`](Self::finish), so always call `finish`.
    pub fn push(&mut self, r: &AuditRecord) -> Result<(), AuditBreak> {
        if let Some(s) = self.suspect.take() {
            return Err(resolve_suspect(s, Some(r)));
        }
        let expected = self.head.seq + 1;
        if r.seq < expected {
            return Err(AuditBreak::new(
                r.seq,
                BreakKind::Reordered,
                format!(
                    "comes after record {}: records out of order or repeated",
                    self.head.seq
                ),
            ));
        }
        if r.seq > expected {
            let message = if r.seq == expected + 1 {
                format!("missing: seq jumps from {} to {}", self.head.seq, r.seq)
            } else {
                format!(
                    "missing, with records up to {}: seq jumps from {} to {}",
                    r.seq - 1,
                    self.head.seq,
                    r.seq
                )
            };
            return Err(AuditBreak::new(expected, BreakKind::Deleted, message));
        }
        let self_ok = r.computed_hash() == r.hash;
        if r.prev_hash != self.head.hash {
            // `None`: the verdict waits for the next record (see `Suspect`).
            return match self.misplaced(r, self_ok) {
                Some(b) => Err(b),
                None => Ok(()),
            };
        }
        if !self_ok {
            return Err(AuditBreak::new(
                r.seq,
                BreakKind::Edited,
                "stored hash does not match the record's contents",
            ));
        }
        self.seen.insert(short(&r.hash), r.seq);
        self.head = r.head();
        self.records += 1;
        Ok(())
    }

    /// Ends the check: the summary, or the break a pending suspicion turns into.
    pub fn finish(mut self) -> Result<ChainSummary, AuditBreak> {
        if let Some(s) = self.suspect.take() {
            return Err(resolve_suspect(s, None));
        }
        Ok(ChainSummary {
            records: self.records,
            head: self.head,
        })
    }

    /// `r` does not link to the record before it: work out why (`None`: deferred).
    fn misplaced(&mut self, r: &AuditRecord, self_ok: bool) -> Option<AuditBreak> {
        if let Some(&copy_of) = self.seen.get(&short(&r.hash)) {
            let message = format!("not part of the chain: a copy of record {copy_of}");
            return Some(AuditBreak::new(r.seq, BreakKind::Inserted, message));
        }
        if let Some(&k) = self.seen.get(&short(&r.prev_hash)) {
            // r points back at an earlier record k, which already has a successor (k + 1).
            if !self_ok && r.hash_at(k + 1) == r.hash {
                let what = if k + 1 == r.seq - 1 {
                    format!("record {} was inserted", k + 1)
                } else {
                    format!("records {}..{} were inserted", k + 1, r.seq - 1)
                };
                let message = format!(
                    "not part of the chain: {what} before the original record {}, which now has seq {}",
                    k + 1,
                    r.seq
                );
                return Some(AuditBreak::new(k + 1, BreakKind::Inserted, message));
            }
            let message = format!(
                "not part of the chain: it claims to follow record {k}, which is already followed by record {}",
                k + 1
            );
            return Some(AuditBreak::new(r.seq, BreakKind::Inserted, message));
        }
        if !self_ok {
            return match self.original_seq(r) {
                Some(original) if original > r.seq => {
                    // Moved down: earlier records deleted and the rest renumbered, or swapped
                    // with its successor. The next record tells which.
                    self.suspect = Some(Suspect {
                        seq: r.seq,
                        original_seq: original,
                        prev_hash: r.prev_hash,
                    });
                    None
                }
                Some(original) => {
                    let message = format!(
                        "not part of the chain: records were inserted before the original record {original}, which now has seq {}",
                        r.seq
                    );
                    Some(AuditBreak::new(original, BreakKind::Inserted, message))
                }
                None => Some(AuditBreak::new(
                    r.seq,
                    BreakKind::Edited,
                    "neither its hash nor its link to the previous record match",
                )),
            };
        }
        if r.seq == self.start.seq + 1 {
            return Some(AuditBreak::new(
                r.seq,
                BreakKind::Edited,
                "does not link to the start of the chain: replaced",
            ));
        }
        let message = format!(
            "altered and re-hashed: record {} recorded a different hash for it",
            r.seq
        );
        Some(AuditBreak::new(r.seq - 1, BreakKind::Edited, message))
    }

    /// The seq at which `r`'s stored hash is right, if it is near its current one.
    fn original_seq(&self, r: &AuditRecord) -> Option<i64> {
        (1..=MOVE_WINDOW)
            .flat_map(|d| [r.seq + d, r.seq - d])
            .filter(|&s| s > 0)
            .find(|&s| r.hash_at(s) == r.hash)
    }
}

fn resolve_suspect(s: Suspect, next: Option<&AuditRecord>) -> AuditBreak {
    match next {
        Some(n) if n.hash == s.prev_hash => AuditBreak::new(
            s.seq,
            BreakKind::Reordered,
            format!(
                "out of order: it was chained as record {}, and its predecessor comes after it",
                s.original_seq
            ),
        ),
        _ => AuditBreak::new(
            s.seq,
            BreakKind::Deleted,
            format!(
                "the original record {} is missing and later records were renumbered (the record now at seq {} was chained as {})",
                s.seq, s.seq, s.original_seq
            ),
        ),
    }
}

fn short(h: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    u64::from_be_bytes(b)
}

/// Verifies a whole chain, from record 1.
pub fn verify_chain<'a>(
    records: impl IntoIterator<Item = &'a AuditRecord>,
) -> Result<ChainSummary, AuditBreak> {
    let mut v = ChainVerifier::new();
    for r in records {
        v.push(r)?;
    }
    v.finish()
}
