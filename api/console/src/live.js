// One notifier WebSocket for the whole console. Notifications are queued and handed to listeners in
// batches, once per animation frame, so a burst of status changes costs one render per frame.
import { accessToken, refresh, get } from './api.js';

const FILTERS = ['entity_type:execution', 'entity_type:inquiry', 'entity_type:rule'];

window.__attuneStats = window.__attuneStats || { notifications: 0, frames: 0 };

let ws = null;
let wsUrl = null;
let state = 'closed';
let wanted = false;
let attempt = 0;
let retryTimer = null;
let everOpened = false;
let queue = [];
let scheduled = false;
const batchListeners = new Set();
const stateListeners = new Set();
const reconnectListeners = new Set();

function setState(s) {
  state = s;
  for (const fn of stateListeners) fn(s);
}

export const liveState = () => state;

export function onLiveState(fn) {
  stateListeners.add(fn);
  return () => stateListeners.delete(fn);
}

// fn(batch: notification[]) once per frame with the frame's notifications, in arrival order.
export function onNotifications(fn) {
  batchListeners.add(fn);
  return () => batchListeners.delete(fn);
}

// fn() after the socket came back from a drop (pages re-fetch once: they may have missed changes).
export function onReconnect(fn) {
  reconnectListeners.add(fn);
  return () => reconnectListeners.delete(fn);
}

function flush() {
  scheduled = false;
  const batch = queue;
  queue = [];
  if (!batch.length) return;
  window.__attuneStats.notifications += batch.length;
  window.__attuneStats.frames += 1;
  for (const fn of batchListeners) {
    try {
      fn(batch);
    } catch (e) {
      console.error(e);
    }
  }
}

function enqueue(n) {
  queue.push(n);
  if (scheduled) return;
  scheduled = true;
  // requestAnimationFrame pauses in hidden tabs: a timer keeps the queue bounded there.
  let done = false;
  const run = () => {
    if (done) return;
    done = true;
    flush();
  };
  requestAnimationFrame(run);
  setTimeout(run, 250);
}

// The notifier URL from GET /health/detailed (kept once known); else ws://<host>:8081/ws for this attempt.
async function resolveUrl() {
  if (wsUrl) return wsUrl;
  try {
    const h = await get('/health/detailed');
    const d = (h && (h.data || h)) || {};
    if (typeof d.websocket_url === 'string' && d.websocket_url) {
      wsUrl = d.websocket_url;
      return wsUrl;
    }
  } catch {
    /* fall back below */
  }
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${proto}://${location.hostname}:8081/ws`;
}

function scheduleReconnect() {
  if (!wanted) return;
  clearTimeout(retryTimer);
  const delay = Math.min(15000, 500 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
  attempt += 1;
  retryTimer = setTimeout(open, delay);
}

let generation = 0;
let opening = false;

async function open() {
  if (!wanted || opening || (ws && ws.readyState <= 1)) return;
  const gen = generation;
  opening = true;
  setState('connecting');
  let url;
  try {
    url = await resolveUrl();
  } finally {
    opening = false;
  }
  const token = accessToken();
  if (gen !== generation) {
    if (wanted) open(); // stopped and started again meanwhile: open for the new session
    return;
  }
  if (!wanted || !token) {
    setState('closed');
    return;
  }
  let sock;
  try {
    sock = new WebSocket(url, ['attune.v1', `attune.jwt.${token}`]);
  } catch (e) {
    setState('closed');
    scheduleReconnect();
    return;
  }
  ws = sock;
  sock.onopen = () => {
    for (const f of FILTERS) sock.send(JSON.stringify({ type: 'subscribe', filter: f }));
    const wasReconnect = everOpened;
    everOpened = true;
    attempt = 0;
    setState('open');
    if (wasReconnect) for (const fn of reconnectListeners) fn();
  };
  sock.onmessage = (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (msg && msg.type === 'notification') enqueue(msg);
  };
  sock.onclose = (ev) => {
    if (ws !== sock) return;
    ws = null;
    setState('closed');
    if (!wanted) return;
    if (ev.code === 4401) {
      // Token expired: reconnect at once with the newer token (refreshing first if there is none yet).
      if (accessToken() && accessToken() !== token) open();
      else
        refresh()
          .then(() => open())
          .catch(() => {});
      return;
    }
    scheduleReconnect();
  };
  sock.onerror = () => {
    /* onclose follows */
  };
}

export function startLive() {
  if (wanted) return;
  wanted = true;
  attempt = 0;
  open();
}

export function stopLive() {
  generation += 1;
  wanted = false;
  everOpened = false;
  clearTimeout(retryTimer);
  if (ws) {
    const s = ws;
    ws = null;
    s.close(1000);
  }
  setState('closed');
}
