//! Cross-checking the store against the audit chain: the chain proves the records are the ones
//! written; this proves the rows are still what the records say.
//!
//! Without it, someone with the database file could edit a message's subject or bytes, delete a
//! message, or set a delivery's state by hand, and the chain would still verify: the records are
//! untouched. [`CrossCheck`] is fed every record of a verified chain ([`CrossCheck::record`]),
//! then every row ([`CrossCheck::message`] with its inbox recipients, [`status`](CrossCheck::status),
//! [`delivery`](CrossCheck::delivery), [`registry`](CrossCheck::registry): the sender binding;
//! the mail bridge's [`mail`](CrossCheck::mail) log, [`draft`](CrossCheck::draft)s and their
//! [`draft_file`](CrossCheck::draft_file)s, mailbox [`checkpoint`](CrossCheck::checkpoint)s and
//! automatic [`reply`](CrossCheck::reply) limits), then [`finish`](CrossCheck::finish)ed; it names each row
//! that differs from its records, each row no record created, and each row a record created that
//! is gone:
//!
//! ```text
//! message 17: subject differs from audit record 42 (document.submit)
//! message 9: missing (audit record 12, document.receive, created it)
//! delivery 5: state is delivered, audit record 88 (delivery.fail) says failed
//! message 3: package bytes hash to 5e…, audit record 7 (document.submit) says 9a… (STORE_CORRUPT)
//! ```
//!
//! Cost: a message, status or mail log row is kept, between its record and its row, as its
//! record's `seq`, a field mask and a 128-bit digest of the attested fields (about 40 bytes);
//! only a row whose digest differs is explained field by field, from its record read again
//! ([`explain_message`], [`explain_status`], [`explain_mail`]). A delivery (and a draft) is
//! replayed through its transitions, so it keeps its expected fields; so do the few draft
//! files, checkpoints and reply rows. Pure: the store reads, hashes the package and file bytes
//! and feeds.

mod claims;
mod fields;
pub mod rows;

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

pub use fields::Value;
pub use rows::{
    CHECKPOINT_FIELDS, CheckpointRow, DELIVERY_FIELDS, DRAFT_FIELDS, DRAFT_FILE_FIELDS,
    DeliveryRow, DraftFileRow, DraftRow, MAIL_FIELDS, MESSAGE_FIELDS, MailRow, MessageRow,
    REGISTRY_FIELDS, REPLY_FIELDS, RegistryRow, ReplyRow, STATUS_FIELDS, StatusRow,
};

use fields::{Attested, digest_attested, digest_of};
use rows::{BYTES, C, D, DR, F, FILE_BYTES, R, Y};

use super::AuditRecord;
use crate::error::Code;

/// What kind of row a difference is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Message,
    Status,
    Delivery,
    /// An entry of the agency registry (sender binding), named by its agency code.
    Registry,
    /// A mail taken in (a row of the mail log).
    Mail,
    /// A draft made from an agency's mail.
    Draft,
    /// A file of a draft, named `<draft>/<index>`.
    DraftFile,
    /// Where a mailbox has been read to, named by the mailbox.
    MailCheckpoint,
    /// When an address was last answered automatically, named by the address.
    MailReply,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entity::Message => "message",
            Entity::Status => "status",
            Entity::Delivery => "delivery",
            Entity::Registry => "registry entry",
            Entity::Mail => "mail",
            Entity::Draft => "draft",
            Entity::DraftFile => "draft file",
            Entity::MailCheckpoint => "mail checkpoint",
            Entity::MailReply => "mail reply",
        })
    }
}

/// One row that is not what the chain says. Displays as `<entity> <id>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{entity} {id}: {message}")]
pub struct Difference {
    pub entity: Entity,
    /// The row's id (a registry entry's agency code).
    pub id: String,
    /// `AUDIT_BROKEN` (a row differs from, or is missing from, or is unknown to the chain) or
    /// `STORE_CORRUPT` (the package or draft file bytes do not hash to what the record says).
    #[serde(skip)]
    pub code: Code,
    /// The field that differs (`None`: the whole row is missing or unrecorded).
    pub field: Option<&'static str>,
    pub message: String,
}

/// What checking one row found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowCheck {
    /// As its record says.
    Matches,
    /// Named at once (no record created it).
    Differs(Difference),
    /// Its fields differ from record `seq`: read that record again and [`explain_message`] (or
    /// [`explain_status`], [`explain_mail`]) it.
    Explain { seq: i64 },
}

/// How many rows were checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Checked {
    pub messages: u64,
    pub statuses: u64,
    pub deliveries: u64,
    pub registry: u64,
    /// Mails taken in (mail log rows).
    pub mails: u64,
    pub drafts: u64,
    pub draft_files: u64,
    pub mail_checkpoints: u64,
    pub mail_replies: u64,
}

#[derive(Debug)]
struct Digested {
    seq: i64,
    action: &'static str,
    mask: u32,
    digest: [u8; 16],
}

impl Digested {
    /// A row's `values` against this digest of its record: the same, or to be explained from
    /// record `seq` (which says which field differs).
    fn check<const N: usize>(&self, values: &[Value; N]) -> RowCheck {
        let refs: [&Value; N] = std::array::from_fn(|i| &values[i]);
        if digest_of(&refs, self.mask) == self.digest {
            RowCheck::Matches
        } else {
            RowCheck::Explain { seq: self.seq }
        }
    }
}

#[derive(Debug)]
struct Replay<const N: usize> {
    created_seq: i64,
    created_by: &'static str,
    last_seq: i64,
    last_action: &'static str,
    fields: Attested<N>,
}

/// What the last record about a row says it holds (a draft file, a checkpoint, a reply row).
#[derive(Debug)]
struct Claim<const N: usize> {
    seq: i64,
    action: &'static str,
    fields: Attested<N>,
}

/// What the records say of one registry code: an entry, or none (removed).
#[derive(Debug)]
struct RegistryClaim {
    seq: i64,
    action: &'static str,
    fields: Option<Attested<R>>,
}

/// The cross-check of one store (see the module documentation).
#[derive(Debug, Default)]
pub struct CrossCheck {
    messages: HashMap<i64, Digested>,
    statuses: HashMap<i64, Digested>,
    deliveries: HashMap<i64, Replay<D>>,
    registry: HashMap<String, RegistryClaim>,
    mails: HashMap<i64, Digested>,
    drafts: HashMap<i64, Replay<DR>>,
    draft_files: HashMap<(i64, i64), Claim<F>>,
    checkpoints: HashMap<String, Claim<C>>,
    replies: HashMap<String, Claim<Y>>,
    checked: Checked,
}

/// The action names records use, as `'static` (what a digest keeps instead of the string).
fn action_name(action: &str) -> &'static str {
    const KNOWN: [&str; 17] = [
        "registry.set",
        "registry.remove",
        "document.submit",
        "document.receive",
        "status.record",
        "delivery.claim",
        "delivery.delivered",
        "delivery.retry",
        "delivery.fail",
        "delivery.reject",
        "delivery.cancel",
        "delivery.operator_retry",
        "delivery.relayed",
        "delivery.bounce",
        "mail.take",
        "draft.approve",
        "draft.discard",
    ];
    KNOWN
        .into_iter()
        .find(|k| *k == action)
        .unwrap_or("another action")
}

impl CrossCheck {
    pub fn new() -> CrossCheck {
        CrossCheck::default()
    }

    /// Takes in what one record (of a verified chain, in `seq` order) says about rows.
    pub fn record(&mut self, r: &AuditRecord) {
        let relevant = matches!(
            r.action.as_str(),
            "document.submit"
                | "document.receive"
                | "status.record"
                | "registry.set"
                | "registry.remove"
                | "mail.take"
        ) || r.action.starts_with("delivery.")
            || r.action.starts_with("draft.");
        if !relevant {
            return;
        }
        let Ok(detail) = serde_json::from_str::<serde_json::Value>(&r.detail) else {
            return;
        };
        let action = action_name(&r.action);
        if let Some((id, attested)) = claims::message(r, &detail) {
            let (mask, digest) = digest_attested(&attested);
            let seq = r.seq;
            self.messages.insert(
                id,
                Digested {
                    seq,
                    action,
                    mask,
                    digest,
                },
            );
        }
        if let Some((id, attested)) = claims::status(r, &detail) {
            let (mask, digest) = digest_attested(&attested);
            self.statuses.insert(
                id,
                Digested {
                    seq: r.seq,
                    action,
                    mask,
                    digest,
                },
            );
        }
        for (id, fields) in claims::created_deliveries(r, &detail) {
            self.deliveries.insert(
                id,
                Replay {
                    created_seq: r.seq,
                    created_by: action,
                    last_seq: r.seq,
                    last_action: action,
                    fields,
                },
            );
        }
        if r.action.starts_with("registry.") {
            let previous = self
                .registry
                .get(&r.entity_id)
                .and_then(|c| c.fields.as_ref());
            let fields = claims::registry(r, &detail, previous);
            self.registry.insert(
                r.entity_id.clone(),
                RegistryClaim {
                    seq: r.seq,
                    action,
                    fields,
                },
            );
        }
        for id in claims::delivery_changes(r, &detail) {
            if let Some(d) = self.deliveries.get_mut(&id) {
                claims::apply(&mut d.fields, r, &detail);
                d.last_seq = r.seq;
                d.last_action = action;
            }
        }
        self.mail_record(r, &detail, action);
    }

    /// What a `mail.take` or a clerk's decision on a draft says about the mail bridge's rows.
    fn mail_record(&mut self, r: &AuditRecord, detail: &serde_json::Value, action: &'static str) {
        if let Some((id, attested)) = claims::mail(r, detail) {
            let (mask, digest) = digest_attested(&attested);
            self.mails.insert(
                id,
                Digested {
                    seq: r.seq,
                    action,
                    mask,
                    digest,
                },
            );
        }
        if let Some((id, fields, files)) = claims::draft_created(r, detail) {
            self.drafts.insert(
                id,
                Replay {
                    created_seq: r.seq,
                    created_by: action,
                    last_seq: r.seq,
                    last_action: action,
                    fields,
                },
            );
            for (index, fields) in files {
                self.draft_files.insert(
                    (id, index),
                    Claim {
                        seq: r.seq,
                        action,
                        fields,
                    },
                );
            }
        }
        if let Some((mailbox, fields)) = claims::checkpoint(r, detail) {
            self.checkpoints.insert(
                mailbox,
                Claim {
                    seq: r.seq,
                    action,
                    fields,
                },
            );
        }
        if let Some((address, fields)) = claims::reply(r, detail) {
            self.replies.insert(
                address,
                Claim {
                    seq: r.seq,
                    action,
                    fields,
                },
            );
        }
        if r.action.starts_with("draft.")
            && let Ok(id) = r.entity_id.parse::<i64>()
            && let Some(d) = self.drafts.get_mut(&id)
        {
            claims::draft_decided(&mut d.fields, r, detail);
            d.last_seq = r.seq;
            d.last_action = action;
        }
    }

    /// Checks one `messages` row (each row once).
    pub fn message(&mut self, row: &MessageRow) -> RowCheck {
        self.checked.messages += 1;
        let Some(d) = self.messages.remove(&row.id) else {
            return RowCheck::Differs(unrecorded(Entity::Message, row.id.to_string()));
        };
        d.check(&row.values())
    }

    /// Checks one `statuses` row (each row once).
    pub fn status(&mut self, row: &StatusRow) -> RowCheck {
        self.checked.statuses += 1;
        let Some(d) = self.statuses.remove(&row.id) else {
            return RowCheck::Differs(unrecorded(Entity::Status, row.id.to_string()));
        };
        d.check(&row.values())
    }

    /// Checks one `deliveries` row (each row once) against its replayed transitions.
    pub fn delivery(&mut self, row: &DeliveryRow) -> Vec<Difference> {
        self.checked.deliveries += 1;
        let Some(d) = self.deliveries.remove(&row.id) else {
            return vec![unrecorded(Entity::Delivery, row.id.to_string())];
        };
        let found = row.values();
        differences(
            Entity::Delivery,
            &row.id.to_string(),
            &d.fields,
            &found,
            &DELIVERY_FIELDS,
            (d.last_seq, d.last_action),
            None,
        )
    }

    /// Checks one registry entry (each code once) against the last record about its code.
    pub fn registry(&mut self, row: &RegistryRow) -> Vec<Difference> {
        self.checked.registry += 1;
        let Some(claim) = self.registry.remove(&row.code) else {
            return vec![unrecorded(Entity::Registry, row.code.clone())];
        };
        let Some(fields) = claim.fields else {
            return vec![Difference {
                entity: Entity::Registry,
                id: row.code.clone(),
                code: Code::AuditBroken,
                field: None,
                message: format!(
                    "present, but audit record {} ({}) removed it",
                    claim.seq, claim.action
                ),
            }];
        };
        differences(
            Entity::Registry,
            &row.code,
            &fields,
            &row.values(),
            &REGISTRY_FIELDS,
            (claim.seq, claim.action),
            None,
        )
    }

    /// Checks one `mail_log` row (each row once).
    pub fn mail(&mut self, row: &MailRow) -> RowCheck {
        self.checked.mails += 1;
        let Some(d) = self.mails.remove(&row.id) else {
            return RowCheck::Differs(unrecorded(Entity::Mail, row.id.to_string()));
        };
        d.check(&row.values())
    }

    /// Checks one draft (each once) against the `mail.take` that created it and the clerk's
    /// decision since.
    pub fn draft(&mut self, row: &DraftRow) -> Vec<Difference> {
        self.checked.drafts += 1;
        let Some(d) = self.drafts.remove(&row.id) else {
            return vec![unrecorded(Entity::Draft, row.id.to_string())];
        };
        differences(
            Entity::Draft,
            &row.id.to_string(),
            &d.fields,
            &row.values(),
            &DRAFT_FIELDS,
            (d.last_seq, d.last_action),
            None,
        )
    }

    /// Checks one draft file (each once); bytes that do not hash to the recorded SHA-256 are
    /// `STORE_CORRUPT`.
    pub fn draft_file(&mut self, row: &DraftFileRow) -> Vec<Difference> {
        self.checked.draft_files += 1;
        let id = format!("{}/{}", row.draft_id, row.index);
        let Some(c) = self.draft_files.remove(&(row.draft_id, row.index)) else {
            return vec![unrecorded(Entity::DraftFile, id)];
        };
        differences(
            Entity::DraftFile,
            &id,
            &c.fields,
            &row.values(),
            &DRAFT_FILE_FIELDS,
            (c.seq, c.action),
            Some(FILE_BYTES),
        )
    }

    /// Checks one mailbox checkpoint (each mailbox once) against the mailbox's last `mail.take`.
    pub fn checkpoint(&mut self, row: &CheckpointRow) -> Vec<Difference> {
        self.checked.mail_checkpoints += 1;
        let Some(c) = self.checkpoints.remove(&row.mailbox) else {
            return vec![unrecorded(Entity::MailCheckpoint, row.mailbox.clone())];
        };
        differences(
            Entity::MailCheckpoint,
            &row.mailbox,
            &c.fields,
            &row.values(),
            &CHECKPOINT_FIELDS,
            (c.seq, c.action),
            None,
        )
    }

    /// Checks one reply rate-limit row (each address once) against the last `mail.take` that
    /// replied to it.
    pub fn reply(&mut self, row: &ReplyRow) -> Vec<Difference> {
        self.checked.mail_replies += 1;
        let Some(c) = self.replies.remove(&row.address) else {
            return vec![unrecorded(Entity::MailReply, row.address.clone())];
        };
        differences(
            Entity::MailReply,
            &row.address,
            &c.fields,
            &row.values(),
            &REPLY_FIELDS,
            (c.seq, c.action),
            None,
        )
    }

    /// What was checked, and every row a record created that no row was found for.
    pub fn finish(self) -> (Checked, Vec<Difference>) {
        let mut missing: Vec<Difference> = Vec::new();
        let gone = |entity, id: String, seq, action| Difference {
            entity,
            id,
            code: Code::AuditBroken,
            field: None,
            message: format!("missing (audit record {seq}, {action}, created it)"),
        };
        for (id, d) in self.messages {
            missing.push(gone(Entity::Message, id.to_string(), d.seq, d.action));
        }
        for (id, d) in self.statuses {
            missing.push(gone(Entity::Status, id.to_string(), d.seq, d.action));
        }
        for (id, d) in self.deliveries {
            missing.push(gone(
                Entity::Delivery,
                id.to_string(),
                d.created_seq,
                d.created_by,
            ));
        }
        for (code, c) in self.registry {
            if c.fields.is_some() {
                missing.push(gone(Entity::Registry, code, c.seq, c.action));
            }
        }
        for (id, d) in self.mails {
            missing.push(gone(Entity::Mail, id.to_string(), d.seq, d.action));
        }
        for (id, d) in self.drafts {
            missing.push(gone(
                Entity::Draft,
                id.to_string(),
                d.created_seq,
                d.created_by,
            ));
        }
        for ((draft, index), c) in self.draft_files {
            missing.push(gone(
                Entity::DraftFile,
                format!("{draft}/{index}"),
                c.seq,
                c.action,
            ));
        }
        for (mailbox, c) in self.checkpoints {
            missing.push(gone(Entity::MailCheckpoint, mailbox, c.seq, c.action));
        }
        for (address, c) in self.replies {
            missing.push(gone(Entity::MailReply, address, c.seq, c.action));
        }
        // By entity, then by id (numerically for numbers).
        missing.sort_by(|a, b| {
            (a.entity as u8, a.id.len(), &a.id).cmp(&(b.entity as u8, b.id.len(), &b.id))
        });
        (self.checked, missing)
    }
}

fn unrecorded(entity: Entity, id: String) -> Difference {
    Difference {
        entity,
        id,
        code: Code::AuditBroken,
        field: None,
        message: "no audit record created it".into(),
    }
}

/// Names each field of a message row that differs from record `r` (the record
/// [`RowCheck::Explain`] pointed at).
pub fn explain_message(r: &AuditRecord, row: &MessageRow) -> Vec<Difference> {
    let attested = parse(r).and_then(|d| claims::message(r, &d));
    let names = (&MESSAGE_FIELDS, Some(BYTES));
    explain(Entity::Message, row.id, r, attested, &row.values(), names)
}

/// Names each field of a status row that differs from record `r`.
pub fn explain_status(r: &AuditRecord, row: &StatusRow) -> Vec<Difference> {
    let attested = parse(r).and_then(|d| claims::status(r, &d));
    explain(
        Entity::Status,
        row.id,
        r,
        attested,
        &row.values(),
        (&STATUS_FIELDS, None),
    )
}

/// Names each field of a mail log row that differs from record `r` (its `mail.take`).
pub fn explain_mail(r: &AuditRecord, row: &MailRow) -> Vec<Difference> {
    let attested = parse(r).and_then(|d| claims::mail(r, &d));
    explain(
        Entity::Mail,
        row.id,
        r,
        attested,
        &row.values(),
        (&MAIL_FIELDS, None),
    )
}

/// The fields of row `id` (its values `found`) that differ from what record `r` attests
/// (`names` the fields, and which one is the stored bytes' hash), or one difference saying
/// the record does not explain the row when it attests nothing or no field differs.
fn explain<const N: usize, T>(
    entity: Entity,
    id: i64,
    r: &AuditRecord,
    attested: Option<(T, Attested<N>)>,
    found: &[Value; N],
    (names, bytes): (&[&'static str; N], Option<usize>),
) -> Vec<Difference> {
    let Some((_, attested)) = attested else {
        return vec![unexplained(entity, id, r)];
    };
    let by = (r.seq, r.action.as_str());
    let out = differences(entity, &id.to_string(), &attested, found, names, by, bytes);
    if out.is_empty() {
        vec![unexplained(entity, id, r)]
    } else {
        out
    }
}

fn parse(r: &AuditRecord) -> Option<serde_json::Value> {
    serde_json::from_str(&r.detail).ok()
}

fn unexplained(entity: Entity, id: i64, r: &AuditRecord) -> Difference {
    Difference {
        entity,
        id: id.to_string(),
        code: Code::AuditBroken,
        field: None,
        message: format!("differs from audit record {} ({})", r.seq, r.action),
    }
}

/// The fields where `found` is not what `expected` (record `seq`, an `action`) says (fields
/// `expected` does not know are skipped). A hashed text field is named without its values
/// (`subject differs from …`); the stored bytes' hash (field `bytes`: a package's, a draft
/// file's) is `STORE_CORRUPT`.
fn differences<const N: usize>(
    entity: Entity,
    id: &str,
    expected: &Attested<N>,
    found: &[Value; N],
    names: &[&'static str; N],
    (seq, action): (i64, &str),
    bytes: Option<usize>,
) -> Vec<Difference> {
    let by = format!("audit record {seq} ({action})");
    let mut out = Vec::new();
    for i in 0..N {
        let Some(want) = &expected[i] else { continue };
        let got = &found[i];
        if want == got {
            continue;
        }
        let name = names[i];
        let (code, message) = if bytes == Some(i) {
            let what = if entity == Entity::Message {
                "package"
            } else {
                "file"
            };
            (
                Code::StoreCorrupt,
                format!("{what} bytes hash to {got}, {by} says {want}"),
            )
        } else if let Some(text) = name
            .strip_suffix("_sha256")
            .or_else(|| (name == "rules").then_some(name))
            && !matches!(want, Value::Null)
            && !matches!(got, Value::Null)
        {
            let verb = if text == "rules" { "differ" } else { "differs" };
            (Code::AuditBroken, format!("{text} {verb} from {by}"))
        } else {
            (
                Code::AuditBroken,
                format!("{name} is {got}, {by} says {want}"),
            )
        };
        out.push(Difference {
            entity,
            id: id.to_owned(),
            code,
            field: Some(name),
            message,
        });
    }
    out
}

/// Most differences a [`Report`] lists; the rest are counted.
pub const MAX_LISTED: usize = 1000;

/// A store cross-checked against its verified chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub chain: super::ChainSummary,
    pub checked: Checked,
    /// How many bytes of packages were read and hashed.
    pub package_bytes: u64,
    /// What differs, in the order found (rows by id, then missing rows); at most
    /// [`MAX_LISTED`].
    pub differences: Vec<Difference>,
    /// Differences found beyond those listed.
    pub unlisted: u64,
}

impl Report {
    /// Adds a difference (listed while there is room, counted after).
    pub fn push(&mut self, d: Difference) {
        if self.differences.len() < MAX_LISTED {
            self.differences.push(d);
        } else {
            self.unlisted += 1;
        }
    }

    /// No row differs from the chain.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty() && self.unlisted == 0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::audit::hash::sha256_hex;
    use crate::audit::{AuditEntry, ChainHead};

    fn record(
        seq: i64,
        actor: &str,
        action: &str,
        kind: &str,
        id: i64,
        d: serde_json::Value,
    ) -> AuditRecord {
        let head = ChainHead {
            seq: seq - 1,
            hash: [0; 32],
        };
        AuditRecord::next(
            head,
            1000 + seq,
            AuditEntry::new(actor, action, kind, id, &d),
        )
    }

    const BYTES: &[u8] = b"<edXML>05</edXML>";

    /// A `document.submit` record as the store wrote them before the cross-check existed: no
    /// subject, header or signer.
    fn old_submit() -> AuditRecord {
        record(
            1,
            "clerk:000.00.05.H21:lan",
            "document.submit",
            "message",
            7,
            json!({
                "sender": "000.00.05.H21", "document_id": "D1", "business_type": 0,
                "code": "05/STTTT", "year": 2026, "sha256": sha256_hex(BYTES), "size": BYTES.len(),
                "idempotency_key": null,
                "deliveries": [{ "id": 3, "recipient": "000.00.00.H41", "route": "peer:nghean" }],
            }),
        )
    }

    fn row() -> MessageRow {
        MessageRow {
            id: 7,
            direction: "out".into(),
            kind: "document".into(),
            sender: "000.00.05.H21".into(),
            document_id: "D1".into(),
            business_type: Some(0),
            status_code: None,
            code_number: Some("05".into()),
            code_notation: Some("STTTT".into()),
            code_year: Some(2026),
            subject: Some("V/v thử nghiệm".into()),
            sha256: sha256_hex(BYTES),
            size: BYTES.len() as i64,
            signer_subject: Some("CN=Gia Lai".into()),
            signer_fingerprint: None,
            header_json: "{}".into(),
            peer: None,
            actor: "clerk:000.00.05.H21:lan".into(),
            created_at: 1001,
            receipt_sha256: None,
            bytes_sha256: Ok(sha256_hex(BYTES)),
            inbox: Vec::new(),
        }
    }

    #[test]
    fn an_older_record_checks_only_the_fields_it_carries() {
        let r = old_submit();
        let mut c = CrossCheck::new();
        c.record(&r);
        let mut other = row();
        other.subject = Some("anything".into());
        other.header_json = r#"{"x":1}"#.into();
        assert_eq!(c.message(&other), RowCheck::Matches);

        let mut c = CrossCheck::new();
        c.record(&r);
        let mut bad = row();
        bad.sha256 = "00".repeat(32);
        bad.bytes_sha256 = Ok("11".repeat(32));
        assert_eq!(c.message(&bad), RowCheck::Explain { seq: 1 });
        let named = explain_message(&r, &bad);
        let fields: Vec<_> = named.iter().map(|d| (d.field, d.code)).collect();
        assert_eq!(
            fields,
            [
                (Some("sha256"), Code::AuditBroken),
                (Some("bytes_sha256"), Code::StoreCorrupt)
            ]
        );
        assert_eq!(
            named[1].to_string(),
            format!(
                "message 7: package bytes hash to {}, audit record 1 (document.submit) says {}",
                "11".repeat(32),
                sha256_hex(BYTES)
            )
        );
    }

    #[test]
    fn a_record_that_carries_the_subject_names_it_without_showing_it() {
        let mut d: serde_json::Value = serde_json::from_str(&old_submit().detail).unwrap();
        d["subject_sha256"] = json!(sha256_hex("V/v thử nghiệm".as_bytes()));
        let r = record(
            1,
            "clerk:000.00.05.H21:lan",
            "document.submit",
            "message",
            7,
            d,
        );
        let mut c = CrossCheck::new();
        c.record(&r);
        let mut edited = row();
        edited.subject = Some("V/v khác".into());
        assert_eq!(c.message(&edited), RowCheck::Explain { seq: 1 });
        let named = explain_message(&r, &edited);
        assert_eq!(named.len(), 1);
        assert_eq!(
            named[0].to_string(),
            "message 7: subject differs from audit record 1 (document.submit)"
        );
        // A subject set to NULL shows it.
        edited.subject = None;
        assert!(
            explain_message(&r, &edited)[0]
                .message
                .starts_with("subject_sha256 is null")
        );
    }

    fn delivery_row(state: &str) -> DeliveryRow {
        DeliveryRow {
            id: 3,
            message_id: 7,
            recipient: "000.00.00.H41".into(),
            route: "peer:nghean".into(),
            state: state.into(),
            attempts: 1,
            lease_owner: None,
            lease_until: None,
            current_attempt_id: None,
            next_attempt_at: Some(1004),
            last_error_code: Some("PEER_UNREACHABLE".into()),
            last_error_message: Some("refused".into()),
            delivered_at: None,
            receipt_sha256: None,
            retry_from: Some(1004),
            created_at: 1001,
            updated_at: 1004,
        }
    }

    /// Created, claimed, retried, then retried by an operator: the row must be `queued` with
    /// the retry's error and the operator's times.
    fn replayed() -> (CrossCheck, Vec<AuditRecord>) {
        let records = vec![
            old_submit(),
            record(
                2,
                "outbox:1",
                "delivery.claim",
                "delivery",
                3,
                json!({ "from": "queued", "to": "sending", "attempt": 1, "attempt_id": 9, "lease_until": 9000 }),
            ),
            record(
                3,
                "outbox:1",
                "delivery.retry",
                "delivery",
                3,
                json!({ "from": "sending", "to": "retrying", "attempt_id": 9, "next_attempt_at": 5000,
                        "error": { "code": "PEER_UNREACHABLE", "message": "refused" } }),
            ),
            record(
                4,
                "admin:hoa",
                "delivery.operator_retry",
                "delivery",
                3,
                json!({ "from": "retrying", "to": "queued" }),
            ),
        ];
        let mut c = CrossCheck::new();
        for r in &records {
            c.record(r);
        }
        (c, records)
    }

    #[test]
    fn deliveries_are_replayed_through_their_transitions() {
        let (mut c, _) = replayed();
        assert_eq!(c.delivery(&delivery_row("queued")), []);

        let (mut c, _) = replayed();
        let named = c.delivery(&delivery_row("delivered"));
        assert_eq!(named.len(), 1, "{named:?}");
        assert_eq!(
            named[0].to_string(),
            "delivery 3: state is delivered, audit record 4 (delivery.operator_retry) says queued"
        );
    }

    #[test]
    fn an_action_this_version_does_not_know_leaves_the_state_unchecked() {
        let (mut c, _) = replayed();
        c.record(&record(
            5,
            "admin:hoa",
            "delivery.archive",
            "delivery",
            3,
            json!({}),
        ));
        assert_eq!(c.delivery(&delivery_row("archived")), []);
    }

    #[test]
    fn missing_and_unrecorded_rows_are_named() {
        let (mut c, _) = replayed();
        let mut stranger = row();
        stranger.id = 8;
        match c.message(&stranger) {
            RowCheck::Differs(d) => {
                assert_eq!(d.to_string(), "message 8: no audit record created it")
            }
            other => panic!("{other:?}"),
        }
        let (checked, missing) = c.finish();
        assert_eq!(checked.messages, 1);
        let named: Vec<String> = missing.iter().map(ToString::to_string).collect();
        assert_eq!(
            named,
            [
                "message 7: missing (audit record 1, document.submit, created it)",
                "delivery 3: missing (audit record 1, document.submit, created it)",
            ]
        );
    }

    /// A mail delivery: claimed, accepted by the relay, then bounced. After the relay's word
    /// the row is `delivered` with no receipt; after the bounce `failed`, with the bounce's
    /// error and one attempt more.
    #[test]
    fn a_relayed_then_bounced_delivery_is_replayed() {
        let records = [
            old_submit(),
            record(
                2,
                "outbox:1",
                "delivery.claim",
                "delivery",
                3,
                json!({ "from": "queued", "to": "sending", "attempt": 1, "attempt_id": 9,
                        "lease_until": 9000 }),
            ),
            record(
                3,
                "outbox:1",
                "delivery.relayed",
                "delivery",
                3,
                json!({ "from": "sending", "to": "delivered", "attempt_id": 9,
                        "reply": "250 2.0.0 Ok" }),
            ),
            record(
                4,
                "mail:box",
                "delivery.bounce",
                "delivery",
                3,
                json!({ "from": "delivered", "to": "failed", "attempt": 2, "attempt_id": 10,
                        "error": { "code": "MAIL_BOUNCED", "message": "5.1.1 unknown" } }),
            ),
        ];
        let feed = |upto: usize| {
            let mut c = CrossCheck::new();
            for r in &records[..upto] {
                c.record(r);
            }
            c
        };
        let relayed = DeliveryRow {
            state: "delivered".into(),
            next_attempt_at: None,
            last_error_code: None,
            last_error_message: None,
            delivered_at: Some(1003),
            retry_from: None,
            updated_at: 1003,
            ..delivery_row("delivered")
        };
        assert_eq!(feed(3).delivery(&relayed), []);
        let bounced = DeliveryRow {
            state: "failed".into(),
            attempts: 2,
            last_error_code: Some("MAIL_BOUNCED".into()),
            last_error_message: Some("5.1.1 unknown".into()),
            updated_at: 1004,
            ..relayed.clone()
        };
        assert_eq!(feed(4).delivery(&bounced), []);

        // Put back to delivered by hand after the bounce: named against it.
        let named: Vec<String> = feed(4)
            .delivery(&relayed)
            .iter()
            .map(ToString::to_string)
            .collect();
        let by = "audit record 4 (delivery.bounce)";
        assert_eq!(
            named,
            [
                format!("delivery 3: state is delivered, {by} says failed"),
                format!("delivery 3: attempts is 1, {by} says 2"),
                format!("delivery 3: last_error_code is null, {by} says MAIL_BOUNCED"),
                format!("delivery 3: last_error_message is null, {by} says 5.1.1 unknown"),
                format!("delivery 3: updated_at is 1003, {by} says 1004"),
            ]
        );
    }

    /// A `mail.take` that made a draft and replied: the log row, the draft and its file, the
    /// checkpoint and the reply row as it says; the draft as a clerk's discard left it.
    fn taken() -> Vec<AuditRecord> {
        vec![
            record(
                1,
                "mail:box",
                "mail.take",
                "mail",
                4,
                json!({
                    "mailbox": "box", "uidvalidity": 7, "uid": 12, "return_path": "a@b.vn",
                    "from": "a@b.vn", "subject_sha256": sha256_hex("V/v nháp".as_bytes()),
                    "message_id": "m1@b.vn", "size": 900, "outcome": "draft", "code": null,
                    "reason": null, "message_ref": null, "draft_ref": 2, "delivery_ref": null,
                    "replied": false, "reply_to": null,
                    "draft": {
                        "id": 2, "agency": "000.00.11.H21", "code_number": "12",
                        "code_notation": null, "summary_sha256": sha256_hex("V/v nháp".as_bytes()),
                        "body_sha256": sha256_hex(b""),
                        "files": [{ "index": 0, "name": "a.pdf", "content_type": "application/pdf",
                                    "size": 3, "sha256": sha256_hex(b"pdf") }],
                    },
                }),
            ),
            record(
                2,
                "mail:box",
                "mail.take",
                "mail",
                5,
                json!({
                    "mailbox": "box", "uidvalidity": 7, "uid": 13, "return_path": "x@y.vn",
                    "from": "x@y.vn", "subject_sha256": sha256_hex(b"?"), "message_id": null,
                    "size": 10, "outcome": "quarantined", "code": "MAIL_NOT_UNDERSTOOD",
                    "reason": "no package", "message_ref": null, "draft_ref": null,
                    "delivery_ref": null, "replied": true, "reply_to": "x@y.vn",
                }),
            ),
            record(
                3,
                "clerk:000.00.11.H21:mai",
                "draft.discard",
                "draft",
                2,
                json!({ "from": "draft", "to": "discarded", "reason": "trùng" }),
            ),
        ]
    }

    fn mail_row() -> MailRow {
        MailRow {
            id: 4,
            mailbox: "box".into(),
            uidvalidity: 7,
            uid: 12,
            return_path: "a@b.vn".into(),
            from: "a@b.vn".into(),
            subject: "V/v nháp".into(),
            message_id: Some("m1@b.vn".into()),
            size: 900,
            outcome: "draft".into(),
            code: None,
            reason: None,
            message_ref: None,
            draft_ref: Some(2),
            delivery_ref: None,
            replied: false,
            taken_at: 1001,
        }
    }

    fn draft_row() -> DraftRow {
        DraftRow {
            id: 2,
            agency: "000.00.11.H21".into(),
            state: "discarded".into(),
            code_number: Some("12".into()),
            code_notation: None,
            summary: "V/v nháp".into(),
            body: String::new(),
            created_at: 1001,
            decided_at: Some(1003),
            decided_by: Some("clerk:000.00.11.H21:mai".into()),
            reason: Some("trùng".into()),
            message_id: None,
            mail_log_id: 4,
        }
    }

    #[test]
    fn mail_rows_are_what_their_take_says() {
        let feed = || {
            let mut c = CrossCheck::new();
            for r in taken() {
                c.record(&r);
            }
            c
        };
        let file = DraftFileRow {
            draft_id: 2,
            index: 0,
            name: "a.pdf".into(),
            content_type: "application/pdf".into(),
            size: 3,
            sha256: sha256_hex(b"pdf"),
            bytes_sha256: sha256_hex(b"pdf"),
        };
        let checkpoint = CheckpointRow {
            mailbox: "box".into(),
            uidvalidity: 7,
            last_uid: 13,
            updated_at: 1002,
        };
        let reply = ReplyRow {
            address: "x@y.vn".into(),
            last_reply_at: 1002,
        };
        let mut c = feed();
        assert_eq!(c.mail(&mail_row()), RowCheck::Matches);
        assert_eq!(c.draft(&draft_row()), []);
        assert_eq!(c.draft_file(&file), []);
        assert_eq!(c.checkpoint(&checkpoint), []);
        assert_eq!(c.reply(&reply), []);
        let (checked, missing) = c.finish();
        assert_eq!(
            (checked.mails, checked.drafts, checked.draft_files),
            (1, 1, 1)
        );
        // The quarantined mail's row was never read: it is missing.
        assert_eq!(
            missing.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["mail 5: missing (audit record 2, mail.take, created it)"]
        );

        // Changed by hand: each named, the file's bytes as STORE_CORRUPT.
        let mut c = feed();
        let edited = MailRow {
            subject: "V/v khác".into(),
            ..mail_row()
        };
        assert_eq!(c.mail(&edited), RowCheck::Explain { seq: 1 });
        assert_eq!(
            explain_mail(&taken()[0], &edited)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["mail 4: subject differs from audit record 1 (mail.take)"]
        );
        let undone = DraftRow {
            state: "draft".into(),
            ..draft_row()
        };
        assert_eq!(
            c.draft(&undone)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["draft 2: state is draft, audit record 3 (draft.discard) says discarded"]
        );
        let damaged = c.draft_file(&DraftFileRow {
            bytes_sha256: sha256_hex(b"PDF"),
            ..file
        });
        assert_eq!(damaged.len(), 1);
        assert_eq!(damaged[0].code, Code::StoreCorrupt);
        assert_eq!(
            damaged[0].to_string(),
            format!(
                "draft file 2/0: file bytes hash to {}, audit record 1 (mail.take) says {}",
                sha256_hex(b"PDF"),
                sha256_hex(b"pdf")
            )
        );
        assert_eq!(
            c.checkpoint(&CheckpointRow {
                last_uid: 12,
                ..checkpoint
            })
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
            ["mail checkpoint box: last_uid is 12, audit record 2 (mail.take) says 13"]
        );
        assert_eq!(
            c.reply(&ReplyRow {
                address: "z@y.vn".into(),
                last_reply_at: 1002
            })
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
            ["mail reply z@y.vn: no audit record created it"]
        );
    }
}
