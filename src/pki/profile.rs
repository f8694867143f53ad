//! The signing-certificate profile (EDXML.md §7): what a certificate must say about itself to sign
//! packages, whoever issued it. A signing certificate is not a CA; its key usage includes
//! digitalSignature or nonRepudiation; its extended key usage, if it has one, includes document
//! signing, Adobe Authentic Documents or emailProtection; its key is RSA, 2048 bits or more.

use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION;
use x509_parser::public_key::PublicKey;

use super::cert;
use crate::error::{Code, TrustError};

/// Microsoft "Document Signing".
pub const EKU_DOCUMENT_SIGNING: &str = "1.3.6.1.4.1.311.10.3.12";
/// Adobe "Authentic Documents Trust".
pub const EKU_ADOBE_AUTHENTIC_DOCUMENTS: &str = "1.2.840.113583.1.1.5";
/// emailProtection (id-kp 4).
pub const EKU_EMAIL_PROTECTION: &str = "1.3.6.1.5.5.7.3.4";
/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// Checks `cert` (whose subject is `subject`) against the signing profile, in the order: CA, key
/// usage, extended key usage, key.
///
/// A key usage extension is required (the profile says what it must include; a certificate
/// without one is refused rather than read as "any usage"). `anyExtendedKeyUsage` alone does not
/// satisfy the extended key usage rule.
pub(crate) fn check_signing_cert(
    cert: &X509Certificate<'_>,
    subject: &str,
) -> Result<(), TrustError> {
    let malformed =
        |what: &str, e| TrustError::new(Code::CertMalformed, subject, format!("{what}: {e}"));

    let bc = cert
        .basic_constraints()
        .map_err(|e| malformed("basicConstraints", e))?;
    if bc.is_some_and(|bc| bc.value.ca) {
        return Err(TrustError::new(
            Code::CertIsCa,
            subject,
            "is a CA certificate (basicConstraints cA=TRUE); a CA certificate may not sign packages",
        ));
    }

    let ku = cert.key_usage().map_err(|e| malformed("keyUsage", e))?;
    match ku {
        None => {
            return Err(TrustError::new(
                Code::CertKeyUsage,
                subject,
                "has no key usage extension; signing needs digitalSignature or nonRepudiation",
            ));
        }
        Some(ku) if !(ku.value.digital_signature() || ku.value.non_repudiation()) => {
            return Err(TrustError::new(
                Code::CertKeyUsage,
                subject,
                format!(
                    "key usage ({}) allows neither digitalSignature nor nonRepudiation",
                    ku.value
                ),
            ));
        }
        Some(_) => {}
    }

    let eku = cert
        .extended_key_usage()
        .map_err(|e| malformed("extendedKeyUsage", e))?;
    if let Some(eku) = eku {
        let eku = eku.value;
        let allowed = eku.email_protection
            || eku.other.iter().any(|oid| {
                let id = oid.to_id_string();
                id == EKU_DOCUMENT_SIGNING || id == EKU_ADOBE_AUTHENTIC_DOCUMENTS
            });
        if !allowed {
            let mut present: Vec<String> = [
                (eku.any, "anyExtendedKeyUsage"),
                (eku.server_auth, "serverAuth"),
                (eku.client_auth, "clientAuth"),
                (eku.code_signing, "codeSigning"),
                (eku.time_stamping, "timeStamping"),
                (eku.ocsp_signing, "OCSPSigning"),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| (*name).to_owned())
            .collect();
            present.extend(eku.other.iter().map(|oid| oid.to_id_string()));
            return Err(TrustError::new(
                Code::CertKeyUsage,
                subject,
                format!(
                    "extended key usage ({}) includes none of document signing \
                     ({EKU_DOCUMENT_SIGNING}), Adobe Authentic Documents \
                     ({EKU_ADOBE_AUTHENTIC_DOCUMENTS}) or emailProtection",
                    present.join(", ")
                ),
            ));
        }
    }

    check_key(cert, subject)
}

/// The signer's key: RSA, at least [`MIN_RSA_BITS`].
fn check_key(cert: &X509Certificate<'_>, subject: &str) -> Result<(), TrustError> {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) if rsa.key_size() >= MIN_RSA_BITS => Ok(()),
        Ok(PublicKey::RSA(rsa)) => Err(TrustError::new(
            Code::AlgorithmNotAllowed,
            subject,
            format!(
                "RSA key of {} bits; at least {MIN_RSA_BITS} are required",
                rsa.key_size()
            ),
        )),
        Ok(_) => Err(not_rsa(cert, subject)),
        Err(e) => Err(TrustError::new(
            Code::CertMalformed,
            subject,
            format!("public key: {e}"),
        )),
    }
}

fn not_rsa(cert: &X509Certificate<'_>, subject: &str) -> TrustError {
    TrustError::new(
        Code::AlgorithmNotAllowed,
        subject,
        format!(
            "the key is {}, not RSA; packages are signed with RSA keys",
            cert::algorithm_name(&cert.public_key().algorithm.algorithm)
        ),
    )
}

/// The certificate's RSA public key as the DER `RSAPublicKey` (PKCS#1) that
/// `aws_lc_rs::signature::UnparsedPublicKey` with `RSA_PKCS1_*` expects.
///
/// Errors: [`Code::CertMalformed`] if the certificate or its key does not parse,
/// [`Code::AlgorithmNotAllowed`] if the key is not RSA. The key size is left to the verifier's
/// algorithm (`RSA_PKCS1_2048_8192_*`), and to [`super::verify_signer`].
pub fn rsa_public_key(der: &[u8]) -> Result<Vec<u8>, TrustError> {
    rsa_public_key_of(&cert::parse(der)?)
}

/// [`rsa_public_key`] of a certificate the caller has already parsed (the verifier parses
/// each offered certificate once, to pick the signer, and takes the key from that parse).
pub fn rsa_public_key_of(cert: &X509Certificate<'_>) -> Result<Vec<u8>, TrustError> {
    let spki = cert.public_key();
    if spki.algorithm.algorithm != OID_PKCS1_RSAENCRYPTION {
        return Err(not_rsa(cert, &cert::name_to_string(cert.subject())));
    }
    // The subjectPublicKey BIT STRING of an rsaEncryption key is the RSAPublicKey; make sure it
    // parses as one before handing it on.
    match spki.parsed() {
        Ok(PublicKey::RSA(_)) => Ok(spki.subject_public_key.data.to_vec()),
        _ => Err(TrustError::new(
            Code::CertMalformed,
            cert::name_to_string(cert.subject()),
            "the RSA public key does not parse",
        )),
    }
}
