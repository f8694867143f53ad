//! The hash rule of the audit chain, precise enough for an auditor to re-implement.
//!
//! ```text
//! hash = SHA-256(
//!     "lienthong-audit-v1" 0x00        19 bytes: a domain tag, so no other SHA-256 in the system
//!                                      can be mistaken for an audit hash
//!     prev_hash                        32 raw bytes (not hex); 32 zero bytes for record 1
//!     seq                              8 bytes, signed 64-bit big-endian
//!     at                               8 bytes, signed 64-bit big-endian (Unix milliseconds)
//!     field(actor)
//!     field(action)
//!     field(entity_kind)
//!     field(entity_id)
//!     field(detail)                    the JSON text exactly as stored
//! )
//! field(s) = len(s) as 8 bytes unsigned 64-bit big-endian, then the UTF-8 bytes of s
//! ```
//!
//! Every variable-length field is length-prefixed and the fixed-length ones come first, so no two
//! different records encode to the same bytes (moving a character from `actor` to `action`
//! changes the lengths). Hashes are written as 64 lowercase hex digits wherever they are shown
//! or stored as text.

use aws_lc_rs::digest;

/// The `prev_hash` of record 1: 32 zero bytes.
pub const GENESIS: [u8; 32] = [0; 32];

/// The domain tag that starts every hashed record (including its terminating 0x00).
pub const DOMAIN_TAG: &[u8] = b"lienthong-audit-v1\0";

/// The hash of a record with these fields (see the module documentation for the encoding).
#[allow(clippy::too_many_arguments)] // one argument per hashed field, in hashing order
pub fn record_hash(
    prev_hash: &[u8; 32],
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    entity_kind: &str,
    entity_id: &str,
    detail: &str,
) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(DOMAIN_TAG);
    ctx.update(prev_hash);
    ctx.update(&seq.to_be_bytes());
    ctx.update(&at.to_be_bytes());
    for field in [actor, action, entity_kind, entity_id, detail] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// SHA-256 of `bytes` as 64 lowercase hex digits: how packages, receipts and the long text fields
/// of a row (subject, header, description) are named in audit records, so the store (writing a
/// record) and the cross-check (reading a row back) hash them the same way.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, bytes))
}

/// 64 hex digits (either case) → 32 bytes; `None` for anything else.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(s.trim()).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoding written out by hand, so a change to `record_hash` that changes the bytes
    /// hashed (and would make every existing chain fail) is caught here.
    #[test]
    fn encoding_is_as_documented() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"lienthong-audit-v1\0");
        bytes.extend_from_slice(&[0u8; 32]);
        bytes.extend_from_slice(&1i64.to_be_bytes());
        bytes.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        for f in ["system", "a.b", "message", "7", "{}"] {
            bytes.extend_from_slice(&(f.len() as u64).to_be_bytes());
            bytes.extend_from_slice(f.as_bytes());
        }
        let expected = digest::digest(&digest::SHA256, &bytes);
        let got = record_hash(
            &GENESIS,
            1,
            1_700_000_000_000,
            "system",
            "a.b",
            "message",
            "7",
            "{}",
        );
        assert_eq!(got.as_slice(), expected.as_ref());
    }

    #[test]
    fn fields_are_unambiguous() {
        let a = record_hash(&GENESIS, 1, 0, "ab", "c", "k", "1", "{}");
        let b = record_hash(&GENESIS, 1, 0, "a", "bc", "k", "1", "{}");
        assert_ne!(a, b);
    }

    #[test]
    fn hex_parsing() {
        assert_eq!(parse_hex32(&"00".repeat(32)), Some(GENESIS));
        assert_eq!(parse_hex32("00"), None);
        assert_eq!(parse_hex32(&"zz".repeat(32)), None);
    }
}
