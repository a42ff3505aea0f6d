import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';

export { html };

// ------------------------------------------------------------------------------------ hash router

export function parseHash(hash = location.hash) {
  const h = hash.replace(/^#\/?/, '');
  const [path, query = ''] = h.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(query) };
}

export function useRoute() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const on = () => setRoute(parseHash());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export const navigate = (path) => {
  location.hash = path.startsWith('#') ? path : `#${path}`;
};

// ------------------------------------------------------------------------------------- formatting

export const TERMINAL = new Set(['completed', 'failed', 'timeout', 'cancelled', 'abandoned']);
export const STATUSES = [
  'requested', 'scheduling', 'scheduled', 'running', 'completed',
  'failed', 'canceling', 'cancelled', 'timeout', 'abandoned',
];

export function fmtTime(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  if (isNaN(d)) return ts;
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(
    d.getSeconds(),
  )}.${p(d.getMilliseconds(), 3)}`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

export const isSecret = (v) => v && typeof v === 'object' && !Array.isArray(v) && v.$attune_secret === true;
export const SECRET_TEXT = '•••• (secret)';

// JSON text with redacted secrets shown as "•••• (secret)".
export function showJson(v) {
  if (isSecret(v)) return SECRET_TEXT;
  if (v === undefined) return '';
  return JSON.stringify(v, (k, x) => (isSecret(x) ? SECRET_TEXT : x), 2);
}

// ------------------------------------------------------------------------------------- components

export function ErrorBox({ error, id }) {
  if (!error) return null;
  const msg = typeof error === 'string' ? error : error.message;
  return html`<p class="error" role="alert" id=${id}>${msg}</p>`;
}

export function StatusBadge({ status }) {
  return html`<span class=${`badge st-${status}`}>${status}</span>`;
}

export function Pager({ pagination, onPage, label = 'Pages' }) {
  if (!pagination) return null;
  const { page, total_pages, total_items, has_previous, has_next } = pagination;
  return html`<nav class="pager" aria-label=${label}>
    <button type="button" class="pager-prev" disabled=${!has_previous} onClick=${() => onPage(page - 1)}>
      ← Previous
    </button>
    <span class="pager-info">Page ${page} of ${Math.max(1, total_pages)} (${total_items} total)</span>
    <button type="button" class="pager-next" disabled=${!has_next} onClick=${() => onPage(page + 1)}>Next →</button>
  </nav>`;
}

// Loads `fn()` whenever deps change; returns {data, error, loading, reload}.
export function useLoad(fn, deps) {
  const [st, setSt] = useState({ data: null, error: null, loading: true });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setSt((s) => ({ ...s, loading: true }));
    fn().then(
      (data) => live && setSt({ data, error: null, loading: false }),
      (error) => live && setSt({ data: null, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, n]);
  return { ...st, reload: () => setN((x) => x + 1) };
}

// A polite announcement in the page's aria-live region.
let announceTimer = null;
export function announce(text) {
  const el = document.getElementById('live-region');
  if (!el) return;
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => {
    el.textContent = text;
  }, 50);
}
