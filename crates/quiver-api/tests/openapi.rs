//! The committed OpenAPI documents (`openapi/openapi.json`, and the same document as
//! `openapi/openapi.yaml` for tools that look for YAML) match the code.
//!
//! Regenerate them with `QUIVER_UPDATE_OPENAPI=1 cargo test -p quiver-api --test openapi`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

fn committed_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../openapi")
        .join(file)
}

/// `(file name, its expected text)` for each committed form of the document.
fn generated() -> [(&'static str, String); 2] {
    let document = quiver_api::openapi();
    let mut json = document.to_pretty_json().expect("the document serializes");
    json.push('\n');
    // The struct itself, so the fields keep the document's order (`openapi` first).
    let yaml = serde_yaml::to_string(&document).expect("the document serializes as YAML");
    [("openapi.json", json), ("openapi.yaml", yaml)]
}

#[test]
fn openapi_document_is_up_to_date() {
    for (file, generated) in generated() {
        let path = committed_path(file);
        if std::env::var("QUIVER_UPDATE_OPENAPI").as_deref() == Ok("1") {
            std::fs::write(&path, &generated)
                .unwrap_or_else(|e| panic!("write openapi/{file}: {e}"));
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed == generated {
            continue;
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
            "openapi/{file} is out of date with the code (first difference at line {line}:\n  committed: {ours}\n  generated: {theirs}\n); regenerate it with\n  QUIVER_UPDATE_OPENAPI=1 cargo test -p quiver-api --test openapi\nand commit the result"
        );
    }
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
        "/api/v1/search",
        "/api/v1/summary",
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
