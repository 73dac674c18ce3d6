//! The DataFusion-dialect statements executed on DataFusion in-process against the
//! testkit's random cases and compared row for row with the reference: proof of the
//! generator's semantics on a real engine (both plans DataFusion can run).

mod common;

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use arrow::datatypes::{DataType, UInt64Type};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use quiver_provider_sdk::{TableRef, TrainingSetQuery};
use quiver_provider_testkit::offline::{assert_same_table, random_case, RANDOM_SEEDS};
use quiver_provider_testkit::reference;
use quiver_sql::{
    latest_values, point_in_time_with, render_inline, transformation, DataFusion, PitPlan,
    SqlError, TableName, ROW_ID,
};

fn context() -> SessionContext {
    // One partition keeps the label scan (and so ROW_NUMBER() OVER ()) in table order.
    SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1))
}

fn register(ctx: &SessionContext, name: &str, batch: RecordBatch) {
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).expect("mem table");
    ctx.register_table(name, Arc::new(table))
        .expect("register table");
}

fn resolve(table: &TableRef) -> Result<TableName, SqlError> {
    match table {
        TableRef::Table(name) => Ok(TableName(vec![name.clone()])),
        other => Err(SqlError::Unsupported(format!("{other:?}"))),
    }
}

async fn run(ctx: &SessionContext, sql: &str) -> RecordBatch {
    let frame = ctx
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("plan failed: {e}\n{sql}"));
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame
        .collect()
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}\n{sql}"));
    concat_batches(&schema, &batches).expect("concat")
}

/// Sorted by ROW_ID, which must be 1..n; returned without it.
fn by_row_id(batch: &RecordBatch) -> RecordBatch {
    let ids = batch.column_by_name(ROW_ID).expect("row id column");
    let order = sort_to_indices(ids, None, None).expect("sort");
    let sorted = take_record_batch(batch, &order).expect("take");
    let ids = arrow::compute::cast(sorted.column_by_name(ROW_ID).unwrap(), &DataType::UInt64)
        .expect("row ids as integers");
    let ids: Vec<u64> = ids.as_primitive::<UInt64Type>().iter().flatten().collect();
    assert_eq!(ids, (1..=batch.num_rows() as u64).collect::<Vec<_>>());
    let last = sorted.num_columns() - 1;
    assert_eq!(sorted.schema().field(last).name(), ROW_ID);
    sorted.project(&(0..last).collect::<Vec<_>>()).unwrap()
}

#[tokio::test]
async fn random_cases_match_the_reference() {
    let (mut matched, mut unmatched) = (0, 0);
    for seed in 0..RANDOM_SEEDS {
        let case = random_case(seed);
        let ctx = context();
        register(&ctx, "label", case.label.clone());
        for (i, source) in case.sources.iter().enumerate() {
            register(&ctx, &format!("source_{i}"), source.clone());
        }
        let mut label_query = case.label_query.clone();
        label_query.table = TableRef::Table("label".into());
        let mut features = Vec::new();
        let mut sources = Vec::new();
        for (s, mut q) in case.features.clone() {
            q.table = TableRef::Table(format!("source_{s}"));
            features.push(q);
            sources.push(case.sources[s].clone());
        }
        let query = TrainingSetQuery {
            label: label_query,
            features,
            output: common::output(&format!("random_{seed}")),
        };
        let expected = reference::training_set(&query, &case.label, &sources);
        for plan in [PitPlan::Best, PitPlan::Window] {
            let statement = point_in_time_with(&DataFusion, &query, &resolve, plan).unwrap();
            let sql = render_inline(&DataFusion, &statement);
            let actual = by_row_id(&run(&ctx, &sql).await);
            let context = format!(
                "seed {seed}, plan {plan:?}, features {:?}\n{sql}",
                query.features
            );
            assert_same_table(&actual, &expected, &context);
        }
        for f in &query.features {
            let values = expected.column_by_name(&f.name).unwrap();
            matched += values.len() - values.null_count();
            unmatched += values.null_count();
        }
    }
    assert!(
        matched > 200 && unmatched > 200,
        "{matched} matched, {unmatched} NULL"
    );
}

/// The testkit's latest-values data set: ties on ts broken by created then value, NULL
/// entities and NULL timestamps never picked, `since` exclusive.
#[tokio::test]
async fn latest_values_pick_by_the_tie_rule() {
    use quiver_provider_testkit::offline::{batch, ints, naive, utc};
    let events = batch(vec![
        (
            "user_id",
            ints(&[
                Some(1),
                Some(1),
                Some(1),
                Some(2),
                Some(2),
                Some(3),
                None,
                Some(4),
            ]),
        ),
        (
            "ts",
            naive(&[
                Some(5),
                Some(20),
                Some(20),
                Some(10),
                Some(30),
                Some(1),
                Some(50),
                None,
            ]),
        ),
        (
            "created",
            utc(&[None, Some(1), Some(2), None, None, None, None, None]),
        ),
        (
            "v",
            ints(&[
                Some(1),
                Some(9),
                Some(2),
                Some(3),
                None,
                Some(6),
                Some(7),
                Some(8),
            ]),
        ),
    ]);
    let ctx = context();
    register(&ctx, "events", events);
    let t0 = 1_704_067_200_i64;
    let mut q = common::latest(false);
    q.since = None;
    let rows = |b: &RecordBatch| -> Vec<(String, Option<i64>, Option<i64>)> {
        assert_eq!(
            b.schema().field(2).data_type(),
            &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()))
        );
        let mut out: Vec<_> = (0..b.num_rows())
            .map(|r| {
                let cell = |c: usize| reference::Cell::of(b.column(c).as_ref(), r);
                let text = match cell(0) {
                    reference::Cell::Text(t) => t,
                    other => panic!("entity as text, got {other:?}"),
                };
                let int = |c: reference::Cell| match c {
                    reference::Cell::Int(v) => Some(v as i64),
                    reference::Cell::Time(t) => Some((t / 1_000_000_000) as i64 - t0),
                    _ => None,
                };
                (text, int(cell(1)), int(cell(2)))
            })
            .collect();
        out.sort();
        out
    };
    let full = run(
        &ctx,
        &render_inline(
            &DataFusion,
            &latest_values(&DataFusion, &q, &resolve).unwrap(),
        ),
    )
    .await;
    assert_eq!(
        rows(&full),
        vec![
            ("1".into(), Some(2), Some(20)),
            ("2".into(), None, Some(30)),
            ("3".into(), Some(6), Some(1)),
        ]
    );
    q.since = Some(chrono::DateTime::from_timestamp(t0 + 10, 0).unwrap());
    let since = run(
        &ctx,
        &render_inline(
            &DataFusion,
            &latest_values(&DataFusion, &q, &resolve).unwrap(),
        ),
    )
    .await;
    assert_eq!(
        rows(&since),
        vec![
            ("1".into(), Some(2), Some(20)),
            ("2".into(), None, Some(30))
        ]
    );
    q.since = None;
    q.timestamp_column = None;
    q.created_timestamp_column = None;
    let dimension = run(
        &ctx,
        &render_inline(
            &DataFusion,
            &latest_values(&DataFusion, &q, &resolve).unwrap(),
        ),
    )
    .await;
    assert_eq!(
        rows(&dimension),
        vec![
            ("1".into(), Some(9), None),
            ("2".into(), Some(3), None),
            ("3".into(), Some(6), None),
            ("4".into(), Some(8), None),
        ]
    );
}

#[tokio::test]
async fn transformation_runs_with_placeholders_bound() {
    use quiver_provider_testkit::offline::{batch, ints, texts};
    let ctx = context();
    register(
        &ctx,
        "orders",
        batch(vec![
            ("user_id", ints(&[Some(1), Some(1), Some(2), Some(3)])),
            ("amount", ints(&[Some(10), Some(5), Some(7), Some(1)])),
        ]),
    );
    register(
        &ctx,
        "users",
        batch(vec![
            ("user_id", ints(&[Some(1), Some(2)])),
            ("name", texts(&[Some("ada"), Some("bob")])),
            ("note", texts(&[Some("x"), Some("{{ orders:v1 }}")])),
        ]),
    );
    let sql = transformation(&DataFusion, &common::totals(), &resolve).unwrap();
    let out = run(&ctx, &format!("{sql} ORDER BY u.name")).await;
    assert_eq!(
        quiver_provider_testkit::offline::text_values(&out, "name"),
        vec![Some("ada".to_string())]
    );
    assert_eq!(
        quiver_provider_testkit::offline::int_values(&out, "total"),
        vec![Some(15)]
    );
}
