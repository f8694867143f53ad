//! The edXML format (QCVN 102:2016/BTTTT): agency codes, the package model, reader and writer.
//! Pure: no I/O beyond the byte slices it is handed.
//!
//! - [`xml`]: safe parsing with limits (the only way outside bytes become a tree);
//! - [`organ_id`]: agency codes, strict and lenient;
//! - [`model`]: the document and status packages;
//! - [`reader`] / [`writer`]: bytes ↔ model (lenient but never silent / strict and deterministic);
//! - [`attachment`]: base64 and zip, with caps against zip bombs; [`file_name`]: attachment
//!   names made safe to write to disk;
//! - [`status`]: the business status codes; [`processing`]: who may report which status after
//!   what (the document's processing order); [`mod@document_id`]: document identity;
//! - [`dates`], [`soft_limits`]: value forms and length limits shared by reader and writer;
//! - [`samples`]: realistic packages for tests, benchmarks and documentation.

pub mod attachment;
pub mod dates;
pub mod document_id;
pub mod file_name;
pub mod model;
pub mod organ_id;
pub mod processing;
pub mod reader;
pub mod samples;
pub mod soft_limits;
pub mod status;
pub mod writer;
pub mod xml;

pub use dates::vietnam_time;
pub use document_id::document_id;
pub use model::{
    Attachment, Business, BusinessDocType, BusinessDocumentInfo, DocumentCode, DocumentPackage,
    DocumentType, MessageHeader, Organization, OtherInfo, Package, Priority, PromulgationInfo,
    Receiver, ReplacementInfo, ResponseFor, SignerInfo, StaffInfo, StatusPackage, SteeringType,
    TraceHeader, Warning, WarningKind,
};
pub use organ_id::OrganId;
pub use reader::{ReadOptions, read, read_tree};
pub use status::StatusCode;
pub use writer::{write, write_document, write_status};

/// The QCVN 102 namespace every edXML element lives in (the signature excepted).
pub const NS: &str = "http://www.mic.gov.vn/TBT/QCVN_102_2016";

/// The XML-DSig namespace, where the package signature normally lives.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// Is `n` the package signature element? Packages from the common SDK put `Signature` in the
/// edXML namespace (no declaration of its own) and Bkav's in no namespace at all (in a package
/// whose elements are all prefixed), so all three count (EDXML.md §5); the reader flags the two
/// that are not XML-DSig's. The reader skips it and the verifier checks it; both use this one
/// rule, and the verifier reads the signature's children in the signature's own namespace.
pub fn is_signature(n: &roxmltree::Node) -> bool {
    n.is_element()
        && n.tag_name().name() == "Signature"
        // roxmltree reports an element under `xmlns=""` as in namespace "": no namespace too.
        && matches!(n.tag_name().namespace(), Some(DSIG_NS | NS | "") | None)
}
