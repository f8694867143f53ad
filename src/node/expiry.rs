//! Certificate expiry awareness: which configured certificates (trust anchors, the agencies'
//! signing certificates, the node's own TLS certificate) run out soon, so operators renew them before the node stops being able
//! to sign or to trust its peers. Reported at start (log), on `/metrics` and by the admin API.

use serde::Serialize;

use crate::node::keys::Keyring;
use crate::pki::TrustStore;

/// How early to warn.
pub const WARN_DAYS: i64 = 60;

/// One configured certificate and when it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertExpiry {
    /// `anchor`, `agency` or `node` (the node's TLS certificate).
    pub role: &'static str,
    pub subject: String,
    /// The agency whose signing certificate this is (role `agency`).
    pub agency: Option<String>,
    /// `notAfter`, Unix seconds.
    pub not_after: i64,
    /// Whole days left at the time of the report (negative once expired).
    pub days_left: i64,
    /// Expired, or expiring within [`WARN_DAYS`].
    pub warning: bool,
}

/// `notAfter` of a DER certificate, Unix seconds, with its subject.
pub fn not_after(der: &[u8]) -> Option<(String, i64)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some((
        crate::pki::name_to_string(cert.subject()),
        cert.validity().not_after.timestamp(),
    ))
}

/// Every anchor, every agency signing certificate and the node's TLS certificate `node` (DER),
/// soonest first, as of `now` (Unix seconds).
pub fn report(
    trust: &TrustStore,
    keys: &Keyring,
    node: Option<&[u8]>,
    now: i64,
) -> Vec<CertExpiry> {
    let entry = |role, subject, agency, not_after: i64| {
        let days_left = (not_after - now).div_euclid(86_400);
        CertExpiry {
            role,
            subject,
            agency,
            not_after,
            days_left,
            warning: days_left < WARN_DAYS,
        }
    };
    let mut out: Vec<CertExpiry> = trust
        .anchor_certificates()
        .filter_map(not_after)
        .map(|(subject, t)| entry("anchor", subject, None, t))
        .collect();
    for (agency, signer) in keys.iter() {
        if let Some((subject, t)) = not_after(signer.certificate()) {
            out.push(entry("agency", subject, Some(agency.to_string()), t));
        }
    }
    if let Some((subject, t)) = node.and_then(not_after) {
        out.push(entry("node", subject, None, t));
    }
    out.sort_by_key(|c| c.not_after);
    out
}
