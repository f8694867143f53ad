//! What a certificate says about its holder, trusted or not.

use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::OID_X509_SERIALNUMBER;

use super::cert;
use crate::error::TrustError;

/// What we know about a signer once trusted (or, from [`describe`], what its certificate claims).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignerCert {
    /// RFC 4514 text, most significant RDN last: `CN=…, serialNumber=…, O=…, L=Gia Lai, C=VN`.
    pub subject: String,
    /// The issuer's name, in the same form.
    pub issuer: String,
    /// The serial number as lowercase hex, without leading zero bytes.
    pub serial_hex: String,
    /// RFC 3339, UTC.
    pub not_before: String,
    /// RFC 3339, UTC.
    pub not_after: String,
    /// SHA-256 of the DER certificate, lowercase hex.
    pub sha256_fingerprint: String,
    /// The agency code (`OrganId`) the certificate is issued to, when its subject carries one:
    /// the subject's `serialNumber` attribute (2.5.4.5) if it has the canonical shape
    /// `DDD.DD.DD.LNN` (the test PKI's profile, `certs/test-only/README.md`). Certificates from
    /// other CAs that use `serialNumber` for something else give `None`.
    pub organ_id: Option<String>,
}

/// Describes a certificate without trusting it (for `inspect`).
pub fn describe(der: &[u8]) -> Result<SignerCert, TrustError> {
    let cert = cert::parse(der)?;
    Ok(from_parsed(&cert, der))
}

pub(crate) fn from_parsed(cert: &X509Certificate<'_>, der: &[u8]) -> SignerCert {
    let serial = cert.raw_serial();
    let significant = serial
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(serial.len().saturating_sub(1));
    let fingerprint = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    SignerCert {
        subject: cert::name_to_string(cert.subject()),
        issuer: cert::name_to_string(cert.issuer()),
        serial_hex: hex::encode(&serial[significant..]),
        not_before: cert::rfc3339(cert.validity().not_before),
        not_after: cert::rfc3339(cert.validity().not_after),
        sha256_fingerprint: hex::encode(fingerprint.as_ref()),
        organ_id: organ_id(cert),
    }
}

fn organ_id(cert: &X509Certificate<'_>) -> Option<String> {
    cert.subject()
        .iter_by_oid(&OID_X509_SERIALNUMBER)
        .filter_map(cert::attribute_text)
        .find(|s| has_organ_id_shape(s))
}

/// `DDD.DD.DD.LNN` (EDXML.md §1): three, two and two digits, then a letter and two digits.
fn has_organ_id_shape(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 13
        && b.iter().enumerate().all(|(i, &c)| match i {
            3 | 6 | 9 => c == b'.',
            10 => c.is_ascii_uppercase(),
            _ => c.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organ_id_shape() {
        assert!(has_organ_id_shape("000.00.00.H21"));
        assert!(has_organ_id_shape("012.03.05.G22"));
        assert!(!has_organ_id_shape("000.00.00.h21"));
        assert!(!has_organ_id_shape("00.22.W00"));
        assert!(!has_organ_id_shape("MST:0100109106"));
    }
}
