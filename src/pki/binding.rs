//! Sender binding: may this (trusted) certificate sign for the agency a package says it comes
//! from? The rules of the agency registry and the decision, pure — the caller reads the registry
//! from the store and passes what it found.
//!
//! A signature proves who holds a key, path validation proves a trusted CA vouches for the
//! certificate; neither says the holder is the agency in `From/OrganId`. Without this check any
//! agency with a valid certificate could send in another agency's name (issue 4,
//! `SENDER_NOT_AUTHORISED`).
//!
//! Rules ([`Rule`]):
//! - `fingerprint`: exactly this certificate (SHA-256 of its DER) — for certificates that carry
//!   no agency code, or to pin an agency to the certificates it announced;
//! - `subject`: any certificate issued by one CA (named by the SHA-256 of the issuer's certificate,
//!   checked cryptographically against the signer's signature, or by the issuer's exact DN) whose
//!   subject attribute (`serialNumber`, `O`, `OU`, `CN`) equals a value — for organisation
//!   certificates a CA issues and renews without the registry being told.
//!
//! The decision ([`decide`]), in order; the first that applies wins:
//! 1. the certificate names an agency code (subject `serialNumber`, [`SignerCert::organ_id`])
//!    other than `From`: refused. The registry can narrow what a CA says, never contradict it;
//! 2. the certificate is registered by fingerprint for other agencies and not for `From`: refused;
//! 3. `From` is an agency of this node and the certificate is its configured signing certificate:
//!    bound (a node always accepts what it signs itself, e.g. local delivery);
//! 4. the registry has rules for `From`: bound if one matches, refused otherwise — so a registry
//!    entry pins an agency to exactly the certificates it lists (plus, for an agency of this
//!    node, its configured certificate, step 3);
//! 5. no rules for `From`: bound if the certificate names `From` in its `serialNumber`;
//! 6. otherwise (a certificate that names no code and that nothing registers): refused. There is
//!    no lenient switch: such certificates are registered by fingerprint or subject rule.

use serde::{Deserialize, Serialize};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{
    OID_X509_COMMON_NAME, OID_X509_ORGANIZATION_NAME, OID_X509_ORGANIZATIONAL_UNIT,
    OID_X509_SERIALNUMBER,
};

use super::SignerCert;
use super::cert;
use crate::error::{Code, FormatError, TrustError};

/// Rules per agency, at most (a registry entry is a handful of certificates, not a CRL).
pub const MAX_RULES: usize = 64;
/// Characters of a subject value or an issuer DN, at most.
pub const MAX_TEXT: usize = 1024;

/// The subject attribute a [`Rule::Subject`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Attribute {
    /// 2.5.4.5, where the test profile and the Government CA put the agency code.
    #[serde(rename = "serialNumber")]
    SerialNumber,
    /// 2.5.4.10, organisation.
    O,
    /// 2.5.4.11, organisational unit.
    OU,
    /// 2.5.4.3, common name.
    CN,
}

impl Attribute {
    /// The stored and wire name: `serialNumber`, `O`, `OU`, `CN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Attribute::SerialNumber => "serialNumber",
            Attribute::O => "O",
            Attribute::OU => "OU",
            Attribute::CN => "CN",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Attribute> {
        match s {
            "serialNumber" => Some(Attribute::SerialNumber),
            "O" => Some(Attribute::O),
            "OU" => Some(Attribute::OU),
            "CN" => Some(Attribute::CN),
            _ => None,
        }
    }
}

/// One way a certificate may be bound to an agency code (see the module documentation).
/// JSON/TOML: `{"kind": "fingerprint", "sha256": "…"}` or `{"kind": "subject", "issuer_sha256":
/// "…" | "issuer": "CN=…, O=…, C=VN", "attribute": "serialNumber", "value": "000.00.05.H21"}`,
/// each with an optional `note`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    Fingerprint {
        /// SHA-256 of the certificate's DER, lowercase hex (input may be upper case or have `:`).
        sha256: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    Subject {
        /// SHA-256 of the issuing CA's certificate (one of `issuer_sha256` and `issuer`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        issuer_sha256: Option<String>,
        /// The issuer's DN exactly as `lienthong inspect` prints it (RFC 4514, most significant
        /// RDN last).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        issuer: Option<String>,
        attribute: Attribute,
        value: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
}

/// A fingerprint as lowercase hex without separators, if it is 32 bytes of hex.
pub fn normalise_fingerprint(s: &str) -> Option<String> {
    let hex: String = s
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

impl Rule {
    /// Checks and normalises a rule; `path` says where it came from for the error.
    pub fn normalised(self, path: &str) -> Result<Rule, FormatError> {
        let note = |n: Option<String>| n.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        let text = |field: &str, v: &str| -> Result<String, FormatError> {
            let v = v.trim();
            if v.is_empty() {
                return Err(FormatError::missing(format!("{path}.{field}")));
            }
            if v.chars().count() > MAX_TEXT || v.chars().any(char::is_control) {
                return Err(FormatError::invalid(
                    format!("{path}.{field}"),
                    format!("longer than {MAX_TEXT} characters or has control characters"),
                ));
            }
            Ok(v.to_owned())
        };
        let fp = |field: &str, v: &str| {
            normalise_fingerprint(v).ok_or_else(|| {
                FormatError::invalid(
                    format!("{path}.{field}"),
                    format!("{v:?} is not a SHA-256 fingerprint (64 hex digits)"),
                )
            })
        };
        match self {
            Rule::Fingerprint { sha256, note: n } => Ok(Rule::Fingerprint {
                sha256: fp("sha256", &sha256)?,
                note: note(n),
            }),
            Rule::Subject {
                issuer_sha256,
                issuer,
                attribute,
                value,
                note: n,
            } => {
                let (issuer_sha256, issuer) = match (issuer_sha256, issuer) {
                    (Some(f), None) => (Some(fp("issuer_sha256", &f)?), None),
                    (None, Some(dn)) => (None, Some(text("issuer", &dn)?)),
                    _ => {
                        return Err(FormatError::invalid(
                            path,
                            "a subject rule names its issuer by exactly one of issuer_sha256 \
                             and issuer",
                        ));
                    }
                };
                Ok(Rule::Subject {
                    issuer_sha256,
                    issuer,
                    attribute,
                    value: text("value", &value)?,
                    note: note(n),
                })
            }
        }
    }

    /// The fingerprint of a `fingerprint` rule.
    pub fn fingerprint(&self) -> Option<&str> {
        match self {
            Rule::Fingerprint { sha256, .. } => Some(sha256),
            Rule::Subject { .. } => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Rule::Fingerprint { sha256, .. } => format!("certificate {sha256}"),
            Rule::Subject {
                issuer_sha256,
                issuer,
                attribute,
                value,
                ..
            } => {
                let by = issuer_sha256
                    .as_deref()
                    .map_or_else(|| issuer.clone().unwrap_or_default(), |f| format!("CA {f}"));
                format!("{} = {value:?} issued by {by}", attribute.as_str())
            }
        }
    }
}

/// The signer as the decision sees it: what path validation established, its DER, and the
/// certificates that may be its issuer (those sent with the signature and the trust anchors).
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    pub cert: &'a SignerCert,
    pub der: &'a [u8],
    pub issuer_candidates: &'a [&'a [u8]],
}

/// What the registry (and the configuration) say about one `From` code and one signer.
#[derive(Debug, Clone, Default)]
pub struct Registry<'a> {
    /// The registry's rules for the `From` code (empty: no entry).
    pub rules: &'a [Rule],
    /// Other agency codes the signer's fingerprint is registered for.
    pub fingerprint_registered_for: &'a [String],
    /// The SHA-256 of the configured signing certificate when `From` is an agency of this node.
    pub own_certificate: Option<&'a str>,
}

/// Why a signer was accepted for its `From` code (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// The node's own configured certificate for this agency.
    OwnAgency,
    /// A registry rule, by its position in the agency's list.
    Rule(usize),
    /// No registry entry; the certificate's `serialNumber` names the agency.
    CertificateCode,
}

/// The decision of the module documentation for a package from `from` signed by `signer`.
pub fn decide(
    from: &str,
    signer: &Signer<'_>,
    registry: &Registry<'_>,
) -> Result<Binding, TrustError> {
    let c = signer.cert;
    let fp = c.sha256_fingerprint.as_str();
    let refuse = |problem: String| {
        Err(TrustError::new(
            Code::SenderNotAuthorised,
            c.subject.clone(),
            format!("certificate {fp}: {problem}"),
        ))
    };
    if let Some(code) = &c.organ_id
        && code != from
    {
        return refuse(format!(
            "the certificate is issued to {code}, but the package says it comes from {from}"
        ));
    }
    let registered_here = registry.rules.iter().any(|r| r.fingerprint() == Some(fp));
    if !registered_here && let Some(other) = registry.fingerprint_registered_for.first() {
        return refuse(format!(
            "the agency registry binds this certificate to {other}, but the package says it \
             comes from {from}"
        ));
    }
    if registry.own_certificate == Some(fp) {
        return Ok(Binding::OwnAgency);
    }
    if !registry.rules.is_empty() {
        let parsed = cert::parse(signer.der)?;
        if let Some(i) = registry
            .rules
            .iter()
            .position(|r| matches(r, signer, &parsed))
        {
            return Ok(Binding::Rule(i));
        }
        let listed: Vec<String> = registry.rules.iter().map(Rule::describe).collect();
        let own = registry
            .own_certificate
            .map(|f| format!("this node's certificate {f}"));
        let allowed = listed.into_iter().chain(own).collect::<Vec<_>>().join("; ");
        return refuse(format!(
            "the certificate (issued to {}) is not one the agency registry allows to sign for \
             {from}: {allowed}",
            c.organ_id.as_deref().unwrap_or("no agency code")
        ));
    }
    if c.organ_id.as_deref() == Some(from) {
        return Ok(Binding::CertificateCode);
    }
    refuse(format!(
        "the certificate names no agency code and the agency registry has no entry for {from}: \
         register the certificate for {from} to accept it"
    ))
}

fn matches(rule: &Rule, signer: &Signer<'_>, parsed: &X509Certificate<'_>) -> bool {
    match rule {
        Rule::Fingerprint { sha256, .. } => *sha256 == signer.cert.sha256_fingerprint,
        Rule::Subject {
            issuer_sha256,
            issuer,
            attribute,
            value,
            ..
        } => {
            let issuer_ok = match (issuer_sha256, issuer) {
                (Some(f), _) => issued_by(parsed, signer, f),
                (None, Some(dn)) => *dn == signer.cert.issuer,
                (None, None) => false,
            };
            issuer_ok && subject_has(parsed, *attribute, value)
        }
    }
}

/// Whether the subject carries `attribute` with exactly `value`.
pub fn subject_has(parsed: &X509Certificate<'_>, attribute: Attribute, value: &str) -> bool {
    let oid = match attribute {
        Attribute::SerialNumber => &OID_X509_SERIALNUMBER,
        Attribute::O => &OID_X509_ORGANIZATION_NAME,
        Attribute::OU => &OID_X509_ORGANIZATIONAL_UNIT,
        Attribute::CN => &OID_X509_COMMON_NAME,
    };
    parsed
        .subject()
        .iter_by_oid(oid)
        .filter_map(cert::attribute_text)
        .any(|v| v == value)
}

/// Whether the candidate issuer with fingerprint `issuer_fp` issued the signer: its subject is the
/// signer's issuer name and its key verifies the signer certificate's signature.
fn issued_by(signer_cert: &X509Certificate<'_>, signer: &Signer<'_>, issuer_fp: &str) -> bool {
    signer.issuer_candidates.iter().any(|der| {
        let fp = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der));
        if fp != issuer_fp {
            return false;
        }
        let Ok(issuer) = cert::parse(der) else {
            return false;
        };
        issuer.subject().as_raw() == signer_cert.issuer().as_raw()
            && signature_verifies(signer_cert, &issuer)
    })
}

fn signature_verifies(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    use aws_lc_rs::signature as sig;
    use x509_parser::oid_registry as oids;
    let alg = &child.signature_algorithm.algorithm;
    let scheme: &dyn sig::VerificationAlgorithm = if *alg == oids::OID_PKCS1_SHA256WITHRSA {
        &sig::RSA_PKCS1_2048_8192_SHA256
    } else if *alg == oids::OID_PKCS1_SHA384WITHRSA {
        &sig::RSA_PKCS1_2048_8192_SHA384
    } else if *alg == oids::OID_PKCS1_SHA512WITHRSA {
        &sig::RSA_PKCS1_2048_8192_SHA512
    } else if *alg == oids::OID_SIG_ECDSA_WITH_SHA256 {
        &sig::ECDSA_P256_SHA256_ASN1
    } else if *alg == oids::OID_SIG_ECDSA_WITH_SHA384 {
        &sig::ECDSA_P384_SHA384_ASN1
    } else {
        return false;
    };
    let key = &issuer.public_key().subject_public_key.data;
    sig::UnparsedPublicKey::new(scheme, key.as_ref())
        .verify(child.tbs_certificate.as_ref(), &child.signature_value.data)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::describe;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    fn der(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("certs/test-only")
            .join(name);
        CertificateDer::from_pem_file(path).unwrap().to_vec()
    }

    const STTTT: &str = "000.00.05.H21";
    const UBND: &str = "000.00.00.H21";

    /// Decides for the `stttt-gialai` certificate, the issuing CA a candidate issuer.
    fn run(from: &str, registry: &Registry<'_>) -> Result<Binding, TrustError> {
        let signer_der = der("stttt-gialai.cert.pem");
        let cert = describe(&signer_der).unwrap();
        let issuing = der("issuing-ca.cert.pem");
        let root = der("root-ca.cert.pem");
        let candidates: Vec<&[u8]> = vec![&root, &issuing];
        decide(
            from,
            &Signer {
                cert: &cert,
                der: &signer_der,
                issuer_candidates: &candidates,
            },
            registry,
        )
    }

    fn fp_of(name: &str) -> String {
        describe(&der(name)).unwrap().sha256_fingerprint
    }

    fn subject(issuer_sha256: Option<String>, issuer: Option<&str>, value: &str) -> Rule {
        Rule::Subject {
            issuer_sha256,
            issuer: issuer.map(str::to_owned),
            attribute: Attribute::SerialNumber,
            value: value.into(),
            note: None,
        }
    }

    #[test]
    fn the_decision_in_its_order() {
        let own = fp_of("stttt-gialai.cert.pem");
        let other = fp_of("ubnd-gialai.cert.pem");
        let none = Registry::default();
        // No registry: the certificate's own code.
        assert_eq!(run(STTTT, &none), Ok(Binding::CertificateCode));
        // Another code in serialNumber: refused whatever the registry says.
        let rules = [Rule::Fingerprint {
            sha256: own.clone(),
            note: None,
        }];
        let e = run(
            UBND,
            &Registry {
                rules: &rules,
                ..Registry::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.code, Code::SenderNotAuthorised);
        assert!(e.problem.contains(STTTT) && e.problem.contains(UBND), "{e}");
        // Registered for another code only.
        let elsewhere = [UBND.to_owned()];
        let e = run(
            STTTT,
            &Registry {
                fingerprint_registered_for: &elsewhere,
                ..Registry::default()
            },
        )
        .unwrap_err();
        assert!(e.problem.contains(&own) && e.problem.contains(UBND), "{e}");
        // This node's own certificate.
        assert_eq!(
            run(
                STTTT,
                &Registry {
                    own_certificate: Some(&own),
                    ..Registry::default()
                }
            ),
            Ok(Binding::OwnAgency)
        );
        // An entry that lists another certificate pins the agency.
        let pinned = [Rule::Fingerprint {
            sha256: other.clone(),
            note: None,
        }];
        let e = run(
            STTTT,
            &Registry {
                rules: &pinned,
                ..Registry::default()
            },
        )
        .unwrap_err();
        assert!(e.problem.contains(&other), "{e}");
        // Subject rules: issuer by certificate (the issuing CA, checked with its key, not the
        // root), by DN; the value must match.
        let issuing = fp_of("issuing-ca.cert.pem");
        let root = fp_of("root-ca.cert.pem");
        let dn = "CN=Lienthong TEST Issuing CA, O=Lienthong TEST PKI, C=VN";
        for (rule, ok) in [
            (subject(Some(issuing.clone()), None, STTTT), true),
            (subject(Some(root), None, STTTT), false),
            (subject(None, Some(dn), STTTT), true),
            (subject(None, Some("CN=Other CA, C=VN"), STTTT), false),
            (subject(Some(issuing), None, UBND), false),
        ] {
            let rules = [pinned[0].clone(), rule.clone()];
            let got = run(
                STTTT,
                &Registry {
                    rules: &rules,
                    ..Registry::default()
                },
            );
            assert_eq!(got.is_ok(), ok, "{rule:?}: {got:?}");
            if ok {
                assert_eq!(got, Ok(Binding::Rule(1)));
            }
        }
    }

    #[test]
    fn rules_are_checked_and_normalised() {
        let upper = "AE:96".to_owned() + &"0".repeat(60);
        let r = Rule::Fingerprint {
            sha256: upper,
            note: Some("  ".into()),
        }
        .normalised("r")
        .unwrap();
        assert_eq!(
            r,
            Rule::Fingerprint {
                sha256: "ae96".to_owned() + &"0".repeat(60),
                note: None
            }
        );
        let e = subject(None, None, "x").normalised("r").unwrap_err();
        assert_eq!(e.path, "r");
        let e = subject(None, Some("CN=x"), " ")
            .normalised("r")
            .unwrap_err();
        assert_eq!(e.path, "r.value");
        let json: Rule = serde_json::from_str(
            r#"{"kind":"subject","issuer":"CN=x","attribute":"serialNumber","value":"v"}"#,
        )
        .unwrap();
        assert_eq!(json, subject(None, Some("CN=x"), "v"));
        assert!(serde_json::from_str::<Rule>(r#"{"kind":"subject","attribute":"C"}"#).is_err());
    }
}
