// The API client: same origin, JSON, and a bearer token asked for when the server answers 401.
// The token lives in memory and in sessionStorage (this tab only), never in localStorage or a URL.

const BASE = '/api/scaffolder/v2';
const OWN = '/api/falsework/v1'; // Falsework's own routes: the editor's and the pickers'
const TOKEN_KEY = 'falsework.token';

let token = sessionStorage.getItem(TOKEN_KEY) || null;
let askToken = null; // set by the app: () => Promise<string>, resolves with a new token
let pendingAsk = null;

export class ApiError extends Error {
  constructor(status, body) {
    const message = body?.error?.message || body?.message || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.body = body;
  }
}

export function onTokenNeeded(fn) {
  askToken = fn;
}

export function setToken(value) {
  token = value || null;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function authHeaders() {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** Ask the user for a token once, however many requests are waiting for it. */
export async function requestToken(reason) {
  if (!askToken) throw new ApiError(401, { error: { message: reason } });
  if (!pendingAsk) {
    pendingAsk = askToken(reason).finally(() => {
      pendingAsk = null;
    });
  }
  setToken(await pendingAsk);
}

/** fetch() with the token; a 401 asks for a token and tries again. Returns the Response. */
export async function authFetch(url, init = {}) {
  for (;;) {
    const headers = { ...(init.headers || {}), ...authHeaders() };
    const response = await fetch(url, { ...init, headers });
    if (response.status !== 401) return response;
    const body = await response.json().catch(() => ({}));
    await requestToken(
      token ? 'That token was not accepted.' : body?.error?.message || 'Sign in to continue.',
    );
  }
}

async function call(method, path, body, extraHeaders = {}, base = BASE) {
  const init = { method, headers: { Accept: 'application/json', ...extraHeaders } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await authFetch(`${base}${path}`, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: { message: text.slice(0, 200) } };
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

const enc = encodeURIComponent;

export const api = {
  me: () => call('GET', '/me'),
  templates: () => call('GET', '/templates'),
  parameterSchema: (ns, name) =>
    call('GET', `/templates/${enc(ns)}/template/${enc(name)}/parameter-schema`),
  createTask: (body) => call('POST', '/tasks', body),
  listTasks: (query) => {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
    }
    return call('GET', `/tasks?${qs}`);
  },
  task: (id) => call('GET', `/tasks/${enc(id)}`),
  events: (id) => call('GET', `/tasks/${enc(id)}/events`),
  cancel: (id) => call('POST', `/tasks/${enc(id)}/cancel`),
  retry: (id) => call('POST', `/tasks/${enc(id)}/retry`),
  eventStreamUrl: (id) => `${BASE}/tasks/${enc(id)}/eventstream`,
  dryRun: (body) => call('POST', '/dry-run', body),
  validateTemplate: (body) => call('POST', '/templates/validate', body, {}, OWN),
  templateSource: (ns, name) => call('GET', `/templates/${enc(ns)}/${enc(name)}/source`, undefined, {}, OWN),
  entities: (query) => call('GET', `/entities?${new URLSearchParams(query)}`, undefined, {}, OWN),
  scaffolds: (query) => {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.set(k, String(v));
    return call('GET', `/scaffolds?${qs}`, undefined, {}, OWN);
  },
  startUpdates: (body) => call('POST', '/scaffolds/updates', body, {}, OWN),
  repoHosts: () => call('GET', '/repo-hosts', undefined, {}, OWN),
  adminOverview: () => call('GET', '/admin/overview', undefined, {}, OWN),
  pauseClaiming: (reason) => call('PUT', '/admin/pause', { reason }, {}, OWN),
  resumeClaiming: () => call('DELETE', '/admin/pause', undefined, {}, OWN),
  bulk: (action, filter) => call('POST', `/admin/tasks/${enc(action)}`, filter, {}, OWN),
  setWorkerLimit: (id, limit) => call('PATCH', `/workers/${enc(id)}`, { limit }),
};
