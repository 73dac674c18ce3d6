//! The files offline provider: Parquet and CSV files on local disk, S3 or GCS (through
//! `object_store`), SQL transformations and latest values on DataFusion, and
//! point-in-time training sets by a sort-merge as-of join on Arrow arrays ([`asof`]).
//!
//! - Root: a local directory (the embedded default) or `s3://bucket/prefix` /
//!   `gs://bucket/prefix` (cargo features `s3` / `gcs`); `TableRef::File` paths are
//!   relative to it.
//! - Outputs (transformations, training sets) are variant-keyed and published atomically
//!   through a manifest ([`outputs`]); readers only ever see a complete run.
//! - Errors map to [`ProviderError`] in one place ([`errors`]).

mod asof;
mod errors;
mod latest;
mod outputs;
mod root;
mod training;

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::datasource::file_format::options::{CsvReadOptions, ParquetReadOptions};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{DataFrame, SQLOptions, SessionConfig, SessionContext};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::ObjectStoreExt;
use quiver_provider_sdk::{
    BatchStream, FileFormat, HealthReport, LatestValuesQuery, OfflineCapabilities, OfflineStore,
    Provider, ProviderError, ProviderFactory, ProviderHandle, SchemaRef, TableRef,
    TrainingSetQuery, Transformation,
};
use serde::Deserialize;

pub use crate::root::RemoteOptions;
use crate::root::Root;

/// The provider kind this crate registers.
pub const KIND: &str = "files";

/// The files offline store.
pub struct FilesOfflineStore {
    root: Root,
    runtime: Arc<RuntimeEnv>,
}

impl FilesOfflineStore {
    /// A store rooted at a local directory, created when missing.
    ///
    /// # Errors
    /// `InvalidConfig` when the directory cannot be created.
    pub fn local(dir: impl Into<PathBuf>) -> Result<Self, ProviderError> {
        Self::with_root(Root::local(&dir.into())?)
    }

    /// A store rooted at a URL: `s3://bucket/prefix` (feature `s3`), `gs://bucket/prefix`
    /// (feature `gcs`) or `file:///dir`. Nothing is contacted until the first operation
    /// (or [`Provider::health`]).
    ///
    /// # Errors
    /// `InvalidConfig` for a malformed root or endpoint; `CompiledOut` for a scheme whose
    /// feature is off.
    pub fn remote(root: &str, options: &RemoteOptions) -> Result<Self, ProviderError> {
        Self::with_root(Root::parse(root, FsPath::new("."), options)?)
    }

    fn with_root(root: Root) -> Result<Self, ProviderError> {
        let runtime = RuntimeEnvBuilder::new()
            .build_arc()
            .map_err(errors::datafusion)?;
        runtime.register_object_store(&root.base_url, root.store.clone());
        Ok(FilesOfflineStore { root, runtime })
    }

    /// A DataFusion session over this store's files. `partitions = 0` uses every core;
    /// `1` reads files in order (label rows, streamed outputs).
    fn context(&self, partitions: usize) -> SessionContext {
        let mut config = SessionConfig::new()
            // Keep string columns as plain Utf8, the type they were written with.
            .set_bool(
                "datafusion.execution.parquet.schema_force_view_types",
                false,
            );
        if partitions > 0 {
            config = config.with_target_partitions(partitions);
        }
        SessionContext::new_with_config_rt(config, self.runtime.clone())
    }

    /// Where a file path points: one object, or a directory of them.
    async fn locate(&self, path: &str) -> Result<(Path, bool), ProviderError> {
        let object = self.root.resolve(path)?;
        match self.root.store.head(&object).await {
            Ok(_) => return Ok((object, false)),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(errors::store(e)),
        }
        let mut listing = self.root.store.list(Some(&object));
        match listing.next().await {
            Some(Ok(_)) => Ok((object, true)),
            Some(Err(e)) => Err(errors::store(e)),
            None => Err(ProviderError::NotFound(format!(
                "file `{path}` does not exist under {}",
                self.root.display
            ))),
        }
    }

    /// A DataFrame over `table` in `context`.
    async fn frame(
        &self,
        context: &SessionContext,
        table: &TableRef,
    ) -> Result<DataFrame, ProviderError> {
        match table {
            TableRef::Table(name) => Err(ProviderError::Unsupported(format!(
                "the files provider has no tables (`{name}`): name a file instead"
            ))),
            TableRef::File {
                path,
                format,
                schema,
            } => {
                let (object, directory) = self.locate(path).await?;
                let url = self.root.url_of(&object, directory);
                match format {
                    FileFormat::Parquet => {
                        let options = ParquetReadOptions {
                            file_extension: if directory { ".parquet" } else { "" },
                            schema: schema.as_deref(),
                            ..Default::default()
                        };
                        context.read_parquet(url, options).await
                    }
                    FileFormat::Csv => {
                        let mut options = CsvReadOptions::new()
                            .has_header(true)
                            .file_extension(if directory { ".csv" } else { "" });
                        if let Some(schema) = schema.as_deref() {
                            options = options.schema(schema);
                        }
                        context.read_csv(url, options).await
                    }
                }
                .map_err(errors::datafusion)
            }
            TableRef::Output(output) => {
                let (run, _) = outputs::read_manifest(&self.root, output).await?;
                let url = self.root.url_of(&run, true);
                let options = ParquetReadOptions::default();
                context
                    .read_parquet(url, options)
                    .await
                    .map_err(errors::datafusion)
            }
        }
    }

    async fn stream(&self, frame: DataFrame) -> Result<BatchStream, ProviderError> {
        let stream = frame.execute_stream().await.map_err(errors::datafusion)?;
        Ok(Box::pin(stream.map_err(errors::datafusion)))
    }
}

/// Names the root only: the store's configuration holds credentials.
impl std::fmt::Debug for FilesOfflineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilesOfflineStore")
            .field("root", &self.root)
            .finish()
    }
}

/// Replace each `{{ placeholder }}` of `sql` by the table registered for it.
fn bind_placeholders(sql: &str, tables: &[(String, String)]) -> Result<String, ProviderError> {
    let mut bound = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find("{{") {
        bound.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            ProviderError::InvalidQuery("unterminated `{{` placeholder in the SQL".into())
        })?;
        let placeholder = after[..end].trim();
        let (_, table) = tables
            .iter()
            .find(|(p, _)| p.trim() == placeholder)
            .ok_or_else(|| {
                ProviderError::InvalidQuery(format!(
                    "the SQL names `{{{{ {placeholder} }}}}`, which is not an input of the transformation"
                ))
            })?;
        bound.push('"');
        bound.push_str(table);
        bound.push('"');
        rest = &after[end + 2..];
    }
    bound.push_str(rest);
    Ok(bound)
}

#[async_trait]
impl Provider for FilesOfflineStore {
    fn kind(&self) -> &str {
        KIND
    }

    async fn health(&self) -> HealthReport {
        let started = Instant::now();
        let probe = async {
            if let Some(dir) = &self.root.local_dir {
                if !dir.is_dir() {
                    return Err(format!("root directory {} does not exist", dir.display()));
                }
            }
            self.root
                .store
                .list_with_delimiter(Some(&self.root.prefix))
                .await
                .map(|_| ())
                .map_err(|e| errors::store(e).to_string())
        };
        let outcome = tokio::time::timeout(Duration::from_secs(5), probe).await;
        let (healthy, message) = match outcome {
            Ok(Ok(())) => (true, format!("root {} is readable", self.root.display)),
            Ok(Err(e)) => (false, e),
            Err(_) => (
                false,
                format!("root {} did not answer within 5s", self.root.display),
            ),
        };
        HealthReport {
            healthy,
            message,
            latency: started.elapsed(),
        }
    }
}

#[async_trait]
impl OfflineStore for FilesOfflineStore {
    fn capabilities(&self) -> OfflineCapabilities {
        OfflineCapabilities {
            tables: false,
            files: true,
            sql_transformations: true,
            training_sets: true,
            incremental_latest_values: true,
            training_set_order: quiver_provider_sdk::TrainingSetOrder::Label,
        }
    }

    async fn schema(&self, table: &TableRef) -> Result<SchemaRef, ProviderError> {
        let frame = self.frame(&self.context(1), table).await?;
        Ok(Arc::new(frame.schema().as_arrow().clone()))
    }

    async fn run_transformation(
        &self,
        transformation: &Transformation,
    ) -> Result<u64, ProviderError> {
        let context = self.context(0);
        let mut tables = Vec::new();
        for (i, (placeholder, table)) in transformation.inputs.iter().enumerate() {
            let frame = self.frame(&context, table).await?;
            let name = format!("quiver_input_{i}");
            context
                .register_table(name.as_str(), frame.into_view())
                .map_err(errors::datafusion)?;
            tables.push((placeholder.clone(), name));
        }
        let sql = bind_placeholders(&transformation.sql, &tables)?;
        // Queries only: no DDL (CREATE EXTERNAL TABLE), DML (COPY TO) or SET.
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let frame = context
            .sql_with_options(&sql, options)
            .await
            .map_err(errors::datafusion)?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let mut batches = frame.execute_stream().await.map_err(errors::datafusion)?;
        let mut run = outputs::OutputRun::create(&self.root, &transformation.output, schema)?;
        while let Some(batch) = batches.next().await {
            run.write(&batch.map_err(errors::datafusion)?).await?;
        }
        run.publish().await
    }

    async fn build_training_set(&self, query: &TrainingSetQuery) -> Result<u64, ProviderError> {
        training::build(self, query).await
    }

    async fn latest_values(&self, query: &LatestValuesQuery) -> Result<BatchStream, ProviderError> {
        let frame = self.frame(&self.context(0), &query.table).await?;
        let frame = latest::plan(frame, query)?;
        self.stream(frame).await
    }

    async fn read(&self, table: &TableRef) -> Result<BatchStream, ProviderError> {
        let frame = self.frame(&self.context(1), table).await?;
        self.stream(frame).await
    }
}

/// A secret in configuration: inline, or read from an environment variable.
#[derive(Deserialize)]
#[serde(untagged)]
enum Secret {
    Inline(String),
    Env { env: String },
}

impl Secret {
    fn resolve(&self, field: &str) -> Result<String, ProviderError> {
        match self {
            Secret::Inline(value) => Ok(value.clone()),
            Secret::Env { env } => std::env::var(env).map_err(|_| {
                ProviderError::InvalidConfig(format!(
                    "`{field}` reads the environment variable `{env}`, which is not set"
                ))
            }),
        }
    }
}

/// The `config` of a `files` provider definition.
#[derive(Deserialize)]
struct FilesConfig {
    root: String,
    region: Option<String>,
    endpoint: Option<String>,
    access_key_id: Option<Secret>,
    secret_access_key: Option<Secret>,
}

/// Builds [`FilesOfflineStore`]s from provider definitions:
/// `{"type": "files", "root": "./data", "region"?, "endpoint"?, "access_key_id"?,
/// "secret_access_key"?}`, secrets as a string or `{"env": "VAR"}`. Relative roots
/// resolve against the factory's base directory (the definitions repo).
pub struct FilesFactory {
    base_dir: PathBuf,
}

impl FilesFactory {
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        FilesFactory {
            base_dir: base_dir.into(),
        }
    }
}

#[async_trait]
impl ProviderFactory for FilesFactory {
    async fn build(&self, config: &serde_json::Value) -> Result<ProviderHandle, ProviderError> {
        let config: FilesConfig = serde_json::from_value(config.clone())
            .map_err(|e| ProviderError::InvalidConfig(format!("files provider: {e}")))?;
        let options = RemoteOptions {
            region: config.region,
            endpoint: config.endpoint,
            access_key_id: config
                .access_key_id
                .map(|s| s.resolve("access_key_id"))
                .transpose()?,
            secret_access_key: config
                .secret_access_key
                .map(|s| s.resolve("secret_access_key"))
                .transpose()?,
        };
        let root = Root::parse(&config.root, &self.base_dir, &options)?;
        Ok(ProviderHandle::Offline(Arc::new(
            FilesOfflineStore::with_root(root)?,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_bind_to_quoted_generated_names() {
        let tables = vec![
            ("orders:v1".to_string(), "quiver_input_0".to_string()),
            ("users:v1".to_string(), "quiver_input_1".to_string()),
        ];
        let sql = "SELECT * FROM {{ orders:v1 }} JOIN {{users:v1}} USING (id)";
        assert_eq!(
            bind_placeholders(sql, &tables).unwrap(),
            "SELECT * FROM \"quiver_input_0\" JOIN \"quiver_input_1\" USING (id)"
        );
        assert!(matches!(
            bind_placeholders("SELECT * FROM {{ x }}", &tables),
            Err(ProviderError::InvalidQuery(_))
        ));
        assert!(matches!(
            bind_placeholders("SELECT * FROM {{ orders:v1", &tables),
            Err(ProviderError::InvalidQuery(_))
        ));
    }

    #[tokio::test]
    async fn factory_resolves_relative_roots_and_env_secrets() {
        let base = tempfile::tempdir().unwrap();
        let factory = FilesFactory::new(base.path());
        let handle = factory
            .build(&serde_json::json!({"type": "files", "root": "./data"}))
            .await
            .unwrap();
        assert!(base.path().join("data").is_dir());
        assert!(handle.provider().health().await.healthy);
        let err = factory
            .build(&serde_json::json!({
                "type": "files",
                "root": "./data",
                "secret_access_key": {"env": "QUIVER_TEST_UNSET_SECRET_VARIABLE"}
            }))
            .await
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("QUIVER_TEST_UNSET_SECRET_VARIABLE"),
            "{err}"
        );
        let err = factory
            .build(&serde_json::json!({"type": "files"}))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, ProviderError::InvalidConfig(_)), "{err}");
    }
}
