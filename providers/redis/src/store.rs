//! [`RedisOnlineStore`]: the connection, the registry, pipelined scripted writes and the
//! one-pipeline multi-get.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use quiver_provider_sdk::{
    HealthReport, OnlineCapabilities, OnlineRead, OnlineRow, OnlineStore, OnlineTable,
    OnlineTableRef, Provider, ProviderError, WriteReport,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo, Script};

use crate::error::StoreError;
use crate::{keys, scripts, value, wire};

/// How long one connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long Redis may take to answer one command or pipeline on an open connection.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The bound on one round trip as the caller sees it (connecting included): past it, the
/// call answers [`ProviderError::Unreachable`].
pub const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `multi_get` trusts a registry entry (a table's generation and TTL) it has
/// read, instead of reading it again in every request's pipeline. Halves what Redis does
/// per read (half the fields looked up and sent) at the cost of a bounded staleness: a
/// table deleted or re-created through another replica is seen within this long (the
/// same bound as the catalog cache in serving); through this store, at once.
pub const REGISTRY_CACHE: Duration = Duration::from_millis(500);

/// Rows per call of the write script: enough that the call's own cost is noise next to
/// the rows' work, few enough that one call blocks Redis for well under a millisecond.
pub const WRITE_SCRIPT_ROWS: usize = 100;

/// Rows per write pipeline: large enough that the round trip is noise, small
/// enough that one pipeline answers well within [`RESPONSE_TIMEOUT`] and does not hold
/// the server (single-threaded) for long.
pub const WRITE_PIPELINE_ROWS: usize = 500;

/// Entity hashes per `SCAN` step and sweep pipeline.
const SWEEP_BATCH: usize = 500;

/// How long a value stays stored (reading `Expired`) after its table's TTL has passed,
/// before Redis may drop the key: see the README, "TTL and key expiry".
pub const EXPIRY_GRACE: Duration = Duration::from_secs(24 * 3600);

/// The namespace [`crate::RedisFactory`] uses.
pub const DEFAULT_NAMESPACE: &str = "quiver";

/// Where and how to connect, and which namespace of keys to use.
#[derive(Clone)]
pub struct RedisOptions {
    /// `host:port`, `host` (port 6379), `[v6addr]:port`, or a `redis://` URL.
    pub address: String,
    /// The database number; overrides the URL's when not 0.
    pub db: u32,
    /// Overrides a password in the URL.
    pub password: Option<String>,
    /// Every key of this store carries it, so several stores (or test runs) share one
    /// Redis database without meeting each other's keys.
    pub namespace: String,
}

impl std::fmt::Debug for RedisOptions {
    // By hand, so the password never reaches a log line; the address may hold one too.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("address", &redact_address(&self.address))
            .field("db", &self.db)
            .field("password", &self.password.as_ref().map(|_| "**redacted**"))
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// The address with any `user:password@` of a URL masked.
pub(crate) fn redact_address(address: &str) -> String {
    match address.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://**redacted**@{host}"),
            None => address.to_string(),
        },
        None => address.to_string(),
    }
}

/// Parse an address into connection settings.
///
/// # Errors
/// A message for the user; it never contains the password.
pub(crate) fn connection_info(options: &RedisOptions) -> Result<(ConnectionInfo, String), String> {
    let address = options.address.trim();
    if address.is_empty() {
        return Err("`address` is empty; write host:port or redis://host:port".into());
    }
    let info = if let Some((scheme, _)) = address.split_once("://") {
        match scheme {
            "redis" => address
                .into_connection_info()
                .map_err(|e| format!("`address` is not a valid redis:// URL: {e}"))?,
            "rediss" => {
                return Err(
                    "`address` uses TLS (rediss://), which this build does not include".into(),
                )
            }
            other => {
                return Err(format!(
                    "`address` has the scheme `{other}://`; use host:port or redis://"
                ))
            }
        }
    } else {
        let (host, port) = match address.rsplit_once(':') {
            Some((host, port))
                if !host.is_empty() && (!host.contains(':') || host.starts_with('[')) =>
            {
                let port: u16 = port
                    .parse()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("`address` has an invalid port `{port}`"))?;
                (host, port)
            }
            Some(_) => {
                return Err(
                    "`address` is not host:port (write an IPv6 address as [addr]:port)".into(),
                )
            }
            None => (address, 6379),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty()
            || host
                .chars()
                .any(|c| c.is_whitespace() || c == '/' || c == '@')
        {
            return Err("`address` has an invalid host".into());
        }
        ConnectionAddr::Tcp(host.to_string(), port)
            .into_connection_info()
            .map_err(|e| format!("`address`: {e}"))?
    };
    let from_url = info.redis_settings();
    let db = if options.db != 0 {
        i64::from(options.db)
    } else {
        from_url.db()
    };
    let mut settings = RedisConnectionInfo::default().set_db(db);
    if let Some(user) = from_url.username() {
        settings = settings.set_username(user);
    }
    match (&options.password, from_url.password()) {
        (Some(p), _) => settings = settings.set_password(p),
        (None, Some(p)) => settings = settings.set_password(p),
        (None, None) => {}
    }
    let target = match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("{host}:{port} db {db}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("{host}:{port} db {db}"),
        ConnectionAddr::Unix(path) => format!("{} db {db}", path.display()),
        // Non-exhaustive upstream; we build only the forms above.
        _ => format!("redis db {db}"),
    };
    Ok((info.set_redis_settings(settings), target))
}

/// Where the read path connects: the same server, database and credentials as the
/// `redis` crate's connection. `None` for a non-TCP address.
fn read_endpoint(info: &ConnectionInfo) -> Option<wire::Endpoint> {
    let ConnectionAddr::Tcp(host, port) = info.addr() else {
        return None;
    };
    let settings = info.redis_settings();
    Some(wire::Endpoint {
        host: host.clone(),
        port: *port,
        db: settings.db(),
        username: settings.username().map(str::to_string),
        password: settings.password().map(str::to_string),
    })
}

/// What `multi_get` keeps of the registry for [`REGISTRY_CACHE`].
#[derive(Debug, Default)]
struct RegistryCache {
    /// Entries by table field, with when they were read.
    entries: HashMap<String, (TableEntry, Instant)>,
    /// The registry's `HLEN` and when it was read: at least the number of fields an
    /// entity hash can hold (one per table, live or deleted and not swept yet).
    len: Option<(u64, Instant)>,
}

/// A table as the registry describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TableEntry {
    generation: u64,
    ttl_us: Option<i64>,
}

fn parse_entry(entry: &str) -> Option<TableEntry> {
    let (generation, ttl) = entry.split_once(' ')?;
    Some(TableEntry {
        generation: generation.parse().ok()?,
        ttl_us: match ttl {
            "-" => None,
            digits => Some(digits.parse().ok()?),
        },
    })
}

/// What a sweep of deleted tables' values did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Deleted table incarnations swept (tombstones removed).
    pub tables: u64,
    /// Entity hashes visited.
    pub keys_scanned: u64,
    /// Fields removed.
    pub fields_removed: u64,
}

/// The Redis online store. See the crate docs for the layout and semantics.
#[derive(Clone)]
pub struct RedisOnlineStore {
    conn: ConnectionManager,
    /// `host:port db N`, for messages; never holds the password.
    target: String,
    namespace: String,
    registry_key: String,
    write_script: Script,
    create_script: Script,
    delete_script: Script,
    sweep_script: Script,
    /// What `multi_get` read of the registry, and when (see [`REGISTRY_CACHE`]).
    registry_cache: Arc<Mutex<RegistryCache>>,
    /// `multi_get`'s own connections (see `wire.rs`).
    reader: Arc<wire::ReadPool>,
}

impl std::fmt::Debug for RedisOnlineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOnlineStore")
            .field("target", &self.target)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl RedisOnlineStore {
    /// A store for `options`. Connecting is lazy: a Redis that is down does not fail this
    /// call, it makes every operation answer [`ProviderError::Unreachable`] (and
    /// [`Provider::health`] unhealthy) until it is back; the connection then recovers by
    /// itself. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// [`ProviderError::InvalidConfig`] for an address that does not parse or an empty
    /// namespace.
    pub async fn connect(options: RedisOptions) -> Result<RedisOnlineStore, ProviderError> {
        let (info, target) = connection_info(&options)
            .map_err(|e| ProviderError::InvalidConfig(format!("redis online store: {e}")))?;
        if options.namespace.is_empty() {
            return Err(ProviderError::InvalidConfig(
                "redis online store: the key namespace is empty".into(),
            ));
        }
        let client = redis::Client::open(info.clone()).map_err(|e| {
            ProviderError::InvalidConfig(format!("redis online store at {target}: {e}"))
        })?;
        // One connection attempt per call (no retry loop inside the manager): the caller
        // gets its answer within the bound, and the next call tries again.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| {
            ProviderError::InvalidConfig(format!("redis online store at {target}: {e}"))
        })?;
        let endpoint = read_endpoint(&info).ok_or_else(|| {
            ProviderError::InvalidConfig(format!(
                "redis online store at {target}: only TCP connections are supported"
            ))
        })?;
        tracing::info!(target = %target, namespace = %options.namespace, "redis online store configured");
        let reader = Arc::new(wire::ReadPool::new(endpoint, target.clone()));
        Ok(RedisOnlineStore {
            conn,
            registry_key: keys::registry_key(&options.namespace),
            namespace: options.namespace,
            target,
            write_script: Script::new(scripts::WRITE),
            create_script: Script::new(scripts::CREATE_TABLE),
            delete_script: Script::new(scripts::DELETE_TABLE),
            sweep_script: Script::new(scripts::SWEEP),
            registry_cache: Arc::default(),
            reader,
        })
    }

    /// The key namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `host:port db N`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Run one round trip within [`ROUND_TRIP_TIMEOUT`].
    async fn round_trip<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(ROUND_TRIP_TIMEOUT, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(StoreError::Redis {
                target: self.target.clone(),
                what,
                source,
            }),
            Err(_) => Err(StoreError::Timeout {
                target: self.target.clone(),
                what,
                limit: ROUND_TRIP_TIMEOUT,
            }),
        }
    }

    async fn table_entry(&self, table: &OnlineTableRef) -> Result<TableEntry, StoreError> {
        let field = keys::table_field(&table.feature, &table.variant);
        let mut conn = self.conn.clone();
        let entry: Option<String> = self
            .round_trip(
                "reading the table registry",
                redis::cmd("HGET")
                    .arg(&self.registry_key)
                    .arg(&field)
                    .query_async(&mut conn),
            )
            .await?;
        match entry {
            None => Err(not_found(table)),
            Some(entry) => parse_entry(&entry).ok_or_else(|| self.corrupt_entry(&field, &entry)),
        }
    }

    /// Forget what `multi_get` cached of a table this store just changed.
    fn forget_entry(&self, field: &str) {
        let mut cache = self
            .registry_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        cache.entries.remove(field);
        cache.len = None;
    }

    fn corrupt_entry(&self, field: &str, entry: &str) -> StoreError {
        StoreError::Corrupt {
            target: self.target.clone(),
            what: format!(
                "registry {} field {field:?} holds {entry:?}, not `<generation> <ttl>`",
                self.registry_key
            ),
        }
    }

    /// Remove the values of deleted tables from every entity hash of the namespace, with
    /// `SCAN` (incremental, never blocking the server) and one pipelined script call per
    /// hash. [`OnlineStore::delete_table`] starts one in the background; running it again
    /// (say, from a scheduled job after a crash) is safe and finishes what is left.
    ///
    /// # Errors
    /// [`ProviderError::Unreachable`] and the like; a sweep cut short leaves its
    /// tombstones, so the next one starts over.
    pub async fn sweep_deleted_tables(&self) -> Result<SweepReport, ProviderError> {
        Ok(self.sweep().await?)
    }

    async fn sweep(&self) -> Result<SweepReport, StoreError> {
        let mut conn = self.conn.clone();
        let registry: HashMap<String, String> = self
            .round_trip(
                "reading the table registry",
                redis::cmd("HGETALL")
                    .arg(&self.registry_key)
                    .query_async(&mut conn),
            )
            .await?;
        let mut pairs: Vec<(String, [u8; 8])> = Vec::new();
        let mut tombstones = Vec::new();
        for (field, table_field) in &registry {
            if let Some(generation) = field.strip_prefix(keys::TOMBSTONE_PREFIX) {
                let generation: u64 = generation
                    .parse()
                    .map_err(|_| self.corrupt_entry(field, table_field))?;
                pairs.push((table_field.clone(), value::generation_bytes(generation)));
                tombstones.push(field.clone());
            }
        }
        let mut report = SweepReport::default();
        if tombstones.is_empty() {
            return Ok(report);
        }
        let pattern = keys::entity_key_pattern(&self.namespace);
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = self
                .round_trip(
                    "scanning entity hashes",
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(SWEEP_BATCH)
                        .arg("TYPE")
                        .arg("hash")
                        .query_async(&mut conn),
                )
                .await?;
            if !batch.is_empty() {
                let mut pipe = redis::pipe();
                pipe.load_script(&self.sweep_script).ignore();
                for key in &batch {
                    let mut call = self.sweep_script.key(key);
                    for (field, generation) in &pairs {
                        call.arg(field).arg(&generation[..]);
                    }
                    pipe.invoke_script(&call);
                }
                let removed: Vec<u64> = self
                    .round_trip("sweeping deleted tables", pipe.query_async(&mut conn))
                    .await?;
                report.keys_scanned += batch.len() as u64;
                report.fields_removed += removed.iter().sum::<u64>();
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let _: u64 = self
            .round_trip(
                "removing tombstones",
                redis::cmd("HDEL")
                    .arg(&self.registry_key)
                    .arg(&tombstones)
                    .query_async(&mut conn),
            )
            .await?;
        report.tables = tombstones.len() as u64;
        tracing::info!(
            namespace = %self.namespace,
            tables = report.tables,
            keys_scanned = report.keys_scanned,
            fields_removed = report.fields_removed,
            "swept deleted online tables"
        );
        Ok(report)
    }
}

fn not_found(table: &OnlineTableRef) -> StoreError {
    StoreError::TableNotFound {
        feature: table.feature.clone(),
        variant: table.variant.clone(),
    }
}

/// A TTL in microseconds; one too long to represent never expires anything.
fn ttl_micros(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX)
}

/// Latest expiry we ever ask of Redis: the year 9999, in Unix milliseconds.
const MAX_EXPIRE_AT_MS: i64 = 253_402_300_799_000;

/// When Redis may drop the entity hash for a value written now: its table's TTL past its
/// event time (or now, for a value already past it), plus [`EXPIRY_GRACE`].
fn expire_at_ms(event_time: DateTime<Utc>, ttl_us: i64, now_ms: i64) -> i64 {
    let due = event_time
        .timestamp_millis()
        .saturating_add(ttl_us / 1000)
        .max(now_ms);
    due.saturating_add(EXPIRY_GRACE.as_millis() as i64)
        .min(MAX_EXPIRE_AT_MS)
}

#[async_trait]
impl Provider for RedisOnlineStore {
    fn kind(&self) -> &str {
        "redis"
    }

    async fn health(&self) -> HealthReport {
        let started = Instant::now();
        let mut conn = self.conn.clone();
        let ping = self
            .round_trip("PING", redis::cmd("PING").query_async::<String>(&mut conn))
            .await;
        let (healthy, message) = match ping {
            Ok(_) => (true, format!("redis at {} answered PING", self.target)),
            Err(e) => (false, e.to_string()),
        };
        HealthReport {
            healthy,
            message,
            latency: started.elapsed(),
        }
    }
}

#[async_trait]
impl OnlineStore for RedisOnlineStore {
    fn capabilities(&self) -> OnlineCapabilities {
        OnlineCapabilities {
            ttl: true,
            event_time_monotonic_writes: true,
            multi_get: true,
        }
    }

    async fn create_table(&self, table: &OnlineTable) -> Result<(), ProviderError> {
        let field = keys::table_field(&table.table.feature, &table.table.variant);
        let ttl = match table.ttl {
            Some(ttl) => ttl_micros(ttl).to_string(),
            None => "-".to_string(),
        };
        let mut conn = self.conn.clone();
        let generation: String = self
            .round_trip(
                "creating a table",
                self.create_script
                    .key(&self.registry_key)
                    .arg(&field)
                    .arg(&ttl)
                    .arg(keys::NEXT_GENERATION_FIELD)
                    .arg(keys::TTL_FREE_FIELD)
                    .invoke_async(&mut conn),
            )
            .await?;
        self.forget_entry(&field);
        tracing::info!(
            feature = %table.table.feature,
            variant = %table.table.variant,
            generation = %generation,
            ttl_us = %ttl,
            "online table created"
        );
        Ok(())
    }

    async fn delete_table(&self, table: &OnlineTableRef) -> Result<(), ProviderError> {
        let field = keys::table_field(&table.feature, &table.variant);
        let mut conn = self.conn.clone();
        let existed: i64 = self
            .round_trip(
                "deleting a table",
                self.delete_script
                    .key(&self.registry_key)
                    .arg(&field)
                    .arg(keys::TOMBSTONE_PREFIX)
                    .invoke_async(&mut conn),
            )
            .await?;
        self.forget_entry(&field);
        tracing::info!(
            feature = %table.feature,
            variant = %table.variant,
            existed = existed == 1,
            "online table deleted; its values are invisible and swept in the background"
        );
        if existed == 1 {
            // The values are already invisible (their generation is no longer the
            // table's); removing them is storage housekeeping, off the request path.
            let store = self.clone();
            tokio::spawn(async move {
                if let Err(e) = store.sweep().await {
                    tracing::warn!(
                        namespace = %store.namespace,
                        error = %e,
                        "sweeping deleted online tables failed; the next delete or sweep retries"
                    );
                }
            });
        }
        Ok(())
    }

    async fn write(
        &self,
        table: &OnlineTableRef,
        rows: &[OnlineRow],
    ) -> Result<WriteReport, ProviderError> {
        let started = Instant::now();
        let entry = self.table_entry(table).await?;
        if rows.is_empty() {
            return Ok(WriteReport::default());
        }
        // Within one call only the newest row per entity can win (the first of equal
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

        let field = keys::table_field(&table.feature, &table.variant);
        let now_ms = Utc::now().timestamp_millis();
        let mut conn = self.conn.clone();
        let mut written = 0_u64;
        for chunk in winners.chunks(WRITE_PIPELINE_ROWS) {
            let mut pipe = redis::pipe();
            pipe.load_script(&self.write_script).ignore();
            for batch in chunk.chunks(WRITE_SCRIPT_ROWS) {
                let mut call = self.write_script.prepare_invoke();
                call.key(&self.registry_key)
                    .arg(&field)
                    .arg(keys::TTL_FREE_FIELD);
                for &i in batch {
                    let row = &rows[i];
                    let expire_at = match entry.ttl_us {
                        Some(ttl_us) => expire_at_ms(row.event_time, ttl_us, now_ms).to_string(),
                        None => String::new(),
                    };
                    call.key(keys::entity_key(&self.namespace, &row.entity))
                        .arg(value::encode(entry.generation, row.event_time, &row.value))
                        .arg(expire_at);
                }
                pipe.invoke_script(&call);
            }
            let outcomes: Vec<u64> = self
                .round_trip("writing values", pipe.query_async(&mut conn))
                .await?;
            written += outcomes.iter().sum::<u64>();
        }
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
        let fields: Vec<String> = tables
            .iter()
            .map(|t| keys::table_field(&t.feature, &t.variant))
            .collect();
        // One pipeline, one round trip: the registry entries of the tables not cached
        // (or cached longer than REGISTRY_CACHE ago), the registry's size when not
        // cached, then one read per entity hash.
        let now = Instant::now();
        let fresh = |read: &Instant| now.duration_since(*read) < REGISTRY_CACHE;
        let (mut entries, registry_len, len_fresh): (Vec<Option<TableEntry>>, Option<u64>, bool) = {
            let cache = self
                .registry_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let entries = fields
                .iter()
                .map(|f| {
                    cache
                        .entries
                        .get(f)
                        .filter(|(_, read)| fresh(read))
                        .map(|(entry, _)| *entry)
                })
                .collect();
            // A size read longer ago still decides how to read the hashes (it only
            // changes what Redis does, never the answer) while a fresh one is read in
            // the same pipeline: the request that refreshes the cache is not the slow one.
            let len = cache.len.map(|(len, _)| len);
            let len_fresh = cache.len.is_some_and(|(_, read)| fresh(&read));
            (entries, len, len_fresh)
        };
        let unknown: Vec<usize> = (0..tables.len())
            .filter(|&t| entries[t].is_none())
            .collect();
        let mut pipe = wire::Pipeline::new();
        let mut args: Vec<&[u8]> = Vec::with_capacity(2 + fields.len());
        if !unknown.is_empty() {
            args.extend([b"HMGET".as_slice(), self.registry_key.as_bytes()]);
            args.extend(unknown.iter().map(|&t| fields[t].as_bytes()));
            pipe.command(&args);
        }
        if !len_fresh {
            pipe.command(&[b"HLEN", self.registry_key.as_bytes()]);
        }
        // Read whole hashes when the request names at least half the fields a hash can
        // hold: Redis keeps a small hash as one compact list and looks each HMGET field
        // up by scanning it, so HMGET of 50 fields of a 50-field hash cost 14 µs of
        // Redis time against 4 µs for HGETALL (BENCHMARKS.md). With a registry much
        // larger than the request, HGETALL would send fields nobody asked for.
        let whole = registry_len.is_some_and(|len| len <= 2 * tables.len() as u64);
        let entity_keys: Vec<String> = entities
            .iter()
            .map(|e| keys::entity_key(&self.namespace, e))
            .collect();
        for key in &entity_keys {
            args.clear();
            if whole {
                args.extend([b"HGETALL".as_slice(), key.as_bytes()]);
            } else {
                args.extend([b"HMGET".as_slice(), key.as_bytes()]);
                args.extend(fields.iter().map(|f| f.as_bytes()));
            }
            pipe.command(&args);
        }
        let replies = self.reader.query("reading values", &pipe).await?;
        let mut answers = 0..replies.len();
        let mut next_answer = |command: &'static str| -> Result<&[wire::Frame], StoreError> {
            let i = answers.next().ok_or_else(|| StoreError::Corrupt {
                target: self.target.clone(),
                what: format!("no answer to {command}"),
            })?;
            let frames = replies.answer(i);
            if let [wire::Frame::Error(text)] = frames {
                return Err(StoreError::Reply {
                    target: self.target.clone(),
                    what: "reading values",
                    message: String::from_utf8_lossy(replies.bytes(text)).into_owned(),
                });
            }
            Ok(frames)
        };
        let mut cache_update = Vec::with_capacity(unknown.len());
        if !unknown.is_empty() {
            let registry = array_items(next_answer("HMGET")?, &self.target, "HMGET")?;
            for (i, &t) in unknown.iter().enumerate() {
                let entry = match registry.get(i) {
                    Some(wire::Frame::Bulk(range)) => {
                        let text = String::from_utf8_lossy(replies.bytes(range));
                        parse_entry(&text).ok_or_else(|| self.corrupt_entry(&fields[t], &text))?
                    }
                    _ => return Err(not_found(&tables[t]).into()),
                };
                entries[t] = Some(entry);
                cache_update.push((fields[t].clone(), (entry, now)));
            }
        }
        let read_len = if len_fresh {
            None
        } else {
            match next_answer("HLEN")? {
                [wire::Frame::Int(len)] => Some((*len).max(0) as u64),
                other => return Err(unexpected(&self.target, "HLEN", &other).into()),
            }
        };
        {
            let mut cache = self
                .registry_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            cache.entries.extend(cache_update);
            if let Some(len) = read_len {
                cache.len = Some((len, now));
            }
        }
        let entries: Vec<TableEntry> = entries.into_iter().flatten().collect();
        // A whole hash answers field → value; find each field's places in the request
        // (a feature may be asked for twice).
        let mut positions: HashMap<&[u8], Vec<usize>> = HashMap::new();
        if whole {
            for (t, field) in fields.iter().enumerate() {
                positions.entry(field.as_bytes()).or_default().push(t);
            }
        }
        // Redis keeps a small hash's fields in insertion order, the same for entities
        // materialized alike: remember which asked tables the field at each place of the
        // last hash answered, and check that guess with one comparison before hashing.
        let mut learned: Vec<(&[u8], &[usize])> = Vec::new();
        let now_us = Utc::now().timestamp_micros();
        let read = |e: usize, t: usize, bytes: &[u8]| -> Result<Option<OnlineRead>, StoreError> {
            let stored = value::decode(bytes)
                .map_err(|err| StoreError::corrupt(&self.target, &entity_keys[e], err))?;
            // A value of another incarnation of the table (deleted, not yet swept) is
            // not this table's.
            if stored.generation != entries[t].generation {
                return Ok(None);
            }
            let event_time =
                DateTime::from_timestamp_micros(stored.event_time_us).ok_or_else(|| {
                    StoreError::Corrupt {
                        target: self.target.clone(),
                        what: format!("event time {} out of range", stored.event_time_us),
                    }
                })?;
            OnlineRead::stored(event_time, entries[t].ttl_us, now_us, || Ok(stored.value)).map(Some)
        };
        for (e, row) in answer.iter_mut().enumerate() {
            if whole {
                let items = array_items(next_answer("HGETALL")?, &self.target, "HGETALL")?;
                if items.len() % 2 != 0 {
                    return Err(unexpected(&self.target, "HGETALL", &items).into());
                }
                for (j, pair) in items.chunks_exact(2).enumerate() {
                    let [wire::Frame::Bulk(field), wire::Frame::Bulk(value)] = pair else {
                        return Err(unexpected(&self.target, "HGETALL", &pair).into());
                    };
                    let name = replies.bytes(field);
                    let asked: &[usize] = match learned.get(j) {
                        Some((known, asked)) if *known == name => asked,
                        _ => {
                            let asked = positions.get(name).map_or(&[][..], Vec::as_slice);
                            if j < learned.len() {
                                learned[j] = (name, asked);
                            } else {
                                learned.push((name, asked));
                            }
                            asked
                        }
                    };
                    for &t in asked {
                        if let Some(value) = read(e, t, replies.bytes(value))? {
                            row[t] = value;
                        }
                    }
                }
            } else {
                let items = array_items(next_answer("HMGET")?, &self.target, "HMGET")?;
                if items.len() != tables.len() {
                    return Err(unexpected(&self.target, "HMGET", &items).into());
                }
                for (t, item) in items.iter().enumerate() {
                    match item {
                        wire::Frame::Nil => {}
                        wire::Frame::Bulk(bytes) => {
                            if let Some(value) = read(e, t, replies.bytes(bytes))? {
                                row[t] = value;
                            }
                        }
                        other => return Err(unexpected(&self.target, "HMGET", other).into()),
                    }
                }
            }
        }
        drop(learned);
        self.reader.recycle(replies);
        tracing::debug!(
            tables = tables.len(),
            entities = entities.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "online multi-get"
        );
        Ok(answer)
    }
}

/// The items of an answer that must be one flat array (of bulk strings, nils, …).
fn array_items<'a>(
    frames: &'a [wire::Frame],
    target: &str,
    command: &str,
) -> Result<&'a [wire::Frame], StoreError> {
    match frames.split_first() {
        Some((wire::Frame::Array(n), items))
            if items.len() == *n && !items.iter().any(|f| matches!(f, wire::Frame::Array(_))) =>
        {
            Ok(items)
        }
        _ => Err(unexpected(target, command, &frames)),
    }
}

fn unexpected(target: &str, command: &str, reply: &impl std::fmt::Debug) -> StoreError {
    StoreError::Corrupt {
        target: target.to_string(),
        what: format!("{command} answered {reply:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(address: &str) -> RedisOptions {
        RedisOptions {
            address: address.into(),
            db: 0,
            password: None,
            namespace: "n".into(),
        }
    }

    #[test]
    fn addresses_parse_into_targets() {
        for (address, target) in [
            ("127.0.0.1:6379", "127.0.0.1:6379 db 0"),
            ("localhost", "localhost:6379 db 0"),
            ("[::1]:7000", "::1:7000 db 0"),
            ("redis://h:1234/3", "h:1234 db 3"),
            ("redis://:pw@h:1234", "h:1234 db 0"),
        ] {
            let (_, got) = connection_info(&options(address)).unwrap();
            assert_eq!(got, target, "{address}");
        }
        let mut o = options("redis://h/3");
        o.db = 5;
        assert_eq!(
            connection_info(&o).unwrap().1,
            "h:6379 db 5",
            "config db wins"
        );
    }

    #[test]
    fn bad_addresses_are_refused_without_echoing_secrets() {
        for address in [
            "",
            "  ",
            "h:0",
            "h:99999",
            "h:port",
            ":6379",
            "::1:6379",
            "rediss://h",
            "http://h",
            "redis://:s3cret@",
            "bad host:1",
        ] {
            let err = connection_info(&options(address)).unwrap_err();
            assert!(!err.contains("s3cret"), "{address}: {err}");
        }
    }

    #[test]
    fn debug_never_shows_passwords() {
        let mut o = options("redis://:urlpass@h:1");
        o.password = Some("cfgpass".into());
        let shown = format!("{o:?}");
        assert!(
            !shown.contains("urlpass") && !shown.contains("cfgpass"),
            "{shown}"
        );
    }

    #[test]
    fn registry_entries_parse() {
        assert_eq!(
            parse_entry("12 -"),
            Some(TableEntry {
                generation: 12,
                ttl_us: None
            })
        );
        assert_eq!(
            parse_entry("3 60000000"),
            Some(TableEntry {
                generation: 3,
                ttl_us: Some(60_000_000)
            })
        );
        for bad in ["", "12", "x -", "1 x", "1  -"] {
            assert_eq!(parse_entry(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn expiry_is_never_before_now_plus_grace() {
        let now_ms = 1_700_000_000_000;
        let grace = EXPIRY_GRACE.as_millis() as i64;
        let old = DateTime::from_timestamp_millis(now_ms - 3_600_000).unwrap();
        assert_eq!(expire_at_ms(old, 60_000_000, now_ms), now_ms + grace);
        let fresh = DateTime::from_timestamp_millis(now_ms).unwrap();
        assert_eq!(
            expire_at_ms(fresh, 7 * 86_400_000_000, now_ms),
            now_ms + 7 * 86_400_000 + grace
        );
        assert_eq!(
            expire_at_ms(DateTime::<Utc>::MAX_UTC, i64::MAX, now_ms),
            MAX_EXPIRE_AT_MS
        );
    }
}
