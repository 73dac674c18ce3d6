//! Training-set downloads, streamed as a chunked body encoded batch by batch, so the
//! server's memory stays flat however large the set.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use quiver_runtime::DataFormat;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use crate::error::{problem_responses, ApiError};
use crate::extract::{ApiPath, ApiQuery};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(paths(training_set_data), components(schemas(DataFormat)))]
pub(crate) struct TrainingSetsApi;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/training-sets/{name}/{variant}/data",
        get(training_set_data),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DataParams {
    /// `parquet` (default), `arrow` (IPC stream), `csv` (with a header) or `jsonl`.
    format: Option<String>,
}

problem_responses!(DataErrors: InvalidQuery, InvalidPath, NotFound, NotReady, ProviderError, ProviderUnavailable);

/// Download a training set
///
/// Streams the built training set: the label's entity columns, its timestamp, one
/// column per feature and the label value. Answers `409 not_ready` (naming the status)
/// until its build job has succeeded.
#[utoipa::path(
    get,
    path = "/api/v1/training-sets/{name}/{variant}/data",
    tag = "serving",
    params(
        ("name" = String, Path, description = "Training set name"),
        ("variant" = String, Path, description = "Training set variant"),
        DataParams
    ),
    responses(
        (status = 200, description = "The training set, streamed", content(
            ("application/vnd.apache.parquet"),
            ("application/vnd.apache.arrow.stream"),
            ("text/csv"),
            ("application/jsonl")
        )),
        DataErrors
    )
)]
async fn training_set_data(
    State(state): State<AppState>,
    ApiPath((name, variant)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<DataParams>,
) -> Result<Response, ApiError> {
    let format = match params.format.as_deref() {
        None | Some("") => DataFormat::Parquet,
        Some(text) => text.parse().map_err(ApiError::invalid_query)?,
    };
    let download = state
        .runtime
        .training_set_data(&name, Some(&variant), format)
        .await?;
    let resource = download.resource;
    // An error after the first bytes cannot change the status: it is logged, and the
    // connection is closed without the final chunk, so clients see a truncated body.
    let body = Body::from_stream(download.bytes.map(move |chunk| {
        chunk.inspect_err(|error| {
            tracing::error!(training_set = %resource, %error, "training-set download failed");
        })
    }));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{name}-{variant}.{}\"",
        format.as_str()
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
