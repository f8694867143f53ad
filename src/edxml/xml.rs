//! Safe XML parsing: the only way bytes from outside become a tree.
//!
//! Everything that reads a package — the edXML reader and the signature verifier — goes through
//! [`parse`], so the safety rules live in one place: a size cap before anything is looked at, UTF-8
//! only (a BOM and stray text before `<?xml` are dropped, the latter counted in [`Xml::junk`] so
//! the reader can say so), no DTD (so no entities, no billion laughs, no external fetches), a cap on the node count
//! while parsing and on the nesting depth after it. The tree borrows the caller's bytes, so what is
//! verified is exactly what the caller holds.

use crate::error::{Code, FormatError};

/// Hard limits on what a package may contain. The defaults suit inter-agency dispatches, which
/// are rarely above a few tens of megabytes; a node may raise them in its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Total package size in bytes, checked before parsing.
    pub max_package_bytes: usize,
    /// Maximum element nesting depth (the edXML tree itself is 6 deep).
    pub max_depth: usize,
    /// Maximum number of XML nodes (elements, text, comments, PIs).
    pub max_nodes: u32,
    /// Maximum attributes (namespace declarations included) on one element. edXML needs 2.
    pub max_attributes: usize,
    /// Maximum namespace declarations in the whole document. Real packages carry fewer than 10;
    /// the cap keeps parsing and canonicalisation linear.
    pub max_namespace_declarations: usize,
    /// Maximum number of attachments in one package.
    pub max_attachments: usize,
    /// Maximum size of one attachment after base64 decoding and unzipping.
    pub max_attachment_bytes: u64,
    /// Maximum total size of all attachments after decoding and unzipping.
    pub max_total_attachment_bytes: u64,
    /// Maximum unzipped/zipped ratio for attachments over 1 MiB (zip bombs).
    pub max_zip_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_package_bytes: 256 * 1024 * 1024,
            max_depth: 64,
            max_nodes: 200_000,
            max_attributes: 64,
            max_namespace_declarations: 64,
            max_attachments: 200,
            max_attachment_bytes: 160 * 1024 * 1024,
            max_total_attachment_bytes: 190 * 1024 * 1024,
            max_zip_ratio: 200,
        }
    }
}

/// A parsed XML document together with the exact text it was parsed from.
pub struct Xml<'a> {
    /// The text the tree was built from: the input less a BOM and any junk before `<?xml`.
    /// This, not the input, is what a caller must keep and forward.
    pub text: &'a str,
    /// How many leading bytes of the input were dropped (BOM, junk).
    pub offset: usize,
    /// How many of those were stray bytes before `<?xml` (a BOM not counted): never silently
    /// dropped, the reader warns about them.
    pub junk: usize,
    /// The tree. Node ranges are offsets into `text`.
    pub doc: roxmltree::Document<'a>,
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
/// How far into the input we look for an XML declaration preceded by junk.
const JUNK_WINDOW: usize = 1024;

/// Parses `bytes` under `limits`. See the module documentation for the rules.
pub fn parse<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Xml<'a>, FormatError> {
    if bytes.len() > limits.max_package_bytes {
        return Err(FormatError::new(
            Code::PackageTooLarge,
            "(package)",
            format!(
                "{} bytes, over the limit of {}",
                bytes.len(),
                limits.max_package_bytes
            ),
        ));
    }
    let (offset, junk, bytes) = strip_prefix_junk(bytes)?;
    let text = std::str::from_utf8(bytes).map_err(|e| {
        FormatError::new(
            Code::EncodingInvalid,
            format!("(byte {})", offset + e.valid_up_to()),
            "not valid UTF-8",
        )
    })?;
    check_declared_encoding(text)?;
    prescan(text, limits)?;
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: limits.max_nodes,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts).map_err(map_error)?;
    check_depth(&doc, limits.max_depth)?;
    Ok(Xml {
        text,
        offset,
        junk,
        doc,
    })
}

/// Drops a UTF-8 BOM and stray bytes before an XML declaration found near the start (seen in
/// real traffic: bytes written by a gateway before `<?xml`). The stray bytes may not contain `<`:
/// otherwise another parser could read them as markup and see a different document than the one
/// whose signature we checked. UTF-16 is refused outright. Returns the bytes dropped, how many of
/// them were junk (not the BOM), and the rest.
fn strip_prefix_junk(input: &[u8]) -> Result<(usize, usize, &[u8]), FormatError> {
    if input.starts_with(b"\xFF\xFE") || input.starts_with(b"\xFE\xFF") {
        return Err(FormatError::new(
            Code::EncodingInvalid,
            "(byte 0)",
            "UTF-16 is not accepted; send UTF-8",
        ));
    }
    let bytes = input.strip_prefix(UTF8_BOM).unwrap_or(input);
    if bytes.starts_with(b"<?xml") {
        return Ok((input.len() - bytes.len(), 0, bytes));
    }
    let window = &bytes[..bytes.len().min(JUNK_WINDOW)];
    let Some(at) = memchr::memmem::find(window, b"<?xml") else {
        return Ok((input.len() - bytes.len(), 0, bytes));
    };
    if let Some(lt) = memchr::memchr(b'<', &window[..at]) {
        return Err(FormatError::new(
            Code::XmlMalformed,
            format!("(byte {})", input.len() - bytes.len() + lt),
            "markup before the XML declaration",
        ));
    }
    let rest = &bytes[at..];
    Ok((input.len() - rest.len(), at, rest))
}

/// A linear pass over the raw text that enforces the per-element attribute cap and the
/// per-document namespace-declaration cap *before* the tree is built: checking duplicates is
/// quadratic in the attributes of one element, so they must be bounded first.
fn prescan(text: &str, limits: &Limits) -> Result<(), FormatError> {
    let b = text.as_bytes();
    let at = |i: usize| {
        let pos = text_pos(text, i);
        format!("(line {}, column {})", pos.0, pos.1)
    };
    let skip_to = |from: usize, end: &[u8]| {
        memchr::memmem::find(&b[from..], end).map_or(b.len(), |p| from + p + end.len())
    };
    let mut namespaces = 0usize;
    let mut i = 0usize;
    while let Some(p) = memchr::memchr(b'<', &b[i..]) {
        i += p;
        let rest = &b[i..];
        if rest.starts_with(b"<!--") {
            i = skip_to(i + 4, b"-->");
        } else if rest.starts_with(b"<![CDATA[") {
            i = skip_to(i + 9, b"]]>");
        } else if rest.starts_with(b"<?") {
            i = skip_to(i + 2, b"?>");
        } else if rest.starts_with(b"<!") || rest.starts_with(b"</") {
            i = skip_to(i + 2, b">");
        } else {
            // A start tag: count `name=` pairs outside quoted values.
            let tag = i;
            let mut attributes = 0usize;
            let mut quote = None;
            let mut name_start = i + 1;
            let mut j = i + 1;
            while j < b.len() {
                let c = b[j];
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None => match c {
                        b'"' | b'\'' => quote = Some(c),
                        b'>' => break,
                        b'=' => {
                            attributes += 1;
                            let name = b[name_start..j].trim_ascii();
                            if name == b"xmlns" || name.starts_with(b"xmlns:") {
                                namespaces += 1;
                            }
                        }
                        c if c.is_ascii_whitespace() => name_start = j + 1,
                        _ => {}
                    },
                }
                j += 1;
            }
            if attributes > limits.max_attributes {
                return Err(FormatError::new(
                    Code::ElementLimit,
                    at(tag),
                    format!(
                        "{attributes} attributes on one element, over the limit of {}",
                        limits.max_attributes
                    ),
                ));
            }
            if namespaces > limits.max_namespace_declarations {
                return Err(FormatError::new(
                    Code::ElementLimit,
                    at(tag),
                    format!(
                        "more than {} namespace declarations in the document",
                        limits.max_namespace_declarations
                    ),
                ));
            }
            // A start tag still open at the end of the text (no `>`) ends the scan; the parser
            // refuses it as malformed. Past the end, the next `b[i..]` would panic.
            i = (j + 1).min(b.len());
        }
    }
    Ok(())
}

/// 1-based line and column of byte `i`, for messages (only computed on error).
fn text_pos(text: &str, i: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..i.min(text.len())];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let col = before.len() - memchr::memrchr(b'\n', before).map_or(0, |p| p + 1) + 1;
    (line, col)
}

/// The XML declaration may name an encoding; anything but UTF-8 would mean we misread the text.
fn check_declared_encoding(text: &str) -> Result<(), FormatError> {
    let Some(decl) = text.strip_prefix("<?xml") else {
        return Ok(());
    };
    let Some(end) = decl.find("?>") else {
        return Ok(());
    };
    let decl = &decl[..end];
    let Some(at) = decl.find("encoding") else {
        return Ok(());
    };
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .trim_start_matches('=')
        .trim_start();
    let value: String = rest
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| *c != '"' && *c != '\'')
        .collect();
    if value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8") {
        Ok(())
    } else {
        Err(FormatError::new(
            Code::EncodingInvalid,
            "(XML declaration)",
            format!("encoding {value:?} is not accepted; send UTF-8"),
        ))
    }
}

fn map_error(e: roxmltree::Error) -> FormatError {
    use roxmltree::Error as E;
    let pos = e.pos();
    let at = format!("(line {}, column {})", pos.row, pos.col);
    match e {
        E::DtdDetected => FormatError::new(
            Code::DtdForbidden,
            at,
            "a DTD is present; DTDs and entities are never processed",
        ),
        E::NodesLimitReached | E::AttributesLimitReached | E::NamespacesLimitReached => {
            FormatError::new(Code::ElementLimit, at, e.to_string())
        }
        E::UnknownEntityReference(..) | E::EntityReferenceLoop(..) => {
            FormatError::new(Code::DtdForbidden, at, format!("entity reference: {e}"))
        }
        E::NonXmlChar(..) | E::InvalidChar(..) | E::InvalidChar2(..) => {
            FormatError::new(Code::XmlMalformed, at, e.to_string())
        }
        _ => FormatError::new(Code::XmlMalformed, at, e.to_string()),
    }
}

/// Nesting depth, measured without recursion so a depth bomb cannot overflow the stack.
fn check_depth(doc: &roxmltree::Document, max_depth: usize) -> Result<(), FormatError> {
    // Nodes come in document order, so a parent's depth is known before its children's.
    let mut depths = vec![0u16; doc.descendants().len()];
    for n in doc.descendants().filter(|n| n.is_element()) {
        let parent = n.parent().map_or(0, |p| depths[p.id().get_usize()]);
        let depth = parent.saturating_add(1);
        if usize::from(depth) > max_depth {
            let pos = doc.text_pos_at(n.range().start);
            return Err(FormatError::new(
                Code::DepthLimit,
                format!("(line {}, column {})", pos.row, pos.col),
                format!("elements nested deeper than {max_depth}"),
            ));
        }
        depths[n.id().get_usize()] = depth;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(bytes: &[u8]) -> Code {
        match parse(bytes, &Limits::default()) {
            Ok(_) => panic!("parsed"),
            Err(e) => e.code,
        }
    }

    #[test]
    fn accepts_bom_and_junk_before_declaration() {
        let x = parse(
            b"\xEF\xBB\xBF<?xml version=\"1.0\"?><a/>",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(x.doc.root_element().tag_name().name(), "a");
        let input = b"\r\n\x00junk<?xml version=\"1.0\" encoding=\"UTF-8\"?><a/>";
        let x = parse(input, &Limits::default()).unwrap();
        assert_eq!(x.offset, 7);
        assert_eq!(x.junk, 7);
        assert_eq!(x.text.as_bytes(), &input[7..]);
    }

    #[test]
    fn refuses_markup_before_the_declaration() {
        // A polyglot: other parsers would read the junk as the start of the document.
        let input = b"<edXML><![CDATA[<?xml version=\"1.0\"?><a/>";
        assert_eq!(code(input), Code::XmlMalformed);
    }

    #[test]
    fn a_start_tag_open_at_the_end_is_malformed_not_a_panic() {
        // Found by fuzz/ (xml_parse, read, verify_package): the attribute prescan stepped past
        // the end of the text and sliced out of range.
        for input in [
            &b"<a"[..],
            b"<?xml version=\"1.0\"?><a b='>",
            b"<?xml version=\"1.0\"?><edXML xmlns=\"urn:x\" a=\"1",
            b"<e '\0\0 xmlns:a=\"u\"><e1 a:x=\"1\"/></e>\n",
        ] {
            assert_eq!(code(input), Code::XmlMalformed, "{input:?}");
        }
    }

    #[test]
    fn caps_attributes_and_namespace_declarations_before_parsing() {
        let attrs: String = (0..65).map(|i| format!(" a{i}=\"v\"")).collect();
        assert_eq!(code(format!("<a{attrs}/>").as_bytes()), Code::ElementLimit);
        let ok: String = (0..64).map(|i| format!(" a{i}='>'")).collect();
        assert!(parse(format!("<a{ok}/>").as_bytes(), &Limits::default()).is_ok());
        let ns: String = (0..65)
            .map(|i| format!("<e xmlns:p{i}=\"urn:{i}\"/>"))
            .collect();
        assert_eq!(code(format!("<a>{ns}</a>").as_bytes()), Code::ElementLimit);
        // Attribute-like text in comments, CDATA and PIs does not count.
        let hidden = format!("<a><!-- {attrs} --><![CDATA[<b {attrs}>]]><?pi {attrs}?></a>");
        assert!(parse(hidden.as_bytes(), &Limits::default()).is_ok());
    }

    #[test]
    fn refuses_dtd_other_encodings_and_bombs() {
        assert_eq!(
            code(b"<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>"),
            Code::DtdForbidden
        );
        assert_eq!(
            code(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>"),
            Code::EncodingInvalid
        );
        assert_eq!(code(b"<a>\xC3\x28</a>"), Code::EncodingInvalid);
        assert_eq!(code(b"\xFF\xFE<\x00a\x00/\x00>\x00"), Code::EncodingInvalid);
        let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
        assert_eq!(code(deep.as_bytes()), Code::DepthLimit);
        assert_eq!(code(b"<a><b></a>"), Code::XmlMalformed);
        let limits = Limits {
            max_package_bytes: 10,
            ..Limits::default()
        };
        assert_eq!(
            parse(b"<a>0123456789</a>", &limits).err().map(|e| e.code),
            Some(Code::PackageTooLarge)
        );
        let limits = Limits {
            max_nodes: 10,
            ..Limits::default()
        };
        let many = format!("<a>{}</a>", "<b/>".repeat(20));
        assert_eq!(
            parse(many.as_bytes(), &limits).err().map(|e| e.code),
            Some(Code::ElementLimit)
        );
    }
}
