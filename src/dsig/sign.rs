//! Signing: an enveloped XML-DSig over `URI=""`, inserted as the last child of `edXMLHeader`.
//!
//! The signature is spliced into the caller's text rather than re-serialising the tree, so the
//! signed package is the input byte for byte (less a BOM or stray bytes before `<?xml`, which the
//! parser drops) plus one `Signature` element. Nothing around the insertion point changes, which
//! is what makes the enveloped-signature transform give back exactly the bytes that were digested.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::algorithms::{ENVELOPED, RSA_SHA256, SHA256};
use super::c14n::{self, Method};
use super::profile;
use crate::Error;
use crate::edxml::xml::{self, Limits};
use crate::error::{Code, SignatureError};
use crate::signer::{SignatureScheme, Signer};

/// Signs an unsigned edXML package (document or status) with `signer`, using exclusive c14n,
/// SHA-256 and RSA-SHA256 as EDXML.md §5 says this node writes.
pub fn sign_package(bytes: &[u8], signer: &dyn Signer, limits: &Limits) -> Result<Vec<u8>, Error> {
    let (element, offset, at) = signature_for(bytes, signer, limits)?;
    let text = &bytes[offset..];
    let mut out = Vec::with_capacity(text.len() + element.len());
    out.extend_from_slice(&text[..at]);
    out.extend_from_slice(element.as_bytes());
    out.extend_from_slice(&text[at..]);
    Ok(out)
}

/// [`sign_package`] on a buffer the caller gives up: the `Signature` is inserted into it in
/// place, so signing a large package needs no second copy of it (the text after the insertion
/// point moves up; with spare capacity, as [`crate::edxml::write_document`] leaves, nothing is
/// reallocated).
pub fn sign_package_owned(
    mut bytes: Vec<u8>,
    signer: &dyn Signer,
    limits: &Limits,
) -> Result<Vec<u8>, Error> {
    let (element, offset, at) = signature_for(&bytes, signer, limits)?;
    bytes.drain(..offset);
    bytes.splice(at..at, element.into_bytes());
    Ok(bytes)
}

/// The `Signature` element for `bytes`, how many leading bytes the parser dropped, and where in
/// the rest the element goes (the start of `edXMLHeader`'s end tag).
fn signature_for(
    bytes: &[u8],
    signer: &dyn Signer,
    limits: &Limits,
) -> Result<(String, usize, usize), Error> {
    let parsed = xml::parse(bytes, limits)?;
    let header = profile::header(&parsed.doc)?;
    if profile::signature(&parsed.doc)?.is_some() {
        return Err(SignatureError::new(
            Code::SignatureDuplicate,
            profile::HEADER_PATH,
            "the package is already signed",
        )
        .into());
    }
    let method = Method::Exclusive {
        with_comments: false,
        inclusive_prefixes: Vec::new(),
    };

    let digest = c14n::digest(parsed.doc.root(), &method, None, &aws_lc_rs::digest::SHA256);
    let digest = B64.encode(digest.as_ref());

    let signed_info = signed_info(&digest, signer.scheme());
    let signature_value = B64.encode(signer.sign(signed_info.canonical.as_bytes())?);

    let mut element = String::with_capacity(2048 + 1400 * (1 + signer.chain().len()));
    element.push_str(r#"<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">"#);
    element.push_str(&signed_info.in_place);
    element.push_str("<SignatureValue>");
    element.push_str(&signature_value);
    element.push_str("</SignatureValue><KeyInfo><X509Data>");
    for cert in
        std::iter::once(signer.certificate()).chain(signer.chain().iter().map(Vec::as_slice))
    {
        element.push_str("<X509Certificate>");
        element.push_str(&B64.encode(cert));
        element.push_str("</X509Certificate>");
    }
    element.push_str("</X509Data></KeyInfo></Signature>");

    let at = end_tag_start(parsed.text, header.range())?;
    Ok((element, parsed.offset, at))
}

struct SignedInfo {
    /// As written inside `<Signature xmlns=…>`: inherits the namespace.
    in_place: String,
    /// Its exclusive canonical form: the same element with the namespace rendered on it.
    canonical: String,
}

fn signed_info(digest_b64: &str, scheme: SignatureScheme) -> SignedInfo {
    let sig_alg = match scheme {
        SignatureScheme::RsaPkcs1Sha256 => RSA_SHA256,
    };
    let exc = Method::Exclusive {
        with_comments: false,
        inclusive_prefixes: Vec::new(),
    }
    .uri();
    let body = format!(
        concat!(
            r#"<CanonicalizationMethod Algorithm="{exc}"></CanonicalizationMethod>"#,
            r#"<SignatureMethod Algorithm="{sig}"></SignatureMethod>"#,
            r#"<Reference URI=""><Transforms>"#,
            r#"<Transform Algorithm="{env}"></Transform><Transform Algorithm="{exc}"></Transform>"#,
            r#"</Transforms><DigestMethod Algorithm="{dig}"></DigestMethod>"#,
            r#"<DigestValue>{value}</DigestValue></Reference></SignedInfo>"#
        ),
        exc = exc,
        sig = sig_alg,
        env = ENVELOPED,
        dig = SHA256,
        value = digest_b64
    );
    SignedInfo {
        in_place: format!("<SignedInfo>{body}"),
        canonical: format!(r#"<SignedInfo xmlns="{}">{body}"#, super::NS),
    }
}

/// Byte offset of `</…>` closing the element spanning `range` in `text`.
fn end_tag_start(text: &str, range: std::ops::Range<usize>) -> Result<usize, Error> {
    let element = &text.as_bytes()[range.clone()];
    match memchr::memmem::rfind(element, b"</") {
        Some(i) if !element.ends_with(b"/>") => Ok(range.start + i),
        _ => Err(crate::error::FormatError::missing(format!(
            "{}/MessageHeader",
            profile::HEADER_PATH
        ))
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signing in place gives exactly the bytes of signing into a new buffer, junk before
    /// `<?xml` dropped the same way, and does not reallocate when there is room.
    #[test]
    fn signing_in_place_is_signing_a_copy() {
        let pki = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/test-only");
        let signer = crate::signer::KeyFileSigner::from_files(
            &pki.join("stttt-gialai.key.pem"),
            &pki.join("stttt-gialai.cert.pem"),
            Some(&pki.join("chain.pem")),
        )
        .unwrap();
        let doc = crate::edxml::samples::new_document();
        let unsigned = crate::edxml::write_document(&doc).unwrap();
        for prefix in [&b""[..], b"\xEF\xBB\xBF", b"junk "] {
            let mut input = prefix.to_vec();
            input.extend_from_slice(&unsigned);
            let copy = sign_package(&input, &signer, &Limits::default()).unwrap();
            input.reserve(64 * 1024);
            let ptr = input.as_ptr();
            let owned = sign_package_owned(input, &signer, &Limits::default()).unwrap();
            assert_eq!(owned, copy);
            assert_eq!(owned.as_ptr(), ptr, "signed in the caller's buffer");
            assert!(owned.len() > unsigned.len() + 1000);
        }
    }

    /// `SignedInfo` is written by hand twice (in place and canonical); they must not drift apart.
    #[test]
    fn the_canonical_signed_info_is_the_in_place_one_canonicalised() {
        let si = signed_info("AAAA", SignatureScheme::RsaPkcs1Sha256);
        let wrapped = format!(
            r#"<edXML xmlns="urn:x" xmlns:edXML="urn:x"><Signature xmlns="{}">{}</Signature></edXML>"#,
            super::super::NS,
            si.in_place
        );
        let doc = roxmltree::Document::parse(&wrapped).unwrap();
        let node = doc
            .descendants()
            .find(|n| n.has_tag_name("SignedInfo"))
            .unwrap();
        let exc = Method::Exclusive {
            with_comments: false,
            inclusive_prefixes: Vec::new(),
        };
        assert_eq!(
            String::from_utf8(c14n::to_vec(node, &exc, None)).unwrap(),
            si.canonical
        );
    }
}
