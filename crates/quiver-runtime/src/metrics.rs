//! Prometheus metrics of one server: HTTP latency per route, online-store read latency
//! per provider, job durations and outcomes per kind, rows materialized per feature, and
//! per-feature freshness (the age of the newest materialized value, computed from the
//! watermarks at scrape time) so a stale feature can be alerted on. Rendered in the text
//! exposition format at `GET /metrics`.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::Utc;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use quiver_metadata::MetadataStore;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    /// The route template (`/api/v1/jobs/{id}`), never the raw path: bounded cardinality.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    provider: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    /// `succeeded`, `failed` (an attempt that failed) or `waiting` (for an upstream).
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeatureLabels {
    /// `name:variant`.
    feature: String,
}

/// 100 µs … ~3.3 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// 10 ms … ~1.5 h.
fn job_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 3.0, 14))
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The server's metrics; cheap to update from any task.
pub struct Metrics {
    registry: Registry,
    http: Histograms<HttpLabels>,
    online_reads: Histograms<StoreLabels>,
    jobs: Histograms<JobLabels>,
    rows_materialized: Family<FeatureLabels, Counter>,
    freshness: Family<FeatureLabels, Gauge<f64, AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("quiver");
        let http: Histograms<HttpLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method, route template and status",
            http.clone(),
        );
        let online_reads: Histograms<StoreLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "online_store_read_duration_seconds",
            "Latency of one multi-get round trip to an online store, by provider and outcome",
            online_reads.clone(),
        );
        let jobs: Histograms<JobLabels> = Family::new_with_constructor(job_histogram);
        registry.register(
            "job_duration_seconds",
            "Duration of job attempts by kind and outcome (the _count is the number of attempts)",
            jobs.clone(),
        );
        let rows_materialized = Family::<FeatureLabels, Counter>::default();
        registry.register(
            "rows_materialized",
            "Entities written to online stores by materializations, per feature",
            rows_materialized.clone(),
        );
        let freshness = Family::<FeatureLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "feature_freshness_seconds",
            "Age of the newest materialized value of a feature (now minus its watermark)",
            freshness.clone(),
        );
        Metrics {
            registry,
            http,
            online_reads,
            jobs,
            rows_materialized,
            freshness,
        }
    }

    pub fn observe_http(&self, method: &str, route: &str, status: u16, latency: Duration) {
        self.http
            .get_or_create(&HttpLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .observe(latency.as_secs_f64());
    }

    pub fn observe_online_read(&self, provider: &str, ok: bool, latency: Duration) {
        self.online_reads
            .get_or_create(&StoreLabels {
                provider: provider.to_string(),
                outcome: if ok { "ok" } else { "error" }.to_string(),
            })
            .observe(latency.as_secs_f64());
    }

    pub fn observe_job(&self, kind: &str, outcome: &str, duration: Duration) {
        self.jobs
            .get_or_create(&JobLabels {
                kind: kind.to_string(),
                outcome: outcome.to_string(),
            })
            .observe(duration.as_secs_f64());
    }

    pub fn add_rows_materialized(&self, feature: &str, rows: u64) {
        self.rows_materialized
            .get_or_create(&FeatureLabels {
                feature: feature.to_string(),
            })
            .inc_by(rows);
    }

    /// The text exposition, with freshness refreshed from the store's watermarks. A store
    /// that cannot be read leaves the last freshness values (and logs why).
    pub async fn render(&self, store: &dyn MetadataStore) -> String {
        match store.watermarks().await {
            Ok(watermarks) => {
                let now = Utc::now();
                for (id, watermark) in watermarks {
                    let age = (now - watermark).num_milliseconds() as f64 / 1000.0;
                    self.freshness
                        .get_or_create(&FeatureLabels {
                            feature: format!("{}:{}", id.name, id.variant),
                        })
                        .set(age.max(0.0));
                }
            }
            Err(error) => tracing::warn!(%error, "metrics: could not read watermarks"),
        }
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "metrics: encoding failed");
        }
        text
    }
}
