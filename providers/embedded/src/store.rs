//! [`EmbeddedOnlineStore`]: the schema, the conditional upsert and the one-statement
//! multi-get.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use quiver_provider_sdk::{
    HealthReport, OnlineCapabilities, OnlineRead, OnlineRow, OnlineStore, OnlineTable,
    OnlineTableRef, Provider, ProviderError, WriteReport,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use crate::encoding::EncodedValue;

/// Read connections; in WAL mode reads never wait for the writer.
const READ_CONNECTIONS: u32 = 4;

/// How long a write waits for another process holding the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a health check may take before the store is reported unhealthy.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Rows per `INSERT` statement: 8 bound variables each, far below SQLite's limit of
/// 32766 variables per statement, and large enough that statement overhead is noise.
const WRITE_CHUNK_ROWS: usize = 1000;

/// The schema version this crate writes, kept in `PRAGMA user_version` (set by
/// [`SCHEMA`]).
const SCHEMA_VERSION: i64 = 1;

/// `online_tables` is the catalogue; `online_values` holds the latest value per
/// `(feature, variant, entity)`, deleted with its catalogue row by the foreign key.
/// `ttl_us` and `event_time_us` are microseconds, so sub-second TTLs are kept exactly.
const SCHEMA: &str = "\
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS online_tables (
    feature TEXT NOT NULL,
    variant TEXT NOT NULL,
    ttl_us INTEGER CHECK (ttl_us IS NULL OR ttl_us >= 0),
    PRIMARY KEY (feature, variant)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS online_values (
    feature TEXT NOT NULL,
    variant TEXT NOT NULL,
    entity TEXT NOT NULL,
    value_type TEXT NOT NULL
        CHECK (value_type IN ('null', 'bool', 'int', 'float', 'string', 'timestamp')),
    value_int INTEGER,
    value_real REAL,
    value_text TEXT,
    event_time_us INTEGER NOT NULL,
    PRIMARY KEY (feature, variant, entity),
    FOREIGN KEY (feature, variant) REFERENCES online_tables (feature, variant) ON DELETE CASCADE
) WITHOUT ROWID;
PRAGMA user_version = 1;
COMMIT;";

/// One statement answers a whole multi-get: the catalogue rows of the requested tables
/// (for existence and TTL) and every stored value, from one snapshot. Tables (`?1`, a
/// JSON array of `[feature, variant]`) and entities (`?2`, a JSON array of strings) are
/// passed as two JSON parameters, so no request size meets SQLite's bound-variable
/// limit and no IN list needs chunking. Both halves search the primary keys.
const MULTI_GET: &str = "\
WITH req AS (
    SELECT key AS table_idx,
           json_extract(value, '$[0]') AS feature,
           json_extract(value, '$[1]') AS variant
    FROM json_each(?1)
)
SELECT req.table_idx, 1 AS is_catalogue, t.ttl_us, NULL AS entity,
       NULL AS value_type, NULL AS value_int, NULL AS value_real, NULL AS value_text,
       NULL AS event_time_us
FROM req JOIN online_tables t ON t.feature = req.feature AND t.variant = req.variant
UNION ALL
SELECT req.table_idx, 0, NULL, v.entity,
       v.value_type, v.value_int, v.value_real, v.value_text, v.event_time_us
FROM req JOIN online_values v ON v.feature = req.feature AND v.variant = req.variant
WHERE v.entity IN (SELECT value FROM json_each(?2))";

#[derive(sqlx::FromRow)]
struct MultiGetRow {
    table_idx: i64,
    is_catalogue: bool,
    ttl_us: Option<i64>,
    entity: Option<String>,
    value_type: Option<String>,
    value_int: Option<i64>,
    value_real: Option<f64>,
    value_text: Option<String>,
    event_time_us: Option<i64>,
}

/// The embedded online store: one SQLite file on local disk. See the crate docs.
#[derive(Debug, Clone)]
pub struct EmbeddedOnlineStore {
    path: PathBuf,
    /// Exactly one connection: in-process writers queue here in order.
    writer: SqlitePool,
    reader: SqlitePool,
}

impl EmbeddedOnlineStore {
    /// Open the database file at `path`, creating it and its parent directories when
    /// absent.
    ///
    /// # Errors
    /// [`ProviderError::InvalidConfig`] when the directory cannot be created or the file
    /// cannot be opened as an online-store database.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, ProviderError> {
        let path = path.as_ref().to_path_buf();
        let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if !parent.as_os_str().is_empty() {
            if let Err(e) = tokio::fs::create_dir_all(parent.clone()).await {
                let what = format!("cannot create directory {}: {e}", parent.display());
                return Err(open_error(&path, &what));
            }
        }
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let writer = match SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone())
            .await
        {
            Ok(pool) => pool,
            Err(e) => return Err(open_error(&path, &format!("cannot open the database: {e}"))),
        };
        if let Err(what) = migrate(&writer).await {
            return Err(open_error(
                &path,
                &format!("cannot prepare the schema: {what}"),
            ));
        }
        let reader = match SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(options.read_only(true))
            .await
        {
            Ok(pool) => pool,
            Err(e) => {
                let what = format!("cannot open the database for reading: {e}");
                return Err(open_error(&path, &what));
            }
        };
        tracing::info!(path = %path.display(), "embedded online store ready");
        Ok(EmbeddedOnlineStore {
            path,
            writer,
            reader,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open_error(path: &Path, what: &str) -> ProviderError {
    ProviderError::InvalidConfig(format!("embedded online store {}: {what}", path.display()))
}

/// Create the schema when absent (idempotently, in one transaction); refuse a file
/// written by a newer schema.
async fn migrate(writer: &SqlitePool) -> Result<(), sqlx::Error> {
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(writer)
        .await?;
    if version > SCHEMA_VERSION {
        return Err(sqlx::Error::Protocol(format!(
            "schema version {version} is newer than this binary understands ({SCHEMA_VERSION})"
        )));
    }
    sqlx::raw_sql(SCHEMA).execute(writer).await?;
    Ok(())
}

fn table_not_found(table: &OnlineTableRef) -> ProviderError {
    ProviderError::NotFound(format!(
        "online table {}:{} does not exist",
        table.feature, table.variant
    ))
}

/// Busy, I/O and pool errors may pass; anything else will not by retrying.
fn db_error(e: sqlx::Error) -> ProviderError {
    match &e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            ProviderError::Unreachable(format!("embedded online store: {e}"))
        }
        sqlx::Error::Database(db) if db.message().contains("locked") => {
            ProviderError::Unreachable(format!("embedded online store: {e}"))
        }
        _ => ProviderError::Other(format!("embedded online store: {e}")),
    }
}

/// A TTL in stored microseconds; a TTL too long to represent never expires anything.
fn ttl_micros(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX)
}

fn event_time(us: i64) -> Result<DateTime<Utc>, ProviderError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| ProviderError::Other(format!("corrupt online value: event time {us}")))
}

#[async_trait]
impl Provider for EmbeddedOnlineStore {
    fn kind(&self) -> &str {
        "embedded"
    }

    async fn health(&self) -> HealthReport {
        let started = Instant::now();
        let probe = sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(&self.reader);
        let (healthy, message) = match tokio::time::timeout(HEALTH_TIMEOUT, probe).await {
            Ok(Ok(_)) => (
                true,
                format!("database {} is readable", self.path.display()),
            ),
            Ok(Err(e)) => (false, format!("database {}: {e}", self.path.display())),
            Err(_) => (
                false,
                format!(
                    "database {} did not answer within {HEALTH_TIMEOUT:?}",
                    self.path.display()
                ),
            ),
        };
        HealthReport {
            healthy,
            message,
            latency: started.elapsed(),
        }
    }
}

#[async_trait]
impl OnlineStore for EmbeddedOnlineStore {
    fn capabilities(&self) -> OnlineCapabilities {
        OnlineCapabilities {
            ttl: true,
            event_time_monotonic_writes: true,
            multi_get: true,
        }
    }

    async fn create_table(&self, table: &OnlineTable) -> Result<(), ProviderError> {
        let ttl_us = table.ttl.map(ttl_micros);
        sqlx::query(
            "INSERT INTO online_tables (feature, variant, ttl_us) VALUES (?1, ?2, ?3) \
             ON CONFLICT (feature, variant) DO UPDATE SET ttl_us = excluded.ttl_us",
        )
        .bind(&table.table.feature)
        .bind(&table.table.variant)
        .bind(ttl_us)
        .execute(&self.writer)
        .await
        .map_err(db_error)?;
        tracing::info!(
            feature = %table.table.feature,
            variant = %table.table.variant,
            ttl_us,
            "online table created"
        );
        Ok(())
    }

    async fn delete_table(&self, table: &OnlineTableRef) -> Result<(), ProviderError> {
        // The foreign key's ON DELETE CASCADE removes the values in the same statement.
        let deleted = sqlx::query("DELETE FROM online_tables WHERE feature = ?1 AND variant = ?2")
            .bind(&table.feature)
            .bind(&table.variant)
            .execute(&self.writer)
            .await
            .map_err(db_error)?
            .rows_affected();
        tracing::info!(
            feature = %table.feature,
            variant = %table.variant,
            existed = deleted > 0,
            "online table deleted"
        );
        Ok(())
    }

    async fn write(
        &self,
        table: &OnlineTableRef,
        rows: &[OnlineRow],
    ) -> Result<WriteReport, ProviderError> {
        let started = Instant::now();
        // Within one call, only the newest row per entity can win (the first of equal
        // event times, as against the store); the rows it supersedes count as skipped.
        let mut newest: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            newest
                .entry(row.entity.as_str())
                .and_modify(|best| {
                    if row.event_time.timestamp_micros() > rows[*best].event_time.timestamp_micros()
                    {
                        *best = i;
                    }
                })
                .or_insert(i);
        }
        let mut winners: Vec<usize> = newest.into_values().collect();
        winners.sort_unstable();

        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_error)?;
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM online_tables WHERE feature = ?1 AND variant = ?2")
                .bind(&table.feature)
                .bind(&table.variant)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
        if exists.is_none() {
            return Err(table_not_found(table));
        }
        let mut written = 0;
        for chunk in winners.chunks(WRITE_CHUNK_ROWS) {
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO online_values (feature, variant, entity, value_type, value_int, \
                 value_real, value_text, event_time_us) ",
            );
            insert.push_values(chunk, |mut b, &i| {
                let row = &rows[i];
                let value = EncodedValue::encode(&row.value);
                b.push_bind(&table.feature)
                    .push_bind(&table.variant)
                    .push_bind(&row.entity)
                    .push_bind(value.value_type)
                    .push_bind(value.value_int)
                    .push_bind(value.value_real)
                    .push_bind(value.value_text)
                    .push_bind(row.event_time.timestamp_micros());
            });
            // Decided per key inside SQLite's write lock: an older or equal event time
            // leaves the stored row untouched and is not counted as a change.
            insert.push(
                " ON CONFLICT (feature, variant, entity) DO UPDATE SET \
                 value_type = excluded.value_type, value_int = excluded.value_int, \
                 value_real = excluded.value_real, value_text = excluded.value_text, \
                 event_time_us = excluded.event_time_us \
                 WHERE excluded.event_time_us > online_values.event_time_us",
            );
            written += insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(db_error)?
                .rows_affected();
        }
        tx.commit().await.map_err(db_error)?;
        let report = WriteReport {
            written,
            skipped_older: rows.len() as u64 - written,
        };
        tracing::debug!(
            feature = %table.feature,
            variant = %table.variant,
            rows = rows.len(),
            written = report.written,
            skipped_older = report.skipped_older,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "online write"
        );
        Ok(report)
    }

    async fn multi_get(
        &self,
        tables: &[OnlineTableRef],
        entities: &[String],
    ) -> Result<Vec<Vec<OnlineRead>>, ProviderError> {
        let mut answer = vec![vec![OnlineRead::Missing; tables.len()]; entities.len()];
        if tables.is_empty() {
            return Ok(answer);
        }
        let started = Instant::now();
        let table_keys: Vec<[&str; 2]> = tables
            .iter()
            .map(|t| [t.feature.as_str(), t.variant.as_str()])
            .collect();
        let table_json =
            serde_json::to_string(&table_keys).map_err(|e| ProviderError::Other(e.to_string()))?;
        let entity_json =
            serde_json::to_string(entities).map_err(|e| ProviderError::Other(e.to_string()))?;
        let rows: Vec<MultiGetRow> = sqlx::query_as(MULTI_GET)
            .bind(table_json)
            .bind(entity_json)
            .fetch_all(&self.reader)
            .await
            .map_err(db_error)?;

        // An entity may be asked for more than once; every position gets the value.
        let mut positions: HashMap<&str, Vec<usize>> = HashMap::with_capacity(entities.len());
        for (i, entity) in entities.iter().enumerate() {
            positions.entry(entity.as_str()).or_default().push(i);
        }
        let mut found = vec![false; tables.len()];
        let mut ttl_us: Vec<Option<i64>> = vec![None; tables.len()];
        let now_us = Utc::now().timestamp_micros();
        let mut values = Vec::with_capacity(rows.len());
        for row in rows {
            let t = usize::try_from(row.table_idx)
                .ok()
                .filter(|t| *t < tables.len())
                .ok_or_else(|| {
                    ProviderError::Other(format!("unexpected table index {}", row.table_idx))
                })?;
            if row.is_catalogue {
                found[t] = true;
                ttl_us[t] = row.ttl_us;
            } else {
                values.push((t, row));
            }
        }
        if let Some(missing) = found.iter().position(|f| !f) {
            return Err(table_not_found(&tables[missing]));
        }
        for (t, row) in values {
            let (Some(entity), Some(value_type), Some(event_time_us)) =
                (row.entity, row.value_type, row.event_time_us)
            else {
                return Err(ProviderError::Other(
                    "corrupt online value: no entity, type or event time".into(),
                ));
            };
            let read = OnlineRead::stored(event_time(event_time_us)?, ttl_us[t], now_us, || {
                EncodedValue {
                    value_type,
                    value_int: row.value_int,
                    value_real: row.value_real,
                    value_text: row.value_text,
                }
                .decode()
            })?;
            for &e in positions.get(entity.as_str()).into_iter().flatten() {
                answer[e][t] = read.clone();
            }
        }
        tracing::debug!(
            tables = tables.len(),
            entities = entities.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "online multi-get"
        );
        Ok(answer)
    }
}
