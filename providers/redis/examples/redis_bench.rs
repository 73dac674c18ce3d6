//! Times `multi_get` (1 × 50 and 100 × 50 features) against a raw pipelined `HMGET` of the
//! same keys on the same Redis, and prints the ratio: what the store adds on top of the
//! round trip (registry read, decoding, status).
//!
//! `cargo run --release -p quiver-provider-redis --example redis_bench` (Redis at
//! `QUIVER_TEST_REDIS_URL`, default redis://127.0.0.1:6379). Its keys are removed after.

use std::time::{Duration, Instant};

use chrono::Utc;
use quiver_provider_redis::{keys, RedisOnlineStore, RedisOptions};
use quiver_provider_sdk::{OnlineRow, OnlineStore, OnlineTable, OnlineTableRef, OnlineValue};

const ROUNDS: u32 = 500;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("QUIVER_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    let namespace = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let store = RedisOnlineStore::connect(RedisOptions {
        address: url.clone(),
        db: 0,
        password: None,
        namespace: namespace.clone(),
    })
    .await?;
    let tables: Vec<OnlineTableRef> = (0..50)
        .map(|f| OnlineTableRef {
            feature: format!("feature_{f}"),
            variant: "v1".into(),
        })
        .collect();
    let entities: Vec<String> = (0..100).map(|e| format!("user-{e}")).collect();
    for (f, table) in tables.iter().enumerate() {
        store
            .create_table(&OnlineTable {
                table: table.clone(),
                ttl: Some(Duration::from_secs(86_400)),
            })
            .await?;
        let rows: Vec<OnlineRow> = entities
            .iter()
            .map(|e| OnlineRow {
                entity: e.clone(),
                value: OnlineValue::Float(f as f64 * 1.5),
                event_time: Utc::now(),
            })
            .collect();
        store.write(table, &rows).await?;
    }

    let client = redis::Client::open(url.as_str())?;
    let mut raw = client.get_multiplexed_async_connection().await?;
    let fields: Vec<String> = tables
        .iter()
        .map(|t| keys::table_field(&t.feature, &t.variant))
        .collect();

    for n in [1_usize, 100] {
        let asked = &entities[..n];
        let started = Instant::now();
        for _ in 0..ROUNDS {
            store.multi_get(&tables, asked).await?;
        }
        let store_time = started.elapsed() / ROUNDS;

        let started = Instant::now();
        for _ in 0..ROUNDS {
            let mut pipe = redis::pipe();
            for e in asked {
                pipe.cmd("HMGET")
                    .arg(keys::entity_key(&namespace, e))
                    .arg(&fields);
            }
            let _: Vec<Vec<Option<Vec<u8>>>> = pipe.query_async(&mut raw).await?;
        }
        let raw_time = started.elapsed() / ROUNDS;
        println!(
            "{n:>3} entities × 50 features: multi_get {store_time:>10.1?}, raw HMGET pipeline {raw_time:>10.1?}, ratio {:.2}",
            store_time.as_secs_f64() / raw_time.as_secs_f64()
        );
    }

    // Clean up: the registry and every entity hash of the namespace.
    let mut doomed = vec![keys::registry_key(&namespace)];
    doomed.extend(entities.iter().map(|e| keys::entity_key(&namespace, e)));
    let _: u64 = redis::cmd("DEL").arg(&doomed).query_async(&mut raw).await?;
    Ok(())
}
