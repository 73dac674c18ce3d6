//! The BigQuery provider against bqemulator over HTTP: the shared offline conformance
//! suite, plus what is specific to BigQuery: paging, table naming, error mapping,
//! identifier safety and credential hygiene.

use std::sync::Arc;

use arrow::datatypes::DataType;
use futures::TryStreamExt;
use quiver_provider_bigquery::testing::{emulator_store, endpoint, project, BigQueryHarness};
use quiver_provider_bigquery::{BigQueryConfig, BigQueryFactory, BigQueryOfflineStore};
use quiver_provider_sdk::{
    FeatureQuery, FileFormat, KeyPair, LabelQuery, OfflineStore, OutputRef, Provider,
    ProviderError, ProviderFactory, ProviderHandle, TableRef, TrainingSetQuery, Transformation,
};
use quiver_provider_testkit::offline::{
    batch, int_values, ints, read_all, text_values, texts, utc, OfflineHarness,
};

quiver_provider_testkit::offline_store_suite!(BigQueryHarness::new);

fn output(kind: &str, name: &str) -> OutputRef {
    OutputRef {
        kind: kind.into(),
        name: name.into(),
        variant: "v1".into(),
    }
}

#[tokio::test]
/// BigQuery sorts label rows by their columns (`TrainingSetOrder::LabelColumns`); this
/// label is already in that order, so the pages must come back in it.
async fn results_are_read_page_by_page_in_label_columns_order() {
    let h = BigQueryHarness::with_page_rows(3);
    let n = 10;
    let labels = h
        .load(
            "labels",
            batch(vec![
                (
                    "user_id",
                    ints(&(0..n).map(|i| Some(i / 3)).collect::<Vec<_>>()),
                ),
                (
                    "ts",
                    utc(&(0..n).map(|i| Some(100 + i)).collect::<Vec<_>>()),
                ),
                ("label", ints(&(0..n).map(Some).collect::<Vec<_>>())),
            ]),
        )
        .await;
    let source = h
        .load(
            "source",
            batch(vec![
                ("user_id", ints(&[Some(0), Some(1), Some(2), Some(3)])),
                ("ts", utc(&[Some(1), Some(1), Some(1), Some(1)])),
                ("v", ints(&[Some(10), Some(11), Some(12), Some(13)])),
            ]),
        )
        .await;
    let query = TrainingSetQuery {
        label: LabelQuery {
            table: labels,
            entity_columns: vec!["user_id".into()],
            value_column: "label".into(),
            output_column: "label".into(),
            timestamp_column: Some("ts".into()),
        },
        features: vec![FeatureQuery {
            name: "v".into(),
            table: source,
            keys: vec![KeyPair {
                label_column: "user_id".into(),
                feature_column: "user_id".into(),
            }],
            value_column: "v".into(),
            timestamp_column: Some("ts".into()),
            created_timestamp_column: None,
            max_age: None,
            lag: None,
        }],
        output: output("training_set", "paged"),
    };
    let store = h.bigquery();
    assert_eq!(store.build_training_set(&query).await.unwrap(), n as u64);
    let table = TableRef::Output(query.output.clone());
    let batches: Vec<_> = store
        .read(&table)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(batches.len(), 4, "10 rows in pages of 3");
    assert!(batches.iter().all(|b| b.num_rows() <= 3));
    let all = read_all(store.as_ref(), &table).await;
    assert_eq!(
        int_values(&all, "label"),
        (0..n).map(Some).collect::<Vec<_>>()
    );
    assert_eq!(
        int_values(&all, "v"),
        (0..n).map(|i| Some(10 + i / 3)).collect::<Vec<_>>()
    );
    assert!(
        all.schema().field_with_name("__quiver_row_id").is_err(),
        "the row id is dropped"
    );
}

#[tokio::test]
async fn tables_are_read_by_dataset_or_project_qualified_name_with_types() {
    let h = BigQueryHarness::new();
    let loaded = h
        .load(
            "events",
            batch(vec![
                ("user_id", ints(&[Some(1), Some(2)])),
                ("name", texts(&[Some("ada"), None])),
                ("ts", utc(&[Some(5), None])),
            ]),
        )
        .await;
    let TableRef::Table(name) = &loaded else {
        unreachable!("the harness loads tables")
    };
    let qualified = TableRef::Table(format!("{}.{name}", project()));
    for table in [&loaded, &qualified] {
        let schema = h.bigquery().schema(table).await.unwrap();
        assert_eq!(
            schema.field_with_name("ts").unwrap().data_type(),
            &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()))
        );
        let rows = read_all(h.bigquery().as_ref(), table).await;
        let mut names = text_values(&rows, "name");
        names.sort();
        assert_eq!(names, vec![None, Some("ada".into())]);
    }
}

#[tokio::test]
async fn missing_dataset_and_table_are_not_found() {
    let h = BigQueryHarness::new();
    h.ensure_dataset().await;
    let store = h.bigquery();
    for table in [
        TableRef::Table("no_such_dataset_quiver.t".into()),
        TableRef::Table(format!("{}.no_such_table", h.dataset())),
    ] {
        let err = store.schema(&table).await.err();
        assert!(matches!(err, Some(ProviderError::NotFound(_))), "{err:?}");
        let err = store.read(&table).await.err();
        assert!(matches!(err, Some(ProviderError::NotFound(_))), "{err:?}");
    }
    // Outputs in a dataset that does not exist.
    let orphan = emulator_store("no_such_dataset_quiver");
    let t = Transformation {
        sql: "SELECT 1 AS one".into(),
        inputs: Vec::new(),
        output: output("source", "orphan"),
    };
    let err = orphan.run_transformation(&t).await.err();
    assert!(matches!(err, Some(ProviderError::NotFound(_))), "{err:?}");
}

#[tokio::test]
async fn files_are_unsupported_and_bad_sql_is_an_invalid_query() {
    let h = BigQueryHarness::new();
    let users = h
        .load("users", batch(vec![("user_id", ints(&[Some(1)]))]))
        .await;
    let store = h.bigquery();
    let file = TableRef::File {
        path: "x.parquet".into(),
        format: FileFormat::Parquet,
        schema: None,
    };
    assert!(matches!(
        store.schema(&file).await,
        Err(ProviderError::Unsupported(_))
    ));
    let t = Transformation {
        sql: "SELEC user_id FROM {{ users }}".into(),
        inputs: vec![("users".into(), users)],
        output: output("source", "bad"),
    };
    let err = store.run_transformation(&t).await.err();
    assert!(
        matches!(err, Some(ProviderError::InvalidQuery(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn hostile_identifiers_are_refused_before_any_request() {
    let h = BigQueryHarness::new();
    let events = h
        .load(
            "events",
            batch(vec![
                ("user_id", ints(&[Some(1)])),
                ("ts", utc(&[Some(1)])),
                ("v", ints(&[Some(1)])),
            ]),
        )
        .await;
    let store = h.bigquery();
    for name in [
        format!("{}.t`; DROP TABLE x; --", h.dataset()),
        format!("{}.t` UNION ALL SELECT 1 --", h.dataset()),
        "a.b.c.d".into(),
        "lonely".into(),
        format!("{}.t\u{0}", h.dataset()),
    ] {
        let table = TableRef::Table(name.clone());
        let err = store.schema(&table).await.err();
        assert!(
            matches!(err, Some(ProviderError::InvalidQuery(_))),
            "{name:?}: {err:?}"
        );
    }
    let query = TrainingSetQuery {
        label: LabelQuery {
            table: events.clone(),
            entity_columns: vec!["user_id".into()],
            value_column: "v".into(),
            output_column: "label` FROM x; --".into(),
            timestamp_column: Some("ts".into()),
        },
        features: vec![FeatureQuery {
            name: "f".into(),
            table: events,
            keys: vec![KeyPair {
                label_column: "user_id".into(),
                feature_column: "user_id".into(),
            }],
            value_column: "v".into(),
            timestamp_column: Some("ts".into()),
            created_timestamp_column: None,
            max_age: None,
            lag: None,
        }],
        output: output("training_set", "hostile"),
    };
    let err = store.build_training_set(&query).await.err();
    assert!(
        matches!(err, Some(ProviderError::InvalidQuery(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unreachable_and_unhealthy() {
    // Port 1 on loopback: nothing listens there.
    let store = BigQueryOfflineStore::new(BigQueryConfig {
        project_id: "quiver-test".into(),
        dataset: "d".into(),
        credentials_json: None,
        endpoint: Some("http://127.0.0.1:1".into()),
    })
    .unwrap();
    let err = store.schema(&TableRef::Table("d.t".into())).await.err();
    assert!(
        matches!(err, Some(ProviderError::Unreachable(_))),
        "{err:?}"
    );
    let health = store.health().await;
    assert!(!health.healthy);
    assert!(health.message.contains("127.0.0.1:1"), "{}", health.message);
}

#[tokio::test]
async fn the_emulator_is_healthy() {
    let h = BigQueryHarness::new();
    let health = h.bigquery().health().await;
    assert!(health.healthy, "{}", health.message);
}

/// A service-account key that cannot give a token: its private key is not a valid key and
/// its token endpoint is on loopback where nothing listens.
fn fake_key(secret: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "quiver-test",
        "private_key_id": "k1",
        "private_key": format!("-----BEGIN PRIVATE KEY-----\n{secret}\n-----END PRIVATE KEY-----\n"),
        "client_email": "quiver@quiver-test.iam.gserviceaccount.com",
        "client_id": "1",
        "auth_uri": "http://127.0.0.1:1/auth",
        "token_uri": "http://127.0.0.1:1/token",
    })
    .to_string()
}

#[tokio::test]
async fn credentials_never_show_in_debug_or_errors() {
    let secret = "c2VjcmV0LXNob3VsZC1uZXZlci1sZWFr";
    let config = BigQueryConfig {
        project_id: project(),
        dataset: "d".into(),
        credentials_json: Some(fake_key(secret)),
        endpoint: Some(endpoint()),
    };
    assert!(!format!("{config:?}").contains(secret));
    let store = BigQueryOfflineStore::new(config).unwrap();
    assert!(!format!("{store:?}").contains(secret));
    let err = store
        .schema(&TableRef::Table("d.t".into()))
        .await
        .expect_err("no token can be had");
    assert!(
        matches!(err, ProviderError::Unauthorized(_)),
        "a token that cannot be had is Unauthorized: {err:?}"
    );
    assert!(!err.to_string().contains(secret), "{err}");
    assert!(!format!("{err:?}").contains(secret), "{err:?}");
    let health = store.health().await;
    assert!(!health.healthy);
    assert!(!health.message.contains(secret), "{}", health.message);

    // Through the factory, from the environment, and as a malformed key.
    std::env::set_var("QUIVER_TEST_BQ_KEY", fake_key(secret));
    let built = BigQueryFactory
        .build(&serde_json::json!({
            "type": "bigquery",
            "project_id": project(),
            "dataset": "d",
            "credentials_json": {"env": "QUIVER_TEST_BQ_KEY"},
            "endpoint": endpoint(),
        }))
        .await
        .unwrap();
    assert!(matches!(built, ProviderHandle::Offline(_)));
    let err = BigQueryFactory
        .build(&serde_json::json!({
            "project_id": project(),
            "dataset": "d",
            "credentials_json": format!("{{\"private_key\": \"{secret}\""),
        }))
        .await
        .err()
        .expect("a malformed key is refused");
    assert!(matches!(err, ProviderError::InvalidConfig(_)), "{err:?}");
    assert!(!err.to_string().contains(secret), "{err}");
}

#[tokio::test]
async fn the_factory_builds_an_emulator_store() {
    let h = BigQueryHarness::new();
    let users = h
        .load(
            "users",
            batch(vec![
                ("user_id", ints(&[Some(2), Some(1)])),
                ("name", texts(&[Some("bob"), Some("ada")])),
            ]),
        )
        .await;
    let handle = BigQueryFactory
        .build(&serde_json::json!({
            "type": "bigquery",
            "project_id": project(),
            "dataset": h.dataset(),
            "endpoint": endpoint(),
        }))
        .await
        .unwrap();
    let ProviderHandle::Offline(store) = handle else {
        panic!("bigquery is an offline store")
    };
    let store: Arc<dyn OfflineStore> = store;
    let t = Transformation {
        sql: "SELECT name FROM {{ users }} WHERE user_id > 1".into(),
        inputs: vec![("users".into(), users)],
        output: output("source", "names"),
    };
    assert_eq!(store.run_transformation(&t).await.unwrap(), 1);
    let rows = read_all(store.as_ref(), &TableRef::Output(t.output)).await;
    assert_eq!(text_values(&rows, "name"), vec![Some("bob".into())]);
}
