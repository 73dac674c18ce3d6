//! Apply planning, shared by every backend: pin references to variants, decide per
//! resource create / update / unchanged / conflict, refuse dangling references and
//! cycles, and list what each change affects downstream. Backends supply reads through
//! [`SnapshotReader`] (inside their transaction when applying) and perform the writes.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use quiver_core::{Definition, Kind, ResourceId, SourcedDefinition};
use quiver_lineage::{edges_of, Direction, Edge, LineageGraph};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::StoreError;
use crate::jobs::JobKind;

/// How far `plan` follows downstream impact.
pub const IMPACT_DEPTH: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanAction {
    /// New resource or new variant.
    Create,
    /// Changed definition of an unversioned kind (provider, entity, model, user).
    Update,
    /// Identical to what is stored: nothing to do.
    Unchanged,
    /// Different definition under an existing immutable variant: refused.
    Conflict,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanItem {
    pub resource: ResourceId,
    /// Where the definition was written (`file.yaml:12`, `documents[3]`).
    pub origin: String,
    pub action: PlanAction,
    /// For update and conflict: the fields that differ from the stored definition.
    pub differing_fields: Vec<String>,
    /// For a created variant: it becomes the default variant of its name.
    pub becomes_default: bool,
    /// Resources that depend on this one (directly or not), nearest first.
    pub downstream: Vec<ResourceId>,
}

/// What an apply does (or did), one item per definition in document order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    pub items: Vec<PlanItem>,
}

impl Plan {
    pub fn count(&self, action: PlanAction) -> usize {
        self.items.iter().filter(|i| i.action == action).count()
    }

    pub fn conflicts(&self) -> Vec<(ResourceId, Vec<String>)> {
        self.items
            .iter()
            .filter(|i| i.action == PlanAction::Conflict)
            .map(|i| (i.resource.clone(), i.differing_fields.clone()))
            .collect()
    }
}

/// A write the backend performs for a planned create or update.
#[derive(Debug, Clone)]
pub(crate) struct PlannedWrite {
    /// Index into `Plan::items`.
    pub item: usize,
    pub action: PlanAction,
    /// The definition with every reference pinned.
    pub definition: Definition,
    pub edges: Vec<Edge>,
    pub becomes_default: bool,
    pub job: Option<JobKind>,
    /// The cron expression of a created feature's materialization schedule.
    pub schedule: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct PlannedBatch {
    pub plan: Plan,
    /// Sorted by resource id: one global lock order for concurrent appliers.
    pub writes: Vec<PlannedWrite>,
}

/// Reads a backend provides to the planner.
#[async_trait]
pub(crate) trait SnapshotReader: Send {
    /// The default variant of each `(kind, name)` that has one.
    async fn default_variants(
        &mut self,
        names: &[(Kind, String)],
    ) -> Result<HashMap<(Kind, String), String>, StoreError>;
    /// Stored definitions of the ids that exist.
    async fn definitions(
        &mut self,
        ids: &[ResourceId],
    ) -> Result<HashMap<ResourceId, Definition>, StoreError>;
    /// Stored edges reachable downstream from `ids` within `depth` steps.
    async fn downstream_edges(
        &mut self,
        ids: &[ResourceId],
        depth: u32,
    ) -> Result<Vec<Edge>, StoreError>;
}

/// Plan a batch of definitions against a snapshot.
pub(crate) async fn plan_batch(
    reader: &mut dyn SnapshotReader,
    batch: Vec<SourcedDefinition>,
) -> Result<PlannedBatch, StoreError> {
    // Callers validate while parsing; the store checks again so no entry point can
    // write a definition that breaks the model's rules.
    for d in &batch {
        d.definition.validate().map_err(|e| StoreError::Invalid {
            origin: d.origin.clone(),
            message: format!("{} {}: {e}", d.definition.kind(), d.definition.name()),
        })?;
    }
    let batch = dedupe(batch)?;

    // Variants of each versioned name that this batch defines, in document order.
    let mut batch_variants: HashMap<(Kind, String), Vec<String>> = HashMap::new();
    for d in &batch {
        if d.definition.kind().is_versioned() {
            batch_variants
                .entry((d.definition.kind(), d.definition.name().to_string()))
                .or_default()
                .push(d.definition.variant().to_string());
        }
    }

    // Unpinned references resolve to a variant defined in this batch, else the default.
    let mut unpinned: Vec<(Kind, String)> = batch
        .iter()
        .flat_map(|d| d.definition.references())
        .filter(|r| r.variant.is_none() && !batch_variants.contains_key(&(r.kind, r.name.clone())))
        .map(|r| (r.kind, r.name))
        .collect();
    unpinned.sort();
    unpinned.dedup();
    let defaults = reader.default_variants(&unpinned).await?;

    let mut pinned = Vec::with_capacity(batch.len());
    for SourcedDefinition {
        mut definition,
        origin,
    } in batch
    {
        let mut ambiguity: Option<StoreError> = None;
        let result = definition.pin_references(|kind, name| {
            if let Some(vs) = batch_variants.get(&(kind, name.to_string())) {
                if vs.len() == 1 {
                    return Some(vs[0].clone());
                }
                ambiguity.get_or_insert_with(|| StoreError::Invalid {
                    origin: origin.clone(),
                    message: format!(
                        "{kind} `{name}` has several variants in this apply ({}); name one as `{name}:VARIANT`",
                        vs.join(", ")
                    ),
                });
                return Some(vs[0].clone());
            }
            defaults.get(&(kind, name.to_string())).cloned()
        });
        if let Some(e) = ambiguity {
            return Err(e);
        }
        if let Err(e) = result {
            return Err(StoreError::DanglingReference {
                origin,
                field: e.field,
                target: e.message.trim_end_matches(" does not exist").to_string(),
            });
        }
        pinned.push(SourcedDefinition { definition, origin });
    }

    // Everything the batch names or references, read in one go.
    let batch_ids: HashMap<ResourceId, usize> = pinned
        .iter()
        .enumerate()
        .map(|(i, d)| (d.definition.id(), i))
        .collect();
    let mut wanted: Vec<ResourceId> = batch_ids.keys().cloned().collect();
    for d in &pinned {
        for e in edges_of(&d.definition) {
            wanted.push(e.upstream);
        }
    }
    wanted.sort();
    wanted.dedup();
    let stored = reader.definitions(&wanted).await?;

    // Dangling pinned references.
    for d in &pinned {
        for r in d.definition.references() {
            let target = ResourceId::new(
                r.kind,
                r.name.clone(),
                r.variant.clone().unwrap_or_default(),
            );
            if !batch_ids.contains_key(&target) && !stored.contains_key(&target) {
                return Err(StoreError::DanglingReference {
                    origin: d.origin.clone(),
                    field: r.field,
                    target: format!("{} `{}`", r.kind, display_target(&target)),
                });
            }
        }
    }

    // Cycles can only run through resources of this batch: stored variants are immutable
    // and cannot refer to what does not exist yet.
    let batch_edges: Vec<Edge> = pinned
        .iter()
        .flat_map(|d| edges_of(&d.definition))
        .collect();
    if let Some(path) = LineageGraph::from_edges(&batch_edges).find_cycle() {
        return Err(StoreError::Cycle { path });
    }

    // Downstream impact over stored edges plus the batch's own.
    let ids: Vec<ResourceId> = pinned.iter().map(|d| d.definition.id()).collect();
    let stored_edges = reader.downstream_edges(&ids, IMPACT_DEPTH).await?;
    let mut graph = LineageGraph::from_edges(stored_edges.iter().chain(&batch_edges));
    for id in &ids {
        graph.add_node(id);
    }

    // The last created variant of a name in document order becomes its default.
    let mut last_created: BTreeMap<(Kind, String), usize> = BTreeMap::new();
    let mut plan = Plan::default();
    let mut writes = Vec::new();
    for (index, d) in pinned.into_iter().enumerate() {
        let id = d.definition.id();
        let (action, differing_fields) = match stored.get(&id) {
            None => (PlanAction::Create, Vec::new()),
            Some(existing) if *existing == d.definition => (PlanAction::Unchanged, Vec::new()),
            Some(existing) => {
                let fields = existing.differing_fields(&d.definition);
                if id.kind.is_versioned() {
                    (PlanAction::Conflict, fields)
                } else {
                    (PlanAction::Update, fields)
                }
            }
        };
        if action == PlanAction::Create && id.kind.is_versioned() {
            last_created.insert((id.kind, id.name.clone()), index);
        }
        let downstream = graph
            .walk(&id, Direction::Downstream, IMPACT_DEPTH as usize)
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        if matches!(action, PlanAction::Create | PlanAction::Update) {
            writes.push(PlannedWrite {
                item: index,
                action,
                job: if action == PlanAction::Create {
                    job_for(&d.definition)
                } else {
                    None
                },
                edges: edges_of(&d.definition),
                schedule: if action == PlanAction::Create {
                    schedule_of(&d.definition)
                } else {
                    None
                },
                definition: d.definition,
                becomes_default: false,
            });
        }
        plan.items.push(PlanItem {
            resource: id,
            origin: d.origin,
            action,
            differing_fields,
            becomes_default: false,
            downstream,
        });
    }
    for index in last_created.values() {
        plan.items[*index].becomes_default = true;
    }
    for w in &mut writes {
        w.becomes_default =
            plan.items[w.item].becomes_default || !w.definition.kind().is_versioned();
    }
    writes.sort_by_key(|w| w.definition.id());
    Ok(PlannedBatch { plan, writes })
}

fn display_target(id: &ResourceId) -> String {
    if id.variant.is_empty() {
        id.name.clone()
    } else {
        format!("{}:{}", id.name, id.variant)
    }
}

/// The job a newly created resource needs before it is ready, if any.
pub(crate) fn job_for(definition: &Definition) -> Option<JobKind> {
    match definition {
        Definition::Source(s) if s.sql.is_some() => Some(JobKind::Transformation),
        Definition::TrainingSet(_) => Some(JobKind::TrainingSet),
        Definition::Feature(f) if f.online_provider.is_some() => Some(JobKind::Materialization),
        _ => None,
    }
}

/// The materialization schedule a newly created feature needs, if any.
fn schedule_of(definition: &Definition) -> Option<String> {
    match definition {
        Definition::Feature(f) if f.online_provider.is_some() => {
            f.materialization.as_ref().and_then(|m| m.schedule.clone())
        }
        _ => None,
    }
}

/// The same resource twice in one apply is fine when identical, an error otherwise.
fn dedupe(batch: Vec<SourcedDefinition>) -> Result<Vec<SourcedDefinition>, StoreError> {
    let mut seen: HashMap<ResourceId, usize> = HashMap::new();
    let mut out: Vec<SourcedDefinition> = Vec::with_capacity(batch.len());
    for d in batch {
        let id = d.definition.id();
        match seen.get(&id) {
            None => {
                seen.insert(id, out.len());
                out.push(d);
            }
            Some(&i) if out[i].definition == d.definition => {}
            Some(&i) => {
                return Err(StoreError::Invalid {
                    origin: d.origin.clone(),
                    message: format!(
                        "{id} is defined twice in this apply, differently from {} (fields that differ: {})",
                        out[i].origin,
                        out[i].definition.differing_fields(&d.definition).join(", ")
                    ),
                })
            }
        }
    }
    Ok(out)
}
