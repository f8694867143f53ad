//! The store's mail bridge tables (on the run's backend, `common::store`) (migration 0012): mailbox checkpoints and the
//! exactly-once rule of `take_mail`, each effect of a mail (a document's receipts as outgoing
//! statuses, a status, a draft, a bounce, the quarantine and its reply limit), drafts and their
//! approval inside a submission, `mark_relayed`, `record_mail_sent` — and that after all of it
//! the audit chain verifies and `verify_store` finds every row to be what its records say,
//! naming a row that was changed by hand.

mod common;

use lienthong::Code;
use lienthong::audit::AuditRecord;
use lienthong::audit::crosscheck::Entity;
use lienthong::store::AnyStore;
use lienthong::store::{
    AttemptOutcome, AuditQuery, DeliveryError, DeliveryState, Direction, DocumentMeta, DraftFile,
    DraftFilter, DraftState, IngestOutcome, Kind, Lease, MailCheckpoint, MailEffect, MailLogFilter,
    NewDelivery, NewDraft, NewIncoming, NewOutgoing, NewStatus, Numbering, Page, SentMail,
    SignedPackage, Store, TakeOutcome, TakenMail,
};
use serde_json::json;

use common::store::Raw;

const GIALAI_STTTT: &str = "000.00.05.H21";
const GIALAI_UBND: &str = "000.00.00.H21";
const GIALAI_SOYT: &str = "000.00.11.H21";
const NGHEAN_UBND: &str = "000.00.00.H41";
/// A commune without a node: its official mailbox.
const IAKHA: &str = "000.03.21.H21";
const IAKHA_MAIL: &str = "mail:xa-iakha@gialai.gov.vn";

const MAILBOX: &str = "lienthong@mail.gialai.gov.vn/INBOX";
const ACTOR: &str = "mail:lienthong@mail.gialai.gov.vn/INBOX";
const VALIDITY: u32 = 1_764_000_000;

/// 2026-11-25 10:00:00 UTC.
const NOW: i64 = 1_795_600_800_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

struct Db {
    _dir: Option<tempfile::TempDir>,
    store: AnyStore,
    /// A connection that does not enforce foreign keys (someone with the file need not).
    raw: Raw,
}

async fn db() -> Db {
    let fresh = common::store::fresh_db().await;
    let raw = Raw::connect_unchecked(&fresh.url).await;
    Db {
        _dir: fresh.dir,
        store: fresh.store,
        raw,
    }
}

/// Every table a write may touch.
const TABLES: [&str; 13] = [
    "messages",
    "inbox",
    "deliveries",
    "attempts",
    "statuses",
    "number_sequences",
    "idempotency_keys",
    "audit",
    "mail_checkpoints",
    "mail_log",
    "drafts",
    "draft_files",
    "mail_replies",
];

impl Db {
    async fn count(&self, table: &str) -> i64 {
        self.raw.count(table).await
    }

    async fn counts(&self) -> Vec<i64> {
        let mut out = Vec::new();
        for t in TABLES {
            out.push(self.count(t).await);
        }
        out
    }

    async fn audit(&self) -> Vec<AuditRecord> {
        self.store
            .audit_records(&AuditQuery::default())
            .await
            .unwrap()
    }

    /// The records appended since there were `before`.
    async fn records_since(&self, before: usize) -> Vec<AuditRecord> {
        self.audit().await.split_off(before)
    }

    /// The chain verifies and every row is what the chain says.
    async fn clean(&self) {
        self.store.verify_audit().await.unwrap().unwrap();
        let report = self.store.verify_store().await.unwrap().unwrap();
        assert!(report.is_clean(), "{:#?}", report.differences);
    }

    /// Runs `f` (which must fail) and checks nothing at all was written.
    async fn nothing_written<T: std::fmt::Debug>(
        &self,
        f: impl AsyncFnOnce() -> lienthong::Result<T>,
    ) -> lienthong::Error {
        let before = self.counts().await;
        let checkpoint = self.store.mail_checkpoint(MAILBOX).await.unwrap();
        let e = f().await.expect_err("the operation should be refused");
        assert_eq!(
            before,
            self.counts().await,
            "refused ({e}) but rows changed"
        );
        assert_eq!(
            checkpoint,
            self.store.mail_checkpoint(MAILBOX).await.unwrap(),
            "refused ({e}) but the checkpoint moved"
        );
        e
    }

    async fn take(&self, mail: TakenMail, at: i64) -> TakeOutcome {
        self.store.take_mail(mail, HOUR, at).await.unwrap()
    }
}

fn package(text: &str) -> SignedPackage {
    SignedPackage {
        bytes: format!("<edXML>{text}</edXML>").into_bytes(),
        signer_subject: Some("CN=Sở Thông tin và Truyền thông tỉnh Gia Lai".into()),
        signer_fingerprint: Some("ab".repeat(32)),
        header_json: json!({ "subject": text }).to_string(),
        signed_content: None,
        channel: None,
    }
}

fn meta(sender: &str, number: &str, notation: &str) -> DocumentMeta {
    DocumentMeta {
        sender: sender.into(),
        document_id: format!("{sender},2026/11/25,{number}/{notation}"),
        business_type: 0,
        code_number: number.into(),
        code_notation: notation.into(),
        code_year: 2026,
        subject: "V/v thử nghiệm cầu nối thư điện tử".into(),
    }
}

fn to(recipient: &str, route: &str) -> NewDelivery {
    NewDelivery {
        recipient: recipient.into(),
        route: route.into(),
    }
}

fn outgoing(number: &str, recipients: &[(&str, &str)]) -> NewOutgoing {
    NewOutgoing {
        document: meta(GIALAI_STTTT, number, "STTTT-CĐS"),
        package: package(&format!("số {number}")),
        deliveries: recipients.iter().map(|(r, route)| to(r, route)).collect(),
        idempotency_key: None,
        request: None,
        actor: format!("clerk:{GIALAI_STTTT}:lan"),
        numbering: Numbering::Given,
        from_draft: None,
    }
}

/// A document from Nghệ An for two agencies of this node, as a mail brought it.
fn incoming(number: &str) -> NewIncoming {
    NewIncoming {
        revocation: Vec::new(),
        document: meta(NGHEAN_UBND, number, "UBND-VX"),
        package: package(&format!("công văn {number} của Nghệ An")),
        local_recipients: vec![GIALAI_UBND.into(), GIALAI_SOYT.into()],
        peer: None,
        receipts: [GIALAI_UBND, GIALAI_SOYT]
            .iter()
            .map(|r| format!("receipt of {number} from {r}").into_bytes())
            .collect(),
        actor: ACTOR.into(),
        received_sha256: None,
    }
}

async fn ingested(db: &Db, new: NewIncoming, at: i64) -> i64 {
    match db.store.ingest_incoming(new, at).await.unwrap() {
        IngestOutcome::Inserted { message_id } => message_id,
        other => panic!("{other:?}"),
    }
}

/// `reporter`'s 01 on `doc`, going back by `route`.
fn receipt(doc: &DocumentMeta, reporter: &str, at: i64, route: &str) -> NewStatus {
    NewStatus {
        direction: Direction::Out,
        document_sender: doc.sender.clone(),
        document_id: doc.document_id.clone(),
        reporter: reporter.into(),
        code: 1,
        description: "Đã đến".into(),
        reported_at: at,
        package: package(&format!("01 from {reporter} at {at}")),
        deliveries: vec![to(&doc.sender, route)],
        peer: None,
        actor: ACTOR.into(),
        revocation: Vec::new(),
        on_business_type: None,
    }
}

fn mail(uid: u32, effect: MailEffect) -> TakenMail {
    TakenMail {
        mailbox: MAILBOX.into(),
        uidvalidity: VALIDITY,
        uid,
        return_path: "van-thu@nghean.gov.vn".into(),
        from: "van-thu@nghean.gov.vn".into(),
        subject: format!("[Văn bản điện tử] thư số {uid}"),
        message_id: Some(format!("{uid}.mail@nghean.gov.vn")),
        size: 4096 + u64::from(uid),
        effect,
        actor: ACTOR.into(),
    }
}

fn quarantined(reply_to: Option<&str>) -> MailEffect {
    MailEffect::Quarantined {
        code: "MAIL_NOT_UNDERSTOOD".into(),
        reason: "no signed package, no registered sender".into(),
        reply_to: reply_to.map(Into::into),
    }
}

fn pdf(name: &str, text: &str) -> DraftFile {
    DraftFile {
        name: name.into(),
        content_type: "application/pdf".into(),
        bytes: format!("%PDF-1.7\n{text}\n%%EOF\n").into_bytes(),
    }
}

fn draft_of(agency: &str, summary: &str, files: Vec<DraftFile>) -> MailEffect {
    MailEffect::Draft(NewDraft {
        agency: agency.into(),
        code_number: Some("12".into()),
        code_notation: Some("UBND-VP".into()),
        summary: summary.into(),
        body: "Kính gửi Văn phòng,\r\nXin gửi dự thảo công văn.\r\n".into(),
        files,
    })
}

/// A mail from Sở Y tế's registered mailbox, with two files.
fn a_draft(summary: &str) -> MailEffect {
    draft_of(
        GIALAI_SOYT,
        summary,
        vec![
            pdf("Công văn 12.pdf", summary),
            DraftFile {
                name: "Phụ lục.docx".into(),
                content_type:
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document".into(),
                bytes: b"PK\x03\x04 phu luc".to_vec(),
            },
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// The checkpoint
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_checkpoint_moves_with_each_mail_and_a_mail_taken_before_is_refused() {
    let db = db().await;
    assert_eq!(db.store.mail_checkpoint(MAILBOX).await.unwrap(), None);

    let first = db.take(mail(5, quarantined(None)), NOW).await;
    assert_eq!(
        db.store.mail_checkpoint(MAILBOX).await.unwrap(),
        Some(MailCheckpoint {
            uidvalidity: VALIDITY,
            last_uid: 5
        })
    );
    let record = db.audit().await.pop().unwrap();
    assert_eq!(
        (
            record.action.as_str(),
            record.entity_kind.as_str(),
            record.actor.as_str()
        ),
        ("mail.take", "mail", ACTOR)
    );
    assert_eq!(record.entity_id, first.log_id.to_string());
    let detail: serde_json::Value = serde_json::from_str(&record.detail).unwrap();
    assert_eq!(
        (
            &detail["outcome"],
            &detail["mailbox"],
            &detail["uid"],
            &detail["code"]
        ),
        (
            &json!("quarantined"),
            &json!(MAILBOX),
            &json!(5),
            &json!("MAIL_NOT_UNDERSTOOD")
        )
    );

    // The same mail again, and an older one: taken in before, nothing written.
    for uid in [5, 4, 1] {
        let e = db
            .nothing_written(async || {
                db.store
                    .take_mail(mail(uid, quarantined(None)), HOUR, NOW + MINUTE)
                    .await
            })
            .await;
        assert_eq!(e.code(), Code::InvalidTransition, "{e}");
        assert!(e.to_string().contains("was taken in before"), "{e}");
    }
    // The next one moves it on; another mailbox has its own.
    db.take(mail(9, quarantined(None)), NOW + MINUTE).await;
    let other = TakenMail {
        mailbox: "lienthong@mail.gialai.gov.vn/Bounces".into(),
        ..mail(1, quarantined(None))
    };
    db.take(other, NOW + MINUTE).await;
    assert_eq!(
        db.store
            .mail_checkpoint(MAILBOX)
            .await
            .unwrap()
            .map(|c| c.last_uid),
        Some(9)
    );
    assert_eq!(
        db.store
            .mail_checkpoint("lienthong@mail.gialai.gov.vn/Bounces")
            .await
            .unwrap()
            .map(|c| c.last_uid),
        Some(1)
    );

    // The folder's UIDs were reassigned: the checkpoint starts again under the new UIDVALIDITY.
    let renumbered = |uid| TakenMail {
        uidvalidity: VALIDITY + 1,
        ..mail(uid, quarantined(None))
    };
    db.take(renumbered(2), NOW + 2 * MINUTE).await;
    assert_eq!(
        db.store.mail_checkpoint(MAILBOX).await.unwrap(),
        Some(MailCheckpoint {
            uidvalidity: VALIDITY + 1,
            last_uid: 2
        })
    );
    let e = db
        .nothing_written(async || db.store.take_mail(renumbered(2), HOUR, NOW).await)
        .await;
    assert_eq!(e.code(), Code::InvalidTransition);
    // Back to the first UIDVALIDITY (a server that should never do this): the mails it had
    // are still known by the log.
    let e = db
        .nothing_written(async || {
            db.store
                .take_mail(mail(9, quarantined(None)), HOUR, NOW)
                .await
        })
        .await;
    assert_eq!(e.code(), Code::InvalidTransition);
    assert!(e.to_string().contains("of the log"), "{e}");

    let log = db
        .store
        .list_mail_log(&MailLogFilter::default())
        .await
        .unwrap();
    assert_eq!(
        log.iter()
            .map(|m| (m.uidvalidity, m.uid))
            .collect::<Vec<_>>(),
        [
            (VALIDITY + 1, 2),
            (VALIDITY, 1),
            (VALIDITY, 9),
            (VALIDITY, 5)
        ]
    );
    db.clean().await;
}

// ---------------------------------------------------------------------------------------------
// A document: its receipts
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_documents_receipts_are_outgoing_statuses_with_their_deliveries() {
    let db = db().await;
    let new = incoming("446");
    let doc = new.document.clone();
    let message_id = ingested(&db, new, NOW).await;
    let records = db.audit().await.len();

    let back_by_mail = "mail:van-thu@nghean.gov.vn";
    let receipts = vec![
        receipt(&doc, GIALAI_UBND, NOW, back_by_mail),
        receipt(&doc, GIALAI_SOYT, NOW, "peer:nghean"),
    ];
    // A receipt the order refuses after one it recorded: the whole mail is refused, the first
    // receipt's rows and record with it.
    let e = db
        .nothing_written(async || {
            db.store
                .take_mail(
                    mail(
                        1,
                        MailEffect::Document {
                            message_id,
                            duplicate: false,
                            receipts: vec![
                                receipts[0].clone(),
                                receipt(&doc, GIALAI_STTTT, NOW, back_by_mail),
                            ],
                        },
                    ),
                    HOUR,
                    NOW + 1,
                )
                .await
        })
        .await;
    assert_eq!(e.code(), Code::StatusNotFromRecipient, "{e}");
    assert_eq!(db.audit().await.len(), records);
    let out = db
        .take(
            mail(
                1,
                MailEffect::Document {
                    message_id,
                    duplicate: false,
                    receipts: receipts.clone(),
                },
            ),
            NOW + 1,
        )
        .await;
    assert!(!out.reply_allowed);
    assert_eq!(out.draft_id, None);
    assert_eq!(out.deliveries.len(), 2);

    // Each receipt as `record_status` records an outgoing status: history, package, delivery.
    let actions: Vec<String> = db
        .records_since(records)
        .await
        .into_iter()
        .map(|r| r.action)
        .collect();
    assert_eq!(actions, ["status.record", "status.record", "mail.take"]);
    let history = db
        .store
        .status_history(GIALAI_UBND, message_id)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (
            history[0].code,
            history[0].direction,
            history[0].reported_at
        ),
        (1, Direction::Out, NOW)
    );
    for (delivery_id, (reporter, route)) in out
        .deliveries
        .iter()
        .zip([(GIALAI_UBND, back_by_mail), (GIALAI_SOYT, "peer:nghean")])
    {
        let d = db.store.delivery(*delivery_id).await.unwrap();
        assert_eq!(
            (
                d.kind,
                d.recipient.as_str(),
                d.route.as_str(),
                d.state,
                d.sender.as_str()
            ),
            (
                Kind::Status,
                NGHEAN_UBND,
                route,
                DeliveryState::Queued,
                reporter
            )
        );
        let m = db.store.message(d.message_id).await.unwrap();
        assert_eq!(
            (m.direction, m.kind, m.status_code),
            (Direction::Out, Kind::Status, Some(1))
        );
    }
    // Received by mail as by a peer: the clerk's inbox shows nothing reported yet.
    let item = db.store.inbox_item(GIALAI_UBND, message_id).await.unwrap();
    assert_eq!(item.current_status, None);

    // The outbox hands them out like any status package.
    let claimed = db
        .store
        .claim_due(NOW + 2, 10, "outbox:w1", MINUTE)
        .await
        .unwrap();
    let mut ids: Vec<i64> = claimed.iter().map(|c| c.lease.delivery_id).collect();
    ids.sort_unstable();
    assert_eq!(ids, out.deliveries);
    assert!(claimed.iter().all(|c| c.kind == Kind::Status));

    let logged = db.store.mail_log_item(out.log_id).await.unwrap();
    assert_eq!(
        (
            logged.outcome.as_str(),
            logged.message_ref,
            logged.code.as_deref(),
            logged.replied
        ),
        ("document", Some(message_id), None, false)
    );
    assert_eq!(logged.subject, "[Văn bản điện tử] thư số 1");
    assert_eq!(logged.taken_at, NOW + 1);

    // The same document in another mail (a repeat, answered with the original receipts): the
    // receipts are recorded already and are skipped; so is a 01 signed again at another time.
    let again = db
        .take(
            mail(
                2,
                MailEffect::Document {
                    message_id,
                    duplicate: true,
                    receipts: vec![
                        receipts[0].clone(),
                        receipt(&doc, GIALAI_SOYT, NOW + 5 * MINUTE, "peer:nghean"),
                    ],
                },
            ),
            NOW + 5 * MINUTE,
        )
        .await;
    assert!(again.deliveries.is_empty());
    let last = db.audit().await.pop().unwrap();
    assert_eq!(last.action, "mail.take");
    let detail: serde_json::Value = serde_json::from_str(&last.detail).unwrap();
    assert_eq!(detail["duplicate"], json!(true));
    assert_eq!(detail["receipts"][0]["recorded"], json!(false));
    assert!(
        detail["receipts"][1]["skipped"]
            .as_str()
            .unwrap()
            .contains("already has its 01"),
        "{detail}"
    );
    assert_eq!(db.count("statuses").await, 2);
    db.clean().await;
}

#[tokio::test]
async fn a_receipt_the_history_excludes_is_skipped_and_a_receipt_of_a_stranger_refused() {
    let db = db().await;
    let new = incoming("447");
    let doc = new.document.clone();
    let original = ingested(&db, new, NOW).await;
    // The document came some other way; the clerk registered it (03).
    db.store
        .record_status(
            NewStatus {
                description: "Đã vào sổ".into(),
                code: 3,
                package: package("03 of 447"),
                ..receipt(&doc, GIALAI_UBND, NOW + MINUTE, "peer:nghean")
            },
            NOW + MINUTE,
        )
        .await
        .unwrap();
    // Then its revocation arrives by mail: a 01 dated after the 03 contradicts the history.
    let revocation = NewIncoming {
        document: DocumentMeta {
            business_type: 1,
            ..doc.clone()
        },
        package: package("thu hồi 447"),
        ..incoming("447")
    };
    let revoked = ingested(&db, revocation, NOW + 2 * MINUTE).await;
    assert_ne!(revoked, original);
    let statuses = db.count("statuses").await;
    let out = db
        .take(
            mail(
                1,
                MailEffect::Document {
                    message_id: revoked,
                    duplicate: false,
                    receipts: vec![
                        receipt(&doc, GIALAI_UBND, NOW + 2 * MINUTE, "peer:nghean"),
                        receipt(&doc, GIALAI_SOYT, NOW + 2 * MINUTE, "peer:nghean"),
                    ],
                },
            ),
            NOW + 2 * MINUTE,
        )
        .await;
    // Sở Y tế's 01 is recorded; Ủy ban's is skipped, and the mail is taken in all the same.
    assert_eq!(out.deliveries.len(), 1);
    assert_eq!(db.count("statuses").await, statuses + 1);
    let detail: serde_json::Value =
        serde_json::from_str(&db.audit().await.pop().unwrap().detail).unwrap();
    let skipped = detail["receipts"][0]["skipped"].as_str().unwrap();
    assert!(skipped.contains("contradicts 03"), "{skipped}");

    // A receipt from an agency the document was not sent to: refused, nothing written.
    let e = db
        .nothing_written(async || {
            db.store
                .take_mail(
                    mail(
                        2,
                        MailEffect::Document {
                            message_id: original,
                            duplicate: true,
                            receipts: vec![receipt(&doc, GIALAI_STTTT, NOW, "peer:nghean")],
                        },
                    ),
                    HOUR,
                    NOW + 3 * MINUTE,
                )
                .await
        })
        .await;
    assert_eq!(e.code(), Code::StatusNotFromRecipient, "{e}");
    // A receipt about another document, and a document that is not a received one.
    let other = meta(NGHEAN_UBND, "999", "UBND-VX");
    let e = db
        .nothing_written(async || {
            db.store
                .take_mail(
                    mail(
                        2,
                        MailEffect::Document {
                            message_id: original,
                            duplicate: true,
                            receipts: vec![receipt(&other, GIALAI_UBND, NOW, "peer:nghean")],
                        },
                    ),
                    HOUR,
                    NOW + 3 * MINUTE,
                )
                .await
        })
        .await;
    assert_eq!(e.code(), Code::ValueInvalid, "{e}");
    let sent = db
        .store
        .submit_outgoing(outgoing("40", &[(NGHEAN_UBND, "peer:nghean")]), NOW)
        .await
        .unwrap();
    let e = db
        .nothing_written(async || {
            db.store
                .take_mail(
                    mail(
                        2,
                        MailEffect::Document {
                            message_id: sent.message_id,
                            duplicate: false,
                            receipts: Vec::new(),
                        },
                    ),
                    HOUR,
                    NOW + 3 * MINUTE,
                )
                .await
        })
        .await;
    assert_eq!(e.code(), Code::NotFound, "{e}");
    db.clean().await;
}

#[tokio::test]
async fn a_status_mail_is_logged_with_its_package() {
    let db = db().await;
    let sent = db
        .store
        .submit_outgoing(outgoing("41", &[(IAKHA, IAKHA_MAIL)]), NOW)
        .await
        .unwrap();
    let doc = meta(GIALAI_STTTT, "41", "STTTT-CĐS");
    let status = db
        .store
        .record_status(
            NewStatus {
                direction: Direction::In,
                deliveries: Vec::new(),
                code: 3,
                package: package("03 from Ia Kha"),
                actor: ACTOR.into(),
                ..receipt(&doc, IAKHA, NOW + MINUTE, "")
            },
            NOW + MINUTE,
        )
        .await
        .unwrap();
    let out = db
        .take(
            mail(
                1,
                MailEffect::Status {
                    message_id: Some(status.message_id),
                },
            ),
            NOW + MINUTE,
        )
        .await;
    let logged = db.store.mail_log_item(out.log_id).await.unwrap();
    assert_eq!(
        (logged.outcome.as_str(), logged.message_ref),
        ("status", Some(status.message_id))
    );
    // A status that stored nothing (a repeat, a document unknown here).
    let none = db
        .take(
            mail(2, MailEffect::Status { message_id: None }),
            NOW + MINUTE,
        )
        .await;
    assert_eq!(
        db.store
            .mail_log_item(none.log_id)
            .await
            .unwrap()
            .message_ref,
        None
    );
    // A message that is not a received status package.
    let e = db
        .nothing_written(async || {
            db.store
                .take_mail(
                    mail(
                        3,
                        MailEffect::Status {
                            message_id: Some(sent.message_id),
                        },
                    ),
                    HOUR,
                    NOW,
                )
                .await
        })
        .await;
    assert_eq!(e.code(), Code::NotFound);
    db.clean().await;
}

// ---------------------------------------------------------------------------------------------
// Bounces, and the relay's word
// ---------------------------------------------------------------------------------------------

fn bounce(delivery_id: i64) -> MailEffect {
    MailEffect::Bounce {
        delivery_id,
        reason: "5.1.1 <xa-iakha@gialai.gov.vn>: Recipient address rejected: User unknown".into(),
    }
}

#[tokio::test]
async fn mark_relayed_keeps_the_relays_reply_on_the_attempt() {
    let db = db().await;
    let s = db
        .store
        .submit_outgoing(
            outgoing("42", &[(IAKHA, IAKHA_MAIL), (NGHEAN_UBND, "peer:nghean")]),
            NOW,
        )
        .await
        .unwrap();
    let claimed = db
        .store
        .claim_due(NOW, 10, "outbox:w1", MINUTE)
        .await
        .unwrap();
    let lease_of = |id: i64| -> Lease {
        claimed
            .iter()
            .find(|c| c.lease.delivery_id == id)
            .unwrap()
            .lease
    };
    let (by_mail, by_peer) = (s.deliveries[0].delivery_id, s.deliveries[1].delivery_id);

    // A peer delivery is delivered only with its receipt: never on a relay's word.
    let e = db
        .nothing_written(async || {
            db.store
                .mark_relayed(lease_of(by_peer), "250 2.0.0 Ok".into(), NOW + 1)
                .await
        })
        .await;
    assert_eq!(e.code(), Code::InvalidTransition, "{e}");
    assert!(e.to_string().contains("peer:nghean"), "{e}");
    // An empty or control-laden reply is refused.
    for bad in ["", "250 ok\u{0}"] {
        let e = db
            .nothing_written(async || {
                db.store
                    .mark_relayed(lease_of(by_mail), bad.into(), NOW + 1)
                    .await
            })
            .await;
        assert_eq!(e.code(), Code::ValueInvalid, "{e}");
    }

    let reply = "250 2.0.0 Ok: queued as 4F1C2A0B3D\r\n";
    let records = db.audit().await.len();
    db.store
        .mark_relayed(lease_of(by_mail), reply.into(), NOW + 2)
        .await
        .unwrap();
    let new: Vec<_> = db.records_since(records).await;
    assert_eq!(new.len(), 1);
    assert_eq!(
        (new[0].action.as_str(), new[0].actor.as_str()),
        ("delivery.relayed", "outbox:w1")
    );
    let d = db.store.delivery(by_mail).await.unwrap();
    assert_eq!(
        (d.state, d.delivered_at, d.lease_owner.as_deref()),
        (DeliveryState::Delivered, Some(NOW + 2), None)
    );
    assert_eq!(db.store.delivery_receipt(by_mail).await.unwrap(), None);
    let attempts = db.store.attempts(by_mail).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, Some(AttemptOutcome::Delivered));
    assert_eq!(attempts[0].reply.as_deref(), Some(reply));
    assert_eq!(attempts[0].finished_at, Some(NOW + 2));
    // Other attempts have none.
    assert_eq!(db.store.attempts(by_peer).await.unwrap()[0].reply, None);

    // The same lease again: the attempt is over.
    let e = db
        .nothing_written(async || {
            db.store
                .mark_relayed(lease_of(by_mail), reply.into(), NOW + 3)
                .await
        })
        .await;
    assert_eq!(e.code(), Code::InvalidTransition);
    db.clean().await;
}

#[tokio::test]
async fn a_bounce_fails_the_delivery_from_each_state_that_still_counts() {
    let db = db().await;
    let communes: Vec<String> = (1..=7).map(|i| format!("000.03.{i:02}.H21")).collect();
    let routes: Vec<String> = (1..=7)
        .map(|i| format!("mail:xa{i}@gialai.gov.vn"))
        .collect();
    let recipients: Vec<(&str, &str)> = communes
        .iter()
        .zip(&routes)
        .map(|(c, r)| (c.as_str(), r.as_str()))
        .chain([(NGHEAN_UBND, "peer:nghean")])
        .collect();
    let s = db
        .store
        .submit_outgoing(outgoing("43", &recipients), NOW)
        .await
        .unwrap();
    let ids: Vec<i64> = s.deliveries.iter().map(|d| d.delivery_id).collect();
    let [
        delivered,
        sending,
        retrying,
        queued,
        failed,
        rejected,
        cancelled,
        by_peer,
    ] = ids[..].try_into().unwrap();
    // Bring each to its state.
    db.store
        .cancel_delivery(cancelled, "sent on paper", "admin:hoa", NOW)
        .await
        .unwrap();
    db.store
        .reject_delivery(rejected, "wrong commune", "admin:hoa", NOW)
        .await
        .unwrap();
    let claimed = db
        .store
        .claim_due(NOW + 1, 10, "outbox:w1", MINUTE)
        .await
        .unwrap();
    let lease_of = |id: i64| -> Lease {
        claimed
            .iter()
            .find(|c| c.lease.delivery_id == id)
            .unwrap()
            .lease
    };
    db.store
        .mark_relayed(lease_of(delivered), "250 2.0.0 Ok: queued".into(), NOW + 2)
        .await
        .unwrap();
    db.store
        .retry_later(
            lease_of(retrying),
            DeliveryError::new("MAIL_RELAY_UNAVAILABLE", "421 try again later"),
            NOW + HOUR,
            NOW + 2,
        )
        .await
        .unwrap();
    db.store
        .retry_later(
            lease_of(queued),
            DeliveryError::new("MAIL_RELAY_UNAVAILABLE", "421 try again later"),
            NOW + HOUR,
            NOW + 2,
        )
        .await
        .unwrap();
    db.store
        .operator_retry(queued, "admin:hoa", NOW + 3)
        .await
        .unwrap();
    db.store
        .mark_failed(
            lease_of(failed),
            DeliveryError::new("MAIL_REJECTED", "550 no such user"),
            NOW + 2,
        )
        .await
        .unwrap();
    let states = [
        (delivered, DeliveryState::Delivered),
        (sending, DeliveryState::Sending),
        (retrying, DeliveryState::Retrying),
        (queued, DeliveryState::Queued),
        (failed, DeliveryState::Failed),
        (rejected, DeliveryState::Rejected),
        (cancelled, DeliveryState::Cancelled),
    ];
    for (id, state) in states {
        assert_eq!(db.store.delivery(id).await.unwrap().state, state);
    }

    let at = NOW + 10 * MINUTE;
    for (uid, (id, from)) in (1..).zip(states) {
        let before = db.store.attempts(id).await.unwrap();
        let records = db.audit().await.len();
        let out = db
            .take(
                TakenMail {
                    return_path: String::new(),
                    from: "MAILER-DAEMON@mail.gialai.gov.vn".into(),
                    ..mail(uid, bounce(id))
                },
                at,
            )
            .await;
        let logged = db.store.mail_log_item(out.log_id).await.unwrap();
        assert_eq!(
            (logged.outcome.as_str(), logged.delivery_ref),
            ("bounce", Some(id))
        );
        let d = db.store.delivery(id).await.unwrap();
        let after = db.store.attempts(id).await.unwrap();
        let actions: Vec<String> = db
            .records_since(records)
            .await
            .into_iter()
            .map(|r| r.action)
            .collect();
        match from {
            DeliveryState::Failed | DeliveryState::Rejected | DeliveryState::Cancelled => {
                // Left as it was; the log says so.
                assert_eq!(d.state, from);
                assert_eq!(after, before);
                assert_eq!(actions, ["mail.take"]);
                assert_eq!(logged.code.as_deref(), Some("INVALID_TRANSITION"));
                let reason = logged.reason.unwrap();
                assert!(
                    reason.contains(&format!("was already {from}: left as it is")),
                    "{reason}"
                );
                assert!(reason.contains("User unknown"), "{reason}");
            }
            _ => {
                assert_eq!(d.state, DeliveryState::Failed, "from {from}");
                assert_eq!(
                    d.last_error,
                    Some(DeliveryError::new(
                        "MAIL_BOUNCED",
                        "5.1.1 <xa-iakha@gialai.gov.vn>: Recipient address rejected: User unknown"
                    ))
                );
                assert_eq!(
                    (d.lease_owner, d.lease_until, d.next_attempt_at),
                    (None, None, None)
                );
                assert_eq!(actions, ["delivery.bounce", "mail.take"]);
                assert_eq!(logged.code.as_deref(), Some("MAIL_BOUNCED"));
                // The history keeps every earlier attempt; the bounce is one more.
                assert_eq!(after.len(), before.len() + 1);
                let last = after.last().unwrap();
                assert_eq!(
                    (
                        last.outcome,
                        last.error.as_ref().map(|e| e.code.as_str()),
                        last.number as usize,
                        last.started_at,
                        last.finished_at,
                        last.lease_owner.as_str()
                    ),
                    (
                        Some(AttemptOutcome::Failed),
                        Some("MAIL_BOUNCED"),
                        before.len() + 1,
                        at,
                        Some(at),
                        ACTOR
                    )
                );
                for (was, now) in before.iter().zip(&after) {
                    if from == DeliveryState::Sending && was.outcome.is_none() {
                        // The attempt in flight ended: the bounce superseded it.
                        assert_eq!(now.outcome, Some(AttemptOutcome::Superseded));
                        assert_eq!(now.finished_at, Some(at));
                    } else {
                        assert_eq!(was, now);
                    }
                }
                assert_eq!(d.attempts as usize, after.len());
            }
        }
    }
    // The worker that held the lease of the bounced `sending` delivery reports late.
    let e = db
        .nothing_written(async || {
            db.store
                .mark_relayed(lease_of(sending), "250 ok".into(), at + 1)
                .await
        })
        .await;
    assert_eq!(e.code(), Code::InvalidTransition);
    // An operator retries a bounced delivery: the next attempt's number follows the bounce's.
    db.store
        .operator_retry(delivered, "admin:hoa", at + 2)
        .await
        .unwrap();
    let again = db
        .store
        .claim_due(at + 2, 10, "outbox:w2", MINUTE)
        .await
        .unwrap();
    let c = again
        .iter()
        .find(|c| c.lease.delivery_id == delivered)
        .unwrap();
    assert_eq!(c.attempt, 3, "claim 1, bounce 2, now 3");

    // A bounce naming a delivery that does not go by mail, or none at all: refused.
    let e = db
        .nothing_written(async || {
            db.store
                .take_mail(mail(50, bounce(by_peer)), HOUR, at)
                .await
        })
        .await;
    assert_eq!(e.code(), Code::InvalidTransition, "{e}");
    let e = db
        .nothing_written(async || {
            db.store
                .take_mail(mail(50, bounce(999_999)), HOUR, at)
                .await
        })
        .await;
    assert_eq!(e.code(), Code::NotFound, "{e}");
    db.clean().await;
}

// ---------------------------------------------------------------------------------------------
// The quarantine and the automatic reply's limit
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn one_automatic_reply_per_address_per_interval() {
    let db = db().await;
    let stranger = "nguoi-la@example.vn";
    let mut uid = 0;
    let mut quarantine = async |reply_to: Option<&str>, at: i64| {
        uid += 1;
        let out = db
            .store
            .take_mail(mail(uid, quarantined(reply_to)), HOUR, at)
            .await
            .unwrap();
        let logged = db.store.mail_log_item(out.log_id).await.unwrap();
        assert_eq!(logged.replied, out.reply_allowed);
        assert_eq!(logged.outcome, "quarantined");
        out.reply_allowed
    };
    assert!(quarantine(Some(stranger), NOW).await, "the first");
    // Within the hour: no second reply, whatever the spelling of the address.
    assert!(!quarantine(Some(stranger), NOW + 30 * MINUTE).await);
    assert!(!quarantine(Some("Nguoi-La@Example.VN"), NOW + HOUR - 1).await);
    // Another sender has its own hour; a mail that may not be answered never is.
    assert!(quarantine(Some("khac@example.vn"), NOW + 30 * MINUTE).await);
    assert!(!quarantine(None, NOW + 30 * MINUTE).await);
    // An hour after the last reply (not after the last mail): one more.
    assert!(quarantine(Some(stranger), NOW + HOUR).await);
    assert!(!quarantine(Some(stranger), NOW + HOUR + 1).await);

    let rows: Vec<(String, i64)> = on_raw!(&db.raw, raw =>
        sqlx::query_as("SELECT address, last_reply_at FROM mail_replies ORDER BY address")
            .fetch_all(raw)
            .await
            .unwrap());
    assert_eq!(
        rows,
        [
            ("khac@example.vn".to_owned(), NOW + 30 * MINUTE),
            (stranger.to_owned(), NOW + HOUR)
        ]
    );
    // The quarantine is the log filtered, newest first, paged.
    let page = |before| MailLogFilter {
        outcome: Some("quarantined".into()),
        page: Page { limit: 4, before },
    };
    let first = db.store.list_mail_log(&page(None)).await.unwrap();
    assert_eq!(
        first.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [7, 6, 5, 4]
    );
    let rest = db
        .store
        .list_mail_log(&page(Some(first[3].id)))
        .await
        .unwrap();
    assert_eq!(rest.iter().map(|m| m.uid).collect::<Vec<_>>(), [3, 2, 1]);
    assert!(
        db.store
            .list_mail_log(&MailLogFilter {
                outcome: Some("draft".into()),
                ..MailLogFilter::default()
            })
            .await
            .unwrap()
            .is_empty()
    );
    let e = db
        .store
        .list_mail_log(&MailLogFilter {
            outcome: Some("spam".into()),
            ..MailLogFilter::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ValueInvalid);
    assert_eq!(
        db.store.mail_log_item(9999).await.unwrap_err().code(),
        Code::NotFound
    );
    db.clean().await;
}

#[tokio::test]
async fn every_mail_sent_outside_the_outbox_is_in_the_chain() {
    let db = db().await;
    let seq = db
        .store
        .record_mail_sent(
            SentMail {
                kind: "reply.quarantine".into(),
                to: vec!["nguoi-la@example.vn".into()],
                message_id: "reply.7@gialai.gov.vn".into(),
                outcome: "250 2.0.0 Ok: queued as 77".into(),
                sent: true,
            },
            NOW,
        )
        .await
        .unwrap();
    let r = db.audit().await.pop().unwrap();
    assert_eq!((r.seq, r.action.as_str()), (seq, "mail.send"));
    let d: serde_json::Value = serde_json::from_str(&r.detail).unwrap();
    assert_eq!(
        (&d["kind"], &d["to"], &d["sent"]),
        (
            &json!("reply.quarantine"),
            &json!(["nguoi-la@example.vn"]),
            &json!(true)
        )
    );
    // A header-breaking address or no address: refused, nothing written.
    for to in [vec!["a@b.vn\r\nBcc: x@y.vn".to_owned()], Vec::new()] {
        let e = db
            .nothing_written(async || {
                db.store
                    .record_mail_sent(
                        SentMail {
                            kind: "notify.arrival".into(),
                            to: to.clone(),
                            message_id: "n.1@gialai.gov.vn".into(),
                            outcome: "not sent: relay down".into(),
                            sent: false,
                        },
                        NOW,
                    )
                    .await
            })
            .await;
        assert_eq!(e.code(), Code::ValueInvalid);
    }
    db.clean().await;
}

// ---------------------------------------------------------------------------------------------
// Drafts
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn drafts_are_listed_paged_filtered_and_seen_only_by_their_agency() {
    let db = db().await;
    let mut ids = Vec::new();
    for (uid, summary) in (1..).zip(["V/v một", "V/v hai", "V/v ba"]) {
        let records = db.audit().await.len();
        let out = db
            .take(
                TakenMail {
                    from: "vanthu.soyt@gialai.gov.vn".into(),
                    ..mail(uid, a_draft(summary))
                },
                NOW + i64::from(uid),
            )
            .await;
        // The draft is created by the mail's own record.
        let actions: Vec<String> = db
            .records_since(records)
            .await
            .into_iter()
            .map(|r| r.action)
            .collect();
        assert_eq!(actions, ["mail.take"]);
        let logged = db.store.mail_log_item(out.log_id).await.unwrap();
        assert_eq!(logged.draft_ref, out.draft_id);
        ids.push(out.draft_id.unwrap());
    }
    let other = db
        .take(
            mail(
                4,
                draft_of(GIALAI_UBND, "V/v của Ủy ban", vec![pdf("a.pdf", "x")]),
            ),
            NOW + 4,
        )
        .await
        .draft_id
        .unwrap();

    let list = |state, limit, before| {
        let store = db.store.clone();
        async move {
            store
                .list_drafts(
                    GIALAI_SOYT,
                    &DraftFilter {
                        state,
                        page: Page { limit, before },
                    },
                )
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(None, 50, None).await, [ids[2], ids[1], ids[0]]);
    assert_eq!(list(None, 2, None).await, [ids[2], ids[1]]);
    assert_eq!(list(None, 2, Some(ids[1])).await, [ids[0]]);

    let d = db.store.draft(GIALAI_SOYT, ids[1]).await.unwrap();
    assert_eq!(
        (
            d.state,
            d.agency.as_str(),
            d.from.as_str(),
            d.summary.as_str(),
            d.code_number.as_deref(),
            d.code_notation.as_deref(),
            d.created_at,
            d.message_id
        ),
        (
            DraftState::Draft,
            GIALAI_SOYT,
            "vanthu.soyt@gialai.gov.vn",
            "V/v hai",
            Some("12"),
            Some("UBND-VP"),
            NOW + 2,
            None
        )
    );
    assert_eq!(d.subject, "[Văn bản điện tử] thư số 2");
    let sizes: Vec<u64> = match a_draft("V/v hai") {
        MailEffect::Draft(d) => d.files.iter().map(|f| f.bytes.len() as u64).collect(),
        _ => unreachable!(),
    };
    assert_eq!(
        d.files
            .iter()
            .map(|f| (f.index, f.name.as_str(), f.size))
            .collect::<Vec<_>>(),
        [
            (0, "Công văn 12.pdf", sizes[0]),
            (1, "Phụ lục.docx", sizes[1])
        ]
    );
    let file = db.store.draft_file(GIALAI_SOYT, ids[1], 0).await.unwrap();
    assert_eq!(file, pdf("Công văn 12.pdf", "V/v hai"));
    assert_eq!(
        d.files[0].sha256,
        lienthong::audit::hash::sha256_hex(&file.bytes)
    );

    // Another agency's draft does not exist for this one.
    for e in [
        db.store.draft(GIALAI_SOYT, other).await.unwrap_err(),
        db.store
            .draft_file(GIALAI_SOYT, other, 0)
            .await
            .unwrap_err(),
        db.store
            .draft_file(GIALAI_SOYT, ids[0], 2)
            .await
            .unwrap_err(),
        db.store.draft(GIALAI_UBND, ids[0]).await.unwrap_err(),
    ] {
        assert_eq!(e.code(), Code::NotFound, "{e}");
    }
    let e = db
        .nothing_written(async || {
            db.store
                .discard_draft(GIALAI_SOYT, other, "không phải của tôi", "clerk:x:y", NOW)
                .await
        })
        .await;
    assert_eq!(e.code(), Code::NotFound);

    // Discarded, with the reason; once only.
    let records = db.audit().await.len();
    db.store
        .discard_draft(
            GIALAI_SOYT,
            ids[0],
            "Trùng với văn bản đã gửi",
            "clerk:000.00.11.H21:mai",
            NOW + HOUR,
        )
        .await
        .unwrap();
    let r = db.records_since(records).await;
    assert_eq!(
        r.iter()
            .map(|r| (r.action.as_str(), r.entity_kind.as_str()))
            .collect::<Vec<_>>(),
        [("draft.discard", "draft")]
    );
    let d = db.store.draft(GIALAI_SOYT, ids[0]).await.unwrap();
    assert_eq!(
        (
            d.state,
            d.decided_at,
            d.decided_by.as_deref(),
            d.reason.as_deref()
        ),
        (
            DraftState::Discarded,
            Some(NOW + HOUR),
            Some("clerk:000.00.11.H21:mai"),
            Some("Trùng với văn bản đã gửi")
        )
    );
    let e = db
        .nothing_written(async || {
            db.store
                .discard_draft(GIALAI_SOYT, ids[0], "lại", "clerk:x:y", NOW)
                .await
        })
        .await;
    assert_eq!(e.code(), Code::InvalidTransition);
    assert_eq!(
        list(Some(DraftState::Draft), 50, None).await,
        [ids[2], ids[1]]
    );
    assert_eq!(list(Some(DraftState::Discarded), 50, None).await, [ids[0]]);
    assert!(list(Some(DraftState::Approved), 50, None).await.is_empty());
    db.clean().await;
}

/// The submission of a document approved from draft `draft` by Sở Y tế, as the next number.
fn approval(number: u32, draft: i64) -> NewOutgoing {
    NewOutgoing {
        document: meta(GIALAI_SOYT, &number.to_string(), "SYT-VP"),
        package: package(&format!("approved draft {draft} as {number}")),
        deliveries: vec![to(IAKHA, IAKHA_MAIL)],
        idempotency_key: Some(format!("approve-{draft}-{number}")),
        request: None,
        actor: format!("clerk:{GIALAI_SOYT}:mai"),
        numbering: Numbering::Next,
        from_draft: Some(draft),
    }
}

#[tokio::test]
async fn a_draft_is_approved_in_its_submissions_transaction_or_nothing_is_written() {
    let db = db().await;
    let mut ids = Vec::new();
    for uid in 1..=3 {
        ids.push(
            db.take(mail(uid, a_draft("V/v xin ý kiến")), NOW)
                .await
                .draft_id
                .unwrap(),
        );
    }
    let ubnd = db
        .take(
            mail(
                4,
                draft_of(GIALAI_UBND, "V/v khác", vec![pdf("b.pdf", "y")]),
            ),
            NOW,
        )
        .await
        .draft_id
        .unwrap();
    db.store
        .discard_draft(GIALAI_SOYT, ids[2], "không gửi", "clerk:x:mai", NOW)
        .await
        .unwrap();

    let records = db.audit().await.len();
    let s = db
        .store
        .submit_outgoing(approval(1, ids[0]), NOW + MINUTE)
        .await
        .unwrap();
    assert!(!s.existing);
    let actions: Vec<(String, String)> = db
        .records_since(records)
        .await
        .into_iter()
        .map(|r| (r.action, r.entity_id))
        .collect();
    assert_eq!(
        actions,
        [
            ("document.submit".to_owned(), s.message_id.to_string()),
            ("draft.approve".to_owned(), ids[0].to_string())
        ]
    );
    let d = db.store.draft(GIALAI_SOYT, ids[0]).await.unwrap();
    assert_eq!(
        (d.state, d.message_id, d.decided_at, d.decided_by.as_deref()),
        (
            DraftState::Approved,
            Some(s.message_id),
            Some(NOW + MINUTE),
            Some("clerk:000.00.11.H21:mai")
        )
    );
    assert_eq!(db.store.last_number(GIALAI_SOYT, 2026).await.unwrap(), 1);
    // The same request again (its idempotency key): the same answer, nothing new.
    let again = db
        .store
        .submit_outgoing(approval(1, ids[0]), NOW + 2 * MINUTE)
        .await
        .unwrap();
    assert!(again.existing);
    assert_eq!(again.message_id, s.message_id);

    // Approved already, discarded, another agency's, none: nothing written, no number taken.
    for (draft, code) in [
        (ids[0], Code::InvalidTransition),
        (ids[2], Code::InvalidTransition),
        (ubnd, Code::NotFound),
        (999_999, Code::NotFound),
    ] {
        let e = db
            .nothing_written(async || {
                db.store
                    .submit_outgoing(approval(2, draft), NOW + 3 * MINUTE)
                    .await
            })
            .await;
        assert_eq!(e.code(), code, "draft {draft}: {e}");
        assert_eq!(db.store.last_number(GIALAI_SOYT, 2026).await.unwrap(), 1);
    }
    assert_eq!(
        db.store.draft(GIALAI_SOYT, ids[1]).await.unwrap().state,
        DraftState::Draft
    );
    // The next number goes to the next approval.
    let s2 = db
        .store
        .submit_outgoing(approval(2, ids[1]), NOW + 4 * MINUTE)
        .await
        .unwrap();
    assert_eq!(
        db.store
            .draft(GIALAI_SOYT, ids[1])
            .await
            .unwrap()
            .message_id,
        Some(s2.message_id)
    );
    assert_eq!(db.store.last_number(GIALAI_SOYT, 2026).await.unwrap(), 2);
    db.clean().await;
}

// ---------------------------------------------------------------------------------------------
// What the store refuses
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn mail_the_store_refuses_leaves_nothing() {
    let db = db().await;
    let with = |f: fn(&mut TakenMail)| {
        let mut m = mail(1, a_draft("V/v thử"));
        f(&mut m);
        m
    };
    let draft = |f: fn(&mut NewDraft)| {
        let mut m = mail(1, a_draft("V/v thử"));
        if let MailEffect::Draft(d) = &mut m.effect {
            f(d);
        }
        m
    };
    let cases: Vec<(&str, TakenMail)> = vec![
        (
            "subject",
            with(|m| m.subject = "V/v\r\nBcc: ai@do.vn".into()),
        ),
        ("from", with(|m| m.from = "evil\u{202E}fdp.exe@x.vn".into())),
        ("message_id", with(|m| m.message_id = Some(String::new()))),
        ("mailbox", with(|m| m.mailbox = String::new())),
        ("uid", with(|m| m.uid = 0)),
        ("subject", with(|m| m.subject = "ừ".repeat(301))),
        (
            "draft.files[0].name",
            draft(|d| d.files[0].name = "../../etc/passwd".into()),
        ),
        (
            "draft.files[0].name",
            draft(|d| d.files[0].name = "hoa-don.pdf.".into()),
        ),
        (
            "draft.files[1].name",
            draft(|d| d.files[1].name = "CÔNG VĂN 12.PDF".into()),
        ),
        ("draft.files", draft(|d| d.files.clear())),
        ("draft.files[0].bytes", draft(|d| d.files[0].bytes.clear())),
        ("draft.body", draft(|d| d.body = "x\u{7}y".into())),
        ("draft.agency", draft(|d| d.agency = String::new())),
        (
            "code",
            with(|m| {
                m.effect = MailEffect::Quarantined {
                    code: "not a code".into(),
                    reason: "x".into(),
                    reply_to: None,
                }
            }),
        ),
        (
            "reply_to",
            with(|m| {
                m.effect = MailEffect::Quarantined {
                    code: "MAIL_TOO_LARGE".into(),
                    reason: "x".into(),
                    reply_to: Some("no-at-sign".into()),
                }
            }),
        ),
        (
            "reason",
            with(|m| {
                m.effect = MailEffect::Bounce {
                    delivery_id: 1,
                    reason: String::new(),
                }
            }),
        ),
    ];
    for (field, m) in cases {
        let e = db
            .nothing_written(async || db.store.take_mail(m.clone(), HOUR, NOW).await)
            .await;
        assert_eq!(e.code(), Code::ValueInvalid, "{field}: {e}");
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    let doc = meta(NGHEAN_UBND, "5", "UBND-VX");
    let e = db
        .nothing_written(async || {
            db.store
                .take_mail(
                    mail(
                        1,
                        MailEffect::Document {
                            message_id: 1,
                            duplicate: false,
                            receipts: vec![NewStatus {
                                code: 3,
                                ..receipt(&doc, GIALAI_UBND, NOW, "peer:nghean")
                            }],
                        },
                    ),
                    HOUR,
                    NOW,
                )
                .await
        })
        .await;
    assert_eq!(e.code(), Code::ValueInvalid, "{e}");
    let e = db
        .nothing_written(async || {
            db.store
                .take_mail(mail(1, quarantined(None)), -1, NOW)
                .await
        })
        .await;
    assert_eq!(e.code(), Code::ValueInvalid, "{e}");
    db.clean().await;
}

// ---------------------------------------------------------------------------------------------
// `audit verify`: every row is what its records say
// ---------------------------------------------------------------------------------------------

/// One of every mail row: a document with its receipts, a status, drafts (one approved, one
/// discarded), a bounce, a quarantined mail answered; and the rows' ids.
async fn mail_store(db: &Db) -> (i64, i64, i64) {
    let new = incoming("500");
    let doc = new.document.clone();
    let message_id = ingested(db, new, NOW).await;
    db.take(
        mail(
            1,
            MailEffect::Document {
                message_id,
                duplicate: false,
                receipts: vec![
                    receipt(&doc, GIALAI_UBND, NOW, "mail:van-thu@nghean.gov.vn"),
                    receipt(&doc, GIALAI_SOYT, NOW, "mail:van-thu@nghean.gov.vn"),
                ],
            },
        ),
        NOW,
    )
    .await;
    let approved = db
        .take(mail(2, a_draft("V/v duyệt")), NOW)
        .await
        .draft_id
        .unwrap();
    let discarded = db
        .take(mail(3, a_draft("V/v bỏ")), NOW)
        .await
        .draft_id
        .unwrap();
    let s = db
        .store
        .submit_outgoing(approval(1, approved), NOW + MINUTE)
        .await
        .unwrap();
    db.store
        .discard_draft(GIALAI_SOYT, discarded, "không gửi", "clerk:x:mai", NOW)
        .await
        .unwrap();
    let c = db
        .store
        .claim_due(NOW + MINUTE, 10, "outbox:w1", MINUTE)
        .await
        .unwrap();
    let lease = c
        .iter()
        .find(|c| c.lease.delivery_id == s.deliveries[0].delivery_id)
        .unwrap()
        .lease;
    db.store
        .mark_relayed(lease, "250 2.0.0 Ok".into(), NOW + MINUTE)
        .await
        .unwrap();
    db.take(mail(4, bounce(lease.delivery_id)), NOW + 2 * MINUTE)
        .await;
    let q = db
        .take(
            mail(5, quarantined(Some("nguoi-la@example.vn"))),
            NOW + 3 * MINUTE,
        )
        .await;
    assert!(q.reply_allowed);
    db.clean().await;
    (q.log_id, approved, discarded)
}

#[tokio::test]
async fn verify_store_names_mail_rows_changed_by_hand() {
    let db = db().await;
    let (quarantined_log, approved, discarded) = mail_store(&db).await;
    let report = db.store.verify_store().await.unwrap().unwrap();
    assert_eq!(
        (
            report.checked.mails,
            report.checked.drafts,
            report.checked.draft_files,
            report.checked.mail_checkpoints,
            report.checked.mail_replies
        ),
        (5, 2, 4, 1, 1)
    );

    let tamper = async |sql: &str| {
        db.raw.execute(sql).await.unwrap();
    };
    let seq = |action: &'static str, id: i64| {
        let raw = db.raw.clone();
        async move {
            on_raw!(&raw, raw => sqlx::query_scalar::<_, i64>(
                "SELECT max(seq) FROM audit WHERE action = $1 AND entity_id = $2",
            )
            .bind(action)
            .bind(id.to_string())
            .fetch_one(raw)
            .await
            .unwrap())
        }
    };
    let blob = if db.raw.is_postgres() {
        "BYTEA"
    } else {
        "BLOB"
    };
    tamper(&format!(
        "UPDATE mail_log SET outcome = 'status', code = NULL, reason = NULL, replied = 0 \
         WHERE id = {quarantined_log}"
    ))
    .await;
    tamper(&format!(
        "UPDATE drafts SET state = 'draft', decided_at = NULL, decided_by = NULL, reason = NULL \
         WHERE id = {discarded}"
    ))
    .await;
    tamper(&format!(
        "UPDATE draft_files SET bytes = CAST('%PDF-1.7 forged' AS {blob}), size = 15 \
         WHERE draft_id = {approved} AND idx = 0"
    ))
    .await;
    tamper("UPDATE mail_checkpoints SET last_uid = 3").await;
    tamper("DELETE FROM mail_replies").await;
    tamper(
        "INSERT INTO mail_log (mailbox, uidvalidity, uid, return_path, from_addr, subject, size,
             outcome, taken_at) VALUES ('x', 1, 1, '', '', 'forged', 1, 'status', 0)",
    )
    .await;

    let report = db.store.verify_store().await.unwrap().unwrap();
    let found: Vec<(Entity, Option<&str>, Code)> = report
        .differences
        .iter()
        .map(|d| (d.entity, d.field, d.code))
        .collect();
    let take = seq("mail.take", quarantined_log).await;
    let discard = seq("draft.discard", discarded).await;
    assert_eq!(
        found,
        [
            // Found while reading the rows: a row no record created, fields of replayed rows.
            (Entity::Mail, None, Code::AuditBroken),
            (Entity::Draft, Some("state"), Code::AuditBroken),
            (Entity::Draft, Some("decided_at"), Code::AuditBroken),
            (Entity::Draft, Some("decided_by"), Code::AuditBroken),
            (Entity::Draft, Some("reason"), Code::AuditBroken),
            (Entity::DraftFile, Some("size"), Code::AuditBroken),
            (Entity::DraftFile, Some("bytes_sha256"), Code::StoreCorrupt),
            (Entity::MailCheckpoint, Some("last_uid"), Code::AuditBroken),
            // Then a digested row explained from its record, and a row that is gone.
            (Entity::Mail, Some("outcome"), Code::AuditBroken),
            (Entity::Mail, Some("code"), Code::AuditBroken),
            (Entity::Mail, Some("reason"), Code::AuditBroken),
            (Entity::Mail, Some("replied"), Code::AuditBroken),
            (Entity::MailReply, None, Code::AuditBroken),
        ],
        "{:#?}",
        report.differences
    );
    let text: Vec<String> = report.differences.iter().map(ToString::to_string).collect();
    assert!(
        text[0].ends_with(": no audit record created it"),
        "{}",
        text[0]
    );
    assert_eq!(
        text[1],
        format!(
            "draft {discarded}: state is draft, audit record {discard} (draft.discard) says discarded"
        )
    );
    assert!(text[6].contains("file bytes hash to"), "{}", text[6]);
    assert_eq!(
        text[8],
        format!(
            "mail {quarantined_log}: outcome is status, audit record {take} (mail.take) says quarantined"
        )
    );
    assert_eq!(
        text[12],
        format!(
            "mail reply nguoi-la@example.vn: missing (audit record {take}, mail.take, created it)"
        )
    );
}
