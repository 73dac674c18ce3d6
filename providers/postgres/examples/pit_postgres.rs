//! Point-in-time benchmark on Postgres: generates labels and feature sources with
//! `generate_series` in schema `quiver_bench`, builds one training set through the
//! provider (which indexes the sources on `(user_id, ts)` first), prints the wall times and
//! the plan of the generated statement, and checks that the plan probes the index per
//! label row (`LATERAL … LIMIT 1` over an index scan) instead of a hash or merge join.
//!
//! ```text
//! cargo run -p quiver-provider-postgres --example pit_postgres
//! ```
//!
//! Environment: `QUIVER_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! `QUIVER_BENCH_ROWS` (rows per table, default 1 000 000; entities are a tenth of that),
//! `QUIVER_BENCH_SOURCES` (default 5).

use std::time::Instant;

use quiver_provider_postgres::PostgresOfflineStore;
use quiver_provider_sdk::{
    FeatureQuery, KeyPair, LabelQuery, OfflineStore, OutputRef, TableRef, TrainingSetQuery,
};
use quiver_sql::{Postgres, SqlError, TableName};
use sqlx::{Connection, Executor, PgConnection};

const SCHEMA: &str = "quiver_bench";

fn env_number(name: &str, default: u64) -> Result<u64, Box<dyn std::error::Error>> {
    match std::env::var(name) {
        Ok(value) => Ok(value.parse().map_err(|e| format!("{name}={value}: {e}"))?),
        Err(_) => Ok(default),
    }
}

/// One year of timestamps from 2024-01-01, uniformly at random.
fn random_ts() -> &'static str {
    "TIMESTAMPTZ '2024-01-01 00:00:00+00' + random() * INTERVAL '365 days'"
}

async fn generate(
    conn: &mut PgConnection,
    rows: u64,
    sources: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let entities = (rows / 10).max(1);
    conn.execute(format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE").as_str())
        .await?;
    conn.execute(format!("CREATE SCHEMA {SCHEMA}").as_str())
        .await?;
    // Same data on every run.
    conn.execute("SELECT setseed(0.42)").await?;
    conn.execute(
        format!(
            "CREATE TABLE {SCHEMA}.labels AS SELECT (random() * {entities})::bigint AS user_id, \
             {} AS ts, (random() < 0.5)::int AS label FROM generate_series(1, {rows})",
            random_ts()
        )
        .as_str(),
    )
    .await?;
    for i in 0..sources {
        conn.execute(
            format!(
                "CREATE TABLE {SCHEMA}.source_{i} AS SELECT (random() * {entities})::bigint AS user_id, \
                 {} AS ts, random() AS v FROM generate_series(1, {rows})",
                random_ts()
            )
            .as_str(),
        )
        .await?;
    }
    conn.execute(format!("ANALYZE {SCHEMA}.labels").as_str())
        .await?;
    Ok(())
}

fn query(sources: u64) -> TrainingSetQuery {
    TrainingSetQuery {
        label: LabelQuery {
            table: TableRef::Table(format!("{SCHEMA}.labels")),
            entity_columns: vec!["user_id".into()],
            value_column: "label".into(),
            output_column: "label".into(),
            timestamp_column: Some("ts".into()),
        },
        features: (0..sources)
            .map(|i| FeatureQuery {
                name: format!("f{i}"),
                table: TableRef::Table(format!("{SCHEMA}.source_{i}")),
                keys: vec![KeyPair {
                    label_column: "user_id".into(),
                    feature_column: "user_id".into(),
                }],
                value_column: "v".into(),
                timestamp_column: Some("ts".into()),
                created_timestamp_column: None,
                max_age: None,
                lag: None,
            })
            .collect(),
        output: OutputRef {
            kind: "training_set".into(),
            name: "bench".into(),
            variant: "v1".into(),
        },
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("QUIVER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let rows = env_number("QUIVER_BENCH_ROWS", 1_000_000)?;
    let sources = env_number("QUIVER_BENCH_SOURCES", 5)?;
    let mut conn = PgConnection::connect(&url).await?;

    let started = Instant::now();
    generate(&mut conn, rows, sources).await?;
    println!(
        "generated {rows} label rows and {sources} sources x {rows} rows ({} entities) in {:.1}s",
        (rows / 10).max(1),
        started.elapsed().as_secs_f64()
    );

    let store = PostgresOfflineStore::connect_url(&url, SCHEMA)?;
    let query = query(sources);
    let started = Instant::now();
    let written = store.build_training_set(&query).await?;
    println!(
        "first build (creates the (user_id, ts) indexes): {written} rows in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let written = store.build_training_set(&query).await?;
    let warm = started.elapsed().as_secs_f64();
    println!("second build (indexes in place): {written} rows in {warm:.1}s");
    assert_eq!(written, rows, "one output row per label row");

    let resolve = |table: &TableRef| match table {
        TableRef::Table(name) => TableName::parse(name),
        other => Err(SqlError::Unsupported(format!("{other:?}"))),
    };
    let statement = quiver_sql::point_in_time(&Postgres, &query, &resolve)?;
    let inline = quiver_sql::render_inline(&Postgres, &statement);
    conn.execute("SET TimeZone = 'UTC'").await?;
    let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {inline}"))
        .fetch_all(&mut conn)
        .await?;
    println!("EXPLAIN of the generated statement:");
    for line in &plan {
        println!("  {line}");
    }
    let plan = plan.join("\n");
    let probes = plan
        .lines()
        .filter(|l| l.contains("Index") && l.contains(" using quiver_"))
        .count();
    assert!(
        probes as u64 >= sources,
        "every feature must be an index probe on its quiver_ (user_id, ts) index"
    );
    assert!(
        !plan
            .lines()
            .any(|l| (l.contains("Hash") || l.contains("Merge")) && l.contains("Join")),
        "the plan must not be a hash or merge range join"
    );
    println!(
        "ok: {probes} index probes, no hash/merge join; {:.2} µs per label row and feature (warm)",
        warm * 1e6 / (rows * sources.max(1)) as f64
    );
    Ok(())
}
