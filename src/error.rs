//! The one error module.
//!
//! Every failure the library reports carries a stable machine [`Code`] (what scripts, the API and
//! peers match on; never renamed once shipped) and a message that says what was wrong and where,
//! e.g. `MessageHeader/Code/CodeNumber: missing`. Errors are grouped by concern — the format, the
//! signature, trust in the signer — so a caller can tell "this is not an edXML package" from "this
//! package is forged" from "this signer is not trusted" without string matching.

use std::borrow::Cow;
use std::fmt;

/// Stable machine codes. The `SCREAMING_SNAKE_CASE` spelling of each variant is the wire form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Code {
    // --- format: the bytes and the XML -------------------------------------------------------
    /// The package exceeds the configured total size.
    PackageTooLarge,
    /// The bytes are not UTF-8 (or declare another encoding).
    EncodingInvalid,
    /// The XML is not well-formed.
    XmlMalformed,
    /// A DTD (and with it entities) was present; never processed.
    DtdForbidden,
    /// Nesting deeper than the limit.
    DepthLimit,
    /// More elements (or attributes, or namespaces) than the limit.
    ElementLimit,
    // --- format: edXML structure -------------------------------------------------------------
    /// The document element is not `edXML` in the QCVN 102 namespace.
    NotEdxml,
    /// A required element is absent or empty.
    ElementMissing,
    /// An element that may appear once appears more often.
    ElementDuplicate,
    /// A value does not have the required shape (date, integer, code list, length).
    ValueInvalid,
    /// An agency code (`OrganId`) is malformed.
    OrganIdInvalid,
    /// A status code outside 01–06, 13, 15, 16.
    StatusCodeUnknown,
    // --- format: attachments -----------------------------------------------------------------
    /// More attachments than the limit.
    AttachmentLimit,
    /// An attachment decodes or unzips to more than the limit (zip bombs included).
    AttachmentTooLarge,
    /// `ContentTransferEncoded` is not valid base64.
    Base64Invalid,
    /// An attachment starts as a zip does but the archive is broken (a file that is a zip of
    /// several entries is kept as it is; see `edxml::attachment`).
    AttachmentInvalid,
    /// A clerk's file name that would harm a receiver's system if sent as the attachment's name
    /// (a `/` or `\\`, `.` or `..`, a control or invisible character, a trailing dot or space,
    /// over 255 bytes), or the same file name as another file of the document (letter case and
    /// Unicode form aside); the message suggests a safe one (`edxml::file_name::unsafe_to_send`,
    /// `same_file_name`).
    AttachmentNameUnsafe,
    /// A manifest `Reference` without its `Attachment`, or the reverse.
    ManifestMismatch,
    // --- signature ---------------------------------------------------------------------------
    /// No `Signature` where one is required.
    SignatureMissing,
    /// More than one `Signature` element.
    SignatureDuplicate,
    /// The `Signature` is not the last child of `edXMLEnvelope/edXMLHeader`.
    SignatureMisplaced,
    /// `SignedInfo` is not of the accepted shape (one `Reference`, `URI=""`, …).
    ReferenceInvalid,
    /// A transform outside the profile, or transforms in the wrong order.
    TransformNotAllowed,
    /// An algorithm the verification policy does not allow (e.g. RSA-SHA1 by default).
    AlgorithmNotAllowed,
    /// The digest of the signed content does not match `DigestValue`.
    DigestMismatch,
    /// The signature value does not verify with the signer's key.
    SignatureInvalid,
    /// `KeyInfo` carries something this profile refuses (`KeyValue`, `RetrievalMethod`, …).
    KeyInfoNotAllowed,
    // --- certificates and trust --------------------------------------------------------------
    /// No signer certificate in `KeyInfo/X509Data`.
    CertMissing,
    /// A certificate that does not parse.
    CertMalformed,
    /// The signer does not chain to a trust anchor.
    CertUntrusted,
    /// The signer certificate (or one in its path) has expired.
    CertExpired,
    /// The signer certificate (or one in its path) is not valid yet.
    CertNotYetValid,
    /// A CA certificate was used to sign a package.
    CertIsCa,
    /// The signer's key usage or extended key usage does not allow document signing.
    CertKeyUsage,
    /// The signer certificate has been revoked.
    CertRevoked,
    /// The revocation status of the signer certificate (or one in its path) cannot be established
    /// and the revocation policy is `require`: no CRL covers it, its CRL is stale (past
    /// `nextUpdate`), or its CRL does not verify.
    RevocationUnknown,
    /// The signer's certificate names another agency than the package's `From/OrganId`.
    SenderNotAuthorised,
    /// The sending node may not speak for the package's `From/OrganId`.
    PeerNotAuthorised,
    /// None of the package's recipients is served by this node.
    NotAddressedHere,
    // --- keys and local input ----------------------------------------------------------------
    /// A private key that cannot be loaded or does not match its certificate.
    KeyInvalid,
    /// A local file could not be read or written.
    Io,
    /// The node configuration is wrong (names the key and the problem).
    ConfigInvalid,
    // --- the store -----------------------------------------------------------------------------
    /// A document with this (sender OrganId, DocumentId) is already stored with different bytes.
    DuplicateConflict,
    /// No such record (or not visible to the asking agency).
    NotFound,
    /// The delivery has no receipt yet: the recipient has not acknowledged it (not delivered).
    ReceiptNotYet,
    /// The store cannot be reached or failed (I/O, locked, corrupt); retrying later may succeed.
    StoreUnavailable,
    /// The audit chain does not verify: a record was edited, inserted, deleted or reordered.
    AuditBroken,
    /// A stored package's bytes no longer match the SHA-256 its row (and audit record) holds:
    /// its file, or its BLOB in the database, was changed or damaged. Retrying does not help; an
    /// operator restores it.
    StoreCorrupt,
    /// The requested state change is not allowed from the record's current state.
    InvalidTransition,
    /// The số/ký hiệu is already used by another document of this agency in this year.
    NumberTaken,
    // --- the document's processing (edxml::processing) ---------------------------------------
    /// A status comes from an agency with no standing on the document: one it was not sent to
    /// (or, for 13, not its sender).
    StatusNotFromRecipient,
    /// A status's timestamp is too far ahead of this node's clock, or before the document
    /// reached this node (`edxml::processing::SKEW_MS`).
    StatusTimeInvalid,
    /// A revocation or update of a document that was already revoked, or a second update: its
    /// recipients would refuse it as a conflicting duplicate.
    FollowUpExists,
    /// A số typed far above the agency's sequence (a typo would use up the year's numbers),
    /// submitted without `confirm_number`.
    NumberUnconfirmed,
    // --- submission --------------------------------------------------------------------------
    /// A well-formed recipient code that neither this node nor any configured peer serves:
    /// refused at submission rather than numbered, signed and queued to fail.
    NoRoute,
    /// A text field holds a control character (CR, LF, tab, …) where it would end up in an
    /// XML attribute, a DocumentId or a mail header; or a character that field's form forbids
    /// (a comma in a ký hiệu, the DocumentId's separator).
    CharacterNotAllowed,
    /// An `Idempotency-Key` already used by this agency for another request (other metadata,
    /// other files, or another operation): refused before anything is numbered or signed, as
    /// payment APIs do, rather than answering with the first document and dropping this one.
    IdempotencyKeyReused,
    /// A document with neither a file nor content: receivers expect the signed document file
    /// (Decree 30/2020/NĐ-CP, Art. 11 and Annex I), so there would be nothing to deliver.
    DocumentEmpty,
    // --- the transport ---------------------------------------------------------------------------
    /// The request's body did not arrive within `http.body_timeout`: a client that trickles its
    /// upload holds a connection for nothing. Sending again (at a normal pace) is the remedy.
    RequestTimeout,
    // --- this node -----------------------------------------------------------------------------
    /// A failure inside this node that the caller cannot fix (a worker task that panicked); the
    /// detail goes to the log.
    Internal,
}

impl Code {
    /// Every code, in declaration order: what the tests go through to check that each has a
    /// distinct wire spelling and its own Vietnamese text (add a new code here too).
    pub const ALL: &'static [Code] = &[
        Code::PackageTooLarge,
        Code::EncodingInvalid,
        Code::XmlMalformed,
        Code::DtdForbidden,
        Code::DepthLimit,
        Code::ElementLimit,
        Code::NotEdxml,
        Code::ElementMissing,
        Code::ElementDuplicate,
        Code::ValueInvalid,
        Code::OrganIdInvalid,
        Code::StatusCodeUnknown,
        Code::AttachmentLimit,
        Code::AttachmentTooLarge,
        Code::Base64Invalid,
        Code::AttachmentInvalid,
        Code::AttachmentNameUnsafe,
        Code::ManifestMismatch,
        Code::SignatureMissing,
        Code::SignatureDuplicate,
        Code::SignatureMisplaced,
        Code::ReferenceInvalid,
        Code::TransformNotAllowed,
        Code::AlgorithmNotAllowed,
        Code::DigestMismatch,
        Code::SignatureInvalid,
        Code::KeyInfoNotAllowed,
        Code::CertMissing,
        Code::CertMalformed,
        Code::CertUntrusted,
        Code::CertExpired,
        Code::CertNotYetValid,
        Code::CertIsCa,
        Code::CertKeyUsage,
        Code::CertRevoked,
        Code::RevocationUnknown,
        Code::SenderNotAuthorised,
        Code::PeerNotAuthorised,
        Code::NotAddressedHere,
        Code::KeyInvalid,
        Code::Io,
        Code::ConfigInvalid,
        Code::DuplicateConflict,
        Code::NotFound,
        Code::ReceiptNotYet,
        Code::StoreUnavailable,
        Code::AuditBroken,
        Code::StoreCorrupt,
        Code::InvalidTransition,
        Code::NumberTaken,
        Code::StatusNotFromRecipient,
        Code::StatusTimeInvalid,
        Code::FollowUpExists,
        Code::NumberUnconfirmed,
        Code::NoRoute,
        Code::CharacterNotAllowed,
        Code::RequestTimeout,
        Code::IdempotencyKeyReused,
        Code::DocumentEmpty,
        Code::Internal,
    ];

    /// The wire spelling, e.g. `SIGNATURE_INVALID`.
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            PackageTooLarge => "PACKAGE_TOO_LARGE",
            EncodingInvalid => "ENCODING_INVALID",
            XmlMalformed => "XML_MALFORMED",
            DtdForbidden => "DTD_FORBIDDEN",
            DepthLimit => "DEPTH_LIMIT",
            ElementLimit => "ELEMENT_LIMIT",
            NotEdxml => "NOT_EDXML",
            ElementMissing => "ELEMENT_MISSING",
            ElementDuplicate => "ELEMENT_DUPLICATE",
            ValueInvalid => "VALUE_INVALID",
            OrganIdInvalid => "ORGAN_ID_INVALID",
            StatusCodeUnknown => "STATUS_CODE_UNKNOWN",
            AttachmentLimit => "ATTACHMENT_LIMIT",
            AttachmentTooLarge => "ATTACHMENT_TOO_LARGE",
            Base64Invalid => "BASE64_INVALID",
            AttachmentInvalid => "ATTACHMENT_INVALID",
            AttachmentNameUnsafe => "ATTACHMENT_NAME_UNSAFE",
            ManifestMismatch => "MANIFEST_MISMATCH",
            SignatureMissing => "SIGNATURE_MISSING",
            SignatureDuplicate => "SIGNATURE_DUPLICATE",
            SignatureMisplaced => "SIGNATURE_MISPLACED",
            ReferenceInvalid => "REFERENCE_INVALID",
            TransformNotAllowed => "TRANSFORM_NOT_ALLOWED",
            AlgorithmNotAllowed => "ALGORITHM_NOT_ALLOWED",
            DigestMismatch => "DIGEST_MISMATCH",
            SignatureInvalid => "SIGNATURE_INVALID",
            KeyInfoNotAllowed => "KEYINFO_NOT_ALLOWED",
            CertMissing => "CERT_MISSING",
            CertMalformed => "CERT_MALFORMED",
            CertUntrusted => "CERT_UNTRUSTED",
            CertExpired => "CERT_EXPIRED",
            CertNotYetValid => "CERT_NOT_YET_VALID",
            CertIsCa => "CERT_IS_CA",
            CertKeyUsage => "CERT_KEY_USAGE",
            CertRevoked => "CERT_REVOKED",
            RevocationUnknown => "REVOCATION_UNKNOWN",
            SenderNotAuthorised => "SENDER_NOT_AUTHORISED",
            PeerNotAuthorised => "PEER_NOT_AUTHORISED",
            NotAddressedHere => "NOT_ADDRESSED_HERE",
            KeyInvalid => "KEY_INVALID",
            Io => "IO",
            ConfigInvalid => "CONFIG_INVALID",
            DuplicateConflict => "DUPLICATE_CONFLICT",
            NotFound => "NOT_FOUND",
            ReceiptNotYet => "RECEIPT_NOT_YET",
            StoreUnavailable => "STORE_UNAVAILABLE",
            AuditBroken => "AUDIT_BROKEN",
            StoreCorrupt => "STORE_CORRUPT",
            InvalidTransition => "INVALID_TRANSITION",
            NumberTaken => "NUMBER_TAKEN",
            StatusNotFromRecipient => "STATUS_NOT_FROM_RECIPIENT",
            StatusTimeInvalid => "STATUS_TIME_INVALID",
            FollowUpExists => "FOLLOW_UP_EXISTS",
            NumberUnconfirmed => "NUMBER_UNCONFIRMED",
            NoRoute => "NO_ROUTE",
            CharacterNotAllowed => "CHARACTER_NOT_ALLOWED",
            RequestTimeout => "REQUEST_TIMEOUT",
            IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            DocumentEmpty => "DOCUMENT_EMPTY",
            Internal => "INTERNAL",
        }
    }
}

impl Code {
    /// The code's generic message in Vietnamese: what a clerk reads when the error has nothing
    /// more specific to say ([`FormatError::message_vi`] names the field and the case when it
    /// can). Each code has its own text (a test holds them distinct). It lives with the codes so
    /// that every layer — the API, the signed 02 a node sends back, the mail bridge — says the
    /// same thing.
    pub fn message_vi(self) -> &'static str {
        use Code::*;
        match self {
            PackageTooLarge => "Gói tin vượt quá dung lượng cho phép.",
            EncodingInvalid => "Gói tin không được mã hóa UTF-8.",
            XmlMalformed => "Gói tin không phải là XML hợp lệ.",
            DtdForbidden => "Gói tin chứa khai báo DTD; hệ thống không chấp nhận.",
            DepthLimit => "Gói tin có cấu trúc lồng nhau quá sâu.",
            ElementLimit => "Gói tin có quá nhiều phần tử.",
            NotEdxml => "Gói tin không phải định dạng edXML.",
            ElementMissing => "Thiếu thông tin bắt buộc.",
            ElementDuplicate => "Một thông tin chỉ được khai báo một lần nhưng bị lặp lại.",
            ValueInvalid => "Giá trị không hợp lệ.",
            OrganIdInvalid => "Mã định danh cơ quan không hợp lệ.",
            StatusCodeUnknown => "Mã trạng thái không hợp lệ.",
            AttachmentLimit => "Số lượng tệp đính kèm vượt quá giới hạn.",
            AttachmentTooLarge => "Tệp đính kèm vượt quá dung lượng cho phép.",
            Base64Invalid => "Tệp đính kèm không được mã hóa base64 hợp lệ.",
            AttachmentInvalid => "Tệp đính kèm bị hỏng hoặc không đúng định dạng.",
            AttachmentNameUnsafe => {
                "Tên tệp đính kèm không gửi được: có dấu gạch chéo (/ hoặc \\), ký tự điều khiển hoặc ký tự ẩn, kết thúc bằng dấu chấm hoặc dấu cách, dài quá 255 byte, hoặc trùng với tên một tệp khác của văn bản (không phân biệt chữ hoa, chữ thường); vui lòng đổi tên tệp (gợi ý tên an toàn có trong thông báo lỗi) rồi gửi lại."
            }
            ManifestMismatch => "Danh mục tệp đính kèm không khớp với các tệp trong gói tin.",
            SignatureMissing => "Gói tin chưa được ký số.",
            SignatureDuplicate => "Gói tin có nhiều hơn một chữ ký số.",
            SignatureMisplaced => "Chữ ký số không nằm đúng vị trí quy định.",
            ReferenceInvalid => {
                "Chữ ký số không đúng cấu trúc quy định: phần tham chiếu (Reference) không hợp lệ."
            }
            TransformNotAllowed => {
                "Chữ ký số dùng phép biến đổi (Transform) không được chấp nhận hoặc sai thứ tự."
            }
            KeyInfoNotAllowed => "Chữ ký số chứa thông tin khóa (KeyInfo) không được chấp nhận.",
            AlgorithmNotAllowed => "Thuật toán ký số không được chấp nhận.",
            DigestMismatch => "Nội dung gói tin đã bị thay đổi sau khi ký.",
            SignatureInvalid => "Chữ ký số không hợp lệ.",
            CertMissing => "Không có chứng thư số của người ký.",
            CertMalformed => "Chứng thư số của người ký bị lỗi.",
            CertUntrusted => "Chứng thư số của người ký không do tổ chức tin cậy cấp.",
            CertExpired => "Chứng thư số của người ký đã hết hạn.",
            CertNotYetValid => "Chứng thư số của người ký chưa có hiệu lực.",
            CertIsCa => "Chứng thư số dùng để ký không phải chứng thư ký văn bản.",
            CertKeyUsage => "Chứng thư số không được phép dùng để ký văn bản.",
            CertRevoked => "Chứng thư số của người ký đã bị thu hồi.",
            RevocationUnknown => {
                "Không xác định được tình trạng thu hồi của chứng thư số của người ký."
            }
            SenderNotAuthorised => "Chứng thư số không thuộc cơ quan gửi văn bản.",
            PeerNotAuthorised => "Hệ thống gửi không được phép gửi thay cho cơ quan này.",
            NotAddressedHere => "Văn bản không gửi đến cơ quan nào thuộc hệ thống này.",
            KeyInvalid => {
                "Khóa ký số của cơ quan không sử dụng được; vui lòng liên hệ quản trị viên."
            }
            Io => "Lỗi đọc ghi dữ liệu của hệ thống; vui lòng liên hệ quản trị viên.",
            ConfigInvalid => "Cấu hình hệ thống không hợp lệ; vui lòng liên hệ quản trị viên.",
            DuplicateConflict => "Văn bản này đã được nhận trước đó với nội dung khác.",
            NotFound => {
                "Không tìm thấy: mục được yêu cầu không tồn tại hoặc không thuộc cơ quan của bạn."
            }
            ReceiptNotYet => "Cơ quan nhận chưa gửi báo nhận (văn bản chưa được chuyển đến).",
            StoreUnavailable => {
                "Hệ thống tạm thời không truy cập được dữ liệu; vui lòng thử lại sau."
            }
            AuditBroken => "Nhật ký kiểm tra bị sai lệch; vui lòng liên hệ quản trị viên.",
            StoreCorrupt => {
                "Bản lưu của văn bản trên máy chủ đã bị hỏng hoặc bị thay đổi; vui lòng liên hệ quản trị viên."
            }
            InvalidTransition => "Thao tác không hợp lệ với trạng thái hiện tại của văn bản.",
            NumberTaken => "Số và ký hiệu văn bản này đã được cơ quan sử dụng trong năm.",
            StatusNotFromRecipient => {
                "Cơ quan báo trạng thái không phải là nơi nhận của văn bản (hoặc, với trạng thái 13, không phải cơ quan gửi)."
            }
            StatusTimeInvalid => {
                "Thời điểm của trạng thái không hợp lệ: vượt quá giờ hiện tại hoặc trước khi văn bản được gửi; vui lòng kiểm tra đồng hồ của hệ thống."
            }
            FollowUpExists => {
                "Văn bản đã có yêu cầu thu hồi hoặc cập nhật trước đó; không thể gửi thêm: mỗi văn bản chỉ được thu hồi một lần, cập nhật một lần và không được cập nhật sau khi đã thu hồi."
            }
            NumberUnconfirmed => {
                "Số văn bản nhập vào lớn hơn nhiều so với số tiếp theo của sổ văn bản đi; vui lòng kiểm tra lại, hoặc xác nhận (confirm_number) nếu đúng là số này."
            }
            NoRoute => {
                "Không có đường gửi đến cơ quan nhận này (mã định danh không thuộc hệ thống nào đã kết nối); vui lòng kiểm tra lại mã hoặc liên hệ quản trị viên."
            }
            CharacterNotAllowed => {
                "Thông tin chứa ký tự không được phép: ký tự điều khiển (như xuống dòng, tab) trong trường chỉ được viết trên một dòng, hoặc dấu phẩy trong ký hiệu văn bản; vui lòng xem trường bị lỗi và nhập lại."
            }
            RequestTimeout => {
                "Nội dung gửi đến không về kịp trong thời gian cho phép (đường truyền quá chậm hoặc bị gián đoạn); vui lòng gửi lại."
            }
            IdempotencyKeyReused => {
                "Khóa chống gửi trùng (Idempotency-Key) này đã được dùng cho một yêu cầu khác nên yêu cầu này không được thực hiện (văn bản chưa được gửi); vui lòng dùng một khóa mới cho mỗi văn bản hoặc yêu cầu mới."
            }
            DocumentEmpty => {
                "Văn bản không có tệp đính kèm và không có nội dung; vui lòng đính kèm tệp văn bản điện tử đã ký số (PDF) rồi gửi lại."
            }
            Internal => "Lỗi nội bộ của hệ thống; vui lòng thử lại sau hoặc liên hệ quản trị viên.",
            #[allow(unreachable_patterns)]
            _ => "Yêu cầu không thực hiện được.",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with one field, in the words the Vietnamese message is made of: the kind of
/// problem (a small vocabulary) and, where the kind needs it, the expected form or the offending
/// character already in Vietnamese. The field itself is the error's `path`, so the Vietnamese
/// message names the field exactly as the English one does; [`FormatError::message_vi`] renders
/// it. One mechanism for every refusal, instead of a Vietnamese sentence per call site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Required, and absent or empty.
    Missing,
    /// Given more than once where once is allowed.
    Duplicate,
    /// Not a field (part, parameter) this request has; `accepted` lists the ones it has.
    Unknown { accepted: Vec<String> },
    /// Longer than `max` characters.
    TooLong { max: usize },
    /// Larger than `max` bytes.
    TooLarge { max: u64 },
    /// More than `max` items.
    TooMany { max: usize },
    /// Not of the expected form: `expected` says what is (`một số nguyên từ 1 đến 1000`).
    Expected(Cow<'static, str>),
    /// Holds a character the field refuses, named in Vietnamese (`ký tự xuống dòng`).
    Character(Cow<'static, str>),
    /// JSON that does not parse, at this line and column of the field's text.
    Syntax { line: usize, column: usize },
    /// A case the vocabulary has no word for: a whole Vietnamese clause about the field.
    Said(Cow<'static, str>),
}

/// The Vietnamese rendering of a [`Problem`] of `field`, with what to do about it.
pub fn render_vi(field: &str, problem: &Problem, hint: Option<&str>) -> String {
    let f = format!("“{field}”");
    let (what, todo): (String, &str) = match problem {
        Problem::Missing => (
            format!("Thiếu {f} (thông tin bắt buộc)"),
            "vui lòng bổ sung rồi gửi lại",
        ),
        Problem::Duplicate => (
            format!("{f} chỉ được có một lần nhưng bị lặp lại"),
            "vui lòng chỉ gửi một lần",
        ),
        Problem::Unknown { accepted } => (
            if accepted.is_empty() {
                format!("{f} không phải là thông tin mà yêu cầu này nhận")
            } else {
                format!(
                    "{f} không phải là thông tin mà yêu cầu này nhận (chỉ nhận: {})",
                    accepted.join(", ")
                )
            },
            "vui lòng bỏ đi hoặc sửa lại tên cho đúng",
        ),
        Problem::TooLong { max } => (
            format!("{f} dài quá {max} ký tự cho phép"),
            "vui lòng rút gọn rồi gửi lại",
        ),
        Problem::TooLarge { max } => (
            format!("{f} vượt quá dung lượng cho phép ({max} byte)"),
            "vui lòng giảm dung lượng rồi gửi lại",
        ),
        Problem::TooMany { max } => (
            format!("{f} có nhiều hơn {max} mục cho phép"),
            "vui lòng bớt đi rồi gửi lại",
        ),
        Problem::Expected(expected) => (
            format!("{f} không hợp lệ: phải là {expected}"),
            "vui lòng sửa lại rồi gửi lại",
        ),
        Problem::Character(what) => (
            format!("{f} chứa {what}, là ký tự không được phép ở đây"),
            "vui lòng xóa ký tự đó rồi gửi lại",
        ),
        Problem::Syntax { line, column } => (
            format!("{f} không phải là JSON hợp lệ: lỗi cú pháp ở dòng {line}, cột {column}"),
            "vui lòng sửa lại rồi gửi lại",
        ),
        Problem::Said(clause) => (format!("{f}: {clause}"), ""),
    };
    let mut out = what;
    match hint {
        Some(h) => {
            out.push_str("; ");
            out.push_str(h);
        }
        None if !todo.is_empty() => {
            out.push_str("; ");
            out.push_str(todo);
        }
        None => {}
    }
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// The Vietnamese side of a [`FormatError`]: the problem, and a hint that replaces the kind's
/// default "what to do".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vi {
    pub problem: Problem,
    pub hint: Option<Cow<'static, str>>,
}

/// Something wrong with the bytes, the XML or the edXML structure of a package — or with a
/// field of a request, named as the caller sent it.
///
/// `path` is the slash-separated element path below the package root
/// (`edXMLEnvelope/edXMLHeader/MessageHeader/Code/CodeNumber`), a byte/line position for
/// problems found before there is a tree, or a request's field (`metadata.recipients[0]`).
/// `vi`, when set, is what the Vietnamese message says for this case; without it the message
/// is the code's generic one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct FormatError {
    pub code: Code,
    pub path: String,
    pub problem: String,
    pub vi: Option<Box<Vi>>,
}

impl FormatError {
    pub fn new(code: Code, path: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            code,
            path: path.into(),
            problem: problem.into(),
            vi: None,
        }
    }

    /// A required element that is absent or empty.
    pub fn missing(path: impl Into<String>) -> Self {
        Self::new(Code::ElementMissing, path, "missing").said(Problem::Missing)
    }

    /// With the Vietnamese rendering of `problem` (keeping a hint already given).
    pub fn said(mut self, problem: Problem) -> Self {
        let hint = self.vi.take().and_then(|v| v.hint);
        self.vi = Some(Box::new(Vi { problem, hint }));
        self
    }

    /// With a Vietnamese hint of what to do, in place of the problem's default one.
    pub fn hint_vi(mut self, hint: impl Into<Cow<'static, str>>) -> Self {
        if let Some(v) = self.vi.as_mut() {
            v.hint = Some(hint.into());
        }
        self
    }

    /// What a clerk reads: this case's problem with the field named as sent, or the code's
    /// generic text when the error carries no Vietnamese rendering.
    pub fn message_vi(&self) -> Cow<'static, str> {
        match &self.vi {
            Some(v) => Cow::Owned(render_vi(&self.path, &v.problem, v.hint.as_deref())),
            None => Cow::Borrowed(self.code.message_vi()),
        }
    }

    /// A value of the wrong shape.
    pub fn invalid(path: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::new(Code::ValueInvalid, path, problem)
    }
}

/// Something wrong with the XML signature itself (independent of whether the signer is trusted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct SignatureError {
    pub code: Code,
    pub path: String,
    pub problem: String,
}

impl SignatureError {
    pub fn new(code: Code, path: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            code,
            path: path.into(),
            problem: problem.into(),
        }
    }
}

/// The signature is sound but the signer may not be relied on (chain, validity, usage, revocation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{subject}: {problem}")]
pub struct TrustError {
    pub code: Code,
    /// The subject of the certificate the problem is about.
    pub subject: String,
    pub problem: String,
}

impl TrustError {
    pub fn new(code: Code, subject: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            code,
            subject: subject.into(),
            problem: problem.into(),
        }
    }
}

/// Any library error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A private key or certificate supplied for signing is unusable.
    #[error("{what}: {problem}")]
    Key { what: String, problem: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A failure inside this node (`INTERNAL`): what failed and how.
    #[error("{what}: {problem}")]
    Internal { what: String, problem: String },
    /// A store operation was refused or failed; `code` says which (see the store codes above,
    /// or `VALUE_INVALID` for input the store refuses).
    #[error("{message}")]
    Store { code: Code, message: String },
}

impl Error {
    /// The Vietnamese message for this case ([`FormatError::message_vi`]), or the code's
    /// generic one.
    pub fn message_vi(&self) -> Cow<'static, str> {
        match self {
            Error::Format(e) => e.message_vi(),
            _ => Cow::Borrowed(self.code().message_vi()),
        }
    }

    /// The stable machine code.
    pub fn code(&self) -> Code {
        match self {
            Error::Format(e) => e.code,
            Error::Signature(e) => e.code,
            Error::Trust(e) => e.code,
            Error::Key { .. } => Code::KeyInvalid,
            Error::Io { .. } => Code::Io,
            Error::Internal { .. } => Code::Internal,
            Error::Store { code, .. } => *code,
        }
    }

    pub fn key(what: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Key {
            what: what.into(),
            problem: problem.into(),
        }
    }

    pub fn internal(what: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Internal {
            what: what.into(),
            problem: problem.into(),
        }
    }

    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A store error with its code and message.
    pub fn store(code: Code, message: impl Into<String>) -> Self {
        Error::Store {
            code,
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_distinct_spelling_and_its_own_vietnamese_text() {
        let mut spellings = std::collections::HashSet::new();
        let mut texts = std::collections::HashMap::new();
        for &code in Code::ALL {
            assert!(spellings.insert(code.as_str()), "{code} spelled twice");
            let vi = code.message_vi();
            assert!(!vi.trim().is_empty(), "{code}: no Vietnamese text");
            assert!(
                !vi.is_ascii(),
                "{code}: {vi:?} has no Vietnamese diacritics"
            );
            if let Some(other) = texts.insert(vi, code) {
                panic!("{code} and {other} share the Vietnamese text {vi:?}");
            }
        }
    }

    #[test]
    fn a_problem_is_said_in_vietnamese_naming_the_field_as_sent() {
        let e = FormatError::missing("metadata.subject");
        let vi = e.message_vi();
        assert!(
            vi.contains("“metadata.subject”") && vi.contains("Thiếu"),
            "{vi}"
        );
        let e = FormatError::invalid("per_page", "\"0\": expected 1 to 1000")
            .said(Problem::Expected("một số nguyên từ 1 đến 1000".into()));
        assert_eq!(
            e.message_vi(),
            "“per_page” không hợp lệ: phải là một số nguyên từ 1 đến 1000; vui lòng sửa lại rồi gửi lại."
        );
        // Without a rendering, the code's generic text.
        let e = FormatError::invalid("x", "y");
        assert_eq!(e.message_vi(), Code::ValueInvalid.message_vi());
    }
}
