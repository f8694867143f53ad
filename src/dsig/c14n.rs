//! Canonical XML over a `roxmltree` tree: W3C Canonical XML 1.0 (inclusive) and Exclusive XML
//! Canonicalization 1.0, each with or without comments. Output is byte-for-byte what libxml2
//! produces for the same node-set (see `tests/c14n_corpus.rs`), except where libxml2 departs from
//! the spec or gives up:
//!
//! * a namespace URI containing `&`, `<` or `"` is escaped like any attribute value (spec); libxml2
//!   writes it raw (and switches to single quotes around a `"`);
//! * a namespace URI that libxml2 cannot parse as a URI (non-ASCII IRIs such as `urn:việt`, or
//!   relative references) is canonicalised as written; libxml2 refuses the whole document;
//! * if `exclude` is the document element itself, comments and PIs after it still get their
//!   newline before them (spec: it depends on position); libxml2 treats them as before it.
//!
//! The node-sets supported are the ones XML-DSig needs: a whole document, or the subtree of one
//! element (e.g. `SignedInfo`), optionally less one element's subtree (the enveloped-signature
//! transform). The traversal is iterative, allocates nothing per node, and passes text through in
//! the largest unescaped runs it can find, so canonicalising a package that is mostly base64 runs
//! at memory speed (into [`DigestSink`], at the speed of the digest).
//!
//! The input is untrusted, so the cost is linear in the document whatever its namespaces: the
//! namespaces in scope are walked once, at the apex; below it an element is compared with its
//! parent only through the declarations in its own start tag, and prefixes (the exclusive
//! PrefixList included, however long and repetitive) are looked up in hash maps. The one exception
//! is an element from an external entity (only with a custom roxmltree `entity_resolver`), whose
//! start tag is not in the document text: it costs the number of namespaces in scope.

use std::collections::{HashMap, HashSet};

use memchr::{memchr, memchr3};
use roxmltree::{Node, NodeId, NodeType};

/// The namespace bound to the `xml` prefix. Never rendered as a declaration.
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Canonical XML 1.0, comments omitted.
pub const C14N_URI: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
/// Canonical XML 1.0 with comments.
pub const C14N_WITH_COMMENTS_URI: &str =
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments";
/// Exclusive XML Canonicalization 1.0, comments omitted.
pub const EXC_C14N_URI: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// Exclusive XML Canonicalization 1.0 with comments.
pub const EXC_C14N_WITH_COMMENTS_URI: &str = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";

/// Where canonical bytes go: a Vec, or straight into a digest without buffering the whole output.
pub trait Sink {
    /// Appends `bytes` to the output.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl<S: Sink + ?Sized> Sink for &mut S {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        (**self).put(bytes);
    }
}

/// A [`Sink`] that feeds a digest. Small writes are gathered in an internal buffer so that the
/// digest is updated in large blocks; a write larger than the buffer goes straight through.
pub struct DigestSink {
    ctx: aws_lc_rs::digest::Context,
    buf: Vec<u8>,
}

impl DigestSink {
    /// Size of the internal buffer.
    pub const BUFFER: usize = 32 * 1024;

    /// A sink computing `algorithm` (e.g. `&aws_lc_rs::digest::SHA256`).
    pub fn new(algorithm: &'static aws_lc_rs::digest::Algorithm) -> Self {
        DigestSink {
            ctx: aws_lc_rs::digest::Context::new(algorithm),
            buf: Vec::with_capacity(Self::BUFFER),
        }
    }

    /// The digest of everything put so far.
    pub fn finish(mut self) -> aws_lc_rs::digest::Digest {
        if !self.buf.is_empty() {
            self.ctx.update(&self.buf);
        }
        self.ctx.finish()
    }
}

impl Sink for DigestSink {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        if bytes.len() <= Self::BUFFER - self.buf.len() {
            self.buf.extend_from_slice(bytes);
        } else {
            self.spill(bytes);
        }
    }
}

impl DigestSink {
    #[cold]
    fn spill(&mut self, bytes: &[u8]) {
        // Top the buffer up so that every update but the last is a whole buffer.
        let room = Self::BUFFER - self.buf.len();
        let (head, rest) = bytes.split_at(room);
        self.buf.extend_from_slice(head);
        self.ctx.update(&self.buf);
        self.buf.clear();
        if rest.len() >= Self::BUFFER {
            self.ctx.update(rest);
        } else {
            self.buf.extend_from_slice(rest);
        }
    }
}

impl std::fmt::Debug for DigestSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestSink")
            .field("algorithm", self.ctx.algorithm())
            .field("buffered", &self.buf.len())
            .finish()
    }
}

/// A canonicalisation algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// Canonical XML 1.0.
    Inclusive {
        /// The `#WithComments` variant.
        with_comments: bool,
    },
    /// Exclusive XML Canonicalization 1.0.
    Exclusive {
        /// The `#WithComments` variant.
        with_comments: bool,
        /// The InclusiveNamespaces PrefixList: prefixes treated as in inclusive c14n;
        /// `#default` means the default namespace.
        inclusive_prefixes: Vec<String>,
    },
}

impl Method {
    /// Algorithm URI -> method (prefix list empty for exclusive); None if not a c14n algorithm.
    pub fn from_uri(uri: &str) -> Option<Method> {
        Some(match uri {
            C14N_URI => Method::Inclusive {
                with_comments: false,
            },
            C14N_WITH_COMMENTS_URI => Method::Inclusive {
                with_comments: true,
            },
            EXC_C14N_URI => Method::Exclusive {
                with_comments: false,
                inclusive_prefixes: Vec::new(),
            },
            EXC_C14N_WITH_COMMENTS_URI => Method::Exclusive {
                with_comments: true,
                inclusive_prefixes: Vec::new(),
            },
            _ => return None,
        })
    }

    /// The algorithm URI.
    pub fn uri(&self) -> &'static str {
        match self {
            Method::Inclusive {
                with_comments: false,
            } => C14N_URI,
            Method::Inclusive {
                with_comments: true,
            } => C14N_WITH_COMMENTS_URI,
            Method::Exclusive {
                with_comments: false,
                ..
            } => EXC_C14N_URI,
            Method::Exclusive {
                with_comments: true,
                ..
            } => EXC_C14N_WITH_COMMENTS_URI,
        }
    }

    /// Whether comments are kept.
    pub fn with_comments(&self) -> bool {
        match self {
            Method::Inclusive { with_comments } | Method::Exclusive { with_comments, .. } => {
                *with_comments
            }
        }
    }

    /// Splits the value of an `InclusiveNamespaces/@PrefixList` attribute (whitespace-separated
    /// prefixes, `#default` for the default namespace) into the list [`Method::Exclusive`] takes.
    /// Duplicates are dropped (the first occurrence is kept).
    pub fn parse_prefix_list(list: &str) -> Vec<String> {
        let mut seen = HashSet::new();
        list.split_ascii_whitespace()
            .filter(|p| seen.insert(*p))
            .map(str::to_owned)
            .collect()
    }
}

/// Canonicalise the subtree at `node` (an element, or the document root node for the whole
/// document: then comments/PIs outside the document element are handled per spec with the
/// newline rules). `exclude`: an element whose whole subtree is omitted from the output (the
/// enveloped-signature transform). When `node` is an element inside a larger document (e.g.
/// SignedInfo), the output must be what the spec says for that document subset: for INCLUSIVE
/// c14n that means the element renders all namespaces in scope from its ancestors (except xml)
/// and inherits xml:* attributes (xml:lang, xml:space, etc.) from ancestors per C14N 1.0 §2.4;
/// for EXCLUSIVE, only visibly utilized namespaces + PrefixList, and no xml:* inheritance.
///
/// A text, comment or processing-instruction `node` is canonicalised as a node-set of that one
/// node. If `exclude` is `node` or one of its ancestors, nothing is output.
///
/// See the module documentation for the few known differences from libxml2.
pub fn canonicalize<S: Sink + ?Sized>(
    node: Node,
    method: &Method,
    exclude: Option<NodeId>,
    out: &mut S,
) {
    if let Some(ex) = exclude
        && node.ancestors().any(|a| a.id() == ex)
    {
        return;
    }
    let (exclusive, with_comments, prefixes): (bool, bool, &[String]) = match method {
        Method::Inclusive { with_comments } => (false, *with_comments, &[]),
        Method::Exclusive {
            with_comments,
            inclusive_prefixes,
        } => (true, *with_comments, inclusive_prefixes),
    };
    let mut c = Canon::new(exclusive, with_comments, prefixes, exclude);
    match node.node_type() {
        NodeType::Root => {
            let mut before = true;
            for child in node.children() {
                match child.node_type() {
                    NodeType::Element => {
                        before = false;
                        if Some(child.id()) != exclude {
                            c.subtree(child, out);
                        }
                    }
                    NodeType::Comment | NodeType::PI => c.top_level(child, before, out),
                    // Only whitespace can sit outside the document element; it is dropped.
                    NodeType::Text | NodeType::Root => {}
                }
            }
        }
        NodeType::Element => c.subtree(node, out),
        NodeType::Text => write_text(node.text().unwrap_or(""), out),
        NodeType::Comment | NodeType::PI => {
            if node.parent().is_some_and(|p| p.is_root()) {
                let before = node.next_siblings().any(|n| n.is_element());
                c.top_level(node, before, out);
            } else {
                c.leaf(node, out);
            }
        }
    }
}

/// Convenience: canonical bytes into a new Vec.
pub fn to_vec(node: Node, method: &Method, exclude: Option<NodeId>) -> Vec<u8> {
    let mut out = Vec::with_capacity(node.range().len() + 64);
    canonicalize(node, method, exclude, &mut out);
    out
}

/// The canonical digest of `node` (see [`canonicalize`]), computed without buffering the output.
pub fn digest(
    node: Node,
    method: &Method,
    exclude: Option<NodeId>,
    algorithm: &'static aws_lc_rs::digest::Algorithm,
) -> aws_lc_rs::digest::Digest {
    let mut sink = DigestSink::new(algorithm);
    canonicalize(node, method, exclude, &mut sink);
    sink.finish()
}

/// An open output element.
struct Frame<'a> {
    prefix: &'a str,
    local: &'a str,
    /// [`ScopedMap::mark`]s of `Canon::scope` and `Canon::rendered` before this element.
    scope_mark: usize,
    rendered_mark: usize,
}

/// An attribute to output.
struct Attr<'a> {
    /// Namespace URI, "" for none.
    uri: &'a str,
    local: &'a str,
    prefix: &'a str,
    value: &'a str,
}

/// A map keyed by namespace prefix ("" for the default namespace) with scoped bindings: a
/// binding shadows the one before it for the same prefix, and [`ScopedMap::restore`] drops the
/// bindings made since a [`ScopedMap::mark`], in time proportional to their number.
///
/// Bindings are kept in a stack searched from the top, which is fastest for the handful of
/// namespaces documents normally have; once the stack is long, a hash index (prefix -> innermost
/// binding) makes every operation O(1) whatever the document does. The prefixes come from the
/// (untrusted) document, hence std's randomly keyed SipHash for the index.
struct ScopedMap<'a, V> {
    stack: Vec<Binding<'a, V>>,
    /// Maintained while `indexed`.
    index: HashMap<&'a str, usize>,
    indexed: bool,
}

struct Binding<'a, V> {
    prefix: &'a str,
    value: V,
    /// While indexed: the position of the binding this one shadows, [`NO_BINDING`] for none.
    shadows: usize,
}

const NO_BINDING: usize = usize::MAX;

impl<'a, V: Copy> ScopedMap<'a, V> {
    /// Stack length above which the index is built...
    const INDEX_ABOVE: usize = 16;
    /// ...and below which it is dropped again (apart, so that it is not rebuilt over and over).
    const UNINDEX_BELOW: usize = 4;

    fn new() -> Self {
        ScopedMap {
            stack: Vec::new(),
            index: HashMap::new(),
            indexed: false,
        }
    }

    #[inline]
    fn get(&self, prefix: &str) -> Option<V> {
        let binding = if self.indexed {
            self.index.get(prefix).and_then(|&i| self.stack.get(i))
        } else {
            self.stack.iter().rev().find(|b| same(b.prefix, prefix))
        };
        binding.map(|b| b.value)
    }

    fn set(&mut self, prefix: &'a str, value: V) {
        let shadows = if self.indexed {
            self.index
                .insert(prefix, self.stack.len())
                .unwrap_or(NO_BINDING)
        } else {
            NO_BINDING
        };
        self.stack.push(Binding {
            prefix,
            value,
            shadows,
        });
        if !self.indexed && self.stack.len() > Self::INDEX_ABOVE {
            let ScopedMap { stack, index, .. } = self;
            index.clear();
            for (i, b) in stack.iter_mut().enumerate() {
                b.shadows = index.insert(b.prefix, i).unwrap_or(NO_BINDING);
            }
            self.indexed = true;
        }
    }

    #[inline]
    fn mark(&self) -> usize {
        self.stack.len()
    }

    /// Drops every binding made since `mark`.
    fn restore(&mut self, mark: usize) {
        while self.stack.len() > mark {
            let Some(b) = self.stack.pop() else {
                break;
            };
            if self.indexed {
                if b.shadows == NO_BINDING {
                    self.index.remove(b.prefix);
                } else {
                    self.index.insert(b.prefix, b.shadows);
                }
            }
        }
        if self.indexed && self.stack.len() < Self::UNINDEX_BELOW {
            self.indexed = false;
            self.index.clear();
        }
    }
}

/// What the start tag of an element says in the source text: the prefix it was written with and
/// the rest of the tag after the name (attributes and namespace declarations).
struct StartTag<'a> {
    prefix: &'a str,
    rest: &'a str,
}

impl<'a> StartTag<'a> {
    /// The start tag of `el` as roxmltree parsed it, or None if `el` did not come from the
    /// document text (an element from an external entity: its range is into another string).
    fn read(el: Node<'a, '_>) -> Option<StartTag<'a>> {
        let local = el.tag_name().name();
        let text = el.document().input_text();
        let tag = text.get(el.range().start..)?.strip_prefix('<')?;
        let end = tag
            .bytes()
            .position(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'>' | b'/'))
            .unwrap_or(tag.len());
        let qname = tag.get(..end)?;
        let head = qname.strip_suffix(local)?;
        // roxmltree's local name is a slice of the text it tokenised: if it is these very bytes,
        // this is the tag it parsed, and what it says about declarations can be trusted.
        if !std::ptr::eq(qname.as_ptr().wrapping_add(head.len()), local.as_ptr()) {
            return None;
        }
        let prefix = if head.is_empty() {
            ""
        } else {
            head.strip_suffix(':').filter(|p| !p.is_empty())?
        };
        Some(StartTag {
            prefix,
            rest: tag.get(end..)?,
        })
    }
}

/// The prefixes declared by a start tag, in order (`""` for the default namespace), as roxmltree
/// records them: `xmlns:xml` is not recorded; a name whose local part is `xmlns` declares the
/// default namespace whatever its prefix. `rest` is the tag after the element name. False if the
/// text does not scan as a start tag (not expected for a tag roxmltree parsed). Linear in the
/// length of the tag.
fn scan_declarations<'t>(rest: &'t str, out: &mut Vec<&'t str>) -> bool {
    let b = rest.as_bytes();
    let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r');
    let skip_spaces = |mut i: usize| {
        while b.get(i).is_some_and(|&c| is_space(c)) {
            i += 1;
        }
        i
    };
    let mut i = 0;
    loop {
        i = skip_spaces(i);
        match b.get(i) {
            None => return false,
            Some(b'>' | b'/') => return true,
            Some(_) => {}
        }
        let name_start = i;
        while b.get(i).is_some_and(|&c| c != b'=' && !is_space(c)) {
            i += 1;
        }
        let Some(name) = rest.get(name_start..i) else {
            return false;
        };
        i = skip_spaces(i);
        if b.get(i) != Some(&b'=') {
            return false;
        }
        i = skip_spaces(i + 1);
        let Some(&quote @ (b'"' | b'\'')) = b.get(i) else {
            return false;
        };
        let Some(len) = b.get(i + 1..).and_then(|v| memchr(quote, v)) else {
            return false;
        };
        i += len + 2;
        if let Some(prefix) = name.strip_prefix("xmlns:") {
            if prefix != "xml" {
                out.push(prefix);
            }
        } else if name == "xmlns" || name.ends_with(":xmlns") {
            out.push("");
        }
    }
}

struct Canon<'a> {
    exclusive: bool,
    with_comments: bool,
    /// The exclusive PrefixList (empty for inclusive), as a set, less `xml` and `#default`.
    incl_prefixes: HashSet<&'a str>,
    /// `#default` is in the exclusive PrefixList.
    incl_default: bool,
    exclude: Option<NodeId>,
    /// In-scope namespaces of the innermost open element (the xml namespace aside): prefix ("" for
    /// the default; `xmlns=""` is there as "") -> URI, and the serial number of the element that
    /// bound it last.
    scope: ScopedMap<'a, (&'a str, u64)>,
    /// Namespace declarations in effect from the open output elements: prefix -> URI, and the
    /// serial number of the element that rendered it. An absent default counts as URI "".
    rendered: ScopedMap<'a, (&'a str, u64)>,
    /// Serial number of the element being opened.
    serial: u64,
    /// Prefixes declared in the start tag of the element being opened.
    declared: Vec<&'a str>,
    /// Bindings of the element being opened that differ from its parent's (all of its in-scope
    /// namespaces for the apex).
    changed: Vec<(&'a str, &'a str)>,
    /// Declarations to render on the element being opened.
    ns_buf: Vec<(&'a str, &'a str)>,
    /// Attributes of the element being opened.
    attr_buf: Vec<Attr<'a>>,
    stack: Vec<Frame<'a>>,
}

impl<'a> Canon<'a> {
    fn new(
        exclusive: bool,
        with_comments: bool,
        prefixes: &'a [String],
        exclude: Option<NodeId>,
    ) -> Self {
        let mut incl_prefixes = HashSet::new();
        let mut incl_default = false;
        for p in prefixes {
            match p.as_str() {
                "#default" | "" => incl_default = true,
                "xml" => {}
                p => {
                    incl_prefixes.insert(p);
                }
            }
        }
        Canon {
            exclusive,
            with_comments,
            incl_prefixes,
            incl_default,
            exclude,
            scope: ScopedMap::new(),
            rendered: ScopedMap::new(),
            serial: 0,
            declared: Vec::new(),
            changed: Vec::new(),
            ns_buf: Vec::new(),
            attr_buf: Vec::new(),
            stack: Vec::new(),
        }
    }

    /// A comment or PI that is a child of the root node: the newline rules apply.
    fn top_level<S: Sink + ?Sized>(&mut self, node: Node, before_root: bool, out: &mut S) {
        if node.is_comment() && !self.with_comments {
            return;
        }
        if !before_root {
            out.put(b"\n");
        }
        self.leaf(node, out);
        if before_root {
            out.put(b"\n");
        }
    }

    /// A comment or PI.
    fn leaf<S: Sink + ?Sized>(&mut self, node: Node, out: &mut S) {
        match node.node_type() {
            NodeType::Comment if self.with_comments => {
                out.put(b"<!--");
                write_raw_text(node.text().unwrap_or(""), out);
                out.put(b"-->");
            }
            NodeType::PI => {
                if let Some(pi) = node.pi() {
                    out.put(b"<?");
                    out.put(pi.target.as_bytes());
                    if let Some(value) = pi.value
                        && !value.is_empty()
                    {
                        out.put(b" ");
                        write_raw_text(value, out);
                    }
                    out.put(b"?>");
                }
            }
            _ => {}
        }
    }

    /// The subtree of the (not excluded) element `top`, iteratively.
    fn subtree<S: Sink + ?Sized>(&mut self, top: Node<'a, '_>, out: &mut S) {
        self.open(top, true, out);
        let Some(mut cur) = top.first_child() else {
            self.close(out);
            return;
        };
        loop {
            match cur.node_type() {
                NodeType::Element => {
                    if Some(cur.id()) != self.exclude {
                        self.open(cur, false, out);
                        match cur.first_child() {
                            Some(child) => {
                                cur = child;
                                continue;
                            }
                            None => self.close(out),
                        }
                    }
                }
                NodeType::Text => write_text(cur.text().unwrap_or(""), out),
                NodeType::Comment | NodeType::PI => self.leaf(cur, out),
                NodeType::Root => {}
            }
            // Move on: to the next sibling, or close parents until one has a next sibling.
            loop {
                if let Some(next) = cur.next_sibling() {
                    cur = next;
                    break;
                }
                let Some(parent) = cur.parent() else {
                    return;
                };
                self.close(out);
                if parent.id() == top.id() {
                    return;
                }
                cur = parent;
            }
        }
    }

    /// Writes the start tag of `el` and pushes its frame. `apex`: the parent of `el` is not
    /// output (every other element of the node-sets supported has its parent output).
    ///
    /// The cost is independent of the number of namespaces in scope except at the apex: an
    /// element can differ from its parent only by the namespaces it declares itself, so only
    /// those are looked at, and every lookup is a hash lookup.
    fn open<S: Sink + ?Sized>(&mut self, el: Node<'a, '_>, apex: bool, out: &mut S) {
        self.serial += 1;
        let scope_mark = self.scope.mark();
        let rendered_mark = self.rendered.mark();
        self.ns_buf.clear();
        self.attr_buf.clear();
        self.changed.clear();

        let tag = StartTag::read(el);
        let own_only = !apex
            && tag
                .as_ref()
                .is_some_and(|t| self.own_declarations(el, t.rest));
        if !own_only {
            // Undo whatever a failed attempt bound, and take every in-scope namespace.
            self.scope.restore(scope_mark);
            self.changed.clear();
            for ns in el.namespaces() {
                let p = ns.name().unwrap_or("");
                if p != "xml" {
                    self.bind(p, ns.uri());
                }
            }
        }

        let (prefix, local) = self.element_qname(el, tag.as_ref());

        for attr in el.attributes() {
            let uri = attr.namespace().unwrap_or("");
            let prefix = if uri.is_empty() {
                ""
            } else {
                self.attribute_prefix(el, &attr, uri)
            };
            self.attr_buf.push(Attr {
                uri,
                local: attr.name(),
                prefix,
                value: attr.value(),
            });
        }

        if self.exclusive {
            let el_uri = el.tag_name().namespace().unwrap_or("");
            self.consider(prefix, el_uri);
            for i in 0..self.attr_buf.len() {
                let a = &self.attr_buf[i];
                if !a.uri.is_empty() && a.prefix != "xml" {
                    let (p, u) = (a.prefix, a.uri);
                    self.consider(p, u);
                }
            }
            // PrefixList prefixes whose binding is inherited unchanged were rendered (or found
            // in effect) by the parent already; only the changed ones can need a declaration.
            for i in 0..self.changed.len() {
                let (p, u) = self.changed[i];
                let listed = if p.is_empty() {
                    self.incl_default
                } else {
                    self.incl_prefixes.contains(p)
                };
                if listed {
                    self.consider(p, u);
                }
            }
        } else {
            // The parent rendered (or found in effect) every namespace in its scope, so only the
            // changed bindings can need a declaration.
            for i in 0..self.changed.len() {
                let (p, u) = self.changed[i];
                self.consider(p, u);
            }
            if self.scope.get("").is_none() {
                self.consider("", "");
            }
            if apex {
                self.inherit_xml_attributes(el);
            }
        }

        self.ns_buf.sort_unstable_by(|a, b| a.0.cmp(b.0));
        self.attr_buf
            .sort_unstable_by(|a, b| (a.uri, a.local).cmp(&(b.uri, b.local)));

        out.put(b"<");
        write_qname(prefix, local, out);
        for &(p, uri) in &self.ns_buf {
            if p.is_empty() {
                out.put(b" xmlns=\"");
            } else {
                out.put(b" xmlns:");
                out.put(p.as_bytes());
                out.put(b"=\"");
            }
            write_attr_value(uri, out);
            out.put(b"\"");
        }
        for a in &self.attr_buf {
            out.put(b" ");
            write_qname(a.prefix, a.local, out);
            out.put(b"=\"");
            write_attr_value(a.value, out);
            out.put(b"\"");
        }
        out.put(b">");

        self.stack.push(Frame {
            prefix,
            local,
            scope_mark,
            rendered_mark,
        });
    }

    /// Binds the namespaces `el` declares itself, read from its start tag (`rest`, after the
    /// name) and checked against roxmltree: they are the first entries of its in-scope list, in
    /// the order written (roxmltree puts an element's own declarations first, then the parent's
    /// that they do not override; with none, the list is the parent's). False if that does not
    /// hold; the caller then falls back to the whole in-scope list.
    fn own_declarations(&mut self, el: Node<'a, '_>, rest: &'a str) -> bool {
        self.declared.clear();
        if !scan_declarations(rest, &mut self.declared) {
            return false;
        }
        let mut in_scope = el.namespaces();
        for i in 0..self.declared.len() {
            let Some(ns) = in_scope.next() else {
                return false;
            };
            let p = ns.name().unwrap_or("");
            if p != self.declared[i] {
                return false;
            }
            self.bind(p, ns.uri());
        }
        true
    }

    /// Binds `prefix` to `uri` for the element being opened, noting it in `changed` if that
    /// differs from the parent's binding. A prefix bound twice by one element keeps the first
    /// binding, as roxmltree's lookups do.
    fn bind(&mut self, prefix: &'a str, uri: &'a str) {
        match self.scope.get(prefix) {
            Some((_, serial)) if serial == self.serial => return,
            Some((current, _)) if same(current, uri) => {}
            _ => self.changed.push((prefix, uri)),
        }
        self.scope.set(prefix, (uri, self.serial));
    }

    /// The in-scope URI of `prefix`.
    #[inline]
    fn lookup(&self, prefix: &str) -> Option<&'a str> {
        self.scope.get(prefix).map(|(uri, _)| uri)
    }

    /// The prefix and local name `el` was written with. roxmltree keeps only the namespace URI,
    /// so the prefix is read back from the start tag in the source text (checked against the
    /// URI); if that fails (an element from an external entity), any in-scope prefix bound to the
    /// URI.
    fn element_qname(&self, el: Node<'a, '_>, tag: Option<&StartTag<'a>>) -> (&'a str, &'a str) {
        let local = el.tag_name().name();
        let uri = el.tag_name().namespace().unwrap_or("");
        if let Some(tag) = tag {
            let bound = match tag.prefix {
                "" => same(self.lookup("").unwrap_or(""), uri),
                p => self.lookup(p).is_some_and(|u| same(u, uri)),
            };
            if bound {
                return (tag.prefix, local);
            }
        }
        (prefix_for(el, el.tag_name().namespace(), true), local)
    }

    /// The prefix of a namespaced attribute; see [`Canon::element_qname`].
    fn attribute_prefix(
        &self,
        el: Node<'a, '_>,
        attr: &roxmltree::Attribute<'a, '_>,
        uri: &str,
    ) -> &'a str {
        if uri == XML_NS {
            return "xml";
        }
        let text = el.document().input_text();
        let local = attr.name();
        if let Some(qname) = text.get(attr.range_qname())
            && let Some(head) = qname.strip_suffix(local)
            && std::ptr::eq(qname.as_ptr().wrapping_add(head.len()), local.as_ptr())
            && let Some(prefix) = head.strip_suffix(':')
            && !prefix.is_empty()
            && self.lookup(prefix).is_some_and(|u| same(u, uri))
        {
            return prefix;
        }
        prefix_for(el, attr.namespace(), false)
    }

    /// Writes the end tag of the innermost open element and pops its frame.
    fn close<S: Sink + ?Sized>(&mut self, out: &mut S) {
        let frame = self.stack.pop().expect("close without open");
        self.scope.restore(frame.scope_mark);
        self.rendered.restore(frame.rendered_mark);
        out.put(b"</");
        write_qname(frame.prefix, frame.local, out);
        out.put(b">");
    }

    /// Queues the declaration `prefix`=`uri` for the element being opened unless the nearest
    /// output ancestor already has it in effect (or it is already queued).
    fn consider(&mut self, prefix: &'a str, uri: &'a str) {
        match self.rendered.get(prefix) {
            // Already queued for this element.
            Some((_, serial)) if serial == self.serial => return,
            Some((current, _)) if same(current, uri) => return,
            None if prefix.is_empty() && uri.is_empty() => return,
            _ => {}
        }
        self.ns_buf.push((prefix, uri));
        self.rendered.set(prefix, (uri, self.serial));
    }

    /// C14N 1.0 §2.4: the apex of a subset whose parent is not output takes the xml:* attributes
    /// in scope from its ancestors (the nearest wins, its own win over all).
    fn inherit_xml_attributes(&mut self, el: Node<'a, '_>) {
        let mut seen: HashSet<&'a str> = self
            .attr_buf
            .iter()
            .filter(|a| a.uri == XML_NS)
            .map(|a| a.local)
            .collect();
        for anc in el.ancestors().skip(1).filter(|n| n.is_element()) {
            for attr in anc.attributes() {
                if attr.namespace() == Some(XML_NS) && seen.insert(attr.name()) {
                    self.attr_buf.push(Attr {
                        uri: XML_NS,
                        local: attr.name(),
                        prefix: "xml",
                        value: attr.value(),
                    });
                }
            }
        }
    }
}

/// An in-scope prefix of `el` bound to `uri`. roxmltree hands out namespace URIs as references
/// into its deduplicated (prefix, URI) table, so pointer identity finds the very binding the name
/// was resolved with; equality is the fallback. Linear in the namespaces in scope: only for names
/// whose prefix cannot be read back from the text (elements from an external entity).
fn prefix_for<'a>(el: Node<'a, '_>, uri: Option<&str>, allow_default: bool) -> &'a str {
    let Some(uri) = uri.filter(|u| !u.is_empty()) else {
        return "";
    };
    let candidates = || {
        el.namespaces()
            .filter(move |ns| allow_default || ns.name().is_some())
    };
    candidates()
        .find(|ns| std::ptr::eq(ns.uri(), uri))
        .or_else(|| candidates().find(|ns| ns.uri() == uri))
        .and_then(|ns| ns.name())
        .unwrap_or("")
}

/// String equality with a pointer fast path: names and URIs mostly come from the same place in
/// roxmltree's deduplicated namespace table, so most comparisons never look at the bytes.
#[inline]
fn same(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

#[inline]
fn write_qname<S: Sink + ?Sized>(prefix: &str, local: &str, out: &mut S) {
    if !prefix.is_empty() {
        out.put(prefix.as_bytes());
        out.put(b":");
    }
    out.put(local.as_bytes());
}

/// Text node content: `&` `<` `>` and CR escaped. Unescaped runs go out whole.
fn write_text<S: Sink + ?Sized>(s: &str, out: &mut S) {
    let b = s.as_bytes();
    let mut start = 0;
    // CR is rare (only from a character reference); find it separately so the hot loop is memchr3.
    let mut cr = memchr(b'\r', b).unwrap_or(b.len());
    loop {
        let at = match memchr3(b'&', b'<', b'>', &b[start..cr]) {
            Some(i) => start + i,
            None => cr,
        };
        if at > start {
            out.put(&b[start..at]);
        }
        if at == b.len() {
            return;
        }
        out.put(match b[at] {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            _ => b"&#xD;",
        });
        start = at + 1;
        if at == cr {
            cr = memchr(b'\r', &b[start..]).map_or(b.len(), |i| start + i);
        }
    }
}

/// Attribute (and namespace) values: `&` `<` `"` TAB LF CR escaped.
fn write_attr_value<S: Sink + ?Sized>(s: &str, out: &mut S) {
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'"' => b"&quot;",
            b'\t' => b"&#x9;",
            b'\n' => b"&#xA;",
            b'\r' => b"&#xD;",
            _ => continue,
        };
        if i > start {
            out.put(&b[start..i]);
        }
        out.put(esc);
        start = i + 1;
    }
    if start < b.len() {
        out.put(&b[start..]);
    }
}

/// Comment and PI content: no escaping, but roxmltree hands these over without line-end
/// normalisation, so CRLF and lone CR become LF as the XML parser of the spec would have made them.
fn write_raw_text<S: Sink + ?Sized>(s: &str, out: &mut S) {
    let b = s.as_bytes();
    let mut start = 0;
    while let Some(i) = memchr(b'\r', &b[start..]) {
        let at = start + i;
        out.put(&b[start..at]);
        out.put(b"\n");
        start = at + 1;
        if b.get(start) == Some(&b'\n') {
            start += 1;
        }
    }
    out.put(&b[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc() -> Method {
        Method::Inclusive {
            with_comments: false,
        }
    }
    fn inc_c() -> Method {
        Method::Inclusive {
            with_comments: true,
        }
    }
    fn exc() -> Method {
        Method::Exclusive {
            with_comments: false,
            inclusive_prefixes: vec![],
        }
    }
    fn exc_p(p: &[&str]) -> Method {
        Method::Exclusive {
            with_comments: false,
            inclusive_prefixes: p.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn doc_c14n(xml: &str, m: &Method) -> String {
        let doc = roxmltree::Document::parse(xml).unwrap();
        String::from_utf8(to_vec(doc.root(), m, None)).unwrap()
    }

    /// Canonicalises the first element named `name`.
    fn sub_c14n(xml: &str, name: &str, m: &Method) -> String {
        let doc = roxmltree::Document::parse(xml).unwrap();
        let el = doc
            .descendants()
            .find(|n| n.has_tag_name(name))
            .expect("element");
        String::from_utf8(to_vec(el, m, None)).unwrap()
    }

    #[test]
    fn uris_round_trip() {
        for uri in [
            C14N_URI,
            C14N_WITH_COMMENTS_URI,
            EXC_C14N_URI,
            EXC_C14N_WITH_COMMENTS_URI,
        ] {
            assert_eq!(Method::from_uri(uri).unwrap().uri(), uri);
        }
        assert_eq!(
            Method::from_uri("http://www.w3.org/2006/12/xml-c14n11"),
            None
        );
        assert_eq!(
            Method::from_uri(EXC_C14N_WITH_COMMENTS_URI),
            Some(Method::Exclusive {
                with_comments: true,
                inclusive_prefixes: vec![]
            })
        );
        assert_eq!(
            Method::parse_prefix_list("  ds\t#default xs "),
            vec!["ds", "#default", "xs"]
        );
    }

    #[test]
    fn empty_elements_and_no_declaration() {
        assert_eq!(
            doc_c14n("<?xml version='1.0'?>\n<a><b/><c x='1'/></a>\n", &inc()),
            "<a><b></b><c x=\"1\"></c></a>"
        );
    }

    #[test]
    fn attribute_order_namespaces_first_then_by_uri_and_local_name() {
        let xml = r#"<e xmlns:b="urn:b" xmlns:a="urn:z" xmlns="urn:d" b:y="1" a:x="2" z="3" b:a="4" c="5"/>"#;
        assert_eq!(
            doc_c14n(xml, &inc()),
            r#"<e xmlns="urn:d" xmlns:a="urn:z" xmlns:b="urn:b" c="5" z="3" b:a="4" b:y="1" a:x="2"></e>"#
        );
    }

    #[test]
    fn text_and_attribute_escaping() {
        let xml = "<e a='&amp;&lt;&gt;&quot;&#9;&#10;&#13;&apos;'>&amp;&lt;&gt;&quot;&apos;&#13;&#9;\u{1EE6}<![CDATA[<&>]]></e>";
        assert_eq!(
            doc_c14n(xml, &inc()),
            "<e a=\"&amp;&lt;>&quot;&#x9;&#xA;&#xD;'\">&amp;&lt;&gt;\"'&#xD;\t\u{1EE6}&lt;&amp;&gt;</e>"
        );
        // Literal whitespace in attributes was normalised to spaces by the parser.
        assert_eq!(
            doc_c14n("<e a='x\ty\r\nz'/>", &inc()),
            "<e a=\"x y z\"></e>"
        );
    }

    #[test]
    fn line_ends_normalised_everywhere() {
        let xml = "<!--a\r\nb\rc-->\r\n<e>x\r\ny\rz<?p d\r\ne?></e>";
        assert_eq!(
            doc_c14n(xml, &inc_c()),
            "<!--a\nb\nc-->\n<e>x\ny\nz<?p d\ne?></e>"
        );
    }

    #[test]
    fn comments_and_pis_outside_the_document_element() {
        let xml = "<?xml version='1.0'?>\n<?a x?>\n<!--1-->\n<e><!--in--></e>\n<!--2-->\n<?b?>\n";
        assert_eq!(
            doc_c14n(xml, &inc_c()),
            "<?a x?>\n<!--1-->\n<e><!--in--></e>\n<!--2-->\n<?b?>"
        );
        assert_eq!(doc_c14n(xml, &inc()), "<?a x?>\n<e></e>\n<?b?>");
    }

    #[test]
    fn xmlns_empty_only_when_needed() {
        let xml = r#"<a xmlns="urn:a"><b xmlns=""><c xmlns=""/></b><d xmlns:p="urn:p"><p:e xmlns=""/></d></a>"#;
        assert_eq!(
            doc_c14n(xml, &inc()),
            r#"<a xmlns="urn:a"><b xmlns=""><c></c></b><d xmlns:p="urn:p"><p:e xmlns=""></p:e></d></a>"#
        );
        assert_eq!(
            doc_c14n(xml, &exc()),
            r#"<a xmlns="urn:a"><b xmlns=""><c></c></b><d><p:e xmlns:p="urn:p"></p:e></d></a>"#
        );
        // No default anywhere: xmlns="" is never needed.
        assert_eq!(
            doc_c14n(r#"<a><b xmlns=""/></a>"#, &inc()),
            "<a><b></b></a>"
        );
    }

    #[test]
    fn redundant_and_redeclared_namespaces() {
        let xml = r#"<a xmlns:p="urn:1"><p:b xmlns:p="urn:1"><p:c xmlns:p="urn:2"><p:d xmlns:p="urn:1"/></p:c></p:b></a>"#;
        assert_eq!(
            doc_c14n(xml, &inc()),
            r#"<a xmlns:p="urn:1"><p:b><p:c xmlns:p="urn:2"><p:d xmlns:p="urn:1"></p:d></p:c></p:b></a>"#
        );
        assert_eq!(
            doc_c14n(xml, &exc()),
            r#"<a><p:b xmlns:p="urn:1"><p:c xmlns:p="urn:2"><p:d xmlns:p="urn:1"></p:d></p:c></p:b></a>"#
        );
    }

    #[test]
    fn same_uri_two_prefixes_keeps_the_written_prefix() {
        let xml = r#"<a xmlns="urn:x" xmlns:x="urn:x" xmlns:y="urn:x"><x:b y:at="1" x:at2="2"/><b/><y:b/></a>"#;
        assert_eq!(
            doc_c14n(xml, &exc()),
            r#"<a xmlns="urn:x"><x:b xmlns:x="urn:x" xmlns:y="urn:x" y:at="1" x:at2="2"></x:b><b></b><y:b xmlns:y="urn:x"></y:b></a>"#
        );
    }

    #[test]
    fn inclusive_subset_renders_ancestor_namespaces_and_xml_attributes() {
        let xml = r#"<r xmlns="urn:d" xmlns:u="urn:unused" xml:lang="vi" xml:space="preserve"><m xml:lang="en" xml:base="x/"><s xml:space="default" a="1"><t/></s></m></r>"#;
        assert_eq!(
            sub_c14n(xml, "s", &inc()),
            r#"<s xmlns="urn:d" xmlns:u="urn:unused" a="1" xml:base="x/" xml:lang="en" xml:space="default"><t></t></s>"#
        );
        assert_eq!(
            sub_c14n(xml, "s", &exc()),
            r#"<s xmlns="urn:d" a="1" xml:space="default"><t></t></s>"#
        );
    }

    #[test]
    fn exclusive_prefix_list() {
        let xml =
            r#"<r xmlns="urn:d" xmlns:ds="urn:ds" xmlns:u="urn:u"><ds:s><ds:t/><x/></ds:s></r>"#;
        assert_eq!(
            sub_c14n(xml, "s", &exc()),
            r#"<ds:s xmlns:ds="urn:ds"><ds:t></ds:t><x xmlns="urn:d"></x></ds:s>"#
        );
        assert_eq!(
            sub_c14n(xml, "s", &exc_p(&["#default", "u", "missing", "xml"])),
            r#"<ds:s xmlns="urn:d" xmlns:ds="urn:ds" xmlns:u="urn:u"><ds:t></ds:t><x></x></ds:s>"#
        );
        // #default with no default namespace in scope: xmlns="" under a rendered default.
        let xml = r#"<r xmlns="urn:d"><s><t xmlns=""><u/></t></s></r>"#;
        assert_eq!(
            sub_c14n(xml, "s", &exc_p(&["#default"])),
            r#"<s xmlns="urn:d"><t xmlns=""><u></u></t></s>"#
        );
    }

    #[test]
    fn enveloped_signature_excluded() {
        let xml = r#"<r xmlns="urn:r"><a>1</a><Signature xmlns="urn:ds"><x/></Signature><b/></r>"#;
        let doc = roxmltree::Document::parse(xml).unwrap();
        let sig = doc
            .descendants()
            .find(|n| n.has_tag_name("Signature"))
            .unwrap();
        let got = to_vec(doc.root(), &exc(), Some(sig.id()));
        assert_eq!(got, br#"<r xmlns="urn:r"><a>1</a><b></b></r>"#);
        // Excluding the node itself or an ancestor: nothing.
        let x = sig.first_child().unwrap();
        assert!(to_vec(x, &inc(), Some(sig.id())).is_empty());
    }

    #[test]
    fn deep_nesting_is_not_recursive() {
        let depth = 20_000;
        let mut xml = String::new();
        for _ in 0..depth {
            xml.push_str("<a>");
        }
        for _ in 0..depth {
            xml.push_str("</a>");
        }
        let opts = roxmltree::ParsingOptions {
            nodes_limit: u32::MAX,
            ..Default::default()
        };
        let doc = roxmltree::Document::parse_with_options(&xml, opts).unwrap();
        let got = to_vec(doc.root(), &exc(), None);
        assert_eq!(got.len(), depth * 7);
    }

    #[test]
    fn entity_expanded_elements_fall_back_to_scope_lookup() {
        let xml = "<!DOCTYPE r [<!ENTITY e '<p:x p:a=\"1\">t</p:x>'>]><r xmlns:p='urn:p'>&e;</r>";
        let opts = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        };
        let doc = roxmltree::Document::parse_with_options(xml, opts).unwrap();
        assert_eq!(
            to_vec(doc.root(), &exc(), None),
            br#"<r><p:x xmlns:p="urn:p" p:a="1">t</p:x></r>"#
        );
    }

    #[test]
    fn declarations_inside_internal_entities() {
        // The start tags of elements from an internal entity are in the DTD, still in the text.
        let xml = "<!DOCTYPE r [<!ENTITY e '<p:x xmlns:p=\"urn:q\" p:a=\"1\"><y xmlns=\"urn:d\"><p:z/></y></p:x>'>]><r xmlns:p='urn:p'>&e;<p:w/></r>";
        let opts = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        };
        let doc = roxmltree::Document::parse_with_options(xml, opts).unwrap();
        assert_eq!(
            String::from_utf8(to_vec(doc.root(), &inc(), None)).unwrap(),
            r#"<r xmlns:p="urn:p"><p:x xmlns:p="urn:q" p:a="1"><y xmlns="urn:d"><p:z></p:z></y></p:x><p:w></p:w></r>"#
        );
        assert_eq!(
            String::from_utf8(to_vec(doc.root(), &exc(), None)).unwrap(),
            r#"<r><p:x xmlns:p="urn:q" p:a="1"><y xmlns="urn:d"><p:z></p:z></y></p:x><p:w xmlns:p="urn:p"></p:w></r>"#
        );
    }

    #[test]
    fn external_entity_elements_fall_back_to_roxmltree_scope() {
        // Ranges of elements from an external entity are into the entity's own text, so nothing
        // can be read back from the document text: the in-scope lists are used instead.
        let xml = String::from(
            "<!DOCTYPE r [<!ENTITY e SYSTEM 'e.xml'>]><r xmlns:p='urn:p'>&e;<p:w/></r>",
        );
        let resolver: &roxmltree::EntityResolver = &|_, _| {
            Ok(Some(
                "<p:x xmlns:p='urn:q' xmlns:u='urn:u'><p:y xmlns:p='urn:p' u:a='1'/><z/></p:x>",
            ))
        };
        let opts = roxmltree::ParsingOptions {
            allow_dtd: true,
            entity_resolver: Some(resolver),
            ..Default::default()
        };
        let doc = roxmltree::Document::parse_with_options(&xml, opts).unwrap();
        assert_eq!(
            String::from_utf8(to_vec(doc.root(), &inc(), None)).unwrap(),
            r#"<r xmlns:p="urn:p"><p:x xmlns:p="urn:q" xmlns:u="urn:u"><p:y xmlns:p="urn:p" u:a="1"></p:y><z></z></p:x><p:w></p:w></r>"#
        );
        assert_eq!(
            String::from_utf8(to_vec(doc.root(), &exc(), None)).unwrap(),
            r#"<r><p:x xmlns:p="urn:q"><p:y xmlns:p="urn:p" xmlns:u="urn:u" u:a="1"></p:y><z></z></p:x><p:w xmlns:p="urn:p"></p:w></r>"#
        );
    }

    #[test]
    fn declarations_are_read_from_the_start_tag() {
        let scan = |s: &'static str| {
            let mut v = Vec::new();
            scan_declarations(s, &mut v).then_some(v)
        };
        assert_eq!(scan(">"), Some(vec![]));
        assert_eq!(scan(" />"), Some(vec![]));
        assert_eq!(
            scan(concat!(
                " a='>' xmlns:p = \"u\"\n\txmlns='' t=\"xmlns:f='g' /\"",
                " xmlns:xml='http://www.w3.org/XML/1998/namespace' q:xmlns='v' xmlns:xmlns2='w'",
                ">xmlns:z='z'/>"
            )),
            Some(vec!["p", "", "", "xmlns2"])
        );
        assert_eq!(scan(" a='unterminated"), None);
        assert_eq!(scan(" a>"), None);
        assert_eq!(scan(" a=b>"), None);
        assert_eq!(scan(""), None);

        // Declarations the scanner sees and roxmltree records alike, fast path or not.
        let xml = r#"<r xmlns="urn:d" xmlns:a="urn:a"><b xmlns="urn:d" xmlns:a="urn:a2" xmlns:xml="http://www.w3.org/XML/1998/namespace"><a:c a:x="1"/></b><d xmlns=""/></r>"#;
        assert_eq!(
            doc_c14n(xml, &inc()),
            r#"<r xmlns="urn:d" xmlns:a="urn:a"><b xmlns:a="urn:a2"><a:c a:x="1"></a:c></b><d xmlns=""></d></r>"#
        );
        assert_eq!(
            doc_c14n(xml, &exc_p(&["a", "#default", "a", "#default"])),
            r#"<r xmlns="urn:d" xmlns:a="urn:a"><b xmlns:a="urn:a2"><a:c a:x="1"></a:c></b><d xmlns=""></d></r>"#
        );
    }

    #[test]
    fn a_default_declared_twice_keeps_the_first_as_roxmltree_does() {
        // roxmltree takes any attribute whose local name is xmlns as a default namespace
        // declaration and resolves names with the first; the output follows the same binding.
        let xml = r#"<r xmlns="urn:a"><e xmlns="" p:xmlns="urn:w"><f/></e></r>"#;
        let want = r#"<r xmlns="urn:a"><e xmlns=""><f></f></e></r>"#;
        assert_eq!(doc_c14n(xml, &inc()), want);
        assert_eq!(doc_c14n(xml, &exc()), want);
    }

    #[test]
    fn scoped_map_matches_a_plain_stack() {
        // Random sets, marks and restores, checked against a stack searched from the top, across
        // the building and dropping of the index.
        let prefixes = ["", "a", "b", "c", "d", "e", "f"];
        let mut map = ScopedMap::new();
        let mut model: Vec<(&str, usize)> = Vec::new();
        let mut marks = Vec::new();
        let (mut indexed_steps, mut drops, mut was_indexed) = (0, 0, false);
        let mut x: u32 = 1;
        for step in 0..20_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let r = (x >> 16) as usize;
            match r % 7 {
                0..=3 => {
                    let p = prefixes[(r / 7) % prefixes.len()];
                    map.set(p, step);
                    model.push((p, step));
                }
                4 => marks.push(map.mark()),
                5 => {
                    if let Some(mark) = marks.pop() {
                        map.restore(mark);
                        model.truncate(mark);
                    }
                }
                _ if step % 97 == 0 => {
                    map.restore(0);
                    model.clear();
                    marks.clear();
                }
                _ => {}
            }
            indexed_steps += usize::from(map.indexed);
            drops += usize::from(was_indexed && !map.indexed);
            was_indexed = map.indexed;
            assert_eq!(map.mark(), model.len());
            for p in prefixes {
                let want = model.iter().rev().find(|b| b.0 == p).map(|b| b.1);
                assert_eq!(map.get(p), want, "step {step} prefix {p:?}");
            }
        }
        assert!(
            indexed_steps > 1000 && drops > 10,
            "{indexed_steps} {drops}"
        );
    }

    #[test]
    fn prefix_list_duplicates_dropped() {
        assert_eq!(
            Method::parse_prefix_list("a b a #default\tb #default c"),
            vec!["a", "b", "#default", "c"]
        );
        assert!(Method::parse_prefix_list(" \n").is_empty());
    }

    #[test]
    fn text_escaping_runs() {
        let mut out = Vec::new();
        write_text("a&b<c>d\re\r\r&", &mut out);
        assert_eq!(out, b"a&amp;b&lt;c&gt;d&#xD;e&#xD;&#xD;&amp;");
        let mut out = Vec::new();
        write_text("", &mut out);
        write_text("plain", &mut out);
        assert_eq!(out, b"plain");
        let mut out = Vec::new();
        write_raw_text("\r\r\n\n\r", &mut out);
        assert_eq!(out, b"\n\n\n\n");
    }

    #[test]
    fn digest_sink_matches_one_shot_digest() {
        use aws_lc_rs::digest;
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let want = digest::digest(&digest::SHA256, &data);
        for chunk in [
            1usize,
            7,
            4096,
            DigestSink::BUFFER - 1,
            DigestSink::BUFFER + 3,
            100_000,
        ] {
            let mut sink = DigestSink::new(&digest::SHA256);
            for c in data.chunks(chunk) {
                sink.put(c);
            }
            assert_eq!(sink.finish().as_ref(), want.as_ref(), "chunk {chunk}");
        }
        let doc = roxmltree::Document::parse("<a>x&amp;</a>").unwrap();
        let d = super::digest(doc.root(), &inc(), None, &digest::SHA256);
        assert_eq!(
            d.as_ref(),
            digest::digest(&digest::SHA256, b"<a>x&amp;</a>").as_ref()
        );
    }
}
