//! What a node keeps of a verified package: the bytes it verified, less everything the signature
//! does not cover.
//!
//! A signed package carries bytes nobody signed: comments (a `URI=""` reference never digests
//! them), whitespace and comments outside the document element, and inside the `Signature`
//! everything but the canonical `SignedInfo`, the `SignatureValue` and the certificates (line
//! breaks in base64, `Id` or `xml:base` attributes, `X509SubjectName`, comments, stray text).
//! Anyone on the path can add or change them without breaking the signature. Archiving and
//! forwarding them as "the signed bytes" would let a package say things its signer never said,
//! so the kept form ([`Archive::apply`]) is the verified text with
//!
//! - every comment outside the `Signature` removed (an empty `<!---->` stays only where removing
//!   the markup would join what it separated into something else: a `\r` and a `\n` into one
//!   line end, or `]]` and `>` into the forbidden `]]>`);
//! - the text between the XML declaration and the document element, and after the document
//!   element, rewritten to its processing instructions (which *are* digested) with one line
//!   break each;
//! - the `Signature` rebuilt from its verified parts: the canonical `SignedInfo` exactly as
//!   verified, the signature value in one base64 line, and the certificates the caller keeps.
//!
//! Markup inside the document element (attribute quotes, whitespace in tags, character
//! references) is kept as it was: it is the signed content as the signer wrote it. Nothing in this
//! module parses the package again; the edits are byte ranges of the tree verification built.

use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use roxmltree::Node;

use crate::edxml::xml::Xml;

/// How a verified package is kept: edits to its verified text (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct Archive {
    /// Sorted, disjoint byte ranges of the verified text and what replaces them. The
    /// `Signature`'s replacement is empty here: it depends on the certificates kept.
    edits: Vec<(Range<usize>, Vec<u8>)>,
    /// Index in `edits` of the `Signature`, when it is rebuilt.
    signature_edit: Option<usize>,
    /// The rebuilt `Signature` up to and including its `SignatureValue`.
    head: String,
    /// The prefix of the rebuilt element names, with its colon (`"ds:"`, or `""`).
    prefix: String,
}

/// What the verifier found, for the rebuilt `Signature`.
pub(super) struct Verified<'a, 'i> {
    pub sig: Node<'a, 'i>,
    pub signed_info: Node<'a, 'i>,
    /// The canonical `SignedInfo` the signature value verified over.
    pub canonical_signed_info: &'a [u8],
    /// The decoded signature value.
    pub signature_value: &'a [u8],
    /// DER of the signer's certificate.
    pub signer: &'a [u8],
}

impl Archive {
    /// Plans the kept form of `xml`. `same` is the verifier's check of a rebuilt `Signature`
    /// element (complete, with the signer's certificate) in the package's own context: it must
    /// give the very `SignedInfo` and signature value that verified. A rebuild that does not
    /// pass is not used: the `Signature` is then kept as it came
    /// ([`signature_rebuilt`](Self::signature_rebuilt) says which).
    pub(super) fn plan(xml: &Xml, v: &Verified, same: impl Fn(&str) -> bool) -> Archive {
        let text = xml.text.as_bytes();
        let root = xml.doc.root_element();
        let root_range = root.range();
        let sig_range = v.sig.range();

        let mut out = Planner::new(text);

        // The prolog: the declaration as written, then the processing instructions.
        let decl_end = declaration_end(text);
        let mut prolog = Vec::new();
        if decl_end > 0 {
            prolog.push(b'\n');
        }
        for pi in xml.doc.root().children().take_while(|n| !n.is_element()) {
            if pi.is_pi() {
                prolog.extend_from_slice(&text[pi.range()]);
                prolog.push(b'\n');
            }
        }
        out.edit(decl_end..root_range.start, prolog);

        // Comments inside the document element, and the Signature.
        let (head, prefix) = rebuild(text, v, &same);
        let mut signature_edit = None;
        for n in root.descendants() {
            if n.id() == v.sig.id() {
                if head.is_some() {
                    signature_edit = Some(out.edits.len());
                    // The replacement is filled in by `apply`; for the junction rule what
                    // matters is that it ends with `>`.
                    out.edit(sig_range.clone(), Vec::new());
                    out.tail = *b"e>";
                }
            } else if n.is_comment() && !sig_range.contains(&n.range().start) {
                let r = n.range();
                let joins = out.joins(&r);
                out.edit(
                    r,
                    if joins {
                        b"<!---->".to_vec()
                    } else {
                        Vec::new()
                    },
                );
            }
        }

        // The epilog: the processing instructions, each on its own line.
        let mut epilog = Vec::new();
        for pi in root.next_siblings().filter(Node::is_pi) {
            epilog.push(b'\n');
            epilog.extend_from_slice(&text[pi.range()]);
        }
        epilog.push(b'\n');
        out.edit(root_range.end..text.len(), epilog);

        // Edits that change nothing are dropped, so a package whose signer wrote only what it
        // signed (as this node's signer does) is kept without touching its bytes. The
        // Signature's is compared when applied, with the certificates.
        let mut edits = Vec::with_capacity(out.edits.len());
        let mut kept_signature = None;
        for (i, (r, with)) in out.edits.into_iter().enumerate() {
            if Some(i) == signature_edit {
                kept_signature = Some(edits.len());
                edits.push((r, with));
            } else if text[r.clone()] != with[..] {
                edits.push((r, with));
            }
        }
        Archive {
            edits,
            signature_edit: kept_signature,
            head: head.unwrap_or_default(),
            prefix,
        }
    }

    /// Whether the `Signature` is rebuilt from its verified parts (`false`: kept as it came,
    /// because the rebuilt element did not check out — never expected, but never a refusal).
    pub fn signature_rebuilt(&self) -> bool {
        self.signature_edit.is_some()
    }

    /// The rebuilt `Signature` element with `certificates` (DER, signer first) in
    /// `KeyInfo/X509Data`; `None` when it is not rebuilt.
    pub fn signature_element(&self, certificates: &[&[u8]]) -> Option<String> {
        self.signature_edit?;
        Some(element(&self.head, &self.prefix, certificates))
    }

    /// The kept form of `text` (the verified text: the input from
    /// [`crate::verify::VerifiedPackage::verified_from`] on), with `certificates` in the rebuilt
    /// `Signature`. Edited in the caller's buffer when no edit grows it before the next
    /// (the usual case: everything removed is markup); otherwise copied once.
    pub fn apply(&self, mut text: Vec<u8>, certificates: &[&[u8]]) -> Vec<u8> {
        let signature = self.signature_element(certificates);
        let edits: Vec<(Range<usize>, &[u8])> = self
            .edits
            .iter()
            .enumerate()
            .filter(|(_, (r, _))| r.end <= text.len())
            .map(
                |(i, (r, with))| match (&signature, Some(i) == self.signature_edit) {
                    (Some(s), true) => (r.clone(), s.as_bytes()),
                    _ => (r.clone(), with.as_slice()),
                },
            )
            .filter(|(r, with)| text[r.clone()] != **with)
            .collect();
        if edits.is_empty() {
            return text;
        }
        // In place when the output never runs ahead of the input: every prefix of the edits
        // shrinks the text or keeps its length.
        let (mut net, mut in_place) = (0isize, true);
        for (r, with) in &edits {
            net += with.len() as isize - r.len() as isize;
            in_place &= net <= 0;
        }
        if in_place {
            let (mut read, mut write) = (0, 0);
            for (r, with) in &edits {
                text.copy_within(read..r.start, write);
                write += r.start - read;
                text[write..write + with.len()].copy_from_slice(with);
                write += with.len();
                read = r.end;
            }
            let len = text.len();
            text.copy_within(read..len, write);
            text.truncate(write + (len - read));
            text
        } else {
            let len = text.len() as isize + net;
            let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            let mut read = 0;
            for (r, with) in &edits {
                out.extend_from_slice(&text[read..r.start]);
                out.extend_from_slice(with);
                read = r.end;
            }
            out.extend_from_slice(&text[read..]);
            out
        }
    }
}

/// Builds the edits in order, tracking the last two bytes of the output so far (for the
/// junction rule of removed comments).
struct Planner<'t> {
    text: &'t [u8],
    edits: Vec<(Range<usize>, Vec<u8>)>,
    /// Where the text after the last edit starts.
    read: usize,
    /// The last two bytes of the output up to `read`.
    tail: [u8; 2],
}

impl<'t> Planner<'t> {
    fn new(text: &'t [u8]) -> Self {
        Planner {
            text,
            edits: Vec::new(),
            read: 0,
            tail: [0, 0],
        }
    }

    /// The output's last two bytes once the text up to `at` is copied.
    fn tail_at(&self, at: usize) -> [u8; 2] {
        match &self.text[self.read..at] {
            [.., a, b] => [*a, *b],
            [b] => [self.tail[1], *b],
            [] => self.tail,
        }
    }

    fn edit(&mut self, range: Range<usize>, with: Vec<u8>) {
        let mut tail = self.tail_at(range.start);
        for &b in &with[with.len().saturating_sub(2)..] {
            tail = [tail[1], b];
        }
        self.tail = tail;
        self.read = range.end;
        self.edits.push((range, with));
    }

    /// Whether removing the markup at `r` would join the bytes around it into something else:
    /// a `\r` and a `\n` into one line end, or `]]` and `>` into a `]]>`.
    fn joins(&self, r: &Range<usize>) -> bool {
        let before = self.tail_at(r.start);
        let after = &self.text[r.end..];
        (before[1] == b'\r' && after.first() == Some(&b'\n'))
            || (before == *b"]]" && after.first() == Some(&b'>'))
            || (before[1] == b']' && after.starts_with(b"]>"))
    }
}

/// A `Signature` element: `head` (up to its `SignatureValue`), then `KeyInfo` with
/// `certificates` in one `X509Data`.
fn element(head: &str, p: &str, certificates: &[&[u8]]) -> String {
    let mut s = String::with_capacity(head.len() + 64 + 1400 * certificates.len());
    s.push_str(head);
    s.push_str(&format!("<{p}KeyInfo><{p}X509Data>"));
    for c in certificates {
        s.push_str(&format!("<{p}X509Certificate>"));
        s.push_str(&B64.encode(c));
        s.push_str(&format!("</{p}X509Certificate>"));
    }
    s.push_str(&format!("</{p}X509Data></{p}KeyInfo></{p}Signature>"));
    s
}

/// End of the XML declaration (`<?xml …?>`) at the start of `text`, or 0 without one.
fn declaration_end(text: &[u8]) -> usize {
    let is_decl = text.starts_with(b"<?xml") && text.get(5).is_some_and(u8::is_ascii_whitespace);
    if !is_decl {
        return 0;
    }
    memchr::memmem::find(text, b"?>").map_or(0, |i| i + 2)
}

/// The rebuilt `Signature` up to its `SignatureValue`, and the prefix of its names; `None` (and
/// the prefix) when no rebuild passes `same`.
fn rebuild(text: &[u8], v: &Verified, same: &dyn Fn(&str) -> bool) -> (Option<String>, String) {
    let si_start = v.signed_info.range().start;
    let qname = qname_at(text, si_start);
    let prefix = match qname.split_once(':') {
        Some((p, _)) => format!("{p}:"),
        None => String::new(),
    };
    let Ok(canonical) = std::str::from_utf8(v.canonical_signed_info) else {
        return (None, prefix);
    };
    let ns = v.sig.tag_name().namespace().unwrap_or("");
    let decl = match prefix.strip_suffix(':') {
        Some(p) => format!(" xmlns:{p}=\"{}\"", escape(ns)),
        None => format!(" xmlns=\"{}\"", escape(ns)),
    };
    let value = B64.encode(v.signature_value);
    let p = &prefix;
    let head = |wrapper_decls: &str, signed_info: &str| {
        format!(
            "<{p}Signature{wrapper_decls}>{signed_info}<{p}SignatureValue>{value}</{p}SignatureValue>"
        )
    };
    // 1. Only the binding of the prefix on the wrapper; SignedInfo without its copy of it.
    let end = start_tag_end(canonical.as_bytes(), 0).unwrap_or(0);
    let (tag, rest) = canonical.split_at(end);
    let minimal = head(&decl, &format!("{}{rest}", tag.replacen(&decl, "", 1)));
    let checks = |head: &str| same(&element(head, &prefix, &[v.signer]));
    if checks(&minimal) {
        return (Some(minimal), prefix);
    }
    // 2. The namespace declarations the original Signature element made, as they were: the
    //    in-scope namespaces of the canonical SignedInfo are then exactly the verified ones.
    let parent = v.sig.parent();
    let mut decls = String::new();
    for n in v.sig.namespaces() {
        let inherited = parent.is_some_and(|p| {
            p.namespaces()
                .any(|m| m.name() == n.name() && m.uri() == n.uri())
        });
        if !inherited {
            match n.name() {
                Some(name) => decls.push_str(&format!(" xmlns:{name}=\"{}\"", escape(n.uri()))),
                None => decls.push_str(&format!(" xmlns=\"{}\"", escape(n.uri()))),
            }
        }
    }
    let parent_default = parent.and_then(|p| p.default_namespace());
    if parent_default.is_some() && v.sig.default_namespace().is_none() {
        decls.push_str(" xmlns=\"\"");
    }
    let own = prefix.strip_suffix(':');
    if v.sig.lookup_namespace_uri(own) != Some(ns) {
        decls.push_str(&decl);
    }
    let faithful = head(&decls, canonical);
    if checks(&faithful) {
        return (Some(faithful), prefix);
    }
    (None, prefix)
}

/// The qualified name of the element whose start tag begins at `start`.
pub(super) fn qname_at(text: &[u8], start: usize) -> &str {
    let rest = &text[start + 1..];
    let len = rest
        .iter()
        .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')
        .unwrap_or(rest.len());
    std::str::from_utf8(&rest[..len]).unwrap_or("")
}

/// The end (after `>`) of the start tag beginning at `start`.
pub(super) fn start_tag_end(text: &[u8], start: usize) -> Option<usize> {
    let mut quote = None;
    for (i, &b) in text.get(start..)?.iter().enumerate() {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => return Some(start + i + 1),
            None => {}
        }
    }
    None
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use crate::dsig::{self, Policy};
    use crate::edxml::xml::{self, Limits};

    fn signer() -> crate::signer::KeyFileSigner {
        let pki = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/test-only");
        crate::signer::KeyFileSigner::from_files(
            &pki.join("stttt-gialai.key.pem"),
            &pki.join("stttt-gialai.cert.pem"),
            Some(&pki.join("chain.pem")),
        )
        .unwrap()
    }

    fn unsigned() -> String {
        let doc = crate::edxml::samples::new_document();
        String::from_utf8(crate::edxml::write_document(&doc).unwrap()).unwrap()
    }

    fn sign(xml: &str) -> String {
        String::from_utf8(
            dsig::sign_package(xml.as_bytes(), &signer(), &Limits::default()).unwrap(),
        )
        .unwrap()
    }

    /// Verifies `bytes` (trusting any signer) and returns the signed identity and the kept form.
    fn keep(bytes: &str) -> ([u8; 32], String) {
        let parsed = xml::parse(bytes.as_bytes(), &Limits::default()).unwrap();
        let (v, ()) = dsig::verify(&parsed, &Policy::default(), |_, _| Ok(())).unwrap();
        assert!(v.archive.signature_rebuilt());
        let certs: Vec<&[u8]> = std::iter::once(v.signer.as_slice())
            .chain(v.chain.iter().map(Vec::as_slice))
            .collect();
        let kept = v
            .archive
            .apply(bytes.as_bytes()[parsed.offset..].to_vec(), &certs);
        (v.signed_identity, String::from_utf8(kept).unwrap())
    }

    /// Removing a comment never joins what it separated: `]]` and `>` would make `]]>` (not
    /// well-formed), `\r` and `\n` one line end instead of two. There an empty comment stays.
    #[test]
    fn a_comment_whose_removal_would_join_its_neighbours_leaves_an_empty_one() {
        let xml = unsigned();
        let at = xml.find("<Subject>").unwrap() + "<Subject>".len();
        let mut base = xml.clone();
        base.insert_str(at, "a]]&gt;b\n\nc]]&gt;d ");
        let base = sign(&base);
        let (identity, kept_base) = keep(&base);
        assert_eq!(kept_base, base);
        let messy = base
            .replacen("a]]&gt;b", "a]]<!-- x -->>b", 1)
            .replacen("b\n\nc", "b\r<!-- y -->\nc", 1)
            .replacen("c]]&gt;d", "c]<!-- z -->]<!-- w -->>d", 1);
        assert_ne!(messy, base);
        let (same, kept) = keep(&messy);
        assert_eq!(same, identity);
        assert!(!kept.contains("x -->") && !kept.contains("y -->"), "{kept}");
        assert!(kept.contains("a]]<!---->>b"), "{kept}");
        assert!(kept.contains("b\r<!---->\nc"), "{kept}");
        assert!(kept.contains("c]]<!---->>d"), "{kept}");
        // The kept form parses and verifies to the same identity.
        assert_eq!(keep(&kept), (identity, kept.clone()));
        // Where nothing joins, the comment goes entirely.
        let plain = base.replacen("a]]&gt;b", "a]]<!-- x -->&gt;b", 1);
        assert_eq!(keep(&plain).1, base);
    }

    /// Comments at any two places of text full of `]` and `>` (and between line ends), `>`
    /// written raw where it may be: every such package is the same package, and its kept form
    /// parses and verifies to it.
    #[test]
    fn comments_anywhere_in_tricky_text_are_removed_safely() {
        let tokens = [
            "a", "]", "]", "&gt;", "]", "\n", "]", "]", "]", "&gt;", "\n", "\n", "&gt;", "b",
        ];
        let xml = unsigned();
        let at = xml.find("<Subject>").unwrap() + "<Subject>".len();
        let mut base = xml.clone();
        base.insert_str(at, &tokens.concat());
        let base = sign(&base);
        let (identity, _) = keep(&base);
        let mut n = 0;
        for i in 0..=tokens.len() {
            for j in i..=tokens.len() {
                let mut text = String::new();
                for (k, t) in tokens.iter().enumerate() {
                    if k == i {
                        text.push_str("<!-- i -->");
                    }
                    if k == j {
                        text.push_str("<!-- j -->");
                    }
                    // `>` raw wherever that is well-formed (not after `]]`): so a comment can
                    // stand between `]]` and `>`.
                    match *t {
                        "&gt;" if !text.ends_with("]]") => text.push('>'),
                        t => text.push_str(t),
                    }
                }
                if j == tokens.len() {
                    text.push_str("<!-- j -->");
                }
                let messy = base.replacen(&tokens.concat(), &text, 1);
                assert_ne!(messy, base);
                let (same, kept) = keep(&messy);
                assert_eq!(same, identity, "{text:?}");
                assert!(!kept.contains("<!-- "), "{text:?}");
                assert_eq!(keep(&kept).0, identity, "{text:?}");
                n += 1;
            }
        }
        assert_eq!(n, 120);
    }

    /// Processing instructions outside the document element are digested, so they stay; what is
    /// around them (comments, whitespace) is not, so it goes.
    #[test]
    fn processing_instructions_outside_the_document_element_stay_and_nothing_else() {
        let xml = unsigned();
        let body = &xml[xml.find("<edXML").unwrap()..];
        let body = body.trim_end();
        let base = sign(&format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<?xml-stylesheet href=\"a.xsl\"?>\n{body}\n<?after x?>\n"
        ));
        let (identity, kept) = keep(&base);
        assert_eq!(kept, base);
        let messy = base
            .replacen(
                "?>\n<?xml-stylesheet",
                "?>\r\n<!-- a -->\n<?xml-stylesheet",
                1,
            )
            .replacen(
                "\n<?after x?>\n",
                "\n<!-- b -->\n  <?after x?>  <!-- c -->\n\n",
                1,
            );
        let (same, kept) = keep(&messy);
        assert_eq!(same, identity);
        assert_eq!(kept, base);
        // And without a declaration, none is added.
        let bare = sign(&format!("{body}\n"));
        assert_eq!(keep(&bare).1, bare);
        assert_eq!(keep(&format!("{bare}<!-- d -->")).1, bare);
    }

    /// A growing edit (the Signature rebuilt longer than it came) copies once, correctly.
    #[test]
    fn edits_that_grow_the_text_are_applied_by_copy() {
        let base = sign(&unsigned());
        assert_eq!(keep(&base).1, base);
        // The prolog made longer than it came cannot be edited in place.
        let short = base.replacen("?>\n<edXML", "?><edXML", 1);
        assert_eq!(keep(&short).1, base);
    }
}
