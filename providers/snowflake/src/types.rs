//! Snowflake result columns to Arrow: the type mapping, and the conversion of Snowflake's
//! wire encodings (Arrow with Snowflake conventions, or JSON text) to plain Arrow arrays.
//!
//! | Snowflake (`rowtype.type`)      | Arrow                          |
//! |---------------------------------|--------------------------------|
//! | `fixed`, scale 0 (NUMBER(p,0))  | Int64                          |
//! | `fixed`, scale s > 0            | Decimal128(p, s)               |
//! | `real` (FLOAT)                  | Float64                        |
//! | `text` (VARCHAR)                | Utf8                           |
//! | `boolean`                       | Boolean                        |
//! | `date`                          | Date32                         |
//! | `time`                          | Time64(µs)                     |
//! | `binary`                        | Binary                         |
//! | `timestamp_ntz`                 | Timestamp(µs, None)            |
//! | `timestamp_ltz`, `timestamp_tz` | Timestamp(µs, "UTC")           |
//! | `variant`, `object`, `array`    | Utf8 (JSON text)               |

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array,
    Float64Array, Int64Array, RecordBatch, StringArray, Time64MicrosecondArray,
    TimestampMicrosecondArray,
};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;

use crate::error::SnowflakeError;

/// One result column as Snowflake describes it (`data.rowtype[i]`).
#[derive(Debug, Clone, Deserialize)]
pub struct ColumnType {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub scale: Option<i64>,
    #[serde(default)]
    pub precision: Option<i64>,
    #[serde(default = "nullable_default")]
    pub nullable: bool,
}

fn nullable_default() -> bool {
    true
}

impl ColumnType {
    fn scale(&self) -> i64 {
        self.scale.unwrap_or(0)
    }

    /// The Arrow type this provider hands out for the column.
    pub fn arrow_type(&self) -> Result<DataType, SnowflakeError> {
        let data_type = match self.kind.to_ascii_lowercase().as_str() {
            "fixed" if self.scale() == 0 => DataType::Int64,
            "fixed" => {
                let precision = u8::try_from(self.precision.unwrap_or(38)).unwrap_or(38);
                let scale = i8::try_from(self.scale()).unwrap_or(0);
                DataType::Decimal128(precision, scale)
            }
            "real" => DataType::Float64,
            "text" | "variant" | "object" | "array" => DataType::Utf8,
            "boolean" => DataType::Boolean,
            "date" => DataType::Date32,
            "time" => DataType::Time64(TimeUnit::Microsecond),
            "binary" => DataType::Binary,
            "timestamp_ntz" => DataType::Timestamp(TimeUnit::Microsecond, None),
            "timestamp_ltz" | "timestamp_tz" => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            _ => {
                return Err(SnowflakeError::UnsupportedType {
                    column: self.name.clone(),
                    kind: self.kind.clone(),
                })
            }
        };
        Ok(data_type)
    }
}

/// The Arrow schema of a result.
pub fn schema(columns: &[ColumnType]) -> Result<SchemaRef, SnowflakeError> {
    let fields: Result<Vec<Field>, SnowflakeError> = columns
        .iter()
        .map(|c| Ok(Field::new(&c.name, c.arrow_type()?, c.nullable)))
        .collect();
    Ok(Arc::new(Schema::new(fields?)))
}

fn strict() -> CastOptions<'static> {
    CastOptions {
        safe: false,
        ..Default::default()
    }
}

/// A batch as Snowflake encodes it in Arrow, converted to [`schema`]'s types.
pub fn convert_batch(
    batch: &RecordBatch,
    columns: &[ColumnType],
    schema: &SchemaRef,
) -> Result<RecordBatch, SnowflakeError> {
    if batch.num_columns() != columns.len() {
        return Err(SnowflakeError::Protocol(format!(
            "{} Arrow columns for {} described columns",
            batch.num_columns(),
            columns.len()
        )));
    }
    let arrays: Result<Vec<ArrayRef>, SnowflakeError> = batch
        .columns()
        .iter()
        .zip(columns)
        .zip(schema.fields())
        .map(|((array, column), field)| convert_array(array, column, field.data_type()))
        .collect();
    Ok(RecordBatch::try_new(schema.clone(), arrays?)?)
}

fn pow10(exponent: i64) -> i64 {
    10_i64.pow(u32::try_from(exponent).unwrap_or(0))
}

/// A count of `10^-scale` units as microseconds (floor, so negatives stay ordered).
fn scaled_to_micros(value: i64, scale: i64) -> i64 {
    if scale <= 6 {
        value * pow10(6 - scale)
    } else {
        value.div_euclid(pow10(scale - 6))
    }
}

fn convert_array(
    array: &ArrayRef,
    column: &ColumnType,
    target: &DataType,
) -> Result<ArrayRef, SnowflakeError> {
    match target {
        DataType::Timestamp(TimeUnit::Microsecond, zone) => {
            let micros = timestamp_micros(array, column)?;
            Ok(Arc::new(micros.with_timezone_opt(zone.clone())))
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            let raw = cast_with_options(array, &DataType::Int64, &strict())?;
            let scale = column.scale();
            let values: Time64MicrosecondArray = raw
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map(|v| scaled_to_micros(v, scale)))
                .collect();
            Ok(Arc::new(values))
        }
        DataType::Decimal128(precision, scale) if array.data_type().is_integer() => {
            // Snowflake sends NUMBER(p,s) as its unscaled integer when it fits.
            let raw = cast_with_options(array, &DataType::Int64, &strict())?;
            let values: Decimal128Array = raw
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map(i128::from))
                .collect();
            Ok(Arc::new(
                values.with_precision_and_scale(*precision, *scale)?,
            ))
        }
        other => Ok(cast_with_options(array, other, &strict())?),
    }
}

/// Timestamps as microseconds since the epoch (UTC wall clock for `_ntz`). Snowflake sends
/// them as a scaled Int64, or as a struct of `epoch` (seconds), `fraction` (nanoseconds)
/// and, for `_tz`, `timezone` (the offset, which does not change the instant). A value is
/// NULL when the struct slot is NULL or its `epoch` is: fakesnow marks NULLs only on the
/// children.
fn timestamp_micros(
    array: &ArrayRef,
    column: &ColumnType,
) -> Result<TimestampMicrosecondArray, SnowflakeError> {
    let scale = column.scale();
    match array.data_type() {
        DataType::Struct(_) => {
            let parts = array.as_struct();
            let epoch = parts
                .column_by_name("epoch")
                .ok_or_else(|| SnowflakeError::Protocol("timestamp without `epoch`".into()))?;
            let epoch = cast_with_options(epoch, &DataType::Int64, &strict())?;
            let epoch = epoch.as_primitive::<Int64Type>();
            let fraction = match parts.column_by_name("fraction") {
                Some(f) => Some(cast_with_options(f, &DataType::Int64, &strict())?),
                None => None,
            };
            let fraction = fraction.as_ref().map(|f| f.as_primitive::<Int64Type>());
            Ok((0..parts.len())
                .map(|i| {
                    if parts.is_null(i) || epoch.is_null(i) {
                        return None;
                    }
                    let value = match fraction {
                        // Seconds plus nanoseconds.
                        Some(f) => epoch.value(i) * 1_000_000 + f.value(i) / 1000,
                        // Without a fraction, `epoch` counts 10^-scale seconds.
                        None => scaled_to_micros(epoch.value(i), scale),
                    };
                    Some(value)
                })
                .collect())
        }
        DataType::Timestamp(..) => {
            let target = DataType::Timestamp(TimeUnit::Microsecond, None);
            let cast = cast_with_options(array, &target, &strict())?;
            Ok(cast
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .clone())
        }
        _ => {
            let raw = cast_with_options(array, &DataType::Int64, &strict())?;
            Ok(raw
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map(|v| scaled_to_micros(v, scale)))
                .collect())
        }
    }
}

/// A JSON `rowset` (every value a string or null, in Snowflake's text encodings) as one
/// batch of [`schema`]'s types.
pub fn json_batch(
    rows: &[Vec<Option<String>>],
    columns: &[ColumnType],
    schema: &SchemaRef,
) -> Result<RecordBatch, SnowflakeError> {
    let arrays: Result<Vec<ArrayRef>, SnowflakeError> = columns
        .iter()
        .zip(schema.fields())
        .enumerate()
        .map(|(i, (column, field))| {
            let values = rows.iter().map(|row| row.get(i).cloned().flatten());
            json_array(values, column, field.data_type())
        })
        .collect();
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len()));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        arrays?,
        &options,
    )?)
}

fn parse_error(column: &ColumnType, value: &str) -> SnowflakeError {
    SnowflakeError::Protocol(format!(
        "cannot read `{value}` as {} in column `{}`",
        column.kind, column.name
    ))
}

/// Seconds with an optional fraction (`1704067210.123456789`) as microseconds.
fn seconds_text_to_micros(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let seconds: i64 = whole.parse().ok()?;
    let mut digits: String = fraction.chars().take(6).collect();
    while digits.len() < 6 {
        digits.push('0');
    }
    let micros: i64 = digits.parse().ok()?;
    // `-1.5` is -1 s - 0.5 s.
    Some(if whole.starts_with('-') {
        seconds * 1_000_000 - micros
    } else {
        seconds * 1_000_000 + micros
    })
}

fn json_array(
    values: impl Iterator<Item = Option<String>>,
    column: &ColumnType,
    target: &DataType,
) -> Result<ArrayRef, SnowflakeError> {
    fn parsed<T>(
        values: impl Iterator<Item = Option<String>>,
        column: &ColumnType,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Vec<Option<T>>, SnowflakeError> {
        values
            .map(|v| match v {
                None => Ok(None),
                Some(text) => parse(&text)
                    .map(Some)
                    .ok_or_else(|| parse_error(column, &text)),
            })
            .collect()
    }
    let array: ArrayRef = match target {
        DataType::Int64 => Arc::new(Int64Array::from(parsed(values, column, |t| {
            t.parse().ok()
        })?)),
        DataType::Decimal128(precision, scale) => {
            let digits = usize::try_from(*scale).unwrap_or(0);
            let unscaled = parsed(values, column, |t| {
                let (whole, fraction) = t.split_once('.').unwrap_or((t, ""));
                let mut text = format!("{whole}{fraction}");
                for _ in fraction.len()..digits {
                    text.push('0');
                }
                text.parse::<i128>().ok()
            })?;
            Arc::new(Decimal128Array::from(unscaled).with_precision_and_scale(*precision, *scale)?)
        }
        DataType::Float64 => Arc::new(Float64Array::from(parsed(values, column, |t| {
            t.parse().ok()
        })?)),
        DataType::Utf8 => Arc::new(StringArray::from(values.collect::<Vec<_>>())),
        DataType::Boolean => Arc::new(BooleanArray::from(parsed(values, column, |t| {
            match t.to_ascii_lowercase().as_str() {
                "1" | "true" => Some(true),
                "0" | "false" => Some(false),
                _ => None,
            }
        })?)),
        // Days since the epoch.
        DataType::Date32 => Arc::new(Date32Array::from(parsed(values, column, |t| {
            t.parse().ok()
        })?)),
        DataType::Time64(TimeUnit::Microsecond) => Arc::new(Time64MicrosecondArray::from(parsed(
            values,
            column,
            seconds_text_to_micros,
        )?)),
        DataType::Binary => {
            let bytes = parsed(values, column, hex_decode)?;
            Arc::new(BinaryArray::from_iter(bytes))
        }
        // `seconds.fraction`, and for `_tz` a second field with the offset.
        DataType::Timestamp(TimeUnit::Microsecond, zone) => {
            let micros = parsed(values, column, |t| {
                seconds_text_to_micros(t.split_whitespace().next().unwrap_or(t))
            })?;
            Arc::new(TimestampMicrosecondArray::from(micros).with_timezone_opt(zone.clone()))
        }
        other => {
            return Err(SnowflakeError::Protocol(format!(
                "no JSON decoding for {other} (column `{}`)",
                column.name
            )))
        }
    };
    Ok(array)
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(kind: &str, scale: i64) -> ColumnType {
        ColumnType {
            name: "c".into(),
            kind: kind.into(),
            scale: Some(scale),
            precision: Some(38),
            nullable: true,
        }
    }

    #[test]
    fn json_text_encodings_decode_to_the_mapped_types() {
        let columns = vec![
            column("fixed", 0),
            column("fixed", 2),
            column("timestamp_tz", 9),
            column("timestamp_ntz", 9),
            column("binary", 0),
            column("boolean", 0),
        ];
        let schema = schema(&columns).unwrap();
        let rows = vec![
            vec![
                Some("42".to_string()),
                Some("1.5".to_string()),
                Some("1704067210.250000000 1440".to_string()),
                Some("-1.5".to_string()),
                Some("ab01".to_string()),
                Some("1".to_string()),
            ],
            vec![None, None, None, None, None, None],
        ];
        let batch = json_batch(&rows, &columns, &schema).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let ints = batch.column(0).as_primitive::<Int64Type>();
        assert_eq!(ints.value(0), 42);
        assert!(ints.is_null(1));
        let decimals = batch
            .column(1)
            .as_primitive::<arrow::datatypes::Decimal128Type>();
        assert_eq!(decimals.value(0), 150);
        let tz = batch
            .column(2)
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        assert_eq!(tz.value(0), 1_704_067_210_250_000);
        let ntz = batch
            .column(3)
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        assert_eq!(ntz.value(0), -1_500_000);
        assert_eq!(batch.column(4).as_binary::<i32>().value(0), &[0xab, 0x01]);
        assert!(batch.column(5).as_boolean().value(0));
    }

    #[test]
    fn scaled_integers_become_microseconds() {
        assert_eq!(scaled_to_micros(15, 1), 1_500_000);
        assert_eq!(scaled_to_micros(1_500_000_000, 9), 1_500_000);
        assert_eq!(scaled_to_micros(-1, 9), -1);
    }

    #[test]
    fn unknown_types_are_refused_by_name() {
        let err = column("geography", 0).arrow_type().unwrap_err();
        assert!(err.to_string().contains("geography"), "{err}");
    }
}
