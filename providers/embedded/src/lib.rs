//! The embedded online store: the latest value of every feature per entity, in one
//! SQLite file on local disk, so `quiver serve` serves online features with no services.
//!
//! # Why SQLite (through sqlx)
//! - The contract's hard part is event-time monotonicity decided atomically per key. In
//!   SQLite that is one statement, `INSERT … ON CONFLICT DO UPDATE … WHERE
//!   excluded.event_time_us > online_values.event_time_us`, evaluated under the write
//!   lock, so no writer (in this process or another) can slip between the comparison and
//!   the update. An embedded key-value store such as redb would need a read-then-write of
//!   every key inside its write transaction, hand-written here and in every caller.
//! - A multi-get is one SQL statement over the primary keys (`MULTI_GET` in `store.rs`),
//!   one round trip however many entities × features are asked for.
//! - It is transactional and crash-safe (WAL), a person can open the file with the
//!   `sqlite3` CLI to see what is served, and sqlx with SQLite is already compiled into
//!   Quiver for the metadata store, so this crate adds no heavy dependency.
//!
//! # Layout
//! `online_tables (feature, variant, ttl_us)` is the catalogue; `online_values` holds one
//! row per `(feature, variant, entity)` with a typed value encoding (see `encoding.rs`)
//! and the event time in microseconds since the epoch. Event times are therefore kept,
//! compared and returned at microsecond precision; nanoseconds are truncated.
//!
//! # Semantics
//! - A write replaces a stored value only when its event time is strictly newer. On
//!   equal event times the stored value is kept, so replaying a materialization is a
//!   no-op and the outcome never depends on which of two equal writes came last. Within
//!   one call the same rule holds: per entity the newest row wins (the first of equals),
//!   the others count in `skipped_older`. One call is one transaction.
//! - A value whose event time is older than `now - ttl` reads as
//!   [`OnlineRead::Expired`](quiver_provider_sdk::OnlineRead::Expired); it stays stored
//!   until overwritten or its table is deleted.
//! - Re-creating a table keeps its rows and updates its TTL; deleting it removes its
//!   rows; writing to or reading from a missing table is
//!   [`ProviderError::NotFound`](quiver_provider_sdk::ProviderError::NotFound).
//!
//! # Concurrency
//! Writes go through one connection (in-process writers queue in order) and start with
//! `BEGIN IMMEDIATE`, waiting up to a busy timeout for another process's write lock;
//! reads use a pool of read-only connections and, in WAL mode, never wait for writers.

mod encoding;
mod factory;
mod store;

pub use factory::{EmbeddedOnlineFactory, DEFAULT_DATABASE_PATH};
pub use store::EmbeddedOnlineStore;
