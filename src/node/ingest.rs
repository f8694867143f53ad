//! Ingest, the pure part: may this node accept these bytes from that peer, and for whom?
//!
//! The store side (deduplicate, store, audit — one transaction) comes after this check and only
//! for packages that passed it, so a refused package leaves no state at all (invariant 5).
//!
//! **Channel peers.** A peer configured with `xml_signature = "channel"` is one whose mutual-TLS
//! connection authenticates what it sends (the national platform, which does not check XML
//! signatures and forwards SDK-built packages with a placeholder signature). From such a peer a
//! package whose signature is absent or a placeholder ([`dsig::placeholder`]: no certificate
//! that parses) is accepted without a signature check, as [`Authenticity::Channel`], under the
//! same rules as any package otherwise: it parses and reads, the peer serves its sender, it is
//! addressed here. A package that carries a real certificate is verified as from any peer and
//! refused if that fails (a real signature that does not check out is tampering, not a
//! placeholder). From any other peer, and from this node itself, the signature is required.
//! The decision is made on the one parsed tree, before any cryptography.

use crate::Error;
use crate::config::{Config, PeerConfig, XmlSignature};
use crate::dsig::placeholder::{self, Presence};
use crate::edxml::xml;
use crate::edxml::{self, OrganId, Package, ReadOptions};
use crate::error::{Code, FormatError, TrustError};
use crate::pki::TrustStore;
use crate::store::{ChannelTrust, SignedPackage, UnverifiedSignature};
use crate::verify::{self, Options, VerifiedPackage};

/// A package that may be stored: authenticated, from a sender the peer speaks for, addressed
/// here.
#[derive(Debug)]
pub struct Accepted {
    pub authenticity: Authenticity,
    /// The agencies of this node the package is for: the recipients of a document, or the
    /// original sender of the document a status is about.
    pub local_recipients: Vec<OrganId>,
}

/// How an accepted package was authenticated.
// Both variants hold the package; one value per ingest, moved a few times: not worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Authenticity {
    /// Its XML signature verified, by a trusted signer.
    Signature(VerifiedPackage),
    /// Its signature is absent or a placeholder, and it came over the mutual-TLS connection of
    /// a channel peer: that connection is all that authenticates it. Never shown as signed.
    Channel(ChannelPackage),
}

/// A package a channel peer pushed without a verifiable signature.
#[derive(Debug)]
pub struct ChannelPackage {
    pub package: Package,
    /// The configured name of the channel peer it came from.
    pub channel: String,
    /// Absent or a placeholder ([`Presence`]).
    pub xml_signature: UnverifiedSignature,
    /// Why a placeholder is one (which certificate did not parse, and how); empty when absent.
    pub why: String,
    /// Leading bytes of the input that were dropped (BOM, junk before `<?xml`): what was read
    /// is `input[read_from..]`, and that is what is kept.
    pub read_from: usize,
}

impl Accepted {
    /// The package as read.
    pub fn package(&self) -> &Package {
        match &self.authenticity {
            Authenticity::Signature(v) => &v.package,
            Authenticity::Channel(c) => &c.package,
        }
    }

    /// The package as read, to drop what is no longer needed of it.
    pub fn package_mut(&mut self) -> &mut Package {
        match &mut self.authenticity {
            Authenticity::Signature(v) => &mut v.package,
            Authenticity::Channel(c) => &mut c.package,
        }
    }

    /// The verified package, when the signature was verified.
    pub fn verified(&self) -> Option<&VerifiedPackage> {
        match &self.authenticity {
            Authenticity::Signature(v) => Some(v),
            Authenticity::Channel(_) => None,
        }
    }
}

/// Where a package came from: that decides whom it may speak for.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// This node itself (a local delivery): only for its own agencies.
    Node,
    /// A peer, identified by its mutual-TLS client certificate: only for the codes it serves.
    Peer(&'a PeerConfig),
    /// A mail (the bridge's mailbox). A mail is not a peer: nothing about it is authenticated,
    /// neither its `From` nor the server it came through, so it has no channel trust and
    /// speaks for no one by itself. The package is taken for its signature alone: the signer
    /// must be trusted and bound to the package's `From` code (the certificate's code or the
    /// agency registry, [`crate::node::registry::bind_sender`], which the caller runs next).
    Mail,
}

/// Checks `bytes` pushed by `peer` (`None` when it came from this node itself, e.g. a local
/// delivery). `at` is the verification time. `peer` must be the peer its mutual-TLS client
/// certificate identified: a channel peer's packages are taken on the word of that connection
/// (configuration refuses a channel peer under `node.dev_plain_http`, where a header names the
/// peer).
pub fn check(
    bytes: &[u8],
    config: &Config,
    trust: &TrustStore,
    peer: Option<&PeerConfig>,
    at: std::time::SystemTime,
) -> Result<Accepted, Error> {
    let origin = match peer {
        Some(p) => Origin::Peer(p),
        None => Origin::Node,
    };
    check_from(bytes, config, trust, origin, at)
}

/// [`check`] for a package from `origin`, a mail included ([`Origin::Mail`]).
pub fn check_from(
    bytes: &[u8],
    config: &Config,
    trust: &TrustStore,
    origin: Origin<'_>,
    at: std::time::SystemTime,
) -> Result<Accepted, Error> {
    let peer = match origin {
        Origin::Peer(p) => Some(p),
        Origin::Node | Origin::Mail => None,
    };
    let mut opts = Options::new(trust);
    opts.limits = config.limits.clone();
    opts.signature.allow_sha1 = config.node.allow_sha1;
    opts.trust_policy.allow_sha1 = config.node.allow_sha1;
    opts.at = at;
    let parsed = xml::parse(bytes, &opts.limits)?;
    let channel = peer.filter(|p| p.xml_signature == XmlSignature::Channel);
    let authenticity = match channel.map(|p| (p, placeholder::presence(&parsed))) {
        Some((p, presence @ (Presence::Absent | Presence::Placeholder(_)))) => {
            let read = ReadOptions {
                limits: opts.limits.clone(),
                strict: opts.strict,
            };
            placeholder::check_placement(&parsed)?;
            let (xml_signature, why) = match presence {
                Presence::Placeholder(why) => (UnverifiedSignature::Placeholder, why),
                _ => (UnverifiedSignature::Absent, String::new()),
            };
            Authenticity::Channel(ChannelPackage {
                package: edxml::read_tree(&parsed, &read)?,
                channel: p.name.clone(),
                xml_signature,
                why,
                read_from: parsed.offset,
            })
        }
        _ => Authenticity::Signature(verify::verify_parsed(&parsed, &opts)?),
    };
    let package = match &authenticity {
        Authenticity::Signature(v) => &v.package,
        Authenticity::Channel(c) => &c.package,
    };

    let from = &package.from().organ_id;
    let may_speak = match origin {
        Origin::Peer(p) => p.serves(from),
        Origin::Node => config.agency(from).is_some(),
        // Bound by its signature alone (see [`Origin::Mail`]).
        Origin::Mail => true,
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

    let local_recipients: Vec<OrganId> = match package {
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
        authenticity,
        local_recipients,
    })
}

impl Accepted {
    /// What is stored of `bytes` (the ones checked) and what is recorded with them, given the
    /// package's header as JSON; with the SHA-256 of the bytes as verified before what the
    /// signature does not cover was removed (`NewIncoming::received_sha256`).
    ///
    /// A verified package is kept as `dsig::archive` plans (the verified text less what the
    /// signature does not cover) with its signer and signed identity. A channel package is kept
    /// as read (less stray bytes before `<?xml`): nothing in it was signed, so there is no
    /// signed part to narrow it to; it has no signer and no signed identity (a repeat is known
    /// by its bytes), and it carries its [`ChannelTrust`].
    pub fn stored(
        &self,
        mut bytes: Vec<u8>,
        header_json: String,
    ) -> (SignedPackage, Option<String>) {
        match &self.authenticity {
            Authenticity::Signature(v) => {
                if !v.signature.archive.signature_rebuilt() {
                    tracing::warn!(
                        from = %v.package.from().organ_id,
                        "the rebuilt Signature did not check out; kept as received"
                    );
                }
                let received =
                    crate::audit::hash::sha256_hex(&bytes[v.verified_from.min(bytes.len())..]);
                let package = SignedPackage {
                    header_json,
                    bytes: v.kept(bytes),
                    signer_subject: Some(v.signer.subject.clone()),
                    signer_fingerprint: Some(v.signer.sha256_fingerprint.clone()),
                    signed_content: Some(v.signed_identity_hex()),
                    channel: None,
                };
                (package, Some(received))
            }
            Authenticity::Channel(c) => {
                bytes.drain(..c.read_from.min(bytes.len()));
                let xml_signature = c.xml_signature;
                tracing::info!(
                    from = %c.package.from().organ_id,
                    channel = %c.channel,
                    signature = xml_signature.as_str(),
                    why = %c.why,
                    "accepted without a verifiable signature: authenticated by the channel"
                );
                let package = SignedPackage {
                    header_json,
                    bytes,
                    signer_subject: None,
                    signer_fingerprint: None,
                    signed_content: None,
                    channel: Some(ChannelTrust {
                        channel: c.channel.clone(),
                        xml_signature,
                    }),
                };
                (package, None)
            }
        }
    }
}
