//! Online-store conformance cases: multi-get of many entities × features with exact
//! values of every type, missing keys, event-time monotonicity (across calls, within one
//! call, on equal times, and between racing writers), TTL, re-creating and deleting
//! tables, missing tables, and empty requests.
//!
//! Each case is a public function a provider can call on its own;
//! [`online_store_suite!`](crate::online_store_suite) expands to one `#[tokio::test]` per
//! case. Every case creates the tables it uses, so it runs on an empty store.
//!
//! Event times are built at microsecond precision, the finest every store keeps.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use quiver_provider_sdk::{
    OnlineRead, OnlineRow, OnlineStore, OnlineTable, OnlineTableRef, OnlineValue, ProviderError,
};

/// A store shared between tasks, as the racing-writers case needs.
pub type SharedOnlineStore = Arc<dyn OnlineStore>;

fn table_ref(feature: &str) -> OnlineTableRef {
    OnlineTableRef {
        feature: feature.to_string(),
        variant: "v1".to_string(),
    }
}

async fn create(store: &dyn OnlineStore, table: &OnlineTableRef, ttl: Option<Duration>) {
    store
        .create_table(&OnlineTable {
            table: table.clone(),
            ttl,
        })
        .await
        .unwrap_or_else(|e| panic!("creating online table {}: {e}", table.feature));
}

/// A fixed, TTL-free base time (2024-01-01T00:00:00Z) plus `micros`.
fn at(micros: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::microseconds(micros)
}

/// Now, truncated to microseconds, minus `ago`.
fn now_minus(ago: Duration) -> DateTime<Utc> {
    let now = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
    now - chrono::Duration::from_std(ago).unwrap()
}

fn row(entity: &str, value: OnlineValue, event_time: DateTime<Utc>) -> OnlineRow {
    OnlineRow {
        entity: entity.to_string(),
        value,
        event_time,
    }
}

fn entities(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Value equality that holds NaN equal to itself and tells `-0.0` from `0.0`: a store
/// must give back exactly the bits it was given.
fn same_value(a: &OnlineValue, b: &OnlineValue) -> bool {
    match (a, b) {
        (OnlineValue::Float(x), OnlineValue::Float(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

#[track_caller]
fn assert_present(read: &OnlineRead, value: &OnlineValue, event_time: DateTime<Utc>, what: &str) {
    match read {
        OnlineRead::Present {
            value: got,
            event_time: got_time,
        } => {
            assert!(
                same_value(got, value),
                "{what}: expected value {value:?}, got {got:?}"
            );
            assert_eq!(*got_time, event_time, "{what}: wrong event time");
        }
        other => panic!("{what}: expected Present({value:?} at {event_time}), got {other:?}"),
    }
}

async fn read_one(store: &dyn OnlineStore, table: &OnlineTableRef, entity: &str) -> OnlineRead {
    let mut answer = store
        .multi_get(std::slice::from_ref(table), &entities(&[entity]))
        .await
        .unwrap_or_else(|e| panic!("reading {entity} from {}: {e}", table.feature));
    assert_eq!(answer.len(), 1, "one entity asked, one row expected");
    assert_eq!(answer[0].len(), 1, "one table asked, one value expected");
    answer.remove(0).remove(0)
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: Result<T, ProviderError>, table: &str, what: &str) {
    match result {
        Err(ProviderError::NotFound(message)) => assert!(
            message.contains(table),
            "{what}: NotFound message should name the table `{table}`: {message}"
        ),
        other => panic!("{what}: expected NotFound naming `{table}`, got {other:?}"),
    }
}

/// The value entity `i` holds in feature table `k` of the many-values case: every
/// [`OnlineValue`] variant, with extremes, NaN, infinities, negative zero and NULLs.
fn many_value(k: usize, i: usize) -> OnlineValue {
    let n = i as i64;
    if i % 17 == 3 {
        return OnlineValue::Null;
    }
    match k {
        0 => OnlineValue::Bool(i % 4 < 2),
        1 => match i % 5 {
            0 => OnlineValue::Int(i64::MIN),
            1 => OnlineValue::Int(i64::MAX),
            2 => OnlineValue::Int(0),
            _ => OnlineValue::Int(-n * 1_000_003),
        },
        2 => match i % 7 {
            0 => OnlineValue::Float(f64::NAN),
            1 => OnlineValue::Float(f64::INFINITY),
            2 => OnlineValue::Float(f64::NEG_INFINITY),
            3 => OnlineValue::Float(-0.0),
            4 => OnlineValue::Float(f64::MIN_POSITIVE),
            5 => OnlineValue::Float(f64::MAX),
            _ => OnlineValue::Float(n as f64 / 3.0),
        },
        3 => match i % 4 {
            0 => OnlineValue::String(String::new()),
            1 => OnlineValue::String(format!("naïve café ✓ {i}")),
            2 => OnlineValue::String("x".repeat(1000 + i)),
            _ => OnlineValue::String(format!("quote ' \" \\ newline\n{i}")),
        },
        _ => match i % 3 {
            0 => OnlineValue::Timestamp(i64::MIN),
            1 => OnlineValue::Timestamp(i64::MAX),
            _ => OnlineValue::Timestamp(1_700_000_000_000_000 + n),
        },
    }
}

/// 200 entities × 5 feature tables (one per value type, NULLs mixed in) read in one
/// call, tables asked in an order different from creation, every value exact.
pub async fn multi_get_many_entities_and_features(store: &dyn OnlineStore) {
    const ENTITIES: usize = 200;
    let names = ["mg_bool", "mg_int", "mg_float", "mg_string", "mg_timestamp"];
    let tables: Vec<OnlineTableRef> = names.iter().map(|n| table_ref(n)).collect();
    let entity_names: Vec<String> = (0..ENTITIES).map(|i| format!("user-{i:04}")).collect();
    let event_time = |k: usize, i: usize| at((i * 1_000 + k) as i64 + 1);
    for (k, table) in tables.iter().enumerate() {
        create(store, table, None).await;
        let rows: Vec<OnlineRow> = entity_names
            .iter()
            .enumerate()
            .map(|(i, e)| row(e, many_value(k, i), event_time(k, i)))
            .collect();
        let report = store
            .write(table, &rows)
            .await
            .unwrap_or_else(|e| panic!("writing {}: {e}", table.feature));
        assert_eq!(
            (report.written, report.skipped_older),
            (ENTITIES as u64, 0),
            "writing {ENTITIES} new keys to {} must write them all",
            table.feature
        );
    }
    // Ask in reverse order, with the entities shuffled and one asked twice.
    let order: Vec<usize> = (0..tables.len()).rev().collect();
    let asked_tables: Vec<OnlineTableRef> = order.iter().map(|&k| tables[k].clone()).collect();
    let mut asked: Vec<usize> = (0..ENTITIES).map(|i| (i * 37) % ENTITIES).collect();
    asked.push(5);
    let asked_entities: Vec<String> = asked.iter().map(|&i| entity_names[i].clone()).collect();
    let answer = store
        .multi_get(&asked_tables, &asked_entities)
        .await
        .expect("multi-get of 200 entities × 5 features");
    assert_eq!(answer.len(), asked.len(), "one answer row per entity asked");
    for (row_idx, &i) in asked.iter().enumerate() {
        assert_eq!(
            answer[row_idx].len(),
            asked_tables.len(),
            "one value per table asked, for entity {}",
            entity_names[i]
        );
        for (col, &k) in order.iter().enumerate() {
            assert_present(
                &answer[row_idx][col],
                &many_value(k, i),
                event_time(k, i),
                &format!("{} of {}", names[k], entity_names[i]),
            );
        }
    }
}

/// Unknown entities read as `Missing`, for one table and for several tables where each
/// entity has values in only some of them; variants of one feature are separate tables.
pub async fn missing_keys(store: &dyn OnlineStore) {
    let first = table_ref("mk_first");
    let second = table_ref("mk_second");
    let other_variant = OnlineTableRef {
        feature: "mk_first".into(),
        variant: "v2".into(),
    };
    for t in [&first, &second, &other_variant] {
        create(store, t, None).await;
    }
    store
        .write(&first, &[row("a", OnlineValue::Int(1), at(1))])
        .await
        .expect("write a");
    store
        .write(&second, &[row("b", OnlineValue::Int(2), at(2))])
        .await
        .expect("write b");

    let one = store
        .multi_get(std::slice::from_ref(&first), &entities(&["a", "nobody"]))
        .await
        .expect("multi-get of one table");
    assert_eq!(one.len(), 2, "two entities asked");
    assert_present(&one[0][0], &OnlineValue::Int(1), at(1), "a in mk_first");
    assert_eq!(
        one[1][0],
        OnlineRead::Missing,
        "unknown entity must read as Missing"
    );

    let mixed = store
        .multi_get(
            &[first.clone(), second.clone(), other_variant.clone()],
            &entities(&["a", "b", "c"]),
        )
        .await
        .expect("multi-get of three tables");
    assert_present(&mixed[0][0], &OnlineValue::Int(1), at(1), "a in mk_first");
    assert_eq!(
        mixed[0][1],
        OnlineRead::Missing,
        "a was never written to mk_second"
    );
    assert_eq!(
        mixed[0][2],
        OnlineRead::Missing,
        "a was written to variant v1 only, not v2"
    );
    assert_eq!(
        mixed[1][0],
        OnlineRead::Missing,
        "b was never written to mk_first"
    );
    assert_present(&mixed[1][1], &OnlineValue::Int(2), at(2), "b in mk_second");
    assert_eq!(
        mixed[2],
        vec![OnlineRead::Missing; 3],
        "c was never written anywhere"
    );
}

/// An older write never replaces a newer value: across calls, within one call in either
/// order, and on equal event times (the value stored first is kept).
pub async fn older_writes_never_overwrite_newer(store: &dyn OnlineStore) {
    let table = table_ref("mono");
    create(store, &table, None).await;

    let report = store
        .write(
            &table,
            &[row("k", OnlineValue::String("new".into()), at(10))],
        )
        .await
        .expect("write newer");
    assert_eq!(
        (report.written, report.skipped_older),
        (1, 0),
        "a new key is written"
    );
    let report = store
        .write(
            &table,
            &[row("k", OnlineValue::String("old".into()), at(5))],
        )
        .await
        .expect("write older");
    assert_eq!(
        (report.written, report.skipped_older),
        (0, 1),
        "an older write must be skipped and reported as skipped"
    );
    assert_present(
        &read_one(store, &table, "k").await,
        &OnlineValue::String("new".into()),
        at(10),
        "after writing newer then older",
    );

    let report = store
        .write(
            &table,
            &[row("k", OnlineValue::String("same time".into()), at(10))],
        )
        .await
        .expect("write equal event time");
    assert_eq!(
        (report.written, report.skipped_older),
        (0, 1),
        "an equal event time must keep the stored value"
    );
    assert_present(
        &read_one(store, &table, "k").await,
        &OnlineValue::String("new".into()),
        at(10),
        "after an equal event time",
    );

    let report = store
        .write(
            &table,
            &[row("k", OnlineValue::String("newest".into()), at(11))],
        )
        .await
        .expect("write newest");
    assert_eq!(
        (report.written, report.skipped_older),
        (1, 0),
        "a newer write replaces"
    );

    let batch = [
        row("x", OnlineValue::Int(1), at(1)),
        row("x", OnlineValue::Int(3), at(3)),
        row("y", OnlineValue::Int(3), at(3)),
        row("y", OnlineValue::Int(1), at(1)),
        row("z", OnlineValue::Int(1), at(7)),
        row("z", OnlineValue::Int(2), at(7)),
    ];
    let report = store.write(&table, &batch).await.expect("write one batch");
    assert_eq!(
        report.written + report.skipped_older,
        batch.len() as u64,
        "every row is either written or skipped: {report:?}"
    );
    assert!(
        report.skipped_older >= 2,
        "at least the older x, y and equal z rows lose: {report:?}"
    );
    let answer = store
        .multi_get(std::slice::from_ref(&table), &entities(&["x", "y", "z"]))
        .await
        .expect("read the batch back");
    assert_present(
        &answer[0][0],
        &OnlineValue::Int(3),
        at(3),
        "x written old then new in one batch",
    );
    assert_present(
        &answer[1][0],
        &OnlineValue::Int(3),
        at(3),
        "y written new then old in one batch",
    );
    assert_present(
        &answer[2][0],
        &OnlineValue::Int(1),
        at(7),
        "z written twice at one event time in one batch keeps the first",
    );
}

/// Writers racing on the same keys, each interleaving older and newer event times, while
/// a reader watches: the final value is always the newest, and no read ever sees a key's
/// event time go backwards.
pub async fn concurrent_writers_keep_the_newest(store: SharedOnlineStore) {
    const WRITERS: i64 = 6;
    const ROUNDS: i64 = 15;
    const KEYS: usize = 40;
    let table = table_ref("race");
    create(store.as_ref(), &table, None).await;
    let keys: Vec<String> = (0..KEYS).map(|k| format!("key-{k}")).collect();
    let newest = (ROUNDS - 1) * WRITERS + WRITERS - 1;

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (store, table, keys) = (store.clone(), table.clone(), keys.clone());
        writers.push(tokio::spawn(async move {
            for r in 0..ROUNDS {
                // Half the writers go forward in time, half backward, so old and new
                // values for the same key are in flight at once.
                let round = if w % 2 == 0 { r } else { ROUNDS - 1 - r };
                let t = round * WRITERS + w;
                let rows: Vec<OnlineRow> = keys
                    .iter()
                    .map(|k| row(k, OnlineValue::Int(t), at(t)))
                    .collect();
                store
                    .write(&table, &rows)
                    .await
                    .unwrap_or_else(|e| panic!("writer {w} round {r}: {e}"));
                tokio::task::yield_now().await;
            }
        }));
    }
    let reader = {
        let (store, table, keys) = (store.clone(), table.clone(), keys.clone());
        tokio::spawn(async move {
            let mut seen = vec![i64::MIN; KEYS];
            for _ in 0..30 {
                let answer = store
                    .multi_get(std::slice::from_ref(&table), &keys)
                    .await
                    .expect("reading while writers race");
                for (k, read) in answer.iter().enumerate() {
                    if let OnlineRead::Present { value, event_time } = &read[0] {
                        let t = (*event_time - at(0)).num_microseconds().unwrap();
                        assert_eq!(
                            value,
                            &OnlineValue::Int(t),
                            "key-{k}: a value must come with its own event time"
                        );
                        assert!(
                            t >= seen[k],
                            "key-{k}: event time went backwards from {} to {t}",
                            seen[k]
                        );
                        seen[k] = t;
                    }
                }
                tokio::task::yield_now().await;
            }
        })
    };
    for writer in writers {
        writer.await.expect("writer task");
    }
    reader.await.expect("reader task");

    let answer = store
        .multi_get(std::slice::from_ref(&table), &keys)
        .await
        .expect("final read");
    for (k, read) in answer.iter().enumerate() {
        assert_present(
            &read[0],
            &OnlineValue::Int(newest),
            at(newest),
            &format!("key-{k} after racing writers"),
        );
    }
}

/// A value older than the table's TTL reads as `Expired` with its event time; a fresh
/// one as `Present`; a table without TTL never expires. Skipped without the capability.
pub async fn ttl_expires_old_values(store: &dyn OnlineStore) {
    if !store.capabilities().ttl {
        eprintln!("skipped: provider lacks ttl (ttl_expires_old_values)");
        return;
    }
    let with_ttl = table_ref("ttl_short");
    let without_ttl = table_ref("ttl_none");
    create(store, &with_ttl, Some(Duration::from_secs(60))).await;
    create(store, &without_ttl, None).await;
    let old = now_minus(Duration::from_secs(3600));
    let fresh = now_minus(Duration::ZERO);
    for table in [&with_ttl, &without_ttl] {
        store
            .write(
                table,
                &[
                    row("old", OnlineValue::Float(1.5), old),
                    row("fresh", OnlineValue::Float(2.5), fresh),
                ],
            )
            .await
            .unwrap_or_else(|e| panic!("writing {}: {e}", table.feature));
    }
    let answer = store
        .multi_get(
            &[with_ttl, without_ttl],
            &entities(&["old", "fresh", "never"]),
        )
        .await
        .expect("multi-get across TTL tables");
    assert_eq!(
        answer[0][0],
        OnlineRead::Expired { event_time: old },
        "a value an hour old in a 60 s TTL table must read as Expired with its event time"
    );
    assert_present(
        &answer[1][0],
        &OnlineValue::Float(2.5),
        fresh,
        "fresh value in a TTL table",
    );
    assert_eq!(
        answer[2][0],
        OnlineRead::Missing,
        "TTL does not turn Missing into Expired"
    );
    assert_present(
        &answer[0][1],
        &OnlineValue::Float(1.5),
        old,
        "old value in a table without TTL",
    );
    assert_present(
        &answer[1][1],
        &OnlineValue::Float(2.5),
        fresh,
        "fresh value in a table without TTL",
    );
}

/// Re-creating a table keeps its rows and updates its TTL (both ways).
pub async fn recreating_table_keeps_rows_and_updates_ttl(store: &dyn OnlineStore) {
    let table = table_ref("recreate");
    create(store, &table, None).await;
    let old = now_minus(Duration::from_secs(3600));
    store
        .write(&table, &[row("e", OnlineValue::Bool(true), old)])
        .await
        .expect("write");
    create(store, &table, None).await;
    assert_present(
        &read_one(store, &table, "e").await,
        &OnlineValue::Bool(true),
        old,
        "re-creating a table must keep its rows",
    );
    if !store.capabilities().ttl {
        eprintln!(
            "skipped: provider lacks ttl (recreating_table_keeps_rows_and_updates_ttl, TTL part)"
        );
        return;
    }
    create(store, &table, Some(Duration::from_secs(60))).await;
    assert_eq!(
        read_one(store, &table, "e").await,
        OnlineRead::Expired { event_time: old },
        "re-creating with a 60 s TTL must apply it to the kept hour-old row"
    );
    create(store, &table, None).await;
    assert_present(
        &read_one(store, &table, "e").await,
        &OnlineValue::Bool(true),
        old,
        "re-creating without TTL must remove the TTL",
    );
}

/// Deleting a table removes it and its rows (reads and writes answer NotFound), leaves
/// other tables alone, can be repeated, and a table re-created afterwards is empty.
pub async fn deleting_table_removes_it_and_its_rows(store: &dyn OnlineStore) {
    let doomed = table_ref("doomed");
    let kept = table_ref("kept");
    create(store, &doomed, None).await;
    create(store, &kept, None).await;
    for t in [&doomed, &kept] {
        store
            .write(t, &[row("e", OnlineValue::Int(7), at(1))])
            .await
            .expect("write");
    }
    store.delete_table(&doomed).await.expect("delete a table");
    assert_not_found(
        store
            .multi_get(std::slice::from_ref(&doomed), &entities(&["e"]))
            .await,
        "doomed",
        "reading a deleted table",
    );
    assert_not_found(
        store
            .write(&doomed, &[row("e", OnlineValue::Int(8), at(2))])
            .await,
        "doomed",
        "writing to a deleted table",
    );
    store
        .delete_table(&doomed)
        .await
        .expect("deleting a missing table is not an error");
    assert_present(
        &read_one(store, &kept, "e").await,
        &OnlineValue::Int(7),
        at(1),
        "deleting one table must not touch another",
    );
    create(store, &doomed, None).await;
    assert_eq!(
        read_one(store, &doomed, "e").await,
        OnlineRead::Missing,
        "a table re-created after delete must be empty"
    );
}

/// Writing to or reading from a table never created is NotFound, also when it is asked
/// for next to existing tables.
pub async fn missing_table_is_not_found(store: &dyn OnlineStore) {
    let exists = table_ref("exists");
    let ghost = table_ref("ghost");
    create(store, &exists, None).await;
    assert_not_found(
        store
            .write(&ghost, &[row("e", OnlineValue::Null, at(1))])
            .await,
        "ghost",
        "writing to a missing table",
    );
    assert_not_found(
        store
            .multi_get(&[exists.clone(), ghost.clone()], &entities(&["e"]))
            .await,
        "ghost",
        "reading an existing and a missing table together",
    );
    assert_not_found(
        store.multi_get(std::slice::from_ref(&ghost), &[]).await,
        "ghost",
        "reading a missing table for no entities",
    );
}

/// No entities: no rows. No tables: one empty row per entity. No rows written: nothing.
pub async fn empty_requests(store: &dyn OnlineStore) {
    let table = table_ref("empty");
    create(store, &table, None).await;
    let none = store
        .multi_get(std::slice::from_ref(&table), &[])
        .await
        .expect("multi-get for no entities");
    assert!(
        none.is_empty(),
        "no entities asked, no rows expected: {none:?}"
    );
    let no_tables = store
        .multi_get(&[], &entities(&["a", "b", "c"]))
        .await
        .expect("multi-get of no tables");
    assert_eq!(
        no_tables,
        vec![Vec::<OnlineRead>::new(); 3],
        "no tables asked: one empty row per entity"
    );
    let report = store.write(&table, &[]).await.expect("writing no rows");
    assert_eq!(
        (report.written, report.skipped_older),
        (0, 0),
        "writing no rows"
    );
}

/// Expands to one `#[tokio::test]` per online conformance case.
///
/// `$factory` is anything callable with no arguments (an `async fn`, or a closure
/// returning a future) that yields `(guard, store)`: `guard` is any value kept alive for
/// the whole test (a `tempfile::TempDir`, a container handle, `()`), and `store` is a
/// [`SharedOnlineStore`] (`Arc<dyn OnlineStore>`). It is called once per case, so every
/// case starts on a fresh, empty store. The calling crate needs `tokio` (with the
/// `macros` and `rt-multi-thread` features) among its dependencies.
///
/// ```ignore
/// async fn fresh_store() -> (tempfile::TempDir, SharedOnlineStore) { … }
/// quiver_provider_testkit::online_store_suite!(fresh_store);
/// ```
///
/// Capability-gated cases print `skipped: provider lacks …` (shown with `--nocapture`)
/// instead of failing.
#[macro_export]
macro_rules! online_store_suite {
    ($factory:expr) => {
        $crate::online_store_suite!(@case $factory, multi_get_many_entities_and_features);
        $crate::online_store_suite!(@case $factory, missing_keys);
        $crate::online_store_suite!(@case $factory, older_writes_never_overwrite_newer);
        $crate::online_store_suite!(@case $factory, ttl_expires_old_values);
        $crate::online_store_suite!(@case $factory, recreating_table_keeps_rows_and_updates_ttl);
        $crate::online_store_suite!(@case $factory, deleting_table_removes_it_and_its_rows);
        $crate::online_store_suite!(@case $factory, missing_table_is_not_found);
        $crate::online_store_suite!(@case $factory, empty_requests);

        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_writers_keep_the_newest() {
            let (_guard, store) = ($factory)().await;
            let store: $crate::online::SharedOnlineStore = store;
            $crate::online::concurrent_writers_keep_the_newest(store).await;
        }
    };
    (@case $factory:expr, $case:ident) => {
        #[::tokio::test]
        async fn $case() {
            let (_guard, store) = ($factory)().await;
            let store: $crate::online::SharedOnlineStore = store;
            $crate::online::$case(&*store).await;
        }
    };
}
