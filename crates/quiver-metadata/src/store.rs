//! The [`MetadataStore`] trait and how to open one.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use quiver_core::{Kind, ResourceId, SourcedDefinition, Status};
use quiver_lineage::{Direction, Edge};

use crate::error::StoreError;
use crate::jobs::{Job, JobKind, JobQuery, JobRun, JobState, NewJob, RunOutcome, Schedule};
use crate::plan::Plan;
use crate::records::{ListQuery, Page, ResourceRecord, VariantSummary};
use crate::{PostgresStore, SqliteStore};

/// Everything Quiver keeps about definitions and work. Both implementations pass the
/// same test-suite (`tests/suite.rs`), so callers never care which one they hold.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// `"postgres"` or `"sqlite"`.
    fn backend(&self) -> &'static str;

    /// Whether the store answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// What applying `batch` would do. Writes nothing.
    ///
    /// # Errors
    /// Invalid, dangling references and cycles are errors; conflicts are plan items.
    async fn plan(&self, batch: Vec<SourcedDefinition>) -> Result<Plan, StoreError>;

    /// Apply `batch` atomically and return what was done.
    ///
    /// # Errors
    /// As [`MetadataStore::plan`], plus [`StoreError::Conflict`] when any definition
    /// differs from a stored immutable variant. On any error nothing is written.
    async fn apply(&self, batch: Vec<SourcedDefinition>) -> Result<Plan, StoreError>;

    /// One resource; `variant: None` means the default variant.
    async fn get(
        &self,
        kind: Kind,
        name: &str,
        variant: Option<&str>,
    ) -> Result<Option<ResourceRecord>, StoreError>;

    async fn list(&self, query: &ListQuery) -> Result<Page<ResourceRecord>, StoreError>;

    /// Every variant of a versioned name, oldest first; empty when the name is unknown.
    async fn variants(&self, kind: Kind, name: &str) -> Result<Vec<VariantSummary>, StoreError>;

    /// Edges reachable from `id` in `direction` within `depth` steps.
    async fn lineage(
        &self,
        id: &ResourceId,
        direction: Direction,
        depth: u32,
    ) -> Result<Vec<Edge>, StoreError>;

    /// Move a resource's status; `error` is kept only with `Status::Failed`.
    async fn set_status(
        &self,
        id: &ResourceId,
        status: Status,
        error: Option<&str>,
    ) -> Result<(), StoreError>;

    async fn enqueue_job(&self, job: NewJob) -> Result<Job, StoreError>;
    async fn get_job(&self, id: i64) -> Result<Option<Job>, StoreError>;
    async fn list_jobs(&self, query: &JobQuery) -> Result<Page<Job>, StoreError>;
    /// Runs of a job, first attempt first.
    async fn job_runs(&self, job_id: i64) -> Result<Vec<JobRun>, StoreError>;

    /// Claim the next due job for `owner` under a lease of `lease`: a queued job whose
    /// `run_after` has passed, or a running one whose lease expired. Starts a new run.
    /// Only jobs of `kinds` are considered, so a replica never takes work it cannot do.
    /// Two claimers never get the same job at once.
    async fn claim_job(
        &self,
        owner: &str,
        kinds: &[JobKind],
        lease: Duration,
    ) -> Result<Option<(Job, JobRun)>, StoreError>;

    /// Renew the lease and record progress.
    ///
    /// # Errors
    /// [`StoreError::JobState`] when `owner` no longer holds the lease; the caller must
    /// stop working on the job.
    async fn heartbeat(
        &self,
        job_id: i64,
        owner: &str,
        lease: Duration,
        progress_done: i64,
        progress_total: Option<i64>,
    ) -> Result<(), StoreError>;

    /// Append a line to the current run's logs.
    async fn append_log(&self, job_id: i64, owner: &str, line: &str) -> Result<(), StoreError>;

    /// End the current run. A failure is retried with exponential back-off while
    /// attempts remain; the job and the resource's status are updated accordingly.
    async fn finish_run(
        &self,
        job_id: i64,
        owner: &str,
        outcome: RunOutcome,
    ) -> Result<Job, StoreError>;

    /// Cancel a queued or running job.
    async fn cancel_job(&self, job_id: i64) -> Result<Job, StoreError>;

    /// The newest event time materialized into a feature's online store, if any run has
    /// finished. Incremental runs read from it (minus the feature's look-back).
    async fn watermark(&self, id: &ResourceId) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Move a feature's watermark to `to`, never backwards (a late or replayed run cannot
    /// rewind it).
    async fn advance_watermark(&self, id: &ResourceId, to: DateTime<Utc>)
        -> Result<(), StoreError>;

    /// A value that changes whenever any resource is created or changes (definition,
    /// status, default variant): caches of resolved definitions compare it to know when
    /// to resolve again. One cheap query.
    async fn catalog_version(&self) -> Result<(i64, i64), StoreError>;

    /// Every feature's watermark (for freshness metrics).
    async fn watermarks(&self) -> Result<Vec<(ResourceId, DateTime<Utc>)>, StoreError>;

    /// Every materialization schedule, soonest next run first.
    async fn schedules(&self) -> Result<Vec<Schedule>, StoreError>;

    /// Enqueue a materialization job for each schedule due at `now` and move it to its next
    /// run after `now` (missed runs collapse into one). A schedule whose feature still has
    /// a queued or running job is moved on without a new job (counted in `skipped_runs`),
    /// so slow runs never pile up. Safe from any number of replicas at once: each due run
    /// is enqueued once. Returns the jobs enqueued.
    async fn enqueue_due_schedules(&self, now: DateTime<Utc>) -> Result<Vec<Job>, StoreError>;

    /// Run a failed or cancelled job again once its cause is fixed: a new job for the
    /// same resource with fresh attempts (the old one keeps its runs and error as
    /// history), and the resource back to pending.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown job; [`StoreError::JobState`] when the
    /// job is not failed or cancelled, or the resource already has a queued or running job.
    async fn retry_job(&self, job_id: i64) -> Result<Job, StoreError> {
        let job = self
            .get_job(job_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("job {job_id}")))?;
        if !matches!(job.state, JobState::Failed | JobState::Cancelled) {
            return Err(StoreError::JobState(format!(
                "job {job_id} is {}; only failed or cancelled jobs can be retried",
                job.state
            )));
        }
        for state in [JobState::Queued, JobState::Running] {
            let active = self
                .list_jobs(&JobQuery {
                    state: Some(state),
                    resource: Some(job.resource.clone()),
                    limit: 1,
                    offset: 0,
                })
                .await?;
            if let Some(other) = active.items.first() {
                return Err(StoreError::JobState(format!(
                    "{} already has job {} {state}; wait for it or cancel it first",
                    job.resource, other.id
                )));
            }
        }
        let retried = self
            .enqueue_job(NewJob {
                kind: job.kind,
                resource: job.resource.clone(),
                max_attempts: job.max_attempts,
            })
            .await?;
        self.set_status(&job.resource, Status::Pending, None)
            .await?;
        Ok(retried)
    }
}

/// Open the store: Postgres for a `postgres://` URL, otherwise SQLite in `data_dir`.
/// Runs migrations.
pub async fn connect(
    database_url: Option<&str>,
    data_dir: &Path,
) -> Result<Arc<dyn MetadataStore>, StoreError> {
    match database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(PostgresStore::connect(url).await?))
        }
        Some(url) if url.starts_with("sqlite:") => {
            Ok(Arc::new(SqliteStore::connect_url(url).await?))
        }
        Some(other) => Err(StoreError::Invalid {
            origin: "database url".into(),
            message: format!(
                "unsupported database URL scheme in `{}`: use postgres://… or sqlite:…",
                other.split("://").next().unwrap_or(other)
            ),
        }),
        None => Ok(Arc::new(SqliteStore::open(data_dir).await?)),
    }
}
