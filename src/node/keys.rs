//! The signing keys of the agencies this node serves, loaded once at start.

use std::collections::HashMap;
use std::sync::Arc;

use crate::Error;
use crate::config::Config;
use crate::edxml::OrganId;
use crate::signer::{KeyFileSigner, Signer};

/// One [`Signer`] per served agency. Invariant 4: the node signs for an agency only with that
/// agency's own key, so lookups are by the agency code and nothing else.
#[derive(Clone, Default)]
pub struct Keyring {
    signers: HashMap<OrganId, Arc<dyn Signer>>,
    /// `notAfter` of each signer's certificate (Unix seconds), read once at load so signing does
    /// not parse the certificate every time.
    expires: HashMap<OrganId, i64>,
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
        let mut keyring = Keyring {
            signers,
            expires: HashMap::new(),
        };
        keyring.expires = keyring.read_expiry();
        Ok(keyring)
    }

    /// Adds a signer (tests, tokens later).
    pub fn insert(&mut self, agency: OrganId, signer: Arc<dyn Signer>) {
        if let Some((_, t)) = super::expiry::not_after(signer.certificate()) {
            self.expires.insert(agency.clone(), t);
        }
        self.signers.insert(agency, signer);
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
