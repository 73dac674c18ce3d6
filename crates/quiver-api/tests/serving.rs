//! Online features, training-set downloads and provider health, end to end through the
//! router: definitions applied, jobs run by the runtime's coordinator over in-memory
//! providers, then the serving routes and their bad inputs.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::{Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use common::TestApi;
use quiver_api::AppState;
use quiver_coordinator::CoordinatorConfig;
use quiver_runtime::sdk::{
    BatchStream, HealthReport, LatestValuesQuery, OfflineCapabilities, OfflineStore,
    OnlineCapabilities, OnlineRead, OnlineRow, OnlineStore, OnlineTable, OnlineTableRef,
    OnlineValue, Provider, ProviderError, ProviderFactory, ProviderHandle, TableRef,
    TrainingSetQuery, Transformation, WriteReport,
};
use quiver_runtime::{ProviderRegistry, Runtime};
use serde_json::{json, Value};

const DEFINITIONS: &str = "\
kind: provider
name: local
owner: risk
config: {type: files, root: ./data}
---
kind: provider
name: online
owner: risk
config: {type: embedded}
---
kind: provider
name: warehouse
owner: risk
config: {type: snowflake, account: a, user: u, warehouse: w, database: d, schema: s}
---
kind: entity
name: user
owner: risk
---
kind: entity
name: merchant
owner: risk
---
kind: source
name: transactions
variant: v1
owner: risk
provider: local
file: {path: transactions.parquet}
---
kind: feature
name: avg_amount
variant: v1
owner: risk
entity: user
source: transactions
entity_column: user_id
value_column: amount
value_type: float64
timestamp_column: ts
max_age: 7d
online_provider: online
---
kind: feature
name: offline_only
variant: v1
owner: risk
entity: user
source: transactions
value_column: amount
value_type: float64
---
kind: feature
name: merchant_amount
variant: v1
owner: risk
entity: merchant
source: transactions
value_column: amount
value_type: float64
online_provider: online
---
kind: label
name: is_fraud
variant: v1
owner: risk
source: transactions
entities: [{entity: user, column: user_id}]
value_column: is_fraud
value_type: bool
timestamp_column: ts
---
kind: training_set
name: fraud_training
variant: v1
owner: risk
label: is_fraud
features: [avg_amount]
";

fn training_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Utf8, false),
        Field::new("avg_amount", DataType::Float64, true),
    ]))
}

/// An offline store answering from fixed data.
struct FakeOffline;

#[async_trait]
impl Provider for FakeOffline {
    fn kind(&self) -> &str {
        "files"
    }
    async fn health(&self) -> HealthReport {
        HealthReport {
            healthy: true,
            message: "fake files provider".into(),
            latency: Duration::from_millis(1),
        }
    }
}

#[async_trait]
impl OfflineStore for FakeOffline {
    fn capabilities(&self) -> OfflineCapabilities {
        OfflineCapabilities {
            files: true,
            training_sets: true,
            ..Default::default()
        }
    }
    async fn schema(&self, _table: &TableRef) -> Result<SchemaRef, ProviderError> {
        Ok(training_schema())
    }
    async fn run_transformation(&self, _t: &Transformation) -> Result<u64, ProviderError> {
        Ok(0)
    }
    async fn build_training_set(&self, query: &TrainingSetQuery) -> Result<u64, ProviderError> {
        assert_eq!(query.features[0].keys[0].label_column, "user_id");
        assert_eq!(query.features[0].keys[0].feature_column, "user_id");
        Ok(3)
    }
    async fn latest_values(&self, query: &LatestValuesQuery) -> Result<BatchStream, ProviderError> {
        let now = Utc::now().timestamp_micros();
        let old = now - 30 * 86_400 * 1_000_000;
        let entities = if query.entity_column == "user_id" {
            vec!["u1", "u2"]
        } else {
            vec!["m1", "m2"]
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("entity", DataType::Utf8, false),
            Field::new("value", DataType::Float64, true),
            Field::new(
                "event_time",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(entities)),
                Arc::new(Float64Array::from(vec![12.5, 3.0])),
                Arc::new(TimestampMicrosecondArray::from(vec![now, old]).with_timezone("UTC")),
            ],
        )
        .unwrap();
        Ok(Box::pin(futures::stream::iter(vec![Ok(batch)])))
    }
    async fn read(&self, _table: &TableRef) -> Result<BatchStream, ProviderError> {
        let batches = (0..2)
            .map(|i| {
                Ok(RecordBatch::try_new(
                    training_schema(),
                    vec![
                        Arc::new(StringArray::from(vec![format!("u{i}")])),
                        Arc::new(Float64Array::from(vec![Some(i as f64 + 0.5)])),
                    ],
                )
                .unwrap())
            })
            .collect::<Vec<_>>();
        Ok(Box::pin(futures::stream::iter(batches)))
    }
}

type Tables = HashMap<
    OnlineTableRef,
    (
        Option<Duration>,
        HashMap<String, (OnlineValue, DateTime<Utc>)>,
    ),
>;

/// An online store in memory.
#[derive(Default)]
struct FakeOnline {
    tables: Mutex<Tables>,
    multi_gets: Mutex<usize>,
}

#[async_trait]
impl Provider for FakeOnline {
    fn kind(&self) -> &str {
        "embedded"
    }
    async fn health(&self) -> HealthReport {
        HealthReport {
            healthy: true,
            message: "fake online store".into(),
            latency: Duration::ZERO,
        }
    }
}

#[async_trait]
impl OnlineStore for FakeOnline {
    fn capabilities(&self) -> OnlineCapabilities {
        OnlineCapabilities {
            ttl: true,
            event_time_monotonic_writes: true,
            multi_get: true,
        }
    }
    async fn create_table(&self, table: &OnlineTable) -> Result<(), ProviderError> {
        let mut tables = self.tables.lock().unwrap();
        tables.entry(table.table.clone()).or_default().0 = table.ttl;
        Ok(())
    }
    async fn delete_table(&self, table: &OnlineTableRef) -> Result<(), ProviderError> {
        self.tables.lock().unwrap().remove(table);
        Ok(())
    }
    async fn write(
        &self,
        table: &OnlineTableRef,
        rows: &[OnlineRow],
    ) -> Result<WriteReport, ProviderError> {
        let mut tables = self.tables.lock().unwrap();
        let (_, values) = tables
            .get_mut(table)
            .ok_or_else(|| ProviderError::NotFound(format!("{table:?}")))?;
        for row in rows {
            values.insert(row.entity.clone(), (row.value.clone(), row.event_time));
        }
        Ok(WriteReport {
            written: rows.len() as u64,
            skipped_older: 0,
        })
    }
    async fn multi_get(
        &self,
        tables: &[OnlineTableRef],
        entities: &[String],
    ) -> Result<Vec<Vec<OnlineRead>>, ProviderError> {
        *self.multi_gets.lock().unwrap() += 1;
        let stored = self.tables.lock().unwrap();
        let now = Utc::now();
        Ok(entities
            .iter()
            .map(|entity| {
                tables
                    .iter()
                    .map(|t| {
                        let (ttl, values) = &stored[t];
                        match values.get(entity) {
                            None => OnlineRead::Missing,
                            Some((value, at)) => match ttl {
                                Some(ttl)
                                    if now - *at > chrono::Duration::from_std(*ttl).unwrap() =>
                                {
                                    OnlineRead::Expired { event_time: *at }
                                }
                                _ => OnlineRead::Present {
                                    value: value.clone(),
                                    event_time: *at,
                                },
                            },
                        }
                    })
                    .collect()
            })
            .collect())
    }
}

struct Fixed(ProviderHandle);

#[async_trait]
impl ProviderFactory for Fixed {
    async fn build(&self, _config: &Value) -> Result<ProviderHandle, ProviderError> {
        Ok(self.0.clone())
    }
}

struct Serving {
    api: TestApi,
    runtime: Arc<Runtime>,
    online: Arc<FakeOnline>,
}

impl Serving {
    async fn new() -> Self {
        let online = Arc::new(FakeOnline::default());
        let registry = ProviderRegistry::new()
            .register(
                "files",
                Arc::new(Fixed(ProviderHandle::Offline(Arc::new(FakeOffline)))),
            )
            .register(
                "embedded",
                Arc::new(Fixed(ProviderHandle::Online(online.clone()))),
            )
            .register_unsupported("snowflake", "snowflake");
        let mut runtime = None;
        let api = TestApi::with(|state| {
            let built = Arc::new(Runtime::new(state.store.clone(), registry));
            runtime = Some(built.clone());
            AppState::with_runtime(built)
        })
        .await;
        let response = api.post_yaml("/api/v1/apply", DEFINITIONS).await;
        assert_eq!(response.status, 200, "{}", response.text());
        Serving {
            api,
            runtime: runtime.unwrap(),
            online,
        }
    }

    async fn run_jobs(&self) {
        let coordinator = self.runtime.coordinator(CoordinatorConfig::default());
        while coordinator.run_once().await.unwrap() {}
    }

    async fn online(&self, body: Value) -> common::TestResponse {
        self.api.post_json("/api/v1/online-features", &body).await
    }
}

#[tokio::test]
async fn nothing_is_served_before_the_jobs_ran() {
    let s = Serving::new().await;
    let r = s
        .api
        .get("/api/v1/training-sets/fraud_training/v1/data")
        .await;
    let detail = r.problem(409, "not_ready");
    assert!(detail.contains("status pending"), "{detail}");
    let r = s
        .online(json!({"features": ["avg_amount"], "entities": {"user": ["u1"]}}))
        .await;
    let detail = r.problem(409, "not_ready");
    assert!(
        detail.contains("avg_amount:v1") && detail.contains("pending"),
        "{detail}"
    );
}

#[tokio::test]
async fn online_features_carry_present_expired_and_missing_values() {
    let s = Serving::new().await;
    s.run_jobs().await;
    let r = s
        .online(json!({"features": ["avg_amount", "avg_amount:v1"], "entities": {"user": ["u1", "u2", "u3"]}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["entity"], "user");
    assert_eq!(body["features"], json!(["avg_amount:v1", "avg_amount:v1"]));
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["entity"], "u1");
    assert_eq!(results[0]["values"][0]["status"], "present");
    assert_eq!(results[0]["values"][0]["value"], 12.5);
    assert!(results[0]["values"][0]["event_time"].is_string());
    assert_eq!(results[1]["values"][1]["status"], "expired");
    assert_eq!(results[1]["values"][1]["value"], Value::Null);
    assert_eq!(results[2]["values"][0]["status"], "missing");
    // Both features live on one provider: one multi-get for the whole request.
    assert_eq!(*s.online.multi_gets.lock().unwrap(), 1);
}

#[tokio::test]
async fn bad_online_requests_are_refused_clearly() {
    let s = Serving::new().await;
    s.run_jobs().await;
    let ids: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    for (body, status, code, expected) in [
        (
            json!({"features": ["nope"], "entities": {"user": ["u1"]}}),
            404,
            "not_found",
            "unknown feature `nope`",
        ),
        (
            json!({"features": ["avg_amount"], "entities": {"user": []}}),
            400,
            "invalid_request",
            "id list of entity `user` is empty",
        ),
        (
            json!({"features": ["avg_amount"], "entities": {}}),
            400,
            "invalid_request",
            "exactly one entity",
        ),
        (
            json!({"features": [], "entities": {"user": ["u1"]}}),
            400,
            "invalid_request",
            "`features` is empty",
        ),
        (
            json!({"features": ["avg_amount"], "entities": {"user": ids}}),
            400,
            "limit_exceeded",
            "at most 1000",
        ),
        (
            json!({"features": ["offline_only"], "entities": {"user": ["u1"]}}),
            400,
            "invalid_request",
            "no online provider",
        ),
        (
            json!({"features": ["merchant_amount"], "entities": {"user": ["u1"]}}),
            400,
            "invalid_request",
            "keyed by entity `merchant`",
        ),
        (
            json!({"features": ["bad name!"], "entities": {"user": ["u1"]}}),
            400,
            "invalid_request",
            "feature reference",
        ),
        (
            json!({"feature": ["avg_amount"]}),
            400,
            "malformed_body",
            "unknown field",
        ),
    ] {
        let detail = s.online(body).await.problem(status, code);
        assert!(detail.contains(expected), "{expected}: {detail}");
    }
}

#[tokio::test]
async fn training_sets_download_in_every_format() {
    let s = Serving::new().await;
    s.run_jobs().await;
    let r = s
        .api
        .get("/api/v1/training-sets/fraud_training/v1/data?format=csv")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(r.text(), "user_id,avg_amount\nu0,0.5\nu1,1.5\n");
    let r = s
        .api
        .get("/api/v1/training-sets/fraud_training/v1/data?format=jsonl")
        .await;
    assert_eq!(r.headers["content-type"], "application/jsonl");
    assert_eq!(r.text().lines().count(), 2);
    let r = s
        .api
        .get("/api/v1/training-sets/fraud_training/v1/data")
        .await;
    assert_eq!(r.headers["content-type"], "application/vnd.apache.parquet");
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(r.body.clone())
            .unwrap()
            .build()
            .unwrap();
    assert_eq!(reader.map(|b| b.unwrap().num_rows()).sum::<usize>(), 2);
    let r = s
        .api
        .get("/api/v1/training-sets/fraud_training/v1/data?format=arrow")
        .await;
    assert_eq!(
        r.headers["content-type"],
        "application/vnd.apache.arrow.stream"
    );

    let detail = s
        .api
        .get("/api/v1/training-sets/fraud_training/v1/data?format=xlsx")
        .await
        .problem(400, "invalid_query");
    assert!(detail.contains("parquet, arrow, csv, jsonl"), "{detail}");
    let detail = s
        .api
        .get("/api/v1/training-sets/nope/v1/data")
        .await
        .problem(404, "not_found");
    assert!(detail.contains("nope:v1"), "{detail}");
}

#[tokio::test]
async fn provider_health_reports_healthy_compiled_out_and_unknown() {
    let s = Serving::new().await;
    let r = s.api.get("/api/v1/providers/local/health").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["healthy"], true);
    let r = s.api.get("/api/v1/providers/warehouse/health").await;
    assert_eq!(r.status, 503, "{}", r.text());
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("cargo feature `snowflake`"), "{message}");
    s.api
        .get("/api/v1/providers/nope/health")
        .await
        .problem(404, "not_found");
    // The catalogue route next to it still answers.
    assert_eq!(s.api.get("/api/v1/providers/local").await.status, 200);
}

#[tokio::test]
async fn metrics_expose_latency_per_route_store_reads_jobs_and_freshness() {
    let s = Serving::new().await;
    s.run_jobs().await;
    let r = s
        .online(json!({"features": ["avg_amount"], "entities": {"user": ["u1"]}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.api
        .get("/api/v1/jobs/424242")
        .await
        .problem(404, "not_found");
    let r = s.api.get("/metrics").await;
    assert_eq!(r.status, 200);
    let text = r.text();
    for expected in [
        // Route templates, never raw paths (bounded cardinality).
        r#"quiver_http_request_duration_seconds_count{method="POST",route="/api/v1/online-features",status="200"} 1"#,
        r#"quiver_http_request_duration_seconds_count{method="GET",route="/api/v1/jobs/{id}",status="404"} 1"#,
        r#"quiver_online_store_read_duration_seconds_count{provider="online",outcome="ok"} 1"#,
        r#"quiver_job_duration_seconds_count{kind="materialization",outcome="succeeded"}"#,
        r#"quiver_rows_materialized_total{feature="avg_amount:v1"}"#,
        r#"quiver_feature_freshness_seconds{feature="avg_amount:v1"}"#,
        "# TYPE quiver_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    assert!(
        !text.contains("424242"),
        "a raw path leaked into labels:\n{text}"
    );
}

#[tokio::test]
async fn features_are_resolved_once_per_catalog_change() {
    let s = Serving::new().await;
    s.run_jobs().await;
    for _ in 0..5 {
        let r = s
            .online(json!({"features": ["avg_amount"], "entities": {"user": ["u1"]}}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let stats = s.runtime.feature_cache_stats();
    assert_eq!((stats.misses, stats.hits), (1, 4), "{stats:?}");

    // A change in the catalog (here: the feature failed, as another replica's job could
    // record) is seen within one catalog check, without a restart.
    s.runtime
        .store()
        .set_status(
            &quiver_core::ResourceId::new(quiver_core::Kind::Feature, "avg_amount", "v1"),
            quiver_core::Status::Failed,
            Some("online store disk full"),
        )
        .await
        .unwrap();
    tokio::time::sleep(quiver_runtime::CATALOG_CHECK + Duration::from_millis(100)).await;
    let r = s
        .online(json!({"features": ["avg_amount"], "entities": {"user": ["u1"]}}))
        .await;
    let detail = r.problem(409, "not_ready");
    assert!(detail.contains("online store disk full"), "{detail}");
    assert_eq!(s.runtime.feature_cache_stats().misses, 2);
}
