//! Jobs and their runs: watch transformations, training-set builds and
//! materializations, and cancel one; and the materialization schedules with their
//! upcoming runs and watermarks.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use quiver_core::{Kind, ResourceId};
use quiver_metadata::{Job, JobQuery, JobRun, JobState, Schedule};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::error::{problem_responses, ApiError};
use crate::extract::{non_empty, page_size, ApiPath, ApiQuery};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(list_jobs, get_job, list_job_runs, cancel_job, retry_job, list_schedules),
    // Schemas used only by parameters are not collected automatically.
    components(schemas(JobState, Kind))
)]
pub(crate) struct JobsApi;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs", get(list_jobs))
        .route("/api/v1/jobs/{id}", get(get_job))
        .route("/api/v1/jobs/{id}/runs", get(list_job_runs))
        .route("/api/v1/jobs/{id}/cancel", post(cancel_job))
        .route("/api/v1/jobs/{id}/retry", post(retry_job))
        .route("/api/v1/schedules", get(list_schedules))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct JobListParams {
    /// Only jobs in this state.
    state: Option<JobState>,
    /// Only jobs of this resource; give `kind` and `name` together, and `variant` for a
    /// versioned kind.
    kind: Option<Kind>,
    /// Resource name, with `kind`.
    name: Option<String>,
    /// Resource variant, with `kind` and `name` of a versioned kind.
    variant: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// Jobs to skip: `next_offset` of the previous page.
    #[param(default = 0)]
    offset: Option<u64>,
}

impl JobListParams {
    /// The resource filter, or why the combination of parameters names none.
    fn resource(&self) -> Result<Option<ResourceId>, ApiError> {
        let name = non_empty(self.name.clone());
        let variant = non_empty(self.variant.clone());
        match (self.kind, name) {
            (None, None) if variant.is_none() => Ok(None),
            (Some(kind), Some(name)) => match (kind.is_versioned(), variant) {
                (true, Some(variant)) => Ok(Some(ResourceId::new(kind, name, variant))),
                (false, None) => Ok(Some(ResourceId::unversioned(kind, name))),
                (true, None) => Err(ApiError::invalid_query(format!(
                    "{kind} is versioned: add `variant` to filter jobs by resource"
                ))),
                (false, Some(_)) => Err(ApiError::invalid_query(format!(
                    "{kind} resources have no variants: drop `variant`"
                ))),
            },
            _ => Err(ApiError::invalid_query(
                "filter jobs by resource with `kind` and `name` together (and `variant` for a versioned kind)",
            )),
        }
    }
}

/// One page of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    items: Vec<Job>,
    total: u64,
    /// Pass as `offset` to get the next page; absent on the last page.
    next_offset: Option<u64>,
}

problem_responses!(JobListErrors: InvalidQuery);
problem_responses!(JobErrors: InvalidPath, NotFound);
problem_responses!(CancelErrors: InvalidPath, NotFound, InvalidJobState);
problem_responses!(ScheduleErrors:);

/// List jobs
#[utoipa::path(
    get,
    path = "/api/v1/jobs",
    tag = "jobs",
    params(JobListParams),
    responses((status = 200, description = "One page of jobs", body = JobPage), JobListErrors)
)]
async fn list_jobs(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<JobListParams>,
) -> Result<Json<JobPage>, ApiError> {
    let query = JobQuery {
        state: params.state,
        resource: params.resource()?,
        limit: page_size(params.limit)?,
        offset: params.offset.unwrap_or(0),
    };
    let page = state.store.list_jobs(&query).await?;
    Ok(Json(JobPage {
        items: page.items,
        total: page.total,
        next_offset: page.next_offset,
    }))
}

/// Get a job
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, description = "The job", body = Job), JobErrors)
)]
async fn get_job(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(find_job(&state, id).await?))
}

/// List the runs (attempts) of a job
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}/runs",
    tag = "jobs",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, description = "Runs, first attempt first", body = Vec<JobRun>), JobErrors)
)]
async fn list_job_runs(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Vec<JobRun>>, ApiError> {
    // An unknown job has no runs either; say so instead of answering an empty list.
    find_job(&state, id).await?;
    Ok(Json(state.store.job_runs(id).await?))
}

/// Cancel a queued or running job
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/cancel",
    tag = "jobs",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, description = "The cancelled job", body = Job), CancelErrors)
)]
async fn cancel_job(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Job>, ApiError> {
    find_job(&state, id).await?;
    Ok(Json(state.store.cancel_job(id).await?))
}

/// Retry a failed or cancelled job
///
/// Enqueues a new job for the same resource with fresh attempts, once the cause of the
/// failure is fixed; the old job keeps its runs and error as history.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/retry",
    tag = "jobs",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, description = "The new job", body = Job), CancelErrors)
)]
async fn retry_job(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Job>, ApiError> {
    find_job(&state, id).await?;
    Ok(Json(state.store.retry_job(id).await?))
}

/// List materialization schedules
///
/// Every feature with a `materialization.schedule`, soonest next run first, with its
/// last enqueued job, runs skipped because the previous one was still going, and the
/// watermark its incremental runs read from.
#[utoipa::path(
    get,
    path = "/api/v1/schedules",
    tag = "jobs",
    responses((status = 200, description = "Schedules, soonest next run first", body = Vec<Schedule>), ScheduleErrors)
)]
async fn list_schedules(State(state): State<AppState>) -> Result<Json<Vec<Schedule>>, ApiError> {
    Ok(Json(state.store.schedules().await?))
}

async fn find_job(state: &AppState, id: i64) -> Result<Job, ApiError> {
    state
        .store
        .get_job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id} not found")))
}
