//! The receipt: a signed status 01 ("arrived") from the receiving agency, the proof of delivery
//! the sender keeps (Decree 30/2020 Art. 21: receipt is confirmed the same day, through the
//! system). Also used for the other statuses a clerk reports.

use time::PrimitiveDateTime;

use crate::Error;
use crate::dsig;
use crate::edxml::xml::Limits;
use crate::edxml::{self, DocumentPackage, Organization, StatusCode, StatusPackage};
use crate::signer::Signer;

/// Builds and signs status `code` from `reporter` about `doc`, at `now` (Vietnam time).
pub fn signed_status(
    doc: &DocumentPackage,
    reporter: &Organization,
    code: StatusCode,
    description: &str,
    now: PrimitiveDateTime,
    signer: &dyn Signer,
) -> Result<Vec<u8>, Error> {
    let status = StatusPackage::for_document(doc, reporter.clone(), code, description, now);
    sign_status(&status, signer)
}

/// Writes and signs `status`: the CPU-heavy half of [`signed_status`], which the node runs on its
/// CPU pool (building the package needs only the header and is cheap).
pub fn sign_status(status: &StatusPackage, signer: &dyn Signer) -> Result<Vec<u8>, Error> {
    let unsigned = edxml::write_status(status)?;
    dsig::sign_package(&unsigned, signer, &Limits::default())
}

/// The receipt for `doc`, from `recipient`.
pub fn receipt(
    doc: &DocumentPackage,
    recipient: &Organization,
    now: PrimitiveDateTime,
    signer: &dyn Signer,
) -> Result<Vec<u8>, Error> {
    signed_status(doc, recipient, StatusCode::Arrived, "Đã đến", now, signer)
}
