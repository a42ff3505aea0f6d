// Attune web console: a thin client of the public REST + WebSocket API (API.md), hash-routed.
import './app.css';
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { currentSession, currentUser, loadMe, login, logout, logoutReason, onAuthChange } from './api.js';
import { liveState, onLiveState, startLive, stopLive } from './live.js';
import { html, navigate, useRoute } from './util.js';
import { ExecutionsPage } from './pages/executions.js';
import { ExecutionPage } from './pages/execution.js';
import { ActionPage, ActionsPage, PacksPage, RulesPage, TriggersPage } from './pages/catalog.js';
import { KeysPage } from './pages/keys.js';
import { InquiriesPage } from './pages/inquiries.js';

const NAV = [
  ['executions', 'Executions'],
  ['packs', 'Packs'],
  ['actions', 'Actions'],
  ['triggers', 'Triggers'],
  ['rules', 'Rules'],
  ['keys', 'Keys'],
  ['inquiries', 'Inquiries'],
];
const LIVE_TEXT = { open: 'Live', connecting: 'Connecting…', closed: 'Offline' };

function LiveIndicator() {
  const [state, setState] = useState(liveState());
  useEffect(() => onLiveState(setState), []);
  return html`<span id="ws-status" data-state=${state} class=${`ws ws-${state}`} role="status"
    title="Live updates (notifier WebSocket)" aria-label=${`Live updates: ${LIVE_TEXT[state] || state}`}>
    <span class="dot" aria-hidden="true"></span>${LIVE_TEXT[state] || state}
  </span>`;
}

function Header({ section }) {
  const user = currentUser();
  return html`<header class="top">
    <a class="brand" href="#/executions">Attune</a>
    <nav aria-label="Main">
      <ul>
        ${NAV.map(
          ([k, label]) => html`<li><a id=${`nav-${k}`} href=${`#/${k}`} aria-current=${section === k ? 'page' : undefined}>${label}</a></li>`,
        )}
      </ul>
    </nav>
    <div class="session">
      <${LiveIndicator} />
      <span class="user" id="current-user">${user && (user.display_name || user.login)}</span>
      <button type="button" id="logout" onClick=${() => {
        logout();
        navigate('/login');
      }}>Log out</button>
    </div>
  </header>`;
}

function Login({ next }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(logoutReason || null);
  const [busy, setBusy] = useState(false);
  const userRef = useRef(null);
  useEffect(() => {
    document.title = 'Log in · Attune';
    userRef.current && userRef.current.focus();
  }, []);
  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(user.trim(), password);
      navigate(next && next !== '/login' ? next : '/executions');
    } catch (err) {
      setError(err.message);
      setBusy(false);
    }
  }
  return html`<main id="main" class="login-page">
    <form class="card login" id="login-form" onSubmit=${submit} aria-labelledby="login-title">
      <h1 id="login-title">Attune console</h1>
      <div class="field">
        <label for="login-user">Login</label>
        <input id="login-user" ref=${userRef} name="login" type="text" autocomplete="username" required
          value=${user} onInput=${(e) => setUser(e.target.value)} />
      </div>
      <div class="field">
        <label for="login-password">Password</label>
        <input id="login-password" name="password" type="password" autocomplete="current-password" required
          value=${password} onInput=${(e) => setPassword(e.target.value)} />
      </div>
      ${error && html`<p class="error" role="alert" id="login-error">${error}</p>`}
      <button type="submit" class="primary" id="login-submit" disabled=${busy}>${busy ? 'Logging in…' : 'Log in'}</button>
    </form>
  </main>`;
}

function Page({ parts, query }) {
  const [a, b] = parts;
  switch (a || 'executions') {
    case 'executions':
      return b ? html`<${ExecutionPage} key=${b} id=${Number(b)} />` : html`<${ExecutionsPage} />`;
    case 'packs':
      return html`<${PacksPage} />`;
    case 'actions':
      return b ? html`<${ActionPage} key=${b} actionRef=${b} />` : html`<${ActionsPage} query=${query} />`;
    case 'triggers':
      return html`<${TriggersPage} />`;
    case 'rules':
      return html`<${RulesPage} />`;
    case 'keys':
      return html`<${KeysPage} />`;
    case 'inquiries':
      return html`<${InquiriesPage} />`;
    default:
      return html`<section><h1 id="page-title">Not found</h1><p>No page <code>#/${parts.join('/')}</code>.
        <a href="#/executions">Executions</a></p></section>`;
  }
}

function App() {
  const route = useRoute();
  const [session, setSession] = useState(currentSession());
  const [me, setMe] = useState(null);
  const [meError, setMeError] = useState(null);
  const userId = session && session.user && session.user.id;
  const next = useRef('/executions');

  useEffect(() => onAuthChange(setSession), []);
  useEffect(() => {
    if (!userId) {
      stopLive();
      setMe(null);
      return;
    }
    setMeError(null);
    // The socket opens once /auth/me has answered: a stale access token has been refreshed by then.
    loadMe(true).then((m) => {
      setMe(m);
      startLive();
    }, setMeError);
  }, [userId]);

  const section = route.parts[0] || 'executions';
  useEffect(() => {
    const label = (NAV.find(([k]) => k === section) || [null, 'Attune'])[1];
    document.title = `${label} · Attune`;
    const main = document.getElementById('main');
    if (main && document.activeElement === document.body) main.focus({ preventScroll: true });
  }, [route.parts.join('/')]);

  if (!session) {
    if (section !== 'login') {
      next.current = location.hash.replace(/^#/, '') || '/executions';
      navigate('/login');
    }
    return html`<${Login} next=${next.current} />`;
  }
  if (section === 'login') {
    navigate(next.current || '/executions');
    return null;
  }
  return html`<div class="app">
    <a class="skip" href="#main" onClick=${(e) => {
      e.preventDefault();
      document.getElementById('main').focus();
    }}>Skip to content</a>
    <${Header} section=${section} />
    <main id="main" tabindex="-1">
      ${meError
        ? html`<p class="error" role="alert">Could not load your permissions: ${meError.message}</p>`
        : null}
      ${/* The page loads alongside /auth/me (a cold load pays one round trip, not two); until
           the rights are known can() offers nothing, and this render runs again once they are. */
        html`<${Page} parts=${route.parts} query=${route.query} me=${me} />`}
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
