// #/inquiries — pending inquiries with a response form generated from response_schema.
import { useEffect, useRef, useState } from 'preact/hooks';
import { can, get, post, qs, seg } from '../api.js';
import { onNotifications, onReconnect } from '../live.js';
import { SchemaForm } from '../form.js';
import { html, ErrorBox, fmtTime, announce } from '../util.js';

function Inquiry({ q, onDone }) {
  const [error, setError] = useState(null);
  const mayRespond = can('inquiries', 'respond');
  const respond = async (response) => {
    setError(null);
    await post(`/api/v1/inquiries/${seg(q.id)}/respond`, { response });
    announce(`Inquiry ${q.id} answered`);
    onDone(q.id);
  };
  const options = Array.isArray(q.response_options) ? q.response_options : [];
  const hasSchema = q.response_schema && typeof q.response_schema === 'object' && Object.keys(q.response_schema).length;
  return html`<article class="card inquiry" data-inquiry-id=${q.id} aria-labelledby=${`inq-${q.id}-title`}>
    <h2 id=${`inq-${q.id}-title`}>#${q.id}: ${q.prompt || q.purpose || 'Inquiry'}</h2>
    <dl class="facts">
      ${q.purpose && html`<div><dt>Purpose</dt><dd>${q.purpose}</dd></div>`}
      <div><dt>Execution</dt><dd>${q.execution ? html`<a href=${`#/executions/${q.execution}`}>#${q.execution}</a>` : '—'}</dd></div>
      ${q.workflow_task_name && html`<div><dt>Task</dt><dd>${q.workflow_task_name}</dd></div>`}
      ${q.assigned_to && html`<div><dt>Assigned to</dt><dd>${q.assigned_to}</dd></div>`}
      <div><dt>Asked</dt><dd>${fmtTime(q.created)}</dd></div>
      <div><dt>Times out</dt><dd>${q.timeout_at ? fmtTime(q.timeout_at) : 'never'}</dd></div>
    </dl>
    ${mayRespond && options.length > 0 &&
    html`<div class="options" role="group" aria-label="Quick answers">
      ${options.map(
        (o) => html`<button type="button" class=${`option ${o.style === 'danger' ? 'danger' : o.style === 'primary' ? 'primary' : ''}`}
          data-option=${o.ref} onClick=${() => respond(o.response).catch(setError)}>${o.label || o.ref}</button>`,
      )}
    </div>`}
    <${ErrorBox} error=${error} />
    ${mayRespond &&
    html`<${SchemaForm} idPrefix=${`inq-${q.id}`} schema=${q.response_schema} submitLabel="Respond"
      rawJsonFallback=${!hasSchema} onSubmit=${respond} />`}
  </article>`;
}

export function InquiriesPage() {
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);
  const [done, setDone] = useState(null);
  const timer = useRef(null);

  useEffect(() => {
    let live = true;
    get(`/api/v1/inquiries${qs({ status: 'pending', limit: 100 })}`).then(
      (b) => {
        if (!live) return;
        setRows(b.items || []);
        setError(null);
      },
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [tick]);

  useEffect(() => {
    const reload = () => {
      if (timer.current) return;
      timer.current = setTimeout(() => {
        timer.current = null;
        setTick((n) => n + 1);
      }, 250);
    };
    const offN = onNotifications((batch) => {
      if (batch.some((n) => n.entity_type === 'inquiry')) reload();
    });
    const offR = onReconnect(reload);
    return () => {
      offN();
      offR();
      clearTimeout(timer.current);
    };
  }, []);

  return html`<section aria-labelledby="page-title">
    <h1 id="page-title">Pending inquiries</h1>
    <${ErrorBox} error=${error} />
    ${done && html`<p class="notice" role="status" id="inquiry-done">Inquiry #${done} answered.</p>`}
    ${rows && !rows.length && html`<p class="muted" id="inquiries-empty">No pending inquiries.</p>`}
    <div id="inquiries-list">
      ${(rows || []).map(
        (q) => html`<${Inquiry} key=${q.id} q=${q} onDone=${(id) => {
          setDone(id);
          setRows((rs) => rs.filter((x) => x.id !== id));
        }} />`,
      )}
    </div>
  </section>`;
}
