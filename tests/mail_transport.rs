//! The mail transports (`mail::smtp`, `mail::imap`) against real servers on loopback: Dovecot
//! and aiosmtpd from `tests/common/mail.rs` (one pair per test). What a test checks is read
//! back through the harness's own IMAP and LMTP clients, never through the code under test.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::mail::*;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart, SinglePart};
use lienthong::config::{ImapConfig, MailTls, Secret, SmtpConfig};
use lienthong::mail::imap::{self, Mailbox, Wake};
use lienthong::mail::smtp::{self, SmtpRelay};
use mail_parser::MimeHeaders as _;

const SUBJECT: &str = "Công văn số 123/UBND-VP về việc triển khai liên thông văn bản điện tử";

/// A small but real PDF, and every byte value after it (a binary attachment must survive).
fn pdf() -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n\
        2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n\
        3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n\
        trailer<</Root 1 0 R>>\n%%EOF\n"
        .to_vec();
    pdf.extend(0..=255u8);
    pdf
}

/// A mail with a Vietnamese subject and a PDF, built with lettre's builder (not the node's
/// composer: this is the transports' test).
fn message(to: &str, subject: &str) -> Vec<u8> {
    lettre::Message::builder()
        .from(
            "Văn thư Sở TT&TT <lienthong@gialai.gov.vn>"
                .parse()
                .unwrap(),
        )
        .to(to.parse().unwrap())
        .subject(subject)
        .message_id(Some(format!("<{}@gialai.gov.vn>", uuid::Uuid::new_v4())))
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(
                    "Kính gửi: Văn phòng UBND tỉnh Gia Lai.\nĐính kèm công văn.".to_owned(),
                ))
                .singlepart(
                    Attachment::new("cong-van-123.pdf".to_owned())
                        .body(pdf(), ContentType::parse("application/pdf").unwrap()),
                ),
        )
        .unwrap()
        .formatted()
}

fn smtp_config(s: &MailServers, tls: MailTls, password: &str) -> SmtpConfig {
    SmtpConfig {
        host: s.host.to_owned(),
        port: match tls {
            MailTls::Implicit => s.smtps_port,
            _ => s.smtp_port,
        },
        tls,
        user: Some(LIENTHONG.address.to_owned()),
        password: Some(Secret(password.to_owned())),
        ca: vec![s.ca.clone()],
        timeout: Duration::from_secs(10),
        pool_size: 2,
    }
}

fn imap_config(s: &MailServers, tls: MailTls, user: &Account) -> ImapConfig {
    ImapConfig {
        host: s.host.to_owned(),
        port: match tls {
            MailTls::Implicit => s.imaps_port,
            _ => s.imap_port,
        },
        tls,
        user: user.address.to_owned(),
        password: Secret(user.password.to_owned()),
        ca: vec![s.ca.clone()],
        folder: "INBOX".to_owned(),
        processed_folder: "Processed".to_owned(),
        quarantine_folder: "Quarantine".to_owned(),
        poll_every: Duration::from_secs(60),
        timeout: Duration::from_secs(10),
        reconnect_max: Duration::from_secs(300),
    }
}

/// A CA that did not issue the harness's certificate.
fn other_ca() -> PathBuf {
    common::pki("root-ca.cert.pem")
}

/// `stored` is `sent` with only trace fields (`Return-Path`, `Delivered-To`, `Received`) put in
/// front by the servers: the relay and the store did not change a byte of the message.
fn assert_same_message(stored: &[u8], sent: &[u8]) {
    assert!(
        stored.ends_with(sent),
        "the stored message is not the sent one:\n{}",
        String::from_utf8_lossy(stored)
    );
    let prefix = String::from_utf8_lossy(&stored[..stored.len() - sent.len()]).into_owned();
    for line in prefix.split("\r\n").filter(|l| !l.is_empty()) {
        let folded = line.starts_with([' ', '\t']);
        let trace = ["Return-Path:", "Delivered-To:", "Received:"]
            .iter()
            .any(|h| line.starts_with(h));
        assert!(folded || trace, "a field the servers added: {line:?}");
    }
}

fn check_content(stored: &[u8]) {
    let parsed = mail_parser::MessageParser::default()
        .parse(stored)
        .expect("a mail");
    assert_eq!(parsed.subject(), Some(SUBJECT));
    let att = parsed.attachments().next().expect("the PDF attachment");
    assert_eq!(att.attachment_name(), Some("cong-van-123.pdf"));
    assert_eq!(att.contents(), pdf().as_slice());
}

#[tokio::test]
async fn smtp_over_starttls_and_implicit_tls_delivers_the_bytes_as_sent() {
    let servers = MailServers::start();
    for (tls, n) in [(MailTls::Starttls, 1), (MailTls::Implicit, 2)] {
        let relay = SmtpRelay::new(&smtp_config(&servers, tls, LIENTHONG.password)).unwrap();
        let raw = message(XA_IAKHA.address, SUBJECT);
        let reply = relay
            .send(LIENTHONG.address, &[XA_IAKHA.address.to_owned()], &raw)
            .await
            .unwrap_or_else(|e| panic!("{tls:?}: {e}"));
        assert_eq!(reply.code, 250, "{reply}");
        assert!(reply.text.starts_with("2.0.0 OK"), "{reply}");
        let got = servers.messages(XA_IAKHA.address, "INBOX").await;
        assert_eq!(got.len(), n, "{tls:?}");
        assert_same_message(&got[n - 1].1, &raw);
        check_content(&got[n - 1].1);
        assert!(
            String::from_utf8_lossy(&raw).contains("Subject: =?utf-8?"),
            "the subject travels RFC 2047-encoded"
        );
    }
    // The envelope is the one given, not the header's.
    let envelopes = servers.smtp_envelopes();
    assert_eq!(envelopes.len(), 2);
    assert!(envelopes.iter().all(|(from, to)| from == LIENTHONG.address
        && to == &vec![XA_IAKHA.address.to_owned()]));
}

#[tokio::test]
async fn smtp_sends_to_several_recipients_in_one_transaction() {
    let servers = MailServers::start();
    let relay = SmtpRelay::new(&smtp_config(
        &servers,
        MailTls::Starttls,
        LIENTHONG.password,
    ))
    .unwrap();
    let raw = message(XA_IAKHA.address, SUBJECT);
    let rcpts = [XA_IAKHA.address.to_owned(), SO_TTTT.address.to_owned()];
    relay.send(LIENTHONG.address, &rcpts, &raw).await.unwrap();
    for rcpt in &rcpts {
        let got = servers.messages(rcpt, "INBOX").await;
        assert_eq!(got.len(), 1, "{rcpt}");
        assert_same_message(&got[0].1, &raw);
    }
}

#[tokio::test]
async fn smtp_refusals_are_sorted_permanent_or_transient() {
    let servers = MailServers::start();
    let raw = message(XA_IAKHA.address, SUBJECT);
    let to = [XA_IAKHA.address.to_owned()];

    // Wrong password: the operator's to fix; deliveries wait (transient).
    let wrong = SmtpRelay::new(&smtp_config(&servers, MailTls::Starttls, "sai-mat-khau")).unwrap();
    let e = wrong.send(LIENTHONG.address, &to, &raw).await.unwrap_err();
    assert_eq!((e.code, e.permanent), (smtp::MAIL_AUTH, false), "{e}");
    assert!(e.message.contains("535"), "{e}");
    assert!(
        !e.message.contains("sai-mat-khau"),
        "the password is never shown: {e}"
    );
    let e = wrong.check().await.unwrap_err();
    assert_eq!(e.code, smtp::MAIL_AUTH, "{e}");

    let relay = SmtpRelay::new(&smtp_config(
        &servers,
        MailTls::Starttls,
        LIENTHONG.password,
    ))
    .unwrap();
    relay.check().await.unwrap();

    // A recipient the mail system does not know: a real 5xx from Dovecot through the relay.
    let e = relay
        .send(LIENTHONG.address, &[UNKNOWN.to_owned()], &raw)
        .await
        .unwrap_err();
    assert_eq!((e.code, e.permanent), (smtp::MAIL_REFUSED, true), "{e}");
    assert!(e.message.contains("550"), "{e}");
    assert!(
        !e.message.contains('\n') && !e.message.contains('\r'),
        "{e}"
    );

    // 451: the relay will take it later.
    servers.smtp_transient_failure(true);
    let e = relay.send(LIENTHONG.address, &to, &raw).await.unwrap_err();
    assert_eq!((e.code, e.permanent), (smtp::MAIL_DEFERRED, false), "{e}");
    assert!(e.message.contains("451 4.3.0"), "{e}");
    servers.smtp_transient_failure(false);
    relay.send(LIENTHONG.address, &to, &raw).await.unwrap();

    // The relay goes away (its pooled connections die with it) and comes back on its port.
    servers.stop_smtp();
    let e = relay.send(LIENTHONG.address, &to, &raw).await.unwrap_err();
    assert_eq!(
        (e.code, e.permanent),
        (smtp::MAIL_UNREACHABLE, false),
        "{e}"
    );
    let e = relay.check().await.unwrap_err();
    assert_eq!(e.code, smtp::MAIL_UNREACHABLE, "{e}");
    servers.start_smtp();
    relay.check().await.unwrap();
    relay.send(LIENTHONG.address, &to, &raw).await.unwrap();
    let got = servers.messages(XA_IAKHA.address, "INBOX").await;
    assert_eq!(
        got.len(),
        2,
        "the message after the 451 and the one after the restart"
    );
    assert_same_message(&got[1].1, &raw);

    // A bad address never reaches the relay.
    let e = relay
        .send(
            LIENTHONG.address,
            &["x@y\r\nRCPT TO:<z@w>".to_owned()],
            &raw,
        )
        .await
        .unwrap_err();
    assert_eq!((e.code, e.permanent), (smtp::MAIL_REFUSED, true), "{e}");
    assert!(!e.message.contains('\n'), "{e}");
    assert_eq!(servers.smtp_envelopes().len(), 2);
}

#[tokio::test]
async fn smtp_refuses_a_relay_whose_certificate_it_does_not_trust() {
    let servers = MailServers::start();
    for tls in [MailTls::Starttls, MailTls::Implicit] {
        let mut config = smtp_config(&servers, tls, LIENTHONG.password);
        config.ca = vec![other_ca()];
        let relay = SmtpRelay::new(&config).unwrap();
        let e = relay
            .send(
                LIENTHONG.address,
                &[XA_IAKHA.address.to_owned()],
                &message(XA_IAKHA.address, SUBJECT),
            )
            .await
            .unwrap_err();
        assert_eq!(
            (e.code, e.permanent),
            (smtp::MAIL_TLS, false),
            "{tls:?}: {e}"
        );
        let e = relay.check().await.unwrap_err();
        assert_eq!(e.code, smtp::MAIL_TLS, "{tls:?}: {e}");
    }
    assert!(servers.messages(XA_IAKHA.address, "INBOX").await.is_empty());
}

#[tokio::test]
async fn smtp_new_refuses_an_unusable_ca_file() {
    let servers = MailServers::start();
    let mut config = smtp_config(&servers, MailTls::Starttls, LIENTHONG.password);
    config.ca = vec![servers.dir.join("users")];
    let e = SmtpRelay::new(&config).unwrap_err();
    assert_eq!(e.code(), lienthong::error::Code::ConfigInvalid, "{e}");
    assert!(e.to_string().contains("users"), "{e}");
}

/// Delivers `n` mails to the bridge's mailbox, returning them as sent.
async fn deliver_some(servers: &MailServers, n: usize) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    for i in 0..n {
        let raw = message(VANTHU.address, &format!("{SUBJECT} ({i})"));
        servers.deliver(VANTHU.address, &raw).await;
        sent.push(raw);
    }
    sent
}

#[tokio::test]
async fn imap_over_imaps_and_starttls_lists_fetches_and_moves_by_uid() {
    let servers = MailServers::start();
    let sent = deliver_some(&servers, 3).await;
    let stored = servers.messages(VANTHU.address, "INBOX").await;
    assert_eq!(stored.len(), 3);

    let mut uidvalidity = None;
    for tls in [MailTls::Implicit, MailTls::Starttls] {
        let mut mb = Mailbox::connect(&imap_config(&servers, tls, &VANTHU))
            .await
            .unwrap_or_else(|e| panic!("{tls:?}: {e}"));
        mb.ensure_folders(&["Processed", "Quarantine"])
            .await
            .unwrap();
        let state = mb.select("INBOX").await.unwrap();
        assert_eq!(state.exists, 3, "{tls:?}");
        assert!(state.uidnext > stored[2].0, "{state:?}");
        // UIDVALIDITY is the folder's, the same on every connection.
        assert_eq!(
            *uidvalidity.get_or_insert(state.uidvalidity),
            state.uidvalidity
        );
        mb.logout().await;
    }
    let folders = servers.folders(VANTHU.address).await;
    assert_eq!(folders, ["INBOX", "Processed", "Quarantine"]);

    let mut mb = Mailbox::connect(&imap_config(&servers, MailTls::Implicit, &VANTHU))
        .await
        .unwrap();
    // A second time: nothing to create, no error.
    mb.ensure_folders(&["Processed", "Quarantine"])
        .await
        .unwrap();
    mb.select("INBOX").await.unwrap();
    let listed = mb.list_after(0).await.unwrap();
    let expected: Vec<(u32, u64)> = stored
        .iter()
        .map(|(uid, raw)| (*uid, raw.len() as u64))
        .collect();
    assert_eq!(listed, expected);
    // Above the last UID: nothing, although "n:*" names the last mail.
    assert_eq!(mb.list_after(stored[2].0).await.unwrap(), []);
    assert_eq!(mb.list_after(stored[0].0).await.unwrap(), expected[1..]);

    for (i, (uid, raw)) in stored.iter().enumerate() {
        let got = mb.fetch(*uid, 1 << 20).await.unwrap();
        assert_eq!(&got, raw);
        assert_same_message(&got, &sent[i]);
        let header = mb.fetch_header(*uid, 64 * 1024).await.unwrap();
        assert!(raw.starts_with(&header) && header.ends_with(b"\r\n\r\n"));
        assert!(String::from_utf8_lossy(&header).contains("Subject: =?utf-8?"));
    }
    // A header longer than asked is cut, not refused.
    let cut = mb.fetch_header(stored[0].0, 100).await.unwrap();
    assert_eq!(cut, stored[0].1[..100]);

    // Over the caller's limit: refused, the session still usable.
    let size = stored[1].1.len() as u64;
    let e = mb.fetch(stored[1].0, size - 1).await.unwrap_err();
    assert_eq!((e.code, e.reconnect), (imap::IMAP_TOO_LARGE, false), "{e}");
    assert_eq!(mb.fetch(stored[1].0, size).await.unwrap(), stored[1].1);

    // Moves: out of INBOX into the folder, by UID; a repeat (after a crash) is harmless.
    mb.move_to(stored[0].0, "Processed").await.unwrap();
    mb.move_to(stored[2].0, "Quarantine").await.unwrap();
    mb.move_to(stored[0].0, "Processed").await.unwrap();
    let inbox = servers.messages(VANTHU.address, "INBOX").await;
    assert_eq!(inbox, stored[1..2]);
    let processed = servers.messages(VANTHU.address, "Processed").await;
    assert_eq!(processed.len(), 1);
    assert_eq!(processed[0].1, stored[0].1);
    let quarantined = servers.messages(VANTHU.address, "Quarantine").await;
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].1, stored[2].1);
    assert_eq!(mb.list_after(0).await.unwrap(), expected[1..2]);

    // A mail that is gone: said so, the session still usable.
    let e = mb.fetch(stored[0].0, 1 << 20).await.unwrap_err();
    assert_eq!((e.code, e.reconnect), (imap::IMAP_PROTOCOL, false), "{e}");
    assert_eq!(mb.select("INBOX").await.unwrap().exists, 1);

    // UIDs go on rising: a new mail is above every earlier one.
    deliver_some(&servers, 1).await;
    mb.select("INBOX").await.unwrap();
    let after = mb.list_after(stored[2].0).await.unwrap();
    assert_eq!(after.len(), 1);
    assert!(after[0].0 > stored[2].0);
    mb.logout().await;
}

#[tokio::test]
async fn imap_idle_returns_when_a_mail_is_delivered() {
    let servers = MailServers::start();
    let mut mb = Mailbox::connect(&imap_config(&servers, MailTls::Implicit, &VANTHU))
        .await
        .unwrap();
    assert!(mb.has_idle(), "Dovecot offers IDLE");
    let state = mb.select("INBOX").await.unwrap();
    assert_eq!(state.exists, 0);
    // An empty folder: "1:*" names no mail at all.
    assert_eq!(mb.list_after(0).await.unwrap(), []);
    let (wake, ()) = tokio::join!(mb.idle_or_sleep(Duration::from_secs(30)), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        deliver_some(&servers, 1).await;
    });
    assert_eq!(wake.unwrap(), Wake::NewMail);
    // The session is back after DONE: the new mail is there.
    assert_eq!(mb.list_after(0).await.unwrap().len(), 1);
    // Nothing delivered: the wait ends at its timeout, and the session is still usable.
    let wake = mb.idle_or_sleep(Duration::from_secs(1)).await.unwrap();
    assert_eq!(wake, Wake::Timeout);
    assert_eq!(mb.select("INBOX").await.unwrap().exists, 1);
    mb.logout().await;

    // Development without TLS (the configuration allows it only with node.dev_plain_http).
    let mut plain = Mailbox::connect(&imap_config(&servers, MailTls::None, &VANTHU))
        .await
        .unwrap();
    plain.select("INBOX").await.unwrap();
    assert_eq!(plain.list_after(0).await.unwrap().len(), 1);
    plain.logout().await;
}

#[tokio::test]
async fn imap_refusals_say_what_and_whether_to_reconnect() {
    let servers = MailServers::start();
    let mut wrong = VANTHU.clone();
    wrong.password = "sai-mat-khau";
    let e = Mailbox::connect(&imap_config(&servers, MailTls::Implicit, &wrong))
        .await
        .unwrap_err();
    assert_eq!((e.code, e.reconnect), (imap::IMAP_AUTH, true), "{e}");
    assert!(
        e.message.contains(VANTHU.address) && !e.message.contains("sai-mat-khau"),
        "{e}"
    );

    for tls in [MailTls::Implicit, MailTls::Starttls] {
        let mut config = imap_config(&servers, tls, &VANTHU);
        config.ca = vec![other_ca()];
        let e = Mailbox::connect(&config).await.unwrap_err();
        assert_eq!(
            (e.code, e.reconnect),
            (imap::IMAP_TLS, true),
            "{tls:?}: {e}"
        );
    }

    // Nothing listens there (the relay's port, with the relay stopped).
    servers.stop_smtp();
    let mut config = imap_config(&servers, MailTls::Implicit, &VANTHU);
    config.port = servers.smtps_port;
    let e = Mailbox::connect(&config).await.unwrap_err();
    assert_eq!((e.code, e.reconnect), (imap::IMAP_UNREACHABLE, true), "{e}");

    // A folder that does not exist: refused by the server, the session still usable.
    let mut mb = Mailbox::connect(&imap_config(&servers, MailTls::Implicit, &VANTHU))
        .await
        .unwrap();
    let e = mb.select("Khong-co").await.unwrap_err();
    assert_eq!((e.code, e.reconnect), (imap::IMAP_PROTOCOL, false), "{e}");
    mb.select("INBOX").await.unwrap();
}

#[tokio::test]
async fn imap_without_move_or_idle_copies_expunges_and_sleeps() {
    // Dovecot announcing neither MOVE nor IDLE (a plainer server).
    let servers = MailServers::start_with_imap_capability("IMAP4rev1 LITERAL+ UIDPLUS");
    let stored = {
        deliver_some(&servers, 2).await;
        servers.messages(VANTHU.address, "INBOX").await
    };
    let mut mb = Mailbox::connect(&imap_config(&servers, MailTls::Starttls, &VANTHU))
        .await
        .unwrap();
    assert!(!mb.has_idle() && !mb.has_move());
    mb.ensure_folders(&["Processed"]).await.unwrap();
    mb.select("INBOX").await.unwrap();
    mb.move_to(stored[0].0, "Processed").await.unwrap();
    assert_eq!(servers.messages(VANTHU.address, "INBOX").await, stored[1..]);
    let processed = servers.messages(VANTHU.address, "Processed").await;
    assert_eq!(processed.len(), 1);
    assert_eq!(processed[0].1, stored[0].1);
    assert_eq!(
        mb.idle_or_sleep(Duration::from_millis(200)).await.unwrap(),
        Wake::Timeout
    );
    assert_eq!(mb.list_after(0).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_harness_bounces_like_a_queueing_relay_when_asked() {
    // What the bridge's bounce handling is tested against (tests/mail_bridge.rs): the relay
    // accepts, then a delivery status notification comes back to the envelope sender.
    let servers = MailServers::start();
    servers.smtp_bounce_mode(true);
    let relay = SmtpRelay::new(&smtp_config(
        &servers,
        MailTls::Starttls,
        LIENTHONG.password,
    ))
    .unwrap();
    let raw = message(UNKNOWN, SUBJECT);
    let id = mail_parser::MessageParser::default()
        .parse(&raw)
        .unwrap()
        .message_id()
        .unwrap()
        .to_owned();
    let rcpts = [XA_IAKHA.address.to_owned(), UNKNOWN.to_owned()];
    let reply = relay.send(LIENTHONG.address, &rcpts, &raw).await.unwrap();
    assert_eq!(reply.code, 250, "{reply}");
    assert_eq!(servers.messages(XA_IAKHA.address, "INBOX").await.len(), 1);
    let bounces = servers
        .wait_messages(LIENTHONG.address, "INBOX", 1, Duration::from_secs(10))
        .await;
    assert_eq!(bounces.len(), 1);
    let dsn = &bounces[0].1;
    let text = String::from_utf8_lossy(dsn);
    assert!(
        text.contains("Return-Path: <>"),
        "a DSN has the null sender:\n{text}"
    );
    let parsed = mail_parser::MessageParser::default().parse(dsn).unwrap();
    let ct = parsed.content_type().unwrap();
    assert_eq!(
        (ct.ctype(), ct.subtype(), ct.attribute("report-type")),
        ("multipart", Some("report"), Some("delivery-status"))
    );
    assert!(
        text.contains(&format!("Final-Recipient: rfc822; {UNKNOWN}")),
        "{text}"
    );
    assert!(
        text.contains("Action: failed") && text.contains("Status: 5.1.1"),
        "{text}"
    );
    assert!(!text.contains(&format!("Final-Recipient: rfc822; {}", XA_IAKHA.address)));
    assert!(
        text.contains(&format!("Message-ID: <{id}>")),
        "the original's header:\n{text}"
    );
    // Off again: refused at once.
    servers.smtp_bounce_mode(false);
    let e = relay
        .send(LIENTHONG.address, &[UNKNOWN.to_owned()], &raw)
        .await
        .unwrap_err();
    assert!(e.permanent, "{e}");
}
