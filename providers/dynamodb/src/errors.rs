//! This crate's errors, how SDK errors are classified into them, and how they map to
//! [`ProviderError`] at the crate boundary.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use quiver_provider_sdk::{OnlineTableRef, ProviderError};

use crate::encoding::{Corrupt, MAX_ENTITY_BYTES};

/// Error codes DynamoDB (and AWS's front end) answer when credentials are refused.
const AUTH_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "AccessDeniedException",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "IncompleteSignature",
    "IncompleteSignatureException",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "AuthFailure",
];

/// Error codes of a request refused for capacity; the SDK's standard retry already
/// retried them with back-off before one reaches us.
const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
];

#[derive(Debug, thiserror::Error)]
pub(crate) enum DynamoError {
    #[error("DynamoDB at {endpoint} is unreachable during {operation}: {detail}")]
    Unreachable {
        endpoint: String,
        operation: &'static str,
        detail: String,
    },
    #[error("DynamoDB at {endpoint} rejected the credentials ({code}): {message}")]
    Unauthorized {
        endpoint: String,
        code: String,
        message: String,
    },
    #[error(
        "online table `{feature}` (variant `{variant}`) does not exist (DynamoDB table `{table}`)"
    )]
    TableNotFound {
        feature: String,
        variant: String,
        table: String,
    },
    /// A DynamoDB resource answered `ResourceNotFoundException` where the caller has not
    /// yet said which online table it was.
    #[error("DynamoDB {operation}: resource not found: {message}")]
    ResourceNotFound {
        operation: &'static str,
        message: String,
    },
    #[error("DynamoDB at {endpoint} kept throttling {operation} after retries ({code}); retry later or raise the table's capacity")]
    Throttled {
        endpoint: String,
        operation: &'static str,
        code: String,
    },
    #[error(
        "entity {entity} cannot be a DynamoDB key: keys are 1 to {MAX_ENTITY_BYTES} bytes of UTF-8"
    )]
    BadEntity { entity: String },
    #[error(
        "DynamoDB table `{table}` did not become {wanted} within {seconds} s (status {status})"
    )]
    TableWait {
        table: String,
        wanted: &'static str,
        seconds: u64,
        status: String,
    },
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
    #[error("DynamoDB {operation} failed ({code}): {message}")]
    Service {
        operation: &'static str,
        code: String,
        message: String,
    },
    #[error("DynamoDB {operation} failed: {detail}")]
    Other {
        operation: &'static str,
        detail: String,
    },
}

impl DynamoError {
    pub(crate) fn table_not_found(table: &OnlineTableRef, name: &str) -> DynamoError {
        DynamoError::TableNotFound {
            feature: table.feature.clone(),
            variant: table.variant.clone(),
            table: name.to_string(),
        }
    }

    /// An entity for a message: quoted, cut to 64 characters.
    pub(crate) fn bad_entity(entity: &str) -> DynamoError {
        let shown: String = entity.chars().take(64).collect();
        let entity = if shown.len() < entity.len() {
            format!("{shown:?}… ({} bytes)", entity.len())
        } else {
            format!("{shown:?}")
        };
        DynamoError::BadEntity { entity }
    }

    pub(crate) fn is_resource_not_found(&self) -> bool {
        matches!(self, DynamoError::ResourceNotFound { .. })
    }

    pub(crate) fn is_code(&self, wanted: &str) -> bool {
        matches!(self, DynamoError::Service { code, .. } if code == wanted)
    }
}

impl From<DynamoError> for ProviderError {
    fn from(error: DynamoError) -> ProviderError {
        let message = error.to_string();
        match error {
            DynamoError::Unreachable { .. } => ProviderError::Unreachable(message),
            DynamoError::Unauthorized { .. } => ProviderError::Unauthorized(message),
            DynamoError::TableNotFound { .. } | DynamoError::ResourceNotFound { .. } => {
                ProviderError::NotFound(message)
            }
            DynamoError::BadEntity { .. } => ProviderError::InvalidQuery(message),
            DynamoError::Throttled { .. }
            | DynamoError::TableWait { .. }
            | DynamoError::Corrupt(_)
            | DynamoError::Service { .. }
            | DynamoError::Other { .. } => ProviderError::Other(message),
        }
    }
}

/// Classify an SDK error of `operation` against `endpoint`.
pub(crate) fn sdk<E>(
    error: SdkError<E, HttpResponse>,
    endpoint: &str,
    operation: &'static str,
) -> DynamoError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &error {
        // No connection, a reset one, DNS, TLS: the service was not reached.
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => DynamoError::Unreachable {
            endpoint: endpoint.to_string(),
            operation,
            detail: DisplayErrorContext(&error).to_string(),
        },
        SdkError::ServiceError(context) => {
            let code = context.err().code().unwrap_or("unknown").to_string();
            let message = context.err().message().unwrap_or("").to_string();
            // 403 covers front ends that answer in a shape the JSON protocol cannot
            // parse (moto answers refused keys in XML, so no code comes through).
            if AUTH_CODES.contains(&code.as_str()) || context.raw().status().as_u16() == 403 {
                DynamoError::Unauthorized {
                    endpoint: endpoint.to_string(),
                    code,
                    message,
                }
            } else if THROTTLING_CODES.contains(&code.as_str()) {
                DynamoError::Throttled {
                    endpoint: endpoint.to_string(),
                    operation,
                    code,
                }
            } else if code == "ResourceNotFoundException" {
                DynamoError::ResourceNotFound { operation, message }
            } else {
                DynamoError::Service {
                    operation,
                    code,
                    message,
                }
            }
        }
        _ => DynamoError::Other {
            operation,
            detail: DisplayErrorContext(&error).to_string(),
        },
    }
}
