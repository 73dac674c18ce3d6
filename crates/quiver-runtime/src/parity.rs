//! The online/offline parity check of a materialized feature: the offline store's latest
//! value per entity (the same push-down query a full materialization runs) compared with
//! what the online store serves for every one of those entities.

use chrono::Utc;
use futures::StreamExt;
use quiver_core::{ResourceRef, Status};
use quiver_provider_sdk::{OnlineRead, OnlineRow, OnlineValue};
use serde::Serialize;
use utoipa::ToSchema;

use crate::convert::{online_rows, value_json};
use crate::{Runtime, RuntimeError};

/// Entities read from the online store per multi-get.
const CHUNK: usize = 1000;
/// Mismatches listed in a report (all are counted).
const MAX_LISTED: usize = 100;

/// What a parity check found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParityReport {
    /// `name:variant` of the feature checked.
    pub feature: String,
    /// Entities with a latest value offline.
    pub entities_checked: u64,
    /// Served online with the offline value and event time.
    pub matching: u64,
    /// Not in the online store.
    pub missing_online: u64,
    /// Stored online but older than the feature's TTL (`max_age`): served as expired,
    /// which is correct, so not a mismatch.
    pub expired_online: u64,
    /// Served online with another value or event time.
    pub differing: u64,
    /// Whether every entity matches or is legitimately expired.
    pub in_parity: bool,
    /// The first mismatches (at most 100).
    pub mismatches: Vec<ParityMismatch>,
}

/// One entity whose online value differs from the offline latest value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParityMismatch {
    pub entity: String,
    /// `missing` or `differing`.
    pub problem: String,
    #[schema(value_type = Object)]
    pub offline_value: serde_json::Value,
    pub offline_event_time: chrono::DateTime<Utc>,
    #[schema(value_type = Object)]
    pub online_value: serde_json::Value,
    pub online_event_time: Option<chrono::DateTime<Utc>>,
}

/// Equal as stored values: floats by bits, so NaN equals NaN and -0.0 differs from 0.0.
fn same(a: &OnlineValue, b: &OnlineValue) -> bool {
    match (a, b) {
        (OnlineValue::Float(x), OnlineValue::Float(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

impl Runtime {
    /// Compare a materialized feature's online values with the offline latest values of
    /// every entity. Reads the whole offline table (streamed) and the online store in
    /// chunks of 1000 entities.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`] for an unknown feature; [`RuntimeError::InvalidRequest`]
    /// for a feature without an online provider; [`RuntimeError::NotReady`] when it is
    /// not materialized yet; [`RuntimeError::Provider`] when a store fails.
    pub async fn parity(&self, reference: &ResourceRef) -> Result<ParityReport, RuntimeError> {
        let (record, feature) = self.resolver().feature(reference).await?;
        let name = format!("{}:{}", feature.name, feature.variant);
        let Some(online_provider) = feature.online_provider.clone() else {
            return Err(RuntimeError::InvalidRequest(format!(
                "feature `{name}` has no online provider: there is nothing to compare"
            )));
        };
        if record.status != Status::Ready {
            return Err(RuntimeError::NotReady(format!(
                "feature `{name}` is not materialized (status {}); wait for its job first",
                record.status
            )));
        }
        let (query, table, source, _) = self.resolver().materialization(&feature).await?;
        let offline = self.providers().offline(&source.provider).await?;
        let online = self.providers().online(&online_provider).await?;
        let started = Utc::now();
        let mut batches = offline
            .latest_values(&query)
            .await
            .map_err(RuntimeError::provider(&source.provider))?;
        let mut report = ParityReport {
            feature: name,
            entities_checked: 0,
            matching: 0,
            missing_online: 0,
            expired_online: 0,
            differing: 0,
            in_parity: false,
            mismatches: Vec::new(),
        };
        let mut pending: Vec<OnlineRow> = Vec::new();
        loop {
            let finished = match batches.next().await {
                Some(batch) => {
                    let batch = batch.map_err(RuntimeError::provider(&source.provider))?;
                    pending
                        .extend(online_rows(&batch, started).map_err(RuntimeError::Unresolvable)?);
                    false
                }
                None => true,
            };
            while pending.len() >= CHUNK || (finished && !pending.is_empty()) {
                let rest = pending.split_off(pending.len().min(CHUNK));
                let chunk = std::mem::replace(&mut pending, rest);
                let entities: Vec<String> = chunk.iter().map(|r| r.entity.clone()).collect();
                let reads = online
                    .multi_get(std::slice::from_ref(&table.table), &entities)
                    .await
                    .map_err(RuntimeError::provider(&online_provider))?;
                for (row, read) in chunk.iter().zip(reads) {
                    report.entities_checked += 1;
                    let (problem, online_value, online_time) = match &read[0] {
                        OnlineRead::Present { value, event_time }
                            if same(value, &row.value) && *event_time == row.event_time =>
                        {
                            report.matching += 1;
                            continue;
                        }
                        OnlineRead::Expired { .. } => {
                            report.expired_online += 1;
                            continue;
                        }
                        OnlineRead::Present { value, event_time } => {
                            report.differing += 1;
                            ("differing", value_json(value), Some(*event_time))
                        }
                        OnlineRead::Missing => {
                            report.missing_online += 1;
                            ("missing", serde_json::Value::Null, None)
                        }
                    };
                    if report.mismatches.len() < MAX_LISTED {
                        report.mismatches.push(ParityMismatch {
                            entity: row.entity.clone(),
                            problem: problem.into(),
                            offline_value: value_json(&row.value),
                            offline_event_time: row.event_time,
                            online_value,
                            online_event_time: online_time,
                        });
                    }
                }
            }
            if finished {
                break;
            }
        }
        report.in_parity = report.missing_online == 0 && report.differing == 0;
        Ok(report)
    }
}
