//! The part of Snowflake's HTTP protocol (the one its drivers speak) this provider needs:
//! password login for a session token, one statement per query request with positional
//! bindings, results as Arrow IPC (`rowsetBase64`, then downloaded `chunks`) or as a JSON
//! `rowset`, and polling while a statement is still running.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::ipc::MessageHeader;
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

/// The marker before each message's length in the current IPC stream format.
const CONTINUATION: [u8; 4] = [0xff; 4];

/// Decode an Arrow IPC stream and convert its batches to `schema`'s types.
///
/// The stream is read message by message rather than with arrow's `StreamReader` because
/// fakesnow declares the children of its timestamp structs non-nullable yet marks NULLs
/// only on those children, which arrow's validation refuses ("unmasked nulls for
/// non-nullable StructArray field"). Every field of the stream's schema, at every depth,
/// is read as nullable instead; [`types::convert_batch`] then reads a timestamp as NULL
/// when its struct slot or its `epoch` child is NULL.
fn decode_ipc(
    bytes: &[u8],
    columns: &[ColumnType],
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, SnowflakeError> {
    read_ipc_relaxed(bytes)?
        .iter()
        .map(|batch| types::convert_batch(batch, columns, schema))
        .collect()
}

fn ipc_error(message: impl fmt::Display) -> SnowflakeError {
    SnowflakeError::Protocol(format!("Arrow IPC stream: {message}"))
}

/// `len` bytes of `bytes` from `*at`, advancing `*at`.
fn take<'a>(bytes: &'a [u8], at: &mut usize, len: usize) -> Result<&'a [u8], SnowflakeError> {
    let end = at
        .checked_add(len)
        .filter(|end| *end <= bytes.len())
        .ok_or_else(|| ipc_error(format!("truncated at byte {at} (wanted {len} more)")))?;
    let slice = &bytes[*at..end];
    *at = end;
    Ok(slice)
}

/// A field and all its children, at every depth, nullable.
fn relaxed_field(field: &Field) -> Field {
    let data_type = match field.data_type() {
        DataType::Struct(children) => DataType::Struct(relaxed_fields(children)),
        DataType::List(child) => DataType::List(Arc::new(relaxed_field(child))),
        DataType::LargeList(child) => DataType::LargeList(Arc::new(relaxed_field(child))),
        DataType::ListView(child) => DataType::ListView(Arc::new(relaxed_field(child))),
        DataType::LargeListView(child) => DataType::LargeListView(Arc::new(relaxed_field(child))),
        DataType::FixedSizeList(child, size) => {
            DataType::FixedSizeList(Arc::new(relaxed_field(child)), *size)
        }
        DataType::Map(entries, sorted) => DataType::Map(Arc::new(relaxed_field(entries)), *sorted),
        DataType::Union(union_fields, mode) => DataType::Union(
            union_fields
                .iter()
                .map(|(id, child)| (id, Arc::new(relaxed_field(child))))
                .collect(),
            *mode,
        ),
        DataType::RunEndEncoded(run_ends, values) => {
            // Run ends may never be null; only the values are relaxed.
            DataType::RunEndEncoded(run_ends.clone(), Arc::new(relaxed_field(values)))
        }
        other => other.clone(),
    };
    field.clone().with_data_type(data_type).with_nullable(true)
}

fn relaxed_fields(fields: &Fields) -> Fields {
    fields.iter().map(|f| relaxed_field(f)).collect()
}

/// The record batches of an Arrow IPC stream, read against its schema with every field
/// nullable (see [`decode_ipc`]). Each message is an optional continuation marker, a
/// little-endian length, a flatbuffer `Message` of that length, then its body; a zero
/// length ends the stream.
fn read_ipc_relaxed(bytes: &[u8]) -> Result<Vec<RecordBatch>, SnowflakeError> {
    let mut at = 0;
    let mut schema: Option<SchemaRef> = None;
    let mut dictionaries: HashMap<i64, ArrayRef> = HashMap::new();
    let mut batches = Vec::new();
    while at < bytes.len() {
        let mut prefix = take(bytes, &mut at, 4)?;
        if prefix == CONTINUATION {
            prefix = take(bytes, &mut at, 4)?;
        }
        let length = i32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let length = usize::try_from(length)
            .map_err(|_| ipc_error(format!("negative message length {length}")))?;
        if length == 0 {
            break;
        }
        let metadata = take(bytes, &mut at, length)?;
        let message = arrow::ipc::root_as_message(metadata)
            .map_err(|e| ipc_error(format!("message header: {e}")))?;
        let body_length = usize::try_from(message.bodyLength())
            .map_err(|_| ipc_error(format!("negative body length {}", message.bodyLength())))?;
        let body = Buffer::from(take(bytes, &mut at, body_length)?);
        let version = message.version();
        match message.header_type() {
            MessageHeader::Schema => {
                let fb = message
                    .header_as_schema()
                    .ok_or_else(|| ipc_error("unreadable schema message"))?;
                if fb.fields().is_none() {
                    return Err(ipc_error("schema message without fields"));
                }
                let declared = arrow::ipc::convert::fb_to_schema(fb);
                let fields = relaxed_fields(declared.fields());
                schema = Some(Arc::new(Schema::new_with_metadata(
                    fields,
                    declared.metadata().clone(),
                )));
            }
            MessageHeader::DictionaryBatch => {
                let fb = message
                    .header_as_dictionary_batch()
                    .ok_or_else(|| ipc_error("unreadable dictionary batch"))?;
                let schema = schema
                    .as_deref()
                    .ok_or_else(|| ipc_error("dictionary batch before the schema"))?;
                arrow::ipc::reader::read_dictionary(
                    &body,
                    fb,
                    schema,
                    &mut dictionaries,
                    &version,
                )?;
            }
            MessageHeader::RecordBatch => {
                let fb = message
                    .header_as_record_batch()
                    .ok_or_else(|| ipc_error("unreadable record batch"))?;
                let schema = schema
                    .clone()
                    .ok_or_else(|| ipc_error("record batch before the schema"))?;
                batches.push(arrow::ipc::reader::read_record_batch(
                    &body,
                    fb,
                    schema,
                    &dictionaries,
                    None,
                    &version,
                )?);
            }
            other => return Err(ipc_error(format!("unexpected {other:?} message"))),
        }
    }
    Ok(batches)
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

    /// fakesnow's shape: a timestamp struct whose schema declares non-nullable children,
    /// with a NULL marked only on the children, never on the struct.
    fn fakesnow_like_stream() -> Vec<u8> {
        use arrow::array::{Int32Array, Int64Array, StructArray};
        use arrow::ipc::writer::{self, DictionaryTracker, IpcDataGenerator, IpcWriteOptions};

        let children = |nullable| {
            Fields::from(vec![
                Field::new("epoch", DataType::Int64, nullable),
                Field::new("fraction", DataType::Int32, nullable),
            ])
        };
        let schema_with = |nullable| {
            Schema::new(vec![
                Field::new("TS", DataType::Struct(children(nullable)), true),
                Field::new("V", DataType::Int64, true),
            ])
        };
        let parts = StructArray::new(
            children(true),
            vec![
                Arc::new(Int64Array::from(vec![Some(1_704_067_210), None, Some(-2)])),
                Arc::new(Int32Array::from(vec![
                    Some(250_000_000),
                    None,
                    Some(500_000_000),
                ])),
            ],
            None,
        );
        let batch = RecordBatch::try_new(
            Arc::new(schema_with(true)),
            vec![
                Arc::new(parts),
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None])),
            ],
        )
        .unwrap();
        let options = IpcWriteOptions::default();
        let generator = IpcDataGenerator::default();
        let mut tracker = DictionaryTracker::new(false);
        let mut bytes = Vec::new();
        // The schema message declares the children non-nullable; the batch message carries
        // no nullability, only the children's validity.
        let schema = generator.schema_to_bytes_with_dictionary_tracker(
            &schema_with(false),
            &mut tracker,
            &options,
        );
        writer::write_message(&mut bytes, schema, &options).unwrap();
        let (dictionaries, encoded) = generator
            .encode(&batch, &mut tracker, &options, &mut Default::default())
            .unwrap();
        assert!(dictionaries.is_empty());
        writer::write_message(&mut bytes, encoded, &options).unwrap();
        bytes.extend_from_slice(&CONTINUATION);
        bytes.extend_from_slice(&0_i32.to_le_bytes());
        bytes
    }

    #[test]
    fn struct_nulls_marked_only_on_non_nullable_children_decode_as_null() {
        use arrow::array::{Array, AsArray};
        use arrow::datatypes::{Int64Type, TimestampMicrosecondType};

        let bytes = fakesnow_like_stream();
        // arrow's own reader refuses this stream.
        let strict: Result<Vec<RecordBatch>, _> =
            arrow::ipc::reader::StreamReader::try_new(bytes.as_slice(), None)
                .unwrap()
                .collect();
        assert!(strict.is_err(), "arrow now accepts the stream: {strict:?}");

        let column = |name: &str, kind: &str, scale| ColumnType {
            name: name.into(),
            kind: kind.into(),
            scale: Some(scale),
            precision: Some(38),
            nullable: true,
        };
        let columns = vec![column("TS", "timestamp_ntz", 9), column("V", "fixed", 0)];
        let schema = types::schema(&columns).unwrap();
        let batches = decode_ipc(&bytes, &columns, &schema).unwrap();
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        assert_eq!(batch.num_rows(), 3);
        let ts = batch.column(0).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts.value(0), 1_704_067_210_250_000);
        assert!(ts.is_null(1));
        assert_eq!(ts.value(2), -1_500_000);
        let values = batch.column(1).as_primitive::<Int64Type>();
        assert_eq!(values.value(1), 2);
        assert!(values.is_null(2));
    }

    #[test]
    fn truncated_ipc_streams_are_protocol_errors() {
        let bytes = fakesnow_like_stream();
        let err = read_ipc_relaxed(&bytes[..bytes.len() - 20]).unwrap_err();
        assert!(matches!(err, SnowflakeError::Protocol(_)), "{err:?}");
        assert!(read_ipc_relaxed(&[]).unwrap().is_empty());
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
