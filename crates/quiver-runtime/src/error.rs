//! The runtime's one error type. Each variant says who has to act: the caller (a bad
//! request, a limit), the definitions (cannot be resolved), time (not ready yet) or a
//! provider. The API maps variants to statuses in its `error.rs`; jobs turn them into
//! the run's error text.

use quiver_metadata::StoreError;
use quiver_provider_sdk::ProviderError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A resource, provider or output that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A request that cannot be answered as sent (empty entity list, bad reference).
    #[error("{0}")]
    InvalidRequest(String),
    /// A request above a documented limit.
    #[error("{0}")]
    LimitExceeded(String),
    /// The data is not built yet (pending or running) or its build failed.
    #[error("{0}")]
    NotReady(String),
    /// Definitions that cannot be turned into a provider query (a feature keyed by an
    /// entity the label lacks, sources on different providers, a SQL source as a table).
    #[error("{0}")]
    Unresolvable(String),
    /// A provider failed; the message names the provider.
    #[error("provider `{provider}`: {source}")]
    Provider {
        provider: String,
        #[source]
        source: ProviderError,
    },
    /// Encoding a download failed.
    #[error("cannot encode the data: {0}")]
    Encode(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RuntimeError {
    pub(crate) fn provider(provider: &str) -> impl FnOnce(ProviderError) -> RuntimeError + '_ {
        move |source| RuntimeError::Provider {
            provider: provider.to_string(),
            source,
        }
    }
}
