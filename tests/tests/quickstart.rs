//! The quickstart with its data, as `scripts/quickstart.sh` runs it: generated card
//! transactions, `quiver serve` in the data's directory, apply, `jobs wait`, a training
//! set downloaded in several formats (over HTTP and in-process) and online features.

use quiver_e2e::{generate_quickstart_data, quickstart_defs, Quiver};
use quiver_quickstart_data::summarize;

fn quiver() -> Quiver {
    Quiver::new(env!("CARGO_BIN_EXE_quiver-under-test"))
}

#[test]
fn quickstart_builds_serves_and_downloads() {
    let q = quiver();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    generate_quickstart_data(dir, 7, 200);
    let data_dir = dir.join(".quiver");
    let data_dir = data_dir.to_str().unwrap();
    let server = q.serve_in(dir, &["--data-dir", data_dir]);
    let remote = ["--server", server.url.as_str()];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(|s| s.to_string())
            .chain(remote.iter().map(|s| s.to_string()))
            .collect()
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        q.run_in(dir, &refs)
    };

    let defs = quickstart_defs();
    run(with(&["apply", "-f", defs.to_str().unwrap()])).success();

    let waited = run(with(&["jobs", "wait", "--timeout", "180s"]));
    assert!(
        waited.code == Some(0),
        "jobs wait: {}\n{}\nserver log:\n{}",
        waited.stderr,
        run(with(&["jobs"])).stdout,
        server.log()
    );
    let jobs = run(with(&["jobs", "--output", "json"])).success().json();
    for job in jobs["items"].as_array().unwrap() {
        assert_eq!(job["state"], "succeeded", "{job}");
    }
    let table = run(with(&["jobs"]));
    assert!(
        table.success().stdout.contains("DURATION"),
        "{}",
        table.stdout
    );
    let status = run(with(&[
        "get",
        "training_set",
        "fraud_training",
        "--output",
        "json",
    ]))
    .success()
    .json();
    assert_eq!(status["status"], "ready", "{status}");

    // The training set: one row per label row, every feature a column.
    let parquet = dir.join("fraud_training.parquet");
    let got = run(with(&[
        "training-set",
        "get",
        "fraud_training",
        "-o",
        parquet.to_str().unwrap(),
    ]));
    assert!(
        got.success().stdout.contains("as parquet"),
        "{}",
        got.stdout
    );
    assert!(!dir.join("fraud_training.parquet.partial").exists());
    let summary = summarize(&parquet).unwrap();
    let rows: usize = summary.split(' ').next().unwrap().parse().unwrap();
    assert!(rows > 900, "{summary}");
    assert!(summary.contains(" rows; 8 columns: user_id"), "{summary}");
    for column in [
        "reported_at",
        "avg_amount_7d",
        "txn_count_7d",
        "avg_amount_30d",
        "max_amount_30d_lag_1d",
        "last_amount",
        "is_fraud",
    ] {
        assert!(summary.contains(column), "{column}: {summary}");
    }

    // CSV by extension, over HTTP and in-process: the same bytes.
    let csv = dir.join("fraud_training.csv");
    run(with(&[
        "training-set",
        "get",
        "fraud_training",
        "--variant",
        "v1",
        "-o",
        csv.to_str().unwrap(),
    ]))
    .success();
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 1 + rows);
    assert!(text.starts_with("user_id,reported_at,"), "{}", &text[..200]);
    let local_csv = dir.join("local.csv");
    run(vec![
        "training-set".into(),
        "get".into(),
        "fraud_training".into(),
        "-o".into(),
        local_csv.to_str().unwrap().into(),
        "--data-dir".into(),
        data_dir.into(),
    ])
    .success();
    assert_eq!(std::fs::read_to_string(&local_csv).unwrap(), text);

    // Online features: users with recent spend are present, unknown ids missing.
    let online = run(with(&[
        "online-features",
        "--feature",
        "avg_amount_7d",
        "--feature",
        "txn_count_7d:v1",
        "--entity",
        "user=u0001,u0002,nobody",
        "--output",
        "json",
    ]))
    .success()
    .json();
    assert_eq!(
        online["features"],
        serde_json::json!(["avg_amount_7d:v1", "txn_count_7d:v1"])
    );
    let results = online["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[2]["values"][0]["status"], "missing");
    let statuses: Vec<&str> = results[..2]
        .iter()
        .flat_map(|r| r["values"].as_array().unwrap())
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == "present" || *s == "expired"),
        "{online}"
    );
    let table = run(with(&[
        "online-features",
        "--feature",
        "avg_amount_7d",
        "--entity",
        "user=nobody",
    ]));
    assert_eq!(
        table.success().stdout,
        "user    avg_amount_7d:v1\nnobody  (missing)\n"
    );

    // Bad inputs are one clear line each.
    let unknown = run(with(&[
        "online-features",
        "--feature",
        "nope",
        "--entity",
        "user=u1",
    ]));
    assert!(unknown.error_line(1).contains("unknown feature `nope`"));
    let offline_only = run(with(&[
        "online-features",
        "--feature",
        "avg_amount_30d",
        "--entity",
        "user=u1",
    ]));
    assert!(offline_only.error_line(1).contains("no online provider"));
    let missing = run(with(&["training-set", "get", "nope", "-o", "x.parquet"]));
    assert!(missing.error_line(1).contains("not found"));
    assert!(!dir.join("x.parquet").exists() && !dir.join("x.parquet.partial").exists());

    // The providers are healthy.
    let (status, body) =
        quiver_e2e::http_get(&server.url, "/api/v1/providers/local-files/health").unwrap();
    assert_eq!(status, 200, "{body}");

    assert!(server.stop().success());
}
