//! Postgres and driver errors as [`ProviderError`]s, in one place.
//!
//! Server errors are classified by SQLSTATE, so the mapping does not depend on the
//! server's language or message wording; the server's message is kept, since it names the
//! table or column at fault.

use quiver_provider_sdk::ProviderError;
use quiver_sql::SqlError;

/// `error` from talking to the server at `target` (`host:port/database`, never secrets).
pub fn sqlx(error: sqlx::Error, target: &str) -> ProviderError {
    match error {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let message = db.message().to_string();
            by_sqlstate(&code, message)
        }
        sqlx::Error::PoolTimedOut => ProviderError::Unreachable(format!(
            "no connection to postgres at {target} within the acquire timeout (server down, wrong host or port?)"
        )),
        sqlx::Error::Io(e) => {
            ProviderError::Unreachable(format!("postgres at {target}: {e}"))
        }
        sqlx::Error::Tls(e) => {
            ProviderError::Unreachable(format!("postgres at {target}: TLS: {e}"))
        }
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            ProviderError::Unreachable(format!("postgres at {target}: {error}"))
        }
        sqlx::Error::Configuration(e) => {
            ProviderError::InvalidConfig(format!("postgres connection settings: {e}"))
        }
        other => ProviderError::Other(format!("postgres at {target}: {other}")),
    }
}

/// A server error by its SQLSTATE class and code.
fn by_sqlstate(code: &str, message: String) -> ProviderError {
    let with_code = format!("{message} (SQLSTATE {code})");
    match code {
        // undefined_table, undefined_column, undefined_object, invalid_schema_name
        "42P01" | "42703" | "42704" | "3F000" => ProviderError::NotFound(with_code),
        // invalid_authorization_specification, invalid_password
        "28000" | "28P01" => ProviderError::Unauthorized(with_code),
        // invalid_catalog_name: the configured database does not exist.
        "3D000" => ProviderError::InvalidConfig(with_code),
        // insufficient_privilege
        "42501" => ProviderError::Unauthorized(with_code),
        // connection_exception class; admin_shutdown, crash_shutdown, cannot_connect_now
        c if c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03") => {
            ProviderError::Unreachable(with_code)
        }
        // feature_not_supported (cross-database references, …): the query cannot run here.
        "0A000" => ProviderError::InvalidQuery(with_code),
        // syntax_error_or_access_rule_violation (datatype_mismatch 42804, undefined_function
        // 42883, syntax_error 42601, …) and data_exception (bad casts, division by zero).
        c if c.starts_with("42") || c.starts_with("22") => ProviderError::InvalidQuery(with_code),
        _ => ProviderError::Other(with_code),
    }
}

/// SQL generation refused a definition (an unsafe identifier, an impossible query).
pub fn sql(error: SqlError) -> ProviderError {
    match error {
        SqlError::Unsupported(_) => ProviderError::Unsupported(error.to_string()),
        SqlError::InvalidIdentifier { .. } | SqlError::Invalid(_) => {
            ProviderError::InvalidQuery(error.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_provider_errors() {
        let m = || "m".to_string();
        assert!(matches!(
            by_sqlstate("42P01", m()),
            ProviderError::NotFound(_)
        ));
        assert!(matches!(
            by_sqlstate("42703", m()),
            ProviderError::NotFound(_)
        ));
        assert!(matches!(
            by_sqlstate("42804", m()),
            ProviderError::InvalidQuery(_)
        ));
        assert!(matches!(
            by_sqlstate("42883", m()),
            ProviderError::InvalidQuery(_)
        ));
        assert!(matches!(
            by_sqlstate("42601", m()),
            ProviderError::InvalidQuery(_)
        ));
        assert!(matches!(
            by_sqlstate("28P01", m()),
            ProviderError::Unauthorized(_)
        ));
        assert!(matches!(
            by_sqlstate("28000", m()),
            ProviderError::Unauthorized(_)
        ));
        assert!(matches!(
            by_sqlstate("08006", m()),
            ProviderError::Unreachable(_)
        ));
        assert!(matches!(by_sqlstate("XX000", m()), ProviderError::Other(_)));
    }
}
