//! How a delivery leaves the node. Local deliveries go straight through the node's own ingest
//! (`node::outbox`); peers are reached over HTTPS ([`peer`]); the mail bridge and the national
//! platform come later as further transports.

pub mod file_body;
pub mod peer;
pub mod probe;
pub mod tls;

/// Why a push did not deliver, and whether trying again later can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    /// A stable code: the peer's own refusal code (`DIGEST_MISMATCH`, …) or ours
    /// (`PEER_UNREACHABLE`, `PEER_TIMEOUT`, `PEER_ERROR`, `RECEIPT_INVALID`).
    pub code: String,
    pub message: String,
    /// `true` for network trouble and server errors; `false` when the peer refused the package
    /// itself (it will refuse it again).
    pub retryable: bool,
    /// A refusal answered with the recipients' signed status 02s (the error JSON's
    /// `status_packages`, or an older peer's single `status_package`, decoded): Decree 30/2020
    /// Art. 21's answer to a document that failed the authenticity or integrity check, one per
    /// addressed agency of the peer. Unverified here; the outbox keeps only the one from the
    /// delivery's recipient.
    pub status_packages: Vec<Vec<u8>>,
}

impl TransportError {
    pub fn retry(code: &str, message: impl Into<String>) -> Self {
        TransportError {
            code: code.into(),
            message: message.into(),
            retryable: true,
            status_packages: Vec::new(),
        }
    }

    pub fn permanent(code: &str, message: impl Into<String>) -> Self {
        TransportError {
            code: code.into(),
            message: message.into(),
            retryable: false,
            status_packages: Vec::new(),
        }
    }
}
