//! The coordinator against a real embedded store: success, retries then failure, and a
//! cancelled job abandoned through its heartbeat.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use quiver_coordinator::{
    Coordinator, CoordinatorConfig, ExecutionResult, JobContext, JobError, JobExecutor,
};
use quiver_core::{Definition, Kind, SourcedDefinition, Status};
use quiver_metadata::{Job, JobKind, JobQuery, JobState, MetadataStore, SqliteStore};

fn doc(json: serde_json::Value) -> SourcedDefinition {
    SourcedDefinition {
        definition: serde_json::from_value::<Definition>(json).unwrap(),
        origin: "test".into(),
    }
}

async fn store_with_transformation() -> (tempfile::TempDir, Arc<dyn MetadataStore>, i64) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetadataStore> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    store
        .apply(vec![
            doc(
                serde_json::json!({"kind": "provider", "name": "files", "owner": "o",
                "config": {"type": "files", "root": "/tmp"}}),
            ),
            doc(
                serde_json::json!({"kind": "source", "name": "tx", "variant": "v1", "owner": "o",
                "provider": "files", "file": {"path": "tx.parquet"}}),
            ),
            doc(
                serde_json::json!({"kind": "source", "name": "agg", "variant": "v1", "owner": "o",
                "provider": "files", "sql": "SELECT * FROM {{ tx }}"}),
            ),
        ])
        .await
        .unwrap();
    let jobs = store
        .list_jobs(&JobQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(jobs.items.len(), 1, "the transformation enqueues one job");
    (dir, store, jobs.items[0].id)
}

fn config(lease_ms: u64) -> CoordinatorConfig {
    CoordinatorConfig {
        lease: Duration::from_millis(lease_ms),
        poll_interval: Duration::from_millis(10),
        owner: "test-replica".into(),
        upstream_poll: Duration::from_millis(50),
        concurrency: 1,
    }
}

struct Succeed;

#[async_trait]
impl JobExecutor for Succeed {
    async fn execute(&self, _job: &Job, context: &JobContext) -> ExecutionResult {
        context.log("computing").await.map_err(|e| e.to_string())?;
        context.progress(10, Some(10));
        Ok(Some(10))
    }
}

#[tokio::test]
async fn a_successful_job_makes_the_resource_ready() {
    let (_dir, store, job_id) = store_with_transformation().await;
    let agg = quiver_core::ResourceId::new(Kind::Source, "agg", "v1");
    let before = store
        .get(Kind::Source, "agg", Some("v1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.status, Status::Pending);

    let coordinator = Coordinator::new(store.clone(), config(3_000))
        .register(JobKind::Transformation, Arc::new(Succeed));
    assert!(coordinator.run_once().await.unwrap());
    assert!(!coordinator.run_once().await.unwrap(), "nothing left to do");

    let job = store.get_job(job_id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    let runs = store.job_runs(job_id).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].rows_written, Some(10));
    assert!(runs[0].logs.contains("computing"), "{}", runs[0].logs);
    let after = store
        .get(agg.kind, &agg.name, Some(&agg.variant))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.status, Status::Ready);
}

struct AlwaysFail(AtomicUsize);

#[async_trait]
impl JobExecutor for AlwaysFail {
    async fn execute(&self, _job: &Job, _context: &JobContext) -> ExecutionResult {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err("warehouse unreachable: connection refused".into())
    }
}

/// Says "waiting for upstream" a number of times, then succeeds.
struct WaitsThenSucceeds {
    waits: usize,
    calls: AtomicUsize,
}

#[async_trait]
impl JobExecutor for WaitsThenSucceeds {
    async fn execute(&self, _job: &Job, _context: &JobContext) -> ExecutionResult {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.waits {
            return Err(JobError::Waiting(
                "waiting for upstream source:tx:v1 (pending)".into(),
            ));
        }
        Ok(Some(7))
    }
}

#[tokio::test]
async fn waiting_for_an_upstream_never_exhausts_the_attempts() {
    let (_dir, store, job_id) = store_with_transformation().await;
    // Twice as many waits as the job has attempts.
    let executor = Arc::new(WaitsThenSucceeds {
        waits: 6,
        calls: AtomicUsize::new(0),
    });
    let coordinator = Coordinator::new(store.clone(), config(3_000))
        .register(JobKind::Transformation, executor.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut saw_reason = false;
    loop {
        coordinator.run_once().await.unwrap();
        let job = store.get_job(job_id).await.unwrap().unwrap();
        if job.state == JobState::Queued {
            saw_reason |=
                job.error.as_deref() == Some("waiting for upstream source:tx:v1 (pending)");
        }
        if job.state.is_terminal() {
            assert_eq!(job.state, JobState::Succeeded, "{job:?}");
            assert_eq!(job.attempts, 1, "waits use no attempt");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job never reached a terminal state"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_reason, "a waiting job says what it waits for");
    assert_eq!(executor.calls.load(Ordering::SeqCst), 7);
    let runs = store.job_runs(job_id).await.unwrap();
    assert_eq!(runs.len(), 1, "waits leave no runs behind: {runs:?}");
    assert_eq!(runs[0].rows_written, Some(7));
}

#[tokio::test]
async fn a_failing_job_is_retried_then_fails_with_its_message() {
    let (_dir, store, job_id) = store_with_transformation().await;
    let executor = Arc::new(AlwaysFail(AtomicUsize::new(0)));
    let coordinator = Coordinator::new(store.clone(), config(3_000))
        .register(JobKind::Transformation, executor.clone());
    // Back-off is 1 s then 2 s between attempts; keep claiming until the job is terminal.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        coordinator.run_once().await.unwrap();
        let job = store.get_job(job_id).await.unwrap().unwrap();
        if job.state.is_terminal() {
            assert_eq!(job.state, JobState::Failed);
            assert!(job
                .error
                .as_deref()
                .unwrap_or("")
                .contains("connection refused"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job never reached a terminal state"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        executor.0.load(Ordering::SeqCst),
        3,
        "max_attempts runs, then stop"
    );
    let source = store
        .get(Kind::Source, "agg", Some("v1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(source.status, Status::Failed);
    assert!(source
        .error
        .unwrap_or_default()
        .contains("connection refused"));
    assert_eq!(store.job_runs(job_id).await.unwrap().len(), 3);
}

struct Slow;

#[async_trait]
impl JobExecutor for Slow {
    async fn execute(&self, _job: &Job, _context: &JobContext) -> ExecutionResult {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(None)
    }
}

#[tokio::test]
async fn a_cancelled_job_is_abandoned_at_the_next_heartbeat() {
    let (_dir, store, job_id) = store_with_transformation().await;
    let coordinator = Coordinator::new(store.clone(), config(300))
        .register(JobKind::Transformation, Arc::new(Slow));
    let canceller = {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            store.cancel_job(job_id).await.unwrap()
        })
    };
    let started = tokio::time::Instant::now();
    assert!(coordinator.run_once().await.unwrap());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "abandoned promptly, not after 30 s"
    );
    assert_eq!(canceller.await.unwrap().state, JobState::Cancelled);
    assert_eq!(
        store.get_job(job_id).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
}

/// Counts how many executions are in flight at once.
#[derive(Default)]
struct Overlapping {
    running: AtomicUsize,
    most: AtomicUsize,
}

#[async_trait]
impl JobExecutor for Overlapping {
    async fn execute(&self, _job: &Job, _context: &JobContext) -> ExecutionResult {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(Some(1))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_runs_as_many_jobs_at_once_as_its_concurrency() {
    let (_dir, store, _) = store_with_transformation().await;
    // Three more transformations: four jobs for two slots.
    let more: Vec<SourcedDefinition> = (0..3)
        .map(|i| {
            doc(
                serde_json::json!({"kind": "source", "name": format!("agg{i}"), "variant": "v1",
                "owner": "o", "provider": "files", "sql": "SELECT * FROM {{ tx }}"}),
            )
        })
        .collect();
    store.apply(more).await.unwrap();
    let executor = Arc::new(Overlapping::default());
    let coordinator = Coordinator::new(
        store.clone(),
        CoordinatorConfig {
            concurrency: 2,
            ..config(3_000)
        },
    )
    .register(JobKind::Transformation, executor.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move { coordinator.run(stop_rx).await });

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let jobs = store
            .list_jobs(&JobQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        if jobs.items.len() == 4 && jobs.items.iter().all(|j| j.state == JobState::Succeeded) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "jobs did not finish: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_tx.send(true).unwrap();
    running.await.unwrap();
    assert_eq!(
        executor.most.load(Ordering::SeqCst),
        2,
        "two slots run two jobs at once, never more"
    );
}
