//! The Postgres backend, for production and for several `quiver serve` replicas sharing
//! one database.
//!
//! Concurrency model: apply runs under READ COMMITTED. Creates are
//! `INSERT … ON CONFLICT DO NOTHING`, so two appliers of the same variant never both
//! write it: the loser waits for the winner's commit, re-reads the stored definition and
//! reports the item `unchanged` (identical) or a conflict (different). Writes follow the
//! planner's sorted order, one global lock order, so appliers queue instead of
//! deadlocking; whatever contention remains (a lost optimistic update, a deadlock, a
//! serialization failure) retries the whole transaction a few times. Jobs are claimed
//! with `FOR UPDATE SKIP LOCKED`. Times come from the database clock (`now()`), so
//! replicas with skewed clocks still agree on leases.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use quiver_core::{Definition, Kind, ResourceId, SourcedDefinition, Status};
use quiver_lineage::{Direction, Edge};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};

use crate::backend::{
    contains_pattern, contention, decode_edges, definition_json, initial_status, job_backoff,
    job_not_found, lease_lost, log_applied, page, page_window, parse_definition, parse_job_state,
    resolve_lost_create, tags_json, with_retries, DefinitionRow, EdgeRow, JobRow, JobRunRow,
    ResourceRow, VariantRow, APPLY_JOB_MAX_ATTEMPTS, LEASE_EXPIRED, LOG_CAP_CHARS,
};
use crate::backend::{next_run, ScheduleRow, SCHEDULE_SELECT};
use crate::error::StoreError;
use crate::jobs::{Job, JobKind, JobQuery, JobRun, JobState, NewJob, RunOutcome, Schedule};
use crate::plan::{plan_batch, Plan, PlanAction, PlannedBatch, SnapshotReader};
use crate::records::{ListQuery, Page, ResourceRecord, VariantSummary};
use crate::store::MetadataStore;

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

/// Connections per process. Applies queue for a connection rather than fail.
const MAX_CONNECTIONS: u32 = 16;

/// Columns decoded by [`ResourceRow`], from `resources r` joined to `default_variants d`.
macro_rules! resource_select {
    () => {
        "SELECT r.kind, r.name, r.variant, r.definition::text AS definition, r.status, r.error, \
                (d.variant IS NOT NULL) AS is_default, r.created_at, r.updated_at, r.revision \
         FROM resources r \
         LEFT JOIN default_variants d ON d.kind = r.kind AND d.name = r.name AND d.variant = r.variant"
    };
}

/// Columns decoded by [`JobRow`].
macro_rules! job_columns {
    () => {
        "id, kind, resource_kind, resource_name, resource_variant, state, attempts, max_attempts, \
         run_after, lease_owner, lease_expires_at, created_at, updated_at, started_at, finished_at, \
         error, progress_done, progress_total"
    };
}

/// Columns decoded by [`JobRunRow`].
macro_rules! run_columns {
    () => {
        "id, job_id, attempt, state, lease_owner, started_at, finished_at, rows_written, error, logs"
    };
}

/// Edges reachable from the resources `($1, $2, $3)` (parallel arrays of kind, name,
/// variant) within `$4` steps. `walk` holds the resources fewer than `$4` steps away;
/// the edges leaving them are the answer. `$from`/`$to` pick the direction.
macro_rules! walk_edges {
    ($from:literal, $to:literal) => {
        concat!(
            "WITH RECURSIVE walk (id, depth) AS ( \
                 SELECT r.id, 0 FROM resources r \
                 JOIN UNNEST($1::text[], $2::text[], $3::text[]) AS w (kind, name, variant) \
                   ON r.kind = w.kind AND r.name = w.name AND r.variant = w.variant \
               UNION \
                 SELECT e.",
            $to,
            ", walk.depth + 1 FROM walk JOIN edges e ON e.",
            $from,
            " = walk.id \
                 WHERE walk.depth + 1 < $4 \
             ) \
             SELECT DISTINCT u.kind AS up_kind, u.name AS up_name, u.variant AS up_variant, \
                    d.kind AS down_kind, d.name AS down_name, d.variant AS down_variant \
             FROM walk \
             JOIN edges e ON e.",
            $from,
            " = walk.id \
             JOIN resources u ON u.id = e.upstream_id \
             JOIN resources d ON d.id = e.downstream_id"
        )
    };
}

/// The Postgres metadata store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connect to `url` (`postgres://user:password@host:port/database`) and run the
    /// migrations. The URL is never logged: it may hold a password.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("quiver");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        tracing::info!(backend = "postgres", "metadata store ready");
        Ok(PostgresStore { pool })
    }

    async fn apply_once(&self, batch: &[SourcedDefinition]) -> Result<Plan, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut snapshot = Snapshot::new(&mut tx);
        let mut planned = plan_batch(&mut snapshot, batch.to_vec()).await?;
        let revisions = snapshot.revisions;
        let conflicts = planned.plan.conflicts();
        if !conflicts.is_empty() {
            return Err(StoreError::Conflict { conflicts });
        }
        write_planned(&mut tx, &mut planned, &revisions).await?;
        tx.commit().await?;
        log_applied("postgres", &planned);
        Ok(planned.plan)
    }

    async fn claim_once(
        &self,
        owner: &str,
        kinds: &[String],
        lease: Duration,
    ) -> Result<Option<(Job, JobRun)>, StoreError> {
        let mut tx = self.pool.begin().await?;
        loop {
            // SKIP LOCKED: a job another replica is claiming right now is simply not
            // a candidate, so claimers never wait on each other nor take the same job.
            let candidate: Option<(i64, String, i32, i32)> = sqlx::query_as(
                "SELECT id, state, attempts, max_attempts FROM jobs \
                 WHERE kind = ANY($1) \
                   AND ((state = 'queued' AND run_after <= now()) \
                     OR (state = 'running' AND lease_expires_at <= now())) \
                 ORDER BY run_after, id \
                 LIMIT 1 \
                 FOR UPDATE SKIP LOCKED",
            )
            .bind(kinds)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((job_id, state, attempts, max_attempts)) = candidate else {
                tx.commit().await?;
                return Ok(None);
            };
            if parse_job_state(&state)? == JobState::Running {
                // Its holder stopped renewing the lease: that attempt is over.
                sqlx::query(
                    "UPDATE job_runs SET state = 'failed', finished_at = now(), error = $2 \
                     WHERE job_id = $1 AND state = 'running'",
                )
                .bind(job_id)
                .bind(LEASE_EXPIRED)
                .execute(&mut *tx)
                .await?;
                if attempts >= max_attempts {
                    let job: JobRow = sqlx::query_as(concat!(
                        "UPDATE jobs SET state = 'failed', error = $2, lease_owner = NULL, \
                             lease_expires_at = NULL, finished_at = now(), updated_at = now() \
                         WHERE id = $1 RETURNING ",
                        job_columns!()
                    ))
                    .bind(job_id)
                    .bind(LEASE_EXPIRED)
                    .fetch_one(&mut *tx)
                    .await?;
                    let job = job.decode()?;
                    set_resource_status(
                        &mut tx,
                        &job.resource,
                        Status::Failed,
                        Some(LEASE_EXPIRED),
                    )
                    .await?;
                    tracing::warn!(
                        job_id,
                        attempts,
                        "job failed: lease expired on its last attempt"
                    );
                    continue;
                }
                tracing::info!(job_id, attempts, "reclaiming job whose lease expired");
            }
            let job: JobRow = sqlx::query_as(concat!(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $2, \
                     lease_expires_at = now() + make_interval(secs => $3), \
                     started_at = COALESCE(started_at, now()), updated_at = now(), \
                     progress_done = 0, progress_total = NULL \
                 WHERE id = $1 RETURNING ",
                job_columns!()
            ))
            .bind(job_id)
            .bind(owner)
            .bind(lease.as_secs_f64())
            .fetch_one(&mut *tx)
            .await?;
            let job = job.decode()?;
            let run: JobRunRow = sqlx::query_as(concat!(
                "INSERT INTO job_runs (job_id, attempt, state, lease_owner, started_at) \
                 VALUES ($1, $2, 'running', $3, now()) RETURNING ",
                run_columns!()
            ))
            .bind(job.id)
            .bind(job.attempts)
            .bind(owner)
            .fetch_one(&mut *tx)
            .await?;
            set_resource_status(&mut tx, &job.resource, Status::Running, None).await?;
            tx.commit().await?;
            tracing::info!(job_id = job.id, kind = %job.kind, attempt = job.attempts, owner, "job claimed");
            return Ok(Some((job, run.decode()?)));
        }
    }

    async fn finish_once(
        &self,
        job_id: i64,
        owner: &str,
        outcome: &RunOutcome,
    ) -> Result<Job, StoreError> {
        let mut tx = self.pool.begin().await?;
        let job = lock_job(&mut tx, job_id).await?;
        if job.state != JobState::Running || job.lease_owner.as_deref() != Some(owner) {
            return Err(lease_lost(job_id, owner));
        }
        let finished: JobRow = match outcome {
            RunOutcome::Succeeded { rows_written } => {
                sqlx::query(
                    "UPDATE job_runs SET state = 'succeeded', finished_at = now(), rows_written = $3 \
                     WHERE job_id = $1 AND attempt = $2",
                )
                .bind(job_id)
                .bind(job.attempts)
                .bind(rows_written)
                .execute(&mut *tx)
                .await?;
                set_resource_status(&mut tx, &job.resource, Status::Ready, None).await?;
                sqlx::query_as(concat!(
                    "UPDATE jobs SET state = 'succeeded', lease_owner = NULL, lease_expires_at = NULL, \
                         finished_at = now(), updated_at = now() \
                     WHERE id = $1 RETURNING ",
                    job_columns!()
                ))
                .bind(job_id)
                .fetch_one(&mut *tx)
                .await?
            }
            RunOutcome::Failed { error } => {
                sqlx::query(
                    "UPDATE job_runs SET state = 'failed', finished_at = now(), error = $3 \
                     WHERE job_id = $1 AND attempt = $2",
                )
                .bind(job_id)
                .bind(job.attempts)
                .bind(error)
                .execute(&mut *tx)
                .await?;
                if job.attempts < job.max_attempts {
                    // Another attempt after a back-off; the resource waits for it.
                    set_resource_status(&mut tx, &job.resource, Status::Pending, None).await?;
                    sqlx::query_as(concat!(
                        "UPDATE jobs SET state = 'queued', error = $2, lease_owner = NULL, \
                             lease_expires_at = NULL, updated_at = now(), \
                             run_after = now() + make_interval(secs => $3) \
                         WHERE id = $1 RETURNING ",
                        job_columns!()
                    ))
                    .bind(job_id)
                    .bind(error)
                    .bind(job_backoff(job.attempts).as_secs_f64())
                    .fetch_one(&mut *tx)
                    .await?
                } else {
                    set_resource_status(&mut tx, &job.resource, Status::Failed, Some(error))
                        .await?;
                    sqlx::query_as(concat!(
                        "UPDATE jobs SET state = 'failed', error = $2, lease_owner = NULL, \
                             lease_expires_at = NULL, finished_at = now(), updated_at = now() \
                         WHERE id = $1 RETURNING ",
                        job_columns!()
                    ))
                    .bind(job_id)
                    .bind(error)
                    .fetch_one(&mut *tx)
                    .await?
                }
            }
            RunOutcome::Waiting {
                reason,
                retry_after,
            } => {
                // Not started after all: the resource goes back to waiting for its job.
                set_resource_status(&mut tx, &job.resource, Status::Pending, None).await?;
                sqlx::query("DELETE FROM job_runs WHERE job_id = $1 AND attempt = $2")
                    .bind(job_id)
                    .bind(job.attempts)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query_as(concat!(
                    "UPDATE jobs SET state = 'queued', attempts = attempts - 1, error = $2, \
                         lease_owner = NULL, lease_expires_at = NULL, updated_at = now(), \
                         run_after = now() + make_interval(secs => $3) \
                     WHERE id = $1 RETURNING ",
                    job_columns!()
                ))
                .bind(job_id)
                .bind(reason)
                .bind(retry_after.as_secs_f64())
                .fetch_one(&mut *tx)
                .await?
            }
        };
        tx.commit().await?;
        let finished = finished.decode()?;
        tracing::info!(job_id, attempt = finished.attempts, state = %finished.state, "job run finished");
        Ok(finished)
    }

    async fn cancel_once(&self, job_id: i64) -> Result<Job, StoreError> {
        let mut tx = self.pool.begin().await?;
        let job = lock_job(&mut tx, job_id).await?;
        if job.state.is_terminal() {
            return Err(StoreError::JobState(format!(
                "job {job_id} is already {}; only queued or running jobs can be cancelled",
                job.state
            )));
        }
        sqlx::query(
            "UPDATE job_runs SET state = 'cancelled', finished_at = now(), error = 'cancelled' \
             WHERE job_id = $1 AND state = 'running'",
        )
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        let cancelled: JobRow = sqlx::query_as(concat!(
            "UPDATE jobs SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, \
                 finished_at = now(), updated_at = now() \
             WHERE id = $1 RETURNING ",
            job_columns!()
        ))
        .bind(job_id)
        .fetch_one(&mut *tx)
        .await?;
        // A resource waiting for this job would otherwise stay pending or running forever.
        sqlx::query(
            "UPDATE resources SET status = 'failed', error = $4, updated_at = now(), revision = revision + 1 \
             WHERE kind = $1 AND name = $2 AND variant = $3 AND status IN ('pending', 'running')",
        )
        .bind(job.resource.kind.as_str())
        .bind(&job.resource.name)
        .bind(&job.resource.variant)
        .bind(format!("job {job_id} was cancelled"))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(job_id, "job cancelled");
        cancelled.decode()
    }

    /// Why `owner` could not act on `job_id`: the job is unknown or not leased by it.
    async fn not_leased(&self, job_id: i64, owner: &str) -> StoreError {
        match sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM jobs WHERE id = $1)")
            .bind(job_id)
            .fetch_one(&self.pool)
            .await
        {
            Ok(true) => lease_lost(job_id, owner),
            Ok(false) => job_not_found(job_id),
            Err(e) => e.into(),
        }
    }
}

/// The planner's reads, inside the apply transaction (or a read-only snapshot for
/// `plan`). Remembers the revision of every definition it read, so an in-place update
/// can check that nobody changed the row since.
struct Snapshot<'c> {
    conn: &'c mut PgConnection,
    revisions: HashMap<ResourceId, i64>,
}

impl<'c> Snapshot<'c> {
    fn new(conn: &'c mut PgConnection) -> Self {
        Snapshot {
            conn,
            revisions: HashMap::new(),
        }
    }
}

/// Parallel arrays of kinds, names and variants, bound as `text[]` for `UNNEST`.
fn id_arrays(ids: &[ResourceId]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let kinds = ids.iter().map(|id| id.kind.as_str().to_string()).collect();
    let names = ids.iter().map(|id| id.name.clone()).collect();
    let variants = ids.iter().map(|id| id.variant.clone()).collect();
    (kinds, names, variants)
}

#[async_trait]
impl SnapshotReader for Snapshot<'_> {
    async fn default_variants(
        &mut self,
        names: &[(Kind, String)],
    ) -> Result<HashMap<(Kind, String), String>, StoreError> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let kinds: Vec<String> = names.iter().map(|(k, _)| k.as_str().to_string()).collect();
        let plain: Vec<String> = names.iter().map(|(_, n)| n.clone()).collect();
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT d.kind, d.name, d.variant FROM default_variants d \
             JOIN UNNEST($1::text[], $2::text[]) AS w (kind, name) ON d.kind = w.kind AND d.name = w.name",
        )
        .bind(&kinds)
        .bind(&plain)
        .fetch_all(&mut *self.conn)
        .await?;
        rows.into_iter()
            .map(|(kind, name, variant)| {
                let kind = kind
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("{e}")))?;
                Ok(((kind, name), variant))
            })
            .collect()
    }

    async fn definitions(
        &mut self,
        ids: &[ResourceId],
    ) -> Result<HashMap<ResourceId, Definition>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let (kinds, names, variants) = id_arrays(ids);
        let rows: Vec<DefinitionRow> = sqlx::query_as(
            "SELECT r.kind, r.name, r.variant, r.definition::text AS definition, r.revision \
             FROM resources r \
             JOIN UNNEST($1::text[], $2::text[], $3::text[]) AS w (kind, name, variant) \
               ON r.kind = w.kind AND r.name = w.name AND r.variant = w.variant",
        )
        .bind(&kinds)
        .bind(&names)
        .bind(&variants)
        .fetch_all(&mut *self.conn)
        .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            let (id, definition) = row.decode()?;
            self.revisions.insert(id.clone(), row.revision);
            out.insert(id, definition);
        }
        Ok(out)
    }

    async fn downstream_edges(
        &mut self,
        ids: &[ResourceId],
        depth: u32,
    ) -> Result<Vec<Edge>, StoreError> {
        walk(&mut *self.conn, ids, Direction::Downstream, depth).await
    }
}

async fn walk(
    conn: &mut PgConnection,
    ids: &[ResourceId],
    direction: Direction,
    depth: u32,
) -> Result<Vec<Edge>, StoreError> {
    if ids.is_empty() || depth == 0 {
        return Ok(Vec::new());
    }
    let sql = match direction {
        Direction::Downstream => walk_edges!("upstream_id", "downstream_id"),
        Direction::Upstream => walk_edges!("downstream_id", "upstream_id"),
    };
    let (kinds, names, variants) = id_arrays(ids);
    let rows: Vec<EdgeRow> = sqlx::query_as(sql)
        .bind(&kinds)
        .bind(&names)
        .bind(&variants)
        .bind(i32::try_from(depth).unwrap_or(i32::MAX))
        .fetch_all(conn)
        .await?;
    decode_edges(rows)
}

/// Perform the planned writes: every row first (in the planner's sorted order, the
/// global lock order), then edges, default variants and jobs, which refer to rows.
async fn write_planned(
    conn: &mut PgConnection,
    batch: &mut PlannedBatch,
    revisions: &HashMap<ResourceId, i64>,
) -> Result<(), StoreError> {
    // Row id of each write that this transaction performed, by index into `writes`.
    let mut row_ids: HashMap<usize, i64> = HashMap::new();
    for index in 0..batch.writes.len() {
        let w = &batch.writes[index];
        let id = w.definition.id();
        let json = definition_json(&w.definition)?;
        match w.action {
            PlanAction::Create => {
                let inserted: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO resources \
                         (kind, name, variant, definition, owner, description, tags, status, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7::jsonb, $8, now(), now()) \
                     ON CONFLICT (kind, name, variant) DO NOTHING \
                     RETURNING id",
                )
                .bind(id.kind.as_str())
                .bind(&id.name)
                .bind(&id.variant)
                .bind(&json)
                .bind(w.definition.owner())
                .bind(w.definition.description())
                .bind(tags_json(&w.definition))
                .bind(initial_status(w.job).as_str())
                .fetch_optional(&mut *conn)
                .await?;
                match inserted {
                    Some(row_id) => {
                        row_ids.insert(index, row_id);
                    }
                    None => {
                        // A concurrent applier committed this row after our plan read.
                        let stored: String = sqlx::query_scalar(
                            "SELECT definition::text FROM resources WHERE kind = $1 AND name = $2 AND variant = $3",
                        )
                        .bind(id.kind.as_str())
                        .bind(&id.name)
                        .bind(&id.variant)
                        .fetch_one(&mut *conn)
                        .await?;
                        let stored = parse_definition(&id, &stored)?;
                        resolve_lost_create(batch, index, &stored)?;
                    }
                }
            }
            PlanAction::Update => {
                let Some(revision) = revisions.get(&id) else {
                    return Err(StoreError::Corrupt(format!(
                        "update of {id} was planned without reading it"
                    )));
                };
                let updated: Option<i64> = sqlx::query_scalar(
                    "UPDATE resources SET definition = $4::jsonb, owner = $5, description = $6, tags = $7::jsonb, \
                         updated_at = now(), revision = revision + 1 \
                     WHERE kind = $1 AND name = $2 AND variant = $3 AND revision = $8 \
                     RETURNING id",
                )
                .bind(id.kind.as_str())
                .bind(&id.name)
                .bind(&id.variant)
                .bind(&json)
                .bind(w.definition.owner())
                .bind(w.definition.description())
                .bind(tags_json(&w.definition))
                .bind(revision)
                .fetch_optional(&mut *conn)
                .await?;
                // No row: someone changed it since the plan read it; plan again.
                let row_id = updated.ok_or_else(contention)?;
                sqlx::query("DELETE FROM edges WHERE downstream_id = $1")
                    .bind(row_id)
                    .execute(&mut *conn)
                    .await?;
                row_ids.insert(index, row_id);
            }
            PlanAction::Unchanged | PlanAction::Conflict => {}
        }
    }

    for (index, w) in batch.writes.iter().enumerate() {
        let Some(&row_id) = row_ids.get(&index) else {
            continue;
        };
        for edge in &w.edges {
            let inserted = sqlx::query(
                "INSERT INTO edges (upstream_id, downstream_id) \
                 SELECT u.id, $4 FROM resources u WHERE u.kind = $1 AND u.name = $2 AND u.variant = $3",
            )
            .bind(edge.upstream.kind.as_str())
            .bind(&edge.upstream.name)
            .bind(&edge.upstream.variant)
            .bind(row_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if inserted != 1 {
                return Err(StoreError::Corrupt(format!(
                    "{} refers to {}, which the plan found but the store does not hold",
                    edge.downstream, edge.upstream
                )));
            }
        }
        if w.becomes_default {
            let id = w.definition.id();
            sqlx::query(
                "INSERT INTO default_variants (kind, name, variant, updated_at) VALUES ($1, $2, $3, now()) \
                 ON CONFLICT (kind, name) DO UPDATE SET variant = EXCLUDED.variant, updated_at = EXCLUDED.updated_at",
            )
            .bind(id.kind.as_str())
            .bind(&id.name)
            .bind(&id.variant)
            .execute(&mut *conn)
            .await?;
        }
        if let Some(kind) = w.job {
            insert_job(
                &mut *conn,
                &NewJob {
                    kind,
                    resource: w.definition.id(),
                    max_attempts: APPLY_JOB_MAX_ATTEMPTS,
                },
            )
            .await?;
        }
        if let Some(cron) = &w.schedule {
            let id = w.definition.id();
            sqlx::query(
                "INSERT INTO schedules (resource_kind, resource_name, resource_variant, cron, next_run_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(id.kind.as_str())
            .bind(&id.name)
            .bind(&id.variant)
            .bind(cron)
            .bind(next_run(cron, chrono::Utc::now())?)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

async fn insert_job(conn: &mut PgConnection, job: &NewJob) -> Result<Job, StoreError> {
    if job.max_attempts < 1 {
        return Err(StoreError::Invalid {
            origin: format!("job for {}", job.resource),
            message: "max_attempts must be at least 1".into(),
        });
    }
    let row: Result<JobRow, sqlx::Error> = sqlx::query_as(concat!(
        "INSERT INTO jobs (kind, resource_kind, resource_name, resource_variant, state, max_attempts, \
             run_after, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'queued', $5, now(), now(), now()) RETURNING ",
        job_columns!()
    ))
    .bind(job.kind.as_str())
    .bind(job.resource.kind.as_str())
    .bind(&job.resource.name)
    .bind(&job.resource.variant)
    .bind(job.max_attempts)
    .fetch_one(conn)
    .await;
    match row {
        Ok(row) => row.decode(),
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("jobs_resource_fkey") => {
            Err(StoreError::NotFound(job.resource.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The job row, locked for this transaction.
async fn lock_job(conn: &mut PgConnection, job_id: i64) -> Result<Job, StoreError> {
    let row: Option<JobRow> = sqlx::query_as(concat!(
        "SELECT ",
        job_columns!(),
        " FROM jobs WHERE id = $1 FOR UPDATE"
    ))
    .bind(job_id)
    .fetch_optional(conn)
    .await?;
    row.ok_or_else(|| job_not_found(job_id))?.decode()
}

/// Move a resource's status; the error text is kept only for `failed`. Returns whether
/// the resource exists.
async fn set_resource_status(
    conn: &mut PgConnection,
    id: &ResourceId,
    status: Status,
    error: Option<&str>,
) -> Result<bool, StoreError> {
    let error = error.filter(|_| status == Status::Failed);
    let updated = sqlx::query(
        "UPDATE resources SET status = $4, error = $5, updated_at = now(), revision = revision + 1 \
         WHERE kind = $1 AND name = $2 AND variant = $3",
    )
    .bind(id.kind.as_str())
    .bind(&id.name)
    .bind(&id.variant)
    .bind(status.as_str())
    .bind(error)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated > 0)
}

/// `WHERE …` for a resource list; every value is bound.
fn push_list_filters(qb: &mut QueryBuilder<'_, Postgres>, q: &ListQuery) {
    qb.push(" WHERE TRUE");
    if let Some(kind) = q.kind {
        qb.push(" AND r.kind = ").push_bind(kind.as_str());
    }
    if let Some(name) = &q.name {
        qb.push(" AND r.name = ").push_bind(name.clone());
    }
    if let Some(owner) = &q.owner {
        qb.push(" AND r.owner = ").push_bind(owner.clone());
    }
    if let Some(tag) = &q.tag {
        qb.push(" AND r.tags @> jsonb_build_array(")
            .push_bind(tag.clone())
            .push("::text)");
    }
    if let Some(status) = q.status {
        qb.push(" AND r.status = ").push_bind(status.as_str());
    }
    if let Some(text) = &q.text {
        let pattern = contains_pattern(text);
        qb.push(" AND (r.name ILIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR r.description ILIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
    if q.defaults_only {
        qb.push(" AND (d.variant IS NOT NULL OR r.variant = '')");
    }
}

#[async_trait]
impl MetadataStore for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn plan(&self, batch: Vec<SourcedDefinition>) -> Result<Plan, StoreError> {
        // One consistent snapshot for all of the planner's reads; nothing is written.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let planned = plan_batch(&mut Snapshot::new(&mut tx), batch).await?;
        tx.rollback().await?;
        Ok(planned.plan)
    }

    async fn apply(&self, batch: Vec<SourcedDefinition>) -> Result<Plan, StoreError> {
        with_retries("apply", || self.apply_once(&batch)).await
    }

    async fn get(
        &self,
        kind: Kind,
        name: &str,
        variant: Option<&str>,
    ) -> Result<Option<ResourceRecord>, StoreError> {
        // Unversioned kinds have exactly one row, variant ''.
        let variant = if kind.is_versioned() {
            variant
        } else {
            Some("")
        };
        let row: Option<ResourceRow> = sqlx::query_as(concat!(
            resource_select!(),
            " WHERE r.kind = $1 AND r.name = $2 \
               AND r.variant = COALESCE($3, (SELECT dv.variant FROM default_variants dv \
                                              WHERE dv.kind = $1 AND dv.name = $2))"
        ))
        .bind(kind.as_str())
        .bind(name)
        .bind(variant)
        .fetch_optional(&self.pool)
        .await?;
        row.map(ResourceRow::decode).transpose()
    }

    async fn list(&self, query: &ListQuery) -> Result<Page<ResourceRecord>, StoreError> {
        let (limit, offset) = page_window(query.limit, query.offset);
        // Count and page from one snapshot so `total` matches the items.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let mut count = QueryBuilder::new(
            "SELECT COUNT(*) FROM resources r \
             LEFT JOIN default_variants d ON d.kind = r.kind AND d.name = r.name AND d.variant = r.variant",
        );
        push_list_filters(&mut count, query);
        let total: i64 = count.build_query_scalar().fetch_one(&mut *tx).await?;
        let mut select = QueryBuilder::new(resource_select!());
        push_list_filters(&mut select, query);
        // Byte order ("C" collation) so both backends sort identically.
        select
            .push(
                r#" ORDER BY r.kind COLLATE "C", r.name COLLATE "C", r.variant COLLATE "C" LIMIT "#,
            )
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows: Vec<ResourceRow> = select.build_query_as().fetch_all(&mut *tx).await?;
        tx.rollback().await?;
        let items = rows
            .into_iter()
            .map(ResourceRow::decode)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(items, total, offset))
    }

    async fn variants(&self, kind: Kind, name: &str) -> Result<Vec<VariantSummary>, StoreError> {
        let rows: Vec<VariantRow> = sqlx::query_as(
            "SELECT r.variant, (d.variant IS NOT NULL) AS is_default, r.status, r.created_at \
             FROM resources r \
             LEFT JOIN default_variants d ON d.kind = r.kind AND d.name = r.name AND d.variant = r.variant \
             WHERE r.kind = $1 AND r.name = $2 \
             ORDER BY r.created_at, r.id",
        )
        .bind(kind.as_str())
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(VariantRow::decode).collect()
    }

    async fn lineage(
        &self,
        id: &ResourceId,
        direction: Direction,
        depth: u32,
    ) -> Result<Vec<Edge>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM resources WHERE kind = $1 AND name = $2 AND variant = $3)",
        )
        .bind(id.kind.as_str())
        .bind(&id.name)
        .bind(&id.variant)
        .fetch_one(&mut *conn)
        .await?;
        if !exists {
            return Err(StoreError::NotFound(id.to_string()));
        }
        walk(&mut conn, std::slice::from_ref(id), direction, depth).await
    }

    async fn set_status(
        &self,
        id: &ResourceId,
        status: Status,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        if set_resource_status(&mut conn, id, status, error).await? {
            Ok(())
        } else {
            Err(StoreError::NotFound(id.to_string()))
        }
    }

    async fn enqueue_job(&self, job: NewJob) -> Result<Job, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let job = insert_job(&mut conn, &job).await?;
        tracing::info!(job_id = job.id, kind = %job.kind, resource = %job.resource, "job enqueued");
        Ok(job)
    }

    async fn get_job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        let row: Option<JobRow> = sqlx::query_as(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(JobRow::decode).transpose()
    }

    async fn list_jobs(&self, query: &JobQuery) -> Result<Page<Job>, StoreError> {
        let (limit, offset) = page_window(query.limit, query.offset);
        let filters = |qb: &mut QueryBuilder<'_, Postgres>| {
            qb.push(" WHERE TRUE");
            if let Some(state) = query.state {
                qb.push(" AND state = ").push_bind(state.as_str());
            }
            if let Some(r) = &query.resource {
                qb.push(" AND resource_kind = ")
                    .push_bind(r.kind.as_str())
                    .push(" AND resource_name = ")
                    .push_bind(r.name.clone())
                    .push(" AND resource_variant = ")
                    .push_bind(r.variant.clone());
            }
        };
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let mut count = QueryBuilder::new("SELECT COUNT(*) FROM jobs");
        filters(&mut count);
        let total: i64 = count.build_query_scalar().fetch_one(&mut *tx).await?;
        let mut select = QueryBuilder::new(concat!("SELECT ", job_columns!(), " FROM jobs"));
        filters(&mut select);
        // Newest first: what an operator looks for.
        select
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows: Vec<JobRow> = select.build_query_as().fetch_all(&mut *tx).await?;
        tx.rollback().await?;
        let items = rows
            .into_iter()
            .map(JobRow::decode)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(items, total, offset))
    }

    async fn job_runs(&self, job_id: i64) -> Result<Vec<JobRun>, StoreError> {
        let rows: Vec<JobRunRow> = sqlx::query_as(concat!(
            "SELECT ",
            run_columns!(),
            " FROM job_runs WHERE job_id = $1 ORDER BY attempt"
        ))
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(JobRunRow::decode).collect()
    }

    async fn claim_job(
        &self,
        owner: &str,
        kinds: &[JobKind],
        lease: Duration,
    ) -> Result<Option<(Job, JobRun)>, StoreError> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let kinds: Vec<String> = kinds.iter().map(|k| k.as_str().to_string()).collect();
        with_retries("claim job", || self.claim_once(owner, &kinds, lease)).await
    }

    async fn heartbeat(
        &self,
        job_id: i64,
        owner: &str,
        lease: Duration,
        progress_done: i64,
        progress_total: Option<i64>,
    ) -> Result<(), StoreError> {
        let renewed = sqlx::query(
            "UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $3), \
                 progress_done = $4, progress_total = $5, updated_at = now() \
             WHERE id = $1 AND state = 'running' AND lease_owner = $2",
        )
        .bind(job_id)
        .bind(owner)
        .bind(lease.as_secs_f64())
        .bind(progress_done)
        .bind(progress_total)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if renewed == 0 {
            return Err(self.not_leased(job_id, owner).await);
        }
        Ok(())
    }

    async fn append_log(&self, job_id: i64, owner: &str, line: &str) -> Result<(), StoreError> {
        let appended = sqlx::query(
            "UPDATE job_runs SET logs = right(logs || $3 || chr(10), $4) \
             WHERE job_id = $1 AND state = 'running' \
               AND attempt = (SELECT attempts FROM jobs WHERE id = $1 AND state = 'running' AND lease_owner = $2)",
        )
        .bind(job_id)
        .bind(owner)
        .bind(line.trim_end_matches('\n'))
        .bind(LOG_CAP_CHARS)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if appended == 0 {
            return Err(self.not_leased(job_id, owner).await);
        }
        Ok(())
    }

    async fn finish_run(
        &self,
        job_id: i64,
        owner: &str,
        outcome: RunOutcome,
    ) -> Result<Job, StoreError> {
        with_retries("finish run", || self.finish_once(job_id, owner, &outcome)).await
    }

    async fn cancel_job(&self, job_id: i64) -> Result<Job, StoreError> {
        with_retries("cancel job", || self.cancel_once(job_id)).await
    }

    async fn watermark(
        &self,
        id: &ResourceId,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT watermark FROM watermarks \
             WHERE resource_kind = $1 AND resource_name = $2 AND resource_variant = $3",
        )
        .bind(id.kind.as_str())
        .bind(&id.name)
        .bind(&id.variant)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn advance_watermark(
        &self,
        id: &ResourceId,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO watermarks (resource_kind, resource_name, resource_variant, watermark, updated_at) \
             VALUES ($1, $2, $3, $4, now()) \
             ON CONFLICT (resource_kind, resource_name, resource_variant) DO UPDATE \
               SET watermark = GREATEST(watermarks.watermark, EXCLUDED.watermark), updated_at = now()",
        )
        .bind(id.kind.as_str())
        .bind(&id.name)
        .bind(&id.variant)
        .bind(to)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.constraint() == Some("watermarks_resource_fkey") => {
                Err(StoreError::NotFound(id.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn catalog_version(&self) -> Result<(i64, i64), StoreError> {
        // Every change bumps a row's revision, and a new row adds one: the pair only grows.
        Ok(sqlx::query_as(
            "SELECT count(*)::bigint, coalesce(sum(revision), 0)::bigint FROM resources",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn watermarks(
        &self,
    ) -> Result<Vec<(ResourceId, chrono::DateTime<chrono::Utc>)>, StoreError> {
        let rows = sqlx::query_as(crate::backend::WATERMARKS_SELECT)
            .fetch_all(&self.pool)
            .await?;
        crate::backend::decode_watermarks(rows)
    }

    async fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        let rows: Vec<ScheduleRow> = sqlx::query_as(SCHEDULE_SELECT)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(ScheduleRow::decode).collect()
    }

    async fn enqueue_due_schedules(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Job>, StoreError> {
        with_retries("enqueue scheduled runs", || self.enqueue_due_once(now)).await
    }
}

impl PostgresStore {
    async fn enqueue_due_once(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Job>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // SKIP LOCKED: another replica enqueuing the same schedules takes other rows, or
        // none; the row's next_run_at moves on in the same transaction as the new job.
        let due: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT resource_kind, resource_name, resource_variant, cron FROM schedules \
             WHERE next_run_at <= $1 ORDER BY next_run_at LIMIT 100 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut enqueued = Vec::new();
        for (kind, name, variant, cron) in due {
            let resource = ResourceId::new(crate::backend::parse_kind(&kind)?, name, variant);
            let busy: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE resource_kind = $1 AND resource_name = $2 \
                   AND resource_variant = $3 AND state IN ('queued', 'running'))",
            )
            .bind(&kind)
            .bind(&resource.name)
            .bind(&resource.variant)
            .fetch_one(&mut *tx)
            .await?;
            let next = next_run(&cron, now)?;
            if busy {
                sqlx::query(
                    "UPDATE schedules SET next_run_at = $4, skipped_runs = skipped_runs + 1 \
                     WHERE resource_kind = $1 AND resource_name = $2 AND resource_variant = $3",
                )
                .bind(&kind)
                .bind(&resource.name)
                .bind(&resource.variant)
                .bind(next)
                .execute(&mut *tx)
                .await?;
                tracing::info!(resource = %resource, "scheduled run skipped: the previous one is still queued or running");
                continue;
            }
            let job = insert_job(
                &mut tx,
                &NewJob {
                    kind: JobKind::Materialization,
                    resource: resource.clone(),
                    max_attempts: APPLY_JOB_MAX_ATTEMPTS,
                },
            )
            .await?;
            sqlx::query(
                "UPDATE schedules SET next_run_at = $4, last_enqueued_at = now(), last_job_id = $5 \
                 WHERE resource_kind = $1 AND resource_name = $2 AND resource_variant = $3",
            )
            .bind(&kind)
            .bind(&resource.name)
            .bind(&resource.variant)
            .bind(next)
            .bind(job.id)
            .execute(&mut *tx)
            .await?;
            tracing::info!(resource = %resource, job = job.id, "scheduled materialization enqueued");
            enqueued.push(job);
        }
        tx.commit().await?;
        Ok(enqueued)
    }
}
