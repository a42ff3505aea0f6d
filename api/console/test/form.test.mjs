import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collect, normalizeSchema } from '../src/form.js';

test('flat schema', () => {
  const f = normalizeSchema({
    msg: { type: 'string', required: true, description: 'd' },
    n: { type: 'integer', minimum: 1, maximum: 5, default: 2 },
    on: { type: 'boolean' },
    color: { type: 'string', enum: ['red', 'green'] },
    key: { type: 'string', secret: true },
  });
  assert.deepEqual(f.map((x) => x.name), ['msg', 'n', 'on', 'color', 'key']);
  assert.equal(f[0].required, true);
  assert.equal(f[1].maximum, 5);
  assert.deepEqual(f[3].enum, ['red', 'green']);
  assert.equal(f[4].secret, true);
});

test('JSON-Schema style', () => {
  const f = normalizeSchema({ type: 'object', required: ['a'], properties: { a: { type: 'string' }, b: { type: ['number', 'null'] } } });
  assert.deepEqual(f.map((x) => [x.name, x.type, x.required]), [['a', 'string', true], ['b', 'number', false]]);
  assert.deepEqual(normalizeSchema({ type: 'object' }), []);
  assert.deepEqual(normalizeSchema(null), []);
});

test('collect converts values and reports what the browser can tell', () => {
  const f = normalizeSchema({
    msg: { type: 'string', required: true }, n: { type: 'integer' }, on: { type: 'boolean' },
    color: { type: 'string', enum: ['red', 'green'] }, o: { type: 'object' }, opt: { type: 'string' },
  });
  assert.deepEqual(collect(f, { msg: 'hi', n: '3', on: true, color: '1', o: '{"a":1}', opt: '' }).values,
    { msg: 'hi', n: 3, on: true, color: 'green', o: { a: 1 } });
  const bad = collect(f, { msg: '', n: '', on: false, color: '', o: '{', opt: '' });
  assert.deepEqual(bad.errors, { msg: 'is required', o: 'must be valid JSON' });
});
