//! Text output for people: tables, a definition as YAML, a lineage tree, job details.
//! `--output json` bypasses all of this and prints the API's documents.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use quiver_core::{Definition, ResourceId};
use quiver_lineage::Direction;
use quiver_metadata::{Job, JobRun};

use crate::views::{JobPage, LineageView, ResourcePage, ResourceView};

const DESCRIPTION_WIDTH: usize = 48;

/// A plain aligned table; the last column is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &mut dyn Iterator<Item = &str>, out: &mut String| {
        let cells: Vec<&str> = cells.collect();
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied(), &mut out);
    for row in rows {
        line(&mut row.iter().map(String::as_str), &mut out);
    }
    out
}

fn truncate(text: &str, width: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= width {
        flat
    } else {
        let cut: String = flat.chars().take(width - 1).collect();
        format!("{}…", cut.trim_end())
    }
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text.to_string()
    }
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn resource_table(page: &ResourcePage, offset: u64) -> String {
    if page.items.is_empty() {
        return if page.total > 0 {
            format!(
                "No resources on this page ({} in all; lower --offset).\n",
                page.total
            )
        } else {
            "No resources found.\n".to_string()
        };
    }
    let rows: Vec<Vec<String>> = page
        .items
        .iter()
        .map(|r| {
            vec![
                r.kind.to_string(),
                r.name.clone(),
                or_dash(&r.variant),
                r.status.to_string(),
                r.owner.clone(),
                truncate(&r.description, DESCRIPTION_WIDTH),
            ]
        })
        .collect();
    let mut out = table(
        &["KIND", "NAME", "VARIANT", "STATUS", "OWNER", "DESCRIPTION"],
        &rows,
    );
    out.push_str(&next_page(
        offset,
        page.items.len(),
        page.total,
        page.next_offset,
    ));
    out
}

/// The definition as YAML, ready to be re-applied (secrets stay redacted), headed by
/// comments with what is not part of the definition.
pub fn resource_yaml(r: &ResourceView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}", r.id());
    let mut facts = vec![format!("status: {}", r.status)];
    if r.kind.is_versioned() && r.is_default {
        facts.push("default variant".to_string());
    }
    facts.push(format!("created {}", time(&r.created_at)));
    let _ = writeln!(out, "# {}", facts.join(" · "));
    if let Some(error) = &r.error {
        let _ = writeln!(out, "# error: {}", truncate(error, 200));
    }
    // Through the typed definition, so fields come in the order people write them
    // (`kind`, `name`, …) rather than alphabetically.
    let yaml = match serde_json::from_value::<Definition>(r.definition.clone()) {
        Ok(definition) => serde_yaml::to_string(&definition),
        Err(_) => serde_yaml::to_string(&r.definition),
    };
    out.push_str(&yaml.unwrap_or_default());
    out
}

/// The lineage as one tree per walk from the root, each resource with its status. A
/// resource reached twice in a tree is expanded once.
pub fn lineage(graph: &LineageView, walks: &[Direction]) -> String {
    let status: BTreeMap<ResourceId, String> = graph
        .nodes
        .iter()
        .map(|n| {
            let id = ResourceId::new(n.kind, n.name.clone(), n.variant.clone());
            (id, n.status.map(|s| format!(" [{s}]")).unwrap_or_default())
        })
        .collect();
    let label =
        |id: &ResourceId| format!("{id}{}", status.get(id).map(String::as_str).unwrap_or(""));
    let mut out = format!("{}\n", label(&graph.root));
    for walk in walks {
        let mut next: BTreeMap<&ResourceId, BTreeSet<&ResourceId>> = BTreeMap::new();
        for e in &graph.edges {
            let (from, to) = match walk {
                Direction::Upstream => (&e.downstream, &e.upstream),
                Direction::Downstream => (&e.upstream, &e.downstream),
            };
            next.entry(from).or_default().insert(to);
        }
        let heading = match walk {
            Direction::Upstream => "upstream (what it is built from)",
            Direction::Downstream => "downstream (what depends on it)",
        };
        if walks.len() > 1 {
            let _ = writeln!(out, "{heading}:");
        }
        if !next.contains_key(&graph.root) {
            out.push_str("└── (none)\n");
            continue;
        }
        let mut expanded = BTreeSet::from([&graph.root]);
        tree(&graph.root, "", &next, &label, &mut expanded, &mut out);
    }
    out
}

fn tree<'a>(
    node: &'a ResourceId,
    prefix: &str,
    next: &BTreeMap<&'a ResourceId, BTreeSet<&'a ResourceId>>,
    label: &dyn Fn(&ResourceId) -> String,
    expanded: &mut BTreeSet<&'a ResourceId>,
    out: &mut String,
) {
    let Some(children) = next.get(node) else {
        return;
    };
    let count = children.len();
    for (i, child) in children.iter().enumerate() {
        let last = i + 1 == count;
        let branch = if last { "└── " } else { "├── " };
        let repeated = !expanded.insert(child) && next.contains_key(child);
        let note = if repeated { " (see above)" } else { "" };
        let _ = writeln!(out, "{prefix}{branch}{}{note}", label(child));
        if !repeated {
            let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
            tree(child, &deeper, next, label, expanded, out);
        }
    }
}

pub fn jobs_table(page: &JobPage, offset: u64) -> String {
    if page.items.is_empty() {
        return "No jobs found.\n".to_string();
    }
    let rows: Vec<Vec<String>> = page
        .items
        .iter()
        .map(|j| {
            vec![
                j.id.to_string(),
                j.kind.to_string(),
                j.resource.to_string(),
                j.state.to_string(),
                format!("{}/{}", j.attempts, j.max_attempts),
                match (j.started_at, j.finished_at) {
                    (Some(start), Some(end)) => {
                        format!("{:.1}s", (end - start).num_milliseconds() as f64 / 1000.0)
                    }
                    _ => String::new(),
                },
                time(&j.updated_at),
                truncate(j.error.as_deref().unwrap_or(""), DESCRIPTION_WIDTH),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "ID", "KIND", "RESOURCE", "STATE", "ATTEMPTS", "DURATION", "UPDATED", "ERROR",
        ],
        &rows,
    );
    out.push_str(&next_page(
        offset,
        page.items.len(),
        page.total,
        page.next_offset,
    ));
    out
}

/// Materialization schedules, soonest next run first.
pub fn schedules_table(schedules: &[quiver_metadata::Schedule]) -> String {
    if schedules.is_empty() {
        return "No schedules: give a feature `materialization: {schedule: \"*/15 * * * *\"}`.\n"
            .to_string();
    }
    let rows: Vec<Vec<String>> = schedules
        .iter()
        .map(|s| {
            vec![
                s.resource.to_string(),
                s.cron.clone(),
                s.next_run_at
                    .as_ref()
                    .map(time)
                    .unwrap_or_else(|| "never".into()),
                s.last_job_id.map(|id| id.to_string()).unwrap_or_default(),
                s.skipped_runs.to_string(),
                s.watermark.as_ref().map(time).unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "RESOURCE",
            "SCHEDULE",
            "NEXT RUN",
            "LAST JOB",
            "SKIPPED",
            "WATERMARK",
        ],
        &rows,
    )
}

/// `Showing 1-100 of 250; next page: --offset 100` when there is a next page.
fn next_page(offset: u64, shown: usize, total: u64, next: Option<u64>) -> String {
    match next {
        Some(next) => format!(
            "Showing {}-{} of {total}; next page: --offset {next}\n",
            offset + 1,
            offset + shown as u64
        ),
        None => String::new(),
    }
}

pub fn job_details(job: &Job, runs: &[JobRun]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "job {}: {} of {}", job.id, job.kind, job.resource);
    let _ = writeln!(
        out,
        "state:     {} (attempt {} of {})",
        job.state, job.attempts, job.max_attempts
    );
    let _ = writeln!(out, "created:   {}", time(&job.created_at));
    let _ = writeln!(out, "updated:   {}", time(&job.updated_at));
    if !job.state.is_terminal() {
        let _ = writeln!(out, "run after: {}", time(&job.run_after));
    }
    if let (Some(owner), Some(expires)) = (&job.lease_owner, &job.lease_expires_at) {
        let _ = writeln!(out, "lease:     {owner} until {}", time(expires));
    }
    if let Some(total) = job.progress_total {
        let _ = writeln!(out, "progress:  {} of {total}", job.progress_done);
    }
    if let Some(error) = &job.error {
        let _ = writeln!(out, "error:     {error}");
    }
    if runs.is_empty() {
        out.push_str("runs:      none yet\n");
    }
    for run in runs {
        let finished = run
            .finished_at
            .as_ref()
            .map(time)
            .unwrap_or_else(|| "-".to_string());
        let _ = writeln!(
            out,
            "\nrun {} (attempt {}): {} by {}, started {}, finished {finished}",
            run.id,
            run.attempt,
            run.state,
            run.lease_owner,
            time(&run.started_at)
        );
        if let Some(rows) = run.rows_written {
            let _ = writeln!(out, "  rows written: {rows}");
        }
        if let Some(error) = &run.error {
            let _ = writeln!(out, "  error: {error}");
        }
        if run.logs.trim().is_empty() {
            out.push_str("  logs: (none)\n");
        } else {
            out.push_str("  logs:\n");
            for line in run.logs.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::LineageNode;
    use quiver_core::{Kind, Status};
    use quiver_lineage::Edge;

    fn id(kind: Kind, name: &str, variant: &str) -> ResourceId {
        ResourceId::new(kind, name, variant)
    }

    #[test]
    fn lineage_renders_trees_and_expands_shared_nodes_once() {
        let ts = id(Kind::TrainingSet, "t", "v1");
        let f1 = id(Kind::Feature, "a", "v1");
        let f2 = id(Kind::Feature, "b", "v1");
        let src = id(Kind::Source, "s", "v1");
        let prov = id(Kind::Provider, "p", "");
        let model = id(Kind::Model, "m", "");
        let edges = [
            (&f1, &ts),
            (&f2, &ts),
            (&src, &f1),
            (&src, &f2),
            (&prov, &src),
            (&ts, &model),
        ]
        .map(|(u, d)| Edge {
            upstream: u.clone(),
            downstream: d.clone(),
        });
        let nodes = [&ts, &f1, &f2, &src, &prov, &model]
            .map(|i| LineageNode {
                kind: i.kind,
                name: i.name.clone(),
                variant: i.variant.clone(),
                status: (i == &ts).then_some(Status::Pending),
            })
            .to_vec();
        let graph = LineageView {
            root: ts.clone(),
            nodes,
            edges: edges.to_vec(),
        };
        assert_eq!(
            lineage(&graph, &[Direction::Upstream, Direction::Downstream]),
            "\
training_set t:v1 [pending]
upstream (what it is built from):
├── feature a:v1
│   └── source s:v1
│       └── provider p
└── feature b:v1
    └── source s:v1 (see above)
downstream (what depends on it):
└── model m
"
        );
        let lonely = LineageView {
            root: prov.clone(),
            nodes: Vec::new(),
            edges: Vec::new(),
        };
        assert_eq!(
            lineage(&lonely, &[Direction::Upstream]),
            "provider p\n└── (none)\n"
        );
    }

    #[test]
    fn tables_align_and_truncate() {
        let rows = vec![vec![
            "a".to_string(),
            "long cell".to_string(),
            "x".to_string(),
        ]];
        assert_eq!(
            table(&["K", "NAME", "LAST"], &rows),
            "K  NAME       LAST\na  long cell  x\n"
        );
        assert_eq!(truncate("one two\nthree", 7), "one tw…");
    }
}
