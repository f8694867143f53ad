//! Document identity (EDXML.md §4): the business `DocumentId`
//! `<sender OrganId>,<yyyy/MM/dd>,<CodeNumber>/<CodeNotation>`, e.g.
//! `000.00.00.H21,2019/02/27,446/UBND-KGVX`.
//!
//! This node writes that form for the documents it issues; readers accept any string because
//! some systems send a UUID.

use time::Date;

use super::dates::format_date;
use super::organ_id::OrganId;

/// The số (number) as written: a leading zero below 10 (`05`, `10`, `446`).
pub fn code_number(n: u32) -> String {
    format!("{n:02}")
}

/// Normalises a number given as text the same way: `"5"` → `"05"`. Anything not purely digits
/// is returned trimmed but otherwise unchanged.
pub fn normalize_code_number(s: &str) -> String {
    let s = s.trim();
    match s.parse::<u32>() {
        Ok(n) if s.bytes().all(|b| b.is_ascii_digit()) && n < 10 => code_number(n),
        _ => s.to_owned(),
    }
}

/// The "số/ký hiệu" as one string, e.g. `446/UBND-KGVX` (what `ResponseFor/Code` carries).
pub fn full_code(number: &str, notation: &str) -> String {
    format!("{}/{}", normalize_code_number(number), notation.trim())
}

/// The DocumentId of a document issued by `from` on `date` with number `number` and notation
/// `notation`: `document_id(&h21, 2019-02-27, 446, "UBND-KGVX")` →
/// `000.00.00.H21,2019/02/27,446/UBND-KGVX`.
pub fn document_id(from: &OrganId, date: Date, number: u32, notation: &str) -> String {
    document_id_for_code(from, date, &full_code(&code_number(number), notation))
}

/// The same, from a "số/ký hiệu" string as `ResponseFor/Code` carries it.
pub fn document_id_for_code(from: &OrganId, date: Date, code: &str) -> String {
    format!("{},{},{}", from, format_date(date), code.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn shape() {
        let h21 = OrganId::parse_strict("000.00.00.H21").unwrap();
        assert_eq!(
            document_id(&h21, date!(2019 - 02 - 27), 446, "UBND-KGVX"),
            "000.00.00.H21,2019/02/27,446/UBND-KGVX"
        );
        assert_eq!(
            document_id(&h21, date!(2024 - 01 - 02), 5, "QĐ-UBND"),
            "000.00.00.H21,2024/01/02,05/QĐ-UBND"
        );
        assert_eq!(code_number(10), "10");
        assert_eq!(normalize_code_number(" 7 "), "07");
        assert_eq!(normalize_code_number("07"), "07");
        assert_eq!(normalize_code_number("12a"), "12a");
        assert_eq!(full_code("3", "STTTT-CĐS"), "03/STTTT-CĐS");
    }
}
