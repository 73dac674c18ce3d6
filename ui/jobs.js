// The jobs page: every job with state, duration, rows, attempts and a link to its
// resource; a job opens to show its runs (one per attempt) with their logs.

import { h, fill, ago, statusBadge, duration, formatNumber } from './dom.js';
import { get } from './api.js';
import { resourceLink } from './home.js';
import { pager } from './search.js';

const PAGE = 50;
const STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

export async function renderJobs(ctx) {
  const state = ctx.params.get('state') || '';
  const offset = Number(ctx.params.get('offset') || 0);
  const focusJob = ctx.params.get('job');
  ctx.setTitle('Jobs');
  const page = focusJob
    ? await get(`/api/v1/jobs/${encodeURIComponent(focusJob)}`).then((job) => ({ items: [job], total: 1 }))
    : await get('/api/v1/jobs', { state, limit: PAGE, offset });
  if (!ctx.current()) return;

  const href = (changes) => {
    const next = new URLSearchParams();
    const merged = { state, offset: 0, ...changes };
    for (const [k, v] of Object.entries(merged)) if (v) next.set(k, v);
    const text = next.toString();
    return `/jobs${text ? `?${text}` : ''}`;
  };
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Job state' },
    ['', ...STATES].map((s) => h('a', { href: href({ state: s }), 'aria-current': !focusJob && s === state ? 'page' : null }, s || 'all')));

  const rows = page.items.map((job) => {
    const runs = h('tr', { class: 'runs-row', hidden: true }, h('td', { colspan: 8 }));
    const toggle = h('button', { type: 'button', class: 'button small', 'aria-expanded': 'false', 'aria-label': `Runs and logs of job ${job.id}` }, 'Logs');
    toggle.addEventListener('click', () => {
      const open = toggle.getAttribute('aria-expanded') === 'true';
      toggle.setAttribute('aria-expanded', String(!open));
      runs.hidden = open;
      if (!open && !runs.dataset.loaded) {
        runs.dataset.loaded = 'true';
        runs.firstChild.append(jobRuns(job.id, true));
      }
    });
    const progress = job.progress_total
      ? `${formatNumber(job.progress_done)} / ${formatNumber(job.progress_total)}`
      : (job.progress_done ? formatNumber(job.progress_done) : '—');
    const main = h('tr', { 'data-job': job.id, class: job.state === 'failed' ? 'row-failed' : null },
      h('td', null, `#${job.id}`),
      h('td', null, resourceLink(job.resource)),
      h('td', null, job.kind.replace('_', ' ')),
      h('td', null, statusBadge(job.state),
        job.error ? h('div', { class: 'error-text small' }, job.error) : null),
      h('td', { class: 'num' }, `${job.attempts}/${job.max_attempts}`),
      h('td', { class: 'num' }, duration(job.started_at, job.finished_at)),
      h('td', { class: 'num' }, progress),
      h('td', null, ago(job.created_at), ' ', toggle));
    if (focusJob) {
      // Linked to one job: show its logs at once.
      queueMicrotask(() => toggle.click());
    }
    return [main, runs];
  });

  fill(ctx.main, 
    h('div', { class: 'page-head' },
      h('h1', null, focusJob ? `Job #${focusJob}` : 'Jobs'),
      h('p', { class: 'lede' }, focusJob ? h('a', { href: '/jobs' }, 'All jobs') : `${formatNumber(page.total)} jobs${state ? ` ${state}` : ''}`)),
    focusJob ? null : tabs,
    page.items.length === 0
      ? h('div', { class: 'empty-state' }, h('p', null, 'No jobs here.'))
      : h('div', { class: 'table-wrap' }, h('table', { class: 'table jobs-table' },
        h('caption', { class: 'visually-hidden' }, 'Jobs, newest first'),
        h('thead', null, h('tr', null, ['Job', 'Resource', 'Kind', 'State', 'Attempts', 'Took', 'Rows', 'Created'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', null, rows))),
    focusJob ? null : pager(page.total, offset, PAGE, (o) => href({ offset: o })),
  );
}

/** The runs of a job with their logs, loaded when shown (inside a <details>, when it
 * opens; `now` loads at once). */
export function jobRuns(jobId, now = false) {
  const box = h('div', { class: 'runs', 'data-runs': jobId }, h('p', { class: 'muted small' }, 'Loading runs…'));
  let loaded = false;
  const load = async () => {
    if (loaded) return;
    loaded = true;
    try {
      const runs = await get(`/api/v1/jobs/${jobId}/runs`);
      fill(box, runs.length === 0
        ? h('p', { class: 'muted small' }, 'No runs yet: the job is waiting for a worker.')
        : runs.map((run) => h('div', { class: 'run' },
          h('div', { class: 'run-head' },
            h('strong', null, `Attempt ${run.attempt}`), ' ', statusBadge(run.state),
            h('span', { class: 'muted small' }, ` ${duration(run.started_at, run.finished_at)}`,
              run.rows_written !== null && run.rows_written !== undefined ? ` · ${formatNumber(run.rows_written)} rows` : '',
              ` · by ${run.lease_owner} · `, ago(run.started_at))),
          run.error ? h('p', { class: 'error-text' }, run.error) : null,
          run.logs ? h('pre', { class: 'code logs', tabindex: '0', 'aria-label': `Logs of attempt ${run.attempt}` }, h('code', null, run.logs)) : h('p', { class: 'muted small' }, 'No log lines.'))));
    } catch (error) {
      fill(box, h('p', { class: 'error-text' }, `Could not load the runs: ${error.message}`));
    }
  };
  if (now) load();
  else {
    queueMicrotask(() => {
      const details = box.closest('details');
      if (!details || details.open) load();
      else details.addEventListener('toggle', () => details.open && load());
    });
  }
  return box;
}
