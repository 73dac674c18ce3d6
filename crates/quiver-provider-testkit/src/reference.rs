//! A brute-force, obviously-correct implementation of the point-in-time semantics of
//! `quiver_provider_sdk::offline`, over plain Rust values: for every label row and every
//! feature, scan every source row. Quadratic on purpose — it is the oracle the provider
//! tests compare against, so it must be easy to check by reading, not fast.
//!
//! Where the SDK text leaves room, this file is the tie-breaker every provider follows:
//! - a NULL key (label or feature side) matches nothing, as `=` does in SQL;
//! - a feature row whose timestamp is NULL is never a candidate (for timed features);
//! - a label row whose timestamp is NULL gets NULL for every timed feature;
//! - a label without a timestamp column takes each feature's latest row, ignoring `lag`
//!   and `max_age`; a dimension (feature without a timestamp) ignores them too;
//! - integer keys of different widths compare by value, and so do string keys of
//!   different string types.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{
    DataType, Field, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, Schema,
    TimeUnit, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::RecordBatch;
use quiver_provider_sdk::{FeatureQuery, TrainingSetQuery};

/// One value of one row, comparable across the Arrow types a test uses. Timestamps and
/// dates are nanoseconds since the Unix epoch (UTC; naive values read as UTC).
#[derive(Debug, Clone)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    Time(i128),
}

impl Cell {
    /// The value at `row` of `array`.
    ///
    /// # Panics
    /// On a type the reference does not model (the tests never use one).
    pub fn of(array: &dyn Array, row: usize) -> Cell {
        if array.is_null(row) {
            return Cell::Null;
        }
        match array.data_type() {
            DataType::Boolean => Cell::Bool(array.as_boolean().value(row)),
            DataType::Int8 => Cell::Int(array.as_primitive::<Int8Type>().value(row).into()),
            DataType::Int16 => Cell::Int(array.as_primitive::<Int16Type>().value(row).into()),
            DataType::Int32 => Cell::Int(array.as_primitive::<Int32Type>().value(row).into()),
            DataType::Int64 => Cell::Int(array.as_primitive::<Int64Type>().value(row).into()),
            DataType::UInt8 => Cell::Int(array.as_primitive::<UInt8Type>().value(row).into()),
            DataType::UInt16 => Cell::Int(array.as_primitive::<UInt16Type>().value(row).into()),
            DataType::UInt32 => Cell::Int(array.as_primitive::<UInt32Type>().value(row).into()),
            DataType::UInt64 => Cell::Int(array.as_primitive::<UInt64Type>().value(row).into()),
            DataType::Float32 => Cell::Float(array.as_primitive::<Float32Type>().value(row).into()),
            DataType::Float64 => Cell::Float(array.as_primitive::<Float64Type>().value(row)),
            DataType::Utf8 => Cell::Text(array.as_string::<i32>().value(row).to_string()),
            DataType::LargeUtf8 => Cell::Text(array.as_string::<i64>().value(row).to_string()),
            DataType::Utf8View => Cell::Text(array.as_string_view().value(row).to_string()),
            DataType::Binary => Cell::Bytes(array.as_binary::<i32>().value(row).to_vec()),
            DataType::LargeBinary => Cell::Bytes(array.as_binary::<i64>().value(row).to_vec()),
            DataType::BinaryView => Cell::Bytes(array.as_binary_view().value(row).to_vec()),
            DataType::Timestamp(unit, _) => {
                let raw: i128 = match unit {
                    TimeUnit::Second => array
                        .as_primitive::<arrow::datatypes::TimestampSecondType>()
                        .value(row)
                        .into(),
                    TimeUnit::Millisecond => array
                        .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
                        .value(row)
                        .into(),
                    TimeUnit::Microsecond => array
                        .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                        .value(row)
                        .into(),
                    TimeUnit::Nanosecond => array
                        .as_primitive::<arrow::datatypes::TimestampNanosecondType>()
                        .value(row)
                        .into(),
                };
                Cell::Time(raw * nanos_per(*unit))
            }
            DataType::Date32 => {
                let days: i128 = array
                    .as_primitive::<arrow::datatypes::Date32Type>()
                    .value(row)
                    .into();
                Cell::Time(days * 86_400 * 1_000_000_000)
            }
            DataType::Date64 => {
                let millis: i128 = array
                    .as_primitive::<arrow::datatypes::Date64Type>()
                    .value(row)
                    .into();
                Cell::Time(millis * 1_000_000)
            }
            other => panic!("reference: unsupported type {other}"),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Cell::Null)
    }

    fn rank(&self) -> u8 {
        match self {
            Cell::Null => 0,
            Cell::Bool(_) => 1,
            Cell::Int(_) => 2,
            Cell::Float(_) => 3,
            Cell::Text(_) => 4,
            Cell::Bytes(_) => 5,
            Cell::Time(_) => 6,
        }
    }
}

fn nanos_per(unit: TimeUnit) -> i128 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// NULL sorts lowest, so "the greatest" never picks a NULL over a value.
impl Ord for Cell {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Cell::Bool(a), Cell::Bool(b)) => a.cmp(b),
            (Cell::Int(a), Cell::Int(b)) => a.cmp(b),
            (Cell::Float(a), Cell::Float(b)) => a.total_cmp(b),
            (Cell::Text(a), Cell::Text(b)) => a.cmp(b),
            (Cell::Bytes(a), Cell::Bytes(b)) => a.cmp(b),
            (Cell::Time(a), Cell::Time(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for Cell {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Cell {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Cell {}

/// Every row of `batch` as cells, column by column in schema order.
pub fn rows(batch: &RecordBatch) -> Vec<Vec<Cell>> {
    (0..batch.num_rows())
        .map(|row| {
            batch
                .columns()
                .iter()
                .map(|column| Cell::of(column.as_ref(), row))
                .collect()
        })
        .collect()
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("reference: column `{name}` missing from test input"))
}

fn nanos(duration: Option<Duration>) -> i128 {
    duration.map_or(0, |d| d.as_nanos() as i128)
}

/// The row of `source` the semantics pick for label row `row`, if any.
fn pick(
    feature: &FeatureQuery,
    source: &RecordBatch,
    label: &RecordBatch,
    label_ts: Option<&ArrayRef>,
    row: usize,
) -> Option<u32> {
    let label_keys: Vec<Cell> = feature
        .keys
        .iter()
        .map(|k| Cell::of(column(label, &k.label_column).as_ref(), row))
        .collect();
    if label_keys.iter().any(Cell::is_null) {
        return None;
    }
    // (upper, lower) bounds on feature_ts; None = unbounded.
    let (upper, lower) = match (&feature.timestamp_column, label_ts) {
        (Some(_), Some(ts)) => match Cell::of(ts.as_ref(), row) {
            Cell::Time(t) => {
                let upper = t - nanos(feature.lag);
                let lower = feature.max_age.map(|m| upper - m.as_nanos() as i128);
                (Some(upper), lower)
            }
            _ => return None,
        },
        _ => (None, None),
    };
    let feature_keys: Vec<&ArrayRef> = feature
        .keys
        .iter()
        .map(|k| column(source, &k.feature_column))
        .collect();
    let ts = feature.timestamp_column.as_ref().map(|c| column(source, c));
    let created = feature
        .created_timestamp_column
        .as_ref()
        .map(|c| column(source, c));
    let value = column(source, &feature.value_column);

    let mut best: Option<(u32, [Cell; 3])> = None;
    for r in 0..source.num_rows() {
        let keys_match = feature_keys
            .iter()
            .zip(&label_keys)
            .all(|(k, want)| Cell::of(k.as_ref(), r) == *want);
        if !keys_match {
            continue;
        }
        let feature_ts = match ts {
            Some(ts) => match Cell::of(ts.as_ref(), r) {
                Cell::Time(t) => {
                    if upper.is_some_and(|u| t > u) || lower.is_some_and(|l| t < l) {
                        continue;
                    }
                    Cell::Time(t)
                }
                _ => continue,
            },
            None => Cell::Null,
        };
        let created = created.map_or(Cell::Null, |c| Cell::of(c.as_ref(), r));
        let rank = [feature_ts, created, Cell::of(value.as_ref(), r)];
        if best.as_ref().is_none_or(|(_, b)| rank > *b) {
            best = Some((r as u32, rank));
        }
    }
    best.map(|(r, _)| r)
}

/// The expected training set: the label's entity columns, its timestamp column (if any),
/// one column per feature, then the label value under `output_column` — one row per label
/// row, in label order. `sources[i]` holds the rows of `query.features[i].table`.
///
/// # Panics
/// When a named column is missing or has a type the reference does not model.
pub fn training_set(
    query: &TrainingSetQuery,
    label: &RecordBatch,
    sources: &[RecordBatch],
) -> RecordBatch {
    assert_eq!(
        sources.len(),
        query.features.len(),
        "one source batch per feature"
    );
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    let mut copy = |name: &str, as_name: &str| {
        let array = column(label, name).clone();
        let nullable = label.schema().field_with_name(name).unwrap().is_nullable();
        fields.push(Field::new(as_name, array.data_type().clone(), nullable));
        columns.push(array);
    };
    for entity in &query.label.entity_columns {
        copy(entity, entity);
    }
    if let Some(ts) = &query.label.timestamp_column {
        copy(ts, ts);
    }
    let label_ts = query
        .label
        .timestamp_column
        .as_ref()
        .map(|c| column(label, c));
    for (feature, source) in query.features.iter().zip(sources) {
        let picked: UInt32Array = (0..label.num_rows())
            .map(|row| pick(feature, source, label, label_ts, row))
            .collect();
        let values = take(
            column(source, &feature.value_column).as_ref(),
            &picked,
            None,
        )
        .expect("take picked rows");
        fields.push(Field::new(&feature.name, values.data_type().clone(), true));
        columns.push(values);
    }
    let value = column(label, &query.label.value_column).clone();
    let nullable = label
        .schema()
        .field_with_name(&query.label.value_column)
        .unwrap()
        .is_nullable();
    fields.push(Field::new(
        &query.label.output_column,
        value.data_type().clone(),
        nullable,
    ));
    columns.push(value);
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("reference output")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use quiver_provider_sdk::{KeyPair, LabelQuery, OutputRef, TableRef};

    fn ts(values: &[Option<i64>]) -> ArrayRef {
        Arc::new(
            values
                .iter()
                .map(|v| v.map(|s| s * 1_000_000))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        )
    }

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    #[test]
    fn picks_latest_inclusive_row_with_created_then_value_tie_break() {
        let label = batch(vec![
            ("user", Arc::new(Int64Array::from(vec![1, 1, 1, 2, 1]))),
            ("ts", ts(&[Some(10), Some(20), Some(5), Some(20), None])),
            (
                "y",
                Arc::new(StringArray::from(vec!["a", "b", "c", "d", "e"])),
            ),
        ]);
        let source = batch(vec![
            ("user", Arc::new(Int64Array::from(vec![1, 1, 1, 1]))),
            ("ts", ts(&[Some(10), Some(10), Some(20), Some(20)])),
            ("created", ts(&[Some(1), Some(2), None, None])),
            (
                "v",
                Arc::new(Int64Array::from(vec![Some(100), Some(200), None, Some(7)])),
            ),
        ]);
        let query = TrainingSetQuery {
            label: LabelQuery {
                table: TableRef::Table("label".into()),
                entity_columns: vec!["user".into()],
                value_column: "y".into(),
                output_column: "label".into(),
                timestamp_column: Some("ts".into()),
            },
            features: vec![FeatureQuery {
                name: "f".into(),
                table: TableRef::Table("source".into()),
                keys: vec![KeyPair {
                    label_column: "user".into(),
                    feature_column: "user".into(),
                }],
                value_column: "v".into(),
                timestamp_column: Some("ts".into()),
                created_timestamp_column: Some("created".into()),
                max_age: None,
                lag: None,
            }],
            output: OutputRef {
                kind: "training_set".into(),
                name: "t".into(),
                variant: "v".into(),
            },
        };
        let out = training_set(&query, &label, &[source]);
        let f = out.column_by_name("f").unwrap().as_primitive::<Int64Type>();
        let got: Vec<Option<i64>> = f.iter().collect();
        assert_eq!(got, vec![Some(200), Some(7), None, None, None]);
        assert_eq!(out.schema().field(3).name(), "label");
    }
}
