//! Providers built from their definitions: the registry of factories compiled into this
//! binary, and a cache of constructed providers keyed by name and revision, so an
//! updated provider definition is rebuilt on next use and an unchanged one is reused
//! (connection pools and open databases are expensive).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use quiver_core::{Definition, Kind, ProviderDef};
use quiver_metadata::MetadataStore;
use quiver_provider_sdk::{
    HealthReport, OfflineStore, OnlineStore, ProviderHandle, ProviderRegistry,
};
use tokio::sync::Mutex;

use crate::RuntimeError;

/// Where the providers compiled into this binary keep or find their data.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Relative `files` roots are resolved against this directory (the server's working
    /// directory).
    pub base_dir: PathBuf,
    /// The server's data directory; the embedded online store lives under it.
    pub data_dir: PathBuf,
}

/// Every provider kind Quiver knows, with the factories compiled into this binary and
/// [`quiver_provider_sdk::Unsupported`] placeholders naming the cargo feature of the others.
pub fn default_registry(options: &RegistryOptions) -> ProviderRegistry {
    let registry = ProviderRegistry::new();
    #[cfg(feature = "files")]
    let registry = registry.register(
        "files",
        Arc::new(quiver_provider_files::FilesFactory::new(
            options.base_dir.clone(),
        )),
    );
    #[cfg(not(feature = "files"))]
    let registry = registry.register_unsupported("files", "files");
    #[cfg(feature = "embedded")]
    let registry = registry.register(
        "embedded",
        Arc::new(quiver_provider_embedded::EmbeddedOnlineFactory {
            data_dir: options.data_dir.clone(),
        }),
    );
    #[cfg(not(feature = "embedded"))]
    let registry = registry.register_unsupported("embedded", "embedded");
    #[cfg(feature = "postgres")]
    let registry = registry.register(
        "postgres",
        Arc::new(quiver_provider_postgres::PostgresFactory),
    );
    #[cfg(not(feature = "postgres"))]
    let registry = registry.register_unsupported("postgres", "postgres");
    #[cfg(feature = "snowflake")]
    let registry = registry.register(
        "snowflake",
        Arc::new(quiver_provider_snowflake::SnowflakeFactory),
    );
    #[cfg(not(feature = "snowflake"))]
    let registry = registry.register_unsupported("snowflake", "snowflake");
    #[cfg(feature = "bigquery")]
    let registry = registry.register(
        "bigquery",
        Arc::new(quiver_provider_bigquery::BigQueryFactory),
    );
    #[cfg(not(feature = "bigquery"))]
    let registry = registry.register_unsupported("bigquery", "bigquery");
    #[cfg(feature = "redis")]
    let registry = registry.register("redis", Arc::new(quiver_provider_redis::RedisFactory));
    #[cfg(not(feature = "redis"))]
    let registry = registry.register_unsupported("redis", "redis");
    #[cfg(feature = "dynamodb")]
    let registry = registry.register(
        "dynamodb",
        Arc::new(quiver_provider_dynamodb::DynamoFactory),
    );
    #[cfg(not(feature = "dynamodb"))]
    let registry = registry.register_unsupported("dynamodb", "dynamodb");
    // `options` is unused when both local providers are compiled out.
    let _ = options;
    registry
}

struct CachedProvider {
    revision: i64,
    handle: ProviderHandle,
}

/// Providers by name, built on first use from their stored definitions.
pub struct Providers {
    store: Arc<dyn MetadataStore>,
    registry: ProviderRegistry,
    // Held across a build so two requests never build the same provider twice.
    cache: Mutex<HashMap<String, CachedProvider>>,
}

impl Providers {
    pub fn new(store: Arc<dyn MetadataStore>, registry: ProviderRegistry) -> Self {
        Providers {
            store,
            registry,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The provider named `name`, built from its current definition.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`] for an unknown provider, [`RuntimeError::Provider`]
    /// when its factory refuses the configuration or its kind is compiled out.
    pub async fn handle(&self, name: &str) -> Result<ProviderHandle, RuntimeError> {
        let record = self
            .store
            .get(Kind::Provider, name, None)
            .await?
            .ok_or_else(|| RuntimeError::NotFound(format!("provider `{name}` not found")))?;
        let Definition::Provider(definition) = &record.definition else {
            return Err(RuntimeError::NotFound(format!(
                "provider `{name}` not found"
            )));
        };
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.get(name).filter(|c| c.revision == record.revision) {
            return Ok(cached.handle.clone());
        }
        let handle = self.build(definition).await?;
        cache.insert(
            name.to_string(),
            CachedProvider {
                revision: record.revision,
                handle: handle.clone(),
            },
        );
        Ok(handle)
    }

    async fn build(&self, definition: &ProviderDef) -> Result<ProviderHandle, RuntimeError> {
        // The stored configuration, secrets included: factories resolve `{env: VAR}`.
        let config = serde_json::to_value(&definition.config).map_err(|e| {
            RuntimeError::Unresolvable(format!(
                "provider `{}`: cannot encode its configuration: {e}",
                definition.name
            ))
        })?;
        self.registry
            .build(definition.config.type_name(), &config)
            .await
            .map_err(RuntimeError::provider(&definition.name))
    }

    /// The offline store named `name`.
    ///
    /// # Errors
    /// As [`Providers::handle`], and [`RuntimeError::Unresolvable`] for an online store.
    pub async fn offline(&self, name: &str) -> Result<Arc<dyn OfflineStore>, RuntimeError> {
        match self.handle(name).await? {
            ProviderHandle::Offline(store) => Ok(store),
            ProviderHandle::Online(store) => Err(RuntimeError::Unresolvable(format!(
                "provider `{name}` ({}) is an online store; sources need an offline provider",
                store.kind()
            ))),
        }
    }

    /// The online store named `name`.
    ///
    /// # Errors
    /// As [`Providers::handle`], and [`RuntimeError::Unresolvable`] for an offline store.
    pub async fn online(&self, name: &str) -> Result<Arc<dyn OnlineStore>, RuntimeError> {
        match self.handle(name).await? {
            ProviderHandle::Online(store) => Ok(store),
            ProviderHandle::Offline(store) => Err(RuntimeError::Unresolvable(format!(
                "provider `{name}` ({}) is an offline store; `online_provider` needs an online store",
                store.kind()
            ))),
        }
    }

    /// Health of the provider named `name`. A provider that cannot even be built (kind
    /// compiled out, configuration refused) is reported unhealthy with the reason.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`] for an unknown provider; store errors.
    pub async fn health(&self, name: &str) -> Result<HealthReport, RuntimeError> {
        match self.handle(name).await {
            Ok(handle) => Ok(handle.provider().health().await),
            Err(RuntimeError::Provider { source, .. }) => Ok(HealthReport {
                healthy: false,
                message: source.to_string(),
                latency: Duration::ZERO,
            }),
            Err(other) => Err(other),
        }
    }
}
