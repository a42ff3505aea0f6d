import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyBatch, matches } from '../src/rows.js';

const NONE = { status: '', action_ref: '', rule_ref: '', created_after: '', created_before: '' };
const ts = (s) => `2026-01-01T00:00:${String(s).padStart(2, '0')}.000Z`;
const row = (id, s, status = 'running') => ({ id, action_ref: 'p.a', status, created: ts(s), updated: ts(s) });
const note = (type, id, s, status, extra = {}) => ({
  type: 'notification', notification_type: type, entity_type: 'execution', entity_id: id,
  payload: { id, action_ref: 'p.a', status, created: ts(s), updated: ts(s), ...extra },
});

test('status changes update rows in place, coalesced per execution', () => {
  const rows = [row(2, 2), row(1, 1)];
  const r = applyBatch(rows, [
    note('execution_status_changed', 1, 1, 'running'),
    note('execution_status_changed', 1, 1, 'completed'),
  ], NONE, 1);
  assert.equal(r.rows.length, 2);
  assert.equal(r.rows[1].status, 'completed');
  assert.equal(r.rows[0], rows[0], 'an untouched row keeps its identity (no re-render)');
  assert.equal(r.createdCount, 0);
});

test('new executions go to the top on page 1, at most one page is kept', () => {
  const rows = Array.from({ length: 3 }, (_, i) => row(3 - i, 3 - i));
  const r = applyBatch(rows, [note('execution_created', 10, 10, 'requested'),
    note('execution_status_changed', 10, 10, 'scheduled')], NONE, 1, 3);
  assert.deepEqual(r.rows.map((x) => x.id), [10, 3, 2]);
  assert.equal(r.rows[0].status, 'scheduled');
  assert.equal(r.createdCount, 1);
});

test('nothing is inserted on later pages or when filters do not match', () => {
  const rows = [row(1, 1)];
  assert.equal(applyBatch(rows, [note('execution_created', 5, 5, 'requested')], NONE, 2), null);
  const f = { ...NONE, action_ref: 'other.b' };
  assert.equal(applyBatch(rows, [note('execution_created', 5, 5, 'requested')], f, 1), null);
  const st = { ...NONE, status: 'completed,failed' };
  assert.equal(applyBatch(rows, [note('execution_created', 5, 5, 'requested')], st, 1), null);
  // ... but once it reaches a status the filter selects, it appears.
  const r = applyBatch(rows, [note('execution_status_changed', 5, 5, 'completed')], st, 1);
  assert.deepEqual(r.rows.map((x) => x.id), [5, 1]);
});

test('an older execution changing status falls off a full page', () => {
  const rows = [row(9, 9), row(8, 8)];
  const r = applyBatch(rows, [note('execution_status_changed', 3, 3, 'completed')], NONE, 1, 2);
  assert.deepEqual(r.rows.map((x) => x.id), [9, 8]);
});

test('other notifications are ignored', () => {
  const n = { type: 'notification', notification_type: 'inquiry_created', entity_type: 'inquiry', entity_id: 1, payload: {} };
  assert.equal(applyBatch([row(1, 1)], [n], NONE, 1), null);
});

test('filters: rule_ref and created range', () => {
  const p = { id: 1, status: 'running', action_ref: 'p.a', rule_ref: 'p.r', created: '2026-01-01T10:00:00.500Z' };
  assert.ok(matches(p, { ...NONE, rule_ref: 'p.r' }));
  assert.ok(!matches(p, { ...NONE, rule_ref: 'p.x' }));
  const local = (iso) => {
    const d = new Date(iso);
    const z = (n, w = 2) => String(n).padStart(w, '0');
    return `${d.getFullYear()}-${z(d.getMonth() + 1)}-${z(d.getDate())}T${z(d.getHours())}:${z(d.getMinutes())}:${z(d.getSeconds())}`;
  };
  assert.ok(matches(p, { ...NONE, created_after: local('2026-01-01T10:00:00Z') }));
  assert.ok(!matches(p, { ...NONE, created_after: local('2026-01-01T10:00:01Z') }));
  assert.ok(matches(p, { ...NONE, created_before: local('2026-01-01T10:00:01Z') }));
});
