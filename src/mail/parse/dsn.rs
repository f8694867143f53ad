//! Delivery-status notifications (RFC 3464): the `message/delivery-status` part of a
//! `multipart/report; report-type=delivery-status`, as Postfix, Exim, Exchange and the others
//! write it — one block of per-message fields, then one block per recipient, blocks separated
//! by a blank line, fields foldable like mail headers.

use super::{DsnRecipient, MAX_DSN_RECIPIENTS};
use crate::mail::address::header_text;

/// The fields of a delivery-status part: (`Reporting-MTA`, recipients).
pub(super) fn read_status(text: &str) -> (Option<String>, Vec<DsnRecipient>) {
    let text = text.replace("\r\n", "\n");
    let mut blocks = text
        .split("\n\n")
        .map(|b| b.trim_matches(['\n', '\r']))
        .filter(|b| !b.trim().is_empty());
    let mut reporting_mta = None;
    let mut recipients = Vec::new();
    if let Some(first) = blocks.next() {
        for (name, value) in fields(first) {
            if name.eq_ignore_ascii_case("Reporting-MTA") {
                reporting_mta = Some(after_type(&value, 300));
            }
        }
        // A report without its per-message block (seen in the wild) starts with a recipient.
        if let Some(r) = recipient(first) {
            recipients.push(r);
        }
    }
    for block in blocks {
        if recipients.len() >= MAX_DSN_RECIPIENTS {
            break;
        }
        if let Some(r) = recipient(block) {
            recipients.push(r);
        }
    }
    (reporting_mta, recipients)
}

/// A per-recipient block, when it names a recipient and an action.
fn recipient(block: &str) -> Option<DsnRecipient> {
    let mut r = DsnRecipient::default();
    let mut original = None;
    for (name, value) in fields(block) {
        match name.to_ascii_lowercase().as_str() {
            "final-recipient" => r.final_recipient = after_type(&value, 300),
            "original-recipient" => original = Some(after_type(&value, 300)),
            "action" => r.action = header_text(&value, 40).to_ascii_lowercase(),
            "status" => {
                r.status = header_text(value.split_whitespace().next().unwrap_or(""), 20);
            }
            "diagnostic-code" => r.diagnostic = Some(after_type(&value, 500)),
            _ => {}
        }
    }
    if r.final_recipient.is_empty()
        && let Some(o) = original
    {
        r.final_recipient = o;
    }
    (!r.final_recipient.is_empty() && !r.action.is_empty()).then_some(r)
}

/// The fields of a block, folded lines joined.
fn fields(block: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            if out.len() >= 64 {
                break;
            }
            out.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

/// `rfc822; user@host` → `user@host`; `smtp; 550 …` → `550 …` (the type before the first `;`
/// dropped), cleaned to one line of at most `max` characters.
fn after_type(value: &str, max: usize) -> String {
    let v = match value.split_once(';') {
        Some((t, rest)) if !t.trim().is_empty() && !t.contains(' ') => rest,
        _ => value,
    };
    header_text(v, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Postfix 3.7 writes (bounce(8)), the Diagnostic-Code folded.
    const POSTFIX: &str = "Reporting-MTA: dns; mail.test\r\n\
X-Postfix-Queue-ID: 4F2C1A0\r\n\
X-Postfix-Sender: rfc822; lienthong@gialai.gov.vn\r\n\
Arrival-Date: Mon,  7 Dec 2026 11:06:29 +0000 (UTC)\r\n\
\r\n\
Final-Recipient: rfc822; xa-iakha@gialai.gov.vn\r\n\
Original-Recipient: rfc822;xa-iakha@gialai.gov.vn\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Remote-MTA: dns; 127.0.0.1\r\n\
Diagnostic-Code: lmtp; 550 5.1.1 <xa-iakha@gialai.gov.vn> User doesn't exist:\r\n\
\x20   xa-iakha@gialai.gov.vn\r\n";

    #[test]
    fn postfix_report() {
        let (mta, rs) = read_status(POSTFIX);
        assert_eq!(mta.as_deref(), Some("mail.test"));
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].final_recipient, "xa-iakha@gialai.gov.vn");
        assert_eq!(rs[0].action, "failed");
        assert_eq!(rs[0].status, "5.1.1");
        assert_eq!(
            rs[0].diagnostic.as_deref(),
            Some("550 5.1.1 <xa-iakha@gialai.gov.vn> User doesn't exist: xa-iakha@gialai.gov.vn")
        );
    }

    #[test]
    fn several_and_bounded() {
        let mut t = String::from("Reporting-MTA: dns; x\n\n");
        for i in 0..500 {
            t.push_str(&format!(
                "Final-Recipient: rfc822; u{i}@x.vn\nAction: delayed\nStatus: 4.4.1\n\n"
            ));
        }
        let (_, rs) = read_status(&t);
        assert_eq!(rs.len(), MAX_DSN_RECIPIENTS);
        assert!(
            rs.iter()
                .all(|r| r.action == "delayed" && r.diagnostic.is_none())
        );
        // A block without an action is no recipient.
        let (_, rs) = read_status("Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@b.vn\n");
        assert!(rs.is_empty());
    }
}
