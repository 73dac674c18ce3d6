//! The committed OpenAPI document (`openapi/openapi.json`) matches the code.
//!
//! Regenerate it with `QUIVER_UPDATE_OPENAPI=1 cargo test -p quiver-api --test openapi`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi/openapi.json")
}

fn generated() -> String {
    let mut text = quiver_api::openapi()
        .to_pretty_json()
        .expect("the document serializes");
    text.push('\n');
    text
}

#[test]
fn openapi_document_is_up_to_date() {
    let path = committed_path();
    let generated = generated();
    if std::env::var("QUIVER_UPDATE_OPENAPI").as_deref() == Ok("1") {
        std::fs::write(&path, &generated).expect("write openapi/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated {
        return;
    }
    let (line, ours, theirs) = committed
        .lines()
        .zip(generated.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| (i + 1, a.to_string(), b.to_string()))
        .unwrap_or_else(|| {
            let n = committed.lines().count().min(generated.lines().count());
            (n + 1, "(end of file)".into(), "(end of file)".into())
        });
    panic!(
        "openapi/openapi.json is out of date with the code (first difference at line {line}:\n  committed: {ours}\n  generated: {theirs}\n); regenerate it with\n  QUIVER_UPDATE_OPENAPI=1 cargo test -p quiver-api --test openapi\nand commit the result"
    );
}

#[test]
fn document_is_openapi_3_1_with_every_route() {
    let doc: Value = serde_json::to_value(quiver_api::openapi()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected = BTreeSet::from([
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/openapi.json",
        "/api/v1/{plural}",
        "/api/v1/{plural}/{name}",
        "/api/v1/{plural}/{name}/{variant}",
        "/api/v1/{plural}/{name}/variants",
        "/api/v1/plan",
        "/api/v1/apply",
        "/api/v1/lineage/{kind}/{name}",
        "/api/v1/lineage/{kind}/{name}/{variant}",
        "/api/v1/jobs",
        "/api/v1/jobs/{id}",
        "/api/v1/jobs/{id}/runs",
        "/api/v1/jobs/{id}/cancel",
        "/api/v1/jobs/{id}/retry",
        "/api/v1/schedules",
        "/api/v1/online-features",
        "/api/v1/features/{name}/{variant}/parity",
        "/api/v1/training-sets/{name}/{variant}/data",
        "/api/v1/providers/{name}/health",
    ]);
    assert_eq!(paths, expected);

    // Every operation documents its problem responses.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            for status in ["401", "403", "500", "503"] {
                let content = &responses[status]["content"]["application/problem+json"];
                assert!(
                    !content.is_null(),
                    "{method} {path} lacks a {status} problem response"
                );
            }
        }
    }
}

/// Collect every `$ref` in a JSON value.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_schema_reference_resolves() {
    let doc: Value = serde_json::to_value(quiver_api::openapi()).unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(schemas.contains_key(name), "dangling reference {r}");
    }
}
