// #/keys — the datastore: values are never listed; "Show" fetches one key and reveals it.
import { useState } from 'preact/hooks';
import { can, get, qs, seg } from '../api.js';
import { html, ErrorBox, Pager, fmtTime, showJson, useLoad } from '../util.js';

function KeyValue({ k }) {
  const [shown, setShown] = useState(null); // {text, denied}
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const mayRead = can('keys', 'read');
  async function show() {
    setBusy(true);
    setError(null);
    try {
      const d = (await get(`/api/v1/keys/${seg(k.ref)}`)).data;
      if (d.value === null && d.encrypted) setShown({ text: 'no permission to decrypt', denied: true });
      else setShown({ text: typeof d.value === 'string' ? d.value : showJson(d.value) });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  return html`<td class="key-value" data-label="Value" data-shown=${shown ? 'true' : 'false'}>
    ${shown
      ? html`<code class=${shown.denied ? 'muted denied' : 'revealed'}>${shown.text}</code>`
      : html`<span class="muted hidden-value" aria-label="value hidden">••••••</span>`}
    ${mayRead &&
    html` <button type="button" class="key-show" disabled=${busy} aria-label=${`${shown ? 'Hide' : 'Show'} value of ${k.ref}`}
      onClick=${() => (shown ? setShown(null) : show())}>${shown ? 'Hide' : 'Show'}</button>`}
    ${error && html`<p class="error" role="alert">${error.message}</p>`}
  </td>`;
}

export function KeysPage() {
  const [page, setPage] = useState(1);
  const { data, error, loading } = useLoad(() => get(`/api/v1/keys${qs({ page, page_size: 50 })}`), [page]);
  const rows = (data && data.items) || [];
  return html`<section aria-labelledby="page-title">
    <h1 id="page-title">Keys</h1>
    <${ErrorBox} error=${error} />
    <div class="table-wrap" role="region" aria-label="Keys" tabindex="0">
      <table id="keys-table" class="stack">
        <thead><tr>
          <th scope="col">Ref</th><th scope="col">Name</th><th scope="col">Owner</th>
          <th scope="col">Encrypted</th><th scope="col">Expires</th><th scope="col">Value</th>
        </tr></thead>
        <tbody>
          ${rows.map(
            (k) => html`<tr key=${k.id} data-key-ref=${k.ref}>
              <td data-label="Ref">${k.ref}</td><td data-label="Name">${k.name || ''}</td>
              <td data-label="Owner">${k.owner_type}${k.owner ? `: ${k.owner}` : ''}</td>
              <td data-label="Encrypted">${k.encrypted ? 'yes' : 'no'}</td>
              <td class="time" data-label="Expires">${k.expires_at ? fmtTime(k.expires_at) : '—'}</td>
              <${KeyValue} k=${k} />
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    ${!loading && !error && !rows.length && html`<p class="muted">No keys.</p>`}
    <${Pager} pagination=${data && data.pagination} onPage=${setPage} label="Keys pages" />
  </section>`;
}
