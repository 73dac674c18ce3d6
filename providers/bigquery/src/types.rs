//! BigQuery column types and their Arrow types, and the conversion of the REST API's JSON
//! rows (`{"f": [{"v": …}, …]}`, every scalar as a string) into record batches.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use gcp_bigquery_client::model::field_type::FieldType;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_row::TableRow;
use serde_json::Value;

/// How a BigQuery column is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int64,
    /// FLOAT64, and NUMERIC / BIGNUMERIC (rounded to double precision).
    Float64,
    Bool,
    String,
    /// TIMESTAMP: an instant, `Timestamp(µs, "UTC")`.
    Timestamp,
    /// DATETIME: a wall-clock time without zone, `Timestamp(µs)` (read as UTC).
    Datetime,
    Date,
    Bytes,
    /// TIME, JSON, GEOGRAPHY, INTERVAL, RECORD and REPEATED columns: their text form.
    Text,
}

impl Kind {
    pub(crate) fn of(field: &TableFieldSchema) -> Kind {
        if field.mode.as_deref() == Some("REPEATED") {
            return Kind::Text;
        }
        match field.r#type {
            FieldType::Integer | FieldType::Int64 => Kind::Int64,
            FieldType::Float | FieldType::Float64 | FieldType::Numeric | FieldType::Bignumeric => {
                Kind::Float64
            }
            FieldType::Boolean | FieldType::Bool => Kind::Bool,
            FieldType::String => Kind::String,
            FieldType::Timestamp => Kind::Timestamp,
            FieldType::Datetime => Kind::Datetime,
            FieldType::Date => Kind::Date,
            FieldType::Bytes => Kind::Bytes,
            FieldType::Time
            | FieldType::Record
            | FieldType::Struct
            | FieldType::Geography
            | FieldType::Json
            | FieldType::Interval => Kind::Text,
        }
    }

    pub(crate) fn data_type(self) -> DataType {
        match self {
            Kind::Int64 => DataType::Int64,
            Kind::Float64 => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::String | Kind::Text => DataType::Utf8,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Datetime => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::Date => DataType::Date32,
            Kind::Bytes => DataType::Binary,
        }
    }

    /// Whether the column can serve as a point-in-time timestamp.
    pub(crate) fn is_time(self) -> bool {
        matches!(self, Kind::Timestamp | Kind::Datetime | Kind::Date)
    }

    /// The GoogleSQL type name, for messages.
    pub(crate) fn sql_name(self) -> &'static str {
        match self {
            Kind::Int64 => "INT64",
            Kind::Float64 => "FLOAT64",
            Kind::Bool => "BOOL",
            Kind::String => "STRING",
            Kind::Timestamp => "TIMESTAMP",
            Kind::Datetime => "DATETIME",
            Kind::Date => "DATE",
            Kind::Bytes => "BYTES",
            Kind::Text => "a non-scalar type",
        }
    }
}

/// A column of a table or of a query result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) kind: Kind,
}

pub(crate) fn columns(fields: &[TableFieldSchema]) -> Vec<Column> {
    fields
        .iter()
        .map(|f| Column {
            name: f.name.clone(),
            kind: Kind::of(f),
        })
        .collect()
}

/// Every column nullable: BigQuery's REQUIRED mode is not carried into results.
pub(crate) fn arrow_schema(columns: &[Column]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, c.kind.data_type(), true))
            .collect::<Vec<_>>(),
    ))
}

enum Builder {
    Int64(Int64Builder),
    Float64(Float64Builder),
    Bool(BooleanBuilder),
    Utf8(StringBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    Binary(BinaryBuilder),
}

impl Builder {
    fn new(kind: Kind, capacity: usize) -> Builder {
        match kind {
            Kind::Int64 => Builder::Int64(Int64Builder::with_capacity(capacity)),
            Kind::Float64 => Builder::Float64(Float64Builder::with_capacity(capacity)),
            Kind::Bool => Builder::Bool(BooleanBuilder::with_capacity(capacity)),
            Kind::String | Kind::Text => {
                Builder::Utf8(StringBuilder::with_capacity(capacity, capacity * 8))
            }
            Kind::Timestamp => Builder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            Kind::Datetime => {
                Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity))
            }
            Kind::Date => Builder::Date(Date32Builder::with_capacity(capacity)),
            Kind::Bytes => Builder::Binary(BinaryBuilder::with_capacity(capacity, capacity * 8)),
        }
    }

    fn append_null(&mut self) {
        match self {
            Builder::Int64(b) => b.append_null(),
            Builder::Float64(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Utf8(b) => b.append_null(),
            Builder::Timestamp(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Binary(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::Float64(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Utf8(b) => Arc::new(b.finish()),
            Builder::Timestamp(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Binary(b) => Arc::new(b.finish()),
        }
    }
}

/// A TIMESTAMP cell: microseconds since the epoch (`formatOptions.useInt64Timestamp`, and
/// what bqemulator sends), or the older float seconds (`1.7040672E9`).
fn parse_timestamp(text: &str) -> Option<i64> {
    if let Ok(micros) = text.parse::<i64>() {
        return Some(micros);
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return Some((seconds * 1_000_000.0).round() as i64);
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// A DATETIME cell: `2024-01-01T00:00:02[.ffffff]` (a space is accepted for the `T`).
fn parse_datetime(text: &str) -> Option<i64> {
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|t| t.and_utc().timestamp_micros())
}

fn parse_date(text: &str) -> Option<i32> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let days = date.signed_duration_since(NaiveDate::default()).num_days();
    i32::try_from(days).ok()
}

/// Append one cell to `builder` read as `kind`.
fn append(builder: &mut Builder, kind: Kind, value: &Value) -> Result<(), String> {
    let text = match value {
        Value::Null => {
            builder.append_null();
            return Ok(());
        }
        Value::String(s) => s.as_str(),
        // Records and arrays only occur in text columns.
        other => {
            return match builder {
                Builder::Utf8(b) => {
                    b.append_value(other.to_string());
                    Ok(())
                }
                _ => Err(format!("a {} cell holds {other}", kind.sql_name())),
            };
        }
    };
    let bad = || format!("`{text}` is not a valid {} value", kind.sql_name());
    match builder {
        Builder::Int64(b) => b.append_value(text.parse().map_err(|_| bad())?),
        Builder::Float64(b) => b.append_value(text.parse().map_err(|_| bad())?),
        Builder::Bool(b) => b.append_value(match text.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(bad()),
        }),
        Builder::Utf8(b) => b.append_value(text),
        Builder::Timestamp(b) => b.append_value(
            match kind {
                Kind::Timestamp => parse_timestamp(text),
                _ => parse_datetime(text),
            }
            .ok_or_else(bad)?,
        ),
        Builder::Date(b) => b.append_value(parse_date(text).ok_or_else(bad)?),
        Builder::Binary(b) => b.append_value(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| bad())?,
        ),
    }
    Ok(())
}

/// The rows of one result page as a batch of `schema` (built from `columns`).
///
/// # Errors
/// A message naming the column and value that does not parse as its type.
pub(crate) fn to_batch(
    schema: &SchemaRef,
    columns: &[Column],
    rows: &[TableRow],
) -> Result<RecordBatch, String> {
    let mut builders: Vec<Builder> = columns
        .iter()
        .map(|c| Builder::new(c.kind, rows.len()))
        .collect();
    for row in rows {
        let cells = row.columns.as_deref().unwrap_or_default();
        if cells.len() != columns.len() {
            return Err(format!(
                "a result row has {} cells for {} columns",
                cells.len(),
                columns.len()
            ));
        }
        for ((builder, column), cell) in builders.iter_mut().zip(columns).zip(cells) {
            let value = cell.value.as_ref().unwrap_or(&Value::Null);
            append(builder, column.kind, value)
                .map_err(|e| format!("column `{}`: {e}", column.name))?;
        }
    }
    let arrays: Vec<ArrayRef> = builders.iter_mut().map(Builder::finish).collect();
    // The row count is explicit so a result without columns still counts its rows.
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    RecordBatch::try_new_with_options(schema.clone(), arrays, &options).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray, Int64Array};
    use arrow::datatypes::{Date32Type, TimestampMicrosecondType};
    use gcp_bigquery_client::model::table_cell::TableCell;

    fn row(values: &[Option<&str>]) -> TableRow {
        TableRow {
            columns: Some(
                values
                    .iter()
                    .map(|v| TableCell {
                        value: v.map(|s| Value::String(s.to_string())),
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn json_rows_become_typed_columns() {
        let columns: Vec<Column> = [
            ("i", Kind::Int64),
            ("ts", Kind::Timestamp),
            ("dt", Kind::Datetime),
            ("d", Kind::Date),
            ("b", Kind::Bytes),
            ("f", Kind::Float64),
            ("ok", Kind::Bool),
        ]
        .into_iter()
        .map(|(name, kind)| Column {
            name: name.into(),
            kind,
        })
        .collect();
        let schema = arrow_schema(&columns);
        let rows = [
            row(&[
                Some("7"),
                Some("1704067201500000"),
                Some("2024-01-01T00:00:02.25"),
                Some("2024-01-02"),
                Some("AAE="),
                Some("NaN"),
                Some("true"),
            ]),
            row(&[
                None,
                Some("1.7040672015E9"),
                Some("2024-01-01 00:00:02"),
                None,
                None,
                Some("-Infinity"),
                Some("false"),
            ]),
        ];
        let batch = to_batch(&schema, &columns, &rows).unwrap();
        assert_eq!(
            batch
                .column(0)
                .as_primitive::<arrow::datatypes::Int64Type>(),
            &Int64Array::from(vec![Some(7), None])
        );
        let ts = batch.column(1).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts.value(0), 1_704_067_201_500_000);
        assert_eq!(ts.value(1), 1_704_067_201_500_000);
        let dt = batch.column(2).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(dt.value(0), 1_704_067_202_250_000);
        assert_eq!(dt.value(1), 1_704_067_202_000_000);
        assert_eq!(
            batch.column(3).as_primitive::<Date32Type>().value(0),
            19_724
        );
        assert_eq!(batch.column(4).as_binary::<i32>().value(0), &[0u8, 1]);
        assert!(batch.column(4).is_null(1));
        assert!(batch
            .column(5)
            .as_primitive::<arrow::datatypes::Float64Type>()
            .value(0)
            .is_nan());
        assert!(!batch.column(6).as_boolean().value(1));
    }

    #[test]
    fn a_bad_cell_names_its_column() {
        let columns = vec![Column {
            name: "n".into(),
            kind: Kind::Int64,
        }];
        let err = to_batch(&arrow_schema(&columns), &columns, &[row(&[Some("x")])]).unwrap_err();
        assert!(err.contains("`n`"), "{err}");
    }
}
