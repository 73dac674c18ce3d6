//! Point-in-time training sets: one SELECT per query, in the plan each engine runs best
//! (see the crate docs), all implementing `quiver_provider_sdk::offline`'s semantics.

use std::time::Duration;

use quiver_provider_sdk::{FeatureQuery, TrainingSetQuery};

use crate::statement::Binds;
use crate::{Dialect, Param, Resolve, SqlError, Statement, ROW_ID};

/// Which plan [`point_in_time_with`] generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PitPlan {
    /// The dialect's best plan: LATERAL (Postgres), ASOF JOIN (Snowflake), window
    /// (BigQuery, DataFusion).
    #[default]
    Best,
    /// The window plan, on any dialect.
    Window,
}

/// Prefix of every name the generated SQL introduces; user columns may not use it.
const INTERNAL: &str = "__quiver_";
const LABEL: &str = "__quiver_label";
const SOURCE: &str = "__quiver_source";
const RANK: &str = "__quiver_rank";
const VALUE: &str = "__quiver_value";
const TS: &str = "__quiver_ts";

/// One SELECT producing the training set: columns in the SDK contract order (label entity columns,
/// label timestamp column if any, one column per feature named FeatureQuery::name, label value as
/// LabelQuery::output_column) **followed by ROW_ID** (BIGINT, 1..n in the order [`Dialect::label_row_number`] gives), so the
/// provider can `CREATE TABLE out AS <sql>` and read back `ORDER BY __quiver_row_id`.
///
/// # Errors
/// [`SqlError::InvalidIdentifier`] for a name the dialect refuses, [`SqlError::Invalid`]
/// for a feature without keys, clashing output columns or a duration out of range.
pub fn point_in_time(
    d: &dyn Dialect,
    q: &TrainingSetQuery,
    resolve: Resolve,
) -> Result<Statement, SqlError> {
    point_in_time_with(d, q, resolve, PitPlan::Best)
}

/// [`point_in_time`] with the plan chosen by the caller.
///
/// # Errors
/// As [`point_in_time`].
pub fn point_in_time_with(
    d: &dyn Dialect,
    q: &TrainingSetQuery,
    resolve: Resolve,
    plan: PitPlan,
) -> Result<Statement, SqlError> {
    let shape = Shape::new(d, q, resolve)?;
    let mut binds = Binds::default();
    let sql = match plan {
        PitPlan::Best if d.supports_lateral() => lateral(&shape, &mut binds)?,
        PitPlan::Best if d.supports_asof_join() => asof(&shape, &mut binds)?,
        PitPlan::Best | PitPlan::Window => window(&shape, &mut binds)?,
    };
    Ok(binds.finish(d, &sql))
}

/// A feature with its names quoted and durations in microseconds.
struct Feature {
    table: String,
    /// `(label column, feature column)`, quoted.
    keys: Vec<(String, String)>,
    value: String,
    ts: Option<String>,
    created: Option<String>,
    lag: Option<i64>,
    max_age: Option<i64>,
    /// The output column, quoted.
    name: String,
}

/// The query with every identifier validated and quoted.
struct Shape<'d> {
    d: &'d dyn Dialect,
    label_table: String,
    /// Label columns the query reads (entities, timestamp, keys, value), quoted, distinct.
    label_columns: Vec<String>,
    entities: Vec<String>,
    label_ts: Option<String>,
    label_value: String,
    output_column: String,
    features: Vec<Feature>,
}

fn micros(what: &str, feature: &str, duration: Option<Duration>) -> Result<Option<i64>, SqlError> {
    duration
        .map(|d| {
            i64::try_from(d.as_micros()).map_err(|_| {
                SqlError::Invalid(format!("{what} of feature `{feature}` is out of range"))
            })
        })
        .transpose()
}

/// Quote a column of the user's tables, refusing names our own columns use.
fn user_column(d: &dyn Dialect, name: &str) -> Result<String, SqlError> {
    if name.to_ascii_lowercase().starts_with(INTERNAL) {
        return Err(SqlError::identifier(
            name,
            format!("names starting with `{INTERNAL}` are reserved for Quiver's generated SQL"),
        ));
    }
    d.quote_identifier(name)
}

impl<'d> Shape<'d> {
    fn new(d: &'d dyn Dialect, q: &TrainingSetQuery, resolve: Resolve) -> Result<Self, SqlError> {
        let label = &q.label;
        let mut outputs: Vec<&str> = label.entity_columns.iter().map(String::as_str).collect();
        outputs.extend(label.timestamp_column.as_deref());
        outputs.extend(q.features.iter().map(|f| f.name.as_str()));
        outputs.push(&label.output_column);
        outputs.push(ROW_ID);
        for (i, name) in outputs.iter().enumerate() {
            if outputs[..i].iter().any(|o| o.eq_ignore_ascii_case(name)) {
                return Err(SqlError::Invalid(format!(
                    "output column `{name}` appears twice (label entity and timestamp columns, feature names and the label output column must be distinct)"
                )));
            }
        }

        let mut label_columns: Vec<String> = Vec::new();
        let mut add = |column: &str| -> Result<String, SqlError> {
            let quoted = user_column(d, column)?;
            if !label_columns.contains(&quoted) {
                label_columns.push(quoted.clone());
            }
            Ok(quoted)
        };
        let entities = label
            .entity_columns
            .iter()
            .map(|c| add(c))
            .collect::<Result<Vec<_>, _>>()?;
        let label_ts = label
            .timestamp_column
            .as_deref()
            .map(&mut add)
            .transpose()?;
        let label_value = add(&label.value_column)?;
        let mut features = Vec::new();
        for f in &q.features {
            if f.keys.is_empty() {
                return Err(SqlError::Invalid(format!(
                    "feature `{}` has no key columns",
                    f.name
                )));
            }
            let keys = f
                .keys
                .iter()
                .map(|k| Ok((add(&k.label_column)?, user_column(d, &k.feature_column)?)))
                .collect::<Result<Vec<_>, SqlError>>()?;
            features.push(Feature::new(d, f, keys, resolve)?);
        }
        Ok(Shape {
            d,
            label_table: d.quote_table(&resolve(&label.table)?)?,
            label_columns,
            entities,
            label_ts,
            label_value,
            output_column: user_column(d, &label.output_column)?,
            features,
        })
    }

    fn q(&self, internal: &str) -> String {
        self.d
            .quote_identifier(internal)
            .expect("internal names are valid identifiers in every dialect")
    }

    /// `alias.column` for a quoted column.
    fn col(&self, alias: &str, quoted: &str) -> String {
        format!("{}.{quoted}", self.q(alias))
    }

    /// `SELECT <label columns>, <row number> AS ROW_ID <extra> FROM <label table>`.
    fn label_select(&self, extra: &[String]) -> String {
        let mut columns = self.label_columns.clone();
        columns.push(format!(
            "{} AS {}",
            self.d.label_row_number(&self.label_columns),
            self.q(ROW_ID)
        ));
        columns.extend(extra.iter().cloned());
        format!(
            "SELECT {} FROM {} AS {}",
            columns.join(", "),
            self.label_table,
            self.q(LABEL)
        )
    }

    /// Whether feature `f` is matched in time (both sides timed) rather than taking the
    /// latest row per key.
    fn timed(&self, f: &Feature) -> bool {
        self.label_ts.is_some() && f.ts.is_some()
    }

    /// The label's timestamp as an instant, read through `alias`.
    fn label_instant(&self, alias: &str) -> String {
        let ts = self
            .label_ts
            .as_ref()
            .expect("timed features need a label timestamp");
        self.d.instant(&self.col(alias, ts))
    }

    /// Upper bound on the feature timestamp: the label time minus lag.
    fn upper(&self, f: &Feature, alias: &str, binds: &mut Binds) -> String {
        let at = self.label_instant(alias);
        match f.lag {
            Some(lag) => self
                .d
                .instant_minus_micros(&at, &binds.bind(Param::Int(lag))),
            None => at,
        }
    }

    /// Conditions on source rows (through `source`) for label rows (through `label`):
    /// keys equal, then time bounds or, untimed, a non-NULL timestamp.
    fn conditions(&self, f: &Feature, label: &str, source: &str, binds: &mut Binds) -> Vec<String> {
        let mut conditions: Vec<String> = f
            .keys
            .iter()
            .map(|(l, s)| format!("{} = {}", self.col(source, s), self.col(label, l)))
            .collect();
        match &f.ts {
            Some(ts) if self.timed(f) => {
                // Postgres compares the column as is, so an (entity, ts) index serves it.
                let at = self.d.instant(&self.col(source, ts));
                conditions.push(format!("{at} <= {}", self.upper(f, label, binds)));
                if let Some(max_age) = f.max_age {
                    let reach = f.lag.unwrap_or(0).checked_add(max_age).unwrap_or(i64::MAX);
                    let lower = self.d.instant_minus_micros(
                        &self.label_instant(label),
                        &binds.bind(Param::Int(reach)),
                    );
                    conditions.push(format!("{at} >= {lower}"));
                }
            }
            Some(ts) => conditions.push(format!("{} IS NOT NULL", self.col(source, ts))),
            None => {}
        }
        conditions
    }

    /// The tie rule as ORDER BY items over `source`: greatest timestamp, then greatest
    /// created timestamp, then greatest value, NULLs losing.
    fn tie_order(&self, f: &Feature, source: &str, with_ts: bool) -> Vec<String> {
        let mut order = Vec::new();
        if with_ts {
            if let Some(ts) = &f.ts {
                order.push(format!("{} DESC NULLS LAST", self.col(source, ts)));
            }
        }
        if let Some(created) = &f.created {
            order.push(format!("{} DESC NULLS LAST", self.col(source, created)));
        }
        order.push(format!("{} DESC NULLS LAST", self.col(source, &f.value)));
        order
    }

    /// The final projection in contract order, reading label columns through `label` and
    /// feature values from `values[i]`.
    fn output(&self, label: &str, values: &[String]) -> String {
        let mut columns: Vec<String> = self.entities.iter().map(|e| self.col(label, e)).collect();
        if let Some(ts) = &self.label_ts {
            columns.push(self.col(label, ts));
        }
        for (f, value) in self.features.iter().zip(values) {
            columns.push(format!("{value} AS {}", f.name));
        }
        columns.push(format!(
            "{} AS {}",
            self.col(label, &self.label_value),
            self.output_column
        ));
        columns.push(self.col(label, &self.q(ROW_ID)));
        columns.join(",\n  ")
    }

    /// A CTE body with the latest row per key of an untimed feature, keys renamed
    /// `__quiver_key_<i>`, value renamed `__quiver_value`.
    fn latest_per_key(&self, f: &Feature) -> String {
        let mut columns: Vec<String> = f
            .keys
            .iter()
            .enumerate()
            .map(|(i, (_, s))| {
                format!(
                    "{} AS {}",
                    self.col(SOURCE, s),
                    self.q(&format!("__quiver_key_{i}"))
                )
            })
            .collect();
        columns.push(format!(
            "{} AS {}",
            self.col(SOURCE, &f.value),
            self.q(VALUE)
        ));
        let mut conditions: Vec<String> = f
            .keys
            .iter()
            .map(|(_, s)| format!("{} IS NOT NULL", self.col(SOURCE, s)))
            .collect();
        if let Some(ts) = &f.ts {
            conditions.push(format!("{} IS NOT NULL", self.col(SOURCE, ts)));
        }
        let partition: Vec<String> = f.keys.iter().map(|(_, s)| self.col(SOURCE, s)).collect();
        let rank = format!(
            "ROW_NUMBER() OVER (PARTITION BY {} ORDER BY {})",
            partition.join(", "),
            self.tie_order(f, SOURCE, true).join(", ")
        );
        let from = format!("FROM {} AS {}", f.table, self.q(SOURCE));
        let filter = format!("WHERE {}", conditions.join(" AND "));
        if self.d.supports_qualify() {
            format!(
                "SELECT {} {from} {filter} QUALIFY {rank} = 1",
                columns.join(", ")
            )
        } else {
            let outer: Vec<String> = (0..f.keys.len())
                .map(|i| self.q(&format!("__quiver_key_{i}")))
                .chain([self.q(VALUE)])
                .collect();
            format!(
                "SELECT {} FROM (SELECT {}, {rank} AS {} {from} {filter}) AS {} WHERE {} = 1",
                outer.join(", "),
                columns.join(", "),
                self.q(RANK),
                self.q("__quiver_ranked"),
                self.q(RANK)
            )
        }
    }

    /// `ON` conditions joining a [`latest_per_key`](Self::latest_per_key) CTE aliased
    /// `alias` to the label through `label`.
    fn latest_join(&self, f: &Feature, label: &str, alias: &str) -> String {
        f.keys
            .iter()
            .enumerate()
            .map(|(i, (l, _))| {
                format!(
                    "{}.{} = {}",
                    self.q(alias),
                    self.q(&format!("__quiver_key_{i}")),
                    self.col(label, l)
                )
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }
}

impl Feature {
    fn new(
        d: &dyn Dialect,
        f: &FeatureQuery,
        keys: Vec<(String, String)>,
        resolve: Resolve,
    ) -> Result<Feature, SqlError> {
        Ok(Feature {
            table: d.quote_table(&resolve(&f.table)?)?,
            keys,
            value: user_column(d, &f.value_column)?,
            ts: f
                .timestamp_column
                .as_deref()
                .map(|c| user_column(d, c))
                .transpose()?,
            created: f
                .created_timestamp_column
                .as_deref()
                .map(|c| user_column(d, c))
                .transpose()?,
            lag: micros("lag", &f.name, f.lag)?,
            max_age: micros("max_age", &f.name, f.max_age)?,
            name: user_column(d, &f.name)?,
        })
    }
}

/// Postgres: one `LEFT JOIN LATERAL (… LIMIT 1)` per feature.
fn lateral(s: &Shape, binds: &mut Binds) -> Result<String, SqlError> {
    let mut joins = Vec::new();
    let mut values = Vec::new();
    for (i, f) in s.features.iter().enumerate() {
        let alias = format!("__quiver_feature_{i}");
        let conditions = s.conditions(f, LABEL, SOURCE, binds);
        let mut order = Vec::new();
        if let (Some(ts), true) = (&f.ts, s.timed(f)) {
            // NULL timestamps are filtered out, so plain DESC (an index scan backwards)
            // orders the same as NULLS LAST.
            order.push(format!("{} DESC", s.col(SOURCE, ts)));
            order.extend(s.tie_order(f, SOURCE, false));
        } else {
            order.extend(s.tie_order(f, SOURCE, true));
        }
        joins.push(format!(
            "LEFT JOIN LATERAL (\n  SELECT {} AS {} FROM {} AS {}\n  WHERE {}\n  ORDER BY {}\n  LIMIT 1\n) AS {} ON TRUE",
            s.col(SOURCE, &f.value),
            s.q(VALUE),
            f.table,
            s.q(SOURCE),
            conditions.join(" AND "),
            order.join(", "),
            s.q(&alias)
        ));
        values.push(s.col(&alias, &s.q(VALUE)));
    }
    Ok(format!(
        "SELECT\n  {}\nFROM ({}) AS {}\n{}",
        s.output(LABEL, &values),
        s.label_select(&[]),
        s.q(LABEL),
        joins.join("\n")
    ))
}

/// Snowflake: one `ASOF JOIN` per timed feature over its source reduced to one row per
/// (keys, ts); untimed features join their latest row per key.
fn asof(s: &Shape, binds: &mut Binds) -> Result<String, SqlError> {
    // Upper bounds must be columns of the left side of MATCH_CONDITION.
    let mut uppers = Vec::new();
    let mut ctes = Vec::new();
    let mut joins = Vec::new();
    let mut values = Vec::new();
    for (i, f) in s.features.iter().enumerate() {
        let cte = format!("__quiver_source_{i}");
        let alias = format!("__quiver_feature_{i}");
        let value = s.col(&alias, &s.q(VALUE));
        if !s.timed(f) {
            ctes.push(format!("{} AS (\n  {}\n)", s.q(&cte), s.latest_per_key(f)));
            joins.push(format!(
                "LEFT JOIN {} AS {} ON {}",
                s.q(&cte),
                s.q(&alias),
                s.latest_join(f, LABEL, &alias)
            ));
            values.push(value);
            continue;
        }
        let ts = f.ts.as_ref().expect("timed features have a timestamp");
        let upper = format!("__quiver_upper_{i}");
        uppers.push(format!("{} AS {}", s.upper(f, LABEL, binds), s.q(&upper)));
        let mut columns: Vec<String> = f
            .keys
            .iter()
            .enumerate()
            .map(|(k, (_, c))| {
                format!(
                    "{} AS {}",
                    s.col(SOURCE, c),
                    s.q(&format!("__quiver_key_{k}"))
                )
            })
            .collect();
        columns.push(format!(
            "{} AS {}",
            s.d.instant(&s.col(SOURCE, ts)),
            s.q(TS)
        ));
        columns.push(format!("{} AS {}", s.col(SOURCE, &f.value), s.q(VALUE)));
        let mut partition: Vec<String> = f.keys.iter().map(|(_, c)| s.col(SOURCE, c)).collect();
        partition.push(s.col(SOURCE, ts));
        ctes.push(format!(
            "{} AS (\n  SELECT {} FROM {} AS {}\n  WHERE {} IS NOT NULL\n  QUALIFY ROW_NUMBER() OVER (PARTITION BY {} ORDER BY {}) = 1\n)",
            s.q(&cte),
            columns.join(", "),
            f.table,
            s.q(SOURCE),
            s.col(SOURCE, ts),
            partition.join(", "),
            s.tie_order(f, SOURCE, false).join(", ")
        ));
        joins.push(format!(
            "ASOF JOIN {} AS {} MATCH_CONDITION ({} >= {}) ON {}",
            s.q(&cte),
            s.q(&alias),
            s.col(LABEL, &s.q(&upper)),
            s.col(&alias, &s.q(TS)),
            s.latest_join(f, LABEL, &alias)
        ));
        values.push(match f.max_age {
            Some(max_age) => {
                let lower = s.d.instant_minus_micros(
                    &s.col(LABEL, &s.q(&upper)),
                    &binds.bind(Param::Int(max_age)),
                );
                format!(
                    "CASE WHEN {} >= {lower} THEN {value} END",
                    s.col(&alias, &s.q(TS))
                )
            }
            None => value,
        });
    }
    let label = format!("{} AS (\n  {}\n)", s.q(LABEL), s.label_select(&uppers));
    ctes.insert(0, label);
    Ok(format!(
        "WITH {}\nSELECT\n  {}\nFROM {} AS {}\n{}",
        ctes.join(",\n"),
        s.output(LABEL, &values),
        s.q(LABEL),
        s.q(LABEL),
        joins.join("\n")
    ))
}

/// The window plan: stage after stage, each adding one feature's value to the label rows
/// (a range join ranked per row id for timed features, an equi-join on the latest row per
/// key otherwise).
fn window(s: &Shape, binds: &mut Binds) -> Result<String, SqlError> {
    let mut ctes = vec![format!("{} AS (\n  {}\n)", s.q(LABEL), s.label_select(&[]))];
    let mut carried: Vec<String> = s.label_columns.clone();
    carried.push(s.q(ROW_ID));
    let mut previous = LABEL.to_string();
    let mut values = Vec::new();
    for (i, f) in s.features.iter().enumerate() {
        let stage = format!("__quiver_stage_{i}");
        let value_column = s.q(&format!("__quiver_value_{i}"));
        let mut select: Vec<String> = carried.iter().map(|c| s.col(LABEL, c)).collect();
        let body = if s.timed(f) {
            select.push(format!("{} AS {value_column}", s.col(SOURCE, &f.value)));
            let conditions = s.conditions(f, LABEL, SOURCE, binds);
            let rank = format!(
                "ROW_NUMBER() OVER (PARTITION BY {} ORDER BY {})",
                s.col(LABEL, &s.q(ROW_ID)),
                s.tie_order(f, SOURCE, true).join(", ")
            );
            let from = format!(
                "FROM {} AS {}\n  LEFT JOIN {} AS {} ON {}",
                s.q(&previous),
                s.q(LABEL),
                f.table,
                s.q(SOURCE),
                conditions.join(" AND ")
            );
            if s.d.supports_qualify() {
                // BigQuery accepts QUALIFY only next to a WHERE, GROUP BY or HAVING.
                format!(
                    "SELECT {}\n  {from}\n  WHERE TRUE\n  QUALIFY {rank} = 1",
                    select.join(", ")
                )
            } else {
                let mut outer = carried.clone();
                outer.push(value_column.clone());
                format!(
                    "SELECT {} FROM (\n  SELECT {}, {rank} AS {}\n  {from}\n  ) AS {} WHERE {} = 1",
                    outer.join(", "),
                    select.join(", "),
                    s.q(RANK),
                    s.q("__quiver_ranked"),
                    s.q(RANK)
                )
            }
        } else {
            let latest = format!("__quiver_latest_{i}");
            ctes.push(format!(
                "{} AS (\n  {}\n)",
                s.q(&latest),
                s.latest_per_key(f)
            ));
            select.push(format!("{}.{} AS {value_column}", s.q(&latest), s.q(VALUE)));
            format!(
                "SELECT {}\n  FROM {} AS {}\n  LEFT JOIN {} AS {} ON {}",
                select.join(", "),
                s.q(&previous),
                s.q(LABEL),
                s.q(&latest),
                s.q(&latest),
                s.latest_join(f, LABEL, &latest)
            )
        };
        ctes.push(format!("{} AS (\n  {body}\n)", s.q(&stage)));
        carried.push(value_column.clone());
        values.push(s.col(LABEL, &value_column));
        previous = stage;
    }
    Ok(format!(
        "WITH {}\nSELECT\n  {}\nFROM {} AS {}",
        ctes.join(",\n"),
        s.output(LABEL, &values),
        s.q(&previous),
        s.q(LABEL)
    ))
}
