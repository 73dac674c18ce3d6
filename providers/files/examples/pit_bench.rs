//! Builds one point-in-time training set with the files provider and prints its time, for
//! `benches/pit_vs_duckdb.py`: `pit_bench DATA_DIR SOURCES` reads `labels.parquet` and
//! `source_{i}.parquet` (columns `user_id`, `ts`, `v`) under `DATA_DIR`.

use std::time::Instant;

use quiver_provider_files::FilesOfflineStore;
use quiver_provider_sdk::{
    FeatureQuery, FileFormat, KeyPair, LabelQuery, OfflineStore, OutputRef, TableRef,
    TrainingSetQuery,
};

fn file(path: String) -> TableRef {
    TableRef::File {
        path,
        format: FileFormat::Parquet,
        schema: None,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: pit_bench DATA_DIR SOURCES")?;
    let sources: usize = args
        .next()
        .ok_or("usage: pit_bench DATA_DIR SOURCES")?
        .parse()?;
    let store = FilesOfflineStore::local(&dir)?;
    let query = TrainingSetQuery {
        label: LabelQuery {
            table: file("labels.parquet".into()),
            entity_columns: vec!["user_id".into()],
            value_column: "label".into(),
            output_column: "label".into(),
            timestamp_column: Some("ts".into()),
        },
        features: (0..sources)
            .map(|i| FeatureQuery {
                name: format!("f{i}"),
                table: file(format!("source_{i}.parquet")),
                keys: vec![KeyPair {
                    label_column: "user_id".into(),
                    feature_column: "user_id".into(),
                }],
                value_column: "v".into(),
                timestamp_column: Some("ts".into()),
                created_timestamp_column: None,
                max_age: None,
                lag: None,
            })
            .collect(),
        output: OutputRef {
            kind: "training_set".into(),
            name: "bench".into(),
            variant: "v1".into(),
        },
    };
    let started = Instant::now();
    let rows = store.build_training_set(&query).await?;
    println!(
        "{{\"rows\": {rows}, \"seconds\": {:.3}}}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
