//! Catalogue reads: list, get and variants for every kind under `/api/v1/{plural}`.
//!
//! Definitions leave the server only as [`RedactedDefinition`], which can only be made by
//! masking a definition's secrets, so no response built here can carry a provider secret.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use quiver_core::{Definition, Kind, Status};
use quiver_metadata::{ListQuery, ResourceRecord, VariantSummary};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, OpenApi, PartialSchema, ToSchema};

use crate::error::{problem_responses, ApiError};
use crate::extract::{non_empty, page_size, ApiPath, ApiQuery};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(list_resources, get_resource, get_resource_variant, list_variants),
    // Schemas used only by parameters are not collected automatically.
    components(schemas(KindPlural, Status))
)]
pub(crate) struct ResourcesApi;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/{plural}", get(list_resources))
        .route("/api/v1/{plural}/{name}", get(get_resource))
        // A static segment wins over a parameter, so a variant literally named
        // `variants` is reachable only through lists, never through this path.
        .route("/api/v1/{plural}/{name}/variants", get(list_variants))
        .route(
            "/api/v1/{plural}/{name}/{variant}",
            get(get_resource_variant),
        )
}

/// The plural path segment of a kind (`features`, `training-sets`, ...).
pub(crate) struct KindPlural;

impl PartialSchema for KindPlural {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A resource kind as a plural path segment"))
            .enum_values(Some(Kind::ALL.map(Kind::plural)))
            .into()
    }
}

impl ToSchema for KindPlural {}

/// The kind a plural path segment names; an unknown one is an unknown route.
fn kind_from_plural(plural: &str) -> Result<Kind, ApiError> {
    Kind::from_plural(plural).ok_or_else(|| {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.plural()).collect();
        ApiError::not_found(format!(
            "unknown resource kind `{}` in the path; use one of: {}",
            plural.escape_debug(),
            known.join(", ")
        ))
    })
}

/// A definition with every inline secret masked. The field is private and the only
/// constructor redacts, so holding one proves the secrets are gone.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct RedactedDefinition(Definition);

impl RedactedDefinition {
    pub fn new(definition: &Definition) -> Self {
        RedactedDefinition(definition.redacted())
    }
}

/// One resource as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceView {
    kind: Kind,
    name: String,
    /// Empty for unversioned kinds (user, provider, entity, model).
    variant: String,
    /// Whether this is the default variant of its name (always true when unversioned).
    is_default: bool,
    status: Status,
    /// Why the resource failed, when `status` is `failed`.
    error: Option<String>,
    owner: String,
    description: String,
    tags: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Bumped on every change of the stored row.
    revision: i64,
    /// The stored definition, references pinned to variants; inline secrets are shown
    /// as `**redacted**`.
    #[schema(value_type = Definition)]
    definition: RedactedDefinition,
}

impl ResourceView {
    pub fn new(record: ResourceRecord) -> Self {
        let definition = RedactedDefinition::new(&record.definition);
        ResourceView {
            kind: record.id.kind,
            name: record.id.name,
            variant: record.id.variant,
            is_default: record.is_default,
            status: record.status,
            error: record.error,
            owner: record.definition.owner().to_string(),
            description: record.definition.description().to_string(),
            tags: record.definition.tags().to_vec(),
            created_at: record.created_at,
            updated_at: record.updated_at,
            revision: record.revision,
            definition,
        }
    }
}

/// One page of resources, in a stable order (kind, name, variant).
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourcePage {
    items: Vec<ResourceView>,
    /// Matching resources in all pages.
    total: u64,
    /// Pass as `offset` to get the next page; absent on the last page.
    next_offset: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Only resources of this owner (exact match).
    owner: Option<String>,
    /// Only resources carrying this tag.
    tag: Option<String>,
    /// Only resources in this status.
    status: Option<Status>,
    /// Case-insensitive text search in name and description.
    q: Option<String>,
    /// List every variant instead of only the default variant of each name.
    #[serde(default)]
    #[param(default = false)]
    all_variants: bool,
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// Resources to skip: `next_offset` of the previous page.
    #[param(default = 0)]
    offset: Option<u64>,
}

/// List resources of one kind
#[utoipa::path(
    get,
    path = "/api/v1/{plural}",
    tag = "resources",
    params(("plural" = KindPlural, Path, description = "Resource kind"), ListParams),
    responses(
        (status = 200, description = "One page of resources", body = ResourcePage),
        ListErrors,
    )
)]
async fn list_resources(
    State(state): State<AppState>,
    ApiPath(plural): ApiPath<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<ResourcePage>, ApiError> {
    let kind = kind_from_plural(&plural)?;
    let query = ListQuery {
        kind: Some(kind),
        name: None,
        owner: non_empty(params.owner),
        tag: non_empty(params.tag),
        status: params.status,
        text: non_empty(params.q),
        defaults_only: !params.all_variants,
        limit: page_size(params.limit)?,
        offset: params.offset.unwrap_or(0),
    };
    let page = state.store.list(&query).await?;
    Ok(Json(ResourcePage {
        items: page.items.into_iter().map(ResourceView::new).collect(),
        total: page.total,
        next_offset: page.next_offset,
    }))
}

problem_responses!(ListErrors: InvalidQuery, NotFound);
problem_responses!(GetErrors: InvalidPath, NotFound);

/// Get the default variant of a resource
#[utoipa::path(
    get,
    path = "/api/v1/{plural}/{name}",
    tag = "resources",
    params(
        ("plural" = KindPlural, Path, description = "Resource kind"),
        ("name" = String, Path, description = "Resource name"),
    ),
    responses((status = 200, description = "The resource", body = ResourceView), GetErrors)
)]
async fn get_resource(
    State(state): State<AppState>,
    ApiPath((plural, name)): ApiPath<(String, String)>,
) -> Result<Json<ResourceView>, ApiError> {
    let kind = kind_from_plural(&plural)?;
    let record = find(&state, kind, &name, None).await?;
    Ok(Json(ResourceView::new(record)))
}

/// Get one variant of a versioned resource
#[utoipa::path(
    get,
    path = "/api/v1/{plural}/{name}/{variant}",
    tag = "resources",
    params(
        ("plural" = KindPlural, Path, description = "Resource kind (a versioned one: sources, features, labels, training-sets)"),
        ("name" = String, Path, description = "Resource name"),
        ("variant" = String, Path, description = "Variant"),
    ),
    responses((status = 200, description = "The resource", body = ResourceView), GetErrors)
)]
async fn get_resource_variant(
    State(state): State<AppState>,
    ApiPath((plural, name, variant)): ApiPath<(String, String, String)>,
) -> Result<Json<ResourceView>, ApiError> {
    let kind = kind_from_plural(&plural)?;
    let record = find(&state, kind, &name, Some(&variant)).await?;
    Ok(Json(ResourceView::new(record)))
}

/// The variants of one name.
#[derive(Debug, Serialize, ToSchema)]
pub struct VariantList {
    kind: Kind,
    name: String,
    /// Oldest first. An unversioned resource has one entry with an empty variant.
    variants: Vec<VariantView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VariantView {
    variant: String,
    is_default: bool,
    status: Status,
    created_at: DateTime<Utc>,
}

impl From<VariantSummary> for VariantView {
    fn from(v: VariantSummary) -> Self {
        VariantView {
            variant: v.variant,
            is_default: v.is_default,
            status: v.status,
            created_at: v.created_at,
        }
    }
}

/// List the variants of a resource name
#[utoipa::path(
    get,
    path = "/api/v1/{plural}/{name}/variants",
    tag = "resources",
    params(
        ("plural" = KindPlural, Path, description = "Resource kind"),
        ("name" = String, Path, description = "Resource name"),
    ),
    responses((status = 200, description = "Variants, oldest first", body = VariantList), GetErrors)
)]
async fn list_variants(
    State(state): State<AppState>,
    ApiPath((plural, name)): ApiPath<(String, String)>,
) -> Result<Json<VariantList>, ApiError> {
    let kind = kind_from_plural(&plural)?;
    let variants: Vec<VariantView> = if kind.is_versioned() {
        state
            .store
            .variants(kind, &name)
            .await?
            .into_iter()
            .map(VariantView::from)
            .collect()
    } else {
        // Unversioned resources are their own single variant; answering the same shape
        // lets a client treat every kind alike.
        let record = find(&state, kind, &name, None).await?;
        vec![VariantView {
            variant: record.id.variant,
            is_default: true,
            status: record.status,
            created_at: record.created_at,
        }]
    };
    if variants.is_empty() {
        return Err(not_found(kind, &name, None));
    }
    Ok(Json(VariantList {
        kind,
        name,
        variants,
    }))
}

/// One stored resource, or `not_found`. `variant: None` means the default variant.
pub(crate) async fn find(
    state: &AppState,
    kind: Kind,
    name: &str,
    variant: Option<&str>,
) -> Result<ResourceRecord, ApiError> {
    if variant.is_some() && !kind.is_versioned() {
        return Err(ApiError::not_found(format!(
            "{kind} resources have no variants: use /api/v1/{}/{}",
            kind.plural(),
            name.escape_debug()
        )));
    }
    state
        .store
        .get(kind, name, variant)
        .await?
        .ok_or_else(|| not_found(kind, name, variant))
}

fn not_found(kind: Kind, name: &str, variant: Option<&str>) -> ApiError {
    let what = match variant {
        Some(v) => format!("{kind} `{}:{}`", name.escape_debug(), v.escape_debug()),
        None => format!("{kind} `{}`", name.escape_debug()),
    };
    ApiError::not_found(format!(
        "{what} not found; list what exists with GET /api/v1/{}",
        kind.plural()
    ))
}
