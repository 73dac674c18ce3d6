//! The provider's root: which object store holds its files, where inside it, and how a
//! `TableRef::File` path or an output becomes an object path and a URL DataFusion reads.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::ObjectStore;
use quiver_provider_sdk::ProviderError;
use url::Url;

/// Where the provider's files live.
#[derive(Clone)]
pub(crate) struct Root {
    pub store: Arc<dyn ObjectStore>,
    /// `scheme://authority/`, the URL the store is registered under in DataFusion.
    pub base_url: Url,
    /// The root inside the store.
    pub prefix: Path,
    /// The root as a person would write it, for messages (never holds credentials).
    pub display: String,
    /// The local directory, for a local root.
    pub local_dir: Option<PathBuf>,
}

/// Endpoint, region and credentials for an `s3://` root, secrets already resolved. Debug
/// output never shows the secret (nor the key id, which names the account).
#[derive(Default, Clone)]
pub struct RemoteOptions {
    /// The bucket's region; `us-east-1` when unset (and for local servers).
    pub region: Option<String>,
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`); buckets are then addressed
    /// path-style, and `http://` is accepted.
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl std::fmt::Debug for RemoteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteOptions")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "***"))
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// Only what a person needs to recognise the root: never the store's configuration, which
/// holds credentials.
impl std::fmt::Debug for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Root")
            .field("display", &self.display)
            .finish_non_exhaustive()
    }
}

impl Root {
    /// A local directory (created when missing).
    pub fn local(dir: &FsPath) -> Result<Root, ProviderError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            ProviderError::InvalidConfig(format!(
                "cannot create root directory {}: {e}",
                dir.display()
            ))
        })?;
        let dir = dir.canonicalize().map_err(|e| {
            ProviderError::InvalidConfig(format!("root directory {}: {e}", dir.display()))
        })?;
        let prefix = Path::from_absolute_path(&dir).map_err(|e| {
            ProviderError::InvalidConfig(format!("root directory {}: {e}", dir.display()))
        })?;
        Ok(Root {
            // Removing a stale run also removes its emptied directory.
            store: Arc::new(LocalFileSystem::new().with_automatic_cleanup(true)),
            base_url: Url::parse("file:///").expect("static url"),
            prefix,
            display: dir.display().to_string(),
            local_dir: Some(dir),
        })
    }

    /// A root from configuration: a URL (`s3://bucket/prefix`, `gs://bucket/prefix`,
    /// `file:///dir`) or a directory, relative ones resolved against `base_dir`.
    pub fn parse(
        root: &str,
        base_dir: &FsPath,
        options: &RemoteOptions,
    ) -> Result<Root, ProviderError> {
        let Some((scheme, _)) = root.split_once("://") else {
            return Root::local(&base_dir.join(root));
        };
        let url = Url::parse(root)
            .map_err(|e| ProviderError::InvalidConfig(format!("root `{root}`: {e}")))?;
        match scheme {
            "file" => {
                let dir = url.to_file_path().map_err(|()| {
                    ProviderError::InvalidConfig(format!("root `{root}` is not a local path"))
                })?;
                Root::local(&dir)
            }
            "s3" | "s3a" => remote(&url, Backend::S3, options),
            "gs" => remote(&url, Backend::Gcs, options),
            other => Err(ProviderError::InvalidConfig(format!(
                "root `{root}`: unsupported scheme `{other}` (use a directory, file://, s3:// or gs://)"
            ))),
        }
    }

    /// The object path of `relative` (a `TableRef::File` path) under the root, refusing
    /// paths that climb out of it. Absolute local paths and URLs on the root's own store
    /// are taken as they are.
    pub fn resolve(&self, relative: &str) -> Result<Path, ProviderError> {
        if relative.contains("://") {
            let url = Url::parse(relative)
                .map_err(|e| ProviderError::InvalidQuery(format!("path `{relative}`: {e}")))?;
            let same_store = url.scheme() == self.base_url.scheme()
                && url.host_str().unwrap_or("") == self.base_url.host_str().unwrap_or("");
            if !same_store {
                return Err(ProviderError::Unsupported(format!(
                    "`{relative}` is outside this provider's store ({})",
                    self.display
                )));
            }
            return Path::from_url_path(url.path())
                .map_err(|e| ProviderError::InvalidQuery(format!("path `{relative}`: {e}")));
        }
        if self.local_dir.is_some() && FsPath::new(relative).is_absolute() {
            return Path::from_absolute_path(relative)
                .map_err(|e| ProviderError::InvalidQuery(format!("path `{relative}`: {e}")));
        }
        let mut path = self.prefix.clone();
        for part in relative.split('/').filter(|p| !p.is_empty() && *p != ".") {
            if part == ".." {
                return Err(ProviderError::InvalidQuery(format!(
                    "path `{relative}` climbs out of the provider root"
                )));
            }
            path = path.join(part);
        }
        Ok(path)
    }

    /// The URL DataFusion reads `path` at; `directory` adds the trailing slash that makes
    /// it list a prefix.
    pub fn url_of(&self, path: &Path, directory: bool) -> String {
        let slash = if directory { "/" } else { "" };
        format!("{}{}{slash}", self.base_url, path)
    }
}

enum Backend {
    S3,
    Gcs,
}

#[cfg(not(any(feature = "s3", feature = "gcs")))]
fn remote(url: &Url, backend: Backend, _options: &RemoteOptions) -> Result<Root, ProviderError> {
    let feature = match backend {
        Backend::S3 => "s3",
        Backend::Gcs => "gcs",
    };
    Err(ProviderError::CompiledOut {
        kind: format!("files ({}://)", url.scheme()),
        feature: format!("quiver-provider-files/{feature}"),
    })
}

#[cfg(any(feature = "s3", feature = "gcs"))]
fn remote(url: &Url, backend: Backend, options: &RemoteOptions) -> Result<Root, ProviderError> {
    let bucket = url
        .host_str()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| ProviderError::InvalidConfig(format!("root `{url}` names no bucket")))?
        .to_string();
    let store: Arc<dyn ObjectStore> =
        match backend {
            #[cfg(feature = "s3")]
            Backend::S3 => Arc::new(s3::store(&bucket, options)?),
            #[cfg(feature = "gcs")]
            Backend::Gcs => {
                let builder = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&bucket);
                Arc::new(builder.build().map_err(|e| {
                    ProviderError::InvalidConfig(format!("gcs root `{bucket}`: {e}"))
                })?)
            }
            #[allow(unreachable_patterns)]
            _ => {
                return Err(ProviderError::CompiledOut {
                    kind: format!("files ({}://)", url.scheme()),
                    feature: "quiver-provider-files/s3 or quiver-provider-files/gcs".into(),
                })
            }
        };
    let prefix = Path::from_url_path(url.path())
        .map_err(|e| ProviderError::InvalidConfig(format!("root `{url}`: {e}")))?;
    let base_url = Url::parse(&format!("{}://{bucket}/", url.scheme()))
        .map_err(|e| ProviderError::InvalidConfig(format!("root `{url}`: {e}")))?;
    Ok(Root {
        store,
        base_url,
        prefix,
        display: format!(
            "{}://{bucket}/{}",
            url.scheme(),
            url.path().trim_start_matches('/')
        ),
        local_dir: None,
    })
}

/// The S3 store of a root. Configured keys are used alone; without them the AWS environment
/// (`AWS_*` variables, web identity, instance credentials) applies. A configured region or
/// endpoint always wins.
#[cfg(feature = "s3")]
mod s3 {
    use std::time::Duration;

    use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
    use object_store::{BackoffConfig, ClientConfigKey, RetryConfig};
    use quiver_provider_sdk::ProviderError;
    use url::Url;

    use super::RemoteOptions;

    /// A few quick retries: a server that is down is reported within seconds rather than
    /// after object_store's default of ten retries over three minutes.
    fn retry() -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: Duration::from_secs(20),
        }
    }

    pub(super) fn store(bucket: &str, options: &RemoteOptions) -> Result<AmazonS3, ProviderError> {
        let invalid = |message: String| {
            ProviderError::InvalidConfig(format!("s3 root `{bucket}`: {message}"))
        };
        let mut builder = match (&options.access_key_id, &options.secret_access_key) {
            // Explicit keys are used alone: a session token from the environment would
            // belong to other keys.
            (Some(key), Some(secret)) => AmazonS3Builder::new()
                .with_access_key_id(key)
                .with_secret_access_key(secret),
            (None, None) => AmazonS3Builder::from_env(),
            _ => {
                return Err(invalid(
                    "set both `access_key_id` and `secret_access_key`, or neither".into(),
                ))
            }
        };
        builder = builder
            .with_bucket_name(bucket)
            .with_retry(retry())
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                "5s",
            );
        if let Some(region) = &options.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &options.endpoint {
            let url =
                Url::parse(endpoint).map_err(|e| invalid(format!("endpoint `{endpoint}`: {e}")))?;
            let http = match url.scheme() {
                "http" => true,
                "https" => false,
                other => {
                    return Err(invalid(format!(
                        "endpoint `{endpoint}`: scheme `{other}` (use http:// or https://)"
                    )))
                }
            };
            // S3-compatible servers (MinIO, moto, Ceph) address buckets by path; plain
            // HTTP only when the configuration asks for it by writing http://.
            builder = builder
                .with_endpoint(endpoint.trim_end_matches('/'))
                .with_virtual_hosted_style_request(false)
                .with_allow_http(http);
        }
        tracing::debug!(
            bucket,
            region = options.region.as_deref().unwrap_or("default"),
            endpoint = options.endpoint.as_deref().unwrap_or("AWS"),
            explicit_credentials = options.access_key_id.is_some(),
            "s3 root configured"
        );
        builder.build().map_err(|e| invalid(e.to_string()))
    }
}
