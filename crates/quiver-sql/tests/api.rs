//! Output names, transformation placeholders and parameter rendering.

mod common;

use std::collections::HashSet;

use common::*;
use quiver_provider_sdk::{OutputRef, TableRef};
use quiver_sql::{
    latest_values, output_table_name, point_in_time, render_inline, transformation, BigQuery,
    Param, Postgres, Snowflake, SqlError,
};

fn out(kind: &str, name: &str, variant: &str) -> OutputRef {
    OutputRef {
        kind: kind.into(),
        name: name.into(),
        variant: variant.into(),
    }
}

#[test]
fn output_names_are_readable_stable_and_distinct() {
    assert_eq!(
        output_table_name(&out("training_set", "fraud", "v1"), 63),
        "qo_training_set_fraud_v1"
    );
    assert_eq!(
        output_table_name(&out("source", "fraud-detect", "V1"), 63),
        "qo_source_fraud-detect_V1"
    );
    let triples = [
        out("source", "a_b", "c"),
        out("source", "a", "b_c"),
        out("training_set", "a", "b"),
        out("training", "set_a", "b"),
        out("source", "a", "B"),
        out("source", "a", "b"),
        out("source", "a b", "c"),
        out("source", "a_b", "c"),
        out("source", &"n".repeat(80), "v1"),
        out("source", &"n".repeat(80), "v2"),
        out("source", "x", "0123456789abcdef"),
    ];
    let mut seen = HashSet::new();
    for (i, t) in triples.iter().enumerate() {
        let name = output_table_name(t, 63);
        assert!(name.len() <= 63, "{name}");
        assert_eq!(name, output_table_name(t, 63), "stable");
        let duplicate = triples[..i].contains(t);
        assert_eq!(!seen.insert(name.clone()), duplicate, "{t:?} -> {name}");
    }
    let long = output_table_name(&out("source", &"n".repeat(80), "v1"), 63);
    assert!(long.starts_with("qo_source_nnn"), "{long}");
}

#[test]
fn unknown_and_unterminated_placeholders_are_errors() {
    let mut t = totals();
    t.sql = "SELECT * FROM {{ missing:v1 }}".into();
    let err = transformation(&Postgres, &t, &resolve).unwrap_err();
    assert!(matches!(err, SqlError::Invalid(_)));
    assert!(err.to_string().contains("missing:v1"), "{err}");
    t.sql = "SELECT * FROM {{ orders:v1".into();
    assert!(transformation(&Postgres, &t, &resolve).is_err());
}

#[test]
fn placeholders_in_literals_and_comments_stay() {
    let sql = transformation(&Postgres, &totals(), &resolve).unwrap();
    assert!(sql.contains("FROM \"analytics\".\"orders\" o JOIN \"analytics\".\"users\" u"));
    assert!(sql.contains("/* not {{ here }} */"));
    assert!(sql.contains("'{{ orders:v1 }}'"));
    assert!(sql.contains("-- nor {{ there }}"));
    let mut t = totals();
    t.sql = "SELECT $$ {{ orders:v1 }} $$, 'it''s {{ users:v1 }}' FROM {{orders:v1}}".into();
    assert_eq!(
        transformation(&Postgres, &t, &resolve).unwrap(),
        "SELECT $$ {{ orders:v1 }} $$, 'it''s {{ users:v1 }}' FROM \"analytics\".\"orders\""
    );
    t.sql = r"SELECT 'a\' {{ users:v1 }}' FROM {{orders:v1}} # {{ x }}".into();
    assert_eq!(
        transformation(&BigQuery, &t, &resolve).unwrap(),
        r"SELECT 'a\' {{ users:v1 }}' FROM `analytics`.`orders` # {{ x }}"
    );
    t.inputs[0].1 = TableRef::Table("bad`name".into());
    assert!(transformation(&BigQuery, &t, &resolve).is_err());
}

#[test]
fn parameters_are_bound_in_placeholder_order() {
    // Snowflake's `?` is positional: lag bounds come before max_age bounds in the text.
    let q = full();
    let s = point_in_time(&Snowflake, &q, &resolve).unwrap();
    let marks = s.sql.matches('?').count();
    assert_eq!(marks, s.params.len(), "{}", s.sql);
    let lag = Param::Int(60_000_000);
    let max_age = Param::Int(3_600_000_000);
    let first_lag = s.params.iter().position(|p| *p == lag).unwrap();
    let first_age = s.params.iter().position(|p| *p == max_age).unwrap();
    assert!(first_lag < first_age, "{:?}", s.params);
    for d in dialects() {
        let s = point_in_time(d.as_ref(), &q, &resolve).unwrap();
        let inline = render_inline(d.as_ref(), &s);
        for i in 0..s.params.len() {
            let p = d.placeholder(i);
            if p != "?" {
                assert!(s.sql.contains(&p), "{}: {p}", d.name());
            }
        }
        assert!(inline.contains("60000000"), "{}: {inline}", d.name());
        assert!(!inline.contains("$1") && !inline.contains("@p0") && !inline.contains('?'));
    }
}

#[test]
fn since_is_a_bound_timestamp() {
    for d in dialects() {
        let s = latest_values(d.as_ref(), &latest(true), &resolve).unwrap();
        assert_eq!(
            s.params,
            vec![Param::Timestamp(
                chrono::DateTime::from_timestamp(1_704_067_210, 0).unwrap()
            )]
        );
        assert!(!s.sql.contains("2024"), "{}: no value pasted", d.name());
        assert!(render_inline(d.as_ref(), &s).contains("2024") || d.name() == "datafusion");
    }
}
