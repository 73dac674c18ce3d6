//! What the Postgres and SQLite backends share so they behave the same: the row shapes
//! and their decoding, paging rules, LIKE patterns, job back-off and log capping, the
//! apply retry loop and the bookkeeping of an apply that does not touch SQL.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use chrono::{DateTime, Utc};
use quiver_core::{Definition, Kind, ResourceId, Status};
use quiver_lineage::Edge;

use crate::error::StoreError;
use crate::jobs::{Job, JobKind, JobRun, JobState, Schedule};
use crate::plan::{PlanAction, PlannedBatch};
use crate::records::{Page, ResourceRecord, VariantSummary};

/// Page size when a query asks for 0 rows, and the most one page returns.
pub(crate) const DEFAULT_PAGE: u32 = 50;
pub(crate) const MAX_PAGE: u32 = 500;

/// Attempts of a job enqueued by apply.
pub(crate) const APPLY_JOB_MAX_ATTEMPTS: i32 = 3;

/// A run keeps the last this-many characters of its logs, so a chatty job cannot grow a
/// row without bound.
pub(crate) const LOG_CAP_CHARS: i32 = 1 << 20;

/// Whole-transaction attempts of an apply before answering `Busy`.
const APPLY_ATTEMPTS: u32 = 5;

/// Error text of a run closed because its holder stopped renewing the lease.
pub(crate) const LEASE_EXPIRED: &str = "lease expired";

/// Longest wait between job attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// A resource as both backends select it (see each backend's `RESOURCE_COLUMNS`).
#[derive(sqlx::FromRow)]
pub(crate) struct ResourceRow {
    kind: String,
    name: String,
    variant: String,
    definition: String,
    status: String,
    error: Option<String>,
    is_default: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    revision: i64,
}

impl ResourceRow {
    pub(crate) fn decode(self) -> Result<ResourceRecord, StoreError> {
        let id = ResourceId::new(parse_kind(&self.kind)?, self.name, self.variant);
        let definition = parse_definition(&id, &self.definition)?;
        Ok(ResourceRecord {
            is_default: self.is_default || !id.kind.is_versioned(),
            id,
            definition,
            status: parse_status(&self.status)?,
            error: self.error,
            created_at: self.created_at,
            updated_at: self.updated_at,
            revision: self.revision,
        })
    }
}

/// A stored definition with the revision it was read at, for the planner.
#[derive(sqlx::FromRow)]
pub(crate) struct DefinitionRow {
    kind: String,
    name: String,
    variant: String,
    definition: String,
    pub(crate) revision: i64,
}

impl DefinitionRow {
    pub(crate) fn decode(&self) -> Result<(ResourceId, Definition), StoreError> {
        let id = ResourceId::new(
            parse_kind(&self.kind)?,
            self.name.clone(),
            self.variant.clone(),
        );
        let definition = parse_definition(&id, &self.definition)?;
        Ok((id, definition))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct VariantRow {
    variant: String,
    is_default: bool,
    status: String,
    created_at: DateTime<Utc>,
}

impl VariantRow {
    pub(crate) fn decode(self) -> Result<VariantSummary, StoreError> {
        Ok(VariantSummary {
            variant: self.variant,
            is_default: self.is_default,
            status: parse_status(&self.status)?,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EdgeRow {
    up_kind: String,
    up_name: String,
    up_variant: String,
    down_kind: String,
    down_name: String,
    down_variant: String,
}

impl EdgeRow {
    pub(crate) fn decode(self) -> Result<Edge, StoreError> {
        Ok(Edge {
            upstream: ResourceId::new(parse_kind(&self.up_kind)?, self.up_name, self.up_variant),
            downstream: ResourceId::new(
                parse_kind(&self.down_kind)?,
                self.down_name,
                self.down_variant,
            ),
        })
    }
}

pub(crate) fn decode_edges(rows: Vec<EdgeRow>) -> Result<Vec<Edge>, StoreError> {
    let mut edges = rows
        .into_iter()
        .map(EdgeRow::decode)
        .collect::<Result<Vec<_>, _>>()?;
    edges.sort();
    edges.dedup();
    Ok(edges)
}

#[derive(sqlx::FromRow)]
pub(crate) struct JobRow {
    id: i64,
    kind: String,
    resource_kind: String,
    resource_name: String,
    resource_variant: String,
    state: String,
    attempts: i32,
    max_attempts: i32,
    run_after: DateTime<Utc>,
    lease_owner: Option<String>,
    lease_expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    error: Option<String>,
    progress_done: i64,
    progress_total: Option<i64>,
}

impl JobRow {
    pub(crate) fn decode(self) -> Result<Job, StoreError> {
        Ok(Job {
            id: self.id,
            kind: parse_job_kind(&self.kind)?,
            resource: ResourceId::new(
                parse_kind(&self.resource_kind)?,
                self.resource_name,
                self.resource_variant,
            ),
            state: parse_job_state(&self.state)?,
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            run_after: self.run_after,
            lease_owner: self.lease_owner,
            lease_expires_at: self.lease_expires_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            error: self.error,
            progress_done: self.progress_done,
            progress_total: self.progress_total,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ScheduleRow {
    resource_kind: String,
    resource_name: String,
    resource_variant: String,
    cron: String,
    next_run_at: Option<DateTime<Utc>>,
    last_enqueued_at: Option<DateTime<Utc>>,
    last_job_id: Option<i64>,
    skipped_runs: i64,
    watermark: Option<DateTime<Utc>>,
}

impl ScheduleRow {
    pub(crate) fn decode(self) -> Result<Schedule, StoreError> {
        Ok(Schedule {
            resource: ResourceId::new(
                parse_kind(&self.resource_kind)?,
                self.resource_name,
                self.resource_variant,
            ),
            cron: self.cron,
            next_run_at: self.next_run_at,
            last_enqueued_at: self.last_enqueued_at,
            last_job_id: self.last_job_id,
            skipped_runs: self.skipped_runs,
            watermark: self.watermark,
        })
    }
}

/// Every watermark, as `(kind, name, variant, watermark)` rows.
pub(crate) const WATERMARKS_SELECT: &str =
    "SELECT resource_kind, resource_name, resource_variant, watermark \
     FROM watermarks ORDER BY resource_name, resource_variant";

pub(crate) fn decode_watermarks(
    rows: Vec<(String, String, String, DateTime<Utc>)>,
) -> Result<Vec<(ResourceId, DateTime<Utc>)>, StoreError> {
    rows.into_iter()
        .map(|(kind, name, variant, watermark)| {
            Ok((
                ResourceId::new(parse_kind(&kind)?, name, variant),
                watermark,
            ))
        })
        .collect()
}

/// The columns of [`ScheduleRow`], schedules `s` joined with watermarks `w`.
pub(crate) const SCHEDULE_SELECT: &str =
    "SELECT s.resource_kind, s.resource_name, s.resource_variant, s.cron, \
         s.next_run_at, s.last_enqueued_at, s.last_job_id, s.skipped_runs, w.watermark \
     FROM schedules s LEFT JOIN watermarks w \
       ON w.resource_kind = s.resource_kind AND w.resource_name = s.resource_name \
      AND w.resource_variant = s.resource_variant \
     ORDER BY s.next_run_at IS NULL, s.next_run_at, s.resource_name, s.resource_variant";

/// The next run of `cron` after `now`; a stored expression that no longer parses (it was
/// validated at apply) is reported as corrupt rather than silently dropped.
pub(crate) fn next_run(
    cron: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    quiver_core::schedule::next_after(cron, now)
        .map_err(|e| StoreError::Corrupt(format!("stored schedule `{cron}`: {e}")))
}

#[derive(sqlx::FromRow)]
pub(crate) struct JobRunRow {
    id: i64,
    job_id: i64,
    attempt: i32,
    state: String,
    lease_owner: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    rows_written: Option<i64>,
    error: Option<String>,
    logs: String,
}

impl JobRunRow {
    pub(crate) fn decode(self) -> Result<JobRun, StoreError> {
        Ok(JobRun {
            id: self.id,
            job_id: self.job_id,
            attempt: self.attempt,
            state: parse_job_state(&self.state)?,
            lease_owner: self.lease_owner,
            started_at: self.started_at,
            finished_at: self.finished_at,
            rows_written: self.rows_written,
            error: self.error,
            logs: self.logs,
        })
    }
}

/// What a job's holder learns when the store no longer considers it the holder.
pub(crate) fn lease_lost(job_id: i64, owner: &str) -> StoreError {
    StoreError::JobState(format!("job {job_id} is no longer leased by {owner}"))
}

pub(crate) fn job_not_found(job_id: i64) -> StoreError {
    StoreError::NotFound(format!("job {job_id}"))
}

pub(crate) fn parse_kind(s: &str) -> Result<Kind, StoreError> {
    s.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))
}

fn parse_status(s: &str) -> Result<Status, StoreError> {
    s.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))
}

fn parse_job_kind(s: &str) -> Result<JobKind, StoreError> {
    s.parse().map_err(StoreError::Corrupt)
}

pub(crate) fn parse_job_state(s: &str) -> Result<JobState, StoreError> {
    s.parse().map_err(StoreError::Corrupt)
}

/// Decode a stored definition. The error names the resource, never the content: the
/// JSON holds secrets.
pub(crate) fn parse_definition(id: &ResourceId, json: &str) -> Result<Definition, StoreError> {
    serde_json::from_str(json).map_err(|e| {
        StoreError::Corrupt(format!(
            "definition of {id} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

pub(crate) fn definition_json(definition: &Definition) -> Result<String, StoreError> {
    serde_json::to_string(definition).map_err(|e| {
        StoreError::Corrupt(format!(
            "definition of {} cannot be encoded: {e}",
            definition.id()
        ))
    })
}

pub(crate) fn tags_json(definition: &Definition) -> String {
    serde_json::Value::from(definition.tags().to_vec()).to_string()
}

/// `(limit, offset)` to bind: 0 means the default page, larger pages are capped.
pub(crate) fn page_window(limit: u32, offset: u64) -> (i64, i64) {
    let limit = if limit == 0 {
        DEFAULT_PAGE
    } else {
        limit.min(MAX_PAGE)
    };
    (i64::from(limit), i64::try_from(offset).unwrap_or(i64::MAX))
}

pub(crate) fn page<T>(items: Vec<T>, total: i64, offset: i64) -> Page<T> {
    let total = u64::try_from(total).unwrap_or(0);
    let end = u64::try_from(offset).unwrap_or(0) + items.len() as u64;
    Page {
        next_offset: (!items.is_empty() && end < total).then_some(end),
        items,
        total,
    }
}

/// A `LIKE … ESCAPE '\'` pattern matching `text` anywhere. Wildcards typed by the user
/// are matched literally.
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Wait before attempt `attempts + 1` of a job: 1 s, 2 s, 4 s, … capped at 5 minutes.
pub(crate) fn job_backoff(attempts: i32) -> Duration {
    let exponent = attempts.clamp(1, 20) - 1;
    Duration::from_secs(1u64 << exponent).min(MAX_BACKOFF)
}

/// Resource status of a freshly created resource: it waits for its job, if any.
pub(crate) fn initial_status(job: Option<JobKind>) -> Status {
    if job.is_some() {
        Status::Pending
    } else {
        Status::Ready
    }
}

/// Run one apply transaction (`attempt`) until it commits, retrying on contention with
/// a small jittered back-off. `attempt` must roll back everything it did when it fails
/// (dropping an uncommitted sqlx transaction does).
pub(crate) async fn with_retries<T, F, Fut>(
    what: &'static str,
    mut attempt: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    for n in 1..=APPLY_ATTEMPTS {
        match attempt().await {
            Err(e) if e.is_retryable_database_error() => {
                tracing::debug!(operation = what, attempt = n, error = %e, "retrying after contention");
                tokio::time::sleep(retry_delay(n)).await;
            }
            other => return other,
        }
    }
    tracing::warn!(
        operation = what,
        attempts = APPLY_ATTEMPTS,
        "giving up after repeated contention"
    );
    Err(StoreError::Busy)
}

/// 5, 10, 20, … ms plus up to as much again at random, so colliding appliers spread out.
fn retry_delay(attempt: u32) -> Duration {
    let base = 5u64 << attempt.min(6);
    let jitter = RandomState::new().build_hasher().finish() % base;
    Duration::from_millis(base + jitter)
}

/// Signals that the transaction saw a concurrent change it cannot resolve in place
/// (e.g. an optimistic update lost); the whole transaction is retried.
pub(crate) fn contention() -> StoreError {
    StoreError::Busy
}

/// After a create found the row already inserted by a concurrent applier: identical
/// content makes the item `unchanged`, different content is a conflict for a versioned
/// kind and a retry (re-planned as an update) for an unversioned one.
pub(crate) fn resolve_lost_create(
    batch: &mut PlannedBatch,
    write: usize,
    stored: &Definition,
) -> Result<(), StoreError> {
    let w = &batch.writes[write];
    let id = w.definition.id();
    if *stored == w.definition {
        let item = &mut batch.plan.items[w.item];
        item.action = PlanAction::Unchanged;
        item.becomes_default = false;
        tracing::debug!(resource = %id, "created concurrently with identical content");
        Ok(())
    } else if id.kind.is_versioned() {
        Err(StoreError::Conflict {
            conflicts: vec![(id, stored.differing_fields(&w.definition))],
        })
    } else {
        Err(contention())
    }
}

/// Log what an apply did, without any definition content.
pub(crate) fn log_applied(backend: &'static str, batch: &PlannedBatch) {
    let plan = &batch.plan;
    tracing::info!(
        backend,
        created = plan.count(PlanAction::Create),
        updated = plan.count(PlanAction::Update),
        unchanged = plan.count(PlanAction::Unchanged),
        "apply committed"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(job_backoff(1), Duration::from_secs(1));
        assert_eq!(job_backoff(2), Duration::from_secs(2));
        assert_eq!(job_backoff(4), Duration::from_secs(8));
        assert_eq!(job_backoff(30), MAX_BACKOFF);
    }

    #[test]
    fn pages_are_bounded() {
        assert_eq!(page_window(0, 0), (50, 0));
        assert_eq!(page_window(10_000, 7), (500, 7));
        let p = page(vec![1, 2], 5, 2);
        assert_eq!(p.next_offset, Some(4));
        let p = page(vec![1], 5, 4);
        assert_eq!(p.next_offset, None);
    }
}
