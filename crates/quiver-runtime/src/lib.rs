//! Quiver's data plane inside the server: it turns stored definitions into work on
//! providers. It owns
//! - [`Providers`]: providers built from their definitions through the
//!   [`ProviderRegistry`] ([`default_registry`] registers what this binary was compiled
//!   with), cached by name and revision;
//! - [`resolve`]: definitions resolved into the SDK's queries;
//! - [`jobs`]: the executors of transformation, training-set and materialization jobs,
//!   run by the `quiver-coordinator`;
//! - [`serving`]: online feature vectors, one `multi_get` per online provider;
//! - [`encode`]: training-set downloads streamed as Parquet, Arrow, CSV or JSON lines.

pub mod convert;
pub mod encode;
mod error;
pub mod jobs;
pub mod metrics;
pub mod parity;
pub mod providers;
pub mod resolve;
pub mod serving;

use std::sync::Arc;

use quiver_coordinator::{Coordinator, CoordinatorConfig};
use quiver_core::{ResourceRef, Status};
use quiver_metadata::MetadataStore;
use quiver_provider_sdk::{OutputRef, TableRef};

pub use encode::{ByteStream, DataFormat};
pub use error::RuntimeError;
pub use metrics::Metrics;
pub use parity::{ParityMismatch, ParityReport};
pub use providers::{default_registry, Providers, RegistryOptions};
pub use quiver_provider_sdk::{self as sdk, HealthReport, ProviderRegistry};
pub use resolve::Resolver;
pub use serving::{
    EntityFeatures, FeatureCacheStats, FeatureValue, OnlineAnswer, OnlineFeaturesRequest,
    OnlineFeaturesResponse, ValueStatus, CATALOG_CHECK, MAX_ENTITIES, MAX_FEATURES,
};

/// What the server shares between its API and its job coordinator.
pub struct Runtime {
    store: Arc<dyn MetadataStore>,
    providers: Providers,
    resolver: Resolver,
    metrics: Arc<Metrics>,
    /// Online serving's resolved features (see [`serving`]).
    features: serving::FeatureCache,
}

/// A training set ready to download.
pub struct TrainingSetDownload {
    /// `name:variant`.
    pub resource: String,
    pub bytes: ByteStream,
}

impl Runtime {
    pub fn new(store: Arc<dyn MetadataStore>, registry: ProviderRegistry) -> Self {
        Runtime {
            providers: Providers::new(store.clone(), registry),
            resolver: Resolver::new(store.clone()),
            store,
            metrics: Arc::new(Metrics::new()),
            features: serving::FeatureCache::default(),
        }
    }

    /// The server's Prometheus metrics (see [`metrics`]).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn store(&self) -> &Arc<dyn MetadataStore> {
        &self.store
    }

    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// A coordinator running every job kind this runtime executes.
    pub fn coordinator(self: &Arc<Self>, config: CoordinatorConfig) -> Coordinator {
        jobs::executors(self).into_iter().fold(
            Coordinator::new(self.store.clone(), config),
            |c, (kind, executor)| c.register(kind, executor),
        )
    }

    /// Health of the provider named `name`.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`] for an unknown provider.
    pub async fn provider_health(&self, name: &str) -> Result<HealthReport, RuntimeError> {
        self.providers.health(name).await
    }

    /// Stream a built training set encoded as `format`.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`] when it does not exist, [`RuntimeError::NotReady`] when
    /// it is not built (naming its status and, when failed, the error).
    pub async fn training_set_data(
        &self,
        name: &str,
        variant: Option<&str>,
        format: DataFormat,
    ) -> Result<TrainingSetDownload, RuntimeError> {
        let reference = ResourceRef::new(name, variant.map(str::to_string));
        let (record, training_set) = self.resolver.training_set(&reference).await?;
        let resource = format!("{}:{}", training_set.name, training_set.variant);
        match record.status {
            Status::Ready => {}
            Status::Failed => {
                return Err(RuntimeError::NotReady(format!(
                    "training set `{resource}` failed to build: {}",
                    record.error.as_deref().unwrap_or("no error recorded")
                )))
            }
            status => {
                return Err(RuntimeError::NotReady(format!(
                    "training set `{resource}` is not built yet (status {status}); `quiver jobs wait` waits for it"
                )))
            }
        }
        let (_, label) = self.resolver.label(&training_set.label).await?;
        let (_, source) = self.resolver.source(&label.source).await?;
        let store = self.providers.offline(&source.provider).await?;
        let output = TableRef::Output(OutputRef {
            kind: resolve::TRAINING_SET_OUTPUT.to_string(),
            name: training_set.name.clone(),
            variant: training_set.variant.clone(),
        });
        let schema = store
            .schema(&output)
            .await
            .map_err(RuntimeError::provider(&source.provider))?;
        let batches = store
            .read(&output)
            .await
            .map_err(RuntimeError::provider(&source.provider))?;
        let bytes = encode::encode(&schema, batches, format, &source.provider)?;
        Ok(TrainingSetDownload { resource, bytes })
    }
}
