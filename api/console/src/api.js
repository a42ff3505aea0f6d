// REST client: tokens in sessionStorage, refresh before expiry or on a 401, the caller's rights.
const KEY = 'attune.session';
let session = load();
let refreshTimer = null;
let refreshing = null;
let me = null;
const authListeners = new Set();

// A session restored from sessionStorage (page reload) gets its refresh timer too.
queueMicrotask(() => scheduleRefresh());

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.details = body && body.details;
  }
}

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY)) || null;
  } catch {
    return null;
  }
}

function save(s) {
  session = s;
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
  scheduleRefresh();
  for (const fn of authListeners) fn(s);
}

export function onAuthChange(fn) {
  authListeners.add(fn);
  return () => authListeners.delete(fn);
}

export const currentSession = () => session;
export const accessToken = () => (session ? session.access_token : null);
export const currentUser = () => (session ? session.user : null);

function fromTokenResponse(d) {
  return {
    access_token: d.access_token,
    refresh_token: d.refresh_token,
    expires_at: Date.now() + (d.expires_in || 3600) * 1000,
    lifetime: (d.expires_in || 3600) * 1000,
    user: d.user,
  };
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!session) return;
  // Refresh when 80% of the lifetime has passed (at least 30 s before expiry).
  const margin = Math.max(30000, session.lifetime * 0.2);
  const wait = Math.max(1000, session.expires_at - margin - Date.now());
  refreshTimer = setTimeout(() => refresh().catch(() => {}), Math.min(wait, 2 ** 31 - 1));
}

async function raw(method, path, body, token) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, { error: `Network error: ${e.message}` });
  }
  let json = null;
  const text = await resp.text();
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = { error: text.slice(0, 200) };
    }
  }
  if (!resp.ok) throw new ApiError(resp.status, json);
  return json;
}

export async function login(user, password) {
  const body = await raw('POST', '/auth/login', { login: user, password });
  me = null;
  save(fromTokenResponse(body.data));
  return body.data;
}

export function refresh() {
  if (!session) return Promise.reject(new ApiError(401, { error: 'Not logged in' }));
  if (!refreshing) {
    const token = session.refresh_token;
    refreshing = raw('POST', '/auth/refresh', { refresh_token: token })
      .then((b) => save(fromTokenResponse(b.data)))
      .catch((e) => {
        if (e.status === 401) logout('Your session has expired; please log in again.');
        throw e;
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

export let logoutReason = '';
export function logout(reason = '') {
  logoutReason = reason;
  me = null;
  save(null);
}

// An authenticated call; a 401 triggers one refresh and one retry.
export async function api(method, path, body) {
  if (!session) throw new ApiError(401, { error: 'Not logged in' });
  if (refreshing) await refreshing.catch(() => {});
  try {
    return await raw(method, path, body, accessToken());
  } catch (e) {
    if (e.status !== 401 || !session) throw e;
    await refresh();
    return raw(method, path, body, accessToken());
  }
}

export const get = (path) => api('GET', path);
export const post = (path, body = {}) => api('POST', path, body);

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

export const seg = (s) => encodeURIComponent(String(s));

// ---------------------------------------------------------------------------------------- rights

export async function loadMe(force = false) {
  if (!me || force) me = (await get('/auth/me')).data;
  return me;
}

export const currentMe = () => me;

// May the caller do `action` on `resource`? A constrained grant still offers the button: the API decides
// per object (a 403 then shows its message).
export function can(resource, action, m = me) {
  if (!m) return false;
  if ((m.assigned_permission_set_refs || []).includes('core.admin')) return true;
  return (m.effective_permissions || []).some(
    (g) =>
      (g.resource === resource || g.resource === '*') &&
      Array.isArray(g.actions) &&
      (g.actions.includes(action) || g.actions.includes('*')),
  );
}
