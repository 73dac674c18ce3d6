//! The metadata store test-suite. Every case runs once per backend (`sqlite::…`,
//! `postgres::…`), each on a fresh store: a temporary directory for SQLite, a fresh
//! database `quiver_test_<uuid>` for Postgres (from `DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`), dropped afterwards. An unreachable
//! Postgres fails the tests: it is never a reason to skip them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use quiver_core::{Definition, Kind, ResourceId, SourcedDefinition, Status};
use quiver_lineage::{Direction, Edge};
use quiver_metadata::{
    JobKind, JobQuery, JobState, ListQuery, MetadataStore, NewJob, Plan, PlanAction, PostgresStore,
    RunOutcome, SqliteStore, StoreError,
};
use serde_json::{json, Value};
use sqlx::Connection;

/// A store for one test and whatever must be cleaned up after it.
struct Fixture {
    store: Arc<dyn MetadataStore>,
    _cleanup: Cleanup,
}

enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Database { admin_url: String, name: String },
}

impl Drop for Cleanup {
    /// Drop the test database, best effort. Runs on its own thread and runtime because
    /// `Drop` cannot await, and also runs when the test panicked.
    fn drop(&mut self) {
        let Cleanup::Database { admin_url, name } = self else {
            return;
        };
        let (admin_url, database) = (admin_url.clone(), name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query(&format!(
                    r#"DROP DATABASE IF EXISTS "{database}" WITH (FORCE)"#
                ))
                .execute(&mut admin)
                .await
                .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop test database {name}");
        }
    }
}

async fn sqlite_store() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("data"))
        .await
        .expect("open sqlite store");
    assert!(
        dir.path().join("data").join("quiver.db").is_file(),
        "quiver.db is created in the data directory"
    );
    Fixture {
        store: Arc::new(store),
        _cleanup: Cleanup::Dir(dir),
    }
}

async fn pg_store() -> Fixture {
    let admin_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
        panic!(
            "Postgres is unreachable at {} ({e}). The metadata suite needs it: start it \
             (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or set DATABASE_URL",
            without_password(&admin_url)
        )
    });
    let name = format!("quiver_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
        .execute(&mut admin)
        .await
        .expect("create test database");
    admin.close().await.ok();
    let cleanup = Cleanup::Database {
        admin_url: admin_url.clone(),
        name: name.clone(),
    };
    let store = PostgresStore::connect(&with_database(&admin_url, &name))
        .await
        .expect("connect to the test database");
    Fixture {
        store: Arc::new(store),
        _cleanup: cleanup,
    }
}

/// `admin_url` pointing at database `name` instead.
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    format!("{}/{name}{query}", &base[..host_end])
}

fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

/// One `#[tokio::test]` per case, each on a fresh store from `$make`.
macro_rules! suite {
    ($make:path) => {
        suite!(@cases $make;
            apply_then_get_and_list,
            identical_reapply_changes_nothing,
            changed_variant_is_a_conflict,
            bad_document_writes_nothing,
            unpinned_references_pin_to_batch_or_default,
            newest_created_variant_becomes_default,
            unversioned_update_bumps_revision_and_replaces_edges,
            list_filters_and_pagination,
            lineage_respects_direction_and_depth,
            plan_reports_split_and_writes_nothing,
            concurrent_identical_applies_create_once,
            concurrent_conflicting_applies_have_one_winner,
            set_status_keeps_error_only_when_failed,
            apply_enqueues_transformation_job,
            concurrent_claimers_never_share_a_job,
            expired_lease_is_reclaimed,
            expired_lease_on_last_attempt_fails_the_job,
            heartbeat_by_non_owner_fails,
            failure_retries_with_backoff_then_fails,
            waiting_for_an_upstream_uses_no_attempt,
            schedules_enqueue_each_due_run_once,
            watermarks_only_move_forward,
            success_sets_ready_and_rows_written,
            cancel_job,
            logs_are_appended_and_capped,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let fixture = $make().await;
                crate::cases::$case(fixture.store.clone()).await;
            }
        )*
    };
}

mod sqlite {
    suite!(crate::sqlite_store);
}

mod postgres {
    suite!(crate::pg_store);
}

/// How `connect` picks and opens a backend.
mod opening {
    use super::*;

    #[tokio::test]
    async fn connect_picks_the_backend_from_the_url() {
        let dir = tempfile::tempdir().unwrap();
        let embedded = quiver_metadata::connect(None, &dir.path().join("d"))
            .await
            .unwrap();
        assert_eq!(embedded.backend(), "sqlite");
        assert!(dir.path().join("d/quiver.db").is_file());

        let url = format!("sqlite://{}", dir.path().join("other.db").display());
        let file = quiver_metadata::connect(Some(&url), dir.path())
            .await
            .unwrap();
        file.apply(vec![doc(provider())]).await.unwrap();
        drop(file);
        // Reopening the same file finds what was applied (migrations run again, no-op).
        let again = quiver_metadata::connect(Some(&url), dir.path())
            .await
            .unwrap();
        assert!(again
            .get(Kind::Provider, "local", None)
            .await
            .unwrap()
            .is_some());

        // An in-memory database keeps its content across calls (one shared connection).
        let memory = quiver_metadata::connect(Some("sqlite::memory:"), dir.path())
            .await
            .unwrap();
        memory.apply(pipeline()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(counts(&*memory).await, (5, 1));
        let plan = memory.plan(pipeline()).await.unwrap();
        assert!(plan.items.iter().all(|i| i.action == PlanAction::Unchanged));

        let err = quiver_metadata::connect(Some("mysql://x"), dir.path())
            .await
            .err()
            .expect("unsupported scheme");
        assert!(
            err.to_string().contains("unsupported database URL scheme"),
            "{err}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Definitions used by the cases.

fn doc(value: Value) -> SourcedDefinition {
    let definition: Definition = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("test definition {value}: {e}"));
    definition
        .validate()
        .unwrap_or_else(|e| panic!("test definition {value} is invalid: {e}"));
    SourcedDefinition {
        origin: format!("test {}", definition.id()),
        definition,
    }
}

fn provider() -> Value {
    json!({"kind": "provider", "name": "local", "owner": "platform",
           "config": {"type": "postgres", "host": "db", "database": "dw", "user": "quiver", "password": "s3cret"}})
}

fn entity(name: &str) -> Value {
    json!({"kind": "entity", "name": name, "owner": "risk"})
}

fn table_source(name: &str, variant: &str) -> Value {
    json!({"kind": "source", "name": name, "variant": variant, "owner": "risk",
           "provider": "local", "table": "transactions"})
}

fn sql_source(name: &str, variant: &str, sql: &str) -> Value {
    json!({"kind": "source", "name": name, "variant": variant, "owner": "risk",
           "provider": "local", "sql": sql})
}

fn feature(name: &str, variant: &str, source: &str) -> Value {
    json!({"kind": "feature", "name": name, "variant": variant, "owner": "risk", "entity": "user",
           "source": source, "value_column": "amount", "value_type": "float64"})
}

fn label(name: &str, variant: &str, source: &str) -> Value {
    json!({"kind": "label", "name": name, "variant": variant, "owner": "risk", "source": source,
           "entities": [{"entity": "user"}], "value_column": "fraud", "value_type": "bool"})
}

fn training_set(name: &str, variant: &str, label: &str, features: &[&str]) -> Value {
    json!({"kind": "training_set", "name": name, "variant": variant, "owner": "risk",
           "label": label, "features": features})
}

fn model(name: &str, training_sets: &[&str]) -> Value {
    json!({"kind": "model", "name": name, "owner": "risk", "training_sets": training_sets})
}

/// provider local, entity user, source tx:v1 (table), source agg:v1 (SQL over tx),
/// feature avg_amount:v1 over agg.
fn pipeline() -> Vec<SourcedDefinition> {
    vec![
        doc(provider()),
        doc(entity("user")),
        doc(table_source("tx", "v1")),
        doc(sql_source(
            "agg",
            "v1",
            "SELECT user_id, avg(amount) AS amount FROM {{ tx }} GROUP BY 1",
        )),
        doc(feature("avg_amount", "v1", "agg")),
    ]
}

fn src(name: &str, variant: &str) -> ResourceId {
    ResourceId::new(Kind::Source, name, variant)
}

fn edge(upstream: &ResourceId, downstream: &ResourceId) -> Edge {
    Edge {
        upstream: upstream.clone(),
        downstream: downstream.clone(),
    }
}

fn actions(plan: &Plan) -> Vec<(String, PlanAction)> {
    plan.items
        .iter()
        .map(|i| (i.resource.to_string(), i.action))
        .collect()
}

/// Stored resources and jobs, to prove an operation wrote nothing.
async fn counts(store: &dyn MetadataStore) -> (u64, u64) {
    let resources = store.list(&ListQuery::default()).await.expect("list").total;
    let jobs = store
        .list_jobs(&JobQuery::default())
        .await
        .expect("list jobs")
        .total;
    (resources, jobs)
}

/// Everything stored, for before/after comparisons.
async fn everything(store: &dyn MetadataStore) -> Vec<quiver_metadata::ResourceRecord> {
    store
        .list(&ListQuery {
            limit: 500,
            ..ListQuery::default()
        })
        .await
        .expect("list")
        .items
}

async fn only_job(store: &dyn MetadataStore) -> quiver_metadata::Job {
    let jobs = store
        .list_jobs(&JobQuery::default())
        .await
        .expect("list jobs");
    assert_eq!(jobs.total, 1, "{:?}", jobs.items);
    jobs.items.into_iter().next().expect("one job")
}

/// Wait until a queued job is due again.
async fn sleep_until_due(job: &quiver_metadata::Job) {
    let wait = (job.run_after - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(100)).await;
}

const LONG_LEASE: Duration = Duration::from_secs(60);
const ALL_JOBS: [JobKind; 4] = [
    JobKind::Transformation,
    JobKind::TrainingSet,
    JobKind::Materialization,
    JobKind::Deletion,
];

// ---------------------------------------------------------------------------------------
// The cases.

mod cases {
    use super::*;

    pub async fn apply_then_get_and_list(store: Arc<dyn MetadataStore>) {
        let plan = store.apply(pipeline()).await.expect("apply");
        assert!(
            plan.items.iter().all(|i| i.action == PlanAction::Create),
            "{:?}",
            actions(&plan)
        );
        assert_eq!(plan.items.len(), 5);

        let tx = store
            .get(Kind::Source, "tx", None)
            .await
            .unwrap()
            .expect("tx stored");
        assert_eq!(tx.id, src("tx", "v1"));
        assert_eq!(tx.definition, doc(table_source("tx", "v1")).definition);
        assert!(tx.is_default);
        assert_eq!(tx.status, Status::Ready);
        assert_eq!(tx.revision, 1);

        // The full definition is stored, secrets included (redaction is the API's job).
        let p = store
            .get(Kind::Provider, "local", None)
            .await
            .unwrap()
            .expect("provider stored");
        assert_eq!(p.definition, doc(provider()).definition);
        assert!(p.is_default);

        // Stored references are pinned.
        let f = store
            .get(Kind::Feature, "avg_amount", Some("v1"))
            .await
            .unwrap()
            .expect("feature");
        let Definition::Feature(fd) = &f.definition else {
            panic!("not a feature")
        };
        assert_eq!(fd.source.variant.as_deref(), Some("v1"));

        assert!(store
            .get(Kind::Source, "tx", Some("v2"))
            .await
            .unwrap()
            .is_none());
        assert!(store
            .get(Kind::Source, "nope", None)
            .await
            .unwrap()
            .is_none());

        let all = store.list(&ListQuery::default()).await.unwrap();
        assert_eq!(all.total, 5);
        let ids: Vec<String> = all.items.iter().map(|r| r.id.to_string()).collect();
        // Documented order: kind text, then name, then variant.
        assert_eq!(
            ids,
            [
                "entity user",
                "feature avg_amount:v1",
                "provider local",
                "source agg:v1",
                "source tx:v1"
            ]
        );
    }

    pub async fn identical_reapply_changes_nothing(store: Arc<dyn MetadataStore>) {
        store.apply(pipeline()).await.expect("first apply");
        let before = everything(&*store).await;
        let jobs_before = counts(&*store).await;
        let plan = store.apply(pipeline()).await.expect("second apply");
        assert!(
            plan.items.iter().all(|i| i.action == PlanAction::Unchanged),
            "{:?}",
            actions(&plan)
        );
        assert!(plan.items.iter().all(|i| !i.becomes_default));
        let after = everything(&*store).await;
        // updated_at, revision, status and default flags are all untouched.
        assert_eq!(before, after);
        assert_eq!(jobs_before, counts(&*store).await, "no job enqueued twice");
    }

    pub async fn changed_variant_is_a_conflict(store: Arc<dyn MetadataStore>) {
        store
            .apply(vec![doc(provider()), doc(table_source("tx", "v1"))])
            .await
            .unwrap();
        let before = store
            .get(Kind::Source, "tx", Some("v1"))
            .await
            .unwrap()
            .unwrap();
        let mut changed = table_source("tx", "v1");
        changed["table"] = "other_table".into();
        changed["description"] = "changed".into();
        let err = store
            .apply(vec![doc(entity("user")), doc(changed.clone())])
            .await
            .expect_err("conflict");
        match &err {
            StoreError::Conflict { conflicts } => {
                assert_eq!(conflicts.len(), 1);
                assert_eq!(conflicts[0].0, src("tx", "v1"));
                assert_eq!(conflicts[0].1, ["description", "table"]);
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        let message = err.to_string();
        assert!(
            message.contains("source tx:v1") && message.contains("table"),
            "{message}"
        );
        let after = store
            .get(Kind::Source, "tx", Some("v1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(before, after, "stored definition unchanged");
        assert!(
            store
                .get(Kind::Entity, "user", None)
                .await
                .unwrap()
                .is_none(),
            "nothing else written"
        );

        // The same change under a new variant is fine.
        let mut v2 = changed;
        v2["variant"] = "v2".into();
        store.apply(vec![doc(v2)]).await.expect("new variant");
    }

    pub async fn bad_document_writes_nothing(store: Arc<dyn MetadataStore>) {
        store.apply(vec![doc(provider())]).await.unwrap();
        let before = counts(&*store).await;
        assert_eq!(before, (1, 0));

        // A dangling reference in the last document.
        let err = store
            .apply(vec![
                doc(entity("user")),
                doc(table_source("tx", "v1")),
                doc(sql_source("agg", "v1", "SELECT * FROM {{ tx }}")),
                doc(feature("f", "v1", "missing")),
            ])
            .await
            .expect_err("dangling reference");
        assert!(
            matches!(&err, StoreError::DanglingReference { field, .. } if field == "source"),
            "{err:?}"
        );
        assert!(err.to_string().contains("missing"), "{err}");
        assert_eq!(counts(&*store).await, before);

        // A cycle between two SQL sources.
        let err = store
            .apply(vec![
                doc(entity("user")),
                doc(sql_source("a", "v1", "SELECT * FROM {{ b }}")),
                doc(sql_source("b", "v1", "SELECT * FROM {{ a }}")),
            ])
            .await
            .expect_err("cycle");
        match &err {
            StoreError::Cycle { path } => {
                assert_eq!(path.first(), path.last());
                assert!(
                    path.contains(&src("a", "v1")) && path.contains(&src("b", "v1")),
                    "{path:?}"
                );
            }
            other => panic!("expected a cycle, got {other:?}"),
        }
        assert_eq!(counts(&*store).await, before);

        // The same documents without the bad one apply.
        store
            .apply(vec![doc(entity("user")), doc(table_source("tx", "v1"))])
            .await
            .expect("good documents");
        assert_eq!(counts(&*store).await.0, 3);
    }

    pub async fn unpinned_references_pin_to_batch_or_default(store: Arc<dyn MetadataStore>) {
        store
            .apply(vec![
                doc(provider()),
                doc(entity("user")),
                doc(table_source("tx", "v1")),
            ])
            .await
            .unwrap();
        store
            .apply(vec![doc(table_source("tx", "v2"))])
            .await
            .unwrap();

        // Not in the batch: the stored default, v2.
        store
            .apply(vec![doc(feature("f1", "v1", "tx"))])
            .await
            .unwrap();
        // In the batch: the batch's variant, v3, even though v2 is the default.
        store
            .apply(vec![
                doc(feature("f2", "v1", "tx")),
                doc(table_source("tx", "v3")),
            ])
            .await
            .unwrap();
        // Pinned explicitly: kept.
        store
            .apply(vec![doc(feature("f3", "v1", "tx:v1"))])
            .await
            .unwrap();

        for (name, expected) in [("f1", "v2"), ("f2", "v3"), ("f3", "v1")] {
            let f = store
                .get(Kind::Feature, name, None)
                .await
                .unwrap()
                .expect("feature");
            let Definition::Feature(fd) = &f.definition else {
                panic!("not a feature")
            };
            assert_eq!(fd.source.variant.as_deref(), Some(expected), "{name}");
            let up = store.lineage(&f.id, Direction::Upstream, 1).await.unwrap();
            assert!(
                up.contains(&edge(&src("tx", expected), &f.id)),
                "{name}: {up:?}"
            );
        }

        // An unpinned reference to a name without any variant is dangling.
        let err = store
            .apply(vec![doc(feature("f4", "v1", "nope"))])
            .await
            .expect_err("dangling");
        assert!(
            matches!(err, StoreError::DanglingReference { .. }),
            "{err:?}"
        );
    }

    pub async fn newest_created_variant_becomes_default(store: Arc<dyn MetadataStore>) {
        store
            .apply(vec![doc(provider()), doc(table_source("tx", "v1"))])
            .await
            .unwrap();
        let default = |store: Arc<dyn MetadataStore>| async move {
            store
                .get(Kind::Source, "tx", None)
                .await
                .unwrap()
                .expect("default")
                .id
                .variant
        };
        assert_eq!(default(store.clone()).await, "v1");

        let plan = store
            .apply(vec![doc(table_source("tx", "v2"))])
            .await
            .unwrap();
        assert!(plan.items[0].becomes_default);
        assert_eq!(default(store.clone()).await, "v2");

        // Re-applying an old variant does not move the default back.
        let plan = store
            .apply(vec![doc(table_source("tx", "v1"))])
            .await
            .unwrap();
        assert_eq!(plan.items[0].action, PlanAction::Unchanged);
        assert_eq!(default(store.clone()).await, "v2");

        // Several new variants in one apply: the last one in document order wins.
        let plan = store
            .apply(vec![
                doc(table_source("tx", "v4")),
                doc(table_source("tx", "v3")),
            ])
            .await
            .unwrap();
        assert_eq!(
            plan.items
                .iter()
                .map(|i| i.becomes_default)
                .collect::<Vec<_>>(),
            [false, true]
        );
        assert_eq!(default(store.clone()).await, "v3");

        // Oldest first; v3 and v4 were created in one transaction, in id order.
        let variants = store.variants(Kind::Source, "tx").await.unwrap();
        let summary: Vec<(&str, bool)> = variants
            .iter()
            .map(|v| (v.variant.as_str(), v.is_default))
            .collect();
        assert_eq!(
            summary,
            [("v1", false), ("v2", false), ("v3", true), ("v4", false)]
        );
        assert!(variants
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at));
        assert!(store
            .variants(Kind::Source, "nope")
            .await
            .unwrap()
            .is_empty());

        let defaults = store
            .list(&ListQuery {
                kind: Some(Kind::Source),
                defaults_only: true,
                ..ListQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(defaults.total, 1);
        assert_eq!(defaults.items[0].id, src("tx", "v3"));
    }

    pub async fn unversioned_update_bumps_revision_and_replaces_edges(
        store: Arc<dyn MetadataStore>,
    ) {
        store
            .apply(vec![
                doc(provider()),
                doc(entity("user")),
                doc(table_source("tx", "v1")),
                doc(label("fraud", "v1", "tx")),
                doc(feature("amount", "v1", "tx")),
                doc(training_set("ts", "v1", "fraud", &["amount"])),
                doc(training_set("ts", "v2", "fraud", &["amount"])),
                doc(model("m", &["ts:v1"])),
            ])
            .await
            .unwrap();
        let m = ResourceId::unversioned(Kind::Model, "m");
        let ts1 = ResourceId::new(Kind::TrainingSet, "ts", "v1");
        let ts2 = ResourceId::new(Kind::TrainingSet, "ts", "v2");
        let before = store.get(Kind::Model, "m", None).await.unwrap().unwrap();
        assert_eq!(
            store.lineage(&m, Direction::Upstream, 1).await.unwrap(),
            [edge(&ts1, &m)]
        );

        let mut changed = model("m", &["ts:v2"]);
        changed["description"] = "retrained".into();
        let plan = store.apply(vec![doc(changed.clone())]).await.unwrap();
        assert_eq!(plan.items[0].action, PlanAction::Update);
        assert_eq!(
            plan.items[0].differing_fields,
            ["description", "training_sets[0]"]
        );

        let after = store.get(Kind::Model, "m", None).await.unwrap().unwrap();
        assert_eq!(after.revision, before.revision + 1);
        assert_eq!(after.created_at, before.created_at);
        assert!(after.updated_at >= before.updated_at);
        assert_eq!(after.definition, doc(changed).definition);
        assert_eq!(
            store.lineage(&m, Direction::Upstream, 1).await.unwrap(),
            [edge(&ts2, &m)]
        );
        assert!(store
            .lineage(&ts1, Direction::Downstream, 1)
            .await
            .unwrap()
            .is_empty());
    }

    pub async fn list_filters_and_pagination(store: Arc<dyn MetadataStore>) {
        let mut a = table_source("alpha", "v1");
        a["description"] = "Discount 50%_off for loyal users".into();
        a["tags"] = json!(["pii", "finance"]);
        let mut b = table_source("beta", "v1");
        b["description"] = "discount 50xxoff".into();
        b["owner"] = "growth".into();
        b["tags"] = json!(["finance"]);
        let mut c = sql_source("gamma_50", "v1", "SELECT * FROM {{ alpha }}");
        c["tags"] = json!(["pii_like"]);
        store
            .apply(vec![
                doc(provider()),
                doc(entity("user")),
                doc(a),
                doc(b),
                doc(c),
            ])
            .await
            .unwrap();

        let names = |page: quiver_metadata::Page<quiver_metadata::ResourceRecord>| -> Vec<String> {
            page.items.iter().map(|r| r.id.name.clone()).collect()
        };
        let query = |f: fn(&mut ListQuery)| {
            let mut q = ListQuery::default();
            f(&mut q);
            q
        };

        let by_owner = store
            .list(&query(|q| q.owner = Some("growth".into())))
            .await
            .unwrap();
        assert_eq!(names(by_owner), ["beta"]);
        let by_tag = store
            .list(&query(|q| q.tag = Some("pii".into())))
            .await
            .unwrap();
        assert_eq!(names(by_tag), ["alpha"], "tags match whole elements");
        let by_tag = store
            .list(&query(|q| q.tag = Some("finance".into())))
            .await
            .unwrap();
        assert_eq!(names(by_tag), ["alpha", "beta"]);
        let pending = store
            .list(&query(|q| q.status = Some(Status::Pending)))
            .await
            .unwrap();
        assert_eq!(
            names(pending),
            ["gamma_50"],
            "SQL sources wait for their job"
        );
        let by_kind = store
            .list(&query(|q| q.kind = Some(Kind::Entity)))
            .await
            .unwrap();
        assert_eq!(names(by_kind), ["user"]);
        let by_name = store
            .list(&query(|q| q.name = Some("alpha".into())))
            .await
            .unwrap();
        assert_eq!(names(by_name), ["alpha"]);

        // Wildcards in the query are literal; matching ignores case.
        let text = store
            .list(&query(|q| q.text = Some("50%_OFF".into())))
            .await
            .unwrap();
        assert_eq!(names(text), ["alpha"]);
        // Unescaped, `a_` would also match "alpha" (and "loyal").
        let text = store
            .list(&query(|q| q.text = Some("a_".into())))
            .await
            .unwrap();
        assert_eq!(
            names(text),
            ["gamma_50"],
            "`_` matches only a literal underscore"
        );
        let text = store
            .list(&query(|q| q.text = Some("DISCOUNT".into())))
            .await
            .unwrap();
        assert_eq!(names(text), ["alpha", "beta"]);
        let combined = store
            .list(&query(|q| {
                q.text = Some("discount".into());
                q.owner = Some("risk".into());
            }))
            .await
            .unwrap();
        assert_eq!(names(combined), ["alpha"]);

        // Five resources, pages of two.
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let page = store
                .list(&ListQuery {
                    limit: 2,
                    offset,
                    ..ListQuery::default()
                })
                .await
                .unwrap();
            assert_eq!(page.total, 5);
            assert!(page.items.len() <= 2);
            seen.extend(page.items.iter().map(|r| r.id.to_string()));
            match page.next_offset {
                Some(next) => offset = next,
                None => break,
            }
        }
        assert_eq!(
            seen,
            [
                "entity user",
                "provider local",
                "source alpha:v1",
                "source beta:v1",
                "source gamma_50:v1"
            ]
        );
        let beyond = store
            .list(&ListQuery {
                offset: 10,
                ..ListQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(
            (beyond.items.len(), beyond.total, beyond.next_offset),
            (0, 5, None)
        );
    }

    pub async fn lineage_respects_direction_and_depth(store: Arc<dyn MetadataStore>) {
        store.apply(pipeline()).await.unwrap();
        let local = ResourceId::unversioned(Kind::Provider, "local");
        let user = ResourceId::unversioned(Kind::Entity, "user");
        let (tx, agg) = (src("tx", "v1"), src("agg", "v1"));
        let f = ResourceId::new(Kind::Feature, "avg_amount", "v1");

        assert_eq!(
            store.lineage(&tx, Direction::Downstream, 1).await.unwrap(),
            [edge(&tx, &agg)]
        );
        assert_eq!(
            store.lineage(&tx, Direction::Downstream, 2).await.unwrap(),
            [edge(&agg, &f), edge(&tx, &agg)]
        );
        assert!(store
            .lineage(&tx, Direction::Downstream, 0)
            .await
            .unwrap()
            .is_empty());

        let mut up1 = vec![edge(&agg, &f), edge(&user, &f)];
        up1.sort();
        assert_eq!(
            store.lineage(&f, Direction::Upstream, 1).await.unwrap(),
            up1
        );
        let mut up2 = vec![
            edge(&agg, &f),
            edge(&user, &f),
            edge(&local, &agg),
            edge(&tx, &agg),
        ];
        up2.sort();
        assert_eq!(
            store.lineage(&f, Direction::Upstream, 2).await.unwrap(),
            up2
        );
        let mut up3 = up2.clone();
        up3.push(edge(&local, &tx));
        up3.sort();
        assert_eq!(
            store.lineage(&f, Direction::Upstream, 3).await.unwrap(),
            up3
        );
        assert_eq!(
            store.lineage(&f, Direction::Upstream, 50).await.unwrap(),
            up3
        );

        let err = store
            .lineage(&src("nope", "v1"), Direction::Upstream, 1)
            .await
            .expect_err("unknown resource");
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }

    pub async fn plan_reports_split_and_writes_nothing(store: Arc<dyn MetadataStore>) {
        store.apply(pipeline()[..4].to_vec()).await.unwrap();
        let before = everything(&*store).await;
        let jobs_before = counts(&*store).await.1;

        let mut changed_tx = table_source("tx", "v1");
        changed_tx["table"] = "elsewhere".into();
        let plan = store
            .plan(vec![
                doc(provider()),
                doc(changed_tx),
                doc(feature("avg_amount", "v1", "agg")),
                doc(table_source("tx", "v2")),
            ])
            .await
            .expect("plan");
        assert_eq!(
            actions(&plan),
            [
                ("provider local".to_string(), PlanAction::Unchanged),
                ("source tx:v1".to_string(), PlanAction::Conflict),
                ("feature avg_amount:v1".to_string(), PlanAction::Create),
                ("source tx:v2".to_string(), PlanAction::Create),
            ]
        );
        assert_eq!(plan.items[1].differing_fields, ["table"]);
        // Downstream impact combines stored edges and the batch's own.
        assert_eq!(
            plan.items[1].downstream,
            [
                src("agg", "v1"),
                ResourceId::new(Kind::Feature, "avg_amount", "v1")
            ]
        );
        assert!(plan.items[0].downstream.contains(&src("tx", "v1")));
        assert!(plan.items[2].downstream.is_empty());
        assert!(plan.items[3].becomes_default);

        assert_eq!(everything(&*store).await, before, "plan writes nothing");
        assert_eq!(counts(&*store).await.1, jobs_before);
        assert!(store
            .get(Kind::Feature, "avg_amount", None)
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            store
                .get(Kind::Source, "tx", None)
                .await
                .unwrap()
                .unwrap()
                .id
                .variant,
            "v1"
        );
    }

    pub async fn concurrent_identical_applies_create_once(store: Arc<dyn MetadataStore>) {
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.apply(pipeline()).await })
            })
            .collect();
        let mut creates: HashMap<String, usize> = HashMap::new();
        for task in tasks {
            let plan = task
                .await
                .expect("task")
                .expect("every concurrent apply succeeds");
            for item in &plan.items {
                match item.action {
                    PlanAction::Create => {
                        *creates.entry(item.resource.to_string()).or_default() += 1
                    }
                    PlanAction::Unchanged => {}
                    other => panic!("{}: unexpected {other:?}", item.resource),
                }
            }
        }
        assert_eq!(creates.len(), 5, "{creates:?}");
        assert!(
            creates.values().all(|n| *n == 1),
            "exactly one create per resource: {creates:?}"
        );
        assert_eq!(
            counts(&*store).await,
            (5, 1),
            "five resources, one transformation job"
        );
        let f = ResourceId::new(Kind::Feature, "avg_amount", "v1");
        assert_eq!(
            store
                .lineage(&f, Direction::Upstream, 1)
                .await
                .unwrap()
                .len(),
            2
        );
    }

    pub async fn concurrent_conflicting_applies_have_one_winner(store: Arc<dyn MetadataStore>) {
        store.apply(vec![doc(provider())]).await.unwrap();
        // 25 different definitions of source s:v1, each applied twice at once.
        let definition = |i: usize| {
            let mut d = table_source("s", "v1");
            d["table"] = format!("table_{}", i % 25).into();
            doc(d)
        };
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { (i, store.apply(vec![definition(i)]).await) })
            })
            .collect();
        let mut winners = Vec::new();
        let mut unchanged = Vec::new();
        for task in tasks {
            let (i, result) = task.await.expect("task");
            match result {
                Ok(plan) if plan.items[0].action == PlanAction::Create => winners.push(i),
                Ok(plan) if plan.items[0].action == PlanAction::Unchanged => unchanged.push(i),
                Ok(plan) => panic!("unexpected plan {:?}", actions(&plan)),
                Err(StoreError::Conflict { conflicts }) => {
                    assert_eq!(conflicts[0].0, src("s", "v1"));
                    assert_eq!(conflicts[0].1, ["table"]);
                }
                Err(other) => panic!("apply {i}: unexpected error {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one winner: {winners:?}");
        let winner = winners[0];
        for i in &unchanged {
            assert_eq!(
                i % 25,
                winner % 25,
                "only the winner's twin can be unchanged"
            );
        }
        let stored = store
            .get(Kind::Source, "s", Some("v1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.definition, definition(winner).definition);
        let rows = store
            .list(&ListQuery {
                kind: Some(Kind::Source),
                name: Some("s".into()),
                ..ListQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.total, 1);
        assert_eq!(store.variants(Kind::Source, "s").await.unwrap().len(), 1);
    }

    pub async fn set_status_keeps_error_only_when_failed(store: Arc<dyn MetadataStore>) {
        store
            .apply(vec![doc(provider()), doc(table_source("tx", "v1"))])
            .await
            .unwrap();
        let id = src("tx", "v1");
        store
            .set_status(&id, Status::Failed, Some("disk full"))
            .await
            .unwrap();
        let r = store.get(Kind::Source, "tx", None).await.unwrap().unwrap();
        assert_eq!(
            (r.status, r.error.as_deref()),
            (Status::Failed, Some("disk full"))
        );
        assert_eq!(r.revision, 2);
        store
            .set_status(&id, Status::Ready, Some("ignored"))
            .await
            .unwrap();
        let r = store.get(Kind::Source, "tx", None).await.unwrap().unwrap();
        assert_eq!((r.status, r.error), (Status::Ready, None));
        let err = store
            .set_status(&src("nope", "v1"), Status::Ready, None)
            .await
            .expect_err("unknown");
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }

    pub async fn apply_enqueues_transformation_job(store: Arc<dyn MetadataStore>) {
        store.apply(pipeline()).await.unwrap();
        let agg = store.get(Kind::Source, "agg", None).await.unwrap().unwrap();
        assert_eq!(agg.status, Status::Pending);
        let tx = store.get(Kind::Source, "tx", None).await.unwrap().unwrap();
        assert_eq!(tx.status, Status::Ready);

        let job = only_job(&*store).await;
        assert_eq!(job.kind, JobKind::Transformation);
        assert_eq!(job.resource, src("agg", "v1"));
        assert_eq!(job.state, JobState::Queued);
        assert_eq!((job.attempts, job.max_attempts), (0, 3));
        assert!(job.lease_owner.is_none() && job.started_at.is_none());
        assert_eq!(store.get_job(job.id).await.unwrap(), Some(job.clone()));
        assert!(store.get_job(job.id + 1000).await.unwrap().is_none());
        assert!(store.job_runs(job.id).await.unwrap().is_empty());

        let by_resource = store
            .list_jobs(&JobQuery {
                resource: Some(src("agg", "v1")),
                state: Some(JobState::Queued),
                ..JobQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(by_resource.total, 1);
        let none = store
            .list_jobs(&JobQuery {
                state: Some(JobState::Running),
                ..JobQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(none.total, 0);

        // A replica that cannot run transformations does not get it.
        let claimed = store
            .claim_job("r1", &[JobKind::Materialization], LONG_LEASE)
            .await
            .unwrap();
        assert!(claimed.is_none());

        // Enqueueing for an unknown resource is refused.
        let err = store
            .enqueue_job(NewJob {
                kind: JobKind::Deletion,
                resource: src("nope", "v1"),
                max_attempts: 1,
            })
            .await
            .expect_err("unknown resource");
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }

    pub async fn concurrent_claimers_never_share_a_job(store: Arc<dyn MetadataStore>) {
        store
            .apply(vec![doc(provider()), doc(table_source("tx", "v1"))])
            .await
            .unwrap();
        let mut expected = HashSet::new();
        for _ in 0..20 {
            let job = store
                .enqueue_job(NewJob {
                    kind: JobKind::Materialization,
                    resource: src("tx", "v1"),
                    max_attempts: 3,
                })
                .await
                .unwrap();
            expected.insert(job.id);
        }
        let claimers: Vec<_> = (0..4)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    let owner = format!("replica-{n}");
                    let mut got = Vec::new();
                    while let Some((job, run)) = store
                        .claim_job(&owner, &ALL_JOBS, LONG_LEASE)
                        .await
                        .unwrap()
                    {
                        assert_eq!(job.lease_owner.as_deref(), Some(owner.as_str()));
                        assert_eq!(
                            (run.job_id, run.attempt, run.state),
                            (job.id, 1, JobState::Running)
                        );
                        got.push(job.id);
                    }
                    got
                })
            })
            .collect();
        let mut claimed = Vec::new();
        for c in claimers {
            claimed.extend(c.await.expect("claimer"));
        }
        let unique: HashSet<i64> = claimed.iter().copied().collect();
        assert_eq!(
            unique.len(),
            claimed.len(),
            "a job was claimed twice: {claimed:?}"
        );
        assert_eq!(unique, expected);
    }

    pub async fn expired_lease_is_reclaimed(store: Arc<dyn MetadataStore>) {
        store.apply(pipeline()).await.unwrap();
        let short = Duration::from_millis(500);
        let (job, run) = store
            .claim_job("a", &ALL_JOBS, short)
            .await
            .unwrap()
            .expect("a claims");
        assert_eq!((job.state, job.attempts), (JobState::Running, 1));
        assert_eq!(run.lease_owner, "a");
        assert_eq!(
            store
                .get(Kind::Source, "agg", None)
                .await
                .unwrap()
                .unwrap()
                .status,
            Status::Running
        );
        assert!(
            store
                .claim_job("b", &ALL_JOBS, LONG_LEASE)
                .await
                .unwrap()
                .is_none(),
            "lease held"
        );

        tokio::time::sleep(Duration::from_millis(800)).await;
        let (again, run2) = store
            .claim_job("b", &ALL_JOBS, LONG_LEASE)
            .await
            .unwrap()
            .expect("b reclaims");
        assert_eq!(again.id, job.id);
        assert_eq!(
            (again.attempts, again.lease_owner.as_deref()),
            (2, Some("b"))
        );
        assert_eq!((run2.attempt, run2.lease_owner.as_str()), (2, "b"));

        let runs = store.job_runs(job.id).await.unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(
            (runs[0].state, runs[0].error.as_deref()),
            (JobState::Failed, Some("lease expired"))
        );
        assert!(runs[0].finished_at.is_some());
        assert_eq!(runs[1].state, JobState::Running);

        // The previous holder learns it lost the job.
        let err = store
            .heartbeat(job.id, "a", short, 1, None)
            .await
            .expect_err("a lost the lease");
        assert!(matches!(err, StoreError::JobState(_)), "{err:?}");
        let err = store
            .finish_run(
                job.id,
                "a",
                RunOutcome::Succeeded {
                    rows_written: Some(1),
                },
            )
            .await
            .expect_err("a cannot finish");
        assert!(matches!(err, StoreError::JobState(_)), "{err:?}");
        store
            .heartbeat(job.id, "b", LONG_LEASE, 1, Some(2))
            .await
            .expect("b holds it");
    }

    pub async fn expired_lease_on_last_attempt_fails_the_job(store: Arc<dyn MetadataStore>) {
        store
            .apply(vec![doc(provider()), doc(table_source("tx", "v1"))])
            .await
            .unwrap();
        let job = store
            .enqueue_job(NewJob {
                kind: JobKind::Materialization,
                resource: src("tx", "v1"),
                max_attempts: 1,
            })
            .await
            .unwrap();
        store
            .claim_job("a", &ALL_JOBS, Duration::from_millis(500))
            .await
            .unwrap()
            .expect("claimed");
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(store
            .claim_job("b", &ALL_JOBS, LONG_LEASE)
            .await
            .unwrap()
            .is_none());
        let failed = store.get_job(job.id).await.unwrap().unwrap();
        assert_eq!(
            (failed.state, failed.error.as_deref()),
            (JobState::Failed, Some("lease expired"))
        );
        assert!(failed.lease_owner.is_none() && failed.finished_at.is_some());
        let tx = store.get(Kind::Source, "tx", None).await.unwrap().unwrap();
        assert_eq!(
            (tx.status, tx.error.as_deref()),
            (Status::Failed, Some("lease expired"))
        );
    }

    pub async fn heartbeat_by_non_owner_fails(store: Arc<dyn MetadataStore>) {
        store.apply(pipeline()).await.unwrap();
        let (job, _) = store
            .claim_job("a", &ALL_JOBS, Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        let err = store
            .heartbeat(job.id, "b", LONG_LEASE, 0, None)
            .await
            .expect_err("b is not the owner");
        match err {
            StoreError::JobState(message) => {
                assert_eq!(message, format!("job {} is no longer leased by b", job.id))
            }
            other => panic!("expected a job state error, got {other:?}"),
        }
        store
            .heartbeat(job.id, "a", LONG_LEASE, 10, Some(100))
            .await
            .expect("owner renews");
        let renewed = store.get_job(job.id).await.unwrap().unwrap();
        assert!(renewed.lease_expires_at.unwrap() > job.lease_expires_at.unwrap());
        assert_eq!(
            (renewed.progress_done, renewed.progress_total),
            (10, Some(100))
        );
        let err = store
            .heartbeat(999_999, "a", LONG_LEASE, 0, None)
            .await
            .expect_err("unknown job");
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }

    pub async fn failure_retries_with_backoff_then_fails(store: Arc<dyn MetadataStore>) {
        store.apply(pipeline()).await.unwrap();
        let agg = || async { store.get(Kind::Source, "agg", None).await.unwrap().unwrap() };
        let mut expected_wait = 1;
        for attempt in 1..=3 {
            let (job, run) = store
                .claim_job("a", &ALL_JOBS, LONG_LEASE)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("attempt {attempt} is due"));
            assert_eq!((job.attempts, run.attempt), (attempt, attempt));
            let before = Utc::now();
            let after = store
                .finish_run(
                    job.id,
                    "a",
                    RunOutcome::Failed {
                        error: format!("boom {attempt}"),
                    },
                )
                .await
                .unwrap();
            assert_eq!(after.error, Some(format!("boom {attempt}")));
            if attempt < 3 {
                assert_eq!(after.state, JobState::Queued);
                assert!(after.lease_owner.is_none());
                // At least the back-off after the call began; the slack above is the
                // call's own latency on a loaded machine.
                let wait = (after.run_after - before).num_milliseconds();
                assert!(
                    (expected_wait * 1000 - 50..=expected_wait * 1000 + 1500).contains(&wait),
                    "attempt {attempt}: back-off {wait} ms, expected about {expected_wait} s"
                );
                assert_eq!(agg().await.status, Status::Pending);
                assert!(
                    store
                        .claim_job("a", &ALL_JOBS, LONG_LEASE)
                        .await
                        .unwrap()
                        .is_none(),
                    "not due during the back-off"
                );
                sleep_until_due(&after).await;
                expected_wait *= 2;
            } else {
                assert_eq!(after.state, JobState::Failed);
                assert!(after.finished_at.is_some());
                let r = agg().await;
                assert_eq!(
                    (r.status, r.error.as_deref()),
                    (Status::Failed, Some("boom 3"))
                );
            }
        }
        let job = only_job(&*store).await;
        let runs = store.job_runs(job.id).await.unwrap();
        let summary: Vec<(i32, JobState, Option<&str>)> = runs
            .iter()
            .map(|r| (r.attempt, r.state, r.error.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                (1, JobState::Failed, Some("boom 1")),
                (2, JobState::Failed, Some("boom 2")),
                (3, JobState::Failed, Some("boom 3")),
            ]
        );
        assert!(store
            .claim_job("a", &ALL_JOBS, LONG_LEASE)
            .await
            .unwrap()
            .is_none());
    }

    pub async fn waiting_for_an_upstream_uses_no_attempt(store: Arc<dyn MetadataStore>) {
        store.apply(pipeline()).await.unwrap();
        let agg = || async { store.get(Kind::Source, "agg", None).await.unwrap().unwrap() };
        // More waits than the job has attempts: none of them may count.
        for round in 0..5 {
            let (job, run) = store
                .claim_job("a", &ALL_JOBS, LONG_LEASE)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: the job is due"));
            assert_eq!((job.attempts, run.attempt), (1, 1), "round {round}");
            let after = store
                .finish_run(
                    job.id,
                    "a",
                    RunOutcome::Waiting {
                        reason: "waiting for upstream source:raw:v1 (pending)".into(),
                        retry_after: Duration::from_millis(300),
                    },
                )
                .await
                .unwrap();
            assert_eq!(after.state, JobState::Queued);
            assert_eq!(after.attempts, 0, "a wait gives the attempt back");
            assert!(after.lease_owner.is_none());
            assert_eq!(
                after.error.as_deref(),
                Some("waiting for upstream source:raw:v1 (pending)")
            );
            assert!(store.job_runs(job.id).await.unwrap().is_empty());
            assert_eq!(agg().await.status, Status::Pending);
            assert!(
                store
                    .claim_job("a", &ALL_JOBS, LONG_LEASE)
                    .await
                    .unwrap()
                    .is_none(),
                "not due before retry_after"
            );
            sleep_until_due(&after).await;
        }
        let (job, _) = store
            .claim_job("a", &ALL_JOBS, LONG_LEASE)
            .await
            .unwrap()
            .unwrap();
        let done = store
            .finish_run(
                job.id,
                "a",
                RunOutcome::Succeeded {
                    rows_written: Some(1),
                },
            )
            .await
            .unwrap();
        assert_eq!((done.state, done.attempts), (JobState::Succeeded, 1));
        let runs = store.job_runs(job.id).await.unwrap();
        assert_eq!(runs.len(), 1, "only the real attempt is a run: {runs:?}");
        assert_eq!(agg().await.status, Status::Ready);
    }

    /// A feature materialized into `online` every 15 minutes, on a table source (so its
    /// only job is the materialization).
    fn scheduled_feature() -> Vec<SourcedDefinition> {
        let mut f = feature("fresh", "v1", "tx");
        f["online_provider"] = "local".into();
        f["timestamp_column"] = "ts".into();
        f["materialization"] = json!({"schedule": "*/15 * * * *", "lookback": "2h"});
        vec![
            doc(provider()),
            doc(entity("user")),
            doc(table_source("tx", "v1")),
            doc(f),
        ]
    }

    async fn finish_all(store: &dyn MetadataStore) {
        while let Some((job, _)) = store.claim_job("a", &ALL_JOBS, LONG_LEASE).await.unwrap() {
            store
                .finish_run(job.id, "a", RunOutcome::Succeeded { rows_written: None })
                .await
                .unwrap();
        }
    }

    pub async fn schedules_enqueue_each_due_run_once(store: Arc<dyn MetadataStore>) {
        let applied_at = Utc::now();
        store.apply(scheduled_feature()).await.unwrap();
        let fresh = ResourceId::new(Kind::Feature, "fresh", "v1");
        let schedules = store.schedules().await.unwrap();
        assert_eq!(schedules.len(), 1, "{schedules:?}");
        let s = &schedules[0];
        assert_eq!((&s.resource, s.cron.as_str()), (&fresh, "*/15 * * * *"));
        let next = s.next_run_at.expect("a next run");
        assert!(next > applied_at && next <= applied_at + chrono::Duration::minutes(15));
        assert_eq!(
            (s.last_job_id, s.skipped_runs, s.watermark),
            (None, 0, None)
        );
        // Re-applying the same definition changes nothing.
        store.apply(scheduled_feature()).await.unwrap();
        assert_eq!(store.schedules().await.unwrap().len(), 1);

        // Not due yet: nothing. The apply's own (full) materialization is still queued,
        // so the first due run is skipped rather than stacked behind it.
        assert!(store
            .enqueue_due_schedules(applied_at)
            .await
            .unwrap()
            .is_empty());
        let due = next + chrono::Duration::seconds(1);
        assert!(store.enqueue_due_schedules(due).await.unwrap().is_empty());
        let s = store.schedules().await.unwrap().remove(0);
        assert_eq!(s.skipped_runs, 1);
        assert!(
            s.next_run_at.unwrap() > due,
            "moved on past the skipped run"
        );

        // With the apply's job done, four replicas enqueue the next due run at once:
        // exactly one job.
        finish_all(&*store).await;
        let later = s.next_run_at.unwrap() + chrono::Duration::minutes(40);
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.enqueue_due_schedules(later).await.unwrap()
            }));
        }
        let mut jobs = Vec::new();
        for t in tasks {
            jobs.extend(t.await.unwrap());
        }
        assert_eq!(jobs.len(), 1, "missed runs collapse into one job: {jobs:?}");
        assert_eq!(
            (jobs[0].kind, &jobs[0].resource, jobs[0].state),
            (JobKind::Materialization, &fresh, JobState::Queued)
        );
        let s = store.schedules().await.unwrap().remove(0);
        assert_eq!(s.last_job_id, Some(jobs[0].id));
        assert!(s.next_run_at.unwrap() > later);
        assert!(store.enqueue_due_schedules(later).await.unwrap().is_empty());
    }

    pub async fn watermarks_only_move_forward(store: Arc<dyn MetadataStore>) {
        store.apply(scheduled_feature()).await.unwrap();
        let fresh = ResourceId::new(Kind::Feature, "fresh", "v1");
        assert_eq!(store.watermark(&fresh).await.unwrap(), None);
        let t1 = Utc::now();
        let t0 = t1 - chrono::Duration::hours(1);
        let t2 = t1 + chrono::Duration::microseconds(1);
        store.advance_watermark(&fresh, t1).await.unwrap();
        assert_eq!(store.watermark(&fresh).await.unwrap(), Some(micros(t1)));
        store.advance_watermark(&fresh, t0).await.unwrap();
        assert_eq!(
            store.watermark(&fresh).await.unwrap(),
            Some(micros(t1)),
            "an older run never rewinds it"
        );
        store.advance_watermark(&fresh, t2).await.unwrap();
        assert_eq!(store.watermark(&fresh).await.unwrap(), Some(micros(t2)));
        assert_eq!(
            store.watermarks().await.unwrap(),
            vec![(fresh.clone(), micros(t2))]
        );
        assert_eq!(
            store.schedules().await.unwrap()[0].watermark,
            Some(micros(t2))
        );
        let missing = ResourceId::new(Kind::Feature, "nope", "v1");
        // The catalog version moves with every status change, not with watermarks.
        let before = store.catalog_version().await.unwrap();
        store.advance_watermark(&fresh, t2).await.unwrap();
        assert_eq!(store.catalog_version().await.unwrap(), before);
        store
            .set_status(&fresh, Status::Failed, Some("boom"))
            .await
            .unwrap();
        let after = store.catalog_version().await.unwrap();
        assert!(after > before, "{before:?} → {after:?}");
        let err = store.advance_watermark(&missing, t1).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }

    /// `t` at the microsecond precision both backends store.
    fn micros(t: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
        chrono::DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap()
    }

    pub async fn success_sets_ready_and_rows_written(store: Arc<dyn MetadataStore>) {
        store.apply(pipeline()).await.unwrap();
        let (job, _) = store
            .claim_job("a", &ALL_JOBS, LONG_LEASE)
            .await
            .unwrap()
            .unwrap();
        let done = store
            .finish_run(
                job.id,
                "a",
                RunOutcome::Succeeded {
                    rows_written: Some(42),
                },
            )
            .await
            .unwrap();
        assert_eq!(done.state, JobState::Succeeded);
        assert!(done.lease_owner.is_none() && done.finished_at.is_some());
        let runs = store.job_runs(job.id).await.unwrap();
        assert_eq!(
            (runs.len(), runs[0].state, runs[0].rows_written),
            (1, JobState::Succeeded, Some(42))
        );
        let agg = store.get(Kind::Source, "agg", None).await.unwrap().unwrap();
        assert_eq!((agg.status, agg.error), (Status::Ready, None));

        let err = store
            .finish_run(job.id, "a", RunOutcome::Succeeded { rows_written: None })
            .await
            .expect_err("already finished");
        assert!(matches!(err, StoreError::JobState(_)), "{err:?}");
        let err = store.cancel_job(job.id).await.expect_err("terminal");
        assert!(matches!(err, StoreError::JobState(_)), "{err:?}");
    }

    pub async fn cancel_job(store: Arc<dyn MetadataStore>) {
        store.apply(pipeline()).await.unwrap();
        store
            .apply(vec![doc(table_source("tx", "v2"))])
            .await
            .unwrap();

        // A queued job.
        let queued = only_job(&*store).await;
        let cancelled = store.cancel_job(queued.id).await.unwrap();
        assert_eq!(cancelled.state, JobState::Cancelled);
        assert!(cancelled.finished_at.is_some());
        let agg = store.get(Kind::Source, "agg", None).await.unwrap().unwrap();
        assert_eq!(
            agg.status,
            Status::Failed,
            "the resource no longer waits for the job"
        );
        assert!(agg.error.unwrap().contains("cancelled"));
        let err = store
            .cancel_job(queued.id)
            .await
            .expect_err("already cancelled");
        assert!(matches!(err, StoreError::JobState(_)), "{err:?}");
        assert!(store
            .claim_job("a", &ALL_JOBS, LONG_LEASE)
            .await
            .unwrap()
            .is_none());

        // A running job: its run is closed and the holder loses it.
        let job = store
            .enqueue_job(NewJob {
                kind: JobKind::Materialization,
                resource: src("tx", "v2"),
                max_attempts: 3,
            })
            .await
            .unwrap();
        let (claimed, _) = store
            .claim_job("a", &ALL_JOBS, LONG_LEASE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.id, job.id);
        assert_eq!(
            store.cancel_job(job.id).await.unwrap().state,
            JobState::Cancelled
        );
        let runs = store.job_runs(job.id).await.unwrap();
        assert_eq!(runs[0].state, JobState::Cancelled);
        assert!(runs[0].finished_at.is_some());
        let err = store
            .heartbeat(job.id, "a", LONG_LEASE, 0, None)
            .await
            .expect_err("cancelled");
        assert!(matches!(err, StoreError::JobState(_)), "{err:?}");

        let err = store.cancel_job(999_999).await.expect_err("unknown job");
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }

    pub async fn logs_are_appended_and_capped(store: Arc<dyn MetadataStore>) {
        store.apply(pipeline()).await.unwrap();
        let (job, _) = store
            .claim_job("a", &ALL_JOBS, LONG_LEASE)
            .await
            .unwrap()
            .unwrap();
        store.append_log(job.id, "a", "reading tx").await.unwrap();
        store
            .append_log(job.id, "a", "wrote 42 rows\n")
            .await
            .unwrap();
        let err = store
            .append_log(job.id, "b", "intruder")
            .await
            .expect_err("not the holder");
        assert!(matches!(err, StoreError::JobState(_)), "{err:?}");
        let runs = store.job_runs(job.id).await.unwrap();
        assert_eq!(runs[0].logs, "reading tx\nwrote 42 rows\n");

        // Only the last MiB is kept.
        let big = "x".repeat(700 * 1024);
        store.append_log(job.id, "a", &big).await.unwrap();
        store
            .append_log(job.id, "a", &format!("{big}end"))
            .await
            .unwrap();
        let logs = store.job_runs(job.id).await.unwrap().remove(0).logs;
        assert_eq!(logs.len(), 1 << 20);
        assert!(logs.ends_with("xxxend\n"));
        assert!(!logs.contains("reading tx"));

        store
            .finish_run(
                job.id,
                "a",
                RunOutcome::Succeeded {
                    rows_written: Some(42),
                },
            )
            .await
            .unwrap();
        let err = store
            .append_log(job.id, "a", "late")
            .await
            .expect_err("run is over");
        assert!(matches!(err, StoreError::JobState(_)), "{err:?}");
    }
}
