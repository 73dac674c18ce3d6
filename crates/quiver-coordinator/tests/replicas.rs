//! Two coordinator replicas, each with its own connection pool, on one real Postgres
//! metadata store share 200 jobs with no leader: every job runs exactly once (checked from
//! the runs table), none is lost, no job ever runs on both replicas at once, and both
//! replicas do work.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use quiver_coordinator::{
    Coordinator, CoordinatorConfig, ExecutionResult, JobContext, JobExecutor,
};
use quiver_core::{Definition, SourcedDefinition};
use quiver_metadata::{Job, JobKind, JobQuery, JobState, MetadataStore, PostgresStore};
use sqlx::Connection;

const JOBS: usize = 200;

fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `admin_url` pointing at database `name` instead.
fn with_database(admin_url: &str, name: &str) -> String {
    let authority_start = admin_url.find("://").map_or(0, |i| i + 3);
    let host_end = admin_url[authority_start..]
        .find('/')
        .map_or(admin_url.len(), |i| authority_start + i);
    format!("{}/{name}", &admin_url[..host_end])
}

fn doc(json: serde_json::Value) -> SourcedDefinition {
    SourcedDefinition {
        definition: serde_json::from_value::<Definition>(json).unwrap(),
        origin: "test".into(),
    }
}

/// Records which jobs are running right now, and any job seen running twice at once.
#[derive(Default)]
struct Ledger {
    running: Mutex<HashSet<i64>>,
    overlaps: Mutex<Vec<i64>>,
    by_owner: Mutex<HashMap<String, usize>>,
}

struct Recording {
    ledger: Arc<Ledger>,
    owner: String,
}

#[async_trait]
impl JobExecutor for Recording {
    async fn execute(&self, job: &Job, _context: &JobContext) -> ExecutionResult {
        if !self.ledger.running.lock().unwrap().insert(job.id) {
            self.ledger.overlaps.lock().unwrap().push(job.id);
        }
        *self
            .ledger
            .by_owner
            .lock()
            .unwrap()
            .entry(self.owner.clone())
            .or_default() += 1;
        // Long enough for the replicas to race for the queue.
        tokio::time::sleep(Duration::from_millis(5 + (job.id % 7) as u64)).await;
        self.ledger.running.lock().unwrap().remove(&job.id);
        Ok(Some(1))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_share_200_jobs_without_running_one_twice() {
    let admin = admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| {
            panic!("Postgres is unreachable at 127.0.0.1:5432 ({e}); run ./scripts/services.sh")
        });
    let name = format!("quiver_replicas_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = with_database(&admin, &name);

    // Two stores = two pools, as two `quiver serve` processes would have.
    let first: Arc<dyn MetadataStore> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let second: Arc<dyn MetadataStore> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let mut docs = vec![
        doc(
            serde_json::json!({"kind": "provider", "name": "files", "owner": "o",
            "config": {"type": "files", "root": "/tmp"}}),
        ),
        doc(
            serde_json::json!({"kind": "source", "name": "tx", "variant": "v1", "owner": "o",
            "provider": "files", "file": {"path": "tx.parquet"}}),
        ),
    ];
    for i in 0..JOBS {
        docs.push(doc(
            serde_json::json!({"kind": "source", "name": format!("agg_{i}"),
            "variant": "v1", "owner": "o", "provider": "files",
            "sql": "SELECT * FROM {{ tx }}"}),
        ));
    }
    first.apply(docs).await.unwrap();

    let ledger = Arc::new(Ledger::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut replicas = Vec::new();
    for (owner, store) in [("replica-a", first.clone()), ("replica-b", second.clone())] {
        let coordinator = Coordinator::new(
            store,
            CoordinatorConfig {
                lease: Duration::from_secs(10),
                poll_interval: Duration::from_millis(20),
                owner: owner.into(),
                upstream_poll: Duration::from_millis(100),
                // Two claim loops per replica: four claimers on one queue.
                concurrency: 2,
            },
        )
        .register(
            JobKind::Transformation,
            Arc::new(Recording {
                ledger: ledger.clone(),
                owner: owner.into(),
            }),
        );
        let stop = stop_rx.clone();
        replicas.push(tokio::spawn(async move { coordinator.run(stop).await }));
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let open = first
            .list_jobs(&JobQuery {
                state: Some(JobState::Queued),
                limit: 1,
                ..JobQuery::default()
            })
            .await
            .unwrap()
            .total
            + first
                .list_jobs(&JobQuery {
                    state: Some(JobState::Running),
                    limit: 1,
                    ..JobQuery::default()
                })
                .await
                .unwrap()
                .total;
        if open == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{open} jobs still open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_tx.send(true).unwrap();
    for r in replicas {
        r.await.unwrap();
    }

    let succeeded = first
        .list_jobs(&JobQuery {
            state: Some(JobState::Succeeded),
            limit: 500,
            ..JobQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(succeeded.total as usize, JOBS, "no job lost");
    assert!(
        ledger.overlaps.lock().unwrap().is_empty(),
        "a job ran twice at once"
    );

    // The runs table: one run per job, on one owner, succeeded.
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let (runs, jobs_with_runs, max_runs): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT job_id), coalesce(max(n), 0) FROM job_runs \
         JOIN (SELECT job_id AS j, count(*) AS n FROM job_runs GROUP BY job_id) c ON c.j = job_id \
         WHERE state = 'succeeded'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        (runs, jobs_with_runs, max_runs),
        (JOBS as i64, JOBS as i64, 1)
    );
    let owners: Vec<(String, i64)> = sqlx::query_as(
        "SELECT lease_owner, count(*) FROM job_runs GROUP BY lease_owner ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(owners.len(), 2, "both replicas did work: {owners:?}");
    eprintln!("runs per replica: {owners:?}");
    conn.close().await.ok();

    drop((first, second));
    let mut admin_conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
        .execute(&mut admin_conn)
        .await
        .ok();
}
