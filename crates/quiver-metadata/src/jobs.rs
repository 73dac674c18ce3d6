//! Jobs and their runs, designed for several coordinator replicas sharing one store:
//! a job is claimed under a lease (owner + expiry) that the holder renews by heartbeat;
//! an expired lease lets another replica take the job over. Every attempt is a run with
//! its own timing, row count, error and logs.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use quiver_core::ResourceId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Run a SQL transformation source into its output table.
    Transformation,
    /// Build a training set.
    TrainingSet,
    /// Copy the latest feature values into an online store.
    Materialization,
    /// Remove a resource's data from its providers.
    Deletion,
}

/// `queued → running → succeeded | failed | cancelled`; a running job whose lease
/// expires goes back to `queued` (another attempt) or to `failed` after the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

macro_rules! string_enum {
    ($t:ty, $what:literal, { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok(Self::$v),)*
                    other => Err(format!(concat!("unknown ", $what, " `{}`, expected one of: ", $($s, " "),*), other)),
                }
            }
        }
    };
}

string_enum!(JobKind, "job kind", {
    Transformation => "transformation",
    TrainingSet => "training_set",
    Materialization => "materialization",
    Deletion => "deletion",
});

string_enum!(JobState, "job state", {
    Queued => "queued",
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    Cancelled => "cancelled",
});

impl JobState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub kind: JobKind,
    pub resource: ResourceId,
    pub max_attempts: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    pub id: i64,
    pub kind: JobKind,
    pub resource: ResourceId,
    pub state: JobState,
    /// Attempts started so far.
    pub attempts: i32,
    pub max_attempts: i32,
    /// Not claimable before this time (back-off between attempts).
    pub run_after: DateTime<Utc>,
    /// Replica holding the lease while running.
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Last error, kept when the job is retried or fails.
    pub error: Option<String>,
    /// Progress of the current attempt (e.g. rows done / total).
    pub progress_done: i64,
    pub progress_total: Option<i64>,
}

/// One attempt of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobRun {
    pub id: i64,
    pub job_id: i64,
    pub attempt: i32,
    pub state: JobState,
    pub lease_owner: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub rows_written: Option<i64>,
    pub error: Option<String>,
    pub logs: String,
}

/// A feature's materialization schedule and how far it has got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Schedule {
    pub resource: ResourceId,
    /// Five-field cron expression, UTC.
    pub cron: String,
    /// The next run; `None` when the expression never matches again.
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_enqueued_at: Option<DateTime<Utc>>,
    /// The job of the last run enqueued.
    pub last_job_id: Option<i64>,
    /// Runs skipped because the previous one was still queued or running.
    pub skipped_runs: i64,
    /// The newest event time materialized so far (see `MetadataStore::watermark`).
    pub watermark: Option<DateTime<Utc>>,
}

/// Filters for listing jobs.
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    pub state: Option<JobState>,
    pub resource: Option<ResourceId>,
    pub limit: u32,
    pub offset: u64,
}

/// How a run ended, reported by the job's holder.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    Succeeded {
        rows_written: Option<i64>,
    },
    /// Retried with back-off while attempts remain, then failed with this error.
    Failed {
        error: String,
    },
    /// The job could not start because an upstream in the lineage DAG is not ready yet:
    /// the run is discarded and does not count as an attempt, the job is queued again
    /// after `retry_after`, and `reason` is kept as the job's error so listings say what
    /// it waits for. The resource stays pending.
    Waiting {
        reason: String,
        retry_after: std::time::Duration,
    },
}
