//! The fields a cross-check compares: one canonical [`Value`] per column (or derived column) of a
//! row, named as reports name them, and the short digest that stands for a row's attested fields
//! while the rows are read (so a store of millions of messages costs tens of bytes each).

use std::fmt;

use aws_lc_rs::digest;

/// One field's value, as a record attests it or a row holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Text(s) => f.write_str(s),
        }
    }
}

impl Value {
    /// A value from a record's detail JSON: `None` when the key is absent (an older record that
    /// did not carry it: the field is not checked).
    pub(crate) fn from_json(detail: &serde_json::Value, key: &str) -> Option<Value> {
        Some(Value::of_json(detail.get(key)?))
    }

    pub(crate) fn of_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::String(s) => Value::Text(s.clone()),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Text(n.to_string()),
            },
            other => Value::Text(other.to_string()),
        }
    }

    pub(crate) fn text(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    pub(crate) fn opt_text(s: Option<&str>) -> Value {
        s.map_or(Value::Null, Value::text)
    }

    pub(crate) fn opt_int(n: Option<i64>) -> Value {
        n.map_or(Value::Null, Value::Int)
    }

    fn feed(&self, ctx: &mut digest::Context) {
        match self {
            Value::Null => ctx.update(&[0]),
            Value::Int(n) => {
                ctx.update(&[1]);
                ctx.update(&n.to_be_bytes());
            }
            Value::Text(s) => {
                ctx.update(&[2]);
                ctx.update(&(s.len() as u64).to_be_bytes());
                ctx.update(s.as_bytes());
            }
        }
    }
}

/// What a record attests about a row: per field (in the order of the entity's field list) the
/// value, or `None` when the record does not say.
pub(crate) type Attested<const N: usize> = [Option<Value>; N];

/// Which fields of `attested` are known (bit i: field i).
pub(crate) fn mask<const N: usize>(attested: &Attested<N>) -> u32 {
    attested
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_some())
        .fold(0, |m, (i, _)| m | (1 << i))
}

/// A 128-bit digest (truncated SHA-256) of the fields in `mask`: equal digests mean equal values
/// (a forger would need a second preimage of SHA-256/128).
pub(crate) fn digest_of<const N: usize>(values: &[&Value; N], mask: u32) -> [u8; 16] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for (i, v) in values.iter().enumerate() {
        if mask & (1 << i) != 0 {
            ctx.update(&[i as u8]);
            v.feed(&mut ctx);
        }
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&ctx.finish().as_ref()[..16]);
    out
}

/// The attested fields' digest ([`digest_of`] over the known fields).
pub(crate) fn digest_attested<const N: usize>(attested: &Attested<N>) -> (u32, [u8; 16]) {
    const NULL: Value = Value::Null;
    let m = mask(attested);
    let values: [&Value; N] = std::array::from_fn(|i| attested[i].as_ref().unwrap_or(&NULL));
    (m, digest_of(&values, m))
}
