//! XML-DSig, in the narrow profile edXML needs: canonicalisation, the enveloped signature over
//! `URI=""`, and verification under a policy. Pure: no I/O.
//!
//! - [`c14n`]: inclusive and exclusive canonical XML, streaming into a digest;
//! - [`sign`]: the signature this node writes (exclusive c14n, SHA-256, RSA-SHA256);
//! - [`verify`](mod@verify): the signatures it accepts, and everything it refuses;
//! - [`algorithms`]: algorithm URIs and the [`Policy`] that admits legacy ones;
//! - [`archive`]: what is kept of a verified package (what the signature covers, nothing else);
//! - [`placeholder`]: whether a signature could be verified at all, or is absent or a placeholder.

pub mod algorithms;
pub mod archive;
pub mod c14n;
pub mod placeholder;
mod profile;
pub mod sign;
pub mod verify;

pub use algorithms::Policy;
pub use sign::{sign_package, sign_package_owned};
pub use verify::{VerifiedSignature, verify};

/// The XML-DSig namespace.
pub const NS: &str = crate::edxml::DSIG_NS;
