//! Definitions resolved into provider queries: a source into the [`TableRef`] its rows
//! are read from, a SQL source into a [`Transformation`], a training set into a
//! [`TrainingSetQuery`], a feature into a [`LatestValuesQuery`] and its [`OnlineTable`].
//! Stored definitions have every reference pinned, so each lookup is exact.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use quiver_coordinator::JobError;
use quiver_core::definition::{sql_inputs, FileFormat as DefinitionFormat};
use quiver_core::{
    Definition, FeatureDef, Kind, LabelDef, ResourceId, ResourceRef, SourceDef, Status,
    TrainingSetDef,
};
use quiver_metadata::{MetadataStore, ResourceRecord};
use quiver_provider_sdk::{
    FeatureQuery, FileFormat, KeyPair, LabelQuery, LatestValuesQuery, OnlineTable, OnlineTableRef,
    OutputRef, TableRef, TrainingSetQuery, Transformation,
};

use crate::RuntimeError;

/// The output kind of a SQL source's rows.
pub const SOURCE_OUTPUT: &str = "source";
/// The output kind of a training set's rows.
pub const TRAINING_SET_OUTPUT: &str = "training_set";

/// Reads definitions from the metadata store and resolves them.
#[derive(Clone)]
pub struct Resolver {
    store: Arc<dyn MetadataStore>,
}

impl Resolver {
    pub fn new(store: Arc<dyn MetadataStore>) -> Self {
        Resolver { store }
    }

    /// One stored resource by pinned reference (`variant: None` = default variant).
    pub async fn record(
        &self,
        kind: Kind,
        reference: &ResourceRef,
    ) -> Result<ResourceRecord, RuntimeError> {
        self.store
            .get(kind, &reference.name, reference.variant.as_deref())
            .await?
            .ok_or_else(|| RuntimeError::NotFound(format!("{kind} `{reference}` not found")))
    }

    /// A record and its definition of the expected kind, or `NotFound`.
    async fn typed<T: Clone>(
        &self,
        kind: Kind,
        reference: &ResourceRef,
        pick: impl Fn(&Definition) -> Option<&T>,
    ) -> Result<(ResourceRecord, T), RuntimeError> {
        let record = self.record(kind, reference).await?;
        let def = pick(&record.definition)
            .cloned()
            .ok_or_else(|| RuntimeError::NotFound(format!("{kind} `{reference}` not found")))?;
        Ok((record, def))
    }

    pub async fn source(
        &self,
        reference: &ResourceRef,
    ) -> Result<(ResourceRecord, SourceDef), RuntimeError> {
        self.typed(Kind::Source, reference, |d| match d {
            Definition::Source(def) => Some(def),
            _ => None,
        })
        .await
    }

    pub async fn feature(
        &self,
        reference: &ResourceRef,
    ) -> Result<(ResourceRecord, FeatureDef), RuntimeError> {
        self.typed(Kind::Feature, reference, |d| match d {
            Definition::Feature(def) => Some(def),
            _ => None,
        })
        .await
    }

    pub async fn label(
        &self,
        reference: &ResourceRef,
    ) -> Result<(ResourceRecord, LabelDef), RuntimeError> {
        self.typed(Kind::Label, reference, |d| match d {
            Definition::Label(def) => Some(def),
            _ => None,
        })
        .await
    }

    pub async fn training_set(
        &self,
        reference: &ResourceRef,
    ) -> Result<(ResourceRecord, TrainingSetDef), RuntimeError> {
        self.typed(Kind::TrainingSet, reference, |d| match d {
            Definition::TrainingSet(def) => Some(def),
            _ => None,
        })
        .await
    }

    /// The SQL transformation of `source`, with each input bound to its table, and the
    /// input source records (upstreams of the job).
    pub async fn transformation(
        &self,
        source: &SourceDef,
    ) -> Result<(Transformation, Vec<ResourceRecord>), RuntimeError> {
        let sql = source.sql.as_deref().ok_or_else(|| {
            RuntimeError::Unresolvable(format!(
                "source `{}:{}` is not a SQL transformation",
                source.name, source.variant
            ))
        })?;
        let references = sql_inputs(sql).map_err(RuntimeError::Unresolvable)?;
        let mut inputs = Vec::with_capacity(references.len());
        let mut upstreams = Vec::with_capacity(references.len());
        for reference in references {
            let (record, input) = self.source(&reference).await?;
            if input.provider != source.provider {
                return Err(RuntimeError::Unresolvable(format!(
                    "transformation `{}:{}` runs on provider `{}` but its input `{reference}` is on `{}`; inputs must be on the transformation's provider",
                    source.name, source.variant, source.provider, input.provider
                )));
            }
            inputs.push((reference.to_string(), source_table(&input)?));
            upstreams.push(record);
        }
        let transformation = Transformation {
            sql: sql.to_string(),
            inputs,
            output: OutputRef {
                kind: SOURCE_OUTPUT.to_string(),
                name: source.name.clone(),
                variant: source.variant.clone(),
            },
        };
        Ok((transformation, upstreams))
    }

    /// The point-in-time query of a training set, the offline provider it runs on, and
    /// the source records it reads (upstreams of the job).
    pub async fn training_set_query(
        &self,
        training_set: &TrainingSetDef,
    ) -> Result<(TrainingSetQuery, String, Vec<ResourceRecord>), RuntimeError> {
        let (_, label) = self.label(&training_set.label).await?;
        let (label_source_record, label_source) = self.source(&label.source).await?;
        let provider = label_source.provider.clone();
        let mut upstreams = vec![label_source_record];
        let label_query = LabelQuery {
            table: source_table(&label_source)?,
            entity_columns: label
                .entities
                .iter()
                .map(|e| e.column.clone().unwrap_or_else(|| e.entity.clone()))
                .collect(),
            value_column: label.value_column.clone(),
            output_column: label.name.clone(),
            timestamp_column: label.timestamp_column.clone(),
        };
        let mut features = Vec::with_capacity(training_set.features.len());
        let mut columns = BTreeSet::from([label.name.clone()]);
        columns.extend(label_query.entity_columns.iter().cloned());
        columns.extend(label_query.timestamp_column.iter().cloned());
        for item in &training_set.features {
            let (_, feature) = self.feature(&item.feature).await?;
            let Some(label_entity) = label.entities.iter().find(|e| e.entity == feature.entity)
            else {
                return Err(RuntimeError::Unresolvable(format!(
                    "feature `{}` is keyed by entity `{}`, which label `{}:{}` does not have (its entities: {})",
                    item.feature,
                    feature.entity,
                    label.name,
                    label.variant,
                    label
                        .entities
                        .iter()
                        .map(|e| e.entity.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            let (source_record, source) = self.source(&feature.source).await?;
            if source.provider != provider {
                return Err(RuntimeError::Unresolvable(format!(
                    "feature `{}` reads source `{}` on provider `{}` but label `{}:{}` is on `{}`; a training set is built on one offline provider",
                    item.feature, feature.source, source.provider, label.name, label.variant, provider
                )));
            }
            let name = match item.lag {
                Some(lag) => format!("{}_lag_{}", feature.name, humanize(lag.0)),
                None => feature.name.clone(),
            };
            if !columns.insert(name.clone()) {
                return Err(RuntimeError::Unresolvable(format!(
                    "training set `{}:{}` has two columns named `{name}`; list each feature (and lag) once and avoid feature names equal to the label's columns",
                    training_set.name, training_set.variant
                )));
            }
            features.push(FeatureQuery {
                name,
                table: source_table(&source)?,
                keys: vec![KeyPair {
                    label_column: label_entity
                        .column
                        .clone()
                        .unwrap_or_else(|| label_entity.entity.clone()),
                    feature_column: feature
                        .entity_column
                        .clone()
                        .unwrap_or_else(|| feature.entity.clone()),
                }],
                value_column: feature.value_column.clone(),
                timestamp_column: feature.timestamp_column.clone(),
                created_timestamp_column: source.created_timestamp_column.clone(),
                max_age: feature.max_age.map(|d| d.0),
                lag: item.lag.map(|d| d.0),
            });
            if !upstreams.iter().any(|u| u.id == source_record.id) {
                upstreams.push(source_record);
            }
        }
        let query = TrainingSetQuery {
            label: label_query,
            features,
            output: OutputRef {
                kind: TRAINING_SET_OUTPUT.to_string(),
                name: training_set.name.clone(),
                variant: training_set.variant.clone(),
            },
        };
        Ok((query, provider, upstreams))
    }

    /// The latest-values query of a feature, its online table, and its source record.
    pub async fn materialization(
        &self,
        feature: &FeatureDef,
    ) -> Result<(LatestValuesQuery, OnlineTable, SourceDef, ResourceRecord), RuntimeError> {
        let (record, source) = self.source(&feature.source).await?;
        let query = LatestValuesQuery {
            table: source_table(&source)?,
            entity_column: feature
                .entity_column
                .clone()
                .unwrap_or_else(|| feature.entity.clone()),
            value_column: feature.value_column.clone(),
            timestamp_column: feature.timestamp_column.clone(),
            created_timestamp_column: source.created_timestamp_column.clone(),
            since: None,
        };
        Ok((query, online_table(feature), source, record))
    }
}

/// Where a source's rows are read from.
///
/// # Errors
/// [`RuntimeError::Unresolvable`] for a file whose format is neither given nor implied
/// by its extension.
pub fn source_table(source: &SourceDef) -> Result<TableRef, RuntimeError> {
    if let Some(table) = &source.table {
        return Ok(TableRef::Table(table.clone()));
    }
    if let Some(file) = &source.file {
        let format = match file.format {
            Some(DefinitionFormat::Parquet) => FileFormat::Parquet,
            Some(DefinitionFormat::Csv) => FileFormat::Csv,
            None => format_from_extension(&file.path).ok_or_else(|| {
                RuntimeError::Unresolvable(format!(
                    "source `{}:{}`: cannot tell the format of `{}` from its extension; set `file.format` to parquet or csv",
                    source.name, source.variant, file.path
                ))
            })?,
        };
        return Ok(TableRef::File {
            path: file.path.clone(),
            format,
            schema: file.schema.as_deref().map(explicit_schema),
        });
    }
    Ok(TableRef::Output(OutputRef {
        kind: SOURCE_OUTPUT.to_string(),
        name: source.name.clone(),
        variant: source.variant.clone(),
    }))
}

/// `.parquet`/`.pq` and `.csv` (also compressed `.csv.gz`); a path without an extension
/// (a directory of files) is read as Parquet.
fn format_from_extension(path: &str) -> Option<FileFormat> {
    let lower = path.trim_end_matches('/').to_ascii_lowercase();
    let file_name = Path::new(&lower).file_name()?.to_str()?.to_string();
    if file_name.ends_with(".parquet") || file_name.ends_with(".pq") {
        Some(FileFormat::Parquet)
    } else if file_name.ends_with(".csv") || file_name.ends_with(".csv.gz") {
        Some(FileFormat::Csv)
    } else if !file_name.contains('.') {
        Some(FileFormat::Parquet)
    } else {
        None
    }
}

/// The online table a feature is materialized into; values expire after `max_age`.
pub fn online_table(feature: &FeatureDef) -> OnlineTable {
    OnlineTable {
        table: OnlineTableRef {
            feature: feature.name.clone(),
            variant: feature.variant.clone(),
        },
        ttl: feature.max_age.map(|d| d.0),
    }
}

/// Fail when an upstream failed; wait ([`JobError::Waiting`], re-queued without using an
/// attempt) while it is pending or running.
pub fn require_ready(upstream: &ResourceRecord) -> Result<(), JobError> {
    match upstream.status {
        Status::Ready => Ok(()),
        Status::Failed => Err(JobError::Failed(format!(
            "upstream {} failed: {}",
            describe(&upstream.id),
            upstream.error.as_deref().unwrap_or("no error recorded")
        ))),
        status => Err(JobError::Waiting(format!(
            "waiting for upstream {} ({status})",
            describe(&upstream.id)
        ))),
    }
}

fn describe(id: &ResourceId) -> String {
    id.to_string()
}

/// `7d` → `7d`, `1h 30m` → `1h30m`: a lag as a column-name suffix.
fn humanize(duration: std::time::Duration) -> String {
    let secs = duration.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size && (secs / size) * size == secs {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

/// The Arrow schema of a source's explicit `file.schema`. Columns are nullable: a file
/// may hold NULLs in any column, and the point-in-time semantics define what they mean.
fn explicit_schema(columns: &[quiver_core::ColumnDef]) -> arrow_schema::SchemaRef {
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use quiver_core::ValueType;
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| {
            let data_type = match c.value_type {
                ValueType::Bool => DataType::Boolean,
                ValueType::Int32 => DataType::Int32,
                ValueType::Int64 => DataType::Int64,
                ValueType::Float32 => DataType::Float32,
                ValueType::Float64 => DataType::Float64,
                ValueType::String => DataType::Utf8,
                ValueType::Timestamp => {
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
                }
            };
            Field::new(&c.name, data_type, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(json: serde_json::Value) -> SourceDef {
        let mut base = serde_json::json!({
            "name": "tx", "variant": "v1", "owner": "o", "provider": "local"
        });
        base.as_object_mut()
            .unwrap()
            .extend(json.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn an_explicit_file_schema_overrides_inference() {
        let table = source_table(&source(serde_json::json!({"file": {
            "path": "tx.csv",
            "schema": [{"name": "user_id", "type": "string"}, {"name": "ts", "type": "timestamp"},
                       {"name": "amount", "type": "float64"}]
        }})))
        .unwrap();
        let TableRef::File {
            schema: Some(schema),
            ..
        } = table
        else {
            panic!("expected a file with a schema: {table:?}");
        };
        let fields: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| format!("{}:{}", f.name(), f.data_type()))
            .collect();
        assert_eq!(
            fields,
            [
                "user_id:Utf8",
                "ts:Timestamp(µs, \"UTC\")",
                "amount:Float64"
            ]
        );
    }

    #[test]
    fn sources_resolve_to_tables_files_and_outputs() {
        assert_eq!(
            source_table(&source(serde_json::json!({"table": "public.tx"}))).unwrap(),
            TableRef::Table("public.tx".into())
        );
        for (path, format) in [
            ("tx.parquet", FileFormat::Parquet),
            ("dir/TX.CSV", FileFormat::Csv),
            ("by_day/", FileFormat::Parquet),
        ] {
            assert_eq!(
                source_table(&source(serde_json::json!({"file": {"path": path}}))).unwrap(),
                TableRef::File {
                    path: path.into(),
                    format,
                    schema: None
                },
                "{path}"
            );
        }
        assert_eq!(
            source_table(&source(
                serde_json::json!({"file": {"path": "tx.data", "format": "csv"}})
            ))
            .unwrap(),
            TableRef::File {
                path: "tx.data".into(),
                format: FileFormat::Csv,
                schema: None
            }
        );
        let err = source_table(&source(serde_json::json!({"file": {"path": "tx.json"}})))
            .unwrap_err()
            .to_string();
        assert!(err.contains("set `file.format`"), "{err}");
        assert_eq!(
            source_table(&source(serde_json::json!({"sql": "SELECT 1"}))).unwrap(),
            TableRef::Output(OutputRef {
                kind: "source".into(),
                name: "tx".into(),
                variant: "v1".into()
            })
        );
    }

    #[test]
    fn lags_name_columns_readably() {
        use std::time::Duration;
        assert_eq!(humanize(Duration::from_secs(86_400)), "1d");
        assert_eq!(humanize(Duration::from_secs(5_400)), "90m");
        assert_eq!(humanize(Duration::from_secs(7)), "7s");
    }
}
