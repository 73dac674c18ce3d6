//! The offline conformance harness for Postgres (cargo feature `testing`), shared by this
//! crate's tests and the cross-engine tests.
//!
//! Each harness works in a fresh schema `t_<uuid>` on the server named by
//! `QUIVER_TEST_POSTGRES_URL` (default [`DEFAULT_URL`]): tables loaded from record batches
//! and the store's outputs both live there, so tests run in parallel without colliding and
//! reruns never meet old tables. The schema is dropped when the harness is, unless the
//! test is failing (then it is kept for inspection and its name printed).
//!
//! When the server does not answer, `scripts/services.sh` is run once to start it; a server
//! still unreachable after that fails the test with a message saying so.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use quiver_provider_sdk::{OfflineStore, TableRef};
use quiver_provider_testkit::offline::OfflineHarness;
use sqlx::postgres::{PgArguments, PgConnectOptions};
use sqlx::query::Query;
use sqlx::{Connection, Executor, Postgres};
use tokio::sync::OnceCell;

use crate::PostgresOfflineStore;

/// The server tests use when `QUIVER_TEST_POSTGRES_URL` is not set.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The test server's URL.
pub fn test_url() -> String {
    std::env::var("QUIVER_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

fn reachable(addresses: &[SocketAddr]) -> bool {
    addresses
        .iter()
        .any(|a| TcpStream::connect_timeout(a, Duration::from_secs(2)).is_ok())
}

/// Make sure the test server accepts connections, starting it through
/// `scripts/services.sh` (once per process) when it does not.
///
/// # Panics
/// When it is still unreachable: tests that need Postgres fail, they never skip.
pub fn ensure_server() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = READY.get_or_init(|| {
        let url = test_url();
        let options = PgConnectOptions::from_str(&url)
            .map_err(|e| format!("QUIVER_TEST_POSTGRES_URL does not parse: {e}"))?;
        let target = format!("{}:{}", options.get_host(), options.get_port());
        let addresses: Vec<SocketAddr> = target
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {target}: {e}"))?
            .collect();
        if reachable(&addresses) {
            return Ok(());
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/services.sh");
        eprintln!(
            "postgres at {target} is not reachable; running {}",
            script.display()
        );
        let status = Command::new("bash")
            .arg(&script)
            .status()
            .map_err(|e| format!("could not run {}: {e}", script.display()))?;
        if !status.success() {
            return Err(format!("{} failed ({status})", script.display()));
        }
        if reachable(&addresses) {
            Ok(())
        } else {
            Err(format!(
                "postgres at {target} is still unreachable after {}",
                script.display()
            ))
        }
    });
    if let Err(message) = outcome {
        panic!("the postgres tests need a server: {message} (set QUIVER_TEST_POSTGRES_URL to use another)");
    }
}

/// A fresh schema with a store whose outputs live in it, and tables loaded from batches.
pub struct PostgresHarness {
    schema: String,
    store: Arc<PostgresOfflineStore>,
    schema_created: OnceCell<()>,
    loaded: AtomicUsize,
}

impl PostgresHarness {
    /// # Panics
    /// When the server is unreachable (see [`ensure_server`]). Must be called inside a
    /// Tokio runtime.
    pub fn new() -> PostgresHarness {
        ensure_server();
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let store = PostgresOfflineStore::connect_url(&test_url(), &schema)
            .expect("QUIVER_TEST_POSTGRES_URL is a valid URL");
        PostgresHarness {
            schema,
            store: Arc::new(store),
            schema_created: OnceCell::new(),
            loaded: AtomicUsize::new(0),
        }
    }

    /// The per-test schema (loaded tables and outputs).
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The store under test, with its concrete type.
    pub fn postgres(&self) -> &Arc<PostgresOfflineStore> {
        &self.store
    }

    /// Run one statement in the test database.
    ///
    /// # Panics
    /// When it fails.
    pub async fn execute(&self, sql: &str) {
        self.ensure_schema().await;
        sqlx::query(sql)
            .persistent(false)
            .execute(self.store.pool())
            .await
            .unwrap_or_else(|e| panic!("`{sql}`: {e}"));
    }

    async fn ensure_schema(&self) {
        self.schema_created
            .get_or_init(|| async {
                sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", self.schema))
                    .persistent(false)
                    .execute(self.store.pool())
                    .await
                    .expect("create the test schema");
            })
            .await;
    }
}

impl Default for PostgresHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PostgresHarness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping postgres schema {} of the failed test", self.schema);
            return;
        }
        // Drop cannot await; a short-lived runtime on its own thread runs the cleanup.
        let schema = self.schema.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&test_url()).await?;
                // A stream the test dropped half-read may still hold a lock on a table
                // until this runtime runs again: give up rather than wait for it.
                conn.execute("SET lock_timeout = '5s'").await?;
                conn.execute(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE").as_str())
                    .await?;
                conn.close().await
            })
        });
        if let Ok(Err(e)) = cleanup.join() {
            eprintln!("could not drop postgres schema {}: {e}", self.schema);
        }
    }
}

/// The Postgres type a loaded column gets, and the Arrow type its values are bound as.
fn column_type(data_type: &DataType) -> (&'static str, DataType) {
    match data_type {
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => ("smallint", DataType::Int64),
        DataType::Int32 | DataType::UInt16 => ("integer", DataType::Int64),
        DataType::Int64 | DataType::UInt32 => ("bigint", DataType::Int64),
        DataType::Float16 | DataType::Float32 => ("real", DataType::Float64),
        DataType::Float64 => ("double precision", DataType::Float64),
        DataType::Boolean => ("boolean", DataType::Boolean),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ("text", DataType::Utf8),
        DataType::Timestamp(_, None) => (
            "timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, None),
        ),
        DataType::Timestamp(_, Some(_)) => (
            "timestamptz",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ),
        DataType::Date32 => ("date", DataType::Date32),
        DataType::Binary | DataType::LargeBinary => ("bytea", DataType::Binary),
        other => panic!("the postgres harness cannot load a column of type {other}"),
    }
}

/// Bind row `row` of `array` (already cast to its bind type).
fn bind_value<'q>(
    query: Query<'q, Postgres, PgArguments>,
    array: &dyn Array,
    row: usize,
) -> Query<'q, Postgres, PgArguments> {
    let null = array.is_null(row);
    match array.data_type() {
        DataType::Int64 => {
            query.bind((!null).then(|| array.as_primitive::<Int64Type>().value(row)))
        }
        DataType::Float64 => {
            query.bind((!null).then(|| array.as_primitive::<Float64Type>().value(row)))
        }
        DataType::Boolean => query.bind((!null).then(|| array.as_boolean().value(row))),
        DataType::Utf8 => {
            query.bind((!null).then(|| array.as_string::<i32>().value(row).to_string()))
        }
        DataType::Timestamp(_, tz) => {
            let micros =
                (!null).then(|| array.as_primitive::<TimestampMicrosecondType>().value(row));
            let instant = micros
                .map(|m| DateTime::<Utc>::from_timestamp_micros(m).expect("timestamp in range"));
            if tz.is_some() {
                query.bind(instant)
            } else {
                query.bind(instant.map(|t| t.naive_utc()))
            }
        }
        DataType::Date32 => query.bind((!null).then(|| {
            NaiveDate::default()
                + TimeDelta::days(i64::from(array.as_primitive::<Date32Type>().value(row)))
        })),
        DataType::Binary => {
            query.bind((!null).then(|| array.as_binary::<i32>().value(row).to_vec()))
        }
        other => unreachable!("bind type {other} is not produced by column_type"),
    }
}

/// Bound parameters per statement stay well under Postgres's limit of 65535.
const MAX_PARAMS: usize = 30_000;

#[async_trait]
impl OfflineHarness for PostgresHarness {
    async fn load(&self, name: &str, batch: RecordBatch) -> TableRef {
        self.ensure_schema().await;
        // A suffix keeps a name loaded twice by one test from meeting the first table.
        let table = format!("{name}_{}", self.loaded.fetch_add(1, Ordering::Relaxed));
        let qualified = format!("\"{}\".\"{}\"", self.schema, table.replace('"', "\"\""));
        let schema = batch.schema();
        let mut definitions = Vec::new();
        let mut columns = Vec::new();
        for (field, array) in schema.fields().iter().zip(batch.columns()) {
            let (pg_type, bind_type) = column_type(field.data_type());
            definitions.push(format!(
                "\"{}\" {pg_type}",
                field.name().replace('"', "\"\"")
            ));
            columns.push(cast(array, &bind_type).expect("cast a loaded column"));
        }
        self.execute(&format!(
            "CREATE TABLE {qualified} ({})",
            definitions.join(", ")
        ))
        .await;
        let width = columns.len().max(1);
        let rows_per_insert = (MAX_PARAMS / width).max(1);
        let mut start = 0;
        while start < batch.num_rows() {
            let end = (start + rows_per_insert).min(batch.num_rows());
            let tuples: Vec<String> = (start..end)
                .map(|row| {
                    let first = (row - start) * width;
                    let placeholders: Vec<String> =
                        (0..width).map(|c| format!("${}", first + c + 1)).collect();
                    format!("({})", placeholders.join(", "))
                })
                .collect();
            let sql = format!("INSERT INTO {qualified} VALUES {}", tuples.join(", "));
            let mut query = sqlx::query(&sql).persistent(false);
            for row in start..end {
                for column in &columns {
                    query = bind_value(query, column.as_ref(), row);
                }
            }
            query
                .execute(self.store.pool())
                .await
                .unwrap_or_else(|e| panic!("loading {qualified}: {e}"));
            start = end;
        }
        TableRef::Table(format!("{}.{table}", self.schema))
    }

    fn store(&self) -> Arc<dyn OfflineStore> {
        self.store.clone()
    }

    fn missing(&self, name: &str) -> TableRef {
        TableRef::Table(format!("{}.{name}", self.schema))
    }
}
