//! The files provider against the shared offline conformance suite, plus what is specific
//! to files: CSV inference and schema override, directories of files, and the atomic
//! output manifest.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use async_trait::async_trait;
use parquet::arrow::ArrowWriter;
use quiver_provider_files::FilesOfflineStore;
use quiver_provider_sdk::{
    FeatureQuery, FileFormat, KeyPair, LabelQuery, OfflineStore, OutputRef, ProviderError,
    TableRef, TrainingSetQuery, Transformation,
};
use quiver_provider_testkit::offline::{
    batch, int_values, ints, read_all, text_values, texts, utc, OfflineHarness,
};
use tempfile::TempDir;

/// Tables are Parquet files written straight into a temporary root.
struct FilesHarness {
    dir: TempDir,
    store: Arc<FilesOfflineStore>,
}

impl FilesHarness {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(FilesOfflineStore::local(dir.path()).expect("store"));
        FilesHarness { dir, store }
    }
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let file = File::create(path).expect("create parquet file");
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    writer.write(batch).expect("write");
    writer.close().expect("close");
}

#[async_trait]
impl OfflineHarness for FilesHarness {
    async fn load(&self, name: &str, batch: RecordBatch) -> TableRef {
        let file = format!("{name}.parquet");
        write_parquet(&self.dir.path().join(&file), &batch);
        TableRef::File {
            path: file,
            format: FileFormat::Parquet,
            schema: None,
        }
    }

    fn store(&self) -> Arc<dyn OfflineStore> {
        self.store.clone()
    }
}

quiver_provider_testkit::offline_store_suite!(FilesHarness::new);

fn csv(path: &str, schema: Option<Schema>) -> TableRef {
    TableRef::File {
        path: path.into(),
        format: FileFormat::Csv,
        schema: schema.map(Arc::new),
    }
}

#[tokio::test]
async fn csv_schema_is_inferred_and_feeds_training_sets() {
    let h = FilesHarness::new();
    std::fs::write(
        h.dir.path().join("spend.csv"),
        "user_id,ts,amount\n1,2024-01-01T00:00:10,1.5\n1,2024-01-01T00:00:20,2.5\n2,2024-01-01T00:00:05,9.0\n",
    )
    .unwrap();
    let source = csv("spend.csv", None);
    let schema = h.store.schema(&source).await.unwrap();
    assert!(schema
        .field_with_name("user_id")
        .unwrap()
        .data_type()
        .is_integer());
    assert!(matches!(
        schema.field_with_name("ts").unwrap().data_type(),
        DataType::Timestamp(..)
    ));
    assert_eq!(
        schema.field_with_name("amount").unwrap().data_type(),
        &DataType::Float64
    );

    let labels = batch(vec![
        ("user_id", ints(&[Some(1), Some(2), Some(1)])),
        ("ts", utc(&[Some(15), Some(15), Some(5)])),
        ("label", ints(&[Some(1), Some(0), Some(1)])),
    ]);
    let label = h.load("labels", labels).await;
    let query = TrainingSetQuery {
        label: LabelQuery {
            table: label,
            entity_columns: vec!["user_id".into()],
            value_column: "label".into(),
            output_column: "label".into(),
            timestamp_column: Some("ts".into()),
        },
        features: vec![FeatureQuery {
            name: "amount".into(),
            table: source,
            keys: vec![KeyPair {
                label_column: "user_id".into(),
                feature_column: "user_id".into(),
            }],
            value_column: "amount".into(),
            timestamp_column: Some("ts".into()),
            created_timestamp_column: None,
            max_age: None,
            lag: None,
        }],
        output: OutputRef {
            kind: "training_set".into(),
            name: "csv".into(),
            variant: "v1".into(),
        },
    };
    assert_eq!(h.store.build_training_set(&query).await.unwrap(), 3);
    let out = read_all(h.store.as_ref(), &TableRef::Output(query.output)).await;
    let amounts: Vec<Option<f64>> = out
        .column_by_name("amount")
        .unwrap()
        .as_primitive::<arrow::datatypes::Float64Type>()
        .iter()
        .collect();
    assert_eq!(amounts, vec![Some(1.5), Some(9.0), None]);
}

#[tokio::test]
async fn csv_explicit_schema_overrides_inference() {
    let h = FilesHarness::new();
    std::fs::write(
        h.dir.path().join("users.csv"),
        "user_id,zip\n1,01234\n2,98765\n",
    )
    .unwrap();
    let inferred = h.store.schema(&csv("users.csv", None)).await.unwrap();
    assert!(inferred
        .field_with_name("zip")
        .unwrap()
        .data_type()
        .is_integer());
    let explicit = Schema::new(vec![
        Field::new("user_id", DataType::Utf8, false),
        Field::new("zip", DataType::Utf8, true),
    ]);
    let table = csv("users.csv", Some(explicit));
    let schema = h.store.schema(&table).await.unwrap();
    assert_eq!(
        schema.field_with_name("zip").unwrap().data_type(),
        &DataType::Utf8
    );
    let rows = read_all(h.store.as_ref(), &table).await;
    assert_eq!(
        text_values(&rows, "zip"),
        vec![Some("01234".into()), Some("98765".into())]
    );
}

#[tokio::test]
async fn a_directory_of_parquet_files_is_one_table() {
    let h = FilesHarness::new();
    let dir = h.dir.path().join("events");
    std::fs::create_dir(&dir).unwrap();
    write_parquet(
        &dir.join("a.parquet"),
        &batch(vec![("v", ints(&[Some(1), Some(2)]))]),
    );
    write_parquet(
        &dir.join("b.parquet"),
        &batch(vec![("v", ints(&[Some(3)]))]),
    );
    let table = TableRef::File {
        path: "events".into(),
        format: FileFormat::Parquet,
        schema: None,
    };
    let mut values = int_values(&read_all(h.store.as_ref(), &table).await, "v");
    values.sort();
    assert_eq!(values, vec![Some(1), Some(2), Some(3)]);
    let escape = TableRef::File {
        path: "../outside.parquet".into(),
        format: FileFormat::Parquet,
        schema: None,
    };
    assert!(matches!(
        h.store.schema(&escape).await,
        Err(ProviderError::InvalidQuery(_))
    ));
}

fn manifest_path(h: &FilesHarness) -> std::path::PathBuf {
    h.dir
        .path()
        .join("_quiver/outputs/source/names/v1/_manifest.json")
}

fn run_dirs(h: &FilesHarness) -> usize {
    std::fs::read_dir(h.dir.path().join("_quiver/outputs/source/names/v1/runs"))
        .unwrap()
        .count()
}

#[tokio::test]
async fn a_failed_run_leaves_the_published_manifest_and_data() {
    let h = FilesHarness::new();
    let users = h
        .load(
            "users",
            batch(vec![
                ("user_id", ints(&[Some(1), Some(2)])),
                ("name", texts(&[Some("ada"), Some("bob")])),
            ]),
        )
        .await;
    let transformation = |sql: &str| Transformation {
        sql: sql.into(),
        inputs: vec![("users:v1".into(), users.clone())],
        output: OutputRef {
            kind: "source".into(),
            name: "names".into(),
            variant: "v1".into(),
        },
    };
    let good = transformation("SELECT name FROM {{ users:v1 }} ORDER BY name");
    assert_eq!(h.store.run_transformation(&good).await.unwrap(), 2);
    let published = std::fs::read_to_string(manifest_path(&h)).unwrap();
    assert!(published.contains("\"rows\": 2"), "{published}");

    // Fails while running (after the run started writing), not while planning.
    let failing = transformation("SELECT CAST(name AS INT) AS n FROM {{ users:v1 }}");
    let err = h.store.run_transformation(&failing).await.err();
    assert!(
        matches!(err, Some(ProviderError::InvalidQuery(_))),
        "{err:?}"
    );
    assert_eq!(
        std::fs::read_to_string(manifest_path(&h)).unwrap(),
        published
    );
    let output = TableRef::Output(good.output.clone());
    let rows = read_all(h.store.as_ref(), &output).await;
    assert_eq!(
        text_values(&rows, "name"),
        vec![Some("ada".into()), Some("bob".into())]
    );

    // Successful re-runs replace the output and keep at most the previous run around.
    for _ in 0..3 {
        h.store.run_transformation(&good).await.unwrap();
    }
    assert_ne!(
        std::fs::read_to_string(manifest_path(&h)).unwrap(),
        published
    );
    assert!(run_dirs(&h) <= 2, "stale runs are removed");
    assert_eq!(read_all(h.store.as_ref(), &output).await.num_rows(), 2);
}

#[tokio::test]
async fn outputs_keep_timestamp_zones_and_reject_unsafe_names() {
    let h = FilesHarness::new();
    let events = h
        .load(
            "events",
            batch(vec![("ts", utc(&[Some(1)])), ("v", ints(&[Some(1)]))]),
        )
        .await;
    let mut t = Transformation {
        sql: "SELECT ts, v FROM {{ e }}".into(),
        inputs: vec![("e".into(), events)],
        output: OutputRef {
            kind: "source".into(),
            name: "events".into(),
            variant: "v1".into(),
        },
    };
    h.store.run_transformation(&t).await.unwrap();
    let schema = h
        .store
        .schema(&TableRef::Output(t.output.clone()))
        .await
        .unwrap();
    assert_eq!(
        schema.field_with_name("ts").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    t.output.variant = "../../escape".into();
    assert!(matches!(
        h.store.run_transformation(&t).await,
        Err(ProviderError::InvalidQuery(_))
    ));
    t.output.variant = "v2".into();
    t.sql = "COPY (SELECT 1) TO '/tmp/quiver-should-not-exist.csv'".into();
    assert!(
        h.store.run_transformation(&t).await.is_err(),
        "statements other than queries are refused"
    );
}
