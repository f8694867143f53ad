//! Validated paths, remembered: the same agencies sign day after day with the same certificates,
//! so the chain of a known signer is checked once, not on every package and every receipt.
//!
//! Path validation is the costliest part of verifying a small package (two RSA-3072 CA
//! signatures in the test PKI, about half of a 10 KB verify). A path that validated is stored
//! under the SHA-256 of exactly the inputs that decided it — the signer's DER, the intermediates
//! as sent, in order, and the SHA-1 policy — with the time window in which every certificate of
//! the path is valid. A lookup at a time inside that window returns the same path webpki would
//! build again; outside it, or for any other input, the path is validated afresh. Failures are
//! never cached. Revocation is not part of it: that is checked after the path, every time, with
//! its own cache until each response's `nextUpdate`.
//!
//! The cache belongs to one [`TrustStore`](super::TrustStore) and is dropped when its anchors or
//! intermediates change, so it never outlives the trust it was computed under.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::digest;

use super::cert;
use super::status::ValidatedPath;

/// Most paths kept; when full, the cache starts over (a node talks to a bounded set of agencies,
/// so this is reached only by churn).
const MAX_ENTRIES: usize = 4096;

pub(crate) type Key = [u8; 32];

struct Entry {
    path: ValidatedPath,
    /// Unix seconds, inclusive: the latest `notBefore` and earliest `notAfter` of the path.
    valid_from: i64,
    valid_until: i64,
}

#[derive(Default)]
pub(crate) struct PathCache {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl PathCache {
    /// The key of a path decision: the signer, each intermediate in the order sent (each with
    /// its length, so no two inputs collide by concatenation), and the SHA-1 policy.
    pub(crate) fn key(signer: &[u8], intermediates: &[&[u8]], allow_sha1: bool) -> Key {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&[u8::from(allow_sha1)]);
        for part in std::iter::once(signer).chain(intermediates.iter().copied()) {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        key
    }

    /// The path stored under `key`, if every certificate of it is valid at `at` (Unix seconds).
    pub(crate) fn get(&self, key: &Key, at: i64) -> Option<ValidatedPath> {
        let entries = self.entries.lock().ok()?;
        let e = entries.get(key)?;
        (e.valid_from <= at && at <= e.valid_until).then(|| e.path.clone())
    }

    /// Remembers `path` under `key`. A path whose certificates do not parse is not stored.
    pub(crate) fn put(&self, key: Key, path: &ValidatedPath) {
        let mut valid_from = i64::MIN;
        let mut valid_until = i64::MAX;
        for link in path.links() {
            let Ok(c) = cert::parse(link.cert_der()) else {
                return;
            };
            let v = c.validity();
            valid_from = valid_from.max(v.not_before.timestamp());
            valid_until = valid_until.min(v.not_after.timestamp());
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                path: path.clone(),
                valid_from,
                valid_until,
            },
        );
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }
}
