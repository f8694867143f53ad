//! Signing with an RSA key held in a PEM file.

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{SignatureScheme, Signer};
use crate::Error;

/// An RSA private key loaded from PEM (PKCS#8 or PKCS#1) with its certificate and chain.
///
/// Loading checks that the key belongs to the certificate, so a misconfigured node fails at start
/// rather than emitting packages nobody can verify.
pub struct KeyFileSigner {
    key: RsaKeyPair,
    rng: SystemRandom,
    certificate: Vec<u8>,
    chain: Vec<Vec<u8>>,
}

impl std::fmt::Debug for KeyFileSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("KeyFileSigner")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl KeyFileSigner {
    /// Loads `key` (PEM private key), `cert` (PEM, first certificate is the signer's) and an
    /// optional `chain` (PEM, any number of certificates).
    pub fn from_files(key: &Path, cert: &Path, chain: Option<&Path>) -> Result<Self, Error> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| Error::io(p.display().to_string(), e));
        let chain_pem = chain.map(read).transpose()?;
        Self::from_pem(&read(key)?, &read(cert)?, chain_pem.as_deref())
    }

    /// As [`KeyFileSigner::from_files`], from PEM bytes.
    pub fn from_pem(
        key_pem: &[u8],
        cert_pem: &[u8],
        chain_pem: Option<&[u8]>,
    ) -> Result<Self, Error> {
        let key_der = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| Error::key("private key", format!("cannot read PEM: {e}")))?;
        let key = match &key_der {
            PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
            _ => {
                return Err(Error::key(
                    "private key",
                    "not an RSA key (PKCS#8 or PKCS#1 expected)",
                ));
            }
        }
        .map_err(|e| {
            // aws-lc-rs refuses RSA keys under 2048 bits on load; say so in the profile's terms.
            let problem = if e.to_string() == "TooSmall" {
                format!(
                    "the RSA key is under {} bits, which recipients refuse",
                    crate::pki::profile::MIN_RSA_BITS
                )
            } else {
                format!("rejected: {e}")
            };
            Error::key("private key", problem)
        })?;
        let certificate = CertificateDer::from_pem_slice(cert_pem)
            .map_err(|e| Error::key("certificate", format!("cannot read PEM: {e}")))?
            .to_vec();
        let chain = match chain_pem {
            Some(pem) => CertificateDer::pem_slice_iter(pem)
                .map(|c| c.map(|c| c.to_vec()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::key("chain", format!("cannot read PEM: {e}")))?,
            None => Vec::new(),
        };
        let signer = KeyFileSigner {
            key,
            rng: SystemRandom::new(),
            certificate,
            chain,
        };
        signer.check_key_matches_certificate()?;
        Ok(signer)
    }

    fn check_key_matches_certificate(&self) -> Result<(), Error> {
        let (_, cert) = x509_parser::parse_x509_certificate(&self.certificate)
            .map_err(|e| Error::key("certificate", format!("cannot parse: {e}")))?;
        let cert_key = cert.public_key().subject_public_key.data.as_ref();
        if cert_key != self.key.public_key().as_ref() {
            return Err(Error::key(
                "private key",
                format!(
                    "does not belong to the certificate of {}",
                    crate::pki::name_to_string(cert.subject())
                ),
            ));
        }
        Ok(())
    }
}

impl Signer for KeyFileSigner {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::RsaPkcs1Sha256
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
            .map_err(|_| Error::key("private key", "signing failed"))?;
        Ok(sig)
    }

    fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }
}
