// The page's entry point: a small history router over Backstage's URL shapes, the identity
// (who am I, local mode), and the token prompt shown when the API answers 401.

import { renderAdmin } from './admin.js';
import { api, ApiError, onTokenNeeded, setToken } from './api.js';
import { append, clear, h } from './dom.js';
import { renderEditor } from './editor.js';
import { renderTemplateForm } from './form.js';
import { renderGallery } from './gallery.js';
import { renderTask } from './task.js';
import { renderScaffolds } from './scaffolds.js';
import { renderTaskList } from './tasks.js';

const main = document.getElementById('main');
let dispose = () => {};
let identity = { user: null, admin: false, localMode: false, authRequired: false };
let renderId = 0;
// The view on screen may follow changes of its own URL's query itself (the form's pages):
// `{ path, update(query) }`; Back and Forward between such URLs then keep its state.
let live = null;

const routes = [
  [/^\/create\/?$/, 'create', (p) => renderGallery(main, p)],
  [/^\/create\/templates\/([^/]+)\/([^/]+)\/?$/, 'create', (p, m) => {
    document.title = `${decodeURIComponent(m[2])} · Falsework`;
    return renderTemplateForm(main, { ...p, namespace: decodeURIComponent(m[1]), name: decodeURIComponent(m[2]) });
  }],
  [/^\/create\/tasks\/?$/, 'tasks', (p) => renderTaskList(main, p)],
  [/^\/create\/tasks\/([^/]+)\/?$/, 'tasks', (p, m) => renderTask(main, { ...p, id: decodeURIComponent(m[1]) })],
  [/^\/create\/scaffolds\/?$/, 'scaffolds', (p) => renderScaffolds(main, p)],
  [/^\/edit\/?$/, 'edit', (p) => renderEditor(main, p)],
  [/^\/admin\/?$/, 'admin', (p) => renderAdmin(main, p)],
];

export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  window.scrollTo(0, 0);
  render();
}

function queryUpdater(replace) {
  return (changes) => {
    const url = new URL(window.location.href);
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === undefined || v === '') url.searchParams.delete(k);
      else url.searchParams.set(k, v);
    }
    const next = `${url.pathname}${url.search}`;
    if (next === `${window.location.pathname}${window.location.search}`) return;
    if (replace) history.replaceState(null, '', next);
    else navigate(next);
  };
}

// The previous view stays until the next one has its data: dimmed, not clickable,
// and announced as busy, so nobody acts on a page that is going away.
function setBusy(busy) {
  if (busy) main.setAttribute('aria-busy', 'true');
  else main.removeAttribute('aria-busy');
  main.dataset.ready = busy ? 'false' : 'true';
}

function showNotFound() {
  clear(main).append(
    h('h1', { text: 'Page not found' }),
    h('p', {}, h('a', { href: '/create', 'data-link': true, text: 'Templates' })),
  );
}

function showError(err) {
  const message = err instanceof ApiError ? `${err.message} (HTTP ${err.status})` : String(err.message || err);
  const home = h('a', { href: '/create', 'data-link': true, text: 'Back to the templates' });
  clear(main).append(
    h('h1', { text: 'Something went wrong' }),
    h('p', { class: 'task-error', role: 'alert', text: message }),
    h('p', {}, home),
  );
  console.error(err);
}

async function render() {
  const path = window.location.pathname;
  const query = new URLSearchParams(window.location.search);
  if (live && live.path === path && typeof live.update === 'function') {
    live.update(query);
    return;
  }
  live = null;
  const mine = ++renderId;
  dispose();
  dispose = () => {};
  setBusy(true);
  const route = routes.find(([re]) => re.test(path));
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (route && link.dataset.nav === route[1]) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  try {
    if (!route) {
      showNotFound();
    } else {
      const titles = {
        create: 'Create · Falsework',
        tasks: 'Tasks · Falsework',
        scaffolds: 'Scaffolds · Falsework',
        edit: 'Editor · Falsework',
        admin: 'Admin · Falsework',
      };
      document.title = titles[route[1]];
      const params = {
        query,
        identity,
        navigate,
        replaceQuery: queryUpdater(true),
        setQuery: queryUpdater(false),
      };
      const cleanup = await route[2](params, path.match(route[0]));
      if (mine !== renderId) cleanup?.();
      else if (typeof cleanup === 'function') {
        dispose = cleanup;
        if (typeof cleanup.update === 'function') live = { path, update: cleanup.update };
      }
    }
  } catch (err) {
    if (mine === renderId) showError(err);
  }
  if (mine !== renderId) return; // a newer view is loading: it owns focus and the busy state
  // the link that was clicked is gone: put focus at the start of the new content, so
  // keyboard and screen-reader users continue from there (a view may have focused a field)
  if (!document.activeElement || document.activeElement === document.body) {
    main.focus({ preventScroll: true });
  }
  setBusy(false);
}

document.addEventListener('click', (ev) => {
  const link = ev.target.closest?.('a[data-link]');
  if (!link || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  ev.preventDefault();
  navigate(link.getAttribute('href'));
});
window.addEventListener('popstate', render);

// ----- the token prompt -------------------------------------------------------------------
// Built only when the API asks for a token, so its input never shadows a form field's label.
function tokenDialog(reason) {
  return new Promise((resolve) => {
    const input = h('input', { id: 'token-input', name: 'token', type: 'password', autocomplete: 'off', required: true });
    const error = h('p', { class: 'error', id: 'token-error', role: 'alert', text: reason, hidden: !reason });
    const form = h(
      'form',
      { method: 'dialog' },
      h('h2', { id: 'token-title', text: 'Sign in' }),
      h('p', { text: 'This server needs an access token. It is kept for this browser tab only.' }),
      h('label', { for: 'token-input', text: 'Access token' }),
      input,
      error,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', text: 'Sign in' })),
    );
    const dialog = h('dialog', { id: 'token-dialog', 'aria-labelledby': 'token-title' }, form);
    dialog.addEventListener('cancel', (ev) => ev.preventDefault()); // nothing works without it
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const value = input.value.trim();
      if (!value) return;
      dialog.close();
      dialog.remove();
      resolve(value);
    });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  });
}
onTokenNeeded(tokenDialog);

function showIdentity() {
  // the editor is for template authors (and admins, who hold every role)
  const author = identity.admin || (identity.roles || []).includes('templates:author');
  document.querySelector('[data-nav="edit"]').hidden = !author;
  document.querySelector('[data-nav="admin"]').hidden = !identity.admin;
  const box = document.getElementById('identity');
  clear(box);
  if (identity.user) {
    append(box, [
      h('span', { class: 'muted', text: identity.user }),
      identity.admin ? h('span', { class: 'badge', text: 'admin' }) : null,
    ]);
  }
  if (sessionStorage.getItem('falsework.token')) {
    const signOut = () => {
      setToken(null);
      window.location.reload();
    };
    box.append(h('button', { type: 'button', class: 'secondary small', text: 'Sign out', onClick: signOut }));
  }
  const notice = document.getElementById('notice');
  if (identity.localMode) {
    notice.textContent =
      'Local mode: this server accepts requests without signing in, from this machine only ' +
      '(it listens on 127.0.0.1 and has no tokens configured).';
    notice.hidden = false;
  } else notice.hidden = true;
}

async function start() {
  if (window.location.pathname === '/' || window.location.pathname === '') history.replaceState(null, '', '/create');
  try {
    identity = { ...identity, ...(await api.me()) };
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) console.warn('identity:', err);
  }
  showIdentity();
  await render();
}

start();
