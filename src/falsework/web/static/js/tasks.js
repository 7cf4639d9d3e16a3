// The task list: id, template, status, creator, times; mine / all, a status filter, paging.
// The filters live in the URL query, so Back and reload keep them.

import { api } from './api.js';
import { clear, formatTime, h } from './dom.js';

const PAGE = 20;
const STATUSES = ['open', 'processing', 'completed', 'failed', 'cancelled'];
const COLUMNS = ['Task', 'Template', 'Status', 'Created by', 'Created', 'Last update'];

export async function renderTaskList(main, { query, setQuery, identity }) {
  const canSeeAll = Boolean(identity.admin || identity.localMode || !identity.user);
  const owner = identity.user && (query.get('owner') === 'mine' || !canSeeAll) ? 'mine' : 'all';
  const status = STATUSES.includes(query.get('status')) ? query.get('status') : '';
  const page = Math.max(1, Number.parseInt(query.get('page') || '1', 10) || 1);
  const { tasks, totalTasks } = await api.listTasks({
    createdBy: owner === 'mine' ? identity.user : undefined,
    status: status || undefined,
    limit: PAGE,
    offset: (page - 1) * PAGE,
    order: 'desc:created_at',
  });
  const total = totalTasks ?? tasks.length;

  const ownerGroup = h(
    'fieldset',
    { class: 'segmented' },
    h('legend', { text: 'Show' }),
    [
      ['mine', 'My tasks', Boolean(identity.user)],
      ['all', 'All tasks', canSeeAll],
    ]
      .filter(([, , allowed]) => allowed)
      .map(([value, label]) => {
        const input = h('input', { type: 'radio', name: 'owner', id: `owner-${value}`, value, checked: owner === value });
        input.addEventListener('change', () => setQuery({ owner: value, page: null }));
        return h('span', { class: 'segment' }, input, h('label', { for: `owner-${value}`, text: label }));
      }),
  );
  const statusSelect = h(
    'select',
    { id: 'status-filter' },
    h('option', { value: '', text: 'Any status' }),
    STATUSES.map((s) => h('option', { value: s, text: s, selected: s === status })),
  );
  statusSelect.addEventListener('change', () => setQuery({ status: statusSelect.value || null, page: null }));

  const rows = tasks.map((t) => {
    const meta = t.spec?.templateInfo?.entity?.metadata || {};
    const title = meta.title || meta.name || t.spec?.templateInfo?.entityRef || '';
    const updated = t.completedAt || t.lastHeartbeatAt;
    return h(
      'tr',
      {},
      h('td', { 'data-label': 'Task' }, h('a', {
        href: `/create/tasks/${encodeURIComponent(t.id)}`,
        'data-link': true,
        class: 'task-id',
        title: t.id,
        'aria-label': `Task ${t.id.slice(0, 8)}`,
        text: t.id.slice(0, 8),
      })),
      h('td', { 'data-label': 'Template', text: title }),
      h('td', { 'data-label': 'Status' }, h('span', { class: `status status-${t.status}`, text: t.status })),
      h('td', { 'data-label': 'Created by', text: t.createdBy || '—' }),
      h('td', { 'data-label': 'Created' }, h('time', { datetime: t.createdAt || '', text: formatTime(t.createdAt) })),
      h('td', { 'data-label': 'Last update' }, h('time', { datetime: updated || '', text: formatTime(updated) })),
    );
  });
  const first = total === 0 ? 0 : (page - 1) * PAGE + 1;
  const last = Math.min(total, page * PAGE);
  clear(main).append(
    h('div', { class: 'page-head' }, h('h1', { text: 'Tasks' })),
    h(
      'div',
      { class: 'filters' },
      ownerGroup,
      h('div', { class: 'filter' }, h('label', { for: 'status-filter', text: 'Status' }), statusSelect),
    ),
    tasks.length
      ? h(
          'div',
          { class: 'card table-card' },
          h(
            'table',
            { class: 'tasks' },
            h('caption', { class: 'visually-hidden', text: 'Tasks, newest first' }),
            h('thead', {}, h('tr', {}, COLUMNS.map((c) => h('th', { scope: 'col', text: c })))),
            h('tbody', {}, rows),
          ),
        )
      : h('p', { class: 'card muted empty', text: 'No tasks match.' }),
    h(
      'nav',
      { class: 'pager', 'aria-label': 'Pages' },
      h('button', {
        type: 'button',
        class: 'secondary',
        disabled: page <= 1,
        text: 'Previous',
        onClick: () => setQuery({ page: page - 1 > 1 ? String(page - 1) : null }),
      }),
      h('span', { class: 'muted', text: `${first}–${last} of ${total}` }),
      h('button', {
        type: 'button',
        class: 'secondary',
        disabled: last >= total,
        text: 'Next page',
        onClick: () => setQuery({ page: String(page + 1) }),
      }),
    ),
  );
  return () => {};
}
