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
        let _ = s;
        todo!()
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
    let _ = (s, max_chars);
    todo!()
}

/// A display name for `From:`/`To:`: [`header_text`] capped at [`MAX_DISPLAY_NAME_CHARS`], with
/// the characters that end or split a name in a header (`"`, `\`, `<`, `>`, `,`, `;`, `@`
/// aside from letters) removed, so a name can never be read as a second address.
pub fn display_name(s: &str) -> String {
    let _ = s;
    todo!()
}
