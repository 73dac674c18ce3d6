//! The part of Snowflake's HTTP protocol (the one its drivers speak) this provider needs:
//! password login for a session token, one statement per query request with positional
//! bindings, results as Arrow IPC (`rowsetBase64`, then downloaded `chunks`) or as a JSON
//! `rowset`, and polling while a statement is still running.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use base64::Engine;
use chrono::{DateTime, Utc};
use quiver_sql::Param;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Mutex;
use tracing::debug;

use crate::error::SnowflakeError;
use crate::types::{self, ColumnType};

/// Statement results are requested as Arrow.
const ARROW: &str = "application/snowflake";
/// Codes of a statement still running: poll `getResultUrl`.
const IN_PROGRESS: [&str; 2] = ["333333", "333334"];
/// Codes of an expired or unknown session token: log in again once.
const SESSION_GONE: [&str; 3] = ["390104", "390112", "390114"];

/// Where and as whom to log in. `Debug` leaves the password out.
#[derive(Clone)]
pub struct Login {
    /// Base URL, e.g. `https://acme.snowflakecomputing.com` or `http://127.0.0.1:18080`.
    pub base_url: String,
    pub account: String,
    pub user: String,
    pub password: String,
    pub database: String,
    pub schema: String,
    pub warehouse: String,
    pub role: Option<String>,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("base_url", &self.base_url)
            .field("account", &self.account)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("database", &self.database)
            .field("schema", &self.schema)
            .field("warehouse", &self.warehouse)
            .field("role", &self.role)
            .finish()
    }
}

/// A logged-in (lazily) Snowflake session.
pub struct Client {
    http: reqwest::Client,
    login: Login,
    /// The session token, after the first login.
    token: Mutex<Option<String>>,
    sequence: AtomicU64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    success: bool,
    code: Option<String>,
    message: Option<String>,
    data: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryData {
    #[serde(default)]
    rowtype: Vec<ColumnType>,
    rowset_base64: Option<String>,
    rowset: Option<Vec<Vec<Option<String>>>>,
    #[serde(default)]
    chunks: Vec<Chunk>,
    #[serde(default)]
    chunk_headers: HashMap<String, String>,
    qrmk: Option<String>,
    query_id: Option<String>,
}

#[derive(Deserialize)]
struct Chunk {
    url: String,
}

/// A statement's result: its schema, the batches that came inline, and the chunks still to
/// download (fetched one at a time by [`QueryResult::next_batch`]).
pub struct QueryResult {
    pub columns: Vec<ColumnType>,
    pub schema: SchemaRef,
    ready: VecDeque<RecordBatch>,
    chunks: VecDeque<String>,
    chunk_headers: HeaderMap,
    http: reqwest::Client,
}

impl QueryResult {
    /// The next batch, downloading the next chunk when the inline ones are used up.
    pub async fn next_batch(&mut self) -> Result<Option<RecordBatch>, SnowflakeError> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                return Ok(Some(batch));
            }
            let Some(url) = self.chunks.pop_front() else {
                return Ok(None);
            };
            let bytes = self
                .http
                .get(&url)
                .headers(self.chunk_headers.clone())
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| SnowflakeError::from_http("a result chunk", &e))?
                .bytes()
                .await
                .map_err(|e| SnowflakeError::from_http("a result chunk", &e))?;
            let bytes = gunzip_if_needed(&bytes)?;
            self.ready = decode_ipc(&bytes, &self.columns, &self.schema)?.into();
        }
    }

    /// Every batch, for small results (counts, descriptions).
    pub async fn collect(mut self) -> Result<Vec<RecordBatch>, SnowflakeError> {
        let mut batches = Vec::new();
        while let Some(batch) = self.next_batch().await? {
            batches.push(batch);
        }
        Ok(batches)
    }
}

fn gunzip_if_needed(bytes: &[u8]) -> Result<Vec<u8>, SnowflakeError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| SnowflakeError::Protocol(format!("gzip result chunk: {e}")))?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

fn decode_ipc(
    bytes: &[u8],
    columns: &[ColumnType],
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, SnowflakeError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let reader = arrow::ipc::reader::StreamReader::try_new(bytes, None)?;
    reader
        .map(|batch| types::convert_batch(&batch?, columns, schema))
        .collect()
}

/// A bound parameter in Snowflake's binding format.
fn binding(param: &Param) -> Value {
    match param {
        Param::Int(value) => json!({"type": "FIXED", "value": value.to_string()}),
        // Nanoseconds since the epoch; the dialect compares instants as UTC TIMESTAMP_NTZ.
        Param::Timestamp(value) => {
            json!({"type": "TIMESTAMP_NTZ", "value": timestamp_nanos(*value).to_string()})
        }
    }
}

fn timestamp_nanos(value: DateTime<Utc>) -> i128 {
    i128::from(value.timestamp()) * 1_000_000_000 + i128::from(value.timestamp_subsec_nanos())
}

impl Client {
    /// # Errors
    /// [`SnowflakeError::Config`] when the HTTP client cannot be built.
    pub fn new(login: Login) -> Result<Client, SnowflakeError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!(
                "quiver-provider-snowflake/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| SnowflakeError::Config(format!("HTTP client: {e}")))?;
        Ok(Client {
            http,
            login,
            token: Mutex::new(None),
            sequence: AtomicU64::new(1),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.login.base_url.trim_end_matches('/'))
    }

    async fn post(
        &self,
        url: &str,
        query: &[(&str, &str)],
        token: Option<&str>,
        body: &Value,
    ) -> Result<Envelope, SnowflakeError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut request = self
            .http
            .post(url)
            .query(&[("requestId", request_id.as_str())])
            .query(query)
            .header(ACCEPT, ARROW)
            .json(body);
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, auth_header(token)?);
        }
        let response = request
            .send()
            .await
            .map_err(|e| SnowflakeError::from_http(url, &e))?;
        read_envelope(url, response).await
    }

    async fn login(&self) -> Result<String, SnowflakeError> {
        let login = &self.login;
        let mut query = vec![
            ("databaseName", login.database.as_str()),
            ("schemaName", login.schema.as_str()),
            ("warehouse", login.warehouse.as_str()),
        ];
        if let Some(role) = &login.role {
            query.push(("roleName", role.as_str()));
        }
        let body = json!({"data": {
            "CLIENT_APP_ID": "Quiver",
            "CLIENT_APP_VERSION": env!("CARGO_PKG_VERSION"),
            "ACCOUNT_NAME": login.account,
            "LOGIN_NAME": login.user,
            "PASSWORD": login.password,
            // Naive timestamps are read as UTC everywhere in Quiver.
            "SESSION_PARAMETERS": {"TIMEZONE": "UTC"},
        }});
        let url = self.url("/session/v1/login-request");
        let envelope = self.post(&url, &query, None, &body).await?;
        let data = success(envelope)?;
        let token = data
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| SnowflakeError::Protocol("login answer without a token".into()))?;
        debug!(account = %login.account, user = %login.user, "snowflake session opened");
        Ok(token.to_string())
    }

    async fn token(&self, renew: bool) -> Result<String, SnowflakeError> {
        let mut token = self.token.lock().await;
        if renew {
            *token = None;
        }
        if let Some(existing) = token.as_ref() {
            return Ok(existing.clone());
        }
        let fresh = self.login().await?;
        *token = Some(fresh.clone());
        Ok(fresh)
    }

    /// Run one statement with positional `?` bindings.
    ///
    /// # Errors
    /// Whatever the server or the connection reports, as [`SnowflakeError`].
    pub async fn query(&self, sql: &str, params: &[Param]) -> Result<QueryResult, SnowflakeError> {
        let mut body = json!({
            "sqlText": sql,
            "asyncExec": false,
            "isInternal": false,
        });
        if !params.is_empty() {
            let bindings: serde_json::Map<String, Value> = params
                .iter()
                .enumerate()
                .map(|(i, p)| ((i + 1).to_string(), binding(p)))
                .collect();
            body["bindings"] = Value::Object(bindings);
        }
        let url = self.url("/queries/v1/query-request");
        let mut renewed = false;
        loop {
            let token = self.token(false).await?;
            body["sequenceId"] = json!(self.sequence.fetch_add(1, Ordering::Relaxed));
            let envelope = self.post(&url, &[], Some(&token), &body).await?;
            match envelope.code.as_deref() {
                Some(code) if !envelope.success && SESSION_GONE.contains(&code) && !renewed => {
                    renewed = true;
                    self.token(true).await?;
                }
                Some(code) if !envelope.success && IN_PROGRESS.contains(&code) => {
                    let data = self.poll(&token, envelope).await?;
                    return self.result(data);
                }
                _ => {
                    let data = success(envelope)?;
                    return self.result(data);
                }
            }
        }
    }

    /// Follow `getResultUrl` until the statement finishes.
    async fn poll(&self, token: &str, mut envelope: Envelope) -> Result<Value, SnowflakeError> {
        let mut wait = Duration::from_millis(100);
        loop {
            let path = envelope
                .data
                .as_ref()
                .and_then(|d| d.get("getResultUrl"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    SnowflakeError::Protocol("running statement without getResultUrl".into())
                })?
                .to_string();
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
            let url = self.url(&path);
            let response = self
                .http
                .get(&url)
                .header(ACCEPT, ARROW)
                .header(AUTHORIZATION, auth_header(token)?)
                .send()
                .await
                .map_err(|e| SnowflakeError::from_http(&url, &e))?;
            envelope = read_envelope(&url, response).await?;
            let running = !envelope.success
                && envelope
                    .code
                    .as_deref()
                    .is_some_and(|c| IN_PROGRESS.contains(&c));
            if !running {
                return success(envelope);
            }
        }
    }

    fn result(&self, data: Value) -> Result<QueryResult, SnowflakeError> {
        let data: QueryData = serde_json::from_value(data)
            .map_err(|e| SnowflakeError::Protocol(format!("query answer: {e}")))?;
        let schema = types::schema(&data.rowtype)?;
        let mut ready = VecDeque::new();
        if let Some(encoded) = data.rowset_base64.as_deref().filter(|s| !s.is_empty()) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| SnowflakeError::Protocol(format!("rowsetBase64: {e}")))?;
            ready.extend(decode_ipc(&bytes, &data.rowtype, &schema)?);
        } else if let Some(rows) = data.rowset.as_ref().filter(|r| !r.is_empty()) {
            ready.push_back(types::json_batch(rows, &data.rowtype, &schema)?);
        }
        let mut chunk_headers = HeaderMap::new();
        for (name, value) in &data.chunk_headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| SnowflakeError::Protocol(format!("chunk header: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| SnowflakeError::Protocol(format!("chunk header: {e}")))?;
            chunk_headers.insert(name, value);
        }
        if let Some(key) = &data.qrmk {
            // Chunks encrypted with a customer key are fetched with it.
            let mut value = HeaderValue::from_str(key)
                .map_err(|e| SnowflakeError::Protocol(format!("qrmk: {e}")))?;
            value.set_sensitive(true);
            chunk_headers.insert(
                "x-amz-server-side-encryption-customer-algorithm",
                HeaderValue::from_static("AES256"),
            );
            chunk_headers.insert("x-amz-server-side-encryption-customer-key", value);
        }
        debug!(
            query_id = data.query_id.as_deref().unwrap_or(""),
            columns = data.rowtype.len(),
            chunks = data.chunks.len(),
            "snowflake statement finished"
        );
        Ok(QueryResult {
            columns: data.rowtype,
            schema,
            ready,
            chunks: data.chunks.into_iter().map(|c| c.url).collect(),
            chunk_headers,
            http: self.http.clone(),
        })
    }
}

fn auth_header(token: &str) -> Result<HeaderValue, SnowflakeError> {
    let mut value = HeaderValue::from_str(&format!("Snowflake Token=\"{token}\""))
        .map_err(|_| SnowflakeError::Protocol("session token is not a valid header".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

async fn read_envelope(url: &str, response: reqwest::Response) -> Result<Envelope, SnowflakeError> {
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| SnowflakeError::from_http(url, &e))?;
    match serde_json::from_str::<Envelope>(&text) {
        Ok(envelope) => Ok(envelope),
        Err(_) if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS => {
            Err(SnowflakeError::Unreachable {
                url: url.to_string(),
                reason: format!("HTTP {status}"),
            })
        }
        Err(_)
            if status == reqwest::StatusCode::FORBIDDEN
                || status == reqwest::StatusCode::UNAUTHORIZED =>
        {
            Err(SnowflakeError::Refused(format!("HTTP {status} from {url}")))
        }
        Err(e) => Err(SnowflakeError::Protocol(format!(
            "HTTP {status} from {url}: {e}"
        ))),
    }
}

/// The `data` of a successful answer, or the server's error.
fn success(envelope: Envelope) -> Result<Value, SnowflakeError> {
    if envelope.success {
        return Ok(envelope.data.unwrap_or(Value::Null));
    }
    Err(SnowflakeError::Server {
        code: envelope.code.unwrap_or_else(|| "unknown".into()),
        message: envelope
            .message
            .unwrap_or_else(|| "no message".into())
            .trim()
            .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_bind_as_epoch_nanoseconds() {
        let at = DateTime::from_timestamp(1_704_067_210, 5_000).unwrap();
        assert_eq!(
            binding(&Param::Timestamp(at)),
            json!({"type": "TIMESTAMP_NTZ", "value": "1704067210000005000"})
        );
        assert_eq!(
            binding(&Param::Int(-3)),
            json!({"type": "FIXED", "value": "-3"})
        );
    }

    #[test]
    fn debug_output_has_no_password() {
        let login = Login {
            base_url: "http://127.0.0.1:1".into(),
            account: "acme".into(),
            user: "ada".into(),
            password: "hunter2-secret".into(),
            database: "DB".into(),
            schema: "PUBLIC".into(),
            warehouse: "WH".into(),
            role: None,
        };
        let client = Client::new(login).unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("acme"), "{shown}");
    }
}
