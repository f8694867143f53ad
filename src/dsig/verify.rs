//! Verification of the package signature, in the narrow profile of EDXML.md §5.
//!
//! Everything that is not the profile is refused before any cryptography: exactly one
//! `Signature`, as the last child of the one header; exactly one `Reference` with `URI=""`;
//! transforms enveloped-signature then at most one canonicalisation; no `Object`, no
//! `KeyValue`/`RetrievalMethod`. The certificate in `KeyInfo` is only a *candidate* signer: this
//! module proves the package was signed by its key, and hands the certificate back so the caller
//! makes the trust decision (`pki`). The digest is computed over the same parsed tree the caller
//! reads the package from, so what was verified is what is used.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use roxmltree::Node;

use super::algorithms::{self, ENVELOPED, EXC_C14N_NS, Policy, SignatureAlg};
use super::c14n::{self, DigestSink, Method};
use super::profile::{self, path_of};
use crate::Error;
use crate::edxml::xml::Xml;
use crate::error::{Code, SignatureError};

/// What a good signature tells: who claims to have signed, and how.
#[derive(Debug, Clone)]
pub struct VerifiedSignature {
    /// DER of the certificate whose key verified the signature.
    pub signer: Vec<u8>,
    /// DER of the other certificates in `KeyInfo` (the chain the sender offered), in order.
    pub chain: Vec<Vec<u8>>,
    /// `SignatureMethod` URI.
    pub signature_method: &'static str,
    /// `DigestMethod` URI.
    pub digest_method: String,
    /// `CanonicalizationMethod` URI of `SignedInfo`.
    pub canonicalization: &'static str,
}

fn err(code: Code, at: Node, problem: impl Into<String>) -> Error {
    SignatureError::new(code, path_of(at), problem).into()
}

/// Verifies the package signature on an already parsed package. Fails with
/// `SIGNATURE_MISSING` when there is none; callers whose policy tolerates unsigned packages
/// check `profile`-level presence first.
pub fn verify(xml: &Xml, policy: &Policy) -> Result<VerifiedSignature, Error> {
    let doc = &xml.doc;
    let Some(sig) = profile::signature(doc)? else {
        return Err(SignatureError::new(
            Code::SignatureMissing,
            profile::HEADER_PATH,
            "the package is not signed",
        )
        .into());
    };
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

    // --- SignedInfo: CanonicalizationMethod, SignatureMethod, exactly one Reference.
    let mut c14n_method = None;
    let mut sig_method = None;
    let mut references = Vec::new();
    for c in signed_info.children().filter(Node::is_element) {
        match c.tag_name().name() {
            "CanonicalizationMethod"
                if is(&c, "CanonicalizationMethod") && c14n_method.is_none() =>
            {
                c14n_method = Some(c14n_of(c)?)
            }
            "SignatureMethod" if is(&c, "SignatureMethod") && sig_method.is_none() => {
                let uri = c.attribute("Algorithm").unwrap_or("");
                if c.children().any(|g| g.is_element()) {
                    return Err(err(
                        Code::AlgorithmNotAllowed,
                        c,
                        "parameters (e.g. HMACOutputLength) are not allowed",
                    ));
                }
                sig_method =
                    Some(SignatureAlg::from_uri(uri, policy).map_err(|why| {
                        err(Code::AlgorithmNotAllowed, c, format!("{uri}: {why}"))
                    })?)
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

    // --- KeyInfo: X509Data with certificates only.
    let certs = certificates(key_info, sig, &is)?;

    // --- The signature over SignedInfo, then the digest over the package.
    let canonical_signed_info = c14n::to_vec(signed_info, &c14n_method, None);
    let sig_bytes = decode_b64(signature_value)?;
    let mut signer_index = None;
    for (i, cert) in certs.iter().enumerate() {
        let key = crate::pki::rsa_public_key(cert)
            .map_err(|e| err(Code::CertMalformed, sig, e.to_string()))?;
        let key = aws_lc_rs::signature::UnparsedPublicKey::new(sig_alg.verification(), key);
        if key.verify(&canonical_signed_info, &sig_bytes).is_ok() {
            signer_index = Some(i);
            break;
        }
    }
    let Some(signer_index) = signer_index else {
        return Err(err(
            Code::SignatureInvalid,
            signature_value,
            "the signature value does not verify with the key of the certificate in KeyInfo",
        ));
    };

    let mut sink = DigestSink::new(digest_alg);
    c14n::canonicalize(doc.root(), &content_c14n, Some(sig.id()), &mut sink);
    if sink.finish().as_ref() != digest_value.as_slice() {
        return Err(err(
            Code::DigestMismatch,
            reference,
            "the package content does not match the signed digest (altered after signing)",
        ));
    }

    let mut certs = certs;
    let signer = certs.remove(signer_index);
    Ok(VerifiedSignature {
        signer,
        chain: certs,
        signature_method: sig_alg.uri(),
        digest_method: digest_uri.to_owned(),
        canonicalization: c14n_method.uri(),
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
                let list = c.attribute("PrefixList").unwrap_or("");
                inclusive_prefixes.extend(list.split_ascii_whitespace().map(str::to_owned));
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
    Ok((content, alg, uri, decode_b64(dv)?))
}

/// The DER certificates of `KeyInfo/X509Data`, in document order.
fn certificates(key_info: Option<Node>, sig: Node, is: &Is) -> Result<Vec<Vec<u8>>, Error> {
    let Some(key_info) = key_info else {
        return Err(err(
            Code::CertMissing,
            sig,
            "KeyInfo with the signer's X509Certificate is required",
        ));
    };
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
        for d in c.children().filter(Node::is_element) {
            match d.tag_name().name() {
                "X509Certificate" if is(&d, "X509Certificate") => certs.push(
                    decode_b64(d).map_err(|_| err(Code::CertMalformed, d, "not valid base64"))?,
                ),
                "X509SubjectName" | "X509IssuerSerial" | "X509SKI"
                    if is(&d, d.tag_name().name()) => {}
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

/// Base64 content of an element, whitespace (line wrapping) ignored.
fn decode_b64(n: Node) -> Result<Vec<u8>, Error> {
    let mut text: Vec<u8> = Vec::new();
    for t in n.descendants().filter(Node::is_text) {
        text.extend(
            t.text()
                .unwrap_or("")
                .bytes()
                .filter(|b| !b.is_ascii_whitespace()),
        );
    }
    B64.decode(&text)
        .map_err(|e| err(Code::SignatureInvalid, n, format!("not valid base64: {e}")))
}

/// The certificate a package *claims* as its signer (the first `X509Certificate`), without
/// verifying anything — for display only (`lienthong inspect`). `Ok(None)` when unsigned.
pub fn claimed_signer(xml: &Xml) -> Result<Option<Vec<u8>>, Error> {
    let Some(sig) = profile::signature(&xml.doc)? else {
        return Ok(None);
    };
    let ns = sig.tag_name().namespace();
    let is = |n: &Node, name: &str| {
        n.is_element() && n.tag_name().name() == name && n.tag_name().namespace() == ns
    };
    let key_info = sig.children().find(|c| is(c, "KeyInfo"));
    Ok(certificates(key_info, sig, &is)?.into_iter().next())
}
