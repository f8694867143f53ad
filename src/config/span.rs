//! Where a key sits in the configuration file, so that every configuration problem reads
//! `gialai.toml:27:8: agency[1].cert: certs/x.pem: no such file`: the file as given, the 1-based
//! line and column (in characters) of the value, the key as an operator reads it, the problem.
//!
//! Positions come from toml's own parser (`toml::de::DeTable` keeps the span of every key and
//! value), never from reading the text by hand. The checks in `config.rs` name keys by path
//! (`agency[1].cert`, `peer[0].ca[2]`, 0-based like the `[[agency]]` tables' order); this module
//! finds that path's value and renders a peer by its name (`peer "nghean".ca`), the way the
//! operator knows it.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The configuration text and the name it is reported under (the path as given).
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
}

impl Source {
    /// `file:line:col: key` for the key path `key` (`node.listen`, `agency[1].cert`). A key the
    /// file does not have (a missing table or value) is placed at the nearest table that is
    /// there, or at the file alone.
    pub fn locate(&self, key: &str) -> String {
        let Ok(doc) = DeTable::parse(&self.text) else {
            return format!("{}: {key}", self.name);
        };
        let shown = shown_key(doc.get_ref(), key);
        match find(doc.get_ref(), key) {
            Some(span) => format!("{}:{}: {shown}", self.name, self.position(span.start)),
            None => format!("{}: {shown}", self.name),
        }
    }

    /// `file:line:col` of byte `at`, and the key there when `at` falls on one (toml's own
    /// errors carry a span, not a key).
    pub fn locate_byte(&self, at: usize) -> String {
        let key = DeTable::parse(&self.text)
            .ok()
            .and_then(|doc| key_at(doc.get_ref(), at, "").map(|k| shown_key(doc.get_ref(), &k)));
        match key {
            Some(k) => format!("{}:{}: {k}", self.name, self.position(at)),
            None => format!("{}:{}", self.name, self.position(at)),
        }
    }

    /// `line:col`, both 1-based, the column counted in characters (Vietnamese text is
    /// multi-byte).
    fn position(&self, at: usize) -> String {
        let at = at.min(self.text.len());
        let before = self.text.get(..at).unwrap_or(&self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        format!("{line}:{col}")
    }
}

/// One step of a key path: a name, then the indices after it (`ca[2]` is `ca` then 2).
fn steps(key: &str) -> Vec<(&str, Vec<usize>)> {
    key.split('.')
        .map(|seg| {
            let mut parts = seg.split('[');
            let name = parts.next().unwrap_or_default();
            let idx = parts
                .filter_map(|p| p.trim_end_matches(']').parse().ok())
                .collect();
            (name, idx)
        })
        .collect()
}

fn get<'a, 'i>(t: &'a DeTable<'i>, name: &str) -> Option<&'a Spanned<DeValue<'i>>> {
    t.iter().find(|(k, _)| k.get_ref() == name).map(|(_, v)| v)
}

/// The span of the value at `key`, or of the deepest table on its way that exists.
fn find(root: &DeTable<'_>, key: &str) -> Option<Range<usize>> {
    let mut table = root;
    let mut found = None;
    for (name, idx) in steps(key) {
        let Some(mut v) = get(table, name) else {
            return found;
        };
        for i in idx {
            match v.get_ref().as_array().and_then(|a| a.get(i)) {
                Some(e) => v = e,
                None => return Some(v.span()),
            }
        }
        found = Some(v.span());
        match v.get_ref().as_table() {
            Some(t) => table = t,
            None => return found,
        }
    }
    found
}

/// `peer[0].ca` as the operator knows it, `peer "nghean".ca`; anything else unchanged.
fn shown_key(root: &DeTable<'_>, key: &str) -> String {
    let Some(rest) = key.strip_prefix("peer[") else {
        return key.to_owned();
    };
    let Some((i, tail)) = rest.split_once(']') else {
        return key.to_owned();
    };
    let name = i.parse::<usize>().ok().and_then(|i| {
        let peer = get(root, "peer")?.get_ref().as_array()?.get(i)?;
        Some(
            get(peer.get_ref().as_table()?, "name")?
                .get_ref()
                .as_str()?
                .to_owned(),
        )
    });
    match name {
        Some(n) => format!("peer {n:?}{tail}"),
        None => key.to_owned(),
    }
}

/// The path of the key whose name or value covers byte `at`, the deepest one (a value inside a
/// table before the table).
fn key_at(t: &DeTable<'_>, at: usize, prefix: &str) -> Option<String> {
    for (k, v) in t.iter() {
        let path = if prefix.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefix}.{}", k.get_ref())
        };
        if let Some(deeper) = value_at(v, at, &path) {
            return Some(deeper);
        }
        // A table itself (a missing field is reported at its header).
        if k.span().contains(&at) || v.span().contains(&at) {
            return Some(path);
        }
    }
    None
}

fn value_at(v: &Spanned<DeValue<'_>>, at: usize, path: &str) -> Option<String> {
    match v.get_ref() {
        DeValue::Table(t) => key_at(t, at, path),
        DeValue::Array(a) => a.iter().enumerate().find_map(|(i, e)| {
            let p = format!("{path}[{i}]");
            value_at(e, at, &p).or_else(|| e.span().contains(&at).then_some(p))
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[node]\nname = \"gialai\"\nlisten = \"127.0.0.1:8440\"\n\n\
        [[peer]]\nname = \"nghean\"\nca = [\"a.pem\", \"b.pem\"]\n\n\
        [[agency]]\nname = \"Sở Thông tin\"\ncert = \"x.pem\"\n";

    fn source() -> Source {
        Source {
            name: "gialai.toml".into(),
            text: TEXT.into(),
        }
    }

    #[test]
    fn keys_are_placed_at_their_values_and_peers_named() {
        let s = source();
        assert_eq!(s.locate("node.listen"), "gialai.toml:3:10: node.listen");
        assert_eq!(
            s.locate("peer[0].ca[1]"),
            "gialai.toml:7:16: peer \"nghean\".ca[1]"
        );
        assert_eq!(
            s.locate("agency[0].cert"),
            "gialai.toml:11:8: agency[0].cert"
        );
        // Missing: at the nearest table there is, or the file alone.
        assert!(
            s.locate("node.peer_listen").starts_with("gialai.toml:"),
            "{}",
            s.locate("node.peer_listen")
        );
        assert_eq!(s.locate("tls"), "gialai.toml: tls");
    }

    #[test]
    fn a_byte_is_placed_and_named() {
        let s = source();
        let at = TEXT.find("\"x.pem\"").unwrap() + 2;
        assert_eq!(s.locate_byte(at), "gialai.toml:11:10: agency[0].cert");
        let at = TEXT.find("Thông").unwrap() + "Thông".len();
        assert_eq!(s.locate_byte(at), "gialai.toml:10:17: agency[0].name");
        // A table's header (where toml reports a field missing from it): the table.
        let at = TEXT.find("[[agency]]").unwrap();
        assert_eq!(s.locate_byte(at), "gialai.toml:9:1: agency[0]");
    }
}
