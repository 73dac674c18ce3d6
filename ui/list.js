// One kind's list: a sortable, filterable, paged table, served by the search index so
// it stays fast with tens of thousands of resources. State lives in the URL.

import { h, fill, statusBadge, ago, formatNumber } from './dom.js';
import { get, resourcePath } from './api.js';
import { pager } from './search.js';

const PAGE = 50;
const COLUMNS = [
  { key: 'name', label: 'Name', sort: 'name' },
  { key: 'status', label: 'Status', sort: 'status' },
  { key: 'owner', label: 'Owner', sort: 'owner' },
  { key: 'type', label: 'Type' },
  { key: 'tags', label: 'Tags' },
  { key: 'updated', label: 'Updated', sort: 'updated' },
];

export async function renderList(ctx, info) {
  const params = ctx.params;
  const state = {
    q: params.get('q') || '',
    owner: params.get('owner') || '',
    tag: params.get('tag') || '',
    status: params.get('status') || '',
    sort: params.get('sort') || 'name',
    order: params.get('order') || '',
    offset: Number(params.get('offset') || 0),
  };
  ctx.setTitle(info.label);
  const result = await get('/api/v1/search', {
    kind: info.kind, q: state.q, owner: state.owner, tag: state.tag, status: state.status,
    sort: state.sort, order: state.order, limit: PAGE, offset: state.offset,
  });
  if (!ctx.current()) return;

  const href = (changes) => {
    const next = { ...state, ...changes };
    if (!('offset' in changes)) next.offset = 0;
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(next)) {
      if (value && !(key === 'sort' && value === 'name' && !next.order)) search.set(key, value);
    }
    const text = search.toString();
    return `/${info.plural}${text ? `?${text}` : ''}`;
  };
  const defaultDesc = (sort) => sort === 'updated';
  const isDesc = state.order ? state.order === 'desc' : defaultDesc(state.sort);

  const filterForm = h('form', { class: 'filters', role: 'search', 'aria-label': `Filter ${info.label.toLowerCase()}` },
    h('label', null, h('span', null, 'Name or description'),
      h('input', { type: 'search', name: 'q', value: state.q, placeholder: 'Filter…' })),
    select('owner', 'Owner', state.owner, result.facets.owner),
    select('tag', 'Tag', state.tag, result.facets.tag),
    select('status', 'Status', state.status, result.facets.status),
    h('button', { type: 'submit', class: 'button' }, 'Apply'));
  filterForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(filterForm);
    ctx.navigate(href(Object.fromEntries([...data.entries()].map(([k, v]) => [k, String(v).trim()]))));
  });
  // Choosing from a list applies at once; typing waits for Enter.
  for (const el of filterForm.querySelectorAll('select')) {
    el.addEventListener('change', () => filterForm.requestSubmit());
  }

  const head = h('tr', null, COLUMNS.map((col) => {
    if (!col.sort) return h('th', { scope: 'col' }, col.label);
    const active = state.sort === col.sort;
    const nextOrder = active ? (isDesc ? 'asc' : 'desc') : (defaultDesc(col.sort) ? 'desc' : 'asc');
    return h('th', { scope: 'col', 'aria-sort': active ? (isDesc ? 'descending' : 'ascending') : 'none' },
      h('a', { href: href({ sort: col.sort, order: nextOrder }), class: 'sort-link' },
        col.label, h('span', { class: 'sort-arrow', 'aria-hidden': 'true' }, active ? (isDesc ? ' ↓' : ' ↑') : ' ↕')));
  }));

  const rows = result.items.map((hit) => h('tr', null,
    h('td', null,
      h('a', { href: resourcePath(hit.kind, hit.name, hit.variant), class: 'strong' }, hit.name),
      hit.variant ? h('span', { class: 'variant' }, hit.variant) : null,
      hit.description ? h('div', { class: 'cell-desc' }, hit.description) : null),
    h('td', null, statusBadge(hit.status)),
    h('td', null, hit.owner ? h('a', { href: href({ owner: hit.owner }) }, hit.owner) : '—'),
    h('td', null, hit.type ? h('span', { class: 'type' }, hit.type) : '—',
      hit.entity ? h('div', { class: 'muted small' }, 'by ', h('a', { href: resourcePath('entity', hit.entity) }, hit.entity)) : null),
    h('td', null, hit.tags.map((t) => h('a', { class: 'tag', href: href({ tag: t }) }, t))),
    h('td', null, ago(hit.updated_at))));

  fill(ctx.main, 
    h('div', { class: 'page-head' },
      h('h1', null, info.label),
      h('p', { class: 'lede', role: 'status' }, `${formatNumber(result.total)} ${result.total === 1 ? 'resource' : 'resources'}`,
        info.versioned ? ' (default variants)' : '', h('span', { class: 'muted' }, ` · ${result.took_ms} ms`))),
    filterForm,
    result.total === 0
      ? h('div', { class: 'empty-state' }, h('p', null, `No ${info.label.toLowerCase()} match.`))
      : h('div', { class: 'table-wrap' },
        h('table', { class: 'table' },
          h('caption', { class: 'visually-hidden' }, `${info.label}, sorted by ${state.sort}`),
          h('thead', null, head),
          h('tbody', null, rows))),
    pager(result.total, state.offset, PAGE, (o) => href({ offset: o })),
  );
}

function select(name, label, value, facet) {
  const options = (facet || []).map(({ value: v, count }) => h('option', { value: v, selected: v === value }, `${v} (${formatNumber(count)})`));
  return h('label', null, h('span', null, label),
    h('select', { name }, h('option', { value: '' }, 'Any'), options));
}
