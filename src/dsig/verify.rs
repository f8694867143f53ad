//! Verification of the package signature, in the narrow profile of EDXML.md §5.
//!
//! The order is chosen so that an attacker without a trusted key cannot make the node do
//! expensive work:
//!
//! 1. everything that is not the profile is refused before any cryptography: exactly one
//!    `Signature`, as the last child of the one header; exactly one `Reference` with `URI=""`;
//!    transforms enveloped-signature then at most one canonicalisation; no `Object`, no
//!    `KeyValue`/`RetrievalMethod`; values are plain text (nothing can be smuggled inside them);
//! 2. the signer is *one* certificate of `KeyInfo` (the first that is not a CA) and the caller's
//!    trust decision runs on it (`decide`), before any signature or digest is computed;
//! 3. the signature over `SignedInfo`, then the digest over the package.
//!
//! The digest is computed over the same parsed tree the caller reads the package from, so what
//! was verified is what is used.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use roxmltree::Node;

use super::algorithms::{self, ENVELOPED, EXC_C14N_NS, Policy, SignatureAlg};
use super::archive::{self, Archive};
use super::c14n::{self, Method};
use super::profile::{self, path_of};
use crate::Error;
use crate::edxml::xml::{self, Limits, Xml};
use crate::error::{Code, SignatureError};

/// Most certificates `KeyInfo` may carry (the signer and its chain).
const MAX_CERTIFICATES: usize = 10;
/// Most prefixes an `InclusiveNamespaces PrefixList` may name.
const MAX_INCLUSIVE_PREFIXES: usize = 32;

/// What a good signature tells: who signed, and how.
#[derive(Debug, Clone)]
pub struct VerifiedSignature {
    /// DER of the signer's certificate (the one whose key verified the signature).
    pub signer: Vec<u8>,
    /// DER of the other certificates in `KeyInfo` (the chain the sender offered), in order.
    pub chain: Vec<Vec<u8>>,
    /// `SignatureMethod` URI.
    pub signature_method: &'static str,
    /// `DigestMethod` URI.
    pub digest_method: &'static str,
    /// `CanonicalizationMethod` URI of `SignedInfo`.
    pub canonicalization: &'static str,
    /// The signed digest of the package content (the `DigestValue`, decoded).
    pub content_digest: Vec<u8>,
    /// SHA-256 of the canonical `SignedInfo` the signature value verified over: the identity of
    /// the signed content. It covers the content digest and every algorithm, and nothing a
    /// relay can change without breaking the signature; bytes nobody signed (line breaks in
    /// base64, comments, `KeyInfo` extras) leave it unchanged. Deduplication compares this.
    pub signed_identity: [u8; 32],
    /// What to keep of the package: the verified text less what the signature does not cover
    /// (see [`crate::dsig::archive`]).
    pub archive: Archive,
}

fn err(code: Code, at: Node, problem: impl Into<String>) -> Error {
    SignatureError::new(code, path_of(at), problem).into()
}

/// The profile's view of one `Signature` element: its parts, found and checked for shape.
struct Parts<'a, 'i> {
    sig: Node<'a, 'i>,
    signed_info: Node<'a, 'i>,
    signature_value: Node<'a, 'i>,
    c14n_method: Method,
    sig_alg: SignatureAlg,
    reference: Node<'a, 'i>,
    content_c14n: Method,
    digest_alg: &'static aws_lc_rs::digest::Algorithm,
    digest_uri: &'static str,
    digest_value: Vec<u8>,
    certificates: Vec<(Node<'a, 'i>, Vec<u8>)>,
}

/// Verifies the package signature on an already parsed package. `decide` is the trust decision
/// on the signer certificate and the chain offered with it; it runs before any signature or
/// digest work and its result is returned alongside. Fails with `SIGNATURE_MISSING` when the
/// package carries no signature.
pub fn verify<T>(
    xml: &Xml,
    policy: &Policy,
    decide: impl FnOnce(&[u8], &[Vec<u8>]) -> Result<T, Error>,
) -> Result<(VerifiedSignature, T), Error> {
    let Some(sig) = profile::signature(&xml.doc)? else {
        return Err(SignatureError::new(
            Code::SignatureMissing,
            profile::HEADER_PATH,
            "the package is not signed",
        )
        .into());
    };
    let parts = parts(sig, policy)?;
    let mut certs = parts.certificates;
    let (signer_index, key) = pick_signer(&certs);
    let (signer_node, signer) = certs.remove(signer_index);
    let chain: Vec<Vec<u8>> = certs.into_iter().map(|(_, der)| der).collect();

    let decided = decide(&signer, &chain)?;

    // The key's errors are reported only now, after the trust decision, as before.
    let key = key
        .unwrap_or_else(|| crate::pki::rsa_public_key(&signer))
        .map_err(|e| err(e.code, signer_node, e.problem))?;
    let key = aws_lc_rs::signature::UnparsedPublicKey::new(parts.sig_alg.verification(), key);
    let canonical_signed_info = c14n::to_vec(parts.signed_info, &parts.c14n_method, None);
    let sig_bytes = decode_b64(parts.signature_value, Code::SignatureInvalid)?;
    if key.verify(&canonical_signed_info, &sig_bytes).is_err() {
        return Err(err(
            Code::SignatureInvalid,
            parts.signature_value,
            "the signature value does not verify with the signer certificate's key",
        ));
    }

    let digest = c14n::digest(
        xml.doc.root(),
        &parts.content_c14n,
        Some(parts.sig.id()),
        parts.digest_alg,
    );
    if digest.as_ref() != parts.digest_value.as_slice() {
        return Err(err(
            Code::DigestMismatch,
            parts.reference,
            "the package content does not match the signed digest (altered after signing)",
        ));
    }

    let signed_identity: [u8; 32] =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &canonical_signed_info)
            .as_ref()
            .try_into()
            .unwrap_or([0; 32]);
    let archive = Archive::plan(
        xml,
        &archive::Verified {
            sig: parts.sig,
            signed_info: parts.signed_info,
            canonical_signed_info: &canonical_signed_info,
            signature_value: &sig_bytes,
            signer: &signer,
        },
        |element| {
            says_the_same(
                xml,
                parts.sig,
                element,
                policy,
                &canonical_signed_info,
                &sig_bytes,
            )
        },
    );

    Ok((
        VerifiedSignature {
            signer,
            chain,
            signature_method: parts.sig_alg.uri(),
            digest_method: parts.digest_uri,
            canonicalization: parts.c14n_method.uri(),
            content_digest: parts.digest_value,
            signed_identity,
            archive,
        },
        decided,
    ))
}

/// Whether `element`, a rebuilt `Signature`, in the place of `sig` (below the same start tags of
/// the header, the envelope and the document element, so with the same namespaces and `xml:*`
/// attributes in scope) is accepted by this profile and gives exactly `signed_info` as its
/// canonical `SignedInfo` and `value` as its signature value: then it verifies exactly when the
/// original did. Parses only those start tags and the element, never the package.
fn says_the_same(
    xml: &Xml,
    sig: Node,
    element: &str,
    policy: &Policy,
    signed_info: &[u8],
    value: &[u8],
) -> bool {
    let text = xml.text.as_bytes();
    let ancestors: Vec<Node> = sig.ancestors().skip(1).filter(Node::is_element).collect();
    let mut doc = String::with_capacity(element.len() + 512);
    for a in ancestors.iter().rev() {
        let start = a.range().start;
        match archive::start_tag_end(text, start).and_then(|end| xml.text.get(start..end)) {
            Some(tag) => doc.push_str(tag),
            None => return false,
        }
    }
    doc.push_str(element);
    for a in &ancestors {
        doc.push_str("</");
        doc.push_str(archive::qname_at(text, a.range().start));
        doc.push('>');
    }
    let Ok(small) = xml::parse(doc.as_bytes(), &Limits::default()) else {
        return false;
    };
    let Ok(Some(rebuilt)) = profile::signature(&small.doc) else {
        return false;
    };
    let Ok(p) = parts(rebuilt, policy) else {
        return false;
    };
    c14n::to_vec(p.signed_info, &p.c14n_method, None) == signed_info
        && decode_b64(p.signature_value, Code::SignatureInvalid).is_ok_and(|v| v == value)
}

/// The signer among the certificates of `KeyInfo`: the first that is not a CA (senders put the
/// chain before or after it), else the first (which the trust decision then refuses as a CA).
/// Only this one certificate is ever tried.
fn signer_index(certs: &[(Node, Vec<u8>)]) -> usize {
    pick_signer(certs).0
}

/// [`signer_index`], with the signer's RSA public key taken from the same parse, so the signer
/// certificate is not parsed once more for its key (`None`: the caller gets the key, or its
/// error, from [`crate::pki::rsa_public_key`]).
fn pick_signer(
    certs: &[(Node, Vec<u8>)],
) -> (usize, Option<Result<Vec<u8>, crate::error::TrustError>>) {
    for (i, (_, der)) in certs.iter().enumerate() {
        if let Ok((rest, cert)) = x509_parser::parse_x509_certificate(der)
            && !cert.is_ca()
        {
            // Only from a certificate that is exactly its DER, as `rsa_public_key` requires.
            return (
                i,
                rest.is_empty()
                    .then(|| crate::pki::rsa_public_key_of(&cert)),
            );
        }
    }
    (0, None)
}

/// Checks the shape of `sig` against the profile and collects its parts.
fn parts<'a, 'i>(sig: Node<'a, 'i>, policy: &Policy) -> Result<Parts<'a, 'i>, Error> {
    let ns = sig.tag_name().namespace();
    let is = |n: &Node, name: &str| {
        n.is_element() && n.tag_name().name() == name && n.tag_name().namespace() == ns
    };

    // --- Signature children: SignedInfo, SignatureValue, KeyInfo; nothing else.
    let mut signed_info = None;
    let mut signature_value = None;
    let mut key_info = None;
    for c in sig.children().filter(Node::is_element) {
        let slot = match c.tag_name().name() {
            "SignedInfo" if is(&c, "SignedInfo") => &mut signed_info,
            "SignatureValue" if is(&c, "SignatureValue") => &mut signature_value,
            "KeyInfo" if is(&c, "KeyInfo") => &mut key_info,
            other => {
                return Err(err(
                    Code::ReferenceInvalid,
                    c,
                    format!("{other} is not allowed in this profile"),
                ));
            }
        };
        if slot.replace(c).is_some() {
            return Err(err(Code::ReferenceInvalid, c, "appears more than once"));
        }
    }
    let signed_info =
        signed_info.ok_or_else(|| err(Code::ReferenceInvalid, sig, "SignedInfo missing"))?;
    let signature_value = signature_value
        .ok_or_else(|| err(Code::ReferenceInvalid, sig, "SignatureValue missing"))?;
    text_only(signature_value, Code::SignatureInvalid)?;

    // --- SignedInfo: CanonicalizationMethod, SignatureMethod, exactly one Reference.
    let mut c14n_method = None;
    let mut sig_method = None;
    let mut references = Vec::new();
    for c in signed_info.children().filter(Node::is_element) {
        match c.tag_name().name() {
            "CanonicalizationMethod" if is(&c, "CanonicalizationMethod") => {
                if c14n_method.replace(c14n_of(c)?).is_some() {
                    return Err(err(Code::ReferenceInvalid, c, "appears more than once"));
                }
            }
            "SignatureMethod" if is(&c, "SignatureMethod") => {
                let uri = c.attribute("Algorithm").unwrap_or("");
                if c.children().any(|g| g.is_element()) {
                    return Err(err(
                        Code::AlgorithmNotAllowed,
                        c,
                        "parameters (e.g. HMACOutputLength) are not allowed",
                    ));
                }
                let alg = SignatureAlg::from_uri(uri, policy)
                    .map_err(|why| err(Code::AlgorithmNotAllowed, c, format!("{uri}: {why}")))?;
                if sig_method.replace(alg).is_some() {
                    return Err(err(Code::ReferenceInvalid, c, "appears more than once"));
                }
            }
            "Reference" if is(&c, "Reference") => references.push(c),
            other => {
                return Err(err(
                    Code::ReferenceInvalid,
                    c,
                    format!("{other} is not allowed here"),
                ));
            }
        }
    }
    let c14n_method = c14n_method.ok_or_else(|| {
        err(
            Code::ReferenceInvalid,
            signed_info,
            "CanonicalizationMethod missing",
        )
    })?;
    let sig_alg = sig_method.ok_or_else(|| {
        err(
            Code::ReferenceInvalid,
            signed_info,
            "SignatureMethod missing",
        )
    })?;
    let reference = match references.as_slice() {
        [one] => *one,
        [] => return Err(err(Code::ReferenceInvalid, signed_info, "no Reference")),
        more => {
            return Err(err(
                Code::ReferenceInvalid,
                signed_info,
                format!(
                    "{} References; the profile allows exactly one, with URI=\"\"",
                    more.len()
                ),
            ));
        }
    };
    match reference.attribute("URI") {
        Some("") => {}
        Some(uri) => {
            return Err(err(
                Code::ReferenceInvalid,
                reference,
                format!("URI={uri:?}; only URI=\"\" (the whole package) is accepted"),
            ));
        }
        None => {
            return Err(err(
                Code::ReferenceInvalid,
                reference,
                "URI missing; only URI=\"\" is accepted",
            ));
        }
    }
    let (content_c14n, digest_alg, digest_uri, digest_value) =
        reference_parts(reference, policy, &is)?;
    let certificates = certificates(key_info, sig, &is)?;
    Ok(Parts {
        sig,
        signed_info,
        signature_value,
        c14n_method,
        sig_alg,
        reference,
        content_c14n,
        digest_alg,
        digest_uri,
        digest_value,
        certificates,
    })
}

/// A `CanonicalizationMethod` (or c14n `Transform`) element as a [`Method`].
fn c14n_of(n: Node) -> Result<Method, Error> {
    let uri = n.attribute("Algorithm").unwrap_or("");
    let mut method = Method::from_uri(uri).ok_or_else(|| {
        err(
            Code::TransformNotAllowed,
            n,
            format!("{uri:?} is not a canonicalisation method"),
        )
    })?;
    for c in n.children().filter(Node::is_element) {
        let is_prefix_list = c.tag_name().name() == "InclusiveNamespaces"
            && c.tag_name().namespace() == Some(EXC_C14N_NS);
        match &mut method {
            Method::Exclusive {
                inclusive_prefixes, ..
            } if is_prefix_list && inclusive_prefixes.is_empty() => {
                let mut list = Method::parse_prefix_list(c.attribute("PrefixList").unwrap_or(""));
                list.sort_unstable();
                list.dedup();
                if list.len() > MAX_INCLUSIVE_PREFIXES {
                    return Err(err(
                        Code::TransformNotAllowed,
                        c,
                        format!(
                            "PrefixList names {} prefixes; at most {MAX_INCLUSIVE_PREFIXES}",
                            list.len()
                        ),
                    ));
                }
                *inclusive_prefixes = list;
            }
            _ => {
                return Err(err(
                    Code::TransformNotAllowed,
                    c,
                    "unexpected parameter of the canonicalisation method",
                ));
            }
        }
    }
    Ok(method)
}

type Is<'f> = dyn Fn(&Node, &str) -> bool + 'f;

/// Transforms, DigestMethod and DigestValue of the one Reference.
fn reference_parts(
    reference: Node,
    policy: &Policy,
    is: &Is,
) -> Result<
    (
        Method,
        &'static aws_lc_rs::digest::Algorithm,
        &'static str,
        Vec<u8>,
    ),
    Error,
> {
    let mut transforms = None;
    let mut digest_method = None;
    let mut digest_value = None;
    for c in reference.children().filter(Node::is_element) {
        let slot = match c.tag_name().name() {
            "Transforms" if is(&c, "Transforms") => &mut transforms,
            "DigestMethod" if is(&c, "DigestMethod") => &mut digest_method,
            "DigestValue" if is(&c, "DigestValue") => &mut digest_value,
            other => {
                return Err(err(
                    Code::ReferenceInvalid,
                    c,
                    format!("{other} is not allowed here"),
                ));
            }
        };
        if slot.replace(c).is_some() {
            return Err(err(Code::ReferenceInvalid, c, "appears more than once"));
        }
    }
    // enveloped-signature, then at most one canonicalisation; without one, the node-set is
    // serialised with inclusive C14N 1.0 (XML-DSig §4.3.3.2).
    let mut content = Method::Inclusive {
        with_comments: false,
    };
    let list: Vec<Node> = match transforms {
        Some(t) => t.children().filter(Node::is_element).collect(),
        None => Vec::new(),
    };
    for t in &list {
        if !is(t, "Transform") {
            return Err(err(
                Code::TransformNotAllowed,
                *t,
                "only Transform elements may appear here",
            ));
        }
    }
    match list.as_slice() {
        [env] | [env, _] if env.attribute("Algorithm") == Some(ENVELOPED) => {
            if env.children().any(|c| c.is_element()) {
                return Err(err(
                    Code::TransformNotAllowed,
                    *env,
                    "enveloped-signature takes no parameters",
                ));
            }
            if let [_, c] = list.as_slice() {
                content = c14n_of(*c)?;
            }
            // URI="" selects the document without comments, whatever the c14n variant says
            // (XML-DSig §4.3.3.3), so a WithComments transform still digests no comments.
            match &mut content {
                Method::Inclusive { with_comments } | Method::Exclusive { with_comments, .. } => {
                    *with_comments = false
                }
            }
        }
        [] => {
            return Err(err(
                Code::TransformNotAllowed,
                reference,
                "the enveloped-signature transform is required for URI=\"\"",
            ));
        }
        [first, ..] if list.len() <= 2 => {
            let uri = first.attribute("Algorithm").unwrap_or("");
            return Err(err(
                Code::TransformNotAllowed,
                *first,
                format!("{uri:?}: the first transform must be enveloped-signature"),
            ));
        }
        _ => {
            return Err(err(
                Code::TransformNotAllowed,
                reference,
                format!(
                    "{} transforms; at most enveloped-signature and one canonicalisation",
                    list.len()
                ),
            ));
        }
    }
    let dm = digest_method
        .ok_or_else(|| err(Code::ReferenceInvalid, reference, "DigestMethod missing"))?;
    let uri = dm.attribute("Algorithm").unwrap_or("");
    let alg = algorithms::digest_from_uri(uri, policy)
        .map_err(|why| err(Code::AlgorithmNotAllowed, dm, format!("{uri}: {why}")))?;
    let uri = if uri == algorithms::SHA256 {
        algorithms::SHA256
    } else {
        algorithms::SHA1
    };
    let dv = digest_value
        .ok_or_else(|| err(Code::ReferenceInvalid, reference, "DigestValue missing"))?;
    text_only(dv, Code::ReferenceInvalid)?;
    Ok((content, alg, uri, decode_b64(dv, Code::ReferenceInvalid)?))
}

/// The certificates of `KeyInfo/X509Data` (element and DER), in document order. Besides
/// `X509Certificate` only a text `X509SubjectName` is accepted: anything else would be unsigned
/// content riding along inside a signed package.
fn certificates<'a, 'i>(
    key_info: Option<Node<'a, 'i>>,
    sig: Node<'a, 'i>,
    is: &Is,
) -> Result<Vec<(Node<'a, 'i>, Vec<u8>)>, Error> {
    let Some(key_info) = key_info else {
        return Err(err(
            Code::CertMissing,
            sig,
            "KeyInfo with the signer's X509Certificate is required",
        ));
    };
    text_only_children(key_info)?;
    let mut certs = Vec::new();
    for c in key_info.children().filter(Node::is_element) {
        if !is(&c, "X509Data") {
            let name = c.tag_name().name();
            return Err(err(
                Code::KeyInfoNotAllowed,
                c,
                format!(
                    "{name} is not accepted; the signer must be named by X509Data/X509Certificate"
                ),
            ));
        }
        text_only_children(c)?;
        for d in c.children().filter(Node::is_element) {
            match d.tag_name().name() {
                "X509Certificate" if is(&d, "X509Certificate") => {
                    if certs.len() == MAX_CERTIFICATES {
                        return Err(err(
                            Code::KeyInfoNotAllowed,
                            d,
                            format!("more than {MAX_CERTIFICATES} certificates"),
                        ));
                    }
                    text_only(d, Code::CertMalformed)?;
                    certs.push((d, decode_b64(d, Code::CertMalformed)?));
                }
                "X509SubjectName" if is(&d, "X509SubjectName") => {
                    text_only(d, Code::KeyInfoNotAllowed)?
                }
                other => {
                    return Err(err(
                        Code::KeyInfoNotAllowed,
                        d,
                        format!("{other} is not accepted in X509Data"),
                    ));
                }
            }
        }
    }
    if certs.is_empty() {
        return Err(err(Code::CertMissing, key_info, "no X509Certificate"));
    }
    Ok(certs)
}

/// A value element (`DigestValue`, `SignatureValue`, `X509Certificate`, …) holds text only: no
/// elements, comments or processing instructions that could make one signature many packages.
fn text_only(n: Node, code: Code) -> Result<(), Error> {
    match n.children().find(|c| !c.is_text()) {
        Some(_) => Err(err(code, n, "must contain text only")),
        None => Ok(()),
    }
}

/// A container element (`KeyInfo`, `X509Data`) holds elements and whitespace only.
fn text_only_children(n: Node) -> Result<(), Error> {
    let stray = n.children().find(|c| {
        !(c.is_element() || c.is_text() && c.text().is_some_and(|t| t.trim().is_empty()))
    });
    match stray {
        Some(_) => Err(err(
            Code::KeyInfoNotAllowed,
            n,
            "must contain elements only",
        )),
        None => Ok(()),
    }
}

/// Base64 content of a text-only element, whitespace (line wrapping) ignored; `code` if invalid.
fn decode_b64(n: Node, code: Code) -> Result<Vec<u8>, Error> {
    let text: Vec<u8> = n
        .text()
        .unwrap_or("")
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    B64.decode(&text)
        .map_err(|e| err(code, n, format!("not valid base64: {e}")))
}

/// The certificate a package *claims* as its signer — chosen by the same rule `verify` uses —
/// without verifying anything: for display only (`lienthong inspect`). `Ok(None)` when unsigned.
pub fn claimed_signer(xml: &Xml) -> Result<Option<Vec<u8>>, Error> {
    let Some(sig) = profile::signature(&xml.doc)? else {
        return Ok(None);
    };
    let ns = sig.tag_name().namespace();
    let is = |n: &Node, name: &str| {
        n.is_element() && n.tag_name().name() == name && n.tag_name().namespace() == ns
    };
    let key_info = sig.children().find(|c| is(c, "KeyInfo"));
    let mut certs = certificates(key_info, sig, &is)?;
    let i = signer_index(&certs);
    Ok(Some(certs.swap_remove(i).1))
}
