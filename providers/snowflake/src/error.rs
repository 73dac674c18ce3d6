//! Errors of the Snowflake client and how they map to [`ProviderError`].

use quiver_provider_sdk::ProviderError;
use quiver_sql::SqlError;

/// What went wrong talking to Snowflake. Messages never contain credentials: the login
/// body is the only place the password travels, and it is never formatted.
#[derive(Debug, thiserror::Error)]
pub enum SnowflakeError {
    /// The server could not be reached (connection refused, DNS, timeout).
    #[error("cannot reach Snowflake at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The server answered with an error code (`002003`, `390100`, ...).
    #[error("Snowflake error {code}: {message}")]
    Server { code: String, message: String },
    /// The server refused the request without a Snowflake error code (HTTP 401/403).
    #[error("Snowflake refused the request: {0}")]
    Refused(String),
    /// The server answered with something this client cannot read.
    #[error("unexpected answer from Snowflake: {0}")]
    Protocol(String),
    /// A result column of a type this provider does not read.
    #[error("unsupported Snowflake column type `{kind}` for column `{column}`")]
    UnsupportedType { column: String, kind: String },
    /// Decoding Arrow results failed.
    #[error("cannot decode Snowflake results: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Configuration that cannot work.
    #[error("{0}")]
    Config(String),
}

impl SnowflakeError {
    pub(crate) fn from_http(url: &str, error: &reqwest::Error) -> SnowflakeError {
        if error.is_connect() || error.is_timeout() || error.is_request() {
            SnowflakeError::Unreachable {
                url: url.to_string(),
                reason: error_chain(error),
            }
        } else {
            SnowflakeError::Protocol(error_chain(error))
        }
    }
}

/// An error and its sources on one line (reqwest hides the useful part in sources).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        out.push_str(": ");
        out.push_str(&inner.to_string());
        source = inner.source();
    }
    out
}

/// Snowflake error codes that mean the credentials or session were refused.
fn is_auth_code(code: &str) -> bool {
    // 390100 incorrect username or password, 390144 invalid JWT, 3901xx/3903xx other
    // login and session refusals (locked user, expired token, MFA required, ...).
    code.starts_with("390") || code.starts_with("394")
}

/// Snowflake error codes that mean an object (table, schema, column) does not exist.
fn is_not_found_code(code: &str) -> bool {
    // 002003 object does not exist or not authorized; 002043 object does not exist or
    // operation cannot be performed (fakesnow also uses it for unknown columns);
    // 000904 invalid identifier (an unknown column).
    matches!(code, "002003" | "002043" | "000904")
}

impl From<SnowflakeError> for ProviderError {
    fn from(error: SnowflakeError) -> Self {
        let message = error.to_string();
        match error {
            SnowflakeError::Unreachable { .. } => ProviderError::Unreachable(message),
            SnowflakeError::Refused(_) => ProviderError::Unauthorized(message),
            SnowflakeError::Server { code, .. } if is_auth_code(&code) => {
                ProviderError::Unauthorized(message)
            }
            SnowflakeError::Server { code, .. } if is_not_found_code(&code) => {
                ProviderError::NotFound(message)
            }
            // No warehouse, database or schema selected or usable: the configuration.
            SnowflakeError::Server { code, .. } if matches!(code.as_str(), "000606" | "090105") => {
                ProviderError::InvalidConfig(message)
            }
            // Compilation errors (001003 syntax, 002xxx), runtime data errors (100xxx):
            // the statement did not run.
            SnowflakeError::Server { .. } => ProviderError::InvalidQuery(message),
            SnowflakeError::UnsupportedType { .. } => ProviderError::Unsupported(message),
            SnowflakeError::Config(_) => ProviderError::InvalidConfig(message),
            SnowflakeError::Protocol(_) | SnowflakeError::Arrow(_) => ProviderError::Other(message),
        }
    }
}

/// SQL generation refusals are the caller's query, never the engine's.
pub(crate) fn sql(error: SqlError) -> ProviderError {
    match error {
        SqlError::Unsupported(message) => ProviderError::Unsupported(message),
        other => ProviderError::InvalidQuery(other.to_string()),
    }
}

/// Everything a transformation's SQL can do wrong is an invalid query (a missing table or
/// column included); reaching the server and credentials keep their meaning.
pub(crate) fn in_transformation(error: ProviderError) -> ProviderError {
    match error {
        ProviderError::NotFound(message) => ProviderError::InvalidQuery(message),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: &str) -> ProviderError {
        SnowflakeError::Server {
            code: code.into(),
            message: "message from Snowflake".into(),
        }
        .into()
    }

    #[test]
    fn snowflake_codes_map_to_provider_errors() {
        assert!(matches!(server("390100"), ProviderError::Unauthorized(_)));
        assert!(matches!(server("390144"), ProviderError::Unauthorized(_)));
        assert!(matches!(server("002003"), ProviderError::NotFound(_)));
        assert!(matches!(server("000904"), ProviderError::NotFound(_)));
        assert!(matches!(server("001003"), ProviderError::InvalidQuery(_)));
        assert!(matches!(server("100035"), ProviderError::InvalidQuery(_)));
        assert!(matches!(server("000606"), ProviderError::InvalidConfig(_)));
        match server("001003") {
            ProviderError::InvalidQuery(message) => {
                assert!(message.contains("message from Snowflake"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
}
