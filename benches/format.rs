//! Parse, canonicalise, sign and verify a 10 KB and a 5 MB package, one core.
//!
//! `cargo bench --bench format`. Sign = parse + exclusive c14n into SHA-256 + RSA-2048 sign +
//! splice. Verify = parse + signature profile checks + c14n of SignedInfo + RSA verify + c14n
//! digest of the package + chain validation of the signer against the test root (the same work
//! `xmlsec1 --verify` does in-process). The packages are the samples of `edxml::samples` with a
//! random (incompressible) attachment sized so the written package is 10 KB or 5 MB.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::SystemTime;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lienthong::dsig::c14n::{self, DigestSink, Method};
use lienthong::dsig::{self, Policy};
use lienthong::edxml::xml::{self, Limits};
use lienthong::edxml::{self, Attachment, samples};
use lienthong::pki::{self, TrustPolicy, TrustStore};
use lienthong::signer::KeyFileSigner;

fn pki_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("certs/test-only")
        .join(name)
}

/// A package of about `size` bytes: the sample dispatch plus one random attachment.
fn package(size: usize) -> Vec<u8> {
    let mut doc = samples::new_document();
    doc.attachments.clear();
    let base = edxml::write_document(&doc).expect("writes").len();
    // base64 grows by 4/3; zip of random data adds ~150 bytes.
    let raw = (size.saturating_sub(base + 600)) * 3 / 4;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<u8> = (0..raw)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    doc.attachments.push(Attachment::new(
        "Phụ lục.pdf",
        "application/pdf",
        "Phụ lục",
        data,
    ));
    edxml::write_document(&doc).expect("writes")
}

fn benches(c: &mut Criterion) {
    let signer = KeyFileSigner::from_files(
        &pki_file("stttt-gialai.key.pem"),
        &pki_file("stttt-gialai.cert.pem"),
        Some(&pki_file("chain.pem")),
    )
    .expect("test key");
    let store = TrustStore::from_path(&pki_file("root-ca.cert.pem")).expect("test root");
    let limits = Limits::default();
    let exc = Method::Exclusive {
        with_comments: false,
        inclusive_prefixes: Vec::new(),
    };

    for (label, size) in [("10KB", 10 * 1024), ("5MB", 5 * 1024 * 1024)] {
        let unsigned = package(size);
        let signed = dsig::sign_package(&unsigned, &signer, &limits).expect("signs");
        let mut g = c.benchmark_group(label);
        g.throughput(Throughput::Bytes(signed.len() as u64));
        if size > 1024 * 1024 {
            g.sample_size(20);
        }
        g.bench_function("parse", |b| {
            b.iter(|| xml::parse(black_box(&signed), &limits).expect("parses"))
        });
        let parsed = xml::parse(&signed, &limits).expect("parses");
        g.bench_function("c14n-sha256", |b| {
            b.iter(|| {
                let mut sink = DigestSink::new(&aws_lc_rs::digest::SHA256);
                c14n::canonicalize(parsed.doc.root(), &exc, None, &mut sink);
                sink.finish()
            })
        });
        g.bench_function("read", |b| {
            b.iter(|| {
                edxml::read_tree(black_box(&parsed), &edxml::ReadOptions::default()).expect("reads")
            })
        });
        g.bench_function("sign", |b| {
            b.iter(|| dsig::sign_package(black_box(&unsigned), &signer, &limits).expect("signs"))
        });
        g.bench_function("verify", |b| {
            b.iter(|| {
                let x = xml::parse(black_box(&signed), &limits).expect("parses");
                dsig::verify(&x, &Policy::default(), |signer, chain| {
                    let chain: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
                    let now = SystemTime::now();
                    Ok(pki::verify_signer(
                        signer,
                        &chain,
                        &store,
                        now,
                        &TrustPolicy::default(),
                    )?)
                })
                .expect("verifies")
            })
        });
        g.finish();
    }
}

criterion_group!(format, benches);
criterion_main!(format);
