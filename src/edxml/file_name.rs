//! Attachment names made safe to write to disk. A package's `AttachmentName` is whatever the
//! sender wrote: any length, path separators, control characters, bidirectional overrides
//! (`invoice\u{202E}fdp.exe` shows as `invoiceexe.pdf`), names Windows reserves. Every place that
//! turns an attachment name into a file name (`lienthong extract`, the clerk API's download
//! header) goes through [`safe_file_name`], and a set of names through [`SafeNames`], so a name
//! can neither escape the folder, nor hide its real extension, nor fail to be written.
//!
//! The rule, in order: keep the last path component; drop control, bidirectional and invisible
//! format characters; replace the characters Windows forbids (`<>:"|?*`) with `_`; drop leading
//! dots (hidden files) and trailing dots and spaces (Windows strips them); a leading `-` becomes
//! `_` (not read as an option); a name Windows reserves (`CON`, `NUL`, `COM1`, … with any
//! extension) gets a leading `_`; an empty result is `attachment`; finally the name is cut to
//! [`MAX_NAME_BYTES`] bytes of UTF-8 at a character boundary, keeping its extension.

/// The longest name written, in bytes of UTF-8. ext4, XFS, Btrfs and ZFS allow 255 bytes;
/// NTFS, exFAT, APFS and HFS+ allow 255 UTF-16 units, and a name of at most 255 bytes of UTF-8
/// never has more than 255 UTF-16 units (a character of one UTF-16 unit takes one to three
/// bytes, one of two units takes four).
pub const MAX_NAME_BYTES: usize = 255;

/// The name used when nothing of the original survives.
const FALLBACK: &str = "attachment";

/// The longest extension kept apart when a name is shortened (bytes, with the dot). A longer
/// "extension" is not one (`Báo cáo. Phần hai về …`) and is cut with the rest.
const MAX_EXT_BYTES: usize = 16;

/// Characters that change how the surrounding text is displayed without being visible
/// themselves: the bidirectional embeddings, overrides and isolates (U+202A–202E, U+2066–2069),
/// the directional marks (U+200E, U+200F, U+061C), zero width space and no-break space (U+200B,
/// U+FEFF), the line and paragraph separators (U+2028, U+2029) and the soft hyphen (U+00AD).
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{061C}'
            | '\u{200B}'
            | '\u{FEFF}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{00AD}'
    )
}

/// Device names Windows reserves, whatever the extension (`CON.txt` is the console too).
fn is_reserved(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or("").trim_end();
    let upper = stem.to_uppercase();
    match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        _ => {
            let mut chars = upper.chars();
            let last = chars.next_back();
            let head = chars.as_str();
            (head == "COM" || head == "LPT")
                && last.is_some_and(|c| c.is_ascii_digit() || matches!(c, '¹' | '²' | '³'))
        }
    }
}

/// `name` as a file name every common file system accepts, that stays inside the folder it is
/// written to and shows what it is (see the module documentation for the rule). Pure and
/// deterministic: the same name always gives the same result, and a name that is already safe
/// is returned unchanged.
pub fn safe_file_name(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    // NFC: one spelling for each Vietnamese letter, so `Báo cáo.pdf` typed with combining marks
    // (NFD, as macOS writes names) is the same name as the precomposed one, as APFS and HFS+
    // would take it — not two names that overwrite each other on disk.
    let cleaned: String = last
        .nfc()
        .filter(|c| !c.is_control() && !is_invisible(*c))
        .map(|c| if "<>:\"|?*".contains(c) { '_' } else { c })
        .collect();
    let trimmed = cleaned
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    let mut out = if trimmed.is_empty() {
        FALLBACK.to_owned()
    } else if let Some(rest) = trimmed.strip_prefix('-') {
        format!("_{rest}")
    } else {
        trimmed.to_owned()
    };
    if is_reserved(&out) {
        out.insert(0, '_');
    }
    fit(&out, "")
}

/// Splits `name` into stem and extension (with its dot) when the extension is short enough to
/// be one and the stem is not empty.
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= MAX_EXT_BYTES && !name[i..].contains(' ') => {
            name.split_at(i)
        }
        _ => (name, ""),
    }
}

/// `name` with `suffix` inserted before its extension, cut to [`MAX_NAME_BYTES`]: the stem is
/// shortened (at a character boundary, and without a trailing space or dot), never the extension
/// or the suffix.
fn fit(name: &str, suffix: &str) -> String {
    let (stem, ext) = split_ext(name);
    let room = MAX_NAME_BYTES.saturating_sub(ext.len() + suffix.len());
    let mut end = stem.len().min(room);
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = stem[..end].trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    if cut.is_empty() {
        cut = if stem.is_empty() { "" } else { "_" };
    }
    format!("{cut}{suffix}{ext}")
}

/// Safe names for a set of files written into one folder: each name made safe, and a name that
/// collides with one already given (compared without case, as on NTFS, APFS and exFAT) gets
/// ` (2)`, ` (3)`, … before its extension, still within [`MAX_NAME_BYTES`].
#[derive(Debug, Default)]
pub struct SafeNames {
    used: std::collections::HashSet<String>,
}

impl SafeNames {
    /// An empty set.
    pub fn new() -> SafeNames {
        SafeNames::default()
    }

    /// The safe, unique name for `original`.
    pub fn name(&mut self, original: &str) -> String {
        let safe = safe_file_name(original);
        if self.used.insert(safe.to_lowercase()) {
            return safe;
        }
        let mut i: u64 = 2;
        loop {
            let candidate = fit(&safe, &format!(" ({i})"));
            if self.used.insert(candidate.to_lowercase()) {
                return candidate;
            }
            i += 1;
        }
    }
}

/// Why `name` must not be sent as an `AttachmentName`, or `None` when it may be. Receivers'
/// software turns attachment names into file names (VNPT's edXML library writes each file
/// into one folder): a `/` or `\\` makes a folder or escapes it, `.` and `..` are folders
/// themselves, a control character or a name over [`MAX_NAME_BYTES`] bytes throws and leaves
/// the whole document unreadable, and a bidirectional or invisible character hides the real
/// extension from the clerk who opens it. A trailing dot or space is refused too: file systems
/// and readers drop it, so the name a receiver saves is not the name its rule looked at
/// (`evil.zip.` is unzipped, as not ending in `.zip`, and then saved as `evil.zip`). Anything
/// else (Vietnamese in either Unicode form, leading spaces, the characters only Windows
/// forbids) is left to the receiver's own rule, as [`safe_file_name`] is ours. Two names of
/// one document that a receiver would take for one file are [`same_file_name`].
pub fn unsafe_to_send(name: &str) -> Option<String> {
    if let Some(c) = name.chars().find(|c| matches!(c, '/' | '\\')) {
        return Some(format!(
            "contains {c:?}, which a receiver's system takes as a folder; send it as {:?}",
            suggested_name(name)
        ));
    }
    if let Some(c) = name.chars().find(|&c| c.is_control() || is_invisible(c)) {
        return Some(format!(
            "contains U+{:04X} (a control or invisible character); send it as {:?}",
            u32::from(c),
            suggested_name(name)
        ));
    }
    if matches!(name.trim(), "." | "..") {
        return Some("is a folder name, not a file name".to_owned());
    }
    if let Some(c) = name
        .chars()
        .next_back()
        .filter(|&c| c == '.' || c.is_whitespace())
    {
        return Some(format!(
            "ends in {c:?}, which a receiver's system drops, so it would not be saved under the \
             name it was sent as; send it as {:?}",
            suggested_name(name)
        ));
    }
    if name.len() > MAX_NAME_BYTES {
        return Some(format!(
            "is {} bytes of UTF-8, over the {MAX_NAME_BYTES} a file name may have on the \
             receivers' systems; send it as {:?}",
            name.len(),
            suggested_name(name)
        ));
    }
    None
}

/// The key under which a receiver's file system compares `name` with the other attachment
/// names of a document: trimmed (as written), in NFC and lowercase. Receivers save the
/// files of a document into one folder, and NTFS, APFS and exFAT ignore case, APFS and HFS+
/// the Unicode form: two names of one key overwrite each other there.
pub fn same_file_name(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    name.trim().nfc().collect::<String>().to_lowercase()
}

/// The first name of `names` that is the [`same_file_name`] as an earlier one: `(earlier,
/// later)` indices, or `None` when all differ.
pub fn first_duplicate<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<(usize, usize)> {
    let mut seen = std::collections::HashMap::new();
    for (j, name) in names.into_iter().enumerate() {
        if let Some(i) = seen.insert(same_file_name(name), j) {
            return Some((i, j));
        }
    }
    None
}

/// A name to suggest instead of `names[j]`, the duplicate of an earlier name: the safe name
/// numbered as [`SafeNames`] numbers collisions, unique among all of `names`.
pub fn suggested_unique_name(names: &[&str], j: usize) -> String {
    let mut taken = SafeNames::new();
    for (i, n) in names.iter().enumerate() {
        if i != j {
            taken.name(&suggested_name(n));
        }
    }
    taken.name(&suggested_name(names[j]))
}

/// The name to suggest for a name [`unsafe_to_send`] refuses: path separators become `-` (a
/// name made of a số/ký hiệu such as `12/UBND-VP` keeps its meaning), then [`safe_file_name`].
pub fn suggested_name(name: &str) -> String {
    safe_file_name(&name.replace(['/', '\\'], "-"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_that_differ_only_in_unicode_form_are_one_name() {
        let nfc = "B\u{e1}o c\u{e1}o.pdf";
        let nfd = "Ba\u{301}o ca\u{301}o.pdf";
        assert_eq!(super::safe_file_name(nfd), nfc);
        let mut names = super::SafeNames::new();
        assert_eq!(names.name(nfc), nfc);
        assert_eq!(names.name(nfd), "B\u{e1}o c\u{e1}o (2).pdf");
    }

    use super::*;

    #[test]
    fn names_cannot_escape_the_folder() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("C:\\Windows\\win.ini"), "win.ini");
        assert_eq!(safe_file_name(".."), "attachment");
        assert_eq!(safe_file_name(""), "attachment");
        assert_eq!(safe_file_name(".bashrc"), "bashrc");
        assert_eq!(safe_file_name("a/"), "attachment");
        assert!(!std::path::Path::new(&safe_file_name("/abs/x")).is_absolute());
    }

    #[test]
    fn safe_names_are_unchanged() {
        for n in [
            "Công văn 125.pdf",
            "Phụ lục.txt",
            "a (2).pdf",
            "report.tar.gz",
            "README",
        ] {
            assert_eq!(safe_file_name(n), n);
        }
    }

    #[test]
    fn bidi_and_invisible_characters_are_removed() {
        assert_eq!(safe_file_name("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}', '\u{200B}', '\u{FEFF}',
        ] {
            assert_eq!(
                safe_file_name(&format!("a{c}b.pdf")),
                "ab.pdf",
                "U+{:04X}",
                c as u32
            );
        }
        assert_eq!(safe_file_name("a\u{0}b\nc\u{7f}.txt"), "abc.txt");
    }

    #[test]
    fn windows_rules() {
        assert_eq!(safe_file_name("a<b>c:d\"e|f?g*.txt"), "a_b_c_d_e_f_g_.txt");
        assert_eq!(safe_file_name("CON"), "_CON");
        assert_eq!(safe_file_name("nul.txt"), "_nul.txt");
        assert_eq!(safe_file_name("Com1.tar.gz"), "_Com1.tar.gz");
        assert_eq!(safe_file_name("lpt9"), "_lpt9");
        assert_eq!(safe_file_name("COM¹.txt"), "_COM¹.txt");
        assert_eq!(safe_file_name("CONSOLE.txt"), "CONSOLE.txt");
        assert_eq!(safe_file_name("COM10"), "COM10");
        assert_eq!(safe_file_name("name. . "), "name");
        assert_eq!(safe_file_name("-rf"), "_rf");
    }

    #[test]
    fn long_names_are_cut_keeping_the_extension() {
        let long = format!("{}.pdf", "Báo cáo tổng kết ".repeat(40));
        let safe = safe_file_name(&long);
        assert!(safe.len() <= MAX_NAME_BYTES, "{}", safe.len());
        assert!(safe.ends_with(".pdf"), "{safe}");
        assert!(safe.starts_with("Báo cáo tổng kết"), "{safe}");
        assert!(!safe.trim_end_matches(".pdf").ends_with(' '), "{safe:?}");
        // Four-byte characters cut at a boundary.
        let emoji = "😀".repeat(100);
        let safe = safe_file_name(&emoji);
        assert!(safe.len() <= MAX_NAME_BYTES && safe.chars().all(|c| c == '😀'));
        // An over-long "extension" is not kept apart.
        let dotted = format!("a.{}", "x".repeat(400));
        assert_eq!(safe_file_name(&dotted).len(), MAX_NAME_BYTES);
        // Idempotent.
        let once = safe_file_name(&long);
        assert_eq!(safe_file_name(&once), once);
    }

    #[test]
    fn collisions_get_numbers_within_the_limit() {
        let mut names = SafeNames::new();
        assert_eq!(names.name("a.pdf"), "a.pdf");
        assert_eq!(names.name("a.pdf"), "a (2).pdf");
        assert_eq!(names.name("A.PDF"), "A (3).PDF");
        assert_eq!(names.name("x/a.pdf"), "a (4).pdf");
        let long = format!("{}.pdf", "x".repeat(300));
        let first = names.name(&long);
        let second = names.name(&long);
        assert_ne!(first, second);
        assert!(
            second.len() <= MAX_NAME_BYTES && second.ends_with(" (2).pdf"),
            "{second}"
        );
    }

    #[test]
    fn names_unsafe_to_send() {
        for ok in [
            "Công văn 125.pdf",
            "Ba\u{301}o ca\u{301}o.pdf",
            "a:b?.pdf",
            "..a.pdf",
            "x",
        ] {
            assert_eq!(unsafe_to_send(ok), None, "{ok:?}");
        }
        let why = unsafe_to_send("Công văn 12/UBND-VP.pdf").unwrap();
        assert!(why.contains("\"Công văn 12-UBND-VP.pdf\""), "{why}");
        for bad in [
            "a\\b.pdf",
            "../x.pdf",
            "a\u{202E}fdp.exe",
            "a\nb",
            "..",
            ".",
        ] {
            assert!(unsafe_to_send(bad).is_some(), "{bad:?}");
        }
        // A trailing dot or space: dropped on the receiver's side after its rule looked at
        // the name (`a.zip.` is unzipped and then saved as `a.zip`).
        for (bad, suggested) in [
            ("a.zip.", "a.zip"),
            ("a.zip ", "a.zip"),
            ("Báo cáo. . ", "Báo cáo"),
            ("a.pdf\u{3000}", "a.pdf"),
        ] {
            let why = unsafe_to_send(bad).unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(why.contains(&format!("send it as {suggested:?}")), "{why}");
        }
        let long = format!("{}.pdf", "ệ".repeat(100));
        let why = unsafe_to_send(&long).unwrap();
        assert!(why.contains("304 bytes"), "{why}");
        assert!(unsafe_to_send(&suggested_name(&long)).is_none());
        assert!(unsafe_to_send(&"ệ".repeat(85)).is_none(), "255 bytes");
    }

    /// Names a receiver's file system takes for one file: letter case and Unicode form aside.
    #[test]
    fn duplicates_are_found_without_case_or_unicode_form() {
        let nfc = "H\u{1ed3} s\u{1a1}.zip";
        let nfd = "Ho\u{302}\u{300} so\u{31b}.ZIP";
        assert_eq!(same_file_name(nfc), same_file_name(nfd));
        assert_eq!(first_duplicate(["a.pdf", "b.pdf", "c.pdf"]), None);
        assert_eq!(first_duplicate(["x.pdf", nfc, "y.pdf", nfd]), Some((1, 3)));
        assert_eq!(first_duplicate(["a.zip", "A.zip", "a.zip"]), Some((0, 1)));
        assert_eq!(first_duplicate(["Đơn.pdf", "đơn.PDF"]), Some((0, 1)));
        // The suggestion is unique among all the names, the later ones too.
        let names = ["a.zip", "b.pdf", "A.ZIP", "a (2).zip"];
        assert_eq!(suggested_unique_name(&names, 2), "A (3).ZIP");
    }

    proptest::proptest! {
        /// For any name: within the byte limit, a single component, none of the forbidden or
        /// invisible characters, not a device name, not hidden, and stable when made safe again.
        #[test]
        fn every_name_becomes_safe(
            name in "(?s).{0,300}|[a-zA-Z\u{202E}\u{0}./\\\\ -]{0,300}|[ .-]?(CON|nul|Com1|LPT9)[ .]*(\\.[a-z]{1,3})?"
        ) {
            let safe = safe_file_name(&name);
            proptest::prop_assert!(!safe.is_empty() && safe.len() <= MAX_NAME_BYTES, "{safe:?}");
            proptest::prop_assert!(
                !safe.chars().any(|c| c.is_control() || is_invisible(c) || "/\\<>:\"|?*".contains(c)),
                "{safe:?}"
            );
            proptest::prop_assert!(!is_reserved(&safe), "{safe:?}");
            proptest::prop_assert!(!safe.starts_with(['.', '-']) && !safe.ends_with(['.', ' ']), "{safe:?}");
            proptest::prop_assert_eq!(safe_file_name(&safe), safe.clone());
            proptest::prop_assert_eq!(unsafe_to_send(&suggested_name(&name)), None);
            let mut names = SafeNames::new();
            let (a, b) = (names.name(&name), names.name(&name));
            proptest::prop_assert!(a != b && b.len() <= MAX_NAME_BYTES, "{a:?} {b:?}");
        }
    }
}
