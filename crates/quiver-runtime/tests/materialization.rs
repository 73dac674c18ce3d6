//! Materialization on the real embedded providers (Parquet/CSV files offline, the SQLite
//! online store): the first run is a full refresh that records a watermark; a scheduled
//! run is incremental from the watermark minus the look-back (a late row inside the
//! look-back is picked up, one older than it is not); a materialization whose source
//! lacks the entity column fails naming it and leaves the online values alone.
#![cfg(all(feature = "files", feature = "embedded"))]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use quiver_coordinator::CoordinatorConfig;
use quiver_core::{parse_yaml_documents, Kind, ResourceId, Status};
use quiver_metadata::{JobKind, JobQuery, JobState, MetadataStore, SqliteStore};
use quiver_provider_sdk::{OnlineRead, OnlineTableRef, OnlineValue};
use quiver_runtime::{default_registry, RegistryOptions, Runtime};

const DEFINITIONS: &str = "\
kind: provider
name: local
owner: o
config: {type: files, root: ./data}
---
kind: provider
name: online
owner: o
config: {type: embedded}
---
kind: entity
name: user
owner: o
---
kind: source
name: tx
variant: v1
owner: o
provider: local
file: {path: tx.csv}
---
kind: feature
name: amount
variant: v1
owner: o
entity: user
source: tx
value_column: amount
value_type: float64
timestamp_column: ts
online_provider: online
materialization: {schedule: '*/5 * * * *', lookback: 1h}
---
kind: feature
name: broken
variant: v1
owner: o
entity: user
entity_column: customer_id
source: tx
value_column: amount
value_type: float64
timestamp_column: ts
online_provider: online
";

async fn setup() -> (tempfile::TempDir, Arc<dyn MetadataStore>, Arc<Runtime>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    write_rows(&dir, &[("u1", 1.0, "10:00"), ("u2", 2.0, "10:00")]);
    let store: Arc<dyn MetadataStore> = Arc::new(
        SqliteStore::open(&dir.path().join(".quiver"))
            .await
            .unwrap(),
    );
    store
        .apply(parse_yaml_documents("defs.yaml", DEFINITIONS).unwrap())
        .await
        .unwrap();
    let registry = default_registry(&RegistryOptions {
        base_dir: dir.path().to_path_buf(),
        data_dir: dir.path().join(".quiver"),
    });
    let runtime = Arc::new(Runtime::new(store.clone(), registry));
    (dir, store, runtime)
}

/// The source file: `(user, amount, HH:MM on 2026-01-01 UTC)`.
fn write_rows(dir: &tempfile::TempDir, rows: &[(&str, f64, &str)]) {
    let mut csv = String::from("user,amount,ts\n");
    for (user, amount, time) in rows {
        csv.push_str(&format!("{user},{amount:.2},2026-01-01T{time}:00Z\n"));
    }
    std::fs::write(dir.path().join("data/tx.csv"), csv).unwrap();
}

fn at(time: &str) -> DateTime<Utc> {
    format!("2026-01-01T{time}:00Z").parse().unwrap()
}

async fn run_all(runtime: &Arc<Runtime>) {
    let coordinator = runtime.coordinator(CoordinatorConfig {
        poll_interval: std::time::Duration::from_millis(10),
        ..CoordinatorConfig::default()
    });
    while coordinator.run_once().await.unwrap() {}
}

/// The online value of `amount:v1` per user, `None` when missing.
async fn online(runtime: &Arc<Runtime>, users: &[&str]) -> Vec<Option<f64>> {
    let store = runtime.providers().online("online").await.unwrap();
    let table = OnlineTableRef {
        feature: "amount".into(),
        variant: "v1".into(),
    };
    let entities: Vec<String> = users.iter().map(|u| u.to_string()).collect();
    store
        .multi_get(&[table], &entities)
        .await
        .unwrap()
        .into_iter()
        .map(|reads| match &reads[0] {
            OnlineRead::Present {
                value: OnlineValue::Float(v),
                ..
            } => Some(*v),
            OnlineRead::Missing => None,
            other => panic!("unexpected read {other:?}"),
        })
        .collect()
}

async fn last_logs(store: &Arc<dyn MetadataStore>, job_id: i64) -> String {
    let runs = store.job_runs(job_id).await.unwrap();
    runs.last().expect("a run").logs.clone()
}

#[tokio::test]
async fn first_run_is_full_then_scheduled_runs_are_incremental_with_lookback() {
    let (dir, store, runtime) = setup().await;
    let amount = ResourceId::new(Kind::Feature, "amount", "v1");
    run_all(&runtime).await;

    let feature = store
        .get(Kind::Feature, "amount", Some("v1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(feature.status, Status::Ready, "{:?}", feature.error);
    assert_eq!(
        online(&runtime, &["u1", "u2"]).await,
        [Some(1.0), Some(2.0)]
    );
    assert_eq!(store.watermark(&amount).await.unwrap(), Some(at("10:00")));
    let first = store
        .list_jobs(&JobQuery {
            resource: Some(amount.clone()),
            limit: 10,
            ..JobQuery::default()
        })
        .await
        .unwrap()
        .items
        .remove(0);
    let logs = last_logs(&store, first.id).await;
    assert!(logs.contains("full refresh (no watermark yet)"), "{logs}");
    assert!(
        logs.contains("watermark 2026-01-01T10:00:00+00:00"),
        "{logs}"
    );

    // New data: a newer value for u1, a late row for u3 inside the look-back
    // (watermark 10:00 − 1h = 09:00), and one for u4 older than it.
    write_rows(
        &dir,
        &[
            ("u1", 1.0, "10:00"),
            ("u2", 2.0, "10:00"),
            ("u1", 10.0, "11:00"),
            ("u3", 3.0, "09:30"),
            ("u4", 4.0, "08:00"),
        ],
    );
    let schedules = store.schedules().await.unwrap();
    assert_eq!(schedules.len(), 1, "only `amount` has a schedule");
    let due = schedules[0].next_run_at.unwrap() + chrono::Duration::seconds(1);
    let jobs = store.enqueue_due_schedules(due).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].kind, JobKind::Materialization);
    run_all(&runtime).await;

    let job = store.get_job(jobs[0].id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let logs = last_logs(&store, job.id).await;
    assert!(
        logs.contains("incremental from 2026-01-01T09:00:00+00:00 (watermark 2026-01-01T10:00:00+00:00 minus look-back 1h)"),
        "{logs}"
    );
    assert_eq!(
        online(&runtime, &["u1", "u2", "u3", "u4"]).await,
        [Some(10.0), Some(2.0), Some(3.0), None],
        "u4's row is older than the look-back, so an incremental run does not read it"
    );
    assert_eq!(store.watermark(&amount).await.unwrap(), Some(at("11:00")));
    // `GET /api/v1/schedules` shows it too.
    assert_eq!(
        store.schedules().await.unwrap()[0].watermark,
        Some(at("11:00"))
    );
}

#[tokio::test]
async fn a_source_without_the_entity_column_fails_naming_it_and_keeps_online_values() {
    let (_dir, store, runtime) = setup().await;
    run_all(&runtime).await;
    let broken = ResourceId::new(Kind::Feature, "broken", "v1");
    // Its attempts run out with back-off; keep running until it is failed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let record = loop {
        run_all(&runtime).await;
        let record = store
            .get(Kind::Feature, "broken", Some("v1"))
            .await
            .unwrap()
            .unwrap();
        if record.status == Status::Failed {
            break record;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never failed: {record:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let error = record.error.unwrap_or_default();
    assert!(error.contains("customer_id"), "{error}");
    assert_eq!(store.watermark(&broken).await.unwrap(), None);
    // The other feature of the same store is untouched.
    assert_eq!(
        online(&runtime, &["u1", "u2"]).await,
        [Some(1.0), Some(2.0)]
    );
}
