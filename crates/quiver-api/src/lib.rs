//! Quiver's HTTP API: the axum router over a [`MetadataStore`], its problem-JSON errors,
//! the authentication layer every route passes through, and the OpenAPI document.
//!
//! [`app`] builds the router (tests drive it in-process); [`serve`] runs it on a socket.
//! Each REST area is one module owning its routes and its part of the OpenAPI document:
//! [`resources`], [`apply`], [`lineage`], [`jobs`], [`health`], [`online`],
//! [`training_sets`], [`providers`], [`search`], [`openapi`]. The web catalog's files
//! (`quiver_ui`) are served at `/` and `/ui/`, and to browsers navigating to a path no
//! route matches outside `/api/`. Data work (online reads, training-set
//! downloads, provider health) goes through the [`quiver_runtime::Runtime`] in the state.

pub mod apply;
pub mod auth;
pub mod error;
mod extract;
pub mod health;
pub mod jobs;
pub mod lineage;
pub mod online;
pub mod openapi;
pub mod providers;
pub mod resources;
pub mod search;
pub mod training_sets;

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::{middleware, Router};
use quiver_metadata::MetadataStore;
use quiver_runtime::Runtime;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

pub use auth::{AllowAll, AuthError, Authorizer, Principal, RequestContext};
pub use error::{ApiError, ErrorCode};
pub use openapi::openapi;

/// Limits a deployment may tune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    /// Largest request body accepted; larger ones get `413 payload_too_large`.
    pub max_body_bytes: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_body_bytes: 4 * 1024 * 1024,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn MetadataStore>,
    /// Providers, online serving and downloads, over the same store.
    pub runtime: Arc<Runtime>,
    pub authorizer: Arc<dyn Authorizer>,
    pub limits: ApiLimits,
    /// The catalogue in memory for search and the home summary, rebuilt on change.
    pub search: Arc<search::SearchIndex>,
}

impl AppState {
    /// A state that lets every request through, with default limits and a runtime
    /// without providers (every provider kind is unknown to it): for catalogue-only use.
    pub fn new(store: Arc<dyn MetadataStore>) -> Self {
        let runtime = Runtime::new(store.clone(), quiver_runtime::ProviderRegistry::new());
        AppState::with_runtime(Arc::new(runtime))
    }

    /// A state serving `runtime` (and its store), letting every request through.
    pub fn with_runtime(runtime: Arc<Runtime>) -> Self {
        AppState {
            store: runtime.store().clone(),
            runtime,
            authorizer: Arc::new(AllowAll),
            limits: ApiLimits::default(),
            search: Arc::new(search::SearchIndex::new()),
        }
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .merge(resources::routes())
        .merge(apply::routes())
        .merge(lineage::routes())
        .merge(jobs::routes())
        .merge(health::routes())
        .merge(online::routes())
        .merge(training_sets::routes())
        .merge(providers::routes())
        .merge(search::routes())
        .merge(openapi::routes())
        .merge(quiver_ui::router())
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed);
    // Layers run outside-in in the reverse order of these calls: trace every request,
    // turn a panic into a 500 problem, authorize, then enforce the body limit while the
    // body is read. Added after the routes and fallbacks, so they cover them all.
    routes
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            state.authorizer.clone(),
            auth::authorize,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(
            state.runtime.metrics().clone(),
            track_metrics,
        ))
        .layer(
            // Method, path (not the query string), status and latency. Bodies and headers
            // are never logged: definitions carry secrets and headers carry tokens.
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        principal = tracing::field::Empty,
                    )
                })
                .on_request(())
                .on_response(|response: &Response, latency: Duration, _span: &Span| {
                    tracing::info!(
                        status = response.status().as_u16(),
                        latency_ms = latency.as_millis() as u64,
                        "request finished"
                    );
                })
                // Server errors are logged with their cause where they happen.
                .on_failure(()),
        )
        .with_state(state)
}

/// Serve [`app`] on `listener` until `shutdown` completes, then finish in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The caller announces the address (the CLI prints the line scripts wait for).
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Observe every request's latency under its route template (`/api/v1/jobs/{id}`; the
/// raw path would make one series per id), method and status.
async fn track_metrics(
    State(metrics): State<Arc<quiver_runtime::Metrics>>,
    request: Request,
    next: middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().as_str().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    metrics.observe_http(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// A browser navigating to a client-side route of the web catalog (`/features/x`) gets
/// the catalog's page, which draws the route or its own "not found"; every other
/// unmatched request gets the API's JSON 404.
async fn unknown_route(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if quiver_ui::wants_page(&method, &uri, &headers) {
        return quiver_ui::page(&headers);
    }
    ApiError::not_found(format!(
        "no route for {method} {}; the API is described at /api/v1/openapi.json and /api/v1/docs",
        uri.path()
    ))
    .into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "{} does not accept {method}; the Allow header lists the methods it does",
            uri.path()
        ),
    )
}

fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_string());
    ApiError::internal(&format!("handler panicked: {message}")).into_response()
}
