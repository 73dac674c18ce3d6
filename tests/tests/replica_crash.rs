//! `kill -9` of a `quiver serve` replica in the middle of a materialization, with a second
//! replica on the same Postgres: the second takes the job over once the crashed one's
//! lease expires and finishes it; the job is neither lost nor duplicated (one job, two
//! runs: the crashed attempt failed by lease expiry, the second succeeded), and every
//! online value equals the offline latest value afterwards (event-time monotonic writes
//! make the re-run harmless: nothing is written out of order).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use parquet::arrow::ArrowWriter;
use quiver_e2e::{http_get, http_post_json, write_file, Quiver, RedisServer, TempDatabase};
use serde_json::Value;

/// Enough entities that the materialization takes seconds, so it can be caught running.
const ENTITIES: usize = 600_000;

fn write_source(path: &Path) {
    let users: Vec<String> = (0..ENTITIES).map(|i| format!("u{i}")).collect();
    let amounts: Vec<f64> = (0..ENTITIES).map(|i| i as f64 / 4.0).collect();
    let times: Vec<i64> = (0..ENTITIES)
        .map(|i| 1_767_225_600_000_000 + (i % 86_400) as i64 * 1_000_000)
        .collect();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("user", Arc::new(StringArray::from(users))),
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

fn the_job(url: &str) -> Value {
    let (status, body) = http_get(url, "/api/v1/jobs?kind=feature&name=amount&variant=v1").unwrap();
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "exactly one job for the feature: {page}");
    items[0].clone()
}

#[test]
fn a_replica_killed_mid_materialization_is_taken_over_and_nothing_is_lost() {
    let database = TempDatabase::create();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    write_source(&dir.join("data/tx.parquet"));
    // A Redis of our own (nothing on disk), so 600k entities do not pile up in the shared one.
    let redis = RedisServer::start(dir, false);
    let redis_port = redis.port;
    let defs = write_file(
        dir,
        "defs.yaml",
        &format!(
            r#"kind: provider
name: local
owner: e2e
config: {{type: files, root: ./data}}
---
kind: provider
name: online
owner: e2e
config: {{type: redis, address: "127.0.0.1:{redis_port}"}}
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
name: amount
variant: v1
owner: e2e
entity: user
source: tx
value_column: amount
value_type: float64
timestamp_column: ts
online_provider: online
"#
        ),
    );
    let q = Quiver::new(env!("CARGO_BIN_EXE_quiver-under-test"));
    let serve_args = |data: &str| {
        vec![
            "--database-url".to_string(),
            database.url.clone(),
            "--data-dir".to_string(),
            dir.join(data).to_str().unwrap().to_string(),
            "--job-lease".to_string(),
            "3s".to_string(),
        ]
    };
    let args_a = serve_args("a");
    let first = q.serve_in(dir, &args_a.iter().map(String::as_str).collect::<Vec<_>>());
    let first_pid = first.pid();
    q.run_in(
        dir,
        &[
            "apply",
            "-f",
            defs.to_str().unwrap(),
            "--server",
            &first.url,
        ],
    )
    .success();

    // Wait until the first replica is writing, then crash it.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let job = the_job(&first.url);
        let owner = job["lease_owner"].as_str().unwrap_or("");
        if job["state"] == "running"
            && owner.starts_with(&format!("quiver-{first_pid}-"))
            && job["progress_done"].as_i64().unwrap_or(0) > 0
        {
            eprintln!(
                "crashing the first replica at {} rows",
                job["progress_done"]
            );
            break;
        }
        assert!(
            job["state"] != "succeeded",
            "the materialization finished before it could be interrupted; raise ENTITIES"
        );
        assert!(
            Instant::now() < deadline,
            "never saw it running: {job}\n{}",
            first.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let args_b = serve_args("b");
    let second = q.serve_in(dir, &args_b.iter().map(String::as_str).collect::<Vec<_>>());
    first.crash();

    // The second replica takes over once the lease expires and finishes.
    let waited = q.run_in(
        dir,
        &["jobs", "wait", "--timeout", "300s", "--server", &second.url],
    );
    assert_eq!(waited.code, Some(0), "{}\n{}", waited.stderr, second.log());
    let job = the_job(&second.url);
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        job["attempts"], 2,
        "the crashed attempt and the take-over: {job}"
    );
    let (_, runs) = http_get(&second.url, &format!("/api/v1/jobs/{}/runs", job["id"])).unwrap();
    let runs: Value = serde_json::from_str(&runs).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(
        runs[0]["lease_owner"]
            .as_str()
            .unwrap()
            .starts_with(&format!("quiver-{first_pid}-")),
        "{runs:?}"
    );
    assert_eq!(runs[0]["state"], "failed", "{runs:?}");
    assert_eq!(runs[1]["state"], "succeeded", "{runs:?}");
    assert_ne!(runs[0]["lease_owner"], runs[1]["lease_owner"]);

    // Every entity's online value is the offline latest value.
    let (status, body) =
        http_post_json(&second.url, "/api/v1/features/amount/v1/parity", "").unwrap();
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["entities_checked"], ENTITIES, "{report}");
    assert_eq!(report["in_parity"], true, "{report}");
    redis.crash();
}
