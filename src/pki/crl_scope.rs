//! Whether a CRL speaks for a certificate, and how completely (RFC 5280 §5.2, §5.3, §6.3.3).
//!
//! A CRL that is not listing a certificate means "good" only when the CRL is *complete* for it:
//! a full (not delta) CRL of the certificate's issuer whose scope includes that certificate and
//! every revocation reason. Extensions narrow this: a delta CRL lists only changes since a base
//! CRL; an issuing distribution point may restrict the CRL to end-entity or CA certificates, to
//! the certificates naming one distribution point, to some reasons, or make it an indirect CRL
//! whose entries belong to other issuers. Reading any of those as complete gives a false "good".
//!
//! So [`coverage`] says, for one certificate, whether a CRL decides it completely, decides only
//! what it lists (a delta CRL, a reason partition, a scope that leaves the certificate out — a
//! serial is unique per issuer, so a listing is still a revocation), or cannot be used (with
//! why). What this module does not understand — an indirect CRL, a critical extension (of the
//! CRL or of an entry) it does not know, a distribution point named relative to the issuer — is
//! refused, never read as complete: the caller then has no status from this CRL
//! (`REVOCATION_UNKNOWN` under `require`). Pure.

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::revocation_list::CertificateRevocationList;

/// What a CRL says about a certificate in its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// Every reason, and the certificate is in scope: listed means revoked, absent means good.
    Complete,
    /// Only the reasons named (an `onlySomeReasons` partition): listed means revoked, absent
    /// decides nothing.
    SomeReasons(String),
    /// A CRL of the issuer that does not cover this certificate completely (a delta CRL, or a
    /// scope that leaves the certificate out): a serial is unique per issuer, so being listed
    /// still means revoked (unless the entry says `removeFromCRL`); absent decides nothing. The
    /// text says why it is not complete.
    ListedOnly(String),
}

// CRL extensions (RFC 5280 §5.2).
const AUTHORITY_KEY_ID: &str = "2.5.29.35";
const ISSUER_ALT_NAME: &str = "2.5.29.18";
const CRL_NUMBER: &str = "2.5.29.20";
const DELTA_CRL_INDICATOR: &str = "2.5.29.27";
const ISSUING_DISTRIBUTION_POINT: &str = "2.5.29.28";
const FRESHEST_CRL: &str = "2.5.29.46";
const AUTHORITY_INFO_ACCESS: &str = "1.3.6.1.5.5.7.1.1";
// CRL entry extensions (RFC 5280 §5.3).
const REASON_CODE: &str = "2.5.29.21";
const INVALIDITY_DATE: &str = "2.5.29.24";
const CERTIFICATE_ISSUER: &str = "2.5.29.29";

/// How `crl` (already known to be signed by `cert`'s issuer) covers `cert`; `Err` says why it
/// cannot be used for it.
pub fn coverage(
    crl: &CertificateRevocationList,
    cert: &X509Certificate,
) -> Result<Coverage, String> {
    let mut idp = None;
    let mut delta = false;
    for ext in crl.extensions() {
        let oid = ext.oid.to_id_string();
        match oid.as_str() {
            DELTA_CRL_INDICATOR => {
                delta = true;
            }
            ISSUING_DISTRIBUTION_POINT => match ext.parsed_extension() {
                ParsedExtension::IssuingDistributionPoint(p) => idp = Some(p),
                _ => return Err("its issuingDistributionPoint extension cannot be read".into()),
            },
            AUTHORITY_KEY_ID
            | ISSUER_ALT_NAME
            | CRL_NUMBER
            | FRESHEST_CRL
            | AUTHORITY_INFO_ACCESS => {}
            _ if ext.critical => {
                return Err(format!(
                    "it has a critical extension {oid} that is not understood"
                ));
            }
            _ => {}
        }
    }
    for entry in crl.iter_revoked_certificates() {
        for ext in entry.extensions() {
            let oid = ext.oid.to_id_string();
            match oid.as_str() {
                REASON_CODE | INVALIDITY_DATE => {}
                CERTIFICATE_ISSUER => {
                    return Err(
                        "an entry names another certificate issuer (certificateIssuer): \
                                indirect CRLs are not supported"
                            .into(),
                    );
                }
                _ if ext.critical => {
                    return Err(format!(
                        "an entry has a critical extension {oid} that is not understood"
                    ));
                }
                _ => {}
            }
        }
    }
    let listed_only = |why: String| -> Result<Coverage, String> { Ok(Coverage::ListedOnly(why)) };
    let delta_why = "it is a delta CRL (deltaCRLIndicator): it lists only the changes since a \
                     base CRL, so it cannot say a certificate is good";
    let Some(idp) = idp else {
        return if delta {
            listed_only(delta_why.into())
        } else {
            Ok(Coverage::Complete)
        };
    };
    if idp.indirect_crl {
        return Err(
            "it is an indirect CRL (its entries may be certificates of other issuers), \
                    which is not supported"
                .into(),
        );
    }
    if idp.only_contains_attribute_certs {
        return Err("it covers only attribute certificates".into());
    }
    let is_ca = cert
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|b| b.value.ca);
    if idp.only_contains_user_certs && is_ca {
        return listed_only(
            "it covers only end-entity certificates, and this is a CA certificate".into(),
        );
    }
    if idp.only_contains_ca_certs && !is_ca {
        return listed_only(
            "it covers only CA certificates, and this is an end-entity certificate".into(),
        );
    }
    match &idp.distribution_point {
        None => {}
        Some(DistributionPointName::FullName(names)) => {
            let named = cert_distribution_points(cert);
            if !names.iter().any(|n| named.contains(n)) {
                return listed_only(format!(
                    "it covers only the certificates of distribution point {}, which this \
                     certificate does not name",
                    names_text(names)
                ));
            }
        }
        Some(DistributionPointName::NameRelativeToCRLIssuer(_)) => {
            return Err(
                "its distribution point is named relative to the CRL issuer, which is not \
                 supported"
                    .into(),
            );
        }
    }
    if delta {
        return listed_only(delta_why.into());
    }
    Ok(match &idp.only_some_reasons {
        Some(reasons) => Coverage::SomeReasons(reasons.to_string()),
        None => Coverage::Complete,
    })
}

/// The full names of `cert`'s CRL distribution points.
fn cert_distribution_points<'a>(cert: &'a X509Certificate) -> Vec<GeneralName<'a>> {
    let mut out = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::CRLDistributionPoints(cdp) = ext.parsed_extension() {
            for p in &cdp.points {
                if let Some(DistributionPointName::FullName(names)) = &p.distribution_point {
                    out.extend(names.iter().cloned());
                }
            }
        }
    }
    out
}

fn names_text(names: &[GeneralName]) -> String {
    names
        .iter()
        .map(|n| match n {
            GeneralName::URI(u) => (*u).to_owned(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
