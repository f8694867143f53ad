//! What the caller sent, read into our types — and every way that can fail turned into our
//! error, naming the field as the caller sent it (`metadata.recipients[0]`, `per_page`, `id`,
//! `Content-Type`), in English and in Vietnamese ([`Problem`]).
//!
//! axum's extractors and serde answer in their own words (`data did not match any variant of
//! untagged enum Recipient`, `Invalid 'boundary' for 'multipart/form-data' request`, `Cannot
//! parse "abc" to a i64`): right for a Rust programmer, useless to a clerk and to the developer
//! of a document system. So JSON and query strings are deserialized here through
//! `serde_path_to_error` (the path of the field that failed) and serde's few message forms
//! (missing, unknown, duplicate field; invalid type, value, length; unknown variant) are read
//! back into the [`Problem`] vocabulary, with the expected form said without Rust type names.
//! Path, multipart and body rejections are mapped the same way.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderValue;
use axum::http::StatusCode as Http;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::Code;
use crate::error::{FormatError, Problem};

/// A JSON request body (`Content-Type: application/json`) as `T`; fields are named as in the
/// body (`code`, `reason`), the whole body as `body`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req.headers().get(CONTENT_TYPE).cloned();
        if !is_json(content_type.as_ref()) {
            return Err(content_type_error(
                content_type.as_ref(),
                "application/json",
                "application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| body_error(&r, r.status()))?;
        json(&bytes, "", "body")
            .map(ApiJson)
            .map_err(ApiError::from)
    }
}

/// A query string as `T` (a struct of optional fields, `deny_unknown_fields`); a parameter is
/// named as in the URL (`per_page`).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = field_path("", "query", e.path());
                ApiError::from(data_error(path, &e.inner().to_string(), "parameter"))
            })
    }
}

/// `bytes` (JSON) as `T`. `prefix` is the name fields are given under (`metadata` for the
/// `metadata` part: `metadata.recipients[0]`; empty for a body: `reason`); `whole` names the
/// text itself in a syntax error (`metadata`, `body`).
pub fn json<T: DeserializeOwned>(
    bytes: &[u8],
    prefix: &str,
    whole: &str,
) -> Result<T, FormatError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = field_path(prefix, whole, e.path());
        json_error(path, whole, e.into_inner())
    })?;
    de.end()
        .map_err(|e| json_error(whole.to_owned(), whole, e))?;
    Ok(value)
}

/// `prefix` and the path serde_path_to_error tracked, as the caller spells it
/// (`metadata.recipients[0].code`); `whole` when there is neither.
fn field_path(prefix: &str, whole: &str, path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = prefix.to_owned();
    for s in path.iter() {
        match s {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    if out.is_empty() {
        whole.to_owned()
    } else {
        out
    }
}

fn json_error(path: String, whole: &str, e: serde_json::Error) -> FormatError {
    use serde_json::error::Category;
    let (line, column) = (e.line(), e.column());
    let text = e.to_string();
    let text = text
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&text)
        .replace("EOF while parsing", "the text ends inside");
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => FormatError::invalid(
            whole,
            format!("not valid JSON: {text}, at line {line}, column {column}"),
        )
        .said(Problem::Syntax { line, column }),
        Category::Data => data_error(path, &text, "field"),
    }
}

/// The words between the first pair of backticks of `s`.
fn quoted(s: &str) -> Option<&str> {
    let start = s.find('`')? + 1;
    let len = s[start..].find('`')?;
    Some(&s[start..start + len])
}

/// Every backtick-quoted word of `s` (serde's list of expected fields or variants).
fn quoted_all(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

fn join(path: &str, field: &str) -> String {
    match path {
        "" | "body" | "query" => field.to_owned(),
        p if p == field || p.ends_with(&format!(".{field}")) => p.to_owned(),
        p => format!("{p}.{field}"),
    }
}

/// One of serde's data errors (`text`, without position) at `path`, in our words. `noun` is
/// what a name in the input is (`field`, `parameter`).
fn data_error(path: String, text: &str, noun: &str) -> FormatError {
    if let Some(rest) = text.strip_prefix("missing field ") {
        let field = quoted(rest).unwrap_or(rest);
        return FormatError::missing(join(&path, field));
    }
    if let Some(rest) = text.strip_prefix("duplicate field ") {
        let field = quoted(rest).unwrap_or(rest);
        return FormatError::new(Code::ElementDuplicate, join(&path, field), "given twice")
            .said(Problem::Duplicate);
    }
    if let Some(rest) = text.strip_prefix("unknown field ") {
        let (field, expected) = rest.split_once(", ").unwrap_or((rest, ""));
        let field = quoted(field).unwrap_or(field);
        let accepted = quoted_all(expected);
        let list = if accepted.is_empty() {
            String::new()
        } else {
            format!("; accepted: {}", accepted.join(", "))
        };
        return FormatError::invalid(
            join(&path, field),
            format!("not a {noun} of this request{list}"),
        )
        .said(Problem::Unknown { accepted });
    }
    if let Some(rest) = text.strip_prefix("unknown variant ") {
        let (value, expected) = rest.split_once(", ").unwrap_or((rest, ""));
        let accepted = quoted_all(expected).join(", ");
        let value = quoted(value).unwrap_or(value);
        return FormatError::invalid(&path, format!("{value:?}: expected one of {accepted}")).said(
            Problem::Expected(format!("một trong các giá trị: {accepted}").into()),
        );
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = text.strip_prefix(prefix)
            && let Some((got, expected)) = rest.rsplit_once(", expected ")
        {
            let got = got_value(got);
            if is_integer(expected)
                && let Some(e) = crate::node::validate::own_range_invalid(&path, &got)
            {
                return e;
            }
            let (en, vi) = form(expected);
            return FormatError::invalid(&path, format!("expected {en}, got {got}"))
                .said(Problem::Expected(vi));
        }
    }
    if let Some(rest) = text.strip_prefix("invalid length ")
        && let Some((_, expected)) = rest.split_once(", expected ")
    {
        let (en, vi) = form(expected);
        return FormatError::invalid(&path, format!("expected {en}")).said(Problem::Expected(vi));
    }
    // `FromStr` failures of a query string's values.
    if text.contains("invalid digit")
        || text.contains("number too large")
        || text.contains("number too small")
        || text.contains("cannot parse integer")
    {
        let (en, vi) = form("u64");
        return FormatError::invalid(&path, format!("expected {en}")).said(Problem::Expected(vi));
    }
    if text.contains("`true` or `false`") {
        let (en, vi) = form("a boolean");
        return FormatError::invalid(&path, format!("expected {en}")).said(Problem::Expected(vi));
    }
    // A message of one of our own `Deserialize` implementations: already our words.
    FormatError::invalid(&path, text.to_owned()).said(Problem::Said(
        "giá trị không đúng dạng quy định; vui lòng sửa lại rồi gửi lại".into(),
    ))
}

/// serde's description of the value it got (`integer `5``, `string "x"`), in plain words.
fn got_value(got: &str) -> String {
    if let Some(s) = got.strip_prefix("string ") {
        return format!("the text {s}");
    }
    match got {
        "map" => return "an object".into(),
        "sequence" => return "a list".into(),
        "null" | "unit value" | "unit" => return "null".into(),
        _ => {}
    }
    match quoted(got) {
        Some(v) => v.to_owned(),
        None => got.to_owned(),
    }
}

/// Whether serde's expected form is one of Rust's integer types (whose bounds are not the
/// field's own range).
fn is_integer(expected: &str) -> bool {
    matches!(
        expected,
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize"
    )
}

/// An expected form as serde says it (`u32`, `a string`, `struct SignerJson`, our own visitors'
/// words), in English and Vietnamese without Rust type names.
fn form(expected: &str) -> (String, Cow<'static, str>) {
    let whole = |min: &str, max: &str| {
        (
            format!("a whole number from {min} to {max}"),
            Cow::Owned(format!("một số nguyên từ {min} đến {max}")),
        )
    };
    match expected {
        "a string" | "string" | "a borrowed string" => (
            "text in double quotes".into(),
            "một chuỗi ký tự trong dấu ngoặc kép".into(),
        ),
        "a boolean" | "bool" => ("true or false".into(), "true hoặc false".into()),
        "u8" => whole("0", "255"),
        "u16" => whole("0", "65535"),
        "u32" => whole("0", "4294967295"),
        "u64" | "usize" => (
            "a whole number, 0 or more".into(),
            "một số nguyên không âm".into(),
        ),
        "i8" | "i16" | "i32" | "i64" | "isize" => ("a whole number".into(), "một số nguyên".into()),
        "f32" | "f64" => ("a number".into(), "một số".into()),
        "a sequence" => ("a list [ … ]".into(), "một danh sách [ … ]".into()),
        "a character" | "char" => ("one character".into(), "một ký tự".into()),
        e if e.starts_with("struct ") || e.starts_with("a map") || e == "map" => {
            ("an object { … }".into(), "một đối tượng { … }".into())
        }
        e if e == crate::node::compose::RECIPIENT_FORM => {
            (e.to_owned(), crate::node::compose::RECIPIENT_FORM_VI.into())
        }
        e if e.starts_with("enum ") || e.starts_with("variant ") => (
            "one of the accepted values".into(),
            "một trong các giá trị được chấp nhận".into(),
        ),
        e if e.starts_with("tuple") || e.starts_with("an array") || e.starts_with("array") => {
            ("a list [ … ]".into(), "một danh sách [ … ]".into())
        }
        // Our own visitors' words: already plain English.
        e => (e.to_owned(), "giá trị đúng dạng quy định".into()),
    }
}

/// Whether `content_type` is JSON (`application/json`, or `application/…+json`).
pub fn is_json(content_type: Option<&HeaderValue>) -> bool {
    let Some(media) = content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
    else {
        return false;
    };
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// A request sent with another `Content-Type` than the endpoint reads.
pub fn content_type_error(
    got: Option<&HeaderValue>,
    expected: &str,
    expected_vi: &'static str,
) -> ApiError {
    let got = match got.and_then(|v| v.to_str().ok()) {
        Some(g) => format!("got {:?}", g.split(';').next().unwrap_or(g).trim()),
        None => "none was sent".to_owned(),
    };
    FormatError::invalid("Content-Type", format!("expected {expected}, {got}"))
        .said(Problem::Expected(expected_vi.into()))
        .into()
}

/// A body that could not be read: too large (`PACKAGE_TOO_LARGE`), not in time
/// (`REQUEST_TIMEOUT`), or broken off.
fn body_error(e: &(dyn std::error::Error + 'static), status: Http) -> ApiError {
    if super::conn::BodyTimedOut::is_cause_of(e) {
        return ApiError::from(
            FormatError::new(
                Code::RequestTimeout,
                "body",
                "did not arrive within the time this node allows (http.body_timeout)",
            )
            .said(Problem::Said(
                "nội dung gửi lên không về kịp trong thời gian cho phép (đường truyền quá chậm hoặc bị gián đoạn); vui lòng gửi lại".into(),
            )),
        );
    }
    if status == Http::PAYLOAD_TOO_LARGE {
        return FormatError::new(Code::PackageTooLarge, "body", "larger than this endpoint accepts")
            .said(Problem::Said(
                "nội dung gửi lên vượt quá dung lượng cho phép của chức năng này; vui lòng giảm dung lượng rồi gửi lại".into(),
            ))
            .into();
    }
    FormatError::invalid("body", "the request body could not be read to its end")
        .said(Problem::Said(
            "không đọc được hết nội dung gửi lên (kết nối bị ngắt giữa chừng); vui lòng gửi lại"
                .into(),
        ))
        .into()
}

/// A request whose `Content-Type` is not a usable `multipart/form-data` (axum's
/// `MultipartRejection`): named by the header, with what to send instead.
pub fn multipart_rejection(
    r: &axum::extract::multipart::MultipartRejection,
    content_type: Option<&HeaderValue>,
) -> ApiError {
    if super::conn::BodyTimedOut::is_cause_of(r) {
        return body_error(r, r.status());
    }
    let media = content_type
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_ascii_lowercase());
    if media.as_deref() == Some("multipart/form-data") {
        // The header names the form type but not how its parts are delimited: it was written
        // by hand instead of by the HTTP client that built the body.
        return FormatError::invalid(
            "Content-Type",
            "multipart/form-data without the parameter that says how its parts are delimited: \
             let the HTTP client build the form and its header (do not set Content-Type by hand)",
        )
        .said(Problem::Said(
            "khai báo multipart/form-data nhưng thiếu tham số phân tách các phần của biểu mẫu; vui lòng để phần mềm gửi tự tạo biểu mẫu và tiêu đề này (không tự đặt Content-Type)".into(),
        ))
        .into();
    }
    content_type_error(
        content_type,
        "multipart/form-data (a `metadata` part and `file` parts)",
        "multipart/form-data (biểu mẫu gồm phần “metadata” và các phần “file”)",
    )
}

/// A multipart body that broke off or does not follow its own `Content-Type` (axum's
/// `MultipartError`): `PACKAGE_TOO_LARGE` over `max` bytes, `REQUEST_TIMEOUT` when it did not
/// arrive in time, otherwise `VALUE_INVALID` on `body`.
pub fn multipart_error(e: &axum::extract::multipart::MultipartError, max: usize) -> ApiError {
    if super::conn::BodyTimedOut::is_cause_of(e) {
        return body_error(e, e.status());
    }
    if e.status() == Http::PAYLOAD_TOO_LARGE {
        return FormatError::new(
            Code::PackageTooLarge,
            "body",
            format!("over the limit of {max} bytes"),
        )
        .said(Problem::TooLarge { max: max as u64 })
        .into();
    }
    FormatError::invalid(
        "body",
        "not a readable multipart/form-data body: its parts are not delimited as its \
         Content-Type header says, or it is cut off",
    )
    .said(Problem::Said(
        "nội dung gửi lên không đúng định dạng multipart/form-data (các phần không được phân tách như tiêu đề Content-Type khai báo, hoặc bị cắt ngang); vui lòng gửi lại bằng biểu mẫu gồm phần “metadata” và các phần “file”".into(),
    ))
    .into()
}

/// A path segment that is not of its type: named by the route's parameter (`names`, in the
/// order of the route: `["id", "delivery_id"]`).
pub fn path_rejection(r: &PathRejection, names: &[&str]) -> ApiError {
    let PathRejection::FailedToDeserializePathParams(e) = r else {
        return ApiError::internal(format!("path parameters: {}", r.body_text()));
    };
    let at = |key: &str, value: &str, expected: &str| -> ApiError {
        let (en, vi) = form(expected);
        FormatError::invalid(key, format!("{value:?} in the address: expected {en}"))
            .said(Problem::Expected(vi))
            .into()
    };
    let first = names.first().copied().unwrap_or("(path)");
    match e.kind() {
        ErrorKind::ParseErrorAtKey {
            key,
            value,
            expected_type,
        } => at(key, value, expected_type),
        ErrorKind::ParseErrorAtIndex {
            index,
            value,
            expected_type,
        } => at(
            names.get(*index).copied().unwrap_or(first),
            value,
            expected_type,
        ),
        ErrorKind::ParseError {
            value,
            expected_type,
        } => at(first, value, expected_type),
        ErrorKind::InvalidUtf8InPathParam { key } => {
            FormatError::invalid(key, "not UTF-8 once percent-decoded")
                .said(Problem::Expected("văn bản UTF-8".into()))
                .into()
        }
        ErrorKind::DeserializeError {
            key,
            value,
            message,
        } => FormatError::invalid(key, format!("{value:?}: {message}"))
            .said(Problem::Expected("giá trị đúng dạng quy định".into()))
            .into(),
        // Routes and their extractors disagree: ours to fix, not the caller's.
        other => ApiError::internal(format!("path parameters: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::compose::Submission;

    fn err<T: DeserializeOwned + std::fmt::Debug>(text: &str) -> FormatError {
        json::<T>(text.as_bytes(), "metadata", "metadata").unwrap_err()
    }

    const JARGON: [&str; 8] = [
        "untagged",
        "variant",
        "serde",
        "struct",
        "Submission",
        "u32",
        "i32",
        "Recipient",
    ];

    fn clean(e: &FormatError) {
        let vi = e.message_vi();
        for j in JARGON {
            assert!(!e.to_string().contains(j), "{j} in {e}");
            assert!(!vi.contains(j), "{j} in {vi}");
        }
        assert!(
            vi.contains(&format!("“{}”", e.path)),
            "{vi} does not name {}",
            e.path
        );
    }

    #[test]
    fn serde_errors_become_fields_named_as_sent() {
        let base = r#""notation": "X", "subject": "y""#;
        let e = err::<Submission>(&format!(
            r#"{{"recipients": ["000.00.00.H41", "x", 5], {base}}}"#
        ));
        assert_eq!(
            (e.code, e.path.as_str()),
            (Code::ValueInvalid, "metadata.recipients[2]")
        );
        clean(&e);
        let e = err::<Submission>(&format!(
            r#"{{"recipients": [{{"name": "UBND"}}], {base}}}"#
        ));
        assert_eq!(
            (e.code, e.path.as_str()),
            (Code::ElementMissing, "metadata.recipients[0].code")
        );
        clean(&e);
        let e = err::<Submission>(&format!(r#"{{"recipients": [], "colour": 1, {base}}}"#));
        assert_eq!(
            (e.code, e.path.as_str()),
            (Code::ValueInvalid, "metadata.colour")
        );
        assert!(e.problem.contains("recipients, number"), "{e}");
        clean(&e);
        let e = err::<Submission>(&format!(r#"{{"recipients": [], "priority": 300, {base}}}"#));
        assert_eq!(e.path, "metadata.priority");
        // The field's own range, not the bounds of the byte it is read into.
        assert!(e.problem.contains("one of 0, 1, 2, 3, 4"), "{e}");
        assert!(!e.problem.contains("255"), "{e}");
        clean(&e);
        let e = err::<Submission>(&format!(
            r#"{{"recipients": [], "signer": {{"nam": 1}}, {base}}}"#
        ));
        assert_eq!(e.path, "metadata.signer.nam");
        clean(&e);
        let e = err::<Submission>(r#"{"recipients": []}"#);
        assert_eq!(
            (e.code, e.path.as_str()),
            (Code::ElementMissing, "metadata.notation")
        );
        clean(&e);
        let e = err::<Submission>("{\"recipients\": [\n  \"a\",\n}");
        assert_eq!(e.path, "metadata");
        assert_eq!(
            e.vi.as_deref().map(|v| &v.problem),
            Some(&Problem::Syntax { line: 3, column: 1 })
        );
        assert!(e.problem.contains("line 3, column 1"), "{e}");
        clean(&e);
        let e = err::<Submission>(&format!(r#"{{"recipients": [], {base}}} x"#));
        assert_eq!(e.path, "metadata");
        clean(&e);
    }
}
