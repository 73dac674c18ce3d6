//! The Postgres provider against the shared offline conformance suite, on a real server
//! (`QUIVER_TEST_POSTGRES_URL`, started through `scripts/services.sh` when absent), plus
//! what is specific to Postgres: type mapping, connection and credential errors, hostile
//! table names, source indexes and the atomic output swap.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, TimeUnit};
use quiver_provider_postgres::testing::{ensure_server, test_url, PostgresHarness};
use quiver_provider_postgres::PostgresOfflineStore;
use quiver_provider_sdk::{
    FeatureQuery, KeyPair, LabelQuery, OfflineStore, OutputRef, Provider, ProviderError, TableRef,
    TrainingSetQuery, Transformation,
};
use quiver_provider_testkit::offline::{
    batch, int_values, ints, read_all, text_values, utc, OfflineHarness,
};

quiver_provider_testkit::offline_store_suite!(PostgresHarness::new);

fn output(kind: &str, name: &str) -> OutputRef {
    OutputRef {
        kind: kind.into(),
        name: name.into(),
        variant: "v1".into(),
    }
}

fn training_set(label: TableRef, source: TableRef) -> TrainingSetQuery {
    TrainingSetQuery {
        label: LabelQuery {
            table: label,
            entity_columns: vec!["user_id".into()],
            value_column: "label".into(),
            output_column: "label".into(),
            timestamp_column: Some("ts".into()),
        },
        features: vec![FeatureQuery {
            name: "f".into(),
            table: source,
            keys: vec![KeyPair {
                label_column: "user_id".into(),
                feature_column: "user_id".into(),
            }],
            value_column: "v".into(),
            timestamp_column: Some("ts".into()),
            created_timestamp_column: None,
            max_age: None,
            lag: None,
        }],
        output: output("training_set", "ts"),
    }
}

#[tokio::test]
async fn postgres_types_map_to_arrow_types() {
    let h = PostgresHarness::new();
    let table = format!("\"{}\".typed", h.schema());
    h.execute(&format!(
        "CREATE TABLE {table} (i8 bigint, i4 integer, i2 smallint, f8 double precision, \
         f4 real, n numeric(10, 2), t text, vc varchar(10), b boolean, ts timestamp, \
         tz timestamptz, d date, by bytea, j jsonb)"
    ))
    .await;
    h.execute(&format!(
        "INSERT INTO {table} VALUES (1, 2, 3, 1.5, 2.5, 12.34, 'x', 'y', true, \
         '2024-01-01 00:00:10', '2024-01-01 00:00:10+02', '2024-01-02', '\\x0102', '{{\"a\": 1}}'), \
         (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
    ))
    .await;
    let store = h.postgres();
    let source = TableRef::Table(format!("{}.typed", h.schema()));
    let schema = store.schema(&source).await.unwrap();
    let types: Vec<(String, DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    let utc = Some("UTC".into());
    assert_eq!(
        types,
        vec![
            ("i8".into(), DataType::Int64),
            ("i4".into(), DataType::Int32),
            ("i2".into(), DataType::Int16),
            ("f8".into(), DataType::Float64),
            ("f4".into(), DataType::Float32),
            ("n".into(), DataType::Float64),
            ("t".into(), DataType::Utf8),
            ("vc".into(), DataType::Utf8),
            ("b".into(), DataType::Boolean),
            (
                "ts".into(),
                DataType::Timestamp(TimeUnit::Microsecond, None)
            ),
            ("tz".into(), DataType::Timestamp(TimeUnit::Microsecond, utc)),
            ("d".into(), DataType::Date32),
            ("by".into(), DataType::Binary),
            ("j".into(), DataType::Utf8),
        ]
    );
    let rows = read_all(store.as_ref(), &source).await;
    assert_eq!(rows.schema(), schema);
    assert_eq!(rows.num_rows(), 2);
    assert_eq!(int_values(&rows, "i2"), vec![Some(3), None]);
    let n: Vec<Option<f64>> = rows
        .column_by_name("n")
        .unwrap()
        .as_primitive::<Float64Type>()
        .iter()
        .collect();
    assert_eq!(n, vec![Some(12.34), None]);
    assert_eq!(
        text_values(&rows, "j"),
        vec![Some("{\"a\": 1}".into()), None]
    );
    // 2024-01-01T00:00:10 read as UTC; 00:00:10+02 is 22:00:10 UTC the day before.
    let micros = |column: &str| {
        let array = rows.column_by_name(column).unwrap();
        let array = arrow::compute::cast(array, &DataType::Int64).unwrap();
        array.as_primitive::<arrow::datatypes::Int64Type>().value(0)
    };
    assert_eq!(micros("ts"), 1_704_067_210_000_000);
    assert_eq!(micros("tz"), 1_704_067_210_000_000 - 2 * 3600 * 1_000_000);
    assert_eq!(
        rows.column_by_name("by")
            .unwrap()
            .as_binary::<i32>()
            .value(0),
        &[1, 2]
    );
    assert!(rows.column_by_name("d").unwrap().is_valid(0));
}

#[tokio::test]
async fn reads_stream_in_batches() {
    let h = PostgresHarness::new();
    let table = format!("\"{}\".big", h.schema());
    h.execute(&format!(
        "CREATE TABLE {table} AS SELECT g AS v FROM generate_series(1, 20000) AS g"
    ))
    .await;
    let store = h.postgres();
    let mut stream = store
        .read(&TableRef::Table(format!("{}.big", h.schema())))
        .await
        .unwrap();
    let mut sizes = Vec::new();
    use futures::TryStreamExt;
    while let Some(batch) = stream.try_next().await.unwrap() {
        sizes.push(batch.num_rows());
    }
    assert_eq!(sizes, vec![8192, 8192, 3616]);
}

#[tokio::test]
async fn an_unreachable_server_is_unreachable() {
    // Port 1 on the loopback: nothing listens, the connection is refused at once.
    let store =
        PostgresOfflineStore::connect_url("postgres://postgres@127.0.0.1:1/postgres", "quiver")
            .unwrap();
    let report = store.health().await;
    assert!(!report.healthy);
    assert!(report.message.contains("127.0.0.1:1"), "{}", report.message);
    match store.schema(&TableRef::Table("anything".into())).await {
        Err(ProviderError::Unreachable(message)) => {
            assert!(message.contains("127.0.0.1:1"), "{message}")
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(matches!(
        PostgresOfflineStore::connect_url("not a url", "quiver"),
        Err(ProviderError::InvalidConfig(_))
    ));
}

#[tokio::test]
async fn rejected_credentials_are_unauthorized() {
    ensure_server();
    // The test server trusts connections from 127.0.0.1 (no password is ever checked), so
    // the rejection forced here is an unknown role; a wrong password is rejected with the
    // same SQLSTATE class (28P01) where the server asks for one.
    let url = test_url();
    let without_user = url.split_once('@').map_or(url.as_str(), |(_, rest)| rest);
    let url = format!(
        "postgres://quiver_no_such_role_{}@{without_user}",
        std::process::id()
    );
    let store = PostgresOfflineStore::connect_url(&url, "quiver").unwrap();
    match store.schema(&TableRef::Table("anything".into())).await {
        Err(ProviderError::Unauthorized(message)) => {
            assert!(message.contains("quiver_no_such_role"), "{message}")
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    let report = store.health().await;
    assert!(!report.healthy, "{}", report.message);
}

#[tokio::test]
async fn hostile_table_names_are_quoted_and_touch_nothing_else() {
    let h = PostgresHarness::new();
    let victim = h
        .load("victim", batch(vec![("v", ints(&[Some(1), Some(2)]))]))
        .await;
    let TableRef::Table(victim_name) = &victim else {
        unreachable!("the harness loads tables")
    };
    let store = h.postgres();
    let hostile = [
        format!("{victim_name}\"; DROP TABLE {victim_name}; --"),
        format!("{victim_name}'; DROP TABLE {victim_name}; --"),
        format!("x\") AS y; DROP SCHEMA {} CASCADE; --", h.schema()),
    ];
    // Each is quoted as (dotted) identifiers: not found, or refused as a name Postgres
    // cannot resolve (more than schema.table).
    let refused = |err: &Option<ProviderError>| {
        matches!(
            err,
            Some(ProviderError::NotFound(_) | ProviderError::InvalidQuery(_))
        )
    };
    for name in &hostile {
        let table = TableRef::Table(name.clone());
        let err = store.schema(&table).await.err();
        assert!(refused(&err), "{name}: {err:?}");
        let err = store.read(&table).await.err();
        assert!(refused(&err), "{name}: {err:?}");
        let err = store
            .build_training_set(&training_set(victim.clone(), table.clone()))
            .await
            .err();
        assert!(refused(&err), "{name}: {err:?}");
    }
    let err = store.schema(&TableRef::Table("a\0b".into())).await.err();
    assert!(
        matches!(err, Some(ProviderError::InvalidQuery(_))),
        "{err:?}"
    );
    let err = store
        .schema(&TableRef::File {
            path: "x.parquet".into(),
            format: quiver_provider_sdk::FileFormat::Parquet,
            schema: None,
        })
        .await
        .err();
    assert!(
        matches!(err, Some(ProviderError::Unsupported(_))),
        "{err:?}"
    );
    // A table whose name really holds quotes and a semicolon is read like any other.
    h.execute(&format!(
        "CREATE TABLE \"{}\".\"we\"\"ird; name\" AS SELECT 7 AS v",
        h.schema()
    ))
    .await;
    let weird = TableRef::Table(format!("{}.we\"ird; name", h.schema()));
    assert_eq!(
        int_values(&read_all(store.as_ref(), &weird).await, "v"),
        vec![Some(7)]
    );
    assert_eq!(
        int_values(&read_all(store.as_ref(), &victim).await, "v"),
        vec![Some(1), Some(2)]
    );
}

#[tokio::test]
async fn owned_feature_sources_get_an_index_and_views_do_not() {
    let h = PostgresHarness::new();
    let labels = h
        .load(
            "labels",
            batch(vec![
                ("user_id", ints(&[Some(1)])),
                ("ts", utc(&[Some(10)])),
                ("label", ints(&[Some(1)])),
            ]),
        )
        .await;
    let source = h
        .load(
            "source",
            batch(vec![
                ("user_id", ints(&[Some(1)])),
                ("ts", utc(&[Some(5)])),
                ("v", ints(&[Some(42)])),
            ]),
        )
        .await;
    let TableRef::Table(source_name) = &source else {
        unreachable!("the harness loads tables")
    };
    let source_table = source_name.split('.').nth(1).unwrap().to_string();
    h.execute(&format!(
        "CREATE VIEW \"{schema}\".source_view AS SELECT * FROM \"{schema}\".\"{source_table}\"",
        schema = h.schema()
    ))
    .await;
    let store = h.postgres();
    let index_definitions = || async {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT tablename::text, indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY 1",
        )
        .bind(h.schema())
        .fetch_all(store.pool())
        .await
        .unwrap();
        rows
    };

    let view = TableRef::Table(format!("{}.source_view", h.schema()));
    let mut query = training_set(labels.clone(), view);
    assert_eq!(store.build_training_set(&query).await.unwrap(), 1);
    assert!(
        index_definitions().await.is_empty(),
        "views are never indexed"
    );

    query.features[0].table = source.clone();
    for _ in 0..2 {
        assert_eq!(store.build_training_set(&query).await.unwrap(), 1);
    }
    let indexes = index_definitions().await;
    assert_eq!(indexes.len(), 1, "one index, created once: {indexes:?}");
    assert_eq!(indexes[0].0, source_table);
    assert!(
        indexes[0].1.contains("quiver_") && indexes[0].1.contains("(user_id, ts)"),
        "{indexes:?}"
    );
    let out = read_all(store.as_ref(), &TableRef::Output(query.output.clone())).await;
    assert_eq!(int_values(&out, "f"), vec![Some(42)]);
}

#[tokio::test]
async fn a_run_failing_while_executing_keeps_the_previous_output() {
    let h = PostgresHarness::new();
    let numbers = h
        .load("numbers", batch(vec![("v", ints(&[Some(2), Some(0)]))]))
        .await;
    let store: Arc<dyn OfflineStore> = h.store();
    let transformation = |sql: &str| Transformation {
        sql: sql.into(),
        inputs: vec![("numbers".into(), numbers.clone())],
        output: output("source", "inverse"),
    };
    let good = transformation("SELECT v FROM {{ numbers }} ORDER BY v");
    assert_eq!(store.run_transformation(&good).await.unwrap(), 2);
    // Plans fine, fails on the second row: the scratch table is rolled back.
    let failing = transformation("SELECT 10 / v AS inverse FROM {{ numbers }}");
    let err = store.run_transformation(&failing).await.err();
    match err {
        Some(ProviderError::InvalidQuery(message)) => {
            assert!(message.contains("division by zero"), "{message}")
        }
        other => panic!("expected InvalidQuery, got {other:?}"),
    }
    let out = read_all(store.as_ref(), &TableRef::Output(good.output.clone())).await;
    assert_eq!(int_values(&out, "v"), vec![Some(0), Some(2)]);
    let scratch: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE 'quiver_tmp_%'",
    )
    .bind(h.schema())
    .fetch_one(h.postgres().pool())
    .await
    .unwrap();
    assert_eq!(scratch, 0, "no scratch table is left behind");
    // Statements other than queries cannot be smuggled into CREATE TABLE … AS.
    let smuggled = transformation("SELECT 1 AS v; DROP TABLE {{ numbers }}");
    assert!(store.run_transformation(&smuggled).await.is_err());
    assert_eq!(read_all(store.as_ref(), &numbers).await.num_rows(), 2);
}
