//! The calls the provider makes, over `gcp_bigquery_client`: queries (with named
//! parameters, waiting for the job, and paging through results), and table metadata.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gcp_bigquery_client::auth::Authenticator;
use gcp_bigquery_client::client_builder::ClientBuilder;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::model::data_format_options::DataFormatOptions;
use gcp_bigquery_client::model::get_query_results_parameters::GetQueryResultsParameters;
use gcp_bigquery_client::model::query_parameter::QueryParameter;
use gcp_bigquery_client::model::query_parameter_type::QueryParameterType;
use gcp_bigquery_client::model::query_parameter_value::QueryParameterValue;
use gcp_bigquery_client::model::query_request::QueryRequest;
use gcp_bigquery_client::model::query_response::QueryResponse;
use gcp_bigquery_client::model::table::Table;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_row::TableRow;
use gcp_bigquery_client::Client;
use quiver_sql::{Param, Statement};

use crate::error::BigQueryError;

/// How long one HTTP request may take to connect; a server that does not answer in this
/// time is reported unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one HTTP request may take in all. Long queries do not hit this: BigQuery
/// answers `jobComplete: false` after [`WAIT_MS`] and the job is polled.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long BigQuery holds one `jobs.query` / `getQueryResults` call for a running job.
const WAIT_MS: i32 = 10_000;

/// The emulator's authenticator: BigQuery emulators accept any request, so no token is
/// fetched (the client sends an empty bearer token, which they ignore).
#[derive(Clone)]
struct NoToken;

#[async_trait]
impl Authenticator for NoToken {
    async fn access_token(&self) -> Result<String, BQError> {
        Ok(String::new())
    }
}

/// How the client authenticates. No `Debug`: a service-account key's `Debug` shows it.
#[derive(Clone)]
pub(crate) enum Credentials {
    /// A service-account key (the parsed `credentials_json`).
    ServiceAccount(Box<gcp_bigquery_client::yup_oauth2::ServiceAccountKey>),
    /// Application default credentials (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud, the
    /// metadata server), for real BigQuery without a key in the configuration.
    ApplicationDefault,
    /// No token, for an emulator.
    None,
}

/// One page of a query's results.
pub(crate) struct Page {
    pub(crate) fields: Vec<TableFieldSchema>,
    pub(crate) rows: Vec<TableRow>,
    /// Where the next page is, when there is one.
    pub(crate) next: Option<PageCursor>,
}

/// The job and page token of a further result page.
#[derive(Clone)]
pub(crate) struct PageCursor {
    job_id: String,
    location: Option<String>,
    token: String,
}

/// A BigQuery REST client bound to one project.
#[derive(Clone)]
pub(crate) struct Api {
    client: Arc<Client>,
    project: String,
}

impl Api {
    /// `v2_base_url` is `…/bigquery/v2`.
    pub(crate) async fn new(
        project: &str,
        v2_base_url: &str,
        credentials: Credentials,
    ) -> Result<Api, BigQueryError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        let mut builder = ClientBuilder::new();
        builder
            .with_v2_base_url(v2_base_url.to_string())
            .with_client(http);
        let client = match credentials {
            Credentials::ServiceAccount(key) => {
                builder.build_from_service_account_key(*key, false).await?
            }
            Credentials::ApplicationDefault => {
                builder.build_from_application_default_credentials().await?
            }
            Credentials::None => builder.build_from_authenticator(Arc::new(NoToken)).await?,
        };
        Ok(Api {
            client: Arc::new(client),
            project: project.to_string(),
        })
    }

    pub(crate) fn project(&self) -> &str {
        &self.project
    }

    /// The underlying client, for calls this wrapper does not cover.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Run `statement` (its parameters bound as named `@p<i>` parameters), wait for it to
    /// finish, and return the first page of at most `page_rows` rows.
    pub(crate) async fn query(
        &self,
        statement: &Statement,
        page_rows: i32,
    ) -> Result<Page, BigQueryError> {
        let mut request = QueryRequest::new(statement.sql.clone());
        request.use_legacy_sql = false;
        request.max_results = Some(page_rows);
        request.timeout_ms = Some(WAIT_MS);
        request.format_options = Some(micros_timestamps());
        if !statement.params.is_empty() {
            request.parameter_mode = Some("NAMED".into());
            request.query_parameters = Some(
                statement
                    .params
                    .iter()
                    .enumerate()
                    .map(|(i, p)| parameter(i, p))
                    .collect(),
            );
        }
        let mut response = self.client.job().query(&self.project, request).await?;
        check(&response)?;
        // A job still running is polled until it finishes (or fails).
        while response.job_complete != Some(true) {
            let (job_id, location) = job_of(&response)?;
            let parameters = GetQueryResultsParameters {
                location,
                max_results: Some(page_rows),
                timeout_ms: Some(WAIT_MS),
                ..Default::default()
            };
            response = self
                .client
                .job()
                .get_query_results(&self.project, &job_id, parameters)
                .await?
                .into();
            check(&response)?;
        }
        page(response)
    }

    /// The page `cursor` points at.
    pub(crate) async fn next_page(
        &self,
        cursor: &PageCursor,
        page_rows: i32,
    ) -> Result<Page, BigQueryError> {
        let parameters = GetQueryResultsParameters {
            location: cursor.location.clone(),
            max_results: Some(page_rows),
            page_token: Some(cursor.token.clone()),
            timeout_ms: Some(WAIT_MS),
            ..Default::default()
        };
        let response: QueryResponse = self
            .client
            .job()
            .get_query_results(&self.project, &cursor.job_id, parameters)
            .await?
            .into();
        check(&response)?;
        page(response)
    }

    /// A table's metadata (its schema among it).
    pub(crate) async fn table(
        &self,
        project: &str,
        dataset: &str,
        table: &str,
    ) -> Result<Table, BigQueryError> {
        Ok(self
            .client
            .table()
            .get(project, dataset, table, None)
            .await?)
    }
}

/// Timestamps as integer microseconds: exact, unlike the default float seconds. Only the
/// first page asks for them: `gcp-bigquery-client` sends `getQueryResults` parameters as a
/// flat query string and cannot encode the nested `formatOptions` ("unsupported value"),
/// so further pages of real BigQuery carry float seconds, rounded to the microsecond.
fn micros_timestamps() -> DataFormatOptions {
    DataFormatOptions {
        use_int64_timestamp: Some(true),
    }
}

fn parameter(index: usize, param: &Param) -> QueryParameter {
    let (sql_type, value) = match param {
        Param::Int(v) => ("INT64", v.to_string()),
        Param::Timestamp(t) => (
            "TIMESTAMP",
            t.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string(),
        ),
    };
    QueryParameter {
        name: Some(format!("p{index}")),
        parameter_type: Some(QueryParameterType {
            r#type: sql_type.into(),
            ..Default::default()
        }),
        parameter_value: Some(QueryParameterValue {
            value: Some(value),
            ..Default::default()
        }),
    }
}

/// A failed job answers HTTP 200 with `errors` (with `jobComplete` true or absent).
fn check(response: &QueryResponse) -> Result<(), BigQueryError> {
    match &response.errors {
        Some(errors) if !errors.is_empty() => Err(BigQueryError::job(errors)),
        _ => Ok(()),
    }
}

fn job_of(response: &QueryResponse) -> Result<(String, Option<String>), BigQueryError> {
    let reference = response.job_reference.as_ref();
    let job_id = reference
        .and_then(|r| r.job_id.clone())
        .ok_or_else(|| BigQueryError::Protocol("a query response without a job id".into()))?;
    Ok((job_id, reference.and_then(|r| r.location.clone())))
}

fn page(response: QueryResponse) -> Result<Page, BigQueryError> {
    let rows = response.rows.clone().unwrap_or_default();
    let next = match &response.page_token {
        // An empty page ends the results even with a token, so a server that keeps
        // handing out tokens cannot make a reader loop forever.
        Some(token) if !token.is_empty() && !rows.is_empty() => {
            let (job_id, location) = job_of(&response)?;
            Some(PageCursor {
                job_id,
                location,
                token: token.clone(),
            })
        }
        _ => None,
    };
    Ok(Page {
        fields: response.schema.and_then(|s| s.fields).unwrap_or_default(),
        rows,
        next,
    })
}
