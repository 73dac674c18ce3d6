//! `quiver-quickstart-data DIR [--seed N] [--users N] [--end-date YYYY-MM-DD]` writes the
//! quickstart's data; `quiver-quickstart-data summarize FILE.parquet` describes a
//! downloaded training set. See the library for what is generated.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{NaiveDate, Utc};
use quiver_quickstart_data::{generate, summarize, Options};

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut seed = 42;
    let mut users = 1_000;
    let mut end = Utc::now().date_naive();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--seed" => {
                seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--users" => {
                users = value("--users")?
                    .parse()
                    .map_err(|e| format!("--users: {e}"))?
            }
            "--end-date" => {
                end = NaiveDate::parse_from_str(&value("--end-date")?, "%Y-%m-%d")
                    .map_err(|e| format!("--end-date: {e} (write YYYY-MM-DD)"))?
            }
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            other => dir = Some(PathBuf::from(other)),
        }
    }
    let dir = dir.ok_or(
        "usage: quiver-quickstart-data DIR [--seed N] [--users N] [--end-date YYYY-MM-DD]",
    )?;
    let end = end
        .and_hms_opt(0, 0, 0)
        .ok_or("invalid end date")?
        .and_utc();
    Ok(Options {
        dir,
        seed,
        users,
        end,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("summarize") => match args.get(2) {
            Some(path) => summarize(Path::new(path)),
            None => Err("usage: quiver-quickstart-data summarize FILE.parquet".into()),
        },
        _ => parse_args().and_then(|o| generate(&o)),
    };
    match result {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
