//! Golden tests: every statement the generator makes for a set of cases, per dialect,
//! checked in under `tests/golden/<dialect>/<case>.sql` and parsed with the dialect's
//! parser (with placeholders and rendered inline). `QUIVER_UPDATE_GOLDEN=1` rewrites them.

mod common;

use std::path::PathBuf;

use common::*;
use quiver_sql::{
    latest_values, point_in_time_with, render_inline, transformation, Dialect, PitPlan, Statement,
};

fn check(d: &dyn Dialect, case: &str, sql: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(d.name())
        .join(format!("{case}.sql"));
    let text = format!("{sql}\n");
    if std::env::var("QUIVER_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with QUIVER_UPDATE_GOLDEN=1 to write it)",
            path.display()
        )
    });
    assert_eq!(
        text,
        expected,
        "{} differs from the generated SQL (QUIVER_UPDATE_GOLDEN=1 rewrites it)",
        path.display()
    );
}

fn check_statement(d: &dyn Dialect, case: &str, s: &Statement) {
    let placeholders = (0..s.params.len())
        .map(|i| format!("-- {}: {:?}", d.placeholder(i), s.params[i]))
        .collect::<Vec<_>>();
    let mut text = placeholders.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&s.sql);
    check(d, case, &text);
    parse_one(d, &s.sql);
    parse_one(d, &render_inline(d, s));
}

#[test]
fn training_sets() {
    let cases = [
        ("pit_basic", basic()),
        ("pit_full", full()),
        ("pit_untimed_label", untimed_label()),
    ];
    for d in dialects() {
        for (case, q) in &cases {
            for (suffix, plan) in [("", PitPlan::Best), ("_window", PitPlan::Window)] {
                let s = point_in_time_with(d.as_ref(), q, &resolve, plan).unwrap();
                check_statement(d.as_ref(), &format!("{case}{suffix}"), &s);
            }
        }
    }
}

#[test]
fn latest_values_per_entity() {
    for d in dialects() {
        for (case, q) in [
            ("latest_full", latest(false)),
            ("latest_since", latest(true)),
            ("latest_dimension", latest_dimension()),
        ] {
            let s = latest_values(d.as_ref(), &q, &resolve).unwrap();
            check_statement(d.as_ref(), case, &s);
        }
    }
}

#[test]
fn transformations() {
    for d in dialects() {
        let sql = transformation(d.as_ref(), &totals(), &resolve).unwrap();
        check(d.as_ref(), "transformation", &sql);
        parse_one(d.as_ref(), &sql);
    }
}
