//! The mailbox reader: the task that takes mail in from `[mail.imap]`, started by `serve` and
//! stopped on shutdown.
//!
//! A session: connect (on failure, again after a pause that doubles from 1 s up to
//! `reconnect_max`), create the `processed_folder` and `quarantine_folder` if missing, then
//! rounds until shutdown or a broken connection. A round selects the folder, reads the
//! checkpoint (`Store::mail_checkpoint`) and goes through the folder's mails in UID order:
//!
//! - a UID at or below the checkpoint (same UIDVALIDITY) was taken in already — the node
//!   stopped after its commit and before its move — and is only moved;
//! - a newer mail larger than `limits.max_bytes` (by the server's `RFC822.SIZE`) is
//!   quarantined from its header alone, never fetched whole;
//! - any other is fetched, read within the limits (`parse`), classified (`classify`) and taken
//!   in with `Store::take_mail`, which moves the checkpoint in the same transaction as what the
//!   mail produced; then it is moved to `processed_folder` or `quarantine_folder`.
//!
//! What a mail produces: a signed package is ingested exactly like one from a peer
//! (`Node::ingest_mail`: the signature binds the sender, never `From`; the same deduplication)
//! and its receipts go back to the sender's node when it has a route to one, else by mail to
//! the mail's reply address; a bounce fails the delivery it names (after checking its
//! `Message-ID` is that delivery's); a mail from an agency's registered mailbox with files
//! becomes a draft; anything else is quarantined with at most one Vietnamese reply per sender
//! per `reply_interval` (RFC 3834: never to automatic mail). A package refused for what it is
//! (signature, sender, conflict, …) is quarantined with that code; a failure that may pass
//! (`STORE_UNAVAILABLE`, `REVOCATION_UNKNOWN`) stops the round, and the mail is read again
//! later: a mail is never quarantined for a transient cause.
//!
//! Then it waits: IDLE when the server offers it (woken by new mail), at most `poll_every`;
//! otherwise a pause of `poll_every`.
//!
//! **Exactly once.** A crash at any moment neither loses a mail nor takes one in twice:
//!
//! - before `take_mail` commits, nothing about the mail is recorded but (for a package) the
//!   package itself, whose repeat is recognised by deduplication: the mail is read again from
//!   the checkpoint, its package is a duplicate that stores nothing and gets the original
//!   receipts, and `take_mail` records those receipts once (a receipt already recorded is not
//!   recorded again). Fault point `mail-ingested`.
//! - after `take_mail` commits and before the move, the mail is below the checkpoint: it is
//!   only moved (to where its mail log row says). Fault point `mail-taken`.
//! - during the move: `UID MOVE` is atomic; without MOVE (copy, flag, expunge) a crash may
//!   leave a copy in the target folder and the original in place, which the next round moves
//!   again — a second copy in the target folder, never a second taking in.
//! - an automatic reply is recorded as sent by `take_mail` before it is sent: a crash in
//!   between loses that reply (never sends two).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

use super::address::Address;
use super::classify::{self, Class, Context};
use super::compose::{self, ReplyMail};
use super::imap::{self, ImapError, Mailbox, Wake};
use super::outbound::MailKind;
use super::parse::{self, MailHeaders};
use crate::Code;
use crate::config::{ImapConfig, MailConfig};
use crate::node::routing::{self, Route};
use crate::node::service::{Node, now_ms};
use crate::store::{DeliveryState, DraftFile, MailEffect, NewDraft, SentMail, Store, TakenMail};

/// The first pause before reconnecting; it doubles up to `reconnect_max`.
const FIRST_PAUSE: Duration = Duration::from_secs(1);
/// The first pause after a round stopped on a transient failure; it doubles up to
/// `poll_every`.
const TRANSIENT_PAUSE: Duration = Duration::from_secs(2);

/// Starts the mailbox reader when `[mail.imap]` is configured (`None` otherwise). It stops
/// when `shutdown` turns `true`, between two mails (a mail being taken in is finished first)
/// or while waiting.
pub fn spawn<S: Store>(
    node: Node<S>,
    shutdown: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let mail = node.config.mail.clone()?;
    let imap = mail.imap.clone()?;
    let reader = Reader::new(node, mail, imap);
    Some(tokio::spawn(reader.run(shutdown)))
}

/// How a round ended, when the session is still good.
enum Round {
    /// Every mail in the folder is taken in and moved.
    Done,
    /// A transient failure stopped the round; what is left is read again later.
    Transient,
}

/// Why a session ended.
enum Ended {
    Shutdown,
    /// The connection broke (or could not be made); `connected`: it had been made.
    Broken {
        error: ImapError,
        connected: bool,
    },
}

/// What one mail became, for the move.
enum Outcome {
    /// Taken in (now or before): move it to this folder.
    Move(String),
    /// A transient failure: stop the round, read it again later.
    Transient,
}

struct Reader<S: Store> {
    node: Node<S>,
    mail: MailConfig,
    imap: ImapConfig,
    /// `user@host/folder`: the checkpoint's and the mail log's key.
    key: String,
    cx: Option<Context>,
    /// Where mails taken in by this process went (uid → folder), for a move that failed after
    /// the commit; after a restart the mail log says it.
    moved_to: HashMap<(u32, u32), String>,
}

impl<S: Store> Reader<S> {
    fn new(node: Node<S>, mail: MailConfig, imap: ImapConfig) -> Self {
        let key = format!("{}@{}/{}", imap.user, imap.host, imap.folder);
        let cx = context(&node, &mail);
        Reader {
            node,
            mail,
            imap,
            key,
            cx,
            moved_to: HashMap::new(),
        }
    }

    fn metrics(&self) -> &crate::node::metrics::MailMetrics {
        &self.node.metrics.mail
    }

    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        if self.cx.is_none() {
            tracing::error!(from = %self.mail.from, "[mail] from is not a mail address: the mailbox reader does not start");
            return;
        }
        let mut pause = FIRST_PAUSE;
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.session(&mut shutdown).await {
                Ended::Shutdown => break,
                Ended::Broken { error, connected } => {
                    self.metrics().set_imap_connected(false);
                    if connected {
                        pause = FIRST_PAUSE;
                    }
                    tracing::warn!(mailbox = %self.key, code = error.code, error = %error.message, pause_s = pause.as_secs_f64(), "mailbox session ended; reconnecting after a pause");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.changed() => {}
                    }
                    pause = (pause * 2).min(self.imap.reconnect_max.max(FIRST_PAUSE));
                }
            }
        }
        self.metrics().set_imap_connected(false);
        tracing::info!(mailbox = %self.key, "mailbox reader stopped");
    }

    /// One session, until shutdown or a broken connection.
    async fn session(&mut self, shutdown: &mut watch::Receiver<bool>) -> Ended {
        let connected = tokio::select! {
            c = Mailbox::connect(&self.imap) => c,
            _ = shutdown.changed() => return Ended::Shutdown,
        };
        let mut mb = match connected {
            Ok(mb) => mb,
            Err(error) => {
                self.imap_reach(&error);
                return Ended::Broken {
                    error,
                    connected: false,
                };
            }
        };
        self.metrics().imap_reach(Ok(()), now_ms());
        self.metrics().set_imap_connected(true);
        tracing::info!(mailbox = %self.key, idle = mb.has_idle(), "mailbox connected");
        let folders = [
            self.imap.processed_folder.clone(),
            self.imap.quarantine_folder.clone(),
        ];
        let folders: Vec<&str> = folders.iter().map(String::as_str).collect();
        if let Err(error) = mb.ensure_folders(&folders).await {
            self.imap_reach(&error);
            return Ended::Broken {
                error,
                connected: true,
            };
        }
        let mut transient_pause = TRANSIENT_PAUSE;
        loop {
            if *shutdown.borrow() {
                mb.logout().await;
                return Ended::Shutdown;
            }
            let wait = match self.round(&mut mb, shutdown).await {
                Ok(Round::Done) => {
                    self.metrics().polled(now_ms());
                    transient_pause = TRANSIENT_PAUSE;
                    self.imap.poll_every
                }
                Ok(Round::Transient) => {
                    let wait = transient_pause.min(self.imap.poll_every);
                    transient_pause = (transient_pause * 2).min(self.imap.poll_every);
                    wait
                }
                Err(error) => {
                    self.imap_reach(&error);
                    return Ended::Broken {
                        error,
                        connected: true,
                    };
                }
            };
            if *shutdown.borrow() {
                mb.logout().await;
                return Ended::Shutdown;
            }
            // IDLE (or a pause); a shutdown ends it at once (the session is then dropped: a
            // connection in the middle of IDLE is not worth a polite LOGOUT).
            let woke = tokio::select! {
                w = mb.idle_or_sleep(wait) => w,
                _ = shutdown.changed() => return Ended::Shutdown,
            };
            match woke {
                Ok(Wake::NewMail | Wake::Timeout) => {}
                Err(error) if error.reconnect => {
                    self.imap_reach(&error);
                    return Ended::Broken {
                        error,
                        connected: true,
                    };
                }
                Err(error) => {
                    tracing::warn!(mailbox = %self.key, code = error.code, error = %error.message, "waiting for new mail failed; reading the folder");
                }
            }
        }
    }

    fn imap_reach(&self, e: &ImapError) {
        // The server answered NO/BAD or refused a mail: it is up.
        let reach = match e.code {
            imap::IMAP_PROTOCOL | imap::IMAP_TOO_LARGE => Ok(()),
            _ => Err(format!("{}: {}", e.code, e.message)),
        };
        self.metrics().imap_reach(reach, now_ms());
    }

    /// One pass over the folder. `Err`: the session is spent.
    async fn round(
        &mut self,
        mb: &mut Mailbox,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<Round, ImapError> {
        let folder = mb.select(&self.imap.folder).await?;
        let checkpoint = match self.node.store.mail_checkpoint(&self.key).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(mailbox = %self.key, code = %e.code(), error = %e, "the checkpoint cannot be read; trying again later");
                return Ok(Round::Transient);
            }
        };
        // UIDs of the folder's earlier life mean nothing now: mails are recognised by Message-ID.
        let mut renumbered = false;
        let last = match checkpoint {
            Some(c) if c.uidvalidity == folder.uidvalidity => c.last_uid,
            Some(c) => {
                tracing::warn!(mailbox = %self.key, was = c.uidvalidity, now = folder.uidvalidity, "the folder's UIDVALIDITY changed: reading it from the start; mails already taken in are recognised by their Message-ID");
                renumbered = true;
                0
            }
            None => 0,
        };
        // Every mail still in the folder: those at or below the checkpoint were taken in and
        // only need their move.
        let listed = mb.list_after(0).await?;
        for (uid, size) in listed {
            if *shutdown.borrow() {
                break;
            }
            let outcome = if uid <= last {
                Outcome::Move(self.folder_of_taken(folder.uidvalidity, uid).await)
            } else if let Some(to) = match renumbered {
                true => {
                    self.taken_under_old_uids(mb, folder.uidvalidity, uid)
                        .await?
                }
                false => None,
            } {
                Outcome::Move(to)
            } else {
                self.take(mb, folder.uidvalidity, uid, size).await?
            };
            match outcome {
                Outcome::Move(to) => match mb.move_to(uid, &to).await {
                    Ok(()) => {
                        self.moved_to.remove(&(folder.uidvalidity, uid));
                    }
                    Err(e) if e.reconnect => return Err(e),
                    Err(e) => {
                        // Taken in; it stays in the folder below the checkpoint and is moved
                        // by a later round.
                        tracing::warn!(mailbox = %self.key, uid, folder = %to, code = e.code, error = %e.message, "moving a mail taken in failed; trying again next round");
                    }
                },
                Outcome::Transient => return Ok(Round::Transient),
            }
        }
        Ok(Round::Done)
    }

    /// Where a mail taken in before goes: as this process remembers, else as its mail log row
    /// says (quarantined → the quarantine folder), else the processed folder.
    async fn folder_of_taken(&self, uidvalidity: u32, uid: u32) -> String {
        if let Some(f) = self.moved_to.get(&(uidvalidity, uid)) {
            return f.clone();
        }
        match self
            .node
            .store
            .mail_taken(&self.key, uidvalidity, uid, None)
            .await
        {
            Ok(Some(row)) => self.folder_of(&row),
            _ => self.imap.processed_folder.clone(),
        }
    }

    /// The folder a mail with this log row belongs in.
    fn folder_of(&self, row: &crate::store::MailLogItem) -> String {
        if row.outcome == "quarantined" {
            self.imap.quarantine_folder.clone()
        } else {
            self.imap.processed_folder.clone()
        }
    }

    /// After the folder's UIDVALIDITY changed, mails left in it (a crash between a commit and
    /// the move) come back with new UIDs: one whose `Message-ID` the mail log already holds for
    /// this mailbox was taken in, and is only moved — a package would be a harmless repeat, but
    /// a draft or a quarantine reply would be made twice. `Ok(None)`: take it in.
    async fn taken_under_old_uids(
        &self,
        mb: &mut Mailbox,
        uidvalidity: u32,
        uid: u32,
    ) -> Result<Option<String>, ImapError> {
        let Some(headers) = self.header_only(mb, uid).await? else {
            return Ok(None);
        };
        let Some(mid) = headers.message_id.as_deref() else {
            return Ok(None);
        };
        Ok(
            match self
                .node
                .store
                .mail_taken(&self.key, uidvalidity, uid, Some(mid))
                .await
            {
                Ok(Some(row)) => Some(self.folder_of(&row)),
                _ => None,
            },
        )
    }

    /// Takes mail `uid` in. `Err`: the session is spent (nothing was committed for it, or it
    /// was and it is found below the checkpoint next time).
    async fn take(
        &mut self,
        mb: &mut Mailbox,
        uidvalidity: u32,
        uid: u32,
        size: u64,
    ) -> Result<Outcome, ImapError> {
        let limits = self.mail.limits;
        let read = if size > limits.max_bytes {
            Read::TooLarge {
                size,
                headers: self.header_only(mb, uid).await?,
            }
        } else {
            match mb.fetch(uid, limits.max_bytes).await {
                Ok(raw) => match parse::parse(&raw, &limits) {
                    Ok(mail) => Read::Mail(Box::new(mail)),
                    Err(refusal) => Read::Refused(refusal),
                },
                // The server's size was wrong: the mail is larger than it said.
                Err(e) if e.code == imap::IMAP_TOO_LARGE => Read::TooLarge {
                    size,
                    headers: self.header_only(mb, uid).await?,
                },
                Err(e) => return Err(e),
            }
        };
        Ok(self.take_read(uidvalidity, uid, size, read).await)
    }

    /// The headers of mail `uid`, from its header section alone (cut to the header limit).
    async fn header_only(
        &self,
        mb: &mut Mailbox,
        uid: u32,
    ) -> Result<Option<Box<MailHeaders>>, ImapError> {
        let limits = self.mail.limits;
        let header = mb
            .fetch_header(uid, u64::from(limits.max_headers_bytes))
            .await?;
        Ok(match parse::parse(&header, &limits) {
            Ok(m) => Some(Box::new(m.headers)),
            Err(r) => r.headers,
        })
    }

    async fn take_read(&mut self, uidvalidity: u32, uid: u32, size: u64, read: Read) -> Outcome {
        let Some(cx) = self.cx.clone() else {
            return Outcome::Transient;
        };
        let mut reply_vi = None;
        let (headers, effect) = match read {
            Read::TooLarge { size, headers } => {
                let headers = headers.map(|h| *h).unwrap_or_default();
                let effect = quarantined(
                    "MAIL_TOO_LARGE",
                    format!(
                        "the mail is {size} bytes, over the limit of {} ([mail.limits] max_bytes); \
                         quarantined from its header without reading it",
                        self.mail.limits.max_bytes
                    ),
                    classify::auto_reply_to(&headers, &cx.our_address),
                );
                reply_vi = Some(format!(
                    "Thư có dung lượng {} byte, vượt quá giới hạn {} byte mà hệ thống nhận.",
                    size, self.mail.limits.max_bytes
                ));
                (headers, effect)
            }
            Read::Refused(refusal) => {
                let headers = refusal.headers.as_deref().cloned().unwrap_or_default();
                reply_vi = Some(refusal.message_vi());
                let effect = quarantined(
                    refusal.code,
                    refusal.message.clone(),
                    classify::auto_reply_to(&headers, &cx.our_address),
                );
                (headers, effect)
            }
            Read::Mail(mail) => {
                let class = classify::classify(&mail, &cx);
                let headers = mail.headers.clone();
                // The classification holds what it needs (the package, the draft's files).
                drop(mail);
                match self.effect_of(class, &headers, &cx, &mut reply_vi).await {
                    Some(effect) => (headers, effect),
                    None => return Outcome::Transient,
                }
            }
        };
        self.commit(uidvalidity, uid, size, headers, effect, reply_vi)
            .await
    }

    /// What a classified mail produces; `None` on a transient failure (nothing committed).
    async fn effect_of(
        &self,
        class: Class,
        headers: &MailHeaders,
        cx: &Context,
        reply_vi: &mut Option<String>,
    ) -> Option<MailEffect> {
        let reply_to = || classify::auto_reply_to(headers, &cx.our_address);
        match class {
            Class::Package { bytes, name } => match self.node.ingest_mail(bytes, &self.key).await {
                Ok(ingested) => {
                    crate::fault::crash(crate::fault::Point::MailIngested);
                    self.package_effect(ingested, headers).await
                }
                Err(e) if transient(e.code()) => {
                    tracing::warn!(mailbox = %self.key, file = %name, code = %e.code(), error = %e, "a mailed package cannot be taken in now; trying again later");
                    None
                }
                Err(e) => {
                    tracing::warn!(mailbox = %self.key, file = %name, code = %e.code(), error = %e, "a mailed package was refused; quarantined");
                    *reply_vi = Some(format!(
                        "Gói tin “{name}” không được tiếp nhận ({}): {}",
                        e.code().as_str(),
                        e.code().message_vi()
                    ));
                    Some(quarantined(
                        e.code().as_str(),
                        format!("{name}: {e}"),
                        reply_to(),
                    ))
                }
            },
            Class::Bounce {
                delivery_id,
                message_id,
                reason,
            } => self.bounce_effect(delivery_id, &message_id, reason).await,
            Class::Draft {
                agency,
                code_number,
                code_notation,
                summary,
                body,
                files,
            } => Some(MailEffect::Draft(NewDraft {
                agency,
                code_number,
                code_notation,
                summary,
                body,
                files: files
                    .into_iter()
                    .map(|f| DraftFile {
                        name: f.name,
                        content_type: f.content_type,
                        bytes: f.bytes,
                    })
                    .collect(),
            })),
            Class::Quarantine {
                code,
                reason_en,
                reason_vi,
            } => {
                *reply_vi = Some(reason_vi);
                Some(quarantined(code, reason_en, reply_to()))
            }
        }
    }

    /// A mailed package stored (or found stored): a document with its receipts to send back,
    /// or a status.
    async fn package_effect(
        &self,
        ingested: crate::node::service::Ingested,
        headers: &MailHeaders,
    ) -> Option<MailEffect> {
        let info = match self.node.store.message(ingested.message_id).await {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(mailbox = %self.key, code = %e.code(), error = %e, "the stored package cannot be read back now; trying again later");
                return None;
            }
        };
        if info.kind == crate::store::Kind::Status {
            return Some(MailEffect::Status {
                message_id: Some(ingested.message_id),
            });
        }
        // The receipts go to the sender's node when this node has a route to one (or to the
        // sender itself here), else back to the mail's reply address.
        let route = match crate::edxml::OrganId::parse_lenient(&info.sender)
            .map(|code| routing::route(&self.node.config, &code))
        {
            Ok(r @ (Route::Peer(_) | Route::Local)) => r,
            _ => match headers.reply_to.as_ref().or(headers.from.as_ref()) {
                Some(a) => Route::Mail(a.as_str().to_owned()),
                None => Route::None,
            },
        };
        let actor = format!("mail:{}", self.key);
        match self
            .node
            .receipts_as_statuses(&ingested, info.business_type, &route, &actor)
        {
            Ok(receipts) => Some(MailEffect::Document {
                message_id: ingested.message_id,
                duplicate: ingested.duplicate,
                receipts,
            }),
            Err(e) => {
                tracing::error!(mailbox = %self.key, code = %e.code(), error = %e, "the receipts of a mailed document cannot be prepared; trying again later");
                None
            }
        }
    }

    /// A bounce naming delivery `delivery_id`: taken only when the `Message-ID` it names is
    /// exactly that delivery's (a forged or foreign bounce fails nothing).
    async fn bounce_effect(
        &self,
        delivery_id: i64,
        message_id: &str,
        reason: String,
    ) -> Option<MailEffect> {
        let unknown = |why: String| {
            Some(quarantined(
                "MAIL_BOUNCE_UNKNOWN",
                format!("a bounce naming {message_id}: {why}"),
                None,
            ))
        };
        let d = match self.node.store.delivery(delivery_id).await {
            Ok(d) => d,
            Err(e) if e.code() == Code::NotFound => {
                return unknown(format!("no delivery {delivery_id}"));
            }
            Err(e) => {
                tracing::warn!(mailbox = %self.key, code = %e.code(), error = %e, "the delivery a bounce names cannot be read now; trying again later");
                return None;
            }
        };
        let Route::Mail(address) = Route::from_stored(&d.route) else {
            return unknown(format!("delivery {delivery_id} is not a mail delivery"));
        };
        let Ok(address) = Address::parse(&address) else {
            return unknown(format!("delivery {delivery_id} has no mail address"));
        };
        if !compose::is_message_id_of(
            message_id,
            delivery_id,
            &d.document_id,
            &address,
            &self.mail.message_id_domain,
        ) {
            return unknown(format!(
                "it is not the Message-ID of delivery {delivery_id}"
            ));
        }
        Some(MailEffect::Bounce {
            delivery_id,
            reason,
        })
    }

    /// Takes the mail in (`take_mail`), then replies, notifies and counts; says where it goes.
    async fn commit(
        &mut self,
        uidvalidity: u32,
        uid: u32,
        size: u64,
        headers: MailHeaders,
        effect: MailEffect,
        reply_vi: Option<String>,
    ) -> Outcome {
        let (code, reply_to) = match &effect {
            MailEffect::Quarantined { code, reply_to, .. } => {
                (Some(code.clone()), reply_to.clone())
            }
            _ => (None, None),
        };
        // The delivery a bounce fails, read before (only one that is not failed yet moves).
        let bounced = match &effect {
            MailEffect::Bounce {
                delivery_id,
                reason,
            } => self
                .node
                .store
                .delivery(*delivery_id)
                .await
                .ok()
                .filter(|d| {
                    !matches!(
                        d.state,
                        DeliveryState::Failed | DeliveryState::Rejected | DeliveryState::Cancelled
                    )
                })
                .map(|d| (d, reason.clone())),
            _ => None,
        };
        let outcome_label = effect.outcome();
        let has_deliveries =
            matches!(&effect, MailEffect::Document { receipts, .. } if !receipts.is_empty());
        let taken = TakenMail {
            mailbox: self.key.clone(),
            uidvalidity,
            uid,
            return_path: headers.return_path.clone().unwrap_or_default(),
            from: headers
                .from
                .as_ref()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default(),
            subject: headers.subject.clone(),
            message_id: headers.message_id.clone(),
            size,
            effect,
            actor: format!("mail:{}", self.key),
        };
        let interval = i64::try_from(self.mail.reply_interval.as_millis()).unwrap_or(i64::MAX);
        let out = match self
            .node
            .store
            .take_mail(taken.clone(), interval, now_ms())
            .await
        {
            Ok(out) => out,
            // Taken in before (the checkpoint is past it): only its move is left. The same code
            // may refuse what the mail produced, so the checkpoint decides which it is.
            Err(e)
                if e.code() == Code::InvalidTransition
                    && self.taken_before(uidvalidity, uid).await =>
            {
                tracing::info!(mailbox = %self.key, uid, "mail taken in before; moving it");
                return Outcome::Move(self.folder_of_taken(uidvalidity, uid).await);
            }
            Err(e) if transient(e.code()) => {
                tracing::warn!(mailbox = %self.key, uid, code = %e.code(), error = %e, "the mail cannot be taken in now; trying again later");
                return Outcome::Transient;
            }
            Err(e) => {
                // The store refused what the mail produced: keep the mail, in quarantine, with
                // the store's reason, rather than reading it again forever.
                tracing::error!(mailbox = %self.key, uid, code = %e.code(), error = %e, "the store refused what a mail produced; quarantining it");
                let mut fallback = taken;
                fallback.effect = quarantined(e.code().as_str(), e.to_string(), None);
                match self
                    .node
                    .store
                    .take_mail(fallback, interval, now_ms())
                    .await
                {
                    Ok(_) => {
                        self.metrics().taken("quarantined");
                        self.metrics().quarantined(e.code().as_str());
                        return self.moving(uidvalidity, uid, true);
                    }
                    Err(e) => {
                        tracing::error!(mailbox = %self.key, uid, code = %e.code(), error = %e, "the mail cannot be quarantined either; trying again later");
                        return Outcome::Transient;
                    }
                }
            }
        };
        crate::fault::crash(crate::fault::Point::MailTaken);
        self.metrics().taken(outcome_label);
        if has_deliveries {
            self.node.outbox_wake.notify_one();
        }
        if let Some((d, reason)) = bounced {
            self.metrics().bounced();
            super::notify::failed(
                &self.node,
                d.id,
                d.message_id,
                &d.sender,
                &d.recipient,
                &format!("MAIL_BOUNCED: {reason}"),
            );
        }
        let quarantine = code.is_some();
        if let Some(code) = code {
            self.metrics().quarantined(&code);
            tracing::info!(mailbox = %self.key, uid, code, log = out.log_id, "mail quarantined");
            if out.reply_allowed
                && let Some(to) = reply_to.and_then(|a| Address::parse(&a).ok())
            {
                self.reply(to, &headers, &code, reply_vi.unwrap_or_default());
            }
        } else {
            tracing::info!(mailbox = %self.key, uid, outcome = outcome_label, log = out.log_id, "mail taken in");
        }
        self.moving(uidvalidity, uid, quarantine)
    }

    /// Whether the checkpoint is at or past `uid` under `uidvalidity` (a store that cannot be
    /// read says no: the mail is then not moved, and read again later).
    async fn taken_before(&self, uidvalidity: u32, uid: u32) -> bool {
        matches!(
            self.node.store.mail_checkpoint(&self.key).await,
            Ok(Some(c)) if c.uidvalidity == uidvalidity && c.last_uid >= uid
        )
    }

    fn moving(&mut self, uidvalidity: u32, uid: u32, quarantine: bool) -> Outcome {
        let to = if quarantine {
            self.imap.quarantine_folder.clone()
        } else {
            self.imap.processed_folder.clone()
        };
        self.moved_to.insert((uidvalidity, uid), to.clone());
        Outcome::Move(to)
    }

    /// The one automatic reply to a quarantined mail (the store allowed it and recorded it):
    /// sent on a task of its own, recorded in the audit chain sent or not. Best effort.
    fn reply(&self, to: Address, headers: &MailHeaders, code: &str, reason_vi: String) {
        let node = self.node.clone();
        let subject = headers.subject.clone();
        let original_id = headers.message_id.clone();
        let references = headers.references.clone();
        let code = code.to_owned();
        tokio::spawn(async move {
            let recipients = vec![to.as_str().to_owned()];
            let (message_id, outcome, sent) = match node.mail.as_ref() {
                None => (
                    String::new(),
                    "not sent: the node has no mail relay ([mail.smtp])".to_owned(),
                    false,
                ),
                Some(channel) => {
                    let composed = compose::quarantine_reply(&ReplyMail {
                        from: channel.from(),
                        to: &to,
                        original_subject: &subject,
                        original_message_id: original_id.as_deref(),
                        original_references: &references,
                        code: &code,
                        reason_vi: &reason_vi,
                        message_id_domain: channel.message_id_domain(),
                        date: OffsetDateTime::now_utc(),
                    });
                    match composed {
                        Err(e) => (
                            String::new(),
                            format!("not sent: {}: {}", e.code, e.message),
                            false,
                        ),
                        Ok(mail) => match channel
                            .send(MailKind::Reply, std::slice::from_ref(&to), &mail)
                            .await
                        {
                            Ok(reply) => {
                                node.metrics.mail.reply_sent();
                                (mail.message_id, reply.to_string(), true)
                            }
                            Err(e) => (
                                mail.message_id,
                                format!("not sent: {}: {}", e.code, e.message),
                                false,
                            ),
                        },
                    }
                }
            };
            if !sent {
                tracing::warn!(to = %to, outcome, "automatic reply not sent");
            }
            let record = SentMail {
                kind: "reply.quarantine".into(),
                to: recipients,
                message_id,
                outcome,
                sent,
            };
            if let Err(e) = node.store.record_mail_sent(record, now_ms()).await {
                tracing::warn!(code = %e.code(), error = %e, "the automatic reply could not be recorded in the audit chain");
            }
        });
    }
}

/// A mail as read from the server.
enum Read {
    /// Over the size limit: only its header was read.
    TooLarge {
        size: u64,
        headers: Option<Box<MailHeaders>>,
    },
    /// Read within the limits.
    Mail(Box<parse::ParsedMail>),
    /// Not read: over a limit, or malformed.
    Refused(parse::Refusal),
}

/// The quarantine effect.
fn quarantined(code: &str, reason: String, reply_to: Option<Address>) -> MailEffect {
    MailEffect::Quarantined {
        code: code.to_owned(),
        reason,
        reply_to: reply_to.map(|a| a.as_str().to_owned()),
    }
}

/// Failures that may pass: the mail is read again later, never quarantined for them.
fn transient(code: Code) -> bool {
    matches!(
        code,
        Code::StoreUnavailable | Code::RevocationUnknown | Code::Internal
    )
}

/// What classification knows of the node: its address, its `Message-ID` domain and the
/// registered mailboxes of its agencies (`[[agency]] mail`). `None` when `[mail] from` is not
/// an address (configuration checks it at load).
fn context<S: Store>(node: &Node<S>, mail: &MailConfig) -> Option<Context> {
    let our_address = Address::parse(&mail.from).ok()?;
    let mut mailboxes = BTreeMap::new();
    for a in &node.config.agencies {
        if let Some(m) = &a.mail {
            match Address::parse(m) {
                Ok(addr) => {
                    mailboxes.insert(addr, a.organization.organ_id.to_string());
                }
                Err(e) => {
                    tracing::warn!(agency = %a.organization.organ_id, error = %e.message, "the agency's mailbox is not a mail address; its mail cannot make drafts");
                }
            }
        }
    }
    Some(Context {
        our_address,
        message_id_domain: mail.message_id_domain.clone(),
        mailboxes,
    })
}
