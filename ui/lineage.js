// The lineage graph: cytoscape.js with the dagre layout (vendored, see README.md).
// Kinds are told apart by shape and colour (and by a legend); clicking or pressing Enter
// on a node opens its page. A plain list of the same nodes follows the drawing for
// keyboard and screen-reader use.

import cytoscape from './vendor/cytoscape-3.34.4.esm.min.mjs';
import dagre from './vendor/cytoscape-dagre-4.0.1.min.mjs';
import { h, fill, statusBadge } from './dom.js';
import { get, resourcePath, kindInfo } from './api.js';

cytoscape.use(dagre);

export const KIND_STYLE = {
  provider: { shape: 'barrel', color: '#64748b' },
  user: { shape: 'ellipse', color: '#94a3b8' },
  entity: { shape: 'diamond', color: '#d97706' },
  source: { shape: 'round-rectangle', color: '#0891b2' },
  feature: { shape: 'ellipse', color: '#4f46e5' },
  label: { shape: 'hexagon', color: '#db2777' },
  training_set: { shape: 'round-tag', color: '#16a34a' },
  model: { shape: 'star', color: '#9333ea' },
};
const STATUS_BORDER = { failed: '#dc2626', pending: '#ca8a04', running: '#2563eb' };

const nodeId = (n) => `${n.kind}/${n.name}/${n.variant || ''}`;

/** Past this many nodes a drawing is no longer readable (nor quick): the page lists the
 * nodes instead and suggests a smaller depth. */
const MAX_DRAWN_NODES = 300;

/** Shared resources (a provider, an entity, a user) fan out to everything built on
 * them: start those one step deep. */
export function defaultDepth(kind) {
  return ['provider', 'entity', 'user'].includes(kind) ? 1 : 2;
}

/**
 * Draw the lineage of `root` ({kind, name, variant}) into `container` with a depth
 * control. `onNavigate(path)` opens a node's page. Answers the graph shown.
 */
export async function renderLineage(container, root, onNavigate, depth = defaultDepth(root.kind)) {
  const legend = h('ul', { class: 'legend', 'aria-label': 'Legend' },
    Object.entries(KIND_STYLE).map(([kind, style]) => h('li', null,
      h('span', { class: `legend-swatch shape-${style.shape}`, 'data-kind': kind, 'aria-hidden': 'true' }),
      kind.replace('_', ' '))));
  const depthSelect = h('select', { id: 'lineage-depth' },
    [1, 2, 3, 4, 6, 10].map((d) => h('option', { value: d, selected: d === depth }, String(d))));
  const directionSelect = h('select', { id: 'lineage-direction' },
    [['both', 'Both ways'], ['upstream', 'Upstream only'], ['downstream', 'Downstream only']]
      .map(([v, t]) => h('option', { value: v }, t)));
  const status = h('span', { class: 'muted', role: 'status' });
  const canvas = h('div', { class: 'graph', id: 'lineage-graph', role: 'img', 'aria-label': `Lineage graph of ${root.name}` });
  const fit = h('button', { type: 'button', class: 'button small' }, 'Fit');
  const list = h('ul', { class: 'node-list' });
  fill(container, 
    h('div', { class: 'graph-toolbar' },
      h('label', { for: 'lineage-depth' }, 'Depth'), depthSelect,
      h('label', { for: 'lineage-direction' }, 'Direction'), directionSelect,
      fit, status),
    canvas,
    legend,
    h('details', { class: 'node-list-wrap' }, h('summary', null, 'Nodes as a list'), list));

  let cy = null;
  const draw = async () => {
    status.textContent = 'Loading…';
    const path = `/api/v1/lineage/${root.kind}/${encodeURIComponent(root.name)}${root.variant ? `/${encodeURIComponent(root.variant)}` : ''}`;
    const graph = await get(path, { depth: depthSelect.value, direction: directionSelect.value });
    const rootId = nodeId(graph.root);
    if (cy) { cy.destroy(); cy = null; }
    renderList(graph);
    if (graph.nodes.length > MAX_DRAWN_NODES) {
      status.textContent = `${graph.nodes.length} nodes: too many to draw readably. Lower the depth or choose one direction; the nodes are listed below.`;
      canvas.hidden = true;
      list.closest('details').open = true;
      canvas.dataset.ready = 'true';
      canvas.dataset.nodes = String(graph.nodes.length);
      return graph;
    }
    canvas.hidden = false;
    const css = getComputedStyle(document.documentElement);
    const text = css.getPropertyValue('--text').trim() || '#111827';
    const edgeColor = css.getPropertyValue('--border-strong').trim() || '#94a3b8';
    const surface = css.getPropertyValue('--surface').trim() || '#ffffff';
    const elements = [
      ...graph.nodes.map((n) => ({
        data: {
          id: nodeId(n),
          label: n.variant ? `${n.name}\n${n.variant}` : n.name,
          kind: n.kind,
          status: n.status || 'unknown',
          path: resourcePath(n.kind, n.name, kindInfo(n.kind).versioned ? n.variant : null),
          root: nodeId(n) === rootId ? 1 : 0,
        },
      })),
      ...graph.edges.map((e) => ({ data: { id: `${nodeId(e.upstream)}->${nodeId(e.downstream)}`, source: nodeId(e.upstream), target: nodeId(e.downstream) } })),
    ];
    cy = cytoscape({
      container: canvas,
      elements,
      minZoom: 0.2,
      maxZoom: 2.5,
      boxSelectionEnabled: false,
      style: [
        {
          selector: 'node',
          style: {
            shape: (n) => KIND_STYLE[n.data('kind')]?.shape || 'ellipse',
            'background-color': (n) => KIND_STYLE[n.data('kind')]?.color || '#64748b',
            width: 34,
            height: 34,
            label: 'data(label)',
            'text-wrap': 'wrap',
            'text-valign': 'bottom',
            'text-margin-y': 6,
            'font-size': 12,
            'font-family': 'system-ui, sans-serif',
            color: text,
            'text-background-color': surface,
            'text-background-opacity': 0.85,
            'text-background-padding': 2,
            'border-width': (n) => (STATUS_BORDER[n.data('status')] ? 3 : 0),
            'border-color': (n) => STATUS_BORDER[n.data('status')] || '#000',
          },
        },
        { selector: 'node[root = 1]', style: { width: 46, height: 46, 'font-weight': 'bold', 'underlay-color': '#6366f1', 'underlay-opacity': 0.25, 'underlay-padding': 8 } },
        { selector: 'node:active, node.hover', style: { 'overlay-opacity': 0.12 } },
        {
          selector: 'edge',
          style: {
            width: 1.6,
            'line-color': edgeColor,
            'target-arrow-color': edgeColor,
            'target-arrow-shape': 'triangle',
            'curve-style': 'bezier',
            'arrow-scale': 0.9,
          },
        },
      ],
    });
    // Big graphs: a taller canvas, and never so far zoomed out that labels cannot be
    // read — the root stays in view and the rest is a scroll or a drag away ("Fit"
    // shows everything).
    canvas.style.height = graph.nodes.length > 20 ? '640px' : '';
    cy.resize();
    // Labels count in the node sizes, so dagre keeps them apart.
    cy.layout({
      name: 'dagre', rankDir: 'LR', nodeSep: 18, rankSep: 70, edgeSep: 10, padding: 24, fit: true,
      nodeDimensionsIncludeLabels: true,
    }).run();
    // A small graph is not blown up; a big one is not shrunk past legibility.
    const READABLE_ZOOM = 0.85;
    const MAX_FIT_ZOOM = 1.15;
    if (cy.zoom() > MAX_FIT_ZOOM) {
      cy.zoom(MAX_FIT_ZOOM);
      cy.center();
    } else if (cy.zoom() < READABLE_ZOOM) {
      cy.zoom(READABLE_ZOOM);
      cy.center(cy.getElementById(rootId));
    }
    // The browser tests read node positions from here to click a node like a person.
    window.quiverGraph = cy;
    cy.on('tap', 'node', (event) => onNavigate(event.target.data('path')));
    cy.on('mouseover', 'node', (event) => { event.target.addClass('hover'); canvas.style.cursor = 'pointer'; });
    cy.on('mouseout', 'node', (event) => { event.target.removeClass('hover'); canvas.style.cursor = ''; });
    // Tall graphs get a taller canvas so labels stay readable.
    canvas.dataset.nodes = String(graph.nodes.length);
    status.textContent = `${graph.nodes.length} nodes, ${graph.edges.length} edges`;
    canvas.dataset.ready = 'true';
    return graph;
  };
  function renderList(graph) {
    fill(list, graph.nodes.slice(0, 2000).map((n) => h('li', null,
      h('span', { class: `dot kind-${n.kind}`, 'aria-hidden': 'true' }),
      h('a', { href: resourcePath(n.kind, n.name, kindInfo(n.kind).versioned ? n.variant : null), 'data-node': nodeId(n) }, n.name),
      n.variant ? h('span', { class: 'variant' }, n.variant) : null,
      ` ${n.kind.replace('_', ' ')} `, statusBadge(n.status))));
  }
  fit.addEventListener('click', () => cy && cy.fit(undefined, 16));
  depthSelect.addEventListener('change', () => draw().catch(showError));
  directionSelect.addEventListener('change', () => draw().catch(showError));
  const redraw = () => { if (cy && container.isConnected) draw().catch(showError); };
  document.addEventListener('quiver:theme', redraw);
  function showError(error) { status.textContent = `Could not load the lineage: ${error.message}`; }
  return draw();
}
