//! What is particular to the Redis store, on the real Redis: the factory's configuration,
//! hostile names, the key layout as stored, Redis down and back, a 20 000-row batch, one
//! round trip per multi-get, sweeping deleted tables and key expiry.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{ensure_server, namespace_keys, store_in, NamespaceGuard, Proxy};
use quiver_provider_redis::{
    keys, RedisFactory, RedisOnlineStore, RedisOptions, EXPIRY_GRACE, REGISTRY_CACHE,
    ROUND_TRIP_TIMEOUT,
};
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

async fn create(store: &dyn OnlineStore, t: &OnlineTableRef, ttl: Option<Duration>) {
    store
        .create_table(&OnlineTable {
            table: t.clone(),
            ttl,
        })
        .await
        .expect("create table");
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

fn present(value: OnlineValue, us: i64) -> OnlineRead {
    OnlineRead::Present {
        value,
        event_time: micros(us),
    }
}

fn redis_con() -> redis::Connection {
    redis::Client::open(common::test_url())
        .unwrap()
        .get_connection()
        .unwrap()
}

async fn build(config: serde_json::Value) -> Result<Arc<dyn OnlineStore>, ProviderError> {
    match RedisFactory.build(&config).await? {
        ProviderHandle::Online(store) => Ok(store),
        ProviderHandle::Offline(_) => panic!("the redis factory must build an online store"),
    }
}

#[tokio::test]
async fn factory_builds_from_the_core_config_shape() {
    ensure_server();
    let address = common::test_host_port();
    let store = build(json!({"type": "redis", "address": address, "db": 0}))
        .await
        .expect("host:port");
    assert_eq!(store.kind(), "redis");
    let health = store.health().await;
    assert!(health.healthy, "{health:?}");
    assert!(health.latency < Duration::from_secs(2));

    let store = build(json!({"address": format!("redis://{address}/1")}))
        .await
        .expect("redis:// URL with a db, no type, no db field");
    assert!(store.health().await.healthy);

    std::env::set_var("QUIVER_TEST_REDIS_UNUSED_PW", "");
    build(json!({"type": "redis", "address": address, "db": 2,
        "password": {"env": "QUIVER_TEST_REDIS_UNUSED_PW"}}))
    .await
    .expect("password from the environment");
}

#[tokio::test]
async fn factory_rejects_bad_configuration_clearly() {
    for (config, expected) in [
        (
            json!({"type": "redis", "address": ""}),
            "`address` is empty",
        ),
        (
            json!({"type": "redis", "address": "   "}),
            "`address` is empty",
        ),
        (json!({"type": "redis"}), "missing field `address`"),
        (json!({"type": "redis", "address": 6379}), "invalid type"),
        (
            json!({"type": "redis", "address": "h", "db": "zero"}),
            "invalid type",
        ),
        (
            json!({"type": "redis", "address": "h", "db": -1}),
            "invalid value",
        ),
        (
            json!({"type": "redis", "address": "h", "port": 1}),
            "unknown field `port`",
        ),
        (
            json!({"type": "postgres", "address": "h"}),
            "expected `redis`",
        ),
        (
            json!({"type": "redis", "address": "h:notaport"}),
            "invalid port",
        ),
        (json!({"type": "redis", "address": "h:0"}), "invalid port"),
        (
            json!({"type": "redis", "address": "rediss://h:6380"}),
            "TLS",
        ),
        (json!({"type": "redis", "address": "http://h"}), "scheme"),
        (
            json!({"type": "redis", "address": "::1:6379"}),
            "[addr]:port",
        ),
        (
            json!({"type": "redis", "address": "h", "password": {"env": "QUIVER_TEST_REDIS_NO_SUCH_VAR"}}),
            "QUIVER_TEST_REDIS_NO_SUCH_VAR",
        ),
        (json!("redis://h"), "configuration"),
    ] {
        match build(config.clone()).await {
            Err(ProviderError::InvalidConfig(message)) => assert!(
                message.contains(expected),
                "{config}: expected an error containing `{expected}`, got: {message}"
            ),
            Err(other) => panic!("{config}: expected InvalidConfig, got {other:?}"),
            Ok(_) => panic!("{config}: expected InvalidConfig, got a store"),
        }
    }
}

#[tokio::test]
async fn secrets_never_reach_debug_output_or_errors() {
    ensure_server();
    let secret = "pa55-WORD-8d1e";
    // A password of the wrong type.
    let err = build(json!({"type": "redis", "address": "h", "password": 123_456_789}))
        .await
        .err()
        .expect("a number is not a secret");
    assert!(!err.to_string().contains("123456789"), "{err}");
    // A password in the URL of an address that does not parse.
    let err = build(json!({"type": "redis", "address": format!("redis://:{secret}@")}))
        .await
        .err()
        .expect("no host");
    assert!(!err.to_string().contains(secret), "{err}");
    // Options and store Debug.
    let options = RedisOptions {
        address: format!("redis://user:{secret}@127.0.0.1:1"),
        db: 0,
        password: Some(secret.into()),
        namespace: "n".into(),
    };
    assert!(!format!("{options:?}").contains(secret));
    let store = RedisOnlineStore::connect(options).await.unwrap();
    assert!(!format!("{store:?}").contains(secret));
    // A password the server refuses (the test server has none, or another one): the
    // error says so and does not repeat it.
    let store = build(json!({"type": "redis", "address": common::test_host_port(),
        "password": secret}))
    .await
    .expect("building does not connect");
    let health = store.health().await;
    assert!(
        !health.healthy,
        "a refused password is unhealthy: {health:?}"
    );
    assert!(!health.message.contains(secret), "{}", health.message);
    let err = store
        .multi_get(&[table("f", "v")], &["e".into()])
        .await
        .expect_err("refused credentials");
    assert!(!err.to_string().contains(secret), "{err}");
    assert!(
        matches!(err, ProviderError::Unauthorized(_)),
        "a refused password is Unauthorized: {err:?}"
    );
}

const HOSTILE: &[&str] = &[
    "",
    "plain",
    "a:b",
    ":",
    "{",
    "}",
    "{tag}x",
    "}{",
    "%3A",
    "#next-generation",
    "line\nbreak\r\n",
    "nul\0byte",
    "naïve café ✓ 🦀",
    "*?[]\\",
    " ",
];

#[tokio::test]
async fn hostile_names_stay_apart_and_round_trip() {
    let guard = NamespaceGuard::new();
    // A hostile namespace too.
    let namespace = format!("{}:{{ns}}\n*", guard.namespace);
    let store = store_in(&namespace).await;
    let tables: Vec<OnlineTableRef> = HOSTILE
        .iter()
        .flat_map(|f| [table(f, "v"), table("v", f), table(f, f)])
        .collect();
    let mut distinct = tables.clone();
    distinct.dedup();
    for t in &distinct {
        create(&store, t, None).await;
    }
    // Names a naive `feature:variant` join would confuse.
    let (ab_c, a_bc) = (table("a:b", "c"), table("a", "b:c"));
    create(&store, &ab_c, None).await;
    create(&store, &a_bc, None).await;
    let entities: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
    for (t, tbl) in distinct.iter().enumerate() {
        let rows: Vec<OnlineRow> = entities
            .iter()
            .enumerate()
            .map(|(e, entity)| {
                row(
                    entity,
                    OnlineValue::String(format!("{t}/{e}/{entity}")),
                    (t * 100 + e) as i64,
                )
            })
            .collect();
        let report = store.write(tbl, &rows).await.expect("write hostile names");
        assert_eq!(report.written, rows.len() as u64);
    }
    store
        .write(&ab_c, &[row("a:b", OnlineValue::Int(1), 1)])
        .await
        .unwrap();
    store
        .write(&a_bc, &[row("a:b", OnlineValue::Int(2), 1)])
        .await
        .unwrap();

    let answer = store.multi_get(&distinct, &entities).await.expect("read");
    for (e, entity) in entities.iter().enumerate() {
        for (t, _) in distinct.iter().enumerate() {
            assert_eq!(
                answer[e][t],
                present(
                    OnlineValue::String(format!("{t}/{e}/{entity}")),
                    (t * 100 + e) as i64
                ),
                "entity {entity:?}, table {:?}",
                distinct[t]
            );
        }
    }
    let answer = store
        .multi_get(&[ab_c, a_bc], &["a:b".into()])
        .await
        .unwrap();
    assert_eq!(
        answer[0],
        vec![
            present(OnlineValue::Int(1), 1),
            present(OnlineValue::Int(2), 1)
        ]
    );

    // As stored: one hash per entity, each key parses back to its namespace and entity,
    // and its only hash tag is the escaped entity.
    let stored = namespace_keys(&namespace);
    let mut parsed: Vec<String> = stored
        .iter()
        .filter_map(|k| keys::parse_entity_key(k))
        .map(|(ns, entity)| {
            assert_eq!(ns, namespace);
            entity
        })
        .collect();
    parsed.sort();
    let mut expected = entities.clone();
    expected.sort();
    assert_eq!(parsed, expected, "one hash per entity: {stored:?}");
    assert!(stored.contains(&keys::registry_key(&namespace)));
    for key in &stored {
        let open = key.find('{').unwrap();
        let close = key.find('}').unwrap();
        assert!(
            close > open && !key[close + 1..].contains(['{', '}']),
            "{key:?}"
        );
    }
    let mut con = redis_con();
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg(keys::entity_key(&namespace, "a:b"))
        .query(&mut con)
        .unwrap();
    assert_eq!(fields.len(), distinct.len() + 2, "one field per table");
    for field in &fields {
        assert!(keys::parse_table_field(field).is_some(), "{field:?}");
    }

    // Clean up the hostile namespace ourselves (the guard knows only its own name).
    drop(NamespaceGuard {
        namespace: namespace.clone(),
    });
    assert!(namespace_keys(&namespace).is_empty());
}

#[tokio::test]
async fn a_redis_that_is_not_listening_is_unreachable_within_the_bound() {
    for address in ["127.0.0.1:1", "redis://127.0.0.1:1/0"] {
        let store = RedisOnlineStore::connect(RedisOptions {
            address: address.into(),
            db: 0,
            password: None,
            namespace: "never".into(),
        })
        .await
        .expect("connecting is lazy");
        let bound = ROUND_TRIP_TIMEOUT + Duration::from_secs(1);
        let t = table("f", "v");

        let started = Instant::now();
        let health = store.health().await;
        assert!(!health.healthy && started.elapsed() < bound, "{health:?}");
        assert!(health.message.contains("127.0.0.1:1"), "{}", health.message);

        let started = Instant::now();
        let err = store
            .create_table(&OnlineTable {
                table: t.clone(),
                ttl: None,
            })
            .await
            .expect_err("create");
        assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
        assert!(err.is_transient());

        let err = store
            .write(&t, &[row("e", OnlineValue::Null, 1)])
            .await
            .expect_err("write");
        assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
        let err = store
            .multi_get(std::slice::from_ref(&t), &["e".into()])
            .await
            .expect_err("read");
        assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
        let err = store.delete_table(&t).await.expect_err("delete");
        assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
        assert!(
            started.elapsed() < 4 * bound,
            "four calls took {:?}",
            started.elapsed()
        );
    }
}

/// A store reaching Redis through a [`Proxy`], with table `f:v` holding `e` = 1 at 1 µs.
async fn store_behind_a_proxy() -> (NamespaceGuard, Proxy, RedisOnlineStore, OnlineTableRef) {
    let guard = NamespaceGuard::new();
    let proxy = Proxy::start().await;
    let mut options = common::options(&guard.namespace);
    options.address = proxy.address();
    let store = RedisOnlineStore::connect(options).await.unwrap();
    let t = table("f", "v");
    create(&store, &t, None).await;
    store
        .write(&t, &[row("e", OnlineValue::Int(1), 1)])
        .await
        .unwrap();
    (guard, proxy, store, t)
}

#[tokio::test]
async fn the_store_recovers_by_itself_when_redis_comes_back() {
    let (_guard, proxy, store, t) = store_behind_a_proxy().await;

    proxy.cut();
    let started = Instant::now();
    let err = store
        .multi_get(std::slice::from_ref(&t), &["e".into()])
        .await
        .expect_err("redis is gone");
    assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
    assert!(started.elapsed() < ROUND_TRIP_TIMEOUT + Duration::from_secs(1));
    assert!(!store.health().await.healthy);

    let _proxy = proxy.restore().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        match store
            .multi_get(std::slice::from_ref(&t), &["e".into()])
            .await
        {
            Ok(answer) => break answer,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet back: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the store did not recover within 10 s: {e}"),
        }
    };
    assert_eq!(answer[0][0], present(OnlineValue::Int(1), 1));
    assert!(store.health().await.healthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_20k_rows_is_pipelined_and_exact() {
    let guard = NamespaceGuard::new();
    let proxy = Proxy::start().await;
    let mut options = common::options(&guard.namespace);
    options.address = proxy.address();
    let store = RedisOnlineStore::connect(options).await.unwrap();
    let t = table("amount", "v1");
    create(&store, &t, None).await;
    let rows: Vec<OnlineRow> = (0..20_000)
        .map(|i| row(&format!("user-{i}"), OnlineValue::Float(i as f64 / 7.0), i))
        .collect();

    proxy.reset();
    let started = Instant::now();
    let report = store.write(&t, &rows).await.expect("write 20k rows");
    let elapsed = started.elapsed();
    assert_eq!((report.written, report.skipped_older), (20_000, 0));
    assert_eq!(
        proxy.round_trips(),
        1 + 20_000 / 500,
        "one registry read, then pipelines of 500 rows"
    );
    eprintln!("20k rows written in {elapsed:?}");
    let commands = proxy.commands();
    let count = |name: &[u8]| {
        commands
            .iter()
            .filter(|c| c[0].eq_ignore_ascii_case(name))
            .count()
    };
    assert_eq!(count(b"HGET"), 1, "one registry read");
    assert_eq!(
        count(b"SCRIPT"),
        40,
        "one SCRIPT LOAD heading each pipeline"
    );
    assert_eq!(count(b"EVALSHA"), 200, "one script call per 100 rows");
    assert_eq!(commands.len(), 1 + 40 + 200);

    let report = store.write(&t, &rows).await.expect("rewrite");
    assert_eq!(
        (report.written, report.skipped_older),
        (0, 20_000),
        "replaying a batch is a no-op"
    );
    let entities: Vec<String> = rows.iter().map(|r| r.entity.clone()).collect();
    let answer = store
        .multi_get(std::slice::from_ref(&t), &entities)
        .await
        .unwrap();
    for (i, read) in answer.iter().enumerate() {
        assert_eq!(
            read[0],
            present(OnlineValue::Float(i as f64 / 7.0), i as i64)
        );
    }
}

#[tokio::test]
async fn a_multi_get_of_100_entities_by_50_features_is_one_round_trip() {
    let guard = NamespaceGuard::new();
    let proxy = Proxy::start().await;
    let mut options = common::options(&guard.namespace);
    options.address = proxy.address();
    let store = RedisOnlineStore::connect(options).await.unwrap();
    let tables: Vec<OnlineTableRef> = (0..50)
        .map(|f| table(&format!("feature_{f}"), "v1"))
        .collect();
    let entities: Vec<String> = (0..100).map(|e| format!("entity-{e}")).collect();
    for (f, t) in tables.iter().enumerate() {
        create(&store, t, None).await;
        let rows: Vec<OnlineRow> = entities
            .iter()
            .enumerate()
            .filter(|(e, _)| (e + f) % 3 != 0)
            .map(|(e, entity)| row(entity, OnlineValue::Int((e * 1000 + f) as i64), 5))
            .collect();
        store.write(t, &rows).await.unwrap();
    }
    assert!(
        store.health().await.healthy,
        "connection set up before counting"
    );

    let expected = |e: usize, f: usize| {
        if (e + f) % 3 != 0 {
            present(OnlineValue::Int((e * 1000 + f) as i64), 5)
        } else {
            OnlineRead::Missing
        }
    };
    let name = |c: &Vec<Vec<u8>>| String::from_utf8_lossy(&c[0]).to_ascii_uppercase();

    // Cold: the registry entries and size travel in the same pipeline as the reads, and
    // the hashes are read field by field.
    proxy.reset();
    let answer = store.multi_get(&tables, &entities).await.unwrap();
    assert_eq!(proxy.round_trips(), 1, "one round trip for 100 × 50");
    let commands = proxy.commands();
    let names: Vec<String> = commands.iter().map(name).collect();
    assert_eq!(
        names.len(),
        102,
        "registry HMGET, HLEN, one HMGET per entity"
    );
    assert_eq!((names[0].as_str(), names[1].as_str()), ("HMGET", "HLEN"));
    assert_eq!(
        commands[0][1],
        keys::registry_key(&guard.namespace).as_bytes()
    );
    assert!(names[2..].iter().all(|n| n == "HMGET"), "{names:?}");
    for (e, read) in answer.iter().enumerate() {
        for (f, value) in read.iter().enumerate() {
            assert_eq!(value, &expected(e, f), "cold: entity {e} feature {f}");
        }
    }

    // Warm: the registry is cached, and the request names every table there is, so
    // each hash is read whole (one pass in Redis instead of a scan per field).
    proxy.reset();
    let answer = store.multi_get(&tables, &entities).await.unwrap();
    assert_eq!(proxy.round_trips(), 1);
    let names: Vec<String> = proxy.commands().iter().map(name).collect();
    assert_eq!(names.len(), 100, "{names:?}");
    assert!(names.iter().all(|n| n == "HGETALL"), "{names:?}");
    for (e, read) in answer.iter().enumerate() {
        for (f, value) in read.iter().enumerate() {
            assert_eq!(value, &expected(e, f), "warm: entity {e} feature {f}");
        }
    }

    // The cache aged: the registry is read again in the same pipeline, and the size read
    // before still picks whole-hash reads (the refreshing request is not a slow one).
    tokio::time::sleep(REGISTRY_CACHE + Duration::from_millis(50)).await;
    proxy.reset();
    let answer = store.multi_get(&tables, &entities).await.unwrap();
    assert_eq!(proxy.round_trips(), 1);
    let names: Vec<String> = proxy.commands().iter().map(name).collect();
    assert_eq!((names[0].as_str(), names[1].as_str()), ("HMGET", "HLEN"));
    assert!(names[2..].iter().all(|n| n == "HGETALL"), "{names:?}");
    assert_eq!(answer[1][1], expected(1, 1));

    // A few tables out of many (and one asked twice): field by field again.
    let few = vec![tables[7].clone(), tables[3].clone(), tables[7].clone()];
    proxy.reset();
    let answer = store.multi_get(&few, &entities).await.unwrap();
    let names: Vec<String> = proxy.commands().iter().map(name).collect();
    assert!(names.iter().all(|n| n == "HMGET"), "{names:?}");
    for (e, read) in answer.iter().enumerate() {
        assert_eq!(read, &vec![expected(e, 7), expected(e, 3), expected(e, 7)]);
    }
}

/// Whole-hash reads pick the asked fields out of everything the hash holds: other
/// tables' values, a table asked twice, values of a deleted incarnation.
#[tokio::test]
async fn whole_hash_reads_answer_exactly_what_was_asked() {
    let guard = NamespaceGuard::new();
    let store = store_in(&guard.namespace).await;
    let a = table("a", "v1");
    let b = table("b", "v1");
    create(&store, &a, None).await;
    create(&store, &b, None).await;
    store
        .write(&a, &[row("u1", OnlineValue::Int(1), 5)])
        .await
        .unwrap();
    store
        .write(&b, &[row("u1", OnlineValue::Int(2), 5)])
        .await
        .unwrap();
    // Registry of 3 fields (2 tables and the counter), 2 asked: whole hashes from the
    // second call on; the first reads the registry size.
    for _ in 0..2 {
        let answer = store
            .multi_get(
                &[b.clone(), a.clone(), b.clone()],
                &["u1".into(), "nobody".into()],
            )
            .await
            .unwrap();
        assert_eq!(
            answer,
            vec![
                vec![
                    present(OnlineValue::Int(2), 5),
                    present(OnlineValue::Int(1), 5),
                    present(OnlineValue::Int(2), 5)
                ],
                vec![OnlineRead::Missing; 3],
            ]
        );
    }
    // Deleted and re-created through this store: the old incarnation's value, still in
    // the hash until swept, is not the new table's (field by field, then whole).
    store.delete_table(&a).await.unwrap();
    create(&store, &a, None).await;
    for _ in 0..2 {
        let answer = store
            .multi_get(&[a.clone(), b.clone()], &["u1".into()])
            .await
            .unwrap();
        assert_eq!(
            answer,
            vec![vec![OnlineRead::Missing, present(OnlineValue::Int(2), 5)]]
        );
    }
}

#[tokio::test]
async fn deleted_tables_are_invisible_at_once_and_swept_from_every_hash() {
    let guard = NamespaceGuard::new();
    let store = store_in(&guard.namespace).await;
    let (doomed, kept) = (table("doomed", "v1"), table("kept", "v1"));
    create(&store, &doomed, None).await;
    create(&store, &kept, None).await;
    let rows: Vec<OnlineRow> = (0..1_200)
        .map(|i| row(&format!("e{i}"), OnlineValue::Int(i), i))
        .collect();
    store.write(&doomed, &rows).await.unwrap();
    store.write(&kept, &rows[..600]).await.unwrap();
    assert_eq!(namespace_keys(&guard.namespace).len(), 1 + 1_200);

    store.delete_table(&doomed).await.unwrap();
    create(&store, &doomed, None).await;
    // The re-created table is empty at once, before any sweep.
    let answer = store
        .multi_get(std::slice::from_ref(&doomed), &["e1".into()])
        .await
        .unwrap();
    assert_eq!(answer[0][0], OnlineRead::Missing);
    // A write to the new incarnation beats the old value even with an older event time.
    store
        .write(&doomed, &[row("e5", OnlineValue::Bool(true), 0)])
        .await
        .unwrap();

    // Sweep explicitly (the background one may be running too: both are idempotent).
    store.sweep_deleted_tables().await.expect("sweep");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = namespace_keys(&guard.namespace).len();
        if left == 1 + 600 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} keys left after the sweep"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = store
        .multi_get(
            &[doomed.clone(), kept.clone()],
            &["e5".into(), "e700".into()],
        )
        .await
        .unwrap();
    assert_eq!(
        answer[0][0],
        present(OnlineValue::Bool(true), 0),
        "new incarnation kept"
    );
    assert_eq!(
        answer[0][1],
        present(OnlineValue::Int(5), 5),
        "other table kept"
    );
    assert_eq!(answer[1], vec![OnlineRead::Missing, OnlineRead::Missing]);
    let mut con = redis_con();
    let registry: Vec<String> = redis::cmd("HKEYS")
        .arg(keys::registry_key(&guard.namespace))
        .query(&mut con)
        .unwrap();
    assert!(
        !registry.iter().any(|f| f.starts_with("#deleted:")),
        "tombstones removed after the sweep: {registry:?}"
    );
    let report = store.sweep_deleted_tables().await.unwrap();
    assert_eq!(report.tables, 0, "nothing left to sweep");
}

#[tokio::test]
async fn key_expiry_follows_the_longest_lived_value() {
    let guard = NamespaceGuard::new();
    let store = store_in(&guard.namespace).await;
    let (short, none) = (table("short", "v"), table("none", "v"));
    create(&store, &short, Some(Duration::from_secs(60))).await;
    create(&store, &none, None).await;
    let now = Utc::now().timestamp_micros();
    let mut con = redis_con();
    let pttl = |con: &mut redis::Connection, entity: &str| -> i64 {
        redis::cmd("PTTL")
            .arg(keys::entity_key(&guard.namespace, entity))
            .query(con)
            .unwrap()
    };
    let grace_ms = EXPIRY_GRACE.as_millis() as i64;

    store
        .write(&short, &[row("a", OnlineValue::Int(1), now)])
        .await
        .unwrap();
    let a = pttl(&mut con, "a");
    assert!(
        (grace_ms + 50_000..=grace_ms + 60_000).contains(&a),
        "fresh value: ttl + grace, got {a} ms"
    );
    store
        .write(
            &short,
            &[row("old", OnlineValue::Int(1), now - 3_600_000_000)],
        )
        .await
        .unwrap();
    let old = pttl(&mut con, "old");
    assert!(
        (grace_ms - 10_000..=grace_ms).contains(&old),
        "already past its TTL: kept for the grace, got {old} ms"
    );
    assert_eq!(
        store
            .multi_get(std::slice::from_ref(&short), &["old".into()])
            .await
            .unwrap()[0][0],
        OnlineRead::Expired {
            event_time: micros(now - 3_600_000_000)
        }
    );

    // A value without TTL makes the hash persistent; a later TTL write does not undo it.
    store
        .write(&none, &[row("a", OnlineValue::Int(2), now)])
        .await
        .unwrap();
    assert_eq!(pttl(&mut con, "a"), -1);
    store
        .write(&short, &[row("a", OnlineValue::Int(3), now + 1)])
        .await
        .unwrap();
    assert_eq!(pttl(&mut con, "a"), -1);
}

#[tokio::test]
async fn failed_calls_leave_nothing_behind() {
    let guard = NamespaceGuard::new();
    let store = store_in(&guard.namespace).await;
    let ghost = table("ghost", "v");
    let err = store
        .write(&ghost, &[row("e", OnlineValue::Int(1), 1)])
        .await
        .expect_err("missing table");
    assert!(
        matches!(err, ProviderError::NotFound(ref m) if m.contains("ghost")),
        "{err:?}"
    );
    assert!(
        namespace_keys(&guard.namespace).is_empty(),
        "no key written"
    );

    // Bytes another program put in one of our fields are reported, not guessed at.
    let t = table("t", "v");
    create(&store, &t, None).await;
    let mut con = redis_con();
    let _: () = redis::cmd("HSET")
        .arg(keys::entity_key(&guard.namespace, "bad"))
        .arg(keys::table_field("t", "v"))
        .arg("garbage")
        .query(&mut con)
        .unwrap();
    let err = store
        .multi_get(std::slice::from_ref(&t), &["bad".into()])
        .await
        .expect_err("corrupt value");
    assert!(err.to_string().contains("corrupt"), "{err}");
}

/// Reads go over the store's own connections (`wire.rs`), which must log in and select
/// the database exactly as the writes' connection does: an ACL user with a password,
/// database 9. A refused password is `Unauthorized` on the read path too.
#[tokio::test]
async fn reads_log_in_and_select_the_database_as_configured() {
    ensure_server();
    let mut con = redis_con();
    let user = format!("quiver-test-{}", uuid::Uuid::new_v4().simple());
    let secret = "r3ad-PATH-pw-5c1f";
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg("on")
        .arg(format!(">{secret}"))
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .query(&mut con)
        .expect("ACL SETUSER");
    let guard = NamespaceGuard::new();
    let options = |password: &str| RedisOptions {
        address: format!("redis://{user}@{}", common::test_host_port()),
        db: 9,
        password: Some(password.into()),
        namespace: guard.namespace.clone(),
    };
    let store = RedisOnlineStore::connect(options(secret)).await.unwrap();
    let t = table("f", "v");
    create(&store, &t, None).await;
    store
        .write(&t, &[row("e", OnlineValue::Int(7), 1)])
        .await
        .unwrap();
    let answer = store
        .multi_get(std::slice::from_ref(&t), &["e".into(), "nobody".into()])
        .await
        .unwrap();
    assert_eq!(
        answer,
        vec![
            vec![present(OnlineValue::Int(7), 1)],
            vec![OnlineRead::Missing]
        ]
    );
    assert!(
        namespace_keys(&guard.namespace).is_empty(),
        "nothing in database 0"
    );

    let wrong = RedisOnlineStore::connect(options("not-the-pw-77"))
        .await
        .unwrap();
    let err = wrong
        .multi_get(std::slice::from_ref(&t), &["e".into()])
        .await
        .expect_err("a wrong password");
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
    assert!(!err.to_string().contains("not-the-pw-77"), "{err}");

    // Database 9 is not the guard's: clean it by hand.
    let _: () = redis::cmd("SELECT").arg(9).query(&mut con).unwrap();
    let ours: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{}*", guard.namespace))
        .query(&mut con)
        .unwrap();
    assert_eq!(ours.len(), 2, "registry and one entity hash: {ours:?}");
    let _: () = redis::cmd("DEL").arg(&ours).query(&mut con).unwrap();
    let _: () = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query(&mut con)
        .unwrap();
}

/// Another program's key of the wrong type at one of our entity keys: Redis's error
/// reply is the answer (naming the problem), and the connection stays usable.
#[tokio::test]
async fn an_error_reply_is_reported_and_the_next_read_succeeds() {
    let guard = NamespaceGuard::new();
    let store = store_in(&guard.namespace).await;
    let t = table("t", "v");
    create(&store, &t, None).await;
    store
        .write(&t, &[row("good", OnlineValue::Float(1.5), 3)])
        .await
        .unwrap();
    let mut con = redis_con();
    let _: () = redis::cmd("SET")
        .arg(keys::entity_key(&guard.namespace, "squatter"))
        .arg("a string, not a hash")
        .query(&mut con)
        .unwrap();
    for _ in 0..3 {
        let err = store
            .multi_get(
                std::slice::from_ref(&t),
                &["good".into(), "squatter".into()],
            )
            .await
            .expect_err("a string where a hash belongs");
        assert!(matches!(err, ProviderError::Other(_)), "{err:?}");
        assert!(err.to_string().contains("WRONGTYPE"), "{err}");
        let answer = store
            .multi_get(std::slice::from_ref(&t), &["good".into()])
            .await
            .unwrap();
        assert_eq!(answer, vec![vec![present(OnlineValue::Float(1.5), 3)]]);
    }
}

/// Connections the server closed while idle in the pool (a Redis restart) cost no
/// failed read: the first read after the server is back succeeds.
#[tokio::test]
async fn idle_connections_the_server_closed_cost_no_failed_read() {
    let (_guard, proxy, store, t) = store_behind_a_proxy().await;
    // Several reads at once, so the pool holds several idle connections.
    let ids = vec!["e".to_string()];
    let reads = (0..8).map(|_| store.multi_get(std::slice::from_ref(&t), &ids));
    for answer in futures::future::join_all(reads).await {
        assert_eq!(answer.unwrap()[0][0], present(OnlineValue::Int(1), 1));
    }
    let proxy = proxy.restore().await;
    for _ in 0..3 {
        let answer = store
            .multi_get(std::slice::from_ref(&t), &["e".into()])
            .await
            .expect("the first reads after the restart succeed");
        assert_eq!(answer[0][0], present(OnlineValue::Int(1), 1));
    }
    drop(proxy);
}

/// Many reads at once, each on its own pooled connection, each answered with its own
/// entities' values (no answer crosses to another request).
#[tokio::test]
async fn concurrent_reads_each_get_their_own_answer() {
    let guard = NamespaceGuard::new();
    let store = store_in(&guard.namespace).await;
    let tables = [table("a", "v"), table("b", "v")];
    for (f, t) in tables.iter().enumerate() {
        create(&store, t, None).await;
        let rows: Vec<OnlineRow> = (0..200)
            .map(|e| row(&format!("e{e}"), OnlineValue::Int(e * 10 + f as i64), 9))
            .collect();
        store.write(t, &rows).await.unwrap();
    }
    let reads = (0..64_i64).map(|r| {
        let store = &store;
        let tables = &tables;
        async move {
            let ids: Vec<String> = (0..r % 7 + 1)
                .map(|i| format!("e{}", (r * 3 + i) % 200))
                .collect();
            let answer = store.multi_get(tables, &ids).await.unwrap();
            for (id, values) in ids.iter().zip(&answer) {
                let e: i64 = id[1..].parse().unwrap();
                assert_eq!(
                    values,
                    &vec![
                        present(OnlineValue::Int(e * 10), 9),
                        present(OnlineValue::Int(e * 10 + 1), 9)
                    ],
                    "read {r}, {id}"
                );
            }
        }
    });
    futures::future::join_all(reads).await;
}

/// The registry's TTL-free field: set with a namespace's first table when it has no TTL,
/// removed for good by the first TTL table; while it is there writes skip `PERSIST`
/// (no hash can have an expiry), and once it is gone they remove expiries again.
#[tokio::test]
async fn writes_skip_persist_only_while_no_table_ever_had_a_ttl() {
    let guard = NamespaceGuard::new();
    let store = store_in(&guard.namespace).await;
    let mut con = redis_con();
    let registry = keys::registry_key(&guard.namespace);
    let ttl_free = |con: &mut redis::Connection| -> bool {
        redis::cmd("HEXISTS")
            .arg(&registry)
            .arg("#ttl-free")
            .query(con)
            .unwrap()
    };
    let key = keys::entity_key(&guard.namespace, "e");
    let expire_in_an_hour = |con: &mut redis::Connection| {
        let _: () = redis::cmd("PEXPIRE")
            .arg(&key)
            .arg(3_600_000)
            .query(con)
            .unwrap();
    };
    let pttl =
        |con: &mut redis::Connection| -> i64 { redis::cmd("PTTL").arg(&key).query(con).unwrap() };

    let (plain, other, timed) = (
        table("plain", "v"),
        table("other", "v"),
        table("timed", "v"),
    );
    create(&store, &plain, None).await;
    create(&store, &other, None).await;
    assert!(
        ttl_free(&mut con),
        "set with the first table, kept by the second"
    );
    store
        .write(&plain, &[row("e", OnlineValue::Int(1), 1)])
        .await
        .unwrap();
    // An expiry no write of this crate could have set: left alone proves no PERSIST ran.
    expire_in_an_hour(&mut con);
    store
        .write(&other, &[row("e", OnlineValue::Int(2), 1)])
        .await
        .unwrap();
    assert!(
        pttl(&mut con) > 0,
        "no PERSIST while the namespace is TTL-free"
    );

    create(&store, &timed, Some(Duration::from_secs(60))).await;
    assert!(!ttl_free(&mut con), "removed by the first TTL table");
    store
        .write(&plain, &[row("e", OnlineValue::Int(3), 2)])
        .await
        .unwrap();
    assert_eq!(pttl(&mut con), -1, "PERSIST again once a TTL table exists");
    store.delete_table(&timed).await.unwrap();
    create(&store, &table("later", "v"), None).await;
    assert!(!ttl_free(&mut con), "never set again");
    assert_eq!(
        store
            .multi_get(&[plain.clone(), other.clone()], &["e".into()])
            .await
            .unwrap()[0],
        vec![
            OnlineRead::Present {
                value: OnlineValue::Int(3),
                event_time: micros(2)
            },
            OnlineRead::Present {
                value: OnlineValue::Int(2),
                event_time: micros(1)
            }
        ]
    );

    // A namespace whose first table has a TTL never has the field.
    let guard2 = NamespaceGuard::new();
    let store2 = store_in(&guard2.namespace).await;
    create(&store2, &timed, Some(Duration::from_secs(60))).await;
    create(&store2, &plain, None).await;
    let exists: bool = redis::cmd("HEXISTS")
        .arg(keys::registry_key(&guard2.namespace))
        .arg("#ttl-free")
        .query(&mut con)
        .unwrap();
    assert!(!exists);
}

/// The write script guesses per row whether the field is new (`HSETNX`) or must be
/// compared first; every mix of new, older, newer and equal rows, over batches spanning
/// several script calls, must end exactly as the event-time rule says.
#[tokio::test]
async fn mixed_batches_of_new_and_existing_fields_follow_the_event_time_rule() {
    let guard = NamespaceGuard::new();
    let store = store_in(&guard.namespace).await;
    let t = table("mixed", "v");
    create(&store, &t, None).await;
    let entities: Vec<String> = (0..120).map(|e| format!("e{e}")).collect();
    // The model: entity → (event time, value) as stored.
    let mut model: std::collections::HashMap<String, (i64, i64)> = Default::default();
    let mut seed = 3_u64;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) % n
    };
    let mut value = 0_i64;
    for round in 0..6 {
        let rows: Vec<OnlineRow> = (0..250)
            .map(|_| {
                value += 1;
                let entity = &entities[next(entities.len() as u64) as usize];
                row(entity, OnlineValue::Int(value), next(8) as i64)
            })
            .collect();
        // Within a call: the newest row per entity, the first of equals.
        let mut winners: Vec<(String, (i64, i64))> = Vec::new();
        for r in &rows {
            let (time, OnlineValue::Int(v)) = (r.event_time.timestamp_micros(), &r.value) else {
                unreachable!()
            };
            match winners.iter_mut().find(|(e, _)| *e == r.entity) {
                Some((_, best)) if time > best.0 => *best = (time, *v),
                Some(_) => {}
                None => winners.push((r.entity.clone(), (time, *v))),
            }
        }
        let mut expected_written = 0;
        for (entity, candidate) in winners {
            match model.get(&entity) {
                Some(stored) if candidate.0 <= stored.0 => {}
                _ => {
                    model.insert(entity, candidate);
                    expected_written += 1;
                }
            }
        }
        let report = store.write(&t, &rows).await.unwrap();
        assert_eq!(report.written, expected_written, "round {round}");
        assert_eq!(report.written + report.skipped_older, rows.len() as u64);
        let answer = store
            .multi_get(std::slice::from_ref(&t), &entities)
            .await
            .unwrap();
        for (entity, read) in entities.iter().zip(&answer) {
            let expected = match model.get(entity) {
                Some((time, v)) => present(OnlineValue::Int(*v), *time),
                None => OnlineRead::Missing,
            };
            assert_eq!(read[0], expected, "round {round}, {entity}");
        }
    }
}
