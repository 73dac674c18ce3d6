//! The conformance test-suite every provider runs, the way every `object_store` backend
//! runs the same integration checks. Depends only on the provider SDK.
//!
//! - [`offline`]: point-in-time training-set cases, checked row for row (NULLs included)
//!   against [`reference`], a brute-force implementation of the semantics in
//!   `quiver_provider_sdk::offline`, on hand-made and randomized (seeded) data.
//! - [`online`]: multi-get, missing keys, event-time monotonicity, TTL, re-creating and
//!   deleting tables.
//!
//! Each module exports a macro that expands to one `#[tokio::test]` per case for a
//! provider, so one failure never hides the rest; capability flags skip (by design, with a
//! visible message) what a provider declares it cannot do.

pub mod offline;
pub mod online;
pub mod reference;
