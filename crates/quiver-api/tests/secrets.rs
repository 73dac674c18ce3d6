//! Provider secrets never leave the server: not in any response, not in the logs.
//!
//! Its own test binary because it installs a global tracing subscriber that records
//! everything (all targets, all levels) into a buffer.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::Method;
use common::TestApi;
use quiver_core::{Definition, Kind, ProviderConfig, Secret};
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

const SECRET: &str = "s3cr3t-value";
const OTHER_SECRET: &str = "an0ther-s3cr3t";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

fn provider_yaml(password: &str) -> String {
    format!(
        "kind: provider\nname: warehouse\nowner: platform\nconfig:\n  type: postgres\n  host: db.internal\n  database: features\n  user: quiver\n  password: \"{password}\"\n"
    )
}

#[tokio::test]
async fn secrets_are_never_returned_or_logged() {
    let logs = Captured::default();
    tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .init();

    let api = TestApi::new().await;
    let mut responses = Vec::new();
    let applied = api.post_yaml("/api/v1/apply", &provider_yaml(SECRET)).await;
    assert_eq!(applied.status, 200, "{}", applied.text());
    responses.push(applied.text());

    // The store keeps the real value: redaction happens on the way out, not by losing it.
    let stored = api
        .store
        .get(Kind::Provider, "warehouse", None)
        .await
        .unwrap()
        .unwrap();
    let Definition::Provider(provider) = &stored.definition else {
        panic!("{stored:?}")
    };
    let ProviderConfig::Postgres { password, .. } = &provider.config else {
        panic!("{provider:?}")
    };
    assert_eq!(password.as_ref(), Some(&Secret::Inline(SECRET.into())));

    let got = api.get("/api/v1/providers/warehouse").await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.json()["definition"]["config"]["password"],
        "**redacted**"
    );
    responses.push(got.text());
    for uri in [
        "/api/v1/providers",
        "/api/v1/providers?all_variants=true",
        "/api/v1/providers?q=warehouse",
        "/api/v1/providers/warehouse/variants",
        "/api/v1/lineage/provider/warehouse",
        "/api/v1/openapi.json",
    ] {
        let response = api.get(uri).await;
        assert_eq!(response.status, 200, "{uri}: {}", response.text());
        responses.push(response.text());
    }

    // Plan unchanged, plan and apply a changed secret (an update of an unversioned kind):
    // the differing field is named, its values are not.
    let unchanged = api.post_yaml("/api/v1/plan", &provider_yaml(SECRET)).await;
    assert_eq!(unchanged.json()["items"][0]["action"], "unchanged");
    responses.push(unchanged.text());
    for route in ["/api/v1/plan", "/api/v1/apply"] {
        let changed = api.post_yaml(route, &provider_yaml(OTHER_SECRET)).await;
        assert_eq!(changed.status, 200, "{}", changed.text());
        assert_eq!(
            changed.json()["items"][0]["differing_fields"],
            json!(["config.password"])
        );
        responses.push(changed.text());
    }
    let got = api.get("/api/v1/providers/warehouse").await;
    responses.push(got.text());

    // The JSON form, and the redaction mask sent back, which must be refused.
    let documents = json!({"documents": [{
        "kind": "provider", "name": "warehouse", "owner": "platform",
        "config": {"type": "postgres", "host": "db.internal", "database": "features",
                   "user": "quiver", "password": "**redacted**"}
    }]});
    let masked = api.post_json("/api/v1/apply", &documents).await;
    let detail = masked.problem(422, "invalid_definition");
    assert!(detail.contains("redaction mask"), "{detail}");

    // A bad request whose error message echoes the secret back to its sender: answered,
    // but the detail is not logged.
    let misplaced = format!(
        "kind: provider\nname: warehouse\nowner: platform\nconfig:\n  type: postgres\n  host: db.internal\n  database: features\n  user: quiver\n  port: \"{SECRET}\"\n"
    );
    let response = api
        .request(
            Method::POST,
            "/api/v1/apply",
            Some("application/yaml"),
            misplaced,
        )
        .await;
    response.problem(422, "invalid_definition");

    for (i, body) in responses.iter().enumerate() {
        assert!(
            !body.contains(SECRET),
            "response {i} leaks the secret: {body}"
        );
        assert!(
            !body.contains(OTHER_SECRET),
            "response {i} leaks the secret: {body}"
        );
    }
    let logs = logs.text();
    assert!(
        logs.contains("request finished"),
        "the capture works: {logs}"
    );
    assert!(
        logs.contains("/api/v1/apply"),
        "requests are logged by path: {logs}"
    );
    assert!(!logs.contains(SECRET), "the logs leak the secret:\n{logs}");
    assert!(
        !logs.contains(OTHER_SECRET),
        "the logs leak the secret:\n{logs}"
    );
}
