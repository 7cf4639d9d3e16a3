// The task list: id, template, status, what it created (its first output link), creator,
// times; mine / all, a status filter, paging. The filters live in the URL query, so Back and
// reload keep them.

import { api } from './api.js';
import { clear, formatTime, h } from './dom.js';
import { cloneText, localRemote } from './remote.js';

const PAGE = 20;
const STATUSES = ['open', 'processing', 'completed', 'failed', 'cancelled'];
const COLUMNS = ['Task', 'Template', 'Status', 'Result', 'Created by', 'Created', 'Last update'];
const RESULT_READS = 4; // completed tasks whose output is read at once

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

  const results = new Map(); // task id -> its Result cell, filled once its output is read
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
      resultCell(t, results),
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
  fillResults(tasks, results);
  return () => {};
}

function resultCell(task, results) {
  const cell = h('td', { 'data-label': 'Result', class: 'result' });
  if (task.status === 'completed') results.set(task.id, cell);
  return cell;
}

/** The first link each completed task's output gives (read from its completion event). */
async function fillResults(tasks, results) {
  const todo = tasks.filter((t) => results.has(t.id));
  const one = async (task) => {
    let events;
    try {
      events = await api.events(task.id);
    } catch {
      return;
    }
    const done = events.filter((e) => e.type === 'completion' && e.body?.output).pop();
    const link = (done?.body.output.links || []).find((l) => l && (l.url || l.entityRef));
    const cell = results.get(task.id);
    if (!link || !cell?.isConnected) return;
    const title = link.title || link.url || link.entityRef;
    const local = link.url ? localRemote(link.url) : null;
    if (local) cell.append(h('code', { class: 'clone-command', title, text: cloneText(local) }));
    else if (link.url && /^https?:/i.test(link.url)) {
      cell.append(h('a', { href: link.url, target: '_blank', rel: 'noopener noreferrer', text: title }));
    } else cell.append(h('span', { text: `${title}${link.entityRef && title !== link.entityRef ? ` (${link.entityRef})` : ''}` }));
  };
  const queue = [...todo];
  await Promise.all(
    Array.from({ length: Math.min(RESULT_READS, queue.length) }, async () => {
      while (queue.length) await one(queue.shift());
    }),
  );
}
