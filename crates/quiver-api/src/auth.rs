//! The one authentication/authorization layer every route passes through, including the
//! OpenAPI document, the docs page, health checks and unknown routes. Tokens and roles
//! come later as an [`Authorizer`] implementation; handlers never change for it.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// What an authorizer may look at: never the body, which is not read yet and may be large.
/// Deliberately not `Debug`: printing it would print credentials from the headers.
pub struct RequestContext<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
}

/// Who is making a request, as decided by the [`Authorizer`]. Put in the request's
/// extensions, so a handler can take it with `Extension<Principal>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// A stable identifier (user name, service account); recorded in the request's span.
    pub id: String,
}

impl Principal {
    pub fn anonymous() -> Self {
        Principal {
            id: "anonymous".to_string(),
        }
    }
}

/// Why a request was refused. The message goes to the client: say what credential is
/// expected or which permission is missing, never why a token failed verification in detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials, or credentials that are not valid (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Valid credentials without the permission for this request (403).
    #[error("{0}")]
    Forbidden(String),
}

/// Decides whether a request may proceed, and as whom.
///
/// # Contract
/// Called once per request before any handler runs, for every route: the health checks
/// and the docs too, so an implementation that wants probes to pass without credentials
/// allows `/healthz` and `/readyz` by path. Should answer quickly: it runs on the request
/// path. Must not log header values.
#[async_trait]
pub trait Authorizer: Send + Sync + 'static {
    async fn authorize(&self, request: &RequestContext<'_>) -> Result<Principal, AuthError>;
}

/// Lets every request through as [`Principal::anonymous`]: the default until tokens exist.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

#[async_trait]
impl Authorizer for AllowAll {
    async fn authorize(&self, _request: &RequestContext<'_>) -> Result<Principal, AuthError> {
        Ok(Principal::anonymous())
    }
}

/// The middleware: authorize, record the principal, then run the route.
pub(crate) async fn authorize(
    State(authorizer): State<Arc<dyn Authorizer>>,
    mut request: Request,
    next: Next,
) -> Response {
    let context = RequestContext {
        method: request.method(),
        uri: request.uri(),
        headers: request.headers(),
    };
    match authorizer.authorize(&context).await {
        Ok(principal) => {
            tracing::Span::current().record("principal", principal.id.as_str());
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => ApiError::from(error).into_response(),
    }
}
