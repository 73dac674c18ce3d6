// Home: counts per kind, recent changes, failing and recent jobs, providers with health.

import { h, fill, ago, statusBadge, kindChip, formatNumber, duration } from './dom.js';
import { get, getAny, KINDS, kindInfo, resourcePath } from './api.js';

export async function renderHome(ctx) {
  ctx.setTitle('');
  const summary = await get('/api/v1/summary');
  if (!ctx.current()) return;

  const counts = new Map(summary.counts.map((c) => [c.kind, c]));
  const cards = h('ul', { class: 'kind-cards' },
    KINDS.map((info) => {
      const c = counts.get(info.kind) || { total: 0, failed: 0, pending: 0, running: 0 };
      const busy = c.pending + c.running;
      return h('li', null,
        h('a', { class: `kind-card kind-${info.kind}`, href: `/${info.plural}` },
          h('span', { class: 'kind-card-count' }, formatNumber(c.total)),
          h('span', { class: 'kind-card-label' }, info.label),
          h('span', { class: 'kind-card-extra' },
            c.failed ? h('span', { class: 'text-failed' }, `${formatNumber(c.failed)} failed`) : null,
            c.failed && busy ? ' · ' : null,
            busy ? `${formatNumber(busy)} in progress` : null,
            !c.failed && !busy ? (c.total ? 'all ready' : 'none yet') : null)));
    }));

  const failing = summary.failed_jobs;
  const failingSection = h('section', { class: 'panel', 'aria-labelledby': 'failing-h' },
    h('h2', { id: 'failing-h' }, 'Failing jobs',
      summary.failed_jobs_total ? h('span', { class: 'count-pill failed' }, formatNumber(summary.failed_jobs_total)) : null),
    failing.length === 0
      ? h('p', { class: 'empty' }, 'No failed jobs. Everything built.')
      : h('ul', { class: 'job-list' }, failing.map((job) => h('li', null,
        h('div', { class: 'job-line' },
          statusBadge('failed'),
          resourceLink(job.resource),
          h('span', { class: 'muted' }, ` ${job.kind.replace('_', ' ')} · job `, h('a', { href: `/jobs?job=${job.id}` }, `#${job.id}`), ' · ', ago(job.finished_at || job.updated_at))),
        job.error ? h('p', { class: 'error-text' }, job.error) : null))));

  const recentJobs = h('section', { class: 'panel', 'aria-labelledby': 'jobs-h' },
    h('h2', { id: 'jobs-h' }, 'Recent job runs ', h('a', { class: 'section-link', href: '/jobs' }, 'All jobs')),
    summary.recent_jobs.length === 0
      ? h('p', { class: 'empty' }, 'No jobs yet. Applying a SQL source, a training set or an online feature starts one.')
      : h('table', { class: 'table compact' },
        h('caption', { class: 'visually-hidden' }, 'Most recent jobs'),
        h('thead', null, h('tr', null, ['Resource', 'State', 'Took', 'When'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', null, summary.recent_jobs.map((job) => h('tr', null,
          h('td', null, resourceLink(job.resource),
            h('div', { class: 'muted small' }, job.kind.replace('_', ' '), ' · job ', h('a', { href: `/jobs?job=${job.id}` }, `#${job.id}`))),
          h('td', null, statusBadge(job.state)),
          h('td', { class: 'num' }, duration(job.started_at, job.finished_at)),
          h('td', { class: 'num' }, ago(job.created_at)))))));

  const recent = h('section', { class: 'panel', 'aria-labelledby': 'recent-h' },
    h('h2', { id: 'recent-h' }, 'Recently changed'),
    summary.recent.length === 0
      ? h('p', { class: 'empty' }, 'The catalog is empty. Apply definitions with quiver apply -f defs/.')
      : h('ul', { class: 'recent-list' }, summary.recent.map((hit) => h('li', null,
        kindChip(hit.kind),
        h('a', { href: resourcePath(hit.kind, hit.name, hit.variant) }, hit.name),
        hit.variant ? h('span', { class: 'variant' }, hit.variant) : null,
        statusBadge(hit.status),
        h('span', { class: 'muted recent-meta' }, hit.owner ? `${hit.owner} · ` : '', ago(hit.updated_at))))));

  const providerList = h('ul', { class: 'provider-list' });
  const providers = h('section', { class: 'panel', 'aria-labelledby': 'providers-h' },
    h('h2', { id: 'providers-h' }, 'Providers'),
    summary.providers.length === 0 ? h('p', { class: 'empty' }, 'No providers registered.') : providerList);
  for (const p of summary.providers) {
    const health = h('span', { class: 'badge status-pending', 'aria-live': 'polite' }, 'checking…');
    const message = h('span', { class: 'muted provider-message' });
    providerList.append(h('li', null,
      h('div', { class: 'provider-head' },
        h('a', { href: resourcePath('provider', p.name) }, p.name),
        h('span', { class: 'chip' }, p.type),
        health),
      p.description ? h('p', { class: 'muted' }, p.description) : null,
      message));
    // Health checks can be slow; each one fills its badge in when it answers.
    getAny(`/api/v1/providers/${encodeURIComponent(p.name)}/health`).then(({ body }) => {
      const healthy = body && body.healthy;
      health.className = `badge ${healthy ? 'status-ready' : 'status-failed'}`;
      health.textContent = healthy ? 'healthy' : 'unhealthy';
      message.textContent = body ? (body.message || body.detail || '') : '';
    }).catch(() => {
      health.className = 'badge status-failed';
      health.textContent = 'unknown';
    });
  }

  fill(ctx.main, 
    h('div', { class: 'page-head' },
      h('h1', null, 'Feature catalog'),
      h('p', { class: 'lede' }, 'Find a feature someone already built, check that it is healthy, and copy how to use it. Press ',
        h('kbd', null, '/'), ' to search.')),
    cards,
    h('div', { class: 'grid-2' },
      h('div', null, failingSection, recent),
      h('div', null, recentJobs, providers)),
  );
}

export function resourceLink(id) {
  const info = kindInfo(id.kind);
  return h('a', { href: resourcePath(id.kind, id.name, info && info.versioned ? id.variant : null), class: 'resource-link' },
    h('span', { class: `dot kind-${id.kind}`, 'aria-hidden': 'true' }),
    id.name, id.variant ? h('span', { class: 'variant' }, id.variant) : null);
}
