//! Canonical XML held to libxml2, byte for byte.
//!
//! * Every `tests/data/c14n/*.xml` is canonicalised whole, inclusive and exclusive, and compared with
//!   `xmllint --c14n` / `xmllint --exc-c14n`. xmllint only has the WithComments variants; the
//!   comment-free reference is derived from its output by dropping the comments (in canonical XML
//!   every `<` is markup, so that is exact).
//! * Document subsets (SignedInfo, an element deep inside, the enveloped-signature exclusion, the
//!   InclusiveNamespaces PrefixList), which xmllint cannot do, are compared with outputs that
//!   libxml2's C14N produced for the same node-sets (`subsets.txt`, `expected/`, made by
//!   `tools/regen.sh`).
//! * A property test compares random documents with xmllint.
//!
//! xmllint is required (Debian/Ubuntu: `apt-get install libxml2-utils`); set `XMLLINT` to override.

use std::path::{Path, PathBuf};
use std::process::Command;

use lienthong::dsig::c14n::{self, DigestSink, Method, Sink};
use proptest::prelude::*;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/c14n")
}

fn xmllint() -> PathBuf {
    if let Some(p) = std::env::var_os("XMLLINT") {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("xmllint"))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => p,
        None => panic!(
            "xmllint not found on PATH: these tests compare against libxml2; \
             install libxml2-utils (apt-get install libxml2-utils) or set XMLLINT"
        ),
    }
}

/// `xmllint --c14n` (inclusive) or `--exc-c14n` of a file: canonical XML WITH comments.
fn xmllint_c14n(file: &Path, exclusive: bool) -> Vec<u8> {
    let flag = if exclusive { "--exc-c14n" } else { "--c14n" };
    let out = Command::new(xmllint())
        .arg(flag)
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!("running xmllint failed ({e}); install libxml2-utils (apt-get install libxml2-utils)")
        });
    assert!(
        out.status.success(),
        "xmllint {flag} {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn method(exclusive: bool, with_comments: bool, prefixes: &[&str]) -> Method {
    if exclusive {
        Method::Exclusive {
            with_comments,
            inclusive_prefixes: prefixes.iter().map(|s| s.to_string()).collect(),
        }
    } else {
        Method::Inclusive { with_comments }
    }
}

fn parse(text: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("parse: {e}"))
}

/// Drops the comments from canonical XML (with the newline that goes with one outside the
/// document element). In canonical XML `<` only ever starts markup and `"` delimits attribute
/// values, so a small scanner is exact.
fn strip_comments(c: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(c.len());
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut i = 0;
    let find = |from: usize, pat: &[u8]| -> usize {
        c[from..]
            .windows(pat.len())
            .position(|w| w == pat)
            .map(|p| from + p)
            .expect("unterminated markup in canonical XML")
    };
    while i < c.len() {
        if c[i] != b'<' {
            out.push(c[i]);
            i += 1;
            continue;
        }
        if c[i..].starts_with(b"<!--") {
            let end = find(i + 4, b"-->") + 3;
            if depth == 0 {
                if seen_root {
                    assert_eq!(out.pop(), Some(b'\n'), "comment after root without newline");
                } else {
                    assert_eq!(
                        c.get(end),
                        Some(&b'\n'),
                        "comment before root without newline"
                    );
                    i = end + 1;
                    continue;
                }
            }
            i = end;
        } else if c[i..].starts_with(b"<?") {
            let end = find(i + 2, b"?>") + 2;
            out.extend_from_slice(&c[i..end]);
            i = end;
        } else {
            let closing = c[i..].starts_with(b"</");
            let mut j = i + 1;
            let mut quoted = false;
            while c[j] != b'>' || quoted {
                if c[j] == b'"' {
                    quoted = !quoted;
                }
                j += 1;
            }
            out.extend_from_slice(&c[i..=j]);
            if closing {
                depth -= 1;
            } else {
                depth += 1;
                seen_root = true;
            }
            i = j + 1;
        }
    }
    out
}

fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .expect("tests/data/c14n")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    files
}

/// A readable account of where two outputs first differ.
fn diff(want: &[u8], got: &[u8]) -> String {
    let at = want
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(want.len().min(got.len()));
    let ctx = |s: &[u8]| {
        String::from_utf8_lossy(&s[at.saturating_sub(60)..(at + 60).min(s.len())]).into_owned()
    };
    format!(
        "first difference at byte {at} (lengths {} vs {})\n  libxml2: {:?}\n  ours:    {:?}",
        want.len(),
        got.len(),
        ctx(want),
        ctx(got)
    )
}

#[test]
fn corpus_has_at_least_30_documents() {
    let n = corpus().len();
    assert!(n >= 30, "only {n} documents in tests/data/c14n");
}

#[test]
fn whole_documents_match_xmllint() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for file in corpus() {
        let text = std::fs::read_to_string(&file).unwrap();
        let doc = parse(&text);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for exclusive in [false, true] {
            let reference_wc = xmllint_c14n(&file, exclusive);
            let reference = strip_comments(&reference_wc);
            let ours_wc = c14n::to_vec(doc.root(), &method(exclusive, true, &[]), None);
            let ours = c14n::to_vec(doc.root(), &method(exclusive, false, &[]), None);
            let kind = if exclusive { "exc-c14n" } else { "c14n" };
            if ours_wc != reference_wc {
                failures.push(format!(
                    "{name} {kind}#WithComments: {}",
                    diff(&reference_wc, &ours_wc)
                ));
            }
            if ours != reference {
                failures.push(format!("{name} {kind}: {}", diff(&reference, &ours)));
            }
            if strip_comments(&ours_wc) != ours {
                failures.push(format!(
                    "{name} {kind}: WithComments less comments != without comments"
                ));
            }
            checked += 2;
        }
    }
    // The figure the README would otherwise state (`cargo test --test c14n_corpus -- --nocapture`).
    println!(
        "c14n corpus: {} documents, {checked} comparisons with xmllint (each also with comments)",
        corpus().len()
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Finds the element named by a manifest selector "N:LocalName".
fn select<'a, 'i>(doc: &'a roxmltree::Document<'i>, sel: &str) -> roxmltree::Node<'a, 'i> {
    let (n, name) = sel.split_once(':').expect("selector N:LocalName");
    let n: usize = n.parse().unwrap();
    let el = doc
        .descendants()
        .filter(|n| n.is_element())
        .nth(n)
        .unwrap_or_else(|| panic!("no element {sel}"));
    assert_eq!(el.tag_name().name(), name, "selector {sel}");
    el
}

#[test]
fn subsets_match_libxml2() {
    let dir = data_dir();
    let manifest = std::fs::read_to_string(dir.join("subsets.txt")).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in manifest.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        let [file, label, mode, node, exclude, prefixes] = cols[..] else {
            panic!("bad manifest line: {line}");
        };
        let prefixes: Vec<&str> = if prefixes == "-" {
            vec![]
        } else {
            prefixes.split(',').collect()
        };
        let m = match mode {
            "c14n" => method(false, false, &prefixes),
            "c14n-wc" => method(false, true, &prefixes),
            "exc" => method(true, false, &prefixes),
            "exc-wc" => method(true, true, &prefixes),
            _ => panic!("bad mode in {line}"),
        };
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let doc = parse(&text);
        let node = if node == "/" {
            doc.root()
        } else {
            select(&doc, node)
        };
        let exclude = (exclude != "-").then(|| select(&doc, exclude).id());
        let stem = file.strip_suffix(".xml").unwrap();
        let want = std::fs::read(dir.join("expected").join(format!("{stem}.{label}.out")))
            .unwrap_or_else(|e| panic!("expected output for {file} {label}: {e}"));
        let got = c14n::to_vec(node, &m, exclude);
        if got != want {
            failures.push(format!("{file} {label}: {}", diff(&want, &got)));
        }
        // The digest path must see exactly the same bytes.
        let mut sink = DigestSink::new(&aws_lc_rs::digest::SHA256);
        c14n::canonicalize(node, &m, exclude, &mut sink);
        assert_eq!(
            sink.finish().as_ref(),
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &got).as_ref(),
            "{file} {label}: DigestSink"
        );
        checked += 1;
    }
    assert!(checked >= 100, "only {checked} subset cases");
    println!("c14n subsets: {checked} document-subset cases compared with libxml2's output");
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// WithComments outputs written out by hand from the spec, independent of any tool.
#[test]
fn with_comments_hand_written() {
    let cases: &[(&str, bool, &str)] = &[
        (
            "<?xml version='1.0'?>\n<!--a-->\n<?p d?>\n<r>\n<!--b--><x/><!---->\n</r>\n<!--c-->\n",
            false,
            "<!--a-->\n<?p d?>\n<r>\n<!--b--><x></x><!---->\n</r>\n<!--c-->",
        ),
        (
            "<!--1--><r xmlns:u='urn:u'><!-- x & < > --><u:e/></r><!--2--><?z?>",
            true,
            "<!--1-->\n<r><!-- x & < > --><u:e xmlns:u=\"urn:u\"></u:e></r>\n<!--2-->\n<?z?>",
        ),
        (
            "<r>\r\n<!--line1\r\nline2-->\r\n</r>",
            false,
            "<r>\n<!--line1\nline2-->\n</r>",
        ),
    ];
    for (xml, exclusive, want) in cases {
        let doc = parse(xml);
        let got = c14n::to_vec(doc.root(), &method(*exclusive, true, &[]), None);
        assert_eq!(String::from_utf8(got).unwrap(), *want, "{xml:?}");
        // And the element alone: comments inside kept, none of the newline rules.
        let el = doc.root_element();
        let got = c14n::to_vec(el, &method(*exclusive, true, &[]), None);
        let s = String::from_utf8(got).unwrap();
        assert!(s.starts_with("<r") && s.ends_with("</r>"), "{s:?}");
    }
    // Hand-written subsets: SignedInfo under a default namespace and xml:lang.
    let xml = r#"<r xmlns="urn:r" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xml:lang="vi"><ds:Signature><ds:SignedInfo><!--c--><ds:Reference URI=""/></ds:SignedInfo></ds:Signature></r>"#;
    let doc = parse(xml);
    let si = doc
        .descendants()
        .find(|n| n.has_tag_name("SignedInfo"))
        .unwrap();
    let got = c14n::to_vec(si, &method(false, true, &[]), None);
    assert_eq!(
        String::from_utf8(got).unwrap(),
        r#"<ds:SignedInfo xmlns="urn:r" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xml:lang="vi"><!--c--><ds:Reference URI=""></ds:Reference></ds:SignedInfo>"#
    );
    let got = c14n::to_vec(si, &method(true, true, &[]), None);
    assert_eq!(
        String::from_utf8(got).unwrap(),
        r#"<ds:SignedInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><!--c--><ds:Reference URI=""></ds:Reference></ds:SignedInfo>"#
    );
}

// ---------------------------------------------------------------------------------------------
// Random documents against xmllint.

const PREFIXES: [&str; 4] = ["", "p", "q", "r"];
const URIS: [&str; 5] = ["", "urn:a", "http://example.com/b", "urn:a:c", "urn:A"];
const ELEMENT_NAMES: [&str; 5] = ["a", "b", "c", "\u{e9}l\u{e9}ment", "x-y"];
const ATTR_NAMES: [&str; 5] = ["a", "b", "z", "\u{dc}", "id"];
const XML_ATTRS: [&str; 3] = ["lang", "space", "base"];

#[derive(Debug, Clone)]
enum GenNode {
    Element(GenElement),
    Text(String),
    Cdata(String),
    Comment(String),
    Pi(usize, String),
}

#[derive(Debug, Clone)]
struct GenElement {
    prefix: usize,
    name: usize,
    /// (prefix index, uri index); prefix 0 = default namespace, uri 0 = undeclare (default only).
    decls: Vec<(usize, usize)>,
    /// (prefix index 0..=4 where 4 = xml, name index, value)
    attrs: Vec<(usize, usize, String)>,
    children: Vec<GenNode>,
}

#[derive(Debug, Clone)]
struct GenDoc {
    before: Vec<GenNode>,
    root: GenElement,
    after: Vec<GenNode>,
}

fn text_strategy() -> impl Strategy<Value = String> {
    "[a-zA-Z &<>\"'\t\n\r\u{1EE6}\u{300}]{0,12}"
}

fn leaf_strategy() -> impl Strategy<Value = GenNode> {
    prop_oneof![
        3 => text_strategy().prop_map(GenNode::Text),
        1 => "[a-z <>&\"\n]{0,8}".prop_map(GenNode::Cdata),
        1 => "[a-z <>&\n]{0,8}".prop_map(GenNode::Comment),
        1 => (0..3usize, "[a-z <&\n ]{0,8}").prop_map(|(t, d)| GenNode::Pi(t, d)),
    ]
}

fn element_strategy(
    children: impl Strategy<Value = Vec<GenNode>>,
) -> impl Strategy<Value = GenElement> {
    (
        0..4usize,
        0..ELEMENT_NAMES.len(),
        prop::collection::vec((0..4usize, 0..URIS.len()), 0..3),
        prop::collection::vec(
            (0..5usize, 0..ATTR_NAMES.len(), "[a-z &<>\"'\t\n\r]{0,6}"),
            0..4,
        ),
        children,
    )
        .prop_map(|(prefix, name, decls, attrs, children)| GenElement {
            prefix,
            name,
            decls,
            attrs,
            children,
        })
}

fn doc_strategy() -> impl Strategy<Value = GenDoc> {
    let node = leaf_strategy().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            1 => leaf_strategy(),
            2 => element_strategy(prop::collection::vec(inner, 0..5)).prop_map(GenNode::Element),
        ]
    });
    let outside = prop_oneof![
        "[a-z <>&]{0,6}".prop_map(GenNode::Comment),
        (0..3usize, "[a-z ]{0,6}").prop_map(|(t, d)| GenNode::Pi(t, d)),
    ];
    (
        prop::collection::vec(outside.clone(), 0..3),
        element_strategy(prop::collection::vec(node, 0..6)),
        prop::collection::vec(outside, 0..3),
    )
        .prop_map(|(before, root, after)| GenDoc {
            before,
            root,
            after,
        })
}

fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            _ => out.push(c),
        }
    }
}

/// With `literal_tabs`, every other tab is written as is (the parser turns it into a space).
fn escape_attr(s: &str, literal_tabs: bool, out: &mut String) {
    for (i, c) in s.chars().enumerate() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            // Alternate between a literal tab (normalised to a space) and a reference (kept).
            '\t' if literal_tabs && i % 2 == 0 => out.push('\t'),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            _ => out.push(c),
        }
    }
}

fn render_node(n: &GenNode, scope: &mut Vec<(usize, usize)>, out: &mut String) {
    match n {
        GenNode::Element(e) => render_element(e, scope, out),
        GenNode::Text(t) => escape_text(t, out),
        GenNode::Cdata(t) => {
            out.push_str("<![CDATA[");
            out.push_str(t);
            out.push_str("]]>");
        }
        GenNode::Comment(t) => {
            out.push_str("<!--");
            out.push_str(t);
            out.push_str("-->");
        }
        GenNode::Pi(target, data) => {
            out.push_str("<?");
            out.push_str(["pi", "x-y", "t"][*target]);
            if !data.is_empty() {
                out.push(' ');
                out.push_str(data);
            }
            out.push_str("?>");
        }
    }
}

/// Writes a well-formed element: declarations made up for any prefix used but not in scope,
/// attributes deduplicated by expanded name.
fn render_element(e: &GenElement, scope: &mut Vec<(usize, usize)>, out: &mut String) {
    let mark = scope.len();
    let lookup =
        |scope: &[(usize, usize)], p: usize| scope.iter().rev().find(|d| d.0 == p).map(|d| d.1);
    let mut decls: Vec<(usize, usize)> = Vec::new();
    for &(p, u) in &e.decls {
        if decls.iter().any(|d| d.0 == p) {
            continue;
        }
        let u = if p != 0 && u == 0 { 1 } else { u };
        decls.push((p, u));
    }
    scope.extend_from_slice(&decls);
    let need = |p: usize, scope: &mut Vec<(usize, usize)>, decls: &mut Vec<(usize, usize)>| {
        if p != 0 && lookup(scope, p).is_none() {
            let d = (p, p % 4 + 1);
            decls.push(d);
            scope.push(d);
        }
    };
    need(e.prefix, scope, &mut decls);
    let mut attrs: Vec<(usize, usize, &str, (usize, &str))> = Vec::new();
    for (p, n, v) in &e.attrs {
        let key = if *p == 4 {
            (usize::MAX, XML_ATTRS[*n % 3])
        } else {
            need(*p, scope, &mut decls);
            let uri = if *p == 0 {
                0
            } else {
                lookup(scope, *p).unwrap()
            };
            (uri, ATTR_NAMES[*n])
        };
        if !attrs.iter().any(|a| a.3 == key) {
            attrs.push((*p, *n, v, key));
        }
    }
    let qname = |p: usize, local: &str| {
        if p == 0 {
            local.to_string()
        } else {
            format!("{}:{local}", PREFIXES[p])
        }
    };
    let name = qname(e.prefix, ELEMENT_NAMES[e.name]);
    out.push('<');
    out.push_str(&name);
    for (p, u) in &decls {
        if *p == 0 {
            out.push_str(" xmlns");
        } else {
            out.push_str(" xmlns:");
            out.push_str(PREFIXES[*p]);
        }
        out.push_str("=\"");
        out.push_str(URIS[*u]);
        out.push('"');
    }
    for (p, n, v, _) in &attrs {
        out.push(' ');
        if *p == 4 {
            out.push_str("xml:");
            out.push_str(XML_ATTRS[*n % 3]);
        } else {
            out.push_str(&qname(*p, ATTR_NAMES[*n]));
        }
        out.push_str("=\"");
        escape_attr(v, true, out);
        out.push('"');
    }
    if e.children.is_empty() {
        out.push_str("/>");
    } else {
        out.push('>');
        for c in &e.children {
            render_node(c, scope, out);
        }
        out.push_str("</");
        out.push_str(&name);
        out.push('>');
    }
    scope.truncate(mark);
}

fn render_doc(d: &GenDoc) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let mut scope = Vec::new();
    for n in &d.before {
        render_node(n, &mut scope, &mut out);
        out.push('\n');
    }
    render_element(&d.root, &mut scope, &mut out);
    for n in &d.after {
        out.push_str("\n ");
        render_node(n, &mut scope, &mut out);
    }
    out.push('\n');
    out
}

proptest! {
    // 64 cases keep this quick; C14N_PROPTEST_CASES=5000 for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("C14N_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_documents_match_xmllint(generated in doc_strategy()) {
        let xml = render_doc(&generated);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, xml.as_bytes()).unwrap();
        let doc = parse(&xml);
        for exclusive in [false, true] {
            let reference_wc = xmllint_c14n(file.path(), exclusive);
            let ours_wc = c14n::to_vec(doc.root(), &method(exclusive, true, &[]), None);
            prop_assert!(ours_wc == reference_wc, "exclusive={exclusive}\n{xml}\n{}", diff(&reference_wc, &ours_wc));
            let ours = c14n::to_vec(doc.root(), &method(exclusive, false, &[]), None);
            let reference = strip_comments(&reference_wc);
            prop_assert!(ours == reference, "exclusive={exclusive} (no comments)\n{xml}\n{}", diff(&reference, &ours));
        }
    }

    /// A random element as the apex of a subset. xmllint canonicalises whole documents only, so the
    /// reference is the element cut out as a document of its own, its start tag given what the spec
    /// gives the apex of a subset: every namespace in scope and, for inclusive c14n, the xml:*
    /// attributes it inherits.
    #[test]
    fn random_subsets_match_xmllint(generated in doc_strategy(), pick in any::<prop::sample::Index>()) {
        let xml = render_doc(&generated);
        let doc = parse(&xml);
        let elements: Vec<_> = doc.descendants().filter(|n| n.is_element()).collect();
        let el = elements[pick.index(elements.len())];
        for exclusive in [false, true] {
            let cut = cut_out(el, !exclusive);
            let mut file = tempfile::NamedTempFile::new().unwrap();
            std::io::Write::write_all(&mut file, cut.as_bytes()).unwrap();
            let reference_wc = xmllint_c14n(file.path(), exclusive);
            let ours_wc = c14n::to_vec(el, &method(exclusive, true, &[]), None);
            prop_assert!(ours_wc == reference_wc, "exclusive={exclusive}\n{xml}\ncut out:\n{cut}\n{}", diff(&reference_wc, &ours_wc));
            let ours = c14n::to_vec(el, &method(exclusive, false, &[]), None);
            let reference = strip_comments(&reference_wc);
            prop_assert!(ours == reference, "exclusive={exclusive} (no comments)\n{xml}\n{}", diff(&reference, &ours));
        }
    }
}

/// The source text of `el` (as written by `render_element`) with the in-scope namespaces, and if
/// `xml_attrs` the inherited xml:* attributes, added to its start tag.
fn cut_out(el: roxmltree::Node, xml_attrs: bool) -> String {
    let src = &el.document().input_text()[el.range()];
    let name_end = src.find([' ', '>', '/']).unwrap();
    let mut tag_end = 0;
    let mut quoted = false;
    for (i, c) in src.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '>' if !quoted => {
                tag_end = i;
                break;
            }
            _ => {}
        }
    }
    let start_tag = &src[..tag_end];
    let mut inject = String::new();
    let add = |name: String, value: &str, inject: &mut String| {
        if !start_tag.contains(&format!(" {name}=\"")) && !inject.contains(&format!(" {name}=\"")) {
            inject.push(' ');
            inject.push_str(&name);
            inject.push_str("=\"");
            escape_attr(value, false, inject);
            inject.push('"');
        }
    };
    for ns in el.namespaces() {
        let name = match ns.name() {
            None => "xmlns".to_string(),
            Some(p) => format!("xmlns:{p}"),
        };
        add(name, ns.uri(), &mut inject);
    }
    if xml_attrs {
        for anc in el.ancestors().skip(1).filter(|n| n.is_element()) {
            for a in anc
                .attributes()
                .filter(|a| a.namespace() == Some(c14n::XML_NS))
            {
                add(format!("xml:{}", a.name()), a.value(), &mut inject);
            }
        }
    }
    format!("{}{}{}", &src[..name_end], inject, &src[name_end..])
}

// ---------------------------------------------------------------------------------------------
// Throughput: `cargo test --release --test c14n_corpus -- --ignored --nocapture throughput`

struct CountSink(usize);

impl Sink for CountSink {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

#[test]
#[ignore = "timing; run in release mode"]
fn throughput_5mb_base64_into_digest() {
    use base64::Engine as _;
    use std::time::Instant;
    let mut raw = vec![0u8; 3_700_000];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in raw.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
    let mut lines = String::with_capacity(b64.len() + b64.len() / 76 + 1);
    for chunk in b64.as_bytes().chunks(76) {
        lines.push_str(std::str::from_utf8(chunk).unwrap());
        lines.push('\n');
    }
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<edXML xmlns=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\"><edXMLEnvelope><edXMLHeader><MessageHeader><Subject>Th\u{1EED} nghi\u{1EC7}m</Subject></MessageHeader></edXMLHeader></edXMLEnvelope><AttachmentEncoded><Attachment><ContentId>cid:1</ContentId><ContentTransferEncoded>{lines}</ContentTransferEncoded></Attachment></AttachmentEncoded></edXML>\n"
    );
    let doc = parse(&xml);
    let m = method(true, false, &[]);
    let mb = xml.len() as f64 / 1e6;
    let iters = 40;

    let t = Instant::now();
    let mut n = 0;
    for _ in 0..iters {
        let mut sink = CountSink(0);
        c14n::canonicalize(doc.root(), &m, None, &mut sink);
        n += sink.0;
    }
    let c14n_only = mb * iters as f64 / t.elapsed().as_secs_f64();

    let t = Instant::now();
    for _ in 0..iters {
        let mut sink = DigestSink::new(&aws_lc_rs::digest::SHA256);
        c14n::canonicalize(doc.root(), &m, None, &mut sink);
        std::hint::black_box(sink.finish());
    }
    let digest = mb * iters as f64 / t.elapsed().as_secs_f64();

    let t = Instant::now();
    for _ in 0..iters {
        std::hint::black_box(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            xml.as_bytes(),
        ));
    }
    let sha_only = mb * iters as f64 / t.elapsed().as_secs_f64();

    println!(
        "document {mb:.2} MB ({} canonical bytes): c14n alone {c14n_only:.0} MB/s, c14n into SHA-256 DigestSink {digest:.0} MB/s, plain SHA-256 of the text {sha_only:.0} MB/s",
        n / iters
    );
    assert!(
        digest > 0.5 * sha_only,
        "canonicalisation should not dominate the digest"
    );
}

// ---------------------------------------------------------------------------------------------
// Algorithmic-complexity regressions. The canonicaliser runs on attacker input before any key is
// trusted, so its cost must stay linear in the document whatever the namespace structure. These
// tests do not time anything: they are sized so that the old quadratic code took tens of seconds
// to minutes in release (far longer in debug), which makes a regression obvious from the test
// duration. The outputs are checked exactly: the big documents repeat one unit, so the output
// must be head + unit * n + tail, with the document with 2 units held to libxml2
// (`41_many_namespaces.xml` and its `subsets.txt` entries).
//
// (roxmltree's own parse is quadratic in the namespaces in scope at every element that declares
// one, so the big documents declare namespaces only near the top.)

/// Namespace declarations on the document element of the complexity documents.
const MANY_NS: usize = 2000;

/// Elements with declarations: that change a binding, that repeat one (nothing to render), that
/// undeclare the default, and start tags the declaration scanner must not be fooled by (`>` and
/// `xmlns` inside attribute values, single quotes, whitespace around `=`, line breaks in the tag).
const DECL_UNIT: &str = concat!(
    "<e/>",
    "<p7:e a=\"1\" p3:b=\"2\"/>",
    "<f xmlns:p5=\"urn:other\" p5:x=\"1\"><p5:g/></f>",
    "<h xmlns:p9=\"urn:ns:9\"/>",
    "<k xmlns=\"\"><p1:l/></k>",
    "<m t=\"a>b xmlns:p1='x' /\" xmlns:p1=\"urn:ns:1\"/>",
    "<n xmlns:p2='urn:two'><p2:o/></n>",
    "<q\n  xmlns:p4 = \"urn:four\"\tp4:y = 'v>' xmlns='urn:d2' />",
);
const DECL_UNIT_ELEMENTS: usize = 11;

/// The repeated unit: elements that declare nothing (the attack), using the default namespace,
/// prefixes from the start and the end of the in-scope list, xml:* attributes, text.
const PLAIN_UNIT: &str =
    "<e/><p7:e a=\"1\" p3:b=\"2\"><p1999:x p0:y=\"&lt;\"/>t&amp;</p7:e><g xml:lang=\"vi\"/>";
const PLAIN_UNIT_ELEMENTS: usize = 4;

/// `MANY_NS` namespaces declared on the document element (plus a default), then two
/// [`DECL_UNIT`]s and `units` [`PLAIN_UNIT`]s.
fn many_ns_doc(units: usize) -> String {
    let mut s = String::with_capacity(MANY_NS * 24 + units * PLAIN_UNIT.len() + 1024);
    s.push_str("<r xmlns=\"urn:default\"");
    for i in 0..MANY_NS {
        s.push_str(&format!(" xmlns:p{i}=\"urn:ns:{i}\""));
    }
    s.push('>');
    s.push_str(DECL_UNIT);
    s.push_str(DECL_UNIT);
    for _ in 0..units {
        s.push_str(PLAIN_UNIT);
    }
    s.push_str("</r>");
    s
}

/// The complexity document with 2 units as stored in the corpus (and so held to libxml2).
fn many_ns_reference_doc() -> String {
    let text = std::fs::read_to_string(data_dir().join("41_many_namespaces.xml")).unwrap();
    assert!(
        text.trim_end() == many_ns_doc(2),
        "41_many_namespaces.xml must be many_ns_doc(2)"
    );
    text
}

fn expected_output(label: &str) -> Vec<u8> {
    let path = data_dir()
        .join("expected")
        .join(format!("41_many_namespaces.{label}.out"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks that `big` (the output for `units` units) is `one` and `two` (the outputs for 1 and 2
/// units) extended by the unit, i.e. head + unit * units + "</r>".
fn assert_repeats(one: &[u8], two: &[u8], big: &[u8], units: usize) {
    let tail = b"</r>";
    assert!(two.len() > one.len() && one.ends_with(tail) && two.ends_with(tail));
    let unit_len = two.len() - one.len();
    let head_len = one.len() - tail.len() - unit_len;
    let (head, unit) = (&one[..head_len], &one[head_len..head_len + unit_len]);
    let build = |n: usize| {
        let mut v = Vec::with_capacity(head.len() + unit.len() * n + tail.len());
        v.extend_from_slice(head);
        for _ in 0..n {
            v.extend_from_slice(unit);
        }
        v.extend_from_slice(tail);
        v
    };
    assert!(build(2) == two, "2-unit output is not head + 2 units");
    let want = build(units);
    assert!(big == want, "{units}-unit output: {}", diff(&want, big));
}

/// Canonicalises the complexity document with 1 and 2 units and `doc` (with `units` units), and
/// checks the results against each other and the 2-unit one against libxml2's `label`.
fn check_many_ns(doc: &roxmltree::Document, units: usize, m: &Method, label: &str) {
    let two = c14n::to_vec(parse(&many_ns_reference_doc()).root(), m, None);
    let want = expected_output(label);
    assert!(
        two == want,
        "2-unit document, {label}: {}",
        diff(&want, &two)
    );
    let one = c14n::to_vec(parse(&many_ns_doc(1)).root(), m, None);
    let t = std::time::Instant::now();
    let big = c14n::to_vec(doc.root(), m, None);
    eprintln!(
        "{label}: {MANY_NS} namespaces, {} elements, PrefixList of {} tokens: {:?}",
        doc.descendants().filter(|n| n.is_element()).count(),
        match m {
            Method::Exclusive {
                inclusive_prefixes, ..
            } => inclusive_prefixes.len(),
            Method::Inclusive { .. } => 0,
        },
        t.elapsed()
    );
    assert_repeats(&one, &two, &big, units);
}

#[test]
fn many_namespaces_inclusive_is_linear() {
    // 2,000 namespaces in scope of 50,000 elements: the old code compared every in-scope
    // namespace with every rendered one at every element.
    let units = 12_500;
    let text = many_ns_doc(units);
    let doc = parse(&text);
    assert_eq!(
        doc.descendants().filter(|n| n.is_element()).count(),
        1 + 2 * DECL_UNIT_ELEMENTS + units * PLAIN_UNIT_ELEMENTS
    );
    let m = method(false, false, &[]);
    check_many_ns(&doc, units, &m, "doc-c14n");

    // The digest path, and the document element as the apex of a subset (same output here).
    let mut sink = DigestSink::new(&aws_lc_rs::digest::SHA256);
    c14n::canonicalize(doc.root_element(), &m, None, &mut sink);
    assert_eq!(
        sink.finish().as_ref(),
        aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &c14n::to_vec(doc.root(), &m, None)
        )
        .as_ref()
    );
}

#[test]
fn many_namespaces_exclusive_is_linear() {
    // The same 50,000 elements under exclusive c14n, with and without a PrefixList.
    let units = 12_500;
    let text = many_ns_doc(units);
    let doc = parse(&text);
    let prefix_list = REFERENCE_PREFIX_LIST.split(' ').collect::<Vec<_>>();
    check_many_ns(&doc, units, &method(true, false, &[]), "doc-exc");
    check_many_ns(
        &doc,
        units,
        &method(true, false, &prefix_list),
        "doc-exc-pl",
    );
}

/// The InclusiveNamespaces PrefixList of the `exc-pl` references in `subsets.txt` (libxml2's
/// reference tool takes at most 63 prefixes): the default, some in-scope prefixes, `xml`, and a
/// prefix that is not in scope.
const REFERENCE_PREFIX_LIST: &str = "#default p1 p3 p5 p9 p10 p1999 p4 xml nope p2";

/// A 100,000-token PrefixList with the same meaning as [`REFERENCE_PREFIX_LIST`]: its prefixes
/// over and over, and 20,000 distinct prefixes that are not in scope, each many times.
fn long_prefix_list() -> Vec<String> {
    let base: Vec<&str> = REFERENCE_PREFIX_LIST.split(' ').collect();
    (0..100_000)
        .map(|i| {
            if i % 3 == 0 {
                base[(i / 3) % base.len()].to_string()
            } else {
                format!("absent{}", i % 20_000)
            }
        })
        .collect()
}

#[test]
fn long_prefix_list_exclusive_is_linear() {
    // A 100,000-token PrefixList full of duplicates and of prefixes that are not in scope, with
    // 2,000 namespaces in scope: the old code resolved every token against the in-scope
    // namespaces at every element.
    let list = long_prefix_list();
    assert_eq!(list.len(), 100_000);
    let units = 60;
    let text = many_ns_doc(units);
    let doc = parse(&text);

    // The canonicaliser must cope with duplicates itself (Method is public), and
    // parse_prefix_list drops them, keeping the first occurrence of each prefix.
    let parsed = Method::parse_prefix_list(&list.join(" \t\n"));
    let mut seen = std::collections::HashSet::new();
    let distinct: Vec<&String> = list.iter().filter(|p| seen.insert(p.as_str())).collect();
    assert!(
        parsed.len() == distinct.len() && parsed.iter().eq(distinct.iter().copied()),
        "parse_prefix_list: {} prefixes, want the {} distinct ones in order",
        parsed.len(),
        distinct.len()
    );
    assert_eq!(parsed.len(), 11 + 20_000);

    for prefixes in [list, parsed] {
        let m = Method::Exclusive {
            with_comments: false,
            inclusive_prefixes: prefixes,
        };
        check_many_ns(&doc, units, &m, "doc-exc-pl");
        // A subset: an element deep inside as the apex resolves the list once.
        let n = doc
            .descendants()
            .filter(|e| e.has_tag_name("n"))
            .nth(1)
            .unwrap();
        let want = expected_output("n-exc-pl");
        let got = c14n::to_vec(n, &m, None);
        assert!(got == want, "n-exc-pl: {}", diff(&want, &got));
    }
}
