//! How the console writes dates and numbers: as Vietnamese officials read them — `dd/mm/yyyy`
//! in Vietnam's time (UTC+7, no daylight saving), thousands separated by `.` (100.000).

use time::{OffsetDateTime, UtcOffset};

/// Vietnam's offset from UTC.
pub const VIETNAM: UtcOffset = match UtcOffset::from_hms(7, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

fn at(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .map(|t| t.to_offset(VIETNAM))
}

/// `dd/mm/yyyy` of a store timestamp (Unix ms), in Vietnam's time.
pub fn date(ms: i64) -> String {
    at(ms).map_or_else(
        || "—".to_owned(),
        |t| format!("{:02}/{:02}/{}", t.day(), u8::from(t.month()), t.year()),
    )
}

/// `dd/mm/yyyy HH:MM` of a store timestamp (Unix ms), in Vietnam's time.
pub fn date_time(ms: i64) -> String {
    at(ms).map_or_else(
        || "—".to_owned(),
        |t| {
            format!(
                "{:02}/{:02}/{} {:02}:{:02}",
                t.day(),
                u8::from(t.month()),
                t.year(),
                t.hour(),
                t.minute()
            )
        },
    )
}

/// A whole number with `.` between thousands: `100000` → `100.000`.
pub fn number(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}

/// A duration in words (`3 ngày 4 giờ`, `12 phút`, `dưới 1 phút`).
pub fn age(ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (d, h, m) {
        (0, 0, 0) => "dưới 1 phút".to_owned(),
        (0, 0, m) => format!("{m} phút"),
        (0, h, m) => format!("{h} giờ {m} phút"),
        (d, h, _) => format!("{d} ngày {h} giờ"),
    }
}

/// A `dd/mm/yyyy` (or `yyyy-mm-dd`, as a date input sends it) typed into a filter, as the
/// Unix ms of that day's start in Vietnam's time.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let (d, m, y) = if let Some((y, rest)) = s.split_once('-') {
        let (m, d) = rest.split_once('-')?;
        (d, m, y)
    } else {
        let mut it = s.split('/');
        let (d, m, y) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        (d, m, y)
    };
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let day = time::Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()?;
    let start = day.midnight().assume_offset(VIETNAM);
    i64::try_from(start.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midnight_in_vietnam_is_the_next_day_already() {
        // 2026-12-06T17:00:00Z is 07/12/2026 00:00 in Vietnam.
        let ms = 1_796_576_400_000;
        assert_eq!(date(ms), "07/12/2026");
        assert_eq!(date_time(ms), "07/12/2026 00:00");
        assert_eq!(date(ms - 1), "06/12/2026");
        assert_eq!(parse_date("07/12/2026"), Some(ms));
        assert_eq!(parse_date("2026-12-07"), Some(ms));
        assert_eq!(parse_date("31/02/2026"), None);
        assert_eq!(parse_date("7/12"), None);
    }

    #[test]
    fn numbers_take_dots_between_thousands() {
        assert_eq!(number(0), "0");
        assert_eq!(number(999), "999");
        assert_eq!(number(1000), "1.000");
        assert_eq!(number(100_000), "100.000");
        assert_eq!(number(1_234_567), "1.234.567");
    }

    #[test]
    fn ages_read_in_words() {
        assert_eq!(age(10_000), "dưới 1 phút");
        assert_eq!(age(12 * 60_000), "12 phút");
        assert_eq!(age(125 * 60_000), "2 giờ 5 phút");
        assert_eq!(age((3 * 1440 + 4 * 60) * 60_000), "3 ngày 4 giờ");
    }
}
