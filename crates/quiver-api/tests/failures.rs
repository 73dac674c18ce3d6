//! Server-side failures: a store that is down answers 503 with `Retry-After`, a bug
//! answers a generic 500, and neither leaks the internal cause (SQL, driver text).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use quiver_api::{app, AppState};
use quiver_core::{Kind, ResourceId, SourcedDefinition, Status};
use quiver_lineage::{Direction, Edge};
use quiver_metadata::{
    Job, JobKind, JobQuery, JobRun, ListQuery, MetadataStore, NewJob, Page, Plan, ResourceRecord,
    RunOutcome, StoreError, VariantSummary,
};
use serde_json::Value;
use tower::ServiceExt;

const LEAKY_SQL: &str = "SELECT password FROM providers WHERE name = 'warehouse'";

/// How every call of a [`BrokenStore`] fails.
#[derive(Clone, Copy)]
enum Failure {
    /// The database is unreachable.
    Down,
    /// A driver error that is our bug, quoting SQL.
    Bug,
    /// A stored row that cannot be decoded.
    Corrupt,
    /// The code panics.
    Panic,
}

struct BrokenStore(Failure);

impl BrokenStore {
    fn fail<T>(&self) -> Result<T, StoreError> {
        match self.0 {
            Failure::Down => Err(StoreError::Database(sqlx::Error::PoolTimedOut)),
            Failure::Bug => Err(StoreError::Database(sqlx::Error::Protocol(format!(
                "syntax error in {LEAKY_SQL}"
            )))),
            Failure::Corrupt => Err(StoreError::Corrupt(format!("bad row for {LEAKY_SQL}"))),
            Failure::Panic => panic!("store bug near {LEAKY_SQL}"),
        }
    }
}

#[async_trait]
impl MetadataStore for BrokenStore {
    fn backend(&self) -> &'static str {
        "broken"
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.fail()
    }
    async fn plan(&self, _: Vec<SourcedDefinition>) -> Result<Plan, StoreError> {
        self.fail()
    }
    async fn apply(&self, _: Vec<SourcedDefinition>) -> Result<Plan, StoreError> {
        self.fail()
    }
    async fn get(
        &self,
        _: Kind,
        _: &str,
        _: Option<&str>,
    ) -> Result<Option<ResourceRecord>, StoreError> {
        self.fail()
    }
    async fn list(&self, _: &ListQuery) -> Result<Page<ResourceRecord>, StoreError> {
        self.fail()
    }
    async fn variants(&self, _: Kind, _: &str) -> Result<Vec<VariantSummary>, StoreError> {
        self.fail()
    }
    async fn lineage(&self, _: &ResourceId, _: Direction, _: u32) -> Result<Vec<Edge>, StoreError> {
        self.fail()
    }
    async fn set_status(
        &self,
        _: &ResourceId,
        _: Status,
        _: Option<&str>,
    ) -> Result<(), StoreError> {
        self.fail()
    }
    async fn enqueue_job(&self, _: NewJob) -> Result<Job, StoreError> {
        self.fail()
    }
    async fn get_job(&self, _: i64) -> Result<Option<Job>, StoreError> {
        self.fail()
    }
    async fn list_jobs(&self, _: &JobQuery) -> Result<Page<Job>, StoreError> {
        self.fail()
    }
    async fn job_runs(&self, _: i64) -> Result<Vec<JobRun>, StoreError> {
        self.fail()
    }
    async fn claim_job(
        &self,
        _: &str,
        _: &[JobKind],
        _: Duration,
    ) -> Result<Option<(Job, JobRun)>, StoreError> {
        self.fail()
    }
    async fn heartbeat(
        &self,
        _: i64,
        _: &str,
        _: Duration,
        _: i64,
        _: Option<i64>,
    ) -> Result<(), StoreError> {
        self.fail()
    }
    async fn append_log(&self, _: i64, _: &str, _: &str) -> Result<(), StoreError> {
        self.fail()
    }
    async fn finish_run(&self, _: i64, _: &str, _: RunOutcome) -> Result<Job, StoreError> {
        self.fail()
    }
    async fn cancel_job(&self, _: i64) -> Result<Job, StoreError> {
        self.fail()
    }
    async fn watermark(
        &self,
        _: &ResourceId,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        self.fail()
    }
    async fn advance_watermark(
        &self,
        _: &ResourceId,
        _: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.fail()
    }
    async fn catalog_version(&self) -> Result<(i64, i64), StoreError> {
        self.fail()
    }
    async fn watermarks(
        &self,
    ) -> Result<Vec<(ResourceId, chrono::DateTime<chrono::Utc>)>, StoreError> {
        self.fail()
    }
    async fn schedules(&self) -> Result<Vec<quiver_metadata::Schedule>, StoreError> {
        self.fail()
    }
    async fn enqueue_due_schedules(
        &self,
        _: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Job>, StoreError> {
        self.fail()
    }
}

/// Every route that reads the store, with a valid request.
const ROUTES: [(&str, &str); 9] = [
    ("GET", "/readyz"),
    ("GET", "/api/v1/features"),
    ("GET", "/api/v1/features/avg_amount"),
    ("GET", "/api/v1/features/avg_amount/variants"),
    ("GET", "/api/v1/lineage/feature/avg_amount"),
    ("GET", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs/1"),
    ("GET", "/api/v1/schedules"),
    ("POST", "/api/v1/apply"),
];

async fn answers(failure: Failure) -> Vec<(String, StatusCode, Option<String>, Value)> {
    let router = app(AppState::new(Arc::new(BrokenStore(failure))));
    let mut out = Vec::new();
    for (method, uri) in ROUTES {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/yaml")
            .body(Body::from("kind: entity\nname: user\nowner: risk\n"))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_string());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let problem: Value = serde_json::from_slice(&body).unwrap();
        out.push((format!("{method} {uri}"), status, retry_after, problem));
    }
    out
}

#[tokio::test]
async fn unreachable_store_is_503_with_retry_after() {
    for (route, status, retry_after, problem) in answers(Failure::Down).await {
        assert_eq!(status, 503, "{route}: {problem}");
        assert_eq!(problem["code"], "store_unavailable", "{route}");
        assert_eq!(retry_after.as_deref(), Some("1"), "{route}");
        assert!(
            problem["detail"].as_str().unwrap().contains("retry"),
            "{route}: {problem}"
        );
    }
}

#[tokio::test]
async fn internal_failures_are_500_without_the_cause() {
    for failure in [Failure::Bug, Failure::Corrupt, Failure::Panic] {
        for (route, status, _, problem) in answers(failure).await {
            // Readiness reports any error from the store as unavailable; a panic is a bug
            // wherever it happens.
            let is_error = !matches!(failure, Failure::Panic);
            let (expected_status, expected_code) = if route == "GET /readyz" && is_error {
                (503, "store_unavailable")
            } else {
                (500, "internal")
            };
            assert_eq!(status, expected_status, "{route}: {problem}");
            assert_eq!(problem["code"], expected_code, "{route}");
            let text = problem.to_string();
            assert!(
                !text.contains("SELECT") && !text.contains("password"),
                "{route} leaks: {text}"
            );
        }
    }
}

#[tokio::test]
async fn liveness_does_not_touch_the_store() {
    let router = app(AppState::new(Arc::new(BrokenStore(Failure::Panic))));
    let request = Request::get("/healthz").body(Body::empty()).unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
}
