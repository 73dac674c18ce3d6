//! Arrow record batches of [`OfflineStore::latest_values`](quiver_provider_sdk::OfflineStore::latest_values)
//! converted into [`OnlineRow`]s, and online values into JSON for answers.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType};
use arrow_array::RecordBatch;
use chrono::{DateTime, Utc};
use quiver_provider_sdk::offline::latest_columns;
use quiver_provider_sdk::{OnlineRow, OnlineValue};

/// A value column normalized to one of the online value types.
enum Values {
    Bool(ArrayRef),
    Int(ArrayRef),
    Float(ArrayRef),
    String(ArrayRef),
    Timestamp(ArrayRef),
}

impl Values {
    fn new(array: &ArrayRef) -> Result<Values, String> {
        let to = |t: &DataType| cast(array, t).map_err(|e| e.to_string());
        Ok(match array.data_type() {
            DataType::Null | DataType::Boolean => Values::Bool(to(&DataType::Boolean)?),
            t if t.is_integer() => Values::Int(to(&DataType::Int64)?),
            t if t.is_floating()
                || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) =>
            {
                Values::Float(to(&DataType::Float64)?)
            }
            DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => {
                Values::Timestamp(to(&DataType::Timestamp(TimeUnit::Microsecond, None))?)
            }
            _ => Values::String(to(&DataType::Utf8).map_err(|e| {
                format!(
                    "value type {} cannot be served online: {e}",
                    array.data_type()
                )
            })?),
        })
    }

    fn get(&self, i: usize) -> OnlineValue {
        match self {
            Values::Bool(a) if a.is_valid(i) => OnlineValue::Bool(a.as_boolean().value(i)),
            Values::Int(a) if a.is_valid(i) => {
                OnlineValue::Int(a.as_primitive::<Int64Type>().value(i))
            }
            Values::Float(a) if a.is_valid(i) => {
                OnlineValue::Float(a.as_primitive::<Float64Type>().value(i))
            }
            Values::String(a) if a.is_valid(i) => {
                OnlineValue::String(a.as_string::<i32>().value(i).to_string())
            }
            Values::Timestamp(a) if a.is_valid(i) => {
                OnlineValue::Timestamp(a.as_primitive::<TimestampMicrosecondType>().value(i))
            }
            _ => OnlineValue::Null,
        }
    }
}

/// Rows of one latest-values batch. Rows without an entity key are skipped; rows
/// without an event time (dimensions) take `default_time`, so a re-materialization of
/// a dimension replaces the stored value.
///
/// # Errors
/// A missing column or a type that cannot be converted.
pub fn online_rows(
    batch: &RecordBatch,
    default_time: DateTime<Utc>,
) -> Result<Vec<OnlineRow>, String> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("latest values lack the `{name}` column"))
    };
    let entities =
        cast(column(latest_columns::ENTITY)?, &DataType::Utf8).map_err(|e| e.to_string())?;
    let entities = entities.as_string::<i32>();
    let values = Values::new(column(latest_columns::VALUE)?)?;
    let times = cast(
        column(latest_columns::EVENT_TIME)?,
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )
    .map_err(|e| e.to_string())?;
    let times = times.as_primitive::<TimestampMicrosecondType>();
    let mut rows = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        if entities.is_null(i) {
            continue;
        }
        let event_time = if times.is_valid(i) {
            DateTime::from_timestamp_micros(times.value(i)).unwrap_or(default_time)
        } else {
            default_time
        };
        rows.push(OnlineRow {
            entity: entities.value(i).to_string(),
            value: values.get(i),
            event_time,
        });
    }
    Ok(rows)
}

/// An online value as JSON: timestamps as RFC 3339 text, non-finite floats as null.
pub fn value_json(value: &OnlineValue) -> serde_json::Value {
    match value {
        OnlineValue::Null => serde_json::Value::Null,
        OnlineValue::Bool(b) => (*b).into(),
        OnlineValue::Int(i) => (*i).into(),
        OnlineValue::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        OnlineValue::String(s) => s.clone().into(),
        OnlineValue::Timestamp(micros) => DateTime::from_timestamp_micros(*micros)
            .map(|t| serde_json::Value::String(t.to_rfc3339()))
            .unwrap_or(serde_json::Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float32Array, StringArray, TimestampMicrosecondArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    #[test]
    fn latest_values_become_rows_with_nulls_and_dimensions() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("entity", DataType::Utf8, true),
            Field::new("value", DataType::Float32, true),
            Field::new(
                "event_time",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("u1"), None, Some("u3")])),
                Arc::new(Float32Array::from(vec![Some(1.5), Some(2.0), None])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(1_000_000), Some(0), None])
                        .with_timezone("UTC"),
                ),
            ],
        )
        .unwrap();
        let now = DateTime::from_timestamp(99, 0).unwrap();
        let rows = online_rows(&batch, now).unwrap();
        assert_eq!(
            rows,
            vec![
                OnlineRow {
                    entity: "u1".into(),
                    value: OnlineValue::Float(1.5),
                    event_time: DateTime::from_timestamp(1, 0).unwrap()
                },
                OnlineRow {
                    entity: "u3".into(),
                    value: OnlineValue::Null,
                    event_time: now
                },
            ]
        );
    }

    #[test]
    fn values_render_as_json() {
        assert_eq!(
            value_json(&OnlineValue::Float(f64::NAN)),
            serde_json::Value::Null
        );
        assert_eq!(
            value_json(&OnlineValue::Timestamp(0)),
            serde_json::json!("1970-01-01T00:00:00+00:00")
        );
        assert_eq!(value_json(&OnlineValue::Int(3)), serde_json::json!(3));
    }
}
