// #/executions/<id> — one execution: status, parameters (secrets redacted), result, lineage, workflow tree.
import { useEffect, useRef, useState } from 'preact/hooks';
import { can, get, post, qs, seg } from '../api.js';
import { onNotifications, onReconnect } from '../live.js';
import {
  html, ErrorBox, StatusBadge, TERMINAL, fmtTime, fmtDuration, isSecret, showJson, SECRET_TEXT, announce,
} from '../util.js';

const MAX_TREE_REQUESTS = 40;

async function loadTree(rootId) {
  let budget = MAX_TREE_REQUESTS;
  async function children(id, depth) {
    if (budget <= 0 || depth > 6) return [];
    budget -= 1;
    const body = await get(`/api/v1/executions${qs({ parent: id, page_size: 100, order: 'asc' })}`);
    const items = body.items || [];
    return Promise.all(items.map(async (c) => ({ ...c, children: await children(c.id, depth + 1) })));
  }
  return children(rootId, 0);
}

function collectIds(nodes, out = new Set()) {
  for (const n of nodes) {
    out.add(n.id);
    collectIds(n.children || [], out);
  }
  return out;
}

function Tree({ nodes }) {
  if (!nodes.length) return null;
  return html`<ul class="tree">
    ${nodes.map(
      (n) => html`<li key=${n.id} data-execution-id=${n.id}>
        <a href=${`#/executions/${n.id}`}>#${n.id}</a>
        <span class="task-name">${(n.workflow_task && n.workflow_task.task_name) || '—'}</span>
        <span class="muted">${n.action_ref}</span>
        <span class="status" data-status=${n.status}><${StatusBadge} status=${n.status} /></span>
        <${Tree} nodes=${n.children || []} />
      </li>`,
    )}
  </ul>`;
}

function Params({ config }) {
  if (!config || typeof config !== 'object' || Array.isArray(config) || !Object.keys(config).length) {
    return html`<p class="muted">${config && typeof config !== 'object' ? showJson(config) : 'No parameters.'}</p>`;
  }
  return html`<div class="table-wrap"><table class="kv" id="exec-params">
    <tbody>
      ${Object.entries(config).map(
        ([k, v]) => html`<tr data-param=${k}>
          <th scope="row">${k}</th>
          <td class=${isSecret(v) ? 'secret' : ''}>
            ${isSecret(v) ? SECRET_TEXT : typeof v === 'string' ? v : html`<pre>${showJson(v)}</pre>`}
          </td>
        </tr>`,
      )}
    </tbody>
  </table></div>`;
}

function Result({ result }) {
  if (result === null || result === undefined) return html`<p class="muted">No result yet.</p>`;
  if (typeof result !== 'object') return html`<pre>${showJson(result)}</pre>`;
  return html`<div>
    <dl class="facts">
      <div><dt>Exit code</dt><dd id="exec-exit-code">${result.exit_code ?? '—'}</dd></div>
      ${result.duration_ms !== undefined && html`<div><dt>Process time</dt><dd>${fmtDuration(result.duration_ms)}</dd></div>`}
    </dl>
    ${result.error && html`<p class="error" id="exec-error"><strong>Error:</strong> ${result.error}</p>`}
    <h3>stdout${result.stdout_truncated ? ' (truncated)' : ''}</h3>
    <pre id="exec-stdout" class="output" tabindex="0">${result.stdout || ''}</pre>
    <h3>stderr${result.stderr_truncated ? ' (truncated)' : ''}</h3>
    <pre id="exec-stderr" class="output" tabindex="0">${result.stderr || ''}</pre>
    <details>
      <summary>Full result (JSON)</summary>
      <pre id="exec-result">${showJson(result)}</pre>
    </details>
  </div>`;
}

function Lineage({ ex, lineage }) {
  const { enforcement, event, error } = lineage;
  if (!ex.enforcement && !ex.parent) {
    return html`<p class="muted" id="lineage">Started directly (no rule, no workflow).</p>`;
  }
  return html`<ol class="lineage" id="lineage">
    ${ex.enforcement &&
    html`<li id="lineage-event">
      <strong>Event</strong> ${event ? html`#<span class="lineage-id">${event.id}</span>` : enforcement ? `#${enforcement.event}` : '…'}
      ${event && html` — trigger <code>${event.trigger_ref}</code>${event.source_ref ? `, source ${event.source_ref}` : ''}, ${fmtTime(event.created)}`}
      ${event && event.payload !== undefined && html`<details><summary>Payload</summary><pre>${showJson(event.payload)}</pre></details>`}
    </li>`}
    ${ex.enforcement &&
    html`<li id="lineage-enforcement">
      <strong>Enforcement</strong> #<span class="lineage-id">${ex.enforcement}</span>
      ${enforcement && html` — rule <code>${enforcement.rule_ref}</code>, trigger <code>${enforcement.trigger_ref}</code>, ${enforcement.status}`}
    </li>`}
    ${ex.parent &&
    html`<li id="lineage-parent"><strong>Workflow</strong> <a href=${`#/executions/${ex.parent}`}>#${ex.parent}</a>
      ${ex.workflow_task && html` — task <code>${ex.workflow_task.task_name}</code>`}</li>`}
    <li id="lineage-execution"><strong>Execution</strong> #${ex.id}</li>
    ${error && html`<li class="error">${error.message}</li>`}
  </ol>`;
}

function duration(ex) {
  if (!ex.started_at) return null;
  const start = Date.parse(ex.started_at);
  if (TERMINAL.has(ex.status)) {
    if (ex.result && typeof ex.result.duration_ms === 'number') return ex.result.duration_ms;
    return Date.parse(ex.updated) - start;
  }
  return Date.now() - start;
}

export function ExecutionPage({ id }) {
  const [ex, setEx] = useState(null);
  const [error, setError] = useState(null);
  const [lineage, setLineage] = useState({});
  const [tree, setTree] = useState([]);
  const [inquiries, setInquiries] = useState([]);
  const [actionError, setActionError] = useState(null);
  const [busy, setBusy] = useState(false);
  const treeIds = useRef(new Set());
  const timers = useRef({});

  const loadEx = () =>
    get(`/api/v1/executions/${seg(id)}`).then(
      (b) => {
        setEx(b.data);
        setError(null);
        return b.data;
      },
      (e) => setError(e),
    );
  const reloadInquiries = () =>
    get(`/api/v1/executions/${seg(id)}/inquiries`).then(
      (b) => setInquiries(b.items || b.data || []),
      () => {},
    );
  const reloadTree = () =>
    loadTree(id).then(
      (t) => {
        treeIds.current = collectIds(t);
        setTree(t);
      },
      () => {},
    );
  // At most one reload per kind every 250 ms, however many notifications arrive.
  const soon = (kind, fn) => {
    if (timers.current[kind]) return;
    timers.current[kind] = setTimeout(() => {
      timers.current[kind] = null;
      fn();
    }, 250);
  };

  useEffect(() => {
    loadEx().then(async (e) => {
      if (!e || !e.enforcement) return;
      try {
        const enf = (await get(`/api/v1/enforcements/${seg(e.enforcement)}`)).data;
        setLineage({ enforcement: enf });
        if (enf.event) {
          const ev = (await get(`/api/v1/events/${seg(enf.event)}`)).data;
          setLineage({ enforcement: enf, event: ev });
        }
      } catch (err) {
        setLineage((l) => ({ ...l, error: err }));
      }
    });
    reloadTree();
    reloadInquiries();
    const offN = onNotifications((batch) => {
      let mine = false;
      let treeChanged = false;
      let asked = false;
      for (const n of batch) {
        if (n.entity_type === 'inquiry') {
          const p = n.payload || {};
          if (p.execution === id || p.created_by_execution === id || p.workflow_execution === id) asked = true;
          continue;
        }
        if (n.entity_type !== 'execution') continue;
        const p = n.payload || {};
        if (n.entity_id === id || p.id === id) mine = true;
        if (p.parent === id || treeIds.current.has(p.parent) || treeIds.current.has(n.entity_id)) treeChanged = true;
      }
      if (mine) soon('ex', loadEx);
      if (treeChanged) soon('tree', reloadTree);
      if (asked) soon('inquiries', reloadInquiries);
    });
    const offR = onReconnect(() => {
      loadEx();
      reloadTree();
      reloadInquiries();
    });
    return () => {
      offN();
      offR();
      Object.values(timers.current).forEach((t) => t && clearTimeout(t));
    };
  }, [id]);

  // A running execution's duration ticks.
  const [, tick] = useState(0);
  useEffect(() => {
    if (!ex || !ex.started_at || TERMINAL.has(ex.status)) return;
    const t = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [ex && ex.status, ex && ex.started_at]);

  useEffect(() => {
    if (ex) announce(`Execution ${ex.id} is ${ex.status}`);
  }, [ex && ex.status]);

  async function cancel() {
    setBusy(true);
    setActionError(null);
    try {
      setEx((await post(`/api/v1/executions/${seg(id)}/cancel`)).data);
    } catch (e) {
      setActionError(e);
    } finally {
      setBusy(false);
    }
  }

  if (error) return html`<section><h1 id="page-title">Execution #${id}</h1><${ErrorBox} error=${error} /></section>`;
  if (!ex) return html`<section><h1 id="page-title">Execution #${id}</h1><p class="muted">Loading…</p></section>`;
  const cancellable = !TERMINAL.has(ex.status) && ex.status !== 'canceling' && can('executions', 'cancel');
  return html`<section aria-labelledby="page-title" id="execution-detail" data-execution-id=${ex.id}>
    <p><a href="#/executions">← All executions</a></p>
    <h1 id="page-title">Execution #${ex.id}</h1>
    <dl class="facts">
      <div><dt>Status</dt><dd id="exec-status" class="status" data-status=${ex.status}><${StatusBadge} status=${ex.status} /></dd></div>
      <div><dt>Action</dt><dd id="exec-action"><a href=${`#/actions/${encodeURIComponent(ex.action_ref)}`}>${ex.action_ref}</a></dd></div>
      <div><dt>Created</dt><dd>${fmtTime(ex.created)}</dd></div>
      <div><dt>Started</dt><dd>${fmtTime(ex.started_at)}</dd></div>
      <div><dt>Updated</dt><dd>${fmtTime(ex.updated)}</dd></div>
      <div><dt>Duration</dt><dd id="exec-duration">${fmtDuration(duration(ex))}</dd></div>
      ${ex.retry_count > 0 && html`<div><dt>Retry</dt><dd>${ex.retry_count} of ${ex.max_retries} (after ${ex.retry_reason}; first #${ex.original_execution})</dd></div>`}
      ${ex.executor && html`<div><dt>Executor</dt><dd>${ex.executor}</dd></div>`}
      ${ex.worker && html`<div><dt>Worker</dt><dd>${ex.worker}</dd></div>`}
    </dl>
    ${cancellable && html`<p><button type="button" id="exec-cancel" class="danger" disabled=${busy} onClick=${cancel}>Cancel execution</button></p>`}
    <${ErrorBox} error=${actionError} id="exec-action-error" />
    <h2>Parameters</h2>
    <${Params} config=${ex.config} />
    <h2>Result</h2>
    <${Result} result=${ex.result} />
    ${inquiries.length > 0 &&
    html`<h2>Inquiries</h2>
      <ul id="exec-inquiries">
        ${inquiries.map(
          (q) => html`<li key=${q.id} data-inquiry-id=${q.id}>#${q.id}: ${q.prompt || q.purpose} —
            <${StatusBadge} status=${q.status} />
            ${q.status === 'pending' && html` <a href="#/inquiries">answer…</a>`}</li>`,
        )}
      </ul>`}
    <h2>Lineage</h2>
    <${Lineage} ex=${ex} lineage=${lineage} />
    ${tree.length > 0 &&
    html`<h2>Workflow tasks</h2>
      <div id="exec-children"><${Tree} nodes=${tree} /></div>`}
  </section>`;
}
