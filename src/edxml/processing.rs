//! The processing order of a document (QCVN 102:2016 status codes, Decree 30/2020 Art. 18 and
//! 21): who may report which status, after what, on which kind of package. Pure: the store
//! gathers the document's history inside the transaction that records a status and asks
//! [`check_status`]; it asks [`check_follow_up`] before it stores a revocation or an update.
//! The same rules so apply to a status a clerk of this node reports and to one a peer pushes.
//!
//! The rules, per document (sender, DocumentId) and reporting agency R:
//!
//! - **Who.** 13 comes from the document's sender only; every other code from an agency the
//!   document (or a revocation, update or replacement of it) was sent to. Anyone else —
//!   including the sender itself — is [`Refusal::NotRecipient`].
//! - **When.** The status's `Timestamp` must lie within [`SKEW_MS`] of this node's clock in the
//!   future, and not before the document was first stored here (less the same margin): a
//!   status dated ahead would stay R's "latest" status until the clock caught up, and would
//!   put every later report of R out of order. Such a status is *refused*, not clamped: the
//!   timestamp is part of what R signed, and a history that disagrees with the signed package
//!   would not be evidence. The reporting node sees the code and can fix its clock.
//! - **Processing (01–06).** 01 (arrival) is implicit; 02 follows only 01; 03 → 04 → 05 → 06
//!   (04 and 05 may be skipped); 02 and 06 are final; no code twice; a status's place in R's
//!   history by timestamp keeps that order. A report of R made here (its whole history is
//!   here) must also directly follow R's latest. A report received from a peer may arrive
//!   before an earlier one still in transit (status packages are delivered independently, and
//!   concurrently), so there gaps are allowed: a 04 before its 03, then the 03 dated earlier. Processing codes are about the
//!   document itself: never reported on a revocation, nor on an update when R holds the
//!   document, nor after R agreed to revoke it.
//! - **Take-back (15/16).** Each revocation (business type 1), update (2) or replacement (3)
//!   package sent to R, and each 13 of the sender, is one request; R answers each once, 15 or
//!   16. A 15/16 with nothing outstanding is refused. A report made here names the package it
//!   answers (the inbox item); a received one answers the oldest outstanding request. A 15 that
//!   answers a revocation (or a bare 13) revokes R's copies.
//! - **Unassigned codes** (07–12, 14), which a lenient read keeps and flags, are stored from a
//!   recipient within the time window and order nothing.
//! - **Follow-ups** ([`check_follow_up`]): a document is revoked once and updated once, and not
//!   updated once revoked. Recipients keep one package per (sender, DocumentId, business type),
//!   so a second revocation or update would be refused by them as a conflicting duplicate: it
//!   is refused at submission instead of being accepted and never delivered.

use std::fmt;

use super::StatusCode;

/// How far ahead of this node's clock a status's `Timestamp` may be: 10 minutes. Agencies' clocks
/// are not all disciplined by NTP, and a status carries whole seconds of Vietnam time, so a few
/// minutes of drift must pass; ten minutes is well beyond that drift and well below the time
/// between two steps of a clerk's handling (registering, assigning, finishing), so a status dated
/// within it cannot hide a later report of the same agency for long. The same margin applies
/// backwards to the moment the document was first stored here.
pub const SKEW_MS: i64 = 10 * 60 * 1000;

/// What a take-back answer (15/16) answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// The sender's status 13 (no package).
    TakeBack,
    /// A revocation package (business type 1).
    Revocation,
    /// An update package (business type 2).
    Update,
    /// The document is a replacement (business type 3) and its package is the request.
    Replacement,
}

impl Request {
    /// The request a package of `business_type` makes (`None` for a new document, 0).
    pub fn of_package(business_type: u8) -> Option<Request> {
        match business_type {
            1 => Some(Request::Revocation),
            2 => Some(Request::Update),
            3 => Some(Request::Replacement),
            _ => None,
        }
    }

    /// The request a report on an inbox item of `business_type` answers (0: the sender's 13).
    fn answered_on(business_type: u8) -> Option<Request> {
        match business_type {
            0 => Some(Request::TakeBack),
            other => Request::of_package(other),
        }
    }

    /// Whether agreeing to it cancels the recipient's copy.
    fn revokes(self) -> bool {
        matches!(self, Request::TakeBack | Request::Revocation)
    }

    fn name(self) -> &'static str {
        match self {
            Request::TakeBack => "take-back request (13)",
            Request::Revocation => "revocation",
            Request::Update => "update",
            Request::Replacement => "replacement",
        }
    }
}

/// A package of the document (same sender and DocumentId) sent to the reporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addressed {
    /// 0 new, 1 revocation, 2 update, 3 replacement.
    pub business_type: u8,
    /// When this node stored it (ms).
    pub at: i64,
}

/// A status already recorded on the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported {
    pub code: StatusCode,
    /// Its `Timestamp` (ms).
    pub at: i64,
    /// The business type of the package it was reported on, when known (reports made here).
    pub on: Option<u8>,
}

/// What this node knows of a document when a status about it is recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// When this node first stored a package of the document (ms); `None`: no package of it is
    /// known here.
    pub first_stored: Option<i64>,
    /// The packages of the document sent to the reporter, oldest first.
    pub addressed: Vec<Addressed>,
    /// The reporter's own earlier statuses on the document, in the order recorded.
    pub reports: Vec<Reported>,
    /// The timestamps (ms) of the sender's 13s on the document.
    pub take_back_requests: Vec<i64>,
}

/// A status about to be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub code: StatusCode,
    /// Its `Timestamp` (ms).
    pub at: i64,
    /// The reporter is the document's sender.
    pub by_sender: bool,
    /// The business type of the package it is reported on: known for a report made here (the
    /// inbox item), `None` for a received status package.
    pub on: Option<u8>,
    /// The reporter's whole history is here (an agency of this node reports): the code must
    /// directly follow its latest. `false` for a received package, which may overtake one in
    /// transit.
    pub complete: bool,
    /// This node's clock (ms).
    pub now: i64,
}

/// What recording an accepted status changes beyond the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Effects {
    /// A 15 that answers a revocation or a bare 13: the reporter's copies are cancelled.
    pub revokes: bool,
    /// The request a 15/16 answers.
    pub answers: Option<Request>,
}

/// Why a status is refused. The store maps these to codes: `NOT_FOUND`,
/// `STATUS_NOT_FROM_RECIPIENT`, `STATUS_TIME_INVALID`, `INVALID_TRANSITION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No package of the document is known here.
    UnknownDocument,
    /// The reporter has no standing: not a recipient (or, for 13, not the sender).
    NotRecipient(String),
    /// The timestamp is outside the window.
    Timestamp(String),
    /// The code does not fit the reporter's history or the package it is reported on.
    OutOfOrder(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownDocument => f.write_str("the document is not known to this node"),
            Refusal::NotRecipient(s) | Refusal::Timestamp(s) | Refusal::OutOfOrder(s) => {
                f.write_str(s)
            }
        }
    }
}

/// The place of a processing code in the progression (01 < 02; 01 < 03 < 04 < 05 < 06).
fn rank(code: StatusCode) -> Option<u8> {
    use StatusCode::*;
    match code {
        Arrived | Rejected | Registered | Assigned | Processing | Finished => Some(code.number()),
        _ => None,
    }
}

fn fmt_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(|t| {
            let t = t.to_offset(time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC));
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +07",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_else(|_| format!("{ms} ms"))
}

/// Replays the take-back requests and answers: what is still outstanding, in order, whether
/// the reporter agreed to a revocation, and whether the requests were of more than one kind.
fn take_backs(history: &History) -> (Vec<Request>, bool, bool) {
    let mut requests: Vec<(i64, Request)> = history
        .addressed
        .iter()
        .filter_map(|a| Request::of_package(a.business_type).map(|r| (a.at, r)))
        .chain(
            history
                .take_back_requests
                .iter()
                .map(|&at| (at, Request::TakeBack)),
        )
        .collect();
    requests.sort_by_key(|(at, _)| *at);
    let mut open: Vec<Request> = requests.into_iter().map(|(_, r)| r).collect();
    let mut revoked = false;
    let ambiguous = mixed(&open);
    for r in &history.reports {
        if !matches!(
            r.code,
            StatusCode::TakeBackAgreed | StatusCode::TakeBackRefused
        ) {
            continue;
        }
        let pos =
            r.on.and_then(Request::answered_on)
                .and_then(|want| open.iter().position(|o| *o == want))
                .or(if open.is_empty() { None } else { Some(0) });
        if let Some(i) = pos {
            // A received answer (no item) on a document with requests of different kinds: which
            // one it answered is a guess, and a guess never cancels the reporter's copies.
            let guessed = r.on.is_none() && ambiguous;
            let answered = open.remove(i);
            if r.code == StatusCode::TakeBackAgreed && answered.revokes() && !guessed {
                revoked = true;
            }
        }
    }
    (open, revoked, ambiguous)
}

/// Whether `requests` hold more than one kind: a received 15/16, which does not say which it
/// answers, can then only be matched by a guess.
fn mixed(requests: &[Request]) -> bool {
    requests.iter().any(|r| *r != requests[0])
}

/// Whether `report` may be recorded on a document with `history`, and what it changes.
pub fn check_status(history: &History, report: &Report) -> Result<Effects, Refusal> {
    let Some(first_stored) = history.first_stored else {
        return Err(Refusal::UnknownDocument);
    };
    let code = report.code;
    // Who.
    if code == StatusCode::TakeBackRequested {
        if !report.by_sender {
            return Err(Refusal::NotRecipient(
                "status 13 (take-back request) comes from the document's sender only".into(),
            ));
        }
    } else if history.addressed.is_empty() {
        let who = if report.by_sender {
            "the document's sender"
        } else {
            "an agency the document was not sent to"
        };
        return Err(Refusal::NotRecipient(format!(
            "status {code} comes from {who}: only a recipient reports 01–06, 15 and 16"
        )));
    }
    // When.
    if report.at > report.now + SKEW_MS {
        return Err(Refusal::Timestamp(format!(
            "the status's timestamp {} is more than {} minutes ahead of this node's clock ({})",
            fmt_ms(report.at),
            SKEW_MS / 60_000,
            fmt_ms(report.now)
        )));
    }
    if report.at < first_stored - SKEW_MS {
        return Err(Refusal::Timestamp(format!(
            "the status's timestamp {} is before the document reached this node ({})",
            fmt_ms(report.at),
            fmt_ms(first_stored)
        )));
    }
    // 13 asks; an unassigned code (07–12, 14, kept and flagged by a lenient read, EDXML.md §3)
    // means nothing this node could order: both join the history and change nothing else.
    if code == StatusCode::TakeBackRequested || !code.is_assigned() {
        return Ok(Effects::default());
    }

    let (open, revoked, ambiguous) = take_backs(history);
    let holds_document = history
        .addressed
        .iter()
        .any(|a| matches!(a.business_type, 0 | 3));

    if let Some(r) = rank(code) {
        // What it is reported on.
        match report.on {
            Some(1) => {
                return Err(Refusal::OutOfOrder(format!(
                    "status {code} is not reported on a revocation: answer it with 15 or 16"
                )));
            }
            Some(2) if holds_document => {
                return Err(Refusal::OutOfOrder(format!(
                    "status {code} is reported on the document, not on its update: answer the \
                     update with 15 or 16"
                )));
            }
            _ => {}
        }
        if revoked {
            return Err(Refusal::OutOfOrder(format!(
                "status {code}: the reporter agreed to revoke the document"
            )));
        }
        let earlier: Vec<&Reported> = history
            .reports
            .iter()
            .filter(|p| rank(p.code).is_some())
            .collect();
        if let Some(p) = earlier.iter().find(|p| p.code == code) {
            return Err(Refusal::OutOfOrder(format!(
                "status {code} was already reported (at {})",
                fmt_ms(p.at)
            )));
        }
        if code == StatusCode::Arrived && report.complete {
            return Err(Refusal::OutOfOrder(
                "status 01 is sent on arrival, not reported".into(),
            ));
        }
        let rejected = earlier.iter().any(|p| p.code == StatusCode::Rejected);
        let accepted = earlier
            .iter()
            .find(|p| rank(p.code).is_some_and(|x| x >= 3));
        if code == StatusCode::Rejected
            && let Some(p) = accepted
        {
            return Err(Refusal::OutOfOrder(format!(
                "status 02 cannot follow {} (the document was accepted)",
                p.code
            )));
        }
        if r >= 3 && rejected {
            return Err(Refusal::OutOfOrder(format!(
                "status {code} cannot follow 02 (the document was rejected)"
            )));
        }
        // Its place by timestamp keeps the progression in order (a tie orders by rank).
        for p in &earlier {
            let pr = rank(p.code).unwrap_or(0);
            if (p.at < report.at && pr > r) || (p.at > report.at && pr < r) {
                return Err(Refusal::OutOfOrder(format!(
                    "status {code} at {} contradicts {} at {}",
                    fmt_ms(report.at),
                    p.code,
                    fmt_ms(p.at)
                )));
            }
        }
        // Made here, it directly follows the latest: no step is in transit.
        if report.complete {
            let latest = earlier
                .iter()
                .max_by_key(|p| (p.at, rank(p.code)))
                .map_or(StatusCode::Arrived, |p| p.code);
            if !code.may_follow(latest) {
                return Err(Refusal::OutOfOrder(format!(
                    "status {code} cannot follow {latest}"
                )));
            }
        }
        return Ok(Effects::default());
    }

    // 15 / 16.
    let answered = match report.on.map(|t| (t, Request::answered_on(t))) {
        Some((t, None)) => {
            return Err(Refusal::OutOfOrder(format!(
                "status {code} cannot be reported on a package of business type {t}"
            )));
        }
        Some((_, Some(want))) => open.iter().find(|o| **o == want).copied().ok_or_else(|| {
            Refusal::OutOfOrder(format!(
                "status {code}: no {} of this document awaits an answer from the reporter",
                want.name()
            ))
        })?,
        None => open.first().copied().ok_or_else(|| {
            Refusal::OutOfOrder(format!(
                "status {code}: no revocation, update, replacement or take-back request of \
                 this document awaits an answer from the reporter"
            ))
        })?,
    };
    // A received answer on a document with requests of different kinds is matched to the
    // oldest still open, a guess: it never cancels the reporter's copies on that guess.
    let guessed = report.on.is_none() && ambiguous;
    Ok(Effects {
        revokes: code == StatusCode::TakeBackAgreed && answered.revokes() && !guessed,
        answers: Some(answered),
    })
}

/// Why a follow-up package cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpRefusal(pub String);

impl fmt::Display for FollowUpRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a package of `business_type` (1 revocation, 2 update) may be sent for a document
/// whose packages already sent have the business types `sent`. Other types always may.
pub fn check_follow_up(sent: &[u8], business_type: u8) -> Result<(), FollowUpRefusal> {
    let revoked = sent.contains(&1);
    match business_type {
        1 if revoked => Err(FollowUpRefusal(
            "the document was already revoked: a second revocation would be refused by its \
             recipients as a conflicting duplicate"
                .into(),
        )),
        2 if revoked => Err(FollowUpRefusal(
            "the document was revoked: it cannot be updated".into(),
        )),
        2 if sent.contains(&2) => Err(FollowUpRefusal(
            "the document was already updated: a second update would be refused by its \
             recipients as a conflicting duplicate; send a replacement instead"
                .into(),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StatusCode::*;

    const T0: i64 = 1_800_000_000_000;
    const MIN: i64 = 60_000;

    fn doc(types: &[u8]) -> History {
        History {
            first_stored: Some(T0),
            addressed: types
                .iter()
                .enumerate()
                .map(|(i, &t)| Addressed {
                    business_type: t,
                    at: T0 + i as i64 * MIN,
                })
                .collect(),
            ..History::default()
        }
    }

    fn with(mut h: History, reports: &[(StatusCode, i64, Option<u8>)]) -> History {
        h.reports = reports
            .iter()
            .map(|&(code, at, on)| Reported { code, at, on })
            .collect();
        h
    }

    fn local(code: StatusCode, on: u8) -> Report {
        Report {
            code,
            at: T0 + 100 * MIN,
            by_sender: false,
            on: Some(on),
            complete: true,
            now: T0 + 100 * MIN,
        }
    }

    fn received(code: StatusCode, at: i64) -> Report {
        Report {
            code,
            at,
            by_sender: false,
            on: None,
            complete: false,
            now: T0 + 100 * MIN,
        }
    }

    fn out_of_order(r: Result<Effects, Refusal>) -> bool {
        matches!(r, Err(Refusal::OutOfOrder(_)))
    }

    /// The processing progression for a report made here: (history, code, accepted?).
    #[test]
    fn processing_table_for_a_local_report() {
        let m = |i: i64| T0 + i * MIN;
        let table: &[(&[StatusCode], StatusCode, bool)] = &[
            (&[], Registered, true),
            (&[], Rejected, true),
            (&[], Assigned, false),
            (&[], Finished, false),
            (&[], Arrived, false),
            (&[Registered], Assigned, true),
            (&[Registered], Finished, true),
            (&[Registered], Rejected, false),
            (&[Registered], Registered, false),
            (&[Registered, Assigned], Processing, true),
            (&[Registered, Assigned, Processing], Finished, true),
            (&[Registered, Finished], Registered, false),
            (&[Registered, Finished], Rejected, false),
            (&[Registered, Finished], Processing, false),
            (&[Registered, Finished], Assigned, false),
            (&[Rejected], Registered, false),
            (&[Rejected], Rejected, false),
            (&[Rejected], Finished, false),
        ];
        for (earlier, code, ok) in table {
            let reports: Vec<_> = earlier
                .iter()
                .enumerate()
                .map(|(i, c)| (*c, m(i as i64 + 1), Some(0)))
                .collect();
            let h = with(doc(&[0]), &reports);
            let r = check_status(&h, &local(*code, 0));
            assert_eq!(r.is_ok(), *ok, "{earlier:?} then {code}: {r:?}");
            if !ok {
                assert!(out_of_order(r), "{earlier:?} then {code}");
            }
        }
    }

    /// A received report may overtake one in transit, but never contradict the order.
    #[test]
    fn processing_table_for_a_received_report() {
        let m = |i: i64| T0 + i * MIN;
        // (earlier reports with their minute, the code, its minute, accepted?)
        type Row = (&'static [(StatusCode, i64)], StatusCode, i64, bool);
        let table: &[Row] = &[
            // 04 before its 03 arrives, then the 03 dated earlier.
            (&[], Assigned, 2, true),
            (&[(Assigned, 2)], Registered, 1, true),
            // The same second: ordered by rank.
            (&[(Registered, 2)], Assigned, 2, true),
            // 03 dated after 06, 02 after 06 (either date), 02 with 03 anywhere.
            (&[(Registered, 1), (Finished, 3)], Registered, 4, false),
            (&[(Registered, 1), (Finished, 3)], Processing, 4, false),
            (&[(Registered, 1), (Finished, 3)], Rejected, 4, false),
            (&[(Registered, 1), (Finished, 3)], Rejected, 0, false),
            (&[(Finished, 3)], Processing, 2, true),
            (&[(Finished, 3)], Processing, 5, false),
            (&[(Rejected, 1)], Registered, 2, false),
            (&[(Rejected, 1)], Registered, 0, false),
            (&[(Registered, 1)], Registered, 2, false),
            // 01 as a package: only before everything else.
            (&[], Arrived, 0, true),
            (&[(Registered, 1)], Arrived, 2, false),
        ];
        for (earlier, code, at, ok) in table {
            let reports: Vec<_> = earlier.iter().map(|(c, i)| (*c, m(*i), None)).collect();
            let h = with(doc(&[0]), &reports);
            let r = check_status(&h, &received(*code, m(*at)));
            assert_eq!(r.is_ok(), *ok, "{earlier:?} then {code} at {at}: {r:?}");
        }
    }

    #[test]
    fn who_may_report() {
        // A third agency (nothing was sent to it) and the sender itself.
        let nobody = doc(&[]);
        for code in [Rejected, Registered, Finished, TakeBackAgreed] {
            let r = check_status(&nobody, &received(code, T0 + MIN));
            assert!(matches!(r, Err(Refusal::NotRecipient(_))), "{code}: {r:?}");
            let mut by_sender = received(code, T0 + MIN);
            by_sender.by_sender = true;
            let r = check_status(&nobody, &by_sender);
            assert!(matches!(r, Err(Refusal::NotRecipient(_))), "{code}: {r:?}");
        }
        // 13 from the sender only.
        let r = check_status(&doc(&[0]), &received(TakeBackRequested, T0 + MIN));
        assert!(matches!(r, Err(Refusal::NotRecipient(_))), "{r:?}");
        let mut from_sender = received(TakeBackRequested, T0 + MIN);
        from_sender.by_sender = true;
        assert!(check_status(&nobody, &from_sender).is_ok());
        // An unknown document.
        let r = check_status(&History::default(), &received(Registered, T0));
        assert_eq!(r, Err(Refusal::UnknownDocument));
    }

    #[test]
    fn unassigned_codes_join_the_history_and_order_nothing() {
        let h = with(doc(&[0]), &[(Finished, T0 + MIN, None)]);
        assert_eq!(
            check_status(&h, &received(Unassigned(7), T0 + 2 * MIN)),
            Ok(Effects::default())
        );
        let r = check_status(&doc(&[]), &received(Unassigned(14), T0 + MIN));
        assert!(matches!(r, Err(Refusal::NotRecipient(_))), "{r:?}");
        // Nor do they count as an earlier step.
        let h = with(doc(&[0]), &[(Unassigned(9), T0 + MIN, None)]);
        assert!(check_status(&h, &local(Registered, 0)).is_ok());
    }

    #[test]
    fn timestamps_outside_the_window_are_refused() {
        let h = doc(&[0]);
        let now = T0 + 100 * MIN;
        assert!(check_status(&h, &received(Registered, now + SKEW_MS)).is_ok());
        let r = check_status(&h, &received(Registered, now + SKEW_MS + 1000));
        assert!(matches!(r, Err(Refusal::Timestamp(_))), "{r:?}");
        let r = check_status(&h, &received(Registered, now + 365 * 24 * 60 * MIN));
        assert!(matches!(r, Err(Refusal::Timestamp(_))), "{r:?}");
        assert!(check_status(&h, &received(Registered, T0 - SKEW_MS)).is_ok());
        let r = check_status(&h, &received(Registered, T0 - SKEW_MS - 1000));
        assert!(matches!(r, Err(Refusal::Timestamp(_))), "{r:?}");
    }

    #[test]
    fn take_back_answers_need_an_outstanding_request() {
        let late = T0 + 50 * MIN;
        // Nothing outstanding: a new document alone.
        for code in [TakeBackAgreed, TakeBackRefused] {
            assert!(out_of_order(check_status(&doc(&[0]), &local(code, 0))));
            assert!(out_of_order(check_status(
                &doc(&[0]),
                &received(code, late)
            )));
        }
        // A revocation: answered once; 15 revokes, 16 does not.
        let h = doc(&[0, 1]);
        let e = check_status(&h, &local(TakeBackAgreed, 1)).unwrap();
        assert!(e.revokes);
        assert_eq!(e.answers, Some(Request::Revocation));
        assert!(
            !check_status(&h, &local(TakeBackRefused, 1))
                .unwrap()
                .revokes
        );
        for first in [TakeBackAgreed, TakeBackRefused] {
            let answered = with(doc(&[0, 1]), &[(first, late, Some(1))]);
            for again in [TakeBackAgreed, TakeBackRefused] {
                assert!(out_of_order(check_status(&answered, &local(again, 1))));
                assert!(out_of_order(check_status(
                    &answered,
                    &received(again, late)
                )));
            }
        }
        // An answer on the wrong item: the update was not sent.
        assert!(out_of_order(check_status(&h, &local(TakeBackAgreed, 2))));
        // 15 on the original item only answers a 13.
        assert!(out_of_order(check_status(&h, &local(TakeBackAgreed, 0))));
        let mut asked = doc(&[0]);
        asked.take_back_requests.push(T0 + MIN);
        let e = check_status(&asked, &local(TakeBackAgreed, 0)).unwrap();
        assert!(e.revokes);
        // An update: agreeing does not revoke; a second answer is refused.
        let h = doc(&[0, 2]);
        let e = check_status(&h, &local(TakeBackAgreed, 2)).unwrap();
        assert!(!e.revokes);
        let answered = with(doc(&[0, 2]), &[(TakeBackAgreed, late, Some(2))]);
        assert!(out_of_order(check_status(
            &answered,
            &local(TakeBackRefused, 2)
        )));
        // A replacement is its own request.
        let h = doc(&[3]);
        assert_eq!(
            check_status(&h, &local(TakeBackAgreed, 3)).unwrap().answers,
            Some(Request::Replacement)
        );
        let answered = with(doc(&[3]), &[(TakeBackRefused, late, None)]);
        assert!(out_of_order(check_status(
            &answered,
            &local(TakeBackAgreed, 3)
        )));
        // Update then revocation: each answered once, by item.
        let both = with(doc(&[0, 2, 1]), &[(TakeBackAgreed, late, Some(2))]);
        assert!(
            check_status(&both, &local(TakeBackAgreed, 1))
                .unwrap()
                .revokes
        );
        assert!(out_of_order(check_status(&both, &local(TakeBackAgreed, 2))));
    }

    /// An update, then a revocation: the recipient refuses the revocation (16) and agrees to the
    /// update (15). The packages do not say which they answer, so the sender's node matches them
    /// to the oldest open request — a guess, which must not make the document look revoked and
    /// refuse the recipient's later processing.
    #[test]
    fn received_answers_that_could_answer_either_request_revoke_nothing() {
        let both = with(
            doc(&[0, 2, 1]),
            &[
                (Registered, T0 + 4 * MIN, Some(0)),
                (TakeBackRefused, T0 + 10 * MIN, None),
                (TakeBackAgreed, T0 + 11 * MIN, None),
            ],
        );
        assert!(check_status(&both, &received(Processing, T0 + 12 * MIN)).is_ok());
        let first = with(doc(&[0, 2, 1]), &[(TakeBackRefused, T0 + 10 * MIN, None)]);
        let effects = check_status(&first, &received(TakeBackAgreed, T0 + 11 * MIN)).unwrap();
        assert!(!effects.revokes, "{effects:?}");
        // With one kind of request only, the answer is certain, and agreeing revokes.
        let one = doc(&[0, 1]);
        let effects = check_status(&one, &received(TakeBackAgreed, T0 + 11 * MIN)).unwrap();
        assert!(effects.revokes, "{effects:?}");
    }

    #[test]
    fn processing_is_about_the_document_itself() {
        // Not on a revocation item; not on an update item when the document is held.
        for code in [Registered, Rejected, Finished] {
            assert!(out_of_order(check_status(&doc(&[0, 1]), &local(code, 1))));
            assert!(out_of_order(check_status(&doc(&[0, 2]), &local(code, 2))));
        }
        // An update is the only copy of a recipient it added: it is processed.
        assert!(check_status(&doc(&[2]), &local(Registered, 2)).is_ok());
        // A replacement is processed like a new document.
        assert!(check_status(&doc(&[3]), &local(Registered, 3)).is_ok());
        // After agreeing to revoke: nothing more.
        let late = T0 + 50 * MIN;
        let revoked = with(
            doc(&[0, 1]),
            &[
                (Registered, T0 + 2 * MIN, Some(0)),
                (TakeBackAgreed, late, Some(1)),
            ],
        );
        assert!(out_of_order(check_status(&revoked, &local(Finished, 0))));
        assert!(out_of_order(check_status(
            &revoked,
            &received(Finished, late + MIN)
        )));
        // After refusing to revoke: processing goes on.
        let kept = with(
            doc(&[0, 1]),
            &[
                (Registered, T0 + 2 * MIN, Some(0)),
                (TakeBackRefused, late, Some(1)),
            ],
        );
        assert!(check_status(&kept, &local(Finished, 0)).is_ok());
    }

    #[test]
    fn follow_ups() {
        assert!(check_follow_up(&[0], 1).is_ok());
        assert!(check_follow_up(&[0], 2).is_ok());
        assert!(check_follow_up(&[0, 2], 1).is_ok());
        assert!(check_follow_up(&[0, 1], 1).is_err());
        assert!(check_follow_up(&[0, 1], 2).is_err());
        assert!(check_follow_up(&[0, 2], 2).is_err());
        assert!(check_follow_up(&[0, 1, 2], 0).is_ok());
    }
}
