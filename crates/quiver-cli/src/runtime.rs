//! The runtime of this binary: every provider compiled in, with relative `files` roots
//! resolved against the working directory and the embedded online store under the data
//! directory. `quiver serve` and in-process commands build it the same way.

use std::path::Path;
use std::sync::Arc;

use quiver_metadata::MetadataStore;
use quiver_runtime::{default_registry, RegistryOptions, Runtime};

use crate::error::CliError;

pub fn build(store: Arc<dyn MetadataStore>, data_dir: &Path) -> Result<Runtime, CliError> {
    let base_dir = std::env::current_dir()
        .map_err(|e| CliError::failed(format!("cannot read the working directory: {e}")))?;
    let data_dir = if data_dir.is_absolute() {
        data_dir.to_path_buf()
    } else {
        base_dir.join(data_dir)
    };
    let registry = default_registry(&RegistryOptions { base_dir, data_dir });
    Ok(Runtime::new(store, registry))
}
