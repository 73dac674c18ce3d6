//! Online serving: feature references resolved to their online tables, grouped by
//! online provider, and read with ONE `multi_get` per provider per request.
//!
//! A request names one entity and its ids, and features keyed by that entity: each
//! result row is one entity's feature vector, which is what a model scores. Limits keep
//! a request's cost bounded: at most [`MAX_ENTITIES`] ids and [`MAX_FEATURES`] features
//! (larger requests are refused with `limit_exceeded`; split them).
//!
//! Feature references are resolved once per catalog change, not per request: what
//! serving needs of a feature (name, entity, status, online table and provider) and the
//! online store of each provider are kept in a [`FeatureCache`] that is dropped when the
//! store's [`catalog_version`](quiver_metadata::MetadataStore::catalog_version) moves.
//! The version is read at most every [`CATALOG_CHECK`] per replica, so a request on a
//! warm cache touches the metadata store at most once per interval (and takes the cache
//! lock once), and a change made through any replica (a new variant, a failed
//! materialization, a provider's new address) is seen within it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use quiver_core::{ResourceRef, Status};
use quiver_provider_sdk::{OnlineRead, OnlineStore, OnlineTableRef, OnlineValue};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::convert::value_json;
use crate::resolve::online_table;
use crate::{Runtime, RuntimeError};

/// How often a replica asks the store whether the catalog changed.
pub const CATALOG_CHECK: Duration = Duration::from_millis(500);

/// Resolved features by reference text as requested (`name` or `name:variant`) and
/// online stores by provider name, valid for one catalog version.
#[derive(Default)]
pub(crate) struct FeatureCache {
    inner: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    version: Option<(i64, i64)>,
    checked: Option<Instant>,
    features: HashMap<String, Arc<ServingFeature>>,
    stores: HashMap<String, Arc<dyn OnlineStore>>,
    hits: u64,
    misses: u64,
}

/// What serving needs of one feature: shared by every request until the catalog moves.
struct ServingFeature {
    /// `name:variant`.
    name: String,
    entity: String,
    online_provider: Option<String>,
    status: Status,
    error: Option<String>,
    table: OnlineTableRef,
}

impl FeatureCache {
    fn lock(&self) -> MutexGuard<'_, CacheState> {
        // The state is a cache: a panic while it was held leaves nothing to repair.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
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
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_event_time"
    )]
    pub event_time: Option<DateTime<Utc>>,
}

/// The RFC 3339 text chrono's serde writes (`2026-01-01T00:00:07Z`, a fraction of 3, 6 or
/// 9 digits only when non-zero), written without the `fmt` machinery: an online answer
/// carries one per value, and chrono's formatter was about 5% of the server's time for
/// 1 entity × 50 features (BENCHMARKS.md). Years outside 0..=9999 and leap seconds go to
/// chrono.
fn serialize_event_time<S: serde::Serializer>(
    time: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let Some(time) = time else {
        return serializer.serialize_none();
    };
    let mut text = [0_u8; 30];
    match rfc3339(time, &mut text) {
        Some(len) => serializer.serialize_str(std::str::from_utf8(&text[..len]).unwrap_or("")),
        None => time.serialize(serializer),
    }
}

/// `time` as `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]Z` into `out`; its length, or
/// `None` when the year has no four-digit form or the time is a leap second.
fn rfc3339(time: &DateTime<Utc>, out: &mut [u8; 30]) -> Option<usize> {
    use chrono::{Datelike, Timelike};
    // Once: every accessor of a `DateTime` applies the offset again.
    let time = time.naive_utc();
    let year = u32::try_from(time.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = time.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    fn digits(out: &mut [u8], mut value: u32) {
        for slot in out.iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    digits(&mut out[0..4], year);
    out[4] = b'-';
    digits(&mut out[5..7], time.month());
    out[7] = b'-';
    digits(&mut out[8..10], time.day());
    out[10] = b'T';
    digits(&mut out[11..13], time.hour());
    out[13] = b':';
    digits(&mut out[14..16], time.minute());
    out[16] = b':';
    digits(&mut out[17..19], time.second());
    let mut len = 19;
    let (fraction, width) = if nanos == 0 {
        (0, 0)
    } else if nanos.is_multiple_of(1_000_000) {
        (nanos / 1_000_000, 3)
    } else if nanos.is_multiple_of(1_000) {
        (nanos / 1_000, 6)
    } else {
        (nanos, 9)
    };
    if width > 0 {
        out[len] = b'.';
        digits(&mut out[len + 1..len + 1 + width], fraction);
        len += 1 + width;
    }
    out[len] = b'Z';
    Some(len + 1)
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
        let state = self.features.lock();
        FeatureCacheStats {
            hits: state.hits,
            misses: state.misses,
        }
    }

    /// Drop the cache when the catalog moved; asks the store at most every
    /// [`CATALOG_CHECK`].
    async fn check_catalog(&self) -> Result<(), RuntimeError> {
        let due = {
            let state = self.features.lock();
            state.checked.is_none_or(|t| t.elapsed() >= CATALOG_CHECK)
        };
        if due {
            let version = self.store().catalog_version().await?;
            let mut state = self.features.lock();
            if state.version != Some(version) {
                state.features.clear();
                state.stores.clear();
                state.version = Some(version);
            }
            state.checked = Some(Instant::now());
        }
        Ok(())
    }

    /// The features `texts` name, in order: from the cache under one lock, the misses
    /// resolved from the store.
    async fn serving_features(
        &self,
        texts: &[String],
    ) -> Result<Vec<Arc<ServingFeature>>, RuntimeError> {
        let mut found: Vec<Option<Arc<ServingFeature>>> = {
            let mut state = self.features.lock();
            let found: Vec<_> = texts
                .iter()
                .map(|text| state.features.get(text.trim()).cloned())
                .collect();
            state.hits += found.iter().filter(|f| f.is_some()).count() as u64;
            found
        };
        for (slot, text) in found.iter_mut().zip(texts) {
            if slot.is_none() {
                *slot = Some(self.resolve_serving_feature(text.trim()).await?);
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    async fn resolve_serving_feature(
        &self,
        text: &str,
    ) -> Result<Arc<ServingFeature>, RuntimeError> {
        let reference = ResourceRef::parse(text).map_err(|e| {
            RuntimeError::InvalidRequest(format!(
                "feature reference `{}`: {e} (write `name` or `name:variant`)",
                text.escape_debug()
            ))
        })?;
        let (record, feature) = self
            .resolver()
            .feature(&reference)
            .await
            .map_err(|e| match e {
                RuntimeError::NotFound(_) => {
                    RuntimeError::NotFound(format!("unknown feature `{reference}`"))
                }
                other => other,
            })?;
        let resolved = Arc::new(ServingFeature {
            name: format!("{}:{}", feature.name, feature.variant),
            table: online_table(&feature).table,
            entity: feature.entity,
            online_provider: feature.online_provider,
            status: record.status,
            error: record.error,
        });
        let mut state = self.features.lock();
        state.misses += 1;
        state.features.insert(text.to_string(), resolved.clone());
        Ok(resolved)
    }

    /// The online store of `provider`, built once per catalog version.
    async fn serving_store(&self, provider: &str) -> Result<Arc<dyn OnlineStore>, RuntimeError> {
        if let Some(store) = self.features.lock().stores.get(provider) {
            return Ok(store.clone());
        }
        let store = self.providers().online(provider).await?;
        self.features
            .lock()
            .stores
            .insert(provider.to_string(), store.clone());
        Ok(store)
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
        Ok(self.online_answer(request).await?.into_response())
    }

    /// [`Runtime::online_features`], as the reads: see [`OnlineAnswer`].
    ///
    /// # Errors
    /// As [`Runtime::online_features`].
    pub async fn online_answer(
        &self,
        request: &OnlineFeaturesRequest,
    ) -> Result<OnlineAnswer, RuntimeError> {
        let (entity, ids) = validate(request)?;
        self.check_catalog().await?;
        let features = self.serving_features(&request.features).await?;
        let mut resolved = Vec::with_capacity(features.len());
        // provider → (positions in the request, their tables)
        let mut by_provider: BTreeMap<&str, (Vec<usize>, Vec<OnlineTableRef>)> = BTreeMap::new();
        for (position, feature) in features.iter().enumerate() {
            let name = &feature.name;
            if feature.entity != entity {
                return Err(RuntimeError::InvalidRequest(format!(
                    "feature `{name}` is keyed by entity `{}`, not `{entity}`; request features of one entity at a time",
                    feature.entity
                )));
            }
            let Some(provider) = feature.online_provider.as_deref() else {
                return Err(RuntimeError::InvalidRequest(format!(
                    "feature `{name}` has no online provider; set `online_provider` in its definition to serve it online"
                )));
            };
            match feature.status {
                Status::Ready => {}
                Status::Failed => {
                    return Err(RuntimeError::NotReady(format!(
                        "feature `{name}` failed to materialize: {}",
                        feature.error.as_deref().unwrap_or("no error recorded")
                    )))
                }
                status => {
                    return Err(RuntimeError::NotReady(format!(
                        "feature `{name}` is not materialized yet (status {status}); `quiver jobs wait` waits for it"
                    )))
                }
            }
            let (positions, tables) = by_provider.entry(provider).or_default();
            positions.push(position);
            tables.push(feature.table.clone());
            resolved.push(name.clone());
        }

        let reads = futures::future::try_join_all(by_provider.into_iter().map(
            |(provider, (positions, refs))| async move {
                let store = self.serving_store(provider).await?;
                let started = std::time::Instant::now();
                let rows = store.multi_get(&refs, ids).await;
                self.metrics()
                    .observe_online_read(provider, rows.is_ok(), started.elapsed());
                let rows = rows.map_err(RuntimeError::provider(provider))?;
                if rows.len() != ids.len() || rows.iter().any(|r| r.len() != refs.len()) {
                    return Err(RuntimeError::Provider {
                        provider: provider.to_string(),
                        source: quiver_provider_sdk::ProviderError::Other(
                            "multi_get answered with the wrong number of values".into(),
                        ),
                    });
                }
                Ok::<_, RuntimeError>((positions, rows))
            },
        ))
        .await?;

        let width = resolved.len();
        let mut reads = reads.into_iter();
        let values = match (reads.next(), reads.len()) {
            // One provider serving every feature, in request order (the usual case): its
            // rows are the answer as they are.
            (Some((positions, rows)), 0) if positions.iter().copied().eq(0..width) => rows,
            (first, _) => {
                let mut values = vec![vec![OnlineRead::Missing; width]; ids.len()];
                for (positions, rows) in first.into_iter().chain(reads) {
                    for (row, provider_row) in values.iter_mut().zip(rows) {
                        for (position, read) in positions.iter().zip(provider_row) {
                            row[*position] = read;
                        }
                    }
                }
                values
            }
        };
        Ok(OnlineAnswer {
            entity: entity.to_string(),
            features: resolved,
            ids: ids.to_vec(),
            values,
        })
    }
}

/// An online answer as read from the stores: what [`OnlineFeaturesResponse`] holds,
/// kept as the stores' reads so the HTTP path can write the JSON document straight from
/// them ([`OnlineAnswer::to_json`]) instead of building a `serde_json::Value` per value
/// first. Both forms are the same document, byte for byte (a test checks it).
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineAnswer {
    entity: String,
    features: Vec<String>,
    ids: Vec<String>,
    /// One row per id, one read per feature.
    values: Vec<Vec<OnlineRead>>,
}

impl OnlineAnswer {
    /// The answer as the API's response type.
    pub fn into_response(self) -> OnlineFeaturesResponse {
        let results = self
            .ids
            .into_iter()
            .zip(self.values)
            .map(|(entity, row)| EntityFeatures {
                entity,
                values: row.into_iter().map(FeatureValue::from_read).collect(),
            })
            .collect();
        OnlineFeaturesResponse {
            entity: self.entity,
            features: self.features,
            results,
        }
    }

    /// The JSON document of [`OnlineAnswer::into_response`], written directly: for 100
    /// entities × 50 features, building and encoding 5 000 `FeatureValue`s was about a
    /// sixth of a replica's time (BENCHMARKS.md). Strings and numbers still go through
    /// `serde_json`, so escaping and float formatting are exactly its own.
    pub fn to_json(&self) -> Vec<u8> {
        let width = self.features.len();
        let mut out = Vec::with_capacity(64 + self.ids.len() * (24 + width * 80));
        out.extend_from_slice(b"{\"entity\":");
        put(&mut out, &self.entity);
        out.extend_from_slice(b",\"features\":[");
        for (i, feature) in self.features.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            put(&mut out, feature);
        }
        out.extend_from_slice(b"],\"results\":[");
        for (e, id) in self.ids.iter().enumerate() {
            if e > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"entity\":");
            put(&mut out, id);
            out.extend_from_slice(b",\"values\":[");
            let row = self.values.get(e).map_or(&[][..], Vec::as_slice);
            for (f, read) in row.iter().enumerate() {
                if f > 0 {
                    out.push(b',');
                }
                write_read(&mut out, read);
            }
            out.extend_from_slice(b"]}");
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// Append `value` as `serde_json` writes it. Writing a string, number or time into a
/// `Vec` cannot fail.
fn put<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let written = serde_json::to_writer(&mut *out, value);
    debug_assert!(written.is_ok(), "serde_json into a Vec: {written:?}");
}

/// One [`FeatureValue`] object, fields in its declared order.
fn write_read(out: &mut Vec<u8>, read: &OnlineRead) {
    let (status, event_time): (&[u8], _) = match read {
        OnlineRead::Present { value, event_time } => {
            out.extend_from_slice(b"{\"value\":");
            write_value(out, value);
            (b",\"status\":\"present\"", Some(event_time))
        }
        OnlineRead::Missing => (b"{\"value\":null,\"status\":\"missing\"", None),
        OnlineRead::Expired { event_time } => {
            (b"{\"value\":null,\"status\":\"expired\"", Some(event_time))
        }
    };
    out.extend_from_slice(status);
    if let Some(time) = event_time {
        out.extend_from_slice(b",\"event_time\":");
        let mut text = [0_u8; 30];
        match rfc3339(time, &mut text) {
            // Digits, `-`, `T`, `:`, `.` and `Z`: nothing to escape.
            Some(len) => {
                out.push(b'"');
                out.extend_from_slice(&text[..len]);
                out.push(b'"');
            }
            None => put(out, time),
        }
    }
    out.push(b'}');
}

/// A value as [`value_json`] makes it, then as `serde_json` writes that.
fn write_value(out: &mut Vec<u8>, value: &OnlineValue) {
    match value {
        OnlineValue::Null => out.extend_from_slice(b"null"),
        OnlineValue::Bool(true) => out.extend_from_slice(b"true"),
        OnlineValue::Bool(false) => out.extend_from_slice(b"false"),
        OnlineValue::Int(i) => put(out, i),
        // `serde_json` writes a non-finite float as `null`, as `value_json` maps it.
        OnlineValue::Float(f) => put(out, f),
        OnlineValue::String(s) => put(out, s),
        OnlineValue::Timestamp(_) => put(out, &value_json(value)),
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
    fn event_times_are_written_as_chrono_writes_them() {
        let base = DateTime::parse_from_rfc3339("2026-01-01T00:00:07Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut times: Vec<DateTime<Utc>> = [0_i64, 1, 999, 1_000, 1_000_000, 123_456_789]
            .iter()
            .map(|n| base + chrono::Duration::nanoseconds(*n))
            .collect();
        times.push(DateTime::<Utc>::MIN_UTC);
        times.push(DateTime::<Utc>::MAX_UTC);
        times.push(DateTime::from_timestamp(0, 0).unwrap());
        times.push(DateTime::from_timestamp(-62_135_596_800, 0).unwrap()); // 0001-01-01
        times.push(DateTime::from_timestamp(253_402_300_799, 999_999_999).unwrap()); // 9999
                                                                                     // A spread of instants over 1900..2100 at microsecond precision.
        let mut seed = 7_u64;
        for _ in 0..10_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let micros = (seed >> 11) as i64 % 6_311_390_400_000_000 - 2_208_988_800_000_000;
            times.push(DateTime::from_timestamp_micros(micros).unwrap());
        }
        for time in times {
            let ours = serde_json::to_string(&FeatureValue {
                value: serde_json::Value::Null,
                status: ValueStatus::Present,
                event_time: Some(time),
            })
            .unwrap();
            let chrono = format!(
                r#"{{"value":null,"status":"present","event_time":{}}}"#,
                serde_json::to_string(&time).unwrap()
            );
            assert_eq!(ours, chrono, "{time:?}");
        }
    }

    /// The directly written document is `serde_json`'s of the response, byte for byte:
    /// every value kind and status, floats without a JSON form, strings needing escapes,
    /// times beyond the fast path, and a spread of ordinary values.
    #[test]
    fn the_direct_json_is_the_responses_json() {
        let time = |us: i64| DateTime::from_timestamp_micros(us).unwrap();
        let mut reads = vec![
            OnlineRead::Missing,
            OnlineRead::Expired {
                event_time: time(1_700_000_000_123_456),
            },
            OnlineRead::Expired {
                event_time: DateTime::<Utc>::MAX_UTC,
            },
        ];
        let edge_values = [
            OnlineValue::Null,
            OnlineValue::Bool(true),
            OnlineValue::Bool(false),
            OnlineValue::Int(i64::MIN),
            OnlineValue::Int(i64::MAX),
            OnlineValue::Int(0),
            OnlineValue::Float(f64::NAN),
            OnlineValue::Float(f64::INFINITY),
            OnlineValue::Float(f64::NEG_INFINITY),
            OnlineValue::Float(-0.0),
            OnlineValue::Float(5e-324),
            OnlineValue::Float(1e300),
            OnlineValue::Float(0.1 + 0.2),
            OnlineValue::Float(12.0),
            OnlineValue::String(String::new()),
            OnlineValue::String("quote \" backslash \\ newline \n tab \t nul \0 \u{1f}".into()),
            OnlineValue::String("</script><img onerror=x> naïve 🦀 \u{2028}".into()),
            OnlineValue::Timestamp(0),
            OnlineValue::Timestamp(1_700_000_000_000_001),
            OnlineValue::Timestamp(i64::MIN),
            OnlineValue::Timestamp(i64::MAX),
        ];
        for (i, value) in edge_values.into_iter().enumerate() {
            reads.push(OnlineRead::Present {
                value,
                event_time: time(i as i64 * 1_000_000_007),
            });
        }
        let mut seed = 11_u64;
        let mut next = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            seed >> 11
        };
        for _ in 0..2_000 {
            let r = next();
            let value = match r % 4 {
                0 => OnlineValue::Float(f64::from_bits(next())),
                1 => OnlineValue::Int(next() as i64 - (1 << 52)),
                2 => OnlineValue::Float((next() % 1_000_000) as f64 / 100.0),
                _ => OnlineValue::String(format!("s{}", next())),
            };
            reads.push(OnlineRead::Present {
                value,
                event_time: time((next() % 4_000_000_000_000_000) as i64),
            });
        }
        let width = 7;
        while !reads.len().is_multiple_of(width) {
            reads.push(OnlineRead::Missing);
        }
        let answer = OnlineAnswer {
            entity: "user \"x\"".into(),
            features: (0..width).map(|f| format!("f{f}:v\u{e9}")).collect(),
            ids: (0..reads.len() / width)
                .map(|e| format!("id-{e}\\"))
                .collect(),
            values: reads.chunks(width).map(<[OnlineRead]>::to_vec).collect(),
        };
        let direct = answer.to_json();
        let via_serde = serde_json::to_vec(&answer.clone().into_response()).unwrap();
        assert_eq!(
            String::from_utf8(direct).unwrap(),
            String::from_utf8(via_serde).unwrap()
        );
        let empty = OnlineAnswer {
            entity: "user".into(),
            features: vec!["f:v".into()],
            ids: Vec::new(),
            values: Vec::new(),
        };
        assert_eq!(
            empty.to_json(),
            serde_json::to_vec(&empty.clone().into_response()).unwrap()
        );
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
