//! [`EmbeddedOnlineFactory`]: builds the store from a provider definition's `config`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use quiver_provider_sdk::{ProviderError, ProviderFactory, ProviderHandle};
use serde::Deserialize;

use crate::EmbeddedOnlineStore;

/// Where the database lives when the configuration names no `path`, relative to the
/// data directory.
pub const DEFAULT_DATABASE_PATH: &str = "online/embedded.db";

/// The `config` object of an `embedded` provider definition in quiver-core:
/// `{"type": "embedded", "path": "optional/file.db"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbeddedConfig {
    #[serde(rename = "type")]
    kind: Option<String>,
    path: Option<String>,
}

/// Builds [`EmbeddedOnlineStore`]s; relative paths are resolved against `data_dir`.
#[derive(Debug, Clone)]
pub struct EmbeddedOnlineFactory {
    pub data_dir: PathBuf,
}

impl EmbeddedOnlineFactory {
    /// The database file a configuration points at.
    fn database_path(&self, path: Option<&str>) -> PathBuf {
        match path {
            Some(p) if Path::new(p).is_absolute() => PathBuf::from(p),
            Some(p) => self.data_dir.join(p),
            None => self.data_dir.join(DEFAULT_DATABASE_PATH),
        }
    }
}

#[async_trait]
impl ProviderFactory for EmbeddedOnlineFactory {
    async fn build(&self, config: &serde_json::Value) -> Result<ProviderHandle, ProviderError> {
        let config: EmbeddedConfig = serde_json::from_value(config.clone()).map_err(|e| {
            ProviderError::InvalidConfig(format!("embedded online store configuration: {e}"))
        })?;
        if let Some(kind) = config.kind.as_deref().filter(|k| *k != "embedded") {
            return Err(ProviderError::InvalidConfig(format!(
                "embedded online store configuration has type `{kind}`, expected `embedded`"
            )));
        }
        if config.path.as_deref().is_some_and(|p| p.trim().is_empty()) {
            return Err(ProviderError::InvalidConfig(
                "embedded online store path is empty; omit it to use the default".into(),
            ));
        }
        let path = self.database_path(config.path.as_deref());
        let store = EmbeddedOnlineStore::open(path).await?;
        Ok(ProviderHandle::Online(Arc::new(store)))
    }
}
