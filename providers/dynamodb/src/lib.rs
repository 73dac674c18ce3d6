//! Quiver's DynamoDB online store: the latest value of every feature per entity, in
//! DynamoDB (or anything speaking its API, such as moto), for serving at scale.
//!
//! # Layout
//! - **One DynamoDB table per feature table**, named `{table_prefix}{feature}.{variant}.{hash}`
//!   (see [`naming`]): readable, within DynamoDB's name rules for any feature or variant
//!   name, unique through a hash of the exact names. Deleting a feature table is one
//!   `DeleteTable`, capacity and alarms are per feature, and a table's keys are just
//!   entities.
//! - Partition key `entity` (string, the entity exactly as given); attributes
//!   `value_type`, `value`, `event_time_us` and, in tables with a TTL, `expires_at`
//!   (epoch seconds, DynamoDB's TTL attribute). See [`encoding`] for the typed value
//!   layout (floats are kept as their bits, so NaN, ±∞ and −0.0 round-trip).
//! - **A registry table** `{table_prefix}registry` holds one item per feature table with
//!   its TTL. Every replica reads it, consistently, so a TTL changed by one is seen by
//!   all at once. It is read in the same `BatchGetItem` as the values (no extra round
//!   trip for a multi-get) and with one `GetItem` per write call. Tags were the
//!   alternative: they need the table ARN (a `DescribeTable` first), are eventually
//!   consistent and are rate-limited.
//!
//! # Semantics
//! - A write replaces a stored value only when its event time is strictly newer: every
//!   row is a conditional `PutItem` (`attribute_not_exists(entity) OR event_time_us <
//!   :t`), decided atomically per key by DynamoDB, 32 in flight per call. A failed
//!   condition counts in `skipped_older`. Within one call the newest row per entity
//!   wins (the first of equals); the others count as skipped.
//!   `BatchWriteItem` cannot carry conditions, so it is used only by the explicit
//!   [`DynamoOnlineStore::bulk_load`] (last writer wins, for filling a table nobody else
//!   writes), in 25-item chunks with `UnprocessedItems` re-sent with exponential back-off.
//! - A multi-get is `BatchGetItem` in 100-key chunks (across tables, 8 in flight), with
//!   `UnprocessedKeys` re-sent with exponential back-off, consistent reads throughout.
//!   A value older than `now - ttl` reads as `Expired`; DynamoDB's TTL sweep (enabled on
//!   `expires_at` when a table first gets a TTL, days late at worst) eventually deletes
//!   it, after which it reads as `Missing`.
//! - `create_table` is idempotent: it creates the table on demand capacity unless it
//!   exists, waits until it is ACTIVE, enables the TTL sweep when the table has a TTL
//!   and then writes the registry item (the new TTL applies to stored rows at once on
//!   reads). `delete_table` removes the registry item first, then the table, and waits
//!   until DynamoDB has dropped it; a missing table is fine. Writing to or reading from a
//!   table not in the registry is `NotFound`.
//! - Event times are kept at microsecond precision.
//!
//! # Errors and time bounds
//! Connections time out after 3 s, request attempts after 10 s, requests with their
//! retries after 30 s; the SDK's standard retry (4 attempts, exponential back-off with
//! jitter) covers throttling and dropped connections. Unreachable endpoints map to
//! [`ProviderError::Unreachable`](quiver_provider_sdk::ProviderError::Unreachable),
//! refused credentials to `Unauthorized`, missing tables to `NotFound`, entities
//! DynamoDB cannot key (empty, over 2048 bytes) to `InvalidQuery` on write (on read they
//! are `Missing`), throttling that outlasts the retries to `Other` (transient).
//!
//! # Credentials
//! `access_key_id` and `secret_access_key` from the configuration, else the process's
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`. AWS's full
//! default chain (profiles, SSO, instance metadata) is in `aws-config`, which also
//! compiles the STS and SSO clients, so it is not used.

mod config;
pub mod encoding;
mod errors;
pub mod naming;
mod store;

pub use config::{
    DynamoConfig, DynamoFactory, StaticCredentials, DEFAULT_ATTEMPT_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_OPERATION_TIMEOUT,
};
pub use naming::DEFAULT_TABLE_PREFIX;
pub use store::DynamoOnlineStore;

/// The provider kind this crate registers.
pub const KIND: &str = "dynamodb";
