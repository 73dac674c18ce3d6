//! Catalogue search, the home summary and the web catalog's routes: ranking, facets,
//! filters, paging, bad inputs, the index following applies, the 10 000-feature time
//! budget, and the UI pages beside the API's JSON 404s.

mod common;

use std::time::Instant;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::TestApi;
use serde_json::{json, Value};

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

fn facet(page: &Value, name: &str) -> Vec<(String, u64)> {
    page["facets"][name]
        .as_array()
        .expect("facet")
        .iter()
        .map(|v| {
            (
                v["value"].as_str().unwrap().to_string(),
                v["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

async fn search(api: &TestApi, query: &str) -> Value {
    let response = api.get(&format!("/api/v1/search?{query}")).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()
}

const RANKING_YAML: &str = "\
kind: provider
name: local
owner: platform
config: {type: files, root: ./data}
---
kind: entity
name: user
owner: risk
---
kind: source
name: spend
variant: v1
owner: risk
description: Card spend per day
provider: local
table: spend
---
kind: feature
name: spend
variant: v1
owner: risk
description: Total spend
tags: [money]
entity: user
source: spend
value_column: amount
value_type: float64
---
kind: feature
name: spend_7d
variant: v1
owner: growth
description: Spend over a week
tags: [money, weekly]
entity: user
source: spend
value_column: amount
value_type: float64
---
kind: feature
name: avg_spend
variant: v1
owner: risk
description: Average of amounts
tags: [spend]
entity: user
source: spend
value_column: amount
value_type: float64
---
kind: feature
name: refunds
variant: v1
owner: spend-team
description: Refunds issued
entity: user
source: spend
value_column: refunds
value_type: int64
online_provider: local
---
kind: feature
name: basket
variant: v1
owner: risk
description: Basket size, big spenders first
entity: user
source: spend
value_column: basket
value_type: int64
";

#[tokio::test]
async fn ranks_name_over_tag_and_owner_over_description() {
    let api = TestApi::new().await;
    let applied = api.post_yaml("/api/v1/apply", RANKING_YAML).await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.text());

    let page = search(&api, "q=spend&kind=feature").await;
    // Exact name, then name prefix, then a word of a name, then the tag, then the owner
    // prefix, then the description's word prefix (`spenders`).
    assert_eq!(
        names(&page),
        ["spend", "spend_7d", "avg_spend", "refunds", "basket"],
        "{page}"
    );
    let matched: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["matched"].as_str().unwrap())
        .collect();
    assert_eq!(matched, ["name", "name", "name", "owner", "description"]);
    let scores: Vec<u64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["score"].as_u64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] > w[1]), "{scores:?}");

    // Every word must match; case does not matter.
    assert_eq!(names(&search(&api, "q=SPEND%20week").await), ["spend_7d"]);
    // A hit carries what a result row shows.
    let hit = &search(&api, "q=refunds").await["items"][0];
    assert_eq!(hit["kind"], "feature");
    assert_eq!(hit["type"], "int64");
    assert_eq!(hit["entity"], "user");
    assert_eq!(hit["providers"], json!(["local"]));
    assert_eq!(hit["status"], "pending");
}

#[tokio::test]
async fn facets_count_matches_and_filters_narrow() {
    let api = TestApi::new().await;
    api.post_yaml("/api/v1/apply", RANKING_YAML).await;

    let all = search(&api, "q=spend").await;
    assert_eq!(all["total"], 6, "{all}");
    assert_eq!(
        facet(&all, "kind"),
        [("feature".to_string(), 5), ("source".to_string(), 1)]
    );
    assert_eq!(facet(&all, "owner")[0], ("risk".to_string(), 4));
    assert!(facet(&all, "tag").contains(&("money".to_string(), 2)));
    assert!(facet(&all, "provider").contains(&("local".to_string(), 6)));

    let features = search(&api, "q=spend&kind=feature").await;
    assert_eq!(features["total"], 5);
    // A facet ignores its own filter, so the alternatives stay visible.
    assert_eq!(facet(&features, "kind"), facet(&all, "kind"));
    let narrowed = search(&api, "q=spend&kind=feature&owner=risk&tag=money").await;
    assert_eq!(names(&narrowed), ["spend"]);
    assert_eq!(
        names(&search(&api, "status=ready&kind=features").await).len(),
        4
    );
    // A selected value nothing matches is still listed, with 0, so it can be cleared.
    let none = search(&api, "q=spend&owner=nobody").await;
    assert_eq!(none["total"], 0);
    assert!(facet(&none, "owner").contains(&("nobody".to_string(), 0)));
}

#[tokio::test]
async fn sorts_and_pages() {
    let api = TestApi::new().await;
    api.post_yaml("/api/v1/apply", RANKING_YAML).await;
    let by_name = search(&api, "kind=feature&sort=name").await;
    assert_eq!(
        names(&by_name),
        ["avg_spend", "basket", "refunds", "spend", "spend_7d"]
    );
    let desc = search(&api, "kind=feature&sort=name&order=desc").await;
    assert_eq!(
        names(&desc),
        ["spend_7d", "spend", "refunds", "basket", "avg_spend"]
    );
    let first = search(&api, "kind=feature&sort=name&limit=2").await;
    assert_eq!(names(&first), ["avg_spend", "basket"]);
    assert_eq!(first["next_offset"], 2);
    assert_eq!(first["total"], 5);
    let last = search(&api, "kind=feature&sort=name&limit=2&offset=4").await;
    assert_eq!(names(&last), ["spend_7d"]);
    assert!(last["next_offset"].is_null());
    let beyond = search(&api, "kind=feature&offset=99").await;
    assert!(names(&beyond).is_empty());
    let owners = search(&api, "kind=feature&sort=owner").await;
    assert_eq!(owners["items"][0]["owner"], "growth");
    assert!(search(&api, "kind=feature&sort=updated").await["items"][0]["updated_at"].is_string());
}

#[tokio::test]
async fn bad_inputs_are_problems_and_markup_is_data() {
    let api = TestApi::new().await;
    api.post_yaml("/api/v1/apply", RANKING_YAML).await;
    for (query, needle) in [
        ("limit=0", "limit 0"),
        ("limit=501", "limit 501"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("kind=widget", "unknown kind `widget`"),
        ("status=broken", "status"),
        ("sort=random", "sort"),
        ("colour=red", "colour"),
    ] {
        let detail = api
            .get(&format!("/api/v1/search?{query}"))
            .await
            .problem(400, "invalid_query");
        assert!(detail.contains(needle), "{query}: {detail}");
    }
    let long = "a".repeat(201);
    api.get(&format!("/api/v1/search?q={long}"))
        .await
        .problem(400, "invalid_query");

    // HTML and script in a query are just text: an empty result, not an error.
    let hostile = "%3Cscript%3Ealert(1)%3C%2Fscript%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E";
    let page = search(&api, &format!("q={hostile}")).await;
    assert_eq!(page["total"], 0);
    // An empty filter is no filter, as a cleared box.
    assert_eq!(search(&api, "q=&owner=&kind=").await["total"], 8);
}

#[tokio::test]
async fn the_index_follows_applies_and_status_changes() {
    let api = TestApi::new().await;
    assert_eq!(search(&api, "").await["total"], 0);
    api.post_yaml("/api/v1/apply", RANKING_YAML).await;
    assert_eq!(search(&api, "").await["total"], 8);
    // A new variant replaces the default in results.
    let v2 = RANKING_YAML
        .split("---\n")
        .find(|d| d.contains("name: basket"))
        .unwrap()
        .replace("variant: v1", "variant: v2")
        .replace("Basket size", "Basket size in items");
    let applied = api.post_yaml("/api/v1/apply", &v2).await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.text());
    let hits = search(&api, "q=basket").await;
    assert_eq!(hits["total"], 1);
    assert_eq!(hits["items"][0]["variant"], "v2");
    // A status change is seen at once.
    let id = quiver_core::ResourceId::new(quiver_core::Kind::Feature, "refunds", "v1");
    api.store
        .set_status(
            &id,
            quiver_core::Status::Failed,
            Some("no column `refunds`"),
        )
        .await
        .unwrap();
    let failed = search(&api, "status=failed").await;
    assert_eq!(names(&failed), ["refunds"]);
    assert_eq!(failed["items"][0]["error"], "no column `refunds`");
}

#[tokio::test]
async fn summary_counts_kinds_recent_changes_and_jobs() {
    let api = TestApi::new().await;
    api.post_yaml("/api/v1/apply", RANKING_YAML).await;
    let response = api.get("/api/v1/summary").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let summary = response.json();
    let counts = summary["counts"].as_array().unwrap();
    assert_eq!(counts.len(), 8);
    let features = counts.iter().find(|c| c["kind"] == "feature").unwrap();
    assert_eq!(features["total"], 5);
    assert_eq!(
        features["pending"], 1,
        "the online feature waits for its job"
    );
    assert_eq!(features["ready"], 4);
    assert!(summary["recent"].as_array().unwrap().len() <= 10);
    assert_eq!(summary["recent_jobs"].as_array().unwrap().len(), 1);
    assert_eq!(summary["failed_jobs_total"], 0);
    assert_eq!(summary["providers"][0]["name"], "local");
    assert_eq!(summary["providers"][0]["type"], "files");
}

/// 10 000 features applied through the API; a search answers within 100 ms on the
/// server (debug build), index rebuilt once per catalogue change.
#[tokio::test]
async fn search_of_ten_thousand_features_is_fast() {
    let api = TestApi::new().await;
    api.post_yaml("/api/v1/apply", RANKING_YAML).await;
    for batch in 0..10 {
        let documents: Vec<Value> = (0..1000)
            .map(|i| {
                let n = batch * 1000 + i;
                json!({
                    "kind": "feature", "name": format!("gen_{n:05}"), "variant": "v1",
                    "owner": format!("team-{}", n % 12),
                    "description": format!("metric {} of things over {} days", n % 97, n % 30),
                    "tags": [format!("tag-{}", n % 20)],
                    "entity": "user", "source": "spend:v1",
                    "value_column": format!("c{n}"), "value_type": "float64",
                })
            })
            .collect();
        let response = api
            .post_json("/api/v1/apply", &json!({ "documents": documents }))
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    }
    // The first search builds the index.
    let started = Instant::now();
    search(&api, "q=warm").await;
    println!("index build: {:?}", started.elapsed());
    let mut worst: f64 = 0.0;
    for query in [
        "q=gen_04242",
        "q=metric",
        "q=team-3%20days",
        "q=e",
        "",
        "q=tag-7&kind=feature&sort=updated",
    ] {
        let started = Instant::now();
        let page = search(&api, query).await;
        let took = page["took_ms"].as_f64().unwrap();
        println!(
            "search {query:?}: {} hits, {took} ms on the server, {:?} in all",
            page["total"],
            started.elapsed()
        );
        worst = worst.max(took);
    }
    assert!(worst < 100.0, "a search took {worst} ms");
    assert_eq!(names(&search(&api, "q=gen_04242").await)[0], "gen_04242");
}

fn browser_get(uri: &str) -> Request<Body> {
    Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn the_catalog_is_served_beside_the_api() {
    let api = TestApi::new().await;
    for path in [
        "/",
        "/features/avg",
        "/search?q=x",
        "/jobs",
        "/no/such/page",
    ] {
        let response = api.send(browser_get(path)).await;
        assert_eq!(response.status, StatusCode::OK, "{path}");
        assert_eq!(
            response.headers[header::CONTENT_TYPE],
            "text/html; charset=utf-8",
            "{path}"
        );
        assert!(response.text().contains("/ui/app.js"), "{path}");
        assert!(response
            .headers
            .contains_key(header::CONTENT_SECURITY_POLICY));
    }
    let script = api.get("/ui/app.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert_eq!(
        script.headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    // API paths keep their JSON problems, for browsers too.
    api.send(browser_get("/api/v1/nope"))
        .await
        .problem(404, "not_found");
    api.get("/features/avg").await.problem(404, "not_found");
    api.get("/api/v1/nope").await.problem(404, "not_found");
    let post = api
        .request(Method::POST, "/features/x", None, Body::empty())
        .await;
    post.problem(404, "not_found");
}
