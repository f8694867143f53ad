//! Revocation by CRL files: a real `openssl ca` revokes `sonv-gialai` in a copy of the test PKI
//! (the committed `certs/test-only/` is never modified) and issues CRLs; packages signed as
//! `sonv-gialai` and `stttt-gialai` are then verified under each revocation policy. CRLs whose
//! scope is narrowed by extensions are checked as the node fetches them (`TestCa`).

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use common::corpus::*;
use common::testca::{Points, TestCa};
use common::*;
use lienthong::Code;
use lienthong::pki::status::{RevocationOutcome, Status};
use lienthong::pki::{Revocation, RevocationPolicy, TrustStore};
use lienthong::revocation::{self, Checker, FetchConfig};
use lienthong::verify::{Options, verify_package};

/// The copied PKI and the CRLs made in it, once per test binary.
struct Crls {
    _dir: tempfile::TempDir,
    /// The issuing CA's CRL listing `sonv-gialai`, current (nextUpdate in 30 days).
    issuing: PathBuf,
    /// The same CA's CRL, stale: nextUpdate in 2020.
    issuing_stale: PathBuf,
    /// The root's CRL (lists nothing), current: needed under `require` for the issuing CA.
    root: PathBuf,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn openssl_ca(dir: &Path, args: &[&str]) {
    let o = tool("openssl", "openssl")
        .current_dir(dir)
        .args(["ca", "-batch", "-config", "openssl.cnf"])
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        o.status.success(),
        "openssl ca {args:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
}

fn crls() -> &'static Crls {
    static CRLS: OnceLock<Crls> = OnceLock::new();
    CRLS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let pki_dir = dir.path().join("pki");
        copy_dir(&pki("."), &pki_dir);
        // Relative paths in openssl.cnf (`dir = ca/issuing`, `certificate = issuing-ca.cert.pem`)
        // resolve against the copy, since openssl runs in it.
        openssl_ca(
            &pki_dir,
            &[
                "-name",
                "ca_issuing",
                "-revoke",
                "sonv-gialai.cert.pem",
                "-crl_reason",
                "keyCompromise",
            ],
        );
        let issuing = dir.path().join("issuing.crl.pem");
        let issuing_stale = dir.path().join("issuing-stale.crl.pem");
        let root = dir.path().join("root.crl.pem");
        let out = |p: &Path| p.to_str().unwrap().to_owned();
        openssl_ca(
            &pki_dir,
            &["-name", "ca_issuing", "-gencrl", "-out", &out(&issuing)],
        );
        openssl_ca(
            &pki_dir,
            &[
                "-name",
                "ca_issuing",
                "-gencrl",
                "-crl_lastupdate",
                "20200101000000Z",
                "-crl_nextupdate",
                "20200201000000Z",
                "-out",
                &out(&issuing_stale),
            ],
        );
        openssl_ca(
            &pki_dir,
            &["-name", "ca_root", "-gencrl", "-out", &out(&root)],
        );
        Crls {
            _dir: dir,
            issuing,
            issuing_stale,
            root,
        }
    })
}

fn store() -> TrustStore {
    TrustStore::from_path(&pki("root-ca.cert.pem")).unwrap()
}

/// A status package from `sonv-gialai`'s or `stttt-gialai`'s agency, signed by it.
fn signed_by(who: &str) -> Vec<u8> {
    let from = match who {
        "sonv-gialai" => "000.00.04.H21",
        "stttt-gialai" => "000.00.05.H21",
        _ => unreachable!(),
    };
    sign_as(&status_package("07", from), who).into_bytes()
}

fn revocation(policy: RevocationPolicy, files: &[&Path]) -> Revocation {
    let mut r = Revocation::new(policy);
    for f in files {
        let n = r
            .add_pem_or_der(&std::fs::read(f).unwrap(), &f.display().to_string())
            .unwrap();
        assert_eq!(n, 1);
    }
    r
}

/// Verifies a package signed by `who` under `policy` with the CRL `files`: `Ok(())` or the code
/// and message.
fn check(who: &str, policy: RevocationPolicy, files: &[&Path]) -> Result<(), (Code, String)> {
    let store = store();
    let mut opts = Options::new(&store);
    opts.revocation = revocation(policy, files);
    verify_package(&signed_by(who), &opts)
        .map(|_| ())
        .map_err(|e| (e.code(), e.to_string()))
}

#[test]
fn a_revoked_signer_is_refused_and_a_good_one_accepted() {
    let c = crls();
    for policy in [RevocationPolicy::Prefer, RevocationPolicy::Require] {
        let files: &[&Path] = &[&c.issuing, &c.root];
        let (code, message) = check("sonv-gialai", policy, files).unwrap_err();
        assert_eq!(code, Code::CertRevoked, "{policy:?}: {message}");
        assert!(message.contains("Sở Nội vụ"), "{message}");
        assert!(message.contains("lists it"), "{message}");
        check("stttt-gialai", policy, files)
            .unwrap_or_else(|e| panic!("{policy:?}: stttt refused: {e:?}"));
    }
    // `prefer` needs no CRL of the root for the issuing CA.
    check("stttt-gialai", RevocationPolicy::Prefer, &[&c.issuing]).unwrap();
    let (code, _) = check("sonv-gialai", RevocationPolicy::Prefer, &[&c.issuing]).unwrap_err();
    assert_eq!(code, Code::CertRevoked);
}

#[test]
fn off_ignores_the_crls() {
    let c = crls();
    check("sonv-gialai", RevocationPolicy::Off, &[&c.issuing, &c.root]).unwrap();
    check("sonv-gialai", RevocationPolicy::Off, &[]).unwrap();
    // The default of `Options` is off.
    let store = store();
    verify_package(&signed_by("sonv-gialai"), &Options::new(&store)).unwrap();
}

#[test]
fn require_refuses_an_unknown_status() {
    let c = crls();
    // Only the root's CRL: nothing covers the signer.
    for who in ["sonv-gialai", "stttt-gialai"] {
        let (code, message) = check(who, RevocationPolicy::Require, &[&c.root]).unwrap_err();
        assert_eq!(code, Code::RevocationUnknown, "{message}");
        assert!(message.contains("unknown"), "{message}");
    }
    // Only the issuing CA's CRL: nothing covers the issuing CA itself.
    let (code, message) =
        check("stttt-gialai", RevocationPolicy::Require, &[&c.issuing]).unwrap_err();
    assert_eq!(code, Code::RevocationUnknown, "{message}");
    // No CRL at all.
    let (code, message) = check("stttt-gialai", RevocationPolicy::Require, &[]).unwrap_err();
    assert_eq!(code, Code::RevocationUnknown, "{message}");
    assert!(message.contains("no CRL"), "{message}");
    // `prefer` accepts what no CRL covers.
    check("sonv-gialai", RevocationPolicy::Prefer, &[&c.root]).unwrap();
}

#[test]
fn require_refuses_a_stale_crl() {
    let c = crls();
    let (code, message) = check(
        "stttt-gialai",
        RevocationPolicy::Require,
        &[&c.issuing_stale, &c.root],
    )
    .unwrap_err();
    assert_eq!(code, Code::RevocationUnknown, "{message}");
    assert!(message.contains("stale"), "{message}");
    assert!(message.contains("2020-02-01"), "{message}");
    // Also a current CRL checked after its nextUpdate (30 days).
    let store = store();
    let mut opts = Options::new(&store);
    opts.revocation = revocation(RevocationPolicy::Require, &[&c.issuing, &c.root]);
    opts.at = std::time::SystemTime::now() + std::time::Duration::from_secs(40 * 86_400);
    let e = verify_package(&signed_by("stttt-gialai"), &opts).unwrap_err();
    assert_eq!(e.code(), Code::RevocationUnknown, "{e}");
    // `prefer` still uses a stale CRL: what it lists stays revoked, the rest is accepted.
    let files: &[&Path] = &[&c.issuing_stale];
    check("stttt-gialai", RevocationPolicy::Prefer, files).unwrap();
    let (code, _) = check("sonv-gialai", RevocationPolicy::Prefer, files).unwrap_err();
    assert_eq!(code, Code::CertRevoked);
}

#[test]
fn a_file_that_is_no_crl_is_refused() {
    let e = lienthong::pki::crls_from_pem_or_der(b"not a crl", "x.crl").unwrap_err();
    assert_eq!(e.code, Code::ConfigInvalid);
    let cert = std::fs::read(pki("root-ca.cert.pem")).unwrap();
    let e = lienthong::pki::crls_from_pem_or_der(&cert, "root-ca.cert.pem").unwrap_err();
    assert_eq!(e.code, Code::ConfigInvalid);
    // DER works as well as PEM.
    let pem = std::fs::read_to_string(&crls().issuing).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(
        lienthong::pki::crls_from_pem_or_der(&der, "der")
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn the_cli_checks_crl_files() {
    let c = crls();
    let dir = tempfile::tempdir().unwrap();
    let sonv = dir.path().join("sonv.xml");
    std::fs::write(&sonv, signed_by("sonv-gialai")).unwrap();
    let stttt = dir.path().join("stttt.xml");
    std::fs::write(&stttt, signed_by("stttt-gialai")).unwrap();
    let issuing = c.issuing.to_str().unwrap();
    let root = c.root.to_str().unwrap();

    // --crl alone means prefer.
    let (ok, line) = lienthong_verify(&sonv, &["--crl", issuing]);
    assert!(!ok && line.contains("CERT_REVOKED"), "{line}");
    let (ok, line) = lienthong_verify(&stttt, &["--crl", issuing]);
    assert!(ok, "{line}");
    // Without --crl, off.
    let (ok, line) = lienthong_verify(&sonv, &[]);
    assert!(ok, "{line}");
    let (ok, line) = lienthong_verify(&sonv, &["--crl", issuing, "--revocation", "off"]);
    assert!(ok, "{line}");
    // require: the root's CRL is needed for the issuing CA.
    let (ok, line) = lienthong_verify(&stttt, &["--crl", issuing, "--revocation", "require"]);
    assert!(!ok && line.contains("REVOCATION_UNKNOWN"), "{line}");
    let (ok, line) = lienthong_verify(
        &stttt,
        &["--crl", issuing, "--crl", root, "--revocation", "require"],
    );
    assert!(ok, "{line}");
    let (ok, line) = lienthong_verify(&stttt, &["--revocation", "maybe"]);
    assert!(!ok, "{line}");
}

/// Revocation as the node and the CLI check it (`revocation::Checker`): the CRL fetched from the
/// distribution point, `crls` as configured files.
fn fetched_check(
    ca: &TestCa,
    name: &str,
    policy: RevocationPolicy,
    crls: &[&Path],
) -> Result<RevocationOutcome, (Code, String)> {
    let bytes = ca.signed_by(name, Some("chain.pem"));
    let store = TrustStore::from_path(&ca.path("root-ca.cert.pem")).unwrap();
    let v = verify_package(&bytes, &Options::new(&store)).expect("the path itself is good");
    let mut files = Vec::new();
    for f in crls {
        let b = std::fs::read(f).unwrap();
        files.extend(revocation::crl_sources(&b, &f.display().to_string()).unwrap());
    }
    let checker = Checker::new(FetchConfig::default(), files).unwrap();
    revocation::check_blocking(&checker, &v.path, policy, SystemTime::now())
        .map_err(|e| (e.code, e.to_string()))
}

/// A CRL is relied on only within its scope. CRLs made by `openssl ca -gencrl -crlexts`: a delta
/// CRL, one with an unknown critical extension, an indirect one, one of CA certificates only, one
/// of another distribution point and one partitioned by reason cannot say the signer is good
/// (`REVOCATION_UNKNOWN` under `require`, never a false "good"); a partitioned one still revokes
/// what it lists; one of end-entity certificates for the signer's distribution point decides
/// the signer, and the root's CRL of CA certificates decides the issuing CA.
#[test]
fn a_crl_is_relied_on_only_within_its_scope() {
    let ca = TestCa::new();
    ca.leaf("scoped", Points::Crl);
    ca.leaf("scoped-revoked", Points::Crl);
    ca.revoke("scoped-revoked");
    let root_crl = ca.publish_crls();
    let url = format!("http://127.0.0.1:{}/issuing.crl", ca.crl_port);
    let require =
        |name: &str, root: &Path| fetched_check(&ca, name, RevocationPolicy::Require, &[root]);

    // The plain CRL decides both.
    let out = require("scoped", &root_crl).unwrap();
    assert_eq!(out.certificates[0].status, Status::Good);
    assert_eq!(
        require("scoped-revoked", &root_crl).unwrap_err().0,
        Code::CertRevoked
    );

    let idp = |lines: &str| format!("issuingDistributionPoint = critical, @idp\n[ idp ]\n{lines}");
    // `listed_revokes`: a CRL of the issuer that is understood but not complete for the signer
    // (delta, out of its scope) still revokes what it lists (a serial is unique per issuer); one
    // that is not understood (an unknown critical extension, indirect) is not used at all.
    let unknown = |exts: &str, why: &str, listed_revokes: bool| {
        ca.publish_issuing_crl_with(exts);
        let (code, message) = require("scoped-revoked", &root_crl).unwrap_err();
        let expected = if listed_revokes {
            Code::CertRevoked
        } else {
            Code::RevocationUnknown
        };
        assert_eq!(code, expected, "{exts}: {message}");
        let (code, message) = require("scoped", &root_crl).unwrap_err();
        assert_eq!(code, Code::RevocationUnknown, "{exts}: {message}");
        assert!(message.contains(why), "{exts}: {message}");
        // `prefer` accepts it, flagged: unknown, not good.
        let out = fetched_check(&ca, "scoped", RevocationPolicy::Prefer, &[&root_crl]).unwrap();
        assert_eq!(out.certificates[0].status, Status::Unknown, "{exts}");
        assert!(out.flagged());
    };
    unknown("2.5.29.27 = critical, ASN1:INTEGER:1", "delta CRL", true);
    unknown(
        "1.3.6.1.4.1.99999.1 = critical, ASN1:NULL",
        "critical extension 1.3.6.1.4.1.99999.1",
        false,
    );
    unknown(&idp("indirectCRL = TRUE"), "indirect CRL", false);
    unknown(&idp("onlyCA = TRUE"), "only CA certificates", true);
    unknown(
        &idp("fullname = URI:http://127.0.0.1:1/other.crl\nonlyuser = TRUE"),
        "distribution point http://127.0.0.1:1/other.crl",
        true,
    );
    unknown(
        &idp("onlysomereasons = keyCompromise"),
        "onlySomeReasons",
        true,
    );
    // What a partitioned CRL lists is revoked all the same.
    let (code, message) = require("scoped-revoked", &root_crl).unwrap_err();
    assert_eq!(code, Code::CertRevoked, "{message}");

    // In scope: end-entity certificates of the signer's distribution point.
    ca.publish_issuing_crl_with(&idp(&format!("fullname = URI:{url}\nonlyuser = TRUE")));
    let out = require("scoped", &root_crl).unwrap();
    assert_eq!(out.certificates[0].status, Status::Good);
    assert_eq!(
        require("scoped-revoked", &root_crl).unwrap_err().0,
        Code::CertRevoked
    );

    // The root's CRL for the issuing CA (webpki, which reads CRL files, wants a distribution
    // point in an issuingDistributionPoint): one of end-entity certificates does not decide a
    // CA, and one of CA certificates of a distribution point the CA does not name does not
    // either.
    let root = format!("fullname = URI:http://127.0.0.1:{}/root.crl\n", ca.crl_port);
    for (scope, why) in [
        ("onlyuser = TRUE", "only end-entity certificates"),
        ("onlyCA = TRUE", "which this certificate does not name"),
    ] {
        let file = ca.gencrl_with(
            "ca_root",
            &idp(&format!("{root}{scope}")),
            "root-scoped.crl.pem",
        );
        let (code, message) = require("scoped", &file).unwrap_err();
        assert_eq!(code, Code::RevocationUnknown, "{message}");
        assert!(message.contains(why), "{message}");
        assert!(message.contains("Issuing CA"), "{message}");
    }
}
