//! Ingest, the pure part: may this node accept these bytes from that peer, and for whom?
//!
//! The store side (deduplicate, store, audit — one transaction) comes after this check and only
//! for packages that passed it, so a refused package leaves no state at all (invariant 5).

use crate::Error;
use crate::config::{Config, PeerConfig};
use crate::edxml::{OrganId, Package};
use crate::error::{Code, FormatError, TrustError};
use crate::pki::TrustStore;
use crate::verify::{self, Options, VerifiedPackage};

/// A package that may be stored: verified, from a sender the peer speaks for, addressed here.
#[derive(Debug)]
pub struct Accepted {
    pub verified: VerifiedPackage,
    /// The agencies of this node the package is for: the recipients of a document, or the
    /// original sender of the document a status is about.
    pub local_recipients: Vec<OrganId>,
}

/// Checks `bytes` pushed by `peer` (`None` when it came from this node itself, e.g. a local
/// delivery). `at` is the verification time.
pub fn check(
    bytes: &[u8],
    config: &Config,
    trust: &TrustStore,
    peer: Option<&PeerConfig>,
    at: std::time::SystemTime,
) -> Result<Accepted, Error> {
    let mut opts = Options::new(trust);
    opts.limits = config.limits.clone();
    opts.signature.allow_sha1 = config.node.allow_sha1;
    opts.trust_policy.allow_sha1 = config.node.allow_sha1;
    opts.at = at;
    let verified = verify::verify_package(bytes, &opts)?;

    let from = &verified.package.from().organ_id;
    let may_speak = match peer {
        Some(p) => p.serves(from),
        None => config.agency(from).is_some(),
    };
    if !may_speak {
        let who = peer.map_or("this node".to_owned(), |p| format!("peer {}", p.name));
        return Err(TrustError::new(
            Code::PeerNotAuthorised,
            from.to_string(),
            format!("{who} may not send on behalf of {from}"),
        )
        .into());
    }

    let local_recipients: Vec<OrganId> = match &verified.package {
        Package::Document(d) => d
            .header
            .to
            .iter()
            .map(|t| t.organ_id.clone())
            .filter(|c| config.agency(c).is_some())
            .collect(),
        Package::Status(s) => {
            let original = &s.response_for.organ_id;
            config
                .agency(original)
                .map(|_| original.clone())
                .into_iter()
                .collect()
        }
    };
    if local_recipients.is_empty() {
        return Err(FormatError::new(
            Code::NotAddressedHere,
            "edXMLEnvelope/edXMLHeader/MessageHeader",
            "none of the recipients is an agency this node serves",
        )
        .into());
    }
    Ok(Accepted {
        verified,
        local_recipients,
    })
}
