//! Cross-engine equality: one set of seeded random datasets loaded into every offline
//! engine Quiver pushes down to — the embedded engine (files on DataFusion), Postgres,
//! Snowflake (fakesnow) and BigQuery (bqemulator) — the same training-set queries built by
//! every provider, and the outputs compared row for row with each other and with the
//! brute-force reference of the point-in-time semantics.
//!
//! Every provider also runs the whole offline conformance suite (every hand-made edge
//! case) in its own crate; this test adds the comparison between engines on the same
//! data. The services are real: each harness starts its emulator through the project's
//! scripts when it is absent and fails, never skips, when it cannot.

use std::fs::File;
use std::sync::Arc;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use parquet::arrow::ArrowWriter;
use quiver_provider_files::FilesOfflineStore;
use quiver_provider_sdk::{FileFormat, OfflineStore, OutputRef, TableRef, TrainingSetQuery};
use quiver_provider_testkit::offline::{
    assert_same_table, random_case, read_all, sorted_rows, OfflineHarness,
};
use quiver_provider_testkit::reference;
use tempfile::TempDir;

/// Seeds compared across engines (the issue asks for at least 20).
const SEEDS: u64 = 24;

/// The embedded engine: Parquet files in a temporary root.
struct FilesHarness {
    dir: TempDir,
    store: Arc<FilesOfflineStore>,
}

impl FilesHarness {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(FilesOfflineStore::local(dir.path()).expect("files store"));
        FilesHarness { dir, store }
    }
}

#[async_trait]
impl OfflineHarness for FilesHarness {
    async fn load(&self, name: &str, batch: RecordBatch) -> TableRef {
        let path = format!("{name}.parquet");
        let file = File::create(self.dir.path().join(&path)).expect("create parquet file");
        let mut writer = ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
        writer.write(&batch).expect("write parquet");
        writer.close().expect("close parquet");
        TableRef::File {
            path,
            format: FileFormat::Parquet,
            schema: None,
        }
    }

    fn store(&self) -> Arc<dyn OfflineStore> {
        self.store.clone()
    }
}

async fn engines() -> Vec<(&'static str, Box<dyn OfflineHarness>)> {
    vec![
        ("embedded", Box::new(FilesHarness::new())),
        (
            "postgres",
            Box::new(quiver_provider_postgres::testing::PostgresHarness::new()),
        ),
        (
            "snowflake",
            Box::new(quiver_provider_snowflake::testing::SnowflakeHarness::new()),
        ),
        (
            "bigquery",
            Box::new(quiver_provider_bigquery::testing::BigQueryHarness::new()),
        ),
    ]
}

/// Loads the seed's dataset into `harness` and builds its training set there.
async fn build(harness: &dyn OfflineHarness, seed: u64) -> (RecordBatch, RecordBatch) {
    let case = random_case(seed);
    let mut label = case.label_query.clone();
    label.table = harness
        .load(&format!("x{seed}_label"), case.label.clone())
        .await;
    let mut tables = Vec::new();
    for (i, source) in case.sources.iter().enumerate() {
        tables.push(
            harness
                .load(&format!("x{seed}_source_{i}"), source.clone())
                .await,
        );
    }
    let mut features = Vec::new();
    let mut sources = Vec::new();
    for (s, mut feature) in case.features.clone() {
        feature.table = tables[s].clone();
        features.push(feature);
        sources.push(case.sources[s].clone());
    }
    let query = TrainingSetQuery {
        label,
        features,
        output: OutputRef {
            kind: "training_set".into(),
            name: format!("cross_{seed}"),
            variant: "v1".into(),
        },
    };
    let store = harness.store();
    let rows = store
        .build_training_set(&query)
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: build_training_set failed: {e}"));
    assert_eq!(
        rows,
        case.label.num_rows() as u64,
        "seed {seed}: rows written"
    );
    let actual = read_all(store.as_ref(), &TableRef::Output(query.output.clone())).await;
    let expected = reference::training_set(&query, &case.label, &sources);
    (actual, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_engine_builds_the_same_training_sets() {
    let engines = engines().await;
    for seed in 0..SEEDS {
        let mut first: Option<(&str, RecordBatch)> = None;
        for (engine, harness) in &engines {
            let (actual, expected) = build(harness.as_ref(), seed).await;
            // A harness with a known ordering deviation (see its
            // `preserves_label_order`) is compared as multisets of rows.
            let (actual, expected) = if harness.preserves_label_order() {
                (actual, expected)
            } else {
                (sorted_rows(&actual), sorted_rows(&expected))
            };
            assert_same_table(
                &actual,
                &expected,
                &format!("seed {seed}: {engine} vs the reference"),
            );
            match &first {
                None => first = Some((engine, actual)),
                Some((other, theirs)) => assert_same_table(
                    &actual,
                    &if harness.preserves_label_order() {
                        theirs.clone()
                    } else {
                        sorted_rows(theirs)
                    },
                    &format!("seed {seed}: {engine} vs {other}"),
                ),
            }
        }
    }
}
