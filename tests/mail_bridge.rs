//! The mail bridge end to end, against real mail servers on loopback (`common::mail`: Dovecot
//! for IMAP/LMTP, aiosmtpd in front of it for SMTP with STARTTLS and AUTH) and nodes served in
//! this process (`common::nodes`), with their outbox worker and mailbox reader running.
//!
//! What a test reads back comes from the servers themselves (IMAP, the relay's envelope log) and
//! is decoded by Python's `email` package (`/usr/bin/python3`, which the harness needs anyway):
//! never by the bridge's own reader. The `.edxml` a mail carries is checked with the
//! `lienthong verify` binary and with `xmlsec1`.
//!
//! Waits poll with a generous budget (a loaded 2-core machine); the budget bounds a test, it
//! decides nothing.

mod common;

use std::path::Path;
use std::time::Duration;

use common::mail::{LIENTHONG, MailServers, SO_TTTT, UNKNOWN, VANTHU, XA_IAKHA};
use common::nodes::{self, ApiClient, NGHEAN, SONV, STTTT, TOK_SONV, TOK_STTTT, TestNode};
use common::{lienthong_verify, xmlsec_verify};
use lienthong::edxml::{self, OrganId, Package};
use lienthong::store::{DeliveryState, DraftFilter, MailLogFilter, MailLogItem, Store};
use serde_json::{Value, json};
use tokio::sync::watch;

/// Ủy ban nhân dân xã Ia Kha: a commune with an official mailbox and no node.
const XA: &str = "000.21.33.H21";
/// A commune routed to a mailbox Dovecot does not know (a real 550, or a bounce).
const XA_LOST: &str = "000.21.34.H21";

/// Polls `f` until it holds.
async fn wait_for<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

// --- configuration --------------------------------------------------------------------------

/// What differs between the nodes of these tests.
struct Bridge<'a> {
    /// The address the node sends as and whose mailbox it reads.
    account: &'a str,
    /// More `[mail]` keys and tables (`[[mail.notify]]`, `[mail.limits]`, …).
    extra: &'a str,
}

/// The `[mail]` tables of a node sending and reading as `b.account` through `m`.
fn mail_tables(m: &MailServers, b: &Bridge<'_>) -> String {
    let ca = m.ca.display();
    format!(
        r#"
[mail]
from = "{account}"
from_name = "Hệ thống liên thông văn bản tỉnh Gia Lai"
message_id_domain = "gialai.gov.vn"
reply_interval = "1h"

[mail.smtp]
host = "{host}"
port = {smtp}
tls = "starttls"
user = "{smtp_user}"
password = "{smtp_password}"
ca = ["{ca}"]
timeout = "10s"

[mail.imap]
host = "{host}"
port = {imaps}
tls = "implicit"
user = "{account}"
password = "{imap_password}"
ca = ["{ca}"]
poll_every = "1s"
timeout = "10s"
reconnect_max = "2s"

[[mail.route]]
code = "{XA}"
name = "Ủy ban nhân dân xã Ia Kha"
to = "mail:{xa}"

[[mail.route]]
code = "{XA_LOST}"
name = "Ủy ban nhân dân xã Ia Lâu"
to = "mail:{UNKNOWN}"
{extra}"#,
        account = b.account,
        host = m.host,
        smtp = m.smtp_port,
        imaps = m.imaps_port,
        // The relay authenticates the bridge's one submission account, whatever it sends as.
        smtp_user = LIENTHONG.address,
        smtp_password = LIENTHONG.password,
        imap_password = MailServers::password(b.account),
        xa = XA_IAKHA.address,
        extra = b.extra,
    )
}

/// The Gia Lai node: Sở TT&TT (whose registered mailbox is so-tttt@) and Sở Nội vụ, fast
/// retries, and the bridge; a new store of the run's backend (in `dir` on SQLite).
fn gialai_text(dir: &Path, m: &MailServers, b: &Bridge<'_>) -> String {
    gialai_text_on(&common::store::store_url_in(dir), m, b)
}

/// [`gialai_text`] on the store `store`.
fn gialai_text_on(store: &str, m: &MailServers, b: &Bridge<'_>) -> String {
    nodes::node_table("gialai", "127.0.0.1:0", store)
        + &nodes::agency(
            STTTT,
            "Sở Thông tin và Truyền thông tỉnh Gia Lai",
            "stttt-gialai",
        )
        + &format!("mail = \"{}\"\n", SO_TTTT.address)
        + &nodes::clerk_token("van-thu", TOK_STTTT)
        + &nodes::agency_with_clerk(SONV, "Sở Nội vụ tỉnh Gia Lai", "sonv-gialai", TOK_SONV)
        + "[retry]\ninitial_backoff = \"100ms\"\nmax_backoff = \"400ms\"\nbreaker_failures = 1000\n"
        + &mail_tables(m, b)
}

/// A node with its outbox worker and mailbox reader running.
struct Running {
    node: TestNode,
    stop: watch::Sender<bool>,
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn start(text: impl Fn(&Path) -> String) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let node = nodes::start(listener, text).await.with_worker();
        let (stop, stopped) = watch::channel(false);
        let reader = lienthong::mail::inbound::spawn(node.node.clone(), stopped);
        assert!(
            reader.is_some(),
            "[mail.imap] is configured: the reader starts"
        );
        Running { node, stop, reader }
    }

    fn store(&self) -> &lienthong::store::AnyStore {
        self.node.store()
    }

    async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(r) = self.reader.take() {
            r.await.unwrap();
        }
        self.node.shutdown().await;
    }

    async fn mail_log(&self) -> Vec<MailLogItem> {
        self.store()
            .list_mail_log(&MailLogFilter::default())
            .await
            .unwrap()
    }

    async fn wait_mail_log(&self, n: usize) -> Vec<MailLogItem> {
        wait_for(&format!("{n} mails taken in"), || async {
            self.mail_log().await.len() >= n
        })
        .await;
        self.mail_log().await
    }

    async fn wait_delivery(&self, id: i64, state: DeliveryState) -> lienthong::store::DeliveryInfo {
        wait_for(&format!("delivery {id} {state:?}"), || async {
            self.store().delivery(id).await.unwrap().state == state
        })
        .await;
        self.store().delivery(id).await.unwrap()
    }
}

/// `/readyz` (checked against the API description): the mail part.
async fn readiness(n: &TestNode) -> Value {
    let r = ApiClient::new().get(n.url("/readyz")).send().await.unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "a mail server never makes the node unready"
    );
    let v = nodes::json_of(r).await;
    assert_eq!(v["status"], "ready");
    v["mail"].clone()
}

/// `/metrics` (checked against the API description: every family is listed).
async fn metrics(n: &TestNode) -> String {
    let r = ApiClient::new()
        .get(n.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.text().await.unwrap()
}

/// Whether the metrics text has exactly this sample line.
fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

/// A clerk's dispatch from `token`'s agency: (message id, delivery ids in recipient order).
async fn submit(
    n: &TestNode,
    token: &str,
    recipients: &[&str],
    subject: &str,
    extra: Value,
) -> (i64, Vec<i64>) {
    let mut meta = nodes::metadata(recipients, subject);
    if let (Some(m), Value::Object(x)) = (meta.as_object_mut(), extra) {
        m.extend(x);
    }
    let r = ApiClient::new()
        .post(n.url("/api/v1/documents"))
        .bearer_auth(token)
        .multipart(nodes::submission(&meta, true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let sent = nodes::json_of(r).await;
    let deliveries = sent["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["delivery_id"].as_i64().unwrap())
        .collect();
    (sent["id"].as_i64().unwrap(), deliveries)
}

// --- reading mail back, independently ---------------------------------------------------------

/// A mail as Python's `email` package (policy `default`) reads it.
#[derive(Debug)]
struct Read {
    subject: String,
    /// Every header, name in lowercase, value decoded.
    headers: Vec<(String, String)>,
    text: String,
    html: String,
    /// (file name, content type, bytes).
    attachments: Vec<(String, String, Vec<u8>)>,
    /// The raw `Subject:` line as it travelled (RFC 2047 encoded when not ASCII).
    raw_subject: String,
}

impl Read {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn attachment_ending(&self, suffix: &str) -> &(String, String, Vec<u8>) {
        self.attachments
            .iter()
            .find(|(n, _, _)| n.ends_with(suffix))
            .unwrap_or_else(|| panic!("no attachment *{suffix} in {:?}", self.names()))
    }

    fn names(&self) -> Vec<&str> {
        self.attachments
            .iter()
            .map(|(n, _, _)| n.as_str())
            .collect()
    }
}

const READ_PY: &str = r#"
import base64, email, email.policy, json, sys
raw = sys.stdin.buffer.read()
m = email.message_from_bytes(raw, policy=email.policy.default)
def body(kind):
    b = m.get_body((kind,))
    return b.get_content() if b is not None else ""
raw_subject = ""
for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
    if line.lower().startswith(b"subject:"):
        raw_subject = line.decode("ascii", "replace")
out = {
    "subject": str(m["Subject"] or ""),
    "raw_subject": raw_subject,
    "headers": [[k.lower(), str(v)] for k, v in m.items()],
    "text": body("plain"),
    "html": body("html"),
    "attachments": [
        [p.get_filename() or "", p.get_content_type(),
         base64.b64encode(p.get_payload(decode=True) or b"").decode()]
        for p in m.iter_attachments()
    ],
}
print(json.dumps(out))
"#;

/// Decodes `raw` with Python's `email` package.
fn read_mail(raw: &[u8]) -> Read {
    use base64::Engine as _;
    use std::io::Write as _;
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", READ_PY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run /usr/bin/python3");
    child.stdin.take().unwrap().write_all(raw).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python email: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    Read {
        subject: s("subject"),
        raw_subject: s("raw_subject"),
        text: s("text"),
        html: s("html"),
        headers: v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
            .collect(),
        attachments: v["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a[0].as_str().unwrap().to_owned(),
                    a[1].as_str().unwrap().to_owned(),
                    base64::engine::general_purpose::STANDARD
                        .decode(a[2].as_str().unwrap())
                        .unwrap(),
                )
            })
            .collect(),
    }
}

// --- writing mail in ---------------------------------------------------------------------------

/// A MIME mail written by hand: `text` and the `files` (name, content type, bytes) base64.
fn mime(headers: &[(&str, &str)], text: &str, files: &[(&str, &str, &[u8])]) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| {
        let s = base64::engine::general_purpose::STANDARD.encode(bytes);
        s.as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned() + "\r\n")
            .collect::<String>()
    };
    let mut m = String::new();
    for (k, v) in headers {
        let encode = |t: &str| {
            if t.is_ascii() {
                t.to_owned()
            } else {
                format!(
                    "=?UTF-8?B?{}?=",
                    base64::engine::general_purpose::STANDARD.encode(t)
                )
            }
        };
        // A display name is encoded on its own; the address stays as it is.
        let v = match v.rsplit_once(" <") {
            Some((name, address)) => format!("{} <{address}", encode(name)),
            None => encode(v),
        };
        m.push_str(&format!("{k}: {v}\r\n"));
    }
    m.push_str("MIME-Version: 1.0\r\nDate: Mon, 07 Dec 2026 09:00:00 +0700\r\n");
    if files.is_empty() {
        m.push_str(
            "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        );
        m.push_str(&b64(text.as_bytes()));
        return m.into_bytes();
    }
    m.push_str("Content-Type: multipart/mixed; boundary=\"=_ranh-gioi\"\r\n\r\n");
    m.push_str("--=_ranh-gioi\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    m.push_str(&b64(text.as_bytes()));
    for (name, ctype, bytes) in files {
        m.push_str(&format!(
            "--=_ranh-gioi\r\nContent-Type: {ctype}\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ));
        m.push_str(&b64(bytes));
    }
    m.push_str("--=_ranh-gioi--\r\n");
    m.into_bytes()
}

/// Sends `raw` through the harness's relay (STARTTLS, AUTH) with the envelope `from` → `to`,
/// as another mail system would: the mailbox sees a `Return-Path` of `from`.
async fn smtp_send(m: &MailServers, from: &str, to: &str, raw: &[u8]) {
    use lettre::address::Envelope;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let ca = std::fs::read(&m.ca).unwrap();
    let tls = TlsParameters::builder(m.host.into())
        .add_root_certificate(Certificate::from_pem(&ca).unwrap())
        .build_rustls()
        .unwrap();
    let t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(m.host)
        .port(m.smtp_port)
        .tls(Tls::Required(tls))
        .credentials(Credentials::new(
            LIENTHONG.address.into(),
            LIENTHONG.password.into(),
        ))
        .build();
    let envelope = Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()]).unwrap();
    t.send_raw(&envelope, raw).await.unwrap();
}

/// A document from Nghệ An's People's Committee to Sở TT&TT Gia Lai, signed with its key (the
/// test PKI's `ubnd-nghean`): what an outside agency without a route from here mails in.
fn nghean_package(number: u32, subject: &str) -> (Vec<u8>, String) {
    use lienthong::edxml::samples;
    let mut d = samples::new_document();
    let gl = samples::sender();
    d.header.from = samples::recipient();
    d.header.to = vec![gl];
    d.header.code = edxml::DocumentCode::new(number, "UBND-VX");
    d.header.document_id = None;
    d.header.subject = subject.to_owned();
    let document_id = d.header.effective_document_id();
    let unsigned = edxml::write(&Package::Document(d)).unwrap();
    let signer = lienthong::signer::KeyFileSigner::from_files(
        &common::pki("ubnd-nghean.key.pem"),
        &common::pki("ubnd-nghean.cert.pem"),
        Some(&common::pki("chain.pem")),
    )
    .unwrap();
    let signed =
        lienthong::dsig::sign_package(&unsigned, &signer, &edxml::xml::Limits::default()).unwrap();
    (signed, document_id)
}

// --- the tests ---------------------------------------------------------------------------------

/// A dispatch to a mail-only commune arrives in its Dovecot mailbox: the Vietnamese subject
/// decodes exactly (RFC 2047 on the wire), the PDF is byte-identical, the `.edxml` is the stored
/// package and verifies with `lienthong verify` and with `xmlsec1`; the delivery is `delivered`
/// on the relay's reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_to_a_mail_only_commune_arrives_in_its_mailbox() {
    let m = MailServers::start();
    let gl = Running::start(|dir| {
        gialai_text(
            dir,
            &m,
            &Bridge {
                account: LIENTHONG.address,
                extra: "",
            },
        )
    })
    .await;
    let subject = "V/v triển khai hộp thư công vụ @gialai.gov.vn cho cấp xã";
    let (id, deliveries) =
        submit(&gl.node, TOK_STTTT, &[XA], subject, json!({"priority": 1})).await;
    let d = gl
        .wait_delivery(deliveries[0], DeliveryState::Delivered)
        .await;
    assert_eq!(d.route, format!("mail:{}", XA_IAKHA.address));
    let attempts = gl.store().attempts(d.id).await.unwrap();
    let reply = attempts.last().unwrap().reply.clone().unwrap_or_default();
    assert!(
        reply.starts_with("250"),
        "the relay's reply is kept: {attempts:?}"
    );

    let got = m
        .wait_messages(XA_IAKHA.address, "INBOX", 1, Duration::from_secs(60))
        .await;
    assert_eq!(got.len(), 1);
    let mail = read_mail(&got[0].1);
    let info = gl.store().message(id).await.unwrap();
    let expected = format!(
        "[KHẨN] [Văn bản điện tử] {}/{} — {subject}",
        info.code_number.as_deref().unwrap(),
        info.code_notation.as_deref().unwrap()
    );
    assert_eq!(mail.subject, expected);
    assert!(
        mail.raw_subject.contains("=?"),
        "the subject travels RFC 2047 encoded: {}",
        mail.raw_subject
    );
    assert_eq!(mail.header("auto-submitted"), Some("auto-generated"));
    let message_id = mail.header("message-id").unwrap().to_owned();
    assert!(message_id.contains(&format!("{}", d.id)), "{message_id}");
    assert!(
        mail.headers.iter().any(|(_, v)| v.contains(&d.document_id)),
        "a header names the DocumentId: {:?}",
        mail.headers
    );
    assert!(
        mail.text.contains("Sở Thông tin và Truyền thông"),
        "{}",
        mail.text
    );
    assert!(
        mail.html.contains("Sở Thông tin và Truyền thông"),
        "{}",
        mail.html
    );

    let (_, ctype, pdf) = mail.attachment_ending(".pdf");
    assert_eq!(ctype, "application/pdf");
    assert_eq!(pdf.as_slice(), nodes::PDF, "the PDF is byte-identical");
    let (name, _, edxml) = mail.attachment_ending(".edxml");
    assert_eq!(
        *edxml,
        gl.store().message_bytes(id).await.unwrap(),
        "the .edxml is the signed package as stored ({name})"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("goi-tin.edxml");
    std::fs::write(&file, edxml).unwrap();
    let (ok, line) = lienthong_verify(&file, &[]);
    assert!(ok, "lienthong verify: {line}");
    let (ok, out) = xmlsec_verify(&file, &[]);
    assert!(ok, "xmlsec1: {out}");

    let mail_state = readiness(&gl.node).await;
    assert_eq!(mail_state["smtp"]["state"], "up", "{mail_state}");
    let text = metrics(&gl.node).await;
    assert!(
        has_line(&text, "lienthong_mail_sent_total{kind=\"document\"} 1"),
        "{text}"
    );
    assert!(has_line(
        &text,
        "lienthong_mail_server_reachable{server=\"smtp\"} 1"
    ));
    wait_for("the mailbox reader's session", || async {
        readiness(&gl.node).await["imap"]["state"] == "up"
    })
    .await;
    assert!(has_line(
        &metrics(&gl.node).await,
        "lienthong_mail_imap_connected 1"
    ));

    // The relay saw the node's address as sender and the commune's as the only recipient.
    let envelopes = m.smtp_envelopes();
    assert_eq!(
        envelopes,
        vec![(
            LIENTHONG.address.to_owned(),
            vec![XA_IAKHA.address.to_owned()]
        )]
    );
    gl.shutdown().await;
}

/// The relay down: the mail delivery retries (`MAIL_UNREACHABLE`), and goes out when the relay
/// is back; a 5xx (a mailbox the server does not know) fails the delivery at once, after one
/// attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_down_retries_until_it_returns_and_a_5xx_fails_at_once() {
    let m = MailServers::start();
    let gl = Running::start(|dir| {
        gialai_text(
            dir,
            &m,
            &Bridge {
                account: LIENTHONG.address,
                extra: "",
            },
        )
    })
    .await;
    m.stop_smtp();
    let (_, deliveries) = submit(
        &gl.node,
        TOK_STTTT,
        &[XA],
        "V/v thử gửi khi máy chủ thư ngừng",
        json!({}),
    )
    .await;
    let id = deliveries[0];
    wait_for("two failed attempts", || async {
        let a = gl.store().attempts(id).await.unwrap();
        a.iter().filter(|a| a.error.is_some()).count() >= 2
    })
    .await;
    let d = gl.store().delivery(id).await.unwrap();
    assert!(
        matches!(d.state, DeliveryState::Retrying | DeliveryState::Sending),
        "{d:?}"
    );
    let attempts = gl.store().attempts(id).await.unwrap();
    let code = attempts[0].error.as_ref().unwrap().code.clone();
    assert_eq!(code, "MAIL_UNREACHABLE", "{attempts:?}");
    let mail_state = readiness(&gl.node).await;
    assert_eq!(mail_state["smtp"]["state"], "down", "{mail_state}");
    assert!(
        mail_state["smtp"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("MAIL_UNREACHABLE")),
        "{mail_state}"
    );
    m.start_smtp();
    gl.wait_delivery(id, DeliveryState::Delivered).await;
    assert_eq!(readiness(&gl.node).await["smtp"]["state"], "up");
    m.wait_messages(XA_IAKHA.address, "INBOX", 1, Duration::from_secs(60))
        .await;

    // A mailbox Dovecot does not know: LMTP refuses it, the relay answers 550.
    let (_, deliveries) = submit(
        &gl.node,
        TOK_STTTT,
        &[XA_LOST],
        "V/v thử gửi tới hộp thư không tồn tại",
        json!({}),
    )
    .await;
    let d = gl.wait_delivery(deliveries[0], DeliveryState::Failed).await;
    let attempts = gl.store().attempts(d.id).await.unwrap();
    assert_eq!(attempts.len(), 1, "a 5xx is not retried: {attempts:?}");
    let e = attempts[0].error.clone().unwrap();
    assert_eq!(e.code, "MAIL_REFUSED");
    assert!(e.message.contains("550"), "{}", e.message);
    gl.shutdown().await;
}

/// A relay with a queue accepts the mail (the delivery is `delivered`) and later sends a
/// delivery-status notification back to the node's mailbox: the reader ties it to the delivery
/// by its `Message-ID` and the delivery becomes `failed` with the reason, its history keeping
/// the accepted attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_turns_a_delivered_mail_into_failed() {
    let m = MailServers::start();
    m.smtp_bounce_mode(true);
    let notify = format!(
        "\n[[mail.notify]]\nagency = \"{STTTT}\"\nto = [\"{}\"]\nevents = [\"failed\"]\n",
        VANTHU.address
    );
    let gl = Running::start(|dir| {
        gialai_text(
            dir,
            &m,
            &Bridge {
                account: LIENTHONG.address,
                extra: &notify,
            },
        )
    })
    .await;
    let (_, deliveries) = submit(
        &gl.node,
        TOK_STTTT,
        &[XA_LOST],
        "V/v thử thư bị trả lại",
        json!({}),
    )
    .await;
    let id = deliveries[0];
    let d = gl.wait_delivery(id, DeliveryState::Failed).await;
    let attempts = gl.store().attempts(id).await.unwrap();
    assert!(
        attempts
            .iter()
            .any(|a| a.reply.as_deref().is_some_and(|r| r.starts_with("250"))),
        "the accepted attempt stays in the history: {attempts:?}"
    );
    let last = d.last_error.clone().unwrap();
    assert_eq!(last.code, "MAIL_BOUNCED");
    assert!(
        last.message.contains("5.1.1") || last.message.contains(UNKNOWN),
        "the reason: {}",
        last.message
    );
    let log = gl.wait_mail_log(1).await;
    assert_eq!(log[0].outcome, "bounce");
    assert_eq!(log[0].delivery_ref, Some(id));
    // Sở TT&TT's notification address is told, with the reason.
    let got = m
        .wait_messages(VANTHU.address, "INBOX", 1, Duration::from_secs(60))
        .await;
    let notice = read_mail(&got[0].1);
    assert!(notice.text.contains("MAIL_BOUNCED"), "{notice:?}");
    // The bounce was moved out of the inbox.
    m.wait_messages(LIENTHONG.address, "Processed", 1, Duration::from_secs(60))
        .await;
    assert!(m.messages(LIENTHONG.address, "INBOX").await.is_empty());
    gl.shutdown().await;
}

/// A signed `.edxml` mailed in by an outside agency is ingested as from a peer (sender bound by
/// its signature) and its receipt (01, signed by the recipient) goes back by mail to the
/// sender's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_edxml_mail_is_ingested_and_its_receipt_goes_back_by_mail() {
    let m = MailServers::start();
    let gl = Running::start(|dir| {
        gialai_text(
            dir,
            &m,
            &Bridge {
                account: LIENTHONG.address,
                extra: "",
            },
        )
    })
    .await;
    let (package, document_id) = nghean_package(77, "V/v phối hợp tổ chức hội nghị trực tuyến");
    let raw = mime(
        &[
            (
                "From",
                &format!("Văn thư UBND xã Ia Kha <{}>", XA_IAKHA.address),
            ),
            ("To", LIENTHONG.address),
            ("Subject", "Gửi văn bản điện tử 77/UBND-VX"),
            ("Message-ID", "<gui-77@iakha.gialai.gov.vn>"),
        ],
        "Kính gửi Sở Thông tin và Truyền thông.",
        &[("77-UBND-VX.edxml", "application/xml", &package)],
    );
    smtp_send(&m, XA_IAKHA.address, LIENTHONG.address, &raw).await;
    let log = gl.wait_mail_log(1).await;
    assert_eq!(log[0].outcome, "document", "{log:?}");
    let message_id = log[0].message_ref.unwrap();
    let info = gl.store().message(message_id).await.unwrap();
    assert_eq!(
        (info.sender.as_str(), info.document_id.as_str()),
        (NGHEAN, document_id.as_str())
    );
    let inbox = gl.store().inbox_item(STTTT, message_id).await.unwrap();
    assert_eq!(inbox.message.id, message_id);

    // The 01 goes back by mail (no node serves Nghệ An here) to the mail's From.
    let got = m
        .wait_messages(XA_IAKHA.address, "INBOX", 1, Duration::from_secs(60))
        .await;
    let mail = read_mail(&got[0].1);
    let (_, _, status) = mail.attachment_ending(".edxml");
    let opts = edxml::ReadOptions {
        limits: edxml::xml::Limits::default(),
        strict: false,
    };
    let Package::Status(s) = edxml::read(status, &opts).unwrap() else {
        panic!("the receipt is a status package");
    };
    assert_eq!(s.status_code.number(), 1);
    assert_eq!(s.from.organ_id, OrganId::parse_strict(STTTT).unwrap());
    assert_eq!(s.response_for.effective_document_id(), document_id);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bao-nhan.edxml");
    std::fs::write(&file, status).unwrap();
    let (ok, line) = lienthong_verify(&file, &[]);
    assert!(ok, "the receipt verifies: {line}");
    m.wait_messages(LIENTHONG.address, "Processed", 1, Duration::from_secs(60))
        .await;
    gl.shutdown().await;
}

/// A mail from an unknown address is quarantined with exactly one Vietnamese reply (a second
/// one within the hour gets none); two nodes that quarantine each other's mail do not loop: the
/// reply is `Auto-Submitted: auto-replied` and the other node never answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantine_replies_once_and_two_nodes_do_not_loop() {
    let m = MailServers::start();
    let bridge = Bridge {
        account: LIENTHONG.address,
        extra: "",
    };
    let a = Running::start(|dir| gialai_text(dir, &m, &bridge)).await;
    // A second bridge, reading and sending as xa-iakha@.
    let other = Bridge {
        account: XA_IAKHA.address,
        extra: "",
    };
    let b = Running::start(|dir| gialai_text(dir, &m, &other)).await;

    let hello = |n: u32| {
        mime(
            &[
                ("From", XA_IAKHA.address),
                ("To", LIENTHONG.address),
                ("Subject", "Xin hỏi thủ tục gửi văn bản"),
                ("Message-ID", &format!("<hoi-{n}@iakha.gialai.gov.vn>")),
            ],
            "Xin chào, cho tôi hỏi cách gửi văn bản tới Sở.",
            &[],
        )
    };
    smtp_send(&m, XA_IAKHA.address, LIENTHONG.address, &hello(1)).await;
    let log = a.wait_mail_log(1).await;
    assert_eq!(log[0].outcome, "quarantined");
    assert!(log[0].replied, "{log:?}");
    // B takes A's reply in: quarantined, never answered (it is an automatic reply).
    let blog = b.wait_mail_log(1).await;
    assert_eq!(blog[0].outcome, "quarantined", "{blog:?}");
    assert!(
        !blog[0].replied,
        "an automatic reply is never answered: {blog:?}"
    );
    let quarantined = m
        .wait_messages(XA_IAKHA.address, "Quarantine", 1, Duration::from_secs(60))
        .await;
    let reply = read_mail(&quarantined[0].1);
    assert_eq!(reply.header("auto-submitted"), Some("auto-replied"));
    assert_eq!(
        reply.header("in-reply-to"),
        Some("<hoi-1@iakha.gialai.gov.vn>")
    );
    assert!(
        reply
            .text
            .chars()
            .any(|c| "ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ".contains(c)),
        "the reply is Vietnamese: {}",
        reply.text
    );

    // A second mail within the hour: quarantined, no second reply.
    smtp_send(&m, XA_IAKHA.address, LIENTHONG.address, &hello(2)).await;
    let log = a.wait_mail_log(2).await;
    assert_eq!(log[0].outcome, "quarantined");
    assert!(
        !log[0].replied,
        "at most one reply per sender per interval: {log:?}"
    );
    m.wait_messages(LIENTHONG.address, "Quarantine", 2, Duration::from_secs(60))
        .await;
    // Exactly one mail went from A to B, and none from B to A.
    let envelopes = m.smtp_envelopes();
    let a_to_b = envelopes
        .iter()
        .filter(|(from, to)| from == LIENTHONG.address && to == &vec![XA_IAKHA.address.to_owned()])
        .count();
    assert_eq!(a_to_b, 1, "{envelopes:?}");
    // (The two test mails went from xa-iakha@ to lienthong@ through the relay; B sent nothing.)
    let b_sent = envelopes
        .iter()
        .filter(|(from, _)| from == XA_IAKHA.address)
        .count();
    assert_eq!(b_sent, 2, "{envelopes:?}");
    a.shutdown().await;
    b.shutdown().await;
}

/// Hostile mail is quarantined unread: ten thousand MIME parts, a tree 60 deep, a mail over the
/// size limit (judged by the server's size, from its header alone). Delivered with a null
/// return path (LMTP `MAIL FROM:<>`), so none of them is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_mails_are_quarantined() {
    let m = MailServers::start();
    let bridge = Bridge {
        account: LIENTHONG.address,
        extra: "\n[mail.limits]\nmax_mb = 1\n",
    };
    let gl = Running::start(|dir| gialai_text(dir, &m, &bridge)).await;

    let head = |subject: &str, ctype: &str| {
        format!(
            "From: ke-la@example.com\r\nTo: {}\r\nSubject: {subject}\r\nMessage-ID: <{}@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: {ctype}\r\n\r\n",
            LIENTHONG.address,
            subject.replace(' ', "-")
        )
    };
    // 10,000 parts.
    let mut many = head("many parts", "multipart/mixed; boundary=\"b\"");
    for i in 0..10_000 {
        many.push_str(&format!(
            "--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n"
        ));
    }
    many.push_str("--b--\r\n");
    // 60 levels of multipart.
    let mut deep = head("deep tree", "multipart/mixed; boundary=\"d0\"");
    for i in 1..60 {
        deep.push_str(&format!(
            "--d{}\r\nContent-Type: multipart/mixed; boundary=\"d{i}\"\r\n\r\n",
            i - 1
        ));
    }
    deep.push_str("--d59\r\nContent-Type: text/plain\r\n\r\nday\r\n--d59--\r\n");
    for i in (0..59).rev() {
        deep.push_str(&format!("--d{i}--\r\n"));
    }
    // 2 MiB against a limit of 1 MiB.
    let mut large = head("too large", "text/plain");
    for _ in 0..(2 * 1024 * 1024 / 64) {
        large.push_str(&"x".repeat(62));
        large.push_str("\r\n");
    }
    for raw in [&many, &deep, &large] {
        m.deliver(LIENTHONG.address, raw.as_bytes()).await;
    }
    let log = gl.wait_mail_log(3).await;
    let mut codes: Vec<(String, String)> = log
        .iter()
        .map(|r| (r.subject.clone(), r.code.clone().unwrap_or_default()))
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        vec![
            ("deep tree".to_owned(), "MAIL_TOO_DEEP".to_owned()),
            ("many parts".to_owned(), "MAIL_TOO_MANY_PARTS".to_owned()),
            ("too large".to_owned(), "MAIL_TOO_LARGE".to_owned()),
        ],
        "{log:?}"
    );
    assert!(log.iter().all(|r| r.outcome == "quarantined" && !r.replied));
    m.wait_messages(LIENTHONG.address, "Quarantine", 3, Duration::from_secs(60))
        .await;
    assert!(m.messages(LIENTHONG.address, "INBOX").await.is_empty());
    assert!(m.smtp_envelopes().is_empty(), "nothing was answered");
    let text = metrics(&gl.node).await;
    for line in [
        "lienthong_mail_taken_in_total{outcome=\"quarantined\"} 3",
        "lienthong_mail_quarantined_total{code=\"MAIL_TOO_DEEP\"} 1",
        "lienthong_mail_quarantined_total{code=\"MAIL_TOO_LARGE\"} 1",
        "lienthong_mail_quarantined_total{code=\"MAIL_TOO_MANY_PARTS\"} 1",
        "lienthong_mail_replies_sent_total 0",
    ] {
        assert!(has_line(&text, line), "{line} in\n{text}");
    }
    gl.shutdown().await;
}

/// A mail with a PDF from Sở TT&TT's registered mailbox becomes a draft of Sở TT&TT, prefilled
/// from the subject; nothing is numbered or signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_from_a_registered_address_becomes_a_draft() {
    let m = MailServers::start();
    let bridge = Bridge {
        account: LIENTHONG.address,
        extra: "",
    };
    let gl = Running::start(|dir| gialai_text(dir, &m, &bridge)).await;
    let raw = mime(
        &[
            ("From", &format!("Văn thư Sở TT&TT <{}>", SO_TTTT.address)),
            ("To", LIENTHONG.address),
            (
                "Subject",
                "Số 12/STTTT-VP: V/v báo cáo chuyển đổi số tháng 11",
            ),
            ("Message-ID", "<du-thao-12@stttt.gialai.gov.vn>"),
        ],
        "Kính gửi văn thư: đề nghị phát hành văn bản đính kèm.",
        &[("bao-cao.pdf", "application/pdf", nodes::PDF)],
    );
    smtp_send(&m, SO_TTTT.address, LIENTHONG.address, &raw).await;
    let log = gl.wait_mail_log(1).await;
    assert_eq!(log[0].outcome, "draft", "{log:?}");
    let drafts = gl
        .store()
        .list_drafts(STTTT, &DraftFilter::default())
        .await
        .unwrap();
    assert_eq!(drafts.len(), 1);
    let d = &drafts[0];
    assert_eq!(d.code_number.as_deref(), Some("12"));
    assert_eq!(d.code_notation.as_deref(), Some("STTTT-VP"));
    assert!(d.summary.contains("báo cáo chuyển đổi số"), "{d:?}");
    assert_eq!(d.files.len(), 1);
    let file = gl
        .store()
        .draft_file(STTTT, d.id, d.files[0].index)
        .await
        .unwrap();
    assert_eq!(file.bytes, nodes::PDF);
    assert_eq!(log[0].draft_ref, Some(d.id));
    // Nothing was signed or sent for it.
    assert!(
        m.smtp_envelopes()
            .iter()
            .all(|(from, _)| from != LIENTHONG.address)
    );
    m.wait_messages(LIENTHONG.address, "Processed", 1, Duration::from_secs(60))
        .await;
    gl.shutdown().await;
}

/// A mail left in the folder when its UIDVALIDITY changes comes back with a new UID: the
/// reader recognises it by its Message-ID and only moves it — no second draft. (Dovecot gives a
/// Maildir a new UIDVALIDITY when its `dovecot-uidlist` and index are gone, as after a restore.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_met_again_under_a_new_uidvalidity_is_not_taken_twice() {
    let m = MailServers::start();
    let bridge = Bridge {
        account: LIENTHONG.address,
        extra: "",
    };
    // One store for both runs of the node.
    let kept = tempfile::tempdir().unwrap();
    let kept_url = common::store::store_url_in(kept.path());
    let text = |_: &Path| gialai_text_on(&kept_url, &m, &bridge);
    let raw = mime(
        &[
            ("From", &format!("Văn thư Sở TT&TT <{}>", SO_TTTT.address)),
            ("To", LIENTHONG.address),
            ("Subject", "Số 13/STTTT-VP: V/v kế hoạch tháng 12"),
            ("Message-ID", "<du-thao-13@stttt.gialai.gov.vn>"),
        ],
        "Đề nghị phát hành.",
        &[("ke-hoach.pdf", "application/pdf", nodes::PDF)],
    );
    m.deliver(LIENTHONG.address, &raw).await;
    let gl = Running::start(text).await;
    assert_eq!(gl.wait_mail_log(1).await[0].outcome, "draft");
    m.wait_messages(LIENTHONG.address, "Processed", 1, Duration::from_secs(60))
        .await;
    let before = gl
        .store()
        .mail_checkpoint(&gl.mail_log().await[0].mailbox)
        .await
        .unwrap()
        .unwrap();
    gl.shutdown().await;

    // The folder is renumbered (a new UIDVALIDITY: Dovecot's is the time in seconds) and the
    // same mail is in it again, as if it had been left there by a crash before its move.
    let uidlist = m
        .dir
        .join("mail")
        .join(LIENTHONG.address)
        .join("Maildir/dovecot-uidlist");
    // Its UID list and its index (which also hold the UIDVALIDITY): gone, as after a restore.
    let maildir = uidlist.parent().unwrap();
    for entry in std::fs::read_dir(maildir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "dovecot-uidlist" || name.starts_with("dovecot.index") {
            std::fs::remove_file(&path).unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    m.deliver(LIENTHONG.address, &raw).await;

    let gl = Running::start(text).await;
    m.wait_messages(LIENTHONG.address, "Processed", 2, Duration::from_secs(60))
        .await;
    assert!(m.messages(LIENTHONG.address, "INBOX").await.is_empty());
    let log = gl.mail_log().await;
    assert_eq!(log.len(), 1, "taken in once: {log:?}");
    let drafts = gl
        .store()
        .list_drafts(STTTT, &DraftFilter::default())
        .await
        .unwrap();
    assert_eq!(drafts.len(), 1, "one draft: {drafts:?}");
    // The folder really was renumbered (else this test proves nothing).
    let mut session_state = None;
    for _ in 0..50 {
        let folders = m.folders(LIENTHONG.address).await;
        assert!(folders.iter().any(|f| f == "INBOX"));
        let v = std::fs::read_to_string(&uidlist).unwrap_or_default();
        if let Some(first) = v.lines().next() {
            session_state = Some(first.to_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let header = session_state.expect("Dovecot wrote a new uidlist");
    let validity: u32 = header
        .split_whitespace()
        .find_map(|f| f.strip_prefix('V'))
        .and_then(|v| v.parse().ok())
        .expect("a UIDVALIDITY in the uidlist header");
    assert_ne!(validity, before.uidvalidity, "the UIDVALIDITY changed");
    gl.shutdown().await;
}

/// Sở TT&TT's notification address is told, in Vietnamese, of a document that arrived for it,
/// of a delivery of its that failed, and of a status about a document it sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_arrive() {
    let m = MailServers::start();
    let notify = format!(
        "\n[[mail.notify]]\nagency = \"{STTTT}\"\nto = [\"{}\"]\nevents = [\"arrival\", \"failed\", \"status\"]\n",
        VANTHU.address
    );
    let bridge = Bridge {
        account: LIENTHONG.address,
        extra: &notify,
    };
    let gl = Running::start(|dir| gialai_text(dir, &m, &bridge)).await;
    // arrival: Sở Nội vụ sends to Sở TT&TT (a local delivery).
    let (_, d) = submit(
        &gl.node,
        TOK_SONV,
        &[STTTT],
        "V/v cử cán bộ tham dự tập huấn",
        json!({}),
    )
    .await;
    gl.wait_delivery(d[0], DeliveryState::Delivered).await;
    let got = m
        .wait_messages(VANTHU.address, "INBOX", 1, Duration::from_secs(60))
        .await;
    let arrival = read_mail(&got[0].1);
    assert!(
        arrival.subject.contains("cử cán bộ tham dự tập huấn")
            || arrival.text.contains("cử cán bộ tham dự tập huấn"),
        "{arrival:?}"
    );
    assert_eq!(arrival.header("auto-submitted"), Some("auto-generated"));

    // failed: Sở TT&TT sends to a mailbox that does not exist (550).
    let (_, d) = submit(
        &gl.node,
        TOK_STTTT,
        &[XA_LOST],
        "V/v gửi nhầm địa chỉ",
        json!({}),
    )
    .await;
    gl.wait_delivery(d[0], DeliveryState::Failed).await;
    let got = m
        .wait_messages(VANTHU.address, "INBOX", 2, Duration::from_secs(60))
        .await;
    let failed = read_mail(&got[1].1);
    assert!(
        failed.text.contains("MAIL_REFUSED") || failed.text.contains("550"),
        "the failure's reason: {failed:?}"
    );

    // status: Sở TT&TT sends to Sở Nội vụ, whose clerk registers it (03).
    let (_, d) = submit(
        &gl.node,
        TOK_STTTT,
        &[SONV],
        "V/v báo cáo số liệu quý IV",
        json!({}),
    )
    .await;
    gl.wait_delivery(d[0], DeliveryState::Delivered).await;
    let inbox = gl
        .store()
        .list_inbox(SONV, &Default::default())
        .await
        .unwrap();
    let item = inbox
        .iter()
        .find(|i| i.message.subject.as_deref() == Some("V/v báo cáo số liệu quý IV"))
        .unwrap();
    let r = ApiClient::new()
        .post(
            gl.node
                .url(&format!("/api/v1/inbox/{}/status", item.message.id)),
        )
        .bearer_auth(TOK_SONV)
        .json(&json!({"code": "03", "description": "Đã vào sổ"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
    let got = m
        .wait_messages(VANTHU.address, "INBOX", 3, Duration::from_secs(60))
        .await;
    let status = read_mail(&got[2].1);
    assert!(
        status.text.contains("Sở Nội vụ"),
        "the status names its reporter: {status:?}"
    );
    // Each notification is in the audit chain.
    let records = gl
        .store()
        .audit_records(&lienthong::store::AuditQuery {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let sent: Vec<&str> = records
        .iter()
        .filter(|r| r.action == "mail.send")
        .map(|r| r.action.as_str())
        .collect();
    assert_eq!(sent.len(), 3, "{sent:?}");
    gl.shutdown().await;
}

// --- crashes ---------------------------------------------------------------------------------

/// How many signed mails the crash test puts in the mailbox.
const CRASH_MAILS: u32 = 200;

/// A `lienthong serve` process, its log in a file.
struct Serve {
    config: std::path::PathBuf,
    log: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl Serve {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Starts it, `fail_at` armed if given; returns once it listens (or died at its fault).
    fn start(&mut self, fail_at: Option<&str>) {
        use std::os::unix::process::ExitStatusExt as _;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let listening = self.log_text().matches("listening on").count();
        let faults = self.log_text().matches("fault point ").count();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lienthong"));
        cmd.arg("serve")
            .arg("--config")
            .arg(&self.config)
            .env_remove(lienthong::fault::VAR)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(f) = fail_at {
            cmd.env(lienthong::fault::VAR, f);
        }
        self.child = Some(cmd.spawn().unwrap());
        let t0 = std::time::Instant::now();
        while self.log_text().matches("listening on").count() <= listening {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let text = self.log_text();
                if fail_at.is_some()
                    && status.signal() == Some(9)
                    && text.matches("fault point ").count() > faults
                {
                    return;
                }
                panic!("lienthong serve exited at start ({status}):\n{text}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "no start:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the process killed itself at `point`.
    fn wait_fault(&mut self, point: &str) {
        use std::os::unix::process::ExitStatusExt as _;
        let mut child = self.child.take().expect("running");
        let t0 = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "never reached {point}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.signal(), Some(9), "{status}");
        assert!(
            self.log_text()
                .contains(&format!("fault point {point}: killing the process")),
            "not killed at {point}"
        );
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Two hundred signed `.edxml` mails in the mailbox; the node is killed (SIGKILL) at each of
/// the mail fault points — a package committed before its mail is taken in, a mail taken in
/// before its move, a receipt's mail accepted by the relay before `delivered` — and at random
/// moments, and restarted each time. At the end every mail is taken in exactly once: one
/// received document each, one receipt each (delivered by mail, with one `Message-ID` however
/// often it went out), every mail in the processed folder and none left, and the audit chain
/// verifies. The random moments come from a seed printed first (`LIENTHONG_CRASH_SEED=N`
/// repeats them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_taking_mail_in_each_mail_is_taken_once() {
    let m = MailServers::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gialai.toml");
    let bridge = Bridge {
        account: LIENTHONG.address,
        extra: "",
    };
    let store_url = common::store::store_url_in(dir.path());
    std::fs::write(&config, gialai_text_on(&store_url, &m, &bridge)).unwrap();
    let mut documents = Vec::new();
    let mut mails = Vec::new();
    for i in 0..CRASH_MAILS {
        let (package, document_id) =
            nghean_package(1000 + i, &format!("V/v văn bản thử nghiệm số {i}"));
        mails.push(mime(
            &[
                ("From", XA_IAKHA.address),
                ("To", LIENTHONG.address),
                ("Subject", &format!("Văn bản {i}")),
                ("Message-ID", &format!("<vb-{i}@iakha.gialai.gov.vn>")),
            ],
            "Gửi văn bản điện tử.",
            &[(&format!("vb-{i}.edxml"), "application/xml", &package)],
        ));
        documents.push(document_id);
    }
    let mut mails = mails.into_iter();
    let seed = std::env::var("LIENTHONG_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("LIENTHONG_CRASH_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut node = Serve {
        config,
        log: dir.path().join("node.log"),
        child: None,
    };
    // A quarter of the mails, then a kill at each mail fault point.
    for raw in mails.by_ref().take(CRASH_MAILS as usize / 4) {
        m.deliver(LIENTHONG.address, &raw).await;
    }
    for point in ["mail-ingested", "mail-taken", "mail-relayed"] {
        let armed = format!("{point}:{}", rng.u32(1..=8));
        node.start(Some(&armed));
        node.wait_fault(point);
    }
    // The rest in five batches, each followed by a kill at a random moment while the node is
    // taking them in (how far it got is printed, not judged).
    let batch = (CRASH_MAILS as usize * 3 / 4).div_ceil(5);
    for round in 0..5 {
        for raw in mails.by_ref().take(batch) {
            m.deliver(LIENTHONG.address, &raw).await;
        }
        node.start(None);
        tokio::time::sleep(Duration::from_millis(rng.u64(20..=600))).await;
        node.kill();
        let left = m.messages(LIENTHONG.address, "INBOX").await.len();
        eprintln!("kill {round}: {left} mails left in the inbox");
    }
    node.start(None);
    let n = CRASH_MAILS as usize;
    let processed = m
        .wait_messages(LIENTHONG.address, "Processed", n, Duration::from_secs(600))
        .await;
    // Receipts go out after their mail is taken in: wait for one per document.
    let receipts = wait_distinct_receipts(&m, n).await;
    node.kill();

    assert_eq!(processed.len(), n, "each mail moved once");
    assert!(m.messages(LIENTHONG.address, "INBOX").await.is_empty());
    assert_eq!(receipts, n);
    let store = common::store::open(&store_url).await;
    for id in &documents {
        let found = store
            .find_documents(lienthong::store::Direction::In, NGHEAN, id)
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{id} stored once");
    }
    let log = store
        .list_mail_log(&MailLogFilter {
            outcome: None,
            page: lienthong::store::Page {
                limit: 1000,
                before: None,
            },
        })
        .await
        .unwrap();
    assert_eq!(log.len(), n, "each mail taken in once");
    assert!(log.iter().all(|r| r.outcome == "document"), "{log:?}");
    let mut uids: Vec<u32> = log.iter().map(|r| r.uid).collect();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), n);
    let deliveries = store
        .list_deliveries(&lienthong::store::DeliveryFilter {
            page: lienthong::store::Page {
                limit: 1000,
                before: None,
            },
            ..Default::default()
        })
        .await
        .unwrap();
    let receipts: Vec<_> = deliveries
        .iter()
        .filter(|d| d.recipient == NGHEAN)
        .collect();
    assert_eq!(receipts.len(), n, "one receipt per document");
    assert!(
        receipts.iter().all(|d| d.state == DeliveryState::Delivered),
        "{receipts:?}"
    );
    let verdict = store.verify_audit().await.unwrap();
    assert!(verdict.is_ok(), "the audit chain verifies: {verdict:?}");
}

/// Waits until xa-iakha@ holds receipts for `n` distinct deliveries (`Message-ID`s): a receipt
/// mail sent again after a crash carries the same one. Returns how many distinct there are.
async fn wait_distinct_receipts(m: &MailServers, n: usize) -> usize {
    let t0 = std::time::Instant::now();
    loop {
        let got = m.messages(XA_IAKHA.address, "INBOX").await;
        let ids: std::collections::HashSet<String> = got
            .iter()
            .filter_map(|(_, raw)| {
                let text = String::from_utf8_lossy(raw);
                text.lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                    .map(|l| l[11..].trim().to_owned())
            })
            .collect();
        if ids.len() >= n {
            return ids.len();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "{} distinct receipts of {n}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// An agency whose signing certificate ends within 30 days: its `cert_expiry` address is told
/// once, in Vietnamese, naming the certificate; the mail is in the audit chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_about_to_expire_is_notified() {
    let m = MailServers::start();
    let certs = tempfile::tempdir().unwrap();
    // `openssl x509 -days 30` under the test issuing CA.
    let (key, cert) =
        nodes::issue_cert_without_code(certs.path(), "sap-het-han", "Văn phòng UBND tỉnh Gia Lai");
    let bridge = Bridge {
        account: LIENTHONG.address,
        extra: "",
    };
    let gl = Running::start(|dir| {
        gialai_text(dir, &m, &bridge)
            + &format!(
                "\n[[agency]]\ncode = \"{}\"\nname = \"Ủy ban nhân dân tỉnh Gia Lai\"\nkey = \"{}\"\ncert = \"{}\"\nchain = \"{}\"\n",
                nodes::UBND_GL,
                key.display(),
                cert.display(),
                common::pki("chain.pem").display()
            )
            + &format!(
                "\n[[mail.notify]]\nagency = \"{}\"\nto = [\"{}\"]\nevents = [\"cert_expiry\"]\n",
                nodes::UBND_GL,
                SO_TTTT.address
            )
    })
    .await;
    let watch = lienthong::mail::notify::spawn_cert_expiry_watch(
        gl.node.node.clone(),
        Duration::from_secs(3600),
        gl.stop.subscribe(),
    );
    let got = m
        .wait_messages(SO_TTTT.address, "INBOX", 1, Duration::from_secs(60))
        .await;
    assert_eq!(
        got.len(),
        1,
        "one notice for the one certificate that ends soon"
    );
    let notice = read_mail(&got[0].1);
    assert_eq!(notice.header("auto-submitted"), Some("auto-generated"));
    assert!(
        notice.text.contains("Văn phòng UBND tỉnh Gia Lai"),
        "the notice names the certificate: {notice:?}"
    );
    assert!(
        notice.subject.contains("chứng thư") || notice.text.contains("chứng thư"),
        "{notice:?}"
    );
    wait_for("the notice in the audit chain", || async {
        gl.store()
            .audit_records(&lienthong::store::AuditQuery {
                limit: 10_000,
                ..Default::default()
            })
            .await
            .unwrap()
            .iter()
            .any(|r| r.action == "mail.send" && r.detail.contains("notify.cert_expiry"))
    })
    .await;
    gl.shutdown().await;
    watch.await.unwrap();
}
