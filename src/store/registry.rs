//! The agency registry's data (sender binding, issue 4): which certificates may sign for an
//! agency code. Plain data like [`types`](super::types); the rules are [`pki::binding::Rule`]s
//! and the decision is [`pki::binding::decide`].
//!
//! [`pki::binding::Rule`]: crate::pki::binding::Rule
//! [`pki::binding::decide`]: crate::pki::binding::decide

use serde::Serialize;

use crate::error::{FormatError, Result};
use crate::pki::binding::{MAX_RULES, Rule};

/// Agencies one import may list, at most.
pub const MAX_IMPORT: usize = 10_000;

/// An agency code and the rules for it, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryEntry {
    pub code: String,
    /// The agency's name, for people reading the registry.
    pub name: String,
    /// In the order given; at least one.
    pub rules: Vec<Rule>,
    pub added_by: String,
    pub added_at: i64,
    pub updated_by: String,
    pub updated_at: i64,
}

/// What the sender-binding check of one received package needs from the registry, read at once
/// (see [`Store::registry_binding`](super::Store::registry_binding)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryBinding {
    /// The rules of the package's `From` code, in order (empty when it has no entry).
    pub rules: Vec<Rule>,
    /// The other codes whose rules name the signer's certificate, sorted.
    pub fingerprint_registered_for: Vec<String>,
}

/// An entry to add or replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRegistryEntry {
    pub code: String,
    pub name: String,
    pub rules: Vec<Rule>,
}

impl NewRegistryEntry {
    /// Checks the entry (`path` says where it came from, e.g. `agency[2]`) and normalises its
    /// rules: a plausible agency code, 1 to [`MAX_RULES`] valid rules, no certificate twice.
    pub fn normalised(self, path: &str) -> Result<NewRegistryEntry> {
        let code = self.code.trim().to_owned();
        crate::edxml::OrganId::parse_lenient(&code)
            .map_err(|e| FormatError::invalid(format!("{path}.code"), e.problem))?;
        if self.rules.is_empty() {
            return Err(FormatError::invalid(
                format!("{path}.rules"),
                format!("{code}: no rules (remove the entry instead)"),
            )
            .into());
        }
        if self.rules.len() > MAX_RULES {
            return Err(FormatError::invalid(
                format!("{path}.rules"),
                format!("{} rules, over the limit of {MAX_RULES}", self.rules.len()),
            )
            .into());
        }
        let mut rules: Vec<Rule> = Vec::with_capacity(self.rules.len());
        for (i, r) in self.rules.into_iter().enumerate() {
            let r = r.normalised(&format!("{path}.rules[{i}]"))?;
            if rules.contains(&r) {
                return Err(FormatError::invalid(
                    format!("{path}.rules[{i}]"),
                    "the same rule is listed twice",
                )
                .into());
            }
            rules.push(r);
        }
        Ok(NewRegistryEntry {
            code,
            name: self.name.trim().to_owned(),
            rules,
        })
    }
}

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    pub added: u32,
    pub replaced: u32,
    /// Entries not in the import removed (`replace_all` only).
    pub removed: u32,
}

/// Text folded for searching (the agency registry's `search_folded`, the clerks' document lists): Vietnamese diacritics and case dropped (NFD, combining marks
/// removed, đ → d), runs of white space made one space — applied to what is searched and to
/// what is typed, so "Gia Lai" finds "gia lai" and "Gia Lái", typed in NFC or NFD alike.
pub fn fold(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.nfd() {
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        match c {
            'đ' | 'Đ' => out.push('d'),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// Most rows [`Store::registry_search`](super::Store::registry_search) returns.
pub const MAX_REGISTRY_SEARCH: u32 = 100;

/// An agency the registry names, as a search finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryName {
    pub code: String,
    pub name: String,
}

/// What `agency_registry.search_folded` holds for an entry: its code and its name, each
/// [`fold`]ed, a line break between (never in a folded query, so no match spans the two).
pub(crate) fn search_text(code: &str, name: &str) -> String {
    format!("{}\n{}", fold(code), fold(name))
}

/// The `LIKE` patterns of a registry search over [`search_text`]: the folded query with `%`,
/// `_` and the backslash escaped by a backslash.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SearchPatterns {
    /// The code or the name contains the query.
    pub within: String,
    /// The code is the query.
    pub code_is: String,
    /// The code begins with the query.
    pub code_starts: String,
    /// The name begins with the query.
    pub name_starts: String,
}

/// The patterns of a registry search for `query`; `None` when it folds to nothing.
pub(crate) fn search_patterns(query: &str) -> Option<SearchPatterns> {
    let q = fold(query);
    if q.is_empty() {
        return None;
    }
    let mut esc = String::with_capacity(q.len() + 4);
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            esc.push('\\');
        }
        esc.push(c);
    }
    Some(SearchPatterns {
        within: format!("%{esc}%"),
        code_is: format!("{esc}\n%"),
        code_starts: format!("{esc}%"),
        name_starts: format!("%\n{esc}%"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_patterns_fold_and_escape_like_wildcards() {
        assert_eq!(search_patterns("  \t"), None);
        let p = search_patterns("Gia  LÁI").unwrap();
        assert_eq!(
            p,
            SearchPatterns {
                within: "%gia lai%".into(),
                code_is: "gia lai\n%".into(),
                code_starts: "gia lai%".into(),
                name_starts: "%\ngia lai%".into(),
            }
        );
        let p = search_patterns("100%_a\\b").unwrap();
        assert_eq!(p.within, "%100\\%\\_a\\\\b%");
        assert_eq!(
            search_text("000.00.05.H21", "Sở Thông tin và\tTruyền thông"),
            "000.00.05.h21\nso thong tin va truyen thong"
        );
    }
}
