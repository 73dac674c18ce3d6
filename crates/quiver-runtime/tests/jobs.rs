//! The runtime's executors on the real providers: a training set whose definitions
//! cannot be resolved fails naming why, a missing source file fails the job with the
//! provider's message, and re-running after the file appears succeeds.
#![cfg(all(feature = "files", feature = "embedded"))]

use std::sync::Arc;

use quiver_coordinator::CoordinatorConfig;
use quiver_core::{parse_yaml_documents, Kind, Status};
use quiver_metadata::{JobKind, JobQuery, JobState, MetadataStore, SqliteStore};
use quiver_runtime::{default_registry, RegistryOptions, Runtime};

const DEFINITIONS: &str = "\
kind: provider
name: local
owner: o
config: {type: files, root: ./data}
---
kind: provider
name: other
owner: o
config: {type: files, root: ./elsewhere}
---
kind: entity
name: user
owner: o
---
kind: entity
name: merchant
owner: o
---
kind: source
name: tx
variant: v1
owner: o
provider: local
file: {path: tx.csv}
---
kind: source
name: tx_other
variant: v1
owner: o
provider: other
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
---
kind: feature
name: merchant_amount
variant: v1
owner: o
entity: merchant
source: tx
value_column: amount
value_type: float64
---
kind: feature
name: other_amount
variant: v1
owner: o
entity: user
source: tx_other
value_column: amount
value_type: float64
---
kind: label
name: is_fraud
variant: v1
owner: o
source: tx
entities: [{entity: user}]
value_column: is_fraud
value_type: bool
timestamp_column: ts
---
kind: training_set
name: good
variant: v1
owner: o
label: is_fraud
features: [amount]
---
kind: training_set
name: wrong_entity
variant: v1
owner: o
label: is_fraud
features: [amount, merchant_amount]
---
kind: training_set
name: two_providers
variant: v1
owner: o
label: is_fraud
features: [other_amount]
";

async fn setup() -> (tempfile::TempDir, Arc<dyn MetadataStore>, Arc<Runtime>) {
    let dir = tempfile::tempdir().unwrap();
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

async fn run_all(runtime: &Arc<Runtime>) {
    let config = CoordinatorConfig {
        poll_interval: std::time::Duration::from_millis(10),
        ..CoordinatorConfig::default()
    };
    let coordinator = runtime.coordinator(config);
    while coordinator.run_once().await.unwrap() {}
}

async fn error_of(store: &Arc<dyn MetadataStore>, name: &str) -> (Status, String) {
    let record = store
        .get(Kind::TrainingSet, name, Some("v1"))
        .await
        .unwrap()
        .unwrap();
    let jobs = store
        .list_jobs(&JobQuery {
            resource: Some(record.id.clone()),
            limit: 10,
            ..JobQuery::default()
        })
        .await
        .unwrap();
    let error = jobs.items[0].error.clone().unwrap_or_default();
    (record.status, error)
}

#[tokio::test]
async fn unresolvable_and_failing_training_sets_fail_naming_the_cause_then_recover() {
    let (dir, store, runtime) = setup().await;
    run_all(&runtime).await;

    let (_, error) = error_of(&store, "wrong_entity").await;
    assert!(
        error.contains("feature `merchant_amount:v1` is keyed by entity `merchant`, which label `is_fraud:v1` does not have"),
        "{error}"
    );
    let (_, error) = error_of(&store, "two_providers").await;
    assert!(
        error.contains("on provider `other` but label `is_fraud:v1` is on `local`"),
        "{error}"
    );
    // The file does not exist yet: the provider says so, and the job keeps the message.
    let (_, error) = error_of(&store, "good").await;
    assert!(
        error.contains("provider `local`") && error.contains("tx.csv"),
        "{error}"
    );

    // After the last attempt the training set is failed; once the file exists a new job
    // succeeds and the data can be downloaded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        run_all(&runtime).await;
        let (status, _) = error_of(&store, "good").await;
        if status == Status::Failed {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never failed");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data/tx.csv"),
        "user,amount,is_fraud,ts\nu1,1.5,false,2026-01-01T00:00:00Z\nu1,2.5,true,2026-01-02T00:00:00Z\n",
    )
    .unwrap();
    // The user-facing way back: retry the failed job (`quiver jobs retry ID`).
    let failed = store
        .list_jobs(&JobQuery {
            state: Some(JobState::Failed),
            limit: 10,
            ..JobQuery::default()
        })
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|j| j.kind == JobKind::TrainingSet && j.resource.name == "good")
        .expect("the training set's failed job");
    let retried = store.retry_job(failed.id).await.unwrap();
    assert_eq!(retried.state, JobState::Queued);
    assert_ne!(retried.id, failed.id);
    let again = store.retry_job(failed.id).await.unwrap_err().to_string();
    assert!(again.contains("already has job"), "{again}");
    let queued = store.retry_job(retried.id).await.unwrap_err().to_string();
    assert!(queued.contains("only failed or cancelled"), "{queued}");
    run_all(&runtime).await;
    let (status, _) = error_of(&store, "good").await;
    assert_eq!(status, Status::Ready);
    let succeeded = store
        .list_jobs(&JobQuery {
            state: Some(JobState::Succeeded),
            limit: 10,
            ..JobQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(succeeded.total, 1);
    let download = runtime
        .training_set_data("good", None, quiver_runtime::DataFormat::Csv)
        .await
        .unwrap();
    use futures::TryStreamExt;
    let bytes: Vec<bytes::Bytes> = download.bytes.try_collect().await.unwrap();
    let text = String::from_utf8(bytes.concat()).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.starts_with("user,ts,amount,is_fraud\n"), "{text}");
}
