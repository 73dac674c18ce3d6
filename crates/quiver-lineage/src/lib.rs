//! The lineage DAG. Every reference between resources is an edge from the upstream
//! resource (the one referenced) to the downstream one (the one referring). The metadata
//! store persists edges; this crate holds them in a petgraph graph to find cycles and to
//! walk upstream ("where does this come from") or downstream ("what breaks if this
//! changes") with a depth limit.

use std::collections::{HashMap, HashSet, VecDeque};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction as PgDirection;
use quiver_core::{Definition, ResourceId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `upstream → downstream`: `downstream`'s definition references `upstream`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct Edge {
    pub upstream: ResourceId,
    pub downstream: ResourceId,
}

/// Which way to walk from a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Upstream,
    Downstream,
}

/// The edges a definition contributes. References must be pinned (see
/// `Definition::pin_references`); an unpinned one is skipped because it names no node.
pub fn edges_of(definition: &Definition) -> Vec<Edge> {
    let downstream = definition.id();
    let mut edges: Vec<Edge> = definition
        .references()
        .into_iter()
        .filter_map(|r| {
            let variant = r.variant?;
            Some(Edge {
                upstream: ResourceId::new(r.kind, r.name, variant),
                downstream: downstream.clone(),
            })
        })
        .collect();
    edges.sort();
    edges.dedup();
    edges
}

/// An in-memory lineage graph.
#[derive(Debug, Default)]
pub struct LineageGraph {
    graph: DiGraph<ResourceId, ()>,
    nodes: HashMap<ResourceId, NodeIndex>,
}

impl LineageGraph {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_edges<'a>(edges: impl IntoIterator<Item = &'a Edge>) -> Self {
        let mut g = Self::new();
        for e in edges {
            g.add_edge(e);
        }
        g
    }

    pub fn add_node(&mut self, id: &ResourceId) -> NodeIndex {
        if let Some(ix) = self.nodes.get(id) {
            return *ix;
        }
        let ix = self.graph.add_node(id.clone());
        self.nodes.insert(id.clone(), ix);
        ix
    }

    pub fn add_edge(&mut self, edge: &Edge) {
        let a = self.add_node(&edge.upstream);
        let b = self.add_node(&edge.downstream);
        if self.graph.find_edge(a, b).is_none() {
            self.graph.add_edge(a, b, ());
        }
    }

    pub fn contains(&self, id: &ResourceId) -> bool {
        self.nodes.contains_key(id)
    }

    /// A cycle, if any, as the path of resources `a → b → … → a`.
    pub fn find_cycle(&self) -> Option<Vec<ResourceId>> {
        // Strongly connected components with more than one node, or a self-loop, hold
        // cycles; walk inside one to name a concrete path.
        for component in petgraph::algo::kosaraju_scc(&self.graph) {
            let start = component[0];
            let self_loop = self.graph.find_edge(start, start).is_some();
            if component.len() == 1 && !self_loop {
                continue;
            }
            let members: HashSet<NodeIndex> = component.iter().copied().collect();
            return Some(self.cycle_through(start, &members));
        }
        None
    }

    /// Breadth-first search from `start` back to itself within one component.
    fn cycle_through(&self, start: NodeIndex, members: &HashSet<NodeIndex>) -> Vec<ResourceId> {
        let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            let mut next: Vec<NodeIndex> = self
                .graph
                .neighbors(n)
                .filter(|m| members.contains(m))
                .collect();
            next.sort_by(|a, b| self.graph[*a].cmp(&self.graph[*b]));
            for m in next {
                if m == start {
                    let mut path = vec![self.graph[start].clone()];
                    let mut cur = n;
                    let mut back = Vec::new();
                    while cur != start {
                        back.push(self.graph[cur].clone());
                        cur = parent[&cur];
                    }
                    back.reverse();
                    path.extend(back);
                    path.push(self.graph[start].clone());
                    return path;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(m) {
                    e.insert(n);
                    queue.push_back(m);
                }
            }
        }
        vec![self.graph[start].clone()]
    }

    /// Resources reachable from `start` in `direction`, each with its distance, nearest
    /// first, at most `depth` steps away. `start` itself is not included.
    pub fn walk(
        &self,
        start: &ResourceId,
        direction: Direction,
        depth: usize,
    ) -> Vec<(ResourceId, usize)> {
        let Some(&origin) = self.nodes.get(start) else {
            return Vec::new();
        };
        let pg_dir = match direction {
            Direction::Upstream => PgDirection::Incoming,
            Direction::Downstream => PgDirection::Outgoing,
        };
        let mut seen = HashSet::from([origin]);
        let mut out = Vec::new();
        let mut frontier = vec![origin];
        for distance in 1..=depth {
            let mut next = Vec::new();
            for n in frontier {
                for m in self.graph.neighbors_directed(n, pg_dir) {
                    if seen.insert(m) {
                        next.push(m);
                    }
                }
            }
            let mut level: Vec<ResourceId> =
                next.iter().map(|ix| self.graph[*ix].clone()).collect();
            level.sort();
            out.extend(level.into_iter().map(|id| (id, distance)));
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        out
    }

    /// All edges of the graph, sorted.
    pub fn edges(&self) -> Vec<Edge> {
        let mut out: Vec<Edge> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .map(|(a, b)| Edge {
                upstream: self.graph[a].clone(),
                downstream: self.graph[b].clone(),
            })
            .collect();
        out.sort();
        out
    }
}

/// Render a cycle path for messages: `source a:v1 → source b:v1 → source a:v1`.
pub fn describe_path(path: &[ResourceId]) -> String {
    path.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" → ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_core::Kind;

    fn src(n: &str) -> ResourceId {
        ResourceId::new(Kind::Source, n, "v1")
    }

    fn edge(a: &str, b: &str) -> Edge {
        Edge {
            upstream: src(a),
            downstream: src(b),
        }
    }

    #[test]
    fn finds_and_names_a_cycle() {
        let g = LineageGraph::from_edges(&[
            edge("a", "b"),
            edge("b", "c"),
            edge("c", "a"),
            edge("c", "d"),
        ]);
        let path = g.find_cycle().expect("cycle");
        assert_eq!(path.first(), path.last());
        assert_eq!(path.len(), 4, "{}", describe_path(&path));
        let g = LineageGraph::from_edges(&[edge("a", "a")]);
        assert_eq!(g.find_cycle().unwrap(), vec![src("a"), src("a")]);
        let g = LineageGraph::from_edges(&[
            edge("a", "b"),
            edge("a", "c"),
            edge("b", "d"),
            edge("c", "d"),
        ]);
        assert!(g.find_cycle().is_none());
    }

    #[test]
    fn walks_with_a_depth_limit() {
        let g = LineageGraph::from_edges(&[
            edge("a", "b"),
            edge("b", "c"),
            edge("c", "d"),
            edge("a", "c"),
        ]);
        let down: Vec<_> = g.walk(&src("a"), Direction::Downstream, 1);
        assert_eq!(down, vec![(src("b"), 1), (src("c"), 1)]);
        let down = g.walk(&src("a"), Direction::Downstream, 10);
        assert_eq!(down.len(), 3);
        let up = g.walk(&src("d"), Direction::Upstream, 2);
        assert_eq!(up, vec![(src("c"), 1), (src("a"), 2), (src("b"), 2)]);
    }

    #[test]
    fn edges_come_from_pinned_references() {
        let d: Definition = serde_json::from_value(serde_json::json!({
            "kind": "feature", "name": "f", "variant": "v1", "owner": "o", "entity": "user",
            "source": "tx:v3", "value_column": "x", "value_type": "int64", "online_provider": "redis"
        }))
        .unwrap();
        let ups: Vec<String> = edges_of(&d)
            .iter()
            .map(|e| e.upstream.to_string())
            .collect();
        assert_eq!(ups, ["provider redis", "entity user", "source tx:v3"]);
    }
}
