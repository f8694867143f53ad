//! Agency identifiers (`OrganId`, Decision 20/2020/QĐ-TTg; EDXML.md §1).
//!
//! The canonical shape is `DDD.DD.DD.LNN` read right to left: `LNN` is the level-1 unit (a
//! ministry `G..` or a province `H..`), then levels 2, 3 and 4; unused levels are zero. This node
//! writes only that shape for codes it issues, but real traffic carries other shapes
//! (`vxp.saas.03`, `00.22.W00`, `001.00.20.TT2`), so a second, opaque form exists that keeps the
//! text and answers no hierarchy questions. Which form a value has is visible through
//! [`OrganId::is_standard`], so nothing non-standard passes unnoticed.

use std::fmt;
use std::str::FromStr;

use crate::error::{Code, FormatError};

/// Longest non-standard code accepted on receive (EDXML.md §1).
pub const MAX_LENIENT_LEN: usize = 50;
/// Length of the canonical shape `DDD.DD.DD.LNN`.
pub const STANDARD_LEN: usize = 13;

/// An agency code. Equality, ordering and hashing are those of the text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrganId {
    text: String,
    // Derived from `text`, so the derived Eq/Hash/Ord stay those of the text.
    standard: bool,
}

impl OrganId {
    /// Parses the canonical shape only. Used for codes this node issues and writes as a sender.
    pub fn parse_strict(s: &str) -> Result<OrganId, FormatError> {
        if is_standard_shape(s) {
            Ok(OrganId {
                text: s.to_owned(),
                standard: true,
            })
        } else {
            Err(FormatError::new(
                Code::OrganIdInvalid,
                "(OrganId)",
                format!("{s:?} is not of the shape DDD.DD.DD.LNN (e.g. 000.00.00.H21)"),
            ))
        }
    }

    /// Accepts the canonical shape and, flagged as non-standard, any non-empty code of at most
    /// 50 characters without whitespace or control characters — what peers are seen to send.
    pub fn parse_lenient(s: &str) -> Result<OrganId, FormatError> {
        if is_standard_shape(s) {
            return Ok(OrganId {
                text: s.to_owned(),
                standard: true,
            });
        }
        let problem = if s.is_empty() {
            Some("empty".to_owned())
        } else if s.chars().count() > MAX_LENIENT_LEN {
            Some(format!("longer than {MAX_LENIENT_LEN} characters"))
        } else if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            Some(format!("{s:?} contains whitespace or control characters"))
        } else {
            None
        };
        match problem {
            Some(p) => Err(FormatError::new(Code::OrganIdInvalid, "(OrganId)", p)),
            None => Ok(OrganId {
                text: s.to_owned(),
                standard: false,
            }),
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the code has the canonical shape `DDD.DD.DD.LNN`. Hierarchy queries
    /// ([`level`](Self::level), [`parent`](Self::parent), [`unit`](Self::unit)) only work on
    /// standard codes.
    pub fn is_standard(&self) -> bool {
        self.standard
    }

    /// The level-1 unit, e.g. `H21` for anything in Gia Lai. `None` for a non-standard code.
    pub fn unit(&self) -> Option<&str> {
        self.standard.then(|| &self.text[10..13])
    }

    /// The level of the code, 1 (a province or ministry) to 4: the lowest level that is not zero.
    /// `None` for a non-standard code.
    pub fn level(&self) -> Option<u8> {
        if !self.standard {
            return None;
        }
        let [l4, l3, l2] = self.fields();
        Some(if l4 != "000" {
            4
        } else if l3 != "00" {
            3
        } else if l2 != "00" {
            2
        } else {
            1
        })
    }

    /// The parent agency, found by zeroing the lowest used level (`000.03.05.H21` →
    /// `000.00.05.H21` → `000.00.00.H21`). `None` at level 1 and for non-standard codes.
    pub fn parent(&self) -> Option<OrganId> {
        let level = self.level()?;
        let mut text = self.text.clone();
        let range = match level {
            4 => 0..3,
            3 => 4..6,
            2 => 7..9,
            _ => return None,
        };
        let zeros = "0".repeat(range.len());
        text.replace_range(range, &zeros);
        Some(OrganId {
            text,
            standard: true,
        })
    }

    /// True when `self` is `other` or a descendant of it (`000.03.05.H21` is within
    /// `000.00.05.H21` and within `000.00.00.H21`, and within itself). A non-standard code is
    /// only within itself.
    pub fn is_within(&self, other: &OrganId) -> bool {
        if self == other {
            return true;
        }
        let mut cur = self.parent();
        while let Some(p) = cur {
            if &p == other {
                return true;
            }
            cur = p.parent();
        }
        false
    }

    /// Levels 4, 3 and 2 as text (only for standard codes).
    fn fields(&self) -> [&str; 3] {
        [&self.text[0..3], &self.text[4..6], &self.text[7..9]]
    }
}

/// `DDD.DD.DD.LNN` with `L` an ASCII uppercase letter.
fn is_standard_shape(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != STANDARD_LEN {
        return false;
    }
    b.iter().enumerate().all(|(i, &c)| match i {
        3 | 6 | 9 => c == b'.',
        10 => c.is_ascii_uppercase(),
        _ => c.is_ascii_digit(),
    })
}

impl fmt::Display for OrganId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Lenient, like everything that reads codes from outside; use
/// [`OrganId::parse_strict`] for codes this node issues.
impl FromStr for OrganId {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrganId::parse_lenient(s)
    }
}

impl AsRef<str> for OrganId {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl serde::Serialize for OrganId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for OrganId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        OrganId::parse_lenient(&s).map_err(|e| serde::de::Error::custom(e.problem))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> OrganId {
        OrganId::parse_strict(s).unwrap()
    }

    #[test]
    fn strict_shape() {
        for ok in ["000.00.00.H21", "012.03.05.H21", "000.00.00.G22"] {
            assert!(OrganId::parse_strict(ok).unwrap().is_standard());
        }
        for bad in [
            "",
            "000.00.00.h21",
            "000.00.00.H2",
            "000.00.00.H211",
            "00.22.W00",
            "000-00-00-H21",
            "000.00.00.121",
            " 000.00.00.H21",
            "vxp.saas.03",
            "001.00.20.TT2",
        ] {
            let e = OrganId::parse_strict(bad).unwrap_err();
            assert_eq!(e.code, Code::OrganIdInvalid, "{bad}");
        }
    }

    #[test]
    fn lenient_form() {
        for odd in ["vxp.saas.03", "00.22.W00", "001.00.20.TT2", "000.00.00.h21"] {
            let o = OrganId::parse_lenient(odd).unwrap();
            assert!(!o.is_standard());
            assert_eq!(o.level(), None);
            assert_eq!(o.parent(), None);
            assert_eq!(o.unit(), None);
            assert!(o.is_within(&o));
        }
        for bad in ["", "a b", "a\tb", "x\u{7}", &"a".repeat(51)] {
            assert_eq!(
                OrganId::parse_lenient(bad).unwrap_err().code,
                Code::OrganIdInvalid
            );
        }
        assert!(OrganId::parse_lenient(&"a".repeat(50)).is_ok());
        assert!(
            OrganId::parse_lenient("000.00.00.H21")
                .unwrap()
                .is_standard()
        );
    }

    #[test]
    fn hierarchy() {
        let l4 = id("012.03.05.H21");
        let l3 = id("000.03.05.H21");
        let l2 = id("000.00.05.H21");
        let l1 = id("000.00.00.H21");
        assert_eq!(l4.level(), Some(4));
        assert_eq!(l3.level(), Some(3));
        assert_eq!(l2.level(), Some(2));
        assert_eq!(l1.level(), Some(1));
        assert_eq!(l4.parent(), Some(l3.clone()));
        assert_eq!(l3.parent(), Some(l2.clone()));
        assert_eq!(l2.parent(), Some(l1.clone()));
        assert_eq!(l1.parent(), None);
        assert_eq!(l4.unit(), Some("H21"));
        assert!(l4.is_within(&l1) && l4.is_within(&l2) && l4.is_within(&l4));
        assert!(!l1.is_within(&l2));
        assert!(!l2.is_within(&id("000.00.05.H41")));
        assert!(!id("000.00.06.H21").is_within(&l2));
        // A level-4 code whose level 3 is unused goes straight to level 2.
        assert_eq!(id("012.00.05.H21").parent(), Some(l2));
    }

    #[test]
    fn text_forms() {
        let o: OrganId = "000.00.05.H21".parse().unwrap();
        assert_eq!(o.to_string(), "000.00.05.H21");
        assert_eq!(serde_json::to_string(&o).unwrap(), "\"000.00.05.H21\"");
        let back: OrganId = serde_json::from_str("\"vxp.saas.03\"").unwrap();
        assert!(!back.is_standard());
        assert!(serde_json::from_str::<OrganId>("\"\"").is_err());
    }
}
