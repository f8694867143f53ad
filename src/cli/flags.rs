//! Which command-line flag filled which API field, so that a node's refusal (which names the
//! field as the API has it: `metadata.date`, `metadata.recipients[1]`, `code`) can also name the
//! flag and the value the user typed (`--date 2026-13-01`). The node's message stays as it is:
//! it is the API's truth, and `--json` prints it untouched.

use std::fmt::Display;

/// API field → the flag that fills it, for every command that sends one (`send`, `update`,
/// `replace`, `inbox status`, `drafts approve`). A list field (`metadata.recipients`, `files`) is filled item by
/// item and is listed by its name without an index.
const FLAGS: &[(&str, &str)] = &[
    ("metadata.recipients", "--to"),
    ("metadata.number", "--number"),
    ("metadata.confirm_number", "--confirm-number"),
    ("metadata.notation", "--notation"),
    ("metadata.subject", "--subject"),
    ("metadata.type_name", "--type-name"),
    ("metadata.type", "--type"),
    ("metadata.type_detail", "--type-detail"),
    ("metadata.date", "--date"),
    ("metadata.due_date", "--due-date"),
    ("metadata.place", "--place"),
    ("metadata.content", "--content"),
    ("metadata.signer.full_name", "--signer"),
    ("metadata.signer.position", "--position"),
    ("metadata.signer.competence", "--competence"),
    ("metadata.priority", "--priority"),
    ("files", "--attach"),
    ("metadata.files", "--attach"),
    ("update.reason", "--reason"),
    ("update.subject", "--subject"),
    ("update.content", "--content"),
    ("update.due_date", "--due-date"),
    ("update.signer.full_name", "--signer"),
    ("update.recipients", "--to"),
    ("update.files", "--attach"),
    ("reason", "--reason"),
    // `drafts approve`: a submission's fields at the top of the approval's body.
    ("recipients", "--to"),
    ("number", "--number"),
    ("confirm_number", "--confirm-number"),
    ("notation", "--notation"),
    ("subject", "--subject"),
    ("type_name", "--type-name"),
    ("type", "--type"),
    ("type_detail", "--type-detail"),
    ("date", "--date"),
    ("due_date", "--due-date"),
    ("place", "--place"),
    ("content", "--content"),
    ("signer.full_name", "--signer"),
    ("signer.position", "--position"),
    ("signer.competence", "--competence"),
    ("priority", "--priority"),
    ("code", "--code"),
    ("description", "--description"),
];

/// The flags of one command line as typed, by the API field each filled.
#[derive(Default)]
pub(super) struct Typed(Vec<(String, String)>);

impl Typed {
    /// `field` was filled by its flag (from [`FLAGS`]) with `value`.
    pub(super) fn set(&mut self, field: &str, value: impl Display) {
        let list = field.split('[').next().unwrap_or(field);
        if let Some((_, flag)) = FLAGS.iter().find(|(f, _)| *f == field || *f == list) {
            self.0.push((
                field.to_owned(),
                format!("{flag} {}", shown(&value.to_string())),
            ));
        }
    }

    /// `field` was filled by `flag` (`--to-name`, `--content-file`: flags that fill a field in
    /// their own way) with `value`.
    pub(super) fn set_by(&mut self, field: &str, flag: &str, value: impl Display) {
        self.0.push((
            field.to_owned(),
            format!("{flag} {}", shown(&value.to_string())),
        ));
    }

    /// The flag and value behind the field a refusal's message starts with (`field: problem`),
    /// the most specific one: `metadata.recipients[1].code` is the second recipient's flag.
    pub(super) fn behind(&self, message: &str) -> Option<&str> {
        let field = message.split(": ").next()?;
        self.0
            .iter()
            .filter(|(f, _)| {
                field == f
                    || field
                        .strip_prefix(f.as_str())
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
            })
            .max_by_key(|(f, _)| f.len())
            .map(|(_, typed)| typed.as_str())
    }
}

/// A value as the user would have typed it: quoted when it has spaces (or is empty), cut short
/// when long (a whole `--content`).
fn shown(v: &str) -> String {
    const MAX: usize = 60;
    let cut: String = v.chars().take(MAX).collect();
    let cut = if cut.len() < v.len() {
        format!("{cut}…")
    } else {
        cut
    };
    if cut.is_empty() || cut.chars().any(|c| c.is_whitespace() || c == '"') {
        format!("{cut:?}")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_names_the_flag_and_value_that_filled_it() {
        let mut t = Typed::default();
        t.set("metadata.date", "2026-13-01");
        t.set("metadata.recipients[0]", "000.00.01.H01");
        t.set_by("metadata.recipients[1]", "--to-name", "abc=Sở Y tế");
        t.set("metadata.subject", "Về việc họp");
        t.set("code", "99");
        assert_eq!(
            t.behind("metadata.date: 2026-13-01: not a date"),
            Some("--date 2026-13-01")
        );
        assert_eq!(
            t.behind("metadata.recipients[1].code: abc: not an agency code"),
            Some("--to-name \"abc=Sở Y tế\"")
        );
        assert_eq!(
            t.behind("metadata.subject: too long"),
            Some("--subject \"Về việc họp\"")
        );
        assert_eq!(t.behind("code: 99: unknown"), Some("--code 99"));
        // A field the user did not type (a default), and a longer name that merely starts alike.
        assert_eq!(t.behind("metadata.place: missing"), None);
        assert_eq!(t.behind("metadata.date_x: missing"), None);
    }
}
