//! Catalogue search and the home page's summary, for the web catalog.
//!
//! `GET /api/v1/search` ranks the default variant of every resource against a free-text
//! query and counts facets (kind, owner, tag, status, provider) over the matches.
//! `GET /api/v1/summary` answers the home page in one request: counts per kind, recent
//! changes, recent and failed jobs, and the providers.
//!
//! Reading every definition from the metadata store per request takes far longer than a
//! search may (10 000 features are hundreds of milliseconds of decoding), so both read an
//! in-memory [`SearchIndex`] that is rebuilt when `MetadataStore::catalog_version` moves
//! — every write of a resource row bumps it, status changes included. The version is a
//! single aggregate query, checked on every request so a page never shows a catalogue
//! older than the last apply.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use quiver_core::{Definition, Kind, ResourceId, Status};
use quiver_metadata::{Job, JobQuery, JobState, ListQuery, MetadataStore, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::error::{problem_responses, ApiError};
use crate::extract::{page_size, ApiQuery};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(search, summary),
    // Schemas used only by parameters are not collected automatically.
    components(schemas(SearchSort, SortOrder, Status))
)]
pub(crate) struct SearchApi;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/search", get(search))
        .route("/api/v1/summary", get(summary))
}

/// Longest accepted query, so one request's cost stays bounded.
const MAX_QUERY_CHARS: usize = 200;
/// Words of a query that count; the rest are ignored.
const MAX_TERMS: usize = 8;
/// Values listed per facet (the most frequent first); a selected value is always listed.
const FACET_VALUES: usize = 25;
/// Resources read from the store per page while rebuilding the index.
const REBUILD_PAGE: u32 = 500;

/// Which field of a resource a query matched best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchField {
    Name,
    Tag,
    Owner,
    Description,
}

/// One resource in search results and summaries: what a result row shows.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchHit {
    kind: Kind,
    name: String,
    /// Empty for unversioned kinds.
    variant: String,
    owner: String,
    description: String,
    tags: Vec<String>,
    status: Status,
    /// Why the resource failed, when `status` is `failed`.
    error: Option<String>,
    /// Providers the resource lives in or is computed by: a source's provider, a
    /// feature's source provider and online provider, a provider itself.
    providers: Vec<String>,
    /// The value type of a feature or label, the provider type of a provider, or how a
    /// source is defined (`table`, `file`, `sql`).
    #[serde(rename = "type")]
    value_type: Option<String>,
    /// The entity a feature is keyed by.
    entity: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Relevance: higher is better; 0 without a query.
    score: u32,
    /// The field the query matched best; absent without a query.
    matched: Option<MatchField>,
}

/// A resource with its text prepared for matching.
struct Entry {
    hit: SearchHit,
    name: String,
    owner: String,
    tags: Vec<String>,
    description: String,
    /// The description's words, lower-cased.
    words: Vec<String>,
}

impl Entry {
    fn new(hit: SearchHit) -> Self {
        let description = hit.description.to_lowercase();
        let words = description
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        Entry {
            name: hit.name.to_lowercase(),
            owner: hit.owner.to_lowercase(),
            tags: hit.tags.iter().map(|t| t.to_lowercase()).collect(),
            description,
            words,
            hit,
        }
    }

    /// The score of one lower-cased query term: name > tag/owner > description, and
    /// within a field exact > prefix > substring. `None` when the term matches nothing.
    fn term_score(&self, term: &str) -> Option<(u32, MatchField)> {
        let name = if self.name == term {
            1000
        } else if self.name.starts_with(term) {
            800
        } else if self
            .name
            .split(['_', '-', '.'])
            .any(|part| part == term || part.starts_with(term))
        {
            // A word of a snake_case name (`amount` in `avg_amount_7d`).
            700
        } else if self.name.contains(term) {
            600
        } else {
            0
        };
        if name > 0 {
            return Some((name, MatchField::Name));
        }
        let graded = |value: &str, exact: u32| -> u32 {
            if value == term {
                exact
            } else if value.starts_with(term) {
                exact - 100
            } else if value.contains(term) {
                exact - 200
            } else {
                0
            }
        };
        let tag = self.tags.iter().map(|t| graded(t, 500)).max().unwrap_or(0);
        let owner = graded(&self.owner, 500);
        if tag > 0 || owner > 0 {
            return Some(if tag >= owner {
                (tag, MatchField::Tag)
            } else {
                (owner, MatchField::Owner)
            });
        }
        let description = if self.words.iter().any(|w| w == term) {
            200
        } else if self.words.iter().any(|w| w.starts_with(term)) {
            150
        } else if self.description.contains(term) {
            100
        } else {
            0
        };
        (description > 0).then_some((description, MatchField::Description))
    }

    /// Every term must match somewhere; the score is the sum, the field the best term's.
    fn score(&self, terms: &[String]) -> Option<(u32, Option<MatchField>)> {
        let mut total = 0;
        let mut best: Option<(u32, MatchField)> = None;
        for term in terms {
            let (score, field) = self.term_score(term)?;
            total += score;
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, field));
            }
        }
        Some((total, best.map(|(_, field)| field)))
    }

    fn values(&self, facet: Facet) -> Vec<&str> {
        match facet {
            Facet::Kind => vec![self.hit.kind.as_str()],
            Facet::Owner => vec![self.hit.owner.as_str()],
            Facet::Tag => self.hit.tags.iter().map(String::as_str).collect(),
            Facet::Status => vec![self.hit.status.as_str()],
            Facet::Provider => self.hit.providers.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Facet {
    Kind,
    Owner,
    Tag,
    Status,
    Provider,
}

/// The default variant of every resource, as of one catalogue version.
struct Snapshot {
    version: (i64, i64),
    entries: Vec<Entry>,
    /// The status of every stored resource, every variant: lineage graphs colour their
    /// nodes from here instead of reading each node's row.
    statuses: HashMap<ResourceId, Status>,
}

/// The in-memory catalogue behind search and the summary, rebuilt when the store's
/// catalogue version moves.
#[derive(Default)]
pub struct SearchIndex {
    // An async mutex: a request that finds the catalogue changed rebuilds while holding
    // it, so concurrent requests wait for that one rebuild instead of each doing one.
    current: tokio::sync::Mutex<Option<Arc<Snapshot>>>,
}

impl SearchIndex {
    pub fn new() -> Self {
        SearchIndex::default()
    }

    async fn snapshot(&self, store: &dyn MetadataStore) -> Result<Arc<Snapshot>, StoreError> {
        let version = store.catalog_version().await?;
        let mut current = self.current.lock().await;
        if let Some(snapshot) = current.as_ref() {
            if snapshot.version == version {
                return Ok(snapshot.clone());
            }
        }
        let started = Instant::now();
        let snapshot = Arc::new(build(store, version).await?);
        tracing::info!(
            resources = snapshot.entries.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "search index rebuilt"
        );
        *current = Some(snapshot.clone());
        Ok(snapshot)
    }

    /// The status of each of `ids` (absent for an id without a stored row), from the
    /// current catalogue.
    pub(crate) async fn statuses(
        &self,
        store: &dyn MetadataStore,
        ids: &[ResourceId],
    ) -> Result<Vec<Option<Status>>, StoreError> {
        let snapshot = self.snapshot(store).await?;
        Ok(ids
            .iter()
            .map(|id| snapshot.statuses.get(id).copied())
            .collect())
    }
}

/// Read every resource (all variants, for the provider of a pinned source) and index
/// the default variants.
async fn build(store: &dyn MetadataStore, version: (i64, i64)) -> Result<Snapshot, StoreError> {
    let mut records = Vec::new();
    let mut offset = 0;
    loop {
        let page = store
            .list(&ListQuery {
                defaults_only: false,
                limit: REBUILD_PAGE,
                offset,
                ..ListQuery::default()
            })
            .await?;
        records.extend(page.items);
        match page.next_offset {
            Some(next) => offset = next,
            None => break,
        }
    }
    // `name:variant` of each source → its provider; of each label → its source.
    let mut source_provider: HashMap<(String, String), String> = HashMap::new();
    let mut label_source: HashMap<(String, String), (String, String)> = HashMap::new();
    for record in &records {
        match &record.definition {
            Definition::Source(source) => {
                source_provider.insert(
                    (source.name.clone(), source.variant.clone()),
                    source.provider.clone(),
                );
            }
            Definition::Label(label) => {
                label_source.insert(
                    (label.name.clone(), label.variant.clone()),
                    pinned(&label.source),
                );
            }
            _ => {}
        }
    }
    let statuses: HashMap<ResourceId, Status> =
        records.iter().map(|r| (r.id.clone(), r.status)).collect();
    let provider_of_source = |key: &(String, String)| source_provider.get(key).cloned();
    let mut entries = Vec::new();
    for record in records.into_iter().filter(|r| r.is_default) {
        let (providers, value_type, entity) = match &record.definition {
            Definition::Provider(p) => (
                vec![p.name.clone()],
                Some(p.config.type_name().to_string()),
                None,
            ),
            Definition::Source(s) => {
                let how = if s.sql.is_some() {
                    "sql"
                } else if s.file.is_some() {
                    "file"
                } else {
                    "table"
                };
                (vec![s.provider.clone()], Some(how.to_string()), None)
            }
            Definition::Feature(f) => {
                let mut providers: Vec<String> =
                    provider_of_source(&pinned(&f.source)).into_iter().collect();
                if let Some(online) = &f.online_provider {
                    if !providers.contains(online) {
                        providers.push(online.clone());
                    }
                }
                (
                    providers,
                    Some(enum_text(&f.value_type)),
                    Some(f.entity.clone()),
                )
            }
            Definition::Label(l) => (
                provider_of_source(&pinned(&l.source)).into_iter().collect(),
                Some(enum_text(&l.value_type)),
                None,
            ),
            Definition::TrainingSet(t) => (
                label_source
                    .get(&pinned(&t.label))
                    .and_then(provider_of_source)
                    .into_iter()
                    .collect(),
                None,
                None,
            ),
            Definition::User(_) | Definition::Entity(_) | Definition::Model(_) => {
                (Vec::new(), None, None)
            }
        };
        entries.push(Entry::new(SearchHit {
            kind: record.id.kind,
            owner: record.definition.owner().to_string(),
            description: record.definition.description().to_string(),
            tags: record.definition.tags().to_vec(),
            name: record.id.name,
            variant: record.id.variant,
            status: record.status,
            error: record.error,
            providers,
            value_type,
            entity,
            created_at: record.created_at,
            updated_at: record.updated_at,
            score: 0,
            matched: None,
        }));
    }
    Ok(Snapshot {
        version,
        entries,
        statuses,
    })
}

/// A stored (pinned) reference as a `(name, variant)` key.
fn pinned(reference: &quiver_core::ResourceRef) -> (String, String) {
    (
        reference.name.clone(),
        reference.variant.clone().unwrap_or_default(),
    )
}

/// The serde name of a unit enum variant (`float64`).
fn enum_text<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// How results are ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchSort {
    /// Best match first (by name without a query).
    #[default]
    Relevance,
    Name,
    Kind,
    Owner,
    Status,
    /// Last change (newest first by default).
    Updated,
    /// Creation (newest first by default).
    Created,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    Asc,
    Desc,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchParams {
    /// Free text: every word must match the name, a tag, the owner or the description
    /// (case-insensitive). Empty: every resource.
    q: Option<String>,
    /// Only this kind (`feature`, `training_set`, … or the plural `training-sets`).
    kind: Option<String>,
    /// Only resources of this owner (exact).
    owner: Option<String>,
    /// Only resources carrying this tag (exact).
    tag: Option<String>,
    /// Only resources in this status.
    status: Option<Status>,
    /// Only resources living in or computed by this provider.
    provider: Option<String>,
    /// Order of the results.
    #[param(default = "relevance")]
    sort: Option<SearchSort>,
    /// Direction; the default is descending for `updated` and `created`, ascending
    /// otherwise.
    order: Option<SortOrder>,
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// Results to skip: `next_offset` of the previous page.
    #[param(default = 0)]
    offset: Option<u64>,
}

/// One value of a facet and how many matching resources have it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FacetValue {
    value: String,
    count: u64,
}

/// Facet counts. Each facet counts the resources matching the query and every *other*
/// filter, so choosing a value still shows the alternatives.
#[derive(Debug, Serialize, ToSchema)]
pub struct Facets {
    kind: Vec<FacetValue>,
    owner: Vec<FacetValue>,
    tag: Vec<FacetValue>,
    status: Vec<FacetValue>,
    provider: Vec<FacetValue>,
}

/// One page of search results.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    items: Vec<SearchHit>,
    /// Matching resources in all pages.
    total: u64,
    /// Pass as `offset` to get the next page; absent on the last page.
    next_offset: Option<u64>,
    facets: Facets,
    /// Time the server spent on this search, in milliseconds.
    took_ms: f64,
}

problem_responses!(SearchErrors: InvalidQuery);

/// Search the catalogue
///
/// Ranks the default variant of every resource: a name match beats a tag or owner
/// match, which beats a match of a word of the description; within each, exact beats
/// prefix beats substring. Filters narrow the results; facets count over the matches.
#[utoipa::path(
    get,
    path = "/api/v1/search",
    tag = "resources",
    params(SearchParams),
    responses((status = 200, description = "Ranked results with facet counts", body = SearchResults), SearchErrors)
)]
async fn search(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<SearchResults>, ApiError> {
    let started = Instant::now();
    let limit = page_size(params.limit)?;
    let offset = params.offset.unwrap_or(0);
    let text = params.q.clone().unwrap_or_default();
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::invalid_query(format!(
            "q is longer than {MAX_QUERY_CHARS} characters; search for fewer words"
        )));
    }
    let terms: Vec<String> = text
        .to_lowercase()
        .split_whitespace()
        .take(MAX_TERMS)
        .map(str::to_string)
        .collect();
    let filters = Filters::new(&params)?;
    let snapshot = state.search.snapshot(state.store.as_ref()).await?;

    let matches: Vec<(&Entry, u32, Option<MatchField>)> = snapshot
        .entries
        .iter()
        .filter_map(|entry| {
            if terms.is_empty() {
                Some((entry, 0, None))
            } else {
                entry
                    .score(&terms)
                    .map(|(score, field)| (entry, score, field))
            }
        })
        .collect();

    let facets = Facets {
        kind: facet_counts(&matches, &filters, Facet::Kind),
        owner: facet_counts(&matches, &filters, Facet::Owner),
        tag: facet_counts(&matches, &filters, Facet::Tag),
        status: facet_counts(&matches, &filters, Facet::Status),
        provider: facet_counts(&matches, &filters, Facet::Provider),
    };

    let mut results: Vec<&(&Entry, u32, Option<MatchField>)> = matches
        .iter()
        .filter(|(entry, _, _)| filters.accept(entry, None))
        .collect();
    let sort = params.sort.unwrap_or_default();
    let descending = match (params.order, sort) {
        (Some(order), _) => order == SortOrder::Desc,
        (None, SearchSort::Updated | SearchSort::Created) => true,
        (None, _) => false,
    };
    results.sort_by(|(a, a_score, _), (b, b_score, _)| {
        let by_name = (a.hit.name.as_str(), a.hit.kind).cmp(&(b.hit.name.as_str(), b.hit.kind));
        let primary = match sort {
            // Best first whatever `order` says, then by name.
            SearchSort::Relevance => {
                let by_score = b_score.cmp(a_score);
                return if descending {
                    by_score.then(by_name.reverse())
                } else {
                    by_score.then(by_name)
                };
            }
            SearchSort::Name => std::cmp::Ordering::Equal,
            SearchSort::Kind => a.hit.kind.as_str().cmp(b.hit.kind.as_str()),
            SearchSort::Owner => a.hit.owner.cmp(&b.hit.owner),
            SearchSort::Status => a.hit.status.as_str().cmp(b.hit.status.as_str()),
            SearchSort::Updated => a.hit.updated_at.cmp(&b.hit.updated_at),
            SearchSort::Created => a.hit.created_at.cmp(&b.hit.created_at),
        };
        let ordering = primary.then(by_name);
        if descending {
            ordering.reverse()
        } else {
            ordering
        }
    });

    let total = results.len() as u64;
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(results.len());
    let end = start.saturating_add(limit as usize).min(results.len());
    let items = results[start..end]
        .iter()
        .map(|(entry, score, field)| SearchHit {
            score: *score,
            matched: *field,
            ..entry.hit.clone()
        })
        .collect();
    let next_offset = (end < results.len()).then_some(end as u64);
    let took_ms = (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0;
    Ok(Json(SearchResults {
        items,
        total,
        next_offset,
        facets,
        took_ms,
    }))
}

/// The filters of a search, validated.
struct Filters {
    kind: Option<Kind>,
    owner: Option<String>,
    tag: Option<String>,
    status: Option<Status>,
    provider: Option<String>,
}

impl Filters {
    fn new(params: &SearchParams) -> Result<Self, ApiError> {
        let kind = match params.kind.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                text.parse::<Kind>()
                    .ok()
                    .or_else(|| Kind::from_plural(text))
                    .ok_or_else(|| {
                        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                        ApiError::invalid_query(format!(
                            "unknown kind `{}`; use one of: {}",
                            text.escape_debug(),
                            known.join(", ")
                        ))
                    })?,
            ),
        };
        let clean = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        Ok(Filters {
            kind,
            owner: clean(&params.owner),
            tag: clean(&params.tag),
            status: params.status,
            provider: clean(&params.provider),
        })
    }

    /// Whether `entry` passes every filter except the one of `skip`.
    fn accept(&self, entry: &Entry, skip: Option<Facet>) -> bool {
        let hit = &entry.hit;
        (skip == Some(Facet::Kind) || self.kind.is_none_or(|k| hit.kind == k))
            && (skip == Some(Facet::Owner) || self.owner.as_ref().is_none_or(|o| &hit.owner == o))
            && (skip == Some(Facet::Tag) || self.tag.as_ref().is_none_or(|t| hit.tags.contains(t)))
            && (skip == Some(Facet::Status) || self.status.is_none_or(|s| hit.status == s))
            && (skip == Some(Facet::Provider)
                || self
                    .provider
                    .as_ref()
                    .is_none_or(|p| hit.providers.contains(p)))
    }

    fn selected(&self, facet: Facet) -> Option<&str> {
        match facet {
            Facet::Kind => self.kind.map(Kind::as_str),
            Facet::Owner => self.owner.as_deref(),
            Facet::Tag => self.tag.as_deref(),
            Facet::Status => self.status.map(Status::as_str),
            Facet::Provider => self.provider.as_deref(),
        }
    }
}

fn facet_counts(
    matches: &[(&Entry, u32, Option<MatchField>)],
    filters: &Filters,
    facet: Facet,
) -> Vec<FacetValue> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for (entry, _, _) in matches {
        if filters.accept(entry, Some(facet)) {
            for value in entry.values(facet) {
                *counts.entry(value).or_default() += 1;
            }
        }
    }
    let mut values: Vec<(&str, u64)> = counts.into_iter().collect();
    // Most frequent first; the BTreeMap already ordered ties by value.
    values.sort_by_key(|v| std::cmp::Reverse(v.1));
    let selected = filters.selected(facet);
    let mut shown: Vec<FacetValue> = Vec::new();
    for (position, (value, count)) in values.iter().enumerate() {
        if position < FACET_VALUES || Some(*value) == selected {
            shown.push(FacetValue {
                value: value.to_string(),
                count: *count,
            });
        }
    }
    // A selected value that nothing matches any more is still shown, so it can be
    // cleared.
    if let Some(selected) = selected {
        if !shown.iter().any(|v| v.value == selected) {
            shown.push(FacetValue {
                value: selected.to_string(),
                count: 0,
            });
        }
    }
    shown
}

/// Resources of one kind.
#[derive(Debug, Serialize, ToSchema)]
pub struct KindCount {
    kind: Kind,
    /// Default variants of this kind.
    total: u64,
    ready: u64,
    pending: u64,
    running: u64,
    failed: u64,
}

/// A provider as the home page lists it; its health is a separate request
/// (`GET /api/v1/providers/{name}/health`) because a check may be slow.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderSummary {
    name: String,
    #[serde(rename = "type")]
    provider_type: String,
    owner: String,
    description: String,
}

/// What the catalog's home page shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogSummary {
    /// Every kind, in the model's order, with counts by status.
    counts: Vec<KindCount>,
    /// The most recently changed resources (default variants), newest first.
    recent: Vec<SearchHit>,
    /// The most recent jobs, newest first.
    recent_jobs: Vec<Job>,
    /// The most recent failed jobs, newest first.
    failed_jobs: Vec<Job>,
    /// Failed jobs in all.
    failed_jobs_total: u64,
    providers: Vec<ProviderSummary>,
}

problem_responses!(SummaryErrors:);

/// Summary for the catalog's home page
///
/// Counts per kind and status, recently changed resources, recent and failed jobs, and
/// the providers, in one request.
#[utoipa::path(
    get,
    path = "/api/v1/summary",
    tag = "resources",
    responses((status = 200, description = "The catalogue at a glance", body = CatalogSummary), SummaryErrors)
)]
async fn summary(State(state): State<AppState>) -> Result<Json<CatalogSummary>, ApiError> {
    const RECENT: usize = 10;
    let snapshot = state.search.snapshot(state.store.as_ref()).await?;
    let counts = Kind::ALL
        .iter()
        .map(|kind| {
            let of_kind = || snapshot.entries.iter().filter(|e| e.hit.kind == *kind);
            let with = |status: Status| of_kind().filter(|e| e.hit.status == status).count();
            KindCount {
                kind: *kind,
                total: of_kind().count() as u64,
                ready: with(Status::Ready) as u64,
                pending: with(Status::Pending) as u64,
                running: with(Status::Running) as u64,
                failed: with(Status::Failed) as u64,
            }
        })
        .collect();
    let mut recent: Vec<&Entry> = snapshot.entries.iter().collect();
    recent.sort_by(|a, b| {
        b.hit
            .updated_at
            .cmp(&a.hit.updated_at)
            .then_with(|| a.hit.name.cmp(&b.hit.name))
    });
    let recent = recent
        .into_iter()
        .take(RECENT)
        .map(|e| e.hit.clone())
        .collect();
    let providers = snapshot
        .entries
        .iter()
        .filter(|e| e.hit.kind == Kind::Provider)
        .map(|e| ProviderSummary {
            name: e.hit.name.clone(),
            provider_type: e.hit.value_type.clone().unwrap_or_default(),
            owner: e.hit.owner.clone(),
            description: e.hit.description.clone(),
        })
        .collect();
    let recent_jobs = state
        .store
        .list_jobs(&JobQuery {
            state: None,
            resource: None,
            limit: RECENT as u32,
            offset: 0,
        })
        .await?;
    let failed = state
        .store
        .list_jobs(&JobQuery {
            state: Some(JobState::Failed),
            resource: None,
            limit: RECENT as u32,
            offset: 0,
        })
        .await?;
    Ok(Json(CatalogSummary {
        counts,
        recent,
        recent_jobs: recent_jobs.items,
        failed_jobs_total: failed.total,
        failed_jobs: failed.items,
        providers,
    }))
}
