//! BigQuery failures as [`ProviderError`]s. BigQuery reports a failure either as an HTTP
//! error status with an `error` object (`gcp_bigquery_client::error::BQError`), or — for a
//! query that fails while running — as HTTP 200 with an `errors` array in the response
//! (bqemulator does the latter for every query error). Both carry a `reason` (`notFound`,
//! `invalidQuery`, `accessDenied`, …) that decides the variant; the message is BigQuery's.

use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::model::error_proto::ErrorProto;
use quiver_provider_sdk::ProviderError;
use quiver_sql::SqlError;

/// What went wrong talking to BigQuery, before it is mapped to a [`ProviderError`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum BigQueryError {
    /// An HTTP error status with BigQuery's error object.
    #[error("{message} (HTTP {status}, {reason})")]
    Api {
        status: i64,
        reason: String,
        message: String,
    },
    /// A query that failed while running (HTTP 200 with `errors`).
    #[error("{message} ({reason})")]
    Job { reason: String, message: String },
    /// The request never got an answer (refused, timed out, TLS, DNS).
    #[error("{0}")]
    Transport(String),
    /// Obtaining an access token failed.
    #[error("could not obtain an access token: {0}")]
    Auth(String),
    /// An answer that is not what the REST API documents.
    #[error("unexpected response: {0}")]
    Protocol(String),
}

/// `error` and its sources, on one line (reqwest hides the cause of a connect error in
/// its source chain).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<reqwest::Error> for BigQueryError {
    fn from(error: reqwest::Error) -> Self {
        if error.is_decode() {
            BigQueryError::Protocol(chain(&error))
        } else {
            BigQueryError::Transport(chain(&error))
        }
    }
}

impl From<BQError> for BigQueryError {
    fn from(error: BQError) -> Self {
        match error {
            BQError::RequestError(e) => e.into(),
            BQError::ResponseError { error } => {
                let first = error.error.errors.first();
                BigQueryError::Api {
                    status: error.error.code,
                    reason: first
                        .and_then(|e| e.get("reason").cloned())
                        .unwrap_or_else(|| error.error.status.clone()),
                    message: error.error.message,
                }
            }
            // The token flows never include the key in their errors; their sources can
            // hold an HTTP body from the token endpoint, so only the top level is kept.
            BQError::AuthError(e) => BigQueryError::Auth(e.to_string()),
            BQError::YupAuthError(e) => BigQueryError::Auth(e.to_string()),
            BQError::NoToken => BigQueryError::Auth("the token endpoint returned no token".into()),
            BQError::InvalidServiceAccountKey(_)
            | BQError::InvalidServiceAccountAuthenticator(_)
            | BQError::InvalidInstalledFlowAuthenticator(_)
            | BQError::InvalidApplicationDefaultCredentialsAuthenticator(_)
            | BQError::InvalidAuthorizedUserAuthenticator(_) => {
                BigQueryError::Auth("the credentials could not be loaded".into())
            }
            BQError::SerializationError(e) => BigQueryError::Protocol(e.to_string()),
            other => BigQueryError::Protocol(other.to_string()),
        }
    }
}

impl BigQueryError {
    /// The first entry of a job's `errors` array (the others repeat or detail it).
    pub(crate) fn job(errors: &[ErrorProto]) -> BigQueryError {
        let first = errors.first();
        BigQueryError::Job {
            reason: first
                .and_then(|e| e.reason.clone())
                .unwrap_or_else(|| "unknown".into()),
            message: first
                .and_then(|e| e.message.clone())
                .unwrap_or_else(|| "the query failed without a message".into()),
        }
    }

    /// The provider error, prefixed with `target` (`bigquery project `p``), which holds
    /// no secret.
    pub(crate) fn into_provider(self, target: &str) -> ProviderError {
        let text = format!("{target}: {self}");
        match &self {
            BigQueryError::Transport(_) => ProviderError::Unreachable(text),
            BigQueryError::Auth(_) => ProviderError::Unauthorized(text),
            BigQueryError::Protocol(_) => ProviderError::Other(text),
            BigQueryError::Api { status, reason, .. } => match (*status, reason.as_str()) {
                (401 | 403, _) => ProviderError::Unauthorized(text),
                (404, _) => ProviderError::NotFound(text),
                (_, reason) => by_reason(reason, text, *status >= 500),
            },
            BigQueryError::Job { reason, .. } => by_reason(reason, text, false),
        }
    }
}

/// BigQuery's error reasons (cloud.google.com/bigquery/docs/error-messages).
fn by_reason(reason: &str, text: String, server_side: bool) -> ProviderError {
    match reason {
        "notFound" => ProviderError::NotFound(text),
        "invalidQuery" | "invalid" => ProviderError::InvalidQuery(text),
        "accessDenied" | "unauthorized" | "authError" => ProviderError::Unauthorized(text),
        "backendError" | "internalError" | "rateLimitExceeded" | "timeout" => {
            ProviderError::Unreachable(text)
        }
        _ if server_side => ProviderError::Unreachable(text),
        _ => ProviderError::Other(text),
    }
}

/// A statement that could not be generated.
pub(crate) fn sql(error: SqlError) -> ProviderError {
    match error {
        SqlError::Unsupported(message) => ProviderError::Unsupported(message),
        other => ProviderError::InvalidQuery(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_decide_the_variant() {
        let job = |reason: &str| BigQueryError::Job {
            reason: reason.into(),
            message: "m".into(),
        };
        assert!(matches!(
            job("notFound").into_provider("t"),
            ProviderError::NotFound(_)
        ));
        assert!(matches!(
            job("invalidQuery").into_provider("t"),
            ProviderError::InvalidQuery(_)
        ));
        let api = |status: i64, reason: &str| BigQueryError::Api {
            status,
            reason: reason.into(),
            message: "m".into(),
        };
        assert!(matches!(
            api(403, "accessDenied").into_provider("t"),
            ProviderError::Unauthorized(_)
        ));
        assert!(matches!(
            api(401, "").into_provider("t"),
            ProviderError::Unauthorized(_)
        ));
        assert!(matches!(
            api(404, "notFound").into_provider("t"),
            ProviderError::NotFound(_)
        ));
        assert!(matches!(
            api(503, "backendError").into_provider("t"),
            ProviderError::Unreachable(_)
        ));
        let text = api(400, "invalidQuery").into_provider("bigquery project `p`");
        assert!(matches!(text, ProviderError::InvalidQuery(_)));
        assert!(
            text.to_string().contains("bigquery project `p`: m"),
            "{text}"
        );
    }
}
