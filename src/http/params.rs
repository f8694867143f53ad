//! Request parsing and value formatting shared by the clerk and admin APIs: times in and out,
//! path ids, the 400 for a malformed request.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::ApiError;
use crate::Code;
use crate::error::FormatError;

pub(super) type ApiResult<T = axum::response::Response> = Result<T, ApiError>;

pub(super) fn ts(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

pub(super) fn parse_time(name: &str, s: &str) -> ApiResult<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map_err(|_| FormatError::invalid(name, format!("{s:?}: too large")).into());
    }
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            FormatError::invalid(
                name,
                format!("{s:?}: expected RFC 3339 (2026-01-31T08:00:00+07:00) or Unix ms"),
            )
            .into()
        })
}

pub(super) fn bad_request(what: &str, detail: String) -> ApiError {
    ApiError::coded(Code::ValueInvalid, format!("{what}: {detail}"))
}

/// A request body its extractor could not take: `REQUEST_TIMEOUT` (408) when it did not arrive
/// within `http.body_timeout` (the client may simply send again), otherwise `VALUE_INVALID` with
/// the extractor's reason (`text`).
pub(super) fn body_rejection(r: &(dyn std::error::Error + 'static), text: String) -> ApiError {
    if super::conn::BodyTimedOut::is_cause_of(r) {
        ApiError::coded(Code::RequestTimeout, format!("(body): {r}"))
    } else {
        bad_request("(body)", text)
    }
}

pub(super) fn path_id(p: Result<Path<i64>, PathRejection>) -> ApiResult<i64> {
    p.map(|Path(id)| id)
        .map_err(|r| bad_request("(path)", r.body_text()))
}
