//! `quiver-bench`: the load generator and the reference peers behind `benches/serving.py`.
//!
//! - `floor`: the HTTP floor, a minimal axum endpoint that parses the JSON request and
//!   answers a small JSON document. Nothing a feature server does can be faster over HTTP
//!   on this machine, so Quiver's maximum throughput is reported as a ratio to it.
//! - `http`: sends online-feature requests to a URL, either at a fixed rate (open loop:
//!   request `i` is due at `start + i / rate`, whatever the answers do) or as fast as
//!   `--connections` keep-alive connections allow (closed loop), and prints one JSON line
//!   with percentiles. Every answer must be `200`; any other status fails the run.
//! - `hmget`: the raw Redis read behind a request, the lower bound of its latency: one
//!   pipeline of `HMGET` of exactly the keys and fields Quiver's Redis store reads, at the
//!   same fixed rate, over one connection.
//!
//! The generator runs on one thread (a current-thread runtime), so on the 2-core machine
//! it takes the same share from every server it measures.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use axum::routing::post;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use quiver_provider_redis::keys;
use serde_json::{json, Value};
use tokio::net::TcpStream;

#[derive(Parser)]
#[command(
    name = "quiver-bench",
    about = "Load generator and peers for benches/serving.py"
)]
enum Command {
    /// Serve the HTTP floor: POST any path with a JSON body, get `{"ok": true, ...}`.
    Floor {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// Load an HTTP endpoint with online-feature requests.
    Http(HttpArgs),
    /// Read the same keys from Redis with one pipelined HMGET per request.
    Hmget(HmgetArgs),
}

/// Which entities and features a request names. Entities are drawn from `u0..u{pool}`
/// by a fixed-seed generator, so every target gets the same sequence of requests.
#[derive(clap::Args, Clone)]
struct Workload {
    /// Entities per request.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Features per request, `<prefix>00` onwards.
    #[arg(long, default_value_t = 50)]
    features: usize,
    /// Entity ids are drawn from 0..pool.
    #[arg(long, default_value_t = 10_000)]
    pool: u64,
    #[arg(long, default_value = "bench_f")]
    feature_prefix: String,
    #[arg(long, default_value = "v1")]
    variant: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Quiver's `POST /api/v1/online-features`.
    Quiver,
    /// Feast's `POST /get-online-features` (feature view `bench`, join key `user_id`).
    Feast,
}

#[derive(clap::Args)]
struct Load {
    /// Requests per second (open loop); 0 = as fast as the connections allow.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Measured seconds, after a warm-up of 2 s that is not measured.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
}

#[derive(clap::Args)]
struct HttpArgs {
    /// A name for the output line.
    #[arg(long)]
    target: String,
    /// `http://host:port/path`.
    #[arg(long)]
    url: String,
    #[arg(long, value_enum)]
    format: Format,
    #[command(flatten)]
    workload: Workload,
    #[command(flatten)]
    load: Load,
}

#[derive(clap::Args)]
struct HmgetArgs {
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// The Redis store's key namespace.
    #[arg(long, default_value = "quiver")]
    namespace: String,
    #[command(flatten)]
    workload: Workload,
    #[command(flatten)]
    load: Load,
}

fn main() -> anyhow::Result<()> {
    match Command::parse() {
        // The floor gets the same multi-threaded runtime as `quiver serve`.
        Command::Floor { listen } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(floor(listen)),
        Command::Http(args) => current_thread()?.block_on(http(args)),
        Command::Hmget(args) => current_thread()?.block_on(hmget(args)),
    }
}

fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

async fn floor(listen: String) -> anyhow::Result<()> {
    let app = axum::Router::new().route(
        "/{*path}",
        post(|axum::Json(body): axum::Json<Value>| async move {
            let fields = body.as_object().map_or(0, |o| o.len());
            axum::Json(json!({"ok": true, "fields": fields}))
        }),
    );
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    // The script reads the address from this line.
    println!("floor listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// A small deterministic generator (SplitMix64): same seed, same requests, on every
/// target.
struct Picks(u64);

impl Picks {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % below
    }
}

/// The entity ids of the first `count` requests (the sequence repeats after that).
fn entity_draws(workload: &Workload, count: usize) -> Vec<Vec<u64>> {
    let mut picks = Picks(42);
    (0..count)
        .map(|_| {
            (0..workload.batch)
                .map(|_| picks.next(workload.pool))
                .collect()
        })
        .collect()
}

fn feature_names(workload: &Workload) -> Vec<String> {
    (0..workload.features)
        .map(|f| format!("{}{f:02}", workload.feature_prefix))
        .collect()
}

const DISTINCT_REQUESTS: usize = 4096;

fn bodies(format: Format, workload: &Workload) -> Vec<Bytes> {
    let features = feature_names(workload);
    entity_draws(workload, DISTINCT_REQUESTS)
        .into_iter()
        .map(|ids| {
            let body = match format {
                Format::Quiver => json!({
                    "features": features
                        .iter()
                        .map(|f| format!("{f}:{}", workload.variant))
                        .collect::<Vec<_>>(),
                    "entities": {"user": ids.iter().map(u64::to_string).collect::<Vec<_>>()},
                }),
                // Feast's feature view `bench` names its features by column (`f00`..).
                Format::Feast => json!({
                    "features": (0..workload.features).map(|f| format!("bench:f{f:02}")).collect::<Vec<_>>(),
                    "entities": {"user_id": ids},
                }),
            };
            Bytes::from(serde_json::to_vec(&body).expect("JSON"))
        })
        .collect()
}

/// What each connection records: per request its latency (µs) and how late it was sent
/// against its schedule (µs; 0 in closed loop).
#[derive(Default)]
struct Samples {
    latency_us: Vec<u64>,
    late_us: Vec<u64>,
}

impl Samples {
    fn record(&mut self, due: Instant, sent: Instant, done: Instant) {
        self.latency_us.push(micros(done - sent));
        self.late_us
            .push(micros(sent.saturating_duration_since(due)));
    }
}

/// The schedule shared by the connections of one run.
struct Schedule {
    next: AtomicU64,
    started: Instant,
    /// `None`: closed loop.
    interval: Option<Duration>,
    /// Requests due in the run (open loop) or the deadline (closed loop).
    total: u64,
    deadline: Instant,
    stop: AtomicBool,
}

impl Schedule {
    fn new(load: &Load, seconds: u64) -> Schedule {
        let started = Instant::now();
        Schedule {
            next: AtomicU64::new(0),
            started,
            interval: (load.rate > 0).then(|| Duration::from_nanos(1_000_000_000 / load.rate)),
            total: if load.rate > 0 {
                load.rate * seconds
            } else {
                u64::MAX
            },
            deadline: started + Duration::from_secs(seconds),
            stop: AtomicBool::new(false),
        }
    }

    /// The next request's number and when it is due, or `None` when the run is over.
    async fn take(&self) -> Option<(u64, Instant)> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if i >= self.total {
            return None;
        }
        match self.interval {
            Some(interval) => {
                let due = self.started + interval * u32::try_from(i).ok()?;
                tokio::time::sleep_until(due.into()).await;
                Some((i, due))
            }
            None => {
                let now = Instant::now();
                (now < self.deadline).then_some((i, now))
            }
        }
    }
}

async fn http(args: HttpArgs) -> anyhow::Result<()> {
    let bodies = Arc::new(bodies(args.format, &args.workload));
    let url: hyper::Uri = args.url.parse().context("--url")?;
    let authority = url
        .authority()
        .ok_or_else(|| anyhow!("--url needs host:port"))?
        .clone();
    let path = url.path().to_string();

    // Warm-up: fill caches and connections; not measured.
    run_http(&authority, &path, &bodies, &args.load, 2).await?;
    let started = Instant::now();
    let samples = run_http(&authority, &path, &bodies, &args.load, args.load.seconds).await?;
    report(
        &args.target,
        &args.load,
        &args.workload,
        samples,
        started.elapsed(),
    );
    Ok(())
}

async fn run_http(
    authority: &hyper::http::uri::Authority,
    path: &str,
    bodies: &Arc<Vec<Bytes>>,
    load: &Load,
    seconds: u64,
) -> anyhow::Result<Samples> {
    let schedule = Arc::new(Schedule::new(load, seconds));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..load.connections {
        let stream = TcpStream::connect(authority.as_str())
            .await
            .with_context(|| format!("connecting to {authority}"))?;
        stream.set_nodelay(true)?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let schedule = schedule.clone();
        let bodies = bodies.clone();
        let authority = authority.to_string();
        let path = path.to_string();
        tasks.spawn(async move {
            let mut samples = Samples::default();
            while let Some((i, due)) = schedule.take().await {
                let body = bodies[i as usize % bodies.len()].clone();
                let request = hyper::Request::post(path.as_str())
                    .header(hyper::header::HOST, authority.as_str())
                    .header(hyper::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(body))?;
                sender.ready().await?;
                let sent = Instant::now();
                let answer = sender.send_request(request).await?;
                let status = answer.status();
                let body = answer.into_body().collect().await?.to_bytes();
                let done = Instant::now();
                if status != hyper::StatusCode::OK {
                    schedule.stop.store(true, Ordering::Relaxed);
                    bail!(
                        "answer {status} to request {i}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(500)])
                    );
                }
                samples.record(due, sent, done);
            }
            Ok::<_, anyhow::Error>(samples)
        });
    }
    collect(tasks).await
}

async fn hmget(args: HmgetArgs) -> anyhow::Result<()> {
    let client = redis::Client::open(args.redis.as_str())?;
    let fields: Vec<String> = feature_names(&args.workload)
        .iter()
        .map(|f| keys::table_field(f, &args.workload.variant))
        .collect();
    let requests: Arc<Vec<Vec<String>>> = Arc::new(
        entity_draws(&args.workload, DISTINCT_REQUESTS)
            .into_iter()
            .map(|ids| {
                ids.iter()
                    .map(|id| keys::entity_key(&args.namespace, &id.to_string()))
                    .collect()
            })
            .collect(),
    );
    // Check the keys hold the values, so the baseline reads what Quiver reads.
    let mut conn = client.get_multiplexed_async_connection().await?;
    let first: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
        .arg(&requests[0][0])
        .arg(&fields)
        .query_async(&mut conn)
        .await?;
    let present = first.iter().filter(|v| v.is_some()).count();
    if present != fields.len() {
        bail!(
            "{} holds {present} of the {} fields: materialize the bench features first",
            requests[0][0],
            fields.len()
        );
    }

    let fields = Arc::new(fields);
    run_hmget(&conn, &requests, &fields, &args.load, 2).await?;
    let started = Instant::now();
    let samples = run_hmget(&conn, &requests, &fields, &args.load, args.load.seconds).await?;
    report(
        "redis-hmget",
        &args.load,
        &args.workload,
        samples,
        started.elapsed(),
    );
    Ok(())
}

async fn run_hmget(
    conn: &redis::aio::MultiplexedConnection,
    requests: &Arc<Vec<Vec<String>>>,
    fields: &Arc<Vec<String>>,
    load: &Load,
    seconds: u64,
) -> anyhow::Result<Samples> {
    let schedule = Arc::new(Schedule::new(load, seconds));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..load.connections {
        let mut conn = conn.clone();
        let schedule = schedule.clone();
        let requests = requests.clone();
        let fields = fields.clone();
        tasks.spawn(async move {
            let mut samples = Samples::default();
            while let Some((i, due)) = schedule.take().await {
                let keys = &requests[i as usize % requests.len()];
                let sent = Instant::now();
                let mut pipe = redis::pipe();
                for key in keys {
                    pipe.cmd("HMGET").arg(key).arg(fields.as_slice());
                }
                let values: Vec<Vec<Option<Vec<u8>>>> = pipe.query_async(&mut conn).await?;
                let done = Instant::now();
                if values.len() != keys.len() {
                    bail!("{} answers to {} HMGETs", values.len(), keys.len());
                }
                samples.record(due, sent, done);
            }
            Ok::<_, anyhow::Error>(samples)
        });
    }
    collect(tasks).await
}

async fn collect(
    mut tasks: tokio::task::JoinSet<anyhow::Result<Samples>>,
) -> anyhow::Result<Samples> {
    let mut all = Samples::default();
    while let Some(done) = tasks.join_next().await {
        let samples = done??;
        all.latency_us.extend(samples.latency_us);
        all.late_us.extend(samples.late_us);
    }
    Ok(all)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(target: &str, load: &Load, workload: &Workload, samples: Samples, elapsed: Duration) {
    let mut latency = samples.latency_us;
    let mut late = samples.late_us;
    latency.sort_unstable();
    late.sort_unstable();
    let line = json!({
        "target": target,
        "shape": format!("{}x{}", workload.batch, workload.features),
        "mode": if load.rate > 0 { "fixed-rate" } else { "max" },
        "rate": load.rate,
        "connections": load.connections,
        "requests": latency.len(),
        "seconds": elapsed.as_secs_f64(),
        "throughput_rps": latency.len() as f64 / elapsed.as_secs_f64(),
        "p50_us": percentile(&latency, 50.0),
        "p90_us": percentile(&latency, 90.0),
        "p99_us": percentile(&latency, 99.0),
        "max_us": latency.last().copied().unwrap_or(0),
        // How late requests left against their schedule: large values mean the
        // generator (not the server) fell behind and the run is not valid.
        "late_p99_us": percentile(&late, 99.0),
    });
    println!("{line}");
}
