//! What list/get/lineage/jobs show, in the shape the API answers with. In local mode the
//! same shapes are built from store records (secrets redacted), so `--output json` is the
//! same document whichever way the command reached the store.

use chrono::{DateTime, Utc};
use quiver_core::{Kind, ResourceId, Status};
use quiver_lineage::Edge;
use quiver_metadata::{Job, Page, ResourceRecord};
use serde::{Deserialize, Serialize};

/// One resource as the API shows it (`quiver_api::resources::ResourceView`), field for
/// field; the end-to-end tests check that local and server output are identical.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceView {
    pub kind: Kind,
    pub name: String,
    #[serde(default)]
    pub variant: String,
    #[serde(default)]
    pub is_default: bool,
    pub status: Status,
    #[serde(default)]
    pub error: Option<String>,
    pub owner: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub revision: i64,
    /// The definition with inline secrets redacted.
    pub definition: serde_json::Value,
}

impl ResourceView {
    pub fn from_record(record: &ResourceRecord) -> Self {
        let d = &record.definition;
        ResourceView {
            kind: record.id.kind,
            name: record.id.name.clone(),
            variant: record.id.variant.clone(),
            is_default: record.is_default,
            status: record.status,
            error: record.error.clone(),
            owner: d.owner().to_string(),
            description: d.description().to_string(),
            tags: d.tags().to_vec(),
            created_at: record.created_at,
            updated_at: record.updated_at,
            revision: record.revision,
            definition: serde_json::to_value(d.redacted()).unwrap_or_default(),
        }
    }

    pub fn id(&self) -> ResourceId {
        ResourceId::new(self.kind, self.name.clone(), self.variant.clone())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourcePage {
    pub items: Vec<ResourceView>,
    pub total: u64,
    #[serde(default)]
    pub next_offset: Option<u64>,
}

impl ResourcePage {
    pub fn from_records(page: Page<ResourceRecord>) -> Self {
        ResourcePage {
            items: page.items.iter().map(ResourceView::from_record).collect(),
            total: page.total,
            next_offset: page.next_offset,
        }
    }
}

/// The lineage graph around one resource; edges point from upstream to downstream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LineageView {
    pub root: ResourceId,
    /// Every resource of the graph, `root` included, sorted.
    pub nodes: Vec<LineageNode>,
    pub edges: Vec<Edge>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LineageNode {
    pub kind: Kind,
    pub name: String,
    #[serde(default)]
    pub variant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobPage {
    pub items: Vec<Job>,
    pub total: u64,
    #[serde(default)]
    pub next_offset: Option<u64>,
}

impl JobPage {
    pub fn from_page(page: Page<Job>) -> Self {
        JobPage {
            items: page.items,
            total: page.total,
            next_offset: page.next_offset,
        }
    }
}
