//! The Snowflake provider against fakesnow over HTTP: the shared offline conformance suite,
//! plus what is specific to Snowflake — error mapping, identifier quoting, secrets.

use std::sync::Arc;

use quiver_provider_sdk::{
    OfflineStore, OutputRef, Provider, ProviderError, ProviderFactory, ProviderHandle, TableRef,
    Transformation,
};
use quiver_provider_snowflake::testing::{fakesnow_config, SnowflakeHarness};
use quiver_provider_snowflake::{SnowflakeConfig, SnowflakeFactory, SnowflakeOfflineStore};
use quiver_provider_testkit::offline::{
    batch, int_values, ints, read_all, text_values, texts, OfflineHarness,
};

quiver_provider_testkit::offline_store_suite!(SnowflakeHarness::new);

const PASSWORD: &str = "s3cret-never-shown";

fn config_with_password(host: &str) -> SnowflakeConfig {
    let mut config = fakesnow_config("QUIVER_UNUSED");
    config.password = Some(PASSWORD.into());
    config.host = Some(host.into());
    config
}

#[tokio::test]
async fn health_check_runs_select_1() {
    let h = SnowflakeHarness::new();
    let report = h.snowflake_store().health().await;
    assert!(report.healthy, "{}", report.message);
}

#[tokio::test]
async fn unreachable_host_is_unreachable_and_unhealthy() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let store = SnowflakeOfflineStore::new(config_with_password("http://127.0.0.1:1")).unwrap();
    let err = store
        .schema(&TableRef::Table("anything".into()))
        .await
        .err();
    assert!(
        matches!(err, Some(ProviderError::Unreachable(_))),
        "{err:?}"
    );
    let message = err.unwrap().to_string();
    assert!(!message.contains(PASSWORD), "{message}");
    let report = store.health().await;
    assert!(!report.healthy);
    assert!(!report.message.contains(PASSWORD), "{}", report.message);
}

#[tokio::test]
async fn secrets_are_absent_from_debug_output() {
    let mut config = config_with_password("http://127.0.0.1:1");
    config.private_key = Some("-----BEGIN PRIVATE KEY-----xyz".into());
    let shown = format!("{config:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(!shown.contains("BEGIN PRIVATE KEY"), "{shown}");
    let store = SnowflakeOfflineStore::new(config).unwrap();
    let shown = format!("{store:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
}

#[tokio::test]
async fn factory_reads_env_secrets_and_requires_a_password() {
    let host = quiver_provider_snowflake::testing::ensure_fakesnow();
    std::env::set_var("QUIVER_TEST_SNOWFLAKE_PASSWORD", PASSWORD);
    let config = serde_json::json!({
        "type": "snowflake",
        "account": "quiver",
        "user": "quiver",
        "password": {"env": "QUIVER_TEST_SNOWFLAKE_PASSWORD"},
        "warehouse": "WH",
        "database": "QUIVER_FACTORY",
        "schema": "PUBLIC",
        "host": host,
    });
    let handle = SnowflakeFactory.build(&config).await.unwrap();
    let ProviderHandle::Offline(store) = handle else {
        panic!("the Snowflake provider is an offline store")
    };
    let report = store.health().await;
    assert!(report.healthy, "{}", report.message);

    let mut missing = config.clone();
    missing["password"] = serde_json::json!({"env": "QUIVER_TEST_NO_SUCH_VARIABLE"});
    let err = SnowflakeFactory.build(&missing).await.err();
    assert!(
        matches!(err, Some(ProviderError::InvalidConfig(_))),
        "{err:?}"
    );

    let mut key_only = config;
    key_only.as_object_mut().unwrap().remove("password");
    key_only["private_key"] = serde_json::json!("-----BEGIN PRIVATE KEY-----");
    match SnowflakeFactory.build(&key_only).await {
        Err(ProviderError::InvalidConfig(message)) => {
            assert!(!message.contains("BEGIN PRIVATE KEY"), "{message}")
        }
        Err(other) => panic!("expected InvalidConfig, got {other:?}"),
        Ok(_) => panic!("key-pair login is not implemented and must be refused"),
    }
}

#[tokio::test]
async fn files_are_unsupported() {
    let h = SnowflakeHarness::new();
    let file = TableRef::File {
        path: "events.parquet".into(),
        format: quiver_provider_sdk::FileFormat::Parquet,
        schema: None,
    };
    let err = h.store().schema(&file).await.err();
    assert!(
        matches!(err, Some(ProviderError::Unsupported(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn hostile_identifiers_are_quoted_or_refused() {
    let h = SnowflakeHarness::new();
    let store = h.store();
    // A table and a column whose names would end the identifier and inject SQL if they
    // were not quoted: they round-trip as plain names.
    let hostile_table = "t\"; DROP TABLE victims; --";
    let hostile_column = "c\" FROM x; --";
    h.load("victims", batch(vec![("v", ints(&[Some(1)]))]))
        .await;
    let table = h
        .load(
            hostile_table,
            batch(vec![
                (hostile_column, ints(&[Some(7)])),
                ("name", texts(&[Some("it's \\ fine")])),
            ]),
        )
        .await;
    let schema = store.schema(&table).await.unwrap();
    assert!(schema.field_with_name(hostile_column).is_ok(), "{schema:?}");
    let rows = read_all(store.as_ref(), &table).await;
    assert_eq!(int_values(&rows, hostile_column), vec![Some(7)]);
    assert_eq!(
        text_values(&rows, "name"),
        vec![Some("it's \\ fine".to_string())]
    );
    let victims = read_all(store.as_ref(), &TableRef::Table("victims".into())).await;
    assert_eq!(victims.num_rows(), 1, "nothing was dropped");

    // Control characters cannot be quoted safely and are refused before any SQL runs.
    let err = store
        .schema(&TableRef::Table("bad\u{0}name".into()))
        .await
        .err();
    assert!(
        matches!(err, Some(ProviderError::InvalidQuery(_))),
        "{err:?}"
    );

    // Output names from hostile resource names are quoted too.
    let t = Transformation {
        sql: "SELECT v FROM {{ victims }}".into(),
        inputs: vec![("victims".into(), TableRef::Table("victims".into()))],
        output: OutputRef {
            kind: "source".into(),
            name: "x\"; DROP TABLE victims; --".into(),
            variant: "v1".into(),
        },
    };
    assert_eq!(store.run_transformation(&t).await.unwrap(), 1);
    let out = read_all(store.as_ref(), &TableRef::Output(t.output)).await;
    assert_eq!(int_values(&out, "v"), vec![Some(1)]);
    let victims = read_all(store.as_ref(), &TableRef::Table("victims".into())).await;
    assert_eq!(victims.num_rows(), 1, "nothing was dropped");
}

#[tokio::test]
async fn snowflake_types_map_to_arrow() {
    use arrow::datatypes::{DataType, TimeUnit};
    let h = SnowflakeHarness::new();
    h.execute(
        "CREATE TABLE \"typed\" (\"n\" NUMBER(38,0), \"i\" INTEGER, \"f\" FLOAT, \"s\" VARCHAR, \
         \"b\" BOOLEAN, \"ntz\" TIMESTAMP_NTZ, \"tz\" TIMESTAMP_TZ, \"d\" DATE, \"bin\" BINARY)",
    )
    .await;
    h.execute(
        "INSERT INTO \"typed\" VALUES (1, 2, 1.5, 'x', TRUE, '2024-01-01 00:00:01.5', \
         '2024-01-01 00:00:02+00:00', '2024-01-03', TO_BINARY('ABCD', 'HEX')), \
         (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    )
    .await;
    let table = TableRef::Table("typed".into());
    let schema = h.store().schema(&table).await.unwrap();
    let types: Vec<DataType> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert_eq!(
        types,
        vec![
            DataType::Int64,
            DataType::Int64,
            DataType::Float64,
            DataType::Utf8,
            DataType::Boolean,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            DataType::Date32,
            DataType::Binary,
        ]
    );
    let rows = read_all(h.store().as_ref(), &table).await;
    assert_eq!(rows.num_rows(), 2);
    for column in rows.columns() {
        assert!(column.is_null(1), "NULLs stay NULL: {column:?}");
    }
    let ntz = rows
        .column_by_name("ntz")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
        .unwrap();
    assert_eq!(ntz.value(0), 1_704_067_201_500_000);
    let tz = rows
        .column_by_name("tz")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
        .unwrap();
    assert_eq!(tz.value(0), 1_704_067_202_000_000);
}

#[tokio::test]
async fn server_errors_keep_the_provider_message() {
    let h = SnowflakeHarness::new();
    let err = h
        .store()
        .read(&TableRef::Table("no_such_table".into()))
        .await
        .err();
    match err {
        Some(ProviderError::NotFound(message)) => {
            assert!(message.contains("002003"), "{message}");
            assert!(
                message.to_lowercase().contains("no_such_table"),
                "{message}"
            );
        }
        other => panic!("expected NotFound, got {:?}", other.map(|e| e.to_string())),
    }
}

#[tokio::test]
async fn capabilities_are_declared_honestly() {
    let h = SnowflakeHarness::new();
    let store: Arc<dyn OfflineStore> = h.store();
    assert!(store.capabilities().training_sets);
    assert!(!store.capabilities().files);
}
