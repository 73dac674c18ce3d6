// A resource's page: every kind. Header with the variant selector and status, the
// failure's error, what it is (owner, tags, type, entity, source), how to use it,
// its definition (SQL highlighted) and the YAML that recreates it, lineage, what uses
// it, and its jobs with their runs and logs.

import { h, fill, ago, statusBadge, kindChip, copyButton, duration } from './dom.js';
import { get, apiPath, resourcePath, kindInfo, ApiError } from './api.js';
import { highlightSql, toYaml } from './highlight.js';
import { renderLineage } from './lineage.js';
import { renderNotFound } from './app.js';
import { jobRuns } from './jobs.js';

export async function renderDetail(ctx, info, name, variant) {
  ctx.setTitle(name);
  let resource;
  let variants;
  try {
    [resource, variants] = await Promise.all([
      get(apiPath(info.kind, name, variant)),
      get(`${apiPath(info.kind, name)}/variants`).catch(() => null),
    ]);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      if (!ctx.current()) return;
      const what = `${info.kind.replace('_', ' ')} “${name}${variant ? `:${variant}` : ''}”`;
      renderNotFound(ctx, `There is no ${what} in the catalog. It may have been renamed, or never applied.`);
      return;
    }
    throw error;
  }
  if (!ctx.current()) return;
  const def = resource.definition;
  ctx.setTitle(`${resource.name}${resource.variant ? `:${resource.variant}` : ''}`);

  const header = h('div', { class: 'detail-head' },
    h('div', { class: 'detail-title' },
      kindChip(resource.kind),
      h('h1', null, resource.name),
      statusBadge(resource.status)),
    variantPicker(ctx, info, resource, variants));

  const failure = resource.status === 'failed'
    ? h('div', { class: 'alert alert-failed', role: 'alert' },
      h('strong', null, 'Build failed'),
      h('p', { class: 'error-text' }, resource.error || 'No error text was recorded.'),
      h('p', { class: 'muted small' }, 'Fix the cause, then retry the job from the Jobs section below or with quiver jobs retry ID.'))
    : null;
  const inProgress = resource.status === 'pending' || resource.status === 'running'
    ? h('div', { class: 'alert alert-info', role: 'status' }, `This ${info.kind.replace('_', ' ')} is ${resource.status}: its data is being built.`)
    : null;

  const facts = h('dl', { class: 'facts' }, factsOf(resource));
  const overview = h('section', { class: 'panel', 'aria-labelledby': 'overview-h' },
    h('h2', { id: 'overview-h' }, 'Overview'),
    resource.description ? h('p', { class: 'description' }, resource.description) : h('p', { class: 'muted' }, 'No description.'),
    facts);

  const graphBox = h('div', { class: 'lineage-box' });
  const lineageSection = h('section', { class: 'panel', 'aria-labelledby': 'lineage-h', id: 'lineage' },
    h('h2', { id: 'lineage-h' }, 'Lineage'),
    h('p', { class: 'muted small' }, 'Where it comes from (left) and what depends on it (right). Click a node to open it.'),
    graphBox);
  const usedBy = h('section', { class: 'panel', 'aria-labelledby': 'usedby-h' },
    h('h2', { id: 'usedby-h' }, 'Used by'), h('p', { class: 'muted' }, 'Loading…'));
  const jobsSection = h('section', { class: 'panel', 'aria-labelledby': 'jobs-h' },
    h('h2', { id: 'jobs-h' }, 'Jobs'), h('p', { class: 'muted' }, 'Loading…'));

  fill(ctx.main, 
    h('nav', { class: 'breadcrumbs', 'aria-label': 'Breadcrumb' },
      h('a', { href: `/${info.plural}` }, info.label), ' / ', h('span', { 'aria-current': 'page' }, resource.name)),
    header, failure, inProgress,
    h('div', { class: 'detail-grid' },
      h('div', { class: 'detail-main' }, overview, definitionSection(resource)),
      h('div', { class: 'detail-side' }, useItPanel(resource), usedBy)),
    // Full width: a lineage graph needs the room, and logs are wide.
    lineageSection,
    jobsSection);

  const root = { kind: resource.kind, name: resource.name, variant: resource.variant };
  const jobsPromise = jobsOf(resource).then((jobs) => {
    if (!ctx.current()) return;
    jobsSection.replaceChildren(h('h2', { id: 'jobs-h' }, 'Jobs'), jobs);
  });
  const graph = await renderLineage(graphBox, root, ctx.navigate).catch((error) => {
    graphBox.replaceChildren(h('p', { class: 'error-text' }, `Could not load the lineage: ${error.message}`));
    return null;
  });
  if (!ctx.current()) return;
  usedBy.replaceChildren(h('h2', { id: 'usedby-h' }, 'Used by'), ...[usedByList(graph, root)].flat().filter(Boolean));
  await jobsPromise.catch((error) => {
    jobsSection.replaceChildren(h('h2', { id: 'jobs-h' }, 'Jobs'), h('p', { class: 'error-text' }, error.message));
  });
}

function variantPicker(ctx, info, resource, variants) {
  if (!info.versioned || !variants) return null;
  const select = h('select', { id: 'variant-select' },
    variants.variants.map((v) => h('option', { value: v.variant, selected: v.variant === resource.variant },
      `${v.variant}${v.is_default ? ' (default)' : ''} · ${v.status}`)));
  select.addEventListener('change', () => ctx.navigate(resourcePath(info.kind, resource.name, select.value)));
  return h('div', { class: 'variant-picker' },
    h('label', { for: 'variant-select' }, 'Variant'),
    select,
    resource.is_default ? h('span', { class: 'badge default' }, 'default') : h('span', { class: 'muted small' }, 'not the default'));
}

function fact(label, ...value) {
  return [h('dt', null, label), h('dd', null, ...value)];
}

function refLink(kind, ref) {
  if (!ref) return '—';
  const [name, variant] = String(ref).split(':');
  return h('a', { href: resourcePath(kind, name, variant) }, name, variant ? h('span', { class: 'variant' }, variant) : null);
}

function factsOf(r) {
  const d = r.definition;
  const out = [];
  if (r.owner) out.push(fact('Owner', h('a', { href: `/search?owner=${encodeURIComponent(r.owner)}` }, r.owner)));
  if (r.tags.length) out.push(fact('Tags', r.tags.map((t) => h('a', { class: 'tag', href: `/search?tag=${encodeURIComponent(t)}` }, t))));
  switch (r.kind) {
    case 'feature':
      out.push(fact('Type', h('span', { class: 'type' }, d.value_type)));
      out.push(fact('Entity', refLink('entity', d.entity)));
      out.push(fact('Source', refLink('source', d.source)));
      out.push(fact('Columns', h('code', null, d.entity_column || d.entity), ' → ', h('code', null, d.value_column),
        d.timestamp_column ? [' at ', h('code', null, d.timestamp_column)] : ' (no event time)'));
      if (d.max_age) out.push(fact('Max age', d.max_age));
      out.push(fact('Online store', d.online_provider ? refLink('provider', d.online_provider) : 'not served online'));
      if (d.materialization && d.materialization.schedule) out.push(fact('Refresh', h('code', null, d.materialization.schedule), ' (cron, UTC)'));
      break;
    case 'source':
      out.push(fact('Provider', refLink('provider', d.provider)));
      out.push(fact('Defined as', d.sql ? 'SQL transformation' : d.file ? ['file ', h('code', null, d.file.path)] : ['table ', h('code', null, d.table)]));
      break;
    case 'label':
      out.push(fact('Type', h('span', { class: 'type' }, d.value_type)));
      out.push(fact('Source', refLink('source', d.source)));
      out.push(fact('Entities', d.entities.map((e) => h('span', { class: 'inline-item' }, refLink('entity', e.entity), e.column ? [' via ', h('code', null, e.column)] : null))));
      break;
    case 'training_set':
      out.push(fact('Label', refLink('label', d.label)));
      out.push(fact('Features', h('ul', { class: 'plain-list' }, d.features.map((f) => h('li', null, refLink('feature', f.feature || f), f.lag ? h('span', { class: 'muted' }, ` lag ${f.lag}`) : null)))));
      break;
    case 'model':
      out.push(fact('Training sets', d.training_sets.length ? d.training_sets.map((t) => h('span', { class: 'inline-item' }, refLink('training_set', t))) : '—'));
      break;
    case 'provider':
      out.push(fact('Type', h('span', { class: 'type' }, d.config.type)));
      break;
    case 'user':
      if (d.email) out.push(fact('Email', d.email));
      break;
    default:
  }
  out.push(fact('Created', ago(r.created_at)));
  out.push(fact('Updated', ago(r.updated_at)));
  return out;
}

function definitionSection(r) {
  const yaml = toYaml(r.definition);
  const sql = r.kind === 'source' && r.definition.sql
    ? [h('h3', null, 'SQL'), highlightSql(r.definition.sql)]
    : null;
  return h('section', { class: 'panel', 'aria-labelledby': 'def-h' },
    h('h2', { id: 'def-h' }, 'Definition'),
    sql,
    h('div', { class: 'code-head' },
      h('h3', null, 'YAML'),
      h('span', { class: 'muted small' }, 'Recreates it with quiver apply -f (secrets are shown redacted).'),
      copyButton(yaml, 'Copy YAML')),
    h('pre', { class: 'code yaml' }, h('code', null, yaml)));
}

function snippet(title, text, note) {
  return h('div', { class: 'snippet' },
    h('div', { class: 'snippet-head' }, h('h3', null, title), copyButton(text)),
    note ? h('p', { class: 'muted small' }, note) : null,
    h('pre', { class: 'code' }, h('code', null, text)));
}

function useItPanel(r) {
  const origin = location.origin;
  const ref = r.variant ? `${r.name}:${r.variant}` : r.name;
  const variantFlag = r.variant ? ` --variant ${r.variant}` : '';
  const kindArg = kindInfo(r.kind).plural;
  const items = [];
  if (r.kind === 'feature') {
    const d = r.definition;
    if (d.online_provider) {
      const body = JSON.stringify({ features: [ref], entities: { [d.entity]: ['ID'] } });
      items.push(snippet('Online features (HTTP)',
        `curl -s -X POST ${origin}/api/v1/online-features \\\n  -H 'Content-Type: application/json' \\\n  -d '${body}'`,
        `Replace ID with ${d.entity} ids.`));
      items.push(snippet('Online features (CLI)', `quiver online-features --server ${origin} \\\n  --feature ${ref} --entity ${d.entity}=ID`));
    } else {
      items.push(h('p', { class: 'muted small' }, 'Not served online: add online_provider to materialize it.'));
    }
    items.push(snippet('In a training set', `features:\n  - ${ref}`, 'Add it to a training set definition.'));
  }
  if (r.kind === 'training_set') {
    const url = `${origin}/api/v1/training-sets/${encodeURIComponent(r.name)}/${encodeURIComponent(r.variant)}/data?format=parquet`;
    items.push(snippet('Download URL', url, 'Formats: parquet, arrow, csv, jsonl.'));
    items.push(snippet('Download (CLI)', `quiver training-set get ${r.name}${variantFlag} \\\n  --server ${origin} -o ${r.name}.parquet`));
    items.push(snippet('In Python', `import pandas as pd\ndf = pd.read_parquet("${url}")`));
  }
  items.push(snippet('Definition (CLI)', `quiver get ${kindArg} ${r.name}${variantFlag} --server ${origin}`));
  items.push(snippet('API', `${origin}${apiPath(r.kind, r.name, r.variant || null)}`));
  return h('section', { class: 'panel use-it', 'aria-labelledby': 'use-h' }, h('h2', { id: 'use-h' }, 'Use it'), items);
}

function usedByList(graph, root) {
  if (!graph) return h('p', { class: 'muted' }, 'Lineage unavailable.');
  const key = (n) => `${n.kind}/${n.name}/${n.variant || ''}`;
  const rootKey = key(root);
  // Everything reachable downstream in the drawn graph.
  const next = new Map();
  for (const e of graph.edges) {
    const from = key(e.upstream);
    if (!next.has(from)) next.set(from, []);
    next.get(from).push(key(e.downstream));
  }
  const seen = new Set();
  const direct = new Set(next.get(rootKey) || []);
  const queue = [...direct];
  while (queue.length) {
    const k = queue.shift();
    if (seen.has(k)) continue;
    seen.add(k);
    queue.push(...(next.get(k) || []));
  }
  const nodes = graph.nodes.filter((n) => seen.has(key(n)));
  if (!nodes.length) return h('p', { class: 'muted' }, 'Nothing uses it yet.');
  const order = ['source', 'feature', 'label', 'training_set', 'model'];
  nodes.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind) || a.name.localeCompare(b.name));
  const SHOWN = 50;
  const more = nodes.length > SHOWN
    ? h('p', { class: 'muted small' }, `and ${nodes.length - SHOWN} more: see the lineage's node list.`)
    : null;
  return [h('ul', { class: 'used-by' }, nodes.slice(0, SHOWN).map((n) => h('li', null,
    kindChip(n.kind),
    h('a', { href: resourcePath(n.kind, n.name, kindInfo(n.kind).versioned ? n.variant : null) }, n.name),
    n.variant ? h('span', { class: 'variant' }, n.variant) : null,
    direct.has(key(n)) ? null : h('span', { class: 'muted small' }, ' indirectly'),
    statusBadge(n.status)))), more];
}

async function jobsOf(r) {
  const params = { kind: r.kind, name: r.name, limit: 20 };
  if (r.variant) params.variant = r.variant;
  const page = await get('/api/v1/jobs', params);
  if (!page.items.length) return h('p', { class: 'muted' }, 'No jobs: nothing to build for it.');
  return h('ul', { class: 'job-cards' }, page.items.map((job) => h('li', null,
    h('details', { class: 'job-card', open: job.state === 'failed' ? true : null, 'data-job': job.id },
      h('summary', null,
        statusBadge(job.state), ' ',
        h('strong', null, job.kind.replace('_', ' ')), ' ',
        h('span', { class: 'muted' }, `#${job.id} · attempt ${job.attempts}/${job.max_attempts} · ${duration(job.started_at, job.finished_at)} · `, ago(job.created_at))),
      job.error ? h('p', { class: 'error-text' }, job.error) : null,
      jobRuns(job.id)))));
}
