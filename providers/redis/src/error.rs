//! This crate's errors, mapped to [`ProviderError`] at the crate boundary.

use quiver_provider_sdk::ProviderError;

use crate::value::CorruptValue;

#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// Redis answered with an error, or the connection failed.
    #[error("redis at {target}: {what}: {source}")]
    Redis {
        target: String,
        what: &'static str,
        #[source]
        source: redis::RedisError,
    },
    /// The read path's own connection failed (see `wire.rs`).
    #[error("redis at {target}: {what}: {source}")]
    Io {
        target: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Redis answered a command of the read path with an error reply.
    #[error("redis at {target}: {what}: {message}")]
    Reply {
        target: String,
        what: &'static str,
        message: String,
    },
    /// The server refused the read path's `AUTH`.
    #[error("redis at {target}: the credentials were refused: {message}")]
    AuthRefused { target: String, message: String },
    /// No answer within the bound: the server is down, blackholed or overloaded.
    #[error("redis at {target}: {what}: no answer within {limit:?}")]
    Timeout {
        target: String,
        what: &'static str,
        limit: std::time::Duration,
    },
    #[error("online table {feature}:{variant} does not exist")]
    TableNotFound { feature: String, variant: String },
    /// Bytes this crate cannot have written (another program wrote to our keys).
    #[error("redis at {target}: {what}")]
    Corrupt { target: String, what: String },
}

impl StoreError {
    pub(crate) fn corrupt(target: &str, key: &str, e: CorruptValue) -> StoreError {
        StoreError::Corrupt {
            target: target.to_string(),
            what: format!("{e} (key {key:?})"),
        }
    }
}

/// Whether Redis refused the credentials (or has none configured for us).
fn is_auth_error(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::AuthenticationFailed
        || e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm)
        || matches!(e.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"))
}

/// The first word of an error reply: its code (`WRONGTYPE`, `NOAUTH`, …).
fn reply_code(message: &str) -> &str {
    message.split_whitespace().next().unwrap_or_default()
}

fn is_unreachable(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || matches!(
            e.kind(),
            redis::ErrorKind::Server(
                redis::ServerErrorKind::BusyLoading
                    | redis::ServerErrorKind::TryAgain
                    | redis::ServerErrorKind::MasterDown
                    | redis::ServerErrorKind::ClusterDown
            )
        )
}

impl From<StoreError> for ProviderError {
    fn from(e: StoreError) -> ProviderError {
        let message = e.to_string();
        match &e {
            StoreError::Redis { source, .. } if is_auth_error(source) => {
                ProviderError::Unauthorized(message)
            }
            StoreError::Redis { source, .. } if is_unreachable(source) => {
                ProviderError::Unreachable(message)
            }
            StoreError::AuthRefused { .. } => ProviderError::Unauthorized(message),
            StoreError::Reply { message: reply, .. }
                if matches!(reply_code(reply), "NOAUTH" | "WRONGPASS" | "NOPERM") =>
            {
                ProviderError::Unauthorized(message)
            }
            StoreError::Reply { message: reply, .. }
                if matches!(
                    reply_code(reply),
                    "LOADING" | "TRYAGAIN" | "MASTERDOWN" | "CLUSTERDOWN" | "BUSY"
                ) =>
            {
                ProviderError::Unreachable(message)
            }
            StoreError::Io { .. } | StoreError::Timeout { .. } => {
                ProviderError::Unreachable(message)
            }
            StoreError::TableNotFound { .. } => ProviderError::NotFound(message),
            StoreError::Redis { .. } | StoreError::Reply { .. } | StoreError::Corrupt { .. } => {
                ProviderError::Other(message)
            }
        }
    }
}
