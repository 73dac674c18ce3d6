//! What differs between engines: quoting, placeholders, text and timestamp expressions,
//! literals for inline rendering, and which plan features the engine has.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::{SqlError, TableName};

/// One SQL engine's rules. Expression helpers take and return SQL text built by this
/// crate (quoted identifiers, placeholders), never user text.
pub trait Dialect: Send + Sync {
    fn name(&self) -> &'static str;
    /// Validates and quotes one identifier (refuses empty, NUL, over-long for the engine, and
    /// anything the engine cannot quote safely; escapes embedded quote chars by doubling).
    fn quote_identifier(&self, ident: &str) -> Result<String, SqlError>;
    fn quote_table(&self, table: &TableName) -> Result<String, SqlError>;
    /// Bound-parameter placeholder for the i-th parameter (0-based): Postgres `$1`, Snowflake `?`,
    /// BigQuery `@p0`, DataFusion `$1`.
    fn placeholder(&self, index: usize) -> String;
    fn max_identifier_len(&self) -> usize;
    fn supports_asof_join(&self) -> bool {
        false
    }
    fn supports_qualify(&self) -> bool {
        false
    }
    fn supports_lateral(&self) -> bool {
        false
    }
    fn supports_distinct_on(&self) -> bool {
        false
    }
    /// `expr` rendered as text (the `entity` column of latest values).
    fn text(&self, expr: &str) -> String;
    /// A timestamp column, naive (read as UTC) or zoned, as a value that compares by
    /// instant with any other column passed through this function.
    fn instant(&self, expr: &str) -> String;
    /// An [`instant`](Self::instant) minus a bound count of microseconds (`micros` is a
    /// placeholder bound to [`crate::Param::Int`]).
    fn instant_minus_micros(&self, instant: &str, micros: &str) -> String;
    /// A placeholder bound to [`crate::Param::Timestamp`], comparable with
    /// [`instant`](Self::instant).
    fn instant_param(&self, placeholder: &str) -> String;
    /// A timestamp column as the UTC timestamp of `latest_columns::EVENT_TIME`.
    fn event_time(&self, expr: &str) -> String;
    /// A NULL of the `event_time` type (dimensions have no event time).
    fn null_event_time(&self) -> String;
    /// `ROW_NUMBER()` numbering the label's rows: the row id that gives a training set its
    /// order. `columns` are the label columns the query reads, quoted, in the order of
    /// `TrainingSetOrder::LabelColumns` (quiver-provider-sdk). By default rows are numbered
    /// in scan order, which is the label's order where tables have one.
    fn label_row_number(&self, columns: &[String]) -> String {
        let _ = columns;
        "ROW_NUMBER() OVER ()".into()
    }
    /// A bound integer rendered inline (see [`crate::render_inline`]).
    fn int_literal(&self, value: i64) -> String {
        format!("CAST({value} AS BIGINT)")
    }
    /// A bound timestamp rendered inline, as the type [`instant_param`](Self::instant_param)
    /// expects.
    fn timestamp_literal(&self, value: DateTime<Utc>) -> String;
    /// Whether a backslash escapes the next character inside `'…'` strings (to find
    /// transformation placeholders outside literals).
    fn backslash_escapes(&self) -> bool {
        false
    }
    /// The matching `sqlparser` dialect (tests parse every generated statement with it).
    fn parser_dialect(&self) -> Box<dyn sqlparser::dialect::Dialect>;
}

/// Checks every dialect applies: not empty, no control characters (NUL included, and the
/// statement builder's markers), within the engine's length limit.
fn check_common(ident: &str, max_len: usize, len_of: fn(&str) -> usize) -> Result<(), SqlError> {
    if ident.is_empty() {
        return Err(SqlError::identifier(ident, "identifiers must not be empty"));
    }
    if ident.chars().any(char::is_control) {
        return Err(SqlError::identifier(
            ident,
            "identifiers must not contain control characters (NUL, newlines, ...)",
        ));
    }
    if len_of(ident) > max_len {
        return Err(SqlError::identifier(
            ident,
            format!("longer than the engine's limit of {max_len}"),
        ));
    }
    Ok(())
}

fn byte_len(s: &str) -> usize {
    s.len()
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// `"…"` with embedded `"` doubled: Postgres, Snowflake and DataFusion.
fn double_quoted(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn quote_parts(d: &dyn Dialect, table: &TableName) -> Result<String, SqlError> {
    if table.0.is_empty() {
        return Err(SqlError::Invalid(
            "a table name needs at least one part".into(),
        ));
    }
    let parts: Result<Vec<String>, SqlError> =
        table.0.iter().map(|p| d.quote_identifier(p)).collect();
    Ok(parts?.join("."))
}

/// Microseconds since the epoch, ISO 8601 with an explicit UTC offset.
fn iso_utc(value: DateTime<Utc>) -> String {
    value.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// PostgreSQL. Sessions run with `TimeZone = UTC`, so naive `timestamp` and
/// `timestamptz` compare by instant without casts (which keeps (entity, ts) indexes usable).
#[derive(Debug, Clone, Copy, Default)]
pub struct Postgres;

impl Dialect for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn quote_identifier(&self, ident: &str) -> Result<String, SqlError> {
        // NAMEDATALEN - 1 bytes; Postgres would silently truncate longer names.
        check_common(ident, self.max_identifier_len(), byte_len)?;
        Ok(double_quoted(ident))
    }
    fn quote_table(&self, table: &TableName) -> Result<String, SqlError> {
        quote_parts(self, table)
    }
    fn placeholder(&self, index: usize) -> String {
        format!("${}", index + 1)
    }
    fn max_identifier_len(&self) -> usize {
        63
    }
    fn supports_lateral(&self) -> bool {
        true
    }
    fn supports_distinct_on(&self) -> bool {
        true
    }
    fn text(&self, expr: &str) -> String {
        format!("CAST({expr} AS TEXT)")
    }
    fn instant(&self, expr: &str) -> String {
        expr.to_string()
    }
    fn instant_minus_micros(&self, instant: &str, micros: &str) -> String {
        format!("({instant} - CAST({micros} AS BIGINT) * INTERVAL '1 microsecond')")
    }
    fn instant_param(&self, placeholder: &str) -> String {
        format!("CAST({placeholder} AS TIMESTAMPTZ)")
    }
    fn event_time(&self, expr: &str) -> String {
        format!("CAST({expr} AS TIMESTAMPTZ)")
    }
    fn null_event_time(&self) -> String {
        "CAST(NULL AS TIMESTAMPTZ)".into()
    }
    fn timestamp_literal(&self, value: DateTime<Utc>) -> String {
        format!("'{}'", iso_utc(value))
    }
    fn parser_dialect(&self) -> Box<dyn sqlparser::dialect::Dialect> {
        Box::new(sqlparser::dialect::PostgreSqlDialect {})
    }
}

/// Snowflake. Timestamps are compared as `TIMESTAMP_NTZ` in UTC: zoned values are
/// converted to UTC first, naive ones are read as UTC (the session time zone is UTC).
#[derive(Debug, Clone, Copy, Default)]
pub struct Snowflake;

impl Dialect for Snowflake {
    fn name(&self) -> &'static str {
        "snowflake"
    }
    fn quote_identifier(&self, ident: &str) -> Result<String, SqlError> {
        check_common(ident, self.max_identifier_len(), char_len)?;
        Ok(double_quoted(ident))
    }
    fn quote_table(&self, table: &TableName) -> Result<String, SqlError> {
        quote_parts(self, table)
    }
    fn placeholder(&self, _index: usize) -> String {
        "?".into()
    }
    fn max_identifier_len(&self) -> usize {
        255
    }
    fn supports_asof_join(&self) -> bool {
        true
    }
    fn supports_qualify(&self) -> bool {
        true
    }
    fn text(&self, expr: &str) -> String {
        format!("CAST({expr} AS VARCHAR)")
    }
    fn instant(&self, expr: &str) -> String {
        format!("CAST(CONVERT_TIMEZONE('UTC', {expr}) AS TIMESTAMP_NTZ)")
    }
    fn instant_minus_micros(&self, instant: &str, micros: &str) -> String {
        format!("DATEADD(MICROSECOND, -1 * {micros}, {instant})")
    }
    fn instant_param(&self, placeholder: &str) -> String {
        format!("CAST({placeholder} AS TIMESTAMP_NTZ)")
    }
    fn event_time(&self, expr: &str) -> String {
        format!("CONVERT_TIMEZONE('UTC', {expr})")
    }
    fn null_event_time(&self) -> String {
        "CAST(NULL AS TIMESTAMP_TZ)".into()
    }
    fn label_row_number(&self, columns: &[String]) -> String {
        // Snowflake tables have no row order (and ranking windows require an ORDER BY), so
        // a stable order has to come from the data: the label columns.
        order_by_columns(columns)
    }
    fn timestamp_literal(&self, value: DateTime<Utc>) -> String {
        format!("'{}'", value.format("%Y-%m-%d %H:%M:%S%.6f"))
    }
    fn backslash_escapes(&self) -> bool {
        true
    }
    fn parser_dialect(&self) -> Box<dyn sqlparser::dialect::Dialect> {
        Box::new(sqlparser::dialect::SnowflakeDialect {})
    }
}

/// BigQuery. Columns may only hold letters, digits and underscores; `DATETIME` and
/// `TIMESTAMP` columns compare as `TIMESTAMP` (a DATETIME read as UTC).
#[derive(Debug, Clone, Copy, Default)]
pub struct BigQuery;

impl BigQuery {
    fn check_table_part(part: &str) -> Result<String, SqlError> {
        check_common(part, 1024, byte_len)?;
        // Project ids add '-' to the column alphabet; nothing here needs escaping.
        if !part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(SqlError::identifier(
                part,
                "BigQuery project, dataset and table names may only contain ASCII letters, digits, '_' and '-'",
            ));
        }
        Ok(format!("`{part}`"))
    }
}

impl Dialect for BigQuery {
    fn name(&self) -> &'static str {
        "bigquery"
    }
    fn quote_identifier(&self, ident: &str) -> Result<String, SqlError> {
        check_common(ident, self.max_identifier_len(), byte_len)?;
        let mut chars = ident.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(SqlError::identifier(
                ident,
                "BigQuery column names may only contain ASCII letters, digits and '_', and must not start with a digit",
            ));
        }
        Ok(format!("`{ident}`"))
    }
    fn quote_table(&self, table: &TableName) -> Result<String, SqlError> {
        if table.0.is_empty() {
            return Err(SqlError::Invalid(
                "a table name needs at least one part".into(),
            ));
        }
        let parts: Result<Vec<String>, SqlError> = table
            .0
            .iter()
            .map(|p| BigQuery::check_table_part(p))
            .collect();
        Ok(parts?.join("."))
    }
    fn placeholder(&self, index: usize) -> String {
        format!("@p{index}")
    }
    fn label_row_number(&self, columns: &[String]) -> String {
        // BigQuery tables have no row order: a stable order has to come from the data.
        order_by_columns(columns)
    }
    fn max_identifier_len(&self) -> usize {
        300
    }
    fn supports_qualify(&self) -> bool {
        true
    }
    fn text(&self, expr: &str) -> String {
        format!("CAST({expr} AS STRING)")
    }
    fn instant(&self, expr: &str) -> String {
        format!("CAST({expr} AS TIMESTAMP)")
    }
    fn instant_minus_micros(&self, instant: &str, micros: &str) -> String {
        format!("TIMESTAMP_MICROS(UNIX_MICROS({instant}) - {micros})")
    }
    fn instant_param(&self, placeholder: &str) -> String {
        placeholder.to_string()
    }
    fn event_time(&self, expr: &str) -> String {
        format!("CAST({expr} AS TIMESTAMP)")
    }
    fn null_event_time(&self) -> String {
        "CAST(NULL AS TIMESTAMP)".into()
    }
    fn int_literal(&self, value: i64) -> String {
        format!("CAST({value} AS INT64)")
    }
    fn timestamp_literal(&self, value: DateTime<Utc>) -> String {
        format!("TIMESTAMP '{}'", value.format("%Y-%m-%d %H:%M:%S%.6f+00"))
    }
    fn backslash_escapes(&self) -> bool {
        true
    }
    fn parser_dialect(&self) -> Box<dyn sqlparser::dialect::Dialect> {
        Box::new(sqlparser::dialect::BigQueryDialect {})
    }
}

/// DataFusion, the embedded engine. Timestamps compare as integer nanoseconds of their
/// UTC wall time (zoned values cast to UTC, naive ones read as UTC).
#[derive(Debug, Clone, Copy, Default)]
pub struct DataFusion;

impl Dialect for DataFusion {
    fn name(&self) -> &'static str {
        "datafusion"
    }
    fn quote_identifier(&self, ident: &str) -> Result<String, SqlError> {
        check_common(ident, self.max_identifier_len(), char_len)?;
        Ok(double_quoted(ident))
    }
    fn quote_table(&self, table: &TableName) -> Result<String, SqlError> {
        quote_parts(self, table)
    }
    fn placeholder(&self, index: usize) -> String {
        format!("${}", index + 1)
    }
    fn max_identifier_len(&self) -> usize {
        // No engine limit; keep names manageable in plans and error messages.
        1024
    }
    fn text(&self, expr: &str) -> String {
        format!("CAST({expr} AS VARCHAR)")
    }
    fn instant(&self, expr: &str) -> String {
        // Integer nanoseconds: DataFusion has no BIGINT * INTERVAL.
        format!("CAST(CAST({expr} AS TIMESTAMP) AS BIGINT)")
    }
    fn instant_minus_micros(&self, instant: &str, micros: &str) -> String {
        format!("({instant} - CAST({micros} AS BIGINT) * 1000)")
    }
    fn instant_param(&self, placeholder: &str) -> String {
        format!("CAST(CAST({placeholder} AS TIMESTAMP) AS BIGINT)")
    }
    fn event_time(&self, expr: &str) -> String {
        format!("arrow_cast({expr}, 'Timestamp(Microsecond, Some(\"UTC\"))')")
    }
    fn null_event_time(&self) -> String {
        "arrow_cast(NULL, 'Timestamp(Microsecond, Some(\"UTC\"))')".into()
    }
    fn timestamp_literal(&self, value: DateTime<Utc>) -> String {
        format!("to_timestamp_micros({})", value.timestamp_micros())
    }
    fn parser_dialect(&self) -> Box<dyn sqlparser::dialect::Dialect> {
        Box::new(sqlparser::dialect::GenericDialect {})
    }
}

/// `ROW_NUMBER()` over `columns` ascending, NULLs last: the row id of engines whose tables
/// have no row order, stable from one build to the next.
fn order_by_columns(columns: &[String]) -> String {
    let keys: Vec<String> = columns
        .iter()
        .map(|c| format!("{c} ASC NULLS LAST"))
        .collect();
    format!("ROW_NUMBER() OVER (ORDER BY {})", keys.join(", "))
}
