//! Latest value per entity for materialization, planned on DataFusion so it streams and
//! spills like any query: `ROW_NUMBER() OVER (PARTITION BY entity ORDER BY ts DESC,
//! created_ts DESC, value DESC, NULLs last) = 1` — the same tie rule as training sets.

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{cast, ident, lit, ExprFunctionExt, SortExpr};
use datafusion::prelude::DataFrame;
use quiver_provider_sdk::offline::latest_columns;
use quiver_provider_sdk::{LatestValuesQuery, ProviderError};

use crate::errors;
use crate::training::{require_columns, require_time};

const RANK: &str = "__quiver_rank";

fn event_time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub(crate) fn plan(
    frame: DataFrame,
    query: &LatestValuesQuery,
) -> Result<DataFrame, ProviderError> {
    let mut columns = vec![query.entity_column.as_str(), query.value_column.as_str()];
    columns.extend(query.timestamp_column.as_deref());
    columns.extend(query.created_timestamp_column.as_deref());
    let schema = require_columns(&frame, &query.table, &columns)?;
    for time in [&query.timestamp_column, &query.created_timestamp_column]
        .into_iter()
        .flatten()
    {
        require_time(&schema, &query.table, time)?;
    }

    let mut keep = ident(&query.entity_column).is_not_null();
    let mut order: Vec<SortExpr> = Vec::new();
    let event_time = match &query.timestamp_column {
        Some(ts) => {
            let at = cast(ident(ts), event_time_type());
            keep = keep.and(ident(ts).is_not_null());
            if let Some(since) = query.since {
                let since = ScalarValue::TimestampMicrosecond(
                    Some(since.timestamp_micros()),
                    Some("UTC".into()),
                );
                keep = keep.and(at.clone().gt(lit(since)));
            }
            order.push(ident(ts).sort(false, false));
            at
        }
        None => lit(ScalarValue::TimestampMicrosecond(None, Some("UTC".into()))),
    };
    if let Some(created) = &query.created_timestamp_column {
        order.push(ident(created).sort(false, false));
    }
    order.push(ident(&query.value_column).sort(false, false));
    let rank = row_number()
        .partition_by(vec![ident(&query.entity_column)])
        .order_by(order)
        .build()
        .map_err(errors::datafusion)?
        .alias(RANK);
    frame
        .filter(keep)
        .and_then(|f| f.window(vec![rank]))
        .and_then(|f| f.filter(ident(RANK).eq(lit(1u64))))
        .and_then(|f| {
            f.select(vec![
                cast(ident(&query.entity_column), DataType::Utf8).alias(latest_columns::ENTITY),
                ident(&query.value_column).alias(latest_columns::VALUE),
                event_time.alias(latest_columns::EVENT_TIME),
            ])
        })
        .map_err(errors::datafusion)
}
