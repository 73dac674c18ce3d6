//! [`DynamoOnlineStore`]: table lifecycle, conditional writes, the bulk path and the
//! chunked multi-get.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, KeysAndAttributes,
    PutRequest, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
    WriteRequest,
};
use aws_sdk_dynamodb::Client;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider as TlsProvider};
use chrono::{DateTime, Utc};
use futures::{stream, StreamExt, TryStreamExt};
use quiver_provider_sdk::{
    HealthReport, OnlineCapabilities, OnlineRead, OnlineRow, OnlineStore, OnlineTable,
    OnlineTableRef, Provider, ProviderError, WriteReport,
};
use tokio::sync::OnceCell;

use crate::config::DynamoConfig;
use crate::encoding::{self, Item};
use crate::errors::{sdk, DynamoError};
use crate::naming;

/// Conditional `PutItem`s in flight per write call: enough to hide the round trip, few
/// enough not to meet a provisioned table's burst capacity at once.
const WRITES_IN_FLIGHT: usize = 32;

/// `BatchWriteItem` accepts at most 25 requests.
const BATCH_WRITE_ITEMS: usize = 25;

/// `BatchGetItem` accepts at most 100 keys, across tables.
const BATCH_GET_KEYS: usize = 100;

/// Batch requests in flight per call.
const BATCHES_IN_FLIGHT: usize = 8;

/// Attempts at a batch whose unprocessed keys or items keep coming back.
const BATCH_ATTEMPTS: u32 = 10;

/// First back-off before re-sending unprocessed keys or items; doubled each attempt.
const BATCH_BACKOFF: Duration = Duration::from_millis(25);
const MAX_BATCH_BACKOFF: Duration = Duration::from_secs(2);

/// How long create and delete wait for a table to become ACTIVE or to disappear.
const TABLE_WAIT: Duration = Duration::from_secs(300);
const TABLE_POLL: Duration = Duration::from_millis(200);

/// How long a health check may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Attempts per request, throttling and connection errors included (the SDK's standard
/// retry mode, exponential back-off with jitter).
const MAX_ATTEMPTS: u32 = 4;

/// What the registry says about one feature table.
#[derive(Debug, Clone, Copy)]
struct TableMeta {
    ttl_us: Option<i64>,
}

/// The DynamoDB online store.
pub struct DynamoOnlineStore {
    client: Client,
    prefix: String,
    registry: String,
    /// The endpoint, for messages.
    target: String,
    registry_ready: OnceCell<()>,
    /// Requests sent, for operators and tests: `BatchGetItem`, `BatchWriteItem`.
    batch_gets: AtomicU64,
    batch_writes: AtomicU64,
}

impl std::fmt::Debug for DynamoOnlineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoOnlineStore")
            .field("target", &self.target)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl DynamoOnlineStore {
    /// A store for `config`. Nothing is sent until the first operation, so an unreachable
    /// endpoint is reported by [`Provider::health`] and each operation, not here.
    ///
    /// # Errors
    /// [`ProviderError::InvalidConfig`] for settings that cannot work.
    pub fn new(config: DynamoConfig) -> Result<DynamoOnlineStore, ProviderError> {
        config
            .check()
            .map_err(|m| ProviderError::InvalidConfig(format!("dynamodb provider: {m}")))?;
        let credentials = Credentials::new(
            config.credentials.access_key_id.clone(),
            config.credentials.secret_access_key.clone(),
            config.credentials.session_token.clone(),
            None,
            "quiver-config",
        );
        // hyper + rustls on ring: `https://` with the platform's roots, and plain
        // `http://` for emulators. The SDK's default client would build aws-lc-rs.
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(TlsProvider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut builder = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials)
            .http_client(http_client)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.connect_timeout)
                    .operation_attempt_timeout(config.attempt_timeout)
                    .operation_timeout(config.operation_timeout)
                    .build(),
            )
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(100))
                    .with_max_backoff(Duration::from_secs(2)),
            );
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(DynamoOnlineStore {
            client: Client::from_conf(builder.build()),
            registry: naming::registry_name(&config.table_prefix),
            target: config.target(),
            prefix: config.table_prefix,
            registry_ready: OnceCell::new(),
            batch_gets: AtomicU64::new(0),
            batch_writes: AtomicU64::new(0),
        })
    }

    /// The DynamoDB table holding `table`'s values.
    pub fn table_name(&self, table: &OnlineTableRef) -> String {
        naming::table_name(&self.prefix, table)
    }

    /// The registry table (one item per feature table, with its TTL).
    pub fn registry_table_name(&self) -> &str {
        &self.registry
    }

    /// `BatchGetItem` requests sent so far (re-sent unprocessed keys included).
    pub fn batch_get_requests(&self) -> u64 {
        self.batch_gets.load(Ordering::Relaxed)
    }

    /// `BatchWriteItem` requests sent so far (re-sent unprocessed items included).
    pub fn batch_write_requests(&self) -> u64 {
        self.batch_writes.load(Ordering::Relaxed)
    }

    /// The SDK client, for tools and tests that look at the tables directly.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn err<E>(
        &self,
        operation: &'static str,
    ) -> impl Fn(SdkError<E, HttpResponse>) -> DynamoError + '_
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        move |e| sdk(e, &self.target, operation)
    }

    /// The status of table `name`, `None` when it does not exist.
    async fn table_status(&self, name: &str) -> Result<Option<TableStatus>, DynamoError> {
        match self.client.describe_table().table_name(name).send().await {
            Ok(out) => Ok(Some(
                out.table()
                    .and_then(|t| t.table_status())
                    .cloned()
                    .unwrap_or(TableStatus::Active),
            )),
            Err(e) => {
                let e = sdk(e, &self.target, "DescribeTable");
                if e.is_resource_not_found() {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Create table `name` (partition key `key`, on-demand capacity) unless it exists,
    /// and wait until it is ACTIVE. A table being deleted is waited for, then created.
    async fn ensure_table(&self, name: &str, key: &str) -> Result<(), DynamoError> {
        let started = Instant::now();
        loop {
            let status = self.table_status(name).await?;
            match status {
                Some(TableStatus::Active) => return Ok(()),
                None => {
                    let created = self
                        .client
                        .create_table()
                        .table_name(name)
                        .attribute_definitions(
                            AttributeDefinition::builder()
                                .attribute_name(key)
                                .attribute_type(ScalarAttributeType::S)
                                .build()
                                .map_err(build_error("CreateTable"))?,
                        )
                        .key_schema(
                            KeySchemaElement::builder()
                                .attribute_name(key)
                                .key_type(KeyType::Hash)
                                .build()
                                .map_err(build_error("CreateTable"))?,
                        )
                        .billing_mode(BillingMode::PayPerRequest)
                        .send()
                        .await;
                    match created {
                        Ok(_) => tracing::info!(table = name, "created DynamoDB table"),
                        // Another replica created it first: wait for it like ours.
                        Err(e) => {
                            let e = sdk(e, &self.target, "CreateTable");
                            if !e.is_code("ResourceInUseException") {
                                return Err(e);
                            }
                        }
                    }
                    continue;
                }
                Some(_) => {}
            }
            if started.elapsed() > TABLE_WAIT {
                return Err(DynamoError::TableWait {
                    table: name.to_string(),
                    wanted: "ACTIVE",
                    seconds: TABLE_WAIT.as_secs(),
                    status: status.map_or("missing".into(), |s| s.as_str().to_string()),
                });
            }
            tokio::time::sleep(TABLE_POLL).await;
        }
    }

    async fn ensure_registry(&self) -> Result<(), DynamoError> {
        self.registry_ready
            .get_or_try_init(|| self.ensure_table(&self.registry, encoding::REGISTRY_KEY))
            .await
            .map(|_| ())
    }

    /// Turn on DynamoDB's TTL sweep of `expires_at`, once per table. It is never turned
    /// off again: DynamoDB allows one TTL change per table per hour, and items without
    /// `expires_at` are never swept anyway.
    async fn enable_ttl(&self, name: &str) -> Result<(), DynamoError> {
        let described = self
            .client
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .map_err(self.err("DescribeTimeToLive"))?;
        let status = described
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status());
        if matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            return Ok(());
        }
        let result = self
            .client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(encoding::EXPIRES_AT)
                    .build()
                    .map_err(build_error("UpdateTimeToLive"))?,
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = sdk(e, &self.target, "UpdateTimeToLive");
                // A replica enabling it at the same moment: already what we want.
                if e.is_code("ValidationException") && e.to_string().contains("already enabled") {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The registry's item for `table`, read consistently; NotFound when absent.
    async fn meta(&self, table: &OnlineTableRef, name: &str) -> Result<TableMeta, DynamoError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.registry)
            .key(encoding::REGISTRY_KEY, AttributeValue::S(name.to_string()))
            .consistent_read(true)
            .send()
            .await;
        match got {
            Ok(out) => match out.item() {
                Some(item) => registry_meta(item),
                None => Err(DynamoError::table_not_found(table, name)),
            },
            Err(e) => {
                let e = sdk(e, &self.target, "GetItem");
                if e.is_resource_not_found() {
                    Err(DynamoError::table_not_found(table, name))
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The rows that can win within one call: per entity the newest, the first of
    /// equal event times (as against the store). Entities DynamoDB cannot key are
    /// refused before anything is written.
    fn winners(rows: &[OnlineRow]) -> Result<Vec<&OnlineRow>, DynamoError> {
        let mut newest: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            if !encoding::storable_entity(&row.entity) {
                return Err(DynamoError::bad_entity(&row.entity));
            }
            newest
                .entry(row.entity.as_str())
                .and_modify(|best| {
                    if row.event_time.timestamp_micros() > rows[*best].event_time.timestamp_micros()
                    {
                        *best = i;
                    }
                })
                .or_insert(i);
        }
        let mut winners: Vec<usize> = newest.into_values().collect();
        winners.sort_unstable();
        Ok(winners.into_iter().map(|i| &rows[i]).collect())
    }

    async fn write_rows(
        &self,
        table: &OnlineTableRef,
        rows: &[OnlineRow],
    ) -> Result<WriteReport, DynamoError> {
        let name = self.table_name(table);
        let meta = self.meta(table, &name).await?;
        // Owned items, so the stream's futures borrow nothing but `self` (the
        // `OnlineStore` futures must be `Send` for every caller's lifetimes).
        let puts: Vec<(Item, i64)> = Self::winners(rows)?
            .into_iter()
            .map(|row| {
                let event_time_us = row.event_time.timestamp_micros();
                let item = encoding::encode(
                    &row.entity,
                    &row.value,
                    event_time_us,
                    expires_at(event_time_us, meta.ttl_us),
                );
                (item, event_time_us)
            })
            .collect();
        let name = name.as_str();
        let results = stream::iter(puts)
            .map(|(item, event_time_us)| self.put_if_newer(table, name, item, event_time_us))
            .buffer_unordered(WRITES_IN_FLIGHT)
            .try_fold(
                0_u64,
                |written, put| async move { Ok(written + u64::from(put)) },
            )
            .await?;
        Ok(WriteReport {
            written: results,
            skipped_older: rows.len() as u64 - results,
        })
    }

    /// One conditional `PutItem`: `true` when written, `false` when the stored event
    /// time is newer or equal (DynamoDB decides atomically per key).
    async fn put_if_newer(
        &self,
        table: &OnlineTableRef,
        name: &str,
        item: Item,
        event_time_us: i64,
    ) -> Result<bool, DynamoError> {
        let result = self
            .client
            .put_item()
            .table_name(name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#entity) OR #event_time < :event_time")
            .expression_attribute_names("#entity", encoding::ENTITY)
            .expression_attribute_names("#event_time", encoding::EVENT_TIME)
            .expression_attribute_values(
                ":event_time",
                AttributeValue::N(event_time_us.to_string()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => {
                let e = sdk(e, &self.target, "PutItem");
                if e.is_resource_not_found() {
                    Err(DynamoError::table_not_found(table, name))
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Load rows with `BatchWriteItem`, 25 items a request, without the event-time
    /// condition (DynamoDB cannot attach conditions to batch writes).
    ///
    /// Within the call the newest row per entity wins as in
    /// [`write`](OnlineStore::write), but against the store **the last writer wins**: an
    /// older row replaces a newer stored one. Use it only to fill a table nobody else
    /// writes to, such as the first materialization into a freshly created table; it
    /// costs a 25th of the requests of the conditional path.
    ///
    /// # Errors
    /// As [`write`](OnlineStore::write). A failed call may have applied some chunks.
    pub async fn bulk_load(
        &self,
        table: &OnlineTableRef,
        rows: &[OnlineRow],
    ) -> Result<WriteReport, ProviderError> {
        let started = Instant::now();
        let report = self.bulk_rows(table, rows).await?;
        tracing::debug!(
            feature = %table.feature,
            variant = %table.variant,
            rows = rows.len(),
            written = report.written,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "dynamodb bulk load"
        );
        Ok(report)
    }

    async fn bulk_rows(
        &self,
        table: &OnlineTableRef,
        rows: &[OnlineRow],
    ) -> Result<WriteReport, DynamoError> {
        let name = self.table_name(table);
        let meta = self.meta(table, &name).await?;
        let winners = Self::winners(rows)?;
        let requests: Vec<WriteRequest> = winners
            .iter()
            .map(|row| {
                let event_time_us = row.event_time.timestamp_micros();
                let item = encoding::encode(
                    &row.entity,
                    &row.value,
                    event_time_us,
                    expires_at(event_time_us, meta.ttl_us),
                );
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|put| WriteRequest::builder().put_request(put).build())
                    .map_err(build_error("BatchWriteItem"))
            })
            .collect::<Result<_, _>>()?;
        let written = requests.len() as u64;
        let chunks: Vec<Vec<WriteRequest>> = requests
            .chunks(BATCH_WRITE_ITEMS)
            .map(<[WriteRequest]>::to_vec)
            .collect();
        stream::iter(chunks)
            .map(|chunk| self.batch_write(table, &name, chunk))
            .buffer_unordered(BATCHES_IN_FLIGHT)
            .try_collect::<()>()
            .await?;
        Ok(WriteReport {
            written,
            skipped_older: rows.len() as u64 - written,
        })
    }

    /// One `BatchWriteItem`, re-sending `UnprocessedItems` with exponential back-off.
    async fn batch_write(
        &self,
        table: &OnlineTableRef,
        name: &str,
        mut pending: Vec<WriteRequest>,
    ) -> Result<(), DynamoError> {
        for attempt in 0..BATCH_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            self.batch_writes.fetch_add(1, Ordering::Relaxed);
            let out = self
                .client
                .batch_write_item()
                .request_items(name, pending)
                .send()
                .await
                .map_err(|e| {
                    let e = sdk(e, &self.target, "BatchWriteItem");
                    if e.is_resource_not_found() {
                        DynamoError::table_not_found(table, name)
                    } else {
                        e
                    }
                })?;
            pending = out
                .unprocessed_items()
                .and_then(|u| u.get(name))
                .cloned()
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
            tracing::debug!(
                table = name,
                unprocessed = pending.len(),
                attempt,
                "BatchWriteItem left items unprocessed"
            );
        }
        Err(DynamoError::Throttled {
            endpoint: self.target.clone(),
            operation: "BatchWriteItem",
            code: format!("UnprocessedItems after {BATCH_ATTEMPTS} attempts"),
        })
    }

    /// One `BatchGetItem` of ≤100 keys, re-sending `UnprocessedKeys` with exponential
    /// back-off; the items found, by DynamoDB table name.
    async fn batch_get(
        &self,
        mut pending: HashMap<String, KeysAndAttributes>,
    ) -> Result<Vec<(String, Item)>, DynamoError> {
        let mut found = Vec::new();
        for attempt in 0..BATCH_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            self.batch_gets.fetch_add(1, Ordering::Relaxed);
            let out = self
                .client
                .batch_get_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(self.err("BatchGetItem"))?;
            for (table, items) in out.responses().into_iter().flatten() {
                found.extend(items.iter().map(|item| (table.clone(), item.clone())));
            }
            pending = out.unprocessed_keys().cloned().unwrap_or_default();
            pending.retain(|_, keys| !keys.keys().is_empty());
            if pending.is_empty() {
                return Ok(found);
            }
            tracing::debug!(attempt, "BatchGetItem left keys unprocessed");
        }
        Err(DynamoError::Throttled {
            endpoint: self.target.clone(),
            operation: "BatchGetItem",
            code: format!("UnprocessedKeys after {BATCH_ATTEMPTS} attempts"),
        })
    }

    /// After a `ResourceNotFoundException` from a multi-get: which of `tables` is
    /// missing, checked one by one.
    async fn first_missing(&self, tables: &[OnlineTableRef]) -> Result<DynamoError, DynamoError> {
        for table in tables {
            let name = self.table_name(table);
            self.meta(table, &name).await?;
            if self.table_status(&name).await?.is_none() {
                return Ok(DynamoError::table_not_found(table, &name));
            }
        }
        Ok(DynamoError::ResourceNotFound {
            operation: "BatchGetItem",
            message: "a table disappeared while it was read; retry".into(),
        })
    }

    async fn get_many(
        &self,
        tables: &[OnlineTableRef],
        entities: &[String],
    ) -> Result<Vec<Vec<OnlineRead>>, DynamoError> {
        let mut answer = vec![vec![OnlineRead::Missing; tables.len()]; entities.len()];
        if tables.is_empty() {
            return Ok(answer);
        }
        // Each DynamoDB table once, with the answer columns it fills.
        let mut columns: HashMap<String, Vec<usize>> = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        for (t, table) in tables.iter().enumerate() {
            let name = self.table_name(table);
            columns
                .entry(name.clone())
                .or_insert_with(|| {
                    names.push(name.clone());
                    Vec::new()
                })
                .push(t);
        }
        // Each entity once (a batch may not repeat a key), with its answer rows.
        // Entities DynamoDB cannot key were never written: they stay Missing.
        let mut rows: HashMap<&str, Vec<usize>> = HashMap::with_capacity(entities.len());
        let mut keyed: Vec<&str> = Vec::new();
        for (e, entity) in entities.iter().enumerate() {
            if !encoding::storable_entity(entity) {
                continue;
            }
            rows.entry(entity.as_str())
                .or_insert_with(|| {
                    keyed.push(entity);
                    Vec::new()
                })
                .push(e);
        }

        // Registry keys first, so the tables' existence and TTLs come with the first
        // chunk's values, then every (table, entity) key; 100 keys a request.
        let mut keys: Vec<(String, Item)> = names
            .iter()
            .map(|name| {
                (
                    self.registry.clone(),
                    HashMap::from([(
                        encoding::REGISTRY_KEY.to_string(),
                        AttributeValue::S(name.clone()),
                    )]),
                )
            })
            .collect();
        for name in &names {
            keys.extend(
                keyed
                    .iter()
                    .map(|entity| (name.clone(), encoding::key(entity))),
            );
        }
        let mut requests = Vec::new();
        for chunk in keys.chunks(BATCH_GET_KEYS) {
            let mut by_table: HashMap<String, Vec<Item>> = HashMap::new();
            for (table, key) in chunk {
                by_table.entry(table.clone()).or_default().push(key.clone());
            }
            let request = by_table
                .into_iter()
                .map(|(table, keys)| {
                    // Consistent reads: a value just written is read back, and one
                    // reader never sees a key's event time go backwards.
                    KeysAndAttributes::builder()
                        .set_keys(Some(keys))
                        .consistent_read(true)
                        .build()
                        .map(|k| (table, k))
                        .map_err(build_error("BatchGetItem"))
                })
                .collect::<Result<HashMap<_, _>, _>>()?;
            requests.push(request);
        }
        let chunks = requests.len();
        let found: Vec<Vec<(String, Item)>> = match stream::iter(requests)
            .map(|request| self.batch_get(request))
            .buffer_unordered(BATCHES_IN_FLIGHT)
            .try_collect()
            .await
        {
            Ok(found) => found,
            Err(e) if e.is_resource_not_found() => return Err(self.first_missing(tables).await?),
            Err(e) => return Err(e),
        };

        let mut ttl_us: HashMap<&str, Option<i64>> = HashMap::new();
        let mut values = Vec::new();
        for (table, item) in found.iter().flatten() {
            if *table == self.registry {
                let name = match item.get(encoding::REGISTRY_KEY) {
                    Some(AttributeValue::S(name)) => name.as_str(),
                    _ => {
                        return Err(
                            encoding::Corrupt("registry item without table_name".into()).into()
                        )
                    }
                };
                ttl_us.insert(name, registry_meta(item)?.ttl_us);
            } else {
                values.push((table.as_str(), item));
            }
        }
        for (table, name) in tables.iter().zip(tables.iter().map(|t| self.table_name(t))) {
            if !ttl_us.contains_key(name.as_str()) {
                return Err(DynamoError::table_not_found(table, &name));
            }
        }
        let now_us = Utc::now().timestamp_micros();
        for (table, item) in values {
            let decoded = encoding::decode(item)?;
            let read = OnlineRead::stored(
                event_time(decoded.event_time_us)?,
                ttl_us.get(table).copied().flatten(),
                now_us,
                || Ok::<_, DynamoError>(decoded.value),
            )?;
            let (Some(cols), Some(entity_rows)) =
                (columns.get(table), rows.get(decoded.entity.as_str()))
            else {
                continue;
            };
            for &e in entity_rows {
                for &t in cols {
                    answer[e][t] = read.clone();
                }
            }
        }
        tracing::trace!(chunks, "dynamodb multi-get chunks");
        Ok(answer)
    }
}

/// The TTL of a registry item.
fn registry_meta(item: &Item) -> Result<TableMeta, DynamoError> {
    let ttl_us = match item.get(encoding::REGISTRY_TTL) {
        None => None,
        Some(_) => Some(encoding::number(item, encoding::REGISTRY_TTL)?),
    };
    Ok(TableMeta { ttl_us })
}

/// When DynamoDB may delete a row: its event time plus the TTL, in epoch seconds
/// rounded up, so the sweep never runs before the row reads as Expired.
fn expires_at(event_time_us: i64, ttl_us: Option<i64>) -> Option<i64> {
    let at_us = event_time_us.saturating_add(ttl_us?);
    Some(at_us.div_euclid(1_000_000) + i64::from(at_us.rem_euclid(1_000_000) != 0))
}

fn event_time(us: i64) -> Result<DateTime<Utc>, DynamoError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| encoding::Corrupt(format!("event time {us} µs is out of range")).into())
}

fn backoff(attempt: u32) -> Duration {
    BATCH_BACKOFF
        .saturating_mul(1 << attempt.min(16))
        .min(MAX_BATCH_BACKOFF)
}

fn build_error(
    operation: &'static str,
) -> impl Fn(aws_sdk_dynamodb::error::BuildError) -> DynamoError {
    move |e| DynamoError::Other {
        operation,
        detail: e.to_string(),
    }
}

#[async_trait]
impl Provider for DynamoOnlineStore {
    fn kind(&self) -> &str {
        crate::KIND
    }

    async fn health(&self) -> HealthReport {
        let started = Instant::now();
        let listed =
            tokio::time::timeout(HEALTH_TIMEOUT, self.client.list_tables().limit(1).send()).await;
        let (healthy, message) = match listed {
            Ok(Ok(_)) => (true, format!("DynamoDB at {} answers", self.target)),
            Ok(Err(e)) => (false, sdk(e, &self.target, "ListTables").to_string()),
            Err(_) => (
                false,
                format!(
                    "DynamoDB at {} did not answer within {} s",
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
impl OnlineStore for DynamoOnlineStore {
    fn capabilities(&self) -> OnlineCapabilities {
        OnlineCapabilities {
            ttl: true,
            event_time_monotonic_writes: true,
            multi_get: true,
        }
    }

    async fn create_table(&self, table: &OnlineTable) -> Result<(), ProviderError> {
        let name = self.table_name(&table.table);
        self.ensure_registry().await?;
        self.ensure_table(&name, encoding::ENTITY).await?;
        let ttl_us = match table.ttl {
            Some(ttl) => {
                self.enable_ttl(&name).await?;
                Some(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX))
            }
            None => None,
        };
        // Written last: a table is in the registry only once it is ACTIVE, and the
        // registry is what reads and writes (in every replica) take as the truth.
        let mut item: Item = HashMap::from([
            (
                encoding::REGISTRY_KEY.to_string(),
                AttributeValue::S(name.clone()),
            ),
            (
                encoding::REGISTRY_FEATURE.to_string(),
                AttributeValue::S(table.table.feature.clone()),
            ),
            (
                encoding::REGISTRY_VARIANT.to_string(),
                AttributeValue::S(table.table.variant.clone()),
            ),
        ]);
        if let Some(ttl_us) = ttl_us {
            item.insert(
                encoding::REGISTRY_TTL.to_string(),
                AttributeValue::N(ttl_us.to_string()),
            );
        }
        self.client
            .put_item()
            .table_name(&self.registry)
            .set_item(Some(item))
            .send()
            .await
            .map_err(self.err("PutItem"))?;
        tracing::info!(
            feature = %table.table.feature,
            variant = %table.table.variant,
            table = %name,
            ttl_us,
            "online table ready"
        );
        Ok(())
    }

    async fn delete_table(&self, table: &OnlineTableRef) -> Result<(), ProviderError> {
        let name = self.table_name(table);
        // Out of the registry first: from here on reads and writes answer NotFound,
        // even while DynamoDB is still deleting the table.
        match self
            .client
            .delete_item()
            .table_name(&self.registry)
            .key(encoding::REGISTRY_KEY, AttributeValue::S(name.clone()))
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) => {
                let e = sdk(e, &self.target, "DeleteItem");
                if !e.is_resource_not_found() {
                    return Err(e.into());
                }
            }
        }
        let started = Instant::now();
        loop {
            let status = self.table_status(&name).await?;
            match status {
                None => break,
                Some(TableStatus::Active) => {
                    if let Err(e) = self.client.delete_table().table_name(&name).send().await {
                        let e = sdk(e, &self.target, "DeleteTable");
                        if !e.is_resource_not_found() && !e.is_code("ResourceInUseException") {
                            return Err(e.into());
                        }
                    }
                    continue;
                }
                Some(_) => {}
            }
            if started.elapsed() > TABLE_WAIT {
                return Err(DynamoError::TableWait {
                    table: name,
                    wanted: "deleted",
                    seconds: TABLE_WAIT.as_secs(),
                    status: status.map_or("missing".into(), |s| s.as_str().to_string()),
                }
                .into());
            }
            tokio::time::sleep(TABLE_POLL).await;
        }
        tracing::info!(feature = %table.feature, variant = %table.variant, table = %name, "online table deleted");
        Ok(())
    }

    async fn write(
        &self,
        table: &OnlineTableRef,
        rows: &[OnlineRow],
    ) -> Result<WriteReport, ProviderError> {
        let started = Instant::now();
        let report = self.write_rows(table, rows).await?;
        tracing::debug!(
            feature = %table.feature,
            variant = %table.variant,
            rows = rows.len(),
            written = report.written,
            skipped_older = report.skipped_older,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "online write"
        );
        Ok(report)
    }

    async fn multi_get(
        &self,
        tables: &[OnlineTableRef],
        entities: &[String],
    ) -> Result<Vec<Vec<OnlineRead>>, ProviderError> {
        let started = Instant::now();
        let answer = self.get_many(tables, entities).await?;
        tracing::debug!(
            tables = tables.len(),
            entities = entities.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "online multi-get"
        );
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_rounds_up_to_the_next_second() {
        assert_eq!(expires_at(1_000_000, None), None);
        assert_eq!(expires_at(1_000_000, Some(60_000_000)), Some(61));
        assert_eq!(expires_at(1_000_001, Some(60_000_000)), Some(62));
        assert_eq!(expires_at(-1, Some(0)), Some(0));
        assert_eq!(
            expires_at(i64::MAX, Some(i64::MAX)),
            Some(i64::MAX / 1_000_000 + 1)
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(50));
        assert_eq!(backoff(3), Duration::from_millis(200));
        assert_eq!(backoff(40), MAX_BATCH_BACKOFF);
    }
}
