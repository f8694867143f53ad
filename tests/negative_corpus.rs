//! The negative corpus: every way a package can be forged, malformed or hostile, each refused
//! with its exact error code.

mod common;

use common::corpus::*;
use common::*;
use lienthong::pki::TrustStore;
use lienthong::verify::{Options, verify_package};

#[test]
fn every_case_is_refused_with_its_code() {
    let store = TrustStore::from_path(&pki("root-ca.cert.pem")).unwrap();
    let corpus = corpus();
    assert!(corpus.len() >= 25, "the corpus shrank to {}", corpus.len());
    // The README's figure comes from here (`-- --nocapture`).
    eprintln!("negative corpus: {} packages", corpus.len());
    let mut wrong = Vec::new();
    for c in &corpus {
        let mut opts = Options::new(&store);
        opts.limits = c.limits.clone();
        opts.strict = c.strict;
        match verify_package(&c.bytes, &opts) {
            Ok(_) => wrong.push(format!("{}: accepted, expected {}", c.name, c.code)),
            Err(e) if e.code() != c.code => wrong.push(format!(
                "{}: {} ({e}), expected {}",
                c.name,
                e.code(),
                c.code
            )),
            Err(_) => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        corpus.len(),
        wrong.join("\n")
    );
}

#[test]
fn the_good_package_verifies_and_lenient_reading_flags_instead_of_refusing() {
    let store = TrustStore::from_path(&pki("root-ca.cert.pem")).unwrap();
    let opts = Options::new(&store);
    verify_package(sign(&good()).as_bytes(), &opts).expect("the corpus base verifies");
    let status = sign_as(&status_package("07", "000.00.00.H41"), "ubnd-nghean");
    verify_package(status.as_bytes(), &opts)
        .expect("07 is stored and flagged when reading leniently");
    let odd_code = sign(&good().replacen("000.00.00.H41</OrganId>", "vxp.saas.03</OrganId>", 1));
    verify_package(odd_code.as_bytes(), &opts)
        .expect("non-standard agency codes are flagged, not refused");
}

#[test]
fn the_cli_prints_one_line_with_the_code_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tampered.edxml");
    std::fs::write(&path, sign(&good()).replacen("Nền tảng", "Nen tang", 1)).unwrap();
    let o = bin()
        .arg("verify")
        .arg("--trust")
        .arg(pki("root-ca.cert.pem"))
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("DIGEST_MISMATCH: "), "{err}");
    let o = bin()
        .arg("verify")
        .arg("--json")
        .arg("--trust")
        .arg(pki("root-ca.cert.pem"))
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["code"], "DIGEST_MISMATCH");
    assert_eq!(v["ok"], false);
}

/// Bytes the signature does not cover change nothing: every transport variant verifies, is the
/// same package (signed identity) as the base, and is kept as the base is kept; a package this
/// node signed is kept byte for byte. The kept form verifies again, to the same identity.
#[test]
fn transport_variants_are_the_same_package_and_are_kept_without_what_was_not_signed() {
    let store = TrustStore::from_path(&pki("root-ca.cert.pem")).unwrap();
    let opts = Options::new(&store);
    let base = sign(&good()).into_bytes();
    let v = verify_package(&base, &opts).unwrap();
    assert!(v.signature.archive.signature_rebuilt());
    let identity = v.signed_identity_hex();
    assert_eq!(
        v.kept(base.clone()),
        base,
        "our own package is kept as signed"
    );
    let variants = transport_variants();
    assert!(
        variants.len() >= 14,
        "the variants shrank to {}",
        variants.len()
    );
    let mut wrong = Vec::new();
    for c in &variants {
        let v = match verify_package(&c.bytes, &opts) {
            Ok(v) => v,
            Err(e) => {
                wrong.push(format!("{}: refused with {} ({e})", c.name, e.code()));
                continue;
            }
        };
        if v.signed_identity_hex() != identity {
            wrong.push(format!("{}: another signed identity", c.name));
        }
        if !v.signature.archive.signature_rebuilt() {
            wrong.push(format!("{}: the Signature was not rebuilt", c.name));
        }
        let kept = v.kept(c.bytes.clone());
        if c.kept_as_base && kept != base {
            wrong.push(format!(
                "{}: kept otherwise than the base:\n{}",
                c.name,
                String::from_utf8_lossy(&kept)
            ));
        }
        let text = String::from_utf8_lossy(&kept);
        for unsigned in [
            "<!--",
            "X509SubjectName",
            "xml:base",
            "Giả mạo",
            "relay",
            "Id=",
        ] {
            if text.contains(unsigned) {
                wrong.push(format!("{}: kept {unsigned:?}", c.name));
            }
        }
        match verify_package(&kept, &opts) {
            Ok(again) if again.signed_identity_hex() == identity => {
                if again.kept(kept.clone()) != kept {
                    wrong.push(format!("{}: keeping the kept form changes it", c.name));
                }
            }
            Ok(_) => wrong.push(format!("{}: the kept form is another package", c.name)),
            Err(e) => wrong.push(format!("{}: the kept form is refused: {e}", c.name)),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} variants wrong:\n{}",
        wrong.len(),
        variants.len(),
        wrong.join("\n")
    );
}

/// Any change to signed content is another signed identity.
#[test]
fn other_signed_content_is_another_identity() {
    let store = TrustStore::from_path(&pki("root-ca.cert.pem")).unwrap();
    let opts = Options::new(&store);
    let id = |xml: &str| {
        verify_package(sign(xml).as_bytes(), &opts)
            .unwrap()
            .signed_identity_hex()
    };
    let base = id(&good());
    assert_ne!(id(&good().replacen("Nền tảng", "Nền  tảng", 1)), base);
    assert_ne!(
        id(&good().replacen("Gia Lai</Place>", "Gia Lai </Place>", 1)),
        base
    );
    // A comment is not content: signed with or without it, it is the same package.
    assert_eq!(
        id(&good().replacen("</MessageHeader>", "<!-- x --></MessageHeader>", 1)),
        base
    );
}

/// `lienthong verify --json` shows the signed identity, the same for a transport variant.
#[test]
fn the_cli_shows_the_signed_identity() {
    let dir = tempfile::tempdir().unwrap();
    let variants = transport_variants();
    let messy = variants
        .iter()
        .find(|v| v.name == "everything at once")
        .unwrap();
    let mut seen = Vec::new();
    for (name, bytes) in [
        ("base", sign(&good()).into_bytes()),
        ("messy", messy.bytes.clone()),
    ] {
        let path = dir.path().join(format!("{name}.edxml"));
        std::fs::write(&path, bytes).unwrap();
        let o = bin()
            .arg("verify")
            .arg("--json")
            .arg("--trust")
            .arg(pki("root-ca.cert.pem"))
            .arg(&path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let id = v["signature"]["signed_identity"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(id.len(), 64, "{v}");
        seen.push(id);
    }
    assert_eq!(seen[0], seen[1]);
}
