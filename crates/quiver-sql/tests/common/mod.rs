//! Shared test inputs: the four dialects, a resolver, and training-set queries that
//! exercise every branch of the generator.

#![allow(dead_code)]

use std::time::Duration;

use quiver_provider_sdk::{
    FeatureQuery, KeyPair, LabelQuery, LatestValuesQuery, OutputRef, TableRef, TrainingSetQuery,
    Transformation,
};
use quiver_sql::{BigQuery, DataFusion, Dialect, Postgres, Snowflake, SqlError, TableName};

pub fn dialects() -> Vec<Box<dyn Dialect>> {
    vec![
        Box::new(Postgres),
        Box::new(Snowflake),
        Box::new(BigQuery),
        Box::new(DataFusion),
    ]
}

/// Tables are `analytics.<name>`; outputs by their physical name.
pub fn resolve(table: &TableRef) -> Result<TableName, SqlError> {
    match table {
        TableRef::Table(name) => TableName::parse(&format!("analytics.{name}")),
        TableRef::Output(output) => Ok(TableName(vec![
            "analytics".into(),
            quiver_sql::output_table_name(output, 63),
        ])),
        TableRef::File { path, .. } => Err(SqlError::Unsupported(format!("file `{path}`"))),
    }
}

pub fn key(label: &str, feature: &str) -> KeyPair {
    KeyPair {
        label_column: label.into(),
        feature_column: feature.into(),
    }
}

pub fn feature(name: &str, table: &str, value: &str) -> FeatureQuery {
    FeatureQuery {
        name: name.into(),
        table: TableRef::Table(table.into()),
        keys: vec![key("user_id", "user_id")],
        value_column: value.into(),
        timestamp_column: Some("ts".into()),
        created_timestamp_column: None,
        max_age: None,
        lag: None,
    }
}

pub fn label(timed: bool) -> LabelQuery {
    LabelQuery {
        table: TableRef::Table("labels".into()),
        entity_columns: vec!["user_id".into()],
        value_column: "is_fraud".into(),
        output_column: "label".into(),
        timestamp_column: timed.then(|| "ts".into()),
    }
}

pub fn output(name: &str) -> OutputRef {
    OutputRef {
        kind: "training_set".into(),
        name: name.into(),
        variant: "v1".into(),
    }
}

/// One timed feature, nothing else.
pub fn basic() -> TrainingSetQuery {
    TrainingSetQuery {
        label: label(true),
        features: vec![feature("amount_7d", "user_features", "amount_7d")],
        output: output("basic"),
    }
}

/// Every branch: lag, max_age, created_ts, a dimension, two keys, two features from one
/// source.
pub fn full() -> TrainingSetQuery {
    let mut lagged = feature("amount_7d", "user_features", "amount_7d");
    lagged.created_timestamp_column = Some("created_at".into());
    lagged.lag = Some(Duration::from_secs(60));
    lagged.max_age = Some(Duration::from_secs(3600));
    let mut aged = feature("count_7d", "user_features", "count_7d");
    aged.max_age = Some(Duration::from_millis(1500));
    let mut dimension = feature("country", "users", "country");
    dimension.timestamp_column = None;
    let mut pair = feature("pair_count", "user_merchant", "n");
    pair.keys = vec![key("user_id", "user_id"), key("merchant_id", "merchant")];
    pair.lag = Some(Duration::from_micros(1));
    let mut label = label(true);
    label.entity_columns.push("merchant_id".into());
    TrainingSetQuery {
        label,
        features: vec![lagged, aged, dimension, pair],
        output: output("full"),
    }
}

/// [`full`] with a label without timestamp.
pub fn untimed_label() -> TrainingSetQuery {
    let mut q = full();
    q.label.timestamp_column = None;
    q.output = output("untimed");
    q
}

pub fn latest(since: bool) -> LatestValuesQuery {
    LatestValuesQuery {
        table: TableRef::Table("events".into()),
        entity_column: "user_id".into(),
        value_column: "v".into(),
        timestamp_column: Some("ts".into()),
        created_timestamp_column: Some("created".into()),
        since: since.then(|| chrono::DateTime::from_timestamp(1_704_067_210, 0).unwrap()),
    }
}

pub fn latest_dimension() -> LatestValuesQuery {
    LatestValuesQuery {
        timestamp_column: None,
        created_timestamp_column: None,
        ..latest(false)
    }
}

pub fn totals() -> Transformation {
    Transformation {
        sql: "SELECT u.name, SUM(o.amount) AS total /* not {{ here }} */ \
              FROM {{ orders:v1 }} o JOIN {{users:v1}} u ON o.user_id = u.user_id \
              WHERE u.note <> '{{ orders:v1 }}' -- nor {{ there }}\n\
              GROUP BY u.name"
            .into(),
        inputs: vec![
            ("orders:v1".into(), TableRef::Table("orders".into())),
            ("users:v1".into(), TableRef::Table("users".into())),
        ],
        output: OutputRef {
            kind: "source".into(),
            name: "totals".into(),
            variant: "v1".into(),
        },
    }
}

/// Parses `sql` with the dialect's parser; exactly one statement.
pub fn parse_one(d: &dyn Dialect, sql: &str) -> sqlparser::ast::Statement {
    let parsed = sqlparser::parser::Parser::parse_sql(d.parser_dialect().as_ref(), sql)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}\n{sql}", d.name()));
    assert_eq!(parsed.len(), 1, "{}: one statement\n{sql}", d.name());
    parsed.into_iter().next().unwrap()
}
