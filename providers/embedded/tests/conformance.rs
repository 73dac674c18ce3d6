//! The embedded online store against the shared online conformance suite, plus what is
//! particular to it: persistence across reopen and the factory's configuration.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use quiver_provider_embedded::{EmbeddedOnlineFactory, EmbeddedOnlineStore};
use quiver_provider_sdk::{
    OnlineRead, OnlineRow, OnlineStore, OnlineTable, OnlineTableRef, OnlineValue, Provider,
    ProviderError, ProviderFactory, ProviderHandle,
};
use quiver_provider_testkit::online::SharedOnlineStore;
use serde_json::json;
use tempfile::TempDir;

/// A fresh store in its own temporary directory, removed when the guard drops.
async fn fresh_store() -> (TempDir, SharedOnlineStore) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = EmbeddedOnlineStore::open(dir.path().join("online.db"))
        .await
        .expect("open a fresh embedded online store");
    (dir, Arc::new(store))
}

quiver_provider_testkit::online_store_suite!(fresh_store);

fn table() -> OnlineTableRef {
    OnlineTableRef {
        feature: "avg_amount".into(),
        variant: "v1".into(),
    }
}

fn micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap()
}

#[tokio::test]
async fn values_survive_closing_and_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/online.db");
    {
        let store = EmbeddedOnlineStore::open(&path).await.expect("open");
        store
            .create_table(&OnlineTable {
                table: table(),
                ttl: None,
            })
            .await
            .unwrap();
        let rows = [
            OnlineRow {
                entity: "u1".into(),
                value: OnlineValue::Float(-0.0),
                event_time: micros(1_700_000_000_123_456),
            },
            OnlineRow {
                entity: "u2".into(),
                value: OnlineValue::Int(i64::MIN),
                event_time: micros(-5),
            },
        ];
        store.write(&table(), &rows).await.unwrap();
    }
    assert!(
        path.exists(),
        "open must create parent directories and the file"
    );
    let store = EmbeddedOnlineStore::open(&path).await.expect("reopen");
    let answer = store
        .multi_get(&[table()], &["u1".into(), "u2".into()])
        .await
        .expect("read after reopen");
    match &answer[0][0] {
        OnlineRead::Present {
            value: OnlineValue::Float(f),
            event_time,
        } => {
            assert_eq!(
                f.to_bits(),
                (-0.0_f64).to_bits(),
                "negative zero keeps its sign"
            );
            assert_eq!(*event_time, micros(1_700_000_000_123_456));
        }
        other => panic!("u1 after reopen: {other:?}"),
    }
    assert_eq!(
        answer[1][0],
        OnlineRead::Present {
            value: OnlineValue::Int(i64::MIN),
            event_time: micros(-5),
        },
        "u2 after reopen (event time before the epoch)"
    );
    assert!(store.health().await.healthy, "a reopened store is healthy");
}

#[tokio::test]
async fn one_call_reports_superseded_rows_as_skipped() {
    let (_dir, store) = fresh_store().await;
    store
        .create_table(&OnlineTable {
            table: table(),
            ttl: None,
        })
        .await
        .unwrap();
    let row = |entity: &str, v: i64, t: i64| OnlineRow {
        entity: entity.into(),
        value: OnlineValue::Int(v),
        event_time: micros(t),
    };
    let report = store
        .write(
            &table(),
            &[
                row("a", 1, 1),
                row("a", 2, 2),
                row("b", 1, 5),
                row("b", 2, 5),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        (report.written, report.skipped_older),
        (2, 2),
        "per entity only the newest (first of equals) is written"
    );
    let report = store
        .write(&table(), &[row("a", 3, 1), row("c", 1, 1)])
        .await
        .unwrap();
    assert_eq!((report.written, report.skipped_older), (1, 1));
}

#[tokio::test]
async fn many_entities_in_one_multi_get_need_no_chunking() {
    let (_dir, store) = fresh_store().await;
    store
        .create_table(&OnlineTable {
            table: table(),
            ttl: None,
        })
        .await
        .unwrap();
    let rows: Vec<OnlineRow> = (0..5_000)
        .map(|i| OnlineRow {
            entity: format!("e{i}"),
            value: OnlineValue::Int(i),
            event_time: micros(i),
        })
        .collect();
    let report = store.write(&table(), &rows).await.unwrap();
    assert_eq!(report.written, 5_000, "writes span several insert chunks");
    let asked: Vec<String> = (0..50_000).map(|i| format!("e{i}")).collect();
    let answer = store.multi_get(&[table()], &asked).await.unwrap();
    assert_eq!(answer.len(), 50_000);
    assert_eq!(
        answer[4_999][0],
        OnlineRead::Present {
            value: OnlineValue::Int(4_999),
            event_time: micros(4_999),
        }
    );
    assert_eq!(answer[5_000][0], OnlineRead::Missing);
}

async fn build(
    factory: &EmbeddedOnlineFactory,
    config: serde_json::Value,
) -> Result<Arc<dyn OnlineStore>, ProviderError> {
    match factory.build(&config).await? {
        ProviderHandle::Online(store) => Ok(store),
        ProviderHandle::Offline(_) => panic!("the embedded factory must build an online store"),
    }
}

#[tokio::test]
async fn factory_resolves_relative_absolute_and_default_paths() {
    let data = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let factory = EmbeddedOnlineFactory {
        data_dir: data.path().to_path_buf(),
    };

    let store = build(&factory, json!({"type": "embedded"}))
        .await
        .expect("default path");
    assert_eq!(store.kind(), "embedded");
    assert!(store.health().await.healthy);
    assert!(
        data.path().join("online/embedded.db").exists(),
        "absent path → data_dir/online/embedded.db"
    );

    build(
        &factory,
        json!({"type": "embedded", "path": "custom/features.db"}),
    )
    .await
    .expect("relative path");
    assert!(
        data.path().join("custom/features.db").exists(),
        "relative path → under data_dir"
    );

    let absolute = elsewhere.path().join("abs.db");
    build(&factory, json!({"path": absolute.to_str().unwrap()}))
        .await
        .expect("absolute path");
    assert!(absolute.exists(), "absolute path is used as is");
}

#[tokio::test]
async fn factory_rejects_bad_configuration_clearly() {
    let data = tempfile::tempdir().unwrap();
    let blocker = data.path().join("not-a-directory");
    std::fs::write(&blocker, b"a file").unwrap();
    let factory = EmbeddedOnlineFactory {
        data_dir: data.path().to_path_buf(),
    };
    for (config, expected) in [
        (
            json!({"type": "embedded", "path": "not-a-directory/online.db"}),
            "cannot create directory",
        ),
        (json!({"type": "redis"}), "expected `embedded`"),
        (
            json!({"type": "embedded", "pth": "x.db"}),
            "unknown field `pth`",
        ),
        (json!({"type": "embedded", "path": " "}), "path is empty"),
        (json!("embedded"), "configuration"),
    ] {
        match build(&factory, config.clone()).await {
            Err(ProviderError::InvalidConfig(message)) => assert!(
                message.contains(expected),
                "{config}: expected an error containing `{expected}`, got: {message}"
            ),
            Err(other) => panic!("{config}: expected InvalidConfig, got {other:?}"),
            Ok(_) => panic!("{config}: expected InvalidConfig, got a store"),
        }
    }
}
