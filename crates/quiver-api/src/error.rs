//! The API's one error type. Every failure a client can see becomes an [`ApiError`]
//! carrying a stable [`ErrorCode`], and this module is the only place that decides which
//! HTTP status a code gets. Responses are RFC 9457 problem documents
//! (`application/problem+json`) with `code` and an actionable `detail`.
//!
//! Internal causes (database errors, corrupt rows, panics) are logged here and answered
//! with a generic message: SQL and driver text never reach a client. Client errors are not
//! logged with their detail because a detail can echo request content.

use std::collections::BTreeMap;
use std::fmt;

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use quiver_core::DocumentError;
use quiver_metadata::StoreError;
use quiver_runtime::sdk::ProviderError;
use quiver_runtime::RuntimeError;
use serde::Serialize;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::ToSchema;

use crate::auth::AuthError;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Stable, machine-readable error codes. Clients branch on these, never on `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A definition cannot be read or breaks a rule: YAML syntax, unknown kind or field,
    /// unknown provider type, invalid name.
    InvalidDefinition,
    /// A definition refers to a resource that does not exist.
    DanglingReference,
    /// References between definitions form a cycle.
    Cycle,
    /// A definition differs from the one stored under the same immutable variant.
    Conflict,
    /// A job cannot make the requested transition (e.g. cancelling a finished job).
    InvalidJobState,
    /// No such resource, job or route.
    NotFound,
    /// The route exists but not with this HTTP method.
    MethodNotAllowed,
    /// A query-string parameter is unknown or has an invalid value.
    InvalidQuery,
    /// A path parameter has an invalid value (e.g. a non-numeric job id).
    InvalidPath,
    /// The body is not valid UTF-8, not valid JSON/YAML, nested too deeply, or has the
    /// wrong envelope.
    MalformedBody,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// No or invalid credentials.
    Unauthorized,
    /// Credentials are valid but do not allow this request.
    Forbidden,
    /// A well-formed request that cannot be answered as sent: an empty entity list, a
    /// feature keyed by another entity or without an online provider.
    InvalidRequest,
    /// A request above a documented limit (e.g. entities per online request).
    LimitExceeded,
    /// The data is not built yet (pending or running) or its build failed; the detail
    /// names the status.
    NotReady,
    /// A provider failed or cannot be used (compiled out, misconfigured, refused the
    /// query or the credentials).
    ProviderError,
    /// A provider cannot be reached or timed out (an online store that is down): retry
    /// later, as `Retry-After` says; the server recovers by itself once it is back.
    ProviderUnavailable,
    /// The metadata store does not answer or is busy; retry later.
    StoreUnavailable,
    /// A bug or corrupt data; the cause is in the server log.
    Internal,
}

impl ErrorCode {
    /// The HTTP status of each code. This is the only status mapping in the API.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidDefinition | ErrorCode::DanglingReference | ErrorCode::Cycle => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ErrorCode::Conflict | ErrorCode::InvalidJobState | ErrorCode::NotReady => {
                StatusCode::CONFLICT
            }
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::InvalidQuery
            | ErrorCode::InvalidPath
            | ErrorCode::MalformedBody
            | ErrorCode::InvalidRequest
            | ErrorCode::LimitExceeded => StatusCode::BAD_REQUEST,
            ErrorCode::ProviderError => StatusCode::BAD_GATEWAY,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::StoreUnavailable | ErrorCode::ProviderUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidDefinition => "invalid_definition",
            ErrorCode::DanglingReference => "dangling_reference",
            ErrorCode::Cycle => "cycle",
            ErrorCode::Conflict => "conflict",
            ErrorCode::InvalidJobState => "invalid_job_state",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::InvalidPath => "invalid_path",
            ErrorCode::MalformedBody => "malformed_body",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::LimitExceeded => "limit_exceeded",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::ProviderError => "provider_error",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An RFC 9457 problem document. `type` is always `about:blank`, so `title` is the HTTP
/// status phrase; the specific error is `code`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub problem_type: &'static str,
    #[schema(example = "Unprocessable Entity")]
    pub title: &'static str,
    #[schema(example = 422)]
    pub status: u16,
    pub code: ErrorCode,
    /// What went wrong and what to do about it.
    #[schema(example = "request:3:7 (document 1): did not find expected ',' or ']'")]
    pub detail: String,
}

/// A failed request: a code and a message a person can act on.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    detail: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError {
            code,
            detail: detail.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::NotFound, detail)
    }

    pub fn invalid_query(detail: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InvalidQuery, detail)
    }

    /// Log `cause` and answer with a generic message: internal errors are not a client's
    /// business and may contain SQL or data.
    pub fn internal(cause: &dyn fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            ErrorCode::Internal,
            "internal error; the cause is in the server log",
        )
    }

    /// Log `cause` and tell the client to retry.
    pub(crate) fn store_unavailable(cause: &dyn fmt::Display) -> Self {
        tracing::warn!(error = %cause, "metadata store unavailable");
        ApiError::new(
            ErrorCode::StoreUnavailable,
            "the metadata store is unavailable or busy; retry the request shortly",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        // The code only: a detail can echo request content, secrets included.
        tracing::debug!(code = %self.code, "request answered with a problem");
        let problem = Problem {
            problem_type: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            code: self.code,
            detail: self.detail,
        };
        // A problem document of strings and numbers always serializes.
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if matches!(
            self.code,
            ErrorCode::StoreUnavailable | ErrorCode::ProviderUnavailable
        ) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::Invalid { .. } => {
                ApiError::new(ErrorCode::InvalidDefinition, error.to_string())
            }
            StoreError::DanglingReference { .. } => {
                ApiError::new(ErrorCode::DanglingReference, error.to_string())
            }
            StoreError::Cycle { .. } => ApiError::new(ErrorCode::Cycle, error.to_string()),
            StoreError::Conflict { .. } => ApiError::new(ErrorCode::Conflict, error.to_string()),
            StoreError::NotFound(_) => ApiError::not_found(error.to_string()),
            StoreError::JobState(_) => ApiError::new(ErrorCode::InvalidJobState, error.to_string()),
            StoreError::Busy => ApiError::store_unavailable(&error),
            StoreError::Database(db) if is_unavailable(db) => ApiError::store_unavailable(&error),
            _ if error.is_retryable_database_error() => ApiError::store_unavailable(&error),
            StoreError::Database(_) | StoreError::Migration(_) | StoreError::Corrupt(_) => {
                ApiError::internal(&error)
            }
        }
    }
}

/// Connection-level failures: the database is down or unreachable, not our bug.
fn is_unavailable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

impl From<DocumentError> for ApiError {
    fn from(error: DocumentError) -> Self {
        ApiError::new(ErrorCode::InvalidDefinition, error.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthenticated(detail) => ApiError::new(ErrorCode::Unauthorized, detail),
            AuthError::Forbidden(detail) => ApiError::new(ErrorCode::Forbidden, detail),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        // The rejection text names the parameter and what was expected.
        ApiError::invalid_query(format!(
            "{}; see /api/v1/docs for this route's parameters",
            rejection.body_text()
        ))
    }
}

impl From<RuntimeError> for ApiError {
    fn from(error: RuntimeError) -> Self {
        match error {
            RuntimeError::NotFound(detail) => ApiError::not_found(detail),
            RuntimeError::InvalidRequest(detail) => {
                ApiError::new(ErrorCode::InvalidRequest, detail)
            }
            RuntimeError::LimitExceeded(detail) => ApiError::new(ErrorCode::LimitExceeded, detail),
            RuntimeError::NotReady(detail) => ApiError::new(ErrorCode::NotReady, detail),
            RuntimeError::Unresolvable(detail) => {
                ApiError::new(ErrorCode::InvalidDefinition, detail)
            }
            // Provider messages never carry secrets (the SDK's contract), and name the
            // provider so an operator knows where to look.
            error @ RuntimeError::Provider {
                source: ProviderError::Unreachable(_),
                ..
            } => {
                tracing::warn!(%error, "provider unavailable");
                ApiError::new(ErrorCode::ProviderUnavailable, error.to_string())
            }
            error @ RuntimeError::Provider { .. } => {
                tracing::warn!(%error, "provider error");
                ApiError::new(ErrorCode::ProviderError, error.to_string())
            }
            error @ RuntimeError::Encode(_) => ApiError::internal(&error),
            RuntimeError::Store(error) => error.into(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as `application/json`",
            ),
            JsonRejection::BytesRejection(rejection) => rejection.into(),
            other => ApiError::new(
                ErrorCode::MalformedBody,
                format!(
                    "{}; see /api/v1/docs for this route's body",
                    other.body_text()
                ),
            ),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::new(ErrorCode::InvalidPath, rejection.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        // The body limit surfaces as a failure to buffer the body with status 413; axum
        // classifies it, so there is no message matching here.
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                "request body is larger than this server accepts; split the definitions into several applies",
            )
        } else {
            ApiError::new(
                ErrorCode::MalformedBody,
                format!("could not read the request body: {}", rejection.body_text()),
            )
        }
    }
}

/// OpenAPI responses for a set of error codes, grouped by status, plus the errors every
/// route can answer (auth, store unavailable, internal). Route modules wrap this in a
/// `utoipa::IntoResponses` type.
pub(crate) fn problem_response_map(
    codes: &[ErrorCode],
) -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
    let always = [
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::StoreUnavailable,
        ErrorCode::Internal,
    ];
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for code in codes.iter().chain(&always) {
        let entry = by_status.entry(code.status().as_u16()).or_default();
        if !entry.contains(code) {
            entry.push(*code);
        }
    }
    by_status
        .into_iter()
        .map(|(status, codes)| {
            let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
            let response = ResponseBuilder::new()
                .description(format!(
                    "Problem document; `code` is one of: {}",
                    names.join(", ")
                ))
                .content(
                    PROBLEM_JSON,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

/// Declares an OpenAPI response set for the listed error codes.
macro_rules! problem_responses {
    ($name:ident: $($code:ident),* $(,)?) => {
        pub(crate) struct $name;
        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                $crate::error::problem_response_map(&[$($crate::error::ErrorCode::$code),*])
            }
        }
    };
}
pub(crate) use problem_responses;
