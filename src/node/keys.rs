//! The signing keys of the agencies this node serves, loaded once at start.

use std::collections::HashMap;
use std::sync::Arc;

use crate::Error;
use crate::config::Config;
use crate::edxml::OrganId;
use crate::pki::{self, SignerCert};
use crate::signer::{KeyFileSigner, Signer};

/// One [`Signer`] per served agency. Invariant 4: the node signs for an agency only with that
/// agency's own key, so lookups are by the agency code and nothing else.
#[derive(Clone, Default)]
pub struct Keyring {
    signers: HashMap<OrganId, Arc<dyn Signer>>,
    /// `notAfter` of each signer's certificate (Unix seconds), read once at load so signing does
    /// not parse the certificate every time.
    expires: HashMap<OrganId, i64>,
    /// What each signer's certificate says (subject, fingerprint), by the SHA-256 of its DER:
    /// recorded with every document the node signs, so read once here, not per document.
    described: HashMap<[u8; 32], SignerCert>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("agencies", &self.signers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// Loads every agency's key file; fails on the first unusable key, naming the agency.
    pub fn load(config: &Config) -> Result<Keyring, Error> {
        let mut signers: HashMap<OrganId, Arc<dyn Signer>> = HashMap::new();
        for a in &config.agencies {
            let s =
                KeyFileSigner::from_files(&a.key, &a.cert, a.chain.as_deref()).map_err(|e| {
                    Error::key(format!("agency {}", a.organization.organ_id), e.to_string())
                })?;
            signers.insert(a.organization.organ_id.clone(), Arc::new(s));
        }
        let described = signers
            .values()
            .filter_map(|s| described(s.certificate()))
            .collect();
        let mut keyring = Keyring {
            signers,
            expires: HashMap::new(),
            described,
        };
        keyring.expires = keyring.read_expiry();
        Ok(keyring)
    }

    /// Adds a signer (tests, tokens later).
    pub fn insert(&mut self, agency: OrganId, signer: Arc<dyn Signer>) {
        if let Some((_, t)) = super::expiry::not_after(signer.certificate()) {
            self.expires.insert(agency.clone(), t);
        }
        self.described.extend(described(signer.certificate()));
        self.signers.insert(agency, signer);
    }

    /// What the signing certificate `der` says: from the description read at load for a
    /// certificate of this keyring, parsed afresh (or `None` if unparsable) for any other.
    pub fn describe(&self, der: &[u8]) -> Option<SignerCert> {
        match self.described.get(&fingerprint(der)) {
            Some(d) => Some(d.clone()),
            None => pki::describe(der).ok(),
        }
    }

    fn read_expiry(&self) -> HashMap<OrganId, i64> {
        self.signers
            .iter()
            .filter_map(|(a, s)| Some((a.clone(), super::expiry::not_after(s.certificate())?.1)))
            .collect()
    }

    /// When `agency`'s signing certificate expires (Unix seconds).
    pub fn expires_at(&self, agency: &OrganId) -> Option<i64> {
        self.expires.get(agency).copied()
    }

    /// The signer of `agency`, if this node serves it.
    pub fn get(&self, agency: &OrganId) -> Option<&Arc<dyn Signer>> {
        self.signers.get(agency)
    }

    /// Every agency and its signer.
    pub fn iter(&self) -> impl Iterator<Item = (&OrganId, &Arc<dyn Signer>)> {
        self.signers.iter()
    }
}

/// The entry of `described` for a certificate (`None`: unparsable, described afresh each time).
fn described(der: &[u8]) -> Option<([u8; 32], SignerCert)> {
    Some((fingerprint(der), pki::describe(der).ok()?))
}

fn fingerprint(der: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn pki(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("certs/test-only")
            .join(name)
    }

    #[test]
    fn a_held_certificate_is_described_as_a_fresh_parse_would_and_others_still_are() {
        let signer = KeyFileSigner::from_files(
            &pki("stttt-gialai.key.pem"),
            &pki("stttt-gialai.cert.pem"),
            None,
        )
        .unwrap();
        let own = signer.certificate().to_vec();
        let mut keyring = Keyring::default();
        keyring.insert(
            OrganId::parse_strict("000.00.05.H21").unwrap(),
            Arc::new(signer),
        );

        assert_eq!(keyring.describe(&own), pki::describe(&own).ok());
        assert!(keyring.described.contains_key(&fingerprint(&own)));

        let other = KeyFileSigner::from_files(
            &pki("sonv-gialai.key.pem"),
            &pki("sonv-gialai.cert.pem"),
            None,
        )
        .unwrap();
        let other = other.certificate();
        assert!(!keyring.described.contains_key(&fingerprint(other)));
        let d = keyring.describe(other).unwrap();
        assert_eq!(Some(d.clone()), pki::describe(other).ok());
        assert_ne!(
            d.sha256_fingerprint,
            keyring.describe(&own).unwrap().sha256_fingerprint
        );

        assert_eq!(keyring.describe(b"not a certificate"), None);
    }
}
