//! `verify::verify_package` against a fixed trust anchor (the test PKI's root, copied into
//! fuzz/pki/ so the committed seeds stay valid whatever happens to the test certificates) at a
//! fixed time, revocation off. Seeds are packages signed by `stttt-gialai`; mutations reach the
//! signature profile, trust, canonicalisation, digest and the reader behind a valid signature.
#![no_main]
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use lienthong::edxml::{Package, WarningKind};
use lienthong::pki::TrustStore;
use lienthong::verify::{Options, verify_package};

fn trust() -> &'static TrustStore {
    static TRUST: OnceLock<TrustStore> = OnceLock::new();
    TRUST.get_or_init(|| {
        TrustStore::from_pem(include_bytes!("../pki/root-ca.cert.pem")).expect("the root loads")
    })
}

fn without_junk_warning(mut p: Package) -> Package {
    let warnings = match &mut p {
        Package::Document(d) => &mut d.warnings,
        Package::Status(s) => &mut s.warnings,
    };
    warnings.retain(|w| w.kind != WarningKind::JunkBeforeDeclaration);
    p
}

fuzz_target!(|data: &[u8]| {
    let mut opts = Options::new(trust());
    // 2030-01-01: inside every certificate's validity, and the same on every run.
    opts.at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000);
    if let Ok(v) = verify_package(data, &opts) {
        assert!(v.verified_from <= data.len());
        // What a node keeps of a verified package verifies again, to the same signed identity.
        let kept = v.kept(data.to_vec());
        let again = verify_package(&kept, &opts).expect("the kept form verifies");
        assert_eq!(again.signature.signed_identity, v.signature.signed_identity);
        // Stray bytes before `<?xml` are warned about where they were, and not kept.
        assert_eq!(again.package, without_junk_warning(v.package));
    }
});
