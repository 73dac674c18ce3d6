//! The provider plugin SDK: what an infra team implements to plug a storage or compute
//! system into Quiver, without touching (or depending on) the rest of Quiver.
//!
//! A provider is built by a [`ProviderFactory`] registered under its kind (`postgres`,
//! `redis`, …) in a [`ProviderRegistry`]. A kind that exists but was compiled out is
//! registered as [`Unsupported`], which answers with the cargo feature to enable, so the
//! mistake is reported at apply time instead of as "unknown provider".
//!
//! Data crosses the boundary as Arrow record batches (offline) and typed values
//! (online). The exact point-in-time semantics every offline store implements are in
//! [`offline`]; the shared conformance suite is the `quiver-provider-testkit` crate.

pub mod offline;
pub mod online;

pub use arrow_array::RecordBatch;
pub use arrow_schema::SchemaRef;
pub use offline::{
    BatchStream, FeatureQuery, FileFormat, KeyPair, LabelQuery, LatestValuesQuery,
    OfflineCapabilities, OfflineStore, OutputRef, TableRef, TrainingSetOrder, TrainingSetQuery,
    Transformation,
};
pub use online::{
    OnlineCapabilities, OnlineRead, OnlineRow, OnlineStore, OnlineTable, OnlineTableRef,
    OnlineValue, WriteReport,
};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Errors a provider reports. Variants say whether retrying can help.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The configuration is wrong (missing field, bad URL): retrying cannot help.
    #[error("invalid provider configuration: {0}")]
    InvalidConfig(String),
    /// Credentials were refused: retrying cannot help until they change.
    #[error("credentials rejected: {0}")]
    Unauthorized(String),
    /// The system could not be reached or timed out: retrying may help.
    #[error("provider unreachable: {0}")]
    Unreachable(String),
    /// A table, file, column or output does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// SQL that does not parse or run, or a column of the wrong type.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The operation is not offered by this provider (see its capabilities).
    #[error("not supported by this provider: {0}")]
    Unsupported(String),
    /// The provider kind is known but was compiled out of this binary.
    #[error("provider kind `{kind}` is not compiled into this binary; rebuild with the cargo feature `{feature}`")]
    CompiledOut { kind: String, feature: String },
    /// The provider kind is not known at all.
    #[error("unknown provider kind `{kind}`; known kinds: {known}")]
    UnknownKind { kind: String, known: String },
    /// Anything else the system reported.
    #[error("{0}")]
    Other(String),
}

impl ProviderError {
    /// Whether a job hitting this error should be retried with back-off.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProviderError::Unreachable(_) | ProviderError::Other(_)
        )
    }
}

/// Result of a provider health check: reachable, and credentials accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    pub healthy: bool,
    /// A short human-readable explanation (never containing secrets).
    pub message: String,
    pub latency: Duration,
}

/// Common to every provider.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The kind this provider was registered under (`postgres`, `redis`, …).
    fn kind(&self) -> &str;

    /// Check that the system is reachable and accepts the credentials.
    ///
    /// # Contract
    /// Bounded in time (a few seconds) and side-effect free.
    ///
    /// # Errors
    /// Never: an unhealthy provider is a report with `healthy: false`.
    async fn health(&self) -> HealthReport;
}

/// A constructed provider, by role.
#[derive(Clone)]
pub enum ProviderHandle {
    Offline(Arc<dyn OfflineStore>),
    Online(Arc<dyn OnlineStore>),
}

impl ProviderHandle {
    pub fn provider(&self) -> &dyn Provider {
        match self {
            ProviderHandle::Offline(p) => p.as_ref(),
            ProviderHandle::Online(p) => p.as_ref(),
        }
    }
}

/// Builds providers of one kind from their configuration.
#[async_trait]
pub trait ProviderFactory: Send + Sync {
    /// # Errors
    /// [`ProviderError::InvalidConfig`] for a configuration this kind cannot use.
    async fn build(&self, config: &serde_json::Value) -> Result<ProviderHandle, ProviderError>;
}

/// Placeholder for a kind compiled out of this binary: names the feature to enable.
pub struct Unsupported {
    pub kind: String,
    pub feature: String,
}

#[async_trait]
impl ProviderFactory for Unsupported {
    async fn build(&self, _config: &serde_json::Value) -> Result<ProviderHandle, ProviderError> {
        Err(ProviderError::CompiledOut {
            kind: self.kind.clone(),
            feature: self.feature.clone(),
        })
    }
}

/// Factories by provider kind, registered explicitly at start-up.
#[derive(Default, Clone)]
pub struct ProviderRegistry {
    factories: BTreeMap<String, Arc<dyn ProviderFactory>>,
}

impl ProviderRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(mut self, kind: &str, factory: Arc<dyn ProviderFactory>) -> Self {
        self.factories.insert(kind.to_string(), factory);
        self
    }

    /// Register `kind` as compiled out, naming the cargo feature that enables it.
    pub fn register_unsupported(self, kind: &str, feature: &str) -> Self {
        let placeholder = Unsupported {
            kind: kind.to_string(),
            feature: feature.to_string(),
        };
        self.register(kind, Arc::new(placeholder))
    }

    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }

    /// # Errors
    /// [`ProviderError::UnknownKind`], [`ProviderError::CompiledOut`], or the factory's error.
    pub async fn build(
        &self,
        kind: &str,
        config: &serde_json::Value,
    ) -> Result<ProviderHandle, ProviderError> {
        match self.factories.get(kind) {
            Some(factory) => factory.build(config).await,
            None => Err(ProviderError::UnknownKind {
                kind: kind.to_string(),
                known: self.kinds().collect::<Vec<_>>().join(", "),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    #[async_trait]
    impl Provider for Echo {
        fn kind(&self) -> &str {
            "echo"
        }
        async fn health(&self) -> HealthReport {
            HealthReport {
                healthy: true,
                message: "ok".into(),
                latency: Duration::ZERO,
            }
        }
    }

    #[async_trait]
    impl OnlineStore for Echo {
        fn capabilities(&self) -> OnlineCapabilities {
            OnlineCapabilities {
                multi_get: true,
                ..Default::default()
            }
        }
        async fn create_table(&self, _table: &OnlineTable) -> Result<(), ProviderError> {
            Ok(())
        }
        async fn delete_table(&self, _table: &OnlineTableRef) -> Result<(), ProviderError> {
            Ok(())
        }
        async fn write(
            &self,
            _table: &OnlineTableRef,
            rows: &[OnlineRow],
        ) -> Result<WriteReport, ProviderError> {
            Ok(WriteReport {
                written: rows.len() as u64,
                skipped_older: 0,
            })
        }
        async fn multi_get(
            &self,
            tables: &[OnlineTableRef],
            entities: &[String],
        ) -> Result<Vec<Vec<OnlineRead>>, ProviderError> {
            Ok(vec![
                vec![OnlineRead::Missing; tables.len()];
                entities.len()
            ])
        }
    }

    struct EchoFactory;

    #[async_trait]
    impl ProviderFactory for EchoFactory {
        async fn build(&self, config: &serde_json::Value) -> Result<ProviderHandle, ProviderError> {
            if !config.is_object() {
                return Err(ProviderError::InvalidConfig("expected an object".into()));
            }
            Ok(ProviderHandle::Online(Arc::new(Echo)))
        }
    }

    #[tokio::test]
    async fn registry_builds_reports_compiled_out_and_unknown_kinds() {
        let registry = ProviderRegistry::new()
            .register("echo", Arc::new(EchoFactory))
            .register_unsupported("snowflake", "snowflake");
        let built = registry
            .build("echo", &serde_json::json!({}))
            .await
            .unwrap();
        assert!(built.provider().health().await.healthy);
        let err = registry
            .build("snowflake", &serde_json::json!({}))
            .await
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("cargo feature `snowflake`"),
            "{err}"
        );
        let err = registry
            .build("mysql", &serde_json::json!({}))
            .await
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("known kinds: echo, snowflake"),
            "{err}"
        );
        let err = registry
            .build("echo", &serde_json::json!(1))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, ProviderError::InvalidConfig(_)));
    }
}
