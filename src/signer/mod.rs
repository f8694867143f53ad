//! Who holds private keys.
//!
//! The signature code never touches a private key directly: it asks a [`Signer`] to sign the
//! canonical `SignedInfo` bytes. A key file on disk ([`KeyFileSigner`]) and, later, a PKCS#11
//! token are interchangeable behind this one trait, so swapping how an agency's key is held never
//! touches the signature code.

mod key_file;

pub use key_file::KeyFileSigner;

use crate::Error;

/// The signature algorithms this node produces. Verification accepts more (see `dsig::policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureScheme {
    /// RSASSA-PKCS1-v1_5 with SHA-256: what every Vietnamese CA issues keys for, and what
    /// EDXML.md §5 says this node writes.
    RsaPkcs1Sha256,
}

/// A private key together with the certificate that names its holder.
pub trait Signer: Send + Sync {
    /// The algorithm `sign` produces.
    fn scheme(&self) -> SignatureScheme;
    /// Signs `message` (the canonical `SignedInfo`). The key never leaves the signer.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error>;
    /// The DER signer certificate, written into `KeyInfo/X509Data`.
    fn certificate(&self) -> &[u8];
    /// DER certificates between the signer and a trust anchor (may be empty), sent along so a
    /// verifier that only holds the root can still build the path.
    fn chain(&self) -> &[Vec<u8>];
}
