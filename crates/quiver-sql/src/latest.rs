//! Latest value per entity, for materialization.

use quiver_provider_sdk::offline::latest_columns;
use quiver_provider_sdk::LatestValuesQuery;

use crate::statement::Binds;
use crate::{Dialect, Param, Resolve, SqlError, Statement};

const SOURCE: &str = "__quiver_source";

/// Latest value per entity: columns `entity` (entity rendered as text), `value`, `event_time`
/// (timestamp, NULL for dimensions), per quiver_provider_sdk::offline::latest_columns; `since` →
/// `timestamp > <bound param>`. Rows with a NULL entity (or, timed, a NULL timestamp) are
/// never picked; ties follow the training-set rule. `DISTINCT ON` on Postgres, `QUALIFY`
/// where the engine has it, a ranked subquery otherwise.
///
/// # Errors
/// [`SqlError::InvalidIdentifier`] for a name the dialect refuses.
pub fn latest_values(
    d: &dyn Dialect,
    q: &LatestValuesQuery,
    resolve: Resolve,
) -> Result<Statement, SqlError> {
    let quote = |c: &str| d.quote_identifier(c);
    let source = quote(SOURCE)?;
    let col = |c: &str| -> Result<String, SqlError> { Ok(format!("{source}.{}", quote(c)?)) };
    let table = d.quote_table(&resolve(&q.table)?)?;
    let entity = col(&q.entity_column)?;
    let value = col(&q.value_column)?;
    let ts = q.timestamp_column.as_deref().map(col).transpose()?;
    let created = q.created_timestamp_column.as_deref().map(col).transpose()?;

    let mut binds = Binds::default();
    let mut conditions = vec![format!("{entity} IS NOT NULL")];
    let mut order = Vec::new();
    if let Some(ts) = &ts {
        conditions.push(format!("{ts} IS NOT NULL"));
        if let Some(since) = q.since {
            let bound = d.instant_param(&binds.bind(Param::Timestamp(since)));
            conditions.push(format!("{} > {bound}", d.instant(ts)));
        }
        order.push(format!("{ts} DESC NULLS LAST"));
    }
    if let Some(created) = &created {
        order.push(format!("{created} DESC NULLS LAST"));
    }
    order.push(format!("{value} DESC NULLS LAST"));

    let event_time = match &ts {
        Some(ts) => d.event_time(ts),
        None => d.null_event_time(),
    };
    let columns = [
        format!("{} AS {}", d.text(&entity), quote(latest_columns::ENTITY)?),
        format!("{value} AS {}", quote(latest_columns::VALUE)?),
        format!("{event_time} AS {}", quote(latest_columns::EVENT_TIME)?),
    ]
    .join(", ");
    let from = format!("FROM {table} AS {source}");
    let filter = format!("WHERE {}", conditions.join(" AND "));
    let rank = format!(
        "ROW_NUMBER() OVER (PARTITION BY {entity} ORDER BY {})",
        order.join(", ")
    );
    let sql = if d.supports_distinct_on() {
        format!(
            "SELECT DISTINCT ON ({entity}) {columns}\n{from}\n{filter}\nORDER BY {entity}, {}",
            order.join(", ")
        )
    } else if d.supports_qualify() {
        format!("SELECT {columns}\n{from}\n{filter}\nQUALIFY {rank} = 1")
    } else {
        let rank_column = quote("__quiver_rank")?;
        let ranked = quote("__quiver_ranked")?;
        format!(
            "SELECT {} FROM (\n  SELECT {columns}, {rank} AS {rank_column}\n  {from}\n  {filter}\n) AS {ranked}\nWHERE {rank_column} = 1",
            [latest_columns::ENTITY, latest_columns::VALUE, latest_columns::EVENT_TIME]
                .into_iter()
                .map(quote)
                .collect::<Result<Vec<_>, _>>()?
                .join(", ")
        )
    };
    Ok(binds.finish(d, &sql))
}
