//! Submissions under way, by `Idempotency-Key`: a repeat that arrives while the first is still
//! being composed, signed and stored waits for it, and then finds it in the store — instead of
//! being numbered and signed a second time, only to learn at the commit that the key was taken
//! (which would also make the agency's book hand out a number the store never took, and fail
//! every submission numbered after it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Key = (String, String);

/// The keys of the submissions under way on this node.
#[derive(Debug, Default)]
pub struct InFlightKeys {
    keys: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while a submission with its key is under way; the next with the same key waits for it
/// to be dropped.
pub struct KeyGuard<'a> {
    keys: &'a InFlightKeys,
    key: Key,
    lock: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl InFlightKeys {
    /// Waits until no other submission of `agency` with `key` is under way, and holds the key
    /// until the guard is dropped.
    pub async fn hold(&self, agency: &str, key: &str) -> KeyGuard<'_> {
        let key = (agency.to_owned(), key.to_owned());
        let lock = {
            let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            keys.entry(key.clone()).or_default().clone()
        };
        KeyGuard {
            keys: self,
            key,
            lock: Some(lock.lock_owned().await),
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.lock.take());
        let mut keys = self.keys.keys.lock().unwrap_or_else(|e| e.into_inner());
        // Forgotten once nobody holds or waits for it (the map's own reference is the last).
        if keys
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            keys.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_holder_of_a_key_waits_for_the_first_and_the_key_is_then_forgotten() {
        let keys = Arc::new(InFlightKeys::default());
        let first = keys.hold("000.00.05.H21", "k").await;
        let waiting = {
            let keys = keys.clone();
            tokio::spawn(async move {
                let _second = keys.hold("000.00.05.H21", "k").await;
            })
        };
        // Another key, or another agency's same key, does not wait.
        drop(keys.hold("000.00.05.H21", "other").await);
        drop(keys.hold("000.00.04.H21", "k").await);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap();
        assert!(keys.keys.lock().unwrap().is_empty());
    }
}
