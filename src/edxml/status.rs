//! Business status codes carried by status packages (EDXML.md §3).
//!
//! Nine codes are assigned. 07–12 and 14 are unassigned: the reader keeps them (flagged) when
//! reading leniently, because peers do send them, and the writer refuses them, because this node
//! must not invent meanings. Anything else (00, 17+, non-digits) is refused everywhere.

use std::fmt;

use crate::error::{Code, FormatError};

/// A processing status of a document at a recipient (or a sender's request, for 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusCode {
    /// 01 — arrived in the recipient's system, not yet handled (sent automatically on arrival).
    Arrived,
    /// 02 — rejected by the recipient's clerk; the reason is in `Description`. Final.
    Rejected,
    /// 03 — accepted and registered in the incoming book (vào sổ).
    Registered,
    /// 04 — assigned for handling by a leader.
    Assigned,
    /// 05 — being processed.
    Processing,
    /// 06 — processing finished. Final.
    Finished,
    /// 13 — the original sender asks to take the document back (revocation, update, replacement).
    TakeBackRequested,
    /// 15 — the recipient agrees to the revocation/update/replacement.
    TakeBackAgreed,
    /// 16 — the recipient refuses it.
    TakeBackRefused,
    /// 07–12 or 14: unassigned. Only produced by a lenient read; never written.
    Unassigned(u8),
}

/// Who sends a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusSender {
    /// The recipient of the document.
    Recipient,
    /// The original sender of the document (only 13).
    OriginalSender,
}

impl StatusCode {
    /// The nine assigned codes, in numeric order.
    pub const ASSIGNED: [StatusCode; 9] = [
        StatusCode::Arrived,
        StatusCode::Rejected,
        StatusCode::Registered,
        StatusCode::Assigned,
        StatusCode::Processing,
        StatusCode::Finished,
        StatusCode::TakeBackRequested,
        StatusCode::TakeBackAgreed,
        StatusCode::TakeBackRefused,
    ];

    /// The codes a recipient's clerk reports (01 is sent on arrival, 13 by the sender): the one
    /// list that a refusal names, in English and in Vietnamese alike.
    pub const CLERK_REPORTS: [StatusCode; 7] = [
        StatusCode::Rejected,
        StatusCode::Registered,
        StatusCode::Assigned,
        StatusCode::Processing,
        StatusCode::Finished,
        StatusCode::TakeBackAgreed,
        StatusCode::TakeBackRefused,
    ];

    /// `codes` in their wire form, comma-separated (`02, 03, 04`): how messages list them.
    pub fn list(codes: &[StatusCode]) -> String {
        codes
            .iter()
            .map(|c| c.as_wire())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The numeric value (1 for 01).
    pub fn number(self) -> u8 {
        match self {
            StatusCode::Arrived => 1,
            StatusCode::Rejected => 2,
            StatusCode::Registered => 3,
            StatusCode::Assigned => 4,
            StatusCode::Processing => 5,
            StatusCode::Finished => 6,
            StatusCode::TakeBackRequested => 13,
            StatusCode::TakeBackAgreed => 15,
            StatusCode::TakeBackRefused => 16,
            StatusCode::Unassigned(n) => n,
        }
    }

    /// The wire form, two digits (`"01"`).
    pub fn as_wire(self) -> String {
        format!("{:02}", self.number())
    }

    /// From a number: the assigned codes, `Unassigned` for 7–12 and 14, `None` otherwise.
    pub fn from_number(n: u8) -> Option<StatusCode> {
        Some(match n {
            1 => StatusCode::Arrived,
            2 => StatusCode::Rejected,
            3 => StatusCode::Registered,
            4 => StatusCode::Assigned,
            5 => StatusCode::Processing,
            6 => StatusCode::Finished,
            13 => StatusCode::TakeBackRequested,
            15 => StatusCode::TakeBackAgreed,
            16 => StatusCode::TakeBackRefused,
            7..=12 | 14 => StatusCode::Unassigned(n),
            _ => return None,
        })
    }

    /// Parses the wire form: one or two digits (`"01"`, leniently `"1"`). Unassigned codes come
    /// back as [`StatusCode::Unassigned`]; the caller decides whether to accept them. Anything
    /// outside 1–16 is `StatusCodeUnknown`.
    pub fn parse(s: &str) -> Result<StatusCode, FormatError> {
        let unknown = || {
            FormatError::new(
                Code::StatusCodeUnknown,
                "(StatusCode)",
                format!("{s:?} is not a status code (01–06, 13, 15, 16)"),
            )
        };
        if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(unknown());
        }
        let n: u8 = s.parse().map_err(|_| unknown())?;
        StatusCode::from_number(n).ok_or_else(unknown)
    }

    /// Parses the wire form and refuses unassigned codes (what this node accepts to write, and
    /// what a strict reader accepts).
    pub fn parse_assigned(s: &str) -> Result<StatusCode, FormatError> {
        let c = StatusCode::parse(s)?;
        if c.is_assigned() {
            Ok(c)
        } else {
            Err(FormatError::new(
                Code::StatusCodeUnknown,
                "(StatusCode)",
                format!("{s:?} is an unassigned status code (07–12, 14)"),
            ))
        }
    }

    /// Whether this is one of the nine assigned codes.
    pub fn is_assigned(self) -> bool {
        !matches!(self, StatusCode::Unassigned(_))
    }

    /// Who is expected to send this code.
    pub fn sender(self) -> StatusSender {
        match self {
            StatusCode::TakeBackRequested => StatusSender::OriginalSender,
            _ => StatusSender::Recipient,
        }
    }

    /// Whether no further processing status follows (02 rejected, 06 finished).
    pub fn is_final(self) -> bool {
        matches!(self, StatusCode::Rejected | StatusCode::Finished)
    }

    /// Whether `self` is a sensible next processing status after `previous` (EDXML.md §3:
    /// 01 → 02 | 03; 03 → 04 → 05 → 06, 04 and 05 may be skipped). Only the processing codes
    /// 01–06 form this progression; for others this answers `false` and the caller decides.
    pub fn may_follow(self, previous: StatusCode) -> bool {
        use StatusCode::*;
        matches!(
            (previous, self),
            (Arrived, Rejected | Registered)
                | (Registered, Assigned | Processing | Finished)
                | (Assigned, Processing | Finished)
                | (Processing, Finished)
        )
    }

    /// What the code means, in the words a clerk reads (the command line's human views).
    pub fn meaning_vi(self) -> &'static str {
        match self {
            StatusCode::Arrived => "Đã đến",
            StatusCode::Rejected => "Từ chối tiếp nhận",
            StatusCode::Registered => "Đã tiếp nhận, vào sổ",
            StatusCode::Assigned => "Đã phân công xử lý",
            StatusCode::Processing => "Đang xử lý",
            StatusCode::Finished => "Đã xử lý xong",
            StatusCode::TakeBackRequested => "Bên gửi đề nghị lấy lại văn bản",
            StatusCode::TakeBackAgreed => "Đồng ý lấy lại, cập nhật hoặc thay thế",
            StatusCode::TakeBackRefused => "Từ chối lấy lại, cập nhật hoặc thay thế",
            StatusCode::Unassigned(_) => "Mã trạng thái chưa được quy định",
        }
    }

    /// A short English description, for logs and listings.
    pub fn meaning(self) -> &'static str {
        match self {
            StatusCode::Arrived => "arrived",
            StatusCode::Rejected => "rejected by the recipient",
            StatusCode::Registered => "accepted and registered",
            StatusCode::Assigned => "assigned for handling",
            StatusCode::Processing => "being processed",
            StatusCode::Finished => "processing finished",
            StatusCode::TakeBackRequested => "sender asks to take the document back",
            StatusCode::TakeBackAgreed => "recipient agrees to the take-back",
            StatusCode::TakeBackRefused => "recipient refuses the take-back",
            StatusCode::Unassigned(_) => "unassigned code",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}", self.number())
    }
}

/// Serialised as the two-digit wire form, e.g. `"01"`.
impl serde::Serialize for StatusCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_wire())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms() {
        for c in StatusCode::ASSIGNED {
            assert_eq!(StatusCode::parse(&c.as_wire()).unwrap(), c);
            assert_eq!(StatusCode::parse_assigned(&c.as_wire()).unwrap(), c);
        }
        assert_eq!(StatusCode::parse("1").unwrap(), StatusCode::Arrived);
        assert_eq!(StatusCode::parse("07").unwrap(), StatusCode::Unassigned(7));
        assert_eq!(StatusCode::parse("14").unwrap(), StatusCode::Unassigned(14));
        for bad in ["", "00", "17", "99", "1a", "001", " 1", "-1"] {
            assert_eq!(
                StatusCode::parse(bad).unwrap_err().code,
                Code::StatusCodeUnknown,
                "{bad:?}"
            );
        }
        assert_eq!(
            StatusCode::parse_assigned("12").unwrap_err().code,
            Code::StatusCodeUnknown
        );
        assert_eq!(StatusCode::Arrived.to_string(), "01");
        assert_eq!(
            serde_json::to_string(&StatusCode::TakeBackAgreed).unwrap(),
            "\"15\""
        );
    }

    #[test]
    fn progression() {
        use StatusCode::*;
        assert!(Registered.may_follow(Arrived));
        assert!(Rejected.may_follow(Arrived));
        assert!(Finished.may_follow(Registered));
        assert!(!Registered.may_follow(Finished));
        assert!(!Processing.may_follow(Rejected));
        assert!(Rejected.is_final() && Finished.is_final() && !Arrived.is_final());
        assert_eq!(TakeBackRequested.sender(), StatusSender::OriginalSender);
    }
}
