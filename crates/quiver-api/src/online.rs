//! Online serving: feature vectors for many entities × many features in one call, each
//! value with its status (present, missing, expired). Limits: at most
//! [`quiver_runtime::MAX_ENTITIES`] ids and [`quiver_runtime::MAX_FEATURES`] features per
//! request; larger requests get `400 limit_exceeded` and should be split.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use quiver_core::ResourceRef;
use quiver_runtime::{
    EntityFeatures, FeatureValue, OnlineFeaturesRequest, OnlineFeaturesResponse, ParityMismatch,
    ParityReport, ValueStatus,
};
use utoipa::OpenApi;

use crate::error::{problem_responses, ApiError};
use crate::extract::{ApiJson, ApiPath};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(online_features, parity),
    components(schemas(EntityFeatures, FeatureValue, ValueStatus, ParityMismatch))
)]
pub(crate) struct OnlineApi;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/online-features", post(online_features))
        .route("/api/v1/features/{name}/{variant}/parity", post(parity))
}

problem_responses!(ParityErrors: InvalidPath, InvalidRequest, NotFound, NotReady, ProviderError, ProviderUnavailable);

/// Check a materialized feature's online values against the offline store
///
/// Computes the latest value per entity on the offline provider (the query a full
/// materialization runs) and reads every one of those entities from the online store,
/// 1000 per round trip. Counts matches, entities missing online, values served as
/// expired (older than `max_age`, which is correct) and differing values, and lists the
/// first 100 mismatches. Reads the whole feature: run it on demand, not per request.
#[utoipa::path(
    post,
    path = "/api/v1/features/{name}/{variant}/parity",
    tag = "serving",
    params(
        ("name" = String, Path, description = "Feature name"),
        ("variant" = String, Path, description = "Feature variant"),
    ),
    responses(
        (status = 200, description = "What the comparison found", body = ParityReport),
        ParityErrors
    )
)]
async fn parity(
    State(state): State<AppState>,
    ApiPath((name, variant)): ApiPath<(String, String)>,
) -> Result<Json<ParityReport>, ApiError> {
    let reference = ResourceRef::parse(&format!("{name}:{variant}")).map_err(|e| {
        ApiError::new(
            crate::error::ErrorCode::InvalidPath,
            format!(
                "`{}:{}` is not a feature reference: {e}",
                name.escape_debug(),
                variant.escape_debug()
            ),
        )
    })?;
    Ok(Json(state.runtime.parity(&reference).await?))
}

problem_responses!(OnlineErrors: InvalidRequest, LimitExceeded, MalformedBody, UnsupportedMediaType, NotFound, NotReady, ProviderError, ProviderUnavailable);

/// Read online feature values
///
/// Name one entity with its ids and features keyed by it (`name` for the default
/// variant, or `name:variant`). Every feature is read from its online provider with one
/// multi-get per provider. At most 1000 ids and 200 features per request.
#[utoipa::path(
    post,
    path = "/api/v1/online-features",
    tag = "serving",
    request_body = OnlineFeaturesRequest,
    responses(
        (status = 200, description = "One row per id, one value per feature", body = OnlineFeaturesResponse),
        OnlineErrors
    )
)]
async fn online_features(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<OnlineFeaturesRequest>,
) -> Result<Response, ApiError> {
    // The document of `OnlineFeaturesResponse`, written straight from the reads.
    let answer = state.runtime.online_answer(&request).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        answer.to_json(),
    )
        .into_response())
}
