//! Quiver-owned outputs, variant-keyed and published atomically.
//!
//! A run writes its data under
//! `{root}/_quiver/outputs/{kind}/{name}/{variant}/runs/{run-id}/part-0.parquet`, then
//! publishes it with a single PUT of `{…}/{variant}/_manifest.json` naming the run (a
//! local PUT is write-to-temp-then-rename; on S3 and GCS a PUT is atomic). Readers go
//! through the manifest, so they see the previous run or the new one, never a mix, and a
//! run that fails before publishing leaves the previous output exactly as it was. After
//! publishing, runs older than the previous one are deleted (the previous one stays for
//! readers still streaming it).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::Utc;
use futures::TryStreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use quiver_provider_sdk::{OutputRef, ProviderError};
use serde::{Deserialize, Serialize};

use crate::errors;
use crate::root::Root;

const MANIFEST: &str = "_manifest.json";
const DATA_FILE: &str = "part-0.parquet";

/// What `_manifest.json` holds: the published run of one output variant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub run: String,
    pub files: Vec<String>,
    pub rows: u64,
    pub published_at: String,
}

/// `{root}/_quiver/outputs/{kind}/{name}/{variant}`, each part checked to be one plain
/// path segment.
pub(crate) fn variant_dir(root: &Root, output: &OutputRef) -> Result<Path, ProviderError> {
    let mut path = root.prefix.clone().join("_quiver").join("outputs");
    for (what, part) in [
        ("kind", &output.kind),
        ("name", &output.name),
        ("variant", &output.variant),
    ] {
        let plain = !part.is_empty()
            && part != "."
            && part != ".."
            && !part.contains(['/', '\\'])
            && !part.chars().any(char::is_control);
        if !plain {
            return Err(ProviderError::InvalidQuery(format!(
                "output {what} `{part}` is not a plain name"
            )));
        }
        path = path.join(part.as_str());
    }
    Ok(path)
}

fn describe(output: &OutputRef) -> String {
    format!(
        "{} `{}` variant `{}`",
        output.kind, output.name, output.variant
    )
}

/// The published run of `output`.
///
/// # Errors
/// `NotFound` when it was never published.
pub(crate) async fn read_manifest(
    root: &Root,
    output: &OutputRef,
) -> Result<(Path, Manifest), ProviderError> {
    let dir = variant_dir(root, output)?;
    let bytes = match root.store.get(&dir.clone().join(MANIFEST)).await {
        Ok(got) => got.bytes().await.map_err(errors::store)?,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(ProviderError::NotFound(format!(
                "output {} has not been built",
                describe(output)
            )))
        }
        Err(e) => return Err(errors::store(e)),
    };
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        ProviderError::Other(format!("manifest of output {}: {e}", describe(output)))
    })?;
    Ok((dir.join("runs").join(manifest.run.as_str()), manifest))
}

/// One run of an output being written; nothing is visible until [`OutputRun::publish`].
pub(crate) struct OutputRun {
    store: Arc<dyn ObjectStore>,
    variant_dir: Path,
    run: String,
    writer: AsyncArrowWriter<BufWriter>,
    rows: u64,
}

impl OutputRun {
    pub fn create(
        root: &Root,
        output: &OutputRef,
        schema: SchemaRef,
    ) -> Result<Self, ProviderError> {
        let variant_dir = variant_dir(root, output)?;
        let run = format!(
            "{}-{}",
            Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
            uuid::Uuid::new_v4().simple()
        );
        let file = variant_dir
            .clone()
            .join("runs")
            .join(run.as_str())
            .join(DATA_FILE);
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let writer = AsyncArrowWriter::try_new(
            BufWriter::new(root.store.clone(), file),
            schema,
            Some(properties),
        )
        .map_err(errors::parquet)?;
        Ok(OutputRun {
            store: root.store.clone(),
            variant_dir,
            run,
            writer,
            rows: 0,
        })
    }

    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), ProviderError> {
        self.rows += batch.num_rows() as u64;
        self.writer.write(batch).await.map_err(errors::parquet)
    }

    /// Finish the data file, then point the manifest at this run; returns rows written.
    pub async fn publish(self) -> Result<u64, ProviderError> {
        let OutputRun {
            store,
            variant_dir,
            run,
            writer,
            rows,
        } = self;
        writer.close().await.map_err(errors::parquet)?;
        let manifest = Manifest {
            run: run.clone(),
            files: vec![DATA_FILE.to_string()],
            rows,
            published_at: Utc::now().to_rfc3339(),
        };
        let previous = match store.get(&variant_dir.clone().join(MANIFEST)).await {
            Ok(got) => got
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
                .map(|m| m.run),
            Err(_) => None,
        };
        let body = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| ProviderError::Other(format!("manifest: {e}")))?;
        store
            .put(&variant_dir.clone().join(MANIFEST), PutPayload::from(body))
            .await
            .map_err(errors::store)?;
        remove_stale_runs(store.as_ref(), &variant_dir, &run, previous.as_deref()).await;
        Ok(rows)
    }
}

/// Best effort: a run left behind costs space, not correctness.
async fn remove_stale_runs(
    store: &dyn ObjectStore,
    variant_dir: &Path,
    current: &str,
    previous: Option<&str>,
) {
    let runs = variant_dir.clone().join("runs");
    let listed: Result<Vec<_>, _> = store.list(Some(&runs)).try_collect().await;
    let Ok(objects) = listed else { return };
    for object in objects {
        let run = object
            .location
            .prefix_match(&runs)
            .and_then(|mut parts| parts.next())
            .map(|part| part.as_ref().to_string());
        let keep = run
            .as_deref()
            .is_none_or(|run| run == current || Some(run) == previous);
        if !keep {
            if let Err(e) = store.delete(&object.location).await {
                tracing::warn!(path = %object.location, error = %e, "stale output run not removed");
            }
        }
    }
}
