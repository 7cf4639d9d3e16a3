// The live task page: steps with status and duration, a log per step (ANSI colours,
// auto-scroll that stops when the user scrolls up), the output, and Cancel / Retry /
// Start over. Events come over SSE and are applied once each, in id order.

import { api, ApiError } from './api.js';
import { ansiToFragment } from './ansi.js';
import { clear, formatDuration, formatTime, h } from './dom.js';
import { markdownBlock } from './markdown.js';
import { setPrefill } from './prefill.js';
import { followEvents } from './sse.js';
import { cloneCommand, localRemote } from './remote.js';

const FINAL = new Set(['completed', 'failed', 'cancelled']);
const ICONS = { pending: '○', open: '○', processing: '◔', completed: '✓', failed: '✕', skipped: '⤼', cancelled: '⊘' };
const ALL = '__all__';

function statusBadge(status) {
  return h(
    'span',
    { class: `status status-${status}` },
    h('span', { class: 'status-icon', 'aria-hidden': 'true', text: ICONS[status] || '•' }),
    h('span', { class: 'status-word', text: status }),
  );
}

export async function renderTask(main, { id, navigate }) {
  let task;
  try {
    task = await api.task(id);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      clear(main).append(
        h('h1', { text: 'Task not found' }),
        h('p', { text: err.message }),
        h('p', {}, h('a', { href: '/create/tasks', 'data-link': true, text: 'All tasks' })),
      );
      return () => {};
    }
    throw err;
  }

  const spec = task.spec || {};
  const meta = spec.templateInfo?.entity?.metadata || {};
  const entityRef = spec.templateInfo?.entityRef || '';
  const templateTitle = meta.title || meta.name || entityRef || 'Task';
  const state = {
    status: task.status,
    steps: new Map(),
    selected: null,
    userSelected: false,
    output: null,
    error: null,
    ended: false, // the last event seen was the completion
    failedStep: null, // the first step that failed in the current attempt
    timer: null,
  };
  document.title = `${templateTitle} · Task ${id.slice(0, 8)} · Falsework`;

  // ----- layout ----------------------------------------------------------------------------
  const statusEl = h('span', { class: 'task-status', id: 'task-status', 'aria-live': 'polite' });
  const took = h('span', { class: 'took' });
  const connection = h('span', { class: 'connection muted', 'aria-live': 'polite' });
  const buttons = h('div', { class: 'task-actions' });
  const stepList = h('ol', { class: 'steps', 'aria-label': 'Steps' });
  const logs = h('div', { class: 'logs' });
  const logTitle = h('h2', { class: 'log-title', id: 'log-title' });
  const jump = h('button', { type: 'button', class: 'secondary small jump', hidden: true, text: 'Follow log' });
  const outputEl = h('section', { class: 'card output', 'aria-labelledby': 'output-title', hidden: true });
  const errorEl = h('div', { class: 'task-error', role: 'alert', hidden: true });

  clear(main).append(
    h(
      'div',
      { class: 'page-head task-head' },
      h(
        'p',
        { class: 'crumbs' },
        h('a', { href: '/create/tasks', 'data-link': true, text: 'Tasks' }),
        ' / ',
        h('code', { text: id }),
      ),
      h('h1', { text: templateTitle }),
      h(
        'p',
        { class: 'task-meta' },
        'Status: ',
        statusEl,
        task.createdBy ? ` · created by ${task.createdBy}` : '',
        task.createdAt ? ` · ${formatTime(task.createdAt)}` : '',
        took,
        ' ',
        connection,
      ),
      buttons,
    ),
    errorEl,
    outputEl,
    h(
      'div',
      { class: 'task-body' },
      h('nav', { class: 'card step-nav', 'aria-label': 'Task steps' }, stepList),
      h(
        'section',
        { class: 'card log-card', 'aria-labelledby': 'log-title' },
        h('div', { class: 'log-head' }, logTitle, jump),
        logs,
      ),
    ),
  );

  function addStep(stepId, name) {
    const panel = h('div', {
      class: 'log',
      role: 'log',
      tabindex: '0',
      'aria-label': `Log of ${name}`,
      hidden: true,
      dataset: { follow: 'true' },
    });
    panel.addEventListener('scroll', () => {
      const atBottom = panel.scrollTop + panel.clientHeight >= panel.scrollHeight - 8;
      panel.dataset.follow = atBottom ? 'true' : 'false';
      if (panel === current()?.panel) jump.hidden = atBottom;
    });
    logs.append(panel);
    const icon = h('span', { class: 'status-icon', 'aria-hidden': 'true' });
    const word = h('span', { class: 'step-status' });
    const duration = h('span', { class: 'duration muted' });
    const button = h(
      'button',
      { type: 'button', class: 'step', onClick: () => select(stepId, true) },
      icon,
      h('span', { class: 'step-name', text: name }),
      word,
      duration,
    );
    const item = h('li', { dataset: { step: stepId } }, button);
    stepList.append(item);
    const step = { id: stepId, name, status: 'pending', startedAt: null, endedAt: null };
    Object.assign(step, { panel, item, icon, word, duration, button });
    state.steps.set(stepId, step);
    paintStep(step);
    return step;
  }

  function current() {
    return state.steps.get(state.selected);
  }

  function select(stepId, byUser = false) {
    if (byUser) state.userSelected = true;
    state.selected = stepId;
    for (const step of state.steps.values()) {
      const on = step.id === stepId;
      step.panel.hidden = !on;
      step.item.classList.toggle('selected', on);
      step.button.setAttribute('aria-pressed', String(on));
    }
    const step = current();
    logTitle.textContent = step.id === ALL ? 'Log' : `Log: ${step.name}`;
    jump.hidden = step.panel.dataset.follow !== 'false';
    if (step.panel.dataset.follow !== 'false') step.panel.scrollTop = step.panel.scrollHeight;
  }

  jump.addEventListener('click', () => {
    const step = current();
    step.panel.dataset.follow = 'true';
    step.panel.scrollTop = step.panel.scrollHeight;
    jump.hidden = true;
  });

  function paintStep(step) {
    step.icon.textContent = step.id === ALL ? '≡' : ICONS[step.status] || '•';
    step.item.className = `${step.item.classList.contains('selected') ? 'selected ' : ''}step-${step.status}`;
    step.word.textContent = step.id === ALL ? '' : step.status;
    const end = step.endedAt ?? (step.status === 'processing' ? Date.now() : null);
    step.duration.textContent = step.startedAt && end ? formatDuration(end - step.startedAt) : '';
  }

  function appendLine(step, message, createdAt) {
    const line = h('div', { class: 'line' });
    if (createdAt) {
      const time = new Date(createdAt).toLocaleTimeString();
      line.append(h('span', { class: 'ts', 'aria-hidden': 'true', text: time }), ' ');
    }
    line.append(ansiToFragment(String(message)));
    const follow = step.panel.dataset.follow !== 'false';
    step.panel.append(line);
    if (follow && !step.panel.hidden) step.panel.scrollTop = step.panel.scrollHeight;
  }

  function paintStatus() {
    clear(statusEl).append(statusBadge(state.status));
    clear(buttons);
    if (state.status === 'open' || state.status === 'processing') {
      buttons.append(h('button', { type: 'button', class: 'danger', onClick: cancel, text: 'Cancel' }));
    }
    if (state.status === 'failed' || state.status === 'cancelled') {
      buttons.append(
        h('button', { type: 'button', class: 'primary', onClick: retry, text: 'Retry' }),
        h('button', { type: 'button', class: 'secondary', onClick: startOver, text: 'Start over' }),
      );
    }
    if (state.status === 'completed') {
      buttons.append(h('button', { type: 'button', class: 'secondary', onClick: startOver, text: 'Run again' }));
    }
    if (state.error) {
      clear(errorEl).append(
        h('strong', { text: `${state.error.name || 'Error'}: ` }),
        ansiToFragment(state.error.message || ''),
      );
      errorEl.hidden = false;
    } else errorEl.hidden = true;
  }

  function paintOutput() {
    const out = state.output;
    clear(outputEl);
    const links = Array.isArray(out?.links) ? out.links : [];
    const texts = Array.isArray(out?.text) ? out.text : [];
    outputEl.hidden = links.length === 0 && texts.length === 0;
    if (outputEl.hidden) return;
    outputEl.append(h('h2', { id: 'output-title', text: 'Output' }));
    if (links.length) {
      outputEl.append(
        h(
          'ul',
          { class: 'output-links' },
          links.map((link) => h('li', {}, outputLink(link))),
        ),
      );
    }
    for (const t of texts) {
      // Markdown, as Backstage shows it; text with colour codes or a non-string stays as is
      const plain = typeof t.content !== 'string' || t.content.includes('\u001b[');
      const content = typeof t.content === 'string' ? t.content : JSON.stringify(t.content ?? '', null, 2);
      outputEl.append(
        h(
          'section',
          { class: 'output-text' },
          h('h3', { text: t.title || 'Text' }),
          plain ? h('pre', {}, ansiToFragment(content)) : markdownBlock(content),
        ),
      );
    }
  }

  function outputLink(link) {
    if (!link.url) return h('span', { text: `${link.title || ''} ${link.entityRef || ''}`.trim() });
    const local = localRemote(link.url);
    if (local) return cloneCommand(link.title, local);
    return h('a', {
      href: safeUrl(link.url),
      target: '_blank',
      rel: 'noopener noreferrer',
      class: 'button-link',
      text: link.title || link.url,
    });
  }

  function safeUrl(url) {
    try {
      const u = new URL(url, window.location.href);
      return ['http:', 'https:', 'mailto:'].includes(u.protocol) ? u.href : '#';
    } catch {
      return '#';
    }
  }

  // ----- events ----------------------------------------------------------------------------
  const all = addStep(ALL, 'All steps');
  for (const s of spec.steps || []) addStep(s.id, s.name || s.id);
  const firstReal = [...state.steps.keys()].find((k) => k !== ALL);
  select(firstReal ?? ALL);

  function stepFor(stepId) {
    if (stepId === undefined || stepId === null) return null;
    return state.steps.get(stepId) || addStep(stepId, stepId);
  }

  // Each attempt (the first run, a retry, a recovery) starts with "Starting up task": a
  // step's time is that of the attempt that ran it, and "took" is the last attempt's.
  let attempt = 0;
  let attemptStart = Date.parse(task.createdAt);

  function newAttempt(at) {
    attempt += 1;
    attemptStart = at;
    state.failedStep = null;
  }

  function apply({ type, data }) {
    const body = data?.body || {};
    const at = data?.createdAt ? Date.parse(data.createdAt) : Date.now();
    if ((type === 'log' && !body.stepId && body.message?.startsWith('Starting up task')) || type === 'recovered') {
      newAttempt(at);
    }
    const step = stepFor(body.stepId);
    if (body.message !== undefined && type !== 'completion') {
      appendLine(all, body.message, data.createdAt);
      if (step) appendLine(step, body.message, data.createdAt);
    }
    if (step && body.status) {
      if (body.status === 'processing') {
        step.startedAt = at;
        step.endedAt = null;
        step.attempt = attempt;
        if (!state.userSelected) select(step.id);
      } else if (FINAL.has(body.status) || body.status === 'skipped') {
        if (step.attempt === attempt && step.startedAt) step.endedAt = at;
        else if (body.status !== 'completed') {
          // not run in this attempt (skipped, or cancelled before it began): no duration
          step.startedAt = null;
          step.endedAt = null;
        }
        // else: completed by an earlier attempt, which keeps its own duration
        if (body.status === 'failed' && !state.failedStep) state.failedStep = step.id;
      }
      step.status = body.status;
      paintStep(step);
    }
    if (type === 'log' || type === 'recovered') {
      // an event after the completion event is a new attempt (a retry or a recovery)
      const again = state.ended || body.message?.startsWith('Starting up task');
      if ((!FINAL.has(state.status) || again) && state.status !== 'processing') {
        state.status = 'processing';
        state.error = null;
        took.textContent = '';
        paintStatus();
      }
      state.ended = false;
    }
    if (type === 'completion') {
      const match = /status: (\w+)/.exec(body.message || '');
      state.error = body.error || null;
      if (body.output) {
        state.output = body.output;
        paintOutput();
      }
      appendLine(all, body.message || `Run completed with status: ${match?.[1] || 'completed'}`, data.createdAt);
      finish(match ? match[1] : body.error ? 'failed' : 'completed', at);
    }
    if (type === 'cancelled' && !body.stepId) finish('cancelled', at);
  }

  /** The task ended: no step stays pending or running, and the page says how long it took. */
  function finish(status, at) {
    state.ended = true;
    state.status = status;
    took.textContent = Number.isNaN(attemptStart) || !at ? '' : ` · took ${formatDuration(at - attemptStart)}`;
    for (const s of state.steps.values()) {
      if (s.id === ALL) continue;
      if (s.status === 'processing') {
        s.status = status === 'completed' ? 'completed' : status === 'cancelled' ? 'cancelled' : 'failed';
        s.endedAt = at;
      } else if (s.status === 'pending' || s.status === 'open') {
        s.status = 'skipped';
        s.startedAt = null;
        s.endedAt = null;
      } else continue;
      paintStep(s);
    }
    // a failed task opens on the step that failed, not on the last clean-up step
    if (status === 'failed' && state.failedStep && !state.userSelected) select(state.failedStep);
    paintStatus();
  }

  // A stream that ends before the task's final event is resumed; meanwhile the task is read
  // again, and when it has ended without a final event (nothing left to stream) the page
  // takes its status from there.
  let settled = null;
  const setConnection = (status) => {
    const words = { reconnecting: '· reconnecting…', error: '· the live view stopped' };
    connection.textContent = words[status] || '';
    if (status === 'reconnecting') {
      api.task(id).then(
        (fresh) => {
          settled = FINAL.has(fresh.status) ? fresh.status : null;
        },
        () => {},
      );
    }
    if (status === 'ended' && settled && !FINAL.has(state.status)) {
      finish(settled, null);
    }
  };
  const stream = followEvents(api.eventStreamUrl(id), {
    onEvent: apply,
    onStatus: setConnection,
    isDone: () => FINAL.has(state.status),
    isSettled: () => settled !== null,
  });

  state.timer = setInterval(() => {
    for (const step of state.steps.values()) if (step.status === 'processing') paintStep(step);
  }, 1000);

  // ----- actions -----------------------------------------------------------------------------
  async function cancel(ev) {
    ev.currentTarget.disabled = true;
    try {
      await api.cancel(id);
      // a task no worker had claimed yet is cancelled at once, maybe without an event
      const fresh = await api.task(id);
      if (FINAL.has(fresh.status) && fresh.status !== state.status) finish(fresh.status, null);
    } catch (err) {
      showActionError('Cancel', err);
    }
  }

  async function retry(ev) {
    ev.currentTarget.disabled = true;
    try {
      const { id: newId } = await api.retry(id);
      if (newId && newId !== id) {
        navigate(`/create/tasks/${encodeURIComponent(newId)}`);
        return;
      }
      const fresh = await api.task(id);
      state.status = FINAL.has(fresh.status) ? 'processing' : fresh.status;
      state.error = null;
      state.output = null;
      state.userSelected = false;
      settled = null;
      paintOutput();
      paintStatus();
      stream.resume();
    } catch (err) {
      showActionError('Retry', err);
      paintStatus();
    }
  }

  function startOver() {
    const [kind, rest] = entityRef.includes(':') ? entityRef.split(':') : ['template', entityRef];
    const [namespace, name] = rest.includes('/') ? rest.split('/') : ['default', rest];
    if (kind && name) {
      setPrefill(`template:${namespace}/${name}`, spec.parameters || {});
      navigate(`/create/templates/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`);
    } else navigate('/create');
  }

  function showActionError(what, err) {
    clear(errorEl).append(h('strong', { text: `${what} failed: ` }), err.message);
    errorEl.hidden = false;
  }

  paintStatus();
  return () => {
    stream.close();
    clearInterval(state.timer);
  };
}
