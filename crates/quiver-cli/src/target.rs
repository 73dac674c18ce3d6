//! The store a command works on: a running server over HTTP (`--server`), or the metadata
//! store opened in this process (`--data-dir` / `--database-url`). Both answer with the
//! same types, so rendering never cares which one it was.

use std::collections::BTreeSet;
use std::sync::Arc;

use quiver_core::{Kind, SourcedDefinition};
use quiver_metadata::{Job, JobQuery, JobRun, ListQuery, MetadataStore, Plan};

use crate::args::{LineageDirection, TargetArgs};
use crate::client::ApiClient;
use crate::error::CliError;
use crate::views::{JobPage, LineageNode, LineageView, ResourcePage, ResourceView};

pub enum Target {
    Remote(ApiClient),
    Local(Arc<dyn MetadataStore>),
}

impl Target {
    /// `--server` (or `QUIVER_SERVER`) wins; otherwise open the store here, running
    /// migrations like `quiver serve` does.
    pub async fn open(args: &TargetArgs) -> Result<Self, CliError> {
        if let Some(server) = &args.server {
            return Ok(Target::Remote(ApiClient::new(server)?));
        }
        let store =
            quiver_metadata::connect(args.store.database_url.as_deref(), &args.store.data_dir)
                .await
                .map_err(|e| CliError::failed(format!("cannot open the metadata store: {e}")))?;
        Ok(Target::Local(store))
    }

    pub async fn plan(&self, definitions: &[SourcedDefinition]) -> Result<Plan, CliError> {
        match self {
            Target::Remote(api) => send_definitions(api, "/plan", definitions).await,
            Target::Local(store) => Ok(store.plan(definitions.to_vec()).await?),
        }
    }

    pub async fn apply(&self, definitions: &[SourcedDefinition]) -> Result<Plan, CliError> {
        match self {
            Target::Remote(api) => send_definitions(api, "/apply", definitions).await,
            Target::Local(store) => Ok(store.apply(definitions.to_vec()).await?),
        }
    }

    pub async fn list(&self, query: &ListQuery) -> Result<ResourcePage, CliError> {
        match self {
            Target::Remote(api) => {
                let kind = query
                    .kind
                    .ok_or_else(|| CliError::usage("a kind is required"))?;
                let mut params = vec![
                    ("limit", query.limit.to_string()),
                    ("offset", query.offset.to_string()),
                    ("all_variants", (!query.defaults_only).to_string()),
                ];
                let optional = [
                    ("owner", query.owner.clone()),
                    ("tag", query.tag.clone()),
                    ("status", query.status.map(|s| s.to_string())),
                    ("q", query.text.clone()),
                ];
                params.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
                api.get(&format!("/{}", kind.plural()), &params).await
            }
            Target::Local(store) => {
                let page = store.list(query).await?;
                Ok(ResourcePage::from_records(page))
            }
        }
    }

    pub async fn get(
        &self,
        kind: Kind,
        name: &str,
        variant: Option<&str>,
    ) -> Result<ResourceView, CliError> {
        match self {
            Target::Remote(api) => {
                let path = match variant {
                    Some(v) => format!("/{}/{}/{}", kind.plural(), encode(name), encode(v)),
                    None => format!("/{}/{}", kind.plural(), encode(name)),
                };
                api.get(&path, &[]).await
            }
            Target::Local(store) => match store.get(kind, name, variant).await? {
                Some(record) => Ok(ResourceView::from_record(&record)),
                None => Err(CliError::failed(not_found(kind, name, variant))),
            },
        }
    }

    pub async fn lineage(
        &self,
        kind: Kind,
        name: &str,
        variant: Option<&str>,
        direction: LineageDirection,
        depth: u32,
    ) -> Result<LineageView, CliError> {
        match self {
            Target::Remote(api) => {
                let path = match variant {
                    Some(v) => format!("/lineage/{kind}/{}/{}", encode(name), encode(v)),
                    None => format!("/lineage/{kind}/{}", encode(name)),
                };
                let params = [
                    ("direction", direction.as_str().to_string()),
                    ("depth", depth.to_string()),
                ];
                api.get(&path, &params).await
            }
            Target::Local(store) => {
                // The same graph the API builds: the resource's (default) variant, the
                // edges of each walk, and every node with its status.
                let root = store
                    .get(kind, name, variant)
                    .await?
                    .ok_or_else(|| CliError::failed(not_found(kind, name, variant)))?
                    .id;
                let mut edges = BTreeSet::new();
                for walk in direction.walks() {
                    edges.extend(store.lineage(&root, *walk, depth).await?);
                }
                let mut ids = BTreeSet::from([root.clone()]);
                for e in &edges {
                    ids.insert(e.upstream.clone());
                    ids.insert(e.downstream.clone());
                }
                let mut nodes = Vec::with_capacity(ids.len());
                for id in ids {
                    let variant = (!id.variant.is_empty()).then_some(id.variant.as_str());
                    let status = store
                        .get(id.kind, &id.name, variant)
                        .await?
                        .map(|r| r.status);
                    nodes.push(LineageNode {
                        kind: id.kind,
                        name: id.name,
                        variant: id.variant,
                        status,
                    });
                }
                Ok(LineageView {
                    root,
                    nodes,
                    edges: edges.into_iter().collect(),
                })
            }
        }
    }

    pub async fn jobs(&self, query: &JobQuery) -> Result<JobPage, CliError> {
        match self {
            Target::Remote(api) => {
                let mut params = vec![
                    ("limit", query.limit.to_string()),
                    ("offset", query.offset.to_string()),
                ];
                if let Some(state) = query.state {
                    params.push(("state", state.to_string()));
                }
                api.get("/jobs", &params).await
            }
            Target::Local(store) => Ok(JobPage::from_page(store.list_jobs(query).await?)),
        }
    }

    pub async fn cancel_job(&self, id: i64) -> Result<Job, CliError> {
        match self {
            Target::Remote(api) => {
                api.post(
                    &format!("/jobs/{id}/cancel"),
                    &serde_json::json!({}),
                    &|m| m.to_string(),
                )
                .await
            }
            Target::Local(store) => Ok(store.cancel_job(id).await?),
        }
    }

    pub async fn retry_job(&self, id: i64) -> Result<Job, CliError> {
        match self {
            Target::Remote(api) => {
                api.post(&format!("/jobs/{id}/retry"), &serde_json::json!({}), &|m| {
                    m.to_string()
                })
                .await
            }
            Target::Local(store) => Ok(store.retry_job(id).await?),
        }
    }

    pub async fn schedules(&self) -> Result<Vec<quiver_metadata::Schedule>, CliError> {
        match self {
            Target::Remote(api) => api.get("/schedules", &[]).await,
            Target::Local(store) => Ok(store.schedules().await?),
        }
    }

    pub async fn job(&self, id: i64) -> Result<(Job, Vec<JobRun>), CliError> {
        match self {
            Target::Remote(api) => {
                let job: Job = api.get(&format!("/jobs/{id}"), &[]).await?;
                let runs: Vec<JobRun> = api.get(&format!("/jobs/{id}/runs"), &[]).await?;
                Ok((job, runs))
            }
            Target::Local(store) => {
                let job = store
                    .get_job(id)
                    .await?
                    .ok_or_else(|| CliError::failed(format!("job {id} not found")))?;
                let runs = store.job_runs(id).await?;
                Ok((job, runs))
            }
        }
    }
}

/// Send parsed definitions as JSON documents. The server names them `documents[i]`; map
/// that back to the file and line each came from, in the plan and in error messages.
async fn send_definitions(
    api: &ApiClient,
    path: &str,
    definitions: &[SourcedDefinition],
) -> Result<Plan, CliError> {
    let documents: Vec<serde_json::Value> = definitions
        .iter()
        .map(|d| serde_json::to_value(&d.definition))
        .collect::<Result<_, _>>()
        .map_err(|e| CliError::failed(format!("cannot encode definitions: {e}")))?;
    let origins: Vec<&str> = definitions.iter().map(|d| d.origin.as_str()).collect();
    let explain = |message: &str| restore_origins(message, &origins);
    let mut plan: Plan = api
        .post(
            path,
            &serde_json::json!({ "documents": documents }),
            &explain,
        )
        .await?;
    for item in &mut plan.items {
        item.origin = restore_origins(&item.origin, &origins);
    }
    Ok(plan)
}

/// Replace every `documents[i]` in `text` by `origins[i]`.
pub fn restore_origins(text: &str, origins: &[&str]) -> String {
    const MARK: &str = "documents[";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(MARK) {
        out.push_str(&rest[..start]);
        let after = &rest[start + MARK.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let index = after[..digits].parse::<usize>().ok();
        match (index, after[digits..].starts_with(']')) {
            (Some(i), true) if i < origins.len() => {
                out.push_str(origins[i]);
                rest = &after[digits + 1..];
            }
            _ => {
                out.push_str(MARK);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn not_found(kind: Kind, name: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) => format!("{kind} `{name}:{v}` not found"),
        None => format!("{kind} `{name}` not found"),
    }
}

/// Percent-encode a path segment. Valid names never need it, but a mistyped one must
/// reach the server as one segment and come back as a clear "not found" or "invalid".
pub(crate) fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_indices_map_back_to_files() {
        let origins = ["defs/a.yaml:1", "defs/b.yaml:7"];
        assert_eq!(
            restore_origins(
                "documents[1]: feature x refers to y; see documents[0]",
                &origins
            ),
            "defs/b.yaml:7: feature x refers to y; see defs/a.yaml:1"
        );
        assert_eq!(
            restore_origins("documents[9] documents[x]", &origins),
            "documents[9] documents[x]"
        );
        assert_eq!(restore_origins("documents[", &origins), "documents[");
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode("avg_amount-7d"), "avg_amount-7d");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
    }
}
