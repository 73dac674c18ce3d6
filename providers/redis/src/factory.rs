//! [`RedisFactory`]: builds the store from a provider definition's `config`.

use std::sync::Arc;

use async_trait::async_trait;
use quiver_provider_sdk::{ProviderError, ProviderFactory, ProviderHandle};
use serde::Deserialize;

use crate::store::{RedisOptions, DEFAULT_NAMESPACE};
use crate::RedisOnlineStore;

/// A secret in configuration: inline, or read from an environment variable.
#[derive(Deserialize)]
#[serde(untagged)]
enum Secret {
    Inline(String),
    Env { env: String },
}

/// The `config` object of a `redis` provider definition in quiver-core, as it
/// serializes: `{"type": "redis", "address": "host:port", "db": 0, "password": …}`.
/// No `Debug`: it holds the password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedisConfig {
    #[serde(rename = "type")]
    kind: Option<String>,
    address: String,
    #[serde(default)]
    db: u32,
    #[serde(default)]
    password: Option<Secret>,
}

/// Builds [`RedisOnlineStore`]s (key namespace [`DEFAULT_NAMESPACE`]). Building does not
/// connect: a Redis that is down is reported by health checks and operations, as
/// [`ProviderError::Unreachable`], and the store recovers when it is back.
#[derive(Debug, Clone, Default)]
pub struct RedisFactory;

#[async_trait]
impl ProviderFactory for RedisFactory {
    async fn build(&self, config: &serde_json::Value) -> Result<ProviderHandle, ProviderError> {
        // A password of the wrong type fails the untagged `Secret` with "did not match
        // any variant", which does not quote the value.
        let config: RedisConfig = serde_json::from_value(config.clone()).map_err(|e| {
            ProviderError::InvalidConfig(format!("redis online store configuration: {e}"))
        })?;
        if let Some(kind) = config.kind.as_deref().filter(|k| *k != "redis") {
            return Err(ProviderError::InvalidConfig(format!(
                "redis online store configuration has type `{kind}`, expected `redis`"
            )));
        }
        let password = match config.password {
            None => None,
            Some(Secret::Inline(value)) => Some(value),
            Some(Secret::Env { env }) => Some(std::env::var(&env).map_err(|_| {
                ProviderError::InvalidConfig(format!(
                    "redis online store: `password` reads the environment variable `{env}`, which is not set"
                ))
            })?),
        };
        let store = RedisOnlineStore::connect(RedisOptions {
            address: config.address,
            db: config.db,
            password,
            namespace: DEFAULT_NAMESPACE.to_string(),
        })
        .await?;
        Ok(ProviderHandle::Online(Arc::new(store)))
    }
}
