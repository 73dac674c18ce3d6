//! The `quiver` command line. `serve` runs the HTTP API; `plan`/`apply` read definition
//! files and send them to a server (`--server`) or to the store opened in-process;
//! `list`/`get`/`lineage`/`jobs` browse the catalog the same two ways.
//!
//! Every failure ends as one `error: …` line on stderr and a documented exit status
//! ([`args::EXIT_HELP`]); nothing panics on bad input and no backtrace is printed.

mod args;
mod client;
mod definitions;
mod error;
mod plan_output;
mod render;
mod runtime;
mod serve;
mod serving;
mod target;
mod views;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use quiver_metadata::{JobQuery, ListQuery, PlanAction};
use tracing_subscriber::EnvFilter;

use args::{
    ApplyArgs, Cli, Command, GetArgs, JobsArgs, JobsCommand, LineageArgs, ListArgs, OutputFormat,
    ServeArgs, TrainingSetCommand,
};
use error::{one_line, CliError, EXIT_PLAN_CONFLICTS, EXIT_USAGE};
use target::Target;

/// Run the command line with the process's arguments and return its exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    let serving = matches!(cli.command, Command::Serve(_));
    install_panic_hook(serving);
    if let Err(e) = init_tracing(cli.log_level.as_deref(), serving) {
        return report(e);
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Command::Serve(ServeArgs {
        worker_threads: Some(threads),
        ..
    }) = &cli.command
    {
        builder.worker_threads(usize::from(*threads));
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return report(CliError::failed(format!(
                "cannot start the async runtime: {e}"
            )))
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(e),
    }
}

/// A panic is a bug: say so in one line instead of Rust's message and backtrace hint. The
/// server keeps running after a handler panics (the API answers 500), so there it is
/// logged rather than printed as the process's error.
fn install_panic_hook(serving: bool) {
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if serving {
            tracing::error!("panic{at}: {}", one_line(&message));
        } else {
            eprintln!(
                "error: internal error{at}: {} (this is a bug; please report it)",
                one_line(&message)
            );
        }
    }));
}

fn report(e: CliError) -> ExitCode {
    if let Some(message) = e.message() {
        eprintln!("error: {message}");
    }
    ExitCode::from(e.code())
}

/// Help and version print as clap formats them; usage errors become one line.
fn clap_exit(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(e.exit_code().clamp(0, 255) as u8)
        }
        _ => {
            let rendered = e.render().to_string();
            let head: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let text = head.join(" ");
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            eprintln!("error: {text} (see `quiver --help`)");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Logs go to stderr so stdout stays clean for `--output json`. `--log-level` wins over
/// `RUST_LOG`; by default the server logs at info and other commands only warnings (not
/// sqlx's slow-statement notes, which would drown a command's one line of output).
fn init_tracing(level: Option<&str>, serving: bool) -> Result<(), CliError> {
    let filter = match level {
        Some(level) => EnvFilter::try_new(level)
            .map_err(|e| CliError::usage(format!("--log-level `{level}`: {e}")))?,
        None => EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new(if serving { "info" } else { "warn,sqlx=error" })),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    Ok(())
}

async fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Serve(args) => serve::run(args).await,
        Command::Plan(args) => plan(args).await,
        Command::Apply(args) => apply(args).await,
        Command::List(args) => list(args).await,
        Command::Get(args) => get(args).await,
        Command::Lineage(args) => lineage(args).await,
        Command::Jobs(args) => jobs(args).await,
        Command::TrainingSet(args) => match args.command {
            TrainingSetCommand::Get(args) => serving::training_set_get(args).await,
        },
        Command::OnlineFeatures(args) => serving::online_features(args).await,
    }
}

async fn plan(args: ApplyArgs) -> Result<(), CliError> {
    // Parse everything before contacting any store: a typo never half-reaches a server.
    let definitions = definitions::load(&args.paths)?;
    let target = Target::open(&args.target).await?;
    let plan = target.plan(&definitions).await?;
    match args.target.output {
        OutputFormat::Text => write_stdout(&plan_output::render_plan(&plan, false))?,
        OutputFormat::Json => write_json(&plan)?,
    }
    if plan.count(PlanAction::Conflict) > 0 {
        return Err(CliError::silent(EXIT_PLAN_CONFLICTS));
    }
    Ok(())
}

async fn apply(args: ApplyArgs) -> Result<(), CliError> {
    let definitions = definitions::load(&args.paths)?;
    let target = Target::open(&args.target).await?;
    let plan = target.apply(&definitions).await?;
    match args.target.output {
        OutputFormat::Text => write_stdout(&plan_output::render_plan(&plan, true)),
        OutputFormat::Json => write_json(&plan),
    }
}

async fn list(args: ListArgs) -> Result<(), CliError> {
    let query = ListQuery {
        kind: Some(args.kind),
        // An empty filter means no filter, as in the API.
        owner: non_empty(args.owner),
        tag: non_empty(args.tag),
        status: args.status,
        text: non_empty(args.text),
        defaults_only: !args.all_variants,
        limit: args.limit,
        offset: args.offset,
        ..ListQuery::default()
    };
    let target = Target::open(&args.target).await?;
    let page = target.list(&query).await?;
    match args.target.output {
        OutputFormat::Text => write_stdout(&render::resource_table(&page, args.offset)),
        OutputFormat::Json => write_json(&page),
    }
}

async fn get(args: GetArgs) -> Result<(), CliError> {
    let target = Target::open(&args.target).await?;
    let resource = target
        .get(args.kind, &args.name, args.variant.as_deref())
        .await?;
    match args.target.output {
        OutputFormat::Text => write_stdout(&render::resource_yaml(&resource)),
        OutputFormat::Json => write_json(&resource),
    }
}

async fn lineage(args: LineageArgs) -> Result<(), CliError> {
    let target = Target::open(&args.target).await?;
    let graph = target
        .lineage(
            args.kind,
            &args.name,
            args.variant.as_deref(),
            args.direction,
            args.depth,
        )
        .await?;
    match args.target.output {
        OutputFormat::Text => write_stdout(&render::lineage(&graph, args.direction.walks())),
        OutputFormat::Json => write_json(&graph),
    }
}

async fn jobs(args: JobsArgs) -> Result<(), CliError> {
    if let Some(JobsCommand::Wait { timeout }) = args.show {
        return serving::jobs_wait(&args.target, timeout).await;
    }
    if let Some(JobsCommand::Watch { id, timeout }) = args.show {
        return serving::jobs_watch(&args.target, id, timeout).await;
    }
    let target = Target::open(&args.target).await?;
    match args.show {
        Some(JobsCommand::Wait { .. } | JobsCommand::Watch { .. }) => Ok(()),
        Some(JobsCommand::Schedules) => {
            let schedules = target.schedules().await?;
            match args.target.output {
                OutputFormat::Text => write_stdout(&render::schedules_table(&schedules)),
                OutputFormat::Json => write_json(&schedules),
            }
        }
        Some(JobsCommand::Cancel { id }) => {
            let job = target.cancel_job(id).await?;
            match args.target.output {
                OutputFormat::Text => write_stdout(&format!("job {} is {}\n", job.id, job.state)),
                OutputFormat::Json => write_json(&job),
            }
        }
        Some(JobsCommand::Retry { id }) => {
            let job = target.retry_job(id).await?;
            match args.target.output {
                OutputFormat::Text => write_stdout(&format!(
                    "job {id} retried as job {} ({} {}, queued)\n",
                    job.id, job.kind, job.resource
                )),
                OutputFormat::Json => write_json(&job),
            }
        }
        Some(JobsCommand::Show { id }) => {
            let (job, runs) = target.job(id).await?;
            match args.target.output {
                OutputFormat::Text => write_stdout(&render::job_details(&job, &runs)),
                OutputFormat::Json => write_json(&serde_json::json!({ "job": job, "runs": runs })),
            }
        }
        None => {
            let query = JobQuery {
                state: args.state,
                resource: None,
                limit: args.limit,
                offset: args.offset,
            };
            let page = target.jobs(&query).await?;
            match args.target.output {
                OutputFormat::Text => write_stdout(&render::jobs_table(&page, args.offset)),
                OutputFormat::Json => write_json(&page),
            }
        }
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

pub(crate) fn write_json<T: serde::Serialize>(value: &T) -> Result<(), CliError> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::failed(format!("cannot encode JSON: {e}")))?;
    text.push('\n');
    write_stdout(&text)
}

/// Print to stdout; a closed pipe (`quiver list … | head`) is not an error.
pub(crate) fn write_stdout(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::failed(format!("cannot write output: {e}"))),
    }
}
