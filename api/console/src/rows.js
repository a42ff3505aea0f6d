// The executions list's live logic, free of the DOM (unit-tested with node --test).

export const PAGE_SIZE = 50;

export const toRfc3339 = (local) => {
  if (!local) return '';
  const d = new Date(local);
  return isNaN(d) ? '' : d.toISOString();
};

export function matches(p, f) {
  if (f.status && !f.status.split(',').includes(p.status)) return false;
  if (f.action_ref && p.action_ref !== f.action_ref) return false;
  if (f.rule_ref && p.rule_ref !== f.rule_ref) return false;
  const after = toRfc3339(f.created_after);
  const before = toRfc3339(f.created_before);
  if (after && !(p.created && p.created >= after)) return false;
  if (before && !(p.created && p.created <= before)) return false;
  return true;
}

export const newestFirst = (a, b) => (a.created === b.created ? b.id - a.id : a.created < b.created ? 1 : -1);

// Applies one frame's notifications to the rows: updates in place, inserts what belongs on page 1.
export function applyBatch(rows, batch, filters, page, pageSize = PAGE_SIZE) {
  const merged = new Map();
  for (const n of batch) {
    if (n.entity_type !== 'execution') continue;
    const created = n.notification_type === 'execution_created';
    if (!created && n.notification_type !== 'execution_status_changed') continue;
    const p = n.payload || {};
    const id = p.id ?? n.entity_id;
    const m = merged.get(id);
    if (m) {
      m.p = { ...m.p, ...p };
      m.created = m.created || created;
    } else merged.set(id, { created, p: { ...p, id } });
  }
  if (!merged.size) return null;
  const index = new Map(rows.map((r, i) => [r.id, i]));
  let next = null;
  let inserted = 0;
  let createdCount = 0;
  for (const [id, { created, p }] of merged) {
    const i = index.get(id);
    if (i !== undefined) {
      next = next || rows.slice();
      const r = next[i];
      next[i] = {
        ...r,
        status: p.status ?? r.status,
        started_at: p.started_at ?? r.started_at,
        updated: p.updated ?? r.updated,
      };
    } else if (page === 1 && matches(p, filters)) {
      next = next || rows.slice();
      next.push({
        id,
        action_ref: p.action_ref,
        status: p.status,
        enforcement: p.enforcement,
        rule_ref: p.rule_ref,
        trigger_ref: p.trigger_ref,
        parent: p.parent,
        started_at: p.started_at,
        created: p.created,
        updated: p.updated,
        workflow_task: p.workflow_task,
      });
      inserted += 1;
      if (created) createdCount += 1;
    }
  }
  if (!next) return null;
  if (inserted) {
    next.sort(newestFirst);
    if (next.length > pageSize) next.length = pageSize;
  }
  return { rows: next, createdCount };
}
