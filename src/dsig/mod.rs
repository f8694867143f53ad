//! XML-DSig, in the narrow profile edXML needs: canonicalisation, the enveloped signature over
//! `URI=""`, and verification under a policy. Pure: no I/O.

pub mod c14n;

/// The XML-DSig namespace.
pub const NS: &str = "http://www.w3.org/2000/09/xmldsig#";
