//! Quiver's BigQuery offline provider: tables as sources, transformations and
//! point-in-time training sets pushed down as GoogleSQL over BigQuery's REST API.
//!
//! - **Sources** are tables or views, `dataset.table` (in the configured project) or
//!   `project.dataset.table`. Files are not supported (`Unsupported`): load them into
//!   BigQuery, or use the files provider.
//! - **Outputs** (transformations and training sets) are tables in the configured dataset,
//!   named by [`quiver_sql::output_table_name`] (BigQuery allows 1024 characters). Each
//!   run is one `CREATE OR REPLACE TABLE … AS SELECT …`, which BigQuery applies atomically:
//!   readers see the previous table or the new one, and a query that fails leaves the
//!   previous table in place. The dataset must exist (its location is the user's choice, so
//!   the provider does not create it); a missing one is reported as `NotFound`.
//! - **Training sets** are one `SELECT` from [`quiver_sql::point_in_time`] (the window plan:
//!   a range join per feature ranked with `ROW_NUMBER()` and `QUALIFY`), stored with the
//!   label row number [`quiver_sql::ROW_ID`]; [`OfflineStore::read`] orders by it and drops
//!   it. BigQuery tables have no row order, so the row number sorts the label rows by
//!   their columns (`TrainingSetOrder::LabelColumns`): the same order on every build.
//! - **Parameters** (lag, max_age, since) are sent as named query parameters `@p0`, `@p1`
//!   (`INT64`, `TIMESTAMP`), never pasted into SQL.
//! - **Results** are read page by page (`maxResults` rows, then `pageToken`), one record
//!   batch per page, so large outputs stream. Types: INT64 → Int64; FLOAT64, NUMERIC and
//!   BIGNUMERIC → Float64 (NUMERIC rounded to double precision); STRING → Utf8; BOOL →
//!   Boolean; TIMESTAMP → `Timestamp(µs, "UTC")`; DATETIME → `Timestamp(µs)` (read as UTC);
//!   DATE → Date32; BYTES → Binary; TIME, JSON, GEOGRAPHY, INTERVAL, STRUCT and ARRAY
//!   columns → Utf8 (their JSON text). The first page requests timestamps as integer
//!   microseconds (`formatOptions.useInt64Timestamp`); `gcp-bigquery-client` cannot send
//!   that option to `getQueryResults`, so on real BigQuery further pages carry float
//!   seconds, rounded to the nearest microsecond (bqemulator always sends microseconds).
//! - **Errors**: HTTP 404 / reason `notFound` → `NotFound`; 401, 403, `accessDenied` and
//!   token failures → `Unauthorized`; connection failures and timeouts, `backendError` and
//!   5xx → `Unreachable`; `invalidQuery` / `invalid` → `InvalidQuery`; each with BigQuery's
//!   message. A query that fails while running is answered with HTTP 200 and an `errors`
//!   array, which is mapped the same way.
//!
//! # Configuration
//! `{"type": "bigquery", "project_id", "dataset", "credentials_json"?, "endpoint"?}`:
//! - `credentials_json`: a service-account key (the JSON file's content), inline or
//!   `{"env": "VAR"}`. It goes through `gcp-bigquery-client`'s service-account flow and is
//!   never logged nor shown by `Debug`.
//! - without `credentials_json` and without `endpoint`: application default credentials
//!   (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud, or the metadata server).
//! - `endpoint`: another base URL than `https://bigquery.googleapis.com`, such as an
//!   emulator (`http://127.0.0.1:19050`); `/bigquery/v2` is appended unless present.
//!   Without `credentials_json` no token is sent (emulators accept any request).
//!
//! # Client
//! The REST calls go through `gcp-bigquery-client` (rustls, no OpenSSL): its
//! `ClientBuilder::with_v2_base_url` targets an emulator, and a custom `Authenticator`
//! sends no token there. Every call the provider needs parses on bqemulator's answers, so
//! no call bypasses the crate.
//!
//! # Tested against bqemulator
//! The tests run against bqemulator (`scripts/emulators/bqemulator.sh`), a DuckDB-backed
//! emulator of the REST API. What it does not show:
//! - real authentication: it accepts any request, so the service-account and application
//!   default flows are exercised only up to the token request (a key whose token endpoint
//!   is unusable gives `Unauthorized`), never with a real token;
//! - long-running jobs: it answers every query synchronously (`jobComplete: true`), so
//!   polling a running job is not exercised;
//! - BigQuery's cost and quota errors (`quotaExceeded`, `rateLimitExceeded`, billing).

mod client;
mod error;
#[cfg(feature = "testing")]
pub mod testing;
mod types;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::TryStreamExt;
use quiver_provider_sdk::{
    BatchStream, HealthReport, LatestValuesQuery, OfflineCapabilities, OfflineStore, OutputRef,
    Provider, ProviderError, ProviderFactory, ProviderHandle, SchemaRef, TableRef,
    TrainingSetQuery, Transformation,
};
use quiver_sql::{Dialect, Param, SqlError, Statement, TableName, ROW_ID};
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::client::{Api, Credentials, Page, PageCursor};
use crate::error::BigQueryError;
use crate::types::Column;

/// The provider kind this crate registers.
pub const KIND: &str = "bigquery";

/// BigQuery's public REST endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://bigquery.googleapis.com";

/// BigQuery allows table names of up to 1024 characters.
const MAX_TABLE_NAME_LEN: usize = 1024;

/// Rows per result page (and record batch) unless [`BigQueryOfflineStore::with_page_rows`]
/// says otherwise. BigQuery also caps a page at about 10 MB.
pub const DEFAULT_PAGE_ROWS: i32 = 10_000;

/// How long a health check may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// The settings of a BigQuery offline provider: the fields of `ProviderConfig::Bigquery`
/// with the credentials already resolved.
#[derive(Clone)]
pub struct BigQueryConfig {
    pub project_id: String,
    /// Where outputs live.
    pub dataset: String,
    /// A service-account key (JSON).
    pub credentials_json: Option<String>,
    /// A base URL other than [`DEFAULT_ENDPOINT`] (an emulator).
    pub endpoint: Option<String>,
}

impl std::fmt::Debug for BigQueryConfig {
    // By hand, so the key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigQueryConfig")
            .field("project_id", &self.project_id)
            .field("dataset", &self.dataset)
            .field(
                "credentials_json",
                &self.credentials_json.as_ref().map(|_| "<redacted>"),
            )
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// The `…/bigquery/v2` base URL of `endpoint`.
fn v2_base_url(endpoint: &str) -> Result<String, ProviderError> {
    let trimmed = endpoint.trim().trim_end_matches('/');
    if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
        return Err(ProviderError::InvalidConfig(format!(
            "bigquery `endpoint` must be an http:// or https:// URL, got `{}`",
            trimmed.escape_debug()
        )));
    }
    if trimmed.ends_with("/bigquery/v2") {
        Ok(trimmed.to_string())
    } else {
        Ok(format!("{trimmed}/bigquery/v2"))
    }
}

/// The BigQuery offline store.
pub struct BigQueryOfflineStore {
    project: String,
    dataset: String,
    v2_base_url: String,
    /// Used when the client is built (on first use). No `Debug`: the key is in it.
    credentials: Credentials,
    api: OnceCell<Api>,
    /// `bigquery project `p`` (and the endpoint when not Google's), for messages; never
    /// the credentials.
    target: String,
    page_rows: i32,
}

impl std::fmt::Debug for BigQueryOfflineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigQueryOfflineStore")
            .field("project", &self.project)
            .field("dataset", &self.dataset)
            .field("v2_base_url", &self.v2_base_url)
            .finish_non_exhaustive()
    }
}

impl BigQueryOfflineStore {
    /// A store for `config`. The client is built on first use, so a server that is down
    /// is reported by [`Provider::health`] and by each operation, not here.
    ///
    /// # Errors
    /// `InvalidConfig` for an empty project, an invalid dataset name, an endpoint that is
    /// not an http(s) URL, or `credentials_json` that is not a service-account key.
    pub fn new(config: BigQueryConfig) -> Result<BigQueryOfflineStore, ProviderError> {
        if config.project_id.trim().is_empty() {
            return Err(ProviderError::InvalidConfig(
                "bigquery `project_id` must not be empty".into(),
            ));
        }
        quiver_sql::BigQuery
            .quote_table(&TableName(vec![
                config.project_id.clone(),
                config.dataset.clone(),
            ]))
            .map_err(|e| ProviderError::InvalidConfig(format!("bigquery provider: {e}")))?;
        let endpoint = config.endpoint.as_deref();
        let v2_base_url = v2_base_url(endpoint.unwrap_or(DEFAULT_ENDPOINT))?;
        let credentials = match (&config.credentials_json, endpoint) {
            (Some(json), _) => Credentials::ServiceAccount(
                // The parse error is not passed on: serde's messages can quote the input.
                Box::new(
                gcp_bigquery_client::yup_oauth2::parse_service_account_key(json).map_err(
                    |_| {
                        ProviderError::InvalidConfig(
                            "bigquery `credentials_json` is not a service-account key (the JSON key file's content)".into(),
                        )
                    },
                )?,
            )),
            (None, None) => Credentials::ApplicationDefault,
            (None, Some(_)) => Credentials::None,
        };
        let target = match endpoint {
            Some(endpoint) => format!(
                "bigquery project `{}` at {}",
                config.project_id,
                endpoint.trim_end_matches('/')
            ),
            None => format!("bigquery project `{}`", config.project_id),
        };
        Ok(BigQueryOfflineStore {
            project: config.project_id,
            dataset: config.dataset,
            v2_base_url,
            credentials,
            api: OnceCell::new(),
            target,
            page_rows: DEFAULT_PAGE_ROWS,
        })
    }

    /// The same store reading results `rows` rows per page (and record batch).
    pub fn with_page_rows(mut self, rows: i32) -> BigQueryOfflineStore {
        self.page_rows = rows.max(1);
        self
    }

    /// The project queries run in.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The dataset outputs live in.
    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    async fn api(&self) -> Result<&Api, ProviderError> {
        self.api
            .get_or_try_init(|| async {
                Api::new(&self.project, &self.v2_base_url, self.credentials.clone())
                    .await
                    .map_err(|e| e.into_provider(&self.target))
            })
            .await
    }

    fn failed(&self, error: BigQueryError) -> ProviderError {
        error.into_provider(&self.target)
    }

    /// The table `table` names: `dataset.table` or `project.dataset.table` for sources,
    /// the configured dataset for outputs.
    fn resolve(&self, table: &TableRef) -> Result<TableName, SqlError> {
        match table {
            TableRef::Table(name) => {
                let parsed = TableName::parse(name)?;
                if !(2..=3).contains(&parsed.0.len()) {
                    return Err(SqlError::InvalidIdentifier {
                        identifier: name.escape_debug().to_string(),
                        reason:
                            "BigQuery tables are named `dataset.table` or `project.dataset.table`"
                                .into(),
                    });
                }
                Ok(parsed)
            }
            TableRef::Output(output) => Ok(self.output_table(output)),
            TableRef::File { path, .. } => Err(SqlError::Unsupported(format!(
                "the bigquery provider reads tables, not files (`{path}`)"
            ))),
        }
    }

    fn output_table(&self, output: &OutputRef) -> TableName {
        TableName(vec![
            self.dataset.clone(),
            quiver_sql::output_table_name(output, MAX_TABLE_NAME_LEN),
        ])
    }

    /// `name` quoted for SQL (which also validates every part).
    fn quote_table(&self, name: &TableName) -> Result<String, ProviderError> {
        quiver_sql::BigQuery.quote_table(name).map_err(error::sql)
    }

    /// `table`, quoted for SQL.
    fn quoted(&self, table: &TableRef) -> Result<String, ProviderError> {
        let name = self.resolve(table).map_err(error::sql)?;
        self.quote_table(&name)
    }

    fn quote_identifier(&self, name: &str) -> Result<String, ProviderError> {
        quiver_sql::BigQuery
            .quote_identifier(name)
            .map_err(error::sql)
    }

    /// The columns of `table` in order (row id included), from the tables API.
    ///
    /// # Errors
    /// `NotFound` naming the table when it (or its dataset) does not exist.
    async fn columns(&self, table: &TableRef) -> Result<Vec<Column>, ProviderError> {
        let name = self.resolve(table).map_err(error::sql)?;
        // Validated (and refused) by the same rules as SQL before any request is made.
        let quoted = self.quote_table(&name)?;
        let (project, dataset, table_id) = match name.0.as_slice() {
            [dataset, table_id] => (self.project.as_str(), dataset, table_id),
            [project, dataset, table_id] => (project.as_str(), dataset, table_id),
            _ => {
                return Err(ProviderError::InvalidQuery(format!(
                    "{quoted} is not `dataset.table` or `project.dataset.table`"
                )))
            }
        };
        let api = self.api().await?;
        let found = api.table(project, dataset, table_id).await.map_err(|e| {
            match (self.failed(e), table) {
                (ProviderError::NotFound(message), TableRef::Output(o)) => {
                    ProviderError::NotFound(format!(
                        "output {} `{}` variant `{}` has not been built ({quoted}): {message}",
                        o.kind, o.name, o.variant
                    ))
                }
                (other, _) => other,
            }
        })?;
        Ok(types::columns(
            found.schema.fields.as_deref().unwrap_or_default(),
        ))
    }

    /// Run `statement` and return its first page.
    async fn query(&self, statement: &Statement) -> Result<Page, ProviderError> {
        let started = Instant::now();
        let page = self
            .api()
            .await?
            .query(statement, self.page_rows)
            .await
            .map_err(|e| self.failed(e))?;
        tracing::debug!(
            target_name = %self.target,
            elapsed_ms = started.elapsed().as_millis() as u64,
            first_page_rows = page.rows.len(),
            "bigquery query finished"
        );
        Ok(page)
    }

    /// Stream every page of `statement`'s results as record batches.
    async fn stream(&self, statement: Statement) -> Result<BatchStream, ProviderError> {
        let first = self.query(&statement).await?;
        let api = self.api().await?.clone();
        let columns = Arc::new(types::columns(&first.fields));
        let schema = types::arrow_schema(&columns);
        let target = Arc::new(self.target.clone());
        let page_rows = self.page_rows;

        enum Next {
            Ready(Page),
            Fetch(PageCursor),
            Done,
        }
        let pages = futures::stream::try_unfold(Next::Ready(first), move |next| {
            let api = api.clone();
            let columns = columns.clone();
            let schema = schema.clone();
            let target = target.clone();
            async move {
                let page = match next {
                    Next::Done => return Ok(None),
                    Next::Ready(page) => page,
                    Next::Fetch(cursor) => api
                        .next_page(&cursor, page_rows)
                        .await
                        .map_err(|e| e.into_provider(&target))?,
                };
                let batch = types::to_batch(&schema, &columns, &page.rows).map_err(|e| {
                    ProviderError::Other(format!("{target}: reading a result page: {e}"))
                })?;
                let next = page.next.map_or(Next::Done, Next::Fetch);
                Ok::<_, ProviderError>(Some((batch, next)))
            }
        });
        Ok(Box::pin(pages.into_stream()))
    }

    /// Build `output` from `select` (bound with `params`) and publish it atomically with
    /// `CREATE OR REPLACE TABLE … AS`; returns the rows written.
    async fn publish(
        &self,
        output: &OutputRef,
        select: &str,
        params: Vec<Param>,
    ) -> Result<u64, ProviderError> {
        let table = self.quote_table(&self.output_table(output))?;
        // Checked first: bqemulator reports a CTAS into a missing dataset as invalidQuery.
        let api = self.api().await?;
        api.client()
            .dataset()
            .get(&self.project, &self.dataset)
            .await
            .map_err(|e| match self.failed(e.into()) {
                ProviderError::NotFound(message) => ProviderError::NotFound(format!(
                    "the output dataset `{}` does not exist (create it first): {message}",
                    self.dataset
                )),
                other => other,
            })?;
        let started = Instant::now();
        let create = Statement {
            sql: format!("CREATE OR REPLACE TABLE {table} AS {select}"),
            params,
        };
        self.query(&create).await?;
        // A CTAS reports no row count (`numDmlAffectedRows` is for DML only).
        let count = Statement {
            sql: format!("SELECT COUNT(*) FROM {table}"),
            params: Vec::new(),
        };
        let page = self.query(&count).await?;
        let written = page
            .rows
            .first()
            .and_then(|row| row.columns.as_ref())
            .and_then(|cells| cells.first())
            .and_then(|cell| cell.value.as_ref())
            .and_then(|value| value.as_str())
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| {
                ProviderError::Other(format!("{}: no row count for {table}", self.target))
            })?;
        tracing::info!(
            output = %table,
            rows = written,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "published bigquery output"
        );
        Ok(written)
    }

    /// Check that `table` has `column`.
    fn require<'c>(
        columns: &'c [Column],
        table: &str,
        column: &str,
    ) -> Result<&'c Column, ProviderError> {
        columns.iter().find(|c| c.name == column).ok_or_else(|| {
            ProviderError::NotFound(format!("column `{column}` does not exist in {table}"))
        })
    }

    /// Check that `table` has a TIMESTAMP, DATETIME or DATE column `column`.
    fn require_time(columns: &[Column], table: &str, column: &str) -> Result<(), ProviderError> {
        let found = Self::require(columns, table, column)?;
        if found.kind.is_time() {
            Ok(())
        } else {
            Err(ProviderError::InvalidQuery(format!(
                "column `{column}` of {table} is used as a timestamp but has type {}",
                found.kind.sql_name()
            )))
        }
    }

    /// Check every table and column `query` names before any SQL runs, so a mistake is
    /// reported as `NotFound`/`InvalidQuery` naming it rather than as a query error.
    async fn validate_training_set(&self, query: &TrainingSetQuery) -> Result<(), ProviderError> {
        // One catalog read per distinct table, however many features share it.
        let mut catalog: Vec<(&TableRef, String, Vec<Column>)> = Vec::new();
        for used in quiver_sql::training_set_columns(query) {
            let index = match catalog.iter().position(|(t, _, _)| *t == used.table) {
                Some(index) => index,
                None => {
                    let name = self.quoted(used.table)?;
                    catalog.push((used.table, name, self.columns(used.table).await?));
                    catalog.len() - 1
                }
            };
            let (_, name, columns) = &catalog[index];
            if used.timestamp {
                Self::require_time(columns, name, used.column)?;
            } else {
                Self::require(columns, name, used.column)?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for BigQueryOfflineStore {
    fn kind(&self) -> &str {
        KIND
    }

    async fn health(&self) -> HealthReport {
        let started = Instant::now();
        let select_one = Statement {
            sql: "SELECT 1".into(),
            params: Vec::new(),
        };
        let probe = self.query(&select_one);
        let (healthy, message) = match tokio::time::timeout(HEALTH_TIMEOUT, probe).await {
            Ok(Ok(_)) => (true, format!("{} answered", self.target)),
            Ok(Err(e)) => (false, e.to_string()),
            Err(_) => (
                false,
                format!(
                    "{} did not answer within {}s",
                    self.target,
                    HEALTH_TIMEOUT.as_secs()
                ),
            ),
        };
        HealthReport {
            healthy,
            message,
            latency: started.elapsed(),
        }
    }
}

#[async_trait]
impl OfflineStore for BigQueryOfflineStore {
    fn capabilities(&self) -> OfflineCapabilities {
        OfflineCapabilities {
            tables: true,
            files: false,
            sql_transformations: true,
            training_sets: true,
            incremental_latest_values: true,
            // BigQuery tables have no row order.
            training_set_order: quiver_provider_sdk::TrainingSetOrder::LabelColumns,
        }
    }

    async fn schema(&self, table: &TableRef) -> Result<SchemaRef, ProviderError> {
        let columns = self.columns(table).await?;
        let visible: Vec<Column> = columns.into_iter().filter(|c| c.name != ROW_ID).collect();
        Ok(types::arrow_schema(&visible))
    }

    async fn run_transformation(
        &self,
        transformation: &Transformation,
    ) -> Result<u64, ProviderError> {
        let resolve = |table: &TableRef| self.resolve(table);
        let select = quiver_sql::transformation(&quiver_sql::BigQuery, transformation, &resolve)
            .map_err(error::sql)?;
        self.publish(&transformation.output, &select, Vec::new())
            .await
    }

    async fn build_training_set(&self, query: &TrainingSetQuery) -> Result<u64, ProviderError> {
        self.validate_training_set(query).await?;
        let resolve = |table: &TableRef| self.resolve(table);
        let statement = quiver_sql::point_in_time(&quiver_sql::BigQuery, query, &resolve)
            .map_err(error::sql)?;
        self.publish(&query.output, &statement.sql, statement.params)
            .await
    }

    async fn latest_values(&self, query: &LatestValuesQuery) -> Result<BatchStream, ProviderError> {
        let table = self.quoted(&query.table)?;
        let columns = self.columns(&query.table).await?;
        Self::require(&columns, &table, &query.entity_column)?;
        Self::require(&columns, &table, &query.value_column)?;
        for ts in [&query.timestamp_column, &query.created_timestamp_column]
            .into_iter()
            .flatten()
        {
            Self::require_time(&columns, &table, ts)?;
        }
        let resolve = |table: &TableRef| self.resolve(table);
        let statement = quiver_sql::latest_values(&quiver_sql::BigQuery, query, &resolve)
            .map_err(error::sql)?;
        self.stream(statement).await
    }

    async fn read(&self, table: &TableRef) -> Result<BatchStream, ProviderError> {
        let quoted = self.quoted(table)?;
        let columns = self.columns(table).await?;
        let ordered = columns.iter().any(|c| c.name == ROW_ID);
        let list = columns
            .iter()
            .filter(|c| c.name != ROW_ID)
            .map(|c| self.quote_identifier(&c.name))
            .collect::<Result<Vec<_>, _>>()?
            .join(", ");
        let mut sql = format!("SELECT {list} FROM {quoted}");
        if ordered {
            // Training sets keep label order through the row id they were built with.
            sql.push_str(&format!(" ORDER BY {}", self.quote_identifier(ROW_ID)?));
        }
        self.stream(Statement {
            sql,
            params: Vec::new(),
        })
        .await
    }
}

/// A secret in configuration: inline, or read from an environment variable.
#[derive(Deserialize)]
#[serde(untagged)]
enum Secret {
    Inline(String),
    Env { env: String },
}

/// The `config` of a `bigquery` provider definition, as written.
#[derive(Deserialize)]
struct RawConfig {
    project_id: String,
    dataset: String,
    #[serde(default)]
    credentials_json: Option<Secret>,
    #[serde(default)]
    endpoint: Option<String>,
}

/// Builds [`BigQueryOfflineStore`]s from provider definitions:
/// `{"type": "bigquery", "project_id", "dataset", "credentials_json"?, "endpoint"?}`, the
/// credentials as a string or `{"env": "VAR"}`.
pub struct BigQueryFactory;

#[async_trait]
impl ProviderFactory for BigQueryFactory {
    async fn build(&self, config: &serde_json::Value) -> Result<ProviderHandle, ProviderError> {
        // serde's message for a bad field can quote its value, which may be the key.
        let raw: RawConfig = serde_json::from_value(config.clone()).map_err(|e| {
            ProviderError::InvalidConfig(format!(
                "bigquery provider: expected {{project_id, dataset, credentials_json?, endpoint?}} (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let credentials_json = match raw.credentials_json {
            None => None,
            Some(Secret::Inline(value)) => Some(value),
            Some(Secret::Env { env }) => Some(std::env::var(&env).map_err(|_| {
                ProviderError::InvalidConfig(format!(
                    "`credentials_json` reads the environment variable `{env}`, which is not set"
                ))
            })?),
        };
        let store = BigQueryOfflineStore::new(BigQueryConfig {
            project_id: raw.project_id,
            dataset: raw.dataset,
            credentials_json,
            endpoint: raw.endpoint,
        })?;
        Ok(ProviderHandle::Offline(Arc::new(store)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_the_v2_path_once() {
        assert_eq!(
            v2_base_url("http://127.0.0.1:19050/").unwrap(),
            "http://127.0.0.1:19050/bigquery/v2"
        );
        assert_eq!(
            v2_base_url("https://example.test/bigquery/v2").unwrap(),
            "https://example.test/bigquery/v2"
        );
        assert!(matches!(
            v2_base_url("127.0.0.1:19050"),
            Err(ProviderError::InvalidConfig(_))
        ));
    }

    #[test]
    fn config_debug_hides_the_key() {
        let config = BigQueryConfig {
            project_id: "p".into(),
            dataset: "d".into(),
            credentials_json: Some("{\"private_key\": \"hunter2\"}".into()),
            endpoint: None,
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn a_key_that_does_not_parse_is_not_repeated() {
        let err = BigQueryOfflineStore::new(BigQueryConfig {
            project_id: "p".into(),
            dataset: "d".into(),
            credentials_json: Some("{\"private_key\": \"hunter2\"".into()),
            endpoint: None,
        })
        .unwrap_err();
        assert!(matches!(err, ProviderError::InvalidConfig(_)));
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
