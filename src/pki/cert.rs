//! What the other pki modules share about one certificate: parsing it, its names as text, its
//! validity period and the algorithm it is signed with.

use std::time::SystemTime;

use x509_parser::asn1_rs::{Tag, ToDer};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::Oid;
use x509_parser::prelude::FromDer;
use x509_parser::time::ASN1Time;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

use super::TrustPolicy;
use crate::error::{Code, TrustError};

/// The `subject` of errors about bytes that are not a certificate.
pub(crate) const UNPARSED: &str = "(certificate that does not parse)";

/// Parses one DER certificate, refusing trailing bytes.
pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, TrustError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => Err(TrustError::new(
            Code::CertMalformed,
            UNPARSED,
            format!("{} bytes after the end of the certificate", rest.len()),
        )),
        Err(e) => Err(TrustError::new(
            Code::CertMalformed,
            UNPARSED,
            format!("not a DER X.509 certificate: {e}"),
        )),
    }
}

/// Seconds since the Unix epoch; times before it count as the epoch.
pub(crate) fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether `cert` is valid at `at`, with the bounds inclusive (as webpki decides).
pub(crate) fn check_validity(
    cert: &X509Certificate<'_>,
    subject: &str,
    at: SystemTime,
) -> Result<(), TrustError> {
    let now = i64::try_from(unix_seconds(at)).unwrap_or(i64::MAX);
    let validity = cert.validity();
    if now < validity.not_before.timestamp() {
        return Err(TrustError::new(
            Code::CertNotYetValid,
            subject,
            format!("not valid before {}", rfc3339(validity.not_before)),
        ));
    }
    if now > validity.not_after.timestamp() {
        return Err(TrustError::new(
            Code::CertExpired,
            subject,
            format!("expired on {}", rfc3339(validity.not_after)),
        ));
    }
    Ok(())
}

/// Refuses a certificate signed with SHA-1 unless the policy allows it. The same rule holds along
/// the path (through the algorithms [`super::path`] hands webpki); checking the signer here first
/// gives the clearer message.
pub(crate) fn check_signature_algorithm(
    cert: &X509Certificate<'_>,
    subject: &str,
    policy: &TrustPolicy,
) -> Result<(), TrustError> {
    let oid = &cert.signature_algorithm.algorithm;
    if is_sha1_signature(oid) && !policy.allow_sha1 {
        return Err(sha1_refused(subject, oid));
    }
    Ok(())
}

pub(crate) fn sha1_refused(subject: &str, oid: &Oid<'_>) -> TrustError {
    TrustError::new(
        Code::CertUntrusted,
        subject,
        format!(
            "signed with SHA-1 ({}); SHA-1 certificate signatures are refused unless the legacy \
             policy allows them (allow_sha1)",
            algorithm_name(oid)
        ),
    )
}

/// Signature algorithms built on SHA-1: RSA PKCS#1 v1.5, ECDSA, DSA and the old OIW RSA OID.
pub(crate) fn is_sha1_signature(oid: &Oid<'_>) -> bool {
    matches!(
        oid.to_id_string().as_str(),
        "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" | "1.2.840.10040.4.3" | "1.3.14.3.2.29"
    )
}

/// `sha256WithRSAEncryption`, or the dotted OID when the registry does not know it.
pub(crate) fn algorithm_name(oid: &Oid<'_>) -> String {
    match x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry()) {
        Ok(name) => name.to_owned(),
        Err(_) => oid.to_id_string(),
    }
}

/// A time as RFC 3339 in UTC (`2036-11-25T17:12:48Z`).
pub(crate) fn rfc3339(t: ASN1Time) -> String {
    t.to_datetime()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// A distinguished name as RFC 4514 text, most significant RDN last:
/// `CN=Sở Nội vụ tỉnh Gia Lai, serialNumber=000.00.04.H21, O=…, L=Gia Lai, C=VN`. The one form
/// every output uses (verify, inspect, the admin API, metrics, logs): RFC 4514's own order, the
/// one operators copy into `[[revocation.anchor]] subject` (which accepts either order, see
/// [`same_name`]).
/// Non-ASCII characters are kept as they are; attributes whose value is not a string are written
/// `type=#<hex of the DER value>`.
pub fn name_to_string(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(attribute_to_string)
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(rdn);
    }
    out
}

fn attribute_to_string(attr: &AttributeTypeAndValue<'_>) -> String {
    let oid = attr.attr_type();
    let ty = x509_parser::objects::oid2abbrev(oid, x509_parser::objects::oid_registry())
        .map_or_else(|_| oid.to_id_string(), str::to_owned);
    match attribute_text(attr) {
        Some(value) => format!("{ty}={}", escape_rfc4514(&value)),
        None => match attr.attr_value().to_der_vec() {
            Ok(der) => format!("{ty}=#{}", hex::encode(der)),
            Err(_) => format!("{ty}=#"),
        },
    }
}

/// The value of a string-typed attribute.
pub(crate) fn attribute_text(attr: &AttributeTypeAndValue<'_>) -> Option<String> {
    let value = attr.attr_value();
    let data = value.data;
    match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString
        | Tag::TeletexString => std::str::from_utf8(data).ok().map(str::to_owned),
        Tag::BmpString => {
            if data.len() % 2 != 0 {
                return None;
            }
            let units = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        Tag::UniversalString => {
            if data.len() % 4 != 0 {
                return None;
            }
            data.chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        _ => None,
    }
}

fn escape_rfc4514(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_rfc4514_specials() {
        assert_eq!(escape_rfc4514("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rfc4514(" #x "), "\\ #x\\ ");
        assert_eq!(escape_rfc4514("#x"), "\\#x");
        assert_eq!(escape_rfc4514("Sở Nội vụ"), "Sở Nội vụ");
    }

    #[test]
    fn garbage_is_malformed() {
        let e = parse(b"not a certificate").unwrap_err();
        assert_eq!(e.code, Code::CertMalformed);
    }
}

/// Whether two distinguished names written as text are the same name: the same RDNs, each the
/// same set of attributes (types compared without case, values after unescaping), in the same
/// order or exactly reversed — so `CN=Root, O=Bộ TT&TT, C=VN` (RFC 4514, as this crate prints)
/// matches `C=VN, O=Bộ TT&TT, CN=Root` (the certificate's own order, as OpenSSL prints with
/// `-nameopt RFC2253` reversed). Text that is not a DN matches only itself.
pub fn same_name(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (parse_name(a), parse_name(b)) {
        (Some(x), Some(mut y)) => {
            if x == y {
                return true;
            }
            y.reverse();
            x == y
        }
        _ => false,
    }
}

/// One attribute of an RDN: lowercase type, unescaped value.
type Attr = (String, String);

/// The RDNs of RFC 4514 text (`,` between RDNs, `+` within one, `\` escapes a character or
/// starts two hex digits), each RDN's attributes sorted; `None` if some part has no `=`.
pub fn parse_name(text: &str) -> Option<Vec<Vec<Attr>>> {
    let mut rdns = Vec::new();
    for rdn in split_unescaped(text, ',') {
        let mut attrs = Vec::new();
        for attr in split_unescaped(&rdn, '+') {
            let (ty, value) = attr.split_once('=')?;
            let ty = ty.trim();
            if ty.is_empty() {
                return None;
            }
            attrs.push((ty.to_ascii_lowercase(), unescape(value.trim())));
        }
        attrs.sort();
        rdns.push(attrs);
    }
    Some(rdns)
}

/// `text` split at `sep` where it is not escaped by a backslash (escapes kept).
fn split_unescaped(text: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in text.chars() {
        let last = parts.last_mut().expect("never empty");
        if escaped {
            last.push(c);
            escaped = false;
        } else if c == '\\' {
            last.push(c);
            escaped = true;
        } else if c == sep {
            parts.push(String::new());
        } else {
            last.push(c);
        }
    }
    parts
}

/// An RFC 4514 value without its escapes: `\,` is `,`, `\C3\A1` the UTF-8 bytes of `á`.
fn unescape(value: &str) -> String {
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'\\' {
            if let Some(hex) = tail.get(..2)
                && let Ok(h) = std::str::from_utf8(hex)
                && let Ok(v) = u8::from_str_radix(h, 16)
            {
                bytes.push(v);
                rest = &tail[2..];
                continue;
            }
            if let Some((&next, after)) = tail.split_first() {
                bytes.push(next);
                rest = after;
                continue;
            }
        }
        bytes.push(b);
        rest = tail;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod same_name_tests {
    use super::*;

    #[test]
    fn either_order_and_escapes_name_the_same() {
        let rfc = "CN=Root CA, O=Bộ Thông tin và Truyền thông, C=VN";
        assert!(same_name(
            rfc,
            "C=VN, O=Bộ Thông tin và Truyền thông, CN=Root CA"
        ));
        assert!(same_name(
            rfc,
            "cn=Root CA,O=Bộ Thông tin và Truyền thông,  c=VN"
        ));
        assert!(same_name("CN=A\\, B, C=VN", "C=VN, CN=A\\2C B"));
        assert!(same_name(
            "CN=X+serialNumber=1, C=VN",
            "C=VN, serialNumber=1+CN=X"
        ));
        assert!(!same_name(rfc, "CN=Root CA, C=VN"));
        assert!(!same_name(
            rfc,
            "O=Bộ Thông tin và Truyền thông, CN=Root CA, C=VN"
        ));
        assert!(!same_name("CN=Any", "not a name"));
    }
}
