//! The OpenAPI 3.1 document, merged from each REST area's own `#[derive(OpenApi)]`, and
//! the routes serving it: `/api/v1/openapi.json` and the Swagger UI at `/api/v1/docs`
//! (assets compiled into the binary, nothing fetched at build or run time).

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use utoipa::OpenApi;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::error::{problem_responses, ErrorCode, Problem};
use crate::{
    apply, health, jobs, lineage, online, providers, resources, search, training_sets, AppState,
};

const DOCUMENT_PATH: &str = "/api/v1/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Quiver",
        description = "Quiver, a virtual feature store: register and browse feature definitions, their lineage and jobs; serve online features and download training sets. Errors are `application/problem+json` documents with a stable `code`."
    ),
    paths(openapi_json),
    components(schemas(Problem, ErrorCode)),
    tags(
        (name = "resources", description = "The catalogue: list and get resources of every kind"),
        (name = "definitions", description = "Plan and apply definitions"),
        (name = "lineage", description = "Upstream and downstream of a resource"),
        (name = "jobs", description = "Transformations, training-set builds and materializations"),
        (name = "health", description = "Liveness and readiness"),
        (name = "serving", description = "Online feature vectors and training-set downloads"),
        (name = "providers", description = "Provider health"),
        (name = "meta", description = "This document"),
    )
)]
struct QuiverApi;

/// The whole API description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = QuiverApi::openapi();
    doc.merge(resources::ResourcesApi::openapi());
    doc.merge(apply::ApplyApi::openapi());
    doc.merge(lineage::LineageApi::openapi());
    doc.merge(jobs::JobsApi::openapi());
    doc.merge(health::HealthApi::openapi());
    doc.merge(online::OnlineApi::openapi());
    doc.merge(training_sets::TrainingSetsApi::openapi());
    doc.merge(providers::ProvidersApi::openapi());
    doc.merge(search::SearchApi::openapi());
    doc
}

/// Serialized once: the document is fixed for the life of the process.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    openapi()
        .to_json()
        .expect("the OpenAPI document serializes")
});

pub(crate) fn routes() -> Router<AppState> {
    let swagger = SwaggerUi::new("/api/v1/docs").config(Config::new([DOCUMENT_PATH]));
    Router::new()
        .route(DOCUMENT_PATH, get(openapi_json))
        .merge(swagger)
}

problem_responses!(DocumentErrors:);

/// This OpenAPI document
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"), DocumentErrors)
)]
async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}
