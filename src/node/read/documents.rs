//! A clerk's documents: the one answer to "what is this document's state for each recipient",
//! and the lists and details a clerk reads (the clerk API's `/api/v1/documents`, `/api/v1/inbox`,
//! and the console's Văn bản liên thông), always scoped to one agency: another agency's document
//! is `NOT_FOUND`.

use super::*;

use crate::edxml::{self, Package, ReadOptions, StatusCode};
use crate::error::Code;
use crate::store::{
    AttemptInfo, DeliveryInfo, Direction, InboxFilter, InboxItem, OutgoingFilter, OutgoingItem,
    PackageFile, Page, RevocationEvidence, StatusRecord,
};

/// Where one recipient stands with a document, in the words of Decree 30/2020 that clerks
/// read: from the delivery's state, then from the statuses the recipient reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecipientState {
    /// Chưa gửi: queued, no attempt made yet.
    NotSent,
    /// Đang gửi: an attempt is under way.
    Sending,
    /// Gửi lỗi: an attempt failed (it may be retried), the delivery failed for good, or an
    /// operator cancelled it.
    SendFailed,
    /// Đã đến chờ tiếp nhận: in the recipient's system (01), not yet registered.
    Arrived,
    /// Đã tiếp nhận (03).
    Registered,
    /// Đang xử lý (04, 05).
    Processing,
    /// Đã hoàn thành (06).
    Completed,
    /// Bị trả lại (02).
    Returned,
    /// Đã thu hồi: the recipient agreed (15) to the sender's revocation.
    Revoked,
}

impl RecipientState {
    pub const ALL: [RecipientState; 9] = [
        RecipientState::NotSent,
        RecipientState::Sending,
        RecipientState::SendFailed,
        RecipientState::Arrived,
        RecipientState::Registered,
        RecipientState::Processing,
        RecipientState::Completed,
        RecipientState::Returned,
        RecipientState::Revoked,
    ];

    /// What a clerk reads.
    pub fn label_vi(self) -> &'static str {
        match self {
            RecipientState::NotSent => "Chưa gửi",
            RecipientState::Sending => "Đang gửi",
            RecipientState::SendFailed => "Gửi lỗi",
            RecipientState::Arrived => "Đã đến chờ tiếp nhận",
            RecipientState::Registered => "Đã tiếp nhận",
            RecipientState::Processing => "Đang xử lý",
            RecipientState::Completed => "Đã hoàn thành",
            RecipientState::Returned => "Bị trả lại",
            RecipientState::Revoked => "Đã thu hồi",
        }
    }

    /// The status code a recipient in this state must have reported on the document, where one
    /// must: a list filtered by the state only needs to look at documents that carry it.
    pub fn requires_status(self) -> Option<u8> {
        match self {
            RecipientState::Registered => Some(3),
            RecipientState::Completed => Some(6),
            // Processing is 04 or 05; Bị trả lại may be the recipient node's refusal, with no
            // status; Đã thu hồi depends on the take-back answers: not narrowed.
            _ => None,
        }
    }

    /// The spelling in URLs (filters).
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientState::NotSent => "not_sent",
            RecipientState::Sending => "sending",
            RecipientState::SendFailed => "send_failed",
            RecipientState::Arrived => "arrived",
            RecipientState::Registered => "registered",
            RecipientState::Processing => "processing",
            RecipientState::Completed => "completed",
            RecipientState::Returned => "returned",
            RecipientState::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<RecipientState> {
        RecipientState::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The state from what is known: the delivery's state (`None` on the receiving side, where
    /// the document is here), the recipient's latest processing code (01–06, see
    /// [`processing_code`]) and whether it agreed to a revocation.
    pub fn of(delivery: Option<DeliveryState>, processing: Option<u8>, revoked: bool) -> Self {
        if revoked {
            return RecipientState::Revoked;
        }
        match processing {
            Some(2) => return RecipientState::Returned,
            Some(6) => return RecipientState::Completed,
            Some(4 | 5) => return RecipientState::Processing,
            Some(3) => return RecipientState::Registered,
            Some(1) => return RecipientState::Arrived,
            _ => {}
        }
        match delivery {
            None | Some(DeliveryState::Delivered) => RecipientState::Arrived,
            Some(DeliveryState::Queued) => RecipientState::NotSent,
            Some(DeliveryState::Sending) => RecipientState::Sending,
            Some(DeliveryState::Retrying | DeliveryState::Failed | DeliveryState::Cancelled) => {
                RecipientState::SendFailed
            }
            Some(DeliveryState::Rejected) => RecipientState::Returned,
        }
    }
}

/// `reporter`'s latest processing code (01–06) in a document's `history`: the one reported
/// last by its clock, ties broken by progression (02 is final like 06) — the order the store
/// uses for a delivery's `latest_status`. Take-back answers (15/16) are not processing.
pub fn processing_code(history: &[StatusRecord], reporter: &str) -> Option<u8> {
    let rank = |c: u8| if c == 2 { 6 } else { c };
    history
        .iter()
        .filter(|s| s.reporter == reporter && (1..=6).contains(&s.code))
        .max_by_key(|s| (s.reported_at, rank(s.code), s.id))
        .map(|s| s.code)
}

/// Whether `recipient` agreed to a revocation of the document, as the sender sees it: the
/// requests made of it (the revocation, update and replacement packages sent to it, at
/// `follow_ups` = (when stored, business type), and the sender's 13s) answered in order by
/// its 15s and 16s (`edxml::processing`: a received answer answers the oldest outstanding
/// request), and a 15 answering a revocation or a 13.
pub fn revoked_by(
    history: &[StatusRecord],
    sender: &str,
    recipient: &str,
    follow_ups: &[(i64, u8)],
) -> bool {
    let mut requests: Vec<(i64, bool)> = follow_ups
        .iter()
        .filter(|(_, t)| (1..=3).contains(t))
        .map(|(at, t)| (*at, *t == 1))
        .collect();
    requests.extend(
        history
            .iter()
            .filter(|s| s.reporter == sender && s.code == 13)
            .map(|s| (s.reported_at, true)),
    );
    requests.sort_by_key(|(at, _)| *at);
    let mut open = requests.into_iter();
    for answer in history
        .iter()
        .filter(|s| s.reporter == recipient && matches!(s.code, 15 | 16))
    {
        match open.next() {
            Some((_, revocation)) if revocation && answer.code == 15 => return true,
            Some(_) => {}
            None => break,
        }
    }
    false
}

/// What the lists and the detail show of a package's header, read from the stored JSON of the
/// package (`header_json`); fields absent from it are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderSummary {
    pub sender_name: String,
    /// The recipients as the header names them: (code, name).
    pub to: Vec<(String, String)>,
    /// Độ khẩn: 0 thường, 1 khẩn, 2 thượng khẩn, 3 hỏa tốc, 4 hỏa tốc hẹn giờ.
    pub priority: u8,
    /// Ngày ban hành as the package writes it (`2026/12/07`).
    pub promulgation_date: String,
    pub promulgation_place: String,
    pub document_type: String,
    pub signer_name: String,
    pub signer_position: String,
    pub due_date: Option<String>,
    /// A follow-up's reason (BussinessDocReason).
    pub reason: Option<String>,
    /// The files, in order (numbered from 1): name, content type, size.
    pub attachments: Vec<(String, String, u64)>,
}

impl HeaderSummary {
    pub fn from_json(header_json: &str) -> HeaderSummary {
        let v: serde_json::Value = serde_json::from_str(header_json).unwrap_or_default();
        let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
        let h = &v["header"];
        HeaderSummary {
            sender_name: s(&h["from"]["organ_name"]),
            to: h["to"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|o| (s(&o["organ_id"]), s(&o["organ_name"])))
                        .collect()
                })
                .unwrap_or_default(),
            priority: h["other_info"]["priority"]
                .as_u64()
                .and_then(|p| u8::try_from(p).ok())
                .unwrap_or(0),
            promulgation_date: s(&h["promulgation_info"]["date"]),
            promulgation_place: s(&h["promulgation_info"]["place"]),
            document_type: s(&h["document_type"]["type_name"]),
            signer_name: s(&h["signer_info"]["full_name"]),
            signer_position: s(&h["signer_info"]["position"]),
            due_date: h["due_date"].as_str().map(str::to_owned),
            reason: v["business"]["reason"].as_str().map(str::to_owned),
            attachments: v["attachments"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|f| {
                            (
                                s(&f["name"]),
                                s(&f["content_type"]),
                                f["size"].as_u64().unwrap_or(0),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

pub use crate::store::fold;

/// The filters of a clerk's document lists. Text filters match folded ([`fold`]) substrings.
#[derive(Debug, Clone, Default)]
pub struct DocumentQuery {
    /// Received (inbox) or stored (sent) at or after, ms.
    pub since: Option<i64>,
    /// … and before, ms.
    pub until: Option<i64>,
    /// Số/ký hiệu (`446/UBND-KGVX`, or a part of it).
    pub code: String,
    /// Trích yếu.
    pub subject: String,
    pub priority: Option<u8>,
    pub business_type: Option<u8>,
    /// A recipient state: for a sent document, any recipient's.
    pub state: Option<RecipientState>,
    /// Chậm tiếp nhận: only documents still Đã đến chờ tiếp nhận that arrived (received here;
    /// for a sent document, delivered to a recipient that has not taken it in) before this
    /// instant — [`late_before`](super::late_before)`(now)`, the rule Tổng quan counts with.
    pub late_before: Option<i64>,
    /// Cơ quan gửi (inbox) or nhận (sent): a code or a part of a name.
    pub agency: String,
    /// The keyset cursor: `next_before` of the previous page.
    pub before: Option<i64>,
    /// 1–200 rows a page.
    pub limit: u32,
}

/// Most stored rows one list request reads to fill its page: a search that matches rarely
/// answers a partial page and a cursor, instead of reading the agency's whole history.
pub const MAX_SCAN: usize = 2000;

/// One page of a list: the rows and, when there may be more, the cursor for the next.
#[derive(Debug, Clone)]
pub struct Found<T> {
    pub rows: Vec<T>,
    pub next_before: Option<i64>,
}

/// A received document in a clerk's list.
#[derive(Debug, Clone)]
pub struct IncomingRow {
    pub item: InboxItem,
    pub header: HeaderSummary,
    pub state: RecipientState,
}

/// A sent document in a clerk's list, with each recipient's state (in delivery order).
#[derive(Debug, Clone)]
pub struct OutgoingRow {
    pub item: OutgoingItem,
    pub header: HeaderSummary,
    pub states: Vec<RecipientState>,
}

/// A received document in full: the item, its history (this agency's reports and the
/// sender's), the revocation evidence kept for its signer's path, and the header.
#[derive(Debug, Clone)]
pub struct IncomingDetail {
    pub item: InboxItem,
    pub header: HeaderSummary,
    pub state: RecipientState,
    pub history: Vec<StatusRecord>,
    pub revocation: Vec<RevocationEvidence>,
}

/// One delivery of a sent document in full.
#[derive(Debug, Clone)]
pub struct DeliveryDetail {
    pub delivery: DeliveryInfo,
    pub state: RecipientState,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptInfo>,
    /// The recipient's statuses, oldest first, its signed 01 (the receipt kept with the
    /// delivery) included at its own timestamp.
    pub history: Vec<StatusRecord>,
}

/// A sent document in full.
#[derive(Debug, Clone)]
pub struct OutgoingDetail {
    pub item: OutgoingItem,
    pub header: HeaderSummary,
    pub deliveries: Vec<DeliveryDetail>,
}

/// A stored package to download: streamed from its file, or its bytes.
pub enum PackageSource {
    File(PackageFile),
    Bytes(Vec<u8>),
}

fn contains_folded(hay: &str, needle: &str) -> bool {
    needle.is_empty() || fold(hay).contains(needle)
}

fn code_text(m: &crate::store::MessageInfo) -> String {
    format!(
        "{}/{}",
        m.code_number.as_deref().unwrap_or(""),
        m.code_notation.as_deref().unwrap_or("")
    )
}

impl<S: Store> Node<S> {
    /// One page of the agency's received documents: the store's date bounds, then the other
    /// filters on each row, reading at most [`MAX_SCAN`] rows.
    pub async fn incoming_documents(
        &self,
        agency: &str,
        q: &DocumentQuery,
    ) -> Result<Found<IncomingRow>, Error> {
        let (code, subject, who) = (fold(&q.code), fold(&q.subject), fold(&q.agency));
        let limit = q.limit.clamp(1, 200) as usize;
        let awaiting = q.late_before.is_some() || q.state == Some(RecipientState::Arrived);
        let until = match (q.until, q.late_before) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut rows = Vec::new();
        let mut before = q.before;
        let mut scanned = 0;
        loop {
            let batch = self
                .store
                .list_inbox(
                    agency,
                    &InboxFilter {
                        status: None,
                        revoked: None,
                        since: q.since,
                        until,
                        page: Page { limit: 200, before },
                        // What waits is read from its own index, not filtered from all.
                        awaiting,
                    },
                )
                .await?;
            let exhausted = batch.len() < 200;
            for item in batch {
                scanned += 1;
                before = Some(item.inbox_id);
                let header = HeaderSummary::from_json(&item.message.header_json);
                let m = &item.message;
                let keep = contains_folded(&code_text(m), &code)
                    && contains_folded(m.subject.as_deref().unwrap_or(""), &subject)
                    && (who.is_empty()
                        || contains_folded(&m.sender, &who)
                        || contains_folded(&header.sender_name, &who))
                    && q.priority.is_none_or(|p| p == header.priority)
                    && q.business_type
                        .is_none_or(|t| m.business_type.unwrap_or(0) == t);
                if !keep {
                    continue;
                }
                let state = self.incoming_state(agency, &item).await?;
                if q.state.is_some_and(|s| s != state)
                    || (q.late_before.is_some() && state != RecipientState::Arrived)
                {
                    continue;
                }
                rows.push(IncomingRow {
                    item,
                    header,
                    state,
                });
                if rows.len() >= limit {
                    return Ok(Found {
                        rows,
                        next_before: before,
                    });
                }
            }
            if exhausted {
                return Ok(Found {
                    rows,
                    next_before: None,
                });
            }
            if scanned >= MAX_SCAN {
                return Ok(Found {
                    rows,
                    next_before: before,
                });
            }
        }
    }

    /// The state of a received document for the agency that received it.
    async fn incoming_state(
        &self,
        agency: &str,
        item: &InboxItem,
    ) -> Result<RecipientState, Error> {
        let processing = match item.current_status {
            Some(c) if (1..=6).contains(&c) => Some(c),
            None => None,
            // A take-back answer (or an unassigned code) is the latest: the processing code is
            // further back in the history.
            Some(_) => {
                let history = self.store.status_history(agency, item.message.id).await?;
                processing_code(&history, agency)
            }
        };
        Ok(RecipientState::of(None, processing, item.revoked))
    }

    /// One page of the agency's sent documents (see [`incoming_documents`](Self::incoming_documents)).
    pub async fn outgoing_documents(
        &self,
        agency: &str,
        q: &DocumentQuery,
    ) -> Result<Found<OutgoingRow>, Error> {
        let (code, subject, who) = (fold(&q.code), fold(&q.subject), fold(&q.agency));
        let limit = q.limit.clamp(1, 200) as usize;
        // The deliveries (100 for a document sent to 100 agencies) are read only for the
        // documents the filters on their own fields keep, a few at a time: as many as the page
        // still needs, or more when a state filter may drop some.
        let by_state = q.state.is_some() || q.late_before.is_some();
        // Without a filter on the documents' own fields every document read is a row: read no
        // more than the page (each carries its header, 100 recipients' worth for some).
        let by_fields = !(code.is_empty()
            && subject.is_empty()
            && who.is_empty()
            && q.priority.is_none()
            && q.business_type.is_none());
        let batch_size = if by_fields || by_state {
            200
        } else {
            limit as u32
        };
        let mut rows = Vec::new();
        let mut before = q.before;
        let mut scanned = 0;
        loop {
            let batch = self
                .store
                .list_outgoing(
                    agency,
                    &OutgoingFilter {
                        since: q.since,
                        until: q.until,
                        page: Page {
                            limit: batch_size,
                            before,
                        },
                        late_before: q.late_before,
                        without_deliveries: true,
                        with_status: q.state.and_then(RecipientState::requires_status),
                    },
                )
                .await?;
            let exhausted = batch.len() < batch_size as usize;
            scanned += batch.len();
            let batch_end = batch.last().map(|i| i.message.id);
            let mut kept: std::collections::VecDeque<(OutgoingItem, HeaderSummary)> = batch
                .into_iter()
                .filter_map(|item| {
                    let header = HeaderSummary::from_json(&item.message.header_json);
                    let m = &item.message;
                    let keep = contains_folded(&code_text(m), &code)
                        && contains_folded(m.subject.as_deref().unwrap_or(""), &subject)
                        && (who.is_empty()
                            || header.to.iter().any(|(c, n)| {
                                contains_folded(c, &who) || contains_folded(n, &who)
                            }))
                        && q.priority.is_none_or(|p| p == header.priority)
                        && q.business_type
                            .is_none_or(|t| m.business_type.unwrap_or(0) == t);
                    keep.then_some((item, header))
                })
                .collect();
            while !kept.is_empty() {
                let need = limit - rows.len();
                let take = if by_state { need.max(50) } else { need }.min(kept.len());
                let chunk: Vec<(OutgoingItem, HeaderSummary)> = kept.drain(..take).collect();
                let ids: Vec<i64> = chunk.iter().map(|(i, _)| i.message.id).collect();
                let mut deliveries = self.store.outgoing_deliveries(agency, &ids).await?;
                for (mut item, header) in chunk {
                    item.deliveries = deliveries.remove(&item.message.id).unwrap_or_default();
                    let id = item.message.id;
                    let states = self.outgoing_states(agency, &item).await?;
                    if q.state.is_some_and(|s| !states.contains(&s)) {
                        continue;
                    }
                    if let Some(late) = q.late_before {
                        let waits = item.deliveries.iter().zip(&states).any(|(d, s)| {
                            *s == RecipientState::Arrived
                                && d.state == DeliveryState::Delivered
                                && d.delivered_at.is_some_and(|at| at < late)
                        });
                        if !waits {
                            continue;
                        }
                    }
                    rows.push(OutgoingRow {
                        item,
                        header,
                        states,
                    });
                    if rows.len() >= limit {
                        return Ok(Found {
                            rows,
                            next_before: Some(id),
                        });
                    }
                }
            }
            before = batch_end.or(before);
            if exhausted {
                return Ok(Found {
                    rows,
                    next_before: None,
                });
            }
            if scanned >= MAX_SCAN {
                return Ok(Found {
                    rows,
                    next_before: before,
                });
            }
        }
    }

    /// Each recipient's state of a sent document, in delivery order. The deliveries carry the
    /// latest status; only when one is a take-back answer is the history read.
    async fn outgoing_states(
        &self,
        agency: &str,
        item: &OutgoingItem,
    ) -> Result<Vec<RecipientState>, Error> {
        let simple = item
            .deliveries
            .iter()
            .all(|d| d.latest_status.is_none_or(|c| (1..=6).contains(&c)));
        if simple {
            return Ok(item
                .deliveries
                .iter()
                .map(|d| RecipientState::of(Some(d.state), d.latest_status, false))
                .collect());
        }
        let history = self.store.status_history(agency, item.message.id).await?;
        let follow_ups = self.follow_ups(agency, &item.message.document_id).await?;
        Ok(item
            .deliveries
            .iter()
            .map(|d| {
                let to_it: Vec<(i64, u8)> = follow_ups
                    .iter()
                    .filter(|(_, _, to)| to.contains(&d.recipient))
                    .map(|(at, t, _)| (*at, *t))
                    .collect();
                RecipientState::of(
                    Some(d.state),
                    processing_code(&history, &d.recipient),
                    revoked_by(&history, agency, &d.recipient, &to_it),
                )
            })
            .collect())
    }

    /// The packages of a document the agency sent (the original and its follow-ups): when
    /// stored, business type, and to whom.
    async fn follow_ups(
        &self,
        agency: &str,
        document_id: &str,
    ) -> Result<Vec<(i64, u8, Vec<String>)>, Error> {
        let mut out = Vec::new();
        for m in self
            .store
            .find_documents(Direction::Out, agency, document_id)
            .await?
        {
            let item = self.store.outgoing_item(agency, m.id).await?;
            out.push((
                m.created_at,
                m.business_type.unwrap_or(0),
                item.deliveries.into_iter().map(|d| d.recipient).collect(),
            ));
        }
        Ok(out)
    }

    /// The agency's received documents as the store pages them (the clerk API's list).
    pub async fn inbox_page(&self, agency: &str, f: &InboxFilter) -> Result<Vec<InboxItem>, Error> {
        self.store.list_inbox(agency, f).await
    }

    /// The agency's sent documents as the store pages them (the clerk API's list).
    pub async fn outgoing_page(
        &self,
        agency: &str,
        f: &OutgoingFilter,
    ) -> Result<Vec<OutgoingItem>, Error> {
        self.store.list_outgoing(agency, f).await
    }

    /// A received document of the agency in full (`NOT_FOUND` for any other).
    pub async fn incoming_document(&self, agency: &str, id: i64) -> Result<IncomingDetail, Error> {
        let item = self.store.inbox_item(agency, id).await?;
        let history = self.store.status_history(agency, id).await?;
        let revocation = self.store.revocation_evidence(id).await?;
        let processing = processing_code(&history, agency);
        Ok(IncomingDetail {
            header: HeaderSummary::from_json(&item.message.header_json),
            state: RecipientState::of(None, processing, item.revoked),
            item,
            history,
            revocation,
        })
    }

    /// A sent document of the agency in full (`NOT_FOUND` for any other): every delivery with
    /// its attempts and its recipient's statuses, the signed receipt included.
    pub async fn outgoing_document(&self, agency: &str, id: i64) -> Result<OutgoingDetail, Error> {
        let item = self.store.outgoing_item(agency, id).await?;
        let history = self.store.status_history(agency, id).await?;
        let follow_ups = if history.iter().any(|s| matches!(s.code, 13 | 15 | 16)) {
            self.follow_ups(agency, &item.message.document_id).await?
        } else {
            Vec::new()
        };
        let mut deliveries = Vec::with_capacity(item.deliveries.len());
        for d in &item.deliveries {
            let attempts = self.store.attempts(d.id).await?;
            let mut mine: Vec<StatusRecord> = history
                .iter()
                .filter(|s| s.reporter == d.recipient)
                .cloned()
                .collect();
            if let Some(at) = d.delivered_at
                && let Some(receipt) = self.store.delivery_receipt(d.id).await?
                && let Some(r) = self.receipt_status(&receipt, d, at)
            {
                mine.push(r);
                mine.sort_by_key(|s| s.reported_at);
            }
            let to_it: Vec<(i64, u8)> = follow_ups
                .iter()
                .filter(|(_, _, to)| to.contains(&d.recipient))
                .map(|(at, t, _)| (*at, *t))
                .collect();
            deliveries.push(DeliveryDetail {
                state: RecipientState::of(
                    Some(d.state),
                    processing_code(&history, &d.recipient),
                    revoked_by(&history, agency, &d.recipient, &to_it),
                ),
                delivery: d.clone(),
                attempts,
                history: mine,
            });
        }
        Ok(OutgoingDetail {
            header: HeaderSummary::from_json(&item.message.header_json),
            item,
            deliveries,
        })
    }

    /// The status 01 in a delivery's kept receipt (the recipient's own signed package, checked
    /// by the outbox when kept): from the recipient, at the receipt's own timestamp, recorded
    /// when the delivery was marked delivered. `None` if the bytes no longer read as a 01 from
    /// the recipient (the download still offers them as they are).
    fn receipt_status(
        &self,
        receipt: &[u8],
        d: &DeliveryInfo,
        delivered_at: i64,
    ) -> Option<StatusRecord> {
        let opts = ReadOptions {
            limits: self.config.limits.clone(),
            strict: false,
        };
        let Ok(Package::Status(s)) = edxml::read(receipt, &opts) else {
            return None;
        };
        if s.status_code != StatusCode::Arrived || s.from.organ_id.as_str() != d.recipient {
            return None;
        }
        let offset = time::UtcOffset::from_hms(7, 0, 0).ok()?;
        let reported_at =
            i64::try_from(s.timestamp.assume_offset(offset).unix_timestamp_nanos() / 1_000_000)
                .ok()?;
        Some(StatusRecord {
            id: 0,
            document_sender: d.sender.clone(),
            document_id: d.document_id.clone(),
            reporter: d.recipient.clone(),
            code: StatusCode::Arrived.number(),
            description: s.description.clone(),
            reported_at,
            recorded_at: delivered_at,
            direction: Direction::In,
            message_id: 0,
        })
    }

    /// The signed package of a document the agency sent (`outgoing`) or received, to download:
    /// `NOT_FOUND` unless it is the agency's.
    pub async fn document_package(
        &self,
        agency: &str,
        id: i64,
        outgoing: bool,
    ) -> Result<PackageSource, Error> {
        if outgoing {
            self.store.outgoing_item(agency, id).await?;
        } else {
            self.store.inbox_item(agency, id).await?;
        }
        Ok(match self.store.message_file(id).await? {
            Some(file) => PackageSource::File(file),
            None => PackageSource::Bytes(self.store.package_bytes(agency, id).await?),
        })
    }

    /// The receipt kept with delivery `delivery_id` of a document the agency sent: `NOT_FOUND`
    /// unless the document is the agency's, `Ok(None)` for a delivery of another document,
    /// `Ok(Some(None))` before delivery.
    pub async fn sent_receipt(
        &self,
        agency: &str,
        id: i64,
        delivery_id: i64,
    ) -> Result<Option<Option<Vec<u8>>>, Error> {
        let item = self.store.outgoing_item(agency, id).await?;
        if !item.deliveries.iter().any(|d| d.id == delivery_id) {
            return Ok(None);
        }
        Ok(Some(
            self.store
                .delivery_receipt(delivery_id)
                .await?
                .filter(|r| !r.is_empty()),
        ))
    }

    /// The files of a document the agency received (or sent), decoded: `NOT_FOUND` unless it is
    /// the agency's; `Ok(None)` for a status package, which has none.
    pub async fn document_files(
        &self,
        agency: &str,
        id: i64,
        outgoing: bool,
    ) -> Result<Option<Vec<edxml::Attachment>>, Error> {
        if outgoing {
            self.store.outgoing_item(agency, id).await?;
        } else {
            self.store.inbox_item(agency, id).await?;
        }
        let bytes = self.store.package_bytes(agency, id).await?;
        let opts = ReadOptions {
            limits: self.config.limits.clone(),
            strict: false,
        };
        let pkg = self.cpu(move || edxml::read(&bytes, &opts)).await??;
        Ok(match pkg {
            Package::Document(doc) => Some(doc.attachments),
            Package::Status(_) => None,
        })
    }
}

/// An agency a clerk may send to, as the picker offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub code: String,
    /// Empty when nothing here names it (a code only a peer's `serves` covers).
    pub name: String,
    /// Where it is known from, in the clerk's words.
    pub source: &'static str,
}

/// Most candidates the picker shows at once.
pub const MAX_CANDIDATES: usize = 20;

/// Registry rows one picker search reads (some may have no route from here).
const REGISTRY_LOOKUP: u32 = 50;

/// The source of a candidate found in the agency registry, in the clerk's words.
pub const REGISTRY_SOURCE: &str = "Danh bạ đơn vị liên thông";

impl<S: Store> Node<S> {
    /// The agencies `agency` may send to that match `query` (a code, or a part of a name, folded
    /// as [`fold`]), at most [`MAX_CANDIDATES`]: the agency of a code typed in full (named by
    /// the node's agencies or the registry, reached by a peer's `serves`), the node's own
    /// agencies, the agencies this agency has sent to recently (their names as its documents
    /// gave them), then the agency registry's entries whose code or name matches
    /// ([`Store::registry_search`], in the store: a province's registry holds 100,000 codes) that
    /// this node has a route to.
    pub async fn recipient_candidates(
        &self,
        agency: &str,
        query: &str,
    ) -> Result<Vec<Candidate>, Error> {
        let q = fold(query);
        if q.is_empty() {
            return Ok(Vec::new());
        }
        let mut out: Vec<Candidate> = Vec::new();
        let offer = |c: Candidate, out: &mut Vec<Candidate>| {
            if c.code != agency
                && out.len() < MAX_CANDIDATES
                && !out.iter().any(|o| o.code == c.code)
            {
                out.push(c);
            }
        };
        if let Ok(code) = crate::edxml::OrganId::parse_strict(query.trim())
            && let Some(c) = self.recipient(code.as_str()).await?
        {
            offer(c, &mut out);
        }
        for a in &self.config.agencies {
            let o = &a.organization;
            if fold(o.organ_id.as_str()).contains(&q) || fold(&o.organ_name).contains(&q) {
                offer(
                    Candidate {
                        code: o.organ_id.to_string(),
                        name: o.organ_name.clone(),
                        source: "Cơ quan trên hệ thống này",
                    },
                    &mut out,
                );
            }
        }
        let recent = self
            .store
            .list_outgoing(
                agency,
                &OutgoingFilter {
                    page: Page {
                        limit: 200,
                        before: None,
                    },
                    // The picker reads whom they were sent to from the headers.
                    without_deliveries: true,
                    ..Default::default()
                },
            )
            .await?;
        for item in &recent {
            for (code, name) in HeaderSummary::from_json(&item.message.header_json).to {
                if name != code && (fold(&code).contains(&q) || fold(&name).contains(&q)) {
                    offer(
                        Candidate {
                            code,
                            name,
                            source: "Đã gửi gần đây",
                        },
                        &mut out,
                    );
                }
            }
        }
        // Then the agency registry (a province's holds 100,000 codes) fills what is left:
        // searched in the store on its folded names, only codes this node has a route to.
        if out.len() < MAX_CANDIDATES {
            for hit in self.store.registry_search(query, REGISTRY_LOOKUP).await? {
                let reachable = crate::edxml::OrganId::parse_strict(&hit.code)
                    .map(|id| {
                        crate::node::routing::route(&self.config, &id)
                            != crate::node::routing::Route::None
                    })
                    .unwrap_or(false);
                if reachable {
                    offer(
                        Candidate {
                            code: hit.code,
                            name: hit.name,
                            source: REGISTRY_SOURCE,
                        },
                        &mut out,
                    );
                }
            }
        }
        Ok(out)
    }

    /// Agency `code` as a recipient, if this node can reach it: its name from the node's
    /// agencies or the agency registry; `None` when no route leads to it.
    pub async fn recipient(&self, code: &str) -> Result<Option<Candidate>, Error> {
        let Ok(id) = crate::edxml::OrganId::parse_strict(code) else {
            return Ok(None);
        };
        if let Some(a) = self.config.agency(&id) {
            return Ok(Some(Candidate {
                code: id.to_string(),
                name: a.organization.organ_name.clone(),
                source: "Cơ quan trên hệ thống này",
            }));
        }
        let route = crate::node::routing::route(&self.config, &id);
        if route == crate::node::routing::Route::None {
            return Ok(None);
        }
        let entry = self.store.registry_entry(id.as_str()).await?;
        Ok(Some(Candidate {
            code: id.to_string(),
            name: entry.map(|e| e.name).unwrap_or_default(),
            source: match route {
                crate::node::routing::Route::Mail(_) => "Gửi qua thư điện tử công vụ",
                _ => "Qua nút liên thông kết nối",
            },
        }))
    }
}

/// A `NOT_FOUND` from the read layer, for callers that say it in their own words.
pub fn is_not_found(e: &Error) -> bool {
    e.code() == Code::NotFound
}

#[cfg(test)]
mod clerk_tests {
    use super::*;

    fn status(reporter: &str, code: u8, at: i64) -> StatusRecord {
        StatusRecord {
            id: at,
            document_sender: "000.00.00.H41".into(),
            document_id: "000.00.00.H41,2026/12/07,5/UBND-VP".into(),
            reporter: reporter.into(),
            code,
            description: String::new(),
            reported_at: at,
            recorded_at: at,
            direction: Direction::In,
            message_id: 1,
        }
    }

    #[test]
    fn folding_drops_case_and_vietnamese_diacritics_in_nfc_and_nfd() {
        use unicode_normalization::UnicodeNormalization as _;
        let nfc: String = "Đề nghị phối hợp — Tỉnh GIA LÁI".nfc().collect();
        let nfd: String = nfc.nfd().collect();
        assert_ne!(nfc, nfd);
        assert_eq!(fold(&nfc), "de nghi phoi hop — tinh gia lai");
        assert_eq!(fold(&nfd), fold(&nfc));
        assert_eq!(fold("  gia \t lai "), "gia lai");
        assert!(fold("Ủy ban nhân dân tỉnh Gia Lai").contains(&fold("gia lai")));
        assert!(!fold("Gia Lâm").contains(&fold("gia lai")));
    }

    #[test]
    fn a_recipient_state_comes_from_its_statuses_then_its_delivery() {
        use RecipientState as R;
        assert_eq!(R::of(Some(DeliveryState::Queued), None, false), R::NotSent);
        assert_eq!(R::of(Some(DeliveryState::Sending), None, false), R::Sending);
        assert_eq!(
            R::of(Some(DeliveryState::Retrying), None, false),
            R::SendFailed
        );
        assert_eq!(
            R::of(Some(DeliveryState::Failed), None, false),
            R::SendFailed
        );
        assert_eq!(
            R::of(Some(DeliveryState::Delivered), None, false),
            R::Arrived
        );
        assert_eq!(R::of(None, None, false), R::Arrived);
        assert_eq!(
            R::of(Some(DeliveryState::Delivered), Some(3), false),
            R::Registered
        );
        assert_eq!(R::of(None, Some(4), false), R::Processing);
        assert_eq!(R::of(None, Some(5), false), R::Processing);
        assert_eq!(R::of(None, Some(6), false), R::Completed);
        assert_eq!(
            R::of(Some(DeliveryState::Rejected), Some(2), false),
            R::Returned
        );
        assert_eq!(
            R::of(Some(DeliveryState::Rejected), None, false),
            R::Returned
        );
        assert_eq!(R::of(None, Some(3), true), R::Revoked);
        for s in R::ALL {
            assert_eq!(R::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn the_latest_processing_code_skips_take_back_answers_and_other_reporters() {
        let a = "000.00.05.H21";
        let h = vec![
            status(a, 1, 10),
            status(a, 3, 20),
            status("000.00.04.H21", 6, 25),
            status(a, 15, 30),
        ];
        assert_eq!(processing_code(&h, a), Some(3));
        // Same second: the further step wins, as in the store.
        let h = vec![status(a, 6, 20), status(a, 3, 20)];
        assert_eq!(processing_code(&h, a), Some(6));
        assert_eq!(processing_code(&[], a), None);
    }

    #[test]
    fn a_fifteen_revokes_only_when_it_answers_a_revocation() {
        let (sender, r) = ("000.00.00.H41", "000.00.05.H21");
        let agreed = vec![status(r, 3, 10), status(r, 15, 40)];
        // An update (2) then a revocation (1): the first 15 answers the update.
        assert!(!revoked_by(&agreed, sender, r, &[(0, 0), (20, 2), (30, 1)]));
        assert!(revoked_by(&agreed, sender, r, &[(0, 0), (20, 1)]));
        let both = vec![status(r, 16, 35), status(r, 15, 40)];
        assert!(revoked_by(&both, sender, r, &[(20, 2), (30, 1)]));
        // The sender's 13 is a request too.
        let took = vec![status(sender, 13, 20), status(r, 15, 30)];
        assert!(revoked_by(&took, sender, r, &[(0, 0)]));
        assert!(!revoked_by(&[status(r, 15, 30)], sender, r, &[(0, 0)]));
    }

    #[test]
    fn the_header_summary_reads_the_stored_package_json() {
        let json = r#"{"kind":"document","header":{"from":{"organ_id":"000.00.00.H41","organ_name":"UBND tỉnh Nghệ An"},
            "to":[{"organ_id":"000.00.05.H21","organ_name":"Sở TT&TT"}],"other_info":{"priority":3},
            "promulgation_info":{"place":"Nghệ An","date":"2026-12-07"},"document_type":{"type_name":"Công văn"},
            "signer_info":{"full_name":"Nguyễn Văn An","position":"Chủ tịch"}},
            "business":{"reason":"Sai số"},
            "attachments":[{"name":"a.pdf","content_type":"application/pdf","size":12}]}"#;
        let h = HeaderSummary::from_json(json);
        assert_eq!(h.sender_name, "UBND tỉnh Nghệ An");
        assert_eq!(h.to, vec![("000.00.05.H21".into(), "Sở TT&TT".into())]);
        assert_eq!(h.priority, 3);
        assert_eq!(h.reason.as_deref(), Some("Sai số"));
        assert_eq!(
            h.attachments,
            vec![("a.pdf".into(), "application/pdf".into(), 12)]
        );
        assert_eq!(
            HeaderSummary::from_json("not json"),
            HeaderSummary::default()
        );
    }
}
