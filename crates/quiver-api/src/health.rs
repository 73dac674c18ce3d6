//! Liveness and readiness, at the root for load balancers and orchestrators.

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::error::{problem_responses, ApiError};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(paths(healthz, readyz, metrics))]
pub(crate) struct HealthApi;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// Prometheus metrics
///
/// HTTP latency per route template (`quiver_http_request_duration_seconds`), online-store
/// read latency per provider (`quiver_online_store_read_duration_seconds`), job attempt
/// durations and outcomes per kind (`quiver_job_duration_seconds`), entities materialized
/// per feature (`quiver_rows_materialized_total`) and the age of each feature's newest
/// materialized value (`quiver_feature_freshness_seconds`, alert when it grows past the
/// schedule's period).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses(
        (status = 200, description = "The Prometheus text exposition format", content_type = "text/plain", body = String),
        HealthErrors
    )
)]
async fn metrics(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = state.runtime.metrics().render(state.store.as_ref()).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// How long readiness waits for the store: a probe must answer before its own timeout.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    status: &'static str,
    /// The metadata store backend: `postgres` or `sqlite`.
    #[schema(example = "sqlite")]
    store: &'static str,
}

problem_responses!(HealthErrors:);

/// Liveness: the process is up
///
/// Does not touch the metadata store, so a database outage does not get the process
/// restarted.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process is up", body = Health), HealthErrors)
)]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the metadata store answers
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses((status = 200, description = "Ready to serve", body = Readiness), HealthErrors)
)]
async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    match tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(Json(Readiness {
            status: "ready",
            store: state.store.backend(),
        })),
        Ok(Err(error)) => Err(ApiError::store_unavailable(&error)),
        Err(_elapsed) => Err(ApiError::store_unavailable(&format!(
            "ping did not answer within {PING_TIMEOUT:?}"
        ))),
    }
}
