//! The executors of the jobs an apply enqueues: a SQL transformation, a training-set
//! build and a materialization (a full refresh of a feature's online table).
//!
//! Upstreams: a job whose upstream source failed fails naming it; a job whose upstream
//! is still pending or running fails with "waiting for upstream X (status)", which the
//! coordinator retries with back-off while attempts remain. The coordinator claims jobs
//! oldest first and an apply enqueues them in dependency order, so with one replica
//! upstreams normally finish first; a long upstream can still exhaust a downstream
//! job's attempts. Waiting on the lineage DAG instead is issue 5.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use futures::StreamExt;
use quiver_coordinator::{ExecutionResult, JobContext, JobExecutor};
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
    vec![
        (
            JobKind::Transformation,
            Arc::new(TransformationExecutor(runtime.clone())) as Arc<dyn JobExecutor>,
        ),
        (
            JobKind::TrainingSet,
            Arc::new(TrainingSetExecutor(runtime.clone())),
        ),
        (
            JobKind::Materialization,
            Arc::new(MaterializationExecutor(runtime.clone())),
        ),
    ]
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

/// Copies a feature's latest value per entity into its online table (full refresh).
pub struct MaterializationExecutor(pub Arc<Runtime>);

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
        let (query, table, source, source_record) = runtime
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
        log(
            context,
            format!(
                "materializing from provider `{}` into `{online_provider}` (full refresh)",
                source.provider
            ),
        )
        .await;
        let started = Utc::now();
        let mut batches = offline
            .latest_values(&query)
            .await
            .map_err(RuntimeError::provider(&source.provider))
            .map_err(message)?;
        let mut pending: Vec<OnlineRow> = Vec::with_capacity(WRITE_BATCH_ROWS);
        let mut total = WriteReport::default();
        let mut done: i64 = 0;
        let write = |rows: Vec<OnlineRow>| {
            let online = online.clone();
            let table = table.table.clone();
            let provider = online_provider.clone();
            async move {
                online
                    .write(&table, &rows)
                    .await
                    .map_err(RuntimeError::provider(&provider))
                    .map_err(message)
            }
        };
        while let Some(batch) = batches.next().await {
            let batch = batch
                .map_err(RuntimeError::provider(&source.provider))
                .map_err(message)?;
            pending.extend(online_rows(&batch, started)?);
            while pending.len() >= WRITE_BATCH_ROWS {
                let rest = pending.split_off(WRITE_BATCH_ROWS);
                let chunk = std::mem::replace(&mut pending, rest);
                done += chunk.len() as i64;
                let report = write(chunk).await?;
                total.written += report.written;
                total.skipped_older += report.skipped_older;
                context.progress(done, None);
            }
        }
        if !pending.is_empty() {
            done += pending.len() as i64;
            let report = write(pending).await?;
            total.written += report.written;
            total.skipped_older += report.skipped_older;
        }
        context.progress(done, Some(done));
        log(
            context,
            format!(
                "materialized {done} entities: {} written, {} skipped (an equal or newer value was stored)",
                total.written, total.skipped_older
            ),
        )
        .await;
        Ok(Some(done))
    }
}
