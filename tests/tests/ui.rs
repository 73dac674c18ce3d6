//! The web catalog in a real browser: `quiver serve` loaded with the quickstart (data
//! and jobs), a feature whose materialization fails, a feature whose description holds
//! HTML, and a generated catalogue of 10 000 features; then `ui/tests/e2e.mjs` drives
//! headless Chromium through playwright-core over every page (see that file for the
//! checks). Chromium, Node and playwright-core are installed by `scripts/ui-browser.sh`
//! when absent; the test fails, never skips, when they cannot be.
//!
//! Screenshots go to `$CARGO_TARGET_DIR/ui-screenshots/` (artifacts, not committed).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use quiver_e2e::{
    generate_quickstart_data, http_get, http_post_json, quickstart_defs, repo_root, write_file,
    Quiver,
};
use serde_json::{json, Value};

fn quiver() -> Quiver {
    Quiver::new(env!("CARGO_BIN_EXE_quiver-under-test"))
}

const GENERATED_FEATURES: usize = 10_000;
const GENERATED_PROVIDERS: usize = 4;
/// 50 features per source: a source's lineage graph has 50+ nodes.
const FEATURES_PER_SOURCE: usize = 50;
const GENERATED_ENTITIES: usize = 10;
const APPLY_BATCH: usize = 1_000;
/// The one generated feature whose description holds this word.
const UNIQUE_WORD: &str = "zanzibarite";
const DESCRIBED_FEATURE: usize = 4_242;
/// In every generated source's description and in a third of the features'.
const COMMON_WORD: &str = "daily";

const FAILING_FEATURE: &str = "broken_user_spend";
const MISSING_COLUMN: &str = "no_such_user_column";
const HTML_FEATURE: &str = "html_description_feature";
const HTML_DESCRIPTION: &str =
    "<b>bold</b> <img src=x onerror=\"window.__pwned = 3\"> & <script>window.__pwned = 4</script>";

/// Definitions the quickstart does not have: one feature whose materialization fails
/// (its entity column does not exist) and one whose description is HTML.
fn extra_definitions() -> String {
    let html = serde_json::to_string(HTML_DESCRIPTION).expect("a string serializes");
    format!(
        "kind: feature
name: {FAILING_FEATURE}
variant: v1
owner: risk-team
description: Spend per card holder, keyed by a column the source does not have
tags: [spend, broken]
entity: user
source: transactions
entity_column: {MISSING_COLUMN}
value_column: amount
value_type: float64
timestamp_column: ts
online_provider: local-online
---
kind: feature
name: {HTML_FEATURE}
variant: v1
owner: risk-team
description: {html}
entity: user
source: transactions
entity_column: user_id
value_column: amount
value_type: float64
timestamp_column: ts
"
    )
}

const TEAMS: [&str; 12] = [
    "growth",
    "payments",
    "risk-ops",
    "search",
    "ads",
    "pricing",
    "trust-safety",
    "logistics",
    "marketing",
    "credit",
    "fraud-ml",
    "platform",
];
const TAGS: [&str; 24] = [
    "pii",
    "gold",
    "silver",
    "bronze",
    "realtime",
    "batch",
    "finance",
    "engagement",
    "retention",
    "churn",
    "ranking",
    "experiment",
    "deprecated",
    "core",
    "mobile",
    "web",
    "eu",
    "us",
    "apac",
    "ltv",
    "sessions",
    "orders",
    "clicks",
    "inventory",
];
const METRICS: [&str; 10] = [
    "average", "total", "maximum", "minimum", "median", "count", "ratio", "share", "variance",
    "trend",
];
const THINGS: [&str; 10] = [
    "order value",
    "sessions",
    "clicks",
    "refunds",
    "page views",
    "basket size",
    "returns",
    "logins",
    "support tickets",
    "card declines",
];
const WINDOWS: [&str; 3] = ["daily", "over the last 7 days", "over the last 30 days"];
const TYPES: [&str; 4] = ["float64", "int64", "bool", "string"];

/// The generated catalogue as apply batches: providers, entities and sources first, then
/// the features in batches of [`APPLY_BATCH`].
fn generated_catalog() -> Vec<Vec<Value>> {
    let mut base = Vec::new();
    for p in 0..GENERATED_PROVIDERS {
        base.push(json!({
            "kind": "provider", "name": format!("gen-warehouse-{p}"), "owner": "platform",
            "description": format!("Generated warehouse {p} for the catalog's browser tests"),
            "tags": ["generated"],
            // An existing directory, so the health check on the home page passes.
            "config": {"type": "files", "root": "./data"},
        }));
    }
    for e in 0..GENERATED_ENTITIES {
        base.push(json!({
            "kind": "entity", "name": format!("gen_entity_{e}"), "owner": TEAMS[e % TEAMS.len()],
            "description": format!("Generated entity {e}"),
        }));
    }
    let sources = GENERATED_FEATURES / FEATURES_PER_SOURCE;
    for s in 0..sources {
        base.push(json!({
            "kind": "source", "name": format!("gen_src_{s:03}"), "variant": "v1",
            "owner": TEAMS[s % TEAMS.len()],
            "description": format!("{COMMON_WORD} snapshot of generated table {s}"),
            "tags": [TAGS[s % TAGS.len()]],
            "provider": format!("gen-warehouse-{}", s % GENERATED_PROVIDERS),
            "table": format!("gen.table_{s:03}"),
        }));
    }
    let mut batches = vec![base];
    let mut features = Vec::new();
    for i in 0..GENERATED_FEATURES {
        let mut description = format!(
            "{} {} per gen_entity_{} {}",
            METRICS[i % METRICS.len()],
            THINGS[(i / 7) % THINGS.len()],
            i % GENERATED_ENTITIES,
            WINDOWS[i % WINDOWS.len()],
        );
        if i == DESCRIBED_FEATURE {
            description.push_str(&format!(", the {UNIQUE_WORD} benchmark"));
        }
        features.push(json!({
            "kind": "feature", "name": format!("gen_f{i:05}"), "variant": "v1",
            "owner": TEAMS[(i / 3) % TEAMS.len()],
            "description": description,
            "tags": [TAGS[i % TAGS.len()], TAGS[(i / 5 + 7) % TAGS.len()]],
            "entity": format!("gen_entity_{}", i % GENERATED_ENTITIES),
            "source": format!("gen_src_{:03}:v1", i / FEATURES_PER_SOURCE),
            "entity_column": "id",
            "value_column": format!("value_{i}"),
            "value_type": TYPES[i % TYPES.len()],
            "timestamp_column": "ts",
        }));
        if features.len() == APPLY_BATCH {
            batches.push(std::mem::take(&mut features));
        }
    }
    if !features.is_empty() {
        batches.push(features);
    }
    batches
}

/// Where the screenshots go: `$CARGO_TARGET_DIR/ui-screenshots`, or the target
/// directory this test binary was built in.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            // target/debug/deps/ui-<hash>
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.ancestors().nth(3).map(PathBuf::from))
        })
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("ui-screenshots")
}

#[test]
fn web_catalog_in_a_browser() {
    // The browser first: a missing one fails here, before minutes of setup.
    let install = Command::new(repo_root().join("scripts/ui-browser.sh"))
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/ui-browser.sh");
    assert!(
        install.status.success(),
        "scripts/ui-browser.sh failed:\n{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let chromium = String::from_utf8_lossy(&install.stdout)
        .lines()
        .last()
        .expect("ui-browser.sh prints the chromium path")
        .trim()
        .to_string();

    let q = quiver();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    generate_quickstart_data(dir, 11, 100);
    let data_dir = dir.join(".quiver");
    let server = q.serve_in(dir, &["--data-dir", data_dir.to_str().unwrap()]);
    let url = server.url.clone();
    let remote = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&["--server", url.as_str()]);
        q.run_in(dir, &all)
    };

    remote(&["apply", "-f", quickstart_defs().to_str().unwrap()]).success();
    let extra = write_file(dir, "extra/ui.yaml", &extra_definitions());
    remote(&["apply", "-f", extra.to_str().unwrap()]).success();

    let started = Instant::now();
    for batch in generated_catalog() {
        let body = json!({ "documents": batch }).to_string();
        let (status, answer) =
            http_post_json(&url, "/api/v1/apply", &body).expect("apply a generated batch");
        assert_eq!(status, 200, "apply: {answer:.500}");
    }
    println!(
        "ui: applied {GENERATED_FEATURES} generated features in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The quickstart's jobs succeed; the broken feature's fails (after its attempts).
    let waited = remote(&["jobs", "wait", "--timeout", "300s"]);
    let (_, failed) = http_get(&url, "/api/v1/jobs?state=failed").expect("list failed jobs");
    let failed: Value = serde_json::from_str(&failed).expect("jobs JSON");
    let failed = failed["items"].as_array().expect("items").clone();
    assert!(
        failed.len() == 1 && failed[0]["resource"]["name"] == FAILING_FEATURE,
        "expected exactly the job of {FAILING_FEATURE} to fail; jobs wait said:\n{}{}\nfailed: {failed:?}\nserver log:\n{}",
        waited.stdout,
        waited.stderr,
        server.log()
    );
    let error = failed[0]["error"].as_str().unwrap_or_default().to_string();
    assert!(
        error.contains(MISSING_COLUMN),
        "the failed job's error does not name the missing column: {error}"
    );

    // Build the search index once before measuring: it is rebuilt after every catalogue
    // change (the server logs how long that took), and pages are timed in steady state.
    let started = Instant::now();
    let (status, _) = http_get(&url, "/api/v1/search?q=warm").expect("warm the search index");
    assert_eq!(status, 200);
    println!(
        "ui: first search after the last change (index rebuild included): {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );

    let fixture = json!({
        "feature": "avg_amount_7d",
        "lineage_target": {
            "kind": "source", "name": "user_txn_aggregates", "variant": "v1",
            "path": "/sources/user_txn_aggregates/v1",
        },
        "sql_source": "user_txn_aggregates",
        "label": "is_fraud",
        "training_set": "fraud_training",
        "model": "fraud_detector",
        "entity": "user",
        "provider": "local-files",
        "user": "risk-team",
        "busy_source": "gen_src_007",
        "described_feature": format!("gen_f{DESCRIBED_FEATURE:05}"),
        "unique_word": UNIQUE_WORD,
        "common_word": COMMON_WORD,
        "failing_feature": FAILING_FEATURE,
        "failing_error_fragment": MISSING_COLUMN,
        "html_feature": HTML_FEATURE,
        "html_description": HTML_DESCRIPTION,
    });
    let screenshots = screenshot_dir();
    let script = repo_root().join("ui/tests/e2e.mjs");
    let mut child = Command::new("node")
        .arg(&script)
        .current_dir(repo_root().join("ui/tests"))
        .env("QUIVER_URL", &url)
        .env("QUIVER_CHROMIUM", &chromium)
        .env("QUIVER_UI_SCREENSHOTS", &screenshots)
        .env("QUIVER_UI_FIXTURE", fixture.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node ui/tests/e2e.mjs");
    // Stream stdout as it comes (visible with --no-capture), keep it for the asserts.
    let stdout = child.stdout.take().expect("piped");
    let mut output = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read the browser test's output");
        println!("{line}");
        output.push_str(&line);
        output.push('\n');
    }
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        use std::io::Read;
        let _ = err.read_to_string(&mut stderr);
    }
    let status = wait_with_timeout(&mut child, Duration::from_secs(600));
    assert!(
        status,
        "the browser tests failed:\n{output}\n{stderr}\nserver log (tail):\n{}",
        tail(&server.log(), 60)
    );
    let result: Value = output
        .lines()
        .find_map(|l| l.strip_prefix("UI_E2E_RESULT "))
        .and_then(|json| serde_json::from_str(json).ok())
        .expect("the browser test reports its figures");
    let max_search = result["search"]["max_server_ms"]
        .as_f64()
        .unwrap_or(f64::MAX);
    assert!(max_search < 100.0, "search took {max_search} ms: {result}");
    for (page, ms) in result["pages"].as_object().expect("pages") {
        let ms = ms.as_f64().unwrap_or(f64::MAX);
        assert!(ms < 1000.0, "{page} took {ms} ms to be interactive");
    }
    for shot in [
        "home.png",
        "search.png",
        "feature-detail.png",
        "lineage.png",
    ] {
        assert!(
            screenshots.join(shot).is_file(),
            "screenshot {shot} was not written to {}",
            screenshots.display()
        );
    }
    println!("ui: screenshots in {}", screenshots.display());
}

/// Wait for `child`; kill it after `limit`. Whether it exited with success.
fn wait_with_timeout(child: &mut std::process::Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
