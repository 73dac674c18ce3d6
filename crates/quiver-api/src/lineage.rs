//! Lineage queries: what a resource comes from (upstream) and what depends on it
//! (downstream), as a small graph of nodes and edges for the UI to draw.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use quiver_core::{Kind, ResourceId, Status};
use quiver_lineage::{Direction, Edge};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::error::{problem_responses, ApiError};
use crate::extract::{ApiPath, ApiQuery};
use crate::resources::find;
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(lineage_of_default, lineage_of_variant),
    // Schemas used only by parameters are not collected automatically.
    components(schemas(LineageDirection, Kind))
)]
pub(crate) struct LineageApi;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/lineage/{kind}/{name}", get(lineage_of_default))
        .route(
            "/api/v1/lineage/{kind}/{name}/{variant}",
            get(lineage_of_variant),
        )
}

const DEFAULT_DEPTH: u32 = 3;
const MAX_DEPTH: u32 = 20;

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineageDirection {
    Upstream,
    Downstream,
    #[default]
    Both,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct LineageParams {
    /// Which way to walk from the resource.
    #[param(default = "both")]
    direction: Option<LineageDirection>,
    /// How many steps to walk.
    #[param(minimum = 1, maximum = 20, default = 3)]
    depth: Option<u32>,
}

/// A resource in a lineage graph.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineageNode {
    kind: Kind,
    name: String,
    variant: String,
    /// Absent when the resource has no stored row (should not happen for a consistent
    /// store, but a graph is still worth drawing).
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
}

/// The lineage graph around one resource. Edges point from upstream to downstream.
#[derive(Debug, Serialize, ToSchema)]
pub struct Lineage {
    root: ResourceId,
    /// Every resource of the graph, `root` included, sorted.
    nodes: Vec<LineageNode>,
    edges: Vec<Edge>,
}

problem_responses!(LineageErrors: InvalidQuery, InvalidPath, NotFound);

/// Lineage of a resource (default variant)
#[utoipa::path(
    get,
    path = "/api/v1/lineage/{kind}/{name}",
    tag = "lineage",
    params(
        ("kind" = Kind, Path, description = "Resource kind (singular, e.g. `training_set`)"),
        ("name" = String, Path, description = "Resource name"),
        LineageParams,
    ),
    responses((status = 200, description = "The lineage graph", body = Lineage), LineageErrors)
)]
async fn lineage_of_default(
    State(state): State<AppState>,
    ApiPath((kind, name)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<LineageParams>,
) -> Result<Json<Lineage>, ApiError> {
    lineage(&state, &kind, &name, None, params).await.map(Json)
}

/// Lineage of one variant of a resource
#[utoipa::path(
    get,
    path = "/api/v1/lineage/{kind}/{name}/{variant}",
    tag = "lineage",
    params(
        ("kind" = Kind, Path, description = "Resource kind (singular, e.g. `training_set`)"),
        ("name" = String, Path, description = "Resource name"),
        ("variant" = String, Path, description = "Variant"),
        LineageParams,
    ),
    responses((status = 200, description = "The lineage graph", body = Lineage), LineageErrors)
)]
async fn lineage_of_variant(
    State(state): State<AppState>,
    ApiPath((kind, name, variant)): ApiPath<(String, String, String)>,
    ApiQuery(params): ApiQuery<LineageParams>,
) -> Result<Json<Lineage>, ApiError> {
    lineage(&state, &kind, &name, Some(&variant), params)
        .await
        .map(Json)
}

async fn lineage(
    state: &AppState,
    kind: &str,
    name: &str,
    variant: Option<&str>,
    params: LineageParams,
) -> Result<Lineage, ApiError> {
    let kind = parse_kind(kind)?;
    let depth = params.depth.unwrap_or(DEFAULT_DEPTH);
    if !(1..=MAX_DEPTH).contains(&depth) {
        return Err(ApiError::invalid_query(format!(
            "depth {depth} is out of range: use 1 to {MAX_DEPTH}"
        )));
    }
    let root = find(state, kind, name, variant).await?.id;
    let directions: &[Direction] = match params.direction.unwrap_or_default() {
        LineageDirection::Upstream => &[Direction::Upstream],
        LineageDirection::Downstream => &[Direction::Downstream],
        LineageDirection::Both => &[Direction::Upstream, Direction::Downstream],
    };
    let mut edges: BTreeSet<Edge> = BTreeSet::new();
    for direction in directions {
        edges.extend(state.store.lineage(&root, *direction, depth).await?);
    }
    let mut ids: BTreeSet<ResourceId> = BTreeSet::from([root.clone()]);
    for edge in &edges {
        ids.insert(edge.upstream.clone());
        ids.insert(edge.downstream.clone());
    }
    // Statuses from the in-memory catalogue: a graph of thousands of nodes (a provider
    // or an entity shared by many features) would otherwise be as many reads.
    let ids: Vec<ResourceId> = ids.into_iter().collect();
    let statuses = state.search.statuses(state.store.as_ref(), &ids).await?;
    let nodes = ids
        .into_iter()
        .zip(statuses)
        .map(|(id, status)| LineageNode {
            kind: id.kind,
            name: id.name,
            variant: id.variant,
            status,
        })
        .collect();
    Ok(Lineage {
        root,
        nodes,
        edges: edges.into_iter().collect(),
    })
}

fn parse_kind(kind: &str) -> Result<Kind, ApiError> {
    kind.parse::<Kind>().map_err(|e| {
        let hint = Kind::from_plural(kind)
            .map(|k| format!(" (lineage paths use the singular: `{k}`)"))
            .unwrap_or_default();
        ApiError::not_found(format!("{e}{hint}"))
    })
}
