//! The offline conformance harness for BigQuery against bqemulator (cargo feature
//! `testing`), shared by this crate's tests and the cross-engine tests.
//!
//! Each harness works in a fresh dataset `t_<uuid>` of project [`project`] on the emulator
//! at [`endpoint`] (`127.0.0.1:${QUIVER_BQ_PORT:-19050}`): tables loaded from record
//! batches (tables API + `insertAll`) and the store's outputs both live there, so tests run
//! in parallel without colliding. The dataset is deleted when the harness is dropped,
//! unless the test is failing (then it is kept for inspection and its name printed).
//!
//! When the emulator does not answer, `scripts/emulators/bqemulator.sh` is run once to
//! install and start it; an emulator still unreachable after that fails the test with a
//! message saying so (tests never skip).

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use gcp_bigquery_client::model::dataset::Dataset;
use gcp_bigquery_client::model::field_type::FieldType;
use gcp_bigquery_client::model::table::Table;
use gcp_bigquery_client::model::table_data_insert_all_request::TableDataInsertAllRequest;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_schema::TableSchema;
use quiver_provider_sdk::{OfflineStore, TableRef};
use quiver_provider_testkit::offline::OfflineHarness;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::{BigQueryConfig, BigQueryOfflineStore};

/// The emulator's REST port unless `QUIVER_BQ_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 19050;

/// The project the emulator is started with unless `QUIVER_BQ_PROJECT` says otherwise.
pub const DEFAULT_PROJECT: &str = "quiver-test";

/// Rows per `insertAll` request.
const INSERT_CHUNK: usize = 500;

fn port() -> u16 {
    std::env::var("QUIVER_BQ_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(DEFAULT_PORT)
}

/// The emulator's base URL.
pub fn endpoint() -> String {
    format!("http://127.0.0.1:{}", port())
}

/// The project tests use.
pub fn project() -> String {
    std::env::var("QUIVER_BQ_PROJECT").unwrap_or_else(|_| DEFAULT_PROJECT.to_string())
}

fn reachable() -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port()));
    TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_ok()
}

/// Make sure the emulator answers, starting it through `scripts/emulators/bqemulator.sh`
/// (once per process) when it does not.
///
/// # Panics
/// When it still does not answer: tests that need BigQuery fail, they never skip.
pub fn ensure_emulator() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = READY.get_or_init(|| {
        if reachable() {
            return Ok(());
        }
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/emulators/bqemulator.sh");
        eprintln!(
            "bqemulator at {} is not reachable; running {}",
            endpoint(),
            script.display()
        );
        let status = Command::new("bash")
            .arg(&script)
            .arg("ensure")
            .status()
            .map_err(|e| format!("could not run {}: {e}", script.display()))?;
        if !status.success() {
            return Err(format!("{} failed ({status})", script.display()));
        }
        if reachable() {
            Ok(())
        } else {
            Err(format!(
                "bqemulator at {} is still unreachable after {}",
                endpoint(),
                script.display()
            ))
        }
    });
    if let Err(message) = outcome {
        panic!("the bigquery tests need bqemulator: {message} (see ~/.cache/quiver/logs/bqemulator.log)");
    }
}

/// A store on the emulator with outputs in `dataset` (which is not created).
///
/// # Panics
/// When the configuration is refused.
pub fn emulator_store(dataset: &str) -> BigQueryOfflineStore {
    BigQueryOfflineStore::new(BigQueryConfig {
        project_id: project(),
        dataset: dataset.to_string(),
        credentials_json: None,
        endpoint: Some(endpoint()),
    })
    .expect("emulator configuration")
}

/// A fresh dataset with a store whose outputs live in it, and tables loaded from batches.
pub struct BigQueryHarness {
    dataset: String,
    store: Arc<BigQueryOfflineStore>,
    dataset_created: OnceCell<()>,
    loaded: AtomicUsize,
}

impl BigQueryHarness {
    /// # Panics
    /// When the emulator is unreachable (see [`ensure_emulator`]).
    pub fn new() -> BigQueryHarness {
        Self::with_page_rows(crate::DEFAULT_PAGE_ROWS)
    }

    /// A harness whose store reads `rows` rows per result page.
    ///
    /// # Panics
    /// When the emulator is unreachable (see [`ensure_emulator`]).
    pub fn with_page_rows(rows: i32) -> BigQueryHarness {
        ensure_emulator();
        let dataset = format!("t_{}", uuid::Uuid::new_v4().simple());
        let store = emulator_store(&dataset).with_page_rows(rows);
        BigQueryHarness {
            dataset,
            store: Arc::new(store),
            dataset_created: OnceCell::new(),
            loaded: AtomicUsize::new(0),
        }
    }

    /// The per-test dataset (loaded tables and outputs).
    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    /// The store under test, with its concrete type.
    pub fn bigquery(&self) -> &Arc<BigQueryOfflineStore> {
        &self.store
    }

    /// Create the per-test dataset (once).
    ///
    /// # Panics
    /// When the emulator refuses.
    pub async fn ensure_dataset(&self) {
        self.dataset_created
            .get_or_init(|| async {
                let api = self.store.api().await.expect("emulator client");
                api.client()
                    .dataset()
                    .create(Dataset::new(api.project(), &self.dataset))
                    .await
                    .unwrap_or_else(|e| panic!("creating dataset {}: {e}", self.dataset));
            })
            .await;
    }
}

impl Default for BigQueryHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for BigQueryHarness {
    fn drop(&mut self) {
        if self.dataset_created.get().is_none() {
            return;
        }
        if std::thread::panicking() {
            eprintln!(
                "keeping bigquery dataset {} of the failed test",
                self.dataset
            );
            return;
        }
        // Drop cannot await; a short-lived runtime on its own thread runs the cleanup.
        let dataset = self.dataset.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async {
                let store = emulator_store(&dataset);
                let api = store.api().await.map_err(|e| e.to_string())?;
                api.client()
                    .dataset()
                    .delete(api.project(), &dataset, true)
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        if let Ok(Err(e)) = cleanup.join() {
            eprintln!("could not delete bigquery dataset {}: {e}", self.dataset);
        }
    }
}

/// The BigQuery type a loaded column gets, and the Arrow type its values are read as.
fn column_type(data_type: &DataType) -> (FieldType, DataType) {
    match data_type {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => (FieldType::Int64, DataType::Int64),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            (FieldType::Float64, DataType::Float64)
        }
        DataType::Boolean => (FieldType::Bool, DataType::Boolean),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            (FieldType::String, DataType::Utf8)
        }
        DataType::Timestamp(_, None) => (
            FieldType::Datetime,
            DataType::Timestamp(TimeUnit::Microsecond, None),
        ),
        DataType::Timestamp(_, Some(_)) => (
            FieldType::Timestamp,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ),
        DataType::Date32 => (FieldType::Date, DataType::Date32),
        DataType::Binary | DataType::LargeBinary => (FieldType::Bytes, DataType::Binary),
        other => panic!("the bigquery harness cannot load a column of type {other}"),
    }
}

/// Row `row` of `array` (already cast to its read type) as an `insertAll` JSON value.
fn json_value(array: &dyn Array, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Int64 => Value::from(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float64 => {
            let v = array.as_primitive::<Float64Type>().value(row);
            // JSON has no NaN or infinities; BigQuery reads them from strings.
            if v.is_finite() {
                Value::from(v)
            } else {
                Value::from(v.to_string())
            }
        }
        DataType::Boolean => Value::from(array.as_boolean().value(row)),
        DataType::Utf8 => Value::from(array.as_string::<i32>().value(row)),
        DataType::Timestamp(_, tz) => {
            let micros = array.as_primitive::<TimestampMicrosecondType>().value(row);
            let instant =
                DateTime::<Utc>::from_timestamp_micros(micros).expect("timestamp in range");
            if tz.is_some() {
                Value::from(instant.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
            } else {
                Value::from(instant.format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
            }
        }
        DataType::Date32 => {
            let days = i64::from(array.as_primitive::<Date32Type>().value(row));
            let date = NaiveDate::default() + TimeDelta::days(days);
            Value::from(date.format("%Y-%m-%d").to_string())
        }
        DataType::Binary => Value::from(
            base64::engine::general_purpose::STANDARD.encode(array.as_binary::<i32>().value(row)),
        ),
        other => unreachable!("read type {other} is not produced by column_type"),
    }
}

#[async_trait]
impl OfflineHarness for BigQueryHarness {
    async fn load(&self, name: &str, batch: RecordBatch) -> TableRef {
        self.ensure_dataset().await;
        let api = self.store.api().await.expect("emulator client");
        // A suffix keeps a name loaded twice by one test from meeting the first table.
        let table = format!("{name}_{}", self.loaded.fetch_add(1, Ordering::Relaxed));
        let schema = batch.schema();
        let mut fields = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (field, array) in schema.fields().iter().zip(batch.columns()) {
            let (field_type, read_type) = column_type(field.data_type());
            fields.push(TableFieldSchema::new(field.name(), field_type));
            columns.push(cast(array, &read_type).expect("cast a loaded column"));
        }
        api.client()
            .table()
            .create(Table::new(
                api.project(),
                &self.dataset,
                &table,
                TableSchema::new(fields),
            ))
            .await
            .unwrap_or_else(|e| panic!("creating table {}.{table}: {e}", self.dataset));
        let mut start = 0;
        while start < batch.num_rows() {
            let end = (start + INSERT_CHUNK).min(batch.num_rows());
            let mut request = TableDataInsertAllRequest::new();
            for row in start..end {
                let object: Map<String, Value> = schema
                    .fields()
                    .iter()
                    .zip(&columns)
                    .map(|(field, column)| (field.name().clone(), json_value(column.as_ref(), row)))
                    .collect();
                request
                    .add_row(None, object)
                    .expect("a JSON row serializes");
            }
            let response = api
                .client()
                .tabledata()
                .insert_all(api.project(), &self.dataset, &table, request)
                .await
                .unwrap_or_else(|e| panic!("loading {}.{table}: {e}", self.dataset));
            if let Some(errors) = response.insert_errors.filter(|e| !e.is_empty()) {
                panic!("loading {}.{table}: rows refused: {errors:?}", self.dataset);
            }
            start = end;
        }
        TableRef::Table(format!("{}.{table}", self.dataset))
    }

    fn store(&self) -> Arc<dyn OfflineStore> {
        self.store.clone()
    }

    fn missing(&self, name: &str) -> TableRef {
        TableRef::Table(format!("{}.{name}", self.dataset))
    }
}
