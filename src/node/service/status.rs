//! A status a clerk reports on a document in the inbox: signed with the agency's key, recorded
//! in the history and queued for the original sender. Whether it may be reported at all is
//! `edxml::processing`, applied by the store when it records it.

use time::OffsetDateTime;

use super::*;
use crate::Error;
use crate::edxml::xml::Limits;
use crate::edxml::{self, OrganId, Package, StatusCode, StatusPackage};
use crate::error::{Code, FormatError};
use crate::node::receipt;
use crate::node::routing;
use crate::store::{Direction, NewDelivery, NewStatus, StatusOutcome, Store};

impl<S: Store> Node<S> {
    /// A clerk of `agency` reports `code` on a document in its inbox: a status package signed with
    /// the agency's key, stored in the history and queued for delivery to the original sender.
    pub async fn report_status(
        &self,
        agency: &OrganId,
        actor: &str,
        message_id: i64,
        code: StatusCode,
        description: &str,
    ) -> Result<StatusOutcome, Error> {
        // Field names as the clerk API's body spells them.
        crate::node::validate::clerk_status("code", &code.as_wire())?;
        if matches!(code, StatusCode::Rejected | StatusCode::TakeBackRefused)
            && description.trim().is_empty()
        {
            return Err(FormatError::missing("description")
                .hint_vi("trạng thái 02 và 16 cần nêu lý do; vui lòng nhập lý do rồi gửi lại")
                .into());
        }
        crate::node::validate::text(
            "description",
            description,
            crate::node::validate::Text::Body,
            Some(crate::edxml::soft_limits::DESCRIPTION),
        )?;
        let item = self.store.inbox_item(agency.as_str(), message_id).await?;
        // Whether `code` may follow this agency's history on the document, on this item (a
        // revocation, an update, a replacement or the document itself), is decided by the store
        // in the transaction that records it (edxml::processing), the same rules as for a status
        // received from a peer.
        let on_business_type = item.message.business_type;
        let bytes = self.store.message_bytes(message_id).await?;
        let doc = match edxml::read(
            &bytes,
            &edxml::ReadOptions {
                limits: Limits::default(),
                strict: false,
            },
        )? {
            Package::Document(d) => d,
            Package::Status(_) => {
                return Err(Error::store(
                    Code::NotFound,
                    "this message is a status, not a document",
                ));
            }
        };
        let a = self.agency(agency)?;
        let signer = self.signer(agency)?;
        let vn = edxml::vietnam_time(OffsetDateTime::now_utc());
        let now = now_ms();
        let status =
            StatusPackage::for_document(&doc, a.organization.clone(), code, description, vn);
        let (to_sign, by) = (status.clone(), signer.clone());
        let status_bytes = self
            .cpu(move || receipt::sign_status(&to_sign, by.as_ref()))
            .await??;
        let sender = doc.header.from.organ_id.clone();
        let route = routing::route(&self.config, &sender);
        let pkg = Package::Status(status);
        let cert = crate::pki::describe(signer.certificate()).ok();
        let new = NewStatus {
            direction: Direction::Out,
            document_sender: sender.to_string(),
            document_id: doc.header.effective_document_id(),
            reporter: agency.to_string(),
            code: code.number(),
            description: description.to_owned(),
            reported_at: vietnam_ms(vn),
            package: signed(
                status_bytes,
                cert.as_ref().map(|c| c.subject.clone()),
                cert.map(|c| c.sha256_fingerprint),
                &pkg,
            ),
            deliveries: vec![NewDelivery {
                recipient: sender.to_string(),
                route: route.as_stored(),
            }],
            peer: None,
            actor: actor.to_owned(),
            revocation: Vec::new(),
            on_business_type,
        };
        let recorded = self.store.record_status(new, now).await?;
        self.outbox_wake.notify_one();
        Ok(recorded)
    }
}
