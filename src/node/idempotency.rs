//! Submissions under way, by `Idempotency-Key`: a repeat that arrives while the first is still
//! being composed, signed and stored waits for it, and then finds it in the store — instead of
//! being numbered and signed a second time, only to learn at the commit that the key was taken
//! (which would also make the agency's book hand out a number the store never took, and fail
//! every submission numbered after it).
//!
//! A key names one request: [`fingerprint`] is what the store keeps with it, so a later use of
//! the key for another request is refused (`IDEMPOTENCY_KEY_REUSED`) instead of being answered
//! with the first document while the new one is silently dropped — what payment APIs (Stripe,
//! Adyen) do. A repeat waiting here compares too: it asks the store after the first is done.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::audit::hash::sha256_hex;
use crate::node::compose::File;
use crate::store::RequestFingerprint;

/// The fingerprint of a request with an `Idempotency-Key`: what is compared when the key comes
/// again. In it: `operation` (`submit`, or `revoke`/`update`/`replace` with the document's id:
/// the key reused for another operation or document is another request); each of `fields` as
/// the request names it (`metadata`, `reason`, `update`), an object one level down
/// (`metadata.subject`, `metadata.recipients`, …) — the values re-serialised from the parsed
/// request, so whitespace, key order and a field left at its default do not count, but every
/// value does —; and each file part's name, content type and bytes (SHA-256), in order. Not in
/// it: the bearer token's user (a retry may come from another clerk of the agency) and the time.
///
/// Canonical JSON: object keys sorted, no whitespace, strings and numbers as serde_json writes
/// them. Each field is kept as the SHA-256 of its canonical value, so the stored form is small
/// and names what differs without holding the clerk's text twice.
pub fn fingerprint(
    operation: &str,
    fields: &[(&str, Value)],
    files: &[File],
) -> RequestFingerprint {
    let mut digests = serde_json::Map::new();
    let digest = |v: &Value| Value::String(sha256_hex(canonical(v).as_bytes()));
    for (name, value) in fields {
        match value {
            Value::Object(m) => {
                for (k, v) in m {
                    digests.insert(format!("{name}.{k}"), digest(v));
                }
            }
            v => {
                digests.insert((*name).to_owned(), digest(v));
            }
        }
    }
    let files: Vec<Value> = files
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name,
                "content_type": f.content_type,
                "sha256": sha256_hex(&f.data),
            })
        })
        .collect();
    let parts = canonical(&serde_json::json!({
        "operation": operation,
        "fields": Value::Object(digests),
        "files": files,
    }));
    RequestFingerprint {
        sha256: sha256_hex(parts.as_bytes()),
        parts,
    }
}

/// `v` as canonical JSON: keys sorted at every level (whatever order the map keeps), no
/// whitespace.
fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

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

    fn file(name: &str, data: &[u8]) -> File {
        File {
            name: name.into(),
            content_type: "application/pdf".into(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn key_order_and_whitespace_do_not_count_but_every_value_and_file_does() {
        let a: Value = serde_json::from_str(r#"{"subject":"A","signer":{"x":1,"y":2}}"#).unwrap();
        let b: Value =
            serde_json::from_str("{ \"signer\": {\"y\":2, \"x\":1},\n \"subject\": \"A\" }")
                .unwrap();
        let files = [file("a.pdf", b"1")];
        let fa = fingerprint("submit", &[("metadata", a)], &files);
        assert_eq!(fa, fingerprint("submit", &[("metadata", b)], &files));
        assert!(fa.check_reuse("k", "d", Some(&fa)).is_ok());
        let other = |op: &str, m: &str, f: &[File]| {
            fingerprint(op, &[("metadata", serde_json::from_str(m).unwrap())], f)
        };
        let cases = [
            (
                other(
                    "revoke",
                    r#"{"subject":"A","signer":{"x":1,"y":2}}"#,
                    &files,
                ),
                "operation",
            ),
            (
                other(
                    "submit",
                    r#"{"subject":"B","signer":{"x":1,"y":2}}"#,
                    &files,
                ),
                "metadata.subject",
            ),
            (
                other(
                    "submit",
                    r#"{"subject":"A","signer":{"x":1,"y":3}}"#,
                    &files,
                ),
                "metadata.signer",
            ),
            (
                other("submit", r#"{"subject":"A"}"#, &files),
                "metadata.signer",
            ),
            (
                other(
                    "submit",
                    r#"{"subject":"A","signer":{"x":1,"y":2}}"#,
                    &[file("a.pdf", b"2")],
                ),
                "files[0] (its bytes)",
            ),
            (
                other(
                    "submit",
                    r#"{"subject":"A","signer":{"x":1,"y":2}}"#,
                    &[file("b.pdf", b"1")],
                ),
                "files[0].name",
            ),
            (
                other("submit", r#"{"subject":"A","signer":{"x":1,"y":2}}"#, &[]),
                "files (their number: 0 now, 1 first)",
            ),
        ];
        for (fp, differs) in cases {
            assert_ne!(fp.sha256, fa.sha256, "{differs}");
            let e = fp.check_reuse("k-1", "document X", Some(&fa)).unwrap_err();
            assert_eq!(e.code(), crate::Code::IdempotencyKeyReused);
            let msg = e.to_string();
            assert!(msg.contains(differs), "{differs}: {msg}");
            assert!(
                msg.contains("\"k-1\"") && msg.contains("document X"),
                "{msg}"
            );
        }
        // A key stored before fingerprints were: not compared.
        assert!(fa.check_reuse("k", "d", None).is_ok());
    }

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
