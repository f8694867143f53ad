//! The mail transports (`mail::smtp`, `mail::imap`) against real servers on loopback: Dovecot
//! and aiosmtpd from `tests/common/mail.rs`.

mod common;

use common::mail::*;

#[tokio::test]
async fn the_harness_delivers_and_reads_back() {
    let servers = MailServers::start();
    let raw = b"From: a@gialai.gov.vn\r\nTo: vanthu@gialai.gov.vn\r\nSubject: x\r\n\r\n.line starting with a dot\r\nbody\r\n";
    servers.deliver(VANTHU.address, raw).await;
    let got = servers.messages(VANTHU.address, "INBOX").await;
    assert_eq!(got.len(), 1);
    assert!(
        got[0].1.ends_with(&raw[raw.len() - 40..]),
        "{:?}",
        String::from_utf8_lossy(&got[0].1)
    );
    assert!(
        servers
            .try_deliver(UNKNOWN, raw)
            .await
            .unwrap_err()
            .contains("550")
    );
    servers.stop_smtp();
    servers.start_smtp();
}
