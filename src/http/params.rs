//! Request parsing and value formatting shared by the clerk and admin APIs: times in and out,
//! path ids, the 400 for a malformed request.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::ApiError;
use crate::error::{FormatError, Problem};
use crate::store::Page;

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
        return s.parse().map_err(|_| {
            FormatError::invalid(name, format!("{s:?}: too large"))
                .said(Problem::Expected(TIME_VI.into()))
                .into()
        });
    }
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            FormatError::invalid(
                name,
                format!("{s:?}: expected RFC 3339 (2026-01-31T08:00:00+07:00) or Unix ms"),
            )
            .said(Problem::Expected(TIME_VI.into()))
            .into()
        })
}

/// The expected form of `since`/`until`, in Vietnamese.
const TIME_VI: &str =
    "thời điểm theo RFC 3339 (ví dụ 2026-01-31T08:00:00+07:00) hoặc số mili giây Unix";

/// The page a list request asks for: `per_page` items (50 when absent, 1 to 1000) before the
/// id `before`; one rule for every list of the clerk and admin APIs.
pub(super) fn page(per_page: Option<u32>, before: Option<i64>) -> ApiResult<Page> {
    let limit = per_page.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(per_page_invalid(limit).into());
    }
    Ok(Page { limit, before })
}

/// `per_page` outside 1–1000.
pub(super) fn per_page_invalid(got: u32) -> FormatError {
    FormatError::invalid("per_page", format!("{got}: expected 1 to 1000"))
        .said(Problem::Expected("một số nguyên từ 1 đến 1000".into()))
}

/// The `{id}` of a route (the only parameter), named `id` in a refusal.
pub(super) fn path_id(p: Result<Path<i64>, PathRejection>) -> ApiResult<i64> {
    p.map(|Path(id)| id)
        .map_err(|r| super::extract::path_rejection(&r, &["id"]))
}
