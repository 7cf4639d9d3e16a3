// The admin page (admins only): the queue and the workers at a glance, a worker's limit,
// stale and recovered tasks, bulk cancel and retry by filter, and the cluster-wide switch
// that pauses claiming for maintenance. It reads /api/falsework/v1/admin/overview again
// every few seconds; the forms keep what was typed in them across those refreshes.

import { api, ApiError } from './api.js';
import { append, clear, formatDuration, formatTime, h } from './dom.js';

const REFRESH_MS = 4000;
const STATUSES = { cancel: ['open', 'processing'], retry: ['failed', 'cancelled'] };

function seconds(value) {
  return value === null || value === undefined ? '—' : formatDuration(value * 1000) || '0 s';
}

export async function renderAdmin(main) {
  let data;
  try {
    data = await api.adminOverview();
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      clear(main).append(
        h('h1', { text: 'Admin' }),
        h('p', { class: 'task-error', role: 'alert', text: err.message }),
      );
      return () => {};
    }
    throw err;
  }
  const pauseBox = h('section', { class: 'card admin-section', 'aria-labelledby': 'pause-title' });
  const queueBox = h('section', { class: 'card admin-section', 'aria-labelledby': 'queue-title' });
  const workersBox = h('section', { class: 'card admin-section', 'aria-labelledby': 'workers-title' });
  const troubledBox = h('section', { class: 'card admin-section', 'aria-labelledby': 'troubled-title' });
  const hooksBox = h('section', { class: 'card admin-section', 'aria-labelledby': 'hooks-title' });
  const message = h('p', { class: 'admin-message', role: 'status', 'aria-live': 'polite' });
  const bulk = bulkForm(message);

  const draw = (d) => {
    drawPause(pauseBox, d, message, refresh);
    drawQueue(queueBox, d);
    drawWorkers(workersBox, d, message, refresh);
    drawTroubled(troubledBox, d);
    drawHooks(hooksBox, d);
  };
  async function refresh() {
    try {
      draw(await api.adminOverview());
    } catch (err) {
      message.textContent = `Could not refresh: ${err.message}`;
    }
  }
  clear(main).append(
    h('div', { class: 'page-head' }, h('h1', { text: 'Admin' })),
    message,
    h('div', { class: 'admin-grid' }, pauseBox, queueBox),
    workersBox,
    troubledBox,
    bulk,
    hooksBox,
  );
  draw(data);
  const timer = setInterval(refresh, REFRESH_MS);
  return () => clearInterval(timer);
}

function drawPause(box, d, message, refresh) {
  const paused = d.paused;
  // the reason being typed survives a refresh
  const previous = box.querySelector('#pause-reason');
  const reason = h('input', { id: 'pause-reason', name: 'reason', maxlength: 500, value: previous?.value || '' });
  const act = async () => {
    try {
      if (paused) await api.resumeClaiming();
      else await api.pauseClaiming(reason.value.trim());
      message.textContent = paused ? 'Claiming resumed on every node.' : 'Claiming paused on every node.';
      await refresh();
    } catch (err) {
      message.textContent = err.message;
    }
  };
  append(clear(box), [
    h('h2', { id: 'pause-title', text: 'Claiming' }),
    paused
      ? h(
          'p',
          { class: 'admin-paused', 'data-state': 'paused' },
          h('strong', { text: 'Paused' }),
          ` since ${formatTime(paused.setAt)}${paused.setBy ? ` by ${paused.setBy}` : ''}`,
          paused.detail?.reason ? `: ${paused.detail.reason}` : '',
          '. Running tasks go on; no worker starts a new one.',
        )
      : h('p', { 'data-state': 'running', text: 'Running: workers claim tasks.' }),
    paused ? null : h('div', { class: 'field' }, h('label', { for: 'pause-reason', text: 'Reason (optional)' }), reason),
    h('button', {
      type: 'button',
      class: paused ? 'primary' : 'danger',
      text: paused ? 'Resume claiming' : 'Pause claiming',
      onClick: act,
    }),
  ]);
}

function drawQueue(box, d) {
  const q = d.queue;
  const item = (label, value, key) => h('div', { class: 'stat', dataset: { stat: key } }, h('dt', { text: label }), h('dd', { text: String(value) }));
  clear(box).append(
    h('h2', { id: 'queue-title', text: 'Queue' }),
    h(
      'dl',
      { class: 'stats' },
      item('Open, due', q.claimable, 'claimable'),
      item('Open, later', q.open - q.claimable, 'later'),
      item('Running', q.processing, 'processing'),
      item('Stale', q.stale, 'stale'),
      item('Oldest open', seconds(q.oldestOpenAgeSeconds), 'oldest'),
    ),
  );
}

function drawWorkers(box, d, message, refresh) {
  // a limit being typed survives a refresh (the field keeps its value and the focus)
  const active = box.contains(document.activeElement) ? document.activeElement : null;
  const keep = active?.dataset?.worker ? { worker: active.dataset.worker, value: active.value } : null;
  const rows = d.workers.map((w, n) => {
    const input = h('input', {
      id: `limit-${n}`,
      type: 'number',
      min: 0,
      max: 10000,
      value: keep && keep.worker === w.id ? keep.value : String(w.limit),
      'aria-label': `Limit of ${w.id}`,
      dataset: { worker: w.id },
      class: 'limit-input',
    });
    const set = async () => {
      try {
        const limit = Number.parseInt(input.value, 10);
        await api.setWorkerLimit(w.id, limit);
        input.blur();
        message.textContent = `The limit of ${w.id} is now ${limit}.`;
        await refresh();
      } catch (err) {
        message.textContent = err.message;
      }
    };
    return h(
      'tr',
      { dataset: { worker: w.id } },
      h('td', { 'data-label': 'Worker', text: w.id }),
      h('td', { 'data-label': 'Host', text: `${w.host} (pid ${w.pid})` }),
      h('td', { 'data-label': 'Running', text: `${w.running} of ${w.limit}` }),
      h('td', { 'data-label': 'Heartbeat', text: `${seconds(w.heartbeatAgeSeconds)} ago` }),
      h(
        'td',
        { 'data-label': 'Limit' },
        h('span', { class: 'limit-set' }, input, h('button', { type: 'button', class: 'secondary small', text: 'Set', 'aria-label': `Set the limit of ${w.id}`, onClick: set })),
      ),
    );
  });
  clear(box).append(
    h('h2', { id: 'workers-title', text: `Workers (${d.workers.length})` }),
    d.workers.length
      ? h(
          'table',
          { class: 'tasks', id: 'workers-table' },
          h('thead', {}, h('tr', {}, ['Worker', 'Host', 'Running', 'Heartbeat', 'Limit'].map((c) => h('th', { scope: 'col', text: c })))),
          h('tbody', {}, rows),
        )
      : h('p', { class: 'muted', text: 'No worker is alive.' }),
  );
  if (keep) box.querySelector(`input[data-worker="${CSS.escape(keep.worker)}"]`)?.focus();
}

function drawTroubled(box, d) {
  const rows = d.troubled.map((t) =>
    h(
      'tr',
      {},
      h('td', { 'data-label': 'Task' }, h('a', { href: `/create/tasks/${encodeURIComponent(t.id)}`, 'data-link': true, class: 'task-id', title: t.id, text: t.id.slice(0, 8) })),
      h('td', { 'data-label': 'Status' }, h('span', { class: `status status-${t.status}`, text: t.status })),
      h('td', { 'data-label': 'Template', text: t.template || '—' }),
      h('td', { 'data-label': 'Created by', text: t.createdBy || '—' }),
      h('td', { 'data-label': 'Attempt', text: String(t.attempt) }),
      h('td', { 'data-label': 'Heartbeat', text: t.heartbeatAgeSeconds == null ? '—' : `${seconds(t.heartbeatAgeSeconds)} ago` }),
      h('td', { 'data-label': 'Why', text: troubleOf(t, d.staleAfterSeconds) }),
    ),
  );
  clear(box).append(
    h('h2', { id: 'troubled-title', text: 'Stale and recovered tasks' }),
    rows.length
      ? h(
          'table',
          { class: 'tasks', id: 'troubled-table' },
          h('thead', {}, h('tr', {}, ['Task', 'Status', 'Template', 'Created by', 'Attempt', 'Heartbeat', 'Why'].map((c) => h('th', { scope: 'col', text: c })))),
          h('tbody', {}, rows),
        )
      : h('p', { class: 'muted', text: 'None: every running task heartbeats, none runs again.' }),
  );
}

function troubleOf(t, staleAfter) {
  if (t.status === 'processing' && t.heartbeatAgeSeconds != null && t.heartbeatAgeSeconds > staleAfter) {
    return 'stale: no heartbeat';
  }
  return t.recoveredAt ? `recovered ${formatTime(t.recoveredAt)}` : 'retried';
}

function drawHooks(box, d) {
  clear(box).append(
    h('h2', { id: 'hooks-title', text: 'Webhooks' }),
    d.webhooks.length
      ? h(
          'ul',
          { class: 'admin-hooks' },
          d.webhooks.map((w) => h('li', {}, h('strong', { text: w.name }), ` — ${w.events.join(', ')}${w.templates ? ` of ${w.templates.join(', ')}` : ''}`)),
        )
      : h('p', { class: 'muted', text: 'No webhooks are configured (webhooks: in the configuration).' }),
  );
}

function bulkForm(message) {
  const action = h('select', { id: 'bulk-action' }, h('option', { value: 'cancel', text: 'Cancel' }), h('option', { value: 'retry', text: 'Retry' }));
  const status = h('select', { id: 'bulk-status' });
  const fillStatus = () => {
    clear(status).append(
      h('option', { value: '', text: `Any of ${STATUSES[action.value].join(', ')}` }),
      STATUSES[action.value].map((s) => h('option', { value: s, text: s })),
    );
  };
  fillStatus();
  action.addEventListener('change', fillStatus);
  const createdBy = h('input', { id: 'bulk-created-by', placeholder: 'user:default/alice' });
  const template = h('input', { id: 'bulk-template', placeholder: 'template:default/name' });
  const before = h('input', { id: 'bulk-before', type: 'datetime-local' });
  const limit = h('input', { id: 'bulk-limit', type: 'number', min: 1, max: 1000, value: '100' });
  const result = h('div', { class: 'bulk-result', role: 'status', 'aria-live': 'polite' });
  const filter = (dryRun) => ({
    status: status.value ? [status.value] : undefined,
    createdBy: createdBy.value.trim() || undefined,
    template: template.value.trim() || undefined,
    // the browser's local time, sent with its zone (UTC)
    createdBefore: before.value ? new Date(before.value).toISOString() : undefined,
    limit: Number.parseInt(limit.value, 10) || 100,
    dryRun,
  });
  const run = async (dryRun) => {
    try {
      const answer = await api.bulk(action.value, filter(dryRun));
      const verb = action.value === 'cancel' ? 'cancelled' : 'retried';
      clear(result).append(
        dryRun
          ? h('p', { text: `${answer.matched.length} task(s) match.` })
          : h('p', { text: `${answer.done.length} task(s) ${verb}${answer.failed.length ? `, ${answer.failed.length} not` : ''}.` }),
        answer.matched.length
          ? h('ul', { class: 'bulk-ids' }, answer.matched.map((id) => h('li', {}, h('a', { href: `/create/tasks/${encodeURIComponent(id)}`, 'data-link': true, class: 'task-id', text: id.slice(0, 8), title: id }))))
          : null,
        answer.failed.map((f) => h('p', { class: 'field-error', text: `${f.id.slice(0, 8)}: ${f.message}` })),
      );
      if (!dryRun) message.textContent = `Bulk ${action.value}: ${answer.done.length} done.`;
    } catch (err) {
      clear(result).append(h('p', { class: 'field-error', role: 'alert', text: err.message }));
    }
  };
  const field = (id, label, input) => h('div', { class: 'filter' }, h('label', { for: id, text: label }), input);
  return h(
    'section',
    { class: 'card admin-section', 'aria-labelledby': 'bulk-title' },
    h('h2', { id: 'bulk-title', text: 'Cancel or retry in bulk' }),
    h(
      'div',
      { class: 'filters' },
      field('bulk-action', 'Action', action),
      field('bulk-status', 'Status', status),
      field('bulk-created-by', 'Created by', createdBy),
      field('bulk-template', 'Template', template),
      field('bulk-before', 'Created before', before),
      field('bulk-limit', 'At most', limit),
    ),
    h(
      'div',
      { class: 'task-actions' },
      h('button', { type: 'button', class: 'secondary', text: 'Preview', onClick: () => run(true) }),
      h('button', { type: 'button', class: 'danger', text: 'Apply', onClick: () => run(false) }),
    ),
    result,
  );
}
