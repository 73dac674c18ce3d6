use thiserror::Error;

/// Why a statement could not be generated. Nothing here is ever a database error: these
/// are caught before any SQL reaches an engine.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SqlError {
    /// A table or column name the dialect cannot (or must not) quote.
    #[error("invalid identifier `{identifier}`: {reason}")]
    InvalidIdentifier { identifier: String, reason: String },
    /// Valid input this dialect or plan cannot express.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A query that contradicts itself (no keys, clashing output columns, unknown
    /// placeholder, ...).
    #[error("invalid query: {0}")]
    Invalid(String),
}

impl SqlError {
    pub(crate) fn identifier(identifier: &str, reason: impl Into<String>) -> SqlError {
        SqlError::InvalidIdentifier {
            identifier: identifier.escape_debug().to_string(),
            reason: reason.into(),
        }
    }
}
