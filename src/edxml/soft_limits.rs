//! Soft length limits (EDXML.md §2): what receiving systems store in fixed-width columns.
//! The reader warns when a value is longer; the writer refuses, so nothing this node sends gets
//! truncated at the other end. Lengths count characters, not bytes.

/// OrganId (the canonical shape is exactly this long).
pub const ORGAN_ID: usize = 13;
pub const ORGAN_NAME: usize = 200;
pub const CODE_NUMBER: usize = 11;
pub const CODE_NOTATION: usize = 30;
pub const TYPE_NAME: usize = 100;
pub const SUBJECT: usize = 500;
pub const POSITION: usize = 100;
pub const FULL_NAME: usize = 50;
/// Attachment and status `Description`.
pub const DESCRIPTION: usize = 500;
/// All `ToPlaces/Place` texts together.
pub const TO_PLACES: usize = 1000;

/// The length of `value` in characters if it exceeds `max`.
pub fn exceeds(value: &str, max: usize) -> Option<usize> {
    // Cheap first: a string of at most `max` bytes has at most `max` characters.
    if value.len() <= max {
        return None;
    }
    let n = value.chars().count();
    (n > max).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_characters() {
        assert_eq!(exceeds("Ủy ban", 6), None);
        assert_eq!(exceeds("Ủy ban nhân", 6), Some(11));
        assert_eq!(exceeds(&"ễ".repeat(50), FULL_NAME), None);
        assert_eq!(exceeds(&"ễ".repeat(51), FULL_NAME), Some(51));
    }
}
