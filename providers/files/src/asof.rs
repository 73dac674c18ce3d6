//! The point-in-time join as an as-of join on Arrow arrays.
//!
//! DataFusion has no `ASOF JOIN`, and a range join (`key = key AND ts <= label_ts`) would
//! materialize every earlier feature row per label before keeping one. Instead, per
//! feature: number the distinct source keys (a hash of the value for a single integer key,
//! of [`RowConverter`] bytes for any other key), bucket the source rows by key id with a
//! counting sort, and sort each (small) bucket by (feature_ts, created_ts, value) with
//! NULLs first. Then each label row, in label order, binary-searches its key's bucket for
//! the last row at or before its bound (label_ts − lag): the greatest `feature_ts`, its
//! ties resolved by the greatest `created_ts` then the greatest value, NULLs losing because
//! they sort first. `max_age` is then a check on that one row: the newest row in the window
//! exists iff the newest row before the bound is inside it. The label side is never sorted
//! and the output is already in label order. `O(n + Σ b log b + m log b)` time for `n`
//! source rows in buckets of `b` rows and `m` label rows, `O(n + m)` memory.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use arrow::array::{make_comparator, Array, ArrayRef, AsArray, UInt32Array};
use arrow::compute::SortOptions;
use arrow::datatypes::{Int64Type, TimestampNanosecondType};
use arrow::error::ArrowError;
use arrow::row::{RowConverter, SortField};

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

/// The key id of a row that can match nothing: a NULL key part, or (label side) a key no
/// source row has.
const NO_KEY: u32 = u32::MAX;

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
    let rows = source.value.len();
    // Row indices and key ids are u32, with u32::MAX reserved for NO_KEY.
    if rows >= NO_KEY as usize {
        return Err(ArrowError::ComputeError(format!(
            "a feature source of {rows} rows is too large for one point-in-time join"
        )));
    }
    let (source_ids, label_ids, key_count) = key_ids(source.keys, labels.keys)?;
    let buckets = Buckets::new(source, &source_ids, key_count)?;

    // A dimension, or a label without a timestamp: the latest row, unbounded.
    let timed = source.time.is_some() && labels.time.is_some();
    let label_time = labels.time.filter(|_| timed).map(times);
    let max_age = if timed { window.max_age } else { None };
    let picked = (0..labels.rows).map(|row| {
        let id = label_ids[row];
        if id == NO_KEY {
            return None;
        }
        let bound = match label_time {
            Some(t) if t.is_null(row) => return None,
            Some(t) => t.value(row).saturating_sub(window.lag),
            None => i64::MAX,
        };
        let (time, source_row) = buckets.last_at_or_before(id, bound)?;
        let fresh = max_age.is_none_or(|age| time >= bound.saturating_sub(age));
        fresh.then_some(source_row)
    });
    Ok(picked.collect())
}

/// Source rows grouped by key id, each group sorted so its last row at or before a bound
/// is the one the semantics pick.
struct Buckets {
    /// Group `id` is `entries[starts[id]..starts[id + 1]]`.
    starts: Vec<usize>,
    /// (feature_ts, source row); feature_ts is 0 for a dimension.
    entries: Vec<(i64, u32)>,
}

impl Buckets {
    fn new(source: &Source<'_>, ids: &[u32], key_count: usize) -> Result<Self, ArrowError> {
        let time = source.time.map(times);
        // Rows without a key or a feature_ts never match.
        let usable = |row: usize| ids[row] != NO_KEY && time.is_none_or(|t| t.is_valid(row));

        // Counting sort by key id: count, prefix-sum, scatter.
        let mut starts = vec![0usize; key_count + 1];
        for (row, &id) in ids.iter().enumerate() {
            if usable(row) {
                starts[id as usize + 1] += 1;
            }
        }
        for id in 0..key_count {
            starts[id + 1] += starts[id];
        }
        let mut entries = vec![(0i64, 0u32); starts[key_count]];
        let mut next = starts.clone();
        for (row, &id) in ids.iter().enumerate() {
            if usable(row) {
                let at = &mut next[id as usize];
                entries[*at] = (time.map_or(0, |t| t.value(row)), row as u32);
                *at += 1;
            }
        }

        // Equal feature_ts: created_ts then value, NULLs first. The comparators are only
        // called on such ties, which are rare in timestamped data.
        let nulls_first = SortOptions {
            descending: false,
            nulls_first: true,
        };
        let mut ties = Vec::new();
        if let Some(created) = source.created {
            ties.push(make_comparator(
                created.as_ref(),
                created.as_ref(),
                nulls_first,
            )?);
        }
        ties.push(make_comparator(
            source.value.as_ref(),
            source.value.as_ref(),
            nulls_first,
        )?);
        for group in starts.windows(2) {
            entries[group[0]..group[1]].sort_unstable_by(|a, b| {
                a.0.cmp(&b.0).then_with(|| {
                    let (x, y) = (a.1 as usize, b.1 as usize);
                    ties.iter()
                        .map(|tie| tie(x, y))
                        .find(|o| o.is_ne())
                        .unwrap_or(std::cmp::Ordering::Equal)
                })
            });
        }
        Ok(Buckets { starts, entries })
    }

    /// The (feature_ts, row) of the last row of key `id` with feature_ts <= `bound`.
    fn last_at_or_before(&self, id: u32, bound: i64) -> Option<(i64, u32)> {
        let group = &self.entries[self.starts[id as usize]..self.starts[id as usize + 1]];
        let before = group.partition_point(|&(time, _)| time <= bound);
        before.checked_sub(1).map(|last| group[last])
    }
}

/// Key ids of the source rows (dense, `0..count`) and of the label rows (the id of the
/// equal source key, or [`NO_KEY`]), and `count`.
fn key_ids(
    source: &[ArrayRef],
    labels: &[ArrayRef],
) -> Result<(Vec<u32>, Vec<u32>, usize), ArrowError> {
    if let ([source], [labels]) = (source, labels) {
        if let (Some(source), Some(labels)) = (
            source.as_primitive_opt::<Int64Type>(),
            labels.as_primitive_opt::<Int64Type>(),
        ) {
            let mut ids: HashMap<i64, u32, BuildHasherDefault<IntHasher>> = HashMap::default();
            let source_ids = number(&mut ids, source.iter());
            let label_ids = find(&ids, labels.iter());
            return Ok((source_ids, label_ids, ids.len()));
        }
    }
    // Any other key: compare the row-format bytes of all key columns.
    let fields = source
        .iter()
        .map(|k| SortField::new(k.data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let source_rows = converter.convert_columns(source)?;
    let label_rows = converter.convert_columns(labels)?;
    let present = |columns: &[ArrayRef], row: usize| (!any_null(columns, row)).then_some(row);
    let mut ids: HashMap<&[u8], u32> = HashMap::new();
    let source_ids = number(
        &mut ids,
        (0..source_rows.num_rows()).map(|r| present(source, r).map(|r| source_rows.row(r).data())),
    );
    let label_ids = find(
        &ids,
        (0..label_rows.num_rows()).map(|r| present(labels, r).map(|r| label_rows.row(r).data())),
    );
    Ok((source_ids, label_ids, ids.len()))
}

/// The id of each key, numbering keys not seen before in `ids`; NULL keys get [`NO_KEY`].
fn number<K, S>(ids: &mut HashMap<K, u32, S>, keys: impl Iterator<Item = Option<K>>) -> Vec<u32>
where
    K: std::hash::Hash + Eq,
    S: std::hash::BuildHasher,
{
    keys.map(|key| match key {
        Some(key) => {
            let next = ids.len() as u32;
            *ids.entry(key).or_insert(next)
        }
        None => NO_KEY,
    })
    .collect()
}

/// The id of each key in `ids`, [`NO_KEY`] for NULL and unknown keys.
fn find<K, S>(ids: &HashMap<K, u32, S>, keys: impl Iterator<Item = Option<K>>) -> Vec<u32>
where
    K: std::hash::Hash + Eq,
    S: std::hash::BuildHasher,
{
    keys.map(|key| key.and_then(|k| ids.get(&k).copied()).unwrap_or(NO_KEY))
        .collect()
}

/// A fast hash for integer keys: the 128-bit product with an odd constant folded to 64
/// bits, so every input bit reaches the low bits the table indexes with (the default
/// SipHash is several times slower on millions of keys). Keys come from the user's data,
/// so `HashDoS` resistance is not a goal here.
#[derive(Default)]
struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, value: u64) {
        let product = u128::from(self.0 ^ value) * 0x9E37_79B9_7F4A_7C15;
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }

    fn write_i64(&mut self, value: i64) {
        self.write_u64(value as u64);
    }
}
