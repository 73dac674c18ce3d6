// The catalog's entry point: a small client-side router over plain ES modules. The
// server answers index.html for every page path, and this script draws the route.

import { h, fill } from './dom.js';
import { KINDS, kindInfo } from './api.js';
import { renderHome } from './home.js';
import { renderSearch } from './search.js';
import { renderList } from './list.js';
import { renderDetail } from './detail.js';
import { renderJobs } from './jobs.js';

const main = document.getElementById('main');
let renderCount = 0;

/** What a path shows: a page function and its arguments. */
function route(path) {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return { page: 'home', render: renderHome };
  if (parts[0] === 'search' && parts.length === 1) return { page: 'search', render: renderSearch };
  if (parts[0] === 'jobs' && parts.length === 1) return { page: 'jobs', render: renderJobs };
  const info = kindInfo(parts[0]);
  if (info && info.plural === parts[0]) {
    if (parts.length === 1) return { page: 'list', render: (ctx) => renderList(ctx, info) };
    if (parts.length === 2) return { page: 'detail', render: (ctx) => renderDetail(ctx, info, parts[1], null) };
    if (parts.length === 3 && info.versioned) {
      return { page: 'detail', render: (ctx) => renderDetail(ctx, info, parts[1], parts[2]) };
    }
  }
  return { page: 'not-found', render: renderNotFound };
}

/** Draw the current URL. `focus`: move focus to the new heading (after navigation). */
async function render(focus) {
  const token = ++renderCount;
  const { page, render: draw } = route(location.pathname);
  main.dataset.state = 'loading';
  main.dataset.page = page;
  main.setAttribute('aria-busy', 'true');
  markNav();
  const ctx = {
    main,
    params: new URLSearchParams(location.search),
    // A page checks this after every await: a newer navigation wins.
    current: () => token === renderCount,
    navigate,
    setTitle: (title) => { document.title = title ? `${title} · Quiver` : 'Quiver catalog'; },
  };
  try {
    await draw(ctx);
  } catch (error) {
    if (!ctx.current()) return;
    fill(main, errorPanel(error));
    ctx.setTitle('Error');
  }
  if (!ctx.current()) return;
  main.removeAttribute('aria-busy');
  main.dataset.state = 'ready';
  // Time since this document's navigation started: what the browser tests report as
  // time to interactive (drawn, handlers attached).
  main.dataset.readyAt = String(Math.round(performance.now()));
  if (focus) {
    const heading = main.querySelector('h1');
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: true });
    }
    window.scrollTo(0, 0);
  }
}

export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render(!replace);
}

export function renderNotFound(ctx, what) {
  ctx.setTitle('Not found');
  fill(ctx.main, 
    h('section', { class: 'not-found' },
      h('p', { class: 'big-code', 'aria-hidden': 'true' }, '404'),
      h('h1', null, 'Nothing here'),
      h('p', null, what || `There is no page at ${location.pathname}.`),
      h('p', null,
        'Try ', h('a', { href: `/search?q=${encodeURIComponent(lastSegment())}` }, 'searching the catalog'),
        ' or go back ', h('a', { href: '/' }, 'home'), '.')),
  );
}

function lastSegment() {
  const parts = location.pathname.split('/').filter(Boolean);
  try {
    return parts.length ? decodeURIComponent(parts[parts.length - 1]) : '';
  } catch {
    return '';
  }
}

function errorPanel(error) {
  return h('section', { class: 'panel error-panel', role: 'alert' },
    h('h1', null, 'Something went wrong'),
    h('p', null, error && error.message ? error.message : String(error)),
    h('p', null, h('a', { href: location.pathname + location.search }, 'Reload this page')));
}

function markNav() {
  const first = location.pathname.split('/').filter(Boolean)[0] || '';
  for (const link of document.querySelectorAll('.sidenav a')) {
    const target = link.getAttribute('href').split('/').filter(Boolean)[0] || '';
    if (target === first) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function buildNav() {
  const list = document.getElementById('nav-kinds');
  for (const info of KINDS) {
    list.append(h('li', null, h('a', { href: `/${info.plural}` }, info.label)));
  }
}

// Same-origin links are handled here, without a page load; API links, downloads,
// modified clicks and new tabs go to the browser.
document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest('a[href]');
  if (!link || link.target || link.hasAttribute('download')) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/ui/')) return;
  if (url.hash && url.pathname === location.pathname && url.search === location.search) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener('popstate', () => render(false));

// `/` focuses the search box from anywhere but a text field; Escape leaves it.
document.addEventListener('keydown', (event) => {
  const box = document.getElementById('search-input');
  const typing = event.target.closest('input, textarea, select, [contenteditable]');
  if (event.key === '/' && !typing && !event.metaKey && !event.ctrlKey && !event.altKey) {
    event.preventDefault();
    box.focus();
    box.select();
  } else if (event.key === 'Escape' && event.target === box) {
    box.blur();
  }
});

document.getElementById('search-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const q = document.getElementById('search-input').value.trim();
  navigate(`/search?q=${encodeURIComponent(q)}`);
});

// Theme: the system's preference unless the person chose one here.
function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
  const dark = theme ? theme === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
  const toggle = document.getElementById('theme-toggle');
  toggle.setAttribute('aria-pressed', String(dark));
  toggle.querySelector('.label').textContent = dark ? 'Dark' : 'Light';
  document.dispatchEvent(new CustomEvent('quiver:theme'));
}

function storedTheme() {
  try { return localStorage.getItem('quiver-theme'); } catch { return null; }
}

document.getElementById('theme-toggle').addEventListener('click', () => {
  const dark = document.getElementById('theme-toggle').getAttribute('aria-pressed') === 'true';
  const next = dark ? 'light' : 'dark';
  try { localStorage.setItem('quiver-theme', next); } catch { /* private mode: not remembered */ }
  applyTheme(next);
});
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => applyTheme(storedTheme()));

applyTheme(storedTheme());
buildNav();
render(false);
