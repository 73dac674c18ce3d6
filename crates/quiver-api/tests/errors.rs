//! Bad inputs: each answered with the right status, a stable code and a message a person
//! can act on, and the store unchanged afterwards.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, Method, Request};
use common::{TestApi, CATALOG_SIZE, CATALOG_YAML};
use quiver_api::{AuthError, Authorizer, Principal, RequestContext};
use serde_json::json;

/// Applies `body` and checks the problem, that nothing was written, and that plan gives
/// the same answer. Returns the detail.
async fn refused(
    api: &TestApi,
    content_type: &str,
    body: Vec<u8>,
    status: u16,
    code: &str,
) -> String {
    let before = api.resource_count().await;
    let mut detail = String::new();
    for route in ["/api/v1/apply", "/api/v1/plan"] {
        let response = api
            .request(Method::POST, route, Some(content_type), body.clone())
            .await;
        detail = response.problem(status, code);
    }
    assert_eq!(api.resource_count().await, before, "the store changed");
    detail
}

async fn refused_yaml(api: &TestApi, yaml: &str, code: &str) -> String {
    refused(api, "application/yaml", yaml.as_bytes().to_vec(), 422, code).await
}

/// `request:LINE:COL` somewhere in the detail, as numbers.
fn yaml_location(detail: &str) -> (usize, usize) {
    let rest = detail
        .split("request:")
        .nth(1)
        .unwrap_or_else(|| panic!("no `request:` location in {detail:?}"));
    let mut numbers = rest.split(|c: char| !c.is_ascii_digit());
    let line = numbers.next().and_then(|n| n.parse().ok());
    let column = numbers.next().and_then(|n| n.parse().ok());
    match (line, column) {
        (Some(line), Some(column)) => (line, column),
        _ => panic!("no LINE:COL after `request:` in {detail:?}"),
    }
}

#[tokio::test]
async fn malformed_yaml_names_line_and_column() {
    let api = TestApi::new().await;
    api.apply_catalog().await;
    let yaml =
        "kind: entity\nname: merchant\nowner: risk\n---\nkind: entity\nname: [unclosed\nowner: x\n";
    let detail = refused_yaml(&api, yaml, "invalid_definition").await;
    let (line, _column) = yaml_location(&detail);
    assert!(
        line >= 6,
        "the line counts from the start of the stream: {detail}"
    );
    assert!(detail.contains("document 2"), "{detail}");
}

#[tokio::test]
async fn unknown_kind_is_refused() {
    let api = TestApi::new().await;
    let detail = refused_yaml(
        &api,
        "kind: widget\nname: w\nowner: o\n",
        "invalid_definition",
    )
    .await;
    assert!(
        detail.contains("unknown kind") && detail.contains("widget"),
        "{detail}"
    );

    let body = json!({"documents": [{"kind": "widget", "name": "w", "owner": "o"}]});
    let detail = refused(
        &api,
        "application/json",
        body.to_string().into_bytes(),
        422,
        "invalid_definition",
    )
    .await;
    // quiver-core words JSON errors by field path (`kind: unknown variant ...`).
    assert!(
        detail.contains("documents[0]") && detail.contains("`widget`"),
        "{detail}"
    );
    assert!(
        detail.contains("`training_set`"),
        "lists the kinds: {detail}"
    );
}

#[tokio::test]
async fn unknown_field_is_refused() {
    let api = TestApi::new().await;
    let detail = refused_yaml(
        &api,
        "kind: entity\nname: user\nowner: risk\nownr: typo\n",
        "invalid_definition",
    )
    .await;
    assert!(detail.contains("unknown field `ownr`"), "{detail}");
}

#[tokio::test]
async fn bad_materialization_schedules_are_refused_and_nothing_is_stored() {
    let api = TestApi::new().await;
    let feature = |materialization: &str| {
        format!(
            "kind: provider\nname: online\nowner: o\nconfig: {{type: embedded}}\n---\n\
             kind: provider\nname: local\nowner: o\nconfig: {{type: files, root: ./data}}\n---\n\
             kind: entity\nname: user\nowner: o\n---\n\
             kind: source\nname: tx\nvariant: v1\nowner: o\nprovider: local\nfile: {{path: tx.csv}}\n---\n\
             kind: feature\nname: f\nvariant: v1\nowner: o\nentity: user\nsource: tx\n\
             value_column: amount\nvalue_type: float64\ntimestamp_column: ts\n\
             online_provider: online\nmaterialization: {materialization}\n"
        )
    };
    for (bad, expected) in [
        ("{schedule: 'every 5 minutes'}", "five fields"),
        ("{schedule: '61 * * * *'}", "five fields"),
        ("{schedule: '0 0 * * * *'}", "five fields"),
        ("{schedule: ''}", "must not be empty"),
        ("{schedule: '* * * * *', lookback: 0s}", "greater than zero"),
        ("{schedul: '* * * * *'}", "unknown field `schedul`"),
    ] {
        let detail = refused_yaml(&api, &feature(bad), "invalid_definition").await;
        assert!(detail.contains(expected), "{bad}: {detail}");
    }
}

#[tokio::test]
async fn unknown_provider_type_is_refused() {
    let api = TestApi::new().await;
    let yaml = "kind: provider\nname: db\nowner: platform\nconfig: {type: mysql, host: h}\n";
    let detail = refused_yaml(&api, yaml, "invalid_definition").await;
    assert!(
        detail.contains("unknown provider type") && detail.contains("mysql"),
        "{detail}"
    );
}

#[tokio::test]
async fn invalid_names_are_refused_with_the_rule() {
    let api = TestApi::new().await;
    for name in ["Bad Name", "a;drop"] {
        let body = json!({"documents": [{"kind": "entity", "name": name, "owner": "risk"}]});
        let detail = refused(
            &api,
            "application/json",
            body.to_string().into_bytes(),
            422,
            "invalid_definition",
        )
        .await;
        assert!(
            detail.contains("name") && detail.contains("lowercase"),
            "{name}: {detail}"
        );
    }
}

#[tokio::test]
async fn dangling_reference_is_refused() {
    let api = TestApi::new().await;
    api.apply_catalog().await;
    let yaml = "\
kind: feature
name: orphan
variant: v1
owner: risk
entity: user
source: nowhere
value_column: x
value_type: int64
";
    let detail = refused_yaml(&api, yaml, "dangling_reference").await;
    assert!(
        detail.contains("nowhere") && detail.contains("source"),
        "{detail}"
    );
}

#[tokio::test]
async fn cycle_is_refused_naming_the_path() {
    let api = TestApi::new().await;
    api.apply_catalog().await;
    let yaml = "\
kind: source
name: ping
variant: v1
owner: risk
provider: local
sql: SELECT * FROM {{ pong:v1 }}
---
kind: source
name: pong
variant: v1
owner: risk
provider: local
sql: SELECT * FROM {{ ping:v1 }}
";
    let detail = refused_yaml(&api, yaml, "cycle").await;
    assert!(
        detail.contains("ping:v1") && detail.contains("pong:v1"),
        "{detail}"
    );
}

#[tokio::test]
async fn changed_definition_under_existing_variant_conflicts() {
    let api = TestApi::new().await;
    api.apply_catalog().await;
    let before = api.resource_count().await;
    let changed = CATALOG_YAML.replace("value_column: avg_amount", "value_column: mean_amount");

    let detail = api
        .post_yaml("/api/v1/apply", &changed)
        .await
        .problem(409, "conflict");
    assert!(
        detail.contains("avg_amount:v1") && detail.contains("value_column"),
        "{detail}"
    );
    assert!(
        detail.contains("new variant"),
        "the message says what to do: {detail}"
    );
    assert_eq!(api.resource_count().await, before, "the store changed");

    // Plan shows the conflict as an item instead of refusing.
    let plan = api.post_yaml("/api/v1/plan", &changed).await;
    assert_eq!(plan.status, 200, "{}", plan.text());
    let conflicts: Vec<_> = plan.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["action"] == "conflict")
        .cloned()
        .collect();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["resource"]["name"], "avg_amount");
    assert_eq!(conflicts[0]["differing_fields"], json!(["value_column"]));
    assert_eq!(api.resource_count().await, before, "plan wrote");
}

#[tokio::test]
async fn oversize_body_is_refused() {
    let api = TestApi::new().await;
    // Just over the default limit of 4 MiB, in a syntactically fine document.
    let padding = "#".repeat(4 * 1024 * 1024);
    let yaml = format!("kind: entity\nname: user\nowner: risk\n{padding}\n");
    let detail = refused(
        &api,
        "application/yaml",
        yaml.into_bytes(),
        413,
        "payload_too_large",
    )
    .await;
    assert!(detail.contains("larger"), "{detail}");

    let small = TestApi::with(|mut state| {
        state.limits.max_body_bytes = 64;
        state
    })
    .await;
    let yaml = format!(
        "kind: entity\nname: user\nowner: risk\ndescription: {}\n",
        "x".repeat(100)
    );
    refused(
        &small,
        "application/yaml",
        yaml.into_bytes(),
        413,
        "payload_too_large",
    )
    .await;
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_refused() {
    let api = TestApi::new().await;
    let yaml = b"kind: entity\nname: user\nowner: risk\n".to_vec();
    let detail = refused(
        &api,
        "text/plain",
        yaml.clone(),
        415,
        "unsupported_media_type",
    )
    .await;
    assert!(
        detail.contains("text/plain") && detail.contains("application/yaml"),
        "{detail}"
    );

    let before = api.resource_count().await;
    let response = api.request(Method::POST, "/api/v1/apply", None, yaml).await;
    let detail = response.problem(415, "unsupported_media_type");
    assert!(detail.contains("missing Content-Type"), "{detail}");
    assert_eq!(api.resource_count().await, before);
}

#[tokio::test]
async fn invalid_utf8_is_refused() {
    let api = TestApi::new().await;
    let mut body = b"kind: entity\nname: user\nowner: ".to_vec();
    body.extend([0xff, 0xfe, b'\n']);
    for content_type in ["application/yaml", "application/json"] {
        let detail = refused(&api, content_type, body.clone(), 400, "malformed_body").await;
        assert!(
            detail.contains("UTF-8") && detail.contains("offset 31"),
            "{detail}"
        );
    }
}

#[tokio::test]
async fn deeply_nested_json_is_a_client_error_not_a_crash() {
    let api = TestApi::new().await;
    let bare = "[".repeat(10_000);
    let detail = refused(
        &api,
        "application/json",
        bare.into_bytes(),
        400,
        "malformed_body",
    )
    .await;
    assert!(detail.contains("recursion limit"), "{detail}");

    let nested = format!("{{\"documents\": [{}", "[".repeat(10_000));
    let detail = refused(
        &api,
        "application/json",
        nested.into_bytes(),
        400,
        "malformed_body",
    )
    .await;
    assert!(detail.contains("not valid JSON"), "{detail}");

    // The same depth in YAML is refused by the YAML reader with a location.
    let before = api.resource_count().await;
    let yaml = format!(
        "kind: entity\nname: user\nowner: risk\ntags: {}\n",
        "[".repeat(10_000)
    );
    let response = api.post_yaml("/api/v1/apply", &yaml).await;
    assert!(response.status.is_client_error(), "{}", response.text());
    assert_eq!(api.resource_count().await, before);
}

#[tokio::test]
async fn malformed_envelopes_are_refused() {
    let api = TestApi::new().await;
    let detail = refused(
        &api,
        "application/json",
        br#"{"docs": []}"#.to_vec(),
        400,
        "malformed_body",
    )
    .await;
    assert!(
        detail.contains("{\"documents\": [definition, ...]}") && detail.contains("docs"),
        "{detail}"
    );
    refused(
        &api,
        "application/json",
        br#"{"documents": [1, 2"#.to_vec(),
        400,
        "malformed_body",
    )
    .await;
    let detail = refused(
        &api,
        "application/json",
        br#"{"documents": []}"#.to_vec(),
        422,
        "invalid_definition",
    )
    .await;
    assert!(detail.contains("no definitions"), "{detail}");
    refused(
        &api,
        "application/yaml",
        b"# only a comment\n".to_vec(),
        422,
        "invalid_definition",
    )
    .await;
}

#[tokio::test]
async fn unknown_routes_kinds_and_methods_are_problems() {
    let api = TestApi::new().await;
    let detail = api.get("/nope").await.problem(404, "not_found");
    assert!(
        detail.contains("GET /nope") && detail.contains("/api/v1/docs"),
        "{detail}"
    );

    let detail = api.get("/api/v1/widgets").await.problem(404, "not_found");
    assert!(
        detail.contains("widgets") && detail.contains("training-sets"),
        "{detail}"
    );
    api.get("/api/v1/widgets/x").await.problem(404, "not_found");
    let detail = api
        .get("/api/v1/lineage/widget/x")
        .await
        .problem(404, "not_found");
    assert!(detail.contains("unknown kind `widget`"), "{detail}");
    let detail = api
        .get("/api/v1/lineage/features/x")
        .await
        .problem(404, "not_found");
    assert!(detail.contains("singular"), "{detail}");

    let response = api
        .request(Method::DELETE, "/api/v1/features", None, Body::empty())
        .await;
    let detail = response.problem(405, "method_not_allowed");
    assert!(detail.contains("DELETE"), "{detail}");
    let allow = response
        .headers
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok());
    assert_eq!(allow, Some("GET,HEAD"));
    api.get("/api/v1/apply")
        .await
        .problem(405, "method_not_allowed");
}

#[tokio::test]
async fn missing_resources_are_not_found() {
    let api = TestApi::new().await;
    api.apply_catalog().await;
    let detail = api
        .get("/api/v1/features/nope")
        .await
        .problem(404, "not_found");
    assert!(
        detail.contains("feature `nope`") && detail.contains("GET /api/v1/features"),
        "{detail}"
    );
    api.get("/api/v1/features/avg_amount/v9")
        .await
        .problem(404, "not_found");
    api.get("/api/v1/features/nope/variants")
        .await
        .problem(404, "not_found");
    let detail = api
        .get("/api/v1/providers/local/v1")
        .await
        .problem(404, "not_found");
    assert!(detail.contains("no variants"), "{detail}");
    api.get("/api/v1/lineage/feature/nope")
        .await
        .problem(404, "not_found");
    api.get("/api/v1/jobs/999999")
        .await
        .problem(404, "not_found");
    api.get("/api/v1/jobs/999999/runs")
        .await
        .problem(404, "not_found");
    api.request(
        Method::POST,
        "/api/v1/jobs/999999/cancel",
        None,
        Body::empty(),
    )
    .await
    .problem(404, "not_found");
}

#[tokio::test]
async fn bad_query_and_path_parameters_are_refused() {
    let api = TestApi::new().await;
    let detail = api
        .get("/api/v1/features?limit=1000")
        .await
        .problem(400, "invalid_query");
    assert!(detail.contains("1 to 500"), "{detail}");
    api.get("/api/v1/features?limit=0")
        .await
        .problem(400, "invalid_query");
    api.get("/api/v1/features?limit=ten")
        .await
        .problem(400, "invalid_query");
    let detail = api
        .get("/api/v1/features?status=done")
        .await
        .problem(400, "invalid_query");
    assert!(
        detail.contains("done") && detail.contains("ready"),
        "{detail}"
    );
    let detail = api
        .get("/api/v1/features?ownr=risk")
        .await
        .problem(400, "invalid_query");
    assert!(detail.contains("unknown field `ownr`"), "{detail}");
    let detail = api
        .get("/api/v1/lineage/feature/x?depth=21")
        .await
        .problem(400, "invalid_query");
    assert!(detail.contains("1 to 20"), "{detail}");
    api.get("/api/v1/lineage/feature/x?direction=sideways")
        .await
        .problem(400, "invalid_query");
    let detail = api
        .get("/api/v1/jobs?kind=feature")
        .await
        .problem(400, "invalid_query");
    assert!(detail.contains("`kind` and `name` together"), "{detail}");
    let detail = api
        .get("/api/v1/jobs?kind=feature&name=avg_amount")
        .await
        .problem(400, "invalid_query");
    assert!(detail.contains("variant"), "{detail}");
    api.get("/api/v1/jobs/abc")
        .await
        .problem(400, "invalid_path");
}

/// Refuses everything, the way a token authorizer refuses a request without a token.
struct DenyAll(AuthError);

#[async_trait]
impl Authorizer for DenyAll {
    async fn authorize(&self, _request: &RequestContext<'_>) -> Result<Principal, AuthError> {
        Err(self.0.clone())
    }
}

/// One request per route, including the meta routes and an unknown one.
fn every_route() -> Vec<(Method, &'static str, Option<&'static str>)> {
    vec![
        (Method::GET, "/healthz", None),
        (Method::GET, "/readyz", None),
        (Method::GET, "/api/v1/openapi.json", None),
        (Method::GET, "/api/v1/docs/", None),
        (Method::GET, "/api/v1/features", None),
        (Method::GET, "/api/v1/providers/local", None),
        (Method::GET, "/api/v1/features/avg_amount/v1", None),
        (Method::GET, "/api/v1/features/avg_amount/variants", None),
        (Method::GET, "/api/v1/lineage/feature/avg_amount", None),
        (Method::GET, "/api/v1/lineage/feature/avg_amount/v1", None),
        (Method::GET, "/api/v1/jobs", None),
        (Method::GET, "/api/v1/jobs/1", None),
        (Method::GET, "/api/v1/jobs/1/runs", None),
        (Method::POST, "/api/v1/jobs/1/cancel", None),
        (Method::POST, "/api/v1/jobs/1/retry", None),
        (
            Method::POST,
            "/api/v1/online-features",
            Some("application/json"),
        ),
        (Method::GET, "/api/v1/training-sets/fraud/v1/data", None),
        (Method::GET, "/api/v1/providers/local/health", None),
        (Method::POST, "/api/v1/plan", Some("application/yaml")),
        (Method::POST, "/api/v1/apply", Some("application/yaml")),
        (Method::GET, "/no/such/route", None),
    ]
}

#[tokio::test]
async fn deny_all_authorizer_guards_every_route() {
    for (error, status, code) in [
        (
            AuthError::Unauthenticated("send a bearer token".into()),
            401,
            "unauthorized",
        ),
        (
            AuthError::Forbidden("the viewer role cannot do this".into()),
            403,
            "forbidden",
        ),
    ] {
        let api = TestApi::with(|mut state| {
            state.authorizer = Arc::new(DenyAll(error.clone()));
            state
        })
        .await;
        for (method, uri, content_type) in every_route() {
            let response = api
                .request(method.clone(), uri, content_type, CATALOG_YAML.to_string())
                .await;
            let detail = response.problem(status, code);
            assert_eq!(detail, error.to_string(), "{method} {uri}");
        }
        assert_eq!(
            api.resource_count().await,
            0,
            "apply ran despite the authorizer"
        );
    }
}

/// Lets requests with the right token through as a named principal.
struct Token;

#[async_trait]
impl Authorizer for Token {
    async fn authorize(&self, request: &RequestContext<'_>) -> Result<Principal, AuthError> {
        match request
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            Some("Bearer good") => Ok(Principal { id: "alice".into() }),
            Some(_) => Err(AuthError::Unauthenticated("invalid token".into())),
            None if request.method == Method::GET && request.uri.path() == "/healthz" => {
                Ok(Principal::anonymous())
            }
            None => Err(AuthError::Unauthenticated(
                "send `Authorization: Bearer TOKEN`".into(),
            )),
        }
    }
}

#[tokio::test]
async fn authorizer_sees_method_path_and_headers() {
    let api = TestApi::with(|mut state| {
        state.authorizer = Arc::new(Token);
        state
    })
    .await;
    assert_eq!(api.get("/healthz").await.status, 200);
    api.get("/api/v1/features")
        .await
        .problem(401, "unauthorized");
    let request = |token: &str| {
        Request::post("/api/v1/apply")
            .header(header::CONTENT_TYPE, "application/yaml")
            .header(header::AUTHORIZATION, token)
            .body(Body::from(CATALOG_YAML))
            .unwrap()
    };
    api.send(request("Bearer bad"))
        .await
        .problem(401, "unauthorized");
    assert_eq!(api.resource_count().await, 0);
    let response = api.send(request("Bearer good")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(api.resource_count().await, CATALOG_SIZE as u64);
}
