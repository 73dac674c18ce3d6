//! `POST /api/v1/plan` and `POST /api/v1/apply`: definitions in, a [`Plan`] out.
//!
//! The body is read by hand rather than with `axum::Json` so that one extractor accepts
//! both JSON and YAML, checks UTF-8 before any parser sees the text, and reports every
//! failure (including serde_json's nesting limit) with our own codes and messages.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap};
use axum::routing::post;
use axum::{Json, Router};
use quiver_core::{parse_documents_json, parse_yaml_documents, Definition, SourcedDefinition};
use quiver_metadata::Plan;
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use crate::error::{problem_responses, ApiError, ErrorCode};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(paths(plan, apply))]
pub(crate) struct ApplyApi;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/plan", post(plan))
        .route("/api/v1/apply", post(apply))
}

/// The JSON body of plan and apply. YAML bodies are a stream of definition documents.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// Definitions, each an object with `kind`, `name`, ... as in a YAML file.
    #[schema(value_type = Vec<Definition>)]
    documents: Vec<serde_json::Value>,
}

/// Where the file name goes in YAML error locations (`request:3:7`).
const YAML_ORIGIN: &str = "request";

const ACCEPTED: &str = "send `application/json` with {\"documents\": [...]} or `application/yaml` with a YAML stream of definitions";

enum BodyFormat {
    Json,
    Yaml,
}

impl BodyFormat {
    fn of(headers: &HeaderMap) -> Result<BodyFormat, ApiError> {
        let Some(value) = headers.get(header::CONTENT_TYPE) else {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!("missing Content-Type header: {ACCEPTED}"),
            ));
        };
        let essence = value
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Ok(BodyFormat::Json),
            "application/yaml" | "application/x-yaml" | "text/yaml" => Ok(BodyFormat::Yaml),
            _ => Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "unsupported Content-Type `{}`: {ACCEPTED}",
                    essence.escape_debug()
                ),
            )),
        }
    }
}

/// The definitions of a plan or apply body, parsed and individually validated.
pub(crate) struct DefinitionBatch(Vec<SourcedDefinition>);

impl<S: Send + Sync> FromRequest<S> for DefinitionBatch {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        // Check the media type before reading a possibly large body.
        let format = BodyFormat::of(request.headers())?;
        // Reading honours `DefaultBodyLimit`; going over it is a 413.
        let bytes = Bytes::from_request(request, state).await?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            ApiError::new(
                ErrorCode::MalformedBody,
                format!(
                    "request body is not valid UTF-8 (invalid byte at offset {}); send UTF-8 text",
                    e.valid_up_to()
                ),
            )
        })?;
        let definitions = match format {
            BodyFormat::Json => parse_documents_json(parse_json_envelope(text)?.documents)?,
            BodyFormat::Yaml => parse_yaml_documents(YAML_ORIGIN, text)?,
        };
        if definitions.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidDefinition,
                "the request holds no definitions; send at least one document",
            ));
        }
        Ok(DefinitionBatch(definitions))
    }
}

fn parse_json_envelope(text: &str) -> Result<ApplyRequest, ApiError> {
    serde_json::from_str(text).map_err(|e| {
        let detail = if e.is_data() {
            format!("request body must be {{\"documents\": [definition, ...]}}: {e}")
        } else {
            // Syntax errors, truncated input and nesting beyond serde_json's limit of
            // 128 levels all land here: the input is not JSON we accept.
            format!("request body is not valid JSON: {e}")
        };
        ApiError::new(ErrorCode::MalformedBody, detail)
    })
}

problem_responses!(PlanErrors: InvalidDefinition, DanglingReference, Cycle, MalformedBody, PayloadTooLarge, UnsupportedMediaType);
problem_responses!(ApplyErrors: InvalidDefinition, DanglingReference, Cycle, Conflict, MalformedBody, PayloadTooLarge, UnsupportedMediaType);

/// Show what applying definitions would do, without writing
///
/// Each definition is planned as create, update (unversioned kinds), unchanged or
/// conflict, with the downstream resources it affects. Conflicts are plan items here;
/// `apply` refuses them.
#[utoipa::path(
    post,
    path = "/api/v1/plan",
    tag = "definitions",
    request_body(
        description = "Definitions: JSON, or a YAML stream sent as `application/yaml`, `application/x-yaml` or `text/yaml`",
        content(
            (ApplyRequest = "application/json"),
            (String = "application/yaml", example = "kind: entity\nname: user\nowner: risk\n"),
        )
    ),
    responses((status = 200, description = "What apply would do", body = Plan), PlanErrors)
)]
async fn plan(
    State(state): State<AppState>,
    DefinitionBatch(definitions): DefinitionBatch,
) -> Result<Json<Plan>, ApiError> {
    Ok(Json(state.store.plan(definitions).await?))
}

/// Apply definitions atomically
///
/// All or nothing: when any definition is invalid, dangling, part of a cycle or in
/// conflict with a stored variant, nothing is written.
#[utoipa::path(
    post,
    path = "/api/v1/apply",
    tag = "definitions",
    request_body(
        description = "Definitions: JSON, or a YAML stream sent as `application/yaml`, `application/x-yaml` or `text/yaml`",
        content(
            (ApplyRequest = "application/json"),
            (String = "application/yaml", example = "kind: entity\nname: user\nowner: risk\n"),
        )
    ),
    responses((status = 200, description = "What was done", body = Plan), ApplyErrors)
)]
async fn apply(
    State(state): State<AppState>,
    DefinitionBatch(definitions): DefinitionBatch,
) -> Result<Json<Plan>, ApiError> {
    Ok(Json(state.store.apply(definitions).await?))
}
