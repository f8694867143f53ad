//! The pure half of ingest and receipts: what a receiving node accepts, for whom, and the signed
//! receipt the sender can verify.

mod common;

use common::corpus::signer;
use common::*;
use lienthong::Code;
use lienthong::config::Config;
use lienthong::dsig::sign_package;
use lienthong::edxml::xml::Limits;
use lienthong::edxml::{self, Package, ReadOptions};
use lienthong::node::{ingest, receipt};
use lienthong::verify::{Options, verify_package};

/// The Nghệ An node: serves 000.00.00.H41; Gia Lai's node serves everything under H21.
fn nghean(peer_serves: &str) -> Config {
    let text = nodes::node_table("nghean", "127.0.0.1:0", "sqlite::memory:")
        + &nodes::agency(nodes::NGHEAN, "Ủy ban nhân dân tỉnh Nghệ An", "ubnd-nghean")
        + &nodes::peer("gialai", "http://127.0.0.1:1", peer_serves);
    Config::from_toml(&text, std::path::Path::new("/"), &|_| None).unwrap()
}

fn dispatch(to: &str) -> Vec<u8> {
    let xml = package(&Shape::default()).replacen("000.00.00.H41", to, 1);
    sign_package(xml.as_bytes(), &signer("stttt-gialai"), &Limits::default()).unwrap()
}

#[test]
fn a_dispatch_from_a_peer_it_serves_is_accepted_for_the_local_recipient() {
    let config = nghean("000.00.00.H21");
    let trust = nodes::trust();
    let accepted = ingest::check(
        &dispatch("000.00.00.H41"),
        &config,
        &trust,
        Some(&config.peers[0]),
        std::time::SystemTime::now(),
    )
    .unwrap();
    assert_eq!(accepted.local_recipients.len(), 1);
    assert_eq!(accepted.local_recipients[0].as_str(), "000.00.00.H41");
    assert!(accepted.verified().unwrap().sender_bound);

    // The receipt, signed by Nghệ An, verifies at Gia Lai and is a 01 about that document.
    let Package::Document(doc) = accepted.package() else {
        panic!("a document")
    };
    let now = edxml::vietnam_time(time::OffsetDateTime::now_utc());
    let org = &config.agencies[0].organization;
    let r = receipt::receipt(doc, org, now, &signer("ubnd-nghean")).unwrap();
    let v = verify_package(&r, &Options::new(&trust)).unwrap();
    let Package::Status(s) = v.package else {
        panic!("a status")
    };
    assert_eq!(s.status_code.as_wire(), "01");
    assert_eq!(
        s.response_for.effective_document_id(),
        doc.header.effective_document_id()
    );
    assert!(edxml::read(&r, &ReadOptions::default()).is_ok());
}

#[test]
fn a_peer_may_not_speak_for_codes_it_does_not_serve() {
    let config = nghean("000.00.00.H22");
    let trust = nodes::trust();
    let e = ingest::check(
        &dispatch("000.00.00.H41"),
        &config,
        &trust,
        Some(&config.peers[0]),
        std::time::SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(e.code(), Code::PeerNotAuthorised, "{e}");
}

#[test]
fn a_dispatch_for_nobody_here_is_refused() {
    let config = nghean("000.00.00.H21");
    let trust = nodes::trust();
    let e = ingest::check(
        &dispatch("000.00.00.H14"),
        &config,
        &trust,
        Some(&config.peers[0]),
        std::time::SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(e.code(), Code::NotAddressedHere, "{e}");
}
