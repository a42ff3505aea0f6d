// A form generated from a parameter / response schema (API.md §7): the flat style
// {name: {type, required, default, secret, enum, description, minimum, maximum}} or a JSON-Schema
// {type: "object", properties, required: [...]}.
import { html } from 'htm/preact';
import { useMemo, useState } from 'preact/hooks';

function mainType(t) {
  if (Array.isArray(t)) t = t.find((x) => x !== 'null') || 'string';
  return typeof t === 'string' ? t : 'string';
}

export function normalizeSchema(schema) {
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) return [];
  let props = schema;
  let req = [];
  if (typeof schema.type === 'string' && (schema.type === 'object' || schema.properties)) {
    props = schema.properties && typeof schema.properties === 'object' ? schema.properties : {};
    req = Array.isArray(schema.required) ? schema.required : [];
  }
  return Object.entries(props)
    .filter(([, s]) => s && typeof s === 'object' && !Array.isArray(s))
    .map(([name, s]) => ({
      name,
      type: mainType(s.type),
      required: s.required === true || req.includes(name),
      default: s.default,
      secret: s.secret === true,
      enum: Array.isArray(s.enum) ? s.enum : null,
      description: typeof s.description === 'string' ? s.description : '',
      minimum: s.minimum,
      maximum: s.maximum,
    }));
}

function initial(f) {
  const d = f.default;
  if (f.enum) {
    const i = d === undefined ? -1 : f.enum.findIndex((x) => JSON.stringify(x) === JSON.stringify(d));
    return i < 0 ? '' : String(i);
  }
  if (f.type === 'boolean') return d === true;
  if (d === undefined || d === null) return '';
  if (f.type === 'object' || f.type === 'array') return JSON.stringify(d, null, 2);
  return String(d);
}

// Values to send, or {errors} for what the browser can tell by itself (required, JSON syntax).
export function collect(fields, values) {
  const out = {};
  const errors = {};
  for (const f of fields) {
    const v = values[f.name];
    if (f.type === 'boolean' && !f.enum) {
      out[f.name] = v === true;
      continue;
    }
    if (v === '' || v === undefined) {
      if (f.required) errors[f.name] = 'is required';
      continue;
    }
    if (f.enum) out[f.name] = f.enum[Number(v)];
    else if (f.type === 'integer' || f.type === 'number') {
      const n = Number(v);
      out[f.name] = Number.isFinite(n) ? n : v;
    } else if (f.type === 'object' || f.type === 'array') {
      try {
        out[f.name] = JSON.parse(v);
      } catch (e) {
        errors[f.name] = 'must be valid JSON';
      }
    } else out[f.name] = v;
  }
  return Object.keys(errors).length ? { errors } : { values: out };
}

function Field({ f, id, value, error, onInput }) {
  const errId = `${id}-error`;
  const descId = `${id}-desc`;
  const described = [f.description ? descId : null, error ? errId : null].filter(Boolean).join(' ') || undefined;
  const common = {
    id,
    name: f.name,
    'data-field': f.name,
    'aria-invalid': error ? 'true' : undefined,
    'aria-describedby': described,
    'aria-required': f.required ? 'true' : undefined,
  };
  let input;
  if (f.enum) {
    input = html`<select ...${common} value=${value} onChange=${(e) => onInput(e.target.value)}>
      ${(!f.required || value === '') && html`<option value="">— choose —</option>`}
      ${f.enum.map((x, i) => html`<option value=${String(i)}>${typeof x === 'string' ? x : JSON.stringify(x)}</option>`)}
    </select>`;
  } else if (f.type === 'boolean') {
    input = html`<input type="checkbox" ...${common} checked=${value === true}
      onChange=${(e) => onInput(e.target.checked)} />`;
  } else if (f.type === 'integer' || f.type === 'number') {
    input = html`<input type="number" inputmode=${f.type === 'integer' ? 'numeric' : 'decimal'} ...${common}
      step=${f.type === 'integer' ? '1' : 'any'} min=${f.minimum} max=${f.maximum} value=${value}
      onInput=${(e) => onInput(e.target.value)} />`;
  } else if (f.type === 'object' || f.type === 'array') {
    input = html`<textarea ...${common} rows="4" spellcheck="false" placeholder=${f.type === 'array' ? '[ ]' : '{ }'}
      value=${value} onInput=${(e) => onInput(e.target.value)}></textarea>`;
  } else {
    input = html`<input type=${f.secret ? 'password' : 'text'} autocomplete=${f.secret ? 'new-password' : 'off'}
      ...${common} value=${value} onInput=${(e) => onInput(e.target.value)} />`;
  }
  const bounds = [
    f.minimum !== undefined ? `min ${f.minimum}` : null,
    f.maximum !== undefined ? `max ${f.maximum}` : null,
  ].filter(Boolean);
  return html`<div class=${`field field-${f.type}${error ? ' has-error' : ''}`} data-field-row=${f.name}>
    <label for=${id}>
      ${f.name}${f.required && html`<span class="req" aria-hidden="true"> *</span>`}
      <span class="ftype">${f.enum ? 'choice' : f.type}${f.secret ? ', secret' : ''}${bounds.length ? `, ${bounds.join(', ')}` : ''}${f.required ? ', required' : ''}</span>
    </label>
    ${input}
    ${f.description && html`<p class="hint" id=${descId}>${f.description}</p>`}
    ${error && html`<p class="field-error" id=${errId} data-field-error=${f.name}>${f.name} ${error}</p>`}
  </div>`;
}

/**
 * props: idPrefix, schema, submitLabel, onSubmit(values) → Promise (may throw ApiError),
 * rawJsonFallback: when the schema has no fields, offer a JSON textarea for the whole document.
 */
export function SchemaForm({ idPrefix, schema, submitLabel = 'Submit', onSubmit, rawJsonFallback = false, disabled }) {
  const fields = useMemo(() => normalizeSchema(schema), [JSON.stringify(schema || null)]);
  const [values, setValues] = useState(() => Object.fromEntries(fields.map((f) => [f.name, initial(f)])));
  const [raw, setRaw] = useState('{}');
  const [errors, setErrors] = useState({});
  const [formError, setFormError] = useState(null);
  const [busy, setBusy] = useState(false);
  const useRaw = rawJsonFallback && fields.length === 0;

  async function submit(e) {
    e.preventDefault();
    setFormError(null);
    let payload;
    if (useRaw) {
      try {
        payload = JSON.parse(raw || '{}');
      } catch {
        setErrors({ __raw: 'must be valid JSON' });
        return;
      }
    } else {
      const r = collect(fields, values);
      if (r.errors) {
        setErrors(r.errors);
        setFormError('Please correct the marked fields.');
        focusFirstError(r.errors);
        return;
      }
      payload = r.values;
    }
    setErrors({});
    setBusy(true);
    try {
      await onSubmit(payload);
    } catch (err) {
      const fe = err && err.details && err.details.fields;
      if (fe && typeof fe === 'object') {
        const mapped = {};
        for (const [k, m] of Object.entries(fe)) mapped[k.replace(/^(parameters|response)\./, '')] = String(m);
        setErrors(mapped);
        focusFirstError(mapped);
      }
      setFormError(err ? err.message : 'Request failed');
    } finally {
      setBusy(false);
    }
  }

  function focusFirstError(errs) {
    const first = fields.find((f) => errs[f.name]);
    if (first) setTimeout(() => document.getElementById(`${idPrefix}-${first.name}`)?.focus(), 0);
  }

  return html`<form class="schema-form" id=${`${idPrefix}-form`} onSubmit=${submit} noValidate>
    ${fields.length === 0 && !useRaw && html`<p class="muted">No parameters.</p>`}
    ${useRaw &&
    html`<div class="field">
      <label for=${`${idPrefix}-json`}>Response (JSON)</label>
      <textarea id=${`${idPrefix}-json`} rows="4" value=${raw} onInput=${(e) => setRaw(e.target.value)}></textarea>
      ${errors.__raw && html`<p class="field-error">${errors.__raw}</p>`}
    </div>`}
    ${fields.map(
      (f) => html`<${Field} key=${f.name} f=${f} id=${`${idPrefix}-${f.name}`} value=${values[f.name]}
        error=${errors[f.name]} onInput=${(v) => setValues((s) => ({ ...s, [f.name]: v }))} />`,
    )}
    ${formError && html`<p class="error form-error" role="alert" id=${`${idPrefix}-error`}>${formError}</p>`}
    <button type="submit" class="primary" id=${`${idPrefix}-submit`} disabled=${busy || disabled}>
      ${busy ? 'Working…' : submitLabel}
    </button>
  </form>`;
}
