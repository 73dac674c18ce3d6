//! Extractors whose rejections are [`ApiError`]s, so a bad path or query string gets a
//! problem body with a stable code instead of axum's plain-text rejection, and the
//! pagination rules every list route shares.

use axum::extract::FromRequestParts;

use crate::error::ApiError;

/// `axum::extract::Path` answering with `invalid_path`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct ApiPath<T>(pub T);

/// `axum::extract::Query` answering with `invalid_query`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct ApiQuery<T>(pub T);

/// `axum::Json` answering with `malformed_body` or `unsupported_media_type`.
#[derive(Debug, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct ApiJson<T>(pub T);

pub(crate) const DEFAULT_PAGE_SIZE: u32 = 50;
pub(crate) const MAX_PAGE_SIZE: u32 = 500;

/// The page size a list route uses for the `limit` a client sent.
pub(crate) fn page_size(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n @ 1..=MAX_PAGE_SIZE) => Ok(n),
        Some(n) => Err(ApiError::invalid_query(format!(
            "limit {n} is out of range: use 1 to {MAX_PAGE_SIZE} and page with `offset`"
        ))),
    }
}

/// An empty filter (`?owner=`) means "no filter", as a cleared search box does.
pub(crate) fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}
