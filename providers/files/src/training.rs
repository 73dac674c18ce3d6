//! Building a point-in-time training set: read the label and each feature's columns with
//! DataFusion (projection pushed into the Parquet/CSV scan), line up key and time types,
//! pick rows with [`crate::asof`], and publish one output row per label row, in label
//! order, through [`crate::outputs`].
//!
//! Features are built [`FEATURES_IN_FLIGHT`] at a time: while one feature's join runs on
//! a blocking thread, the next one's source is being scanned.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::compute::{cast, concat_batches, take};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::{StreamExt, TryStreamExt};
use quiver_provider_sdk::{FeatureQuery, ProviderError, TableRef, TrainingSetQuery};

use crate::asof::{self, Labels, Source, Window};
use crate::outputs::OutputRun;
use crate::{errors, FilesOfflineStore};

/// Rows per output batch written.
const WRITE_BATCH_ROWS: usize = 64 * 1024;

/// Features read and joined concurrently. Two keep both of a small machine's cores busy
/// (one source scanning while another joins) and bound memory to two sources' columns.
const FEATURES_IN_FLIGHT: usize = 2;

pub(crate) fn describe(table: &TableRef) -> String {
    match table {
        TableRef::Table(name) => format!("table `{name}`"),
        TableRef::File { path, .. } => format!("file `{path}`"),
        TableRef::Output(o) => format!("output {} `{}` variant `{}`", o.kind, o.name, o.variant),
    }
}

/// The schema of `frame`, checking `columns` exist in it.
///
/// # Errors
/// `NotFound` naming the first missing column.
pub(crate) fn require_columns(
    frame: &DataFrame,
    table: &TableRef,
    columns: &[&str],
) -> Result<SchemaRef, ProviderError> {
    let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    for column in columns {
        if schema.field_with_name(column).is_err() {
            let known: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(ProviderError::NotFound(format!(
                "column `{column}` not found in {} (columns: {})",
                describe(table),
                known.join(", ")
            )));
        }
    }
    Ok(schema)
}

/// Whether `data_type` can be an event or created timestamp.
pub(crate) fn is_time(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
    )
}

/// # Errors
/// `InvalidQuery` naming `column` when it is not a timestamp or date.
pub(crate) fn require_time(
    schema: &Schema,
    table: &TableRef,
    column: &str,
) -> Result<(), ProviderError> {
    let data_type = schema
        .field_with_name(column)
        .map_err(|e| ProviderError::NotFound(e.to_string()))?
        .data_type();
    if is_time(data_type) {
        Ok(())
    } else {
        Err(ProviderError::InvalidQuery(format!(
            "column `{column}` of {} has type {data_type}; a timestamp column must be a timestamp or a date",
            describe(table)
        )))
    }
}

/// Instants as `Timestamp(Nanosecond, "UTC")`: naive values are read as UTC, zoned ones
/// keep their instant.
fn utc_nanos(array: &ArrayRef) -> Result<ArrayRef, ProviderError> {
    cast(
        array,
        &DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
    )
    .map_err(errors::arrow)
}

/// One type both sides of a key compare in: integers as Int64, strings as Utf8.
fn key_type(label: &DataType, feature: &DataType) -> Option<DataType> {
    fn plain(t: &DataType) -> DataType {
        match t {
            DataType::Dictionary(_, value) => plain(value),
            DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
            DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
            other => other.clone(),
        }
    }
    let (label, feature) = (plain(label), plain(feature));
    if label.is_integer() && feature.is_integer() {
        Some(DataType::Int64)
    } else if label == feature {
        Some(label)
    } else {
        None
    }
}

/// Select `columns` (deduplicated, in order) and collect them into one batch.
async fn collect(frame: DataFrame, columns: &[&str]) -> Result<RecordBatch, ProviderError> {
    let mut unique: Vec<&str> = Vec::new();
    for c in columns {
        if !unique.contains(c) {
            unique.push(c);
        }
    }
    let frame = frame.select_columns(&unique).map_err(errors::datafusion)?;
    let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.map_err(errors::datafusion)?;
    concat_batches(&schema, &batches).map_err(errors::arrow)
}

fn column(batch: &RecordBatch, name: &str) -> ArrayRef {
    batch
        .column_by_name(name)
        .expect("column selected above")
        .clone()
}

fn nanos(duration: Option<std::time::Duration>) -> i64 {
    duration.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

pub(crate) async fn build(
    store: &FilesOfflineStore,
    query: &TrainingSetQuery,
) -> Result<u64, ProviderError> {
    let label_query = &query.label;
    // Label order is the output order: read it on one partition, in file order.
    let ordered = store.context(1);
    let label_frame = store.frame(&ordered, &label_query.table).await?;
    let mut label_columns: Vec<&str> = label_query
        .entity_columns
        .iter()
        .map(String::as_str)
        .collect();
    label_columns.extend(label_query.timestamp_column.as_deref());
    label_columns.push(&label_query.value_column);
    let label_schema = require_columns(&label_frame, &label_query.table, &label_columns)?;
    if let Some(ts) = &label_query.timestamp_column {
        require_time(&label_schema, &label_query.table, ts)?;
    }
    for f in &query.features {
        for k in &f.keys {
            if !label_query.entity_columns.contains(&k.label_column) {
                require_columns(&label_frame, &label_query.table, &[&k.label_column])?;
            }
        }
    }
    let mut output_names: Vec<&str> = label_query
        .entity_columns
        .iter()
        .map(String::as_str)
        .collect();
    output_names.extend(label_query.timestamp_column.as_deref());
    output_names.extend(query.features.iter().map(|f| f.name.as_str()));
    output_names.push(&label_query.output_column);
    for (i, name) in output_names.iter().enumerate() {
        if output_names[..i].contains(name) {
            return Err(ProviderError::InvalidQuery(format!(
                "training set output column `{name}` appears twice"
            )));
        }
    }
    let mut needed = label_columns.clone();
    for f in &query.features {
        needed.extend(f.keys.iter().map(|k| k.label_column.as_str()));
    }
    let label = collect(label_frame, &needed).await?;
    let label_time = match &label_query.timestamp_column {
        Some(ts) => Some(utc_nanos(&column(&label, ts))?),
        None => None,
    };

    let context = store.context(0);
    let label_fields = label.schema();
    let copy = |name: &str, as_name: &str| -> (Field, ArrayRef) {
        let field = label_fields.field_with_name(name).expect("selected");
        (
            Field::new(as_name, field.data_type().clone(), field.is_nullable()),
            column(&label, name),
        )
    };
    let mut parts: Vec<(Field, ArrayRef)> = Vec::new();
    for entity in &label_query.entity_columns {
        parts.push(copy(entity, entity));
    }
    if let Some(ts) = &label_query.timestamp_column {
        parts.push(copy(ts, ts));
    }
    // The futures are made up front (they start nothing until polled): a stream mapping
    // features to futures lazily trips the compiler's `Send` check of this async fn.
    let pending: Vec<_> = query
        .features
        .iter()
        .map(|feature| feature_column(store, &context, feature, &label, label_time.as_ref()))
        .collect();
    let features: Vec<ArrayRef> = futures::stream::iter(pending)
        .buffered(FEATURES_IN_FLIGHT)
        .try_collect()
        .await?;
    for (feature, values) in query.features.iter().zip(features) {
        parts.push((
            Field::new(&feature.name, values.data_type().clone(), true),
            values,
        ));
    }
    parts.push(copy(&label_query.value_column, &label_query.output_column));
    let (fields, columns): (Vec<Field>, Vec<ArrayRef>) = parts.into_iter().unzip();

    let schema = Arc::new(Schema::new(fields));
    let output = RecordBatch::try_new(schema.clone(), columns).map_err(errors::arrow)?;
    let mut run = OutputRun::create(&store.root, &query.output, schema)?;
    let mut offset = 0;
    while offset < output.num_rows() {
        let length = WRITE_BATCH_ROWS.min(output.num_rows() - offset);
        run.write(&output.slice(offset, length)).await?;
        offset += length;
    }
    run.publish().await
}

/// One output column: for each label row, the value of the source row picked.
async fn feature_column(
    store: &FilesOfflineStore,
    context: &SessionContext,
    feature: &FeatureQuery,
    label: &RecordBatch,
    label_time: Option<&ArrayRef>,
) -> Result<ArrayRef, ProviderError> {
    let frame = store.frame(context, &feature.table).await?;
    let mut columns: Vec<&str> = feature
        .keys
        .iter()
        .map(|k| k.feature_column.as_str())
        .collect();
    columns.extend(feature.timestamp_column.as_deref());
    columns.extend(feature.created_timestamp_column.as_deref());
    columns.push(&feature.value_column);
    let schema = require_columns(&frame, &feature.table, &columns)?;
    for time in [&feature.timestamp_column, &feature.created_timestamp_column]
        .into_iter()
        .flatten()
    {
        require_time(&schema, &feature.table, time)?;
    }
    if feature.keys.is_empty() {
        return Err(ProviderError::InvalidQuery(format!(
            "feature `{}` has no key columns",
            feature.name
        )));
    }
    let mut label_keys = Vec::new();
    let mut key_types = Vec::new();
    for k in &feature.keys {
        let left = label
            .schema()
            .field_with_name(&k.label_column)
            .map_err(errors::arrow)?
            .data_type()
            .clone();
        let right = schema
            .field_with_name(&k.feature_column)
            .map_err(errors::arrow)?
            .data_type()
            .clone();
        let common = key_type(&left, &right).ok_or_else(|| {
            ProviderError::InvalidQuery(format!(
                "key `{}` is {left} in the label but `{}` is {right} in {}",
                k.label_column,
                k.feature_column,
                describe(&feature.table)
            ))
        })?;
        label_keys.push(cast(&column(label, &k.label_column), &common).map_err(errors::arrow)?);
        key_types.push(common);
    }

    let source = collect(frame, &columns).await?;
    let source_keys = feature
        .keys
        .iter()
        .zip(&key_types)
        .map(|(k, t)| cast(&column(&source, &k.feature_column), t).map_err(errors::arrow))
        .collect::<Result<Vec<_>, _>>()?;
    let time = match &feature.timestamp_column {
        Some(ts) => Some(utc_nanos(&column(&source, ts))?),
        None => None,
    };
    let created = match &feature.created_timestamp_column {
        Some(c) => Some(utc_nanos(&column(&source, c))?),
        None => None,
    };
    let value = column(&source, &feature.value_column);
    let label_time = label_time.cloned();
    let rows = label.num_rows();
    let window = Window {
        lag: nanos(feature.lag),
        max_age: feature.max_age.map(|m| nanos(Some(m))),
    };
    // The join is CPU-bound: run it off the async workers so other features' scans go on.
    let join = tokio::task::spawn_blocking(move || {
        let picked = asof::pick(
            &Labels {
                keys: &label_keys,
                time: label_time.as_ref(),
                rows,
            },
            &Source {
                keys: &source_keys,
                time: time.as_ref(),
                created: created.as_ref(),
                value: &value,
            },
            window,
        )?;
        take(value.as_ref(), &picked, None)
    });
    join.await
        .map_err(|e| ProviderError::Other(format!("point-in-time join failed: {e}")))?
        .map_err(errors::arrow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_as_int64_or_one_string_type() {
        assert_eq!(
            key_type(&DataType::Int32, &DataType::UInt16),
            Some(DataType::Int64)
        );
        assert_eq!(
            key_type(&DataType::Utf8View, &DataType::LargeUtf8),
            Some(DataType::Utf8)
        );
        assert_eq!(key_type(&DataType::Utf8, &DataType::Int64), None);
    }
}
