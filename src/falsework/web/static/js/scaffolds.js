// Repositories made with scaffold recording (template updates, docs/updates.md): each one's
// template, the version its branch holds, the template's newest version, whether an update is
// available, and its last update: branch, conflicts, pull request, task. "Only outdated" lives
// in the URL query, so Back and reload keep it.

import { api } from './api.js';
import { clear, formatTime, h } from './dom.js';

const COLUMNS = ['Repository', 'Template', 'Version', 'Newest', 'Status', 'Last update', 'Seen'];

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
    ),
  );
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
  );
  return () => {};
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
