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
    assert_same_table, expected_training_set, in_label_columns_order, random_case, read_all,
    OfflineHarness,
};
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

/// Loads the seed's dataset into `harness` and builds its training set there. Returns what
/// the engine built, the reference in the order the engine declares, and the engine's
/// rows in one common order (label columns) for comparing engines with each other.
async fn build(harness: &dyn OfflineHarness, seed: u64) -> (RecordBatch, RecordBatch, RecordBatch) {
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
    let order = store.capabilities().training_set_order;
    let expected = expected_training_set(order, &query, &case.label, &sources);
    let common = in_label_columns_order(order, &query, &case.label, &actual);
    (actual, expected, common)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_engine_builds_the_same_training_sets() {
    let engines = engines().await;
    for seed in 0..SEEDS {
        let mut first: Option<(&str, RecordBatch)> = None;
        for (engine, harness) in &engines {
            let (actual, expected, common) = build(harness.as_ref(), seed).await;
            assert_same_table(
                &actual,
                &expected,
                &format!("seed {seed}: {engine} vs the reference"),
            );
            match &first {
                None => first = Some((engine, common)),
                Some((other, theirs)) => assert_same_table(
                    &common,
                    theirs,
                    &format!("seed {seed}: {engine} vs {other}"),
                ),
            }
        }
    }
}
