// A tiny SQL highlighter and a YAML writer. Both build DOM nodes / plain text only.

import { h } from './dom.js';

const KEYWORDS = new Set(`select from where group by order having limit offset join left right inner
outer full cross on and or not in is null as case when then else end with distinct union all
except intersect interval cast over partition rows range between preceding following current
row asc desc lateral exists like ilike true false insert into values create table view update
delete set qualify window filter using natural`.split(/\s+/));
const FUNCTIONS = new Set(`count sum avg min max coalesce date_trunc extract row_number rank
dense_rank lag lead first_value last_value nullif abs round floor ceil lower upper length
concat substr substring now current_timestamp to_timestamp`.split(/\s+/));

const TOKEN = /(--[^\n]*|\/\*[\s\S]*?\*\/)|('(?:[^']|'')*')|(\{\{\s*[^}]*\}\})|("(?:[^"]|"")*")|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)|([^A-Za-z0-9_'"{\-/]+|[\s\S])/g;

/** A <pre><code> of `sql` with spans for keywords, strings, numbers, comments and
 * `{{ source }}` placeholders. */
export function highlightSql(sql) {
  const code = h('code', { class: 'language-sql' });
  for (const m of sql.matchAll(TOKEN)) {
    const [text, comment, string, placeholder, quoted, number, word] = m;
    let cls = null;
    if (comment) cls = 'tok-comment';
    else if (string) cls = 'tok-string';
    else if (placeholder) cls = 'tok-placeholder';
    else if (quoted) cls = 'tok-ident';
    else if (number) cls = 'tok-number';
    else if (word && KEYWORDS.has(word.toLowerCase())) cls = 'tok-keyword';
    else if (word && FUNCTIONS.has(word.toLowerCase())) cls = 'tok-function';
    code.append(cls ? h('span', { class: cls }, text) : text);
  }
  return h('pre', { class: 'code sql' }, code);
}

const PLAIN = /^[A-Za-z_./][A-Za-z0-9_ ./@:+-]*$/;
const AMBIGUOUS = /^(true|false|yes|no|on|off|null|~|-?\d[\d_.]*(e[+-]?\d+)?)$/i;

function scalar(value) {
  if (value === null || value === undefined) return 'null';
  if (typeof value !== 'string') return String(value);
  if (value === '') return "''";
  if (PLAIN.test(value) && !AMBIGUOUS.test(value) && !value.includes(': ') && !value.includes(' #')
      && !value.endsWith(' ') && !value.endsWith(':')) {
    return value;
  }
  // A JSON string is a valid double-quoted YAML scalar.
  return JSON.stringify(value);
}

function isScalar(v) {
  return v === null || typeof v !== 'object';
}

function block(text, indent) {
  const pad = ' '.repeat(indent);
  const chomp = text.endsWith('\n') ? '|' : '|-';
  const body = text.replace(/\n$/, '').split('\n').map((l) => (l ? pad + l : '')).join('\n');
  return `${chomp}\n${body}`;
}

function write(value, indent) {
  const pad = ' '.repeat(indent);
  const lines = [];
  if (Array.isArray(value)) {
    for (const item of value) {
      if (isScalar(item)) lines.push(`${pad}- ${scalar(item)}`);
      else {
        const inner = write(item, indent + 2).replace(/^\s+/, '');
        lines.push(`${pad}- ${inner}`);
      }
    }
    return lines.join('\n');
  }
  for (const [key, v] of Object.entries(value)) {
    // Empty optional fields are the defaults: leaving them out reads better.
    if ((key === 'description' && v === '') || (key === 'tags' && Array.isArray(v) && !v.length)) continue;
    if (typeof v === 'string' && v.includes('\n')) lines.push(`${pad}${key}: ${block(v, indent + 2)}`);
    else if (isScalar(v)) lines.push(`${pad}${key}: ${scalar(v)}`);
    else if (Array.isArray(v) && v.length === 0) lines.push(`${pad}${key}: []`);
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string' && !x.includes('\n')) && v.join(', ').length < 60) {
      lines.push(`${pad}${key}: [${v.map(scalar).join(', ')}]`);
    } else if (!Array.isArray(v) && Object.keys(v).length === 0) lines.push(`${pad}${key}: {}`);
    else lines.push(`${pad}${key}:`, write(v, Array.isArray(v) ? indent + 2 : indent + 2));
  }
  return lines.join('\n');
}

/** YAML for a definition object (as the API returns it), kind first. */
export function toYaml(definition) {
  return `${write(definition, 0)}\n`;
}
