//! The mail formats end to end, without a network: what the node composes is read back by a
//! receiver's parser (mail-parser, as any mail client built on it would, and our own bounded
//! `mail::parse`) exactly as it was meant — the Vietnamese subject, the files byte for byte, the
//! signed `.edxml` still verifying — no header can be injected through a package or a name, and
//! hostile mails are refused with their code before memory is spent on them (counted by this
//! binary's allocator).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::corpus::signer;
use common::pki;
use lienthong::config::MailLimits;
use lienthong::dsig::sign_package;
use lienthong::edxml::xml::Limits;
use lienthong::edxml::{self, Package, Priority, StatusCode, samples};
use lienthong::mail::address::{Address, Mailbox};
use lienthong::mail::classify::{Class, Context, auto_reply_to, classify};
use lienthong::mail::compose::{
    Composed, PackageMail, ReplyMail, document_id_of, is_message_id_of, package_mail,
    quarantine_reply,
};
use lienthong::mail::parse::{ParsedMail, parse};
use lienthong::pki::TrustStore;
use lienthong::verify::{Options, verify_package};
use mail_parser::MimeHeaders as _;
use time::macros::datetime;
use unicode_normalization::UnicodeNormalization as _;

// --- an allocator that counts, per thread -----------------------------------------------------

/// The system allocator, counting the bytes each thread holds and the most it held since
/// [`peak_during`] started: a parse runs on one thread, so other tests running beside it do
/// not blur the figure.
struct Counting;

thread_local! {
    static HELD: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            shrink(layout.size());
            grow(new_size);
        }
        p
    }
}

fn grow(n: usize) {
    // `try_with`: the thread-locals may be gone while a thread shuts down.
    let _ = HELD.try_with(|h| {
        let now = h.get().saturating_add(n);
        h.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

fn shrink(n: usize) {
    let _ = HELD.try_with(|h| h.set(h.get().saturating_sub(n)));
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// `f`'s result and the most memory it held at once beyond what was held when it started.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = HELD.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, peak.saturating_sub(base))
}

// --- fixtures ---------------------------------------------------------------------------------

fn node() -> Mailbox {
    Mailbox::new(
        "Hệ thống liên thông văn bản tỉnh Gia Lai",
        Address::parse("lienthong@gialai.gov.vn").unwrap(),
    )
}

fn commune() -> Mailbox {
    Mailbox::new(
        "UBND xã Ia Kha",
        Address::parse("xa-iakha@gialai.gov.vn").unwrap(),
    )
}

/// `pkg` written and signed by `who` of the test PKI, and what verification says of it.
fn signed(pkg: &Package, who: &str) -> Vec<u8> {
    let xml = edxml::write(pkg).unwrap();
    sign_package(&xml, &signer(who), &Limits::default()).unwrap()
}

fn trust() -> TrustStore {
    TrustStore::from_path(&pki("root-ca.cert.pem")).unwrap()
}

/// The mail for `signed`, as the outbox would compose it: the package read back from the
/// signed bytes (what the store keeps), the signer described by its certificate.
fn mail_for(signed: &[u8], delivery_id: i64, to: &Mailbox) -> (Composed, Package) {
    let trust = trust();
    let v = verify_package(signed, &Options::new(&trust)).unwrap();
    let composed = package_mail(&PackageMail {
        from: &node(),
        to,
        delivery_id,
        message_id_domain: "gialai.gov.vn",
        package: &v.package,
        signed,
        signer: Some(&v.signer.subject),
        date: datetime!(2026-12-07 09:30:00 +07:00),
    })
    .unwrap();
    (composed, v.package)
}

fn received(c: &Composed) -> ParsedMail {
    parse(&c.bytes, &MailLimits::default()).unwrap()
}

// --- round trips --------------------------------------------------------------------------------

#[test]
fn a_signed_document_arrives_whole_and_still_verifies() {
    let doc = samples::new_document();
    let bytes = signed(&Package::Document(doc.clone()), "stttt-gialai");
    let (c, pkg) = mail_for(&bytes, 42, &commune());

    // The subject, decoded by a receiver, is exactly the composed one, in NFC.
    let expected = "[KHẨN] [Văn bản điện tử] 123/STTTT-CĐS — V/v phối hợp kết nối, liên thông \
                    văn bản điện tử giữa hai tỉnh";
    assert_eq!(c.subject, expected);
    let raw = mail_parser::MessageParser::new().parse(&c.bytes).unwrap();
    assert_eq!(raw.subject(), Some(expected));
    assert_eq!(raw.subject().unwrap().nfc().collect::<String>(), expected);
    assert!(
        String::from_utf8_lossy(&c.bytes).contains("\r\nSubject: =?utf-8?"),
        "the subject travels as RFC 2047"
    );

    // The files and the package, byte for byte, under their names (RFC 2231 on the wire).
    let m = received(&c);
    assert_eq!(m.headers.subject, expected);
    assert_eq!(m.attachments.len(), 3);
    assert_eq!(m.attachments[0].name, "123-STTTT-CĐS.signed.pdf");
    assert_eq!(m.attachments[0].bytes, doc.attachments[0].data);
    assert_eq!(m.attachments[1].name, "Phụ lục I.pdf");
    assert_eq!(m.attachments[1].bytes, doc.attachments[1].data);
    let edxml = &m.attachments[2];
    assert_eq!(edxml.name, "000.00.05.H21_2024-03-15_123-STTTT-CDS.edxml");
    assert_eq!(edxml.bytes, bytes, "the .edxml is not byte-identical");
    assert!(String::from_utf8_lossy(&c.bytes).contains("filename*0*=utf-8''Ph%E1%BB%A5"));
    let names: Vec<_> = raw
        .attachments()
        .map(|a| a.attachment_name().map(str::to_owned))
        .collect();
    assert_eq!(
        names,
        [
            Some("123-STTTT-CĐS.signed.pdf".to_owned()),
            Some("Phụ lục I.pdf".to_owned()),
            Some("000.00.05.H21_2024-03-15_123-STTTT-CDS.edxml".to_owned())
        ]
    );

    // It still verifies, as the same signed content.
    let trust = trust();
    let again = verify_package(&edxml.bytes, &Options::new(&trust)).unwrap();
    let first = verify_package(&bytes, &Options::new(&trust)).unwrap();
    assert_eq!(again.signed_identity_hex(), first.signed_identity_hex());
    assert_eq!(again.package, pkg);

    // The Message-ID is the delivery's; another node reading this mail takes the package.
    assert!(is_message_id_of(
        &c.message_id,
        42,
        &document_id_of(&pkg),
        &commune().address,
        "gialai.gov.vn"
    ));
    let cx = Context {
        our_address: Address::parse("vanthu@nghean.gov.vn").unwrap(),
        message_id_domain: "nghean.gov.vn".into(),
        mailboxes: Default::default(),
    };
    match classify(&m, &cx) {
        Class::Package { bytes: b, name } => {
            assert_eq!(b, bytes);
            assert!(name.ends_with(".edxml"));
        }
        other => panic!("{other:?}"),
    }
    // It is automatic mail: nobody answers it automatically.
    assert_eq!(auto_reply_to(&m.headers, &cx.our_address), None);
}

#[test]
fn a_signed_status_arrives_whole_and_still_verifies() {
    let st = samples::status(StatusCode::Registered);
    let bytes = signed(&Package::Status(st.clone()), "ubnd-nghean");
    let (c, _) = mail_for(&bytes, 7, &commune());
    assert!(
        c.subject
            .starts_with("[Trạng thái văn bản] 03 Đã tiếp nhận, vào sổ — 123/STTTT-CĐS")
    );
    let m = received(&c);
    assert_eq!(m.headers.subject, c.subject);
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].bytes, bytes);
    let trust = trust();
    verify_package(&m.attachments[0].bytes, &Options::new(&trust)).unwrap();
    assert!(
        m.text.contains("Đã tiếp nhận, vào sổ văn bản đến số 1024"),
        "{}",
        m.text
    );
}

#[test]
fn a_subject_typed_in_nfd_arrives_in_nfc() {
    let mut doc = samples::new_document();
    // What macOS and some Windows input methods produce: base letters and combining marks.
    doc.header.subject = "V/v tri\u{0065}\u{0302}\u{0309}n khai thu\u{031B} \u{0111}i\u{0065}\u{0323}\u{0302}n tu\u{031B}\u{0309}"
        .to_owned();
    doc.header.other_info.as_mut().unwrap().priority = Priority::Flash;
    let bytes = signed(&Package::Document(doc), "stttt-gialai");
    let (c, _) = mail_for(&bytes, 1, &commune());
    let expected = "[HỎA TỐC] [Văn bản điện tử] 123/STTTT-CĐS — V/v triển khai thư điện tử";
    assert_eq!(c.subject, expected);
    assert!(c.subject.chars().eq(c.subject.nfc()));
    assert_eq!(received(&c).headers.subject, expected);
}

// --- injection ------------------------------------------------------------------------------------

/// Every header field of `bytes`, at the top and in every MIME part, unfolded: `(name, value)`.
fn all_header_fields(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    // A header section starts the mail and follows each boundary line.
    let mut sections = vec![text.split("\r\n\r\n").next().unwrap_or("").to_owned()];
    for chunk in text.split("\r\n--").skip(1) {
        if let Some((_, rest)) = chunk.split_once("\r\n") {
            sections.push(rest.split("\r\n\r\n").next().unwrap_or("").to_owned());
        }
    }
    for s in sections {
        let mut fields: Vec<String> = Vec::new();
        for line in s.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(l) = fields.last_mut() {
                    l.push_str(line);
                }
            } else if !line.is_empty() {
                fields.push(line.to_owned());
            }
        }
        for f in fields {
            let (n, v) = f.split_once(':').unwrap_or((&f, ""));
            out.push((n.to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    out
}

#[test]
fn nothing_in_a_package_or_a_name_becomes_a_header() {
    let mut doc = samples::new_document();
    doc.header.subject = "V/v họp\r\nBcc: victim@evil.vn\r\nX-Evil: 1".into();
    doc.header.code.notation = "UBND\nX-Evil: 2".into();
    doc.header.from.organ_name = "Sở\r\nX-Evil: 3".into();
    doc.header.signer_info.full_name = "An\r\n\r\n<script>".into();
    let bytes = signed(&Package::Document(doc.clone()), "stttt-gialai");
    let trust = trust();
    let mut pkg = verify_package(&bytes, &Options::new(&trust))
        .unwrap()
        .package;
    // Names this node's writer refuses, but a peer's package read leniently may carry.
    if let Package::Document(d) = &mut pkg {
        d.attachments[0].name = "a.pdf\r\nContent-Type: text/html\r\nX-Evil: 4".into();
        d.attachments[1].name = "b\u{202E}fdp.exe\"; filename=\"evil.exe".into();
        d.attachments[1].content_type = "application/pdf\r\nX-Evil: 5".into();
    }
    let to = Mailbox::new(
        "Xã\r\nBcc: victim@evil.vn",
        Address::parse("xa-iakha@gialai.gov.vn").unwrap(),
    );
    let c = package_mail(&PackageMail {
        from: &node(),
        to: &to,
        delivery_id: 9,
        message_id_domain: "gialai.gov.vn",
        package: &pkg,
        signed: &bytes,
        signer: Some("CN=x\r\nBcc: y@z.vn"),
        date: datetime!(2026-12-07 09:30:00 +07:00),
    })
    .unwrap();
    let fields = all_header_fields(&c.bytes);
    for (name, value) in &fields {
        assert!(
            !matches!(name.as_str(), "bcc" | "x-evil"),
            "injected header {name}: {value}"
        );
    }
    let top: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).take(12).collect();
    assert_eq!(top.iter().filter(|n| **n == "to").count(), 1, "{top:?}");
    assert_eq!(
        top.iter().filter(|n| **n == "subject").count(),
        1,
        "{top:?}"
    );
    // What the receiver reads: the text cleaned to one line, the names made safe, the
    // bytes untouched.
    let m = received(&c);
    assert_eq!(
        m.headers.subject,
        "[KHẨN] [Văn bản điện tử] 123/UBND X-Evil: 2 — V/v họp Bcc: victim@evil.vn X-Evil: 1"
    );
    assert_eq!(m.attachments[0].name, "htmlX-Evil_ 4");
    assert_eq!(m.attachments[0].bytes, doc.attachments[0].data);
    assert_eq!(m.attachments[1].name, "bfdp.exe_; filename=_evil.exe");
    // A label with a line break is no label: the name's type, and `.exe` has none we name.
    assert_eq!(m.attachments[1].content_type, "application/octet-stream");
    assert_eq!(m.attachments[2].bytes, bytes);
    let raw = mail_parser::MessageParser::new().parse(&c.bytes).unwrap();
    assert_eq!(
        raw.to()
            .and_then(|t| t.first())
            .and_then(|a| a.address.as_deref()),
        Some("xa-iakha@gialai.gov.vn")
    );
    assert!(raw.bcc().is_none());
    assert!(!raw.body_html(0).unwrap().contains("<script>"));
}

#[test]
fn a_reply_never_carries_what_it_answers() {
    // A hostile mail: its subject tries to add headers, its body is something we never echo.
    let hostile = b"Return-Path: <ai.do@example.vn>\r\n\
From: ai.do@example.vn\r\n\
Subject: =?utf-8?b?VGjGsCBj4bunYSB0w7RpDQpCY2M6IHZpY3RpbUBldmlsLnZu?=\r\n\
Message-ID: <hostile-1@example.vn>\r\n\
\r\n\
SECRET-BODY-LINE http://phishing.example/\r\n";
    let m = parse(hostile, &MailLimits::default()).unwrap();
    assert_eq!(m.headers.subject, "Thư của tôi Bcc: victim@evil.vn");
    let us = Address::parse("lienthong@gialai.gov.vn").unwrap();
    let to = auto_reply_to(&m.headers, &us).expect("a person is answered");
    let Class::Quarantine {
        code, reason_vi, ..
    } = classify(
        &m,
        &Context {
            our_address: us,
            message_id_domain: "gialai.gov.vn".into(),
            mailboxes: Default::default(),
        },
    )
    else {
        panic!("not quarantined")
    };
    let reply = quarantine_reply(&ReplyMail {
        from: &node(),
        to: &to,
        original_subject: &m.headers.subject,
        original_message_id: m.headers.message_id.as_deref(),
        original_references: &m.headers.references,
        code,
        reason_vi: &reason_vi,
        message_id_domain: "gialai.gov.vn",
        date: datetime!(2026-12-07 09:30:00 +07:00),
    })
    .unwrap();
    let text = String::from_utf8_lossy(&reply.bytes);
    assert!(!text.contains("SECRET-BODY-LINE") && !text.contains("phishing"));
    for (name, value) in all_header_fields(&reply.bytes) {
        assert_ne!(name, "bcc", "{value}");
    }
    let r = received(&reply);
    assert_eq!(r.headers.subject, "Re: Thư của tôi Bcc: victim@evil.vn");
    assert_eq!(
        r.headers.in_reply_to.as_deref(),
        Some("hostile-1@example.vn")
    );
    assert_eq!(r.headers.auto_submitted.as_deref(), Some("auto-replied"));
    // And the other side answers no automatic reply: two nodes cannot loop.
    assert_eq!(
        auto_reply_to(&r.headers, &Address::parse("ai.do@example.vn").unwrap()),
        None
    );
}

// --- hostile mails --------------------------------------------------------------------------------

/// What the parser may hold, at most, while refusing a hostile mail: a few header fields and
/// the walk's stack — nothing in proportion to the mail.
const REFUSAL_BUDGET: usize = 256 * 1024;

fn refused(raw: &[u8]) -> (&'static str, usize) {
    let limits = MailLimits::default();
    let (r, peak) = peak_during(|| parse(raw, &limits));
    (r.expect_err("refused").code, peak)
}

#[test]
fn ten_thousand_parts_are_refused_in_bounded_memory() {
    let mut m =
        b"From: a@b.vn\r\nSubject: many\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n"
            .to_vec();
    for i in 0..10_000 {
        m.extend_from_slice(
            format!("--p\r\nContent-Type: application/pdf; name=\"{i}.pdf\"\r\n\r\n%PDF\r\n")
                .as_bytes(),
        );
    }
    m.extend_from_slice(b"--p--\r\n");
    let (code, peak) = refused(&m);
    eprintln!(
        "10,000 parts ({} bytes): refused holding {peak} bytes",
        m.len()
    );
    // 200 parts are allowed, 20 of them attachments: whichever bound is met first.
    assert!(
        matches!(code, "MAIL_TOO_MANY_PARTS" | "MAIL_TOO_MANY_ATTACHMENTS"),
        "{code}"
    );
    assert!(
        peak < REFUSAL_BUDGET,
        "held {peak} bytes for a {} byte mail",
        m.len()
    );

    // Text parts only: the part bound itself.
    let mut m = b"From: a@b.vn\r\nContent-Type: multipart/alternative; boundary=q\r\n\r\n".to_vec();
    for _ in 0..10_000 {
        m.extend_from_slice(b"--q\r\nContent-Type: text/plain\r\n\r\nx\r\n");
    }
    let (code, peak) = refused(&m);
    assert_eq!(code, "MAIL_TOO_MANY_PARTS");
    assert!(peak < REFUSAL_BUDGET, "held {peak} bytes");
}

#[test]
fn a_sixty_deep_tree_is_refused_in_bounded_memory() {
    let mut m = b"From: a@b.vn\r\n".to_vec();
    for i in 0..60 {
        m.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"level{i}\"\r\n\r\n--level{i}\r\n")
                .as_bytes(),
        );
    }
    m.extend_from_slice(b"Content-Type: text/plain\r\n\r\ndeep\r\n");
    for i in (0..60).rev() {
        m.extend_from_slice(format!("--level{i}--\r\n").as_bytes());
    }
    let (code, peak) = refused(&m);
    eprintln!("60 deep: refused holding {peak} bytes");
    assert_eq!(code, "MAIL_TOO_DEEP");
    assert!(peak < REFUSAL_BUDGET, "held {peak} bytes");

    // Nested attached messages count as levels too.
    let mut m = Vec::new();
    for _ in 0..60 {
        m.extend_from_slice(b"From: a@b.vn\r\nContent-Type: message/rfc822\r\n\r\n");
    }
    m.extend_from_slice(b"From: a@b.vn\r\n\r\ninnermost\r\n");
    assert_eq!(refused(&m).0, "MAIL_TOO_DEEP");
}

#[test]
fn an_oversize_mail_is_refused_unread() {
    let limits = MailLimits::default();
    let mut m = b"Return-Path: <a@b.vn>\r\nFrom: a@b.vn\r\nSubject: big\r\n\
Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    m.resize(limits.max_bytes as usize + 1, b'A');
    let (r, peak) = peak_during(|| parse(&m, &limits));
    let e = r.unwrap_err();
    eprintln!("{} bytes: refused holding {peak} bytes", m.len());
    assert_eq!(e.code, "MAIL_TOO_LARGE");
    assert!(
        peak < REFUSAL_BUDGET,
        "held {peak} bytes for a {} byte mail",
        m.len()
    );
    // Enough is read to answer it.
    assert_eq!(e.headers.unwrap().return_path.as_deref(), Some("a@b.vn"));
}

#[test]
fn a_megabyte_header_line_is_refused_unread() {
    let mut m = b"From: a@b.vn\r\nSubject: ".to_vec();
    m.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    m.extend_from_slice(b"\r\n\r\nbody\r\n");
    let (code, peak) = refused(&m);
    eprintln!("a 1 MiB header line: refused holding {peak} bytes");
    assert_eq!(code, "MAIL_HEADER_TOO_LONG");
    assert!(peak < REFUSAL_BUDGET, "held {peak} bytes");
    // A megabyte of short header lines: the section's bound.
    let mut m = Vec::new();
    while m.len() < 1024 * 1024 {
        m.extend_from_slice(b"X-Filler: 0123456789\r\n");
    }
    m.extend_from_slice(b"\r\nbody\r\n");
    let (code, peak) = refused(&m);
    assert_eq!(code, "MAIL_HEADER_TOO_LONG");
    assert!(peak < REFUSAL_BUDGET, "held {peak} bytes");
}

#[test]
fn a_legitimate_mail_of_the_same_size_is_read() {
    // The contrast: the bounds refuse shapes, not sizes. A 20 MB PDF in one part is read.
    use base64::Engine as _;
    let pdf: Vec<u8> = (0..15 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&pdf);
    let mut m = b"From: a@b.vn\r\nSubject: big but fine\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n\
--z\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=x.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    for line in b64.as_bytes().chunks(76) {
        m.extend_from_slice(line);
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"--z--\r\n");
    let (parsed, peak) = peak_during(|| parse(&m, &MailLimits::default()).unwrap());
    // The counter counts: reading the file holds at least the file (so the small figures of
    // the refusals above are figures, not a counter that never moved).
    assert!(peak >= pdf.len(), "held {peak} bytes");
    assert_eq!(parsed.attachments.len(), 1);
    assert_eq!(parsed.attachments[0].bytes, pdf);
}
