//! The SQLite backend: the embedded default, one file (`quiver.db`) under a data
//! directory, so `quiver serve` runs on a laptop with no services.
//!
//! Concurrency model: SQLite has one writer at a time. Writes go through a pool of one
//! connection, so writers in this process queue for it in order, and every write
//! transaction starts with `BEGIN IMMEDIATE`, taking the database write lock up front:
//! a deferred transaction that reads and then writes can fail with SQLITE_BUSY when it
//! tries to upgrade, while an immediate one simply waits (`busy_timeout`) for another
//! process (say, a CLI apply next to a running server). Reads use a separate pool and,
//! in WAL mode, never block on the writer. Times are the process clock, stored as
//! fixed-width RFC 3339 UTC text so text order is time order.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use quiver_core::{Definition, Kind, ResourceId, SourcedDefinition, Status};
use quiver_lineage::{Direction, Edge};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use crate::backend::{
    contains_pattern, contention, decode_edges, definition_json, initial_status, job_backoff,
    job_not_found, lease_lost, log_applied, page, page_window, parse_definition, parse_job_state,
    resolve_lost_create, tags_json, with_retries, DefinitionRow, EdgeRow, JobRow, JobRunRow,
    ResourceRow, VariantRow, APPLY_JOB_MAX_ATTEMPTS, LEASE_EXPIRED, LOG_CAP_CHARS,
};
use crate::backend::{next_run, parse_kind, ScheduleRow, SCHEDULE_SELECT};
use crate::error::StoreError;
use crate::jobs::{Job, JobKind, JobQuery, JobRun, JobState, NewJob, RunOutcome, Schedule};
use crate::plan::{plan_batch, Plan, PlanAction, PlannedBatch, SnapshotReader};
use crate::records::{ListQuery, Page, ResourceRecord, VariantSummary};
use crate::store::MetadataStore;

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The database file inside the data directory.
const DATABASE_FILE: &str = "quiver.db";

/// Read connections; reads run concurrently with the writer in WAL mode.
const READ_CONNECTIONS: u32 = 4;

/// How long a write waits for another process holding the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Columns decoded by [`ResourceRow`], from `resources r` joined to `default_variants d`.
macro_rules! resource_select {
    () => {
        "SELECT r.kind, r.name, r.variant, r.definition, r.status, r.error, \
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

/// Edges reachable from the resources in `$1` (a JSON array of `[kind, name, variant]`)
/// within `$2` steps. `walk` holds the resources fewer than `$2` steps away; the edges
/// leaving them are the answer. `$from`/`$to` pick the direction.
macro_rules! walk_edges {
    ($from:literal, $to:literal) => {
        concat!(
            "WITH RECURSIVE walk (id, depth) AS ( \
                 SELECT r.id, 0 FROM json_each($1) AS w \
                 JOIN resources r ON r.kind = json_extract(w.value, '$[0]') \
                   AND r.name = json_extract(w.value, '$[1]') AND r.variant = json_extract(w.value, '$[2]') \
               UNION \
                 SELECT e.", $to, ", walk.depth + 1 FROM walk JOIN edges e ON e.", $from, " = walk.id \
                 WHERE walk.depth + 1 < $2 \
             ) \
             SELECT DISTINCT u.kind AS up_kind, u.name AS up_name, u.variant AS up_variant, \
                    d.kind AS down_kind, d.name AS down_name, d.variant AS down_variant \
             FROM walk \
             JOIN edges e ON e.", $from, " = walk.id \
             JOIN resources u ON u.id = e.upstream_id \
             JOIN resources d ON d.id = e.downstream_id"
        )
    };
}

/// A timestamp as stored: RFC 3339, UTC, always six fractional digits.
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn now() -> String {
    ts(Utc::now())
}

/// `now + delay`; a delay too large to represent means "never".
fn later(delay: Duration) -> String {
    let now = Utc::now();
    let at = chrono::Duration::from_std(delay)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    ts(at)
}

/// The SQLite metadata store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Exactly one connection: in-process writers queue here.
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Open (creating when absent) `DATA_DIR/quiver.db` and run the migrations.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        tokio::fs::create_dir_all(data_dir)
            .await
            .map_err(|e| StoreError::Invalid {
                origin: format!("data directory {}", data_dir.display()),
                message: format!("cannot create it: {e}"),
            })?;
        let options = SqliteConnectOptions::new().filename(data_dir.join(DATABASE_FILE));
        Self::open_with(options, false).await
    }

    /// Open a `sqlite:` URL (`sqlite://path/to/quiver.db`, `sqlite::memory:`), creating
    /// the file when absent, and run the migrations.
    pub async fn connect_url(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?;
        // An in-memory database lives and dies with its one connection, so readers and
        // the writer must share that connection.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        Self::open_with(options, in_memory).await
    }

    async fn open_with(options: SqliteConnectOptions, in_memory: bool) -> Result<Self, StoreError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let mut writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1);
        if in_memory {
            writer = writer.idle_timeout(None).max_lifetime(None);
        }
        let writer = writer.connect_with(options.clone()).await?;
        MIGRATOR.run(&writer).await?;
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READ_CONNECTIONS)
                .connect_with(options)
                .await?
        };
        tracing::info!(backend = "sqlite", "metadata store ready");
        Ok(SqliteStore { writer, reader })
    }

    /// A write transaction holding the database write lock from its first statement.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn apply_once(&self, batch: &[SourcedDefinition]) -> Result<Plan, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut snapshot = Snapshot::new(&mut tx);
        let mut planned = plan_batch(&mut snapshot, batch.to_vec()).await?;
        let revisions = snapshot.revisions;
        let conflicts = planned.plan.conflicts();
        if !conflicts.is_empty() {
            return Err(StoreError::Conflict { conflicts });
        }
        write_planned(&mut tx, &mut planned, &revisions).await?;
        tx.commit().await?;
        log_applied("sqlite", &planned);
        Ok(planned.plan)
    }

    async fn claim_once(
        &self,
        owner: &str,
        kinds_json: &str,
        lease: Duration,
    ) -> Result<Option<(Job, JobRun)>, StoreError> {
        // The write lock makes this transaction the only claimer: no two claimers can
        // pick the same row.
        let mut tx = self.begin_write().await?;
        loop {
            let now = now();
            let candidate: Option<(i64, String, i32, i32)> = sqlx::query_as(
                "SELECT id, state, attempts, max_attempts FROM jobs \
                 WHERE kind IN (SELECT value FROM json_each($1)) \
                   AND ((state = 'queued' AND run_after <= $2) \
                     OR (state = 'running' AND lease_expires_at <= $2)) \
                 ORDER BY run_after, id \
                 LIMIT 1",
            )
            .bind(kinds_json)
            .bind(&now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((job_id, state, attempts, max_attempts)) = candidate else {
                tx.commit().await?;
                return Ok(None);
            };
            if parse_job_state(&state)? == JobState::Running {
                // Its holder stopped renewing the lease: that attempt is over.
                sqlx::query(
                    "UPDATE job_runs SET state = 'failed', finished_at = $2, error = $3 \
                     WHERE job_id = $1 AND state = 'running'",
                )
                .bind(job_id)
                .bind(&now)
                .bind(LEASE_EXPIRED)
                .execute(&mut *tx)
                .await?;
                if attempts >= max_attempts {
                    let job: JobRow = sqlx::query_as(concat!(
                        "UPDATE jobs SET state = 'failed', error = $3, lease_owner = NULL, \
                             lease_expires_at = NULL, finished_at = $2, updated_at = $2 \
                         WHERE id = $1 RETURNING ",
                        job_columns!()
                    ))
                    .bind(job_id)
                    .bind(&now)
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
                     lease_expires_at = $4, started_at = COALESCE(started_at, $3), updated_at = $3, \
                     progress_done = 0, progress_total = NULL \
                 WHERE id = $1 RETURNING ",
                job_columns!()
            ))
            .bind(job_id)
            .bind(owner)
            .bind(&now)
            .bind(later(lease))
            .fetch_one(&mut *tx)
            .await?;
            let job = job.decode()?;
            let run: JobRunRow = sqlx::query_as(concat!(
                "INSERT INTO job_runs (job_id, attempt, state, lease_owner, started_at) \
                 VALUES ($1, $2, 'running', $3, $4) RETURNING ",
                run_columns!()
            ))
            .bind(job.id)
            .bind(job.attempts)
            .bind(owner)
            .bind(&now)
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
        let mut tx = self.begin_write().await?;
        let job = read_job(&mut tx, job_id).await?;
        if job.state != JobState::Running || job.lease_owner.as_deref() != Some(owner) {
            return Err(lease_lost(job_id, owner));
        }
        let now = now();
        let finished: JobRow = match outcome {
            RunOutcome::Succeeded { rows_written } => {
                sqlx::query(
                    "UPDATE job_runs SET state = 'succeeded', finished_at = $3, rows_written = $4 \
                     WHERE job_id = $1 AND attempt = $2",
                )
                .bind(job_id)
                .bind(job.attempts)
                .bind(&now)
                .bind(rows_written)
                .execute(&mut *tx)
                .await?;
                set_resource_status(&mut tx, &job.resource, Status::Ready, None).await?;
                sqlx::query_as(concat!(
                    "UPDATE jobs SET state = 'succeeded', lease_owner = NULL, lease_expires_at = NULL, \
                         finished_at = $2, updated_at = $2 \
                     WHERE id = $1 RETURNING ",
                    job_columns!()
                ))
                .bind(job_id)
                .bind(&now)
                .fetch_one(&mut *tx)
                .await?
            }
            RunOutcome::Failed { error } => {
                sqlx::query(
                    "UPDATE job_runs SET state = 'failed', finished_at = $3, error = $4 \
                     WHERE job_id = $1 AND attempt = $2",
                )
                .bind(job_id)
                .bind(job.attempts)
                .bind(&now)
                .bind(error)
                .execute(&mut *tx)
                .await?;
                if job.attempts < job.max_attempts {
                    // Another attempt after a back-off; the resource waits for it.
                    set_resource_status(&mut tx, &job.resource, Status::Pending, None).await?;
                    sqlx::query_as(concat!(
                        "UPDATE jobs SET state = 'queued', error = $3, lease_owner = NULL, \
                             lease_expires_at = NULL, updated_at = $2, run_after = $4 \
                         WHERE id = $1 RETURNING ",
                        job_columns!()
                    ))
                    .bind(job_id)
                    .bind(&now)
                    .bind(error)
                    .bind(later(job_backoff(job.attempts)))
                    .fetch_one(&mut *tx)
                    .await?
                } else {
                    set_resource_status(&mut tx, &job.resource, Status::Failed, Some(error))
                        .await?;
                    sqlx::query_as(concat!(
                        "UPDATE jobs SET state = 'failed', error = $3, lease_owner = NULL, \
                             lease_expires_at = NULL, finished_at = $2, updated_at = $2 \
                         WHERE id = $1 RETURNING ",
                        job_columns!()
                    ))
                    .bind(job_id)
                    .bind(&now)
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
                    "UPDATE jobs SET state = 'queued', attempts = attempts - 1, error = $3, \
                         lease_owner = NULL, lease_expires_at = NULL, updated_at = $2, run_after = $4 \
                     WHERE id = $1 RETURNING ",
                    job_columns!()
                ))
                .bind(job_id)
                .bind(&now)
                .bind(reason)
                .bind(later(*retry_after))
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
        let mut tx = self.begin_write().await?;
        let job = read_job(&mut tx, job_id).await?;
        if job.state.is_terminal() {
            return Err(StoreError::JobState(format!(
                "job {job_id} is already {}; only queued or running jobs can be cancelled",
                job.state
            )));
        }
        let now = now();
        sqlx::query(
            "UPDATE job_runs SET state = 'cancelled', finished_at = $2, error = 'cancelled' \
             WHERE job_id = $1 AND state = 'running'",
        )
        .bind(job_id)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        let cancelled: JobRow = sqlx::query_as(concat!(
            "UPDATE jobs SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, \
                 finished_at = $2, updated_at = $2 \
             WHERE id = $1 RETURNING ",
            job_columns!()
        ))
        .bind(job_id)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await?;
        // A resource waiting for this job would otherwise stay pending or running forever.
        sqlx::query(
            "UPDATE resources SET status = 'failed', error = $4, updated_at = $5, revision = revision + 1 \
             WHERE kind = $1 AND name = $2 AND variant = $3 AND status IN ('pending', 'running')",
        )
        .bind(job.resource.kind.as_str())
        .bind(&job.resource.name)
        .bind(&job.resource.variant)
        .bind(format!("job {job_id} was cancelled"))
        .bind(&now)
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
            .fetch_one(&self.reader)
            .await
        {
            Ok(true) => lease_lost(job_id, owner),
            Ok(false) => job_not_found(job_id),
            Err(e) => e.into(),
        }
    }
}

/// The planner's reads, inside the apply transaction (or a read transaction for
/// `plan`). Remembers the revision of every definition it read, so an in-place update
/// can check that the row is still the one planned against.
struct Snapshot<'c> {
    conn: &'c mut SqliteConnection,
    revisions: HashMap<ResourceId, i64>,
}

impl<'c> Snapshot<'c> {
    fn new(conn: &'c mut SqliteConnection) -> Self {
        Snapshot {
            conn,
            revisions: HashMap::new(),
        }
    }
}

/// Ids as a JSON array of `[kind, name, variant]`, read back with `json_each`: SQLite
/// has no array parameters, and one bound value keeps the SQL text fixed.
fn ids_json(ids: &[ResourceId]) -> String {
    let triples: Vec<[&str; 3]> = ids
        .iter()
        .map(|id| [id.kind.as_str(), id.name.as_str(), id.variant.as_str()])
        .collect();
    serde_json::json!(triples).to_string()
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
        let pairs: Vec<[&str; 2]> = names
            .iter()
            .map(|(k, n)| [k.as_str(), n.as_str()])
            .collect();
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT d.kind, d.name, d.variant FROM json_each($1) AS w \
             JOIN default_variants d ON d.kind = json_extract(w.value, '$[0]') \
               AND d.name = json_extract(w.value, '$[1]')",
        )
        .bind(serde_json::json!(pairs).to_string())
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
        let rows: Vec<DefinitionRow> = sqlx::query_as(
            "SELECT r.kind, r.name, r.variant, r.definition, r.revision FROM json_each($1) AS w \
             JOIN resources r ON r.kind = json_extract(w.value, '$[0]') \
               AND r.name = json_extract(w.value, '$[1]') AND r.variant = json_extract(w.value, '$[2]')",
        )
        .bind(ids_json(ids))
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
    conn: &mut SqliteConnection,
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
    let rows: Vec<EdgeRow> = sqlx::query_as(sql)
        .bind(ids_json(ids))
        .bind(i64::from(depth))
        .fetch_all(conn)
        .await?;
    decode_edges(rows)
}

/// Perform the planned writes: every row first (in the planner's sorted order), then
/// edges, default variants and jobs, which refer to rows. The write lock is held, so a
/// create cannot race another writer here; the conflict handling mirrors Postgres so
/// both backends share one behaviour even if that ever changes.
async fn write_planned(
    conn: &mut SqliteConnection,
    batch: &mut PlannedBatch,
    revisions: &HashMap<ResourceId, i64>,
) -> Result<(), StoreError> {
    let now = now();
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
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
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
                .bind(&now)
                .fetch_optional(&mut *conn)
                .await?;
                match inserted {
                    Some(row_id) => {
                        row_ids.insert(index, row_id);
                    }
                    None => {
                        let stored: String = sqlx::query_scalar(
                            "SELECT definition FROM resources WHERE kind = $1 AND name = $2 AND variant = $3",
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
                    "UPDATE resources SET definition = $4, owner = $5, description = $6, tags = $7, \
                         updated_at = $8, revision = revision + 1 \
                     WHERE kind = $1 AND name = $2 AND variant = $3 AND revision = $9 \
                     RETURNING id",
                )
                .bind(id.kind.as_str())
                .bind(&id.name)
                .bind(&id.variant)
                .bind(&json)
                .bind(w.definition.owner())
                .bind(w.definition.description())
                .bind(tags_json(&w.definition))
                .bind(&now)
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
                "INSERT INTO default_variants (kind, name, variant, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (kind, name) DO UPDATE SET variant = excluded.variant, updated_at = excluded.updated_at",
            )
            .bind(id.kind.as_str())
            .bind(&id.name)
            .bind(&id.variant)
            .bind(&now)
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
            .bind(next_run(cron, Utc::now())?.map(ts))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

async fn insert_job(conn: &mut SqliteConnection, job: &NewJob) -> Result<Job, StoreError> {
    if job.max_attempts < 1 {
        return Err(StoreError::Invalid {
            origin: format!("job for {}", job.resource),
            message: "max_attempts must be at least 1".into(),
        });
    }
    // SQLite names no constraint in a foreign-key error, so check the resource first;
    // the caller holds the write lock, so it cannot vanish in between.
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM resources WHERE kind = $1 AND name = $2 AND variant = $3)",
    )
    .bind(job.resource.kind.as_str())
    .bind(&job.resource.name)
    .bind(&job.resource.variant)
    .fetch_one(&mut *conn)
    .await?;
    if !exists {
        return Err(StoreError::NotFound(job.resource.to_string()));
    }
    let now = now();
    let row: JobRow = sqlx::query_as(concat!(
        "INSERT INTO jobs (kind, resource_kind, resource_name, resource_variant, state, max_attempts, \
             run_after, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'queued', $5, $6, $6, $6) RETURNING ",
        job_columns!()
    ))
    .bind(job.kind.as_str())
    .bind(job.resource.kind.as_str())
    .bind(&job.resource.name)
    .bind(&job.resource.variant)
    .bind(job.max_attempts)
    .bind(&now)
    .fetch_one(conn)
    .await?;
    row.decode()
}

/// The job row; the caller holds the write lock.
async fn read_job(conn: &mut SqliteConnection, job_id: i64) -> Result<Job, StoreError> {
    let row: Option<JobRow> = sqlx::query_as(concat!(
        "SELECT ",
        job_columns!(),
        " FROM jobs WHERE id = $1"
    ))
    .bind(job_id)
    .fetch_optional(conn)
    .await?;
    row.ok_or_else(|| job_not_found(job_id))?.decode()
}

/// Move a resource's status; the error text is kept only for `failed`. Returns whether
/// the resource exists.
async fn set_resource_status(
    conn: &mut SqliteConnection,
    id: &ResourceId,
    status: Status,
    error: Option<&str>,
) -> Result<bool, StoreError> {
    let error = error.filter(|_| status == Status::Failed);
    let updated = sqlx::query(
        "UPDATE resources SET status = $4, error = $5, updated_at = $6, revision = revision + 1 \
         WHERE kind = $1 AND name = $2 AND variant = $3",
    )
    .bind(id.kind.as_str())
    .bind(&id.name)
    .bind(&id.variant)
    .bind(status.as_str())
    .bind(error)
    .bind(now())
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated > 0)
}

/// `WHERE …` for a resource list; every value is bound.
fn push_list_filters(qb: &mut QueryBuilder<'_, Sqlite>, q: &ListQuery) {
    qb.push(" WHERE 1 = 1");
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
        qb.push(" AND EXISTS (SELECT 1 FROM json_each(r.tags) AS t WHERE t.value = ")
            .push_bind(tag.clone())
            .push(")");
    }
    if let Some(status) = q.status {
        qb.push(" AND r.status = ").push_bind(status.as_str());
    }
    if let Some(text) = &q.text {
        // SQLite's LIKE ignores ASCII case, like ILIKE for the ASCII names Quiver allows.
        let pattern = contains_pattern(text);
        qb.push(" AND (r.name LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR r.description LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
    if q.defaults_only {
        qb.push(" AND (d.variant IS NOT NULL OR r.variant = '')");
    }
}

#[async_trait]
impl MetadataStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn plan(&self, batch: Vec<SourcedDefinition>) -> Result<Plan, StoreError> {
        // A read transaction: one consistent snapshot for all of the planner's reads.
        let mut tx = self.reader.begin().await?;
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
        .fetch_optional(&self.reader)
        .await?;
        row.map(ResourceRow::decode).transpose()
    }

    async fn list(&self, query: &ListQuery) -> Result<Page<ResourceRecord>, StoreError> {
        let (limit, offset) = page_window(query.limit, query.offset);
        // Count and page from one snapshot so `total` matches the items.
        let mut tx = self.reader.begin().await?;
        let mut count = QueryBuilder::new(
            "SELECT COUNT(*) FROM resources r \
             LEFT JOIN default_variants d ON d.kind = r.kind AND d.name = r.name AND d.variant = r.variant",
        );
        push_list_filters(&mut count, query);
        let total: i64 = count.build_query_scalar().fetch_one(&mut *tx).await?;
        let mut select = QueryBuilder::new(resource_select!());
        push_list_filters(&mut select, query);
        select
            .push(" ORDER BY r.kind, r.name, r.variant LIMIT ")
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
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(VariantRow::decode).collect()
    }

    async fn lineage(
        &self,
        id: &ResourceId,
        direction: Direction,
        depth: u32,
    ) -> Result<Vec<Edge>, StoreError> {
        let mut tx = self.reader.begin().await?;
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM resources WHERE kind = $1 AND name = $2 AND variant = $3)",
        )
        .bind(id.kind.as_str())
        .bind(&id.name)
        .bind(&id.variant)
        .fetch_one(&mut *tx)
        .await?;
        if !exists {
            return Err(StoreError::NotFound(id.to_string()));
        }
        let edges = walk(&mut tx, std::slice::from_ref(id), direction, depth).await?;
        tx.rollback().await?;
        Ok(edges)
    }

    async fn set_status(
        &self,
        id: &ResourceId,
        status: Status,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.writer.acquire().await?;
        if set_resource_status(&mut conn, id, status, error).await? {
            Ok(())
        } else {
            Err(StoreError::NotFound(id.to_string()))
        }
    }

    async fn enqueue_job(&self, job: NewJob) -> Result<Job, StoreError> {
        let mut tx = self.begin_write().await?;
        let job = insert_job(&mut tx, &job).await?;
        tx.commit().await?;
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
        .fetch_optional(&self.reader)
        .await?;
        row.map(JobRow::decode).transpose()
    }

    async fn list_jobs(&self, query: &JobQuery) -> Result<Page<Job>, StoreError> {
        let (limit, offset) = page_window(query.limit, query.offset);
        let filters = |qb: &mut QueryBuilder<'_, Sqlite>| {
            qb.push(" WHERE 1 = 1");
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
        let mut tx = self.reader.begin().await?;
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
        .fetch_all(&self.reader)
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
        let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let kinds_json = serde_json::json!(kinds).to_string();
        with_retries("claim job", || self.claim_once(owner, &kinds_json, lease)).await
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
            "UPDATE jobs SET lease_expires_at = $3, progress_done = $4, progress_total = $5, updated_at = $6 \
             WHERE id = $1 AND state = 'running' AND lease_owner = $2",
        )
        .bind(job_id)
        .bind(owner)
        .bind(later(lease))
        .bind(progress_done)
        .bind(progress_total)
        .bind(now())
        .execute(&self.writer)
        .await?
        .rows_affected();
        if renewed == 0 {
            return Err(self.not_leased(job_id, owner).await);
        }
        Ok(())
    }

    async fn append_log(&self, job_id: i64, owner: &str, line: &str) -> Result<(), StoreError> {
        let appended = sqlx::query(
            "UPDATE job_runs SET logs = substr(logs || $3 || char(10), -$4) \
             WHERE job_id = $1 AND state = 'running' \
               AND attempt = (SELECT attempts FROM jobs WHERE id = $1 AND state = 'running' AND lease_owner = $2)",
        )
        .bind(job_id)
        .bind(owner)
        .bind(line.trim_end_matches('\n'))
        .bind(LOG_CAP_CHARS)
        .execute(&self.writer)
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

    async fn watermark(&self, id: &ResourceId) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT watermark FROM watermarks \
             WHERE resource_kind = $1 AND resource_name = $2 AND resource_variant = $3",
        )
        .bind(id.kind.as_str())
        .bind(&id.name)
        .bind(&id.variant)
        .fetch_optional(&self.reader)
        .await?)
    }

    async fn advance_watermark(
        &self,
        id: &ResourceId,
        to: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_retries("advance watermark", || async {
            let mut tx = self.begin_write().await?;
            // SQLite names no constraint in a foreign-key error: check the resource first.
            let exists: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM resources WHERE kind = $1 AND name = $2 AND variant = $3)",
            )
            .bind(id.kind.as_str())
            .bind(&id.name)
            .bind(&id.variant)
            .fetch_one(&mut *tx)
            .await?;
            if !exists {
                return Err(StoreError::NotFound(id.to_string()));
            }
            // Fixed-width RFC 3339 text compares like the instants it holds.
            sqlx::query(
                "INSERT INTO watermarks (resource_kind, resource_name, resource_variant, watermark, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (resource_kind, resource_name, resource_variant) DO UPDATE \
                   SET watermark = max(watermarks.watermark, excluded.watermark), updated_at = excluded.updated_at",
            )
            .bind(id.kind.as_str())
            .bind(&id.name)
            .bind(&id.variant)
            .bind(ts(to))
            .bind(now())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn catalog_version(&self) -> Result<(i64, i64), StoreError> {
        // Every change bumps a row's revision, and a new row adds one: the pair only grows.
        Ok(
            sqlx::query_as("SELECT count(*), coalesce(sum(revision), 0) FROM resources")
                .fetch_one(&self.reader)
                .await?,
        )
    }

    async fn watermarks(
        &self,
    ) -> Result<Vec<(ResourceId, chrono::DateTime<chrono::Utc>)>, StoreError> {
        let rows = sqlx::query_as(crate::backend::WATERMARKS_SELECT)
            .fetch_all(&self.reader)
            .await?;
        crate::backend::decode_watermarks(rows)
    }

    async fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        let rows: Vec<ScheduleRow> = sqlx::query_as(SCHEDULE_SELECT)
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(ScheduleRow::decode).collect()
    }

    async fn enqueue_due_schedules(&self, at: DateTime<Utc>) -> Result<Vec<Job>, StoreError> {
        with_retries("enqueue scheduled runs", || self.enqueue_due_once(at)).await
    }
}

impl SqliteStore {
    /// One write transaction (SQLite's single writer makes it exclusive), taken only
    /// when a read shows something is due: every replica polls this each second.
    async fn enqueue_due_once(&self, at: DateTime<Utc>) -> Result<Vec<Job>, StoreError> {
        let any_due: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM schedules WHERE next_run_at IS NOT NULL AND next_run_at <= $1)",
        )
        .bind(ts(at))
        .fetch_one(&self.reader)
        .await?;
        if !any_due {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let due: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT resource_kind, resource_name, resource_variant, cron FROM schedules \
             WHERE next_run_at IS NOT NULL AND next_run_at <= $1 ORDER BY next_run_at LIMIT 100",
        )
        .bind(ts(at))
        .fetch_all(&mut *tx)
        .await?;
        let mut enqueued = Vec::new();
        for (kind, name, variant, cron) in due {
            let resource = ResourceId::new(parse_kind(&kind)?, name, variant);
            let busy: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE resource_kind = $1 AND resource_name = $2 \
                   AND resource_variant = $3 AND state IN ('queued', 'running'))",
            )
            .bind(&kind)
            .bind(&resource.name)
            .bind(&resource.variant)
            .fetch_one(&mut *tx)
            .await?;
            let next = next_run(&cron, at)?.map(ts);
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
                "UPDATE schedules SET next_run_at = $4, last_enqueued_at = $5, last_job_id = $6 \
                 WHERE resource_kind = $1 AND resource_name = $2 AND resource_variant = $3",
            )
            .bind(&kind)
            .bind(&resource.name)
            .bind(&resource.variant)
            .bind(next)
            .bind(now())
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
