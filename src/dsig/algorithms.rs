//! Algorithm identifiers of the profile, and the policy that says which ones a verifier accepts.

/// `SignatureMethod` RSA PKCS#1 v1.5 with SHA-256 (what this node writes).
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
/// `SignatureMethod` RSA PKCS#1 v1.5 with SHA-1 (legacy; only under [`Policy::allow_sha1`]).
pub const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
/// `DigestMethod` SHA-256.
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
/// `DigestMethod` SHA-1 (legacy).
pub const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
/// The enveloped-signature transform.
pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
/// Namespace of `InclusiveNamespaces` (exclusive c14n's prefix list).
pub const EXC_C14N_NS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

/// What a verifier accepts. The default is the strict profile of EDXML.md §5; legacy SHA-1 is an
/// explicit operator decision because real traffic from older systems still carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Accept RSA-SHA1 signatures and SHA-1 digests.
    pub allow_sha1: bool,
}

/// A signature algorithm the verifier may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureAlg {
    RsaSha256,
    RsaSha1,
}

impl SignatureAlg {
    pub(crate) fn from_uri(uri: &str, policy: &Policy) -> Result<Self, &'static str> {
        match uri {
            RSA_SHA256 => Ok(SignatureAlg::RsaSha256),
            RSA_SHA1 if policy.allow_sha1 => Ok(SignatureAlg::RsaSha1),
            RSA_SHA1 => Err("RSA-SHA1 is refused unless the legacy policy allows it"),
            _ => Err("not an accepted signature algorithm (RSA-SHA256 expected)"),
        }
    }

    pub(crate) fn uri(self) -> &'static str {
        match self {
            SignatureAlg::RsaSha256 => RSA_SHA256,
            SignatureAlg::RsaSha1 => RSA_SHA1,
        }
    }

    pub(crate) fn verification(self) -> &'static aws_lc_rs::signature::RsaParameters {
        match self {
            SignatureAlg::RsaSha256 => &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            SignatureAlg::RsaSha1 => {
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
            }
        }
    }
}

/// A digest algorithm the verifier may use.
pub(crate) fn digest_from_uri(
    uri: &str,
    policy: &Policy,
) -> Result<&'static aws_lc_rs::digest::Algorithm, &'static str> {
    match uri {
        SHA256 => Ok(&aws_lc_rs::digest::SHA256),
        SHA1 if policy.allow_sha1 => Ok(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY),
        SHA1 => Err("SHA-1 digests are refused unless the legacy policy allows them"),
        _ => Err("not an accepted digest algorithm (SHA-256 expected)"),
    }
}
