//! The online-store contract: per-feature tables of the latest value per entity, written
//! with event-time monotonicity and read many entities × many features at once.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Provider, ProviderError};

/// A feature value as stored online. Serialized untagged for JSON answers; stores use
/// their own typed encoding.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OnlineValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
}

/// One feature's table: `(feature, variant)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OnlineTableRef {
    pub feature: String,
    pub variant: String,
}

/// How to create a feature table.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineTable {
    pub table: OnlineTableRef,
    /// Values older than this (by event time) read as expired.
    pub ttl: Option<Duration>,
}

/// One value to write.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineRow {
    pub entity: String,
    pub value: OnlineValue,
    pub event_time: DateTime<Utc>,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WriteReport {
    pub written: u64,
    /// Rows not written because a newer (or equal) event time was already stored.
    pub skipped_older: u64,
}

/// One value read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OnlineRead {
    Present {
        value: OnlineValue,
        event_time: DateTime<Utc>,
    },
    Missing,
    /// Stored, but older than the table's TTL.
    Expired {
        event_time: DateTime<Utc>,
    },
}

impl OnlineRead {
    /// A stored value as served at `now_us` (Unix µs): `Expired` when its event time is
    /// more than `ttl_us` before now, `Present` otherwise. The one TTL rule every online
    /// store applies; `value` is only decoded for a value that is served.
    ///
    /// # Errors
    /// What decoding the value returns.
    pub fn stored<E>(
        event_time: DateTime<Utc>,
        ttl_us: Option<i64>,
        now_us: i64,
        value: impl FnOnce() -> Result<OnlineValue, E>,
    ) -> Result<OnlineRead, E> {
        let expired =
            ttl_us.is_some_and(|ttl| event_time.timestamp_micros() < now_us.saturating_sub(ttl));
        Ok(if expired {
            OnlineRead::Expired { event_time }
        } else {
            OnlineRead::Present {
                value: value()?,
                event_time,
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OnlineCapabilities {
    pub ttl: bool,
    pub event_time_monotonic_writes: bool,
    /// Reads many entities × features in one round trip.
    pub multi_get: bool,
}

/// A low-latency key-value system serving the latest feature values.
#[async_trait]
pub trait OnlineStore: Provider {
    fn capabilities(&self) -> OnlineCapabilities;

    /// Create (or keep) a feature table. Re-creating an existing table keeps its rows
    /// and updates its TTL.
    async fn create_table(&self, table: &OnlineTable) -> Result<(), ProviderError>;

    /// Delete a table and its rows; deleting a missing table is not an error.
    async fn delete_table(&self, table: &OnlineTableRef) -> Result<(), ProviderError>;

    /// Write rows.
    ///
    /// # Contract
    /// A row replaces the stored value only when its event time is newer, decided
    /// atomically per key (no read-then-write race between writers).
    ///
    /// # Errors
    /// [`ProviderError::NotFound`] when the table does not exist.
    async fn write(
        &self,
        table: &OnlineTableRef,
        rows: &[OnlineRow],
    ) -> Result<WriteReport, ProviderError>;

    /// Read `tables` for every entity: the result is indexed `[entity][table]`.
    ///
    /// # Errors
    /// [`ProviderError::NotFound`] when a table does not exist.
    async fn multi_get(
        &self,
        tables: &[OnlineTableRef],
        entities: &[String],
    ) -> Result<Vec<Vec<OnlineRead>>, ProviderError>;
}
