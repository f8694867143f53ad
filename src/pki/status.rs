//! Revocation status over a *validated* path: OCSP requests and responses (RFC 6960), CRLs
//! checked against the issuer that path validation found, and the per-anchor policy applied to
//! the result.
//!
//! Why a separate decision from webpki's CRL check (`revocation.rs`): the status of one
//! certificate may come from OCSP or from a CRL, each of which must be kept as evidence with the
//! document, and an unknown status under `prefer` must be flagged. So path validation runs with
//! no revocation check and returns the [`ValidatedPath`]; this module then decides per
//! certificate of that path (signer and intermediates, each with the issuer that signed it).
//!
//! Pure: the caller fetches (see `crate::revocation`); this module only builds requests, reads
//! the bytes it is given and decides. A [`ValidatedPath`] can only be made by path validation, so
//! the URLs it names ([`PathLink::ocsp_urls`], [`PathLink::crl_urls`]) are those of certificates
//! that chained to a trust anchor — a stranger's certificate never names a URL to fetch.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus, Request,
    TbsRequest, Version,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::time::ASN1Time;

use super::cert;
use super::revocation::RevocationPolicy;
use crate::error::{Code, TrustError};

/// Clock skew tolerated on OCSP `thisUpdate`/`nextUpdate` and CRL `thisUpdate`.
pub const SKEW: Duration = Duration::from_secs(5 * 60);
/// How long an OCSP response without `nextUpdate` is relied on after its `thisUpdate`.
pub const OCSP_NO_NEXT_UPDATE_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// How old (`thisUpdate` before the check) a fetched OCSP response that does not echo the
/// request's nonce may be. Many responders (RFC 5019, CDN caches) serve pre-produced responses
/// without a nonce; without one nothing ties the answer to this request, so only its age bounds
/// a replay of an answer given before a revocation. Twice [`SKEW`]: a responder whose clock
/// lags by the skew we tolerate still leaves five minutes of real caching.
pub const OCSP_UNBOUND_MAX_AGE: Duration = Duration::from_secs(10 * 60);
/// Most URLs of one kind taken from one certificate (a certificate naming hundreds is hostile).
pub const MAX_URLS_PER_CERT: usize = 4;
/// Longest URL taken from a certificate.
pub const MAX_URL_LEN: usize = 2048;

const OID_OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
const OID_OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// One certificate of a validated path with the certificate that issued it (DER both).
///
/// What the revocation check reads of the certificate (its description and its URLs) is taken
/// from one parse, on first use, and shared by every clone: a path the path cache hands out again
/// for the next package of the same signer is not parsed again.
#[derive(Debug, Clone)]
pub struct PathLink {
    cert: Vec<u8>,
    issuer: Vec<u8>,
    facts: Arc<OnceLock<LinkFacts>>,
}

/// What one parse of a link's certificate gives the revocation check.
#[derive(Debug)]
struct LinkFacts {
    described: super::SignerCert,
    ocsp_urls: Vec<String>,
    crl_urls: Vec<String>,
}

impl LinkFacts {
    fn of(der: &[u8]) -> LinkFacts {
        let Ok(c) = cert::parse(der) else {
            return LinkFacts {
                described: super::SignerCert {
                    subject: "(unparsable certificate)".into(),
                    issuer: String::new(),
                    serial_hex: String::new(),
                    not_before: String::new(),
                    not_after: String::new(),
                    sha256_fingerprint: hex::encode(digest::digest(&digest::SHA256, der)),
                    organ_id: None,
                },
                ocsp_urls: Vec::new(),
                crl_urls: Vec::new(),
            };
        };
        let mut ocsp_urls = Vec::new();
        let mut crl_urls = Vec::new();
        for ext in c.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::AuthorityInfoAccess(aia) => {
                    for ad in &aia.accessdescs {
                        if ad.access_method
                            == x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP
                            && let GeneralName::URI(u) = &ad.access_location
                        {
                            push_url(&mut ocsp_urls, u);
                        }
                    }
                }
                ParsedExtension::CRLDistributionPoints(cdp) => {
                    for dp in cdp.iter() {
                        if let Some(DistributionPointName::FullName(names)) = &dp.distribution_point
                        {
                            for n in names {
                                if let GeneralName::URI(u) = n {
                                    push_url(&mut crl_urls, u);
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        LinkFacts {
            described: super::describe::from_parsed(&c, der),
            ocsp_urls,
            crl_urls,
        }
    }
}

impl PathLink {
    fn new(cert: Vec<u8>, issuer: Vec<u8>) -> Self {
        PathLink {
            cert,
            issuer,
            facts: Arc::default(),
        }
    }

    fn facts(&self) -> &LinkFacts {
        self.facts.get_or_init(|| LinkFacts::of(&self.cert))
    }

    /// The certificate whose status is asked.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert
    }

    /// The certificate that issued it (an intermediate or the anchor).
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer
    }

    /// The certificate's subject, serial and fingerprint (for messages and evidence).
    pub fn describe(&self) -> super::SignerCert {
        self.facts().described.clone()
    }

    /// The OCSP responder URLs of its Authority Information Access (http/https only, capped).
    pub fn ocsp_urls(&self) -> Vec<String> {
        self.facts().ocsp_urls.clone()
    }

    /// The CRL distribution point URLs (full names, http/https only, capped).
    pub fn crl_urls(&self) -> Vec<String> {
        self.facts().crl_urls.clone()
    }
}

fn push_url(out: &mut Vec<String>, u: &str) {
    let lower = u.to_ascii_lowercase();
    if out.len() < MAX_URLS_PER_CERT
        && u.len() <= MAX_URL_LEN
        && (lower.starts_with("http://") || lower.starts_with("https://"))
        && !out.iter().any(|o| o == u)
    {
        out.push(u.to_owned());
    }
}

/// The path that path validation found: the signer first, then each intermediate, each with its
/// issuer; the anchor is not a link (it is trusted as configured). Only `pki` makes one.
#[derive(Debug, Clone)]
pub struct ValidatedPath {
    links: Vec<PathLink>,
    anchor_subject: String,
}

impl ValidatedPath {
    pub(crate) fn new(links: Vec<(Vec<u8>, Vec<u8>)>, anchor_subject: String) -> Self {
        ValidatedPath {
            links: links
                .into_iter()
                .map(|(cert, issuer)| PathLink::new(cert, issuer))
                .collect(),
            anchor_subject,
        }
    }

    /// Signer first, then the intermediates up to (not including) the anchor.
    pub fn links(&self) -> &[PathLink] {
        &self.links
    }

    /// The subject of the anchor the path ends at (RFC 4514 text): the key for per-anchor policy.
    pub fn anchor_subject(&self) -> &str {
        &self.anchor_subject
    }
}

/// An OCSP request for one certificate and what is needed to check its response.
#[derive(Debug, Clone)]
pub struct OcspQuery {
    /// DER `OCSPRequest`, to POST as `application/ocsp-request`.
    pub request: Vec<u8>,
    /// DER `CertID` (SHA-1), the cache key.
    pub cert_id: Vec<u8>,
    /// The nonce sent, if any: a response carrying another is refused, one carrying none is
    /// relied on only while recent ([`Freshness::Fetched`]).
    pub nonce: Option<Vec<u8>>,
}

/// Builds the OCSP request for `link` (CertID with SHA-1, as RFC 5019 and every responder
/// support), with `nonce` as the nonce extension when given.
pub fn ocsp_request(link: &PathLink, nonce: Option<&[u8]>) -> Result<OcspQuery, TrustError> {
    let subject = link.describe().subject;
    let bad = |e: String| TrustError::new(Code::CertMalformed, &subject, e);
    let cert_id = cert_id(link, OID_SHA1).map_err(|e| bad(e.to_string()))?;
    let cert_id_der = cert_id.to_der().map_err(|e| bad(e.to_string()))?;
    let request_extensions = match nonce {
        Some(n) => {
            let value = OctetString::new(n)
                .and_then(|o| o.to_der())
                .and_then(OctetString::new)
                .map_err(|e| bad(e.to_string()))?;
            Some(vec![x509_cert::ext::Extension {
                extn_id: OID_OCSP_NONCE,
                critical: false,
                extn_value: value,
            }])
        }
        None => None,
    };
    let req = OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions,
        },
        optional_signature: None,
    };
    Ok(OcspQuery {
        request: req.to_der().map_err(|e| bad(e.to_string()))?,
        cert_id: cert_id_der,
        nonce: nonce.map(<[u8]>::to_vec),
    })
}

fn cert_id(link: &PathLink, hash: ObjectIdentifier) -> Result<CertId, String> {
    let c = cert::parse(&link.cert).map_err(|e| e.to_string())?;
    let issuer = cert::parse(&link.issuer).map_err(|e| e.to_string())?;
    let alg = if hash == OID_SHA1 {
        &digest::SHA1_FOR_LEGACY_USE_ONLY
    } else if hash == OID_SHA256 {
        &digest::SHA256
    } else {
        return Err(format!("unsupported CertID hash {hash}"));
    };
    let name_hash = digest::digest(alg, issuer.subject().as_raw());
    let key_hash = digest::digest(alg, &issuer.public_key().subject_public_key.data);
    let serial =
        x509_cert::serial_number::SerialNumber::new(c.raw_serial()).map_err(|e| e.to_string())?;
    Ok(CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned {
            oid: hash,
            parameters: Some(der::asn1::Null.into()),
        },
        issuer_name_hash: OctetString::new(name_hash.as_ref()).map_err(|e| e.to_string())?,
        issuer_key_hash: OctetString::new(key_hash.as_ref()).map_err(|e| e.to_string())?,
        serial_number: serial,
    })
}

/// The revocation status of one certificate, from whatever source decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Good,
    Revoked,
    Unknown,
}

/// Where a status came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceKind {
    Crl,
    Ocsp,
}

/// The OCSP response or CRL that decided a certificate's status, kept with the document.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    /// The URL it was fetched from, or the file it was read from.
    pub source: String,
    /// The DER `OCSPResponse` or CRL, exactly as received (serialised as standard base64).
    #[serde(rename = "der_base64", serialize_with = "base64_der")]
    pub der: Vec<u8>,
    pub this_update: Option<String>,
    pub next_update: Option<String>,
    /// OCSP `producedAt`.
    pub produced_at: Option<String>,
}

fn base64_der<S: serde::Serializer>(der: &[u8], s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(der))
}

/// A revocation source the caller has for a certificate: bytes and where they came from.
#[derive(Debug, Clone)]
pub struct Source {
    pub source: String,
    pub der: Vec<u8>,
}

/// The decision for one certificate of the path.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CertificateStatus {
    pub subject: String,
    pub serial: String,
    pub fingerprint: String,
    pub status: Status,
    /// The revocation time and reason when revoked (RFC 3339; CRL reason name).
    pub revoked_at: Option<String>,
    pub reason: Option<String>,
    /// What decided; `None` when nothing did (status unknown).
    pub evidence: Option<Evidence>,
    /// Why the status is unknown (each source tried and what was wrong with it).
    pub note: Option<String>,
    /// An unknown status accepted under `prefer`.
    pub flagged: bool,
}

/// The outcome of the revocation check of a path that was accepted.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RevocationOutcome {
    pub policy: &'static str,
    /// Signer first, then intermediates. Empty under `off`.
    pub certificates: Vec<CertificateStatus>,
}

impl RevocationOutcome {
    /// Whether some certificate's unknown status was accepted (under `prefer`).
    pub fn flagged(&self) -> bool {
        self.certificates.iter().any(|c| c.flagged)
    }

    /// The outcome of the `off` policy.
    pub fn off() -> Self {
        RevocationOutcome {
            policy: RevocationPolicy::Off.as_str(),
            certificates: Vec::new(),
        }
    }
}

/// What one source says about one certificate; `Err` says why it cannot be relied on.
pub type SourceVerdict = Result<CertificateStatus, String>;

fn status_for(link: &PathLink, status: Status, evidence: Evidence) -> CertificateStatus {
    let d = link.describe();
    CertificateStatus {
        subject: d.subject,
        serial: d.serial_hex,
        fingerprint: d.sha256_fingerprint,
        status,
        revoked_at: None,
        reason: None,
        evidence: Some(evidence),
        note: None,
        flagged: false,
    }
}

fn gt_to_system(t: &x509_ocsp::OcspGeneralizedTime) -> SystemTime {
    SystemTime::UNIX_EPOCH + t.0.to_unix_duration()
}

fn rfc3339_system(t: SystemTime) -> String {
    let secs = cert::unix_seconds(t);
    ASN1Time::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .map(cert::rfc3339)
        .unwrap_or_else(|_| format!("{secs} s after 1970"))
}

/// What ties an OCSP response to the moment of the check (what stands between it and a replay).
#[derive(Debug, Clone, Copy)]
pub enum Freshness<'a> {
    /// Just fetched for a request that carried `nonce` (`None`: none was sent). A response that
    /// carries a nonce must carry this one; a response not bound to the request by it (no nonce
    /// sent, or none echoed) must have a `thisUpdate` at most `max_age` before the check.
    Fetched {
        nonce: Option<&'a [u8]>,
        max_age: Duration,
    },
    /// Accepted once already (the checker's cache of fetched responses) or handed over by the
    /// caller: only its own validity period counts.
    Kept,
}

/// Checks the OCSP response `response` (DER `OCSPResponse`) for `link` at `at`: signed by the
/// issuer, or by a responder certificate the issuer issued for id-kp-OCSPSigning and valid at
/// `at`; a `SingleResponse` whose CertID matches; `thisUpdate` not in the future and `nextUpdate`
/// not past (with [`SKEW`]); and, for a response just fetched (`freshness`), the nonce sent
/// echoed, or, without it, a `thisUpdate` recent enough ([`Freshness::Fetched`]).
/// `Ok` with the status (good, revoked or unknown) or `Err` saying why it cannot be relied on.
pub fn check_ocsp(
    link: &PathLink,
    response: &Source,
    freshness: Freshness<'_>,
    at: SystemTime,
) -> SourceVerdict {
    let resp =
        OcspResponse::from_der(&response.der).map_err(|e| format!("not an OCSP response: {e}"))?;
    if resp.response_status != OcspResponseStatus::Successful {
        return Err(format!("the responder answered {:?}", resp.response_status));
    }
    let bytes = resp
        .response_bytes
        .ok_or("a successful OCSP response without a body")?;
    if bytes.response_type != OID_OCSP_BASIC {
        return Err(format!(
            "unsupported OCSP response type {}",
            bytes.response_type
        ));
    }
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes())
        .map_err(|e| format!("not a basic OCSP response: {e}"))?;
    let tbs = basic
        .tbs_response_data
        .to_der()
        .map_err(|e| e.to_string())?;
    let sig_alg = basic.signature_algorithm.oid.to_string();
    let sig = basic.signature.raw_bytes();
    let issuer = cert::parse(&link.issuer).map_err(|e| e.to_string())?;
    let by_issuer = verify_with(&issuer, &sig_alg, &tbs, sig).is_ok();
    if !by_issuer {
        let delegated = basic.certs.iter().flatten().any(|c| {
            let Ok(der) = c.to_der() else { return false };
            let Ok(responder) = cert::parse(&der) else {
                return false;
            };
            delegated_responder_ok(&responder, &issuer, at)
                && verify_with(&responder, &sig_alg, &tbs, sig).is_ok()
        });
        if !delegated {
            return Err(
                "the OCSP response is signed neither by the certificate's issuer nor by a \
                 responder the issuer authorised (id-kp-OCSPSigning)"
                    .into(),
            );
        }
    }
    // Bound to our request when it echoes the nonce sent; a different nonce is another
    // request's answer.
    let mut bound = false;
    if let Freshness::Fetched {
        nonce: Some(sent), ..
    } = freshness
        && let Some(got) = basic.nonce()
    {
        if got.0.as_bytes() != sent {
            return Err("the OCSP response does not echo the nonce sent (a replay?)".into());
        }
        bound = true;
    }
    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|s| {
            cert_id(link, s.cert_id.hash_algorithm.oid).is_ok_and(|want| {
                want.issuer_name_hash == s.cert_id.issuer_name_hash
                    && want.issuer_key_hash == s.cert_id.issuer_key_hash
                    && strip(want.serial_number.as_bytes())
                        == strip(s.cert_id.serial_number.as_bytes())
            })
        })
        .ok_or("the OCSP response is not about this certificate (no matching CertID)")?;
    let this_update = gt_to_system(&single.this_update);
    if this_update > at + SKEW {
        return Err(format!(
            "the OCSP response's thisUpdate {} is in the future",
            rfc3339_system(this_update)
        ));
    }
    if let Freshness::Fetched { max_age, .. } = freshness
        && !bound
        && let Ok(age) = at.duration_since(this_update)
        && age > max_age
    {
        return Err(format!(
            "the OCSP response is not bound to this request (no nonce echoed) and its thisUpdate \
             {} is {} s old, more than the {} s allowed for such a response (a replay?)",
            rfc3339_system(this_update),
            age.as_secs(),
            max_age.as_secs()
        ));
    }
    let next_update = single.next_update.as_ref().map(gt_to_system);
    let expires = next_update.unwrap_or(this_update + OCSP_NO_NEXT_UPDATE_LIFETIME);
    if expires + SKEW < at {
        return Err(format!(
            "the OCSP response is stale: valid until {}",
            rfc3339_system(expires)
        ));
    }
    let evidence = Evidence {
        kind: EvidenceKind::Ocsp,
        source: response.source.clone(),
        der: response.der.clone(),
        this_update: Some(rfc3339_system(this_update)),
        next_update: next_update.map(rfc3339_system),
        produced_at: Some(rfc3339_system(gt_to_system(
            &basic.tbs_response_data.produced_at,
        ))),
    };
    Ok(match &single.cert_status {
        CertStatus::Good(_) => status_for(link, Status::Good, evidence),
        CertStatus::Revoked(info) => {
            let mut s = status_for(link, Status::Revoked, evidence);
            s.revoked_at = Some(rfc3339_system(gt_to_system(&info.revocation_time)));
            s.reason = info.revocation_reason.map(|r| format!("{r:?}"));
            s
        }
        CertStatus::Unknown(_) => status_for(link, Status::Unknown, evidence),
    })
}

/// When an OCSP response may be reused from a cache: its `nextUpdate` (or `thisUpdate` plus
/// [`OCSP_NO_NEXT_UPDATE_LIFETIME`]). `None` for bytes that are not a usable response.
pub fn ocsp_expiry(der: &[u8]) -> Option<SystemTime> {
    let resp = OcspResponse::from_der(der).ok()?;
    let basic = BasicOcspResponse::from_der(resp.response_bytes?.response.as_bytes()).ok()?;
    let single = basic.tbs_response_data.responses.first()?;
    Some(
        single
            .next_update
            .as_ref()
            .map(gt_to_system)
            .unwrap_or(gt_to_system(&single.this_update) + OCSP_NO_NEXT_UPDATE_LIFETIME),
    )
}

/// How long a fetched OCSP response may be kept and reused: until its `nextUpdate`
/// ([`ocsp_expiry`]), except that a response not bound to our request (`nonce` was sent and is
/// not echoed: a responder's pre-produced answer, RFC 5019) is relied on only while its
/// `thisUpdate` is at most `max_age` old — kept no longer than that either, or the cache would
/// stretch the freshness window [`check_ocsp`] enforces on a fetch.
pub fn ocsp_cache_until(der: &[u8], nonce: Option<&[u8]>, max_age: Duration) -> Option<SystemTime> {
    let until = ocsp_expiry(der)?;
    let resp = OcspResponse::from_der(der).ok()?;
    let basic = BasicOcspResponse::from_der(resp.response_bytes?.response.as_bytes()).ok()?;
    let bound = match nonce {
        Some(sent) => basic.nonce().is_some_and(|got| got.0.as_bytes() == sent),
        None => false,
    };
    if bound {
        return Some(until);
    }
    let single = basic.tbs_response_data.responses.first()?;
    Some(until.min(gt_to_system(&single.this_update) + max_age))
}

/// A CRL's `nextUpdate`, to cache it until then. `None` for bytes that are not a CRL or a CRL
/// without one.
pub fn crl_next_update(der: &[u8]) -> Option<SystemTime> {
    let (_, crl) = CertificateRevocationList::from_der(der).ok()?;
    let secs = u64::try_from(crl.next_update()?.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

fn strip(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|x| **x == 0).count();
    &b[n.min(b.len().saturating_sub(1))..]
}

/// A delegated OCSP responder: issued by `issuer` (name and signature), id-kp-OCSPSigning in
/// its EKU, valid at `at`.
fn delegated_responder_ok(
    responder: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    at: SystemTime,
) -> bool {
    let eku = matches!(responder.extended_key_usage(), Ok(Some(e)) if e.value.ocsp_signing);
    let valid = cert::check_validity(responder, "", at).is_ok();
    let named = responder.issuer().as_raw() == issuer.subject().as_raw();
    let signed = verify_with(
        issuer,
        &responder.signature_algorithm.algorithm.to_id_string(),
        responder.tbs_certificate.as_ref(),
        &responder.signature_value.data,
    )
    .is_ok();
    eku && valid && named && signed
}

/// Verifies `sig` over `message` with `key_holder`'s public key and the signature algorithm
/// `alg_oid` (dotted). SHA-256 or better only: revocation data signed with SHA-1 is refused.
fn verify_with(
    key_holder: &X509Certificate<'_>,
    alg_oid: &str,
    message: &[u8],
    sig: &[u8],
) -> Result<(), String> {
    let alg: &'static dyn VerificationAlgorithm = match alg_oid {
        "1.2.840.113549.1.1.11" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "1.2.840.113549.1.1.12" => &signature::RSA_PKCS1_2048_8192_SHA384,
        "1.2.840.113549.1.1.13" => &signature::RSA_PKCS1_2048_8192_SHA512,
        "1.2.840.10045.4.3.2" => &signature::ECDSA_P256_SHA256_ASN1,
        "1.2.840.10045.4.3.3" => &signature::ECDSA_P384_SHA384_ASN1,
        other => return Err(format!("unsupported signature algorithm {other}")),
    };
    UnparsedPublicKey::new(alg, &key_holder.public_key().subject_public_key.data)
        .verify(message, sig)
        .map_err(|_| "the signature does not verify".to_owned())
}

/// Checks the CRL `crl` for `link` at `at`: issued by the link's issuer (name, signature, and
/// `cRLSign` when the issuer has a key usage), then its scope ([`super::crl_scope`]), then the
/// serial lookup. A CRL of another issuer, or one whose scope does not include the certificate
/// or is not understood (delta, indirect, an unknown critical extension), is `Err` (not about
/// this certificate); a stale CRL (`nextUpdate` past), or one partitioned by reason
/// (`onlySomeReasons`), is `Err` too unless it lists the certificate — what a CA once revoked
/// stays revoked, but absence from a partial list says nothing.
pub fn check_crl(link: &PathLink, crl: &Source, at: SystemTime) -> SourceVerdict {
    let (_, parsed) =
        CertificateRevocationList::from_der(&crl.der).map_err(|e| format!("not a CRL: {e}"))?;
    let issuer = cert::parse(&link.issuer).map_err(|e| e.to_string())?;
    let c = cert::parse(&link.cert).map_err(|e| e.to_string())?;
    if parsed.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(format!(
            "the CRL is issued by {}, not by the certificate's issuer",
            cert::name_to_string(parsed.issuer())
        ));
    }
    if let Ok(Some(ku)) = issuer.key_usage()
        && !ku.value.crl_sign()
    {
        return Err("the issuer's key usage does not allow it to sign CRLs".into());
    }
    verify_with(
        &issuer,
        &parsed.signature_algorithm.algorithm.to_id_string(),
        parsed.tbs_cert_list.as_ref(),
        &parsed.signature_value.data,
    )
    .map_err(|e| format!("the CRL's signature cannot be relied on: {e}"))?;
    let coverage = super::crl_scope::coverage(&parsed, &c)
        .map_err(|e| format!("the CRL does not decide this certificate: {e}"))?;
    let this_update = parsed.last_update();
    let next_update = parsed.next_update();
    let evidence = Evidence {
        kind: EvidenceKind::Crl,
        source: crl.source.clone(),
        der: crl.der.clone(),
        this_update: Some(cert::rfc3339(this_update)),
        next_update: next_update.map(cert::rfc3339),
        produced_at: None,
    };
    let listed = parsed
        .iter_revoked_certificates()
        .find(|r| strip(r.raw_serial()) == strip(c.raw_serial()));
    // A listing is a revocation in any CRL of the issuer this module understands — also one
    // that does not cover the certificate completely (a serial is unique per issuer) — except
    // an entry of a delta CRL that takes a hold back (`removeFromCRL`).
    if let Some(r) = listed
        && r.reason_code().map(|(_, code)| code.0) != Some(8)
    {
        let mut s = status_for(link, Status::Revoked, evidence);
        s.revoked_at = Some(cert::rfc3339(r.revocation_date));
        s.reason = r.reason_code().map(|(_, code)| code.to_string());
        return Ok(s);
    }
    match coverage {
        super::crl_scope::Coverage::Complete => {}
        super::crl_scope::Coverage::SomeReasons(reasons) => {
            return Err(format!(
                "the CRL covers only the revocation reasons {reasons} (onlySomeReasons), so not \
                 being listed does not make the certificate good"
            ));
        }
        super::crl_scope::Coverage::ListedOnly(why) => {
            return Err(format!(
                "the CRL does not decide this certificate unless it lists it: {why}"
            ));
        }
    }
    let at_secs = i64::try_from(cert::unix_seconds(at)).unwrap_or(i64::MAX);
    let skew = i64::try_from(SKEW.as_secs()).unwrap_or(0);
    if this_update.timestamp() > at_secs + skew {
        return Err(format!(
            "the CRL's thisUpdate {} is in the future",
            cert::rfc3339(this_update)
        ));
    }
    match next_update {
        None => Err("the CRL has no nextUpdate".into()),
        Some(n) if n.timestamp() < at_secs => Err(format!(
            "the CRL is stale: its nextUpdate {} is past",
            cert::rfc3339(n)
        )),
        Some(_) => Ok(status_for(link, Status::Good, evidence)),
    }
}

/// An unknown status for `link`, with the reasons each source failed.
pub fn unknown_status(link: &PathLink, notes: &[String]) -> CertificateStatus {
    let d = link.describe();
    CertificateStatus {
        subject: d.subject,
        serial: d.serial_hex,
        fingerprint: d.sha256_fingerprint,
        status: Status::Unknown,
        revoked_at: None,
        reason: None,
        evidence: None,
        note: Some(if notes.is_empty() {
            "no OCSP responder or CRL distribution point is named, and no CRL was given".into()
        } else {
            notes.join("; ")
        }),
        flagged: false,
    }
}

/// Applies `policy` to the per-certificate statuses of a path (signer first): any revoked is
/// `CERT_REVOKED`; an unknown one is `REVOCATION_UNKNOWN` under `require` and accepted, flagged,
/// under `prefer`. An OCSP `unknown` answer counts as unknown.
pub fn apply_policy(
    policy: RevocationPolicy,
    mut statuses: Vec<CertificateStatus>,
) -> Result<RevocationOutcome, TrustError> {
    if policy == RevocationPolicy::Off {
        return Ok(RevocationOutcome::off());
    }
    if let Some(r) = statuses.iter().find(|s| s.status == Status::Revoked) {
        let by = match &r.evidence {
            Some(e) => format!(
                "{} {}",
                match e.kind {
                    EvidenceKind::Crl => "the CRL from",
                    EvidenceKind::Ocsp => "the OCSP responder",
                },
                e.source
            ),
            None => "its issuer".into(),
        };
        let when = r
            .revoked_at
            .as_deref()
            .map(|t| format!(" on {t}"))
            .unwrap_or_default();
        let why = r
            .reason
            .as_deref()
            .map(|t| format!(" ({t})"))
            .unwrap_or_default();
        let which = if std::ptr::eq(r, &statuses[0]) {
            String::new()
        } else {
            format!(" (a CA certificate in the path of {})", statuses[0].subject)
        };
        return Err(TrustError::new(
            Code::CertRevoked,
            &r.subject,
            format!("revoked{when}{why}: {by} says so{which}"),
        ));
    }
    for s in statuses.iter_mut() {
        if s.status == Status::Unknown {
            if policy == RevocationPolicy::Require {
                let note = s
                    .note
                    .clone()
                    .unwrap_or_else(|| "the OCSP responder does not know the certificate".into());
                return Err(TrustError::new(
                    Code::RevocationUnknown,
                    &s.subject,
                    format!(
                        "its revocation status is unknown and the revocation policy is require: \
                         {note}"
                    ),
                ));
            }
            s.flagged = true;
        }
    }
    Ok(RevocationOutcome {
        policy: policy.as_str(),
        certificates: statuses,
    })
}

/// The whole decision for a path from sources already at hand (configured CRL files, cached or
/// fetched responses): per link, the first OCSP response in `ocsp` that decides, else the first
/// CRL in `crls` that does, else unknown; then the policy. The I/O layer
/// (`crate::revocation`) drives the same per-source checks while fetching.
pub fn decide(
    path: &ValidatedPath,
    policy: RevocationPolicy,
    ocsp: &[Source],
    crls: &[Source],
    at: SystemTime,
) -> Result<RevocationOutcome, TrustError> {
    if policy == RevocationPolicy::Off {
        return Ok(RevocationOutcome::off());
    }
    let statuses = path
        .links()
        .iter()
        .map(|link| decide_link(link, ocsp, crls, at))
        .collect();
    apply_policy(policy, statuses)
}

/// The status of one link from the sources at hand (see [`decide`]).
pub fn decide_link(
    link: &PathLink,
    ocsp: &[Source],
    crls: &[Source],
    at: SystemTime,
) -> CertificateStatus {
    let mut notes = Vec::new();
    let mut ocsp_unknown = None;
    for o in ocsp {
        match check_ocsp(link, o, Freshness::Kept, at) {
            Ok(s) if s.status != Status::Unknown => return s,
            Ok(s) => ocsp_unknown = Some(s),
            Err(e) => notes.push(format!("OCSP {}: {e}", o.source)),
        }
    }
    for c in crls {
        match check_crl(link, c, at) {
            Ok(s) => return s,
            Err(e) => notes.push(format!("CRL {}: {e}", c.source)),
        }
    }
    ocsp_unknown.unwrap_or_else(|| unknown_status(link, &notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_are_taken_and_capped() {
        let mut out = Vec::new();
        for u in [
            "ldap://dir.example/cn=CA?certificateRevocationList",
            "file:///etc/passwd",
            "http://a.example/1.crl",
            "HTTPS://b.example/2.crl",
            "http://a.example/1.crl",
        ] {
            push_url(&mut out, u);
        }
        assert_eq!(out, ["http://a.example/1.crl", "HTTPS://b.example/2.crl"]);
        for i in 0..10 {
            push_url(&mut out, &format!("http://c.example/{i}"));
        }
        assert_eq!(out.len(), MAX_URLS_PER_CERT);
        let long = format!("http://d.example/{}", "x".repeat(MAX_URL_LEN));
        let mut one = Vec::new();
        push_url(&mut one, &long);
        assert!(one.is_empty());
    }

    #[test]
    fn a_link_is_parsed_once_for_all_its_clones() {
        let pem = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("certs/test-only/stttt-gialai.cert.pem"),
        )
        .unwrap();
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(&pem)
            .unwrap()
            .as_ref()
            .to_vec();
        let link = PathLink::new(der.clone(), Vec::new());
        let cached = link.clone();
        assert!(link.facts.get().is_none());
        assert_eq!(cached.describe(), crate::pki::describe(&der).unwrap());
        assert!(
            link.facts.get().is_some(),
            "a clone's parse is the original's too"
        );
        assert!(link.ocsp_urls().is_empty() && link.crl_urls().is_empty());

        let junk = PathLink::new(b"junk".to_vec(), Vec::new());
        let d = junk.describe();
        assert_eq!(d.subject, "(unparsable certificate)");
        assert_eq!(
            d.sha256_fingerprint,
            hex::encode(digest::digest(&digest::SHA256, b"junk"))
        );
    }

    #[test]
    fn policy_off_is_empty_and_revoked_wins_over_unknown() {
        assert!(
            apply_policy(RevocationPolicy::Off, Vec::new())
                .unwrap()
                .certificates
                .is_empty()
        );
        let mk = |status| CertificateStatus {
            subject: format!("CN={status:?}"),
            serial: "01".into(),
            fingerprint: "00".into(),
            status,
            revoked_at: None,
            reason: None,
            evidence: None,
            note: None,
            flagged: false,
        };
        let e = apply_policy(
            RevocationPolicy::Prefer,
            vec![mk(Status::Unknown), mk(Status::Revoked)],
        )
        .unwrap_err();
        assert_eq!(e.code, Code::CertRevoked);
        assert!(e.problem.contains("in the path of CN=Unknown"), "{e}");
        let out = apply_policy(RevocationPolicy::Prefer, vec![mk(Status::Unknown)]).unwrap();
        assert!(out.flagged());
        let e = apply_policy(RevocationPolicy::Require, vec![mk(Status::Unknown)]).unwrap_err();
        assert_eq!(e.code, Code::RevocationUnknown);
    }
}
