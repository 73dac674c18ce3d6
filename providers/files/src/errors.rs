//! Mapping DataFusion, Arrow and object_store failures to [`ProviderError`] — in this one
//! place, so every operation reports the same cause the same way: a missing object is
//! `NotFound` (a missing S3 bucket too, named), SQL that does not parse or plan or run is
//! `InvalidQuery`, refused credentials are `Unauthorized`, anything else from the store is
//! `Unreachable`.

use arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use quiver_provider_sdk::ProviderError;

pub(crate) fn from_object_store(error: &object_store::Error) -> ProviderError {
    use object_store::Error;
    if let Some(mapped) = from_s3_error_code(error) {
        return mapped;
    }
    match error {
        Error::NotFound { path, .. } => ProviderError::NotFound(format!("`{path}` does not exist")),
        Error::PermissionDenied { .. } | Error::Unauthenticated { .. } => {
            ProviderError::Unauthorized(error.to_string())
        }
        Error::InvalidPath { .. } => ProviderError::InvalidQuery(error.to_string()),
        _ => ProviderError::Unreachable(error.to_string()),
    }
}

/// S3 names the cause in its error body (`<Code>NoSuchBucket</Code>`), which object_store
/// keeps in the message; it does not give list requests a status-specific variant, so a
/// refused or missing bucket would otherwise read as `Unreachable`.
/// Codes: <https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>.
fn from_s3_error_code(error: &object_store::Error) -> Option<ProviderError> {
    let message = error.to_string();
    let code = between(&message, "<Code>", "</Code>")?;
    match code {
        "NoSuchBucket" => {
            let bucket = between(&message, "<BucketName>", "</BucketName>").unwrap_or("?");
            Some(ProviderError::NotFound(format!(
                "bucket `{bucket}` does not exist: {message}"
            )))
        }
        "AccessDenied"
        | "AllAccessDisabled"
        | "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "InvalidToken" => Some(ProviderError::Unauthorized(message)),
        _ => None,
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

pub(crate) fn from_arrow(error: &ArrowError) -> ProviderError {
    match error {
        ArrowError::ExternalError(inner) => from_external(inner.as_ref()),
        ArrowError::IoError(..) | ArrowError::ParquetError(_) => {
            ProviderError::Other(error.to_string())
        }
        _ => ProviderError::InvalidQuery(error.to_string()),
    }
}

fn from_external(error: &(dyn std::error::Error + Send + Sync + 'static)) -> ProviderError {
    if let Some(e) = error.downcast_ref::<object_store::Error>() {
        from_object_store(e)
    } else if let Some(e) = error.downcast_ref::<DataFusionError>() {
        from_datafusion(e)
    } else if let Some(e) = error.downcast_ref::<ArrowError>() {
        from_arrow(e)
    } else {
        ProviderError::Other(error.to_string())
    }
}

/// Classify by the root cause; the message keeps DataFusion's own wording.
pub(crate) fn from_datafusion(error: &DataFusionError) -> ProviderError {
    let root = error.find_root();
    match root {
        DataFusionError::ObjectStore(e) => from_object_store(e),
        DataFusionError::ArrowError(e, _) => from_arrow(e),
        DataFusionError::External(e) => from_external(e.as_ref()),
        DataFusionError::IoError(e) if e.kind() == std::io::ErrorKind::NotFound => {
            ProviderError::NotFound(root.to_string())
        }
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_)
        | DataFusionError::Execution(_) => ProviderError::InvalidQuery(root.to_string()),
        _ => ProviderError::Other(root.to_string()),
    }
}

pub(crate) fn datafusion(error: DataFusionError) -> ProviderError {
    from_datafusion(&error)
}

pub(crate) fn arrow(error: ArrowError) -> ProviderError {
    from_arrow(&error)
}

pub(crate) fn store(error: object_store::Error) -> ProviderError {
    from_object_store(&error)
}

pub(crate) fn parquet(error: parquet::errors::ParquetError) -> ProviderError {
    match error {
        parquet::errors::ParquetError::External(inner) => from_external(inner.as_ref()),
        other => ProviderError::Other(other.to_string()),
    }
}
