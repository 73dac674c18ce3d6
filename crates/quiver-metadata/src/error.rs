//! Errors of the metadata store. Variants are chosen so the API can map each to one
//! HTTP status and stable code without inspecting messages.

use quiver_core::ResourceId;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A definition breaks a rule (bad reference, duplicate in one apply, …).
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    /// A reference names a resource that neither exists nor is part of the apply.
    #[error("{origin}: {field} refers to {target}, which does not exist; apply it first or in the same apply")]
    DanglingReference {
        origin: String,
        field: String,
        target: String,
    },
    /// References form a cycle; `path` starts and ends at the same resource.
    #[error("references form a cycle: {}", quiver_lineage::describe_path(.path))]
    Cycle { path: Vec<ResourceId> },
    /// Definitions differ from what is stored under the same immutable variant.
    #[error("{}", describe_conflicts(.conflicts))]
    Conflict {
        conflicts: Vec<(ResourceId, Vec<String>)>,
    },
    #[error("{0} not found")]
    NotFound(String),
    /// A job transition that its current state does not allow (e.g. lease lost).
    #[error("{0}")]
    JobState(String),
    /// Contention did not settle after retries; safe to retry the request.
    #[error("the metadata store is busy; retry the request")]
    Busy,
    #[error("metadata database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("metadata migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored row could not be decoded (corrupt or written by a newer version).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

fn describe_conflicts(conflicts: &[(ResourceId, Vec<String>)]) -> String {
    let parts: Vec<String> = conflicts
        .iter()
        .map(|(id, fields)| {
            format!(
                "{id} already exists with a different definition (fields that differ: {}); variants are immutable, so apply the change under a new variant",
                fields.join(", ")
            )
        })
        .collect();
    parts.join("; ")
}

impl StoreError {
    pub fn is_retryable_database_error(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => {
                // Postgres serialization failure / deadlock; SQLite busy / locked.
                matches!(
                    db.code().as_deref(),
                    Some("40001" | "40P01" | "5" | "6" | "517")
                )
            }
            StoreError::Busy => true,
            _ => false,
        }
    }
}
