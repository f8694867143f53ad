//! Dates and timestamps as edXML writes them: `yyyy/MM/dd` and `yyyy/MM/dd HH:mm:ss`, Vietnam
//! local time (UTC+7, no offset written).
//!
//! Written strictly; read leniently (`-` separators, a `T` between date and time, a time part
//! after a date, and the day-first `dd/MM/yyyy` that Bkav's writer emits), with [`Leniency`]
//! telling the caller that the text was not canonical so it can flag it, and [`form_of`] naming
//! the form it was in. Day-first and year-first cannot be confused: the four-digit year is either
//! the first or the last field, and month-first is not a Vietnamese form.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Vietnam's UTC offset (no daylight saving time).
pub const VIETNAM_OFFSET: UtcOffset = match UtcOffset::from_hms(7, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

/// Whether a parsed value was in the canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leniency {
    /// Exactly the canonical form.
    Canonical,
    /// Accepted, but not in the canonical form (the caller should flag it).
    Tolerated,
}

/// The Vietnam local time of `t`, as edXML timestamps carry it. Use with
/// `OffsetDateTime::now_utc()` to stamp a new package.
pub fn vietnam_time(t: OffsetDateTime) -> PrimitiveDateTime {
    let local = t.to_offset(VIETNAM_OFFSET);
    PrimitiveDateTime::new(local.date(), local.time())
}

/// `yyyy/MM/dd`. Only years 1–9999 can be written; see [`check_year`].
pub fn format_date(d: Date) -> String {
    format!("{:04}/{:02}/{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `yyyy/MM/dd HH:mm:ss` (sub-second precision is dropped).
pub fn format_timestamp(t: PrimitiveDateTime) -> String {
    format!(
        "{} {:02}:{:02}:{:02}",
        format_date(t.date()),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Whether the year of `d` fits the four-digit form.
pub fn check_year(d: Date) -> Result<(), String> {
    if (1..=9999).contains(&d.year()) {
        Ok(())
    } else {
        Err(format!(
            "year {} cannot be written as four digits",
            d.year()
        ))
    }
}

/// The form `s` is written in, for a warning: `dd/MM/yyyy HH:mm:ss`, `yyyy-MM-dd`, … (digits
/// replaced by the field they stand for; only meaningful for text the parsers accepted).
pub fn form_of(s: &str) -> String {
    let b = s.as_bytes();
    let day_first = b.len() >= 10 && b[2] == b'/' && b[5] == b'/';
    let date_fields: &[u8] = if day_first {
        b"dd/MM/yyyy"
    } else {
        b"yyyy/MM/dd"
    };
    let time_fields = b"HH:mm:ss";
    s.bytes()
        .enumerate()
        .map(|(i, c)| {
            if !c.is_ascii_digit() {
                return c as char;
            }
            match i {
                0..=9 => date_fields[i] as char,
                11..=18 => time_fields[i - 11] as char,
                _ => '9',
            }
        })
        .collect()
}

/// The date forms [`parse_date`] accepts, the standard's first: the one list both languages name
/// when a date is refused, so the messages cannot drift from the parser.
pub const DATE_FORMS: [&str; 3] = ["yyyy/MM/dd", "yyyy-MM-dd", "dd/MM/yyyy"];

/// [`DATE_FORMS`] as a message lists them: `yyyy/MM/dd, yyyy-MM-dd, dd/MM/yyyy`.
pub fn date_forms() -> String {
    DATE_FORMS.join(", ")
}

/// What a refused date should have been, in Vietnamese (for `Problem::Expected`).
pub fn date_expected_vi() -> String {
    format!(
        "ngày theo một trong các dạng {} (ví dụ 2026/11/25)",
        date_forms()
    )
}

fn not_a_date(s: &str) -> String {
    format!("{s:?} is not a date (one of {})", date_forms())
}

/// Parses `yyyy/MM/dd`; also `yyyy-MM-dd` and the day-first `dd/MM/yyyy`, each possibly followed
/// by a time part (ignored), as [`Leniency::Tolerated`].
pub fn parse_date(s: &str) -> Result<(Date, Leniency), String> {
    let b = s.as_bytes();
    if b.len() < 10 {
        return Err(not_a_date(s));
    }
    let d = date_part(&b[..10]).ok_or_else(|| not_a_date(s))?;
    let canonical = b[4] == b'/';
    if b.len() == 10 {
        return Ok((d, leniency(canonical)));
    }
    // A time part after the date: "2019/02/27 00:00:00", "2019-02-27T00:00:00+07:00".
    if matches!(b[10], b' ' | b'T') && b[11..].iter().all(|c| c.is_ascii_graphic()) {
        return Ok((d, Leniency::Tolerated));
    }
    Err(not_a_date(s))
}

/// Parses `yyyy/MM/dd HH:mm:ss`; also with `-` date separators and/or `T` between date and
/// time, or day-first (`dd/MM/yyyy HH:mm:ss`), as [`Leniency::Tolerated`].
pub fn parse_timestamp(s: &str) -> Result<(PrimitiveDateTime, Leniency), String> {
    let err = || format!("{s:?} is not a timestamp (yyyy/MM/dd HH:mm:ss)");
    let b = s.as_bytes();
    if b.len() != 19 || !matches!(b[10], b' ' | b'T') {
        return Err(err());
    }
    let d = date_part(&b[..10]).ok_or_else(err)?;
    let t = &b[11..];
    if t[2] != b':' || t[5] != b':' {
        return Err(err());
    }
    let h = digits(&t[0..2]).ok_or_else(err)?;
    let m = digits(&t[3..5]).ok_or_else(err)?;
    let sec = digits(&t[6..8]).ok_or_else(err)?;
    let time = Time::from_hms(h as u8, m as u8, sec as u8).map_err(|_| err())?;
    let canonical = b[4] == b'/' && b[10] == b' ';
    Ok((PrimitiveDateTime::new(d, time), leniency(canonical)))
}

fn leniency(canonical: bool) -> Leniency {
    if canonical {
        Leniency::Canonical
    } else {
        Leniency::Tolerated
    }
}

/// `yyyy/MM/dd` or `yyyy-MM-dd` (the same separator twice), or day-first `dd/MM/yyyy`.
fn date_part(b: &[u8]) -> Option<Date> {
    if b.len() != 10 {
        return None;
    }
    let (y, m, d) = if matches!(b[4], b'/' | b'-') && b[7] == b[4] {
        (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?)
    } else if b[2] == b'/' && b[5] == b'/' {
        (digits(&b[6..10])?, digits(&b[3..5])?, digits(&b[0..2])?)
    } else {
        return None;
    };
    let month = Month::try_from(m as u8).ok()?;
    Date::from_calendar_date(y as i32, month, d as u8).ok()
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0')))
}

/// `serialize_with` helpers: the model prints dates as edXML writes them.
pub(crate) mod ser {
    use serde::Serializer;
    use time::{Date, PrimitiveDateTime};

    pub fn date<S: Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_date(*d))
    }

    pub fn opt_date<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_date(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn timestamp<S: Serializer>(t: &PrimitiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_timestamp(*t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("2019/02/27").unwrap(),
            (date!(2019 - 02 - 27), Leniency::Canonical)
        );
        assert_eq!(
            parse_date("2019-02-27").unwrap(),
            (date!(2019 - 02 - 27), Leniency::Tolerated)
        );
        assert_eq!(
            parse_date("2019/02/27 00:00:00").unwrap(),
            (date!(2019 - 02 - 27), Leniency::Tolerated)
        );
        for bad in [
            "",
            "2019/2/27",
            "2019/02/30",
            "2019-02/27",
            "27/2/2019",
            "02/27/2019",
            "2019/27/02",
            "2019/02/27x",
            "2019/13/01",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
        // Bkav writes day first; the four-digit year's position says which is which.
        assert_eq!(
            parse_date("27/02/2019").unwrap(),
            (date!(2019 - 02 - 27), Leniency::Tolerated)
        );
        assert_eq!(
            parse_date("27/02/2019 08:05:09").unwrap(),
            (date!(2019 - 02 - 27), Leniency::Tolerated)
        );
        assert_eq!(form_of("27/02/2019 08:05:09"), "dd/MM/yyyy HH:mm:ss");
        assert_eq!(form_of("2019-02-27"), "yyyy-MM-dd");
        assert_eq!(form_of("2019/02/27 00:00:00"), "yyyy/MM/dd HH:mm:ss");
        assert_eq!(format_date(date!(2019 - 02 - 07)), "2019/02/07");
        assert!(check_year(date!(0000 - 01 - 01)).is_err());
    }

    #[test]
    fn timestamps() {
        let t = datetime!(2019-02-27 08:05:09);
        assert_eq!(
            parse_timestamp("2019/02/27 08:05:09").unwrap(),
            (t, Leniency::Canonical)
        );
        assert_eq!(
            parse_timestamp("2019-02-27T08:05:09").unwrap(),
            (t, Leniency::Tolerated)
        );
        assert!(parse_timestamp("2019/02/27 24:00:00").is_err());
        assert!(parse_timestamp("2019/02/27 8:05:09").is_err());
        assert!(parse_timestamp("2019/02/27").is_err());
        assert_eq!(
            parse_timestamp("27/02/2019 08:05:09").unwrap(),
            (t, Leniency::Tolerated)
        );
        assert!(parse_timestamp("27-02-2019 08:05:09").is_err());
        assert_eq!(format_timestamp(t), "2019/02/27 08:05:09");
        let utc = datetime!(2019-02-27 20:00:00 UTC);
        assert_eq!(vietnam_time(utc), datetime!(2019-02-28 03:00:00));
    }
}
