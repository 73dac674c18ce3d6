//! The metadata store: definitions, variants, defaults, lineage edges, resource status
//! and jobs. One [`MetadataStore`] trait with two implementations that behave the same:
//! [`PostgresStore`] for production and [`SqliteStore`] as the embedded default. The
//! apply semantics (pinning references, create/update/unchanged/conflict, dangling
//! references, cycles) live once in [`plan`], shared by both.

mod backend;
mod error;
pub mod jobs;
pub mod plan;
mod postgres;
mod records;
mod sqlite;
mod store;

pub use error::StoreError;
pub use jobs::{Job, JobKind, JobQuery, JobRun, JobState, NewJob, RunOutcome, Schedule};
pub use plan::{Plan, PlanAction, PlanItem};
pub use postgres::PostgresStore;
pub use records::{ListQuery, Page, ResourceRecord, VariantSummary};
pub use sqlite::SqliteStore;
pub use store::{connect, MetadataStore};
