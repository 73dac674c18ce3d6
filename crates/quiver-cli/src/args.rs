//! The command-line grammar. Flag names (`--data-dir`, `--database-url`, `--listen`,
//! `--server`, `-f`) are relied upon by scripts and tests: keep them stable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use quiver_core::{Kind, Status};
use quiver_lineage::Direction;
use quiver_metadata::JobState;
use quiver_runtime::DataFormat;

/// Exit codes, also shown in `quiver --help`.
pub const EXIT_HELP: &str = "\
Exit status: 0 success; 1 the command failed (invalid definitions, a conflict on apply,
an error from the server or store); 2 invalid command line; 3 `plan` found conflicts.";

#[derive(Debug, Parser)]
#[command(
    name = "quiver",
    bin_name = "quiver",
    version,
    about = "Quiver, a virtual feature store: serve the API, plan and apply definitions, browse the catalog",
    after_help = EXIT_HELP
)]
pub struct Cli {
    /// Log filter for stderr, e.g. `debug` or `quiver=debug,sqlx=warn` (overrides RUST_LOG).
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API on the embedded store (default) or Postgres.
    Serve(ServeArgs),
    /// Show what applying definition files would change, and what it affects downstream.
    /// Writes nothing; exits with 3 when a definition conflicts with a stored variant.
    Plan(ApplyArgs),
    /// Apply definition files atomically: everything or nothing.
    Apply(ApplyArgs),
    /// List resources of one kind.
    List(ListArgs),
    /// Show one resource's definition (secrets redacted).
    Get(GetArgs),
    /// Show where a resource comes from (upstream) or what depends on it (downstream).
    Lineage(LineageArgs),
    /// List jobs, show one job with its runs and logs, or wait for the queue to drain.
    Jobs(JobsArgs),
    /// Download a built training set.
    TrainingSet(TrainingSetArgs),
    /// Read online feature values for some entities.
    OnlineFeatures(OnlineFeaturesArgs),
}

/// Where the metadata store is when Quiver opens it in this process.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory of the embedded SQLite store.
    #[arg(long, value_name = "DIR", default_value = ".quiver", global = true)]
    pub data_dir: PathBuf,

    /// Use this database instead of the embedded store: postgres://… or sqlite:….
    #[arg(long, value_name = "URL", env = "QUIVER_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// Address to listen on; port 0 picks a free port (the URL is logged).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// How long a claimed job stays with this replica without a heartbeat (renewed every
    /// third of it): after a crash, another replica takes the job over once it expires.
    #[arg(long, value_name = "DURATION", default_value = "30s", env = "QUIVER_JOB_LEASE", value_parser = parse_lease)]
    pub job_lease: Duration,

    /// Jobs this replica runs at the same time: a materialization's online writes then
    /// overlap another job's offline reads, and a long training set does not hold up
    /// materializations.
    #[arg(long, value_name = "N", default_value_t = 2, env = "QUIVER_JOB_CONCURRENCY", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub job_concurrency: u16,

    /// Threads that run requests and jobs (default: one per core). One thread gives the
    /// lowest latency per request when Redis and other work share the cores, at some
    /// maximum throughput; run one replica per core to use them all (BENCHMARKS.md).
    #[arg(long, value_name = "N", env = "QUIVER_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub worker_threads: Option<u16>,
}

/// A lease between 1 s and 1 h: shorter would let a busy replica lose jobs it is still
/// running; longer would leave a crashed replica's jobs stuck for too long.
fn parse_lease(text: &str) -> Result<Duration, String> {
    let lease = parse_duration(text)?;
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&lease) {
        return Err(format!(
            "`{text}` is outside 1s..1h; a lease renews every third of its length"
        ));
    }
    Ok(lease)
}

/// Which store a command talks to: a server over HTTP, or the store itself in-process.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Talk to a running `quiver serve` at this URL instead of opening the store locally.
    #[arg(long, value_name = "URL", env = "QUIVER_SERVER", global = true)]
    pub server: Option<String>,

    #[command(flatten)]
    pub store: StoreArgs,

    #[arg(long, value_enum, default_value_t = OutputFormat::Text, global = true)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A YAML file, or a directory searched recursively for *.yaml and *.yml files.
    #[arg(short = 'f', long = "file", value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Kind of resource, singular or plural: feature, features, training_set, training-sets, …
    #[arg(value_name = "KIND", value_parser = parse_kind)]
    pub kind: Kind,

    /// Only resources owned by this user or team.
    #[arg(long)]
    pub owner: Option<String>,

    /// Only resources carrying this tag.
    #[arg(long)]
    pub tag: Option<String>,

    /// Only resources in this status: pending, running, ready or failed.
    #[arg(long, value_parser = parse_status)]
    pub status: Option<Status>,

    /// Case-insensitive text search in names and descriptions.
    #[arg(long = "q", alias = "search", value_name = "TEXT")]
    pub text: Option<String>,

    /// List every variant, not only the default variant of each name.
    #[arg(long)]
    pub all_variants: bool,

    /// Page size, 1 to 500.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: u32,

    #[arg(long, default_value_t = 0)]
    pub offset: u64,

    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[arg(value_name = "KIND", value_parser = parse_kind)]
    pub kind: Kind,

    pub name: String,

    /// A variant other than the default one.
    #[arg(long)]
    pub variant: Option<String>,

    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub struct LineageArgs {
    #[arg(value_name = "KIND", value_parser = parse_kind)]
    pub kind: Kind,

    pub name: String,

    /// A variant other than the default one.
    #[arg(long)]
    pub variant: Option<String>,

    /// `upstream`: what this resource is built from; `downstream`: what depends on it.
    #[arg(long, value_enum, default_value_t = LineageDirection::Both)]
    pub direction: LineageDirection,

    /// How many references to follow in each direction.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub depth: u32,

    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LineageDirection {
    Upstream,
    Downstream,
    Both,
}

impl LineageDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            LineageDirection::Upstream => "upstream",
            LineageDirection::Downstream => "downstream",
            LineageDirection::Both => "both",
        }
    }

    /// The walks this direction stands for, upstream first.
    pub fn walks(self) -> &'static [Direction] {
        match self {
            LineageDirection::Upstream => &[Direction::Upstream],
            LineageDirection::Downstream => &[Direction::Downstream],
            LineageDirection::Both => &[Direction::Upstream, Direction::Downstream],
        }
    }
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub show: Option<JobsCommand>,

    /// Only jobs in this state: queued, running, succeeded, failed or cancelled.
    #[arg(long, value_parser = parse_job_state)]
    pub state: Option<JobState>,

    /// Page size, 1 to 500.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: u32,

    #[arg(long, default_value_t = 0)]
    pub offset: u64,

    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// One job with every run and its logs.
    Show {
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Cancel a queued or running job.
    Cancel {
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Run a failed or cancelled job again (a new job, fresh attempts) once its cause is fixed.
    Retry {
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Follow one job with a progress bar (rows done, of the total once known) until it
    /// ends; exit 1 with its error when it fails or is cancelled.
    Watch {
        #[arg(value_name = "ID")]
        id: i64,
        /// Give up after this long (e.g. `90s`, `1h`).
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Materialization schedules: next run, last job, skipped runs and watermark.
    Schedules,
    /// Wait until no job is queued or running; exit 1 naming the jobs that failed.
    Wait {
        /// Give up after this long (e.g. `90s`, `5m`).
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        timeout: Duration,
    },
}

#[derive(Debug, Args)]
pub struct TrainingSetArgs {
    #[command(subcommand)]
    pub command: TrainingSetCommand,
}

#[derive(Debug, Subcommand)]
pub enum TrainingSetCommand {
    /// Download a training set into a file (written as FILE.partial, renamed when complete).
    Get(TrainingSetGetArgs),
}

#[derive(Debug, Args)]
pub struct TrainingSetGetArgs {
    pub name: String,

    /// A variant other than the default one.
    #[arg(long)]
    pub variant: Option<String>,

    /// parquet, arrow, csv or jsonl; by default the output file's extension, else parquet.
    #[arg(long, value_parser = parse_data_format)]
    pub format: Option<DataFormat>,

    /// The file to write.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: PathBuf,

    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub struct OnlineFeaturesArgs {
    /// A feature: `name` (default variant) or `name:variant`; repeat for several.
    #[arg(long = "feature", value_name = "FEATURE", required = true)]
    pub features: Vec<String>,

    /// Entity ids as ENTITY=ID or ENTITY=ID1,ID2; repeat for more ids.
    #[arg(long = "entity", value_name = "ENTITY=ID", required = true)]
    pub entities: Vec<String>,

    #[command(flatten)]
    pub target: TargetArgs,
}

/// A kind as people type it: singular or plural, `_` or `-` (`training-sets`).
pub fn parse_kind(s: &str) -> Result<Kind, String> {
    let normal = s.trim().to_ascii_lowercase().replace('-', "_");
    Kind::ALL
        .into_iter()
        .find(|k| k.as_str() == normal || k.plural().replace('-', "_") == normal)
        .ok_or_else(|| {
            format!(
                "unknown kind `{}`, expected one of: user, provider, entity, source, feature, label, training_set, model (singular or plural)",
                s.escape_debug()
            )
        })
}

fn parse_status(s: &str) -> Result<Status, String> {
    s.parse()
        .map_err(|e: quiver_core::kind::UnknownStatus| e.to_string())
}

fn parse_job_state(s: &str) -> Result<JobState, String> {
    s.parse()
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}`: {e} (write e.g. `90s`, `5m`)"))
}

fn parse_data_format(s: &str) -> Result<DataFormat, String> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_accept_singular_plural_and_dashes() {
        for (text, kind) in [
            ("feature", Kind::Feature),
            ("features", Kind::Feature),
            ("Features", Kind::Feature),
            ("training_set", Kind::TrainingSet),
            ("training-set", Kind::TrainingSet),
            ("training-sets", Kind::TrainingSet),
            ("training_sets", Kind::TrainingSet),
            ("entities", Kind::Entity),
        ] {
            assert_eq!(parse_kind(text), Ok(kind), "{text}");
        }
        let err = parse_kind("featur").unwrap_err();
        assert!(err.contains("unknown kind `featur`"), "{err}");
    }

    #[test]
    fn grammar_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn jobs_target_flags_work_before_and_after_show() {
        for argv in [
            ["quiver", "jobs", "--server", "http://x", "show", "7"],
            ["quiver", "jobs", "show", "7", "--server", "http://x"],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap();
            let Command::Jobs(jobs) = cli.command else {
                panic!("{argv:?}")
            };
            assert_eq!(jobs.target.server.as_deref(), Some("http://x"), "{argv:?}");
            assert!(matches!(jobs.show, Some(JobsCommand::Show { id: 7 })));
        }
    }
}
