//! Quiver's Redis online store: the latest value of every feature per entity, one Redis
//! hash per entity, read many entities × many features in one round trip.
//!
//! # Layout (key format `q1`, see `keys.rs` and the crate README)
//! - `q1:e:<ns>:{<entity>}` — one hash per entity (DoorDash's hash-per-entity layout):
//!   one field per feature table, `<feature>:<variant>`, so all the features of an entity
//!   are one `HMGET`, and the entity name is stored once, not once per feature.
//! - `q1:r:{<ns>}` — the table registry of the namespace: per table its generation and
//!   TTL, a generation counter, and tombstones of deleted tables. Kept in Redis, so every
//!   `quiver serve` replica sees the same tables at once.
//! - Every user string is percent-escaped (`[A-Za-z0-9_.-]` kept), so keys and fields are
//!   unambiguous for any entity, feature or variant, and the `{…}` hash tag we write is
//!   the only one in the key: Redis Cluster puts an entity's hash in the slot of its
//!   entity. (The write script takes 100 entity hashes per call, which one Redis runs
//!   atomically; a cluster client would group them by slot.)
//!
//! # Values (see `value.rs`)
//! A 16-byte header, `(generation, event time)` big-endian, then a type tag and the
//! payload: every [`OnlineValue`](quiver_provider_sdk::OnlineValue) round-trips exactly
//! (NaN payloads, ±inf, -0.0, i64 extremes, any UTF-8), event times at microseconds.
//!
//! # Semantics
//! - **Writes** are event-time monotonic and atomic per key: a Lua script (`EVALSHA`,
//!   `SCRIPT LOAD` at the head of each pipeline) compares the stored header with the new
//!   one byte by byte and writes only when the new one is greater; an equal event time
//!   keeps the stored value. Within one call the newest row per entity is sent (the first
//!   of equals), the rest count as `skipped_older`. One script call carries 100 rows,
//!   one pipeline 500: 20 000 rows are 41 round trips (one registry read, 40 pipelines).
//! - **multi_get** is one pipeline: the registry `HMGET` of the tables (only those not
//!   read in the last [`REGISTRY_CACHE`], 500 ms) and its `HLEN`, then one read per
//!   entity: `HGETALL` when the request names at least half the registry's tables,
//!   `HMGET` of the named fields otherwise. A value of another generation than the
//!   table's is Missing, one older than `now - ttl` is `Expired` with its event time.
//! - **Tables**: `create_table` keeps the generation (so the values) and updates the TTL;
//!   `delete_table` removes the registry entry and leaves a tombstone: the table's values
//!   are invisible at once (their generation is dead, a re-created table gets a new one),
//!   and a background `SCAN` sweep ([`RedisOnlineStore::sweep_deleted_tables`]) removes
//!   them without blocking Redis or the request. A missing table is
//!   [`ProviderError::NotFound`](quiver_provider_sdk::ProviderError::NotFound).
//! - **Key expiry** bounds storage: a write to a table with a TTL sets the hash to expire
//!   at `max(event time + ttl, now) + 24 h`, only ever later (`PEXPIREAT … GT`); a write to
//!   a table without TTL removes the expiry. So a key is never dropped while one of its
//!   values could still read Present. Redis 7.0 has no per-field expiry (`HEXPIRE` is
//!   7.4), hence per key.
//!
//! # Connections
//! Writes, scripts and administration use the `redis` crate's `ConnectionManager` (one
//! multiplexed connection that reconnects by itself). `multi_get` uses this crate's own
//! pool of plain TCP connections with a RESP2 byte scanner (`wire.rs`): the read path
//! is most of a serving replica's work, and the generic parser was half of it. Connect
//! and response timeouts are 2 s, one round trip is bounded at 5 s
//! ([`ROUND_TRIP_TIMEOUT`]): a Redis that is down answers
//! [`ProviderError::Unreachable`](quiver_provider_sdk::ProviderError::Unreachable)
//! within that, and the next call after it is back succeeds. The password is never in
//! `Debug` output, logs or errors.

mod error;
mod factory;
pub mod keys;
mod scripts;
mod store;
pub mod value;
mod wire;

pub use factory::RedisFactory;
pub use store::{
    RedisOnlineStore, RedisOptions, SweepReport, CONNECT_TIMEOUT, DEFAULT_NAMESPACE, EXPIRY_GRACE,
    REGISTRY_CACHE, RESPONSE_TIMEOUT, ROUND_TRIP_TIMEOUT, WRITE_PIPELINE_ROWS, WRITE_SCRIPT_ROWS,
};
