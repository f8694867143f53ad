//! Mail addresses, and text made safe for a mail header.
//!
//! Everything the node writes into a header passes through here: an [`Address`] is a checked
//! ASCII `local@domain` that cannot carry a CR, LF, space, quote or comment trick into `To:` or
//! the SMTP envelope, and [`header_text`] turns any text (a subject from a package, a display
//! name from the configuration, a subject copied from a mail) into one line without control,
//! bidirectional or invisible characters, cut at a character boundary. The encoding of
//! non-ASCII text (RFC 2047) is left to the message builder; what reaches it is already clean.

use std::fmt;

/// The longest address accepted, in bytes (RFC 5321's path limit of 256 less the brackets).
pub const MAX_ADDRESS_BYTES: usize = 254;

/// The longest display name written or kept, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 120;

/// Why a text is not an acceptable address. `code` is always `MAIL_ADDRESS_INVALID`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AddressError {
    pub code: &'static str,
    /// What was wrong, naming the address (cleaned for a log line).
    pub message: String,
}

/// A mail address: an ASCII `local@domain` (RFC 5322 dot-atom local part, a DNS host name as
/// domain), at most [`MAX_ADDRESS_BYTES`] bytes, domain in lowercase. Nothing else gets into a
/// header or an SMTP command: no quoted local parts, comments, routes, IP literals, spaces or
/// control characters. Two addresses that differ only in the case of their local part are equal
/// (every mail system in use treats them as one mailbox), and the local part keeps the case it
/// was written with.
#[derive(Clone)]
pub struct Address {
    text: String,
    at: usize,
}

impl Address {
    /// Checks `s` (surrounding spaces and one pair of angle brackets are allowed and dropped).
    pub fn parse(s: &str) -> Result<Address, AddressError> {
        let bad = |why: &str| AddressError {
            code: "MAIL_ADDRESS_INVALID",
            message: format!("{:?} is not a mail address: {why}", header_text(s, 80)),
        };
        if s.len() > MAX_ADDRESS_BYTES + 64 {
            return Err(bad(&format!("longer than {MAX_ADDRESS_BYTES} bytes")));
        }
        let mut t = s.trim_matches([' ', '\t']);
        if let Some(inner) = t.strip_prefix('<').and_then(|r| r.strip_suffix('>')) {
            t = inner;
        }
        if t.is_empty() {
            return Err(bad("empty"));
        }
        if t.len() > MAX_ADDRESS_BYTES {
            return Err(bad(&format!("longer than {MAX_ADDRESS_BYTES} bytes")));
        }
        if let Some(c) = t.chars().find(|c| !c.is_ascii() || c.is_ascii_control()) {
            return Err(bad(&if c.is_ascii() {
                format!("control character U+{:04X}", c as u32)
            } else {
                "not ASCII (write the domain in its xn-- form)".to_owned()
            }));
        }
        let Some(at) = t.rfind('@') else {
            return Err(bad("no @"));
        };
        let (local, domain) = (&t[..at], &t[at + 1..]);
        check_local(local).map_err(|why| bad(&why))?;
        check_domain(domain).map_err(|why| bad(&why))?;
        Ok(Address {
            text: format!("{local}@{}", domain.to_ascii_lowercase()),
            at,
        })
    }

    /// The address as written to headers and the SMTP envelope.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The part before `@`, as written.
    pub fn local_part(&self) -> &str {
        &self.text[..self.at]
    }

    /// The domain, in lowercase.
    pub fn domain(&self) -> &str {
        &self.text[self.at + 1..]
    }

    /// The address in lowercase: the key a mailbox is looked up and compared by.
    pub fn key(&self) -> String {
        self.text.to_ascii_lowercase()
    }
}

impl PartialEq for Address {
    fn eq(&self, other: &Self) -> bool {
        self.text.eq_ignore_ascii_case(&other.text)
    }
}

impl Eq for Address {}

impl std::hash::Hash for Address {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for b in self.text.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl PartialOrd for Address {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Address {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let a = self.text.bytes().map(|b| b.to_ascii_lowercase());
        let b = other.text.bytes().map(|b| b.to_ascii_lowercase());
        a.cmp(b)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", self.text)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

/// A display name and an address: what `From:` and `To:` carry. The name is
/// [`display_name`]-cleaned when made, so it is always safe to hand to the message builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// Empty when there is none.
    pub name: String,
    pub address: Address,
}

impl Mailbox {
    /// `address` shown as `name` (cleaned; an empty result means no name).
    pub fn new(name: &str, address: Address) -> Mailbox {
        Mailbox {
            name: display_name(name),
            address,
        }
    }
}

/// `s` as one line safe in a header: control characters (CR and LF included), bidirectional
/// controls and invisible format characters removed, every run of white space one space, trimmed,
/// NFC, and cut to at most `max_chars` characters (at a character boundary, with `…` when cut).
/// The result can be encoded (RFC 2047) but never breaks a header line or hides what it says.
pub fn header_text(s: &str, max_chars: usize) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    let mut out = String::with_capacity(s.len().min(max_chars.saturating_mul(4)));
    let mut count = 0usize;
    let mut pending_space = false;
    let mut cut = false;
    for c in s.nfc() {
        if c.is_whitespace() {
            pending_space = count > 0;
            continue;
        }
        if c.is_control() || is_invisible(c) {
            continue;
        }
        let need = usize::from(pending_space) + 1;
        if count + need > max_chars {
            cut = true;
            break;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        out.push(c);
        count += 1;
    }
    if cut && max_chars > 0 {
        // Room for the ellipsis: drop characters (and a space left at the end) until it fits.
        while count + 1 > max_chars || out.ends_with(' ') {
            if out.pop().is_none() {
                break;
            }
            count -= 1;
        }
        out.push('…');
    }
    out
}

/// Running text (a mail body, a package's content) made safe to show: NFC, line breaks kept as
/// `\n` (`\r\n`, a lone `\r` and the Unicode separators too), tabs as spaces, control and
/// invisible characters removed, no more than one blank line in a row, trimmed, and at most
/// `max_chars` characters (cut with `…`).
pub fn text_lines(s: &str, max_chars: usize) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    let mut out = String::new();
    let mut n = 0usize;
    let mut newlines = 0u8;
    let s = s.replace("\r\n", "\n");
    for c in s.nfc() {
        let c = match c {
            '\r' | '\u{2028}' | '\u{2029}' | '\u{0085}' => '\n',
            '\t' => ' ',
            c => c,
        };
        if c != '\n' && (c.is_control() || is_invisible(c)) {
            continue;
        }
        if c == '\n' {
            newlines = newlines.saturating_add(1);
            continue;
        }
        if n >= max_chars {
            if max_chars > 0 {
                out.pop();
                out.push('…');
            }
            break;
        }
        if newlines > 0 && !out.is_empty() {
            out.push_str(if newlines > 1 { "\n\n" } else { "\n" });
        }
        newlines = 0;
        out.push(c);
        n += 1;
    }
    out.trim().to_owned()
}

/// Characters that are not seen but change what is seen: bidirectional embeddings, overrides,
/// isolates and marks, zero-width characters and joiners, word joiner and invisible operators,
/// the soft hyphen, the byte order mark, interlinear annotation and tag characters, the
/// Mongolian vowel separator. (Line and paragraph separators are white space, made a space.)
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// A local part as RFC 5322's dot-atom: atext characters, dots only between them, ≤ 64 bytes.
fn check_local(local: &str) -> Result<(), String> {
    if local.is_empty() {
        return Err("nothing before @".into());
    }
    if local.len() > 64 {
        return Err("the part before @ is longer than 64 bytes".into());
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("a dot at the start or end of the part before @, or two dots".into());
    }
    if let Some(c) = local
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '.' || "!#$%&'*+-/=?^_`{|}~".contains(c)))
    {
        return Err(format!(
            "{c:?} is not allowed before @ (no quoting, spaces or comments)"
        ));
    }
    Ok(())
}

/// A domain as a DNS host name: labels of letters, digits and hyphens (not at either end),
/// 1–63 bytes each, a last label that is not all digits (no bare IP addresses).
fn check_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("nothing after @".into());
    }
    if domain.len() > 253 {
        return Err("the domain is longer than 253 bytes".into());
    }
    let mut last = "";
    for label in domain.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("an empty domain label, or one longer than 63 bytes".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "the domain label {label:?} starts or ends with a hyphen"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!("{c:?} is not allowed in a domain"));
        }
        last = label;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the domain is an IP address, not a host name".into());
    }
    Ok(())
}

/// A display name for `From:`/`To:`: [`header_text`] capped at [`MAX_DISPLAY_NAME_CHARS`], with
/// the characters that end or split a name in a header (`"`, `\`, `<`, `>`, `,`, `;`, `@`
/// aside from letters) removed, so a name can never be read as a second address.
pub fn display_name(s: &str) -> String {
    let cleaned: String = header_text(s, MAX_DISPLAY_NAME_CHARS)
        .chars()
        .map(|c| if "\"\\<>,;@".contains(c) { ' ' } else { c })
        .collect();
    header_text(&cleaned, MAX_DISPLAY_NAME_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_plain_and_domains_lowercase() {
        let a = Address::parse("Xa-IaKha@GiaLai.Gov.VN").unwrap();
        assert_eq!(a.as_str(), "Xa-IaKha@gialai.gov.vn");
        assert_eq!(a.local_part(), "Xa-IaKha");
        assert_eq!(a.domain(), "gialai.gov.vn");
        assert_eq!(a.key(), "xa-iakha@gialai.gov.vn");
        assert_eq!(
            Address::parse(" <van.thu+so1@gialai.gov.vn> ")
                .unwrap()
                .as_str(),
            "van.thu+so1@gialai.gov.vn"
        );
        assert_eq!(
            Address::parse("o'brien@x.vn").unwrap().local_part(),
            "o'brien"
        );
        assert_eq!(
            Address::parse("postmaster@localhost").unwrap().domain(),
            "localhost"
        );
    }

    #[test]
    fn case_of_the_local_part_does_not_make_another_mailbox() {
        use std::collections::{BTreeMap, HashSet};
        let a = Address::parse("VanThu@gialai.gov.vn").unwrap();
        let b = Address::parse("vanthu@GIALAI.gov.vn").unwrap();
        assert_eq!(a, b);
        let map = BTreeMap::from([(a.clone(), "000.00.05.H21")]);
        assert_eq!(map.get(&b), Some(&"000.00.05.H21"));
        let set: HashSet<Address> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert_ne!(
            Address::parse("vanthu1@gialai.gov.vn").unwrap(),
            Address::parse("vanthu@gialai.gov.vn").unwrap()
        );
    }

    #[test]
    fn refuses_what_could_smuggle_something_into_a_header_or_a_command() {
        let long_local = format!("{}@x.vn", "a".repeat(65));
        let long = format!(
            "{}@{}.vn",
            "a".repeat(60),
            vec!["b".repeat(60); 4].join(".")
        );
        for bad in [
            "",
            "   ",
            "<>",
            "a@b.vn\r\nBcc: victim@x.vn",
            "a@b.vn\nX: y",
            "a@b.vn\r",
            "a\0@b.vn",
            "a b@c.vn",
            "\"a b\"@c.vn",
            "\"a\"@c.vn",
            "a@b.vn (comment)",
            "(c)a@b.vn",
            "Name <a@b.vn>",
            "a@b.vn, c@d.vn",
            "a@b.vn;c@d.vn",
            "@route:a@b.vn",
            "a@[127.0.0.1]",
            "a@127.0.0.1",
            "a@@b.vn",
            "@b.vn",
            "a@",
            "a",
            "a..b@c.vn",
            ".a@b.vn",
            "a.@b.vn",
            "ánh@b.vn",
            "a@bücher.de",
            "a@b_c.vn",
            "a@-b.vn",
            "a@b-.vn",
            "a@b..vn",
            "a@b.vn.",
            "<a@b.vn",
            "a@b.vn>",
            "a@b.vn\u{202E}",
            long_local.as_str(),
            long.as_str(),
        ] {
            let e = Address::parse(bad).expect_err(bad);
            assert_eq!(e.code, "MAIL_ADDRESS_INVALID", "{bad:?}");
            assert!(
                !e.message.contains('\n') && !e.message.contains('\r'),
                "{e}"
            );
        }
        let ok254 = format!(
            "{}@{}.{}.vn",
            "a".repeat(64),
            "c".repeat(62),
            vec!["b".repeat(61); 2].join(".")
        );
        assert_eq!(ok254.len(), 254);
        assert!(Address::parse(&ok254).is_ok());
        let too_long = format!(
            "{}@{}.vn",
            "a".repeat(64),
            vec!["b".repeat(62); 3].join(".")
        );
        assert_eq!(too_long.len(), 256);
        assert!(Address::parse(&too_long).is_err());
    }

    #[test]
    fn header_text_is_one_clean_line() {
        assert_eq!(header_text("a\r\nBcc: x@y", 100), "a Bcc: x@y");
        assert_eq!(header_text("  a \t\t b \n\n c  ", 100), "a b c");
        assert_eq!(header_text("invoice\u{202E}fdp.exe", 100), "invoicefdp.exe");
        assert_eq!(
            header_text("a\u{200B}b\u{FEFF}c\u{0}d\u{7F}e\u{1B}[31m", 100),
            "abcde[31m"
        );
        assert_eq!(header_text("a\u{2028}b\u{00A0}c", 100), "a b c");
        // NFD in, NFC out: one spelling of each Vietnamese letter.
        let nfd = "Cong van so 1 \u{2014} Vie\u{0323}\u{0302}t";
        assert_eq!(header_text(nfd, 100), "Cong van so 1 — Việt");
        assert_eq!(header_text("", 10), "");
        assert_eq!(header_text("abc", 0), "");
    }

    #[test]
    fn header_text_is_cut_at_a_character() {
        let s = "Trích yếu rất dài ".repeat(50);
        let cut = header_text(&s, 30);
        assert_eq!(cut.chars().count(), 30);
        assert!(cut.ends_with('…'));
        assert!(!cut.ends_with(" …"));
        assert_eq!(header_text("đúng", 4), "đúng");
        assert_eq!(header_text("đúng!", 4), "đún…");
        assert_eq!(header_text("ab cd", 3), "ab…");
        assert_eq!(header_text("abcd", 1), "…");
        for n in 0..20 {
            assert!(header_text(&s, n).chars().count() <= n);
        }
    }

    #[test]
    fn display_names_cannot_pose_as_addresses() {
        assert_eq!(
            display_name("\"Văn thư\" <admin@evil.vn>, x"),
            "Văn thư admin evil.vn x"
        );
        assert_eq!(
            display_name("UBND xã Ia Kha (huyện Ia Grai)"),
            "UBND xã Ia Kha (huyện Ia Grai)"
        );
        assert_eq!(display_name("a\r\nTo: b@c.vn"), "a To: b c.vn");
        assert!(display_name(&"x".repeat(500)).chars().count() <= MAX_DISPLAY_NAME_CHARS);
        let m = Mailbox::new(" Sở TT&TT\n", Address::parse("a@b.vn").unwrap());
        assert_eq!(m.name, "Sở TT&TT");
    }

    #[test]
    fn text_lines_keep_lines_and_nothing_hidden() {
        assert_eq!(
            text_lines("Kính gửi:\r\n\r\n\r\n\r\nNội dung\u{202E}\tA\rB\u{0}", 100),
            "Kính gửi:\n\nNội dung A\nB"
        );
        let t = text_lines(&"x".repeat(100), 10);
        assert_eq!(t.chars().count(), 10);
        assert!(t.ends_with('…'));
        assert_eq!(text_lines("  \n  ", 10), "");
    }
}
