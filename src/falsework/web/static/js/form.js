// The template form: one page per parameters page (plus the template's secrets), a review
// page, then Create. Values are validated as they are typed and on Next with the same JSON
// Schema rules the server uses; the server's 400 errors are shown next to their fields.
// Each page is a history entry (`?step=2`, `?step=review`), and the answers are kept in
// this tab's sessionStorage, so Back, Forward and reload (and Back from the task page)
// come back to a filled form. Secrets stay in this closure's memory: never in the URL,
// history state or storage.

import { api, ApiError } from './api.js';
import { clear, h } from './dom.js';
import { markdownBlock } from './markdown.js';
import { enumOptions, parseRepoUrl, pathKey, renderField } from './fields.js';
import { takePrefill } from './prefill.js';
import {
  applyDefaults,
  deref,
  effectiveSchema,
  isObject,
  orderedKeys,
  prune,
  shapeKey,
  validate,
} from './schema.js';

function getAt(obj, path) {
  let cur = obj;
  for (const p of path) {
    if (cur === undefined || cur === null) return undefined;
    cur = cur[p];
  }
  return cur;
}

function setAt(obj, path, value) {
  let cur = obj;
  path.slice(0, -1).forEach((p, i) => {
    if (cur[p] === undefined || cur[p] === null || typeof cur[p] !== 'object') {
      cur[p] = typeof path[i + 1] === 'number' ? [] : {};
    }
    cur = cur[p];
  });
  const last = path[path.length - 1];
  if (value === undefined && !Array.isArray(cur)) delete cur[last];
  else cur[last] = value;
}

function passwordStrings(schema) {
  if (!isObject(schema)) return schema;
  const out = { ...schema };
  if ((out.type === 'string' || out.type === undefined) && !out.properties && !out['ui:widget'] && !out.enum) {
    out['ui:widget'] = 'password';
  }
  if (isObject(out.properties)) {
    out.properties = Object.fromEntries(Object.entries(out.properties).map(([k, v]) => [k, passwordStrings(v)]));
  }
  return out;
}

/** Where a server error points: `path` (+ the missing key for `required`) or `property`. */
export function errorPath(error) {
  let path = Array.isArray(error.path) ? [...error.path] : null;
  if (!path && typeof error.property === 'string') {
    path = error.property
      .replace(/^instance\.?/, '')
      .split(/\.|\[(\d+)\]/)
      .filter((p) => p !== undefined && p !== '')
      .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  }
  path = path || [];
  if ((error.name === 'required' || error.keyword === 'required') && typeof error.argument === 'string') {
    if (path[path.length - 1] !== error.argument) path.push(error.argument);
  }
  return path;
}

function serverMessage(error) {
  if (error.name === 'required') return 'This field is required.';
  return error.message ? error.message.charAt(0).toUpperCase() + error.message.slice(1) : 'Invalid value.';
}

const SECRETS_HINT =
  'These values are sent to the task as secrets: they are not shown on the review page ' +
  'and not stored by this page.';

/**
 * The form of template `namespace/name`. With `preview` ({schemaDoc, values, onSubmit,
 * submitLabel}) it is the template editor's live preview instead: the schema is given, the
 * answers live in `preview.values` (kept across re-renders), no history entry or storage is
 * written, focus stays where the author types, and the last button calls `onSubmit`.
 */
export async function renderTemplateForm(main, { namespace, name, identity, navigate, preview = null }) {
  const schemaDoc = preview ? preview.schemaDoc : await api.parameterSchema(namespace, name);
  const pages = (schemaDoc.steps || []).map((step) => ({
    title: step.title || step.schema?.title || 'Parameters',
    description: step.description || step.schema?.description || '',
    schema: step.schema || {},
    secret: false,
  }));
  if (isObject(schemaDoc.secretsSchema) && Object.keys(schemaDoc.secretsSchema.properties || {}).length) {
    const s = schemaDoc.secretsSchema;
    const description = s.description || '';
    pages.push({ title: s.title || 'Secrets', description, schema: passwordStrings(s), secret: true });
  }
  const templateRef = `template:${namespace}/${name}`;
  // RepoUrlPicker offers the server's configured hosts and the owners its tokens may publish to
  const repoHosts = JSON.stringify(schemaDoc).includes('"RepoUrlPicker"')
    ? await api.repoHosts().then((r) => r.hosts, () => null)
    : null;
  const state = {
    index: 0,
    reviewing: false,
    values: {},
    secretValues: {}, // spec.secrets.schema fields
    secrets: {}, // ui:field: Secret fields, by property name
    touched: new Set(),
    cleared: new Set(),
    serverErrors: new Map(), // page index -> Map(pathKey -> message)
    showAll: false,
    banner: null,
    fields: new Map(), // pathKey -> registered field of the current page
    shape: '',
    busy: false,
  };
  // ----- answers kept for Back, Forward and reload (never secrets) ----------------------
  const storeKey = `falsework.form.${templateRef}`;
  const isSecretSchema = (sub) => sub?.['ui:field'] === 'Secret' || sub?.['ui:widget'] === 'password';
  function withoutSecrets(rawSchema, value, root) {
    if (!isObject(value)) return value;
    const schema = effectiveSchema(rawSchema, value, root);
    const out = { ...value };
    for (const [key, rawSub] of Object.entries(schema.properties || {})) {
      const sub = deref(rawSub, root);
      if (isSecretSchema(sub)) delete out[key];
      else if (isObject(out[key]) && isObject(sub?.properties) && !sub['ui:field']) {
        out[key] = withoutSecrets(sub, out[key], root);
      }
    }
    return out;
  }
  function remember() {
    if (preview) return;
    let values = state.values;
    for (const p of pages) if (!p.secret) values = withoutSecrets(p.schema, values, p.schema);
    try {
      sessionStorage.setItem(storeKey, JSON.stringify({ values }));
    } catch {
      // storage full or disabled: the form still works, it only forgets on reload
    }
  }
  function recalled() {
    if (preview) return null;
    try {
      const saved = JSON.parse(sessionStorage.getItem(storeKey) || 'null');
      return isObject(saved?.values) ? saved.values : null;
    } catch {
      return null;
    }
  }

  const prefill = preview ? null : takePrefill(templateRef);
  const restored = isObject(prefill) ? null : recalled();
  if (restored) state.values = restored;
  if (preview) state.values = preview.values;
  if (isObject(prefill)) {
    // a finished task's values; masked Secret fields are left for the user to type again
    state.values = prefill;
    for (const p of pages) {
      for (const [key, sub] of Object.entries(effectiveSchema(p.schema, state.values, p.schema).properties || {})) {
        if (deref(sub, p.schema)?.['ui:field'] === 'Secret') delete state.values[key];
      }
    }
  }
  for (const page of pages) applyDefaults(page.schema, page.secret ? state.secretValues : state.values, page.schema);

  let quiet = false;
  const createLabelOf = () => preview?.submitLabel || 'Create';
  const dataOf = (page) => (page.secret ? state.secretValues : state.values);
  const page = () => pages[state.index];

  // ----- validation ------------------------------------------------------------------
  function pageErrors(i) {
    const p = pages[i];
    const errors = new Map();
    for (const e of validate(p.schema, dataOf(p), p.schema)) {
      const k = pathKey(e.path);
      if (!errors.has(k)) errors.set(k, e.message);
    }
    if (i === state.index) {
      for (const [k, f] of state.fields) {
        const msg = f.check?.(getAt(dataOf(p), f.path));
        if (msg && !errors.has(k)) errors.set(k, msg);
      }
    }
    return errors;
  }

  const within = (key, outer) => key === outer || key.startsWith(`${outer}\u0000`);
  const touched = (key) => [...state.touched].some((t) => within(t, key));

  /** Show each error at its field, or the nearest enclosing field, or at the top. */
  function showErrors() {
    const client = pageErrors(state.index);
    const server = state.serverErrors.get(state.index) || new Map();
    const shown = new Map();
    const loose = [];
    const place = (k, msg, force) => {
      let parts = k === '' ? [] : k.split('\u0000');
      while (parts.length) {
        const key = parts.join('\u0000');
        const f = state.fields.get(key);
        if (f) {
          if ((force || state.showAll || touched(key)) && !shown.has(key)) shown.set(key, msg);
          return;
        }
        parts = parts.slice(0, -1);
      }
      if (force || state.showAll) loose.push(msg);
    };
    for (const [k, msg] of server) place(k, msg, true);
    for (const [k, msg] of client) place(k, msg, false);
    for (const [k, f] of state.fields) {
      const msg = shown.get(k);
      f.errorEl.hidden = !msg;
      f.errorEl.textContent = msg || '';
      // a field made of several controls may say which one the message is about
      const all = [...f.element.querySelectorAll('input, select, textarea')];
      const bad = new Set(msg ? f.controlsFor?.(msg) || all : []);
      for (const control of all) {
        if (bad.has(control)) control.setAttribute('aria-invalid', 'true');
        else control.removeAttribute('aria-invalid');
      }
      f.element.classList.toggle('has-error', Boolean(msg));
    }
    const top = main.querySelector('.page-errors');
    if (top) {
      clear(top);
      const messages = [...(state.banner ? [state.banner] : []), ...loose];
      top.hidden = messages.length === 0;
      for (const m of messages) top.append(h('p', { text: m }));
    }
    return { count: client.size, shown };
  }

  // ----- the field context -------------------------------------------------------------
  function onChange(path, value, opts = {}) {
    const p = page();
    const data = dataOf(p);
    setAt(data, path, value);
    const k = pathKey(path);
    state.touched.add(k);
    const errs = state.serverErrors.get(state.index);
    // the user changed the value: the server's word on it (or on its parts) is stale
    for (const key of [...(errs?.keys() || [])]) if (within(key, k) || within(k, key)) errs.delete(key);
    if (value === undefined) state.cleared.add(k);
    else state.cleared.delete(k);
    state.banner = null;
    if (!p.secret) remember();
    const shape = shapeKey(p.schema, data, p.schema);
    if (opts.rerender || shape !== state.shape) {
      applyDefaults(p.schema, data, p.schema, state.cleared);
      renderPage({ keepFocus: !opts.focusLast, focusId: opts.focusLast });
    } else showErrors();
  }

  const ctx = {
    get root() {
      return page().schema;
    },
    get idPrefix() {
      return page().secret ? 'secret' : 'field';
    },
    identity,
    repoHosts,
    get: (path) => getAt(dataOf(page()), path),
    set: (path, value, opts) => onChange(path, value, opts),
    secretGet: (path) => state.secrets[path[path.length - 1]],
    secretSet: (path, value) => {
      const key = path[path.length - 1];
      if (value === undefined) delete state.secrets[key];
      else state.secrets[key] = value;
      onChange(path, value === undefined ? undefined : '*'.repeat([...value].length));
    },
    register: (path, entry) => state.fields.set(pathKey(path), { ...entry, path }),
    renderObject: (schema, path, container) => renderObject(schema, path, container),
  };

  function renderObject(rawSchema, path, container) {
    const p = page();
    const value = path.length ? getAt(dataOf(p), path) : dataOf(p);
    const schema = effectiveSchema(rawSchema, value, p.schema);
    const required = new Set(schema.required || []);
    for (const key of orderedKeys(schema)) {
      const el = renderField(ctx, schema.properties[key], [...path, key], { required: required.has(key) });
      if (el) container.append(el);
    }
  }

  // ----- rendering -----------------------------------------------------------------------
  function stepper() {
    const item = (i, title, current, done) =>
      h(
        'li',
        { class: `${current ? 'current' : ''} ${done ? 'done' : ''}`, 'aria-current': current ? 'step' : false },
        h('span', { class: 'step-no', 'aria-hidden': 'true', text: String(i + 1) }),
        h('span', { text: title }),
      );
    const items = pages.map((p, i) =>
      item(i, p.title, !state.reviewing && i === state.index, state.reviewing || i < state.index),
    );
    items.push(item(pages.length, 'Review', state.reviewing, false));
    return h('ol', { class: 'stepper', 'aria-label': 'Steps' }, items);
  }

  function header() {
    return h(
      'div',
      { class: 'page-head' },
      preview
        ? null
        : h('p', { class: 'crumbs' }, h('a', { href: '/create', 'data-link': true, text: 'Templates' }), ' / ', templateRef),
      h('h1', { text: schemaDoc.title || name }),
      markdownBlock(schemaDoc.description, 'muted'),
      stepper(),
    );
  }

  function renderPage({ keepFocus = false, focusId = null, focusFirstError = false } = {}) {
    const active = document.activeElement;
    const activeId = keepFocus && active?.id ? active.id : null;
    const hasSelection = activeId && typeof active.selectionStart === 'number';
    const selection = hasSelection ? [active.selectionStart, active.selectionEnd] : null;
    state.fields = new Map();
    state.reviewing = false;
    const p = page();
    const last = state.index === pages.length - 1;
    const body = h('div', { class: 'fields' });
    renderObject(p.schema, [], body);
    state.shape = shapeKey(p.schema, dataOf(p), p.schema);
    const form = h(
      'form',
      { class: 'card form', novalidate: true, onSubmit: (ev) => { ev.preventDefault(); next(); } },
      h('h2', { id: 'page-title', tabindex: '-1', text: p.title }),
      markdownBlock(p.description, 'muted'),
      p.secret ? h('p', { class: 'hint', text: SECRETS_HINT }) : null,
      h('div', { class: 'page-errors', role: 'alert', hidden: true }),
      body,
      h(
        'div',
        { class: 'form-actions' },
        h('button', { type: 'button', class: 'secondary', disabled: state.index === 0, onClick: back, text: 'Back' }),
        h('button', { type: 'submit', class: 'primary', text: last ? 'Review' : 'Next' }),
      ),
    );
    clear(main).append(header(), form);
    const { shown } = showErrors();
    if (activeId && document.getElementById(activeId)) {
      const el = document.getElementById(activeId);
      el.focus();
      if (selection) {
        try {
          el.setSelectionRange(...selection);
        } catch {
          // number inputs have no selection
        }
      }
    } else if (focusId && document.getElementById(focusId)) {
      document.getElementById(focusId).focus();
    } else if (focusFirstError && shown.size) {
      const first = [...state.fields.entries()].find(([k]) => shown.has(k));
      (first[1].focus || first[1].element).focus?.();
    } else if (!keepFocus) {
      const auto = main.querySelector('[data-autofocus="true"]');
      (auto || document.getElementById('page-title')).focus();
    }
  }

  // ----- pages as history entries ---------------------------------------------------
  const stepOf = (target) => (target >= pages.length ? 'review' : target > 0 ? String(target + 1) : null);
  function urlOf(target) {
    const url = new URL(window.location.href);
    const step = stepOf(target);
    if (step) url.searchParams.set('step', step);
    else url.searchParams.delete('step');
    return `${url.pathname}${url.search}`;
  }
  const currentTarget = () => (state.reviewing ? pages.length : state.index);

  /** The page a URL asks for, but never past a page whose answers are not valid yet. */
  function targetOf(query) {
    const raw = query.get('step');
    let target = raw === 'review' ? pages.length : (Number.parseInt(raw || '1', 10) || 1) - 1;
    target = Math.min(Math.max(0, target), pages.length);
    for (let i = 0; i < target; i += 1) {
      if (pageErrors(i).size > 0) {
        target = i;
        break;
      }
    }
    return target;
  }

  function show(target, opts) {
    if (preview) preview.page = target;
    state.showAll = false;
    state.banner = null;
    if (target >= pages.length) renderReview();
    else {
      state.index = target;
      renderPage(opts);
    }
  }

  function go(target) {
    if (preview) {
      show(target);
      return;
    }
    // the entry remembers the page it came from: the form's Back button is then the
    // browser's Back, so both walk the same history
    history.pushState({ formBack: stepOf(currentTarget()) }, '', urlOf(target));
    show(target);
  }

  function back() {
    const target = Math.max(0, currentTarget() - 1);
    if (preview) {
      show(target);
      return;
    }
    if (history.state && Object.hasOwn(history.state, 'formBack') && history.state.formBack === stepOf(target)) {
      history.back(); // popstate → update()
      return;
    }
    history.replaceState(null, '', urlOf(target));
    show(target);
  }

  function next() {
    state.showAll = true;
    const { count } = showErrors();
    if (count > 0) {
      renderPage({ focusFirstError: true });
      return;
    }
    // the page is valid by the schema: the server's older word on it is checked again on Create
    state.serverErrors.delete(state.index);
    go(state.index + 1);
  }

  // ----- review and create -------------------------------------------------------------
  function reviewRows(rawSchema, value, root, path, masked, rows) {
    const schema = effectiveSchema(rawSchema, value, root);
    for (const key of orderedKeys(schema)) {
      const sub = deref(schema.properties[key], root);
      if (!isObject(sub) || sub['ui:widget'] === 'hidden') continue;
      const review = sub['ui:backstage']?.review || {};
      if (review.show === false) continue;
      const v = isObject(value) ? value[key] : undefined;
      const title = sub.title || key;
      const secret = masked || sub['ui:field'] === 'Secret' || sub['ui:widget'] === 'password';
      if (isObject(v) && isObject(sub.properties) && !sub['ui:field']) {
        reviewRows(sub, v, root, [...path, title], secret, rows);
        continue;
      }
      let text;
      if (v === undefined) text = '';
      else if (secret || review.mask) text = typeof review.mask === 'string' ? review.mask : '••••••••';
      else text = displayValue(sub, v, root);
      rows.push([[...path, title].join(' › '), text]);
    }
  }

  function displayValue(schema, v, root) {
    if (schema['ui:field'] === 'RepoUrlPicker') {
      const p = parseRepoUrl(v);
      return `${p.host}/${p.owner}/${p.repo}`;
    }
    const items = deref(schema.items, root);
    const options = enumOptions(schema) || (isObject(items) ? enumOptions(items) : null);
    const label = (x) => options?.find((o) => JSON.stringify(o.value) === JSON.stringify(x))?.label ?? x;
    if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : label(x))).join(', ');
    if (typeof v === 'boolean') return v ? 'Yes' : 'No';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(label(v));
  }

  function renderReview() {
    state.reviewing = true;
    state.fields = new Map();
    const sections = pages.map((p) => {
      const rows = [];
      reviewRows(p.schema, dataOf(p), p.schema, [], p.secret, rows);
      return h(
        'section',
        { class: 'review-section' },
        h('h3', { text: p.title }),
        rows.length
          ? h('dl', { class: 'review' }, rows.map(([k, v]) => [h('dt', { text: k }), h('dd', { text: v || '—' })]))
          : h('p', { class: 'muted', text: 'Nothing to fill in.' }),
      );
    });
    const createLabel = preview?.submitLabel || 'Create';
    const createButton = h('button', { type: 'button', class: 'primary', onClick: create, text: createLabel });
    const view = h(
      'div',
      { class: 'card form' },
      h('h2', { id: 'page-title', tabindex: '-1', text: 'Review' }),
      h('p', { class: 'muted', text: 'Check the values, then create the task.' }),
      h(
        'div',
        { class: 'page-errors', role: 'alert', hidden: !state.banner },
        state.banner ? h('p', { text: state.banner }) : null,
      ),
      sections,
      h(
        'div',
        { class: 'form-actions' },
        h('button', { type: 'button', class: 'secondary', onClick: back, text: 'Back' }),
        createButton,
      ),
    );
    clear(main).append(header(), view);
    if (!quiet) document.getElementById('page-title').focus();
  }

  async function create(ev) {
    if (state.busy) return;
    state.busy = true;
    const button = ev.currentTarget;
    button.disabled = true;
    button.textContent = 'Creating…';
    let values = {};
    for (const p of pages) if (!p.secret) values = { ...values, ...prune(p.schema, state.values, p.schema) };
    const secrets = { ...state.secrets, ...state.secretValues };
    const body = { templateRef, values };
    if (Object.keys(secrets).length) body.secrets = secrets;
    if (preview) {
      try {
        await preview.onSubmit({ values, secrets });
      } finally {
        state.busy = false;
        button.disabled = false;
        button.textContent = createLabelOf();
      }
      return;
    }
    try {
      const { id } = await api.createTask(body);
      navigate(`/create/tasks/${encodeURIComponent(id)}`);
    } catch (err) {
      state.busy = false;
      if (err instanceof ApiError && err.status === 400 && Array.isArray(err.body?.errors)) {
        placeServerErrors(err.body.errors);
      } else {
        state.banner = `The task was not created: ${err.message}`;
        renderReview();
      }
    }
  }

  function placeServerErrors(errors) {
    state.serverErrors = new Map();
    let firstPage = null;
    for (const error of errors) {
      const path = errorPath(error);
      const holds = (p) => {
        const props = effectiveSchema(p.schema, state.values, p.schema).properties || {};
        return !p.secret && path.length > 0 && Object.hasOwn(props, path[0]);
      };
      let index = pages.findIndex(holds);
      if (index === -1) index = pages.length - 1;
      if (!state.serverErrors.has(index)) state.serverErrors.set(index, new Map());
      state.serverErrors.get(index).set(pathKey(path), serverMessage(error));
      firstPage = firstPage === null ? index : Math.min(firstPage, index);
    }
    state.index = firstPage ?? 0;
    history.replaceState(null, '', urlOf(state.index));
    state.banner = 'The server did not accept these values: see the messages below.';
    state.showAll = true;
    renderPage({ focusFirstError: true });
  }

  if (preview) {
    quiet = true; // the author is typing in the editor: the preview never takes the focus
    show(Math.min(preview.page ?? 0, pages.length), { keepFocus: true });
    quiet = false;
    return () => {};
  }
  // a reload or a link lands on the page its URL names (a template without parameters: Review)
  const query = new URLSearchParams(window.location.search);
  const first = pages.length ? targetOf(query) : 0;
  if (stepOf(first) !== (query.get('step') || null)) history.replaceState(history.state, '', urlOf(first));
  show(first);
  const dispose = () => {};
  dispose.update = (q) => show(targetOf(q));
  return dispose;
}
