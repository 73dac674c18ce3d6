//! Materialization into the production online stores through `quiver serve`: the same
//! feature materialized from Parquet into Redis (the local server) and into DynamoDB
//! (moto over HTTP) is served by `POST /api/v1/online-features`, and the on-demand parity
//! check finds every entity's online value equal to the offline latest value. Bad
//! requests — a feature without an online provider, one whose materialization failed
//! because its source lacks the entity column — are clear 4xx errors, and the failed
//! feature leaves the other one's values alone.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use parquet::arrow::ArrowWriter;
use quiver_e2e::{ensure_service, http_post_json, write_file, Quiver};
use serde_json::{json, Value};

const USERS: usize = 40;

fn quiver() -> Quiver {
    Quiver::new(env!("CARGO_BIN_EXE_quiver-under-test"))
}

/// Transactions of 40 users over 10 days, several per user, in no particular order.
fn write_transactions(path: &Path) {
    let mut state: u64 = 0xF00D;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    let (mut users, mut amounts, mut times) = (vec![], vec![], vec![]);
    for i in 0..600 {
        // Every user has at least one row.
        let user = if i < USERS {
            i as u64
        } else {
            next(USERS as u64)
        };
        users.push(format!("u{user}"));
        amounts.push(next(100_000) as f64 / 100.0);
        times.push(1_767_225_600_000_000 + next(10 * 24) as i64 * 3_600_000_000);
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("user_id", Arc::new(StringArray::from(users))),
        ("amount", Arc::new(Float64Array::from(amounts))),
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")),
        ),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut writer =
        ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn definitions(online: &Value, variant: &str) -> String {
    format!(
        r#"kind: provider
name: local
owner: e2e
config: {{type: files, root: ./data}}
---
kind: provider
name: online
owner: e2e
config: {online}
---
kind: entity
name: user
owner: e2e
---
kind: source
name: tx
variant: v1
owner: e2e
provider: local
file: {{path: tx.parquet}}
---
kind: feature
name: last_amount
variant: {variant}
owner: e2e
entity: user
entity_column: user_id
source: tx
value_column: amount
value_type: float64
timestamp_column: ts
online_provider: online
---
kind: feature
name: offline_only
variant: {variant}
owner: e2e
entity: user
entity_column: user_id
source: tx
value_column: amount
value_type: float64
timestamp_column: ts
---
kind: feature
name: broken
variant: {variant}
owner: e2e
entity: user
entity_column: customer_id
source: tx
value_column: amount
value_type: float64
timestamp_column: ts
online_provider: online
"#
    )
}

fn materialize_and_check(online: Value) {
    let q = quiver();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    write_transactions(&dir.join("data/tx.parquet"));
    // A fresh variant per run: the online store outlives the test.
    let variant = format!("e2e{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let defs = write_file(dir, "defs.yaml", &definitions(&online, &variant));
    let data_dir = dir.join(".quiver");
    let server = q.serve_in(dir, &["--data-dir", data_dir.to_str().unwrap()]);
    let remote = ["--server", server.url.as_str()];
    let run = |args: &[&str]| {
        let all: Vec<&str> = args.iter().chain(remote.iter()).copied().collect();
        q.run_in(dir, &all)
    };
    run(&["apply", "-f", defs.to_str().unwrap()]).success();
    // `broken` fails after its attempts (its source has no `customer_id`): jobs wait
    // reports it, and only it.
    let waited = run(&["jobs", "wait", "--timeout", "180s"]);
    assert_eq!(waited.code, Some(1), "{}\n{}", waited.stderr, server.log());
    assert!(
        waited.stderr.contains("broken") && waited.stderr.contains("customer_id"),
        "{}",
        waited.stderr
    );
    assert!(!waited.stderr.contains("last_amount"), "{}", waited.stderr);

    // Parity: every entity's online value equals the offline latest value.
    let (status, body) = http_post_json(
        &server.url,
        &format!("/api/v1/features/last_amount/{variant}/parity"),
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["entities_checked"], USERS, "{report}");
    assert_eq!(report["matching"], USERS, "{report}");
    assert_eq!(report["in_parity"], true, "{report}");

    // Serving: one request, several entities, values with status.
    let request = json!({"entities": {"user": ["u0", "u1", "nobody"]},
                         "features": [format!("last_amount:{variant}")]});
    let (status, body) =
        http_post_json(&server.url, "/api/v1/online-features", &request.to_string()).unwrap();
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let statuses: Vec<&str> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["values"][0]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["present", "present", "missing"], "{answer}");

    // Bad requests: a feature with no online provider, one that failed to materialize,
    // one that does not exist; a parity check of an unmaterialized feature.
    for (feature, code, words) in [
        ("offline_only", 400, "no online provider"),
        ("broken", 409, "customer_id"),
        ("nope", 404, "unknown feature"),
    ] {
        let request = json!({"entities": {"user": ["u0"]},
                             "features": [format!("{feature}:{variant}")]});
        let (status, body) =
            http_post_json(&server.url, "/api/v1/online-features", &request.to_string()).unwrap();
        assert_eq!(status, code, "{feature}: {body}");
        assert!(body.contains(words), "{feature}: {body}");
    }
    let (status, body) = http_post_json(
        &server.url,
        &format!("/api/v1/features/broken/{variant}/parity"),
        "",
    )
    .unwrap();
    assert_eq!(status, 409, "{body}");
    // The failure left the good feature in parity.
    let (_, body) = http_post_json(
        &server.url,
        &format!("/api/v1/features/last_amount/{variant}/parity"),
        "",
    )
    .unwrap();
    assert!(body.contains("\"in_parity\":true"), "{body}");
}

#[test]
fn redis_serves_materialized_values_in_parity_with_the_offline_store() {
    ensure_service(6379, "Redis");
    materialize_and_check(json!({"type": "redis", "address": "127.0.0.1:6379"}));
}

#[test]
fn dynamodb_serves_materialized_values_in_parity_with_the_offline_store() {
    ensure_service(19002, "the DynamoDB emulator (moto)");
    let prefix = format!("e2e_{}_", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    materialize_and_check(json!({
        "type": "dynamodb",
        "region": "us-east-1",
        "endpoint": "http://127.0.0.1:19002",
        "access_key_id": "testing",
        "secret_access_key": "testing",
        "table_prefix": prefix,
    }));
}
