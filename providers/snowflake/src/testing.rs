//! [`SnowflakeHarness`]: the offline conformance harness against fakesnow, a Snowflake
//! emulator over DuckDB that speaks Snowflake's HTTP protocol. Each harness works in a
//! database of its own, so tests run in parallel against one server.
//!
//! The server is `127.0.0.1:${QUIVER_FAKESNOW_PORT:-18080}`; when nothing answers there the
//! harness runs `scripts/emulators/fakesnow.sh` to install and start it, and panics when
//! that fails (tests fail rather than skip).

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType};
use async_trait::async_trait;
use chrono::DateTime;
use quiver_provider_sdk::{OfflineStore, TableRef};
use quiver_provider_testkit::offline::OfflineHarness;
use quiver_sql::{Dialect, Snowflake};
use tokio::sync::OnceCell;

use crate::client::{Client, Login};
use crate::{SnowflakeConfig, SnowflakeOfflineStore};

/// Rows per INSERT statement.
const INSERT_ROWS: usize = 500;

/// The fakesnow port (`QUIVER_FAKESNOW_PORT`, default 18080).
pub fn fakesnow_port() -> u16 {
    std::env::var("QUIVER_FAKESNOW_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(18080)
}

/// fakesnow's base URL, started through `scripts/emulators/fakesnow.sh` when needed.
///
/// # Panics
/// When fakesnow is not running and cannot be started.
pub fn ensure_fakesnow() -> String {
    let port = fakesnow_port();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    if TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err() {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/emulators/fakesnow.sh");
        let output = Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            output.status.success(),
            "fakesnow is not running on 127.0.0.1:{port} and {} could not start it: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    format!("http://127.0.0.1:{port}")
}

/// A configuration for fakesnow (which accepts any account, user and password).
pub fn fakesnow_config(database: &str) -> SnowflakeConfig {
    SnowflakeConfig {
        account: "quiver".into(),
        user: "quiver".into(),
        password: Some("fakesnow-accepts-any-password".into()),
        private_key: None,
        warehouse: "QUIVER_WH".into(),
        database: database.into(),
        schema: "PUBLIC".into(),
        role: None,
        host: Some(ensure_fakesnow()),
    }
}

/// A fresh database on fakesnow; [`OfflineHarness::load`] creates tables in it.
pub struct SnowflakeHarness {
    config: SnowflakeConfig,
    admin: Client,
    created: OnceCell<()>,
    store: Arc<SnowflakeOfflineStore>,
}

impl Default for SnowflakeHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl SnowflakeHarness {
    /// # Panics
    /// When fakesnow cannot be started.
    pub fn new() -> Self {
        let database = format!("QUIVER_T_{}", uuid::Uuid::new_v4().simple()).to_uppercase();
        let config = fakesnow_config(&database);
        let admin = Client::new(login(&config)).expect("fakesnow client");
        let store = SnowflakeOfflineStore::new(config.clone())
            .expect("fakesnow store")
            // fakesnow cannot parse ASOF JOIN … MATCH_CONDITION.
            .with_window_plan();
        SnowflakeHarness {
            config,
            admin,
            created: OnceCell::new(),
            store: Arc::new(store),
        }
    }

    /// The configuration the store under test uses.
    pub fn config(&self) -> &SnowflakeConfig {
        &self.config
    }

    /// The store under test, with its concrete type.
    pub fn snowflake_store(&self) -> Arc<SnowflakeOfflineStore> {
        self.store.clone()
    }

    /// Run a statement in the harness's database (setup only).
    ///
    /// # Panics
    /// When the statement fails.
    pub async fn execute(&self, sql: &str) {
        self.ensure_database().await;
        self.admin
            .query(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("fakesnow: `{sql}`: {e}"));
    }

    async fn ensure_database(&self) {
        self.created
            .get_or_init(|| async {
                let database = quote(&self.config.database);
                let schema = quote(&self.config.schema);
                for sql in [
                    format!("CREATE DATABASE IF NOT EXISTS {database}"),
                    format!("CREATE SCHEMA IF NOT EXISTS {database}.{schema}"),
                    format!("USE SCHEMA {database}.{schema}"),
                ] {
                    self.admin
                        .query(&sql, &[])
                        .await
                        .unwrap_or_else(|e| panic!("fakesnow: `{sql}`: {e}"));
                }
            })
            .await;
    }
}

fn login(config: &SnowflakeConfig) -> Login {
    Login {
        base_url: config.base_url(),
        account: config.account.clone(),
        user: config.user.clone(),
        password: config.password.clone().unwrap_or_default(),
        database: config.database.clone(),
        schema: config.schema.clone(),
        warehouse: config.warehouse.clone(),
        role: config.role.clone(),
    }
}

fn quote(identifier: &str) -> String {
    Snowflake
        .quote_identifier(identifier)
        .unwrap_or_else(|e| panic!("test identifier {identifier:?}: {e}"))
}

/// The Snowflake column type a test column is created with.
fn column_type(data_type: &DataType) -> &'static str {
    match data_type {
        t if t.is_integer() => "NUMBER(38,0)",
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "FLOAT",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR",
        DataType::Boolean => "BOOLEAN",
        DataType::Date32 | DataType::Date64 => "DATE",
        DataType::Binary | DataType::LargeBinary => "BINARY",
        DataType::Timestamp(_, None) => "TIMESTAMP_NTZ",
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP_TZ",
        other => panic!("no Snowflake column type for {other} in the test harness"),
    }
}

/// A string literal: Snowflake strings escape `\` as well as `'`.
fn text_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// Each row of `array` as a SQL literal.
fn literals(array: &ArrayRef) -> Vec<String> {
    let cast = |to: &DataType| arrow::compute::cast(array, to).expect("test column cast");
    let data_type = array.data_type();
    let values: Vec<Option<String>> = match data_type {
        t if t.is_integer() => cast(&DataType::Int64)
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(|v| v.to_string()))
            .collect(),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => cast(&DataType::Float64)
            .as_primitive::<Float64Type>()
            .iter()
            .map(|v| v.map(|v| format!("'{v:?}'::FLOAT")))
            .collect(),
        DataType::Boolean => array
            .as_boolean()
            .iter()
            .map(|v| v.map(|v| v.to_string().to_uppercase()))
            .collect(),
        DataType::Timestamp(_, zone) => cast(&DataType::Timestamp(TimeUnit::Microsecond, None))
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .map(|v| {
                v.map(|micros| {
                    let at = DateTime::from_timestamp_micros(micros)
                        .expect("test timestamp in range")
                        .format("%Y-%m-%d %H:%M:%S%.6f");
                    match zone {
                        Some(_) => format!("'{at} +00:00'::TIMESTAMP_TZ"),
                        None => format!("'{at}'::TIMESTAMP_NTZ"),
                    }
                })
            })
            .collect(),
        DataType::Date32 | DataType::Date64 => cast(&DataType::Utf8)
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(|v| format!("'{v}'::DATE")))
            .collect(),
        DataType::Binary | DataType::LargeBinary => cast(&DataType::Binary)
            .as_binary::<i32>()
            .iter()
            .map(|v| {
                v.map(|bytes| {
                    let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
                    format!("TO_BINARY('{hex}', 'HEX')")
                })
            })
            .collect(),
        _ => cast(&DataType::Utf8)
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(text_literal))
            .collect(),
    };
    values
        .into_iter()
        .map(|v| v.unwrap_or_else(|| "NULL".into()))
        .collect()
}

#[async_trait]
impl OfflineHarness for SnowflakeHarness {
    async fn load(&self, name: &str, batch: RecordBatch) -> TableRef {
        let table = quote(name);
        let schema = batch.schema();
        let definitions: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| format!("{} {}", quote(f.name()), column_type(f.data_type())))
            .collect();
        self.execute(&format!(
            "CREATE OR REPLACE TABLE {table} ({})",
            definitions.join(", ")
        ))
        .await;
        let columns: Vec<Vec<String>> = batch.columns().iter().map(literals).collect();
        let rows: Vec<String> = (0..batch.num_rows())
            .map(|row| {
                let values: Vec<&str> = columns.iter().map(|c| c[row].as_str()).collect();
                format!("({})", values.join(", "))
            })
            .collect();
        for chunk in rows.chunks(INSERT_ROWS) {
            self.execute(&format!("INSERT INTO {table} VALUES {}", chunk.join(", ")))
                .await;
        }
        TableRef::Table(name.to_string())
    }

    fn store(&self) -> Arc<dyn OfflineStore> {
        self.store.clone()
    }

    fn missing(&self, name: &str) -> TableRef {
        TableRef::Table(name.to_string())
    }
}
