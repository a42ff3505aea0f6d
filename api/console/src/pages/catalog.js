// Packs, actions (+ run form), triggers, rules.
import { useEffect, useRef, useState } from 'preact/hooks';
import { can, get, post, qs, seg } from '../api.js';
import { onNotifications, onReconnect } from '../live.js';
import { SchemaForm } from '../form.js';
import { html, ErrorBox, Pager, fmtTime, navigate, showJson, useLoad, announce } from '../util.js';

const list = (path, params) => get(`${path}${qs({ page_size: 50, ...params })}`);

function Table({ id, label, head, children }) {
  return html`<div class="table-wrap" role="region" aria-label=${label} tabindex="0">
    <table id=${id} class="stack">
      <thead><tr>${head.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead>
      <tbody>${children}</tbody>
    </table>
  </div>`;
}

const yesNo = (b) => (b ? 'yes' : 'no');

// ------------------------------------------------------------------------------------------- packs

export function PacksPage() {
  const [page, setPage] = useState(1);
  const { data, error, loading } = useLoad(() => list('/api/v1/packs', { page }), [page]);
  const rows = (data && data.items) || [];
  return html`<section aria-labelledby="page-title">
    <h1 id="page-title">Packs</h1>
    <${ErrorBox} error=${error} />
    <${Table} id="packs-table" label="Packs" head=${['Ref', 'Label', 'Version', 'Description', 'Installed by', 'Installed']}>
      ${rows.map(
        (p) => html`<tr key=${p.id} data-pack-ref=${p.ref}>
          <td data-label="Ref"><a href=${`#/actions?pack_ref=${encodeURIComponent(p.ref)}`}>${p.ref}</a></td>
          <td data-label="Label">${p.label}</td><td data-label="Version">${p.version}</td>
          <td data-label="Description" class="wrap">${p.description || ''}</td>
          <td data-label="Installed by">${p.installation_method || ''}</td>
          <td data-label="Installed" class="time">${fmtTime(p.installed_at || p.created)}</td>
        </tr>`,
      )}
    <//>
    ${!loading && !error && !rows.length && html`<p class="muted">No packs.</p>`}
    <${Pager} pagination=${data && data.pagination} onPage=${setPage} label="Packs pages" />
  </section>`;
}

// ----------------------------------------------------------------------------------------- actions

export function ActionsPage({ query }) {
  const packRef = query.get('pack_ref') || '';
  const [page, setPage] = useState(1);
  const [q, setQ] = useState('');
  const [draft, setDraft] = useState('');
  const { data, error, loading } = useLoad(() => list('/api/v1/actions', { page, q, pack_ref: packRef }), [page, q, packRef]);
  const rows = (data && data.items) || [];
  const mayRun = can('actions', 'execute');
  return html`<section aria-labelledby="page-title">
    <h1 id="page-title">Actions${packRef && html` <span class="muted">in ${packRef}</span>`}</h1>
    <form class="filters" role="search" onSubmit=${(e) => {
      e.preventDefault();
      setPage(1);
      setQ(draft.trim());
    }}>
      <div class="field">
        <label for="actions-q">Search</label>
        <input id="actions-q" type="search" value=${draft} onInput=${(e) => setDraft(e.target.value)} />
      </div>
      <div class="filter-buttons"><button type="submit" id="actions-search">Search</button></div>
    </form>
    <${ErrorBox} error=${error} />
    <${Table} id="actions-table" label="Actions" head=${['Ref', 'Label', 'Runtime', 'Enabled', 'Kind', '']}>
      ${rows.map(
        (a) => html`<tr key=${a.id} data-action-ref=${a.ref}>
          <td data-label="Ref"><a href=${`#/actions/${encodeURIComponent(a.ref)}`}>${a.ref}</a></td>
          <td data-label="Label">${a.label}</td><td data-label="Runtime">${a.runtime_ref || '—'}</td>
          <td data-label="Enabled">${yesNo(a.enabled)}</td>
          <td data-label="Kind">${a.workflow_def ? 'workflow' : 'action'}</td>
          <td data-label="">${mayRun && a.enabled && html`<a class="button run-link" href=${`#/actions/${encodeURIComponent(a.ref)}`}
            aria-label=${`Run ${a.ref}`}>Run…</a>`}</td>
        </tr>`,
      )}
    <//>
    ${!loading && !error && !rows.length && html`<p class="muted">No actions.</p>`}
    <${Pager} pagination=${data && data.pagination} onPage=${setPage} label="Actions pages" />
  </section>`;
}

export function ActionPage({ actionRef }) {
  const { data: action, error } = useLoad(async () => (await get(`/api/v1/actions/${seg(actionRef)}`)).data, [actionRef]);
  if (error) return html`<section><h1 id="page-title">${actionRef}</h1><${ErrorBox} error=${error} /></section>`;
  if (!action) return html`<section><h1 id="page-title">${actionRef}</h1><p class="muted">Loading…</p></section>`;
  const mayRun = can('actions', 'execute');
  const run = async (parameters) => {
    const body = await post('/api/v1/executions/execute', { action_ref: action.ref, parameters });
    announce(`Execution ${body.data.id} started`);
    navigate(`/executions/${body.data.id}`);
  };
  return html`<section aria-labelledby="page-title" id="action-detail" data-action-ref=${action.ref}>
    <p><a href="#/actions">← All actions</a></p>
    <h1 id="page-title">${action.label || action.ref} <span class="muted">${action.ref}</span></h1>
    ${action.description && html`<p>${action.description}</p>`}
    <dl class="facts">
      <div><dt>Pack</dt><dd>${action.pack_ref}</dd></div>
      <div><dt>Runtime</dt><dd>${action.runtime_ref || '—'}</dd></div>
      <div><dt>Enabled</dt><dd>${yesNo(action.enabled)}</dd></div>
      <div><dt>Kind</dt><dd>${action.workflow_def ? 'workflow' : 'action'}</dd></div>
      ${action.timeout_seconds && html`<div><dt>Timeout</dt><dd>${action.timeout_seconds} s</dd></div>`}
    </dl>
    ${mayRun && action.enabled &&
    html`<h2 id="run-title">Run</h2>
      <div class="card" aria-labelledby="run-title">
        <${SchemaForm} key=${action.ref} idPrefix="run" schema=${action.param_schema} submitLabel="Run" onSubmit=${run} />
      </div>`}
    ${mayRun && !action.enabled && html`<p class="muted">This action is disabled.</p>`}
    <details>
      <summary>Parameter schema</summary>
      <pre>${showJson(action.param_schema || {})}</pre>
    </details>
  </section>`;
}

// ---------------------------------------------------------------------------------------- triggers

export function TriggersPage() {
  const [page, setPage] = useState(1);
  const { data, error, loading } = useLoad(() => list('/api/v1/triggers', { page }), [page]);
  const rows = (data && data.items) || [];
  return html`<section aria-labelledby="page-title">
    <h1 id="page-title">Triggers</h1>
    <${ErrorBox} error=${error} />
    <${Table} id="triggers-table" label="Triggers" head=${['Ref', 'Label', 'Enabled', 'Webhook', 'Sensor']}>
      ${rows.map(
        (t) => html`<tr key=${t.id} data-trigger-ref=${t.ref}>
          <td data-label="Ref">${t.ref}</td><td data-label="Label">${t.label}</td>
          <td data-label="Enabled">${yesNo(t.enabled)}</td>
          <td class="webhook" data-label="Webhook">${t.webhook_enabled && t.webhook_key
            ? html`<span><span class="badge st-completed">enabled</span> <code class="webhook-url">${`${location.origin}/api/v1/webhooks/${t.webhook_key}`}</code></span>`
            : 'off'}</td>
          <td data-label="Sensor">${t.sensor_ref || '—'}</td>
        </tr>`,
      )}
    <//>
    ${!loading && !error && !rows.length && html`<p class="muted">No triggers.</p>`}
    <${Pager} pagination=${data && data.pagination} onPage=${setPage} label="Triggers pages" />
  </section>`;
}

// ------------------------------------------------------------------------------------------- rules

export function RulesPage() {
  const [page, setPage] = useState(1);
  const [rows, setRows] = useState([]);
  const [pagination, setPagination] = useState(null);
  const [error, setError] = useState(null);
  const [rowErrors, setRowErrors] = useState({});
  const [busy, setBusy] = useState({});
  const [tick, setTick] = useState(0);
  const timer = useRef(null);
  const mayToggle = can('rules', 'update');

  useEffect(() => {
    let live = true;
    list('/api/v1/rules', { page }).then(
      (b) => {
        if (!live) return;
        setRows(b.items || []);
        setPagination(b.pagination);
        setError(null);
      },
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [page, tick]);

  useEffect(() => {
    const offN = onNotifications((batch) => {
      const changes = batch.filter((n) => n.notification_type === 'rule_lifecycle_changed');
      if (!changes.length) return;
      const structural = changes.some((n) => ['created', 'deleted'].includes(n.payload && n.payload.change));
      setRows((rs) =>
        rs.map((r) => {
          const last = changes.filter((n) => (n.payload || {}).id === r.id || (n.payload || {}).ref === r.ref).pop();
          return last && typeof last.payload.enabled === 'boolean' ? { ...r, enabled: last.payload.enabled } : r;
        }),
      );
      if (structural && !timer.current) {
        timer.current = setTimeout(() => {
          timer.current = null;
          setTick((n) => n + 1);
        }, 300);
      }
    });
    const offR = onReconnect(() => setTick((n) => n + 1));
    return () => {
      offN();
      offR();
      clearTimeout(timer.current);
    };
  }, []);

  async function toggle(r) {
    const verb = r.enabled ? 'disable' : 'enable';
    setBusy((b) => ({ ...b, [r.ref]: true }));
    setRowErrors((e) => ({ ...e, [r.ref]: null }));
    try {
      const updated = (await post(`/api/v1/rules/${seg(r.ref)}/${verb}`)).data;
      setRows((rs) => rs.map((x) => (x.id === updated.id ? { ...x, ...updated } : x)));
      announce(`Rule ${r.ref} ${updated.enabled ? 'enabled' : 'disabled'}`);
    } catch (e) {
      setRowErrors((er) => ({ ...er, [r.ref]: e.message }));
    } finally {
      setBusy((b) => ({ ...b, [r.ref]: false }));
    }
  }

  return html`<section aria-labelledby="page-title">
    <h1 id="page-title">Rules</h1>
    <${ErrorBox} error=${error} />
    <${Table} id="rules-table" label="Rules" head=${['Ref', 'Trigger', 'Action', 'Enabled', '']}>
      ${rows.map(
        (r) => html`<tr key=${r.id} data-rule-ref=${r.ref}>
          <td data-label="Ref"><span>${r.ref}${r.label && r.label !== r.ref ? html`<br /><span class="muted">${r.label}</span>` : ''}</span></td>
          <td data-label="Trigger">${r.trigger_ref}</td>
          <td data-label="Action"><a href=${`#/actions/${encodeURIComponent(r.action_ref)}`}>${r.action_ref}</a></td>
          <td class="rule-enabled" data-label="Enabled" data-enabled=${String(!!r.enabled)}>
            <span class=${`badge ${r.enabled ? 'st-completed' : 'st-cancelled'}`}>${r.enabled ? 'enabled' : 'disabled'}</span>
          </td>
          <td data-label="">
            ${mayToggle && html`<button type="button" class="rule-toggle" disabled=${!!busy[r.ref]}
              aria-label=${`${r.enabled ? 'Disable' : 'Enable'} rule ${r.ref}`} onClick=${() => toggle(r)}>
              ${r.enabled ? 'Disable' : 'Enable'}</button>`}
            ${rowErrors[r.ref] && html`<p class="error" role="alert">${rowErrors[r.ref]}</p>`}
          </td>
        </tr>`,
      )}
    <//>
    ${!error && pagination && !rows.length && html`<p class="muted">No rules.</p>`}
    <${Pager} pagination=${pagination} onPage=${setPage} label="Rules pages" />
  </section>`;
}
