//! Online serving: feature vectors for many entities × many features in one call, each
//! value with its status (present, missing, expired). Limits: at most
//! [`quiver_runtime::MAX_ENTITIES`] ids and [`quiver_runtime::MAX_FEATURES`] features per
//! request; larger requests get `400 limit_exceeded` and should be split.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use quiver_runtime::{
    EntityFeatures, FeatureValue, OnlineFeaturesRequest, OnlineFeaturesResponse, ValueStatus,
};
use utoipa::OpenApi;

use crate::error::{problem_responses, ApiError};
use crate::extract::ApiJson;
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(online_features),
    components(schemas(EntityFeatures, FeatureValue, ValueStatus))
)]
pub(crate) struct OnlineApi;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/online-features", post(online_features))
}

problem_responses!(OnlineErrors: InvalidRequest, LimitExceeded, MalformedBody, UnsupportedMediaType, NotFound, NotReady, ProviderError);

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
) -> Result<Json<OnlineFeaturesResponse>, ApiError> {
    Ok(Json(state.runtime.online_features(&request).await?))
}
