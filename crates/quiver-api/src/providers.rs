//! Provider health: whether a provider is reachable and accepts its credentials.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::error::{problem_responses, ApiError};
use crate::extract::ApiPath;
use crate::AppState;

#[derive(OpenApi)]
#[openapi(paths(provider_health))]
pub(crate) struct ProvidersApi;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/providers/{name}/health", get(provider_health))
}

/// A provider's health check.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderHealth {
    #[schema(example = "local-files")]
    pub provider: String,
    pub healthy: bool,
    /// What was checked, or why it failed (never a secret).
    #[schema(example = "root ./data is readable")]
    pub message: String,
    /// How long the check took, in milliseconds.
    pub latency_ms: u64,
}

problem_responses!(ProviderHealthErrors: InvalidPath, NotFound);

/// Check a provider's health
///
/// Builds the provider from its definition if needed and checks that it is reachable
/// and accepts its credentials. An unhealthy provider (including a kind compiled out of
/// this server) answers 503 with the same body.
#[utoipa::path(
    get,
    path = "/api/v1/providers/{name}/health",
    tag = "providers",
    params(("name" = String, Path, description = "Provider name")),
    responses(
        (status = 200, description = "The provider is healthy", body = ProviderHealth),
        (status = 503, description = "The provider is unhealthy", body = ProviderHealth),
        ProviderHealthErrors
    )
)]
async fn provider_health(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<(StatusCode, Json<ProviderHealth>), ApiError> {
    let report = state.runtime.provider_health(&name).await?;
    let status = if report.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((
        status,
        Json(ProviderHealth {
            provider: name,
            healthy: report.healthy,
            message: report.message,
            latency_ms: u64::try_from(report.latency.min(Duration::from_secs(3600)).as_millis())
                .unwrap_or(u64::MAX),
        }),
    ))
}
