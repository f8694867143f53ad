//! What each kind of configuration value must look like, said in the operator's terms.
//!
//! serde's own words for a value of the wrong type name Rust types (`expected u32`, `expected
//! struct RetryFile`, `expected path string`) or say too little (`expected a string` for a
//! duration). The file structs in `config.rs` hold these types instead, whose `expecting` is the
//! form to write, so toml's error reads `retry.max_backoff: invalid type: integer `5`, expected a
//! duration such as "1m" or "72h"` at the value's line and column.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

/// What a duration looks like, also used where a duration string does not parse.
pub(super) const DURATION: &str = "a duration such as \"1m\" or \"72h\"";

/// A duration, written `"500ms"`, `"30s"`, `"10m"`, `"72h"` or `"7d"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct DurationValue(pub Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(DURATION)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DurationValue, E> {
                super::parse_duration(s).map(DurationValue).map_err(|_| {
                    E::custom(format!(
                        "{s:?} is not {DURATION} (a whole number and a unit: ms, s, m, h or d)"
                    ))
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// The kind of a string value: what one is, as the operator writes it.
pub(super) trait Kind {
    /// `a file path such as "certs/root.pem"`.
    const ONE: &'static str;
    /// `a list of file paths such as ["certs/root.pem"]`.
    const LIST: &'static str;
}

/// A file or folder, relative to the configuration file's folder.
pub(super) enum PathKind {}
impl Kind for PathKind {
    const ONE: &'static str = "a file path such as \"certs/root.pem\"";
    const LIST: &'static str = "a list of file paths such as [\"certs/root.pem\"]";
}

/// An agency code (`OrganId`).
pub(super) enum CodeKind {}
impl Kind for CodeKind {
    const ONE: &'static str = "an agency code such as \"000.00.00.H41\"";
    const LIST: &'static str = "a list of agency codes such as [\"000.00.00.H41\"]";
}

/// A listening address.
pub(super) enum AddressKind {}
impl Kind for AddressKind {
    const ONE: &'static str = "an address and port such as \"127.0.0.1:8440\"";
    const LIST: &'static str = "a list of addresses such as [\"127.0.0.1:8440\"]";
}

/// The store's URL.
pub(super) enum StoreKind {}
impl Kind for StoreKind {
    const ONE: &'static str =
        "a store URL such as \"sqlite://data/node.db\" or \"postgres://lienthong@db/lienthong\"";
    const LIST: &'static str = "a list of store URLs such as [\"sqlite://data/node.db\"]";
}

/// An http(s) URL (a peer, an OCSP responder).
pub(super) enum UrlKind {}
impl Kind for UrlKind {
    const ONE: &'static str = "a URL such as \"https://lienthong.nghean.gov.vn:8450\"";
    const LIST: &'static str = "a list of URLs such as [\"https://lienthong.nghean.gov.vn:8450\"]";
}

/// A mail address.
pub(super) enum MailKind {}
impl Kind for MailKind {
    const ONE: &'static str = "a mail address such as \"vanthu@gialai.gov.vn\"";
    const LIST: &'static str = "a list of mail addresses such as [\"vanthu@gialai.gov.vn\"]";
}

/// A SHA-256 certificate fingerprint in hex.
pub(super) enum FingerprintKind {}
impl Kind for FingerprintKind {
    const ONE: &'static str = "a SHA-256 in hex (64 digits)";
    const LIST: &'static str = "a list of SHA-256 fingerprints in hex such as [\"3f1a…\"]";
}

/// A string of kind `K`.
pub(super) struct Text<K>(pub String, PhantomData<K>);

impl<K> Text<K> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de, K: Kind> Deserialize<'de> for Text<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<K>(PhantomData<K>);
        impl<K: Kind> Visitor<'_> for V<K> {
            type Value = Text<K>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(K::ONE)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<K>, E> {
                Ok(Text(s.to_owned(), PhantomData))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// A list of strings of kind `K` (`["a", "b"]`; a lone string is refused, saying a list is
/// expected).
pub(super) struct List<K>(pub Vec<Text<K>>);

impl<K> Default for List<K> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<K> List<K> {
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(Text::as_str)
    }
}

impl<'de, K: Kind> Deserialize<'de> for List<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<K>(PhantomData<K>);
        impl<'de, K: Kind> Visitor<'de> for V<K> {
            type Value = List<K>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(K::LIST)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<K>, A::Error> {
                let mut out = Vec::new();
                while let Some(t) = seq.next_element()? {
                    out.push(t);
                }
                Ok(List(out))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// A whole number (a count, a size in MiB) that fits `T`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Whole<T>(pub T);

impl<'de, T: TryFrom<i64> + TryFrom<u64> + fmt::Display + Bounded> Deserialize<'de> for Whole<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<T: TryFrom<i64> + TryFrom<u64> + fmt::Display + Bounded> Visitor<'_> for V<T> {
            type Value = Whole<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number such as 128 (no quotes)")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Whole<T>, E> {
                T::try_from(n)
                    .map(Whole)
                    .map_err(|_| out_of_range::<T, E>(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Whole<T>, E> {
                T::try_from(n)
                    .map(Whole)
                    .map_err(|_| out_of_range::<T, E>(n))
            }
        }
        d.deserialize_i64(V(PhantomData))
    }
}

fn out_of_range<T: Bounded, E: de::Error>(n: impl fmt::Display) -> E {
    E::custom(format!(
        "{n} is not a whole number from 0 to {}",
        T::MAX_SHOWN
    ))
}

/// The largest value of an unsigned integer type, for the out-of-range message.
pub(super) trait Bounded {
    const MAX_SHOWN: u64;
}
impl Bounded for u16 {
    const MAX_SHOWN: u64 = u16::MAX as u64;
}
impl Bounded for u32 {
    const MAX_SHOWN: u64 = u32::MAX as u64;
}
impl Bounded for u64 {
    const MAX_SHOWN: u64 = u64::MAX;
}
impl Bounded for usize {
    const MAX_SHOWN: u64 = usize::MAX as u64;
}

/// Repeated tables (`[[agency]]`, `[[peer]]`): written once as `[agency]`, or as a value,
/// serde would say `expected a sequence`.
pub(super) struct Tables<T>(pub Vec<T>);

impl<T> Default for Tables<T> {
    fn default() -> Self {
        Tables(Vec::new())
    }
}

impl<T> Tables<T> {
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Tables<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Tables<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one table per entry, each headed with double brackets ([[…]])")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tables<T>, A::Error> {
                let mut out = Vec::new();
                while let Some(t) = seq.next_element()? {
                    out.push(t);
                }
                Ok(Tables(out))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}
