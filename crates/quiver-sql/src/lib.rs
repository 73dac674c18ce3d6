//! Quiver's SQL generation, shared by the warehouse offline providers (Postgres,
//! Snowflake, BigQuery) and usable on DataFusion: one [`Dialect`] abstraction (quoting,
//! placeholders, timestamp arithmetic, capabilities) and, per dialect, the statements for
//! point-in-time training sets ([`point_in_time`]), latest values per entity
//! ([`latest_values`]) and transformations ([`transformation`]). It owns no connection:
//! providers run what it returns, with the parameters bound (or [`render_inline`]).
//!
//! Every statement implements the semantics of `quiver_provider_sdk::offline` exactly.
//! Each engine gets the plan it runs best:
//! - **Postgres**: `LEFT JOIN LATERAL (… ORDER BY ts DESC … LIMIT 1)` per feature — one
//!   index probe per label row and feature on an `(entity…, ts)` index; `DISTINCT ON`
//!   for latest values.
//! - **Snowflake**: `ASOF JOIN … MATCH_CONDITION` per feature, over the source first
//!   reduced to one row per (keys, ts) by the tie rule with `QUALIFY` (ASOF alone picks an
//!   arbitrary row among ties); `max_age` is applied after the match. `QUALIFY` for latest
//!   values.
//! - **BigQuery** and **DataFusion**: the window plan — per feature a range join on keys
//!   and time bounds ranked by `ROW_NUMBER() OVER (PARTITION BY row id …)`, keeping rank 1
//!   (`QUALIFY` where the engine has it). Features are chained stage after stage rather
//!   than joined back on the row id, so the label scan (and its `ROW_NUMBER() OVER ()`,
//!   which is not deterministic on BigQuery) is evaluated exactly once.
//!
//! The window plan is reachable on every dialect through [`point_in_time_with`] and
//! [`PitPlan::Window`] (for emulators without ASOF JOIN or LATERAL).
//!
//! Identifiers are validated and quoted by dialect rules; values (lag, max_age, since)
//! are always bound parameters, never pasted into SQL.

mod dialect;
mod error;
mod latest;
mod output;
mod pit;
mod statement;
mod transform;

use chrono::{DateTime, Utc};

pub use dialect::{BigQuery, DataFusion, Dialect, Postgres, Snowflake};
pub use error::SqlError;
pub use latest::latest_values;
pub use output::output_table_name;
pub use pit::{point_in_time, point_in_time_with, PitPlan};
pub use statement::render_inline;
pub use transform::transformation;

/// The training-set column numbering label rows 1..n (BIGINT; see
/// [`Dialect::label_row_number`] for the order), last
/// in the output: providers read the output back `ORDER BY __quiver_row_id`.
pub const ROW_ID: &str = "__quiver_row_id";

/// A physical table as unquoted parts, e.g. `["analytics", "orders"]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName(pub Vec<String>);

impl TableName {
    /// `"schema.table"` (or `"table"`, `"db.schema.table"`): splits on dots and checks each
    /// part is non-empty and free of control characters. Dialect rules apply when quoting.
    ///
    /// # Errors
    /// [`SqlError::InvalidIdentifier`] naming the bad input.
    pub fn parse(dotted: &str) -> Result<TableName, SqlError> {
        let parts: Vec<String> = dotted.split('.').map(str::to_string).collect();
        for part in &parts {
            if part.trim().is_empty() {
                return Err(SqlError::identifier(
                    dotted,
                    "table names need non-empty parts separated by '.'",
                ));
            }
            if part.chars().any(char::is_control) {
                return Err(SqlError::identifier(
                    dotted,
                    "table names must not contain control characters",
                ));
            }
        }
        Ok(TableName(parts))
    }
}

/// A bound parameter value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// A BIGINT (durations are microsecond counts).
    Int(i64),
    /// A UTC instant.
    Timestamp(DateTime<Utc>),
}

/// SQL text and its parameters, in placeholder order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Param>,
}

/// Resolves a TableRef to a physical table; providers pass a closure.
pub type Resolve<'a> = &'a dyn Fn(&quiver_provider_sdk::TableRef) -> Result<TableName, SqlError>;

/// A column a training set reads, and whether it must hold timestamps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColumnUse<'a> {
    pub table: &'a quiver_provider_sdk::TableRef,
    pub column: &'a str,
    pub timestamp: bool,
}

fn column_use<'a>(
    table: &'a quiver_provider_sdk::TableRef,
    column: &'a str,
    timestamp: bool,
) -> ColumnUse<'a> {
    ColumnUse {
        table,
        column,
        timestamp,
    }
}

/// Every column `query` reads, table by table in query order (label first), so a
/// provider can check them all against its catalog before any SQL runs and name the
/// first one missing or of the wrong type.
pub fn training_set_columns(query: &quiver_provider_sdk::TrainingSetQuery) -> Vec<ColumnUse<'_>> {
    let label = &query.label;
    let mut uses: Vec<ColumnUse<'_>> = label
        .entity_columns
        .iter()
        .chain(std::iter::once(&label.value_column))
        .map(|c| column_use(&label.table, c, false))
        .chain(
            label
                .timestamp_column
                .iter()
                .map(|c| column_use(&label.table, c, true)),
        )
        .collect();
    for feature in &query.features {
        let table = &feature.table;
        uses.extend(
            feature
                .keys
                .iter()
                .map(|k| column_use(table, &k.feature_column, false)),
        );
        uses.push(column_use(table, &feature.value_column, false));
        uses.extend(
            [&feature.timestamp_column, &feature.created_timestamp_column]
                .into_iter()
                .flatten()
                .map(|c| column_use(table, c, true)),
        );
    }
    uses
}
