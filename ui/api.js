// The REST API the catalog reads (/api/v1), and what the UI knows about kinds.

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

/** GET a JSON document; non-2xx answers throw ApiError with the problem's code. */
export async function get(path, params) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, value);
  }
  let response;
  try {
    response = await fetch(url, { headers: { Accept: 'application/json' } });
  } catch (e) {
    throw new ApiError(0, 'network', `the server did not answer (${e.message})`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, body && body.code, body && body.detail);
  }
  return body;
}

/** Like get, but answers the body of an error too (health checks answer 503 + body). */
export async function getAny(path) {
  const response = await fetch(new URL(path, location.origin), { headers: { Accept: 'application/json' } });
  return { status: response.status, body: await response.json().catch(() => null) };
}

export const KINDS = [
  { kind: 'feature', plural: 'features', label: 'Features', versioned: true },
  { kind: 'source', plural: 'sources', label: 'Sources', versioned: true },
  { kind: 'label', plural: 'labels', label: 'Labels', versioned: true },
  { kind: 'training_set', plural: 'training-sets', label: 'Training sets', versioned: true },
  { kind: 'model', plural: 'models', label: 'Models', versioned: false },
  { kind: 'entity', plural: 'entities', label: 'Entities', versioned: false },
  { kind: 'provider', plural: 'providers', label: 'Providers', versioned: false },
  { kind: 'user', plural: 'users', label: 'Users', versioned: false },
];

export function kindInfo(kind) {
  return KINDS.find((k) => k.kind === kind || k.plural === kind);
}

/** The catalog path of a resource. */
export function resourcePath(kind, name, variant) {
  const info = kindInfo(kind);
  const base = `/${info ? info.plural : kind}/${encodeURIComponent(name)}`;
  return variant ? `${base}/${encodeURIComponent(variant)}` : base;
}

/** The API path of a resource. */
export function apiPath(kind, name, variant) {
  return `/api/v1${resourcePath(kind, name, variant)}`;
}
