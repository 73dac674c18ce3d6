//! The point-in-time join as a sort-merge as-of join on Arrow arrays.
//!
//! DataFusion has no `ASOF JOIN`, and a range join (`key = key AND ts <= label_ts`) would
//! materialize every earlier feature row per label before keeping one. Instead, per
//! feature: encode the keys with one [`RowConverter`] (any key types, composite keys) and
//! number the distinct keys, sort the source rows by (key id, feature_ts, created_ts,
//! value) with NULLs first, sort the label rows by (key id, label_ts − lag), and walk both
//! once. Within a key the source pointer only moves forward, and the last row at or before
//! the label's bound is the answer: the greatest `feature_ts`, its ties resolved by the
//! greatest `created_ts` then the greatest value, NULLs losing because they sort first.
//! `max_age` is then a check on that one row: the newest row in the window exists iff the
//! newest row before the bound is inside it. `O((n + m) log(n + m))` time, `O(n + m)`
//! memory.

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use arrow::compute::SortOptions;
use arrow::datatypes::TimestampNanosecondType;
use arrow::error::ArrowError;
use arrow::row::{RowConverter, Rows, SortField};

/// The source side of one feature; all arrays the same length. Times are
/// `Timestamp(Nanosecond, "UTC")` arrays (see [`crate::training`]).
pub(crate) struct Source<'a> {
    pub keys: &'a [ArrayRef],
    /// `None` for a dimension (a feature without a timestamp).
    pub time: Option<&'a ArrayRef>,
    pub created: Option<&'a ArrayRef>,
    pub value: &'a ArrayRef,
}

/// The label side: key columns matching the source's types, and the label times.
pub(crate) struct Labels<'a> {
    pub keys: &'a [ArrayRef],
    /// `None` when the label has no timestamp: every feature's latest row.
    pub time: Option<&'a ArrayRef>,
    pub rows: usize,
}

/// Shift and window of one feature, in nanoseconds.
#[derive(Clone, Copy)]
pub(crate) struct Window {
    pub lag: i64,
    pub max_age: Option<i64>,
}

fn times(array: &ArrayRef) -> &arrow::array::PrimitiveArray<TimestampNanosecondType> {
    array.as_primitive::<TimestampNanosecondType>()
}

fn any_null(columns: &[ArrayRef], row: usize) -> bool {
    columns.iter().any(|c| c.is_null(row))
}

/// For each label row (in label order), the index of the source row the semantics pick,
/// NULL when none does.
pub(crate) fn pick(
    labels: &Labels<'_>,
    source: &Source<'_>,
    window: Window,
) -> Result<UInt32Array, ArrowError> {
    let key_fields: Vec<SortField> = source
        .keys
        .iter()
        .map(|k| SortField::new(k.data_type().clone()))
        .collect();
    let keys = RowConverter::new(key_fields)?;
    let source_keys = keys.convert_columns(source.keys)?;
    let label_keys = keys.convert_columns(labels.keys)?;

    // Tie-break order after the timestamp: created_ts then value, NULLs first.
    let nulls_first = SortOptions {
        descending: false,
        nulls_first: true,
    };
    let mut tie_columns = Vec::new();
    tie_columns.extend(source.created.cloned());
    tie_columns.push(source.value.clone());
    let ties = RowConverter::new(
        tie_columns
            .iter()
            .map(|c| SortField::new_with_options(c.data_type().clone(), nulls_first))
            .collect(),
    )?;
    let tie_rows = ties.convert_columns(&tie_columns)?;

    // Dense ids for the key bytes, shared by both sides: sorting and merging then compare
    // integers instead of byte strings (equal keys, equal ids; the order among ids is
    // arbitrary but the same on both sides, which is all the merge needs).
    let mut ids = HashMap::new();
    let source_ids = key_ids(&mut ids, &source_keys);
    let label_ids = key_ids(&mut ids, &label_keys);

    let source_time: Vec<i64> = match source.time {
        Some(t) => times(t).values().to_vec(),
        None => vec![0; source.value.len()],
    };
    let mut candidates: Vec<usize> = (0..source.value.len())
        .filter(|&r| !any_null(source.keys, r) && source.time.is_none_or(|t| t.is_valid(r)))
        .collect();
    candidates.sort_unstable_by(|&a, &b| {
        (source_ids[a], source_time[a])
            .cmp(&(source_ids[b], source_time[b]))
            .then_with(|| tie_rows.row(a).cmp(&tie_rows.row(b)))
    });

    // A dimension, or a label without a timestamp: the latest row, unbounded.
    let timed = source.time.is_some() && labels.time.is_some();
    let label_time = labels.time.filter(|_| timed).map(times);
    let targets: Vec<i64> = (0..labels.rows)
        .map(|row| label_time.map_or(i64::MAX, |t| t.value(row).saturating_sub(window.lag)))
        .collect();
    let mut order: Vec<usize> = (0..labels.rows)
        .filter(|&r| !any_null(labels.keys, r) && label_time.is_none_or(|t| t.is_valid(r)))
        .collect();
    order.sort_unstable_by_key(|&r| (label_ids[r], targets[r]));

    let picked = merge(
        &order,
        &label_ids,
        &targets,
        &candidates,
        &source_ids,
        &source_time,
        if timed { window.max_age } else { None },
    );
    Ok(picked.into_iter().collect())
}

/// The id of each row's key, numbering keys not seen before in `ids`.
fn key_ids<'a>(ids: &mut HashMap<&'a [u8], u32>, rows: &'a Rows) -> Vec<u32> {
    (0..rows.num_rows())
        .map(|r| {
            let next = ids.len() as u32;
            *ids.entry(rows.row(r).data()).or_insert(next)
        })
        .collect()
}

fn merge(
    order: &[usize],
    label_ids: &[u32],
    targets: &[i64],
    candidates: &[usize],
    source_ids: &[u32],
    source_time: &[i64],
    max_age: Option<i64>,
) -> Vec<Option<u32>> {
    let mut picked = vec![None; label_ids.len()];
    // `group` is the first candidate whose key id is >= the current label's; `next` the
    // first candidate of that key past the current label's bound.
    let mut group = 0;
    let mut next = 0;
    let mut current: Option<u32> = None;
    for &label in order {
        let key = label_ids[label];
        if current != Some(key) {
            while group < candidates.len() && source_ids[candidates[group]] < key {
                group += 1;
            }
            next = group;
            current = Some(key);
        }
        let bound = targets[label];
        while next < candidates.len()
            && source_ids[candidates[next]] == key
            && source_time[candidates[next]] <= bound
        {
            next += 1;
        }
        if next > group {
            let row = candidates[next - 1];
            let fresh = max_age.is_none_or(|age| source_time[row] >= bound.saturating_sub(age));
            if fresh {
                picked[label] = Some(row as u32);
            }
        }
    }
    picked
}
