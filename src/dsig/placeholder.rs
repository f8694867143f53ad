//! Whether a package's XML signature is one that could be verified at all, or only a placeholder.
//!
//! Real traffic carries signatures nobody can check: the national platform does not verify XML
//! signatures, and the SDKs most agencies' systems are built on write the same dummy RSA-SHA1
//! values with a truncated certificate (`<X509Certificate>MIIFqTCCBJG</X509Certificate>`), in
//! the edXML, the XML-DSig or no namespace. A node accepts such packages only from a peer
//! configured as a *channel* (`[[peer]] xml_signature = "channel"`, `node::ingest`), whose
//! mutual-TLS connection is then the only authentication. This module tells the cases apart,
//! before any cryptography, so that the channel rule never weakens a real signature:
//!
//! - [`Presence::Absent`]: no `Signature` element anywhere;
//! - [`Presence::Placeholder`]: every `Signature` element lacks a certificate that parses as
//!   X.509 (none at all, not base64, or not a whole certificate) — nothing could be verified;
//! - [`Presence::Certified`]: some `Signature` carries a certificate that parses. That is a
//!   signature meant to be checked, and it is checked as from any peer: if it fails, the
//!   package was changed or signed wrongly, and it is refused.
//!
//! Elements are matched by local name, whatever their namespace, so that no spelling of a real
//! signature can pass for a placeholder. Pure: no I/O.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use roxmltree::Node;
use x509_parser::prelude::FromDer as _;

use crate::edxml::xml::Xml;

/// What kind of XML signature a package carries (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// No `Signature` element at all.
    Absent,
    /// Signature elements whose certificates (if any) do not parse; why, for the records.
    Placeholder(String),
    /// A `Signature` carrying a certificate that parses: verify it, and refuse if that fails.
    Certified,
}

impl Presence {
    /// The stored spelling of an unverifiable signature: `absent` or `placeholder`
    /// (`None` for [`Presence::Certified`]).
    pub fn as_stored(&self) -> Option<&'static str> {
        match self {
            Presence::Absent => Some("absent"),
            Presence::Placeholder(_) => Some("placeholder"),
            Presence::Certified => None,
        }
    }
}

/// The profile's rule on where the signature is, applied to a package that is not verified (a
/// channel's): at most one `Signature`, the last child of the one `edXMLHeader`
/// (`SIGNATURE_DUPLICATE`, `SIGNATURE_MISPLACED`, as `verify` refuses them). Unverified or not,
/// a second or moved signature is what a wrapping attack looks like, and the reader skips every
/// `Signature` it meets, so this is the only place such a package is stopped.
pub fn check_placement(xml: &Xml) -> Result<(), crate::Error> {
    super::profile::signature(&xml.doc).map(|_| ())
}

/// Classifies the signature of the parsed package `xml` (see [`Presence`]).
pub fn presence(xml: &Xml) -> Presence {
    let signatures: Vec<Node> = xml
        .doc
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "Signature")
        .collect();
    if signatures.is_empty() {
        return Presence::Absent;
    }
    let mut why = Vec::new();
    for sig in &signatures {
        let certs: Vec<Node> = sig
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "X509Certificate")
            .collect();
        if certs.is_empty() {
            why.push("no X509Certificate".to_owned());
        }
        for c in certs {
            match certificate(c) {
                Ok(()) => return Presence::Certified,
                Err(e) => why.push(e),
            }
        }
    }
    why.dedup();
    Presence::Placeholder(why.join("; "))
}

/// Whether the text of an `X509Certificate` element is a whole DER certificate; why not.
fn certificate(n: Node) -> Result<(), String> {
    let text: Vec<u8> = n
        .descendants()
        .filter(Node::is_text)
        .flat_map(|t| t.text().unwrap_or("").bytes())
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if text.is_empty() {
        return Err("an empty X509Certificate".to_owned());
    }
    let der = B64
        .decode(&text)
        .map_err(|e| format!("an X509Certificate that is not base64 ({e})"))?;
    match x509_parser::certificate::X509Certificate::from_der(&der) {
        Ok(([], _)) => Ok(()),
        Ok(_) => Err("an X509Certificate with bytes after the certificate".to_owned()),
        Err(e) => Err(format!(
            "an X509Certificate of {} bytes that is not a certificate ({e})",
            der.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edxml::xml::{Limits, parse};

    fn of(xml: &str) -> Presence {
        presence(&parse(xml.as_bytes(), &Limits::default()).unwrap())
    }

    const HEAD: &str = r#"<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><edXMLEnvelope><edXMLHeader><MessageHeader/>"#;
    const TAIL: &str = "</edXMLHeader></edXMLEnvelope></edXML>";

    #[test]
    fn tells_absent_placeholder_and_certified_apart() {
        assert_eq!(of(&format!("{HEAD}{TAIL}")), Presence::Absent);
        // The platform's own: edXML namespace, dummy values, a truncated certificate.
        let dummy = format!(
            "{HEAD}<Signature><SignedInfo/><SignatureValue>GbVb8n9+</SignatureValue><KeyInfo>\
             <X509Data><X509SubjectName>CN=user05</X509SubjectName>\
             <X509Certificate>MIIFqTCCBJG</X509Certificate></X509Data></KeyInfo></Signature>{TAIL}"
        );
        let p = of(&dummy);
        assert!(
            matches!(&p, Presence::Placeholder(w) if w.contains("not base64")),
            "{p:?}"
        );
        assert_eq!(p.as_stored(), Some("placeholder"));
        // Valid base64, but a certificate cut short; and no certificate at all.
        let cut = dummy.replace("MIIFqTCCBJG", "MIIFqTCCBJGgAwIBAgIQ");
        assert!(matches!(of(&cut), Presence::Placeholder(w) if w.contains("not a certificate")));
        let none = format!("{HEAD}<Signature xmlns=\"\"><SignatureValue/></Signature>{TAIL}");
        assert!(matches!(of(&none), Presence::Placeholder(w) if w == "no X509Certificate"));
    }

    #[test]
    fn a_whole_certificate_anywhere_in_a_signature_makes_it_certified() {
        let pem = include_str!("../../certs/test-only/stttt-gialai.cert.pem");
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        // Whatever the namespace, and next to a placeholder signature.
        for ns in [
            "",
            " xmlns=\"http://www.w3.org/2000/09/xmldsig#\"",
            " xmlns=\"urn:x\"",
        ] {
            let xml = format!(
                "{HEAD}<Signature><KeyInfo><X509Data><X509Certificate>MIIF</X509Certificate>\
                 </X509Data></KeyInfo></Signature><Signature{ns}><KeyInfo><X509Data>\
                 <X509Certificate>\n{b64}\n</X509Certificate></X509Data></KeyInfo></Signature>{TAIL}"
            );
            assert_eq!(of(&xml), Presence::Certified, "{ns}");
        }
    }
}
