//! Where the signature lives in an edXML package: the last child of the one
//! `edXML/edXMLEnvelope/edXMLHeader`. Shared by signing and verification so both agree on it.

use roxmltree::{Document, Node};

use crate::edxml::NS as EDXML_NS;
use crate::error::{Code, FormatError, SignatureError};

/// Path of the header, for messages.
pub(crate) const HEADER_PATH: &str = "edXMLEnvelope/edXMLHeader";

/// The one `edXMLHeader`; refuses a second envelope or header (signature wrapping), and a
/// document that is not edXML.
pub(crate) fn header<'a, 'i>(doc: &'a Document<'i>) -> Result<Node<'a, 'i>, FormatError> {
    let root = doc.root_element();
    if root.tag_name().name() != "edXML" || root.tag_name().namespace() != Some(EDXML_NS) {
        return Err(FormatError::new(
            Code::NotEdxml,
            root.tag_name().name(),
            format!("the document element is not edXML in namespace {EDXML_NS}"),
        ));
    }
    let envelope = only_child(root, "edXMLEnvelope", "edXMLEnvelope")?;
    only_child(envelope, "edXMLHeader", HEADER_PATH)
}

fn only_child<'a, 'i>(
    parent: Node<'a, 'i>,
    name: &str,
    path: &str,
) -> Result<Node<'a, 'i>, FormatError> {
    let mut found = parent.children().filter(|c| {
        c.is_element() && c.tag_name().name() == name && c.tag_name().namespace() == Some(EDXML_NS)
    });
    let first = found.next().ok_or_else(|| FormatError::missing(path))?;
    let more = found.count();
    if more > 0 {
        return Err(FormatError::new(
            Code::ElementDuplicate,
            path,
            format!("appears {} times; a package has exactly one", more + 1),
        ));
    }
    Ok(first)
}

/// The package's one signature, checked to be the last element child of the header.
/// `Ok(None)` when the package carries no signature at all.
pub(crate) fn signature<'a, 'i>(
    doc: &'a Document<'i>,
) -> Result<Option<Node<'a, 'i>>, crate::Error> {
    let header = header(doc)?;
    let mut all = doc.descendants().filter(crate::edxml::is_signature);
    let Some(sig) = all.next() else {
        return Ok(None);
    };
    let more = all.count();
    if more > 0 {
        return Err(SignatureError::new(
            Code::SignatureDuplicate,
            "Signature",
            format!(
                "{} Signature elements; a package carries exactly one",
                more + 1
            ),
        )
        .into());
    }
    let last = header.children().rfind(Node::is_element);
    if sig.parent() != Some(header) || last != Some(sig) {
        return Err(SignatureError::new(
            Code::SignatureMisplaced,
            path_of(sig),
            format!("the Signature must be the last child of {HEADER_PATH}"),
        )
        .into());
    }
    Ok(Some(sig))
}

/// Slash path of an element below the document element, for messages.
pub(crate) fn path_of(n: Node) -> String {
    let mut names: Vec<&str> = n
        .ancestors()
        .filter(Node::is_element)
        .map(|a| a.tag_name().name())
        .collect();
    names.pop(); // the document element itself
    names.reverse();
    names.join("/")
}
