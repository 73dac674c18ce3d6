//! Commands that move data rather than definitions: `training-set get` (a streamed
//! download into `FILE.partial`, renamed when complete, with a progress bar),
//! `online-features` (a table of values, or the API's JSON) and `jobs wait`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quiver_core::Kind;
use quiver_metadata::{JobQuery, JobState};
use quiver_runtime::{DataFormat, OnlineFeaturesRequest, OnlineFeaturesResponse, ValueStatus};
use tokio::io::AsyncWriteExt;

use crate::args::{OnlineFeaturesArgs, OutputFormat, TargetArgs, TrainingSetGetArgs};
use crate::error::CliError;
use crate::target::{encode, Target};

/// `quiver training-set get`.
pub async fn training_set_get(args: TrainingSetGetArgs) -> Result<(), CliError> {
    let format = args
        .format
        .or_else(|| {
            args.out
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(DataFormat::from_file_name)
        })
        .unwrap_or(DataFormat::Parquet);
    let target = Target::open(&args.target).await?;
    let variant = match &args.variant {
        Some(v) => v.clone(),
        None => {
            target
                .get(Kind::TrainingSet, &args.name, None)
                .await?
                .variant
        }
    };
    let partial = partial_path(&args.out);
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(|e| CliError::failed(format!("cannot create {}: {e}", partial.display())))?;
    let bar = progress_bar();
    let started = Instant::now();
    let written = download(&target, &args, &variant, format, &mut file, &bar).await;
    let written = match written {
        Ok(n) => n,
        Err(e) => {
            bar.abandon();
            drop(file);
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
    };
    let finish = async {
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&partial, &args.out).await
    };
    if let Err(e) = finish.await {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(CliError::failed(format!(
            "cannot write {}: {e}",
            args.out.display()
        )));
    }
    bar.finish_and_clear();
    let message = format!(
        "downloaded training set {}:{variant} as {format} into {} ({} in {:.1}s)\n",
        args.name,
        args.out.display(),
        human_bytes(written),
        started.elapsed().as_secs_f64()
    );
    match args.target.output {
        OutputFormat::Text => crate::write_stdout(&message),
        OutputFormat::Json => crate::write_json(&serde_json::json!({
            "training_set": args.name,
            "variant": variant,
            "format": format,
            "path": args.out,
            "bytes": written,
        })),
    }
}

/// `out.parquet` → `out.parquet.partial`, next to it so the rename stays on one disk.
fn partial_path(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    out.with_file_name(name)
}

/// Bytes and rate on stderr, only when stderr is a terminal.
fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bytes} downloaded ({bytes_per_sec}, {elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

async fn download(
    target: &Target,
    args: &TrainingSetGetArgs,
    variant: &str,
    format: DataFormat,
    file: &mut tokio::fs::File,
    bar: &ProgressBar,
) -> Result<u64, CliError> {
    let write_error =
        |e: std::io::Error| CliError::failed(format!("cannot write {}: {e}", args.out.display()));
    let mut written = 0u64;
    match target {
        Target::Remote(api) => {
            let path = format!(
                "/training-sets/{}/{}/data",
                encode(&args.name),
                encode(variant)
            );
            let response = api
                .get_stream(&path, &[("format", format.to_string())])
                .await?;
            let mut body = response.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| api.stream_error(&e))?;
                file.write_all(&chunk).await.map_err(write_error)?;
                written += chunk.len() as u64;
                bar.set_position(written);
            }
        }
        Target::Local(store) => {
            let runtime = crate::runtime::build(store.clone(), &args.target.store.data_dir)?;
            let download = runtime
                .training_set_data(&args.name, Some(variant), format)
                .await
                .map_err(|e| CliError::failed(e.to_string()))?;
            let mut bytes = download.bytes;
            while let Some(chunk) = bytes.next().await {
                let chunk = chunk.map_err(|e| CliError::failed(e.to_string()))?;
                file.write_all(&chunk).await.map_err(write_error)?;
                written += chunk.len() as u64;
                bar.set_position(written);
            }
        }
    }
    Ok(written)
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / (1u64 << 10) as f64),
        n => format!("{n} B"),
    }
}

/// `user=u1,u2` pairs grouped by entity, ids in the order given.
fn parse_entities(pairs: &[String]) -> Result<BTreeMap<String, Vec<String>>, CliError> {
    let mut entities: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in pairs {
        let (entity, ids) = pair.split_once('=').ok_or_else(|| {
            CliError::usage(format!(
                "--entity `{pair}`: write ENTITY=ID, e.g. --entity user=u1"
            ))
        })?;
        let list = entities.entry(entity.trim().to_string()).or_default();
        list.extend(
            ids.split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_string),
        );
    }
    Ok(entities)
}

/// `quiver online-features`.
pub async fn online_features(args: OnlineFeaturesArgs) -> Result<(), CliError> {
    let request = OnlineFeaturesRequest {
        features: args.features.clone(),
        entities: parse_entities(&args.entities)?,
    };
    let target = Target::open(&args.target).await?;
    let response: OnlineFeaturesResponse = match &target {
        Target::Remote(api) => {
            let body = serde_json::to_value(&request)
                .map_err(|e| CliError::failed(format!("cannot encode the request: {e}")))?;
            api.post("/online-features", &body, &|m| m.to_string())
                .await?
        }
        Target::Local(store) => {
            let runtime = crate::runtime::build(store.clone(), &args.target.store.data_dir)?;
            runtime
                .online_features(&request)
                .await
                .map_err(|e| CliError::failed(e.to_string()))?
        }
    };
    match args.target.output {
        OutputFormat::Text => crate::write_stdout(&render_online(&response)),
        OutputFormat::Json => crate::write_json(&response),
    }
}

fn render_online(response: &OnlineFeaturesResponse) -> String {
    let mut header = vec![response.entity.clone()];
    header.extend(response.features.iter().cloned());
    let mut rows = vec![header];
    for result in &response.results {
        let mut row = vec![result.entity.clone()];
        for value in &result.values {
            row.push(match value.status {
                ValueStatus::Present => match &value.value {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => match n.as_f64() {
                        Some(f) if n.is_f64() => format!("{f:.4}")
                            .trim_end_matches('0')
                            .trim_end_matches('.')
                            .to_string(),
                        _ => n.to_string(),
                    },
                    other => other.to_string(),
                },
                ValueStatus::Missing => "(missing)".to_string(),
                ValueStatus::Expired => "(expired)".to_string(),
            });
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `quiver jobs wait`: poll until nothing is queued or running.
pub async fn jobs_wait(target_args: &TargetArgs, timeout: Duration) -> Result<(), CliError> {
    let target = Target::open(target_args).await?;
    let started = Instant::now();
    let count = |state| {
        let target = &target;
        async move {
            let query = JobQuery {
                state: Some(state),
                resource: None,
                limit: 1,
                offset: 0,
            };
            Ok::<u64, CliError>(target.jobs(&query).await?.total)
        }
    };
    loop {
        let queued = count(JobState::Queued).await?;
        let running = count(JobState::Running).await?;
        if queued == 0 && running == 0 {
            break;
        }
        if started.elapsed() >= timeout {
            return Err(CliError::failed(format!(
                "timed out after {}: {queued} job(s) queued, {running} running (see `quiver jobs`)",
                humantime::format_duration(Duration::from_secs(timeout.as_secs()))
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let failed = target
        .jobs(&JobQuery {
            state: Some(JobState::Failed),
            resource: None,
            limit: 500,
            offset: 0,
        })
        .await?;
    if failed.total == 0 {
        let message = format!(
            "no job is queued or running (waited {:.1}s)\n",
            started.elapsed().as_secs_f64()
        );
        return match target_args.output {
            OutputFormat::Text => crate::write_stdout(&message),
            OutputFormat::Json => crate::write_json(&serde_json::json!({"failed": []})),
        };
    }
    let names: Vec<String> = failed
        .items
        .iter()
        .map(|job| {
            format!(
                "job {} ({} of {}): {}",
                job.id,
                job.kind,
                job.resource,
                crate::error::one_line(job.error.as_deref().unwrap_or("no error recorded"))
            )
        })
        .collect();
    Err(CliError::failed(format!(
        "{} job(s) failed: {}",
        failed.total,
        names.join("; ")
    )))
}

/// Follow job `id` until it ends: a progress bar of rows on stderr (when it is a
/// terminal), then one line on stdout. A failed or cancelled job is an error naming why.
pub async fn jobs_watch(
    target_args: &TargetArgs,
    id: i64,
    timeout: Duration,
) -> Result<(), CliError> {
    let target = Target::open(target_args).await?;
    let started = Instant::now();
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let counting = ProgressStyle::with_template(
        "{spinner} job {prefix}: {msg} {pos} rows ({per_sec}, {elapsed})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let bounded = ProgressStyle::with_template(
        "{spinner} job {prefix}: {msg} [{bar:30}] {pos}/{len} rows ({per_sec}, eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(counting);
    bar.set_prefix(id.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    let job = loop {
        let (job, _) = target.job(id).await?;
        bar.set_message(format!("{} {}", job.kind, job.state));
        if let Some(total) = job.progress_total {
            if bar.length() != Some(total.max(0) as u64) {
                bar.set_style(bounded.clone());
                bar.set_length(total.max(0) as u64);
            }
        }
        bar.set_position(job.progress_done.max(0) as u64);
        if job.state.is_terminal() {
            break job;
        }
        if started.elapsed() >= timeout {
            bar.finish_and_clear();
            return Err(CliError::failed(format!(
                "timed out after {} watching job {id}, still {} (progress {} rows)",
                humantime::format_duration(Duration::from_secs(timeout.as_secs())),
                job.state,
                job.progress_done
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    bar.finish_and_clear();
    let line = format!(
        "job {id} ({} of {}) {} after {} attempt(s): {} rows",
        job.kind, job.resource, job.state, job.attempts, job.progress_done
    );
    match job.state {
        JobState::Succeeded => match target_args.output {
            OutputFormat::Text => crate::write_stdout(&format!("{line}\n")),
            OutputFormat::Json => crate::write_json(&job),
        },
        _ => Err(CliError::failed(format!(
            "{line}: {}",
            crate::error::one_line(job.error.as_deref().unwrap_or("no error recorded"))
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_group_by_name() {
        let parsed = parse_entities(&["user=u1,u2".into(), "user=u3".into()]).unwrap();
        assert_eq!(parsed["user"], vec!["u1", "u2", "u3"]);
        let err = parse_entities(&["u1".into()]).unwrap_err();
        assert!(err.message().unwrap().contains("ENTITY=ID"));
    }

    #[test]
    fn downloads_go_to_a_partial_file_first() {
        assert_eq!(
            partial_path(Path::new("out/ts.parquet")),
            PathBuf::from("out/ts.parquet.partial")
        );
    }
}
