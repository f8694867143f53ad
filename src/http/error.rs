//! The one error response of the HTTP API: an HTTP status chosen from the stable [`Code`], and a
//! JSON body `{"code", "message", "message_vi"}` — the machine code, an English message that
//! says what was wrong and where, and a Vietnamese sentence a clerk's system can show as is —
//! and, on the peer endpoint only, `"status_package"`: the base64 of a signed status 02 when the
//! refusal is one Decree 30/2020 Art. 21 answers with a 02.
//!
//! One code exists only at the HTTP layer and is not a library [`Code`]: `UNAUTHENTICATED` (no or
//! unknown bearer token). Failures of this node the caller cannot fix (`INTERNAL`, keys, files,
//! configuration) are 500 with a generic message; the detail goes to the log, not to the caller.

use std::borrow::Cow;

use axum::Json;
use axum::http::StatusCode as Http;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::{Code, Error};

/// An API error, ready to become a response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: Http,
    /// The wire code (`NOT_FOUND`, `UNAUTHENTICATED`, …).
    pub code: &'static str,
    pub message: String,
    /// What a clerk reads, for this case: the field named as sent and what to do
    /// ([`Error::message_vi`]); the code's generic text only where nothing more specific exists.
    pub message_vi: Cow<'static, str>,
    /// The library code, when there is one (for metrics).
    pub lib_code: Option<Code>,
    /// The peer endpoint only: the signed status 02s (base64), one per addressed agency of this
    /// node, that answer a document refused for an authenticity or integrity reason (Decree
    /// 30/2020 Art. 21); see
    /// [`Node::rejection_status`](crate::node::service::Node::rejection_status). Served as
    /// `status_packages`, and the first also as `status_package` (what senders before the list
    /// read).
    pub status_packages: Vec<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    message_vi: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_package: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    status_packages: &'a [String],
}

impl ApiError {
    /// `401 UNAUTHENTICATED`.
    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError {
            status: Http::UNAUTHORIZED,
            code: "UNAUTHENTICATED",
            message: message.into(),
            message_vi: Cow::Borrowed(
                "Chưa xác thực: thiếu mã truy cập (Bearer token) hoặc mã không hợp lệ.",
            ),
            lib_code: None,
            status_packages: Vec::new(),
        }
    }

    /// A library code with its own message (for problems found in the HTTP layer itself, such as
    /// a missing multipart part).
    pub fn coded(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            status: http_status(code),
            code: code.as_str(),
            message: message.into(),
            message_vi: Cow::Borrowed(message_vi(code)),
            lib_code: Some(code),
            status_packages: Vec::new(),
        }
    }

    /// With a Vietnamese message for this case in place of the code's generic one.
    pub fn with_vi(mut self, message_vi: impl Into<Cow<'static, str>>) -> ApiError {
        self.message_vi = message_vi.into();
        self
    }

    /// `500 INTERNAL`: the detail is logged, the caller gets a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        ApiError {
            status: Http::INTERNAL_SERVER_ERROR,
            code: Code::Internal.as_str(),
            message: "internal error of this node; see its log".into(),
            message_vi: Cow::Borrowed(message_vi(Code::Internal)),
            lib_code: Some(Code::Internal),
            status_packages: Vec::new(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let code = e.code();
        let status = http_status(code);
        if status.is_server_error() && status != Http::SERVICE_UNAVAILABLE {
            // Key, I/O, configuration, audit or stored-copy failures: ours, not the caller's;
            // the detail may name paths, so it goes to the log. The code's Vietnamese message
            // names no detail and tells the clerk whom to ask.
            let mut out = ApiError::internal(format!("{code}: {e}"));
            out.code = code.as_str();
            out.message_vi = Cow::Borrowed(message_vi(code));
            out.lib_code = Some(code);
            return out;
        }
        ApiError {
            status,
            code: code.as_str(),
            message_vi: e.message_vi(),
            message: e.to_string(),
            lib_code: Some(code),
            status_packages: Vec::new(),
        }
    }
}

impl From<crate::error::FormatError> for ApiError {
    fn from(e: crate::error::FormatError) -> ApiError {
        Error::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            code: self.code,
            message: &self.message,
            message_vi: &self.message_vi,
            status_package: self.status_packages.first().map(String::as_str),
            status_packages: &self.status_packages,
        };
        if self.status == Http::SERVICE_UNAVAILABLE {
            // Transient (the store unreachable, a revocation status not learnable now): nothing
            // was committed, so the client asks again — after this many seconds.
            return (
                self.status,
                [(axum::http::header::RETRY_AFTER, RETRY_AFTER_S)],
                Json(body),
            )
                .into_response();
        }
        (self.status, Json(body)).into_response()
    }
}

/// The `Retry-After` of a 503, in seconds.
pub const RETRY_AFTER_S: &str = "5";

/// The HTTP status for a library code.
///
/// 400 the request or package is malformed; 403 the caller may not do this (a status from an
/// agency with no standing on the document included); 404 not found (or not visible to the
/// asking agency); 409 conflicts with what is stored (a status out of the document's processing
/// order, a second revocation or update); 413 too large; 422 well formed but the signature or
/// the signer is refused, or a status's timestamp is outside the accepted window; 503 the store is unavailable or a signer's
/// revocation status cannot be learned now (retry later); 500 a failure of this node (keys, files, configuration, audit chain).
pub fn http_status(code: Code) -> Http {
    use Code::*;
    match code {
        PackageTooLarge | AttachmentTooLarge => Http::PAYLOAD_TOO_LARGE,
        EncodingInvalid | XmlMalformed | DtdForbidden | DepthLimit | ElementLimit | NotEdxml
        | ElementMissing | ElementDuplicate | ValueInvalid | OrganIdInvalid | StatusCodeUnknown
        | AttachmentLimit | Base64Invalid | AttachmentInvalid | ManifestMismatch
        | CharacterNotAllowed | AttachmentNameUnsafe | DocumentEmpty => Http::BAD_REQUEST,
        SignatureMissing | SignatureDuplicate | SignatureMisplaced | ReferenceInvalid
        | TransformNotAllowed | AlgorithmNotAllowed | DigestMismatch | SignatureInvalid
        | KeyInfoNotAllowed | CertMissing | CertMalformed | CertUntrusted | CertExpired
        | CertNotYetValid | CertIsCa | CertKeyUsage | CertRevoked | SenderNotAuthorised
        | NotAddressedHere | StatusTimeInvalid | NoRoute | IdempotencyKeyReused => {
            Http::UNPROCESSABLE_ENTITY
        }
        PeerNotAuthorised | StatusNotFromRecipient => Http::FORBIDDEN,
        NotFound | ReceiptNotYet => Http::NOT_FOUND,
        RequestTimeout => Http::REQUEST_TIMEOUT,
        DuplicateConflict | NumberTaken | NumberUnconfirmed | InvalidTransition
        | FollowUpExists => Http::CONFLICT,
        // Transient: the revocation status could not be learned now (responder down); the
        // sending node's outbox retries 5xx, and no 02 is sent.
        StoreUnavailable | RevocationUnknown => Http::SERVICE_UNAVAILABLE,
        KeyInvalid | Io | ConfigInvalid | AuditBroken | StoreCorrupt | Internal => {
            Http::INTERNAL_SERVER_ERROR
        }
        // A code added later gets 500 until someone decides; add it above.
        #[allow(unreachable_patterns)]
        _ => Http::INTERNAL_SERVER_ERROR,
    }
}

/// The Vietnamese message for clerks, by code (see [`Code::message_vi`]).
pub fn message_vi(code: Code) -> &'static str {
    code.message_vi()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_the_clerk_api_returns_has_a_status_and_a_vietnamese_message() {
        for (code, status) in [
            (Code::NotFound, 404),
            (Code::ReceiptNotYet, 404),
            (Code::DuplicateConflict, 409),
            (Code::NumberTaken, 409),
            (Code::NumberUnconfirmed, 409),
            (Code::NoRoute, 422),
            (Code::CharacterNotAllowed, 400),
            (Code::AttachmentNameUnsafe, 400),
            (Code::AttachmentTooLarge, 413),
            (Code::AttachmentLimit, 400),
            (Code::InvalidTransition, 409),
            (Code::FollowUpExists, 409),
            (Code::StatusNotFromRecipient, 403),
            (Code::StatusTimeInvalid, 422),
            (Code::PackageTooLarge, 413),
            (Code::ValueInvalid, 400),
            (Code::StatusCodeUnknown, 400),
            (Code::DigestMismatch, 422),
            (Code::PeerNotAuthorised, 403),
            (Code::StoreUnavailable, 503),
            (Code::RevocationUnknown, 503),
            (Code::CertRevoked, 422),
            (Code::Internal, 500),
            (Code::StoreCorrupt, 500),
            (Code::RequestTimeout, 408),
            (Code::IdempotencyKeyReused, 422),
            (Code::DocumentEmpty, 400),
        ] {
            assert_eq!(http_status(code).as_u16(), status, "{code}");
            assert!(!message_vi(code).is_empty());
        }
    }
}
