//! Offline-store conformance cases: point-in-time training sets (hand-made cases with
//! written-out expectations, and a randomized property case over many seeds), each
//! checked row for row against [`crate::reference`]; transformations; latest values for
//! materialization; and bad inputs.
//!
//! A provider's tests implement [`OfflineHarness`] and expand
//! [`offline_store_suite!`](crate::offline_store_suite) with a factory for it:
//!
//! ```ignore
//! quiver_provider_testkit::offline_store_suite!(|| MyHarness::new());
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampSecondArray,
};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Int64Type};
use arrow_array::RecordBatch;
use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use futures::TryStreamExt;
use quiver_provider_sdk::offline::latest_columns;
use quiver_provider_sdk::{
    FeatureQuery, FileFormat, KeyPair, LabelQuery, LatestValuesQuery, OfflineCapabilities,
    OfflineStore, OutputRef, ProviderError, TableRef, TrainingSetOrder, TrainingSetQuery,
    Transformation,
};

use crate::reference::{self, Cell};

/// What a provider's tests supply: a place to put input tables, and the store under test.
#[async_trait]
pub trait OfflineHarness: Send + Sync {
    /// Put `batch` where the store can read it under `name`, and say how to refer to it.
    async fn load(&self, name: &str, batch: RecordBatch) -> TableRef;

    /// The store under test, reading what [`load`](Self::load) wrote.
    fn store(&self) -> Arc<dyn OfflineStore>;

    /// A table that does not exist (a file by default).
    fn missing(&self, name: &str) -> TableRef {
        TableRef::File {
            path: format!("{name}.parquet"),
            format: FileFormat::Parquet,
            schema: None,
        }
    }
}

/// Expands to one `#[tokio::test]` per offline case, inside a module
/// `offline_conformance`, for the harness `$harness_factory()` builds (a fresh one per
/// test). The calling crate needs `tokio` (with `macros`) among its dev-dependencies.
#[macro_export]
macro_rules! offline_store_suite {
    ($harness_factory:expr) => {
        $crate::offline_store_suite!(@cases $harness_factory;
            exact_timestamp_equality,
            feature_rows_after_label_time,
            ties_broken_by_created_ts,
            ties_without_created_ts_go_to_greatest_value,
            max_age,
            lag,
            entities_without_rows,
            labels_before_any_feature_row,
            duplicate_label_rows,
            multi_entity_labels,
            null_feature_values,
            features_without_timestamp,
            label_without_timestamp,
            many_features_from_one_source,
            features_from_several_sources,
            naive_and_utc_timestamps,
            int_and_string_entity_keys,
            training_set_outputs_are_variant_keyed,
            randomized_against_reference,
            transformation_over_two_inputs,
            transformation_rerun_replaces_output,
            transformation_bad_sql_keeps_previous_output,
            latest_values_full,
            latest_values_since,
            missing_source_is_not_found,
            missing_column_is_not_found,
            timestamp_of_wrong_type_is_invalid,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        #[allow(non_snake_case)]
        mod offline_conformance {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let harness = ($factory)();
                    $crate::offline::$case(&harness).await;
                }
            )*
        }
    };
}

/// Number of seeds [`randomized_against_reference`] runs.
pub const RANDOM_SEEDS: u64 = 30;

/// 2024-01-01T00:00:00Z: test timestamps are seconds after it.
const T0: i64 = 1_704_067_200;

fn micros(secs: &[Option<i64>]) -> Vec<Option<i64>> {
    secs.iter()
        .map(|s| s.map(|s| (T0 + s) * 1_000_000))
        .collect()
}

/// Timestamp(Microsecond, "UTC"), `secs` after 2024-01-01.
pub fn utc(secs: &[Option<i64>]) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(micros(secs)).with_timezone("UTC"))
}

/// Timestamp(Microsecond) without a time zone (read as UTC).
pub fn naive(secs: &[Option<i64>]) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(micros(secs)))
}

/// Timestamp(Millisecond) without a time zone (read as UTC).
pub fn naive_millis(secs: &[Option<i64>]) -> ArrayRef {
    let values: Vec<Option<i64>> = secs.iter().map(|s| s.map(|s| (T0 + s) * 1000)).collect();
    Arc::new(TimestampMillisecondArray::from(values))
}

pub fn ints(values: &[Option<i64>]) -> ArrayRef {
    Arc::new(Int64Array::from(values.to_vec()))
}

pub fn texts(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

pub fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).expect("test batch")
}

fn key(label_column: &str, feature_column: &str) -> KeyPair {
    KeyPair {
        label_column: label_column.into(),
        feature_column: feature_column.into(),
    }
}

/// A label keyed by `user_id`, timed by `ts`, valued by `label`.
fn label(table: TableRef) -> LabelQuery {
    LabelQuery {
        table,
        entity_columns: vec!["user_id".into()],
        value_column: "label".into(),
        output_column: "label".into(),
        timestamp_column: Some("ts".into()),
    }
}

/// A feature keyed by `user_id`, timed by `ts`.
fn feature(name: &str, table: &TableRef, value_column: &str) -> FeatureQuery {
    FeatureQuery {
        name: name.into(),
        table: table.clone(),
        keys: vec![key("user_id", "user_id")],
        value_column: value_column.into(),
        timestamp_column: Some("ts".into()),
        created_timestamp_column: None,
        max_age: None,
        lag: None,
    }
}

fn output(kind: &str, name: &str, variant: &str) -> OutputRef {
    OutputRef {
        kind: kind.into(),
        name: name.into(),
        variant: variant.into(),
    }
}

fn query(name: &str, label: LabelQuery, features: Vec<FeatureQuery>) -> TrainingSetQuery {
    TrainingSetQuery {
        label,
        features,
        output: output("training_set", name, "v1"),
    }
}

fn skipped(h: &dyn OfflineHarness, case: &str, need: fn(&OfflineCapabilities) -> bool) -> bool {
    let skip = !need(&h.store().capabilities());
    if skip {
        eprintln!("skipping offline case `{case}`: the provider does not declare the capability");
    }
    skip
}

/// Everything `table` holds, as one batch.
pub async fn read_all(store: &dyn OfflineStore, table: &TableRef) -> RecordBatch {
    let schema = store.schema(table).await.expect("schema of output");
    let batches: Vec<RecordBatch> = store
        .read(table)
        .await
        .expect("read output")
        .try_collect()
        .await
        .expect("stream output");
    let schema = batches.first().map_or(schema, RecordBatch::schema);
    concat_batches(&schema, &batches).expect("concat output")
}

/// The logical type a column is compared by. String and binary encodings (views, large)
/// are one type; so are integer widths, float widths and timestamp units, because
/// warehouses have one of each (BigQuery INT64, FLOAT64; Postgres and Snowflake keep
/// microseconds). Whether a timestamp carries a time zone (instant vs. naive) still counts.
fn logical(data_type: &DataType) -> DataType {
    use arrow::datatypes::TimeUnit;
    match data_type {
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        DataType::Int8 | DataType::Int16 | DataType::Int32 => DataType::Int64,
        DataType::Float16 | DataType::Float32 => DataType::Float64,
        DataType::Timestamp(_, tz) => DataType::Timestamp(
            TimeUnit::Microsecond,
            tz.as_ref().map(|_| std::sync::Arc::from("UTC")),
        ),
        other => other.clone(),
    }
}

/// Same column names, logical types and rows (NULLs included), in the same order.
///
/// # Panics
/// On the first difference, naming `context`, the row and both values.
pub fn assert_same_table(actual: &RecordBatch, expected: &RecordBatch, context: &str) {
    let names = |b: &RecordBatch| -> Vec<String> {
        b.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    };
    assert_eq!(names(actual), names(expected), "{context}: output columns");
    for (a, e) in actual
        .schema()
        .fields()
        .iter()
        .zip(expected.schema().fields())
    {
        assert_eq!(
            logical(a.data_type()),
            logical(e.data_type()),
            "{context}: type of column `{}`",
            a.name()
        );
    }
    assert_eq!(
        actual.num_rows(),
        expected.num_rows(),
        "{context}: row count"
    );
    let (actual_rows, expected_rows) = (reference::rows(actual), reference::rows(expected));
    for (i, (a, e)) in actual_rows.iter().zip(&expected_rows).enumerate() {
        assert!(
            a == e,
            "{context}: row {i} differs\n  actual:   {a:?}\n  expected: {e:?}\n  columns:  {:?}",
            names(actual)
        );
    }
}

/// Build `query`, check the returned count, read the output back and compare it with the
/// reference in the order the provider declares; returns the output in label order.
async fn build_and_check(
    h: &dyn OfflineHarness,
    query: &TrainingSetQuery,
    label: &RecordBatch,
    sources: &[RecordBatch],
    context: &str,
) -> RecordBatch {
    let store = h.store();
    let rows = store
        .build_training_set(query)
        .await
        .unwrap_or_else(|e| panic!("{context}: build_training_set failed: {e}"));
    assert_eq!(
        rows,
        label.num_rows() as u64,
        "{context}: rows written = label rows"
    );
    let actual = read_all(store.as_ref(), &TableRef::Output(query.output.clone())).await;
    let order = store.capabilities().training_set_order;
    let expected = expected_training_set(order, query, label, sources);
    assert_same_table(&actual, &expected, &format!("{context} ({order:?} order)"));
    // The cases read values by label row, so give the rows back in label order.
    match order {
        TrainingSetOrder::Label => actual,
        TrainingSetOrder::LabelColumns => {
            let sorted = label_columns_order(query, label);
            let mut inverse = vec![0u32; sorted.len()];
            for (position, &row) in sorted.iter().enumerate() {
                inverse[row as usize] = position as u32;
            }
            take_rows(&actual, &inverse)
        }
    }
}

/// The reference training set in the row order a provider declares
/// ([`OfflineCapabilities::training_set_order`]).
pub fn expected_training_set(
    order: TrainingSetOrder,
    query: &TrainingSetQuery,
    label: &RecordBatch,
    sources: &[RecordBatch],
) -> RecordBatch {
    match order {
        TrainingSetOrder::Label => reference::training_set(query, label, sources),
        TrainingSetOrder::LabelColumns => {
            let sorted = take_rows(label, &label_columns_order(query, label));
            reference::training_set(query, &sorted, sources)
        }
    }
}

/// A training set built in `order` from `label`, reordered to
/// [`TrainingSetOrder::LabelColumns`] order: for comparing providers that declare
/// different orders row for row.
pub fn in_label_columns_order(
    order: TrainingSetOrder,
    query: &TrainingSetQuery,
    label: &RecordBatch,
    training_set: &RecordBatch,
) -> RecordBatch {
    match order {
        TrainingSetOrder::Label => take_rows(training_set, &label_columns_order(query, label)),
        TrainingSetOrder::LabelColumns => training_set.clone(),
    }
}

/// The label's row indices stably sorted as [`TrainingSetOrder::LabelColumns`] says:
/// ascending by entity columns, timestamp column, value column, then other key columns,
/// NULLs last.
pub fn label_columns_order(query: &TrainingSetQuery, label: &RecordBatch) -> Vec<u32> {
    let l = &query.label;
    let mut names: Vec<&str> = l.entity_columns.iter().map(String::as_str).collect();
    names.extend(l.timestamp_column.as_deref());
    names.push(&l.value_column);
    for f in &query.features {
        names.extend(f.keys.iter().map(|k| k.label_column.as_str()));
    }
    let mut distinct: Vec<&str> = Vec::new();
    for name in names {
        if !distinct.contains(&name) {
            distinct.push(name);
        }
    }
    let columns: Vec<&ArrayRef> = distinct.iter().map(|c| column_named(label, c)).collect();
    let mut order: Vec<u32> = (0..label.num_rows() as u32).collect();
    order.sort_by(|&a, &b| {
        columns
            .iter()
            .map(|c| {
                sql_order(
                    &Cell::of(c.as_ref(), a as usize),
                    &Cell::of(c.as_ref(), b as usize),
                )
            })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    order
}

/// `ORDER BY … ASC NULLS LAST` on two values of one column: NULL after everything, NaN
/// after every other float (Snowflake's rule), strings by code point.
fn sql_order(a: &Cell, b: &Cell) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Cell::Null, Cell::Null) => Ordering::Equal,
        (Cell::Null, _) => Ordering::Greater,
        (_, Cell::Null) => Ordering::Less,
        (Cell::Bool(x), Cell::Bool(y)) => x.cmp(y),
        (Cell::Int(x), Cell::Int(y)) | (Cell::Time(x), Cell::Time(y)) => x.cmp(y),
        (Cell::Float(x), Cell::Float(y)) => match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        },
        (Cell::Text(x), Cell::Text(y)) => x.cmp(y),
        (Cell::Bytes(x), Cell::Bytes(y)) => x.cmp(y),
        _ => panic!("values of different kinds in one column: {a:?} and {b:?}"),
    }
}

fn take_rows(batch: &RecordBatch, order: &[u32]) -> RecordBatch {
    let indices = arrow::array::UInt32Array::from(order.to_vec());
    arrow::compute::take_record_batch(batch, &indices).expect("reorder rows")
}

/// The column named `column`; failing an exact match, the one column whose name equals it
/// ignoring case, because engines that fold unquoted names (Snowflake: `TOTAL`) return
/// the names a user's SQL wrote unquoted in their own case.
pub fn column_named<'a>(batch: &'a RecordBatch, column: &str) -> &'a ArrayRef {
    if let Some(array) = batch.column_by_name(column) {
        return array;
    }
    let schema = batch.schema();
    let matches: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.name().eq_ignore_ascii_case(column))
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [i] => batch.column(*i),
        _ => panic!(
            "column `{column}` in output (columns: {:?})",
            schema.fields()
        ),
    }
}

/// The values of an integer column.
pub fn int_values(batch: &RecordBatch, column: &str) -> Vec<Option<i64>> {
    let array = column_named(batch, column);
    let array = arrow::compute::cast(array, &DataType::Int64).expect("integer column");
    array.as_primitive::<Int64Type>().iter().collect()
}

/// The values of a string column.
pub fn text_values(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let array = column_named(batch, column);
    let array = arrow::compute::cast(array, &DataType::Utf8).expect("string column");
    array
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

// ---- point-in-time cases --------------------------------------------------------------

fn needs_training_sets(c: &OfflineCapabilities) -> bool {
    c.training_sets
}

/// A label at exactly a feature row's time takes that row (the bound is inclusive).
pub async fn exact_timestamp_equality(h: &dyn OfflineHarness) {
    if skipped(h, "exact_timestamp_equality", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        ("user_id", ints(&[Some(1), Some(1)])),
        ("ts", utc(&[Some(10), Some(11)])),
        ("label", ints(&[Some(0), Some(1)])),
    ]);
    let source = batch(vec![
        ("user_id", ints(&[Some(1), Some(1)])),
        ("ts", utc(&[Some(10), Some(11)])),
        ("v", ints(&[Some(100), Some(200)])),
    ]);
    let l = h.load("labels", labels.clone()).await;
    let s = h.load("source", source.clone()).await;
    let q = query("exact", label(l), vec![feature("f", &s, "v")]);
    let out = build_and_check(h, &q, &labels, &[source], "exact_timestamp_equality").await;
    assert_eq!(int_values(&out, "f"), vec![Some(100), Some(200)]);
}

/// Rows after the label time are never used.
pub async fn feature_rows_after_label_time(h: &dyn OfflineHarness) {
    if skipped(h, "feature_rows_after_label_time", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        ("user_id", ints(&[Some(1), Some(1), Some(1), Some(1)])),
        ("ts", utc(&[Some(10), Some(20), Some(30), Some(14)])),
        ("label", ints(&[Some(0), Some(1), Some(0), Some(1)])),
    ]);
    let source = batch(vec![
        ("user_id", ints(&[Some(1), Some(1), Some(1)])),
        ("ts", utc(&[Some(25), Some(5), Some(15)])),
        ("v", ints(&[Some(3), Some(1), Some(2)])),
    ]);
    let l = h.load("labels", labels.clone()).await;
    let s = h.load("source", source.clone()).await;
    let q = query("after", label(l), vec![feature("f", &s, "v")]);
    let out = build_and_check(h, &q, &labels, &[source], "feature_rows_after_label_time").await;
    assert_eq!(
        int_values(&out, "f"),
        vec![Some(1), Some(2), Some(3), Some(1)]
    );
}

/// Equal feature timestamps: the greatest created_ts wins, NULL created_ts loses.
pub async fn ties_broken_by_created_ts(h: &dyn OfflineHarness) {
    if skipped(h, "ties_broken_by_created_ts", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        ("user_id", ints(&[Some(1), Some(2)])),
        ("ts", utc(&[Some(10), Some(10)])),
        ("label", ints(&[Some(1), Some(0)])),
    ]);
    let source = batch(vec![
        (
            "user_id",
            ints(&[Some(1), Some(1), Some(1), Some(1), Some(2), Some(2)]),
        ),
        (
            "ts",
            utc(&[Some(10), Some(10), Some(10), Some(10), Some(10), Some(10)]),
        ),
        (
            "created",
            utc(&[Some(1), Some(3), None, Some(2), None, Some(0)]),
        ),
        (
            "v",
            ints(&[Some(10), Some(30), Some(99), Some(20), Some(99), Some(5)]),
        ),
    ]);
    let l = h.load("labels", labels.clone()).await;
    let s = h.load("source", source.clone()).await;
    let mut f = feature("f", &s, "v");
    f.created_timestamp_column = Some("created".into());
    let q = query("ties", label(l), vec![f]);
    let out = build_and_check(h, &q, &labels, &[source], "ties_broken_by_created_ts").await;
    assert_eq!(int_values(&out, "f"), vec![Some(30), Some(5)]);
}

/// Equal feature timestamps and no created_ts: the greatest value wins, NULL loses.
pub async fn ties_without_created_ts_go_to_greatest_value(h: &dyn OfflineHarness) {
    if skipped(
        h,
        "ties_without_created_ts_go_to_greatest_value",
        needs_training_sets,
    ) {
        return;
    }
    let labels = batch(vec![
        ("user_id", ints(&[Some(1), Some(2)])),
        ("ts", utc(&[Some(10), Some(10)])),
        ("label", ints(&[Some(1), Some(0)])),
    ]);
    let source = batch(vec![
        (
            "user_id",
            ints(&[Some(1), Some(1), Some(1), Some(2), Some(2)]),
        ),
        (
            "ts",
            utc(&[Some(10), Some(10), Some(10), Some(10), Some(10)]),
        ),
        ("v", ints(&[Some(5), None, Some(7), None, None])),
        ("s", texts(&[Some("b"), None, Some("a"), None, Some("z")])),
    ]);
    let l = h.load("labels", labels.clone()).await;
    let s = h.load("source", source.clone()).await;
    let q = query(
        "value_ties",
        label(l),
        vec![feature("f", &s, "v"), feature("g", &s, "s")],
    );
    let out = build_and_check(h, &q, &labels, &[source.clone(), source], "value ties").await;
    assert_eq!(int_values(&out, "f"), vec![Some(7), None]);
    assert_eq!(
        text_values(&out, "g"),
        vec![Some("b".into()), Some("z".into())]
    );
}

/// `max_age` bounds how old a row may be, inclusively.
pub async fn max_age(h: &dyn OfflineHarness) {
    if skipped(h, "max_age", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        (
            "user_id",
            ints(&[Some(1), Some(1), Some(1), Some(2), Some(2)]),
        ),
        (
            "ts",
            utc(&[Some(5), Some(10), Some(11), Some(55), Some(61)]),
        ),
        ("label", ints(&[Some(0); 5])),
    ]);
    let source = batch(vec![
        ("user_id", ints(&[Some(1), Some(2)])),
        ("ts", utc(&[Some(0), Some(50)])),
        ("v", ints(&[Some(1), Some(2)])),
    ]);
    let l = h.load("labels", labels.clone()).await;
    let s = h.load("source", source.clone()).await;
    let mut f = feature("f", &s, "v");
    f.max_age = Some(Duration::from_secs(10));
    let q = query("max_age", label(l), vec![f]);
    let out = build_and_check(h, &q, &labels, &[source], "max_age").await;
    assert_eq!(
        int_values(&out, "f"),
        vec![Some(1), Some(1), None, Some(2), None]
    );
}

/// `lag` shifts the label time back; with `max_age` the window shifts too.
pub async fn lag(h: &dyn OfflineHarness) {
    if skipped(h, "lag", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        ("user_id", ints(&[Some(1), Some(1), Some(1), Some(1)])),
        ("ts", utc(&[Some(14), Some(15), Some(25), Some(4)])),
        ("label", ints(&[Some(0); 4])),
    ]);
    let source = batch(vec![
        ("user_id", ints(&[Some(1), Some(1), Some(1)])),
        ("ts", utc(&[Some(0), Some(10), Some(20)])),
        ("v", ints(&[Some(1), Some(2), Some(3)])),
    ]);
    let l = h.load("labels", labels.clone()).await;
    let s = h.load("source", source.clone()).await;
    let mut lagged = feature("lagged", &s, "v");
    lagged.lag = Some(Duration::from_secs(5));
    let mut windowed = lagged.clone();
    windowed.name = "windowed".into();
    windowed.max_age = Some(Duration::from_secs(3));
    let q = query("lag", label(l), vec![lagged, windowed]);
    let out = build_and_check(h, &q, &labels, &[source.clone(), source], "lag").await;
    assert_eq!(
        int_values(&out, "lagged"),
        vec![Some(1), Some(2), Some(3), None]
    );
    assert_eq!(
        int_values(&out, "windowed"),
        vec![None, Some(2), Some(3), None]
    );
}

/// Entities without any feature row get NULL.
pub async fn entities_without_rows(h: &dyn OfflineHarness) {
    if skipped(h, "entities_without_rows", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        ("user_id", ints(&[Some(1), Some(2), Some(3), None])),
        ("ts", utc(&[Some(10); 4])),
        ("label", ints(&[Some(0); 4])),
    ]);
    let source = batch(vec![
        ("user_id", ints(&[Some(1), None])),
        ("ts", utc(&[Some(1), Some(1)])),
        ("v", ints(&[Some(1), Some(5)])),
    ]);
    let l = h.load("labels", labels.clone()).await;
    let s = h.load("source", source.clone()).await;
    let q = query("no_rows", label(l), vec![feature("f", &s, "v")]);
    let out = build_and_check(h, &q, &labels, &[source], "entities_without_rows").await;
    assert_eq!(int_values(&out, "f"), vec![Some(1), None, None, None]);
}

/// Labels earlier than every feature row get NULL.
pub async fn labels_before_any_feature_row(h: &dyn OfflineHarness) {
    if skipped(h, "labels_before_any_feature_row", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        ("user_id", ints(&[Some(1), Some(1), Some(1)])),
        ("ts", utc(&[Some(10), Some(99), Some(100)])),
        ("label", ints(&[Some(0); 3])),
    ]);
    let source = batch(vec![
        ("user_id", ints(&[Some(1)])),
        ("ts", utc(&[Some(100)])),
        ("v", ints(&[Some(7)])),
    ]);
    let l = h.load("labels", labels.clone()).await;
    let s = h.load("source", source.clone()).await;
    let q = query("before", label(l), vec![feature("f", &s, "v")]);
    let out = build_and_check(h, &q, &labels, &[source], "labels_before_any_feature_row").await;
    assert_eq!(int_values(&out, "f"), vec![None, None, Some(7)]);
}

/// Duplicate label rows each give an output row, in label order.
pub async fn duplicate_label_rows(h: &dyn OfflineHarness) {
    if skipped(h, "duplicate_label_rows", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        (
            "user_id",
            ints(&[Some(1), Some(2), Some(1), Some(1), Some(2)]),
        ),
        (
            "ts",
            utc(&[Some(10), Some(10), Some(10), Some(10), Some(5)]),
        ),
        (
            "label",
            texts(&[Some("a"), Some("b"), Some("a"), Some("a"), Some("c")]),
        ),
    ]);
    let source = batch(vec![
        ("user_id", ints(&[Some(1), Some(2), Some(2)])),
        ("ts", utc(&[Some(1), Some(1), Some(6)])),
        ("v", ints(&[Some(1), Some(2), Some(3)])),
    ]);
    let l = h.load("labels", labels.clone()).await;
    let s = h.load("source", source.clone()).await;
    let q = query("dupes", label(l), vec![feature("f", &s, "v")]);
    let out = build_and_check(h, &q, &labels, &[source], "duplicate_label_rows").await;
    assert_eq!(
        int_values(&out, "f"),
        vec![Some(1), Some(3), Some(1), Some(1), Some(2)]
    );
    assert_eq!(
        text_values(&out, "label"),
        ["a", "b", "a", "a", "c"].map(|s| Some(s.to_string()))
    );
}

/// A label keyed by two entities; features keyed by one, the other, or both.
pub async fn multi_entity_labels(h: &dyn OfflineHarness) {
    if skipped(h, "multi_entity_labels", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        ("user_id", ints(&[Some(1), Some(1), Some(2)])),
        ("merchant_id", texts(&[Some("m1"), Some("m2"), Some("m1")])),
        ("ts", utc(&[Some(10), Some(10), Some(10)])),
        ("label", ints(&[Some(1), Some(0), Some(0)])),
    ]);
    let users = batch(vec![
        ("user_id", ints(&[Some(1), Some(2)])),
        ("ts", utc(&[Some(1), Some(1)])),
        ("age", ints(&[Some(30), Some(40)])),
    ]);
    let merchants = batch(vec![
        ("merchant", texts(&[Some("m1"), Some("m2")])),
        ("ts", utc(&[Some(1), Some(1)])),
        ("risk", ints(&[Some(5), Some(9)])),
    ]);
    let pairs = batch(vec![
        ("u", ints(&[Some(1), Some(1), Some(2)])),
        ("m", texts(&[Some("m2"), Some("m1"), Some("m2")])),
        ("ts", utc(&[Some(1), Some(2), Some(3)])),
        ("visits", ints(&[Some(12), Some(11), Some(22)])),
    ]);
    let l = h.load("labels", labels.clone()).await;
    let u = h.load("users", users.clone()).await;
    let m = h.load("merchants", merchants.clone()).await;
    let p = h.load("pairs", pairs.clone()).await;
    let mut label_query = label(l);
    label_query.entity_columns = vec!["user_id".into(), "merchant_id".into()];
    let age = feature("age", &u, "age");
    let mut risk = feature("risk", &m, "risk");
    risk.keys = vec![key("merchant_id", "merchant")];
    let mut visits = feature("visits", &p, "visits");
    visits.keys = vec![key("user_id", "u"), key("merchant_id", "m")];
    let q = query("multi", label_query, vec![age, risk, visits]);
    let out = build_and_check(
        h,
        &q,
        &labels,
        &[users, merchants, pairs],
        "multi_entity_labels",
    )
    .await;
    assert_eq!(int_values(&out, "age"), vec![Some(30), Some(30), Some(40)]);
    assert_eq!(int_values(&out, "risk"), vec![Some(5), Some(9), Some(5)]);
    assert_eq!(int_values(&out, "visits"), vec![Some(11), Some(12), None]);
}

/// A NULL value in the latest row is the answer (rows are not skipped for NULLs).
pub async fn null_feature_values(h: &dyn OfflineHarness) {
    if skipped(h, "null_feature_values", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        ("user_id", ints(&[Some(1), Some(1), Some(2)])),
        ("ts", utc(&[Some(7), Some(12), Some(12)])),
        ("label", ints(&[Some(0); 3])),
    ]);
    let source = batch(vec![
        ("user_id", ints(&[Some(1), Some(1), Some(2), Some(2)])),
        ("ts", utc(&[Some(5), Some(10), Some(10), Some(10)])),
        ("v", ints(&[Some(7), None, None, Some(3)])),
    ]);
    let l = h.load("labels", labels.clone()).await;
    let s = h.load("source", source.clone()).await;
    let q = query("nulls", label(l), vec![feature("f", &s, "v")]);
    let out = build_and_check(h, &q, &labels, &[source], "null_feature_values").await;
    assert_eq!(int_values(&out, "f"), vec![Some(7), None, Some(3)]);
}

/// A feature without a timestamp is a dimension: latest row per entity, any label time.
pub async fn features_without_timestamp(h: &dyn OfflineHarness) {
    if skipped(h, "features_without_timestamp", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        ("user_id", ints(&[Some(1), Some(1), Some(2), Some(3)])),
        ("ts", utc(&[Some(-1000), Some(1000), Some(0), Some(0)])),
        ("label", ints(&[Some(0); 4])),
    ]);
    let tiers = batch(vec![
        ("user_id", ints(&[Some(1), Some(1), Some(2), Some(2)])),
        ("created", utc(&[Some(2), Some(1), None, None])),
        (
            "tier",
            texts(&[Some("gold"), Some("bronze"), Some("silver"), Some("iron")]),
        ),
    ]);
    let l = h.load("labels", labels.clone()).await;
    let s = h.load("tiers", tiers.clone()).await;
    let mut tier = feature("tier", &s, "tier");
    tier.timestamp_column = None;
    tier.created_timestamp_column = Some("created".into());
    tier.max_age = Some(Duration::from_secs(1));
    let q = query("dimension", label(l), vec![tier]);
    let out = build_and_check(h, &q, &labels, &[tiers], "features_without_timestamp").await;
    assert_eq!(
        text_values(&out, "tier"),
        vec![
            Some("gold".into()),
            Some("gold".into()),
            Some("silver".into()),
            None
        ]
    );
}

/// A label without a timestamp takes each feature's latest row.
pub async fn label_without_timestamp(h: &dyn OfflineHarness) {
    if skipped(h, "label_without_timestamp", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        ("user_id", ints(&[Some(2), Some(1)])),
        ("label", ints(&[Some(0), Some(1)])),
    ]);
    let source = batch(vec![
        ("user_id", ints(&[Some(1), Some(1), Some(2)])),
        ("ts", utc(&[Some(100), Some(5), None])),
        ("v", ints(&[Some(2), Some(1), Some(9)])),
    ]);
    let l = h.load("labels", labels.clone()).await;
    let s = h.load("source", source.clone()).await;
    let mut label_query = label(l);
    label_query.timestamp_column = None;
    let q = query("untimed_label", label_query, vec![feature("f", &s, "v")]);
    let out = build_and_check(h, &q, &labels, &[source], "label_without_timestamp").await;
    assert_eq!(int_values(&out, "f"), vec![None, Some(2)]);
    assert_eq!(out.num_columns(), 3, "no timestamp column in the output");
}

/// Several features read from one source, each its own column.
pub async fn many_features_from_one_source(h: &dyn OfflineHarness) {
    if skipped(h, "many_features_from_one_source", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        ("user_id", ints(&[Some(1), Some(2), Some(1)])),
        ("ts", utc(&[Some(10), Some(10), Some(3)])),
        ("label", ints(&[Some(0); 3])),
    ]);
    let source = batch(vec![
        ("user_id", ints(&[Some(1), Some(2), Some(1)])),
        ("ts", utc(&[Some(1), Some(2), Some(5)])),
        ("a", ints(&[Some(1), Some(2), Some(3)])),
        ("b", texts(&[Some("x"), Some("y"), None])),
        (
            "c",
            Arc::new(Float64Array::from(vec![Some(0.5), None, Some(1.5)])),
        ),
    ]);
    let l = h.load("labels", labels.clone()).await;
    let s = h.load("source", source.clone()).await;
    let features = vec![
        feature("a", &s, "a"),
        feature("b", &s, "b"),
        feature("c", &s, "c"),
    ];
    let q = query("one_source", label(l), features);
    let sources = [source.clone(), source.clone(), source];
    let out = build_and_check(h, &q, &labels, &sources, "many_features_from_one_source").await;
    assert_eq!(int_values(&out, "a"), vec![Some(3), Some(2), Some(1)]);
    assert_eq!(
        text_values(&out, "b"),
        vec![None, Some("y".into()), Some("x".into())]
    );
}

/// Features from several sources with different timings.
pub async fn features_from_several_sources(h: &dyn OfflineHarness) {
    if skipped(h, "features_from_several_sources", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        ("user_id", ints(&[Some(1), Some(2)])),
        ("ts", utc(&[Some(10), Some(20)])),
        ("label", ints(&[Some(1), Some(0)])),
    ]);
    let clicks = batch(vec![
        ("user_id", ints(&[Some(1), Some(2), Some(2)])),
        ("ts", utc(&[Some(9), Some(19), Some(21)])),
        ("clicks", ints(&[Some(4), Some(5), Some(6)])),
    ]);
    let spend = batch(vec![
        ("user_id", ints(&[Some(2), Some(1), Some(1)])),
        ("ts", utc(&[Some(0), Some(11), Some(1)])),
        ("spend", ints(&[Some(100), Some(200), Some(300)])),
    ]);
    let l = h.load("labels", labels.clone()).await;
    let c = h.load("clicks", clicks.clone()).await;
    let s = h.load("spend", spend.clone()).await;
    let q = query(
        "several",
        label(l),
        vec![
            feature("clicks", &c, "clicks"),
            feature("spend", &s, "spend"),
        ],
    );
    let out = build_and_check(h, &q, &labels, &[clicks, spend], "several sources").await;
    assert_eq!(int_values(&out, "clicks"), vec![Some(4), Some(5)]);
    assert_eq!(int_values(&out, "spend"), vec![Some(300), Some(100)]);
}

/// Naive timestamps (of any unit) are read as UTC and compare with UTC ones.
pub async fn naive_and_utc_timestamps(h: &dyn OfflineHarness) {
    if skipped(h, "naive_and_utc_timestamps", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        ("user_id", ints(&[Some(1), Some(1), Some(1)])),
        ("ts", naive(&[Some(9), Some(10), Some(20)])),
        ("label", ints(&[Some(0); 3])),
    ]);
    let utc_source = batch(vec![
        ("user_id", ints(&[Some(1), Some(1)])),
        ("ts", utc(&[Some(10), Some(20)])),
        ("v", ints(&[Some(1), Some(2)])),
    ]);
    let seconds: Vec<Option<i64>> = [10, 15].iter().map(|s| Some(T0 + s)).collect();
    let second_source = batch(vec![
        ("user_id", ints(&[Some(1), Some(1)])),
        (
            "ts",
            Arc::new(TimestampSecondArray::from(seconds)) as ArrayRef,
        ),
        ("v", ints(&[Some(3), Some(4)])),
    ]);
    let l = h.load("labels", labels.clone()).await;
    let a = h.load("utc", utc_source.clone()).await;
    let b = h.load("seconds", second_source.clone()).await;
    let q = query(
        "naive",
        label(l),
        vec![feature("a", &a, "v"), feature("b", &b, "v")],
    );
    let sources = [utc_source, second_source];
    let out = build_and_check(h, &q, &labels, &sources, "naive_and_utc_timestamps").await;
    assert_eq!(int_values(&out, "a"), vec![None, Some(1), Some(2)]);
    assert_eq!(int_values(&out, "b"), vec![None, Some(3), Some(4)]);
}

/// String keys, and integer keys of different widths on the two sides.
pub async fn int_and_string_entity_keys(h: &dyn OfflineHarness) {
    if skipped(h, "int_and_string_entity_keys", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        ("user_id", texts(&[Some("u1"), Some("u2"), Some("u3")])),
        ("store_id", ints(&[Some(7), Some(8), Some(7)])),
        ("ts", utc(&[Some(10); 3])),
        ("label", ints(&[Some(0); 3])),
    ]);
    let users = batch(vec![
        ("user_id", texts(&[Some("u1"), Some("u3"), Some("U2")])),
        ("ts", utc(&[Some(1); 3])),
        ("v", ints(&[Some(1), Some(3), Some(2)])),
    ]);
    let stores = batch(vec![
        (
            "store_id",
            Arc::new(Int32Array::from(vec![Some(7), Some(8)])) as ArrayRef,
        ),
        ("ts", utc(&[Some(1); 2])),
        ("w", ints(&[Some(70), Some(80)])),
    ]);
    let l = h.load("labels", labels.clone()).await;
    let u = h.load("users", users.clone()).await;
    let s = h.load("stores", stores.clone()).await;
    let mut label_query = label(l);
    label_query.entity_columns = vec!["user_id".into(), "store_id".into()];
    let mut by_store = feature("w", &s, "w");
    by_store.keys = vec![key("store_id", "store_id")];
    let q = query("keys", label_query, vec![feature("v", &u, "v"), by_store]);
    let out = build_and_check(h, &q, &labels, &[users, stores], "entity key types").await;
    assert_eq!(int_values(&out, "v"), vec![Some(1), None, Some(3)]);
    assert_eq!(int_values(&out, "w"), vec![Some(70), Some(80), Some(70)]);
}

/// Variants are separate outputs; re-building a variant replaces it.
pub async fn training_set_outputs_are_variant_keyed(h: &dyn OfflineHarness) {
    if skipped(
        h,
        "training_set_outputs_are_variant_keyed",
        needs_training_sets,
    ) {
        return;
    }
    let source = batch(vec![
        ("user_id", ints(&[Some(1)])),
        ("ts", utc(&[Some(1)])),
        ("v", ints(&[Some(1)])),
    ]);
    let first = batch(vec![
        ("user_id", ints(&[Some(1), Some(1)])),
        ("ts", utc(&[Some(10), Some(0)])),
        ("label", ints(&[Some(0), Some(1)])),
    ]);
    let second = batch(vec![
        ("user_id", ints(&[Some(1)])),
        ("ts", utc(&[Some(10)])),
        ("label", ints(&[Some(5)])),
    ]);
    let s = h.load("source", source.clone()).await;
    let l1 = h.load("labels_1", first.clone()).await;
    let l2 = h.load("labels_2", second.clone()).await;
    let v1 = query("variants", label(l1.clone()), vec![feature("f", &s, "v")]);
    let mut v2 = query("variants", label(l2.clone()), vec![feature("f", &s, "v")]);
    v2.output.variant = "v2".into();
    build_and_check(h, &v1, &first, std::slice::from_ref(&source), "variant v1").await;
    build_and_check(h, &v2, &second, std::slice::from_ref(&source), "variant v2").await;
    let store = h.store();
    let again = read_all(store.as_ref(), &TableRef::Output(v1.output.clone())).await;
    assert_eq!(again.num_rows(), 2, "v1 untouched by building v2");
    let mut rebuilt = v1.clone();
    rebuilt.label.table = l2;
    build_and_check(h, &rebuilt, &second, &[source], "rebuilt v1").await;
}

/// Tiny deterministic generator (SplitMix64), so a failing seed replays exactly.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn maybe(&mut self, null_one_in: u64, n: u64) -> Option<i64> {
        (!self.one_in(null_one_in)).then(|| self.below(n))
    }
}

/// One seeded random dataset: a label table, feature sources and the feature queries over
/// them (tables to be filled in once loaded). Shared by the cross-engine harness.
#[derive(Debug, Clone)]
pub struct RandomCase {
    pub label: RecordBatch,
    pub sources: Vec<RecordBatch>,
    /// Per feature: index into `sources` and the query (table filled in later).
    pub features: Vec<(usize, FeatureQuery)>,
    pub label_query: LabelQuery,
}

fn random_keys(rng: &mut SplitMix, rows: usize, string_keys: bool, values: u64) -> ArrayRef {
    let keys: Vec<Option<i64>> = (0..rows).map(|_| rng.maybe(15, values)).collect();
    if string_keys {
        let texts: Vec<Option<String>> = keys.iter().map(|k| k.map(|k| format!("e{k}"))).collect();
        Arc::new(StringArray::from(texts))
    } else {
        ints(&keys)
    }
}

/// The dataset of `seed` (deterministic).
pub fn random_case(seed: u64) -> RandomCase {
    let mut rng = SplitMix(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5EED);
    let string_keys = rng.one_in(3);
    let two_keys = rng.one_in(2);
    let timed_label = !rng.one_in(6);
    let label_rows = 1 + rng.below(40) as usize;

    let mut columns: Vec<(&str, ArrayRef)> =
        vec![("user_id", random_keys(&mut rng, label_rows, string_keys, 5))];
    if two_keys {
        columns.push(("merchant_id", random_keys(&mut rng, label_rows, false, 3)));
    }
    if timed_label {
        let ts: Vec<Option<i64>> = (0..label_rows).map(|_| rng.maybe(15, 30)).collect();
        columns.push(("ts", utc(&ts)));
    }
    let values: Vec<Option<i64>> = (0..label_rows).map(|_| rng.maybe(10, 2)).collect();
    columns.push(("label", ints(&values)));
    let label_batch = batch(columns);
    let mut label_query = label(TableRef::Table(String::new()));
    if two_keys {
        label_query.entity_columns.push("merchant_id".into());
    }
    if !timed_label {
        label_query.timestamp_column = None;
    }

    let mut sources = Vec::new();
    let mut features = Vec::new();
    for s in 0..1 + rng.below(3) as usize {
        let rows = rng.below(41) as usize;
        let mut columns: Vec<(&str, ArrayRef)> =
            vec![("user_id", random_keys(&mut rng, rows, string_keys, 5))];
        if two_keys {
            columns.push(("merchant_id", random_keys(&mut rng, rows, false, 3)));
        }
        let ts: Vec<Option<i64>> = (0..rows).map(|_| rng.maybe(15, 30)).collect();
        columns.push((
            "ts",
            if rng.one_in(2) {
                utc(&ts)
            } else {
                naive_millis(&ts)
            },
        ));
        let has_created = rng.one_in(2);
        if has_created {
            let created: Vec<Option<i64>> = (0..rows).map(|_| rng.maybe(5, 4)).collect();
            columns.push(("created", utc(&created)));
        }
        let v: Vec<Option<i64>> = (0..rows).map(|_| rng.maybe(6, 5)).collect();
        columns.push(("v", ints(&v)));
        let w: Vec<Option<String>> = (0..rows)
            .map(|_| rng.maybe(6, 4).map(|x| format!("w{x}")))
            .collect();
        columns.push(("w", Arc::new(StringArray::from(w))));
        sources.push(batch(columns));

        for f in 0..1 + rng.below(2) {
            let value = if rng.one_in(2) { "v" } else { "w" };
            let mut q = feature(&format!("f{s}_{f}"), &TableRef::Table(String::new()), value);
            if two_keys {
                q.keys = match rng.below(3) {
                    0 => vec![key("user_id", "user_id")],
                    1 => vec![key("merchant_id", "merchant_id")],
                    _ => vec![key("user_id", "user_id"), key("merchant_id", "merchant_id")],
                };
            }
            if rng.one_in(6) {
                q.timestamp_column = None;
            }
            if has_created {
                q.created_timestamp_column = Some("created".into());
            }
            if rng.one_in(3) {
                q.lag = Some(Duration::from_secs(rng.below(5) as u64));
            }
            if rng.one_in(3) {
                q.max_age = Some(Duration::from_secs(rng.below(10) as u64));
            }
            features.push((s, q));
        }
    }
    RandomCase {
        label: label_batch,
        sources,
        features,
        label_query,
    }
}

/// Randomized property case: small tables with many key and time collisions, ties and
/// NULLs, over [`RANDOM_SEEDS`] seeds, compared row for row with the reference.
pub async fn randomized_against_reference(h: &dyn OfflineHarness) {
    if skipped(h, "randomized_against_reference", needs_training_sets) {
        return;
    }
    let (mut matched, mut unmatched) = (0, 0);
    for seed in 0..RANDOM_SEEDS {
        let case = random_case(seed);
        let mut label_query = case.label_query.clone();
        label_query.table = h
            .load(&format!("random_{seed}_label"), case.label.clone())
            .await;
        let mut tables = Vec::new();
        for (i, source) in case.sources.iter().enumerate() {
            tables.push(
                h.load(&format!("random_{seed}_source_{i}"), source.clone())
                    .await,
            );
        }
        let mut features = Vec::new();
        let mut sources = Vec::new();
        for (s, mut q) in case.features.clone() {
            q.table = tables[s].clone();
            features.push(q);
            sources.push(case.sources[s].clone());
        }
        let q = query(&format!("random_{seed}"), label_query, features);
        let context = format!("randomized seed {seed} (features {:?})", q.features);
        let out = build_and_check(h, &q, &case.label, &sources, &context).await;
        for f in &q.features {
            let values = out.column_by_name(&f.name).expect("feature column");
            matched += values.len() - values.null_count();
            unmatched += values.null_count();
        }
    }
    // The generator must exercise both outcomes, or the comparison proves little.
    assert!(
        matched > 200 && unmatched > 200,
        "degenerate random data: {matched} values matched, {unmatched} NULL"
    );
}

// ---- transformations ------------------------------------------------------------------

fn needs_transformations(c: &OfflineCapabilities) -> bool {
    c.sql_transformations
}

async fn orders_and_users(h: &dyn OfflineHarness) -> (TableRef, TableRef) {
    let orders = batch(vec![
        ("user_id", ints(&[Some(1), Some(1), Some(2), Some(3)])),
        ("amount", ints(&[Some(10), Some(5), Some(7), Some(1)])),
    ]);
    let users = batch(vec![
        ("user_id", ints(&[Some(1), Some(2)])),
        ("name", texts(&[Some("ada"), Some("bob")])),
    ]);
    (h.load("orders", orders).await, h.load("users", users).await)
}

fn totals(orders: TableRef, users: TableRef, sql: &str) -> Transformation {
    Transformation {
        sql: sql.into(),
        inputs: vec![("orders:v1".into(), orders), ("users:v1".into(), users)],
        output: output("source", "totals", "v1"),
    }
}

const TOTALS_SQL: &str = "SELECT u.name, SUM(o.amount) AS total \
     FROM {{ orders:v1 }} o JOIN {{users:v1}} u ON o.user_id = u.user_id \
     GROUP BY u.name ORDER BY u.name";

/// SQL over two inputs; the output is readable and the returned count is its rows.
pub async fn transformation_over_two_inputs(h: &dyn OfflineHarness) {
    if skipped(h, "transformation_over_two_inputs", needs_transformations) {
        return;
    }
    let (orders, users) = orders_and_users(h).await;
    let t = totals(orders, users, TOTALS_SQL);
    let store = h.store();
    let rows = store.run_transformation(&t).await.expect("transformation");
    assert_eq!(rows, 2);
    let out = read_all(store.as_ref(), &TableRef::Output(t.output.clone())).await;
    assert_eq!(
        text_values(&out, "name"),
        vec![Some("ada".into()), Some("bob".into())]
    );
    assert_eq!(int_values(&out, "total"), vec![Some(15), Some(7)]);
    let schema = store
        .schema(&TableRef::Output(t.output))
        .await
        .expect("schema of an output");
    assert!(
        schema
            .fields()
            .iter()
            .any(|f| f.name().eq_ignore_ascii_case("total")),
        "schema of the output names `total`: {schema:?}"
    );
}

/// Re-running a transformation replaces its output.
pub async fn transformation_rerun_replaces_output(h: &dyn OfflineHarness) {
    if skipped(
        h,
        "transformation_rerun_replaces_output",
        needs_transformations,
    ) {
        return;
    }
    let (orders, users) = orders_and_users(h).await;
    let store = h.store();
    let first = totals(orders.clone(), users.clone(), TOTALS_SQL);
    assert_eq!(store.run_transformation(&first).await.expect("first"), 2);
    let second = totals(
        orders,
        users,
        "SELECT user_id, amount FROM {{orders:v1}} WHERE amount > 4",
    );
    assert_eq!(store.run_transformation(&second).await.expect("second"), 3);
    let out = read_all(store.as_ref(), &TableRef::Output(second.output)).await;
    assert_eq!(out.num_rows(), 3);
    assert!(out.column_by_name("total").is_none(), "old output replaced");
}

/// SQL that does not parse or does not run is an invalid query, and the previous output
/// stays readable.
pub async fn transformation_bad_sql_keeps_previous_output(h: &dyn OfflineHarness) {
    if skipped(
        h,
        "transformation_bad_sql_keeps_previous_output",
        needs_transformations,
    ) {
        return;
    }
    let (orders, users) = orders_and_users(h).await;
    let store = h.store();
    let good = totals(orders.clone(), users.clone(), TOTALS_SQL);
    store.run_transformation(&good).await.expect("good run");
    for sql in [
        "SELEC name FROM {{ users:v1 }}",
        "SELECT no_such_column FROM {{ users:v1 }}",
        "SELECT * FROM {{ nobody:v1 }}",
    ] {
        let bad = totals(orders.clone(), users.clone(), sql);
        let err = store.run_transformation(&bad).await.err();
        assert!(
            matches!(err, Some(ProviderError::InvalidQuery(_))),
            "`{sql}` gives an invalid query, got {err:?}"
        );
        let out = read_all(store.as_ref(), &TableRef::Output(good.output.clone())).await;
        assert_eq!(int_values(&out, "total"), vec![Some(15), Some(7)]);
    }
}

// ---- latest values --------------------------------------------------------------------

async fn latest(
    store: &dyn OfflineStore,
    query: &LatestValuesQuery,
) -> BTreeMap<String, (Cell, Cell)> {
    let batches: Vec<RecordBatch> = store
        .latest_values(query)
        .await
        .expect("latest values")
        .try_collect()
        .await
        .expect("latest values stream");
    let mut out = BTreeMap::new();
    for b in batches {
        let entity = b.column_by_name(latest_columns::ENTITY).expect("entity");
        let value = b.column_by_name(latest_columns::VALUE).expect("value");
        let time = b
            .column_by_name(latest_columns::EVENT_TIME)
            .expect("event_time");
        assert_eq!(
            time.data_type(),
            &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()))
        );
        for row in 0..b.num_rows() {
            let Cell::Text(e) = Cell::of(entity.as_ref(), row) else {
                panic!("entity must be text")
            };
            let previous = out.insert(
                e.clone(),
                (Cell::of(value.as_ref(), row), Cell::of(time.as_ref(), row)),
            );
            assert!(previous.is_none(), "entity {e} appears twice");
        }
    }
    out
}

fn at(secs: i64) -> Cell {
    Cell::Time(i128::from(T0 + secs) * 1_000_000_000)
}

fn events() -> RecordBatch {
    batch(vec![
        (
            "user_id",
            ints(&[
                Some(1),
                Some(1),
                Some(1),
                Some(2),
                Some(2),
                Some(3),
                None,
                Some(4),
            ]),
        ),
        (
            "ts",
            naive(&[
                Some(5),
                Some(20),
                Some(20),
                Some(10),
                Some(30),
                Some(1),
                Some(50),
                None,
            ]),
        ),
        (
            "created",
            utc(&[None, Some(1), Some(2), None, None, None, None, None]),
        ),
        (
            "v",
            ints(&[
                Some(1),
                Some(9),
                Some(2),
                Some(3),
                None,
                Some(6),
                Some(7),
                Some(8),
            ]),
        ),
    ])
}

fn latest_query(table: TableRef) -> LatestValuesQuery {
    LatestValuesQuery {
        table,
        entity_column: "user_id".into(),
        value_column: "v".into(),
        timestamp_column: Some("ts".into()),
        created_timestamp_column: Some("created".into()),
        since: None,
    }
}

/// Latest row per entity by the tie rule; dimensions give a NULL event time.
pub async fn latest_values_full(h: &dyn OfflineHarness) {
    if skipped(h, "latest_values_full", |_| true) {
        return;
    }
    let table = h.load("events", events()).await;
    let store = h.store();
    let got = latest(store.as_ref(), &latest_query(table.clone())).await;
    let want: BTreeMap<String, (Cell, Cell)> = [
        ("1", (Cell::Int(2), at(20))),
        ("2", (Cell::Null, at(30))),
        ("3", (Cell::Int(6), at(1))),
    ]
    .into_iter()
    .map(|(e, v)| (e.to_string(), v))
    .collect();
    assert_eq!(got, want);

    let mut dimension = latest_query(table);
    dimension.timestamp_column = None;
    dimension.created_timestamp_column = None;
    let got = latest(store.as_ref(), &dimension).await;
    let want: BTreeMap<String, (Cell, Cell)> = [
        ("1", (Cell::Int(9), Cell::Null)),
        ("2", (Cell::Int(3), Cell::Null)),
        ("3", (Cell::Int(6), Cell::Null)),
        ("4", (Cell::Int(8), Cell::Null)),
    ]
    .into_iter()
    .map(|(e, v)| (e.to_string(), v))
    .collect();
    assert_eq!(got, want);
}

/// Incremental runs consider only rows strictly after `since`.
pub async fn latest_values_since(h: &dyn OfflineHarness) {
    if skipped(h, "latest_values_since", |c| c.incremental_latest_values) {
        return;
    }
    let table = h.load("events", events()).await;
    let store = h.store();
    let mut q = latest_query(table);
    q.since = Some(Utc.timestamp_opt(T0 + 10, 0).unwrap());
    let got = latest(store.as_ref(), &q).await;
    let want: BTreeMap<String, (Cell, Cell)> =
        [("1", (Cell::Int(2), at(20))), ("2", (Cell::Null, at(30)))]
            .into_iter()
            .map(|(e, v)| (e.to_string(), v))
            .collect();
    assert_eq!(got, want);
}

// ---- bad inputs -----------------------------------------------------------------------

/// A source that does not exist is `NotFound`, for every operation.
pub async fn missing_source_is_not_found(h: &dyn OfflineHarness) {
    if skipped(h, "missing_source_is_not_found", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        ("user_id", ints(&[Some(1)])),
        ("ts", utc(&[Some(1)])),
        ("label", ints(&[Some(1)])),
    ]);
    let l = h.load("labels", labels).await;
    let missing = h.missing("no_such_source");
    let store = h.store();
    let q = query("missing", label(l), vec![feature("f", &missing, "v")]);
    let err = store.build_training_set(&q).await.err();
    assert!(
        matches!(err, Some(ProviderError::NotFound(_))),
        "build: {err:?}"
    );
    let err = store.schema(&missing).await.err();
    assert!(
        matches!(err, Some(ProviderError::NotFound(_))),
        "schema: {err:?}"
    );
    let err = store.read(&missing).await.err();
    assert!(
        matches!(err, Some(ProviderError::NotFound(_))),
        "read: {:?}",
        err.map(|e| e.to_string())
    );
    let never_built = TableRef::Output(output("training_set", "never_built", "v1"));
    let err = store.read(&never_built).await.err();
    assert!(
        matches!(err, Some(ProviderError::NotFound(_))),
        "read of an output never built: {:?}",
        err.map(|e| e.to_string())
    );
}

/// A column that does not exist is `NotFound`, naming the column.
pub async fn missing_column_is_not_found(h: &dyn OfflineHarness) {
    if skipped(h, "missing_column_is_not_found", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        ("user_id", ints(&[Some(1)])),
        ("ts", utc(&[Some(1)])),
        ("label", ints(&[Some(1)])),
    ]);
    let source = batch(vec![
        ("user_id", ints(&[Some(1)])),
        ("ts", utc(&[Some(1)])),
        ("v", ints(&[Some(1)])),
    ]);
    let l = h.load("labels", labels).await;
    let s = h.load("source", source).await;
    let store = h.store();
    let mut bad_value = feature("f", &s, "no_such_value");
    bad_value.created_timestamp_column = None;
    let mut bad_label = label(l.clone());
    bad_label.entity_columns = vec!["no_such_entity".into()];
    let mut bad_key = feature("f", &s, "v");
    bad_key.keys = vec![key("user_id", "no_such_key")];
    for (column, q) in [
        (
            "no_such_value",
            query("bad", label(l.clone()), vec![bad_value]),
        ),
        (
            "no_such_entity",
            query("bad", bad_label, vec![feature("f", &s, "v")]),
        ),
        ("no_such_key", query("bad", label(l), vec![bad_key])),
    ] {
        match store.build_training_set(&q).await {
            Err(ProviderError::NotFound(message)) => assert!(
                message.contains(column),
                "the error names `{column}`: {message}"
            ),
            other => panic!("missing `{column}` must be NotFound, got {other:?}"),
        }
    }
}

/// A timestamp column that is not a timestamp is an invalid query.
pub async fn timestamp_of_wrong_type_is_invalid(h: &dyn OfflineHarness) {
    if skipped(h, "timestamp_of_wrong_type_is_invalid", needs_training_sets) {
        return;
    }
    let labels = batch(vec![
        ("user_id", ints(&[Some(1)])),
        ("ts", utc(&[Some(1)])),
        ("label", ints(&[Some(1)])),
    ]);
    let source = batch(vec![
        ("user_id", ints(&[Some(1)])),
        ("ts", texts(&[Some("yesterday")])),
        ("v", ints(&[Some(1)])),
    ]);
    let l = h.load("labels", labels).await;
    let s = h.load("source", source).await;
    let store = h.store();
    let q = query("wrong_type", label(l), vec![feature("f", &s, "v")]);
    let err = store.build_training_set(&q).await.err();
    assert!(
        matches!(err, Some(ProviderError::InvalidQuery(ref m)) if m.contains("ts")),
        "{err:?}"
    );
    let mut latest = latest_query(s);
    latest.created_timestamp_column = None;
    let err = store.latest_values(&latest).await.err();
    assert!(
        matches!(err, Some(ProviderError::InvalidQuery(_))),
        "latest values: {:?}",
        err.map(|e| e.to_string())
    );
}
