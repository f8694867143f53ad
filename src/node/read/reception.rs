//! Chờ tiếp nhận and Chậm tiếp nhận: which documents wait for tiếp nhận (03), and which have
//! waited past the working day they arrived in — Tổng quan's counters and the clerk's list
//! filter behind them, one rule for both.
//!
//! A document waits when it is Đã đến chờ tiếp nhận ([`RecipientState::Arrived`]): received
//! here and not yet received (03) nor returned (02) by the agency, or sent and delivered with
//! nothing past 01 from the recipient. A 01 alone does not stop the clock: on this node a
//! delivery is delivered because the recipient's system answered with its signed 01, so "no 01
//! and no 03" would leave out every document delivered to a peer; tiếp nhận is the 03.
//!
//! It is late once the working day it arrived in (received here; delivered there) has ended:
//! working days are Monday to Friday in Vietnam time (UTC+7); a document arriving on a Saturday
//! or Sunday is due by the end of the next Monday. Public holidays (Tết, 30/4, 2/9 …) are not
//! known to the node: a document arriving the day before a holiday counts as late the next
//! morning.

use super::*;

const DAY_MS: i64 = 86_400_000;
/// Vietnam's offset from UTC (no daylight saving).
const VN_OFFSET_MS: i64 = 7 * 3_600_000;

/// The instant before which a document that still waits is late at `now` (Unix ms): the start,
/// in Vietnam time, of the day `now` falls in — or of the Saturday before, when `now` is a
/// Saturday, Sunday or Monday (what arrived over the weekend is due by the end of Monday).
///
/// Why one instant suffices: a document arriving at `t` is due at the end of `t`'s working day
/// (the end of Monday for a weekend), which never decreases as `t` grows; so the documents
/// overdue at `now` are exactly those that arrived before the first `t` still due after `now`.
pub fn late_before(now: i64) -> i64 {
    let day = (now + VN_OFFSET_MS).div_euclid(DAY_MS);
    // 1 January 1970 was a Thursday: 0 = Monday … 6 = Sunday.
    let weekday = (day + 3).rem_euclid(7);
    let back = match weekday {
        0 => 2, // Monday: back to Saturday
        6 => 1, // Sunday: back to Saturday
        _ => 0, // Tuesday to Saturday: today
    };
    (day - back) * DAY_MS - VN_OFFSET_MS
}

impl<S: Store> Node<S> {
    /// Tổng quan's Chờ tiếp nhận and Chậm tiếp nhận at `now`, for `agency` (a clerk's) or
    /// (`None`) for every agency of the node: one store read each, over indexes that hold only
    /// what waits.
    pub async fn reception(
        &self,
        agency: Option<&str>,
        now: i64,
    ) -> Result<crate::store::ReceptionCounts, Error> {
        self.store.reception_counts(agency, late_before(now)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of a Vietnam-time wall clock.
    fn vn(y: i32, m: u8, d: u8, h: u8, min: u8) -> i64 {
        let month = time::Month::try_from(m).unwrap();
        let date = time::Date::from_calendar_date(y, month, d).unwrap();
        let t = time::Time::from_hms(h, min, 0).unwrap();
        let offset = time::UtcOffset::from_hms(7, 0, 0).unwrap();
        i64::try_from(
            time::PrimitiveDateTime::new(date, t)
                .assume_offset(offset)
                .unix_timestamp_nanos()
                / 1_000_000,
        )
        .unwrap()
    }

    #[test]
    fn a_weekday_s_documents_are_late_from_midnight_vietnam_time() {
        // 8 December 2026 is a Tuesday.
        let tuesday_late = vn(2026, 12, 8, 23, 59);
        let wednesday_early = vn(2026, 12, 9, 0, 1);
        // Wednesday 00:01: Tuesday 23:59 is late, Wednesday 00:01 not.
        let cut = late_before(wednesday_early);
        assert_eq!(cut, vn(2026, 12, 9, 0, 0));
        assert!(tuesday_late < cut);
        assert!(wednesday_early >= cut);
        // Tuesday 23:59 itself: nothing of Tuesday is late yet; Monday's is.
        assert_eq!(late_before(tuesday_late), vn(2026, 12, 8, 0, 0));
        // The boundary is Vietnam's midnight, 17:00 UTC the day before.
        assert_eq!(cut % DAY_MS, 17 * 3_600_000);
    }

    #[test]
    fn what_arrives_over_the_weekend_is_due_by_the_end_of_monday() {
        let saturday = vn(2026, 12, 12, 10, 0);
        let sunday = vn(2026, 12, 13, 22, 0);
        let friday = vn(2026, 12, 11, 23, 59);
        for now in [saturday, sunday, vn(2026, 12, 14, 23, 59)] {
            let cut = late_before(now);
            assert_eq!(cut, vn(2026, 12, 12, 0, 0), "{now}");
            assert!(friday < cut, "Friday's is late from Saturday 00:00");
            assert!(saturday >= cut && sunday >= cut);
        }
        // Tuesday 00:01: the weekend's are late too.
        let cut = late_before(vn(2026, 12, 15, 0, 1));
        assert!(saturday < cut && sunday < cut);
        assert!(vn(2026, 12, 14, 23, 59) < cut);
    }
}
