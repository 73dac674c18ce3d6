//! What the store returns: resource records, list queries and pages.

use chrono::{DateTime, Utc};
use quiver_core::{Definition, Kind, ResourceId, Status};
use serde::{Deserialize, Serialize};

/// One stored resource: its definition (with secrets; redact before showing), status
/// and bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRecord {
    pub id: ResourceId,
    pub definition: Definition,
    pub status: Status,
    /// Error text when `status` is failed.
    pub error: Option<String>,
    /// Whether this is the default variant of its name (always true for unversioned kinds).
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped on every change of the row; used for optimistic updates.
    pub revision: i64,
}

/// Filters for listing resources. All filters combine with AND.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListQuery {
    pub kind: Option<Kind>,
    /// Exact name.
    pub name: Option<String>,
    pub owner: Option<String>,
    /// The resource carries this tag.
    pub tag: Option<String>,
    pub status: Option<Status>,
    /// Case-insensitive substring of name or description.
    pub text: Option<String>,
    /// Only default variants (one row per name).
    pub defaults_only: bool,
    pub limit: u32,
    pub offset: u64,
}

/// A page of results in a stable order (kind, name, variant).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Matching rows in all pages.
    pub total: u64,
    /// Offset of the next page, if there is one.
    pub next_offset: Option<u64>,
}

/// One variant of a name, for variant selectors.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantSummary {
    pub variant: String,
    pub is_default: bool,
    pub status: Status,
    pub created_at: DateTime<Utc>,
}
