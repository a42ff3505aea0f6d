// #/executions — the list with filters, pagination and live updates (batched once per frame).
import { Component } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { get, qs } from '../api.js';
import { onNotifications, onReconnect } from '../live.js';
import { html, ErrorBox, Pager, STATUSES, fmtTime, announce } from '../util.js';
import { PAGE_SIZE, applyBatch, toRfc3339 } from '../rows.js';

const STATUS_CHOICES = [
  ['', 'any status'],
  ['requested,scheduling,scheduled,running,canceling', 'active (not finished)'],
  ['completed,failed,cancelled,timeout,abandoned', 'finished'],
  ['failed,timeout,abandoned', 'problems (failed, timeout, abandoned)'],
  ...STATUSES.map((s) => [s, s]),
];
const EMPTY = { status: '', action_ref: '', rule_ref: '', created_after: '', created_before: '' };
// Filters and page survive navigation to a detail page and back.
let remembered = { filters: EMPTY, page: 1 };
let lastAnnounce = 0;
let pendingAnnounce = 0;

function source(r) {
  if (r.rule_ref) return `rule ${r.rule_ref}`;
  if (r.parent) return html`<a href=${`#/executions/${r.parent}`}>workflow #${r.parent}</a>`;
  if (r.enforcement) return `enforcement #${r.enforcement}`;
  return 'manual';
}

// A row re-renders only when its object changed (a burst of updates touches few rows per frame).
class Row extends Component {
  shouldComponentUpdate(next) {
    return next.row !== this.props.row;
  }
  render({ row: r }) {
    const task = r.workflow_task && r.workflow_task.task_name;
    return html`<tr data-execution-id=${r.id}>
      <td class="id" data-label="ID"><a href=${`#/executions/${r.id}`}>#${r.id}</a></td>
      <td class="action" data-label="Action"><span>${r.action_ref}${task && html` <span class="muted">(${task})</span>`}</span></td>
      <td class="status" data-label="Status" data-status=${r.status}><span class=${`badge st-${r.status}`}>${r.status}</span></td>
      <td class="source" data-label="Source">${source(r)}</td>
      <td class="time" data-label="Created">${fmtTime(r.created)}</td>
      <td class="time" data-label="Started">${fmtTime(r.started_at)}</td>
      <td class="time" data-label="Updated">${fmtTime(r.updated)}</td>
    </tr>`;
  }
}

function Filters({ initial, onApply }) {
  const [f, setF] = useState(initial);
  const set = (k) => (e) => setF({ ...f, [k]: e.target.value });
  return html`<form class="filters" role="search" aria-label="Filter executions"
      onSubmit=${(e) => {
        e.preventDefault();
        onApply({ ...f, action_ref: f.action_ref.trim(), rule_ref: f.rule_ref.trim() });
      }}>
    <div class="field">
      <label for="filter-status">Status</label>
      <select id="filter-status" value=${f.status} onChange=${set('status')}>
        ${STATUS_CHOICES.map(([v, l]) => html`<option value=${v}>${l}</option>`)}
      </select>
    </div>
    <div class="field">
      <label for="filter-action">Action ref</label>
      <input id="filter-action" type="text" value=${f.action_ref} onInput=${set('action_ref')} placeholder="pack.action" />
    </div>
    <div class="field">
      <label for="filter-rule">Rule ref</label>
      <input id="filter-rule" type="text" value=${f.rule_ref} onInput=${set('rule_ref')} placeholder="pack.rule" />
    </div>
    <div class="field">
      <label for="filter-after">Created after</label>
      <input id="filter-after" type="datetime-local" step="1" value=${f.created_after} onInput=${set('created_after')} />
    </div>
    <div class="field">
      <label for="filter-before">Created before</label>
      <input id="filter-before" type="datetime-local" step="1" value=${f.created_before} onInput=${set('created_before')} />
    </div>
    <div class="filter-buttons">
      <button type="submit" id="filter-apply" class="primary">Apply</button>
      <button type="button" id="filter-clear" onClick=${() => {
        setF(EMPTY);
        onApply(EMPTY);
      }}>Clear</button>
    </div>
  </form>`;
}

export function ExecutionsPage() {
  const [filters, setFilters] = useState(remembered.filters);
  const [page, setPage] = useState(remembered.page);
  const [rows, setRows] = useState([]);
  const [pagination, setPagination] = useState(null);
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(true);
  const [loadSeq, setLoadSeq] = useState(0);
  const [reloadTick, setReloadTick] = useState(0);
  const rowsRef = useRef(rows);
  const cur = useRef({ filters, page });
  cur.current = { filters, page };
  remembered = { filters, page };

  useEffect(() => {
    let live = true;
    setLoading(true);
    const q = qs({
      page,
      page_size: PAGE_SIZE,
      status: filters.status,
      action_ref: filters.action_ref.trim(),
      rule_ref: filters.rule_ref.trim(),
      created_after: toRfc3339(filters.created_after),
      created_before: toRfc3339(filters.created_before),
    });
    get(`/api/v1/executions${q}`).then(
      (body) => {
        if (!live) return;
        rowsRef.current = body.items || body.data || [];
        setRows(rowsRef.current);
        setPagination(body.pagination);
        setError(null);
        setLoading(false);
        setLoadSeq((n) => n + 1);
      },
      (e) => {
        if (!live) return;
        setError(e);
        setLoading(false);
      },
    );
    return () => {
      live = false;
    };
  }, [filters, page, reloadTick]);

  // The rows of a fetch are in the DOM now.
  useLayoutEffect(() => {
    if (loadSeq > 0) performance.mark('attune:executions-first-page');
  }, [loadSeq]);

  useEffect(() => {
    const offN = onNotifications((batch) => {
      const { filters: f, page: p } = cur.current;
      const r = applyBatch(rowsRef.current, batch, f, p);
      if (!r) return;
      rowsRef.current = r.rows;
      setRows(r.rows);
      const created = r.createdCount;
      if (created) {
        setPagination((pg) => pg && { ...pg, total_items: pg.total_items + created });
        // Screen readers hear a summary at most every 5 s, not every frame.
        pendingAnnounce += created;
        if (Date.now() - lastAnnounce > 5000) {
          announce(`${pendingAnnounce} new execution${pendingAnnounce > 1 ? 's' : ''}`);
          pendingAnnounce = 0;
          lastAnnounce = Date.now();
        }
      }
    });
    const offR = onReconnect(() => setReloadTick((n) => n + 1));
    return () => {
      offN();
      offR();
    };
  }, []);

  return html`<section aria-labelledby="page-title">
    <h1 id="page-title">Executions</h1>
    <${Filters} initial=${filters} onApply=${(f) => {
      setFilters({ ...f });
      setPage(1);
    }} />
    <${ErrorBox} error=${error} id="executions-error" />
    <div class="table-wrap" role="region" aria-label="Executions table" tabindex="0">
      <table id="executions-table" class="stack" aria-busy=${loading ? 'true' : 'false'}>
        <thead>
          <tr>
            <th scope="col">ID</th><th scope="col">Action</th><th scope="col">Status</th><th scope="col">Source</th>
            <th scope="col">Created</th><th scope="col">Started</th><th scope="col">Updated</th>
          </tr>
        </thead>
        <tbody>
          ${rows.map((r) => html`<${Row} key=${r.id} row=${r} />`)}
        </tbody>
      </table>
    </div>
    ${!loading && !error && rows.length === 0 && html`<p class="muted" id="executions-empty">No executions match.</p>`}
    <${Pager} pagination=${pagination} label="Executions pages" onPage=${(p) => setPage(Math.max(1, p))} />
  </section>`;
}
