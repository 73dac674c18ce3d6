//! The executors of the jobs an apply enqueues: a SQL transformation, a training-set
//! build and a materialization (a full refresh of a feature's online table).
//!
//! Upstreams (the lineage DAG): a job whose upstream failed fails at once, naming it; a
//! job whose upstream is still pending or running answers `JobError::Waiting("waiting
//! for upstream X (status)")`, and the coordinator queues it again without using an
//! attempt, so however long an upstream takes, its downstream jobs start once it is
//! ready.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use quiver_coordinator::{ExecutionResult, JobContext, JobError, JobExecutor};
use quiver_core::definition::DEFAULT_LOOKBACK;
use quiver_core::ResourceRef;
use quiver_metadata::{Job, JobKind};
use quiver_provider_sdk::{OnlineRow, WriteReport};

use crate::convert::online_rows;
use crate::resolve::require_ready;
use crate::{Runtime, RuntimeError};

/// Rows written to an online store per call.
pub const WRITE_BATCH_ROWS: usize = 10_000;

/// The executors of every job kind the runtime runs, for `Coordinator::register`.
pub fn executors(runtime: &Arc<Runtime>) -> Vec<(JobKind, Arc<dyn JobExecutor>)> {
    let executors: Vec<(JobKind, Arc<dyn JobExecutor>)> = vec![
        (
            JobKind::Transformation,
            Arc::new(TransformationExecutor(runtime.clone())),
        ),
        (
            JobKind::TrainingSet,
            Arc::new(TrainingSetExecutor(runtime.clone())),
        ),
        (
            JobKind::Materialization,
            Arc::new(MaterializationExecutor(runtime.clone())),
        ),
    ];
    executors
        .into_iter()
        .map(|(kind, inner)| {
            let measured: Arc<dyn JobExecutor> = Arc::new(Measured {
                inner,
                metrics: runtime.metrics().clone(),
            });
            (kind, measured)
        })
        .collect()
}

/// Records each attempt's duration and outcome in the metrics.
struct Measured {
    inner: Arc<dyn JobExecutor>,
    metrics: Arc<crate::Metrics>,
}

#[async_trait]
impl JobExecutor for Measured {
    async fn execute(&self, job: &Job, context: &JobContext) -> ExecutionResult {
        let started = std::time::Instant::now();
        let result = self.inner.execute(job, context).await;
        let outcome = match &result {
            Ok(_) => "succeeded",
            Err(JobError::Failed(_)) => "failed",
            Err(JobError::Waiting(_)) => "waiting",
        };
        self.metrics
            .observe_job(job.kind.as_str(), outcome, started.elapsed());
        if let (JobKind::Materialization, Ok(Some(rows))) = (job.kind, &result) {
            self.metrics.add_rows_materialized(
                &format!("{}:{}", job.resource.name, job.resource.variant),
                (*rows).max(0) as u64,
            );
        }
        result
    }
}

fn reference(job: &Job) -> ResourceRef {
    ResourceRef::new(
        job.resource.name.clone(),
        Some(job.resource.variant.clone()),
    )
}

/// Logging is best effort: a lost log line must not fail the work.
async fn log(context: &JobContext, line: String) {
    if let Err(error) = context.log(&line).await {
        tracing::warn!(%error, "cannot append a job log line");
    }
}

fn message(error: RuntimeError) -> String {
    error.to_string()
}

/// Runs a SQL source into its output.
pub struct TransformationExecutor(pub Arc<Runtime>);

#[async_trait]
impl JobExecutor for TransformationExecutor {
    async fn execute(&self, job: &Job, context: &JobContext) -> ExecutionResult {
        let resolver = self.0.resolver();
        let (_, source) = resolver.source(&reference(job)).await.map_err(message)?;
        let (transformation, upstreams) =
            resolver.transformation(&source).await.map_err(message)?;
        for upstream in &upstreams {
            require_ready(upstream)?;
        }
        let store = self
            .0
            .providers()
            .offline(&source.provider)
            .await
            .map_err(message)?;
        log(
            context,
            format!(
                "running the transformation on provider `{}` over {} input(s)",
                source.provider,
                transformation.inputs.len()
            ),
        )
        .await;
        let rows = store
            .run_transformation(&transformation)
            .await
            .map_err(RuntimeError::provider(&source.provider))
            .map_err(message)?;
        log(context, format!("wrote {rows} rows")).await;
        Ok(Some(rows as i64))
    }
}

/// Builds a point-in-time training set.
pub struct TrainingSetExecutor(pub Arc<Runtime>);

#[async_trait]
impl JobExecutor for TrainingSetExecutor {
    async fn execute(&self, job: &Job, context: &JobContext) -> ExecutionResult {
        let resolver = self.0.resolver();
        let (_, training_set) = resolver
            .training_set(&reference(job))
            .await
            .map_err(message)?;
        let (query, provider, upstreams) = resolver
            .training_set_query(&training_set)
            .await
            .map_err(message)?;
        for upstream in &upstreams {
            require_ready(upstream)?;
        }
        let store = self
            .0
            .providers()
            .offline(&provider)
            .await
            .map_err(message)?;
        log(
            context,
            format!(
                "building the training set on provider `{provider}` with {} feature(s)",
                query.features.len()
            ),
        )
        .await;
        let rows = store
            .build_training_set(&query)
            .await
            .map_err(RuntimeError::provider(&provider))
            .map_err(message)?;
        log(context, format!("wrote {rows} rows")).await;
        Ok(Some(rows as i64))
    }
}

/// Copies a feature's latest value per entity into its online table: in full the first
/// time (or for a feature without event time), then incrementally from the stored
/// watermark minus the feature's look-back, so late rows are still picked up. Rows are
/// streamed from the offline store and written in chunks with at most
/// [`WRITE_CONCURRENCY`] writes in flight: the offline stream is only pulled as writes
/// finish (back-pressure), and the online store's event-time monotonic writes make the
/// order of concurrent chunks irrelevant. The watermark moves to the newest event time
/// written, only after every write succeeded.
pub struct MaterializationExecutor(pub Arc<Runtime>);

/// Online writes in flight per materialization.
pub const WRITE_CONCURRENCY: usize = 4;

/// What one chunk's write did.
struct ChunkDone {
    report: WriteReport,
    rows: usize,
    newest: Option<DateTime<Utc>>,
}

#[async_trait]
impl JobExecutor for MaterializationExecutor {
    async fn execute(&self, job: &Job, context: &JobContext) -> ExecutionResult {
        let runtime = &self.0;
        let (_, feature) = runtime
            .resolver()
            .feature(&reference(job))
            .await
            .map_err(message)?;
        let online_provider = feature.online_provider.clone().ok_or_else(|| {
            format!(
                "feature `{}:{}` has no online provider to materialize into",
                feature.name, feature.variant
            )
        })?;
        let (mut query, table, source, source_record) = runtime
            .resolver()
            .materialization(&feature)
            .await
            .map_err(message)?;
        require_ready(&source_record)?;
        let offline = runtime
            .providers()
            .offline(&source.provider)
            .await
            .map_err(message)?;
        let online = runtime
            .providers()
            .online(&online_provider)
            .await
            .map_err(message)?;
        online
            .create_table(&table)
            .await
            .map_err(RuntimeError::provider(&online_provider))
            .map_err(message)?;

        let timed = feature.timestamp_column.is_some();
        let watermark = if timed {
            runtime
                .store()
                .watermark(&job.resource)
                .await
                .map_err(|e| format!("reading the watermark: {e}"))?
        } else {
            None
        };
        let lookback = feature
            .materialization
            .as_ref()
            .and_then(|m| m.lookback)
            .map_or(DEFAULT_LOOKBACK, |d| d.0);
        let mode = match watermark {
            Some(w) if offline.capabilities().incremental_latest_values => {
                let since = chrono::Duration::from_std(lookback)
                    .ok()
                    .and_then(|l| w.checked_sub_signed(l))
                    .unwrap_or(DateTime::<Utc>::MIN_UTC);
                query.since = Some(since);
                format!(
                    "incremental from {} (watermark {} minus look-back {})",
                    since.to_rfc3339(),
                    w.to_rfc3339(),
                    humantime::format_duration(lookback)
                )
            }
            Some(_) => format!(
                "full refresh (provider `{}` cannot read incrementally)",
                source.provider
            ),
            None if timed => "full refresh (no watermark yet)".to_string(),
            None => "full refresh (the feature has no event time)".to_string(),
        };
        log(
            context,
            format!(
                "materializing from provider `{}` into `{online_provider}`: {mode}",
                source.provider
            ),
        )
        .await;

        let started = Utc::now();
        let batches = offline
            .latest_values(&query)
            .await
            .map_err(RuntimeError::provider(&source.provider))
            .map_err(message)?;
        let source_provider = source.provider.clone();
        let chunks = batches
            .map(move |batch| {
                batch
                    .map_err(|e| message(RuntimeError::provider(&source_provider)(e)))
                    .and_then(|batch| online_rows(&batch, started))
                    .map(|rows| futures::stream::iter(chunked(rows, WRITE_BATCH_ROWS).map(Ok)))
            })
            .try_flatten();
        let mut writes = chunks
            .map_ok(|rows: Vec<OnlineRow>| {
                let online = online.clone();
                let table = table.table.clone();
                let provider = online_provider.clone();
                async move {
                    let newest = rows.iter().map(|r| r.event_time).max();
                    let report = online
                        .write(&table, &rows)
                        .await
                        .map_err(RuntimeError::provider(&provider))
                        .map_err(message)?;
                    Ok::<_, String>(ChunkDone {
                        report,
                        rows: rows.len(),
                        newest,
                    })
                }
            })
            .try_buffer_unordered(WRITE_CONCURRENCY);
        let mut total = WriteReport::default();
        let mut done: i64 = 0;
        let mut newest: Option<DateTime<Utc>> = None;
        while let Some(chunk) = writes.try_next().await? {
            done += chunk.rows as i64;
            total.written += chunk.report.written;
            total.skipped_older += chunk.report.skipped_older;
            newest = newest.max(chunk.newest);
            context.progress(done, None);
        }
        context.progress(done, Some(done));
        if timed {
            if let Some(newest) = newest {
                runtime
                    .store()
                    .advance_watermark(&job.resource, newest)
                    .await
                    .map_err(|e| format!("recording the watermark: {e}"))?;
            }
        }
        log(
            context,
            format!(
                "materialized {done} entities: {} written, {} skipped (an equal or newer value was stored){}",
                total.written,
                total.skipped_older,
                match newest.filter(|_| timed) {
                    Some(n) => format!("; watermark {}", n.to_rfc3339()),
                    None => String::new(),
                }
            ),
        )
        .await;
        Ok(Some(done))
    }
}

/// `rows` in chunks of at most `size`, without copying them.
fn chunked(rows: Vec<OnlineRow>, size: usize) -> impl Iterator<Item = Vec<OnlineRow>> {
    let mut rows = rows.into_iter().peekable();
    std::iter::from_fn(move || {
        rows.peek()?;
        Some(rows.by_ref().take(size).collect())
    })
}
