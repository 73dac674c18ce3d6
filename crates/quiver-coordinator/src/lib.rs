//! The job coordinator. Each `quiver serve` replica runs one [`Coordinator`]: it claims
//! due jobs from the metadata store under a lease, renews the lease by heartbeat while
//! an executor works, and records the outcome. There is no leader: the store's claim
//! (`FOR UPDATE SKIP LOCKED` on Postgres) guarantees that two replicas never run the same
//! job at once, and an expired lease hands a crashed replica's job to another.
//!
//! Executors are registered per [`JobKind`]; a replica only claims kinds it can run, so
//! jobs wait in the queue until a replica with the right executor is up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use quiver_metadata::{Job, JobKind, JobRun, MetadataStore, RunOutcome, StoreError};
use tokio::sync::watch;
use tracing::{info, warn};

/// What an executor reports: rows written on success, or why it did not finish.
pub type ExecutionResult = Result<Option<i64>, JobError>;

/// Why an execution did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// The work failed (no secrets in the message): retried with back-off while attempts
    /// remain, then the job fails with it.
    Failed(String),
    /// An upstream in the lineage DAG is not ready yet (`waiting for upstream …`): the
    /// job is queued again after [`CoordinatorConfig::upstream_poll`] without using an
    /// attempt, so a slow upstream never exhausts its downstream jobs.
    Waiting(String),
}

impl From<String> for JobError {
    fn from(message: String) -> Self {
        JobError::Failed(message)
    }
}

impl From<&str> for JobError {
    fn from(message: &str) -> Self {
        JobError::Failed(message.to_string())
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Failed(message) | JobError::Waiting(message) => f.write_str(message),
        }
    }
}

/// Runs one kind of job.
#[async_trait]
pub trait JobExecutor: Send + Sync {
    /// # Contract
    /// Idempotent: a job may run again after a crash or a lost lease, so outputs must be
    /// written to attempt-independent locations and published atomically.
    ///
    /// # Errors
    /// An error message (no secrets); the coordinator retries with back-off while
    /// attempts remain.
    async fn execute(&self, job: &Job, context: &JobContext) -> ExecutionResult;
}

/// Handed to executors: logs and progress for the current run.
pub struct JobContext {
    store: Arc<dyn MetadataStore>,
    owner: String,
    job_id: i64,
    progress: watch::Sender<(i64, Option<i64>)>,
}

impl JobContext {
    /// Append a line to the run's logs.
    pub async fn log(&self, line: &str) -> Result<(), StoreError> {
        self.store.append_log(self.job_id, &self.owner, line).await
    }

    /// Record progress; it reaches the store with the next heartbeat.
    pub fn progress(&self, done: i64, total: Option<i64>) {
        self.progress.send_replace((done, total));
    }
}

/// Settings of a coordinator.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
    /// How often to look for work when the queue is empty.
    pub poll_interval: Duration,
    /// Identity written into leases; unique per replica.
    pub owner: String,
    /// How long a job waiting for an upstream stays queued before it looks again.
    pub upstream_poll: Duration,
    /// Jobs this replica runs at the same time (at least 1). More than one lets a
    /// materialization's writes to the online store overlap another job's reads and
    /// compute, and keeps a long training set from holding up materializations.
    pub concurrency: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            owner: format!(
                "quiver-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ),
            upstream_poll: Duration::from_secs(2),
            concurrency: 1,
        }
    }
}

#[derive(Clone)]
pub struct Coordinator {
    store: Arc<dyn MetadataStore>,
    executors: HashMap<JobKind, Arc<dyn JobExecutor>>,
    config: CoordinatorConfig,
}

impl Coordinator {
    pub fn new(store: Arc<dyn MetadataStore>, config: CoordinatorConfig) -> Self {
        Coordinator {
            store,
            executors: HashMap::new(),
            config,
        }
    }

    pub fn register(mut self, kind: JobKind, executor: Arc<dyn JobExecutor>) -> Self {
        self.executors.insert(kind, executor);
        self
    }

    pub fn kinds(&self) -> Vec<JobKind> {
        let mut kinds: Vec<JobKind> = self.executors.keys().copied().collect();
        kinds.sort_by_key(|k| k.as_str());
        kinds
    }

    /// Run jobs until `shutdown` turns true. Store errors are logged and retried after
    /// the poll interval, so a restarting database does not stop the coordinator.
    pub async fn run(&self, shutdown: watch::Receiver<bool>) {
        let slots = self.config.concurrency.max(1);
        info!(owner = %self.config.owner, kinds = ?self.kinds(), slots, "coordinator started");
        // One claim loop per slot; the store's claim keeps them (like replicas) from
        // taking the same job. Spawned, so their CPU work runs in parallel.
        let mut others = tokio::task::JoinSet::new();
        for _ in 1..slots {
            let coordinator = self.clone();
            let shutdown = shutdown.clone();
            others.spawn(async move { coordinator.claim_loop(false, shutdown).await });
        }
        self.claim_loop(true, shutdown).await;
        while let Some(done) = others.join_next().await {
            if let Err(error) = done {
                warn!(%error, "a coordinator slot ended abnormally");
            }
        }
        info!(owner = %self.config.owner, "coordinator stopped");
    }

    /// Claim and run jobs one after another until `shutdown`; the first slot also turns
    /// due schedules into jobs.
    async fn claim_loop(&self, schedules: bool, mut shutdown: watch::Receiver<bool>) {
        let mut schedules_checked: Option<tokio::time::Instant> = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Due schedules become jobs here, at most once per poll interval; every replica
            // does it and the store makes each due run one job.
            if schedules
                && schedules_checked.is_none_or(|t| t.elapsed() >= self.config.poll_interval)
            {
                schedules_checked = Some(tokio::time::Instant::now());
                if let Err(error) = self.enqueue_due_schedules().await {
                    warn!(%error, "coordinator could not enqueue scheduled runs");
                }
            }
            let worked = match self.run_once().await {
                Ok(worked) => worked,
                Err(error) => {
                    warn!(%error, "coordinator could not claim work");
                    false
                }
            };
            if !worked {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    /// Turn due materialization schedules into jobs (only on a replica that can run
    /// them). Returns how many were enqueued.
    pub async fn enqueue_due_schedules(&self) -> Result<usize, StoreError> {
        if !self.executors.contains_key(&JobKind::Materialization) {
            return Ok(0);
        }
        Ok(self
            .store
            .enqueue_due_schedules(chrono::Utc::now())
            .await?
            .len())
    }

    /// Claim and run at most one job. Returns whether a job was run.
    pub async fn run_once(&self) -> Result<bool, StoreError> {
        let kinds = self.kinds();
        if kinds.is_empty() {
            return Ok(false);
        }
        let Some((job, run)) = self
            .store
            .claim_job(&self.config.owner, &kinds, self.config.lease)
            .await?
        else {
            return Ok(false);
        };
        self.execute(job, run).await?;
        Ok(true)
    }

    async fn execute(&self, job: Job, run: JobRun) -> Result<(), StoreError> {
        let Some(executor) = self.executors.get(&job.kind).cloned() else {
            return Err(StoreError::JobState(format!(
                "no executor for {} jobs",
                job.kind
            )));
        };
        info!(job = job.id, kind = %job.kind, resource = %job.resource, attempt = run.attempt, "job started");
        let (progress_tx, mut progress_rx) = watch::channel((0i64, None));
        let context = JobContext {
            store: self.store.clone(),
            owner: self.config.owner.clone(),
            job_id: job.id,
            progress: progress_tx,
        };
        let started = tokio::time::Instant::now();
        let mut heartbeat = tokio::time::interval(self.config.lease / 3);
        heartbeat.tick().await;
        let work = executor.execute(&job, &context);
        tokio::pin!(work);
        let result = loop {
            tokio::select! {
                result = &mut work => break Some(result),
                _ = heartbeat.tick() => {
                    let (done, total) = *progress_rx.borrow_and_update();
                    match self.store.heartbeat(job.id, &self.config.owner, self.config.lease, done, total).await {
                        Ok(()) => {}
                        // The lease went to someone else (or the job was cancelled): stop
                        // working so two replicas never write the same output at once.
                        Err(StoreError::JobState(reason)) => {
                            warn!(job = job.id, %reason, "job abandoned: lease lost");
                            break None;
                        }
                        Err(error) => warn!(job = job.id, %error, "heartbeat failed; will retry"),
                    }
                }
            }
        };
        let Some(result) = result else {
            return Ok(());
        };
        let outcome = match result {
            Ok(rows_written) => RunOutcome::Succeeded { rows_written },
            Err(JobError::Failed(error)) => RunOutcome::Failed { error },
            Err(JobError::Waiting(reason)) => RunOutcome::Waiting {
                reason,
                retry_after: self.config.upstream_poll,
            },
        };
        let finished = self
            .store
            .finish_run(job.id, &self.config.owner, outcome)
            .await?;
        info!(
            job = job.id,
            state = %finished.state,
            duration_ms = started.elapsed().as_millis() as u64,
            "job finished"
        );
        Ok(())
    }
}
