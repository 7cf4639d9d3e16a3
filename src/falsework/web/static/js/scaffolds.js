// Repositories made with scaffold recording (template updates, docs/updates.md): each one's
// template, the version its branch holds, the template's newest version, whether an update is
// available, and its last update: branch, conflicts, pull request, task. "Only outdated" lives
// in the URL query, so Back and reload keep it. "Update…" starts an update of one repository;
// when the version needs answers the repository lacks (422), the form asks for them, filled in
// with the answers kept (the server never sends secrets), and starts it again with them.

import { api, ApiError } from './api.js';
import { clear, formatTime, h } from './dom.js';

const COLUMNS = ['Repository', 'Template', 'Version', 'Newest', 'Status', 'Last update', 'Seen', ''];

export async function renderScaffolds(main, { query, setQuery }) {
  const outdated = query.get('outdated') === 'true';
  const { scaffolds, problems } = await api.scaffolds({ outdated: outdated ? 'true' : undefined });
  const only = h('input', { type: 'checkbox', id: 'only-outdated', checked: outdated });
  only.addEventListener('change', () => setQuery({ outdated: only.checked ? 'true' : null }));
  const rows = scaffolds.map((s) =>
    h(
      'tr',
      {},
      h('td', { 'data-label': 'Repository' }, h('code', { text: s.repository })),
      h('td', { 'data-label': 'Template', text: s.templateRef }),
      h('td', { 'data-label': 'Version', text: s.version || '—' }),
      h('td', { 'data-label': 'Newest', text: s.latest || '—' }),
      h('td', { 'data-label': 'Status' }, statusBadge(s)),
      updateCell(s),
      h('td', { 'data-label': 'Seen' }, h('time', { datetime: s.updatedAt || '', text: formatTime(s.updatedAt) })),
      h(
        'td',
        {},
        h('button', {
          type: 'button',
          class: 'secondary small',
          text: 'Update…',
          'aria-label': `Update ${s.repository}`,
          onClick: () => panel.replaceChildren(updateForm(s)),
        }),
      ),
    ),
  );
  const panel = h('div', { class: 'update-panel' });
  const unread = Object.entries(problems || {}).map(([repo, why]) =>
    h('li', {}, h('code', { text: repo }), h('span', { text: `: ${why}` })),
  );
  clear(main).append(
    h('div', { class: 'page-head' }, h('h1', { text: 'Scaffolds' })),
    h(
      'div',
      { class: 'filters' },
      h('div', { class: 'filter' }, only, h('label', { for: 'only-outdated', text: 'Only those behind' })),
    ),
    unread.length
      ? h('div', { class: 'card' }, h('p', { text: 'Template repositories that could not be read:' }), h('ul', {}, unread))
      : '',
    scaffolds.length
      ? h(
          'div',
          { class: 'card table-card' },
          h(
            'table',
            { class: 'tasks scaffolds' },
            h('caption', { class: 'visually-hidden', text: 'Repositories made with scaffold recording' }),
            h('thead', {}, h('tr', {}, COLUMNS.map((c) => h('th', { scope: 'col', text: c })))),
            h('tbody', {}, rows),
          ),
        )
      : h('p', { class: 'card muted empty', text: 'No repositories recorded.' }),
    panel,
  );
  return () => {};
}

/** The form that starts an update of one repository (`remote#branch`). */
function updateForm(s) {
  const cut = s.repository.lastIndexOf('#');
  const target = { remoteUrl: s.repository.slice(0, cut) };
  if (s.repository.slice(cut + 1)) target.branch = s.repository.slice(cut + 1);
  const version = h('input', { id: 'update-to', type: 'text', value: s.latest || '', placeholder: 'the newest tag' });
  const asked = h('div', { class: 'update-answers' });
  const message = h('div', { class: 'update-message', 'aria-live': 'polite' });
  const fields = []; // [{ name, read: () => value | undefined }]
  const form = h(
    'form',
    { class: 'card update-form', 'aria-label': `Update ${s.repository}` },
    h('h2', { text: `Update ${s.repository}` }),
    h('div', { class: 'field' }, h('label', { for: 'update-to', text: 'Version' }), version),
    asked,
    h('button', { type: 'submit', text: 'Start update' }),
    message,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const values = {};
    for (const field of fields) {
      const value = field.read();
      if (value !== undefined) values[field.name] = value;
    }
    const body = { repositories: [target], values };
    if (version.value.trim()) body.to = version.value.trim();
    clear(message);
    try {
      const { tasks } = await api.startUpdates(body);
      const id = tasks[0].id;
      message.append(
        h('p', {}, 'Update started: ', h('a', { href: `/create/tasks/${encodeURIComponent(id)}`, 'data-link': true, text: 'task' })),
      );
    } catch (err) {
      const needed = err instanceof ApiError && err.status === 422 ? err.body?.needed : null;
      if (needed?.length) {
        fields.splice(0, fields.length, ...askFor(needed[0], asked));
        message.append(h('p', { class: 'field-error', role: 'alert', text: `${needed[0].version} needs answers: give them and start again.` }));
      } else {
        message.append(h('p', { class: 'field-error', role: 'alert', text: err.message }));
      }
    }
  });
  return form;
}

/** The new version's parameters to answer, then the answers kept (each editable). */
function askFor(needed, into) {
  const fields = [];
  const newOnes = needed.parameters.map((p) => {
    const { node, read } = input(`update-new-${p.name}`, p.title || p.name, p.schema || {}, undefined);
    fields.push({ name: p.name, read });
    return node;
  });
  const asked = new Set(needed.parameters.map((p) => p.name));
  const kept = Object.entries(needed.answers || {})
    .filter(([name]) => !asked.has(name))
    .map(([name, value]) => {
      const { node, read } = input(`update-kept-${name}`, name, {}, value);
      // a kept answer is sent only when changed: the stored one stays the truth otherwise
      fields.push({ name, read: () => changed(read(), value) });
      return node;
    });
  clear(into).append(
    h('fieldset', {}, h('legend', { text: `New in ${needed.version}` }), newOnes),
    kept.length ? h('fieldset', {}, h('legend', { text: 'Answers kept from the last render' }), kept) : '',
  );
  return fields;
}

function changed(value, old) {
  return JSON.stringify(value) === JSON.stringify(old) ? undefined : value;
}

/** One labelled input for a JSON Schema (enum, boolean, number, else text); `value` fills it. */
function input(id, label, schema, value) {
  const type = schema.type || (value === undefined ? 'string' : typeof value);
  let el;
  let read;
  if (Array.isArray(schema.enum)) {
    el = h('select', { id }, h('option', { value: '', text: '' }), schema.enum.map((v) => h('option', { value: JSON.stringify(v), text: String(v), selected: JSON.stringify(v) === JSON.stringify(value) })));
    read = () => (el.value ? JSON.parse(el.value) : undefined);
  } else if (type === 'boolean') {
    el = h('input', { id, type: 'checkbox', checked: value === true });
    read = () => el.checked;
  } else if (type === 'number' || type === 'integer') {
    el = h('input', { id, type: 'number', value: value ?? '' });
    read = () => (el.value === '' ? undefined : Number(el.value));
  } else if (type === 'string') {
    el = h('input', { id, type: 'text', value: value ?? '' });
    read = () => (el.value === '' && value === undefined ? undefined : el.value);
  } else {
    el = h('input', { id, type: 'text', value: JSON.stringify(value ?? null) });
    read = () => {
      try {
        return JSON.parse(el.value);
      } catch {
        return el.value;
      }
    };
  }
  return { node: h('div', { class: 'field' }, h('label', { for: id, text: label }), el), read };
}

function statusBadge(s) {
  if (s.updateAvailable === true) return h('span', { class: 'status status-open', text: 'update available' });
  if (s.updateAvailable === false) return h('span', { class: 'status status-completed', text: 'up to date' });
  return h('span', { class: 'muted', text: 'unknown' });
}

function updateCell(s) {
  const cell = h('td', { 'data-label': 'Last update' });
  const update = s.update;
  if (update) {
    const conflicts = update.conflicts?.length ? ` (${update.conflicts.length} conflicted)` : '';
    cell.append(h('span', { text: `${update.version}: ` }), h('code', { text: update.branch }), h('span', { text: conflicts }));
    if (update.pullRequestUrl && /^https?:/i.test(update.pullRequestUrl)) {
      cell.append(' ', h('a', { href: update.pullRequestUrl, target: '_blank', rel: 'noopener noreferrer', text: 'pull request' }));
    }
  }
  if (s.taskId) {
    cell.append(' ', h('a', { href: `/create/tasks/${encodeURIComponent(s.taskId)}`, 'data-link': true, text: 'task' }));
  }
  return cell;
}
