//! The offline-store contract: tables and files a provider holds, SQL transformations,
//! point-in-time training sets, latest values for materialization, and streaming reads.
//!
//! # Point-in-time semantics (every provider implements exactly this)
//! For each label row and each feature, the value comes from the feature row whose keys
//! equal the label row's and whose `feature_ts` is the greatest with
//! `feature_ts <= label_ts - lag` (inclusive) and, with `max_age`,
//! `feature_ts >= label_ts - lag - max_age`. Ties on `feature_ts` go to the greatest
//! `created_ts` (when the source has one, NULLs losing), then to the greatest value
//! (NULLs losing) — the documented deterministic rule. No match gives NULL. A label
//! without a timestamp takes each feature's latest row. A feature without a timestamp is
//! a dimension: its latest row per entity by the same tie rule, whatever the label time.
//! Exactly one output row per label row, duplicates included, in a stable order: the
//! label's own order, or sorted by the label columns where tables have no row order
//! ([`TrainingSetOrder`], declared in [`OfflineCapabilities`]).
//! Timestamps are UTC; naive timestamps are read as UTC.

use std::pin::Pin;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::{Provider, ProviderError};

/// Record batches streamed out of a provider.
pub type BatchStream = Pin<Box<dyn Stream<Item = Result<RecordBatch, ProviderError>> + Send>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Parquet,
    Csv,
}

/// Where a table's rows are.
#[derive(Debug, Clone, PartialEq)]
pub enum TableRef {
    /// A table (or view) of the provider, possibly schema-qualified.
    Table(String),
    /// A file or a directory of files, relative to the provider's root or a URL. An
    /// explicit schema overrides inference.
    File {
        path: String,
        format: FileFormat,
        schema: Option<SchemaRef>,
    },
    /// An output Quiver owns (a transformation's or a training set's result).
    Output(OutputRef),
}

/// The location of a Quiver-owned output, keyed by resource and variant, so a retried
/// job writes the same place and a new variant never touches an old one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutputRef {
    /// `source` or `training_set`.
    pub kind: String,
    pub name: String,
    pub variant: String,
}

/// A SQL transformation: `sql` names its inputs by placeholders `{{ name:variant }}`,
/// each bound to a table in `inputs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transformation {
    pub sql: String,
    /// `(placeholder, table)`, the placeholder as written between the braces.
    pub inputs: Vec<(String, TableRef)>,
    pub output: OutputRef,
}

/// A key column of the label matched to a key column of a feature's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub label_column: String,
    pub feature_column: String,
}

/// One feature of a training set.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureQuery {
    /// Output column name.
    pub name: String,
    pub table: TableRef,
    pub keys: Vec<KeyPair>,
    pub value_column: String,
    pub timestamp_column: Option<String>,
    pub created_timestamp_column: Option<String>,
    pub max_age: Option<Duration>,
    pub lag: Option<Duration>,
}

/// The label side of a training set.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelQuery {
    pub table: TableRef,
    /// Entity key columns, copied to the output under the same names.
    pub entity_columns: Vec<String>,
    pub value_column: String,
    /// Output column name of the label value.
    pub output_column: String,
    /// Copied to the output under the same name when present.
    pub timestamp_column: Option<String>,
}

/// A point-in-time training set. Output columns: the label's entity columns, its
/// timestamp column (if any), one column per feature (by `FeatureQuery::name`), then the
/// label value (`LabelQuery::output_column`).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSetQuery {
    pub label: LabelQuery,
    pub features: Vec<FeatureQuery>,
    pub output: OutputRef,
}

/// Latest value per entity of one feature, for materialization.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestValuesQuery {
    pub table: TableRef,
    /// The entity key column (features are keyed by one entity).
    pub entity_column: String,
    pub value_column: String,
    pub timestamp_column: Option<String>,
    pub created_timestamp_column: Option<String>,
    /// Incremental runs: only rows with `timestamp > since` (the watermark minus the
    /// look-back) are considered. `None` is a full run.
    pub since: Option<DateTime<Utc>>,
}

/// Columns of the batches [`OfflineStore::latest_values`] streams.
pub mod latest_columns {
    /// Utf8: the entity key rendered as text.
    pub const ENTITY: &str = "entity";
    /// The feature's value, in its source type.
    pub const VALUE: &str = "value";
    /// Timestamp(Microsecond, "UTC"), nullable (NULL for dimensions).
    pub const EVENT_TIME: &str = "event_time";
}

/// What an offline store can do, so callers choose a plan instead of failing late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OfflineCapabilities {
    pub tables: bool,
    pub files: bool,
    pub sql_transformations: bool,
    pub training_sets: bool,
    pub incremental_latest_values: bool,
    /// The order of a training set's rows (see [`TrainingSetOrder`]).
    pub training_set_order: TrainingSetOrder,
}

/// The order in which a provider returns a training set's rows. Always stable: building
/// the same training set twice gives the same rows in the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainingSetOrder {
    /// The label's own row order (files have one: their rows in file order).
    #[default]
    Label,
    /// Label rows sorted ascending by the label columns the query reads: entity columns,
    /// then the timestamp column, then the value column, then any other key columns,
    /// NULLs last, strings by code point. For engines whose tables have no row order
    /// (Snowflake), where "label order" would differ from one build to the next; rows
    /// equal in all those columns give equal output rows, so the order is total.
    LabelColumns,
}

/// A system that holds offline data and computes on it.
#[async_trait]
pub trait OfflineStore: Provider {
    fn capabilities(&self) -> OfflineCapabilities;

    /// The schema of a table, file or output.
    ///
    /// # Errors
    /// [`ProviderError::NotFound`] when it does not exist.
    async fn schema(&self, table: &TableRef) -> Result<SchemaRef, ProviderError>;

    /// Run a transformation and publish its output atomically; returns rows written.
    ///
    /// # Contract
    /// Idempotent: re-running replaces the output; a failure leaves the previous output.
    ///
    /// # Errors
    /// [`ProviderError::InvalidQuery`] when the SQL does not parse or run.
    async fn run_transformation(
        &self,
        transformation: &Transformation,
    ) -> Result<u64, ProviderError>;

    /// Build a training set per the module's point-in-time semantics and publish it
    /// atomically at `query.output`; returns rows written (= label rows).
    ///
    /// # Errors
    /// [`ProviderError::NotFound`] for a missing table or column,
    /// [`ProviderError::InvalidQuery`] for a column of the wrong type.
    async fn build_training_set(&self, query: &TrainingSetQuery) -> Result<u64, ProviderError>;

    /// Stream the latest value per entity (see [`latest_columns`]).
    async fn latest_values(&self, query: &LatestValuesQuery) -> Result<BatchStream, ProviderError>;

    /// Stream a table, file or output in batches without loading it whole.
    async fn read(&self, table: &TableRef) -> Result<BatchStream, ProviderError>;
}
