//! The trust decision against the committed test PKI (`certs/test-only/`, made by
//! `make-test-pki.sh`): every good organisation certificate is accepted with its chain, and every
//! bad one is refused with its own code.

mod common;

use common::timed;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use lienthong::Code;
use lienthong::pki::{self, SignerCert, TrustPolicy, TrustStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

const GOOD: &[(&str, &str, &str)] = &[
    (
        "ubnd-gialai",
        "Ủy ban nhân dân tỉnh Gia Lai",
        "000.00.00.H21",
    ),
    (
        "stttt-gialai",
        "Sở Thông tin và Truyền thông tỉnh Gia Lai",
        "000.00.05.H21",
    ),
    ("sonv-gialai", "Sở Nội vụ tỉnh Gia Lai", "000.00.04.H21"),
    (
        "ubnd-nghean",
        "Ủy ban nhân dân tỉnh Nghệ An",
        "000.00.00.H41",
    ),
];

const ISSUING_CA: &str = "CN=Lienthong TEST Issuing CA, O=Lienthong TEST PKI, C=VN";
const ROOT_CA: &str = "CN=Lienthong TEST Root CA, O=Lienthong TEST PKI, C=VN";

fn pki_file(name: &str) -> PathBuf {
    common::pki(name)
}

fn der(name: &str) -> Vec<u8> {
    CertificateDer::from_pem_file(pki_file(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .to_vec()
}

fn cert(name: &str) -> Vec<u8> {
    der(&format!("{name}.cert.pem"))
}

/// The store of the CLI: the root as the only anchor.
fn root_store() -> TrustStore {
    TrustStore::from_path(&pki_file("root-ca.cert.pem")).unwrap()
}

/// Verifies `name`'s certificate with chain.pem sent alongside, as a package's KeyInfo would.
fn verify_with_chain(
    name: &str,
    when: SystemTime,
    policy: &TrustPolicy,
) -> Result<SignerCert, lienthong::error::TrustError> {
    let chain = der("chain.pem");
    pki::verify_signer(&cert(name), &[&chain], &root_store(), when, policy)
}

fn refused(name: &str, policy: &TrustPolicy) -> lienthong::error::TrustError {
    match verify_with_chain(name, SystemTime::now(), policy) {
        Ok(s) => panic!("{name} was accepted: {s:?}"),
        Err(e) => e,
    }
}

#[test]
fn good_organisation_certificates_are_accepted_with_their_chain() {
    for &(name, cn, organ_id) in GOOD {
        let signer = verify_with_chain(name, SystemTime::now(), &TrustPolicy::default())
            .unwrap_or_else(|e| panic!("{name}: {e} ({})", e.code));
        assert!(
            signer
                .subject
                .starts_with(&format!("CN={cn}, serialNumber={organ_id}, O=")),
            "{name}: {}",
            signer.subject
        );
        assert!(signer.subject.ends_with(", C=VN"), "{}", signer.subject);
        assert_eq!(signer.issuer, ISSUING_CA);
        assert_eq!(signer.organ_id.as_deref(), Some(organ_id));
        let fingerprint = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &cert(name));
        assert_eq!(signer.sha256_fingerprint, hex::encode(fingerprint));
        assert_eq!(signer, pki::describe(&cert(name)).unwrap());
    }
}

#[test]
fn the_chain_can_come_from_the_store_instead_of_the_package() {
    let mut store = root_store();
    store
        .add_intermediates_pem(&std::fs::read(pki_file("chain.pem")).unwrap())
        .unwrap();
    assert_eq!(store.len(), 1);
    assert_eq!(store.intermediate_count(), 1);
    for &(name, ..) in GOOD {
        pki::verify_signer(
            &cert(name),
            &[],
            &store,
            SystemTime::now(),
            &TrustPolicy::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn without_the_issuing_ca_the_signer_is_untrusted() {
    let e = pki::verify_signer(
        &cert("sonv-gialai"),
        &[],
        &root_store(),
        SystemTime::now(),
        &TrustPolicy::default(),
    )
    .unwrap_err();
    assert_eq!(e.code, Code::CertUntrusted, "{e}");
    assert!(e.subject.starts_with("CN=Sở Nội vụ tỉnh Gia Lai"), "{e}");
    assert!(e.problem.contains(ISSUING_CA), "{e}");
}

#[test]
fn expired_is_refused() {
    let e = refused("expired", &TrustPolicy::default());
    assert_eq!(e.code, Code::CertExpired, "{e}");
    assert!(
        e.subject.starts_with("CN=TEST Đơn vị chứng thư hết hạn"),
        "{e}"
    );
    let until = timed::rfc3339(timed::dates().expired_until);
    assert!(e.problem.contains(&until), "{until} not in {e}");
}

#[test]
fn not_yet_valid_is_refused_now_and_accepted_in_its_time() {
    let e = refused("not-yet-valid", &TrustPolicy::default());
    assert_eq!(e.code, Code::CertNotYetValid, "{e}");
    let from = timed::rfc3339(timed::dates().valid_from);
    assert!(e.problem.contains(&from), "{from} not in {e}");
    // Its only fault is the date: a day into its validity (the CAs still valid) it is accepted.
    let then = timed::system_time(timed::dates().in_future);
    verify_with_chain("not-yet-valid", then, &TrustPolicy::default()).unwrap();
}

#[test]
fn an_intermediate_out_of_its_validity_is_named() {
    // Before the issuing CA existed the expired certificate itself was valid.
    let then = timed::system_time(timed::dates().before_issuing_ca);
    let e = verify_with_chain("expired", then, &TrustPolicy::default()).unwrap_err();
    assert_eq!(e.code, Code::CertNotYetValid, "{e}");
    assert_eq!(e.subject, ISSUING_CA);
    assert!(
        e.problem
            .contains("in the path of CN=TEST Đơn vị chứng thư hết hạn"),
        "{e}"
    );
}

#[test]
fn ca_as_signer_is_refused() {
    let e = refused("ca-as-signer", &TrustPolicy::default());
    assert_eq!(e.code, Code::CertIsCa, "{e}");
    assert!(
        e.subject.starts_with("CN=TEST Đơn vị dùng chứng thư CA"),
        "{e}"
    );
}

#[test]
fn wrong_key_usage_is_refused() {
    let e = refused("wrong-key-usage", &TrustPolicy::default());
    assert_eq!(e.code, Code::CertKeyUsage, "{e}");
    assert!(e.problem.contains("Key Encipherment"), "{e}");
}

#[test]
fn wrong_eku_is_refused() {
    let e = refused("wrong-eku", &TrustPolicy::default());
    assert_eq!(e.code, Code::CertKeyUsage, "{e}");
    assert!(e.problem.contains("serverAuth"), "{e}");
}

#[test]
fn untrusted_is_refused_even_with_its_root_sent_along() {
    let e = refused("untrusted", &TrustPolicy::default());
    assert_eq!(e.code, Code::CertUntrusted, "{e}");
    // Same subject as the genuine ubnd-gialai: a forgery from an unknown root.
    assert!(
        e.subject.starts_with("CN=Ủy ban nhân dân tỉnh Gia Lai"),
        "{e}"
    );
    assert!(e.problem.contains("Rogue Root CA"), "{e}");

    let rogue = der("rogue-root.cert.pem");
    let e = pki::verify_signer(
        &cert("untrusted"),
        &[&rogue],
        &root_store(),
        SystemTime::now(),
        &TrustPolicy::default(),
    )
    .unwrap_err();
    assert_eq!(e.code, Code::CertUntrusted, "{e}");
    assert!(
        e.problem
            .contains("ends at the self-signed CN=Lienthong TEST Rogue Root CA"),
        "{e}"
    );
}

#[test]
fn sha1_signed_is_refused_by_default_and_accepted_under_the_legacy_policy() {
    let e = refused("sha1-signed", &TrustPolicy::default());
    assert_eq!(e.code, Code::CertUntrusted, "{e}");
    assert!(e.problem.contains("SHA-1"), "{e}");
    assert!(e.problem.contains("sha1WithRSAEncryption"), "{e}");

    let legacy = TrustPolicy { allow_sha1: true };
    let signer = verify_with_chain("sha1-signed", SystemTime::now(), &legacy).unwrap();
    assert_eq!(signer.organ_id.as_deref(), Some("000.00.96.H21"));
    // The legacy policy relaxes the algorithm only.
    assert_eq!(refused("untrusted", &legacy).code, Code::CertUntrusted);
    assert_eq!(refused("expired", &legacy).code, Code::CertExpired);
}

#[test]
fn an_empty_store_trusts_nothing() {
    let store = TrustStore::from_pem(b"").unwrap();
    assert!(store.is_empty());
    let chain = der("chain.pem");
    let e = pki::verify_signer(
        &cert("ubnd-gialai"),
        &[&chain],
        &store,
        SystemTime::now(),
        &TrustPolicy::default(),
    )
    .unwrap_err();
    assert_eq!(e.code, Code::CertUntrusted, "{e}");
}

#[test]
fn garbage_is_malformed() {
    let e = pki::verify_signer(
        b"\x30\x82\x01\x00garbage",
        &[],
        &root_store(),
        SystemTime::now(),
        &TrustPolicy::default(),
    )
    .unwrap_err();
    assert_eq!(e.code, Code::CertMalformed, "{e}");
    assert_eq!(pki::describe(b"").unwrap_err().code, Code::CertMalformed);
}

#[test]
fn from_path_on_a_file() {
    let store = root_store();
    assert_eq!(store.len(), 1);
    assert_eq!(store.anchor_subjects().collect::<Vec<_>>(), [ROOT_CA]);

    // A file of end-entity certificates holds no anchor; a key file holds no certificate.
    let none = TrustStore::from_path(&pki_file("ubnd-gialai.cert.pem")).unwrap();
    assert!(none.is_empty());
    let e = TrustStore::from_path(&pki_file("ubnd-gialai.key.pem")).unwrap_err();
    assert_eq!(e.code(), Code::CertMalformed, "{e}");
    let e = TrustStore::from_path(&pki_file("no-such-file.pem")).unwrap_err();
    assert_eq!(e.code(), Code::Io, "{e}");
}

#[test]
fn from_path_on_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |from: &str, to: &str| {
        std::fs::copy(pki_file(from), dir.path().join(to)).unwrap();
    };
    copy("root-ca.cert.pem", "root.pem");
    copy("root-ca.cert.pem", "same-root-again.pem");
    copy("ubnd-gialai.cert.pem", "an-end-entity.pem");
    copy("ubnd-gialai.key.pem", "a-key.pem");
    copy("rogue-root.cert.pem", "rogue.txt"); // not a certificate extension: not read
    // The issuing CA as DER in a .crt, as CAs often publish it.
    std::fs::write(dir.path().join("issuing.crt"), der("chain.pem")).unwrap();

    let store = TrustStore::from_path(dir.path()).unwrap();
    assert_eq!(store.len(), 2, "{store:?}");
    let mut subjects: Vec<_> = store.anchor_subjects().collect();
    subjects.sort();
    assert_eq!(subjects, [ISSUING_CA, ROOT_CA]);

    // The issuing CA is an anchor itself, so no intermediate is needed.
    pki::verify_signer(
        &cert("stttt-gialai"),
        &[],
        &store,
        SystemTime::now(),
        &TrustPolicy::default(),
    )
    .unwrap();
    let e = pki::verify_signer(
        &cert("untrusted"),
        &[],
        &store,
        SystemTime::now(),
        &TrustPolicy::default(),
    )
    .unwrap_err();
    assert_eq!(e.code, Code::CertUntrusted);
}

#[test]
fn rsa_public_key_verifies_what_the_private_key_signed() {
    use aws_lc_rs::signature::{self, KeyPair as _};
    let pkcs8 =
        rustls_pki_types::PrivatePkcs8KeyDer::from_pem_file(pki_file("sonv-gialai.key.pem"))
            .unwrap();
    let key = signature::RsaKeyPair::from_pkcs8(pkcs8.secret_pkcs8_der()).unwrap();
    let message = b"edXML SignedInfo";
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(
        &signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        message,
        &mut sig,
    )
    .unwrap();

    let public = pki::rsa_public_key(&cert("sonv-gialai")).unwrap();
    assert_eq!(public, key.public_key().as_ref());
    signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &public)
        .verify(message, &sig)
        .unwrap();
    // Another agency's key does not verify it.
    let other = pki::rsa_public_key(&cert("ubnd-gialai")).unwrap();
    assert!(
        signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &other)
            .verify(message, &sig)
            .is_err()
    );
}

// --- paths made at test time by a temp copy of the test CA (`tests/common/testca.rs`) ----------

/// Verifies a package signed by the test-time leaf `name`, sending `chain`, under `policy`.
fn verify_made(
    ca: &common::testca::TestCa,
    name: &str,
    chain: Option<&str>,
    allow_sha1: bool,
) -> Result<(), (Code, String)> {
    let bytes = ca.signed_by(name, chain);
    let store = TrustStore::from_path(&ca.path("root-ca.cert.pem")).unwrap();
    let mut opts = lienthong::verify::Options::new(&store);
    opts.trust_policy.allow_sha1 = allow_sha1;
    lienthong::verify::verify_package(&bytes, &opts)
        .map(|_| ())
        .map_err(|e| (e.code(), e.to_string()))
}

#[test]
fn a_path_through_an_unknown_intermediate_is_untrusted() {
    let ca = common::testca::TestCa::new();
    ca.intermediate("inter-unsent", &[]);
    ca.leaf_under("orphan", "inter-unsent", "");
    // Sent with its intermediate: fine. Without it (and not in the store): untrusted.
    verify_made(&ca, "orphan", Some("inter-unsent.cert.pem"), false).unwrap();
    let (code, message) = verify_made(&ca, "orphan", None, false).unwrap_err();
    assert_eq!(code, Code::CertUntrusted, "{message}");
    assert!(message.contains("TEST inter-unsent"), "{message}");
}

#[test]
fn a_path_through_an_expired_intermediate_is_refused() {
    let ca = common::testca::TestCa::new();
    ca.intermediate(
        "inter-expired",
        &[
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20210101000000Z",
        ],
    );
    ca.leaf_under("under-expired", "inter-expired", "");
    let (code, message) =
        verify_made(&ca, "under-expired", Some("inter-expired.cert.pem"), false).unwrap_err();
    assert_eq!(code, Code::CertExpired, "{message}");
    assert!(message.contains("TEST inter-expired"), "{message}");
}

#[test]
fn a_sha1_intermediate_is_refused_under_the_default_policy() {
    let ca = common::testca::TestCa::new();
    ca.intermediate("inter-sha1", &["-md", "sha1"]);
    ca.leaf_under("under-sha1", "inter-sha1", "");
    let (code, message) =
        verify_made(&ca, "under-sha1", Some("inter-sha1.cert.pem"), false).unwrap_err();
    assert_eq!(code, Code::CertUntrusted, "{message}");
    assert!(message.contains("SHA-1"), "{message}");
    assert!(message.contains("TEST inter-sha1"), "{message}");
    verify_made(&ca, "under-sha1", Some("inter-sha1.cert.pem"), true).unwrap();
}

#[test]
fn an_unknown_critical_extension_is_refused() {
    let ca = common::testca::TestCa::new();
    ca.leaf_under("critical-ext", "issuing-ca", "1.2.3.4=critical,ASN1:NULL\n");
    let (code, message) = verify_made(&ca, "critical-ext", Some("chain.pem"), false).unwrap_err();
    assert_eq!(code, Code::CertUntrusted, "{message}");
    assert!(message.contains("critical"), "{message}");
    // The same leaf without it is accepted: the extension is the only fault.
    ca.leaf_under("plain", "issuing-ca", "");
    verify_made(&ca, "plain", Some("chain.pem"), false).unwrap();
}

/// The committed PKI ends on a fixed day (its signing certificates on 2036-11-25): a year before,
/// this test fails and says what to do, instead of the whole suite failing on that day.
#[test]
fn the_committed_test_pki_is_valid_for_another_year() {
    let next_year = SystemTime::now() + Duration::from_secs(365 * 86_400);
    for (name, _, _) in GOOD {
        if let Err(e) = verify_with_chain(name, next_year, &TrustPolicy::default()) {
            panic!(
                "{name} will not be valid a year from now ({e}): run certs/test-only/make-test-pki.sh"
            );
        }
    }
}

#[test]
fn an_rsa_key_under_2048_bits_is_refused() {
    let ca = common::testca::TestCa::new();
    ca.leaf_with_key_bits("small-key", 1024);
    let store = TrustStore::from_path(&ca.path("root-ca.cert.pem")).unwrap();
    let leaf = CertificateDer::from_pem_file(ca.path("small-key.cert.pem"))
        .unwrap()
        .to_vec();
    let chain = der("chain.pem");
    let e = pki::verify_signer(
        &leaf,
        &[&chain],
        &store,
        SystemTime::now(),
        &TrustPolicy::default(),
    )
    .unwrap_err();
    assert_eq!(e.code, Code::AlgorithmNotAllowed, "{e}");
    assert!(e.problem.contains("1024 bits"), "{e}");
    // The same profile with a 2048-bit key is accepted: the size is the only fault.
    ca.leaf_with_key_bits("big-enough", 2048);
    let leaf = CertificateDer::from_pem_file(ca.path("big-enough.cert.pem"))
        .unwrap()
        .to_vec();
    pki::verify_signer(
        &leaf,
        &[&chain],
        &store,
        SystemTime::now(),
        &TrustPolicy::default(),
    )
    .unwrap();
}

/// The signature's trust decision runs before any signature or digest work. A package whose
/// content was changed after signing and whose `SignatureValue` is broken: a refusing decision
/// is asked once and its refusal is the answer (neither `SIGNATURE_INVALID` nor
/// `DIGEST_MISMATCH`); an accepting one is asked once too, and only then does the signature
/// check fail. The same through `verify_package` with a signer from an untrusted root.
#[test]
fn the_trust_decision_comes_before_any_signature_or_digest_work() {
    use common::corpus::{good, sign, sign_as};
    use lienthong::dsig::{self, Policy};
    use lienthong::edxml::xml::{Limits, parse};
    use lienthong::error::{Error, TrustError};

    let signed = sign(&good());
    let changed = signed.replacen("Gia Lai</", "Gia Lại</", 1);
    assert_ne!(changed, signed);
    let v0 = changed.find("<SignatureValue>").unwrap() + "<SignatureValue>".len();
    let mut broken = changed.clone();
    broken.replace_range(
        v0..v0 + 8,
        if &changed[v0..v0 + 8] == "AAAAAAAA" {
            "BBBBBBBB"
        } else {
            "AAAAAAAA"
        },
    );

    let xml = parse(broken.as_bytes(), &Limits::default()).unwrap();
    let mut asked = 0;
    let e = dsig::verify(&xml, &Policy::default(), |_, _| -> Result<(), Error> {
        asked += 1;
        Err(TrustError::new(Code::CertUntrusted, "signer", "refused by the test").into())
    })
    .unwrap_err();
    assert_eq!((asked, e.code()), (1, Code::CertUntrusted), "{e}");
    let mut asked = 0;
    let e = dsig::verify(&xml, &Policy::default(), |_, _| -> Result<(), Error> {
        asked += 1;
        Ok(())
    })
    .unwrap_err();
    assert_eq!((asked, e.code()), (1, Code::SignatureInvalid), "{e}");

    // Content changed, signature value intact: the digest is the fault, found after the decision.
    let xml = parse(changed.as_bytes(), &Limits::default()).unwrap();
    let mut asked = 0;
    let e = dsig::verify(&xml, &Policy::default(), |_, _| -> Result<(), Error> {
        asked += 1;
        Ok(())
    })
    .unwrap_err();
    assert_eq!((asked, e.code()), (1, Code::DigestMismatch), "{e}");

    // End to end: an untrusted signer's package, changed after signing, is untrusted.
    let forged = sign_as(&good(), "untrusted").replacen("Gia Lai</", "Gia Lại</", 1);
    let store = root_store();
    let e = lienthong::verify::verify_package(
        forged.as_bytes(),
        &lienthong::verify::Options::new(&store),
    )
    .unwrap_err();
    assert_eq!(e.code(), Code::CertUntrusted, "{e}");
}

/// A signature whose `KeyInfo` names no certificate, or that has no `KeyInfo`: `CERT_MISSING`.
#[test]
fn a_signature_without_a_certificate_is_cert_missing() {
    use common::corpus::{good, sign};
    let signed = sign(&good());
    let c0 = signed.find("<X509Certificate>").unwrap();
    let c1 = signed.rfind("</X509Certificate>").unwrap() + "</X509Certificate>".len();
    let k0 = signed.find("<KeyInfo>").unwrap();
    let k1 = signed.find("</KeyInfo>").unwrap() + "</KeyInfo>".len();
    let store = root_store();
    for (what, bytes) in [
        (
            "X509Data without X509Certificate",
            format!("{}{}", &signed[..c0], &signed[c1..]),
        ),
        ("no KeyInfo", format!("{}{}", &signed[..k0], &signed[k1..])),
    ] {
        let e = lienthong::verify::verify_package(
            bytes.as_bytes(),
            &lienthong::verify::Options::new(&store),
        )
        .unwrap_err();
        assert_eq!(e.code(), Code::CertMissing, "{what}: {e}");
    }
}
