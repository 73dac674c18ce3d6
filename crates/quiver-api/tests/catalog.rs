//! Happy paths: apply, list with each filter, get, variants, lineage, plan, jobs, health
//! and the served OpenAPI document; and the same over a real TCP socket.

mod common;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{header, Method};
use common::{names, TestApi, CATALOG_SIZE, CATALOG_YAML};
use quiver_api::AppState;
use quiver_core::{Kind, ResourceId, Status};
use quiver_metadata::{JobKind, NewJob};
use serde_json::{json, Value};

#[tokio::test]
async fn apply_then_list_with_every_filter() {
    let api = TestApi::new().await;
    let response = api.post_yaml("/api/v1/apply", CATALOG_YAML).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let plan = response.json();
    let actions: BTreeSet<&str> = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, BTreeSet::from(["create"]));
    assert_eq!(api.resource_count().await, CATALOG_SIZE as u64);

    // Every kind lists under its plural.
    for (plural, expected) in [
        ("users", vec!["alice"]),
        ("providers", vec!["local"]),
        ("entities", vec!["user"]),
        ("sources", vec!["transactions:v1", "tx_agg:v1"]),
        ("features", vec!["avg_amount:v1"]),
        ("labels", vec!["is_fraud:v1"]),
        ("training-sets", vec!["fraud_training:v1"]),
        ("models", vec!["fraud_model"]),
    ] {
        let list = api.get(&format!("/api/v1/{plural}")).await.json();
        assert_eq!(names(&list), expected, "{plural}");
        assert_eq!(list["total"], expected.len(), "{plural}");
    }

    let by = |query: &str| {
        let api = &api;
        let uri = format!("/api/v1/{query}");
        async move {
            let response = api.get(&uri).await;
            assert_eq!(response.status, 200, "{uri}: {}", response.text());
            names(&response.json())
        }
    };
    assert_eq!(
        by("training-sets?owner=growth").await,
        ["fraud_training:v1"]
    );
    assert!(by("training-sets?owner=risk").await.is_empty());
    assert_eq!(by("sources?tag=pii").await, ["transactions:v1"]);
    assert_eq!(
        by("features?q=seven").await,
        ["avg_amount:v1"],
        "description, any case"
    );
    assert_eq!(by("sources?q=agg").await, ["tx_agg:v1"], "name");
    assert_eq!(
        by("sources?owner=&q=").await.len(),
        2,
        "empty filters filter nothing"
    );

    let avg = ResourceId::new(Kind::Feature, "avg_amount", "v1");
    api.store
        .set_status(&avg, Status::Failed, Some("source table is missing"))
        .await
        .unwrap();
    let failed = api.get("/api/v1/features?status=failed").await.json();
    assert_eq!(names(&failed), ["avg_amount:v1"]);
    assert_eq!(failed["items"][0]["error"], "source table is missing");
    assert!(by("sources?status=failed").await.is_empty());

    // Pagination.
    let first = api.get("/api/v1/sources?limit=1").await.json();
    assert_eq!(
        (names(&first), &first["total"], &first["next_offset"]),
        (vec!["transactions:v1".to_string()], &json!(2), &json!(1))
    );
    let second = api.get("/api/v1/sources?limit=1&offset=1").await.json();
    assert_eq!(names(&second), ["tx_agg:v1"]);
    assert_eq!(second["next_offset"], Value::Null);
}

#[tokio::test]
async fn get_default_variant_and_variants() {
    let api = TestApi::new().await;
    api.apply_catalog().await;

    let provider = api.get("/api/v1/providers/local").await.json();
    assert_eq!(provider["kind"], "provider");
    assert_eq!(provider["variant"], "");
    assert_eq!(provider["is_default"], true);
    assert_eq!(provider["owner"], "platform");
    assert_eq!(provider["description"], "Local parquet files");
    assert_eq!(provider["tags"], json!(["offline"]));
    assert_eq!(provider["definition"]["config"]["type"], "files");
    for field in ["status", "created_at", "updated_at", "revision"] {
        assert!(!provider[field].is_null(), "{field}: {provider}");
    }

    // A second variant becomes the default; the first stays reachable.
    let v2 = CATALOG_YAML
        .split("---\n")
        .find(|doc| doc.contains("name: avg_amount"))
        .unwrap()
        .replace("variant: v1", "variant: v2")
        .replace("value_column: avg_amount", "value_column: mean_amount");
    let response = api.post_yaml("/api/v1/apply", &v2).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["items"][0]["becomes_default"], true);

    let default = api.get("/api/v1/features/avg_amount").await.json();
    assert_eq!(
        (&default["variant"], &default["is_default"]),
        (&json!("v2"), &json!(true))
    );
    assert_eq!(default["definition"]["value_column"], "mean_amount");
    assert_eq!(
        default["definition"]["source"], "tx_agg:v1",
        "references are pinned"
    );
    let v1 = api.get("/api/v1/features/avg_amount/v1").await.json();
    assert_eq!(
        (&v1["variant"], &v1["is_default"]),
        (&json!("v1"), &json!(false))
    );

    assert_eq!(
        names(&api.get("/api/v1/features").await.json()),
        ["avg_amount:v2"]
    );
    assert_eq!(
        names(&api.get("/api/v1/features?all_variants=true").await.json()),
        ["avg_amount:v1", "avg_amount:v2"]
    );

    let variants = api.get("/api/v1/features/avg_amount/variants").await.json();
    let listed: Vec<(&str, bool)> = variants["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["variant"].as_str().unwrap(),
                v["is_default"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [("v1", false), ("v2", true)]);
    let provider_variants = api.get("/api/v1/providers/local/variants").await.json();
    assert_eq!(provider_variants["variants"][0]["variant"], "");
}

#[tokio::test]
async fn plan_after_apply_is_all_unchanged_and_writes_nothing() {
    let api = TestApi::new().await;
    let plan = api.post_yaml("/api/v1/plan", CATALOG_YAML).await;
    assert_eq!(plan.status, 200, "{}", plan.text());
    assert_eq!(api.resource_count().await, 0, "plan wrote");
    let first = &plan.json()["items"][3];
    assert_eq!(first["resource"]["name"], "transactions");
    assert_eq!(first["action"], "create");
    let downstream: Vec<&str> = first["downstream"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        downstream.contains(&"tx_agg") && downstream.contains(&"fraud_model"),
        "{downstream:?}"
    );

    api.apply_catalog().await;
    let plan = api.post_yaml("/api/v1/plan", CATALOG_YAML).await.json();
    let actions: Vec<&str> = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["unchanged"; CATALOG_SIZE]);

    // Re-applying the same documents is a no-op, as JSON too.
    let documents: Vec<Value> = CATALOG_YAML
        .split("---\n")
        .map(|doc| serde_yaml::from_str(doc).unwrap())
        .collect();
    let response = api
        .post_json("/api/v1/apply", &json!({ "documents": documents }))
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["action"] == "unchanged"));
    assert_eq!(api.resource_count().await, CATALOG_SIZE as u64);
}

/// `name[:variant]` of a lineage response's nodes, sorted by name.
fn node_names(lineage: &Value) -> Vec<String> {
    let mut names: Vec<String> = lineage["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| match n["variant"].as_str().unwrap() {
            "" => n["name"].as_str().unwrap().to_string(),
            v => format!("{}:{v}", n["name"].as_str().unwrap()),
        })
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn lineage_in_both_directions_with_depth() {
    let api = TestApi::new().await;
    api.apply_catalog().await;
    let lineage = |uri: &'static str| {
        let api = &api;
        async move {
            let response = api.get(uri).await;
            assert_eq!(response.status, 200, "{uri}: {}", response.text());
            response.json()
        }
    };

    let down1 = lineage("/api/v1/lineage/source/transactions?direction=downstream&depth=1").await;
    assert_eq!(
        down1["root"],
        json!({"kind": "source", "name": "transactions", "variant": "v1"})
    );
    assert_eq!(
        node_names(&down1),
        ["is_fraud:v1", "transactions:v1", "tx_agg:v1"]
    );
    assert_eq!(down1["edges"].as_array().unwrap().len(), 2);
    assert!(down1["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| !n["status"].is_null()));

    let down2 =
        lineage("/api/v1/lineage/source/transactions/v1?direction=downstream&depth=2").await;
    assert_eq!(
        node_names(&down2),
        [
            "avg_amount:v1",
            "fraud_training:v1",
            "is_fraud:v1",
            "transactions:v1",
            "tx_agg:v1"
        ]
    );

    let up1 =
        lineage("/api/v1/lineage/training_set/fraud_training?direction=upstream&depth=1").await;
    assert_eq!(
        node_names(&up1),
        ["avg_amount:v1", "fraud_training:v1", "is_fraud:v1"]
    );
    for edge in up1["edges"].as_array().unwrap() {
        assert_eq!(edge["downstream"]["name"], "fraud_training", "{edge}");
    }

    let both = lineage("/api/v1/lineage/source/tx_agg").await;
    assert_eq!(
        node_names(&both),
        [
            "avg_amount:v1",
            "fraud_model",
            "fraud_training:v1",
            "local",
            "transactions:v1",
            "tx_agg:v1"
        ],
        "default: both directions, depth 3"
    );

    let provider = lineage("/api/v1/lineage/provider/local?direction=downstream&depth=1").await;
    assert_eq!(
        node_names(&provider),
        ["local", "transactions:v1", "tx_agg:v1"]
    );
    let leaf = lineage("/api/v1/lineage/model/fraud_model?direction=downstream").await;
    assert_eq!(node_names(&leaf), ["fraud_model"]);
    assert_eq!(leaf["edges"], json!([]));
}

#[tokio::test]
async fn jobs_list_get_runs_and_cancel() {
    let api = TestApi::new().await;
    api.apply_catalog().await;
    let resource = ResourceId::new(Kind::Feature, "avg_amount", "v1");
    let job = api
        .store
        .enqueue_job(NewJob {
            kind: JobKind::Materialization,
            resource: resource.clone(),
            max_attempts: 3,
        })
        .await
        .unwrap();

    let listed = api
        .get("/api/v1/jobs?kind=feature&name=avg_amount&variant=v1&state=queued")
        .await
        .json();
    let ids: Vec<i64> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [job.id]);
    assert_eq!(listed["total"], 1);
    let all = api.get("/api/v1/jobs").await.json();
    assert!(all["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|j| j["id"] == job.id));

    let fetched = api.get(&format!("/api/v1/jobs/{}", job.id)).await.json();
    assert_eq!(fetched["kind"], "materialization");
    assert_eq!(fetched["resource"]["name"], "avg_amount");
    let runs = api.get(&format!("/api/v1/jobs/{}/runs", job.id)).await;
    assert_eq!((runs.status.as_u16(), runs.json()), (200, json!([])));

    let cancel = format!("/api/v1/jobs/{}/cancel", job.id);
    let cancelled = api
        .request(Method::POST, &cancel, None, Body::empty())
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    assert_eq!(cancelled.json()["state"], "cancelled");
    let again = api
        .request(Method::POST, &cancel, None, Body::empty())
        .await;
    again.problem(409, "invalid_job_state");

    // A cancelled (or failed) job can be retried: a new queued job for the resource.
    let retry = format!("/api/v1/jobs/{}/retry", job.id);
    let retried = api.request(Method::POST, &retry, None, Body::empty()).await;
    assert_eq!(retried.status, 200, "{}", retried.text());
    let retried = retried.json();
    assert_eq!(retried["state"], "queued");
    assert_ne!(retried["id"], job.id);
    let twice = api.request(Method::POST, &retry, None, Body::empty()).await;
    twice.problem(409, "invalid_job_state");
    let unknown = api
        .request(
            Method::POST,
            "/api/v1/jobs/999999/retry",
            None,
            Body::empty(),
        )
        .await;
    unknown.problem(404, "not_found");
}

#[tokio::test]
async fn health_docs_and_openapi_are_served() {
    let api = TestApi::new().await;
    assert_eq!(api.get("/healthz").await.json(), json!({"status": "ok"}));
    assert_eq!(
        api.get("/readyz").await.json(),
        json!({"status": "ready", "store": "sqlite"})
    );

    let document = api.get("/api/v1/openapi.json").await;
    assert_eq!(document.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(
        document.json(),
        serde_json::to_value(quiver_api::openapi()).unwrap()
    );

    let docs = api.get("/api/v1/docs/").await;
    assert_eq!(docs.status, 200);
    assert!(
        docs.text().to_lowercase().contains("swagger"),
        "{}",
        docs.text()
    );
    let config = api.get("/api/v1/docs/swagger-initializer.js").await;
    assert!(
        config.text().contains("/api/v1/openapi.json"),
        "{}",
        config.text()
    );
}

#[tokio::test]
async fn serves_over_tcp_until_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let store = quiver_metadata::SqliteStore::open(dir.path())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(quiver_api::serve(
        listener,
        AppState::new(std::sync::Arc::new(store)),
        async {
            let _ = stopped.await;
        },
    ));

    let client = reqwest::Client::new();
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let applied = client
        .post(format!("{base}/api/v1/apply"))
        .header("content-type", "application/yaml")
        .body(CATALOG_YAML)
        .send()
        .await
        .unwrap();
    assert_eq!(applied.status(), 200);

    let features: Value = client
        .get(format!("{base}/api/v1/features?q=amount"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(names(&features), ["avg_amount:v1"]);

    let missing = client
        .get(format!("{base}/api/v1/features/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = missing.json().await.unwrap();
    assert_eq!(problem["code"], "not_found");

    stop.send(()).unwrap();
    server
        .await
        .unwrap()
        .expect("serve ends cleanly after shutdown");
}
