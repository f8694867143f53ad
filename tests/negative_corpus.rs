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
