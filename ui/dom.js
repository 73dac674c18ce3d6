// Building DOM nodes without markup strings. Every piece of text goes in through
// `textContent` / text nodes, so names, descriptions and errors from the catalogue can
// never become markup: there is no innerHTML anywhere in the UI.

/**
 * h('a', {href: '/x', class: 'link'}, 'text', otherNode)
 * Attributes: `class`, `on<event>` functions, boolean `true` (present) / `false` or
 * null (absent), everything else through setAttribute. Children: strings, numbers,
 * nodes, arrays of them, null/false (skipped).
 */
export function h(tag, attrs, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace the children of `el` (nulls skipped, arrays flattened). */
export function fill(el, ...children) {
  return append(clear(el), children);
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Text with every occurrence of the query's words wrapped in <mark>, safely. */
export function marked(text, query) {
  const words = (query || '').toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length || !text) return document.createTextNode(text || '');
  const lower = text.toLowerCase();
  const frag = document.createDocumentFragment();
  let at = 0;
  while (at < text.length) {
    let best = -1;
    let len = 0;
    for (const w of words) {
      const i = lower.indexOf(w, at);
      if (i !== -1 && (best === -1 || i < best)) { best = i; len = w.length; }
    }
    if (best === -1) break;
    if (best > at) frag.append(text.slice(at, best));
    frag.append(h('mark', null, text.slice(best, best + len)));
    at = best + len;
  }
  if (at < text.length) frag.append(text.slice(at));
  return frag;
}

const UNITS = [
  ['year', 365 * 24 * 3600], ['month', 30 * 24 * 3600], ['day', 24 * 3600],
  ['hour', 3600], ['minute', 60], ['second', 1],
];
const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto', style: 'short' });

/** A <time> showing "3 minutes ago", with the exact instant as its title. */
export function ago(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const date = new Date(iso);
  const seconds = (date.getTime() - Date.now()) / 1000;
  let text = 'just now';
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) {
      text = relative.format(Math.round(seconds / size), unit);
      break;
    }
  }
  return h('time', { datetime: iso, title: date.toLocaleString() }, text);
}

export function duration(startIso, endIso) {
  if (!startIso) return '—';
  const ms = (endIso ? new Date(endIso) : new Date()) - new Date(startIso);
  if (ms < 1000) return `${Math.max(0, ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function statusBadge(status) {
  if (!status) return h('span', { class: 'badge' }, 'unknown');
  return h('span', { class: `badge status-${status}` }, status.replace('_', ' '));
}

export function kindChip(kind) {
  return h('span', { class: `chip kind-${kind}` }, kind.replace('_', ' '));
}

/** A button copying `text` to the clipboard, announcing the result to screen readers. */
export function copyButton(text, label = 'Copy') {
  const button = h('button', { type: 'button', class: 'copy' }, label);
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Select and copy';
    }
    setTimeout(() => { button.textContent = label; }, 1500);
  });
  return button;
}

export function formatNumber(n) {
  return new Intl.NumberFormat('en').format(n);
}
