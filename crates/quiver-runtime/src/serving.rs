//! Online serving: feature references resolved to their online tables, grouped by
//! online provider, and read with ONE `multi_get` per provider per request.
//!
//! A request names one entity and its ids, and features keyed by that entity: each
//! result row is one entity's feature vector, which is what a model scores. Limits keep
//! a request's cost bounded: at most [`MAX_ENTITIES`] ids and [`MAX_FEATURES`] features
//! (larger requests are refused with `limit_exceeded`; split them).
//!
//! Feature references are resolved once per catalog change, not per request: resolved
//! features (definition and status) are kept in a [`FeatureCache`] that is dropped when
//! the store's [`catalog_version`](quiver_metadata::MetadataStore::catalog_version)
//! moves. The version is read at most every [`CATALOG_CHECK`] per replica, so a request
//! on a warm cache touches the metadata store at most once per interval, and a change
//! made through any replica (a new variant, a failed materialization) is seen within it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use quiver_core::FeatureDef;
use quiver_metadata::ResourceRecord;

use chrono::{DateTime, Utc};
use quiver_core::{ResourceRef, Status};
use quiver_provider_sdk::{OnlineRead, OnlineTableRef};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::convert::value_json;
use crate::resolve::online_table;
use crate::{Runtime, RuntimeError};

/// How often a replica asks the store whether the catalog changed.
pub const CATALOG_CHECK: Duration = Duration::from_millis(500);

/// Resolved features by reference text (`name` or `name:variant`), valid for one
/// catalog version.
#[derive(Default)]
pub(crate) struct FeatureCache {
    inner: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    version: Option<(i64, i64)>,
    checked: Option<Instant>,
    entries: HashMap<String, (ResourceRecord, FeatureDef)>,
    hits: u64,
    misses: u64,
}

/// Resolutions served from the cache and from the store, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeatureCacheStats {
    pub hits: u64,
    pub misses: u64,
}

/// Most entity ids in one online request.
pub const MAX_ENTITIES: usize = 1_000;
/// Most features in one online request.
pub const MAX_FEATURES: usize = 200;

/// Features for some entities.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnlineFeaturesRequest {
    /// Feature references: `name` (the default variant) or `name:variant`.
    #[schema(example = json!(["avg_amount_7d", "txn_count_7d:v1"]))]
    pub features: Vec<String>,
    /// One entity and its ids: `{"user": ["u1", "u2"]}`.
    #[schema(example = json!({"user": ["u1", "u2"]}))]
    pub entities: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OnlineFeaturesResponse {
    /// The entity the ids belong to.
    #[schema(example = "user")]
    pub entity: String,
    /// The features as resolved, `name:variant`, in request order.
    #[schema(example = json!(["avg_amount_7d:v1", "txn_count_7d:v1"]))]
    pub features: Vec<String>,
    /// One row per requested id, in request order.
    pub results: Vec<EntityFeatures>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EntityFeatures {
    #[schema(example = "u1")]
    pub entity: String,
    /// One value per feature, in the order of `features`.
    pub values: Vec<FeatureValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FeatureValue {
    /// The value (null unless `present`); timestamps as RFC 3339 text.
    #[schema(example = 12.5)]
    pub value: serde_json::Value,
    pub status: ValueStatus,
    /// Event time of the stored value (absent when `missing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValueStatus {
    /// A value within the feature's `max_age`.
    Present,
    /// No value for this entity.
    Missing,
    /// A value older than the feature's `max_age`.
    Expired,
}

impl FeatureValue {
    fn from_read(read: OnlineRead) -> FeatureValue {
        match read {
            OnlineRead::Present { value, event_time } => FeatureValue {
                value: value_json(&value),
                status: ValueStatus::Present,
                event_time: Some(event_time),
            },
            OnlineRead::Missing => FeatureValue {
                value: serde_json::Value::Null,
                status: ValueStatus::Missing,
                event_time: None,
            },
            OnlineRead::Expired { event_time } => FeatureValue {
                value: serde_json::Value::Null,
                status: ValueStatus::Expired,
                event_time: Some(event_time),
            },
        }
    }
}

/// Check the request's shape and limits; returns the entity name and its ids.
fn validate(request: &OnlineFeaturesRequest) -> Result<(&str, &[String]), RuntimeError> {
    if request.features.is_empty() {
        return Err(RuntimeError::InvalidRequest(
            "`features` is empty: name at least one feature (`name` or `name:variant`)".into(),
        ));
    }
    if request.features.len() > MAX_FEATURES {
        return Err(RuntimeError::LimitExceeded(format!(
            "{} features requested; at most {MAX_FEATURES} per request",
            request.features.len()
        )));
    }
    let mut entities = request.entities.iter();
    let (entity, ids) = match (entities.next(), entities.next()) {
        (Some(first), None) => first,
        _ => {
            return Err(RuntimeError::InvalidRequest(format!(
                "`entities` must name exactly one entity with its ids, e.g. {{\"user\": [\"u1\", \"u2\"]}}; got {}",
                request.entities.len()
            )))
        }
    };
    if ids.is_empty() {
        return Err(RuntimeError::InvalidRequest(format!(
            "the id list of entity `{entity}` is empty: send at least one id"
        )));
    }
    if ids.len() > MAX_ENTITIES {
        return Err(RuntimeError::LimitExceeded(format!(
            "{} ids of entity `{entity}` requested; at most {MAX_ENTITIES} per request (split the request)",
            ids.len()
        )));
    }
    Ok((entity, ids))
}

impl Runtime {
    /// How online serving's feature resolutions were answered so far.
    pub fn feature_cache_stats(&self) -> FeatureCacheStats {
        let state = self
            .features
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        FeatureCacheStats {
            hits: state.hits,
            misses: state.misses,
        }
    }

    /// The feature `reference` names, from the cache while the catalog is unchanged.
    async fn cached_feature(
        &self,
        reference: &ResourceRef,
    ) -> Result<(ResourceRecord, FeatureDef), RuntimeError> {
        let due = {
            let state = self
                .features
                .inner
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            state.checked.is_none_or(|t| t.elapsed() >= CATALOG_CHECK)
        };
        if due {
            let version = self.store().catalog_version().await?;
            let mut state = self
                .features
                .inner
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if state.version != Some(version) {
                state.entries.clear();
                state.version = Some(version);
            }
            state.checked = Some(Instant::now());
        }
        let key = reference.to_string();
        {
            let mut state = self
                .features
                .inner
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(hit) = state.entries.get(&key).cloned() {
                state.hits += 1;
                return Ok(hit);
            }
        }
        let resolved = self.resolver().feature(reference).await?;
        let mut state = self
            .features
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        state.misses += 1;
        state.entries.insert(key, resolved.clone());
        Ok(resolved)
    }

    /// Serve `request`: values with a status per entity × feature.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidRequest`] for an empty feature or id list, a bad
    /// reference, a feature keyed by another entity or without an online provider;
    /// [`RuntimeError::LimitExceeded`] above the limits; [`RuntimeError::NotFound`] for an
    /// unknown feature; [`RuntimeError::NotReady`] for a feature not materialized yet.
    pub async fn online_features(
        &self,
        request: &OnlineFeaturesRequest,
    ) -> Result<OnlineFeaturesResponse, RuntimeError> {
        let (entity, ids) = validate(request)?;
        let mut resolved = Vec::with_capacity(request.features.len());
        // provider → (position in the request, table)
        let mut by_provider: BTreeMap<String, Vec<(usize, OnlineTableRef)>> = BTreeMap::new();
        for (position, text) in request.features.iter().enumerate() {
            let reference = ResourceRef::parse(text.trim()).map_err(|e| {
                RuntimeError::InvalidRequest(format!(
                    "feature reference `{}`: {e} (write `name` or `name:variant`)",
                    text.escape_debug()
                ))
            })?;
            let (record, feature) = self.cached_feature(&reference).await.map_err(|e| match e {
                RuntimeError::NotFound(_) => {
                    RuntimeError::NotFound(format!("unknown feature `{reference}`"))
                }
                other => other,
            })?;
            let name = format!("{}:{}", feature.name, feature.variant);
            if feature.entity != entity {
                return Err(RuntimeError::InvalidRequest(format!(
                    "feature `{name}` is keyed by entity `{}`, not `{entity}`; request features of one entity at a time",
                    feature.entity
                )));
            }
            let Some(provider) = feature.online_provider.clone() else {
                return Err(RuntimeError::InvalidRequest(format!(
                    "feature `{name}` has no online provider; set `online_provider` in its definition to serve it online"
                )));
            };
            match record.status {
                Status::Ready => {}
                Status::Failed => {
                    return Err(RuntimeError::NotReady(format!(
                        "feature `{name}` failed to materialize: {}",
                        record.error.as_deref().unwrap_or("no error recorded")
                    )))
                }
                status => {
                    return Err(RuntimeError::NotReady(format!(
                        "feature `{name}` is not materialized yet (status {status}); `quiver jobs wait` waits for it"
                    )))
                }
            }
            by_provider
                .entry(provider)
                .or_default()
                .push((position, online_table(&feature).table));
            resolved.push(name);
        }

        let reads = futures::future::try_join_all(by_provider.into_iter().map(
            |(provider, tables)| async move {
                let store = self.providers().online(&provider).await?;
                let refs: Vec<OnlineTableRef> = tables.iter().map(|(_, t)| t.clone()).collect();
                let started = std::time::Instant::now();
                let rows = store.multi_get(&refs, ids).await;
                self.metrics()
                    .observe_online_read(&provider, rows.is_ok(), started.elapsed());
                let rows = rows.map_err(RuntimeError::provider(&provider))?;
                if rows.len() != ids.len() || rows.iter().any(|r| r.len() != refs.len()) {
                    return Err(RuntimeError::Provider {
                        provider: provider.clone(),
                        source: quiver_provider_sdk::ProviderError::Other(
                            "multi_get answered with the wrong number of values".into(),
                        ),
                    });
                }
                Ok::<_, RuntimeError>((tables, rows))
            },
        ))
        .await?;

        let mut results: Vec<EntityFeatures> = ids
            .iter()
            .map(|id| EntityFeatures {
                entity: id.clone(),
                values: vec![FeatureValue::from_read(OnlineRead::Missing); resolved.len()],
            })
            .collect();
        for (tables, rows) in reads {
            for (result, row) in results.iter_mut().zip(rows) {
                for ((position, _), read) in tables.iter().zip(row) {
                    result.values[*position] = FeatureValue::from_read(read);
                }
            }
        }
        Ok(OnlineFeaturesResponse {
            entity: entity.to_string(),
            features: resolved,
            results,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(features: usize, ids: usize) -> OnlineFeaturesRequest {
        OnlineFeaturesRequest {
            features: (0..features).map(|i| format!("f{i}")).collect(),
            entities: BTreeMap::from([(
                "user".to_string(),
                (0..ids).map(|i| format!("u{i}")).collect(),
            )]),
        }
    }

    #[test]
    fn requests_are_checked_against_shape_and_limits() {
        assert!(validate(&request(1, 1)).is_ok());
        assert!(validate(&request(MAX_FEATURES, MAX_ENTITIES)).is_ok());
        for (req, expected) in [
            (request(0, 1), "`features` is empty"),
            (request(1, 0), "id list of entity `user` is empty"),
            (request(MAX_FEATURES + 1, 1), "at most 200"),
            (request(1, MAX_ENTITIES + 1), "at most 1000"),
        ] {
            let err = validate(&req).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
        let mut two = request(1, 1);
        two.entities.insert("merchant".into(), vec!["m".into()]);
        let err = validate(&two).unwrap_err().to_string();
        assert!(err.contains("exactly one entity"), "{err}");
    }
}
