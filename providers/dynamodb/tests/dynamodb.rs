//! What is particular to the DynamoDB store, on moto over HTTP: the factory's
//! configuration, hostile names, large writes and reads that span many requests, the bulk
//! path, and what an unreachable endpoint or refused credentials look like.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use quiver_provider_dynamodb::{DynamoConfig, DynamoFactory, DynamoOnlineStore};
use quiver_provider_sdk::{
    OnlineRead, OnlineRow, OnlineStore, OnlineTable, OnlineTableRef, OnlineValue, Provider,
    ProviderError, ProviderFactory, ProviderHandle,
};
use serde_json::json;

fn table(feature: &str, variant: &str) -> OnlineTableRef {
    OnlineTableRef {
        feature: feature.into(),
        variant: variant.into(),
    }
}

fn micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap()
}

fn row(entity: &str, value: OnlineValue, us: i64) -> OnlineRow {
    OnlineRow {
        entity: entity.into(),
        value,
        event_time: micros(us),
    }
}

async fn create(store: &DynamoOnlineStore, t: &OnlineTableRef, ttl: Option<Duration>) {
    store
        .create_table(&OnlineTable {
            table: t.clone(),
            ttl,
        })
        .await
        .unwrap_or_else(|e| panic!("create {t:?}: {e}"));
}

#[track_caller]
fn assert_no_secret(text: &str, secret: &str) {
    assert!(!text.contains(secret), "the secret leaked: {text}");
}

// ---------------------------------------------------------------- factory configuration

async fn build(config: serde_json::Value) -> Result<Arc<dyn OnlineStore>, ProviderError> {
    match DynamoFactory.build(&config).await? {
        ProviderHandle::Online(store) => Ok(store),
        ProviderHandle::Offline(_) => panic!("the dynamodb factory must build an online store"),
    }
}

#[tokio::test]
async fn factory_accepts_what_quiver_core_serializes() {
    let port = common::port();
    common::ensure_emulator(port);
    let prefix = common::fresh_prefix();
    // `ProviderConfig::Dynamodb` serialized, with the secret inline and then from env.
    let store = build(json!({
        "type": "dynamodb",
        "region": "eu-west-1",
        "endpoint": common::endpoint(port),
        "access_key_id": "AKIDEXAMPLE",
        "secret_access_key": "inline-secret-value",
        "table_prefix": prefix,
    }))
    .await
    .expect("a complete configuration");
    assert_eq!(store.kind(), "dynamodb");
    let health = store.health().await;
    assert!(health.healthy, "{}", health.message);
    assert!(store.capabilities().ttl && store.capabilities().multi_get);

    std::env::set_var("QUIVER_TEST_DYNAMO_SECRET", "from-the-environment");
    build(json!({
        "type": "dynamodb",
        "region": "eu-west-1",
        "endpoint": common::endpoint(port),
        "access_key_id": "AKIDEXAMPLE",
        "secret_access_key": {"env": "QUIVER_TEST_DYNAMO_SECRET"},
    }))
    .await
    .expect("secret from the environment, default prefix");
}

#[tokio::test]
async fn factory_rejects_bad_configuration_clearly_and_never_shows_the_secret() {
    let secret = "hunter2-do-not-print";
    for (config, expected) in [
        (
            json!({"type": "redis", "region": "x"}),
            "expected `dynamodb`",
        ),
        (json!({"type": "dynamodb"}), "missing field `region`"),
        (json!({"type": "dynamodb", "region": 5}), "invalid type"),
        (
            json!({"type": "dynamodb", "region": " ", "access_key_id": "a", "secret_access_key": secret}),
            "region must not be empty",
        ),
        (
            json!({"type": "dynamodb", "region": "r", "access_key_id": "a", "secret_access_key": secret, "tabel_prefix": "p"}),
            "unknown field `tabel_prefix`",
        ),
        (
            json!({"type": "dynamodb", "region": "r", "access_key_id": "a", "secret_access_key": secret, "endpoint": "localhost:8000"}),
            "must be an http:// or https:// URL",
        ),
        (
            json!({"type": "dynamodb", "region": "r", "access_key_id": "a", "secret_access_key": secret, "table_prefix": "bad prefix!"}),
            "table_prefix contains",
        ),
        (
            json!({"type": "dynamodb", "region": "r", "access_key_id": "a", "secret_access_key": secret, "table_prefix": "p".repeat(100)}),
            "at most 64",
        ),
        (
            json!({"type": "dynamodb", "region": "r", "access_key_id": "a"}),
            "set both access_key_id and secret_access_key",
        ),
        (
            json!({"type": "dynamodb", "region": "r", "secret_access_key": secret}),
            "set both access_key_id and secret_access_key",
        ),
        (
            json!({"type": "dynamodb", "region": "r", "access_key_id": "a", "secret_access_key": 12345}),
            "did not match any variant",
        ),
        (
            json!({"type": "dynamodb", "region": "r", "access_key_id": "a", "secret_access_key": {"env": "QUIVER_TEST_UNSET_VARIABLE_9"}}),
            "`QUIVER_TEST_UNSET_VARIABLE_9`, which is not set",
        ),
        (json!("dynamodb"), "dynamodb provider"),
    ] {
        match build(config.clone()).await {
            Err(ProviderError::InvalidConfig(message)) => {
                assert!(
                    message.contains(expected),
                    "{config}: expected an error containing `{expected}`, got: {message}"
                );
                assert_no_secret(&message, secret);
            }
            Err(other) => panic!("{config}: expected InvalidConfig, got {other:?}"),
            Ok(_) => panic!("{config}: expected InvalidConfig, got a store"),
        }
    }
}

#[test]
fn debug_output_never_shows_the_secret() {
    let secret = "hunter2-do-not-print";
    let config = DynamoFactory::config(&json!({
        "type": "dynamodb",
        "region": "r",
        "endpoint": "http://127.0.0.1:1",
        "access_key_id": "AKIDEXAMPLE",
        "secret_access_key": secret,
    }))
    .unwrap();
    let shown = format!("{config:?}");
    assert_no_secret(&shown, secret);
    assert!(
        shown.contains("AKIDEXAMPLE") && shown.contains("<redacted>"),
        "{shown}"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let store = DynamoOnlineStore::new(config).unwrap();
    assert_no_secret(&format!("{store:?}"), secret);
}

// ---------------------------------------------------------------- hostile names

#[tokio::test]
async fn hostile_feature_variant_and_entity_names_round_trip_without_mixing() {
    let (_guard, store) = common::fresh();
    let long = "f".repeat(1_000);
    let tables = [
        table("a:b", "v1"),
        table("a/b", "v1"),
        table("a.b", "v1"),
        table("{user}\n", "v1 ✓"),
        table("", ""),
        table(&long, "v1"),
        table(&format!("{long}x"), "v1"),
        table("naïve 🚀", "' OR 1=1 --"),
    ];
    for t in &tables {
        create(&store, t, None).await;
    }
    let entities = [
        "plain",
        "with:colon",
        "{braces}",
        "new\nline",
        "naïve café ✓ 🚀",
        " ",
        "\0nul",
        "quote ' \" \\",
        &"e".repeat(2_048),
    ];
    for (k, t) in tables.iter().enumerate() {
        let rows: Vec<OnlineRow> = entities
            .iter()
            .enumerate()
            .map(|(i, e)| {
                row(
                    e,
                    OnlineValue::String(format!("{k}/{i}/{e}")),
                    (k * 100 + i) as i64,
                )
            })
            .collect();
        let report = store
            .write(t, &rows)
            .await
            .unwrap_or_else(|e| panic!("{t:?}: {e}"));
        assert_eq!(report.written, entities.len() as u64, "{t:?}");
    }
    let asked: Vec<String> = entities.iter().map(|e| e.to_string()).collect();
    let answer = store
        .multi_get(&tables, &asked)
        .await
        .expect("read everything back");
    for (i, e) in entities.iter().enumerate() {
        for (k, t) in tables.iter().enumerate() {
            assert_eq!(
                answer[i][k],
                OnlineRead::Present {
                    value: OnlineValue::String(format!("{k}/{i}/{e}")),
                    event_time: micros((k * 100 + i) as i64),
                },
                "entity {e:?} in {t:?}"
            );
        }
    }
}

#[tokio::test]
async fn entities_dynamodb_cannot_key_are_refused_before_anything_is_written() {
    let (_guard, store) = common::fresh();
    let t = table("keys", "v1");
    create(&store, &t, None).await;
    for bad in [String::new(), "e".repeat(2_049), "é".repeat(1_025)] {
        let rows = [
            row("good", OnlineValue::Int(1), 1),
            row(&bad, OnlineValue::Int(2), 2),
        ];
        match store.write(&t, &rows).await {
            Err(ProviderError::InvalidQuery(message)) => {
                assert!(message.contains("2048 bytes"), "{message}");
                assert!(
                    message.len() < 400,
                    "the message cuts long entities: {message}"
                );
            }
            other => panic!(
                "entity of {} bytes: expected InvalidQuery, got {other:?}",
                bad.len()
            ),
        }
        // On read such an entity simply was never written.
        let answer = store
            .multi_get(std::slice::from_ref(&t), &[bad.clone(), "good".into()])
            .await
            .expect("reading an unkeyable entity");
        assert_eq!(
            answer,
            vec![vec![OnlineRead::Missing]; 2],
            "nothing was written"
        );
    }
}

// ---------------------------------------------------------------- volume

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_rows_in_one_write_then_a_replay_skips_them_all() {
    let (_guard, store) = common::fresh();
    let t = table("big", "v1");
    create(&store, &t, Some(Duration::from_secs(365 * 24 * 3600))).await;
    let now = Utc::now().timestamp_micros();
    let rows: Vec<OnlineRow> = (0..10_000)
        .map(|i| row(&format!("user-{i}"), OnlineValue::Int(i), now - i))
        .collect();
    let started = Instant::now();
    let report = store.write(&t, &rows).await.expect("10k conditional puts");
    eprintln!("10k conditional puts in {:?}", started.elapsed());
    assert_eq!((report.written, report.skipped_older), (10_000, 0));
    let report = store.write(&t, &rows).await.expect("replay");
    assert_eq!(
        (report.written, report.skipped_older),
        (0, 10_000),
        "replaying the same rows changes nothing"
    );
    let asked: Vec<String> = (0..10_000)
        .step_by(97)
        .map(|i| format!("user-{i}"))
        .collect();
    let answer = store
        .multi_get(std::slice::from_ref(&t), &asked)
        .await
        .unwrap();
    for (n, i) in (0..10_000_i64).step_by(97).enumerate() {
        assert_eq!(
            answer[n][0],
            OnlineRead::Present {
                value: OnlineValue::Int(i),
                event_time: micros(now - i),
            }
        );
    }
}

#[tokio::test]
async fn multi_get_of_250_entities_spans_three_batch_requests_and_keeps_positions() {
    let (_guard, store) = common::fresh();
    let first = table("mg_a", "v1");
    let second = table("mg_b", "v1");
    create(&store, &first, None).await;
    create(&store, &second, None).await;
    let rows: Vec<OnlineRow> = (0..250)
        .map(|i| row(&format!("e{i:03}"), OnlineValue::Int(i), i))
        .collect();
    store.write(&first, &rows).await.unwrap();
    store.write(&second, &rows[..125]).await.unwrap();

    let mut asked: Vec<String> = (0..250).rev().map(|i| format!("e{i:03}")).collect();
    asked.push("e007".into()); // asked twice
    asked.push("nobody".into());
    let before = store.batch_get_requests();
    let answer = store
        .multi_get(std::slice::from_ref(&first), &asked)
        .await
        .expect("250 entities of one table");
    assert_eq!(
        store.batch_get_requests() - before,
        3,
        "1 registry key + 250 entity keys = 3 BatchGetItem requests of ≤100 keys"
    );
    assert_eq!(answer.len(), asked.len());
    for (n, e) in asked.iter().enumerate() {
        let expected = match e.strip_prefix('e').and_then(|i| i.parse::<i64>().ok()) {
            Some(i) => OnlineRead::Present {
                value: OnlineValue::Int(i),
                event_time: micros(i),
            },
            None => OnlineRead::Missing,
        };
        assert_eq!(answer[n], vec![expected], "{e}");
    }

    // Across tables: 2 registry keys + 2 × 250 keys = 6 requests, one answer per table.
    let before = store.batch_get_requests();
    let answer = store
        .multi_get(&[second.clone(), first.clone()], &asked[..250])
        .await
        .expect("250 entities of two tables");
    assert_eq!(store.batch_get_requests() - before, 6);
    for (n, e) in asked[..250].iter().enumerate() {
        let i: i64 = e[1..].parse().unwrap();
        let present = OnlineRead::Present {
            value: OnlineValue::Int(i),
            event_time: micros(i),
        };
        let in_second = if i < 125 {
            present.clone()
        } else {
            OnlineRead::Missing
        };
        assert_eq!(answer[n], vec![in_second, present], "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_load_writes_in_25_item_batches_and_the_last_writer_wins() {
    let (_guard, store) = common::fresh();
    let t = table("bulk", "v1");
    create(&store, &t, None).await;
    let mut rows: Vec<OnlineRow> = (0..10_000)
        .map(|i| {
            row(
                &format!("k{i}"),
                OnlineValue::Float(i as f64 / 7.0),
                1_000 + i,
            )
        })
        .collect();
    rows.push(row("k0", OnlineValue::Float(-1.0), 5)); // older, in the same call: loses
    let before = store.batch_write_requests();
    let started = Instant::now();
    let report = store.bulk_load(&t, &rows).await.expect("bulk load");
    eprintln!("10k rows bulk-loaded in {:?}", started.elapsed());
    assert_eq!((report.written, report.skipped_older), (10_000, 1));
    assert!(
        store.batch_write_requests() - before >= 400,
        "10k items need at least 400 BatchWriteItem requests of 25"
    );
    let answer = store
        .multi_get(std::slice::from_ref(&t), &["k0".into(), "k9999".into()])
        .await
        .unwrap();
    assert_eq!(
        answer[0][0],
        OnlineRead::Present {
            value: OnlineValue::Float(0.0),
            event_time: micros(1_000)
        }
    );
    // Against the store the bulk path has no condition: an older row replaces.
    store
        .bulk_load(&t, &[row("k0", OnlineValue::Float(-1.0), 5)])
        .await
        .unwrap();
    let answer = store
        .multi_get(std::slice::from_ref(&t), &["k0".into()])
        .await
        .unwrap();
    assert_eq!(
        answer[0][0],
        OnlineRead::Present {
            value: OnlineValue::Float(-1.0),
            event_time: micros(5)
        },
        "bulk_load is last-writer-wins, as documented"
    );
    // Whereas the conditional path puts it back only with a newer event time.
    let report = store
        .write(&t, &[row("k0", OnlineValue::Float(2.0), 4)])
        .await
        .unwrap();
    assert_eq!((report.written, report.skipped_older), (0, 1));
    match store
        .bulk_load(&table("never_created", "v1"), &rows[..1])
        .await
    {
        Err(ProviderError::NotFound(message)) => assert!(message.contains("never_created")),
        other => panic!("bulk load into a missing table: {other:?}"),
    }
}

// ---------------------------------------------------------------- tables

#[tokio::test]
async fn tables_follow_the_naming_rules_and_the_registry_knows_their_ttl() {
    let (_guard, store) = common::fresh();
    let t = table("avg amount:7d", "v1/β");
    create(&store, &t, Some(Duration::from_secs(90))).await;
    let name = store.table_name(&t);
    assert!(
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
        "{name}"
    );
    let described = store
        .client()
        .describe_table()
        .table_name(&name)
        .send()
        .await
        .expect("the DynamoDB table exists");
    let key = &described.table().unwrap().key_schema()[0];
    assert_eq!(key.attribute_name(), "entity");
    let ttl = store
        .client()
        .describe_time_to_live()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(
        ttl.time_to_live_status().map(|s| s.as_str()),
        Some("ENABLED")
    );

    // Another replica (same prefix, own client) sees the table and its TTL.
    let port = common::port();
    let prefix = &name[..name.find("avg_amount").unwrap()];
    let replica = DynamoOnlineStore::new(common::config(port, prefix)).unwrap();
    let old = Utc::now() - chrono::Duration::seconds(3_600);
    let old = micros(old.timestamp_micros());
    store
        .write(
            &t,
            &[row("e", OnlineValue::Bool(true), old.timestamp_micros())],
        )
        .await
        .unwrap();
    let answer = replica
        .multi_get(std::slice::from_ref(&t), &["e".into()])
        .await
        .unwrap();
    assert_eq!(answer[0][0], OnlineRead::Expired { event_time: old });
    // The item carries DynamoDB's expiry (event time + TTL, epoch seconds).
    let item = store
        .client()
        .get_item()
        .table_name(&name)
        .key(
            "entity",
            aws_sdk_dynamodb::types::AttributeValue::S("e".into()),
        )
        .send()
        .await
        .unwrap();
    let expires: i64 = item.item().unwrap()["expires_at"]
        .as_n()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        expires,
        (old.timestamp_micros() + 90_000_000).div_euclid(1_000_000) + 1
    );
    // Creating again, twice and concurrently, is idempotent and keeps the row.
    let no_ttl = OnlineTable {
        table: t.clone(),
        ttl: None,
    };
    let (a, b) = tokio::join!(store.create_table(&no_ttl), replica.create_table(&no_ttl));
    a.unwrap();
    b.unwrap();
    let answer = replica
        .multi_get(std::slice::from_ref(&t), &["e".into()])
        .await
        .unwrap();
    assert_eq!(
        answer[0][0],
        OnlineRead::Present {
            value: OnlineValue::Bool(true),
            event_time: old
        }
    );
}

#[tokio::test]
async fn a_store_with_no_tables_at_all_answers_not_found() {
    // Not even the registry exists under this prefix.
    let (_guard, store) = common::fresh();
    let ghost = table("ghost", "v1");
    for result in [
        store
            .write(&ghost, &[row("e", OnlineValue::Null, 1)])
            .await
            .map(|_| ()),
        store
            .multi_get(std::slice::from_ref(&ghost), &["e".into()])
            .await
            .map(|_| ()),
    ] {
        match result {
            Err(ProviderError::NotFound(message)) => {
                assert!(message.contains("ghost"), "{message}")
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
    store
        .delete_table(&ghost)
        .await
        .expect("deleting what never existed");
}

// ---------------------------------------------------------------- failures

/// A config pointing at `endpoint` with short timeouts.
fn short_timeouts(endpoint: &str) -> DynamoConfig {
    let mut config = DynamoConfig::new("us-east-1", Some(endpoint), common::credentials());
    config.connect_timeout = Duration::from_secs(1);
    config.attempt_timeout = Duration::from_secs(2);
    config.operation_timeout = Duration::from_secs(5);
    config
}

#[tokio::test]
async fn endpoint_not_listening_is_unreachable_within_the_bound() {
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let store = DynamoOnlineStore::new(DynamoConfig::new(
        "us-east-1",
        Some(&endpoint),
        common::credentials(),
    ))
    .unwrap();
    let t = table("t", "v1");
    let started = Instant::now();
    let results = [
        store
            .create_table(&OnlineTable {
                table: t.clone(),
                ttl: None,
            })
            .await,
        store
            .write(&t, &[row("e", OnlineValue::Int(1), 1)])
            .await
            .map(|_| ()),
        store
            .multi_get(std::slice::from_ref(&t), &["e".into()])
            .await
            .map(|_| ()),
        store.delete_table(&t).await,
    ];
    for result in results {
        match result {
            Err(ProviderError::Unreachable(message)) => {
                assert!(message.contains(&port.to_string()), "{message}");
                assert_no_secret(&message, common::SECRET);
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "four operations took {:?}: retries must be bounded",
        started.elapsed()
    );
    let health = store.health().await;
    assert!(!health.healthy);
    assert!(health.message.contains("unreachable"), "{}", health.message);
}

#[tokio::test]
async fn endpoint_that_accepts_but_never_answers_times_out_as_unreachable() {
    // Connections are accepted (by the kernel's backlog) and then nothing is ever sent.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let store = DynamoOnlineStore::new(short_timeouts(&endpoint)).unwrap();
    let started = Instant::now();
    match store.multi_get(&[table("t", "v1")], &["e".into()]).await {
        Err(ProviderError::Unreachable(message)) => {
            assert!(
                message.contains("timed out") || message.contains("timeout"),
                "{message}"
            )
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the 5 s operation timeout must bound the call, took {:?}",
        started.elapsed()
    );
    drop(listener);
}

#[tokio::test]
async fn refused_credentials_are_unauthorized() {
    let port = common::auth_port();
    common::ensure_emulator(port);
    // From now on this moto checks every request's signature against its IAM users,
    // and no user has our key.
    let reset = std::process::Command::new("curl")
        .args(["-s", "-f", "-X", "POST", "--max-time", "5"])
        .args(["-H", "Content-Type: application/json", "-d", "0"])
        .arg(format!("http://127.0.0.1:{port}/moto-api/reset-auth"))
        .output()
        .expect("run curl");
    assert!(reset.status.success(), "moto reset-auth: {reset:?}");
    let store = DynamoOnlineStore::new(common::config(port, &common::fresh_prefix())).unwrap();
    let t = table("t", "v1");
    match store
        .create_table(&OnlineTable {
            table: t.clone(),
            ttl: None,
        })
        .await
    {
        Err(ProviderError::Unauthorized(message)) => assert_no_secret(&message, common::SECRET),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    match store
        .multi_get(std::slice::from_ref(&t), &["e".into()])
        .await
    {
        Err(ProviderError::Unauthorized(_)) => {}
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    let health = store.health().await;
    assert!(
        !health.healthy && health.message.contains("rejected the credentials"),
        "{}",
        health.message
    );
}
