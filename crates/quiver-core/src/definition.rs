//! Declarative definitions: what a user writes in YAML (or sends as JSON) for each kind.
//!
//! Every struct denies unknown fields, so a typo is an error rather than a silently
//! ignored setting. A stored definition is the applied one with every reference pinned
//! to a variant, so comparing two definitions is comparing their JSON.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

use crate::kind::{Kind, ResourceId};
use crate::names::{validate_name, validate_variant};
use crate::reference::ResourceRef;
use crate::secret::Secret;

/// One resource definition, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Definition {
    User(UserDef),
    Provider(ProviderDef),
    Entity(EntityDef),
    Source(SourceDef),
    Feature(FeatureDef),
    Label(LabelDef),
    TrainingSet(TrainingSetDef),
    Model(ModelDef),
}

/// A person or team that owns resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A system that stores or computes data, with its typed configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderDef {
    pub name: String,
    pub owner: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub config: ProviderConfig,
}

/// Provider configuration, tagged by `type`. Secret fields accept a string or
/// `{env: VAR}` and are never returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProviderConfig {
    /// Parquet/CSV files through object_store: a local directory, `s3://` or `gs://`.
    Files {
        root: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access_key_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_access_key: Option<Secret>,
    },
    Postgres {
        host: String,
        #[serde(default = "default_postgres_port")]
        port: u16,
        database: String,
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<Secret>,
        /// Schema of Quiver's outputs (default `quiver`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schema: Option<String>,
        /// Whether Quiver may create `(keys…, timestamp)` indexes on feature source
        /// tables so point-in-time joins are index lookups (default true).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        manage_indexes: Option<bool>,
    },
    Snowflake {
        account: String,
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<Secret>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        private_key: Option<Secret>,
        warehouse: String,
        database: String,
        schema: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        /// Base URL overriding `https://{account}.snowflakecomputing.com` (private link,
        /// or a local stand-in such as fakesnow).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        /// Build point-in-time joins with `ASOF JOIN` (default true). Off only for
        /// engines that lack it, such as the fakesnow emulator; the window plan computes
        /// the same rows, more slowly.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        asof_join: Option<bool>,
    },
    Bigquery {
        project_id: String,
        dataset: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credentials_json: Option<Secret>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
    },
    Redis {
        address: String,
        #[serde(default)]
        db: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<Secret>,
    },
    Dynamodb {
        region: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access_key_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_access_key: Option<Secret>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        table_prefix: Option<String>,
    },
    /// The embedded online store, on local disk under the data directory.
    Embedded {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
}

fn default_postgres_port() -> u16 {
    5432
}

impl ProviderConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            ProviderConfig::Files { .. } => "files",
            ProviderConfig::Postgres { .. } => "postgres",
            ProviderConfig::Snowflake { .. } => "snowflake",
            ProviderConfig::Bigquery { .. } => "bigquery",
            ProviderConfig::Redis { .. } => "redis",
            ProviderConfig::Dynamodb { .. } => "dynamodb",
            ProviderConfig::Embedded { .. } => "embedded",
        }
    }

    /// Every secret of this configuration, mutably, so redaction cannot miss one.
    fn secrets_mut(&mut self) -> Vec<&mut Secret> {
        match self {
            ProviderConfig::Files {
                secret_access_key, ..
            }
            | ProviderConfig::Dynamodb {
                secret_access_key, ..
            } => secret_access_key.iter_mut().collect(),
            ProviderConfig::Postgres { password, .. } | ProviderConfig::Redis { password, .. } => {
                password.iter_mut().collect()
            }
            ProviderConfig::Snowflake {
                password,
                private_key,
                ..
            } => password.iter_mut().chain(private_key.iter_mut()).collect(),
            ProviderConfig::Bigquery {
                credentials_json, ..
            } => credentials_json.iter_mut().collect(),
            ProviderConfig::Embedded { .. } => Vec::new(),
        }
    }
}

/// Something features and labels are keyed by (a user, a card, a merchant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityDef {
    pub name: String,
    pub owner: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A table or file (primary source), or a SQL transformation of other sources.
/// Exactly one of `table`, `file` and `sql` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceDef {
    pub name: String,
    pub variant: String,
    pub owner: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub provider: String,
    /// A table (or view) in the provider, optionally schema-qualified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// A file or directory of files, relative to the provider's root or a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileLocation>,
    /// A SQL transformation; other sources are referenced as `{{ name }}` or
    /// `{{ name:variant }}` and pinned to a variant at apply time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// Column that breaks ties between rows with the same event time (latest wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_timestamp_column: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileLocation {
    pub path: String,
    /// Inferred from the extension when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FileFormat>,
    /// Every column in file order with its type, overriding schema inference (useful
    /// for CSV, where inference guesses). Absent: inferred from the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Vec<ColumnDef>>,
}

/// A column of an explicit schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnDef {
    pub name: String,
    #[serde(rename = "type")]
    pub value_type: ValueType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Parquet,
    Csv,
}

/// Where a source's rows live, derived from its definition.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceLocation<'a> {
    Table(&'a str),
    File(&'a FileLocation),
    Sql(&'a str),
}

/// A typed value column of a source, keyed by an entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureDef {
    pub name: String,
    pub variant: String,
    pub owner: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub entity: String,
    pub source: ResourceRef,
    /// Column of the source holding the entity key; defaults to the entity's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_column: Option<String>,
    pub value_column: String,
    pub value_type: ValueType,
    /// Event-time column; a feature without one is a dimension (latest row per entity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_column: Option<String>,
    /// Values older than this at label time are treated as missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<DurationSpec>,
    /// Online store the feature is materialized into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_provider: Option<String>,
    /// How the online copy is kept fresh after the first (full) materialization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub materialization: Option<MaterializationSpec>,
}

/// Scheduled incremental materialization of a feature into its online store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaterializationSpec {
    /// When to run, as a five-field cron expression in UTC (`*/15 * * * *`). Each run is
    /// incremental: it reads source rows from the stored watermark minus `lookback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// How far before the watermark an incremental run reads again, so rows that arrive
    /// late are still materialized. Default [`DEFAULT_LOOKBACK`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback: Option<DurationSpec>,
}

/// The look-back of an incremental materialization when none is given: one hour.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(3600);

/// The target a model learns, keyed by one or several entities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelDef {
    pub name: String,
    pub variant: String,
    pub owner: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub source: ResourceRef,
    pub entities: Vec<LabelEntity>,
    pub value_column: String,
    pub value_type: ValueType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_column: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelEntity {
    pub entity: String,
    /// Column of the label source holding this entity's key; defaults to the entity name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

/// A label joined point-in-time with features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingSetDef {
    pub name: String,
    pub variant: String,
    pub owner: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub label: ResourceRef,
    pub features: Vec<TrainingSetFeature>,
}

/// A feature of a training set: `name`, `name:variant`, or `{feature, lag}`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TrainingSetFeature {
    pub feature: ResourceRef,
    /// Shift the feature back in time: the value as of `label_ts - lag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<DurationSpec>,
}

impl<'de> Deserialize<'de> for TrainingSetFeature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            feature: ResourceRef,
            #[serde(default)]
            lag: Option<DurationSpec>,
        }
        struct FeatureVisitor;
        impl<'de> Visitor<'de> for FeatureVisitor {
            type Value = TrainingSetFeature;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a feature: `name`, `name:variant` or `{feature, lag}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TrainingSetFeature {
                    feature: ResourceRef::parse(v).map_err(E::custom)?,
                    lag: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let full = Full::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(TrainingSetFeature {
                    feature: full.feature,
                    lag: full.lag,
                })
            }
        }
        d.deserialize_any(FeatureVisitor)
    }
}

/// A model trained on training sets; recorded for lineage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelDef {
    pub name: String,
    pub owner: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub training_sets: Vec<ResourceRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    Bool,
    Int32,
    Int64,
    Float32,
    Float64,
    String,
    Timestamp,
}

/// A duration written as `90s`, `15m`, `7d` or `1h 30m`; stored in canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationSpec(pub Duration);

impl Serialize for DurationSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let parsed = humantime::parse_duration(&s).map_err(|e| {
            de::Error::custom(format!(
                "invalid duration `{}`: {e} (write e.g. `90s`, `15m`, `7d`)",
                s.escape_debug()
            ))
        })?;
        if parsed.is_zero() {
            return Err(de::Error::custom("a duration must be greater than zero"));
        }
        Ok(DurationSpec(parsed))
    }
}

impl utoipa::PartialSchema for DurationSpec {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A duration such as `90s`, `15m`, `7d`"))
            .examples(["7days"])
            .into()
    }
}

impl utoipa::ToSchema for DurationSpec {}

/// A reference from one definition to another resource, before or after pinning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub kind: Kind,
    pub name: String,
    /// `None` for an unpinned reference to a versioned kind, `Some("")` never: unversioned
    /// kinds carry an empty string.
    pub variant: Option<String>,
    /// The field the reference was written in, for error messages.
    pub field: String,
}

/// A definition that breaks a rule beyond its shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidDefinition {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> InvalidDefinition {
    InvalidDefinition {
        field: field.into(),
        message: message.into(),
    }
}

const MAX_DESCRIPTION: usize = 10_000;
const MAX_TAG: usize = 64;
const MAX_TAGS: usize = 64;
const MAX_COLUMN: usize = 128;
const MAX_SQL: usize = 100_000;

macro_rules! each_def {
    ($self:ident, $d:ident => $e:expr) => {
        match $self {
            Definition::User($d) => $e,
            Definition::Provider($d) => $e,
            Definition::Entity($d) => $e,
            Definition::Source($d) => $e,
            Definition::Feature($d) => $e,
            Definition::Label($d) => $e,
            Definition::TrainingSet($d) => $e,
            Definition::Model($d) => $e,
        }
    };
}

impl Definition {
    pub fn kind(&self) -> Kind {
        match self {
            Definition::User(_) => Kind::User,
            Definition::Provider(_) => Kind::Provider,
            Definition::Entity(_) => Kind::Entity,
            Definition::Source(_) => Kind::Source,
            Definition::Feature(_) => Kind::Feature,
            Definition::Label(_) => Kind::Label,
            Definition::TrainingSet(_) => Kind::TrainingSet,
            Definition::Model(_) => Kind::Model,
        }
    }

    pub fn name(&self) -> &str {
        each_def!(self, d => &d.name)
    }

    /// The variant, or `""` for unversioned kinds.
    pub fn variant(&self) -> &str {
        match self {
            Definition::Source(d) => &d.variant,
            Definition::Feature(d) => &d.variant,
            Definition::Label(d) => &d.variant,
            Definition::TrainingSet(d) => &d.variant,
            _ => "",
        }
    }

    pub fn id(&self) -> ResourceId {
        ResourceId::new(self.kind(), self.name(), self.variant())
    }

    /// The owner; a user owns itself.
    pub fn owner(&self) -> &str {
        match self {
            Definition::User(d) => &d.name,
            Definition::Provider(d) => &d.owner,
            Definition::Entity(d) => &d.owner,
            Definition::Source(d) => &d.owner,
            Definition::Feature(d) => &d.owner,
            Definition::Label(d) => &d.owner,
            Definition::TrainingSet(d) => &d.owner,
            Definition::Model(d) => &d.owner,
        }
    }

    pub fn description(&self) -> &str {
        each_def!(self, d => &d.description)
    }

    pub fn tags(&self) -> &[String] {
        each_def!(self, d => &d.tags)
    }

    /// Where a source's rows come from; `None` for other kinds.
    pub fn source_location(&self) -> Option<SourceLocation<'_>> {
        let Definition::Source(s) = self else {
            return None;
        };
        match (&s.table, &s.file, &s.sql) {
            (Some(t), None, None) => Some(SourceLocation::Table(t)),
            (None, Some(f), None) => Some(SourceLocation::File(f)),
            (None, None, Some(q)) => Some(SourceLocation::Sql(q)),
            _ => None,
        }
    }

    /// The same definition with every inline secret masked, for API responses.
    pub fn redacted(&self) -> Definition {
        let mut copy = self.clone();
        if let Definition::Provider(p) = &mut copy {
            for secret in p.config.secrets_mut() {
                *secret = secret.redacted();
            }
        }
        copy
    }

    /// Check every rule the type system does not: names, columns, tags, exactly-one-of
    /// choices, SQL placeholders, duplicates.
    pub fn validate(&self) -> Result<(), InvalidDefinition> {
        validate_name(self.name()).map_err(|e| invalid("name", e.to_string()))?;
        if self.kind().is_versioned() {
            validate_variant(self.variant()).map_err(|e| invalid("variant", e.to_string()))?;
        }
        if !matches!(self, Definition::User(_)) {
            let owner = self.owner();
            if owner.trim().is_empty() {
                return Err(invalid(
                    "owner",
                    "must not be empty: name the person or team responsible",
                ));
            }
            check_text("owner", owner, MAX_COLUMN)?;
        }
        check_text("description", self.description(), MAX_DESCRIPTION)?;
        if self.tags().len() > MAX_TAGS {
            return Err(invalid("tags", format!("at most {MAX_TAGS} tags")));
        }
        for (i, tag) in self.tags().iter().enumerate() {
            if tag.trim().is_empty() {
                return Err(invalid(format!("tags[{i}]"), "must not be empty"));
            }
            check_text(&format!("tags[{i}]"), tag, MAX_TAG)?;
        }
        for r in self.references() {
            validate_name(&r.name).map_err(|e| invalid(&r.field, e.to_string()))?;
            if let Some(v) = r.variant.as_deref().filter(|v| !v.is_empty()) {
                validate_variant(v).map_err(|e| invalid(&r.field, e.to_string()))?;
            }
        }
        match self {
            Definition::User(u) => {
                if let Some(email) = &u.email {
                    check_text("email", email, 254)?;
                    if !email.contains('@') {
                        return Err(invalid("email", "must be an email address"));
                    }
                }
            }
            Definition::Provider(p) => validate_provider(&p.config)?,
            Definition::Entity(_) | Definition::Model(_) => {}
            Definition::Source(s) => {
                let set = [s.table.is_some(), s.file.is_some(), s.sql.is_some()];
                if set.iter().filter(|x| **x).count() != 1 {
                    return Err(invalid(
                        "table|file|sql",
                        "a source needs exactly one of `table` (a table in the provider), `file` (a file path) or `sql` (a transformation)",
                    ));
                }
                if let Some(t) = &s.table {
                    check_text("table", t, 255)?;
                }
                if let Some(f) = &s.file {
                    check_text("file.path", &f.path, 1024)?;
                    if let Some(columns) = &f.schema {
                        if columns.is_empty() {
                            return Err(invalid(
                                "file.schema",
                                "list every column of the file, or leave `schema` out to infer it",
                            ));
                        }
                        let mut seen = BTreeSet::new();
                        for (i, c) in columns.iter().enumerate() {
                            check_column(&format!("file.schema[{i}].name"), &c.name)?;
                            if !seen.insert(&c.name) {
                                return Err(invalid(
                                    format!("file.schema[{i}]"),
                                    format!("column `{}` is listed twice", c.name),
                                ));
                            }
                        }
                    }
                }
                if let Some(q) = &s.sql {
                    if q.trim().is_empty() {
                        return Err(invalid("sql", "must not be empty"));
                    }
                    if q.len() > MAX_SQL {
                        return Err(invalid("sql", format!("longer than {MAX_SQL} bytes")));
                    }
                    let inputs = sql_inputs(q).map_err(|m| invalid("sql", m))?;
                    if inputs.is_empty() {
                        return Err(invalid(
                            "sql",
                            "a transformation must read at least one source, written `{{ name }}` or `{{ name:variant }}`",
                        ));
                    }
                }
                check_column_opt("created_timestamp_column", &s.created_timestamp_column)?;
            }
            Definition::Feature(f) => {
                check_column_opt("entity_column", &f.entity_column)?;
                check_column("value_column", &f.value_column)?;
                check_column_opt("timestamp_column", &f.timestamp_column)?;
                if f.max_age.is_some() && f.timestamp_column.is_none() {
                    return Err(invalid(
                        "max_age",
                        "needs a `timestamp_column`: a feature without event time has no age",
                    ));
                }
                if let Some(m) = &f.materialization {
                    if f.online_provider.is_none() {
                        return Err(invalid(
                            "materialization",
                            "needs an `online_provider` to materialize into",
                        ));
                    }
                    if let Some(schedule) = &m.schedule {
                        crate::schedule::parse(schedule)
                            .map_err(|e| invalid("materialization.schedule", e))?;
                    }
                    if m.lookback.is_some() && f.timestamp_column.is_none() {
                        return Err(invalid(
                            "materialization.lookback",
                            "needs a `timestamp_column`: a feature without event time is always materialized in full",
                        ));
                    }
                }
            }
            Definition::Label(l) => {
                if l.entities.is_empty() {
                    return Err(invalid("entities", "a label needs at least one entity"));
                }
                let mut seen = BTreeSet::new();
                for (i, e) in l.entities.iter().enumerate() {
                    check_column_opt(&format!("entities[{i}].column"), &e.column)?;
                    if !seen.insert(&e.entity) {
                        return Err(invalid(
                            format!("entities[{i}]"),
                            format!("entity `{}` is listed twice", e.entity),
                        ));
                    }
                }
                check_column("value_column", &l.value_column)?;
                check_column_opt("timestamp_column", &l.timestamp_column)?;
            }
            Definition::TrainingSet(t) => {
                if t.features.is_empty() {
                    return Err(invalid(
                        "features",
                        "a training set needs at least one feature",
                    ));
                }
                let mut seen = BTreeSet::new();
                for (i, f) in t.features.iter().enumerate() {
                    // Each feature becomes one output column named after it.
                    if !seen.insert(&f.feature.name) {
                        return Err(invalid(
                            format!("features[{i}]"),
                            format!(
                                "feature `{}` is listed twice; a training set has one column per feature name",
                                f.feature.name
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Every reference this definition makes, in field order.
    pub fn references(&self) -> Vec<Reference> {
        let unversioned = |kind, name: &str, field: &str| Reference {
            kind,
            name: name.to_string(),
            variant: Some(String::new()),
            field: field.to_string(),
        };
        let versioned = |kind, r: &ResourceRef, field: String| Reference {
            kind,
            name: r.name.clone(),
            variant: r.variant.clone(),
            field,
        };
        let mut out = Vec::new();
        match self {
            Definition::User(_) | Definition::Provider(_) | Definition::Entity(_) => {}
            Definition::Source(s) => {
                out.push(unversioned(Kind::Provider, &s.provider, "provider"));
                if let Some(q) = &s.sql {
                    for r in sql_inputs(q).unwrap_or_default() {
                        out.push(versioned(Kind::Source, &r, "sql".into()));
                    }
                }
            }
            Definition::Feature(f) => {
                out.push(unversioned(Kind::Entity, &f.entity, "entity"));
                out.push(versioned(Kind::Source, &f.source, "source".into()));
                if let Some(p) = &f.online_provider {
                    out.push(unversioned(Kind::Provider, p, "online_provider"));
                }
            }
            Definition::Label(l) => {
                out.push(versioned(Kind::Source, &l.source, "source".into()));
                for (i, e) in l.entities.iter().enumerate() {
                    out.push(unversioned(
                        Kind::Entity,
                        &e.entity,
                        &format!("entities[{i}].entity"),
                    ));
                }
            }
            Definition::TrainingSet(t) => {
                out.push(versioned(Kind::Label, &t.label, "label".into()));
                for (i, f) in t.features.iter().enumerate() {
                    out.push(versioned(
                        Kind::Feature,
                        &f.feature,
                        format!("features[{i}]"),
                    ));
                }
            }
            Definition::Model(m) => {
                for (i, r) in m.training_sets.iter().enumerate() {
                    out.push(versioned(
                        Kind::TrainingSet,
                        r,
                        format!("training_sets[{i}]"),
                    ));
                }
            }
        }
        out
    }

    /// Pin every reference to a variant. `resolve(kind, name)` returns the variant an
    /// unpinned reference means (the default one); references already pinned are kept.
    pub fn pin_references(
        &mut self,
        mut resolve: impl FnMut(Kind, &str) -> Option<String>,
    ) -> Result<(), InvalidDefinition> {
        let mut pin =
            |kind: Kind, r: &mut ResourceRef, field: &str| -> Result<(), InvalidDefinition> {
                if r.variant.is_none() {
                    let v = resolve(kind, &r.name).ok_or_else(|| {
                        invalid(field, format!("{kind} `{}` does not exist", r.name))
                    })?;
                    r.variant = Some(v);
                }
                Ok(())
            };
        match self {
            Definition::User(_) | Definition::Provider(_) | Definition::Entity(_) => {}
            Definition::Source(s) => {
                if let Some(q) = &s.sql {
                    let mut pinned = String::with_capacity(q.len());
                    let mut failure = None;
                    rewrite_placeholders(q, &mut pinned, |mut r| {
                        if failure.is_none() {
                            if let Err(e) = pin(Kind::Source, &mut r, "sql") {
                                failure = Some(e);
                            }
                        }
                        r
                    })
                    .map_err(|m| invalid("sql", m))?;
                    if let Some(e) = failure {
                        return Err(e);
                    }
                    s.sql = Some(pinned);
                }
            }
            Definition::Feature(f) => pin(Kind::Source, &mut f.source, "source")?,
            Definition::Label(l) => pin(Kind::Source, &mut l.source, "source")?,
            Definition::TrainingSet(t) => {
                pin(Kind::Label, &mut t.label, "label")?;
                for (i, f) in t.features.iter_mut().enumerate() {
                    pin(Kind::Feature, &mut f.feature, &format!("features[{i}]"))?;
                }
            }
            Definition::Model(m) => {
                for (i, r) in m.training_sets.iter_mut().enumerate() {
                    pin(Kind::TrainingSet, r, &format!("training_sets[{i}]"))?;
                }
            }
        }
        Ok(())
    }

    /// The fields (dotted paths) in which two definitions of the same resource differ.
    /// Only paths are reported, never values, so secrets cannot leak through a conflict.
    pub fn differing_fields(&self, other: &Definition) -> Vec<String> {
        let a = serde_json::to_value(self).unwrap_or_default();
        let b = serde_json::to_value(other).unwrap_or_default();
        let mut out = Vec::new();
        diff_values("", &a, &b, &mut out);
        out
    }
}

fn diff_values(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let null = Value::Null;
                diff_values(
                    &join(k),
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff_values(&format!("{path}[{i}]"), p, q, out);
            }
        }
        _ if a == b => {}
        _ => out.push(if path.is_empty() {
            "(whole definition)".into()
        } else {
            path.to_string()
        }),
    }
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), InvalidDefinition> {
    if value.chars().count() > max {
        return Err(invalid(field, format!("longer than {max} characters")));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

fn check_column(field: &str, value: &str) -> Result<(), InvalidDefinition> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().count() > MAX_COLUMN {
        return Err(invalid(
            field,
            format!("longer than {MAX_COLUMN} characters"),
        ));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

fn check_column_opt(field: &str, value: &Option<String>) -> Result<(), InvalidDefinition> {
    value.as_deref().map_or(Ok(()), |v| check_column(field, v))
}

fn validate_provider(config: &ProviderConfig) -> Result<(), InvalidDefinition> {
    let mut copy = config.clone();
    for secret in copy.secrets_mut() {
        if secret.is_redaction_mask() {
            return Err(invalid(
                "config",
                "a secret holds the redaction mask `**redacted**` copied from an API response; write the real value or `{env: VARIABLE}`",
            ));
        }
    }
    let required: Vec<(&str, &str)> = match config {
        ProviderConfig::Files { root, .. } => vec![("config.root", root)],
        ProviderConfig::Postgres {
            host,
            database,
            user,
            ..
        } => vec![
            ("config.host", host),
            ("config.database", database),
            ("config.user", user),
        ],
        ProviderConfig::Snowflake {
            account,
            user,
            warehouse,
            database,
            schema,
            ..
        } => vec![
            ("config.account", account),
            ("config.user", user),
            ("config.warehouse", warehouse),
            ("config.database", database),
            ("config.schema", schema),
        ],
        ProviderConfig::Bigquery {
            project_id,
            dataset,
            ..
        } => vec![
            ("config.project_id", project_id),
            ("config.dataset", dataset),
        ],
        ProviderConfig::Redis { address, .. } => vec![("config.address", address)],
        ProviderConfig::Dynamodb { region, .. } => vec![("config.region", region)],
        ProviderConfig::Embedded { .. } => vec![],
    };
    for (field, value) in required {
        if value.trim().is_empty() {
            return Err(invalid(field, "must not be empty"));
        }
        check_text(field, value, 1024)?;
    }
    Ok(())
}

/// The sources a SQL transformation reads, in order of first use, from `{{ name }}` and
/// `{{ name:variant }}` placeholders.
pub fn sql_inputs(sql: &str) -> Result<Vec<ResourceRef>, String> {
    let mut refs = Vec::new();
    rewrite_placeholders(sql, &mut String::new(), |r| {
        if !refs.contains(&r) {
            refs.push(r.clone());
        }
        r
    })?;
    Ok(refs)
}

/// Copy `sql` into `out`, passing each placeholder's reference through `f` and writing
/// back what it returns as `{{ name:variant }}`.
fn rewrite_placeholders(
    sql: &str,
    out: &mut String,
    mut f: impl FnMut(ResourceRef) -> ResourceRef,
) -> Result<(), String> {
    let mut rest = sql;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "unclosed `{{` placeholder: write `{{ source_name }}`".to_string())?;
        let inner = after[..end].trim();
        let r = ResourceRef::parse(inner)
            .map_err(|e| format!("placeholder `{{{{ {} }}}}`: {e}", inner.escape_debug()))?;
        out.push_str("{{ ");
        out.push_str(&f(r).to_string());
        out.push_str(" }}");
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature_json() -> serde_json::Value {
        serde_json::json!({
            "kind": "feature", "name": "avg_amount", "variant": "v1", "owner": "risk",
            "entity": "user", "source": "tx_agg", "value_column": "avg_amount",
            "value_type": "float64", "timestamp_column": "ts", "max_age": "7d"
        })
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused() {
        let mut v = feature_json();
        v["valu_column"] = "x".into();
        let err = serde_json::from_value::<Definition>(v)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `valu_column`"), "{err}");
        let err =
            serde_json::from_value::<Definition>(serde_json::json!({"kind": "sorce", "name": "x"}))
                .unwrap_err()
                .to_string();
        assert!(err.contains("unknown variant `sorce`"), "{err}");
        let err = serde_json::from_value::<Definition>(serde_json::json!({
            "kind": "provider", "name": "p", "owner": "o",
            "config": {"type": "postgress", "host": "h"}
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown variant `postgress`"), "{err}");
        let err = serde_json::from_value::<Definition>(serde_json::json!({
            "kind": "provider", "name": "p", "owner": "o",
            "config": {"type": "redis", "address": "h", "passwd": "x"}
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `passwd`"), "{err}");
    }

    #[test]
    fn pins_sql_placeholders_and_lists_inputs() {
        let mut d: Definition = serde_json::from_value(serde_json::json!({
            "kind": "source", "name": "agg", "variant": "v1", "owner": "o", "provider": "local",
            "sql": "SELECT * FROM {{ tx }} JOIN {{users:v2}} USING (id) JOIN {{ tx }} t2"
        }))
        .unwrap();
        d.validate().unwrap();
        d.pin_references(|_, _| Some("v9".into())).unwrap();
        let Definition::Source(s) = &d else {
            unreachable!()
        };
        assert_eq!(
            s.sql.as_deref().unwrap(),
            "SELECT * FROM {{ tx:v9 }} JOIN {{ users:v2 }} USING (id) JOIN {{ tx:v9 }} t2"
        );
        let refs: Vec<String> = d
            .references()
            .iter()
            .map(|r| format!("{}:{:?}", r.name, r.variant))
            .collect();
        assert_eq!(
            refs,
            ["local:Some(\"\")", "tx:Some(\"v9\")", "users:Some(\"v2\")"]
        );
    }

    #[test]
    fn materialization_schedules_are_checked() {
        let with = |m: serde_json::Value, online: bool| {
            let mut v = feature_json();
            v["materialization"] = m;
            if online {
                v["online_provider"] = "redis".into();
            }
            serde_json::from_value::<Definition>(v).map(|d| d.validate())
        };
        with(
            serde_json::json!({"schedule": "*/15 * * * *", "lookback": "2h"}),
            true,
        )
        .unwrap()
        .unwrap();
        with(serde_json::json!({}), true).unwrap().unwrap();
        let err = with(serde_json::json!({"schedule": "every 5 minutes"}), true)
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("materialization.schedule") && err.contains("five fields"),
            "{err}"
        );
        let err = with(serde_json::json!({"schedule": "* * * * *"}), false)
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(err.contains("online_provider"), "{err}");
        let err = with(serde_json::json!({"schedul": "* * * * *"}), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `schedul`"), "{err}");
        let err = with(serde_json::json!({"lookback": "0s"}), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("greater than zero"), "{err}");
    }

    #[test]
    fn differing_fields_names_paths_not_values() {
        let a: Definition = serde_json::from_value(feature_json()).unwrap();
        let mut v = feature_json();
        v["value_column"] = "other".into();
        v["max_age"] = "1d".into();
        let b: Definition = serde_json::from_value(v).unwrap();
        assert_eq!(a.differing_fields(&b), ["max_age", "value_column"]);
        assert!(a.differing_fields(&a).is_empty());
    }

    #[test]
    fn redaction_masks_every_secret() {
        let d: Definition = serde_json::from_value(serde_json::json!({
            "kind": "provider", "name": "sf", "owner": "o",
            "config": {"type": "snowflake", "account": "a", "user": "u", "password": "pw1",
                       "private_key": "pk1", "warehouse": "w", "database": "d", "schema": "s"}
        }))
        .unwrap();
        let shown = serde_json::to_string(&d.redacted()).unwrap();
        assert!(!shown.contains("pw1") && !shown.contains("pk1"), "{shown}");
        assert!(
            d.redacted().validate().is_err(),
            "the mask must not be re-applied"
        );
    }

    #[test]
    fn validation_catches_semantic_mistakes() {
        let cases = [
            (
                serde_json::json!({"kind": "source", "name": "s", "variant": "v1", "owner": "o", "provider": "p"}),
                "exactly one of",
            ),
            (
                serde_json::json!({"kind": "source", "name": "s", "variant": "v1", "owner": "o", "provider": "p", "sql": "SELECT 1"}),
                "at least one source",
            ),
            (
                serde_json::json!({"kind": "source", "name": "s", "variant": "v1", "owner": "o", "provider": "p", "sql": "SELECT * FROM {{ x"}),
                "unclosed",
            ),
            (
                serde_json::json!({"kind": "source", "name": "s", "variant": "v1", "owner": "o", "provider": "p",
                    "file": {"path": "x.csv", "schema": [{"name": "a", "type": "int64"}, {"name": "a", "type": "string"}]}}),
                "listed twice",
            ),
            (
                serde_json::json!({"kind": "source", "name": "s", "variant": "v1", "owner": "o", "provider": "p",
                    "file": {"path": "x.csv", "schema": []}}),
                "list every column",
            ),
            (
                serde_json::json!({"kind": "entity", "name": "Bad Name", "owner": "o"}),
                "name",
            ),
            (
                serde_json::json!({"kind": "entity", "name": "e", "owner": " "}),
                "owner",
            ),
            (
                serde_json::json!({"kind": "training_set", "name": "t", "variant": "v1", "owner": "o", "label": "l", "features": ["a", "a:v2"]}),
                "listed twice",
            ),
        ];
        for (json, needle) in cases {
            let d: Definition = serde_json::from_value(json.clone()).unwrap();
            let err = d.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }
}
