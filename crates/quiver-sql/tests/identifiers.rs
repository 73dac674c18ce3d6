//! Hostile identifiers, on every dialect: each is either refused with
//! `InvalidIdentifier` or quoted so the statement parses as one statement naming exactly
//! that identifier.

mod common;

use common::*;
use quiver_sql::{
    latest_values, point_in_time, point_in_time_with, render_inline, Dialect, PitPlan, SqlError,
    TableName,
};
use sqlparser::ast::{Expr, SelectItem, SetExpr, Statement};

fn hostile() -> Vec<String> {
    let mut names: Vec<String> = [
        "a\"b",
        "\"",
        "\"\"",
        "x\"; DROP TABLE users; --",
        "x`; DROP TABLE users; --",
        "a'b",
        "'; DROP TABLE users; --",
        "a;b",
        "a -- b",
        "a /* b */ c",
        "*/",
        "a\0b",
        "a\nb",
        "a\\b",
        "a\\",
        "ｓｅｌｅｃｔ",
        "sеlect",
        "ѕelect",
        "select",
        "FROM",
        "a.b",
        "$1",
        "?",
        "@p0",
        "{{ users:v1 }}",
        "",
        " ",
        "a b",
        "ünïcödé",
        "😀",
        "user_id",
        "CamelCase",
        "1abc",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    names.push("x".repeat(63));
    names.push("x".repeat(64));
    names.push("é".repeat(40));
    names.push("x".repeat(256));
    names.push("x".repeat(301));
    names
}

/// The one projected identifier of `SELECT <quoted> FROM t`.
fn projected(d: &dyn Dialect, quoted: &str) -> String {
    let sql = format!("SELECT {quoted} FROM t");
    let Statement::Query(query) = parse_one(d, &sql) else {
        panic!("{}: not a query: {sql}", d.name())
    };
    let SetExpr::Select(select) = *query.body else {
        panic!("{}: not a select: {sql}", d.name())
    };
    assert_eq!(
        select.projection.len(),
        1,
        "{}: one column: {sql}",
        d.name()
    );
    match &select.projection[0] {
        SelectItem::UnnamedExpr(Expr::Identifier(ident)) => ident.value.clone(),
        other => panic!("{}: not one identifier: {other:?} in {sql}", d.name()),
    }
}

#[test]
fn identifiers_are_refused_or_quoted_exactly() {
    for d in dialects() {
        for name in hostile() {
            match d.quote_identifier(&name) {
                Ok(quoted) => assert_eq!(
                    projected(d.as_ref(), &quoted),
                    name,
                    "{}: {name:?} quoted as {quoted}",
                    d.name()
                ),
                Err(SqlError::InvalidIdentifier { reason, .. }) => assert!(!reason.is_empty()),
                Err(other) => panic!("{}: {name:?}: unexpected {other:?}", d.name()),
            }
        }
    }
}

#[test]
fn refusals_follow_each_engine() {
    let refused = |d: &dyn Dialect, name: &str| {
        matches!(
            d.quote_identifier(name),
            Err(SqlError::InvalidIdentifier { .. })
        )
    };
    for d in dialects() {
        let d = d.as_ref();
        for name in ["", "a\0b", "a\nb"] {
            assert!(refused(d, name), "{}: {name:?} must be refused", d.name());
        }
        assert!(!refused(d, "user_id"), "{}", d.name());
    }
    assert!(refused(&quiver_sql::Postgres, &"x".repeat(64)));
    assert!(!refused(&quiver_sql::Postgres, &"x".repeat(63)));
    // 40 two-byte characters: 80 bytes, over Postgres's 63-byte limit.
    assert!(refused(&quiver_sql::Postgres, &"é".repeat(40)));
    assert!(!refused(&quiver_sql::Snowflake, &"é".repeat(40)));
    for name in [
        "a-b",
        "a\"b",
        "a`b",
        "ｓｅｌｅｃｔ",
        "sеlect",
        "a b",
        "1abc",
    ] {
        assert!(refused(&quiver_sql::BigQuery, name), "bigquery: {name:?}");
    }
    let err = quiver_sql::BigQuery.quote_identifier("a`b").unwrap_err();
    assert!(
        err.to_string().contains("letters, digits and '_'"),
        "clear message: {err}"
    );
}

#[test]
fn table_names_are_checked_per_part() {
    assert_eq!(
        TableName::parse("analytics.orders").unwrap(),
        TableName(vec!["analytics".into(), "orders".into()])
    );
    for bad in ["", "a..b", ".a", "a.", "a.\0"] {
        assert!(TableName::parse(bad).is_err(), "{bad:?}");
    }
    let table = TableName(vec!["my-project".into(), "ds".into(), "t".into()]);
    assert_eq!(
        quiver_sql::BigQuery.quote_table(&table).unwrap(),
        "`my-project`.`ds`.`t`"
    );
    let hostile = TableName(vec!["s\"; DROP TABLE x; --".into(), "t".into()]);
    assert_eq!(
        quiver_sql::Postgres.quote_table(&hostile).unwrap(),
        "\"s\"\"; DROP TABLE x; --\".\"t\""
    );
    assert!(quiver_sql::BigQuery.quote_table(&hostile).is_err());
}

/// A hostile name as every user-named column of a training set and a latest-values query:
/// the statements stay one statement, with and without inline parameters.
#[test]
fn hostile_names_in_whole_statements() {
    for d in dialects() {
        let d = d.as_ref();
        for name in hostile() {
            if d.quote_identifier(&name).is_err() || name.starts_with("__quiver_") {
                continue;
            }
            let mut q = full();
            q.label.entity_columns[0] = name.clone();
            for f in &mut q.features {
                f.keys[0] = key(&name, &name);
            }
            q.features[0].value_column = name.clone();
            let check = |sql: &str| {
                parse_one(d, sql);
            };
            for plan in [PitPlan::Best, PitPlan::Window] {
                let s = point_in_time_with(d, &q, &resolve, plan)
                    .unwrap_or_else(|e| panic!("{}: {name:?}: {e}", d.name()));
                check(&s.sql);
                check(&render_inline(d, &s));
            }
            let mut l = latest(true);
            l.entity_column = name.clone();
            let s = latest_values(d, &l, &resolve).unwrap();
            assert_eq!(s.params.len(), 1);
            check(&s.sql);
            let inline = render_inline(d, &s);
            check(&inline);
            assert!(
                inline.contains(&d.quote_identifier(&name).unwrap()),
                "{}: {name:?} kept in {inline}",
                d.name()
            );
        }
    }
}

#[test]
fn reserved_and_clashing_names_are_refused() {
    for d in dialects() {
        let d = d.as_ref();
        let mut q = basic();
        q.label.entity_columns[0] = "__quiver_row_id".into();
        assert!(matches!(
            point_in_time(d, &q, &resolve),
            Err(SqlError::Invalid(_) | SqlError::InvalidIdentifier { .. })
        ));
        let mut q = basic();
        q.features[0].name = "label".into();
        let err = point_in_time(d, &q, &resolve).unwrap_err();
        assert!(err.to_string().contains("`label` appears twice"), "{err}");
        let mut q = basic();
        q.features[0].keys.clear();
        assert!(matches!(
            point_in_time(d, &q, &resolve),
            Err(SqlError::Invalid(_))
        ));
    }
}
