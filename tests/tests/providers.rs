//! One set of definitions built on every offline provider by changing only the provider:
//! the same entity, features (one over a SQL transformation), label and training set,
//! applied to a `quiver serve` whose provider `warehouse` is in turn the embedded files
//! engine, Postgres, Snowflake (fakesnow) and BigQuery (bqemulator). The downloaded
//! training sets must be equal. And a provider that cannot be reached, or that refuses the
//! credentials, fails its jobs after the retries with the provider's own message while
//! every definition stays stored.

use std::fs::File;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use parquet::arrow::ArrowWriter;
use quiver_e2e::{write_file, Quiver};
use quiver_provider_sdk::{TableRef, TrainingSetOrder};
use quiver_provider_testkit::offline::OfflineHarness;
use serde_json::{json, Value};

fn quiver() -> Quiver {
    Quiver::new(env!("CARGO_BIN_EXE_quiver-under-test"))
}

/// 2024-01-01T00:00:00Z in microseconds.
const T0: i64 = 1_704_067_200_000_000;
const HOUR: i64 = 3_600_000_000;

/// A small deterministic dataset: transactions of 40 users over 30 days, and fraud
/// reviews of those users at times in between (some before any transaction).
fn dataset() -> (RecordBatch, RecordBatch) {
    let mut state: u64 = 0x5EED;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    let (mut users, mut amounts, mut times) = (vec![], vec![], vec![]);
    for _ in 0..1_500 {
        users.push(next(40) as i64);
        amounts.push(next(100_000) as f64 / 100.0);
        times.push(T0 + next(30 * 24) as i64 * HOUR);
    }
    let transactions = batch(vec![
        ("user_id", Arc::new(Int64Array::from(users))),
        ("amount", Arc::new(Float64Array::from(amounts))),
        ("ts", utc(times)),
    ]);
    let (mut users, mut fraud, mut times) = (vec![], vec![], vec![]);
    for _ in 0..300 {
        users.push(next(45) as i64);
        fraud.push(next(2) as i64);
        times.push(T0 + next(31 * 24) as i64 * HOUR - 12 * HOUR);
    }
    let labels = batch(vec![
        ("user_id", Arc::new(Int64Array::from(users))),
        ("is_fraud", Arc::new(Int64Array::from(fraud))),
        ("reviewed_at", utc(times)),
    ]);
    (transactions, labels)
}

fn utc(micros: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(micros).with_timezone("UTC"))
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).expect("batch")
}

/// The definitions, identical for every engine but for the provider's `config` and where
/// the two raw sources are (`table:` or `file:`).
fn definitions(config: &Value, transactions: &str, labels: &str) -> String {
    format!(
        r#"kind: user
name: e2e
---
kind: provider
name: warehouse
owner: e2e
config: {config}
---
kind: entity
name: user
owner: e2e
---
kind: source
name: transactions
variant: v1
owner: e2e
provider: warehouse
{transactions}
---
kind: source
name: reviews
variant: v1
owner: e2e
provider: warehouse
{labels}
---
kind: source
name: doubled
variant: v1
owner: e2e
provider: warehouse
sql: SELECT user_id, amount * 2 AS amount2, ts FROM {{{{ transactions }}}}
---
kind: feature
name: last_amount
variant: v1
owner: e2e
entity: user
source: transactions
entity_column: user_id
value_column: amount
value_type: float64
timestamp_column: ts
---
kind: feature
name: last_amount2
variant: v1
owner: e2e
entity: user
source: doubled
entity_column: user_id
value_column: amount2
value_type: float64
timestamp_column: ts
max_age: 3d
---
kind: label
name: is_fraud
variant: v1
owner: e2e
source: reviews
entities:
  - entity: user
    column: user_id
value_column: is_fraud
value_type: int64
timestamp_column: reviewed_at
---
kind: training_set
name: fraud
variant: v1
owner: e2e
label: is_fraud
features:
  - last_amount
  - feature: last_amount2
    lag: 1d
"#
    )
}

fn location(table: &TableRef) -> String {
    match table {
        TableRef::Table(name) => format!("table: {name}"),
        TableRef::File { path, .. } => format!("file:\n  path: {path}"),
        TableRef::Output(output) => panic!("a harness loaded into an output: {output:?}"),
    }
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let file = File::create(path).expect("create parquet file");
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    writer.write(batch).expect("write parquet");
    writer.close().expect("close parquet");
}

/// What [`prepare`] gives: the provider config, the two locations, the order the provider
/// returns training sets in, and whatever must live as long as the data.
type Prepared = (
    Value,
    String,
    String,
    TrainingSetOrder,
    Box<dyn std::any::Any>,
);

/// Loads the dataset into `engine` and returns the provider config and the two locations.
async fn prepare(engine: &str, data_dir: &Path) -> Prepared {
    let (transactions, labels) = dataset();
    match engine {
        "embedded" => {
            write_parquet(&data_dir.join("transactions.parquet"), &transactions);
            write_parquet(&data_dir.join("reviews.parquet"), &labels);
            (
                json!({"type": "files", "root": data_dir.to_str().unwrap()}),
                "file:\n  path: transactions.parquet".into(),
                "file:\n  path: reviews.parquet".into(),
                TrainingSetOrder::Label,
                Box::new(()),
            )
        }
        "postgres" => {
            let harness = quiver_provider_postgres::testing::PostgresHarness::new();
            let t = harness.load("transactions", transactions).await;
            let l = harness.load("reviews", labels).await;
            let url = quiver_provider_postgres::testing::test_url();
            let options = sqlx::postgres::PgConnectOptions::from_str(&url).expect("test url");
            let config = json!({
                "type": "postgres",
                "host": options.get_host(),
                "port": options.get_port(),
                "database": options.get_database().unwrap_or("postgres"),
                "user": options.get_username(),
                "schema": harness.schema(),
            });
            (
                config,
                location(&t),
                location(&l),
                order_of(&harness),
                Box::new(harness),
            )
        }
        "snowflake" => {
            let harness = quiver_provider_snowflake::testing::SnowflakeHarness::new();
            let t = harness.load("transactions", transactions).await;
            let l = harness.load("reviews", labels).await;
            let c = harness.config();
            let config = json!({
                "type": "snowflake",
                "account": c.account,
                "user": c.user,
                "password": c.password,
                "warehouse": c.warehouse,
                "database": c.database,
                "schema": c.schema,
                "host": c.host,
                // fakesnow cannot parse ASOF JOIN (see providers/snowflake).
                "asof_join": false,
            });
            (
                config,
                location(&t),
                location(&l),
                order_of(&harness),
                Box::new(harness),
            )
        }
        "bigquery" => {
            let harness = quiver_provider_bigquery::testing::BigQueryHarness::new();
            let t = harness.load("transactions", transactions).await;
            let l = harness.load("reviews", labels).await;
            let config = json!({
                "type": "bigquery",
                "project_id": quiver_provider_bigquery::testing::project(),
                "dataset": harness.dataset(),
                "endpoint": quiver_provider_bigquery::testing::endpoint(),
            });
            (
                config,
                location(&t),
                location(&l),
                order_of(&harness),
                Box::new(harness),
            )
        }
        other => panic!("unknown engine {other}"),
    }
}

fn order_of(harness: &dyn OfflineHarness) -> TrainingSetOrder {
    harness.store().capabilities().training_set_order
}

/// Applies the definitions for `engine`, waits for the jobs and returns the training set
/// as JSON lines, with the order the provider declares for them.
async fn build_on(engine: &str) -> (Vec<Value>, TrainingSetOrder) {
    let q = quiver();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (config, transactions, labels, order, _keep) = prepare(engine, &data).await;
    let defs = write_file(
        dir,
        "defs.yaml",
        &definitions(&config, &transactions, &labels),
    );
    let data_dir = dir.join(".quiver");
    let server = q.serve_in(dir, &["--data-dir", data_dir.to_str().unwrap()]);
    let remote = ["--server", server.url.as_str()];
    let run = |args: &[&str]| {
        let all: Vec<&str> = args.iter().chain(remote.iter()).copied().collect();
        q.run_in(dir, &all)
    };
    run(&["apply", "-f", defs.to_str().unwrap()]).success();
    let waited = run(&["jobs", "wait", "--timeout", "240s"]);
    assert!(
        waited.code == Some(0),
        "{engine}: jobs wait: {}\n{}\nserver log:\n{}",
        waited.stderr,
        run(&["jobs"]).stdout,
        server.log()
    );
    let out = dir.join("fraud.jsonl");
    run(&["training-set", "get", "fraud", "-o", out.to_str().unwrap()]).success();
    let rows = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    (rows, order)
}

/// `rows` (in label order) stably sorted as `TrainingSetOrder::LabelColumns` says: by the
/// label's entity, timestamp and value columns (never NULL in this dataset; the
/// timestamps are RFC 3339 strings of one width, so they sort as text).
fn by_label_columns(rows: &[Value]) -> Vec<Value> {
    let mut sorted = rows.to_vec();
    sorted.sort_by_key(|row| {
        (
            row["user_id"].as_i64().expect("user_id"),
            row["reviewed_at"]
                .as_str()
                .expect("reviewed_at")
                .to_string(),
            row["is_fraud"].as_i64().expect("is_fraud"),
        )
    });
    sorted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_training_set_is_built_alike_on_every_provider() {
    let (embedded, _) = build_on("embedded").await;
    assert_eq!(embedded.len(), 300, "one row per label row");
    let matched = embedded
        .iter()
        .filter(|row| !row["last_amount"].is_null())
        .count();
    assert!(
        matched > 100 && matched < 300,
        "the data must give both matches and misses: {matched} of 300 matched"
    );
    for engine in ["postgres", "snowflake", "bigquery"] {
        let (rows, order) = build_on(engine).await;
        assert_eq!(rows.len(), embedded.len(), "{engine}: rows");
        let expected = match order {
            TrainingSetOrder::Label => embedded.clone(),
            TrainingSetOrder::LabelColumns => by_label_columns(&embedded),
        };
        for (i, (a, e)) in rows.iter().zip(&expected).enumerate() {
            assert_eq!(a, e, "{engine}: row {i} differs from the embedded engine's");
        }
    }
}

/// Applies definitions over a Postgres provider configured with `config`, waits for the
/// jobs and returns the failed training-set job as JSON, checking nothing else was lost.
fn failing_build(config: Value) -> (Value, String) {
    let q = quiver();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let defs = write_file(
        dir,
        "defs.yaml",
        &definitions(
            &config,
            "table: public.transactions",
            "table: public.reviews",
        ),
    );
    let data_dir = dir.join(".quiver");
    let server = q.serve_in(dir, &["--data-dir", data_dir.to_str().unwrap()]);
    let remote = ["--server", server.url.as_str()];
    let run = |args: &[&str]| {
        let all: Vec<&str> = args.iter().chain(remote.iter()).copied().collect();
        q.run_in(dir, &all)
    };
    run(&["apply", "-f", defs.to_str().unwrap()]).success();
    let waited = run(&["jobs", "wait", "--timeout", "120s"]);
    assert_eq!(
        waited.code,
        Some(1),
        "jobs wait must report the failures: {}",
        waited.stderr
    );
    let jobs = run(&["jobs", "--output", "json"]).success().json();
    let failed: Vec<&Value> = jobs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|job| job["state"] == "failed")
        .collect();
    assert!(!failed.is_empty(), "no failed job: {jobs}");
    let job = failed
        .iter()
        .find(|job| job["kind"] == "transformation")
        .copied()
        .unwrap_or(failed[0])
        .clone();
    assert_eq!(
        job["attempts"], job["max_attempts"],
        "failed only once its attempts were spent: {job}"
    );
    assert!(job["max_attempts"].as_i64().unwrap() > 1, "retried: {job}");
    // Every definition is still there.
    for (kind, count) in [
        ("sources", 3),
        ("features", 2),
        ("labels", 1),
        ("training-sets", 1),
    ] {
        let listed = run(&["list", kind, "--output", "json"]).success().json();
        assert_eq!(
            listed["items"].as_array().map(Vec::len),
            Some(count),
            "{kind} after the failure: {listed}"
        );
    }
    (job, server.log())
}

fn text_of(job: &Value) -> String {
    job.to_string().to_lowercase()
}

#[test]
fn an_unreachable_or_refusing_provider_fails_jobs_after_retries_with_its_message() {
    let closed = quiver_e2e::closed_port_url();
    let port: u16 = closed.rsplit(':').next().unwrap().parse().unwrap();
    let (job, log) = failing_build(json!({
        "type": "postgres", "host": "127.0.0.1", "port": port,
        "database": "postgres", "user": "postgres",
    }));
    let text = text_of(&job);
    assert!(
        text.contains("unreachable") && text.contains(&format!("127.0.0.1:{port}")),
        "the job names the cause and where the provider looked: {job}\n{log}"
    );

    let (job, log) = failing_build(json!({
        "type": "postgres", "host": "127.0.0.1", "port": 5432,
        "database": "postgres", "user": "quiver_no_such_role",
    }));
    let text = text_of(&job);
    assert!(
        text.contains("quiver_no_such_role") && text.contains("does not exist"),
        "the job carries Postgres's refusal: {job}\n{log}"
    );
}
