//! [`DynamoConfig`] and [`DynamoFactory`]: the store's settings, read from a provider
//! definition's `config`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use quiver_provider_sdk::{ProviderError, ProviderFactory, ProviderHandle};
use serde::Deserialize;

use crate::naming::{check_prefix, DEFAULT_TABLE_PREFIX};
use crate::DynamoOnlineStore;

/// How long opening a TCP (and TLS) connection may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one attempt of one request may take, and one request with all its retries.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Static credentials. `Debug` never shows the secret.
#[derive(Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// For temporary credentials (`AWS_SESSION_TOKEN`).
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The settings of a DynamoDB online store.
#[derive(Debug, Clone)]
pub struct DynamoConfig {
    pub region: String,
    /// `http://…` or `https://…`; `None` for AWS's endpoint of `region`.
    pub endpoint: Option<String>,
    pub credentials: StaticCredentials,
    /// Prepended to every table this store creates (see [`crate::naming`] rules).
    pub table_prefix: String,
    pub connect_timeout: Duration,
    pub attempt_timeout: Duration,
    pub operation_timeout: Duration,
}

impl DynamoConfig {
    /// Settings with the default prefix and timeouts.
    pub fn new(region: &str, endpoint: Option<&str>, credentials: StaticCredentials) -> Self {
        DynamoConfig {
            region: region.to_string(),
            endpoint: endpoint.map(str::to_string),
            credentials,
            table_prefix: DEFAULT_TABLE_PREFIX.to_string(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// # Errors
    /// A message naming the bad field (never a secret).
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.region.trim().is_empty() {
            return Err("region must not be empty".into());
        }
        if let Some(endpoint) = &self.endpoint {
            let scheme_ok = endpoint.starts_with("http://") || endpoint.starts_with("https://");
            let host = endpoint.split_once("://").map_or("", |(_, rest)| rest);
            if !scheme_ok || host.is_empty() {
                return Err(format!(
                    "endpoint `{endpoint}` must be an http:// or https:// URL"
                ));
            }
        }
        if self.credentials.access_key_id.is_empty()
            || self.credentials.secret_access_key.is_empty()
        {
            return Err("access_key_id and secret_access_key must not be empty".into());
        }
        check_prefix(&self.table_prefix)
    }

    /// The endpoint requests go to, for messages.
    pub(crate) fn target(&self) -> String {
        self.endpoint
            .clone()
            .unwrap_or_else(|| format!("https://dynamodb.{}.amazonaws.com", self.region))
    }
}

/// A secret in configuration: inline, or read from an environment variable.
#[derive(Deserialize)]
#[serde(untagged)]
enum Secret {
    Inline(String),
    Env { env: String },
}

/// The `config` of a `dynamodb` provider definition, as quiver-core's
/// `ProviderConfig::Dynamodb` serializes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(rename = "type")]
    kind: Option<String>,
    region: String,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    access_key_id: Option<String>,
    #[serde(default)]
    secret_access_key: Option<Secret>,
    #[serde(default)]
    table_prefix: Option<String>,
}

/// Builds [`DynamoOnlineStore`]s from provider definitions:
/// `{"type": "dynamodb", "region", "endpoint"?, "access_key_id"?, "secret_access_key"?,
/// "table_prefix"?}`, the secret as a string or `{"env": "VAR"}`.
///
/// Credentials are the configured pair, else the process's `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`). AWS's full default provider chain
/// (profiles, SSO, IMDS, web identity) lives in `aws-config`, which compiles the STS and
/// SSO clients as well; it is left out to keep builds small.
#[derive(Debug, Clone, Default)]
pub struct DynamoFactory;

impl DynamoFactory {
    /// # Errors
    /// [`ProviderError::InvalidConfig`] naming the problem (never a secret's value).
    pub fn config(config: &serde_json::Value) -> Result<DynamoConfig, ProviderError> {
        let invalid = |m: String| ProviderError::InvalidConfig(format!("dynamodb provider: {m}"));
        let raw: RawConfig =
            serde_json::from_value(config.clone()).map_err(|e| invalid(e.to_string()))?;
        if let Some(kind) = raw.kind.as_deref().filter(|k| *k != crate::KIND) {
            return Err(invalid(format!("type is `{kind}`, expected `dynamodb`")));
        }
        let secret = match raw.secret_access_key {
            None => None,
            Some(Secret::Inline(value)) => Some(value),
            Some(Secret::Env { env }) => Some(std::env::var(&env).map_err(|_| {
                invalid(format!(
                    "`secret_access_key` reads the environment variable `{env}`, which is not set"
                ))
            })?),
        };
        let credentials = match (raw.access_key_id, secret) {
            (Some(access_key_id), Some(secret_access_key)) => StaticCredentials {
                access_key_id,
                secret_access_key,
                session_token: None,
            },
            (Some(_), None) | (None, Some(_)) => {
                return Err(invalid(
                    "set both access_key_id and secret_access_key, or neither (then \
                     AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are read)"
                        .into(),
                ))
            }
            (None, None) => match (
                std::env::var("AWS_ACCESS_KEY_ID"),
                std::env::var("AWS_SECRET_ACCESS_KEY"),
            ) {
                (Ok(access_key_id), Ok(secret_access_key)) => StaticCredentials {
                    access_key_id,
                    secret_access_key,
                    session_token: std::env::var("AWS_SESSION_TOKEN").ok(),
                },
                _ => {
                    return Err(invalid(
                        "no credentials: set access_key_id and secret_access_key, or the \
                         environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                            .into(),
                    ))
                }
            },
        };
        let mut settings = DynamoConfig::new(&raw.region, raw.endpoint.as_deref(), credentials);
        if let Some(prefix) = raw.table_prefix {
            settings.table_prefix = prefix;
        }
        settings.check().map_err(invalid)?;
        Ok(settings)
    }
}

#[async_trait]
impl ProviderFactory for DynamoFactory {
    async fn build(&self, config: &serde_json::Value) -> Result<ProviderHandle, ProviderError> {
        let store = DynamoOnlineStore::new(Self::config(config)?)?;
        Ok(ProviderHandle::Online(Arc::new(store)))
    }
}
