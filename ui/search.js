// Search across every kind, with facets. The query and filters live in the URL, so a
// search can be shared and the back button works.

import { h, fill, marked, statusBadge, kindChip, ago, formatNumber } from './dom.js';
import { get, resourcePath } from './api.js';

const FACETS = [
  ['kind', 'Kind'],
  ['status', 'Status'],
  ['owner', 'Owner'],
  ['tag', 'Tag'],
  ['provider', 'Provider'],
];
const PAGE = 25;

export async function renderSearch(ctx) {
  const params = ctx.params;
  const q = params.get('q') || '';
  const offset = Number(params.get('offset') || 0);
  const filters = Object.fromEntries(FACETS.map(([key]) => [key, params.get(key) || '']));
  ctx.setTitle(q ? `Search: ${q}` : 'Search');

  const box = document.getElementById('search-input');
  if (document.activeElement !== box) box.value = q;

  const result = await get('/api/v1/search', { q, ...filters, limit: PAGE, offset });
  if (!ctx.current()) return;

  const link = (changes) => {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(changes)) {
      if (value) next.set(key, value); else next.delete(key);
    }
    if (!('offset' in changes)) next.delete('offset');
    const text = next.toString();
    return `/search${text ? `?${text}` : ''}`;
  };

  const facetNav = h('aside', { class: 'facets', 'aria-label': 'Filters' },
    h('h2', { class: 'visually-hidden' }, 'Filters'),
    FACETS.map(([key, label]) => {
      const values = result.facets[key] || [];
      if (!values.length && !filters[key]) return null;
      return h('section', { class: 'facet', 'data-facet': key },
        h('h3', null, label),
        h('ul', null, values.map(({ value, count }) => {
          const selected = filters[key] === value;
          return h('li', null,
            h('a', {
              href: link({ [key]: selected ? '' : value }),
              class: selected ? 'facet-value selected' : 'facet-value',
              'aria-current': selected ? 'true' : null,
              'data-value': value,
            },
            h('span', { class: 'facet-check', 'aria-hidden': 'true' }),
            h('span', { class: 'facet-name' }, key === 'kind' ? value.replace('_', ' ') : value),
            h('span', { class: 'facet-count' }, formatNumber(count))));
        })));
    }));

  const active = FACETS.filter(([key]) => filters[key]);
  const chips = active.length
    ? h('div', { class: 'active-filters' },
      active.map(([key, label]) => h('a', { class: 'filter-chip', href: link({ [key]: '' }), 'aria-label': `Remove filter ${label}: ${filters[key]}` },
        `${label}: `, filters[key], h('span', { 'aria-hidden': 'true', class: 'x' }, '×'))),
      h('a', { class: 'clear-filters', href: q ? `/search?q=${encodeURIComponent(q)}` : '/search' }, 'Clear all'))
    : null;

  const results = h('ol', { class: 'results', start: offset + 1 },
    result.items.map((hit) => h('li', { class: 'result' },
      h('div', { class: 'result-head' },
        kindChip(hit.kind),
        h('a', { class: 'result-name', href: resourcePath(hit.kind, hit.name, hit.variant) }, marked(hit.name, q)),
        hit.variant ? h('span', { class: 'variant' }, hit.variant) : null,
        statusBadge(hit.status),
        hit.type ? h('span', { class: 'type' }, hit.type) : null),
      hit.description ? h('p', { class: 'result-desc' }, marked(hit.description, q)) : null,
      h('p', { class: 'result-meta' },
        hit.owner ? h('span', null, 'Owner ', h('a', { href: link({ owner: hit.owner }) }, marked(hit.owner, q))) : null,
        hit.entity ? h('span', null, 'Entity ', h('a', { href: resourcePath('entity', hit.entity) }, hit.entity)) : null,
        hit.tags.length ? h('span', { class: 'tags' }, hit.tags.map((t) => h('a', { class: 'tag', href: link({ tag: t }) }, marked(t, q)))) : null,
        h('span', null, 'Updated ', ago(hit.updated_at))))));

  const summary = h('p', { class: 'result-summary', role: 'status' },
    `${formatNumber(result.total)} result${result.total === 1 ? '' : 's'}`,
    q ? [' for ', h('q', null, q)] : null,
    h('span', { class: 'muted', 'data-took-ms': String(result.took_ms) }, ` · ${result.took_ms} ms`));

  const empty = result.total === 0
    ? h('div', { class: 'empty-state' },
      h('p', null, 'No resource matches ', q ? h('q', null, q) : 'these filters', '.'),
      h('p', { class: 'muted' }, 'Search looks at names, tags, owners and descriptions. Try fewer words, or clear the filters.'))
    : null;

  fill(ctx.main, 
    h('div', { class: 'page-head' },
      h('h1', null, q ? ['Results for ', h('q', null, q)] : 'Search the catalog')),
    h('div', { class: 'search-layout' },
      facetNav,
      h('section', { class: 'search-results', 'aria-label': 'Results' },
        summary, chips, empty, results,
        pager(result.total, offset, PAGE, (o) => link({ offset: o ? String(o) : '' })))));
}

/** Previous / next links with "x–y of n". */
export function pager(total, offset, size, href) {
  if (total <= size) return null;
  const end = Math.min(offset + size, total);
  return h('nav', { class: 'pager', 'aria-label': 'Pages' },
    offset > 0 ? h('a', { href: href(Math.max(0, offset - size)), rel: 'prev' }, '← Previous') : h('span', { class: 'disabled' }, '← Previous'),
    h('span', { class: 'muted' }, `${formatNumber(offset + 1)}–${formatNumber(end)} of ${formatNumber(total)}`),
    end < total ? h('a', { href: href(end), rel: 'next' }, 'Next →') : h('span', { class: 'disabled' }, 'Next →'));
}
