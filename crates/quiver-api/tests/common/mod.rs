//! Shared test harness: the router over a fresh SQLite store per test, driven in-process,
//! and assertions on problem bodies. Each test binary uses a different subset.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use quiver_api::{app, AppState};
use quiver_metadata::{ListQuery, MetadataStore, SqliteStore};
use serde_json::Value;
use tempfile::TempDir;
use tower::ServiceExt;

/// A small catalogue touching every kind:
/// local → transactions → tx_agg → avg_amount → fraud_training → fraud_model, and
/// transactions → is_fraud → fraud_training.
pub const CATALOG_YAML: &str = "\
kind: user
name: alice
email: alice@example.com
---
kind: provider
name: local
owner: platform
description: Local parquet files
tags: [offline]
config:
  type: files
  root: ./data
---
kind: entity
name: user
owner: risk
description: A customer account
---
kind: source
name: transactions
variant: v1
owner: risk
description: Raw card transactions
tags: [pii]
provider: local
file: {path: transactions.parquet}
---
kind: source
name: tx_agg
variant: v1
owner: risk
description: Hourly aggregates
provider: local
sql: SELECT user, avg(amount) AS avg_amount, ts FROM {{ transactions }} GROUP BY user, ts
---
kind: feature
name: avg_amount
variant: v1
owner: risk
description: Average transaction amount over SEVEN days
tags: [fraud]
entity: user
source: tx_agg
value_column: avg_amount
value_type: float64
timestamp_column: ts
---
kind: label
name: is_fraud
variant: v1
owner: risk
source: transactions
entities: [{entity: user}]
value_column: is_fraud
value_type: bool
timestamp_column: ts
---
kind: training_set
name: fraud_training
variant: v1
owner: growth
tags: [fraud]
label: is_fraud
features: [avg_amount]
---
kind: model
name: fraud_model
owner: growth
training_sets: [fraud_training]
";

pub const CATALOG_SIZE: usize = 9;

pub struct TestApi {
    pub app: Router,
    pub store: Arc<dyn MetadataStore>,
    _dir: TempDir,
}

impl TestApi {
    pub async fn new() -> Self {
        Self::with(|state| state).await
    }

    /// An API whose state the test adjusts (authorizer, limits).
    pub async fn with(configure: impl FnOnce(AppState) -> AppState) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn MetadataStore> = Arc::new(
            SqliteStore::open(dir.path())
                .await
                .expect("open sqlite store"),
        );
        let state = configure(AppState::new(store.clone()));
        TestApi {
            app: app(state),
            store,
            _dir: dir,
        }
    }

    pub async fn request(
        &self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> TestResponse {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let request = request.body(body.into()).expect("request");
        self.send(request).await
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("response body");
        TestResponse {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> TestResponse {
        self.request(Method::GET, uri, None, Body::empty()).await
    }

    pub async fn post_yaml(&self, uri: &str, yaml: &str) -> TestResponse {
        self.request(
            Method::POST,
            uri,
            Some("application/yaml"),
            yaml.to_string(),
        )
        .await
    }

    pub async fn post_json(&self, uri: &str, json: &Value) -> TestResponse {
        self.request(
            Method::POST,
            uri,
            Some("application/json"),
            json.to_string(),
        )
        .await
    }

    /// Apply the sample catalogue and check it was created.
    pub async fn apply_catalog(&self) {
        let response = self.post_yaml("/api/v1/apply", CATALOG_YAML).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(
            response.json()["items"].as_array().unwrap().len(),
            CATALOG_SIZE
        );
    }

    /// Every stored row of every kind and variant, read from the store directly.
    pub async fn resource_count(&self) -> u64 {
        let query = ListQuery {
            limit: 500,
            ..ListQuery::default()
        };
        self.store.list(&query).await.expect("list").total
    }
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }

    /// Assert a problem document with this status and code; returns its detail.
    pub fn problem(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        assert_eq!(
            self.headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{}",
            self.text()
        );
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["status"], status, "{body}");
        assert_eq!(body["type"], "about:blank", "{body}");
        assert!(
            !body["title"].as_str().unwrap_or_default().is_empty(),
            "{body}"
        );
        let detail = body["detail"].as_str().unwrap_or_default().to_string();
        assert!(!detail.is_empty(), "{body}");
        detail
    }
}

/// The names of a list response's items, in order.
pub fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| match item["variant"].as_str() {
            Some("") | None => item["name"].as_str().unwrap().to_string(),
            Some(v) => format!("{}:{v}", item["name"].as_str().unwrap()),
        })
        .collect()
}
